//! The matcher's word tables: counterfeit wording, originality claims, compatibility and
//! parallel-import wording, and the goods-word -> Nice class map. They are data files in
//! `src/matcher/data/`, compiled in and parsed once when a `Matcher` is built.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::MatcherError;
use super::normalize::shop_key;

const COUNTERFEIT_TERMS: (&str, &str) = (
    "counterfeit_terms.txt",
    include_str!("data/counterfeit_terms.txt"),
);
const ORIGINAL_CLAIMS: (&str, &str) = (
    "original_claims.txt",
    include_str!("data/original_claims.txt"),
);
const PARALLEL_TERMS: (&str, &str) = (
    "parallel_import_terms.txt",
    include_str!("data/parallel_import_terms.txt"),
);
const COMPATIBILITY_TERMS: (&str, &str) = (
    "compatibility_terms.txt",
    include_str!("data/compatibility_terms.txt"),
);
const RISK_TERMS: (&str, &str) = ("risk_terms.txt", include_str!("data/risk_terms.txt"));
const TRUSTED_RETAILERS: (&str, &str) = (
    "trusted_retailers.txt",
    include_str!("data/trusted_retailers.txt"),
);
const GOODS_CLASSES: (&str, &str) = ("goods_classes.tsv", include_str!("data/goods_classes.tsv"));
const ENGLISH_WORDS: (&str, &str) = ("english_words.txt", include_str!("data/english_words.txt"));
const ACCESSORY_TERMS: (&str, &str) = (
    "accessory_terms.txt",
    include_str!("data/accessory_terms.txt"),
);
const OFFICIAL_STORES: (&str, &str) = (
    "official_stores.txt",
    include_str!("data/official_stores.txt"),
);
const EVERYDAY_NAMES: (&str, &str) = (
    "everyday_names.txt",
    include_str!("data/everyday_names.txt"),
);
const NAME_TRAPS: (&str, &str) = ("name_traps.txt", include_str!("data/name_traps.txt"));

/// Where a compatibility term stands relative to the brand it qualifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Before,
    After,
}

/// A term found in a normalised text, as byte offsets into that text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found {
    pub term: usize,
    pub start: usize,
    pub end: usize,
}

/// A list of terms searched for in normalised text (lower case, simplified script).
pub(crate) struct TermList {
    terms: Vec<String>,
    ac: AhoCorasick,
}

impl TermList {
    fn new(file: &'static str, terms: Vec<String>) -> Result<Self, MatcherError> {
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&terms)
            .map_err(|e| MatcherError::Data {
                file,
                line: 0,
                message: e.to_string(),
            })?;
        Ok(TermList { terms, ac })
    }

    pub(super) fn term(&self, i: usize) -> &str {
        &self.terms[i]
    }

    /// Every occurrence; a term that starts or ends with a Latin letter or digit must
    /// stand as a whole word there ("for" is not in "form").
    pub(super) fn find_all(&self, text: &str) -> Vec<Found> {
        self.ac
            .find_iter(text)
            .filter(|m| whole_word(text, m.start(), m.end()))
            .map(|m| Found {
                term: m.pattern().as_usize(),
                start: m.start(),
                end: m.end(),
            })
            .collect()
    }

    pub(super) fn find_first(&self, text: &str) -> Option<Found> {
        self.find_all(text).into_iter().next()
    }
}

/// Whether `text[start..end]` does not continue a Latin word on either side.
pub(crate) fn whole_word(text: &str, start: usize, end: usize) -> bool {
    let bytes = text.as_bytes();
    let inner_first = bytes.get(start).is_some_and(u8::is_ascii_alphanumeric);
    let inner_last = end > 0 && bytes.get(end - 1).is_some_and(u8::is_ascii_alphanumeric);
    let before = start > 0 && bytes[start - 1].is_ascii_alphanumeric();
    let after = bytes.get(end).is_some_and(u8::is_ascii_alphanumeric);
    !(inner_first && before || inner_last && after)
}

/// All word tables, parsed.
pub(crate) struct Context {
    pub counterfeit: TermList,
    pub original: TermList,
    pub parallel: TermList,
    pub risk: TermList,
    /// Shop names of large retailers, as `shop_key` forms.
    pub trusted: Vec<String>,
    pub compatibility: TermList,
    pub compatibility_side: Vec<Side>,
    pub goods: TermList,
    /// Nice classes per goods term; empty for a stop word.
    pub goods_classes: Vec<Vec<u8>>,
    pub english: rustc_hash::FxHashSet<String>,
    /// Goods made to fit another maker's product (cases, films, cables, straps).
    pub accessory: TermList,
    /// The platforms' own stores, by whole shop name and by part of one (`shop_key` forms).
    pub official_shops: Vec<String>,
    pub official_parts: Vec<String>,
    /// Words that make a shop named after a brand its official flagship store.
    pub flagship: Vec<String>,
    /// Marks that are everyday words or proper names beyond the dictionaries.
    pub everyday: rustc_hash::FxHashSet<String>,
    /// Phrases containing a mark that name something else (戴森球 is a game).
    pub traps: TermList,
}

impl Context {
    pub(super) fn load() -> Result<Self, MatcherError> {
        let (compat_terms, compatibility_side) = parse_compatibility(COMPATIBILITY_TERMS)?;
        let (goods_terms, goods_classes) = parse_goods(GOODS_CLASSES)?;
        let (mut official_shops, mut official_parts, mut flagship) = (vec![], vec![], vec![]);
        for term in parse_terms(OFFICIAL_STORES)? {
            if let Some(part) = term.strip_prefix('*') {
                official_parts.push(shop_key(part));
            } else if let Some(word) = term.strip_prefix('@') {
                flagship.push(shop_key(word));
            } else {
                official_shops.push(shop_key(&term));
            }
        }
        Ok(Context {
            counterfeit: TermList::new(COUNTERFEIT_TERMS.0, parse_terms(COUNTERFEIT_TERMS)?)?,
            original: TermList::new(ORIGINAL_CLAIMS.0, parse_terms(ORIGINAL_CLAIMS)?)?,
            parallel: TermList::new(PARALLEL_TERMS.0, parse_terms(PARALLEL_TERMS)?)?,
            risk: TermList::new(RISK_TERMS.0, parse_terms(RISK_TERMS)?)?,
            trusted: parse_terms(TRUSTED_RETAILERS)?
                .iter()
                .map(|t| shop_key(t))
                .collect(),
            compatibility: TermList::new(COMPATIBILITY_TERMS.0, compat_terms)?,
            compatibility_side,
            goods: TermList::new(GOODS_CLASSES.0, goods_terms)?,
            goods_classes,
            english: parse_terms(ENGLISH_WORDS)?.into_iter().collect(),
            accessory: TermList::new(ACCESSORY_TERMS.0, parse_terms(ACCESSORY_TERMS)?)?,
            official_shops,
            official_parts,
            flagship,
            everyday: parse_terms(EVERYDAY_NAMES)?.into_iter().collect(),
            traps: TermList::new(NAME_TRAPS.0, parse_terms(NAME_TRAPS)?)?,
        })
    }

    /// Whether the shop is a platform's own store (京东自营, 天猫超市, Amazon).
    pub(super) fn is_platform_store(&self, shop: &str) -> bool {
        !shop.is_empty()
            && (self.official_shops.iter().any(|s| s == shop)
                || self
                    .official_parts
                    .iter()
                    .any(|p| shop.contains(p.as_str())))
    }

    /// Whether the shop's name calls it an official flagship store (官方旗舰店).
    pub(super) fn is_flagship(&self, shop: &str) -> bool {
        self.flagship.iter().any(|f| shop.contains(f.as_str()))
    }

    /// Whether `word` (lower-case ASCII) is an ordinary English word or a plain
    /// inflection of one.
    pub(super) fn is_english(&self, word: &str) -> bool {
        if self.english.contains(word) {
            return true;
        }
        ["s", "es", "ed", "d", "ing", "ly"].iter().any(|suffix| {
            word.strip_suffix(suffix)
                .is_some_and(|stem| stem.len() >= 5 && self.english.contains(stem))
        })
    }

    /// Nice classes named by the goods words in `text`, with the first word that named one.
    pub(super) fn classes_in(&self, text: &str) -> Option<(Vec<u8>, String)> {
        let mut classes: Vec<u8> = Vec::new();
        let mut first = None;
        for found in self.goods.find_all(text) {
            let these = &self.goods_classes[found.term];
            if these.is_empty() {
                continue;
            }
            first.get_or_insert_with(|| self.goods.term(found.term).to_string());
            classes.extend_from_slice(these);
        }
        classes.sort_unstable();
        classes.dedup();
        first.map(|word| (classes, word))
    }
}

/// Lines of a data file without comments and blank lines, with their 1-based numbers.
fn data_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

/// A term is stored as text will be normalised: lower case, no surrounding blanks.
fn parse_terms((file, text): (&'static str, &str)) -> Result<Vec<String>, MatcherError> {
    let mut terms = Vec::new();
    for (line, term) in data_lines(text) {
        if term.contains('\t') {
            return Err(MatcherError::Data {
                file,
                line,
                message: "expected one term per line, found a tab".into(),
            });
        }
        terms.push(term.to_lowercase());
    }
    if terms.is_empty() {
        return Err(MatcherError::Data {
            file,
            line: 0,
            message: "no terms".into(),
        });
    }
    Ok(terms)
}

fn parse_compatibility(
    (file, text): (&'static str, &str),
) -> Result<(Vec<String>, Vec<Side>), MatcherError> {
    let mut terms = Vec::new();
    let mut sides = Vec::new();
    for (line, row) in data_lines(text) {
        let (side, term) = row.split_once('\t').ok_or_else(|| MatcherError::Data {
            file,
            line,
            message: "expected `before|after<TAB>term`".into(),
        })?;
        let side = match side.trim() {
            "before" => Side::Before,
            "after" => Side::After,
            other => {
                return Err(MatcherError::Data {
                    file,
                    line,
                    message: format!("position must be `before` or `after`, not `{other}`"),
                });
            }
        };
        terms.push(term.trim().to_lowercase());
        sides.push(side);
    }
    Ok((terms, sides))
}

fn parse_goods(
    (file, text): (&'static str, &str),
) -> Result<(Vec<String>, Vec<Vec<u8>>), MatcherError> {
    let mut terms = Vec::new();
    let mut classes = Vec::new();
    for (line, row) in data_lines(text) {
        let (term, list) = row.split_once('\t').ok_or_else(|| MatcherError::Data {
            file,
            line,
            message: "expected `word<TAB>classes`".into(),
        })?;
        let list = list.trim();
        let parsed = if list == "-" {
            Vec::new()
        } else {
            list.split(',')
                .map(|c| match c.trim().parse::<u8>() {
                    Ok(n) if (1..=45).contains(&n) => Ok(n),
                    _ => Err(MatcherError::Data {
                        file,
                        line,
                        message: format!("`{}` is not a Nice class (1-45)", c.trim()),
                    }),
                })
                .collect::<Result<Vec<u8>, _>>()?
        };
        terms.push(term.trim().to_lowercase());
        classes.push(parsed);
    }
    Ok((terms, classes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_data_file_parses() {
        let context = Context::load().expect("data files parse");
        assert!(context.counterfeit.terms.iter().any(|t| t == "高仿"));
        assert!(context.counterfeit.terms.iter().any(|t| t == "a货"));
        assert!(context.original.terms.iter().any(|t| t == "正品"));
        assert!(context.parallel.terms.iter().any(|t| t == "代购"));
        assert!(context.risk.terms.iter().any(|t| t == "无发票"));
        assert!(context.trusted.iter().any(|t| t == "amazon.com"));
        assert_eq!(
            context.compatibility.terms.len(),
            context.compatibility_side.len()
        );
        assert_eq!(context.goods.terms.len(), context.goods_classes.len());
        assert!(context.english.len() > 10_000);
    }

    #[test]
    fn a_malformed_goods_row_names_file_and_line() {
        let err = parse_goods(("goods.tsv", "# c\n鞋\t25\n包\t99\n")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("goods.tsv") && text.contains("line 3"),
            "{text}"
        );
        let err = parse_compatibility(("compat.txt", "sideways\tfor\n")).unwrap_err();
        assert!(err.to_string().contains("line 1"));
    }

    #[test]
    fn goods_words_map_to_classes_and_stop_words_block_them() {
        let context = Context::load().unwrap();
        assert_eq!(
            context.classes_in("红富士 新鲜水果 5斤").unwrap().0,
            vec![31]
        );
        assert_eq!(context.classes_in("男士 运动鞋").unwrap().0, vec![25]);
        assert_eq!(context.classes_in("手机壳").unwrap().0, vec![9]);
        // 包邮 is free shipping, 全球 is "worldwide": neither names goods.
        assert!(context.classes_in("包邮 全球购").is_none());
        // 笔记本电脑 is a laptop (9), not a paper notebook (16).
        assert_eq!(context.classes_in("笔记本电脑").unwrap().0, vec![9]);
    }

    #[test]
    fn latin_terms_match_whole_words_only() {
        let context = Context::load().unwrap();
        assert!(
            context
                .compatibility
                .find_first("case for iphone")
                .is_some()
        );
        assert!(context.compatibility.find_first("formal dress").is_none());
        assert!(context.counterfeit.find_first("replicant").is_none());
        assert!(context.counterfeit.find_first("1:1 复刻").is_some());
    }

    #[test]
    fn english_words_include_inflections() {
        let context = Context::load().unwrap();
        assert!(context.is_english("channel"));
        assert!(context.is_english("channels"));
        assert!(!context.is_english("addidas"));
    }
}
