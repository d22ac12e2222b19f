//! `markwatch accounts ...`: platform accounts for logged-in crawling.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use markwatch::{
    AccountPace, AccountState, ProxyUrl, SECRET_KEY_ENV, SaveOutcome, SecretKey,
    cookies_for_platform, default_key_file, escape_controls, import_account, load_definitions,
    read_cookie_file,
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
            let kept = cookies_for_platform(&cookies, def, all)?;
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

/// The key from MARKWATCH_SECRET_KEY, or the key file beside the database (created at first
/// use).
fn load_key(ctx: &Context) -> anyhow::Result<SecretKey> {
    let env = std::env::var(SECRET_KEY_ENV).ok();
    let file = default_key_file(&ctx.config.database);
    Ok(SecretKey::load(env.as_deref(), &file)?)
}
