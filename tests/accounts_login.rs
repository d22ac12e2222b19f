//! `markwatch accounts login` through the real binary and a real Chromium, against the modern
//! fixture platforms on loopback. The test plays the person: it reaches the headless browser
//! through `--remote-debugging`, as a person would through an SSH tunnel and chrome://inspect,
//! and types into the fixture's login form or drags the fixture's slider.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::Arc;

use chromiumoxide::Page;
use common::{Scratch, repo};
use markwatch::{
    FixtureMode, FixtureOptions, FixtureServer, MTOP_APP_KEY, MTOP_SEARCH_API, ModernOptions,
    SecretKey, Store, default_key_file, mtop_sign, open_accounts,
};
use reqwest::cookie::{CookieStore, Jar};

const CHROMIUM: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const LOGIN_PATH: &str = "/taobao/member/login.jhtml";

fn chromium(test: &str) -> Option<PathBuf> {
    common::require(
        test,
        "chromium",
        CHROMIUM.iter().map(PathBuf::from).find(|p| p.exists()),
        "apt-get install -y chromium",
    )
}

/// A scratch database with a config pointing every platform at an in-process modern fixture
/// server.
struct Setup {
    s: Scratch,
    base: String,
}

async fn setup(modern: ModernOptions) -> Setup {
    let server = FixtureServer::new(FixtureOptions {
        mode: FixtureMode::Modern,
        modern,
        scale: 2,
        ..FixtureOptions::from_source_tree()
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(markwatch::serve_fixtures(listener, server));
    let s = Scratch::new();
    let mut config = format!(
        "[crawl]\ndefinitions = \"{}\"\n",
        repo().join("crawlers").display()
    );
    for p in common::PLATFORMS {
        config.push_str(&format!("[platforms.{p}]\nbase_url = \"{base}/{p}\"\n"));
    }
    s.write("markwatch.toml", &config);
    Setup { s, base }
}

impl Setup {
    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = self.s.command();
        cmd.arg("--config")
            .arg(self.s.path("markwatch.toml"))
            .args(args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).spawn().unwrap()
    }

    /// The accounts as the binary lists them.
    fn list(&self) -> serde_json::Value {
        let out = self.run(&["accounts", "list", "--json"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The stored cookies of an account, unsealed with the key the binary made.
    async fn stored(&self, name: &str) -> markwatch::OpenedAccount {
        let db = self.s.db_file();
        let key = SecretKey::load(None, &default_key_file(&db)).unwrap();
        let store = Store::open(&db).await.unwrap();
        let mut accounts = open_accounts(&store, &key, "taobao", Some(name))
            .await
            .unwrap();
        store.close().await;
        assert_eq!(accounts.len(), 1);
        accounts.remove(0)
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The command's exit, waited for off the runtime (the fixture server runs on it).
async fn finish(child: Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

async fn type_login(page: &Page, user: &str, password: &str) {
    page.find_element("#fm-login-id")
        .await
        .unwrap()
        .click()
        .await
        .unwrap()
        .type_str(user)
        .await
        .unwrap();
    page.find_element("#fm-login-password")
        .await
        .unwrap()
        .click()
        .await
        .unwrap()
        .type_str(password)
        .await
        .unwrap();
    page.find_element("#login-submit")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn raw_database(s: &Scratch) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        if let Ok(b) = std::fs::read(s.path(&format!("markwatch.db{suffix}"))) {
            bytes.extend(b);
        }
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_logs_in_through_remote_debugging_and_the_session_is_stored_sealed() {
    if chromium("login_stores_session").is_none() {
        return;
    }
    let t = setup(ModernOptions::default()).await;
    let port = common::person::free_port();
    // Chromium's profile goes in the temporary directory: this one, to look at afterwards.
    let tmp = t.s.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let child = t
        .command(&[
            "accounts",
            "login",
            "taobao",
            "tb_watcher_1",
            "--remote-debugging",
            &port.to_string(),
            "--timeout-secs",
            "120",
        ])
        .env("TMPDIR", &tmp)
        .spawn()
        .unwrap();
    let (_browser, page) = common::person::connect(port, LOGIN_PATH).await;
    type_login(&page, "tb_watcher_1", "fixture-tb-1").await;
    let out = finish(child).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.contains(&format!("ssh -L {port}:127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stderr.contains("chrome://inspect"), "{stderr}");
    assert!(
        stdout.contains("logged in: taobao tb_watcher_1 ("),
        "{stdout}"
    );

    let list = t.list();
    let a = &list.as_array().unwrap()[0];
    assert_eq!(a["name"], "tb_watcher_1");
    assert_eq!(a["state"], "ok");
    assert!(a["cookies"].as_u64().unwrap() >= 3, "{a}");

    let stored = t.stored("tb_watcher_1").await;
    let session = stored
        .cookies
        .iter()
        .find(|c| c.name == "cookie2")
        .expect("the session cookie is stored");
    assert_eq!(session.domain, "127.0.0.1");
    assert!(stored.cookies.iter().any(|c| c.name == "unb"));
    assert!(!contains(&raw_database(&t.s), &session.value));
    assert!(!stdout.contains(&session.value) && !stderr.contains(&session.value));
    // No profile is left behind: Chromium's cookie database would hold the session unsealed.
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().collect();
    assert!(left.is_empty(), "left in the temporary directory: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_keeps_it_waiting_until_the_timeout_and_nothing_is_stored() {
    if chromium("login_wrong_password").is_none() {
        return;
    }
    let t = setup(ModernOptions::default()).await;
    let port = common::person::free_port();
    let child = t.spawn(&[
        "accounts",
        "login",
        "taobao",
        "tb_watcher_1",
        "--remote-debugging",
        &port.to_string(),
        "--timeout-secs",
        "10",
    ]);
    let (_browser, page) = common::person::connect(port, LOGIN_PATH).await;
    type_login(&page, "tb_watcher_1", "not-the-password").await;
    let out = finish(child).await;
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("no login within 10 s") && stderr.contains("nothing was stored"),
        "{stderr}"
    );
    assert_eq!(t.list(), serde_json::json!([]));
}

/// Logs in over HTTP and calls the mtop API until the session is challenged; returns the
/// session's cookies and the punish page the search page then redirects to.
async fn challenged_session(t: &Setup) -> (Vec<(String, String)>, String) {
    let jar = Arc::new(Jar::default());
    let c = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("markwatch-test-http")
        .build()
        .unwrap();
    let form = [
        ("fm-login-id", "tb_watcher_2"),
        ("fm-login-password", "fixture-tb-2"),
    ];
    let resp = c
        .post(format!("{}{LOGIN_PATH}", t.base))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    let base = reqwest::Url::parse(&t.base).unwrap();
    let cookies = |jar: &Jar| -> Vec<(String, String)> {
        let header = jar.cookies(&base).unwrap();
        header
            .to_str()
            .unwrap()
            .split("; ")
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let session = cookies(&jar);
    let data = r#"{"q":"nike","s":0,"n":44}"#;
    let mut challenged = false;
    for _ in 0..10 {
        let token = cookies(&jar)
            .into_iter()
            .find(|(k, _)| k == "_m_h5_tk")
            .map(|(_, v)| v.split('_').next().unwrap().to_string())
            .unwrap_or_default();
        let t_ms = "1764700000000";
        let url = reqwest::Url::parse_with_params(
            &format!("{}/taobao/h5/{MTOP_SEARCH_API}/2.0/", t.base),
            &[
                ("appKey", MTOP_APP_KEY),
                ("t", t_ms),
                ("sign", &mtop_sign(&token, t_ms, MTOP_APP_KEY, data)),
                ("api", MTOP_SEARCH_API),
                ("v", "2.0"),
                ("type", "jsonp"),
                ("dataType", "jsonp"),
                ("callback", "mtopjsonp1"),
                ("data", data),
            ],
        )
        .unwrap();
        let reply = c.get(url).send().await.unwrap().text().await.unwrap();
        if reply.contains("FAIL_SYS_USER_VALIDATE") {
            challenged = true;
            break;
        }
    }
    assert!(challenged, "the fixture never challenged the session");
    let search = FixtureServer::search_path("taobao", "nike", 1).unwrap();
    let resp = c.get(format!("{}{search}", t.base)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.contains("/_____tmd_____/punish?x5secdata="),
        "{location}"
    );
    (session, format!("{}{location}", t.base))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_opens_the_challenge_and_a_person_dragging_the_slider_clears_the_account() {
    if chromium("login_resume").is_none() {
        return;
    }
    let t = setup(ModernOptions {
        mtop_max_calls: 1,
        ..ModernOptions::default()
    })
    .await;
    let (session, punish) = challenged_session(&t).await;
    let mut txt = String::from("# Netscape HTTP Cookie File\n");
    for (k, v) in &session {
        txt.push_str(&format!("127.0.0.1\tFALSE\t/\tFALSE\t0\t{k}\t{v}\n"));
    }
    let file = t.s.write("cookies.txt", &txt);
    let out = t.run(&[
        "accounts",
        "import",
        "taobao",
        "tb_watcher_2",
        "--cookies",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // What the crawl does when the slider comes (its own code is another task's).
    mark_challenged(&t.s.db_file(), "tb_watcher_2", &punish).await;
    assert_eq!(t.list()[0]["state"], "challenged");

    let port = common::person::free_port();
    let child = t.spawn(&[
        "accounts",
        "login",
        "taobao",
        "tb_watcher_2",
        "--resume",
        "--remote-debugging",
        &port.to_string(),
        "--timeout-secs",
        "120",
    ]);
    let (_browser, page) = common::person::connect(port, "/_____tmd_____/punish").await;
    common::person::drag_slider(&page).await;
    let out = finish(child).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("logged in: taobao tb_watcher_2 ("),
        "{stdout}"
    );

    assert_eq!(t.list()[0]["state"], "ok");
    let stored = t.stored("tb_watcher_2").await;
    assert_eq!(stored.state_url, None);
    let x5sec = stored
        .cookies
        .iter()
        .find(|c| c.name == "x5sec")
        .expect("the clearance cookie is stored");
    assert!(!contains(&raw_database(&t.s), &x5sec.value));
    assert!(stored.cookies.iter().any(|c| c.name == "cookie2"));
}

async fn mark_challenged(db: &Path, name: &str, url: &str) {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", db.display()))
        .await
        .unwrap();
    let done = sqlx::query(
        "UPDATE accounts SET state = 'challenged', state_url = ? WHERE platform = 'taobao' AND name = ?",
    )
    .bind(url)
    .bind(name)
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(done.rows_affected(), 1);
}

#[test]
fn without_a_display_or_remote_debugging_it_is_refused_with_the_tunnel_advice() {
    let s = Scratch::new();
    let defs = repo().join("crawlers");
    let out = s
        .command()
        .args(["accounts", "login", "taobao", "tb_watcher_1"])
        .env("MARKWATCH_CRAWL__DEFINITIONS", &defs)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--remote-debugging PORT")
            && stderr.contains("ssh -L PORT:127.0.0.1:PORT")
            && stderr.contains("chrome://inspect"),
        "{stderr}"
    );
    assert_eq!(s.run(&["accounts", "list", "--json"]).ok().trim(), "[]");
}

#[test]
fn a_platform_without_login_is_refused_naming_why() {
    let s = Scratch::new();
    let defs = repo().join("crawlers");
    let out = s
        .command()
        .args([
            "accounts",
            "login",
            "amazon_cn",
            "watcher@example.com",
            "--remote-debugging",
            "1",
        ])
        .env("MARKWATCH_CRAWL__DEFINITIONS", &defs)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("amazon_cn") && stderr.contains("no [login] section"),
        "{stderr}"
    );
}
