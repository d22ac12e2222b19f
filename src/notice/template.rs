//! Notice text from minijinja templates, one per complaint form and language. The bundled
//! templates are the default; a folder named in `notices.templates` overrides any of them and
//! is read at run time, so users edit notices without rebuilding.
//!
//! Lookup for a platform P whose channel uses template family T, in language L:
//! `P.L.txt`, then `T.L.txt`, each first in the user's folder, then among the bundled ones.
//!
//! Scraped text is hostile: every value printed into a `.txt` template has its line breaks and
//! other control characters written as visible escapes (`\r`, `\n`, `\u{1b}`), so a title can
//! never forge a line of the notice. `.html` templates are autoescaped as HTML.

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::value::Value;
use minijinja::{Environment, UndefinedBehavior, escape_formatter};
use serde::Serialize;

use super::NoticeError;
use super::explain::{explain_en, explain_zh};
use crate::config::NoticesConfig;
use crate::platform::PlatformDef;
use crate::store::{NoticeDetail, NoticeMark};

/// The templates that ship with markwatch, by file name.
pub fn bundled_templates() -> &'static [(&'static str, &'static str)] {
    &[
        (
            "alibaba_ipp.zh.txt",
            include_str!("../../templates/notices/alibaba_ipp.zh.txt"),
        ),
        (
            "alibaba_ipp.en.txt",
            include_str!("../../templates/notices/alibaba_ipp.en.txt"),
        ),
        (
            "jd_ipr.zh.txt",
            include_str!("../../templates/notices/jd_ipr.zh.txt"),
        ),
        (
            "jd_ipr.en.txt",
            include_str!("../../templates/notices/jd_ipr.en.txt"),
        ),
        (
            "amazon_report.zh.txt",
            include_str!("../../templates/notices/amazon_report.zh.txt"),
        ),
        (
            "amazon_report.en.txt",
            include_str!("../../templates/notices/amazon_report.en.txt"),
        ),
        (
            "cndrp.zh.txt",
            include_str!("../../templates/notices/cndrp.zh.txt"),
        ),
        (
            "cndrp.en.txt",
            include_str!("../../templates/notices/cndrp.en.txt"),
        ),
        (
            REPORT_TEMPLATE,
            include_str!("../../templates/notices/report.html"),
        ),
    ]
}

/// A notice's language: the crate's one [`Language`](crate::model::Language).
pub(crate) use crate::model::Language;

/// The loaded templates.
pub struct Templates {
    env: Environment<'static>,
    /// Where each template came from, for messages: "bundled" or a path.
    origin: BTreeMap<String, String>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("origin", &self.origin)
            .finish()
    }
}

impl Templates {
    /// The bundled templates, overridden by every `*.txt` / `*.html` file in `dir`.
    pub fn load(dir: Option<&Path>) -> Result<Templates, NoticeError> {
        let mut env = Environment::new();
        // A misspelt variable in an edited template is an error, not a silent blank.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_formatter(|out, state, value| {
            // An absent optional field prints as nothing, not "none".
            if value.is_none() {
                return Ok(());
            }
            if !value.is_safe()
                && let Some(s) = value.as_str()
                && s.chars().any(char::is_control)
            {
                return escape_formatter(out, state, &Value::from(escape_controls(s)));
            }
            escape_formatter(out, state, value)
        });
        let mut origin = BTreeMap::new();
        for (name, source) in bundled_templates() {
            origin.insert((*name).to_owned(), "bundled".to_owned());
            env.add_template_owned(*name, *source)
                .map_err(|e| template_error(name, &e))?;
        }
        if let Some(dir) = dir {
            let entries = std::fs::read_dir(dir).map_err(|source| NoticeError::TemplateDir {
                path: dir.to_owned(),
                source,
            })?;
            let mut paths: Vec<_> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "txt" || x == "html"))
                .collect();
            paths.sort();
            for path in paths {
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                let source =
                    std::fs::read_to_string(&path).map_err(|source| NoticeError::TemplateDir {
                        path: path.clone(),
                        source,
                    })?;
                let name = name.to_owned();
                env.add_template_owned(name.clone(), source)
                    .map_err(|e| template_error(&path.display().to_string(), &e))?;
                origin.insert(name, path.display().to_string());
            }
        }
        Ok(Templates { env, origin })
    }

    /// Templates as configured (`notices.templates`, or only the bundled ones).
    pub fn from_config(config: &NoticesConfig) -> Result<Templates, NoticeError> {
        Templates::load(config.templates.as_deref())
    }

    /// The template name used for `def` in `lang`.
    pub(crate) fn name_for(
        &self,
        def: &PlatformDef,
        lang: Language,
    ) -> Result<String, NoticeError> {
        let family = def
            .complaint
            .template
            .clone()
            .unwrap_or_else(|| def.platform.clone());
        for stem in [&def.platform, &family] {
            let name = format!("{stem}.{}.txt", lang.as_str());
            if self.origin.contains_key(&name) {
                return Ok(name);
            }
        }
        Err(NoticeError::Template {
            name: format!("{}.{}.txt", family, lang.as_str()),
            message: format!(
                "no template for platform `{}` in {}: add {}.{}.txt or {family}.{}.txt to notices.templates",
                def.platform,
                lang.as_str(),
                def.platform,
                lang.as_str(),
                lang.as_str()
            ),
        })
    }

    /// Renders the notice text of `ctx` for `def` in `lang`.
    pub fn render(
        &self,
        def: &PlatformDef,
        lang: Language,
        ctx: &NoticeContext,
    ) -> Result<String, NoticeError> {
        let name = self.name_for(def, lang)?;
        self.render_named(&name, ctx)
    }

    /// Renders a notice's report (`report.html`, HTML-escaped) from its context.
    pub(crate) fn render_report(&self, ctx: &impl serde::Serialize) -> Result<String, NoticeError> {
        self.render_named(REPORT_TEMPLATE, ctx)
    }

    fn render_named(&self, name: &str, ctx: &impl serde::Serialize) -> Result<String, NoticeError> {
        let shown = self
            .origin
            .get(name)
            .filter(|o| o.as_str() != "bundled")
            .cloned()
            .unwrap_or_else(|| format!("{name} (bundled)"));
        let tmpl = self
            .env
            .get_template(name)
            .map_err(|e| template_error(&shown, &e))?;
        tmpl.render(minijinja::value::Serde(ctx))
            .map_err(|e| template_error(&shown, &e))
    }
}

/// The report template's name: a file of this name in `notices.templates` replaces it.
const REPORT_TEMPLATE: &str = "report.html";

fn template_error(name: &str, e: &minijinja::Error) -> NoticeError {
    let mut message = e.to_string();
    if let Some(line) = e.line() {
        message = format!("line {line}: {message}");
    }
    NoticeError::Template {
        name: name.to_owned(),
        message,
    }
}

/// Control characters written as visible escapes: the text stays whole but can't break lines.
pub fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Everything a notice template can use.
#[derive(Debug, Clone, Serialize)]
pub struct NoticeContext {
    pub notice: NoticeInfo,
    pub holder: Holder,
    pub agent: Agent,
    pub right: Right,
    pub listings: Vec<ListingInfo>,
    /// Every captured page cited, numbered.
    pub evidence: Vec<EvidenceInfo>,
    /// Who signs the declaration (the rights holder when none is configured).
    pub signatory: String,
    /// YYYY-MM-DD.
    pub date: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NoticeInfo {
    pub id: i64,
    pub platform: String,
    pub platform_name: String,
    pub channel: String,
    pub channel_url: String,
    pub state: String,
    pub reason: String,
    pub reason_zh: String,
    pub reason_en: String,
    pub listing_id_label: String,
    pub not_fileable: Option<String>,
    pub relisted_from: Option<i64>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Holder {
    pub brand: String,
    pub owner: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Agent {
    /// Empty when the rights holder files itself.
    pub name: String,
    pub contact: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Right {
    pub type_zh: String,
    pub type_en: String,
    /// One mark, or several of one brand where the channel takes one type of right per report.
    pub marks: Vec<NoticeMark>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ListingInfo {
    pub n: usize,
    pub item_id: String,
    pub url: String,
    pub title: String,
    pub seller: Option<String>,
    pub price: Option<f64>,
    /// "CNY 39.00", or empty.
    pub price_text: String,
    pub verdict: String,
    pub score: f64,
    pub mark: Option<String>,
    pub registration_no: Option<String>,
    pub explanation_zh: String,
    pub explanation_en: String,
    pub relisted_reason: Option<String>,
    /// Numbers into the notice's evidence list.
    pub evidence: Vec<usize>,
    /// For a domain: what DNS and WHOIS say, and the CNDRP deadline.
    pub domain: Option<DomainInfo>,
    /// The verdict's reason codes (`site_sells`, `domain_for_sale`, …), for templates that
    /// argue from them.
    pub reason_codes: Vec<String>,
}

/// A domain in a complaint (the `domains` definition's listings).
#[derive(Debug, Clone, Serialize)]
pub struct DomainInfo {
    pub display: String,
    pub rule: String,
    pub source: String,
    pub state: String,
    /// Addresses, mail exchangers and name servers, each list joined with ", ".
    pub addresses: String,
    pub mail: String,
    pub name_servers: String,
    /// YYYY-MM-DD.
    pub first_seen: String,
    pub registered_on: Option<String>,
    pub registrant: Option<String>,
    /// The last day a CNDRP complaint is accepted: three years after registration, or, while
    /// the registration date is unknown, three years after first seen at the latest.
    pub deadline: String,
    /// Whether `deadline` rests on the registration date (else it is an upper bound).
    pub deadline_known: bool,
}

impl DomainInfo {
    fn new(d: &crate::store::DomainFacts) -> DomainInfo {
        let records: serde_json::Value = serde_json::from_str(&d.records).unwrap_or_default();
        let list = |keys: &[&str]| {
            keys.iter()
                .flat_map(|k| records[*k].as_array().cloned().unwrap_or_default())
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let first_seen = d.first_seen.get(..10).unwrap_or(&d.first_seen).to_owned();
        let registered = d
            .registered_on
            .as_deref()
            .and_then(|s| s.parse::<chrono::NaiveDate>().ok());
        let from = registered.or_else(|| first_seen.parse().ok());
        DomainInfo {
            display: d.display.clone(),
            rule: d.rule.clone(),
            source: d.source.clone(),
            state: d.state.clone(),
            addresses: list(&["a", "aaaa"]),
            mail: list(&["mx"]),
            name_servers: list(&["ns"]),
            first_seen,
            registered_on: d.registered_on.clone(),
            registrant: d.registrant.clone(),
            deadline: from
                .map(|f| crate::model::cndrp_deadline(f).to_string())
                .unwrap_or_default(),
            deadline_known: registered.is_some(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EvidenceInfo {
    pub n: usize,
    /// The file in the evidence pack.
    pub file: String,
    pub role: String,
    pub url: String,
    pub fetched_at: String,
    pub sha256: String,
}

impl NoticeContext {
    /// The context of `detail` (resting on `marks`) for the channel of `def`.
    pub fn new(
        detail: &NoticeDetail,
        def: &PlatformDef,
        config: &NoticesConfig,
        marks: Vec<NoticeMark>,
        today: chrono::NaiveDate,
    ) -> NoticeContext {
        let n = &detail.notice;
        let mut evidence = Vec::new();
        let listings = detail
            .items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let mut cited = Vec::new();
                for e in &item.evidence {
                    let file = super::pack_file_name(e);
                    let pos = match evidence.iter().position(|x: &EvidenceInfo| x.file == file) {
                        Some(p) => p,
                        None => {
                            evidence.push(EvidenceInfo {
                                n: evidence.len() + 1,
                                file,
                                role: e.role.as_str().to_owned(),
                                url: e.url.clone(),
                                fetched_at: e.fetched_at.clone(),
                                sha256: e.sha256.clone(),
                            });
                            evidence.len() - 1
                        }
                    };
                    cited.push(pos + 1);
                }
                ListingInfo {
                    n: i + 1,
                    item_id: item.item_id.clone(),
                    url: item.url.clone(),
                    title: item.title.clone(),
                    seller: item.seller.clone(),
                    price: item.price,
                    price_text: item
                        .price
                        .map(|p| format!("{} {p:.2}", item.currency))
                        .unwrap_or_default(),
                    verdict: item.verdict.as_str().to_owned(),
                    score: (item.score * 1000.0).round() / 1000.0,
                    mark: item.mark.clone(),
                    registration_no: item.registration_no.clone(),
                    explanation_zh: explain_zh(&item.reasons),
                    explanation_en: explain_en(&item.reasons),
                    relisted_reason: item.relisted_reason.clone(),
                    evidence: cited,
                    domain: item.domain.as_ref().map(DomainInfo::new),
                    reason_codes: item
                        .reasons
                        .iter()
                        .map(|r| r.code.as_str().to_owned())
                        .collect(),
                }
            })
            .collect();
        NoticeContext {
            notice: NoticeInfo {
                id: n.id,
                platform: n.platform.clone(),
                platform_name: def.name.clone(),
                channel: def.complaint.name.clone(),
                channel_url: def.complaint.url.clone(),
                state: n.state.as_str().to_owned(),
                reason: n.reason.as_str().to_owned(),
                reason_zh: n.reason.label_zh().to_owned(),
                reason_en: n.reason.label_en().to_owned(),
                listing_id_label: def.complaint.listing_id_label.clone(),
                not_fileable: n.not_fileable.clone(),
                relisted_from: n.relisted_from,
                created_at: n.created_at.clone(),
            },
            holder: Holder {
                brand: n.brand.clone(),
                owner: detail.owner.clone(),
            },
            agent: Agent {
                name: config.agent.clone(),
                contact: config.agent_contact.clone(),
            },
            right: Right {
                type_zh: "商标".to_owned(),
                type_en: "Trademark".to_owned(),
                marks,
            },
            listings,
            evidence,
            signatory: if config.signatory.trim().is_empty() {
                detail.owner.clone()
            } else {
                config.signatory.clone()
            },
            date: today.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible_escapes() {
        assert_eq!(
            escape_controls("a\r\nSubject: x\t\u{1b}[31m"),
            "a\\r\\nSubject: x\\t\\u{1b}[31m"
        );
    }

    #[test]
    fn bundled_templates_compile_and_user_ones_override() {
        Templates::load(None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("taobao.zh.txt"), "投诉 {{ notice.id }}").unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let defs = crate::platform::load_dir(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/crawlers"
        )))
        .unwrap();
        let taobao = defs.iter().find(|d| d.platform == "taobao").unwrap();
        let tmall = defs.iter().find(|d| d.platform == "tmall").unwrap();
        assert_eq!(t.name_for(taobao, Language::Zh).unwrap(), "taobao.zh.txt");
        assert_eq!(
            t.name_for(tmall, Language::Zh).unwrap(),
            "alibaba_ipp.zh.txt"
        );
        assert_eq!(
            t.name_for(taobao, Language::En).unwrap(),
            "alibaba_ipp.en.txt"
        );

        std::fs::write(dir.path().join("jd_ipr.en.txt"), "{% for x in %}").unwrap();
        let e = Templates::load(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("jd_ipr.en.txt") && e.contains("line 1"), "{e}");
    }
}
