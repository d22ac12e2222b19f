//! What an alert reports, stored as JSON in the outbox row so every attempt sends the same
//! message (the listings as they were when the alert was queued).

use serde::{Deserialize, Serialize};

use super::Language;
pub(crate) use super::verdict::Reason;

/// The facts one email reports. Sections left empty are not shown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Payload {
    pub brand: Option<String>,
    pub language: Language,
    /// New infringing listings.
    pub infringing: Vec<Item>,
    /// New suspect listings (digest).
    pub suspect: Vec<Item>,
    /// Listings linked to an earlier, removed case (digest).
    pub relisted: Vec<Relisting>,
    /// Open cases whose deadline is close or past (digest).
    pub deadlines: Vec<Deadline>,
    /// Platforms failing crawl after crawl (operations).
    pub failures: Vec<PlatformFailure>,
    /// Alerts given up on (operations).
    pub undeliverable: Vec<Undeliverable>,
    /// Accounts (or anonymous platforms) the crawl stopped for: a person must act (operations).
    pub needs_person: Vec<NeedsPerson>,
    /// The digest's period, RFC 3339.
    pub period_from: Option<String>,
    pub period_to: Option<String>,
    /// A monthly report, attached as a file (report).
    pub report: Option<ReportSummary>,
}

/// The headline figures of a monthly report, for the email that carries it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReportSummary {
    /// YYYY-MM.
    pub month: String,
    pub infringing: i64,
    pub suspect: i64,
    pub filed: i64,
    pub removed: i64,
    pub rejected: i64,
    pub counter_noticed: i64,
    pub relisted: i64,
    /// The attachment's file name.
    pub file: String,
}

impl Payload {
    /// Nothing to tell anyone.
    pub fn is_empty(&self) -> bool {
        self.infringing.is_empty()
            && self.suspect.is_empty()
            && self.relisted.is_empty()
            && self.deadlines.is_empty()
            && self.failures.is_empty()
            && self.undeliverable.is_empty()
            && self.needs_person.is_empty()
            && self.report.is_none()
    }
}

/// One matched listing. Every text field is scraped and hostile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub match_id: i64,
    pub listing_id: i64,
    pub platform: String,
    pub title: String,
    pub seller: Option<String>,
    pub price: Option<f64>,
    pub currency: String,
    pub url: String,
    pub verdict: String,
    pub score: f64,
    pub reasons: Vec<Reason>,
    /// The draft notice holding this listing, when one exists.
    pub notice_id: Option<i64>,
    /// The listing's captured page (its item page, else the search page that showed it): the
    /// review link when no notice holds it yet.
    #[serde(default)]
    pub evidence_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Relisting {
    pub item: Item,
    pub earlier_notice_id: i64,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deadline {
    pub notice_id: i64,
    pub platform: String,
    pub state: String,
    pub deadline: String,
    pub complaint_ref: Option<String>,
    pub overdue: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformFailure {
    pub platform: String,
    pub consecutive_failures: i64,
    pub last_error: Option<String>,
    pub last_run_at: Option<String>,
}

/// An alert that went `dead`, reported to operators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Undeliverable {
    pub alert_id: i64,
    pub subject: Option<String>,
    pub recipients: Vec<String>,
    pub error: String,
}

/// A login wall or challenge the crawl met and stopped for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeedsPerson {
    pub platform: String,
    /// `None`: the platform is crawled without an account.
    pub account: Option<String>,
    /// `expired` or `challenged`.
    pub state: String,
    /// The wall or challenge page, as fetched.
    pub url: Option<String>,
    pub since: String,
    /// What the person runs, when a command fixes it.
    pub command: Option<String>,
}

impl NeedsPerson {
    pub(crate) fn new(
        platform: String,
        account: Option<String>,
        state: String,
        url: Option<String>,
        since: String,
    ) -> NeedsPerson {
        let command = account
            .as_deref()
            .map(|name| fix_command(&platform, name, &state));
        NeedsPerson {
            platform,
            account,
            state,
            url,
            since,
            command,
        }
    }
}

/// The command that puts an account in `state` back to work.
pub(crate) fn fix_command(platform: &str, name: &str, state: &str) -> String {
    let name = if name
        .chars()
        .all(|c| c.is_alphanumeric() || "_-.@".contains(c))
    {
        name.to_owned()
    } else {
        format!("'{}'", name.replace('\'', "'\\''"))
    };
    match state {
        "challenged" => format!("markwatch accounts login {platform} {name} --resume"),
        _ => format!("markwatch accounts login {platform} {name}"),
    }
}
