//! The review UI on 127.0.0.1:0 over a real database (an SQLite file, or PostgreSQL under
//! `MW_TEST_POSTGRES`), and a cookie-keeping HTTP client.

use markwatch::load_definitions;
use std::net::SocketAddr;

use markwatch::Config;

use markwatch::{Database, Role, Store};
use markwatch::{WebState, serve_review_ui};

pub const PASSWORD: &str = "correct horse battery staple";

pub struct WebServer {
    pub dir: tempfile::TempDir,
    pub store: Store,
    db: Database,
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl WebServer {
    /// A fresh database with the demo registry imported, served on a free loopback port, with
    /// the repository's platform definitions.
    pub async fn start() -> WebServer {
        WebServer::start_with_definitions(&super::repo().join("crawlers")).await
    }

    /// As [`WebServer::start`], with the platform definitions in `definitions`, loaded as the
    /// daemon loads `crawl.definitions`.
    pub async fn start_with_definitions(definitions: &std::path::Path) -> WebServer {
        WebServer::start_configured(definitions, |_| {}).await
    }

    /// As [`WebServer::start`], with `configure` applied to the configuration first.
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> WebServer {
        WebServer::start_configured(&super::repo().join("crawlers"), configure).await
    }

    /// The review UI over an existing database (another test's), the demo registry imported.
    pub async fn start_on(db: Database) -> WebServer {
        let dir = tempfile::tempdir().expect("tempdir");
        WebServer::serve(dir, db, &super::repo().join("crawlers"), |_| {}).await
    }

    async fn start_configured(
        definitions: &std::path::Path,
        configure: impl FnOnce(&mut Config),
    ) -> WebServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = super::fresh_database(dir.path(), "markwatch.db");
        WebServer::serve(dir, db, definitions, configure).await
    }

    async fn serve(
        dir: tempfile::TempDir,
        db: Database,
        definitions: &std::path::Path,
        configure: impl FnOnce(&mut Config),
    ) -> WebServer {
        let store = Store::open(&db).await.expect("open store");
        let brands = markwatch::load_registry(&super::demo_brands()).unwrap();
        store
            .import_registry(&brands, "test", "brands.toml")
            .await
            .unwrap();
        let mut config = Config {
            database: db.clone(),
            ..Config::default()
        };
        config.crawl.definitions = definitions.to_path_buf();
        configure(&mut config);
        let defs = load_definitions(definitions).expect("platform definitions");
        let state = WebState::new(store.clone(), config, &defs).expect("web state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            serve_review_ui(listener, state, async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        WebServer {
            dir,
            store,
            db,
            addr,
            shutdown: Some(tx),
        }
    }

    pub fn db(&self) -> Database {
        self.db.clone()
    }

    /// The SQLite file, for suites that run on SQLite only.
    pub fn db_file(&self) -> std::path::PathBuf {
        self.dir.path().join("markwatch.db")
    }

    /// `--db` as the binary takes it.
    pub fn db_arg(&self) -> String {
        match &self.db {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(url) => url.clone(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The body `client` gets for `path`, whatever the status.
    pub async fn text(&self, client: &reqwest::Client, path: &str) -> String {
        client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn add_user(&self, name: &str, role: Role) {
        self.store
            .add_user(name, role, PASSWORD, "test")
            .await
            .unwrap();
    }

    /// A browser-like client: keeps cookies, does not follow redirects (tests look at them).
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// Logs `name` in on `client`; returns the session's CSRF token, read from a page.
    pub async fn login(&self, client: &reqwest::Client, name: &str) -> String {
        let resp = self.post_login(client, name, PASSWORD).await;
        assert_eq!(resp.status(), 303, "login of {name} failed");
        let page = client.get(self.url("/")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        csrf_in(&page.text().await.unwrap())
    }

    pub async fn post_login(
        &self,
        client: &reqwest::Client,
        name: &str,
        password: &str,
    ) -> reqwest::Response {
        let csrf = self.login_form(client).await;
        self.post_login_with(client, &csrf, name, password).await
    }

    /// Opens the login form on `client` (setting its CSRF cookie); returns the form's token.
    pub async fn login_form(&self, client: &reqwest::Client) -> String {
        let form = client.get(self.url("/login")).send().await.unwrap();
        csrf_in(&form.text().await.unwrap())
    }

    /// Posts the login form with a token from [`WebServer::login_form`].
    pub async fn post_login_with(
        &self,
        client: &reqwest::Client,
        csrf: &str,
        name: &str,
        password: &str,
    ) -> reqwest::Response {
        client
            .post(self.url("/login"))
            .form(&[
                ("csrf", csrf),
                ("name", name),
                ("password", password),
                ("next", "/"),
            ])
            .send()
            .await
            .unwrap()
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The first CSRF token in a page's forms.
pub fn csrf_in(html: &str) -> String {
    let re = regex::Regex::new(r#"name="csrf" value="([0-9a-f]+)""#).unwrap();
    re.captures(html)
        .unwrap_or_else(|| panic!("no csrf field in page:\n{html}"))[1]
        .to_owned()
}

/// Hostile titles a crawl can bring in: they must render inert everywhere.
pub const HOSTILE_TITLES: [&str; 2] = [
    "耐克 高仿 <script>alert(1)</script> 运动鞋",
    "耐克 复刻 \"><img src=x onerror=alert(1)> 跑步鞋",
];

/// What [`seed_review_data`] made.
pub struct Seeded {
    /// The platform the browser test filters on.
    pub platform: String,
    /// A fileable draft on that platform, and its listing's item id.
    pub draft_id: i64,
    pub draft_item_id: String,
    /// Drafts whose listing titles are [`HOSTILE_TITLES`].
    pub hostile_ids: Vec<i64>,
    /// Drafts on other platforms.
    pub other_ids: Vec<i64>,
}

/// A matched listing to seed, judged infringing from a score of 0.75.
pub fn listing(
    platform: &str,
    item_id: &str,
    title: &str,
    brand: &str,
    score: f64,
) -> markwatch::SeedListing {
    markwatch::SeedListing {
        platform: platform.to_owned(),
        item_id: item_id.to_owned(),
        title: title.to_owned(),
        seller: "莆田鞋业直销".to_owned(),
        price: 89.0,
        brand: brand.to_owned(),
        verdict: if score >= 0.75 {
            "infringing"
        } else {
            "suspect"
        },
        score,
        ..markwatch::SeedListing::default()
    }
}

/// Draft notices on several platforms, two with hostile titles.
pub async fn seed_review_data(web: &WebServer) -> Seeded {
    use markwatch::seed_notice;
    let draft = seed_notice(
        &web.store,
        &[listing(
            "tmall",
            "610000000001",
            "耐克 Air Max 高仿 1:1 莆田 男鞋",
            "Nike",
            0.93,
        )],
    )
    .await
    .unwrap()[0];
    let mut hostile_ids = Vec::new();
    for (i, title) in HOSTILE_TITLES.iter().enumerate() {
        let id = format!("61000000010{i}");
        hostile_ids.push(
            seed_notice(&web.store, &[listing("tmall", &id, title, "Nike", 0.81)])
                .await
                .unwrap()[0],
        );
    }
    let other_ids = seed_notice(
        &web.store,
        &[
            listing(
                "jd",
                "100012345678",
                "阿迪达斯 超A 三叶草 卫衣",
                "Adidas",
                0.7,
            ),
            listing("taobao", "720000000001", "古驰 原单 双肩包", "Gucci", 0.88),
        ],
    )
    .await
    .unwrap();
    Seeded {
        platform: "tmall".to_owned(),
        draft_id: draft,
        draft_item_id: "610000000001".to_owned(),
        hostile_ids,
        other_ids,
    }
}
