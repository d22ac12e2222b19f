//! The brand registry: brands, their lists, marks and Nice classes.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::{Sqlite, Transaction};

use super::{Result, Store, StoreError, now};
use crate::model::{Brand, Mark};

/// What an import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub brands_added: usize,
    pub brands_updated: usize,
    pub brands_unchanged: usize,
    pub marks_added: usize,
    pub marks_updated: usize,
    pub marks_unchanged: usize,
}

impl ImportSummary {
    pub fn changed(&self) -> bool {
        self.brands_added + self.brands_updated + self.marks_added + self.marks_updated > 0
    }
}

/// One of the ordered lists hanging off a brand. Identifiers can't be bound, so each list
/// carries its own static SQL.
struct ListTable {
    select: &'static str,
    delete: &'static str,
    insert: &'static str,
}

/// Contacts, aliases and authorised sellers, in the order [`brand_lists`] returns them.
const LISTS: [ListTable; 3] = [
    ListTable {
        select: "SELECT email FROM brand_contacts WHERE brand_id = ? ORDER BY position",
        delete: "DELETE FROM brand_contacts WHERE brand_id = ?",
        insert: "INSERT INTO brand_contacts (brand_id, position, email) VALUES (?, ?, ?)",
    },
    ListTable {
        select: "SELECT alias FROM brand_aliases WHERE brand_id = ? ORDER BY position",
        delete: "DELETE FROM brand_aliases WHERE brand_id = ?",
        insert: "INSERT INTO brand_aliases (brand_id, position, alias) VALUES (?, ?, ?)",
    },
    ListTable {
        select: "SELECT seller FROM authorized_sellers WHERE brand_id = ? ORDER BY position",
        delete: "DELETE FROM authorized_sellers WHERE brand_id = ?",
        insert: "INSERT INTO authorized_sellers (brand_id, position, seller) VALUES (?, ?, ?)",
    },
];

impl Store {
    /// Upserts brands by name and their marks by text + jurisdiction, all or nothing.
    ///
    /// Marks and brands missing from `brands` are kept: an import adds and updates, it never
    /// deletes. `source` (e.g. the file name) goes into the audit log when anything changed.
    pub async fn import_registry(
        &self,
        brands: &[Brand],
        actor: &str,
        source: &str,
    ) -> Result<ImportSummary> {
        let mut tx = self.begin_write().await?;
        let now = now();
        let mut summary = ImportSummary::default();
        for brand in brands {
            let existing: Option<(i64, String, Option<f64>)> =
                sqlx::query_as("SELECT id, owner, reference_price_cny FROM brands WHERE name = ?")
                    .bind(&brand.name)
                    .fetch_optional(&mut **tx)
                    .await?;
            let brand_id = match existing {
                None => {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO brands (name, owner, reference_price_cny, created_at, updated_at)
                         VALUES (?, ?, ?, ?, ?) RETURNING id",
                    )
                    .bind(&brand.name)
                    .bind(&brand.owner)
                    .bind(brand.reference_price_cny)
                    .bind(&now)
                    .bind(&now)
                    .fetch_one(&mut **tx)
                    .await?;
                    for (list, values) in LISTS.iter().zip(brand_lists(brand)) {
                        replace_list(&mut tx, list, id, values).await?;
                    }
                    super::alerts::set_brand_prefs(&mut tx, id, &brand.alerts).await?;
                    summary.brands_added += 1;
                    id
                }
                Some((id, owner, price)) => {
                    let mut changed = owner != brand.owner || price != brand.reference_price_cny;
                    if changed {
                        sqlx::query("UPDATE brands SET owner = ?, reference_price_cny = ?, updated_at = ? WHERE id = ?")
                            .bind(&brand.owner)
                            .bind(brand.reference_price_cny)
                            .bind(&now)
                            .bind(id)
                            .execute(&mut **tx)
                            .await?;
                    }
                    for (list, values) in LISTS.iter().zip(brand_lists(brand)) {
                        if read_list(&mut tx, list, id).await? != values {
                            replace_list(&mut tx, list, id, values).await?;
                            changed = true;
                        }
                    }
                    if super::alerts::update_brand_prefs(&mut tx, id, &brand.alerts).await? {
                        changed = true;
                    }
                    if changed {
                        touch_brand(&mut tx, id, &now).await?;
                        summary.brands_updated += 1;
                    } else {
                        summary.brands_unchanged += 1;
                    }
                    id
                }
            };
            for mark in &brand.marks {
                upsert_mark(&mut tx, brand_id, mark, &now, &mut summary).await?;
            }
        }
        if summary.changed() {
            let note = format!(
                "{source}: brands +{} ~{}, marks +{} ~{}",
                summary.brands_added,
                summary.brands_updated,
                summary.marks_added,
                summary.marks_updated
            );
            sqlx::query(
                "INSERT INTO audit_log (at, actor, entity, action, note) VALUES (?, ?, 'registry', 'import', ?)",
            )
            .bind(&now)
            .bind(actor)
            .bind(note)
            .execute(&mut **tx)
            .await?;
        }
        tx.commit().await?;
        Ok(summary)
    }

    /// Every brand's name, in order: what a brand filter offers.
    pub(crate) async fn brand_names(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT name FROM brands ORDER BY name")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Every brand with its lists and marks, ordered by name.
    pub async fn brands(&self) -> Result<Vec<Brand>> {
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<(i64, String, String, Option<f64>)> =
            sqlx::query_as("SELECT id, name, owner, reference_price_cny FROM brands ORDER BY name")
                .fetch_all(&mut *conn)
                .await?;
        let mut prefs = super::alerts::brand_prefs(&mut conn).await?;
        let mut lists: [HashMap<i64, Vec<String>>; 3] = Default::default();
        for (i, sql) in [
            "SELECT brand_id, email FROM brand_contacts ORDER BY brand_id, position",
            "SELECT brand_id, alias FROM brand_aliases ORDER BY brand_id, position",
            "SELECT brand_id, seller FROM authorized_sellers ORDER BY brand_id, position",
        ]
        .into_iter()
        .enumerate()
        {
            let items: Vec<(i64, String)> = sqlx::query_as(sql).fetch_all(&mut *conn).await?;
            for (brand_id, value) in items {
                lists[i].entry(brand_id).or_default().push(value);
            }
        }
        let mut classes: HashMap<i64, Vec<u8>> = HashMap::new();
        let class_rows: Vec<(i64, i64)> =
            sqlx::query_as("SELECT mark_id, class FROM mark_classes ORDER BY mark_id, class")
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
        let mut marks: HashMap<i64, Vec<Mark>> = HashMap::new();
        let mark_rows: Vec<(i64, i64, String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT id, brand_id, text, jurisdiction, registration_no, expires FROM marks ORDER BY brand_id, id",
        )
        .fetch_all(&mut *conn)
        .await?;
        for (id, brand_id, text, jurisdiction, registration_no, expires) in mark_rows {
            marks.entry(brand_id).or_default().push(Mark {
                text,
                jurisdiction,
                registration_no,
                classes: classes.remove(&id).unwrap_or_default(),
                expires: parse_date(expires)?,
            });
        }
        let [mut contacts, mut aliases, mut sellers] = lists;
        Ok(rows
            .into_iter()
            .map(|(id, name, owner, reference_price_cny)| Brand {
                name,
                owner,
                contacts: contacts.remove(&id).unwrap_or_default(),
                reference_price_cny,
                authorized_sellers: sellers.remove(&id).unwrap_or_default(),
                aliases: aliases.remove(&id).unwrap_or_default(),
                marks: marks.remove(&id).unwrap_or_default(),
                alerts: prefs.remove(&id).unwrap_or_default(),
                ..Brand::default()
            })
            .collect())
    }

    /// One brand by exact name.
    pub async fn brand_by_name(&self, name: &str) -> Result<Option<Brand>> {
        // The registry is small (hundreds of brands); one shape of read keeps this simple.
        Ok(self.brands().await?.into_iter().find(|b| b.name == name))
    }
}

fn brand_lists(brand: &Brand) -> [&[String]; 3] {
    [&brand.contacts, &brand.aliases, &brand.authorized_sellers]
}

async fn read_list(
    tx: &mut Transaction<'_, Sqlite>,
    list: &ListTable,
    brand_id: i64,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(list.select)
        .bind(brand_id)
        .fetch_all(&mut **tx)
        .await?)
}

async fn replace_list(
    tx: &mut Transaction<'_, Sqlite>,
    list: &ListTable,
    brand_id: i64,
    values: &[String],
) -> Result<()> {
    sqlx::query(list.delete)
        .bind(brand_id)
        .execute(&mut **tx)
        .await?;
    for (position, value) in values.iter().enumerate() {
        sqlx::query(list.insert)
            .bind(brand_id)
            .bind(position as i64)
            .bind(value)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn touch_brand(tx: &mut Transaction<'_, Sqlite>, brand_id: i64, now: &str) -> Result<()> {
    sqlx::query("UPDATE brands SET updated_at = ? WHERE id = ?")
        .bind(now)
        .bind(brand_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn upsert_mark(
    tx: &mut Transaction<'_, Sqlite>,
    brand_id: i64,
    mark: &Mark,
    now: &str,
    summary: &mut ImportSummary,
) -> Result<()> {
    let expires = mark.expires.map(|d| d.format("%Y-%m-%d").to_string());
    let existing: Option<(i64, String, Option<String>)> = sqlx::query_as(
        "SELECT id, registration_no, expires FROM marks WHERE brand_id = ? AND text = ? AND jurisdiction = ?",
    )
    .bind(brand_id)
    .bind(&mark.text)
    .bind(&mark.jurisdiction)
    .fetch_optional(&mut **tx)
    .await?;
    let mark_id = match existing {
        None => {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO marks (brand_id, text, jurisdiction, registration_no, expires, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            )
            .bind(brand_id)
            .bind(&mark.text)
            .bind(&mark.jurisdiction)
            .bind(&mark.registration_no)
            .bind(&expires)
            .bind(now)
            .bind(now)
            .fetch_one(&mut **tx)
            .await?;
            summary.marks_added += 1;
            id
        }
        Some((id, registration_no, old_expires)) => {
            let classes: Vec<i64> = sqlx::query_scalar(
                "SELECT class FROM mark_classes WHERE mark_id = ? ORDER BY class",
            )
            .bind(id)
            .fetch_all(&mut **tx)
            .await?;
            let same_classes = classes
                .iter()
                .copied()
                .eq(mark.classes.iter().map(|&c| i64::from(c)));
            if registration_no == mark.registration_no && old_expires == expires && same_classes {
                summary.marks_unchanged += 1;
                return Ok(());
            }
            sqlx::query(
                "UPDATE marks SET registration_no = ?, expires = ?, updated_at = ? WHERE id = ?",
            )
            .bind(&mark.registration_no)
            .bind(&expires)
            .bind(now)
            .bind(id)
            .execute(&mut **tx)
            .await?;
            sqlx::query("DELETE FROM mark_classes WHERE mark_id = ?")
                .bind(id)
                .execute(&mut **tx)
                .await?;
            summary.marks_updated += 1;
            id
        }
    };
    for class in &mark.classes {
        sqlx::query("INSERT INTO mark_classes (mark_id, class) VALUES (?, ?)")
            .bind(mark_id)
            .bind(i64::from(*class))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
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
