//! Fetching pages the way a person's browser does: Debian's Chromium over the DevTools
//! protocol (chromiumoxide). The page's own script runs; we read the rendered DOM and keep the
//! API replies it received. Nothing here solves or bypasses a challenge.
//!
//! One [`BrowserSession`] is one Chromium process on one account's profile. Tabs are reused
//! from a bounded pool; a crashed Chromium is relaunched on the next load.
//!
//! "Loaded" means: the main document's DOMContentLoaded (not `load`: one hanging image would
//! hold it back), then no request in flight for [`QUIET`]
//! (the page's script usually starts its API calls right after load, with a few ms of its own
//! work in between), and, when a capture pattern is given, a matching response complete. A page
//! that never sends a matching request (a login wall) is loaded after [`CAPTURE_GRACE`] of
//! quiet. Everything is bounded by the page timeout.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;
use chromiumoxide::browser::BrowserConfig;
use chromiumoxide::cdp::browser_protocol::network::{
    BlockPattern, Cookie as CdpCookie, CookieParam, EventLoadingFailed, EventLoadingFinished,
    EventRequestWillBeSent, EventResponseReceived, GetResponseBodyParams, Headers, ResourceType,
    SetBlockedUrLsParams, SetExtraHttpHeadersParams, SetUserAgentOverrideParams, TimeSinceEpoch,
};
use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, CaptureScreenshotParams, EventDomContentEventFired,
    GetLayoutMetricsParams, NavigateParams, PrintToPdfParams, Viewport,
};
use chromiumoxide::cdp::browser_protocol::storage::{GetCookiesParams, SetCookiesParams};
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::error::CdpError;
use chromiumoxide::{Browser, Page as Tab};
use chrono::{DateTime, Utc};
use futures_util::stream::{Stream, StreamExt};
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

use crate::accounts::{Cookie, ProxyUrl};

/// No request in flight for this long after DOMContentLoaded: the page has settled.
const QUIET: Duration = Duration::from_millis(150);
/// A request open this long no longer holds the page (an unreachable third-party host on a
/// closed network never answers).
const STRAGGLER: Duration = Duration::from_secs(3);
/// How long a quiet page still waiting for its API reply is given to send the call: a page's
/// script may make it only after a first call and some async work (mtop's token round trip),
/// which a loaded machine can stretch.
const CAPTURE_GRACE: Duration = Duration::from_millis(2000);
/// How long a page still loading its document may send no event before it is asked whether
/// it is ready.
const LOOK_AGAIN: Duration = Duration::from_secs(1);
/// Crawl pages skip these loads (screenshots don't): markwatch reads text, not pictures.
const BLOCKED: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "webp", "avif", "ico", "svg", "woff", "woff2", "ttf", "otf",
    "mp4", "webm", "mp3",
];
const VIEWPORT: (u32, u32) = (1366, 768);

/// How to start one account's Chromium.
#[derive(Debug, Clone)]
pub struct BrowserOptions {
    /// None: /usr/bin/chromium, else `chromium` on PATH.
    pub executable: Option<PathBuf>,
    /// The account's own `--user-data-dir`.
    pub profile_dir: PathBuf,
    /// `--proxy-server`; a user name and password are answered to the proxy's challenge.
    pub proxy: Option<ProxyUrl>,
    /// A fixed User-Agent, the same headless and headed (clearance cookies are tied to it).
    /// None: the browser's own, with "HeadlessChrome" read as "Chrome".
    pub user_agent: Option<String>,
    /// Tabs open at once.
    pub tabs: usize,
    pub page_timeout: Duration,
    pub headless: bool,
}

/// What one load should bring back besides the DOM.
#[derive(Clone, Copy)]
pub struct Load<'a> {
    /// Keep every response whose URL matches.
    pub capture: Option<&'a regex::Regex>,
    /// Which kept reply the page is read from: the load waits for one (any, if `None`) until
    /// the page has been quiet for a grace period.
    pub answers: Option<&'a (dyn Fn(&Captured) -> bool + Sync)>,
    /// A full-page PNG.
    pub screenshot: bool,
    /// Extra request headers; `Referer` becomes the navigation's referrer.
    pub headers: &'a BTreeMap<String, String>,
}

/// A loaded page.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The rendered DOM as UTF-8, with the main document's status, headers and final URL.
    pub page: super::Page,
    /// Responses matching the capture pattern, in the order they completed.
    pub captures: Vec<Captured>,
    pub screenshot: Option<Vec<u8>>,
}

/// One API reply the page's script received.
#[derive(Debug, Clone)]
pub struct Captured {
    pub url: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub fetched_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error(
        "Chromium was not found at {path}: install Debian's package (`apt install chromium`) or \
         set the browser's executable"
    )]
    NotInstalled { path: PathBuf },
    #[error("could not start Chromium ({path}): {message}")]
    Launch { path: PathBuf, message: String },
    #[error("the page did not finish loading in time: {url}")]
    Timeout { url: String },
    #[error("Chromium exited while loading {url}")]
    Crashed { url: String },
    #[error("DevTools protocol: {0}")]
    Protocol(String),
    #[error("could not load {url}: {reason}")]
    Navigation { url: String, reason: String },
}

impl BrowserError {
    /// Worth another try: the page timed out, or Chromium died (the next load relaunches it).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            BrowserError::Timeout { .. } | BrowserError::Crashed { .. }
        )
    }
}

/// A response's URL, status and headers.
type Response = (String, u16, Vec<(String, String)>);

/// A tab and the event streams it was opened with (kept across loads: subscribing is a round
/// trip to the handler).
struct PooledTab {
    tab: Tab,
    events: Pin<Box<dyn Stream<Item = Ev> + Send>>,
    blocking: bool,
    extra: BTreeMap<String, String>,
}

enum Ev {
    Sent(Arc<EventRequestWillBeSent>),
    Response(Arc<EventResponseReceived>),
    Finished(Arc<EventLoadingFinished>),
    Failed(Arc<EventLoadingFailed>),
    Load,
}

/// One running Chromium.
struct Running {
    browser: Browser,
    alive: Arc<AtomicBool>,
    idle: Vec<PooledTab>,
    user_agent: String,
}

/// One Chromium process on one account's profile.
pub struct BrowserSession {
    opts: BrowserOptions,
    executable: PathBuf,
    tabs: Semaphore,
    running: Mutex<Option<Running>>,
}

fn proto(e: CdpError) -> BrowserError {
    BrowserError::Protocol(e.to_string())
}

/// Where Chromium is: `given`, else Debian's /usr/bin/chromium, else `chromium` on PATH. The
/// error names the package to install.
pub fn find_chromium(given: Option<&Path>) -> Result<PathBuf, BrowserError> {
    if let Some(p) = given {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(BrowserError::NotInstalled {
                path: p.to_path_buf(),
            })
        };
    }
    let debian = Path::new("/usr/bin/chromium");
    if debian.is_file() {
        return Ok(debian.to_path_buf());
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file())
        .ok_or(BrowserError::NotInstalled {
            path: debian.to_path_buf(),
        })
}

impl BrowserSession {
    /// Starts Chromium on the profile.
    pub async fn launch(opts: BrowserOptions) -> Result<BrowserSession, BrowserError> {
        let executable = find_chromium(opts.executable.as_deref())?;
        let session = BrowserSession {
            tabs: Semaphore::new(opts.tabs.max(1)),
            executable,
            opts,
            running: Mutex::new(None),
        };
        let running = session.start().await?;
        *session.running.lock().await = Some(running);
        Ok(session)
    }

    async fn start(&self) -> Result<Running, BrowserError> {
        let o = &self.opts;
        std::fs::create_dir_all(&o.profile_dir).map_err(|e| BrowserError::Launch {
            path: self.executable.clone(),
            message: format!("profile {}: {e}", o.profile_dir.display()),
        })?;
        // Bare switch names: chromiumoxide adds the `--` (a `--x` given would reach Chromium
        // as `----x`, which it ignores).
        let mut args: Vec<(&str, Option<String>)> = [
            "disable-gpu",
            "disable-quic",
            "no-first-run",
            "no-default-browser-check",
            "disable-background-networking",
            "disable-component-update",
            "disable-sync",
            "disable-dev-shm-usage",
            "disable-breakpad",
            "disable-default-apps",
            "disable-popup-blocking",
            "disable-renderer-backgrounding",
            "disable-background-timer-throttling",
            "disable-backgrounding-occluded-windows",
            "use-mock-keychain",
        ]
        .into_iter()
        .map(|k| (k, None))
        .collect();
        args.push(("password-store", Some("basic".into())));
        if let Some(p) = &o.proxy {
            args.push(("proxy-server", Some(p.server())));
            // Every request goes through the account's proxy, loopback included (Chromium
            // would send those direct).
            args.push(("proxy-bypass-list", Some("<-loopback>".into())));
        }
        if let Some(ua) = &o.user_agent {
            args.push(("user-agent", Some(ua.clone())));
        }
        let builder = BrowserConfig::builder()
            .chrome_executable(&self.executable)
            .user_data_dir(&o.profile_dir)
            .disable_default_args()
            .no_sandbox();
        // `--headless=new`: the same browser as headed, without a window.
        let builder = if o.headless {
            builder.new_headless_mode()
        } else {
            builder.with_head()
        };
        let builder = builder.window_size(VIEWPORT.0, VIEWPORT.1).viewport(None);
        let config = args
            .iter()
            .fold(builder, |b, (k, v)| match v {
                Some(v) => b.arg((*k, v.as_str())),
                None => b.arg(*k),
            })
            .build()
            .map_err(|message| BrowserError::Launch {
                path: self.executable.clone(),
                message,
            })?;
        let (browser, mut handler) =
            Browser::launch(config)
                .await
                .map_err(|e| BrowserError::Launch {
                    path: self.executable.clone(),
                    message: e.to_string(),
                })?;
        let alive = Arc::new(AtomicBool::new(true));
        let flag = alive.clone();
        tokio::spawn(async move {
            while let Some(r) = handler.next().await {
                if let Err(CdpError::Ws(_) | CdpError::Io(_)) = r {
                    break;
                }
            }
            flag.store(false, Ordering::SeqCst);
        });
        let user_agent = match &o.user_agent {
            Some(ua) => ua.clone(),
            None => browser
                .user_agent()
                .await
                .map_err(proto)?
                .replace("HeadlessChrome", "Chrome"),
        };
        Ok(Running {
            browser,
            alive,
            idle: Vec::new(),
            user_agent,
        })
    }

    /// The Chromium process id, while it runs (for operators and tests).
    pub async fn pid(&self) -> Option<u32> {
        let mut guard = self.running.lock().await;
        let r = guard.as_mut()?;
        r.browser.get_mut_child().and_then(|c| c.inner.id())
    }

    /// The DevTools WebSocket address, while it runs: how a person reaches a browser on a
    /// server with no display (through an SSH tunnel), and how tests play the person.
    pub async fn devtools_url(&self) -> Option<String> {
        let guard = self.running.lock().await;
        guard
            .as_ref()
            .map(|r| r.browser.websocket_address().clone())
    }

    /// A running browser, relaunched on the same profile if it died.
    async fn ensure(&self) -> Result<(), BrowserError> {
        let mut guard = self.running.lock().await;
        if guard
            .as_ref()
            .is_some_and(|r| r.alive.load(Ordering::SeqCst))
        {
            return Ok(());
        }
        if let Some(mut old) = guard.take() {
            let _ = old.browser.kill().await;
        }
        *guard = Some(self.start().await?);
        Ok(())
    }

    pub async fn set_cookies(&self, cookies: &[Cookie]) -> Result<(), BrowserError> {
        self.ensure().await?;
        let params: Vec<CookieParam> = cookies.iter().map(to_cdp).collect();
        let guard = self.running.lock().await;
        let r = guard
            .as_ref()
            .ok_or(BrowserError::Protocol("no browser".into()))?;
        r.browser
            .execute(SetCookiesParams::new(params))
            .await
            .map_err(proto)?;
        Ok(())
    }

    /// Every cookie of the profile (HttpOnly ones too).
    pub async fn cookies(&self) -> Result<Vec<Cookie>, BrowserError> {
        self.ensure().await?;
        let guard = self.running.lock().await;
        let r = guard
            .as_ref()
            .ok_or(BrowserError::Protocol("no browser".into()))?;
        let got = r
            .browser
            .execute(GetCookiesParams::default())
            .await
            .map_err(proto)?;
        Ok(got.result.cookies.iter().map(from_cdp).collect())
    }

    async fn take_tab(&self) -> Result<(PooledTab, Arc<AtomicBool>), BrowserError> {
        self.ensure().await?;
        let (browser_tab, alive, ua) = {
            let mut guard = self.running.lock().await;
            let r = guard
                .as_mut()
                .ok_or(BrowserError::Protocol("no browser".into()))?;
            if let Some(t) = r.idle.pop() {
                return Ok((t, r.alive.clone()));
            }
            let tab = r.browser.new_page("about:blank").await.map_err(proto)?;
            (tab, r.alive.clone(), r.user_agent.clone())
        };
        let tab = browser_tab;
        tab.execute(SetUserAgentOverrideParams::new(ua))
            .await
            .map_err(proto)?;
        if let Some((user, pass)) = self.opts.proxy.as_ref().and_then(ProxyUrl::credentials) {
            tab.authenticate(chromiumoxide::auth::Credentials {
                username: user,
                password: pass,
            })
            .await
            .map_err(proto)?;
        }
        let sent = tab
            .event_listener::<EventRequestWillBeSent>()
            .await
            .map_err(proto)?
            .map(Ev::Sent);
        let resp = tab
            .event_listener::<EventResponseReceived>()
            .await
            .map_err(proto)?
            .map(Ev::Response);
        let fin = tab
            .event_listener::<EventLoadingFinished>()
            .await
            .map_err(proto)?
            .map(Ev::Finished);
        let fail = tab
            .event_listener::<EventLoadingFailed>()
            .await
            .map_err(proto)?
            .map(Ev::Failed);
        let load = tab
            .event_listener::<EventDomContentEventFired>()
            .await
            .map_err(proto)?
            .map(|_| Ev::Load);
        let events = futures_util::stream::select_all(vec![
            sent.boxed(),
            resp.boxed(),
            fin.boxed(),
            fail.boxed(),
            load.boxed(),
        ]);
        Ok((
            PooledTab {
                tab,
                events: Box::pin(events),
                blocking: false,
                extra: BTreeMap::new(),
            },
            alive,
        ))
    }

    async fn give_back(&self, tab: PooledTab, alive: &Arc<AtomicBool>) {
        let mut guard = self.running.lock().await;
        match guard.as_mut() {
            // Only to the browser it came from.
            Some(r) if Arc::ptr_eq(&r.alive, alive) && alive.load(Ordering::SeqCst) => {
                r.idle.push(tab)
            }
            _ => {}
        }
    }

    /// Loads `url` in a pooled tab and waits until it has settled (see the module's note).
    pub async fn load(&self, url: &str, want: &Load<'_>) -> Result<Loaded, BrowserError> {
        let _permit = self
            .tabs
            .acquire()
            .await
            .map_err(|_| BrowserError::Protocol("closed".into()))?;
        let (mut tab, alive) = match self.take_tab().await {
            Ok(t) => t,
            Err(e) => return Err(self.crashed_or(e, url).await),
        };
        let result = tokio::time::timeout(self.opts.page_timeout, self.run(&mut tab, url, want))
            .await
            .unwrap_or_else(|_| Err(BrowserError::Timeout { url: url.into() }));
        match result {
            Ok(loaded) => {
                self.give_back(tab, &alive).await;
                Ok(loaded)
            }
            Err(e) => {
                if !alive.load(Ordering::SeqCst) {
                    return Err(BrowserError::Crashed { url: url.into() });
                }
                // A tab in an unknown state is not reused.
                let _ = tab.tab.close().await;
                Err(e)
            }
        }
    }

    /// Prints a local HTML file (`path`, with its images beside it) to PDF: A4, backgrounds
    /// printed, the document's own `@page` rules honoured.
    pub async fn print_pdf(&self, path: &Path) -> Result<Vec<u8>, BrowserError> {
        let url = url::Url::from_file_path(path)
            .map_err(|_| BrowserError::Protocol(format!("{} is not a file path", path.display())))?
            .to_string();
        let _permit = self
            .tabs
            .acquire()
            .await
            .map_err(|_| BrowserError::Protocol("closed".into()))?;
        let (tab, _alive) = match self.take_tab().await {
            Ok(t) => t,
            Err(e) => return Err(self.crashed_or(e, &url).await),
        };
        let printed = tokio::time::timeout(self.opts.page_timeout, async {
            tab.tab
                .execute(SetBlockedUrLsParams {
                    url_patterns: Some(Vec::new()),
                })
                .await
                .map_err(proto)?;
            tab.tab.goto(url.as_str()).await.map_err(proto)?;
            tab.tab
                .pdf(
                    PrintToPdfParams::builder()
                        .print_background(true)
                        .prefer_css_page_size(true)
                        .build(),
                )
                .await
                .map_err(proto)
        })
        .await
        .unwrap_or_else(|_| Err(BrowserError::Timeout { url: url.clone() }));
        // A printed tab is not reused: it holds the report, not a platform's page.
        let _ = tab.tab.close().await;
        printed
    }

    async fn crashed_or(&self, e: BrowserError, url: &str) -> BrowserError {
        let guard = self.running.lock().await;
        match guard.as_ref() {
            Some(r) if !r.alive.load(Ordering::SeqCst) => BrowserError::Crashed { url: url.into() },
            _ => e,
        }
    }

    async fn run(
        &self,
        t: &mut PooledTab,
        url: &str,
        want: &Load<'_>,
    ) -> Result<Loaded, BrowserError> {
        // Whatever the previous page left in the streams.
        while let Some(Some(_)) = futures_util::FutureExt::now_or_never(t.events.next()) {}
        let block = !want.screenshot;
        if block != t.blocking {
            let patterns = if block {
                BLOCKED
                    .iter()
                    .map(|ext| BlockPattern::new(format!("*://*:*/*.{ext}"), true))
                    .collect()
            } else {
                Vec::new()
            };
            t.tab
                .execute(SetBlockedUrLsParams {
                    url_patterns: Some(patterns),
                })
                .await
                .map_err(proto)?;
            t.blocking = block;
        }
        let referrer = want
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("referer"))
            .map(|(_, v)| v.clone());
        let extra: BTreeMap<String, String> = want
            .headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("referer"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if extra != t.extra {
            let json: serde_json::Map<String, serde_json::Value> = extra
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            t.tab
                .execute(SetExtraHttpHeadersParams::new(Headers::new(json)))
                .await
                .map_err(proto)?;
            t.extra = extra;
        }

        let fetched_at = Utc::now();
        let mut nav = NavigateParams::new(url);
        nav.referrer = referrer;
        let navigated = t.tab.execute(nav).await.map_err(proto)?;
        if let Some(err) = &navigated.result.error_text {
            return Err(BrowserError::Navigation {
                url: url.into(),
                reason: err.clone(),
            });
        }
        let main_frame = navigated.result.frame_id.clone();

        let mut inflight: HashMap<String, Instant> = HashMap::new();
        // Documents started against DOMContentLoaded seen: counts, as the merged streams may
        // deliver one document's events slightly out of order.
        let mut dcl_seen = 0usize;
        let mut docs: std::collections::HashSet<String> = navigated
            .result
            .loader_id
            .iter()
            .map(|l| l.inner().clone())
            .collect();
        let mut main: Option<Response> = None;
        let mut pending_captures: HashMap<String, Response> = HashMap::new();
        let mut captures = Vec::new();
        // A first reply can be an error the script answers with a second call (mtop's
        // FAIL_SYS_TOKEN_EMPTY), so the wait is for the reply the page is read from.
        let mut answered = false;
        let mut last = Instant::now();
        loop {
            // Once the reply the page is read from is in and nothing else is loading, the page
            // is done: its script renders from that reply (the DOM read below waits a task).
            let grace = match (want.capture.is_some(), answered) {
                (true, true) => Duration::ZERO,
                (true, false) => CAPTURE_GRACE,
                (false, _) => QUIET,
            };
            let doc_pending = dcl_seen < docs.len();
            let now = Instant::now();
            let newest = inflight.values().copied().max();
            let waiting = newest.is_some_and(|t| now.duration_since(t) < STRAGGLER);
            // Once the reply the page is read from is in, what else loads doesn't change it.
            let settled = !doc_pending && (answered || !waiting);
            if settled && last.elapsed() >= grace {
                break;
            }
            let ev = if settled {
                match tokio::time::timeout_at(last + grace, t.events.next()).await {
                    Ok(ev) => ev,
                    Err(_) => continue,
                }
            } else if let Some(t0) = newest.filter(|_| !doc_pending) {
                match tokio::time::timeout_at(t0 + STRAGGLER, t.events.next()).await {
                    Ok(ev) => ev,
                    Err(_) => continue,
                }
            } else {
                match tokio::time::timeout(LOOK_AGAIN, t.events.next()).await {
                    Ok(ev) => ev,
                    Err(_) => {
                        tracing::debug!(%url, dcl_seen, docs = docs.len(), "no event; is the page ready?");
                        // A document replaced before its DOMContentLoaded (a script's
                        // navigation) never reports one: ask the page itself.
                        if ready(&t.tab).await {
                            dcl_seen = docs.len();
                        }
                        continue;
                    }
                }
            };
            let Some(ev) = ev else {
                return Err(BrowserError::Crashed { url: url.into() });
            };
            last = Instant::now();
            match ev {
                Ev::Sent(e) => {
                    // A new main document (a script's navigation) must reach its
                    // DOMContentLoaded too. The streams are merged, so events of different kinds
                    // may come slightly out of order: a redirect hop or our own navigation's
                    // request seen after its DOMContentLoaded is not a new document.
                    if e.r#type == Some(ResourceType::Document)
                        && e.frame_id.as_ref() == Some(&main_frame)
                        && e.redirect_response.is_none()
                    {
                        docs.insert(e.request_id.inner().clone());
                    }
                    // Only loads that can change the DOM we read hold the page open: not
                    // pictures, fonts or media (an unreachable image host hangs), nor the
                    // favicon, pings, reports or streams that never finish.
                    if matches!(
                        e.r#type,
                        Some(
                            ResourceType::Document
                                | ResourceType::Stylesheet
                                | ResourceType::Script
                                | ResourceType::Xhr
                                | ResourceType::Fetch
                        )
                    ) {
                        inflight.insert(e.request_id.inner().clone(), Instant::now());
                    }
                }
                Ev::Response(e) => {
                    let headers = header_list(&e.response.headers);
                    let status = u16::try_from(e.response.status).unwrap_or(0);
                    if e.r#type == ResourceType::Document
                        && e.frame_id.as_ref() == Some(&main_frame)
                    {
                        main = Some((e.response.url.clone(), status, headers.clone()));
                    }
                    if want.capture.is_some_and(|re| re.is_match(&e.response.url)) {
                        pending_captures.insert(
                            e.request_id.inner().clone(),
                            (e.response.url.clone(), status, headers),
                        );
                    }
                }
                Ev::Finished(e) => {
                    let id = e.request_id.inner().clone();
                    inflight.remove(&id);
                    if let Some((url, status, headers)) = pending_captures.remove(&id) {
                        // A reply whose script navigated away at once (to a challenge) may
                        // be gone already; the page it led to says what happened.
                        let Ok(body) = t
                            .tab
                            .execute(GetResponseBodyParams::new(e.request_id.clone()))
                            .await
                        else {
                            continue;
                        };
                        let bytes = if body.result.base64_encoded {
                            base64::engine::general_purpose::STANDARD
                                .decode(&body.result.body)
                                .map_err(|e| BrowserError::Protocol(e.to_string()))?
                        } else {
                            body.result.body.clone().into_bytes()
                        };
                        let reply = Captured {
                            url,
                            status,
                            headers,
                            body: bytes,
                            fetched_at: Utc::now(),
                        };
                        answered |= want.answers.is_none_or(|f| f(&reply));
                        captures.push(reply);
                    }
                }
                Ev::Failed(e) => {
                    let id = e.request_id.inner().clone();
                    inflight.remove(&id);
                    pending_captures.remove(&id);
                }
                Ev::Load => dcl_seen += 1,
            }
        }

        let dom = t
            .tab
            .execute(
                EvaluateParams::builder()
                    // After the tasks already queued (a reply's script that renders it).
                    .expression(
                        "new Promise(r => setTimeout(r, 0))\
                         .then(() => document.documentElement.outerHTML)",
                    )
                    .await_promise(true)
                    .return_by_value(true)
                    .build()
                    .map_err(BrowserError::Protocol)?,
            )
            .await
            .map_err(proto)?;
        let html = dom
            .result
            .result
            .value
            .as_ref()
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let screenshot = if want.screenshot {
            Some(full_page_png(&t.tab).await?)
        } else {
            None
        };
        let (final_url, status, mut headers) = main.unwrap_or((url.to_string(), 0, Vec::new()));
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
        headers.push(("content-type".into(), "text/html; charset=utf-8".into()));
        Ok(Loaded {
            page: super::Page {
                url: url.to_string(),
                final_url,
                status,
                headers,
                body: html.into_bytes(),
                fetched_at,
                attempts: 1,
            },
            captures,
            screenshot,
        })
    }

    /// Ends Chromium.
    pub async fn close(self) {
        if let Some(mut r) = self.running.lock().await.take() {
            let _ = r.browser.close().await;
            let _ = r.browser.wait().await;
        }
    }
}

/// Whether the page's document has been parsed (`readyState` past `loading`).
async fn ready(tab: &Tab) -> bool {
    let Ok(params) = EvaluateParams::builder()
        .expression("document.readyState")
        .return_by_value(true)
        .build()
    else {
        return false;
    };
    tab.execute(params).await.is_ok_and(|r| {
        r.result
            .result
            .value
            .as_ref()
            .and_then(|v| v.as_str())
            .is_some_and(|s| s != "loading")
    })
}

/// Full-page screenshots stop this far down (CSS px): what a listing shows of itself is in its
/// first screens, and the tail of an endless page is recommendations. Documented in README.
pub const SCREENSHOT_MAX_HEIGHT: f64 = 12_000.0;
/// Wider content (a page that overflows sideways) is cut here.
const SCREENSHOT_MAX_WIDTH: f64 = 2_000.0;
/// Taller pages are taken in strips of this height and stitched: one capture of a very tall
/// page can exceed Chromium's texture size and come back blank or truncated.
const SCREENSHOT_CHUNK: f64 = 2_000.0;

async fn full_page_png(tab: &Tab) -> Result<Vec<u8>, BrowserError> {
    let m = tab
        .execute(GetLayoutMetricsParams::default())
        .await
        .map_err(proto)?;
    let size = &m.result.css_content_size;
    let width = size.width.clamp(1.0, SCREENSHOT_MAX_WIDTH);
    let height = size.height.clamp(1.0, SCREENSHOT_MAX_HEIGHT);
    let mut strips = Vec::new();
    let mut y = 0.0;
    while y < height {
        let strip = (height - y).min(SCREENSHOT_CHUNK);
        strips.push(capture(tab, y, width, strip).await?);
        y += strip;
    }
    if strips.len() == 1 {
        return Ok(strips.remove(0));
    }
    tokio::task::spawn_blocking(move || stitch(&strips))
        .await
        .map_err(|e| BrowserError::Protocol(e.to_string()))?
}

/// One PNG of the page's region from `y`, `height` tall.
async fn capture(tab: &Tab, y: f64, width: f64, height: f64) -> Result<Vec<u8>, BrowserError> {
    let shot = tab
        .execute(
            CaptureScreenshotParams::builder()
                .format(CaptureScreenshotFormat::Png)
                .capture_beyond_viewport(true)
                .clip(Viewport {
                    x: 0.0,
                    y,
                    width,
                    height,
                    scale: 1.0,
                })
                .build(),
        )
        .await
        .map_err(proto)?;
    base64::engine::general_purpose::STANDARD
        .decode(AsRef::<str>::as_ref(&shot.result.data))
        .map_err(|e| BrowserError::Protocol(e.to_string()))
}

/// PNG strips, top to bottom, as one PNG.
pub(crate) fn stitch(strips: &[Vec<u8>]) -> Result<Vec<u8>, BrowserError> {
    let bad = |e: image::ImageError| BrowserError::Protocol(format!("screenshot strip: {e}"));
    let images = strips
        .iter()
        .map(|png| {
            image::load_from_memory_with_format(png, image::ImageFormat::Png)
                .map(|i| i.into_rgb8())
                .map_err(bad)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let width = images.iter().map(|i| i.width()).max().unwrap_or(0);
    let height = images.iter().map(|i| i.height()).sum();
    let mut canvas = image::RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    let mut y = 0;
    for strip in &images {
        image::imageops::replace(&mut canvas, strip, 0, i64::from(y));
        y += strip.height();
    }
    let mut out = Vec::new();
    canvas
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(bad)?;
    Ok(out)
}

fn header_list(h: &Headers) -> Vec<(String, String)> {
    h.inner()
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    (
                        k.to_ascii_lowercase(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A cookie as Chromium reports it.
pub(crate) fn from_cdp(c: &CdpCookie) -> Cookie {
    Cookie {
        include_subdomains: c.domain.starts_with('.'),
        domain: c.domain.clone(),
        path: c.path.clone(),
        secure: c.secure,
        http_only: c.http_only,
        // A whole second: exports and the store keep whole seconds.
        expires: (!c.session && c.expires > 0.0).then_some(c.expires as i64),
        name: c.name.clone(),
        value: c.value.clone(),
    }
}

/// A cookie as Chromium takes it.
pub(crate) fn to_cdp(c: &Cookie) -> CookieParam {
    let mut p = CookieParam::new(c.name.clone(), c.value.clone());
    let host = c.domain.trim_start_matches('.');
    if c.include_subdomains {
        p.domain = Some(format!(".{host}"));
    } else {
        // A host-only cookie is set through a URL rather than a domain.
        let scheme = if c.secure { "https" } else { "http" };
        p.url = Some(format!("{scheme}://{host}{}", c.path));
    }
    p.path = Some(c.path.clone());
    p.secure = Some(c.secure);
    p.http_only = Some(c.http_only);
    p.expires = c.expires.map(|e| TimeSinceEpoch::new(e as f64));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, colour: [u8; 3]) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(width, height, image::Rgb(colour));
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn strips_stitch_top_to_bottom_into_one_png() {
        let strips = [png(40, 30, [255, 0, 0]), png(40, 20, [0, 0, 255])];
        let one = image::load_from_memory(&stitch(&strips).unwrap())
            .unwrap()
            .into_rgb8();
        assert_eq!(one.dimensions(), (40, 50));
        assert_eq!(one.get_pixel(5, 29).0, [255, 0, 0]);
        assert_eq!(one.get_pixel(5, 30).0, [0, 0, 255]);
        assert_eq!(one.get_pixel(39, 49).0, [0, 0, 255]);
        assert!(stitch(&[b"not a png".to_vec()]).is_err());
    }
}
