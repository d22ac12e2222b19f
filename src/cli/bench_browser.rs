//! `markwatch bench browser`: the browser fetcher alone, on a list of pages, with N tabs of one
//! logged-in Chromium; what `benches/browser/playwright_pages.py` does with Playwright, so
//! the two compare (benches/browser/compare.sh, docs/benchmarks.md).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use markwatch::{BrowserOptions, BrowserSession, Load, read_cookie_file};

#[derive(Debug, Args)]
pub struct BrowserBenchArgs {
    /// Pages to load, one URL per line
    #[arg(long, value_name = "FILE")]
    urls: PathBuf,
    /// The session's cookies (Netscape cookies.txt or a browser exporter's JSON)
    #[arg(long, value_name = "FILE")]
    cookies: PathBuf,
    /// Tabs loading pages at once
    #[arg(long, default_value_t = 1)]
    tabs: usize,
    /// Keep the API replies whose URL matches this regex
    #[arg(long, value_name = "REGEX")]
    capture: Option<String>,
    /// Wait for a kept reply that contains this text (as playwright_pages.py does)
    #[arg(long, value_name = "TEXT", default_value = "SUCCESS")]
    success: String,
    /// Chromium [default: /usr/bin/chromium, else `chromium` on PATH]
    #[arg(long, value_name = "PATH")]
    chromium: Option<PathBuf>,
}

pub async fn run(args: BrowserBenchArgs) -> anyhow::Result<ExitCode> {
    let urls: Vec<String> = std::fs::read_to_string(&args.urls)
        .with_context(|| format!("cannot read {}", args.urls.display()))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let cookies = read_cookie_file(&args.cookies)?;
    let capture = args
        .capture
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .context("--capture is not a regex")?;
    let profile = tempfile::tempdir()?;
    let browser = BrowserSession::launch(BrowserOptions {
        executable: args.chromium.clone(),
        profile_dir: profile.path().to_owned(),
        proxy: None,
        user_agent: None,
        tabs: args.tabs.max(1),
        page_timeout: Duration::from_secs(30),
        headless: true,
    })
    .await?;
    browser.set_cookies(&cookies).await?;
    let browser = Arc::new(browser);
    let next = Arc::new(AtomicUsize::new(0));
    let (dom_bytes, captures, items) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let urls = Arc::new(urls);
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.tabs.max(1) {
        let (browser, next, urls, capture, success) = (
            browser.clone(),
            next.clone(),
            urls.clone(),
            capture.clone(),
            args.success.clone(),
        );
        let (dom_bytes, captures, items) = (dom_bytes.clone(), captures.clone(), items.clone());
        workers.spawn(async move {
            let headers = BTreeMap::new();
            loop {
                let at = next.fetch_add(1, Ordering::Relaxed);
                let Some(url) = urls.get(at) else {
                    return Ok::<_, anyhow::Error>(());
                };
                let answers = |c: &markwatch::Captured| {
                    String::from_utf8_lossy(&c.body).contains(success.as_str())
                };
                let want = Load {
                    capture: capture.as_ref(),
                    answers: Some(&answers),
                    screenshot: false,
                    headers: &headers,
                };
                let loaded = browser.load(url, &want).await?;
                dom_bytes.fetch_add(loaded.page.body.len() as u64, Ordering::Relaxed);
                captures.fetch_add(loaded.captures.len() as u64, Ordering::Relaxed);
                // The same light reading the Playwright script does: count the listings.
                let n: usize = loaded
                    .captures
                    .iter()
                    .map(|c| mtop_items(&String::from_utf8_lossy(&c.body)))
                    .sum();
                items.fetch_add(n as u64, Ordering::Relaxed);
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done??;
    }
    let secs = started.elapsed().as_secs_f64();
    if let Ok(browser) = Arc::try_unwrap(browser) {
        browser.close().await;
    }
    let pages = urls.len();
    println!(
        "{}",
        serde_json::json!({
            "pages": pages,
            "dom_bytes": dom_bytes.load(Ordering::Relaxed),
            "captures": captures.load(Ordering::Relaxed),
            "items": items.load(Ordering::Relaxed),
            "tabs": args.tabs,
            "seconds": (secs * 1000.0).round() / 1000.0,
            "pages_per_s": ((pages as f64 / secs) * 100.0).round() / 100.0,
        })
    );
    Ok(ExitCode::SUCCESS)
}

/// Listings in an mtop-style JSONP reply (`data.itemsArray`).
fn mtop_items(body: &str) -> usize {
    let (Some(start), Some(end)) = (body.find('('), body.rfind(')')) else {
        return 0;
    };
    serde_json::from_str::<serde_json::Value>(&body[start + 1..end])
        .ok()
        .and_then(|v| {
            v.pointer("/data/itemsArray")
                .and_then(|a| a.as_array())
                .map(Vec::len)
        })
        .unwrap_or(0)
}
