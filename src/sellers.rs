//! Seller networks: shops that look like one operation, linked by what they share. Two shops
//! are linked when they carry the same platform seller id under different names, when their
//! names reduce to the same stem (`潮流前线小店`, `潮流前线旗舰店`), when their listings show
//! the same product photo, or when a relisting ships from the same place at the same price as
//! another shop's listing. Every link says which of these it is and what was shared. Built
//! from the flagged listings each time it is asked for, so it follows the data as it changes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

use crate::chart::{self, GraphEdge, GraphNode};
use crate::store::{SellerListing, Store, StoreError};

/// Photos this close (in differing bits of the 64-bit perceptual hash) are the same photo.
const SAME_PHOTO_BITS: u32 = 3;

/// Name endings shops add to the part that names the operation; longest first.
const SHOP_WORDS: &[&str] = &[
    "官方旗舰店",
    "品牌旗舰店",
    "旗舰店",
    "专卖店",
    "专营店",
    "官方店",
    "直营店",
    "直销店",
    "体验店",
    "精品店",
    "折扣店",
    "工厂店",
    "小店",
    "店铺",
    "商城",
    "商行",
    "工作室",
    "网店",
    "直销",
    "批发",
    "的店",
    "店",
    "flagshipstore",
    "officialstore",
    "store",
    "shop",
    "outlet",
    "official",
];

/// Why two shops are linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// One platform seller id behind two shop names.
    SellerId,
    /// Names that reduce to the same stem.
    NameStem,
    /// The same product photo.
    SamePhoto,
    /// A relisting shipping from the same place at the same price.
    ShipFromPrice,
}

impl Signal {
    pub const ALL: [Signal; 4] = [
        Signal::SellerId,
        Signal::NameStem,
        Signal::SamePhoto,
        Signal::ShipFromPrice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::SellerId => "seller id",
            Signal::NameStem => "shop-name stem",
            Signal::SamePhoto => "same photo",
            Signal::ShipFromPrice => "ship-from and price",
        }
    }
}

/// A shop in a network, with what it sells and what came of its cases, in listings.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Shop {
    pub platform: String,
    pub seller: String,
    pub seller_ids: BTreeSet<String>,
    pub ships_from: BTreeSet<String>,
    pub brands: BTreeSet<String>,
    /// Flagged listings.
    pub listings: usize,
    /// Not yet filed: in no case, or in a draft or an approved one.
    pub open: usize,
    /// Filed and waiting for the platform.
    pub pending: usize,
    pub removed: usize,
    pub rejected: usize,
    pub counter_noticed: usize,
    /// Drafted as relistings of earlier cases.
    pub relisted: usize,
}

/// Two shops (indexes into the network's shops) and why they are linked.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Link {
    pub a: usize,
    pub b: usize,
    pub signal: Signal,
    /// What they share, in words: the id, the stem, the place and price, the listings.
    pub detail: String,
}

/// Shops linked into one network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Network {
    /// Stable while the network's first shop stays in it: a hash of that shop's key.
    pub id: String,
    pub shops: Vec<Shop>,
    pub links: Vec<Link>,
    /// The matches of its listings that are not yet filed, for drafting.
    pub open_matches: Vec<i64>,
}

impl Network {
    pub fn listings(&self) -> usize {
        self.shops.iter().map(|s| s.listings).sum()
    }

    pub fn open(&self) -> usize {
        self.open_matches.len()
    }

    pub fn removed(&self) -> usize {
        self.shops.iter().map(|s| s.removed).sum()
    }

    /// The kinds of link it has, in words.
    pub fn signals(&self) -> Vec<&'static str> {
        let kinds: BTreeSet<Signal> = self.links.iter().map(|l| l.signal).collect();
        kinds.into_iter().map(Signal::as_str).collect()
    }

    /// The network drawn as a graph: shops as nodes with their listing counts and case
    /// outcomes, links as lines in their signal's style.
    pub fn svg(&self, platform_name: &dyn Fn(&str) -> String) -> String {
        let nodes: Vec<GraphNode> = self
            .shops
            .iter()
            .map(|s| GraphNode {
                label: format!("{} · {}", s.seller, platform_name(&s.platform)),
                detail: format!(
                    "{} listing{}: {} open, {} removed{}",
                    s.listings,
                    if s.listings == 1 { "" } else { "s" },
                    s.open,
                    s.removed,
                    if s.relisted > 0 {
                        format!(", {} relisted", s.relisted)
                    } else {
                        String::new()
                    }
                ),
            })
            .collect();
        let edges: Vec<GraphEdge> = self
            .links
            .iter()
            .map(|l| GraphEdge {
                a: l.a,
                b: l.b,
                kind: Signal::ALL.iter().position(|s| *s == l.signal).unwrap_or(0),
                label: format!("{}: {}", l.signal.as_str(), l.detail),
            })
            .collect();
        let kinds = Signal::ALL.map(Signal::as_str);
        chart::graph(
            &format!("network-{}", self.id),
            &format!("Seller network {}: {} shops", self.id, self.shops.len()),
            &nodes,
            &edges,
            &kinds,
        )
    }
}

/// The part of a shop name that names the operation: normalised (NFKC, lower case), without
/// spaces, punctuation, trailing digits or the words shops add ("旗舰店", "store"). None when
/// too little is left to tell shops apart.
pub fn name_stem(name: &str) -> Option<String> {
    let mut s: String = name
        .nfkc()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect();
    loop {
        let before = s.len();
        s = s.trim_end_matches(|c: char| c.is_ascii_digit()).to_owned();
        if let Some(word) = SHOP_WORDS.iter().find(|w| s.ends_with(*w)) {
            s.truncate(s.len() - word.len());
        }
        if s.len() == before {
            break;
        }
    }
    // Two Chinese characters or four Latin letters: less matches too many unrelated shops.
    let cjk = s.chars().filter(|c| !c.is_ascii()).count();
    (cjk >= 2 || s.chars().count() >= 4).then_some(s)
}

/// The networks among the stored flagged listings, largest first.
pub async fn load(store: &Store) -> Result<Vec<Network>, StoreError> {
    let listings = store.seller_listings().await?;
    let photos = store.flagged_photo_hashes().await?;
    Ok(networks(&listings, &photos))
}

type ShopKey = (String, String);

/// Builds the networks of the flagged listings' shops: groups of two or more linked shops,
/// largest first. `photos` are (listing id, perceptual hash) of their hashed photos.
pub fn networks(listings: &[SellerListing], photos: &[(i64, i64)]) -> Vec<Network> {
    let mut keys: BTreeMap<ShopKey, usize> = BTreeMap::new();
    for l in listings {
        let next = keys.len();
        keys.entry((l.platform.clone(), l.seller.trim().to_owned()))
            .or_insert(next);
    }
    let shop_of = |l: &SellerListing| keys[&(l.platform.clone(), l.seller.trim().to_owned())];
    let mut links: BTreeSet<(usize, usize, Signal, String)> = BTreeSet::new();
    let mut link = |a: usize, b: usize, signal: Signal, detail: String| {
        if a != b {
            links.insert((a.min(b), a.max(b), signal, detail));
        }
    };

    // One seller id, several names.
    let mut by_id: BTreeMap<(&str, &str), BTreeSet<usize>> = BTreeMap::new();
    for l in listings {
        if let Some(id) = l
            .seller_id
            .as_deref()
            .map(str::trim)
            .filter(|i| !i.is_empty())
        {
            by_id
                .entry((&l.platform, id))
                .or_default()
                .insert(shop_of(l));
        }
    }
    for ((platform, id), shops) in &by_id {
        chain(shops, |a, b| {
            link(a, b, Signal::SellerId, format!("{platform} seller id {id}"))
        });
    }

    // Names with one stem, on any platform.
    let mut by_stem: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    for (key, &i) in &keys {
        if let Some(stem) = name_stem(&key.1) {
            by_stem.entry(stem).or_default().insert(i);
        }
    }
    for (stem, shops) in &by_stem {
        chain(shops, |a, b| {
            link(a, b, Signal::NameStem, format!("names share “{stem}”"))
        });
    }

    // The same photo: hashes within SAME_PHOTO_BITS share one of four 16-bit quarters, so
    // only hashes in a common bucket are compared.
    let listing_shop: HashMap<i64, usize> = listings
        .iter()
        .map(|l| (l.listing_id, shop_of(l)))
        .collect();
    let mut buckets: HashMap<(u8, u16), Vec<(i64, u64)>> = HashMap::new();
    for &(listing, hash) in photos {
        if !listing_shop.contains_key(&listing) {
            continue;
        }
        let h = hash as u64;
        for q in 0..4u8 {
            buckets
                .entry((q, (h >> (16 * q)) as u16))
                .or_default()
                .push((listing, h));
        }
    }
    let mut photo_pairs: BTreeSet<(usize, usize, i64, i64)> = BTreeSet::new();
    for bucket in buckets.values() {
        for (i, &(la, ha)) in bucket.iter().enumerate() {
            for &(lb, hb) in &bucket[i + 1..] {
                let (sa, sb) = (listing_shop[&la], listing_shop[&lb]);
                if sa != sb && (ha ^ hb).count_ones() <= SAME_PHOTO_BITS {
                    let (a, b, x, y) = if sa < sb {
                        (sa, sb, la, lb)
                    } else {
                        (sb, sa, lb, la)
                    };
                    photo_pairs.insert((a, b, x, y));
                }
            }
        }
    }
    // One link per pair of shops, naming the first pair of listings found.
    let mut photo_links: BTreeMap<(usize, usize), (i64, i64)> = BTreeMap::new();
    for (a, b, x, y) in photo_pairs {
        photo_links.entry((a, b)).or_insert((x, y));
    }
    let item_of: HashMap<i64, &SellerListing> =
        listings.iter().map(|l| (l.listing_id, l)).collect();
    for ((a, b), (x, y)) in photo_links {
        link(
            a,
            b,
            Signal::SamePhoto,
            format!(
                "listings {} and {} show the same photo",
                item_of[&x].title_short(),
                item_of[&y].title_short()
            ),
        );
    }

    // A relisting from the same place at the same price as another shop's listing.
    let mut by_place: BTreeMap<(String, i64), Vec<&SellerListing>> = BTreeMap::new();
    for l in listings {
        if let (Some(place), Some(price)) = (
            l.ship_from
                .as_deref()
                .map(str::trim)
                .filter(|p| !p.is_empty()),
            l.price.filter(|p| *p > 0.0),
        ) {
            by_place
                .entry((place.to_owned(), (price * 100.0).round() as i64))
                .or_default()
                .push(l);
        }
    }
    for ((place, cents), group) in &by_place {
        for r in group.iter().filter(|l| l.relisted != 0) {
            for other in group {
                if shop_of(other) != shop_of(r) {
                    link(
                        shop_of(r),
                        shop_of(other),
                        Signal::ShipFromPrice,
                        format!(
                            "a relisting ships from {place} at ¥{:.2}, as it did",
                            *cents as f64 / 100.0
                        ),
                    );
                }
            }
        }
    }

    // Networks are the connected groups of two or more shops.
    let n = keys.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (a, b, _, _) in &links {
        let (ra, rb) = (root(&mut parent, *a), root(&mut parent, *b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    let key_of: Vec<&ShopKey> = {
        let mut v = vec![None; n];
        for (k, &i) in &keys {
            v[i] = Some(k);
        }
        v.into_iter().flatten().collect()
    };
    let mut out: Vec<Network> = groups
        .into_values()
        .filter(|members| members.len() >= 2)
        .map(|mut members| {
            members.sort_by_key(|&i| key_of[i]);
            let place: HashMap<usize, usize> =
                members.iter().enumerate().map(|(p, &i)| (i, p)).collect();
            let mut shops: Vec<Shop> = members
                .iter()
                .map(|&i| Shop {
                    platform: key_of[i].0.clone(),
                    seller: key_of[i].1.clone(),
                    ..Shop::default()
                })
                .collect();
            let mut open_matches = Vec::new();
            for l in listings {
                let Some(&p) = place.get(&shop_of(l)) else {
                    continue;
                };
                let s = &mut shops[p];
                s.listings += 1;
                s.brands.insert(l.brand.clone());
                if let Some(id) = l.seller_id.as_deref().filter(|i| !i.trim().is_empty()) {
                    s.seller_ids.insert(id.trim().to_owned());
                }
                if let Some(f) = l.ship_from.as_deref().filter(|f| !f.trim().is_empty()) {
                    s.ships_from.insert(f.trim().to_owned());
                }
                if l.relisted != 0 {
                    s.relisted += 1;
                }
                match l.notice_state.as_deref() {
                    None | Some("draft" | "approved") => {
                        s.open += 1;
                        open_matches.push(l.match_id);
                    }
                    Some("filed") => s.pending += 1,
                    Some("removed") => s.removed += 1,
                    Some("rejected") => s.rejected += 1,
                    Some("counter_noticed") => s.counter_noticed += 1,
                    Some(_) => {}
                }
            }
            let links = links
                .iter()
                .filter_map(|(a, b, signal, detail)| {
                    Some(Link {
                        a: *place.get(a)?,
                        b: *place.get(b)?,
                        signal: *signal,
                        detail: detail.clone(),
                    })
                })
                .collect();
            let first = key_of[members[0]];
            let digest = Sha256::digest(format!("{}\t{}", first.0, first.1).as_bytes());
            Network {
                id: hex::encode(&digest[..5]),
                shops,
                links,
                open_matches,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.shops
            .len()
            .cmp(&a.shops.len())
            .then(b.listings().cmp(&a.listings()))
            .then(a.id.cmp(&b.id))
    });
    out
}

/// Links each member of a set to the next: enough to join them into one network without a
/// link for every pair.
fn chain(shops: &BTreeSet<usize>, mut link: impl FnMut(usize, usize)) {
    let v: Vec<usize> = shops.iter().copied().collect();
    for w in v.windows(2) {
        link(w[0], w[1]);
    }
}

impl SellerListing {
    /// The item id and the start of the title, for a link's explanation.
    fn title_short(&self) -> String {
        let title: String = self.title.chars().take(24).collect();
        format!("“{title}”")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_drop_what_shops_add() {
        assert_eq!(name_stem("潮流前线小店").as_deref(), Some("潮流前线"));
        assert_eq!(name_stem("潮流前线 旗舰店 2").as_deref(), Some("潮流前线"));
        assert_eq!(name_stem("Trend-Line Store").as_deref(), Some("trendline"));
        assert_eq!(
            name_stem("ＴＲＥＮＤＬＩＮＥ shop88").as_deref(),
            Some("trendline")
        );
        // Too little left to tell shops apart.
        assert_eq!(name_stem("A店"), None);
        assert_eq!(name_stem("旗舰店"), None);
        assert_eq!(name_stem("abc store"), None);
    }
}
