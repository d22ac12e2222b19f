//! `markwatch brands ...`

use markwatch::{load_registry, registry_to_toml};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use markwatch::Brand;

use super::Context;

#[derive(Debug, Subcommand)]
pub enum BrandsCommand {
    /// Import brands from a TOML or CSV registry file (all or nothing; re-import is a no-op)
    Import {
        /// A `.toml` file in the registry format, or a `.csv` file with one row per mark
        file: PathBuf,
    },
    /// List the registered brands
    List,
    /// Print one brand in the registry's TOML format
    Show {
        /// The brand's name, exactly as registered
        name: String,
    },
    /// Export the whole registry as TOML (re-importable); with --out, the brands' reference
    /// images are written beside the file at the paths it names
    Export {
        /// Write here instead of standard output
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

pub async fn run(cmd: BrandsCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    match cmd {
        BrandsCommand::Import { file } => {
            let brands = load_registry(&file)?;
            let store = ctx.open_store().await?;
            let s = store
                .import_registry(&brands, &super::actor(), &file.display().to_string())
                .await
                .with_context(|| format!("cannot import {}", file.display()))?;
            println!(
                "{}: {} brands ({} added, {} updated, {} unchanged), {} marks ({} added, {} updated, {} unchanged), {} reference images written",
                file.display(),
                brands.len(),
                s.brands_added,
                s.brands_updated,
                s.brands_unchanged,
                s.marks_added + s.marks_updated + s.marks_unchanged,
                s.marks_added,
                s.marks_updated,
                s.marks_unchanged,
                s.images_changed,
            );
            tracing::info!(file = %file.display(), changed = s.changed(), "registry imported");
            store.close().await;
        }
        BrandsCommand::List => {
            let store = ctx.open_store().await?;
            let brands = store.brands().await?;
            store.close().await;
            if brands.is_empty() {
                println!("No brands registered. Import some with `markwatch brands import FILE`.");
            } else {
                println!("{}", brand_table(&brands));
            }
        }
        BrandsCommand::Show { name } => {
            let store = ctx.open_store().await?;
            let brand = store.brand_by_name(&name).await?;
            store.close().await;
            match brand {
                Some(brand) => print!("{}", registry_to_toml(&[brand])),
                None => {
                    eprintln!(
                        "markwatch: no brand named `{name}`; `markwatch brands list` shows them"
                    );
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        BrandsCommand::Export { out } => {
            let store = ctx.open_store().await?;
            let toml = registry_to_toml(&store.brands().await?);
            let images = store.reference_image_files().await;
            store.close().await;
            match out {
                Some(path) => {
                    let base = path.parent().unwrap_or(std::path::Path::new("."));
                    let written = write_images(base, &images?)?;
                    std::fs::write(&path, toml)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    if written > 0 {
                        eprintln!(
                            "{written} reference image(s) written beside {}",
                            path.display()
                        );
                    }
                }
                None => print!("{toml}"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes reference images under `base` at their relative paths, so that the exported file
/// imports again. An absolute path is left to the file it names; a path that climbs out of
/// `base` is refused; a file already there with other bytes is never overwritten.
fn write_images(base: &std::path::Path, images: &[(String, Vec<u8>)]) -> anyhow::Result<usize> {
    use std::path::Component;
    let mut written = 0;
    for (rel, bytes) in images {
        let p = std::path::Path::new(rel);
        if p.is_absolute() {
            continue;
        }
        if !p
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        {
            anyhow::bail!("reference image path `{rel}` leaves the export's folder");
        }
        let dest = base.join(p);
        match std::fs::read(&dest) {
            Ok(existing) if existing == *bytes => continue,
            Ok(_) => anyhow::bail!(
                "{} exists with other contents; export to another folder",
                dest.display()
            ),
            Err(_) => {}
        }
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&dest, bytes).with_context(|| format!("cannot write {}", dest.display()))?;
        written += 1;
    }
    Ok(written)
}

fn brand_table(brands: &[Brand]) -> Table {
    let today = chrono::Utc::now().date_naive();
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header([
            "Brand",
            "Owner",
            "Marks",
            "Classes",
            "Authorised sellers",
            "Ref. price",
        ]);
    for b in brands {
        let marks: Vec<String> = b
            .marks
            .iter()
            .map(|m| match m.expires {
                Some(d) if d < today => format!("{} ({}, expired {d})", m.text, m.jurisdiction),
                _ => format!("{} ({})", m.text, m.jurisdiction),
            })
            .collect();
        let mut classes: Vec<u8> = b
            .marks
            .iter()
            .flat_map(|m| m.classes.iter().copied())
            .collect();
        classes.sort_unstable();
        classes.dedup();
        let classes: Vec<String> = classes.iter().map(u8::to_string).collect();
        table.add_row([
            b.name.clone(),
            b.owner.clone(),
            marks.join("\n"),
            classes.join(", "),
            b.authorized_sellers.join("\n"),
            b.reference_price_cny
                .map(|p| format!("¥{p}"))
                .unwrap_or_default(),
        ]);
    }
    table
}
