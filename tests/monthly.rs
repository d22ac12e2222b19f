//! The monthly report over a seeded year: `markwatch report` writes a PDF (printed by
//! Chromium) whose text holds the month's totals as counted here from the stored rows; a brand
//! that opted in gets it by email, attached, once per month, through the outbox and real SMTP.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::Scratch;
use common::smtp::{Behaviour, SmtpSink};
use mail_parser::MimeHeaders;
use markwatch::Store;

const REGISTRY: &str = r#"
[[brand]]
name = "Nike"
owner = "Nike Innovate C.V."
contacts = ["brand@nike.example"]
  [brand.alerts]
  report = "monthly"
  [[brand.mark]]
  text = "NIKE"
  jurisdiction = "CN"
  registration_no = "DEMO-CN-1"
  classes = [25]
  [[brand.mark]]
  text = "耐克"
  jurisdiction = "CN"
  registration_no = "DEMO-CN-2"
  classes = [25]

[[brand]]
name = "Adidas"
owner = "adidas AG"
contacts = ["brand@adidas.example"]
  [[brand.mark]]
  text = "ADIDAS"
  jurisdiction = "CN"
  registration_no = "DEMO-CN-3"
  classes = [25]
"#;

fn tools(test: &str) -> Option<()> {
    common::require(
        test,
        "chromium",
        Path::new("/usr/bin/chromium").is_file().then_some(()),
        "apt-get install -y chromium",
    )?;
    common::require(
        test,
        "pdftotext",
        Command::new("pdftotext")
            .arg("-v")
            .output()
            .ok()
            .map(|_| ()),
        "apt-get install -y poppler-utils",
    )
}

fn pdf_text(pdf: &[u8], dir: &Path) -> String {
    let path = dir.join("read.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
        .unwrap();
    assert!(out.status.success());
    // Lines wrap where the page is narrow: compare without white space.
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect()
}

fn squeeze(s: &str) -> String {
    s.split_whitespace().collect()
}

/// A year of Nike and Adidas cases, seeded through the library.
async fn seeded(s: &Scratch) -> chrono::NaiveDate {
    s.run(&[
        "brands",
        "import",
        s.write("brands.toml", REGISTRY).to_str().unwrap(),
    ])
    .ok();
    let store = Store::open(s.db()).await.unwrap();
    let today = chrono::Utc::now().date_naive();
    markwatch::seed_notices(&store, 400, 3, |_| {})
        .await
        .unwrap();
    markwatch::seed_history(&store, 20, 3, today, |_| {})
        .await
        .unwrap();
    store.close().await;
    markwatch::previous_month(today)
}

/// The month's summary line, counted here from the rows.
async fn expected_summary(s: &Scratch, month: chrono::NaiveDate) -> String {
    let from = month.to_string();
    let to = month
        .checked_add_months(chrono::Months::new(1))
        .unwrap()
        .to_string();
    let mut conn = common::connect(&s.db()).await;
    let count = |sql: &'static str| {
        let (from, to) = (from.clone(), to.clone());
        async move {
            let (n,): (i64,) = sqlx::query_as(sql)
                .bind(from)
                .bind(to)
                .fetch_one(&mut common::connect(&s.db()).await)
                .await
                .unwrap();
            n
        }
    };
    let infringing = count(
        "SELECT count(*) FROM matches WHERE brand_id = (SELECT id FROM brands WHERE name = 'Nike')
         AND verdict = 'infringing' AND created_at >= $1 AND created_at < $2",
    )
    .await;
    let suspect = count(
        "SELECT count(*) FROM matches WHERE brand_id = (SELECT id FROM brands WHERE name = 'Nike')
         AND verdict = 'suspect' AND created_at >= $1 AND created_at < $2",
    )
    .await;
    let steps: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT a.to_state, a.from_state FROM audit_log a JOIN notices n ON n.id = a.entity_id
         WHERE a.entity = 'notice' AND n.brand_id = (SELECT id FROM brands WHERE name = 'Nike')
           AND a.at >= $1 AND a.at < $2",
    )
    .bind(&from)
    .bind(&to)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let step = |s: &str| steps.iter().filter(|(to, _)| to == s).count();
    let rejected = steps
        .iter()
        .filter(|(to, from)| {
            to == "rejected" && matches!(from.as_deref(), Some("filed" | "counter_noticed"))
        })
        .count();
    let relisted = count(
        "SELECT count(*) FROM notice_items ni JOIN notices n ON n.id = ni.notice_id
         WHERE n.brand_id = (SELECT id FROM brands WHERE name = 'Nike') AND ni.relisted_from IS NOT NULL
           AND ni.added_at >= $1 AND ni.added_at < $2",
    )
    .await;
    assert!(
        infringing + suspect > 0 && step("filed") > 0,
        "the seeded month has cases"
    );
    format!(
        "In {}: {infringing} infringing and {suspect} suspect listings found; {} notices filed, {} removed, {rejected} rejected by the platforms, {} counter-noticed; {relisted} relistings.",
        month.format("%Y-%m"),
        step("filed"),
        step("removed"),
        step("counter_noticed"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_pdf_holds_the_months_totals() {
    if tools("monthly_report_pdf").is_none() {
        return;
    }
    let s = Scratch::new();
    let month = seeded(&s).await;
    let want = expected_summary(&s, month).await;
    let m = month.format("%Y-%m").to_string();
    let out = s.path("report.pdf");
    let config = s.write(
        "markwatch.toml",
        &format!(
            "[crawl]\ndefinitions = \"{}\"\n",
            common::repo().join("crawlers").display()
        ),
    );
    let config = config.to_str().unwrap();
    let run = s.run(&[
        "--config",
        config,
        "report",
        "Nike",
        "--month",
        &m,
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = run.ok();
    assert!(
        stdout.contains(&format!("Nike: report for {m} written to")),
        "{stdout}"
    );
    let pdf = std::fs::read(&out).unwrap();
    assert!(pdf.starts_with(b"%PDF"), "a PDF");
    let text = pdf_text(&pdf, s.dir.path());
    assert!(text.contains(&squeeze(&want)), "{want}\nnot in\n{text}");
    for heading in [
        "Findingsandnoticesperplatform",
        "Good-faithstanding",
        "Topsellers",
        "Relistings",
        "Trends,13weeksto",
        "Newinfringingandsuspectlistingsperweek",
        "淘宝Taobao",
    ] {
        assert!(text.contains(heading), "{heading} in the PDF");
    }

    // The HTML page, for a browser or an archive; the same figures.
    let html = s.path("report.html");
    s.run(&[
        "--config",
        config,
        "report",
        "Nike",
        "--month",
        &m,
        "--out",
        html.to_str().unwrap(),
    ])
    .ok();
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(squeeze(&page).contains(&squeeze(&want)));
    assert_eq!(page.matches("<svg").count(), 6, "the six trend charts");

    // Mistakes are named.
    let bad = s.run(&["report", "Nike", "--month", "2026-13", "--out", "x.pdf"]);
    assert_ne!(bad.code(), 0);
    assert!(
        bad.stderr().contains("`2026-13` is not a month"),
        "{}",
        bad.stderr()
    );
    let bad = s.run(&["report", "Nikey", "--month", &m, "--out", "x.pdf"]);
    assert!(
        bad.stderr().contains("no brand named `Nikey`"),
        "{}",
        bad.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brand_that_opted_in_gets_last_months_report_attached_once() {
    if tools("monthly_report_email").is_none() {
        return;
    }
    let s = Scratch::new();
    let month = seeded(&s).await;
    let want = expected_summary(&s, month).await;
    let sink = SmtpSink::start(Behaviour::default());
    let config = s.write(
        "markwatch.toml",
        &format!(
            "[email]\nfrom = \"markwatch <alerts@markwatch.example>\"\nbatch_window_secs = 0\n\
             transport = \"smtp\"\n[email.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n",
            sink.addr.port()
        ),
    );
    let send = || {
        s.run(&["--config", config.to_str().unwrap(), "alerts", "send"])
            .ok()
    };
    send();
    sink.wait_for(1, Duration::from_secs(60));
    let m = month.format("%Y-%m").to_string();
    let reports: Vec<_> = sink
        .messages()
        .into_iter()
        .filter(|r| {
            mail_parser::MessageParser::default()
                .parse(&r.data)
                .and_then(|p| p.subject().map(|s| s.contains("monthly report")))
                .unwrap_or(false)
        })
        .collect();
    assert_eq!(
        reports.len(),
        1,
        "one report: Nike opted in, Adidas did not"
    );
    assert_eq!(reports[0].rcpt_to, ["brand@nike.example"]);
    let mail = mail_parser::MessageParser::default()
        .parse(&reports[0].data)
        .unwrap();
    assert_eq!(
        mail.subject(),
        Some(format!("[markwatch] Nike: monthly report {m}").as_str())
    );
    let body = mail.body_text(0).unwrap();
    assert!(squeeze(&body).contains(&squeeze(&want)), "{body}");
    let attachment = mail.attachments().next().expect("the report is attached");
    assert_eq!(
        attachment.attachment_name(),
        Some(format!("markwatch-Nike-{m}.pdf").as_str())
    );
    assert!(
        attachment
            .content_type()
            .is_some_and(|c| c.ctype() == "application" && c.subtype() == Some("pdf"))
    );
    let text = pdf_text(attachment.contents(), s.dir.path());
    assert!(
        text.contains(&squeeze(&want)),
        "{want}\nnot in the attached PDF"
    );

    // Once a month: sending again queues no second report.
    send();
    std::thread::sleep(Duration::from_millis(500));
    let again = sink
        .messages()
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.data).contains("monthly report"))
        .count();
    assert_eq!(again, 1);
}
