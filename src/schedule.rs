//! Schedules: cron expressions, the watches the daemon runs, and the planning rules that let a
//! restart neither miss nor double a run.
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

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use rand::Rng;

use crate::config::Config;
use crate::model::{Trigger, slot_key};

/// A schedule that cannot be used, naming the expression or watch.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("cron expression `{expr}`: {message}")]
    Cron { expr: String, message: String },
    #[error("cron expression `{expr}` never fires")]
    NeverFires { expr: String },
    #[error("UTC offset `{0}`: expected a form like +08:00 or -05:30")]
    Offset(String),
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
}

/// A parsed cron expression, remembered as written.
#[derive(Debug, Clone)]
pub struct CronExpr {
    text: String,
    schedule: cron::Schedule,
}

impl CronExpr {
    /// Parses five fields (Unix cron: minute hour day month weekday, 0 or 7 = Sunday), six or
    /// seven (the `cron` crate's form: seconds first, optional year, 1 = Sunday), or a
    /// shorthand such as `@daily`. Weekday names (`Mon-Fri`) read the same in every form.
    pub fn parse(text: &str) -> Result<CronExpr, ScheduleError> {
        let trimmed = text.trim();
        let err = |message: String| ScheduleError::Cron {
            expr: text.to_owned(),
            message,
        };
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        let full = if trimmed.starts_with('@') {
            trimmed.to_owned()
        } else {
            match fields.len() {
                5 => {
                    let weekday = unix_weekday(fields[4]).map_err(err)?;
                    format!(
                        "0 {} {} {} {} {weekday}",
                        fields[0], fields[1], fields[2], fields[3]
                    )
                }
                6 | 7 => fields.join(" "),
                n => {
                    return Err(err(format!(
                        "has {n} fields; expected 5 (minute hour day month weekday) or 6 with seconds first"
                    )));
                }
            }
        };
        let schedule = cron::Schedule::from_str(&full).map_err(|e| err(e.to_string()))?;
        if schedule.upcoming(Utc).next().is_none() {
            return Err(ScheduleError::NeverFires {
                expr: text.to_owned(),
            });
        }
        Ok(CronExpr {
            text: trimmed.to_owned(),
            schedule,
        })
    }

    /// The expression as configured.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first firing strictly after `after`, reading the expression on the `offset` clock.
    pub fn next_after(&self, after: DateTime<Utc>, offset: FixedOffset) -> Option<DateTime<Utc>> {
        self.schedule
            .after(&after.with_timezone(&offset))
            .next()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// Unix weekdays (0-7, 0 and 7 = Sunday) to the cron crate's (1-7, 1 = Sunday).
fn unix_weekday(field: &str) -> Result<String, String> {
    let shift = |n: &str| -> Result<u32, String> {
        let v: u32 = n
            .parse()
            .map_err(|_| format!("weekday `{n}` is not a number or name"))?;
        match v {
            0..=6 => Ok(v + 1),
            7 => Ok(1),
            _ => Err(format!("weekday {v} is out of range 0-7")),
        }
    };
    let is_num = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mut out = Vec::new();
    for item in field.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((b, s)) => (b, Some(s)),
            None => (item, None),
        };
        let step_suffix = step.map(|s| format!("/{s}")).unwrap_or_default();
        let shifted = match base.split_once('-') {
            Some((a, b)) if is_num(a) && is_num(b) => {
                let (from, to) = (shift(a)?, b.parse::<u32>().unwrap_or(99));
                match to {
                    // "5-7" is Friday to Sunday: Sunday wraps to the start of the week.
                    7 if step.is_none() && from > 1 => format!("{from}-7,1"),
                    7 if from == 1 => format!("1-7{step_suffix}"),
                    7 => {
                        return Err(format!(
                            "weekday range `{item}`: write it with 0 for Sunday"
                        ));
                    }
                    _ => format!("{from}-{}{step_suffix}", shift(b)?),
                }
            }
            _ if is_num(base) => format!("{}{step_suffix}", shift(base)?),
            // `*`, `?` and names are the same in both conventions.
            _ => item.to_owned(),
        };
        out.push(shifted);
    }
    Ok(out.join(","))
}

/// Parses "+08:00", "-05:30", "Z" or "UTC".
pub fn parse_utc_offset(text: &str) -> Result<FixedOffset, ScheduleError> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
        return Ok(FixedOffset::east_opt(0).expect("zero offset"));
    }
    let bad = || ScheduleError::Offset(text.to_owned());
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
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
}

impl Watch {
    /// The next slot after `now` and when its run starts (slot + a random share of the jitter).
    pub fn plan_after(
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
pub fn watches(config: &Config, platforms: &[String]) -> Result<Vec<Watch>, ScheduleError> {
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
        });
    }
    for w in &config.schedule.watch {
        let name = w.name.trim().to_owned();
        if platforms.contains(&name) {
            return Err(ScheduleError::PlatformName(name));
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
            name,
        });
    }
    Ok(out)
}

/// What the persisted state says about a watch at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Nothing to do until `at`.
    Wait { at: DateTime<Utc> },
    /// Start a run for `slot` now.
    Run { slot: String, trigger: Trigger },
}

/// A watch's persisted plan, as the scheduler reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub next_slot: DateTime<Utc>,
    pub next_run_at: DateTime<Utc>,
    /// The slot of a run cut short, to run again first.
    pub resume_slot: Option<String>,
}

/// Decides whether a watch runs now. `started` is when this daemon process started: a run
/// that was due before then is a catch-up.
pub fn due(plan: &Plan, now: DateTime<Utc>, started: DateTime<Utc>) -> Due {
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
    fn five_fields_are_unix_cron() {
        let every_six_hours = CronExpr::parse("0 */6 * * *").unwrap();
        assert_eq!(
            every_six_hours.next_after(utc("2026-11-21T07:15:00Z"), zero()),
            Some(utc("2026-11-21T12:00:00Z"))
        );
        // 2026-11-21 is a Saturday; "1-5" is Monday to Friday in Unix cron.
        let weekdays = CronExpr::parse("30 9 * * 1-5").unwrap();
        assert_eq!(
            weekdays.next_after(utc("2026-11-21T00:00:00Z"), zero()),
            Some(utc("2026-11-23T09:30:00Z"))
        );
        let sunday = CronExpr::parse("0 8 * * 0").unwrap();
        assert_eq!(
            sunday.next_after(utc("2026-11-21T00:00:00Z"), zero()),
            Some(utc("2026-11-22T08:00:00Z"))
        );
        let sunday7 = CronExpr::parse("0 8 * * 7").unwrap();
        assert_eq!(
            sunday7.next_after(utc("2026-11-21T00:00:00Z"), zero()),
            Some(utc("2026-11-22T08:00:00Z"))
        );
        // Friday to Sunday, written with 7.
        let weekend = CronExpr::parse("0 8 * * 5-7").unwrap();
        let mut t = utc("2026-11-19T12:00:00Z"); // Thursday
        let mut days = Vec::new();
        for _ in 0..3 {
            t = weekend.next_after(t, zero()).unwrap();
            days.push(t.format("%a").to_string());
        }
        assert_eq!(days, ["Fri", "Sat", "Sun"]);
        let names = CronExpr::parse("0 9 * * Mon-Fri").unwrap();
        assert_eq!(
            names.next_after(utc("2026-11-21T00:00:00Z"), zero()),
            Some(utc("2026-11-23T09:00:00Z"))
        );
    }

    #[test]
    fn six_fields_have_seconds_and_shorthands_work() {
        let every_5s = CronExpr::parse("*/5 * * * * *").unwrap();
        assert_eq!(
            every_5s.next_after(utc("2026-11-21T07:15:02Z"), zero()),
            Some(utc("2026-11-21T07:15:05Z"))
        );
        let daily = CronExpr::parse("@daily").unwrap();
        assert_eq!(
            daily.next_after(utc("2026-11-21T07:15:02Z"), zero()),
            Some(utc("2026-11-22T00:00:00Z"))
        );
    }

    #[test]
    fn bad_expressions_are_named() {
        for bad in ["", "* * *", "61 * * * *", "0 8 * * 9", "banana * * * *"] {
            let err = CronExpr::parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
    }

    #[test]
    fn the_offset_sets_the_clock() {
        let nine_am = CronExpr::parse("0 9 * * *").unwrap();
        let cst = parse_utc_offset("+08:00").unwrap();
        assert_eq!(
            nine_am.next_after(utc("2026-11-21T00:00:00Z"), cst),
            Some(utc("2026-11-21T01:00:00Z"))
        );
        assert!(parse_utc_offset("8").is_err());
        assert!(parse_utc_offset("+15:00").is_err());
        assert_eq!(parse_utc_offset("UTC").unwrap(), zero());
        assert_eq!(
            parse_utc_offset("-05:30").unwrap().local_minus_utc(),
            -(5 * 3600 + 1800)
        );
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
