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

use crate::model::{AlertMode, AlertPrefs, Brand, Language, Mark};

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
    match ext.as_deref() {
        Some("toml") => parse_toml(text).map_err(invalid),
        Some("csv") => parse_csv(text).map_err(invalid),
        _ => Err(RegistryError::Format {
            path: path.to_owned(),
        }),
    }
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
    mark: Vec<Spanned<RawMark>>,
    alerts: Option<RawAlerts>,
}

/// `[brand.alerts]`: every key optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    mode: Option<Spanned<String>>,
    digest: Option<Spanned<String>>,
    language: Option<Spanned<String>>,
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
    let mut v = Validator::default();
    let mut brands = Vec::with_capacity(raw.brand.len());
    for (bi, rb) in raw.brand.into_iter().enumerate() {
        let brand_line = at(rb.span());
        let rb = rb.into_inner();
        let f = |name: &str| format!("brand[{bi}].{name}");
        let texts = |items: Vec<Spanned<String>>| -> Vec<(Option<usize>, String)> {
            items
                .into_iter()
                .map(|s| (at(s.span()), s.into_inner()))
                .collect()
        };
        let mut marks = Vec::with_capacity(rb.mark.len());
        for (mi, rm) in rb.mark.into_iter().enumerate() {
            let mark_line = at(rm.span());
            let rm = rm.into_inner();
            let mf = |name: &str| format!("brand[{bi}].mark[{mi}].{name}");
            let classes_line = at(rm.classes.span());
            let classes = rm
                .classes
                .into_inner()
                .into_iter()
                .map(|c| (at(c.span()), c.into_inner()))
                .collect();
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
                classes: (classes_line, mf("classes"), classes),
                expires: rm
                    .expires
                    .map(|e| (at(e.span()), mf("expires"), e.into_inner())),
            });
        }
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
                    }
                })
                .unwrap_or_default(),
        };
        if let Some(brand) = v.brand(fields) {
            brands.push(brand);
        }
    }
    v.finish(brands)
}

// ---------------------------------------------------------------- CSV

/// CSV columns: one row per mark, brand fields repeated (or left empty) on a brand's later rows.
/// The `alert_*` columns are optional (see `[brand.alerts]` in the TOML format).
pub(crate) const CSV_COLUMNS: [&str; 14] = [
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
        };
        let row_brand = RawBrandFields {
            line,
            field: "name".to_owned(),
            name: cell("name"),
            owner: cell("owner"),
            contacts: ("contacts".to_owned(), list("contacts")),
            reference_price_cny: price,
            authorized_sellers: ("authorized_sellers".to_owned(), list("authorized_sellers")),
            aliases: ("aliases".to_owned(), list("aliases")),
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
    ] {
        if !theirs.is_empty() && values(theirs) != values(ours) {
            conflict(name, row.line);
        }
    }
    for (name, theirs, ours) in [
        ("alert_mode", &row.alerts.mode, &mut first.alerts.mode),
        ("alert_digest", &row.alerts.digest, &mut first.alerts.digest),
        (
            "alert_language",
            &row.alerts.language,
            &mut first.alerts.language,
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
    marks: Vec<RawMarkFields>,
    alerts: RawAlertFields,
}

#[derive(Default)]
struct RawAlertFields {
    mode: Option<Cell<String>>,
    digest: Option<Cell<String>>,
    language: Option<Cell<String>>,
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
            marks,
            alerts,
            ..Brand::default()
        })
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
        let mut classes = Vec::with_capacity(raw_classes.len());
        for (line, c) in raw_classes {
            match u8::try_from(c) {
                Ok(c @ 1..=45) => classes.push(c),
                _ => self.problem(
                    line.or(cline),
                    &cfield,
                    format!("class {c} is outside the Nice classes 1–45"),
                ),
            }
        }
        classes.sort_unstable();
        classes.dedup();
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
    #[serde(skip_serializing_if = "Option::is_none")]
    alerts: Option<&'a AlertPrefs>,
    mark: Vec<OutMark<'a>>,
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
                alerts: (b.alerts != AlertPrefs::default()).then_some(&b.alerts),
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
            })
            .collect(),
    };
    // Only strings, numbers and arrays: serialisation cannot fail.
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
    }

    const ALERTS: &str = "\n  [brand.alerts]\n  mode = \"digest\"\n  digest = \"30 7 * * 1-5\"\n  language = \"zh\"\n";

    #[test]
    fn alert_preferences_read_and_round_trip() {
        let brands = parse_toml(&format!("{NIKE}{ALERTS}")).unwrap();
        let prefs = &brands[0].alerts;
        assert_eq!(prefs.mode, AlertMode::Digest);
        assert_eq!(prefs.digest.as_deref(), Some("30 7 * * 1-5"));
        assert_eq!(prefs.language, Language::Zh);
        let out = to_toml(&brands);
        assert!(out.contains("[brand.alerts]"), "{out}");
        assert_eq!(parse_toml(&out).unwrap(), brands);
        // Defaults are not written out.
        assert!(!to_toml(&parse_toml(NIKE).unwrap()).contains("alerts"));
        assert_eq!(parse_toml(NIKE).unwrap()[0].alerts, AlertPrefs::default());
    }

    #[test]
    fn bad_alert_preferences_name_line_and_field() {
        let src = format!(
            "{NIKE}\n  [brand.alerts]\n  mode = \"sometimes\"\n  digest = \"every day\"\n  language = \"fr\"\n"
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
            ],
            "{p:?}"
        );
        assert!(
            p[0].message.contains("immediate, digest or off"),
            "{}",
            p[0].message
        );
        assert!(p[1].message.contains("cron"), "{}", p[1].message);
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
