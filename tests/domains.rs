//! The .CN domain watch through the real binary: a real DNS server on loopback (hickory-server
//! serving the fixture zone of squatted names), the fixture HTTP server answering as their
//! sites by Host header, a real database. What a brand owner and a legal team would check:
//! the live squats found and judged, a bystander on a similar name left alone, CNDRP drafts
//! with their deadline, a name registered between two runs reported as new, and a name server
//! that fails or never answers losing nothing.

mod common;

use std::collections::BTreeMap;

use common::web::WebServer;
use common::{Running, Scratch, demo_brands};
use markwatch::Role;
use markwatch::{FixtureOptions, ZoneEntry, serve_zone};
use serde_json::Value;

const BRANDS: [&str; 3] = ["Nike", "Sony", "Dyson"];

/// Runs the binary off the runtime's threads: the DNS and HTTP servers it talks to run on them.
async fn run(scratch: &Scratch, args: &[&str]) -> common::Run {
    let mut cmd = scratch.command();
    cmd.args(args).env_remove("RUST_LOG");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run markwatch"))
        .await
        .unwrap();
    common::Run(out)
}

fn config(scratch: &Scratch, resolver: &str, http_port: u16, timeout: u64) {
    scratch.write(
        "markwatch.toml",
        &format!(
            "[crawl]\ndefinitions = \"{}\"\n\n\
             [domains]\nresolver = \"{resolver}\"\nqueries_per_second = 5000\ntimeout_secs = {timeout}\n\
             http_port = {http_port}\n\n[platforms.domains]\nrequests_per_second = 0\n\n\
             [email]\ntransport = \"file\"\ndir = \"{}\"\n",
            common::repo().join("crawlers").display(),
            scratch.path("outbox").display()
        ),
    );
}

async fn watch(scratch: &Scratch) -> Value {
    let mut args = vec!["--config", "markwatch.toml", "domains", "watch", "--json"];
    for b in BRANDS {
        args.extend(["--brand", b]);
    }
    let out = run(scratch, &args).await;
    serde_json::from_str(out.stdout().trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout(), out.stderr()))
}

/// Each stored domain's state and verdict, by name as people read it.
async fn found(scratch: &Scratch) -> BTreeMap<String, (String, String)> {
    let out = run(scratch, &["domains", "list", "--json"]).await.ok();
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|d| {
            (
                d["display"].as_str().unwrap().to_owned(),
                (
                    d["state"].as_str().unwrap().to_owned(),
                    d["verdict"].as_str().unwrap_or("").to_owned(),
                ),
            )
        })
        .collect()
}

fn names(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn squatted_domains_are_found_judged_drafted_and_followed() {
    let fixtures = Running::start(FixtureOptions {
        fixtures_dir: common::repo().join("fixtures"),
        ..FixtureOptions::default()
    })
    .await;
    let zone = fixtures.server.zone();
    let dns = serve_zone(zone.clone()).await.unwrap();
    let scratch = Scratch::new();
    run(
        &scratch,
        &["brands", "import", demo_brands().to_str().unwrap()],
    )
    .await
    .ok();
    config(&scratch, &dns.addr().to_string(), fixtures.addr.port(), 2);

    // 1. The first run finds every live squat of the three brands, and the bystanders.
    let first = watch(&scratch).await;
    let report = &first["domains"];
    assert_eq!(first["run"]["status"], "ok", "{first:#}");
    assert_eq!(report["failed"], 0);
    assert_eq!(report["registered"], 9, "{report:#}");
    assert_eq!(
        names(&report["flagged"]),
        [
            "daisen.cn",
            "naike.cn",
            "nike-outlet.com.cn",
            "nikeshop.net.cn",
            "suoni.cn",
            "奈克.cn",
            "耐克.中国",
        ]
    );
    let stored = found(&scratch).await;
    let expect = |name: &str, state: &str, verdict: &str| {
        assert_eq!(
            stored.get(name),
            Some(&(state.to_owned(), verdict.to_owned())),
            "{name}: {stored:?}"
        );
    };
    // Pinyin, the Chinese name as an IDN, a homophone, the mark with a shop's word (a GBK page).
    expect("naike.cn", "web", "infringing");
    expect("耐克.中国", "web", "infringing");
    expect("奈克.cn", "web", "infringing");
    expect("nike-outlet.com.cn", "web", "infringing");
    expect("daisen.cn", "web", "infringing");
    // Offered for sale; mail and no website.
    expect("suoni.cn", "web", "suspect");
    expect("nikeshop.net.cn", "mail_only", "suspect");
    // Bystanders on names the watch generates: judged, not flagged.
    expect("nk.cn", "web", "clear");
    expect("laike.cn", "web", "clear");

    // The brand owner hears of them by email, as of infringing listings.
    run(&scratch, &["--config", "markwatch.toml", "alerts", "send"])
        .await
        .ok();
    let nike_mail = std::fs::read_dir(scratch.path("outbox"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .find(|m| m.contains("To: ip@nike.example"))
        .expect("an alert to Nike's contact");
    for want in [
        "Subject: [markwatch] Nike: 4 new infringing domains",
        "naike.cn",
        "A .CN domain made from the mark (domain watch)",
    ] {
        assert!(nike_mail.contains(want), "missing {want:?}:\n{nike_mail}");
    }

    // Each flagged domain is one CNDRP draft, in the queue under the `domains` definition.
    let queue = run(
        &scratch,
        &["queue", "list", "--platform", "domains", "--json"],
    )
    .await
    .ok();
    let page: Value = serde_json::from_str(&queue).unwrap();
    let drafts = page["notices"].as_array().unwrap();
    assert_eq!(drafts.len(), 7, "{queue}");
    assert!(drafts.iter().all(|n| n["kind"] == "domain"), "{queue}");
    // A listing's title is the domain, then its page's title.
    let naike = drafts
        .iter()
        .find(|n| n["lead_title"].as_str().unwrap().starts_with("naike.cn "))
        .map(|n| n["id"].as_i64().unwrap())
        .unwrap();
    let text = run(
        &scratch,
        &["queue", "show", &naike.to_string(), "--text", "zh"],
    )
    .await
    .ok();
    assert!(text.contains("国家顶级域名争议解决办法"), "{text}");
    assert!(text.contains("投诉期限"), "{text}");
    // The registration date is WHOIS's: until recorded, the deadline is an upper bound.
    assert!(text.contains("注册日期未核实"), "{text}");
    assert!(text.contains("争议域名：naike.cn"), "{text}");
    assert!(text.contains("汉语拼音"), "{text}");

    // 2. WHOIS facts make the deadline exact.
    run(
        &scratch,
        &[
            "domains",
            "whois",
            "naike.cn",
            "--registered-on",
            "2025-03-01",
            "--registrant",
            "某某贸易有限公司",
        ],
    )
    .await
    .ok();
    let text = run(
        &scratch,
        &["queue", "show", &naike.to_string(), "--text", "en"],
    )
    .await
    .ok();
    assert!(text.contains("Last day to file: 2028-02-29"), "{text}");
    assert!(text.contains("某某贸易有限公司"), "{text}");

    // A reviewer sees the domain, how it copies the mark, and WHOIS's facts on the notice page.
    let web = WebServer::start_on(scratch.db()).await;
    web.add_user("legal", Role::Reviewer).await;
    let client = web.client();
    web.login(&client, "legal").await;
    let page = web.text(&client, &format!("/notices/{naike}")).await;
    for want in [
        "naike.cn: pinyin of 耐克",
        "Registered</dt><dd>2025-03-01 by 某某贸易有限公司",
        "domain site</a> captured",
    ] {
        assert!(page.contains(want), "missing {want:?}:\n{page}");
    }
    // A name with mail and no website is evidenced by its DNS answer, and says so.
    let mail_only = drafts
        .iter()
        .find(|n| {
            n["lead_title"]
                .as_str()
                .unwrap()
                .starts_with("nikeshop.net.cn")
        })
        .map(|n| n["id"].as_i64().unwrap())
        .unwrap();
    let page = web.text(&client, &format!("/notices/{mail_only}")).await;
    assert!(page.contains("dns answer</a> captured"), "{page}");
    drop(web);

    // 3. A name registered between two runs is news; the others are not.
    zone.insert(&ZoneEntry {
        name: "nike-store.cn".to_owned(),
        a: vec!["127.0.0.1".parse().unwrap()],
        html: Some(
            "<title>NIKE STORE 耐克折扣</title><p>耐克 高仿 跑鞋 ¥99 加入购物车</p>".to_owned(),
        ),
        ..ZoneEntry::default()
    });
    let second = watch(&scratch).await;
    assert_eq!(names(&second["domains"]["new"]), ["nike-store.cn"]);
    assert_eq!(names(&second["domains"]["flagged"]).len(), 8);
    assert_eq!(second["drafts"]["created"].as_array().unwrap().len(), 1);

    // 4. A name server that fails for some names, or never answers them: those are counted
    // and nothing stored about them changes.
    zone.fail("naike.cn");
    zone.silence("daisen.cn");
    zone.remove("suoni.cn");
    let before = found(&scratch).await;
    let third = watch(&scratch).await;
    assert_eq!(third["run"]["status"], "partial", "{third:#}");
    assert_eq!(third["domains"]["failed"], 2, "{third:#}");
    assert_eq!(third["domains"]["gone"], 1);
    let after = found(&scratch).await;
    assert_eq!(after["naike.cn"], before["naike.cn"]);
    assert_eq!(after["daisen.cn"], before["daisen.cn"]);
    assert_eq!(after["suoni.cn"].0, "gone");

    // 5. A name server that answers nothing at all: the run stops, says why, loses nothing.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    config(
        &scratch,
        &silent.local_addr().unwrap().to_string(),
        fixtures.addr.port(),
        1,
    );
    let dead = watch(&scratch).await;
    assert_eq!(dead["run"]["status"], "failed", "{dead:#}");
    assert!(
        dead["run"]["error"]
            .as_str()
            .unwrap()
            .contains("answered none"),
        "{dead:#}"
    );
    assert_eq!(found(&scratch).await, after);

    // Every home page was fetched once per run it was looked up in, through the fixture's
    // own sites (Host header), never the platforms.
    let log = fixtures.server.log().entries();
    let naike_fetches = log
        .iter()
        .filter(|r| r.path.starts_with("//naike.cn"))
        .count();
    assert_eq!(naike_fetches, 2, "{log:?}");
}

#[test]
fn candidates_print_with_their_rules() {
    let scratch = Scratch::new();
    let out = scratch
        .run(&[
            "domains",
            "candidates",
            "Nike",
            "--registry",
            demo_brands().to_str().unwrap(),
            "--json",
        ])
        .ok();
    let rules: BTreeMap<String, String> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|c| {
            (
                c["display"].as_str().unwrap().to_owned(),
                c["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(rules["naike.cn"], "pinyin");
    assert_eq!(rules["耐克.中国"], "chinese");
    assert_eq!(rules["奈克.cn"], "homophone_chinese");
    assert_eq!(rules["nk.cn"], "initials");
    assert_eq!(rules["nkie.cn"], "transposition");
    // The brand's own domains are not watched.
    assert!(!rules.contains_key("nike.com.cn"));
}

/// The target: the candidates cover at least 95 % of a hand-written set of squats of the demo
/// brands (fixtures/domains/labelled.tsv), of every kind; dnstwist's permutations cover the
/// Latin ones only (`benches/domains_dnstwist.sh`, docs/benchmarks.md).
#[test]
fn candidates_cover_the_labelled_squats() {
    let brands = markwatch::load_registry(&demo_brands()).unwrap();
    let text =
        std::fs::read_to_string(common::repo().join("fixtures/domains/labelled.tsv")).unwrap();
    let mut by_brand: BTreeMap<String, std::collections::HashSet<String>> = BTreeMap::new();
    for b in &brands {
        by_brand.insert(
            b.name.clone(),
            markwatch::domain_candidates(b, &markwatch::CandidateOptions::default())
                .into_iter()
                .map(|c| c.display)
                .collect(),
        );
    }
    let (mut hit, mut total) = (0, 0);
    let mut kinds = std::collections::BTreeSet::new();
    let mut missed = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        let (domain, brand, kind) = (cols[0], cols[1], cols[2]);
        kinds.insert(kind);
        total += 1;
        if by_brand[brand].contains(domain) {
            hit += 1;
        } else {
            missed.push(domain);
        }
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["homophone", "idn", "initials", "latin", "pinyin"]
    );
    let recall = hit as f64 / total as f64;
    assert!(recall >= 0.95, "recall {recall:.3}, missed {missed:?}");
}
