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
use crate::fetch::{FetchPolicy, Fetcher, Identity};
use crate::model::alert::fix_command;
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
    stopped: AtomicBool,
    /// Pages fetched, and those read (not a wall), to record on the account.
    pages: AtomicU32,
    read: AtomicU32,
}

impl Session {
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
    ) -> Result<Sessions, CrawlError> {
        let mut all = Vec::new();
        if accounts.is_empty() {
            all.push(session(None, Fetcher::new(policy.clone())?));
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
            };
            let fetcher = Fetcher::with_identity(policy, identity)?;
            let account = AccountRef {
                id: a.id,
                name: a.name.clone(),
            };
            all.push(session(Some(account), fetcher));
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

fn session(account: Option<AccountRef>, fetcher: Fetcher) -> Arc<Session> {
    Arc::new(Session {
        account,
        fetcher,
        stopped: AtomicBool::new(false),
        pages: AtomicU32::new(0),
        read: AtomicU32::new(0),
    })
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
