//! `markwatch accounts` through the real binary: import of exported cookies, list, remove, and
//! secrets at rest (nothing readable in the database file or its WAL).

mod common;

use common::{Run, Scratch, dump, repo};

const COOKIE_VALUE: &str = "TBcookieVALUE7f3a9c";
const HTTP_ONLY_VALUE: &str = "HttpOnlySessionQ81z";
const JSON_VALUE: &str = "JDthorVALUE5521beef";
const PROXY_PASSWORD: &str = "proxyPASSw0rd8812";

fn cookies_txt() -> String {
    format!(
        "# Netscape HTTP Cookie File\n\
         # exported from a logged-in browser\n\
         \n\
         .taobao.com\tTRUE\t/\tTRUE\t1900000000\t_m_h5_tk\t{COOKIE_VALUE}\n\
         #HttpOnly_.taobao.com\tTRUE\t/\tFALSE\t0\tcookie2\t{HTTP_ONLY_VALUE}\n\
         .tracker.example\tTRUE\t/\tFALSE\t0\tthird\tparty\n"
    )
}

fn jd_json() -> String {
    format!(
        r#"[
  {{"domain": ".jd.com", "hostOnly": false, "httpOnly": true, "name": "thor",
    "path": "/", "sameSite": "no_restriction", "secure": true, "session": false,
    "expirationDate": 1900000000.25, "storeId": "0", "value": "{JSON_VALUE}"}},
  {{"domain": "search.jd.com", "name": "pinId", "value": "abc", "session": true}}
]"#
    )
}

/// Runs with the repository's definitions and the given secret key (None: the key file).
fn run(s: &Scratch, args: &[&str], key: Option<&str>) -> Run {
    let defs = repo().join("crawlers");
    let mut env = vec![("MARKWATCH_CRAWL__DEFINITIONS", defs.to_str().unwrap())];
    if let Some(key) = key {
        env.push(("MARKWATCH_SECRET_KEY", key));
    }
    s.run_with_env(args, &env)
}

/// The database file and its WAL and shared-memory files, as they are on disk.
fn raw_database(s: &Scratch) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = s.path(&format!("markwatch.db{suffix}"));
        if let Ok(b) = std::fs::read(&path) {
            bytes.extend(b);
        }
    }
    assert!(!bytes.is_empty());
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn import_list_remove_with_secrets_sealed_at_rest() {
    let s = Scratch::new();
    let txt = s.write("taobao-cookies.txt", &cookies_txt());
    let json = s.write("jd-cookies.json", &jd_json());
    let proxy = format!("socks5://crawler:{PROXY_PASSWORD}@127.0.0.1:1080");

    let out = run(
        &s,
        &[
            "accounts",
            "import",
            "taobao",
            "alice",
            "--cookies",
            txt.to_str().unwrap(),
            "--proxy",
            &proxy,
            "--rps",
            "0.5",
            "--concurrency",
            "1",
        ],
        None,
    );
    let stdout = out.ok();
    assert!(
        stdout.contains("added account taobao/alice: 2 cookie(s), proxy socks5://127.0.0.1:1080"),
        "{stdout}"
    );
    // The third-party cookie is left out, and said so.
    assert!(
        out.stderr()
            .contains("left out 1 cookie(s) not for taobao: .tracker.example"),
        "{}",
        out.stderr()
    );
    let out = run(
        &s,
        &[
            "accounts",
            "import",
            "jd",
            "bob",
            "--cookies",
            json.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.ok().contains("added account jd/bob: 2 cookie(s)"));

    // The key file was made at first use, beside the database, readable by its owner only.
    use std::os::unix::fs::PermissionsExt as _;
    let key_file = s.path("markwatch.db.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");
    let key_hex = std::fs::read_to_string(&key_file).unwrap();

    let all_output = |r: &Run| format!("{}{}", r.stdout(), r.stderr());
    let list = run(&s, &["accounts", "list"], None);
    let text = list.ok();
    for want in [
        "taobao",
        "alice",
        "jd",
        "bob",
        "ok",
        "never",
        "socks5://127.0.0.1:1080",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    let list_json = run(&s, &["accounts", "list", "--json"], None);
    let accounts: serde_json::Value = serde_json::from_str(&list_json.ok()).unwrap();
    let accounts = accounts.as_array().unwrap();
    assert_eq!(accounts.len(), 2);
    let bob = &accounts[0];
    assert_eq!(
        (bob["platform"].as_str(), bob["name"].as_str()),
        (Some("jd"), Some("bob"))
    );
    let alice = &accounts[1];
    assert_eq!(alice["state"], "ok");
    assert!(alice["since"].as_str().is_some_and(|t| t.starts_with("20")));
    assert_eq!(alice["last_success_at"], serde_json::Value::Null);
    assert_eq!(alice["pages_today"], 0);
    assert_eq!(alice["proxy"], "socks5://127.0.0.1:1080");
    assert_eq!(alice["requests_per_second"], 0.5);
    assert_eq!(alice["cookies"], 2);
    for secret in [
        COOKIE_VALUE,
        HTTP_ONLY_VALUE,
        JSON_VALUE,
        PROXY_PASSWORD,
        "crawler:",
    ] {
        for r in [&list, &list_json] {
            assert!(!all_output(r).contains(secret), "{secret} printed");
        }
    }

    // Nothing secret in the database file, its WAL or its shared memory, nor the key.
    let raw = raw_database(&s);
    for secret in [
        COOKIE_VALUE,
        HTTP_ONLY_VALUE,
        JSON_VALUE,
        PROXY_PASSWORD,
        key_hex.trim(),
    ] {
        assert!(!contains(&raw, secret), "{secret} readable in the database");
    }
    // ... though the account itself is there (the check above looked at the right bytes).
    assert!(contains(&raw, "alice"));

    let out = run(&s, &["accounts", "remove", "jd", "bob"], None);
    assert!(out.ok().contains("removed account jd/bob"));
    let out = run(&s, &["accounts", "remove", "jd", "bob"], None);
    assert_eq!(out.code(), 1, "{}", out.stderr());
    assert!(
        out.stderr().contains("no account jd/bob"),
        "{}",
        out.stderr()
    );
    let accounts: serde_json::Value =
        serde_json::from_str(&run(&s, &["accounts", "list", "--json"], None).ok()).unwrap();
    assert_eq!(accounts.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_cookie_files_name_the_line_or_entry_and_store_nothing() {
    let s = Scratch::new();
    let import = |file: &std::path::Path| {
        run(
            &s,
            &[
                "accounts",
                "import",
                "taobao",
                "alice",
                "--cookies",
                file.to_str().unwrap(),
            ],
            None,
        )
    };
    let bad_txt = s.write(
        "bad.txt",
        &format!(
            "# Netscape HTTP Cookie File\n\
             .taobao.com\tTRUE\t/\tTRUE\t1900000000\t_m_h5_tk\t{COOKIE_VALUE}\n\
             .taobao.com TRUE / FALSE 0 cookie2 spaces-not-tabs\n"
        ),
    );
    let out = import(&bad_txt);
    assert_eq!(out.code(), 2, "{}", out.stderr());
    assert!(
        out.stderr()
            .contains("bad.txt, line 3: expected 7 tab-separated fields"),
        "{}",
        out.stderr()
    );

    let bad_json = s.write(
        "bad.json",
        r#"[{"name": "a", "value": "1", "domain": ".taobao.com"},
            {"name": "b", "domain": ".taobao.com"}]"#,
    );
    let out = import(&bad_json);
    assert_eq!(out.code(), 2, "{}", out.stderr());
    assert!(
        out.stderr().contains("bad.json, entry 1") && out.stderr().contains("value"),
        "{}",
        out.stderr()
    );

    let broken_json = s.write("broken.json", "[{\"name\": \"a\",\n");
    let out = import(&broken_json);
    assert_eq!(out.code(), 2);
    assert!(
        out.stderr().contains("broken.json: not valid JSON"),
        "{}",
        out.stderr()
    );

    // Cookies for another site only: refused, naming the platform's domains.
    let other = s.write("other.txt", ".jd.com\tTRUE\t/\tFALSE\t0\tthor\tx\n");
    let out = import(&other);
    assert_eq!(out.code(), 2);
    assert!(
        out.stderr()
            .contains("no cookie for taobao (its domains: taobao.com)"),
        "{}",
        out.stderr()
    );

    let out = run(
        &s,
        &[
            "accounts",
            "import",
            "ebay",
            "x",
            "--cookies",
            bad_txt.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.code(), 2);
    assert!(
        out.stderr().contains("unknown platform `ebay`"),
        "{}",
        out.stderr()
    );

    let good = s.write("good.txt", &cookies_txt());
    let out = run(
        &s,
        &[
            "accounts",
            "import",
            "taobao",
            "alice",
            "--cookies",
            good.to_str().unwrap(),
            "--proxy",
            &format!("ftp://u:{PROXY_PASSWORD}@host:21"),
        ],
        None,
    );
    assert_eq!(out.code(), 2);
    assert!(out.stderr().contains("bad proxy URL"), "{}", out.stderr());
    assert!(!out.stderr().contains(PROXY_PASSWORD));

    // Nothing was stored by any of them.
    if s.db_file().exists() {
        assert!(dump(&s.db_file()).await.is_empty());
    }
}

#[tokio::test]
async fn a_wrong_key_is_refused_clearly() {
    let s = Scratch::new();
    let txt = s.write("c.txt", &cookies_txt());
    let key_a = "11".repeat(32);
    let key_b = "22".repeat(32);
    let import = |name: &str, key: &str| {
        run(
            &s,
            &[
                "accounts",
                "import",
                "taobao",
                name,
                "--cookies",
                txt.to_str().unwrap(),
            ],
            Some(key),
        )
    };
    import("alice", &key_a).ok();
    // The key came from the environment: no key file is made.
    assert!(!s.path("markwatch.db.key").exists());

    let out = import("bob", &key_b);
    assert_eq!(out.code(), 2, "{}", out.stderr());
    assert!(
        out.stderr()
            .contains("wrong secret key (MARKWATCH_SECRET_KEY)"),
        "{}",
        out.stderr()
    );
    // Without the environment variable, the (new) key file's key is wrong too.
    let out = run(
        &s,
        &[
            "accounts",
            "import",
            "taobao",
            "carol",
            "--cookies",
            txt.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.code(), 2, "{}", out.stderr());
    assert!(
        out.stderr().contains("wrong secret key (key file"),
        "{}",
        out.stderr()
    );

    let out = import("dave", "not-hex");
    assert_eq!(out.code(), 2);
    assert!(
        out.stderr()
            .contains("MARKWATCH_SECRET_KEY must be 64 hex digits"),
        "{}",
        out.stderr()
    );

    let accounts: serde_json::Value =
        serde_json::from_str(&run(&s, &["accounts", "list", "--json"], None).ok()).unwrap();
    let names: Vec<&str> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice"]);
    // The right key still works, and replaces the session.
    let out = import("alice", &key_a);
    assert!(
        out.ok()
            .contains("replaced the session of account taobao/alice")
    );
}
