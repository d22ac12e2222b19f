//! The domain watch's findings: each candidate found registered, its DNS records, when it was
//! first and last seen, and the listing its home page was judged as.

use serde::Serialize;

use super::{Result, Store, now, sql};

/// A registered domain as one run found it.
#[derive(Debug, Clone)]
pub(crate) struct DomainSighting<'a> {
    pub domain: &'a str,
    pub display: &'a str,
    pub brand: &'a str,
    pub rule: &'a str,
    pub source: &'a str,
    /// `web`, `mail_only` or `parked`.
    pub state: &'a str,
    /// JSON: the A, AAAA, MX and NS records.
    pub records: String,
    /// The platform key its listing is stored under, when its page was stored.
    pub listing: Option<(&'a str, &'a str)>,
}

/// A stored domain, with its listing's verdict.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DomainRow {
    pub id: i64,
    pub domain: String,
    pub display: String,
    pub brand: String,
    pub rule: String,
    pub source: String,
    pub state: String,
    /// JSON object of record lists (`a`, `aaaa`, `mx`, `ns`).
    pub records: String,
    pub first_seen: String,
    pub last_seen: String,
    pub last_checked: String,
    pub listing_id: Option<i64>,
    /// The home page's verdict (`infringing`, `suspect`, `clear`), when judged.
    pub verdict: Option<String>,
    pub title: Option<String>,
    pub registered_on: Option<String>,
    pub registrant: Option<String>,
}

/// The columns of a [`DomainRow`], for `concat!` with a statement's WHERE.
macro_rules! domain_rows {
    () => {
        "SELECT d.id, d.domain, d.display, b.name AS brand, d.rule, d.source, d.state,
                d.records, d.first_seen, d.last_seen, d.last_checked, d.listing_id,
                m.verdict, l.title, d.registered_on, d.registrant
         FROM domain_names d
         JOIN brands b ON b.id = d.brand_id
         LEFT JOIN listings l ON l.id = d.listing_id
         LEFT JOIN matches m ON m.listing_id = d.listing_id"
    };
}

impl Store {
    /// Records a sighting: a new domain is inserted (first seen now), a known one updated.
    /// Returns true for a new one. A domain that was `gone` and is back counts as new.
    pub(crate) async fn record_domain(&self, s: &DomainSighting<'_>) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let at = now();
        let before: Option<String> =
            sql::query_scalar("SELECT state FROM domain_names WHERE domain = ?")
                .bind(s.domain)
                .fetch_optional(&mut **tx)
                .await?;
        let (platform, item) = s.listing.unzip();
        sql::query(
            "INSERT INTO domain_names (domain, display, brand_id, rule, source, state, records,
                                       first_seen, last_seen, last_checked, listing_id)
             SELECT ?, ?, b.id, ?, ?, ?, ?, ?, ?, ?,
                    (SELECT l.id FROM listings l WHERE l.platform = ? AND l.item_id = ?)
             FROM brands b WHERE b.name = ?
             ON CONFLICT (domain) DO UPDATE SET
                 state = excluded.state, records = excluded.records,
                 last_seen = excluded.last_seen, last_checked = excluded.last_checked,
                 first_seen = CASE WHEN domain_names.state = 'gone' THEN excluded.first_seen
                                   ELSE domain_names.first_seen END,
                 listing_id = COALESCE(excluded.listing_id, domain_names.listing_id)",
        )
        .bind(s.domain)
        .bind(s.display)
        .bind(s.rule)
        .bind(s.source)
        .bind(s.state)
        .bind(&s.records)
        .bind(&at)
        .bind(&at)
        .bind(&at)
        .bind(platform)
        .bind(item)
        .bind(s.brand)
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(before.is_none_or(|state| state == "gone"))
    }

    /// Marks stored domains that no longer resolve (NXDOMAIN) as `gone`; returns how many were
    /// registered until now.
    pub(crate) async fn domains_gone(&self, domains: &[String]) -> Result<u64> {
        if domains.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let done = sql::query(
            "UPDATE domain_names SET state = 'gone', last_checked = ?
             WHERE state <> 'gone' AND domain IN (SELECT value FROM json_each(?))",
        )
        .bind(now())
        .bind(super::to_json(&domains))
        .execute(&mut **tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(done)
    }

    /// The stored domains, newest first; only `brand`'s when given.
    pub async fn domains(&self, brand: Option<&str>) -> Result<Vec<DomainRow>> {
        Ok(sql::query_as(concat!(
            domain_rows!(),
            " WHERE ? IS NULL OR b.name = ? ORDER BY d.first_seen DESC, d.domain"
        ))
        .bind(brand)
        .bind(brand)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The stored domain named `domain` (ASCII or as displayed).
    pub async fn domain(&self, domain: &str) -> Result<Option<DomainRow>> {
        let domain = domain.trim_end_matches('.').to_lowercase();
        Ok(sql::query_as(concat!(
            domain_rows!(),
            " WHERE d.domain = ? OR d.display = ?"
        ))
        .bind(&domain)
        .bind(&domain)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Sets what WHOIS says: when the domain was registered, and by whom. Both are the
    /// legal team's input; the CNDRP deadline runs from the registration date.
    pub async fn set_domain_registration(
        &self,
        domain: &str,
        registered_on: Option<chrono::NaiveDate>,
        registrant: Option<&str>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sql::query(
            "UPDATE domain_names SET registered_on = COALESCE(?, registered_on),
                                     registrant = COALESCE(?, registrant)
             WHERE domain = ? OR display = ?",
        )
        .bind(registered_on.map(|d| d.to_string()))
        .bind(registrant)
        .bind(domain)
        .bind(domain)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(done > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TestDb;

    #[tokio::test]
    async fn first_seen_stays_until_the_domain_is_gone() {
        let db = TestDb::new().await;
        let sighting = DomainSighting {
            domain: "naike.cn",
            display: "naike.cn",
            brand: "Nike",
            rule: "pinyin",
            source: "耐克",
            state: "web",
            records: r#"{"a":["127.0.0.1"]}"#.to_owned(),
            listing: None,
        };
        assert!(db.store.record_domain(&sighting).await.unwrap());
        let first = db.store.domain("naike.cn").await.unwrap().unwrap();
        assert!(!db.store.record_domain(&sighting).await.unwrap());
        let again = db.store.domain("naike.cn").await.unwrap().unwrap();
        assert_eq!(first.first_seen, again.first_seen);
        assert_eq!(
            (again.brand.as_str(), again.state.as_str()),
            ("Nike", "web")
        );

        assert_eq!(
            db.store
                .domains_gone(&["naike.cn".to_owned()])
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            db.store.domain("naike.cn").await.unwrap().unwrap().state,
            "gone"
        );
        // Registered again later: news again.
        assert!(db.store.record_domain(&sighting).await.unwrap());
        assert_eq!(db.store.domains(Some("Nike")).await.unwrap().len(), 1);
        assert!(db.store.domains(Some("Sony")).await.unwrap().is_empty());

        let day = chrono::NaiveDate::from_ymd_opt(2025, 3, 1);
        assert!(
            db.store
                .set_domain_registration("naike.cn", day, Some("某某公司"))
                .await
                .unwrap()
        );
        let d = db.store.domain("naike.cn").await.unwrap().unwrap();
        assert_eq!(d.registered_on.as_deref(), Some("2025-03-01"));
        assert_eq!(d.registrant.as_deref(), Some("某某公司"));
    }
}
