//! Reading stored evidence back: one page, or the chain in order. Bodies come back sealed
//! (compressed) as stored; `crate::seal` opens and checks them.

use super::sql;
use serde::Serialize;

use super::{Result, Store};

/// A stored page, its body as sealed at capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct EvidencePage {
    pub id: i64,
    pub url: String,
    pub fetched_at: String,
    pub status: i64,
    /// Response headers as (name, value) pairs.
    pub headers: Vec<(String, String)>,
    /// The headers exactly as stored (JSON): what the chain hash commits to.
    #[serde(skip)]
    pub headers_json: String,
    /// The body as stored: compressed.
    #[serde(skip)]
    pub sealed_body: Vec<u8>,
    pub body_len: i64,
    /// SHA-256 recorded at capture.
    pub body_sha256: String,
    pub prev_hash: String,
    pub chain_hash: String,
    /// The platform account whose session fetched it, if any.
    pub account: Option<String>,
}

impl EvidencePage {
    /// The response's Content-Type, if it sent one.
    pub(crate) fn content_type(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str())
    }
}

/// A stored part of an evidence row (a captured reply, a screenshot), sealed as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub(crate) struct EvidencePart {
    pub evidence_id: i64,
    pub seq: i64,
    pub kind: String,
    pub url: String,
    pub content_type: String,
    pub fetched_at: String,
    #[serde(skip)]
    #[sqlx(rename = "body")]
    pub sealed_body: Vec<u8>,
    pub body_len: i64,
    pub body_sha256: String,
}

/// The evidence row's columns, for queries that must be string literals.
macro_rules! select_evidence {
    ($rest:literal) => {
        concat!(
            "SELECT id, url, fetched_at, status, headers, body, body_len, body_sha256, prev_hash,
             chain_hash, account FROM evidence ",
            $rest
        )
    };
}

impl Store {
    /// One stored page; `None` if no such record.
    pub(crate) async fn evidence_page(&self, id: i64) -> Result<Option<EvidencePage>> {
        let row: Option<EvidenceRow> = sql::query_as(select_evidence!("WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(EvidencePage::from))
    }

    /// The parts of evidence rows `after_id` < id <= `last_id`, by row and order.
    pub(crate) async fn evidence_parts_between(
        &self,
        after_id: i64,
        last_id: i64,
    ) -> Result<Vec<EvidencePart>> {
        Ok(sql::query_as(
            "SELECT evidence_id, seq, kind, url, content_type, fetched_at, body, body_len,
             body_sha256 FROM evidence_parts WHERE evidence_id > ? AND evidence_id <= ?
             ORDER BY evidence_id, seq",
        )
        .bind(after_id)
        .bind(last_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Of these records, those with a screenshot: (record, part seq) of each one's first.
    pub(crate) async fn screenshots_of(&self, records: &[i64]) -> Result<Vec<(i64, i64)>> {
        let ids = serde_json::to_string(records).unwrap_or_else(|_| "[]".to_owned());
        Ok(sql::query_as(
            "SELECT p.evidence_id, min(p.seq) FROM json_each(?) j
             JOIN evidence_parts p ON p.evidence_id = CAST(j.value AS BIGINT) AND p.kind = 'screenshot'
             GROUP BY p.evidence_id",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The parts of one evidence row, in order.
    pub(crate) async fn evidence_parts(&self, id: i64) -> Result<Vec<EvidencePart>> {
        self.evidence_parts_between(id - 1, id).await
    }

    /// Records `first..=last` in chain order, without their bodies (`sealed_body` is empty):
    /// what a link commits to, for packs that carry the chain between a page and its token.
    pub(crate) async fn evidence_links(
        &self,
        first: i64,
        last: i64,
    ) -> Result<Vec<(EvidencePage, Vec<EvidencePart>)>> {
        let rows: Vec<EvidenceRow> = sql::query_as(
            "SELECT id, url, fetched_at, status, headers, x'' AS body, body_len, body_sha256,
             prev_hash, chain_hash, account FROM evidence WHERE id >= ? AND id <= ? ORDER BY id",
        )
        .bind(first)
        .bind(last)
        .fetch_all(&self.pool)
        .await?;
        let mut parts: Vec<EvidencePart> = sql::query_as(
            "SELECT evidence_id, seq, kind, url, content_type, fetched_at, x'' AS body, body_len,
             body_sha256 FROM evidence_parts WHERE evidence_id >= ? AND evidence_id <= ?
             ORDER BY evidence_id DESC, seq DESC",
        )
        .bind(first)
        .bind(last)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let mut mine = Vec::new();
                while parts.last().is_some_and(|p| p.evidence_id == r.id) {
                    mine.extend(parts.pop());
                }
                (EvidencePage::from(r), mine)
            })
            .collect())
    }

    /// Up to `limit` stored pages after `after_id`, in chain order.
    pub(crate) async fn evidence_after(
        &self,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<EvidencePage>> {
        let rows: Vec<EvidenceRow> =
            sql::query_as(select_evidence!("WHERE id > ? ORDER BY id LIMIT ?"))
                .bind(after_id)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(EvidencePage::from).collect())
    }
}

#[derive(sqlx::FromRow)]
struct EvidenceRow {
    id: i64,
    url: String,
    fetched_at: String,
    status: i64,
    headers: String,
    body: Vec<u8>,
    body_len: i64,
    body_sha256: String,
    prev_hash: String,
    chain_hash: String,
    account: Option<String>,
}

impl From<EvidenceRow> for EvidencePage {
    fn from(r: EvidenceRow) -> EvidencePage {
        EvidencePage {
            headers: serde_json::from_str(&r.headers).unwrap_or_default(),
            headers_json: r.headers,
            id: r.id,
            sealed_body: r.body,
            url: r.url,
            fetched_at: r.fetched_at,
            status: r.status,
            body_len: r.body_len,
            body_sha256: r.body_sha256,
            prev_hash: r.prev_hash,
            chain_hash: r.chain_hash,
            account: r.account,
        }
    }
}
