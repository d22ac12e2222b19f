//! Seller networks from seeded listings: exactly the expected shops and links, each link
//! explained; the network page draws them; drafting a network gathers its open listings into
//! notices of their own, in one action, and leaves filed cases alone.

mod common;

use common::web::{WebServer, csrf_in};
use markwatch::{CaseState, Role, SeedListing, TransitionDetails};

fn shop(platform: &str, item: &str, seller: &str, seller_id: &str, title: &str) -> SeedListing {
    SeedListing {
        platform: platform.into(),
        item_id: item.into(),
        title: title.into(),
        seller: seller.into(),
        seller_id: (!seller_id.is_empty()).then(|| seller_id.into()),
        ship_from: Some("广东 广州".into()),
        price: 100.0 + item.len() as f64,
        brand: "Nike".into(),
        verdict: "infringing",
        score: 0.9,
    }
}

/// Stored rows, as a photo hashed by the image fetcher leaves them.
async fn photo(web: &WebServer, item_id: &str, phash: i64) {
    let mut conn = common::connect(&web.db()).await;
    sqlx::query(
        "INSERT INTO listing_images (listing_id, position, url, state, sha256, phash, width, height, tries)
         SELECT id, 9, 'https://img.example/' || item_id || '.jpg', 'hashed', item_id, $1, 400, 400, 1
         FROM listings WHERE item_id = $2",
    )
    .bind(phash)
    .bind(item_id)
    .execute(&mut conn)
    .await
    .unwrap();
}

/// The networks as `markwatch sellers networks --json` prints them.
fn networks_json(web: &WebServer) -> serde_json::Value {
    let out = std::process::Command::new(common::bin())
        .args(["--db", &web.db_arg(), "sellers", "networks", "--json"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Two shops and the signal linking them.
type Edge = (String, String, String);

/// Each network as its sorted shop names, and its links as (shop, shop, signal).
fn shape(networks: &serde_json::Value) -> Vec<(Vec<String>, Vec<Edge>)> {
    let mut out: Vec<_> = networks
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let shops: Vec<String> = n["shops"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    format!(
                        "{}:{}",
                        s["platform"].as_str().unwrap(),
                        s["seller"].as_str().unwrap()
                    )
                })
                .collect();
            let mut links: Vec<Edge> = n["links"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    let a = shops[l["a"].as_u64().unwrap() as usize].clone();
                    let b = shops[l["b"].as_u64().unwrap() as usize].clone();
                    let (a, b) = if a < b { (a, b) } else { (b, a) };
                    (a, b, l["signal"].as_str().unwrap().to_owned())
                })
                .collect();
            links.sort();
            let mut sorted = shops.clone();
            sorted.sort();
            (sorted, links)
        })
        .collect();
    out.sort();
    out
}

fn pair(a: &str, b: &str, signal: &str) -> Edge {
    let (a, b) = if a < b { (a, b) } else { (b, a) };
    (a.to_owned(), b.to_owned(), signal.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shops_are_linked_by_each_signal_and_nothing_else() {
    let web = WebServer::start().await;
    let defs = markwatch::load_definitions(&common::repo().join("crawlers")).unwrap();

    // A removed case from 莆田鞋业直销, shipping from 福建 莆田 at ¥128.
    let removed = SeedListing {
        ship_from: Some("福建 莆田".into()),
        price: 128.0,
        ..shop(
            "taobao",
            "5001",
            "莆田鞋业直销",
            "7001",
            "耐克 Air Max 90 高仿 莆田 男鞋 白色",
        )
    };
    let case = markwatch::seed_notice(&web.store, &[removed])
        .await
        .unwrap()[0];
    for (to, reference) in [
        (CaseState::Approved, None),
        (CaseState::Filed, Some("IPP-1")),
        (CaseState::Removed, None),
    ] {
        let details = TransitionDetails {
            complaint_ref: reference.map(str::to_owned),
            ..TransitionDetails::default()
        };
        web.store
            .transition_notice(case, to, "legal", &details)
            .await
            .unwrap();
    }

    markwatch::seed_listings(
        &web.store,
        &[
            // One stem, two names.
            shop("taobao", "1001", "潮流前线小店", "8101", "耐克 卫衣 高仿"),
            shop("taobao", "1002", "潮流前线 旗舰店", "8102", "耐克 T恤 原单"),
            // One seller id, two names.
            shop("taobao", "2001", "星光数码", "9300", "耐克 手表 复刻"),
            shop("taobao", "2002", "月光数码", "9300", "耐克 手表 精仿"),
            // The same photo, across platforms; 月光数码 shows it too.
            shop("jd", "3001", "海外代购精品店", "", "耐克 双肩包 高仿"),
            shop("taobao", "3002", "AAA运动", "9400", "耐克 运动鞋 超A"),
            // The removed listing back up elsewhere: same place, same price, near-identical title.
            SeedListing {
                ship_from: Some("福建 莆田".into()),
                price: 128.0,
                ..shop(
                    "taobao",
                    "4001",
                    "白云鞋城",
                    "9500",
                    "耐克 Air Max 90 高仿 莆田 男鞋 白",
                )
            },
            // Unrelated shops: no shared id, stem, photo or place and price.
            shop("taobao", "6001", "独立小铺", "9600", "耐克 帽子 高仿"),
            shop("jd", "6002", "义乌小商品批发", "", "耐克 皮带 复刻"),
        ],
    )
    .await
    .unwrap();
    photo(&web, "3001", 0x0f0f_1234_5678_9abc).await;
    // Two bits apart: the same photo, re-encoded.
    photo(&web, "3002", 0x0f0f_1234_5678_9abf).await;
    photo(&web, "2002", 0x0f0f_1234_5678_9abc).await;
    // Far from the others.
    photo(&web, "6001", 0x7000_0000_0000_0001).await;
    let drafts = markwatch::queue_drafts(&web.store, &defs).await.unwrap();
    assert_eq!(
        drafts.relisted, 1,
        "白云鞋城's listing is drafted as a relisting"
    );

    let json = networks_json(&web);
    assert_eq!(
        shape(&json),
        vec![
            (
                vec![
                    "jd:海外代购精品店".into(),
                    "taobao:AAA运动".into(),
                    "taobao:星光数码".into(),
                    "taobao:月光数码".into()
                ],
                vec![
                    pair("jd:海外代购精品店", "taobao:AAA运动", "same_photo"),
                    pair("jd:海外代购精品店", "taobao:月光数码", "same_photo"),
                    pair("taobao:AAA运动", "taobao:月光数码", "same_photo"),
                    pair("taobao:星光数码", "taobao:月光数码", "seller_id"),
                ]
            ),
            (
                vec![
                    "taobao:潮流前线 旗舰店".into(),
                    "taobao:潮流前线小店".into()
                ],
                vec![pair(
                    "taobao:潮流前线 旗舰店",
                    "taobao:潮流前线小店",
                    "name_stem"
                )]
            ),
            (
                vec!["taobao:白云鞋城".into(), "taobao:莆田鞋业直销".into()],
                vec![pair(
                    "taobao:白云鞋城",
                    "taobao:莆田鞋业直销",
                    "ship_from_price"
                )]
            ),
        ]
    );
    // Every link says what was shared.
    let details: Vec<String> = json
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["links"].as_array().unwrap().iter())
        .map(|l| l["detail"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        details.contains(&"taobao seller id 9300".to_owned()),
        "{details:?}"
    );
    assert!(
        details.contains(&"names share “潮流前线”".to_owned()),
        "{details:?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.contains("福建 莆田") && d.contains("¥128.00")),
        "{details:?}"
    );
    assert!(
        details.iter().any(|d| d.contains("same photo")),
        "{details:?}"
    );
    // Outcomes per shop: the removed case counts for 莆田鞋业直销.
    let puti = json
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["shops"].as_array().unwrap().iter())
        .find(|s| s["seller"] == "莆田鞋业直销")
        .unwrap();
    assert_eq!(
        (
            puti["listings"].as_u64(),
            puti["removed"].as_u64(),
            puti["open"].as_u64()
        ),
        (Some(1), Some(1), Some(0))
    );

    // The network page draws it; a reviewer drafts its open listings in one action.
    web.add_user("lin", Role::Reviewer).await;
    let client = web.client();
    web.login(&client, "lin").await;
    let list = web.text(&client, "/sellers").await;
    let big = json
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["shops"].as_array().unwrap().len() == 4)
        .unwrap();
    let id = big["id"].as_str().unwrap();
    assert!(
        list.contains(&format!("href=\"/sellers/networks/{id}\"")),
        "{list}"
    );
    let page = web.text(&client, &format!("/sellers/networks/{id}")).await;
    let start = page.find("<svg").unwrap();
    let end = page.find("</svg>").unwrap() + "</svg>".len();
    let doc = roxmltree::Document::parse(&page[start..end]).unwrap();
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    assert!(texts.contains(&"星光数码 · 淘宝 Taobao"), "{texts:?}");
    assert!(texts.contains(&"海外代购精品店 · 京东 JD.com"), "{texts:?}");
    assert!(texts.contains(&"1 listing: 1 open, 0 removed"), "{texts:?}");
    assert!(
        texts.contains(&"seller id") && texts.contains(&"same photo"),
        "{texts:?}"
    );
    assert_eq!(
        doc.descendants()
            .filter(|n| n.has_tag_name("circle"))
            .count(),
        4
    );
    assert!(
        page.contains("Draft all 4 open listings into notices"),
        "{page}"
    );

    let csrf = csrf_in(&page);
    let resp = client
        .post(web.url(&format!("/sellers/networks/{id}/draft")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let to = resp.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        to,
        format!("/sellers/networks/{id}?done=network_drafted&n=4")
    );
    let after = web.text(&client, &to).await;
    assert!(
        after.contains("Drafted 4 open listing(s) of this network into notices."),
        "{after}"
    );

    // One draft per platform (brand and right alike), holding exactly the network's listings;
    // the drafts they left are closed.
    let mut conn = common::connect(&web.db()).await;
    let gathered: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT n.platform, l.item_id, n.priority FROM notices n
         JOIN notice_items ni ON ni.notice_id = n.id JOIN matches m ON m.id = ni.match_id
         JOIN listings l ON l.id = m.listing_id
         WHERE n.group_key LIKE 'network:' || $1 || ':%' AND n.state = 'draft' ORDER BY l.item_id",
    )
    .bind(id)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let items: Vec<(&str, &str)> = gathered
        .iter()
        .map(|(p, i, _)| (p.as_str(), i.as_str()))
        .collect();
    assert_eq!(
        items,
        [
            ("taobao", "2001"),
            ("taobao", "2002"),
            ("jd", "3001"),
            ("taobao", "3002")
        ]
    );
    assert!(gathered.iter().all(|(_, _, priority)| *priority >= 1));
    // The drafts they left say where they went, and count only what they still hold.
    let left: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT n.state, n.item_count, (SELECT count(*) FROM notice_items ni WHERE ni.notice_id = n.id)
         FROM notices n WHERE n.id IN (SELECT entity_id FROM audit_log WHERE action = 'gather')",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        left.len(),
        2,
        "the Taobao and the JD draft gave listings up: {left:?}"
    );
    for (state, count, held) in &left {
        assert_eq!(count, held);
        assert_eq!(state, "draft", "each still holds other shops' listings");
    }
    // Again: what the network's own drafts hold stays there.
    let page = web.text(&client, &format!("/sellers/networks/{id}")).await;
    let resp = client
        .post(web.url(&format!("/sellers/networks/{id}/draft")))
        .form(&[("csrf", csrf_in(&page).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["location"].to_str().unwrap(),
        format!("/sellers/networks/{id}?done=network_nothing")
    );

    // The relisting sat alone in its draft: gathering the 莆田 network empties and closes it.
    let puti = json
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["links"][0]["signal"] == "ship_from_price")
        .unwrap();
    let puti_id = puti["id"].as_str().unwrap();
    let (old_draft,): (i64,) = sqlx::query_as(
        "SELECT ni.notice_id FROM notice_items ni JOIN matches m ON m.id = ni.match_id
         JOIN listings l ON l.id = m.listing_id WHERE l.item_id = '4001'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let page = web
        .text(&client, &format!("/sellers/networks/{puti_id}"))
        .await;
    assert!(
        page.contains("Draft all 1 open listings into notices"),
        "{page}"
    );
    let resp = client
        .post(web.url(&format!("/sellers/networks/{puti_id}/draft")))
        .form(&[("csrf", csrf_in(&page).as_str())])
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("done=network_drafted&n=1")
    );
    let (state, count): (String, i64) =
        sqlx::query_as("SELECT state, item_count FROM notices WHERE id = $1")
            .bind(old_draft)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((state.as_str(), count), ("closed", 0));

    // A viewer may look but not draft.
    web.add_user("vic", Role::Viewer).await;
    let viewer = web.client();
    web.login(&viewer, "vic").await;
    let page = web.text(&viewer, &format!("/sellers/networks/{id}")).await;
    assert!(!page.contains("id=\"draft-network\""));
    let resp = viewer
        .post(web.url(&format!("/sellers/networks/{id}/draft")))
        .form(&[("csrf", csrf_in(&page).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = viewer
        .get(web.url("/sellers/networks/0000000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}
