//! The numbers `Matcher::judge` weighs evidence with, in one place.
//!
//! A verdict's score starts at the strength of the strongest mark hit (`HitKind::strength`:
//! 0.3 for a nickname, 0.55 for the plain mark, up to 0.75 for a disguise), wording and price
//! add to it or take from it, and then reasons that explain a hit away cap it. The caps are
//! applied after every increment, so a cap below [`SUSPECT_FROM`] always clears; their order
//! (authorised < trusted < compatibility < class < nickname) ranks how sure each excuse is.
//!
//! Ratios are the listing's price over the brand's reference price, the lowest price the
//! brand sells the goods for.

// Verdict thresholds.

/// Score from which a listing is infringing: a plain mark (0.55) needs one strong signal on
/// top (copy wording, a very low price), a deliberate disguise (0.75) is infringing by itself.
pub(super) const INFRINGING_FROM: f64 = 0.75;
/// Score from which a listing is suspect: just under a plain mark's 0.55, so any mark in
/// the title is a lead for a human unless something explains it away.
pub(super) const SUSPECT_FROM: f64 = 0.45;

// The mark.

/// Added when the shop name repeats a mark the title already has: shops are often named
/// after what they sell, so it only nudges.
pub(super) const SELLER_ALSO_NAMES: f64 = 0.05;
/// The score of the brand's mark in the shop name alone: trading under the brand's name is a
/// use of the mark by itself, so a lead (above `SUSPECT_FROM`), but not proof of a copy.
pub(super) const SELLER_ONLY_MARK: f64 = 0.5;
/// The score of a nickname in the shop name alone: the same weight as a nickname in the
/// title (`HitKind::Alias`), below suspect.
pub(super) const SELLER_ONLY_ALIAS: f64 = 0.3;

// Wording.

/// Added for the first counterfeit term (高仿, 复刻): the listing calls itself a copy, which
/// takes any mark hit (0.5 and up) to infringing and a nickname (0.3) to suspect.
pub(super) const COUNTERFEIT_TERM: f64 = 0.4;
/// Added for each further distinct counterfeit term: more of them make a copy a little
/// surer, but the first one already says it.
pub(super) const COUNTERFEIT_EXTRA_TERM: f64 = 0.05;
/// Counterfeit terms weighed and listed as reasons; past three, more synonyms are keyword
/// stuffing rather than more evidence.
pub(super) const COUNTERFEIT_TERMS_COUNTED: usize = 3;
/// Added for risk wording (无盒, 工厂渠道): goods that left no trace of the brand's channel.
/// Not proof of a copy, so half of [`COUNTERFEIT_TERM`]; it still lifts a plain mark (0.55)
/// to the infringing line.
pub(super) const RISK_TERM: f64 = 0.2;
/// Added when the listing says the goods were bought abroad (代购, 水货): resale outside
/// the brand's channels is worth a look, but not a counterfeit sign, so only a nudge; what
/// matters more is [`PARALLEL_IMPORT_CAP`].
pub(super) const PARALLEL_IMPORT: f64 = 0.05;

// Price.

/// A claim to be original (正品, 原装) at no more than about a third of the reference price:
/// nobody sells genuine goods that cheap, so the claim itself is a tell.
pub(super) const ORIGINAL_CLAIM_MAX_RATIO: f64 = 0.35;
/// Added for such a claim: as strong as a price under a fifth of the reference.
pub(super) const ORIGINAL_CLAIM: f64 = 0.25;
/// A price under 40% of the reference: a deeper cut than sales and outlets give.
pub(super) const CHEAP_RATIO: f64 = 0.4;
/// Added for a price under [`CHEAP_RATIO`] of the reference.
pub(super) const CHEAP: f64 = 0.15;
/// A price under a fifth of the reference: hardly anything that cheap is genuine.
pub(super) const VERY_CHEAP_RATIO: f64 = 0.2;
/// Added instead of [`CHEAP`] under [`VERY_CHEAP_RATIO`]: with a plain mark (0.55) this
/// alone is infringing.
pub(super) const VERY_CHEAP: f64 = 0.25;
/// A price of at least 70% of the reference: what a reseller of genuine goods charges.
pub(super) const GENUINE_PRICE_MIN_RATIO: f64 = 0.7;
/// Taken off a plain mark at a genuine price with nothing else against it: a plain mark
/// (0.55) drops below suspect, a reseller naming what it sells.
pub(super) const GENUINE_PRICE: f64 = 0.15;

// Caps: reasons that explain a hit away.

/// Goods bought abroad may be genuine: unless the mark is disguised or the listing calls
/// itself a copy, at most suspect, just under [`INFRINGING_FROM`].
pub(super) const PARALLEL_IMPORT_CAP: f64 = INFRINGING_FROM - 0.01;
/// The mark only says what the product fits (适用于苹果): a descriptive use, clear.
pub(super) const COMPATIBILITY_CAP: f64 = 0.2;
/// The goods are outside every class the mark is registered for (apples, not phones): that
/// registration does not cover them, clear.
pub(super) const CLASS_MISMATCH_CAP: f64 = 0.3;
/// The brand's own authorised shop: as good as no match.
pub(super) const AUTHORISED_CAP: f64 = 0.05;
/// A large retailer's shop, with no copy or risk wording: almost as good as authorised.
pub(super) const TRUSTED_RETAILER_CAP: f64 = 0.1;
/// A nickname (勾子 is also a hook) without copy wording or an originality claim: clear,
/// just under [`SUSPECT_FROM`].
pub(super) const ALIAS_ONLY_CAP: f64 = SUSPECT_FROM - 0.05;
/// A mark that is also an everyday word (苹果, Hermes) with nothing placing the goods in its
/// classes: no more than a nickname.
pub(super) const EVERYDAY_WORD_CAP: f64 = ALIAS_ONLY_CAP;
/// The plain mark at a genuine price from a shop neither authorised nor official: a lead for
/// grey-market watch, never infringing on that alone.
pub(super) const UNAUTHORISED_CAP: f64 = SUSPECT_FROM + 0.1;

/// Dictionary frequency from which a Chinese mark is an everyday word first (苹果 the fruit,
/// 北面 "the north side") and needs goods in its classes to count.
pub(super) const EVERYDAY_WORD_FREQ: usize = 1000;

/// A listing photo within this many bits (of 64) of a brand's reference image shows it.
pub(super) const IMAGE_MAX_DISTANCE: u32 = crate::images::SAME_PICTURE;

/// The brand's own photo with no brand word: suspect on its own (SUSPECT_FROM and above), and
/// with copy wording (COUNTERFEIT_TERM) or a very low price, infringing.
pub(super) const IMAGE_ONLY: f64 = 0.55;

/// The brand's own photo beside a mark in the text.
pub(super) const IMAGE_WITH_MARK: f64 = 0.15;
