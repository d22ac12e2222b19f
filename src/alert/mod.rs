//! Email alerts to brand owners and operators: never lost, never doubled.
//!
//! # Architecture
//!
//! - **Events**: when a match becomes `infringing` or `suspect`, `store_verdicts` writes an
//!   `alert_events` row in the same transaction as the match, so a committed match always has
//!   its event and a rolled-back one never does.
//! - **Batching** ([`Sender::batch_pending`]): a brand's pending infringing events become one
//!   `alerts` row once the brand has been quiet for `email.batch_window_secs` (or at most
//!   `email.batch_max_wait_secs` after the first), so one crawl makes one email per brand.
//!   Events and the alert change in one transaction.
//! - **Digests** ([`Sender::queue_digests`]): on each brand's cron schedule, suspect listings
//!   (and infringing ones for brands in `digest` mode), relistings and case deadlines become
//!   one digest alert.
//! - **Operations** ([`Sender::check_operations`]): N consecutive failed crawl runs of a
//!   platform alert `email.operations`, once per streak. Brand alerts that went dead are
//!   reported there too ([`Sender::report_dead`]): one email per incident listing them all,
//!   batched by the same window as a brand's alerts.
//! - **Delivery** ([`Sender::tick`]): alerts move `queued → sending → sent`, or
//!   `failed_retrying` (exponential backoff) and finally `dead` after `email.max_attempts`.
//!   A 5xx refusal is dead at once. When the server is unreachable, the rest of the round is
//!   deferred without spending their attempts. An attempt is counted when the message is
//!   handed to the server, not when an alert is claimed: a sender killed while holding claims
//!   spends none of the alerts it never tried.
//!
//! # Delivery guarantee
//!
//! Each alert has a Message-ID fixed when it is queued; every attempt sends the same message
//! under it. A sender first commits `sending` (with a lease, `email.lease_secs`), then talks to
//! the server, then commits `sent` with the server's response. A crash or SMTP outage at any
//! point leaves the alert `queued`, `sending` or `failed_retrying`, and it is sent later: no
//! alert is lost. The one window for a duplicate is between the server's acceptance (its `250`
//! after DATA) and the commit of `sent`: a crash exactly there makes the next sender deliver
//! the alert again, once, with the same Message-ID, which mail clients and most servers use to
//! drop the copy. A sender that was killed holds its alerts until its lease runs out.
//!
//! The daemon runs [`Sender::run`] (or [`run_sender`]); `markwatch alerts send` runs one
//! [`Sender::tick`] with batching flushed.

mod batch;
mod message;
mod schedule;
mod sender;
mod transport;

use std::path::PathBuf;

pub(crate) use crate::model::alert::Payload;
pub(crate) use schedule::parse_schedule;
pub use sender::Sender;
pub(crate) use sender::run_sender;

use crate::store::StoreError;

/// Why alerts could not be prepared or sent.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The outbox could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A template does not parse or render.
    #[error("email template {name}: {source:#}")]
    Template {
        name: String,
        #[source]
        source: minijinja::Error,
    },
    /// An override template could not be read.
    #[error("email template {}: {source}", path.display())]
    TemplateRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An address does not parse.
    #[error("{field}: `{value}` is not an email address")]
    Address { field: &'static str, value: String },
    /// The alert has nobody to go to (the brand has no contacts).
    #[error("no recipients: add contacts to the brand in the registry, then `alerts retry`")]
    NoRecipients,
    /// lettre refused to assemble the message.
    #[error("cannot build the message: {0}")]
    Build(#[source] lettre::error::Error),
    /// The SMTP settings are unusable.
    #[error("{message}")]
    Smtp { message: String },
}

impl AlertError {
    /// A mistake in configuration, templates or arguments rather than a failure of the machine.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            AlertError::Template { .. }
                | AlertError::TemplateRead { .. }
                | AlertError::Address { .. }
                | AlertError::Smtp { .. }
        )
    }
}
