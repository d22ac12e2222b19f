//! The daemon's matcher: built from the registry once, and kept for every run until the
//! registry's stamp moves (an import changed something). Building it takes a noticeable part
//! of a second, more as the registry grows; checking the stamp is one small read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::Mutex;

use crate::crawl::{CrawlError, build_matcher};
use crate::matcher::Matcher;
use crate::store::{RegistryStamp, Store};

/// The matcher of the registry as last seen. Shared by every run of the daemon.
#[derive(Default)]
pub(crate) struct Matchers {
    kept: Mutex<Option<(RegistryStamp, Arc<Matcher>)>>,
    builds: AtomicU64,
}

impl Matchers {
    /// The matcher for the registry as it is now: the kept one while the stamp is the same,
    /// else a new one built from the brands read together with their stamp.
    pub(crate) async fn current(&self, store: &Store) -> Result<Arc<Matcher>, CrawlError> {
        // Held through a build, so runs starting together wait for one build, not one each.
        let mut kept = self.kept.lock().await;
        let stamp = store.registry_stamp().await?;
        if let Some((at, matcher)) = kept.as_ref()
            && *at == stamp
        {
            return Ok(matcher.clone());
        }
        let started = Instant::now();
        let (stamp, brands) = store.brands_with_stamp().await?;
        let count = brands.len();
        let matcher = build_matcher(brands).await?;
        self.builds.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            brands = count,
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
