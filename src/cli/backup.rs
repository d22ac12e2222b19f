//! `markwatch backup FILE`: a consistent copy of the live database.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::Context;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the copy; must not exist yet
    file: PathBuf,
}

pub async fn run(args: BackupArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store().await?;
    let summary = store
        .backup_to(&args.file)
        .await
        .with_context(|| format!("cannot back up to {}", args.file.display()))?;
    store.close().await;
    println!(
        "backed up {} to {} ({} bytes, integrity {})",
        ctx.config.database,
        args.file.display(),
        summary.bytes,
        summary.integrity
    );
    Ok(ExitCode::SUCCESS)
}
