//! Notices and cases: the review queue (filters, sort, paging), a notice's detail with its
//! listings, matches, evidence and history, and the one transition function of the lifecycle.

use super::sql::{self, Flag};
use serde::{Deserialize, Serialize};
use sqlx::{Any, QueryBuilder, Transaction};

use super::allow::{AllowRequest, Feedback, Rejection};
use super::{Result, Store, StoreError, now};
use crate::model::{CaseState, InfringementKind, NoticeKind, RejectReason, TransitionDetails};
use crate::model::{Outcome, Reason};

/// One notice as the queue shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoticeSummary {
    pub id: i64,
    /// `listing` or `domain` (the domain watch's CNDRP complaints).
    pub kind: NoticeKind,
    pub platform: String,
    /// The complaint channel's name, e.g. "阿里巴巴知识产权保护平台 (Alibaba IPP)".
    pub channel: String,
    pub brand_id: i64,
    pub brand: String,
    pub mark_id: Option<i64>,
    /// The registered right the complaint rests on: text, jurisdiction, registration number.
    pub mark: Option<String>,
    pub jurisdiction: Option<String>,
    pub registration_no: Option<String>,
    pub state: CaseState,
    pub reason: InfringementKind,
    /// The strongest verdict among its listings.
    pub verdict: Outcome,
    pub max_score: f64,
    pub item_count: i64,
    /// The title of its highest-scoring listing, so a reviewer can tell cases apart in a list.
    pub lead_title: Option<String>,
    /// Higher first; relisted cases are raised.
    pub priority: i64,
    /// The earlier case whose removed listings this one's relist.
    pub relisted_from: Option<i64>,
    /// Why it cannot be filed (no CN registration, expired mark), shown to reviewers.
    pub not_fileable: Option<String>,
    pub complaint_ref: Option<String>,
    pub account: Option<String>,
    /// Art. 43 deadline (YYYY-MM-DD) after a counter-notice.
    pub deadline: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub filed_at: Option<String>,
    pub counter_noticed_at: Option<String>,
    pub resolved_at: Option<String>,
}

/// Which notices to list. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NoticeFilter {
    pub platform: Option<String>,
    /// Brand name, case-insensitive.
    pub brand: Option<String>,
    pub brand_id: Option<i64>,
    /// Any of these states.
    pub states: Vec<CaseState>,
    /// The notice's strongest verdict.
    pub verdict: Option<Outcome>,
    /// Bounds on the notice's highest listing score, inclusive.
    pub min_score: Option<f64>,
    pub max_score: Option<f64>,
    /// Only relisted cases (true) or only first-time ones (false).
    pub relisted: Option<bool>,
    /// Only fileable drafts (true) or only not-fileable ones (false).
    pub fileable: Option<bool>,
}

/// Queue order. Every order ends with the id, so pages never overlap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeSort {
    /// Priority, then score, highest first: what to review next.
    #[default]
    Priority,
    Newest,
    Oldest,
    /// Highest score first.
    Score,
    /// Most listings first.
    Items,
    /// Nearest Art. 43 deadline first (notices without one last).
    Deadline,
    /// Most recently changed first.
    Updated,
}

impl std::str::FromStr for NoticeSort {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(match s {
            "priority" => NoticeSort::Priority,
            "newest" => NoticeSort::Newest,
            "oldest" => NoticeSort::Oldest,
            "score" => NoticeSort::Score,
            "items" => NoticeSort::Items,
            "deadline" => NoticeSort::Deadline,
            "updated" => NoticeSort::Updated,
            other => {
                return Err(format!(
                    "unknown sort `{other}`; expected priority, newest, oldest, score, items, deadline or updated"
                ));
            }
        })
    }
}

impl NoticeSort {
    fn order_by(self) -> &'static str {
        match self {
            NoticeSort::Priority => "n.priority DESC, n.max_score DESC, n.id DESC",
            NoticeSort::Newest => "n.id DESC",
            NoticeSort::Oldest => "n.id ASC",
            NoticeSort::Score => "n.max_score DESC, n.id DESC",
            NoticeSort::Items => "n.item_count DESC, n.id DESC",
            NoticeSort::Deadline => "n.deadline IS NULL, n.deadline ASC, n.id ASC",
            NoticeSort::Updated => "n.updated_at DESC, n.id DESC",
        }
    }

    /// [`Self::order_by`] backwards: the same index, read from the other end.
    fn order_by_reversed(self) -> &'static str {
        match self {
            NoticeSort::Priority => "n.priority ASC, n.max_score ASC, n.id ASC",
            NoticeSort::Newest => "n.id ASC",
            NoticeSort::Oldest => "n.id DESC",
            NoticeSort::Score => "n.max_score ASC, n.id ASC",
            NoticeSort::Items => "n.item_count ASC, n.id ASC",
            NoticeSort::Deadline => "n.deadline IS NULL DESC, n.deadline DESC, n.id DESC",
            NoticeSort::Updated => "n.updated_at ASC, n.id ASC",
        }
    }
}

/// A page of the queue: `limit` rows from `offset`, and how many match in all.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoticePage {
    /// How many notices match; exactly, unless `total_capped`.
    pub total: u64,
    /// True when the filter has a score bound and at least [`COUNT_CAP`] notices match: then
    /// `total` is [`COUNT_CAP`], a lower bound. Other filters are always counted exactly.
    pub total_capped: bool,
    pub offset: u64,
    pub limit: u64,
    pub notices: Vec<NoticeSummary>,
}

/// Most rows one page returns.
pub(crate) const MAX_PAGE: u64 = 500;

/// How far a queue total with a score bound is counted (see [`NoticePage::total_capped`]).
pub(crate) const COUNT_CAP: u64 = 10_000;

/// Everything a reviewer needs to decide on a notice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoticeDetail {
    #[serde(flatten)]
    pub notice: NoticeSummary,
    /// The rights holder named in the complaint.
    pub owner: String,
    pub mark_classes: Vec<u8>,
    /// YYYY-MM-DD.
    pub mark_expires: Option<String>,
    pub items: Vec<NoticeItem>,
    /// Audit rows for this notice, oldest first.
    pub history: Vec<AuditEntry>,
}

/// One listing in a notice, with its match and evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoticeItem {
    pub match_id: i64,
    pub listing_id: i64,
    pub platform: String,
    /// Taobao/Tmall item id, JD SKU, Amazon ASIN.
    pub item_id: String,
    pub url: String,
    pub title: String,
    pub seller: Option<String>,
    pub price: Option<f64>,
    pub currency: String,
    pub category: Option<String>,
    pub is_ad: bool,
    pub first_seen: String,
    pub last_seen: String,
    pub verdict: Outcome,
    pub score: f64,
    pub reasons: Vec<Reason>,
    pub matcher_version: String,
    /// The registered mark this listing's match rests on (a report may carry several marks of
    /// one brand where the channel allows one type of right per report).
    pub mark_id: Option<i64>,
    pub mark: Option<String>,
    pub registration_no: Option<String>,
    pub jurisdiction: Option<String>,
    pub relisted_from: Option<i64>,
    pub relisted_reason: Option<String>,
    /// The pages that show it: the search page it was last seen on, and its item page.
    pub evidence: Vec<EvidenceRef>,
    /// For a domain found by the domain watch: what DNS and WHOIS say about it.
    pub domain: Option<DomainFacts>,
}

/// A domain in a notice, as the domain watch recorded it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainFacts {
    /// As people read it (耐克.中国); the item id is the ASCII form.
    pub display: String,
    /// How the name was made from the mark (`pinyin`, `omission`, …).
    pub rule: String,
    pub source: String,
    /// `web`, `mail_only`, `parked` or `gone`.
    pub state: String,
    /// JSON object of record lists (`a`, `aaaa`, `mx`, `ns`).
    pub records: String,
    pub first_seen: String,
    /// YYYY-MM-DD, from WHOIS.
    pub registered_on: Option<String>,
    pub registrant: Option<String>,
}

/// Which page a piece of evidence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum EvidenceRole {
    SearchPage,
    ItemPage,
    /// A flagged domain's website, as it answered.
    DomainSite,
    /// A flagged domain with no website: its DNS records, as the resolver gave them.
    DnsAnswer,
}

impl EvidenceRole {
    /// As evidence manifests and notices name it: `search_page`, `item_page`, ...
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// As a reader of a report says it.
    pub fn label(self) -> &'static str {
        match self {
            EvidenceRole::SearchPage => "search results page",
            EvidenceRole::ItemPage => "item page",
            EvidenceRole::DomainSite => "website at the domain",
            EvidenceRole::DnsAnswer => "DNS answer",
        }
    }
}

/// A stored page, by reference: what the evidence pack and the detail view cite.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvidenceRef {
    pub id: i64,
    pub role: EvidenceRole,
    pub url: String,
    pub fetched_at: String,
    pub status: i64,
    /// SHA-256 of the body exactly as received.
    pub sha256: String,
    pub body_len: i64,
    pub chain_hash: String,
}

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub note: Option<String>,
    /// A reviewer's reason for rejecting: authorised_seller, genuine_goods or not_our_goods.
    pub reject_reason: Option<String>,
}

/// Outcomes of the complaints one platform account filed in a window, in listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct GoodFaithCounts {
    pub platform: String,
    pub account: String,
    /// Listings in complaints filed in the window.
    pub filed: i64,
    /// Still waiting for the platform's decision.
    pub pending: i64,
    /// Taken down (including after a counter-notice, when a suit kept them down).
    pub removed: i64,
    /// Rejected by the platform.
    pub rejected: i64,
    /// Answered by a counter-notice.
    pub counter_noticed: i64,
}

impl GoodFaithCounts {
    /// Listings with an outcome: what the rates are computed over.
    pub(crate) fn decided(&self) -> i64 {
        self.filed - self.pending
    }
}

/// A registered mark a notice rests on, with what a complaint form asks about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoticeMark {
    pub id: i64,
    pub text: String,
    pub jurisdiction: String,
    pub registration_no: String,
    pub classes: Vec<u8>,
    /// YYYY-MM-DD.
    pub expires: Option<String>,
}

/// A seller with listings in several cases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct RepeatSeller {
    pub platform: String,
    pub seller: String,
    /// Its listings in cases.
    pub listings: i64,
    /// Distinct cases naming it.
    pub cases: i64,
    /// Listings the platform took down.
    pub removed: i64,
    /// Listings flagged as relisting a removed one.
    pub relisted: i64,
    pub last_seen: String,
}

/// Notices per platform and state, for the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub(crate) struct StateCount {
    pub platform: String,
    pub state: String,
    pub count: i64,
}

const SUMMARY_COLUMNS: &str = "n.id, n.platform, n.channel, n.brand_id, b.name AS brand, n.mark_id, m.text AS mark,
    m.jurisdiction, m.registration_no, n.state, n.reason, n.verdict, n.max_score, n.item_count, n.priority,
    n.relisted_from, n.not_fileable, n.complaint_ref, n.account, n.deadline, n.created_at, n.updated_at,
    n.filed_at, n.counter_noticed_at, n.resolved_at,
    (SELECT l.title FROM notice_items ni JOIN matches x ON x.id = ni.match_id
     JOIN listings l ON l.id = x.listing_id WHERE ni.notice_id = n.id
     ORDER BY x.score DESC, l.id LIMIT 1) AS lead_title";

const SUMMARY_FROM: &str =
    " FROM notices n JOIN brands b ON b.id = n.brand_id LEFT JOIN marks m ON m.id = n.mark_id";

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: i64,
    platform: String,
    channel: String,
    brand_id: i64,
    brand: String,
    mark_id: Option<i64>,
    mark: Option<String>,
    jurisdiction: Option<String>,
    registration_no: Option<String>,
    state: String,
    reason: String,
    verdict: String,
    max_score: f64,
    item_count: i64,
    priority: i64,
    relisted_from: Option<i64>,
    not_fileable: Option<String>,
    complaint_ref: Option<String>,
    account: Option<String>,
    deadline: Option<String>,
    created_at: String,
    updated_at: String,
    filed_at: Option<String>,
    counter_noticed_at: Option<String>,
    resolved_at: Option<String>,
    lead_title: Option<String>,
}

pub(crate) fn parse_state(value: &str) -> Result<CaseState> {
    value.parse().map_err(|_| StoreError::Corrupt {
        table: "notices",
        column: "state",
        value: value.to_owned(),
    })
}

pub(crate) fn parse_outcome(table: &'static str, value: &str) -> Result<Outcome> {
    match value {
        "infringing" => Ok(Outcome::Infringing),
        "suspect" => Ok(Outcome::Suspect),
        "clear" => Ok(Outcome::Clear),
        other => Err(StoreError::Corrupt {
            table,
            column: "verdict",
            value: other.to_owned(),
        }),
    }
}

impl TryFrom<SummaryRow> for NoticeSummary {
    type Error = StoreError;
    fn try_from(r: SummaryRow) -> Result<Self> {
        Ok(NoticeSummary {
            kind: NoticeKind::of_platform(&r.platform),
            state: parse_state(&r.state)?,
            reason: r.reason.parse().map_err(|_| StoreError::Corrupt {
                table: "notices",
                column: "reason",
                value: r.reason.clone(),
            })?,
            verdict: parse_outcome("notices", &r.verdict)?,
            id: r.id,
            platform: r.platform,
            channel: r.channel,
            brand_id: r.brand_id,
            brand: r.brand,
            mark_id: r.mark_id,
            mark: r.mark,
            jurisdiction: r.jurisdiction,
            registration_no: r.registration_no,
            max_score: r.max_score,
            item_count: r.item_count,
            lead_title: r.lead_title,
            priority: r.priority,
            relisted_from: r.relisted_from,
            not_fileable: r.not_fileable,
            complaint_ref: r.complaint_ref,
            account: r.account,
            deadline: r.deadline,
            created_at: r.created_at,
            updated_at: r.updated_at,
            filed_at: r.filed_at,
            counter_noticed_at: r.counter_noticed_at,
            resolved_at: r.resolved_at,
        })
    }
}

/// A notice's state, why it cannot be filed, and its mark's text and expiry.
type StateRow = (String, Option<String>, Option<String>, Option<String>);

impl NoticeFilter {
    /// Whether it bounds the score: the one filter `notice_tallies` cannot count.
    fn has_score_bound(&self) -> bool {
        self.min_score.is_some() || self.max_score.is_some()
    }
}

/// The WHERE clause of `filter` over `notices n`.
fn push_filter(q: &mut QueryBuilder<Any>, f: &NoticeFilter) {
    push_filter_on(q, f, false);
}

/// The WHERE clause of `filter` over `notices n`, or over `notice_tallies n` (which has the
/// same platform, state, brand_id and verdict columns, and 0/1 `relisted` and `fileable`).
fn push_filter_on(q: &mut QueryBuilder<Any>, f: &NoticeFilter, tallies: bool) {
    q.push(" WHERE 1 = 1");
    if let Some(p) = &f.platform {
        q.push(" AND n.platform = ").push_bind(p.clone());
    }
    // By subquery, not the join, so counting needs no join at all.
    if let Some(b) = &f.brand {
        q.push(" AND n.brand_id IN (SELECT id FROM brands WHERE lower(name) = lower(")
            .push_bind(b.clone())
            .push("))");
    }
    if let Some(id) = f.brand_id {
        q.push(" AND n.brand_id = ").push_bind(id);
    }
    if !f.states.is_empty() {
        q.push(" AND n.state IN (");
        let mut list = q.separated(", ");
        for s in &f.states {
            list.push_bind(s.as_str());
        }
        q.push(")");
    }
    if let Some(v) = f.verdict {
        q.push(" AND n.verdict = ").push_bind(v.as_str());
    }
    if let Some(min) = f.min_score {
        q.push(" AND n.max_score >= ").push_bind(min);
    }
    if let Some(max) = f.max_score {
        q.push(" AND n.max_score <= ").push_bind(max);
    }
    let (relisted, fileable) = if tallies {
        (
            ["n.relisted = 1", "n.relisted = 0"],
            ["n.fileable = 1", "n.fileable = 0"],
        )
    } else {
        (
            ["n.relisted_from IS NOT NULL", "n.relisted_from IS NULL"],
            ["n.not_fileable IS NULL", "n.not_fileable IS NOT NULL"],
        )
    };
    if let Some(yes) = f.relisted {
        q.push(" AND ").push(relisted[usize::from(!yes)]);
    }
    if let Some(yes) = f.fileable {
        q.push(" AND ").push(fileable[usize::from(!yes)]);
    }
}

impl Store {
    /// A page of notices matching `filter`, in `sort` order, with the total count.
    pub async fn list_notices(
        &self,
        filter: &NoticeFilter,
        sort: NoticeSort,
        offset: u64,
        limit: u64,
    ) -> Result<NoticePage> {
        let limit = limit.clamp(1, MAX_PAGE);
        // One read transaction, so the total and the page are of the same moment.
        let mut tx = self.begin_write().await?;
        let (total, total_capped) = if filter.has_score_bound() {
            let mut q = QueryBuilder::new("SELECT count(*) FROM (SELECT 1 FROM notices n");
            push_filter(&mut q, filter);
            q.push(" LIMIT ")
                .push_bind(COUNT_CAP as i64)
                .push(") AS capped");
            let n: i64 = sql::build_scalar(&mut q).fetch_one(&mut **tx).await?;
            (n as u64, n as u64 >= COUNT_CAP)
        } else {
            let mut q = QueryBuilder::new(
                "SELECT CAST(coalesce(sum(n.n), 0) AS BIGINT) FROM notice_tallies n",
            );
            push_filter_on(&mut q, filter, true);
            let n: i64 = sql::build_scalar(&mut q).fetch_one(&mut **tx).await?;
            (n as u64, false)
        };
        // The page's ids first, from the index for its order (migration 0007) without touching
        // the table, then brand and mark names for those rows only: skipping `offset` rows
        // costs an index step each, not a row read and two joins. Pages in the back half of an
        // exact total are read from the index's other end, so the last page is as cheap as
        // the first.
        let (order, skip, take) = if !total_capped && offset < total && offset * 2 >= total {
            let end = (offset + limit).min(total);
            (sort.order_by_reversed(), total - end, end - offset)
        } else {
            (sort.order_by(), offset, limit)
        };
        let mut q = QueryBuilder::new("WITH page AS MATERIALIZED (SELECT n.id FROM notices n");
        push_filter(&mut q, filter);
        q.push(" ORDER BY ").push(order);
        q.push(" LIMIT ")
            .push_bind(take as i64)
            .push(" OFFSET ")
            .push_bind(skip.min(i64::MAX as u64) as i64);
        q.push(format!(
            ") SELECT {SUMMARY_COLUMNS} FROM page JOIN notices n ON n.id = page.id
             JOIN brands b ON b.id = n.brand_id LEFT JOIN marks m ON m.id = n.mark_id ORDER BY "
        ))
        .push(sort.order_by());
        let rows: Vec<SummaryRow> = sql::build_as(&mut q).fetch_all(&mut **tx).await?;
        tx.commit().await?;
        let notices = rows
            .into_iter()
            .map(NoticeSummary::try_from)
            .collect::<Result<_>>()?;
        Ok(NoticePage {
            total,
            total_capped,
            offset,
            limit,
            notices,
        })
    }

    /// How many notices match `filter`, exactly.
    pub async fn count_notices(&self, filter: &NoticeFilter) -> Result<u64> {
        // Without a score bound every filter is a column of `notice_tallies` (migration 0007),
        // whose triggers keep a count per group: a sum over at most a few thousand rows.
        let tallies = !filter.has_score_bound();
        let mut q = QueryBuilder::new(if tallies {
            "SELECT CAST(coalesce(sum(n.n), 0) AS BIGINT) FROM notice_tallies n"
        } else {
            "SELECT count(*) FROM notices n"
        });
        push_filter_on(&mut q, filter, tallies);
        let n: i64 = sql::build_scalar(&mut q).fetch_one(&self.pool).await?;
        Ok(n as u64)
    }

    /// Notice counts per platform and state.
    pub(crate) async fn notice_counts(&self) -> Result<Vec<StateCount>> {
        Ok(sql::query_as(
            "SELECT platform, state, CAST(sum(n) AS BIGINT) AS count FROM notice_tallies GROUP BY platform, state
             HAVING sum(n) > 0 ORDER BY platform, state",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// One notice as the queue shows it.
    pub async fn notice(&self, id: i64) -> Result<Option<NoticeSummary>> {
        let row: Option<SummaryRow> = sql::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SUMMARY_COLUMNS}{SUMMARY_FROM} WHERE n.id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(NoticeSummary::try_from).transpose()
    }

    /// A notice with its listings, matches, evidence references and history.
    pub async fn notice_detail(&self, id: i64) -> Result<Option<NoticeDetail>> {
        let Some(notice) = self.notice(id).await? else {
            return Ok(None);
        };
        let (owner,): (String,) = sql::query_as("SELECT owner FROM brands WHERE id = ?")
            .bind(notice.brand_id)
            .fetch_one(&self.pool)
            .await?;
        let (mark_classes, mark_expires) = match notice.mark_id {
            Some(mark_id) => {
                let classes: Vec<i64> = sql::query_scalar(
                    "SELECT class FROM mark_classes WHERE mark_id = ? ORDER BY class",
                )
                .bind(mark_id)
                .fetch_all(&self.pool)
                .await?;
                let expires: Option<String> =
                    sql::query_scalar("SELECT expires FROM marks WHERE id = ?")
                        .bind(mark_id)
                        .fetch_optional(&self.pool)
                        .await?
                        .flatten();
                (classes.into_iter().map(|c| c as u8).collect(), expires)
            }
            None => (Vec::new(), None),
        };
        let items = self.notice_items(id).await?;
        let history = self.notice_history(id).await?;
        Ok(Some(NoticeDetail {
            notice,
            owner,
            mark_classes,
            mark_expires,
            items,
            history,
        }))
    }

    /// The listings of a notice, with their matches and evidence, in the order they were added.
    pub async fn notice_items(&self, notice_id: i64) -> Result<Vec<NoticeItem>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            match_id: i64,
            listing_id: i64,
            platform: String,
            item_id: String,
            url: String,
            title: String,
            seller: Option<String>,
            price: Option<f64>,
            currency: String,
            category: Option<String>,
            #[sqlx(try_from = "Flag")]
            is_ad: bool,
            first_seen: String,
            last_seen: String,
            verdict: String,
            score: f64,
            reasons: String,
            matcher_version: String,
            mark_id: Option<i64>,
            mark: Option<String>,
            registration_no: Option<String>,
            jurisdiction: Option<String>,
            relisted_from: Option<i64>,
            relisted_reason: Option<String>,
            evidence_id: Option<i64>,
            detail_evidence_id: Option<i64>,
            domain_display: Option<String>,
            domain_rule: Option<String>,
            domain_source: Option<String>,
            domain_state: Option<String>,
            domain_records: Option<String>,
            domain_first_seen: Option<String>,
            registered_on: Option<String>,
            registrant: Option<String>,
        }
        let rows: Vec<Row> = sql::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT ni.match_id, l.id AS listing_id, l.platform, l.item_id, l.url, l.title, l.seller, l.price,
                    l.currency, l.category, l.is_ad, l.first_seen, l.last_seen, m.verdict, m.score, m.reasons,
                    m.matcher_version, m.mark_id, mk.text AS mark, mk.registration_no, mk.jurisdiction,
                    ni.relisted_from, ni.relisted_reason, l.evidence_id, l.detail_evidence_id,
                    d.display AS domain_display, d.rule AS domain_rule, d.source AS domain_source,
                    d.state AS domain_state, d.records AS domain_records,
                    d.first_seen AS domain_first_seen, d.registered_on, d.registrant
             FROM notice_items ni JOIN matches m ON m.id = ni.match_id JOIN listings l ON l.id = m.listing_id
             LEFT JOIN marks mk ON mk.id = m.mark_id
             LEFT JOIN domain_names d ON d.listing_id = l.id
             WHERE ni.notice_id = ? ORDER BY {}",
            self.backend.insertion_order("ni")
        )))
        .bind(notice_id)
        .fetch_all(&self.pool)
        .await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            let reasons: Vec<Reason> =
                serde_json::from_str(&r.reasons).map_err(|_| StoreError::Corrupt {
                    table: "matches",
                    column: "reasons",
                    value: r.reasons.clone(),
                })?;
            let mut evidence = Vec::new();
            for (id, role) in [
                (r.evidence_id, EvidenceRole::SearchPage),
                (r.detail_evidence_id, EvidenceRole::ItemPage),
            ] {
                if let Some(id) = id
                    && let Some(mut e) = self.evidence_ref(id, role).await?
                {
                    // A domain finding's page is its site, or its DNS records (`dns:` URL).
                    if r.platform == crate::model::DOMAINS_PLATFORM {
                        e.role = if e.url.starts_with("dns:") {
                            EvidenceRole::DnsAnswer
                        } else {
                            EvidenceRole::DomainSite
                        };
                    }
                    evidence.push(e);
                }
            }
            items.push(NoticeItem {
                verdict: parse_outcome("matches", &r.verdict)?,
                match_id: r.match_id,
                listing_id: r.listing_id,
                platform: r.platform,
                item_id: r.item_id,
                url: r.url,
                title: r.title,
                seller: r.seller,
                price: r.price,
                currency: r.currency,
                category: r.category,
                is_ad: r.is_ad,
                first_seen: r.first_seen,
                last_seen: r.last_seen,
                score: r.score,
                reasons,
                matcher_version: r.matcher_version,
                mark_id: r.mark_id,
                mark: r.mark,
                registration_no: r.registration_no,
                jurisdiction: r.jurisdiction,
                relisted_from: r.relisted_from,
                relisted_reason: r.relisted_reason,
                evidence,
                domain: r.domain_display.map(|display| DomainFacts {
                    display,
                    rule: r.domain_rule.unwrap_or_default(),
                    source: r.domain_source.unwrap_or_default(),
                    state: r.domain_state.unwrap_or_default(),
                    records: r.domain_records.unwrap_or_default(),
                    first_seen: r.domain_first_seen.unwrap_or_default(),
                    registered_on: r.registered_on,
                    registrant: r.registrant,
                }),
            });
        }
        Ok(items)
    }

    async fn evidence_ref(&self, id: i64, role: EvidenceRole) -> Result<Option<EvidenceRef>> {
        let row: Option<(i64, String, String, i64, String, i64, String)> = sql::query_as(
            "SELECT id, url, fetched_at, status, body_sha256, body_len, chain_hash FROM evidence WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(
            |(id, url, fetched_at, status, sha256, body_len, chain_hash)| EvidenceRef {
                id,
                role,
                url,
                fetched_at,
                status,
                sha256,
                body_len,
                chain_hash,
            },
        ))
    }

    /// The marks a notice rests on: its own, then any other its listings' matches name, in
    /// id order.
    pub async fn notice_marks(&self, notice_id: i64) -> Result<Vec<NoticeMark>> {
        let rows: Vec<(i64, String, String, String, Option<String>)> = sql::query_as(
            "SELECT mk.id, mk.text, mk.jurisdiction, mk.registration_no, mk.expires FROM marks mk
             WHERE mk.id IN (SELECT mark_id FROM notices WHERE id = ?1
                             UNION SELECT m.mark_id FROM notice_items ni JOIN matches m ON m.id = ni.match_id
                                   WHERE ni.notice_id = ?1)
             ORDER BY mk.id = (SELECT mark_id FROM notices WHERE id = ?1) DESC, mk.id",
        )
        .bind(notice_id)
        .fetch_all(&self.pool)
        .await?;
        let mut marks = Vec::with_capacity(rows.len());
        for (id, text, jurisdiction, registration_no, expires) in rows {
            let classes: Vec<i64> = sql::query_scalar(
                "SELECT class FROM mark_classes WHERE mark_id = ? ORDER BY class",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
            marks.push(NoticeMark {
                id,
                text,
                jurisdiction,
                registration_no,
                classes: classes.into_iter().map(|c| c as u8).collect(),
                expires,
            });
        }
        Ok(marks)
    }

    /// The audit rows of one notice, oldest first.
    pub async fn notice_history(&self, notice_id: i64) -> Result<Vec<AuditEntry>> {
        Ok(sql::query_as(
            "SELECT id, at, actor, action, from_state, to_state, note, reject_reason FROM audit_log
             WHERE entity = 'notice' AND entity_id = ? ORDER BY id",
        )
        .bind(notice_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Complaints filed under one platform account since a date (YYYY-MM-DD), by outcome,
    /// counted in listings (a platform judges each listing of a complaint), from the daily
    /// tally migration 0027 keeps. See [`GoodFaithCounts`].
    pub(crate) async fn good_faith_counts(&self, since: &str) -> Result<Vec<GoodFaithCounts>> {
        Ok(sql::query_as(
            "SELECT platform, account,
                    CAST(sum(filed) AS BIGINT) AS filed, CAST(sum(pending) AS BIGINT) AS pending,
                    CAST(sum(removed) AS BIGINT) AS removed, CAST(sum(rejected) AS BIGINT) AS rejected,
                    CAST(sum(counter_noticed) AS BIGINT) AS counter_noticed
             FROM good_faith_days WHERE day >= ?
             GROUP BY platform, account HAVING sum(filed) <> 0 ORDER BY platform, account",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Counter-noticed cases whose Art. 43 deadline falls on or before `until` (YYYY-MM-DD),
    /// overdue ones included, nearest first.
    pub async fn upcoming_deadlines(&self, until: &str) -> Result<Vec<NoticeSummary>> {
        let rows: Vec<SummaryRow> = sql::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SUMMARY_COLUMNS}{SUMMARY_FROM}
             WHERE n.state = 'counter_noticed' AND n.deadline IS NOT NULL AND n.deadline <= ?
             ORDER BY n.deadline, n.id"
        )))
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(NoticeSummary::try_from).collect()
    }

    /// Sellers with at least `min_listings` listings in cases (rejected ones aside), most
    /// relistings first.
    pub async fn repeat_sellers(&self, min_listings: u32) -> Result<Vec<RepeatSeller>> {
        Ok(sql::query_as(
            "SELECT l.platform, l.seller, count(DISTINCT l.id) AS listings, count(DISTINCT n.id) AS cases,
                    count(DISTINCT CASE WHEN EXISTS (SELECT 1 FROM audit_log a WHERE a.entity = 'notice'
                          AND a.entity_id = n.id AND a.to_state = 'removed') THEN l.id END) AS removed,
                    count(DISTINCT CASE WHEN ni.relisted_from IS NOT NULL THEN l.id END) AS relisted,
                    max(l.last_seen) AS last_seen
             FROM notice_items ni JOIN notices n ON n.id = ni.notice_id
             JOIN matches m ON m.id = ni.match_id JOIN listings l ON l.id = m.listing_id
             WHERE l.seller IS NOT NULL AND trim(l.seller) <> '' AND n.state <> 'rejected'
             GROUP BY l.platform, l.seller HAVING count(DISTINCT l.id) >= ?
             ORDER BY relisted DESC, listings DESC, l.platform, l.seller NULLS FIRST",
        )
        .bind(i64::from(min_listings))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Infringing and suspect listings in the given notices: what a batch about to be filed
    /// holds, for the good-faith governor.
    pub(crate) async fn batch_verdicts(&self, notice_ids: &[i64]) -> Result<(i64, i64)> {
        let (mut infringing, mut suspect) = (0, 0);
        for id in notice_ids {
            let (i, s): (i64, i64) = sql::query_as(
                "SELECT count(*) FILTER (WHERE m.verdict = 'infringing'), count(*) FILTER (WHERE m.verdict <> 'infringing')
                 FROM notice_items ni JOIN matches m ON m.id = ni.match_id WHERE ni.notice_id = ?",
            )
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
            infringing += i;
            suspect += s;
        }
        Ok((infringing, suspect))
    }

    /// Moves a notice to `to`, writing the change and its audit row (who, when, from, to, why)
    /// in one transaction. The only way a notice changes state ([`Store::reject_notice`] is this
    /// step with a reviewer's feedback).
    ///
    /// Refused, with nothing written: a step the lifecycle doesn't have; approving or filing a
    /// notice that cannot be filed (no CN registration, expired mark: the reason is given);
    /// filing without the platform's complaint reference.
    pub async fn transition_notice(
        &self,
        id: i64,
        to: CaseState,
        actor: &str,
        details: &TransitionDetails,
    ) -> std::result::Result<NoticeSummary, TransitionError> {
        let mut tx = self.begin_write().await?;
        Self::apply_transition(&mut tx, id, to, actor, details, None).await?;
        tx.commit().await?;
        self.notice(id).await?.ok_or(TransitionError::NotFound(id))
    }

    /// Rejects a notice with a reviewer's feedback: the reason goes on the rejection's audit
    /// row, and the allow rules asked for are added, all in one transaction. A platform's
    /// rejection (after filing) takes no feedback; an allow rule needs a reason.
    pub async fn reject_notice(
        &self,
        id: i64,
        actor: &str,
        details: &TransitionDetails,
        feedback: &Feedback,
    ) -> std::result::Result<Rejection, TransitionError> {
        let mut tx = self.begin_write().await?;
        let from = Self::apply_transition(
            &mut tx,
            id,
            CaseState::Rejected,
            actor,
            details,
            feedback.reason,
        )
        .await?;
        let reviewer = matches!(from, CaseState::Draft | CaseState::Approved);
        if !reviewer && (feedback.reason.is_some() || !feedback.allow.is_empty()) {
            return Err(TransitionError::Feedback {
                id,
                field: match (feedback.reason, feedback.allow.first()) {
                    (Some(_), _) => "why",
                    (None, Some(AllowRequest::Seller(_))) => "allow_seller",
                    (None, _) => "allow_title",
                },
                message: format!(
                    "a platform's rejection of a {from} notice takes no reviewer reason or allow rule"
                ),
            });
        }
        let (added, existing) =
            super::allow::add_rules(&mut tx, id, actor, feedback.reason, &feedback.allow).await?;
        tx.commit().await?;
        let notice = self
            .notice(id)
            .await?
            .ok_or(TransitionError::NotFound(id))?;
        Ok(Rejection {
            notice,
            added,
            existing,
        })
    }

    /// One step of the lifecycle inside the caller's transaction: checks, the notice's new state
    /// and its audit row (with the reviewer's reason on a rejection). Returns the state it left.
    async fn apply_transition(
        tx: &mut Transaction<'_, Any>,
        id: i64,
        to: CaseState,
        actor: &str,
        details: &TransitionDetails,
        reject_reason: Option<RejectReason>,
    ) -> std::result::Result<CaseState, TransitionError> {
        let row: Option<StateRow> = sql::query_as(
            "SELECT n.state, n.not_fileable, m.text, m.expires FROM notices n LEFT JOIN marks m ON m.id = n.mark_id
             WHERE n.id = ?",
        )
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some((state, not_fileable, mark_text, mark_expires)) = row else {
            return Err(TransitionError::NotFound(id));
        };
        let from = parse_state(&state)?;
        if !from.can_become(to) {
            return Err(TransitionError::Invalid { id, from, to });
        }
        let now = now();
        let today = &now[..10];
        if matches!(to, CaseState::Approved | CaseState::Filed) {
            if let Some(reason) = not_fileable {
                return Err(TransitionError::NotFileable { id, to, reason });
            }
            // The registry may have changed since drafting: expiry is checked on the day.
            if let Some(expires) = mark_expires.filter(|e| e.as_str() < today) {
                return Err(TransitionError::NotFileable {
                    id,
                    to,
                    reason: format!(
                        "mark `{}` expired on {expires}",
                        mark_text.unwrap_or_default()
                    ),
                });
            }
        }
        let reference = details
            .complaint_ref
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        if to == CaseState::Filed && reference.is_none() {
            return Err(TransitionError::MissingReference { id });
        }
        let account = details
            .account
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty());
        let note = details
            .note
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty());
        sql::query("UPDATE notices SET state = ?, updated_at = ? WHERE id = ?")
            .bind(to.as_str())
            .bind(&now)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        match to {
            CaseState::Filed => {
                sql::query(
                    "UPDATE notices SET complaint_ref = ?, account = coalesce(?, account, 'default'), filed_at = ?
                     WHERE id = ?",
                )
                .bind(reference)
                .bind(account)
                .bind(&now)
                .bind(id)
                .execute(&mut **tx)
                .await?;
            }
            CaseState::CounterNoticed => {
                let received = chrono::Utc::now().date_naive();
                let deadline = crate::model::counter_notice_deadline(received);
                sql::query("UPDATE notices SET counter_noticed_at = ?, deadline = ? WHERE id = ?")
                    .bind(&now)
                    .bind(deadline.to_string())
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
            }
            CaseState::Removed | CaseState::Rejected | CaseState::Closed => {
                sql::query(
                    "UPDATE notices SET resolved_at = coalesce(resolved_at, ?) WHERE id = ?",
                )
                .bind(&now)
                .bind(id)
                .execute(&mut **tx)
                .await?;
            }
            CaseState::Draft | CaseState::Approved => {}
        }
        let action = match (from, to) {
            (_, CaseState::Approved) => "approve",
            (_, CaseState::Draft) => "reopen",
            (_, CaseState::Filed) => "file",
            (_, CaseState::Removed) => "removed",
            (_, CaseState::Rejected) => "reject",
            (_, CaseState::CounterNoticed) => "counter_notice",
            (_, CaseState::Closed) => "close",
        };
        // The reference goes into the audit row too, so the history alone tells the story.
        let note = match (to, reference, note) {
            (CaseState::Filed, Some(r), Some(n)) => Some(format!("complaint {r}: {n}")),
            (CaseState::Filed, Some(r), None) => Some(format!("complaint {r}")),
            (_, _, n) => n.map(str::to_owned),
        };
        sql::query(
            "INSERT INTO audit_log (at, actor, entity, entity_id, action, from_state, to_state, note,
                                    reject_reason)
             VALUES (?, ?, 'notice', ?, ?, ?, ?, ?, ?)",
        )
        .bind(&now)
        .bind(actor)
        .bind(id)
        .bind(action)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(note)
        .bind(reject_reason.map(RejectReason::as_str))
        .execute(&mut **tx)
        .await?;
        Ok(from)
    }
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
    /// The reviewer's feedback on a rejection does not fit the notice; `field` names the input.
    #[error("notice {id}: `{field}`: {message}")]
    Feedback {
        id: i64,
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for TransitionError {
    fn from(e: sqlx::Error) -> Self {
        TransitionError::Store(e.into())
    }
}

impl TransitionError {
    /// A refusal by the lifecycle's rules (bad input), not a storage failure.
    pub fn is_refusal(&self) -> bool {
        !matches!(self, TransitionError::Store(_))
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

#[cfg(test)]
mod tests {
    use super::*;

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

    use crate::store::{PlannedItem, PlannedNotice};
    use crate::test_support::TestDb;

    /// A draft notice on Nike's CN mark with one listing.
    async fn draft(db: &TestDb, item: &str, mark: (&str, &str), brand: &str) -> i64 {
        let (_, match_id) = db
            .listing_with_match(
                "taobao",
                item,
                "耐克 高仿 跑鞋",
                "小店",
                brand,
                Some(mark),
                "infringing",
                0.9,
            )
            .await;
        let (brand_id, mark_id): (i64, i64) =
            sql::query_as("SELECT m.brand_id, m.mark_id FROM matches m WHERE m.id = ?")
                .bind(match_id)
                .fetch_one(db.pool())
                .await
                .unwrap();
        let saved = db
            .store
            .save_drafts(
                &[PlannedNotice {
                    existing: None,
                    platform: "taobao".into(),
                    channel: "Alibaba IPP".into(),
                    brand_id,
                    mark_id: Some(mark_id),
                    reason: InfringementKind::Counterfeit,
                    group_key: format!("taobao|{brand_id}|{mark_id}|{item}"),
                    not_fileable: None,
                    relisted_from: None,
                    priority: 0,
                    items: vec![PlannedItem {
                        match_id,
                        relisted_from: None,
                        relisted_reason: None,
                    }],
                }],
                "drafter",
            )
            .await
            .unwrap();
        saved.created[0]
    }

    fn details(note: &str) -> TransitionDetails {
        TransitionDetails {
            note: Some(note.into()),
            ..TransitionDetails::default()
        }
    }

    #[tokio::test]
    async fn a_case_runs_its_course_with_an_audit_row_per_step() {
        let db = TestDb::new().await;
        let id = draft(&db, "1", ("NIKE", "CN"), "Nike").await;
        let s = &db.store;
        s.transition_notice(id, CaseState::Approved, "alice", &details("clear copy"))
            .await
            .unwrap();
        let filed = s
            .transition_notice(
                id,
                CaseState::Filed,
                "bob",
                &TransitionDetails {
                    complaint_ref: Some("IPP-2026-001".into()),
                    account: Some("nike-ipp".into()),
                    note: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(filed.complaint_ref.as_deref(), Some("IPP-2026-001"));
        assert_eq!(filed.account.as_deref(), Some("nike-ipp"));
        assert!(filed.filed_at.is_some());
        let cn = s
            .transition_notice(
                id,
                CaseState::CounterNoticed,
                "bob",
                &details("seller claims licence"),
            )
            .await
            .unwrap();
        let deadline = crate::model::counter_notice_deadline(chrono::Utc::now().date_naive());
        assert_eq!(cn.deadline, Some(deadline.to_string()));
        s.transition_notice(id, CaseState::Closed, "bob", &details("no suit"))
            .await
            .unwrap();

        let history = s.notice_history(id).await.unwrap();
        let steps: Vec<_> = history
            .iter()
            .map(|h| {
                (
                    h.actor.as_str(),
                    h.from_state.as_deref(),
                    h.to_state.as_deref(),
                    h.note.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            steps,
            vec![
                ("drafter", None, Some("draft"), Some("1 listing(s)")),
                ("alice", Some("draft"), Some("approved"), Some("clear copy")),
                (
                    "bob",
                    Some("approved"),
                    Some("filed"),
                    Some("complaint IPP-2026-001")
                ),
                (
                    "bob",
                    Some("filed"),
                    Some("counter_noticed"),
                    Some("seller claims licence")
                ),
                (
                    "bob",
                    Some("counter_noticed"),
                    Some("closed"),
                    Some("no suit")
                ),
            ]
        );
        assert!(history.iter().all(|h| !h.at.is_empty()));
    }

    #[tokio::test]
    async fn every_step_valid_and_invalid_from_every_state() {
        let db = TestDb::new().await;
        // A path reaching each state, from a fresh draft.
        let paths: [(CaseState, &[CaseState]); 7] = [
            (CaseState::Draft, &[]),
            (CaseState::Approved, &[CaseState::Approved]),
            (CaseState::Filed, &[CaseState::Approved, CaseState::Filed]),
            (
                CaseState::Removed,
                &[CaseState::Approved, CaseState::Filed, CaseState::Removed],
            ),
            (CaseState::Rejected, &[CaseState::Rejected]),
            (
                CaseState::CounterNoticed,
                &[
                    CaseState::Approved,
                    CaseState::Filed,
                    CaseState::CounterNoticed,
                ],
            ),
            (CaseState::Closed, &[CaseState::Rejected, CaseState::Closed]),
        ];
        let with_ref = TransitionDetails {
            complaint_ref: Some("REF-1".into()),
            ..TransitionDetails::default()
        };
        let mut n = 0;
        for (from, path) in paths {
            for to in CaseState::ALL {
                n += 1;
                let id = draft(&db, &n.to_string(), ("NIKE", "CN"), "Nike").await;
                for step in path {
                    db.store
                        .transition_notice(id, *step, "t", &with_ref)
                        .await
                        .unwrap();
                }
                let before = db.store.notice_history(id).await.unwrap().len();
                let result = db.store.transition_notice(id, to, "t", &with_ref).await;
                let after = db.store.notice_history(id).await.unwrap();
                if from.can_become(to) {
                    let notice = result.unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
                    assert_eq!(notice.state, to);
                    assert_eq!(after.len(), before + 1);
                    let last = after.last().unwrap();
                    assert_eq!(last.from_state.as_deref(), Some(from.as_str()));
                    assert_eq!(last.to_state.as_deref(), Some(to.as_str()));
                } else {
                    let e = result.expect_err(&format!("{from} -> {to} must be refused"));
                    assert!(
                        e.to_string().contains(&format!("from {from} to {to}")),
                        "{e}"
                    );
                    assert_eq!(after.len(), before, "a refused step leaves no audit row");
                    assert_eq!(db.store.notice(id).await.unwrap().unwrap().state, from);
                }
            }
        }
    }

    #[tokio::test]
    async fn filing_needs_a_reference_and_a_fileable_right() {
        let db = TestDb::new().await;
        let id = draft(&db, "1", ("NIKE", "CN"), "Nike").await;
        db.store
            .transition_notice(id, CaseState::Approved, "t", &TransitionDetails::default())
            .await
            .unwrap();
        let e = db
            .store
            .transition_notice(id, CaseState::Filed, "t", &details("  "))
            .await
            .unwrap_err();
        assert!(matches!(e, TransitionError::MissingReference { .. }), "{e}");

        // 万代 (CN) expired on 2024-03-01: approving is refused with the reason.
        let expired = draft(&db, "2", ("万代", "CN"), "Bandai").await;
        let e = db
            .store
            .transition_notice(
                expired,
                CaseState::Approved,
                "t",
                &TransitionDetails::default(),
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("expired on 2024-03-01"), "{e}");
        assert_eq!(db.store.notice_history(expired).await.unwrap().len(), 1);
        // Rejecting it is fine.
        db.store
            .transition_notice(expired, CaseState::Rejected, "t", &details("mark lapsed"))
            .await
            .unwrap();
        assert!(matches!(
            db.store
                .transition_notice(999, CaseState::Approved, "t", &TransitionDetails::default())
                .await,
            Err(TransitionError::NotFound(999))
        ));
    }

    #[tokio::test]
    async fn queue_filters_sorts_and_pages() {
        let db = TestDb::new().await;
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(draft(&db, &format!("n{i}"), ("NIKE", "CN"), "Nike").await);
        }
        let adidas = draft(&db, "a1", ("ADIDAS", "CN"), "Adidas").await;
        db.store
            .transition_notice(
                adidas,
                CaseState::Approved,
                "t",
                &TransitionDetails::default(),
            )
            .await
            .unwrap();
        let all = db
            .store
            .list_notices(&NoticeFilter::default(), NoticeSort::Newest, 0, 4)
            .await
            .unwrap();
        assert_eq!(all.total, 6);
        assert_eq!(all.notices.len(), 4);
        assert_eq!(all.notices[0].id, adidas);
        let rest = db
            .store
            .list_notices(&NoticeFilter::default(), NoticeSort::Newest, 4, 4)
            .await
            .unwrap();
        assert_eq!(rest.notices.len(), 2);
        assert_eq!(rest.notices[1].id, ids[0]);

        let nike = NoticeFilter {
            brand: Some("nike".into()),
            states: vec![CaseState::Draft],
            platform: Some("taobao".into()),
            verdict: Some(Outcome::Infringing),
            min_score: Some(0.85),
            max_score: Some(0.95),
            relisted: Some(false),
            ..NoticeFilter::default()
        };
        let page = db
            .store
            .list_notices(&nike, NoticeSort::Oldest, 0, 50)
            .await
            .unwrap();
        assert_eq!(page.notices.iter().map(|n| n.id).collect::<Vec<_>>(), ids);
        assert!(
            page.notices
                .iter()
                .all(|n| n.brand == "Nike" && n.item_count == 1)
        );
        let none = NoticeFilter {
            min_score: Some(0.95),
            ..NoticeFilter::default()
        };
        assert_eq!(db.store.count_notices(&none).await.unwrap(), 0);
        let approved = NoticeFilter {
            states: vec![CaseState::Approved],
            ..NoticeFilter::default()
        };
        assert_eq!(db.store.count_notices(&approved).await.unwrap(), 1);

        let detail = db.store.notice_detail(adidas).await.unwrap().unwrap();
        assert_eq!(detail.owner, "adidas AG");
        assert_eq!(detail.mark_classes, vec![18, 25, 28]);
        assert_eq!(detail.items.len(), 1);
        let item = &detail.items[0];
        assert_eq!(item.item_id, "a1");
        assert_eq!(
            item.reasons[1].code,
            crate::model::ReasonCode::CounterfeitTerm
        );
        assert_eq!(item.evidence.len(), 1);
        assert_eq!(item.evidence[0].role, EvidenceRole::SearchPage);
        assert_eq!(item.evidence[0].sha256.len(), 64);
        assert_eq!(detail.history.len(), 2);
        let json = serde_json::to_value(&detail).unwrap();
        assert_eq!(json["state"], "approved");
        assert_eq!(json["items"][0]["verdict"], "infringing");
    }

    /// Every group's tally against a count over `notices` itself.
    async fn assert_tallies_exact(db: &TestDb) {
        let wrong: Vec<(String, String, i64, i64, Option<i64>)> = sql::query_as(
            "WITH g AS (SELECT platform, state, brand_id, verdict,
                               CASE WHEN relisted_from IS NOT NULL THEN 1 ELSE 0 END AS r,
                               CASE WHEN not_fileable IS NULL THEN 1 ELSE 0 END AS f, count(*) AS c
                        FROM notices GROUP BY 1, 2, 3, 4, 5, 6)
             SELECT g.platform, g.state, g.brand_id, g.c, t.n FROM g LEFT JOIN notice_tallies t
               ON t.platform = g.platform AND t.state = g.state AND t.brand_id = g.brand_id
              AND t.verdict = g.verdict AND t.relisted = g.r AND t.fileable = g.f
             WHERE t.n IS DISTINCT FROM g.c",
        )
        .fetch_all(db.pool())
        .await
        .unwrap();
        assert!(wrong.is_empty(), "tallies off: {wrong:?}");
        let (tallied, counted): (i64, i64) = sql::query_as(
            "SELECT (SELECT CAST(sum(n) AS BIGINT) FROM notice_tallies), (SELECT count(*) FROM notices)",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(tallied, counted);
    }

    #[tokio::test]
    async fn queue_totals_stay_exact_through_every_kind_of_change() {
        let db = TestDb::new().await;
        let mut ids = Vec::new();
        for i in 0..8 {
            let (mark, brand) = if i % 3 == 0 {
                (("ADIDAS", "CN"), "Adidas")
            } else {
                (("NIKE", "CN"), "Nike")
            };
            ids.push(draft(&db, &format!("t{i}"), mark, brand).await);
        }
        assert_tallies_exact(&db).await;
        let s = &db.store;
        // The lifecycle's own writes.
        s.transition_notice(ids[0], CaseState::Approved, "t", &details("ok"))
            .await
            .unwrap();
        s.transition_notice(ids[1], CaseState::Rejected, "t", &details("no"))
            .await
            .unwrap();
        s.transition_notice(ids[1], CaseState::Closed, "t", &details("done"))
            .await
            .unwrap();
        // What rematching and redrafting change, written as any other writer would.
        let changes = [
            (
                "UPDATE notices SET verdict = 'suspect', max_score = 0.6 WHERE id = ?",
                ids[2],
            ),
            (
                "UPDATE notices SET not_fileable = 'no CN registration' WHERE id = ?",
                ids[3],
            ),
            ("UPDATE notices SET relisted_from = 1 WHERE id = ?", ids[4]),
            ("UPDATE notices SET platform = 'jd' WHERE id = ?", ids[5]),
            ("UPDATE notices SET max_score = 0.95 WHERE id = ?", ids[5]),
            (
                "UPDATE notices SET not_fileable = NULL WHERE id = ?",
                ids[3],
            ),
            ("DELETE FROM notice_items WHERE notice_id = ?", ids[6]),
            ("DELETE FROM notices WHERE id = ?", ids[6]),
        ];
        for (sql, id) in changes {
            sql::query(sql).bind(id).execute(db.pool()).await.unwrap();
            assert_tallies_exact(&db).await;
        }

        // Each filter's total is what listing everything finds.
        let filters = [
            NoticeFilter::default(),
            NoticeFilter {
                states: vec![CaseState::Draft],
                ..NoticeFilter::default()
            },
            NoticeFilter {
                states: vec![CaseState::Draft, CaseState::Approved],
                platform: Some("taobao".into()),
                ..NoticeFilter::default()
            },
            NoticeFilter {
                brand: Some("NIKE".into()),
                verdict: Some(Outcome::Infringing),
                ..NoticeFilter::default()
            },
            NoticeFilter {
                relisted: Some(true),
                ..NoticeFilter::default()
            },
            NoticeFilter {
                relisted: Some(false),
                fileable: Some(true),
                ..NoticeFilter::default()
            },
            NoticeFilter {
                fileable: Some(false),
                ..NoticeFilter::default()
            },
            NoticeFilter {
                platform: Some("jd".into()),
                ..NoticeFilter::default()
            },
            NoticeFilter {
                min_score: Some(0.7),
                ..NoticeFilter::default()
            },
        ];
        for f in filters {
            let page = s
                .list_notices(&f, NoticeSort::Newest, 0, MAX_PAGE)
                .await
                .unwrap();
            assert_eq!(page.total, page.notices.len() as u64, "{f:?}");
            assert!(!page.total_capped);
            assert_eq!(s.count_notices(&f).await.unwrap(), page.total, "{f:?}");
        }
        let counts = s.notice_counts().await.unwrap();
        assert_eq!(counts.iter().map(|c| c.count).sum::<i64>(), 7);
        assert!(counts.iter().all(|c| c.count > 0));
    }

    #[tokio::test]
    async fn every_order_pages_through_the_queue_without_gaps_or_overlap() {
        let db = TestDb::new().await;
        let mut ids = Vec::new();
        for i in 0..9 {
            ids.push(draft(&db, &format!("p{i}"), ("NIKE", "CN"), "Nike").await);
        }
        // Ties in every order, so the id decides between equals.
        for (k, id) in ids.iter().enumerate() {
            let k = k as i64;
            sql::query(
                "UPDATE notices SET priority = ?, max_score = ?, item_count = ?, updated_at = ?,
                        deadline = ? WHERE id = ?",
            )
            .bind(k % 2)
            .bind(0.5 + (k % 3) as f64 / 10.0)
            .bind(1 + k % 4)
            .bind(format!("2026-01-0{}T00:00:00.000Z", 1 + k % 3))
            .bind((k % 3 != 0).then(|| format!("2026-02-{:02}", 10 + k % 5)))
            .bind(id)
            .execute(db.pool())
            .await
            .unwrap();
        }
        let filter = NoticeFilter {
            states: vec![CaseState::Draft],
            ..NoticeFilter::default()
        };
        for sort in [
            NoticeSort::Priority,
            NoticeSort::Newest,
            NoticeSort::Oldest,
            NoticeSort::Score,
            NoticeSort::Items,
            NoticeSort::Deadline,
            NoticeSort::Updated,
        ] {
            let expected: Vec<i64> = sql::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT n.id FROM notices n WHERE n.state = 'draft' ORDER BY {}",
                sort.order_by()
            )))
            .fetch_all(db.pool())
            .await
            .unwrap();
            assert_eq!(expected.len(), 9);
            // Pages in the back half are read backwards; both ways must agree.
            for size in [2, 4] {
                let mut paged = Vec::new();
                for offset in (0..10).step_by(size) {
                    let page = db
                        .store
                        .list_notices(&filter, sort, offset as u64, size as u64)
                        .await
                        .unwrap();
                    assert_eq!(page.total, 9);
                    paged.extend(page.notices.iter().map(|n| n.id));
                }
                assert_eq!(paged, expected, "{sort:?}, {size} a page");
            }
        }
    }

    #[tokio::test]
    async fn a_score_bound_total_is_counted_up_to_the_cap_and_says_so() {
        let db = TestDb::new().await;
        let id = draft(&db, "c0", ("NIKE", "CN"), "Nike").await;
        // COUNT_CAP more notices like the first, without listings: only the queue reads them.
        sql::query(
            "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?)
             INSERT INTO notices (platform, brand_id, mark_id, channel, state, created_at,
                                  updated_at, item_count, max_score, verdict)
             SELECT platform, brand_id, mark_id, channel, state, created_at, updated_at, 1,
                    0.8 + (i % 10) / 100.0, 'infringing'
             FROM notices, k WHERE notices.id = ?",
        )
        .bind(COUNT_CAP as i64)
        .bind(id)
        .execute(db.pool())
        .await
        .unwrap();
        let all = NoticeFilter::default();
        let page = db
            .store
            .list_notices(&all, NoticeSort::Score, 0, 50)
            .await
            .unwrap();
        assert_eq!((page.total, page.total_capped), (COUNT_CAP + 1, false));
        let high = NoticeFilter {
            min_score: Some(0.8),
            ..NoticeFilter::default()
        };
        let page = db
            .store
            .list_notices(&high, NoticeSort::Score, 9_990, 50)
            .await
            .unwrap();
        assert_eq!((page.total, page.total_capped), (COUNT_CAP, true));
        // Paging goes on past the cap: the total is a lower bound, not the end.
        assert_eq!(page.notices.len(), 11);
        assert_eq!(db.store.count_notices(&high).await.unwrap(), COUNT_CAP + 1);
        let few = NoticeFilter {
            max_score: Some(0.805),
            ..NoticeFilter::default()
        };
        let page = db
            .store
            .list_notices(&few, NoticeSort::Score, 0, 50)
            .await
            .unwrap();
        assert_eq!((page.total, page.total_capped), (1_000, false));
    }
}
