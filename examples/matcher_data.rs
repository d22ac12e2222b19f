//! Writes the synthetic registries and listings of `benches/matcher.rs` to files, to time
//! `markwatch match` and `markwatch brands import` end to end (docs/benchmarks.md, "Matching"):
//!
//! ```sh
//! cargo run --release --example matcher_data -- /tmp/mw-bench
//! ```
//!
//! Writes `brands-1k.toml` and `brands-10k.toml` (2-4 marks a brand), `listings-1k.jsonl` and
//! `listings-10k.jsonl` (100,000 listings each, naming brands of that registry as the bench's
//! do), and `import-10k.toml` (10,000 brands with exactly 3 marks each: 30,000 marks).

#[path = "../benches/synthetic/mod.rs"]
mod synthetic;

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use markwatch::{Brand, registry_to_toml};
use serde::Serialize;

/// One line of `markwatch match` input.
#[derive(Serialize)]
struct Record<'a> {
    id: String,
    platform: &'a str,
    title: &'a str,
    seller: &'a str,
    price: Option<f64>,
    category: Option<&'a str>,
}

fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).context("usage: matcher_data DIR")?);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (n, tag) in [(1_000, "1k"), (10_000, "10k")] {
        let brands = synthetic::registry(n, 42);
        write(
            &dir.join(format!("brands-{tag}.toml")),
            registry_to_toml(&brands).as_bytes(),
        )?;
        let path = dir.join(format!("listings-{tag}.jsonl"));
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = BufWriter::new(file);
        for (i, l) in synthetic::listings(&brands, 100_000, 7).iter().enumerate() {
            let record = Record {
                id: format!("bench:{i}"),
                platform: "taobao",
                title: &l.title,
                seller: &l.seller,
                price: l.price,
                category: l.category.as_deref(),
            };
            serde_json::to_writer(&mut out, &record)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
    let import = import_registry(10_000, 42);
    write(
        &dir.join("import-10k.toml"),
        registry_to_toml(&import).as_bytes(),
    )?;
    println!("written to {}", dir.display());
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// A registry of `n` brands with exactly three marks each, a contact and an alias: the shape
/// the import is measured on (10,000 brands, 30,000 marks).
fn import_registry(n: usize, seed: u64) -> Vec<Brand> {
    let mut brands = synthetic::registry(n, seed);
    for brand in &mut brands {
        brand.marks.truncate(3);
        while brand.marks.len() < 3 {
            let mut extra = brand.marks[0].clone();
            extra.text = format!("{} {}", extra.text, brand.marks.len() + 1);
            extra.registration_no = format!("{}-X{}", extra.registration_no, brand.marks.len());
            brand.marks.push(extra);
        }
        let lower = brand.name.to_lowercase();
        brand.contacts = vec![format!("ip@{lower}.example")];
        brand.aliases = vec![format!("{lower}家")];
    }
    brands
}
