//! Takedown notices: drafting from flagged matches, grouped by each platform's complaint rules
//! ([`queue_drafts`]); the notice text from user-editable templates ([`Templates`]); and each
//! platform's bulk-upload layout ([`export_batch`]).
//!
//! The case lifecycle lives in [`crate::case`] and [`crate::store::Store::transition_notice`];
//! evidence packs in [`crate::evidence`].

mod explain;
mod export;
mod group;
mod relist;
mod template;

use chrono::NaiveDate;
use serde::Serialize;

use crate::case::unfileable_reason;
use crate::platform::PlatformDef;
use crate::store::{EvidenceRef, EvidenceRole, Store, StoreError};

pub use explain::explain_en;
pub(crate) use explain::explain_zh;
pub use export::{ExportFormat, ExportOptions, export_platform_batch};
pub(crate) use group::{Unplaced, plan_drafts};
pub(crate) use template::Language;
pub use template::{NoticeContext, Templates, bundled_templates, escape_controls};

/// The audit log's actor for drafts made by the pipeline.
pub(crate) const DRAFTER: &str = "markwatch";

/// A drafting, template or export failure.
#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A template failed to load or render; names the template (and line, when known).
    #[error("notice template {name}: {message}")]
    Template { name: String, message: String },
    /// A template folder or file could not be read.
    #[error("cannot read notice templates in {path}: {source}")]
    TemplateDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A required field of the platform's form is empty.
    #[error(
        "notice {notice_id}, listing {item_id}: the {platform} form requires `{column}`, which is empty"
    )]
    MissingField {
        notice_id: i64,
        platform: String,
        item_id: String,
        column: String,
    },
    /// No definition for a platform named in a request.
    #[error("no platform definition for `{0}`")]
    UnknownPlatform(String),
    #[error("cannot write the export: {0}")]
    Write(String),
}

/// What one drafting run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DraftSummary {
    /// New draft notices.
    pub created: Vec<i64>,
    /// Open drafts that took more listings.
    pub extended: Vec<i64>,
    /// Listings placed in drafts.
    pub listings: u64,
    /// Of those, listings flagged as relisting a removed one.
    pub relisted: usize,
    /// New drafts that cannot be filed (the reason is on each draft).
    pub not_fileable: usize,
    /// Matches left for a later run, with the reason.
    pub unplaced: Vec<Unplaced>,
    /// Open drafts whose fileability changed (a mark renewed or lapsed).
    pub fileability_changed: u64,
    /// Listings taken out of drafts because a rematch judged them clear.
    pub pruned: u64,
}

/// Turns every infringing or suspect match not yet in a notice into draft notices, grouped by
/// the platforms' complaint rules. Idempotent: a match is placed once (its id is unique across
/// notices), so running again only drafts what is new. Also re-checks open drafts against the
/// registry as it is today (a renewed mark becomes fileable, a lapsed one not), and takes
/// listings a rematch has since cleared out of drafts.
pub async fn queue_drafts(
    store: &Store,
    platforms: &[PlatformDef],
) -> Result<DraftSummary, NoticeError> {
    queue_drafts_on(store, platforms, chrono::Utc::now().date_naive()).await
}

/// [`queue_drafts`] as of `today` (expiry is judged against it).
pub(crate) async fn queue_drafts_on(
    store: &Store,
    platforms: &[PlatformDef],
    today: NaiveDate,
) -> Result<DraftSummary, NoticeError> {
    let mut summary = DraftSummary {
        pruned: store.prune_cleared_drafts(DRAFTER).await?,
        fileability_changed: recheck_fileability(store, platforms, today).await?,
        ..DraftSummary::default()
    };
    let candidates = store.draft_candidates().await?;
    if candidates.is_empty() {
        return Ok(summary);
    }
    let removed = store.removed_listings().await?;
    let open = store.open_drafts().await?;
    let plan = plan_drafts(&candidates, &removed, &open, platforms, today);
    let saved = store.save_drafts(&plan.notices, DRAFTER).await?;
    summary.not_fileable = plan
        .notices
        .iter()
        .filter(|n| n.existing.is_none() && n.not_fileable.is_some())
        .count();
    summary.created = saved.created;
    summary.extended = saved.extended;
    summary.listings = saved.items;
    summary.relisted = plan.relisted;
    summary.unplaced = plan.unplaced;
    if summary.listings > 0 {
        tracing::info!(
            created = summary.created.len(),
            listings = summary.listings,
            relisted = summary.relisted,
            "drafts queued"
        );
    }
    Ok(summary)
}

/// Gathers a seller network's open listings (flagged, and in no notice or still in a draft)
/// into drafts of their own, grouped as drafting groups them (per platform, brand, right and
/// reason, within each channel's listing limit) and raised in the queue, so a legal team can
/// file against the whole network at once. Their old drafts give them up, and close if left
/// empty. Listings approved or filed meanwhile stay in their cases, and so do those an earlier
/// drafting of the same network gathered.
pub async fn draft_network(
    store: &Store,
    platforms: &[PlatformDef],
    network: &crate::sellers::Network,
    actor: &str,
) -> Result<DraftSummary, NoticeError> {
    let prefix = format!("network:{}:", network.id);
    let candidates = store
        .open_candidates_among(&network.open_matches, &prefix)
        .await?;
    if candidates.is_empty() {
        return Ok(DraftSummary::default());
    }
    let removed = store.removed_listings().await?;
    let today = chrono::Utc::now().date_naive();
    let mut plan = plan_drafts(&candidates, &removed, &[], platforms, today);
    for p in &mut plan.notices {
        p.group_key = format!("{prefix}{}", p.group_key);
        p.priority += 1;
    }
    let note = format!(
        "seller network {} ({} shops)",
        network.id,
        network.shops.len()
    );
    let saved = store.gather_drafts(&plan.notices, actor, &note).await?;
    Ok(DraftSummary {
        created: saved.created,
        listings: saved.items,
        relisted: plan.relisted,
        unplaced: plan.unplaced,
        ..DraftSummary::default()
    })
}

async fn recheck_fileability(
    store: &Store,
    platforms: &[PlatformDef],
    today: NaiveDate,
) -> Result<u64, NoticeError> {
    let rights = store.unfiled_rights().await?;
    let reasons: Vec<(i64, Option<String>)> = rights
        .into_iter()
        .filter_map(|(id, platform, mark)| {
            let def = platforms.iter().find(|d| d.platform == platform)?;
            let reason = unfileable_reason(
                mark.as_ref()
                    .map(|m| (m.text.as_str(), m.jurisdiction.as_str(), m.expires)),
                def.complaint.requires_cn_registration,
                today,
            );
            Some((id, reason))
        })
        .collect();
    Ok(store.set_not_fileable(&reasons).await?)
}

/// The file a captured page has in an evidence pack; notices name it so a reader can find it.
pub(crate) fn pack_file_name(e: &EvidenceRef) -> String {
    let (role, ext) = match e.role {
        EvidenceRole::SearchPage => ("search", "html"),
        EvidenceRole::ItemPage => ("item", "html"),
        EvidenceRole::DomainSite => ("site", "html"),
        EvidenceRole::DnsAnswer => ("dns", "json"),
    };
    format!("pages/{:08}-{role}.{ext}", e.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CaseState, TransitionDetails};
    use crate::test_support::TestDb;

    fn defs() -> Vec<PlatformDef> {
        crate::platform::load_dir(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/crawlers"
        )))
        .unwrap()
    }

    #[tokio::test]
    async fn drafting_is_idempotent_and_fills_open_drafts() {
        let db = TestDb::new().await;
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        for i in 0..3 {
            db.listing_with_match(
                "taobao",
                &format!("t{i}"),
                "耐克 高仿",
                "店",
                "Nike",
                Some(("NIKE", "CN")),
                "infringing",
                0.9,
            )
            .await;
        }
        let first = queue_drafts_on(&db.store, &defs(), today).await.unwrap();
        assert_eq!((first.created.len(), first.listings), (1, 3));
        let again = queue_drafts_on(&db.store, &defs(), today).await.unwrap();
        assert_eq!((again.created.len(), again.listings), (0, 0));
        // A new listing joins the open draft of its group.
        db.listing_with_match(
            "taobao",
            "t9",
            "耐克 高仿",
            "店",
            "Nike",
            Some(("NIKE", "CN")),
            "suspect",
            0.6,
        )
        .await;
        let more = queue_drafts_on(&db.store, &defs(), today).await.unwrap();
        assert_eq!(more.extended, first.created);
        let n = db.store.notice(first.created[0]).await.unwrap().unwrap();
        assert_eq!((n.item_count, n.max_score), (4, 0.9));

        // Once approved, a draft takes no more listings: a new one starts.
        db.store
            .transition_notice(
                n.id,
                CaseState::Approved,
                "t",
                &TransitionDetails::default(),
            )
            .await
            .unwrap();
        db.listing_with_match(
            "taobao",
            "t10",
            "耐克 高仿",
            "店",
            "Nike",
            Some(("NIKE", "CN")),
            "infringing",
            0.9,
        )
        .await;
        let later = queue_drafts_on(&db.store, &defs(), today).await.unwrap();
        assert_eq!(later.created.len(), 1);
        assert_ne!(later.created[0], n.id);
    }

    #[tokio::test]
    async fn a_plan_never_adds_to_a_draft_approved_meanwhile() {
        let db = TestDb::new().await;
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        db.listing_with_match(
            "jd",
            "a",
            "耐克 高仿",
            "店",
            "Nike",
            Some(("NIKE", "CN")),
            "infringing",
            0.9,
        )
        .await;
        let first = queue_drafts_on(&db.store, &defs(), today).await.unwrap();
        db.listing_with_match(
            "jd",
            "b",
            "耐克 高仿",
            "店",
            "Nike",
            Some(("NIKE", "CN")),
            "infringing",
            0.9,
        )
        .await;
        // Planned while the draft was open...
        let plan = plan_drafts(
            &db.store.draft_candidates().await.unwrap(),
            &[],
            &db.store.open_drafts().await.unwrap(),
            &defs(),
            today,
        );
        assert_eq!(plan.notices[0].existing, Some(first.created[0]));
        // ...saved after a reviewer approved it.
        db.store
            .transition_notice(
                first.created[0],
                CaseState::Approved,
                "t",
                &TransitionDetails::default(),
            )
            .await
            .unwrap();
        let saved = db.store.save_drafts(&plan.notices, DRAFTER).await.unwrap();
        assert_eq!(saved.created.len(), 1);
        assert!(saved.extended.is_empty());
        let approved = db.store.notice(first.created[0]).await.unwrap().unwrap();
        assert_eq!(approved.item_count, 1);
    }

    #[tokio::test]
    async fn listings_rescored_clear_leave_their_drafts() {
        let db = TestDb::new().await;
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        db.listing_with_match(
            "jd",
            "a",
            "耐克",
            "店",
            "Nike",
            Some(("NIKE", "CN")),
            "suspect",
            0.6,
        )
        .await;
        db.listing_with_match(
            "jd",
            "b",
            "耐克 高仿",
            "店",
            "Nike",
            Some(("NIKE", "CN")),
            "infringing",
            0.9,
        )
        .await;
        let s = queue_drafts_on(&db.store, &defs(), today).await.unwrap();
        let id = s.created[0];
        // A rematch clears "a", then "b".
        db.listing_with_match(
            "jd",
            "a",
            "耐克",
            "店",
            "Nike",
            Some(("NIKE", "CN")),
            "clear",
            0.1,
        )
        .await;
        let s = queue_drafts_on(&db.store, &defs(), today).await.unwrap();
        assert_eq!(s.pruned, 1);
        let n = db.store.notice(id).await.unwrap().unwrap();
        assert_eq!((n.item_count, n.state), (1, CaseState::Draft));
        db.listing_with_match(
            "jd",
            "b",
            "耐克 高仿",
            "店",
            "Nike",
            Some(("NIKE", "CN")),
            "clear",
            0.1,
        )
        .await;
        queue_drafts_on(&db.store, &defs(), today).await.unwrap();
        let n = db.store.notice(id).await.unwrap().unwrap();
        assert_eq!((n.item_count, n.state), (0, CaseState::Rejected));
        let history = db.store.notice_history(id).await.unwrap();
        assert_eq!(
            history.last().unwrap().to_state.as_deref(),
            Some("rejected")
        );
        assert!(
            history
                .last()
                .unwrap()
                .note
                .as_deref()
                .unwrap()
                .contains("re-scored clear")
        );
    }
}
