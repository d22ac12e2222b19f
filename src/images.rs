//! Listing photos and brands' reference images: checked, decoded within bounds, and
//! fingerprinted (SHA-256 of the bytes, a perceptual hash of the pixels).
//!
//! Images come from hostile pages, so every limit is applied before the pixels are decoded:
//! bytes first, then the dimensions the header declares, then the decoder's own allocation
//! limit. A decompression bomb (a small file declaring 20,000 × 20,000 pixels) is refused on
//! its header. Animated images are refused too: which frame a platform shows is unknowable.
//!
//! The perceptual hash is the DCT hash (pHash: 8 × 8 low frequencies against their median, 64
//! bits) of image_hasher. Re-encoding, resizing, watermarks and slight recolouring move it by a
//! few bits. Mirroring and crops of more than a few percent do not survive it, so a reference
//! image is hashed as it is and as 17 variants: cropped 5% at either end of either axis, and
//! mirrored (see docs/images.md for the calibration).

use std::io::Cursor;

use image::{AnimationDecoder, DynamicImage, ImageFormat, ImageReader, Limits};
use image_hasher::{HashAlg, Hasher, HasherConfig};
use sha2::{Digest, Sha256};

/// Bytes above this are refused unread: product photos are well under 2 MB.
pub(crate) const MAX_BYTES: usize = 8 * 1024 * 1024;
/// Longest side accepted. Taobao's long description images reach about 10,000 pixels.
pub(crate) const MAX_SIDE: u32 = 12_000;
/// Pixels accepted (width × height): 16 million, 64 MB decoded as RGBA.
pub(crate) const MAX_PIXELS: u64 = 16_000_000;
/// The decoder's allocation cap, beside the pixel cap.
const MAX_ALLOC: u64 = 96 * 1024 * 1024;

/// Why an image was refused. Each says what a person would check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("empty body")]
    Empty,
    #[error("{bytes} bytes is more than the {max} an image may have")]
    TooManyBytes { bytes: usize, max: usize },
    #[error("served as {0}, not as an image")]
    NotServedAsImage(String),
    #[error("not an image: the bytes are no JPEG, PNG, GIF or WebP")]
    NotAnImage,
    #[error("{0} images are not accepted (JPEG, PNG, GIF and WebP are)")]
    Unsupported(String),
    #[error(
        "{width} × {height} pixels is more than the {max_side} per side or {max_pixels} in all an image may have"
    )]
    TooLarge {
        width: u32,
        height: u32,
        max_side: u32,
        max_pixels: u64,
    },
    #[error("animated images are not compared")]
    Animated,
    #[error("truncated: the {0} data ends before the image does")]
    Truncated(&'static str),
    #[error("cannot decode: {0}")]
    Corrupt(String),
}

/// What is kept of an accepted image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// SHA-256 of the bytes, lower-case hex.
    pub sha256: String,
    /// The perceptual hash of the image as it is.
    pub phash: u64,
    pub width: u32,
    pub height: u32,
    /// The format the bytes are in, whatever they were served as ("image/jpeg").
    pub content_type: &'static str,
}

/// Hamming distance between two perceptual hashes: 0 for the same picture, about 32 for
/// unrelated ones.
pub fn distance(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// Two photos within this many bits (of 64) show the same picture. Calibrated on the fixture
/// images (docs/images.md): edited reuses sit at 0-10, with a tail to 16 for a sticker on a
/// logo; unrelated photos no nearer than 16.
pub(crate) const SAME_PICTURE: u32 = 12;

/// Of a listing's photos and a brand's reference images (each hashed with its variants), the
/// nearest pair if it shows the same picture: (distance, photo id, reference). The side-by-side
/// comparison a complaint attaches.
pub(crate) fn closest_pair<'r>(
    photos: &[crate::store::ListingPhoto],
    refs: &'r [crate::store::RefPhoto],
) -> Option<(u32, i64, &'r crate::store::RefPhoto)> {
    photos
        .iter()
        .flat_map(|p| {
            refs.iter().map(move |r| {
                let d = r
                    .hashes
                    .iter()
                    .map(|&h| distance(h, p.phash as u64))
                    .min()
                    .unwrap_or(64);
                (d, p.id, r)
            })
        })
        .min_by_key(|(d, _, _)| *d)
        .filter(|(d, _, _)| *d <= SAME_PICTURE)
}

/// The MIME type of an accepted format, from the bytes.
pub(crate) fn content_type(bytes: &[u8]) -> Option<&'static str> {
    match image::guess_format(bytes).ok()? {
        f @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP) => {
            Some(f.to_mime_type())
        }
        _ => None,
    }
}

/// Hashes images; one is built per crawl or import and shared (it holds the DCT tables).
pub struct ImageHasher {
    hasher: Hasher,
}

impl Default for ImageHasher {
    fn default() -> Self {
        ImageHasher::new()
    }
}

impl std::fmt::Debug for ImageHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImageHasher")
    }
}

/// Crops (first, last) per axis, in percent, that a reference image is hashed at.
const CROPS: [(u32, u32); 3] = [(0, 0), (5, 0), (0, 5)];

impl ImageHasher {
    pub fn new() -> ImageHasher {
        let hasher = HasherConfig::new()
            .hash_size(8, 8)
            .hash_alg(HashAlg::Median)
            .preproc_dct()
            .to_hasher();
        ImageHasher { hasher }
    }

    /// Checks and fingerprints `bytes`. `served_as` is the Content-Type it came with, if any:
    /// a body served as HTML or JSON is an error page, whatever its bytes.
    pub fn fingerprint(
        &self,
        bytes: &[u8],
        served_as: Option<&str>,
    ) -> Result<Fingerprint, ImageError> {
        let (image, format) = decode(bytes, served_as)?;
        Ok(self.print(bytes, &image, format))
    }

    /// A reference image's fingerprint and the hashes it is found by: as it is first, then
    /// cropped and mirrored.
    pub fn reference(&self, bytes: &[u8]) -> Result<(Fingerprint, Vec<u64>), ImageError> {
        let (image, format) = decode(bytes, None)?;
        let print = self.print(bytes, &image, format);
        let small = image.thumbnail(160, 160);
        let (w, h) = (small.width(), small.height());
        let mut hashes = vec![print.phash];
        for mirrored in [false, true] {
            for (l, r) in CROPS {
                for (t, b) in CROPS {
                    if !mirrored && (l, r, t, b) == (0, 0, 0, 0) {
                        continue;
                    }
                    let cut = small.crop_imm(
                        w * l / 100,
                        h * t / 100,
                        w - w * (l + r) / 100,
                        h - h * (t + b) / 100,
                    );
                    let cut = if mirrored { cut.fliph() } else { cut };
                    hashes.push(self.hash(&cut));
                }
            }
        }
        Ok((print, hashes))
    }

    fn print(&self, bytes: &[u8], image: &DynamicImage, format: ImageFormat) -> Fingerprint {
        Fingerprint {
            sha256: hex::encode(Sha256::digest(bytes)),
            phash: self.hash(image),
            width: image.width(),
            height: image.height(),
            content_type: format.to_mime_type(),
        }
    }

    /// The perceptual hash of a decoded image.
    pub fn hash(&self, image: &DynamicImage) -> u64 {
        // The hash looks at 16 × 16 grey pixels: shrinking first, with a cheap filter, makes
        // an 800 × 800 photo cost a fraction of a millisecond instead of several.
        let small = DynamicImage::ImageLuma8(image.thumbnail(64, 64).to_luma8());
        let hash = self.hasher.hash_image(&small);
        let mut word = [0u8; 8];
        for (slot, b) in word.iter_mut().zip(hash.as_bytes()) {
            *slot = *b;
        }
        u64::from_be_bytes(word)
    }
}

/// Decodes `bytes` within the limits above.
pub(crate) fn decode(
    bytes: &[u8],
    served_as: Option<&str>,
) -> Result<(DynamicImage, ImageFormat), ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    if bytes.len() > MAX_BYTES {
        return Err(ImageError::TooManyBytes {
            bytes: bytes.len(),
            max: MAX_BYTES,
        });
    }
    if let Some(ctype) = served_as {
        let mime = ctype
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        // CDNs serve WebP under .jpg names and as application/octet-stream; only a type that
        // says "a document" marks an error page.
        if mime.starts_with("text/")
            || mime.contains("json")
            || mime.contains("xml") && !mime.contains("svg")
        {
            return Err(ImageError::NotServedAsImage(mime));
        }
    }
    let format = image::guess_format(bytes).map_err(|_| ImageError::NotAnImage)?;
    if !matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP
    ) {
        return Err(ImageError::Unsupported(format!("{format:?}")));
    }
    let reader = || {
        let mut r = ImageReader::with_format(Cursor::new(bytes), format);
        r.limits(limits());
        r
    };
    // The header alone, read without the decoder's limits, so that an oversized image is
    // refused for its size (and says so) rather than as a decoding error.
    let mut header = ImageReader::with_format(Cursor::new(bytes), format);
    header.no_limits();
    let (width, height) = header
        .into_dimensions()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageError::TooLarge {
            width,
            height,
            max_side: MAX_SIDE,
            max_pixels: MAX_PIXELS,
        });
    }
    // The JPEG decoder fills a cut-off image with grey rather than failing: look for its end
    // marker (some encoders append a little after it).
    if format == ImageFormat::Jpeg
        && !bytes[bytes.len().saturating_sub(1024)..]
            .windows(2)
            .any(|w| w == [0xFF, 0xD9])
    {
        return Err(ImageError::Truncated("JPEG"));
    }
    if animated(bytes, format)? {
        return Err(ImageError::Animated);
    }
    let image = reader().decode().map_err(|e| match e {
        image::ImageError::Limits(_) => ImageError::TooLarge {
            width,
            height,
            max_side: MAX_SIDE,
            max_pixels: MAX_PIXELS,
        },
        e => ImageError::Corrupt(e.to_string()),
    })?;
    Ok((image, format))
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    limits
}

/// Whether the image has more than one frame. Dimensions are checked first, so decoding a
/// GIF's second frame is bounded.
fn animated(bytes: &[u8], format: ImageFormat) -> Result<bool, ImageError> {
    let corrupt = |e: image::ImageError| ImageError::Corrupt(e.to_string());
    match format {
        ImageFormat::Png => {
            let decoder =
                image::codecs::png::PngDecoder::new(Cursor::new(bytes)).map_err(corrupt)?;
            decoder.is_apng().map_err(corrupt)
        }
        ImageFormat::WebP => {
            let decoder =
                image::codecs::webp::WebPDecoder::new(Cursor::new(bytes)).map_err(corrupt)?;
            Ok(decoder.has_animation())
        }
        ImageFormat::Gif => {
            let mut decoder =
                image::codecs::gif::GifDecoder::new(Cursor::new(bytes)).map_err(corrupt)?;
            image::ImageDecoder::set_limits(&mut decoder, limits()).map_err(corrupt)?;
            Ok(decoder.into_frames().take(2).count() > 1)
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, Rgb, RgbImage};

    fn photo(seed: u32, w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let (x, y) = (x * 64 / w, y * 64 / h);
            let v = (x * (3 + seed % 5) + y * (7 + seed % 3) + ((x ^ y) & seed)) as u8;
            Rgb([v, v.wrapping_mul(3), 255 - v])
        })
    }

    fn encode(img: &RgbImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn the_same_picture_re_encoded_and_resized_hashes_alike() {
        let h = ImageHasher::new();
        let a = photo(11, 400, 400);
        let png = h.fingerprint(&encode(&a, ImageFormat::Png), None).unwrap();
        let small = image::imageops::resize(&a, 220, 220, image::imageops::FilterType::Triangle);
        let jpeg = h
            .fingerprint(&encode(&small, ImageFormat::Jpeg), Some("image/jpeg"))
            .unwrap();
        assert!(
            distance(png.phash, jpeg.phash) <= 4,
            "{}",
            distance(png.phash, jpeg.phash)
        );
        assert_ne!(png.sha256, jpeg.sha256);
        assert_eq!(
            (jpeg.width, jpeg.height, jpeg.content_type),
            (220, 220, "image/jpeg")
        );
        let other = h
            .fingerprint(&encode(&photo(12, 400, 400), ImageFormat::Png), None)
            .unwrap();
        assert!(distance(png.phash, other.phash) > 12);
    }

    #[test]
    fn a_mirrored_or_cropped_picture_matches_a_reference_variant() {
        let h = ImageHasher::new();
        let a = photo(5, 300, 300);
        let (print, variants) = h.reference(&encode(&a, ImageFormat::Png)).unwrap();
        assert_eq!(variants.len(), 18);
        assert_eq!(variants[0], print.phash);
        let mirrored = image::imageops::flip_horizontal(&a);
        let cropped = image::imageops::crop_imm(&a, 15, 0, 285, 300).to_image();
        for edited in [mirrored, cropped] {
            let f = h
                .fingerprint(&encode(&edited, ImageFormat::Png), None)
                .unwrap();
            let nearest = variants
                .iter()
                .map(|&v| distance(v, f.phash))
                .min()
                .unwrap();
            assert!(nearest <= 4, "{nearest}");
        }
    }

    /// CRC-32 as PNG chunks carry it.
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn a_decompression_bomb_is_refused_on_its_header() {
        // A one-row PNG whose header then claims 20,000 × 20,000 pixels (400 MB decoded), its
        // checksum made right, as a bomb's would be.
        let mut out = Vec::new();
        let encoder = image::codecs::png::PngEncoder::new(&mut out);
        let row = vec![0u8; 20_000];
        encoder
            .write_image(&row, 20_000, 1, image::ExtendedColorType::L8)
            .unwrap();
        // IHDR: length at 8..12, type and data at 12..29 (height at 20..24), CRC at 29..33.
        out[20..24].copy_from_slice(&20_000u32.to_be_bytes());
        let crc = crc32(&out[12..29]);
        out[29..33].copy_from_slice(&crc.to_be_bytes());
        let err = ImageHasher::new()
            .fingerprint(&out, Some("image/png"))
            .unwrap_err();
        assert!(
            matches!(
                err,
                ImageError::TooLarge {
                    width: 20_000,
                    height: 20_000,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn hostile_bodies_are_refused_with_a_reason() {
        let h = ImageHasher::new();
        let good = encode(&photo(1, 100, 100), ImageFormat::Jpeg);
        let cases: Vec<(Vec<u8>, Option<&str>, &str)> = vec![
            (Vec::new(), None, "empty"),
            (
                b"<html><body>slide to verify</body></html>".to_vec(),
                Some("image/jpeg"),
                "not an image",
            ),
            (
                good.clone(),
                Some("text/html; charset=utf-8"),
                "served as text/html",
            ),
            (good[..good.len() / 2].to_vec(), None, "truncated"),
            (vec![0u8; MAX_BYTES + 1], None, "more than"),
            (b"BM\x00\x00".to_vec(), None, "not accepted"),
        ];
        for (bytes, ctype, want) in cases {
            let err = h.fingerprint(&bytes, ctype).unwrap_err().to_string();
            assert!(err.contains(want), "{want}: {err}");
        }
        // PNG served as JPEG, as CDNs do: accepted, typed by its bytes.
        let png = encode(&photo(1, 100, 100), ImageFormat::Png);
        assert_eq!(
            h.fingerprint(&png, Some("image/jpeg"))
                .unwrap()
                .content_type,
            "image/png"
        );
    }

    #[test]
    fn an_animated_gif_is_refused() {
        use image::codecs::gif::GifEncoder;
        use image::{Delay, Frame, RgbaImage};
        let mut out = Vec::new();
        {
            let mut enc = GifEncoder::new(&mut out);
            for i in 0..2u8 {
                let f = RgbaImage::from_pixel(20, 20, image::Rgba([i * 100, 0, 0, 255]));
                enc.encode_frame(Frame::from_parts(
                    f,
                    0,
                    0,
                    Delay::from_numer_denom_ms(100, 1),
                ))
                .unwrap();
            }
        }
        let err = ImageHasher::new()
            .fingerprint(&out, Some("image/gif"))
            .unwrap_err();
        assert_eq!(err, ImageError::Animated);
    }
}
