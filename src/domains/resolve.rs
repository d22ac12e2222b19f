//! DNS lookups for the domain watch, through hickory at a bounded rate: one name server (the
//! configured one, or the system's), no cache, so a name registered between two runs is seen.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use serde::{Deserialize, Serialize};

use super::DomainError;
use crate::config::DomainsConfig;

/// A registered name's records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Records {
    pub a: Vec<IpAddr>,
    pub aaaa: Vec<IpAddr>,
    /// Mail exchangers, lowest preference first.
    pub mx: Vec<String>,
    pub ns: Vec<String>,
}

impl Records {
    /// `web` (it has an address), `mail_only` (mail and no address: rogue-mail risk) or
    /// `parked` (registered, neither).
    pub fn state(&self) -> &'static str {
        if !self.a.is_empty() || !self.aaaa.is_empty() {
            "web"
        } else if !self.mx.is_empty() {
            "mail_only"
        } else {
            "parked"
        }
    }
}

/// What DNS said about a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// NXDOMAIN: nobody holds it.
    Unregistered,
    Registered(Records),
    /// SERVFAIL, REFUSED, a timeout, a broken reply: nothing is known, nothing changes.
    Failed(String),
}

/// The watch's resolver. Cheap to share behind an `Arc`.
pub struct DomainResolver {
    inner: TokioResolver,
    limiter: DefaultDirectRateLimiter,
}

impl DomainResolver {
    pub fn new(config: &DomainsConfig) -> Result<DomainResolver, DomainError> {
        let mut opts = ResolverOpts::default();
        opts.timeout = Duration::from_secs(config.timeout_secs);
        // One retry after a lost datagram; a server that fails twice has failed.
        opts.attempts = 1;
        // Each run must see names registered since the last; the watch asks each name once.
        opts.cache_size = 0;
        opts.positive_max_ttl = Some(Duration::ZERO);
        opts.negative_max_ttl = Some(Duration::ZERO);
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ndots = 0;
        let builder = if config.resolver == "system" {
            Resolver::builder_tokio().map_err(|e| DomainError::Resolver(e.to_string()))?
        } else {
            let addr: SocketAddr = config.resolver.parse().map_err(|_| {
                DomainError::Resolver(format!(
                    "domains.resolver: `{}` is not an IP:port",
                    config.resolver
                ))
            })?;
            let mut server = NameServerConfig::udp_and_tcp(addr.ip());
            for c in server.connections.iter_mut() {
                c.port = addr.port();
            }
            Resolver::builder_with_config(
                ResolverConfig::from_parts(None, vec![], vec![server]),
                TokioRuntimeProvider::default(),
            )
        };
        let inner = builder
            .with_options(opts)
            .build()
            .map_err(|e| DomainError::Resolver(e.to_string()))?;
        let rate = NonZeroU32::new(config.queries_per_second).unwrap_or(NonZeroU32::MIN);
        Ok(DomainResolver {
            inner,
            limiter: RateLimiter::direct(Quota::per_second(rate).allow_burst(NonZeroU32::MIN)),
        })
    }

    /// Looks `domain` (ASCII) up: A first, which tells whether the name exists at all, then
    /// AAAA, MX and NS for a registered one.
    pub async fn lookup(&self, domain: &str) -> Lookup {
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        let mut records = Records::default();
        for kind in [
            RecordType::A,
            RecordType::AAAA,
            RecordType::MX,
            RecordType::NS,
        ] {
            self.limiter.until_ready().await;
            match self.inner.lookup(fqdn.as_str(), kind).await {
                Ok(answer) => {
                    for record in answer.answers() {
                        match &record.data {
                            RData::A(a) if kind == RecordType::A => records.a.push(IpAddr::V4(a.0)),
                            RData::AAAA(a) if kind == RecordType::AAAA => {
                                records.aaaa.push(IpAddr::V6(a.0))
                            }
                            RData::MX(mx) if kind == RecordType::MX => records
                                .mx
                                .push(mx.exchange.to_string().trim_end_matches('.').to_owned()),
                            RData::NS(ns) if kind == RecordType::NS => records
                                .ns
                                .push(ns.0.to_string().trim_end_matches('.').to_owned()),
                            _ => {}
                        }
                    }
                }
                Err(e) => match classify(&e) {
                    Answer::NxDomain if kind == RecordType::A => return Lookup::Unregistered,
                    // Gone between two questions: what the first said stands.
                    Answer::NxDomain | Answer::NoData => {}
                    Answer::Failed(why) => return Lookup::Failed(why),
                },
            }
        }
        records.a.sort_unstable();
        records.aaaa.sort_unstable();
        records.ns.sort_unstable();
        Lookup::Registered(records)
    }

    /// A resolver for the HTTP client, so a home page is fetched from the address the watch
    /// looked up, through the same name server.
    /// With `loopback_only` (an unpaced demo or test), an address off this machine is refused.
    pub(crate) fn for_http(
        self: &Arc<Self>,
        loopback_only: bool,
    ) -> Arc<dyn reqwest::dns::Resolve> {
        Arc::new(HttpResolve {
            resolver: self.clone(),
            loopback_only,
        })
    }
}

enum Answer {
    NxDomain,
    NoData,
    Failed(String),
}

fn classify(e: &NetError) -> Answer {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(NoRecords { response_code, .. })) => {
            match *response_code {
                ResponseCode::NXDomain => Answer::NxDomain,
                ResponseCode::NoError => Answer::NoData,
                code => Answer::Failed(format!("the name server answered {code}")),
            }
        }
        NetError::Dns(DnsError::ResponseCode(code)) => {
            Answer::Failed(format!("the name server answered {code}"))
        }
        NetError::Timeout => Answer::Failed("no answer from the name server in time".to_owned()),
        e => Answer::Failed(e.to_string()),
    }
}

struct HttpResolve {
    resolver: Arc<DomainResolver>,
    loopback_only: bool,
}

impl reqwest::dns::Resolve for HttpResolve {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.resolver.clone();
        let loopback_only = self.loopback_only;
        let name = name.as_str().to_owned();
        Box::pin(async move {
            resolver.limiter.until_ready().await;
            let ips = resolver.inner.lookup_ip(format!("{name}.")).await?;
            let addrs: Vec<SocketAddr> = ips
                .iter()
                .filter(|ip| !loopback_only || ip.is_loopback())
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{name}: no address this run may fetch from").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
