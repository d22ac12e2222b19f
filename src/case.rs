//! The rules of filing: whether a right can carry a complaint, and Alibaba's Good-faith
//! standing of each platform account. The case's states and steps are nouns in
//! [`crate::model`]; [`crate::store::Store::transition_notice`] applies a step and its audit
//! row in one transaction, for the CLI, web and API alike.

use chrono::NaiveDate;
use serde::Serialize;

/// Why a mark cannot carry a complaint on this channel today, if it cannot.
pub(crate) fn unfileable_reason(
    mark: Option<(&str, &str, Option<NaiveDate>)>,
    requires_cn: bool,
    today: NaiveDate,
) -> Option<String> {
    let Some((text, jurisdiction, expires)) = mark else {
        return Some("no registered mark matched".to_owned());
    };
    if requires_cn && jurisdiction != "CN" {
        return Some(format!(
            "no CN registration: the platform accepts only rights registered in mainland China, and `{text}` is registered in {jurisdiction}"
        ));
    }
    if let Some(expires) = expires.filter(|e| *e < today) {
        return Some(format!(
            "mark `{text}` ({jurisdiction}) expired on {expires}"
        ));
    }
    None
}

// ---- the good-faith governor ----

/// Alibaba's Good-faith programme: at least this share of complaints upheld...
pub const MIN_SUCCESS_RATE: f64 = 0.90;
/// ...and at most this share answered by counter-notices...
pub const MAX_COUNTER_RATE: f64 = 0.05;
/// ...over this many months.
pub const GOOD_FAITH_MONTHS: u32 = 3;

/// The first day of the good-faith window ending `today`.
pub(crate) fn good_faith_since(today: NaiveDate) -> NaiveDate {
    today
        .checked_sub_months(chrono::Months::new(GOOD_FAITH_MONTHS))
        .unwrap_or(NaiveDate::MIN)
}

/// One platform account's standing over the window. Rates are over decided listings (those
/// with the platform's answer); listings still pending count for neither.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GoodFaith {
    #[serde(flatten)]
    pub counts: crate::store::GoodFaithCounts,
    /// removed / decided; None before any decision.
    pub success_rate: Option<f64>,
    /// counter-noticed / decided.
    pub counter_rate: Option<f64>,
    /// Whether either rate is past its threshold.
    pub at_risk: bool,
}

impl GoodFaith {
    pub fn new(counts: crate::store::GoodFaithCounts) -> GoodFaith {
        let decided = counts.decided();
        let rate = |n: i64| (decided > 0).then(|| n as f64 / decided as f64);
        let success_rate = rate(counts.removed);
        let counter_rate = rate(counts.counter_noticed);
        GoodFaith {
            at_risk: success_rate.is_some_and(|r| r < MIN_SUCCESS_RATE)
                || counter_rate.is_some_and(|r| r > MAX_COUNTER_RATE),
            counts,
            success_rate,
            counter_rate,
        }
    }
}

/// What filing a batch could do to an account's standing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchCheck {
    pub platform: String,
    pub account: String,
    /// Listings in the batch, by verdict.
    pub infringing: i64,
    pub suspect: i64,
    pub current: GoodFaith,
    /// If every suspect listing in the batch failed (rejected or counter-noticed).
    pub projected_success: f64,
    pub projected_counter: f64,
    /// Empty when the batch is safe to file.
    pub warnings: Vec<String>,
}

/// Projects an account's rates after filing a batch, assuming the worst for the listings the
/// matcher is unsure of: infringing listings are taken down, each suspect one fails, and may
/// fail by counter-notice. Warns when either projection crosses a threshold.
pub(crate) fn check_batch(
    current: crate::store::GoodFaithCounts,
    infringing: i64,
    suspect: i64,
) -> BatchCheck {
    let current = GoodFaith::new(current);
    let c = &current.counts;
    let decided = c.decided() + infringing + suspect;
    let (projected_success, projected_counter) = if decided == 0 {
        (1.0, 0.0)
    } else {
        (
            (c.removed + infringing) as f64 / decided as f64,
            (c.counter_noticed + suspect) as f64 / decided as f64,
        )
    };
    let mut warnings = Vec::new();
    let pct = |r: f64| format!("{:.1}%", r * 100.0);
    if projected_success < MIN_SUCCESS_RATE {
        warnings.push(format!(
            "{} account `{}`: success rate could fall to {} (now {}), below the {} Good-faith threshold over {} months",
            c.platform,
            c.account,
            pct(projected_success),
            current.success_rate.map_or("n/a".to_owned(), pct),
            pct(MIN_SUCCESS_RATE),
            GOOD_FAITH_MONTHS
        ));
    }
    if projected_counter > MAX_COUNTER_RATE {
        warnings.push(format!(
            "{} account `{}`: counter-notice rate could rise to {} (now {}), above the {} Good-faith threshold over {} months",
            c.platform,
            c.account,
            pct(projected_counter),
            current.counter_rate.map_or("n/a".to_owned(), pct),
            pct(MAX_COUNTER_RATE),
            GOOD_FAITH_MONTHS
        ));
    }
    BatchCheck {
        platform: c.platform.clone(),
        account: c.account.clone(),
        infringing,
        suspect,
        projected_success,
        projected_counter,
        current,
        warnings,
    }
}

/// The standing of every platform account that filed in the window ending `today`.
pub async fn good_faith(
    store: &crate::store::Store,
    today: NaiveDate,
) -> Result<Vec<GoodFaith>, crate::store::StoreError> {
    let since = good_faith_since(today).to_string();
    Ok(store
        .good_faith_counts(&since)
        .await?
        .into_iter()
        .map(GoodFaith::new)
        .collect())
}

/// Checks a batch of notices about to be filed on `platform` under `account`.
pub async fn check_filing(
    store: &crate::store::Store,
    platform: &str,
    account: &str,
    notice_ids: &[i64],
    today: NaiveDate,
) -> Result<BatchCheck, crate::store::StoreError> {
    let since = good_faith_since(today).to_string();
    let counts = store
        .good_faith_counts(&since)
        .await?
        .into_iter()
        .find(|c| c.platform == platform && c.account == account)
        .unwrap_or_else(|| crate::store::GoodFaithCounts {
            platform: platform.to_owned(),
            account: account.to_owned(),
            filed: 0,
            pending: 0,
            removed: 0,
            rejected: 0,
            counter_noticed: 0,
        });
    let (infringing, suspect) = store.batch_verdicts(notice_ids).await?;
    Ok(check_batch(counts, infringing, suspect))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cn_and_expiry_rules() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        let wipo = ("BANDAI", "WIPO", NaiveDate::from_ymd_opt(2031, 7, 13));
        let expired = ("万代", "CN", NaiveDate::from_ymd_opt(2024, 3, 1));
        let r = unfileable_reason(Some(wipo), true, today).unwrap();
        assert!(r.starts_with("no CN registration"), "{r}");
        assert_eq!(unfileable_reason(Some(wipo), false, today), None);
        let r = unfileable_reason(Some(expired), false, today).unwrap();
        assert!(r.contains("expired on 2024-03-01"), "{r}");
        assert!(unfileable_reason(None, false, today).is_some());
    }
}

#[cfg(test)]
mod governor_tests {
    use super::*;
    use crate::store::GoodFaithCounts;

    fn counts(removed: i64, rejected: i64, counter: i64, pending: i64) -> GoodFaithCounts {
        GoodFaithCounts {
            platform: "taobao".into(),
            account: "acme".into(),
            filed: removed + rejected + counter + pending,
            pending,
            removed,
            rejected,
            counter_noticed: counter,
        }
    }

    #[test]
    fn success_threshold_is_ninety_percent() {
        // 9 of 10 upheld: exactly at the threshold, an all-infringing batch keeps it there.
        let ok = check_batch(counts(9, 1, 0, 5), 10, 0);
        assert_eq!(ok.current.success_rate, Some(0.9));
        assert!(!ok.current.at_risk);
        assert!(ok.warnings.is_empty(), "{:?}", ok.warnings);
        // One uncertain listing could push it to 9/11 = 81.8%.
        let risky = check_batch(counts(9, 1, 0, 0), 0, 1);
        assert_eq!(risky.warnings.len(), 2, "{:?}", risky.warnings);
        assert!(risky.warnings[0].contains("81.8%"), "{}", risky.warnings[0]);
        assert!(risky.warnings[0].contains("90.0%"), "{}", risky.warnings[0]);
    }

    #[test]
    fn counter_notice_threshold_is_five_percent() {
        // 1 counter-notice in 20 decided: 5%, at the limit, fine.
        let at = check_batch(counts(19, 0, 1, 0), 0, 0);
        assert_eq!(at.current.counter_rate, Some(0.05));
        assert!(at.warnings.is_empty(), "{:?}", at.warnings);
        // A second would make 2 in 20: 10%.
        let over = GoodFaith::new(counts(18, 0, 2, 0));
        assert!(over.at_risk);
        let w = check_batch(counts(18, 0, 2, 0), 1, 0).warnings;
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("counter-notice rate"), "{}", w[0]);
    }

    #[test]
    fn a_new_account_with_a_confident_batch_is_fine() {
        let c = check_batch(counts(0, 0, 0, 0), 30, 0);
        assert!(c.warnings.is_empty());
        assert_eq!(c.current.success_rate, None);
        assert_eq!(
            good_faith_since(NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()),
            NaiveDate::from_ymd_opt(2026, 8, 30).unwrap()
        );
    }
}
