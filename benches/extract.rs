//! Parse-only throughput: decode + wall check + listing extraction of full search pages
//! (~100 KB) rendered in-process by the fixture server, per platform. This is the ceiling the
//! end-to-end crawl benchmark is compared against.
//!
//! `cargo bench --bench extract`; criterion prints the median time per page and MB/s; the
//! listings per page are in each benchmark's name (listings/s = pages/s x that).

use markwatch::{decode_page, detect_block, extract_search, load_definition};
use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use markwatch::PlatformDef;
use markwatch::{FixtureOptions, FixtureServer};

const PAGES: [(&str, &str); 4] = [
    ("taobao", "nike"),
    ("tmall", "香奈儿"),
    ("jd", "索尼"),
    ("amazon_cn", "sony"),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn parse(def: &PlatformDef, bytes: &[u8], ctype: &str, url: &str) -> usize {
    let decoded = decode_page(bytes, Some(ctype), &def.encoding);
    if detect_block(def, &decoded.text).is_some() {
        return 0;
    }
    extract_search(def, &decoded.text, url)
        .map(|p| p.listings.len())
        .unwrap_or(0)
}

fn bench_search_pages(c: &mut Criterion) {
    let server = FixtureServer::new(FixtureOptions {
        scale: 2,
        seed: 1,
        ..FixtureOptions::from_source_tree()
    })
    .expect("fixtures");
    let mut group = c.benchmark_group("parse_search_page");
    for (platform, keyword) in PAGES {
        let def = load_definition(&root().join(format!("crawlers/{platform}.toml"))).unwrap();
        let bytes = server.render_search_page(platform, keyword, 1).unwrap();
        let ctype = if def.encoding == "gbk" {
            "text/html; charset=GBK"
        } else {
            "text/html; charset=utf-8"
        };
        let url = def.search_url(keyword, 1);
        let n = parse(&def, &bytes, ctype, &url);
        assert_eq!(n as u32, def.page_size(), "{platform}: a full page");
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(
            format!("{platform}/{}KB/{n}_listings", bytes.len() / 1024),
            |b| b.iter(|| parse(&def, black_box(&bytes), ctype, &url)),
        );
    }
    // The captured real pages, for comparison with the fixtures.
    for (file, defn) in [
        ("taobao_1.html", "tests/data/real/taobao_2018.toml"),
        ("jd_1.html", "tests/data/real/jd_2016.toml"),
    ] {
        let path = root().join("../shared/real-pages").join(file);
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let def = load_definition(&root().join(defn)).unwrap();
        let url = def.search_url("x", 1);
        let n = parse(&def, &bytes, "text/html", &url);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(
            format!(
                "real_{}/{}KB/{n}_listings",
                def.platform,
                bytes.len() / 1024
            ),
            |b| b.iter(|| parse(&def, black_box(&bytes), "text/html", &url)),
        );
    }
    group.finish();
}

criterion_group!(benches, bench_search_pages);
criterion_main!(benches);
