//! Notices and cases through the real binary and a real SQLite file: drafting after a crawl of
//! the fixture platforms, the case lifecycle and its audit rows, exports, evidence packs,
//! relisting, the CN/expiry rules and the good-faith governor.

mod common;

use std::io::{Read, Write};

use markwatch::FixtureOptions;
use markwatch::Listing;
use markwatch::Page;
use markwatch::{Database, Store};
use markwatch::{Outcome, Reason, ReasonCode, Verdict};
use serde_json::Value;

/// A listing as a crawl would store it (its page kept as evidence), judged as given.
struct Seed<'a> {
    platform: &'a str,
    item_id: &'a str,
    title: &'a str,
    seller: &'a str,
    brand: &'a str,
    mark: &'a str,
    verdict: Outcome,
    codes: &'a [ReasonCode],
}

async fn seed(db: &Database, seeds: &[Seed<'_>]) {
    let store = Store::open(db).await.unwrap();
    for s in seeds {
        let listing = Listing {
            platform: s.platform.into(),
            item_id: s.item_id.into(),
            url: format!("https://item.example/{}/{}", s.platform, s.item_id),
            title: s.title.into(),
            seller: Some(s.seller.into()),
            price: Some(59.0),
            currency: "CNY".into(),
            ..Listing::default()
        };
        let page = Page {
            url: format!("http://127.0.0.1:1/{}/search?q={}", s.platform, s.item_id),
            final_url: format!("http://127.0.0.1:1/{}/search?q={}", s.platform, s.item_id),
            status: 200,
            headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
            body: format!("<html><body><li>{}</li></body></html>", s.title).into_bytes(),
            fetched_at: chrono::Utc::now(),
            attempts: 1,
        };
        let verdict = Verdict {
            verdict: s.verdict,
            score: if s.verdict == Outcome::Infringing {
                0.9
            } else {
                0.6
            },
            brand: Some(s.brand.into()),
            mark: Some(s.mark.into()),
            reasons: s
                .codes
                .iter()
                .map(|c| Reason {
                    code: *c,
                    detail: format!("{} in \"{}\"", s.mark, s.title),
                })
                .collect(),
        };
        let run = store.start_crawl_run(s.platform, None).await.unwrap();
        markwatch::record_page(&store, run, &page, &[listing], &|_| verdict.clone())
            .await
            .unwrap();
    }
    store.close().await;
}

fn seed_one<'a>(platform: &'a str, item_id: &'a str, title: &'a str, seller: &'a str) -> Seed<'a> {
    Seed {
        platform,
        item_id,
        title,
        seller,
        brand: "Nike",
        mark: "NIKE",
        verdict: Outcome::Infringing,
        codes: &[ReasonCode::MarkExact, ReasonCode::CounterfeitTerm],
    }
}

/// A scratch database with the demo registry, and a config naming the crawler definitions.
fn scratch() -> (common::Scratch, tokio::runtime::Runtime) {
    let s = common::Scratch::new();
    s.write(
        "markwatch.toml",
        &format!(
            "[crawl]\ndefinitions = \"{}\"\n",
            common::repo().join("crawlers").display()
        ),
    );
    s.run(&["brands", "import", common::demo_brands().to_str().unwrap()])
        .ok();
    (s, tokio::runtime::Runtime::new().unwrap())
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn notices(s: &common::Scratch, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["queue", "list", "--json", "--limit", "500"];
    all.extend_from_slice(args);
    json(&s.run(&all).ok())["notices"]
        .as_array()
        .unwrap()
        .clone()
}

fn show(s: &common::Scratch, id: i64) -> Value {
    json(&s.run(&["queue", "show", &id.to_string(), "--json"]).ok())
}

#[test]
fn crawl_drafts_notices_and_a_case_runs_its_course() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _fixture = rt.block_on(common::Running::start(FixtureOptions::from_source_tree()));
    let base = format!("http://{}", _fixture.addr);
    let s = common::Scratch::new();
    s.run(&["brands", "import", common::demo_brands().to_str().unwrap()])
        .ok();
    let cfg = s.write(
        "markwatch.toml",
        &format!(
            "[crawl]\ndefinitions = \"{}\"\n[platforms.tmall]\nbase_url = \"{base}/tmall\"\nlogin_required = false\nfetch = \"http\"\n",
            common::repo().join("crawlers").display()
        ),
    );
    let cfg = cfg.to_str().unwrap();
    let out = s
        .run(&[
            "--config",
            cfg,
            "crawl",
            "--once",
            "--platform",
            "tmall",
            "--keyword",
            "迪奥",
            "--no-details",
        ])
        .ok();
    let queued: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("drafts queued: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no drafts line: {out}"));
    assert!(queued > 0, "{out}");
    // Idempotent: nothing new to draft.
    let again = s.run(&["--config", cfg, "queue", "draft"]).ok();
    assert!(again.contains("0 listing(s) in 0 new"), "{again}");

    let drafts = notices(&s, &["--platform", "tmall", "--state", "draft"]);
    let total: i64 = drafts
        .iter()
        .map(|n| n["item_count"].as_i64().unwrap())
        .sum();
    assert_eq!(total as u64, queued);
    // The fixture's CRLF-titled 迪奥 lipstick is among them, with its evidence and reasons.
    let (id, item) = drafts
        .iter()
        .find_map(|n| {
            let id = n["id"].as_i64().unwrap();
            let d = show(&s, id);
            d["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["item_id"] == "557178549330")
                .cloned()
                .map(|i| (id, i))
        })
        .expect("the 迪奥 lipstick is drafted");
    assert!(
        item["title"]
            .as_str()
            .unwrap()
            .contains("\r\nBcc: victim@example.com")
    );
    assert_eq!(item["evidence"][0]["sha256"].as_str().unwrap().len(), 64);
    assert!(!item["reasons"].as_array().unwrap().is_empty());
    let notice = show(&s, id);
    assert_eq!(notice["brand"], "Dior");
    assert_eq!(notice["jurisdiction"], "CN");

    // The lifecycle, through the CLI, one audit row per step.
    let sid = id.to_string();
    s.run(&["queue", "approve", &sid, "--note", "clear fake"])
        .ok();
    s.run(&["queue", "file", &sid, "--ref", "IPP-2026-0042"])
        .ok();
    s.run(&[
        "queue",
        "resolve",
        &sid,
        "--outcome",
        "counter-noticed",
        "--note",
        "seller claims stock",
    ])
    .ok();
    let due = s.run(&["cases", "deadlines", "--within", "15"]).ok();
    let deadline = (chrono::Utc::now().date_naive() + chrono::Days::new(15)).to_string();
    assert!(
        due.contains(&deadline) && due.contains("IPP-2026-0042"),
        "{due}"
    );
    let none = s.run(&["cases", "deadlines", "--within", "3"]).ok();
    assert!(none.contains("0 case(s)"), "{none}");
    s.run(&[
        "queue",
        "resolve",
        &sid,
        "--outcome",
        "closed",
        "--note",
        "suit filed",
    ])
    .ok();
    let refused = s.run(&["queue", "approve", &sid]);
    assert_eq!(refused.code(), 2, "{}", refused.stderr());
    assert!(
        refused.stderr().contains("from closed to approved"),
        "{}",
        refused.stderr()
    );

    let history = show(&s, id)["history"].as_array().unwrap().clone();
    let steps: Vec<(String, String, String)> = history
        .iter()
        .map(|h| {
            (
                h["from_state"].as_str().unwrap_or("-").to_owned(),
                h["to_state"].as_str().unwrap().to_owned(),
                h["note"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        steps[1..],
        [
            ("draft".into(), "approved".into(), "clear fake".into()),
            (
                "approved".into(),
                "filed".into(),
                "complaint IPP-2026-0042".into()
            ),
            (
                "filed".into(),
                "counter_noticed".into(),
                "seller claims stock".into()
            ),
            (
                "counter_noticed".into(),
                "closed".into(),
                "suit filed".into()
            ),
        ]
    );
    assert!(
        history[1..]
            .iter()
            .all(|h| h["actor"].as_str().unwrap().starts_with("cli:"))
    );
    assert_eq!(steps[0].1, "draft");
}

#[test]
fn exports_carry_every_required_field_and_hostile_titles_stay_intact_and_inert() {
    let (s, rt) = scratch();
    let hostile = [
        "耐克 高仿 <script>alert(1)</script> 跑鞋",
        "耐克 \"><img src=x onerror=alert(1)> 板鞋",
        "耐克 复刻 气垫\r\nBcc: victim@example.com",
        "=HYPERLINK(\"http://evil.example\",\"耐克\") 高仿",
    ];
    for platform in common::PLATFORMS {
        let seeds: Vec<Seed> = hostile
            .iter()
            .enumerate()
            .map(|(i, t)| Seed {
                item_id: ["B0HOSTILE1", "B0HOSTILE2", "B0HOSTILE3", "B0HOSTILE4"][i],
                ..seed_one(platform, "", t, "某店 \"quoted\"")
            })
            .collect();
        rt.block_on(seed(&s.db(), &seeds));
    }
    s.run(&["queue", "draft"]).ok();
    for n in notices(&s, &["--state", "draft"]) {
        s.run(&["queue", "approve", &n["id"].to_string()]).ok();
    }
    for platform in common::PLATFORMS {
        let def = common::definition(platform);
        let required: Vec<&str> = def
            .complaint
            .export
            .iter()
            .filter(|c| c.required)
            .map(|c| c.header.as_str())
            .collect();
        assert!(required.len() >= 8, "{platform}: {required:?}");

        // CSV: parses back, every required column filled, titles exact (a formula defused).
        let csv_text = s
            .run(&["queue", "export", "--platform", platform, "--format", "csv"])
            .ok();
        let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
        let headers = reader.headers().unwrap().clone();
        let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 4, "{platform}");
        for row in &rows {
            for h in &required {
                assert!(
                    !row[col(h)].trim().is_empty(),
                    "{platform}: `{h}` empty in {row:?}"
                );
            }
        }
        let title_col = def
            .complaint
            .export
            .iter()
            .find(|c| c.value == markwatch::ExportField::Title)
            .unwrap()
            .header
            .clone();
        let mut titles: Vec<String> = rows.iter().map(|r| r[col(&title_col)].to_owned()).collect();
        titles.sort();
        let mut want: Vec<String> = hostile
            .iter()
            .map(|t| {
                if t.starts_with('=') {
                    format!("'{t}")
                } else {
                    (*t).to_owned()
                }
            })
            .collect();
        want.sort();
        assert_eq!(titles, want, "{platform}");

        // JSON: the same titles, exactly, under the form's headings.
        let doc = json(
            &s.run(&[
                "queue",
                "export",
                "--platform",
                platform,
                "--format",
                "json",
            ])
            .ok(),
        );
        let mut titles: Vec<String> = doc["complaints"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["listings"].as_array().unwrap().clone())
            .map(|l| {
                for h in &required {
                    assert!(!l[*h].as_str().unwrap().is_empty(), "{platform}: {h}");
                }
                l[title_col.as_str()].as_str().unwrap().to_owned()
            })
            .collect();
        titles.sort();
        let mut exact: Vec<String> = hostile.iter().map(|t| (*t).to_owned()).collect();
        exact.sort();
        assert_eq!(titles, exact, "{platform}");

        // Text: every title whole, its CRLF shown as an escape, so no forged line.
        for lang in ["zh", "en"] {
            let text = s
                .run(&[
                    "queue",
                    "export",
                    "--platform",
                    platform,
                    "--format",
                    "txt",
                    "--lang",
                    lang,
                ])
                .ok();
            assert!(text.contains("<script>alert(1)</script>"), "{platform}");
            assert!(
                text.contains("\"><img src=x onerror=alert(1)>"),
                "{platform}"
            );
            assert!(
                text.contains("气垫\\r\\nBcc: victim@example.com"),
                "{platform} {lang}: {text}"
            );
            assert!(!text.contains('\r'), "{platform}");
            assert!(!text.lines().any(|l| l.starts_with("Bcc:")), "{platform}");
            assert!(text.contains("DEMO-CN-0000101"), "{platform}");
            assert!(text.contains("Nike Innovate C.V."), "{platform}");
        }
    }
}

#[test]
fn an_evidence_pack_verifies_and_a_tampered_byte_is_detected() {
    let (s, rt) = scratch();
    rt.block_on(seed(
        &s.db(),
        &[
            seed_one("jd", "1001", "耐克 高仿 跑鞋 男", "潮鞋店"),
            seed_one("jd", "1002", "耐克 复刻 板鞋", "潮鞋店二"),
        ],
    ));
    s.run(&["queue", "draft"]).ok();
    let id = notices(&s, &[])[0]["id"].as_i64().unwrap().to_string();
    let pack = s.path("pack.zip");
    let out = s
        .run(&["evidence", "export", &id, "--out", pack.to_str().unwrap()])
        .ok();
    assert!(out.contains("2 listing(s), 2 page(s)"), "{out}");
    let ok = s
        .run(&["evidence", "verify", "--pack", pack.to_str().unwrap()])
        .ok();
    assert!(ok.contains("intact"), "{ok}");

    // The manifest lists each listing's page, hash, time, URL, fields and reasons.
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&pack).unwrap()).unwrap();
    let mut manifest = String::new();
    zip.by_name("manifest.json")
        .unwrap()
        .read_to_string(&mut manifest)
        .unwrap();
    let m = json(&manifest);
    let listing = &m["listings"][0];
    assert_eq!(listing["item_id"], "1001");
    assert_eq!(listing["title"], "耐克 高仿 跑鞋 男");
    assert_eq!(listing["match"]["reasons"][1]["code"], "counterfeit_term");
    let page = &listing["pages"][0];
    let file = page["file"].as_str().unwrap().to_owned();
    assert!(page["fetched_at"].as_str().unwrap().starts_with("20"));
    assert!(page["url"].as_str().unwrap().contains("/jd/search"));
    let mut body = Vec::new();
    zip.by_name(&file).unwrap().read_to_end(&mut body).unwrap();
    use sha2::Digest;
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&body)),
        page["sha256"].as_str().unwrap()
    );
    assert_eq!(
        body,
        "<html><body><li>耐克 高仿 跑鞋 男</li></body></html>".as_bytes()
    );

    // One byte of that page changed inside the zip.
    let tampered = s.path("tampered.zip");
    {
        let mut w = zip::ZipWriter::new(std::fs::File::create(&tampered).unwrap());
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i).unwrap();
            let name = entry.name().unwrap().into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            if name == file {
                bytes[20] ^= 0x20;
            }
            w.start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(&bytes).unwrap();
        }
        w.finish().unwrap();
    }
    let bad = s.run(&["evidence", "verify", "--pack", tampered.to_str().unwrap()]);
    assert_eq!(bad.code(), 1);
    assert!(
        bad.stdout().contains("TAMPERED") && bad.stdout().contains(&file),
        "{}",
        bad.stdout()
    );

    // The store's own chain: intact, then one byte of a stored body changes.
    let ok = s.run(&["evidence", "verify"]).ok();
    assert!(ok.contains("intact: 2 record(s)"), "{ok}");
    rt.block_on(async {
        let mut conn = common::connect(&s.db()).await;
        let mut b = body.clone();
        b[5] ^= 0x01;
        sqlx::query("UPDATE evidence SET body = $1 WHERE id = 1")
            .bind(zstd::encode_all(&b[..], 3).unwrap())
            .execute(&mut conn)
            .await
            .unwrap();
    });
    let broken = s.run(&["evidence", "verify"]);
    assert_eq!(broken.code(), 1);
    assert!(
        broken.stdout().contains("BROKEN at record 1"),
        "{}",
        broken.stdout()
    );
}

#[test]
fn bandai_drafts_without_a_usable_cn_right_are_kept_but_not_fileable() {
    let (s, rt) = scratch();
    let bandai = |platform, item, mark| Seed {
        brand: "Bandai",
        mark,
        ..seed_one(platform, item, "万代 高达 高仿 模型", "模型小铺")
    };
    rt.block_on(seed(
        &s.db(),
        &[
            bandai("taobao", "1", "BANDAI"),
            bandai("tmall", "2", "BANDAI"),
            bandai("taobao", "3", "万代"),
            bandai("jd", "4", "BANDAI"),
        ],
    ));
    let out = s.run(&["queue", "draft"]).ok();
    assert!(out.contains("3 new draft(s) not fileable"), "{out}");
    let all = notices(&s, &["--brand", "bandai"]);
    assert_eq!(all.len(), 4, "nothing dropped");
    let reason = |platform: &str, mark: &str| {
        all.iter()
            .find(|n| n["platform"] == platform && n["mark"] == mark)
            .map(|n| {
                (
                    n["id"].as_i64().unwrap(),
                    n["not_fileable"].as_str().map(str::to_owned),
                )
            })
            .unwrap()
    };
    let (tb, why) = reason("taobao", "BANDAI");
    assert!(why.unwrap().starts_with("no CN registration"));
    assert!(
        reason("tmall", "BANDAI")
            .1
            .unwrap()
            .starts_with("no CN registration")
    );
    let (expired, why) = reason("taobao", "万代");
    assert!(why.unwrap().contains("expired on 2024-03-01"));
    let (jd, why) = reason("jd", "BANDAI");
    assert_eq!(why, None, "JD takes a WIPO registration");

    let listed = s.run(&["queue", "list", "--brand", "Bandai"]).ok();
    assert!(
        listed.contains("not fileable: no CN registration"),
        "{listed}"
    );
    for id in [tb, expired] {
        let r = s.run(&["queue", "approve", &id.to_string()]);
        assert_eq!(r.code(), 2);
        assert!(
            r.stderr().contains("no CN registration")
                || r.stderr().contains("expired on 2024-03-01"),
            "{}",
            r.stderr()
        );
    }
    s.run(&["queue", "approve", &jd.to_string()]).ok();
    s.run(&[
        "queue",
        "reject",
        &expired.to_string(),
        "--note",
        "mark lapsed",
    ])
    .ok();
}

#[test]
fn a_relisted_item_is_linked_to_its_case_and_its_seller_counted() {
    let (s, rt) = scratch();
    rt.block_on(seed(
        &s.db(),
        &[seed_one(
            "taobao",
            "11",
            "NIKE 高仿 空军一号 白色 板鞋",
            "莆田鞋业",
        )],
    ));
    s.run(&["queue", "draft"]).ok();
    let first = notices(&s, &[])[0]["id"].as_i64().unwrap().to_string();
    s.run(&["queue", "approve", &first]).ok();
    s.run(&["queue", "file", &first, "--ref", "IPP-1"]).ok();
    s.run(&["queue", "resolve", &first, "--outcome", "removed"])
        .ok();

    // Back up: same seller with a new item id; and a new shop with a near-identical title.
    rt.block_on(seed(
        &s.db(),
        &[
            seed_one("taobao", "12", "耐克 复刻 跑鞋", "莆田鞋业"),
            seed_one("taobao", "13", "NIKE 高仿 空军一号 白色板鞋!", "新开小店"),
            seed_one("jd", "14", "耐克 高仿", "莆田鞋业"),
        ],
    ));
    let out = s.run(&["queue", "draft"]).ok();
    assert!(out.contains("2 relisted"), "{out}");
    let relisted = notices(&s, &["--relisted"]);
    assert_eq!(relisted.len(), 1);
    let n = &relisted[0];
    assert_eq!(n["relisted_from"].to_string(), first);
    assert_eq!(n["priority"], 10);
    // Relisted cases come first in the queue.
    assert_eq!(notices(&s, &["--state", "draft"])[0]["id"], n["id"]);
    let d = show(&s, n["id"].as_i64().unwrap());
    let reasons: Vec<&str> = d["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["relisted_reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("same seller `莆田鞋业`")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("title")), "{reasons:?}");

    let repeat = json(&s.run(&["sellers", "repeat", "--json"]).ok());
    let rows = repeat.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{repeat}");
    assert_eq!(rows[0]["seller"], "莆田鞋业");
    assert_eq!(rows[0]["platform"], "taobao");
    assert_eq!(rows[0]["listings"], 2);
    assert_eq!(rows[0]["removed"], 1);
    assert_eq!(rows[0]["relisted"], 1);
}

#[test]
fn the_governor_warns_before_a_batch_that_could_break_the_thresholds() {
    let (s, rt) = scratch();
    let items: Vec<String> = (0..9).map(|i| format!("N{i}")).collect();
    let mut seeds: Vec<Seed> = items
        .iter()
        .map(|i| seed_one("taobao", i, "NIKE 高仿", "店"))
        .collect();
    seeds.push(Seed {
        mark: "耐克",
        ..seed_one("taobao", "R1", "耐克 高仿", "店")
    });
    seeds.push(Seed {
        mark: "AIR JORDAN",
        verdict: Outcome::Suspect,
        codes: &[ReasonCode::MarkExact],
        ..seed_one("taobao", "S1", "AIR JORDAN 1", "店")
    });
    rt.block_on(seed(&s.db(), &seeds));
    s.run(&["queue", "draft"]).ok();
    let by_mark =
        |mark: &str| notices(&s, &[]).iter().find(|n| n["mark"] == mark).unwrap()["id"].to_string();
    let (removed, rejected, risky) = (by_mark("NIKE"), by_mark("耐克"), by_mark("AIR JORDAN"));
    for id in [&removed, &rejected, &risky] {
        s.run(&["queue", "approve", id]).ok();
    }
    let first = s.run(&[
        "queue", "file", &removed, &rejected, "--ref", "IPP-A", "--ref", "IPP-B",
    ]);
    assert!(!first.stderr().contains("warning:"), "{}", first.stderr());
    first.ok();
    s.run(&["queue", "resolve", &removed, "--outcome", "removed"])
        .ok();
    s.run(&[
        "queue",
        "reject",
        &rejected,
        "--note",
        "platform: insufficient proof",
    ])
    .ok();
    let rates = json(&s.run(&["cases", "good-faith", "--json"]).ok());
    assert_eq!(rates[0]["success_rate"], 0.9);
    assert_eq!(rates[0]["at_risk"], false);

    // 9 of 10 upheld: one uncertain listing could make it 9 of 11.
    let filed = s.run(&["queue", "file", &risky, "--ref", "IPP-C"]);
    let err = filed.stderr();
    assert!(
        err.contains("warning:") && err.contains("81.8%") && err.contains("90.0%"),
        "{err}"
    );
    filed.ok();
}
