//! Grouping flagged matches into draft notices by each complaint channel's rules: one right (or
//! one type of right) per complaint, a cap on listings, the reason stated, CN registration and
//! expiry. Pure: plans from plain values, so the rules are tested without a database.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::relist::{RelistHit, find_relisting};
use crate::case::unfileable_reason;
use crate::model::{InfringementKind, ReasonCode};
use crate::platform::{PlatformDef, RightsPerComplaint};
use crate::store::{DraftCandidate, OpenDraft, PlannedItem, PlannedNotice, RemovedListing};

/// Relisted cases go to the top of the queue.
pub(crate) const RELISTED_PRIORITY: i64 = 10;

/// Reason codes that say the goods themselves are fakes, not just that the mark is used.
const COUNTERFEIT_CODES: [ReasonCode; 4] = [
    ReasonCode::CounterfeitTerm,
    ReasonCode::OriginalClaim,
    ReasonCode::PriceBelowReference,
    ReasonCode::RiskTerm,
];

/// A flagged match that could not be placed, and why (it stays queued for a later run).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unplaced {
    pub match_id: i64,
    pub reason: String,
}

/// What drafting will do.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DraftPlan {
    pub notices: Vec<PlannedNotice>,
    pub unplaced: Vec<Unplaced>,
    /// Listings flagged as relisting a removed one.
    pub relisted: usize,
}

/// The infringement type a match supports.
pub(crate) fn infringement_kind(c: &DraftCandidate) -> InfringementKind {
    if c.reasons
        .iter()
        .any(|r| COUNTERFEIT_CODES.contains(&r.code))
    {
        InfringementKind::Counterfeit
    } else {
        InfringementKind::TrademarkMisuse
    }
}

/// Plans draft notices for `candidates`: fills open drafts of the same group first, then new
/// notices of at most the channel's `max_listings`. Candidates on a platform with no definition
/// are left unplaced with the reason.
pub(crate) fn plan_drafts(
    candidates: &[DraftCandidate],
    removed: &[RemovedListing],
    open: &[OpenDraft],
    platforms: &[PlatformDef],
    today: NaiveDate,
) -> DraftPlan {
    let defs: HashMap<&str, &PlatformDef> =
        platforms.iter().map(|d| (d.platform.as_str(), d)).collect();
    let mut plan = DraftPlan::default();
    // Room left in open drafts, by group key, in id order.
    let mut room: HashMap<&str, Vec<(i64, u32)>> = HashMap::new();
    for d in open {
        room.entry(d.group_key.as_str())
            .or_default()
            .push((d.id, d.item_count));
    }
    // Index into plan.notices of the notice currently filling, by group key.
    let mut filling: HashMap<String, usize> = HashMap::new();
    for c in candidates {
        let Some(def) = defs.get(c.platform.as_str()) else {
            plan.unplaced.push(Unplaced {
                match_id: c.match_id,
                reason: format!("no platform definition for `{}`", c.platform),
            });
            continue;
        };
        let channel = &def.complaint;
        let cap = channel.max_listings.max(1);
        let reason = infringement_kind(c);
        let not_fileable = unfileable_reason(
            c.mark
                .as_ref()
                .map(|m| (m.text.as_str(), m.jurisdiction.as_str(), m.expires)),
            channel.requires_cn_registration,
            today,
        );
        let relist: Option<RelistHit> = find_relisting(c, removed);
        if relist.is_some() {
            plan.relisted += 1;
        }
        let relisted_from = relist.as_ref().map(|r| r.notice_id);
        let mark_key = c
            .mark
            .as_ref()
            .map_or_else(|| "none".to_owned(), |m| m.id.to_string());
        // A right that cannot be filed never shares a complaint with one that can.
        let right = match (channel.rights_per_complaint, &not_fileable) {
            (RightsPerComplaint::OneType, None) => "trademark".to_owned(),
            _ => format!("mark:{mark_key}"),
        };
        let key = format!(
            "{}|brand:{}|{right}|{}|relist:{}",
            c.platform,
            c.brand_id,
            reason.as_str(),
            relisted_from.unwrap_or(0)
        );
        let item = PlannedItem {
            match_id: c.match_id,
            relisted_from,
            relisted_reason: relist.map(|r| r.reason),
        };
        // 1. The notice this run is already filling, while it has room.
        if let Some(&i) = filling.get(&key) {
            let n = &mut plan.notices[i];
            let used = n.items.len() as u32
                + n.existing
                    .and_then(|id| open.iter().find(|d| d.id == id))
                    .map_or(0, |d| d.item_count);
            if used < cap {
                n.items.push(item);
                continue;
            }
        }
        // 2. An open draft of the same group with room.
        if let Some(slots) = room.get_mut(key.as_str())
            && let Some(pos) = slots.iter().position(|(_, used)| *used < cap)
        {
            let (id, _) = slots.remove(pos);
            plan.notices.push(PlannedNotice {
                existing: Some(id),
                platform: c.platform.clone(),
                channel: channel.name.clone(),
                brand_id: c.brand_id,
                mark_id: c.mark.as_ref().map(|m| m.id),
                reason,
                group_key: key.clone(),
                not_fileable: not_fileable.clone(),
                relisted_from,
                priority: if relisted_from.is_some() {
                    RELISTED_PRIORITY
                } else {
                    0
                },
                items: vec![item],
            });
            filling.insert(key, plan.notices.len() - 1);
            continue;
        }
        // 3. A new notice.
        plan.notices.push(PlannedNotice {
            existing: None,
            platform: c.platform.clone(),
            channel: channel.name.clone(),
            brand_id: c.brand_id,
            mark_id: c.mark.as_ref().map(|m| m.id),
            reason,
            group_key: key.clone(),
            not_fileable,
            relisted_from,
            priority: if relisted_from.is_some() {
                RELISTED_PRIORITY
            } else {
                0
            },
            items: vec![item],
        });
        filling.insert(key, plan.notices.len() - 1);
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Outcome;
    use crate::model::{Reason, ReasonCode};
    use crate::store::MarkRight;

    fn defs() -> Vec<PlatformDef> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/crawlers");
        crate::platform::load_dir(std::path::Path::new(dir)).unwrap()
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
    }

    fn mark(id: i64, text: &str, jurisdiction: &str, expires: &str) -> MarkRight {
        MarkRight {
            id,
            text: text.into(),
            jurisdiction: jurisdiction.into(),
            registration_no: format!("DEMO-{id}"),
            expires: NaiveDate::parse_from_str(expires, "%Y-%m-%d").ok(),
        }
    }

    fn cand(
        id: i64,
        platform: &str,
        brand: i64,
        mark: Option<MarkRight>,
        code: ReasonCode,
    ) -> DraftCandidate {
        DraftCandidate {
            match_id: id,
            listing_id: id,
            platform: platform.into(),
            item_id: id.to_string(),
            title: format!("listing {id}"),
            seller: Some(format!("shop {id}")),
            brand_id: brand,
            verdict: Outcome::Infringing,
            score: 0.9,
            reasons: vec![Reason {
                code,
                detail: String::new(),
            }],
            mark,
        }
    }

    fn nike() -> MarkRight {
        mark(1, "NIKE", "CN", "2031-05-01")
    }

    #[test]
    fn alibaba_caps_complaints_at_300_listings_of_one_right() {
        let mut cands: Vec<_> = (1..=650)
            .map(|i| cand(i, "taobao", 1, Some(nike()), ReasonCode::CounterfeitTerm))
            .collect();
        // A second right of the same brand never shares a complaint with the first.
        cands.push(cand(
            1000,
            "taobao",
            1,
            Some(mark(2, "耐克", "CN", "2030-11-20")),
            ReasonCode::CounterfeitTerm,
        ));
        let plan = plan_drafts(&cands, &[], &[], &defs(), today());
        let sizes: Vec<_> = plan
            .notices
            .iter()
            .map(|n| (n.mark_id, n.items.len()))
            .collect();
        assert_eq!(
            sizes,
            vec![(Some(1), 300), (Some(1), 300), (Some(1), 50), (Some(2), 1)]
        );
        assert!(plan.notices.iter().all(|n| n.not_fileable.is_none()));
        assert!(plan.unplaced.is_empty());
    }

    #[test]
    fn open_drafts_are_filled_before_new_ones() {
        let cands: Vec<_> = (1..=5)
            .map(|i| cand(i, "taobao", 1, Some(nike()), ReasonCode::CounterfeitTerm))
            .collect();
        let first = plan_drafts(&cands[..1], &[], &[], &defs(), today());
        let key = first.notices[0].group_key.clone();
        let open = [OpenDraft {
            id: 77,
            group_key: key,
            item_count: 298,
        }];
        let plan = plan_drafts(&cands[1..], &[], &open, &defs(), today());
        assert_eq!(plan.notices.len(), 2);
        assert_eq!(plan.notices[0].existing, Some(77));
        assert_eq!(plan.notices[0].items.len(), 2);
        assert_eq!(plan.notices[1].existing, None);
        assert_eq!(plan.notices[1].items.len(), 2);
    }

    #[test]
    fn reason_splits_counterfeit_from_misuse() {
        let cands = [
            cand(1, "jd", 1, Some(nike()), ReasonCode::CounterfeitTerm),
            cand(2, "jd", 1, Some(nike()), ReasonCode::SellerName),
            cand(3, "jd", 1, Some(nike()), ReasonCode::PriceBelowReference),
        ];
        let plan = plan_drafts(&cands, &[], &[], &defs(), today());
        let kinds: Vec<_> = plan
            .notices
            .iter()
            .map(|n| (n.reason, n.items.len()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (InfringementKind::Counterfeit, 2),
                (InfringementKind::TrademarkMisuse, 1)
            ]
        );
    }

    #[test]
    fn taobao_needs_a_cn_registration_and_an_unexpired_mark() {
        // Bandai: BANDAI is registered with WIPO only; 万代 (CN) expired on 2024-03-01.
        let wipo = mark(18, "BANDAI", "WIPO", "2031-07-13");
        let expired = mark(19, "万代", "CN", "2024-03-01");
        let cands = [
            cand(
                1,
                "taobao",
                9,
                Some(wipo.clone()),
                ReasonCode::CounterfeitTerm,
            ),
            cand(
                2,
                "tmall",
                9,
                Some(wipo.clone()),
                ReasonCode::CounterfeitTerm,
            ),
            cand(
                3,
                "taobao",
                9,
                Some(expired.clone()),
                ReasonCode::CounterfeitTerm,
            ),
            cand(4, "jd", 9, Some(wipo.clone()), ReasonCode::CounterfeitTerm),
            cand(
                5,
                "amazon_cn",
                9,
                Some(expired),
                ReasonCode::CounterfeitTerm,
            ),
        ];
        let plan = plan_drafts(&cands, &[], &[], &defs(), today());
        let why: Vec<_> = plan
            .notices
            .iter()
            .map(|n| {
                (
                    n.platform.as_str(),
                    n.not_fileable.clone().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(why.len(), 5, "nothing is dropped: {why:?}");
        assert!(why[0].1.starts_with("no CN registration"), "{why:?}");
        assert!(why[1].1.starts_with("no CN registration"), "{why:?}");
        assert!(why[2].1.contains("expired on 2024-03-01"), "{why:?}");
        assert_eq!(why[3], ("jd", String::new()), "JD accepts a WIPO mark");
        assert!(why[4].1.contains("expired on 2024-03-01"), "{why:?}");
    }

    #[test]
    fn amazon_reports_carry_one_type_of_right_jd_one_right() {
        let cands = [
            cand(1, "amazon_cn", 1, Some(nike()), ReasonCode::CounterfeitTerm),
            cand(
                2,
                "amazon_cn",
                1,
                Some(mark(2, "耐克", "CN", "2030-11-20")),
                ReasonCode::CounterfeitTerm,
            ),
            cand(3, "jd", 1, Some(nike()), ReasonCode::CounterfeitTerm),
            cand(
                4,
                "jd",
                1,
                Some(mark(2, "耐克", "CN", "2030-11-20")),
                ReasonCode::CounterfeitTerm,
            ),
            // Another brand never shares a report.
            cand(
                5,
                "amazon_cn",
                2,
                Some(mark(3, "ADIDAS", "CN", "2029-08-30")),
                ReasonCode::CounterfeitTerm,
            ),
        ];
        let plan = plan_drafts(&cands, &[], &[], &defs(), today());
        let groups: Vec<_> = plan
            .notices
            .iter()
            .map(|n| {
                (
                    n.platform.as_str(),
                    n.items.iter().map(|i| i.match_id).collect::<Vec<_>>(),
                )
            })
            .collect();
        assert_eq!(
            groups,
            vec![
                ("amazon_cn", vec![1, 2]),
                ("jd", vec![3]),
                ("jd", vec![4]),
                ("amazon_cn", vec![5]),
            ]
        );
    }

    #[test]
    fn unknown_platform_is_reported_not_dropped() {
        let plan = plan_drafts(
            &[cand(
                1,
                "pinduoduo",
                1,
                Some(nike()),
                ReasonCode::CounterfeitTerm,
            )],
            &[],
            &[],
            &defs(),
            today(),
        );
        assert!(plan.notices.is_empty());
        assert_eq!(plan.unplaced[0].match_id, 1);
        assert!(plan.unplaced[0].reason.contains("pinduoduo"));
    }

    #[test]
    fn relisted_listings_get_their_own_raised_notice_linked_to_the_case() {
        let removed = [RemovedListing {
            notice_id: 40,
            listing_id: 900,
            platform: "taobao".into(),
            item_id: "900".into(),
            seller: Some("shop 2".into()),
            title: "gone".into(),
        }];
        let cands = [
            cand(1, "taobao", 1, Some(nike()), ReasonCode::CounterfeitTerm),
            cand(2, "taobao", 1, Some(nike()), ReasonCode::CounterfeitTerm),
        ];
        let plan = plan_drafts(&cands, &removed, &[], &defs(), today());
        assert_eq!(plan.relisted, 1);
        assert_eq!(plan.notices.len(), 2);
        let relisted = &plan.notices[1];
        assert_eq!(relisted.relisted_from, Some(40));
        assert_eq!(relisted.priority, RELISTED_PRIORITY);
        assert_eq!(relisted.items[0].match_id, 2);
        assert!(
            relisted.items[0]
                .relisted_reason
                .as_deref()
                .unwrap()
                .contains("shop 2")
        );
        assert_eq!(plan.notices[0].priority, 0);
    }
}
