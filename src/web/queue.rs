//! The review queue, a notice's detail, its actions, and the evidence viewer.
//!
//! Every state change goes through `Store::transition_notice`, the lifecycle's one transition
//! function; nothing here writes a notice itself.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::auth::{CurrentUser, Posted};
use super::form::{csrf_form, feedback, text};
use super::pages::{Flash, page, v};
use super::redirect::{local_path, see_other};
use super::{Platform, WebError, WebState};
use crate::model::Outcome;
use crate::model::{CaseState, TransitionDetails};
use crate::store::{Feedback, TransitionError};
use crate::store::{NoticeFilter, NoticeSort, Role};

/// Rows per queue page.
pub(super) const PAGE_SIZE: u64 = 50;
/// Most notices one bulk action may touch.
const MAX_BULK: usize = 500;

impl From<TransitionError> for WebError {
    fn from(e: TransitionError) -> Self {
        match e {
            TransitionError::NotFound(_) => WebError::NotFound,
            TransitionError::Store(s) => WebError::Store(s),
            e @ TransitionError::Feedback { .. } => WebError::BadRequest(e.to_string()),
            other => WebError::Conflict(other.to_string()),
        }
    }
}

/// The queue's query string, as typed: every field is checked and a bad one is named.
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
#[serde(default)]
pub(super) struct QueueQuery {
    pub platform: Option<String>,
    pub brand: Option<String>,
    pub state: Option<String>,
    pub verdict: Option<String>,
    pub min_score: Option<String>,
    pub max_score: Option<String>,
    pub relisted: Option<String>,
    pub sort: Option<String>,
    pub page: Option<String>,
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl QueueQuery {
    /// The store filter, sort and page this query asks for; `platforms` are the known ones.
    pub(super) fn parse(
        &self,
        platforms: &[Platform],
    ) -> Result<(NoticeFilter, NoticeSort, u64), WebError> {
        let bad = |field: &str, value: &str, want: &str| {
            WebError::BadRequest(format!("filter `{field}`: `{value}` is not {want}"))
        };
        let mut f = NoticeFilter::default();
        if let Some(p) = nonempty(&self.platform) {
            if !platforms.iter().any(|k| k.key == p) {
                let keys: Vec<&str> = platforms.iter().map(|k| k.key.as_str()).collect();
                return Err(bad("platform", p, &one_of(&keys)));
            }
            f.platform = Some(p.to_owned());
        }
        f.brand = nonempty(&self.brand).map(str::to_owned);
        match nonempty(&self.state) {
            None => f.states = vec![CaseState::Draft],
            Some("all") => {}
            Some(s) => f.states = vec![s.parse().map_err(|_| bad("state", s, "a case state"))?],
        }
        f.verdict = match nonempty(&self.verdict) {
            None => None,
            Some("infringing") => Some(Outcome::Infringing),
            Some("suspect") => Some(Outcome::Suspect),
            Some(v) => return Err(bad("verdict", v, "infringing or suspect")),
        };
        let score = |field: &str, v: &Option<String>| -> Result<Option<f64>, WebError> {
            match nonempty(v) {
                None => Ok(None),
                Some(s) => match s.parse::<f64>() {
                    Ok(x) if (0.0..=1.0).contains(&x) => Ok(Some(x)),
                    _ => Err(bad(field, s, "a score between 0 and 1")),
                },
            }
        };
        f.min_score = score("min_score", &self.min_score)?;
        f.max_score = score("max_score", &self.max_score)?;
        f.relisted = match nonempty(&self.relisted) {
            None => None,
            Some("yes") => Some(true),
            Some("no") => Some(false),
            Some(r) => return Err(bad("relisted", r, "yes or no")),
        };
        let sort = match nonempty(&self.sort) {
            None => NoticeSort::default(),
            Some(s) => s.parse().map_err(WebError::BadRequest)?,
        };
        let page = match nonempty(&self.page) {
            None => 1,
            Some(p) => p
                .parse::<u64>()
                .ok()
                .filter(|p| *p >= 1 && *p <= 1_000_000)
                .ok_or_else(|| bad("page", p, "a page number"))?,
        };
        Ok((f, sort, page))
    }

    /// This query as a URL query string, with `page` replaced.
    fn with_page(&self, page: u64) -> String {
        let mut q = self.clone();
        q.page = Some(page.to_string());
        encode_query(&q)
    }
}

/// "a, b or c": what a bad value should have been.
fn one_of(keys: &[&str]) -> String {
    match keys {
        [] => "a platform with a definition".to_owned(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

fn encode_query(q: &QueueQuery) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("platform", &q.platform),
        ("brand", &q.brand),
        ("state", &q.state),
        ("verdict", &q.verdict),
        ("min_score", &q.min_score),
        ("max_score", &q.max_score),
        ("relisted", &q.relisted),
        ("sort", &q.sort),
        ("page", &q.page),
    ] {
        if let Some(v) = nonempty(v) {
            ser.append_pair(k, v);
        }
    }
    ser.finish()
}

pub(super) async fn queue(
    State(state): State<WebState>,
    user: CurrentUser,
    Query(q): Query<QueueQuery>,
    Query(flash): Query<Flash>,
) -> Result<Html<String>, WebError> {
    let (filter, sort, page_no) = q.parse(state.platforms())?;
    let offset = (page_no - 1) * PAGE_SIZE;
    let page_rows = state
        .store()
        .list_notices(&filter, sort, offset, PAGE_SIZE)
        .await?;
    let pages = page_rows.total.div_ceil(PAGE_SIZE).max(1);
    // A capped total (score bounds) is a lower bound: a full page may have a next one.
    let has_next =
        page_no < pages || (page_rows.total_capped && page_rows.notices.len() as u64 == PAGE_SIZE);
    let brands = state.store().brand_names().await?;
    let ids: Vec<i64> = page_rows.notices.iter().map(|n| n.id).collect();
    let thumbnails: std::collections::HashMap<String, i64> = state
        .store()
        .notice_thumbnails(&ids)
        .await?
        .into_iter()
        .map(|(notice, photo)| (notice.to_string(), photo))
        .collect();
    let show_state = nonempty(&q.state).unwrap_or("draft");
    // The good-faith governor: before an approved batch is filed, warn if it could push the
    // account past Alibaba's thresholds.
    let governor = match (&filter.platform, filter.states.as_slice()) {
        (Some(platform), [CaseState::Approved]) if page_rows.total > 0 => {
            let account = state.config().notices.account_for(platform).to_owned();
            let batch = state
                .store()
                .list_notices(&filter, sort, 0, crate::store::MAX_PAGE)
                .await?;
            let ids: Vec<i64> = batch.notices.iter().map(|n| n.id).collect();
            let today = chrono::Utc::now().date_naive();
            Some(crate::case::check_filing(state.store(), platform, &account, &ids, today).await?)
        }
        _ => None,
    };
    state.render(
        "queue.html",
        context! {
            page => v(page(&user, "queue", flash.message())),
            q => v(&q),
            state_shown => show_state,
            notices => v(&page_rows.notices),
            thumbnails => v(thumbnails),
            total => page_rows.total,
            total_capped => page_rows.total_capped,
            page_no,
            pages,
            prev => (page_no > 1).then(|| q.with_page(page_no - 1)),
            next => has_next.then(|| q.with_page(page_no + 1)),
            back => encode_query(&q),
            platforms => v(state.platforms()),
            states => v(CaseState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
            brands => v(brands),
            governor => v(governor),
        },
    )
}

/// One failed item of a bulk action.
#[derive(Serialize)]
struct BulkFailure {
    id: i64,
    error: String,
}

/// The queue's bulk form: the selected notices (`id`, repeated) and what to do with them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct BulkForm {
    csrf: String,
    action: String,
    id: Vec<i64>,
    note: Option<String>,
    /// Why the selected drafts are not infringing (rejecting only).
    why: Option<String>,
    /// The queue's query string, to return to.
    back: String,
}

/// One notice's action buttons.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct TransitionForm {
    csrf: String,
    to: String,
    note: Option<String>,
    complaint_ref: Option<String>,
    account: Option<String>,
    /// A reviewer's rejection: why it is not infringing, and shops or title words to allow.
    why: Option<String>,
    allow_seller: Vec<String>,
    allow_title: Option<String>,
}

csrf_form!(BulkForm, TransitionForm);

/// Bulk approve or reject of the selected notices, with one note for all.
pub(super) async fn bulk(
    State(state): State<WebState>,
    posted: Posted<BulkForm>,
) -> Result<Response, WebError> {
    posted.user.require(Role::Reviewer)?;
    let form = &posted.form;
    let to = match form.action.as_str() {
        "approve" => CaseState::Approved,
        "reject" => CaseState::Rejected,
        other => {
            return Err(WebError::BadRequest(format!(
                "bulk action `{other}` is not approve or reject"
            )));
        }
    };
    let ids = form.id.clone();
    // The queue's query string to return to, if it makes a path on this site.
    let queue = format!("/queue?{}", form.back);
    let back = local_path(&queue).map_or("", |q| &q["/queue?".len()..]);
    if ids.is_empty() {
        return Ok(see_other(&format!("/queue?{back}&done=none"), "/queue"));
    }
    if ids.len() > MAX_BULK {
        return Err(WebError::BadRequest(format!(
            "at most {MAX_BULK} notices at once"
        )));
    }
    let details = TransitionDetails {
        note: text(&form.note),
        ..TransitionDetails::default()
    };
    let feedback = feedback(&form.why, &[], &None)?;
    if to != CaseState::Rejected && feedback.reason.is_some() {
        return Err(WebError::BadRequest(
            "field `why`: a reason is for rejecting, not approving".to_owned(),
        ));
    }
    let actor = posted.user.actor();
    let mut done = 0;
    let mut failures = Vec::new();
    let store = state.store();
    for id in ids {
        let result = if to == CaseState::Rejected {
            let rejected = store.reject_notice(id, &actor, &details, &feedback);
            rejected.await.map(|_| ())
        } else {
            let moved = store.transition_notice(id, to, &actor, &details);
            moved.await.map(|_| ())
        };
        match result {
            Ok(()) => done += 1,
            Err(TransitionError::Store(e)) => return Err(e.into()),
            Err(e) => failures.push(BulkFailure {
                id,
                error: e.to_string(),
            }),
        }
    }
    let verb = if to == CaseState::Approved {
        "approved"
    } else {
        "rejected"
    };
    if failures.is_empty() {
        return Ok(see_other(
            &format!("/queue?{back}&done={verb}&n={done}"),
            "/queue",
        ));
    }
    let html = state.render(
        "bulk_result.html",
        context! {
            page => v(page(&posted.user, "queue", None)),
            verb,
            done,
            failures => v(failures),
            back,
        },
    )?;
    Ok((StatusCode::CONFLICT, html).into_response())
}

/// The actions a reviewer can take from a state, as buttons on the detail page.
#[derive(Serialize)]
struct Action {
    to: &'static str,
    label: &'static str,
    /// Filing asks for the platform's complaint reference and account.
    needs_ref: bool,
    shortcut: Option<&'static str>,
    danger: bool,
    /// A reviewer's rejection: offers a reason and allow rules.
    feedback: bool,
}

fn actions_from(state: CaseState) -> Vec<Action> {
    state
        .next_states()
        .iter()
        .map(|to| {
            let (label, shortcut, danger) = match (state, to) {
                (_, CaseState::Approved) => ("Approve", Some("approve"), false),
                (CaseState::Draft | CaseState::Approved, CaseState::Rejected) => {
                    ("Reject", Some("reject"), true)
                }
                (_, CaseState::Rejected) => ("Platform rejected it", None, true),
                (_, CaseState::Draft) => ("Back to draft", None, false),
                (_, CaseState::Filed) => ("Mark filed", None, false),
                (_, CaseState::Removed) => ("Listings removed", None, false),
                (_, CaseState::CounterNoticed) => ("Counter-notice received", None, true),
                (_, CaseState::Closed) => ("Close the case", None, false),
            };
            Action {
                to: to.as_str(),
                label,
                needs_ref: *to == CaseState::Filed,
                shortcut,
                danger,
                feedback: *to == CaseState::Rejected
                    && matches!(state, CaseState::Draft | CaseState::Approved),
            }
        })
        .collect()
}

#[derive(Serialize)]
struct ReasonView {
    code: &'static str,
    words: &'static str,
    detail: String,
}

pub(super) async fn notice(
    State(state): State<WebState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(flash): Query<Flash>,
) -> Result<Html<String>, WebError> {
    let detail = state
        .store()
        .notice_detail(id)
        .await?
        .ok_or(WebError::NotFound)?;
    let reasons: Vec<Vec<ReasonView>> = detail
        .items
        .iter()
        .map(|item| {
            item.reasons
                .iter()
                .map(|r| ReasonView {
                    code: r.code.as_str(),
                    words: r.code.explanation(),
                    detail: r.detail.clone(),
                })
                .collect()
        })
        .collect();
    let refs = state.store().reference_photos(&detail.notice.brand).await?;
    let mut photos = Vec::with_capacity(detail.items.len());
    for item in &detail.items {
        photos.push(photo_view(&state, item.listing_id, &refs).await?);
    }
    // Per listing, the screenshot of its item page (else of any page it was captured on).
    let records: Vec<i64> = detail
        .items
        .iter()
        .flat_map(|i| i.evidence.iter().map(|e| e.id))
        .collect();
    let taken = state.store().screenshots_of(&records).await?;
    let shots: Vec<Option<(i64, i64)>> = detail
        .items
        .iter()
        .map(|item| {
            let mut pages: Vec<_> = item.evidence.iter().collect();
            pages.sort_by_key(|e| e.role != crate::store::EvidenceRole::ItemPage);
            pages
                .iter()
                .find_map(|e| taken.iter().find(|(id, _)| *id == e.id).copied())
        })
        .collect();
    let actions = actions_from(detail.notice.state);
    // The shops a rejection may allow, each once.
    let mut sellers: Vec<&str> = Vec::new();
    for item in &detail.items {
        if let Some(s) = item.seller.as_deref().map(str::trim)
            && !s.is_empty()
            && !sellers.contains(&s)
        {
            sellers.push(s);
        }
    }
    state.render(
        "notice.html",
        context! {
            page => v(page(&user, "queue", flash.message())),
            n => v(&detail.notice),
            d => v(&detail),
            reasons => v(reasons),
            photos => v(photos),
            shots => v(shots),
            actions => v(actions),
            sellers => v(sellers),
            today => chrono::Utc::now().date_naive().to_string(),
        },
    )
}

/// One action on one notice: approve, reject, file (with the reference), record the outcome.
pub(super) async fn transition(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    posted: Posted<TransitionForm>,
) -> Result<Response, WebError> {
    posted.user.require(Role::Reviewer)?;
    let form = &posted.form;
    let to: CaseState = form
        .to
        .parse()
        .map_err(|e: crate::model::UnknownState| WebError::BadRequest(e.to_string()))?;
    let details = TransitionDetails {
        note: text(&form.note),
        complaint_ref: text(&form.complaint_ref),
        account: text(&form.account),
    };
    let feedback = feedback(&form.why, &form.allow_seller, &form.allow_title)?;
    let actor = posted.user.actor();
    if to == CaseState::Rejected {
        let rejection = state
            .store()
            .reject_notice(id, &actor, &details, &feedback)
            .await?;
        let done = match rejection.added.len() {
            0 => "rejected&n=1".to_owned(),
            n => format!("rejected_allowed&n={n}"),
        };
        return Ok(Redirect::to(&format!("/notices/{id}?done={done}")).into_response());
    }
    if feedback != Feedback::default() {
        return Err(WebError::BadRequest(
            "fields `why`, `allow_seller` and `allow_title` are for rejecting".to_owned(),
        ));
    }
    state
        .store()
        .transition_notice(id, to, &actor, &details)
        .await?;
    let done = match to {
        CaseState::Approved => "approved&n=1",
        CaseState::Filed => "filed",
        _ => "resolved",
    };
    Ok(Redirect::to(&format!("/notices/{id}?done={done}")).into_response())
}

/// The evidence viewer: the page's record and hash, the captured page in a sandboxed frame,
/// and its text with all markup removed.
pub(super) async fn evidence(
    State(state): State<WebState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Html<String>, WebError> {
    let stored = state
        .store()
        .evidence_page(id)
        .await?
        .ok_or(WebError::NotFound)?;
    let body = crate::seal::open_record(id, &stored.sealed_body)?;
    let html = decode_evidence(&body, stored.content_type());
    let text = visible_text(&html);
    let parts: Vec<_> = state
        .store()
        .evidence_parts(id)
        .await?
        .into_iter()
        .map(|p| {
            let image = p.kind == "screenshot" && p.content_type == "image/png";
            context! {
                seq => p.seq,
                kind => p.kind,
                url => p.url,
                content_type => p.content_type,
                fetched_at => p.fetched_at,
                bytes => p.body_len,
                sha256 => p.body_sha256,
                image,
            }
        })
        .collect();
    state.render(
        "evidence.html",
        context! {
            page => v(page(&user, "queue", None)),
            e => context! {
                id => stored.id,
                url => stored.url,
                fetched_at => stored.fetched_at,
                status => stored.status,
                body_len => stored.body_len,
                sha256 => stored.body_sha256,
                chain_hash => stored.chain_hash,
                prev_hash => stored.prev_hash,
            },
            text,
            parts,
        },
    )
}

/// One part of an evidence row. A PNG screenshot is served as `image/png`; anything else
/// (JSON, JSONP, HTML from the platform: hostile) as plain text that is never sniffed,
/// rendered or scripted.
pub(super) async fn evidence_part(
    State(state): State<WebState>,
    _user: CurrentUser,
    Path((id, seq)): Path<(i64, i64)>,
) -> Result<Response, WebError> {
    let part = state
        .store()
        .evidence_parts(id)
        .await?
        .into_iter()
        .find(|p| p.seq == seq)
        .ok_or(WebError::NotFound)?;
    let body = crate::seal::open_record(id, &part.sealed_body)?;
    let png = part.kind == "screenshot" && body.starts_with(b"\x89PNG\r\n\x1a\n");
    let ctype = if png {
        "image/png"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut resp = captured(ctype, body);
    if !png {
        resp.headers_mut().insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment"),
        );
    }
    Ok(resp)
}

/// Bytes a platform sent (or markwatch captured), served as `ctype` and nothing else: never
/// sniffed, never run, nothing loaded beside them.
fn captured(ctype: &'static str, bytes: Vec<u8>) -> Response {
    let mut resp = ([(header::CONTENT_TYPE, ctype)], bytes).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    resp
}

/// A listing's photo, from its evidence: never hot-linked to the platform.
pub(super) async fn listing_photo(
    State(state): State<WebState>,
    _user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let (ctype, bytes) = state
        .store()
        .listing_photo_bytes(id)
        .await?
        .ok_or(WebError::NotFound)?;
    Ok(image_response(ctype, bytes))
}

/// A brand's reference image.
pub(super) async fn reference_photo(
    State(state): State<WebState>,
    _user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let (ctype, bytes) = state
        .store()
        .reference_photo_bytes(id)
        .await?
        .ok_or(WebError::NotFound)?;
    Ok(image_response(ctype, bytes))
}

/// An image checked at capture or import, served as its own type and nothing else.
fn image_response(ctype: &'static str, bytes: Vec<u8>) -> Response {
    let mut resp = captured(ctype, bytes);
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    resp
}

/// A listing's main photo and, when one of the brand's reference images is near, that image
/// and the distance: the side-by-side comparison complaints attach.
#[derive(Debug, Serialize)]
struct PhotoView {
    photo: i64,
    reference: Option<i64>,
    reference_path: Option<String>,
    reference_kind: Option<String>,
    distance: Option<u32>,
}

async fn photo_view(
    state: &WebState,
    listing_id: i64,
    refs: &[crate::store::RefPhoto],
) -> Result<Option<PhotoView>, WebError> {
    let photos = state.store().listing_photos(listing_id).await?;
    let Some(main) = photos.first() else {
        return Ok(None);
    };
    Ok(Some(match crate::images::closest_pair(&photos, refs) {
        Some((d, photo, r)) => PhotoView {
            photo,
            reference: Some(r.id),
            reference_path: Some(r.path.clone()),
            reference_kind: Some(r.kind.clone()),
            distance: Some(d),
        },
        None => PhotoView {
            photo: main.id,
            reference: None,
            reference_path: None,
            reference_kind: None,
            distance: None,
        },
    }))
}

/// The captured page itself, for the sandboxed frame only: a unique opaque origin (CSP
/// `sandbox` without `allow-scripts` or `allow-same-origin`), no scripts, nothing loaded from
/// anywhere, frameable only by this site.
pub(super) async fn evidence_raw(
    State(state): State<WebState>,
    _user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let stored = state
        .store()
        .evidence_page(id)
        .await?
        .ok_or(WebError::NotFound)?;
    let body = crate::seal::open_record(id, &stored.sealed_body)?;
    let html = decode_evidence(&body, stored.content_type());
    let mut resp = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'",
        ),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    h.insert(
        axum::http::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    Ok(resp)
}

/// The stored bytes as text: the charset from the stored headers, else the page's `<meta>`,
/// else GB18030 (what Taobao and Tmall pages without a label are).
fn decode_evidence(body: &[u8], content_type: Option<&str>) -> String {
    crate::extract::decode_page(body, content_type, "gb18030").text
}

/// The text a person would read on the page: no tags, no scripts or styles.
pub(super) fn visible_text(html: &str) -> String {
    use scraper::{Html, Node};
    let doc = Html::parse_document(html);
    let mut out = String::new();
    for node in doc.tree.root().descendants() {
        if let Node::Text(t) = node.value() {
            let hidden = node.ancestors().any(|a| {
                a.value().as_element().is_some_and(|e| {
                    matches!(
                        e.name(),
                        "script" | "style" | "noscript" | "template" | "head"
                    )
                })
            });
            let t = t.trim();
            if !hidden && !t.is_empty() {
                out.push_str(t);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platforms(keys: &[&str]) -> Vec<Platform> {
        keys.iter()
            .map(|k| Platform {
                key: (*k).to_owned(),
                name: k.to_uppercase(),
            })
            .collect()
    }

    #[test]
    fn bad_filters_are_named() {
        let known = platforms(&["jd", "taobao"]);
        let q = QueueQuery {
            min_score: Some("2".into()),
            ..QueueQuery::default()
        };
        assert!(
            q.parse(&known)
                .unwrap_err()
                .to_string()
                .contains("min_score")
        );
        let q = QueueQuery {
            platform: Some("ebay".into()),
            ..QueueQuery::default()
        };
        let err = q.parse(&known).unwrap_err().to_string();
        assert!(
            err.contains("platform") && err.contains("jd or taobao"),
            "{err}"
        );
        let (f, _, page) = QueueQuery::default().parse(&known).unwrap();
        assert_eq!(f.states, vec![CaseState::Draft]);
        assert_eq!(page, 1);
    }

    #[test]
    fn any_defined_platform_is_a_filter() {
        let known = platforms(&["jd", "pinduoduo"]);
        let q = QueueQuery {
            platform: Some("pinduoduo".into()),
            ..QueueQuery::default()
        };
        let (f, _, _) = q.parse(&known).unwrap();
        assert_eq!(f.platform.as_deref(), Some("pinduoduo"));
        assert_eq!(one_of(&["a", "b", "c"]), "a, b or c");
    }

    #[test]
    fn text_view_drops_scripts_and_markup() {
        let text = visible_text(
            "<html><head><title>t</title><script>alert(1)</script></head><body><p>耐克 <b>高仿</b></p><style>p{}</style><img src=x onerror=alert(2)></body></html>",
        );
        assert_eq!(text, "耐克\n高仿\n");
    }

    #[test]
    fn every_state_offers_only_its_lifecycle_steps() {
        for s in CaseState::ALL {
            let acts = actions_from(s);
            assert_eq!(acts.len(), s.next_states().len());
        }
        let filed = actions_from(CaseState::Approved);
        assert!(filed.iter().any(|a| a.needs_ref && a.to == "filed"));
    }
}
