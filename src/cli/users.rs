//! `markwatch users ...`: accounts of the review UI and their API tokens.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use markwatch::Role;

use super::Context;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user; prompts for the password (or reads one line from stdin with --password-stdin)
    Add {
        name: String,
        /// viewer reads; reviewer also acts on drafts and cases; admin also manages users and brands
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read the password from the first line of standard input (for scripts)
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password; ends their browser sessions
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users with their roles
    List,
    /// Disable a user (ends sessions, revokes API tokens); --enable turns them back on
    Disable {
        name: String,
        #[arg(long)]
        enable: bool,
    },
    /// Issue an API token for the JSON API; printed once, only its hash is kept
    Token {
        name: String,
        /// What the token is for, e.g. the integrating system's name
        #[arg(long)]
        label: Option<String>,
        /// The token stops working after this many days [default: when revoked]
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_days: Option<u32>,
    },
    /// List API tokens (never the secrets): id, user, label, use, expiry, revoked
    Tokens,
    /// Revoke one API token by its id (from `users tokens`); the user's other tokens keep working
    Revoke { id: i64 },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        if password.is_empty() {
            bail!("no password on standard input");
        }
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "standard input is not a terminal: pass --password-stdin to read the password from it"
        );
    }
    let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
    let second = rpassword::prompt_password("Again: ").context("cannot read the password")?;
    if first != second {
        bail!("the passwords differ");
    }
    Ok(first)
}

pub async fn run(cmd: UsersCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    let actor = super::actor();
    match cmd {
        UsersCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            let store = ctx.open_store().await?;
            let user = store.add_user(&name, role, &password, &actor).await;
            store.close().await;
            let user = user?;
            println!("added {} ({})", user.name, user.role);
        }
        UsersCommand::Passwd {
            name,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            let store = ctx.open_store().await?;
            let done = store.set_password(&name, &password, &actor).await;
            store.close().await;
            done?;
            println!("password changed for {name}; their sessions were ended");
        }
        UsersCommand::List => {
            let store = ctx.open_store().await?;
            let users = store.users().await?;
            store.close().await;
            if users.is_empty() {
                println!("No users. Add one with `markwatch users add NAME --role admin`.");
            } else {
                let mut table = Table::new();
                table
                    .load_preset(UTF8_FULL_CONDENSED)
                    .set_content_arrangement(ContentArrangement::Dynamic)
                    .set_header(["name", "role", "status", "created"]);
                for u in users {
                    table.add_row([
                        u.name,
                        u.role.to_string(),
                        if u.disabled { "disabled" } else { "active" }.to_owned(),
                        u.created_at,
                    ]);
                }
                println!("{table}");
            }
        }
        UsersCommand::Disable { name, enable } => {
            let store = ctx.open_store().await?;
            let done = store.set_user_disabled(&name, !enable, &actor).await;
            store.close().await;
            done?;
            if enable {
                println!("enabled {name}");
            } else {
                println!("disabled {name}; their sessions were ended and API tokens revoked");
            }
        }
        UsersCommand::Token {
            name,
            label,
            expires_days,
        } => {
            let expires_at =
                expires_days.map(|d| chrono::Utc::now() + chrono::Duration::days(i64::from(d)));
            let store = ctx.open_store().await?;
            let token = store
                .create_api_token(&name, label.as_deref(), expires_at, &actor)
                .await;
            store.close().await;
            let token = token?;
            let until = expires_at.map_or_else(
                || "until revoked".to_owned(),
                |t| format!("until {}", t.format("%Y-%m-%d %H:%M UTC")),
            );
            eprintln!(
                "API token {} for {name}, valid {until} (shown once; send it as \
                 `Authorization: Bearer <token>`; revoke with `markwatch users revoke {}`):",
                token.id, token.id
            );
            println!("{}", token.token);
        }
        UsersCommand::Tokens => {
            let store = ctx.open_store().await?;
            let tokens = store.api_tokens().await;
            store.close().await;
            let tokens = tokens?;
            if tokens.is_empty() {
                println!("No API tokens. Issue one with `markwatch users token NAME`.");
            } else {
                let mut table = Table::new();
                table
                    .load_preset(UTF8_FULL_CONDENSED)
                    .set_content_arrangement(ContentArrangement::Dynamic)
                    .set_header([
                        "id",
                        "user",
                        "label",
                        "created",
                        "last used",
                        "expires",
                        "status",
                    ]);
                let now = markwatch_now();
                for t in tokens {
                    let status = if t.revoked {
                        "revoked"
                    } else if t.expires_at.as_deref().is_some_and(|e| e <= now.as_str()) {
                        "expired"
                    } else {
                        "active"
                    };
                    table.add_row([
                        t.id.to_string(),
                        t.user,
                        t.label.unwrap_or_default(),
                        t.created_at,
                        t.last_used_at.unwrap_or_default(),
                        t.expires_at.unwrap_or_else(|| "never".to_owned()),
                        status.to_owned(),
                    ]);
                }
                println!("{table}");
            }
        }
        UsersCommand::Revoke { id } => {
            let store = ctx.open_store().await?;
            let done = store.revoke_api_token(id, &actor).await;
            store.close().await;
            done?;
            println!("revoked API token {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Now, as the store writes times (RFC 3339, milliseconds, UTC), for comparing with them.
fn markwatch_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
