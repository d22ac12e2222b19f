//! A platform's batch of notices laid out as its complaint form's bulk upload expects: the
//! columns come from the definition's `[[complaint.export]]` list. CSV (one row per listing),
//! JSON (complaints with their rows), or text (the rendered notices).
//!
//! Scraped text stays intact and inert in each: CSV quotes fields (and defuses cells a
//! spreadsheet would run as a formula), JSON escapes, text shows control characters as escapes.

use std::collections::BTreeMap;
use std::io::Write;

use chrono::NaiveDate;
use serde::Serialize;

use super::template::{Language, NoticeContext, Templates};
use super::{NoticeError, explain_en, explain_zh};
use crate::config::NoticesConfig;
use crate::model::CaseState;
use crate::platform::{ExportField, PlatformDef};
use crate::store::{NoticeDetail, NoticeFilter, NoticeMark, NoticeSort, Store};

/// The first CSV column: which markwatch notice (one platform complaint) a row belongs to, so
/// each complaint's reference can be recorded against it after filing.
pub(crate) const NOTICE_COLUMN: &str = "markwatch_notice";

/// Export file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Json,
    Txt,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "csv" => Ok(ExportFormat::Csv),
            "json" => Ok(ExportFormat::Json),
            "txt" => Ok(ExportFormat::Txt),
            other => Err(format!(
                "unknown format `{other}`; expected csv, json or txt"
            )),
        }
    }
}

impl ExportFormat {
    /// The MIME type of the file, for downloads.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Json => "application/json",
            ExportFormat::Txt => "text/plain; charset=utf-8",
        }
    }
}

/// One listing of one notice, every form field filled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ExportRow {
    pub notice_id: i64,
    pub item_id: String,
    pub values: BTreeMap<ExportField, String>,
}

impl ExportRow {
    pub(crate) fn get(&self, field: ExportField) -> &str {
        self.values.get(&field).map_or("", String::as_str)
    }
}

/// The form rows of one notice: one per listing.
pub(crate) fn export_rows(
    detail: &NoticeDetail,
    marks: &[NoticeMark],
    config: &NoticesConfig,
) -> Vec<ExportRow> {
    let n = &detail.notice;
    detail
        .items
        .iter()
        .map(|item| {
            // The listing's own mark where a report carries several, else the notice's.
            let mark = item
                .mark_id
                .and_then(|id| marks.iter().find(|m| m.id == id))
                .or_else(|| marks.first());
            let join = |f: &dyn Fn(&crate::store::EvidenceRef) -> String| {
                item.evidence.iter().map(f).collect::<Vec<_>>().join(";")
            };
            use ExportField::*;
            let pairs = [
                (NoticeId, n.id.to_string()),
                (Brand, n.brand.clone()),
                (RightType, "trademark".to_owned()),
                (RightTypeZh, "商标".to_owned()),
                (RightsHolder, detail.owner.clone()),
                (Agent, config.agent.clone()),
                (AgentContact, config.agent_contact.clone()),
                (Mark, mark.map(|m| m.text.clone()).unwrap_or_default()),
                (
                    RegistrationNo,
                    mark.map(|m| m.registration_no.clone()).unwrap_or_default(),
                ),
                (
                    Jurisdiction,
                    mark.map(|m| m.jurisdiction.clone()).unwrap_or_default(),
                ),
                (
                    Classes,
                    mark.map(|m| {
                        m.classes
                            .iter()
                            .map(u8::to_string)
                            .collect::<Vec<_>>()
                            .join(";")
                    })
                    .unwrap_or_default(),
                ),
                (
                    Expires,
                    mark.and_then(|m| m.expires.clone()).unwrap_or_default(),
                ),
                (Reason, n.reason.as_str().to_owned()),
                (ReasonZh, n.reason.label_zh().to_owned()),
                (ReasonEn, n.reason.label_en().to_owned()),
                (ListingUrl, item.url.clone()),
                (ListingId, item.item_id.clone()),
                (Title, item.title.clone()),
                (Seller, item.seller.clone().unwrap_or_default()),
                (
                    Price,
                    item.price.map(|p| format!("{p:.2}")).unwrap_or_default(),
                ),
                (Currency, item.currency.clone()),
                (Verdict, item.verdict.as_str().to_owned()),
                (Score, format!("{:.3}", item.score)),
                (ExplanationZh, explain_zh(&item.reasons)),
                (ExplanationEn, explain_en(&item.reasons)),
                (EvidenceFiles, join(&|e| super::pack_file_name(e))),
                (EvidenceSha256, join(&|e| e.sha256.clone())),
                (CapturedAt, join(&|e| e.fetched_at.clone())),
            ];
            ExportRow {
                notice_id: n.id,
                item_id: item.item_id.clone(),
                values: pairs.into_iter().collect(),
            }
        })
        .collect()
}

/// A notice with the marks it rests on, ready to lay out.
#[derive(Debug, Clone)]
pub struct BatchNotice {
    pub detail: NoticeDetail,
    pub marks: Vec<NoticeMark>,
}

/// Loads the notices of `platform` in `state` (the approved batch, by default), oldest first.
pub(crate) async fn load_batch(
    store: &Store,
    platform: &str,
    state: CaseState,
) -> Result<Vec<BatchNotice>, NoticeError> {
    let filter = NoticeFilter {
        platform: Some(platform.to_owned()),
        states: vec![state],
        ..NoticeFilter::default()
    };
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let page = store
            .list_notices(&filter, NoticeSort::Oldest, offset, crate::store::MAX_PAGE)
            .await?;
        let got = page.notices.len() as u64;
        for n in page.notices {
            if let Some(detail) = store.notice_detail(n.id).await? {
                let marks = store.notice_marks(n.id).await?;
                out.push(BatchNotice { detail, marks });
            }
        }
        offset += got;
        if got == 0 || offset >= page.total {
            break;
        }
    }
    Ok(out)
}

/// How to write an export.
#[derive(Debug, Clone, Copy)]
pub struct ExportOptions<'a> {
    pub format: ExportFormat,
    /// Language of the text format's notices.
    pub lang: Language,
    pub config: &'a NoticesConfig,
    pub templates: &'a Templates,
    /// The date notices are signed on.
    pub today: NaiveDate,
}

/// Writes `batch` for the form of `def`. Refuses (writing nothing) when a field the form
/// requires is empty.
pub(crate) fn export_batch(
    out: &mut dyn Write,
    def: &PlatformDef,
    batch: &[BatchNotice],
    opts: &ExportOptions<'_>,
) -> Result<(), NoticeError> {
    let ExportOptions {
        format,
        lang,
        config,
        templates,
        today,
    } = *opts;
    let columns = &def.complaint.export;
    let mut rows_by_notice = Vec::with_capacity(batch.len());
    for b in batch {
        let rows = export_rows(&b.detail, &b.marks, config);
        for row in &rows {
            for col in columns.iter().filter(|c| c.required) {
                if row.get(col.value).trim().is_empty() {
                    return Err(NoticeError::MissingField {
                        notice_id: row.notice_id,
                        platform: def.platform.clone(),
                        item_id: row.item_id.clone(),
                        column: col.header.clone(),
                    });
                }
            }
        }
        rows_by_notice.push(rows);
    }
    let mut buf = Vec::new();
    match format {
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(&mut buf);
            let mut header = vec![NOTICE_COLUMN.to_owned()];
            header.extend(columns.iter().map(|c| c.header.clone()));
            w.write_record(&header).map_err(write_err)?;
            for row in rows_by_notice.iter().flatten() {
                let mut record = vec![row.notice_id.to_string()];
                record.extend(columns.iter().map(|c| defuse_formula(row.get(c.value))));
                w.write_record(&record).map_err(write_err)?;
            }
            w.flush().map_err(write_err)?;
        }
        ExportFormat::Json => {
            #[derive(Serialize)]
            struct Complaint<'a> {
                notice_id: i64,
                listings: Vec<BTreeMap<&'a str, &'a str>>,
            }
            #[derive(Serialize)]
            struct Doc<'a> {
                platform: &'a str,
                channel: &'a str,
                channel_url: &'a str,
                columns: Vec<&'a str>,
                required: Vec<&'a str>,
                complaints: Vec<Complaint<'a>>,
            }
            let doc = Doc {
                platform: &def.platform,
                channel: &def.complaint.name,
                channel_url: &def.complaint.url,
                columns: columns.iter().map(|c| c.header.as_str()).collect(),
                required: columns
                    .iter()
                    .filter(|c| c.required)
                    .map(|c| c.header.as_str())
                    .collect(),
                complaints: rows_by_notice
                    .iter()
                    .zip(batch)
                    .map(|(rows, b)| Complaint {
                        notice_id: b.detail.notice.id,
                        listings: rows
                            .iter()
                            .map(|r| {
                                columns
                                    .iter()
                                    .map(|c| (c.header.as_str(), r.get(c.value)))
                                    .collect()
                            })
                            .collect(),
                    })
                    .collect(),
            };
            serde_json::to_writer_pretty(&mut buf, &doc).map_err(write_err)?;
            buf.push(b'\n');
        }
        ExportFormat::Txt => {
            for (i, b) in batch.iter().enumerate() {
                if i > 0 {
                    buf.extend_from_slice(b"\n");
                    buf.extend_from_slice("=".repeat(72).as_bytes());
                    buf.extend_from_slice(b"\n\n");
                }
                let ctx = NoticeContext::new(&b.detail, def, config, b.marks.clone(), today);
                let text = templates.render(def, lang, &ctx)?;
                buf.extend_from_slice(text.as_bytes());
                if !text.ends_with('\n') {
                    buf.push(b'\n');
                }
            }
        }
    }
    out.write_all(&buf).map_err(write_err)?;
    Ok(())
}

/// A platform's batch in `state` as one file's bytes: what `queue export` and the web UI's
/// download write. Returns the bytes and the notices in them.
pub async fn export_platform_batch(
    store: &Store,
    def: &PlatformDef,
    state: CaseState,
    opts: &ExportOptions<'_>,
) -> Result<(Vec<u8>, Vec<BatchNotice>), NoticeError> {
    let batch = load_batch(store, &def.platform, state).await?;
    let mut out = Vec::new();
    export_batch(&mut out, def, &batch, opts)?;
    Ok((out, batch))
}

fn write_err(e: impl std::fmt::Display) -> NoticeError {
    NoticeError::Write(e.to_string())
}

/// A spreadsheet runs a cell starting with `=`, `+`, `-`, `@` (or a tab or CR before one) as
/// a formula; a leading apostrophe makes it text (OWASP's advice for CSV injection).
fn defuse_formula(value: &str) -> String {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_defused_others_untouched() {
        assert_eq!(defuse_formula("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(defuse_formula("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(defuse_formula("耐克 <script>"), "耐克 <script>");
        assert_eq!(defuse_formula(""), "");
    }
}
