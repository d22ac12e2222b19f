//! `markwatch evidence ...`: evidence packs and the hash chain.

use markwatch::{export_pack, load_definitions, verify_pack, verify_pack_with_store};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use markwatch::Templates;

use super::Context;

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Write a notice's evidence pack: every captured page as fetched, the notice text and a
    /// manifest.json with hashes, capture times, URLs, extracted fields and match reasons
    Export {
        /// Notice id
        id: i64,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Check the whole evidence chain in the database (or one pack with --pack); names the
    /// first bad record and exits 1 if any
    Verify {
        /// Check this pack instead: its files against its manifest, and its records against the
        /// database's chain when the database exists
        #[arg(long, value_name = "FILE")]
        pack: Option<PathBuf>,
        /// Check timestamp tokens against this CA certificate (PEM) [default: evidence.tsa.ca]
        #[arg(long, value_name = "FILE")]
        tsa_ca: Option<PathBuf>,
    },
    /// Ask the configured timestamp authority (evidence.tsa) for a token over the chain's
    /// head now, whatever the interval; crawls do this after each run
    Stamp,
    /// Write a notice's report: a PDF with the mark, and per listing its screenshot, URL,
    /// capture times, hashes, chain position, timestamp and match reasons (needs Chromium)
    Report {
        /// Notice id
        id: i64,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Write the report's HTML and pictures into this folder instead of printing a PDF
        #[arg(long)]
        html: bool,
    },
}

/// Chromium for printing reports, on a profile of its own that lives as long as it.
struct Printer {
    browser: markwatch::BrowserSession,
    _profile: tempfile::TempDir,
}

impl Printer {
    async fn launch(ctx: &Context) -> anyhow::Result<Printer> {
        let profile = tempfile::tempdir()?;
        let browser = markwatch::BrowserSession::launch(markwatch::BrowserOptions {
            executable: ctx.config.crawl.browser.executable.clone(),
            profile_dir: profile.path().to_owned(),
            proxy: None,
            user_agent: None,
            tabs: 1,
            page_timeout: std::time::Duration::from_secs(
                ctx.config.crawl.browser.page_timeout_secs.max(60),
            ),
            headless: true,
        })
        .await?;
        Ok(Printer {
            browser,
            _profile: profile,
        })
    }

    async fn print(
        &self,
        store: &markwatch::Store,
        id: i64,
        templates: &Templates,
    ) -> anyhow::Result<Vec<u8>> {
        Ok(markwatch::render_report(store, id, templates, &self.browser).await?)
    }

    async fn close(self) {
        self.browser.close().await;
    }
}

/// One line on what stamping did, for commands that crawl.
pub(super) fn stamp_line(
    outcome: Option<&markwatch::StampOutcome>,
    error: Option<&str>,
) -> Option<String> {
    use markwatch::StampOutcome;
    if let Some(e) = error {
        return Some(format!(
            "evidence chain NOT timestamped: {e}; the next run asks again"
        ));
    }
    Some(match outcome? {
        StampOutcome::Stamped {
            token_id,
            evidence_id,
            gen_time,
        } => format!(
            "evidence chain timestamped: token {token_id} covers records 1..={evidence_id}, TSA time {gen_time}"
        ),
        StampOutcome::UpToDate => "evidence chain: the newest record is already timestamped".into(),
        StampOutcome::NotDue => {
            "evidence chain: the last token is younger than evidence.tsa.interval_secs; the next run stamps".into()
        }
        StampOutcome::Empty => "evidence chain: empty, nothing to timestamp".into(),
    })
}

/// The CA tokens are checked against: `--tsa-ca`, else `evidence.tsa.ca`.
fn trust_anchor(
    given: Option<&std::path::Path>,
    ctx: &Context,
) -> anyhow::Result<Option<markwatch::TrustAnchor>> {
    let path = given.or(ctx.config.evidence.tsa.as_ref().map(|t| t.ca.as_path()));
    Ok(match path {
        Some(p) => Some(markwatch::TrustAnchor::from_pem_file(p)?),
        None => None,
    })
}

pub async fn run(cmd: EvidenceCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    match cmd {
        EvidenceCommand::Export { id, out } => {
            let defs = load_definitions(&ctx.config.crawl.definitions)?;
            let templates = Templates::from_config(&ctx.config.notices)?;
            let store = ctx.open_store().await?;
            let anchor = trust_anchor(None, ctx)?;
            // The report needs Chromium; a pack without it still holds all the evidence.
            let printed = async {
                let printer = Printer::launch(ctx).await?;
                let pdf = printer.print(&store, id, &templates).await;
                printer.close().await;
                pdf
            }
            .await;
            let report = match printed {
                Ok(pdf) => Some(pdf),
                Err(e) => {
                    eprintln!("warning: the pack has no report.pdf: {e:#}");
                    None
                }
            };
            let extras = markwatch::PackExtras {
                tsa_ca: anchor.as_ref(),
                report: report.as_deref(),
            };
            let s = export_pack(
                &store,
                id,
                &defs,
                &ctx.config.notices,
                &templates,
                extras,
                &out,
            )
            .await?;
            store.close().await;
            println!(
                "{}: notice {}, {} listing(s), {} page(s), {} file(s)",
                out.display(),
                s.notice_id,
                s.listings,
                s.pages,
                s.files
            );
            Ok(ExitCode::SUCCESS)
        }
        EvidenceCommand::Report { id, out, html } => {
            let templates = Templates::from_config(&ctx.config.notices)?;
            let store = ctx.open_store().await?;
            if html {
                std::fs::create_dir_all(&out)?;
                let page = markwatch::write_report_html(&store, id, &templates, &out).await;
                store.close().await;
                println!("{}", page?.display());
                return Ok(ExitCode::SUCCESS);
            }
            let printer = Printer::launch(ctx).await?;
            let pdf = printer.print(&store, id, &templates).await;
            printer.close().await;
            store.close().await;
            let pdf = pdf?;
            // Written whole, then renamed: a crash never leaves half a report.
            let tmp = out.with_extension("pdf.partial");
            std::fs::write(&tmp, &pdf)?;
            std::fs::rename(&tmp, &out)?;
            println!("{}: notice {id}, {} bytes", out.display(), pdf.len());
            Ok(ExitCode::SUCCESS)
        }
        EvidenceCommand::Stamp => {
            let Some(tsa) = &ctx.config.evidence.tsa else {
                anyhow::bail!("no timestamp authority: set [evidence.tsa] url and ca");
            };
            let tsa = markwatch::Tsa::from_config(tsa, &ctx.config.crawl.user_agent)?;
            let store = ctx.open_store().await?;
            let outcome = tsa.stamp(&store).await;
            store.close().await;
            let outcome = outcome?;
            if let Some(line) = stamp_line(Some(&outcome), None) {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        EvidenceCommand::Verify {
            pack: Some(pack),
            tsa_ca,
        } => {
            let anchor = trust_anchor(tsa_ca.as_deref(), ctx)?;
            let report = if ctx.config.database.file().is_none_or(|f| f.exists()) {
                let store = ctx.open_store().await?;
                let r = verify_pack_with_store(&pack, &store, anchor.as_ref()).await?;
                store.close().await;
                r
            } else {
                verify_pack(&pack, anchor.as_ref())?
            };
            match report.problem {
                None => {
                    println!(
                        "{}: intact ({} files match the manifest)",
                        pack.display(),
                        report.checked
                    );
                    for line in &report.timestamps {
                        println!("  {line}");
                    }
                    if let Some(ca) = &report.anchor {
                        println!("  timestamp tokens checked against the CA `{ca}`");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Some(problem) => {
                    println!("{}: TAMPERED: {problem}", pack.display());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        EvidenceCommand::Verify { pack: None, tsa_ca } => {
            let anchor = trust_anchor(tsa_ca.as_deref(), ctx)?;
            let store = ctx.open_store().await?;
            let report = markwatch::verify_evidence_chain(&store).await?;
            let stamps = markwatch::verify_timestamps(&store, anchor.as_ref()).await?;
            store.close().await;
            let mut ok = true;
            match report.first_break {
                None => println!(
                    "evidence chain intact: {} record(s), head {}",
                    report.checked, report.head
                ),
                Some(b) => {
                    ok = false;
                    println!(
                        "evidence chain BROKEN at record {} ({}): {}; {} record(s) before it are intact",
                        b.evidence_id, b.url, b.problem, report.checked
                    );
                }
            }
            for t in &stamps.tokens {
                let records = format!("records {}..={}", t.first_record, t.last_record);
                match &t.problem {
                    None => println!(
                        "timestamp token {}: {records} stamped at {} by {} ({}): verified",
                        t.token_id, t.gen_time, t.tsa_name, t.tsa_url
                    ),
                    Some(p) => {
                        ok = false;
                        println!("timestamp token {}: {records}: FAILED: {p}", t.token_id);
                    }
                }
            }
            if let Some((first, last)) = stamps.uncovered {
                println!("records {first}..={last}: not yet timestamped");
            }
            if stamps.unchecked_signatures && !stamps.tokens.is_empty() {
                println!(
                    "timestamp signatures NOT checked: no CA certificate (evidence.tsa.ca or --tsa-ca); imprints only"
                );
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
