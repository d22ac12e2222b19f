//! The review UI over real HTTP on loopback, with a real SQLite file: logins, sessions, CSRF,
//! roles, throttling, security headers, and hostile scraped text rendered inert.

mod common;

use common::web::{PASSWORD, WebServer, csrf_in};
use markwatch::store::Role;

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
        .fetch_all(
            &sqlx::SqlitePool::connect(&format!("sqlite:{}", web.db().display()))
                .await
                .unwrap(),
        )
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
        .create_api_token("int", Some("ERP"), "test")
        .await
        .unwrap();
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
