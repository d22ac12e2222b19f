//! Turning events into alerts: immediate batches per brand, digests on each brand's schedule,
//! and the operations alert for failing platforms. Each queues rows; delivery is the sender's.

use chrono::{DateTime, Utc};

use super::schedule::{DEFAULT_DIGEST, next_digest, parse_schedule};
use super::{AlertError, Payload, Sender};
use crate::model::AlertMode;
use crate::model::alert::ReportSummary;
use crate::store::{AlertAttachment, AlertKind, NewAlert};

impl Sender {
    /// Queues one immediate alert per brand (in `immediate` mode) whose pending infringing
    /// events are ready: the brand has been quiet for `email.batch_window_secs`, or its oldest
    /// event waited `email.batch_max_wait_secs`, or `flush` is set (end of a `crawl --once`).
    /// Returns how many alerts were queued.
    pub(crate) async fn batch_pending(
        &self,
        now: DateTime<Utc>,
        flush: bool,
    ) -> Result<usize, AlertError> {
        let window = chrono::Duration::seconds(self.email.batch_window_secs as i64);
        let max_wait = chrono::Duration::seconds(self.email.batch_max_wait_secs as i64);
        let mut queued = 0;
        for brand in self.store.pending_alert_brands().await? {
            if brand.mode != AlertMode::Immediate {
                continue; // the digest takes them (or drops them, for `off`)
            }
            let ready = flush || now - brand.newest >= window || now - brand.oldest >= max_wait;
            if !ready {
                continue;
            }
            if brand.contacts.is_empty() {
                tracing::warn!(brand = %brand.brand, "brand has no contacts; its alert will be dead until contacts are added");
            }
            let id = self
                .store
                .batch_immediate(brand.brand_id, |payload| {
                    self.new_alert(
                        AlertKind::Immediate,
                        Some(brand.brand_id),
                        brand.contacts.clone(),
                        payload,
                    )
                })
                .await?;
            if let Some(id) = id {
                tracing::info!(brand = %brand.brand, alert = id, events = brand.events, "immediate alert queued");
                queued += 1;
            }
        }
        Ok(queued)
    }

    /// Queues the digests that are due at `now` (or every brand's when `force`), one per brand
    /// with something to report. A brand seen for the first time starts its schedule now.
    pub async fn queue_digests(
        &self,
        now: DateTime<Utc>,
        force: bool,
    ) -> Result<usize, AlertError> {
        let horizon = chrono::Duration::days(i64::from(self.email.deadline_days));
        let mut queued = 0;
        for brand in self.store.digest_brands().await? {
            let expr = brand.prefs.digest.as_deref().unwrap_or(DEFAULT_DIGEST);
            let schedule = match parse_schedule(expr) {
                Ok(s) => s,
                Err(e) => {
                    // The registry validates schedules; a bad one here was edited in by hand.
                    tracing::error!(brand = %brand.brand, error = %e, "digest schedule unusable; using the default");
                    parse_schedule(DEFAULT_DIGEST).expect("the default schedule parses")
                }
            };
            let due = match brand.covered_to {
                _ if force => true,
                None => {
                    self.store
                        .start_digest_schedule(brand.brand_id, now)
                        .await?;
                    false
                }
                Some(from) => next_digest(&schedule, from).is_some_and(|t| t <= now),
            };
            if !due {
                continue;
            }
            let id = self
                .store
                .close_digest(
                    brand.brand_id,
                    brand.covered_to,
                    now,
                    brand.prefs.mode == AlertMode::Digest,
                    brand.prefs.mode != AlertMode::Off,
                    horizon,
                    |payload| {
                        self.new_alert(
                            AlertKind::Digest,
                            Some(brand.brand_id),
                            brand.contacts.clone(),
                            payload,
                        )
                    },
                )
                .await?;
            if let Some(id) = id {
                tracing::info!(brand = %brand.brand, alert = id, "digest queued");
                queued += 1;
            }
        }
        Ok(queued)
    }

    /// Queues last month's report for each brand that asked for one (`report = "monthly"`) and
    /// has not had it: built from the database, printed to PDF by Chromium (attached as HTML
    /// when Chromium cannot print it), recorded per brand and month so it goes out once.
    pub async fn queue_reports(&self, now: DateTime<Utc>) -> Result<usize, AlertError> {
        let start = crate::monthly::previous_month(now.date_naive());
        let month = start.format("%Y-%m").to_string();
        let due = self.store.reports_due(&month).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let defs = crate::platform::load_dir(&self.definitions).unwrap_or_default();
        let name = |key: &str| crate::platform::display_name(&defs, key);
        let mut queued = 0;
        for brand in due {
            let report = match crate::monthly::build(&self.store, &brand.brand, start, &name).await
            {
                Ok(r) => r,
                Err(crate::monthly::MonthlyError::Store(e)) => return Err(e.into()),
                Err(e) => {
                    tracing::error!(brand = %brand.brand, error = %e, "monthly report cannot be built");
                    continue;
                }
            };
            // Brand names are the registry's; the file name keeps letters and digits only.
            let stem: String = brand
                .brand
                .chars()
                .map(|c| if c.is_alphanumeric() { c } else { '-' })
                .collect();
            let attachment = match crate::monthly::print_pdf(&report, &self.browser).await {
                Ok(bytes) => AlertAttachment {
                    filename: format!("markwatch-{stem}-{month}.pdf"),
                    content_type: "application/pdf".into(),
                    bytes,
                },
                Err(e) => {
                    tracing::warn!(brand = %brand.brand, error = %e, "cannot print the monthly report; attaching its HTML");
                    let html =
                        crate::monthly::render_html(&report).map_err(|e| AlertError::Smtp {
                            message: e.to_string(),
                        })?;
                    AlertAttachment {
                        filename: format!("markwatch-{stem}-{month}.html"),
                        content_type: "text/html; charset=utf-8".into(),
                        bytes: html.into_bytes(),
                    }
                }
            };
            let t = &report.totals;
            let payload = Payload {
                brand: Some(brand.brand.clone()),
                language: brand.language,
                report: Some(ReportSummary {
                    month: month.clone(),
                    infringing: t.infringing,
                    suspect: t.suspect,
                    filed: t.filed,
                    removed: t.removed,
                    rejected: t.rejected,
                    counter_noticed: t.counter_noticed,
                    relisted: t.relisted,
                    file: attachment.filename.clone(),
                }),
                ..Payload::default()
            };
            let alert = self.new_alert(
                AlertKind::Report,
                Some(brand.brand_id),
                brand.contacts.clone(),
                payload,
            );
            if let Some(id) = self
                .store
                .queue_report_alert(&alert, &attachment, &month)
                .await?
            {
                tracing::info!(brand = %brand.brand, alert = id, %month, "monthly report queued");
                queued += 1;
            }
        }
        Ok(queued)
    }

    /// Queues one operations alert for every platform whose last
    /// `email.operations_after_failures` runs all failed and whose streak was not reported yet.
    /// Does nothing without `email.operations`.
    pub(crate) async fn check_operations(&self) -> Result<Option<i64>, AlertError> {
        let Some(operations) = &self.email.operations else {
            return Ok(None);
        };
        let threshold = i64::from(self.email.operations_after_failures);
        let streaks: Vec<_> = self
            .store
            .failure_streaks()
            .await?
            .into_iter()
            .filter(|s| s.runs >= threshold && !s.alerted)
            .collect();
        if streaks.is_empty() {
            return Ok(None);
        }
        let payload = Payload {
            failures: streaks.iter().map(Into::into).collect(),
            ..Payload::default()
        };
        let alert = self.new_alert(
            AlertKind::Operations,
            None,
            vec![operations.clone()],
            payload,
        );
        let id = self.store.queue_operations_alert(&streaks, alert).await?;
        tracing::warn!(
            alert = id,
            platforms = streaks.len(),
            "operations alert queued"
        );
        Ok(Some(id))
    }

    /// Queues one operations alert listing the brand alerts given up on since the last report,
    /// batched like a brand's alerts: once no alert has died for `email.batch_window_secs` (or
    /// the first waited `email.batch_max_wait_secs`), or at once when `flush`. One SMTP outage
    /// makes one email, however many alerts it killed. Does nothing without `email.operations`.
    pub(crate) async fn report_dead(
        &self,
        now: DateTime<Utc>,
        flush: bool,
    ) -> Result<Option<i64>, AlertError> {
        let Some(operations) = &self.email.operations else {
            return Ok(None);
        };
        let Some((dead, first, last)) = self.store.unreported_dead().await? else {
            return Ok(None);
        };
        let window = chrono::Duration::seconds(self.email.batch_window_secs as i64);
        let max_wait = chrono::Duration::seconds(self.email.batch_max_wait_secs as i64);
        if !(flush || now - last >= window || now - first >= max_wait) {
            return Ok(None);
        }
        let id = self
            .store
            .report_dead_alerts(|payload| {
                self.new_alert(
                    AlertKind::Operations,
                    None,
                    vec![operations.clone()],
                    payload,
                )
            })
            .await?;
        if let Some(id) = id {
            tracing::warn!(
                alert = id,
                dead,
                "undeliverable alerts reported to operations"
            );
        }
        Ok(id)
    }

    /// Queues one operations alert for the crawl's incidents not reported yet (an account met
    /// a login wall or a challenge; an anonymous platform was challenged): one email per
    /// incident, however many runs meet it. Does nothing without `email.operations`.
    pub(crate) async fn report_incidents(&self) -> Result<Option<i64>, AlertError> {
        let Some(operations) = &self.email.operations else {
            return Ok(None);
        };
        let id = self
            .store
            .report_incidents(|payload| {
                self.new_alert(
                    AlertKind::Operations,
                    None,
                    vec![operations.clone()],
                    payload,
                )
            })
            .await?;
        if let Some(id) = id {
            tracing::warn!(alert = id, "crawl incidents reported to operations");
        }
        Ok(id)
    }

    /// Builds the row for a payload. Called inside a store transaction: a subject template that
    /// fails to render is logged and the row keeps no subject; the sender then renders it again
    /// and, if it still fails, the alert goes dead with the template error for operators.
    fn new_alert(
        &self,
        kind: AlertKind,
        brand_id: Option<i64>,
        recipients: Vec<String>,
        payload: Payload,
    ) -> NewAlert {
        let subject = self.renderer.subject(kind, &payload).unwrap_or_else(|e| {
            tracing::error!(error = %e, "subject template failed");
            String::new()
        });
        NewAlert {
            kind,
            brand_id,
            recipients,
            message_id: self.message_id(kind),
            subject,
            payload,
        }
    }
}
