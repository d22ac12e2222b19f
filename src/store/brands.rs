//! The brand registry: brands, their lists, price floors, marks and Nice classes.
//!
//! An import reads what the database holds of the file's brands in a few queries, works out in
//! memory what to add and change, and writes each kind of row in one statement: a registry of
//! 10,000 brands imports in well under a second, in one transaction.

use super::sql::{self, Flag};
use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::{Any, AnyConnection, Transaction};

use super::{Result, Store, StoreError, now, to_json};
use crate::model::{AlertPrefs, Brand, BrandImage, Mark, PriceFloor};

/// What an import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub brands_added: usize,
    pub brands_updated: usize,
    pub brands_unchanged: usize,
    pub marks_added: usize,
    pub marks_updated: usize,
    pub marks_unchanged: usize,
    /// Reference images added or replaced (their file changed).
    pub images_changed: usize,
}

impl ImportSummary {
    pub fn changed(&self) -> bool {
        self.brands_added
            + self.brands_updated
            + self.marks_added
            + self.marks_updated
            + self.images_changed
            > 0
    }
}

/// Where the registry stands: equal stamps mean an unchanged registry, so whatever was built
/// from it (the daemon's matcher) still holds. Compare them only for equality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RegistryStamp {
    /// `registry_generation`, bumped by every import that changes anything.
    generation: i64,
}

/// One of the ordered lists hanging off a brand. Identifiers can't be bound, so each list
/// carries its own static SQL; each statement takes one JSON array.
struct ListTable {
    /// (brand_id, value) of the brands with the given ids, in order.
    select: &'static str,
    /// Every row of the brands with the given ids.
    delete: &'static str,
    /// Rows given as [brand_id, position, value].
    insert: &'static str,
}

/// Contacts, aliases, authorised sellers and own domains, in the order [`brand_lists`] returns
/// them.
const LISTS: [ListTable; 4] = [
    ListTable {
        select: "SELECT l.brand_id, l.email FROM json_each(?) j
                 JOIN brand_contacts l ON l.brand_id = CAST(j.value AS BIGINT) ORDER BY l.brand_id, l.position",
        delete: "DELETE FROM brand_contacts WHERE brand_id IN (SELECT CAST(value AS BIGINT) FROM json_each(?))",
        insert: "INSERT INTO brand_contacts (brand_id, position, email)
                 SELECT CAST(j.value ->> 0 AS BIGINT), CAST(j.value ->> 1 AS BIGINT), j.value ->> 2
                 FROM jsonb_each(?) j",
    },
    ListTable {
        select: "SELECT l.brand_id, l.alias FROM json_each(?) j
                 JOIN brand_aliases l ON l.brand_id = CAST(j.value AS BIGINT) ORDER BY l.brand_id, l.position",
        delete: "DELETE FROM brand_aliases WHERE brand_id IN (SELECT CAST(value AS BIGINT) FROM json_each(?))",
        insert: "INSERT INTO brand_aliases (brand_id, position, alias)
                 SELECT CAST(j.value ->> 0 AS BIGINT), CAST(j.value ->> 1 AS BIGINT), j.value ->> 2
                 FROM jsonb_each(?) j",
    },
    ListTable {
        select: "SELECT l.brand_id, l.seller FROM json_each(?) j
                 JOIN authorized_sellers l ON l.brand_id = CAST(j.value AS BIGINT) ORDER BY l.brand_id, l.position",
        delete: "DELETE FROM authorized_sellers WHERE brand_id IN (SELECT CAST(value AS BIGINT) FROM json_each(?))",
        insert: "INSERT INTO authorized_sellers (brand_id, position, seller)
                 SELECT CAST(j.value ->> 0 AS BIGINT), CAST(j.value ->> 1 AS BIGINT), j.value ->> 2
                 FROM jsonb_each(?) j",
    },
    ListTable {
        select: "SELECT l.brand_id, l.domain FROM json_each(?) j
                 JOIN brand_domains l ON l.brand_id = CAST(j.value AS BIGINT) ORDER BY l.brand_id, l.position",
        delete: "DELETE FROM brand_domains WHERE brand_id IN (SELECT CAST(value AS BIGINT) FROM json_each(?))",
        insert: "INSERT INTO brand_domains (brand_id, position, domain)
                 SELECT CAST(j.value ->> 0 AS BIGINT), CAST(j.value ->> 1 AS BIGINT), j.value ->> 2
                 FROM jsonb_each(?) j",
    },
];

/// A brand row to insert or update, as one element of a JSON array.
#[derive(Serialize)]
struct BrandRow<'a> {
    /// `None` for a new brand.
    id: Option<i64>,
    name: &'a str,
    owner: &'a str,
    price: Option<f64>,
    alert_mode: &'static str,
    alert_digest: Option<&'a str>,
    alert_language: &'static str,
    alert_report: &'static str,
    well_known: bool,
    watch_unauthorised: bool,
    trust_official_stores: bool,
}

/// A mark row to insert (`id` is its brand's) or update (`id` is its own).
#[derive(Serialize)]
struct MarkRow<'a> {
    id: i64,
    text: &'a str,
    jurisdiction: &'a str,
    registration_no: &'a str,
    expires: Option<String>,
}

/// What an import writes, worked out before anything is written. Brands and marks that are
/// new are referred to by their index in `new_brands` / `new_marks` until they have ids.
#[derive(Default)]
struct Changes<'a> {
    new_brands: Vec<&'a Brand>,
    changed_brands: Vec<(i64, &'a Brand)>,
    /// Per list of [`LISTS`]: the stored brands whose list is replaced.
    replaced_lists: [Vec<(i64, &'a [String])>; 4],
    replaced_prices: Vec<(i64, &'a [PriceFloor])>,
    /// (the new brand's index, or the stored brand's id), the mark.
    new_marks: Vec<(BrandRef, &'a Mark)>,
    changed_marks: Vec<(i64, &'a Mark)>,
    summary: ImportSummary,
}

#[derive(Clone, Copy)]
enum BrandRef {
    New(usize),
    Stored(i64),
}

/// A brand's row as `brands()` and the import read it.
type BrandColumns = (i64, String, String, Option<f64>, Flag, Flag, Flag);

impl Store {
    /// Upserts brands by name and their marks by text + jurisdiction, all or nothing.
    ///
    /// Marks and brands missing from `brands` are kept: an import adds and updates, it never
    /// deletes. `source` (e.g. the file name) goes into the audit log when anything changed.
    /// Names are unique in a valid registry; should one repeat, its last entry wins, as if the
    /// entries were imported one after another (and likewise a brand's repeated mark).
    pub async fn import_registry(
        &self,
        brands: &[Brand],
        actor: &str,
        source: &str,
    ) -> Result<ImportSummary> {
        let wanted = last_of_each(brands);
        let mut tx = self.begin_write().await?;
        let now = now();
        let names: Vec<&str> = wanted.iter().map(|w| w.brand.name.as_str()).collect();
        let rows: Vec<BrandColumns> = sql::query_as(
            "SELECT b.id, b.name, b.owner, b.reference_price_cny, b.well_known,
                    b.watch_unauthorised, b.trust_official_stores
             FROM json_each(?) j JOIN brands b ON b.name = j.value",
        )
        .bind(to_json(&names))
        .fetch_all(&mut **tx)
        .await?;
        let stored: HashMap<String, StoredBrand> = read_brands(&mut tx, rows)
            .await?
            .into_iter()
            .map(|s| (s.brand.name.clone(), s))
            .collect();
        let changes = Changes::between(&wanted, &stored);
        let mut summary = changes.summary;
        if summary.changed() {
            changes.write(&mut tx, &now).await?;
        }
        summary.images_changed = sync_images(&mut tx, &wanted, &now).await?;
        if summary.changed() {
            let note = format!(
                "{source}: brands +{} ~{}, marks +{} ~{}, images {}",
                summary.brands_added,
                summary.brands_updated,
                summary.marks_added,
                summary.marks_updated,
                summary.images_changed
            );
            sql::query(
                "INSERT INTO audit_log (at, actor, entity, action, note) VALUES (?, ?, 'registry', 'import', ?)",
            )
            .bind(&now)
            .bind(actor)
            .bind(note)
            .execute(&mut **tx)
            .await?;
            sql::query(
                "INSERT INTO registry_generation (id, generation) VALUES (1, 1)
                 ON CONFLICT (id) DO UPDATE SET generation = registry_generation.generation + 1",
            )
            .execute(&mut **tx)
            .await?;
        }
        tx.commit().await?;
        Ok(summary)
    }

    /// Where the registry stands now; see [`RegistryStamp`]. One small read. Anything else a
    /// matcher is built from belongs here too (and its writes bump the generation).
    pub(crate) async fn registry_stamp(&self) -> Result<RegistryStamp> {
        let mut conn = self.pool.acquire().await?;
        registry_stamp(&mut conn).await
    }

    /// Every brand's name, in order: what a brand filter offers.
    pub(crate) async fn brand_names(&self) -> Result<Vec<String>> {
        Ok(sql::query_scalar("SELECT name FROM brands ORDER BY name")
            .fetch_all(&self.pool)
            .await?)
    }

    /// A brand's id, by its name.
    pub(crate) async fn brand_id(&self, name: &str) -> Result<Option<i64>> {
        Ok(sql::query_scalar("SELECT id FROM brands WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Every brand with its lists, price floors and marks, ordered by name.
    pub async fn brands(&self) -> Result<Vec<Brand>> {
        Ok(self.brands_with_stamp().await?.1)
    }

    /// [`Store::brands`] and the registry's stamp, read together: the brands are the registry
    /// as of that stamp.
    pub(crate) async fn brands_with_stamp(&self) -> Result<(RegistryStamp, Vec<Brand>)> {
        // One read transaction: every query sees the same registry, whatever imports meanwhile.
        let mut tx = self.pool.begin().await?;
        let stamp = registry_stamp(&mut tx).await?;
        let rows: Vec<BrandColumns> = sql::query_as(
            "SELECT id, name, owner, reference_price_cny, well_known, watch_unauthorised,
                    trust_official_stores
             FROM brands ORDER BY name",
        )
        .fetch_all(&mut *tx)
        .await?;
        let brands = read_brands(&mut tx, rows).await?;
        tx.commit().await?;
        Ok((stamp, brands.into_iter().map(|s| s.brand).collect()))
    }

    /// One brand by exact name.
    pub async fn brand_by_name(&self, name: &str) -> Result<Option<Brand>> {
        // The registry is small (hundreds of brands); one shape of read keeps this simple.
        Ok(self.brands().await?.into_iter().find(|b| b.name == name))
    }
}

/// Adds each wanted brand's reference images that are new or whose file changed, as marks are:
/// an import never deletes. Images not read from their files (no hashes) are left as stored.
/// Returns how many were written.
async fn sync_images(
    tx: &mut Transaction<'_, Any>,
    wanted: &[Wanted<'_>],
    now: &str,
) -> Result<usize> {
    let with_images: Vec<&Brand> = wanted
        .iter()
        .map(|w| w.brand)
        .filter(|b| b.images.iter().any(|i| !i.hashes.is_empty()))
        .collect();
    if with_images.is_empty() {
        return Ok(0);
    }
    let names: Vec<&str> = with_images.iter().map(|b| b.name.as_str()).collect();
    let ids: HashMap<String, i64> = sql::query_as::<(String, i64)>(
        "SELECT b.name, b.id FROM json_each(?) j JOIN brands b ON b.name = j.value",
    )
    .bind(to_json(&names))
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .collect();
    let stored: HashMap<(i64, String), (String, String, i64)> =
        sql::query_as::<(i64, String, String, String, i64)>(
            "SELECT i.brand_id, i.path, i.kind, i.sha256, i.position
             FROM json_each(?) j JOIN brand_images i ON i.brand_id = CAST(j.value AS BIGINT)",
        )
        .bind(to_json(&ids.values().collect::<Vec<_>>()))
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|(b, path, kind, sha, pos)| ((b, path), (kind, sha, pos)))
        .collect();
    let mut written = 0;
    for brand in with_images {
        let Some(&brand_id) = ids.get(&brand.name) else {
            continue;
        };
        for (position, image) in brand.images.iter().enumerate() {
            if image.hashes.is_empty() {
                continue;
            }
            let now_is = (
                image.kind.as_str().to_owned(),
                image.sha256.clone(),
                position as i64,
            );
            if stored.get(&(brand_id, image.path.clone())) == Some(&now_is) {
                continue;
            }
            let hashes: Vec<u8> = image.hashes.iter().flat_map(|h| h.to_le_bytes()).collect();
            sql::query(
                "INSERT INTO brand_images
                     (brand_id, position, path, kind, sha256, hashes, content_type, bytes, imported_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (brand_id, path) DO UPDATE SET position = excluded.position,
                     kind = excluded.kind, sha256 = excluded.sha256, hashes = excluded.hashes,
                     content_type = excluded.content_type, bytes = excluded.bytes,
                     imported_at = excluded.imported_at",
            )
            .bind(brand_id)
            .bind(position as i64)
            .bind(&image.path)
            .bind(image.kind.as_str())
            .bind(&image.sha256)
            .bind(hashes)
            .bind(crate::images::content_type(&image.bytes).unwrap_or("application/octet-stream"))
            .bind(&image.bytes)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            written += 1;
        }
    }
    Ok(written)
}

async fn registry_stamp(conn: &mut AnyConnection) -> Result<RegistryStamp> {
    let generation =
        sql::query_scalar("SELECT coalesce(max(generation), 0) FROM registry_generation")
            .fetch_one(&mut *conn)
            .await?;
    Ok(RegistryStamp { generation })
}

/// A brand to import, with the marks to import for it.
struct Wanted<'a> {
    brand: &'a Brand,
    marks: Vec<&'a Mark>,
}

/// Each brand name's last entry, in the order of the last entries; the same for each brand's
/// marks by text + jurisdiction.
fn last_of_each(brands: &[Brand]) -> Vec<Wanted<'_>> {
    let last: HashMap<&str, usize> = brands
        .iter()
        .enumerate()
        .map(|(i, b)| (b.name.as_str(), i))
        .collect();
    brands
        .iter()
        .enumerate()
        .filter(|(i, b)| last[b.name.as_str()] == *i)
        .map(|(_, brand)| {
            let last: HashMap<(&str, &str), usize> = brand
                .marks
                .iter()
                .enumerate()
                .map(|(i, m)| ((m.text.as_str(), m.jurisdiction.as_str()), i))
                .collect();
            let marks = brand
                .marks
                .iter()
                .enumerate()
                .filter(|(i, m)| last[&(m.text.as_str(), m.jurisdiction.as_str())] == *i)
                .map(|(_, m)| m)
                .collect();
            Wanted { brand, marks }
        })
        .collect()
}

/// A brand as stored, with its id and its marks' ids (in the order of `brand.marks`).
struct StoredBrand {
    id: i64,
    brand: Brand,
    mark_ids: Vec<i64>,
}

/// The brands of `rows` whole: each kind of row hanging off them is one query.
async fn read_brands(
    conn: &mut AnyConnection,
    rows: Vec<BrandColumns>,
) -> Result<Vec<StoredBrand>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids = to_json(&rows.iter().map(|r| r.0).collect::<Vec<_>>());
    let mut prefs = super::alerts::brand_prefs(conn).await?;
    let mut lists: [HashMap<i64, Vec<String>>; 4] = Default::default();
    for (i, list) in LISTS.iter().enumerate() {
        let items: Vec<(i64, String)> = sql::query_as(list.select)
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?;
        for (brand_id, value) in items {
            lists[i].entry(brand_id).or_default().push(value);
        }
    }
    let mut prices: HashMap<i64, Vec<PriceFloor>> = HashMap::new();
    let price_rows: Vec<(i64, String, String, f64)> = sql::query_as(
        "SELECT p.brand_id, p.words, p.classes, p.min_price_cny FROM json_each(?) j
         JOIN brand_prices p ON p.brand_id = CAST(j.value AS BIGINT) ORDER BY p.brand_id, p.position",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    for (brand_id, words, classes, min_price_cny) in price_rows {
        let list = |column: &'static str, text: String| StoreError::Corrupt {
            table: "brand_prices",
            column,
            value: text,
        };
        let words = serde_json::from_str(&words).map_err(|_| list("words", words))?;
        let classes = serde_json::from_str(&classes).map_err(|_| list("classes", classes))?;
        prices.entry(brand_id).or_default().push(PriceFloor {
            words,
            classes,
            min_price_cny,
        });
    }
    let mut classes: HashMap<i64, Vec<u8>> = HashMap::new();
    let class_rows: Vec<(i64, i64)> = sql::query_as(
        "SELECT c.mark_id, c.class FROM json_each(?) j JOIN marks m ON m.brand_id = CAST(j.value AS BIGINT)
         JOIN mark_classes c ON c.mark_id = m.id ORDER BY c.mark_id, c.class",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    for (mark_id, class) in class_rows {
        let class = u8::try_from(class).map_err(|_| StoreError::Corrupt {
            table: "mark_classes",
            column: "class",
            value: class.to_string(),
        })?;
        classes.entry(mark_id).or_default().push(class);
    }
    let mut marks: HashMap<i64, (Vec<Mark>, Vec<i64>)> = HashMap::new();
    let mark_rows: Vec<(i64, i64, String, String, String, Option<String>)> = sql::query_as(
        "SELECT m.id, m.brand_id, m.text, m.jurisdiction, m.registration_no, m.expires
         FROM json_each(?) j JOIN marks m ON m.brand_id = CAST(j.value AS BIGINT) ORDER BY m.brand_id, m.id",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    for (id, brand_id, text, jurisdiction, registration_no, expires) in mark_rows {
        let entry = marks.entry(brand_id).or_default();
        entry.0.push(Mark {
            text,
            jurisdiction,
            registration_no,
            classes: classes.remove(&id).unwrap_or_default(),
            expires: parse_date(expires)?,
        });
        entry.1.push(id);
    }
    let mut images: HashMap<i64, Vec<BrandImage>> = HashMap::new();
    let image_rows: Vec<(i64, String, String, String, Vec<u8>)> = sql::query_as(
        "SELECT i.brand_id, i.path, i.kind, i.sha256, i.hashes FROM json_each(?) j
         JOIN brand_images i ON i.brand_id = CAST(j.value AS BIGINT) ORDER BY i.brand_id, i.position, i.id",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    for (brand_id, path, kind, sha256, hashes) in image_rows {
        let kind = kind.parse().map_err(|_| StoreError::Corrupt {
            table: "brand_images",
            column: "kind",
            value: kind,
        })?;
        let hashes = super::images::decode_hashes(&hashes);
        images.entry(brand_id).or_default().push(BrandImage {
            path,
            kind,
            sha256,
            hashes,
            bytes: Vec::new(),
        });
    }
    let [mut contacts, mut aliases, mut sellers, mut domains] = lists;
    Ok(rows
        .into_iter()
        .map(
            |(
                id,
                name,
                owner,
                reference_price_cny,
                well_known,
                watch_unauthorised,
                trust_official_stores,
            )| {
                let (marks, mark_ids) = marks.remove(&id).unwrap_or_default();
                StoredBrand {
                    id,
                    mark_ids,
                    brand: Brand {
                        name,
                        owner,
                        contacts: contacts.remove(&id).unwrap_or_default(),
                        reference_price_cny,
                        authorized_sellers: sellers.remove(&id).unwrap_or_default(),
                        aliases: aliases.remove(&id).unwrap_or_default(),
                        domains: domains.remove(&id).unwrap_or_default(),
                        marks,
                        alerts: prefs.remove(&id).unwrap_or_default(),
                        prices: prices.remove(&id).unwrap_or_default(),
                        well_known: well_known.0,
                        watch_unauthorised: watch_unauthorised.0,
                        trust_official_stores: trust_official_stores.0,
                        images: images.remove(&id).unwrap_or_default(),
                    },
                }
            },
        )
        .collect())
}

fn brand_lists(brand: &Brand) -> [&[String]; 4] {
    [
        &brand.contacts,
        &brand.aliases,
        &brand.authorized_sellers,
        &brand.domains,
    ]
}

/// The brand's columns other than its name, as the import compares and writes them.
fn brand_fields(b: &Brand) -> (&str, Option<f64>, &AlertPrefs, [bool; 3]) {
    (
        &b.owner,
        b.reference_price_cny,
        &b.alerts,
        [b.well_known, b.watch_unauthorised, b.trust_official_stores],
    )
}

impl<'a> Changes<'a> {
    /// What importing `wanted` changes, given what is `stored` of those brands (by name).
    fn between(wanted: &[Wanted<'a>], stored: &HashMap<String, StoredBrand>) -> Changes<'a> {
        let mut c = Changes::default();
        for w in wanted {
            let b = w.brand;
            let Some(s) = stored.get(&b.name) else {
                c.new_marks.extend(
                    w.marks
                        .iter()
                        .map(|&m| (BrandRef::New(c.new_brands.len()), m)),
                );
                c.new_brands.push(b);
                c.summary.brands_added += 1;
                c.summary.marks_added += w.marks.len();
                continue;
            };
            let mut changed = brand_fields(b) != brand_fields(&s.brand);
            for (i, (ours, theirs)) in brand_lists(b)
                .into_iter()
                .zip(brand_lists(&s.brand))
                .enumerate()
            {
                if ours != theirs {
                    c.replaced_lists[i].push((s.id, ours));
                    changed = true;
                }
            }
            if b.prices != s.brand.prices {
                c.replaced_prices.push((s.id, &b.prices));
                changed = true;
            }
            if changed {
                c.changed_brands.push((s.id, b));
                c.summary.brands_updated += 1;
            } else {
                c.summary.brands_unchanged += 1;
            }
            let stored_marks: HashMap<(&str, &str), (i64, &Mark)> = s
                .brand
                .marks
                .iter()
                .zip(&s.mark_ids)
                .map(|(m, &id)| ((m.text.as_str(), m.jurisdiction.as_str()), (id, m)))
                .collect();
            for &m in &w.marks {
                match stored_marks.get(&(m.text.as_str(), m.jurisdiction.as_str())) {
                    None => {
                        c.new_marks.push((BrandRef::Stored(s.id), m));
                        c.summary.marks_added += 1;
                    }
                    Some((id, old)) => {
                        if old.registration_no == m.registration_no
                            && old.expires == m.expires
                            && old.classes == m.classes
                        {
                            c.summary.marks_unchanged += 1;
                        } else {
                            c.changed_marks.push((*id, m));
                            c.summary.marks_updated += 1;
                        }
                    }
                }
            }
        }
        c
    }

    /// Writes the changes: one statement per kind of row.
    async fn write(self, tx: &mut Transaction<'_, Any>, now: &str) -> Result<()> {
        let new_ids = insert_brands(tx, &self.new_brands, now).await?;
        if !self.changed_brands.is_empty() {
            let rows: Vec<BrandRow> = self
                .changed_brands
                .iter()
                .map(|&(id, b)| brand_row(Some(id), b))
                .collect();
            sql::query(
                "UPDATE brands SET owner = j.value ->> 'owner', reference_price_cny = CAST(j.value ->> 'price' AS DOUBLE PRECISION),
                     alert_mode = j.value ->> 'alert_mode', alert_digest = j.value ->> 'alert_digest',
                     alert_language = j.value ->> 'alert_language', alert_report = j.value ->> 'alert_report',
                     well_known = CAST(CAST(j.value ->> 'well_known' AS BOOLEAN) AS INTEGER),
                     watch_unauthorised = CAST(CAST(j.value ->> 'watch_unauthorised' AS BOOLEAN) AS INTEGER),
                     trust_official_stores = CAST(CAST(j.value ->> 'trust_official_stores' AS BOOLEAN) AS INTEGER),
                     updated_at = ?
                 FROM jsonb_each(?) j WHERE brands.id = CAST(j.value ->> 'id' AS BIGINT)",
            )
            .bind(now)
            .bind(to_json(&rows))
            .execute(&mut **tx)
            .await?;
        }
        let new_brands = || self.new_brands.iter().zip(&new_ids);
        for (i, list) in LISTS.iter().enumerate() {
            let replaced = &self.replaced_lists[i];
            let rows: Vec<(i64, usize, &str)> = replaced
                .iter()
                .copied()
                .chain(new_brands().map(|(b, &id)| (id, brand_lists(b)[i])))
                .flat_map(|(id, values)| {
                    values
                        .iter()
                        .enumerate()
                        .map(move |(position, v)| (id, position, v.as_str()))
                })
                .collect();
            replace_rows(tx, list.delete, replaced, list.insert, &rows).await?;
        }
        #[derive(Serialize)]
        struct PriceRow {
            brand_id: i64,
            position: usize,
            /// JSON text, stored as is.
            words: String,
            classes: String,
            min_price_cny: f64,
        }
        let rows: Vec<PriceRow> = self
            .replaced_prices
            .iter()
            .copied()
            .chain(new_brands().map(|(b, &id)| (id, b.prices.as_slice())))
            .flat_map(|(brand_id, prices)| {
                prices
                    .iter()
                    .enumerate()
                    .map(move |(position, p)| PriceRow {
                        brand_id,
                        position,
                        words: to_json(&p.words),
                        classes: to_json(&p.classes),
                        min_price_cny: p.min_price_cny,
                    })
            })
            .collect();
        replace_rows(
            tx,
            "DELETE FROM brand_prices WHERE brand_id IN (SELECT CAST(value AS BIGINT) FROM json_each(?))",
            &self.replaced_prices,
            "INSERT INTO brand_prices (brand_id, position, words, classes, min_price_cny)
             SELECT CAST(j.value ->> 'brand_id' AS BIGINT), CAST(j.value ->> 'position' AS BIGINT), j.value ->> 'words',
                    j.value ->> 'classes', CAST(j.value ->> 'min_price_cny' AS DOUBLE PRECISION)
             FROM jsonb_each(?) j",
            &rows,
        )
        .await?;

        let brand_id = |r: BrandRef| match r {
            BrandRef::New(i) => new_ids[i],
            BrandRef::Stored(id) => id,
        };
        let new_marks: Vec<(i64, &Mark)> = self
            .new_marks
            .iter()
            .map(|&(r, m)| (brand_id(r), m))
            .collect();
        let mut classes: Vec<(i64, u8)> = Vec::new();
        for (id, m) in insert_marks(tx, &new_marks, now).await? {
            classes.extend(m.classes.iter().map(|&c| (id, c)));
        }
        if !self.changed_marks.is_empty() {
            let rows: Vec<MarkRow> = self
                .changed_marks
                .iter()
                .map(|&(id, m)| mark_row(id, m))
                .collect();
            sql::query(
                "UPDATE marks SET registration_no = j.value ->> 'registration_no',
                     expires = j.value ->> 'expires', updated_at = ?
                 FROM jsonb_each(?) j WHERE marks.id = CAST(j.value ->> 'id' AS BIGINT)",
            )
            .bind(now)
            .bind(to_json(&rows))
            .execute(&mut **tx)
            .await?;
            for &(id, m) in &self.changed_marks {
                classes.extend(m.classes.iter().map(|&c| (id, c)));
            }
        }
        replace_rows(
            tx,
            "DELETE FROM mark_classes WHERE mark_id IN (SELECT CAST(value AS BIGINT) FROM json_each(?))",
            &self.changed_marks,
            "INSERT INTO mark_classes (mark_id, class)
             SELECT CAST(j.value ->> 0 AS BIGINT), CAST(j.value ->> 1 AS BIGINT) FROM jsonb_each(?) j",
            &classes,
        )
        .await
    }
}

fn brand_row(id: Option<i64>, b: &Brand) -> BrandRow<'_> {
    BrandRow {
        id,
        name: &b.name,
        owner: &b.owner,
        price: b.reference_price_cny,
        alert_mode: b.alerts.mode.as_str(),
        alert_digest: b.alerts.digest.as_deref(),
        alert_language: b.alerts.language.as_str(),
        alert_report: b.alerts.report.as_str(),
        well_known: b.well_known,
        watch_unauthorised: b.watch_unauthorised,
        trust_official_stores: b.trust_official_stores,
    }
}

fn mark_row(id: i64, m: &Mark) -> MarkRow<'_> {
    MarkRow {
        id,
        text: &m.text,
        jurisdiction: &m.jurisdiction,
        registration_no: &m.registration_no,
        expires: m.expires.map(|d| d.format("%Y-%m-%d").to_string()),
    }
}

/// Inserts `brands`; returns their ids, in the same order.
async fn insert_brands(
    tx: &mut Transaction<'_, Any>,
    brands: &[&Brand],
    now: &str,
) -> Result<Vec<i64>> {
    if brands.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<BrandRow> = brands.iter().map(|b| brand_row(None, b)).collect();
    let inserted: Vec<(i64, String)> = sql::query_as(
        "INSERT INTO brands (name, owner, reference_price_cny, alert_mode, alert_digest,
             alert_language, alert_report, well_known, watch_unauthorised, trust_official_stores,
             created_at, updated_at)
         SELECT j.value ->> 'name', j.value ->> 'owner', CAST(j.value ->> 'price' AS DOUBLE PRECISION),
                j.value ->> 'alert_mode', j.value ->> 'alert_digest', j.value ->> 'alert_language',
                j.value ->> 'alert_report',
                CAST(CAST(j.value ->> 'well_known' AS BOOLEAN) AS INTEGER), CAST(CAST(j.value ->> 'watch_unauthorised' AS BOOLEAN) AS INTEGER),
                CAST(CAST(j.value ->> 'trust_official_stores' AS BOOLEAN) AS INTEGER), ?, ?
         FROM jsonb_each(?) j
         RETURNING id, name",
    )
    .bind(now)
    .bind(now)
    .bind(to_json(&rows))
    .fetch_all(&mut **tx)
    .await?;
    // RETURNING comes in no set order.
    let ids: HashMap<String, i64> = inserted.into_iter().map(|(id, n)| (n, id)).collect();
    brands
        .iter()
        .map(|b| ids.get(&b.name).copied().ok_or_else(not_returned))
        .collect()
}

/// Inserts marks, each with its brand's id; returns each one's id beside it.
async fn insert_marks<'m>(
    tx: &mut Transaction<'_, Any>,
    marks: &[(i64, &'m Mark)],
    now: &str,
) -> Result<Vec<(i64, &'m Mark)>> {
    if marks.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<MarkRow> = marks.iter().map(|&(id, m)| mark_row(id, m)).collect();
    let inserted: Vec<(i64, i64, String, String)> = sql::query_as(
        "INSERT INTO marks (brand_id, text, jurisdiction, registration_no, expires, created_at,
             updated_at)
         SELECT CAST(j.value ->> 'id' AS BIGINT), j.value ->> 'text', j.value ->> 'jurisdiction',
                j.value ->> 'registration_no', j.value ->> 'expires', ?, ?
         FROM jsonb_each(?) j
         RETURNING id, brand_id, text, jurisdiction",
    )
    .bind(now)
    .bind(now)
    .bind(to_json(&rows))
    .fetch_all(&mut **tx)
    .await?;
    let ids: HashMap<(i64, &str, &str), i64> = inserted
        .iter()
        .map(|(id, brand, text, jurisdiction)| {
            ((*brand, text.as_str(), jurisdiction.as_str()), *id)
        })
        .collect();
    marks
        .iter()
        .map(|&(brand, m)| {
            ids.get(&(brand, m.text.as_str(), m.jurisdiction.as_str()))
                .map(|&id| (id, m))
                .ok_or_else(not_returned)
        })
        .collect()
}

/// Deletes the rows of the owners in `replaced` (by the id each starts with), then inserts
/// `rows`; each statement takes its values as one JSON array, and is skipped when it is empty.
async fn replace_rows<T, R: Serialize>(
    tx: &mut Transaction<'_, Any>,
    delete: &'static str,
    replaced: &[(i64, T)],
    insert: &'static str,
    rows: &[R],
) -> Result<()> {
    if !replaced.is_empty() {
        let ids: Vec<i64> = replaced.iter().map(|r| r.0).collect();
        sql::query(delete)
            .bind(to_json(&ids))
            .execute(&mut **tx)
            .await?;
    }
    if !rows.is_empty() {
        sql::query(insert)
            .bind(to_json(&rows))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// A row just inserted that RETURNING did not hand back.
fn not_returned() -> StoreError {
    StoreError::Query(sqlx::Error::RowNotFound)
}

fn parse_date(value: Option<String>) -> Result<Option<NaiveDate>> {
    value
        .map(|v| {
            NaiveDate::parse_from_str(&v, "%Y-%m-%d").map_err(|_| StoreError::Corrupt {
                table: "marks",
                column: "expires",
                value: v,
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AlertMode, Language};

    async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(crate::test_support::scratch_db(dir.path()).await)
            .await
            .unwrap();
        (store, dir)
    }

    fn mark(text: &str, classes: &[u8]) -> Mark {
        Mark {
            text: text.to_owned(),
            jurisdiction: "CN".to_owned(),
            registration_no: format!("R-{text}"),
            classes: classes.to_vec(),
            expires: NaiveDate::from_ymd_opt(2031, 5, 1),
        }
    }

    /// Two brands using every field, the second with the defaults.
    fn registry() -> Vec<Brand> {
        vec![
            Brand {
                name: "Beats".to_owned(),
                owner: "Beats Electronics".to_owned(),
                contacts: vec![
                    "ip@beats.example".to_owned(),
                    "legal@beats.example".to_owned(),
                ],
                reference_price_cny: Some(1299.9),
                authorized_sellers: vec!["Beats官方旗舰店".to_owned()],
                aliases: vec!["魔音".to_owned()],
                domains: vec!["beatsbydre.com.cn".to_owned()],
                marks: vec![mark("BEATS", &[9]), mark("魔音", &[9, 28])],
                alerts: AlertPrefs {
                    mode: AlertMode::Digest,
                    digest: Some("30 7 * * 1-5".to_owned()),
                    language: Language::Zh,
                    report: crate::model::ReportSchedule::Monthly,
                },
                prices: vec![
                    PriceFloor {
                        words: vec!["耳机".to_owned(), "Earphones".to_owned()],
                        classes: vec![9],
                        min_price_cny: 99.99,
                    },
                    PriceFloor {
                        words: vec![],
                        classes: vec![28],
                        min_price_cny: 0.1,
                    },
                ],
                well_known: true,
                watch_unauthorised: false,
                trust_official_stores: false,
                images: Vec::new(),
            },
            Brand {
                name: "Lego".to_owned(),
                owner: "LEGO A/S".to_owned(),
                marks: vec![mark("LEGO", &[28])],
                ..Brand::default()
            },
        ]
    }

    #[tokio::test]
    async fn import_reads_back_whole_and_reimport_changes_nothing() {
        let (store, _dir) = store().await;
        let before = store.registry_stamp().await.unwrap();
        let s = store.import_registry(&registry(), "t", "f").await.unwrap();
        assert_eq!((s.brands_added, s.marks_added), (2, 3), "{s:?}");
        assert_eq!(store.brands().await.unwrap(), registry());
        let after = store.registry_stamp().await.unwrap();
        assert_ne!(before, after);

        let s = store.import_registry(&registry(), "t", "f").await.unwrap();
        assert_eq!(
            s,
            ImportSummary {
                brands_unchanged: 2,
                marks_unchanged: 3,
                ..ImportSummary::default()
            }
        );
        assert_eq!(store.registry_stamp().await.unwrap(), after);
        let audits: i64 = sql::query_scalar("SELECT count(*) FROM audit_log")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(audits, 1);
    }

    #[tokio::test]
    async fn each_new_field_counts_as_an_update() {
        let (store, _dir) = store().await;
        store.import_registry(&registry(), "t", "f").await.unwrap();
        let edits: [fn(&mut Brand); 6] = [
            |b| b.well_known = !b.well_known,
            |b| b.watch_unauthorised = !b.watch_unauthorised,
            |b| b.trust_official_stores = !b.trust_official_stores,
            |b| b.prices[0].min_price_cny = 100.0,
            |b| b.prices[1].words.push("积木".to_owned()),
            |b| b.prices.reverse(),
        ];
        let mut stamp = store.registry_stamp().await.unwrap();
        for edit in edits {
            let mut brands = registry();
            edit(&mut brands[0]);
            let s = store.import_registry(&brands, "t", "f").await.unwrap();
            assert_eq!((s.brands_updated, s.brands_unchanged), (1, 1), "{s:?}");
            assert_eq!(store.brands().await.unwrap(), brands);
            let now = store.registry_stamp().await.unwrap();
            assert_ne!(now, stamp);
            stamp = now;
        }
        // A brand given floors where it had none, and one whose floors are all taken away.
        let mut brands = registry();
        brands[0].prices.clear();
        brands[1].prices = registry()[0].prices.clone();
        let s = store.import_registry(&brands, "t", "f").await.unwrap();
        assert_eq!(s.brands_updated, 2, "{s:?}");
        assert_eq!(store.brands().await.unwrap(), brands);
    }

    #[tokio::test]
    async fn marks_are_added_updated_and_never_deleted() {
        let (store, _dir) = store().await;
        store.import_registry(&registry(), "t", "f").await.unwrap();
        let mut brands = registry();
        brands[0].marks.remove(0);
        brands[0].marks[0].classes = vec![9];
        brands[1].marks.push(mark("乐高", &[28]));
        brands[1].marks[0].expires = None;
        let s = store.import_registry(&brands, "t", "f").await.unwrap();
        assert_eq!(
            s,
            ImportSummary {
                brands_unchanged: 2,
                marks_added: 1,
                marks_updated: 2,
                ..ImportSummary::default()
            }
        );
        let stored = store.brands().await.unwrap();
        // BEATS is kept though the file no longer has it.
        let beats: Vec<&str> = stored[0].marks.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(beats, ["BEATS", "魔音"]);
        assert_eq!(stored[0].marks[1].classes, vec![9]);
        assert_eq!(stored[1].marks[0].expires, None);
        assert_eq!(stored[1].marks[1].text, "乐高");
    }

    #[tokio::test]
    async fn prices_read_back_to_the_bit() {
        let (store, _dir) = store().await;
        let mut brands = registry();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..500 {
            // Prices with every kind of fraction: xorshift bits scaled to 0.01..1e7.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let price = (x >> 11) as f64 / (1u64 << 53) as f64 * 10f64.powi(i % 9 - 2) + 1e-9;
            brands[0].prices.push(PriceFloor {
                words: vec![format!("w{i}")],
                classes: vec![],
                min_price_cny: price,
            });
        }
        brands[1].reference_price_cny = Some(0.1 + 0.2);
        store.import_registry(&brands, "t", "f").await.unwrap();
        assert_eq!(store.brands().await.unwrap(), brands);
        let s = store.import_registry(&brands, "t", "f").await.unwrap();
        assert!(!s.changed(), "{s:?}");
    }

    #[tokio::test]
    async fn a_repeated_name_imports_its_last_entry() {
        let (store, _dir) = store().await;
        let mut brands = registry();
        let mut again = brands[1].clone();
        again.owner = "The LEGO Group".to_owned();
        again.marks.push(Mark {
            registration_no: "R-2".to_owned(),
            ..again.marks[0].clone()
        });
        brands.push(again);
        let s = store.import_registry(&brands, "t", "f").await.unwrap();
        assert_eq!((s.brands_added, s.marks_added), (2, 3), "{s:?}");
        let stored = store.brands().await.unwrap();
        assert_eq!(stored[1].owner, "The LEGO Group");
        assert_eq!(stored[1].marks.len(), 1);
        assert_eq!(stored[1].marks[0].registration_no, "R-2");
    }
}
