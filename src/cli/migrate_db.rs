//! `markwatch migrate-db --from sqlite:FILE --to postgres://…`: copies an installation into
//! an empty database (an SQLite file outgrown into a PostgreSQL server, or back), then checks
//! the copy: the rows of every table, and the evidence chain walked on both sides.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use markwatch::{DaemonLock, Database, Store, verify_evidence_chain};

use super::Context;

#[derive(Debug, Args)]
pub struct MigrateDbArgs {
    /// The installation to copy: an SQLite file (`sqlite:FILE` or a path) or a postgres:// URL
    #[arg(long, value_name = "DB", value_parser = Database::parse)]
    from: Database,
    /// An empty database to copy into; its tables are created first
    #[arg(long, value_name = "DB", value_parser = Database::parse)]
    to: Database,
}

pub async fn run(args: MigrateDbArgs, _ctx: &Context) -> anyhow::Result<ExitCode> {
    if args.from == args.to {
        bail!("--from and --to name the same database");
    }
    if let Database::Sqlite(file) = &args.from
        && !file.exists()
    {
        bail!("{} does not exist", file.display());
    }
    // No daemon may write the source while it is copied (on this machine; stop the others).
    let _lock = match &args.from {
        Database::Sqlite(_) => Some(
            DaemonLock::acquire(&args.from)
                .context("stop `markwatch serve` on the source before copying it")?,
        ),
        Database::Postgres(_) => None,
    };
    let source = Store::open(&args.from).await?;
    let target = Store::open(&args.to).await?;
    eprintln!("copying {} into {} …", args.from, args.to);
    let counts = source
        .copy_into(&target)
        .await
        .with_context(|| format!("cannot copy into {}", args.to))?;
    println!("{:<22} {:>10} {:>10}", "table", "source", "copy");
    let mut differ = Vec::new();
    for c in &counts {
        println!("{:<22} {:>10} {:>10}", c.table, c.source, c.target);
        if c.source != c.target {
            differ.push(c.table.clone());
        }
    }
    let before = verify_evidence_chain(&source).await?;
    let after = verify_evidence_chain(&target).await?;
    source.close().await;
    target.close().await;
    if !differ.is_empty() {
        bail!("row counts differ in {}", differ.join(", "));
    }
    if let Some(b) = &after.first_break {
        bail!(
            "the copy's evidence chain breaks at record {}: {}",
            b.evidence_id,
            b.problem
        );
    }
    if (after.checked, &after.head) != (before.checked, &before.head) {
        bail!(
            "the copy's evidence chain ({} records, head {}) is not the source's ({} records, head {})",
            after.checked,
            after.head,
            before.checked,
            before.head
        );
    }
    let rows: i64 = counts.iter().map(|c| c.target).sum();
    println!(
        "copied {rows} rows; every table's count matches; evidence chain intact on the copy: {} record(s), head {}",
        after.checked, after.head
    );
    println!(
        "Platform accounts' secrets stay sealed with the source's key: give the copy's daemon and \
         workers that key file (or MARKWATCH_SECRET_KEY). Then set `database` to the copy."
    );
    Ok(ExitCode::SUCCESS)
}
