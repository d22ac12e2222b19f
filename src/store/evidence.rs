//! Reading stored evidence back: one page as fetched, and a walk of the whole hash chain.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::crawl::{GENESIS_HASH, chain_hash};
use super::{Result, Store};

/// A stored page, decompressed: the bytes exactly as the platform sent them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvidencePage {
    pub id: i64,
    pub url: String,
    pub fetched_at: String,
    pub status: i64,
    /// Response headers as (name, value) pairs.
    pub headers: Vec<(String, String)>,
    /// The headers exactly as stored (JSON): what the chain hash commits to.
    #[serde(skip)]
    pub headers_json: String,
    #[serde(skip)]
    pub body: Vec<u8>,
    pub body_len: i64,
    /// SHA-256 recorded at capture.
    pub body_sha256: String,
    pub prev_hash: String,
    pub chain_hash: String,
}

impl EvidencePage {
    /// The response's Content-Type, if it sent one.
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str())
    }
}

/// What is wrong with a link of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    pub evidence_id: i64,
    pub url: String,
    pub problem: String,
}

/// The outcome of walking the evidence chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// Records checked before the walk stopped (all of them when intact).
    pub checked: u64,
    /// The first bad record, if any.
    pub first_break: Option<ChainBreak>,
    /// The chain hash of the last good record: a value to write down and compare later.
    pub head: String,
}

impl Store {
    /// One stored page with its body decompressed; `None` if no such record.
    pub async fn evidence_page(&self, id: i64) -> Result<Option<EvidencePage>> {
        let row: Option<EvidenceRow> = sqlx::query_as(
            "SELECT id, url, fetched_at, status, headers, body, body_len, body_sha256, prev_hash, chain_hash
             FROM evidence WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| {
            let headers = serde_json::from_str(&r.headers).unwrap_or_default();
            EvidencePage {
                headers_json: r.headers.clone(),
                id: r.id,
                // A body that no longer decompresses is returned as stored; verify says why.
                body: zstd::decode_all(&r.body[..]).unwrap_or(r.body),
                url: r.url,
                fetched_at: r.fetched_at,
                status: r.status,
                headers,
                body_len: r.body_len,
                body_sha256: r.body_sha256,
                prev_hash: r.prev_hash,
                chain_hash: r.chain_hash,
            }
        }))
    }

    /// Walks every evidence record in order and checks that each body still hashes to its
    /// recorded SHA-256, that each link commits to the one before it, and that each recorded
    /// chain hash recomputes from the record. Stops at the first bad record and names it.
    pub async fn verify_evidence_chain(&self) -> Result<ChainReport> {
        let mut prev = GENESIS_HASH.to_owned();
        let mut checked = 0;
        let mut after = 0i64;
        const BATCH: i64 = 256;
        loop {
            // Batches keep memory flat on a large archive.
            let rows: Vec<EvidenceRow> = sqlx::query_as(
                "SELECT id, url, fetched_at, status, headers, body, body_len, body_sha256, prev_hash, chain_hash
                 FROM evidence WHERE id > ? ORDER BY id LIMIT ?",
            )
            .bind(after)
            .bind(BATCH)
            .fetch_all(&self.pool)
            .await?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            for r in rows {
                if let Some(problem) = check_link(&r, &prev) {
                    return Ok(ChainReport {
                        checked,
                        first_break: Some(ChainBreak {
                            evidence_id: r.id,
                            url: r.url,
                            problem,
                        }),
                        head: prev,
                    });
                }
                checked += 1;
                prev = r.chain_hash;
            }
        }
        Ok(ChainReport {
            checked,
            first_break: None,
            head: prev,
        })
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
}

fn check_link(r: &EvidenceRow, prev: &str) -> Option<String> {
    let body = match zstd::decode_all(&r.body[..]) {
        Ok(b) => b,
        Err(e) => return Some(format!("stored body does not decompress: {e}")),
    };
    let sha = hex::encode(Sha256::digest(&body));
    if sha != r.body_sha256 {
        return Some(format!(
            "body hashes to {sha}, but {} was recorded at capture",
            r.body_sha256
        ));
    }
    if body.len() as i64 != r.body_len {
        return Some(format!(
            "body is {} bytes, but {} were recorded",
            body.len(),
            r.body_len
        ));
    }
    if r.prev_hash != prev {
        return Some(format!(
            "links to {}, but the record before it ends the chain at {prev}",
            r.prev_hash
        ));
    }
    let status = u16::try_from(r.status).unwrap_or(0);
    let expect = chain_hash(
        &r.prev_hash,
        &r.url,
        &r.fetched_at,
        status,
        &r.body_sha256,
        &r.headers,
    );
    if expect != r.chain_hash {
        return Some(format!(
            "chain hash {} does not match its contents (url, time, status, headers or hash changed; expected {expect})",
            r.chain_hash
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::TestDb;

    #[tokio::test]
    async fn an_intact_chain_verifies_and_a_changed_byte_is_named() {
        let db = TestDb::new().await;
        for i in 0..3 {
            db.listing_with_match(
                "jd",
                &i.to_string(),
                "耐克 高仿",
                "店",
                "Nike",
                Some(("NIKE", "CN")),
                "infringing",
                0.9,
            )
            .await;
        }
        let report = db.store.verify_evidence_chain().await.unwrap();
        assert_eq!(report.checked, 3);
        assert_eq!(report.first_break, None);

        // One byte of the second page's body changes.
        let page = db.store.evidence_page(2).await.unwrap().unwrap();
        assert!(page.body.starts_with(b"<html>"));
        let mut body = page.body.clone();
        body[1] ^= 0x01;
        sqlx::query("UPDATE evidence SET body = ? WHERE id = 2")
            .bind(zstd::encode_all(&body[..], 3).unwrap())
            .execute(db.pool())
            .await
            .unwrap();
        let report = db.store.verify_evidence_chain().await.unwrap();
        assert_eq!(report.checked, 1);
        let b = report.first_break.unwrap();
        assert_eq!(b.evidence_id, 2);
        assert!(b.problem.contains("recorded at capture"), "{}", b.problem);

        // A rewritten time with a consistent body is caught by the chain hash.
        sqlx::query("UPDATE evidence SET body = ? WHERE id = 2")
            .bind(zstd::encode_all(&page.body[..], 3).unwrap())
            .execute(db.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE evidence SET fetched_at = '2020-01-01T00:00:00.000Z' WHERE id = 3")
            .execute(db.pool())
            .await
            .unwrap();
        let b = db
            .store
            .verify_evidence_chain()
            .await
            .unwrap()
            .first_break
            .unwrap();
        assert_eq!(b.evidence_id, 3);
        assert!(
            b.problem.contains("does not match its contents"),
            "{}",
            b.problem
        );
    }
}
