//! The sender task: claims due alerts, renders and hands them to the transport, and records the
//! outcome. See the module doc of [`crate::alert`] for the delivery guarantee.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::Notify;

use super::message::Renderer;
use super::transport::Transport;
use super::{AlertError, Payload};
use crate::config::{Config, EmailConfig};
use crate::store::{Alert, AlertKind, NewAlert, Store};

/// Alerts claimed per transaction.
const CLAIM_BATCH: i64 = 16;

/// Batches, schedules and delivers alerts for one database.
#[derive(Debug, Clone)]
pub struct Sender {
    pub(super) store: Store,
    pub(super) transport: Transport,
    pub(super) renderer: Renderer,
    pub(super) email: EmailConfig,
    /// For monthly reports: the Chromium that prints them, the definitions that name platforms.
    pub(super) browser: crate::config::BrowserConfig,
    pub(super) definitions: std::path::PathBuf,
}

/// What one delivery round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub sent: usize,
    pub retrying: usize,
    pub dead: usize,
    /// Claimed but put back untried because the server was unreachable.
    pub deferred: usize,
}

/// What one [`Sender::tick`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tick {
    pub operations_queued: usize,
    pub digests_queued: usize,
    pub immediate_queued: usize,
    pub delivery: Delivery,
}

impl Sender {
    /// A sender using the configured transport and templates.
    pub fn from_config(store: Store, config: &Config) -> Result<Sender, AlertError> {
        let transport = Transport::from_config(&config.email)?;
        Sender::new(store, transport, config)
    }

    /// A sender using `transport` (e.g. a file transport for the demo).
    pub fn new(store: Store, transport: Transport, config: &Config) -> Result<Sender, AlertError> {
        let renderer = Renderer::new(
            config.email.templates.as_deref(),
            &config.web.base_url,
            &config.email.from,
        )?;
        Ok(Sender {
            store,
            transport,
            renderer,
            email: config.email.clone(),
            browser: config.crawl.browser.clone(),
            definitions: config.crawl.definitions.clone(),
        })
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The message an alert is sent as (for `alerts show`).
    pub async fn render(&self, alert: &Alert) -> Result<lettre::Message, AlertError> {
        let attachments = self.store.alert_attachments(alert.id).await?;
        self.renderer
            .build_message(alert, &self.transport.describe(), &attachments)
    }

    /// One round of everything: operations check, due digests, batching (all pending events
    /// when `flush`, else those past the batch window), then delivery of what is due.
    pub async fn tick(&self, now: DateTime<Utc>, flush: bool) -> Result<Tick, AlertError> {
        self.tick_until(now, flush, &AtomicBool::new(false)).await
    }

    async fn tick_until(
        &self,
        now: DateTime<Utc>,
        flush: bool,
        stop: &AtomicBool,
    ) -> Result<Tick, AlertError> {
        let mut tick = Tick {
            operations_queued: usize::from(self.check_operations().await?.is_some())
                + usize::from(self.report_dead(now, flush).await?.is_some())
                + usize::from(self.report_incidents().await?.is_some()),
            digests_queued: self.queue_digests(now, false).await? + self.queue_reports(now).await?,
            immediate_queued: self.batch_pending(now, flush).await?,
            delivery: self.deliver_until(None, stop).await?,
        };
        // Alerts that died in this round: one report for all of them, sent in this round when
        // it is ready (flushing, or no batch window).
        if tick.delivery.dead > 0
            && !stop.load(Ordering::SeqCst)
            && self.report_dead(Utc::now(), flush).await?.is_some()
        {
            tick.operations_queued += 1;
            let more = self.deliver_until(None, stop).await?;
            tick.delivery.sent += more.sent;
            tick.delivery.retrying += more.retrying;
            tick.delivery.dead += more.dead;
            tick.delivery.deferred += more.deferred;
        }
        Ok(tick)
    }

    /// Queues a test email to `to` and delivers it (only it) now.
    pub async fn send_test(&self, to: &str) -> Result<Alert, AlertError> {
        to.parse::<lettre::message::Mailbox>()
            .map_err(|_| AlertError::Address {
                field: "--to",
                value: to.to_owned(),
            })?;
        let payload = Payload::default();
        let id = self
            .store
            .insert_alert(&NewAlert {
                kind: AlertKind::Test,
                brand_id: None,
                recipients: vec![to.to_owned()],
                message_id: self.message_id(AlertKind::Test),
                subject: self.renderer.subject(AlertKind::Test, &payload)?,
                payload,
            })
            .await?;
        self.deliver_until(Some(id), &AtomicBool::new(false))
            .await?;
        Ok(self.store.alert(id).await?.expect("the alert just queued"))
    }

    /// Runs until `shutdown` resolves: a [`Sender::tick`] every `email.poll_secs`. An alert
    /// being handed to the server when shutdown comes is finished first (bounded by the SMTP
    /// timeout), so shutdown leaves nothing in `sending`.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let stop = AtomicBool::new(false);
        let wake = Notify::new();
        let poll = Duration::from_secs(self.email.poll_secs);
        tracing::info!(transport = %self.transport.describe(), "alert sender started");
        let watcher = async {
            shutdown.await;
            stop.store(true, Ordering::SeqCst);
            wake.notify_one();
        };
        let work = async {
            while !stop.load(Ordering::SeqCst) {
                match self.tick_until(Utc::now(), false, &stop).await {
                    Ok(t) if t != Tick::default() => tracing::info!(?t, "alert round"),
                    Ok(_) => {}
                    // The database may be busy or the disk full: try again next round.
                    Err(e) => tracing::error!(error = %e, "alert round failed"),
                }
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(poll) => {}
                }
            }
        };
        tokio::join!(watcher, work);
        tracing::info!("alert sender stopped");
    }

    async fn deliver_until(
        &self,
        only: Option<i64>,
        stop: &AtomicBool,
    ) -> Result<Delivery, AlertError> {
        let mut done = Delivery::default();
        let lease = chrono::Duration::seconds(self.email.lease_secs as i64);
        while !stop.load(Ordering::SeqCst) {
            let claimed = self
                .store
                .claim_due_alerts(Utc::now(), lease, CLAIM_BATCH, only)
                .await?;
            if claimed.is_empty() {
                break;
            }
            let mut rest = claimed.into_iter();
            while let Some(alert) = rest.next() {
                if stop.load(Ordering::SeqCst) {
                    // Shutting down: hand back what we have not tried.
                    let ids: Vec<i64> = std::iter::once(alert.id)
                        .chain(rest.map(|a| a.id))
                        .collect();
                    done.deferred += self
                        .store
                        .defer_alerts(&ids, Utc::now(), "shutdown")
                        .await?;
                    return Ok(done);
                }
                match self.deliver_one(&alert).await? {
                    Outcome::Lost => {}
                    Outcome::Sent => done.sent += 1,
                    Outcome::Dead => done.dead += 1,
                    Outcome::Retrying { unreachable, next } => {
                        done.retrying += 1;
                        if unreachable {
                            // The server is down: the others would fail the same way. Put them
                            // back for the same time without spending their attempts.
                            let ids: Vec<i64> = rest.map(|a| a.id).collect();
                            let why = format!(
                                "deferred: server unreachable while sending alert {}",
                                alert.id
                            );
                            done.deferred += self.store.defer_alerts(&ids, next, &why).await?;
                            return Ok(done);
                        }
                    }
                }
            }
        }
        Ok(done)
    }

    async fn deliver_one(&self, alert: &Alert) -> Result<Outcome, AlertError> {
        let attachments = self.store.alert_attachments(alert.id).await?;
        let message =
            match self
                .renderer
                .build_message(alert, &self.transport.describe(), &attachments)
            {
                Ok(m) => m,
                Err(e @ (AlertError::Store(_) | AlertError::TemplateRead { .. })) => return Err(e),
                Err(e) => {
                    // A message that cannot be built will not build next time either.
                    tracing::error!(alert = alert.id, error = %e, "alert cannot be built; dead");
                    self.give_up(alert, &e.to_string()).await?;
                    return Ok(Outcome::Dead);
                }
            };
        // The attempt counts from here, whether or not this process lives to record how it went.
        let lease = chrono::Duration::seconds(self.email.lease_secs as i64);
        let Some(attempt) = self
            .store
            .start_alert_attempt(alert.id, Utc::now(), lease)
            .await?
        else {
            // Another sender took it over after our lease ran out.
            return Ok(Outcome::Lost);
        };
        match self.transport.send(message).await {
            Ok(response) => {
                self.store
                    .mark_alert_sent(alert.id, &response, Utc::now())
                    .await?;
                tracing::info!(alert = alert.id, message_id = %alert.message_id, %response, "alert sent");
                Ok(Outcome::Sent)
            }
            Err(e) => {
                let out_of_attempts = attempt >= i64::from(self.email.max_attempts);
                if e.permanent || out_of_attempts {
                    tracing::error!(alert = alert.id, attempts = attempt, error = %e.message, "alert dead");
                    self.give_up(alert, &e.message).await?;
                    return Ok(Outcome::Dead);
                }
                let next = Utc::now() + self.backoff(attempt);
                tracing::warn!(alert = alert.id, attempts = attempt, %next, error = %e.message, "alert failed; will retry");
                self.store
                    .mark_alert_failed(alert.id, &e.message, Some(next))
                    .await?;
                Ok(Outcome::Retrying {
                    unreachable: e.unreachable,
                    next,
                })
            }
        }
    }

    /// Marks an alert dead. Operators hear of a dead brand alert in the next report
    /// ([`Sender::report_dead`]), with every other alert that died in the same incident.
    async fn give_up(&self, alert: &Alert, error: &str) -> Result<(), AlertError> {
        self.store.mark_alert_dead(alert.id, error).await?;
        Ok(())
    }

    /// `retry_base_secs * 2^(attempts-1)`, capped at `retry_max_secs`, plus up to 10% jitter so
    /// many alerts failing together do not retry together.
    fn backoff(&self, attempts: i64) -> chrono::Duration {
        let exp = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(30);
        let secs = self
            .email
            .retry_base_secs
            .saturating_mul(1u64 << exp)
            .min(self.email.retry_max_secs);
        let jitter_ms = rand::random_range(0..=secs * 100);
        chrono::Duration::milliseconds((secs * 1000 + jitter_ms) as i64)
    }

    /// A fresh Message-ID in the sender's domain.
    pub(super) fn message_id(&self, kind: AlertKind) -> String {
        let domain = self.renderer.from().email.domain().to_owned();
        format!(
            "<markwatch.{}.{}.{:016x}@{domain}>",
            kind.as_str(),
            Utc::now().format("%Y%m%d%H%M%S"),
            rand::random::<u64>()
        )
    }
}

enum Outcome {
    /// Another sender holds it now; nothing was sent.
    Lost,
    Sent,
    Dead,
    Retrying {
        unreachable: bool,
        next: DateTime<Utc>,
    },
}

/// Builds the configured sender and runs it until `shutdown`: the daemon's alert task.
pub(crate) async fn run_sender(
    store: Store,
    config: &Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AlertError> {
    Sender::from_config(store, config)?.run(shutdown).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AlertState;

    #[tokio::test]
    async fn run_delivers_then_stops_on_shutdown_with_nothing_left_sending() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(crate::test_support::scratch_db(dir.path()).await)
            .await
            .unwrap();
        let mut config = Config::default();
        config.email.poll_secs = 1;
        let outbox = dir.path().join("outbox");
        let sender = Sender::new(store.clone(), Transport::file(outbox.clone()), &config).unwrap();
        let payload = Payload::default();
        for _ in 0..3 {
            store
                .insert_alert(&NewAlert {
                    kind: AlertKind::Test,
                    brand_id: None,
                    recipients: vec!["ops@markwatch.example".to_owned()],
                    message_id: sender.message_id(AlertKind::Test),
                    subject: String::new(),
                    payload: payload.clone(),
                })
                .await
                .unwrap();
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = {
            let sender = sender.clone();
            tokio::spawn(async move {
                sender
                    .run(async {
                        let _ = rx.await;
                    })
                    .await
            })
        };
        let start = std::time::Instant::now();
        while std::fs::read_dir(&outbox).map_or(0, |d| d.count()) < 3 {
            assert!(start.elapsed() < Duration::from_secs(10), "not delivered");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("stops promptly")
            .unwrap();
        let alerts = store.list_alerts(None, 10).await.unwrap();
        assert!(
            alerts.iter().all(|a| a.state == AlertState::Sent),
            "{alerts:?}"
        );
        assert!(alerts.iter().all(|a| {
            a.server_response
                .as_deref()
                .is_some_and(|r| r.contains(".eml"))
        }));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut config = Config::default();
        config.email.retry_base_secs = 10;
        config.email.retry_max_secs = 60;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = rt
            .block_on(async {
                Store::open(crate::test_support::scratch_db(dir.path()).await).await
            })
            .unwrap();
        let sender = Sender::new(store, Transport::file(dir.path().join("o")), &config).unwrap();
        for (attempts, base) in [(1, 10), (2, 20), (3, 40), (4, 60), (9, 60)] {
            let d = sender.backoff(attempts).num_milliseconds();
            assert!(
                d >= base * 1000 && d <= base * 1100,
                "attempt {attempts}: {d} ms"
            );
        }
    }
}
