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
    },
}

pub async fn run(cmd: EvidenceCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    match cmd {
        EvidenceCommand::Export { id, out } => {
            let defs = load_definitions(&ctx.config.crawl.definitions)?;
            let templates = Templates::from_config(&ctx.config.notices)?;
            let store = ctx.open_store().await?;
            let s = export_pack(&store, id, &defs, &ctx.config.notices, &templates, &out).await?;
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
        EvidenceCommand::Verify { pack: Some(pack) } => {
            let report = if ctx.config.database.exists() {
                let store = ctx.open_store().await?;
                let r = verify_pack_with_store(&pack, &store).await?;
                store.close().await;
                r
            } else {
                verify_pack(&pack)?
            };
            match report.problem {
                None => {
                    println!(
                        "{}: intact ({} files match the manifest)",
                        pack.display(),
                        report.checked
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Some(problem) => {
                    println!("{}: TAMPERED: {problem}", pack.display());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        EvidenceCommand::Verify { pack: None } => {
            let store = ctx.open_store().await?;
            let report = markwatch::verify_evidence_chain(&store).await?;
            store.close().await;
            match report.first_break {
                None => {
                    println!(
                        "evidence chain intact: {} record(s), head {}",
                        report.checked, report.head
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Some(b) => {
                    println!(
                        "evidence chain BROKEN at record {} ({}): {}; {} record(s) before it are intact",
                        b.evidence_id, b.url, b.problem, report.checked
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}
