//! Writing a definition for a new site with `markwatch extract` (the real binary): what it
//! says when nothing matches, page formats (HTML, JSON, JSONP, JavaScript object literals),
//! pointer wildcards, page currencies, narrowed block markers and detail-only definitions.

mod common;

use common::{Run, Scratch};
use serde_json::Value;

/// A definition: `head` (top-level keys, `[urls]` ...) then the common tail.
fn definition(head: &str) -> String {
    format!(
        r#"platform = "newsite"
name = "New site"
encoding = "utf-8"
{head}

[rate_limit]
requests_per_second = 1.0
concurrency = 1

[retry]
max_attempts = 2
base_backoff_ms = 10
max_backoff_ms = 100

[complaint]
name = "IP desk"
url = "https://ip.example/"
max_listings = 10
requires_cn_registration = false
"#
    )
}

const HTML_SEARCH: &str = r##"
[urls]
search = "https://shop.example/s?q={keyword}&p={page}"
item = "https://shop.example/item/{item_id}"

[pagination]
page_size = 3
max_pages = 1

[search]
items = "ul.results > li"
empty_marker = "没有找到"

[search.fields]
item_id = { attr = "data-id" }
title = { css = "a.name" }
price = { css = ".price" }
sales = { css = ".sold" }
detail_url = { css = "a.name", attr = "href" }
image = { css = "img", attr = "src" }

[detail.fields]
item_id = { css = "#item", attr = "data-id" }
title = { css = "h1" }
"##;

const HTML_PAGE: &str = r#"<html><body><ul class="results">
<li data-id="11"><a class="name" href="/item/11?from=s">耐克 跑鞋</a><span class="price">¥99.00-129.00</span><span class="sold">30人付款</span><img src="//img.example/11.jpg"></li>
<li data-id="12"><a class="name" href="/item/12">耐克 T恤</a><span class="price">¥59.00</span></li>
<li><a class="name" href="/item/13">no id</a></li>
</ul><div id="item" data-id="77"><h1>Item page title</h1></div></body></html>"#;

fn extract(s: &Scratch, def: &str, page: &str, extra: &[&str]) -> Run {
    let d = s.write("def.toml", def);
    let p = s.write("page.html", page);
    let mut args = vec!["extract", "--definition", d.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(p.to_str().unwrap());
    s.run(&args)
}

fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn extract_says_which_rules_ran_and_prints_every_field() {
    let s = Scratch::new();
    let run = extract(&s, &definition(HTML_SEARCH), HTML_PAGE, &[]);
    let out = lines(&run.ok());
    let err = run.stderr();
    assert!(
        err.contains("search rules: `ul.results > li` matched 3 nodes: 2 listings, 1 skipped (1 without an item id, 0 without a title)"),
        "{err}"
    );
    assert_eq!(out.len(), 2);
    let first = &out[0];
    assert_eq!(first["item_id"], "11");
    assert_eq!(first["price"], 99.0);
    assert_eq!(first["price_max"], 129.0);
    assert_eq!(first["sales"], "30人付款");
    assert_eq!(first["detail_url"], "https://shop.example/item/11?from=s");
    assert_eq!(first["image"], "https://img.example/11.jpg");
    assert_eq!(first["currency"], "CNY");
    assert_eq!(first["url"], "https://shop.example/item/11");
}

#[test]
fn a_search_page_yielding_nothing_exits_2_and_says_why() {
    let s = Scratch::new();
    // Wrong item selector.
    let def = definition(&HTML_SEARCH.replace("ul.results > li", "li.result"));
    let run = extract(
        &s,
        &def,
        &HTML_PAGE.replace("<div id=\"item\"", "<div"),
        &["--search"],
    );
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(run.stdout().is_empty());
    let err = run.stderr();
    assert!(
        err.contains("`li.result` matched 0 nodes: 0 listings"),
        "{err}"
    );
    assert!(err.contains("no listings"), "{err}");

    // Wrong title selector: every node is skipped, and the summary says why.
    let def = definition(&HTML_SEARCH.replace("a.name\" }", "a.title\" }"));
    let run = extract(&s, &def, HTML_PAGE, &["--search"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    let err = run.stderr();
    assert!(
        err.contains(
            "matched 3 nodes: 0 listings, 3 skipped (1 without an item id, 2 without a title)"
        ),
        "{err}"
    );

    // A declared "no results" page is not a failure.
    let run = extract(
        &s,
        &definition(HTML_SEARCH),
        "<html><body><p>没有找到</p></body></html>",
        &["--search"],
    );
    run.ok();
    assert!(
        run.stderr().contains("\"no results\" page"),
        "{}",
        run.stderr()
    );
}

const JS_SEARCH: &str = r#"
[urls]
search = "https://shop.example/s?q={keyword}"
item = "https://shop.example/item/{item_id}"

[pagination]
page_size = 60
max_pages = 1

[search]
json = { variable = "window.runParams", items = "/data/items" }

[search.fields]
item_id = { pointer = "/id" }
title = { pointer = "/title" }
price = { pointer = "/price/value" }
currency = { pointer = "/price/currency" }
"#;

#[test]
fn a_javascript_object_literal_is_read_and_a_non_value_is_reported() {
    let s = Scratch::new();
    let page = r#"<html><script>
window.runParams = { data: { items: [ { id: '5001', title: 'Nike Air "classic"', price: { value: '€ 12.50', currency: 'EUR' }, }, ], }, csrfToken: 'ab}c' // note
};
</script></html>"#;
    let run = extract(&s, &definition(JS_SEARCH), page, &[]);
    let out = lines(&run.ok());
    assert_eq!(out.len(), 1, "{}", run.stderr());
    assert_eq!(out[0]["title"], "Nike Air \"classic\"");
    assert_eq!(out[0]["price"], 12.5);
    assert_eq!(out[0]["currency"], "EUR");

    // Neither JSON nor an object literal: a message naming the variable, exit 2.
    let page = "<html><script>window.runParams = loadParams();</script></html>";
    let run = extract(&s, &definition(JS_SEARCH), page, &[]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    let err = run.stderr();
    assert!(
        err.contains("`window.runParams`: not JSON") && err.contains("nor a JavaScript object"),
        "{err}"
    );
}

#[test]
fn json_and_jsonp_pages_are_complete_without_an_html_end() {
    let head = r#"format = "FORMAT"
currency = "USD"

[urls]
search = "https://api.example/s?q={keyword}&page={page}"
item = "https://shop.example/item/{item_id}"

[pagination]
page_size = 2
max_pages = 5

[search]
json = { items = "/result/list" }

[search.fields]
item_id = { pointer = "/nid" }
title = { pointer = "/t" }
price = { pointer = "/p" }
"#;
    let body = r#"{"result":{"list":[{"nid":"1","t":"a","p":"3.50"},{"nid":"2","t":"b","p":4}]}}"#;
    for (format, page) in [
        ("json", body.to_string()),
        ("jsonp", format!("/**/ jsonp_cb_12({body});")),
    ] {
        let def_text = definition(&head.replace("FORMAT", format));
        let path = std::env::temp_dir().join(format!(
            "markwatch-def-{format}-{}.toml",
            std::process::id()
        ));
        std::fs::write(&path, &def_text).unwrap();
        let def = markwatch::load_definition(&path).unwrap();
        std::fs::remove_file(&path).ok();
        let got = markwatch::extract_search(&def, &page, "https://api.example/s").unwrap();
        assert!(
            !got.truncated,
            "{format}: a complete reply is not truncated"
        );
        assert_eq!(got.listings.len(), 2, "{format}");
        assert_eq!(got.listings[1].price, Some(4.0));
        assert_eq!(got.listings[1].currency, "USD");
        // A reply cut off mid-way still is.
        let cut = &page[..page.find(r#"{"nid":"2""#).unwrap() + 5];
        let got = markwatch::extract_search(&def, cut, "https://api.example/s").unwrap();
        assert!(got.truncated, "{format}");
        assert_eq!(got.listings.len(), 1, "{format}");

        let s = Scratch::new();
        let run = extract(&s, &def_text, &page, &[]);
        assert_eq!(lines(&run.ok()).len(), 2, "{format}");
    }
}

#[test]
fn detail_flag_runs_detail_rules_and_wildcards_collect_array_members() {
    let s = Scratch::new();
    // --detail on a page the search rules would read.
    let run = extract(&s, &definition(HTML_SEARCH), HTML_PAGE, &["--detail"]);
    let out = lines(&run.ok());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["item_id"], "77");
    assert_eq!(out[0]["title"], "Item page title");
    assert!(
        run.stderr().contains("detail rules: read item_id, title"),
        "{}",
        run.stderr()
    );

    // A detail-only definition needs no search URL; `*` walks arrays.
    let head = r#"
[urls]
item = "https://www.aliexpress.example/item/{item_id}.html"

[detail]
json = { variable = "window.runParams" }

[detail.fields]
item_id = { pointer = "/data/id" }
title = { pointer = "/data/title" }
category = { pointer = "/data/crumbs/*/name" }
images = { pointer = "/data/images/*/url" }
price = { pointer = "/data/price" }
currency = { pointer = "/data/currency" }
"#;
    let page = r#"<script>window.runParams = {"data":{"id":"1005","title":"Bag","price":"12,00 - 15,00","currency":"EUR",
"crumbs":[{"name":"Home"},{"name":"Bags"}],"images":[{"url":"//img.example/a.jpg"},{"url":"//img.example/b.jpg"}]}};</script>"#;
    let run = extract(&s, &definition(head), page, &[]);
    let out = lines(&run.ok());
    assert_eq!(out[0]["category"], "Home > Bags");
    assert_eq!(
        out[0]["images"],
        serde_json::json!(["https://img.example/a.jpg", "https://img.example/b.jpg"])
    );
    assert_eq!(out[0]["currency"], "EUR");
    assert_eq!(
        out[0]["url"],
        "https://www.aliexpress.example/item/1005.html"
    );

    // A detail page missing its title says so, exit 2.
    let run = extract(
        &s,
        &definition(head),
        &page.replace("\"title\"", "\"name\""),
        &[],
    );
    assert_eq!(run.code(), 2);
    assert!(run.stderr().contains("found no title"), "{}", run.stderr());
}

#[test]
fn a_block_marker_can_be_narrowed_by_what_only_content_has() {
    let def = markwatch::load_definition(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crawlers/taobao.toml"),
    )
    .unwrap();
    let item = r#"<html><body><h3 id="J_Title" class="tb-main-title" data-title="示例">示例</h3>
<iframe src="https://login.taobao.com/_____tmd_____/punish?x5secdata=1"></iframe></body></html>"#;
    assert_eq!(markwatch::detect_block(&def, item), None);
    let wall = r#"<html><body><div id="nocaptcha"></div><iframe src="/_____tmd_____/punish"></iframe></body></html>"#;
    assert_eq!(
        markwatch::detect_block(&def, wall),
        Some(markwatch::BlockKind::Captcha)
    );
}

#[test]
fn new_keys_are_checked_at_load_with_file_and_key_named() {
    let s = Scratch::new();
    let cases = [
        (
            definition(&format!("format = \"xml\"\n{HTML_SEARCH}")),
            "format",
        ),
        (
            definition(&format!("currency = \"euro\"\n{HTML_SEARCH}")),
            "`currency`",
        ),
        (
            definition(&format!(
                "{HTML_SEARCH}\n[[blocked]]\nkind = \"captcha\"\npattern = \"punish\"\nunless = {{ css = \"#a\", regex = \"b\" }}\n"
            )),
            "blocked[0].unless",
        ),
        (
            definition(&format!(
                "{HTML_SEARCH}\n[[blocked]]\nkind = \"captcha\"\npattern = \"punish\"\nunless = {{ css = \"##\" }}\n"
            )),
            "blocked[0].unless.css",
        ),
        (
            definition(&HTML_SEARCH.replace(
                "search = \"https://shop.example/s?q={keyword}&p={page}\"\n",
                "",
            )),
            "urls.search",
        ),
        (
            definition(&format!("format = \"json\"\n{HTML_SEARCH}")),
            "search.items",
        ),
    ];
    for (text, key) in cases {
        let run = extract(&s, &text, HTML_PAGE, &[]);
        assert_eq!(run.code(), 2, "{key}: {}", run.stderr());
        let err = run.stderr();
        assert!(
            err.contains("def.toml") && err.contains(key),
            "{key}: {err}"
        );
    }
    // A TOML-level error names the line too.
    let run = extract(
        &s,
        &definition(&format!("format = \"xml\"\n{HTML_SEARCH}")),
        HTML_PAGE,
        &[],
    );
    assert!(run.stderr().contains("line 4"), "{}", run.stderr());
}

#[test]
fn the_matcher_weighs_only_cny_prices() {
    let s = Scratch::new();
    let brands = s.write(
        "brands.toml",
        r#"[[brand]]
name = "Nike"
owner = "Nike Innovate C.V."
contacts = ["ip@nike.example"]
reference_price_cny = 500

[[brand.mark]]
text = "Nike"
registration_no = "1"
jurisdiction = "CN"
classes = [25]
"#,
    );
    let listings = s.write(
        "l.jsonl",
        "{\"id\":\"a\",\"platform\":\"x\",\"title\":\"Nike shoes original\",\"price\":20}\n{\"id\":\"b\",\"platform\":\"x\",\"title\":\"Nike shoes original\",\"price\":20,\"currency\":\"EUR\"}\n",
    );
    let run = s.run(&[
        "match",
        "--brands",
        brands.to_str().unwrap(),
        "--listings",
        listings.to_str().unwrap(),
    ]);
    let out = lines(&run.ok());
    let price_reasons = |v: &Value| v.to_string().matches("CNY").count();
    assert!(price_reasons(&out[0]) > 0, "{}", out[0]);
    assert_eq!(price_reasons(&out[1]), 0, "{}", out[1]);
}

// ---- listings from captured API replies (the modern Taobao/Tmall search shell) ----

mod mtop {
    use std::sync::Arc;

    use markwatch::{
        BlockKind, CapturedReply, ExtractError, FixtureMode, FixtureOptions, FixtureServer,
        MTOP_APP_KEY, MTOP_SEARCH_API, ModernOptions, decode_capture, detect_block_captured,
        extract_search, extract_search_captured, extract_search_captured_lenient, mtop_sign,
    };
    use reqwest::cookie::{CookieStore, Jar};

    use super::common::{self, Running};

    struct Modern {
        run: Running,
        jar: Arc<Jar>,
        client: reqwest::Client,
    }

    async fn start(modern: ModernOptions) -> Modern {
        let run = Running::start(FixtureOptions {
            mode: FixtureMode::Modern,
            modern,
            ..FixtureOptions::from_source_tree()
        })
        .await;
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Modern { run, jar, client }
    }

    impl Modern {
        async fn login(&self) {
            let resp = self
                .client
                .post(self.run.url("/taobao/member/login.jhtml"))
                .form(&[
                    ("fm-login-id", "tb_watcher_1"),
                    ("fm-login-password", "fixture-tb-1"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 302);
        }

        /// One signed mtop call, as the shell's script makes it: (URL, decoded body).
        async fn mtop(&self, platform: &str, keyword: &str) -> (String, String) {
            let n = common::definition(platform).page_size();
            let base = reqwest::Url::parse(&self.run.url("/")).unwrap();
            let token = self
                .jar
                .cookies(&base)
                .and_then(|h| {
                    h.to_str().unwrap().split("; ").find_map(|kv| {
                        kv.strip_prefix("_m_h5_tk=")
                            .map(|v| v.split('_').next().unwrap().to_string())
                    })
                })
                .unwrap_or_default();
            let data = serde_json::json!({ "q": keyword, "s": 0, "n": n }).to_string();
            let t = "1764700000000";
            let url = reqwest::Url::parse_with_params(
                &self
                    .run
                    .url(&format!("/{platform}/h5/{MTOP_SEARCH_API}/2.0/")),
                &[
                    ("appKey", MTOP_APP_KEY),
                    ("t", t),
                    ("sign", &mtop_sign(&token, t, MTOP_APP_KEY, &data)),
                    ("api", MTOP_SEARCH_API),
                    ("v", "2.0"),
                    ("type", "jsonp"),
                    ("callback", "mtopjsonp1"),
                    ("data", &data),
                ],
            )
            .unwrap();
            let resp = self.client.get(url.clone()).send().await.unwrap();
            let ctype = resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string());
            let bytes = resp.bytes().await.unwrap();
            (url.to_string(), decode_capture(&bytes, ctype.as_deref()))
        }

        /// The search shell's HTML: what the DOM is before its script has run.
        async fn shell(&self, platform: &str, keyword: &str) -> String {
            let path = FixtureServer::search_path(platform, keyword, 1).unwrap();
            let resp = self.client.get(self.run.url(&path)).send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            resp.text().await.unwrap()
        }
    }

    fn replies(list: &[(String, String)]) -> Vec<CapturedReply<'_>> {
        list.iter()
            .map(|(url, body)| CapturedReply { url, body })
            .collect()
    }

    #[tokio::test]
    async fn the_mtop_reply_yields_exactly_the_catalogue_and_the_token_call_is_skipped() {
        let m = start(ModernOptions::default()).await;
        m.login().await;
        for platform in ["taobao", "tmall"] {
            let def = common::definition(platform);
            let keyword = &m.run.server.keywords(platform).unwrap()[0];
            let dom = m.shell(platform, keyword).await;
            let mut calls = Vec::new();
            if platform == "taobao" {
                let first = m.mtop(platform, keyword).await;
                assert!(first.1.contains("FAIL_SYS_TOKEN_EMPTY"), "{}", first.1);
                calls.push(first);
            }
            calls.push(m.mtop(platform, keyword).await);
            assert!(calls.last().unwrap().1.contains("SUCCESS"));
            let real = def.search_url(keyword, 1);
            let page = extract_search_captured(&def, &dom, &replies(&calls), &real)
                .unwrap_or_else(|e| panic!("{platform}: {e}"));
            let expected: Vec<_> = m
                .run
                .server
                .search_results(platform, keyword)
                .unwrap()
                .into_iter()
                .take(def.page_size() as usize)
                .collect();
            assert!(!expected.is_empty());
            let got: Vec<(&str, &str, Option<&str>, Option<f64>)> = page
                .listings
                .iter()
                .map(|l| {
                    (
                        l.item_id.as_str(),
                        l.title.as_str(),
                        l.seller.as_deref(),
                        l.price,
                    )
                })
                .collect();
            let want: Vec<(&str, &str, Option<&str>, Option<f64>)> = expected
                .iter()
                .map(|l| {
                    (
                        l.item_id.as_str(),
                        l.title.as_str(),
                        Some(l.seller.as_str()),
                        Some((l.price * 100.0).round() / 100.0),
                    )
                })
                .collect();
            assert_eq!(got, want, "{platform}");
            assert_eq!(
                page.listings[0].location.as_deref(),
                Some(expected[0].location.as_str())
            );
            assert_eq!(page.listings[0].url, def.item_url(&expected[0].item_id));
            assert_eq!(page.captures_matched, calls.len());
            assert_eq!(page.captures_skipped, calls.len() - 1);
            let total = m
                .run
                .server
                .search_results(platform, keyword)
                .unwrap()
                .len();
            assert_eq!(
                page.has_next,
                total > def.page_size() as usize,
                "{platform}: {total} results"
            );
        }
        // Only the token call: nothing read, and the page is not taken for an empty one.
        let m = start(ModernOptions::default()).await;
        m.login().await;
        let def = common::definition("taobao");
        let first = [m.mtop("taobao", "nike").await];
        let page =
            extract_search_captured_lenient(&def, "<html></html>", &replies(&first), "u").unwrap();
        assert!(page.listings.is_empty() && !page.empty_page);
        assert_eq!((page.captures_matched, page.captures_skipped), (1, 1));
        assert!(page.json_error.unwrap().contains("/data/itemsArray"));
        assert!(matches!(
            extract_search_captured(&def, "<html></html>", &replies(&first), "u"),
            Err(ExtractError::NoListings { .. })
        ));
    }

    #[tokio::test]
    async fn mtop_walls_are_walls_and_never_read() {
        let m = start(ModernOptions {
            mtop_max_calls: 1,
            ..ModernOptions::default()
        })
        .await;
        let def = common::definition("taobao");
        // No session: FAIL_SYS_SESSION_EXPIRED.
        let expired = [m.mtop("taobao", "nike").await];
        assert!(
            expired[0].1.contains("FAIL_SYS_SESSION_EXPIRED"),
            "{}",
            expired[0].1
        );
        assert_eq!(
            detect_block_captured(&def, "<html></html>", &replies(&expired)),
            Some(BlockKind::Login)
        );
        m.login().await;
        let dom = m.shell("taobao", "nike").await;
        // The shell's own script names the error codes: it is not a wall by itself.
        assert_eq!(detect_block_captured(&def, &dom, &[]), None);
        let _token = m.mtop("taobao", "nike").await;
        let _ok = m.mtop("taobao", "nike").await;
        let over = [m.mtop("taobao", "nike").await];
        assert!(
            over[0].1.contains("FAIL_SYS_USER_VALIDATE"),
            "{}",
            over[0].1
        );
        for platform in ["taobao", "tmall"] {
            let def = common::definition(platform);
            assert_eq!(
                detect_block_captured(&def, &dom, &replies(&over)),
                Some(BlockKind::Captcha)
            );
            match extract_search_captured(&def, &dom, &replies(&over), "u") {
                Err(ExtractError::Blocked { kind, .. }) => assert_eq!(kind, BlockKind::Captcha),
                other => panic!("{platform}: {other:?}"),
            }
        }
        // RGV587_ERROR too.
        let rgv = r#"mtopjsonp3({"api":"x","data":{"url":"https://h5api.m.taobao.com/"},"ret":["RGV587_ERROR::SM::哎哟喂"],"v":"2.0"})"#;
        let r = [CapturedReply {
            url: "https://h5api.m.taobao.com/h5/x/",
            body: rgv,
        }];
        assert_eq!(
            detect_block_captured(&def, &dom, &r),
            Some(BlockKind::Captcha)
        );
    }

    #[tokio::test]
    async fn classic_pages_still_read_over_http_with_the_capture_definitions() {
        let run = Running::start(FixtureOptions::from_source_tree()).await;
        for platform in ["taobao", "tmall", "jd"] {
            let def = common::definition(platform);
            let keyword = run.server.keywords(platform).unwrap()[0].clone();
            let want = run.server.search_results(platform, &keyword).unwrap().len();
            let (all, _) = run.crawl_keyword(&def, &keyword).await;
            assert_eq!(all.len(), want, "{platform}");
            // Without captures, the captured entry point reads the page the same way.
            let real = def.search_url(&keyword, 1);
            let fetch = markwatch::PlatformDef::fetch_url(&real, Some(&run.base(platform)));
            let (_, ctype, body, _) = run.get(&fetch).await;
            let text = markwatch::decode_page(&body, ctype.as_deref(), &def.encoding).text;
            let a = extract_search(&def, &text, &real).unwrap();
            let b = extract_search_captured(&def, &text, &[], &real).unwrap();
            assert_eq!(a.listings, b.listings);
        }
    }
}

#[test]
fn amazon_robot_check_is_a_captcha_wall() {
    let def = common::definition("amazon_cn");
    let page = std::fs::read_to_string(common::repo().join("fixtures/platforms/modern/robot.html"))
        .unwrap();
    assert_eq!(
        markwatch::detect_block(&def, &page),
        Some(markwatch::BlockKind::Captcha)
    );
}

const CAPTURE_SEARCH: &str = r##"
[urls]
search = "https://shop.example/s?q={keyword}&p={page}"
item = "https://shop.example/item/{item_id}"

[pagination]
page_size = 2
max_pages = 3
last_page = { by = "json", current = "/cur", total = "/tot", results = "/data/total", offset = "/data/s" }

[search]
items = "ul.results > li"
capture = { url = 'api\.example/search', format = "jsonp", items = "/data/list" }

[search.fields]
item_id = [{ attr = "data-id" }, { pointer = "/id" }]
title = [{ css = "a.name" }, { pointer = "/name" }]
"##;

#[test]
fn extract_reads_saved_captures_and_says_which_rule_ran() {
    let s = Scratch::new();
    let d = s.write("def.toml", &definition(CAPTURE_SEARCH));
    let dom = s.write(
        "dom.html",
        "<html><body><ul class=\"results\"></ul></body></html>",
    );
    let token = s.write(
        "r1.js",
        r#"cb1({"ret":["FAIL_SYS_TOKEN_EMPTY::令牌为空"],"data":{}})"#,
    );
    let ok = s.write(
        "r2.js",
        r#"cb2({"ret":["SUCCESS::调用成功"],"data":{"list":[{"id":"7","name":"耐克 跑鞋"},{"name":"no id"}],"total":9,"s":0}})"#,
    );
    let run = s.run(&[
        "extract",
        "--definition",
        d.to_str().unwrap(),
        "--capture",
        token.to_str().unwrap(),
        "--capture",
        ok.to_str().unwrap(),
        dom.to_str().unwrap(),
    ]);
    let out = lines(&run.ok());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["item_id"], "7");
    assert_eq!(out[0]["title"], "耐克 跑鞋");
    let err = run.stderr();
    assert!(
        err.contains(
            "capture rule (`api\\.example/search`): 1 of 2 captured replies read, 1 skipped"
        ) && err.contains("1 listing, 1 skipped (1 without an item id"),
        "{err}"
    );
    // Only the failed call: exit 2, naming the array it looked for.
    let run = s.run(&[
        "extract",
        "--definition",
        d.to_str().unwrap(),
        "--capture",
        token.to_str().unwrap(),
        dom.to_str().unwrap(),
    ]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(run.stderr().contains("/data/list"), "{}", run.stderr());
}

#[test]
fn capture_keys_are_checked_at_load_with_the_key_named() {
    let s = Scratch::new();
    let cases = [
        (
            CAPTURE_SEARCH.replace(r"url = 'api\.example/search'", "url = 'api('"),
            "search.capture.url",
        ),
        (
            CAPTURE_SEARCH.replace(r#"items = "/data/list""#, r#"items = "data/list""#),
            "search.capture.items",
        ),
        (
            CAPTURE_SEARCH.replace(r#"format = "jsonp""#, r#"format = "xml""#),
            "format",
        ),
        (
            CAPTURE_SEARCH.replace(r#"format = "jsonp", "#, ""),
            "format",
        ),
        (
            CAPTURE_SEARCH.replace(
                r#"{ pointer = "/id" }"#,
                r#"{ pointer = "/id", attr = "x" }"#,
            ),
            "search.fields.item_id[1]",
        ),
        (
            CAPTURE_SEARCH.replace(r#"results = "/data/total", "#, ""),
            "pagination.last_page",
        ),
        (
            CAPTURE_SEARCH.replace(
                r#"items = "/data/list" }"#,
                r#"items = "/data/list", bogus = 1 }"#,
            ),
            "bogus",
        ),
    ];
    for (head, key) in cases {
        let run = extract(&s, &definition(&head), HTML_PAGE, &[]);
        assert_eq!(run.code(), 2, "{key}: {}", run.stderr());
        let err = run.stderr();
        assert!(
            err.contains("def.toml") && err.contains(key),
            "{key}: {err}"
        );
    }
}
