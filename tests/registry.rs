//! The brand registry through the real binary: import, validation, idempotence, CSV, export.

mod common;

use common::{Scratch, demo_brands, dump};

const GOOD: &str = r#"[[brand]]
name = "Nike"
owner = "Nike Innovate C.V."
contacts = ["ip@nike.example"]
reference_price_cny = 500
authorized_sellers = ["Nike官方旗舰店"]
aliases = ["N家"]

  [[brand.mark]]
  text = "NIKE"
  jurisdiction = "CN"
  registration_no = "TEST-1234567"
  classes = [18, 25, 28]
  expires = "2031-05-01"
"#;

#[tokio::test]
async fn fresh_database_is_migrated() {
    let s = Scratch::new();
    let out = s.run(&["brands", "list"]).ok();
    assert!(out.contains("No brands registered"), "{out}");
    assert!(s.db_file().exists());
    let dump_tables: Vec<String> = dump(&s.db_file()).await;
    assert!(
        dump_tables.is_empty(),
        "a fresh database has no rows: {dump_tables:?}"
    );
    // Every table the pipeline needs exists.
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", s.db_file().display()))
        .await
        .unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    for t in [
        "brands",
        "marks",
        "mark_classes",
        "brand_aliases",
        "authorized_sellers",
        "crawl_runs",
        "listings",
        "evidence",
        "matches",
        "notices",
        "alerts",
        "users",
        "audit_log",
    ] {
        assert!(
            tables.iter().any(|x| x == t),
            "missing table {t}: {tables:?}"
        );
    }
}

#[tokio::test]
async fn demo_registry_imports_and_lists() {
    let s = Scratch::new();
    let out = s
        .run(&["brands", "import", demo_brands().to_str().unwrap()])
        .ok();
    assert!(
        out.contains("20 brands (20 added, 0 updated, 0 unchanged)"),
        "{out}"
    );
    let list = s.run(&["brands", "list"]).ok();
    for name in [
        "Nike",
        "Louis Vuitton",
        "Rolex",
        "Apple",
        "Lancôme",
        "LEGO",
        "Dyson",
    ] {
        assert!(list.contains(name), "{name} missing from:\n{list}");
    }
    // The expired Bandai mark is called out for the operator.
    assert!(list.contains("万代 (CN, expired 2024-03-01)"), "{list}");
}

#[tokio::test]
async fn reimport_changes_nothing() {
    let s = Scratch::new();
    let file = demo_brands();
    s.run(&["brands", "import", file.to_str().unwrap()]).ok();
    let before = dump(&s.db_file()).await;
    let out = s.run(&["brands", "import", file.to_str().unwrap()]).ok();
    assert!(out.contains("(0 added, 0 updated, 20 unchanged)"), "{out}");
    assert!(out.contains("(0 added, 0 updated, 43 unchanged)"), "{out}");
    assert_eq!(
        before,
        dump(&s.db_file()).await,
        "re-import must not touch a row"
    );
}

#[tokio::test]
async fn changed_file_updates_in_place() {
    let s = Scratch::new();
    let file = s.write("brands.toml", GOOD);
    s.run(&["brands", "import", file.to_str().unwrap()]).ok();
    let changed = GOOD.replace("[18, 25, 28]", "[25]").replace("N家", "勾子");
    let file = s.write("brands.toml", &changed);
    let out = s.run(&["brands", "import", file.to_str().unwrap()]).ok();
    assert!(
        out.contains("1 brands (0 added, 1 updated, 0 unchanged)"),
        "{out}"
    );
    assert!(
        out.contains("1 marks (0 added, 1 updated, 0 unchanged)"),
        "{out}"
    );
    let shown = s.run(&["brands", "show", "Nike"]).ok();
    assert!(shown.contains("classes = [25]"), "{shown}");
    assert!(shown.contains("勾子") && !shown.contains("N家"), "{shown}");
}

/// Each broken file: (what to replace in GOOD, with what, expected `file:line: field` prefix).
#[tokio::test]
async fn validation_errors_name_line_and_field_and_leave_db_unchanged() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[18, 25, 28]",
            "[18, 46]",
            ":13: brand[0].mark[0].classes: class 46 is outside",
        ),
        (
            "[18, 25, 28]",
            "[]",
            ":13: brand[0].mark[0].classes: must list at least one",
        ),
        ("aliases =", "alias =", ":7: toml: unknown field `alias`"),
        (
            "  registration_no",
            "  colour = \"red\"\n  registration_no",
            ":12: toml: unknown field `colour`",
        ),
        (
            "2031-05-01",
            "2031-02-30",
            ":14: brand[0].mark[0].expires: `2031-02-30` is not a date",
        ),
        (
            "\"CN\"",
            "\"China\"",
            ":11: brand[0].mark[0].jurisdiction: `CHINA` is not an ISO",
        ),
        (
            "ip@nike.example",
            "ip at nike",
            ":4: brand[0].contacts: `ip at nike` is not an email",
        ),
        (
            "reference_price_cny = 500",
            "reference_price_cny = -5",
            ":5: brand[0].reference_price_cny: must be a positive",
        ),
        (
            "owner = \"Nike Innovate C.V.\"\n",
            "",
            ":1: toml: missing field `owner`",
        ),
        (
            "name = \"Nike\"",
            "name = \"\"",
            ":2: brand[0].name: must not be empty",
        ),
    ];
    let s = Scratch::new();
    s.run(&["brands", "import", demo_brands().to_str().unwrap()])
        .ok();
    let before = dump(&s.db_file()).await;
    for (from, to, expected) in cases {
        assert!(GOOD.contains(from), "case does not apply: {from}");
        let file = s.write("bad.toml", &GOOD.replacen(from, to, 1));
        let run = s.run(&["brands", "import", file.to_str().unwrap()]);
        assert_eq!(run.code(), 2, "{expected}: {}", run.stderr());
        let want = format!("{}{expected}", file.display());
        assert!(
            run.stderr().contains(&want),
            "want `{want}` in:\n{}",
            run.stderr()
        );
        assert_eq!(
            before,
            dump(&s.db_file()).await,
            "a failed import changed the database ({expected})"
        );
    }
}

/// `markwatch config check | head -0`: the reader is gone before the first line is printed.
#[cfg(unix)]
#[test]
fn a_command_whose_reader_went_away_ends_without_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_markwatch"))
        .args(["config", "check"])
        .env_remove("MARKWATCH_CONFIG")
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(13), "ended by SIGPIPE: {stderr}");
}

#[test]
fn file_level_errors() {
    let s = Scratch::new();
    // No marks, duplicate brand, duplicate mark: all reported in one pass.
    let no_marks = "[[brand]]\nname = \"A\"\nowner = \"A Ltd\"\n";
    let dup_brand = format!("{GOOD}\n{GOOD}");
    let dup_mark = format!(
        "{GOOD}\n  [[brand.mark]]\n  text = \"NIKE\"\n  jurisdiction = \"CN\"\n  registration_no = \"X\"\n  classes = [25]\n"
    );
    for (contents, expected) in [
        (no_marks.to_owned(), ":1: brand[0]: brand `A` has no marks"),
        (
            dup_brand,
            ":17: brand[1].name: brand `Nike` is already defined at line 2",
        ),
        (
            dup_mark,
            ":16: brand[0].mark[1]: mark `NIKE` in CN is listed twice",
        ),
    ] {
        let file = s.write("bad.toml", &contents);
        let run = s.run(&["brands", "import", file.to_str().unwrap()]);
        assert_eq!(run.code(), 2);
        assert!(
            run.stderr().contains(expected),
            "want `{expected}` in:\n{}",
            run.stderr()
        );
    }
    assert!(
        !s.db_file().exists(),
        "failed imports must not even create the database"
    );
    let run = s.run(&["brands", "import", "missing.toml"]);
    assert_eq!(run.code(), 2, "a file that isn't there is bad input");
    assert!(run.stderr().contains("missing.toml"), "{}", run.stderr());
    let file = s.write("brands.json", "{}");
    assert_eq!(
        s.run(&["brands", "import", file.to_str().unwrap()]).code(),
        2
    );
}

#[tokio::test]
async fn csv_import_matches_toml_import() {
    let s = Scratch::new();
    let csv = "\u{feff}name,owner,contacts,reference_price_cny,authorized_sellers,aliases,text,jurisdiction,registration_no,classes,expires\n\
        Nike,Nike Innovate C.V.,ip@nike.example,500,Nike官方旗舰店,N家,NIKE,CN,TEST-1234567,18;25;28,2031-05-01\n";
    let file = s.write("brands.csv", csv);
    s.run(&["brands", "import", file.to_str().unwrap()]).ok();
    let from_csv = s.run(&["brands", "export"]).ok();
    let t = Scratch::new();
    let file = t.write("brands.toml", GOOD);
    t.run(&["brands", "import", file.to_str().unwrap()]).ok();
    assert_eq!(from_csv, t.run(&["brands", "export"]).ok());

    let bad = s.write(
        "bad.csv",
        "name,owner,text,jurisdiction,registration_no,classes\nNike,Nike Inc,NIKE,CN,T-1,25\nNike,Nike Inc,耐克,CN,T-2,25;99\n",
    );
    let run = s.run(&["brands", "import", bad.to_str().unwrap()]);
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr().contains("bad.csv:3: classes: class 99"),
        "{}",
        run.stderr()
    );
}

/// The matching switches and price floors, through the database: a TOML file and the same
/// registry as CSV export alike, and the export reads back as the file.
#[tokio::test]
async fn switches_and_price_floors_survive_import_and_export() {
    let toml = GOOD.replace(
        "aliases = [\"N家\"]\n",
        "aliases = [\"N家\"]\nwell_known = true\nwatch_unauthorised = false\n\n  [[brand.price]]\n  words = [\"耳机\", \"earphones\"]\n  classes = [9]\n  min_price_cny = 99\n\n  [[brand.price]]\n  classes = [25]\n  min_price_cny = 399.5\n",
    );
    let s = Scratch::new();
    let file = s.write("brands.toml", &toml);
    s.run(&["brands", "import", file.to_str().unwrap()]).ok();
    let exported = s.run(&["brands", "export"]).ok();
    assert_eq!(
        markwatch::parse_registry_toml(&exported).unwrap(),
        markwatch::parse_registry_toml(&toml).unwrap()
    );
    let again = s.run(&["brands", "import", file.to_str().unwrap()]).ok();
    assert!(
        again.contains("(0 added, 0 updated, 1 unchanged)"),
        "{again}"
    );

    let csv = "name,owner,contacts,reference_price_cny,authorized_sellers,aliases,text,jurisdiction,registration_no,classes,expires,well_known,watch_unauthorised,prices\n\
        Nike,Nike Innovate C.V.,ip@nike.example,500,Nike官方旗舰店,N家,NIKE,CN,TEST-1234567,18;25;28,2031-05-01,yes,no,耳机|earphones|9=99; 25=399.5\n";
    let t = Scratch::new();
    let file = t.write("brands.csv", csv);
    t.run(&["brands", "import", file.to_str().unwrap()]).ok();
    assert_eq!(t.run(&["brands", "export"]).ok(), exported);
}

#[tokio::test]
async fn export_round_trips() {
    let s = Scratch::new();
    s.run(&["brands", "import", demo_brands().to_str().unwrap()])
        .ok();
    let exported = s.path("export.toml");
    s.run(&["brands", "export", "--out", exported.to_str().unwrap()])
        .ok();
    let first = std::fs::read_to_string(&exported).unwrap();
    // The reference images travel with the file, at the paths it names.
    assert_eq!(
        std::fs::read(s.path("images/adidas-1.jpg")).unwrap(),
        std::fs::read(common::repo().join("fixtures/images/adidas-1.jpg")).unwrap()
    );

    let t = Scratch::new();
    let out = t
        .run(&["brands", "import", exported.to_str().unwrap()])
        .ok();
    assert!(out.contains("20 added"), "{out}");
    assert_eq!(
        first,
        t.run(&["brands", "export"]).ok(),
        "export → import → export must be stable"
    );

    // The export holds exactly what the demo file says, brand for brand (images as paths).
    let mut original =
        markwatch::parse_registry_toml(&std::fs::read_to_string(demo_brands()).unwrap()).unwrap();
    let mut back = markwatch::parse_registry_toml(&first).unwrap();
    original.sort_by(|a, b| a.name.cmp(&b.name));
    back.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(original, back);

    // `show` prints one brand in the same format.
    let shown = s.run(&["brands", "show", "Lancôme"]).ok();
    let lancome = markwatch::parse_registry_toml(&shown).unwrap();
    assert_eq!(lancome.len(), 1);
    assert_eq!(lancome[0].marks[0].text, "LANCÔME");
    assert_eq!(s.run(&["brands", "show", "Nikee"]).code(), 1);
}

#[test]
fn config_check_layers_and_redacts() {
    let s = Scratch::new();
    s.write(
        "markwatch.toml",
        "[email]\ntransport = \"smtp\"\n[email.smtp]\nhost = \"mail.example\"\nusername = \"mw\"\n",
    );
    let out = s
        .run_with_env(
            &["config", "check"],
            &[
                ("MARKWATCH_EMAIL__SMTP__PASSWORD", "hunter2"),
                ("MARKWATCH_CRAWL__TIMEOUT_SECS", "12"),
            ],
        )
        .ok();
    assert!(
        out.contains("host = \"mail.example\""),
        "file value missing:\n{out}"
    );
    assert!(
        out.contains("timeout_secs = 12"),
        "env override missing:\n{out}"
    );
    assert!(out.contains("password = \"[redacted]\""), "{out}");
    assert!(!out.contains("hunter2"), "secret leaked:\n{out}");
    // --db beats the file.
    assert!(out.contains("markwatch.db"), "{out}");

    let run = s.run_with_env(
        &["config", "check"],
        &[("MARKWATCH_CRAWL__TIMEOUT_SECS", "soon")],
    );
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr().to_lowercase().contains("crawl.timeout_secs"),
        "{}",
        run.stderr()
    );

    s.write("other.toml", "[crawl]\ntimeout = 5\n");
    let run = s.run(&["--config", "other.toml", "config", "check"]);
    assert_eq!(run.code(), 2);
    assert!(run.stderr().contains("timeout"), "{}", run.stderr());
    assert_eq!(
        s.run(&["--config", "nope.toml", "config", "check"]).code(),
        2
    );
}

#[test]
fn usage_errors_exit_2_and_json_logs_parse() {
    let s = Scratch::new();
    assert_eq!(s.run(&["brands", "frobnicate"]).code(), 2);
    let run = s.run_with_env(
        &[
            "--log-format",
            "json",
            "brands",
            "import",
            demo_brands().to_str().unwrap(),
        ],
        &[("RUST_LOG", "markwatch=info")],
    );
    run.ok();
    let line = run
        .stderr()
        .lines()
        .find(|l| l.contains("registry imported"))
        .map(str::to_owned);
    let line = line.unwrap_or_else(|| panic!("no log line in:\n{}", run.stderr()));
    let v: serde_json::Value = serde_json::from_str(&line).expect("log line is JSON");
    assert_eq!(v["level"], "INFO");
}

#[test]
fn an_error_names_its_cause_once() {
    let s = Scratch::new();
    // The scratch folder has no `crawlers/` folder of definitions.
    let run = s.run(&["crawl", "--once"]);
    let stderr = run.stderr();
    assert_ne!(run.code(), 0, "{stderr}");
    assert!(stderr.contains("crawlers: cannot read"), "{stderr}");
    assert_eq!(stderr.matches("(os error 2)").count(), 1, "{stderr}");
}
