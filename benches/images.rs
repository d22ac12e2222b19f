//! Photos: fingerprinting (decode within bounds, SHA-256, pHash) of product photos as
//! platforms serve them, and finding reference images among 100,000 indexed hashes.
//!
//! Run: `cargo bench --bench images`. Peak memory: `/usr/bin/time -v` around the bench binary
//! (docs/benchmarks.md).

use std::hint::black_box;
use std::io::Cursor;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use image::{ImageFormat, Rgb, RgbImage};
use markwatch::{Brand, BrandImage, ImageHasher, ImageKind, MatchItem, Matcher};

/// A photo-like picture: gradients and blocks, different per seed.
fn photo(seed: u32, side: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(side, side, |x, y| {
        let (u, v) = (x * 255 / side, y * 255 / side);
        let block = ((x / 37 + y / 53 + seed) % 7) as u8 * 30;
        Rgb([
            (u as u8).wrapping_add(block),
            v as u8,
            (u as u8) ^ (seed as u8),
        ])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Jpeg).expect("encodes");
    out.into_inner()
}

fn bench_fingerprint(c: &mut Criterion) {
    let hasher = ImageHasher::new();
    let mut group = c.benchmark_group("fingerprint");
    group.throughput(Throughput::Elements(1));
    for side in [400u32, 800] {
        let bytes = photo(1, side);
        group.bench_with_input(BenchmarkId::new("jpeg", side), &bytes, |b, bytes| {
            b.iter(|| {
                hasher
                    .fingerprint(black_box(bytes), Some("image/jpeg"))
                    .unwrap()
            })
        });
    }
    group.finish();
}

fn bench_lookup(c: &mut Criterion) {
    // 100,008 reference hashes: 5,556 images of 18 variants, spread over 1,000 brands.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let brands: Vec<Brand> = (0..1000)
        .map(|b| Brand {
            name: format!("Brand{b}"),
            images: (0..if b < 556 { 6 } else { 5 })
                .map(|i| BrandImage {
                    path: format!("b{b}-{i}.jpg"),
                    kind: ImageKind::Product,
                    sha256: String::new(),
                    hashes: (0..18).map(|_| next()).collect(),
                    bytes: Vec::new(),
                })
                .collect(),
            ..Brand::default()
        })
        .collect();
    let matcher = Matcher::new(&brands).expect("builds");
    let near = brands[500].images[2].hashes[7] ^ 0b1011_0000_0001;
    let far = next();
    let mut group = c.benchmark_group("photo_lookup_100k");
    for (name, photo) in [("near", near), ("unrelated", far)] {
        let photos = [photo];
        let item = MatchItem {
            title: "男款 跑鞋 透气",
            platform: "taobao",
            images: &photos,
            ..MatchItem::default()
        };
        group.bench_function(name, |b| b.iter(|| matcher.check(black_box(&item))));
    }
    group.finish();
}

criterion_group!(benches, bench_fingerprint, bench_lookup);
criterion_main!(benches);
