//! Shared setup for integration tests: run the real binary in a scratch directory.
#![allow(dead_code)] // each test file uses a different subset

pub mod person;
pub mod proxy;
pub mod smtp;
pub mod tsa;

use markwatch::{decode_page, extract_search, load_definition};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use markwatch::{Database, PlatformDef};
use markwatch::{Extracted, SearchPage};
use markwatch::{FixtureOptions, FixtureServer};
use url::Url;

/// The binary under test. `MW_TEST_BIN` names a private copy when several worktrees share one
/// build directory (each build replaces `target/debug/markwatch`).
pub fn bin() -> PathBuf {
    std::env::var_os("MW_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_markwatch")))
}

/// The crate root, where `fixtures/` and `crawlers/` live.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn demo_brands() -> PathBuf {
    repo().join("fixtures/brands.toml")
}

/// Whether this is a CI run: `CI=true`, as `.ci/run` is started.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// For a test that needs a component from outside the crate (a browser, a driver, a server):
/// `found` when it is there. When it is missing, under CI (`CI=true`) the test fails here,
/// naming the component and how to install it; elsewhere this prints a loud note and returns
/// None, and the test returns early (skips).
#[track_caller]
pub fn require<T>(test: &str, component: &str, found: Option<T>, install: &str) -> Option<T> {
    if found.is_some() {
        return found;
    }
    assert!(
        !under_ci(),
        "{test}: {component} is missing, and under CI (CI=true) that fails the test instead of \
         skipping it. Install it: {install}"
    );
    // Straight to stderr: the test harness captures `eprintln!` of a passing test.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n\n!!!!!!!! SKIPPED {test}: {component} is missing (under CI=true this fails).\n\
         !!!!!!!! Install it: {install}\n"
    );
    None
}

/// The PostgreSQL server the suites run against instead of SQLite files, when set
/// (`postgres://user@host:port`, no database name): `.ci/run` sets it for its second pass.
pub fn postgres_server() -> Option<String> {
    std::env::var("MW_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('/').to_owned())
}

/// A fresh database for one test: `dir/<file>`, or a new `mw_test_…` database on
/// [`postgres_server`]. `.ci/run` drops the `mw_test_` databases before it starts.
pub fn fresh_database(dir: &Path, file: &str) -> Database {
    match postgres_server() {
        Some(server) => fresh_database_on(&server),
        None => Database::Sqlite(dir.join(file)),
    }
}

/// A new, empty `mw_test_…` database on `server`.
pub fn fresh_database_on(server: &str) -> Database {
    let name = format!("mw_test_{}", hex::encode(rand::random::<[u8; 8]>()));
    let url = format!("{server}/{name}");
    let create = url.clone();
    // Its own thread and runtime: callers may be inside a runtime or not.
    std::thread::spawn(move || {
        use sqlx::migrate::MigrateDatabase as _;
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(sqlx::Postgres::create_database(&create))
    })
    .join()
    .unwrap()
    .expect("create a test database on MW_TEST_POSTGRES");
    Database::Postgres(url)
}

/// A connection for looking at what a test stored, on either backend. Statements are
/// written with `$1, $2, …`, which both take, and read flags as integers.
pub async fn connect(db: &Database) -> sqlx::AnyConnection {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(&any_url(db))
        .await
        .expect("connect to the test database")
}

/// The URL `sqlx::Any` opens `db` by.
fn any_url(db: &Database) -> String {
    match db {
        Database::Sqlite(path) => format!("sqlite:{}", path.display()),
        Database::Postgres(url) => url.clone(),
    }
}

/// A pool on the test's database, for tests that look at what the server stored.
pub async fn pool(db: &Database) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&any_url(db))
        .await
        .expect("connect to the test database")
}

/// A scratch directory holding a database, with the binary run inside it.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    db: Database,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = fresh_database(dir.path(), "markwatch.db");
        Scratch { dir, db }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The test's database, as `--db` and `Store::open` take it.
    pub fn db(&self) -> Database {
        self.db.clone()
    }

    /// The SQLite file, for the tests about files (locks, backups, modes) that only SQLite has.
    pub fn db_file(&self) -> PathBuf {
        self.path("markwatch.db")
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.db, Database::Postgres(_))
    }

    /// `--db` as the binary takes it.
    pub fn db_arg(&self) -> String {
        match &self.db {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(url) => url.clone(),
        }
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write scratch file");
        path
    }

    /// `markwatch --db <scratch>/markwatch.db`, run in the scratch directory, with no
    /// MARKWATCH_* leaking in: add the arguments and run it.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(bin());
        cmd.current_dir(self.dir.path())
            .arg("--db")
            .arg(self.db_arg());
        for (key, _) in std::env::vars() {
            if key.starts_with("MARKWATCH_") {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    /// `markwatch --db <scratch>/markwatch.db ARGS`, with no config file or MARKWATCH_* leaking in.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_env(args, &[])
    }

    pub fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command();
        cmd.args(args);
        cmd.env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run(cmd.output().expect("run markwatch"))
    }
}

pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().expect("exited normally")
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    /// Asserts success and returns stdout.
    pub fn ok(&self) -> String {
        assert_eq!(
            self.code(),
            0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self.stdout()
    }
}

/// Every row of every table, as text: two equal dumps mean an unchanged database.
pub async fn dump(db: impl Into<Database>) -> Vec<String> {
    match db.into() {
        Database::Sqlite(path) => dump_sqlite(&path).await,
        db => dump_postgres(&db).await,
    }
}

async fn dump_postgres(db: &Database) -> Vec<String> {
    use sqlx::Row;
    let mut conn = connect(db).await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(table_name AS TEXT) FROM information_schema.tables
         WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut out = Vec::new();
    for table in tables {
        // Table names come from the catalogue, not from input. Rows whole, in their text's
        // order: PostgreSQL keeps no insertion order to read.
        let sql = format!("SELECT CAST(row_to_json(t) AS TEXT) AS r FROM \"{table}\" t ORDER BY r");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        for row in rows {
            out.push(format!("{table}: {}", row.get::<String, _>(0)));
        }
    }
    out
}

async fn dump_sqlite(db: &Path) -> Vec<String> {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", db.display()))
        .await
        .expect("open db");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_sqlx%' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut out = Vec::new();
    for table in tables {
        // Table names come from sqlite_master, not from input. A WITHOUT ROWID table has no
        // rowid, and is read in primary-key order.
        let without_rowid: bool =
            sqlx::query_scalar("SELECT wr FROM pragma_table_list WHERE name = ?")
                .bind(&table)
                .fetch_one(&mut conn)
                .await
                .unwrap();
        let sql = if without_rowid {
            format!("SELECT NULL, * FROM \"{table}\"")
        } else {
            format!("SELECT quote(t.rowid), * FROM \"{table}\" AS t ORDER BY t.rowid")
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        for row in rows {
            let cols: Vec<String> = (0..row.len())
                .map(|i| {
                    row.try_get::<Option<String>, _>(i)
                        .ok()
                        .flatten()
                        .or_else(|| {
                            row.try_get::<Option<i64>, _>(i)
                                .ok()
                                .flatten()
                                .map(|v| v.to_string())
                        })
                        .or_else(|| {
                            row.try_get::<Option<f64>, _>(i)
                                .ok()
                                .flatten()
                                .map(|v| v.to_string())
                        })
                        .unwrap_or_else(|| "NULL".to_owned())
                })
                .collect();
            out.push(format!("{table}: {}", cols.join(" | ")));
        }
    }
    out
}

// ---- the fixture server on 127.0.0.1:0 and a crawl loop over HTTP ----

pub const PLATFORMS: [&str; 4] = ["taobao", "tmall", "jd", "amazon_cn"];

pub fn definition(platform: &str) -> PlatformDef {
    load_definition(&repo().join("crawlers").join(format!("{platform}.toml"))).unwrap()
}

/// A running fixture server.
pub struct Running {
    pub server: FixtureServer,
    pub addr: std::net::SocketAddr,
    pub client: reqwest::Client,
}

impl Running {
    pub async fn start(options: FixtureOptions) -> Running {
        let server = FixtureServer::new(options).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(markwatch::serve_fixtures(listener, server.clone()));
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .unwrap();
        Running {
            server,
            addr,
            client,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The base URL override a crawler would use for `platform`.
    pub fn base(&self, platform: &str) -> Url {
        Url::parse(&self.url(&format!("/{platform}"))).unwrap()
    }

    /// GETs a page; returns status, Content-Type, body and the final URL.
    pub async fn get(&self, url: &str) -> (u16, Option<String>, Vec<u8>, String) {
        let resp = self.client.get(url).send().await.unwrap();
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let final_url = resp.url().to_string();
        let body = resp.bytes().await.unwrap().to_vec();
        (status, ctype, body, final_url)
    }

    /// Fetches and reads one search page the way the crawler does.
    pub async fn search_page(&self, def: &PlatformDef, keyword: &str, page: u32) -> SearchPage {
        self.search_page_with(def, keyword, page, "").await
    }

    pub async fn search_page_with(
        &self,
        def: &PlatformDef,
        keyword: &str,
        page: u32,
        extra_query: &str,
    ) -> SearchPage {
        let real = def.search_url(keyword, page);
        let fetch = PlatformDef::fetch_url(&real, Some(&self.base(&def.platform))) + extra_query;
        let (status, ctype, body, _) = self.get(&fetch).await;
        assert_eq!(status, 200, "{fetch}");
        let decoded = decode_page(&body, ctype.as_deref(), &def.encoding);
        assert!(
            !decoded.had_errors || extra_query.contains("truncate"),
            "{fetch}"
        );
        extract_search(def, &decoded.text, &real).unwrap_or_else(|e| panic!("{fetch}: {e}"))
    }

    /// Every listing of every page of one keyword, following `has_next`.
    pub async fn crawl_keyword(&self, def: &PlatformDef, keyword: &str) -> (Vec<Extracted>, u32) {
        let mut all = Vec::new();
        let mut page = 1;
        loop {
            let p = self.search_page(def, keyword, page).await;
            assert!(!p.truncated);
            all.extend(p.listings);
            if !p.has_next {
                return (all, page);
            }
            page += 1;
            assert!(
                page <= def.pagination.as_ref().unwrap().max_pages,
                "runaway paging"
            );
        }
    }
}

// ---- the review UI ----
pub mod web;
