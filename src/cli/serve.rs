//! `markwatch serve` (the daemon, until SIGTERM/SIGINT) and `markwatch crawl --now` (asks the
//! running daemon to start runs through its control API).

use markwatch::{STATE_API_ADDR, control_token_path, serve_daemon};
use std::net::SocketAddr;
#[cfg(feature = "fixtures")]
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use markwatch::Pace;
use markwatch::ScheduleRunRow;
use markwatch::ServeOptions;
use markwatch::{CrawlRequest, CrawlResponse};
use tokio_util::sync::CancellationToken;

use super::Context;
#[cfg(feature = "fixtures")]
use super::demo;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Serve the demo's data (made by `markwatch demo`): its database, outbox and the fixture
    /// platforms, started in-process
    #[cfg(feature = "fixtures")]
    #[arg(long)]
    demo: bool,
    /// The demo directory [default: the one `markwatch demo` uses]
    #[cfg(feature = "fixtures")]
    #[arg(long, value_name = "DIR", requires = "demo")]
    dir: Option<PathBuf>,
    /// Listen on this address; overrides `web.addr`
    #[arg(long, value_name = "ADDR")]
    addr: Option<SocketAddr>,
    /// Crawl workers in this process (0: leave every job to `markwatch worker`); overrides
    /// `daemon.workers` [default: 1]
    #[arg(long, value_name = "N")]
    workers: Option<u32>,
}

pub async fn run(args: ServeArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let mut config = ctx.config.clone();
    if let Some(addr) = args.addr {
        config.web.addr = addr.to_string();
    }
    if let Some(n) = args.workers {
        config.daemon.workers = n;
    }
    let shutdown = CancellationToken::new();
    spawn_signal_watch(shutdown.clone())?;
    #[cfg(not(feature = "fixtures"))]
    let pace = Pace::Polite;
    // The demo's fixture platforms live as long as the daemon.
    #[cfg(feature = "fixtures")]
    let mut _fixtures = None;
    #[cfg(feature = "fixtures")]
    let pace = if args.demo {
        let dir = args.dir.unwrap_or_else(demo::default_dir);
        let (demo_config, fixtures) = demo::serve_config(&config, &dir).await?;
        config = demo_config;
        _fixtures = Some(fixtures);
        Pace::UnlimitedOnLoopback
    } else {
        Pace::Polite
    };
    let options = ServeOptions { config, pace };
    serve_daemon(options, shutdown, |addr| {
        eprintln!("markwatch serving on http://{addr}/ (review UI; healthz, readyz, metrics); SIGTERM or Ctrl-C stops");
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM (systemd, docker stop) or SIGINT (Ctrl-C) starts a graceful shutdown.
pub(super) fn spawn_signal_watch(token: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch for SIGINT")?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "stop requested");
        token.cancel();
    });
    Ok(())
}

/// `markwatch crawl --now`: starts runs on the daemon serving this database and, with `wait`,
/// follows them to the end.
pub async fn crawl_now(
    ctx: &Context,
    watches: Vec<String>,
    platforms: Vec<String>,
    wait: bool,
) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store().await?;
    let addr = store.daemon_state(STATE_API_ADDR).await?;
    store.close().await;
    let Some(addr) = addr else {
        bail!(
            "no daemon is serving {}; start one with `markwatch serve`, or crawl here with `markwatch crawl --once`",
            ctx.config.database
        );
    };
    // The daemon's token is in a file only its user (and root) can read.
    let token_path = control_token_path(&ctx.config.database)?;
    let token = std::fs::read_to_string(&token_path).with_context(|| {
        format!(
            "cannot read the daemon's control token {} (run this as the daemon's user or root)",
            token_path.display()
        )
    })?;
    let token = token.trim().to_owned();
    let addr: SocketAddr = addr
        .parse()
        .with_context(|| format!("the database names a bad daemon address `{addr}`"))?;
    // A daemon listening on every interface is reached on loopback.
    let host = if addr.ip().is_unspecified() {
        SocketAddr::new(
            if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            },
            addr.port(),
        )
    } else {
        addr
    };
    let base = format!("http://{host}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let response = client
        .post(format!("{base}/api/daemon/crawl"))
        .bearer_auth(&token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&CrawlRequest { watches, platforms })?)
        .send()
        .await
        .with_context(|| format!("cannot reach the daemon at {base} (is it still running?)"))?;
    let status = response.status();
    if status == reqwest::StatusCode::CONFLICT {
        println!("every requested watch is already running; nothing started");
        return Ok(ExitCode::SUCCESS);
    }
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        bail!("the daemon refused ({status}): {}", body.trim());
    }
    let started: CrawlResponse = serde_json::from_slice(&response.bytes().await?)
        .context("the daemon's answer is not what this markwatch expects")?;
    let mut ids = Vec::new();
    for run in &started.runs {
        match run.run_id {
            Some(id) => {
                println!("started run {id} of watch {}", run.watch);
                ids.push(id);
            }
            None => println!("watch {} is already running", run.watch),
        }
    }
    if !wait {
        return Ok(ExitCode::SUCCESS);
    }
    let mut failed = false;
    for id in ids {
        let run = loop {
            let body = client
                .get(format!("{base}/api/daemon/runs/{id}"))
                .bearer_auth(&token)
                .send()
                .await
                .with_context(|| format!("lost the daemon at {base}"))?
                .error_for_status()?
                .bytes()
                .await?;
            let run: ScheduleRunRow = serde_json::from_slice(&body)
                .context("the daemon's answer is not what this markwatch expects")?;
            if run.status != "running" {
                break run;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        println!(
            "run {id} of watch {}: {}{}",
            run.watch,
            run.status,
            run.error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
        failed |= run.status == "failed" || run.status == "abandoned";
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
