//! Trends over weeks, for the dashboard and the monthly report: what was found, what was
//! filed and what came of it, per platform account against Alibaba's Good-faith lines, how
//! long removals took and how often listings came back. Read from the weekly tallies the
//! store keeps (never a scan of the notices), drawn by [`crate::chart`], with the numbers
//! behind each chart as a table and as CSV.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;

use crate::case::{MAX_COUNTER_RATE, MIN_SUCCESS_RATE};
use crate::chart::{self, BarChart, LineChart, Reference, Series};
use crate::store::{Store, StoreError, TrendTallies};

/// Reads one step's count from a week.
type CaseCount = fn(&CaseWeek) -> i64;

/// The periods a chart can cover, in weeks.
pub const PERIODS: [u32; 3] = [4, 13, 52];

/// The Monday of `day`'s week.
pub fn week_of(day: NaiveDate) -> NaiveDate {
    day - Duration::days(i64::from(day.weekday().num_days_from_monday()))
}

/// What happened per week over a period, ready to chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trends {
    /// Each week's Monday, oldest first.
    pub weeks: Vec<NaiveDate>,
    /// Platforms with listings found in the period.
    pub platforms: Vec<String>,
    /// Per week, per platform (in `platforms` order): listings first flagged.
    pub found: Vec<Vec<Found>>,
    /// Per week: case steps, counted in notices.
    pub cases: Vec<CaseWeek>,
    /// Per platform account: outcomes in the period, counted in listings.
    pub accounts: Vec<AccountOutcomes>,
    /// Per week: removals and the median days from draft to removal.
    pub removals: Vec<Removals>,
    /// Per week: listings drafted as relistings of an earlier case.
    pub relisted: Vec<i64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Found {
    pub infringing: i64,
    pub suspect: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CaseWeek {
    pub filed: i64,
    pub removed: i64,
    pub rejected: i64,
    pub counter_noticed: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AccountOutcomes {
    pub platform: String,
    pub account: String,
    pub filed: i64,
    pub removed: i64,
    pub rejected: i64,
    pub counter_noticed: i64,
}

impl AccountOutcomes {
    fn decided(&self) -> i64 {
        self.removed + self.rejected + self.counter_noticed
    }

    /// Removed over all outcomes; None before any.
    pub fn success_rate(&self) -> Option<f64> {
        let d = self.decided();
        (d > 0).then(|| self.removed as f64 / d as f64)
    }

    /// Counter-noticed over all outcomes.
    pub fn counter_rate(&self) -> Option<f64> {
        let d = self.decided();
        (d > 0).then(|| self.counter_noticed as f64 / d as f64)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Removals {
    pub count: i64,
    pub median_days: Option<f64>,
}

/// The `weeks` weeks ending with the one holding `today`, for one brand or all.
pub async fn load(
    store: &Store,
    brand_id: Option<i64>,
    weeks: u32,
    today: NaiveDate,
) -> Result<Trends, StoreError> {
    let last = week_of(today);
    let first = last - Duration::weeks(i64::from(weeks.max(1)) - 1);
    load_between(store, brand_id, first, last).await
}

/// The weeks from `first` to `last` (Mondays, inclusive).
pub(crate) async fn load_between(
    store: &Store,
    brand_id: Option<i64>,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<Trends, StoreError> {
    let tallies = store
        .trend_tallies(&first.to_string(), &last.to_string(), brand_id)
        .await?;
    Ok(Trends::from_tallies(first, last, &tallies))
}

impl Trends {
    pub fn from_tallies(first: NaiveDate, last: NaiveDate, tallies: &TrendTallies) -> Trends {
        let weeks: Vec<NaiveDate> = first.iter_weeks().take_while(|w| *w <= last).collect();
        let index: BTreeMap<String, usize> = weeks
            .iter()
            .enumerate()
            .map(|(i, w)| (w.to_string(), i))
            .collect();
        let mut platforms: Vec<String> = tallies
            .weekly
            .iter()
            .filter(|r| r.metric.starts_with("found_"))
            .map(|r| r.platform.clone())
            .collect();
        platforms.sort();
        platforms.dedup();
        let mut found = vec![vec![Found::default(); platforms.len()]; weeks.len()];
        let mut cases = vec![CaseWeek::default(); weeks.len()];
        let mut relisted = vec![0; weeks.len()];
        for r in &tallies.weekly {
            let Some(&w) = index.get(&r.week) else {
                continue;
            };
            match r.metric.as_str() {
                "found_infringing" | "found_suspect" => {
                    if let Ok(p) = platforms.binary_search(&r.platform) {
                        let f = &mut found[w][p];
                        if r.metric == "found_infringing" {
                            f.infringing += r.listings;
                        } else {
                            f.suspect += r.listings;
                        }
                    }
                }
                "filed" => cases[w].filed += r.notices,
                "removed" => cases[w].removed += r.notices,
                "rejected" => cases[w].rejected += r.notices,
                "counter_noticed" => cases[w].counter_noticed += r.notices,
                "relisted" => relisted[w] += r.listings,
                _ => {}
            }
        }
        let mut accounts: BTreeMap<(&str, &str), AccountOutcomes> = BTreeMap::new();
        for r in &tallies.accounts {
            let a = accounts
                .entry((&r.platform, &r.account))
                .or_insert_with(|| AccountOutcomes {
                    platform: r.platform.clone(),
                    account: r.account.clone(),
                    ..AccountOutcomes::default()
                });
            match r.metric.as_str() {
                "filed" => a.filed += r.listings,
                "removed" => a.removed += r.listings,
                "rejected" => a.rejected += r.listings,
                "counter_noticed" => a.counter_noticed += r.listings,
                _ => {}
            }
        }
        let mut removals = vec![Removals::default(); weeks.len()];
        for r in &tallies.removals {
            if let Some(&w) = index.get(&r.week) {
                removals[w] = Removals {
                    count: r.removed,
                    median_days: Some((r.low_days + r.high_days) as f64 / 2.0),
                };
            }
        }
        Trends {
            weeks,
            platforms,
            found,
            cases,
            accounts: accounts.into_values().collect(),
            removals,
            relisted,
        }
    }

    /// Totals over the period.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for week in &self.found {
            for f in week {
                t.infringing += f.infringing;
                t.suspect += f.suspect;
            }
        }
        for c in &self.cases {
            t.filed += c.filed;
            t.removed += c.removed;
            t.rejected += c.rejected;
            t.counter_noticed += c.counter_noticed;
        }
        t.relisted = self.relisted.iter().sum();
        t
    }

    fn labels(&self) -> Vec<String> {
        self.weeks
            .iter()
            .map(|w| w.format("%m-%d").to_string())
            .collect()
    }

    /// Every chart, with its numbers.
    pub fn charts(&self, platform_names: &dyn Fn(&str) -> String) -> Vec<Chart> {
        ChartKind::ALL
            .iter()
            .map(|k| self.chart(*k, platform_names))
            .collect()
    }

    /// One chart and its numbers.
    pub fn chart(&self, kind: ChartKind, platform_names: &dyn Fn(&str) -> String) -> Chart {
        let labels = self.labels();
        let weeks: Vec<String> = self.weeks.iter().map(NaiveDate::to_string).collect();
        let count = |v: i64| Some(v as f64);
        let line = |series: &[Series], unit: &str| {
            chart::line_chart(&LineChart {
                id: kind.id(),
                title: kind.title(),
                x_labels: &labels,
                series,
                unit,
                scale: 1.0,
                reference: None,
            })
        };
        let (svg, table) = match kind {
            ChartKind::Found => {
                let series: Vec<Series> = self
                    .platforms
                    .iter()
                    .enumerate()
                    .map(|(p, name)| Series {
                        name: platform_names(name),
                        values: self
                            .found
                            .iter()
                            .map(|w| count(w[p].infringing + w[p].suspect))
                            .collect(),
                    })
                    .collect();
                let mut header = vec!["week".to_owned()];
                for p in &self.platforms {
                    header.push(format!("{p} infringing"));
                    header.push(format!("{p} suspect"));
                }
                let rows =
                    weeks
                        .iter()
                        .zip(&self.found)
                        .map(|(w, f)| {
                            std::iter::once(w.clone())
                                .chain(f.iter().flat_map(|f| {
                                    [f.infringing.to_string(), f.suspect.to_string()]
                                }))
                                .collect()
                        })
                        .collect();
                (line(&series, ""), Table { header, rows })
            }
            ChartKind::Cases => {
                let pick: [(&str, CaseCount); 4] = [
                    ("filed", |c| c.filed),
                    ("removed", |c| c.removed),
                    ("rejected", |c| c.rejected),
                    ("counter-noticed", |c| c.counter_noticed),
                ];
                let series: Vec<Series> = pick
                    .iter()
                    .map(|(name, f)| Series {
                        name: (*name).to_owned(),
                        values: self.cases.iter().map(|c| count(f(c))).collect(),
                    })
                    .collect();
                let rows = weeks
                    .iter()
                    .zip(&self.cases)
                    .map(|(w, c)| {
                        std::iter::once(w.clone())
                            .chain(pick.iter().map(|(_, f)| f(c).to_string()))
                            .collect()
                    })
                    .collect();
                let header = std::iter::once("week")
                    .chain(pick.iter().map(|(n, _)| *n))
                    .map(str::to_owned)
                    .collect();
                (line(&series, ""), Table { header, rows })
            }
            ChartKind::Success | ChartKind::Counter => {
                let success = kind == ChartKind::Success;
                let bars: Vec<(String, Option<f64>)> = self
                    .accounts
                    .iter()
                    .map(|a| {
                        (
                            format!("{} · {}", platform_names(&a.platform), a.account),
                            if success {
                                a.success_rate()
                            } else {
                                a.counter_rate()
                            },
                        )
                    })
                    .collect();
                let reference = if success {
                    Reference {
                        value: MIN_SUCCESS_RATE,
                        label: format!(
                            "Good-faith line {}%",
                            chart::number(MIN_SUCCESS_RATE * 100.0)
                        ),
                    }
                } else {
                    Reference {
                        value: MAX_COUNTER_RATE,
                        label: format!(
                            "Good-faith line {}%",
                            chart::number(MAX_COUNTER_RATE * 100.0)
                        ),
                    }
                };
                let header = [
                    "platform",
                    "account",
                    "filed",
                    "removed",
                    "rejected",
                    "counter_noticed",
                    if success {
                        "success_rate"
                    } else {
                        "counter_rate"
                    },
                ]
                .map(str::to_owned)
                .to_vec();
                let rows = self
                    .accounts
                    .iter()
                    .map(|a| {
                        let rate = if success {
                            a.success_rate()
                        } else {
                            a.counter_rate()
                        };
                        vec![
                            a.platform.clone(),
                            a.account.clone(),
                            a.filed.to_string(),
                            a.removed.to_string(),
                            a.rejected.to_string(),
                            a.counter_noticed.to_string(),
                            rate.map_or_else(String::new, |r| format!("{r:.4}")),
                        ]
                    })
                    .collect();
                (
                    chart::bar_chart(&BarChart {
                        id: kind.id(),
                        title: kind.title(),
                        bars: &bars,
                        // The counter-notice line sits at 5%: a 0–20% scale keeps it readable.
                        max: if success { 1.0 } else { 0.2 },
                        unit: "%",
                        scale: 100.0,
                        reference: Some(reference),
                    }),
                    Table { header, rows },
                )
            }
            ChartKind::RemovalDays => {
                let series = [Series {
                    name: "median days".to_owned(),
                    values: self.removals.iter().map(|r| r.median_days).collect(),
                }];
                let rows = weeks
                    .iter()
                    .zip(&self.removals)
                    .map(|(w, r)| {
                        vec![
                            w.clone(),
                            r.count.to_string(),
                            r.median_days
                                .map_or_else(String::new, |d| format!("{d:.1}")),
                        ]
                    })
                    .collect();
                (
                    line(&series, " d"),
                    Table {
                        header: ["week", "removed", "median_days"]
                            .map(str::to_owned)
                            .to_vec(),
                        rows,
                    },
                )
            }
            ChartKind::Relisted => {
                let series = [Series {
                    name: "relistings".to_owned(),
                    values: self.relisted.iter().map(|n| count(*n)).collect(),
                }];
                let rows = weeks
                    .iter()
                    .zip(&self.relisted)
                    .map(|(w, n)| vec![w.clone(), n.to_string()])
                    .collect();
                (
                    line(&series, ""),
                    Table {
                        header: ["week", "relisted"].map(str::to_owned).to_vec(),
                        rows,
                    },
                )
            }
        };
        Chart {
            id: kind.id(),
            title: kind.title(),
            note: kind.note(),
            svg,
            table,
        }
    }
}

/// Totals over a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub infringing: i64,
    pub suspect: i64,
    pub filed: i64,
    pub removed: i64,
    pub rejected: i64,
    pub counter_noticed: i64,
    pub relisted: i64,
}

/// The charts there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ChartKind {
    Found,
    Cases,
    Success,
    Counter,
    RemovalDays,
    Relisted,
}

impl ChartKind {
    pub const ALL: [ChartKind; 6] = [
        ChartKind::Found,
        ChartKind::Cases,
        ChartKind::Success,
        ChartKind::Counter,
        ChartKind::RemovalDays,
        ChartKind::Relisted,
    ];

    pub fn id(self) -> &'static str {
        match self {
            ChartKind::Found => "found",
            ChartKind::Cases => "cases",
            ChartKind::Success => "success",
            ChartKind::Counter => "counter",
            ChartKind::RemovalDays => "removal-days",
            ChartKind::Relisted => "relisted",
        }
    }

    pub fn from_id(id: &str) -> Option<ChartKind> {
        ChartKind::ALL.into_iter().find(|k| k.id() == id)
    }

    fn title(self) -> &'static str {
        match self {
            ChartKind::Found => "New infringing and suspect listings per week",
            ChartKind::Cases => "Notices filed, removed, rejected and counter-noticed per week",
            ChartKind::Success => "Takedown success rate per platform account",
            ChartKind::Counter => "Counter-notice rate per platform account",
            ChartKind::RemovalDays => "Median days from detection to removal",
            ChartKind::Relisted => "Relistings per week",
        }
    }

    fn note(self) -> &'static str {
        match self {
            ChartKind::Found => "Listings first flagged each week, by platform.",
            ChartKind::Cases => {
                "Cases moved each week; rejected counts only the platform's rejections of filed cases."
            }
            ChartKind::Success | ChartKind::Counter => {
                "Outcomes recorded in the period, counted in listings, over removed, rejected and counter-noticed."
            }
            ChartKind::RemovalDays => {
                "Whole days from the draft to the removal, for cases removed that week."
            }
            ChartKind::Relisted => {
                "Listings drafted as relistings of a case already taken down or filed."
            }
        }
    }
}

/// A drawn chart and the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chart {
    pub id: &'static str,
    pub title: &'static str,
    pub note: &'static str,
    pub svg: String,
    pub table: Table,
}

/// A chart's numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// As CSV, a header line first.
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record(&self.header);
        for r in &self.rows {
            let _ = w.write_record(r);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AccountTally, WeeklyRemovals, WeeklyTally};

    fn tally(week: &str, platform: &str, metric: &str, notices: i64, listings: i64) -> WeeklyTally {
        WeeklyTally {
            week: week.into(),
            platform: platform.into(),
            metric: metric.into(),
            notices,
            listings,
        }
    }

    #[test]
    fn weeks_start_on_monday() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(week_of(d("2026-12-05")), d("2026-11-30"));
        assert_eq!(week_of(d("2026-11-30")), d("2026-11-30"));
        assert_eq!(week_of(d("2026-12-06")), d("2026-11-30"));
    }

    #[test]
    fn tallies_fold_into_weeks_platforms_and_accounts() {
        let first: NaiveDate = "2026-11-16".parse().unwrap();
        let last: NaiveDate = "2026-11-30".parse().unwrap();
        let account = |metric: &str, notices, listings| AccountTally {
            platform: "jd".into(),
            account: "acc".into(),
            metric: metric.into(),
            notices,
            listings,
        };
        let tallies = TrendTallies {
            weekly: vec![
                tally("2026-11-16", "jd", "found_infringing", 0, 4),
                tally("2026-11-16", "taobao", "found_suspect", 0, 2),
                tally("2026-11-23", "", "filed", 2, 5),
                tally("2026-11-30", "", "removed", 1, 3),
                tally("2026-11-30", "", "counter_noticed", 1, 1),
                tally("2026-11-30", "", "relisted", 0, 2),
                tally("2026-11-09", "", "relisted", 0, 9),
            ],
            accounts: vec![
                account("filed", 2, 5),
                account("removed", 1, 3),
                account("counter_noticed", 1, 1),
            ],
            removals: vec![WeeklyRemovals {
                week: "2026-11-30".into(),
                removed: 2,
                low_days: 4,
                high_days: 7,
            }],
        };
        let t = Trends::from_tallies(first, last, &tallies);
        assert_eq!(t.weeks.len(), 3);
        assert_eq!(t.platforms, ["jd", "taobao"]);
        assert_eq!(t.found[0][0].infringing, 4);
        assert_eq!(t.found[0][1].suspect, 2);
        assert_eq!(t.cases[1].filed, 2);
        assert_eq!(t.relisted, [0, 0, 2]);
        assert_eq!(t.removals[2].median_days, Some(5.5));
        assert_eq!(t.removals[1].median_days, None);
        let a = &t.accounts[0];
        assert_eq!((a.filed, a.removed, a.counter_noticed), (5, 3, 1));
        assert_eq!(a.success_rate(), Some(0.75));
        let total = t.totals();
        assert_eq!((total.infringing, total.suspect, total.relisted), (4, 2, 2));
        let charts = t.charts(&|p| p.to_owned());
        assert_eq!(charts.len(), 6);
        let csv = charts[0].table.to_csv();
        assert_eq!(
            csv.lines().next(),
            Some("week,jd infringing,jd suspect,taobao infringing,taobao suspect")
        );
        assert_eq!(csv.lines().nth(1), Some("2026-11-16,4,0,0,2"));
    }
}
