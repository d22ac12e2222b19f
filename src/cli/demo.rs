//! `markwatch demo`: the whole pipeline once, on the bundled registry and fixture platforms,
//! in a fresh directory; then a summary of what it made and where it lies.

use markwatch::{load_definitions, serve_fixtures};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use markwatch::DaemonLock;
use markwatch::Pace;
use markwatch::Pipeline;
use markwatch::{AccountPace, Cookie, FetchWith, PlatformDef, SecretKey, find_chromium};
use markwatch::{Config, EmailTransport, PlatformConfig};
use markwatch::{FixtureMode, FixtureOptions, FixtureServer, ModernOptions};

use markwatch::{CronExpr, Watch};
use markwatch::{NoticeFilter, NoticeSort, Store};

use super::Context;

/// Written into a demo directory, so a later demo may empty it and `serve --demo` finds it.
const MARKER: &str = ".markwatch-demo";
const DB: &str = "markwatch.db";
const OUTBOX: &str = "outbox";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo's database and emails go [default: <temp dir>/markwatch-demo]. A previous
    /// demo there is replaced; any other non-empty directory is refused
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The fixture catalogue and page templates [default: ./fixtures, else the source tree's]
    #[arg(long, value_name = "DIR")]
    fixtures: Option<PathBuf>,
}

/// Where the demo goes unless `--dir` says otherwise.
pub fn default_dir() -> PathBuf {
    std::env::temp_dir().join("markwatch-demo")
}

/// `./<name>` when run from a checkout, else the source tree's copy.
fn bundled(configured: &Path, name: &str) -> PathBuf {
    if configured.is_dir() {
        configured.to_owned()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
    }
}

/// The fixture platforms on a free loopback port, for as long as the value lives.
pub struct Fixtures {
    pub addr: SocketAddr,
    /// The squatted .CN names the fixture DNS serves and this server answers as.
    zone: markwatch::FixtureZone,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Fixtures {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start_fixtures(dir: &Path, mode: FixtureMode) -> anyhow::Result<Fixtures> {
    let options = FixtureOptions {
        fixtures_dir: dir.to_owned(),
        mode,
        // The demo crawls with its pace lifted: the fixtures' slider and robot check would
        // stop it at once. The tests show those (tests/accounts_crawl.rs).
        modern: ModernOptions {
            mtop_max_calls: 100_000,
            burst_limit: 100_000,
            ..ModernOptions::default()
        },
        ..FixtureOptions::default()
    };
    let server = FixtureServer::new(options)
        .with_context(|| format!("cannot load the fixtures in {}", dir.display()))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot open a loopback port for the fixture platforms")?;
    let addr = listener.local_addr()?;
    let zone = server.zone();
    let task = tokio::spawn(serve_fixtures(listener, server));
    Ok(Fixtures { addr, zone, task })
}

/// The fixture platforms the demo crawls: today's (logins, scripts, challenges) and, when
/// Chromium is missing, the classic ones for the platforms only a browser can read.
pub struct DemoPlatforms {
    modern: Fixtures,
    classic: Option<Fixtures>,
}

/// Whether a definition needs a browser for its search pages.
fn needs_browser(def: &PlatformDef) -> bool {
    def.search
        .as_ref()
        .is_some_and(|s| s.fetch == FetchWith::Browser)
}

/// The configuration a demo runs with: its own database and outbox, every platform pointed at
/// the in-process fixture servers (the browser platforms at the classic one, read over HTTP
/// without login, when there is no Chromium).
fn demo_config(base: &Config, dir: &Path, platforms: &DemoPlatforms) -> anyhow::Result<Config> {
    let mut config = base.clone();
    config.database = dir.join(DB).into();
    config.email.transport = EmailTransport::File;
    config.email.dir = dir.join(OUTBOX);
    config.crawl.definitions = bundled(&base.crawl.definitions, "crawlers");
    for def in load_definitions(&config.crawl.definitions)? {
        let platform = match &platforms.classic {
            Some(classic) if needs_browser(&def) => PlatformConfig {
                base_url: Some(format!("http://{}/{}", classic.addr, def.platform)),
                fetch: Some(FetchWith::Http),
                login_required: Some(false),
                ..PlatformConfig::default()
            },
            _ => PlatformConfig {
                base_url: Some(format!("http://{}/{}", platforms.modern.addr, def.platform)),
                ..PlatformConfig::default()
            },
        };
        config.platforms.insert(def.platform, platform);
    }
    Ok(config)
}

/// One fixture account per platform, as `fixtures/accounts.toml` lists them (Tmall signs in
/// with Taobao's); JD gets two, to show pages shared between accounts.
fn demo_accounts(platform: &str, accounts: &FixtureAccounts) -> Vec<FixtureAccount> {
    let group = |g: &str| accounts.get(g).cloned().unwrap_or_default();
    match platform {
        "taobao" => group("taobao").into_iter().take(1).collect(),
        "tmall" => group("taobao").into_iter().skip(1).take(1).collect(),
        "jd" => group("jd").into_iter().take(2).collect(),
        other => group(other).into_iter().take(1).collect(),
    }
}

#[derive(Debug, Clone, serde::Deserialize)]
struct FixtureAccount {
    name: String,
    password: String,
}

type FixtureAccounts = std::collections::HashMap<String, Vec<FixtureAccount>>;

/// Logs in to the fixture login page `login_url` as a person would with a browser's form:
/// the form holding a password field is filled (its first text field gets the name) and
/// posted; the cookies the platform sets are the session. Fixture accounts only.
async fn log_in(login_url: &str, account: &FixtureAccount) -> anyhow::Result<Vec<Cookie>> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let page = client.get(login_url).send().await?.text().await?;
    let (action, fields) = {
        let doc = scraper::Html::parse_document(&page);
        let form_sel = scraper::Selector::parse("form").expect("valid selector");
        let input_sel = scraper::Selector::parse("input[name]").expect("valid selector");
        let form = doc
            .select(&form_sel)
            .find(|f| {
                f.select(&input_sel)
                    .any(|i| i.attr("type") == Some("password"))
            })
            .with_context(|| format!("no login form at {login_url}"))?;
        let mut user_done = false;
        let fields: Vec<(String, String)> = form
            .select(&input_sel)
            .filter_map(|i| {
                let name = i.attr("name")?.to_owned();
                let value = match i.attr("type").unwrap_or("text") {
                    "password" => account.password.clone(),
                    "text" | "email" | "tel" if !user_done => {
                        user_done = true;
                        account.name.clone()
                    }
                    "hidden" => i.attr("value").unwrap_or("").to_owned(),
                    _ => return None,
                };
                Some((name, value))
            })
            .collect();
        (form.attr("action").unwrap_or("").to_owned(), fields)
    };
    let url = url::Url::parse(login_url)?.join(&action)?;
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&fields)
        .finish();
    let response = client
        .post(url.clone())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await?;
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let cookies: Vec<Cookie> = response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| {
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.trim().split_once('=')?;
            Some(Cookie {
                domain: host.clone(),
                include_subdomains: false,
                path: "/".to_owned(),
                secure: false,
                http_only: attrs.to_ascii_lowercase().contains("httponly"),
                expires: None,
                name: name.to_owned(),
                value: value.to_owned(),
            })
        })
        .collect();
    if cookies.is_empty() {
        bail!("the fixture login at {login_url} refused {}", account.name);
    }
    Ok(cookies)
}

/// Logs the demo accounts in through the fixture login forms and stores their sessions
/// sealed, as `accounts import` would. Returns (platform, account) pairs.
async fn log_in_demo_accounts(
    store: &Store,
    config: &Config,
    fixtures_dir: &Path,
) -> anyhow::Result<Vec<(String, String)>> {
    let path = fixtures_dir.join("accounts.toml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let accounts: FixtureAccounts =
        toml::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))?;
    let key = SecretKey::load(None, &markwatch::default_key_file(&config.database))?;
    let mut done = Vec::new();
    for def in load_definitions(&config.crawl.definitions)? {
        let Some(login) = &def.login else { continue };
        let overrides = config.platforms.get(&def.platform);
        if overrides.and_then(|p| p.login_required) == Some(false) {
            continue;
        }
        let base = overrides
            .and_then(|p| p.base_url.as_deref())
            .map(url::Url::parse)
            .transpose()?;
        let login_url = PlatformDef::fetch_url(&login.url, base.as_ref());
        for account in demo_accounts(&def.platform, &accounts) {
            let cookies = log_in(&login_url, &account).await?;
            markwatch::import_account(
                store,
                &key,
                &def.platform,
                &account.name,
                &cookies,
                None,
                AccountPace::default(),
            )
            .await?;
            done.push((def.platform.clone(), account.name.clone()));
        }
    }
    Ok(done)
}

/// For `serve --demo`: the demo's configuration and its fixture platforms, started.
pub async fn serve_config(base: &Config, dir: &Path) -> anyhow::Result<(Config, DemoPlatforms)> {
    if !dir.join(MARKER).exists() || !dir.join(DB).exists() {
        bail!(
            "no demo data in {}; run `markwatch demo{}` first",
            dir.display(),
            if dir == default_dir() {
                String::new()
            } else {
                format!(" --dir {}", dir.display())
            }
        );
    }
    let platforms = start_platforms(&bundled(Path::new("fixtures"), "fixtures")).await?;
    let config = demo_config(base, dir, &platforms)?;
    Ok((config, platforms))
}

/// The modern fixture platforms, and the classic ones too when Chromium is missing.
async fn start_platforms(fixtures_dir: &Path) -> anyhow::Result<DemoPlatforms> {
    let modern = start_fixtures(fixtures_dir, FixtureMode::Modern).await?;
    let classic = match find_chromium(None) {
        Ok(_) => None,
        Err(_) => Some(start_fixtures(fixtures_dir, FixtureMode::Classic).await?),
    };
    Ok(DemoPlatforms { modern, classic })
}

/// Makes `dir` an empty demo directory: new, empty, or a previous demo's (whose files go).
fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .peekable();
        let empty = entries.peek().is_none();
        if !empty && !dir.join(MARKER).exists() {
            bail!(
                "{} is not empty and holds no earlier demo; choose another --dir",
                dir.display()
            );
        }
        // A `serve --demo` on this directory holds the lock: don't pull the database from under it.
        let lock = DaemonLock::acquire(dir.join(DB)).with_context(|| {
            format!(
                "{} is in use (stop `markwatch serve --demo` first)",
                dir.display()
            )
        })?;
        for name in [
            DB.to_owned(),
            format!("{DB}-wal"),
            format!("{DB}-shm"),
            format!("{DB}-journal"),
        ] {
            let path = dir.join(name);
            if path.exists() {
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
        let outbox = dir.join(OUTBOX);
        if outbox.exists() {
            std::fs::remove_dir_all(&outbox)
                .with_context(|| format!("cannot remove {}", outbox.display()))?;
        }
        drop(lock);
    } else {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(
        dir.join(MARKER),
        "made by `markwatch demo`; a later demo may empty this directory\n",
    )
    .with_context(|| format!("cannot write in {}", dir.display()))?;
    Ok(())
}

/// Prints "[n/N] what ... done (t)" lines.
struct Steps {
    total: usize,
    done: usize,
    started: Instant,
}

impl Steps {
    fn begin(&mut self, what: &str) -> Instant {
        self.done += 1;
        println!("[{}/{}] {what}", self.done, self.total);
        Instant::now()
    }

    fn end(&self, since: Instant, result: &str) {
        println!("      {result} ({:.1} s)", since.elapsed().as_secs_f64());
    }
}

pub async fn run(args: DemoArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let dir = args.dir.unwrap_or_else(default_dir);
    let fixtures_dir = args
        .fixtures
        .unwrap_or_else(|| bundled(Path::new("fixtures"), "fixtures"));
    let mut steps = Steps {
        total: 8,
        done: 0,
        started: Instant::now(),
    };

    let t = steps.begin(&format!("fresh database in {}", dir.display()));
    prepare_dir(&dir)?;
    let store = Store::open(&dir.join(DB)).await?;
    steps.end(t, "created and migrated");

    let t = steps.begin("importing the demo registry");
    let brands_file = fixtures_dir.join("brands.toml");
    let brands = markwatch::load_registry(&brands_file)?;
    store
        .import_registry(&brands, &super::actor(), &brands_file.display().to_string())
        .await
        .with_context(|| format!("cannot import {}", brands_file.display()))?;
    let marks: usize = brands.iter().map(|b| b.marks.len()).sum();
    steps.end(
        t,
        &format!(
            "{} brands, {marks} marks from {}",
            brands.len(),
            brands_file.display()
        ),
    );

    let t = steps.begin("starting the fixture platforms on loopback");
    let chromium = find_chromium(ctx.config.crawl.browser.executable.as_deref());
    if let Err(e) = &chromium {
        println!(
            "      note: {e}.\n      Without it, Taobao, Tmall and JD are read from their classic \
             (static, anonymous) fixture pages over HTTP."
        );
    }
    let platforms = start_platforms(&fixtures_dir).await?;
    let config = demo_config(&ctx.config, &dir, &platforms)?;
    steps.end(
        t,
        &format!(
            "Taobao, Tmall, JD, Amazon.cn look-alikes as today's sites on http://{}/{}",
            platforms.modern.addr,
            match &platforms.classic {
                Some(c) => format!(", classic pages on http://{}/", c.addr),
                None => String::new(),
            }
        ),
    );

    let t = steps.begin(
        "logging in the demo accounts through the fixture login forms (the demo plays the person)",
    );
    let logged_in = log_in_demo_accounts(&store, &config, &fixtures_dir).await?;
    let names: Vec<String> = logged_in.iter().map(|(p, a)| format!("{p}/{a}")).collect();
    steps.end(
        t,
        &format!(
            "{} accounts, sessions sealed in the database: {}",
            names.len(),
            names.join(", ")
        ),
    );

    let t = steps.begin(match &chromium {
        Ok(_) => "crawling all four platforms (Taobao, Tmall and JD in Chromium) and judging every listing",
        Err(_) => "crawling all four platforms and judging every listing",
    });
    let defs = load_definitions(&config.crawl.definitions)?;
    let names = markwatch::crawlable(&defs);
    let key = SecretKey::load(None, &markwatch::default_key_file(&config.database))?;
    let pipeline = Pipeline::new(
        store.clone(),
        config.clone(),
        defs,
        Pace::UnlimitedOnLoopback,
    )
    .with_secret_key(key);
    let watch = Watch {
        name: "demo".to_owned(),
        cron: CronExpr::parse("@daily")?,
        jitter: std::time::Duration::ZERO,
        platforms: names.clone(),
        keywords: Vec::new(),
        brands: Vec::new(),
        kind: markwatch::WatchKind::Listings,
    };
    let report = pipeline.run(&watch).await?;
    let pages: u64 = report.crawl.iter().map(|s| s.counts.pages_ok).sum();
    let new: u64 = report.crawl.iter().map(|s| s.counts.listings_new).sum();
    steps.end(
        t,
        &format!(
            "{pages} pages for {} keywords, {new} listings stored with evidence",
            report.keywords
        ),
    );

    let t = steps.begin(
        "watching .CN domains: every brand's candidates looked up on the fixture DNS server, live sites judged",
    );
    let dns = markwatch::serve_zone(platforms.modern.zone.clone())
        .await
        .context("cannot start the fixture DNS server")?;
    let mut domain_config = config.clone();
    domain_config.domains.resolver = dns.addr().to_string();
    domain_config.domains.http_port = Some(platforms.modern.addr.port());
    domain_config.domains.queries_per_second = 10_000;
    let defs = load_definitions(&config.crawl.definitions)?;
    let matcher = markwatch::pipeline_matcher(&store, &config).await?;
    let (_, found) = markwatch::run_domain_watch(
        &store,
        &domain_config,
        &defs,
        matcher,
        &[],
        Pace::UnlimitedOnLoopback,
    )
    .await?;
    let domain_drafts = markwatch::queue_drafts(&store, &defs).await?;
    drop(dns);
    steps.end(
        t,
        &format!(
            "{} candidates, {} registered, {} flagged ({}), {} CNDRP drafts",
            found.candidates,
            found.registered,
            found.flagged.len(),
            found.flagged.join(", "),
            domain_drafts.created.len()
        ),
    );

    // The runs above queued the drafts already; say what they hold.
    let t = steps.begin("drafting takedown notices in each platform's complaint format");
    let notices = store.count_notices(&NoticeFilter::default()).await?;
    steps.end(
        t,
        &format!(
            "{notices} draft notices holding {} listings and domains ({} cannot be filed yet, each with its reason)",
            report.drafts.listings + domain_drafts.listings,
            report.drafts.not_fileable
        ),
    );

    let t = steps.begin("writing the alert emails (file transport: .eml files)");
    let sender = markwatch::Sender::from_config(store.clone(), &config)?;
    // `flush` sends each brand's batch now instead of waiting out the batching window.
    let tick = sender.tick(chrono::Utc::now(), true).await?;
    steps.end(
        t,
        &format!(
            "{} emails written to {} ({} immediate, {} digests)",
            tick.delivery.sent,
            config.email.dir.display(),
            tick.immediate_queued,
            tick.digests_queued
        ),
    );

    print_summary(&store, &config).await?;
    store.close().await;
    println!(
        "\nDone in {:.1} s. Everything is in {}.",
        steps.started.elapsed().as_secs_f64(),
        dir.display()
    );
    let dir_flag = if dir == default_dir() {
        String::new()
    } else {
        format!(" --dir {}", dir.display())
    };
    println!(
        "Open the review UI on the same data:\n  markwatch --db {} users add demo --role admin   (asks for a password)\n  markwatch serve --demo{dir_flag}   then http://{}/",
        config.database, config.web.addr
    );
    Ok(ExitCode::SUCCESS)
}

async fn print_summary(store: &Store, config: &Config) -> anyhow::Result<()> {
    let counts = store.metric_counts().await?;
    println!();
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "Platform",
        "Listings",
        "Infringing",
        "Suspect",
        "Clear",
    ]);
    for (platform, listings) in &counts.listings {
        let verdict = |v: &str| {
            counts
                .matches
                .iter()
                .find(|(p, verdict, _)| p == platform && verdict == v)
                .map_or(0, |(_, _, n)| *n)
        };
        table.add_row([
            platform.clone(),
            listings.to_string(),
            verdict("infringing").to_string(),
            verdict("suspect").to_string(),
            verdict("clear").to_string(),
        ]);
    }
    println!("Listings and verdicts per platform\n{table}");

    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "Platform",
        "Notice",
        "Brand",
        "Right",
        "Listings",
        "Top score",
        "Fileable",
    ]);
    for (platform, _) in &counts.listings {
        let filter = NoticeFilter {
            platform: Some(platform.clone()),
            ..NoticeFilter::default()
        };
        let page = store
            .list_notices(&filter, NoticeSort::default(), 0, 3)
            .await?;
        for n in &page.notices {
            table.add_row([
                format!("{platform} ({} drafts)", page.total),
                format!("#{}", n.id),
                n.brand.clone(),
                n.mark.clone().unwrap_or_default(),
                n.item_count.to_string(),
                format!("{:.2}", n.max_score),
                n.not_fileable.clone().unwrap_or_else(|| "yes".to_owned()),
            ]);
        }
    }
    println!(
        "\nDraft notices, the first three per platform (markwatch queue list shows all)\n{table}"
    );
    let emails = std::fs::read_dir(&config.email.dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
        .unwrap_or(0);
    println!("\nAlert emails: {emails} .eml files");
    println!("\nWhere it lies:");
    println!("  database   {}", config.database);
    println!("  emails     {}", config.email.dir.display());
    println!("  try        markwatch --db {} queue list", config.database);
    Ok(())
}
