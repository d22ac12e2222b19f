//! The mark index, built once per registry, and the search of one normalised text.
//!
//! - Latin marks: a hash map from the mark's key (and its digit/look-alike "loose" key) to
//!   the marks, probed with windows of 1-4 consecutive tokens, so a mark only ever matches
//!   whole words (DIOR never inside diorama).
//! - Misspellings: a deletion-neighbourhood map (every key with one or two letters
//!   deleted), probed the same way and confirmed with the restricted Damerau-Levenshtein
//!   distance, allowed edits growing with the mark's length.
//! - Chinese marks and aliases: Aho-Corasick over the simplified Chinese characters of the
//!   text (separators dropped, so 新 百 伦 reads 新百伦); a hit must not cut a Chinese
//!   word in two (jieba).
//! - Sound-alikes of Chinese marks: a map from (character, neighbour's reading) pairs to
//!   the marks holding them, checked reading by reading (heteronyms, fuzzy pinyin).
//! - Pinyin of Chinese marks: more keys in the Latin map.
//!
//! Every probe is a lookup, so the cost per listing hardly depends on the number of marks.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use jieba_rs::Jieba;
use rustc_hash::FxHashMap;

use super::MatcherError;
use super::context::{Context, whole_word};
use super::normalize::{Analysed, MAX_READINGS, Normalizer, is_han, latin_key, loosen};
use crate::model::Brand;

/// At most this many tokens make one Latin window (SK II, LOUIS VUITTON, nai ke).
const MAX_WINDOW: usize = 4;
/// Dictionary frequency from which a word is an everyday word (锋利 383, 夏季 1492)
/// rather than a rare name (奈克 2, 香奈尔 10).
const COMMON_WORD_FREQ: usize = 50;
/// Chinese characters each side of a hit given to the segmenter.
const SEGMENT_CONTEXT: u32 = 4;

/// A registered mark, or an alias, as indexed.
#[derive(Debug)]
pub(crate) struct Entry {
    pub brand: usize,
    /// As registered ("LANCÔME", "耐克").
    pub display: String,
    pub classes: Vec<u8>,
    /// An unregistered name the brand is known by: weaker evidence than a mark.
    pub alias: bool,
    /// Latin key, if the mark is Latin.
    pub key: String,
    /// Word lengths of the Latin key.
    split: Vec<u8>,
    /// The mark is written with punctuation (SK-II).
    punctuated: bool,
    /// Lower case, simplified script.
    simple: String,
    /// Readings of each character of a Chinese mark.
    readings: Vec<[u16; MAX_READINGS]>,
    /// Toneless pinyin, if the mark is Chinese ("nai ke").
    pub pinyin: Option<String>,
    /// How common the Chinese mark is as an everyday word (the segmenter's dictionary
    /// frequency before the marks were added; 0 if not a word there): 苹果 is a fruit first.
    pub word_freq: usize,
}

/// How a mark was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HitKind {
    Exact,
    Spaced,
    Fullwidth,
    Homoglyph,
    DigitSwap,
    Fuzzy(u8),
    Chinese,
    Traditional,
    Homophone,
    Pinyin,
    Alias,
}

impl HitKind {
    /// How strongly this kind of hit alone points at the brand. Hiding the mark is itself
    /// a sign of bad faith, so disguised forms weigh more than the plain mark.
    pub(super) fn strength(self) -> f64 {
        match self {
            HitKind::Exact | HitKind::Chinese => 0.55,
            HitKind::Traditional | HitKind::Pinyin => 0.6,
            // Full-width letters are also what a Chinese keyboard types by accident.
            HitKind::Fullwidth => 0.65,
            HitKind::Spaced => 0.7,
            // Letters from another script or digits for letters are never an accident.
            HitKind::Homoglyph | HitKind::DigitSwap => 0.75,
            HitKind::Fuzzy(1) => 0.55,
            HitKind::Fuzzy(_) => 0.5,
            HitKind::Homophone => 0.55,
            HitKind::Alias => 0.3,
        }
    }

    /// A form of the mark nobody writes by accident.
    pub(super) fn is_disguised(self) -> bool {
        matches!(
            self,
            HitKind::Spaced
                | HitKind::Homoglyph
                | HitKind::DigitSwap
                | HitKind::Fuzzy(_)
                | HitKind::Homophone
        )
    }

    /// The plain mark, as a genuine reseller would write it.
    pub(super) fn is_plain(self) -> bool {
        matches!(self, HitKind::Exact | HitKind::Chinese)
    }
}

/// A mark found in a text: which entry, how, and where (character range).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit {
    pub entry: usize,
    pub kind: HitKind,
    pub first: u32,
    pub end: u32,
}

#[derive(Debug, Clone, Copy)]
enum LatinKind {
    Mark,
    Pinyin,
}

pub(crate) struct MarkIndex {
    pub entries: Vec<Entry>,
    latin: FxHashMap<Box<str>, Vec<(usize, LatinKind)>>,
    loose: FxHashMap<Box<str>, Vec<usize>>,
    deletions: FxHashMap<Box<str>, Vec<usize>>,
    /// Shortest and longest Latin key with a fuzzy entry.
    fuzzy_lengths: (usize, usize),
    /// Chinese marks and aliases, searched in the Chinese view of a text.
    han: Option<AhoCorasick>,
    han_entries: Vec<usize>,
    /// Aliases mixing scripts ("N家"), searched in the whole normalised text.
    mixed: Option<AhoCorasick>,
    mixed_entries: Vec<usize>,
    /// Chinese marks by each pair of neighbouring characters, one kept as written and the
    /// other by its reading: a sound-alike keeps at least one character of the mark, so
    /// it shares such a pair with it, and the lists stay short however large the registry.
    homophones: FxHashMap<SoundKey, Vec<SoundAlike>>,
    jieba: Jieba,
}

/// A character as written, followed or preceded by a neighbour's reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SoundKey {
    CharThenSound(char, u16),
    SoundThenChar(u16, char),
}

/// A Chinese mark as the homophone search needs it, kept inline so that scanning the
/// candidates touches one cache line each.
#[derive(Debug, Clone, Copy)]
struct SoundAlike {
    entry: u32,
    len: u8,
    /// Where the keyed pair starts in the mark.
    offset: u8,
    /// The mark's characters (simplified).
    chars: [char; 4],
    /// Readings of each character.
    readings: [[u16; MAX_READINGS]; 4],
}

/// The Chinese characters of a text, with separators between them dropped (so 新 百 伦
/// reads 新百伦) and anything else replaced by a barrier.
struct HanView {
    text: String,
    /// For each character of `text`, its index in `Analysed::chars`.
    map: Vec<u32>,
}

const BARRIER: char = '\u{1}';

impl HanView {
    fn new(a: &Analysed) -> Option<HanView> {
        if !a.chars.iter().any(|c| c.flags.han) {
            return None;
        }
        let mut text = String::with_capacity(a.simple.len());
        let mut map = Vec::with_capacity(a.chars.len());
        for (i, c) in a.simple.chars().enumerate() {
            if a.chars[i].flags.han {
                text.push(c);
                map.push(i as u32);
            } else if c.is_alphanumeric() && !text.ends_with(BARRIER) {
                text.push(BARRIER);
                map.push(i as u32);
            }
        }
        Some(HanView { text, map })
    }

    /// The characters of the view as a vector, for reading lookups.
    fn chars(&self) -> Vec<char> {
        self.text.chars().collect()
    }

    /// Maps view characters `a..b` back to the text; None if some but not all of the
    /// characters are separated (乐|高 across "快乐 高效" is no hit, 新 百 伦 is).
    fn span(&self, a: usize, b: usize) -> Option<(u32, u32, bool)> {
        let gaps = (a..b - 1)
            .filter(|&i| self.map[i + 1] != self.map[i] + 1)
            .count();
        let spaced = gaps > 0;
        if spaced && gaps != b - a - 1 {
            return None;
        }
        Some((self.map[a], self.map[b - 1] + 1, spaced))
    }
}

/// How many edits a misspelling of a key of this length may have.
fn max_distance(len: usize) -> usize {
    match len {
        0..=3 => 0,
        4..=8 => 1,
        _ => 2,
    }
}

/// Calls `f` with `s` and every string made from it by deleting one or two bytes (ASCII
/// only), reusing two buffers; a string may come more than once.
fn for_each_deletion(
    s: &str,
    d: usize,
    buf: &mut String,
    buf2: &mut String,
    f: &mut impl FnMut(&str),
) {
    f(s);
    if d == 0 {
        return;
    }
    for i in 0..s.len() {
        buf.clear();
        buf.push_str(&s[..i]);
        buf.push_str(&s[i + 1..]);
        f(buf);
        if d >= 2 {
            for j in i..buf.len() {
                buf2.clear();
                buf2.push_str(&buf[..j]);
                buf2.push_str(&buf[j + 1..]);
                f(buf2);
            }
        }
    }
}

/// Every string made from `s` by deleting up to `d` bytes (ASCII only), `s` included.
fn deletions(s: &str, d: usize, out: &mut Vec<String>) {
    out.push(s.to_string());
    if d == 0 || s.len() <= 1 {
        return;
    }
    for i in 0..s.len() {
        let mut t = String::with_capacity(s.len() - 1);
        t.push_str(&s[..i]);
        t.push_str(&s[i + 1..]);
        deletions(&t, d - 1, out);
    }
}

impl MarkIndex {
    pub(super) fn build(brands: &[Brand], norm: &Normalizer) -> Result<Self, MatcherError> {
        let mut entries = Vec::new();
        for (b, brand) in brands.iter().enumerate() {
            if brand.name.trim().is_empty() {
                return Err(MatcherError::Registry {
                    brand: format!("#{}", b + 1),
                    message: "brand has no name".into(),
                });
            }
            let mut all_classes: Vec<u8> = Vec::new();
            for mark in &brand.marks {
                if mark.classes.is_empty() || mark.classes.iter().any(|c| !(1..=45).contains(c)) {
                    return Err(MatcherError::Registry {
                        brand: brand.name.clone(),
                        message: format!(
                            "mark `{}` needs Nice classes between 1 and 45, has {:?}",
                            mark.text, mark.classes
                        ),
                    });
                }
                all_classes.extend(&mark.classes);
                entries.push(make_entry(
                    norm,
                    b,
                    &brand.name,
                    &mark.text,
                    mark.classes.clone(),
                    false,
                )?);
            }
            all_classes.sort_unstable();
            all_classes.dedup();
            for alias in &brand.aliases {
                if alias.trim().is_empty() {
                    continue;
                }
                entries.push(make_entry(
                    norm,
                    b,
                    &brand.name,
                    alias,
                    all_classes.clone(),
                    true,
                )?);
            }
        }

        let mut latin: FxHashMap<Box<str>, Vec<(usize, LatinKind)>> = FxHashMap::default();
        let mut loose: FxHashMap<Box<str>, Vec<usize>> = FxHashMap::default();
        let mut deletion_map: FxHashMap<Box<str>, Vec<usize>> = FxHashMap::default();
        let mut fuzzy_lengths = (usize::MAX, 0);
        let mut han_patterns = Vec::new();
        let mut han_entries = Vec::new();
        let mut mixed_patterns = Vec::new();
        let mut mixed_entries = Vec::new();
        let mut homophones: FxHashMap<SoundKey, Vec<SoundAlike>> = FxHashMap::default();
        let mut jieba = Jieba::new();
        let mut variants = Vec::new();
        let mut word_freqs = Vec::new();

        for (i, e) in entries.iter().enumerate() {
            let latin_only = !e.key.is_empty() && !e.display.chars().any(is_han);
            if latin_only && !(e.alias && e.key.len() < 3) {
                latin
                    .entry(e.key.as_str().into())
                    .or_default()
                    .push((i, LatinKind::Mark));
                if !e.alias && e.key.len() >= 4 {
                    if let Some(l) = loosen(&e.key) {
                        loose.entry(l.into()).or_default().push(i);
                    }
                    let d = max_distance(e.key.len());
                    if d > 0 && e.key.bytes().any(|b| b.is_ascii_alphabetic()) {
                        variants.clear();
                        deletions(&e.key, d, &mut variants);
                        variants.sort_unstable();
                        variants.dedup();
                        for v in variants.drain(..) {
                            deletion_map.entry(v.into()).or_default().push(i);
                        }
                        fuzzy_lengths.0 = fuzzy_lengths.0.min(e.key.len());
                        fuzzy_lengths.1 = fuzzy_lengths.1.max(e.key.len());
                    }
                }
            } else {
                // Chinese or mixed: searched in the simplified text.
                let simple = e.simple.clone();
                if simple.chars().all(is_han) {
                    if jieba.has_word(&simple) {
                        word_freqs.push((i, jieba.suggest_freq(&simple)));
                    }
                    jieba.add_word(&simple, None, None);
                    han_patterns.push(simple.clone());
                    han_entries.push(i);
                    // Marks of two to four characters; longer ones are rare and their
                    // sound-alikes would be hard to tell from chance.
                    if (2..=4).contains(&e.readings.len()) {
                        let mut chars = ['\0'; 4];
                        for (slot, c) in chars.iter_mut().zip(simple.chars()) {
                            *slot = c;
                        }
                        let mut readings = [[0u16; MAX_READINGS]; 4];
                        for (slot, r) in readings.iter_mut().zip(&e.readings) {
                            *slot = *r;
                        }
                        let n = e.readings.len();
                        for j in 0..n - 1 {
                            let alike = SoundAlike {
                                entry: i as u32,
                                len: n as u8,
                                offset: j as u8,
                                chars,
                                readings,
                            };
                            let live = |r: &[u16; MAX_READINGS]| {
                                r.iter().copied().filter(|&r| r != 0).collect::<Vec<_>>()
                            };
                            for r in live(&readings[j + 1]) {
                                let key = SoundKey::CharThenSound(chars[j], r);
                                homophones.entry(key).or_default().push(alike);
                            }
                            for r in live(&readings[j]) {
                                let key = SoundKey::SoundThenChar(r, chars[j + 1]);
                                homophones.entry(key).or_default().push(alike);
                            }
                        }
                    }
                } else {
                    mixed_patterns.push(simple.clone());
                    mixed_entries.push(i);
                }
                if let Some(p) = &e.pinyin {
                    let key: String = p.split(' ').collect();
                    if key.len() >= 5 {
                        latin
                            .entry(key.into())
                            .or_default()
                            .push((i, LatinKind::Pinyin));
                    }
                }
            }
        }
        let build_ac = |patterns: &[String]| -> Result<Option<AhoCorasick>, MatcherError> {
            if patterns.is_empty() {
                return Ok(None);
            }
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build(patterns)
                .map(Some)
                .map_err(|e| MatcherError::Index(e.to_string()))
        };
        for (i, freq) in word_freqs {
            entries[i].word_freq = freq;
        }
        Ok(MarkIndex {
            han: build_ac(&han_patterns)?,
            mixed: build_ac(&mixed_patterns)?,
            mixed_entries,
            homophones,
            entries,
            latin,
            loose,
            deletions: deletion_map,
            fuzzy_lengths,
            han_entries,
            jieba,
        })
    }

    /// Every mark found in `text`, at most one per entry (the strongest).
    pub(super) fn find(&self, text: &Analysed, context: &Context, norm: &Normalizer) -> Vec<Hit> {
        let mut hits: Vec<Hit> = Vec::new();
        self.find_latin(text, context, &mut hits);
        self.find_han(text, norm, &mut hits);
        // Keep the strongest hit per entry.
        hits.sort_by(|a, b| {
            a.entry
                .cmp(&b.entry)
                .then(b.kind.strength().total_cmp(&a.kind.strength()))
        });
        hits.dedup_by_key(|h| h.entry);
        hits
    }

    fn find_latin(&self, text: &Analysed, context: &Context, hits: &mut Vec<Hit>) {
        let tokens = &text.tokens;
        let mut window = String::with_capacity(32);
        let mut lengths: Vec<u8> = Vec::with_capacity(MAX_WINDOW);
        for i in 0..tokens.len() {
            window.clear();
            lengths.clear();
            for (k, t) in tokens[i..].iter().take(MAX_WINDOW).enumerate() {
                if k > 0 && !t.joined {
                    break;
                }
                window.push_str(&t.text);
                lengths.push(t.text.len().min(255) as u8);
                let window_tokens = &tokens[i..=i + k];
                let (first, end) = (window_tokens[0].first, t.end);
                let found_exact = self.probe_exact(&window, &lengths, window_tokens, hits);
                if !found_exact {
                    // "iPhone15", "airpods2": a model number stuck to the mark.
                    let stem = window.trim_end_matches(|c: char| c.is_ascii_digit());
                    let cut = window.len() - stem.len();
                    let last = *lengths.last().unwrap_or(&0) as usize;
                    if stem.len() >= 4 && cut > 0 && cut < last {
                        let mut stem_lengths = lengths.clone();
                        if let Some(l) = stem_lengths.last_mut() {
                            *l -= cut as u8;
                        }
                        let stem = stem.to_string();
                        self.probe_exact(&stem, &stem_lengths, window_tokens, hits);
                    }
                }
                if !found_exact && k < 2 {
                    self.probe_fuzzy(&window, window_tokens, context, first, end, hits);
                }
            }
        }
    }

    /// Exact and loose lookups of one window; whether anything was found.
    fn probe_exact(
        &self,
        window: &str,
        lengths: &[u8],
        tokens: &[super::normalize::Token],
        hits: &mut Vec<Hit>,
    ) -> bool {
        let (first, end) = (tokens[0].first, tokens[tokens.len() - 1].end);
        let spelled = tokens.iter().any(|t| t.spaced);
        let punctuated = tokens.iter().skip(1).any(|t| t.punctuated);
        let wide = tokens.iter().any(|t| t.wide);
        let glyph = tokens.iter().any(|t| t.glyph);
        let mut found = false;
        if let Some(list) = self.latin.get(window) {
            for &(entry, kind) in list {
                let e = &self.entries[entry];
                // Several words make a mark only if they are the mark's own words (or
                // syllables), or the mark is long enough not to arise by chance
                // (Louis_Vuitton, Air Pods).
                let words_fit = match kind {
                    LatinKind::Mark => e.key.len() >= 6 || lengths == e.split.as_slice(),
                    LatinKind::Pinyin => e.pinyin.as_deref().is_some_and(|p| {
                        p.split(' ')
                            .map(str::len)
                            .eq(lengths.iter().map(|&l| l as usize))
                    }),
                };
                if lengths.len() > 1 && !words_fit {
                    continue;
                }
                // Letters spelled out (N-I-K-E), or the mark's words joined by punctuation
                // it does not have itself (Louis_Vuitton; SK-II is written so).
                let spaced = spelled || (punctuated && !e.punctuated);
                let kind = match kind {
                    LatinKind::Pinyin => HitKind::Pinyin,
                    LatinKind::Mark if e.alias => HitKind::Alias,
                    LatinKind::Mark if glyph => HitKind::Homoglyph,
                    LatinKind::Mark if wide => HitKind::Fullwidth,
                    LatinKind::Mark if spaced => HitKind::Spaced,
                    LatinKind::Mark => HitKind::Exact,
                };
                hits.push(Hit {
                    entry,
                    kind,
                    first,
                    end,
                });
                found = true;
            }
        }
        if !found
            && window.len() >= 4
            && let Some(l) = loosen(window)
            && let Some(list) = self.loose.get(l.as_str())
        {
            let digits = tokens.iter().any(|t| t.has_digit());
            for &entry in list {
                let e = &self.entries[entry];
                if lengths.len() > 1 && !(e.key.len() >= 6 || lengths == e.split.as_slice()) {
                    continue;
                }
                hits.push(Hit {
                    entry,
                    kind: if digits {
                        HitKind::DigitSwap
                    } else {
                        HitKind::Homoglyph
                    },
                    first,
                    end,
                });
                found = true;
            }
        }
        found
    }

    fn probe_fuzzy(
        &self,
        window: &str,
        tokens: &[super::normalize::Token],
        context: &Context,
        first: u32,
        end: u32,
        hits: &mut Vec<Hit>,
    ) {
        let len = window.len();
        if len < 4
            || len + 2 < self.fuzzy_lengths.0
            || len > self.fuzzy_lengths.1 + 2
            || len > 20
            || !window.bytes().all(|b| b.is_ascii_lowercase())
        {
            return;
        }
        // An ordinary word is not a misspelt mark ("channel" is not CHANEL).
        if tokens
            .iter()
            .all(|t| t.text.len() < 4 || context.is_english(&t.text))
        {
            return;
        }
        let d = if len >= 8 { 2 } else { 1 };
        let mut seen: Vec<usize> = Vec::new();
        let mut buf = String::with_capacity(len);
        let mut buf2 = String::with_capacity(len);
        for_each_deletion(window, d, &mut buf, &mut buf2, &mut |v| {
            let Some(list) = self.deletions.get(v) else {
                return;
            };
            for &entry in list {
                if seen.contains(&entry) {
                    continue;
                }
                seen.push(entry);
                let key = &self.entries[entry].key;
                if key.as_bytes()[0] != window.as_bytes()[0] {
                    continue;
                }
                // Restricted Damerau-Levenshtein (adjacent swaps count as one edit).
                let dist = strsim::osa_distance(window, key);
                if dist == 0 || dist > max_distance(key.len()) {
                    continue;
                }
                if key.len() == 4 && !is_slip(window, key) {
                    continue;
                }
                hits.push(Hit {
                    entry,
                    kind: HitKind::Fuzzy(dist as u8),
                    first,
                    end,
                });
            }
        });
    }

    fn find_han(&self, text: &Analysed, norm: &Normalizer, hits: &mut Vec<Hit>) {
        if let Some(ac) = &self.mixed {
            for m in ac.find_overlapping_iter(&text.simple) {
                if !whole_word(&text.simple, m.start(), m.end()) {
                    continue;
                }
                let (first, end) = (text.char_at(m.start()), text.char_at(m.end()));
                hits.push(Hit {
                    entry: self.mixed_entries[m.pattern().as_usize()],
                    kind: HitKind::Alias,
                    first,
                    end,
                });
            }
        }
        let Some(view) = HanView::new(text) else {
            return;
        };
        let chars = view.chars();
        let mut exact_spans: Vec<(usize, usize)> = Vec::new();
        if let Some(ac) = &self.han {
            for m in ac.find_overlapping_iter(&view.text) {
                // Every character of the view is 3 bytes except the 1-byte barrier, which
                // never matches; so count characters rather than divide.
                let a = view.text[..m.start()].chars().count();
                let b = a + view.text[m.start()..m.end()].chars().count();
                let Some((first, end, spaced)) = view.span(a, b) else {
                    continue;
                };
                if !self.keeps_words_whole(&view, &chars, a, b, false) {
                    continue;
                }
                let entry = self.han_entries[m.pattern().as_usize()];
                let kind = if self.entries[entry].alias {
                    HitKind::Alias
                } else if spaced {
                    HitKind::Spaced
                } else if text.any_flag(first, end, |f| f.trad) {
                    HitKind::Traditional
                } else {
                    HitKind::Chinese
                };
                exact_spans.push((a, b));
                hits.push(Hit {
                    entry,
                    kind,
                    first,
                    end,
                });
            }
        }
        self.find_homophones(norm, &view, &chars, &exact_spans, hits);
    }

    /// Characters that read like a Chinese mark (any reading of each, fuzzy pinyin) and
    /// keep at least one of its characters, as counterfeiters' sound-alikes do (奈克, 老力士);
    /// two words that merely sound alike are no evidence.
    fn find_homophones(
        &self,
        norm: &Normalizer,
        view: &HanView,
        chars: &[char],
        exact_spans: &[(usize, usize)],
        hits: &mut Vec<Hit>,
    ) {
        if self.homophones.is_empty() {
            return;
        }
        let readings: Vec<&[u16; MAX_READINGS]> = chars.iter().map(|&c| norm.readings(c)).collect();
        let reads_as = |at: usize, wanted: &[u16; MAX_READINGS]| {
            readings[at].iter().any(|&r| r != 0 && wanted.contains(&r))
        };
        for i in 0..chars.len().saturating_sub(1) {
            let keys = readings[i + 1]
                .iter()
                .take_while(|&&r| r != 0)
                .map(|&r| SoundKey::CharThenSound(chars[i], r))
                .chain(
                    readings[i]
                        .iter()
                        .take_while(|&&r| r != 0)
                        .map(|&r| SoundKey::SoundThenChar(r, chars[i + 1])),
                );
            for key in keys {
                let Some(list) = self.homophones.get(&key) else {
                    continue;
                };
                for alike in list {
                    let (n, offset) = (alike.len as usize, alike.offset as usize);
                    let Some(start) = i.checked_sub(offset) else {
                        continue;
                    };
                    if start + n > chars.len()
                        || !(0..n).all(|j| reads_as(start + j, &alike.readings[j]))
                    {
                        continue;
                    }
                    let same = (0..n)
                        .filter(|&j| chars[start + j] == alike.chars[j])
                        .count();
                    // The same characters are a Chinese-name hit.
                    if same == n || exact_spans.contains(&(start, start + n)) {
                        continue;
                    }
                    let Some((first, end, _)) = view.span(start, start + n) else {
                        continue;
                    };
                    // A common word that happens to sound like the mark (夏季 "summer" for
                    // 夏基), or part of a longer word (马克杯 "mug"), is no sound-alike.
                    // Rare dictionary words such as the transliteration 奈克 still count.
                    let found: String = chars[start..start + n].iter().collect();
                    if (self.jieba.has_word(&found)
                        && self.jieba.suggest_freq(&found) >= COMMON_WORD_FREQ)
                        || !self.keeps_words_whole(view, chars, start, start + n, true)
                    {
                        continue;
                    }
                    // A mark may be reached through several pairs; `find` keeps one hit.
                    hits.push(Hit {
                        entry: alike.entry as usize,
                        kind: HitKind::Homophone,
                        first,
                        end,
                    });
                }
            }
        }
    }

    /// Whether view characters `first..end` are whole words of the Chinese text around
    /// them: no word the segmenter finds there starts outside the hit and ends inside it,
    /// or the other way round (快乐高效 is 快乐/高效, so 乐高 is not in it). A separator
    /// in the original text is a word boundary already. With `alone`, the hit may not
    /// sit inside a longer word either (马克杯 is a mug, not a sound-alike of 玛克).
    fn keeps_words_whole(
        &self,
        view: &HanView,
        chars: &[char],
        first: usize,
        end: usize,
        alone: bool,
    ) -> bool {
        let joined = |i: usize| {
            is_han(chars[i]) && is_han(chars[i + 1]) && view.map[i + 1] == view.map[i] + 1
        };
        let context = SEGMENT_CONTEXT as usize;
        let mut lo = first;
        while lo > 0 && first - lo < context && joined(lo - 1) {
            lo -= 1;
        }
        let mut hi = end;
        while hi < chars.len() && hi - end < context && joined(hi - 1) {
            hi += 1;
        }
        if lo == first && hi == end {
            return true;
        }
        let window: String = chars[lo..hi].iter().collect();
        let (s, e) = (first - lo, end - lo);
        self.jieba.cut(&window, false).iter().all(|w| {
            let inside = w.start <= s && w.end >= e && w.end - w.start > e - s;
            let crosses_start = w.start < s && w.end > s;
            let crosses_end = w.start < e && w.end > e;
            if inside {
                !alone
            } else {
                !(crosses_start || crosses_end)
            }
        })
    }
}

/// A slip of the keyboard on a four-letter mark: two neighbours swapped (Nkie) or one
/// letter doubled (Nikke). Other one-letter changes make ordinary words (nice, bike).
fn is_slip(window: &str, key: &str) -> bool {
    let (w, k) = (window.as_bytes(), key.as_bytes());
    if w.len() == k.len() {
        let diff: Vec<usize> = (0..w.len()).filter(|&i| w[i] != k[i]).collect();
        return diff.len() == 2
            && diff[1] == diff[0] + 1
            && w[diff[0]] == k[diff[1]]
            && w[diff[1]] == k[diff[0]];
    }
    if w.len() == k.len() + 1 {
        return (1..w.len()).any(|i| w[i] == w[i - 1] && w[..i] == k[..i] && w[i + 1..] == k[i..]);
    }
    false
}

fn make_entry(
    norm: &Normalizer,
    brand: usize,
    brand_name: &str,
    text: &str,
    classes: Vec<u8>,
    alias: bool,
) -> Result<Entry, MatcherError> {
    let has_han = text.chars().any(is_han);
    let (key, split) = if has_han {
        (String::new(), Vec::new())
    } else {
        latin_key(norm, text)
    };
    if !has_han && key.is_empty() {
        return Err(MatcherError::Registry {
            brand: brand_name.to_string(),
            message: format!("`{text}` has no letters, digits or Chinese characters"),
        });
    }
    let simple = norm.analyse(text.trim()).simple;
    let pinyin = if has_han && !alias {
        norm.pinyin(&simple).map(|p| p.join(" "))
    } else {
        None
    };
    let readings: Vec<[u16; MAX_READINGS]> = if has_han && !alias {
        simple.chars().map(|c| *norm.readings(c)).collect()
    } else {
        Vec::new()
    };
    let readings = if readings.iter().all(|r| r[0] != 0) {
        readings
    } else {
        Vec::new()
    };
    Ok(Entry {
        brand,
        display: text.trim().to_string(),
        classes,
        alias,
        key,
        split,
        punctuated: text
            .chars()
            .any(|c| !c.is_alphanumeric() && !c.is_whitespace()),
        simple,
        readings,
        pinyin,
        word_freq: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_neighbourhoods() {
        let mut v = Vec::new();
        deletions("abc", 1, &mut v);
        v.sort();
        assert_eq!(v, ["ab", "abc", "ac", "bc"]);
        v.clear();
        deletions("abcd", 2, &mut v);
        v.sort();
        v.dedup();
        assert_eq!(v.len(), 1 + 4 + 6);
    }

    #[test]
    fn visits_the_same_deletions_as_it_indexes() {
        for (word, d) in [("gucci", 1), ("burberry", 2), ("abcdefghij", 2)] {
            let mut indexed = Vec::new();
            deletions(word, d, &mut indexed);
            indexed.sort();
            indexed.dedup();
            let mut visited = Vec::new();
            let (mut a, mut b) = (String::new(), String::new());
            for_each_deletion(word, d, &mut a, &mut b, &mut |v| {
                visited.push(v.to_string())
            });
            visited.sort();
            visited.dedup();
            assert_eq!(indexed, visited, "{word}");
        }
    }

    #[test]
    fn slips_on_short_marks() {
        assert!(is_slip("nkie", "nike"));
        assert!(is_slip("nikke", "nike"));
        assert!(is_slip("sonny", "sony"));
        assert!(!is_slip("nice", "nike"));
        assert!(!is_slip("bike", "nike"));
        assert!(!is_slip("nikon", "nike"));
    }

    #[test]
    fn edit_allowance_grows_with_length() {
        assert_eq!(max_distance(2), 0);
        assert_eq!(max_distance(5), 1);
        assert_eq!(max_distance(12), 2);
    }
}
