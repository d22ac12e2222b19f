//! Relisting (whack-a-mole): after a platform removes a listing, a new listing on the same
//! platform from the same seller, or with a near-identical title, is the same goods back up.

use crate::store::{DraftCandidate, RemovedListing};

/// Titles at least this similar (normalised Levenshtein over the letters, digits and CJK
/// characters, case folded) are near-identical.
pub(crate) const TITLE_SIMILARITY: f64 = 0.9;

/// A relisting: the earlier case and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RelistHit {
    pub notice_id: i64,
    pub listing_id: i64,
    pub reason: String,
}

/// The latest removed case `c` relists, if any. A same-seller hit wins over a title hit.
pub(crate) fn find_relisting(c: &DraftCandidate, removed: &[RemovedListing]) -> Option<RelistHit> {
    let seller = c
        .seller
        .as_deref()
        .map(fold_seller)
        .filter(|s| !s.is_empty());
    let title = fold_title(&c.title);
    let mut by_title: Option<(f64, &RemovedListing)> = None;
    let mut by_seller: Option<&RemovedListing> = None;
    for r in removed.iter().filter(|r| r.platform == c.platform) {
        if r.listing_id == c.listing_id {
            continue;
        }
        if seller.is_some()
            && r.seller.as_deref().map(fold_seller) == seller
            && by_seller.is_none_or(|b| r.notice_id > b.notice_id)
        {
            by_seller = Some(r);
        }
        if let Some(sim) = title_similarity(&title, &fold_title(&r.title))
            && sim >= TITLE_SIMILARITY
            && by_title
                .is_none_or(|(best, b)| sim > best || (sim == best && r.notice_id > b.notice_id))
        {
            by_title = Some((sim, r));
        }
    }
    if let Some(r) = by_seller {
        return Some(RelistHit {
            notice_id: r.notice_id,
            listing_id: r.listing_id,
            reason: format!(
                "same seller `{}` as item {} removed in case #{}",
                r.seller.as_deref().unwrap_or_default(),
                r.item_id,
                r.notice_id
            ),
        });
    }
    by_title.map(|(sim, r)| RelistHit {
        notice_id: r.notice_id,
        listing_id: r.listing_id,
        reason: format!(
            "title {:.0}% like item {} removed in case #{}",
            sim * 100.0,
            r.item_id,
            r.notice_id
        ),
    })
}

fn fold_seller(s: &str) -> String {
    s.trim().to_lowercase()
}

/// Letters, digits and CJK characters, lower-cased: spacing and decoration don't hide a title.
fn fold_title(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Similarity in [0, 1], or None when the lengths alone rule out a near-identical pair.
fn title_similarity(a: &str, b: &str) -> Option<f64> {
    let (la, lb) = (a.chars().count(), b.chars().count());
    let longest = la.max(lb);
    if longest == 0 {
        return None;
    }
    // Each extra character costs one edit: skip pairs that can't reach the threshold.
    if (la.abs_diff(lb) as f64) > (1.0 - TITLE_SIMILARITY) * longest as f64 {
        return None;
    }
    let distance = strsim::levenshtein(a, b);
    Some(1.0 - distance as f64 / longest as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Outcome;

    fn removed(notice: i64, item: &str, seller: &str, title: &str) -> RemovedListing {
        RemovedListing {
            notice_id: notice,
            listing_id: notice * 100,
            platform: "taobao".into(),
            item_id: item.into(),
            seller: Some(seller.into()),
            title: title.into(),
        }
    }

    fn cand(seller: &str, title: &str) -> DraftCandidate {
        DraftCandidate {
            match_id: 1,
            listing_id: 1,
            platform: "taobao".into(),
            item_id: "5".into(),
            title: title.into(),
            seller: Some(seller.into()),
            brand_id: 1,
            verdict: Outcome::Infringing,
            score: 0.9,
            reasons: vec![],
            mark: None,
        }
    }

    #[test]
    fn same_seller_or_near_identical_title_on_the_same_platform() {
        let gone = [
            removed(
                3,
                "111",
                "潮鞋小铺",
                "耐克 AIR MAX 90 高仿 男鞋 夏季透气 运动鞋",
            ),
            removed(4, "222", "另一家", "古驰 GG 手袋"),
        ];
        let hit = find_relisting(&cand(" 潮鞋小铺 ", "完全不同"), &gone).unwrap();
        assert_eq!(hit.notice_id, 3);
        assert!(hit.reason.contains("same seller"), "{}", hit.reason);

        // New shop, same title with the spacing and case changed and one word swapped.
        let hit = find_relisting(
            &cand("新店", "耐克air max 90 高仿男鞋 夏季透气 跑步鞋"),
            &gone,
        )
        .unwrap();
        assert_eq!(hit.notice_id, 3);
        assert!(hit.reason.contains("title"), "{}", hit.reason);

        assert_eq!(find_relisting(&cand("新店", "耐克 拖鞋"), &gone), None);
        let mut jd = cand("潮鞋小铺", "x");
        jd.platform = "jd".into();
        assert_eq!(
            find_relisting(&jd, &gone),
            None,
            "other platforms don't count"
        );
    }
}
