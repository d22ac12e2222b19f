//! Listing photos: which to fetch next, what became of each, and their hashes for judging.

use super::sql;
use std::collections::HashMap;

use serde::Serialize;
use sqlx::AnyConnection;

use super::matches::ListingRow;
use super::{Result, Store, WriteTx, now, to_json};
use crate::model::Listing;

/// Fetches of one image that failed before it is left alone.
const MAX_TRIES: i64 = 3;

/// A photo to fetch, with its listing as stored and the hashes of its photos fetched so far.
#[derive(Debug, Clone)]
pub(crate) struct WantedImage {
    pub image_id: i64,
    pub url: String,
    pub listing_id: i64,
    pub listing: Listing,
}

/// What fetching a photo came to.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ImageUpdate {
    pub image_id: i64,
    pub evidence_id: i64,
    /// `hashed` or `refused`.
    pub state: &'static str,
    pub sha256: Option<String>,
    /// The perceptual hash's bits, as SQLite's signed integer.
    pub phash: Option<i64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub error: Option<String>,
}

pub(crate) fn decode_hashes(blob: &[u8]) -> Vec<u64> {
    blob.chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect()
}

impl Store {
    /// Takes up to `limit` of `platform`'s photos to fetch and counts a try on each: main
    /// photos, and every photo of a flagged listing; never one that failed `MAX_TRIES` times.
    /// One statement, so two crawls never take the same ones.
    pub(crate) async fn take_images(&self, platform: &str, limit: u32) -> Result<Vec<WantedImage>> {
        let taken: Vec<(i64, i64, String)> = sql::query_as(
            "UPDATE listing_images SET tries = tries + 1
             WHERE id IN (
                 SELECT i.id FROM listing_images i JOIN listings l ON l.id = i.listing_id
                 WHERE l.platform = ? AND i.state IN ('pending', 'failed') AND i.tries < ?
                   AND (i.position = 0 OR EXISTS (SELECT 1 FROM matches m
                        WHERE m.listing_id = i.listing_id AND m.verdict != 'clear'))
                 ORDER BY i.tries, i.listing_id, i.position LIMIT ?)
             RETURNING id, listing_id, url",
        )
        .bind(platform)
        .bind(MAX_TRIES)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        if taken.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids: Vec<i64> = taken.iter().map(|t| t.1).collect();
        // A listing's several photos: read it once (a repeated row would take its hashes).
        ids.sort_unstable();
        ids.dedup();
        let mut conn = self.pool.acquire().await?;
        let mut listings = listings_with_hashes(&mut conn, &ids).await?;
        let mut wanted: Vec<WantedImage> = taken
            .into_iter()
            .filter_map(|(image_id, listing_id, url)| {
                let listing = listings.get(&listing_id)?.clone();
                Some(WantedImage {
                    image_id,
                    url,
                    listing_id,
                    listing,
                })
            })
            .collect();
        wanted.sort_by_key(|w| (w.listing_id, w.image_id));
        listings.clear();
        Ok(wanted)
    }

    /// Records a photo that could not be fetched (no evidence to keep); it is tried again
    /// later, up to `MAX_TRIES` in all.
    pub(crate) async fn image_failed(&self, image_id: i64, error: &str) -> Result<()> {
        sql::query("UPDATE listing_images SET state = 'failed', error = ? WHERE id = ?")
            .bind(error)
            .bind(image_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// A listing's accepted photo, for the review UI.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ListingPhoto {
    pub id: i64,
    pub phash: i64,
}

/// A brand's reference image, for the review UI.
#[derive(Debug, Clone)]
pub(crate) struct RefPhoto {
    pub id: i64,
    pub path: String,
    pub kind: String,
    pub hashes: Vec<u64>,
}

impl Store {
    /// A listing's accepted photos, main first.
    pub(crate) async fn listing_photos(&self, listing_id: i64) -> Result<Vec<ListingPhoto>> {
        Ok(sql::query_as(
            "SELECT id, phash FROM listing_images
             WHERE listing_id = ? AND state = 'hashed' AND phash IS NOT NULL
             ORDER BY position, id",
        )
        .bind(listing_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// An accepted photo's bytes and type, opened from its evidence (never the platform's URL).
    pub(crate) async fn listing_photo_bytes(
        &self,
        image_id: i64,
    ) -> Result<Option<(&'static str, Vec<u8>)>> {
        let body: Option<Vec<u8>> = sql::query_scalar(
            "SELECT e.body FROM listing_images i JOIN evidence e ON e.id = i.evidence_id
             WHERE i.id = ? AND i.state = 'hashed'",
        )
        .bind(image_id)
        .fetch_optional(&self.pool)
        .await?;
        // A damaged record shows no photo; `evidence verify` names it.
        Ok(body.and_then(|body| {
            let bytes = crate::seal::open(&body).ok()?;
            Some((crate::images::content_type(&bytes)?, bytes))
        }))
    }

    /// Every brand's reference images as imported: (path as the registry gave it, bytes), for
    /// an export that re-imports.
    pub async fn reference_image_files(&self) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(
            sql::query_as("SELECT path, bytes FROM brand_images ORDER BY brand_id, position, id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Per notice, the main photo of its first listing that has one: the queue's thumbnails.
    pub(crate) async fn notice_thumbnails(&self, notices: &[i64]) -> Result<HashMap<i64, i64>> {
        let rows: Vec<(i64, i64)> = sql::query_as(
            "SELECT ni.notice_id, min(i.id) FROM json_each(?) j
             JOIN notice_items ni ON ni.notice_id = CAST(j.value AS BIGINT)
             JOIN matches m ON m.id = ni.match_id
             JOIN listing_images i ON i.listing_id = m.listing_id
             WHERE i.position = 0 AND i.state = 'hashed' GROUP BY ni.notice_id",
        )
        .bind(to_json(&notices))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// A brand's reference images, in the registry's order.
    pub(crate) async fn reference_photos(&self, brand: &str) -> Result<Vec<RefPhoto>> {
        let rows: Vec<(i64, String, String, Vec<u8>)> = sql::query_as(
            "SELECT i.id, i.path, i.kind, i.hashes FROM brand_images i
             JOIN brands b ON b.id = i.brand_id WHERE b.name = ? ORDER BY i.position, i.id",
        )
        .bind(brand)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, path, kind, hashes)| RefPhoto {
                id,
                path,
                kind,
                hashes: decode_hashes(&hashes),
            })
            .collect())
    }

    /// A reference image's bytes and type.
    pub(crate) async fn reference_photo_bytes(
        &self,
        id: i64,
    ) -> Result<Option<(&'static str, Vec<u8>)>> {
        let bytes: Option<Vec<u8>> =
            sql::query_scalar("SELECT bytes FROM brand_images WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(bytes.and_then(|b| Some((crate::images::content_type(&b)?, b))))
    }
}

/// Listings by id, each with the hashes of its fetched photos.
pub(super) async fn listings_with_hashes(
    conn: &mut AnyConnection,
    ids: &[i64],
) -> Result<HashMap<i64, Listing>> {
    let rows: Vec<ListingRow> = sql::query_as(
        "SELECT l.id, l.platform, l.item_id, l.url, l.title, l.seller, l.seller_id, l.ship_from,
                l.price, l.currency, l.category, l.is_ad, l.self_operated
         FROM json_each(?) j JOIN listings l ON l.id = CAST(j.value AS BIGINT)",
    )
    .bind(to_json(&ids))
    .fetch_all(&mut *conn)
    .await?;
    Ok(with_photo_hashes(conn, rows).await?.into_iter().collect())
}

/// Listing rows as the matcher judges them: each with the hashes of its accepted photos.
pub(super) async fn with_photo_hashes(
    conn: &mut AnyConnection,
    rows: Vec<ListingRow>,
) -> Result<Vec<(i64, Listing)>> {
    let ids: Vec<i64> = rows.iter().map(ListingRow::id).collect();
    let mut hashes = image_hashes(conn, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let (id, mut listing) = r.into_pair();
            listing.image_hashes = hashes.remove(&id).unwrap_or_default();
            (id, listing)
        })
        .collect())
}

pub(super) async fn image_hashes(
    conn: &mut AnyConnection,
    listing_ids: &[i64],
) -> Result<HashMap<i64, Vec<u64>>> {
    let rows: Vec<(i64, i64)> = sql::query_as(
        "SELECT i.listing_id, i.phash FROM json_each(?) j JOIN listing_images i
         ON i.listing_id = CAST(j.value AS BIGINT) WHERE i.state = 'hashed' AND i.phash IS NOT NULL
         ORDER BY i.listing_id, i.position",
    )
    .bind(to_json(&listing_ids))
    .fetch_all(&mut *conn)
    .await?;
    let mut out: HashMap<i64, Vec<u64>> = HashMap::new();
    for (listing, phash) in rows {
        out.entry(listing).or_default().push(phash as u64);
    }
    Ok(out)
}

impl WriteTx<'_> {
    /// Queues photos for fetching: (listing id, place in its gallery, URL). A URL a listing
    /// already has is left as it is.
    pub(crate) async fn add_images(&mut self, images: &[(i64, usize, &str)]) -> Result<()> {
        if images.is_empty() {
            return Ok(());
        }
        sql::query(
            "INSERT INTO listing_images (listing_id, position, url)
             SELECT CAST(j.value ->> 0 AS BIGINT), CAST(j.value ->> 1 AS BIGINT), j.value ->> 2 FROM jsonb_each(?) j
             WHERE true ON CONFLICT (listing_id, url) DO NOTHING",
        )
        .bind(to_json(&images))
        .execute(&mut ***self)
        .await?;
        Ok(())
    }

    /// Records fetched photos: accepted with their hashes, or refused with the reason.
    pub(crate) async fn update_images(&mut self, updates: &[ImageUpdate]) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        sql::query(
            "UPDATE listing_images SET state = j.value ->> 'state',
                 evidence_id = CAST(j.value ->> 'evidence_id' AS BIGINT), sha256 = j.value ->> 'sha256',
                 phash = CAST(j.value ->> 'phash' AS BIGINT), width = CAST(j.value ->> 'width' AS BIGINT),
                 height = CAST(j.value ->> 'height' AS BIGINT), error = j.value ->> 'error', fetched_at = ?
             FROM jsonb_each(?) j WHERE listing_images.id = CAST(j.value ->> 'image_id' AS BIGINT)",
        )
        .bind(now())
        .bind(to_json(&updates))
        .execute(&mut ***self)
        .await?;
        Ok(())
    }
}
