//! `markwatch queue ...`: the draft queue and the case actions on it.

use markwatch::{
    DraftSummary, ExportOptions, NoticeContext, bundled_templates, check_filing, explain_en,
    export_platform_batch, load_definitions, queue_drafts,
};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

use markwatch::Outcome;
use markwatch::PlatformDef;
use markwatch::{AllowRequest, Feedback, RejectReason};
use markwatch::{CaseState, TransitionDetails};
use markwatch::{ExportFormat, Language, Templates, escape_controls};
use markwatch::{NoticeFilter, NoticeSort};

use super::Context;

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// List notices, highest priority first
    List(ListArgs),
    /// Show one notice: its right, listings, match reasons, evidence and history
    Show {
        id: i64,
        /// Print the notice as JSON
        #[arg(long)]
        json: bool,
        /// Also print the notice text in this language (zh or en)
        #[arg(long, value_name = "LANG")]
        text: Option<Language>,
    },
    /// Approve drafts for filing
    Approve(ActArgs),
    /// Reject drafts (before filing), or record the platform's rejection (after)
    Reject(RejectArgs),
    /// Record that notices were filed on the platform, with its complaint reference
    File(FileArgs),
    /// Record a filed case's outcome: removed, rejected, counter-noticed or closed
    Resolve(ResolveArgs),
    /// Write a platform's batch (approved notices by default) as its form's bulk upload expects
    Export(ExportArgs),
    /// Draft notices now from flagged matches not yet in a notice (crawls do this too)
    Draft,
    /// Write the bundled notice templates into a folder, to edit and name in `notices.templates`
    Templates {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, value_name = "P")]
    platform: Option<String>,
    /// draft, approved, filed, removed, rejected, counter_noticed or closed (repeatable)
    #[arg(long = "state", value_name = "S")]
    states: Vec<CaseState>,
    /// Brand name
    #[arg(long, value_name = "B")]
    brand: Option<String>,
    /// infringing or suspect
    #[arg(long, value_parser = parse_outcome)]
    verdict: Option<Outcome>,
    #[arg(long, value_name = "X")]
    min_score: Option<f64>,
    #[arg(long, value_name = "X")]
    max_score: Option<f64>,
    /// Only relisted cases
    #[arg(long)]
    relisted: bool,
    /// priority, newest, oldest, score, items, deadline or updated
    #[arg(long, default_value = "priority")]
    sort: NoticeSort,
    #[arg(long, default_value_t = 50)]
    limit: u64,
    #[arg(long, default_value_t = 0)]
    offset: u64,
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ActArgs {
    /// Notice ids
    #[arg(required = true)]
    ids: Vec<i64>,
    /// Why, for the audit log
    #[arg(long, value_name = "N")]
    note: Option<String>,
}

#[derive(Debug, Args)]
pub struct RejectArgs {
    #[command(flatten)]
    act: ActArgs,
    /// Why the drafts are not infringing: authorised-seller, genuine-goods or not-our-goods
    #[arg(long, value_name = "WHY", value_parser = parse_why)]
    why: Option<RejectReason>,
    /// Also allow each notice's shop for its brand from now on; `--allow-seller=SHOP` names
    /// the shop when a notice's listings come from several (needs --why)
    #[arg(
        long,
        value_name = "SHOP",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = ""
    )]
    allow_seller: Option<String>,
    /// Also allow titles containing all these words for each notice's brand (needs --why)
    #[arg(long, value_name = "WORDS")]
    allow_title: Option<String>,
}

fn parse_why(s: &str) -> Result<RejectReason, String> {
    s.replace('-', "_").parse().map_err(|_| {
        format!("unknown reason `{s}`; expected authorised-seller, genuine-goods or not-our-goods")
    })
}

#[derive(Debug, Args)]
pub struct FileArgs {
    #[arg(required = true)]
    ids: Vec<i64>,
    /// The platform's complaint reference: one for all, or one per id in order (repeatable)
    #[arg(long = "ref", value_name = "R", required = true)]
    refs: Vec<String>,
    /// The platform account filed under [default: notices.accounts.<platform>, or "default"]
    #[arg(long, value_name = "A")]
    account: Option<String>,
    #[arg(long, value_name = "N")]
    note: Option<String>,
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    #[arg(required = true)]
    ids: Vec<i64>,
    /// removed, rejected, counter-noticed or closed
    #[arg(long, value_name = "O")]
    outcome: CaseState,
    #[arg(long, value_name = "N")]
    note: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long, value_name = "P")]
    platform: String,
    /// csv, json or txt
    #[arg(long, default_value = "csv")]
    format: ExportFormat,
    /// Which notices [default: approved, the batch to file]
    #[arg(long, default_value = "approved")]
    state: CaseState,
    /// Language of the txt notices
    #[arg(long, default_value = "zh")]
    lang: Language,
    /// Write here instead of standard output
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

fn parse_outcome(s: &str) -> Result<Outcome, String> {
    match s {
        "infringing" => Ok(Outcome::Infringing),
        "suspect" => Ok(Outcome::Suspect),
        other => Err(format!(
            "unknown verdict `{other}`; expected infringing or suspect"
        )),
    }
}

pub async fn run(cmd: QueueCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    match cmd {
        QueueCommand::List(args) => list(args, ctx).await,
        QueueCommand::Show { id, json, text } => show(id, json, text, ctx).await,
        QueueCommand::Approve(a) => {
            act(ctx, &a.ids, CaseState::Approved, |_| TransitionDetails {
                note: a.note.clone(),
                ..TransitionDetails::default()
            })
            .await
        }
        QueueCommand::Reject(a) => reject(a, ctx).await,
        QueueCommand::Resolve(a) => {
            if !matches!(
                a.outcome,
                CaseState::Removed
                    | CaseState::Rejected
                    | CaseState::CounterNoticed
                    | CaseState::Closed
            ) {
                bail!(
                    "--outcome must be removed, rejected, counter-noticed or closed, not {}",
                    a.outcome
                );
            }
            act(ctx, &a.ids, a.outcome, |_| TransitionDetails {
                note: a.note.clone(),
                ..TransitionDetails::default()
            })
            .await
        }
        QueueCommand::File(a) => file(a, ctx).await,
        QueueCommand::Export(a) => export(a, ctx).await,
        QueueCommand::Draft => {
            let defs = load_definitions(&ctx.config.crawl.definitions)?;
            let store = ctx.open_store().await?;
            let summary = queue_drafts(&store, &defs).await?;
            store.close().await;
            println!("{}", draft_line(&summary));
            Ok(ExitCode::SUCCESS)
        }
        QueueCommand::Templates { out } => {
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            for (name, source) in bundled_templates() {
                let path = out.join(name);
                if path.exists() {
                    println!("{}: exists, left as it is", path.display());
                    continue;
                }
                std::fs::write(&path, source)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("{}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One line saying what a drafting run did.
pub fn draft_line(s: &DraftSummary) -> String {
    let mut line = format!(
        "drafts queued: {} listing(s) in {} new and {} extended draft(s)",
        s.listings,
        s.created.len(),
        s.extended.len()
    );
    if s.relisted > 0 {
        line.push_str(&format!("; {} relisted", s.relisted));
    }
    if s.not_fileable > 0 {
        line.push_str(&format!(
            "; {} new draft(s) not fileable (see `queue list`)",
            s.not_fileable
        ));
    }
    if s.pruned > 0 {
        line.push_str(&format!(
            "; {} re-scored clear and taken out of drafts",
            s.pruned
        ));
    }
    if !s.unplaced.is_empty() {
        line.push_str(&format!(
            "; {} left unplaced: {}",
            s.unplaced.len(),
            s.unplaced[0].reason
        ));
    }
    line
}

async fn list(a: ListArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store().await?;
    let filter = NoticeFilter {
        platform: a.platform,
        brand: a.brand,
        states: a.states,
        verdict: a.verdict,
        min_score: a.min_score,
        max_score: a.max_score,
        relisted: a.relisted.then_some(true),
        ..NoticeFilter::default()
    };
    let page = store
        .list_notices(&filter, a.sort, a.offset, a.limit)
        .await?;
    store.close().await;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&page)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header([
            "ID", "Listing", "Platform", "Brand", "Right", "Reason", "State", "Verdict", "Score",
            "Listings", "Priority", "Note",
        ]);
    for n in &page.notices {
        let right = match (&n.mark, &n.registration_no, &n.jurisdiction) {
            (Some(m), Some(r), Some(j)) => format!("{m} {j} {r}"),
            _ => "-".to_owned(),
        };
        let mut note = Vec::new();
        if let Some(why) = &n.not_fileable {
            note.push(format!("not fileable: {why}"));
        }
        if let Some(from) = n.relisted_from {
            note.push(format!("relists case #{from}"));
        }
        if let Some(r) = &n.complaint_ref {
            note.push(format!("ref {r}"));
        }
        if let Some(d) = &n.deadline {
            note.push(format!("deadline {d}"));
        }
        // The strongest listing's title, cut short: the table stays one line per case.
        let lead = match &n.lead_title {
            Some(t) if t.chars().count() > 24 => {
                format!("{}…", t.chars().take(23).collect::<String>())
            }
            Some(t) => t.clone(),
            None => "-".to_owned(),
        };
        table.add_row([
            n.id.to_string(),
            escape_controls(&lead),
            n.platform.clone(),
            n.brand.clone(),
            escape_controls(&right),
            n.reason.to_string(),
            n.state.to_string(),
            n.verdict.to_string(),
            format!("{:.2}", n.max_score),
            n.item_count.to_string(),
            n.priority.to_string(),
            note.join("; "),
        ]);
    }
    println!("{table}");
    println!(
        "{}–{} of {}{}",
        if page.notices.is_empty() {
            0
        } else {
            page.offset + 1
        },
        page.offset + page.notices.len() as u64,
        if page.total_capped { "at least " } else { "" },
        page.total
    );
    Ok(ExitCode::SUCCESS)
}

async fn show(
    id: i64,
    json: bool,
    text: Option<Language>,
    ctx: &Context,
) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store().await?;
    let Some(detail) = store.notice_detail(id).await? else {
        bail!("notice {id} does not exist");
    };
    let marks = store.notice_marks(id).await?;
    store.close().await;
    if json {
        println!("{}", serde_json::to_string_pretty(&detail)?);
        return Ok(ExitCode::SUCCESS);
    }
    let n = &detail.notice;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Notice #{} · {} · {} · {}",
        n.id, n.platform, n.state, n.channel
    )?;
    writeln!(out, "Rights holder: {} (brand {})", detail.owner, n.brand)?;
    for m in &marks {
        writeln!(
            out,
            "Right: {} · {} {} · classes {} · valid until {}",
            m.text,
            m.jurisdiction,
            m.registration_no,
            m.classes
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(","),
            m.expires.as_deref().unwrap_or("not recorded")
        )?;
    }
    writeln!(
        out,
        "Reason: {} ({})",
        n.reason.label_en(),
        n.reason.label_zh()
    )?;
    if let Some(why) = &n.not_fileable {
        writeln!(out, "NOT FILEABLE: {why}")?;
    }
    if let Some(from) = n.relisted_from {
        writeln!(out, "Relists case #{from} (priority {})", n.priority)?;
    }
    if let Some(r) = &n.complaint_ref {
        writeln!(
            out,
            "Complaint ref: {r} (account {}, filed {})",
            n.account.as_deref().unwrap_or("default"),
            n.filed_at.as_deref().unwrap_or("?")
        )?;
    }
    if let Some(d) = &n.deadline {
        writeln!(out, "Art. 43 deadline: {d}")?;
    }
    writeln!(out, "\nListings ({}):", detail.items.len())?;
    for (i, item) in detail.items.iter().enumerate() {
        writeln!(
            out,
            "{}. {} {} · {}",
            i + 1,
            item.platform,
            item.item_id,
            escape_controls(&item.title)
        )?;
        writeln!(out, "   {}", escape_controls(&item.url))?;
        writeln!(
            out,
            "   shop {} · price {} · {} {:.2}",
            escape_controls(item.seller.as_deref().unwrap_or("-")),
            item.price
                .map_or("-".to_owned(), |p| format!("{} {p:.2}", item.currency)),
            item.verdict,
            item.score
        )?;
        writeln!(
            out,
            "   why: {}",
            escape_controls(&explain_en(&item.reasons))
        )?;
        if let Some(r) = &item.relisted_reason {
            writeln!(out, "   relisted: {}", escape_controls(r))?;
        }
        for e in &item.evidence {
            writeln!(
                out,
                "   evidence #{} {:?} {} sha256 {}",
                e.id, e.role, e.fetched_at, e.sha256
            )?;
        }
    }
    writeln!(out, "\nHistory:")?;
    for h in &detail.history {
        writeln!(
            out,
            "  {} {} {}: {} → {}{}{}",
            h.at,
            escape_controls(&h.actor),
            h.action,
            h.from_state.as_deref().unwrap_or("-"),
            h.to_state.as_deref().unwrap_or("-"),
            h.note
                .as_deref()
                .map(|n| format!(" ({})", escape_controls(n)))
                .unwrap_or_default(),
            h.reject_reason
                .as_deref()
                .map(|r| format!(" [{}]", r.replace('_', " ")))
                .unwrap_or_default()
        )?;
    }
    if let Some(lang) = text {
        let defs = load_definitions(&ctx.config.crawl.definitions)?;
        let def = find_def(&defs, &n.platform)?;
        let templates = Templates::from_config(&ctx.config.notices)?;
        let nctx = NoticeContext::new(
            &detail,
            def,
            &ctx.config.notices,
            marks,
            chrono::Utc::now().date_naive(),
        );
        writeln!(out, "\n{}", templates.render(def, lang, &nctx)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn find_def<'a>(defs: &'a [PlatformDef], platform: &str) -> anyhow::Result<&'a PlatformDef> {
    defs.iter()
        .find(|d| d.platform == platform)
        .with_context(|| format!("no platform definition for `{platform}`"))
}

/// Applies one transition to each id; reports each, fails if any was refused.
async fn act(
    ctx: &Context,
    ids: &[i64],
    to: CaseState,
    details: impl Fn(usize) -> TransitionDetails,
) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store().await?;
    let actor = super::actor();
    let mut refused = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        match store.transition_notice(*id, to, &actor, &details(i)).await {
            Ok(n) => println!("notice {}: {}", n.id, n.state),
            Err(e) => {
                eprintln!("markwatch: {e}");
                refused.push(e);
            }
        }
    }
    store.close().await;
    match refused.into_iter().next() {
        None => Ok(ExitCode::SUCCESS),
        Some(first) if ids.len() == 1 => Err(first.into()),
        Some(first) => Err(anyhow::Error::new(first).context("some notices were not changed")),
    }
}

/// Rejects each notice, with the reason and allow rules asked for; reports each.
async fn reject(a: RejectArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let mut allow = Vec::new();
    if let Some(shop) = &a.allow_seller {
        let shop = shop.trim();
        allow.push(AllowRequest::Seller(
            (!shop.is_empty()).then(|| shop.to_owned()),
        ));
    }
    if let Some(words) = &a.allow_title {
        allow.push(AllowRequest::Title(words.clone()));
    }
    let feedback = Feedback {
        reason: a.why,
        allow,
    };
    let details = TransitionDetails {
        note: a.act.note.clone(),
        ..TransitionDetails::default()
    };
    let store = ctx.open_store().await?;
    let actor = super::actor();
    let mut refused = Vec::new();
    for id in &a.act.ids {
        match store.reject_notice(*id, &actor, &details, &feedback).await {
            Ok(r) => {
                println!("notice {}: {}", r.notice.id, r.notice.state);
                for (rule, how) in r
                    .added
                    .iter()
                    .map(|x| (x, "added"))
                    .chain(r.existing.iter().map(|x| (x, "already there")))
                {
                    println!(
                        "  allow rule {} {how}: {} {:?} for {} ({})",
                        rule.id,
                        rule.rule.kind,
                        escape_controls(&rule.rule.pattern),
                        rule.rule.brand,
                        rule.rule.reason
                    );
                }
            }
            Err(e) => {
                eprintln!("markwatch: {}", escape_controls(&e.to_string()));
                refused.push(e);
            }
        }
    }
    store.close().await;
    match refused.into_iter().next() {
        None => Ok(ExitCode::SUCCESS),
        Some(first) if a.act.ids.len() == 1 => Err(first.into()),
        Some(first) => Err(anyhow::Error::new(first).context("some notices were not changed")),
    }
}

async fn file(a: FileArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    if a.refs.len() != 1 && a.refs.len() != a.ids.len() {
        bail!(
            "give one --ref for all {} notices, or one per notice ({} given)",
            a.ids.len(),
            a.refs.len()
        );
    }
    // Warn first: the governor judges the batch against the account's recent record.
    let store = ctx.open_store().await?;
    let today = chrono::Utc::now().date_naive();
    let mut by_account: std::collections::BTreeMap<(String, String), Vec<i64>> = Default::default();
    for id in &a.ids {
        if let Some(n) = store.notice(*id).await? {
            let account = a
                .account
                .clone()
                .unwrap_or_else(|| ctx.config.notices.account_for(&n.platform).to_owned());
            by_account
                .entry((n.platform, account))
                .or_default()
                .push(*id);
        }
    }
    for ((platform, account), ids) in &by_account {
        let check = check_filing(&store, platform, account, ids, today).await?;
        for w in &check.warnings {
            eprintln!("warning: {w}");
        }
    }
    store.close().await;
    let refs = a.refs.clone();
    let ids = a.ids.clone();
    act(ctx, &ids, CaseState::Filed, |i| {
        let platform_account = a.account.clone().or_else(|| {
            by_account
                .iter()
                .find(|(_, v)| v.contains(&ids[i]))
                .map(|((_, acc), _)| acc.clone())
        });
        TransitionDetails {
            note: a.note.clone(),
            complaint_ref: Some(if refs.len() == 1 {
                refs[0].clone()
            } else {
                refs[i].clone()
            }),
            account: platform_account,
        }
    })
    .await
}

async fn export(a: ExportArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let defs = load_definitions(&ctx.config.crawl.definitions)?;
    let def = find_def(&defs, &a.platform)?;
    let templates = Templates::from_config(&ctx.config.notices)?;
    let store = ctx.open_store().await?;
    let today = chrono::Utc::now().date_naive();
    let opts = ExportOptions {
        format: a.format,
        lang: a.lang,
        config: &ctx.config.notices,
        templates: &templates,
        today,
    };
    let (bytes, batch) = export_platform_batch(&store, def, a.state, &opts).await?;
    if a.state == CaseState::Approved && !batch.is_empty() {
        let ids: Vec<i64> = batch.iter().map(|b| b.detail.notice.id).collect();
        let account = ctx.config.notices.account_for(&a.platform);
        let check = check_filing(&store, &a.platform, account, &ids, today).await?;
        for w in &check.warnings {
            eprintln!("warning: {w}");
        }
    }
    store.close().await;
    match &a.out {
        Some(path) => {
            std::fs::write(path, &bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "{}: {} notice(s), {} listing(s) for {}",
                path.display(),
                batch.len(),
                batch.iter().map(|b| b.detail.items.len()).sum::<usize>(),
                def.complaint.name
            );
        }
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(ExitCode::SUCCESS)
}
