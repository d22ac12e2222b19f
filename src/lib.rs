//! markwatch: watches Chinese e-commerce platforms for listings that infringe registered
//! trademarks, drafts takedown notices with evidence, and alerts brand owners.
//!
//! Data moves one way: schedule → fetch → extract → store → match → notice → alert → review.

#![warn(unreachable_pub)]

/// Email alerts: the outbox, batching, digests, delivery with retries.
pub mod alert;
/// The case lifecycle of a takedown notice: states, transitions, deadlines.
pub mod case;
/// Configuration: defaults, `markwatch.toml`, `MARKWATCH_*` variables.
pub mod config;
/// One crawl: fetch → extract → store for every platform and watched keyword.
pub mod crawl;
/// Cron expressions and UTC offsets: the one reader for crawl and digest schedules.
pub mod cron;
/// The daemon (`markwatch serve`): scheduler, runs, health, metrics, control API, shutdown.
pub mod daemon;
/// Evidence packs (zip + manifest.json) for notices, and their verification.
pub mod evidence;
/// Decoding and listing extraction from fetched pages.
pub mod extract;
/// Polite HTTP: pacing, retries, Retry-After; responses kept as evidence.
pub mod fetch;
/// The fixture platforms: an HTTP server rendering pages from the catalogue, with faults.
#[cfg(feature = "fixtures")]
pub mod fixture_server;
/// Matching listings against the registry: an explained verdict per listing.
pub mod matcher;
/// Prometheus metrics, read from the database at scrape time.
pub mod metrics;
/// Shared nouns: brands, marks, listings.
pub mod model;
/// Takedown notices: drafting by platform rules, templates, form exports.
pub mod notice;
/// Crawler definitions (`crawlers/*.toml`) loaded into `PlatformDef` values.
pub mod platform;
/// The brand registry file format (TOML and CSV): parse, validate, export.
pub mod registry;
/// Re-scoring stored listings after the registry or the matcher changes.
pub mod rematch;
/// Cron schedules and watches: when the daemon crawls, and how restarts keep to it.
pub mod schedule;
/// Evidence sealing: compression, hashes and the hash chain; opening and verifying it.
pub mod seal;
/// SQLite storage; all SQL lives here.
pub mod store;
#[cfg(test)]
mod test_support;
/// The review UI and JSON API: axum router, users, sessions, CSRF, security headers.
pub mod web;
