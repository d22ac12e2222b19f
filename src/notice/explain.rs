//! Match reasons in plain words, in Chinese and English: the explanation a complaint gives and
//! the review UI shows. The wording of each code lives with [`crate::model::ReasonCode`].

use crate::model::Reason;

/// One line per reason: phrase, then the matcher's detail.
fn explain(reasons: &[Reason], zh: bool) -> String {
    reasons
        .iter()
        .map(|r| {
            let phrase = if zh {
                r.code.phrase_zh()
            } else {
                r.code.phrase_en()
            };
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
pub(crate) fn explain_zh(reasons: &[Reason]) -> String {
    explain(reasons, true)
}

/// The explanation of a listing's match, in English.
pub fn explain_en(reasons: &[Reason]) -> String {
    explain(reasons, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ReasonCode;

    #[test]
    fn reasons_read_as_sentences() {
        let reasons = [
            Reason {
                code: ReasonCode::CounterfeitTerm,
                detail: "高仿".into(),
            },
            Reason {
                code: ReasonCode::SellerName,
                detail: String::new(),
            },
        ];
        assert_eq!(
            explain_zh(&reasons),
            "标题含仿冒用语（高仿）；店铺名称使用注册商标"
        );
        assert_eq!(
            explain_en(&reasons),
            "describes the goods as copies (高仿); uses the mark in the shop name"
        );
    }
}
