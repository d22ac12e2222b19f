//! Digest schedules: when each brand's digest is due. A brand's `digest` is a cron expression
//! read by [`crate::cron`], like the daemon's crawl schedules (5 fields crontab style, or 6/7
//! with seconds first); digest times are UTC.

use chrono::{DateTime, Offset, Utc};

use crate::cron::{CronError, CronExpr};

/// Used when a brand names no schedule: every day at 08:00 UTC.
pub(crate) const DEFAULT_DIGEST: &str = "0 8 * * *";

/// Parses a digest schedule; the error names the expression and the field at fault.
pub(crate) fn parse_schedule(expr: &str) -> Result<CronExpr, CronError> {
    CronExpr::parse(expr)
}

/// The first digest time strictly after `after`.
pub(super) fn next_digest(schedule: &CronExpr, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule.next_after(after, Utc.fix())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn next(expr: &str, from: DateTime<Utc>) -> DateTime<Utc> {
        next_digest(&parse_schedule(expr).unwrap(), from).unwrap()
    }

    #[test]
    fn five_fields_mean_minute_first() {
        let from = Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap(); // a Saturday
        assert_eq!(
            next("30 8 * * 1", from),
            Utc.with_ymd_and_hms(2026, 11, 23, 8, 30, 0).unwrap()
        );
    }

    #[test]
    fn six_fields_pass_through_and_default_is_daily() {
        let from = Utc.with_ymd_and_hms(2026, 11, 21, 1, 0, 0).unwrap();
        assert_eq!(
            next("0 0 */6 * * *", from),
            Utc.with_ymd_and_hms(2026, 11, 21, 6, 0, 0).unwrap()
        );
        assert_eq!(
            next(DEFAULT_DIGEST, from),
            Utc.with_ymd_and_hms(2026, 11, 21, 8, 0, 0).unwrap()
        );
    }

    #[test]
    fn crontab_weekdays_mean_what_crontab_means() {
        let from = Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap(); // a Saturday
        let day = |d| Utc.with_ymd_and_hms(2026, 11, d, 9, 0, 0).unwrap();
        assert_eq!(next("0 9 * * 0", from), day(22));
        assert_eq!(next("0 9 * * 7", from), day(22));
        assert_eq!(next("0 9 * * 1-5", from), day(23));
        assert_eq!(next("0 9 * * 0,6", from), day(21));
        assert_eq!(next("0 9 * * 5-7", day(21)), day(22));
        assert_eq!(next("0 9 * * mon", from), day(23));
    }

    #[test]
    fn nonsense_is_explained() {
        let err = |expr: &str| parse_schedule(expr).unwrap_err().to_string();
        assert!(err("daily").contains("has 1 field;"), "{}", err("daily"));
        assert!(
            err("61 8 * * *").contains("minute `61`: 61 is out of range 0-59"),
            "{}",
            err("61 8 * * *")
        );
    }
}
