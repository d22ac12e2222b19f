//! The fixture platforms: an axum server that renders Taobao, Tmall, JD and Amazon.cn pages
//! at request time from `fixtures/listings.jsonl` and the page templates in
//! `fixtures/platforms/<platform>/`, and injects the failures real platforms produce.
//!
//! Architecture: [`FixtureOptions`] says what to serve and which faults to inject;
//! [`FixtureServer`] holds the rendered catalogue, templates, fault scripts and the
//! [`RequestLog`]; [`FixtureServer::router`] is the axum app and [`serve`] runs it on a bound
//! listener. URL layout: each platform under its own prefix, with the real site's paths below
//! it (`/jd/Search?keyword=..&page=3`, `/jd/100012345.html`); see [`FixtureServer::search_path`].

mod catalogue;
mod faults;
mod modern;
mod photos;
mod render;
mod zone;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::Environment;
use serde::Serialize;

pub(crate) use catalogue::{CatalogueListing, load_catalogue, scale_catalogue};
pub use faults::{Fault, parse_faults};
pub use zone::{FixtureDns, FixtureZone, ZoneEntry, serve_zone};

/// Draws the reference images the demo registry names into `dir`.
pub fn write_fixture_images(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    photos::write_references(dir)
}
pub use modern::{FixtureMode, MTOP_APP_KEY, MTOP_SEARCH_API, ModernOptions, mtop_sign};

use modern::{Gate, Modern, ReqInfo};

use render::{Charset, ItemPath, PageParam, SITES, SearchRender, Site};

/// Why the fixture server could not start.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: bad catalogue line: {message}")]
    Catalogue {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: bad template: {message}")]
    Template { path: PathBuf, message: String },
    #[error("unknown fixture platform `{0}` (taobao, tmall, jd, amazon_cn)")]
    UnknownPlatform(String),
    #[error("{path}: bad accounts file: {message}")]
    Accounts { path: PathBuf, message: String },
    #[error("rendering failed: {0}")]
    Render(String),
}

/// What to serve and which faults to inject. Every field maps to a `fixtures serve` flag.
#[derive(Debug, Clone)]
pub struct FixtureOptions {
    /// Holds `listings.jsonl` and `platforms/<platform>/*.html` (`--fixtures-dir`).
    pub fixtures_dir: PathBuf,
    /// Another catalogue instead of `<fixtures_dir>/listings.jsonl` (`--catalogue`).
    pub catalogue: Option<PathBuf>,
    /// Serve the catalogue N times over with derived items (`--scale N`, 1 = as is).
    pub scale: u32,
    /// Seed for scale mode and rate-drawn faults (`--seed`).
    pub seed: u64,
    /// Fraction of page requests that get a fault drawn from `fault_pool` (`--fault-rate 0.3`).
    pub fault_rate: f64,
    /// Faults `fault_rate` draws from (`--fault-kinds 429,500,...`; default [`Fault::default_pool`]).
    pub fault_pool: Vec<Fault>,
    /// Scripted faults applied to page requests in arrival order, then normal responses
    /// (`--faults 429,500,ok,slow`).
    pub faults: Vec<Fault>,
    /// Honour `?fault=429` (any fault name) on page URLs (`--query-faults`).
    pub query_faults: bool,
    /// Keep each search page's bytes after its first fault-free render (`--cache-pages`), so a
    /// benchmark measures the crawler rather than the templates sharing its cores.
    pub cache_pages: bool,
    /// Classic (anonymous static pages) or modern (logins, scripts, challenges). The library
    /// default is classic; `fixtures serve` defaults to modern (`--classic` for classic).
    pub mode: FixtureMode,
    /// Modern mode's sessions, rates and challenges.
    pub modern: ModernOptions,
}

impl Default for FixtureOptions {
    fn default() -> Self {
        FixtureOptions {
            fixtures_dir: PathBuf::from("fixtures"),
            catalogue: None,
            scale: 1,
            seed: 0,
            fault_rate: 0.0,
            fault_pool: Fault::default_pool(),
            faults: Vec::new(),
            query_faults: false,
            cache_pages: false,
            mode: FixtureMode::Classic,
            modern: ModernOptions::default(),
        }
    }
}

impl FixtureOptions {
    /// Options reading this source tree's `fixtures/` (tests, benches, the demo).
    pub fn from_source_tree() -> Self {
        FixtureOptions {
            fixtures_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"),
            ..FixtureOptions::default()
        }
    }
}

/// One request the server answered.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    /// Path and query as requested.
    pub path: String,
    pub status: u16,
    /// The injected fault, if any.
    pub fault: Option<String>,
    /// Milliseconds since the server started.
    pub at_ms: u64,
    /// Requests being answered when this one arrived, this one included: how many a client
    /// had in flight at once.
    pub in_flight: u32,
}

/// Every request the server answered, for tests to assert on (pacing, Retry-After).
#[derive(Debug, Clone, Default)]
pub struct RequestLog {
    entries: Arc<Mutex<Vec<LoggedRequest>>>,
}

impl RequestLog {
    fn push(&self, entry: LoggedRequest) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(entry);
    }

    /// All requests so far, in arrival order.
    pub fn entries(&self) -> Vec<LoggedRequest> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Requests whose path and query start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|e| e.path.starts_with(prefix))
            .count()
    }

    /// Request counts per path and query.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for e in self.entries() {
            *out.entry(e.path).or_insert(0) += 1;
        }
        out
    }

    /// The most requests whose path and query start with `prefix` that were in flight at once.
    pub fn max_in_flight(&self, prefix: &str) -> u32 {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|e| e.path.starts_with(prefix))
            .map(|e| e.in_flight)
            .max()
            .unwrap_or(0)
    }

    /// Total number of requests.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One platform's share of the (scaled) catalogue.
struct SiteData {
    site: &'static Site,
    listings: Vec<CatalogueListing>,
    by_keyword: HashMap<String, Vec<usize>>,
    by_id: HashMap<String, usize>,
    keywords: Vec<String>,
    /// Image paths (as the CDN URLs have them, size suffix cut) to (listing, place in gallery).
    photos: HashMap<String, (usize, u32)>,
}

struct Inner {
    env: Environment<'static>,
    sites: Vec<SiteData>,
    options: FixtureOptions,
    started: Instant,
    log: RequestLog,
    /// Requests being answered now.
    in_flight: AtomicU32,
    /// Scripted faults per path-and-query (or path), consumed in order.
    path_scripts: Mutex<HashMap<String, VecDeque<Fault>>>,
    /// The global scripted sequence, consumed in order.
    script: Mutex<VecDeque<Fault>>,
    /// Requests seen per path-and-query, for deterministic rate draws.
    seen: Mutex<HashMap<String, u64>>,
    /// Rendered search pages by path-and-query, when `cache_pages` is on.
    page_cache: Mutex<HashMap<String, Bytes>>,
    /// Photos as served, by key and size: drawing and encoding one costs far more than a
    /// page, and the catalogue's few hundred photos are a few megabytes.
    photo_cache: Mutex<HashMap<(String, u32), Bytes>>,
    /// Modern mode's state; `None` in classic mode.
    modern: Option<Modern>,
    /// The squatted domains' zone and sites (`fixtures/domains/`).
    zone: zone::FixtureZone,
}

/// The fixture platforms, ready to route.
#[derive(Clone)]
pub struct FixtureServer {
    inner: Arc<Inner>,
}

impl FixtureServer {
    /// Loads the catalogue and templates named by `options`.
    pub fn new(options: FixtureOptions) -> Result<Self, FixtureError> {
        let catalogue_path = options
            .catalogue
            .clone()
            .unwrap_or_else(|| options.fixtures_dir.join("listings.jsonl"));
        let base = load_catalogue(&catalogue_path)?;
        let all = scale_catalogue(&base, options.scale, options.seed);
        let mut env = render::environment(&options.fixtures_dir.join("platforms"))?;
        let modern = match options.mode {
            FixtureMode::Classic => None,
            FixtureMode::Modern => {
                modern::add_templates(&mut env, &options.fixtures_dir.join("platforms"))?;
                Some(Modern::new(options.modern.clone(), &options.fixtures_dir)?)
            }
        };
        let sites = SITES
            .iter()
            .map(|site| {
                let listings: Vec<CatalogueListing> = all
                    .iter()
                    .filter(|l| l.platform == site.key)
                    .cloned()
                    .collect();
                let mut by_keyword: HashMap<String, Vec<usize>> = HashMap::new();
                let mut by_id = HashMap::new();
                for (i, l) in listings.iter().enumerate() {
                    by_id.insert(l.item_id.clone(), i);
                    for k in &l.keywords {
                        by_keyword.entry(k.to_lowercase()).or_default().push(i);
                    }
                }
                let mut keywords: Vec<String> = by_keyword.keys().cloned().collect();
                keywords.sort();
                let mut photos = HashMap::new();
                for (i, l) in listings.iter().enumerate() {
                    for (n, url) in render::image_urls(l).iter().enumerate() {
                        if let Ok(u) = url::Url::parse(url) {
                            photos.insert(photo_key(u.path()).0, (i, n as u32));
                        }
                    }
                }
                SiteData {
                    site,
                    listings,
                    by_keyword,
                    by_id,
                    keywords,
                    photos,
                }
            })
            .collect();
        let options_dir = options.fixtures_dir.clone();
        Ok(FixtureServer {
            inner: Arc::new(Inner {
                env,
                sites,
                script: Mutex::new(options.faults.iter().copied().collect()),
                options,
                started: Instant::now(),
                log: RequestLog::default(),
                in_flight: AtomicU32::new(0),
                path_scripts: Mutex::new(HashMap::new()),
                seen: Mutex::new(HashMap::new()),
                page_cache: Mutex::new(HashMap::new()),
                photo_cache: Mutex::new(HashMap::new()),
                modern,
                zone: zone::FixtureZone::load(&options_dir)?,
            }),
        })
    }

    /// The fixture zone: serve it with [`serve_zone`]; its sites are answered here by Host.
    pub fn zone(&self) -> FixtureZone {
        self.inner.zone.clone()
    }

    /// The axum app serving every platform.
    pub(crate) fn router(&self) -> Router {
        Router::new()
            .fallback(handle)
            .with_state(self.inner.clone())
    }

    /// The request log (shared with the running server).
    pub fn log(&self) -> RequestLog {
        self.inner.log.clone()
    }

    /// Scripts faults for the next requests to `path` (a path with or without its query, e.g.
    /// `/jd/Search?keyword=nike&enc=utf-8&page=1`); after the script, normal responses.
    pub fn script(&self, path: &str, faults: impl IntoIterator<Item = Fault>) {
        self.inner
            .path_scripts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(path.to_string())
            .or_default()
            .extend(faults);
    }

    /// The listings a platform serves (after scaling), in search order.
    pub fn listings(&self, platform: &str) -> Result<&[CatalogueListing], FixtureError> {
        Ok(&self.site_data(platform)?.listings)
    }

    /// The keywords a platform has results for, sorted.
    pub fn keywords(&self, platform: &str) -> Result<&[String], FixtureError> {
        Ok(&self.site_data(platform)?.keywords)
    }

    /// The listings a keyword search returns on a platform, in page order.
    pub fn search_results(
        &self,
        platform: &str,
        keyword: &str,
    ) -> Result<Vec<&CatalogueListing>, FixtureError> {
        let data = self.site_data(platform)?;
        Ok(data
            .by_keyword
            .get(&keyword.trim().to_lowercase())
            .map(|ix| ix.iter().map(|&i| &data.listings[i]).collect())
            .unwrap_or_default())
    }

    /// Path and query of a search page (1-based `page`), as the real site numbers it.
    pub fn search_path(platform: &str, keyword: &str, page: u32) -> Result<String, FixtureError> {
        let site =
            render::site(platform).ok_or_else(|| FixtureError::UnknownPlatform(platform.into()))?;
        let kw: String = url::form_urlencoded::byte_serialize(keyword.as_bytes()).collect();
        let n = page.max(1) as usize;
        let p = match site.page_param {
            PageParam::Offset(p) => format!("{p}={}", (n - 1) * site.page_size),
            PageParam::Odd(p) => format!("{p}={}", 2 * n - 1),
            PageParam::Number(p) => format!("{p}={n}"),
        };
        Ok(format!(
            "/{platform}{}?{}={kw}&{p}",
            site.search_path, site.keyword_param
        ))
    }

    /// Path of an item page.
    pub fn item_path(platform: &str, item_id: &str) -> Result<String, FixtureError> {
        let site =
            render::site(platform).ok_or_else(|| FixtureError::UnknownPlatform(platform.into()))?;
        Ok(match site.item {
            ItemPath::Query(path, param) => format!("/{platform}{path}?{param}={item_id}"),
            ItemPath::Html => format!("/{platform}/{item_id}.html"),
            ItemPath::Prefix(p) => format!("/{platform}{p}{item_id}"),
        })
    }

    /// A search page's bytes as served without faults (in-process; for benchmarks).
    pub fn render_search_page(
        &self,
        platform: &str,
        keyword: &str,
        page: u32,
    ) -> Result<Vec<u8>, FixtureError> {
        let data = self.site_data(platform)?;
        let text =
            self.inner
                .search_text(data, keyword, page.max(1) as usize, normal(data.site))?;
        Ok(render::encode(&text, data.site.gbk))
    }

    fn site_data(&self, platform: &str) -> Result<&SiteData, FixtureError> {
        self.inner.site(platform)
    }
}

/// Serves the fixture platforms on an already bound listener until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    server: FixtureServer,
) -> std::io::Result<()> {
    // The peer address keys Amazon.cn's burst detection in modern mode.
    axum::serve(
        listener,
        server
            .router()
            .into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await
}

fn normal(site: &Site) -> Charset {
    Charset {
        meta: Some(if site.gbk { "gbk" } else { "utf-8" }),
    }
}

fn content_type(gbk: bool) -> &'static str {
    if gbk {
        "text/html; charset=GBK"
    } else {
        "text/html; charset=utf-8"
    }
}

impl Inner {
    fn site(&self, platform: &str) -> Result<&SiteData, FixtureError> {
        self.sites
            .iter()
            .find(|s| s.site.key == platform)
            .ok_or_else(|| FixtureError::UnknownPlatform(platform.to_string()))
    }

    fn search_text(
        &self,
        data: &SiteData,
        keyword: &str,
        page: usize,
        charset: Charset,
    ) -> Result<String, FixtureError> {
        let matches: Vec<&CatalogueListing> = data
            .by_keyword
            .get(&keyword.trim().to_lowercase())
            .map(|ix| ix.iter().map(|&i| &data.listings[i]).collect())
            .unwrap_or_default();
        render::render_search(
            &self.env,
            &SearchRender {
                site: data.site,
                prefix: &format!("/{}", data.site.key),
                keyword,
                page,
                matches: &matches,
                related: &data.keywords,
                charset,
            },
        )
        .map_err(|e| FixtureError::Render(format!("{e:#}")))
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The fault for this page request: `?fault=`, then the path's script, then the global
    /// script, then a draw by rate.
    fn choose_fault(
        &self,
        path_only: &str,
        full: &str,
        query: &[(String, String)],
    ) -> Result<Fault, String> {
        if self.options.query_faults
            && let Some((_, f)) = query.iter().find(|(k, _)| k == "fault")
        {
            return f.parse::<Fault>().map_err(|e| e.to_string());
        }
        {
            let mut scripts = self.path_scripts.lock().unwrap_or_else(|e| e.into_inner());
            for key in [full, path_only] {
                if let Some(f) = scripts.get_mut(key).and_then(VecDeque::pop_front) {
                    return Ok(f);
                }
            }
        }
        if let Some(f) = self
            .script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
        {
            return Ok(f);
        }
        let nth = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            let n = seen.entry(full.to_string()).or_insert(0);
            *n += 1;
            *n - 1
        };
        Ok(faults::draw(
            self.options.seed,
            self.options.fault_rate,
            &self.options.fault_pool,
            full,
            nth,
        ))
    }
}

/// What a page request resolved to.
enum Page<'a> {
    Search { keyword: String, page: usize },
    Item(&'a CatalogueListing),
}

fn html_response(status: StatusCode, ctype: &str, body: impl Into<Body>) -> Response {
    let mut resp = (status, body.into()).into_response();
    if let Ok(v) = HeaderValue::from_str(ctype) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

fn simple_page(status: StatusCode, title: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body><h1>{title}</h1></body></html>"
    );
    html_response(status, "text/html; charset=utf-8", body.into_bytes())
}

fn redirect(location: &str) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request<Body>) -> Response {
    let path = req.uri().path().to_string();
    let full = req
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |pq| pq.as_str().to_string());
    let post = req.method() == Method::POST && inner.modern.is_some();
    if req.method() != Method::GET && req.method() != Method::HEAD && !post {
        return simple_page(StatusCode::METHOD_NOT_ALLOWED, "405 Method Not Allowed");
    }
    if path == "/_fixture/requests" {
        return axum::Json(inner.log.entries()).into_response();
    }
    // A squatted domain's site, by the name the client asked for.
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(site) = host.as_deref().and_then(|h| inner.zone.site(h)) {
        let resp = match &site.redirect {
            Some(to) => redirect(to),
            None => html_response(
                StatusCode::OK,
                if site.gbk {
                    "text/html; charset=gbk"
                } else {
                    "text/html; charset=utf-8"
                },
                site.body,
            ),
        };
        inner.log.push(LoggedRequest {
            path: format!("//{}{full}", host.unwrap_or_default()),
            status: resp.status().as_u16(),
            fault: None,
            at_ms: inner.elapsed_ms(),
            in_flight: inner.in_flight.load(Ordering::Relaxed),
        });
        return resp;
    }
    let answering = Answering::start(&inner.in_flight);
    // Header reads end before the body is awaited: the request is not Sync.
    let (cookies, referer, user_agent, peer) = {
        let text_header = |name: header::HeaderName| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or_else(String::new, |c| c.0.ip().to_string());
        let cookies = ReqInfo::parse_cookies(text_header(header::COOKIE).as_deref());
        let referer = text_header(header::REFERER);
        let user_agent = text_header(header::USER_AGENT).unwrap_or_default();
        (cookies, referer, user_agent, peer)
    };
    let query = req.uri().query().unwrap_or("").to_string();
    let body = if post {
        axum::body::to_bytes(req.into_body(), 64 * 1024)
            .await
            .map(|b| b.to_vec())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let info = ReqInfo {
        cookies,
        referer,
        user_agent,
        peer,
        post,
        body,
    };
    let (resp, fault) = respond(&inner, &path, &full, &query, &info).await;
    let in_flight = answering.at_arrival;
    drop(answering);
    inner.log.push(LoggedRequest {
        path: full,
        status: resp.status().as_u16(),
        fault: fault.map(|f| f.to_string()),
        at_ms: inner.elapsed_ms(),
        in_flight,
    });
    resp
}

/// An image path's key (the path with any `_400x400.jpg` size suffix cut and JD's size
/// segment made `n`) and the side it asks for.
fn photo_key(path: &str) -> (String, Option<u32>) {
    let mut key = path.to_string();
    let mut side = None;
    if let Some(at) = key.find(".jpg_") {
        let suffix = &key[at + 5..];
        side = suffix
            .split(['x', '.', 'q'])
            .next()
            .and_then(|n| n.parse::<u32>().ok());
        key.truncate(at + 4);
    }
    // Amazon names sizes inside the file name: 7d96cdaa5a0._AC_UL320_.jpg, or 7d96cdaa5a0L.jpg.
    if let Some(file) = key.strip_prefix("/images/I/") {
        let stem = file.split('.').next().unwrap_or(file);
        let stem = stem.strip_suffix('L').unwrap_or(stem);
        return (format!("/images/I/{stem}"), side);
    }
    // JD names sizes by a path segment: n0 the original, n1 350 px, n7 160 px.
    let segments: Vec<&str> = key.split('/').collect();
    if let Some(seg) = segments
        .get(1)
        .filter(|s| s.len() == 2 && s.starts_with('n'))
    {
        side = match *seg {
            "n1" => Some(350),
            "n7" => Some(160),
            _ => None,
        };
        let rest = segments[2..].join("/");
        key = format!("/n/{rest}");
    }
    (key, side.map(|s| s.clamp(16, 1200)))
}

/// A listing's image, drawn and encoded at request time.
fn photo(inner: &Inner, path: &str) -> Option<Response> {
    let is_image = path.ends_with(".jpg") || path.contains(".jpg_");
    if !is_image {
        return None;
    }
    let mut parts = path.splitn(3, '/').skip(1);
    let data = inner.site(parts.next()?).ok()?;
    let (key, side) = photo_key(&format!("/{}", parts.next()?));
    let Some(&(i, n)) = data.photos.get(&key) else {
        return Some(simple_page(StatusCode::NOT_FOUND, "404 Not Found"));
    };
    let side = side.unwrap_or(400);
    let hit = inner
        .photo_cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(key.clone(), side))
        .cloned();
    let bytes = match hit {
        Some(bytes) => bytes,
        None => {
            let l = &data.listings[i];
            let spec = l
                .photo
                .as_deref()
                .filter(|_| n == 0)
                .and_then(|p| photos::PhotoSpec::parse(p).ok());
            let (img, quality) = match spec {
                Some(spec) => spec.draw(),
                None => (photos::own(&l.platform, &l.item_id, n), 85),
            };
            let bytes = Bytes::from(photos::serve_jpeg(&img, Some(side), quality));
            inner
                .photo_cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert((key, side), bytes.clone());
            bytes
        }
    };
    let mut resp = Response::new(Body::from(bytes));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=31536000"),
    );
    Some(resp)
}

/// Counts a request in flight until dropped, even when its client hangs up mid-answer.
struct Answering<'a> {
    counter: &'a AtomicU32,
    /// Requests in flight when this one arrived, itself included.
    at_arrival: u32,
}

impl<'a> Answering<'a> {
    fn start(counter: &'a AtomicU32) -> Self {
        let at_arrival = counter.fetch_add(1, Ordering::SeqCst) + 1;
        Answering {
            counter,
            at_arrival,
        }
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn respond(
    inner: &Inner,
    path: &str,
    full: &str,
    query: &str,
    info: &ReqInfo,
) -> (Response, Option<Fault>) {
    let query: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if path == "/" {
        return (index_page(inner), None);
    }
    // Images come from the CDN, which asks for no login and sets no challenge.
    if let Some(resp) = photo(inner, path) {
        return (resp, None);
    }
    if let Some(m) = &inner.modern {
        let sites: Vec<&'static Site> = SITES.iter().collect();
        let listings = |platform: &str, keyword: &str| -> Vec<CatalogueListing> {
            inner
                .site(platform)
                .ok()
                .and_then(|d| {
                    d.by_keyword
                        .get(&keyword.trim().to_lowercase())
                        .map(|ix| ix.iter().map(|&i| d.listings[i].clone()).collect())
                })
                .unwrap_or_default()
        };
        let jd_half = |keyword: &str, half: usize| -> Result<String, FixtureError> {
            let data = inner.site("jd")?;
            inner.search_text(data, keyword, half, normal(data.site))
        };
        if let Some(resp) = m.route(&inner.env, &sites, path, &query, info, &listings, &jd_half) {
            return (resp, None);
        }
    }
    // Login pages (where login walls redirect to).
    if let Some(site) = SITES.iter().find(|s| s.login_path == path) {
        let owner = path
            .split('/')
            .nth(1)
            .and_then(render::site)
            .unwrap_or(site);
        let ret = param("redirectURL").unwrap_or("");
        return match render::render_wall(
            &inner.env,
            owner,
            "login.html",
            &format!("/{}", owner.key),
            ret,
        ) {
            Ok(html) => (
                html_response(
                    StatusCode::OK,
                    content_type(owner.gbk),
                    render::encode(&html, owner.gbk),
                ),
                None,
            ),
            Err(e) => (
                simple_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("template error: {e}"),
                ),
                None,
            ),
        };
    }
    let mut parts = path.splitn(3, '/').skip(1);
    let platform = parts.next().unwrap_or("");
    let rest = format!("/{}", parts.next().unwrap_or(""));
    let Ok(data) = inner.site(platform) else {
        return (simple_page(StatusCode::NOT_FOUND, "404 Not Found"), None);
    };
    let site = data.site;
    let page = if rest == site.search_path {
        let keyword = param(site.keyword_param).unwrap_or("").to_string();
        let num = |p: &str| param(p).and_then(|v| v.parse::<usize>().ok());
        let page = match site.page_param {
            PageParam::Offset(p) => num(p).unwrap_or(0) / site.page_size + 1,
            PageParam::Odd(p) => num(p).unwrap_or(1).max(1).div_ceil(2),
            PageParam::Number(p) => num(p).unwrap_or(1).max(1),
        };
        Page::Search { keyword, page }
    } else {
        let id = match site.item {
            ItemPath::Query(p, name) if rest == p => param(name),
            ItemPath::Html => rest.strip_prefix('/').and_then(|r| r.strip_suffix(".html")),
            ItemPath::Prefix(p) => rest
                .strip_prefix(p)
                .map(|r| r.split('/').next().unwrap_or("")),
            _ => None,
        };
        match id.and_then(|id| data.by_id.get(id)) {
            Some(&i) => Page::Item(&data.listings[i]),
            None => return (simple_page(StatusCode::NOT_FOUND, "404 Not Found"), None),
        }
    };

    if let Some(m) = &inner.modern {
        match m.gate(site, matches!(page, Page::Search { .. }), full, info) {
            Gate::Pass => {}
            Gate::Respond(resp) => return (resp, None),
            Gate::Robot => return (Modern::robot_page(&inner.env, full), None),
        }
    }
    // A redirect chain in progress continues without new faults.
    let hop = param("_hop").and_then(|h| h.parse::<u32>().ok());
    let fault = match hop {
        Some(_) => Fault::Redirect {
            hops: param("_hops").and_then(|h| h.parse().ok()).unwrap_or(0),
        },
        None => match inner.choose_fault(path, full, &query) {
            Ok(f) => f,
            Err(msg) => return (simple_page(StatusCode::BAD_REQUEST, &msg), None),
        },
    };
    let logged = (fault != Fault::Ok).then_some(fault);
    let cacheable = inner.options.cache_pages
        && inner.modern.is_none()
        && fault == Fault::Ok
        && matches!(page, Page::Search { .. });
    let cached = cacheable
        .then(|| {
            let cache = inner.page_cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.get(full).cloned()
        })
        .flatten();
    if let Some(body) = cached {
        return (
            html_response(StatusCode::OK, content_type(site.gbk), body),
            None,
        );
    }
    let mut charset = normal(site);
    let mut ctype = content_type(site.gbk).to_string();
    let mut bom = false;
    match fault {
        Fault::Ok => {}
        Fault::TooManyRequests { retry_after_secs } => {
            let mut resp = simple_page(StatusCode::TOO_MANY_REQUESTS, "429 Too Many Requests");
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return (resp, logged);
        }
        Fault::ServerError => {
            return (
                simple_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "500 Internal Server Error",
                ),
                logged,
            );
        }
        Fault::Unavailable => {
            return (
                simple_page(StatusCode::SERVICE_UNAVAILABLE, "503 Service Unavailable"),
                logged,
            );
        }
        Fault::Slow { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
        Fault::Captcha => {
            return match render::render_wall(
                &inner.env,
                site,
                "captcha.html",
                &format!("/{platform}"),
                full,
            ) {
                Ok(html) => (
                    html_response(StatusCode::OK, &ctype, render::encode(&html, site.gbk)),
                    logged,
                ),
                Err(e) => (
                    simple_page(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &format!("template error: {e}"),
                    ),
                    logged,
                ),
            };
        }
        Fault::Login => {
            let back: String = url::form_urlencoded::byte_serialize(full.as_bytes()).collect();
            return (
                redirect(&format!("{}?redirectURL={back}", site.login_path)),
                logged,
            );
        }
        Fault::Redirect { hops } => {
            let k = hop.unwrap_or(0);
            if k < hops {
                let kept: Vec<(String, String)> = query
                    .iter()
                    .filter(|(n, _)| n != "_hop" && n != "_hops" && n != "fault")
                    .cloned()
                    .collect();
                let mut q = url::form_urlencoded::Serializer::new(String::new());
                for (n, v) in &kept {
                    q.append_pair(n, v);
                }
                q.append_pair("_hop", &(k + 1).to_string());
                q.append_pair("_hops", &hops.to_string());
                return (redirect(&format!("{path}?{}", q.finish())), logged);
            }
        }
        Fault::WrongCharset => {
            charset.meta = Some(if site.gbk { "utf-8" } else { "gbk" });
            ctype = content_type(!site.gbk).to_string();
        }
        Fault::NoCharset => {
            charset.meta = None;
            ctype = "text/html".to_string();
        }
        Fault::Bom => bom = true,
        Fault::Truncated => {}
    }
    let modern = inner.modern.is_some();
    let rendered = match page {
        Page::Search { keyword, .. } if modern && matches!(platform, "taobao" | "tmall") => {
            modern::render_shell(&inner.env, site, &keyword, &query, charset)
        }
        Page::Search { keyword, .. } if modern && platform == "jd" => {
            // Each visible page is two halves of 30: `page=1` is the HTML half, `page=2`
            // comes from s_new.php; so the half number is the page parameter itself.
            let half = param("page")
                .and_then(|p| p.parse::<usize>().ok())
                .unwrap_or(1)
                .max(1);
            inner
                .search_text(data, &keyword, half, charset)
                .map(|t| match t.rfind("</body>") {
                    Some(i) => {
                        format!(
                            "{}{}{}",
                            &t[..i],
                            modern::jd_scroll_script(&keyword, half),
                            &t[i..]
                        )
                    }
                    None => t,
                })
        }
        Page::Search { keyword, page } => inner.search_text(data, &keyword, page, charset),
        Page::Item(l) => render::render_item(&inner.env, site, &format!("/{platform}"), l, charset)
            .map_err(|e| FixtureError::Render(format!("{e:#}"))),
    };
    let text = match rendered {
        Ok(t) => t,
        Err(e) => {
            return (
                simple_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
                logged,
            );
        }
    };
    let mut body = if bom {
        let mut b = vec![0xEF, 0xBB, 0xBF];
        b.extend_from_slice(text.as_bytes());
        b
    } else {
        render::encode(&text, site.gbk)
    };
    if fault == Fault::Truncated {
        // Cut somewhere between 30% and 80% of the page, the same place for the same URL.
        let frac = 30 + catalogue::fnv(&[full.as_bytes()]) % 51;
        body.truncate(body.len() * frac as usize / 100);
    }
    let body = Bytes::from(body);
    if cacheable {
        let mut cache = inner.page_cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.insert(full.to_string(), body.clone());
    }
    (html_response(StatusCode::OK, &ctype, body), logged)
}

/// A plain index of the platforms and their keywords, for people browsing the fixtures.
fn index_page(inner: &Inner) -> Response {
    let mut html = String::from(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>markwatch fixture platforms</title></head><body><h1>markwatch fixture platforms</h1>",
    );
    for data in &inner.sites {
        html.push_str(&format!(
            "<h2>{} ({} listings)</h2><ul>",
            data.site.key,
            data.listings.len()
        ));
        for k in &data.keywords {
            if let Ok(p) = FixtureServer::search_path(data.site.key, k, 1) {
                let n = data.by_keyword.get(k).map_or(0, Vec::len);
                let esc = |s: &str| html_escape::encode_quoted_attribute(s).into_owned();
                html.push_str(&format!(
                    "<li><a href=\"{}\">{}</a> ({n})</li>",
                    esc(&p),
                    esc(k)
                ));
            }
        }
        html.push_str("</ul>");
    }
    html.push_str("</body></html>");
    html_response(
        StatusCode::OK,
        "text/html; charset=utf-8",
        html.into_bytes(),
    )
}
