//! Reviewer feedback: allow rules (a shop, or words in a title, that clear a brand's hits),
//! written with the rejection that asked for them, and how often reviewers agreed with the
//! matcher's flags over their recent decisions.

use super::sql;
use serde::Serialize;
use sqlx::{Any, Transaction};
use unicode_normalization::UnicodeNormalization as _;

use super::notices::{NoticeSummary, TransitionError};
use super::{Result, Store, StoreError, now};
use crate::model::{AllowKind, AllowRule, RejectReason};

/// Longest title pattern, in characters.
const MAX_TITLE_CHARS: usize = 100;
/// Most words in a title pattern.
const MAX_TITLE_WORDS: usize = 8;

/// What a reviewer says when rejecting a draft as not infringing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Feedback {
    /// Why it is not infringing. Optional, but an allow rule needs one.
    pub reason: Option<RejectReason>,
    /// Rules to add for the notice's brand.
    pub allow: Vec<AllowRequest>,
}

/// An allow rule a reviewer asks for, checked against the notice it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowRequest {
    /// The shop of the notice's listings: `None` for its only shop, or the shop named.
    Seller(Option<String>),
    /// Words that must all appear in a title; one of the notice's listings must have them.
    Title(String),
}

/// A stored allow rule, with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AllowRuleRow {
    pub id: i64,
    #[serde(flatten)]
    pub rule: AllowRule,
    /// The rejected notice, and the listing whose shop or title the rule was taken from.
    pub notice_id: Option<i64>,
    pub listing_id: Option<i64>,
    pub created_by: String,
    pub created_at: String,
}

/// Differs whenever the set of allow rules does (ids are never reused), so a cached matcher
/// knows to rebuild without reading the rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
pub struct AllowRulesStamp {
    max_id: i64,
    count: i64,
}

/// What [`Store::reject_notice`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejection {
    pub notice: NoticeSummary,
    /// Rules the rejection added.
    pub added: Vec<AllowRuleRow>,
    /// Rules it asked for that were already there, left as they were.
    pub existing: Vec<AllowRuleRow>,
}

/// Reviewers against the matcher over recent decisions. A decision is a notice's latest
/// approval (agreed: the flag was right) or rejection before filing (disagreed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewStats {
    pub decisions: u64,
    pub agreed: u64,
    pub disagreed: u64,
    /// `agreed / decisions`; none without decisions.
    pub agreement: Option<f64>,
    /// When the oldest and newest decision counted were made.
    pub since: Option<String>,
    pub until: Option<String>,
    /// Per reason code in the decided listings' verdicts, the most disagreements first.
    pub codes: Vec<CodeAgreement>,
    /// Rejections by the reviewer's reason, most first (`reason` none: not given).
    pub reject_reasons: Vec<ReasonCount>,
}

/// Decisions on notices with a listing whose verdict carries `code`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CodeAgreement {
    /// A `ReasonCode` name, as stored.
    pub code: String,
    pub decisions: u64,
    pub agreed: u64,
    pub disagreed: u64,
    pub agreement: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReasonCount {
    pub reason: Option<RejectReason>,
    pub count: u64,
}

/// Each notice's latest review decision, newest first, at most `?1`: approvals, and rejections
/// from draft or approved (a platform's rejection after filing is not a review). A notice sent
/// back to draft has no decision until the next one.
const LAST_DECISIONS: &str = "WITH last AS MATERIALIZED (
    SELECT a.id, a.at, a.entity_id AS notice_id, CASE WHEN a.action = 'approve' THEN 1 ELSE 0 END AS agreed, a.reject_reason
    FROM audit_log a
    WHERE a.entity = 'notice' AND a.action IN ('approve', 'reject')
      AND (a.action = 'approve' OR a.from_state IN ('draft', 'approved'))
      AND NOT EXISTS (
          SELECT 1 FROM audit_log b
          WHERE b.entity = 'notice' AND b.action IN ('approve', 'reject', 'reopen')
            AND b.entity_id = a.entity_id AND b.id > a.id
            AND (b.action <> 'reject' OR b.from_state IN ('draft', 'approved')))
    ORDER BY a.id DESC LIMIT ?1)";

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: i64,
    brand: String,
    kind: String,
    pattern: String,
    reason: String,
    notice_id: Option<i64>,
    listing_id: Option<i64>,
    created_by: String,
    created_at: String,
}

const RULE_COLUMNS: &str = "r.id, b.name AS brand, r.kind, r.pattern, r.reason, r.notice_id,
    r.listing_id, r.created_by, r.created_at FROM allow_rules r JOIN brands b ON b.id = r.brand_id";

fn parse_reason(table: &'static str, column: &'static str, value: &str) -> Result<RejectReason> {
    value.parse().map_err(|_| StoreError::Corrupt {
        table,
        column,
        value: value.to_owned(),
    })
}

impl TryFrom<RuleRow> for AllowRuleRow {
    type Error = StoreError;
    fn try_from(r: RuleRow) -> Result<Self> {
        let kind = r.kind.parse().map_err(|_| StoreError::Corrupt {
            table: "allow_rules",
            column: "kind",
            value: r.kind.clone(),
        })?;
        Ok(AllowRuleRow {
            id: r.id,
            rule: AllowRule {
                brand: r.brand,
                kind,
                pattern: r.pattern,
                reason: parse_reason("allow_rules", "reason", &r.reason)?,
            },
            notice_id: r.notice_id,
            listing_id: r.listing_id,
            created_by: r.created_by,
            created_at: r.created_at,
        })
    }
}

impl Store {
    /// Every allow rule, for building the matcher.
    pub async fn allow_rules(&self) -> Result<Vec<AllowRule>> {
        Ok(self
            .list_allow_rules()
            .await?
            .into_iter()
            .map(|r| r.rule)
            .collect())
    }

    /// Every allow rule with its id and origin, by brand, oldest first.
    pub async fn list_allow_rules(&self) -> Result<Vec<AllowRuleRow>> {
        let rows: Vec<RuleRow> = sql::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {RULE_COLUMNS} ORDER BY b.name, r.id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(AllowRuleRow::try_from).collect()
    }

    /// One query's worth of change detection for the allow rules.
    pub async fn allow_rules_stamp(&self) -> Result<AllowRulesStamp> {
        let (max_id, count) =
            sql::query_as("SELECT coalesce(max(id), 0), count(*) FROM allow_rules")
                .fetch_one(&self.pool)
                .await?;
        Ok(AllowRulesStamp { max_id, count })
    }

    /// Removes an allow rule, with an audit row; `None` if there is no such rule.
    pub async fn remove_allow_rule(&self, id: i64, actor: &str) -> Result<Option<AllowRuleRow>> {
        let mut tx = self.begin_write().await?;
        let row: Option<RuleRow> = sql::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {RULE_COLUMNS} WHERE r.id = ?"
        )))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let rule = AllowRuleRow::try_from(row)?;
        sql::query("DELETE FROM allow_rules WHERE id = ?")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        audit(&mut tx, actor, id, "remove", &describe(&rule.rule)).await?;
        tx.commit().await?;
        Ok(Some(rule))
    }

    /// Reviewers against the matcher over the last `last` review decisions.
    pub async fn review_stats(&self, last: u32) -> Result<ReviewStats> {
        // One read transaction, so the three figures are of the same moment.
        let mut tx = self.pool.begin().await?;
        let limit = i64::from(last);
        let (decisions, agreed, since, until): (i64, i64, Option<String>, Option<String>) =
            sql::query_as(sqlx::AssertSqlSafe(format!(
                "{LAST_DECISIONS} SELECT count(*), CAST(coalesce(sum(agreed), 0) AS BIGINT), min(at), max(at) FROM last"
            )))
            .bind(limit)
            .fetch_one(&mut *tx)
            .await?;
        let codes: Vec<(String, i64, i64)> = sql::query_as(sqlx::AssertSqlSafe(format!(
            "{LAST_DECISIONS}, carried AS (
                SELECT DISTINCT last.id, last.agreed, r.value ->> 'code' AS code
                FROM last JOIN notice_items ni ON ni.notice_id = last.notice_id
                JOIN matches m ON m.id = ni.match_id, jsonb_each(m.reasons) r)
             SELECT code, count(*), CAST(sum(agreed) AS BIGINT) FROM carried WHERE code IS NOT NULL GROUP BY code
             ORDER BY count(*) - sum(agreed) DESC, 1.0 * sum(agreed) / count(*), count(*) DESC, code"
        )))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let reasons: Vec<(Option<String>, i64)> = sql::query_as(sqlx::AssertSqlSafe(format!(
            "{LAST_DECISIONS} SELECT reject_reason, count(*) FROM last WHERE agreed = 0
             GROUP BY reject_reason ORDER BY count(*) DESC, reject_reason IS NULL, reject_reason"
        )))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let rate = |agreed: i64, of: i64| agreed as f64 / of as f64;
        Ok(ReviewStats {
            decisions: decisions as u64,
            agreed: agreed as u64,
            disagreed: (decisions - agreed) as u64,
            agreement: (decisions > 0).then(|| rate(agreed, decisions)),
            since,
            until,
            codes: codes
                .into_iter()
                .map(|(code, n, agreed)| CodeAgreement {
                    code,
                    decisions: n as u64,
                    agreed: agreed as u64,
                    disagreed: (n - agreed) as u64,
                    agreement: rate(agreed, n),
                })
                .collect(),
            reject_reasons: reasons
                .into_iter()
                .map(|(reason, count)| {
                    Ok(ReasonCount {
                        reason: reason
                            .map(|r| parse_reason("audit_log", "reject_reason", &r))
                            .transpose()?,
                        count: count as u64,
                    })
                })
                .collect::<Result<_>>()?,
        })
    }
}

/// A listing of the notice being rejected: id, title, shop.
type NoticeListing = (i64, String, Option<String>);

/// Adds the allow rules a rejection asks for, inside its transaction, for the notice's brand.
/// Returns the rules added and those that were already there.
pub(super) async fn add_rules(
    tx: &mut Transaction<'_, Any>,
    notice_id: i64,
    actor: &str,
    reason: Option<RejectReason>,
    requests: &[AllowRequest],
) -> std::result::Result<(Vec<AllowRuleRow>, Vec<AllowRuleRow>), TransitionError> {
    let (mut added, mut existing) = (Vec::new(), Vec::new());
    if requests.is_empty() {
        return Ok((added, existing));
    }
    let refuse = |field: &'static str, message: String| TransitionError::Feedback {
        id: notice_id,
        field,
        message,
    };
    let Some(reason) = reason else {
        return Err(refuse(
            "why",
            "an allow rule needs a reason: authorised_seller, genuine_goods or not_our_goods"
                .to_owned(),
        ));
    };
    let (brand_id, brand): (i64, String) = sql::query_as(
        "SELECT n.brand_id, b.name FROM notices n JOIN brands b ON b.id = n.brand_id WHERE n.id = ?",
    )
    .bind(notice_id)
    .fetch_one(&mut **tx)
    .await?;
    let backend = sql::Backend::of(tx);
    let listings: Vec<NoticeListing> = sql::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT l.id, l.title, l.seller FROM notice_items ni JOIN matches m ON m.id = ni.match_id
         JOIN listings l ON l.id = m.listing_id WHERE ni.notice_id = ? ORDER BY {}",
        backend.insertion_order("ni")
    )))
    .bind(notice_id)
    .fetch_all(&mut **tx)
    .await?;
    for request in requests {
        let (kind, pattern, listing_id) = match request {
            AllowRequest::Seller(named) => {
                let (shop, listing) = notice_shop(&listings, named.as_deref())
                    .map_err(|m| refuse("allow_seller", m))?;
                (AllowKind::Seller, shop, listing)
            }
            AllowRequest::Title(words) => {
                let pattern = title_pattern(words).map_err(|m| refuse("allow_title", m))?;
                let names: Vec<String> = sql::query_scalar(
                    "SELECT text FROM marks WHERE brand_id = ?1
                     UNION ALL SELECT alias FROM brand_aliases WHERE brand_id = ?1",
                )
                .bind(brand_id)
                .fetch_all(&mut **tx)
                .await?;
                if only_names(&pattern, &names) {
                    return Err(refuse(
                        "allow_title",
                        format!(
                            "{pattern:?} is only {brand}'s own marks or aliases, and would clear \
                             every listing that names them; add the words that set these apart"
                        ),
                    ));
                }
                let listing = listings
                    .iter()
                    .find(|(_, title, _)| has_words(title, &pattern))
                    .ok_or_else(|| {
                        refuse(
                            "allow_title",
                            format!(
                                "no listing in this notice has all of {pattern:?} in its title"
                            ),
                        )
                    })?;
                (AllowKind::Title, pattern, listing.0)
            }
        };
        let id: Option<i64> = sql::query_scalar(
            "INSERT INTO allow_rules (brand_id, kind, pattern, reason, notice_id, listing_id,
                                      created_by, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (brand_id, kind, pattern) DO NOTHING RETURNING id",
        )
        .bind(brand_id)
        .bind(kind.to_string())
        .bind(&pattern)
        .bind(reason.as_str())
        .bind(notice_id)
        .bind(listing_id)
        .bind(actor)
        .bind(now())
        .fetch_optional(&mut **tx)
        .await?;
        match id {
            Some(id) => {
                let rule = rule_in(tx, id).await?;
                let note = format!("{}, from notice {notice_id}", describe(&rule.rule));
                audit(tx, actor, id, "add", &note).await?;
                added.push(rule);
            }
            None => {
                let id: i64 = sql::query_scalar(
                    "SELECT id FROM allow_rules WHERE brand_id = ? AND kind = ? AND pattern = ?",
                )
                .bind(brand_id)
                .bind(kind.to_string())
                .bind(&pattern)
                .fetch_one(&mut **tx)
                .await?;
                existing.push(rule_in(tx, id).await?);
            }
        }
    }
    Ok((added, existing))
}

async fn rule_in(tx: &mut Transaction<'_, Any>, id: i64) -> Result<AllowRuleRow> {
    let row: RuleRow = sql::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RULE_COLUMNS} WHERE r.id = ?"
    )))
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    AllowRuleRow::try_from(row)
}

/// "seller "X" for Nike (authorised_seller)": an audit note.
fn describe(rule: &AllowRule) -> String {
    format!(
        "{} {:?} for {} ({})",
        rule.kind, rule.pattern, rule.brand, rule.reason
    )
}

async fn audit(
    tx: &mut Transaction<'_, Any>,
    actor: &str,
    rule_id: i64,
    action: &str,
    note: &str,
) -> Result<()> {
    sql::query(
        "INSERT INTO audit_log (at, actor, entity, entity_id, action, note)
         VALUES (?, ?, 'allow_rule', ?, ?, ?)",
    )
    .bind(now())
    .bind(actor)
    .bind(rule_id)
    .bind(action)
    .bind(note)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The shop to allow, and a listing of it: the one named (it must be a shop of the notice's
/// listings), or the notice's only shop.
fn notice_shop(
    listings: &[NoticeListing],
    named: Option<&str>,
) -> std::result::Result<(String, i64), String> {
    let mut shops: Vec<(&str, i64)> = Vec::new();
    for (id, _, seller) in listings {
        if let Some(s) = seller.as_deref().map(str::trim).filter(|s| !s.is_empty())
            && !shops.iter().any(|(known, _)| *known == s)
        {
            shops.push((s, *id));
        }
    }
    let list = || {
        shops
            .iter()
            .map(|(s, _)| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let found = match named.map(str::trim).filter(|s| !s.is_empty()) {
        Some(name) => shops.iter().find(|(s, _)| *s == name).ok_or_else(|| {
            format!(
                "{name:?} is not the shop of a listing in this notice (its shops: {})",
                list()
            )
        })?,
        None => match shops.as_slice() {
            [] => return Err("no listing in this notice names its shop".to_owned()),
            [one] => one,
            _ => {
                return Err(format!(
                    "its listings come from {} shops ({}): name the one to allow",
                    shops.len(),
                    list()
                ));
            }
        },
    };
    Ok((found.0.to_owned(), found.1))
}

/// The words of a title pattern, one space apart; refused when empty, too long or odd.
fn title_pattern(words: &str) -> std::result::Result<String, String> {
    let words: Vec<&str> = words.split_whitespace().collect();
    let pattern = words.join(" ");
    if pattern.is_empty() {
        return Err("give the words that must all appear in the title".to_owned());
    }
    if pattern.chars().any(char::is_control) {
        return Err("the words have a control character".to_owned());
    }
    if pattern.chars().count() > MAX_TITLE_CHARS || words.len() > MAX_TITLE_WORDS {
        return Err(format!(
            "at most {MAX_TITLE_WORDS} words and {MAX_TITLE_CHARS} characters"
        ));
    }
    Ok(pattern)
}

/// Case and width folded, as allow rules are compared.
fn fold(text: &str) -> String {
    text.nfkc().flat_map(char::to_lowercase).collect()
}

/// Whether every word of `pattern` appears in `title`.
fn has_words(title: &str, pattern: &str) -> bool {
    let title = fold(title);
    fold(pattern)
        .split_whitespace()
        .all(|word| title.contains(word))
}

/// Whether `pattern` is made of nothing but `names` (the brand's marks and aliases).
fn only_names(pattern: &str, names: &[String]) -> bool {
    let mut rest = fold(pattern);
    let mut names: Vec<String> = names.iter().map(|n| fold(n)).collect();
    // Longest first, so "air jordan" goes before "air" could split it.
    names.sort_by_key(|n| std::cmp::Reverse(n.chars().count()));
    for name in names.iter().filter(|n| !n.trim().is_empty()) {
        rest = rest.replace(name.as_str(), " ");
    }
    rest.trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_patterns_are_folded_and_checked() {
        assert_eq!(title_pattern("  苹果\t 水果 ").unwrap(), "苹果 水果");
        assert!(title_pattern("   ").is_err());
        assert!(title_pattern("a\u{1b}b").is_err());
        assert!(title_pattern(&"词 ".repeat(9)).is_err());
        assert!(has_words("ＡＰＰＬＥ 苹果 新鲜水果 5斤", "apple 水果"));
        assert!(!has_words("苹果 手机壳", "apple 水果"));
        let names = [
            "NIKE".to_owned(),
            "耐克".to_owned(),
            "AIR JORDAN".to_owned(),
        ];
        assert!(only_names("nike", &names));
        assert!(only_names("Ｎｉｋｅ 耐克 air jordan", &names));
        assert!(!only_names("耐克 鞋垫", &names));
    }

    #[test]
    fn a_shop_is_named_when_a_notice_has_several() {
        let one = [
            (1, "t".to_owned(), Some(" 小店 ".to_owned())),
            (2, "t".to_owned(), Some("小店".to_owned())),
        ];
        assert_eq!(notice_shop(&one, None).unwrap(), ("小店".to_owned(), 1));
        let two = [
            (1, "t".to_owned(), Some("甲店".to_owned())),
            (2, "t".to_owned(), Some("乙店".to_owned())),
            (3, "t".to_owned(), None),
        ];
        let e = notice_shop(&two, None).unwrap_err();
        assert!(e.contains("2 shops") && e.contains("乙店"), "{e}");
        assert_eq!(
            notice_shop(&two, Some("乙店")).unwrap(),
            ("乙店".to_owned(), 2)
        );
        assert!(notice_shop(&two, Some("丙店")).is_err());
        assert!(notice_shop(&[(1, "t".to_owned(), None)], None).is_err());
    }
}

#[cfg(test)]
mod store_tests {
    use super::*;
    use crate::model::{CaseState, InfringementKind, TransitionDetails};
    use crate::store::{PlannedItem, PlannedNotice};
    use crate::test_support::TestDb;

    /// A Nike draft on Taobao with one listing per (item id, title, shop, reason codes).
    async fn draft(db: &TestDb, items: &[(&str, &str, &str, &[&str])]) -> i64 {
        let mut match_ids = Vec::new();
        for (item, title, seller, codes) in items {
            let (_, match_id) = db
                .listing_with_match(
                    "taobao",
                    item,
                    title,
                    seller,
                    "Nike",
                    Some(("NIKE", "CN")),
                    "infringing",
                    0.9,
                )
                .await;
            let reasons: Vec<_> = codes
                .iter()
                .map(|c| serde_json::json!({"code": c, "detail": "test"}))
                .collect();
            sql::query("UPDATE matches SET reasons = ? WHERE id = ?")
                .bind(serde_json::Value::from(reasons).to_string())
                .bind(match_id)
                .execute(db.pool())
                .await
                .unwrap();
            match_ids.push(match_id);
        }
        let (brand_id, mark_id): (i64, i64) =
            sql::query_as("SELECT brand_id, mark_id FROM matches WHERE id = ?")
                .bind(match_ids[0])
                .fetch_one(db.pool())
                .await
                .unwrap();
        let plan = PlannedNotice {
            existing: None,
            platform: "taobao".into(),
            channel: "Alibaba IPP".into(),
            brand_id,
            mark_id: Some(mark_id),
            reason: InfringementKind::Counterfeit,
            group_key: format!("test|{}", items[0].0),
            not_fileable: None,
            relisted_from: None,
            priority: 0,
            items: match_ids
                .into_iter()
                .map(|match_id| PlannedItem {
                    match_id,
                    relisted_from: None,
                    relisted_reason: None,
                })
                .collect(),
        };
        db.store
            .save_drafts(&[plan], "drafter")
            .await
            .unwrap()
            .created[0]
    }

    fn no_details() -> TransitionDetails {
        TransitionDetails::default()
    }

    async fn step(db: &TestDb, id: i64, to: CaseState) {
        let details = TransitionDetails {
            complaint_ref: Some("REF-1".into()),
            ..TransitionDetails::default()
        };
        db.store
            .transition_notice(id, to, "alice", &details)
            .await
            .unwrap();
    }

    async fn reject(db: &TestDb, id: i64, reason: Option<RejectReason>, allow: Vec<AllowRequest>) {
        db.store
            .reject_notice(id, "alice", &no_details(), &Feedback { reason, allow })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_rejection_records_its_reason_and_allow_rules_together_or_not_at_all() {
        let db = TestDb::new().await;
        let s = &db.store;
        let id = draft(
            &db,
            &[
                ("1", "耐克 Apple 苹果 新鲜水果 5斤", "甲店", &["mark_exact"]),
                ("2", "耐克 高仿 跑鞋", "乙店", &["mark_exact"]),
            ],
        )
        .await;
        let before = s.allow_rules_stamp().await.unwrap();
        let asks = |reason, allow| Feedback { reason, allow };
        let refused = [
            (asks(None, vec![AllowRequest::Title("苹果".into())]), "why"),
            (
                asks(
                    Some(RejectReason::NotOurGoods),
                    vec![AllowRequest::Seller(None)],
                ),
                "2 shops",
            ),
            (
                asks(
                    Some(RejectReason::NotOurGoods),
                    vec![AllowRequest::Seller(Some("丙店".into()))],
                ),
                "丙店",
            ),
            (
                asks(
                    Some(RejectReason::NotOurGoods),
                    vec![AllowRequest::Title("Ｎｉｋｅ 耐克".into())],
                ),
                "own marks",
            ),
            (
                asks(
                    Some(RejectReason::NotOurGoods),
                    vec![
                        AllowRequest::Seller(Some("甲店".into())),
                        AllowRequest::Title("香蕉".into()),
                    ],
                ),
                "no listing",
            ),
        ];
        for (feedback, says) in refused {
            let e = s
                .reject_notice(id, "alice", &no_details(), &feedback)
                .await
                .unwrap_err();
            assert!(matches!(e, TransitionError::Feedback { .. }), "{e}");
            assert!(e.to_string().contains(says), "{e}");
            // Nothing of it was written: not the state, not the audit row, not a rule.
            assert_eq!(s.notice(id).await.unwrap().unwrap().state, CaseState::Draft);
            assert_eq!(s.notice_history(id).await.unwrap().len(), 1);
            assert_eq!(s.allow_rules_stamp().await.unwrap(), before);
        }

        let done = s
            .reject_notice(
                id,
                "alice",
                &TransitionDetails {
                    note: Some("fruit".into()),
                    ..no_details()
                },
                &asks(
                    Some(RejectReason::NotOurGoods),
                    vec![
                        AllowRequest::Seller(Some(" 甲店 ".into())),
                        AllowRequest::Title("  ＡＰＰＬＥ \t 苹果 ".into()),
                    ],
                ),
            )
            .await
            .unwrap();
        assert_eq!(done.notice.state, CaseState::Rejected);
        assert!(done.existing.is_empty());
        let listing_1: i64 = sql::query_scalar("SELECT id FROM listings WHERE item_id = '1'")
            .fetch_one(db.pool())
            .await
            .unwrap();
        let got: Vec<_> = done
            .added
            .iter()
            .map(|r| {
                (
                    r.rule.kind,
                    r.rule.pattern.as_str(),
                    r.notice_id,
                    r.listing_id,
                    r.created_by.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    AllowKind::Seller,
                    "甲店",
                    Some(id),
                    Some(listing_1),
                    "alice"
                ),
                (
                    AllowKind::Title,
                    "ＡＰＰＬＥ 苹果",
                    Some(id),
                    Some(listing_1),
                    "alice"
                ),
            ]
        );
        let last = s.notice_history(id).await.unwrap().pop().unwrap();
        assert_eq!(
            (last.action.as_str(), last.note.as_deref()),
            ("reject", Some("fruit"))
        );
        assert_eq!(last.reject_reason.as_deref(), Some("not_our_goods"));
        assert_eq!(
            s.allow_rules().await.unwrap(),
            vec![
                AllowRule {
                    brand: "Nike".into(),
                    kind: AllowKind::Seller,
                    pattern: "甲店".into(),
                    reason: RejectReason::NotOurGoods,
                },
                AllowRule {
                    brand: "Nike".into(),
                    kind: AllowKind::Title,
                    pattern: "ＡＰＰＬＥ 苹果".into(),
                    reason: RejectReason::NotOurGoods,
                },
            ]
        );
        let added = s.allow_rules_stamp().await.unwrap();
        assert_ne!(added, before);

        // The same shop again, from another notice: the rule is there already.
        let again = draft(&db, &[("3", "耐克 苹果 礼盒", "甲店", &["mark_exact"])]).await;
        let done = s
            .reject_notice(
                again,
                "bob",
                &no_details(),
                &asks(
                    Some(RejectReason::GenuineGoods),
                    vec![AllowRequest::Seller(None)],
                ),
            )
            .await
            .unwrap();
        assert!(done.added.is_empty());
        assert_eq!(done.existing[0].rule.reason, RejectReason::NotOurGoods);
        assert_eq!(s.allow_rules_stamp().await.unwrap(), added);

        // Removing one changes the stamp; each add and removal is in the audit log.
        let seller = done.existing[0].id;
        let removed = s.remove_allow_rule(seller, "carol").await.unwrap().unwrap();
        assert_eq!(removed.rule.pattern, "甲店");
        assert!(
            s.remove_allow_rule(seller, "carol")
                .await
                .unwrap()
                .is_none()
        );
        assert_ne!(s.allow_rules_stamp().await.unwrap(), added);
        assert_eq!(s.list_allow_rules().await.unwrap().len(), 1);
        let audit: Vec<(String, String)> = sql::query_as(
            "SELECT action, actor FROM audit_log WHERE entity = 'allow_rule' ORDER BY id",
        )
        .fetch_all(db.pool())
        .await
        .unwrap();
        let audit: Vec<_> = audit
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(
            audit,
            [("add", "alice"), ("add", "alice"), ("remove", "carol")]
        );
    }

    #[tokio::test]
    async fn a_platforms_rejection_takes_no_reviewer_feedback() {
        let db = TestDb::new().await;
        let id = draft(&db, &[("1", "耐克 高仿 跑鞋", "甲店", &["mark_exact"])]).await;
        step(&db, id, CaseState::Approved).await;
        step(&db, id, CaseState::Filed).await;
        let e = db
            .store
            .reject_notice(
                id,
                "alice",
                &no_details(),
                &Feedback {
                    reason: Some(RejectReason::GenuineGoods),
                    allow: Vec::new(),
                },
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("`why`"), "{e}");
        let n = db.store.notice(id).await.unwrap().unwrap();
        assert_eq!(n.state, CaseState::Filed);
        // Without feedback it is the platform's rejection, as before.
        reject(&db, id, None, Vec::new()).await;
        let last = db.store.notice_history(id).await.unwrap().pop().unwrap();
        assert_eq!(last.from_state.as_deref(), Some("filed"));
        assert_eq!(last.reject_reason, None);
    }

    #[tokio::test]
    async fn stats_count_each_notices_latest_review_decision_by_reason_code() {
        let db = TestDb::new().await;
        let d =
            |item: &'static str, codes: &'static [&'static str]| (item, "耐克 跑鞋", "店", codes);
        // Two listings that both carry mark_exact: the decision counts once.
        let n1 = draft(
            &db,
            &[
                d("1a", &["mark_exact", "counterfeit_term"]),
                d("1b", &["mark_exact"]),
            ],
        )
        .await;
        let n2 = draft(&db, &[d("2", &["mark_exact", "counterfeit_term"])]).await;
        let n3 = draft(&db, &[d("3", &["mark_exact", "genuine_price"])]).await;
        let n4 = draft(&db, &[d("4", &["alias", "genuine_price"])]).await;
        let n5 = draft(&db, &[d("5", &["alias"])]).await;
        let n6 = draft(&db, &[d("6", &["mark_exact"])]).await;
        let n7 = draft(&db, &[d("7", &["homoglyph"])]).await;
        let undecided = draft(&db, &[d("8", &["genuine_price"])]).await;
        let _ = undecided;
        step(&db, n1, CaseState::Approved).await;
        step(&db, n2, CaseState::Approved).await;
        reject(&db, n3, Some(RejectReason::AuthorisedSeller), Vec::new()).await;
        reject(&db, n4, None, Vec::new()).await;
        // Approved, then sent back to draft: no decision stands.
        step(&db, n5, CaseState::Approved).await;
        step(&db, n5, CaseState::Draft).await;
        // Approved and filed; the platform's rejection is not a review.
        step(&db, n6, CaseState::Approved).await;
        step(&db, n6, CaseState::Filed).await;
        reject(&db, n6, None, Vec::new()).await;
        // Approved, then withdrawn: the rejection is the decision.
        step(&db, n7, CaseState::Approved).await;
        reject(&db, n7, Some(RejectReason::NotOurGoods), Vec::new()).await;

        let s = db.store.review_stats(500).await.unwrap();
        assert_eq!((s.decisions, s.agreed, s.disagreed), (6, 3, 3));
        assert_eq!(s.agreement, Some(0.5));
        assert!(s.since.is_some() && s.since <= s.until);
        let codes: Vec<_> = s
            .codes
            .iter()
            .map(|c| (c.code.as_str(), c.decisions, c.agreed, c.disagreed))
            .collect();
        assert_eq!(
            codes,
            [
                ("genuine_price", 2, 0, 2),
                ("alias", 1, 0, 1),
                ("homoglyph", 1, 0, 1),
                ("mark_exact", 4, 3, 1),
                ("counterfeit_term", 2, 2, 0),
            ]
        );
        assert_eq!(s.codes[3].agreement, 0.75);
        let reasons: Vec<_> = s
            .reject_reasons
            .iter()
            .map(|r| (r.reason, r.count))
            .collect();
        assert_eq!(
            reasons,
            [
                (Some(RejectReason::AuthorisedSeller), 1),
                (Some(RejectReason::NotOurGoods), 1),
                (None, 1),
            ]
        );

        // The last two decisions: n7's withdrawal and n6's approval.
        let s = db.store.review_stats(2).await.unwrap();
        assert_eq!((s.decisions, s.agreed), (2, 1));
        let codes: Vec<_> = s.codes.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(codes, ["homoglyph", "mark_exact"]);
        let empty = TestDb::new().await.store.review_stats(500).await.unwrap();
        assert_eq!((empty.decisions, empty.agreement), (0, None));
        assert!(empty.codes.is_empty() && empty.reject_reasons.is_empty());
    }
}
