//! The matching engine: from a listing to an explained verdict.
//!
//! A [`Matcher`] is built once from the brand registry and then shared by every thread:
//! [`Matcher::check`] is pure (no I/O) and turns an [`Item`] (title, shop, price, category)
//! into a [`Verdict`] (infringing / suspect / clear, a score, the brand and mark matched,
//! and the reasons, each with a stable code and a sentence for a human).
//!
//! Architecture: `normalize` folds text into searchable forms, `index` finds marks in it,
//! `context` holds the word tables from `data/`, and this file weighs the evidence with the
//! numbers in `weights`.
//! `jsonl` and `eval` are the offline edges used by `markwatch match` and `markwatch eval`.

mod context;
mod eval;
mod images;
mod index;
mod jsonl;
mod normalize;
mod weights;

use std::collections::HashMap;

use crate::model::{AllowKind, AllowRule, Brand, ImageKind, Listing, RejectReason};
use crate::model::{Outcome, Reason, ReasonCode, Verdict};
use context::{Context, Side};
use images::{ImageHit, ImageIndex, RefHash};
use index::{Hit, HitKind, MarkIndex};
use normalize::{Analysed, Normalizer, shop_key};
use weights as w;

pub use eval::{evaluate, read_labels};
pub(crate) use jsonl::ListingRecord;
pub use jsonl::{MatchFileError, read_listings, run_jsonl};
pub(crate) use normalize::is_han;

/// What the matcher needs to know about a listing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Item<'a> {
    pub title: &'a str,
    /// Shop or seller name; empty if unknown.
    pub seller: &'a str,
    /// Lowest displayed price, in `currency`.
    pub price: Option<f64>,
    /// ISO 4217 code of `price`; empty means CNY.
    pub currency: &'a str,
    /// Category breadcrumb, e.g. "运动户外 > 运动鞋".
    pub category: Option<&'a str>,
    pub platform: &'a str,
    /// The page marks the shop as the platform's own (京东自营, sold by Amazon).
    pub self_operated: bool,
    /// Perceptual hashes of the listing's photos fetched so far.
    pub images: &'a [u64],
}

impl<'a> From<&'a Listing> for Item<'a> {
    fn from(l: &'a Listing) -> Self {
        Item {
            title: &l.title,
            seller: l.seller.as_deref().unwrap_or(""),
            price: l.price,
            currency: &l.currency,
            category: l.category.as_deref(),
            platform: &l.platform,
            self_operated: l.self_operated,
            images: &l.image_hashes,
        }
    }
}

/// What a matcher is built with besides the registry.
#[derive(Debug, Clone, Default)]
pub struct MatchSettings {
    /// CNY per unit of other currencies ("USD" -> 7.2). A price in a currency that is
    /// neither CNY nor here is not compared with reference prices at all.
    pub rates: HashMap<String, f64>,
    /// Reviewers' allow rules: a listing one matches is clear for that brand.
    pub allow: Vec<AllowRule>,
}

/// Errors building a matcher.
#[derive(Debug, thiserror::Error)]
pub enum MatcherError {
    /// A brand in the registry cannot be indexed.
    #[error("brand `{brand}`: {message}")]
    Registry { brand: String, message: String },
    /// A compiled-in data table is malformed.
    #[error("matcher data file {file}, line {line}: {message}")]
    Data {
        file: &'static str,
        line: usize,
        message: String,
    },
    /// The traditional-to-simplified converter could not be loaded.
    #[error("loading the OpenCC converter: {0}")]
    Opencc(String),
    /// The search automaton could not be built.
    #[error("building the mark index: {0}")]
    Index(String),
}

/// What the matcher keeps of a brand besides its marks.
struct BrandInfo {
    name: String,
    reference_price: Option<f64>,
    /// Price floors by goods group, checked before `reference_price`.
    floors: Vec<Floor>,
    /// Shop names, normalised by `shop_key`.
    authorised: Vec<String>,
    well_known: bool,
    watch_unauthorised: bool,
    trust_official: bool,
    /// Reviewers' allowed shops (`shop_key` forms) and title word sets (normalised).
    allowed_shops: Vec<(String, RejectReason)>,
    allowed_titles: Vec<(Vec<String>, RejectReason)>,
    /// Reference images: path and kind, for the reasons.
    images: Vec<(String, ImageKind)>,
}

/// The lowest genuine price of one group of a brand's goods.
struct Floor {
    /// Normalised like titles, so 耳機 finds 耳机.
    words: Vec<String>,
    classes: Vec<u8>,
    min: f64,
}

/// The registry, indexed for matching. Build once, share by reference across threads.
pub struct Matcher {
    brands: Vec<BrandInfo>,
    index: MarkIndex,
    norm: Normalizer,
    context: Context,
    /// CNY per unit, by upper-case ISO 4217 code.
    rates: HashMap<String, f64>,
    /// Per entry of the index: the mark is also an everyday word or name (苹果, Hermes).
    everyday: Vec<bool>,
    /// Brands' reference images by perceptual hash.
    image_index: ImageIndex,
}

/// The evidence about one brand in one listing.
struct Candidate {
    brand: usize,
    title: Vec<Hit>,
    seller: Vec<Hit>,
    /// The nearest of the brand's reference images to one of the listing's photos.
    image: Option<ImageHit>,
}

/// What the listing says regardless of brand.
struct ListingContext<'t> {
    counterfeit: Vec<String>,
    risk: Vec<String>,
    trusted_retailer: bool,
    original: Option<String>,
    parallel: Option<String>,
    /// Compatibility terms in the title, as (term, side, first char, end char).
    compatibility: Vec<(String, Side, u32, u32)>,
    /// Accessory words in the title, as (term, first char, end char), and whether the
    /// category names an accessory.
    accessory: Vec<(String, u32, u32)>,
    accessory_category: Option<String>,
    classes: Option<(Vec<u8>, String)>,
    /// The category and the title, normalised, where price groups' words are looked for.
    goods_text: String,
    /// The shop is a platform's own store, by the page's flag or its name.
    platform_store: bool,
    /// The shop calls itself an official flagship store.
    flagship: bool,
    title: &'t str,
}

impl Matcher {
    /// Indexes the registry. Loading the script converter and the word segmenter takes a
    /// noticeable fraction of a second, so build one matcher and share it.
    pub fn new(brands: &[Brand]) -> Result<Matcher, MatcherError> {
        Self::with_settings(brands, &MatchSettings::default())
    }

    /// Indexes the registry with exchange rates and reviewers' allow rules.
    pub fn with_settings(
        brands: &[Brand],
        settings: &MatchSettings,
    ) -> Result<Matcher, MatcherError> {
        let norm = Normalizer::new()?;
        let context = Context::load()?;
        let index = MarkIndex::build(brands, &norm)?;
        let words = |text: &str| -> Vec<String> {
            norm.analyse(text)
                .simple
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        let mut infos: Vec<BrandInfo> = brands
            .iter()
            .map(|b| BrandInfo {
                name: b.name.clone(),
                reference_price: b.reference_price_cny.filter(|p| p.is_finite() && *p > 0.0),
                floors: b
                    .prices
                    .iter()
                    .filter(|f| f.min_price_cny.is_finite() && f.min_price_cny > 0.0)
                    .map(|f| Floor {
                        words: f
                            .words
                            .iter()
                            .map(|w| norm.analyse(w.trim()).simple)
                            .filter(|w| !w.is_empty())
                            .collect(),
                        classes: f.classes.clone(),
                        min: f.min_price_cny,
                    })
                    .collect(),
                authorised: b.authorized_sellers.iter().map(|s| shop_key(s)).collect(),
                well_known: b.well_known,
                watch_unauthorised: b.watch_unauthorised,
                trust_official: b.trust_official_stores,
                allowed_shops: Vec::new(),
                allowed_titles: Vec::new(),
                images: b.images.iter().map(|i| (i.path.clone(), i.kind)).collect(),
            })
            .collect();
        let mut image_index = ImageIndex::default();
        for (b, brand) in brands.iter().enumerate() {
            for (k, image) in brand.images.iter().enumerate() {
                // The variants after the first half are mirrored (see `ImageHasher::reference`).
                let half = image.hashes.len() / 2;
                for (v, &hash) in image.hashes.iter().enumerate() {
                    let r = RefHash {
                        brand: b,
                        image: k,
                        mirrored: v >= half && v > 0,
                    };
                    image_index.push(hash, r);
                }
            }
        }
        let by_name: HashMap<&str, usize> = brands
            .iter()
            .enumerate()
            .map(|(i, b)| (b.name.as_str(), i))
            .collect();
        // A rule for a brand no longer in the registry has nothing to clear.
        for rule in &settings.allow {
            let Some(&i) = by_name.get(rule.brand.as_str()) else {
                continue;
            };
            match rule.kind {
                AllowKind::Seller => {
                    let shop = shop_key(&rule.pattern);
                    if !shop.is_empty() {
                        infos[i].allowed_shops.push((shop, rule.reason));
                    }
                }
                AllowKind::Title => {
                    let w = words(&rule.pattern);
                    if !w.is_empty() {
                        infos[i].allowed_titles.push((w, rule.reason));
                    }
                }
            }
        }
        let everyday = index
            .entries
            .iter()
            .map(|e| is_everyday(e, &context))
            .collect();
        let rates = settings
            .rates
            .iter()
            .filter(|(_, r)| r.is_finite() && **r > 0.0)
            .map(|(code, r)| (code.trim().to_ascii_uppercase(), *r))
            .collect();
        Ok(Matcher {
            brands: infos,
            index,
            image_index,
            norm,
            context,
            rates,
            everyday,
        })
    }

    /// The price in CNY, if it can be compared: CNY, or a currency with a rate.
    fn cny(&self, item: &Item) -> Option<(f64, Option<String>)> {
        let price = item.price.filter(|p| p.is_finite() && *p >= 0.0)?;
        let code = item.currency.trim();
        if code.is_empty() || code.eq_ignore_ascii_case("CNY") {
            return Some((price, None));
        }
        let code = code.to_ascii_uppercase();
        let rate = self.rates.get(&code)?;
        Some((price * rate, Some(format!("{price} {code}"))))
    }

    /// Judges one listing.
    pub fn check(&self, item: &Item) -> Verdict {
        self.check_brand(item, None)
    }

    /// Judges `item` for one brand only (a domain's home page is judged for the brand whose
    /// name the domain copies): other brands' hits are left out.
    pub(crate) fn check_for(&self, item: &Item, brand: &str) -> Verdict {
        self.check_brand(item, Some(brand))
    }

    fn check_brand(&self, item: &Item, only: Option<&str>) -> Verdict {
        let title = self.norm.analyse(item.title);
        let seller = self.norm.analyse(item.seller);
        let mut title_hits = self.index.find(&title, &self.context, &self.norm);
        // 戴森球 is a game and 潘多拉魔盒 a myth: a mark inside such a phrase is no mark.
        // Most titles have no hit, so only those with one are searched for the phrases.
        if !title_hits.is_empty() {
            let traps: Vec<(u32, u32)> = self
                .context
                .traps
                .find_all(&title.simple)
                .iter()
                .map(|f| (title.char_at(f.start), title.char_at(f.end)))
                .collect();
            title_hits.retain(|h| !traps.iter().any(|&(a, b)| a <= h.first && h.end <= b));
        }
        let seller_hits = self.index.find(&seller, &self.context, &self.norm);
        let image_hits = self.image_hits(item.images);
        if title_hits.is_empty() && seller_hits.is_empty() && image_hits.is_empty() {
            return Verdict::clear();
        }

        let mut candidates: Vec<Candidate> = Vec::new();
        for (hits, in_title) in [(&title_hits, true), (&seller_hits, false)] {
            for &hit in hits {
                let brand = self.index.entries[hit.entry].brand;
                let pos = match candidates.iter().position(|c| c.brand == brand) {
                    Some(p) => p,
                    None => {
                        candidates.push(Candidate {
                            brand,
                            title: Vec::new(),
                            seller: Vec::new(),
                            image: None,
                        });
                        candidates.len() - 1
                    }
                };
                let c = &mut candidates[pos];
                if in_title {
                    &mut c.title
                } else {
                    &mut c.seller
                }
                .push(hit);
            }
        }
        for hit in image_hits {
            match candidates.iter_mut().find(|c| c.brand == hit.brand) {
                Some(c) => c.image = Some(hit),
                None => candidates.push(Candidate {
                    brand: hit.brand,
                    title: Vec::new(),
                    seller: Vec::new(),
                    image: Some(hit),
                }),
            }
        }
        if let Some(name) = only {
            candidates.retain(|c| self.brands[c.brand].name == name);
        }
        let context = self.listing_context(item, &title, &seller);
        candidates
            .iter()
            .map(|c| {
                if c.title.is_empty() && c.seller.is_empty() {
                    self.judge_image_only(c, item, &title, &context)
                } else {
                    self.judge(c, item, &title, &seller, &context)
                }
            })
            .max_by(|a, b| a.score.total_cmp(&b.score))
            .unwrap_or_else(Verdict::clear)
    }

    fn listing_context<'t>(
        &self,
        item: &'t Item,
        title: &Analysed,
        seller: &Analysed,
    ) -> ListingContext<'t> {
        let cx = &self.context;
        // Only the title: shop names carry place names such as 莆田.
        let mut counterfeit: Vec<String> = Vec::new();
        for f in cx.counterfeit.find_all(&title.simple) {
            let term = cx.counterfeit.term(f.term);
            if !counterfeit.iter().any(|t| t == term) {
                counterfeit.push(term.to_string());
            }
        }
        let mut risk: Vec<String> = Vec::new();
        for f in cx.risk.find_all(&title.simple) {
            let term = cx.risk.term(f.term);
            if !risk.iter().any(|t| t == term) {
                risk.push(term.to_string());
            }
        }
        let shop = shop_key(item.seller);
        let trusted_retailer = !shop.is_empty() && cx.trusted.contains(&shop);
        let original = cx
            .original
            .find_first(&title.simple)
            .map(|f| title.simple[f.start..f.end].to_string());
        let parallel = [&title.simple, &seller.simple].into_iter().find_map(|t| {
            cx.parallel
                .find_first(t)
                .map(|f| t[f.start..f.end].to_string())
        });
        let compatibility = cx
            .compatibility
            .find_all(&title.simple)
            .into_iter()
            .map(|f| {
                (
                    cx.compatibility.term(f.term).to_string(),
                    cx.compatibility_side[f.term],
                    title.char_at(f.start),
                    title.char_at(f.end),
                )
            })
            .collect();
        // The category is the platform's own statement of the goods; the title's goods
        // words count when the category names none.
        let category = item.category.map(|c| self.norm.analyse(c).simple);
        let classes = category
            .as_deref()
            .and_then(|c| cx.classes_in(c))
            .or_else(|| cx.classes_in(&title.simple));
        let accessory = cx
            .accessory
            .find_all(&title.simple)
            .into_iter()
            .map(|f| {
                (
                    cx.accessory.term(f.term).to_string(),
                    title.char_at(f.start),
                    title.char_at(f.end),
                )
            })
            .collect();
        // The breadcrumb's last step names the goods (手机配件 > 手机壳).
        let accessory_category = category.as_deref().and_then(|c| {
            let last = c.rsplit('>').next().unwrap_or(c);
            cx.accessory
                .find_first(last)
                .map(|f| last[f.start..f.end].to_string())
        });
        let goods_text = match &category {
            Some(c) => format!("{c} {}", title.simple),
            None => title.simple.clone(),
        };
        ListingContext {
            counterfeit,
            risk,
            trusted_retailer,
            original,
            parallel,
            compatibility,
            accessory,
            accessory_category,
            classes,
            goods_text,
            platform_store: item.self_operated || cx.is_platform_store(&shop),
            flagship: cx.is_flagship(&shop),
            title: item.title,
        }
    }

    fn judge(
        &self,
        c: &Candidate,
        item: &Item,
        title: &Analysed,
        seller: &Analysed,
        cx: &ListingContext,
    ) -> Verdict {
        let brand = &self.brands[c.brand];
        let entries = &self.index.entries;
        let strongest = |hits: &[Hit]| {
            hits.iter()
                .copied()
                .max_by(|a, b| a.kind.strength().total_cmp(&b.kind.strength()))
        };
        let best_title = strongest(&c.title);
        let best_seller = strongest(&c.seller);
        let Some((main, mut tally)) =
            self.weigh_mark(best_title, best_seller, item, title, seller, cx)
        else {
            return Verdict::clear();
        };
        let main_entry = &entries[main.entry];

        // A nickname alone (勾子 is also a hook) says little: only wording that claims a
        // copy or an original makes it a lead, whatever the price.
        let alias_only = main.kind == HitKind::Alias;
        weigh_wording(cx, &mut tally);
        if let Some(hit) = c.image {
            tally.score += w::IMAGE_WITH_MARK;
            tally.reasons.push(self.image_reason(brand, hit));
        }
        let mut mark_classes: Vec<u8> = c
            .title
            .iter()
            .chain(&c.seller)
            .flat_map(|h| entries[h.entry].classes.iter().copied())
            .collect();
        mark_classes.sort_unstable();
        mark_classes.dedup();
        let in_class = cx
            .classes
            .as_ref()
            .map(|(classes, _)| classes.iter().any(|k| mark_classes.contains(k)));
        // A handbag's price says nothing about a cushion carrying the handbag's mark.
        let genuine = if in_class == Some(false) {
            None
        } else {
            self.weigh_price(brand, item, cx, &mut tally)
        };

        // What follows mostly explains the hit away, capping the score.
        let Tally {
            mut score,
            mut reasons,
        } = tally;
        // Copy wording or an originality claim: the listing is about the brand's goods, not
        // about what they fit or an everyday word.
        let claims = !cx.counterfeit.is_empty() || cx.original.is_some();
        let disguised = c.title.iter().any(|h| h.kind.is_disguised());
        // A reason below has already explained the hit away.
        let mut explained = false;

        if let Some(term) = &cx.parallel {
            score += w::PARALLEL_IMPORT;
            // Goods bought abroad may be genuine: at most suspect, unless the listing also
            // disguises the mark or calls itself a copy.
            if cx.counterfeit.is_empty() && main.kind.is_plain() {
                score = score.min(w::PARALLEL_IMPORT_CAP);
            }
            reasons.push(Reason {
                code: ReasonCode::ParallelImport,
                detail: format!(
                    "\"{term}\" says the goods were bought abroad and resold outside {}'s \
                     channels",
                    brand.name
                ),
            });
        }

        // A disguised mark (Airpobs, N1KE) is not how one names what a product fits.
        if !claims
            && !disguised
            && let Some(term) = self.compatibility_near(&c.title, title, cx, in_class)
        {
            score = score.min(w::COMPATIBILITY_CAP);
            explained = true;
            reasons.push(Reason {
                code: ReasonCode::CompatibilityUse,
                detail: format!(
                    "\"{term}\" uses {} to say what the product fits, not who made it",
                    brand.name
                ),
            });
        }

        // 苹果 is a fruit and Hermes a god before they are marks: such a word counts only on
        // the mark's goods, or when the listing itself says it means the brand.
        let everyday = self.everyday[main.entry]
            && matches!(
                main.kind,
                HitKind::Exact | HitKind::Chinese | HitKind::Traditional | HitKind::Pinyin
            )
            && !claims;
        match (&cx.classes, in_class) {
            // A nickname (勾子, a hook) is not the well-known mark itself.
            (Some((classes, word)), Some(false))
                if brand.well_known && !everyday && !main_entry.alias =>
            {
                if !explained {
                    score = score.max(w::SUSPECT_FROM);
                }
                reasons.push(Reason {
                    code: ReasonCode::WellKnownOtherGoods,
                    detail: format!(
                        "the goods (\"{word}\": class {}) are outside the classes {} is \
                         registered for ({}), but it is a well-known mark, protected on other \
                         goods too",
                        join(classes),
                        main_entry.display,
                        join(&mark_classes)
                    ),
                });
            }
            (Some((classes, word)), Some(false)) => {
                score = score.min(w::CLASS_MISMATCH_CAP);
                explained = true;
                reasons.push(Reason {
                    code: ReasonCode::ClassMismatch,
                    detail: format!(
                        "the goods (\"{word}\": class {}) are outside the classes {} is \
                         registered for ({})",
                        join(classes),
                        main_entry.display,
                        join(&mark_classes)
                    ),
                });
            }
            (None, _) if everyday => {
                score = score.min(w::EVERYDAY_WORD_CAP);
                explained = true;
                reasons.push(Reason {
                    code: ReasonCode::EverydayWord,
                    detail: format!(
                        "\"{}\" is also an everyday word or name, and nothing places the goods \
                         in its classes ({})",
                        main_entry.display,
                        join(&mark_classes)
                    ),
                });
            }
            _ => {}
        }

        let shop = shop_key(item.seller);
        // A flagship store is official only for the brand its name carries.
        let own_flagship = cx.flagship
            && c.seller
                .iter()
                .any(|h| !entries[h.entry].alias && entries[h.entry].brand == c.brand);
        // The brand's own shop, or a large retailer: what else the listing shows (the shop
        // name, a sale price) explains nothing, so only the hit and the shop are given.
        if let Some(why) = own_channel(brand, item, &shop, cx, own_flagship) {
            cleared_by(&mut score, &mut reasons, why);
        } else if cx.trusted_retailer && cx.counterfeit.is_empty() && cx.risk.is_empty() {
            score = score.min(w::TRUSTED_RETAILER_CAP);
            reasons.truncate(1);
            reasons.push(Reason {
                code: ReasonCode::TrustedRetailer,
                detail: format!(
                    "\"{}\" is a large retailer's shop selling genuine goods",
                    item.seller.trim()
                ),
            });
        } else if let Some(g) = genuine
            && cx.counterfeit.is_empty()
            && cx.risk.is_empty()
            && main.kind.is_plain()
            && best_seller.is_none()
            && !explained
        {
            if brand.watch_unauthorised && in_class == Some(true) {
                // Genuine goods, most likely, but not through the brand's channel.
                score = score.clamp(w::SUSPECT_FROM, w::UNAUTHORISED_CAP);
                reasons.push(Reason {
                    code: ReasonCode::UnauthorisedSeller,
                    detail: format!(
                        "{} at {}, a genuine price, from \"{}\", a shop that is neither \
                         authorised by {} nor official",
                        main_entry.display,
                        g.price,
                        item.seller.trim(),
                        brand.name
                    ),
                });
            } else {
                score -= w::GENUINE_PRICE;
                reasons.push(Reason {
                    code: ReasonCode::GenuinePrice,
                    detail: format!(
                        "price {} is in line with {}'s reference price of {} CNY{}, as a \
                         reseller of genuine goods would charge",
                        g.price, brand.name, g.reference, g.group
                    ),
                });
            }
        }

        if alias_only && !claims {
            score = score.min(w::ALIAS_ONLY_CAP);
        }

        if let Some(reason) = self.allowed(brand, &shop, title) {
            cleared_by(&mut score, &mut reasons, reason);
        }

        let score = score.clamp(0.0, 1.0);
        Verdict {
            verdict: outcome(score),
            score,
            brand: Some(brand.name.clone()),
            mark: (!main_entry.alias).then(|| main_entry.display.clone()),
            reasons,
        }
    }

    /// The nearest reference image per brand within the matching distance of any photo.
    fn image_hits(&self, photos: &[u64]) -> Vec<ImageHit> {
        if self.image_index.len() == 0 {
            return Vec::new();
        }
        let mut hits: Vec<ImageHit> = Vec::new();
        for &photo in photos {
            for hit in self.image_index.near(photo, w::IMAGE_MAX_DISTANCE) {
                match hits.iter_mut().find(|h| h.brand == hit.brand) {
                    Some(h) if h.distance > hit.distance => *h = hit,
                    Some(_) => {}
                    None => hits.push(hit),
                }
            }
        }
        hits
    }

    fn image_reason(&self, brand: &BrandInfo, hit: ImageHit) -> Reason {
        let (path, kind) = &brand.images[hit.image];
        let kind = match kind {
            ImageKind::Product => "product photo",
            ImageKind::Logo => "logo",
        };
        Reason {
            code: ReasonCode::ImageMatch,
            detail: format!(
                "the listing's photo is {}'s {kind} {path}{}, at distance {} of 64",
                brand.name,
                if hit.mirrored { ", mirrored" } else { "" },
                hit.distance
            ),
        }
    }

    /// A listing whose only tie to the brand is its photo: counterfeiters keep the brand out of
    /// the title, not its pictures. Suspect on its own, infringing with copy wording or a price
    /// far below the brand's.
    fn judge_image_only(
        &self,
        c: &Candidate,
        item: &Item,
        title: &Analysed,
        cx: &ListingContext,
    ) -> Verdict {
        let Some(hit) = c.image else {
            return Verdict::clear();
        };
        let brand = &self.brands[c.brand];
        let mut tally = Tally {
            score: w::IMAGE_ONLY,
            reasons: vec![self.image_reason(brand, hit)],
        };
        weigh_wording(cx, &mut tally);
        self.weigh_price(brand, item, cx, &mut tally);
        let Tally {
            mut score,
            mut reasons,
        } = tally;
        let shop = shop_key(item.seller);
        if let Some(why) =
            own_channel(brand, item, &shop, cx, false).or_else(|| self.allowed(brand, &shop, title))
        {
            cleared_by(&mut score, &mut reasons, why);
        }
        let score = score.clamp(0.0, 1.0);
        Verdict {
            verdict: outcome(score),
            score,
            brand: Some(brand.name.clone()),
            mark: None,
            reasons,
        }
    }

    /// A reviewer's allow rule for this brand that the shop or the title matches.
    fn allowed(&self, brand: &BrandInfo, shop: &str, title: &Analysed) -> Option<Reason> {
        if let Some((_, why)) = brand.allowed_shops.iter().find(|(s, _)| s == shop) {
            return Some(Reason {
                code: ReasonCode::AllowedByReviewer,
                detail: format!(
                    "a reviewer allowed this shop for {} ({})",
                    brand.name,
                    reject_phrase(*why)
                ),
            });
        }
        let (words, why) = brand
            .allowed_titles
            .iter()
            .find(|(words, _)| words.iter().all(|w| title.simple.contains(w.as_str())))?;
        Some(Reason {
            code: ReasonCode::AllowedByReviewer,
            detail: format!(
                "a reviewer allowed titles with \"{}\" for {} ({})",
                words.join(" "),
                brand.name,
                reject_phrase(*why)
            ),
        })
    }

    /// The mark itself: the strongest hit in the title, else in the shop name, and the
    /// score it starts from. `None` without a hit.
    fn weigh_mark(
        &self,
        best_title: Option<Hit>,
        best_seller: Option<Hit>,
        item: &Item,
        title: &Analysed,
        seller: &Analysed,
        cx: &ListingContext,
    ) -> Option<(Hit, Tally)> {
        let mut reasons = Vec::new();
        let mut score;
        let main = match (best_title, best_seller) {
            (Some(t), _) => {
                score = t.kind.strength();
                reasons.push(self.hit_reason(t, title, cx.title));
                if let Some(s) = best_seller {
                    score += w::SELLER_ALSO_NAMES;
                    reasons.push(self.seller_reason(s, seller, item.seller));
                }
                t
            }
            (None, Some(s)) => {
                // The shop trades under the brand's name: a use of the mark by itself.
                score = if s.kind == HitKind::Alias {
                    w::SELLER_ONLY_ALIAS
                } else {
                    w::SELLER_ONLY_MARK
                };
                reasons.push(self.seller_reason(s, seller, item.seller));
                s
            }
            (None, None) => return None,
        };
        Some((main, Tally { score, reasons }))
    }

    /// The reference price for these goods: the lowest floor of the brand's price groups
    /// the listing falls in, else the brand-wide figure, with the group's word or class.
    fn reference(&self, brand: &BrandInfo, cx: &ListingContext) -> Option<(f64, String)> {
        let classes = cx
            .classes
            .as_ref()
            .map(|(c, _)| c.as_slice())
            .unwrap_or(&[]);
        brand
            .floors
            .iter()
            .filter_map(|f| {
                let word = f.words.iter().find(|w| cx.goods_text.contains(w.as_str()));
                let class = f.classes.iter().find(|k| classes.contains(k));
                match (word, class) {
                    (Some(w), _) => Some((f.min, format!(" for \"{w}\""))),
                    (None, Some(k)) => Some((f.min, format!(" for class {k} goods"))),
                    (None, None) => None,
                }
            })
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .or_else(|| brand.reference_price.map(|r| (r, String::new())))
    }

    /// The price against the reference price for these goods: a claim to be original far
    /// below it, or a price far below it. A price a reseller of genuine goods would charge
    /// is returned for `judge` to weigh once it knows the shop.
    fn weigh_price(
        &self,
        brand: &BrandInfo,
        item: &Item,
        cx: &ListingContext,
        tally: &mut Tally,
    ) -> Option<GenuinePrice> {
        let (cny, shown) = self.cny(item)?;
        let (reference, group) = self.reference(brand, cx)?;
        let ratio = cny / reference;
        let price = match shown {
            Some(shown) => format!("{shown} ({cny:.0} CNY)"),
            None => format!("{cny} CNY"),
        };
        let below = ((1.0 - ratio) * 100.0).round();
        if let Some(claim) = &cx.original
            && ratio <= w::ORIGINAL_CLAIM_MAX_RATIO
        {
            tally.score += w::ORIGINAL_CLAIM;
            tally.reasons.push(Reason {
                code: ReasonCode::OriginalClaim,
                detail: format!(
                    "claims to be original (\"{claim}\") at {price}, {below}% below \
                     {}'s reference price of {reference} CNY{group}",
                    brand.name
                ),
            });
        }
        if ratio < w::CHEAP_RATIO {
            // Below a fifth of the lowest genuine price, hardly anything is genuine.
            tally.score += if ratio < w::VERY_CHEAP_RATIO {
                w::VERY_CHEAP
            } else {
                w::CHEAP
            };
            tally.reasons.push(Reason {
                code: ReasonCode::PriceBelowReference,
                detail: format!(
                    "price {price} is {below}% below {}'s reference price of \
                     {reference} CNY{group}",
                    brand.name
                ),
            });
            None
        } else if ratio >= w::GENUINE_PRICE_MIN_RATIO {
            Some(GenuinePrice {
                price,
                reference,
                group,
            })
        } else {
            None
        }
    }

    /// A compatibility term right next to one of the brand's hits in the title, or, for
    /// goods not outside the mark's classes, an accessory the brand's name qualifies
    /// (苹果ipad保护套, 索尼 PS5 手柄 保护壳) or a category that names an accessory.
    fn compatibility_near(
        &self,
        hits: &[Hit],
        title: &Analysed,
        cx: &ListingContext,
        in_class: Option<bool>,
    ) -> Option<String> {
        // Up to this many characters may stand between, of which at most two Chinese
        // ("适用于华为苹果", "iPhone 15 Pro Max专用").
        const GAP: u32 = 12;
        // An accessory word may stand further off, past a model name ("苹果 iPhone 15 Pro
        // Max 硅胶 手机壳"), but not across the whole title.
        const ACCESSORY_GAP: u32 = 24;
        const ACCESSORY_HAN: usize = 8;
        let han_between = |from: u32, to: u32| {
            (from..to)
                .filter(|&i| title.chars[i as usize].flags.han)
                .count()
        };
        let gap_ok =
            |from: u32, to: u32| to >= from && to - from <= GAP && han_between(from, to) <= 2;
        let near = |from: u32, to: u32| {
            to >= from && to - from <= ACCESSORY_GAP && han_between(from, to) <= ACCESSORY_HAN
        };
        // 送鞋带, 赠保护套: a gift with the goods, not the goods.
        let gift = |first: u32| {
            (first.saturating_sub(2)..first).any(|i| {
                let c = title.chars[i as usize];
                matches!(
                    title.simple[c.byte as usize..].chars().next(),
                    Some('送' | '赠' | '附')
                )
            })
        };
        cx.compatibility
            .iter()
            .find(|(_, side, first, end)| {
                hits.iter().any(|h| match side {
                    Side::Before => gap_ok(*end, h.first),
                    Side::After => gap_ok(h.end, *first),
                })
            })
            .map(|(term, ..)| term.clone())
            // An accessory fits the brand's own goods: a Chanel phone case is no phone
            // accessory of Chanel's.
            .or_else(|| {
                cx.accessory_category
                    .clone()
                    .filter(|_| in_class != Some(false))
            })
            .or_else(|| {
                if in_class == Some(false) {
                    return None;
                }
                cx.accessory
                    .iter()
                    .find(|(_, first, end)| {
                        !gift(*first)
                            && hits
                                .iter()
                                .any(|h| near(h.end, *first) || near(*end, h.first))
                    })
                    .map(|(term, ..)| term.clone())
            })
    }

    fn hit_reason(&self, hit: Hit, text: &Analysed, original: &str) -> Reason {
        let e = &self.index.entries[hit.entry];
        let found = text.original(original, hit.first, hit.end);
        let (code, detail) = match hit.kind {
            HitKind::Exact => (
                ReasonCode::MarkExact,
                format!("the title contains the registered mark \"{}\"", e.display),
            ),
            HitKind::Fuzzy(d) => (
                ReasonCode::MarkFuzzy,
                format!(
                    "\"{found}\" is {d} edit{} away from the mark \"{}\"",
                    if d == 1 { "" } else { "s" },
                    e.display
                ),
            ),
            HitKind::Homoglyph => (
                ReasonCode::Homoglyph,
                format!(
                    "\"{found}\" writes the mark \"{}\" with look-alike letters",
                    e.display
                ),
            ),
            HitKind::Fullwidth => (
                ReasonCode::Fullwidth,
                format!(
                    "\"{found}\" writes the mark \"{}\" in full-width letters",
                    e.display
                ),
            ),
            HitKind::DigitSwap => (
                ReasonCode::DigitSwap,
                format!(
                    "\"{found}\" writes the mark \"{}\" with digits for letters",
                    e.display
                ),
            ),
            HitKind::Spaced => (
                ReasonCode::Spaced,
                format!(
                    "\"{found}\" spells out the mark \"{}\" with separators",
                    e.display
                ),
            ),
            HitKind::Chinese => (
                ReasonCode::ChineseName,
                format!("the title contains the Chinese mark \"{}\"", e.display),
            ),
            HitKind::Traditional => (
                ReasonCode::Traditional,
                format!(
                    "\"{found}\" is the Chinese mark \"{}\" in traditional script",
                    e.display
                ),
            ),
            HitKind::Homophone => (
                ReasonCode::Homophone,
                format!(
                    "\"{found}\" sounds like the Chinese mark \"{}\" ({})",
                    e.display,
                    e.pinyin.as_deref().unwrap_or("")
                ),
            ),
            HitKind::Pinyin => (
                ReasonCode::Pinyin,
                format!(
                    "\"{found}\" is the pinyin of the Chinese mark \"{}\"",
                    e.display
                ),
            ),
            HitKind::Alias => (
                ReasonCode::Alias,
                format!(
                    "\"{found}\" is a name {} is known by",
                    self.brands[e.brand].name
                ),
            ),
        };
        Reason { code, detail }
    }

    fn seller_reason(&self, hit: Hit, text: &Analysed, seller: &str) -> Reason {
        let e = &self.index.entries[hit.entry];
        let found = text.original(seller, hit.first, hit.end);
        let what = if e.alias {
            format!(
                "\"{found}\", a name {} is known by",
                self.brands[e.brand].name
            )
        } else if found == e.display {
            format!("the mark \"{}\"", e.display)
        } else {
            format!("\"{found}\", a form of the mark \"{}\"", e.display)
        };
        Reason {
            code: ReasonCode::SellerName,
            detail: format!("the shop name \"{}\" contains {what}", seller.trim()),
        }
    }
}

/// A price in line with the reference: what a reseller of genuine goods charges.
struct GenuinePrice {
    /// As shown, with its CNY value if converted.
    price: String,
    reference: f64,
    /// " for \"耳机\"" when a price group's floor was used, else empty.
    group: String,
}

/// Whether a mark is also an everyday word or name: a common Chinese word (苹果), an
/// English word (coach), or a listed name (Hermes, Pandora).
fn is_everyday(e: &index::Entry, cx: &Context) -> bool {
    e.word_freq >= w::EVERYDAY_WORD_FREQ
        || (!e.key.is_empty() && (cx.is_english(&e.key) || cx.everyday.contains(&e.key)))
        || cx.everyday.contains(&e.display.to_lowercase())
}

fn reject_phrase(why: RejectReason) -> &'static str {
    match why {
        RejectReason::AuthorisedSeller => "an authorised seller",
        RejectReason::GenuineGoods => "genuine goods",
        RejectReason::NotOurGoods => "not the brand's goods",
    }
}

/// The verdict a final score gives.
fn outcome(score: f64) -> Outcome {
    if score >= w::INFRINGING_FROM {
        Outcome::Infringing
    } else if score >= w::SUSPECT_FROM {
        Outcome::Suspect
    } else {
        Outcome::Clear
    }
}

/// Why the listing's shop is one of the brand's own channels: an authorised seller, or (when
/// the brand trusts them) the platform's own store or the brand's own flagship.
fn own_channel(
    brand: &BrandInfo,
    item: &Item,
    shop: &str,
    cx: &ListingContext,
    own_flagship: bool,
) -> Option<Reason> {
    if !shop.is_empty() && brand.authorised.iter().any(|a| a == shop) {
        return Some(Reason {
            code: ReasonCode::AuthorisedSeller,
            detail: format!(
                "\"{}\" is an authorised seller of {}",
                item.seller.trim(),
                brand.name
            ),
        });
    }
    if brand.trust_official && (cx.platform_store || own_flagship) {
        let what = if own_flagship {
            format!("{}'s official flagship store", brand.name)
        } else {
            format!("the {} platform's own store", platform_name(item.platform))
        };
        return Some(Reason {
            code: ReasonCode::OfficialStore,
            detail: format!("\"{}\" is {what}", item.seller.trim()),
        });
    }
    None
}

/// A legitimate channel's listing: what else it shows (a shop name, a sale price) explains
/// nothing, so only the hit and `why` stay, under the authorised cap.
fn cleared_by(score: &mut f64, reasons: &mut Vec<Reason>, why: Reason) {
    *score = score.min(w::AUTHORISED_CAP);
    reasons.truncate(1);
    reasons.push(why);
}

/// A platform key as people name it.
fn platform_name(platform: &str) -> &str {
    match platform {
        "jd" => "JD",
        "tmall" => "Tmall",
        "taobao" => "Taobao",
        "amazon_cn" => "Amazon",
        other => other,
    }
}

/// The score and reasons of one candidate, as they build up.
struct Tally {
    score: f64,
    reasons: Vec<Reason>,
}

/// Wording that calls the goods a copy, or says they left the brand's channel.
fn weigh_wording(cx: &ListingContext, tally: &mut Tally) {
    if !cx.counterfeit.is_empty() {
        tally.score += w::COUNTERFEIT_TERM
            + w::COUNTERFEIT_EXTRA_TERM
                * (cx.counterfeit.len() - 1).min(w::COUNTERFEIT_TERMS_COUNTED - 1) as f64;
        for term in cx.counterfeit.iter().take(w::COUNTERFEIT_TERMS_COUNTED) {
            tally.reasons.push(Reason {
                code: ReasonCode::CounterfeitTerm,
                detail: format!("the listing uses the counterfeit term \"{term}\""),
            });
        }
    }

    if !cx.risk.is_empty() {
        tally.score += w::RISK_TERM;
        tally.reasons.push(Reason {
            code: ReasonCode::RiskTerm,
            detail: format!(
                "the listing says \"{}\": goods without the brand's packaging or papers",
                cx.risk.join("\", \"")
            ),
        });
    }
}

fn join(classes: &[u8]) -> String {
    classes
        .iter()
        .map(u8::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One matcher over the demo registry, shared by the unit tests of every file here.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    use std::sync::OnceLock;

    /// The demo registry, fixtures/brands.toml.
    pub(crate) fn demo_brands() -> Vec<Brand> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/brands.toml");
        crate::registry::load_file(std::path::Path::new(path)).unwrap()
    }

    pub(crate) fn matcher() -> &'static Matcher {
        static M: OnceLock<Matcher> = OnceLock::new();
        M.get_or_init(|| Matcher::new(&demo_brands()).unwrap())
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::{demo_brands, matcher};
    use super::*;

    fn check(title: &str, seller: &str, price: Option<f64>, category: Option<&str>) -> Verdict {
        matcher().check(&Item {
            title,
            seller,
            price,
            category,
            platform: "taobao",
            ..Item::default()
        })
    }

    fn title(title: &str) -> Verdict {
        check(title, "某某小店", None, None)
    }

    fn codes(v: &Verdict) -> Vec<ReasonCode> {
        v.reasons.iter().map(|r| r.code).collect()
    }

    #[track_caller]
    fn flagged(v: &Verdict, brand: &str, code: ReasonCode) {
        assert!(v.verdict.is_flagged(), "{v:#?}");
        assert_eq!(v.brand.as_deref(), Some(brand), "{v:#?}");
        assert!(codes(v).contains(&code), "{v:#?}");
    }

    #[track_caller]
    fn clear(v: &Verdict) {
        assert_eq!(v.verdict, Outcome::Clear, "{v:#?}");
    }

    /// A matcher built from a registry knows every mark in it: a listing titled with any
    /// registered mark names that mark's brand. (How long the build takes is measured by the
    /// `matcher_new` group in benches/matcher.rs, not asserted in a test.)
    #[test]
    fn a_fresh_matcher_finds_every_registered_mark() {
        let brands = demo_brands();
        let matcher = Matcher::new(&brands).unwrap();
        let mut missed = Vec::new();
        for brand in &brands {
            for mark in &brand.marks {
                let title = format!("{} 新款", mark.text);
                let v = matcher.check(&Item {
                    title: &title,
                    seller: "某某小店",
                    price: None,
                    category: None,
                    platform: "taobao",
                    ..Item::default()
                });
                if v.brand.as_deref() != Some(brand.name.as_str()) {
                    missed.push(format!("{title:?} ({}): {:?}", brand.name, v.brand));
                }
            }
        }
        assert!(missed.is_empty(), "marks not found: {missed:#?}");
    }

    #[test]
    fn finds_the_plain_mark() {
        flagged(
            &title("NIKE Air Max 90 男鞋"),
            "Nike",
            ReasonCode::MarkExact,
        );
        flagged(&title("耐克 运动鞋 男"), "Nike", ReasonCode::ChineseName);
        let v = title("LANCÔME 小黑瓶精华");
        flagged(&v, "Lancôme", ReasonCode::MarkExact);
        assert_eq!(v.mark.as_deref(), Some("LANCÔME"));
        flagged(
            &title("Lancome 精华液 30ml"),
            "Lancôme",
            ReasonCode::MarkExact,
        );
        flagged(&title("SK-II 神仙水 230ml"), "SK-II", ReasonCode::MarkExact);
        flagged(&title("SKII 神仙水"), "SK-II", ReasonCode::MarkExact);
        flagged(
            &title("LV女包 老花"),
            "Louis Vuitton",
            ReasonCode::MarkExact,
        );
    }

    #[test]
    fn finds_disguised_marks() {
        flagged(&title("ＧＵＣＣＩ 女包"), "Gucci", ReasonCode::Fullwidth);
        flagged(&title("ΝΙΚΕ 跑步鞋"), "Nike", ReasonCode::Homoglyph);
        flagged(
            &title("АDIDАS 三条杠 运动裤"),
            "Adidas",
            ReasonCode::Homoglyph,
        );
        flagged(&title("Nlke 跑鞋"), "Nike", ReasonCode::Homoglyph);
        flagged(&title("N1KE 跑鞋"), "Nike", ReasonCode::DigitSwap);
        flagged(&title("R0LEX 男士手表"), "Rolex", ReasonCode::DigitSwap);
        flagged(&title("N-I-K-E 运动鞋"), "Nike", ReasonCode::Spaced);
        flagged(&title("G U C C I 包包"), "Gucci", ReasonCode::Spaced);
        flagged(&title("L.V 钱包"), "Louis Vuitton", ReasonCode::Spaced);
        flagged(
            &title("B.U.R.B.E.R.R.Y 风衣"),
            "Burberry",
            ReasonCode::Spaced,
        );
        flagged(
            &title("Louis_Vuitton 手提包"),
            "Louis Vuitton",
            ReasonCode::Spaced,
        );
        flagged(
            &title("Louis Vuitton 手提包"),
            "Louis Vuitton",
            ReasonCode::MarkExact,
        );
        flagged(&title("SK-II 神仙水"), "SK-II", ReasonCode::MarkExact);
        flagged(
            &title("LouisVuitton 手提包"),
            "Louis Vuitton",
            ReasonCode::MarkExact,
        );
    }

    #[test]
    fn finds_misspellings_with_their_distance() {
        let v = title("Addidas 运动鞋 男");
        flagged(&v, "Adidas", ReasonCode::MarkFuzzy);
        assert!(v.reasons[0].detail.contains("1 edit"), "{v:#?}");
        flagged(
            &title("Burbery 格纹围巾"),
            "Burberry",
            ReasonCode::MarkFuzzy,
        );
        flagged(&title("Nkie 运动鞋"), "Nike", ReasonCode::MarkFuzzy);
        flagged(
            &title("Louis Vuiton 女包"),
            "Louis Vuitton",
            ReasonCode::MarkFuzzy,
        );
    }

    #[test]
    fn finds_chinese_forms() {
        flagged(
            &title("勞力士 潛航者 手錶"),
            "Rolex",
            ReasonCode::Traditional,
        );
        flagged(&title("奈克 运动鞋 男款"), "Nike", ReasonCode::Homophone);
        flagged(&title("老力士 机械表 男"), "Rolex", ReasonCode::Homophone);
        flagged(&title("naike 运动鞋"), "Nike", ReasonCode::Pinyin);
        flagged(&title("Nai Ke 跑鞋"), "Nike", ReasonCode::Pinyin);
        flagged(&title("laolishi 手表"), "Rolex", ReasonCode::Pinyin);
    }

    #[test]
    fn finds_spaced_and_sound_alike_chinese_marks() {
        flagged(
            &title("N.B 新 百 伦 2002R 慢跑鞋"),
            "New Balance",
            ReasonCode::Spaced,
        );
        // 勒 also reads lè; 戴生 is 戴森 to a southern ear (sheng ~ sen).
        flagged(
            &title("勒高积木 城市 消防局"),
            "LEGO",
            ReasonCode::Homophone,
        );
        flagged(&title("戴生 吹风机 负离子"), "Dyson", ReasonCode::Homophone);
        // Two words that merely sound alike, with no character in common, are not a hit.
        assert!(title("奈刻 文具").brand.is_none());
        // An ordinary word, or one inside a longer word, is not a sound-alike.
        assert!(
            title("陶瓷 耐克杯").brand.is_some(),
            "the mark itself still counts"
        );
    }

    #[test]
    fn a_registry_it_cannot_index_is_an_error() {
        let mut brands = demo_brands();
        brands[0].marks[0].text = " - ".into();
        let err = Matcher::new(&brands)
            .err()
            .expect("a mark without letters is refused");
        assert!(
            err.to_string()
                .contains("brand `Nike`: ` - ` has no letters"),
            "{err}"
        );
        let empty = Matcher::new(&[]).unwrap();
        assert_eq!(
            empty.check(&Item {
                title: "耐克",
                ..Item::default()
            }),
            Verdict::clear()
        );
    }

    #[test]
    fn finds_the_mark_in_the_shop_name() {
        let v = check("男士 运动鞋 透气 跑步鞋", "耐克工厂店", Some(89.0), None);
        flagged(&v, "Nike", ReasonCode::SellerName);
    }

    #[test]
    fn counterfeit_terms_and_cheap_originals_raise_the_score() {
        let v = check("高仿 LV 老花 女包", "小店", Some(300.0), None);
        assert_eq!(v.verdict, Outcome::Infringing, "{v:#?}");
        assert!(codes(&v).contains(&ReasonCode::CounterfeitTerm));
        assert!(v.reasons.iter().any(|r| r.detail.contains("高仿")));
        let v = check("耐克 正品 运动鞋", "小店", Some(59.0), None);
        assert_eq!(v.verdict, Outcome::Infringing, "{v:#?}");
        assert!(codes(&v).contains(&ReasonCode::OriginalClaim));
        let below = v
            .reasons
            .iter()
            .find(|r| r.code == ReasonCode::PriceBelowReference)
            .unwrap();
        assert!(below.detail.contains("88%"), "{below:?}");
        assert!(check("复刻 1:1 ROLEX 水鬼", "表行", Some(800.0), None).score > 0.9);
    }

    #[test]
    fn short_marks_never_hit_inside_words() {
        for t in [
            "diorama 微缩场景 模型",
            "Legolas 精灵 手办",
            "Pineapple 菠萝 新鲜",
            "Coachella 音乐节 门票",
            "Nikon 尼康 D750 相机",
            "Sonyeon 韩版 T恤",
            "LVMH annual report 书籍",
        ] {
            let v = title(t);
            clear(&v);
            assert!(v.brand.is_none(), "{t}: {v:#?}");
        }
    }

    #[test]
    fn ordinary_words_near_a_mark_are_not_misspellings() {
        for t in [
            "Channel 4 DVD 光盘",
            "coach bus 玩具 大巴",
            "apply now 文具",
        ] {
            clear(&title(t));
        }
    }

    #[test]
    fn chinese_marks_do_not_cross_word_boundaries() {
        let v = title("快乐高效 学习桌");
        assert!(v.brand.is_none(), "{v:#?}");
        let v = title("为了高效 办公椅");
        assert!(v.brand.is_none(), "{v:#?}");
        flagged(
            &title("乐高 积木 城市系列"),
            "LEGO",
            ReasonCode::ChineseName,
        );
    }

    #[test]
    fn a_nickname_alone_is_not_enough() {
        let v = check("强力粘钩 勾子 免打孔 挂钩", "五金店", Some(6.8), None);
        clear(&v);
        assert_eq!(v.brand.as_deref(), Some("Nike"));
        flagged(
            &check("绿水鬼 复刻 机械表", "表行", Some(900.0), None),
            "Rolex",
            ReasonCode::CounterfeitTerm,
        );
    }

    #[test]
    fn goods_outside_the_marks_classes_are_clear() {
        let v = check(
            "红富士苹果 新鲜水果 5斤装",
            "果园直发",
            Some(29.9),
            Some("生鲜 > 水果"),
        );
        clear(&v);
        assert!(codes(&v).contains(&ReasonCode::ClassMismatch), "{v:#?}");
        assert_eq!(v.brand.as_deref(), Some("Apple"));
        let v = check(
            "COACH 巴士 玩具车 合金",
            "玩具店",
            Some(39.0),
            Some("玩具 > 车模"),
        );
        clear(&v);
        flagged(
            &check("苹果 15 Pro 手机", "数码店", Some(39.0), Some("手机")),
            "Apple",
            ReasonCode::ChineseName,
        );
    }

    #[test]
    fn compatibility_wording_clears_unless_it_claims_originality() {
        let v = title("手机壳 适用于苹果 iPhone 15 硅胶");
        clear(&v);
        assert!(codes(&v).contains(&ReasonCode::CompatibilityUse), "{v:#?}");
        clear(&title("Charger for iPhone 20W 快充"));
        clear(&title("iPhone 15 Pro Max专用 钢化膜"));
        clear(&title("PD快充头 兼容iPhone15/14/13 苹果充电器"));
        // "for men" qualifies nothing.
        assert!(title("NIKE running shoes for men").verdict.is_flagged());
        let v = check("原装 AirPods Pro 耳机 适用苹果", "数码", Some(39.0), None);
        assert!(v.verdict.is_flagged(), "{v:#?}");
    }

    #[test]
    fn authorised_sellers_are_clear() {
        let v = check(
            "Nike Air Force 1 男子运动鞋",
            "Nike官方旗舰店",
            Some(799.0),
            None,
        );
        clear(&v);
        assert!(codes(&v).contains(&ReasonCode::AuthorisedSeller));
        // Case and width do not matter, script does: 旗艦店 is not 旗舰店.
        clear(&check("耐克 跑鞋", "ｎｉｋｅ官方旗舰店", Some(699.0), None));
        assert!(
            check("耐克 跑鞋 正品", "Nike官方旗艦店", Some(99.0), None)
                .verdict
                .is_flagged()
        );
    }

    /// A registry of one brand, with the given changes, and a matcher over it.
    fn one_brand(marks: &[(&str, &[u8])], change: impl FnOnce(&mut Brand)) -> Matcher {
        with_rules(marks, change, &MatchSettings::default())
    }

    fn with_rules(
        marks: &[(&str, &[u8])],
        change: impl FnOnce(&mut Brand),
        settings: &MatchSettings,
    ) -> Matcher {
        let mut brand = Brand {
            name: "Sony".into(),
            owner: "Sony Group".into(),
            reference_price_cny: Some(800.0),
            marks: marks
                .iter()
                .map(|(text, classes)| crate::model::Mark {
                    text: (*text).into(),
                    jurisdiction: "CN".into(),
                    registration_no: "T-1".into(),
                    classes: classes.to_vec(),
                    expires: None,
                })
                .collect(),
            ..Brand::default()
        };
        change(&mut brand);
        Matcher::with_settings(&[brand], settings).unwrap()
    }

    fn sold(m: &Matcher, title: &str, seller: &str, price: f64, category: Option<&str>) -> Verdict {
        m.check(&Item {
            title,
            seller,
            price: Some(price),
            category,
            platform: "jd",
            ..Item::default()
        })
    }

    const SONY: &[(&str, &[u8])] = &[("SONY", &[9]), ("索尼", &[9])];

    #[test]
    fn price_floors_apply_to_their_goods_only() {
        let m = one_brand(SONY, |b| {
            b.prices.push(crate::model::PriceFloor {
                words: vec!["耳机".into(), "earphones".into()],
                classes: vec![],
                min_price_cny: 49.0,
            })
        });
        // Genuine wired earphones at 69 CNY are not "far below" an 800 CNY television.
        let v = sold(
            &m,
            "索尼 MDR-EX15AP 入耳式 有线耳机",
            "数码小铺",
            69.0,
            None,
        );
        assert!(
            !codes(&v).contains(&ReasonCode::PriceBelowReference),
            "{v:#?}"
        );
        // The same earphones at 9.9 CNY are.
        let v = sold(&m, "索尼 MDR-EX15AP 入耳式 有线耳机", "数码小铺", 9.9, None);
        assert!(
            codes(&v).contains(&ReasonCode::PriceBelowReference),
            "{v:#?}"
        );
        assert!(
            v.reasons.iter().any(|r| r.detail.contains("\"耳机\"")),
            "{v:#?}"
        );
        // Goods in no group fall back to the brand-wide figure.
        let v = sold(&m, "SONY 65寸 4K 电视", "数码小铺", 199.0, None);
        assert!(
            codes(&v).contains(&ReasonCode::PriceBelowReference),
            "{v:#?}"
        );
        assert!(v.reasons.iter().any(|r| r.detail.contains("800")), "{v:#?}");
    }

    #[test]
    fn prices_in_another_currency_are_converted_or_not_compared() {
        let title = "SONY WH-1000XM5 耳机";
        let item = |currency| Item {
            title,
            seller: "Euro Shop",
            price: Some(20.0),
            currency,
            platform: "amazon_cn",
            ..Item::default()
        };
        let m = one_brand(SONY, |_| {});
        // 20 EUR is not 20 CNY: without a rate nothing is said about the price.
        let v = m.check(&item("EUR"));
        assert!(
            !codes(&v).contains(&ReasonCode::PriceBelowReference),
            "{v:#?}"
        );
        let v = m.check(&item("CNY"));
        assert!(codes(&v).contains(&ReasonCode::PriceBelowReference));
        let settings = MatchSettings {
            rates: HashMap::from([("eur".to_string(), 7.8)]),
            ..MatchSettings::default()
        };
        let m = with_rules(SONY, |_| {}, &settings);
        let v = m.check(&item("EUR"));
        let below = v
            .reasons
            .iter()
            .find(|r| r.code == ReasonCode::PriceBelowReference)
            .expect("converted and compared");
        assert!(below.detail.contains("20 EUR (156 CNY)"), "{below:?}");
    }

    #[test]
    fn the_platforms_own_and_the_brands_official_stores_are_authorised() {
        let m = one_brand(SONY, |_| {});
        let title = "索尼 WI-C100 无线蓝牙耳机 颈挂式";
        // JD's own store, by the page's flag or by the name JD reserves.
        let v = m.check(&Item {
            title,
            seller: "索尼影音",
            price: Some(99.0),
            platform: "jd",
            self_operated: true,
            ..Item::default()
        });
        clear(&v);
        assert!(codes(&v).contains(&ReasonCode::OfficialStore), "{v:#?}");
        clear(&sold(&m, title, "索尼京东自营官方旗舰店", 99.0, None));
        clear(&sold(&m, title, "天猫超市", 99.0, None));
        let v = sold(&m, title, "Sony官方旗舰店", 99.0, None);
        clear(&v);
        assert!(v.reasons[1].detail.contains("official flagship"), "{v:#?}");
        // Another brand's flagship store is not Sony's.
        assert!(
            sold(&m, title, "耐克官方旗舰店", 9.0, None)
                .verdict
                .is_flagged()
        );
        // The registry can say otherwise.
        let m = one_brand(SONY, |b| b.trust_official_stores = false);
        assert!(
            sold(&m, title, "索尼京东自营官方旗舰店", 9.0, None)
                .verdict
                .is_flagged()
        );
    }

    #[test]
    fn accessories_that_name_what_they_fit_are_clear() {
        for t in [
            "苹果ipad保护套 2022款 防摔",
            "Apple Watch 磁吸 充电器 便携",
            "iPhone 15 Pro Max 钢化膜 全屏 2片装",
            "苹果 20W 快充头 PD 充电器",
        ] {
            let v = title(t);
            clear(&v);
            assert!(
                codes(&v).contains(&ReasonCode::CompatibilityUse),
                "{t}: {v:#?}"
            );
        }
        // A copy of the accessory, or a phone with a free screen film, is not.
        assert!(title("苹果 原装 充电器 20W 正品").verdict.is_flagged());
        assert!(title("高仿 苹果 ipad 保护套").verdict.is_flagged());
        assert!(title("苹果 iPhone 15 手机 送钢化膜").verdict.is_flagged());
    }

    #[test]
    fn genuine_goods_from_an_unauthorised_shop_are_suspect_unless_the_brand_says_not() {
        let m = one_brand(SONY, |b| b.authorized_sellers = vec!["索尼授权店".into()]);
        let title = "SONY WH-1000XM5 头戴式降噪耳机";
        let v = sold(&m, title, "老王数码", 760.0, None);
        assert_eq!(v.verdict, Outcome::Suspect, "{v:#?}");
        assert!(
            codes(&v).contains(&ReasonCode::UnauthorisedSeller),
            "{v:#?}"
        );
        clear(&sold(&m, title, "索尼授权店", 760.0, None));
        let m = one_brand(SONY, |b| b.watch_unauthorised = false);
        let v = sold(&m, title, "老王数码", 760.0, None);
        clear(&v);
        assert!(codes(&v).contains(&ReasonCode::GenuinePrice), "{v:#?}");
    }

    #[test]
    fn well_known_marks_are_protected_on_other_goods() {
        let gucci: &[(&str, &[u8])] = &[("GUCCI", &[18, 25]), ("古驰", &[18, 25])];
        let cushion = "GUCCI 古驰 汽车坐垫 四季通用 座椅套";
        let m = one_brand(gucci, |b| b.name = "Gucci".into());
        let v = sold(&m, cushion, "车品小店", 268.0, Some("汽车用品 > 坐垫"));
        clear(&v);
        assert!(codes(&v).contains(&ReasonCode::ClassMismatch), "{v:#?}");
        let m = one_brand(gucci, |b| {
            b.name = "Gucci".into();
            b.well_known = true;
        });
        let v = sold(&m, cushion, "车品小店", 268.0, Some("汽车用品 > 坐垫"));
        assert!(v.verdict.is_flagged(), "{v:#?}");
        assert!(
            codes(&v).contains(&ReasonCode::WellKnownOtherGoods),
            "{v:#?}"
        );
    }

    #[test]
    fn everyday_words_need_the_marks_goods() {
        let apple: &[(&str, &[u8])] = &[("APPLE", &[9]), ("苹果", &[9])];
        let m = one_brand(apple, |b| {
            b.name = "Apple".into();
            b.well_known = true;
        });
        // The fruit, whether or not the goods are named, and however famous the mark.
        let v = sold(&m, "烟台红富士苹果 新鲜水果 5斤装", "果园", 39.9, None);
        clear(&v);
        let v = sold(&m, "苹果 大个 又甜 包邮", "果园", 29.9, None);
        clear(&v);
        assert!(codes(&v).contains(&ReasonCode::EverydayWord), "{v:#?}");
        // The mark on its goods, or a listing that says it means the brand, still counts.
        assert!(
            sold(&m, "苹果 15 Pro 手机 256G", "数码", 999.0, None)
                .verdict
                .is_flagged()
        );
        assert!(
            sold(&m, "高仿苹果 顶级版", "数码", 999.0, None)
                .verdict
                .is_flagged()
        );
        // A mark inside the name of something else is no mark.
        let dyson: &[(&str, &[u8])] = &[("DYSON", &[7, 9, 11]), ("戴森", &[7, 9, 11])];
        let m = one_brand(dyson, |b| b.name = "Dyson".into());
        let v = sold(
            &m,
            "戴森球计划 Dyson Sphere Program 激活码",
            "游戏",
            70.0,
            None,
        );
        assert!(v.brand.is_none(), "{v:#?}");
    }

    #[test]
    fn reviewers_allow_rules_keep_a_false_positive_from_coming_back() {
        let rules = |kind, pattern: &str| MatchSettings {
            allow: vec![
                AllowRule {
                    brand: "Sony".into(),
                    kind,
                    pattern: pattern.into(),
                    reason: RejectReason::GenuineGoods,
                },
                AllowRule {
                    brand: "Gone".into(),
                    kind,
                    pattern: pattern.into(),
                    reason: RejectReason::GenuineGoods,
                },
            ],
            ..MatchSettings::default()
        };
        let title = "SONY 索尼 随身听 NW-A306";
        let m = with_rules(SONY, |_| {}, &rules(AllowKind::Seller, "老王 数码"));
        let v = sold(&m, title, "老王数码", 9.0, None);
        clear(&v);
        assert!(codes(&v).contains(&ReasonCode::AllowedByReviewer), "{v:#?}");
        assert!(sold(&m, title, "别家数码", 9.0, None).verdict.is_flagged());
        let m = with_rules(SONY, |_| {}, &rules(AllowKind::Title, "随身听 NW-A306"));
        clear(&sold(&m, title, "别家数码", 9.0, None));
        assert!(
            sold(&m, "SONY 随身听 NW-A100", "别家数码", 9.0, None)
                .verdict
                .is_flagged()
        );
    }

    #[test]
    fn clear_listings_without_a_hit_have_no_brand() {
        let v = title("纯棉 T恤 男 夏季 短袖");
        assert_eq!(v, Verdict::clear());
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"verdict": "clear", "score": 0.0, "brand": null, "mark": null, "reasons": []})
        );
    }

    #[test]
    fn verdicts_serialise_with_stable_codes() {
        let v = check("高仿 耐克 运动鞋", "小店", Some(99.0), None);
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["verdict"], "infringing");
        assert_eq!(json["brand"], "Nike");
        assert_eq!(json["mark"], "耐克");
        assert_eq!(json["reasons"][0]["code"], "chinese_name");
        assert!(
            json["reasons"][0]["detail"]
                .as_str()
                .unwrap()
                .contains("耐克")
        );
        let score = json["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&score));
    }

    #[test]
    fn the_matcher_is_shared_across_threads() {
        fn assert_sync<T: Sync + Send>() {}
        assert_sync::<Matcher>();
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(
            t in "\\PC{0,60}",
            s in "\\PC{0,20}",
            price in proptest::option::of(proptest::num::f64::ANY),
            c in proptest::option::of("\\PC{0,20}"),
        ) {
            let v = matcher().check(&Item {
                title: &t,
                seller: &s,
                price,
                category: c.as_deref(),
                platform: "x",
                ..Item::default()
            });
            proptest::prop_assert!((0.0..=1.0).contains(&v.score));
        }

        #[test]
        fn mixed_script_text_never_panics(t in "[a-zA-Z0-9 \\-\\.耐克乐高苹果勞力士ＧＵＣＩａ-ｚА-яΑ-ω]{0,40}") {
            let v = matcher().check(&Item { title: &t, ..Item::default() });
            proptest::prop_assert!((0.0..=1.0).contains(&v.score));
        }
    }
}
