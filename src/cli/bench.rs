//! `markwatch bench crawl`: end-to-end crawl throughput against the fixture server in scale
//! mode, beside parse-only throughput on the very pages crawled, plus peak memory.
//!
//! The fixture server runs as a separate process, as a real site would, so the crawl's memory
//! is its own; it still shares the machine's cores, which the figures include.

use markwatch::{
    decode_page, detect_block, extract_search, load_definitions, load_registry, watch_keywords,
};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use markwatch::{Crawl, Pace, Search};

use markwatch::PlatformDef;
use markwatch::{MatchItem, Matcher};

use markwatch::Store;
use rayon::prelude::*;

use super::Context;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Crawl the fixture platforms in scale mode into a fresh database, then parse the same
    /// pages with no network or database: pages/s, MB/s, listings/s and peak RSS
    Crawl(CrawlBenchArgs),
    /// Load a list of pages in one logged-in Chromium with N tabs, keeping the API replies a
    /// regex names: pages/s, for comparison with Playwright (benches/browser/compare.sh)
    Browser(super::bench_browser::BrowserBenchArgs),
    /// Recall of the domain watch's candidates on a labelled set of squatted .CN names, beside
    /// another tool's list (benches/domains_dnstwist.sh)
    Domains(super::bench_domains::DomainsBenchArgs),
    /// Add N synthetic draft notices (listings, evidence pages, verdicts) for review UI load tests
    SeedNotices(super::seed::SeedArgs),
}

#[derive(Debug, Args)]
pub struct CrawlBenchArgs {
    /// Fixture scale (N times the 468-listing catalogue); 214 gives about 100,000 listings
    #[arg(long, default_value_t = 40)]
    scale: u32,
    /// Only these platforms (repeatable) [default: all four]
    #[arg(long = "platform", value_name = "P")]
    platforms: Vec<String>,
    /// Crawls to time, each into a fresh database after one untimed warm-up crawl; medians are
    /// reported
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Brand registry to match against
    #[arg(long, value_name = "FILE", default_value = "fixtures/brands.toml")]
    brands: PathBuf,
    /// Folder the fixture server renders from
    #[arg(long, value_name = "DIR", default_value = "fixtures")]
    fixtures_dir: PathBuf,
    /// Store into PostgreSQL on this server (`postgres://user@host:port`), a fresh database per
    /// run, dropped after it, instead of SQLite files; a server on this machine has its CPU
    /// counted too
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
}

pub async fn run(cmd: BenchCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Crawl(args) => crawl_bench(args, ctx).await,
        BenchCommand::Browser(args) => super::bench_browser::run(args).await,
        BenchCommand::SeedNotices(args) => super::seed::run(args, ctx).await,
        BenchCommand::Domains(args) => super::bench_domains::run(args),
    }
}

/// One measured pass over a set of pages.
struct Pass {
    secs: f64,
    pages: u64,
    bytes: u64,
    listings: u64,
    /// CPU seconds the crawler, the fixture server and a local PostgreSQL server used (end
    /// to end only). Less noisy than `secs` when something else shares the machine.
    cpu: Option<(f64, f64, f64)>,
}

impl Pass {
    fn row(&self, name: &str) -> String {
        format!(
            "{name:<26} {:>8.1} {:>8.1} {:>11.0} {:>8.2}",
            self.pages as f64 / self.secs,
            self.bytes as f64 / self.secs / 1e6,
            self.listings as f64 / self.secs,
            self.secs,
        )
    }
}

async fn crawl_bench(args: CrawlBenchArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let defs: Vec<PlatformDef> = load_definitions(&ctx.config.crawl.definitions)?
        .into_iter()
        .filter(|d| d.kind == markwatch::DefKind::Platform)
        .filter(|d| args.platforms.is_empty() || args.platforms.contains(&d.platform))
        .map(|mut d| {
            // Read every page the scaled server has, so --scale sets the listing count.
            if let Some(p) = d.pagination.as_mut() {
                p.max_pages = u32::MAX;
            }
            d
        })
        .collect();
    if defs.is_empty() {
        bail!("no platform definitions selected");
    }
    let brands = load_registry(&args.brands)?;
    let matcher = Arc::new(Matcher::new(&brands)?);
    let keywords = watch_keywords(&brands, &[]);
    let rss_before = peak_rss_kib();

    let server = FixtureProcess::start(args.scale, &args.fixtures_dir)?;
    eprintln!(
        "fixture server (scale {}) at {}; {} keywords, {} platforms, {} runs",
        args.scale,
        server.base,
        keywords.len(),
        defs.len(),
        args.runs
    );
    // The one crawl entry point, with the rate limit lifted: loopback only, never a real host.
    let mut config = ctx.config.clone();
    for def in &defs {
        let platform = config.platforms.entry(def.platform.clone()).or_default();
        platform.base_url = Some(format!("{}/{}", server.base, def.platform));
        // The classic fixtures are anonymous static pages.
        platform.login_required = Some(false);
        platform.fetch = Some(markwatch::FetchWith::Http);
    }
    let names: Vec<String> = defs.iter().map(|d| d.platform.clone()).collect();
    let crawl = Crawl::builder(&config, defs.clone())
        .platforms(&names)
        .pace(Pace::UnlimitedOnLoopback)
        .fetch_details(false)
        .draft_notices(false)
        .matcher(matcher.clone())
        .build()?;
    let search = Search::Keywords(keywords.clone());
    let server_pid = server.child.id().to_string();
    let cpu_now = || (cpu_secs("self"), cpu_secs(&server_pid), postgres_cpu_secs());
    let mut crawls = Vec::new();
    let dir = tempfile::tempdir()?;
    let mut last_db = None;
    // Run 0 warms the server's page cache and is not counted: the measured runs time the
    // crawler, not the server's templates rendering on the same two cores.
    for run in 0..=args.runs.max(1) {
        let db: markwatch::Database = match &args.postgres {
            Some(server) => {
                use sqlx::migrate::MigrateDatabase as _;
                let url = format!(
                    "{}/mw_bench_{run}_{}",
                    server.trim_end_matches('/'),
                    std::process::id()
                );
                sqlx::Postgres::drop_database(&url).await.ok();
                sqlx::Postgres::create_database(&url)
                    .await
                    .with_context(|| format!("cannot create a database on {server}"))?;
                markwatch::Database::Postgres(url)
            }
            None => dir.path().join(format!("bench-{run}.db")).into(),
        };
        let store = Store::open(&db).await?;
        store.import_registry(&brands, "bench", "bench").await?;
        let cpu_before = cpu_now();
        let started = Instant::now();
        let summaries = crawl.run(&store, &search).await?.runs;
        let secs = started.elapsed().as_secs_f64();
        let cpu = match (cpu_before, cpu_now()) {
            ((Some(c0), Some(s0), d0), (Some(c1), Some(s1), d1)) => {
                Some((c1 - c0, s1 - s0, d1 - d0))
            }
            _ => None,
        };
        let failed: u64 = summaries
            .iter()
            .map(|s| s.counts.pages_failed + s.counts.pages_blocked)
            .sum();
        if failed > 0 {
            bail!("{failed} pages failed during the benchmark crawl: {summaries:?}");
        }
        let (bytes, listings) = store.bench_totals().await?;
        let pages = summaries.iter().map(|s| s.counts.pages_ok).sum();
        let label = if run == 0 { " (warm-up)" } else { "" };
        eprintln!("  run {run}{label}: {pages} pages, {listings} listings in {secs:.2} s");
        if run > 0 {
            crawls.push(Pass {
                secs,
                pages,
                bytes,
                listings,
                cpu,
            });
        }
        store.close().await;
        if let Some(old) = last_db.replace(db) {
            match old {
                markwatch::Database::Sqlite(file) => {
                    std::fs::remove_file(&file).ok();
                }
                markwatch::Database::Postgres(url) => {
                    use sqlx::migrate::MigrateDatabase as _;
                    sqlx::Postgres::drop_database(&url).await.ok();
                }
            }
        }
    }
    drop(server);
    let rss_crawl = peak_rss_kib();

    // Parse-only: the same bytes, decoded and extracted on every core, nothing else.
    let store = Store::open(last_db.clone().context("no run")?).await?;
    let mut pages = Vec::new();
    let mut after = 0;
    loop {
        let batch = store.stored_pages(after, 1000).await?;
        let Some(last) = batch.last() else { break };
        after = last.evidence_id;
        pages.extend(
            batch
                .into_iter()
                .filter(|p| p.status == 200)
                .filter_map(|p| {
                    let body = markwatch::open_sealed(&p.sealed_body).ok()?;
                    Some((p, body))
                }),
        );
    }
    store.close().await;
    if let Some(markwatch::Database::Postgres(url)) = &last_db {
        use sqlx::migrate::MigrateDatabase as _;
        sqlx::Postgres::drop_database(url).await.ok();
    }
    let by_platform = |name: &str| defs.iter().find(|d| d.platform == name);
    let parse = |(page, body): &(markwatch::StoredPage, Vec<u8>), judge: bool| -> u64 {
        let Some(def) = by_platform(&page.platform) else {
            return 0;
        };
        let text = decode_page(body, page.content_type.as_deref(), &def.encoding);
        if detect_block(def, &text.text).is_some() {
            return 0;
        }
        let Ok(result) = extract_search(def, &text.text, &page.url) else {
            return 0;
        };
        if judge {
            for l in &result.listings {
                std::hint::black_box(matcher.check(&MatchItem::from(&l.to_listing(def))));
            }
        }
        result.listings.len() as u64
    };
    let bytes: u64 = pages.iter().map(|(_, body)| body.len() as u64).sum();
    let mut parse_only = Vec::new();
    let mut parse_match = Vec::new();
    for _ in 0..args.runs.max(1) {
        for (judge, out) in [(false, &mut parse_only), (true, &mut parse_match)] {
            let started = Instant::now();
            let listings: u64 = pages.par_iter().map(|p| parse(p, judge)).sum();
            out.push(Pass {
                secs: started.elapsed().as_secs_f64(),
                pages: pages.len() as u64,
                bytes,
                listings,
                cpu: None,
            });
        }
    }

    let e2e = median(crawls);
    let po = median(parse_only);
    let pm = median(parse_match);
    println!(
        "{:<26} {:>8} {:>8} {:>11} {:>8}",
        "median of runs", "pages/s", "MB/s", "listings/s", "secs"
    );
    println!("{}", e2e.row("end to end (fetch..store)"));
    println!("{}", po.row("parse only (2 cores)"));
    println!("{}", pm.row("parse + match (2 cores)"));
    println!(
        "end to end / parse only: {:.0}%",
        100.0 * (e2e.pages as f64 / e2e.secs) / (po.pages as f64 / po.secs)
    );
    if let Some((crawler, server, database)) = e2e.cpu {
        let per_page = |s: f64| 1000.0 * s / e2e.pages as f64;
        println!(
            "CPU per page end to end: crawler {:.2} ms, database server {:.2} ms, fixture server {:.2} ms; parse only {:.2} ms",
            per_page(crawler),
            per_page(database),
            per_page(server),
            // Every core busy for the whole pass.
            1000.0 * rayon::current_num_threads() as f64 * po.secs / po.pages as f64,
        );
    }
    // MB as well as MiB: targets are often set in MB, 5% apart.
    println!(
        "peak RSS: {} MiB ({:.0} MB) after the crawls ({} MiB before; the parse-only pass holds every page in memory after this)",
        rss_crawl / 1024,
        rss_crawl as f64 * 1024.0 / 1e6,
        rss_before / 1024
    );
    Ok(ExitCode::SUCCESS)
}

fn median(mut passes: Vec<Pass>) -> Pass {
    passes.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    passes.swap_remove(passes.len() / 2)
}

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`.
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces: state is 3rd, utime 14th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // /proc counts in USER_HZ, which is 100 on every Linux ABI.
    Some(ticks as f64 / 100.0)
}

/// CPU seconds every `postgres` process of this machine has used (0 with none): SQLite
/// works inside the crawler's process, a server's work is counted here.
fn postgres_cpu_secs() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.flatten()
        .filter_map(|e| {
            let pid = e.file_name().into_string().ok()?;
            pid.parse::<u32>().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            (comm.trim() == "postgres")
                .then(|| cpu_secs(&pid))
                .flatten()
        })
        .sum()
}

/// The process's peak resident set (VmHWM), in KiB; 0 where /proc is missing.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// `markwatch fixtures serve` in a child process on a free loopback port; killed on drop.
struct FixtureProcess {
    child: Child,
    base: String,
}

impl FixtureProcess {
    fn start(scale: u32, fixtures: &std::path::Path) -> anyhow::Result<FixtureProcess> {
        let exe = std::env::current_exe().context("cannot find the markwatch binary")?;
        let mut child = Command::new(exe)
            .args(["fixtures", "serve", "--addr", "127.0.0.1:0", "--seed", "1"])
            .arg("--cache-pages")
            // The crawler cannot log in yet: it reads the classic platforms.
            .arg("--classic")
            .args(["--scale", &scale.to_string()])
            .arg("--fixtures-dir")
            .arg(fixtures)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start the fixture server")?;
        let stderr = child.stderr.take().context("no stderr")?;
        let mut reader = BufReader::new(stderr);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        // Keep draining so the server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .map(|u| u.trim_end_matches('/').to_owned());
        match base {
            Some(base) => Ok(FixtureProcess { child, base }),
            None => {
                child.kill().ok();
                bail!("fixture server did not start: {line}")
            }
        }
    }
}

impl Drop for FixtureProcess {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
