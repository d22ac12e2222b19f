//! Faults the fixture server can inject, as the real platforms produce them.

use std::fmt;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::catalogue::fnv;

/// One injected fault (or `Ok`, a normal response, as a step in a scripted sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A normal response.
    Ok,
    /// 429 Too Many Requests with `Retry-After: secs`.
    TooManyRequests { retry_after_secs: u64 },
    /// 500 Internal Server Error.
    ServerError,
    /// 503 Service Unavailable.
    Unavailable,
    /// The normal response, after a delay.
    Slow { ms: u64 },
    /// A 200 whose HTML is cut off part-way (Content-Length matches the cut body).
    Truncated,
    /// A captcha wall (Taobao 滑块验证, JD 验证, Amazon Robot Check) with status 200.
    Captcha,
    /// A redirect to the platform's login page.
    Login,
    /// A chain of `hops` 302 redirects ending at the page.
    Redirect { hops: u32 },
    /// The header and meta tag name the wrong charset.
    WrongCharset,
    /// Neither the header nor a meta tag names a charset.
    NoCharset,
    /// A UTF-8 body with a byte-order mark, whatever the header claims.
    Bom,
}

impl Fault {
    /// Faults drawn by `fault_rate` unless told otherwise: transient failures and page
    /// oddities a crawler must get through. Walls are left to scripts (`captcha`, `login`).
    pub fn default_pool() -> Vec<Fault> {
        vec![
            Fault::TooManyRequests {
                retry_after_secs: 1,
            },
            Fault::ServerError,
            Fault::Unavailable,
            Fault::Slow { ms: 1500 },
            Fault::Truncated,
            Fault::Redirect { hops: 2 },
            Fault::WrongCharset,
            Fault::NoCharset,
            Fault::Bom,
        ]
    }
}

/// A fault list that did not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "unknown fault `{0}` (expected ok, 429[:secs], 500, 503, slow[:ms], truncate, captcha, login, redirect[:hops], wrong-charset, no-charset, bom)"
)]
pub struct ParseFaultError(pub String);

impl FromStr for Fault {
    type Err = ParseFaultError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let num = |default: u64| -> Result<u64, ParseFaultError> {
            match arg {
                None => Ok(default),
                Some(a) => a.parse().map_err(|_| ParseFaultError(s.to_string())),
            }
        };
        let fault = match name.to_ascii_lowercase().as_str() {
            "ok" => Fault::Ok,
            "429" => Fault::TooManyRequests {
                retry_after_secs: num(1)?,
            },
            "500" => Fault::ServerError,
            "503" => Fault::Unavailable,
            "slow" => Fault::Slow { ms: num(1500)? },
            "truncate" | "truncated" => Fault::Truncated,
            "captcha" => Fault::Captcha,
            "login" => Fault::Login,
            "redirect" => Fault::Redirect {
                hops: u32::try_from(num(2)?).map_err(|_| ParseFaultError(s.to_string()))?,
            },
            "wrong-charset" | "wrong_charset" => Fault::WrongCharset,
            "no-charset" | "no_charset" => Fault::NoCharset,
            "bom" => Fault::Bom,
            _ => return Err(ParseFaultError(s.to_string())),
        };
        if arg.is_some()
            && !matches!(
                fault,
                Fault::TooManyRequests { .. } | Fault::Slow { .. } | Fault::Redirect { .. }
            )
        {
            return Err(ParseFaultError(s.to_string()));
        }
        Ok(fault)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Ok => f.write_str("ok"),
            Fault::TooManyRequests { retry_after_secs } => write!(f, "429:{retry_after_secs}"),
            Fault::ServerError => f.write_str("500"),
            Fault::Unavailable => f.write_str("503"),
            Fault::Slow { ms } => write!(f, "slow:{ms}"),
            Fault::Truncated => f.write_str("truncate"),
            Fault::Captcha => f.write_str("captcha"),
            Fault::Login => f.write_str("login"),
            Fault::Redirect { hops } => write!(f, "redirect:{hops}"),
            Fault::WrongCharset => f.write_str("wrong-charset"),
            Fault::NoCharset => f.write_str("no-charset"),
            Fault::Bom => f.write_str("bom"),
        }
    }
}

/// Parses a comma-separated list such as `429,500,ok,slow:200`.
pub fn parse_faults(list: &str) -> Result<Vec<Fault>, ParseFaultError> {
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(str::parse)
        .collect()
}

/// The fault for the `nth` request (0-based) to `path`: the same seed, path and count give
/// the same answer whatever order concurrent requests arrive in.
pub(crate) fn draw(seed: u64, rate: f64, pool: &[Fault], path: &str, nth: u64) -> Fault {
    if pool.is_empty() || rate <= 0.0 {
        return Fault::Ok;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(fnv(&[
        &seed.to_le_bytes(),
        path.as_bytes(),
        &nth.to_le_bytes(),
    ]));
    if rng.random_bool(rate.min(1.0)) {
        pool[rng.random_range(0..pool.len())]
    } else {
        Fault::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fault_lists() {
        assert_eq!(
            parse_faults("429:3, 500,ok,slow:200,redirect,bom").unwrap(),
            vec![
                Fault::TooManyRequests {
                    retry_after_secs: 3
                },
                Fault::ServerError,
                Fault::Ok,
                Fault::Slow { ms: 200 },
                Fault::Redirect { hops: 2 },
                Fault::Bom,
            ]
        );
        assert!(parse_faults("429,teapot").is_err());
        assert!(parse_faults("500:1").is_err());
        for f in Fault::default_pool() {
            assert_eq!(f.to_string().parse::<Fault>().unwrap(), f);
        }
    }

    #[test]
    fn draws_are_deterministic_and_near_the_rate() {
        let pool = Fault::default_pool();
        let hits = (0..2000)
            .filter(|n| draw(42, 0.3, &pool, "/jd/Search?keyword=x", *n) != Fault::Ok)
            .count();
        assert!((500..700).contains(&hits), "{hits}");
        assert_eq!(draw(42, 0.3, &pool, "/a", 5), draw(42, 0.3, &pool, "/a", 5));
        assert_eq!(draw(42, 0.0, &pool, "/a", 5), Fault::Ok);
    }
}
