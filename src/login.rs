//! `accounts login`: a person logs in to a platform account in a real Chromium, on a fresh
//! profile, and markwatch captures the session's cookies once the platform shows a
//! logged-in page. markwatch never types a password and never touches a slider or captcha: the
//! person does, in the window or through remote debugging.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chromiumoxide::auth::Credentials;
use chromiumoxide::cdp::browser_protocol::network::SetUserAgentOverrideParams;
use chromiumoxide::cdp::browser_protocol::storage::SetCookiesParams;
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures_util::StreamExt as _;
use url::Url;

use crate::accounts::{Cookie, ProxyUrl};
use crate::extract::detect_block;
use crate::fetch::browser::{find_chromium, from_cdp, to_cdp};
use crate::platform::PlatformDef;

/// How often the page is looked at while the person logs in.
const POLL: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(
        "{platform}'s definition ({}) has no [login] section, so there is nothing to log in to; \
         {platform} is crawled without an account",
        file.display()
    )]
    NoLogin { platform: String, file: PathBuf },
    #[error(
        "no display here (neither DISPLAY nor WAYLAND_DISPLAY is set) for Chromium's window. On a \
         server, run with `--remote-debugging PORT` and reach the browser from your desktop \
         through an SSH tunnel: `ssh -L PORT:127.0.0.1:PORT user@server`, then open \
         chrome://inspect, Configure… → localhost:PORT, and inspect the page"
    )]
    NoDisplay,
    #[error(transparent)]
    NoChromium(#[from] crate::fetch::browser::BrowserError),
    #[error("cannot create the browser profile {}: {source}", dir.display())]
    Profile {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "Chromium cannot give a user name and password to a SOCKS proxy ({proxy}); log in \
         through an http:// or https:// proxy (--proxy), or export the session from a browser \
         and `accounts import` it"
    )]
    SocksCredentials { proxy: String },
    #[error("Chromium failed: {0}")]
    Browser(String),
    #[error("Chromium was closed before the login finished; nothing was stored")]
    Closed,
    #[error(
        "no login within {secs} s (still waiting for the cookies {waiting} and a page that is \
         not a login or challenge page); nothing was stored"
    )]
    TimedOut { secs: u64, waiting: String },
}

impl From<chromiumoxide::error::CdpError> for LoginError {
    fn from(e: chromiumoxide::error::CdpError) -> Self {
        LoginError::Browser(e.to_string())
    }
}

/// How the person reaches the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowserView {
    /// A window on this machine's display.
    Window,
    /// Headless, its DevTools on 127.0.0.1:PORT (reached through an SSH tunnel).
    RemoteDebugging(u16),
}

impl BrowserView {
    /// Remote debugging when asked for; else a window when there is a display; else refused.
    pub fn choose(remote_debugging: Option<u16>, has_display: bool) -> Result<Self, LoginError> {
        match (remote_debugging, has_display) {
            (Some(port), _) => Ok(BrowserView::RemoteDebugging(port)),
            (None, true) => Ok(BrowserView::Window),
            (None, false) => Err(LoginError::NoDisplay),
        }
    }

    /// Whether this process's environment has a display.
    pub fn env_has_display() -> bool {
        ["DISPLAY", "WAYLAND_DISPLAY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
    }
}

/// How to reach a headless browser's DevTools from a desktop, for the person.
pub fn tunnel_instructions(port: u16) -> String {
    format!(
        "Chromium is listening for DevTools on 127.0.0.1:{port} (this machine only).\n\
         From your desktop:\n\
         \x20 1. ssh -L {port}:127.0.0.1:{port} user@server\n\
         \x20 2. open chrome://inspect in Chrome or Chromium, Configure… → add localhost:{port}\n\
         \x20 3. under Remote Target, click `inspect` on the page, and log in (or pass the check) there"
    )
}

/// The page the person starts on: with `resume`, the challenge the account was stopped on;
/// else (or when the account has none) the definition's `[login] url`, mapped through the
/// config's `base_url`.
pub fn start_url(
    def: &PlatformDef,
    base: Option<&Url>,
    resume_url: Option<&str>,
) -> Result<String, LoginError> {
    let login = def.login.as_ref().ok_or_else(|| LoginError::NoLogin {
        platform: def.platform.clone(),
        file: def.source.clone(),
    })?;
    if let Some(url) = resume_url.filter(|u| !u.is_empty()) {
        return Ok(match base {
            // Stored from a crawl through base_url: a path on the fixture or proxy host.
            Some(base) if url.starts_with('/') => {
                base.join(url).map_or(url.to_owned(), String::from)
            }
            _ => url.to_owned(),
        });
    }
    Ok(PlatformDef::fetch_url(&login.url, base))
}

/// The User-Agent an account always sends: the browser's own, with `HeadlessChrome` said as
/// `Chrome`, so headless and headed runs send the same one (Taobao ties its clearance cookie to
/// the User-Agent).
pub(crate) fn account_user_agent(browser_ua: &str) -> String {
    browser_ua.replace("HeadlessChrome", "Chrome")
}

/// What a login run needs.
pub struct LoginRun<'a> {
    pub def: &'a PlatformDef,
    /// `crawl.browser.executable`, if set.
    pub executable: Option<&'a Path>,
    /// The config's `platforms.<name>.base_url`.
    pub base: Option<&'a Url>,
    pub url: String,
    pub view: BrowserView,
    pub proxy: Option<&'a ProxyUrl>,
    /// Put in the browser before the page opens (`--resume`: the stored session the challenge
    /// belongs to).
    pub cookies: &'a [Cookie],
    pub timeout: Duration,
}

/// Opens Chromium on `run.url` and waits for the person: done when every `[login]
/// session_cookies` cookie is set for the platform and the page has moved on from the one
/// opened to one that is no wall by the definition's `[[blocked]]` markers. Returns every
/// cookie the browser holds (the caller keeps the platform's). `on_ready` is called once the
/// page is open.
pub async fn capture_session(
    run: &LoginRun<'_>,
    on_ready: impl FnOnce(),
) -> Result<Vec<Cookie>, LoginError> {
    let login = run.def.login.as_ref().ok_or_else(|| LoginError::NoLogin {
        platform: run.def.platform.clone(),
        file: run.def.source.clone(),
    })?;
    if let Some(p) = run
        .proxy
        .filter(|p| p.is_socks() && p.credentials().is_some())
    {
        return Err(LoginError::SocksCredentials {
            proxy: p.to_string(),
        });
    }
    let chromium = find_chromium(run.executable)?;
    // A fresh profile, gone when the run ends: the session is kept sealed in the store, never
    // in a Chromium cookie database on disk (--resume puts the stored one in the browser).
    let profile = tempfile::Builder::new()
        .prefix("markwatch-login-")
        .tempdir()
        .map_err(|source| LoginError::Profile {
            dir: std::env::temp_dir(),
            source,
        })?;

    // The launch flags the crawl's browser uses too; without the background-networking ones a
    // closed network refuses Chromium's own connections. chromiumoxide adds `--` to each key.
    let mut config = BrowserConfig::builder()
        .chrome_executable(&chromium)
        // Not chromiumoxide's defaults: `--enable-automation` and friends mark the browser as
        // driven, which the person's login must not be.
        .disable_default_args()
        .no_sandbox()
        .user_data_dir(profile.path())
        .launch_timeout(Duration::from_secs(30))
        .args([
            "disable-gpu",
            "disable-quic",
            "no-first-run",
            "disable-background-networking",
            "disable-component-update",
            "disable-sync",
        ]);
    if let Some(proxy) = run.proxy {
        // Chromium's socks5 resolves names through the proxy already.
        let server = proxy.to_string().replace("socks5h://", "socks5://");
        config = config.arg(("proxy-server", server.as_str()));
    }
    config = match run.view {
        BrowserView::Window => config.with_head().viewport(None),
        BrowserView::RemoteDebugging(port) => config
            .new_headless_mode()
            .port(port)
            .arg(("remote-debugging-address", "127.0.0.1")),
    };
    let config = config.build().map_err(LoginError::Browser)?;
    let (mut browser, mut handler) = Browser::launch(config).await?;
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });

    let outcome = async {
        let ua = account_user_agent(&browser.version().await?.user_agent);
        let page = browser.new_page("about:blank").await?;
        page.set_user_agent(SetUserAgentOverrideParams::new(ua))
            .await?;
        if let Some((username, password)) = run.proxy.and_then(ProxyUrl::credentials) {
            page.authenticate(Credentials { username, password }).await?;
        }
        if !run.cookies.is_empty() {
            // Through the browser: a page still on about:blank takes no cookie.
            browser
                .execute(SetCookiesParams::new(run.cookies.iter().map(to_cdp).collect()))
                .await?;
        }
        if let Err(e) = page.goto(run.url.as_str()).await {
            tracing::warn!(url = %run.url, error = %e, "the page did not open; the person may reload it");
        }
        on_ready();
        let wait = wait_for_login(&page, run, &login.session_cookies);
        tokio::select! {
            r = tokio::time::timeout(run.timeout, wait) => match r {
                Ok(r) => r,
                Err(_) => Err(LoginError::TimedOut {
                    secs: run.timeout.as_secs(),
                    waiting: login.session_cookies.join(", "),
                }),
            },
            _ = wait_closed(&events) => Err(LoginError::Closed),
        }
    }
    .await;
    let _ = browser.close().await;
    let _ = browser.wait().await;
    events.abort();
    outcome
}

async fn wait_closed(events: &tokio::task::JoinHandle<()>) {
    while !events.is_finished() {
        tokio::time::sleep(POLL).await;
    }
}

async fn wait_for_login(
    page: &Page,
    run: &LoginRun<'_>,
    session_cookies: &[String],
) -> Result<Vec<Cookie>, LoginError> {
    let opened = without_fragment(&run.url);
    let domains = crate::accounts::platform_domains_with_base(run.def, run.base);
    loop {
        tokio::time::sleep(POLL).await;
        // Errors while the page navigates are passing: look again.
        let Ok(cdp) = page.get_cookies().await else {
            continue;
        };
        let all: Vec<Cookie> = cdp.iter().map(from_cdp).collect();
        let present = session_cookies.iter().all(|name| {
            all.iter()
                .any(|c| c.name == *name && crate::accounts::belongs(&c.domain, &domains))
        });
        if !present {
            continue;
        }
        let Ok(Some(url)) = page.url().await else {
            continue;
        };
        if without_fragment(&url) == opened || !url.starts_with("http") {
            continue;
        }
        let Ok(html) = page.content().await else {
            continue;
        };
        if detect_block(run.def, &html).is_none() {
            return Ok(all);
        }
    }
}

fn without_fragment(url: &str) -> &str {
    url.split('#').next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_user_agent_headless_or_not() {
        let headless = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                        HeadlessChrome/156.0.0.0 Safari/537.36";
        let headed = headless.replace("HeadlessChrome", "Chrome");
        assert_eq!(account_user_agent(headless), headed);
        assert_eq!(account_user_agent(&headed), headed);
    }

    #[test]
    fn view_needs_a_display_or_remote_debugging() {
        assert_eq!(
            BrowserView::choose(Some(9222), true).unwrap(),
            BrowserView::RemoteDebugging(9222)
        );
        assert_eq!(
            BrowserView::choose(None, true).unwrap(),
            BrowserView::Window
        );
        let err = BrowserView::choose(None, false).unwrap_err().to_string();
        assert!(
            err.contains("--remote-debugging") && err.contains("ssh -L"),
            "{err}"
        );
    }
}
