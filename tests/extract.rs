//! Extraction boundary: real captured pages, decoding, walls, malformed definitions, and
//! arbitrary bytes. Fixture-platform pages over HTTP are in tests/fixture_server.rs.

use std::path::PathBuf;

use markwatch::extract::{self, ExtractError};
use markwatch::platform::{self, BlockKind, PlatformDef, PlatformError};
use proptest::prelude::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn real_page(name: &str) -> Vec<u8> {
    let path = root().join("../shared/real-pages").join(name);
    let path = if path.exists() {
        path
    } else {
        PathBuf::from("/work/shared/real-pages").join(name)
    };
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn def(rel: &str) -> PlatformDef {
    platform::load_file(&root().join(rel)).unwrap()
}

#[test]
fn shipped_definitions_all_load() {
    let defs = platform::load_dir(&root().join("crawlers")).unwrap();
    let names: Vec<_> = defs.iter().map(|d| d.platform.as_str()).collect();
    assert_eq!(names, ["amazon_cn", "jd", "taobao", "tmall"]);
    let ipp = defs.iter().find(|d| d.platform == "taobao").unwrap();
    assert_eq!(ipp.complaint.max_listings, 300);
    assert!(ipp.complaint.requires_cn_registration);
}

#[test]
fn real_taobao_search_page_yields_all_60_listings() {
    let def = def("tests/data/real/taobao_2018.toml");
    let bytes = real_page("taobao_1.html");
    let decoded = extract::decode_page(&bytes, None, &def.encoding);
    assert_eq!(decoded.encoding_used, "UTF-8");
    let page =
        extract::extract_search(&def, &decoded.text, "https://s.taobao.com/search?q=x").unwrap();
    assert_eq!(page.listings.len(), 60);
    assert!(!page.truncated);
    assert_eq!((page.current_page, page.total_pages), (Some(1), Some(100)));
    assert!(page.has_next);
    let first = &page.listings[0];
    assert_eq!(first.item_id, "571575866125");
    assert_eq!(
        first.title,
        "钩花镂空v领短袖蕾丝衫女夏装2018新款宽松显瘦开衫超仙闺蜜上衣"
    );
    assert_eq!(first.price, Some(99.0));
    assert_eq!(first.seller.as_deref(), Some("machael_go"));
    assert_eq!(first.location.as_deref(), Some("浙江 宁波"));
    assert_eq!(
        first.url,
        "https://item.taobao.com/item.htm?id=571575866125"
    );
    assert_eq!(
        first.detail_url.as_deref(),
        Some("https://item.taobao.com/item.htm?id=571575866125&ns=1&abbucket=0#detail")
    );
    let last = page.listings.last().unwrap();
    assert_eq!(
        (last.item_id.as_str(), last.price),
        ("571272658213", Some(98.0))
    );
    assert!(page.listings.iter().all(|l| !l.is_ad));
    let mut ids: Vec<_> = page.listings.iter().map(|l| &l.item_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 60);
}

#[test]
fn real_jd_search_page_with_bom_yields_all_60_listings() {
    let def = def("tests/data/real/jd_2016.toml");
    let bytes = real_page("jd_1.html");
    let decoded = extract::decode_page(&bytes, Some("text/html"), &def.encoding);
    assert_eq!(decoded.source, extract::CharsetSource::Bom);
    let page = extract::extract_search(
        &def,
        &decoded.text,
        "https://search.jd.com/Search?keyword=123&enc=utf-8",
    )
    .unwrap();
    assert_eq!(page.listings.len(), 60);
    let first = &page.listings[0];
    assert_eq!(first.item_id, "11371342");
    assert_eq!(first.title, "123成人式");
    assert_eq!(first.price, Some(25.2));
    assert_eq!(first.seller_id.as_deref(), Some("1000004210"));
    assert_eq!(first.url, "https://item.jd.com/11371342.html");
    let piano = page
        .listings
        .iter()
        .find(|l| l.item_id == "1195464225")
        .unwrap();
    assert_eq!(piano.title, "卡罗德Carod钢琴T23立式家用教学 黑色");
    assert_eq!(piano.price, Some(16899.0));
    assert!(page.has_next, "page 1 of 50");
    assert!(page.listings.iter().all(|l| l.price.is_some()));
}

#[test]
fn real_tmall_item_page_in_gbk_yields_its_item() {
    let def = def("tests/data/real/tmall_2020.toml");
    let bytes = real_page("tmall_2.html");
    assert!(std::str::from_utf8(&bytes).is_err(), "real GBK bytes");
    let listings = extract::extract_file(&def, &bytes, None).unwrap();
    assert_eq!(listings.len(), 1);
    let l = &listings[0];
    assert_eq!(l.item_id, "609353516840");
    assert_eq!(l.url, "https://detail.tmall.com/item.htm?id=609353516840");
    assert!(
        l.title
            .starts_with("【6期免息/春节正常发货】Apple/苹果 iPhone 11 pro"),
        "{}",
        l.title
    );
    assert_eq!(l.seller.as_deref(), Some("能良数码官方旗舰店"));
    assert_eq!(l.price, Some(8699.0));
    assert_eq!(l.currency, "CNY");

    let decoded = extract::decode_page(&bytes, None, &def.encoding);
    let detail =
        extract::extract_detail(&def, &decoded.text, "https://detail.tmall.com/item.htm").unwrap();
    assert!(detail.images.len() >= 3, "{:?}", detail.images);
    assert!(
        detail
            .images
            .iter()
            .all(|i| i.starts_with("https://img.alicdn.com/"))
    );
}

#[test]
fn truncated_real_pages_yield_only_complete_listings() {
    let jd = def("tests/data/real/jd_2016.toml");
    let text = extract::decode_page(&real_page("jd_1.html"), None, "utf-8").text;
    let full = extract::extract_search(&jd, &text, "https://search.jd.com/").unwrap();
    let tb = def("tests/data/real/taobao_2018.toml");
    let tb_text = String::from_utf8(real_page("taobao_1.html")).unwrap();
    let tb_full = extract::extract_search(&tb, &tb_text, "https://s.taobao.com/").unwrap();
    for frac in [0.1, 0.35, 0.5, 0.62, 0.8, 0.97] {
        for (def, text, full) in [(&jd, &text, &full), (&tb, &tb_text, &tb_full)] {
            let mut cut = (text.len() as f64 * frac) as usize;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            let page = match extract::extract_search(def, &text[..cut], "https://x.test/") {
                Ok(p) => p,
                Err(ExtractError::JsonNotFound { .. }) => continue,
                Err(e) => panic!("{e}"),
            };
            assert!(page.truncated, "{} cut at {frac}", def.platform);
            assert!(page.listings.len() <= full.listings.len());
            // Every listing returned is exactly as on the full page: none half-read.
            for l in &page.listings {
                assert!(
                    full.listings.contains(l),
                    "{} cut at {frac}: {l:?}",
                    def.platform
                );
            }
        }
    }
}

#[test]
fn gbk_page_with_lying_meta_decodes() {
    let html =
        "<html><head><meta charset=\"utf-8\"></head><body>耐克官方旗舰店 ￥83.22</body></html>";
    let bytes = encoding_rs::GB18030.encode(html).0.into_owned();
    let d = extract::decode_page(&bytes, None, "utf-8");
    assert!(d.text.contains("耐克官方旗舰店 ￥83.22"));
    assert!(!d.had_errors);
}

fn bad(name: &str) -> String {
    match platform::load_file(&root().join("tests/data/crawlers").join(name)) {
        Ok(_) => panic!("{name} loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn malformed_definitions_name_the_file_and_key() {
    let e = bad("invalid-unknown-key.toml");
    assert!(e.contains("invalid-unknown-key.toml"), "{e}");
    assert!(e.contains("tittle"), "{e}");

    let e = bad("invalid-selector.toml");
    assert!(e.contains("invalid-selector.toml"), "{e}");
    assert!(e.contains("search.fields.title.css"), "{e}");

    let e = bad("invalid-regex.toml");
    assert!(e.contains("blocked[0].pattern"), "{e}");

    let e = bad("invalid-css-in-json.toml");
    assert!(e.contains("search.fields.seller"), "{e}");
    assert!(e.contains("embedded JSON"), "{e}");

    let e = bad("invalid-missing-complaint.toml");
    assert!(e.contains("missing field `complaint`"), "{e}");

    let e = bad("invalid-placeholder.toml");
    assert!(e.contains("urls.search") && e.contains("{kw}"), "{e}");

    let e = bad("invalid-encoding.toml");
    assert!(e.contains("`encoding`") && e.contains("latin-9000"), "{e}");
}

#[test]
fn a_bad_file_fails_the_whole_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("crawlers/jd.toml"), dir.path().join("jd.toml")).unwrap();
    std::fs::copy(
        root().join("tests/data/crawlers/invalid-selector.toml"),
        dir.path().join("zz.toml"),
    )
    .unwrap();
    let err = platform::load_dir(dir.path()).unwrap_err();
    assert!(matches!(err, PlatformError::Invalid { .. }));
    assert!(err.to_string().contains("zz.toml"));

    std::fs::remove_file(dir.path().join("zz.toml")).unwrap();
    std::fs::copy(root().join("crawlers/jd.toml"), dir.path().join("jd2.toml")).unwrap();
    let err = platform::load_dir(dir.path()).unwrap_err();
    assert!(matches!(err, PlatformError::Duplicate { .. }), "{err}");
}

fn wall(platform: &str, file: &str) -> Option<BlockKind> {
    let def = def(&format!("crawlers/{platform}.toml"));
    let path = root().join("fixtures/platforms").join(platform).join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    extract::detect_block(&def, &text)
}

#[test]
fn walls_are_detected_and_never_parsed() {
    assert_eq!(wall("taobao", "captcha.html"), Some(BlockKind::Captcha));
    assert_eq!(wall("taobao", "login.html"), Some(BlockKind::Login));
    assert_eq!(wall("tmall", "captcha.html"), Some(BlockKind::Captcha));
    assert_eq!(wall("jd", "captcha.html"), Some(BlockKind::Captcha));
    assert_eq!(wall("jd", "login.html"), Some(BlockKind::Login));
    assert_eq!(wall("amazon_cn", "captcha.html"), Some(BlockKind::Captcha));
    assert_eq!(wall("amazon_cn", "login.html"), Some(BlockKind::Login));

    let def = def("crawlers/taobao.toml");
    let text =
        std::fs::read_to_string(root().join("fixtures/platforms/taobao/captcha.html")).unwrap();
    let err =
        extract::extract_search(&def, &text, "https://s.taobao.com/search?q=nike").unwrap_err();
    assert!(
        matches!(
            err,
            ExtractError::Blocked {
                kind: BlockKind::Captcha,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn real_pages_are_not_walls() {
    let tb = def("crawlers/taobao.toml");
    let text = String::from_utf8(real_page("taobao_1.html")).unwrap();
    assert_eq!(extract::detect_block(&tb, &text), None);
    let jd = def("crawlers/jd.toml");
    let text = extract::decode_page(&real_page("jd_1.html"), None, "utf-8").text;
    assert_eq!(extract::detect_block(&jd, &text), None);
}

fn all_defs() -> Vec<PlatformDef> {
    let mut defs = platform::load_dir(&root().join("crawlers")).unwrap();
    for f in ["taobao_2018.toml", "jd_2016.toml", "tmall_2020.toml"] {
        defs.push(def(&format!("tests/data/real/{f}")));
    }
    defs
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        for def in all_defs() {
            let _ = extract::extract_file(&def, &bytes, Some("text/html; charset=gbk"));
            let d = extract::decode_page(&bytes, None, &def.encoding);
            let _ = extract::extract_search(&def, &d.text, "not a url");
            let _ = extract::extract_detail(&def, &d.text, "https://x.test/");
        }
    }

    #[test]
    fn mangled_real_pages_never_panic(
        cut in 0usize..300_000,
        noise in proptest::collection::vec(any::<u8>(), 0..64),
        at in 0usize..300_000,
    ) {
        let tb = def("tests/data/real/taobao_2018.toml");
        let mut bytes = real_page("taobao_1.html");
        bytes.truncate(cut.min(bytes.len()));
        let at = at.min(bytes.len());
        bytes.splice(at..at, noise);
        let _ = extract::extract_file(&tb, &bytes, None);
    }
}
