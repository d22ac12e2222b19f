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
