//! Evaluation against a labelled set (`markwatch eval`): precision, recall and F1 overall
//! and per kind, the false-positive rate of each kind's honest listings, and the 3x3
//! confusion matrix of labelled against predicted verdicts. A listing counts as flagged when its
//! verdict is infringing or suspect.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::BufRead;

use rayon::prelude::*;
use serde::Deserialize;

use super::{ListingRecord, MatchFileError, Matcher, Outcome};

/// The expected verdict for one listing.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Label {
    pub id: String,
    pub verdict: Outcome,
    #[serde(default)]
    pub brand: Option<String>,
    /// The pattern the listing shows: "homoglyph", "compatibility", ...
    pub kind: String,
    #[serde(default)]
    pub note: Option<String>,
}

/// Reads a JSON Lines labels file; a bad line is an error naming it.
pub fn read_labels(input: impl BufRead) -> Result<Vec<Label>, MatchFileError> {
    let mut out = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(MatchFileError::Read)?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line).map_err(|e| MatchFileError::BadLine {
                line: i + 1,
                message: super::jsonl::json_message(&e),
            })?,
        );
    }
    Ok(out)
}

/// Figures for one kind of listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KindStats {
    /// Whether any of the kind's listings should be flagged.
    pub positive: bool,
    pub listings: usize,
    pub flagged: usize,
    /// Listings labelled flagged (infringing or suspect), and of those, flagged.
    pub labelled_flagged: usize,
    pub true_positives: usize,
    /// Honest listings flagged.
    pub false_positives: usize,
    /// Flagged with the labelled brand (positive kinds).
    pub right_brand: usize,
    /// Given exactly the labelled verdict (infringing, suspect or clear).
    pub same_verdict: usize,
}

impl KindStats {
    /// Recall for a positive kind, false-positive rate for an honest one.
    pub fn rate(&self) -> f64 {
        ratio(self.flagged, self.listings)
    }

    /// Of the kind's flagged listings, those labelled flagged; None if none was flagged.
    pub fn precision(&self) -> Option<f64> {
        (self.flagged > 0).then(|| ratio(self.true_positives, self.flagged))
    }

    /// Of the kind's listings labelled flagged, those flagged; None if there are none.
    pub fn recall(&self) -> Option<f64> {
        (self.labelled_flagged > 0).then(|| ratio(self.true_positives, self.labelled_flagged))
    }

    /// Of the kind's honest listings, those flagged; None if there are none.
    pub fn false_positive_rate(&self) -> Option<f64> {
        let honest = self.listings - self.labelled_flagged;
        (honest > 0).then(|| ratio(self.false_positives, honest))
    }
}

/// A listing the matcher got wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Miss {
    pub id: String,
    pub kind: String,
    pub expected: Outcome,
    pub got: Outcome,
    pub title: String,
    pub reasons: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalReport {
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    pub true_negatives: usize,
    pub kinds: BTreeMap<String, KindStats>,
    /// confusion[labelled][predicted], in the order infringing, suspect, clear.
    pub confusion: [[usize; 3]; 3],
    /// Listings with no label, and labels with no listing.
    pub unlabelled: Vec<String>,
    pub missing: Vec<String>,
    pub misses: Vec<Miss>,
    /// Listings labelled of kind `image` given without their photos' hashes: only a crawl,
    /// which fetches the photos, can judge them (tests/images.rs does).
    pub photo_only: Vec<String>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn slot(o: Outcome) -> usize {
    match o {
        Outcome::Infringing => 0,
        Outcome::Suspect => 1,
        Outcome::Clear => 2,
    }
}

impl EvalReport {
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    pub(crate) fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

/// Matches every labelled listing and compares.
pub fn evaluate(matcher: &Matcher, listings: &[ListingRecord], labels: &[Label]) -> EvalReport {
    let by_id: HashMap<&str, &Label> = labels.iter().map(|l| (l.id.as_str(), l)).collect();
    let verdicts: Vec<_> = listings
        .par_iter()
        .map(|l| (l, matcher.check(&l.item())))
        .collect();
    let mut report = EvalReport::default();
    for (listing, verdict) in &verdicts {
        let Some(label) = by_id.get(listing.id.as_str()) else {
            report.unlabelled.push(listing.id.clone());
            continue;
        };
        if label.kind == "image" && listing.image_hashes.is_empty() {
            report.photo_only.push(listing.id.clone());
            continue;
        }
        let expected = label.verdict.is_flagged();
        let got = verdict.verdict.is_flagged();
        match (expected, got) {
            (true, true) => report.true_positives += 1,
            (false, true) => report.false_positives += 1,
            (true, false) => report.false_negatives += 1,
            (false, false) => report.true_negatives += 1,
        }
        report.confusion[slot(label.verdict)][slot(verdict.verdict)] += 1;
        let stats = report.kinds.entry(label.kind.clone()).or_default();
        stats.positive |= expected;
        stats.listings += 1;
        if expected {
            stats.labelled_flagged += 1;
        }
        match (expected, got) {
            (true, true) => stats.true_positives += 1,
            (false, true) => stats.false_positives += 1,
            _ => {}
        }
        if verdict.verdict == label.verdict {
            stats.same_verdict += 1;
        }
        if got {
            stats.flagged += 1;
            if expected && verdict.brand.is_some() && verdict.brand == label.brand {
                stats.right_brand += 1;
            }
        }
        if expected != got {
            report.misses.push(Miss {
                id: listing.id.clone(),
                kind: label.kind.clone(),
                expected: label.verdict,
                got: verdict.verdict,
                title: listing.title.clone(),
                reasons: verdict
                    .reasons
                    .iter()
                    .map(|r| r.detail.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
    }
    let listed: std::collections::HashSet<&str> = listings.iter().map(|l| l.id.as_str()).collect();
    report.missing = labels
        .iter()
        .filter(|l| !listed.contains(l.id.as_str()))
        .map(|l| l.id.clone())
        .collect();
    report
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n =
            self.true_positives + self.false_positives + self.false_negatives + self.true_negatives;
        writeln!(f, "{n} labelled listings (flagged = infringing or suspect)")?;
        writeln!(
            f,
            "overall  precision {:.3}  recall {:.3}  F1 {:.3}   (TP {}, FP {}, FN {}, TN {})",
            self.precision(),
            self.recall(),
            self.f1(),
            self.true_positives,
            self.false_positives,
            self.false_negatives,
            self.true_negatives
        )?;
        writeln!(f)?;
        let figure = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |x| format!("{x:.3}"));
        writeln!(
            f,
            "kind                      n  flagged  precision  recall  FP rate  brand right  same verdict"
        )?;
        // Positive kinds first, then the honest ones: where recall and precision are spent.
        let kinds = self.kinds.iter().filter(|(_, s)| s.positive);
        for (kind, s) in kinds.chain(self.kinds.iter().filter(|(_, s)| !s.positive)) {
            writeln!(
                f,
                "  {kind:<22} {:>4}  {:>7}  {:>9}  {:>6}  {:>7}  {:>11}  {:>12}",
                s.listings,
                s.flagged,
                figure(s.precision()),
                figure(s.recall()),
                figure(s.false_positive_rate()),
                s.right_brand,
                s.same_verdict
            )?;
        }
        writeln!(f)?;
        writeln!(f, "confusion (rows: labelled, columns: predicted)")?;
        writeln!(f, "              infringing   suspect     clear")?;
        for (i, name) in ["infringing", "suspect", "clear"].iter().enumerate() {
            let row = self.confusion[i];
            writeln!(f, "  {name:<10} {:>10} {:>9} {:>9}", row[0], row[1], row[2])?;
        }
        if !self.photo_only.is_empty() {
            writeln!(
                f,
                "\n{} listings labelled `image` are judged by their photos, which a crawl fetches; not counted here",
                self.photo_only.len()
            )?;
        }
        if !self.unlabelled.is_empty() {
            writeln!(
                f,
                "\nlistings without a label: {}",
                self.unlabelled.join(", ")
            )?;
        }
        if !self.missing.is_empty() {
            writeln!(f, "\nlabels without a listing: {}", self.missing.join(", "))?;
        }
        if !self.misses.is_empty() {
            writeln!(f, "\nmisses:")?;
            for m in &self.misses {
                writeln!(
                    f,
                    "  {} [{}] expected {}, got {}: {}\n      {}",
                    m.id, m.kind, m.expected, m.got, m.title, m.reasons
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::read_listings;
    use crate::matcher::tests_support::matcher;

    #[test]
    fn counts_flags_per_kind_and_fills_the_confusion_matrix() {
        let listings = read_listings(
            concat!(
                r#"{"id":"1","title":"高仿 耐克 运动鞋","seller":"s","price":99}"#,
                "\n",
                r#"{"id":"2","title":"纯棉 T恤","seller":"s","price":30}"#,
                "\n",
                r#"{"id":"3","title":"适用于苹果 手机壳","seller":"s","price":19}"#,
                "\n",
                r#"{"id":"4","title":"运动鞋 男 透气","seller":"s","price":99}"#,
                "\n",
            )
            .as_bytes(),
        )
        .unwrap();
        let labels = read_labels(
            concat!(
                r#"{"id":"1","verdict":"infringing","brand":"Nike","kind":"counterfeit_term","note":""}"#,
                "\n",
                r#"{"id":"2","verdict":"clear","brand":null,"kind":"ordinary","note":""}"#,
                "\n",
                r#"{"id":"3","verdict":"clear","brand":"Apple","kind":"compatibility","note":""}"#,
                "\n",
                r#"{"id":"4","verdict":"infringing","brand":"Nike","kind":"seller_name","note":""}"#,
                "\n",
                r#"{"id":"5","verdict":"clear","brand":null,"kind":"ordinary","note":""}"#,
                "\n",
            )
            .as_bytes(),
        )
        .unwrap();
        let report = evaluate(matcher(), &listings, &labels);
        assert_eq!(
            (
                report.true_positives,
                report.false_positives,
                report.false_negatives,
                report.true_negatives
            ),
            (1, 0, 1, 2)
        );
        assert_eq!(report.precision(), 1.0);
        assert_eq!(report.recall(), 0.5);
        assert!((report.f1() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(report.confusion[0], [1, 0, 1]);
        assert_eq!(report.confusion[2], [0, 0, 2]);
        assert_eq!(report.kinds["counterfeit_term"].right_brand, 1);
        assert!(!report.kinds["compatibility"].positive);
        assert_eq!(report.kinds["seller_name"].recall(), Some(0.0));
        assert_eq!(report.kinds["counterfeit_term"].precision(), Some(1.0));
        assert_eq!(report.kinds["ordinary"].false_positive_rate(), Some(0.0));
        assert_eq!(report.kinds["ordinary"].recall(), None);
        assert_eq!(report.missing, ["5"]);
        assert_eq!(report.misses.len(), 1);
        let text = report.to_string();
        assert!(text.contains("precision 1.000  recall 0.500"), "{text}");
        assert!(text.contains("labels without a listing: 5"), "{text}");
    }

    #[test]
    fn a_bad_label_line_names_its_number() {
        let err = read_labels("\n{\"id\":\"1\",\"verdict\":\"maybe\",\"kind\":\"x\"}\n".as_bytes())
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("line 2: unknown variant `maybe`"),
            "{err}"
        );
    }
}
