//! The review UI over real HTTP on loopback, with a real SQLite file: logins, sessions, CSRF,
//! roles, throttling, security headers, and hostile scraped text rendered inert.

mod common;

use common::web::{PASSWORD, WebServer, csrf_in};
use markwatch::Role;

/// Pages that show data: each must send a stranger to the login page.
const PAGES: &[&str] = &["/", "/brands", "/users", "/no-such-page"];

#[tokio::test]
async fn every_page_needs_a_login() {
    let web = WebServer::start().await;
    let client = web.client();
    for path in PAGES {
        let resp = client.get(web.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 303, "{path}");
        let to = resp.headers()["location"].to_str().unwrap();
        assert!(to.starts_with("/login?next="), "{path} -> {to}");
        let body = resp.text().await.unwrap();
        assert!(!body.contains("Nike"), "{path} leaked data: {body}");
    }
    // A forged or expired session cookie is no better than none.
    let resp = client
        .get(web.url("/brands"))
        .header("cookie", "mw_session=00112233")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    // The API answers 401 without a token, and with a wrong one.
    let resp = client.get(web.url("/api/v1/brands")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client
        .get(web.url("/api/v1/brands"))
        .bearer_auth("mw_nonsense")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn login_sets_a_strict_httponly_cookie_and_logout_ends_the_session() {
    let web = WebServer::start().await;
    web.add_user("rita", Role::Reviewer).await;
    let client = web.client();
    let resp = web.post_login(&client, "rita", PASSWORD).await;
    assert_eq!(resp.status(), 303);
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("mw_session="))
        .expect("session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    // Plain HTTP on loopback: Secure would make the browser drop it.
    assert!(!cookie.contains("Secure"), "{cookie}");
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM sessions")
        .fetch_all(&common::pool(&web.db()).await)
        .await
        .unwrap();
    let token = cookie
        .trim_start_matches("mw_session=")
        .split(';')
        .next()
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(
        !stored[0].contains(token),
        "the raw token must not be stored"
    );

    let page = client.get(web.url("/brands")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Nike"));
    assert!(
        html.contains("Read-only"),
        "a reviewer does not manage brands"
    );
    let csrf = csrf_in(&html);
    let out = client
        .post(web.url("/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let after = client.get(web.url("/brands")).send().await.unwrap();
    assert_eq!(after.status(), 303, "the session ended at logout");
}

#[tokio::test]
async fn wrong_password_and_disabled_account_are_refused_alike() {
    let web = WebServer::start().await;
    web.add_user("vic", Role::Viewer).await;
    let client = web.client();
    let wrong = web.post_login(&client, "vic", "not the password").await;
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("Wrong name or password")
    );
    let unknown = web.post_login(&client, "nobody", PASSWORD).await;
    assert_eq!(unknown.status(), 401);
    web.store
        .set_user_disabled("vic", true, "test")
        .await
        .unwrap();
    let disabled = web.post_login(&client, "vic", PASSWORD).await;
    assert_eq!(disabled.status(), 401);
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused() {
    let web = WebServer::start().await;
    web.add_user("ada", Role::Admin).await;
    let client = web.client();
    let csrf = web.login(&client, "ada").await;
    let registry = "[[brand]]\nname = \"Acme\"\nowner = \"Acme Ltd\"\n\n  [[brand.mark]]\n  text = \"ACME\"\n  jurisdiction = \"CN\"\n  registration_no = \"T-1\"\n  classes = [25]\n";
    for bad in [None, Some("0123456789abcdef"), Some("")] {
        let mut form = vec![("registry", registry)];
        if let Some(token) = bad {
            form.push(("csrf", token));
        }
        let resp = client
            .post(web.url("/brands"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "csrf {bad:?}");
    }
    assert!(web.store.brand_by_name("Acme").await.unwrap().is_none());
    // The login form has its own token: a cross-site login POST is refused too.
    let resp = web
        .client()
        .post(web.url("/login"))
        .form(&[("name", "ada"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // With the token, the same import works.
    let resp = client
        .post(web.url("/brands"))
        .form(&[("registry", registry), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert!(web.store.brand_by_name("Acme").await.unwrap().is_some());
}

#[tokio::test]
async fn roles_are_enforced_on_the_server() {
    let web = WebServer::start().await;
    web.add_user("vera", Role::Viewer).await;
    web.add_user("rex", Role::Reviewer).await;
    for name in ["vera", "rex"] {
        let client = web.client();
        let csrf = web.login(&client, name).await;
        let users = client.get(web.url("/users")).send().await.unwrap();
        assert_eq!(users.status(), 403, "{name} reads the user list");
        let add = client
            .post(web.url("/users"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("action", "add"),
                ("name", "mallory"),
                ("role", "admin"),
                ("password", "a long enough password"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(add.status(), 403, "{name} adds an admin");
        let import = client
            .post(web.url("/brands"))
            .form(&[("csrf", csrf.as_str()), ("registry", "")])
            .send()
            .await
            .unwrap();
        assert_eq!(import.status(), 403, "{name} imports brands");
    }
    assert!(web.store.user_by_name("mallory").await.unwrap().is_none());
}

#[tokio::test]
async fn login_is_rate_limited_per_account_and_per_address() {
    let web = WebServer::start().await;
    web.add_user("lena", Role::Reviewer).await;
    let client = web.client();
    for _ in 0..5 {
        let resp = web.post_login(&client, "lena", "guess").await;
        assert_eq!(resp.status(), 401);
    }
    // Now even the right password is refused for a while, with a Retry-After.
    let resp = web.post_login(&client, "lena", PASSWORD).await;
    assert_eq!(resp.status(), 429);
    let retry: i64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 15 * 60, "{retry}");

    // Per address: spraying many accounts from one client locks the client out.
    web.add_user("otto", Role::Reviewer).await;
    for i in 0..15 {
        let resp = web.post_login(&client, &format!("user{i}"), "guess").await;
        assert_eq!(resp.status(), 401, "attempt {i}");
    }
    let resp = web.post_login(&client, "otto", PASSWORD).await;
    assert_eq!(resp.status(), 429, "the address is throttled");
}

/// Posts one wrong-password login per name, all released at once over their own connections,
/// from one client (one address); returns each response's status and Retry-After.
async fn login_burst(web: &WebServer, names: &[String]) -> Vec<(u16, Option<String>)> {
    let client = web.client();
    let csrf = web.login_form(&client).await;
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(names.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for name in names {
        let (client, csrf, name, start) =
            (client.clone(), csrf.clone(), name.clone(), start.clone());
        let url = web.url("/login");
        tasks.spawn(async move {
            start.wait().await;
            let resp = client
                .post(url)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("name", name.as_str()),
                    ("password", "not the password"),
                    ("next", "/"),
                ])
                .send()
                .await
                .unwrap();
            let retry = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            (resp.status().as_u16(), retry)
        });
    }
    tasks.join_all().await
}

async fn stored_failures(web: &WebServer) -> i64 {
    let pool = common::pool(&web.db()).await;
    sqlx::query_scalar("SELECT count(*) FROM login_attempts WHERE ok = 0")
        .fetch_one(&pool)
        .await
        .unwrap()
}

fn count(statuses: &[(u16, Option<String>)], status: u16) -> usize {
    statuses.iter().filter(|(s, _)| *s == status).count()
}

#[tokio::test]
async fn a_burst_of_concurrent_guesses_gets_no_more_checks_than_the_limits() {
    // Enough concurrent checks that only the throttle can hold the burst back.
    let web = WebServer::start_with(|c| c.web.max_password_checks = 100).await;
    web.add_user("lena", Role::Reviewer).await;
    let burst = login_burst(&web, &vec!["lena".to_owned(); 40]).await;
    let checked = count(&burst, 401);
    assert!(
        checked <= 5,
        "{checked} password checks for one account: {burst:?}"
    );
    assert_eq!(checked + count(&burst, 429), 40, "{burst:?}");
    assert!(stored_failures(&web).await <= 5);

    // Sixty names from one address: at most the address's 20.
    let web = WebServer::start_with(|c| c.web.max_password_checks = 100).await;
    let names: Vec<String> = (0..60).map(|i| format!("user{i}")).collect();
    let burst = login_burst(&web, &names).await;
    let checked = count(&burst, 401);
    assert!(
        checked <= 20,
        "{checked} password checks for one address: {burst:?}"
    );
    assert_eq!(checked + count(&burst, 429), 60, "{burst:?}");
    assert!(stored_failures(&web).await <= 20);
}

#[tokio::test]
async fn password_checks_beyond_the_bound_are_refused_with_503_not_hashed() {
    let web = WebServer::start_with(|c| c.web.max_password_checks = 1).await;
    let names: Vec<String> = (0..20).map(|i| format!("user{i}")).collect();
    let burst = login_burst(&web, &names).await;
    let busy = count(&burst, 503);
    let checked = count(&burst, 401);
    assert!(busy > 0, "one check at a time, twenty at once: {burst:?}");
    assert_eq!(busy + checked, 20, "{burst:?}");
    for (status, retry) in &burst {
        if *status == 503 {
            assert_eq!(retry.as_deref(), Some("1"), "{burst:?}");
        }
    }
    // A refused login was neither hashed nor counted against anyone.
    assert_eq!(stored_failures(&web).await, checked as i64);
    // Once the burst is over, logins work again.
    web.add_user("otto", Role::Reviewer).await;
    let resp = web.post_login(&web.client(), "otto", PASSWORD).await;
    assert_eq!(resp.status(), 303);
}

#[tokio::test]
async fn security_headers_on_every_response() {
    let web = WebServer::start().await;
    web.add_user("sam", Role::Viewer).await;
    let client = web.client();
    web.login(&client, "sam").await;
    for path in ["/login", "/", "/brands", "/static/app.css"] {
        let resp = client.get(web.url(path)).send().await.unwrap();
        let h = resp.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'nonce-"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
    }
    // The nonce is fresh per response and the page's script carries it.
    let a = client.get(web.url("/")).send().await.unwrap();
    let csp_a = a.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = a.text().await.unwrap();
    let nonce = regex::Regex::new(r"'nonce-([0-9a-f]+)'")
        .unwrap()
        .captures(&csp_a)
        .unwrap()[1]
        .to_owned();
    assert!(
        html.contains(&format!("<script nonce=\"{nonce}\"")),
        "{html}"
    );
    let b = client.get(web.url("/")).send().await.unwrap();
    assert!(
        !b.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains(&nonce)
    );
}

#[tokio::test]
async fn api_tokens_authenticate_the_json_api() {
    let web = WebServer::start().await;
    web.add_user("int", Role::Viewer).await;
    let token = web
        .store
        .create_api_token("int", Some("ERP"), None, "test")
        .await
        .unwrap()
        .token;
    let client = web.client();
    let me: serde_json::Value = client
        .get(web.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "int");
    assert_eq!(me["role"], "viewer");
    let brands: serde_json::Value = client
        .get(web.url("/api/v1/brands"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(brands["brands"].as_array().unwrap().len() >= 10);
    web.store
        .set_user_disabled("int", true, "test")
        .await
        .unwrap();
    let resp = client
        .get(web.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "a disabled user's token is dead");
}

// ---- the queue, notice detail and evidence, on seeded drafts ----

use common::web::{HOSTILE_TITLES, seed_review_data};

/// Raw markup a hostile title would leave in a page if it were not escaped.
const LIVE_MARKUP: [&str; 3] = ["<script>alert(1)", "<img src=x", "onerror=alert(1)>"];

fn assert_inert(html: &str, what: &str) {
    for bad in LIVE_MARKUP {
        assert!(!html.contains(bad), "{what} has live markup `{bad}`");
    }
}

/// Text as minijinja's HTML escaping writes it.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('/', "&#x2f;")
}

#[tokio::test]
async fn a_queue_row_names_its_strongest_listing() {
    use markwatch::seed_notice;
    let web = WebServer::start().await;
    web.add_user("vera", Role::Viewer).await;
    let listing = |item_id: &str, title: &str, score: f64| {
        common::web::listing("taobao", item_id, title, "Nike", score)
    };
    let ids = seed_notice(
        &web.store,
        &[
            listing("730000000001", "运动鞋 男 透气 N字款", 0.62),
            listing("730000000002", "耐克 AJ1 高仿 莆田纯原", 0.95),
            listing("730000000003", "奈克 跑鞋 原单尾货", 0.8),
        ],
    )
    .await
    .unwrap();
    assert_eq!(ids.len(), 1, "one brand, one platform: one notice");
    let client = web.client();
    web.login(&client, "vera").await;
    let html = web.text(&client, "/queue").await;
    let row = html
        .split("<tr data-notice=")
        .find(|r| r.starts_with(&format!("\"{}\"", ids[0])))
        .unwrap_or_else(|| panic!("no row for #{}:\n{html}", ids[0]));
    assert!(row.contains("耐克 AJ1 高仿 莆田纯原"), "{row}");
    assert!(row.contains("+2 more"), "{row}");
    assert!(!row.contains("运动鞋 男 透气"), "{row}");
}

#[tokio::test]
async fn hostile_titles_render_inert_in_queue_detail_and_evidence() {
    let web = WebServer::start().await;
    web.add_user("vera", Role::Viewer).await;
    let seeded = seed_review_data(&web).await;
    let client = web.client();
    web.login(&client, "vera").await;

    let queue = client.get(web.url("/queue")).send().await.unwrap();
    assert_eq!(queue.status(), 200);
    let html = queue.text().await.unwrap();
    for id in &seeded.hostile_ids {
        assert!(
            html.contains(&format!("href=\"/notices/{id}\"")),
            "queue lacks #{id}"
        );
    }
    assert_inert(&html, "queue");
    for title in HOSTILE_TITLES {
        assert!(html.contains(&escaped(title)), "queue lacks {title}");
    }

    let evidence_link = regex::Regex::new(r#"href="/evidence/(\d+)""#).unwrap();
    for (id, title) in seeded.hostile_ids.iter().zip(HOSTILE_TITLES) {
        let detail = client
            .get(web.url(&format!("/notices/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(detail.status(), 200);
        let html = detail.text().await.unwrap();
        assert_inert(&html, "detail");
        // The title is shown, escaped, so the reviewer sees exactly what the seller wrote.
        let escaped = escaped(title);
        assert!(
            html.contains(&escaped),
            "detail lacks the escaped title {escaped}"
        );

        // The evidence viewer: text view escaped, the captured page only in a sandbox.
        let ev = evidence_link.captures(&html).expect("evidence link")[1].to_owned();
        let viewer = client
            .get(web.url(&format!("/evidence/{ev}")))
            .send()
            .await
            .unwrap();
        assert_eq!(viewer.status(), 200);
        let page = viewer.text().await.unwrap();
        assert_inert(&page, "evidence viewer");
        assert!(
            page.contains("<iframe class=\"evidence\" sandbox=\"\""),
            "{page}"
        );
        let raw = client
            .get(web.url(&format!("/evidence/{ev}/raw")))
            .send()
            .await
            .unwrap();
        assert_eq!(raw.status(), 200);
        let csp = raw.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.starts_with("sandbox;"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(
            !csp.contains("allow-scripts") && !csp.contains("allow-same-origin"),
            "{csp}"
        );
        assert_eq!(raw.headers()["x-content-type-options"], "nosniff");
    }
}

#[tokio::test]
async fn a_viewer_cannot_approve_and_a_reviewer_can() {
    let web = WebServer::start().await;
    web.add_user("vera", Role::Viewer).await;
    web.add_user("rex", Role::Reviewer).await;
    let seeded = seed_review_data(&web).await;
    let id = seeded.draft_id;
    let state_of = |id: i64| {
        let store = web.store.clone();
        async move { store.notice(id).await.unwrap().unwrap().state.as_str() }
    };

    let viewer = web.client();
    let csrf = web.login(&viewer, "vera").await;
    let detail = viewer
        .get(web.url(&format!("/notices/{id}")))
        .send()
        .await
        .unwrap();
    assert!(
        !detail.text().await.unwrap().contains("action-approved"),
        "no buttons for a viewer"
    );
    let resp = viewer
        .post(web.url(&format!("/notices/{id}/transition")))
        .form(&[("csrf", csrf.as_str()), ("to", "approved")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = viewer
        .post(web.url("/queue/bulk"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "approve"),
            ("id", &id.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(state_of(id).await, "draft");

    // A reviewer approves from the detail page, without a CSRF token first (refused).
    let reviewer = web.client();
    let csrf = web.login(&reviewer, "rex").await;
    let resp = reviewer
        .post(web.url(&format!("/notices/{id}/transition")))
        .form(&[("to", "approved")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(state_of(id).await, "draft");
    let resp = reviewer
        .post(web.url(&format!("/notices/{id}/transition")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("to", "approved"),
            ("note", "clear counterfeit"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(state_of(id).await, "approved");
    // The audit log names the person and the note; the detail page shows it.
    let html = web.text(&reviewer, &format!("/notices/{id}")).await;
    assert!(
        html.contains("web:rex") && html.contains("clear counterfeit"),
        "{html}"
    );
    // Filing needs the platform's reference: refused without, with the reason shown.
    let resp = reviewer
        .post(web.url(&format!("/notices/{id}/transition")))
        .form(&[("csrf", csrf.as_str()), ("to", "filed")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    assert!(resp.text().await.unwrap().contains("reference"));
    // An invalid step is refused and changes nothing.
    let resp = reviewer
        .post(web.url(&format!("/notices/{id}/transition")))
        .form(&[("csrf", csrf.as_str()), ("to", "removed")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    assert_eq!(state_of(id).await, "approved");
}

#[tokio::test]
async fn queue_filters_paginate_and_bulk_act_with_a_note() {
    let web = WebServer::start().await;
    web.add_user("rex", Role::Reviewer).await;
    let seeded = seed_review_data(&web).await;
    let client = web.client();
    let csrf = web.login(&client, "rex").await;
    let ids_in = |html: &str| -> Vec<i64> {
        regex::Regex::new(r#"data-notice="(\d+)""#)
            .unwrap()
            .captures_iter(html)
            .map(|c| c[1].parse().unwrap())
            .collect()
    };
    let get = |path: String| {
        let client = client.clone();
        let url = web.url(&path);
        async move {
            let resp = client.get(url).send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let (status, html) = get("/queue?platform=tmall".into()).await;
    assert_eq!(status, 200);
    let mut tmall = ids_in(&html);
    tmall.sort();
    let mut expected = vec![seeded.draft_id];
    expected.extend(&seeded.hostile_ids);
    expected.sort();
    assert_eq!(tmall, expected);
    let (_, html) = get("/queue?brand=Gucci".into()).await;
    assert_eq!(ids_in(&html).len(), 1);
    let (_, html) = get("/queue?min_score=0.9".into()).await;
    assert_eq!(ids_in(&html), vec![seeded.draft_id]);
    let (_, html) = get("/queue?verdict=suspect".into()).await;
    assert_eq!(
        ids_in(&html).len(),
        1,
        "only the 0.7 Adidas draft is suspect"
    );
    let (_, html) = get("/queue?relisted=yes".into()).await;
    assert!(ids_in(&html).is_empty());
    let (_, html) = get("/queue?sort=score".into()).await;
    assert_eq!(ids_in(&html)[0], seeded.draft_id, "highest score first");
    let (status, html) = get("/queue?min_score=lots".into()).await;
    assert_eq!(status, 400);
    assert!(html.contains("min_score"));

    // Bulk reject two with a note; the rest stay drafts.
    let targets = seeded.hostile_ids.clone();
    let mut form: Vec<(&str, String)> = vec![
        ("csrf", csrf.clone()),
        ("action", "reject".into()),
        ("note", "not our goods".into()),
        ("back", "platform=tmall".into()),
    ];
    for id in &targets {
        form.push(("id", id.to_string()));
    }
    let resp = client
        .post(web.url("/queue/bulk"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert!(
        resp.headers()["location"]
            .to_str()
            .unwrap()
            .contains("done=rejected&n=2")
    );
    for id in &targets {
        let n = web.store.notice(*id).await.unwrap().unwrap();
        assert_eq!(n.state.as_str(), "rejected");
        let history = web.store.notice_history(*id).await.unwrap();
        assert!(
            history
                .iter()
                .any(|h| h.note.as_deref() == Some("not our goods") && h.actor == "web:rex")
        );
    }
    let (_, html) = get("/queue?platform=tmall".into()).await;
    assert_eq!(ids_in(&html), vec![seeded.draft_id]);
    // Rejecting them again is refused per notice and reported, not silently skipped.
    let resp = client
        .post(web.url("/queue/bulk"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("cannot go from rejected")
    );
}

#[tokio::test]
async fn pages_for_cases_dashboard_and_the_json_api() {
    let web = WebServer::start().await;
    web.add_user("rex", Role::Reviewer).await;
    web.add_user("int", Role::Viewer).await;
    let seeded = seed_review_data(&web).await;
    let client = web.client();
    web.login(&client, "rex").await;
    for path in ["/", "/cases", "/sellers", "/queue?state=all", "/brands"] {
        let resp = client.get(web.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_inert(&resp.text().await.unwrap(), path);
    }
    let dash = web.text(&client, "/").await;
    assert!(
        dash.contains("href=\"/queue?platform=tmall&amp;state=draft\">3</a>"),
        "{dash}"
    );

    // The API: a viewer's token reads but cannot act; a reviewer's token acts.
    let viewer_token = web
        .store
        .create_api_token("int", None, None, "test")
        .await
        .unwrap()
        .token;
    let page: serde_json::Value = client
        .get(web.url("/api/v1/notices?platform=tmall"))
        .bearer_auth(&viewer_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 3);
    let titles = page["notices"].to_string();
    assert!(!titles.is_empty());
    let detail: serde_json::Value = client
        .get(web.url(&format!("/api/v1/notices/{}", seeded.hostile_ids[0])))
        .bearer_auth(&viewer_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // JSON keeps the title exactly as scraped: escaping is the renderer's job.
    assert_eq!(detail["items"][0]["title"], HOSTILE_TITLES[0]);
    let id = seeded.draft_id;
    let resp = client
        .post(web.url(&format!("/api/v1/notices/{id}/transition")))
        .bearer_auth(&viewer_token)
        .json(&serde_json::json!({"to": "approved"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let reviewer_token = web
        .store
        .create_api_token("rex", None, None, "test")
        .await
        .unwrap()
        .token;
    let resp = client
        .post(web.url(&format!("/api/v1/notices/{id}/transition")))
        .bearer_auth(&reviewer_token)
        .json(&serde_json::json!({"to": "approved", "note": "via API"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let n: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(n["state"], "approved");
    let bulk: serde_json::Value = client
        .post(web.url("/api/v1/notices/bulk"))
        .bearer_auth(&reviewer_token)
        .json(&serde_json::json!({"ids": [id, seeded.other_ids[0]], "to": "rejected"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        bulk["done"],
        serde_json::json!([id, seeded.other_ids[0]]),
        "approved may still be rejected"
    );
    let history = web.store.notice_history(id).await.unwrap();
    assert!(
        history
            .iter()
            .any(|h| h.actor == "api:rex" && h.note.as_deref() == Some("via API"))
    );
}

#[tokio::test]
async fn export_downloads_the_platforms_approved_batch_in_its_form_layout() {
    let web = WebServer::start().await;
    web.add_user("rex", Role::Reviewer).await;
    let seeded = seed_review_data(&web).await;
    let client = web.client();
    let csrf = web.login(&client, "rex").await;
    for id in std::iter::once(seeded.draft_id).chain(seeded.hostile_ids.iter().copied()) {
        let resp = client
            .post(web.url(&format!("/notices/{id}/transition")))
            .form(&[("csrf", csrf.as_str()), ("to", "approved")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303);
    }
    // Before filing, the queue of the approved batch shows the good-faith governor's check.
    let approved = web
        .text(&client, "/queue?platform=tmall&state=approved")
        .await;
    assert!(
        approved.contains("Good-faith check for this batch"),
        "{approved}"
    );
    assert!(approved.contains("3 infringing, 0 suspect"), "{approved}");
    let resp = client
        .get(web.url("/export?platform=tmall&format=csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let disposition = resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"tmall-approved-"),
        "{disposition}"
    );
    let csv = resp.text().await.unwrap();
    assert!(csv.contains(&seeded.draft_item_id), "{csv}");
    // Hostile titles survive intact in the file (quoted by the CSV writer).
    assert!(csv.contains("<script>alert(1)</script>"), "{csv}");
    // Another platform's batch is empty of these listings.
    let jd = web.text(&client, "/export?platform=jd&format=json").await;
    assert!(!jd.contains(&seeded.draft_item_id));
    let bad = client
        .get(web.url("/export?platform=ebay&format=csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_fifth_platform_definition_shows_up_in_the_filters_dashboard_and_export() {
    // The repository's four definitions and a fifth, made from JD's: data only, no Rust.
    let defs = tempfile::tempdir().unwrap();
    let crawlers = common::repo().join("crawlers");
    for entry in std::fs::read_dir(&crawlers).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, defs.path().join(path.file_name().unwrap())).unwrap();
    }
    let jd = std::fs::read_to_string(crawlers.join("jd.toml")).unwrap();
    let pdd = jd
        .replace("platform = \"jd\"", "platform = \"pinduoduo\"")
        .replace("name = \"京东 JD.com\"", "name = \"拼多多 Pinduoduo\"");
    assert_ne!(pdd, jd);
    std::fs::write(defs.path().join("pinduoduo.toml"), pdd).unwrap();

    let web = WebServer::start_with_definitions(defs.path()).await;
    web.add_user("rex", Role::Reviewer).await;
    let id = markwatch::seed_notice(
        &web.store,
        &[common::web::listing(
            "pinduoduo",
            "880000000001",
            "耐克 高仿 气垫 跑步鞋",
            "Nike",
            0.9,
        )],
    )
    .await
    .unwrap()[0];
    let client = web.client();
    let csrf = web.login(&client, "rex").await;

    // Both platform selects offer it under its definition's name.
    let queue = web.text(&client, "/queue").await;
    let option = "<option value=\"pinduoduo\">拼多多 Pinduoduo</option>";
    assert_eq!(queue.matches(option).count(), 2, "{queue}");
    assert!(queue.contains("<option value=\"jd\">京东 JD.com</option>"));
    // Filtering by it works; an undefined platform is refused, naming the defined ones.
    let filtered = web.text(&client, "/queue?platform=pinduoduo").await;
    assert!(
        filtered.contains(&format!("data-notice=\"{id}\"")),
        "{filtered}"
    );
    assert!(filtered.contains("<option value=\"pinduoduo\" selected>"));
    let bad = client
        .get(web.url("/queue?platform=ebay"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("pinduoduo"));
    // The dashboard has a row for it, linking to its queue.
    let dash = web.text(&client, "/").await;
    assert!(dash.contains("<td>拼多多 Pinduoduo</td>"), "{dash}");
    assert!(dash.contains("href=\"/queue?platform=pinduoduo&amp;state=draft\">1</a>"));
    // And its approved batch exports.
    let resp = client
        .post(web.url(&format!("/notices/{id}/transition")))
        .form(&[("csrf", csrf.as_str()), ("to", "approved")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let resp = client
        .get(web.url("/export?platform=pinduoduo&format=csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("880000000001"));
}

#[tokio::test]
async fn a_bulk_form_with_a_bad_id_is_refused_and_one_without_the_token_changes_nothing() {
    let web = WebServer::start().await;
    web.add_user("rex", Role::Reviewer).await;
    let seeded = seed_review_data(&web).await;
    let client = web.client();
    let csrf = web.login(&client, "rex").await;
    let id = seeded.draft_id.to_string();
    let post = |form: Vec<(&'static str, String)>| {
        let req = client.post(web.url("/queue/bulk")).form(&form);
        async move { req.send().await.unwrap() }
    };
    let bad = post(vec![
        ("csrf", csrf.clone()),
        ("action", "approve".into()),
        ("id", id.clone()),
        ("id", "x".into()),
    ])
    .await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("id"));
    let forged = post(vec![("action", "approve".into()), ("id", id.clone())]).await;
    assert_eq!(forged.status(), 403);
    let detail = web
        .store
        .notice_detail(seeded.draft_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.notice.state.as_str(), "draft");
    let ok = post(vec![
        ("csrf", csrf.clone()),
        ("action", "approve".into()),
        ("id", id.clone()),
    ])
    .await;
    assert_eq!(ok.status(), 303);
    let detail = web
        .store
        .notice_detail(seeded.draft_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.notice.state.as_str(), "approved");
}

// ---- redirects to `next=` and `back=` ----

/// Where a 303 sends the browser.
fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn next_never_leaves_the_site_and_odd_characters_do_not_500() {
    let web = WebServer::start().await;
    web.add_user("rita", Role::Reviewer).await;
    // The form carries a `next` a browser would read as another origin only as `/`.
    let client = web.client();
    let html = web
        .text(&client, "/login?next=/%09/evil.example/path")
        .await;
    // minijinja writes `/` as `&#x2f;`.
    assert!(html.contains(r#"name="next" value="&#x2f;""#), "{html}");
    assert!(!html.contains("evil.example"), "{html}");
    for next in [
        "/\t/evil.example/path",
        "/\u{1}",
        "/\n",
        "/\u{7f}",
        "/\r\nSet-Cookie: x=1",
        "//evil.example/",
        "/\\evil.example/",
        "https://evil.example/",
    ] {
        let client = web.client();
        let csrf = web.login_form(&client).await;
        let resp = client
            .post(web.url("/login"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("name", "rita"),
                ("password", PASSWORD),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "next={next:?}");
        assert_eq!(location(&resp), "/", "next={next:?}");
    }
    // A path on this site is kept.
    let client = web.client();
    let csrf = web.login_form(&client).await;
    let resp = client
        .post(web.url("/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "rita"),
            ("password", PASSWORD),
            ("next", "/queue?platform=jd"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&resp), "/queue?platform=jd");
}

#[tokio::test]
async fn a_bulk_action_with_a_control_character_in_back_returns_to_the_queue() {
    let web = WebServer::start().await;
    web.add_user("rex", Role::Reviewer).await;
    let seeded = seed_review_data(&web).await;
    let client = web.client();
    let csrf = web.login(&client, "rex").await;
    for ids in [vec![], vec![seeded.other_ids[0]]] {
        let mut form: Vec<(&str, String)> = vec![
            ("csrf", csrf.clone()),
            ("action", "approve".into()),
            ("back", "platform=jd\0x".into()),
        ];
        form.extend(ids.iter().map(|id| ("id", id.to_string())));
        let resp = client
            .post(web.url("/queue/bulk"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "ids {ids:?}");
        let to = location(&resp);
        assert!(to.starts_with("/queue?&done="), "{to}");
    }
    // A good `back` is kept.
    let resp = client
        .post(web.url("/queue/bulk"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "approve"),
            ("back", "platform=jd"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&resp), "/queue?platform=jd&done=none");
}

// ---- log lines from outside text ----

/// `markwatch serve` in a scratch directory, on a free loopback port, its stderr in a file.
struct Served {
    scratch: common::Scratch,
    child: std::process::Child,
    log: std::path::PathBuf,
    addr: String,
}

impl Served {
    async fn start() -> Served {
        let scratch = common::Scratch::new();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut toml = format!(
            "[crawl]\ndefinitions = \"{}\"\n[web]\naddr = \"{addr}\"\n[email]\ndir = \"{}\"\n",
            common::repo().join("crawlers").display(),
            scratch.path("outbox").display(),
        );
        for p in common::PLATFORMS {
            toml.push_str(&format!("[platforms.{p}]\nschedule = \"off\"\n"));
        }
        let config = scratch.write("markwatch.toml", &toml);
        let log = scratch.path("serve.log");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_markwatch"));
        cmd.current_dir(scratch.dir.path())
            .arg("--config")
            .arg(&config)
            .arg("--db")
            .arg(scratch.db_arg())
            .args(["--log-format", "text", "serve"])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (key, _) in std::env::vars() {
            if key.starts_with("MARKWATCH_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("RUST_LOG", "markwatch=info");
        let served = Served {
            child: cmd.spawn().expect("start markwatch serve"),
            scratch,
            log,
            addr,
        };
        for _ in 0..600 {
            if let Ok(resp) = reqwest::get(served.url("/healthz")).await
                && resp.status() == 200
            {
                return served;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("serve did not answer /healthz; log:\n{}", served.log());
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `n` lines containing `needle`; returns the log.
    async fn wait_for_lines(&self, needle: &str, n: usize) -> String {
        for _ in 0..300 {
            let log = self.log();
            if log.lines().filter(|l| l.contains(needle)).count() >= n {
                return log;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("no {n} lines with {needle:?} in the log:\n{}", self.log());
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_login_name_cannot_forge_log_lines_and_a_huge_one_is_capped() {
    let served = Served::start().await;
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = client.get(served.url("/login")).send().await.unwrap();
    let csrf = csrf_in(&form.text().await.unwrap());
    let forged =
        "2026-01-01T00:00:00.000000Z  INFO markwatch::web::auth: login user=admin ip=10.9.8.7";
    let huge = "a".repeat(250_000);
    for name in [format!("mallory\n{forged}\r\n"), huge.clone()] {
        let resp = client
            .post(served.url("/login"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("name", name.as_str()),
                ("password", "not the password"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
    }
    let log = served.wait_for_lines("failed login", 2).await;
    // The forged line is part of the failed login's line, escaped, and never a line of its own.
    assert!(
        !log.lines().any(|l| l.starts_with("2026-01-01")),
        "forged log line:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("failed login") && l.contains("mallory\\n2026-01-01")),
        "{log}"
    );
    // The huge name is logged and stored capped at 64 characters.
    assert!(
        !log.contains(&"a".repeat(65)),
        "the huge name was logged in full"
    );
    assert!(log.lines().all(|l| l.len() < 2000), "{log}");
    let pool = common::pool(&served.scratch.db()).await;
    let longest: i64 = sqlx::query_scalar("SELECT max(length(user_name)) FROM login_attempts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(longest <= 65, "a name of {longest} characters was stored");
}

// ---- passwords, sessions and API tokens ----

/// `secs` seconds ago, as the store writes times.
fn ago(secs: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(secs))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn pool(web: &WebServer) -> sqlx::AnyPool {
    common::pool(&web.db()).await
}

#[tokio::test]
async fn sessions_end_after_their_idle_time_and_at_their_absolute_expiry() {
    let web = WebServer::start().await;
    web.add_user("rita", Role::Reviewer).await;
    let db = pool(&web).await;
    let client = web.client();
    web.login(&client, "rita").await;
    // Used 20 minutes ago: still live (the idle limit is 30), and this use is recorded.
    sqlx::query("UPDATE sessions SET last_seen_at = $1")
        .bind(ago(20 * 60))
        .execute(&db)
        .await
        .unwrap();
    let resp = client.get(web.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let recent: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE last_seen_at > $1")
        .bind(ago(60))
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(recent, 1, "the request counts as a use");
    // Idle for 31 minutes: over.
    sqlx::query("UPDATE sessions SET last_seen_at = $1")
        .bind(ago(31 * 60))
        .execute(&db)
        .await
        .unwrap();
    let resp = client.get(web.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 303, "an idle session ends");
    // In steady use but past the absolute limit: over too.
    let client = web.client();
    web.login(&client, "rita").await;
    sqlx::query("UPDATE sessions SET expires_at = $1")
        .bind(ago(1))
        .execute(&db)
        .await
        .unwrap();
    let resp = client.get(web.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 303, "a session ends at its absolute expiry");
    // The cookie lives as long as the absolute limit, from the configuration.
    let web = WebServer::start_with(|c| c.web.session_hours = 2).await;
    web.add_user("rita", Role::Reviewer).await;
    let resp = web.post_login(&web.client(), "rita", PASSWORD).await;
    let cookie = set_cookie(&resp, "mw_session=");
    assert!(cookie.contains("Max-Age=7200"), "{cookie}");
}

fn set_cookie(resp: &reqwest::Response, prefix: &str) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(prefix))
        .unwrap_or_else(|| panic!("no cookie {prefix}: {:?}", resp.headers()))
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned()
}

#[tokio::test]
async fn over_https_the_cookies_are_secure_and_host_prefixed() {
    let web = WebServer::start_with(|c| c.web.base_url = "https://review.example".to_owned()).await;
    web.add_user("rita", Role::Reviewer).await;
    // A browser keeps Secure cookies from HTTPS only: send them by hand over loopback HTTP.
    let client = web.client();
    let form = client.get(web.url("/login")).send().await.unwrap();
    let csrf_cookie = set_cookie(&form, "__Host-mw_login_csrf=");
    for part in ["Secure", "Path=/", "HttpOnly", "SameSite=Strict"] {
        assert!(csrf_cookie.contains(part), "{csrf_cookie}");
    }
    assert!(!csrf_cookie.contains("Domain"), "{csrf_cookie}");
    let csrf = csrf_in(&form.text().await.unwrap());
    let resp = client
        .post(web.url("/login"))
        .header("cookie", format!("__Host-mw_login_csrf={csrf}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "rita"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let session = set_cookie(&resp, "__Host-mw_session=");
    assert!(
        session.contains("Secure") && session.contains("Path=/"),
        "{session}"
    );
    let token = cookie_value(&session);
    let page = client
        .get(web.url("/"))
        .header("cookie", format!("__Host-mw_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    // The unprefixed name, which a sibling host or plain HTTP could set, is not read.
    let page = client
        .get(web.url("/"))
        .header("cookie", format!("mw_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);
}

#[tokio::test]
async fn a_user_changes_their_password_and_their_other_sessions_end() {
    let web = WebServer::start().await;
    web.add_user("rita", Role::Viewer).await;
    let here = web.client();
    let there = web.client();
    web.login(&there, "rita").await;
    web.login(&here, "rita").await;
    let page = client_get(&web, &here, "/password").await;
    let csrf = csrf_in(&page);
    let post = |current: &str, new: &str, again: &str, csrf: &str| {
        here.post(web.url("/password"))
            .form(&[
                ("csrf", csrf),
                ("current", current),
                ("new", new),
                ("again", again),
            ])
            .send()
    };
    let new = "saffron tundra pebble walrus";
    let resp = post(PASSWORD, new, new, "0123").await.unwrap();
    assert_eq!(resp.status(), 403, "the form needs its CSRF token");
    let resp = post("not the password", new, new, &csrf).await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("current password is wrong")
    );
    let resp = post(PASSWORD, new, "saffron tundra pebble", &csrf)
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("differ"));
    for weak in ["password123", "rita-rita-rita-2024", "qwertyuiop12"] {
        let resp = post(PASSWORD, weak, weak, &csrf).await.unwrap();
        assert_eq!(resp.status(), 400, "{weak}");
        assert!(resp.text().await.unwrap().contains("too weak"), "{weak}");
    }
    // Nothing changed so far: the old password still works.
    assert_eq!(
        web.post_login(&web.client(), "rita", PASSWORD)
            .await
            .status(),
        303
    );
    let resp = post(PASSWORD, new, new, &csrf).await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/password?done=password_changed");
    assert!(
        client_get(&web, &here, "/password?done=password_changed")
            .await
            .contains("Password changed")
    );
    let other = there.get(web.url("/")).send().await.unwrap();
    assert_eq!(other.status(), 303, "the other session ended");
    assert_eq!(
        web.post_login(&web.client(), "rita", PASSWORD)
            .await
            .status(),
        401
    );
    assert_eq!(
        web.post_login(&web.client(), "rita", new).await.status(),
        303
    );
}

async fn client_get(web: &WebServer, client: &reqwest::Client, path: &str) -> String {
    let resp = client.get(web.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.text().await.unwrap()
}

#[tokio::test]
async fn an_admin_cannot_give_a_new_user_a_weak_password() {
    let web = WebServer::start().await;
    web.add_user("ada", Role::Admin).await;
    let client = web.client();
    let csrf = web.login(&client, "ada").await;
    for weak in ["password1234", "mallory2024!", "1q2w3e4r5t6y"] {
        let resp = client
            .post(web.url("/users"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("action", "add"),
                ("name", "mallory"),
                ("role", "viewer"),
                ("password", weak),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{weak}");
        assert!(resp.text().await.unwrap().contains("too weak"), "{weak}");
    }
    assert!(web.store.user_by_name("mallory").await.unwrap().is_none());
}

#[tokio::test]
async fn api_tokens_expire_and_are_revoked_one_by_one() {
    let web = WebServer::start().await;
    web.add_user("int", Role::Viewer).await;
    let client = web.client();
    let status = |token: String| {
        let req = client.get(web.url("/api/v1/me")).bearer_auth(token);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let soon = chrono::Utc::now() + chrono::Duration::days(1);
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    let live = web
        .store
        .create_api_token("int", Some("ERP"), Some(soon), "test")
        .await
        .unwrap();
    let expired = web
        .store
        .create_api_token("int", None, Some(past), "test")
        .await
        .unwrap();
    let other = web
        .store
        .create_api_token("int", None, None, "test")
        .await
        .unwrap();
    assert_eq!(status(live.token.clone()).await, 200);
    assert_eq!(status(expired.token.clone()).await, 401, "an expired token");
    assert_eq!(status(other.token.clone()).await, 200);
    web.store.revoke_api_token(live.id, "test").await.unwrap();
    assert_eq!(status(live.token.clone()).await, 401, "a revoked token");
    assert_eq!(
        status(other.token.clone()).await,
        200,
        "the user's other token works"
    );
    let listed = web.store.api_tokens().await.unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().any(|t| t.id == live.id && t.revoked));
    assert!(matches!(
        web.store.revoke_api_token(9999, "test").await,
        Err(markwatch::UserError::NoToken(9999))
    ));
}

/// `markwatch --db <db> ARGS` with `stdin` piped in: (exit code, stdout, stderr).
fn cli(db: &str, args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_markwatch"));
    cmd.arg("--db").arg(db).args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("MARKWATCH_") {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_refuses_weak_passwords_and_issues_lists_and_revokes_expiring_tokens() {
    let scratch = common::Scratch::new();
    let db = scratch.db_arg();
    let add = [
        "users",
        "add",
        "bot",
        "--role",
        "reviewer",
        "--password-stdin",
    ];
    for weak in ["password123\n", "bot-bot-bot-bot\n", "short\n"] {
        let (code, _, err) = cli(&db, &add, weak);
        assert_eq!(code, 2, "{weak}: {err}");
        assert!(err.contains("too weak"), "{err}");
    }
    let (code, out, err) = cli(&db, &add, "plum vivid orbit kettle\n");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("added bot"), "{out}");
    let passwd = ["users", "passwd", "bot", "--password-stdin"];
    let (code, _, err) = cli(&db, &passwd, "iloveyou1234\n");
    assert_eq!(code, 2, "{err}");
    let (code, token, err) = cli(
        &db,
        &[
            "users",
            "token",
            "bot",
            "--label",
            "ERP",
            "--expires-days",
            "30",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(token.trim().starts_with("mw_"), "{token}");
    assert!(err.contains("valid until"), "{err}");
    let (_, list, _) = cli(&db, &["users", "tokens"], "");
    assert!(list.contains("ERP") && list.contains("active"), "{list}");
    assert!(!list.contains(token.trim()), "the secret is never listed");
    let id = regex::Regex::new(r"API token (\d+) for bot")
        .unwrap()
        .captures(&err)
        .unwrap()[1]
        .to_owned();
    let (code, out, err) = cli(&db, &["users", "revoke", &id], "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("revoked API token {id}")), "{out}");
    let (_, list, _) = cli(&db, &["users", "tokens"], "");
    assert!(list.contains("revoked"), "{list}");
    let (code, _, err) = cli(&db, &["users", "revoke", "4242"], "");
    assert_eq!(code, 2, "{err}");
}
