//! Serves the review UI alone over an existing database, for benchmarks and UI work before
//! the daemon's `markwatch serve` is at hand:
//!
//! ```sh
//! cargo run --release --example review_ui -- markwatch.db 127.0.0.1:8088
//! ```
//!
//! The database may be a `postgres://` URL.

use markwatch::Config;
use markwatch::Store;
use markwatch::{WebState, serve_review_ui};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "markwatch=warn".into()),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let db = markwatch::Database::parse(&args.next().unwrap_or_else(|| "markwatch.db".to_owned()))
        .map_err(|e| anyhow::anyhow!("database: {e}"))?;
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8088".to_owned());
    let store = Store::open(&db).await?;
    let config = Config {
        database: db,
        ..Config::default()
    };
    let defs = markwatch::load_definitions(&config.crawl.definitions)?;
    let state = WebState::new(store, config, &defs)?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("review UI on http://{addr}/");
    serve_review_ui(listener, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
