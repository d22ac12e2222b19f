//! The matcher's verdict on a listing, and the reasons behind it: written by the matcher,
//! stored by the store, explained by notices, the review UI and alerts.

use serde::{Deserialize, Serialize};

/// Stored with every match; bump it when a change to the matcher can change verdicts, so
/// `rematch` knows which stored matches are stale.
pub const MATCHER_VERSION: &str = "3";

/// The verdict on one listing.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Outcome {
    Infringing,
    Suspect,
    Clear,
}

impl Outcome {
    /// Infringing and suspect listings go to review.
    pub(crate) fn is_flagged(self) -> bool {
        self != Outcome::Clear
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Stable machine codes of the reasons behind a verdict. Each code's wording is an exhaustive
/// match below, so a new code cannot ship without it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ReasonCode {
    /// The registered mark, as written.
    MarkExact,
    /// A misspelling of the mark within a few edits.
    MarkFuzzy,
    /// Letters from another script, or digits and letters that look alike (Nlke).
    Homoglyph,
    /// Full-width letters (ＧＵＣＣＩ).
    Fullwidth,
    /// Digits standing for letters (N1KE, R0LEX).
    DigitSwap,
    /// Letters spelled out with separators (N-I-K-E).
    Spaced,
    /// The Chinese mark.
    ChineseName,
    /// The Chinese mark in traditional script.
    Traditional,
    /// Characters that sound like the Chinese mark.
    Homophone,
    /// The pinyin of the Chinese mark.
    Pinyin,
    /// A name the brand is known by, not itself a registered mark.
    Alias,
    /// The mark in the shop name.
    SellerName,
    /// Wording that says the goods are copies.
    CounterfeitTerm,
    /// A claim to be original at a price far below the brand's.
    OriginalClaim,
    /// Wording that says the goods left the brand's channel without a trace (no box, no
    /// invoice, "factory channel").
    RiskTerm,
    /// A price far below the brand's reference price.
    PriceBelowReference,
    /// A price in line with genuine goods, with the plain mark: a reseller, most likely.
    GenuinePrice,
    /// Goods bought abroad and resold.
    ParallelImport,
    /// The shop is one of the brand's authorised sellers.
    AuthorisedSeller,
    /// The shop is a large retailer selling genuine goods.
    TrustedRetailer,
    /// The brand names what the product fits ("for iPhone").
    CompatibilityUse,
    /// The goods are outside the classes the mark is registered for.
    ClassMismatch,
    /// The platform's own store (京东自营, 天猫超市, sold by Amazon), or the brand's official
    /// flagship store on the platform.
    OfficialStore,
    /// The plain mark on the mark's goods at a genuine price, from a shop that is neither
    /// authorised nor official: grey-market or parallel trade.
    UnauthorisedSeller,
    /// A well-known mark (驰名商标) on goods outside its classes: protected all the same.
    WellKnownOtherGoods,
    /// A reviewer's allow rule (a seller or a title pattern) matched this listing.
    AllowedByReviewer,
    /// The mark is also an everyday word or name (苹果, Hermes) and nothing places the goods
    /// in its classes.
    EverydayWord,
    /// The listing's photo is one of the brand's reference images, perhaps cropped, mirrored,
    /// re-encoded or marked over.
    ImageMatch,
    /// A domain name made from the mark (a misspelling, its pinyin, its Chinese name).
    DomainName,
    /// The domain's site sells goods or poses as the brand's shop or official site.
    SiteSells,
    /// The domain is offered for sale.
    DomainForSale,
    /// The domain takes mail but has no website: mail can pass as the brand's.
    MailOnly,
    /// The domain's site leads to the brand's own domain.
    BrandsOwnSite,
}

impl ReasonCode {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The phrase a Chinese complaint uses: "(the listing) …".
    pub(crate) fn phrase_zh(self) -> &'static str {
        use ReasonCode::*;
        match self {
            MarkExact => "使用注册商标",
            MarkFuzzy => "使用与注册商标近似的拼写",
            Homoglyph => "以形近字符仿冒注册商标",
            Fullwidth => "以全角字符书写注册商标",
            DigitSwap => "以数字替换商标字母",
            Spaced => "以分隔符拆写注册商标",
            ChineseName => "使用注册中文商标",
            Traditional => "以繁体字使用中文商标",
            Homophone => "使用与中文商标读音相同的字",
            Pinyin => "使用中文商标的拼音",
            Alias => "使用品牌俗称",
            SellerName => "店铺名称使用注册商标",
            CounterfeitTerm => "标题含仿冒用语",
            OriginalClaim => "以远低于正品的价格宣称正品",
            RiskTerm => "宣称无包装无发票等渠道不明商品",
            PriceBelowReference => "价格远低于正品参考价",
            GenuinePrice => "价格与正品相当",
            ParallelImport => "宣称海外代购",
            AuthorisedSeller => "授权店铺",
            TrustedRetailer => "大型零售商",
            CompatibilityUse => "仅说明适配对象",
            ClassMismatch => "商品不在核定使用类别内",
            OfficialStore => "平台自营或品牌官方旗舰店",
            UnauthorisedSeller => "非授权店铺销售",
            WellKnownOtherGoods => "在其他商品上使用驰名商标",
            AllowedByReviewer => "审核人员已放行",
            EverydayWord => "商标为常用词且商品不在核定类别",
            ImageMatch => "盗用权利人的商品图片",
            DomainName => "以注册商标（或其拼音、中文名称、近似拼写）注册域名",
            SiteSells => "网站销售商品或冒充品牌官方网站",
            DomainForSale => "公开出售该域名",
            MailOnly => "域名设有邮件服务而无网站，可冒充品牌收发邮件",
            BrandsOwnSite => "网站跳转至品牌自有域名",
        }
    }

    /// The phrase an English complaint uses: "(the listing) …".
    pub(crate) fn phrase_en(self) -> &'static str {
        use ReasonCode::*;
        match self {
            MarkExact => "uses the registered mark",
            MarkFuzzy => "uses a misspelling of the registered mark",
            Homoglyph => "disguises the mark with look-alike characters",
            Fullwidth => "writes the mark in full-width letters",
            DigitSwap => "replaces letters of the mark with digits",
            Spaced => "spells the mark out with separators",
            ChineseName => "uses the registered Chinese mark",
            Traditional => "uses the Chinese mark in traditional script",
            Homophone => "uses characters that sound like the Chinese mark",
            Pinyin => "uses the pinyin of the Chinese mark",
            Alias => "uses a name the brand is known by",
            SellerName => "uses the mark in the shop name",
            CounterfeitTerm => "describes the goods as copies",
            OriginalClaim => "claims to be original at a fraction of the genuine price",
            RiskTerm => "sells goods without box, invoice or traceable channel",
            PriceBelowReference => "is priced far below the genuine goods",
            GenuinePrice => "is priced in line with genuine goods",
            ParallelImport => "claims to be bought abroad",
            AuthorisedSeller => "is an authorised seller",
            TrustedRetailer => "is a large retailer",
            CompatibilityUse => "names only what the product fits",
            ClassMismatch => "sells goods outside the mark's classes",
            OfficialStore => "is the platform's own or the brand's official store",
            UnauthorisedSeller => "is sold by a shop the brand has not authorised",
            WellKnownOtherGoods => "uses a well-known mark on other goods",
            AllowedByReviewer => "was allowed by a reviewer",
            EverydayWord => "uses a mark that is also an everyday word, on unplaced goods",
            ImageMatch => "uses the brand's own product photo",
            DomainName => "is a domain name made from the registered mark",
            SiteSells => "hosts a site that sells goods or poses as the brand's official site",
            DomainForSale => "is offered for sale",
            MailOnly => "receives mail without a website, so mail can pass as the brand's",
            BrandsOwnSite => "leads to the brand's own domain",
        }
    }

    /// A sentence for reviewers who don't read matcher codes.
    pub(crate) fn explanation(self) -> &'static str {
        use ReasonCode::*;
        match self {
            MarkExact => "The registered mark appears as written.",
            MarkFuzzy => "A misspelling of the mark.",
            Homoglyph => {
                "The mark disguised with look-alike letters from another script or digits."
            }
            Fullwidth => "The mark in full-width letters.",
            DigitSwap => "Digits standing in for the mark's letters.",
            Spaced => "The mark spelled out with separators between its letters.",
            ChineseName => "The brand's Chinese mark.",
            Traditional => "The Chinese mark in traditional characters.",
            Homophone => "Characters that sound like the Chinese mark.",
            Pinyin => "The pinyin spelling of the Chinese mark.",
            Alias => "A nickname the brand is known by.",
            SellerName => "The mark in the shop's name.",
            CounterfeitTerm => "Wording that says the goods are copies (e.g. 高仿, 复刻, 1:1).",
            OriginalClaim => "Claims to be genuine at a price far below the brand's.",
            RiskTerm => {
                "Wording typical of goods outside the brand's channel (no box, no invoice)."
            }
            PriceBelowReference => "Priced far below the brand's reference price.",
            GenuinePrice => "Priced like genuine goods: possibly a reseller.",
            ParallelImport => "Says the goods were bought abroad and resold.",
            AuthorisedSeller => "The shop is one of the brand's authorised sellers.",
            TrustedRetailer => "The shop is a large retailer of genuine goods.",
            CompatibilityUse => "The brand names what the product fits (e.g. \"for iPhone\").",
            ClassMismatch => "The goods fall outside the classes the mark is registered for.",
            OfficialStore => "The platform's own store or the brand's official flagship store.",
            UnauthorisedSeller => {
                "The brand's goods at a genuine price from a shop it has not authorised: \
                 grey-market or parallel trade."
            }
            WellKnownOtherGoods => {
                "A well-known mark (驰名商标) used on goods outside its registered classes."
            }
            AllowedByReviewer => "A reviewer's allow rule (seller or title) matches.",
            EverydayWord => {
                "The mark is also an everyday word or name, and nothing places the goods in \
                 its classes."
            }
            ImageMatch => {
                "The listing's photo is one of the brand's own reference images, edited or not."
            }
            DomainName => {
                "The domain name copies the mark: a misspelling, its pinyin, its initials or \
                 the Chinese name."
            }
            SiteSells => "The site sells goods (prices, a cart) or calls itself the brand's shop.",
            DomainForSale => "The domain is offered for sale: a sign of bad faith under CNDRP.",
            MailOnly => "The domain has mail servers (MX) and no website: a phishing risk.",
            BrandsOwnSite => "The site redirects to one of the brand's own domains.",
        }
    }
}

/// One reason behind a verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub code: ReasonCode,
    #[serde(default)]
    pub detail: String,
}

/// The matcher's verdict on one listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub verdict: Outcome,
    /// In [0, 1]: how strongly the evidence points at infringement.
    #[serde(serialize_with = "round_score")]
    pub score: f64,
    /// The brand matched; None when the verdict is clear with no hit.
    pub brand: Option<String>,
    /// The registered mark matched, as registered.
    pub mark: Option<String>,
    pub reasons: Vec<Reason>,
}

fn round_score<S: serde::Serializer>(score: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((score * 1000.0).round() / 1000.0)
}

impl Verdict {
    /// No hit, nothing to review.
    pub fn clear() -> Self {
        Verdict {
            verdict: Outcome::Clear,
            score: 0.0,
            brand: None,
            mark: None,
            reasons: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_keep_their_stored_spelling() {
        assert_eq!(
            ReasonCode::PriceBelowReference.as_str(),
            "price_below_reference"
        );
        assert_eq!("class_mismatch".parse(), Ok(ReasonCode::ClassMismatch));
        assert!("no_such_code".parse::<ReasonCode>().is_err());
        assert_eq!(Outcome::Infringing.to_string(), "infringing");
        assert_eq!("suspect".parse(), Ok(Outcome::Suspect));
        let json = serde_json::to_string(&ReasonCode::DigitSwap).unwrap();
        assert_eq!(json, "\"digit_swap\"");
    }
}
