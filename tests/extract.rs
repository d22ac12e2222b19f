//! Extraction boundary: pages in the layouts of real captured ones, decoding, walls, malformed
//! definitions, and arbitrary bytes. Fixture-platform pages over HTTP are in
//! tests/fixture_server.rs.
//!
//! The layouts are those of the three captured pages described in shared/real-pages/SOURCES.md
//! (2018 Taobao search, 2016 JD search, 2020 Tmall item page), and the definitions for them
//! are tests/data/real/*.toml. The pages themselves are other people's files that are not to be
//! copied into the project, and tests read nothing outside the repository, so the pages here
//! are written in `pages` below: the same structure and quirks (JSON in an inline script with
//! `\u003d` escapes and protocol-relative URLs, a byte-order mark, GBK bytes, JSON inside
//! `TShop.Setup(...)`), our own content.

use markwatch::{
    CharsetSource, decode_page, detect_block, extract_detail, extract_file, extract_search,
    load_definition, load_definitions,
};
use std::path::PathBuf;

use markwatch::ExtractError;
use markwatch::{BlockKind, PlatformDef, PlatformError};
use proptest::prelude::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Pages in the captured pages' layouts, with made-up listings.
mod pages {
    /// Listings per search page, as on the captured Taobao and JD pages.
    pub const PER_PAGE: usize = 60;

    pub fn taobao_id(i: usize) -> String {
        format!("{}", 571_000_000_000u64 + 7 * i as u64)
    }

    pub fn taobao_title(i: usize) -> String {
        format!("示例连衣裙{i}号 夏装2018新款宽松显瘦 v领短袖")
    }

    /// A 2018 Taobao search page: no listing elements; the listings are JSON in an inline
    /// script, `g_page_config.mods.itemlist.data.auctions[]`. The last one is an ad (P4P),
    /// whose `detail_url` is a `click.simba` redirect.
    pub fn taobao() -> String {
        let mut auctions = Vec::new();
        for i in 0..PER_PAGE {
            let id = taobao_id(i);
            let detail_url = if i == PER_PAGE - 1 {
                format!("https://click.simba.taobao.com/cc_im?p=x\\u0026s=1\\u0026item_id={id}")
            } else {
                format!(
                    "//item.taobao.com/item.htm?id\\u003d{id}\\u0026ns\\u003d1\\u0026abbucket\\u003d0#detail"
                )
            };
            auctions.push(format!(
                r#"{{"p4p":{p4p},"nid":"{id}","category":"50010850","pid":"","title":"\u003cspan class\u003dH\u003e示例\u003c/span\u003e连衣裙","raw_title":"{title}","pic_url":"//g-search3.alicdn.com/img/bao/uploaded/i4/i{i}/example.jpg","detail_url":"{detail_url}","view_price":"{price}.00","view_fee":"0.00","item_loc":"浙江 宁波","view_sales":"{sales}人付款","comment_count":"{i}","user_id":"{user}","nick":"shop_{i}","shopcard":{{"levelClasses":[],"isTmall":false}}}}"#,
                p4p = i == PER_PAGE - 1,
                title = taobao_title(i),
                price = 99 - (i % 10),
                sales = 10 * i + 3,
                user = 3_000_000 + i,
            ));
        }
        format!(
            r#"<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>连衣裙_淘宝搜索</title>
<link rel="stylesheet" href="//g.alicdn.com/tb/tsrp/1.0.0/p/search/index.css">
</head>
<body class="srp">
<div id="J_SiteNav"><a href="https://login.taobao.com/member/login.jhtml" target="_top">亲，请登录</a>
<a href="https://reg.taobao.com/member/newbie.htm">免费注册</a></div>
<div id="main"><div class="grid-left"><div id="mainsrp-itemlist"></div><div id="mainsrp-pager"></div></div></div>
<script>
    g_page_config = {{"pageName":"mainsrp","mods":{{"shopcombotip":{{"status":"hide"}},"itemlist":{{"status":"show","data":{{"postFeeText":"运费","trace":"msrp_auction","auctions":[{auctions}],"recommendAuctions":[]}}}},"pager":{{"status":"show","data":{{"pageSize":{per},"totalPage":100,"currentPage":1,"totalCount":6000}}}},"noresult":{{"status":"hide"}}}},"mainInfo":{{"currentUrl":"https://s.taobao.com/search?q=x","modLinks":{{"filter":"//s.taobao.com/search?q=x"}}}}}};
    g_srp_loadCss();
    g_srp_init();
</script>
<div id="footer">© 2018 示例页</div>
</body>
</html>
"#,
            auctions = auctions.join(","),
            per = PER_PAGE,
        )
    }

    pub fn jd_sku(i: usize) -> String {
        format!("{}", 11_000_000 + 13 * i)
    }

    /// A 2016 JD search page: a UTF-8 byte-order mark first, then 60 `li.gl-item[data-sku]`.
    /// The price is in `strong[data-price]` or, on every third item, only in `.p-price i`;
    /// no shop names, only `data-venid`. Item 7 is a piano.
    pub fn jd() -> Vec<u8> {
        let mut items = String::new();
        for i in 0..PER_PAGE {
            let sku = jd_sku(i);
            let (title, price) = if i == 7 {
                (
                    "示例Carod钢琴T23立式家用教学 黑色".to_owned(),
                    "16899.00".to_owned(),
                )
            } else {
                (
                    format!("示例收纳盒{i} 家用 大号"),
                    format!("{}.{:02}", 20 + i, i),
                )
            };
            let strong = if i % 3 == 2 {
                format!(r#"<strong class="J_{sku}"><em>￥</em><i>{price}</i></strong>"#)
            } else {
                format!(
                    r#"<strong class="J_{sku}" data-price="{price}"><em>￥</em><i>{price}</i></strong>"#
                )
            };
            items.push_str(&format!(
                r#"<li class="gl-item" data-sku="{sku}" data-spu="{sku}" data-pid="{sku}">
<div class="gl-i-wrap">
<div class="p-img"><a target="_blank" title="{title}" href="//item.jd.com/{sku}.html"><img width="220" height="220" class="err-product" src="//img13.360buyimg.com/n7/jfs/t{i}/example.jpg"></a><div data-lease="" data-catid="9855" data-venid="{ven}" data-presale="0"></div></div>
<div class="p-price">{strong}</div>
<div class="p-name"><a target="_blank" title="{title}" href="//item.jd.com/{sku}.html"><em>{title}</em><i class="promo-words"></i></a></div>
<div class="p-commit"><strong>已有<a href="//item.jd.com/{sku}.html#comment">{i}00+</a>条评价</strong></div>
</div>
</li>
"#,
                ven = 1_000_004_000 + i,
            ));
        }
        let html = format!(
            r#"<!DOCTYPE html>
<html>
<head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8" />
<title>示例 - 商品搜索 - 京东</title>
<script>var SEARCH = {{}}; SEARCH.base_url='keyword=123&enc=utf-8'; SEARCH.adv_param={{page:"1",page_count:"50",psort:"",cid1:"",cid2:""}};</script>
</head>
<body>
<div id="J_searchWrap"><div id="J_goodsList" class="goods-list-v2 gl-type-1"><ul class="gl-warp clearfix">
{items}</ul></div>
<div id="J_bottomPage" class="page clearfix"><span class="p-num"><a class="curr">1</a><a href="javascript:SEARCH.page(3)">2</a></span></div></div>
<div id="footer-2014">© 2016 示例页</div>
</body>
</html>
"#
        );
        let mut bytes = "\u{feff}".as_bytes().to_vec();
        bytes.extend_from_slice(html.as_bytes());
        bytes
    }

    pub const TMALL_ID: &str = "609353516840";
    pub const TMALL_TITLE: &str = "【示例】Apple/苹果 iPhone 11 Pro 手机 官方正品";
    pub const TMALL_SHOP: &str = "示例数码官方旗舰店";

    /// A 2020 Tmall item page in GBK bytes: title and shop in the HTML, item data as JSON
    /// inside `TShop.Setup({...});`.
    pub fn tmall() -> Vec<u8> {
        let thumbs: String = (1..=5)
            .map(|i| {
                format!(
                    r##"<li><a href="#"><img src="https://img.alicdn.com/imgextra/i{i}/2200/O1CN0{i}example.jpg_60x60q90.jpg" /></a></li>"##
                )
            })
            .collect();
        let html = format!(
            r#"<!DOCTYPE html>
<html>
<head>
<meta charset="gbk" />
<title>{title}-tmall.com天猫</title>
</head>
<body class="tm-pc">
<div class="tb-detail-hd">
<h1 data-spm="1000983">
{title}
</h1>
<p class="newp">以旧换新 享补贴</p>
</div>
<form id="J_FrmBid" method="post" action="https://buy.tmall.com/order/confirm_order.htm">
<input type="hidden" name="seller_nickname" value="{shop}" />
<input type="hidden" name="title" value="{title}" />
</form>
<ul id="J_UlThumb" class="tb-thumb tm-clear">{thumbs}</ul>
<script>
TShop.Setup(
  {{"api":{{"descUrl":"//dsc.taobaocdn.com/i4/example"}},"itemDO":{{"brand":"Apple/苹果","categoryId":"1512","itemId":"{id}","reservePrice":"8699.00","title":"{title}","userId":"2200000000"}},"rateConfig":{{"itemId":{id}}}}}
);
</script>
</body>
</html>
"#,
            title = TMALL_TITLE,
            shop = TMALL_SHOP,
            id = TMALL_ID,
        );
        encoding_rs::GBK.encode(&html).0.into_owned()
    }
}

fn def(rel: &str) -> PlatformDef {
    load_definition(&root().join(rel)).unwrap()
}

#[test]
fn shipped_definitions_all_load() {
    let defs = load_definitions(&root().join("crawlers")).unwrap();
    let names: Vec<_> = defs.iter().map(|d| d.platform.as_str()).collect();
    assert_eq!(names, ["amazon_cn", "domains", "jd", "taobao", "tmall"]);
    // The domain watch's definition is never searched.
    assert_eq!(
        markwatch::crawlable(&defs),
        ["amazon_cn", "jd", "taobao", "tmall"]
    );
    let ipp = defs.iter().find(|d| d.platform == "taobao").unwrap();
    assert_eq!(ipp.complaint.max_listings, 300);
    assert!(ipp.complaint.requires_cn_registration);
}

#[test]
fn taobao_2018_search_page_yields_all_60_listings() {
    let def = def("tests/data/real/taobao_2018.toml");
    let bytes = pages::taobao().into_bytes();
    let decoded = decode_page(&bytes, None, &def.encoding);
    assert_eq!(decoded.encoding_used, "UTF-8");
    let page = extract_search(&def, &decoded.text, "https://s.taobao.com/search?q=x").unwrap();
    assert_eq!(page.listings.len(), 60);
    assert!(!page.truncated);
    assert_eq!((page.current_page, page.total_pages), (Some(1), Some(100)));
    assert!(page.has_next);
    let first = &page.listings[0];
    let id = pages::taobao_id(0);
    assert_eq!(first.item_id, id);
    assert_eq!(first.title, pages::taobao_title(0));
    assert_eq!(first.price, Some(99.0));
    assert_eq!(first.seller.as_deref(), Some("shop_0"));
    assert_eq!(first.seller_id.as_deref(), Some("3000000"));
    assert_eq!(first.location.as_deref(), Some("浙江 宁波"));
    assert_eq!(first.sales.as_deref(), Some("3人付款"));
    assert_eq!(
        first.url,
        format!("https://item.taobao.com/item.htm?id={id}")
    );
    // `\u003d` and `\u0026` in the JSON, and a protocol-relative URL.
    assert_eq!(
        first.detail_url.as_deref(),
        Some(format!("https://item.taobao.com/item.htm?id={id}&ns=1&abbucket=0#detail").as_str())
    );
    assert!(!first.is_ad);
    // The ad links through click.simba; its id is still its own.
    let last = page.listings.last().unwrap();
    assert_eq!(
        (last.item_id.as_str(), last.price),
        (pages::taobao_id(59).as_str(), Some(90.0))
    );
    assert!(last.is_ad);
    assert_eq!(page.listings.iter().filter(|l| l.is_ad).count(), 1);
    let mut ids: Vec<_> = page.listings.iter().map(|l| &l.item_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 60);
}

#[test]
fn jd_2016_search_page_with_bom_yields_all_60_listings() {
    let def = def("tests/data/real/jd_2016.toml");
    let bytes = pages::jd();
    let decoded = decode_page(&bytes, Some("text/html"), &def.encoding);
    assert_eq!(decoded.source, CharsetSource::Bom);
    let page = extract_search(
        &def,
        &decoded.text,
        "https://search.jd.com/Search?keyword=123&enc=utf-8",
    )
    .unwrap();
    assert_eq!(page.listings.len(), 60);
    let first = &page.listings[0];
    let sku = pages::jd_sku(0);
    assert_eq!(first.item_id, sku);
    assert_eq!(first.title, "示例收纳盒0 家用 大号");
    assert_eq!(first.price, Some(20.0));
    assert_eq!(first.seller_id.as_deref(), Some("1000004000"));
    assert_eq!(first.url, format!("https://item.jd.com/{sku}.html"));
    let piano = page
        .listings
        .iter()
        .find(|l| l.item_id == pages::jd_sku(7))
        .unwrap();
    assert_eq!(piano.title, "示例Carod钢琴T23立式家用教学 黑色");
    assert_eq!(piano.price, Some(16899.0));
    // Without `data-price`, the price is read from `.p-price i`.
    let third = &page.listings[2];
    assert_eq!(third.price, Some(22.02));
    assert!(page.has_next, "page 1 of 50");
    assert!(page.listings.iter().all(|l| l.price.is_some()));
}

#[test]
fn tmall_2020_item_page_in_gbk_yields_its_item() {
    let def = def("tests/data/real/tmall_2020.toml");
    let bytes = pages::tmall();
    assert!(std::str::from_utf8(&bytes).is_err(), "GBK bytes");
    let listings = extract_file(&def, &bytes, None).unwrap();
    assert_eq!(listings.len(), 1);
    let l = &listings[0];
    assert_eq!(l.item_id, pages::TMALL_ID);
    assert_eq!(
        l.url,
        format!("https://detail.tmall.com/item.htm?id={}", pages::TMALL_ID)
    );
    assert_eq!(l.title, pages::TMALL_TITLE);
    assert_eq!(l.seller.as_deref(), Some(pages::TMALL_SHOP));
    assert_eq!(l.price, Some(8699.0));
    assert_eq!(l.currency, "CNY");

    let decoded = decode_page(&bytes, None, &def.encoding);
    let detail = extract_detail(&def, &decoded.text, "https://detail.tmall.com/item.htm").unwrap();
    assert_eq!(detail.images.len(), 5, "{:?}", detail.images);
    assert!(
        detail
            .images
            .iter()
            .all(|i| i.starts_with("https://img.alicdn.com/"))
    );
}

#[test]
fn truncated_pages_yield_only_complete_listings() {
    let jd = def("tests/data/real/jd_2016.toml");
    let text = decode_page(&pages::jd(), None, "utf-8").text;
    let full = extract_search(&jd, &text, "https://search.jd.com/").unwrap();
    let tb = def("tests/data/real/taobao_2018.toml");
    let tb_text = pages::taobao();
    let tb_full = extract_search(&tb, &tb_text, "https://s.taobao.com/").unwrap();
    for frac in [0.1, 0.35, 0.5, 0.62, 0.8, 0.97] {
        for (def, text, full) in [(&jd, &text, &full), (&tb, &tb_text, &tb_full)] {
            let mut cut = (text.len() as f64 * frac) as usize;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            let page = match extract_search(def, &text[..cut], "https://x.test/") {
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
    let d = decode_page(&bytes, None, "utf-8");
    assert!(d.text.contains("耐克官方旗舰店 ￥83.22"));
    assert!(!d.had_errors);
}

fn bad(name: &str) -> String {
    match load_definition(&root().join("tests/data/crawlers").join(name)) {
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
    let err = load_definitions(dir.path()).unwrap_err();
    assert!(matches!(err, PlatformError::Invalid { .. }));
    assert!(err.to_string().contains("zz.toml"));

    std::fs::remove_file(dir.path().join("zz.toml")).unwrap();
    std::fs::copy(root().join("crawlers/jd.toml"), dir.path().join("jd2.toml")).unwrap();
    let err = load_definitions(dir.path()).unwrap_err();
    assert!(matches!(err, PlatformError::Duplicate { .. }), "{err}");
}

fn wall(platform: &str, file: &str) -> Option<BlockKind> {
    let def = def(&format!("crawlers/{platform}.toml"));
    let path = root().join("fixtures/platforms").join(platform).join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    detect_block(&def, &text)
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
    let err = extract_search(&def, &text, "https://s.taobao.com/search?q=nike").unwrap_err();
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

/// Search pages carry login links and scripts; only a real wall counts as one.
#[test]
fn search_pages_are_not_walls() {
    let tb = def("crawlers/taobao.toml");
    let text = pages::taobao();
    assert_eq!(detect_block(&tb, &text), None);
    let jd = def("crawlers/jd.toml");
    let text = decode_page(&pages::jd(), None, "utf-8").text;
    assert_eq!(detect_block(&jd, &text), None);
}

fn all_defs() -> Vec<PlatformDef> {
    let mut defs = load_definitions(&root().join("crawlers")).unwrap();
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
            let _ = extract_file(&def, &bytes, Some("text/html; charset=gbk"));
            let d = decode_page(&bytes, None, &def.encoding);
            let _ = extract_search(&def, &d.text, "not a url");
            let _ = extract_detail(&def, &d.text, "https://x.test/");
        }
    }

    #[test]
    fn mangled_pages_never_panic(
        cut in 0usize..60_000,
        noise in proptest::collection::vec(any::<u8>(), 0..64),
        at in 0usize..60_000,
    ) {
        let tb = def("tests/data/real/taobao_2018.toml");
        let mut bytes = pages::taobao().into_bytes();
        bytes.truncate(cut.min(bytes.len()));
        let at = at.min(bytes.len());
        bytes.splice(at..at, noise);
        let _ = extract_file(&tb, &bytes, None);
    }
}
