//! markwatch: watches Chinese e-commerce platforms for listings that infringe registered
//! trademarks, drafts takedown notices with evidence, and alerts brand owners.

pub mod model;
/// Crawler definitions (`crawlers/*.toml`) loaded into `PlatformDef` values.
pub mod platform;
/// Decoding and listing extraction from fetched pages.
pub mod extract;
/// The fixture platforms: an HTTP server rendering pages from the catalogue, with faults.
pub mod fixture_server;
