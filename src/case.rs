//! The case lifecycle of a takedown notice: its states, the transitions between them, and the
//! rules a transition must satisfy (a complaint reference to file, a fileable right).
//!
//! The one function that applies a transition is [`crate::store::Store::transition_notice`]:
//! it checks these rules and writes the state change and its audit row in one transaction.
//! CLI, web and API all go through it.

use std::fmt;
use std::str::FromStr;

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

/// E-Commerce Law Art. 43: after a counter-notice the rights holder has 15 days to complain to
/// the authorities or sue, or the platform restores the listing.
pub const COUNTER_NOTICE_DAYS: u64 = 15;

/// Where a notice is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
    pub const ALL: [CaseState; 7] = [
        CaseState::Draft,
        CaseState::Approved,
        CaseState::Filed,
        CaseState::Removed,
        CaseState::Rejected,
        CaseState::CounterNoticed,
        CaseState::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Draft => "draft",
            CaseState::Approved => "approved",
            CaseState::Filed => "filed",
            CaseState::Removed => "removed",
            CaseState::Rejected => "rejected",
            CaseState::CounterNoticed => "counter_noticed",
            CaseState::Closed => "closed",
        }
    }

    /// The states reachable from this one in a single step.
    pub fn next_states(self) -> &'static [CaseState] {
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

    pub fn can_become(self, to: CaseState) -> bool {
        self.next_states().contains(&to)
    }

    /// Whether the case is still waiting on someone (reviewer, platform or court).
    pub fn is_open(self) -> bool {
        !matches!(self, CaseState::Closed)
    }
}

impl fmt::Display for CaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InfringementKind {
    /// 假冒商标 / 售假: the goods are counterfeits.
    Counterfeit,
    /// 商标不当使用: the mark is used without right (in a title, shop name, as a lure).
    TrademarkMisuse,
}

impl InfringementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InfringementKind::Counterfeit => "counterfeit",
            InfringementKind::TrademarkMisuse => "trademark_misuse",
        }
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

impl fmt::Display for InfringementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InfringementKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "counterfeit" => Ok(InfringementKind::Counterfeit),
            "trademark_misuse" => Ok(InfringementKind::TrademarkMisuse),
            other => Err(format!("unknown infringement type `{other}`")),
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

/// Why a transition was refused.
#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    #[error("notice {0} does not exist")]
    NotFound(i64),
    /// The lifecycle has no such step.
    #[error("notice {id}: cannot go from {from} to {to}{}", allowed_hint(*from))]
    Invalid {
        id: i64,
        from: CaseState,
        to: CaseState,
    },
    /// Filing needs the platform's complaint reference.
    #[error("notice {id}: filing needs the platform's complaint reference (--ref)")]
    MissingReference { id: i64 },
    /// The right cannot be filed on (no CN registration, expired mark): the reason is shown.
    #[error("notice {id}: cannot be {to}: {reason}")]
    NotFileable {
        id: i64,
        to: CaseState,
        reason: String,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl From<sqlx::Error> for TransitionError {
    fn from(e: sqlx::Error) -> Self {
        TransitionError::Store(e.into())
    }
}

fn allowed_hint(from: CaseState) -> String {
    let next = from.next_states();
    if next.is_empty() {
        format!(" ({from} is final)")
    } else {
        let names: Vec<_> = next.iter().map(|s| s.as_str()).collect();
        format!(" (from {from} it can go to {})", names.join(", "))
    }
}

/// The Art. 43 deadline for a counter-notice received on `received`.
pub fn counter_notice_deadline(received: NaiveDate) -> NaiveDate {
    received
        .checked_add_days(Days::new(COUNTER_NOTICE_DAYS))
        .unwrap_or(NaiveDate::MAX)
}

/// Why a mark cannot carry a complaint on this channel today, if it cannot.
pub fn unfileable_reason(
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn invalid_transition_names_both_states() {
        let e = TransitionError::Invalid {
            id: 7,
            from: CaseState::Draft,
            to: CaseState::Filed,
        };
        let msg = e.to_string();
        assert!(msg.contains("from draft to filed"), "{msg}");
        assert!(msg.contains("approved, rejected"), "{msg}");
    }

    #[test]
    fn deadline_is_fifteen_days_later() {
        let d = NaiveDate::from_ymd_opt(2026, 2, 20).unwrap();
        assert_eq!(
            counter_notice_deadline(d),
            NaiveDate::from_ymd_opt(2026, 3, 7).unwrap()
        );
    }

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
