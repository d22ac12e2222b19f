//! markwatch: watches Chinese e-commerce platforms for listings that infringe registered
//! trademarks, drafts takedown notices with evidence, and alerts brand owners.
//!
//! Data moves one way: schedule → fetch → extract → store → match → notice → alert → review.

/// Configuration: defaults, `markwatch.toml`, `MARKWATCH_*` variables.
pub mod config;
/// Polite HTTP: pacing, retries, Retry-After; responses kept as evidence.
pub mod fetch;
/// Shared nouns: brands, marks, listings.
pub mod model;
/// The brand registry file format (TOML and CSV): parse, validate, export.
pub mod registry;
/// SQLite storage; all SQL lives here.
pub mod store;
