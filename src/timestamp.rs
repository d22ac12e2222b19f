//! Trusted timestamps (RFC 3161) over the evidence chain. A token whose message imprint is
//! record N's chain hash proves that record N, and through the chain every record before it,
//! existed at the TSA's time: one token per crawl run covers everything the run captured.
//!
//! The imprint is the chain hash itself (a SHA-256), so a third party checks a token with
//! `openssl ts -verify -digest <chain hash> -in <reply>.tsr -CAfile <ca>.pem`.

use std::path::Path;
use std::time::Duration;

use bcder::decode::Constructed;
use bcder::encode::Values;
use bcder::{Integer, Mode, OctetString, Oid};
use chrono::{DateTime, Utc};
use cryptographic_message_syntax::SignedData;
use cryptographic_message_syntax::asn1::rfc3161::{
    MessageImprint, OID_CONTENT_TYPE_TST_INFO, PkiStatus, TimeStampReq, TimeStampResp, TstInfo,
};
use cryptographic_message_syntax::asn1::rfc5652::OID_ID_SIGNED_DATA;
use serde::Serialize;
use x509_certificate::{CapturedX509Certificate, DigestAlgorithm};

use crate::config::TsaConfig;
use crate::store::{NewTimestamp, Store, StoreError, StoredTimestamp};

/// The MIME types of RFC 3161 §3.4.
const QUERY_TYPE: &str = "application/timestamp-query";
const REPLY_TYPE: &str = "application/timestamp-reply";
/// A TSA's reply is a few kilobytes; more is not a reply.
const MAX_REPLY: usize = 256 * 1024;
/// Clocks differ: a token may carry a time this far past a record's capture or our clock.
const SKEW_SECS: i64 = 300;

/// Why a token could not be had, or a CA not read.
#[derive(Debug, thiserror::Error)]
pub enum TimestampError {
    #[error("{}: cannot read the TSA's CA certificate: {message}", path.display())]
    Ca {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("timestamp authority {url}: {message}")]
    Tsa { url: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The certificate tokens are checked against: the TSA's issuing CA, or the TSA itself.
#[derive(Clone)]
pub struct TrustAnchor(CapturedX509Certificate);

impl TrustAnchor {
    /// Reads a PEM certificate (the first one in the file).
    pub fn from_pem_file(path: &Path) -> Result<TrustAnchor, TimestampError> {
        let bad = |message: String| TimestampError::Ca {
            path: path.to_owned(),
            message,
        };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        TrustAnchor::from_pem(&pem).map_err(bad)
    }

    /// The first certificate of PEM text.
    pub fn from_pem(pem: &[u8]) -> Result<TrustAnchor, String> {
        CapturedX509Certificate::from_pem_multiple(pem)
            .map_err(|e| e.to_string())?
            .into_iter()
            .next()
            .map(TrustAnchor)
            .ok_or_else(|| "no PEM certificate in the file".to_owned())
    }

    pub fn subject(&self) -> String {
        subject(&self.0)
    }

    /// The certificate as PEM, for packs.
    pub fn to_pem(&self) -> String {
        self.0.encode_pem()
    }
}

/// What a token that checked out says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// The TSA's time.
    pub gen_time: DateTime<Utc>,
    /// The subject of the certificate that signed it.
    pub tsa_name: String,
    /// The hash the TSA stamped: a chain hash, hex.
    pub imprint: String,
    /// The TSA's serial number of the token, hex.
    pub serial: String,
}

/// A reply taken apart: the token's signed data and the TSTInfo it signs.
struct Decoded {
    signed: cryptographic_message_syntax::asn1::rfc5652::SignedData,
    tst: TstInfo,
}

/// Parses a TSA's reply (a DER `TimeStampResp`); a refusal is an error.
fn decode(reply: &[u8]) -> Result<Decoded, String> {
    let resp = Constructed::decode(reply, Mode::Ber, TimeStampResp::take_from)
        .map_err(|e| format!("not a timestamp reply: {e}"))?;
    if !matches!(
        resp.status.status,
        PkiStatus::Granted | PkiStatus::GrantedWithMods
    ) {
        return Err(format!("the TSA refused: status {:?}", resp.status.status));
    }
    let token = resp.time_stamp_token.ok_or("the reply holds no token")?;
    if token.content_type != OID_ID_SIGNED_DATA {
        return Err("the token is not CMS signed data".to_owned());
    }
    let signed = token
        .content
        .decode(cryptographic_message_syntax::asn1::rfc5652::SignedData::take_from)
        .map_err(|e| format!("the token's signed data does not parse: {e}"))?;
    if signed.content_info.content_type != OID_CONTENT_TYPE_TST_INFO {
        return Err("the token does not sign a TSTInfo".to_owned());
    }
    let content = signed
        .content_info
        .content
        .as_ref()
        .ok_or("the token carries no TSTInfo")?
        .to_bytes();
    let tst = Constructed::decode(content.as_ref(), Mode::Der, TstInfo::take_from)
        .map_err(|e| format!("the TSTInfo does not parse: {e}"))?;
    Ok(Decoded { signed, tst })
}

/// Checks a TSA's reply (a DER `TimeStampResp`) as a court's expert would: granted, its CMS
/// signature valid over its TSTInfo, signed by a certificate that `anchor` issued (or is) and
/// that may stamp time, valid at the time it states, and a SHA-256 imprint. Says what is
/// wrong in words.
pub fn check_reply(reply: &[u8], anchor: &TrustAnchor) -> Result<TokenInfo, String> {
    verify(&decode(reply)?, anchor)
}

fn verify(d: &Decoded, anchor: &TrustAnchor) -> Result<TokenInfo, String> {
    let signed = SignedData::try_from(&d.signed).map_err(|e| format!("the token: {e}"))?;
    let signer = signed.signers().next().ok_or("the token has no signer")?;
    signer
        .verify_signature_with_signed_data(&signed)
        .map_err(|e| format!("the signature does not verify: {e}"))?;
    signer
        .verify_message_digest_with_signed_data(&signed)
        .map_err(|e| format!("the signed digest does not match the TSTInfo: {e}"))?;
    let (issuer, serial) = signer
        .certificate_issuer_and_serial()
        .ok_or("the signer is not named by issuer and serial")?;
    let cert = signed
        .certificates()
        .find(|c| c.issuer_name() == issuer && c.serial_number_asn1() == serial)
        .ok_or("the token does not carry its signing certificate")?;
    let anchor = &anchor.0;
    if cert.constructed_data() != anchor.constructed_data() {
        cert.verify_signed_by_certificate(anchor).map_err(|_| {
            format!(
                "signed by `{}`, which `{}` did not issue",
                subject(cert),
                subject(anchor)
            )
        })?;
    }
    if !may_stamp_time(cert) {
        return Err(format!(
            "`{}` is not a timestamping certificate (no timeStamping extended key usage)",
            subject(cert)
        ));
    }
    let gen_time: DateTime<Utc> = d.tst.gen_time.clone().into();
    if !cert.time_constraints_valid(Some(gen_time)) {
        return Err(format!(
            "`{}` was not valid at the token's time {}",
            subject(cert),
            gen_time.to_rfc3339()
        ));
    }
    if DigestAlgorithm::try_from(&d.tst.message_imprint.hash_algorithm).ok()
        != Some(DigestAlgorithm::Sha256)
    {
        return Err("the imprint is not a SHA-256".to_owned());
    }
    Ok(TokenInfo {
        gen_time,
        tsa_name: subject(cert),
        imprint: imprint(&d.tst),
        serial: hex::encode(d.tst.serial_number.as_slice()),
    })
}

fn imprint(tst: &TstInfo) -> String {
    hex::encode(tst.message_imprint.hashed_message.to_bytes())
}

fn subject(cert: &CapturedX509Certificate) -> String {
    cert.subject_common_name()
        .unwrap_or_else(|| cert.subject_name().user_friendly_str().unwrap_or_default())
}

/// Whether the certificate's extended key usage names id-kp-timeStamping (RFC 3161 §2.3).
fn may_stamp_time(cert: &CapturedX509Certificate) -> bool {
    const EXT_KEY_USAGE: &[u8] = &[85, 29, 37];
    const TIME_STAMPING: &[u8] = &[43, 6, 1, 5, 5, 7, 3, 8];
    cert.iter_extensions()
        .filter(|e| e.id.as_ref() == EXT_KEY_USAGE)
        .any(|e| {
            let value = e.value.to_bytes();
            Constructed::decode(value.as_ref(), Mode::Der, |cons| {
                cons.take_sequence(|cons| {
                    let mut purposes = Vec::new();
                    while let Some(oid) = Oid::take_opt_from(cons)? {
                        purposes.push(oid);
                    }
                    Ok(purposes)
                })
            })
            .is_ok_and(|purposes| purposes.iter().any(|p| p.as_ref() == TIME_STAMPING))
        })
}

/// `interval_secs` as a duration; an absurdly long one is "never again", not a panic.
fn interval(secs: u64) -> chrono::Duration {
    i64::try_from(secs)
        .ok()
        .and_then(chrono::Duration::try_seconds)
        .unwrap_or(chrono::Duration::MAX)
}

/// A URL as it may be shown: credentials in it are a secret.
fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        }
        Err(_) => "(the configured TSA)".to_owned(),
    }
}

/// What [`Tsa::stamp`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum StampOutcome {
    /// A new token covers every record up to `evidence_id`.
    Stamped {
        token_id: i64,
        evidence_id: i64,
        gen_time: String,
    },
    /// The newest record is already covered.
    UpToDate,
    /// The last token is younger than `evidence.tsa.interval_secs`.
    NotDue,
    /// No evidence yet.
    Empty,
}

/// A configured TSA: where to ask, and whom its tokens must chain to.
pub struct Tsa {
    url: String,
    /// `url` without a user name or password: what logs, errors and the store name.
    shown: String,
    anchor: TrustAnchor,
    interval: chrono::Duration,
    client: reqwest::Client,
}

impl Tsa {
    pub fn from_config(config: &TsaConfig, user_agent: &str) -> Result<Tsa, TimestampError> {
        let anchor = TrustAnchor::from_pem_file(&config.ca)?;
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .timeout(Duration::from_secs(config.timeout_secs))
            .build()
            .map_err(|e| TimestampError::Tsa {
                url: shown(&config.url),
                message: e.to_string(),
            })?;
        Ok(Tsa {
            url: config.url.clone(),
            shown: shown(&config.url),
            anchor,
            interval: interval(config.interval_secs),
            client,
        })
    }

    pub fn anchor(&self) -> &TrustAnchor {
        &self.anchor
    }

    /// Stamps the chain's head unless it is covered already or the last token is younger
    /// than the interval. A TSA that is down loses nothing: the head waits for the next call.
    pub async fn stamp_if_due(&self, store: &Store) -> Result<StampOutcome, TimestampError> {
        if let Some(last) = store.last_timestamp().await?
            && let Ok(at) = DateTime::parse_from_rfc3339(&last.stamped_at)
            && Utc::now() - at.with_timezone(&Utc) < self.interval
        {
            return Ok(StampOutcome::NotDue);
        }
        self.stamp(store).await
    }

    /// Stamps the chain's head now, unless a token covers it already.
    pub async fn stamp(&self, store: &Store) -> Result<StampOutcome, TimestampError> {
        let Some((evidence_id, chain_hash)) = store.chain_head().await? else {
            return Ok(StampOutcome::Empty);
        };
        if store
            .last_timestamp()
            .await?
            .is_some_and(|t| t.evidence_id >= evidence_id)
        {
            return Ok(StampOutcome::UpToDate);
        }
        let (reply, info) = self.request(&chain_hash).await?;
        let gen_time = info
            .gen_time
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let token_id = store
            .add_timestamp(&NewTimestamp {
                evidence_id,
                chain_hash: &chain_hash,
                tsa_url: &self.shown,
                gen_time: &gen_time,
                tsa_name: &info.tsa_name,
                reply: &reply,
            })
            .await?;
        tracing::info!(token = token_id, evidence = evidence_id, %gen_time, "evidence chain stamped");
        Ok(StampOutcome::Stamped {
            token_id,
            evidence_id,
            gen_time,
        })
    }

    /// Asks the TSA to stamp `chain_hash` and checks what comes back before it is kept.
    async fn request(&self, chain_hash: &str) -> Result<(Vec<u8>, TokenInfo), TimestampError> {
        let fail = |message: String| TimestampError::Tsa {
            url: self.shown.clone(),
            message,
        };
        let digest = hex::decode(chain_hash).map_err(|_| fail("bad chain hash".to_owned()))?;
        let nonce: u64 = rand::random::<u64>() >> 1;
        let request = TimeStampReq {
            version: Integer::from(1u8),
            message_imprint: MessageImprint {
                hash_algorithm: DigestAlgorithm::Sha256.into(),
                hashed_message: OctetString::new(digest.into()),
            },
            req_policy: None,
            nonce: Some(Integer::from(nonce)),
            cert_req: Some(true),
            extensions: None,
        };
        let mut body = Vec::new();
        request
            .encode_ref()
            .write_encoded(Mode::Der, &mut body)
            .map_err(|e| fail(e.to_string()))?;
        let response = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, QUERY_TYPE)
            .body(body)
            .send()
            .await
            .map_err(|e| fail(crate::fetch::describe(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(fail(format!("HTTP {status}")));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if !content_type.starts_with(REPLY_TYPE) {
            return Err(fail(format!(
                "answered with `{}`, not {REPLY_TYPE}",
                crate::notice::escape_controls(&content_type)
            )));
        }
        let reply = response.bytes().await.map_err(|e| fail(e.to_string()))?;
        if reply.len() > MAX_REPLY {
            return Err(fail(format!("a reply of {} bytes", reply.len())));
        }
        let decoded = decode(&reply).map_err(fail)?;
        let info = verify(&decoded, &self.anchor).map_err(fail)?;
        if info.imprint != chain_hash {
            return Err(fail("stamped another hash than the one asked".to_owned()));
        }
        if decoded.tst.nonce != Some(Integer::from(nonce)) {
            return Err(fail(
                "the reply does not answer this request (nonce)".to_owned(),
            ));
        }
        Ok((reply.to_vec(), info))
    }
}

/// How one stored token checked out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenCheck {
    pub token_id: i64,
    /// The records it is the earliest token for: `first..=last`.
    pub first_record: i64,
    pub last_record: i64,
    pub gen_time: String,
    pub tsa_name: String,
    pub tsa_url: String,
    /// What is wrong, naming the token and record; `None` when it verifies.
    pub problem: Option<String>,
}

/// Every stored token checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimestampReport {
    pub tokens: Vec<TokenCheck>,
    /// Records after the last token, not yet covered: `first..=last`.
    pub uncovered: Option<(i64, i64)>,
    /// Set when no trust anchor was given: imprints were compared, signatures not checked.
    pub unchecked_signatures: bool,
}

impl TimestampReport {
    pub fn first_problem(&self) -> Option<&TokenCheck> {
        self.tokens.iter().find(|t| t.problem.is_some())
    }
}

/// Checks every stored token: its reply against `anchor`, its imprint against the chain hash
/// its record carries now (a record rewritten with a recomputed chain no longer matches), and
/// its time against the record's capture. Also says which records each token is the earliest
/// cover for, and which records no token covers yet.
pub async fn verify_timestamps(
    store: &Store,
    anchor: Option<&TrustAnchor>,
) -> Result<TimestampReport, StoreError> {
    let mut tokens = Vec::new();
    let mut covered = 0;
    for t in store.timestamps().await? {
        let problem = check_stored(store, &t, anchor).await?;
        tokens.push(TokenCheck {
            token_id: t.id,
            first_record: covered + 1,
            last_record: t.evidence_id,
            gen_time: t.gen_time,
            tsa_name: t.tsa_name,
            tsa_url: t.tsa_url,
            problem,
        });
        covered = covered.max(t.evidence_id);
    }
    let uncovered = store
        .chain_head()
        .await?
        .filter(|(head, _)| *head > covered)
        .map(|(head, _)| (covered + 1, head));
    Ok(TimestampReport {
        tokens,
        uncovered,
        unchecked_signatures: anchor.is_none(),
    })
}

async fn check_stored(
    store: &Store,
    t: &StoredTimestamp,
    anchor: Option<&TrustAnchor>,
) -> Result<Option<String>, StoreError> {
    let name = format!("token {} (over record {})", t.id, t.evidence_id);
    let Some(record) = store.evidence_page(t.evidence_id).await? else {
        return Ok(Some(format!("{name}: the record is gone")));
    };
    let problem = check_token(
        &t.reply,
        anchor,
        &record.chain_hash,
        &record.fetched_at,
        &t.chain_hash,
    );
    Ok(problem.map(|p| format!("{name}: {p}")))
}

/// The checks of one token over a record whose chain hash is now `chain_hash` and that was
/// captured at `fetched_at`; `recorded` is the hash the token was asked for.
pub(crate) fn check_token(
    reply: &[u8],
    anchor: Option<&TrustAnchor>,
    chain_hash: &str,
    fetched_at: &str,
    recorded: &str,
) -> Option<String> {
    if chain_hash != recorded {
        return Some(format!(
            "the record's chain hash is {chain_hash} now, but the token was issued for {recorded}"
        ));
    }
    let info = match anchor {
        Some(anchor) => match check_reply(reply, anchor) {
            Ok(info) => info,
            Err(e) => return Some(e),
        },
        None => match imprint_only(reply) {
            Some(imprint) if imprint == recorded => return None,
            Some(imprint) => {
                return Some(format!("the token stamps {imprint}, not {recorded}"));
            }
            None => return Some("not a timestamp reply".to_owned()),
        },
    };
    if info.imprint != recorded {
        return Some(format!("the token stamps {}, not {recorded}", info.imprint));
    }
    let skew = chrono::Duration::seconds(SKEW_SECS);
    if let Ok(captured) = DateTime::parse_from_rfc3339(fetched_at)
        && info.gen_time < captured.with_timezone(&Utc) - skew
    {
        return Some(format!(
            "the TSA's time {} is before the record's capture at {fetched_at}",
            info.gen_time.to_rfc3339()
        ));
    }
    if info.gen_time > Utc::now() + skew {
        return Some(format!(
            "the TSA's time {} is in the future",
            info.gen_time.to_rfc3339()
        ));
    }
    None
}

/// The imprint a reply stamps, read without checking its signature.
fn imprint_only(reply: &[u8]) -> Option<String> {
    decode(reply).ok().map(|d| imprint(&d.tst))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_configured_interval_is_a_duration() {
        assert_eq!(interval(3600), chrono::Duration::hours(1));
        assert_eq!(interval(u64::MAX), chrono::Duration::MAX);
        assert_eq!(interval(i64::MAX as u64), chrono::Duration::MAX);
    }

    #[test]
    fn a_tsa_url_is_shown_without_its_credentials() {
        assert_eq!(
            shown("https://alice:s3cret@tsa.example.com/tsr"),
            "https://tsa.example.com/tsr"
        );
        assert_eq!(shown("http://127.0.0.1:3180/"), "http://127.0.0.1:3180/");
        assert!(!shown("not a url s3cret").contains("s3cret"));
    }

    #[test]
    fn a_reply_that_is_not_one_is_named_not_a_panic() {
        let ca = include_str!("../fixtures/tsa/test-ca.pem");
        let anchor = TrustAnchor::from_pem(ca.as_bytes()).unwrap();
        for junk in [
            &b""[..],
            b"\x30\x03\x02\x01",
            b"hello",
            &[0x30, 0x82, 0xff, 0xff],
        ] {
            let e = check_reply(junk, &anchor).unwrap_err();
            assert!(e.starts_with("not a timestamp reply"), "{e}");
        }
        assert_eq!(imprint_only(b"junk"), None);
        assert!(TrustAnchor::from_pem(b"no pem here").is_err());
    }
}
