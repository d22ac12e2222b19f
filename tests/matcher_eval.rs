//! The matcher against the labelled catalogue (fixtures/listings.jsonl + labels.jsonl) and
//! the demo registry: the floors a brand owner relies on. Run with `--nocapture` to see
//! the full report.

use std::fs::File;
use std::io::BufReader;

use markwatch::matcher::{Matcher, evaluate, read_labels, read_listings};
use markwatch::model::{Brand, Mark};
use serde::Deserialize;

/// fixtures/brands.toml, read with a small private shape until the registry module lands.
fn demo_brands() -> Vec<Brand> {
    #[derive(Deserialize)]
    struct RegistryFile {
        brand: Vec<BrandRow>,
    }
    #[derive(Deserialize)]
    struct BrandRow {
        name: String,
        owner: String,
        contacts: Vec<String>,
        reference_price_cny: Option<f64>,
        authorized_sellers: Vec<String>,
        aliases: Vec<String>,
        mark: Vec<Mark>,
    }
    let text = std::fs::read_to_string(fixture("brands.toml")).unwrap();
    let file: RegistryFile = toml::from_str(&text).unwrap();
    file.brand
        .into_iter()
        .map(|b| Brand {
            name: b.name,
            owner: b.owner,
            contacts: b.contacts,
            reference_price_cny: b.reference_price_cny,
            authorized_sellers: b.authorized_sellers,
            aliases: b.aliases,
            marks: b.mark,
        })
        .collect()
}

fn fixture(name: &str) -> String {
    format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_labelled_catalogue_meets_the_floors() {
    let matcher = Matcher::new(&demo_brands()).unwrap();
    let listings =
        read_listings(BufReader::new(File::open(fixture("listings.jsonl")).unwrap())).unwrap();
    let labels = read_labels(BufReader::new(File::open(fixture("labels.jsonl")).unwrap())).unwrap();
    assert!(listings.len() >= 300, "only {} listings", listings.len());

    let report = evaluate(&matcher, &listings, &labels);
    println!("{report}");
    assert!(report.unlabelled.is_empty() && report.missing.is_empty());
    assert!(report.precision() >= 0.95, "precision {:.3}", report.precision());
    assert!(report.recall() >= 0.9, "recall {:.3}", report.recall());
    for (kind, stats) in report.kinds.iter().filter(|(_, s)| s.positive) {
        assert!(stats.rate() >= 0.8, "{kind}: recall {:.3}", stats.rate());
    }
    // Every honest kind, the look-alikes included, stays mostly clear.
    for (kind, stats) in report.kinds.iter().filter(|(_, s)| !s.positive) {
        assert!(stats.rate() <= 0.2, "{kind}: false-positive rate {:.3}", stats.rate());
    }
}
