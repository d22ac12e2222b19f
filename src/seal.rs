//! Sealing evidence: a fetched page's body compressed, hashed, and linked into the hash chain;
//! and the reverse: a stored page opened, and the whole chain walked and checked. The store
//! keeps the sealed rows; this module is the only one that knows how they are sealed.

use std::cell::RefCell;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::fetch::Page;
use crate::store::{EvidencePage, EvidencePart, NewEvidence, NewPart, Store, StoreError};

/// The chain's first link points at this.
pub(crate) const GENESIS_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// A page's body compressed and its hashes computed, ready to link into the chain.
pub(crate) struct Sealed {
    pub url: String,
    pub fetched_at: String,
    pub status: u16,
    pub body_len: usize,
    pub compressed: Vec<u8>,
    pub body_sha256: String,
    pub headers_json: String,
    /// Captured replies and screenshots, in order.
    pub parts: Vec<SealedPart>,
    /// The account whose session fetched the page (kept beside the record, not in its link).
    pub account: Option<String>,
}

/// What else a browser page's evidence holds besides its rendered DOM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartKind {
    /// An API reply the page's script received.
    Capture,
    /// A full-page PNG screenshot.
    Screenshot,
}

impl PartKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PartKind::Capture => "capture",
            PartKind::Screenshot => "screenshot",
        }
    }
}

/// One part of a page's evidence, as received.
#[derive(Debug, Clone)]
pub struct Part {
    pub kind: PartKind,
    pub url: String,
    pub content_type: String,
    pub body: Vec<u8>,
    pub fetched_at: chrono::DateTime<chrono::Utc>,
}

/// A part compressed and hashed.
pub(crate) struct SealedPart {
    pub kind: &'static str,
    pub url: String,
    pub content_type: String,
    pub fetched_at: String,
    pub body_len: usize,
    pub compressed: Vec<u8>,
    pub body_sha256: String,
}

impl Sealed {
    /// Adds parts (captured replies, screenshots); their hashes join the page's chain link.
    pub(crate) fn with_parts(mut self, parts: Vec<Part>) -> Sealed {
        self.parts.extend(parts.into_iter().map(|p| {
            SealedPart {
                kind: p.kind.as_str(),
                fetched_at: p
                    .fetched_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                body_len: p.body.len(),
                compressed: compress(&p.body),
                body_sha256: hex::encode(Sha256::digest(&p.body)),
                url: p.url,
                content_type: p.content_type,
            }
        }));
        self
    }

    pub(crate) fn new(page: &Page) -> Sealed {
        Sealed {
            url: page.final_url.clone(),
            fetched_at: page
                .fetched_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            status: page.status,
            body_len: page.body.len(),
            compressed: compress(&page.body),
            body_sha256: hex::encode(Sha256::digest(&page.body)),
            headers_json: recorded_headers(&page.headers),
            parts: Vec::new(),
            account: None,
        }
    }

    /// The row that appends this page to the chain after `prev`; returns it with its link.
    pub(crate) fn link<'a>(&'a self, run_id: i64, prev: &str) -> NewEvidence<'a> {
        NewEvidence {
            crawl_run_id: run_id,
            url: &self.url,
            fetched_at: &self.fetched_at,
            status: self.status,
            headers_json: &self.headers_json,
            body: &self.compressed,
            body_len: self.body_len,
            body_sha256: &self.body_sha256,
            prev_hash: prev.to_owned(),
            chain_hash: with_parts(
                chain_hash(
                    prev,
                    &self.url,
                    &self.fetched_at,
                    self.status,
                    &self.body_sha256,
                    &self.headers_json,
                ),
                self.parts.iter().map(|p| PartLink {
                    kind: p.kind,
                    url: &p.url,
                    content_type: &p.content_type,
                    fetched_at: &p.fetched_at,
                    body_sha256: &p.body_sha256,
                }),
            ),
            parts: self
                .parts
                .iter()
                .map(|p| NewPart {
                    kind: p.kind,
                    url: &p.url,
                    content_type: &p.content_type,
                    fetched_at: &p.fetched_at,
                    body: &p.compressed,
                    body_len: p.body_len,
                    body_sha256: &p.body_sha256,
                })
                .collect(),
            account: self.account.as_deref(),
        }
    }
}

/// The response headers as the record keeps them. A `Set-Cookie` value is the account's
/// session, not evidence: packs and timestamp chains travel to third parties, so it is
/// withheld (the header's presence stays).
fn recorded_headers(headers: &[(String, String)]) -> String {
    let kept: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| {
            if k.eq_ignore_ascii_case("set-cookie") {
                (k.as_str(), "(withheld: a session cookie)")
            } else {
                (k.as_str(), v.as_str())
            }
        })
        .collect();
    serde_json::to_string(&kept).unwrap_or_else(|_| "[]".to_owned())
}

/// What a chain link commits to about one part.
pub(crate) struct PartLink<'a> {
    pub kind: &'a str,
    pub url: &'a str,
    pub content_type: &'a str,
    pub fetched_at: &'a str,
    pub body_sha256: &'a str,
}

impl<'a> From<&'a EvidencePart> for PartLink<'a> {
    fn from(p: &'a EvidencePart) -> Self {
        PartLink {
            kind: &p.kind,
            url: &p.url,
            content_type: &p.content_type,
            fetched_at: &p.fetched_at,
            body_sha256: &p.body_sha256,
        }
    }
}

/// The chain link of a row with parts: the page's link hashed again with each part's kind,
/// URL, type, time and SHA-256, in order. A row without parts keeps its page link, so rows
/// stored before parts existed verify as they always did.
pub(crate) fn with_parts<'a>(
    link: String,
    parts: impl IntoIterator<Item = PartLink<'a>>,
) -> String {
    let mut parts = parts.into_iter().peekable();
    if parts.peek().is_none() {
        return link;
    }
    let mut h = Sha256::new();
    h.update(link.as_bytes());
    h.update(b"\n");
    for p in parts {
        for field in [p.kind, p.url, p.content_type, p.fetched_at, p.body_sha256] {
            h.update(field.as_bytes());
            h.update(b"\n");
        }
    }
    hex::encode(h.finalize())
}

/// zstd at level 1: on search pages it compresses 7-10x, within 3% of level 3, for less CPU.
/// Each thread keeps its context, whose tables cost as much to set up as a page costs to
/// compress, and a scratch buffer of the worst-case size, so the stored copy is allocated at
/// its compressed size: a page waiting for the writer holds a tenth of its body.
///
/// A stored body is always a zstd frame: the chain check, the pack and the review UI read it
/// one way ([`open`]) and agree on what is corrupt.
fn compress(body: &[u8]) -> Vec<u8> {
    struct Zstd {
        context: zstd::bulk::Compressor<'static>,
        scratch: Vec<u8>,
    }
    thread_local! {
        static ZSTD: RefCell<Option<Zstd>> = const { RefCell::new(None) };
    }
    ZSTD.with(|z| {
        let mut z = z.borrow_mut();
        if z.is_none() {
            *z = Some(Zstd {
                context: zstd::bulk::Compressor::new(1).ok()?,
                scratch: Vec::new(),
            });
        }
        let Zstd { context, scratch } = z.as_mut()?;
        scratch.clear();
        scratch.reserve(zstd::zstd_safe::compress_bound(body.len()));
        context.compress_to_buffer(body, scratch).ok()?;
        Some(scratch.to_vec())
    })
    .or_else(|| zstd::bulk::compress(body, 1).ok())
    // zstd fails only when it cannot allocate its context: out of memory, where any
    // allocation of ours would abort the same way.
    .expect("zstd could not allocate a compression context")
}

/// A stored body that does not open: it was changed or damaged after capture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored body does not decompress: {0}")]
pub struct Unreadable(String);

/// A stored body as the platform sent it.
pub fn open(sealed_body: &[u8]) -> Result<Vec<u8>, Unreadable> {
    zstd::decode_all(sealed_body).map_err(|e| Unreadable(e.to_string()))
}

/// A record (or one of its parts) that no longer opens, as every reader reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("evidence record {id} is damaged ({cause}); `markwatch evidence verify` checks the chain")]
pub struct Damaged {
    pub id: i64,
    pub cause: Unreadable,
}

/// [`open`] for readers that show or export record `id`: damage names the record.
pub(crate) fn open_record(id: i64, sealed_body: &[u8]) -> Result<Vec<u8>, Damaged> {
    open(sealed_body).map_err(|cause| Damaged { id, cause })
}

/// The chain link: commits to the previous link and to everything stored about the page.
pub(crate) fn chain_hash(
    prev: &str,
    url: &str,
    fetched_at: &str,
    status: u16,
    body_sha256: &str,
    headers_json: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [
        prev,
        url,
        fetched_at,
        &status.to_string(),
        body_sha256,
        headers_json,
    ] {
        h.update(part.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
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

/// Walks every evidence record in order and checks that each body still hashes to its
/// recorded SHA-256, that each link commits to the one before it, and that each recorded
/// chain hash recomputes from the record. Stops at the first bad record and names it.
pub async fn verify_chain(store: &Store) -> Result<ChainReport, StoreError> {
    // Batches keep memory flat on a large archive.
    const BATCH: u32 = 256;
    let mut prev = GENESIS_HASH.to_owned();
    let mut checked = 0;
    let mut after = 0i64;
    loop {
        let rows = store.evidence_after(after, BATCH).await?;
        let Some(last) = rows.last() else { break };
        let parts = store.evidence_parts_between(after, last.id).await?;
        after = last.id;
        for r in rows {
            let mine: Vec<&EvidencePart> = parts.iter().filter(|p| p.evidence_id == r.id).collect();
            if let Some(problem) = check_link(&r, &mine, &prev) {
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

fn check_link(r: &EvidencePage, parts: &[&EvidencePart], prev: &str) -> Option<String> {
    for p in parts {
        let body = match open(&p.sealed_body) {
            Ok(b) => b,
            Err(e) => return Some(format!("part {}: {e}", p.seq)),
        };
        let sha = hex::encode(Sha256::digest(&body));
        if sha != p.body_sha256 || body.len() as i64 != p.body_len {
            return Some(format!(
                "part {} ({} {}) hashes to {sha}, but {} was recorded at capture",
                p.seq, p.kind, p.url, p.body_sha256
            ));
        }
    }
    let body = match open(&r.sealed_body) {
        Ok(b) => b,
        Err(e) => return Some(e.to_string()),
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
    let expect = with_parts(
        chain_hash(
            &r.prev_hash,
            &r.url,
            &r.fetched_at,
            status,
            &r.body_sha256,
            &r.headers_json,
        ),
        parts.iter().map(|p| PartLink::from(*p)),
    );
    if expect != r.chain_hash {
        return Some(format!(
            "chain hash {} does not match its contents (url, time, status, headers, hash or parts changed; expected {expect})",
            r.chain_hash
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TestDb;

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
        let report = verify_chain(&db.store).await.unwrap();
        assert_eq!(report.checked, 3);
        assert_eq!(report.first_break, None);

        // One byte of the second page's body changes.
        let page = db.store.evidence_page(2).await.unwrap().unwrap();
        let original = open(&page.sealed_body).unwrap();
        assert!(original.starts_with(b"<html>"));
        let mut body = original.clone();
        body[1] ^= 0x01;
        crate::store::sql::query("UPDATE evidence SET body = ? WHERE id = 2")
            .bind(zstd::encode_all(&body[..], 3).unwrap())
            .execute(db.pool())
            .await
            .unwrap();
        let report = verify_chain(&db.store).await.unwrap();
        assert_eq!(report.checked, 1);
        let b = report.first_break.unwrap();
        assert_eq!(b.evidence_id, 2);
        assert!(b.problem.contains("recorded at capture"), "{}", b.problem);

        // A rewritten time with a consistent body is caught by the chain hash.
        crate::store::sql::query("UPDATE evidence SET body = ? WHERE id = 2")
            .bind(zstd::encode_all(&original[..], 3).unwrap())
            .execute(db.pool())
            .await
            .unwrap();
        crate::store::sql::query(
            "UPDATE evidence SET fetched_at = '2020-01-01T00:00:00.000Z' WHERE id = 3",
        )
        .execute(db.pool())
        .await
        .unwrap();
        let b = verify_chain(&db.store).await.unwrap().first_break.unwrap();
        assert_eq!(b.evidence_id, 3);
        assert!(
            b.problem.contains("does not match its contents"),
            "{}",
            b.problem
        );
    }

    /// A body stored as it came, not as a zstd frame, is damage by one account everywhere:
    /// the chain walk and every reader that opens it say it does not decompress.
    #[tokio::test]
    async fn a_body_that_is_not_a_frame_is_damaged_for_every_reader() {
        let db = TestDb::new().await;
        db.listing_with_match(
            "jd",
            "1",
            "耐克 高仿",
            "店",
            "Nike",
            None,
            "infringing",
            0.9,
        )
        .await;
        let page = db.store.evidence_page(1).await.unwrap().unwrap();
        let raw = open(&page.sealed_body).unwrap();
        crate::store::sql::query("UPDATE evidence SET body = ? WHERE id = 1")
            .bind(&raw)
            .execute(db.pool())
            .await
            .unwrap();
        let b = verify_chain(&db.store).await.unwrap().first_break.unwrap();
        assert_eq!(b.evidence_id, 1);
        assert!(
            b.problem.starts_with("stored body does not decompress"),
            "{}",
            b.problem
        );
        let stored = db.store.evidence_page(1).await.unwrap().unwrap();
        assert_eq!(
            open(&stored.sealed_body).unwrap_err().to_string(),
            b.problem
        );
    }

    #[test]
    fn session_cookies_a_platform_sets_stay_out_of_the_record() {
        let page = Page {
            url: "https://item.jd.com/1.html".into(),
            final_url: "https://item.jd.com/1.html".into(),
            status: 200,
            headers: vec![
                ("content-type".into(), "text/html".into()),
                ("set-cookie".into(), "thor=SECRET123; Path=/".into()),
            ],
            body: b"<html></html>".to_vec(),
            fetched_at: chrono::Utc::now(),
            attempts: 1,
        };
        let sealed = Sealed::new(&page);
        assert!(
            !sealed.headers_json.contains("SECRET123"),
            "{}",
            sealed.headers_json
        );
        assert!(
            sealed.headers_json.contains("text/html") && sealed.headers_json.contains("set-cookie")
        );
    }

    #[test]
    fn a_sealed_body_opens_to_the_bytes_fetched() {
        let body = "<html>耐克</html>".repeat(100).into_bytes();
        let sealed = compress(&body);
        assert!(sealed.len() < body.len());
        assert_eq!(open(&sealed).unwrap(), body);
    }
}
