//! Schedules: the watches the daemon runs, and the planning rules that let a restart neither
//! miss nor double a run. Cron expressions and UTC offsets are read by [`crate::cron`].
//!
//! A *watch* is a named search on a cron schedule: each enabled platform has its own (named
//! after the platform), and `[[schedule.watch]]` adds more. Each scheduled run is for one cron
//! *slot*; the daemon persists the next slot and its jittered start, so:
//! - a slot that passed while the daemon was down runs once at start (missed slots coalesce
//!   into one catch-up run, as systemd's `Persistent=true` and anacron do);
//! - a slot whose run was cut short (crash, shutdown) is run again, once, under the same slot;
//! - a slot that comes while the watch's previous run is still going is skipped and recorded.
//!
//! No I/O here: `daemon::scheduler` stores what these functions decide.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use rand::Rng;

use crate::config::{Config, WatchKind};
pub(crate) use crate::cron::CronExpr;
pub(crate) use crate::cron::{CronError, parse_utc_offset};
use crate::model::{Trigger, slot_key};

/// A schedule that cannot be used, naming the expression or watch.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Cron(#[from] CronError),
    #[error("watch `{watch}`: no platform `{platform}` (known: {known})")]
    UnknownPlatform {
        watch: String,
        platform: String,
        known: String,
    },
    #[error("watch `{0}`: the name is taken by a platform's own schedule")]
    PlatformName(String),
    #[error("watch `{0}` searches no enabled platform")]
    NoPlatforms(String),
    #[error(
        "watch `{0}`: a watch of kind `domains` takes `brands` only (it searches no platform and no keywords)"
    )]
    DomainsWatch(String),
}

/// A named search the daemon runs on a schedule.
#[derive(Debug, Clone)]
pub struct Watch {
    pub name: String,
    pub cron: CronExpr,
    /// Each run starts up to this long after its slot.
    pub jitter: Duration,
    /// Platforms searched, sorted.
    pub platforms: Vec<String>,
    /// Search words; empty means the registry's (limited to `brands` if given).
    pub keywords: Vec<String>,
    pub brands: Vec<String>,
    /// Listings on platforms, or the domain watch (whose one "platform" is
    /// [`crate::domains::PLATFORM`]).
    pub kind: WatchKind,
}

impl Watch {
    /// The next slot after `now` and when its run starts (slot + a random share of the jitter).
    pub(crate) fn plan_after(
        &self,
        now: DateTime<Utc>,
        offset: FixedOffset,
        rng: &mut impl Rng,
    ) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let slot = self.cron.next_after(now, offset)?;
        let jitter_ms = self.jitter.as_millis() as u64;
        let delay = if jitter_ms == 0 {
            0
        } else {
            rng.random_range(0..=jitter_ms)
        };
        Some((
            slot,
            slot + chrono::Duration::milliseconds(delay.min(i64::MAX as u64) as i64),
        ))
    }
}

/// The daemon's watches: one per enabled platform unless its schedule is "off", then the
/// configured `[[schedule.watch]]` entries. `platforms` are the loaded definitions' names.
pub(crate) fn watches(config: &Config, platforms: &[String]) -> Result<Vec<Watch>, ScheduleError> {
    let enabled: Vec<&String> = platforms
        .iter()
        .filter(|p| config.platforms.get(*p).is_none_or(|c| c.enabled))
        .collect();
    let jitter = Duration::from_secs(config.schedule.jitter_secs);
    let mut out = Vec::new();
    for platform in &enabled {
        let own = config
            .platforms
            .get(*platform)
            .and_then(|c| c.schedule.as_deref());
        if own.is_some_and(|s| s.trim() == "off") {
            continue;
        }
        out.push(Watch {
            name: (*platform).clone(),
            cron: CronExpr::parse(own.unwrap_or(&config.schedule.cron))?,
            jitter,
            platforms: vec![(*platform).clone()],
            keywords: Vec::new(),
            brands: Vec::new(),
            kind: WatchKind::Listings,
        });
    }
    for w in &config.schedule.watch {
        let name = w.name.trim().to_owned();
        if platforms.contains(&name) || name == crate::domains::PLATFORM {
            return Err(ScheduleError::PlatformName(name));
        }
        if w.kind == WatchKind::Domains {
            if !w.platforms.is_empty() || !w.keywords.is_empty() {
                return Err(ScheduleError::DomainsWatch(name));
            }
            out.push(Watch {
                cron: CronExpr::parse(&w.cron)?,
                jitter: w.jitter_secs.map_or(jitter, Duration::from_secs),
                platforms: vec![crate::domains::PLATFORM.to_owned()],
                keywords: Vec::new(),
                brands: w.brands.clone(),
                kind: WatchKind::Domains,
                name,
            });
            continue;
        }
        for p in &w.platforms {
            if !platforms.contains(p) {
                return Err(ScheduleError::UnknownPlatform {
                    watch: name,
                    platform: p.clone(),
                    known: platforms.join(", "),
                });
            }
        }
        let mut chosen: Vec<String> = if w.platforms.is_empty() {
            enabled.iter().map(|p| (*p).clone()).collect()
        } else {
            w.platforms
                .iter()
                .filter(|p| enabled.contains(p))
                .cloned()
                .collect()
        };
        chosen.sort();
        chosen.dedup();
        if chosen.is_empty() {
            return Err(ScheduleError::NoPlatforms(name));
        }
        out.push(Watch {
            cron: CronExpr::parse(&w.cron)?,
            jitter: w.jitter_secs.map_or(jitter, Duration::from_secs),
            platforms: chosen,
            keywords: w.keywords.clone(),
            brands: w.brands.clone(),
            kind: WatchKind::Listings,
            name,
        });
    }
    Ok(out)
}

/// What the persisted state says about a watch at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Due {
    /// Nothing to do until `at`.
    Wait { at: DateTime<Utc> },
    /// Start a run for `slot` now.
    Run { slot: String, trigger: Trigger },
}

/// A watch's persisted plan, as the scheduler reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub next_slot: DateTime<Utc>,
    pub next_run_at: DateTime<Utc>,
    /// The slot of a run cut short, to run again first.
    pub resume_slot: Option<String>,
}

/// Decides whether a watch runs now. `started` is when this daemon process started: a run
/// that was due before then is a catch-up.
pub(crate) fn due(plan: &Plan, now: DateTime<Utc>, started: DateTime<Utc>) -> Due {
    if let Some(slot) = &plan.resume_slot {
        return Due::Run {
            slot: slot.clone(),
            trigger: Trigger::Resume,
        };
    }
    if plan.next_run_at > now {
        return Due::Wait {
            at: plan.next_run_at,
        };
    }
    Due::Run {
        slot: slot_key(plan.next_slot),
        trigger: if plan.next_run_at < started {
            Trigger::CatchUp
        } else {
            Trigger::Schedule
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rand::SeedableRng;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn zero() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    #[test]
    fn jitter_delays_within_its_bound() {
        let watch = Watch {
            name: "jd".into(),
            cron: CronExpr::parse("0 * * * *").unwrap(),
            jitter: Duration::from_secs(300),
            platforms: vec!["jd".into()],
            keywords: vec![],
            brands: vec![],
            kind: WatchKind::Listings,
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let now = utc("2026-11-21T07:15:00Z");
        let mut delays = std::collections::BTreeSet::new();
        for _ in 0..50 {
            let (slot, at) = watch.plan_after(now, zero(), &mut rng).unwrap();
            assert_eq!(slot, utc("2026-11-21T08:00:00Z"));
            assert!(at >= slot && at <= slot + chrono::Duration::seconds(300));
            delays.insert((at - slot).num_milliseconds());
        }
        assert!(delays.len() > 10, "jitter varies: {delays:?}");
    }

    #[test]
    fn watches_come_from_platforms_and_config() {
        let mut config = Config::default();
        config.platforms.insert(
            "jd".into(),
            crate::config::PlatformConfig {
                schedule: Some("*/10 * * * *".into()),
                ..Default::default()
            },
        );
        config.platforms.insert(
            "amazon_cn".into(),
            crate::config::PlatformConfig {
                schedule: Some("off".into()),
                ..Default::default()
            },
        );
        config.platforms.insert(
            "tmall".into(),
            crate::config::PlatformConfig {
                enabled: false,
                ..Default::default()
            },
        );
        config.schedule.watch.push(crate::config::WatchConfig {
            name: "nike-hourly".into(),
            cron: "0 * * * *".into(),
            brands: vec!["Nike".into()],
            ..Default::default()
        });
        let platforms: Vec<String> = ["amazon_cn", "jd", "taobao", "tmall"]
            .map(String::from)
            .to_vec();
        let watches = watches(&config, &platforms).unwrap();
        let names: Vec<_> = watches.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["jd", "taobao", "nike-hourly"]);
        assert_eq!(watches[0].cron.as_str(), "*/10 * * * *");
        assert_eq!(watches[1].cron.as_str(), "0 */6 * * *");
        // A watch without platforms searches every enabled one (tmall is disabled).
        assert_eq!(watches[2].platforms, ["amazon_cn", "jd", "taobao"]);

        config.schedule.watch[0].platforms = vec!["ebay".into()];
        let err = super::watches(&config, &platforms).unwrap_err().to_string();
        assert!(err.contains("ebay") && err.contains("nike-hourly"), "{err}");
        config.schedule.watch[0].platforms = vec![];
        config.schedule.watch[0].name = "jd".into();
        assert!(matches!(
            super::watches(&config, &platforms),
            Err(ScheduleError::PlatformName(_))
        ));
    }

    #[test]
    fn a_domains_watch_runs_the_domain_watch_for_its_brands() {
        let config: Config = toml::from_str(
            "[[schedule.watch]]\nname = \"cn-domains\"\nkind = \"domains\"\ncron = \"0 3 * * *\"\nbrands = [\"Nike\"]\n",
        )
        .unwrap();
        let platforms = vec!["jd".to_owned()];
        let all = watches(&config, &platforms).unwrap();
        let w = all.iter().find(|w| w.name == "cn-domains").unwrap();
        assert_eq!(w.kind, WatchKind::Domains);
        // Its one job is the `domains` definition's, so one runs at a time across workers.
        assert_eq!(w.platforms, [crate::domains::PLATFORM]);
        assert_eq!(w.brands, ["Nike"]);

        let mut bad = config.clone();
        bad.schedule.watch[0].keywords = vec!["nike".into()];
        assert!(matches!(
            watches(&bad, &platforms),
            Err(ScheduleError::DomainsWatch(_))
        ));
    }

    #[test]
    fn due_resumes_first_then_catches_up_or_runs_on_time() {
        let started = utc("2026-11-21T10:00:00Z");
        let plan = Plan {
            next_slot: utc("2026-11-21T06:00:00Z"),
            next_run_at: utc("2026-11-21T06:03:00Z"),
            resume_slot: None,
        };
        // Missed while down: one catch-up run for the slot.
        assert_eq!(
            due(&plan, started, started),
            Due::Run {
                slot: "2026-11-21T06:00:00Z".into(),
                trigger: Trigger::CatchUp
            }
        );
        let later = Plan {
            next_slot: utc("2026-11-21T12:00:00Z"),
            next_run_at: utc("2026-11-21T12:01:00Z"),
            resume_slot: None,
        };
        assert_eq!(
            due(&later, started, started),
            Due::Wait {
                at: utc("2026-11-21T12:01:00Z")
            }
        );
        assert_eq!(
            due(&later, utc("2026-11-21T12:01:00Z"), started),
            Due::Run {
                slot: "2026-11-21T12:00:00Z".into(),
                trigger: Trigger::Schedule
            }
        );
        let cut_short = Plan {
            resume_slot: Some("2026-11-21T06:00:00Z".into()),
            ..later
        };
        assert_eq!(
            due(&cut_short, started, started),
            Due::Run {
                slot: "2026-11-21T06:00:00Z".into(),
                trigger: Trigger::Resume
            }
        );
        assert_eq!(
            slot_key(Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()),
            "2026-01-02T03:04:05Z"
        );
    }
}
