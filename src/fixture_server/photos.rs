//! Product photos for the fixture platforms, drawn deterministically.
//!
//! Brands' official photos and logos are committed under `fixtures/images/` (drawn by
//! [`reference`], written by `markwatch fixtures images`) and named by the demo registry. A
//! catalogue line's `photo` says what its main image shows: a reference reused with the edits
//! counterfeiters make (`"nike-1 crop4 mirror jpeg60"`), or, without one, a photo of its own
//! drawn from its item id. Honest listings, look-alikes and accessories all have their own.

use std::path::Path;

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::catalogue::fnv;

/// Side of committed reference images and of originals before the CDN resizes them.
pub(crate) const SIDE: u32 = 480;

/// The brands with official photos in `fixtures/images/`, by file stem.
pub(crate) const REFERENCE_BRANDS: [&str; 8] = [
    "nike",
    "adidas",
    "louis-vuitton",
    "gucci",
    "rolex",
    "apple",
    "chanel",
    "dyson",
];

/// Every committed reference image: `<brand>-1`, `<brand>-2` (products), `<brand>-logo`.
pub(crate) fn reference_stems() -> Vec<String> {
    REFERENCE_BRANDS
        .iter()
        .flat_map(|b| [format!("{b}-1"), format!("{b}-2"), format!("{b}-logo")])
        .collect()
}

/// Draws a reference image by its stem (`nike-2`, `gucci-logo`).
pub(crate) fn reference(stem: &str) -> RgbImage {
    let seed = fnv(&[b"reference", stem.as_bytes()]);
    if stem.ends_with("-logo") {
        logo(seed)
    } else {
        product(seed)
    }
}

/// A listing's own photo, from its item id and the image's place in the gallery.
pub(crate) fn own(platform: &str, item_id: &str, n: u32) -> RgbImage {
    product(fnv(&[
        b"own",
        platform.as_bytes(),
        item_id.as_bytes(),
        &n.to_le_bytes(),
    ]))
}

fn colour(rng: &mut ChaCha8Rng, lo: u8, hi: u8) -> Rgb<u8> {
    Rgb([
        rng.random_range(lo..=hi),
        rng.random_range(lo..=hi),
        rng.random_range(lo..=hi),
    ])
}

fn fill_ellipse(img: &mut RgbImage, cx: f32, cy: f32, rx: f32, ry: f32, c: Rgb<u8>) {
    let (w, h) = img.dimensions();
    for y in 0..h {
        for x in 0..w {
            let dx = (x as f32 - cx) / rx;
            let dy = (y as f32 - cy) / ry;
            if dx * dx + dy * dy <= 1.0 {
                img.put_pixel(x, y, c);
            }
        }
    }
}

fn fill_rect(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb<u8>) {
    let (w, h) = img.dimensions();
    for y in y0.max(0)..y1.min(i64::from(h)) {
        for x in x0.max(0)..x1.min(i64::from(w)) {
            img.put_pixel(x as u32, y as u32, c);
        }
    }
}

/// A product shot: a background lit from one side, a large object placed anywhere, details on
/// it, and soft shading over all. Shapes and light vary widely, as real photos do, so that
/// unrelated photos' hashes do too.
fn product(seed: u64) -> RgbImage {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let s = SIDE as f32;
    let (from, to) = (colour(&mut rng, 0, 255), colour(&mut rng, 0, 255));
    let angle: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let (ax, ay) = (angle.cos(), angle.sin());
    let mut img = RgbImage::from_fn(SIDE, SIDE, |x, y| {
        let t = ((x as f32 / s - 0.5) * ax + (y as f32 / s - 0.5) * ay + 0.7) / 1.4;
        let t = t.clamp(0.0, 1.0);
        let mix = |a: u8, b: u8| (f32::from(a) * (1.0 - t) + f32::from(b) * t) as u8;
        Rgb([
            mix(from[0], to[0]),
            mix(from[1], to[1]),
            mix(from[2], to[2]),
        ])
    });
    for big in [true, true, false, false, false] {
        let c = colour(&mut rng, 0, 255);
        let (x, y) = (
            rng.random_range(0.1..0.9) * s,
            rng.random_range(0.1..0.9) * s,
        );
        let r = if big {
            rng.random_range(0.15..0.35)
        } else {
            rng.random_range(0.04..0.12)
        } * s;
        if rng.random_bool(0.5) {
            fill_ellipse(&mut img, x, y, r, r * rng.random_range(0.4..1.6), c);
        } else {
            let (x, y, r) = (x as i64, y as i64, r as i64);
            let h = (r as f32 * rng.random_range(0.3..1.5)) as i64;
            fill_rect(&mut img, x - r, y - h, x + r, y + h, c);
        }
    }
    shade(&mut img, &mut rng);
    img
}

/// Light falling unevenly: a few soft waves of brightness over the whole picture.
fn shade(img: &mut RgbImage, rng: &mut ChaCha8Rng) {
    let s = img.width() as f32;
    let waves: Vec<(f32, f32, f32, f32)> = (0..3)
        .map(|_| {
            (
                rng.random_range(1.0..5.0) * std::f32::consts::TAU / s,
                rng.random_range(1.0..5.0) * std::f32::consts::TAU / s,
                rng.random_range(0.0..std::f32::consts::TAU),
                rng.random_range(0.08..0.2),
            )
        })
        .collect();
    for (x, y, p) in img.enumerate_pixels_mut() {
        let light: f32 = 1.0
            + waves
                .iter()
                .map(|&(fx, fy, ph, amp)| amp * (fx * x as f32 + fy * y as f32 + ph).sin())
                .sum::<f32>();
        for c in &mut p.0 {
            *c = (f32::from(*c) * light).clamp(0.0, 255.0) as u8;
        }
    }
}

/// A brand mark on white: a ring, a bar or a swoosh-like pair of ellipses.
fn logo(seed: u64) -> RgbImage {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let s = SIDE as f32;
    let ink = colour(&mut rng, 0, 120);
    let mut img = RgbImage::from_pixel(SIDE, SIDE, Rgb([255, 255, 255]));
    let (cx, cy) = (s / 2.0 + rng.random_range(-0.1..0.1) * s, s / 2.0);
    match rng.random_range(0..3) {
        0 => {
            fill_ellipse(&mut img, cx, cy, 0.35 * s, 0.35 * s, ink);
            fill_ellipse(&mut img, cx, cy, 0.22 * s, 0.22 * s, Rgb([255, 255, 255]));
        }
        1 => {
            let (cx, cy) = (cx as i64, cy as i64);
            let w = (rng.random_range(0.25..0.4) * s) as i64;
            fill_rect(&mut img, cx - w, cy - w / 4, cx + w, cy + w / 4, ink);
            fill_rect(&mut img, cx - w / 4, cy - w, cx + w / 4, cy + w, ink);
        }
        _ => {
            fill_ellipse(&mut img, cx, cy, 0.4 * s, 0.15 * s, ink);
            fill_ellipse(
                &mut img,
                cx + 0.08 * s,
                cy - 0.06 * s,
                0.36 * s,
                0.12 * s,
                Rgb([255, 255, 255]),
            );
        }
    }
    let accent = colour(&mut rng, 120, 255);
    fill_ellipse(&mut img, 0.8 * s, 0.2 * s, 0.06 * s, 0.06 * s, accent);
    shade(&mut img, &mut rng);
    img
}

/// A catalogue line's `photo`: a reference image's stem and the edits made to it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PhotoSpec {
    pub reference: String,
    pub edits: Vec<Edit>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Edit {
    /// Cut this many percent off the left and top edges.
    Crop(u32),
    Mirror,
    /// Diagonal translucent bands across the picture, as shop watermarks are.
    Watermark,
    /// A red price sticker in a corner.
    Sticker,
    /// Hue turned and brightness raised slightly.
    Recolour,
    /// Served as JPEG at this quality (default 85).
    Jpeg(u8),
    /// Scaled to this percent before the CDN's own resizing.
    Scale(u32),
}

impl PhotoSpec {
    /// Parses `"<stem> [crop4] [mirror] [watermark] [sticker] [recolour] [jpeg60] [scale70]"`.
    pub(crate) fn parse(spec: &str) -> Result<PhotoSpec, String> {
        let mut words = spec.split_whitespace();
        let reference = words.next().ok_or("empty photo")?.to_string();
        if !reference_stems().contains(&reference) {
            return Err(format!("no reference image `{reference}`"));
        }
        let num = |w: &str, p: &str| w.strip_prefix(p).and_then(|n| n.parse::<u32>().ok());
        let edits = words
            .map(|w| match w {
                "mirror" => Ok(Edit::Mirror),
                "watermark" => Ok(Edit::Watermark),
                "sticker" => Ok(Edit::Sticker),
                "recolour" => Ok(Edit::Recolour),
                _ => {
                    if let Some(n) = num(w, "crop").filter(|n| (1..=30).contains(n)) {
                        Ok(Edit::Crop(n))
                    } else if let Some(n) = num(w, "jpeg").filter(|n| (10..=100).contains(n)) {
                        Ok(Edit::Jpeg(n as u8))
                    } else if let Some(n) = num(w, "scale").filter(|n| (10..=200).contains(n)) {
                        Ok(Edit::Scale(n))
                    } else {
                        Err(format!("unknown photo edit `{w}`"))
                    }
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(PhotoSpec { reference, edits })
    }

    /// The reference drawn and edited; JPEG quality apart.
    pub(crate) fn draw(&self) -> (RgbImage, u8) {
        let mut img = reference(&self.reference);
        let mut quality = 85;
        for edit in &self.edits {
            img = match *edit {
                Edit::Crop(p) => {
                    let (w, h) = img.dimensions();
                    let (dx, dy) = (w * p / 100, h * p / 100);
                    imageops::crop_imm(&img, dx, dy, w - dx, h - dy).to_image()
                }
                Edit::Mirror => imageops::flip_horizontal(&img),
                Edit::Watermark => {
                    let (w, h) = img.dimensions();
                    for y in 0..h {
                        for x in 0..w {
                            if (x + y) % 90 < 14 {
                                let p = img.get_pixel_mut(x, y);
                                for c in &mut p.0 {
                                    *c = ((u32::from(*c) * 3 + 255) / 4) as u8;
                                }
                            }
                        }
                    }
                    img
                }
                Edit::Sticker => {
                    let s = img.width() as f32;
                    fill_ellipse(
                        &mut img,
                        0.88 * s,
                        0.88 * s,
                        0.08 * s,
                        0.08 * s,
                        Rgb([220, 20, 30]),
                    );
                    img
                }
                Edit::Recolour => {
                    let turned = imageops::huerotate(&img, 14);
                    imageops::brighten(&turned, 12)
                }
                Edit::Jpeg(q) => {
                    quality = q;
                    img
                }
                Edit::Scale(p) => {
                    let (w, h) = img.dimensions();
                    imageops::resize(
                        &img,
                        (w * p / 100).max(8),
                        (h * p / 100).max(8),
                        FilterType::Triangle,
                    )
                }
            };
        }
        (img, quality)
    }
}

/// Encodes `img` as a CDN would serve it: resized to `side` (when given) and JPEG-encoded.
pub(crate) fn serve_jpeg(img: &RgbImage, side: Option<u32>, quality: u8) -> Vec<u8> {
    let resized;
    let img = match side {
        Some(side) if side != img.width() => {
            resized = imageops::resize(img, side, side, FilterType::Triangle);
            &resized
        }
        _ => img,
    };
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    // Encoding an in-memory RGB buffer to a Vec cannot fail.
    let _ = img.write_with_encoder(encoder);
    out
}

/// Writes every reference image as JPEG into `dir` (`markwatch fixtures images`): what a
/// brand owner hands over, and small enough to commit.
pub(crate) fn write_references(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for stem in reference_stems() {
        let path = dir.join(format!("{stem}.jpg"));
        std::fs::write(&path, serve_jpeg(&reference(&stem), None, 90))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_refuse_nonsense() {
        let s = PhotoSpec::parse("nike-1 crop4 mirror jpeg60").unwrap();
        assert_eq!(s.edits, vec![Edit::Crop(4), Edit::Mirror, Edit::Jpeg(60)]);
        assert!(PhotoSpec::parse("nike-9").is_err());
        assert!(PhotoSpec::parse("nike-1 blur").is_err());
        assert!(PhotoSpec::parse("nike-1 crop90").is_err());
    }

    #[test]
    fn the_committed_references_are_what_the_generator_draws() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/images");
        for stem in reference_stems() {
            let path = dir.join(format!("{stem}.jpg"));
            let committed = std::fs::read(&path).unwrap_or_else(|e| {
                panic!("{}: {e}; run `markwatch fixtures images`", path.display())
            });
            let h = crate::images::ImageHasher::new();
            let committed = h.fingerprint(&committed, None).unwrap();
            let drawn = h.hash(&image::DynamicImage::ImageRgb8(reference(&stem)));
            assert!(
                crate::images::distance(committed.phash, drawn) <= 2,
                "{stem} differs from the generator: run `markwatch fixtures images`"
            );
        }
    }
}
