//! The browser fetcher against the modern fixture platforms in a real Chromium: logged-in
//! Taobao search read from the API replies its own script receives, login walls, JD's two
//! halves, the slider (dragged by the test, playing the person), screenshots, crash recovery.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use markwatch::{
    BrowserError, BrowserOptions, BrowserSession, Captured, Cookie, Fault, FixtureMode,
    FixtureOptions, FixtureServer, Load, ModernOptions, ProxyUrl,
};
use reqwest::cookie::{CookieStore, Jar};

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                  Chrome/156.0.0.0 Safari/537.36";

fn chromium(test: &str) -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/chromium");
    common::require(
        test,
        "Chromium",
        p.is_file().then_some(p),
        "apt install chromium",
    )
}

struct Fixtures {
    base: String,
    server: FixtureServer,
}

async fn fixtures(mode: FixtureMode, modern: ModernOptions) -> Fixtures {
    let server = FixtureServer::new(FixtureOptions {
        mode,
        modern,
        scale: 2,
        ..FixtureOptions::from_source_tree()
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(markwatch::serve_fixtures(listener, server.clone()));
    Fixtures {
        base: format!("http://{addr}"),
        server,
    }
}

impl Fixtures {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Logs in over HTTP through the fixture form and returns the session's cookies, as an
    /// exported cookies file would hold them.
    async fn login(&self, path: &str, form: &[(&str, &str)]) -> Vec<Cookie> {
        let jar = Arc::new(Jar::default());
        let c = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let status = c
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 302, "login failed");
        let url = reqwest::Url::parse(&self.base).unwrap();
        let header = jar.cookies(&url).expect("session cookies");
        header
            .to_str()
            .unwrap()
            .split("; ")
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| Cookie {
                domain: "127.0.0.1".into(),
                include_subdomains: false,
                path: "/".into(),
                secure: false,
                http_only: true,
                expires: None,
                name: k.into(),
                value: v.into(),
            })
            .collect()
    }

    async fn taobao_login(&self) -> Vec<Cookie> {
        self.login(
            "/taobao/member/login.jhtml",
            &[
                ("fm-login-id", "tb_watcher_1"),
                ("fm-login-password", "fixture-tb-1"),
            ],
        )
        .await
    }

    async fn jd_login(&self) -> Vec<Cookie> {
        self.login(
            "/jd/new/login.aspx",
            &[("loginname", "jd_watcher_1"), ("nloginpwd", "fixture-jd-1")],
        )
        .await
    }
}

fn options(exe: PathBuf, profile: &std::path::Path, ua: &str, tabs: usize) -> BrowserOptions {
    BrowserOptions {
        executable: Some(exe),
        profile_dir: profile.to_path_buf(),
        proxy: None,
        user_agent: Some(ua.to_string()),
        tabs,
        page_timeout: Duration::from_secs(30),
        headless: true,
    }
}

/// A captured mtop reply that carries listings: what the crawl waits for.
fn has_listings(c: &Captured) -> bool {
    ret(&jsonp(&c.body)).starts_with("SUCCESS")
}

/// A Taobao search page: its mtop replies kept, waiting for the one with the listings.
fn search_load(re: &regex::Regex) -> Load<'_> {
    Load {
        capture: Some(re),
        answers: Some(&has_listings),
        screenshot: false,
        headers: no_headers(),
    }
}

fn mtop_re() -> regex::Regex {
    regex::Regex::new(r"/h5/mtop\.relationrecommend\.wirelessrecommend\.recommend/").unwrap()
}

fn jsonp(body: &[u8]) -> serde_json::Value {
    let text = std::str::from_utf8(body).unwrap();
    let open = text.find('(').expect("JSONP");
    serde_json::from_str(
        text[open + 1..]
            .trim_end()
            .trim_end_matches(';')
            .trim_end_matches(')'),
    )
    .unwrap()
}

fn ret(v: &serde_json::Value) -> &str {
    v["ret"][0].as_str().unwrap_or("")
}

/// Values of an attribute in markup, in order.
fn attr_values(html: &str, attr: &str) -> Vec<String> {
    let key = format!("{attr}=\"");
    html.split(&key)
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

fn no_headers() -> &'static BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    &EMPTY
}

#[tokio::test]
async fn a_logged_in_taobao_search_is_read_from_the_api_reply_its_script_receives() {
    let Some(exe) = chromium("taobao_logged_in") else {
        return;
    };
    let f = fixtures(FixtureMode::Modern, ModernOptions::default()).await;
    let expected: Vec<String> = f
        .server
        .search_results("taobao", "nike")
        .unwrap()
        .iter()
        .take(44)
        .map(|l| l.item_id.clone())
        .collect();
    assert!(!expected.is_empty());
    let profile = tempfile::tempdir().unwrap();
    let b = BrowserSession::launch(options(exe, profile.path(), UA, 1))
        .await
        .unwrap();
    b.set_cookies(&f.taobao_login().await).await.unwrap();
    let re = mtop_re();
    let url = f.url(&FixtureServer::search_path("taobao", "nike", 1).unwrap());
    let got = b.load(&url, &search_load(&re)).await.unwrap();
    assert_eq!(got.page.status, 200);
    assert_eq!(got.page.final_url, url);
    // The first call only fetched the token; the signed second one carried the listings.
    let replies: Vec<serde_json::Value> = got.captures.iter().map(|c| jsonp(&c.body)).collect();
    assert!(
        ret(&replies[0]).starts_with("FAIL_SYS_TOKEN_EMPTY"),
        "{replies:?}"
    );
    let ok = replies
        .iter()
        .find(|r| ret(r).starts_with("SUCCESS"))
        .expect("a SUCCESS reply was captured");
    let ids: Vec<String> = ok["data"]["itemsArray"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, expected);
    let dom = String::from_utf8(got.page.body.clone()).unwrap();
    assert_eq!(attr_values(&dom, "data-nid"), expected, "rendered listings");
    assert!(
        b.cookies()
            .await
            .unwrap()
            .iter()
            .any(|c| c.name == "_m_h5_tk")
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_goes_through_the_accounts_proxy_with_its_credentials() {
    let Some(exe) = chromium("proxy") else {
        return;
    };
    let f = fixtures(FixtureMode::Modern, ModernOptions::default()).await;
    let proxy = common::proxy::Proxy::start(Some(("crawler", "s3cret+pass"))).await;
    let profile = tempfile::tempdir().unwrap();
    let mut opts = options(exe, profile.path(), UA, 1);
    opts.proxy = Some(
        ProxyUrl::parse(&format!(
            "http://crawler:s3cret%2Bpass@127.0.0.1:{}",
            proxy.port
        ))
        .unwrap(),
    );
    let b = BrowserSession::launch(opts).await.unwrap();
    b.set_cookies(&f.taobao_login().await).await.unwrap();
    let re = mtop_re();
    let url = f.url(&FixtureServer::search_path("taobao", "nike", 1).unwrap());
    let got = b.load(&url, &search_load(&re)).await.unwrap();
    assert!(
        got.captures.iter().any(has_listings),
        "{}",
        got.page.final_url
    );
    let seen = proxy.seen();
    assert!(seen.contains(&url), "the page went direct: {seen:?}");
    assert!(
        seen.iter().filter(|u| re.is_match(u)).count() >= 2,
        "the page's API calls went direct: {seen:?}"
    );
    b.close().await;
}

#[tokio::test]
async fn an_anonymous_taobao_search_ends_on_the_login_page() {
    let Some(exe) = chromium("taobao_anonymous") else {
        return;
    };
    let f = fixtures(FixtureMode::Modern, ModernOptions::default()).await;
    let profile = tempfile::tempdir().unwrap();
    let b = BrowserSession::launch(options(exe, profile.path(), UA, 1))
        .await
        .unwrap();
    let re = mtop_re();
    let got = b
        .load(
            &f.url(&FixtureServer::search_path("taobao", "nike", 1).unwrap()),
            &search_load(&re),
        )
        .await
        .unwrap();
    assert!(
        got.page
            .final_url
            .contains("/taobao/member/login.jhtml?redirectURL="),
        "{}",
        got.page.final_url
    );
    assert!(
        !got.captures
            .iter()
            .any(|c| ret(&jsonp(&c.body)).starts_with("SUCCESS"))
    );
    let dom = String::from_utf8(got.page.body).unwrap();
    assert!(dom.contains("fm-login-id") && !dom.contains("data-nid"));
    b.close().await;
}

#[tokio::test]
async fn tmall_signs_in_through_taobaos_login_page() {
    let Some(exe) = chromium("tmall_login") else {
        return;
    };
    let f = fixtures(FixtureMode::Modern, ModernOptions::default()).await;
    // Tmall's definition names Taobao's login URL; a base_url of /tmall maps it here.
    let cookies = f
        .login(
            "/tmall/member/login.jhtml",
            &[
                ("fm-login-id", "tb_watcher_1"),
                ("fm-login-password", "fixture-tb-1"),
            ],
        )
        .await;
    let profile = tempfile::tempdir().unwrap();
    let b = BrowserSession::launch(options(exe, profile.path(), UA, 1))
        .await
        .unwrap();
    b.set_cookies(&cookies).await.unwrap();
    let re = mtop_re();
    let got = b
        .load(
            &f.url(&FixtureServer::search_path("tmall", "nike", 1).unwrap()),
            &search_load(&re),
        )
        .await
        .unwrap();
    assert!(
        got.captures
            .iter()
            .any(|c| ret(&jsonp(&c.body)).starts_with("SUCCESS"))
    );
    b.close().await;
}

#[tokio::test]
async fn a_jd_page_holds_both_halves_once_its_script_has_run() {
    let Some(exe) = chromium("jd_halves") else {
        return;
    };
    let f = fixtures(FixtureMode::Modern, ModernOptions::default()).await;
    let profile = tempfile::tempdir().unwrap();
    let b = BrowserSession::launch(options(exe, profile.path(), UA, 1))
        .await
        .unwrap();
    b.set_cookies(&f.jd_login().await).await.unwrap();
    let got = b
        .load(
            &f.url(&FixtureServer::search_path("jd", "索尼", 1).unwrap()),
            &Load {
                capture: None,
                answers: None,
                screenshot: false,
                headers: no_headers(),
            },
        )
        .await
        .unwrap();
    let dom = String::from_utf8(got.page.body).unwrap();
    let skus: Vec<String> = dom
        .split("<li data-sku=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect();
    let expected: Vec<String> = f
        .server
        .search_results("jd", "索尼")
        .unwrap()
        .iter()
        .take(60)
        .map(|l| l.item_id.clone())
        .collect();
    assert_eq!(expected.len(), 60, "the fixture has two full halves");
    assert_eq!(skus.len(), 60, "both halves rendered");
    assert_eq!(
        skus.iter().collect::<BTreeSet<_>>(),
        expected.iter().collect::<BTreeSet<_>>()
    );
    assert_eq!(dom.matches("class=\"gl-item").count(), 60);
    b.close().await;
}

/// Plays the person: a separate, visible-to-nobody Chromium with the account's cookies and the
/// same User-Agent opens the slider page and drags the knob with the mouse.
async fn drag_the_slider(
    exe: &std::path::Path,
    punish_url: &str,
    cookies: &[Cookie],
) -> Vec<Cookie> {
    let profile = tempfile::tempdir().unwrap();
    let person = BrowserSession::launch(options(exe.to_path_buf(), profile.path(), UA, 1))
        .await
        .unwrap();
    person.set_cookies(cookies).await.unwrap();
    // The person's browser is driven through its own DevTools connection.
    let (browser, mut handler) = {
        let ws = person.devtools_url().await.expect("a DevTools address");
        chromiumoxide::Browser::connect(ws).await.unwrap()
    };
    tokio::spawn(async move { while handler.next().await.is_some() {} });
    let page = browser.new_page(punish_url).await.unwrap();
    page.wait_for_navigation().await.unwrap();
    common::person::drag_slider(&page).await;
    // Passing returns to the search.
    let mut back = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let url = page.url().await.unwrap().unwrap_or_default();
        if !url.contains("_____tmd_____") {
            back = true;
            break;
        }
    }
    assert!(back, "the slider page did not send the person back");
    let url = page.url().await.unwrap().unwrap_or_default();
    assert!(url.contains("/taobao/search?"), "{url}");
    drop(browser);
    let cookies = person.cookies().await.unwrap();
    person.close().await;
    cookies
}

use futures_util::StreamExt as _;

#[tokio::test]
async fn past_the_api_rate_the_search_meets_the_slider_and_a_person_clears_it() {
    let Some(exe) = chromium("slider") else {
        return;
    };
    let f = fixtures(
        FixtureMode::Modern,
        ModernOptions {
            mtop_max_calls: 2,
            ..ModernOptions::default()
        },
    )
    .await;
    let re = mtop_re();
    let want = search_load(&re);
    let search = f.url(&FixtureServer::search_path("taobao", "nike", 1).unwrap());
    let succeeded = |l: &markwatch::Loaded| {
        l.captures
            .iter()
            .any(|c| ret(&jsonp(&c.body)).starts_with("SUCCESS"))
    };
    let profile = tempfile::tempdir().unwrap();
    let b = BrowserSession::launch(options(exe.clone(), profile.path(), UA, 1))
        .await
        .unwrap();
    b.set_cookies(&f.taobao_login().await).await.unwrap();
    assert!(succeeded(&b.load(&search, &want).await.unwrap()));
    assert!(succeeded(&b.load(&search, &want).await.unwrap()));
    let challenged = b.load(&search, &want).await.unwrap();
    assert!(!succeeded(&challenged));
    let punish = challenged.page.final_url.clone();
    assert!(
        punish.contains("/taobao/_____tmd_____/punish?x5secdata="),
        "{punish}"
    );
    // markwatch stops here; the search page itself now sends it to the slider.
    let again = b.load(&search, &want).await.unwrap();
    assert!(again.page.final_url.contains("_____tmd_____/punish"));

    let cookies = b.cookies().await.unwrap();
    b.close().await;
    let cleared = drag_the_slider(&exe, &punish, &cookies).await;
    assert!(
        cleared.iter().any(|c| c.name == "x5sec"),
        "clearance cookie set"
    );

    // The account's session with the clearance: the search succeeds again.
    let profile = tempfile::tempdir().unwrap();
    let b = BrowserSession::launch(options(exe.clone(), profile.path(), UA, 1))
        .await
        .unwrap();
    b.set_cookies(&cleared).await.unwrap();
    let ok = b.load(&search, &want).await.unwrap();
    assert!(succeeded(&ok), "{}", ok.page.final_url);
    b.close().await;

    // The same cookies under another User-Agent are challenged again.
    let profile = tempfile::tempdir().unwrap();
    let other = BrowserSession::launch(options(
        exe,
        profile.path(),
        &UA.replace("Chrome/156", "Chrome/155"),
        1,
    ))
    .await
    .unwrap();
    other.set_cookies(&cleared).await.unwrap();
    let got = other.load(&search, &want).await.unwrap();
    assert!(!succeeded(&got));
    assert!(
        got.page.final_url.contains("_____tmd_____/punish"),
        "{}",
        got.page.final_url
    );
    other.close().await;
}

#[tokio::test]
async fn a_screenshot_is_a_full_page_png() {
    let Some(exe) = chromium("screenshot") else {
        return;
    };
    let f = fixtures(FixtureMode::Modern, ModernOptions::default()).await;
    let profile = tempfile::tempdir().unwrap();
    let b = BrowserSession::launch(options(exe, profile.path(), UA, 1))
        .await
        .unwrap();
    b.set_cookies(&f.jd_login().await).await.unwrap();
    let got = b
        .load(
            &f.url(&FixtureServer::search_path("jd", "索尼", 1).unwrap()),
            &Load {
                capture: None,
                answers: None,
                screenshot: true,
                headers: no_headers(),
            },
        )
        .await
        .unwrap();
    let png = got.screenshot.expect("a screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert!(width > 0);
    assert!(height > 768, "full page, not the viewport: {height}px");
    b.close().await;
}

/// Serves one page to every request on 127.0.0.1; returns its URL.
async fn serve_page(html: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/tall", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    html.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(html.as_bytes()).await;
            });
        }
    });
    url
}

/// A page far taller than the cap: taken in strips, stitched without seams, cut at
/// `SCREENSHOT_MAX_HEIGHT`.
#[tokio::test]
async fn a_tall_page_is_taken_in_strips_and_cut_at_the_cap() {
    let Some(exe) = chromium("tall screenshot") else {
        return;
    };
    // Red at the top turning blue at 20,000 px.
    let url = serve_page(
        "<!doctype html><html><body style=\"margin:0\"><div style=\"height:20000px;\
         background:linear-gradient(#ff0000,#0000ff)\"></div></body></html>",
    )
    .await;
    let profile = tempfile::tempdir().unwrap();
    let b = BrowserSession::launch(options(exe, profile.path(), UA, 1))
        .await
        .unwrap();
    let got = b
        .load(
            &url,
            &Load {
                capture: None,
                answers: None,
                screenshot: true,
                headers: no_headers(),
            },
        )
        .await
        .unwrap();
    b.close().await;
    let png = image::load_from_memory_with_format(
        &got.screenshot.expect("a screenshot"),
        image::ImageFormat::Png,
    )
    .unwrap()
    .into_rgb8();
    let cap = markwatch::SCREENSHOT_MAX_HEIGHT as u32;
    assert_eq!(png.height(), cap, "cut at the cap");
    let at = |y: u32| png.get_pixel(10, y).0;
    assert!(
        at(0)[0] > 240 && at(0)[2] < 15,
        "red at the top: {:?}",
        at(0)
    );
    // 60% of the way down the gradient: mostly red turning blue, as one capture would show.
    let bottom = at(cap - 1);
    assert!(
        (bottom[0] as i32 - 102).abs() < 12 && (bottom[2] as i32 - 153).abs() < 12,
        "{bottom:?}"
    );
    // Every seam between strips continues the gradient (which Chromium dithers by a step or
    // two): no blank, shifted or repeated strip.
    for y in (100..cap - 100).filter(|y| y % 500 == 0) {
        let (above, below) = (at(y - 1), at(y));
        let near = above
            .iter()
            .zip(below)
            .all(|(a, b)| (*a as i32 - b as i32).abs() <= 4);
        assert!(near, "row {y}: {above:?} then {below:?}");
        assert!(
            at(y + 100)[2] > at(y - 100)[2],
            "row {y}: the gradient goes on"
        );
    }
}

#[tokio::test]
async fn a_chromium_crash_fails_the_load_retryably_and_the_next_load_relaunches_it() {
    let Some(exe) = chromium("crash") else {
        return;
    };
    let f = fixtures(FixtureMode::Modern, ModernOptions::default()).await;
    let slow = FixtureServer::search_path("amazon_cn", "nike", 1).unwrap();
    f.server.script(&slow, [Fault::Slow { ms: 20_000 }]);
    let profile = tempfile::tempdir().unwrap();
    let b = Arc::new(
        BrowserSession::launch(options(exe, profile.path(), UA, 2))
            .await
            .unwrap(),
    );
    let pid = b.pid().await.expect("Chromium's pid");
    let loading = {
        let b = b.clone();
        let url = f.url(&slow);
        tokio::spawn(async move {
            b.load(
                &url,
                &Load {
                    capture: None,
                    answers: None,
                    screenshot: false,
                    headers: no_headers(),
                },
            )
            .await
        })
    };
    // While the page is being served (it takes 20 s), Chromium dies.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!loading.is_finished(), "the slow page finished early");
    // SAFETY: kill(2) on the pid of the Chromium this test launched.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let err = loading.await.unwrap().expect_err("the load must fail");
    assert!(matches!(err, BrowserError::Crashed { .. }), "{err:?}");
    assert!(err.is_retryable());

    let page = FixtureServer::search_path("amazon_cn", "nike", 2).unwrap();
    let got = b
        .load(
            &f.url(&page),
            &Load {
                capture: None,
                answers: None,
                screenshot: false,
                headers: no_headers(),
            },
        )
        .await
        .expect("relaunched on the same profile");
    assert_eq!(got.page.status, 200);
    assert!(b.pid().await.is_some_and(|p| p != pid));
}

#[tokio::test]
async fn a_missing_chromium_names_the_package_to_install() {
    let profile = tempfile::tempdir().unwrap();
    let err = BrowserSession::launch(options(
        PathBuf::from("/nonexistent/chromium"),
        profile.path(),
        UA,
        1,
    ))
    .await
    .err()
    .expect("no browser there");
    assert!(matches!(err, BrowserError::NotInstalled { .. }), "{err:?}");
    assert!(err.to_string().contains("apt install chromium"), "{err}");
    assert!(!err.is_retryable());
}

/// Time per page, 1 and 4 tabs, on the Taobao shell and on a classic static page:
/// `cargo test --test browser_fetch -- --ignored --nocapture per_page_times`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test"]
async fn per_page_times() {
    let Some(exe) = chromium("per_page_times") else {
        return;
    };
    let modern = fixtures(
        FixtureMode::Modern,
        ModernOptions {
            mtop_max_calls: 1_000_000,
            session_max_requests: 1_000_000,
            ..ModernOptions::default()
        },
    )
    .await;
    let classic = fixtures(FixtureMode::Classic, ModernOptions::default()).await;
    let cookies = modern.taobao_login().await;
    let re = mtop_re();
    for tabs in [1usize, 4] {
        for (name, f, capture) in [
            ("taobao shell", &modern, Some(&re)),
            ("classic static", &classic, None),
        ] {
            let profile = tempfile::tempdir().unwrap();
            let b = Arc::new(
                BrowserSession::launch(options(exe.clone(), profile.path(), UA, tabs))
                    .await
                    .unwrap(),
            );
            b.set_cookies(&cookies).await.unwrap();
            let urls: Vec<String> = (1..=48u32)
                .map(|p| f.url(&FixtureServer::search_path("taobao", "nike", p % 4 + 1).unwrap()))
                .collect();
            let started = std::time::Instant::now();
            let mut tasks = Vec::new();
            for url in urls {
                let b = b.clone();
                let re = capture.cloned();
                tasks.push(tokio::spawn(async move {
                    let t = std::time::Instant::now();
                    b.load(
                        &url,
                        &Load {
                            capture: re.as_ref(),
                            answers: Some(&has_listings),
                            screenshot: false,
                            headers: no_headers(),
                        },
                    )
                    .await
                    .unwrap();
                    t.elapsed()
                }));
            }
            let mut times = Vec::new();
            for t in tasks {
                times.push(t.await.unwrap());
            }
            let wall = started.elapsed();
            times.sort();
            println!(
                "{name}, {tabs} tab(s): median load {:?}, {:.1} pages/s over {} pages",
                times[times.len() / 2],
                times.len() as f64 / wall.as_secs_f64(),
                times.len()
            );
        }
    }
}
