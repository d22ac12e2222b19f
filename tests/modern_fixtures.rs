//! Modern mode of the fixture platforms over real HTTP: logins, expiring sessions, JD's two
//! half pages, Amazon.cn's robot check, Taobao's signed mtop API and its slider.
//! (The slider's JavaScript drag in a real Chromium is for the browser-fetcher session.)

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use markwatch::{
    Fault, FixtureMode, FixtureOptions, FixtureServer, MTOP_APP_KEY, MTOP_SEARCH_API,
    ModernOptions, mtop_sign,
};
use reqwest::cookie::{CookieStore, Jar};

struct Modern {
    base: String,
    jar: Arc<Jar>,
}

async fn start(modern: ModernOptions, faults: Vec<Fault>) -> Modern {
    let server = FixtureServer::new(FixtureOptions {
        mode: FixtureMode::Modern,
        modern,
        faults,
        scale: 2,
        ..FixtureOptions::from_source_tree()
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(markwatch::serve_fixtures(listener, server));
    Modern {
        base: format!("http://{addr}"),
        jar: Arc::new(Jar::default()),
    }
}

impl Modern {
    fn client(&self, ua: &str) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_provider(self.jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(ua)
            .build()
            .unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn cookie(&self, name: &str) -> Option<String> {
        let url = reqwest::Url::parse(&self.base).unwrap();
        let header = self.jar.cookies(&url)?;
        header.to_str().unwrap().split("; ").find_map(|kv| {
            kv.split_once('=')
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    async fn get(&self, c: &reqwest::Client, path: &str) -> (u16, String, String) {
        let resp = c.get(self.url(path)).send().await.unwrap();
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = resp.bytes().await.unwrap();
        let (text, _, _) = encoding_rs::GB18030.decode(&bytes);
        (status, location, text.into_owned())
    }

    async fn login(&self, c: &reqwest::Client, path: &str, form: &[(&str, &str)]) -> u16 {
        c.post(self.url(path))
            .form(form)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

const TAOBAO_LOGIN: &str = "/taobao/member/login.jhtml";
const JD_LOGIN: &str = "/jd/new/login.aspx";

fn taobao_search() -> String {
    FixtureServer::search_path("taobao", "nike", 1).unwrap()
}

#[tokio::test]
async fn anonymous_search_meets_the_login_wall_and_a_fixture_account_passes_it() {
    let m = start(ModernOptions::default(), Vec::new()).await;
    let c = m.client("test-browser");
    let search = taobao_search();
    let (status, location, _) = m.get(&c, &search).await;
    assert_eq!(status, 302);
    assert!(
        location.starts_with(&format!("{TAOBAO_LOGIN}?redirectURL=")),
        "{location}"
    );

    let (status, _, page) = m.get(&c, &location).await;
    assert_eq!(status, 200);
    assert!(page.contains("name=\"fm-login-id\"") && page.contains("J_QRCodeLogin"));

    let wrong = [
        ("fm-login-id", "tb_watcher_1"),
        ("fm-login-password", "not-it"),
        ("redirectURL", search.as_str()),
    ];
    assert_eq!(m.login(&c, TAOBAO_LOGIN, &wrong).await, 200);
    assert_eq!(m.cookie("cookie2"), None);
    assert_eq!(m.get(&c, &search).await.0, 302);

    let right = [
        ("fm-login-id", "tb_watcher_1"),
        ("fm-login-password", "fixture-tb-1"),
        ("redirectURL", search.as_str()),
    ];
    assert_eq!(m.login(&c, TAOBAO_LOGIN, &right).await, 302);
    for name in ["cookie2", "_tb_token_", "unb"] {
        assert!(m.cookie(name).is_some(), "{name} not set");
    }
    let (status, _, page) = m.get(&c, &search).await;
    assert_eq!(status, 200);
    // A shell: the listings come only from the API.
    assert!(page.contains(MTOP_SEARCH_API) && !page.contains("item.htm?id="));
}

async fn jd_login(m: &Modern, c: &reqwest::Client) {
    let form = [("loginname", "jd_watcher_1"), ("nloginpwd", "fixture-jd-1")];
    assert_eq!(m.login(c, JD_LOGIN, &form).await, 302);
    assert!(m.cookie("thor").is_some() && m.cookie("pt_key").is_some());
}

#[tokio::test]
async fn sessions_expire_after_their_requests_and_their_time() {
    let m = start(
        ModernOptions {
            session_max_requests: 2,
            ..ModernOptions::default()
        },
        Vec::new(),
    )
    .await;
    let c = m.client("test-browser");
    jd_login(&m, &c).await;
    let search = FixtureServer::search_path("jd", "索尼", 1).unwrap();
    assert_eq!(m.get(&c, &search).await.0, 200);
    assert_eq!(m.get(&c, &search).await.0, 200);
    let (status, location, _) = m.get(&c, &search).await;
    assert_eq!(status, 302);
    assert!(location.starts_with(JD_LOGIN), "{location}");

    let m = start(
        ModernOptions {
            session_ttl: Duration::from_secs(1),
            ..ModernOptions::default()
        },
        Vec::new(),
    )
    .await;
    let c = m.client("test-browser");
    jd_login(&m, &c).await;
    assert_eq!(m.get(&c, &search).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(m.get(&c, &search).await.0, 302);
}

fn skus(html: &str) -> Vec<String> {
    html.split("<li data-sku=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn jd_pages_come_in_two_halves_and_the_second_needs_the_referer() {
    let m = start(ModernOptions::default(), Vec::new()).await;
    let c = m.client("test-browser");
    jd_login(&m, &c).await;
    let search = FixtureServer::search_path("jd", "索尼", 1).unwrap();
    let (status, _, page) = m.get(&c, &search).await;
    assert_eq!(status, 200);
    let first = skus(&page);
    assert_eq!(first.len(), 30);
    assert!(page.contains("s_new.php"));

    let second_path = format!(
        "/jd/s_new.php?keyword=%E7%B4%A2%E5%B0%BC&enc=utf-8&page=2&s=31&scrolling=y&show_items={}",
        first.join(",")
    );
    let (status, _, body) = m.get(&c, &second_path).await;
    assert_eq!(status, 200);
    assert!(skus(&body).is_empty(), "no Referer must give nothing");
    let wrong = c
        .get(m.url(&second_path))
        .header("Referer", m.url("/jd/100012345.html"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(skus(&wrong).is_empty(), "a wrong Referer must give nothing");

    let body = c
        .get(m.url(&second_path))
        .header("Referer", m.url(&search))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let second = skus(&body);
    assert_eq!(second.len(), 30);
    let all: HashSet<&String> = first.iter().chain(&second).collect();
    assert_eq!(all.len(), 60);
}

#[tokio::test]
async fn an_amazon_burst_earns_the_robot_check() {
    let m = start(
        ModernOptions {
            burst_limit: 3,
            burst_window: Duration::from_secs(600),
            ..ModernOptions::default()
        },
        Vec::new(),
    )
    .await;
    let c = m.client("test-browser");
    let search = FixtureServer::search_path("amazon_cn", "nike", 1).unwrap();
    for _ in 0..3 {
        let (status, _, page) = m.get(&c, &search).await;
        assert_eq!(status, 200);
        assert!(!page.contains("validateCaptcha"));
    }
    let (_, _, page) = m.get(&c, &search).await;
    assert!(page.contains("/errors/validateCaptcha") && page.contains("Type the characters"));
    // It lasts: the next request is checked too.
    assert!(m.get(&c, &search).await.2.contains("validateCaptcha"));
}

/// Calls the mtop search API; returns the JSONP text.
async fn mtop(m: &Modern, c: &reqwest::Client, data: &str, sign: Option<&str>) -> String {
    let token = m
        .cookie("_m_h5_tk")
        .map(|v| v.split('_').next().unwrap().to_string())
        .unwrap_or_default();
    let t = "1764700000000";
    let sign = sign.map_or_else(|| mtop_sign(&token, t, MTOP_APP_KEY, data), str::to_string);
    let url = reqwest::Url::parse_with_params(
        &m.url(&format!("/taobao/h5/{MTOP_SEARCH_API}/2.0/")),
        &[
            ("jsv", "2.6.1"),
            ("appKey", MTOP_APP_KEY),
            ("t", t),
            ("sign", &sign),
            ("api", MTOP_SEARCH_API),
            ("v", "2.0"),
            ("type", "jsonp"),
            ("dataType", "jsonp"),
            ("callback", "mtopjsonp1"),
            ("data", data),
        ],
    )
    .unwrap();
    c.get(url).send().await.unwrap().text().await.unwrap()
}

fn jsonp(text: &str) -> serde_json::Value {
    let inner = text
        .strip_prefix("mtopjsonp1(")
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not JSONP: {text}"));
    serde_json::from_str(inner).unwrap()
}

fn ret(v: &serde_json::Value) -> String {
    v["ret"][0].as_str().unwrap().to_string()
}

#[tokio::test]
async fn taobao_listings_come_from_a_signed_api_and_heavy_use_meets_the_slider() {
    let m = start(
        ModernOptions {
            mtop_max_calls: 2,
            ..ModernOptions::default()
        },
        Vec::new(),
    )
    .await;
    let a = m.client("browser-A");
    let form = [
        ("fm-login-id", "tb_watcher_2"),
        ("fm-login-password", "fixture-tb-2"),
    ];
    assert_eq!(m.login(&a, TAOBAO_LOGIN, &form).await, 302);
    let data = r#"{"q":"nike","s":0,"n":44}"#;

    let first = jsonp(&mtop(&m, &a, data, None).await);
    assert!(ret(&first).starts_with("FAIL_SYS_TOKEN_EMPTY"), "{first}");
    let tk = m.cookie("_m_h5_tk").expect("_m_h5_tk set");
    let (token, expiry) = tk.rsplit_once('_').unwrap();
    assert!(!token.is_empty() && expiry.parse::<u64>().is_ok(), "{tk}");

    let bad = jsonp(&mtop(&m, &a, data, Some("0123abcd")).await);
    assert!(ret(&bad).starts_with("FAIL_SYS_ILLEGAL_ACCESS"), "{bad}");

    let ok = jsonp(&mtop(&m, &a, data, None).await);
    assert!(ret(&ok).starts_with("SUCCESS"), "{ok}");
    let items = ok["data"]["itemsArray"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().all(|i| i["item_id"].is_string()));

    assert!(ret(&jsonp(&mtop(&m, &a, data, None).await)).starts_with("SUCCESS"));
    let over = jsonp(&mtop(&m, &a, data, None).await);
    assert!(ret(&over).starts_with("FAIL_SYS_USER_VALIDATE"), "{over}");
    let punish = over["data"]["url"].as_str().unwrap().to_string();
    assert!(punish.starts_with("/taobao/_____tmd_____/punish?x5secdata="));

    // The search page sends the challenged session to the slider too.
    let (status, location, _) = m.get(&a, &taobao_search()).await;
    assert_eq!(status, 302);
    assert!(
        location.contains("/_____tmd_____/punish?x5secdata="),
        "{location}"
    );
    let (status, _, slider) = m.get(&a, &punish).await;
    assert_eq!(status, 200);
    assert!(slider.contains("nc_1_n1z") && slider.contains("pointermove"));

    let x5secdata = punish
        .split("x5secdata=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let verify = |slide: &str| {
        reqwest::Url::parse_with_params(
            &m.url("/taobao/_____tmd_____/slide"),
            &[("x5secdata", x5secdata), ("slidedata", slide)],
        )
        .unwrap()
    };
    let short: serde_json::Value = a
        .get(verify(r#"{"x":100,"w":258,"n":5}"#))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(short["code"], 0);
    assert_eq!(m.cookie("x5sec"), None);
    let passed: serde_json::Value = a
        .get(verify(r#"{"x":258,"w":258,"n":12}"#))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(passed["code"], 0);

    // The clearance works only with the User-Agent that passed the slider.
    let b = m.client("browser-B");
    let other = jsonp(&mtop(&m, &b, data, None).await);
    assert!(ret(&other).starts_with("FAIL_SYS_USER_VALIDATE"), "{other}");
    let same = jsonp(&mtop(&m, &a, data, None).await);
    assert!(ret(&same).starts_with("SUCCESS"), "{same}");
}

#[tokio::test]
async fn faults_still_apply_on_top_of_modern_mode() {
    let m = start(
        ModernOptions::default(),
        vec![Fault::TooManyRequests {
            retry_after_secs: 7,
        }],
    )
    .await;
    let c = m.client("test-browser");
    jd_login(&m, &c).await;
    let search = FixtureServer::search_path("jd", "索尼", 1).unwrap();
    let resp = c.get(m.url(&search)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    assert_eq!(m.get(&c, &search).await.0, 200);
}
