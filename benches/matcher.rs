//! The registry and the matcher against synthetic registries of 1,000 and 10,000 brands:
//! loading the registry file (TOML parse and validation), building the matcher, and matching
//! throughput (listings/s) single-threaded and as a rayon batch (as `markwatch match` runs).
//! The registries and listings come from `synthetic/` (fixed seeds).
//!
//! Run: `cargo bench --bench matcher`

mod synthetic;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use markwatch::{MatchItem, Matcher, parse_registry_toml, registry_to_toml};
use rayon::prelude::*;
use synthetic::{Listing, listings, registry};

fn item(l: &Listing) -> MatchItem<'_> {
    MatchItem {
        title: &l.title,
        seller: &l.seller,
        price: l.price,
        category: l.category.as_deref(),
        platform: "taobao",
        ..MatchItem::default()
    }
}

fn bench_matcher(c: &mut Criterion) {
    let mut group = c.benchmark_group("match");
    group.sample_size(20);
    group.measurement_time(std::time::Duration::from_secs(8));
    for &n in &[1_000usize, 10_000] {
        let brands = registry(n, 42);
        let marks: usize = brands.iter().map(|b| b.marks.len()).sum();
        let start = std::time::Instant::now();
        let matcher = Matcher::new(&brands).expect("synthetic registry indexes");
        eprintln!(
            "{n} brands, {marks} marks: Matcher::new took {:.2?}",
            start.elapsed()
        );
        let batch = listings(&brands, 20_000, 7);
        let named = batch
            .iter()
            .filter(|l| matcher.check(&item(l)).brand.is_some())
            .count();
        eprintln!(
            "{n} brands: {:.1}% of listings hit a brand",
            100.0 * named as f64 / batch.len() as f64
        );
        group.throughput(Throughput::Elements(batch.len() as u64));
        group.bench_with_input(BenchmarkId::new("single_thread", n), &batch, |b, batch| {
            b.iter(|| {
                for l in batch {
                    black_box(matcher.check(&item(l)));
                }
            })
        });
        group.bench_with_input(BenchmarkId::new("rayon_batch", n), &batch, |b, batch| {
            b.iter(|| {
                batch
                    .par_iter()
                    .map(|l| matcher.check(&item(l)).score)
                    .sum::<f64>()
            })
        });
    }
    group.finish();
}

/// Building the matcher: loading the converter and segmenter, indexing the registry.
fn bench_build(c: &mut Criterion) {
    let mut group = c.benchmark_group("matcher_new");
    group.sample_size(10);
    for &n in &[1_000usize, 10_000] {
        let brands = registry(n, 42);
        group.bench_with_input(BenchmarkId::from_parameter(n), &brands, |b, brands| {
            b.iter(|| Matcher::new(black_box(brands)).expect("synthetic registry indexes"))
        });
    }
    group.finish();
}

/// Reading a registry file: TOML parse, validation, line numbers for every value.
fn bench_load(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry_load");
    group.sample_size(10);
    for &n in &[1_000usize, 10_000] {
        let text = registry_to_toml(&registry(n, 42));
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &text, |b, text| {
            b.iter(|| parse_registry_toml(black_box(text)).expect("synthetic registry is valid"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_load, bench_matcher, bench_build);
criterion_main!(benches);
