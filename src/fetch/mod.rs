//! Fetches pages politely: one [`Fetcher`] per platform holds the HTTP client, a token bucket,
//! a concurrency limit and the retry policy. Every response it returns carries what evidence
//! needs: the bytes as received, status, headers, final URL and time.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use tokio::sync::Semaphore;

/// Script-rendered pages through Chromium.
pub(crate) mod browser;

/// How hard and how patiently to fetch from one platform.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FetchPolicy {
    /// Sustained requests per second; `None` for no limit (benchmarks against loopback).
    pub requests_per_second: Option<f64>,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Attempts per page, the first included.
    pub max_attempts: u32,
    /// First backoff; doubles each retry, with full jitter.
    pub base_backoff: Duration,
    /// Longest wait between attempts, Retry-After included.
    pub max_backoff: Duration,
    /// Whole-request timeout.
    pub timeout: Duration,
    pub user_agent: String,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            requests_per_second: Some(1.0),
            concurrency: 2,
            max_attempts: 4,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
            user_agent: concat!("markwatch/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// A response as received, whatever its status.
#[derive(Debug, Clone)]
pub struct Page {
    /// The URL asked for.
    pub url: String,
    /// Where redirects ended.
    pub final_url: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Raw bytes after transfer decoding (gzip/brotli), before any charset decoding.
    pub body: Vec<u8>,
    pub fetched_at: DateTime<Utc>,
    /// Attempts it took, 1 when the first succeeded.
    pub attempts: u32,
}

impl Page {
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a page could not be fetched, after every attempt allowed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL is not one reqwest can request.
    #[error("invalid URL {url}: {message}")]
    InvalidUrl { url: String, message: String },
    /// The client could not be built (TLS setup).
    #[error("cannot build HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// Every attempt failed; the last failure is given.
    #[error("{url}: gave up after {attempts} attempts: {last}")]
    GaveUp {
        url: String,
        attempts: u32,
        last: String,
        /// The last response, when the failure was an HTTP status.
        status: Option<u16>,
    },
}

/// Who a [`Fetcher`] fetches as: an account's cookies and proxy (none for anonymous).
#[derive(Default)]
pub(crate) struct Identity {
    pub cookies: Option<Arc<reqwest::cookie::Jar>>,
    /// The proxy's whole URL (`http://`, `https://`, `socks5://`): never logged.
    pub proxy: Option<String>,
    /// Names resolved through this rather than the system's resolver (the domain watch's name
    /// server, so a site is fetched where its lookup said it is).
    pub dns: Option<Arc<dyn reqwest::dns::Resolve>>,
}

/// One platform's polite HTTP client. Cheap to share behind an `Arc`.
pub(crate) struct Fetcher {
    client: reqwest::Client,
    limiter: Option<DefaultDirectRateLimiter>,
    slots: Arc<Semaphore>,
    policy: FetchPolicy,
}

enum Attempt {
    Done(Page),
    /// Worth another try, after at least `wait` (from Retry-After) if given.
    Retry {
        reason: String,
        wait: Option<Duration>,
        status: Option<u16>,
    },
}

impl Fetcher {
    pub(crate) fn new(policy: FetchPolicy) -> Result<Fetcher, FetchError> {
        Fetcher::with_identity(policy, Identity::default())
    }

    /// A client of its own for one account: its cookie jar, its proxy.
    pub(crate) fn with_identity(
        policy: FetchPolicy,
        identity: Identity,
    ) -> Result<Fetcher, FetchError> {
        let builder = reqwest::Client::builder()
            .user_agent(&policy.user_agent)
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout.min(Duration::from_secs(10)));
        let builder = match identity.cookies {
            Some(jar) => builder.cookie_provider(jar),
            None => builder.cookie_store(true),
        };
        let builder = match &identity.proxy {
            // The error names no URL: it may hold a password.
            Some(proxy) => {
                builder.proxy(reqwest::Proxy::all(proxy.as_str()).map_err(FetchError::Client)?)
            }
            None => builder,
        };
        let builder = match identity.dns {
            Some(dns) => builder.dns_resolver(dns),
            None => builder,
        };
        let client = builder
            .gzip(true)
            .brotli(true)
            .redirect(reqwest::redirect::Policy::limited(10))
            .build()
            .map_err(FetchError::Client)?;
        let limiter = policy.requests_per_second.and_then(|rps| {
            // Sub-1 rates become one request per 1/rps seconds.
            // No burst: governor would otherwise let a second's worth go at once at the start of
            // every run, so two runs back to back gave a platform twice its rate for a moment.
            let quota = if rps >= 1.0 {
                Quota::per_second(NonZeroU32::new(rps.round() as u32)?)
            } else if rps > 0.0 {
                Quota::with_period(Duration::from_secs_f64(1.0 / rps))?
            } else {
                return None;
            }
            .allow_burst(NonZeroU32::MIN);
            Some(RateLimiter::direct(quota))
        });
        Ok(Fetcher {
            client,
            limiter,
            slots: Arc::new(Semaphore::new(policy.concurrency.max(1))),
            policy,
        })
    }

    pub(crate) fn policy(&self) -> &FetchPolicy {
        &self.policy
    }

    /// Fetches `url`, retrying throttling, server errors and broken transfers.
    ///
    /// A 2xx-4xx response other than 429 is returned as is: a 404 is an answer, not a failure.
    /// Runs `work` (a browser's page load) at this client's pace: within its concurrency and
    /// its rate, as one of its own requests would.
    pub(crate) async fn paced<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        let _slot = self.slots.acquire().await.expect("semaphore never closed");
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        work.await
    }

    pub(crate) async fn fetch(&self, url: &str) -> Result<Page, FetchError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| FetchError::InvalidUrl {
            url: url.to_owned(),
            message: e.to_string(),
        })?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = {
                // Holding the slot only while the request runs keeps waits from blocking others.
                let _slot = self.slots.acquire().await.expect("semaphore never closed");
                if let Some(limiter) = &self.limiter {
                    limiter.until_ready().await;
                }
                self.attempt(parsed.clone(), url, attempt).await
            };
            match outcome {
                Attempt::Done(page) => return Ok(page),
                Attempt::Retry {
                    reason,
                    wait,
                    status,
                } => {
                    if attempt >= self.policy.max_attempts {
                        return Err(FetchError::GaveUp {
                            url: url.to_owned(),
                            attempts: attempt,
                            last: reason,
                            status,
                        });
                    }
                    let delay = self.backoff(attempt, wait);
                    tracing::debug!(%url, attempt, ?delay, %reason, "retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn attempt(&self, url: reqwest::Url, asked: &str, attempt: u32) -> Attempt {
        let fetched_at = Utc::now();
        let response = match self.client.get(url).send().await {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry {
                    reason: describe(&e),
                    wait: None,
                    status: None,
                };
            }
        };
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Attempt::Retry {
                reason: format!("HTTP {status}"),
                wait: retry_after(response.headers()),
                status: Some(status.as_u16()),
            };
        }
        let final_url = response.url().to_string();
        let headers = header_pairs(response.headers());
        match response.bytes().await {
            Ok(body) => Attempt::Done(Page {
                url: asked.to_owned(),
                final_url,
                status: status.as_u16(),
                headers,
                body: body.to_vec(),
                fetched_at,
                attempts: attempt,
            }),
            // A body cut short of its Content-Length: fetch again rather than keep half a page.
            Err(e) => Attempt::Retry {
                reason: format!("body: {}", describe(&e)),
                wait: None,
                status: Some(status.as_u16()),
            },
        }
    }

    /// Exponential backoff with full jitter, never shorter than the server asked.
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .policy
            .base_backoff
            .saturating_mul(1u32 << (attempt - 1).min(16))
            .min(self.policy.max_backoff);
        let jittered = exp.mul_f64(rand::rng().random_range(0.5..=1.0));
        match retry_after {
            Some(wait) => wait.min(self.policy.max_backoff).max(jittered),
            None => jittered,
        }
    }
}

/// Retry-After as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&Utc) - Utc::now()).to_std().ok()
}

fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

pub(crate) fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "broken transfer"
    } else {
        "request failed"
    };
    // The source chain says what actually happened (reset, EOF, DNS...).
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = (Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        h.insert(RETRY_AFTER, later.parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let f = Fetcher::new(FetchPolicy {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            ..FetchPolicy::default()
        })
        .unwrap();
        let first = f.backoff(1, None);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        assert!(f.backoff(10, None) <= Duration::from_secs(2));
        assert_eq!(
            f.backoff(1, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        // A server asking for an hour gets the cap, not a stalled crawl.
        assert_eq!(
            f.backoff(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(2)
        );
    }
}
