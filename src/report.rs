//! One report per notice, for a platform's complaint form or a court: the right relied on,
//! and per listing its screenshot, URL, capture time (UTC and Beijing), SHA-256, place in the
//! evidence chain, the timestamp that covers it and the match in plain words, with the
//! listing's photo beside the brand's own where they matched. An HTML template
//! (`report.html`, overridden like the notice templates) printed to PDF by Chromium.

use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::fetch::browser::{BrowserError, BrowserSession};
use crate::notice::{NoticeError, Templates, explain_en, explain_zh};
use crate::seal;
use crate::store::{NoticeMark, NoticeSummary, Store, StoreError};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Template(#[from] NoticeError),
    #[error("notice {0} does not exist")]
    NoNotice(i64),
    #[error("cannot print the report: {0}")]
    Browser(#[from] BrowserError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Damaged(#[from] seal::Damaged),
}

/// The template's context.
#[derive(Serialize)]
struct Report<'a> {
    generated_utc: String,
    generated_beijing: String,
    notice: &'a NoticeSummary,
    owner: &'a str,
    marks: &'a [NoticeMark],
    listings: Vec<ReportListing>,
    /// Each token covering a page, once: (pack file, chain hash stamped).
    tokens: Vec<(String, String)>,
}

#[derive(Serialize)]
struct ReportListing {
    platform: String,
    item_id: String,
    url: String,
    title: String,
    seller: Option<String>,
    price: Option<f64>,
    currency: String,
    verdict: &'static str,
    score: f64,
    mark: Option<String>,
    registration_no: Option<String>,
    explanation_en: String,
    explanation_zh: String,
    /// Each reason in plain words, with what it found.
    reasons: Vec<String>,
    pages: Vec<ReportPage>,
    photos: Option<ReportPhotos>,
}

#[derive(Serialize)]
struct ReportPage {
    evidence_id: i64,
    role: &'static str,
    url: String,
    captured_utc: String,
    captured_beijing: String,
    sha256: String,
    chain_hash: String,
    account: Option<String>,
    screenshot: Option<ReportFile>,
    timestamp: Option<ReportStamp>,
}

/// A picture written beside the HTML.
#[derive(Serialize)]
struct ReportFile {
    file: String,
    sha256: String,
}

#[derive(Serialize)]
struct ReportStamp {
    token_id: i64,
    /// The record whose chain hash the token stamps.
    evidence_id: i64,
    chain_hash: String,
    time_utc: String,
    time_beijing: String,
    tsa_name: String,
    tsa_url: String,
    /// Its file in the notice's evidence pack.
    file: String,
}

#[derive(Serialize)]
struct ReportPhotos {
    listing: ReportFile,
    reference: ReportFile,
    reference_path: String,
    reference_kind: String,
    distance: u32,
}

/// `2026-12-04 10:00:00 UTC` and `2026-12-04 18:00:00` Beijing time, from a stored RFC 3339
/// time; text that is not one comes back as it is.
fn times(at: &str) -> (String, String) {
    match DateTime::parse_from_rfc3339(at) {
        Ok(t) => {
            let beijing = FixedOffset::east_opt(8 * 3600).unwrap_or(*t.offset());
            (
                t.with_timezone(&Utc)
                    .format("%Y-%m-%d %H:%M:%S UTC")
                    .to_string(),
                t.with_timezone(&beijing)
                    .format("%Y-%m-%d %H:%M:%S 北京时间 (UTC+8)")
                    .to_string(),
            )
        }
        Err(_) => (at.to_owned(), at.to_owned()),
    }
}

/// The pack file of token `id` (see `crate::evidence`).
pub(crate) fn token_file(id: i64) -> String {
    format!("timestamps/{id:06}.tsr")
}

/// Writes notice `id`'s report into `dir`: `report.html` and the pictures it shows. Returns
/// the HTML file's path.
pub async fn write_report_html(
    store: &Store,
    id: i64,
    templates: &Templates,
    dir: &Path,
) -> Result<PathBuf, ReportError> {
    let detail = store
        .notice_detail(id)
        .await?
        .ok_or(ReportError::NoNotice(id))?;
    let marks = store.notice_marks(id).await?;
    let refs = store.reference_photos(&detail.notice.brand).await?;
    let write = |name: String, bytes: &[u8]| -> Result<ReportFile, ReportError> {
        let path = dir.join(&name);
        std::fs::write(&path, bytes).map_err(|source| ReportError::Io { path, source })?;
        Ok(ReportFile {
            file: name,
            sha256: hex::encode(Sha256::digest(bytes)),
        })
    };
    let mut listings = Vec::new();
    let mut tokens: Vec<(String, String)> = Vec::new();
    for item in &detail.items {
        let mut pages = Vec::new();
        for e in &item.evidence {
            let record = store.evidence_page(e.id).await?;
            let mut screenshot = None;
            for p in store.evidence_parts(e.id).await? {
                if p.kind == "screenshot" && screenshot.is_none() {
                    let png = seal::open_record(e.id, &p.sealed_body)?;
                    screenshot = Some(write(format!("shot-{}-{}.png", e.id, p.seq), &png)?);
                }
            }
            let timestamp = store.covering_timestamp(e.id).await?.map(|t| {
                let (time_utc, time_beijing) = times(&t.gen_time);
                ReportStamp {
                    file: token_file(t.id),
                    token_id: t.id,
                    evidence_id: t.evidence_id,
                    chain_hash: t.chain_hash,
                    time_utc,
                    time_beijing,
                    tsa_name: t.tsa_name,
                    tsa_url: t.tsa_url,
                }
            });
            if let Some(t) = &timestamp
                && !tokens.iter().any(|(file, _)| *file == t.file)
            {
                tokens.push((t.file.clone(), t.chain_hash.clone()));
            }
            let (captured_utc, captured_beijing) = times(&e.fetched_at);
            pages.push(ReportPage {
                evidence_id: e.id,
                role: e.role.label(),
                url: e.url.clone(),
                captured_utc,
                captured_beijing,
                sha256: e.sha256.clone(),
                chain_hash: e.chain_hash.clone(),
                account: record.and_then(|r| r.account),
                screenshot,
                timestamp,
            });
        }
        let photos = store.listing_photos(item.listing_id).await?;
        let mut pair = None;
        if let Some((distance, photo, r)) = crate::images::closest_pair(&photos, &refs)
            && let Some((listing_type, listing)) = store.listing_photo_bytes(photo).await?
            && let Some((reference_type, reference)) = store.reference_photo_bytes(r.id).await?
        {
            // Chromium types a file:// picture by its extension.
            let ext = |ctype: &str| ctype.trim_start_matches("image/").replace("jpeg", "jpg");
            pair = Some(ReportPhotos {
                listing: write(format!("photo-{photo}.{}", ext(listing_type)), &listing)?,
                reference: write(
                    format!("reference-{}.{}", r.id, ext(reference_type)),
                    &reference,
                )?,
                reference_path: r.path.clone(),
                reference_kind: r.kind.clone(),
                distance,
            });
        }
        listings.push(ReportListing {
            platform: item.platform.clone(),
            item_id: item.item_id.clone(),
            url: item.url.clone(),
            title: item.title.clone(),
            seller: item.seller.clone(),
            price: item.price,
            currency: item.currency.clone(),
            verdict: item.verdict.as_str(),
            score: item.score,
            mark: item.mark.clone(),
            registration_no: item.registration_no.clone(),
            explanation_en: explain_en(&item.reasons),
            explanation_zh: explain_zh(&item.reasons),
            reasons: item
                .reasons
                .iter()
                .map(|r| match r.detail.as_str() {
                    "" => r.code.explanation().to_owned(),
                    d => format!("{}: {d}", r.code.explanation()),
                })
                .collect(),
            pages,
            photos: pair,
        });
    }
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (generated_utc, generated_beijing) = times(&now);
    let html = templates.render_report(&Report {
        generated_utc,
        generated_beijing,
        notice: &detail.notice,
        owner: &detail.owner,
        marks: &marks,
        listings,
        tokens,
    })?;
    let path = dir.join("report.html");
    std::fs::write(&path, html).map_err(|source| ReportError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Notice `id`'s report as a PDF, printed by `browser`.
pub async fn render_report(
    store: &Store,
    id: i64,
    templates: &Templates,
    browser: &BrowserSession,
) -> Result<Vec<u8>, ReportError> {
    let dir = tempfile::tempdir().map_err(|source| ReportError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let html = write_report_html(store, id, templates, dir.path()).await?;
    Ok(browser.print_pdf(&html).await?)
}
