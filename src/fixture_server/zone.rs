//! The fixture zone: squatted .CN names of the demo brands and some bystanders, served by an
//! authoritative DNS server (hickory-server) on loopback, and their sites answered by the
//! fixture HTTP server by Host header. Tests change it while it runs: a name registered between
//! two runs, a name whose server fails.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, MX, NS, SOA};
use hickory_server::proto::rr::{Name, RData, Record};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use serde::Deserialize;

use super::FixtureError;

/// One name in `fixtures/domains/zone.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneEntry {
    /// As written (`耐克.中国` or `naike.cn`).
    pub name: String,
    #[serde(default)]
    pub a: Vec<IpAddr>,
    #[serde(default)]
    pub mx: Vec<String>,
    /// The site's page under `fixtures/domains/sites/`, or inline HTML in `html`.
    pub site: Option<String>,
    #[serde(skip)]
    pub html: Option<String>,
    /// Where the site redirects (a brand's own domain).
    pub redirect: Option<String>,
    /// Served in GBK, as many Chinese sites are.
    #[serde(default)]
    pub gbk: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ZoneFile {
    domain: Vec<ZoneEntry>,
}

/// A site as the HTTP server answers it.
#[derive(Debug, Clone)]
pub(crate) struct Site {
    pub body: Vec<u8>,
    pub gbk: bool,
    pub redirect: Option<String>,
}

#[derive(Default)]
struct State {
    records: HashMap<Name, Vec<Record>>,
    sites: HashMap<String, Site>,
    servfail: HashSet<Name>,
    silent: HashSet<Name>,
}

/// The zone, shared by the DNS and HTTP servers and the test that changes it.
#[derive(Clone, Default)]
pub struct FixtureZone {
    state: Arc<RwLock<State>>,
}

fn fqdn(name: &str) -> Option<Name> {
    let ascii = idna::domain_to_ascii(name.trim_end_matches('.')).ok()?;
    Name::from_ascii(format!("{ascii}.")).ok()
}

impl FixtureZone {
    /// Loads `<fixtures_dir>/domains/zone.toml`; an empty zone when there is none.
    pub(crate) fn load(fixtures_dir: &Path) -> Result<FixtureZone, FixtureError> {
        let zone = FixtureZone::default();
        let path = fixtures_dir.join("domains/zone.toml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(zone);
        };
        let file: ZoneFile = toml::from_str(&text).map_err(|e| FixtureError::Template {
            path: path.clone(),
            message: e.to_string(),
        })?;
        for mut entry in file.domain {
            if let Some(site) = &entry.site {
                let page = fixtures_dir.join("domains/sites").join(site);
                entry.html =
                    Some(
                        std::fs::read_to_string(&page).map_err(|source| FixtureError::Io {
                            path: page.clone(),
                            source,
                        })?,
                    );
            }
            if !zone.insert(&entry) {
                return Err(FixtureError::Template {
                    path,
                    message: format!("`{}` is not a domain name", entry.name),
                });
            }
        }
        Ok(zone)
    }

    /// Registers `entry` (replacing what the name had); false if the name is not one.
    pub fn insert(&self, entry: &ZoneEntry) -> bool {
        let Some(name) = fqdn(&entry.name) else {
            return false;
        };
        let mut records = Vec::new();
        for ip in &entry.a {
            let data = match ip {
                IpAddr::V4(v4) => RData::A(A(*v4)),
                IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
            };
            records.push(Record::from_rdata(name.clone(), 60, data));
        }
        for (i, mx) in entry.mx.iter().enumerate() {
            if let Some(exchange) = fqdn(mx) {
                records.push(Record::from_rdata(
                    name.clone(),
                    60,
                    RData::MX(MX::new(10 * (i as u16 + 1), exchange)),
                ));
            }
        }
        for ns in ["ns1.fixture-dns.test.", "ns2.fixture-dns.test."] {
            if let Ok(ns) = Name::from_ascii(ns) {
                records.push(Record::from_rdata(name.clone(), 60, RData::NS(NS(ns))));
            }
        }
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let host = name.to_ascii().trim_end_matches('.').to_owned();
        if entry.html.is_some() || entry.redirect.is_some() {
            let html = entry.html.clone().unwrap_or_default();
            state.sites.insert(
                host,
                Site {
                    body: super::render::encode(&html, entry.gbk),
                    gbk: entry.gbk,
                    redirect: entry.redirect.clone(),
                },
            );
        } else {
            state.sites.remove(&host);
        }
        state.servfail.remove(&name);
        state.silent.remove(&name);
        state.records.insert(name, records);
        true
    }

    /// Takes `name` out of the zone: it answers NXDOMAIN from now on.
    pub fn remove(&self, name: &str) {
        if let Some(name) = fqdn(name) {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            state.sites.remove(name.to_ascii().trim_end_matches('.'));
            state.records.remove(&name);
        }
    }

    /// Makes the server answer SERVFAIL for `name`.
    pub fn fail(&self, name: &str) {
        if let Some(name) = fqdn(name) {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            state.servfail.insert(name);
        }
    }

    /// Makes the server never answer for `name` (a resolver times out).
    pub fn silence(&self, name: &str) {
        if let Some(name) = fqdn(name) {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            state.silent.insert(name);
        }
    }

    /// The site `host` (ASCII, any port cut) serves, if it is in the zone.
    pub(crate) fn site(&self, host: &str) -> Option<Site> {
        let host = host
            .rsplit_once(':')
            .map_or(host, |(h, _)| h)
            .to_lowercase();
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state.sites.get(&host).cloned()
    }
}

/// The fixture DNS server, answering until dropped.
pub struct FixtureDns {
    addr: SocketAddr,
    _server: Server<ZoneHandler>,
}

impl FixtureDns {
    /// Where it listens (UDP and TCP): what `domains.resolver` names.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Serves `zone` over UDP and TCP on 127.0.0.1 (one free port for both) until the returned
/// server is dropped.
pub async fn serve_zone(zone: FixtureZone) -> std::io::Result<FixtureDns> {
    let mut last = None;
    for _ in 0..20 {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
        let addr = udp.local_addr()?;
        match tokio::net::TcpListener::bind(addr).await {
            Ok(tcp) => {
                let mut server = Server::new(ZoneHandler { zone: zone.clone() });
                server.register_socket(udp);
                server.register_listener(tcp, Duration::from_secs(5), 64);
                return Ok(FixtureDns {
                    addr,
                    _server: server,
                });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port for the fixture DNS server")))
}

/// Answers from the zone: records, NXDOMAIN, or the failures a test asked for.
pub(crate) struct ZoneHandler {
    zone: FixtureZone,
}

fn soa() -> Option<Record> {
    let origin = Name::from_ascii("fixture-dns.test.").ok()?;
    Some(Record::from_rdata(
        origin.clone(),
        60,
        RData::SOA(SOA::new(
            Name::from_ascii("ns1.fixture-dns.test.").ok()?,
            Name::from_ascii("hostmaster.fixture-dns.test.").ok()?,
            1,
            3600,
            600,
            86400,
            0,
        )),
    ))
}

enum Answer {
    Silent,
    Code(ResponseCode),
    Records(Vec<Record>),
    NoData,
    NxDomain,
}

#[async_trait::async_trait]
impl RequestHandler for ZoneHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let builder = MessageResponseBuilder::from_message_request(request);
        let mut meta = Metadata::response_from_request(&request.metadata);
        meta.authoritative = true;
        let Ok(info) = request.request_info() else {
            let reply = builder.error_msg(&request.metadata, ResponseCode::FormErr);
            return sent(response.send_response(reply).await, meta);
        };
        let name: Name = info.query.name().into();
        let kind = info.query.query_type();
        let answer = {
            let state = self.zone.state.read().unwrap_or_else(|e| e.into_inner());
            if state.silent.contains(&name) {
                Answer::Silent
            } else if state.servfail.contains(&name) {
                Answer::Code(ResponseCode::ServFail)
            } else if let Some(records) = state.records.get(&name) {
                let hits: Vec<Record> = records
                    .iter()
                    .filter(|r| r.record_type() == kind)
                    .cloned()
                    .collect();
                if hits.is_empty() {
                    Answer::NoData
                } else {
                    Answer::Records(hits)
                }
            } else {
                Answer::NxDomain
            }
        };
        let soa: Vec<Record> = soa().into_iter().collect();
        match answer {
            Answer::Silent => ResponseInfo::from(Header {
                metadata: meta,
                counts: HeaderCounts::default(),
            }),
            Answer::Code(code) => {
                let reply = builder.error_msg(&request.metadata, code);
                sent(response.send_response(reply).await, meta)
            }
            Answer::Records(records) => {
                meta.response_code = ResponseCode::NoError;
                let reply = builder.build(meta, records.iter(), [], [], []);
                sent(response.send_response(reply).await, meta)
            }
            Answer::NoData => {
                meta.response_code = ResponseCode::NoError;
                let reply = builder.build(meta, [], [], soa.iter(), []);
                sent(response.send_response(reply).await, meta)
            }
            Answer::NxDomain => {
                meta.response_code = ResponseCode::NXDomain;
                let reply = builder.build(meta, [], [], soa.iter(), []);
                sent(response.send_response(reply).await, meta)
            }
        }
    }
}

fn sent<E>(result: Result<ResponseInfo, E>, mut meta: Metadata) -> ResponseInfo {
    result.unwrap_or_else(|_| {
        meta.response_code = ResponseCode::ServFail;
        ResponseInfo::from(Header {
            metadata: meta,
            counts: HeaderCounts::default(),
        })
    })
}
