//! Shared setup: the fixture server on 127.0.0.1:0 and a crawl loop over HTTP.

#![allow(dead_code)]

use std::path::PathBuf;

use markwatch::extract::{self, Extracted, SearchPage};
use markwatch::fixture_server::{FixtureOptions, FixtureServer};
use markwatch::platform::{self, PlatformDef};
use url::Url;

pub const PLATFORMS: [&str; 4] = ["taobao", "tmall", "jd", "amazon_cn"];

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn definition(platform: &str) -> PlatformDef {
    platform::load_file(&root().join("crawlers").join(format!("{platform}.toml"))).unwrap()
}

/// A running fixture server.
pub struct Running {
    pub server: FixtureServer,
    pub addr: std::net::SocketAddr,
    pub client: reqwest::Client,
}

impl Running {
    pub async fn start(options: FixtureOptions) -> Running {
        let server = FixtureServer::new(options).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(markwatch::fixture_server::serve(listener, server.clone()));
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .unwrap();
        Running {
            server,
            addr,
            client,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The base URL override a crawler would use for `platform`.
    pub fn base(&self, platform: &str) -> Url {
        Url::parse(&self.url(&format!("/{platform}"))).unwrap()
    }

    /// GETs a page; returns status, Content-Type, body and the final URL.
    pub async fn get(&self, url: &str) -> (u16, Option<String>, Vec<u8>, String) {
        let resp = self.client.get(url).send().await.unwrap();
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let final_url = resp.url().to_string();
        let body = resp.bytes().await.unwrap().to_vec();
        (status, ctype, body, final_url)
    }

    /// Fetches and reads one search page the way the crawler does.
    pub async fn search_page(&self, def: &PlatformDef, keyword: &str, page: u32) -> SearchPage {
        self.search_page_with(def, keyword, page, "").await
    }

    pub async fn search_page_with(
        &self,
        def: &PlatformDef,
        keyword: &str,
        page: u32,
        extra_query: &str,
    ) -> SearchPage {
        let real = def.search_url(keyword, page);
        let fetch = PlatformDef::fetch_url(&real, Some(&self.base(&def.platform))) + extra_query;
        let (status, ctype, body, _) = self.get(&fetch).await;
        assert_eq!(status, 200, "{fetch}");
        let decoded = extract::decode_page(&body, ctype.as_deref(), &def.encoding);
        assert!(!decoded.had_errors || extra_query.contains("truncate"), "{fetch}");
        extract::extract_search(def, &decoded.text, &real)
            .unwrap_or_else(|e| panic!("{fetch}: {e}"))
    }

    /// Every listing of every page of one keyword, following `has_next`.
    pub async fn crawl_keyword(&self, def: &PlatformDef, keyword: &str) -> (Vec<Extracted>, u32) {
        let mut all = Vec::new();
        let mut page = 1;
        loop {
            let p = self.search_page(def, keyword, page).await;
            assert!(!p.truncated);
            all.extend(p.listings);
            if !p.has_next {
                return (all, page);
            }
            page += 1;
            assert!(page <= def.pagination.as_ref().unwrap().max_pages, "runaway paging");
        }
    }
}
