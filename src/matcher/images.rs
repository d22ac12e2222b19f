//! Brands' reference images, found by perceptual hash within a Hamming distance.
//!
//! Multi-index hashing (Norouzi, Punjani and Fleet): each 64-bit hash is cut into four 16-bit
//! parts, each part indexed exactly. Two hashes within distance `d` agree within `d / 4` bits
//! on at least one part, so a query probes, per part, every value that close and checks the
//! few candidates it finds. A BK-tree does poorly here: perceptual hashes of unrelated images
//! sit about 32 bits apart, so nearly every branch stays within reach of a query.

use rustc_hash::{FxHashMap, FxHashSet};

use crate::images::distance;

/// One indexed hash: a reference image, as it is or mirrored.
#[derive(Debug, Clone)]
pub(crate) struct RefHash {
    /// Index of the brand in the matcher's brands.
    pub brand: usize,
    /// Index of the image in the brand's `images`.
    pub image: usize,
    pub mirrored: bool,
}

/// A reference image near a listing's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ImageHit {
    pub brand: usize,
    pub image: usize,
    pub mirrored: bool,
    pub distance: u32,
}

#[derive(Debug, Default)]
pub(crate) struct ImageIndex {
    hashes: Vec<u64>,
    refs: Vec<RefHash>,
    parts: [FxHashMap<u16, Vec<u32>>; 4],
}

fn part(hash: u64, i: usize) -> u16 {
    (hash >> (16 * i)) as u16
}

/// Every 16-bit value within `radius` flipped bits of `v`, `v` first.
fn neighbours(v: u16, radius: u32, out: &mut Vec<u16>) {
    out.clear();
    out.push(v);
    if radius >= 1 {
        for a in 0..16 {
            out.push(v ^ (1 << a));
        }
    }
    if radius >= 2 {
        for a in 0..16 {
            for b in a + 1..16 {
                out.push(v ^ (1 << a) ^ (1 << b));
            }
        }
    }
    if radius >= 3 {
        for a in 0..16 {
            for b in a + 1..16 {
                for c in b + 1..16 {
                    out.push(v ^ (1 << a) ^ (1 << b) ^ (1 << c));
                }
            }
        }
    }
}

impl ImageIndex {
    pub(crate) fn push(&mut self, hash: u64, r: RefHash) {
        let at = self.hashes.len() as u32;
        self.hashes.push(hash);
        self.refs.push(r);
        for (i, table) in self.parts.iter_mut().enumerate() {
            table.entry(part(hash, i)).or_default().push(at);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.hashes.len()
    }

    /// The nearest reference per brand within `max` bits of `hash` (at most 15), nearest first.
    pub(crate) fn near(&self, hash: u64, max: u32) -> Vec<ImageHit> {
        let max = max.min(15);
        let mut seen = FxHashSet::default();
        let mut hits: Vec<ImageHit> = Vec::new();
        let mut probes = Vec::new();
        for (i, table) in self.parts.iter().enumerate() {
            neighbours(part(hash, i), max / 4, &mut probes);
            for p in &probes {
                let Some(list) = table.get(p) else { continue };
                for &at in list {
                    if !seen.insert(at) {
                        continue;
                    }
                    let d = distance(hash, self.hashes[at as usize]);
                    if d > max {
                        continue;
                    }
                    let r = &self.refs[at as usize];
                    let hit = ImageHit {
                        brand: r.brand,
                        image: r.image,
                        mirrored: r.mirrored,
                        distance: d,
                    };
                    match hits.iter_mut().find(|h| h.brand == r.brand) {
                        Some(h) if h.distance > d => *h = hit,
                        Some(_) => {}
                        None => hits.push(hit),
                    }
                }
            }
        }
        hits.sort_by_key(|h| (h.distance, h.brand));
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn finds_exactly_what_a_linear_scan_finds() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut index = ImageIndex::default();
        let hashes: Vec<u64> = (0..5000).map(|_| rng.random()).collect();
        for (i, &h) in hashes.iter().enumerate() {
            index.push(
                h,
                RefHash {
                    brand: i,
                    image: 0,
                    mirrored: false,
                },
            );
        }
        for q in 0..300 {
            // Queries near stored hashes, and random ones.
            let mut h: u64 = if q % 2 == 0 {
                hashes[q * 7]
            } else {
                rng.random()
            };
            for _ in 0..(q % 14) {
                h ^= 1 << rng.random_range(0..64);
            }
            for max in [0, 5, 10, 13] {
                let mut want: Vec<(usize, u32)> = hashes
                    .iter()
                    .enumerate()
                    .map(|(i, &s)| (i, distance(h, s)))
                    .filter(|&(_, d)| d <= max)
                    .collect();
                want.sort_by_key(|&(i, d)| (d, i));
                let got: Vec<(usize, u32)> = index
                    .near(h, max)
                    .iter()
                    .map(|x| (x.brand, x.distance))
                    .collect();
                assert_eq!(got, want, "query {q}, max {max}");
            }
        }
    }

    #[test]
    fn keeps_the_nearest_image_per_brand() {
        let mut index = ImageIndex::default();
        index.push(
            0b1111,
            RefHash {
                brand: 0,
                image: 0,
                mirrored: false,
            },
        );
        index.push(
            0b0001,
            RefHash {
                brand: 0,
                image: 1,
                mirrored: true,
            },
        );
        index.push(
            0b0000_1111_0000,
            RefHash {
                brand: 1,
                image: 0,
                mirrored: false,
            },
        );
        let hits = index.near(0, 8);
        assert_eq!(hits.len(), 2);
        assert_eq!(
            (
                hits[0].brand,
                hits[0].image,
                hits[0].mirrored,
                hits[0].distance
            ),
            (0, 1, true, 1)
        );
        assert_eq!((hits[1].brand, hits[1].distance), (1, 4));
    }
}

#[cfg(test)]
mod with_the_demo_registry {
    use crate::matcher::{Item, Matcher};

    #[test]
    fn a_reused_photo_alone_makes_a_listing_suspect() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/brands.toml");
        let brands = crate::registry::load_file(std::path::Path::new(path)).unwrap();
        let adidas = brands.iter().find(|b| b.name == "Adidas").unwrap();
        assert_eq!(adidas.images.len(), 3);
        let photo = adidas.images[0].hashes[0] ^ 0b101;
        let m = Matcher::new(&brands).unwrap();
        let item = Item {
            title: "运动裤 男 休闲 收口 束脚 春秋",
            seller: "优选好物店",
            price: Some(69.0),
            currency: "CNY",
            category: Some("运动服/休闲服装 > 运动裤"),
            platform: "jd",
            self_operated: false,
            images: &[photo],
        };
        let v = m.check(&item);
        assert_eq!(v.brand.as_deref(), Some("Adidas"), "{v:?}");
        assert!(v.verdict.is_flagged(), "{v:?}");
        let reason = v
            .reasons
            .iter()
            .find(|r| r.code == crate::model::ReasonCode::ImageMatch)
            .unwrap();
        assert!(
            reason.detail.contains("images/adidas-1.jpg") && reason.detail.contains("distance 2"),
            "{}",
            reason.detail
        );
        // Without the photo, nothing ties it to the brand.
        assert!(
            !m.check(&Item {
                images: &[],
                ..item
            })
            .verdict
            .is_flagged()
        );
    }
}
