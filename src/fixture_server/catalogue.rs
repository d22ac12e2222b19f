//! The listing catalogue the fixture platforms are rendered from, and scale mode.

use std::collections::HashSet;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::FixtureError;

/// One catalogue line (`fixtures/listings.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogueListing {
    pub platform: String,
    pub item_id: String,
    /// Canonical item URL in the platform's real form.
    #[serde(default)]
    pub url: String,
    pub title: String,
    pub seller: String,
    #[serde(default)]
    pub seller_id: String,
    pub price: f64,
    #[serde(default)]
    pub price_max: Option<f64>,
    #[serde(default)]
    pub category: Vec<String>,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub sales: u64,
    pub keywords: Vec<String>,
    #[serde(default)]
    pub ad: bool,
    #[serde(default = "one")]
    pub images: u32,
    /// What the main image shows when it reuses a brand's photo: a reference image and its
    /// edits (`"nike-1 crop4 mirror"`, see `photos::PhotoSpec`). Without one, its own photo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo: Option<String>,
}

fn one() -> u32 {
    1
}

/// Reads a JSONL catalogue; errors name the file and line.
pub(crate) fn load_catalogue(path: &Path) -> Result<Vec<CatalogueListing>, FixtureError> {
    let text = std::fs::read_to_string(path).map_err(|source| FixtureError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| FixtureError::Catalogue {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let l: CatalogueListing = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        if let Some(photo) = &l.photo {
            super::photos::PhotoSpec::parse(photo).map_err(|e| bad(format!("photo: {e}")))?;
        }
        out.push(l);
    }
    Ok(out)
}

/// FNV-1a, for stable per-string seeds (std's hasher may change between releases).
pub(crate) fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// A new item id in the same form as `id` (same length of digits, or an ASIN).
fn derive_id(id: &str, rng: &mut ChaCha8Rng) -> String {
    if id.len() == 10 && id.starts_with("B0") {
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let tail: String = (0..8)
            .map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char)
            .collect();
        return format!("B0{tail}");
    }
    let len = id.len().clamp(6, 18);
    let mut s = String::with_capacity(len);
    s.push(char::from(b'1' + rng.random_range(0..9u8)));
    for _ in 1..len {
        s.push(char::from(b'0' + rng.random_range(0..10u8)));
    }
    s
}

/// The catalogue `scale` times over: round 0 is the catalogue itself, each further round a
/// copy with new ids and prices moved by up to 10%, all drawn from `seed`.
pub(crate) fn scale_catalogue(
    base: &[CatalogueListing],
    scale: u32,
    seed: u64,
) -> Vec<CatalogueListing> {
    let scale = scale.max(1);
    let mut seen: HashSet<(String, String)> = base
        .iter()
        .map(|l| (l.platform.clone(), l.item_id.clone()))
        .collect();
    let mut out = base.to_vec();
    for round in 1..scale {
        for l in base {
            let mut rng = ChaCha8Rng::seed_from_u64(fnv(&[
                &seed.to_le_bytes(),
                &round.to_le_bytes(),
                l.platform.as_bytes(),
                l.item_id.as_bytes(),
            ]));
            let mut id = derive_id(&l.item_id, &mut rng);
            while !seen.insert((l.platform.clone(), id.clone())) {
                id = derive_id(&l.item_id, &mut rng);
            }
            let factor = rng.random_range(0.9..1.1);
            let move_price = |p: f64| ((p * factor) * 100.0).round() / 100.0;
            let mut d = l.clone();
            d.url = d.url.replace(&l.item_id, &id);
            d.item_id = id;
            d.price = move_price(l.price);
            d.price_max = l.price_max.map(move_price).map(|m| m.max(d.price));
            d.sales = rng.random_range(0..=l.sales.saturating_mul(2).max(10));
            out.push(d);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(platform: &str, id: &str) -> CatalogueListing {
        CatalogueListing {
            platform: platform.into(),
            item_id: id.into(),
            url: String::new(),
            title: "t".into(),
            seller: "s".into(),
            seller_id: "1".into(),
            price: 100.0,
            price_max: None,
            category: vec![],
            location: String::new(),
            sales: 5,
            photo: None,
            keywords: vec!["nike".into()],
            ad: false,
            images: 2,
        }
    }

    #[test]
    fn scale_is_deterministic_and_keeps_id_forms() {
        let base = vec![
            item("taobao", "652837461234"),
            item("amazon_cn", "B0DSTL8984"),
        ];
        let a = scale_catalogue(&base, 3, 7);
        let b = scale_catalogue(&base, 3, 7);
        assert_eq!(a, b);
        assert_eq!(a.len(), 6);
        assert_ne!(a, scale_catalogue(&base, 3, 8));
        for l in &a {
            match l.platform.as_str() {
                "taobao" => {
                    assert!(l.item_id.len() == 12 && l.item_id.bytes().all(|b| b.is_ascii_digit()))
                }
                _ => assert!(l.item_id.len() == 10 && l.item_id.starts_with("B0")),
            }
        }
        let ids: HashSet<_> = a.iter().map(|l| &l.item_id).collect();
        assert_eq!(ids.len(), 6);
    }
}
