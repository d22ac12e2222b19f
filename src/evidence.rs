//! Evidence packs: for one notice, a zip holding every captured page exactly as fetched, the
//! notice text in Chinese and English, and a `manifest.json` that lists, per listing, the
//! extracted fields, the match reasons and each page's URL, capture time, SHA-256 and link in
//! the evidence hash chain. [`verify_pack`] re-checks a pack on its own;
//! [`crate::seal::verify_chain`] checks the whole chain in the database.

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

use crate::config::NoticesConfig;
use crate::model::Reason;
use crate::notice::{
    Language, NoticeContext, NoticeError, Templates, explain_en, explain_zh, pack_file_name,
};
use crate::platform::PlatformDef;
use crate::seal;
use crate::store::{NoticeMark, NoticeSummary, Store, StoreError, StoredTimestamp};
use crate::timestamp::TrustAnchor;

/// Identifies the manifest layout.
pub(crate) const PACK_FORMAT: &str = "markwatch-evidence-pack/1";
/// The chain's links between pages and the tokens over them.
const CHAIN_FILE: &str = "chain.jsonl";
/// The CA the tokens were checked against at export.
const TSA_CA_FILE: &str = "timestamps/tsa-ca.pem";
/// The notice's report.
pub(crate) const REPORT_FILE: &str = "report.pdf";

/// Overlapping or touching `(first, last)` ranges joined, in order.
fn merge(mut ranges: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    ranges.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (first, last) in ranges {
        match out.last_mut() {
            Some(prev) if first <= prev.1 + 1 => prev.1 = prev.1.max(last),
            _ => out.push((first, last)),
        }
    }
    out
}

/// Why a pack could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Notice(#[from] NoticeError),
    #[error("notice {0} does not exist")]
    NoNotice(i64),
    #[error("notice {id}: no platform definition for `{platform}`")]
    NoPlatform { id: i64, platform: String },
    /// A page a notice cites is missing from the store.
    #[error("evidence record {0} is missing")]
    MissingRecord(i64),
    /// A page a notice cites no longer opens.
    #[error(transparent)]
    Damaged(#[from] seal::Damaged),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not a pack, or its manifest is unreadable.
    #[error("{}: not an evidence pack: {message}", path.display())]
    BadPack { path: PathBuf, message: String },
    #[error("cannot write the pack: {0}")]
    Zip(#[from] zip::result::ZipError),
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub format: String,
    pub generator: String,
    pub generated_at: String,
    pub notice: serde_json::Value,
    pub rights_holder: String,
    pub marks: serde_json::Value,
    pub listings: Vec<ManifestListing>,
    /// Every other file in the pack and its SHA-256.
    pub files: BTreeMap<String, String>,
    /// How each listed page's own link in the evidence chain checked out at export.
    pub chain_checked: bool,
    /// Trusted timestamp tokens that cover the pages, each a file `timestamps/<id>.tsr`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timestamps: Vec<ManifestTimestamp>,
    /// `chain.jsonl`: the chain's links (no bodies) from each page to the token covering it,
    /// so that a token over a later record proves the page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
}

/// A timestamp token in a pack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ManifestTimestamp {
    pub token_id: i64,
    pub file: String,
    /// The record whose chain hash it stamps: it covers every record up to this one.
    pub evidence_id: i64,
    pub chain_hash: String,
    pub gen_time: String,
    pub tsa_name: String,
    pub tsa_url: String,
}

/// One line of `chain.jsonl`: what a record's chain link commits to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ChainLine {
    pub evidence_id: i64,
    pub url: String,
    pub fetched_at: String,
    pub status: i64,
    pub sha256: String,
    pub headers: String,
    pub prev_hash: String,
    pub chain_hash: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<ChainPart>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ChainPart {
    pub kind: String,
    pub url: String,
    pub content_type: String,
    pub fetched_at: String,
    pub sha256: String,
}

impl ChainLine {
    /// The chain hash its fields give.
    fn relink(&self) -> String {
        seal::with_parts(
            seal::chain_hash(
                &self.prev_hash,
                &self.url,
                &self.fetched_at,
                u16::try_from(self.status).unwrap_or(0),
                &self.sha256,
                &self.headers,
            ),
            self.parts.iter().map(|p| seal::PartLink {
                kind: &p.kind,
                url: &p.url,
                content_type: &p.content_type,
                fetched_at: &p.fetched_at,
                body_sha256: &p.sha256,
            }),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ManifestListing {
    pub platform: String,
    pub item_id: String,
    pub url: String,
    pub title: String,
    pub seller: Option<String>,
    pub price: Option<f64>,
    pub currency: String,
    pub category: Option<String>,
    pub first_seen: String,
    pub last_seen: String,
    #[serde(rename = "match")]
    pub matched: ManifestMatch,
    pub pages: Vec<ManifestPage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ManifestMatch {
    pub verdict: String,
    pub score: f64,
    pub mark: Option<String>,
    pub registration_no: Option<String>,
    pub reasons: Vec<Reason>,
    pub explanation_zh: String,
    pub explanation_en: String,
    pub matcher_version: String,
}

/// One captured page, as the evidence chain records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ManifestPage {
    pub file: String,
    pub evidence_id: i64,
    pub role: String,
    pub url: String,
    pub fetched_at: String,
    pub status: i64,
    /// SHA-256 of the file: the bytes as received.
    pub sha256: String,
    pub bytes: i64,
    /// The response headers as stored (JSON), which the chain hash commits to.
    pub headers: String,
    pub prev_hash: String,
    pub chain_hash: String,
    /// Captured replies and screenshots stored with the page, each a file of the pack; their
    /// hashes are in `chain_hash`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<ManifestPart>,
    /// The earliest timestamp token covering this record (`timestamps[].token_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
}

/// One part of a page's evidence (a captured reply, a screenshot).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ManifestPart {
    pub file: String,
    pub kind: String,
    pub url: String,
    pub content_type: String,
    pub fetched_at: String,
    pub sha256: String,
    pub bytes: i64,
}

impl ManifestPart {
    fn link(&self) -> seal::PartLink<'_> {
        seal::PartLink {
            kind: &self.kind,
            url: &self.url,
            content_type: &self.content_type,
            fetched_at: &self.fetched_at,
            body_sha256: &self.sha256,
        }
    }
}

/// What a pack holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackSummary {
    pub notice_id: i64,
    pub listings: usize,
    pub pages: usize,
    pub files: usize,
}

/// What goes into a pack besides the notice's own records.
#[derive(Default, Clone, Copy)]
pub struct PackExtras<'a> {
    /// The TSA's CA certificate, copied into the pack beside the tokens.
    pub tsa_ca: Option<&'a TrustAnchor>,
    /// The notice's report (PDF), as `report.pdf`.
    pub report: Option<&'a [u8]>,
}

/// Writes the evidence pack of notice `id` to `out`.
pub async fn export_pack(
    store: &Store,
    id: i64,
    defs: &[PlatformDef],
    config: &NoticesConfig,
    templates: &Templates,
    extras: PackExtras<'_>,
    out: &Path,
) -> Result<PackSummary, EvidenceError> {
    let io = |source| EvidenceError::Io {
        path: out.to_owned(),
        source,
    };
    let mut buf = std::io::Cursor::new(Vec::new());
    let summary = write_pack(store, id, defs, config, templates, extras, &mut buf).await?;
    // Written whole, then renamed: a crash never leaves half a pack under the real name.
    let tmp = out.with_extension("zip.partial");
    std::fs::write(&tmp, buf.into_inner()).map_err(io)?;
    std::fs::rename(&tmp, out).map_err(io)?;
    Ok(summary)
}

/// Builds the pack of notice `id` into `w`.
pub(crate) async fn write_pack<W: Write + Seek>(
    store: &Store,
    id: i64,
    defs: &[PlatformDef],
    config: &NoticesConfig,
    templates: &Templates,
    extras: PackExtras<'_>,
    w: W,
) -> Result<PackSummary, EvidenceError> {
    let detail = store
        .notice_detail(id)
        .await?
        .ok_or(EvidenceError::NoNotice(id))?;
    let n: &NoticeSummary = &detail.notice;
    let def = defs
        .iter()
        .find(|d| d.platform == n.platform)
        .ok_or_else(|| EvidenceError::NoPlatform {
            id,
            platform: n.platform.clone(),
        })?;
    let marks: Vec<NoticeMark> = store.notice_marks(id).await?;
    let mut zip = zip::ZipWriter::new(w);
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut files = BTreeMap::new();
    let mut listings = Vec::new();
    let mut written_pages = BTreeMap::new();
    let mut chain_checked = true;
    // Tokens covering the pages, and per page the stretch of chain up to its token.
    let mut tokens: BTreeMap<i64, StoredTimestamp> = BTreeMap::new();
    let mut stretches: Vec<(i64, i64)> = Vec::new();
    for item in &detail.items {
        let mut pages = Vec::new();
        for e in &item.evidence {
            let page = store
                .evidence_page(e.id)
                .await?
                .ok_or(EvidenceError::MissingRecord(e.id))?;
            let file = pack_file_name(e);
            let body = seal::open_record(e.id, &page.sealed_body)?;
            let sha = hex::encode(Sha256::digest(&body));
            let mut parts = Vec::new();
            let mut parts_ok = true;
            for p in store.evidence_parts(e.id).await? {
                let ext = match p.kind.as_str() {
                    "screenshot" => "png",
                    _ => "txt",
                };
                let part_file = format!("pages/{:08}-part{}-{}.{ext}", e.id, p.seq, p.kind);
                let part_body = seal::open_record(e.id, &p.sealed_body)?;
                let part_sha = hex::encode(Sha256::digest(&part_body));
                parts_ok &= part_sha == p.body_sha256;
                if !written_pages.contains_key(&part_file) {
                    zip.start_file(part_file.as_str(), opts)?;
                    zip.write_all(&part_body)
                        .map_err(|source| EvidenceError::Io {
                            path: PathBuf::from(&part_file),
                            source,
                        })?;
                    files.insert(part_file.clone(), part_sha);
                }
                parts.push(ManifestPart {
                    file: part_file,
                    kind: p.kind,
                    url: p.url,
                    content_type: p.content_type,
                    fetched_at: p.fetched_at,
                    sha256: p.body_sha256,
                    bytes: p.body_len,
                });
            }
            let link = seal::with_parts(
                seal::chain_hash(
                    &page.prev_hash,
                    &page.url,
                    &page.fetched_at,
                    u16::try_from(page.status).unwrap_or(0),
                    &page.body_sha256,
                    &page.headers_json,
                ),
                parts.iter().map(ManifestPart::link),
            );
            if !parts_ok || sha != page.body_sha256 || link != page.chain_hash {
                chain_checked = false;
                tracing::warn!(
                    evidence = e.id,
                    "evidence record does not match its chain link"
                );
            }
            let covering = store.covering_timestamp(page.id).await?;
            if let Some(t) = &covering {
                stretches.push((page.id, t.evidence_id));
            }
            let timestamp = covering.map(|t| {
                let id = t.id;
                tokens.entry(id).or_insert(t);
                id
            });
            if !written_pages.contains_key(&file) {
                zip.start_file(file.as_str(), opts)?;
                zip.write_all(&body).map_err(|source| EvidenceError::Io {
                    path: PathBuf::from(&file),
                    source,
                })?;
                written_pages.insert(file.clone(), sha.clone());
            }
            pages.push(ManifestPage {
                file,
                evidence_id: page.id,
                role: e.role.as_str().to_owned(),
                url: page.url,
                fetched_at: page.fetched_at,
                status: page.status,
                sha256: page.body_sha256,
                bytes: page.body_len,
                headers: page.headers_json,
                prev_hash: page.prev_hash,
                chain_hash: page.chain_hash,
                parts,
                timestamp,
            });
        }
        listings.push(ManifestListing {
            platform: item.platform.clone(),
            item_id: item.item_id.clone(),
            url: item.url.clone(),
            title: item.title.clone(),
            seller: item.seller.clone(),
            price: item.price,
            currency: item.currency.clone(),
            category: item.category.clone(),
            first_seen: item.first_seen.clone(),
            last_seen: item.last_seen.clone(),
            matched: ManifestMatch {
                verdict: item.verdict.as_str().to_owned(),
                score: item.score,
                mark: item.mark.clone(),
                registration_no: item.registration_no.clone(),
                reasons: item.reasons.clone(),
                explanation_zh: explain_zh(&item.reasons),
                explanation_en: explain_en(&item.reasons),
                matcher_version: item.matcher_version.clone(),
            },
            pages,
        });
    }
    let today = chrono::Utc::now().date_naive();
    let ctx = NoticeContext::new(&detail, def, config, marks.clone(), today);
    let page_count = written_pages.len();
    files.extend(written_pages);
    let mut put = |name: String, bytes: &[u8]| -> Result<(), EvidenceError> {
        zip.start_file(name.as_str(), opts)?;
        zip.write_all(bytes).map_err(|source| EvidenceError::Io {
            path: PathBuf::from(&name),
            source,
        })?;
        files.insert(name, hex::encode(Sha256::digest(bytes)));
        Ok(())
    };
    for lang in Language::ALL {
        let text = templates.render(def, lang, &ctx)?;
        put(format!("notice.{}.txt", lang.as_str()), text.as_bytes())?;
    }
    if let Some(pdf) = extras.report {
        put(REPORT_FILE.to_owned(), pdf)?;
    }
    let mut timestamps = Vec::new();
    for t in tokens.into_values() {
        let file = crate::report::token_file(t.id);
        put(file.clone(), &t.reply)?;
        timestamps.push(ManifestTimestamp {
            token_id: t.id,
            file,
            evidence_id: t.evidence_id,
            chain_hash: t.chain_hash,
            gen_time: t.gen_time,
            tsa_name: t.tsa_name,
            tsa_url: t.tsa_url,
        });
    }
    let mut chain = None;
    if !timestamps.is_empty() {
        if let Some(ca) = extras.tsa_ca {
            put(TSA_CA_FILE.to_owned(), ca.to_pem().as_bytes())?;
        }
        let mut lines = Vec::new();
        for (first, last) in merge(stretches) {
            for (r, parts) in store.evidence_links(first, last).await? {
                let line = ChainLine {
                    evidence_id: r.id,
                    url: r.url,
                    fetched_at: r.fetched_at,
                    status: r.status,
                    sha256: r.body_sha256,
                    headers: r.headers_json,
                    prev_hash: r.prev_hash,
                    chain_hash: r.chain_hash,
                    parts: parts
                        .into_iter()
                        .map(|p| ChainPart {
                            kind: p.kind,
                            url: p.url,
                            content_type: p.content_type,
                            fetched_at: p.fetched_at,
                            sha256: p.body_sha256,
                        })
                        .collect(),
                };
                lines.extend(serde_json::to_vec(&line).unwrap_or_default());
                lines.push(b'\n');
            }
        }
        put(CHAIN_FILE.to_owned(), &lines)?;
        chain = Some(CHAIN_FILE.to_owned());
    }
    let manifest = Manifest {
        format: PACK_FORMAT.to_owned(),
        generator: concat!("markwatch ", env!("CARGO_PKG_VERSION")).to_owned(),
        generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        notice: serde_json::to_value(n).unwrap_or_default(),
        rights_holder: detail.owner.clone(),
        marks: serde_json::to_value(&marks).unwrap_or_default(),
        listings,
        files,
        chain_checked,
        timestamps,
        chain,
    };
    zip.start_file("manifest.json", opts)?;
    let json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    zip.write_all(&json).map_err(|source| EvidenceError::Io {
        path: PathBuf::from("manifest.json"),
        source,
    })?;
    let file_count = manifest.files.len() + 1;
    zip.finish()?;
    Ok(PackSummary {
        notice_id: id,
        listings: detail.items.len(),
        pages: page_count,
        files: file_count,
    })
}

/// The outcome of checking a pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackReport {
    /// Files whose hash was checked.
    pub checked: usize,
    /// The first problem, naming the file.
    pub problem: Option<String>,
    /// Each timestamp token that checked out, in words: what it proves.
    pub timestamps: Vec<String>,
    /// The CA the tokens were checked against: the one given, or the pack's own copy.
    pub anchor: Option<String>,
}

/// [`verify_pack`], then each page's chain link against the record of the same id in `store`:
/// a pack whose manifest was rewritten to match altered pages no longer matches the chain.
pub async fn verify_pack_with_store(
    path: &Path,
    store: &Store,
    anchor: Option<&TrustAnchor>,
) -> Result<PackReport, EvidenceError> {
    let report = verify_pack(path, anchor)?;
    if report.problem.is_some() {
        return Ok(report);
    }
    let manifest = read_manifest(path)?;
    for p in manifest.listings.iter().flat_map(|l| &l.pages) {
        let stored = store.evidence_page(p.evidence_id).await?;
        let problem = match stored {
            None => Some(format!(
                "evidence record {} ({}) is not in this database",
                p.evidence_id, p.file
            )),
            Some(r) if r.chain_hash != p.chain_hash || r.body_sha256 != p.sha256 => Some(format!(
                "{}: differs from evidence record {} in the database (chain hash {} there, {} in the pack)",
                p.file, p.evidence_id, r.chain_hash, p.chain_hash
            )),
            Some(_) => None,
        };
        if problem.is_some() {
            return Ok(PackReport { problem, ..report });
        }
    }
    Ok(report)
}

fn read_manifest(path: &Path) -> Result<Manifest, EvidenceError> {
    let bad = |message: String| EvidenceError::BadPack {
        path: path.to_owned(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|source| EvidenceError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
    let mut entry = zip
        .by_name("manifest.json")
        .map_err(|_| bad("no manifest.json".to_owned()))?;
    let mut text = Vec::new();
    entry
        .read_to_end(&mut text)
        .map_err(|e| bad(format!("manifest.json: {e}")))?;
    serde_json::from_slice(&text).map_err(|e| bad(format!("manifest.json: {e}")))
}

/// Checks a pack on its own: every file's SHA-256 against the manifest, every page against the
/// hash its evidence record carries, every record's chain link against its contents, and each
/// timestamp token: its signature against `anchor` (else the CA the pack carries), its imprint
/// against the chain, and the chain from each page to its token.
pub fn verify_pack(path: &Path, anchor: Option<&TrustAnchor>) -> Result<PackReport, EvidenceError> {
    let bad = |message: String| EvidenceError::BadPack {
        path: path.to_owned(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|source| EvidenceError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
    let manifest = read_manifest(path)?;
    if manifest.format != PACK_FORMAT {
        return Err(bad(format!("unknown format `{}`", manifest.format)));
    }
    let mut checked = 0;
    let report = |checked, problem: String| {
        Ok(PackReport {
            checked,
            problem: Some(problem),
            timestamps: Vec::new(),
            anchor: None,
        })
    };
    // Files the timestamp checks read again, once their hashes held.
    let mut kept: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    for (name, expected) in &manifest.files {
        let bytes = match zip.by_name(name) {
            Ok(mut entry) => {
                let mut bytes = Vec::new();
                if let Err(e) = entry.read_to_end(&mut bytes) {
                    return report(checked, format!("{name}: unreadable: {e}"));
                }
                bytes
            }
            Err(_) => {
                return report(
                    checked,
                    format!("{name}: listed in the manifest but missing"),
                );
            }
        };
        let actual = hex::encode(Sha256::digest(&bytes));
        if &actual != expected {
            return report(
                checked,
                format!("{name}: SHA-256 is {actual}, the manifest records {expected}"),
            );
        }
        checked += 1;
        if name == CHAIN_FILE || name.starts_with("timestamps/") {
            kept.insert(name, bytes);
        }
    }
    for listing in &manifest.listings {
        for p in &listing.pages {
            match manifest.files.get(&p.file) {
                Some(sha) if *sha == p.sha256 => {}
                Some(sha) => {
                    return report(
                        checked,
                        format!(
                            "{}: hashes to {sha}, but evidence record {} was captured with {}",
                            p.file, p.evidence_id, p.sha256
                        ),
                    );
                }
                None => return report(checked, format!("{}: missing from the pack", p.file)),
            }
            for part in &p.parts {
                match manifest.files.get(&part.file) {
                    Some(sha) if *sha == part.sha256 => {}
                    Some(sha) => {
                        return report(
                            checked,
                            format!(
                                "{}: hashes to {sha}, but evidence record {} was captured with {}",
                                part.file, p.evidence_id, part.sha256
                            ),
                        );
                    }
                    None => {
                        return report(checked, format!("{}: missing from the pack", part.file));
                    }
                }
            }
            let link = seal::with_parts(
                seal::chain_hash(
                    &p.prev_hash,
                    &p.url,
                    &p.fetched_at,
                    u16::try_from(p.status).unwrap_or(0),
                    &p.sha256,
                    &p.headers,
                ),
                p.parts.iter().map(ManifestPart::link),
            );
            if link != p.chain_hash {
                return report(
                    checked,
                    format!(
                        "evidence record {} ({}): chain hash does not match the recorded URL, time, status, headers or hash",
                        p.evidence_id, p.file
                    ),
                );
            }
        }
    }
    let (timestamps, anchor) = match verify_pack_timestamps(&manifest, &kept, anchor) {
        Ok(found) => found,
        Err(problem) => return report(checked, problem),
    };
    Ok(PackReport {
        checked,
        problem: None,
        timestamps,
        anchor,
    })
}

/// The timestamp half of [`verify_pack`]: each token against the CA and the chain, and the
/// chain from each page to its token. Returns a line per token and the CA's name.
fn verify_pack_timestamps(
    manifest: &Manifest,
    files: &BTreeMap<&str, Vec<u8>>,
    given: Option<&TrustAnchor>,
) -> Result<(Vec<String>, Option<String>), String> {
    if manifest.timestamps.is_empty() {
        return Ok((Vec::new(), None));
    }
    let chain_file = manifest.chain.as_deref().unwrap_or(CHAIN_FILE);
    let text = files
        .get(chain_file)
        .ok_or_else(|| format!("{chain_file}: missing, so the tokens prove nothing here"))?;
    let mut links: BTreeMap<i64, ChainLine> = BTreeMap::new();
    for (n, line) in text.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let link: ChainLine = serde_json::from_slice(line)
            .map_err(|e| format!("{chain_file}: line {}: {e}", n + 1))?;
        if link.relink() != link.chain_hash {
            return Err(format!(
                "{chain_file}: record {}: chain hash does not match the recorded URL, time, status, headers or hash",
                link.evidence_id
            ));
        }
        if let Some(prev) = links.get(&(link.evidence_id - 1))
            && prev.chain_hash != link.prev_hash
        {
            return Err(format!(
                "{chain_file}: record {} does not link to record {}",
                link.evidence_id, prev.evidence_id
            ));
        }
        links.insert(link.evidence_id, link);
    }
    let packed = match files.get(TSA_CA_FILE) {
        Some(pem) => Some(TrustAnchor::from_pem(pem).map_err(|e| format!("{TSA_CA_FILE}: {e}"))?),
        None => None,
    };
    let anchor = given.or(packed.as_ref()).ok_or(
        "no CA to check the timestamp tokens against: pass --tsa-ca, or set evidence.tsa.ca",
    )?;
    let mut lines = Vec::new();
    for t in &manifest.timestamps {
        let reply = files
            .get(t.file.as_str())
            .ok_or_else(|| format!("{}: missing from the pack", t.file))?;
        let link = links.get(&t.evidence_id).ok_or_else(|| {
            format!(
                "{chain_file}: lacks record {}, which token {} stamps",
                t.evidence_id, t.token_id
            )
        })?;
        if let Some(p) = crate::timestamp::check_token(
            reply,
            Some(anchor),
            &link.chain_hash,
            &link.fetched_at,
            &t.chain_hash,
        ) {
            return Err(format!(
                "{}: token {} (over record {}): {p}",
                t.file, t.token_id, t.evidence_id
            ));
        }
        lines.push(format!(
            "{}: token {} stamped record {} (and every record before it) at {} by {}",
            t.file, t.token_id, t.evidence_id, t.gen_time, t.tsa_name
        ));
    }
    for p in manifest.listings.iter().flat_map(|l| &l.pages) {
        let Some(token_id) = p.timestamp else {
            continue;
        };
        let t = manifest
            .timestamps
            .iter()
            .find(|t| t.token_id == token_id)
            .ok_or_else(|| format!("{}: names token {token_id}, which the pack lacks", p.file))?;
        if let Some(missing) = (p.evidence_id..=t.evidence_id).find(|id| !links.contains_key(id)) {
            return Err(format!(
                "{chain_file}: lacks record {missing}, between {} and token {token_id}",
                p.file
            ));
        }
        if links[&p.evidence_id].chain_hash != p.chain_hash {
            return Err(format!(
                "{}: its chain hash differs from record {} in {chain_file}",
                p.file, p.evidence_id
            ));
        }
    }
    Ok((lines, Some(anchor.subject())))
}
