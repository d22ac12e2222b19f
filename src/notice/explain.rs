//! Match reasons in plain words, in Chinese and English: the explanation a complaint gives and
//! the review UI shows.

use crate::store::MatchReason;

/// A reason code's phrase in Chinese and English. Unknown codes (a newer matcher) read as the
/// code itself.
pub fn reason_phrase(code: &str) -> (&str, &str) {
    match code {
        "mark_exact" => ("使用注册商标", "uses the registered mark"),
        "mark_fuzzy" => (
            "使用与注册商标近似的拼写",
            "uses a misspelling of the registered mark",
        ),
        "homoglyph" => (
            "以形近字符仿冒注册商标",
            "disguises the mark with look-alike characters",
        ),
        "fullwidth" => (
            "以全角字符书写注册商标",
            "writes the mark in full-width letters",
        ),
        "digit_swap" => (
            "以数字替换商标字母",
            "replaces letters of the mark with digits",
        ),
        "spaced" => (
            "以分隔符拆写注册商标",
            "spells the mark out with separators",
        ),
        "chinese_name" => ("使用注册中文商标", "uses the registered Chinese mark"),
        "traditional" => (
            "以繁体字使用中文商标",
            "uses the Chinese mark in traditional script",
        ),
        "homophone" => (
            "使用与中文商标读音相同的字",
            "uses characters that sound like the Chinese mark",
        ),
        "pinyin" => ("使用中文商标的拼音", "uses the pinyin of the Chinese mark"),
        "alias" => ("使用品牌俗称", "uses a name the brand is known by"),
        "seller_name" => ("店铺名称使用注册商标", "uses the mark in the shop name"),
        "counterfeit_term" => ("标题含仿冒用语", "describes the goods as copies"),
        "original_claim" => (
            "以远低于正品的价格宣称正品",
            "claims to be original at a fraction of the genuine price",
        ),
        "risk_term" => (
            "宣称无包装无发票等渠道不明商品",
            "sells goods without box, invoice or traceable channel",
        ),
        "price_below_reference" => (
            "价格远低于正品参考价",
            "is priced far below the genuine goods",
        ),
        "genuine_price" => ("价格与正品相当", "is priced in line with genuine goods"),
        "parallel_import" => ("宣称海外代购", "claims to be bought abroad"),
        "authorised_seller" => ("授权店铺", "is an authorised seller"),
        "trusted_retailer" => ("大型零售商", "is a large retailer"),
        "compatibility_use" => ("仅说明适配对象", "names only what the product fits"),
        "class_mismatch" => (
            "商品不在核定使用类别内",
            "sells goods outside the mark's classes",
        ),
        other => (other, other),
    }
}

/// One line per reason: phrase, then the matcher's detail.
fn explain(reasons: &[MatchReason], zh: bool) -> String {
    reasons
        .iter()
        .map(|r| {
            let (p_zh, p_en) = reason_phrase(&r.code);
            let phrase = if zh { p_zh } else { p_en };
            if r.detail.trim().is_empty() {
                phrase.to_owned()
            } else if zh {
                format!("{phrase}（{}）", r.detail.trim())
            } else {
                format!("{phrase} ({})", r.detail.trim())
            }
        })
        .collect::<Vec<_>>()
        .join(if zh { "；" } else { "; " })
}

/// The explanation of a listing's match, in Chinese.
pub fn explain_zh(reasons: &[MatchReason]) -> String {
    explain(reasons, true)
}

/// The explanation of a listing's match, in English.
pub fn explain_en(reasons: &[MatchReason]) -> String {
    explain(reasons, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_sentences() {
        let reasons = [
            MatchReason {
                code: "counterfeit_term".into(),
                detail: "高仿".into(),
            },
            MatchReason {
                code: "new_code".into(),
                detail: String::new(),
            },
        ];
        assert_eq!(explain_zh(&reasons), "标题含仿冒用语（高仿）；new_code");
        assert_eq!(
            explain_en(&reasons),
            "describes the goods as copies (高仿); new_code"
        );
    }
}
