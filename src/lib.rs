//! markwatch: watches Chinese e-commerce platforms for listings that infringe registered
//! trademarks, drafts takedown notices with evidence, and alerts brand owners.

pub mod matcher;
pub mod model;
