//! Alert emails end to end: the real binary, a real SQLite file, and a real SMTP conversation
//! with a sink on 127.0.0.1 (tests/common/smtp.rs).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Scratch;
use common::smtp::{Behaviour, SmtpSink, reserve_port};
use mail_parser::{MessageParser, MimeHeaders};
use markwatch::Database;
use sqlx::Connection;

const BASE_URL: &str = "https://review.example";

/// Two small brands: 李宁 wants Chinese email, Anta English; a third with no contacts.
const REGISTRY: &str = r#"
[[brand]]
name = "李宁"
owner = "Li Ning (China) Sports Goods Co., Ltd."
contacts = ["legal@lining.example", "ip@lining.example"]
reference_price_cny = 400

  [brand.alerts]
  mode = "immediate"
  language = "zh"
  digest = "0 8 * * 1-5"

  [[brand.mark]]
  text = "李宁"
  jurisdiction = "CN"
  registration_no = "DEMO-CN-9000001"
  classes = [25]

[[brand]]
name = "Anta"
owner = "Anta Sports Products Ltd."
contacts = ["ip@anta.example"]

  [[brand.mark]]
  text = "ANTA"
  jurisdiction = "CN"
  registration_no = "DEMO-CN-9000002"
  classes = [25]

[[brand]]
name = "Peak"
owner = "Peak Sport Products Co., Ltd."
contacts = ["ip@peak.example"]

  [brand.alerts]
  mode = "digest"

  [[brand.mark]]
  text = "PEAK"
  jurisdiction = "CN"
  registration_no = "DEMO-CN-9000003"
  classes = [25]
"#;

/// A scratch database with the test registry, and a config sending through `smtp_port`.
fn setup(smtp_port: Option<u16>, extra: &str) -> (Scratch, PathBuf) {
    let s = Scratch::new();
    let registry = s.write("brands.toml", REGISTRY);
    s.run(&["brands", "import", registry.to_str().unwrap()])
        .ok();
    let transport = match smtp_port {
        Some(port) => format!(
            "transport = \"smtp\"\n[email.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n"
        ),
        None => format!("dir = \"{}\"\n", s.path("outbox").display()),
    };
    let config = format!(
        "[web]\nbase_url = \"{BASE_URL}\"\n\n[email]\nfrom = \"markwatch <alerts@markwatch.example>\"\n\
         batch_window_secs = 0\nretry_base_secs = 1\nretry_max_secs = 2\nlease_secs = 1\n\
         timeout_secs = 5\npoll_secs = 1\nmax_attempts = 4\n{extra}\n{transport}"
    );
    let cfg = s.write("markwatch.toml", &config);
    (s, cfg)
}

fn mw(s: &Scratch, cfg: &Path, args: &[&str]) -> common::Run {
    let mut all = vec!["--config", cfg.to_str().unwrap()];
    all.extend_from_slice(args);
    s.run(&all)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

async fn connect(db: &Database) -> sqlx::AnyConnection {
    common::connect(db).await
}

/// Stores listings with their matches and alert events the way the pipeline does: one
/// transaction per listing. Returns the listing ids.
fn seed(db: &Database, rows: &[(&str, &str, &str, &str)]) -> Vec<i64> {
    block_on(async {
        let mut conn = connect(db).await;
        let mut ids = Vec::new();
        for (i, (brand, platform, title, verdict)) in rows.iter().enumerate() {
            let mut tx = conn.begin().await.unwrap();
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let brand_id: i64 = sqlx::query_scalar("SELECT id FROM brands WHERE name = $1")
                .bind(brand)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            let item = format!("{}{i}", 600_000 + ids.len());
            let listing_id: i64 = sqlx::query_scalar(
                "INSERT INTO listings (platform, item_id, url, title, seller, price, first_seen, last_seen)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            )
            .bind(platform)
            .bind(&item)
            .bind(format!("https://item.taobao.com/item.htm?id={item}"))
            .bind(title)
            .bind("莆田<b>好鞋</b>店")
            .bind(59.0 + i as f64)
            .bind(&now)
            .bind(&now)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
            let reasons = r#"[{"code":"counterfeit_term","detail":"高仿"},{"code":"price","detail":"¥59 is 15% of ¥400"}]"#;
            let match_id: i64 = sqlx::query_scalar(
                "INSERT INTO matches (listing_id, brand_id, verdict, score, reasons, matcher_version, created_at, updated_at)
                 VALUES ($1, $2, $3, 0.9, $4, 'test', $5, $6) RETURNING id",
            )
            .bind(listing_id)
            .bind(brand_id)
            .bind(verdict)
            .bind(reasons)
            .bind(&now)
            .bind(&now)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO alert_events (kind, brand_id, match_id, listing_id, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(verdict)
            .bind(brand_id)
            .bind(match_id)
            .bind(listing_id)
            .bind(&now)
            .execute(&mut *tx)
            .await
            .unwrap();
            tx.commit().await.unwrap();
            ids.push(listing_id);
        }
        ids
    })
}

/// (id, kind, state, attempts, message_id, recipients) of every alert.
fn alerts(db: &Database) -> Vec<(i64, String, String, i64, String, String)> {
    block_on(async {
        let mut conn = connect(db).await;
        sqlx::query_as(
            "SELECT id, kind, state, attempts, message_id, recipients FROM alerts ORDER BY id",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap()
    })
}

fn parse(data: &[u8]) -> mail_parser::Message<'_> {
    MessageParser::default()
        .parse(data)
        .expect("message parses")
}

fn message_id_of(data: &[u8]) -> String {
    format!("<{}>", parse(data).message_id().expect("has a Message-ID"))
}

/// The header section as sent, before any decoding.
fn raw_headers(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    text.split("\r\n\r\n").next().unwrap().to_owned()
}

#[test]
fn immediate_alert_is_a_clean_multipart_message_with_hostile_titles_kept_in_the_body() {
    let sink = SmtpSink::start(Behaviour::default());
    let (s, cfg) = setup(Some(sink.addr.port()), "");
    let ids = seed(
        &s.db(),
        &[
            (
                "李宁",
                "taobao",
                "<script>alert('x')</script> 李宁 高仿 运动鞋",
                "infringing",
            ),
            (
                "李宁",
                "taobao",
                "李宁 1:1 复刻\r\nBcc: victim@evil.example\r\nX-Injected: yes",
                "infringing",
            ),
        ],
    );
    let out = mw(&s, &cfg, &["alerts", "send"]).ok();
    assert!(
        out.contains("1 immediate") && out.contains("1 sent"),
        "{out}"
    );
    let got = sink.messages();
    assert_eq!(got.len(), 1, "one email for one brand");
    let m = &got[0];
    assert_eq!(m.mail_from, "alerts@markwatch.example");
    assert_eq!(
        m.rcpt_to,
        vec!["legal@lining.example", "ip@lining.example"],
        "the brand's contacts"
    );

    // Headers: a Chinese subject is RFC 2047 encoded and decodes back exactly.
    let headers = raw_headers(&m.data);
    let subject_line = headers.lines().find(|l| l.starts_with("Subject:")).unwrap();
    assert!(subject_line.contains("=?utf-8?"), "{headers}");
    let msg = parse(&m.data);
    assert_eq!(
        msg.subject(),
        Some("【markwatch】李宁：发现 2 条新的侵权商品")
    );
    assert!(msg.date().is_some(), "{headers}");
    let rows = alerts(&s.db());
    assert_eq!(rows.len(), 1);
    assert_eq!(
        message_id_of(&m.data),
        rows[0].4,
        "keyed by the outbox Message-ID"
    );
    assert_eq!((rows[0].2.as_str(), rows[0].3), ("sent", 1));

    // Header injection: the scraped CRLF never made a header.
    for bad in ["Bcc:", "X-Injected:", "bcc:"] {
        assert!(
            !headers.lines().any(|l| l.starts_with(bad)),
            "{bad} in headers:\n{headers}"
        );
    }
    assert!(msg.header("X-Injected").is_none());
    assert!(!m.rcpt_to.iter().any(|r| r.contains("evil")));

    // MIME: multipart/alternative with text and HTML.
    let ct = msg.content_type().unwrap();
    assert_eq!(
        (ct.ctype(), ct.subtype()),
        ("multipart", Some("alternative"))
    );
    let text = msg.body_text(0).unwrap().into_owned();
    let html = msg.body_html(0).unwrap().into_owned();
    assert!(
        text.contains("Bcc: victim@evil.example"),
        "stays in the body:\n{text}"
    );
    assert!(
        text.contains("<script>alert('x')</script> 李宁 高仿 运动鞋"),
        "{text}"
    );
    assert!(text.contains("店铺：莆田<b>好鞋</b>店"), "{text}");
    // Reasons in the vocabulary's Chinese, not as codes.
    assert!(text.contains("标题含仿冒用语：“高仿”"), "{text}");
    assert!(!text.contains("counterfeit_term"), "{text}");

    // HTML: the title is escaped, the links point into the review UI.
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<b>好鞋"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; 李宁 高仿 运动鞋"),
        "{html}"
    );
    // Neither drafted nor captured (seeded by hand): each links to the brand's queue there.
    assert_eq!(ids.len(), 2);
    assert!(
        html.contains(&format!(
            "{BASE_URL}/queue?brand=%E6%9D%8E%E5%AE%81&amp;platform=taobao"
        )),
        "review link:\n{html}"
    );
    assert!(html.contains("¥59.00") && html.contains("taobao"), "{html}");
    assert!(
        html.contains("https://item.taobao.com/item.htm?id="),
        "{html}"
    );

    // Sending again sends nothing: the events are handled, the alert is sent.
    let again = mw(&s, &cfg, &["alerts", "send"]).ok();
    assert!(
        again.contains("0 immediate") && again.contains("0 sent"),
        "{again}"
    );
    assert_eq!(sink.count(), 1);
}

#[test]
fn batching_gives_one_email_per_brand_per_crawl_and_suspects_wait_for_the_digest() {
    let sink = SmtpSink::start(Behaviour::default());
    let (s, cfg) = setup(Some(sink.addr.port()), "");
    let mut rows = Vec::new();
    for i in 0..5 {
        rows.push(("李宁", "taobao", format!("李宁 高仿 {i}"), "infringing"));
    }
    for i in 0..3 {
        rows.push(("Anta", "jd", format!("ANTA 精仿 {i}"), "infringing"));
    }
    rows.push(("Anta", "jd", "ANTA 同款 风格".to_owned(), "suspect"));
    rows.push(("Peak", "tmall", "PEAK 原单".to_owned(), "infringing"));
    let rows: Vec<_> = rows
        .iter()
        .map(|(b, p, t, v)| (*b, *p, t.as_str(), *v))
        .collect();
    seed(&s.db(), &rows);
    mw(&s, &cfg, &["alerts", "send"]).ok();
    let got = sink.messages();
    assert_eq!(got.len(), 2, "李宁 and Anta; Peak is in digest mode");
    let by_rcpt: BTreeMap<String, String> = got
        .iter()
        .map(|m| {
            (
                m.rcpt_to[0].clone(),
                parse(&m.data).subject().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        by_rcpt.get("ip@anta.example").map(String::as_str),
        Some("[markwatch] Anta: 3 new infringing listings")
    );
    assert_eq!(
        by_rcpt.get("legal@lining.example").map(String::as_str),
        Some("【markwatch】李宁：发现 5 条新的侵权商品")
    );
    let anta = got
        .iter()
        .find(|m| m.rcpt_to[0] == "ip@anta.example")
        .unwrap();
    let anta_text = parse(&anta.data).body_text(0).unwrap().into_owned();
    assert!(
        !anta_text.contains("同款"),
        "suspects are not immediate:\n{anta_text}"
    );

    // The digest: Anta's suspect, Peak's infringing listing (digest mode); 李宁 has nothing.
    let out = mw(&s, &cfg, &["alerts", "send", "--digests"]).ok();
    assert!(out.contains("2 digest"), "{out}");
    sink.wait_for(4, Duration::from_secs(10));
    let digests: Vec<_> = sink.messages().into_iter().skip(2).collect();
    let anta = digests
        .iter()
        .find(|m| m.rcpt_to[0] == "ip@anta.example")
        .expect("Anta digest");
    let msg = parse(&anta.data);
    assert!(
        msg.subject().unwrap().contains("Anta digest: 1 to review"),
        "{:?}",
        msg.subject()
    );
    assert!(msg.body_text(0).unwrap().contains("ANTA 同款 风格"));
    let peak = digests
        .iter()
        .find(|m| m.rcpt_to[0] == "ip@peak.example")
        .expect("Peak digest");
    assert!(
        parse(&peak.data)
            .body_text(0)
            .unwrap()
            .contains("PEAK 原单")
    );
    assert_eq!(sink.count(), 4);
}

#[test]
fn smtp_down_then_up_delivers_every_alert_exactly_once() {
    let port = reserve_port();
    let (s, cfg) = setup(Some(port), "");
    seed(
        &s.db(),
        &[
            ("李宁", "taobao", "李宁 高仿", "infringing"),
            ("Anta", "jd", "ANTA 高仿", "infringing"),
        ],
    );
    // Down: nothing listens. Nothing is lost, only one alert spends an attempt.
    let down = mw(&s, &cfg, &["alerts", "send"]);
    assert_eq!(down.code(), 1, "{}", down.stdout());
    let rows = alerts(&s.db());
    assert_eq!(rows.len(), 2);
    let states: BTreeSet<(String, i64)> = rows.iter().map(|r| (r.2.clone(), r.3)).collect();
    assert_eq!(
        states,
        BTreeSet::from([("failed_retrying".to_owned(), 1), ("queued".to_owned(), 0)]),
        "{rows:?}"
    );
    let listed = mw(&s, &cfg, &["alerts", "list", "--state", "failed_retrying"]).ok();
    assert!(
        listed.contains("Connection refused") || listed.contains("connection"),
        "{listed}"
    );

    // Still down at the next try: the attempt count grows, backoff holds it back.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(mw(&s, &cfg, &["alerts", "send"]).code(), 1);

    // Up again.
    let sink = SmtpSink::start_on(port, Behaviour::default());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let run = mw(&s, &cfg, &["alerts", "send"]);
        if alerts(&s.db()).iter().all(|r| r.2 == "sent") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not delivered: {:?}\n{}",
            alerts(&s.db()),
            run.stderr()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    mw(&s, &cfg, &["alerts", "send"]).ok();
    let got: Vec<String> = sink
        .messages()
        .iter()
        .map(|m| message_id_of(&m.data))
        .collect();
    let want: Vec<String> = alerts(&s.db()).into_iter().map(|r| r.4).collect();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    let mut want_sorted = want;
    want_sorted.sort();
    assert_eq!(got_sorted, want_sorted, "each alert exactly once");
}

#[test]
fn a_transient_refusal_is_retried_and_a_permanent_one_is_dead_until_retried() {
    let sink = SmtpSink::start(Behaviour {
        transient_failures: 1.into(),
        reject_domain: Some("anta.example".to_owned()).into(),
        ..Behaviour::default()
    });
    let (s, cfg) = setup(
        Some(sink.addr.port()),
        "operations = \"ops@markwatch.example\"\n",
    );
    seed(
        &s.db(),
        &[
            ("李宁", "taobao", "李宁 高仿", "infringing"),
            ("Anta", "jd", "ANTA 高仿", "infringing"),
        ],
    );
    assert_eq!(mw(&s, &cfg, &["alerts", "send"]).code(), 1);
    let rows = alerts(&s.db());
    let state = |brand_rcpt: &str| {
        alerts(&s.db())
            .into_iter()
            .find(|r| r.5.contains(brand_rcpt))
            .map(|r| (r.2, r.3))
            .unwrap()
    };
    assert_eq!(
        rows.len(),
        3,
        "two brands' alerts and the operations notice: {rows:?}"
    );
    assert_eq!(state("anta"), ("dead".to_owned(), 1), "550 is final");
    assert_eq!(
        state("lining"),
        ("failed_retrying".to_owned(), 1),
        "451 is retried"
    );
    let dead = mw(&s, &cfg, &["alerts", "list", "--state", "dead"]).ok();
    assert!(dead.contains("No such user"), "{dead}");
    // Operators are told, once, in the same run.
    let ops: Vec<_> = sink
        .messages()
        .into_iter()
        .filter(|m| m.rcpt_to == ["ops@markwatch.example"])
        .collect();
    assert_eq!(ops.len(), 1);
    let ops_msg = parse(&ops[0].data);
    assert_eq!(
        ops_msg.subject(),
        Some("[markwatch] 1 alert could not be delivered")
    );
    let ops_text = ops_msg.body_text(0).unwrap();
    assert!(
        ops_text.contains("ip@anta.example") && ops_text.contains("No such user"),
        "{ops_text}"
    );

    std::thread::sleep(Duration::from_millis(1200));
    mw(&s, &cfg, &["alerts", "send"]).ok();
    assert_eq!(state("lining"), ("sent".to_owned(), 2));

    // The operator fixes the address book (here: the server) and retries the dead one.
    *sink.behaviour.reject_domain.lock().unwrap() = None;
    let anta_id = alerts(&s.db())
        .into_iter()
        .find(|r| r.5.contains("anta"))
        .unwrap()
        .0;
    let retried = mw(&s, &cfg, &["alerts", "retry", &anta_id.to_string()]).ok();
    assert!(retried.contains("dead -> queued"), "{retried}");
    mw(&s, &cfg, &["alerts", "send"]).ok();
    assert_eq!(state("anta"), ("sent".to_owned(), 1));
    assert_eq!(sink.count(), 3, "lining, the operations notice, anta");
    assert_eq!(mw(&s, &cfg, &["alerts", "retry", "999"]).code(), 1);
}

#[test]
fn killing_the_sender_mid_batch_and_restarting_loses_nothing() {
    let sink = SmtpSink::start(Behaviour {
        accept_delay: Duration::from_millis(400),
        ..Behaviour::default()
    });
    let (s, cfg) = setup(Some(sink.addr.port()), "");
    // Six brands' worth of alerts: the registry's two plus four more.
    let mut extra = String::new();
    for i in 0..4 {
        extra.push_str(&format!(
            "[[brand]]\nname = \"Brand{i}\"\nowner = \"Owner {i}\"\ncontacts = [\"ip@brand{i}.example\"]\n\
             [[brand.mark]]\ntext = \"BRAND{i}\"\njurisdiction = \"CN\"\nregistration_no = \"DEMO-{i}\"\nclasses = [25]\n"
        ));
    }
    let more = s.write("more.toml", &extra);
    s.run(&["brands", "import", more.to_str().unwrap()]).ok();
    let brands = ["李宁", "Anta", "Brand0", "Brand1", "Brand2", "Brand3"];
    let rows: Vec<_> = brands
        .iter()
        .map(|b| (*b, "taobao", "高仿 A货", "infringing"))
        .collect();
    seed(&s.db(), &rows);

    let mut child = Command::new(env!("CARGO_BIN_EXE_markwatch"))
        .current_dir(s.dir.path())
        .args(["--db", &s.db_arg(), "--config", cfg.to_str().unwrap()])
        .args(["alerts", "send"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    sink.wait_for(2, Duration::from_secs(20));
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let at_kill = alerts(&s.db());
    assert_eq!(at_kill.len(), 6, "all six were queued before sending began");
    assert!(
        at_kill.iter().any(|r| r.2 != "sent"),
        "killed mid-batch: {at_kill:?}"
    );
    let unsent_at_kill: BTreeSet<String> = at_kill
        .iter()
        .filter(|r| r.2 != "sent")
        .map(|r| r.4.clone())
        .collect();

    // Restart after the dead sender's lease runs out.
    std::thread::sleep(Duration::from_millis(1100));
    mw(&s, &cfg, &["alerts", "send"]).ok();
    let after = alerts(&s.db());
    assert!(after.iter().all(|r| r.2 == "sent"), "{after:?}");

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for m in sink.messages() {
        *seen.entry(message_id_of(&m.data)).or_default() += 1;
    }
    let want: BTreeSet<String> = after.iter().map(|r| r.4.clone()).collect();
    assert_eq!(
        seen.keys().cloned().collect::<BTreeSet<_>>(),
        want,
        "every alert arrived"
    );
    // The documented window: a kill between the server's 250 and the commit of `sent` may
    // repeat that one message, under the same Message-ID. Nothing else repeats.
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.len() <= 1, "{repeated:?}");
    for (id, n) in repeated {
        assert_eq!(*n, 2);
        assert!(
            unsent_at_kill.contains(id),
            "{id} was committed as sent, yet resent"
        );
    }
}

#[test]
fn file_transport_writes_valid_eml_files() {
    let (s, cfg) = setup(None, "");
    seed(
        &s.db(),
        &[
            ("李宁", "taobao", "李宁 高仿", "infringing"),
            (
                "Anta",
                "jd",
                "ANTA <img src=x onerror=alert(1)>",
                "infringing",
            ),
        ],
    );
    mw(&s, &cfg, &["alerts", "send"]).ok();
    let mut files: Vec<_> = std::fs::read_dir(s.path("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let want: BTreeSet<String> = alerts(&s.db()).into_iter().map(|r| r.4).collect();
    let mut got = BTreeSet::new();
    for f in &files {
        assert_eq!(f.extension().and_then(|e| e.to_str()), Some("eml"));
        let bytes = std::fs::read(f).unwrap();
        let msg = parse(&bytes);
        assert!(
            msg.subject().unwrap().starts_with("【markwatch】")
                || msg.subject().unwrap().starts_with("[markwatch]")
        );
        assert!(msg.body_text(0).is_some() && msg.body_html(0).is_some());
        assert!(!msg.body_html(0).unwrap().contains("<img"));
        got.insert(message_id_of(&bytes));
    }
    assert_eq!(got, want);

    // `alerts test` goes through the same transport.
    let out = mw(
        &s,
        &cfg,
        &["alerts", "test", "--to", "ops@markwatch.example"],
    )
    .ok();
    assert!(out.contains("file transport"), "{out}");
    assert_eq!(std::fs::read_dir(s.path("outbox")).unwrap().count(), 3);
}

#[test]
fn alerts_test_over_smtp_and_bad_addresses() {
    let sink = SmtpSink::start(Behaviour::default());
    let (s, cfg) = setup(Some(sink.addr.port()), "");
    let out = mw(
        &s,
        &cfg,
        &["alerts", "test", "--to", "ops@markwatch.example"],
    )
    .ok();
    assert!(out.contains("250"), "{out}");
    assert_eq!(sink.count(), 1);
    assert_eq!(sink.messages()[0].rcpt_to, vec!["ops@markwatch.example"]);
    let bad = mw(&s, &cfg, &["alerts", "test", "--to", "not an address"]);
    assert_eq!(bad.code(), 2, "{}", bad.stderr());
    assert!(
        bad.stderr().contains("not an email address"),
        "{}",
        bad.stderr()
    );
}

#[test]
fn operators_hear_once_about_a_platform_failing_run_after_run() {
    let sink = SmtpSink::start(Behaviour::default());
    let (s, cfg) = setup(
        Some(sink.addr.port()),
        "operations = \"ops@markwatch.example\"\noperations_after_failures = 3\n",
    );
    let run = |platform: &str, status: &str| {
        block_on(async {
            let mut conn = connect(&s.db()).await;
            sqlx::query(
                "INSERT INTO crawl_runs (platform, started_at, finished_at, status, error)
                 VALUES ($1, '2026-11-21T00:00:00Z', '2026-11-21T00:01:00Z', $2, 'blocked by a Captcha wall')",
            )
            .bind(platform)
            .bind(status)
            .execute(&mut conn)
            .await
            .unwrap();
        })
    };
    run("jd", "ok");
    run("jd", "failed");
    run("jd", "failed");
    run("taobao", "failed");
    mw(&s, &cfg, &["alerts", "send"]).ok();
    assert_eq!(sink.count(), 0, "two failures are not yet a streak");
    run("jd", "failed");
    mw(&s, &cfg, &["alerts", "send"]).ok();
    assert_eq!(sink.count(), 1);
    let m = &sink.messages()[0];
    assert_eq!(m.rcpt_to, vec!["ops@markwatch.example"]);
    let msg = parse(&m.data);
    assert_eq!(
        msg.subject(),
        Some("[markwatch] crawling is failing on 1 platform")
    );
    let text = msg.body_text(0).unwrap();
    assert!(
        text.contains("jd: 3 failed runs in a row") && text.contains("Captcha"),
        "{text}"
    );
    // The streak goes on: no second email. A good run ends it; a new streak alerts again.
    run("jd", "failed");
    mw(&s, &cfg, &["alerts", "send"]).ok();
    assert_eq!(sink.count(), 1);
    run("jd", "partial");
    for _ in 0..3 {
        run("jd", "failed");
    }
    mw(&s, &cfg, &["alerts", "send"]).ok();
    assert_eq!(sink.count(), 2);
}

#[test]
fn the_smtp_password_never_shows() {
    let s = Scratch::new();
    let cfg = s.write(
        "smtp.toml",
        "[email]\ntransport = \"smtp\"\n[email.smtp]\nhost = \"mail.example\"\nport = 465\ntls = \"tls\"\nusername = \"mw\"\n",
    );
    let out = s
        .run_with_env(
            &["--config", cfg.to_str().unwrap(), "config", "check"],
            &[("MARKWATCH_EMAIL__SMTP__PASSWORD", "hunter2-secret")],
        )
        .ok();
    assert!(!out.contains("hunter2"), "{out}");
    assert!(out.contains("[redacted]"), "{out}");
    // A password file that does not exist is named, the password never.
    let cfg2 = s.write(
        "smtp2.toml",
        "[email]\ntransport = \"smtp\"\n[email.smtp]\nhost = \"mail.example\"\nusername = \"mw\"\npassword_file = \"/nonexistent/pw\"\n",
    );
    let run = s.run(&["--config", cfg2.to_str().unwrap(), "alerts", "send"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(run.stderr().contains("/nonexistent/pw"), "{}", run.stderr());
}

// ---- end to end: crawl the fixture platforms, match, alert ----

/// `crawl --once` against the fixture server, then `alerts send`: one email per brand with new
/// infringing listings, each listing in it; crawling again alerts nothing new.
#[test]
fn a_crawl_makes_one_email_per_brand_with_every_new_infringing_listing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fixtures = rt.block_on(common::Running::start(
        markwatch::FixtureOptions::from_source_tree(),
    ));
    let sink = SmtpSink::start(Behaviour::default());
    let s = Scratch::new();
    s.run(&["brands", "import", common::demo_brands().to_str().unwrap()])
        .ok();
    let mut config = format!(
        "[crawl]\ndefinitions = \"{}\"\n[crawl.browser]\nscreenshots = false\n[web]\nbase_url = \"{BASE_URL}\"\n\
         [email]\ntransport = \"smtp\"\nbatch_window_secs = 0\n[email.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n",
        common::repo().join("crawlers").display(),
        sink.addr.port()
    );
    for p in common::PLATFORMS {
        config.push_str(&format!(
            "[platforms.{p}]\nbase_url = \"{}\"\nlogin_required = false\nfetch = \"http\"\n",
            fixtures.url(&format!("/{p}"))
        ));
    }
    let cfg = s.write("markwatch.toml", &config);
    let crawl = || {
        mw(
            &s,
            &cfg,
            &[
                "crawl",
                "--once",
                "--keyword",
                "耐克",
                "--keyword",
                "GUCCI",
                "--no-details",
            ],
        )
        .ok()
    };
    crawl();

    // What the pipeline flagged, per brand that wants immediate email, from the database.
    let infringing: BTreeMap<String, BTreeSet<String>> = block_on(async {
        let mut conn = connect(&s.db()).await;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT b.name, l.title FROM matches m JOIN brands b ON b.id = m.brand_id
             JOIN listings l ON l.id = m.listing_id
             WHERE m.verdict = 'infringing' AND b.alert_mode = 'immediate'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        rows.into_iter().fold(BTreeMap::new(), |mut m, (b, t)| {
            m.entry(b).or_insert_with(BTreeSet::new).insert(t);
            m
        })
    });
    assert!(!infringing.is_empty(), "the fixtures hold counterfeits");

    let drafts: BTreeMap<String, Vec<(Option<i64>, i64)>> = block_on(async {
        let mut conn = connect(&s.db()).await;
        let rows: Vec<(String, Option<i64>, i64)> = sqlx::query_as(
            "SELECT b.name, ni.notice_id, l.evidence_id FROM matches m JOIN brands b ON b.id = m.brand_id
             JOIN listings l ON l.id = m.listing_id
             LEFT JOIN notice_items ni ON ni.match_id = m.id
             WHERE m.verdict = 'infringing' AND b.alert_mode = 'immediate'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        rows.into_iter().fold(BTreeMap::new(), |mut m, (b, n, l)| {
            m.entry(b).or_insert_with(Vec::new).push((n, l));
            m
        })
    });
    assert!(
        drafts.values().flatten().any(|(n, _)| n.is_some()),
        "the crawl drafted notices: {drafts:?}"
    );
    mw(&s, &cfg, &["alerts", "send"]).ok();
    let got = sink.messages();
    assert_eq!(
        got.len(),
        infringing.len(),
        "one email per brand: {:?}",
        infringing.keys()
    );
    let contacts: BTreeMap<String, (String, String)> = block_on(async {
        let mut conn = connect(&s.db()).await;
        sqlx::query_as::<_, (String, String, String)>(
            "SELECT b.name, c.email, b.alert_language FROM brands b
             JOIN brand_contacts c ON c.brand_id = b.id AND c.position = 0",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|(b, c, l)| (b, (c, l)))
        .collect()
    });
    for (brand, titles) in &infringing {
        let m = got
            .iter()
            .find(|m| m.rcpt_to.contains(&contacts[brand].0))
            .unwrap_or_else(|| panic!("no email for {brand}"));
        let msg = parse(&m.data);
        let n = titles.len();
        let plural = if n == 1 { "" } else { "s" };
        let want = match contacts[brand].1.as_str() {
            "zh" => format!("【markwatch】{brand}：发现 {n} 条新的侵权商品"),
            _ => format!("[markwatch] {brand}: {n} new infringing listing{plural}"),
        };
        assert_eq!(msg.subject(), Some(want.as_str()));
        let text = msg.body_text(0).unwrap();
        for title in titles {
            assert!(
                text.contains(title.as_str()),
                "{brand}: {title} missing from\n{text}"
            );
        }
        // Each listing links to its draft notice in the review UI (the crawl drafted them).
        let html = msg.body_html(0).unwrap();
        for (notice, evidence) in &drafts[brand] {
            let link = match notice {
                Some(id) => format!("{BASE_URL}/notices/{id}"),
                None => format!("{BASE_URL}/evidence/{evidence}"),
            };
            assert!(html.contains(&link), "{brand}: {link} missing");
        }
    }

    // The same crawl again finds nothing new: no more email.
    crawl();
    let out = mw(&s, &cfg, &["alerts", "send"]).ok();
    assert!(out.contains("0 immediate"), "{out}");
    assert_eq!(sink.count(), infringing.len());
}

#[test]
fn smtp_auth_takes_the_password_from_a_file_and_never_logs_it() {
    let sink = SmtpSink::start(Behaviour {
        // base64("\0mw\0s3cret-pw"): AUTH PLAIN's initial response.
        auth_plain: Some("AG13AHMzY3JldC1wdw==".to_owned()),
        ..Behaviour::default()
    });
    let s = Scratch::new();
    let pw = s.write("smtp-password", "s3cret-pw\n");
    let cfg = s.write(
        "markwatch.toml",
        &format!(
            "[email]\ntransport = \"smtp\"\n[email.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             username = \"mw\"\npassword_file = \"{}\"\n",
            sink.addr.port(),
            pw.display()
        ),
    );
    let run = s.run_with_env(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "alerts",
            "test",
            "--to",
            "ops@markwatch.example",
        ],
        &[("RUST_LOG", "trace")],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(sink.count(), 1);
    assert_eq!(sink.behaviour.auth_seen.lock().unwrap().len(), 1);
    for out in [run.stdout(), run.stderr()] {
        assert!(!out.contains("s3cret"), "{out}");
        assert!(!out.contains("AG13AHMzY3JldC1wdw"), "{out}");
    }
    // The same password from the environment; a wrong one is refused and the alert is dead.
    let cfg_env = s.write(
        "env.toml",
        &format!(
            "[email]\ntransport = \"smtp\"\n[email.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"mw\"\n",
            sink.addr.port()
        ),
    );
    let test = |password: &str| {
        s.run_with_env(
            &[
                "--config",
                cfg_env.to_str().unwrap(),
                "alerts",
                "test",
                "--to",
                "ops@markwatch.example",
            ],
            &[("MARKWATCH_EMAIL__SMTP__PASSWORD", password)],
        )
    };
    assert_eq!(test("s3cret-pw").code(), 0);
    assert_eq!(sink.count(), 2);
    let wrong = test("guess");
    assert_eq!(wrong.code(), 1);
    assert!(
        wrong.stderr().contains("dead") && !wrong.stderr().contains("guess"),
        "{}",
        wrong.stderr()
    );
    assert_eq!(sink.count(), 2);
}

// ---- links, wording, dead-alert reports, attempts ----

/// Every link in an email: the text body's URLs and the HTML body's hrefs (entities decoded).
fn links_in(text: &str, html: &str) -> BTreeSet<String> {
    let url = regex::Regex::new(r#"https?://[^\s<>"'）（，。]+"#).unwrap();
    let href = regex::Regex::new(r#"href="([^"]*)""#).unwrap();
    let mut out: BTreeSet<String> = url.find_iter(text).map(|m| m.as_str().to_owned()).collect();
    for c in href.captures_iter(html) {
        out.insert(html_escape::decode_html_entities(&c[1]).into_owned());
    }
    out
}

/// `markwatch serve` in the background, its log in a file; killed when dropped.
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Alert emails from a real crawl, sent by the real sender to the SMTP sink, in English and
/// Chinese, immediate and digest: every link in them opens a page of the running review UI
/// (`markwatch serve`, whose address is `web.base_url`) for a logged-in user, and the reasons
/// are worded in the brand's language, never as codes.
#[test]
fn every_link_in_every_alert_email_opens_in_the_review_ui_and_reasons_are_in_words() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fixtures = rt.block_on(common::Running::start(
        markwatch::FixtureOptions::from_source_tree(),
    ));
    let sink = SmtpSink::start(Behaviour::default());
    let s = Scratch::new();
    // The demo registry, with Gucci's contacts reading Chinese.
    let demo = std::fs::read_to_string(common::demo_brands()).unwrap();
    let gucci = demo.find("name = \"Gucci\"").unwrap();
    let mark = gucci + demo[gucci..].find("[[brand.mark]]").unwrap();
    let registry = format!(
        "{}[brand.alerts]\n  language = \"zh\"\n\n  {}",
        &demo[..mark],
        &demo[mark..]
    )
    // The copy lives elsewhere: its reference images are the repository's.
    .replace(
        "path = \"images/",
        &format!(
            "path = \"{}/",
            common::repo().join("fixtures/images").display()
        ),
    );
    let registry = s.write("brands.toml", &registry);
    s.run(&["brands", "import", registry.to_str().unwrap()])
        .ok();

    let port = reserve_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut config = format!(
        "[crawl]\ndefinitions = \"{}\"\n[crawl.browser]\nscreenshots = false\n[web]\naddr = \"127.0.0.1:{port}\"\nbase_url = \"{base}\"\n\
         [email]\ntransport = \"smtp\"\nbatch_window_secs = 0\ndeadline_days = 30\n\
         [email.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n",
        common::repo().join("crawlers").display(),
        sink.addr.port()
    );
    for p in common::PLATFORMS {
        config.push_str(&format!(
            "[platforms.{p}]\nbase_url = \"{}\"\nschedule = \"off\"\nrequests_per_second = 0\nlogin_required = false\nfetch = \"http\"\n",
            fixtures.url(&format!("/{p}"))
        ));
    }
    let cfg = s.write("markwatch.toml", &config);
    mw(
        &s,
        &cfg,
        &[
            "crawl",
            "--once",
            "--keyword",
            "耐克",
            "--keyword",
            "GUCCI",
            "--keyword",
            "lv",
            "--no-details",
        ],
    )
    .ok();

    // A Nike case the platform has counter-noticed: a deadline in Nike's digest.
    let nike_notice: i64 = block_on(async {
        let mut conn = connect(&s.db()).await;
        let nike = sqlx::query_scalar(
            // A notice resting on a registered mark: one found by photo alone names none, and
            // cannot be approved until a reviewer names the right.
            "SELECT min(n.id) FROM notices n JOIN brands b ON b.id = n.brand_id
             JOIN notice_items ni ON ni.notice_id = n.id JOIN matches m ON m.id = ni.match_id
             WHERE b.name = 'Nike' AND m.mark_id IS NOT NULL",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        let gucci: i64 = sqlx::query_scalar(
            "SELECT min(m.id) FROM matches m JOIN brands b ON b.id = m.brand_id
             WHERE b.name = 'Gucci' AND m.verdict = 'infringing'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        // A listing the batcher takes before drafting reaches it (the daemon batches while a
        // crawl runs): it has no notice yet.
        sqlx::query("DELETE FROM notice_items WHERE match_id = $1")
            .bind(gucci)
            .execute(&mut conn)
            .await
            .unwrap();
        nike
    });
    let id = nike_notice.to_string();
    mw(&s, &cfg, &["queue", "approve", &id]).ok();
    mw(&s, &cfg, &["queue", "file", &id, "--ref", "IPP-1"]).ok();
    mw(
        &s,
        &cfg,
        &["queue", "resolve", &id, "--outcome", "counter-noticed"],
    )
    .ok();

    mw(&s, &cfg, &["alerts", "send"]).ok();
    mw(&s, &cfg, &["alerts", "send", "--digests"]).ok();
    let emails: Vec<(String, String, String)> = sink
        .messages()
        .iter()
        .map(|m| {
            let msg = parse(&m.data);
            (
                msg.subject().unwrap().to_owned(),
                msg.body_text(0).unwrap().into_owned(),
                msg.body_html(0).unwrap().into_owned(),
            )
        })
        .collect();
    let subjects: Vec<&str> = emails.iter().map(|e| e.0.as_str()).collect();
    for want in [
        "[markwatch] Nike: ",
        "【markwatch】Gucci：",
        "[markwatch] Nike digest",
        "[markwatch] Louis Vuitton digest",
    ] {
        assert!(
            subjects.iter().any(|s| s.starts_with(want)),
            "{want} in {subjects:?}"
        );
    }

    // The review UI, serving this database at `web.base_url`, and a reviewer logged in.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_markwatch"));
    cmd.current_dir(s.dir.path())
        .args(["--db", &s.db_arg(), "--config", cfg.to_str().unwrap()])
        .arg("serve")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(s.path("serve.log")).unwrap());
    let _served = Served(cmd.spawn().unwrap());
    let mut add = Command::new(env!("CARGO_BIN_EXE_markwatch"));
    add.current_dir(s.dir.path())
        .args(["--db", &s.db_arg(), "--config", cfg.to_str().unwrap()])
        .args([
            "users",
            "add",
            "alice",
            "--role",
            "reviewer",
            "--password-stdin",
        ])
        .stdin(Stdio::piped());
    let mut child = add.spawn().unwrap();
    {
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{}", common::web::PASSWORD).unwrap();
    }
    assert!(child.wait().unwrap().success());

    let codes: BTreeSet<String> = block_on(async {
        let mut conn = connect(&s.db()).await;
        sqlx::query_scalar::<_, String>(
            "SELECT DISTINCT r.value ->> 'code' FROM matches m, jsonb_each(m.reasons) r",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .collect()
    });
    assert!(codes.contains("counterfeit_term"), "{codes:?}");
    let listing_urls: BTreeSet<String> = block_on(async {
        let mut conn = connect(&s.db()).await;
        sqlx::query_scalar::<_, String>("SELECT url FROM listings")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .collect()
    });

    rt.block_on(async {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let up = Instant::now() + Duration::from_secs(60);
        loop {
            match client.get(format!("{base}/healthz")).send().await {
                Ok(r) if r.status() == 200 => break,
                _ => {
                    let log = std::fs::read_to_string(s.path("serve.log")).unwrap_or_default();
                    assert!(Instant::now() < up, "serve did not come up:\n{log}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        let form = client.get(format!("{base}/login")).send().await.unwrap();
        let csrf = common::web::csrf_in(&form.text().await.unwrap());
        let login = client
            .post(format!("{base}/login"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("name", "alice"),
                ("password", common::web::PASSWORD),
                ("next", "/"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 303, "login");

        let mut kinds = BTreeSet::new();
        for (subject, text, html) in &emails {
            let zh = subject.starts_with("【markwatch】");
            for link in links_in(text, html) {
                if let Some(path) = link.strip_prefix(&base) {
                    let resp = client.get(&link).send().await.unwrap();
                    assert_eq!(resp.status(), 200, "{subject}: {link}");
                    kinds.insert(
                        path.trim_start_matches('/')
                            .split(['/', '?'])
                            .next()
                            .unwrap()
                            .to_owned(),
                    );
                } else {
                    // The rest point at the listing on its platform.
                    assert!(listing_urls.contains(&link), "{subject}: stray link {link}");
                }
            }
            for body in [text, html] {
                // One-word codes (`pinyin`) are also English words: those only as `code:`.
                for code in &codes {
                    let raw = [format!("{code}:"), format!("{code}：")];
                    let shown = raw.iter().any(|r| body.contains(r.as_str()))
                        || (code.contains('_') && body.contains(code.as_str()));
                    assert!(!shown, "{subject}: raw `{code}` in\n{body}");
                }
                let listed = text.contains("Verdict:") || text.contains("判定：");
                if zh {
                    let chinese = ["标题含仿冒用语", "价格远低于正品参考价", "商标", "宣称"];
                    assert!(
                        !listed || chinese.iter().any(|p| body.contains(p)),
                        "{subject}:\n{body}"
                    );
                    for english in [
                        "the listing",
                        "describes the goods",
                        "registered mark",
                        "price",
                    ] {
                        assert!(!body.contains(english), "{subject}: `{english}` in\n{body}");
                    }
                } else {
                    let english = [
                        "describes the goods as copies",
                        "is priced far below",
                        "uses ",
                    ];
                    assert!(
                        !listed || english.iter().any(|p| body.contains(p)),
                        "{subject}:\n{body}"
                    );
                }
            }
        }
        // The queue, drafts (listings and the case's deadline), and a not-yet-drafted listing's
        // captured page.
        assert_eq!(
            kinds,
            BTreeSet::from([
                "evidence".to_owned(),
                "notices".to_owned(),
                "queue".to_owned()
            ]),
        );
    });
}

/// One SMTP refusal of every brand's mail kills many alerts; operators get one email listing
/// them all, not one email each.
#[test]
fn one_refusal_killing_many_alerts_makes_one_operations_email_listing_them() {
    let sink = SmtpSink::start(Behaviour {
        reject_except: Some("markwatch.example".to_owned()).into(),
        ..Behaviour::default()
    });
    let (s, cfg) = setup(
        Some(sink.addr.port()),
        "operations = \"ops@markwatch.example\"\n",
    );
    let mut extra = String::new();
    for i in 0..10 {
        extra.push_str(&format!(
            "[[brand]]\nname = \"Brand{i}\"\nowner = \"Owner {i}\"\ncontacts = [\"ip@brand{i}.example\"]\n\
             [[brand.mark]]\ntext = \"BRAND{i}\"\njurisdiction = \"CN\"\nregistration_no = \"DEMO-{i}\"\nclasses = [25]\n"
        ));
    }
    let more = s.write("more.toml", &extra);
    s.run(&["brands", "import", more.to_str().unwrap()]).ok();
    let mut brands = vec!["李宁".to_owned(), "Anta".to_owned()];
    brands.extend((0..10).map(|i| format!("Brand{i}")));
    let rows: Vec<_> = brands
        .iter()
        .map(|b| (b.as_str(), "taobao", "高仿 A货", "infringing"))
        .collect();
    seed(&s.db(), &rows);

    assert_eq!(mw(&s, &cfg, &["alerts", "send"]).code(), 1);
    let dead: Vec<_> = alerts(&s.db())
        .into_iter()
        .filter(|r| r.2 == "dead")
        .collect();
    assert_eq!(dead.len(), 12, "{:?}", alerts(&s.db()));
    let ops: Vec<_> = sink
        .messages()
        .into_iter()
        .filter(|m| m.rcpt_to == ["ops@markwatch.example"])
        .collect();
    assert_eq!(ops.len(), 1, "one operations email for the incident");
    let msg = parse(&ops[0].data);
    assert_eq!(
        msg.subject(),
        Some("[markwatch] 12 alerts could not be delivered")
    );
    let text = msg.body_text(0).unwrap();
    for (id, .., recipients) in &dead {
        let to: Vec<String> = serde_json::from_str(recipients).unwrap();
        assert!(
            text.contains(&format!("- alert {id} to {}:", to.join(", "))),
            "alert {id} missing:\n{text}"
        );
    }
    // Told once: another round sends nothing more.
    mw(&s, &cfg, &["alerts", "send"]).ok();
    assert_eq!(sink.count(), 1);
}

/// Senders killed while they hold leases on alerts they never handed to the server: those
/// alerts spend no attempts, and an alert's attempts are exactly the messages the server got.
#[test]
fn leases_of_killed_senders_are_not_attempts() {
    let sink = SmtpSink::start(Behaviour::default());
    let (s, cfg) = setup(Some(sink.addr.port()), "");
    // Three attempts, and a retry far off, so the refused message waits.
    let config = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("max_attempts = 4", "max_attempts = 3")
        .replace("retry_base_secs = 1\n", "retry_base_secs = 600\n")
        .replace("retry_max_secs = 2\n", "retry_max_secs = 600\n");
    std::fs::write(&cfg, config).unwrap();
    let mut extra = String::new();
    for i in 0..4 {
        extra.push_str(&format!(
            "[[brand]]\nname = \"Brand{i}\"\nowner = \"Owner {i}\"\ncontacts = [\"ip@brand{i}.example\"]\n\
             [[brand.mark]]\ntext = \"BRAND{i}\"\njurisdiction = \"CN\"\nregistration_no = \"DEMO-{i}\"\nclasses = [25]\n"
        ));
    }
    let more = s.write("more.toml", &extra);
    s.run(&["brands", "import", more.to_str().unwrap()]).ok();
    // Alerts in id order: 李宁, Anta, Brand0..Brand3.
    let brands = ["李宁", "Anta", "Brand0", "Brand1", "Brand2", "Brand3"];
    let rows: Vec<_> = brands
        .iter()
        .map(|b| (*b, "taobao", "高仿 A货", "infringing"))
        .collect();
    seed(&s.db(), &rows);

    // Three senders, each killed while the server holds one message unanswered; each had
    // claimed every alert.
    for (round, domain) in ["lining.example", "anta.example", "brand0.example"]
        .iter()
        .enumerate()
    {
        *sink.behaviour.stall_domain.lock().unwrap() = Some((*domain).to_owned());
        let tried_before = sink.tried_count();
        let mut child = Command::new(env!("CARGO_BIN_EXE_markwatch"))
            .current_dir(s.dir.path())
            .args(["--db", &s.db_arg(), "--config", cfg.to_str().unwrap()])
            .args(["alerts", "send"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Round 1 stalls at once; later rounds first deliver the one the last sender died on.
        sink.wait_for_tried(
            tried_before + 1 + usize::from(round > 0),
            Duration::from_secs(20),
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // The next sender may take the leases over.
        std::thread::sleep(Duration::from_millis(1100));
    }
    // The last round: no stall, and the first message (Brand0's, held last) is refused for now.
    *sink.behaviour.stall_domain.lock().unwrap() = None;
    sink.behaviour
        .transient_failures
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let last = mw(&s, &cfg, &["alerts", "send"]);
    assert_eq!(last.code(), 1, "one retrying: {}", last.stdout());

    let mut tries: BTreeMap<String, i64> = BTreeMap::new();
    for m in sink.tried.lock().unwrap().iter() {
        *tries.entry(message_id_of(&m.data)).or_default() += 1;
    }
    let rows = alerts(&s.db());
    assert_eq!(rows.len(), 6);
    for (id, _, state, attempts, message_id, recipients) in &rows {
        let tried = tries.get(message_id).copied().unwrap_or(0);
        assert_eq!(
            *attempts, tried,
            "alert {id} to {recipients} ({state}): attempts = messages the server got"
        );
    }
    let state_of = |domain: &str| {
        rows.iter()
            .find(|r| r.5.contains(domain))
            .map(|r| (r.2.clone(), r.3))
            .unwrap()
    };
    assert_eq!(state_of("lining"), ("sent".to_owned(), 2));
    assert_eq!(state_of("anta"), ("sent".to_owned(), 2));
    // Claimed by four senders, handed over twice: not out of its three attempts.
    assert_eq!(state_of("brand0"), ("failed_retrying".to_owned(), 2));
    for b in ["brand1", "brand2", "brand3"] {
        assert_eq!(state_of(b), ("sent".to_owned(), 1), "{b}");
    }
}
