//! Offline matching of JSON Lines files (`markwatch match`): one listing per input line,
//! one verdict per output line, in input order, using every core.

use std::io::{BufRead, Write};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Item, Matcher, Outcome, Verdict};

/// Lines matched in parallel per chunk: big enough to keep every core busy, small enough
/// to keep memory flat on large files.
const CHUNK: usize = 4096;

/// One input line. Unknown fields are ignored; `category` may be a string or a breadcrumb
/// array (joined with " > ").
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ListingRecord {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    #[serde(default)]
    pub platform: String,
    pub title: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub seller: String,
    #[serde(default)]
    pub price: Option<f64>,
    #[serde(default, deserialize_with = "category")]
    pub category: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    /// ISO 4217 code of `price` [default: CNY].
    #[serde(default)]
    pub currency: Option<String>,
    /// The page marks the shop as the platform's own (京东自营).
    #[serde(default)]
    pub self_operated: bool,
    /// Perceptual hashes of the listing's photos (`markwatch` writes none; an image pipeline
    /// of one's own may).
    #[serde(default)]
    pub image_hashes: Vec<u64>,
}

impl ListingRecord {
    pub fn item(&self) -> Item<'_> {
        Item {
            title: &self.title,
            seller: &self.seller,
            price: self.price,
            currency: self.currency.as_deref().unwrap_or(""),
            category: self.category.as_deref(),
            platform: &self.platform,
            self_operated: self.self_operated,
            images: &self.image_hashes,
        }
    }
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        S(String),
        N(serde_json::Number),
    }
    Ok(match Id::deserialize(d)? {
        Id::S(s) => s,
        Id::N(n) => n.to_string(),
    })
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

fn category<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Category {
        Text(String),
        Path(Vec<String>),
    }
    Ok(match Option::<Category>::deserialize(d)? {
        None => None,
        Some(Category::Text(s)) => Some(s),
        Some(Category::Path(p)) => Some(p.join(" > ")),
    }
    .filter(|s| !s.trim().is_empty()))
}

/// One output line.
#[derive(Debug, Serialize)]
struct MatchRecord<'a> {
    id: &'a str,
    #[serde(flatten)]
    verdict: &'a Verdict,
}

/// A line that could not be read as a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Listings matched (one output line each).
    pub matched: usize,
    pub infringing: usize,
    pub suspect: usize,
    pub clear: usize,
    /// Lines skipped with `skip_bad`.
    pub skipped: Vec<BadLine>,
}

/// Errors of the offline match and eval commands.
#[derive(Debug, thiserror::Error)]
pub enum MatchFileError {
    /// A line is not a listing (and bad lines are not being skipped).
    #[error("line {line}: {message}")]
    BadLine { line: usize, message: String },
    /// Two listings share an id.
    #[error("line {line}: duplicate id `{id}`")]
    DuplicateId { line: usize, id: String },
    #[error("reading input: {0}")]
    Read(#[source] std::io::Error),
    #[error("writing output: {0}")]
    Write(#[source] std::io::Error),
}

impl MatchFileError {
    /// Whether the input was at fault (rather than the machine).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            MatchFileError::BadLine { .. } | MatchFileError::DuplicateId { .. }
        )
    }
}

/// serde_json's message without its "at line 1": each record is one line of a file.
pub(crate) fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => format!("{} (column {})", &text[..i], e.column()),
        None => text,
    }
}

fn parse_line(line: usize, text: &str) -> Result<ListingRecord, BadLine> {
    serde_json::from_str(text).map_err(|e| BadLine {
        line,
        message: json_message(&e),
    })
}

/// Reads JSON Lines listings from `input`, writes one verdict per listing to `output` in
/// input order. Blank lines are ignored. A bad line stops the run with an error naming
/// it, unless `skip_bad`, in which case it is recorded in the summary and skipped.
pub fn run_jsonl(
    matcher: &Matcher,
    input: impl BufRead,
    mut output: impl Write,
    skip_bad: bool,
) -> Result<Summary, MatchFileError> {
    let mut summary = Summary::default();
    let mut lines = input.lines().enumerate();
    let mut chunk: Vec<(usize, String)> = Vec::with_capacity(CHUNK);
    loop {
        chunk.clear();
        for (i, line) in lines.by_ref() {
            let line = line.map_err(MatchFileError::Read)?;
            if !line.trim().is_empty() {
                chunk.push((i + 1, line));
            }
            if chunk.len() == CHUNK {
                break;
            }
        }
        if chunk.is_empty() {
            break;
        }
        let results: Vec<Result<(String, Verdict), BadLine>> = chunk
            .par_iter()
            .map(|(n, text)| {
                let record = parse_line(*n, text)?;
                let verdict = matcher.check(&record.item());
                Ok((record.id, verdict))
            })
            .collect();
        let mut buf = Vec::with_capacity(results.len() * 200);
        for result in results {
            match result {
                Ok((id, verdict)) => {
                    serde_json::to_writer(
                        &mut buf,
                        &MatchRecord {
                            id: &id,
                            verdict: &verdict,
                        },
                    )
                    .map_err(|e| MatchFileError::Write(e.into()))?;
                    buf.push(b'\n');
                    summary.matched += 1;
                    match verdict.verdict {
                        Outcome::Infringing => summary.infringing += 1,
                        Outcome::Suspect => summary.suspect += 1,
                        Outcome::Clear => summary.clear += 1,
                    }
                }
                Err(bad) if skip_bad => summary.skipped.push(bad),
                Err(bad) => {
                    // Keep what came before the bad line.
                    output.write_all(&buf).map_err(MatchFileError::Write)?;
                    return Err(MatchFileError::BadLine {
                        line: bad.line,
                        message: bad.message,
                    });
                }
            }
        }
        output.write_all(&buf).map_err(MatchFileError::Write)?;
    }
    output.flush().map_err(MatchFileError::Write)?;
    Ok(summary)
}

/// Reads a JSON Lines listings file (the `match` input format, or the catalogue's richer
/// records). Blank lines are ignored; a bad line or a repeated id is an error naming it.
pub fn read_listings(input: impl BufRead) -> Result<Vec<ListingRecord>, MatchFileError> {
    let mut out: Vec<ListingRecord> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(MatchFileError::Read)?;
        if line.trim().is_empty() {
            continue;
        }
        let record = parse_line(i + 1, &line).map_err(|b| MatchFileError::BadLine {
            line: b.line,
            message: b.message,
        })?;
        if !seen.insert(record.id.clone()) {
            return Err(MatchFileError::DuplicateId {
                line: i + 1,
                id: record.id,
            });
        }
        out.push(record);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::tests_support::matcher;

    const GOOD: &str = r#"{"id":"a","platform":"taobao","title":"高仿 耐克 运动鞋","seller":"小店","price":99,"category":null,"url":null}"#;

    fn run(input: &str, skip_bad: bool) -> (Result<Summary, MatchFileError>, String) {
        let mut out = Vec::new();
        let result = run_jsonl(matcher(), input.as_bytes(), &mut out, skip_bad);
        (result, String::from_utf8(out).unwrap())
    }

    #[test]
    fn writes_one_verdict_per_line_in_the_output_shape() {
        let input = format!(
            "{GOOD}\n\n{}\n",
            r#"{"id":"b","platform":"jd","title":"纯棉T恤","seller":null,"price":null,"category":["服装","T恤"],"extra":1}"#
        );
        let (summary, out) = run(&input, false);
        let summary = summary.unwrap();
        assert_eq!(
            (summary.matched, summary.infringing, summary.clear),
            (2, 1, 1)
        );
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["id"], "a");
        assert_eq!(lines[0]["verdict"], "infringing");
        assert_eq!(lines[0]["brand"], "Nike");
        assert_eq!(lines[0]["reasons"][0]["code"], "chinese_name");
        // Fields in the documented order.
        let second = out.lines().nth(1).unwrap();
        let at: Vec<usize> = ["id", "verdict", "score", "brand", "mark", "reasons"]
            .iter()
            .map(|k| second.find(&format!("\"{k}\":")).unwrap())
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{second}");
        assert!(lines[1]["brand"].is_null() && lines[1]["mark"].is_null());
    }

    #[test]
    fn a_bad_line_is_an_error_naming_its_number() {
        let input = format!("{GOOD}\n{{\"id\": 1, \"title\": }}\n{GOOD}\n");
        let (result, out) = run(&input, false);
        match result {
            Err(MatchFileError::BadLine { line, .. }) => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
        // The line before the bad one was written.
        assert_eq!(out.lines().count(), 1);
        let err = run("{\"id\":\"x\"}\n", false).0.unwrap_err();
        assert!(
            err.to_string().starts_with("line 1: missing field `title`"),
            "{err}"
        );
        assert!(err.is_bad_input());
    }

    #[test]
    fn skip_bad_reports_and_goes_on() {
        let input = format!("{GOOD}\nnot json\n{GOOD}\n");
        let (summary, out) = run(&input, true);
        let summary = summary.unwrap();
        assert_eq!(summary.matched, 2);
        assert_eq!(summary.skipped.len(), 1);
        assert_eq!(summary.skipped[0].line, 2);
        assert_eq!(out.lines().count(), 2);
    }

    #[test]
    fn keeps_input_order_across_chunks() {
        let mut input = String::new();
        for i in 0..(CHUNK + 500) {
            input.push_str(&format!(
                "{{\"id\":\"{i}\",\"platform\":\"jd\",\"title\":\"耐克 跑鞋 {i}\",\"seller\":\"s\",\"price\":null,\"category\":null}}\n"
            ));
        }
        let (summary, out) = run(&input, false);
        assert_eq!(summary.unwrap().matched, CHUNK + 500);
        for (i, line) in out.lines().enumerate() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["id"], i.to_string());
        }
    }

    #[test]
    fn reads_catalogue_records_and_refuses_duplicate_ids() {
        let line = r#"{"id":"taobao:1","platform":"taobao","item_id":"1","title":"t","seller":"s","price":1.0,"category":["运动鞋new","跑步鞋"],"keywords":["nike"]}"#;
        let records = read_listings(format!("{line}\n").as_bytes()).unwrap();
        assert_eq!(records[0].category.as_deref(), Some("运动鞋new > 跑步鞋"));
        let err = read_listings(format!("{line}\n\n{line}\n").as_bytes()).unwrap_err();
        assert!(
            matches!(err, MatchFileError::DuplicateId { line: 3, .. }),
            "{err}"
        );
    }
}
