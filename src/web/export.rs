//! Export downloads: a platform's approved batch laid out in its complaint form's format,
//! the same bytes `markwatch queue export` writes.

use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::CurrentUser;
use super::{WebError, WebState};
use crate::model::CaseState;
use crate::notice::{ExportFormat, ExportOptions, Language, Templates, export_platform_batch};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ExportQuery {
    platform: Option<String>,
    format: Option<String>,
    lang: Option<String>,
    /// Approved by default: the batch waiting to be filed.
    state: Option<String>,
}

pub(super) async fn export(
    State(state): State<WebState>,
    user: CurrentUser,
    Query(q): Query<ExportQuery>,
) -> Result<Response, WebError> {
    let platform = q
        .platform
        .as_deref()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| WebError::BadRequest("choose a platform to export".to_owned()))?;
    let format: ExportFormat = q
        .format
        .as_deref()
        .unwrap_or("csv")
        .parse()
        .map_err(WebError::BadRequest)?;
    let lang: Language = q
        .lang
        .as_deref()
        .unwrap_or("zh")
        .parse()
        .map_err(WebError::BadRequest)?;
    let case_state: CaseState = q
        .state
        .as_deref()
        .unwrap_or("approved")
        .parse()
        .map_err(|e: crate::model::UnknownState| WebError::BadRequest(e.to_string()))?;
    let config = state.config();
    // Read at each export, like the CLI: edited definitions and templates apply at once.
    let defs = crate::platform::load_dir(&config.crawl.definitions)
        .map_err(|e| WebError::BadRequest(format!("platform definitions: {e}")))?;
    let def = defs
        .iter()
        .find(|d| d.platform == platform)
        .ok_or_else(|| WebError::BadRequest(format!("no platform named `{platform}`")))?;
    let templates = Templates::load(config.notices.templates.as_deref())
        .map_err(|e| WebError::BadRequest(format!("notice templates: {e}")))?;
    let today = chrono::Utc::now().date_naive();
    let opts = ExportOptions {
        format,
        lang,
        config: &config.notices,
        templates: &templates,
        today,
    };
    let (bytes, batch) = export_platform_batch(state.store(), def, case_state, &opts)
        .await
        .map_err(|e| WebError::Conflict(e.to_string()))?;
    tracing::info!(user = %user.user.name, platform, notices = batch.len(), "export downloaded");
    let ext = match format {
        ExportFormat::Csv => "csv",
        ExportFormat::Json => "json",
        ExportFormat::Txt => "txt",
    };
    // Only known-safe characters go into the header: the platform was matched above.
    let filename = format!("{platform}-{}-{today}.{ext}", case_state.as_str());
    let mut resp = ([(header::CONTENT_TYPE, format.content_type())], bytes).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
