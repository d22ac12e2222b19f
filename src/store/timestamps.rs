//! Trusted timestamp tokens over the evidence chain, as stored: which record each one covers
//! and the TSA's reply as received. Checking them is `crate::timestamp`'s work.

use super::sql;
use serde::Serialize;

use super::{Result, Store, now};

/// A stored token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub(crate) struct StoredTimestamp {
    pub id: i64,
    /// The last record covered: the token's imprint is its chain hash.
    pub evidence_id: i64,
    pub chain_hash: String,
    pub tsa_url: String,
    pub gen_time: String,
    pub tsa_name: String,
    /// The TimeStampResp, DER, as the TSA sent it.
    #[serde(skip)]
    pub reply: Vec<u8>,
    pub stamped_at: String,
}

/// A token to store: what it covers and what the TSA said.
pub(crate) struct NewTimestamp<'a> {
    pub evidence_id: i64,
    pub chain_hash: &'a str,
    pub tsa_url: &'a str,
    pub gen_time: &'a str,
    pub tsa_name: &'a str,
    pub reply: &'a [u8],
}

/// The token row's columns, for queries that must be string literals.
macro_rules! select_timestamps {
    ($rest:literal) => {
        concat!(
            "SELECT id, evidence_id, chain_hash, tsa_url, gen_time, tsa_name, reply, stamped_at
             FROM evidence_timestamps ",
            $rest
        )
    };
}

impl Store {
    /// The chain's last record and its chain hash; `None` while the chain is empty.
    pub(crate) async fn chain_head(&self) -> Result<Option<(i64, String)>> {
        Ok(
            sql::query_as("SELECT id, chain_hash FROM evidence ORDER BY id DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The newest token, if any.
    pub(crate) async fn last_timestamp(&self) -> Result<Option<StoredTimestamp>> {
        Ok(
            sql::query_as(select_timestamps!("ORDER BY id DESC LIMIT 1"))
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub(crate) async fn add_timestamp(&self, t: &NewTimestamp<'_>) -> Result<i64> {
        let id = sql::query_scalar(
            "INSERT INTO evidence_timestamps
             (evidence_id, chain_hash, tsa_url, gen_time, tsa_name, reply, stamped_at)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(t.evidence_id)
        .bind(t.chain_hash)
        .bind(t.tsa_url)
        .bind(t.gen_time)
        .bind(t.tsa_name)
        .bind(t.reply)
        .bind(now())
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// Every token, oldest first.
    pub(crate) async fn timestamps(&self) -> Result<Vec<StoredTimestamp>> {
        Ok(
            sql::query_as(select_timestamps!("ORDER BY evidence_id, id"))
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// The earliest token that covers record `evidence_id`: the first one over it or a later
    /// record.
    pub(crate) async fn covering_timestamp(
        &self,
        evidence_id: i64,
    ) -> Result<Option<StoredTimestamp>> {
        Ok(sql::query_as(select_timestamps!(
            "WHERE evidence_id >= ? ORDER BY evidence_id, id LIMIT 1"
        ))
        .bind(evidence_id)
        .fetch_optional(&self.pool)
        .await?)
    }
}
