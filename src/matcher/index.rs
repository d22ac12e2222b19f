//! The mark index, built once per registry, and the search of one normalised text.
//!
//! - Latin marks: a hash map from the mark's key (and its digit/look-alike "loose" key) to
//!   the marks, probed with windows of 1-4 consecutive tokens, so a mark only ever matches
//!   whole words (DIOR never inside diorama).
//! - Misspellings: a deletion-neighbourhood map (every key with one or two letters
//!   deleted), probed the same way; each edit of a candidate (a cheapest restricted
//!   Damerau-Levenshtein alignment, worked out here as strsim only gives the distance)
//!   must be a slip that keeps a mark of that length recognisable, judged by its kind
//!   and place. Letter pairs that read as one letter (rn as m) are looked up as well.
//! - Chinese marks and aliases: Aho-Corasick over the simplified Chinese characters of the
//!   text (separators dropped, so 新 百 伦 reads 新百伦); a hit must not cut a Chinese
//!   word in two nor sit inside a name or an everyday phrase (jieba).
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
use super::normalize::{
    Analysed, MAX_READINGS, Normalizer, Token, is_han, latin_key, loosen, read_as_single_letters,
};
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
        let guessed = |h: &Hit| matches!(h.kind, HitKind::Fuzzy(_));
        hits.sort_by(|a, b| {
            a.entry
                .cmp(&b.entry)
                .then(b.kind.strength().total_cmp(&a.kind.strength()))
                // At equal strength the reading that needs no guess wins.
                .then(guessed(a).cmp(&guessed(b)))
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
                let mut found = self.probe_exact(&window, &lengths, window_tokens, false, hits);
                // "iPhone15", "airpods2": a model number stuck to the mark.
                let stem = window.trim_end_matches(|c: char| c.is_ascii_digit());
                let cut = window.len() - stem.len();
                let last = *lengths.last().unwrap_or(&0) as usize;
                let model = stem.len() >= 4 && cut > 0 && cut < last;
                if !found && model {
                    let mut stem_lengths = lengths.clone();
                    if let Some(l) = stem_lengths.last_mut() {
                        *l -= cut as u8;
                    }
                    found = self.probe_exact(stem, &stem_lengths, window_tokens, false, hits);
                }
                // Letters that run together at a glance (Rnoncler, Herrnes, Cliesel).
                if !found && k == 0 && !context.is_english(&window) {
                    for read in read_as_single_letters(&window) {
                        let read_lengths = [read.len().min(255) as u8];
                        found |= self.probe_exact(&read, &read_lengths, window_tokens, true, hits);
                    }
                }
                if !found && k < 2 {
                    self.probe_fuzzy(&window, window_tokens, context, first, end, hits);
                    if model {
                        self.probe_fuzzy(stem, window_tokens, context, first, end, hits);
                    }
                }
            }
        }
    }

    /// Exact and loose lookups of one window; whether anything was found.
    /// With `misread`, `window` is the text as read at a glance (rn as m), not as written.
    fn probe_exact(
        &self,
        window: &str,
        lengths: &[u8],
        tokens: &[Token],
        misread: bool,
        hits: &mut Vec<Hit>,
    ) -> bool {
        let (first, end) = (tokens[0].first, tokens[tokens.len() - 1].end);
        let spelled = tokens.iter().any(|t| t.spaced);
        let punctuated = tokens.iter().skip(1).any(|t| t.punctuated);
        // A word broken by hyphens (GUC-CI) is one word, however short.
        let hyphened = tokens.len() > 1 && tokens.iter().skip(1).all(|t| t.hyphened);
        let wide = tokens.iter().any(|t| t.wide);
        let glyph = misread || tokens.iter().any(|t| t.glyph);
        let mut found = false;
        if let Some(list) = self.latin.get(window) {
            for &(entry, kind) in list {
                let e = &self.entries[entry];
                // Several words make a mark only if they are the mark's own words (or
                // syllables), or the mark is long enough not to arise by chance
                // (Louis_Vuitton, Air Pods).
                let words_fit = match kind {
                    LatinKind::Mark => {
                        e.key.len() >= 6 || lengths == e.split.as_slice() || hyphened
                    }
                    LatinKind::Pinyin if misread => false,
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
                if lengths.len() > 1
                    && !(e.key.len() >= 6 || lengths == e.split.as_slice() || hyphened)
                {
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
        tokens: &[Token],
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
            || !window
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            || window.bytes().filter(u8::is_ascii_alphabetic).count() < 3
        {
            return;
        }
        // Ordinary words are not a misspelt mark ("channel" is not CHANEL, "coach bus" not
        // COACH), and a lone letter before a word is not a stray letter in it ("a pandora").
        // Short words together may be a mark of short words (Mui Miu), word for word.
        let short = |t: &Token| t.text.len() < 4;
        let short_words = tokens.len() > 1 && tokens.iter().all(short);
        if (!short_words
            && tokens
                .iter()
                .all(|t| short(t) || context.is_english(&t.text)))
            || (tokens.len() > 1 && tokens.iter().any(|t| t.text.len() < 2))
        {
            return;
        }
        let lengths: Vec<u8> = tokens.iter().map(|t| t.text.len().min(255) as u8).collect();
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
                let e = &self.entries[entry];
                if short_words && lengths != e.split {
                    continue;
                }
                if let Some(dist) = typo_distance(window, &e.key) {
                    hits.push(Hit {
                        entry,
                        kind: HitKind::Fuzzy(dist),
                        first,
                        end,
                    });
                }
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
    /// in the original text is a word boundary already. A longer word holding the hit is
    /// another word unless it is the mark followed by what it names (耐克鞋, 劳力士表):
    /// the hit may not end it (千秋万代, 朝北面, 小苹果) nor start a name or set phrase
    /// (索尼克 is Sonic, 耐克森 a tyre maker). With `alone`, the hit may not sit inside a
    /// longer word at all (马克杯 is a mug, not a sound-alike of 玛克).
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
                !alone && w.start == s && !self.is_name_or_phrase(w.word)
            } else {
                !(crosses_start || crosses_end)
            }
        })
    }

    /// Whether the segmenter's dictionary calls `word` a person's or place name, an idiom
    /// or a set phrase.
    fn is_name_or_phrase(&self, word: &str) -> bool {
        match self.jieba.tag(word, false).as_slice() {
            [tag] => {
                let t = tag.tag;
                t.starts_with("nr") || t.starts_with("ns") || t == "i" || t == "l"
            }
            _ => false,
        }
    }
}

/// One edit turning a mark's key into what a listing wrote; positions index the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    /// `c` written before key byte `at` (`at` = key length: after the last).
    Insert {
        at: usize,
        c: u8,
    },
    Delete {
        at: usize,
    },
    Replace {
        at: usize,
        c: u8,
    },
    /// Bytes `at` and `at + 1` swapped.
    Swap {
        at: usize,
    },
}

/// The edits of a cheapest alignment of `key` with `window` (restricted Damerau-Levenshtein,
/// adjacent swaps counting as one), or None if there are more than `max`.
fn edits(window: &[u8], key: &[u8], max: usize) -> Option<Vec<Edit>> {
    let (n, m) = (window.len(), key.len());
    if n.abs_diff(m) > max {
        return None;
    }
    let w = m + 1;
    let mut d = vec![0usize; (n + 1) * w];
    for i in 0..=n {
        for j in 0..=m {
            d[i * w + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let same = usize::from(window[i - 1] != key[j - 1]);
                let mut best = (d[(i - 1) * w + j - 1] + same)
                    .min(d[(i - 1) * w + j] + 1)
                    .min(d[i * w + j - 1] + 1);
                if i > 1 && j > 1 && window[i - 1] == key[j - 2] && window[i - 2] == key[j - 1] {
                    best = best.min(d[(i - 2) * w + j - 2] + 1);
                }
                best
            };
        }
    }
    if d[n * w + m] > max {
        return None;
    }
    let mut out = Vec::new();
    let (mut i, mut j) = (n, m);
    while i > 0 || j > 0 {
        let here = d[i * w + j];
        if i > 0 && j > 0 && window[i - 1] == key[j - 1] && d[(i - 1) * w + j - 1] == here {
            (i, j) = (i - 1, j - 1);
        } else if i > 1
            && j > 1
            && window[i - 1] == key[j - 2]
            && window[i - 2] == key[j - 1]
            && d[(i - 2) * w + j - 2] + 1 == here
        {
            out.push(Edit::Swap { at: j - 2 });
            (i, j) = (i - 2, j - 2);
        } else if i > 0 && j > 0 && d[(i - 1) * w + j - 1] + 1 == here {
            out.push(Edit::Replace {
                at: j - 1,
                c: window[i - 1],
            });
            (i, j) = (i - 1, j - 1);
        } else if i > 0 && d[(i - 1) * w + j] + 1 == here {
            out.push(Edit::Insert {
                at: j,
                c: window[i - 1],
            });
            i -= 1;
        } else {
            out.push(Edit::Delete { at: j - 1 });
            j -= 1;
        }
    }
    Some(out)
}

/// How many edits turn `key` into `window`, if each is a slip that keeps the mark
/// recognisable at its length (see `is_plausible`) and there are few enough for it.
fn typo_distance(window: &str, key: &str) -> Option<u8> {
    let edits = edits(window.as_bytes(), key.as_bytes(), max_distance(key.len()))?;
    (!edits.is_empty() && edits.iter().all(|&e| is_plausible(e, key.as_bytes())))
        .then_some(edits.len() as u8)
}

/// Whether one edit leaves `key` recognisable, judged by what it does and where. The
/// shorter the mark, the fewer edits keep it apart from ordinary words and other names:
/// a four-letter mark only survives slips nobody makes in a real word (Nkie, Nikke, N9ike),
/// while a replaced or dropped letter makes another word (nice, bike). A digit among letters
/// is never an accident; a keyboard neighbour or a letter of the same shape is a typo or a
/// disguise; any other letter inside a longer mark is a misspelling. The ends anchor a word,
/// so an arbitrary letter is only replaced inside (Prado is not PRADA), and a five-letter
/// mark only loses letters inside: four letters left at an end make abbreviations and
/// syllables (rada, prad).
fn is_plausible(edit: Edit, key: &[u8]) -> bool {
    let n = key.len();
    let inner = |at: usize| at > 0 && at + 1 < n;
    match edit {
        Edit::Swap { .. } => n >= 4,
        Edit::Insert { at, c } => {
            let around = [at.checked_sub(1).map(|i| key[i]), key.get(at).copied()];
            let inside = at > 0 && at < n;
            if around.contains(&Some(c)) || (c.is_ascii_digit() && inside) {
                n >= 4
            } else if c.is_ascii_digit() || !inside {
                // A stray character before or after the mark (0PRADA, HGUCCI).
                n >= 5
            } else if around.iter().flatten().any(|&k| keyboard_neighbours(k, c)) {
                n >= 5
            } else {
                n >= 8
            }
        }
        Edit::Delete { at } => {
            let doubled = (at > 0 && key[at - 1] == key[at]) || key.get(at + 1) == Some(&key[at]);
            if doubled || inner(at) { n >= 5 } else { n >= 6 }
        }
        Edit::Replace { at, c } => {
            let k = key[at];
            if c.is_ascii_digit() {
                if inner(at) { n >= 4 } else { n >= 5 }
            } else if keyboard_neighbours(k, c) || same_shape(k, c) {
                n >= 5
            } else if !inner(at) {
                false
            } else if is_vowel(k) && is_vowel(c) {
                n >= 5
            } else {
                n >= 6
            }
        }
    }
}

/// QWERTY rows, digits included; each row sits half a key right of the one above.
const KEYBOARD: [&[u8]; 4] = [b"1234567890", b"qwertyuiop", b"asdfghjkl", b"zxcvbnm"];

/// Whether `a` and `b` are next to each other on a QWERTY keyboard.
fn keyboard_neighbours(a: u8, b: u8) -> bool {
    let place = |c: u8| {
        KEYBOARD
            .iter()
            .enumerate()
            .find_map(|(row, keys)| keys.iter().position(|&k| k == c).map(|col| (row, col)))
    };
    let (Some((ra, ca)), Some((rb, cb))) = (place(a), place(b)) else {
        return false;
    };
    match rb as isize - ra as isize {
        0 => ca.abs_diff(cb) == 1,
        // The row below is shifted right: a key touches the two below-left and below.
        1 => cb == ca || cb + 1 == ca,
        -1 => ca == cb || ca + 1 == cb,
        _ => false,
    }
}

/// Letters of nearly the same shape (AirPobs, Lancone).
fn same_shape(a: u8, b: u8) -> bool {
    const PAIRS: [[u8; 2]; 9] = [
        *b"bd", *b"ce", *b"gq", *b"il", *b"ij", *b"mn", *b"uv", *b"vw", *b"pq",
    ];
    PAIRS.iter().any(|p| p == &[a, b] || p == &[b, a])
}

fn is_vowel(c: u8) -> bool {
    matches!(c, b'a' | b'e' | b'i' | b'o' | b'u' | b'y')
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
    fn finds_the_edits_of_a_cheapest_alignment() {
        let e = |w: &str, k: &str| edits(w.as_bytes(), k.as_bytes(), 2).unwrap();
        assert_eq!(e("nkie", "nike"), [Edit::Swap { at: 1 }]);
        assert_eq!(e("hgucci", "gucci"), [Edit::Insert { at: 0, c: b'h' }]);
        assert_eq!(e("moncle4", "moncler"), [Edit::Replace { at: 6, c: b'4' }]);
        assert_eq!(e("pandra", "pandora"), [Edit::Delete { at: 4 }]);
        assert!(e("gucci", "gucci").is_empty());
        assert!(edits(b"nikon", b"nike", 1).is_none());
    }

    #[test]
    fn short_marks_only_survive_slips_nobody_makes_in_a_word() {
        for slip in ["nkie", "nikke", "ni9ke", "n9ke"] {
            assert_eq!(typo_distance(slip, "nike"), Some(1), "{slip}");
        }
        for word in ["nice", "bike", "mike", "nikon", "nikes", "9nike"] {
            assert_eq!(typo_distance(word, "nike"), None, "{word}");
        }
    }

    #[test]
    fn edits_are_judged_by_kind_and_place() {
        for (window, key) in [
            ("hgucci", "gucci"),
            ("0prada", "prada"),
            ("pando9ra", "pandora"),
            ("d7yson", "dyson"),
            ("xhanel", "chanel"),
            ("hucci", "gucci"),
            ("moncle4", "moncler"),
            ("dysen", "dyson"),
            ("guci", "gucci"),
            ("pandra", "pandora"),
            ("hanel", "chanel"),
            ("ugcci", "gucci"),
            ("lancone", "lancome"),
        ] {
            assert_eq!(typo_distance(window, key), Some(1), "{window} for {key}");
        }
        // Another letter at an end, or an end lost from a short mark, makes another name.
        for (window, key) in [
            ("prado", "prada"),
            ("fendt", "fendi"),
            ("celina", "celine"),
            ("rada", "prada"),
            ("prad", "prada"),
            ("valentina", "valentino"),
        ] {
            assert_eq!(typo_distance(window, key), None, "{window} for {key}");
        }
    }

    #[test]
    fn keyboard_neighbours_follow_the_staggered_rows() {
        for (a, b) in [
            (b'g', b'h'),
            (b'g', b't'),
            (b'g', b'y'),
            (b'g', b'v'),
            (b'g', b'b'),
        ] {
            assert!(keyboard_neighbours(a, b) && keyboard_neighbours(b, a));
        }
        assert!(keyboard_neighbours(b'r', b'4') && keyboard_neighbours(b'q', b'a'));
        assert!(!keyboard_neighbours(b'g', b'r') && !keyboard_neighbours(b'g', b'n'));
    }

    /// One index over a registry made for these tests (The North Face is not in the demo
    /// registry), with the tables it is searched with.
    fn searched() -> &'static (MarkIndex, Normalizer, Context) {
        static S: std::sync::OnceLock<(MarkIndex, Normalizer, Context)> =
            std::sync::OnceLock::new();
        S.get_or_init(|| {
            let brand = |name: &str, marks: &[&str]| Brand {
                name: name.into(),
                marks: marks
                    .iter()
                    .map(|m| crate::model::Mark {
                        text: m.to_string(),
                        jurisdiction: "CN".into(),
                        registration_no: "TEST".into(),
                        classes: vec![25],
                        expires: None,
                    })
                    .collect(),
                ..Brand::default()
            };
            let brands = [
                brand("The North Face", &["THE NORTH FACE", "北面"]),
                brand("Bandai", &["BANDAI", "万代"]),
                brand("Sony", &["SONY", "索尼"]),
                brand("Nike", &["NIKE", "耐克"]),
                brand("LEGO", &["LEGO", "乐高"]),
                brand("Rolex", &["ROLEX", "劳力士"]),
                brand("Apple", &["APPLE", "苹果"]),
                brand("New Balance", &["NEW BALANCE", "新百伦"]),
                brand("Louis Vuitton", &["LOUIS VUITTON"]),
                brand("Gucci", &["GUCCI"]),
                brand("Prada", &["PRADA"]),
                brand("Pandora", &["PANDORA"]),
                brand("Dyson", &["DYSON"]),
                brand("Chanel", &["CHANEL"]),
                brand("Moncler", &["MONCLER"]),
                brand("Diesel", &["DIESEL"]),
                brand("Hermes", &["HERMES"]),
            ];
            let norm = Normalizer::new().unwrap();
            let index = MarkIndex::build(&brands, &norm).unwrap();
            (index, norm, Context::load().unwrap())
        })
    }

    /// The marks found in `text`, with how.
    fn found(text: &str) -> Vec<(String, HitKind)> {
        let (index, norm, context) = searched();
        index
            .find(&norm.analyse(text), context, norm)
            .into_iter()
            .map(|h| (index.entries[h.entry].display.clone(), h.kind))
            .collect()
    }

    #[track_caller]
    fn finds(text: &str, mark: &str, kind: HitKind) {
        let hits = found(text);
        assert!(hits.contains(&(mark.to_string(), kind)), "{text}: {hits:?}");
    }

    #[test]
    fn finds_stray_replaced_dropped_doubled_and_swapped_letters() {
        for (text, mark) in [
            ("HGUCCI 女包", "GUCCI"),
            ("0PRADA 斜挎包", "PRADA"),
            ("PANDO9RA 手链", "PANDORA"),
            ("d7yson 吹风机", "DYSON"),
            ("XHANEL 香水", "CHANEL"),
            ("moncle4 羽绒服", "MONCLER"),
            ("HUCCI 腰带", "GUCCI"),
            ("Pandra 串珠", "PANDORA"),
            ("Guci 女包", "GUCCI"),
            ("Ugcci 钱包", "GUCCI"),
            ("Dieseel 牛仔裤", "DIESEL"),
            ("Guci2024 新款", "GUCCI"),
        ] {
            finds(text, mark, HitKind::Fuzzy(1));
        }
    }

    #[test]
    fn finds_hyphenated_marks() {
        finds("GUC-CI 女包", "GUCCI", HitKind::Spaced);
        finds("NI-KE 跑鞋", "NIKE", HitKind::Spaced);
        finds("Lou-is Vuit-ton 钱包", "LOUIS VUITTON", HitKind::Spaced);
        // Words that only sit side by side are not one word.
        assert!(found("GUC CI 女包").is_empty());
    }

    #[test]
    fn finds_latin_look_alike_letters() {
        for (text, mark) in [
            ("Møncler 羽绒服", "MONCLER"),
            ("GɄCCI 女包", "GUCCI"),
            ("SᴏNY 耳机", "SONY"),
            ("ŊIKE 跑鞋", "NIKE"),
            ("NIĸE 跑鞋", "NIKE"),
            ("NIᴋE 跑鞋", "NIKE"),
            ("đyson 吹风机", "DYSON"),
            ("ɢUCCI 女包", "GUCCI"),
        ] {
            finds(text, mark, HitKind::Homoglyph);
        }
        // A diacritic alone is how some marks are written: the mark, plainly.
        for (text, mark) in [
            ("Moņcler 羽绒服", "MONCLER"),
            ("ŘOLEX 手表", "ROLEX"),
            ("Hermȩs 丝巾", "HERMES"),
            ("Dieseḷ 牛仔裤", "DIESEL"),
        ] {
            finds(text, mark, HitKind::Exact);
        }
    }

    #[test]
    fn reads_letter_pairs_as_the_letter_they_imitate() {
        finds("Cliesel 牛仔裤", "DIESEL", HitKind::Homoglyph);
        finds("RNONCLER 羽绒服", "MONCLER", HitKind::Homoglyph);
        finds("Herrnes 丝巾", "HERMES", HitKind::Homoglyph);
    }

    #[test]
    fn ordinary_words_and_other_names_are_not_misspellings() {
        for text in [
            "Nikon 相机",
            "nice 贴纸",
            "bike 自行车",
            "Channel 音箱",
            "Prado 车模",
            "coach bus",
            "Celina 连衣裙",
            "Fendt 拖拉机",
            "clove 丁香",
            "modern 台灯",
        ] {
            assert!(found(text).is_empty(), "{text}: {:?}", found(text));
        }
        // A lone letter before the mark is a word of its own, not a stray letter.
        assert_eq!(
            found("a pandora"),
            [("PANDORA".to_string(), HitKind::Exact)]
        );
    }

    #[test]
    fn chinese_names_inside_everyday_phrases_are_not_hits() {
        for text in [
            "朝北面阳台 晾衣架",
            "千秋万代 书法 字画",
            "子孙万代 葫芦 摆件",
            "一万代金券",
            "索尼克 刺猬 公仔",
            "耐克森 轮胎",
            "小苹果 广场舞 服装",
            "快乐高效 学习桌",
            "忍耐克制 书法",
        ] {
            assert!(found(text).is_empty(), "{text}: {:?}", found(text));
        }
        for (text, mark) in [
            ("北面 冲锋衣", "北面"),
            ("北面冲锋衣 男", "北面"),
            ("万代 高达 模型", "万代"),
            ("索尼耳机 降噪", "索尼"),
            ("耐克鞋 男", "耐克"),
            ("陶瓷 耐克杯", "耐克"),
            ("劳力士表 男", "劳力士"),
            ("苹果公司 正品", "苹果"),
            ("乐高 积木", "乐高"),
            ("乐高积木 城市", "乐高"),
        ] {
            finds(text, mark, HitKind::Chinese);
        }
        finds("新 百 伦 跑鞋", "新百伦", HitKind::Spaced);
    }

    #[test]
    fn edit_allowance_grows_with_length() {
        assert_eq!(max_distance(2), 0);
        assert_eq!(max_distance(5), 1);
        assert_eq!(max_distance(12), 2);
    }
}
