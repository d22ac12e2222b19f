//! The matcher against the labelled catalogue (fixtures/listings.jsonl + labels.jsonl) and
//! the demo registry: the floors a brand owner relies on. Run with `--nocapture` to see
//! the full report.

use markwatch::load_registry;
use std::fs::File;
use std::io::BufReader;

use std::path::Path;

use markwatch::Brand;
use markwatch::{Matcher, evaluate, read_labels, read_listings};

fn demo_brands() -> Vec<Brand> {
    load_registry(Path::new(&fixture("brands.toml"))).unwrap()
}

fn fixture(name: &str) -> String {
    format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_labelled_catalogue_meets_the_floors() {
    let matcher = Matcher::new(&demo_brands()).unwrap();
    // The catalogue the fixture platforms serve, and labelled listings they don't.
    let mut listings = Vec::new();
    for file in ["listings.jsonl", "labelled.jsonl"] {
        listings.extend(read_listings(BufReader::new(File::open(fixture(file)).unwrap())).unwrap());
    }
    let labels = read_labels(BufReader::new(File::open(fixture("labels.jsonl")).unwrap())).unwrap();
    assert!(listings.len() >= 300, "only {} listings", listings.len());

    let report = evaluate(&matcher, &listings, &labels);
    println!("{report}");
    assert!(report.unlabelled.is_empty() && report.missing.is_empty());
    assert!(
        report.precision() >= 0.95,
        "precision {:.3}",
        report.precision()
    );
    assert!(report.recall() >= 0.9, "recall {:.3}", report.recall());
    for (kind, stats) in report.kinds.iter().filter(|(_, s)| s.positive) {
        assert!(stats.rate() >= 0.8, "{kind}: recall {:.3}", stats.rate());
    }
    // Every honest kind, the look-alikes included, stays mostly clear.
    for (kind, stats) in report.kinds.iter().filter(|(_, s)| !s.positive) {
        assert!(
            stats.rate() <= 0.2,
            "{kind}: false-positive rate {:.3}",
            stats.rate()
        );
    }
}

/// `markwatch match` and `markwatch eval` as a user runs them.
mod cli {
    use std::io::Write;
    use std::process::{Command, Output};

    use super::fixture;

    fn markwatch(args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_markwatch"))
            .args(args)
            .env("RUST_LOG", "off")
            .output()
            .unwrap()
    }

    fn listings_file(lines: &[&str]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        for line in lines {
            writeln!(file, "{line}").unwrap();
        }
        file
    }

    const FAKE: &str = r#"{"id":"fake","platform":"taobao","title":"高仿 ＧＵＣＣＩ 女包","seller":"小店","price":199,"category":"箱包 > 女包","url":null}"#;
    const PLAIN: &str = r#"{"id":"plain","platform":"jd","title":"纯棉 T恤 男","seller":"某店","price":39,"category":null,"url":null}"#;

    #[test]
    fn match_writes_verdicts_in_order_and_stops_at_a_bad_line() {
        let brands = fixture("brands.toml");
        let input = listings_file(&[FAKE, PLAIN]);
        let out = tempfile::NamedTempFile::new().unwrap();
        let run = markwatch(&[
            "match",
            "--brands",
            &brands,
            "--listings",
            input.path().to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ]);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let text = std::fs::read_to_string(out.path()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["id"], "fake");
        assert_eq!(lines[0]["verdict"], "infringing");
        assert_eq!(lines[0]["brand"], "Gucci");
        assert_eq!(lines[0]["mark"], "GUCCI");
        let codes: Vec<&str> = lines[0]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["code"].as_str().unwrap())
            .collect();
        assert!(codes.contains(&"fullwidth") && codes.contains(&"counterfeit_term"));
        assert_eq!(lines[1]["id"], "plain");
        assert_eq!(lines[1]["verdict"], "clear");
        assert!(lines[1]["brand"].is_null());

        let bad = listings_file(&[FAKE, "{\"id\": \"broken\"", PLAIN]);
        let run = markwatch(&[
            "match",
            "--brands",
            &brands,
            "--listings",
            bad.path().to_str().unwrap(),
        ]);
        assert_eq!(run.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains("line 2"), "{stderr}");

        let run = markwatch(&[
            "match",
            "--brands",
            &brands,
            "--listings",
            bad.path().to_str().unwrap(),
            "--skip-bad",
        ]);
        assert!(run.status.success());
        assert_eq!(String::from_utf8_lossy(&run.stdout).lines().count(), 2);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains("skipped line 2"), "{stderr}");
    }

    #[test]
    fn eval_prints_the_figures_and_the_confusion_matrix() {
        let run = markwatch(&[
            "eval",
            "--brands",
            &fixture("brands.toml"),
            "--listings",
            &fixture("listings.jsonl"),
            "--listings",
            &fixture("labelled.jsonl"),
        ]);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(!stdout.contains("labels without a listing"), "{stdout}");
        for part in [
            "overall  precision",
            "recall",
            "F1",
            "homoglyph",
            "lookalike_word",
            "official_store",
            "confusion",
        ] {
            assert!(stdout.contains(part), "{part} missing:\n{stdout}");
        }
    }
}
