//! Renders fixture pages from the catalogue and the templates in
//! `fixtures/platforms/<platform>/`, and encodes them as each site does.

use std::path::Path;

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Value, context};
use serde::Serialize;

use super::FixtureError;
use super::catalogue::{CatalogueListing, fnv};

/// How a site numbers its result pages in the URL.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PageParam {
    /// `s=` is the offset of the first listing (Taobao, Tmall).
    Offset(&'static str),
    /// `page=` counts half pages: 1, 3, 5 (JD).
    Odd(&'static str),
    /// `page=` is the page number (Amazon).
    Number(&'static str),
}

/// Where a site keeps its item pages.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ItemPath {
    /// `/item.htm?id=N`
    Query(&'static str, &'static str),
    /// `/N.html`
    Html,
    /// `/dp/ASIN`
    Prefix(&'static str),
}

/// What the fixture server needs to know about one emulated site.
#[derive(Debug)]
pub(crate) struct Site {
    pub key: &'static str,
    pub gbk: bool,
    pub page_size: usize,
    pub search_path: &'static str,
    pub keyword_param: &'static str,
    pub page_param: PageParam,
    pub item: ItemPath,
    /// Login page path; a login wall redirects here (Tmall's goes to Taobao's).
    pub login_path: &'static str,
}

pub(crate) const SITES: &[Site] = &[
    Site {
        key: "taobao",
        gbk: true,
        page_size: 44,
        search_path: "/search",
        keyword_param: "q",
        page_param: PageParam::Offset("s"),
        item: ItemPath::Query("/item.htm", "id"),
        login_path: "/taobao/member/login.jhtml",
    },
    Site {
        key: "tmall",
        gbk: true,
        page_size: 60,
        search_path: "/search_product.htm",
        keyword_param: "q",
        page_param: PageParam::Offset("s"),
        item: ItemPath::Query("/item.htm", "id"),
        login_path: "/taobao/member/login.jhtml",
    },
    Site {
        key: "jd",
        gbk: false,
        page_size: 30,
        search_path: "/Search",
        keyword_param: "keyword",
        page_param: PageParam::Odd("page"),
        item: ItemPath::Html,
        login_path: "/jd/new/login.aspx",
    },
    Site {
        key: "amazon_cn",
        gbk: false,
        page_size: 16,
        search_path: "/s",
        keyword_param: "k",
        page_param: PageParam::Number("page"),
        item: ItemPath::Prefix("/dp/"),
        login_path: "/amazon_cn/ap/signin",
    },
];

pub(crate) fn site(key: &str) -> Option<&'static Site> {
    SITES.iter().find(|s| s.key == key)
}

const TEMPLATES: &[&str] = &["search.html", "item.html", "captcha.html", "login.html"];

/// Loads every site's templates. Missing login pages fall back to no template (Tmall's
/// login wall is Taobao's).
pub(crate) fn environment(platforms_dir: &Path) -> Result<Environment<'static>, FixtureError> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(format_value);
    for site in SITES {
        for t in TEMPLATES {
            let path = platforms_dir.join(site.key).join(t);
            if !path.exists() && (*t == "login.html" || *t == "captcha.html") {
                continue;
            }
            let source = std::fs::read_to_string(&path).map_err(|source| FixtureError::Io {
                path: path.clone(),
                source,
            })?;
            env.add_template_owned(format!("{}/{t}", site.key), source)
                .map_err(|e| FixtureError::Template {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
        }
    }
    Ok(env)
}

/// HTML escaping that also keeps a carriage return (`&#13;`): a raw CR in HTML is folded into
/// LF by every parser, and hostile titles must reach the crawler byte for byte.
fn format_value(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &Value,
) -> Result<(), Error> {
    if matches!(state.auto_escape(), AutoEscape::Html)
        && !value.is_safe()
        && let Some(s) = value.as_str()
    {
        let write_err = |_| Error::new(ErrorKind::WriteFailure, "write failed");
        let mut last = 0;
        for (i, b) in s.bytes().enumerate() {
            let rep = match b {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                b'\'' => "&#x27;",
                b'\r' => "&#13;",
                _ => continue,
            };
            out.write_str(&s[last..i]).map_err(write_err)?;
            out.write_str(rep).map_err(write_err)?;
            last = i + 1;
        }
        return out.write_str(&s[last..]).map_err(write_err);
    }
    minijinja::escape_formatter(out, state, value)
}

/// A listing as the templates see it: the catalogue fields plus display forms.
#[derive(Debug, Serialize)]
struct ItemView<'a> {
    #[serde(flatten)]
    listing: &'a CatalogueListing,
    /// 1-based position on the page.
    pos: usize,
    /// "1299.00"
    price_plain: String,
    /// "1,299.00"
    price_fmt: String,
    price_max_plain: Option<String>,
    price_max_fmt: Option<String>,
    /// "1,299" and "00": Amazon shows whole and fraction apart.
    price_int: String,
    price_cents: String,
    price_max_int: Option<String>,
    /// Stable pseudo-random hex, for tracking parameters and image names.
    token: String,
    images_urls: Vec<String>,
    /// Title split around the keyword, for the sites that highlight it.
    title_parts: Vec<TitlePart>,
    category_path: String,
}

#[derive(Debug, Serialize)]
struct TitlePart {
    text: String,
    hl: bool,
}

fn plain(p: f64) -> String {
    format!("{p:.2}")
}

fn with_thousands(p: f64) -> String {
    let s = plain(p);
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out}.{frac}")
}

fn whole(p: f64) -> String {
    let s = with_thousands(p);
    s.split('.').next().unwrap_or("0").to_string()
}

fn token(l: &CatalogueListing) -> String {
    format!(
        "{:016x}",
        fnv(&[l.platform.as_bytes(), l.item_id.as_bytes()])
    )
}

/// Image URLs in each site's CDN form; the same list on search and item pages.
pub(crate) fn image_urls(l: &CatalogueListing) -> Vec<String> {
    let t = token(l);
    (0..l.images.max(1))
        .map(|i| match l.platform.as_str() {
            "taobao" | "tmall" => format!(
                "https://img.alicdn.com/imgextra/i{}/{}/O1CN01{}{i}_!!{}.jpg_400x400.jpg",
                i % 4 + 1,
                l.seller_id,
                &t[..12],
                l.seller_id
            ),
            "jd" => format!(
                "https://img1{}.360buyimg.com/n7/jfs/t1/{}/{i}/{}.jpg",
                i % 5,
                &l.item_id,
                &t[..14]
            ),
            _ => format!("https://m.media-amazon.com/images/I/{}{i}L.jpg", &t[..10]),
        })
        .collect()
}

fn title_parts(title: &str, keyword: &str) -> Vec<TitlePart> {
    let mut parts = Vec::new();
    if keyword.is_empty() {
        parts.push(TitlePart {
            text: title.to_string(),
            hl: false,
        });
        return parts;
    }
    let lower = title.to_lowercase();
    // Highlighting needs byte offsets shared by both strings.
    if lower.len() != title.len() {
        parts.push(TitlePart {
            text: title.to_string(),
            hl: false,
        });
        return parts;
    }
    let kw = keyword.to_lowercase();
    let mut last = 0;
    for (i, _) in lower.match_indices(&kw) {
        if i > last {
            parts.push(TitlePart {
                text: title[last..i].to_string(),
                hl: false,
            });
        }
        parts.push(TitlePart {
            text: title[i..i + kw.len()].to_string(),
            hl: true,
        });
        last = i + kw.len();
    }
    if last < title.len() {
        parts.push(TitlePart {
            text: title[last..].to_string(),
            hl: false,
        });
    }
    parts
}

fn view<'a>(l: &'a CatalogueListing, pos: usize, keyword: &str) -> ItemView<'a> {
    ItemView {
        listing: l,
        pos,
        price_plain: plain(l.price),
        price_fmt: with_thousands(l.price),
        price_max_plain: l.price_max.map(plain),
        price_max_fmt: l.price_max.map(with_thousands),
        price_int: whole(l.price),
        price_cents: plain(l.price)
            .rsplit('.')
            .next()
            .unwrap_or("00")
            .to_string(),
        price_max_int: l.price_max.map(whole),
        token: token(l),
        images_urls: image_urls(l),
        title_parts: title_parts(&l.title, keyword),
        category_path: l.category.join(" > "),
    }
}

/// Page-level switches that faults flip.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Charset {
    /// The charset the meta tag names, if any.
    pub meta: Option<&'static str>,
}

/// A search results page.
pub(crate) struct SearchRender<'a> {
    pub site: &'static Site,
    pub prefix: &'a str,
    pub keyword: &'a str,
    /// 1-based.
    pub page: usize,
    pub matches: &'a [&'a CatalogueListing],
    pub related: &'a [String],
    pub charset: Charset,
}

pub(crate) fn render_search(env: &Environment, r: &SearchRender) -> Result<String, Error> {
    let size = r.site.page_size;
    let total = r.matches.len();
    let total_pages = total.div_ceil(size).max(1);
    let start = (r.page - 1) * size;
    let items: Vec<ItemView> = r
        .matches
        .iter()
        .skip(start)
        .take(size)
        .enumerate()
        .map(|(i, l)| view(l, start + i + 1, r.keyword))
        .collect();
    let kw_enc: String = url::form_urlencoded::byte_serialize(r.keyword.as_bytes()).collect();
    let page_url = |n: usize| -> String {
        let value = match r.site.page_param {
            PageParam::Offset(p) => format!("{p}={}", (n - 1) * size),
            PageParam::Odd(p) => format!("{p}={}", 2 * n - 1),
            PageParam::Number(p) => format!("{p}={n}"),
        };
        format!(
            "{}{}?{}={kw_enc}&{value}",
            r.prefix, r.site.search_path, r.site.keyword_param
        )
    };
    let pages: Vec<Value> = (1..=total_pages)
        .map(|n| context! { n => n, url => page_url(n) })
        .collect();
    let tmpl = env.get_template(&format!("{}/search.html", r.site.key))?;
    tmpl.render(context! {
        prefix => r.prefix,
        keyword => r.keyword,
        keyword_enc => kw_enc.clone(),
        page => r.page,
        page_size => size,
        offset => start,
        total_count => total,
        total_pages => total_pages,
        has_next => r.page < total_pages,
        has_prev => r.page > 1,
        next_url => page_url(r.page + 1),
        prev_url => page_url(r.page.max(2) - 1),
        pages => pages,
        items => Value::from(Serde(&items)),
        related => Value::from(Serde(r.related)),
        meta_charset => r.charset.meta,
    })
}

pub(crate) fn render_item(
    env: &Environment,
    site: &Site,
    prefix: &str,
    l: &CatalogueListing,
    charset: Charset,
) -> Result<String, Error> {
    let tmpl = env.get_template(&format!("{}/item.html", site.key))?;
    tmpl.render(context! {
        prefix => prefix,
        item => Value::from(Serde(view(l, 1, ""))),
        meta_charset => charset.meta,
    })
}

pub(crate) fn render_wall(
    env: &Environment,
    site: &Site,
    name: &str,
    prefix: &str,
    return_url: &str,
) -> Result<String, Error> {
    let tmpl = env.get_template(&format!("{}/{name}", site.key))?;
    tmpl.render(context! { prefix => prefix, return_url => return_url })
}

/// Encodes a page for the wire. GBK sites are encoded as GB18030 (a superset that can carry
/// every character, which real GBK pages do in practice) and labelled GBK.
pub(crate) fn encode(text: &str, gbk: bool) -> Vec<u8> {
    if gbk {
        encoding_rs::GB18030.encode(text).0.into_owned()
    } else {
        text.as_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_in_site_formats() {
        assert_eq!(with_thousands(1299.0), "1,299.00");
        assert_eq!(with_thousands(83.22), "83.22");
        assert_eq!(with_thousands(1234567.5), "1,234,567.50");
        assert_eq!(plain(149.0), "149.00");
    }

    #[test]
    fn title_highlight_keeps_text() {
        let parts = title_parts("Nike Air 耐克 NIKE", "nike");
        let joined: String = parts.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(joined, "Nike Air 耐克 NIKE");
        assert_eq!(parts.iter().filter(|p| p.hl).count(), 2);
    }
}
