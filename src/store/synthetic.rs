//! Registry ids for synthetic review data (benchmarks and UI tests).

use super::sql;
use super::{Result, Store};

/// A brand's id and name, with its marks as (id, text, jurisdiction).
pub(crate) type BrandMarks = (i64, String, Vec<(i64, String, String)>);

impl Store {
    /// Brand ids by name, and each brand's marks as (id, text, jurisdiction).
    pub(crate) async fn brand_mark_ids(&self) -> Result<Vec<BrandMarks>> {
        let brands: Vec<(i64, String)> = sql::query_as("SELECT id, name FROM brands ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let marks: Vec<(i64, i64, String, String)> =
            sql::query_as("SELECT id, brand_id, text, jurisdiction FROM marks ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        Ok(brands
            .into_iter()
            .map(|(id, name)| {
                let ms = marks
                    .iter()
                    .filter(|m| m.1 == id)
                    .map(|m| (m.0, m.2.clone(), m.3.clone()))
                    .collect();
                (id, name, ms)
            })
            .collect())
    }
}
