//! Judging a registered domain: what its home page says (through the matcher, for the brand
//! the name copies), whether it sells, whether it is for sale, whether it only takes mail.
//! Pure: a page and records in, a verdict out.

use std::sync::LazyLock;

use regex::Regex;
use scraper::{Html, Node};

use super::candidates::Candidate;
use super::resolve::Records;
use crate::fetch::Page;
use crate::matcher::{Item, Matcher};
use crate::model::{Brand, Outcome, Reason, ReasonCode, Verdict};

/// How much of a home page's text the matcher reads.
const MAX_TEXT: usize = 4000;

/// A home page as the judge reads it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HomePage {
    /// Where redirects ended.
    pub host: String,
    pub title: String,
    /// Title, description, keywords, headings and visible text, in that order, cut short.
    pub text: String,
}

impl HomePage {
    /// The lowest price in yuan the page shows (¥199), if any.
    pub(crate) fn lowest_price(&self) -> Option<f64> {
        PRICE
            .captures_iter(&self.text)
            .filter_map(|c| c[1].parse::<f64>().ok())
            .filter(|p| *p > 0.0)
            .min_by(f64::total_cmp)
    }

    pub(crate) fn read(page: &Page) -> HomePage {
        let decoded = crate::extract::decode_page(&page.body, page.content_type(), "utf-8").text;
        let doc = Html::parse_document(&decoded);
        let pick = |css: &str, attr: Option<&str>| -> Vec<String> {
            let Ok(sel) = scraper::Selector::parse(css) else {
                return Vec::new();
            };
            doc.select(&sel)
                .filter_map(|e| match attr {
                    Some(a) => e.value().attr(a).map(str::to_owned),
                    None => Some(e.text().collect::<String>()),
                })
                .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|t| !t.is_empty())
                .collect()
        };
        let title = pick("title", None).into_iter().next().unwrap_or_default();
        let mut parts = vec![title.clone()];
        parts.extend(pick("meta[name=description]", Some("content")));
        parts.extend(pick("meta[name=keywords]", Some("content")));
        parts.extend(pick("h1, h2, h3", None));
        let mut body = String::new();
        for node in doc.tree.nodes() {
            if let Node::Text(t) = node.value() {
                let hidden = node
                    .parent()
                    .and_then(|p| p.value().as_element())
                    .is_some_and(|e| {
                        matches!(
                            e.name(),
                            "script" | "style" | "noscript" | "template" | "title"
                        )
                    });
                if !hidden && !t.trim().is_empty() {
                    body.push_str(t.trim());
                    body.push(' ');
                    if body.len() > MAX_TEXT {
                        break;
                    }
                }
            }
        }
        parts.push(body);
        let mut text = parts.join(" | ");
        if text.len() > MAX_TEXT {
            let cut = (0..=MAX_TEXT)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            text.truncate(cut);
        }
        let host = url::Url::parse(&page.final_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_lowercase))
            .unwrap_or_default();
        HomePage { host, title, text }
    }
}

static SELLS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)购物车|加入购物车|立即购买|立即抢购|在线商城|官方商城|网上商城|专卖店|旗舰店|官网|折扣|特价|包邮|货到付款|[¥￥]\s*\d|add to (cart|bag)|buy now|shop now|checkout",
    )
    .expect("valid regex")
});

static FOR_SALE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)域名(出售|转让|求购)|出售此域名|此域名(正在)?出售|domain (is |may be )?for sale|buy this domain")
        .expect("valid regex")
});

static PRICE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[¥￥]\s*(\d{1,7}(?:\.\d{1,2})?)").expect("valid regex"));

/// The verdict on a registered `candidate` of `brand`: from its home page when it has a website
/// (None when the page could not be fetched: judged at the next run), else from its records.
pub(crate) fn judge(
    matcher: &Matcher,
    brand: &Brand,
    candidate: &Candidate,
    records: &Records,
    home: Option<&HomePage>,
) -> Option<Verdict> {
    let name_reason = Reason {
        code: ReasonCode::DomainName,
        detail: format!(
            "{} ({} of {})",
            candidate.display,
            candidate.rule.as_str(),
            candidate.source
        ),
    };
    let mark = source_mark(brand, &candidate.source);
    let verdict =
        |outcome: Outcome, score: f64, mark: Option<String>, reasons: Vec<Reason>| Verdict {
            verdict: outcome,
            score,
            brand: Some(brand.name.clone()),
            mark,
            reasons,
        };
    let Some(home) = home else {
        return match records.state() {
            "mail_only" => Some(verdict(
                Outcome::Suspect,
                0.5,
                mark,
                vec![
                    name_reason,
                    Reason {
                        code: ReasonCode::MailOnly,
                        detail: records.mx.join(", "),
                    },
                ],
            )),
            _ => None,
        };
    };
    // The host is ASCII; the registry may name an IDN as people write it.
    let own = |host: &str| {
        brand.domains.iter().any(|d| {
            let d = idna::domain_to_ascii(d).unwrap_or_else(|_| d.clone());
            host == d || host.ends_with(&format!(".{d}"))
        })
    };
    if own(&home.host) {
        return Some(verdict(
            Outcome::Clear,
            0.0,
            mark,
            vec![
                name_reason,
                Reason {
                    code: ReasonCode::BrandsOwnSite,
                    detail: home.host.clone(),
                },
            ],
        ));
    }
    let price = home.lowest_price();
    let item = Item {
        title: &home.text,
        // A site's own name is no shop on a platform: "耐克官方旗舰店" on a squatted domain
        // must not pass as the brand's official store.
        seller: "",
        price,
        currency: "CNY",
        category: None,
        platform: super::PLATFORM,
        self_operated: false,
        images: &[],
    };
    let page = matcher.check_for(&item, &brand.name);
    let mentions = page.brand.is_some();
    let sells = SELLS.find(&home.text).map(|m| m.as_str().to_owned());
    let for_sale = FOR_SALE.find(&home.text).map(|m| m.as_str().to_owned());
    let mut reasons = vec![name_reason];
    if mentions {
        reasons.extend(page.reasons.iter().cloned());
    }
    if let Some(word) = &sells
        && mentions
    {
        reasons.push(Reason {
            code: ReasonCode::SiteSells,
            detail: word.clone(),
        });
    }
    if let Some(words) = &for_sale {
        reasons.push(Reason {
            code: ReasonCode::DomainForSale,
            detail: words.clone(),
        });
    }
    let mark = page.mark.clone().or(mark);
    Some(
        if mentions && (sells.is_some() || page.verdict == Outcome::Infringing) {
            verdict(Outcome::Infringing, page.score.max(0.8), mark, reasons)
        } else if mentions || for_sale.is_some() {
            verdict(Outcome::Suspect, page.score.clamp(0.4, 0.6), mark, reasons)
        } else {
            // An unrelated site on a similar name: nothing to report.
            verdict(Outcome::Clear, 0.0, None, vec![])
        },
    )
}

/// The registered mark a candidate came from: the mark itself, or for an alias or the brand's
/// name its first mark in China (else its first).
fn source_mark(brand: &Brand, source: &str) -> Option<String> {
    brand
        .marks
        .iter()
        .find(|m| m.text == source)
        .or_else(|| brand.marks.iter().find(|m| m.jurisdiction == "CN"))
        .or_else(|| brand.marks.first())
        .map(|m| m.text.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domains::candidates::Rule;

    fn page(host: &str, html: &str) -> HomePage {
        HomePage::read(&Page {
            url: format!("http://{host}/"),
            final_url: format!("http://{host}/"),
            status: 200,
            headers: vec![("content-type".to_owned(), "text/html".to_owned())],
            body: html.as_bytes().to_vec(),
            fetched_at: chrono::Utc::now(),
            attempts: 1,
        })
    }

    fn nike() -> (Brand, Candidate) {
        let mut brand = crate::matcher::tests_support::demo_brands()
            .into_iter()
            .find(|b| b.name == "Nike")
            .unwrap();
        brand.domains = vec!["nike.com.cn".to_owned()];
        let c = Candidate {
            domain: "naike.cn".to_owned(),
            display: "naike.cn".to_owned(),
            rule: Rule::Pinyin,
            source: "耐克".to_owned(),
        };
        (brand, c)
    }

    fn web() -> Records {
        Records {
            a: vec!["127.0.0.1".parse().unwrap()],
            ..Records::default()
        }
    }

    #[test]
    fn a_shop_on_the_brands_name_infringes_an_unrelated_site_does_not() {
        let m = crate::matcher::tests_support::matcher();
        let (brand, c) = nike();
        let shop = page(
            "naike.cn",
            "<title>耐克官方旗舰店 - 正品折扣</title><h1>耐克运动鞋 特价 ¥199</h1>\
             <script>var nike = 1;</script><a>加入购物车</a>",
        );
        let v = judge(m, &brand, &c, &web(), Some(&shop)).unwrap();
        assert_eq!(v.verdict, Outcome::Infringing, "{v:?}");
        assert_eq!(v.mark.as_deref(), Some("耐克"));
        let codes: Vec<ReasonCode> = v.reasons.iter().map(|r| r.code).collect();
        assert!(codes.contains(&ReasonCode::DomainName));
        assert!(codes.contains(&ReasonCode::SiteSells));
        assert!(codes.contains(&ReasonCode::ChineseName));

        let clinic = page(
            "naike.cn",
            "<title>奈科口腔诊所</title><p>专业牙科 预约电话 010-1234</p>",
        );
        let v = judge(m, &brand, &c, &web(), Some(&clinic)).unwrap();
        assert_eq!(v.verdict, Outcome::Clear, "{v:?}");

        let parked = page("naike.cn", "<p>此域名出售，联系 QQ 123</p>");
        let v = judge(m, &brand, &c, &web(), Some(&parked)).unwrap();
        assert_eq!(v.verdict, Outcome::Suspect);

        let own = page(
            "www.nike.com.cn",
            "<title>Nike. Just Do It. Nike.com.cn</title>",
        );
        let v = judge(m, &brand, &c, &web(), Some(&own)).unwrap();
        assert_eq!(v.verdict, Outcome::Clear);
        assert_eq!(v.reasons[1].code, ReasonCode::BrandsOwnSite);
    }

    #[test]
    fn mail_without_a_website_is_a_lead_an_unreachable_site_waits() {
        let m = crate::matcher::tests_support::matcher();
        let (brand, c) = nike();
        let mail = Records {
            mx: vec!["mx.naike.cn".to_owned()],
            ..Records::default()
        };
        let v = judge(m, &brand, &c, &mail, None).unwrap();
        assert_eq!(v.verdict, Outcome::Suspect);
        assert_eq!(v.reasons[1].code, ReasonCode::MailOnly);
        assert!(judge(m, &brand, &c, &web(), None).is_none());
        assert!(judge(m, &brand, &c, &Records::default(), None).is_none());
    }
}
