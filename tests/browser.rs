//! End to end in a real browser: Debian's chromium, headless, driven through chromedriver
//! (WebDriver) against the review UI on loopback with a real SQLite file.
//!
//! When chromium or chromedriver is missing the test fails under CI (`CI=true`; `.ci/run`
//! installs them) and is skipped, loudly, elsewhere: see `common::require`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::web::{PASSWORD, WebServer};
use fantoccini::{Client, ClientBuilder, Locator};
use markwatch::Role;

const CHROMIUM: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const CHROMEDRIVER: &[&str] = &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];

fn find(paths: &[&str]) -> Option<PathBuf> {
    paths.iter().map(PathBuf::from).find(|p| p.exists())
}

/// Chromium and chromedriver, or None (skipped, loudly; a failure under CI).
fn tools(test: &str) -> Option<(PathBuf, PathBuf)> {
    let install = "apt-get install -y chromium chromium-driver";
    let chromium = common::require(test, "chromium", find(CHROMIUM), install)?;
    let chromedriver = common::require(test, "chromedriver", find(CHROMEDRIVER), install)?;
    Some((chromium, chromedriver))
}

/// chromedriver on a free port; killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver(chromedriver: &Path) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver { child, port }
}

async fn open_browser(
    driver: &Driver,
    chromium: &Path,
    profile: &Path,
    downloads: &Path,
) -> Client {
    let caps = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1400,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {
                "download.default_directory": downloads,
                "download.prompt_for_download": false,
                "download.directory_upgrade": true,
                "safebrowsing.enabled": false,
            },
        },
    });
    let caps = match caps {
        serde_json::Value::Object(map) => map,
        _ => unreachable!(),
    };
    ClientBuilder::rustls()
        .expect("rustls")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("connect to chromedriver")
}

/// Waits for a file to finish downloading into `dir`.
async fn wait_for_download(dir: &Path) -> PathBuf {
    // Chromium creates an empty placeholder under the final name while it
    // writes `.crdownload`, so a download is done only when no partial file
    // is left and the final one has content.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut done = None;
        let mut partial = false;
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                if name.ends_with(".crdownload") || name.starts_with('.') {
                    partial = true;
                } else if e.metadata().is_ok_and(|m| m.len() > 0) {
                    done = Some(p);
                }
            }
        }
        if let (Some(p), false) = (done, partial) {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "no download appeared in {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn review_in_a_real_browser() {
    let Some((chromium, chromedriver)) = tools("review_in_a_real_browser") else {
        return;
    };
    let web = WebServer::start().await;
    web.add_user("rita", Role::Reviewer).await;
    let seeded = common::web::seed_review_data(&web).await;

    let scratch = tempfile::tempdir().unwrap();
    let profile = scratch.path().join("profile");
    let downloads = scratch.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let driver = start_driver(&chromedriver);
    let b = open_browser(&driver, &chromium, &profile, &downloads).await;

    let result = drive(&b, &web, &seeded, &downloads).await;
    if let Err(e) = &result {
        // Leave what the browser showed, to see why.
        let url = b
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        let source = b.source().await.unwrap_or_default();
        if let Ok(png) = b.screenshot().await {
            let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-failure.png");
            std::fs::write(&path, png).ok();
            eprintln!("failure screenshot: {}", path.display());
        }
        eprintln!("browser step failed: {e}\nat {url}\n{source}");
    }
    b.close().await.ok();
    result.unwrap();
}

async fn drive(
    b: &Client,
    web: &WebServer,
    seeded: &common::web::Seeded,
    downloads: &Path,
) -> Result<(), fantoccini::error::CmdError> {
    // Log in: the queue was asked for, so the login page sends us back there.
    b.goto(&web.url("/queue")).await?;
    assert!(b.current_url().await?.path().starts_with("/login"));
    b.find(Locator::Id("name")).await?.send_keys("rita").await?;
    b.find(Locator::Id("password"))
        .await?
        .send_keys(PASSWORD)
        .await?;
    b.find(Locator::Id("login")).await?.click().await?;
    b.wait().for_element(Locator::Id("queue")).await?;
    assert_eq!(b.current_url().await?.path(), "/queue");

    // Filter the queue to one platform.
    let platform = &seeded.platform;
    b.find(Locator::Css(&format!(
        "#f-platform option[value='{platform}'], #f-platform option"
    )))
    .await?;
    b.find(Locator::Id("f-platform"))
        .await?
        .select_by_value(platform)
        .await?;
    b.find(Locator::Id("apply-filters")).await?.click().await?;
    // The old page also has #queue: wait for the filtered page's URL, a bounded number of times.
    let mut url = b.current_url().await?;
    for _ in 0..50 {
        if url.query().unwrap_or("").contains("platform=") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        url = b.current_url().await?;
    }
    b.wait().for_element(Locator::Id("queue")).await?;
    assert!(
        url.query()
            .unwrap_or("")
            .contains(&format!("platform={platform}")),
        "{url}"
    );
    let rows = b
        .find_all(Locator::Css("#queue tbody tr[data-notice]"))
        .await?;
    assert!(!rows.is_empty(), "the filtered queue is empty");
    for row in &rows {
        assert!(row.text().await?.contains(platform.as_str()));
    }
    // The queue as a reviewer sees it, kept as a test artefact.
    let shot = b.screenshot().await?;
    let shot_path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("queue.png");
    std::fs::write(&shot_path, &shot).unwrap();
    assert!(shot.starts_with(b"\x89PNG"));
    println!("queue screenshot: {}", shot_path.display());

    // Open the draft and approve it.
    let id = seeded.draft_id;
    b.find(Locator::Css(&format!("a.open[href='/notices/{id}']")))
        .await?
        .click()
        .await?;
    b.wait().for_element(Locator::Id("notice-state")).await?;
    assert_eq!(
        b.find(Locator::Id("notice-state")).await?.text().await?,
        "draft"
    );
    b.find(Locator::Id("action-approved"))
        .await?
        .click()
        .await?;
    b.wait().for_element(Locator::Css("p.flash")).await?;
    assert_eq!(
        b.find(Locator::Id("notice-state")).await?.text().await?,
        "approved"
    );

    // Export the platform's approved batch and read the downloaded file.
    b.goto(&web.url(&format!("/queue?platform={platform}&state=approved")))
        .await?;
    b.find(Locator::Id("export-platform"))
        .await?
        .select_by_value(platform)
        .await?;
    b.find(Locator::Id("export-format"))
        .await?
        .select_by_value("csv")
        .await?;
    b.find(Locator::Id("export-button")).await?.click().await?;
    let file = wait_for_download(downloads).await;
    let bytes = std::fs::read(&file).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains(&seeded.draft_item_id),
        "the export {} lacks the approved listing {}:\n{text}",
        file.display(),
        seeded.draft_item_id
    );
    Ok(())
}

/// A reviewer rejects a draft as genuine goods, allowing its shop and title words, then
/// removes one of the rules from the allow-rules page.
#[tokio::test]
async fn reject_with_a_reason_and_allow_rules_in_a_real_browser() {
    let Some((chromium, chromedriver)) =
        tools("reject_with_a_reason_and_allow_rules_in_a_real_browser")
    else {
        return;
    };
    let web = WebServer::start().await;
    web.add_user("rita", Role::Reviewer).await;
    let seeded = common::web::seed_review_data(&web).await;
    let scratch = tempfile::tempdir().unwrap();
    let driver = start_driver(&chromedriver);
    let b = open_browser(
        &driver,
        &chromium,
        &scratch.path().join("p"),
        scratch.path(),
    )
    .await;
    let result = reject_with_feedback(&b, &web, seeded.draft_id).await;
    if let Err(e) = &result {
        eprintln!(
            "browser step failed: {e}\n{}",
            b.source().await.unwrap_or_default()
        );
    }
    b.close().await.ok();
    result.unwrap();
}

async fn reject_with_feedback(
    b: &Client,
    web: &WebServer,
    id: i64,
) -> Result<(), fantoccini::error::CmdError> {
    b.goto(&web.url(&format!("/notices/{id}"))).await?;
    b.find(Locator::Id("name")).await?.send_keys("rita").await?;
    b.find(Locator::Id("password"))
        .await?
        .send_keys(PASSWORD)
        .await?;
    b.find(Locator::Id("login")).await?.click().await?;
    b.wait().for_element(Locator::Id("reject-why")).await?;
    b.find(Locator::Id("reject-why"))
        .await?
        .select_by_value("genuine_goods")
        .await?;
    b.find(Locator::Css("input.allow-seller"))
        .await?
        .click()
        .await?;
    b.find(Locator::Id("allow-title"))
        .await?
        .send_keys("Air Max")
        .await?;
    b.find(Locator::Id("action-rejected"))
        .await?
        .click()
        .await?;
    b.wait().for_element(Locator::Css("p.flash")).await?;
    let flash = b.find(Locator::Css("p.flash")).await?.text().await?;
    assert_eq!(flash, "Rejected; 2 allow rule(s) added.");
    assert_eq!(
        b.find(Locator::Id("notice-state")).await?.text().await?,
        "rejected"
    );

    b.goto(&web.url("/allow")).await?;
    let rows = b
        .find_all(Locator::Css("#allow-rules tr[data-rule]"))
        .await?;
    assert_eq!(rows.len(), 2);
    let first = rows[0].text().await?;
    assert!(
        first.contains("莆田鞋业直销") && first.contains("genuine goods"),
        "{first}"
    );
    assert!(rows[1].text().await?.contains("Air Max"));
    rows[0]
        .find(Locator::Css("button.danger"))
        .await?
        .click()
        .await?;
    b.wait().for_element(Locator::Css("p.flash")).await?;
    let rows = b
        .find_all(Locator::Css("#allow-rules tr[data-rule]"))
        .await?;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].text().await?.contains("Air Max"));
    Ok(())
}

/// The dashboard's charts and a seller network's page, as a brand owner's browser shows them;
/// screenshots are kept as test artefacts.
#[tokio::test]
async fn dashboard_charts_and_a_seller_network_in_a_real_browser() {
    let Some((chromium, chromedriver)) =
        tools("dashboard_charts_and_a_seller_network_in_a_real_browser")
    else {
        return;
    };
    let web = WebServer::start().await;
    web.add_user("olga", Role::Viewer).await;
    let today = chrono::Utc::now().date_naive();
    markwatch::seed_notices(&web.store, 300, 5, |_| {})
        .await
        .unwrap();
    markwatch::seed_history(&web.store, 13, 5, today, |_| {})
        .await
        .unwrap();
    // Two shop names behind one seller id: a network.
    let shop = |item: &str, seller: &str| markwatch::SeedListing {
        platform: "taobao".into(),
        item_id: item.into(),
        title: "耐克 运动鞋 高仿".into(),
        seller: seller.into(),
        seller_id: Some("77001".into()),
        ship_from: Some("福建 莆田".into()),
        price: 99.0,
        brand: "Nike".into(),
        verdict: "infringing",
        score: 0.9,
    };
    markwatch::seed_notice(
        &web.store,
        &[shop("880001", "鞋王小店"), shop("880002", "球鞋之家")],
    )
    .await
    .unwrap();

    let scratch = tempfile::tempdir().unwrap();
    let profile = scratch.path().join("profile");
    let downloads = scratch.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let driver = start_driver(&chromedriver);
    let b = open_browser(&driver, &chromium, &profile, &downloads).await;
    let result = look_at_trends(&b, &web).await;
    if let Err(e) = &result {
        let source = b.source().await.unwrap_or_default();
        eprintln!("browser step failed: {e}\n{source}");
    }
    b.close().await.ok();
    result.unwrap();
}

fn artefact(name: &str, png: &[u8]) {
    assert!(png.starts_with(b"\x89PNG"));
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {}", path.display());
}

async fn look_at_trends(b: &Client, web: &WebServer) -> Result<(), fantoccini::error::CmdError> {
    b.goto(&web.url("/login")).await?;
    b.find(Locator::Id("name")).await?.send_keys("olga").await?;
    b.find(Locator::Id("password"))
        .await?
        .send_keys(PASSWORD)
        .await?;
    b.find(Locator::Id("login")).await?.click().await?;
    b.wait().for_element(Locator::Id("trends")).await?;

    // Every chart is drawn at a readable size, its title on it.
    let sizes = b
        .execute(
            "return [...document.querySelectorAll('figure.trend svg')].map(s => {
                 const r = s.getBoundingClientRect();
                 return [s.querySelector('title').textContent, Math.round(r.width), Math.round(r.height)];
             });",
            vec![],
        )
        .await?;
    let sizes = sizes.as_array().unwrap();
    assert_eq!(sizes.len(), 6, "{sizes:?}");
    for s in sizes {
        assert!(
            s[1].as_i64().unwrap() >= 400 && s[2].as_i64().unwrap() >= 150,
            "{s:?}"
        );
    }
    artefact("dashboard.png", &b.screenshot().await?);

    // The numbers behind a chart, one click away.
    let details = b.find(Locator::Css("#chart-cases details summary")).await?;
    details.click().await?;
    let table = b.find(Locator::Css("#chart-cases table")).await?;
    assert!(table.is_displayed().await?);
    assert!(table.text().await?.contains("counter-noticed"));

    // Filter to one brand over a year.
    b.find(Locator::Css("form.trend-filter select[name=brand]"))
        .await?
        .select_by_value("Nike")
        .await?;
    b.find(Locator::Css("form.trend-filter select[name=weeks]"))
        .await?
        .select_by_value("52")
        .await?;
    b.find(Locator::Css("form.trend-filter button"))
        .await?
        .click()
        .await?;
    let mut url = b.current_url().await?;
    for _ in 0..50 {
        if url.query().unwrap_or("").contains("brand=Nike") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        url = b.current_url().await?;
    }
    assert!(url.query().unwrap_or("").contains("weeks=52"), "{url}");
    let totals = b.find(Locator::Id("trend-totals")).await?.text().await?;
    assert!(
        totals.starts_with("In these 52 weeks for Nike:"),
        "{totals}"
    );
    artefact("dashboard-nike-52w.png", &b.screenshot().await?);

    // The seller network, from the sellers page.
    b.goto(&web.url("/sellers")).await?;
    b.find(Locator::XPath(
        "//table[@id='networks']//tr[td[contains(., '鞋王小店')]]//a",
    ))
    .await?
    .click()
    .await?;
    b.wait().for_element(Locator::Id("shops")).await?;
    let shops = b.find(Locator::Id("shops")).await?.text().await?;
    assert!(
        shops.contains("鞋王小店") && shops.contains("球鞋之家"),
        "{shops}"
    );
    let graph = b
        .execute(
            "const s = document.querySelector('figure.network svg');
             return [s.querySelectorAll('circle').length, s.querySelectorAll('line').length,
                     Math.round(s.getBoundingClientRect().width)];",
            vec![],
        )
        .await?;
    assert_eq!(graph[0], 2, "two shops: {graph}");
    assert!(graph[2].as_i64().unwrap() >= 400, "{graph}");
    // A viewer sees the network but is not offered the drafting.
    assert!(b.find(Locator::Id("draft-network")).await.is_err());
    artefact("seller-network.png", &b.screenshot().await?);
    Ok(())
}
