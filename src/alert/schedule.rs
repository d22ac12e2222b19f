//! Digest schedules: cron expressions with 5 fields (minute first, crontab style) or the `cron`
//! crate's own 6 or 7 (seconds first, optional year). Times are UTC.
//!
//! The two styles number weekdays differently: crontab has 0 or 7 = Sunday, 1 = Monday; the
//! `cron` crate has 1 = Sunday. A 5-field expression's weekday numbers are rewritten as names
//! (`MON`), which both agree on.

use std::str::FromStr;

use cron::Schedule;

/// Used when a brand names no schedule: every day at 08:00 UTC.
pub const DEFAULT_DIGEST: &str = "0 8 * * *";

/// Parses a digest schedule; the error says what is wrong in the user's terms.
pub fn parse_schedule(expr: &str) -> Result<Schedule, String> {
    let fields = expr.split_whitespace().count();
    let full = match fields {
        5 => {
            let mut parts: Vec<String> = expr.split_whitespace().map(str::to_owned).collect();
            parts[4] = crontab_weekdays(&parts[4])?;
            format!("0 {}", parts.join(" "))
        }
        6 | 7 => expr.trim().to_owned(),
        n => {
            return Err(format!(
                "`{expr}` has {n} fields; write a cron expression like \"0 8 * * *\" (minute hour day month weekday)"
            ));
        }
    };
    Schedule::from_str(&full).map_err(|e| format!("`{expr}` is not a cron expression: {e}"))
}

const DAY_NAMES: [&str; 8] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

/// Rewrites crontab weekday numbers (0-7) as names, e.g. `1-5` → `MON-FRI`, `5-7` → `FRI-SAT,SUN`.
fn crontab_weekdays(field: &str) -> Result<String, String> {
    let name = |n: &str| -> Result<&'static str, String> {
        n.parse::<usize>()
            .ok()
            .and_then(|i| DAY_NAMES.get(i).copied())
            .ok_or_else(|| format!("weekday `{n}` is not 0-7 or a name like MON"))
    };
    let is_num = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mut out = Vec::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (part, None),
        };
        let range = match range.split_once('-') {
            Some((a, b)) if is_num(a) && is_num(b) => {
                let (a, b) = (name(a)?, b);
                if b == "7" && step.is_none() {
                    // A range ending on Sunday-as-7: the crate cannot wrap past SAT.
                    out.push("SUN".to_owned());
                    format!("{a}-SAT")
                } else {
                    format!("{a}-{}", name(b)?)
                }
            }
            _ if is_num(range) => name(range)?.to_owned(),
            _ => range.to_owned(),
        };
        out.push(match step {
            Some(s) => format!("{range}/{s}"),
            None => range,
        });
    }
    Ok(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn five_fields_mean_minute_first() {
        let s = parse_schedule("30 8 * * 1").unwrap();
        let from = Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap(); // a Saturday
        let next = s.after(&from).next().unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 11, 23, 8, 30, 0).unwrap());
    }

    #[test]
    fn six_fields_pass_through_and_default_is_daily() {
        let s = parse_schedule("0 0 */6 * * *").unwrap();
        let from = Utc.with_ymd_and_hms(2026, 11, 21, 1, 0, 0).unwrap();
        assert_eq!(
            s.after(&from).next().unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 21, 6, 0, 0).unwrap()
        );
        let d = parse_schedule(DEFAULT_DIGEST).unwrap();
        assert_eq!(
            d.after(&from).next().unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 21, 8, 0, 0).unwrap()
        );
    }

    #[test]
    fn crontab_weekdays_mean_what_crontab_means() {
        assert_eq!(crontab_weekdays("1-5").unwrap(), "MON-FRI");
        assert_eq!(crontab_weekdays("0,6").unwrap(), "SUN,SAT");
        assert_eq!(crontab_weekdays("5-7").unwrap(), "SUN,FRI-SAT");
        assert_eq!(crontab_weekdays("*").unwrap(), "*");
        assert_eq!(crontab_weekdays("mon").unwrap(), "mon");
        let sunday = parse_schedule("0 9 * * 0").unwrap();
        let from = Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap();
        assert_eq!(
            sunday.after(&from).next().unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()
        );
    }

    #[test]
    fn nonsense_is_explained() {
        assert!(parse_schedule("daily").unwrap_err().contains("1 fields"));
        assert!(
            parse_schedule("61 8 * * *")
                .unwrap_err()
                .contains("not a cron")
        );
    }
}
