//! Synthetic review data: listings with evidence pages, matches and draft notices, for the
//! queue benchmark (`markwatch bench seed-notices N`) and the UI tests.
//!
//! Listings, evidence and verdicts are stored through the crawler's `record_page` (with a
//! synthetic judge instead of the matcher), drafts through the notice drafting's `save_drafts`.

use html_escape::encode_quoted_attribute;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::fetch::Page;
use crate::model::InfringementKind;
use crate::model::Listing;
use crate::model::{Outcome, Reason, ReasonCode, Verdict};
use crate::store::{BrandMarks, PlannedItem, PlannedNotice, Result, Store, StoreError};

/// One listing to store, matched against `brand`'s first CN mark (else its first mark).
#[derive(Debug, Clone, Default)]
pub struct SeedListing {
    pub platform: String,
    pub item_id: String,
    pub title: String,
    pub seller: String,
    /// The platform's id for the shop, as a search page shows it.
    pub seller_id: Option<String>,
    /// Where it ships from.
    pub ship_from: Option<String>,
    pub price: f64,
    pub brand: String,
    /// `infringing` or `suspect`.
    pub verdict: &'static str,
    pub score: f64,
}

/// The complaint channel each platform's drafts go to.
pub(crate) fn channel(platform: &str) -> &'static str {
    match platform {
        "taobao" | "tmall" => "Alibaba IPP (阿里巴巴知识产权保护平台)",
        "jd" => "JD IPR portal (京东知识产权保护平台)",
        "amazon_cn" => "Amazon infringement report",
        _ => "unknown channel",
    }
}

/// The item URL in the platform's real form.
pub(crate) fn item_url(platform: &str, item_id: &str) -> String {
    match platform {
        "taobao" => format!("https://item.taobao.com/item.htm?id={item_id}"),
        "tmall" => format!("https://detail.tmall.com/item.htm?id={item_id}"),
        "jd" => format!("https://item.jd.com/{item_id}.html"),
        _ => format!("https://www.amazon.cn/dp/{item_id}"),
    }
}

/// A search page showing `listings`, as a platform would serve it (titles escaped as HTML).
fn search_page(platform: &str, keyword: &str, listings: &[Listing]) -> Page {
    let mut body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{} - 搜索</title>\
         <script>window.g_page_config = {{}};</script></head><body><ul class=\"items\">",
        encode_quoted_attribute(keyword)
    );
    for l in listings {
        body.push_str(&format!(
            "<li class=\"item\"><a href=\"{}\">{}</a><span class=\"shop\">{}</span><span class=\"price\">¥{:.2}</span></li>",
            encode_quoted_attribute(&l.url),
            encode_quoted_attribute(&l.title),
            encode_quoted_attribute(l.seller.as_deref().unwrap_or("")),
            l.price.unwrap_or(0.0)
        ));
    }
    body.push_str("</ul></body></html>");
    let url = format!(
        "https://s.{platform}.example/search?q={}",
        super::error::urlencode(keyword)
    );
    Page {
        url: url.clone(),
        final_url: url,
        status: 200,
        headers: vec![(
            "content-type".to_owned(),
            "text/html; charset=utf-8".to_owned(),
        )],
        body: body.into_bytes(),
        fetched_at: chrono::Utc::now(),
        attempts: 1,
    }
}

struct Registry {
    brands: Vec<BrandMarks>,
}

impl Registry {
    async fn load(store: &Store) -> Result<Registry> {
        let brands = store.brand_mark_ids().await?;
        if brands.is_empty() {
            return Err(StoreError::Corrupt {
                table: "brands",
                column: "name",
                value: "no brands registered: import a registry first".to_owned(),
            });
        }
        Ok(Registry { brands })
    }

    fn brand(&self, name: &str) -> Option<&BrandMarks> {
        self.brands.iter().find(|b| b.1 == name)
    }

    fn mark_for(marks: &[(i64, String, String)]) -> Option<i64> {
        marks
            .iter()
            .find(|m| m.2 == "CN")
            .or(marks.first())
            .map(|m| m.0)
    }
}

/// Stores listings and their verdicts as a crawl would, drafting nothing: drafting is left
/// to the caller (`queue_drafts`). Returns their match ids, in order.
pub async fn seed_listings(store: &Store, listings: &[SeedListing]) -> Result<Vec<i64>> {
    let registry = Registry::load(store).await?;
    let mut ids = Vec::with_capacity(listings.len());
    for l in listings {
        ids.extend(store_listings(store, &registry, &l.platform, &l.brand, &[l]).await?);
    }
    Ok(ids)
}

/// Stores `listings` on one search page and drafts them into one notice per (platform, brand)
/// group. Returns the new notice ids, in group order.
pub async fn seed_notice(store: &Store, listings: &[SeedListing]) -> Result<Vec<i64>> {
    let registry = Registry::load(store).await?;
    let mut plan = Vec::new();
    let mut by_group: Vec<((String, String), Vec<&SeedListing>)> = Vec::new();
    for l in listings {
        let key = (l.platform.clone(), l.brand.clone());
        match by_group.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(l),
            None => by_group.push((key, vec![l])),
        }
    }
    for ((platform, brand), group) in by_group {
        let ids = store_listings(store, &registry, &platform, &brand, &group).await?;
        let (brand_id, _, marks) = registry.brand(&brand).expect("checked in store_listings");
        plan.push(PlannedNotice {
            existing: None,
            platform: platform.clone(),
            channel: channel(&platform).to_owned(),
            brand_id: *brand_id,
            mark_id: Registry::mark_for(marks),
            reason: InfringementKind::Counterfeit,
            group_key: format!("seed:{platform}:{brand}:{}", ids[0]),
            not_fileable: None,
            relisted_from: None,
            priority: 0,
            items: ids
                .into_iter()
                .map(|match_id| PlannedItem {
                    match_id,
                    relisted_from: None,
                    relisted_reason: None,
                })
                .collect(),
        });
    }
    Ok(store.save_drafts(&plan, "seed").await?.created)
}

/// Stores one platform's listings for one brand on a search page; returns their match ids.
async fn store_listings(
    store: &Store,
    registry: &Registry,
    platform: &str,
    brand: &str,
    group: &[&SeedListing],
) -> Result<Vec<i64>> {
    let (brand_id, _, marks) = registry.brand(brand).ok_or_else(|| StoreError::Corrupt {
        table: "brands",
        column: "name",
        value: format!("no brand named {brand}"),
    })?;
    let listings: Vec<Listing> = group
        .iter()
        .map(|l| Listing {
            platform: platform.to_owned(),
            item_id: l.item_id.clone(),
            url: item_url(platform, &l.item_id),
            title: l.title.clone(),
            seller: Some(l.seller.clone()),
            seller_id: l.seller_id.clone(),
            ship_from: l.ship_from.clone(),
            price: Some(l.price),
            currency: "CNY".to_owned(),
            ..Listing::default()
        })
        .collect();
    let mark = marks
        .iter()
        .find(|m| m.2 == "CN")
        .or(marks.first())
        .map(|m| m.1.clone());
    // The verdict each listing was seeded with, found by item id.
    let judge = |l: &Listing| -> Verdict {
        let seeded = group.iter().find(|s| s.item_id == l.item_id);
        let (verdict, score) = match seeded {
            Some(s) if s.verdict == "infringing" => (Outcome::Infringing, s.score),
            Some(s) => (Outcome::Suspect, s.score),
            None => (Outcome::Clear, 0.0),
        };
        Verdict {
            verdict,
            score,
            brand: Some(brand.to_owned()),
            mark: mark.clone(),
            reasons: vec![
                Reason {
                    code: ReasonCode::ChineseName,
                    detail: format!("{brand} in the title"),
                },
                Reason {
                    code: ReasonCode::CounterfeitTerm,
                    detail: "高仿".to_owned(),
                },
                Reason {
                    code: ReasonCode::PriceBelowReference,
                    detail: format!("¥{:.0}", l.price.unwrap_or(0.0)),
                },
            ],
        }
    };
    let run = store.start_crawl_run(platform, Some(brand)).await?;
    let page = search_page(platform, brand, &listings);
    let record = crate::crawl::record_page(store, run, &page, &listings, &judge).await?;
    let _ = brand_id;
    // Match ids in the order of `group`.
    let mut by_listing: Vec<(usize, i64)> =
        record.new.iter().chain(&record.changed).copied().collect();
    by_listing.sort();
    let ids = by_listing
        .iter()
        .filter_map(|(_, listing_id)| {
            record
                .matches
                .iter()
                .find(|m| m.listing_id == *listing_id)
                .map(|m| m.match_id)
        })
        .collect();
    Ok(ids)
}

const PRODUCTS: &[&str] = &[
    "运动鞋",
    "跑步鞋",
    "篮球鞋",
    "双肩包",
    "手提包",
    "钱包",
    "手表",
    "太阳镜",
    "T恤",
    "卫衣",
    "羽绒服",
    "帽子",
    "皮带",
    "香水",
    "口红",
];
const TERMS: &[&str] = &[
    "高仿", "复刻", "原单", "A货", "1:1", "莆田", "超A", "精仿", "尾单", "正品", "官方",
];
const SHOPS: &[&str] = &[
    "潮流前线小店",
    "莆田鞋业直销",
    "广州白云皮具城",
    "深圳华强北数码",
    "义乌小商品批发",
    "海外代购精品店",
];

/// Seeds `n` draft notices of one or two listings each, spread over platforms and brands,
/// deterministically from `seed`. `progress` is called with the count done after each batch.
pub async fn seed_notices(
    store: &Store,
    n: usize,
    seed: u64,
    mut progress: impl FnMut(usize),
) -> Result<usize> {
    const BATCH: usize = 500;
    let registry = Registry::load(store).await?;
    let platforms = ["taobao", "tmall", "jd", "amazon_cn"];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let base: u64 = rng.random_range(100_000_000..900_000_000) * 1000;
    let mut done = 0;
    let mut serial = 0u64;
    while done < n {
        let count = BATCH.min(n - done);
        let mut plan = Vec::with_capacity(count);
        // One search page per (platform, brand) batch group keeps evidence realistic and small.
        let mut pending: Vec<(usize, usize, Vec<SeedListing>)> = Vec::new();
        for _ in 0..count {
            let p = rng.random_range(0..platforms.len());
            let b = rng.random_range(0..registry.brands.len());
            let items = if rng.random_bool(0.3) { 2 } else { 1 };
            let mut group = Vec::new();
            for _ in 0..items {
                serial += 1;
                let brand = &registry.brands[b].1;
                let item_id = if platforms[p] == "amazon_cn" {
                    format!("B0{:08X}", base + serial)
                } else {
                    (base + serial).to_string()
                };
                let score: f64 = rng.random_range(0.45..1.0);
                group.push(SeedListing {
                    platform: platforms[p].to_owned(),
                    item_id,
                    title: format!(
                        "{} {} {} 2024新款 男女同款",
                        brand,
                        TERMS[rng.random_range(0..TERMS.len())],
                        PRODUCTS[rng.random_range(0..PRODUCTS.len())]
                    ),
                    seller: SHOPS[rng.random_range(0..SHOPS.len())].to_owned(),
                    seller_id: None,
                    ship_from: None,
                    price: (rng.random_range(19.0..400.0f64) * 100.0).round() / 100.0,
                    brand: brand.clone(),
                    verdict: if score >= 0.75 {
                        "infringing"
                    } else {
                        "suspect"
                    },
                    score: (score * 1000.0).round() / 1000.0,
                });
            }
            pending.push((p, b, group));
        }
        // Store listings grouped by (platform, brand) so each group shares a search page.
        let mut keys: Vec<(usize, usize)> = pending.iter().map(|(p, b, _)| (*p, *b)).collect();
        keys.sort();
        keys.dedup();
        let mut match_ids: Vec<Vec<i64>> = vec![Vec::new(); pending.len()];
        for (p, b) in keys {
            let members: Vec<usize> = (0..pending.len())
                .filter(|&i| pending[i].0 == p && pending[i].1 == b)
                .collect();
            let flat: Vec<&SeedListing> = members.iter().flat_map(|&i| &pending[i].2).collect();
            let brand = &registry.brands[b].1;
            let ids = store_listings(store, &registry, platforms[p], brand, &flat).await?;
            let mut it = ids.into_iter();
            for &i in &members {
                match_ids[i] = it.by_ref().take(pending[i].2.len()).collect();
            }
        }
        for (i, (p, b, _)) in pending.iter().enumerate() {
            let (brand_id, _, marks) = &registry.brands[*b];
            plan.push(PlannedNotice {
                existing: None,
                platform: platforms[*p].to_owned(),
                channel: channel(platforms[*p]).to_owned(),
                brand_id: *brand_id,
                mark_id: Registry::mark_for(marks),
                reason: InfringementKind::Counterfeit,
                group_key: format!("bench:{seed}:{}", match_ids[i][0]),
                not_fileable: None,
                relisted_from: None,
                priority: 0,
                items: match_ids[i]
                    .iter()
                    .map(|&match_id| PlannedItem {
                        match_id,
                        relisted_from: None,
                        relisted_reason: None,
                    })
                    .collect(),
            });
        }
        store.save_drafts(&plan, "bench").await?;
        done += count;
        progress(done);
    }
    Ok(done)
}

/// Gives the seeded drafts a past spread over the `weeks` weeks up to `today`: each is
/// detected on a day of its own, and most are then approved and filed, and removed, rejected
/// or counter-noticed days later, under one of two accounts per platform, as a busy legal team's
/// year would look; about one in twelve is a relisting of a case removed before it. Steps
/// that would fall after `today` are not taken. Returns the number of cases given a past.
pub async fn seed_history(
    store: &Store,
    weeks: u32,
    seed: u64,
    today: chrono::NaiveDate,
    mut progress: impl FnMut(usize),
) -> Result<usize> {
    use chrono::Days;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_ca5e);
    let span = u64::from(weeks.max(1)) * 7;
    let mut dated: Vec<(chrono::NaiveDate, i64, String)> = store
        .seeded_drafts()
        .await?
        .into_iter()
        .map(|(id, platform)| (today - Days::new(rng.random_range(0..span)), id, platform))
        .collect();
    dated.sort();
    let at = |day: chrono::NaiveDate, step: usize| format!("{day}T{:02}:00:00.000Z", 8 + step);
    // Cases removed so far, per platform: (day removed, id).
    let mut removed: std::collections::HashMap<String, Vec<(chrono::NaiveDate, i64)>> =
        std::collections::HashMap::new();
    let mut done = 0;
    for chunk in dated.chunks(1000) {
        let mut histories = Vec::with_capacity(chunk.len());
        for (day, id, platform) in chunk {
            let mut steps: Vec<(&'static str, &'static str, String)> = Vec::new();
            let mut when = *day;
            let mut step = |from: &'static str, to: &'static str, days: u64| {
                when = when + Days::new(days);
                if when > today {
                    return false;
                }
                steps.push((from, to, at(when, steps.len() + 1)));
                true
            };
            let r: f64 = rng.random();
            let mut removed_on = None;
            if r < 0.12 {
                // Still waiting for review.
            } else if r < 0.17 {
                step("draft", "rejected", rng.random_range(0..3));
            } else if step("draft", "approved", rng.random_range(0..2))
                && step("approved", "filed", rng.random_range(0..3))
            {
                let r: f64 = rng.random();
                if r < 0.80 {
                    if step("filed", "removed", rng.random_range(1..21)) {
                        removed_on = Some(when);
                    }
                } else if r < 0.85 {
                    step("filed", "rejected", rng.random_range(2..10));
                } else if r < 0.90
                    && step("filed", "counter_noticed", rng.random_range(3..15))
                    && rng.random_bool(0.5)
                    && step("counter_noticed", "removed", rng.random_range(5..30))
                {
                    removed_on = Some(when);
                }
            }
            let earlier = removed.get(platform.as_str()).and_then(|cases| {
                let before: Vec<i64> = cases
                    .iter()
                    .rev()
                    .filter(|(d, _)| d < day)
                    .take(50)
                    .map(|c| c.1)
                    .collect();
                (!before.is_empty() && rng.random_bool(0.08))
                    .then(|| before[rng.random_range(0..before.len())])
            });
            if let Some(d) = removed_on {
                removed.entry(platform.clone()).or_default().push((d, *id));
            }
            histories.push(crate::store::SeededHistory {
                notice_id: *id,
                detected_at: at(*day, 0),
                account: if rng.random_bool(0.7) {
                    format!("{platform}-main")
                } else {
                    format!("{platform}-second")
                },
                steps,
                relisted_from: earlier,
            });
        }
        store.write_seeded_histories(&histories).await?;
        done += chunk.len();
        progress(done);
    }
    Ok(done)
}
