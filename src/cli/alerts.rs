//! `markwatch alerts ...`: the outbox as operators see it.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use markwatch::Sender;
use markwatch::{Alert, AlertState};

use super::Context;

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// List alerts, newest first
    List {
        /// Only alerts in this state
        #[arg(long, value_enum)]
        state: Option<AlertState>,
        /// At most this many
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// One JSON object per line instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Print one alert's message as it is sent (MIME source)
    Show { id: i64 },
    /// Queue dead or retrying alerts again now, with a fresh set of attempts
    Retry {
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// Send a test email through the configured transport
    Test {
        /// Recipient address
        #[arg(long)]
        to: String,
    },
    /// Batch every pending event now, queue due digests and operations alerts, and deliver
    /// everything that is due; then exit
    Send {
        /// Also send every brand's digest now, whatever its schedule
        #[arg(long)]
        digests: bool,
    },
}

pub async fn run(cmd: AlertsCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store().await?;
    let code = match cmd {
        AlertsCommand::List { state, limit, json } => {
            let alerts = store.list_alerts(state, limit).await?;
            if json {
                for a in &alerts {
                    println!("{}", serde_json::to_string(&summary(a))?);
                }
            } else if alerts.is_empty() {
                println!("no alerts");
            } else {
                println!("{}", table(&alerts));
            }
            ExitCode::SUCCESS
        }
        AlertsCommand::Show { id } => {
            let alert = store
                .alert(id)
                .await?
                .with_context(|| format!("no alert {id}"))?;
            let sender = Sender::from_config(store.clone(), &ctx.config)?;
            let message = sender.render(&alert).await?;
            print!("{}", String::from_utf8_lossy(&message.formatted()));
            ExitCode::SUCCESS
        }
        AlertsCommand::Retry { ids } => {
            let mut missing = false;
            for id in ids {
                match store.retry_alert(id, &super::actor()).await? {
                    None => {
                        eprintln!("alert {id}: no such alert");
                        missing = true;
                    }
                    Some(s @ (AlertState::Dead | AlertState::FailedRetrying)) => {
                        println!("alert {id}: {} -> queued", s.as_str());
                    }
                    Some(s) => println!("alert {id}: {} (unchanged)", s.as_str()),
                }
            }
            if missing {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        AlertsCommand::Test { to } => {
            let sender = Sender::from_config(store.clone(), &ctx.config)?;
            let alert = sender.send_test(&to).await?;
            match alert.state {
                AlertState::Sent => {
                    println!(
                        "sent alert {} to {to} via {}: {}",
                        alert.id,
                        sender.transport().describe(),
                        alert.server_response.as_deref().unwrap_or("")
                    );
                    ExitCode::SUCCESS
                }
                state => {
                    store.close().await;
                    bail!(
                        "test email to {to} via {} not sent (alert {}, {}): {}",
                        sender.transport().describe(),
                        alert.id,
                        state.as_str(),
                        alert.last_error.as_deref().unwrap_or("unknown error")
                    );
                }
            }
        }
        AlertsCommand::Send { digests } => {
            let sender = Sender::from_config(store.clone(), &ctx.config)?;
            let now = chrono::Utc::now();
            let forced = if digests {
                sender.queue_digests(now, true).await?
            } else {
                0
            };
            let tick = sender.tick(now, true).await?;
            let d = tick.delivery;
            println!(
                "queued: {} immediate, {} digest, {} operations; delivered: {} sent, {} retrying, {} dead",
                tick.immediate_queued,
                tick.digests_queued + forced,
                tick.operations_queued,
                d.sent,
                d.retrying + d.deferred,
                d.dead
            );
            if d.retrying + d.deferred + d.dead > 0 {
                eprintln!("some alerts were not delivered; see `markwatch alerts list`");
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
    };
    store.close().await;
    Ok(code)
}

#[derive(serde::Serialize)]
struct Summary<'a> {
    id: i64,
    kind: &'static str,
    state: &'static str,
    attempts: i64,
    recipients: &'a [String],
    subject: Option<&'a str>,
    message_id: &'a str,
    created_at: &'a str,
    next_attempt_at: Option<&'a str>,
    sent_at: Option<&'a str>,
    server_response: Option<&'a str>,
    last_error: Option<&'a str>,
}

fn summary(a: &Alert) -> Summary<'_> {
    Summary {
        id: a.id,
        kind: a.kind.as_str(),
        state: a.state.as_str(),
        attempts: a.attempts,
        recipients: &a.recipients,
        subject: a.subject.as_deref(),
        message_id: &a.message_id,
        created_at: &a.created_at,
        next_attempt_at: a.next_attempt_at.as_deref(),
        sent_at: a.sent_at.as_deref(),
        server_response: a.server_response.as_deref(),
        last_error: a.last_error.as_deref(),
    }
}

fn table(alerts: &[Alert]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header([
            "ID", "Kind", "State", "Tries", "To", "Subject", "When", "Detail",
        ]);
    for a in alerts {
        let (when, detail) = match a.state {
            AlertState::Sent => (
                a.sent_at.clone().unwrap_or_default(),
                a.server_response.clone().unwrap_or_default(),
            ),
            AlertState::FailedRetrying => (
                format!("next {}", a.next_attempt_at.as_deref().unwrap_or("?")),
                a.last_error.clone().unwrap_or_default(),
            ),
            AlertState::Dead => (String::new(), a.last_error.clone().unwrap_or_default()),
            _ => (
                a.created_at.clone(),
                a.last_error.clone().unwrap_or_default(),
            ),
        };
        table.add_row([
            a.id.to_string(),
            a.kind.as_str().to_owned(),
            a.state.as_str().to_owned(),
            a.attempts.to_string(),
            a.recipients.join("\n"),
            a.subject.clone().unwrap_or_default(),
            when,
            detail,
        ]);
    }
    table
}
