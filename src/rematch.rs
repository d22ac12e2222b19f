//! Re-scoring stored listings after the registry or the matcher changes.
//!
//! Listings are read and re-judged in batches; each batch's changed verdicts are written in one
//! transaction, so an interrupted rematch leaves every listing with either its old verdict or
//! its new one, and running it again finishes the job.

use std::collections::BTreeMap;
use std::sync::Arc;

use rayon::prelude::*;

use crate::matcher::{Item, Matcher};
use crate::store::{RematchSummary, Result, Store};

const BATCH: u32 = 2_000;

/// Judges every stored listing again and stores the verdicts that changed.
pub async fn rematch(store: &Store, matcher: &Arc<Matcher>) -> Result<RematchSummary> {
    let mut summary = RematchSummary::default();
    let mut transitions = BTreeMap::new();
    let mut after = 0;
    loop {
        let batch = store.listings_after(after, BATCH).await?;
        let Some(&(last, _)) = batch.last() else {
            break;
        };
        after = last;
        let n = batch.len();
        // Matching is CPU-bound: off the async threads, on every core.
        let m = matcher.clone();
        let verdicts: Vec<_> = tokio::task::spawn_blocking(move || {
            batch
                .par_iter()
                .map(|(id, listing)| (*id, m.check(&Item::from(listing))))
                .collect()
        })
        .await
        .expect("matcher panicked");
        let changes = store.store_rematch(&verdicts).await?;
        summary.listings += n as u64;
        summary.unchanged += (n - changes.len()) as u64;
        for c in changes {
            *transitions.entry((c.previous, c.verdict)).or_insert(0u64) += 1;
        }
    }
    summary.transitions = transitions
        .into_iter()
        .map(|((from, to), n)| (from, to, n))
        .collect();
    Ok(summary)
}
