//! `markwatch accounts ...`: platform accounts for logged-in crawling.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use markwatch::{
    AccountPace, AccountState, BrowserView, LoginRun, ProxyUrl, SECRET_KEY_ENV, SaveOutcome,
    SecretKey, capture_session, cookies_for_platform_at, default_key_file, escape_controls,
    import_account, load_definitions, open_accounts, read_cookie_file, start_url,
    tunnel_instructions,
};

use super::Context;

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Store an account's session from cookies exported from a logged-in browser (replaces the
    /// session of an account already stored under that name)
    Import {
        /// A platform with a definition (taobao, tmall, jd, amazon_cn, ...)
        platform: String,
        /// Your name for the account, unique per platform
        name: String,
        /// A Netscape cookies.txt file, or a browser cookie exporter's JSON
        #[arg(long, value_name = "FILE")]
        cookies: PathBuf,
        /// Proxy for this account: http://, https://, socks5:// or socks5h://, credentials
        /// allowed (stored encrypted)
        #[arg(long, value_name = "URL")]
        proxy: Option<String>,
        /// This account's requests per second [default: the platform's]
        #[arg(long, value_name = "N")]
        rps: Option<f64>,
        /// This account's requests in flight at once [default: the platform's]
        #[arg(long, value_name = "N")]
        concurrency: Option<u32>,
    },
    /// Log in to an account in Chromium: you log in (or pass the challenge, with --resume),
    /// markwatch stores the session's cookies sealed
    Login {
        /// A platform whose definition has a [login] section (taobao, tmall, jd, ...)
        platform: String,
        /// Your name for the account, unique per platform
        name: String,
        /// Open the challenge page the account was stopped on, so you can pass it
        #[arg(long)]
        resume: bool,
        /// No window: run Chromium headless with its DevTools on 127.0.0.1:PORT, to reach
        /// through an SSH tunnel (instructions are printed)
        #[arg(long, value_name = "PORT")]
        remote_debugging: Option<u16>,
        /// Give up (storing nothing) after this many seconds
        #[arg(long, value_name = "N", default_value_t = 600)]
        timeout_secs: u64,
        /// Proxy for this account [default: the account's current one]
        #[arg(long, value_name = "URL")]
        proxy: Option<String>,
        /// This account's requests per second [default: the account's current pace]
        #[arg(long, value_name = "N")]
        rps: Option<f64>,
        /// This account's requests in flight at once [default: the account's current pace]
        #[arg(long, value_name = "N")]
        concurrency: Option<u32>,
    },
    /// List accounts: state, since/until, last success, pages today (never cookies or proxy
    /// credentials)
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete an account with its cookies and proxy
    Remove { platform: String, name: String },
}

pub async fn run(cmd: AccountsCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    match cmd {
        AccountsCommand::Import {
            platform,
            name,
            cookies,
            proxy,
            rps,
            concurrency,
        } => {
            let defs = load_definitions(&ctx.config.crawl.definitions)?;
            let Some(def) = defs.iter().find(|d| d.platform == platform) else {
                let known: Vec<&str> = defs.iter().map(|d| d.platform.as_str()).collect();
                return Err(markwatch::AccountError::UnknownPlatform {
                    platform: platform.clone(),
                    known: known.join(", "),
                }
                .into());
            };
            let proxy = proxy.as_deref().map(ProxyUrl::parse).transpose()?;
            let all = read_cookie_file(&cookies)?;
            // A platform pointed at a fixture server or mirror: its cookies are that host's.
            let base = platform_base(ctx, &platform)?;
            let kept = cookies_for_platform_at(&cookies, def, base.as_ref(), all)?;
            if kept.foreign_count > 0 {
                eprintln!(
                    "markwatch: warning: left out {} cookie(s) not for {platform}: {}",
                    kept.foreign_count,
                    escape_controls(&kept.foreign_domains.join(", "))
                );
            }
            let key = load_key(ctx)?;
            let store = ctx.open_store().await?;
            let outcome = import_account(
                &store,
                &key,
                &platform,
                &name,
                &kept.cookies,
                proxy.as_ref(),
                AccountPace {
                    requests_per_second: rps,
                    concurrency,
                },
            )
            .await
            .with_context(|| format!("cannot import account {platform}/{name}"))?;
            store.close().await;
            let verb = match outcome {
                SaveOutcome::Added => "added",
                SaveOutcome::Replaced => "replaced the session of",
            };
            println!(
                "{verb} account {platform}/{}: {} cookie(s){}",
                escape_controls(&name),
                kept.cookies.len(),
                proxy.map(|p| format!(", proxy {p}")).unwrap_or_default()
            );
            tracing::info!(%platform, account = %name, cookies = kept.cookies.len(), "account imported");
        }
        AccountsCommand::Login {
            platform,
            name,
            resume,
            remote_debugging,
            timeout_secs,
            proxy,
            rps,
            concurrency,
        } => {
            let login = LoginArgs {
                platform,
                name,
                resume,
                remote_debugging,
                timeout_secs,
                proxy,
                pace: AccountPace {
                    requests_per_second: rps,
                    concurrency,
                },
            };
            return login_account(login, ctx).await;
        }
        AccountsCommand::List { json } => {
            let store = ctx.open_store().await?;
            let today = chrono::Utc::now().date_naive().to_string();
            let accounts = store.accounts(&today).await?;
            store.close().await;
            if json {
                println!("{}", serde_json::to_string_pretty(&accounts)?);
                return Ok(ExitCode::SUCCESS);
            }
            if accounts.is_empty() {
                println!(
                    "No accounts. Import one with `markwatch accounts import PLATFORM NAME --cookies FILE`."
                );
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = Table::new();
            table.load_preset(UTF8_FULL_CONDENSED).set_header([
                "Platform",
                "Account",
                "State",
                "Last success",
                "Pages today",
                "Proxy",
                "Pace",
                "Cookies",
            ]);
            for a in &accounts {
                let state = match (a.state, &a.until) {
                    (AccountState::Ok, _) => "ok".to_owned(),
                    (AccountState::Cooling, Some(until)) => format!("cooling until {until}"),
                    (state, _) => format!("{state} since {}", a.since),
                };
                let pace = match (a.requests_per_second, a.concurrency) {
                    (None, None) => "platform's".to_owned(),
                    (rps, conc) => format!(
                        "{} req/s, {} at once",
                        rps.map_or("platform's".to_owned(), |r| r.to_string()),
                        conc.map_or("platform's".to_owned(), |c| c.to_string())
                    ),
                };
                table.add_row([
                    a.platform.clone(),
                    escape_controls(&a.name),
                    state,
                    a.last_success_at.clone().unwrap_or_else(|| "never".into()),
                    a.pages_today.to_string(),
                    a.proxy.clone().unwrap_or_else(|| "none".into()),
                    pace,
                    a.cookies.to_string(),
                ]);
            }
            println!("{table}");
        }
        AccountsCommand::Remove { platform, name } => {
            let store = ctx.open_store().await?;
            let removed = store.remove_account(&platform, &name).await?;
            store.close().await;
            if !removed {
                bail!(
                    "no account {platform}/{}; `markwatch accounts list` shows them",
                    escape_controls(&name)
                );
            }
            println!("removed account {platform}/{}", escape_controls(&name));
        }
    }
    Ok(ExitCode::SUCCESS)
}

struct LoginArgs {
    platform: String,
    name: String,
    resume: bool,
    remote_debugging: Option<u16>,
    timeout_secs: u64,
    proxy: Option<String>,
    pace: AccountPace,
}

async fn login_account(args: LoginArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let LoginArgs { platform, name, .. } = &args;
    let defs = load_definitions(&ctx.config.crawl.definitions)?;
    let Some(def) = defs.iter().find(|d| d.platform == *platform) else {
        let known: Vec<&str> = defs.iter().map(|d| d.platform.as_str()).collect();
        return Err(markwatch::AccountError::UnknownPlatform {
            platform: platform.clone(),
            known: known.join(", "),
        }
        .into());
    };
    let base = platform_base(ctx, platform)?;
    // Refused before anything is opened: no [login], no way to show the browser.
    start_url(def, base.as_ref(), None)?;
    let view = BrowserView::choose(args.remote_debugging, BrowserView::env_has_display())?;
    let key = load_key(ctx)?;
    let store = ctx.open_store().await?;
    let existing = open_accounts(&store, &key, platform, Some(name))
        .await?
        .into_iter()
        .next();
    if args.resume && existing.is_none() {
        store.close().await;
        bail!(
            "no account {platform}/{} to resume; log in to a new one with `markwatch accounts \
             login {platform} NAME`",
            escape_controls(name)
        );
    }
    let proxy = match &args.proxy {
        Some(p) => Some(ProxyUrl::parse(p)?),
        None => existing.as_ref().and_then(|a| a.proxy.clone()),
    };
    let current = existing.as_ref().map(|a| a.pace).unwrap_or_default();
    let pace = AccountPace {
        requests_per_second: args
            .pace
            .requests_per_second
            .or(current.requests_per_second),
        concurrency: args.pace.concurrency.or(current.concurrency),
    };
    let resume_url = existing
        .as_ref()
        .filter(|_| args.resume)
        .and_then(|a| a.state_url.clone());
    let url = start_url(def, base.as_ref(), resume_url.as_deref())?;
    // On --resume the challenge belongs to the stored session: the browser carries it.
    let cookies = match (&existing, args.resume) {
        (Some(a), true) => a.cookies.clone(),
        _ => Vec::new(),
    };
    let run = LoginRun {
        def,
        base: base.as_ref(),
        executable: ctx.config.crawl.browser.executable.as_deref(),
        url,
        view,
        proxy: proxy.as_ref(),
        cookies: &cookies,
        timeout: Duration::from_secs(args.timeout_secs),
    };
    let shown = escape_controls(name);
    let captured = capture_session(&run, || {
        let what = if args.resume {
            "pass the check"
        } else {
            "log in"
        };
        match view {
            BrowserView::Window => {
                eprintln!("Chromium is open for {platform}/{shown}: {what} in its window.")
            }
            BrowserView::RemoteDebugging(port) => {
                eprintln!("{}", tunnel_instructions(port));
                eprintln!("Then {what} for {platform}/{shown} in that page.");
            }
        }
        eprintln!(
            "Waiting up to {} s; the session is stored once the platform shows a logged-in page.",
            args.timeout_secs
        );
    })
    .await;
    let captured = match captured {
        Ok(c) => c,
        Err(e) => {
            store.close().await;
            return Err(e.into());
        }
    };
    let kept = cookies_for_platform_at(Path::new("the browser"), def, base.as_ref(), captured)?;
    let saved = import_account(
        &store,
        &key,
        platform,
        name,
        &kept.cookies,
        proxy.as_ref(),
        pace,
    )
    .await
    .with_context(|| format!("cannot store account {platform}/{shown}"));
    store.close().await;
    saved?;
    println!(
        "logged in: {platform} {shown} ({} cookies)",
        kept.cookies.len()
    );
    tracing::info!(%platform, account = %name, cookies = kept.cookies.len(), "account logged in");
    Ok(ExitCode::SUCCESS)
}

/// The config's `platforms.<platform>.base_url`.
fn platform_base(ctx: &Context, platform: &str) -> anyhow::Result<Option<url::Url>> {
    ctx.config
        .platforms
        .get(platform)
        .and_then(|p| p.base_url.as_deref())
        .map(|b| url::Url::parse(b).with_context(|| format!("platforms.{platform}.base_url")))
        .transpose()
}

/// The key from MARKWATCH_SECRET_KEY, or the key file beside the database (created at first
/// use).
fn load_key(ctx: &Context) -> anyhow::Result<SecretKey> {
    let env = std::env::var(SECRET_KEY_ENV).ok();
    let file = default_key_file(&ctx.config.database);
    Ok(SecretKey::load(env.as_deref(), &file)?)
}
