//! A notice's case: its states, the steps between them, and the Art. 43 clock.

use std::str::FromStr;

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

/// E-Commerce Law Art. 43: after a counter-notice the rights holder has 15 days to complain to
/// the authorities or sue, or the platform restores the listing.
pub(crate) const COUNTER_NOTICE_DAYS: u64 = 15;

/// The platform key under which the domain watch stores what it finds.
pub(crate) const DOMAINS_PLATFORM: &str = "domains";

/// What a notice complains of: listings on a platform, or a domain name (a CNDRP complaint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    Listing,
    Domain,
}

impl NoticeKind {
    pub fn of_platform(platform: &str) -> NoticeKind {
        if platform == DOMAINS_PLATFORM {
            NoticeKind::Domain
        } else {
            NoticeKind::Listing
        }
    }
}

/// CNDRP (CNNIC, 2019) Art. 2: a provider does not accept a complaint against a domain
/// registered three years or more before it.
pub(crate) const CNDRP_MONTHS: u32 = 36;

/// Where a notice is in its life.
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
    strum::Display,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum CaseState {
    /// Drafted from matches; waiting for review.
    Draft,
    /// A reviewer approved it for filing.
    Approved,
    /// Filed through the platform's channel; carries the platform's complaint reference.
    Filed,
    /// The platform took the listings down.
    Removed,
    /// Rejected by a reviewer before filing, or by the platform after.
    Rejected,
    /// The seller answered with a counter-notice: the Art. 43 clock runs.
    CounterNoticed,
    /// Nothing more to do.
    Closed,
}

impl CaseState {
    pub(crate) const ALL: [CaseState; 7] = [
        CaseState::Draft,
        CaseState::Approved,
        CaseState::Filed,
        CaseState::Removed,
        CaseState::Rejected,
        CaseState::CounterNoticed,
        CaseState::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The state as a Chinese reader says it (alert emails, reports).
    pub fn phrase_zh(self) -> &'static str {
        match self {
            CaseState::Draft => "草稿",
            CaseState::Approved => "已批准",
            CaseState::Filed => "已投诉",
            CaseState::Removed => "已下架",
            CaseState::Rejected => "已驳回",
            CaseState::CounterNoticed => "已收到反通知",
            CaseState::Closed => "已结案",
        }
    }

    pub fn phrase_en(self) -> &'static str {
        match self {
            CaseState::Draft => "draft",
            CaseState::Approved => "approved",
            CaseState::Filed => "filed",
            CaseState::Removed => "removed",
            CaseState::Rejected => "rejected",
            CaseState::CounterNoticed => "counter-noticed",
            CaseState::Closed => "closed",
        }
    }

    /// The states reachable from this one in a single step.
    pub(crate) fn next_states(self) -> &'static [CaseState] {
        use CaseState::*;
        match self {
            Draft => &[Approved, Rejected],
            // A reviewer may still withdraw an approved draft before it is filed.
            Approved => &[Filed, Rejected, Draft],
            Filed => &[Removed, Rejected, CounterNoticed],
            // A suit or complaint filed within the Art. 43 window keeps the listing down.
            CounterNoticed => &[Removed, Closed],
            Removed | Rejected => &[Closed],
            Closed => &[],
        }
    }

    pub(crate) fn can_become(self, to: CaseState) -> bool {
        self.next_states().contains(&to)
    }
}

/// An unknown state name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown case state `{0}`; expected one of draft, approved, filed, removed, rejected, counter_noticed, closed"
)]
pub struct UnknownState(pub String);

impl FromStr for CaseState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        CaseState::ALL
            .into_iter()
            .find(|st| st.as_str() == norm)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// The infringement type a complaint states (Alibaba IPP asks for one of these).
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
    strum::Display,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum InfringementKind {
    /// 假冒商标 / 售假: the goods are counterfeits.
    Counterfeit,
    /// 商标不当使用: the mark is used without right (in a title, shop name, as a lure).
    TrademarkMisuse,
}

impl InfringementKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The wording in Chinese complaint forms.
    pub fn label_zh(self) -> &'static str {
        match self {
            InfringementKind::Counterfeit => "假冒注册商标（售假）",
            InfringementKind::TrademarkMisuse => "商标不当使用",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            InfringementKind::Counterfeit => "Counterfeit goods",
            InfringementKind::TrademarkMisuse => "Unauthorised use of a registered trademark",
        }
    }
}

/// What a transition carries besides the target state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionDetails {
    /// Why: stored in the audit log.
    pub note: Option<String>,
    /// The platform's complaint reference; required to move to `filed`.
    pub complaint_ref: Option<String>,
    /// The platform account the complaint is filed under (good-faith rates are per account).
    pub account: Option<String>,
}

/// The Art. 43 deadline for a counter-notice received on `received`.
pub(crate) fn counter_notice_deadline(received: NaiveDate) -> NaiveDate {
    received
        .checked_add_days(Days::new(COUNTER_NOTICE_DAYS))
        .unwrap_or(NaiveDate::MAX)
}

/// The last day a CNDRP complaint can be filed against a domain registered on `registered`.
pub(crate) fn cndrp_deadline(registered: NaiveDate) -> NaiveDate {
    registered
        .checked_add_months(chrono::Months::new(CNDRP_MONTHS))
        .and_then(|d| d.pred_opt())
        .unwrap_or(NaiveDate::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cndrp_complaint_is_late_three_years_after_registration() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(cndrp_deadline(d("2024-02-29")), d("2027-02-27"));
        assert_eq!(cndrp_deadline(d("2025-06-10")), d("2028-06-09"));
    }

    #[test]
    fn stored_names_are_stable() {
        assert_eq!(CaseState::CounterNoticed.as_str(), "counter_noticed");
        assert_eq!(CaseState::Filed.to_string(), "filed");
        assert_eq!(
            InfringementKind::TrademarkMisuse.as_str(),
            "trademark_misuse"
        );
        assert_eq!(
            "counterfeit".parse::<InfringementKind>(),
            Ok(InfringementKind::Counterfeit)
        );
        assert!("Counterfeit".parse::<InfringementKind>().is_err());
    }

    #[test]
    fn lifecycle_steps() {
        use CaseState::*;
        let valid = [
            (Draft, Approved),
            (Draft, Rejected),
            (Approved, Filed),
            (Approved, Rejected),
            (Approved, Draft),
            (Filed, Removed),
            (Filed, Rejected),
            (Filed, CounterNoticed),
            (CounterNoticed, Removed),
            (CounterNoticed, Closed),
            (Removed, Closed),
            (Rejected, Closed),
        ];
        for from in CaseState::ALL {
            for to in CaseState::ALL {
                assert_eq!(
                    from.can_become(to),
                    valid.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn states_parse_from_their_names_and_dashes() {
        for s in CaseState::ALL {
            assert_eq!(s.as_str().parse::<CaseState>().unwrap(), s);
        }
        assert_eq!(
            "counter-noticed".parse::<CaseState>().unwrap(),
            CaseState::CounterNoticed
        );
        assert!("done".parse::<CaseState>().is_err());
    }

    #[test]
    fn deadline_is_fifteen_days_later() {
        let d = NaiveDate::from_ymd_opt(2026, 2, 20).unwrap();
        assert_eq!(
            counter_notice_deadline(d),
            NaiveDate::from_ymd_opt(2026, 3, 7).unwrap()
        );
    }
}
