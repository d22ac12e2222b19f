//! The daemon's matcher: built from the registry and reviewers' allow rules once, and kept
//! for every run until their stamp moves (an import changed something, a rule came or went). Building it takes a noticeable part
//! of a second, more as the registry grows; checking the stamp is one small read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::Mutex;

use std::collections::BTreeMap;

use crate::crawl::{CrawlError, MatcherStamp, build_matcher};
use crate::matcher::Matcher;
use crate::store::Store;

/// The matcher of the registry as last seen. Shared by every run of the daemon.
#[derive(Default)]
pub(crate) struct Matchers {
    kept: Mutex<Option<(MatcherStamp, Arc<Matcher>)>>,
    builds: AtomicU64,
}

impl Matchers {
    /// The matcher for the registry as it is now: the kept one while the stamp is the same,
    /// else a new one built from the brands read together with their stamp.
    pub(crate) async fn current(
        &self,
        store: &Store,
        rates: &BTreeMap<String, f64>,
    ) -> Result<Arc<Matcher>, CrawlError> {
        // Held through a build, so runs starting together wait for one build, not one each.
        let mut kept = self.kept.lock().await;
        let stamp = MatcherStamp::now(store).await?;
        if let Some((at, matcher)) = kept.as_ref()
            && *at == stamp
        {
            return Ok(matcher.clone());
        }
        let started = Instant::now();
        let (stamp, matcher) = build_matcher(store, rates).await?;
        self.builds.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            "matcher built from the registry"
        );
        *kept = Some((stamp, matcher.clone()));
        Ok(matcher)
    }

    /// How many matchers were built so far.
    pub(crate) fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }
}
