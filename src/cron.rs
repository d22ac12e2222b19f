//! Cron expressions: the one reader for every schedule markwatch has, the daemon's crawls
//! (`schedule.cron`, `platforms.<name>.schedule`, `[[schedule.watch]]`) and brands' alert
//! digests. It wraps the `cron` crate, whose expressions start with a seconds field.
//!
//! Accepted forms:
//! - five fields, Unix cron: `minute hour day-of-month month weekday`, weekdays 0-7 with 0 and
//!   7 = Sunday (`0 8 * * 1-5` is 08:00 Monday to Friday);
//! - six or seven fields, the `cron` crate's own: seconds first, an optional year last, and
//!   weekdays 1-7 with 1 = Sunday;
//! - a shorthand: `@yearly`, `@monthly`, `@weekly`, `@daily`, `@hourly`.
//!
//! Weekday and month names (`Mon-Fri`, `Jan`) read the same in every form. A five-field
//! expression may not restrict both the day of month and the weekday: Unix cron runs such a
//! job when *either* matches, the `cron` crate only when *both* do, so it is refused rather
//! than read differently from what its writer meant.
//!
//! Errors name the expression and the field: "cron expression `61 8 * * *`: minute `61`: 61
//! is out of range 0-59".
//!
//! A leaf module: it uses nothing else of the crate, so `config` can validate with it and
//! `schedule` can use `config` without a cycle.

use std::str::FromStr;

use chrono::{DateTime, FixedOffset, Utc};

/// A cron expression or UTC offset that cannot be used, naming what was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error("cron expression `{expr}`: {message}")]
    Invalid { expr: String, message: String },
    #[error("cron expression `{expr}` never fires")]
    NeverFires { expr: String },
    #[error("UTC offset `{0}`: expected a form like +08:00 or -05:30")]
    Offset(String),
}

/// A parsed cron expression, remembered as written.
#[derive(Debug, Clone)]
pub struct CronExpr {
    text: String,
    schedule: ::cron::Schedule,
}

impl CronExpr {
    /// Parses any of the forms in the module documentation.
    pub fn parse(text: &str) -> Result<CronExpr, CronError> {
        let trimmed = text.trim();
        let invalid = |message: String| CronError::Invalid {
            expr: text.to_owned(),
            message,
        };
        let full = crate_form(trimmed).map_err(invalid)?;
        let schedule = ::cron::Schedule::from_str(&full).map_err(|e| invalid(e.to_string()))?;
        if schedule.upcoming(Utc).next().is_none() {
            return Err(CronError::NeverFires {
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
    pub(crate) fn next_after(
        &self,
        after: DateTime<Utc>,
        offset: FixedOffset,
    ) -> Option<DateTime<Utc>> {
        self.schedule
            .after(&after.with_timezone(&offset))
            .next()
            .map(|t| t.with_timezone(&Utc))
    }
}

impl FromStr for CronExpr {
    type Err = CronError;

    fn from_str(text: &str) -> Result<CronExpr, CronError> {
        CronExpr::parse(text)
    }
}

impl std::fmt::Display for CronExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Parses "+08:00", "-05:30", "Z" or "UTC".
pub(crate) fn parse_utc_offset(text: &str) -> Result<FixedOffset, CronError> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
        return Ok(FixedOffset::east_opt(0).expect("zero offset"));
    }
    let bad = || CronError::Offset(text.to_owned());
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

/// What one field may hold.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names and the numbers they stand for.
    names: &'static [(&'static str, u32)],
    /// `?` allowed (day of month and weekday).
    any: bool,
}

const MONTH_NAMES: &[(&str, u32)] = &[
    ("jan", 1),
    ("january", 1),
    ("feb", 2),
    ("february", 2),
    ("mar", 3),
    ("march", 3),
    ("apr", 4),
    ("april", 4),
    ("may", 5),
    ("jun", 6),
    ("june", 6),
    ("jul", 7),
    ("july", 7),
    ("aug", 8),
    ("august", 8),
    ("sep", 9),
    ("september", 9),
    ("oct", 10),
    ("october", 10),
    ("nov", 11),
    ("november", 11),
    ("dec", 12),
    ("december", 12),
];

/// Weekday names as the `cron` crate numbers them (1 = Sunday).
const DAY_NAMES: &[(&str, u32)] = &[
    ("sun", 1),
    ("sunday", 1),
    ("mon", 2),
    ("monday", 2),
    ("tue", 3),
    ("tues", 3),
    ("tuesday", 3),
    ("wed", 4),
    ("wednesday", 4),
    ("thu", 5),
    ("thurs", 5),
    ("thursday", 5),
    ("fri", 6),
    ("friday", 6),
    ("sat", 7),
    ("saturday", 7),
];

const SECOND: Field = Field {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
    any: false,
};
const MINUTE: Field = Field {
    name: "minute",
    ..SECOND
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    any: false,
};
const DAY_OF_MONTH: Field = Field {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
    any: true,
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: MONTH_NAMES,
    any: false,
};
/// The weekday of the six- and seven-field form: 1-7, 1 = Sunday.
const WEEKDAY_FROM_SUNDAY_1: Field = Field {
    name: "weekday",
    min: 1,
    max: 7,
    names: DAY_NAMES,
    any: true,
};
const YEAR: Field = Field {
    name: "year",
    min: 1970,
    max: 2100,
    names: &[],
    any: false,
};

/// The expression in the `cron` crate's form, each field checked; the error names the field.
fn crate_form(text: &str) -> Result<String, String> {
    if text.starts_with('@') {
        const SHORTHANDS: [&str; 5] = ["@yearly", "@monthly", "@weekly", "@daily", "@hourly"];
        return if SHORTHANDS.contains(&text) {
            Ok(text.to_owned())
        } else {
            Err(format!(
                "`{text}` is not a shorthand; use one of {}",
                SHORTHANDS.join(", ")
            ))
        };
    }
    let fields: Vec<&str> = text.split_whitespace().collect();
    match fields.len() {
        5 => {
            for (field, spec) in fields[..4].iter().zip([MINUTE, HOUR, DAY_OF_MONTH, MONTH]) {
                check(&spec, field)?;
            }
            let weekday = fields[4];
            let restricted = |f: &str| f != "*" && f != "?";
            if restricted(fields[2]) && restricted(weekday) {
                return Err(format!(
                    "restricts both the day of month (`{}`) and the weekday (`{weekday}`); \
                     Unix cron would run on either, this reader only on both, so write `*` in one of them",
                    fields[2]
                ));
            }
            let weekday =
                unix_weekdays(weekday).map_err(|e| format!("weekday `{weekday}`: {e}"))?;
            Ok(format!(
                "0 {} {} {} {} {weekday}",
                fields[0], fields[1], fields[2], fields[3]
            ))
        }
        6 | 7 => {
            let specs = [
                SECOND,
                MINUTE,
                HOUR,
                DAY_OF_MONTH,
                MONTH,
                WEEKDAY_FROM_SUNDAY_1,
                YEAR,
            ];
            for (field, spec) in fields.iter().zip(specs) {
                check(&spec, field)?;
            }
            Ok(fields.join(" "))
        }
        0 => Err("is empty; expected 5 fields (minute hour day-of-month month weekday)".to_owned()),
        n => Err(format!(
            "has {n} field{}; expected 5 (minute hour day-of-month month weekday), \
             or 6 with seconds first",
            if n == 1 { "" } else { "s" }
        )),
    }
}

/// Checks one field against what the `cron` crate accepts, in words a user can act on.
fn check(spec: &Field, text: &str) -> Result<(), String> {
    let named = |e: String| format!("{} `{text}`: {e}", spec.name);
    for item in text.split(',') {
        let (base, step) = split_step(item).map_err(named)?;
        match base {
            "*" => {}
            "?" if spec.any && step.is_none() && text == "?" => {}
            _ => {
                if let Some((a, b)) = base.split_once('-') {
                    let (from, to) = (
                        value(spec, a).map_err(named)?,
                        value(spec, b).map_err(named)?,
                    );
                    if from > to {
                        return Err(named(format!("the range `{base}` runs backwards")));
                    }
                } else {
                    value(spec, base).map_err(named)?;
                }
            }
        }
    }
    Ok(())
}

/// `item` as its base and its step (`*/15` → `*`, 15).
fn split_step(item: &str) -> Result<(&str, Option<u32>), String> {
    match item.split_once('/') {
        None => Ok((item, None)),
        Some((base, step)) => match step.parse::<u32>() {
            Ok(n) if n >= 1 => Ok((base, Some(n))),
            _ => Err(format!("the step `{step}` is not a whole number from 1 up")),
        },
    }
}

/// One number or name of a field.
fn value(spec: &Field, text: &str) -> Result<u32, String> {
    if text.is_empty() {
        return Err("an empty item (two commas, or a dangling `-`?)".to_owned());
    }
    if let Ok(n) = text.parse::<u32>() {
        return if (spec.min..=spec.max).contains(&n) {
            Ok(n)
        } else {
            Err(format!("{n} is out of range {}-{}", spec.min, spec.max))
        };
    }
    let lower = text.to_ascii_lowercase();
    match spec.names.iter().find(|(name, _)| *name == lower) {
        Some((_, n)) => Ok(*n),
        None if spec.names.is_empty() => Err(format!("`{text}` is not a number")),
        None => Err(format!("`{text}` is not a number or a name")),
    }
}

/// A Unix weekday field (0-7, 0 and 7 = Sunday, names) as the `cron` crate's (1-7, 1 = Sunday):
/// the days it means, listed. `*` and `?` stay as they are.
fn unix_weekdays(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok(field.to_owned());
    }
    // Unix numbering; names are the same days.
    let day = |s: &str| -> Result<u32, String> {
        if let Ok(n) = s.parse::<u32>() {
            return if n <= 7 {
                Ok(n)
            } else {
                Err(format!("{n} is out of range 0-7 (0 and 7 are Sunday)"))
            };
        }
        let lower = s.to_ascii_lowercase();
        DAY_NAMES
            .iter()
            .find(|(name, _)| *name == lower)
            .map(|(_, n)| n - 1)
            .ok_or_else(|| {
                if s.is_empty() {
                    "an empty item (two commas, or a dangling `-`?)".to_owned()
                } else {
                    format!("`{s}` is not a number 0-7 or a name like Mon")
                }
            })
    };
    let mut days = [false; 7];
    for item in field.split(',') {
        let (base, step) = split_step(item)?;
        let (from, to) = match base.split_once('-') {
            _ if base == "*" => (0, 6),
            Some((a, b)) => {
                let (from, to) = (day(a)?, day(b)?);
                // `Fri-Sun`: a range may end on Sunday, counted as 7.
                let to = if to == 0 && from > 0 { 7 } else { to };
                if from > to {
                    return Err(format!("the range `{base}` runs backwards"));
                }
                (from, to)
            }
            // `1/2`: from Monday, every other day to the end of the week.
            None if step.is_some() => (day(base)?, 7),
            None => {
                let d = day(base)?;
                (d, d)
            }
        };
        let mut d = from;
        while d <= to {
            days[(d % 7) as usize] = true;
            d += step.unwrap_or(1);
        }
    }
    let listed: Vec<String> = (0..7)
        .filter(|&d| days[d])
        .map(|d| (d + 1).to_string())
        .collect();
    Ok(listed.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn zero() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    /// The weekdays of the next `n` firings after Thursday 2026-11-19 00:00 UTC.
    fn days(expr: &str, n: usize) -> Vec<String> {
        let cron = CronExpr::parse(expr).unwrap_or_else(|e| panic!("{e}"));
        let mut t = utc("2026-11-19T00:00:00Z");
        (0..n)
            .map(|_| {
                t = cron.next_after(t, zero()).unwrap();
                t.format("%a").to_string()
            })
            .collect()
    }

    #[test]
    fn five_fields_are_unix_cron() {
        let every_six_hours = CronExpr::parse("0 */6 * * *").unwrap();
        assert_eq!(
            every_six_hours.next_after(utc("2026-11-21T07:15:00Z"), zero()),
            Some(utc("2026-11-21T12:00:00Z"))
        );
        assert_eq!(days("0 9 * * 1-5", 5), ["Thu", "Fri", "Mon", "Tue", "Wed"]);
        assert_eq!(days("0 9 * * 0", 2), ["Sun", "Sun"]);
        assert_eq!(days("0 9 * * 7", 2), ["Sun", "Sun"]);
        assert_eq!(days("0 9 * * 0,6", 3), ["Sat", "Sun", "Sat"]);
        assert_eq!(days("0 9 * * 5-7", 4), ["Fri", "Sat", "Sun", "Fri"]);
        assert_eq!(days("0 9 * * Fri-Sun", 4), ["Fri", "Sat", "Sun", "Fri"]);
        assert_eq!(days("0 9 * * mon-FRI", 2), ["Thu", "Fri"]);
        // Steps count Unix days: `*/2` is Sun, Tue, Thu, Sat; `1-7/2` is Mon, Wed, Fri, Sun.
        assert_eq!(days("0 9 * * */2", 4), ["Thu", "Sat", "Sun", "Tue"]);
        assert_eq!(days("0 9 * * 1-7/2", 4), ["Fri", "Sun", "Mon", "Wed"]);
        assert_eq!(days("0 9 * * 1/2", 4), ["Fri", "Sun", "Mon", "Wed"]);
    }

    #[test]
    fn six_and_seven_fields_are_the_crates() {
        let every_5s = CronExpr::parse("*/5 * * * * *").unwrap();
        assert_eq!(
            every_5s.next_after(utc("2026-11-21T07:15:02Z"), zero()),
            Some(utc("2026-11-21T07:15:05Z"))
        );
        // Six fields number weekdays from 1 = Sunday.
        assert_eq!(days("0 0 9 * * 1", 2), ["Sun", "Sun"]);
        assert_eq!(days("0 0 9 * * Mon", 1), ["Mon"]);
        let once = CronExpr::parse("0 0 9 1 1 * 2099").unwrap();
        assert_eq!(
            once.next_after(utc("2026-11-21T00:00:00Z"), zero()),
            Some(utc("2099-01-01T09:00:00Z"))
        );
        let daily = CronExpr::parse(" @daily ").unwrap();
        assert_eq!(daily.as_str(), "@daily");
        assert_eq!(
            daily.next_after(utc("2026-11-21T07:15:02Z"), zero()),
            Some(utc("2026-11-22T00:00:00Z"))
        );
    }

    #[test]
    fn errors_name_the_expression_and_the_field() {
        for (bad, says) in [
            ("", "is empty"),
            ("daily", "has 1 field;"),
            ("* * *", "has 3 fields"),
            ("61 8 * * *", "minute `61`: 61 is out of range 0-59"),
            ("0 24 * * *", "hour `24`: 24 is out of range 0-23"),
            ("0 8 0 * *", "day of month `0`: 0 is out of range 1-31"),
            ("0 8 * 13 *", "month `13`: 13 is out of range 1-12"),
            (
                "0 8 * Smarch *",
                "month `Smarch`: `Smarch` is not a number or a name",
            ),
            ("0 8 * * 9", "weekday `9`: 9 is out of range 0-7"),
            (
                "0 8 * * Funday",
                "weekday `Funday`: `Funday` is not a number 0-7",
            ),
            (
                "0 8 * * 5-1",
                "weekday `5-1`: the range `5-1` runs backwards",
            ),
            (
                "banana * * * *",
                "minute `banana`: `banana` is not a number",
            ),
            ("*/0 * * * *", "minute `*/0`: the step `0`"),
            ("0 8 1,,2 * *", "day of month `1,,2`: an empty item"),
            ("0 8 1 * 1", "restricts both the day of month"),
            ("0 60 * * * *", "minute `60`"),
            ("0 0 8 * * 0", "weekday `0`: 0 is out of range 1-7"),
            ("0 0 8 * * Fri-Sun", "weekday `Fri-Sun`: the range"),
            ("0 0 8 * * * 1969", "year `1969`"),
            ("@often", "not a shorthand"),
        ] {
            let err = CronExpr::parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("cron expression `{bad}`")), "{err}");
            assert!(err.contains(says), "{bad:?}: {err}");
        }
        let never = CronExpr::parse("0 0 30 2 *").unwrap_err();
        assert!(matches!(never, CronError::NeverFires { .. }), "{never}");
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
}
