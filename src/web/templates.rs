//! The page templates, compiled into the binary (minijinja; `.html` autoescapes).

use axum::response::Html;
use minijinja::{AutoEscape, Environment};

use super::{WebError, WebState};

/// Every page template, by name.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "layout.html",
        include_str!("../../templates/web/layout.html"),
    ),
    ("login.html", include_str!("../../templates/web/login.html")),
    (
        "dashboard.html",
        include_str!("../../templates/web/dashboard.html"),
    ),
    (
        "brands.html",
        include_str!("../../templates/web/brands.html"),
    ),
    ("users.html", include_str!("../../templates/web/users.html")),
    (
        "accounts.html",
        include_str!("../../templates/web/accounts.html"),
    ),
    (
        "password.html",
        include_str!("../../templates/web/password.html"),
    ),
    ("queue.html", include_str!("../../templates/web/queue.html")),
    (
        "bulk_result.html",
        include_str!("../../templates/web/bulk_result.html"),
    ),
    (
        "notice.html",
        include_str!("../../templates/web/notice.html"),
    ),
    (
        "evidence.html",
        include_str!("../../templates/web/evidence.html"),
    ),
    ("cases.html", include_str!("../../templates/web/cases.html")),
    (
        "sellers.html",
        include_str!("../../templates/web/sellers.html"),
    ),
    (
        "network.html",
        include_str!("../../templates/web/network.html"),
    ),
    ("allow.html", include_str!("../../templates/web/allow.html")),
];

pub(super) fn environment() -> Result<Environment<'static>, WebError> {
    let mut env = Environment::new();
    // Everything rendered here is HTML, so escaping is on for every template.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    Ok(env)
}

impl WebState {
    pub(crate) fn render(
        &self,
        name: &str,
        ctx: minijinja::Value,
    ) -> Result<Html<String>, WebError> {
        Ok(Html(self.inner.templates.get_template(name)?.render(ctx)?))
    }
}
