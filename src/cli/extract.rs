//! `markwatch extract`: what a definition reads from a saved page, and why when it reads nothing.

use markwatch::{
    CapturedReply, DetailFields, ExtractError, Extracted, PlatformDef, SearchPage, decode_capture,
    decode_page, extract_detail, extract_search_captured_lenient, load_definition,
    load_definitions,
};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use serde_json::{Map, Value, json};

use super::{Context, EXIT_BAD_INPUT};

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// A platform whose definition is in the configured definitions folder
    #[arg(
        long,
        conflicts_with = "definition",
        required_unless_present = "definition"
    )]
    platform: Option<String>,
    /// A definition file, e.g. one you are writing for a new site
    #[arg(long, value_name = "PATH")]
    definition: Option<PathBuf>,
    /// Read the page with the detail (item page) rules only
    #[arg(long, conflicts_with = "search")]
    detail: bool,
    /// Read the page with the search rules only (no fall-back to the detail rules)
    #[arg(long)]
    search: bool,
    /// An API reply the page's script received, saved as a file (repeatable, in the order
    /// received): read by the definition's `search.capture` rule, with FILE as the page's
    /// rendered DOM. A reply saved this way has no URL, so the rule's `url` is not checked.
    #[arg(long, value_name = "REPLY", conflicts_with = "detail")]
    capture: Vec<PathBuf>,
    /// A saved search or item page (with --capture: the rendered DOM)
    file: PathBuf,
}

pub fn run_extract(args: ExtractArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let def = match (&args.definition, &args.platform) {
        (Some(path), _) => load_definition(path)?,
        (None, Some(name)) => load_definitions(&ctx.config.crawl.definitions)?
            .into_iter()
            .find(|d| &d.platform == name)
            .with_context(|| {
                format!(
                    "no definition for platform `{name}` in {}",
                    ctx.config.crawl.definitions.display()
                )
            })?,
        (None, None) => unreachable!("clap requires one of --platform and --definition"),
    };
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let decoded = decode_page(&bytes, None, &def.encoding);
    let text = decoded.text.as_str();
    let name = args.file.display().to_string();
    let fail = |message: String| {
        eprintln!("markwatch: {name}: {message}");
        ExitCode::from(EXIT_BAD_INPUT)
    };
    // Without --detail the search rules run first; with neither flag, a page they find
    // nothing in is read as an item page.
    let mut replies = Vec::new();
    for path in &args.capture {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        replies.push(decode_capture(&bytes, None));
    }
    let captures: Vec<CapturedReply<'_>> = replies
        .iter()
        .map(|body| CapturedReply { url: "", body })
        .collect();
    if !captures.is_empty() && def.search.as_ref().is_none_or(|s| s.capture.is_none()) {
        return Ok(fail(
            "--capture needs a `search.capture` rule in the definition".to_string(),
        ));
    }
    let fallback = !args.search && def.detail.is_some() && captures.is_empty();
    if !args.detail && (args.search || def.search.is_some()) {
        match extract_search_captured_lenient(&def, text, &captures, &def.search_url("", 1)) {
            Ok(page) => {
                eprintln!("{name}: {}", search_summary(&def, &page));
                if !page.listings.is_empty() {
                    let mut out = std::io::stdout().lock();
                    for l in &page.listings {
                        print_line(&mut out, &search_object(&def, l))?;
                    }
                    tracing::info!(file = %name, listings = page.listings.len(), "extracted");
                    return Ok(ExitCode::SUCCESS);
                }
                if page.empty_page && page.captures_matched > 0 {
                    eprintln!("{name}: a \"no results\" page (the API answered with no listings)");
                    return Ok(ExitCode::SUCCESS);
                }
                if page.empty_page {
                    eprintln!("{name}: a \"no results\" page (it matches `search.empty_marker`)");
                    return Ok(ExitCode::SUCCESS);
                }
                if !fallback {
                    let why = match &page.json_error {
                        Some(e) => format!("no listings: {e}"),
                        None => "no listings, and the page does not match `search.empty_marker`"
                            .to_string(),
                    };
                    return Ok(fail(why));
                }
                eprintln!("{name}: the search rules found nothing; reading it as an item page");
            }
            Err(e @ ExtractError::Blocked { .. }) => return Ok(fail(e.to_string())),
            Err(e) if !fallback => return Ok(fail(e.to_string())),
            Err(e) => eprintln!("{name}: search rules: {e}; reading it as an item page"),
        }
    }
    let detail = match extract_detail(&def, text, &def.item_url("0")) {
        Ok(d) => d,
        Err(e) => return Ok(fail(e.to_string())),
    };
    let missing: Vec<&str> = [
        ("item_id", detail.item_id.is_none()),
        ("title", detail.title.is_none()),
    ]
    .into_iter()
    .filter_map(|(k, m)| m.then_some(k))
    .collect();
    eprintln!("{name}: {}", detail_summary(&detail));
    if !missing.is_empty() {
        return Ok(fail(format!(
            "the detail rules found no {}",
            missing.join(" and no ")
        )));
    }
    print_line(&mut std::io::stdout().lock(), &detail_object(&def, &detail))?;
    Ok(ExitCode::SUCCESS)
}

fn print_line(out: &mut impl Write, v: &Value) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, v)?;
    out.write_all(b"\n")?;
    Ok(())
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Which rules ran and what they found, e.g. "search rules: `li.gl-item` matched 3 nodes:
/// 1 listing, 2 skipped (1 without an item id, 1 without a title)".
fn search_summary(def: &PlatformDef, page: &SearchPage) -> String {
    let rules = def.search.as_ref();
    let capture = rules.and_then(|r| r.capture.as_ref());
    let what = match rules.and_then(|r| r.json.as_ref()) {
        _ if page.captures_matched > 0 => format!(
            "capture rule (`{}`): {} of {} read, {} skipped (no listing array: an API error?); JSON array `{}` held {}",
            capture.map_or("", |c| c.url.as_str()),
            page.captures_matched - page.captures_skipped,
            plural(page.captures_matched, "captured reply", "captured replies"),
            page.captures_skipped,
            capture.map_or("", |c| c.items.as_str()),
            plural(page.nodes, "entry", "entries")
        ),
        Some(j) => format!(
            "JSON array `{}` held {}",
            j.items.as_deref().unwrap_or_default(),
            plural(page.nodes, "entry", "entries")
        ),
        None => format!(
            "`{}` matched {}",
            rules.and_then(|r| r.items.as_deref()).unwrap_or_default(),
            plural(page.nodes, "node", "nodes")
        ),
    };
    let mut s = format!(
        "search rules: {what}: {}",
        plural(page.listings.len(), "listing", "listings")
    );
    if page.skipped > 0 {
        s.push_str(&format!(
            ", {} skipped ({} without an item id, {} without a title)",
            page.skipped, page.skipped_no_id, page.skipped_no_title
        ));
    }
    if page.truncated {
        s.push_str("; the page looks cut off");
    }
    if let Some(e) = &page.json_error {
        s.push_str(&format!("; {e}"));
    }
    s
}

fn detail_summary(d: &DetailFields) -> String {
    let fields = [
        ("item_id", d.item_id.is_some()),
        ("title", d.title.is_some()),
        ("seller", d.seller.is_some()),
        ("price", d.price.is_some()),
        ("category", !d.category.is_empty()),
        ("images", !d.images.is_empty()),
        ("sales", d.sales.is_some()),
    ];
    let read: Vec<&str> = fields.iter().filter(|f| f.1).map(|f| f.0).collect();
    let unread: Vec<&str> = fields.iter().filter(|f| !f.1).map(|f| f.0).collect();
    let mut s = format!(
        "detail rules: read {}",
        if read.is_empty() {
            "nothing".to_string()
        } else {
            read.join(", ")
        }
    );
    if !unread.is_empty() {
        s.push_str(&format!("; not found: {}", unread.join(", ")));
    }
    s
}

/// Every field the search rules read, in a shape `markwatch match` also reads.
fn search_object(def: &PlatformDef, l: &Extracted) -> Value {
    let mut m = Map::new();
    m.insert("platform".into(), json!(def.platform));
    if let Value::Object(fields) = json!(l) {
        m.extend(fields);
    }
    m.insert("category".into(), Value::Null);
    Value::Object(m)
}

/// Every field the detail rules read; `category` joined as stored, `breadcrumb` as read.
fn detail_object(def: &PlatformDef, d: &DetailFields) -> Value {
    let url = d.item_id.as_deref().map(|id| def.item_url(id));
    json!({
        "platform": def.platform,
        "item_id": d.item_id,
        "url": url,
        "title": d.title,
        "seller": d.seller,
        "price": d.price,
        "price_max": d.price_max,
        "currency": d.currency,
        "category": (!d.category.is_empty()).then(|| d.category.join(" > ")),
        "breadcrumb": d.category,
        "images": d.images,
        "sales": d.sales,
        "is_ad": false,
    })
}
