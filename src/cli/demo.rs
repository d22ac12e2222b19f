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
use markwatch::{Config, EmailTransport, PlatformConfig};
use markwatch::{FixtureMode, FixtureOptions, FixtureServer};

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
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Fixtures {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start_fixtures(dir: &Path) -> anyhow::Result<Fixtures> {
    let options = FixtureOptions {
        fixtures_dir: dir.to_owned(),
        // The crawler cannot log in yet: it reads the classic platforms.
        mode: FixtureMode::Classic,
        ..FixtureOptions::default()
    };
    let server = FixtureServer::new(options)
        .with_context(|| format!("cannot load the fixtures in {}", dir.display()))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot open a loopback port for the fixture platforms")?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(serve_fixtures(listener, server));
    Ok(Fixtures { addr, task })
}

/// The configuration a demo runs with: its own database and outbox, every platform pointed at
/// the in-process fixture server.
fn demo_config(base: &Config, dir: &Path, fixtures: SocketAddr) -> anyhow::Result<Config> {
    let mut config = base.clone();
    config.database = dir.join(DB);
    config.email.transport = EmailTransport::File;
    config.email.dir = dir.join(OUTBOX);
    config.crawl.definitions = bundled(&base.crawl.definitions, "crawlers");
    for def in load_definitions(&config.crawl.definitions)? {
        let url = format!("http://{fixtures}/{}", def.platform);
        config.platforms.insert(
            def.platform,
            PlatformConfig {
                base_url: Some(url),
                // The classic fixtures are anonymous static pages.
                login_required: Some(false),
                fetch: Some(markwatch::FetchWith::Http),
                ..PlatformConfig::default()
            },
        );
    }
    Ok(config)
}

/// For `serve --demo`: the demo's configuration and its fixture platforms, started.
pub async fn serve_config(base: &Config, dir: &Path) -> anyhow::Result<(Config, Fixtures)> {
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
    let fixtures = start_fixtures(&bundled(Path::new("fixtures"), "fixtures")).await?;
    let config = demo_config(base, dir, fixtures.addr)?;
    Ok((config, fixtures))
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
        let lock = DaemonLock::acquire(&dir.join(DB)).with_context(|| {
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
        total: 6,
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
    let fixtures = start_fixtures(&fixtures_dir).await?;
    let config = demo_config(&ctx.config, &dir, fixtures.addr)?;
    steps.end(
        t,
        &format!(
            "Taobao, Tmall, JD, Amazon.cn look-alikes on http://{}/",
            fixtures.addr
        ),
    );

    let t = steps.begin("crawling all four platforms and judging every listing");
    let defs = load_definitions(&config.crawl.definitions)?;
    let platforms: Vec<String> = defs.iter().map(|d| d.platform.clone()).collect();
    let pipeline = Pipeline::new(
        store.clone(),
        config.clone(),
        defs,
        Pace::UnlimitedOnLoopback,
    );
    let watch = Watch {
        name: "demo".to_owned(),
        cron: CronExpr::parse("@daily")?,
        jitter: std::time::Duration::ZERO,
        platforms: platforms.clone(),
        keywords: Vec::new(),
        brands: Vec::new(),
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
    drop(fixtures);

    // The run above queued the drafts already; say what they hold.
    let t = steps.begin("drafting takedown notices in each platform's complaint format");
    let notices = store.count_notices(&NoticeFilter::default()).await?;
    steps.end(
        t,
        &format!(
            "{notices} draft notices holding {} listings ({} cannot be filed yet, each with its reason)",
            report.drafts.listings,
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
        config.database.display(),
        config.web.addr
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
    println!("  database   {}", config.database.display());
    println!("  emails     {}", config.email.dir.display());
    println!(
        "  try        markwatch --db {} queue list",
        config.database.display()
    );
    Ok(())
}
