//! `markwatch fixtures serve`: the fixture platforms on a local port; `fixtures images`: the
//! reference images they reuse.

use markwatch::serve_fixtures;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use markwatch::{Fault, FixtureMode, FixtureOptions, FixtureServer, ModernOptions, parse_faults};
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum FixturesCommand {
    /// Serve Taobao, Tmall, JD and Amazon.cn look-alikes rendered from the fixture catalogue
    Serve(ServeArgs),
    /// Draw the brands' reference photos and logos the demo registry names (deterministic)
    Images {
        /// Where to write them
        #[arg(long, default_value = "fixtures/images")]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8400")]
    addr: SocketAddr,
    /// Folder holding listings.jsonl and platforms/<platform>/ page templates
    #[arg(long, value_name = "DIR", default_value = "fixtures")]
    fixtures_dir: PathBuf,
    /// Another listing catalogue (JSONL) instead of <fixtures-dir>/listings.jsonl
    #[arg(long, value_name = "PATH")]
    catalogue: Option<PathBuf>,
    /// Serve N times the listings and pages, derived deterministically from --seed
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    scale: u32,
    /// Seed for --scale and --fault-rate
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fraction of page requests that get a random fault, 0.0 to 1.0
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    fault_rate: f64,
    /// Faults --fault-rate draws from [default: 429,500,503,slow,truncate,redirect,wrong-charset,no-charset,bom]
    #[arg(long, value_name = "LIST", value_parser = parse_fault_list)]
    fault_kinds: Option<Vec<Fault>>,
    /// Scripted faults for the first page requests, in order, e.g. 429:2,500,ok,slow:800,captcha,login
    #[arg(long, value_name = "LIST", value_parser = parse_fault_list)]
    faults: Option<Vec<Fault>>,
    /// Honour ?fault=NAME on page URLs (for tests and demos)
    #[arg(long)]
    query_faults: bool,
    /// Keep every search page in memory after its first render (for benchmarks; about
    /// 100 KB a page)
    #[arg(long)]
    cache_pages: bool,
    /// Also serve the fixture zone of squatted .CN names (<fixtures-dir>/domains/zone.toml) on
    /// a DNS server on a free loopback port, for the domain watch (`domains.resolver`); their
    /// sites are answered on --addr by Host header (`domains.http_port`)
    #[arg(long)]
    dns: bool,
    /// Serve today's anonymous static pages (what the crawler reads now) instead of the
    /// modern platforms (logins, script-rendered listings, challenges)
    #[arg(long)]
    classic: bool,
    /// Modern: fixture accounts file [default: <fixtures-dir>/accounts.toml]
    #[arg(long, value_name = "PATH")]
    accounts: Option<PathBuf>,
    /// Modern: a session expires this many seconds after login
    #[arg(long, value_name = "SECS", default_value_t = 1800)]
    session_ttl_secs: u64,
    /// Modern: a session expires after this many searches and API calls (0 = no limit)
    #[arg(long, value_name = "N", default_value_t = 0)]
    session_max_requests: u32,
    /// Modern: Amazon.cn's robot check comes after more than N requests from one client
    /// within --burst-window-secs
    #[arg(long, value_name = "N", default_value_t = 20)]
    burst_limit: u32,
    /// Modern: the window --burst-limit counts in
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    burst_window_secs: u64,
    /// Modern: how long Amazon.cn's robot check lasts
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    robot_check_secs: u64,
    /// Modern: Taobao/Tmall API calls a session may make before the slider challenge
    #[arg(long, value_name = "N", default_value_t = 60)]
    mtop_max_calls: u32,
    /// Modern: how long a passed slider's x5sec cookie clears its session
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    clearance_ttl_secs: u64,
}

fn parse_fault_list(s: &str) -> Result<Vec<Fault>, String> {
    parse_faults(s).map_err(|e| e.to_string())
}

pub async fn run(cmd: FixturesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        FixturesCommand::Serve(args) => serve(args).await,
        FixturesCommand::Images { out } => {
            let written = markwatch::write_fixture_images(&out)
                .with_context(|| format!("cannot write images into {}", out.display()))?;
            println!("{} images written to {}", written.len(), out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    if !(0.0..=1.0).contains(&args.fault_rate) {
        anyhow::bail!(
            "--fault-rate must be between 0 and 1, got {}",
            args.fault_rate
        );
    }
    let options = FixtureOptions {
        fixtures_dir: args.fixtures_dir,
        catalogue: args.catalogue,
        scale: args.scale,
        seed: args.seed,
        fault_rate: args.fault_rate,
        fault_pool: args.fault_kinds.unwrap_or_else(Fault::default_pool),
        faults: args.faults.unwrap_or_default(),
        query_faults: args.query_faults,
        cache_pages: args.cache_pages,
        mode: if args.classic {
            FixtureMode::Classic
        } else {
            FixtureMode::Modern
        },
        modern: ModernOptions {
            accounts: args.accounts,
            session_ttl: Duration::from_secs(args.session_ttl_secs),
            session_max_requests: args.session_max_requests,
            burst_limit: args.burst_limit,
            burst_window: Duration::from_secs(args.burst_window_secs),
            robot_check: Duration::from_secs(args.robot_check_secs),
            mtop_max_calls: args.mtop_max_calls,
            clearance_ttl: Duration::from_secs(args.clearance_ttl_secs),
        },
    };
    let mode = options.mode;
    let server = FixtureServer::new(options).context("cannot load the fixtures")?;
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    let mode = match mode {
        FixtureMode::Classic => "classic",
        FixtureMode::Modern => "modern",
    };
    eprintln!(
        "fixture platforms on http://{addr}/ (taobao, tmall, jd, amazon_cn; {mode} mode); Ctrl-C stops"
    );
    // Held until the server stops.
    let _dns = if args.dns {
        let dns = markwatch::serve_zone(server.zone())
            .await
            .context("cannot start the fixture DNS server")?;
        eprintln!(
            "fixture DNS on {} (udp and tcp): set domains.resolver = \"{}\" and domains.http_port = {}",
            dns.addr(),
            dns.addr(),
            addr.port()
        );
        Some(dns)
    } else {
        None
    };
    tokio::select! {
        served = serve_fixtures(listener, server) => served.context("fixture server failed")?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(ExitCode::SUCCESS)
}
