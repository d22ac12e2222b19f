//! Builds the email for an alert: subject, text and HTML bodies from minijinja templates
//! (bundled defaults, overridable from a folder), wrapped in a multipart/alternative message.
//!
//! Listing text (titles, shops, reasons) is scraped and hostile. It only reaches the bodies:
//! escaped by minijinja in `.html` templates, control characters flattened in both. Headers carry
//! only the configured sender, the brand's contacts, the Message-ID, the Date, and a subject made
//! of the brand name (validated by the registry) and counts.

use std::path::Path;
use std::time::SystemTime;

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use minijinja::Environment;
use serde::Serialize;

use super::AlertError;
use crate::model::alert::{Deadline, Item, NeedsPerson, Payload, PlatformFailure, Undeliverable};
use crate::model::{CaseState, Language};
use crate::store::{Alert, AlertKind};

/// The bundled templates, by name.
const BUNDLED: &[(&str, &str)] = &[
    (
        "layout.html",
        include_str!("../../templates/email/layout.html"),
    ),
    (
        "en/subject.txt",
        include_str!("../../templates/email/en/subject.txt"),
    ),
    (
        "en/item.txt",
        include_str!("../../templates/email/en/item.txt"),
    ),
    (
        "en/item.html",
        include_str!("../../templates/email/en/item.html"),
    ),
    (
        "en/immediate.txt",
        include_str!("../../templates/email/en/immediate.txt"),
    ),
    (
        "en/immediate.html",
        include_str!("../../templates/email/en/immediate.html"),
    ),
    (
        "en/digest.txt",
        include_str!("../../templates/email/en/digest.txt"),
    ),
    (
        "en/digest.html",
        include_str!("../../templates/email/en/digest.html"),
    ),
    (
        "en/report.txt",
        include_str!("../../templates/email/en/report.txt"),
    ),
    (
        "en/report.html",
        include_str!("../../templates/email/en/report.html"),
    ),
    (
        "zh/report.txt",
        include_str!("../../templates/email/zh/report.txt"),
    ),
    (
        "zh/report.html",
        include_str!("../../templates/email/zh/report.html"),
    ),
    (
        "en/operations.txt",
        include_str!("../../templates/email/en/operations.txt"),
    ),
    (
        "en/operations.html",
        include_str!("../../templates/email/en/operations.html"),
    ),
    (
        "en/test.txt",
        include_str!("../../templates/email/en/test.txt"),
    ),
    (
        "en/test.html",
        include_str!("../../templates/email/en/test.html"),
    ),
    (
        "zh/subject.txt",
        include_str!("../../templates/email/zh/subject.txt"),
    ),
    (
        "zh/item.txt",
        include_str!("../../templates/email/zh/item.txt"),
    ),
    (
        "zh/item.html",
        include_str!("../../templates/email/zh/item.html"),
    ),
    (
        "zh/immediate.txt",
        include_str!("../../templates/email/zh/immediate.txt"),
    ),
    (
        "zh/immediate.html",
        include_str!("../../templates/email/zh/immediate.html"),
    ),
    (
        "zh/digest.txt",
        include_str!("../../templates/email/zh/digest.txt"),
    ),
    (
        "zh/digest.html",
        include_str!("../../templates/email/zh/digest.html"),
    ),
    (
        "zh/operations.txt",
        include_str!("../../templates/email/zh/operations.txt"),
    ),
    (
        "zh/operations.html",
        include_str!("../../templates/email/zh/operations.html"),
    ),
    (
        "zh/test.txt",
        include_str!("../../templates/email/zh/test.txt"),
    ),
    (
        "zh/test.html",
        include_str!("../../templates/email/zh/test.html"),
    ),
];

/// Renders alert emails. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Renderer {
    env: Environment<'static>,
    base_url: String,
    from: Mailbox,
}

/// A rendered email, before addressing.
#[derive(Debug, Clone)]
pub(crate) struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Renderer {
    /// Loads the bundled templates, each replaced by `overrides/<name>` when that file exists.
    /// Every template is parsed now, so a broken override fails at startup, naming its file.
    pub(crate) fn new(
        overrides: Option<&Path>,
        base_url: &str,
        from: &str,
    ) -> Result<Renderer, AlertError> {
        let from: Mailbox = from.parse().map_err(|_| AlertError::Address {
            field: "email.from",
            value: from.to_owned(),
        })?;
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
        env.set_formatter(html_formatter);
        for (name, bundled) in BUNDLED {
            let source = match overrides.map(|dir| dir.join(name)) {
                Some(path) if path.is_file() => {
                    std::fs::read_to_string(&path).map_err(|source| AlertError::TemplateRead {
                        path: path.clone(),
                        source,
                    })?
                }
                _ => (*bundled).to_owned(),
            };
            env.add_template_owned(*name, source)
                .map_err(|source| AlertError::Template {
                    name: template_origin(overrides, name),
                    source,
                })?;
        }
        Ok(Renderer {
            env,
            base_url: base_url.trim_end_matches('/').to_owned(),
            from,
        })
    }

    /// The configured sender.
    pub(crate) fn from(&self) -> &Mailbox {
        &self.from
    }

    /// The subject line for a payload (stored with the alert when it is queued).
    pub(crate) fn subject(&self, kind: AlertKind, payload: &Payload) -> Result<String, AlertError> {
        let ctx = self.context(kind, payload, "", "");
        let subject = self.render(&format!("{}/subject.txt", lang(payload.language)), &ctx)?;
        Ok(one_line(&subject))
    }

    /// Subject and both bodies.
    pub(crate) fn render_alert(
        &self,
        kind: AlertKind,
        payload: &Payload,
        transport: &str,
    ) -> Result<Rendered, AlertError> {
        let subject = self.subject(kind, payload)?;
        let ctx = self.context(kind, payload, &subject, transport);
        let lang = lang(payload.language);
        Ok(Rendered {
            text: self.render(&format!("{lang}/{}.txt", kind.as_str()), &ctx)?,
            html: self.render(&format!("{lang}/{}.html", kind.as_str()), &ctx)?,
            subject,
        })
    }

    /// The complete message for a stored alert: the same bytes on every attempt except the
    /// transport's own trace headers, keyed by the alert's Message-ID.
    pub(crate) fn build_message(
        &self,
        alert: &Alert,
        transport: &str,
        attachments: &[crate::store::AlertAttachment],
    ) -> Result<Message, AlertError> {
        let rendered = self.render_alert(alert.kind, &alert.payload, transport)?;
        let subject = alert
            .subject
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or(rendered.subject);
        let date = chrono::DateTime::parse_from_rfc3339(&alert.created_at)
            .map(SystemTime::from)
            .unwrap_or_else(|_| SystemTime::now());
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(one_line(&subject))
            .message_id(Some(alert.message_id.clone()))
            .date(date);
        if alert.recipients.is_empty() {
            return Err(AlertError::NoRecipients);
        }
        for to in &alert.recipients {
            let mailbox: Mailbox = to.parse().map_err(|_| AlertError::Address {
                field: "recipients",
                value: to.clone(),
            })?;
            builder = builder.to(mailbox);
        }
        let body = MultiPart::alternative_plain_html(rendered.text, rendered.html);
        if attachments.is_empty() {
            return builder.multipart(body).map_err(AlertError::Build);
        }
        let mut mixed = MultiPart::mixed().multipart(body);
        for a in attachments {
            let content_type = lettre::message::header::ContentType::parse(&a.content_type)
                .unwrap_or(lettre::message::header::ContentType::TEXT_PLAIN);
            mixed = mixed.singlepart(
                lettre::message::Attachment::new(one_line(&a.filename))
                    .body(a.bytes.clone(), content_type),
            );
        }
        builder.multipart(mixed).map_err(AlertError::Build)
    }

    fn render(&self, name: &str, ctx: &Context<'_>) -> Result<String, AlertError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(minijinja::value::Serde(ctx)))
            .map_err(|source| AlertError::Template {
                name: name.to_owned(),
                source,
            })
    }

    fn context<'a>(
        &'a self,
        kind: AlertKind,
        payload: &'a Payload,
        subject: &'a str,
        transport: &'a str,
    ) -> Context<'a> {
        let brand = payload.brand.as_deref().map(one_line).unwrap_or_default();
        let links = Links {
            base_url: &self.base_url,
            brand: payload.brand.as_deref(),
        };
        let language = payload.language;
        let items = |items: &[Item]| -> Vec<ItemView> {
            items
                .iter()
                .map(|i| ItemView::new(i, &links, language))
                .collect()
        };
        Context {
            kind: kind.as_str(),
            subject,
            transport,
            base_url: &self.base_url,
            queue_url: links.queue(None),
            brand,
            counts: Counts {
                infringing: payload.infringing.len(),
                infringing_domains: payload
                    .infringing
                    .iter()
                    .filter(|i| i.platform == crate::model::DOMAINS_PLATFORM)
                    .count(),
                suspect: payload.suspect.len(),
                relisted: payload.relisted.len(),
                deadlines: payload.deadlines.len(),
                failures: payload.failures.len(),
                undeliverable: payload.undeliverable.len(),
                needs_person: payload.needs_person.len(),
            },
            infringing: items(&payload.infringing),
            suspect: items(&payload.suspect),
            relisted: payload
                .relisted
                .iter()
                .map(|r| RelistingView {
                    item: ItemView::new(&r.item, &links, language),
                    earlier_notice_id: r.earlier_notice_id,
                    earlier_url: links.notice(r.earlier_notice_id),
                    reason: r.reason.as_deref().map(one_line),
                })
                .collect(),
            deadlines: payload
                .deadlines
                .iter()
                .map(|d| DeadlineView {
                    url: links.notice(d.notice_id),
                    state_text: state_text(&d.state, language),
                    d,
                })
                .collect(),
            failures: &payload.failures,
            undeliverable: &payload.undeliverable,
            needs_person: &payload.needs_person,
            period_from: payload.period_from.as_deref(),
            period_to: payload.period_to.as_deref(),
            report: payload.report.as_ref(),
        }
    }
}

/// Links into the review UI (`src/web/`): the queue, a notice, a captured page.
struct Links<'a> {
    base_url: &'a str,
    /// The brand an email is about: its queue is filtered to it.
    brand: Option<&'a str>,
}

impl Links<'_> {
    /// The draft queue, of the email's brand (and `platform`) when there is one.
    fn queue(&self, platform: Option<&str>) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(brand) = self.brand {
            query.append_pair("brand", brand);
        }
        if let Some(platform) = platform {
            query.append_pair("platform", platform);
        }
        let query = query.finish();
        if query.is_empty() {
            format!("{}/queue", self.base_url)
        } else {
            format!("{}/queue?{query}", self.base_url)
        }
    }

    fn notice(&self, id: i64) -> String {
        format!("{}/notices/{id}", self.base_url)
    }

    fn evidence(&self, id: i64) -> String {
        format!("{}/evidence/{id}", self.base_url)
    }
}

/// A case state as the email's reader says it (stored names are snake_case codes).
fn state_text(state: &str, language: Language) -> String {
    match (state.parse::<CaseState>(), language) {
        (Ok(s), Language::Zh) => s.phrase_zh().to_owned(),
        (Ok(s), Language::En) => s.phrase_en().to_owned(),
        // A state this build does not know (a newer writer): shown, but on one line.
        (Err(_), _) => one_line(state).replace('_', " "),
    }
}

/// What a Chinese email shows of a matcher's detail, whose prose is English: a detail with no
/// Latin letters whole (it is the listing's own words), else its quoted parts (the words found
/// in the listing, the mark).
fn quoted_terms(detail: &str) -> Vec<String> {
    let detail = one_line(detail);
    if detail.is_empty() {
        return Vec::new();
    }
    if !detail.chars().any(|c| c.is_ascii_alphabetic()) {
        return vec![detail];
    }
    let parts: Vec<&str> = detail.split('"').collect();
    if parts.len().is_multiple_of(2) {
        return Vec::new(); // unbalanced quotes: nothing reliable to show
    }
    parts
        .iter()
        .skip(1)
        .step_by(2)
        .map(|t| one_line(t))
        .filter(|t| !t.is_empty())
        .collect()
}

/// minijinja's HTML escaping also escapes `/`, which turns every link into `https:&#x2f;&#x2f;`.
/// Escaping `& < > " '` is what HTML needs (text and quoted attributes); the rest is default.
fn html_formatter(
    out: &mut minijinja::Output<'_>,
    state: &mut minijinja::State<'_, '_>,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    match value.as_str() {
        Some(s) if *state.auto_escape() == minijinja::AutoEscape::Html && !value.is_safe() => out
            .write_str(&html_escape::encode_quoted_attribute(s))
            .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())),
        _ => minijinja::escape_formatter(out, state, value),
    }
}

fn lang(language: Language) -> &'static str {
    language.as_str()
}

fn template_origin(overrides: Option<&Path>, name: &str) -> String {
    match overrides.map(|dir| dir.join(name)) {
        Some(path) if path.is_file() => path.display().to_string(),
        _ => format!("(bundled) {name}"),
    }
}

/// Scraped text on one line: each run of CR, LF, tabs and other control characters becomes
/// one space.
pub(crate) fn one_line(s: &str) -> String {
    let mut flat = String::with_capacity(s.len());
    let mut in_control = false;
    for c in s.chars() {
        if c.is_control() {
            if !in_control {
                flat.push(' ');
            }
            in_control = true;
        } else {
            flat.push(c);
            in_control = false;
        }
    }
    flat.trim().to_owned()
}

/// Only web links become clickable; anything else (`javascript:`, `data:`) stays text.
fn web_link(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    matches!(parsed.scheme(), "http" | "https").then(|| parsed.to_string())
}

#[derive(Serialize)]
struct Context<'a> {
    kind: &'static str,
    subject: &'a str,
    transport: &'a str,
    base_url: &'a str,
    /// The draft queue, filtered to the brand in a brand's email.
    queue_url: String,
    brand: String,
    counts: Counts,
    infringing: Vec<ItemView>,
    suspect: Vec<ItemView>,
    relisted: Vec<RelistingView>,
    deadlines: Vec<DeadlineView<'a>>,
    failures: &'a [PlatformFailure],
    undeliverable: &'a [Undeliverable],
    needs_person: &'a [NeedsPerson],
    period_from: Option<&'a str>,
    period_to: Option<&'a str>,
    report: Option<&'a crate::model::alert::ReportSummary>,
}

#[derive(Serialize)]
struct Counts {
    infringing: usize,
    /// Of `infringing`, .CN domains rather than listings (the subject names them apart).
    infringing_domains: usize,
    suspect: usize,
    relisted: usize,
    deadlines: usize,
    failures: usize,
    undeliverable: usize,
    needs_person: usize,
}

#[derive(Serialize)]
struct ItemView {
    platform: String,
    title: String,
    seller: Option<String>,
    price_text: String,
    url: String,
    link: Option<String>,
    verdict: String,
    verdict_zh: &'static str,
    score: f64,
    reasons: Vec<ReasonView>,
    notice_id: Option<i64>,
    review_url: String,
}

/// One reason, worded for the email's language. `code` stays for template overrides that
/// used it; the bundled templates show `phrase` and `detail` (en) or `terms` (zh).
#[derive(Serialize)]
struct ReasonView {
    code: &'static str,
    /// The vocabulary's phrase in the email's language.
    phrase: &'static str,
    /// The matcher's own words (English prose).
    detail: String,
    /// The quoted words of the detail (what the listing says, the mark), for Chinese emails.
    terms: Vec<String>,
    /// A sentence for readers of English.
    explanation: &'static str,
}

impl ItemView {
    fn new(item: &Item, links: &Links<'_>, language: Language) -> ItemView {
        let price_text = match (item.price, item.currency.as_str()) {
            (Some(p), "CNY") => format!("¥{p:.2}"),
            (Some(p), currency) => format!("{p:.2} {}", one_line(currency)),
            (None, _) => "-".to_owned(),
        };
        // The draft holding it; before drafting, the captured page; else the brand's queue.
        let review_url = match (item.notice_id, item.evidence_id) {
            (Some(id), _) => links.notice(id),
            (None, Some(id)) => links.evidence(id),
            (None, None) => links.queue(Some(&item.platform)),
        };
        ItemView {
            platform: one_line(&item.platform),
            title: one_line(&item.title),
            seller: item.seller.as_deref().map(one_line),
            price_text,
            url: one_line(&item.url),
            link: web_link(&item.url),
            verdict: item.verdict.clone(),
            verdict_zh: match item.verdict.as_str() {
                "infringing" => "侵权",
                "suspect" => "可疑",
                _ => "无问题",
            },
            score: item.score,
            reasons: item
                .reasons
                .iter()
                .map(|r| ReasonView {
                    code: r.code.as_str(),
                    phrase: match language {
                        Language::Zh => r.code.phrase_zh(),
                        Language::En => r.code.phrase_en(),
                    },
                    detail: one_line(&r.detail),
                    terms: quoted_terms(&r.detail),
                    explanation: r.code.explanation(),
                })
                .collect(),
            notice_id: item.notice_id,
            review_url,
        }
    }
}

#[derive(Serialize)]
struct RelistingView {
    item: ItemView,
    earlier_notice_id: i64,
    earlier_url: String,
    reason: Option<String>,
}

#[derive(Serialize)]
struct DeadlineView<'a> {
    #[serde(flatten)]
    d: &'a Deadline,
    url: String,
    /// The case's state in words.
    state_text: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::alert::Relisting;
    use crate::model::{Reason, ReasonCode};

    fn item(title: &str) -> Item {
        Item {
            match_id: 1,
            listing_id: 7,
            platform: "taobao".to_owned(),
            title: title.to_owned(),
            seller: Some("莆田<b>鞋厂</b>".to_owned()),
            price: Some(59.0),
            currency: "CNY".to_owned(),
            url: "https://item.taobao.com/item.htm?id=7".to_owned(),
            verdict: "infringing".to_owned(),
            score: 0.93,
            reasons: vec![Reason {
                code: ReasonCode::CounterfeitTerm,
                detail: "高仿".to_owned(),
            }],
            notice_id: Some(3),
            evidence_id: Some(11),
        }
    }

    #[test]
    fn a_digest_names_the_earlier_case_of_a_relisting_and_each_deadline() {
        let payload = Payload {
            brand: Some("Nike".to_owned()),
            language: Language::Zh,
            suspect: vec![item("NIKE 高仿")],
            relisted: vec![Relisting {
                item: item("NIKE 高仿 再上架"),
                earlier_notice_id: 1,
                reason: Some("same seller".to_owned()),
            }],
            deadlines: vec![Deadline {
                notice_id: 3,
                platform: "taobao".to_owned(),
                state: "counter_noticed".to_owned(),
                deadline: "2026-12-05".to_owned(),
                complaint_ref: Some("IPP-7".to_owned()),
                overdue: false,
            }],
            ..Payload::default()
        };
        let r = renderer()
            .render_alert(AlertKind::Digest, &payload, "file")
            .unwrap();
        assert!(
            r.text
                .contains("关联案件 #1（same seller）：https://review.example/notices/1"),
            "{}",
            r.text
        );
        assert!(r.text.contains("2026-12-05"), "{}", r.text);
        assert!(
            r.html.contains("https://review.example/notices/3"),
            "{}",
            r.html
        );
        assert_eq!(
            r.subject,
            "【markwatch】Nike 摘要：1 条待审核，1 条重新上架，1 个期限"
        );
    }

    #[test]
    fn an_immediate_subject_counts_listings_and_domains_apart() {
        let domain = || Item {
            platform: crate::model::DOMAINS_PLATFORM.to_owned(),
            ..item("naike.cn 耐克官方商城")
        };
        let subject = |language, infringing: Vec<Item>| {
            let payload = Payload {
                brand: Some("Nike".to_owned()),
                language,
                infringing,
                ..Payload::default()
            };
            renderer().subject(AlertKind::Immediate, &payload).unwrap()
        };
        let cases = [
            (
                vec![item("a"), item("b")],
                "[markwatch] Nike: 2 new infringing listings",
                "【markwatch】Nike：发现 2 条新的侵权商品",
            ),
            (
                vec![domain()],
                "[markwatch] Nike: 1 new infringing domain",
                "【markwatch】Nike：发现 1 个新的侵权域名",
            ),
            (
                vec![item("a"), domain(), domain()],
                "[markwatch] Nike: 1 new infringing listing, 2 new infringing domains",
                "【markwatch】Nike：发现 1 条新的侵权商品、2 个新的侵权域名",
            ),
        ];
        for (items, en, zh) in cases {
            assert_eq!(subject(Language::En, items.clone()), en);
            assert_eq!(subject(Language::Zh, items), zh);
        }
    }

    fn renderer() -> Renderer {
        Renderer::new(
            None,
            "https://review.example/",
            "markwatch <alerts@markwatch.example>",
        )
        .unwrap()
    }

    #[test]
    fn html_escapes_listing_text_and_links_to_the_draft() {
        let payload = Payload {
            brand: Some("Nike".to_owned()),
            infringing: vec![item("<script>alert(1)</script> 耐克 高仿")],
            ..Payload::default()
        };
        let r = renderer()
            .render_alert(AlertKind::Immediate, &payload, "file")
            .unwrap();
        assert!(!r.html.contains("<script>alert(1)"), "{}", r.html);
        assert!(
            r.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{}",
            r.html
        );
        assert!(!r.html.contains("<b>鞋厂"), "{}", r.html);
        assert!(
            r.html.contains("https://review.example/notices/3"),
            "{}",
            r.html
        );
        assert!(
            r.text.contains("<script>alert(1)</script> 耐克 高仿"),
            "{}",
            r.text
        );
        assert!(
            r.text.contains("describes the goods as copies: 高仿"),
            "{}",
            r.text
        );
        assert!(!r.text.contains("counterfeit_term"), "{}", r.text);
        assert!(
            r.html.contains("https://review.example/queue?brand=Nike\""),
            "{}",
            r.html
        );
        assert_eq!(r.subject, "[markwatch] Nike: 1 new infringing listing");
    }

    #[test]
    fn a_listing_outside_a_notice_links_to_its_captured_page_and_bad_urls_are_not_links() {
        let mut it = item("x");
        it.notice_id = None;
        it.url = "javascript:alert(1)".to_owned();
        let payload = Payload {
            brand: Some("Nike".to_owned()),
            infringing: vec![it],
            ..Payload::default()
        };
        let r = renderer()
            .render_alert(AlertKind::Immediate, &payload, "file")
            .unwrap();
        assert!(
            r.html.contains("https://review.example/evidence/11"),
            "{}",
            r.html
        );
        assert!(!r.html.contains("href=\"javascript"), "{}", r.html);
    }

    #[test]
    fn chinese_subject_names_brand_and_count_only() {
        let payload = Payload {
            brand: Some("耐克".to_owned()),
            language: Language::Zh,
            infringing: vec![item("Nike\r\nBcc: evil@example.com"), item("b")],
            ..Payload::default()
        };
        let r = renderer()
            .render_alert(AlertKind::Immediate, &payload, "file")
            .unwrap();
        assert_eq!(r.subject, "【markwatch】耐克：发现 2 条新的侵权商品");
        assert!(r.text.contains("Nike Bcc: evil@example.com"), "{}", r.text);
    }

    #[test]
    fn chinese_reasons_use_the_chinese_phrases_and_the_quoted_words() {
        let mut it = item("耐克 高仿");
        it.reasons = vec![
            Reason {
                code: ReasonCode::CounterfeitTerm,
                detail: "the listing uses the counterfeit term \"高仿\"".to_owned(),
            },
            Reason {
                code: ReasonCode::PriceBelowReference,
                detail: "price 59 CNY is 85% below Nike's reference price of 400 CNY".to_owned(),
            },
        ];
        it.notice_id = None;
        it.evidence_id = None;
        let payload = Payload {
            brand: Some("耐克 & Co".to_owned()),
            language: Language::Zh,
            infringing: vec![it],
            ..Payload::default()
        };
        let r = renderer()
            .render_alert(AlertKind::Immediate, &payload, "file")
            .unwrap();
        for body in [&r.text, &r.html] {
            assert!(body.contains("标题含仿冒用语：“高仿”"), "{body}");
            assert!(body.contains("价格远低于正品参考价"), "{body}");
            for raw in [
                "counterfeit_term",
                "price_below_reference",
                "reference price",
            ] {
                assert!(!body.contains(raw), "{raw} in {body}");
            }
        }
        // Neither a notice nor a captured page: the brand's queue on that platform.
        let queue = "https://review.example/queue?brand=%E8%80%90%E5%85%8B+%26+Co";
        assert!(
            r.text.contains(&format!("{queue}&platform=taobao")),
            "{}",
            r.text
        );
        assert!(
            r.html.contains(&format!("{queue}&amp;platform=taobao")),
            "{}",
            r.html
        );
    }

    #[test]
    fn quoted_terms_are_the_words_between_balanced_quotes() {
        assert_eq!(
            quoted_terms("the listing says \"无吊牌\", \"无发票\": goods"),
            ["无吊牌", "无发票"]
        );
        assert!(quoted_terms("price 59 CNY").is_empty());
        assert!(quoted_terms("an \"odd one").is_empty());
        assert_eq!(quoted_terms("高仿 1:1"), ["高仿 1:1"]);
    }

    #[test]
    fn a_broken_override_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("en")).unwrap();
        std::fs::write(dir.path().join("en/immediate.txt"), "{% if %}").unwrap();
        let err = Renderer::new(Some(dir.path()), "http://x", "a@b.example")
            .unwrap_err()
            .to_string();
        assert!(err.contains("en/immediate.txt"), "{err}");
    }
}
