//! Applies a [`PlatformDef`] to a fetched page: decoding, wall detection, and one generic
//! engine that reads listings from an HTML list (CSS) or from JSON embedded in a script.
//!
//! Entry points: [`decode_page`], [`detect_block`], [`extract_search`], [`extract_detail`]
//! and [`extract_file`] (all of it, for the `extract` command). Pages are hostile input:
//! nothing here panics on any bytes, and a page cut off mid-way yields only the listings that
//! were complete before the cut.

mod decode;
mod json;
mod price;

use scraper::{ElementRef, Html};
use serde::Serialize;
use serde_json::Value;
use url::Url;

use crate::model::Listing;
use crate::platform::{
    BlockKind, CaptureRule, EmbeddedJson, Field, FieldRule, LastPage, PlatformDef, SearchRules,
};

pub use decode::{CharsetSource, decode_page};
pub(crate) use price::parse_price;

/// Why a page yielded nothing usable.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The page is a captcha or login wall, not the page asked for.
    #[error("{platform}: {url}: blocked by a {kind}")]
    Blocked {
        platform: String,
        url: String,
        kind: BlockKind,
    },
    /// The definition has no `search` (or `detail`) rules for this kind of page.
    #[error("{platform}: the definition has no `{section}` rules")]
    NoRules {
        platform: String,
        section: &'static str,
    },
    /// The embedded JSON the definition reads is not in the page.
    #[error("{platform}: {url}: embedded JSON (`{what}`) not found; the layout may have changed")]
    JsonNotFound {
        platform: String,
        url: String,
        what: String,
    },
    /// No listings, and the page is not the platform's "no results" page either.
    #[error(
        "{platform}: {url}: no listings and no \"no results\" marker; the layout may have changed"
    )]
    NoListings { platform: String, url: String },
}

/// A listing as read from a search page, with everything the page showed.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Extracted {
    pub item_id: String,
    pub title: String,
    /// Canonical item URL in the platform's real form.
    pub url: String,
    /// The link the page gave (an ad's click redirect, say), made absolute.
    pub detail_url: Option<String>,
    pub seller: Option<String>,
    pub seller_id: Option<String>,
    /// Lowest displayed price.
    pub price: Option<f64>,
    /// Upper bound when the page showed a range.
    pub price_max: Option<f64>,
    /// The price as displayed.
    pub price_text: Option<String>,
    pub location: Option<String>,
    pub sales: Option<String>,
    pub image: Option<String>,
    pub is_ad: bool,
    /// The page marks the shop as the platform's own.
    pub self_operated: bool,
    /// ISO 4217 code of the price: the page's, else the definition's.
    pub currency: String,
}

impl Extracted {
    /// The shared model's view of this listing.
    pub fn to_listing(&self, def: &PlatformDef) -> Listing {
        Listing {
            platform: def.platform.clone(),
            item_id: self.item_id.clone(),
            url: self.url.clone(),
            title: self.title.clone(),
            seller: self.seller.clone(),
            seller_id: self.seller_id.clone().filter(|s| !s.trim().is_empty()),
            ship_from: self.location.clone().filter(|s| !s.trim().is_empty()),
            price: self.price,
            currency: self.currency.clone(),
            category: None,
            is_ad: self.is_ad,
            self_operated: self.self_operated,
            image: self.image.clone(),
            image_hashes: Vec::new(),
        }
    }
}

/// What a search results page held.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SearchPage {
    pub listings: Vec<Extracted>,
    /// Whether another results page follows.
    pub has_next: bool,
    pub current_page: Option<u32>,
    pub total_pages: Option<u32>,
    /// The page was cut off; listings after the cut are missing (refetch it).
    pub truncated: bool,
    /// Listing entries skipped for lacking an item id or title.
    pub skipped: usize,
    /// Of those, skipped for lacking an item id.
    pub skipped_no_id: usize,
    /// Of those, skipped for lacking a title.
    pub skipped_no_title: usize,
    /// Listing nodes (HTML) or array entries (JSON) the item rule matched.
    pub nodes: usize,
    /// The page matched the definition's `empty_marker`: a genuine "no results" page.
    pub empty_page: bool,
    /// Why the embedded JSON could not be read, when it could not.
    pub json_error: Option<String>,
    /// Captured API replies whose URL matched `search.capture` (0: the page itself was read).
    pub captures_matched: usize,
    /// Of those, replies without a listing array (API errors such as `FAIL_SYS_TOKEN_EMPTY`),
    /// skipped.
    pub captures_skipped: usize,
}

impl SearchPage {
    fn tally(&mut self, read: Result<Extracted, Skip>) {
        self.nodes += 1;
        match read {
            Ok(l) => self.listings.push(l),
            Err(skip) => {
                self.skipped += 1;
                match skip {
                    Skip::NoId => self.skipped_no_id += 1,
                    Skip::NoTitle => self.skipped_no_title += 1,
                }
            }
        }
    }
}

/// Why a listing node was skipped.
enum Skip {
    NoId,
    NoTitle,
}

/// What an item detail page held.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DetailFields {
    pub item_id: Option<String>,
    pub title: Option<String>,
    pub seller: Option<String>,
    pub price: Option<f64>,
    pub price_max: Option<f64>,
    /// Breadcrumb, outermost first.
    pub category: Vec<String>,
    /// Absolute image URLs.
    pub images: Vec<String>,
    pub sales: Option<String>,
    /// The page marks the shop as the platform's own.
    pub self_operated: bool,
    /// ISO 4217 code of the price: the page's, else the definition's.
    pub currency: String,
}

impl DetailFields {
    /// A listing from a detail page that named its item id and title.
    pub fn to_listing(&self, def: &PlatformDef) -> Option<Listing> {
        let item_id = self.item_id.clone()?;
        Some(Listing {
            platform: def.platform.clone(),
            url: def.item_url(&item_id),
            item_id,
            title: self.title.clone()?,
            seller: self.seller.clone(),
            seller_id: None,
            ship_from: None,
            price: self.price,
            currency: self.currency.clone(),
            category: (!self.category.is_empty()).then(|| self.category.join(" > ")),
            is_ad: false,
            self_operated: self.self_operated,
            image: self.images.first().cloned(),
            image_hashes: Vec::new(),
        })
    }
}

/// The wall this page is, if any.
pub fn detect_block(def: &PlatformDef, text: &str) -> Option<BlockKind> {
    let mut doc = None;
    def.blocked
        .iter()
        .filter(|m| m.compiled.as_ref().is_some_and(|re| re.is_match(text)))
        .find(|m| {
            let Some(u) = &m.unless else { return true };
            if let Some(re) = &u.compiled_regex {
                return !re.is_match(text);
            }
            match &u.selector {
                // Parsed only when a marker matched, and once.
                Some(sel) => doc
                    .get_or_insert_with(|| Html::parse_document(text))
                    .select(sel)
                    .next()
                    .is_none(),
                None => true,
            }
        })
        .map(|m| m.kind)
}

/// The definition's rules for a page section, unless the page is a wall (never parsed).
fn rules_for<'a, T>(
    def: &PlatformDef,
    rules: Option<&'a T>,
    section: &'static str,
    text: &str,
    page_url: &str,
) -> Result<&'a T, ExtractError> {
    let rules = rules.ok_or_else(|| ExtractError::NoRules {
        platform: def.platform.clone(),
        section,
    })?;
    match detect_block(def, text) {
        Some(kind) => Err(ExtractError::Blocked {
            platform: def.platform.clone(),
            url: page_url.to_string(),
            kind,
        }),
        None => Ok(rules),
    }
}

/// Reads a search results page. `page_url` (where it was fetched) names the page in errors;
/// relative links resolve against the definition's real search URL.
pub fn extract_search(
    def: &PlatformDef,
    text: &str,
    page_url: &str,
) -> Result<SearchPage, ExtractError> {
    let page = extract_search_lenient(def, text, page_url)?;
    require_listings(def, page, page_url)
}

/// The layout-change check: no listings, not cut off, and not a declared "no results" page.
fn require_listings(
    def: &PlatformDef,
    page: SearchPage,
    page_url: &str,
) -> Result<SearchPage, ExtractError> {
    if page.listings.is_empty()
        && page.skipped == 0
        && !page.truncated
        && (def.search.as_ref().is_some_and(|r| r.empty_regex.is_some())
            || page.captures_matched > 0)
        && !page.empty_page
    {
        return Err(ExtractError::NoListings {
            platform: def.platform.clone(),
            url: page_url.to_string(),
        });
    }
    Ok(page)
}

/// [`extract_search`] without the layout-change check: a page with no listings is returned as
/// it is, with its counts, for `markwatch extract` to explain.
pub fn extract_search_lenient(
    def: &PlatformDef,
    text: &str,
    page_url: &str,
) -> Result<SearchPage, ExtractError> {
    let rules = rules_for(def, def.search.as_ref(), "search", text, page_url)?;
    let mut page = match &rules.json {
        Some(spec) => search_json(def, rules, spec, text, page_url, def.format.is_html())?,
        None => search_html(def, rules, text),
    };
    absolute_links(def, &mut page);
    page.empty_page =
        page.listings.is_empty() && rules.empty_regex.as_ref().is_some_and(|m| m.is_match(text));
    Ok(page)
}

/// Links resolve against the platform's real origin, not wherever the page was fetched from
/// (a fixture server or proxy), so stored URLs keep the real form.
fn absolute_links(def: &PlatformDef, page: &mut SearchPage) {
    let base = Url::parse(&def.search_url("", 1)).ok();
    for l in &mut page.listings {
        l.url = def.item_url(&l.item_id);
        if let (Some(d), Some(base)) = (&l.detail_url, &base)
            && let Ok(abs) = base.join(d)
        {
            l.detail_url = Some(abs.to_string());
        }
        if let (Some(img), Some(base)) = (&l.image, &base)
            && let Ok(abs) = base.join(img)
        {
            l.image = Some(abs.to_string());
        }
    }
}

/// An API reply the browser captured while a page loaded, its body decoded
/// ([`decode_capture`]).
#[derive(Debug, Clone, Copy)]
pub struct CapturedReply<'a> {
    /// The URL the page's script requested.
    pub url: &'a str,
    pub body: &'a str,
}

/// A captured reply's bytes as text: UTF-8, unless its Content-Type names another charset (a
/// byte-order mark wins over both).
pub fn decode_capture(bytes: &[u8], content_type: Option<&str>) -> String {
    let enc = content_type
        .and_then(decode::charset_from_content_type)
        .unwrap_or(encoding_rs::UTF_8);
    enc.decode(bytes).0.into_owned()
}

/// Whether a captured reply is one a search page is read from: it holds the rule's listing
/// array (an empty one too). The browser waits for such a reply before it reads the page.
pub fn capture_answers(rule: &CaptureRule, body: &str) -> bool {
    json::capture(&rule.json, body, rule.json.items.as_deref(), &[], &[])
        .is_some_and(|c| c.items_found)
}

/// The wall a browser page is, if any: its rendered DOM, or any reply its script received
/// (mtop answers `FAIL_SYS_USER_VALIDATE` with a punish URL while the DOM is still a shell).
pub fn detect_block_captured(
    def: &PlatformDef,
    dom: &str,
    captures: &[CapturedReply<'_>],
) -> Option<BlockKind> {
    detect_block(def, dom).or_else(|| captures.iter().find_map(|c| detect_block(def, c.body)))
}

/// Reads a page fetched by the browser: its rendered DOM `dom` and the API replies captured
/// while it loaded. With a `search.capture` rule and matching replies, the listings come from
/// those replies, in order; replies without the listing array (API errors) are skipped.
/// Otherwise the DOM is read as [`extract_search`] reads a page.
pub fn extract_search_captured(
    def: &PlatformDef,
    dom: &str,
    captures: &[CapturedReply<'_>],
    page_url: &str,
) -> Result<SearchPage, ExtractError> {
    let page = extract_search_captured_lenient(def, dom, captures, page_url)?;
    require_listings(def, page, page_url)
}

/// [`extract_search_captured`] without the layout-change check (for `markwatch extract`).
pub fn extract_search_captured_lenient(
    def: &PlatformDef,
    dom: &str,
    captures: &[CapturedReply<'_>],
    page_url: &str,
) -> Result<SearchPage, ExtractError> {
    let rules = def.search.as_ref().ok_or_else(|| ExtractError::NoRules {
        platform: def.platform.clone(),
        section: "search",
    })?;
    if let Some(kind) = detect_block_captured(def, dom, captures) {
        return Err(ExtractError::Blocked {
            platform: def.platform.clone(),
            url: page_url.to_string(),
            kind,
        });
    }
    let Some(rule) = &rules.capture else {
        return extract_search_lenient(def, dom, page_url);
    };
    let matching: Vec<&CapturedReply<'_>> =
        captures.iter().filter(|c| rule.matches(c.url)).collect();
    if matching.is_empty() {
        return extract_search_lenient(def, dom, page_url);
    }
    let mut page = SearchPage {
        captures_matched: matching.len(),
        ..SearchPage::default()
    };
    let mut answered = false;
    let mut last_error = None;
    for reply in matching {
        let one = match search_json(def, rules, &rule.json, reply.body, reply.url, false) {
            Ok(one) if one.json_error.is_none() => one,
            Ok(one) => {
                page.captures_skipped += 1;
                last_error = one.json_error;
                continue;
            }
            Err(e) => {
                page.captures_skipped += 1;
                last_error = Some(e.to_string());
                continue;
            }
        };
        answered = true;
        page.listings.extend(one.listings);
        page.skipped += one.skipped;
        page.skipped_no_id += one.skipped_no_id;
        page.skipped_no_title += one.skipped_no_title;
        page.nodes += one.nodes;
        page.truncated |= one.truncated;
        page.has_next = one.has_next;
        page.current_page = one.current_page;
        page.total_pages = one.total_pages;
    }
    if !answered {
        page.json_error = Some(format!(
            "{} captured {} matched `{}`, but none held a listing array at `{}`{}",
            page.captures_matched,
            if page.captures_matched == 1 {
                "reply"
            } else {
                "replies"
            },
            rule.url,
            rule.items,
            last_error.map_or(String::new(), |e| format!(" (last: {e})")),
        ));
    }
    absolute_links(def, &mut page);
    // An API that answered with an empty listing array is a genuine "no results" page.
    page.empty_page = answered && page.listings.is_empty() && page.skipped == 0 && !page.truncated;
    Ok(page)
}

/// Values a rule can be read from.
enum Source<'a> {
    Element(ElementRef<'a>),
    Json(&'a Value),
    Text(&'a str),
}

fn apply_regex(rule: &FieldRule, value: String) -> Option<String> {
    match &rule.compiled_regex {
        None => Some(value),
        Some(re) => {
            let caps = re.captures(&value)?;
            let m = caps.get(1).or_else(|| caps.get(0))?;
            Some(m.as_str().to_string())
        }
    }
}

fn finish(rule: &FieldRule, value: String) -> Option<String> {
    let value = if rule.trim {
        value.trim().to_string()
    } else {
        value
    };
    let value = apply_regex(rule, value)?;
    (!value.is_empty()).then_some(value)
}

fn json_scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn element_value(el: ElementRef<'_>, rule: &FieldRule) -> Option<String> {
    match &rule.attr {
        Some(a) => el.value().attr(a).map(str::to_string),
        None => Some(el.text().collect()),
    }
}

/// Every value a rule yields from a source, in document order.
fn rule_values(rule: &FieldRule, src: &Source<'_>, all: bool) -> Vec<String> {
    match src {
        // A pointer rule reads captured JSON, never the DOM.
        Source::Element(_) if rule.pointer.is_some() => Vec::new(),
        Source::Element(el) => {
            let els: Vec<ElementRef<'_>> = match &rule.selector {
                None => vec![*el],
                Some(sel) if all => el.select(sel).collect(),
                Some(sel) => el.select(sel).take(1).collect(),
            };
            els.into_iter()
                .filter_map(|e| element_value(e, rule))
                .filter_map(|v| finish(rule, v))
                .collect()
        }
        Source::Json(v) => {
            let Some(p) = &rule.pointer else {
                return Vec::new();
            };
            let mut out: Vec<String> = Vec::new();
            for x in json::pointer_all(v, p) {
                match x {
                    Value::Array(items) if all => out.extend(
                        items
                            .iter()
                            .filter_map(json_scalar)
                            .filter_map(|s| finish(rule, s)),
                    ),
                    x => out.extend(json_scalar(x).and_then(|s| finish(rule, s))),
                }
            }
            out
        }
        Source::Text(t) => match &rule.compiled_regex {
            Some(re) if all => re
                .captures_iter(t)
                .filter_map(|c| c.get(1).or_else(|| c.get(0)))
                .map(|m| m.as_str().trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            Some(_) => finish(rule, t.to_string()).into_iter().collect(),
            None => Vec::new(),
        },
    }
}

/// First value of the first rule that yields one.
fn field_value(field: &Field, src: &Source<'_>) -> Option<String> {
    field
        .0
        .iter()
        .find_map(|r| rule_values(r, src, false).into_iter().next())
}

/// Whether a boolean field (an ad marker) holds: an element is present, or a value is
/// present, truthy and matches the rule's regex.
fn field_flag(field: &Field, src: &Source<'_>) -> bool {
    field.0.iter().any(|rule| match src {
        Source::Element(_) if rule.pointer.is_some() => false,
        Source::Element(el) if rule.attr.is_none() && rule.compiled_regex.is_none() => {
            match &rule.selector {
                Some(sel) => el.select(sel).next().is_some(),
                None => true,
            }
        }
        Source::Json(v) if rule.compiled_regex.is_none() => {
            match rule.pointer.as_deref().and_then(|p| v.pointer(p)) {
                Some(Value::Bool(b)) => *b,
                Some(Value::Number(n)) => n.as_f64().is_some_and(|x| x != 0.0),
                Some(Value::String(s)) => !s.is_empty() && s != "0" && s != "false",
                _ => false,
            }
        }
        _ => !rule_values(rule, src, false).is_empty(),
    })
}

fn read_listing(
    def: &PlatformDef,
    rules: &SearchRules,
    src: &Source<'_>,
) -> Result<Extracted, Skip> {
    let f = &rules.fields;
    let item_id = field_value(&f.item_id, src).ok_or(Skip::NoId)?;
    let title = field_value(&f.title, src).ok_or(Skip::NoTitle)?;
    let get = |field: &Option<Field>| field.as_ref().and_then(|x| field_value(x, src));
    let price_text = get(&f.price);
    let (price, price_max) = price_text
        .as_deref()
        .and_then(|t| parse_price(t, &def.price))
        .map_or((None, None), |(lo, hi)| (Some(lo), hi));
    Ok(Extracted {
        item_id,
        title,
        url: String::new(),
        detail_url: get(&f.detail_url),
        seller: get(&f.seller),
        seller_id: get(&f.seller_id),
        price,
        price_max,
        price_text,
        location: get(&f.location),
        sales: get(&f.sales),
        image: get(&f.image),
        is_ad: f.ad.as_ref().is_some_and(|a| field_flag(a, src)),
        self_operated: f.self_operated.as_ref().is_some_and(|a| field_flag(a, src)),
        currency: currency_code(get(&f.currency), def),
    })
}

/// A page's currency if it reads as an ISO 4217 code (or a common sign), else the definition's.
fn currency_code(page: Option<String>, def: &PlatformDef) -> String {
    let code = page.map(|c| match c.trim() {
        "¥" | "￥" | "元" | "RMB" | "rmb" => "CNY".to_string(),
        "€" => "EUR".to_string(),
        "$" | "US$" => "USD".to_string(),
        "£" => "GBP".to_string(),
        c => c.to_ascii_uppercase(),
    });
    match code {
        Some(c) if c.len() == 3 && c.chars().all(|x| x.is_ascii_uppercase()) => c,
        _ => def.currency.clone(),
    }
}

fn parse_page_number(v: &str) -> Option<u32> {
    v.trim().parse::<u32>().ok()
}

/// Reads listings from JSON: embedded in a page (`html`: the page must end in `</html>`), a
/// JSON page, or a captured reply.
fn search_json(
    def: &PlatformDef,
    rules: &SearchRules,
    spec: &EmbeddedJson,
    text: &str,
    page_url: &str,
    html: bool,
) -> Result<SearchPage, ExtractError> {
    let pagers: Vec<&str> = match def.last_page() {
        LastPage::Json {
            current,
            total,
            results,
            offset,
        } => [
            Some(current),
            Some(total),
            results.as_ref(),
            offset.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect(),
        _ => Vec::new(),
    };
    let f = &rules.fields;
    let fields = [
        Some(&f.item_id),
        Some(&f.title),
        f.price.as_ref(),
        f.seller.as_ref(),
        f.seller_id.as_ref(),
        f.location.as_ref(),
        f.sales.as_ref(),
        f.detail_url.as_ref(),
        f.image.as_ref(),
        f.ad.as_ref(),
    ];
    let item_fields: Vec<&str> = fields
        .into_iter()
        .flatten()
        .flat_map(|field| field.0.iter().filter_map(|r| r.pointer.as_deref()))
        .collect();
    let captured = json::capture(spec, text, spec.items.as_deref(), &item_fields, &pagers)
        .ok_or_else(|| ExtractError::JsonNotFound {
            platform: def.platform.clone(),
            url: page_url.to_string(),
            what: spec.describe(),
        })?;
    let mut page = SearchPage {
        truncated: captured.incomplete || html && html_truncated(text),
        ..SearchPage::default()
    };
    if !captured.items_found {
        page.json_error = Some(match &captured.error {
            Some(e) => format!("`{}`: {e}", spec.describe()),
            None => format!(
                "`{}` holds no listing array at `{}`",
                spec.describe(),
                spec.items.as_deref().unwrap_or_default()
            ),
        });
    }
    for item in &captured.items {
        page.tally(read_listing(def, rules, &Source::Json(item)));
    }
    let number = |v: &Option<Value>| {
        v.as_ref()
            .and_then(json_scalar)
            .and_then(|s| parse_page_number(&s))
    };
    let count = |v: &Option<Value>| {
        v.as_ref().and_then(|v| match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
    };
    let mut by_results = None;
    if let [cur, total, rest @ ..] = captured.values.as_slice() {
        page.current_page = number(cur);
        page.total_pages = number(total);
        if let [results, offset] = rest
            && page.current_page.is_none()
            && let (Some(r), Some(o)) = (count(results), count(offset))
        {
            by_results = Some(o + (page.nodes as u64) < r);
        }
    }
    page.has_next = match by_results {
        Some(next) => next,
        None => next_from_numbers(def, &page, text),
    };
    Ok(page)
}

/// Whether the page lacks its closing `</html>` (a body cut off in transit).
fn html_truncated(text: &str) -> bool {
    let mut start = text.len().saturating_sub(4096);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    !text[start..].to_ascii_lowercase().contains("</html>")
}

/// Whether anything in the document follows `el` (so `el` was not cut off).
fn followed_by_content(el: ElementRef<'_>) -> bool {
    let mut node = Some(*el);
    while let Some(n) = node {
        if n.next_sibling().is_some() {
            return true;
        }
        node = n.parent();
    }
    false
}

fn search_html(def: &PlatformDef, rules: &SearchRules, text: &str) -> SearchPage {
    let doc = Html::parse_document(text);
    let truncated = def.format.is_html() && html_truncated(text);
    let mut page = SearchPage {
        truncated,
        ..SearchPage::default()
    };
    if let Some(sel) = &rules.items_selector {
        for el in doc.select(sel) {
            if truncated && !followed_by_content(el) {
                continue; // cut off mid-listing
            }
            page.tally(read_listing(def, rules, &Source::Element(el)));
        }
    }
    page.has_next = match def.last_page() {
        LastPage::Selector {
            compiled: Some(sel),
            ..
        } => doc.select(sel).next().is_some(),
        _ => next_from_numbers(def, &page, text),
    };
    page
}

/// Last-page logic shared by both engines for the count and number-based rules.
fn next_from_numbers(def: &PlatformDef, page: &SearchPage, text: &str) -> bool {
    let full = page.listings.len() + page.skipped >= def.page_size() as usize;
    match def.last_page() {
        LastPage::Regex {
            compiled: Some((current, total)),
            ..
        } => {
            let grab = |re: &regex::Regex| {
                re.captures(text)?
                    .get(1)
                    .and_then(|m| parse_page_number(m.as_str()))
            };
            match (grab(current), grab(total)) {
                (Some(c), Some(t)) => c < t,
                _ => full,
            }
        }
        LastPage::Json { .. } => match (page.current_page, page.total_pages) {
            (Some(c), Some(t)) => c < t,
            _ => full,
        },
        _ => full,
    }
}

/// Reads an item detail page; relative image links resolve against the real item URL.
pub fn extract_detail(
    def: &PlatformDef,
    text: &str,
    page_url: &str,
) -> Result<DetailFields, ExtractError> {
    let rules = rules_for(def, def.detail.as_ref(), "detail", text, page_url)?;
    let f = &rules.fields;
    let fields = [
        &f.item_id,
        &f.title,
        &f.seller,
        &f.price,
        &f.category,
        &f.images,
        &f.sales,
        &f.currency,
    ];
    let needs_dom = fields.iter().any(|x| {
        x.as_ref()
            .is_some_and(|x| x.0.iter().any(|r| r.css.is_some()))
    });
    let doc = needs_dom.then(|| Html::parse_document(text));
    let json: Option<Value> = rules.json.as_ref().and_then(|spec| {
        let c = json::capture(spec, text, None, &[], &[""])?;
        c.values.into_iter().next().flatten()
    });
    // Each rule reads from the source its keys name.
    let read = |field: &Option<Field>, all: bool| -> Vec<String> {
        let Some(field) = field else {
            return Vec::new();
        };
        for rule in &field.0 {
            let src = if rule.css.is_some() {
                match &doc {
                    Some(d) => Source::Element(d.root_element()),
                    None => continue,
                }
            } else if rule.pointer.is_some() {
                match &json {
                    Some(v) => Source::Json(v),
                    None => continue,
                }
            } else {
                Source::Text(text)
            };
            let v = rule_values(rule, &src, all);
            if !v.is_empty() {
                return v;
            }
        }
        Vec::new()
    };
    let one = |field: &Option<Field>| read(field, false).into_iter().next();
    let (price, price_max) = one(&f.price)
        .and_then(|t| parse_price(&t, &def.price))
        .map_or((None, None), |(lo, hi)| (Some(lo), hi));
    let base = Url::parse(&def.item_url("0")).ok();
    let images = read(&f.images, true)
        .into_iter()
        .map(|i| match &base {
            Some(b) => b.join(&i).map_or(i, |u| u.to_string()),
            None => i,
        })
        .collect();
    Ok(DetailFields {
        item_id: one(&f.item_id),
        title: one(&f.title),
        seller: one(&f.seller),
        price,
        price_max,
        category: read(&f.category, true),
        images,
        sales: one(&f.sales),
        self_operated: !read(&f.self_operated, false).is_empty(),
        currency: currency_code(one(&f.currency), def),
    })
}

/// Decodes and reads a saved page, search or detail, into listings (`markwatch extract`).
/// A search definition is tried first; a page it finds nothing in is read as a detail page.
pub fn extract_file(
    def: &PlatformDef,
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<Vec<Listing>, ExtractError> {
    let decoded = decode_page(bytes, content_type, &def.encoding);
    let text = decoded.text.as_str();
    let page_url = def.search_url("", 1);
    let mut search_err = None;
    if def.search.is_some() {
        match extract_search(def, text, &page_url) {
            Ok(page) if !page.listings.is_empty() => {
                return Ok(page.listings.iter().map(|l| l.to_listing(def)).collect());
            }
            Ok(_) => {}
            Err(e @ ExtractError::Blocked { .. }) => return Err(e),
            Err(e) => search_err = Some(e),
        }
    }
    if def.detail.is_some() {
        let detail = extract_detail(def, text, &def.item_url("0"))?;
        return Ok(detail.to_listing(def).into_iter().collect());
    }
    match search_err {
        Some(e) => Err(e),
        None => Ok(Vec::new()),
    }
}
