//! The fixture platforms over real HTTP on loopback, read with the shipped definitions.

mod common;

use markwatch::{decode_page, detect_block, extract_detail, extract_file, extract_search};
use std::collections::BTreeSet;
use std::time::Instant;

use common::{PLATFORMS, Running, definition};

use markwatch::{BlockKind, PlatformDef};
use markwatch::{Fault, FixtureOptions, FixtureServer, parse_faults};

fn options() -> FixtureOptions {
    FixtureOptions::from_source_tree()
}

fn with_query_faults() -> FixtureOptions {
    FixtureOptions {
        query_faults: true,
        ..options()
    }
}

/// Crawls every keyword of every platform page by page and compares with the catalogue.
async fn assert_platforms_serve_exactly_the_catalogue(opts: FixtureOptions) -> u32 {
    let run = Running::start(opts).await;
    let mut most_pages = 0;
    for platform in PLATFORMS {
        let def = definition(platform);
        let mut seen = BTreeSet::new();
        let mut hostile = 0;
        for keyword in run.server.keywords(platform).unwrap() {
            let (got, pages) = run.crawl_keyword(&def, keyword).await;
            most_pages = most_pages.max(pages);
            let want = run.server.search_results(platform, keyword).unwrap();
            assert_eq!(got.len(), want.len(), "{platform} {keyword}");
            for (g, w) in got.iter().zip(&want) {
                let ctx = format!("{platform} {keyword} {}", w.item_id);
                assert_eq!(g.item_id, w.item_id, "{ctx}");
                assert_eq!(g.title, w.title, "{ctx}");
                assert_eq!(g.seller.as_deref(), Some(w.seller.as_str()), "{ctx}");
                assert_eq!(g.price, Some(w.price), "{ctx}");
                assert_eq!(g.is_ad, w.ad, "{ctx}");
                // JD's page flags its own stores (data-selfware, the 自营 badge).
                if platform == "jd" {
                    assert_eq!(g.self_operated, w.seller.contains("自营"), "{ctx}");
                } else {
                    assert!(!g.self_operated, "{ctx}");
                }
                if !w.url.is_empty() {
                    assert_eq!(g.url, w.url, "{ctx}");
                }
                if platform == "taobao" || platform == "tmall" {
                    assert_eq!(g.price_max, w.price_max, "{ctx}");
                }
                let l = g.to_listing(&def);
                assert_eq!(
                    (l.platform.as_str(), l.currency.as_str()),
                    (platform, "CNY")
                );
                if w.title.contains(['<', '\r', '"', '\'']) {
                    hostile += 1;
                }
                seen.insert(g.item_id.clone());
            }
        }
        let all: BTreeSet<_> = run
            .server
            .listings(platform)
            .unwrap()
            .iter()
            .map(|l| l.item_id.clone())
            .collect();
        assert_eq!(
            seen, all,
            "{platform}: every listing is reachable by search"
        );
        assert!(
            hostile > 0,
            "{platform}: the catalogue's hostile titles were exercised"
        );
    }
    most_pages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_platform_serves_exactly_the_catalogue() {
    let pages = assert_platforms_serve_exactly_the_catalogue(options()).await;
    assert!(pages >= 2, "some keyword spans several pages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_mode_multiplies_listings_and_pages_deterministically() {
    let opts = FixtureOptions {
        scale: 3,
        seed: 11,
        ..options()
    };
    let base = FixtureServer::new(options()).unwrap();
    let scaled = FixtureServer::new(opts.clone()).unwrap();
    for p in PLATFORMS {
        assert_eq!(
            scaled.listings(p).unwrap().len(),
            3 * base.listings(p).unwrap().len()
        );
    }
    let again = FixtureServer::new(opts.clone()).unwrap();
    assert_eq!(
        scaled.render_search_page("jd", "lego", 2).unwrap(),
        again.render_search_page("jd", "lego", 2).unwrap()
    );
    let pages = assert_platforms_serve_exactly_the_catalogue(opts).await;
    assert!(pages >= 5, "{pages}");
}

#[tokio::test]
async fn item_pages_carry_shop_price_breadcrumb_and_images() {
    let run = Running::start(options()).await;
    for platform in PLATFORMS {
        let def = definition(platform);
        for l in run.server.listings(platform).unwrap() {
            let real = def.item_url(&l.item_id);
            let fetch = PlatformDef::fetch_url(&real, Some(&run.base(platform)));
            let (status, ctype, body, _) = run.get(&fetch).await;
            assert_eq!(status, 200, "{fetch}");
            let text = decode_page(&body, ctype.as_deref(), &def.encoding).text;
            let d = extract_detail(&def, &text, &real).unwrap();
            let ctx = format!("{platform} {}", l.item_id);
            assert_eq!(d.item_id.as_deref(), Some(l.item_id.as_str()), "{ctx}");
            assert_eq!(d.title.as_deref(), Some(l.title.as_str()), "{ctx}");
            assert_eq!(d.seller.as_deref(), Some(l.seller.as_str()), "{ctx}");
            assert_eq!(d.price, Some(l.price), "{ctx}");
            assert_eq!(d.category, l.category, "{ctx}");
            assert_eq!(d.images.len(), l.images as usize, "{ctx}");
            assert!(d.images.iter().all(|i| i.starts_with("https://")), "{ctx}");
            let listing = d.to_listing(&def).unwrap();
            assert_eq!(listing.category, Some(l.category.join(" > ")));
        }
    }
    let (status, ..) = run.get(&run.url("/jd/1.html")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn unknown_keywords_get_the_platforms_no_results_page() {
    let run = Running::start(options()).await;
    for platform in PLATFORMS {
        let def = definition(platform);
        let page = run.search_page(&def, "zzq-no-such-thing", 1).await;
        assert!(page.listings.is_empty(), "{platform}");
        assert!(!page.has_next, "{platform}");
    }
}

#[tokio::test]
async fn search_pages_have_realistic_size_and_encoding() {
    let run = Running::start(options()).await;
    for (platform, keyword, charset) in [
        ("taobao", "nike", "GBK"),
        ("tmall", "香奈儿", "GBK"),
        ("jd", "索尼", "utf-8"),
        ("amazon_cn", "sony", "utf-8"),
    ] {
        let path = FixtureServer::search_path(platform, keyword, 1).unwrap();
        let (status, ctype, body, _) = run.get(&run.url(&path)).await;
        assert_eq!(status, 200);
        assert_eq!(ctype.unwrap(), format!("text/html; charset={charset}"));
        assert!(
            (60_000..250_000).contains(&body.len()),
            "{platform}: {} bytes",
            body.len()
        );
        if charset == "GBK" {
            assert!(
                std::str::from_utf8(&body).is_err(),
                "{platform} is really GBK"
            );
        }
    }
}

#[tokio::test]
async fn a_title_with_script_tags_cannot_break_taobaos_script() {
    let run = Running::start(options()).await;
    let hostile = run
        .server
        .listings("taobao")
        .unwrap()
        .iter()
        .find(|l| l.title.contains("</script>"))
        .expect("catalogue has a </script> title")
        .clone();
    let keyword = &hostile.keywords[0];
    let path = FixtureServer::search_path("taobao", keyword, 1).unwrap();
    let (_, ctype, body, _) = run.get(&run.url(&path)).await;
    let text = decode_page(&body, ctype.as_deref(), "gbk").text;
    assert!(
        !text.contains(&hostile.title),
        "raw title must not appear in the page"
    );
    assert!(text.contains("\\u003c/script\\u003e"));
}

#[tokio::test]
async fn charset_faults_still_decode_to_the_same_listings() {
    let run = Running::start(with_query_faults()).await;
    for (platform, keyword) in [
        ("taobao", "nike"),
        ("tmall", "迪奥"),
        ("jd", "乐高"),
        ("amazon_cn", "nike"),
    ] {
        let def = definition(platform);
        let normal = run.search_page(&def, keyword, 1).await;
        assert!(!normal.listings.is_empty());
        for fault in ["wrong-charset", "no-charset", "bom"] {
            let page = run
                .search_page_with(&def, keyword, 1, &format!("&fault={fault}"))
                .await;
            assert_eq!(page.listings, normal.listings, "{platform} {fault}");
        }
    }
}

#[tokio::test]
async fn truncated_bodies_yield_only_complete_listings() {
    let run = Running::start(with_query_faults()).await;
    for (platform, keyword) in [
        ("taobao", "nike"),
        ("tmall", "香奈儿"),
        ("jd", "索尼"),
        ("amazon_cn", "sony"),
    ] {
        let def = definition(platform);
        let full = run.search_page(&def, keyword, 1).await;
        let cut = run
            .search_page_with(&def, keyword, 1, "&fault=truncate")
            .await;
        assert!(cut.truncated, "{platform}");
        assert!(cut.listings.len() < full.listings.len(), "{platform}");
        assert_eq!(
            cut.listings[..],
            full.listings[..cut.listings.len()],
            "{platform}"
        );
    }
}

#[tokio::test]
async fn cached_pages_are_the_rendered_bytes_and_faults_still_apply() {
    let plain = Running::start(options()).await;
    let cached = Running::start(FixtureOptions {
        cache_pages: true,
        ..options()
    })
    .await;
    for platform in PLATFORMS {
        let keyword = &plain.server.keywords(platform).unwrap()[0];
        let path = FixtureServer::search_path(platform, keyword, 1).unwrap();
        // Status, content type and body; the URLs differ by port.
        let page = |r: (u16, Option<String>, Vec<u8>, String)| (r.0, r.1, r.2);
        let want = page(plain.get(&plain.url(&path)).await);
        let url = cached.url(&path);
        assert_eq!(
            page(cached.get(&url).await),
            want,
            "{platform}: first render"
        );
        assert_eq!(
            page(cached.get(&url).await),
            want,
            "{platform}: from the cache"
        );
        // A fault on a cached page is served as such, and its body never enters the cache.
        cached
            .server
            .script(&path, [Fault::Truncated, Fault::ServerError]);
        let cut = cached.get(&url).await;
        assert!(cut.2.len() < want.2.len(), "{platform}: truncated");
        assert_eq!(cached.get(&url).await.0, 500, "{platform}");
        assert_eq!(
            page(cached.get(&url).await),
            want,
            "{platform}: after the faults"
        );
    }
}

#[tokio::test]
async fn scripted_faults_play_in_order_with_retry_after() {
    let opts = FixtureOptions {
        faults: parse_faults("429:2,500,503,ok").unwrap(),
        ..options()
    };
    let run = Running::start(opts).await;
    let url = run.url(&FixtureServer::search_path("jd", "lego", 1).unwrap());
    let resp = run.client.get(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(run.get(&url).await.0);
    }
    assert_eq!(statuses, [500, 503, 200, 200]);
    let log = run.server.log();
    assert_eq!(log.count("/jd/Search"), 5);
    let faults: Vec<_> = log.entries().iter().map(|e| e.fault.clone()).collect();
    assert_eq!(faults[0].as_deref(), Some("429:2"));
    assert_eq!(faults[3], None);
}

#[tokio::test]
async fn per_path_scripts_and_walls() {
    let run = Running::start(options()).await;
    let def = definition("taobao");
    let path = FixtureServer::search_path("taobao", "nike", 1).unwrap();
    run.server
        .script(&path, [Fault::Unavailable, Fault::Captcha, Fault::Login]);
    let url = run.url(&path);

    assert_eq!(run.get(&url).await.0, 503);

    let (status, ctype, body, _) = run.get(&url).await;
    assert_eq!(status, 200);
    let text = decode_page(&body, ctype.as_deref(), "gbk").text;
    assert_eq!(detect_block(&def, &text), Some(BlockKind::Captcha));

    let (status, ctype, body, final_url) = run.get(&url).await;
    assert_eq!(status, 200);
    assert!(
        final_url.contains("/taobao/member/login.jhtml?redirectURL="),
        "{final_url}"
    );
    let text = decode_page(&body, ctype.as_deref(), "gbk").text;
    assert_eq!(detect_block(&def, &text), Some(BlockKind::Login));

    // Script used up: the real page again; other paths were never affected.
    let (status, ctype, body, _) = run.get(&url).await;
    assert_eq!(status, 200);
    let text = decode_page(&body, ctype.as_deref(), "gbk").text;
    assert_eq!(detect_block(&def, &text), None);

    for (platform, wall) in [
        ("jd", "captcha"),
        ("jd", "login"),
        ("amazon_cn", "captcha"),
        ("amazon_cn", "login"),
        ("tmall", "login"),
    ] {
        let def = definition(platform);
        let path = FixtureServer::search_path(platform, "nike", 1).unwrap();
        run.server.script(&path, [wall.parse::<Fault>().unwrap()]);
        let (_, ctype, body, _) = run.get(&run.url(&path)).await;
        let text = decode_page(&body, ctype.as_deref(), &def.encoding).text;
        let kind = detect_block(&def, &text);
        let want = if wall == "login" {
            BlockKind::Login
        } else {
            BlockKind::Captcha
        };
        assert_eq!(kind, Some(want), "{platform} {wall}");
    }
}

#[tokio::test]
async fn redirect_chains_and_slow_responses() {
    let run = Running::start(with_query_faults()).await;
    let def = definition("amazon_cn");
    let normal = run.search_page(&def, "sony", 1).await;
    let before = run.server.log().count("/amazon_cn/s?");
    let chained = run
        .search_page_with(&def, "sony", 1, "&fault=redirect:3")
        .await;
    assert_eq!(chained.listings, normal.listings);
    assert_eq!(
        run.server.log().count("/amazon_cn/s?") - before,
        4,
        "3 hops then the page"
    );

    let start = Instant::now();
    let slow = run
        .search_page_with(&def, "sony", 1, "&fault=slow:400")
        .await;
    assert!(start.elapsed().as_millis() >= 400);
    assert_eq!(slow.listings, normal.listings);

    let (status, ..) = run.get(&run.url("/amazon_cn/s?k=sony&fault=teapot")).await;
    assert_eq!(
        status, 400,
        "an unknown fault name is a client error, not a silent ok"
    );
}

#[tokio::test]
async fn query_faults_are_ignored_unless_enabled() {
    let run = Running::start(options()).await;
    let url = run.url(&FixtureServer::search_path("jd", "lego", 1).unwrap()) + "&fault=500";
    assert_eq!(run.get(&url).await.0, 200);
}

#[tokio::test]
async fn rate_faults_are_seeded_and_deterministic() {
    let opts = FixtureOptions {
        fault_rate: 0.3,
        seed: 99,
        fault_pool: parse_faults("429:0,500,503").unwrap(),
        ..options()
    };
    let mut runs = Vec::new();
    for _ in 0..2 {
        let run = Running::start(opts.clone()).await;
        let mut statuses = Vec::new();
        for keyword in run.server.keywords("jd").unwrap().to_vec() {
            for page in 1..=3 {
                let path = FixtureServer::search_path("jd", &keyword, page).unwrap();
                statuses.push(run.get(&run.url(&path)).await.0);
            }
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    let failed = runs[0].iter().filter(|s| **s != 200).count();
    let share = failed as f64 / runs[0].len() as f64;
    assert!((0.1..0.5).contains(&share), "{share}");
}

#[tokio::test]
async fn request_log_is_served_as_json() {
    let run = Running::start(options()).await;
    run.get(&run.url("/jd/Search?keyword=lego&enc=utf-8&page=1"))
        .await;
    run.get(&run.url("/jd/Search?keyword=lego&enc=utf-8&page=1"))
        .await;
    let (status, _, body, _) = run.get(&run.url("/_fixture/requests")).await;
    assert_eq!(status, 200);
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries[0]["path"],
        "/jd/Search?keyword=lego&enc=utf-8&page=1"
    );
    assert_eq!(
        run.server.log().counts()["/jd/Search?keyword=lego&enc=utf-8&page=1"],
        2
    );
}

#[tokio::test]
async fn links_keep_the_real_form_whatever_host_served_the_page() {
    let run = Running::start(options()).await;
    for (platform, keyword, link) in [
        ("amazon_cn", "sony", "https://www.amazon.cn/"),
        ("jd", "索尼", "https://item.jd.com/"),
        ("taobao", "nike", "https://"),
    ] {
        let def = definition(platform);
        let fetch = PlatformDef::fetch_url(&def.search_url(keyword, 1), Some(&run.base(platform)));
        let (_, ctype, body, final_url) = run.get(&fetch).await;
        let text = decode_page(&body, ctype.as_deref(), &def.encoding).text;
        let page = extract_search(&def, &text, &final_url).unwrap();
        for l in &page.listings {
            let d = l.detail_url.as_deref().unwrap_or_default();
            assert!(d.starts_with(link), "{platform}: {d}");
            let img = l.image.as_deref().unwrap_or_default();
            assert!(img.starts_with("https://"), "{platform}: {img}");
        }
    }
}

#[tokio::test]
async fn saved_item_pages_extract_like_search_pages() {
    // What `markwatch extract --platform P FILE` does with a saved item page.
    let run = Running::start(options()).await;
    for platform in PLATFORMS {
        let def = definition(platform);
        let l = &run.server.listings(platform).unwrap()[0];
        let path = FixtureServer::item_path(platform, &l.item_id).unwrap();
        let (_, ctype, body, _) = run.get(&run.url(&path)).await;
        let got = extract_file(&def, &body, ctype.as_deref()).unwrap();
        assert_eq!(got.len(), 1, "{platform}");
        assert_eq!(got[0].item_id, l.item_id);
        assert_eq!(got[0].title, l.title);
        assert_eq!(got[0].url, def.item_url(&l.item_id));
        assert_eq!(got[0].category, Some(l.category.join(" > ")));
    }
}
