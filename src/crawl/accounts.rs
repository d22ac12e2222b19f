//! A platform's sessions for one crawl: one per healthy account (its own cookie jar, proxy and
//! pace), or one anonymous session for a platform crawled without accounts. Pages go to the
//! sessions still in use round-robin; a session that met a login wall or a challenge is
//! stopped and never used again in this crawl.
//!
//! A session is where a browser will sit beside the HTTP client: both share the account's
//! identity (cookies, proxy, User-Agent).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use chrono::Utc;
use reqwest::cookie::Jar;
use url::Url;

use super::CrawlError;
use crate::accounts::{Cookie, OpenedAccount};
use crate::extract::{capture_answers, decode_capture};
use crate::fetch::browser::{BrowserOptions, BrowserSession, Captured, Load, Loaded};
use crate::fetch::{FetchPolicy, Fetcher, Identity};
use crate::model::alert::fix_command;
use crate::platform::CaptureRule;
use crate::store::{AccountState, Store, StoreError};

/// The account behind a session.
#[derive(Debug, Clone)]
pub(super) struct AccountRef {
    pub(super) id: i64,
    pub(super) name: String,
}

/// One way into a platform: an account, or nobody.
pub(super) struct Session {
    pub(super) account: Option<AccountRef>,
    pub(super) fetcher: Fetcher,
    /// The account's Chromium, started at its first browser page.
    browser: Option<BrowserSlot>,
    stopped: AtomicBool,
    /// Pages fetched, and those read (not a wall), to record on the account.
    pages: AtomicU32,
    read: AtomicU32,
}

/// How a page is to be fetched.
#[derive(Clone, Copy)]
pub(super) enum Via<'a> {
    Http,
    /// In the account's browser, keeping the API replies `capture` names and waiting for one
    /// that holds the listings.
    Browser {
        capture: Option<&'a CaptureRule>,
        screenshot: bool,
    },
    /// In the browser with a screenshot, or over HTTP when no browser can start.
    Screenshot,
}

/// A session's Chromium: how to start it, and the one started. Its profile is a fresh
/// directory that lives as long as the crawl: the account's session comes from the sealed
/// store each time, so no cookie rests unsealed on disk.
pub(super) struct BrowserSlot {
    opts: BrowserOptions,
    cookies: Vec<Cookie>,
    started: tokio::sync::OnceCell<Result<BrowserSession, String>>,
    _profile: tempfile::TempDir,
}

impl BrowserSlot {
    async fn get(&self) -> Result<&BrowserSession, String> {
        let started = self
            .started
            .get_or_init(|| async {
                let browser = BrowserSession::launch(self.opts.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                if !self.cookies.is_empty() {
                    browser
                        .set_cookies(&self.cookies)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Ok(browser)
            })
            .await;
        started.as_ref().map_err(Clone::clone)
    }

    async fn close(&mut self) {
        if let Some(Ok(browser)) = self.started.take() {
            browser.close().await;
        }
    }
}

/// What the browser options of every session start from.
#[derive(Debug, Clone)]
pub(super) struct BrowserPlan {
    pub(super) executable: Option<std::path::PathBuf>,
    pub(super) tabs: usize,
    pub(super) page_timeout: std::time::Duration,
}

impl Session {
    /// Fetches `url` as `via` says, at the session's pace. A browser page that times out or
    /// whose Chromium died is tried again, up to the policy's attempts.
    pub(super) async fn fetch(
        &self,
        url: &str,
        via: Via<'_>,
        headers: &std::collections::BTreeMap<String, String>,
    ) -> Result<Loaded, String> {
        let http = || async {
            let page = self.fetcher.fetch(url).await.map_err(|e| e.to_string())?;
            Ok(Loaded {
                page,
                captures: Vec::new(),
                screenshot: None,
            })
        };
        let (capture, screenshot) = match via {
            Via::Http => return http().await,
            Via::Screenshot => (None, true),
            Via::Browser {
                capture,
                screenshot,
            } => (capture, screenshot),
        };
        let started = match &self.browser {
            Some(slot) => slot.get().await,
            None => Err("no browser planned for this platform".to_owned()),
        };
        let browser = match started {
            Ok(browser) => browser,
            Err(e) if matches!(via, Via::Screenshot) => {
                tracing::debug!(%url, error = %e, "no browser for the screenshot; fetching over HTTP");
                return http().await;
            }
            Err(e) => return Err(e),
        };
        let answers = |c: &Captured| {
            let content_type = c
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.as_str());
            capture.is_none_or(|rule| capture_answers(rule, &decode_capture(&c.body, content_type)))
        };
        let want = Load {
            capture: capture.and_then(|rule| rule.url_regex.as_ref()),
            answers: Some(&answers),
            screenshot,
            headers,
        };
        let policy = self.fetcher.policy();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let loaded = self.fetcher.paced(browser.load(url, &want)).await;
            match loaded {
                Ok(mut loaded) => {
                    loaded.page.attempts = attempt;
                    return Ok(loaded);
                }
                Err(e) if e.is_retryable() && attempt < policy.max_attempts => {
                    let wait = policy
                        .base_backoff
                        .saturating_mul(1 << (attempt - 1).min(8))
                        .min(policy.max_backoff);
                    tracing::warn!(%url, error = %e, ?wait, "browser page failed; trying again");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    pub(super) fn count(&self, read: bool) {
        self.pages.fetch_add(1, Ordering::Relaxed);
        if read {
            self.read.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Why a session stopped, as the run tells it.
#[derive(Debug, Clone)]
pub(super) struct Stop {
    pub(super) account: Option<String>,
    pub(super) state: AccountState,
    pub(super) url: String,
}

/// A platform's sessions for one crawl.
pub(super) struct Sessions {
    platform: String,
    all: Vec<Arc<Session>>,
    next: AtomicUsize,
    stops: Mutex<Vec<Stop>>,
}

/// Whether an account may be used now: `ok`, or `cooling` past its `until`.
pub(super) fn healthy(account: &OpenedAccount) -> bool {
    match account.state {
        AccountState::Ok => true,
        AccountState::Cooling => account.state_until.as_deref().is_none_or(|until| {
            chrono::DateTime::parse_from_rfc3339(until).is_ok_and(|t| t <= Utc::now())
        }),
        AccountState::Expired | AccountState::Challenged => false,
    }
}

/// What the run says when a login-required platform has no healthy account.
pub(super) fn no_account_message(platform: &str, accounts: &[OpenedAccount]) -> String {
    if accounts.is_empty() {
        return format!(
            "no logged-in account for {platform}: markwatch accounts login {platform} NAME"
        );
    }
    let fixes: Vec<String> = accounts
        .iter()
        .map(|a| {
            let state: &str = a.state.into();
            let until = match (&a.state, &a.state_until) {
                (AccountState::Cooling, Some(u)) => format!(" until {u}"),
                _ => String::new(),
            };
            format!(
                "{} is {state}{until} ({})",
                a.name,
                fix_command(platform, &a.name, state)
            )
        })
        .collect();
    format!(
        "paused: needs a person: no logged-in account for {platform}: {}",
        fixes.join("; ")
    )
}

impl Sessions {
    /// One session per account in `accounts` (healthy ones, chosen by the caller), or one
    /// anonymous session when there is none. Each account's pace overrides `policy`'s.
    pub(super) fn new(
        platform: &str,
        policy: &FetchPolicy,
        base_url: Option<&Url>,
        accounts: &[OpenedAccount],
        browser: Option<&BrowserPlan>,
    ) -> Result<Sessions, CrawlError> {
        let slot = |cookies: &[Cookie], proxy: Option<&crate::accounts::ProxyUrl>| {
            browser
                .map(|plan| {
                    let profile = tempfile::Builder::new()
                        .prefix("markwatch-browser-")
                        .tempdir()
                        .map_err(CrawlError::Profile)?;
                    Ok::<_, CrawlError>(BrowserSlot {
                        opts: BrowserOptions {
                            executable: plan.executable.clone(),
                            profile_dir: profile.path().to_owned(),
                            proxy: proxy.cloned(),
                            user_agent: None,
                            tabs: plan.tabs.max(1),
                            page_timeout: plan.page_timeout,
                            headless: true,
                        },
                        cookies: browser_cookies(cookies, base_url),
                        started: tokio::sync::OnceCell::new(),
                        _profile: profile,
                    })
                })
                .transpose()
        };
        let mut all = Vec::new();
        if accounts.is_empty() {
            all.push(session(
                None,
                Fetcher::new(policy.clone())?,
                slot(&[], None)?,
            ));
        }
        for a in accounts {
            let mut policy = policy.clone();
            if let Some(rps) = a.pace.requests_per_second {
                policy.requests_per_second = Some(rps);
            }
            if let Some(n) = a.pace.concurrency {
                policy.concurrency = n.max(1) as usize;
            }
            let identity = Identity {
                cookies: Some(Arc::new(jar(&a.cookies, base_url))),
                proxy: a.proxy.as_ref().map(|p| p.url().to_owned()),
                dns: None,
            };
            let fetcher = Fetcher::with_identity(policy, identity)?;
            let account = AccountRef {
                id: a.id,
                name: a.name.clone(),
            };
            let browser = slot(&a.cookies, a.proxy.as_ref())?;
            all.push(session(Some(account), fetcher, browser));
        }
        Ok(Sessions {
            platform: platform.to_owned(),
            all,
            next: AtomicUsize::new(0),
            stops: Mutex::new(Vec::new()),
        })
    }

    /// The next session in use, round-robin; `None` once every one has stopped.
    pub(super) fn next(&self) -> Option<Arc<Session>> {
        let n = self.all.len();
        for _ in 0..n {
            let at = self.next.fetch_add(1, Ordering::Relaxed) % n;
            let s = &self.all[at];
            if !s.stopped.load(Ordering::SeqCst) {
                return Some(s.clone());
            }
        }
        None
    }

    /// Requests in flight at once over every session.
    pub(super) fn concurrency(&self) -> usize {
        self.all
            .iter()
            .map(|s| s.fetcher.policy().concurrency)
            .sum()
    }

    /// Stops `session` for the rest of the crawl; the first stop of each is recorded.
    /// Returns whether this call stopped it.
    pub(super) fn stop(&self, session: &Session, state: AccountState, url: &str) -> bool {
        if session.stopped.swap(true, Ordering::SeqCst) {
            return false;
        }
        let mut stops = self.stops.lock().unwrap_or_else(|e| e.into_inner());
        stops.push(Stop {
            account: session.account.as_ref().map(|a| a.name.clone()),
            state,
            url: url.to_owned(),
        });
        true
    }

    /// Whether `session` can still fetch: it has not stopped for a person.
    pub(super) fn usable(session: &Session) -> bool {
        !session.stopped.load(Ordering::SeqCst)
    }

    /// Whether every session has stopped for a person.
    pub(super) fn all_stopped(&self) -> bool {
        self.all.iter().all(|s| s.stopped.load(Ordering::SeqCst))
    }

    pub(super) fn anonymous(&self) -> bool {
        self.all.iter().all(|s| s.account.is_none())
    }

    /// What the stops were, for the run's error: each account and the command that fixes it.
    pub(super) fn stops_message(&self) -> Option<String> {
        let stops = self.stops.lock().unwrap_or_else(|e| e.into_inner());
        if stops.is_empty() {
            return None;
        }
        let parts: Vec<String> = stops
            .iter()
            .map(|s| {
                let state: &str = s.state.into();
                match &s.account {
                    Some(name) => format!(
                        "{name} {state} ({})",
                        fix_command(&self.platform, name, state)
                    ),
                    None => format!(
                        "{} showed a challenge at {}; the next run tries again",
                        self.platform, s.url
                    ),
                }
            })
            .collect();
        Some(parts.join("; "))
    }

    /// Ends every browser the crawl started (their profiles go with them).
    pub(super) async fn close(&mut self) {
        for s in &mut self.all {
            if let Some(s) = Arc::get_mut(s)
                && let Some(slot) = s.browser.as_mut()
            {
                slot.close().await;
            }
        }
    }

    /// Records each account's pages of this crawl (pages today, last success).
    pub(super) async fn record(&self, store: &Store) -> Result<(), StoreError> {
        let today = Utc::now().format("%Y-%m-%d").to_string();
        for s in &self.all {
            let Some(account) = &s.account else { continue };
            let pages = s.pages.load(Ordering::Relaxed);
            if pages == 0 {
                continue;
            }
            let read = s.read.load(Ordering::Relaxed) > 0;
            store
                .count_account_pages(account.id, &today, pages, read)
                .await?;
        }
        Ok(())
    }
}

fn session(
    account: Option<AccountRef>,
    fetcher: Fetcher,
    browser: Option<BrowserSlot>,
) -> Arc<Session> {
    Arc::new(Session {
        account,
        fetcher,
        browser,
        stopped: AtomicBool::new(false),
        pages: AtomicU32::new(0),
        read: AtomicU32::new(0),
    })
}

/// An account's cookies for its browser: as they are, or under `base_url` host-only on the
/// base host, as the HTTP jar has them.
fn browser_cookies(cookies: &[Cookie], base_url: Option<&Url>) -> Vec<Cookie> {
    let Some(host) = base_url.and_then(Url::host_str) else {
        return cookies.to_vec();
    };
    cookies
        .iter()
        .map(|c| Cookie {
            domain: host.to_owned(),
            include_subdomains: false,
            path: "/".to_owned(),
            secure: false,
            ..c.clone()
        })
        .collect()
}

/// A cookie jar holding an account's cookies. With a `base_url` (the fixture server, a
/// mirror), the platform's cookies go to its host instead: their domain is rewritten.
fn jar(cookies: &[Cookie], base_url: Option<&Url>) -> Jar {
    let jar = Jar::default();
    let now = Utc::now().timestamp();
    for c in cookies {
        if c.expires.is_some_and(|t| t <= now) {
            continue;
        }
        let path = if c.path.is_empty() { "/" } else { &c.path };
        let (url, attrs) = match base_url {
            // Host-only on the base host, whatever path prefix the base has.
            Some(base) => {
                let mut url = base.clone();
                url.set_path("/");
                (url, "; Path=/".to_owned())
            }
            None => {
                let host = c.domain.trim_start_matches('.');
                let Ok(url) = Url::parse(&format!("https://{host}/")) else {
                    continue;
                };
                let mut attrs = format!("; Path={path}");
                if c.include_subdomains {
                    attrs.push_str(&format!("; Domain={host}"));
                }
                if c.secure {
                    attrs.push_str("; Secure");
                }
                (url, attrs)
            }
        };
        jar.add_cookie_str(&format!("{}={}{attrs}", c.name, c.value), &url);
    }
    jar
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::cookie::CookieStore;

    fn cookie(domain: &str, name: &str, value: &str) -> Cookie {
        Cookie {
            domain: domain.to_owned(),
            include_subdomains: true,
            path: "/".to_owned(),
            secure: true,
            http_only: true,
            expires: None,
            name: name.to_owned(),
            value: value.to_owned(),
        }
    }

    #[test]
    fn cookies_go_to_the_platform_or_to_the_base_host() {
        let cookies = [
            cookie(".jd.com", "thor", "t1"),
            cookie(".jd.com", "pt_key", "k"),
        ];
        let real = jar(&cookies, None);
        let header = real
            .cookies(&Url::parse("https://search.jd.com/Search").unwrap())
            .unwrap();
        assert!(header.to_str().unwrap().contains("thor=t1"));
        let base = Url::parse("http://127.0.0.1:8080/jd").unwrap();
        let mapped = jar(&cookies, Some(&base));
        let header = mapped
            .cookies(&Url::parse("http://127.0.0.1:8080/jd/Search").unwrap())
            .unwrap();
        assert!(header.to_str().unwrap().contains("pt_key=k"));
        assert!(
            mapped
                .cookies(&Url::parse("http://127.0.0.2:8080/jd/Search").unwrap())
                .is_none()
        );
    }

    #[test]
    fn the_message_names_the_command() {
        assert_eq!(
            no_account_message("taobao", &[]),
            "no logged-in account for taobao: markwatch accounts login taobao NAME"
        );
    }
}
