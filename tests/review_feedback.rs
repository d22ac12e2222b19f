//! Reviewer feedback at the edges: rejecting with a reason and allow rules from the review UI
//! (real HTTP on loopback) and the CLI (the binary on a scratch database), the allow-rules
//! page, and `match stats`.

mod common;

use common::Scratch;
use common::web::{HOSTILE_TITLES, WebServer, listing, seed_review_data};
use markwatch::{Role, Store};

/// The rejection form on a notice page, as a browser posts it.
async fn post_reject(
    web: &WebServer,
    client: &reqwest::Client,
    csrf: &str,
    id: i64,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![("csrf", csrf), ("to", "rejected")];
    form.extend_from_slice(fields);
    client
        .post(web.url(&format!("/notices/{id}/transition")))
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_reviewer_rejects_with_a_reason_and_allow_rules_and_can_remove_them() {
    let web = WebServer::start().await;
    web.add_user("rex", Role::Reviewer).await;
    web.add_user("vera", Role::Viewer).await;
    let seeded = seed_review_data(&web).await;
    let id = seeded.draft_id;
    let rex = web.client();
    let csrf = web.login(&rex, "rex").await;

    // The form offers the reasons and the listing's shop.
    let page = web.text(&rex, &format!("/notices/{id}")).await;
    assert!(page.contains(r#"value="not_our_goods""#), "{page}");
    assert!(
        page.contains("Allow this seller (莆田鞋业直销) for Nike"),
        "{page}"
    );

    // Bad input is refused with the field named, and changes nothing.
    for (fields, says) in [
        (vec![("why", "fake_goods")], "`why`"),
        (vec![("allow_title", "莆田")], "`why`"),
        (
            vec![("why", "genuine_goods"), ("allow_seller", "别的店")],
            "`allow_seller`",
        ),
        (
            vec![("why", "not-our-goods"), ("allow_title", "耐克")],
            "`allow_title`",
        ),
    ] {
        let resp = post_reject(&web, &rex, &csrf, id, &fields).await;
        assert_eq!(resp.status(), 400, "{fields:?}");
        assert!(resp.text().await.unwrap().contains(says), "{fields:?}");
    }
    let approve_with_reason = rex
        .post(web.url(&format!("/notices/{id}/transition")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("to", "approved"),
            ("why", "genuine_goods"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(approve_with_reason.status(), 400);
    assert_eq!(
        web.store.notice(id).await.unwrap().unwrap().state.as_str(),
        "draft"
    );
    assert!(web.store.list_allow_rules().await.unwrap().is_empty());

    let resp = post_reject(
        &web,
        &rex,
        &csrf,
        id,
        &[
            ("why", "genuine_goods"),
            ("allow_seller", "莆田鞋业直销"),
            ("allow_title", " air  MAX 莆田 "),
        ],
    )
    .await;
    assert_eq!(resp.status(), 303);
    let detail = web
        .text(&rex, &format!("/notices/{id}?done=rejected_allowed&n=2"))
        .await;
    assert!(detail.contains("2 allow rule(s) added"), "{detail}");
    assert!(
        detail.contains("genuine goods"),
        "the history shows the reason"
    );
    let rules = web.store.list_allow_rules().await.unwrap();
    let got: Vec<_> = rules
        .iter()
        .map(|r| {
            (
                r.rule.kind.to_string(),
                r.rule.pattern.as_str(),
                r.created_by.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("seller".to_owned(), "莆田鞋业直销", "web:rex"),
            ("title".to_owned(), "air MAX 莆田", "web:rex"),
        ]
    );

    // A pattern taken from a hostile title is shown inert on the rules page.
    let hostile = seeded.hostile_ids[0];
    let resp = post_reject(
        &web,
        &rex,
        &csrf,
        hostile,
        &[
            ("why", "not_our_goods"),
            ("allow_title", "<script>alert(1)</script>"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 303, "{}", HOSTILE_TITLES[0]);
    let page = web.text(&rex, "/allow").await;
    assert!(!page.contains("<script>alert(1)"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;"), "{page}");
    assert!(page.contains(&format!(r#"action="/allow/{}/remove""#, rules[0].id)));

    // Bulk rejection takes a reason too.
    let other = seeded.other_ids[0];
    let resp = rex
        .post(web.url("/queue/bulk"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "reject"),
            ("why", "authorised_seller"),
            ("id", &other.to_string()),
            ("back", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let last = web
        .store
        .notice_history(other)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(last.reject_reason.as_deref(), Some("authorised_seller"));

    // The JSON API takes the same feedback.
    let token = web
        .store
        .create_api_token("rex", None, None, "test")
        .await
        .unwrap()
        .token;
    let api = |id: i64, body: serde_json::Value| {
        rex.post(web.url(&format!("/api/v1/notices/{id}/transition")))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let gucci = seeded.other_ids[1];
    let resp = api(
        gucci,
        serde_json::json!({"to": "approved", "why": "genuine_goods"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    let body =
        serde_json::json!({"to": "rejected", "why": "not_our_goods", "allow_title": "双肩包 原单"});
    assert_eq!(api(gucci, body).await.unwrap().status(), 200);
    assert_eq!(web.store.list_allow_rules().await.unwrap().len(), 4);

    // A viewer reads the rules but cannot remove one; a reviewer can.
    let vera = web.client();
    let vera_csrf = web.login(&vera, "vera").await;
    let page = web.text(&vera, "/allow").await;
    assert!(
        page.contains("莆田鞋业直销") && !page.contains("/remove"),
        "{page}"
    );
    let remove = |client: &reqwest::Client, csrf: &str| {
        client
            .post(web.url(&format!("/allow/{}/remove", rules[0].id)))
            .form(&[("csrf", csrf.to_owned())])
            .send()
    };
    assert_eq!(remove(&vera, &vera_csrf).await.unwrap().status(), 403);
    assert_eq!(remove(&rex, &csrf).await.unwrap().status(), 303);
    assert_eq!(remove(&rex, &csrf).await.unwrap().status(), 404);
    assert_eq!(web.store.list_allow_rules().await.unwrap().len(), 3);
}

#[tokio::test]
async fn the_cli_rejects_with_feedback_lists_and_removes_rules_and_reports_agreement() {
    let scratch = Scratch::new();
    let store = Store::open(&scratch.db_file()).await.unwrap();
    let brands = markwatch::load_registry(&common::demo_brands()).unwrap();
    store
        .import_registry(&brands, "test", "brands.toml")
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (item, title) in [
        ("620000000001", "耐克 Air Max 高仿 莆田 男鞋"),
        ("620000000002", "耐克 复刻 跑步鞋"),
        ("620000000003", "耐克 1:1 篮球鞋"),
    ] {
        let seeded = markwatch::seed_notice(&store, &[listing("taobao", item, title, "Nike", 0.9)])
            .await
            .unwrap();
        ids.push(seeded[0].to_string());
    }
    store.close().await;

    let out = scratch
        .run(&[
            "queue",
            "reject",
            &ids[0],
            "--why",
            "not-our-goods",
            "--allow-seller",
            "--allow-title",
            "Air Max 莆田",
            "--note",
            "a lookalike brand",
        ])
        .ok();
    assert!(
        out.contains(&format!("notice {}: rejected", ids[0])),
        "{out}"
    );
    assert!(
        out.contains(r#"allow rule 1 added: seller "莆田鞋业直销" for Nike (not_our_goods)"#),
        "{out}"
    );
    assert!(
        out.contains(r#"allow rule 2 added: title "Air Max 莆田""#),
        "{out}"
    );

    let show = scratch.run(&["queue", "show", &ids[0]]).ok();
    assert!(
        show.contains("(a lookalike brand) [not our goods]"),
        "{show}"
    );

    // An allow rule needs a reason; a bad reason is named. Neither changes the notice.
    let run = scratch.run(&["queue", "reject", &ids[1], "--allow-seller"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(run.stderr().contains("`why`"), "{}", run.stderr());
    let run = scratch.run(&["queue", "reject", &ids[1], "--why", "fake"]);
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr()
            .contains("authorised-seller, genuine-goods or not-our-goods")
    );
    scratch.run(&["queue", "reject", &ids[1]]).ok();
    scratch.run(&["queue", "approve", &ids[2]]).ok();

    let stats: serde_json::Value =
        serde_json::from_str(&scratch.run(&["match", "stats", "--json"]).ok()).unwrap();
    assert_eq!(stats["decisions"], 3);
    assert_eq!(stats["agreed"], 1);
    // Every seeded verdict carries the same three codes: each was in all three decisions.
    let codes = stats["codes"].as_array().unwrap();
    assert_eq!(codes.len(), 3, "{stats}");
    assert!(
        codes
            .iter()
            .all(|c| c["decisions"] == 3 && c["agreed"] == 1)
    );
    assert_eq!(stats["reject_reasons"][0]["reason"], "not_our_goods");
    assert_eq!(
        stats["reject_reasons"][1]["reason"],
        serde_json::Value::Null
    );
    let text = scratch.run(&["match", "stats", "--last", "1"]).ok();
    assert!(
        text.contains("1 review decision(s)") && text.contains("100.0%"),
        "{text}"
    );

    // Judged again, the shop's listings are cleared by the reviewer's rule.
    let out = scratch.run(&["rematch"]).ok();
    assert!(out.contains("matches now: clear 3"), "{out}");
    let mut conn = {
        use sqlx::Connection;
        sqlx::SqliteConnection::connect(&format!("sqlite:{}", scratch.db_file().display()))
            .await
            .unwrap()
    };
    let reasons: Vec<String> = sqlx::query_scalar("SELECT reasons FROM matches")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert!(
        reasons.iter().all(|r| r.contains("allowed_by_reviewer")),
        "{reasons:?}"
    );

    let rules: serde_json::Value =
        serde_json::from_str(&scratch.run(&["match", "allow", "list", "--json"]).ok()).unwrap();
    assert_eq!(rules.as_array().unwrap().len(), 2);
    assert_eq!(rules[0]["kind"], "seller");
    assert_eq!(rules[0]["notice_id"], ids[0].parse::<i64>().unwrap());
    let out = scratch.run(&["match", "allow", "remove", "1"]).ok();
    assert!(out.contains("allow rule 1 removed"), "{out}");
    assert_eq!(scratch.run(&["match", "allow", "remove", "1"]).code(), 2);
    let list = scratch.run(&["match", "allow", "list"]).ok();
    assert!(
        list.contains("Air Max 莆田") && list.contains("1 rule(s)"),
        "{list}"
    );
}
