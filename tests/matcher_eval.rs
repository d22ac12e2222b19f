//! The matcher against the labelled catalogue (fixtures/listings.jsonl + labels.jsonl) and
//! the demo registry: the floors a brand owner relies on. Run with `--nocapture` to see
//! the full report.

use std::fs::File;
use std::io::BufReader;

use std::path::Path;

use markwatch::matcher::{Matcher, evaluate, read_labels, read_listings};
use markwatch::model::Brand;
use markwatch::registry;

fn demo_brands() -> Vec<Brand> {
    registry::load_file(Path::new(&fixture("brands.toml"))).unwrap()
}

fn fixture(name: &str) -> String {
    format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_labelled_catalogue_meets_the_floors() {
    let matcher = Matcher::new(&demo_brands()).unwrap();
    let listings = read_listings(BufReader::new(
        File::open(fixture("listings.jsonl")).unwrap(),
    ))
    .unwrap();
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
