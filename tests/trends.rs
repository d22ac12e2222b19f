//! The dashboard's trend charts over a year of seeded cases: the numbers behind each chart
//! (its CSV, as a person downloads it) equal counts made here from the stored rows, and each
//! chart is well-formed SVG whose title and labels are text.

mod common;

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate};
use common::web::WebServer;
use markwatch::Role;

fn monday(day: NaiveDate) -> NaiveDate {
    day - Duration::days(i64::from(day.weekday().num_days_from_monday()))
}

fn week_of(timestamp: &str) -> String {
    monday(timestamp[..10].parse().unwrap()).to_string()
}

/// A case step from the audit log, with its case.
#[derive(sqlx::FromRow)]
struct Step {
    at: String,
    from_state: Option<String>,
    to_state: String,
    item_count: i64,
    platform: String,
    account: Option<String>,
    created_at: String,
}

/// A seeded year of cases, and a viewer logged in.
async fn seeded(notices: usize) -> (WebServer, reqwest::Client, NaiveDate) {
    let web = WebServer::start().await;
    let today = chrono::Utc::now().date_naive();
    markwatch::seed_notices(&web.store, notices, 7, |_| {})
        .await
        .unwrap();
    markwatch::seed_history(&web.store, 52, 7, today, |_| {})
        .await
        .unwrap();
    web.add_user("bo", Role::Viewer).await;
    let client = web.client();
    web.login(&client, "bo").await;
    (web, client, today)
}

/// A chart's CSV: the header, and each row keyed by its first cell.
async fn csv(
    web: &WebServer,
    client: &reqwest::Client,
    path: &str,
) -> (Vec<String>, BTreeMap<String, Vec<String>>) {
    let resp = client.get(web.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"),
        "{path}"
    );
    let body = resp.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_owned(), r.iter().map(str::to_owned).collect())
        })
        .collect();
    (header, rows)
}

fn cell(row: &[String], header: &[String], column: &str) -> i64 {
    let i = header
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("no column {column} in {header:?}"));
    row[i].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_charts_numbers_are_the_stored_rows_counted_by_week() {
    let (web, client, today) = seeded(600).await;
    let first = (monday(today) - Duration::weeks(51)).to_string();
    let mut conn = common::connect(&web.db()).await;

    // Listings found, per week, platform and verdict, for all brands and for one.
    let found: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT l.platform, m.verdict, m.created_at, b.name FROM matches m
         JOIN listings l ON l.id = m.listing_id JOIN brands b ON b.id = m.brand_id
         WHERE m.verdict <> 'clear'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for brand in [None, Some("Nike")] {
        let mut want: BTreeMap<(String, String), i64> = BTreeMap::new();
        for (platform, verdict, at, name) in &found {
            if week_of(at) >= first && brand.is_none_or(|b| b == name) {
                *want
                    .entry((week_of(at), format!("{platform} {verdict}")))
                    .or_default() += 1;
            }
        }
        let path = match brand {
            None => "/trends/found.csv?weeks=52".to_owned(),
            Some(b) => format!("/trends/found.csv?weeks=52&brand={b}"),
        };
        let (header, rows) = csv(&web, &client, &path).await;
        assert_eq!(rows.len(), 52, "{path}: one row per week");
        let mut shown = 0;
        for (week, row) in &rows {
            for column in &header[1..] {
                let got = cell(row, &header, column);
                let expected = want
                    .get(&(week.clone(), column.clone()))
                    .copied()
                    .unwrap_or(0);
                assert_eq!(got, expected, "{path}: {week} {column}");
                shown += got;
            }
        }
        assert_eq!(shown, want.values().sum::<i64>(), "{path}");
        assert!(shown > 0, "{path}: the seeded year found nothing");
    }

    // Case steps per week, from the audit log.
    let steps: Vec<Step> = sqlx::query_as(
        "SELECT a.at, a.from_state, a.to_state, n.item_count, n.platform, n.account, n.created_at
         FROM audit_log a JOIN notices n ON n.id = a.entity_id WHERE a.entity = 'notice'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let outcome = |from: &Option<String>, to: &str| match to {
        "filed" | "removed" | "counter_noticed" => Some(to.to_owned()),
        "rejected" if matches!(from.as_deref(), Some("filed" | "counter_noticed")) => {
            Some("rejected".to_owned())
        }
        _ => None,
    };
    let mut cases: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut accounts: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    let mut removal_days: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for Step {
        at,
        from_state: from,
        to_state: to,
        item_count: items,
        platform,
        account,
        created_at: created,
    } in &steps
    {
        let Some(metric) = outcome(from, to) else {
            continue;
        };
        if week_of(at) < first {
            continue;
        }
        *cases.entry((week_of(at), metric.clone())).or_default() += 1;
        let account = account.clone().unwrap_or_else(|| "default".into());
        *accounts
            .entry((platform.clone(), account, metric.clone()))
            .or_default() += items;
        if metric == "removed" {
            let days = (at[..10].parse::<NaiveDate>().unwrap()
                - created[..10].parse::<NaiveDate>().unwrap())
            .num_days();
            removal_days
                .entry(week_of(at))
                .or_default()
                .push(days.clamp(0, 90));
        }
    }
    let (header, rows) = csv(&web, &client, "/trends/cases.csv?weeks=52").await;
    assert_eq!(
        header,
        ["week", "filed", "removed", "rejected", "counter-noticed"]
    );
    for (week, row) in &rows {
        for (column, metric) in [
            ("filed", "filed"),
            ("removed", "removed"),
            ("rejected", "rejected"),
            ("counter-noticed", "counter_noticed"),
        ] {
            let expected = cases
                .get(&(week.clone(), metric.to_owned()))
                .copied()
                .unwrap_or(0);
            assert_eq!(
                cell(row, &header, column),
                expected,
                "cases {week} {column}"
            );
        }
    }
    assert!(
        cases.keys().any(|(_, m)| m == "counter_noticed"),
        "seeded a counter-notice"
    );

    // Per account, in listings, with the rate a person would work out.
    let (header, _) = csv(&web, &client, "/trends/success.csv?weeks=52").await;
    let mut seen_accounts = 0;
    for row in csv_rows(&web, &client, "/trends/success.csv?weeks=52").await {
        let key = |m: &str| {
            accounts
                .get(&(row[0].clone(), row[1].clone(), m.to_owned()))
                .copied()
                .unwrap_or(0)
        };
        for metric in ["filed", "removed", "rejected", "counter_noticed"] {
            assert_eq!(cell(&row, &header, metric), key(metric), "{row:?} {metric}");
        }
        let decided = key("removed") + key("rejected") + key("counter_noticed");
        if decided > 0 {
            let rate: f64 = row[6].parse().unwrap();
            assert!(
                (rate - key("removed") as f64 / decided as f64).abs() < 1e-4,
                "{row:?}"
            );
        }
        seen_accounts += 1;
    }
    assert!(seen_accounts > 0);
    let expected_accounts: std::collections::BTreeSet<_> = accounts
        .keys()
        .map(|(p, a, _)| (p.clone(), a.clone()))
        .collect();
    assert_eq!(seen_accounts, expected_accounts.len());

    // Median days to removal, per week.
    let (header, rows) = csv(&web, &client, "/trends/removal-days.csv?weeks=52").await;
    let parities: std::collections::BTreeSet<i64> =
        removal_days.values().map(|d| d.len() as i64 % 2).collect();
    assert_eq!(
        parities.len(),
        2,
        "weeks with odd and even removals, both medians"
    );
    for (week, row) in &rows {
        let mut days = removal_days.get(week).cloned().unwrap_or_default();
        assert_eq!(cell(row, &header, "removed"), days.len() as i64, "{week}");
        days.sort();
        let median = match days.len() {
            0 => None,
            n if n % 2 == 1 => Some(days[n / 2] as f64),
            n => Some((days[n / 2 - 1] + days[n / 2]) as f64 / 2.0),
        };
        let shown = (!row[2].is_empty()).then(|| row[2].parse::<f64>().unwrap());
        assert_eq!(shown, median, "median days, week of {week}");
    }

    // Relistings, per week.
    let relisted: Vec<(String,)> = sqlx::query_as(
        "SELECT ni.added_at FROM notice_items ni WHERE ni.relisted_from IS NOT NULL",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for (at,) in &relisted {
        if week_of(at) >= first {
            *want.entry(week_of(at)).or_default() += 1;
        }
    }
    assert!(!want.is_empty(), "the seeded year has relistings");
    let (header, rows) = csv(&web, &client, "/trends/relisted.csv?weeks=52").await;
    for (week, row) in &rows {
        assert_eq!(
            cell(row, &header, "relisted"),
            want.get(week).copied().unwrap_or(0),
            "relisted {week}"
        );
    }
}

/// The CSV's rows in order (accounts share no first cell).
async fn csv_rows(web: &WebServer, client: &reqwest::Client, path: &str) -> Vec<Vec<String>> {
    let body = client
        .get(web.url(path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    csv::Reader::from_reader(body.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// The `<svg>…</svg>` pieces of a page.
fn svgs(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").unwrap() + start + "</svg>".len();
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_draws_each_chart_as_svg_with_its_title_and_labels_as_text() {
    let (web, client, today) = seeded(120).await;
    let resp = client.get(web.url("/?weeks=13")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    let charts = svgs(&html);
    assert_eq!(charts.len(), 6, "six charts");
    let titles = [
        "New infringing and suspect listings per week",
        "Notices filed, removed, rejected and counter-noticed per week",
        "Takedown success rate per platform account",
        "Counter-notice rate per platform account",
        "Median days from detection to removal",
        "Relistings per week",
    ];
    let this_week = monday(today).format("%m-%d").to_string();
    for (svg, title) in charts.iter().zip(titles) {
        let doc = roxmltree::Document::parse(svg)
            .unwrap_or_else(|e| panic!("{title}: not well-formed: {e}\n{svg}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(
            root.tag_name().namespace(),
            Some("http://www.w3.org/2000/svg")
        );
        let title_el = root
            .children()
            .find(|n| n.has_tag_name("title"))
            .expect("a <title>");
        assert_eq!(title_el.text(), Some(title));
        let texts: Vec<&str> = root
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .collect();
        assert!(texts.contains(&title), "{title}: title drawn as text");
        match title {
            t if t.starts_with("New infringing") => {
                // Platform names in the legend, Chinese and all; this week on the x axis.
                assert!(texts.contains(&"淘宝 Taobao"), "{texts:?}");
                assert!(texts.contains(&"京东 JD.com"), "{texts:?}");
                assert!(texts.contains(&this_week.as_str()), "{texts:?}");
            }
            t if t.starts_with("Notices filed") => {
                for s in ["filed", "removed", "rejected", "counter-noticed"] {
                    assert!(texts.contains(&s), "{s} in {texts:?}");
                }
            }
            t if t.starts_with("Takedown") => {
                assert!(texts.contains(&"Good-faith line 90%"), "{texts:?}");
                assert!(texts.iter().any(|t| t.ends_with("· jd-main")), "{texts:?}");
            }
            t if t.starts_with("Counter-notice") => {
                assert!(texts.contains(&"Good-faith line 5%"), "{texts:?}");
            }
            _ => {}
        }
    }
    // The numbers one click away: a CSV link per chart, keeping the filter.
    assert!(html.contains("href=\"/trends/found.csv?weeks=13\""));
    let filtered = client
        .get(web.url("/?weeks=4&brand=Nike"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        filtered.contains("In these 4 weeks for Nike:"),
        "{filtered}"
    );
    assert!(filtered.contains("href=\"/trends/cases.csv?weeks=4&amp;brand=Nike\""));

    // A filter that cannot be honoured says which part is wrong.
    for (path, says) in [
        ("/?weeks=7", "weeks: `7`"),
        ("/?brand=NoSuchBrand", "no brand named `NoSuchBrand`"),
        ("/trends/found.csv?weeks=abc", "weeks: `abc`"),
    ] {
        let resp = client.get(web.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{path}");
        let body = resp.text().await.unwrap();
        assert!(body.contains(says), "{path}: {body}");
    }
    let resp = client
        .get(web.url("/trends/nothing.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboards_good_faith_rates_follow_each_case_step() {
    use markwatch::{CaseState, TransitionDetails};
    let web = WebServer::start().await;
    web.add_user("bo", Role::Viewer).await;
    let client = web.client();
    web.login(&client, "bo").await;
    let listing = common::web::listing("taobao", "777001", "耐克 运动鞋 高仿", "Nike", 0.9);
    let id = markwatch::seed_notice(&web.store, &[listing])
        .await
        .unwrap()[0];
    let rates = |html: String| {
        let start = html.find("id=\"rates\"").unwrap();
        let end = html[start..].find("</table>").unwrap() + start;
        html[start..end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let before = rates(web.text(&client, "/").await);
    assert!(
        before.contains("Nothing filed in the last 3 months."),
        "{before}"
    );
    for (to, reference) in [
        (CaseState::Approved, None),
        (CaseState::Filed, Some("IPP-9")),
    ] {
        let details = TransitionDetails {
            complaint_ref: reference.map(str::to_owned),
            account: Some("legal-tb".into()),
            ..TransitionDetails::default()
        };
        web.store
            .transition_notice(id, to, "legal", &details)
            .await
            .unwrap();
    }
    let filed = rates(web.text(&client, "/").await);
    assert!(
        filed.contains("<td>legal-tb</td><td class=\"num\">1</td><td class=\"num\">1</td><td class=\"num\">0</td>"),
        "{filed}"
    );
    web.store
        .transition_notice(
            id,
            CaseState::Removed,
            "legal",
            &TransitionDetails::default(),
        )
        .await
        .unwrap();
    let removed = rates(web.text(&client, "/").await);
    assert!(
        removed.contains("<td>legal-tb</td><td class=\"num\">1</td><td class=\"num\">0</td><td class=\"num\">1</td>"),
        "{removed}"
    );
    assert!(removed.contains("100.0%"), "{removed}");
}

/// Platform, account, and listings filed, pending, removed, rejected and counter-noticed.
type Standing = (String, String, i64, i64, i64, i64, i64);

/// Each account's Good-faith counts over the window ending `today`, counted from the notices
/// and their audit history as the standing is defined.
async fn standing_from_rows(conn: &mut sqlx::AnyConnection, today: NaiveDate) -> Vec<Standing> {
    let since = today
        .checked_sub_months(chrono::Months::new(markwatch::GOOD_FAITH_MONTHS))
        .unwrap()
        .to_string();
    // The date is ours, not input; inlined because `?` is not PostgreSQL's placeholder.
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT n.platform, coalesce(n.account, 'default'),
                CAST(sum(n.item_count) AS BIGINT),
                CAST(sum(CASE WHEN n.state = 'filed' THEN n.item_count ELSE 0 END) AS BIGINT),
                CAST(sum(CASE WHEN EXISTS (SELECT 1 FROM audit_log a WHERE a.entity = 'notice'
                         AND a.entity_id = n.id AND a.to_state = 'removed')
                         THEN n.item_count ELSE 0 END) AS BIGINT),
                CAST(sum(CASE WHEN EXISTS (SELECT 1 FROM audit_log a WHERE a.entity = 'notice'
                         AND a.entity_id = n.id AND a.from_state = 'filed' AND a.to_state = 'rejected')
                         THEN n.item_count ELSE 0 END) AS BIGINT),
                CAST(sum(CASE WHEN n.counter_noticed_at IS NOT NULL THEN n.item_count ELSE 0 END) AS BIGINT)
         FROM notices n WHERE n.filed_at IS NOT NULL AND substr(n.filed_at, 1, 10) >= '{since}'
         GROUP BY 1, 2 ORDER BY 1, 2"
    )))
    .fetch_all(conn)
    .await
    .unwrap()
}

async fn standing(store: &markwatch::Store, today: NaiveDate) -> Vec<Standing> {
    markwatch::good_faith(store, today)
        .await
        .unwrap()
        .into_iter()
        .map(|g| {
            let c = g.counts;
            (
                c.platform,
                c.account,
                c.filed,
                c.pending,
                c.removed,
                c.rejected,
                c.counter_noticed,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_good_faith_standing_is_the_filed_cases_counted() {
    use markwatch::{CaseState, TransitionDetails};
    let (web, _client, today) = seeded(400).await;
    let mut conn = common::connect(&web.db()).await;
    for day in [today, today - Duration::weeks(6)] {
        let want = standing_from_rows(&mut conn, day).await;
        let answered = |f: fn(&Standing) -> i64| want.iter().map(f).sum::<i64>() > 0;
        assert!(
            answered(|r| r.4) && answered(|r| r.5) && answered(|r| r.6),
            "every answer seeded: {want:?}"
        );
        assert_eq!(standing(&web.store, day).await, want, "window ending {day}");
    }

    // Live steps: every answer a platform gives, and a reviewer's rejection, which is none.
    let step = |id: i64, to: CaseState, reference: Option<&str>| {
        let store = web.store.clone();
        let details = TransitionDetails {
            complaint_ref: reference.map(str::to_owned),
            account: Some("legal-tb".into()),
            ..TransitionDetails::default()
        };
        async move {
            store
                .transition_notice(id, to, "legal", &details)
                .await
                .unwrap();
        }
    };
    let mut ids = Vec::new();
    for i in 0..5 {
        let listing =
            common::web::listing("taobao", &format!("88800{i}"), "耐克 高仿", "Nike", 0.9);
        ids.push(
            markwatch::seed_notice(&web.store, &[listing])
                .await
                .unwrap()[0],
        );
    }
    for (i, &id) in ids.iter().enumerate() {
        step(id, CaseState::Approved, None).await;
        if i == 4 {
            step(id, CaseState::Rejected, None).await;
            continue;
        }
        step(id, CaseState::Filed, Some(&format!("IPP-{i}"))).await;
        match i {
            0 => step(id, CaseState::Removed, None).await,
            1 => step(id, CaseState::Rejected, None).await,
            2 => {
                step(id, CaseState::CounterNoticed, None).await;
                step(id, CaseState::Removed, None).await;
                step(id, CaseState::Closed, None).await;
            }
            _ => {}
        }
    }
    let want = standing_from_rows(&mut conn, today).await;
    let live = want.iter().find(|r| r.1 == "legal-tb").unwrap();
    // Filed 4; one pending; removed 2 (one after a counter-notice); one rejected by the platform.
    assert_eq!(
        (live.2, live.3, live.4, live.5, live.6),
        (4, 1, 2, 1, 1),
        "{live:?}"
    );
    assert_eq!(standing(&web.store, today).await, want);
}
