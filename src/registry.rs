//! The brand registry file: reads TOML or CSV into validated [`Brand`]s and writes TOML back.
//!
//! Every problem found is reported with the file, the line and the field, and all of them are
//! reported at once so a user fixes a file in one pass.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::images::ImageHasher;
use crate::model::{
    AlertMode, AlertPrefs, Brand, BrandImage, ImageKind, Language, Mark, PriceFloor, ReportSchedule,
};

/// One thing wrong with a registry file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    /// The field, in the file's own terms (e.g. `brand[2].mark[1].classes`).
    pub field: String,
    pub message: String,
}

/// A registry file that cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The file could not be read at all.
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The extension says neither TOML nor CSV.
    #[error("{}: unknown registry format (expected a .toml or .csv file)", path.display())]
    Format { path: PathBuf },
    /// The file was read but is not a valid registry.
    #[error("{}", render_problems(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn render_problems(path: &Path, problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match p.line {
            Some(line) => out.push_str(&format!("{}:{line}: ", path.display())),
            None => out.push_str(&format!("{}: ", path.display())),
        }
        out.push_str(&format!("{}: {}", p.field, p.message));
    }
    out
}

/// Reads a registry file, choosing the format by extension.
pub fn load_file(path: &Path) -> Result<Vec<Brand>, RegistryError> {
    let bytes = std::fs::read(path).map_err(|source| RegistryError::Read {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |problems| RegistryError::Invalid {
        path: path.to_owned(),
        problems,
    };
    let text = decode_utf8(&bytes).map_err(|p| invalid(vec![p]))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let mut brands = match ext.as_deref() {
        Some("toml") => parse_toml(text).map_err(invalid)?,
        Some("csv") => parse_csv(text).map_err(invalid)?,
        _ => {
            return Err(RegistryError::Format {
                path: path.to_owned(),
            });
        }
    };
    let base = path.parent().unwrap_or(Path::new("."));
    read_images(&mut brands, base).map_err(invalid)?;
    Ok(brands)
}

/// Reads, checks and hashes every brand's reference images, relative paths from `base`. Every
/// bad file is reported, naming its brand and entry; the brands are left as they were unless
/// all are good.
pub(crate) fn read_images(brands: &mut [Brand], base: &Path) -> Result<(), Vec<Problem>> {
    if brands.iter().all(|b| b.images.is_empty()) {
        return Ok(());
    }
    let hasher = ImageHasher::new();
    let mut problems = Vec::new();
    let mut read = Vec::new();
    for (bi, brand) in brands.iter().enumerate() {
        for (ii, image) in brand.images.iter().enumerate() {
            let field = format!("brand `{}` image[{ii}] ({})", brand.name, image.path);
            let file = base.join(&image.path);
            let bytes = match std::fs::read(&file) {
                Ok(bytes) => bytes,
                Err(e) => {
                    problems.push(Problem {
                        line: None,
                        field,
                        message: format!("cannot read {}: {e}", file.display()),
                    });
                    continue;
                }
            };
            match hasher.reference(&bytes) {
                Ok((print, hashes)) => read.push((bi, ii, print.sha256, hashes, bytes)),
                Err(e) => problems.push(Problem {
                    line: None,
                    field,
                    message: format!("{}: {e}", file.display()),
                }),
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    for (bi, ii, sha256, hashes, bytes) in read {
        let image = &mut brands[bi].images[ii];
        image.sha256 = sha256;
        image.hashes = hashes;
        image.bytes = bytes;
    }
    Ok(())
}

/// UTF-8 with an optional BOM (spreadsheets add one).
fn decode_utf8(bytes: &[u8]) -> Result<&str, Problem> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| Problem {
        line: Some(Lines::new(bytes).line(e.valid_up_to())),
        field: "file".to_owned(),
        message: "is not UTF-8; save it as UTF-8".to_owned(),
    })
}

/// Where each line starts: built once per file, so a span's line is a binary search, not a
/// scan from the top (that made a 10,000-brand registry take minutes).
struct Lines(Vec<usize>);

impl Lines {
    fn new(src: &[u8]) -> Lines {
        let mut starts = vec![0];
        starts.extend(
            src.iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Lines(starts)
    }

    /// The 1-based line holding byte `offset`.
    fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&start| start <= offset)
    }
}

// ---------------------------------------------------------------- TOML

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    brand: Vec<Spanned<RawBrand>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBrand {
    name: Spanned<String>,
    owner: Spanned<String>,
    #[serde(default)]
    contacts: Vec<Spanned<String>>,
    reference_price_cny: Option<Spanned<f64>>,
    #[serde(default)]
    authorized_sellers: Vec<Spanned<String>>,
    #[serde(default)]
    aliases: Vec<Spanned<String>>,
    #[serde(default)]
    domains: Vec<Spanned<String>>,
    well_known: Option<Spanned<bool>>,
    watch_unauthorised: Option<Spanned<bool>>,
    trust_official_stores: Option<Spanned<bool>>,
    #[serde(default)]
    price: Vec<Spanned<RawPrice>>,
    #[serde(default)]
    mark: Vec<Spanned<RawMark>>,
    alerts: Option<RawAlerts>,
    #[serde(default)]
    image: Vec<Spanned<RawImage>>,
}

/// `[[brand.image]]`: a reference image file and what it shows.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    path: Spanned<String>,
    kind: Option<Spanned<String>>,
}

/// `[brand.alerts]`: every key optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    mode: Option<Spanned<String>>,
    digest: Option<Spanned<String>>,
    language: Option<Spanned<String>>,
    report: Option<Spanned<String>>,
}

/// `[[brand.price]]`: a price floor for the goods its words or classes name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    #[serde(default)]
    words: Vec<Spanned<String>>,
    #[serde(default)]
    classes: Vec<Spanned<i64>>,
    min_price_cny: Spanned<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMark {
    text: Spanned<String>,
    jurisdiction: Spanned<String>,
    registration_no: Spanned<String>,
    classes: Spanned<Vec<Spanned<i64>>>,
    expires: Option<Spanned<String>>,
}

/// Parses the TOML registry format.
pub fn parse_toml(src: &str) -> Result<Vec<Brand>, Vec<Problem>> {
    let lines = Lines::new(src.as_bytes());
    let raw: RawFile = toml::from_str(src).map_err(|e| {
        vec![Problem {
            line: e.span().map(|s| lines.line(s.start)),
            field: "toml".to_owned(),
            message: e.message().trim().to_owned(),
        }]
    })?;
    let at = |span: std::ops::Range<usize>| Some(lines.line(span.start));
    let texts = |items: Vec<Spanned<String>>| -> Vec<(Option<usize>, String)> {
        items
            .into_iter()
            .map(|s| (at(s.span()), s.into_inner()))
            .collect()
    };
    let numbers = |items: Vec<Spanned<i64>>| -> Vec<(Option<usize>, i64)> {
        items
            .into_iter()
            .map(|c| (at(c.span()), c.into_inner()))
            .collect()
    };
    let mut v = Validator::default();
    let mut brands = Vec::with_capacity(raw.brand.len());
    for (bi, rb) in raw.brand.into_iter().enumerate() {
        let brand_line = at(rb.span());
        let mut rb = rb.into_inner();
        let f = |name: &str| format!("brand[{bi}].{name}");
        let mut images: Vec<BrandImage> = Vec::new();
        let mut images_ok = true;
        for (ii, ri) in std::mem::take(&mut rb.image).into_iter().enumerate() {
            let line = at(ri.span());
            let ri = ri.into_inner();
            let field = format!("brand[{bi}].image[{ii}]");
            let path = ri.path.into_inner().trim().to_owned();
            let kind = match ri.kind.map(Spanned::into_inner) {
                None => Some(ImageKind::Product),
                Some(k) => k.trim().parse::<ImageKind>().ok(),
            };
            let Some(kind) = kind else {
                v.problem(
                    line,
                    &format!("{field}.kind"),
                    "must be \"product\" or \"logo\"",
                );
                images_ok = false;
                continue;
            };
            if path.is_empty() {
                v.problem(line, &format!("{field}.path"), "is empty");
                images_ok = false;
                continue;
            }
            if images.iter().any(|i| i.path == path) {
                v.problem(
                    line,
                    &format!("{field}.path"),
                    format!("`{path}` is listed twice"),
                );
                images_ok = false;
                continue;
            }
            images.push(BrandImage {
                path,
                kind,
                sha256: String::new(),
                hashes: Vec::new(),
                bytes: Vec::new(),
            });
        }
        let mut marks = Vec::with_capacity(rb.mark.len());
        for (mi, rm) in rb.mark.into_iter().enumerate() {
            let mark_line = at(rm.span());
            let rm = rm.into_inner();
            let mf = |name: &str| format!("brand[{bi}].mark[{mi}].{name}");
            let classes_line = at(rm.classes.span());
            marks.push(RawMarkFields {
                line: mark_line,
                field: format!("brand[{bi}].mark[{mi}]"),
                text: (at(rm.text.span()), mf("text"), rm.text.into_inner()),
                jurisdiction: (
                    at(rm.jurisdiction.span()),
                    mf("jurisdiction"),
                    rm.jurisdiction.into_inner(),
                ),
                registration_no: (
                    at(rm.registration_no.span()),
                    mf("registration_no"),
                    rm.registration_no.into_inner(),
                ),
                classes: (
                    classes_line,
                    mf("classes"),
                    numbers(rm.classes.into_inner()),
                ),
                expires: rm
                    .expires
                    .map(|e| (at(e.span()), mf("expires"), e.into_inner())),
            });
        }
        let prices = rb
            .price
            .into_iter()
            .enumerate()
            .map(|(pi, rp)| {
                let line = at(rp.span());
                let rp = rp.into_inner();
                let pf = |name: &str| format!("brand[{bi}].price[{pi}].{name}");
                RawPriceFields {
                    line,
                    field: format!("brand[{bi}].price[{pi}]"),
                    words: (pf("words"), texts(rp.words)),
                    classes: (pf("classes"), numbers(rp.classes)),
                    min_price_cny: (
                        at(rp.min_price_cny.span()),
                        pf("min_price_cny"),
                        rp.min_price_cny.into_inner(),
                    ),
                }
            })
            .collect();
        let switch = |name: &str, value: Option<Spanned<bool>>| {
            value.map(|v| (at(v.span()), f(name), v.into_inner()))
        };
        let fields = RawBrandFields {
            line: brand_line,
            field: format!("brand[{bi}]"),
            name: (at(rb.name.span()), f("name"), rb.name.into_inner()),
            owner: (at(rb.owner.span()), f("owner"), rb.owner.into_inner()),
            contacts: (f("contacts"), texts(rb.contacts)),
            reference_price_cny: rb
                .reference_price_cny
                .map(|p| (at(p.span()), f("reference_price_cny"), p.into_inner())),
            authorized_sellers: (f("authorized_sellers"), texts(rb.authorized_sellers)),
            aliases: (f("aliases"), texts(rb.aliases)),
            domains: (f("domains"), texts(rb.domains)),
            well_known: switch("well_known", rb.well_known),
            watch_unauthorised: switch("watch_unauthorised", rb.watch_unauthorised),
            trust_official_stores: switch("trust_official_stores", rb.trust_official_stores),
            prices,
            marks,
            alerts: rb
                .alerts
                .map(|a| {
                    let cell = |name: &str, v: Option<Spanned<String>>| {
                        v.map(|v| (at(v.span()), f(&format!("alerts.{name}")), v.into_inner()))
                    };
                    RawAlertFields {
                        mode: cell("mode", a.mode),
                        digest: cell("digest", a.digest),
                        language: cell("language", a.language),
                        report: cell("report", a.report),
                    }
                })
                .unwrap_or_default(),
        };
        if let Some(mut brand) = v.brand(fields)
            && images_ok
        {
            brand.images = images;
            brands.push(brand);
        }
    }
    v.finish(brands)
}

// ---------------------------------------------------------------- CSV

/// CSV columns: one row per mark, brand fields repeated (or left empty) on a brand's later rows.
/// The `alert_*` columns are optional (see `[brand.alerts]` in the TOML format), and so are the
/// matching switches and `prices` (`耳机|earphones=99; 9=500`, see `[[brand.price]]`).
pub(crate) const CSV_COLUMNS: [&str; 20] = [
    "name",
    "owner",
    "contacts",
    "reference_price_cny",
    "authorized_sellers",
    "aliases",
    "text",
    "jurisdiction",
    "registration_no",
    "classes",
    "expires",
    "alert_mode",
    "alert_digest",
    "alert_language",
    "well_known",
    "watch_unauthorised",
    "trust_official_stores",
    "prices",
    "domains",
    "alert_report",
];
const CSV_REQUIRED: [&str; 6] = [
    "name",
    "owner",
    "text",
    "jurisdiction",
    "registration_no",
    "classes",
];

/// Parses the CSV registry format. List fields are separated by `;`.
pub(crate) fn parse_csv(src: &str) -> Result<Vec<Brand>, Vec<Problem>> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(src.as_bytes());
    let csv_problem = |e: csv::Error| Problem {
        line: e.position().map(|p| p.line() as usize),
        field: "csv".to_owned(),
        message: e.to_string(),
    };
    let headers = reader.headers().map_err(|e| vec![csv_problem(e)])?.clone();
    let mut problems = Vec::new();
    let mut column = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        if !CSV_COLUMNS.contains(&h) {
            problems.push(Problem {
                line: Some(1),
                field: h.to_owned(),
                message: format!(
                    "unknown column; expected some of {}",
                    CSV_COLUMNS.join(", ")
                ),
            });
        } else if column.insert(h.to_owned(), i).is_some() {
            problems.push(Problem {
                line: Some(1),
                field: h.to_owned(),
                message: "column appears twice".to_owned(),
            });
        }
    }
    for required in CSV_REQUIRED {
        if !column.contains_key(required) {
            problems.push(Problem {
                line: Some(1),
                field: required.to_owned(),
                message: "required column is missing".to_owned(),
            });
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    // Rows grouped by brand name, keeping first-seen order.
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, RawBrandFields> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                problems.push(csv_problem(e));
                continue;
            }
        };
        let line = record.position().map(|p| p.line() as usize);
        let get = |name: &str| {
            column
                .get(name)
                .and_then(|&i| record.get(i))
                .unwrap_or("")
                .to_owned()
        };
        let list = |name: &str| -> Vec<(Option<usize>, String)> {
            split_list(&get(name))
                .into_iter()
                .map(|s| (line, s))
                .collect()
        };
        let cell = |name: &str| (line, name.to_owned(), get(name));
        let classes = split_list(&get("classes"))
            .into_iter()
            .map(|c| match c.parse::<i64>() {
                Ok(n) => Ok((line, n)),
                Err(_) => Err(Problem {
                    line,
                    field: "classes".to_owned(),
                    message: format!("`{c}` is not a class number"),
                }),
            })
            .collect::<Result<Vec<_>, _>>();
        let classes = match classes {
            Ok(c) => c,
            Err(p) => {
                problems.push(p);
                continue;
            }
        };
        let price = get("reference_price_cny");
        let price = if price.is_empty() {
            None
        } else {
            match price.parse::<f64>() {
                Ok(p) => Some((line, "reference_price_cny".to_owned(), p)),
                Err(_) => {
                    problems.push(Problem {
                        line,
                        field: "reference_price_cny".to_owned(),
                        message: format!("`{price}` is not a number"),
                    });
                    continue;
                }
            }
        };
        let expires = Some(get("expires"))
            .filter(|e| !e.is_empty())
            .map(|e| (line, "expires".to_owned(), e));
        let mark = RawMarkFields {
            line,
            field: "text".to_owned(),
            text: cell("text"),
            jurisdiction: cell("jurisdiction"),
            registration_no: cell("registration_no"),
            classes: (line, "classes".to_owned(), classes),
            expires,
        };
        let name = get("name");
        let optional = |name: &str| {
            Some(get(name))
                .filter(|v| !v.trim().is_empty())
                .map(|v| (line, name.to_owned(), v))
        };
        let alerts = RawAlertFields {
            mode: optional("alert_mode"),
            digest: optional("alert_digest"),
            language: optional("alert_language"),
            report: optional("alert_report"),
        };
        let mut switch = |name: &str| {
            let value = get(name);
            match parse_switch(&value) {
                Ok(v) => v.map(|v| (line, name.to_owned(), v)),
                Err(message) => {
                    problems.push(Problem {
                        line,
                        field: name.to_owned(),
                        message,
                    });
                    None
                }
            }
        };
        let well_known = switch("well_known");
        let watch_unauthorised = switch("watch_unauthorised");
        let trust_official_stores = switch("trust_official_stores");
        let prices = csv_prices(&get("prices"), line, &mut problems);
        let row_brand = RawBrandFields {
            line,
            field: "name".to_owned(),
            name: cell("name"),
            owner: cell("owner"),
            contacts: ("contacts".to_owned(), list("contacts")),
            reference_price_cny: price,
            authorized_sellers: ("authorized_sellers".to_owned(), list("authorized_sellers")),
            aliases: ("aliases".to_owned(), list("aliases")),
            domains: ("domains".to_owned(), list("domains")),
            well_known,
            watch_unauthorised,
            trust_official_stores,
            prices,
            marks: Vec::new(),
            alerts,
        };
        match groups.get_mut(&name) {
            None => {
                order.push(name.clone());
                let mut b = row_brand;
                b.marks.push(mark);
                groups.insert(name, b);
            }
            Some(first) => {
                merge_csv_row(first, row_brand, &mut problems);
                first.marks.push(mark);
            }
        }
    }
    let mut v = Validator {
        problems,
        ..Validator::default()
    };
    let mut brands = Vec::new();
    for name in order {
        if let Some(fields) = groups.remove(&name)
            && let Some(brand) = v.brand(fields)
        {
            brands.push(brand);
        }
    }
    v.finish(brands)
}

fn split_list(cell: &str) -> Vec<String> {
    cell.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A yes/no cell; empty means the default.
fn parse_switch(cell: &str) -> Result<Option<bool>, String> {
    match cell.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "true" | "yes" | "1" => Ok(Some(true)),
        "false" | "no" | "0" => Ok(Some(false)),
        _ => Err(format!(
            "`{}` is not true or false (or yes/no, 1/0)",
            cell.trim()
        )),
    }
}

/// The `prices` cell: `SELECTOR=PRICE` entries separated by `;`, selector items by `|`; a
/// purely numeric item is a Nice class, anything else a word (`耳机|earphones=99; 9=500`).
fn csv_prices(cell: &str, line: Option<usize>, problems: &mut Vec<Problem>) -> Vec<RawPriceFields> {
    let mut prices = Vec::new();
    for entry in split_list(cell) {
        let mut problem = |message: String| {
            problems.push(Problem {
                line,
                field: "prices".to_owned(),
                message,
            })
        };
        // The price is after the last `=`, so a word may hold one.
        let Some((selector, price)) = entry.rsplit_once('=') else {
            problem(format!(
                "`{entry}` has no price; write words or classes, `=`, then the price, like 耳机|earphones=99"
            ));
            continue;
        };
        let Ok(price) = price.trim().parse::<f64>() else {
            problem(format!("`{}` in `{entry}` is not a number", price.trim()));
            continue;
        };
        let (mut words, mut classes) = (Vec::new(), Vec::new());
        for item in selector.split('|').map(str::trim).filter(|i| !i.is_empty()) {
            if item.bytes().all(|b| b.is_ascii_digit()) {
                match item.parse::<i64>() {
                    Ok(c) => classes.push((line, c)),
                    Err(_) => problem(format!("class {item} is outside the Nice classes 1–45")),
                }
            } else {
                words.push((line, item.to_owned()));
            }
        }
        prices.push(RawPriceFields {
            line,
            field: "prices".to_owned(),
            words: ("prices".to_owned(), words),
            classes: ("prices".to_owned(), classes),
            min_price_cny: (line, "prices".to_owned(), price),
        });
    }
    prices
}

/// A brand's later rows may leave brand fields empty or repeat them; they may not disagree.
fn merge_csv_row(first: &mut RawBrandFields, row: RawBrandFields, problems: &mut Vec<Problem>) {
    let mut conflict = |field: &str, line: Option<usize>| {
        problems.push(Problem {
            line,
            field: field.to_owned(),
            message: format!(
                "differs from this brand's first row (line {}); leave it empty or repeat it",
                first.line.unwrap_or(0)
            ),
        })
    };
    if !row.owner.2.is_empty() && row.owner.2 != first.owner.2 {
        conflict("owner", row.line);
    }
    if let Some((line, _, p)) = row.reference_price_cny
        && first.reference_price_cny.as_ref().map(|f| f.2) != Some(p)
    {
        conflict("reference_price_cny", line);
    }
    let values = |l: &[(Option<usize>, String)]| l.iter().map(|x| x.1.clone()).collect::<Vec<_>>();
    for (name, theirs, ours) in [
        ("contacts", &row.contacts.1, &first.contacts.1),
        (
            "authorized_sellers",
            &row.authorized_sellers.1,
            &first.authorized_sellers.1,
        ),
        ("aliases", &row.aliases.1, &first.aliases.1),
        ("domains", &row.domains.1, &first.domains.1),
    ] {
        if !theirs.is_empty() && values(theirs) != values(ours) {
            conflict(name, row.line);
        }
    }
    let floors = |l: &[RawPriceFields]| {
        l.iter()
            .map(|p| {
                // Classes as a set, the way they are kept.
                let mut classes: Vec<i64> = p.classes.1.iter().map(|c| c.1).collect();
                classes.sort_unstable();
                classes.dedup();
                (values(&p.words.1), classes, p.min_price_cny.2)
            })
            .collect::<Vec<_>>()
    };
    if !row.prices.is_empty() && floors(&row.prices) != floors(&first.prices) {
        conflict("prices", row.line);
    }
    for (name, theirs, ours) in [
        ("alert_mode", &row.alerts.mode, &mut first.alerts.mode),
        ("alert_digest", &row.alerts.digest, &mut first.alerts.digest),
        (
            "alert_language",
            &row.alerts.language,
            &mut first.alerts.language,
        ),
        ("alert_report", &row.alerts.report, &mut first.alerts.report),
    ] {
        match (theirs, ours.as_ref()) {
            (Some(t), Some(o)) if t.2 != o.2 => conflict(name, row.line),
            (Some(t), None) => *ours = Some(t.clone()),
            _ => {}
        }
    }
    for (name, theirs, ours) in [
        ("well_known", &row.well_known, &mut first.well_known),
        (
            "watch_unauthorised",
            &row.watch_unauthorised,
            &mut first.watch_unauthorised,
        ),
        (
            "trust_official_stores",
            &row.trust_official_stores,
            &mut first.trust_official_stores,
        ),
    ] {
        match (theirs, ours.as_ref()) {
            (Some(t), Some(o)) if t.2 != o.2 => conflict(name, row.line),
            (Some(t), None) => *ours = Some(t.clone()),
            _ => {}
        }
    }
}

// ---------------------------------------------------------------- validation

type Cell<T> = (Option<usize>, String, T);

/// A brand as read from either format, each value with its line and field name.
struct RawBrandFields {
    line: Option<usize>,
    field: String,
    name: Cell<String>,
    owner: Cell<String>,
    contacts: (String, Vec<(Option<usize>, String)>),
    reference_price_cny: Option<Cell<f64>>,
    authorized_sellers: (String, Vec<(Option<usize>, String)>),
    aliases: (String, Vec<(Option<usize>, String)>),
    domains: (String, Vec<(Option<usize>, String)>),
    well_known: Option<Cell<bool>>,
    watch_unauthorised: Option<Cell<bool>>,
    trust_official_stores: Option<Cell<bool>>,
    prices: Vec<RawPriceFields>,
    marks: Vec<RawMarkFields>,
    alerts: RawAlertFields,
}

struct RawPriceFields {
    line: Option<usize>,
    /// The entry as a whole (`brand[0].price[1]`; `prices` in CSV).
    field: String,
    words: (String, Vec<(Option<usize>, String)>),
    classes: (String, Vec<(Option<usize>, i64)>),
    min_price_cny: Cell<f64>,
}

#[derive(Default)]
struct RawAlertFields {
    mode: Option<Cell<String>>,
    digest: Option<Cell<String>>,
    language: Option<Cell<String>>,
    report: Option<Cell<String>>,
}

struct RawMarkFields {
    line: Option<usize>,
    field: String,
    text: Cell<String>,
    jurisdiction: Cell<String>,
    registration_no: Cell<String>,
    classes: Cell<Vec<(Option<usize>, i64)>>,
    expires: Option<Cell<String>>,
}

#[derive(Default)]
struct Validator {
    problems: Vec<Problem>,
    /// Brand name -> line of its first definition.
    seen: HashMap<String, Option<usize>>,
}

impl Validator {
    fn problem(&mut self, line: Option<usize>, field: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            line,
            field: field.to_owned(),
            message: message.into(),
        });
    }

    /// A required, single-line text value.
    fn text(&mut self, (line, field, value): Cell<String>) -> String {
        let value = value.trim().to_owned();
        if value.is_empty() {
            self.problem(line, &field, "must not be empty");
        } else if value.chars().any(char::is_control) {
            self.problem(line, &field, "must not contain control characters");
        }
        value
    }

    fn list(&mut self, (field, items): (String, Vec<(Option<usize>, String)>)) -> Vec<String> {
        items
            .into_iter()
            .map(|(line, value)| self.text((line, field.clone(), value)))
            .collect()
    }

    /// The brand's own domain names, lower-cased; each must be a name DNS can carry.
    fn domains(&mut self, (field, items): (String, Vec<(Option<usize>, String)>)) -> Vec<String> {
        let mut out = Vec::with_capacity(items.len());
        for (line, value) in items {
            let name = self.text((line, field.clone(), value));
            let name = name.trim_end_matches('.').to_lowercase();
            match idna::domain_to_ascii(&name) {
                Ok(ascii) if ascii.contains('.') && !ascii.starts_with('.') => out.push(name),
                _ => self.problem(
                    line,
                    &field,
                    format!("`{name}` is not a domain name (like nike.com.cn)"),
                ),
            }
        }
        out
    }

    fn brand(&mut self, raw: RawBrandFields) -> Option<Brand> {
        let before = self.problems.len();
        let name_line = raw.name.0;
        let name = self.text(raw.name);
        if !name.is_empty() {
            if let Some(first) = self.seen.get(&name) {
                let message = match first {
                    Some(l) => format!("brand `{name}` is already defined at line {l}"),
                    None => format!("brand `{name}` is defined twice"),
                };
                self.problem(name_line, &format!("{}.name", raw.field), message);
            } else {
                self.seen.insert(name.clone(), name_line);
            }
        }
        let owner = self.text(raw.owner);
        let contacts = raw.contacts.0.clone();
        let contacts_line = raw.contacts.1.first().and_then(|c| c.0);
        let contacts_list = self.list(raw.contacts);
        for c in &contacts_list {
            if !looks_like_email(c) {
                self.problem(
                    contacts_line,
                    &contacts,
                    format!("`{c}` is not an email address"),
                );
            }
        }
        let reference_price_cny = raw.reference_price_cny.map(|(line, field, p)| {
            if !(p.is_finite() && p > 0.0) {
                self.problem(line, &field, "must be a positive number of CNY");
            }
            p
        });
        let authorized_sellers = self.list(raw.authorized_sellers);
        let aliases = self.list(raw.aliases);
        let domains = self.domains(raw.domains);
        let prices: Vec<PriceFloor> = raw.prices.into_iter().map(|p| self.price(p)).collect();
        let alerts = self.alerts(raw.alerts);
        if raw.marks.is_empty() {
            self.problem(
                raw.line,
                &raw.field,
                format!("brand `{name}` has no marks; add at least one [[brand.mark]]"),
            );
        }
        let mut marks: Vec<Mark> = Vec::with_capacity(raw.marks.len());
        let mut listed = HashSet::with_capacity(raw.marks.len());
        for rm in raw.marks {
            let (line, field) = (rm.line, rm.field.clone());
            let Some(mark) = self.mark(rm) else {
                continue;
            };
            if !listed.insert((mark.text.clone(), mark.jurisdiction.clone())) {
                let message = format!(
                    "mark `{}` in {} is listed twice for brand `{name}`",
                    mark.text, mark.jurisdiction
                );
                self.problem(line, &field, message);
            }
            marks.push(mark);
        }
        (self.problems.len() == before).then_some(Brand {
            name,
            owner,
            contacts: contacts_list,
            reference_price_cny,
            authorized_sellers,
            aliases,
            domains,
            marks,
            alerts,
            prices,
            well_known: raw.well_known.is_some_and(|c| c.2),
            watch_unauthorised: raw.watch_unauthorised.is_none_or(|c| c.2),
            trust_official_stores: raw.trust_official_stores.is_none_or(|c| c.2),
            images: Vec::new(),
        })
    }

    fn price(&mut self, raw: RawPriceFields) -> PriceFloor {
        if raw.words.1.is_empty() && raw.classes.1.is_empty() {
            self.problem(
                raw.line,
                &raw.field,
                "names no goods; give at least one word or Nice class",
            );
        }
        let words = self.list(raw.words);
        let (field, classes) = raw.classes;
        let classes = self.classes(raw.line, &field, classes);
        let (line, field, min_price_cny) = raw.min_price_cny;
        if !(min_price_cny.is_finite() && min_price_cny > 0.0) {
            self.problem(line, &field, "must be a positive number of CNY");
        }
        PriceFloor {
            words,
            classes,
            min_price_cny,
        }
    }

    /// Nice classes, sorted and without repeats; each one outside 1–45 is a problem.
    fn classes(
        &mut self,
        line: Option<usize>,
        field: &str,
        raw: Vec<(Option<usize>, i64)>,
    ) -> Vec<u8> {
        let mut classes = Vec::with_capacity(raw.len());
        for (at, c) in raw {
            match u8::try_from(c) {
                Ok(c @ 1..=45) => classes.push(c),
                _ => self.problem(
                    at.or(line),
                    field,
                    format!("class {c} is outside the Nice classes 1–45"),
                ),
            }
        }
        classes.sort_unstable();
        classes.dedup();
        classes
    }

    fn alerts(&mut self, raw: RawAlertFields) -> AlertPrefs {
        let mut prefs = AlertPrefs::default();
        if let Some((line, field, v)) = raw.mode {
            match v.trim().parse::<AlertMode>() {
                Ok(m) => prefs.mode = m,
                Err(_) => self.problem(
                    line,
                    &field,
                    format!("`{v}` is not an alert mode; use immediate, digest or off"),
                ),
            }
        }
        if let Some((line, field, v)) = raw.digest {
            match crate::alert::parse_schedule(&v) {
                Ok(_) => prefs.digest = Some(v.trim().to_owned()),
                Err(e) => self.problem(line, &field, e.to_string()),
            }
        }
        if let Some((line, field, v)) = raw.language {
            match v.trim().parse::<Language>() {
                Ok(l) => prefs.language = l,
                Err(_) => self.problem(
                    line,
                    &field,
                    format!("`{v}` is not a language; use en or zh"),
                ),
            }
        }
        if let Some((line, field, v)) = raw.report {
            match v.trim().parse::<ReportSchedule>() {
                Ok(r) => prefs.report = r,
                Err(_) => self.problem(
                    line,
                    &field,
                    format!("`{v}` is not a report schedule; use monthly or off"),
                ),
            }
        }
        prefs
    }

    fn mark(&mut self, raw: RawMarkFields) -> Option<Mark> {
        let before = self.problems.len();
        let text = self.text(raw.text);
        let (jline, jfield, jurisdiction) = raw.jurisdiction;
        let jurisdiction = jurisdiction.trim().to_ascii_uppercase();
        let valid_jurisdiction = matches!(jurisdiction.as_str(), "WIPO" | "EU")
            || (jurisdiction.len() == 2 && jurisdiction.bytes().all(|b| b.is_ascii_uppercase()));
        if !valid_jurisdiction {
            self.problem(
                jline,
                &jfield,
                format!("`{jurisdiction}` is not an ISO country code, WIPO or EU"),
            );
        }
        let registration_no = self.text(raw.registration_no);
        let (cline, cfield, raw_classes) = raw.classes;
        if raw_classes.is_empty() {
            self.problem(cline, &cfield, "must list at least one Nice class");
        }
        let classes = self.classes(cline, &cfield, raw_classes);
        let expires = raw.expires.and_then(|(line, field, e)| {
            match NaiveDate::parse_from_str(e.trim(), "%Y-%m-%d") {
                Ok(d) => Some(d),
                Err(_) => {
                    self.problem(line, &field, format!("`{e}` is not a date like 2031-05-01"));
                    None
                }
            }
        });
        (self.problems.len() == before).then_some(Mark {
            text,
            jurisdiction,
            registration_no,
            classes,
            expires,
        })
    }

    fn finish(mut self, brands: Vec<Brand>) -> Result<Vec<Brand>, Vec<Problem>> {
        if self.problems.is_empty() {
            Ok(brands)
        } else {
            self.problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
            Err(self.problems)
        }
    }
}

fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

// ---------------------------------------------------------------- export

#[derive(Serialize)]
struct OutFile<'a> {
    brand: Vec<OutBrand<'a>>,
}

#[derive(Serialize)]
struct OutBrand<'a> {
    name: &'a str,
    owner: &'a str,
    contacts: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    reference_price_cny: Option<Price>,
    authorized_sellers: &'a [String],
    aliases: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    domains: &'a [String],
    // The switches are written only where they differ from the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    well_known: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    watch_unauthorised: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trust_official_stores: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alerts: Option<&'a AlertPrefs>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    price: Vec<OutPrice<'a>>,
    mark: Vec<OutMark<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    image: Vec<OutImage<'a>>,
}

#[derive(Serialize)]
struct OutImage<'a> {
    path: &'a str,
    kind: &'static str,
}

#[derive(Serialize)]
struct OutPrice<'a> {
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    words: &'a [String],
    #[serde(skip_serializing_if = "<[u8]>::is_empty")]
    classes: &'a [u8],
    min_price_cny: Price,
}

#[derive(Serialize)]
struct OutMark<'a> {
    text: &'a str,
    jurisdiction: &'a str,
    registration_no: &'a str,
    classes: &'a [u8],
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
}

/// Writes whole prices as integers, the way people write them in the file.
struct Price(f64);

impl Serialize for Price {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.fract() == 0.0 && self.0.abs() < 1e15 {
            s.serialize_i64(self.0 as i64)
        } else {
            s.serialize_f64(self.0)
        }
    }
}

/// Renders brands in the registry's TOML format; `parse_toml` reads it back unchanged.
pub fn to_toml(brands: &[Brand]) -> String {
    let file = OutFile {
        brand: brands
            .iter()
            .map(|b| OutBrand {
                name: &b.name,
                owner: &b.owner,
                contacts: &b.contacts,
                reference_price_cny: b.reference_price_cny.map(Price),
                authorized_sellers: &b.authorized_sellers,
                aliases: &b.aliases,
                domains: &b.domains,
                well_known: b.well_known.then_some(true),
                watch_unauthorised: (!b.watch_unauthorised).then_some(false),
                trust_official_stores: (!b.trust_official_stores).then_some(false),
                alerts: (b.alerts != AlertPrefs::default()).then_some(&b.alerts),
                price: b
                    .prices
                    .iter()
                    .map(|p| OutPrice {
                        words: &p.words,
                        classes: &p.classes,
                        min_price_cny: Price(p.min_price_cny),
                    })
                    .collect(),
                mark: b
                    .marks
                    .iter()
                    .map(|m| OutMark {
                        text: &m.text,
                        jurisdiction: &m.jurisdiction,
                        registration_no: &m.registration_no,
                        classes: &m.classes,
                        expires: m.expires.map(|d| d.format("%Y-%m-%d").to_string()),
                    })
                    .collect(),
                image: b
                    .images
                    .iter()
                    .map(|i| OutImage {
                        path: &i.path,
                        kind: i.kind.as_str(),
                    })
                    .collect(),
            })
            .collect(),
    };
    // Only strings, numbers, booleans and arrays: serialisation cannot fail.
    toml::to_string(&file).expect("registry serialises to TOML")
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}: {}", self.field, self.message),
            None => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NIKE: &str = r#"
[[brand]]
name = "Nike"
owner = "Nike Innovate C.V."
contacts = ["ip@nike.example"]
reference_price_cny = 500
authorized_sellers = ["Nike官方旗舰店"]
aliases = ["N家"]

  [[brand.mark]]
  text = "NIKE"
  jurisdiction = "CN"
  registration_no = "TEST-1234567"
  classes = [25, 18, 28]
  expires = "2031-05-01"
"#;

    fn problems(src: &str) -> Vec<Problem> {
        parse_toml(src).expect_err("should be invalid")
    }

    #[test]
    fn own_domains_are_read_checked_and_written_back() {
        let src = NIKE.replace(
            "aliases =",
            "domains = [\"Nike.com.CN\", \"耐克.中国\"]\naliases =",
        );
        let brands = parse_toml(&src).unwrap();
        assert_eq!(brands[0].domains, ["nike.com.cn", "耐克.中国"]);
        assert_eq!(parse_toml(&to_toml(&brands)).unwrap(), brands);

        let bad = problems(&NIKE.replace("aliases =", "domains = [\"not a domain\"]\naliases ="));
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].field, "brand[0].domains");
        assert!(bad[0].message.contains("not a domain name"), "{:?}", bad[0]);

        let csv = "name,owner,text,jurisdiction,registration_no,classes,domains\n\
                   Nike,Nike Inc.,NIKE,CN,1,25,nike.com.cn; nike.cn\n";
        assert_eq!(
            parse_csv(csv).unwrap()[0].domains,
            ["nike.com.cn", "nike.cn"]
        );
    }

    #[test]
    fn reads_the_documented_format() {
        let brands = parse_toml(NIKE).unwrap();
        assert_eq!(brands.len(), 1);
        let nike = &brands[0];
        assert_eq!(nike.reference_price_cny, Some(500.0));
        assert_eq!(nike.marks[0].classes, vec![18, 25, 28]);
        assert_eq!(nike.marks[0].expires, NaiveDate::from_ymd_opt(2031, 5, 1));
    }

    #[test]
    fn class_out_of_range_names_line_and_field() {
        let src = NIKE.replace("[25, 18, 28]", "[25, 46]");
        let p = problems(&src);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].line, Some(14));
        assert_eq!(p[0].field, "brand[0].mark[0].classes");
        assert!(p[0].message.contains("46"));
    }

    #[test]
    fn unknown_key_names_line() {
        let src = NIKE.replace("aliases =", "alias =");
        let p = problems(&src);
        assert_eq!(p[0].line, Some(8), "{p:?}");
        assert!(p[0].message.contains("alias"), "{p:?}");
    }

    #[test]
    fn brand_without_marks() {
        let p = problems("[[brand]]\nname = \"X\"\nowner = \"Y\"\n");
        assert_eq!(p[0].line, Some(1));
        assert!(p[0].message.contains("no marks"));
    }

    #[test]
    fn duplicate_brand_points_to_first() {
        let p = problems(&format!("{NIKE}\n{NIKE}"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].message.contains("line 3"), "{p:?}");
    }

    #[test]
    fn bad_dates_and_emails() {
        let src = NIKE
            .replace("2031-05-01", "2031-13-01")
            .replace("ip@nike.example", "nobody");
        let p = problems(&src);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].field, "brand[0].contacts");
        assert_eq!(p[1].field, "brand[0].mark[0].expires");
    }

    #[test]
    fn csv_reads_rows_per_mark() {
        let csv = "name,owner,contacts,reference_price_cny,authorized_sellers,aliases,text,jurisdiction,registration_no,classes,expires\n\
            Nike,Nike Innovate C.V.,ip@nike.example,500,Nike官方旗舰店;NIKE京东自营旗舰店,N家,NIKE,CN,TEST-1,18;25;28,2031-05-01\n\
            Nike,,,,,,耐克,CN,TEST-2,25,\n";
        let brands = parse_csv(csv).unwrap();
        assert_eq!(brands.len(), 1);
        assert_eq!(brands[0].marks.len(), 2);
        assert_eq!(brands[0].authorized_sellers.len(), 2);
        assert_eq!(brands[0].marks[1].expires, None);
    }

    #[test]
    fn csv_conflicting_owner_is_an_error() {
        let csv = "name,owner,text,jurisdiction,registration_no,classes\n\
            Nike,A,NIKE,CN,T-1,25\n\
            Nike,B,耐克,CN,T-2,25\n";
        let p = parse_csv(csv).unwrap_err();
        assert_eq!(p[0].line, Some(3));
        assert_eq!(p[0].field, "owner");
    }

    #[test]
    fn csv_unknown_column() {
        let p =
            parse_csv("name,owner,text,jurisdiction,registration_no,classes,colour\n").unwrap_err();
        assert_eq!(p[0].field, "colour");
    }

    #[test]
    fn export_round_trips() {
        let brands = parse_toml(NIKE).unwrap();
        assert_eq!(parse_toml(&to_toml(&brands)).unwrap(), brands);
        let out = to_toml(&brands);
        for default in [
            "well_known",
            "watch_unauthorised",
            "trust_official_stores",
            "brand.price",
        ] {
            assert!(!out.contains(default), "{out}");
        }
        let brands = parse_toml(&nike_matching()).unwrap();
        let out = to_toml(&brands);
        assert!(out.contains("[[brand.price]]"), "{out}");
        assert!(out.contains("min_price_cny = 99\n"), "{out}");
        assert_eq!(parse_toml(&out).unwrap(), brands);
    }

    /// [`NIKE`] with the matching switches set and two price floors.
    fn nike_matching() -> String {
        let switches =
            "well_known = true\nwatch_unauthorised = false\ntrust_official_stores = false\n";
        let prices = r#"
  [[brand.price]]
  words = ["耳机", "earphones"]
  classes = [9]
  min_price_cny = 99

  [[brand.price]]
  classes = [25, 18]
  min_price_cny = 450.5
"#;
        let with_switches = NIKE.replace("aliases =", &format!("{switches}aliases ="));
        format!("{with_switches}{prices}")
    }

    #[test]
    fn matching_switches_and_price_floors() {
        let nike = &parse_toml(&nike_matching()).unwrap()[0];
        assert!(nike.well_known);
        assert!(!nike.watch_unauthorised);
        assert!(!nike.trust_official_stores);
        assert_eq!(
            nike.prices,
            vec![
                PriceFloor {
                    words: vec!["耳机".into(), "earphones".into()],
                    classes: vec![9],
                    min_price_cny: 99.0,
                },
                PriceFloor {
                    words: vec![],
                    classes: vec![18, 25],
                    min_price_cny: 450.5,
                },
            ]
        );
        let plain = &parse_toml(NIKE).unwrap()[0];
        assert!(!plain.well_known && plain.watch_unauthorised && plain.trust_official_stores);
        assert!(plain.prices.is_empty());
    }

    #[test]
    fn bad_price_floors_name_line_and_field() {
        let src = format!(
            "{NIKE}\n  [[brand.price]]\n  min_price_cny = 5\n\n  [[brand.price]]\n  words = [\"耳机\", \" \", \"a\\u0007b\"]\n  classes = [0, 9]\n  min_price_cny = -1\n"
        );
        let p = problems(&src);
        let got: Vec<(&str, Option<usize>)> =
            p.iter().map(|p| (p.field.as_str(), p.line)).collect();
        assert_eq!(
            got,
            vec![
                ("brand[0].price[0]", Some(17)),
                ("brand[0].price[1].words", Some(21)),
                ("brand[0].price[1].words", Some(21)),
                ("brand[0].price[1].classes", Some(22)),
                ("brand[0].price[1].min_price_cny", Some(23)),
            ],
            "{p:?}"
        );
        assert!(p[0].message.contains("no goods"), "{p:?}");
        assert!(p[1].message.contains("empty"), "{p:?}");
        assert!(p[2].message.contains("control"), "{p:?}");
        assert!(p[3].message.contains("class 0"), "{p:?}");
        assert!(p[4].message.contains("positive"), "{p:?}");
        // A floor needs its price; a typo is an unknown key.
        let p = problems(&format!("{NIKE}\n  [[brand.price]]\n  classes = [9]\n"));
        assert!(p[0].message.contains("min_price_cny"), "{p:?}");
        let p = problems(&format!(
            "{NIKE}\n  [[brand.price]]\n  word = [\"x\"]\n  min_price_cny = 1\n"
        ));
        assert!(p[0].message.contains("word"), "{p:?}");
        let p = problems(&NIKE.replace("aliases =", "well_known = \"yes\"\naliases ="));
        assert_eq!(p[0].line, Some(8), "{p:?}");
    }

    #[test]
    fn csv_switches_and_prices() {
        let header = "name,owner,text,jurisdiction,registration_no,classes,well_known,watch_unauthorised,trust_official_stores,prices\n";
        let csv = format!(
            "{header}Nike,N,NIKE,CN,T-1,25,yes,0,FALSE,耳机|earphones|9=99; 25 | 18 = 450.5\n\
             Nike,,耐克,CN,T-2,25,,,,\n\
             Nike,,NIKE,EU,T-3,25,true,no,false,耳机|earphones|9=99;18|25=450.5\n"
        );
        let brands = parse_csv(&csv).unwrap();
        let toml = parse_toml(&nike_matching()).unwrap();
        assert!(brands[0].well_known && !brands[0].watch_unauthorised);
        assert!(!brands[0].trust_official_stores);
        assert_eq!(brands[0].prices[0].words, toml[0].prices[0].words);
        assert_eq!(brands[0].prices[0].classes, vec![9]);
        assert_eq!(brands[0].prices[1], toml[0].prices[1]);
        // Defaults when the columns are absent or empty.
        let plain = parse_csv(
            "name,owner,text,jurisdiction,registration_no,classes,prices\nNike,N,NIKE,CN,T-1,25,\n",
        )
        .unwrap();
        assert!(!plain[0].well_known && plain[0].watch_unauthorised && plain[0].prices.is_empty());

        let bad = format!(
            "{header}Nike,N,NIKE,CN,T-1,25,maybe,,,耳机; 46=10; x=cheap; =5\n\
             Nike,,耐克,CN,T-2,25,,yes,,9=98\n"
        );
        let p = parse_csv(&bad).unwrap_err();
        let got: Vec<(&str, Option<usize>)> =
            p.iter().map(|p| (p.field.as_str(), p.line)).collect();
        assert_eq!(
            got,
            vec![
                ("well_known", Some(2)),
                ("prices", Some(2)),
                ("prices", Some(2)),
                ("prices", Some(2)),
                ("prices", Some(2)),
                ("prices", Some(3)),
            ],
            "{p:?}"
        );
        assert!(p[1].message.contains("no price"), "{p:?}");
        assert!(p[2].message.contains("cheap"), "{p:?}");
        assert!(p.iter().any(|p| p.message.contains("class 46")), "{p:?}");
        assert!(p.iter().any(|p| p.message.contains("no goods")), "{p:?}");
        assert!(p[5].message.contains("first row"), "{p:?}");
    }

    const ALERTS: &str = "\n  [brand.alerts]\n  mode = \"digest\"\n  digest = \"30 7 * * 1-5\"\n  language = \"zh\"\n  report = \"monthly\"\n";

    #[test]
    fn alert_preferences_read_and_round_trip() {
        let brands = parse_toml(&format!("{NIKE}{ALERTS}")).unwrap();
        let prefs = &brands[0].alerts;
        assert_eq!(prefs.mode, AlertMode::Digest);
        assert_eq!(prefs.digest.as_deref(), Some("30 7 * * 1-5"));
        assert_eq!(prefs.language, Language::Zh);
        assert_eq!(prefs.report, ReportSchedule::Monthly);
        let out = to_toml(&brands);
        assert!(out.contains("report = \"monthly\""), "{out}");
        assert!(out.contains("[brand.alerts]"), "{out}");
        assert_eq!(parse_toml(&out).unwrap(), brands);
        // Defaults are not written out.
        assert!(!to_toml(&parse_toml(NIKE).unwrap()).contains("alerts"));
        assert_eq!(parse_toml(NIKE).unwrap()[0].alerts, AlertPrefs::default());
    }

    #[test]
    fn bad_alert_preferences_name_line_and_field() {
        let src = format!(
            "{NIKE}\n  [brand.alerts]\n  mode = \"sometimes\"\n  digest = \"every day\"\n  language = \"fr\"\n  report = \"weekly\"\n"
        );
        let p = problems(&src);
        let fields: Vec<(&str, Option<usize>)> =
            p.iter().map(|p| (p.field.as_str(), p.line)).collect();
        assert_eq!(
            fields,
            vec![
                ("brand[0].alerts.mode", Some(18)),
                ("brand[0].alerts.digest", Some(19)),
                ("brand[0].alerts.language", Some(20)),
                ("brand[0].alerts.report", Some(21)),
            ],
            "{p:?}"
        );
        assert!(
            p[0].message.contains("immediate, digest or off"),
            "{}",
            p[0].message
        );
        assert!(p[1].message.contains("cron"), "{}", p[1].message);
        assert!(p[3].message.contains("monthly or off"), "{}", p[3].message);
        let p = problems(&format!("{NIKE}\n  [brand.alerts]\n  mood = \"off\"\n"));
        assert!(p[0].message.contains("mood"), "{p:?}");
    }

    #[test]
    fn csv_alert_columns_are_optional_and_must_agree() {
        let header = "name,owner,contacts,text,jurisdiction,registration_no,classes,alert_mode,alert_language\n";
        let csv = format!(
            "{header}Nike,Nike Innovate C.V.,ip@nike.example,NIKE,CN,T-1,25,off,zh\nNike,,,耐克,CN,T-2,25,,\n"
        );
        let brands = parse_csv(&csv).unwrap();
        assert_eq!(brands[0].alerts.mode, AlertMode::Off);
        assert_eq!(brands[0].alerts.language, Language::Zh);
        let csv = format!(
            "{header}Nike,Nike Innovate C.V.,ip@nike.example,NIKE,CN,T-1,25,off,\nNike,,,耐克,CN,T-2,25,digest,\n"
        );
        let p = parse_csv(&csv).unwrap_err();
        assert_eq!(
            (p[0].field.as_str(), p[0].line),
            ("alert_mode", Some(3)),
            "{p:?}"
        );
    }
}
