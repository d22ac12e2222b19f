//! `markwatch bench domains`: the share of a labelled set of squatted names that the domain
//! watch's candidates cover (recall), by kind of variant; with `--compare`, the same for
//! another tool's list of names (dnstwist's, from benches/domains_dnstwist.sh).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use markwatch::{CandidateOptions, domain_candidates, load_registry};

#[derive(Debug, Args)]
pub struct DomainsBenchArgs {
    /// The labelled names: `domain<TAB>brand<TAB>kind` per line, `#` comments
    #[arg(
        long,
        value_name = "FILE",
        default_value = "fixtures/domains/labelled.tsv"
    )]
    labelled: PathBuf,
    /// The registry the candidates are made from
    #[arg(long, value_name = "FILE", default_value = "fixtures/brands.toml")]
    brands: PathBuf,
    /// Another tool's generated names, one per line (any `#` comments and blank lines skipped),
    /// scored on the same labels
    #[arg(long, value_name = "FILE")]
    compare: Option<PathBuf>,
    /// Print the labelled names each missed
    #[arg(long)]
    misses: bool,
}

struct Label {
    domain: String,
    brand: String,
    kind: String,
}

fn read_labels(path: &Path) -> anyhow::Result<Vec<Label>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let [domain, brand, kind] = cols[..] else {
            bail!(
                "{}:{}: expected domain<TAB>brand<TAB>kind",
                path.display(),
                n + 1
            );
        };
        out.push(Label {
            domain: ascii(domain).with_context(|| {
                format!(
                    "{}:{}: `{domain}` is not a domain name",
                    path.display(),
                    n + 1
                )
            })?,
            brand: brand.to_owned(),
            kind: kind.to_owned(),
        });
    }
    if out.is_empty() {
        bail!("{}: no labelled names", path.display());
    }
    Ok(out)
}

fn ascii(name: &str) -> anyhow::Result<String> {
    Ok(idna::domain_to_ascii(name.trim().trim_end_matches('.'))?)
}

/// Recall by kind (and over all): (found, total).
fn score(labels: &[Label], found: impl Fn(&Label) -> bool) -> BTreeMap<String, (usize, usize)> {
    let mut by_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for l in labels {
        let hit = found(l) as usize;
        for key in [l.kind.as_str(), "all"] {
            let e = by_kind.entry(key.to_owned()).or_default();
            e.0 += hit;
            e.1 += 1;
        }
    }
    by_kind
}

pub fn run(args: DomainsBenchArgs) -> anyhow::Result<ExitCode> {
    let labels = read_labels(&args.labelled)?;
    let brands = load_registry(&args.brands)?;
    let options = CandidateOptions::default();
    let started = std::time::Instant::now();
    let mut ours: HashSet<(String, String)> = HashSet::new();
    let mut generated = 0usize;
    for b in &brands {
        for c in domain_candidates(b, &options) {
            generated += 1;
            ours.insert((b.name.clone(), c.domain));
        }
    }
    let took = started.elapsed();
    for l in &labels {
        if !brands.iter().any(|b| b.name == l.brand) {
            bail!(
                "{}: brand `{}` is not in {}",
                args.labelled.display(),
                l.brand,
                args.brands.display()
            );
        }
    }
    let markwatch = score(&labels, |l| {
        ours.contains(&(l.brand.clone(), l.domain.clone()))
    });
    let theirs: Option<HashSet<String>> = match &args.compare {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Some(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .filter_map(|l| ascii(l).ok())
                    .collect(),
            )
        }
        None => None,
    };
    let other = theirs
        .as_ref()
        .map(|set| score(&labels, |l| set.contains(&l.domain)));
    println!(
        "{} labelled names, {} brands; markwatch generated {generated} candidates in {:.2} s",
        labels.len(),
        brands.len(),
        took.as_secs_f64()
    );
    println!(
        "{:<10} {:>18}{}",
        "kind",
        "markwatch",
        if other.is_some() {
            "            other"
        } else {
            ""
        }
    );
    for (kind, (hit, total)) in &markwatch {
        let ratio = |h: usize, t: usize| format!("{h:>3}/{t:<3} {:.3}", h as f64 / t as f64);
        let theirs = other
            .as_ref()
            .and_then(|o| o.get(kind))
            .map(|(h, t)| format!("   {}", ratio(*h, *t)))
            .unwrap_or_default();
        println!("{kind:<10} {:>18}{theirs}", ratio(*hit, *total));
    }
    if args.misses {
        for l in &labels {
            if !ours.contains(&(l.brand.clone(), l.domain.clone())) {
                println!("markwatch misses {} ({}, {})", l.domain, l.brand, l.kind);
            }
        }
        if let Some(set) = &theirs {
            for l in labels.iter().filter(|l| !set.contains(&l.domain)) {
                println!("other misses {} ({}, {})", l.domain, l.brand, l.kind);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
