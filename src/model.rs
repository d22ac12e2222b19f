//! Shared nouns that move between the pipeline's steps.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A brand owner's registry entry: who holds the rights and which marks they hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Brand {
    /// Unique name, e.g. "Nike".
    pub name: String,
    /// The rights holder named in notices.
    pub owner: String,
    /// Alert recipients.
    pub contacts: Vec<String>,
    /// Typical lowest genuine price, in CNY.
    pub reference_price_cny: Option<f64>,
    /// Exact shop names of authorised sellers.
    pub authorized_sellers: Vec<String>,
    /// Unregistered names the brand is known by.
    pub aliases: Vec<String>,
    pub marks: Vec<Mark>,
}

/// A registered trademark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    pub text: String,
    /// ISO 3166 alpha-2 code, or "WIPO" / "EU".
    pub jurisdiction: String,
    pub registration_no: String,
    /// Nice classes, 1..=45, sorted and unique.
    pub classes: Vec<u8>,
    pub expires: Option<NaiveDate>,
}

impl Mark {
    /// Whether the mark is registered in mainland China (Alibaba IPP requires it).
    pub fn is_cn(&self) -> bool {
        self.jurisdiction == "CN"
    }
}

/// A listing as extracted from a platform page.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Listing {
    /// Platform key, e.g. "taobao".
    pub platform: String,
    /// The platform's own item id (Taobao nid, JD SKU, Amazon ASIN).
    pub item_id: String,
    /// Canonical item URL in the platform's real form.
    pub url: String,
    pub title: String,
    /// Shop or seller name.
    pub seller: Option<String>,
    /// Lowest displayed price.
    pub price: Option<f64>,
    /// ISO 4217, "CNY" on every platform we watch.
    pub currency: String,
    pub category: Option<String>,
    /// Whether the platform marked it as an advertisement.
    #[serde(default)]
    pub is_ad: bool,
}
