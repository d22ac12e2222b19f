//! Text normalisation: turns a title or shop name into the forms the index searches.
//!
//! One pass over the text folds full-width forms (NFKC), case, diacritics (LANCÔME =
//! lancome) and look-alike letters (TR39 skeletons for Greek and Cyrillic, a table in
//! `data/latin_lookalikes.txt` for IPA letters, small capitals and Latin extensions); makes
//! traditional Chinese simplified; knows each Chinese character's readings; and cuts the
//! Latin part into tokens, joining letters spelled out with separators (N-I-K-E) and
//! splitting camel case.

use ferrous_opencc::{OpenCC, config::BuiltinConfig};
use pinyin::{ToPinyin, ToPinyinMulti};
use rustc_hash::FxHashMap;
use unicode_normalization::UnicodeNormalization;

use super::MatcherError;

/// The CJK blocks with a table entry: Extension A and the Unified Ideographs.
const HAN_FIRST: u32 = 0x3400;
const HAN_LAST: u32 = 0x9FFF;
/// Readings kept per character (most have one or two).
pub(crate) const MAX_READINGS: usize = 4;
const LATIN_LOOKALIKES: (&str, &str) = (
    "latin_lookalikes.txt",
    include_str!("data/latin_lookalikes.txt"),
);

pub(crate) fn is_han(c: char) -> bool {
    (HAN_FIRST..=HAN_LAST).contains(&(c as u32)) || ('\u{F900}'..='\u{FAFF}').contains(&c)
}

/// A syllable as heard by someone who does not tell zh/z, ch/c, sh/s, ang/an, eng/en or
/// ing/in apart: the confusions Chinese input methods allow as "fuzzy pinyin", and the
/// ones counterfeiters use (戴生 for 戴森).
fn fuzzy_syllable(plain: &str) -> String {
    let s = plain
        .strip_prefix("zh")
        .map(|r| format!("z{r}"))
        .or_else(|| plain.strip_prefix("ch").map(|r| format!("c{r}")))
        .or_else(|| plain.strip_prefix("sh").map(|r| format!("s{r}")))
        .unwrap_or_else(|| plain.to_string());
    for (from, to) in [("ang", "an"), ("eng", "en"), ("ing", "in")] {
        if let Some(r) = s.strip_suffix(from) {
            return format!("{r}{to}");
        }
    }
    s
}

/// Per-character tables, built once per `Matcher`.
pub(crate) struct Normalizer {
    /// Traditional -> simplified, for characters whose form changes.
    t2s: FxHashMap<char, char>,
    /// Toneless pinyin of each character in the Han range (index c - HAN_FIRST), from its
    /// simplified form; "" if none.
    pinyin: Vec<&'static str>,
    /// Every reading of each character, as fuzzy-syllable ids + 1 (0 = none).
    readings: Vec<[u16; MAX_READINGS]>,
    /// Look-alike letters TR39 skeletons leave outside ASCII, as the letter they imitate.
    lookalikes: FxHashMap<char, char>,
}

impl Normalizer {
    pub(super) fn new() -> Result<Self, MatcherError> {
        // OpenCC converts whole phrases; we only need characters, so convert the Han blocks
        // once, one character per line, and keep the characters whose form changes.
        let opencc = OpenCC::from_config(BuiltinConfig::T2s)
            .map_err(|e| MatcherError::Opencc(e.to_string()))?;
        let mut block = String::with_capacity(((HAN_LAST - HAN_FIRST + 1) * 4) as usize);
        for cp in HAN_FIRST..=HAN_LAST {
            if let Some(c) = char::from_u32(cp) {
                block.push(c);
                block.push('\n');
            }
        }
        let converted = opencc.convert(&block);
        let mut t2s = FxHashMap::default();
        for (from, to) in block.lines().zip(converted.lines()) {
            let (mut f, mut t) = (from.chars(), to.chars());
            if let (Some(f), None, Some(t), None) = (f.next(), f.next(), t.next(), t.next())
                && f != t
            {
                t2s.insert(f, t);
            }
        }

        let size = (HAN_LAST - HAN_FIRST + 1) as usize;
        let mut ids: FxHashMap<String, u16> = FxHashMap::default();
        let mut pinyin = vec![""; size];
        let mut readings = vec![[0u16; MAX_READINGS]; size];
        for cp in HAN_FIRST..=HAN_LAST {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            let simple = t2s.get(&c).copied().unwrap_or(c);
            let i = (cp - HAN_FIRST) as usize;
            if let Some(p) = simple.to_pinyin().or_else(|| c.to_pinyin()) {
                pinyin[i] = p.plain();
            }
            let Some(multi) = simple.to_pinyin_multi().or_else(|| c.to_pinyin_multi()) else {
                continue;
            };
            let mut n = 0;
            for p in multi {
                let next = ids.len() as u16 + 1;
                let id = *ids.entry(fuzzy_syllable(p.plain())).or_insert(next);
                if n < MAX_READINGS && !readings[i][..n].contains(&id) {
                    readings[i][n] = id;
                    n += 1;
                }
            }
        }
        Ok(Normalizer {
            t2s,
            pinyin,
            readings,
            lookalikes: parse_lookalikes(LATIN_LOOKALIKES)?,
        })
    }

    pub(super) fn simplify(&self, c: char) -> char {
        self.t2s.get(&c).copied().unwrap_or(c)
    }

    /// Every reading of a Chinese character (fuzzy-syllable ids, 0-terminated).
    pub(super) fn readings(&self, c: char) -> &[u16; MAX_READINGS] {
        const NONE: [u16; MAX_READINGS] = [0; MAX_READINGS];
        let cp = c as u32;
        if (HAN_FIRST..=HAN_LAST).contains(&cp) {
            &self.readings[(cp - HAN_FIRST) as usize]
        } else {
            &NONE
        }
    }

    /// Toneless pinyin of a Chinese text, one syllable per character, if every
    /// character has one.
    pub(super) fn pinyin(&self, text: &str) -> Option<Vec<&'static str>> {
        text.chars()
            .map(|c| {
                let cp = c as u32;
                let p = if (HAN_FIRST..=HAN_LAST).contains(&cp) {
                    self.pinyin[(cp - HAN_FIRST) as usize]
                } else {
                    ""
                };
                (!p.is_empty()).then_some(p)
            })
            .collect()
    }

    /// Normalises `text` for matching.
    pub(super) fn analyse(&self, text: &str) -> Analysed {
        let mut out = Analysed::with_capacity(text.len());
        let mut builder = TokenBuilder::default();
        let mut prev_lower = false;
        for (orig_start, c) in text.char_indices() {
            let orig = (orig_start as u32, (orig_start + c.len_utf8()) as u32);
            if c.is_ascii() {
                let upper = c.is_ascii_uppercase();
                if upper && prev_lower {
                    builder.camel_split(&mut out);
                }
                prev_lower = c.is_ascii_lowercase();
                self.push(&mut out, &mut builder, c, orig, false);
            } else if is_han(c) && c < '\u{F900}' {
                // Unified ideographs are their own NFKC form and have no case.
                prev_lower = false;
                self.push(&mut out, &mut builder, c, orig, false);
            } else {
                let wide = ('\u{FF01}'..='\u{FF5E}').contains(&c);
                let mut put = |n: char| {
                    // A look-alike takes the case of the word it hides in: small capitals
                    // are lower-case letters that read as capitals (NIᴋE).
                    let lookalike = !n.is_ascii() && self.is_lookalike(n);
                    if n.is_uppercase() && prev_lower && !lookalike {
                        builder.camel_split(&mut out);
                    }
                    prev_lower = n.is_lowercase() && !lookalike;
                    self.push(&mut out, &mut builder, n, orig, wide);
                };
                // A compatibility form can lose the likeness (lunate ϲ becomes final ς):
                // a look-alike is kept as written unless NFKC makes it ASCII (𝐍 is N).
                if self.is_lookalike(c) && !std::iter::once(c).nfkc().all(|n| n.is_ascii()) {
                    put(c);
                } else {
                    std::iter::once(c).nfkc().for_each(put);
                }
            }
        }
        builder.finish(&mut out);
        merge_spelled_letters(&mut out.tokens);
        out
    }

    fn push(
        &self,
        out: &mut Analysed,
        builder: &mut TokenBuilder,
        c: char,
        orig: (u32, u32),
        wide: bool,
    ) {
        if c.is_ascii_alphanumeric() {
            let l = c.to_ascii_lowercase();
            let idx = out.push_char(l, orig, CharFlags::default());
            builder.letter(out, idx, l, wide, false);
        } else if is_han(c) {
            let s = self.simplify(c);
            let flags = CharFlags {
                han: true,
                trad: s != c,
            };
            out.push_char(s, orig, flags);
            builder.hard_break(out);
        } else if is_combining(c) {
            // A diacritic: drop it, the base letter has already been kept.
        } else if c.is_alphanumeric() {
            match self.fold_letter(c) {
                Some((letters, glyph)) => {
                    for l in letters.chars() {
                        let idx = out.push_char(l, orig, CharFlags::default());
                        builder.letter(out, idx, l, wide, glyph);
                    }
                }
                None => {
                    for l in c.to_lowercase() {
                        out.push_char(l, orig, CharFlags::default());
                    }
                    builder.hard_break(out);
                }
            }
        } else {
            let blank = c.is_whitespace();
            let s = if blank { ' ' } else { c };
            out.push_char(s, orig, CharFlags::default());
            builder.separator(out, blank);
        }
    }
}

fn is_combining(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}' | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}')
}

impl Normalizer {
    /// A non-ASCII letter as lower-case ASCII: its base letter if it only carries a
    /// diacritic (ô -> o), else the letter it imitates (Cyrillic а, Greek Ο, ø, ɡ, ᴋ). The
    /// flag says whether a look-alike was replaced.
    fn fold_letter(&self, c: char) -> Option<(String, bool)> {
        let mut base = None;
        unicode_normalization::char::decompose_canonical(c, |d| {
            base.get_or_insert(d);
        });
        if let Some(b) = base
            && b != c
            && b.is_ascii_alphanumeric()
        {
            return Some((b.to_ascii_lowercase().to_string(), false));
        }
        // Skeletons keep case (Greek Ν is N, ν is v), so try the letter as written first.
        let mut lower = c.to_lowercase();
        let lower = match (lower.next(), lower.next()) {
            (Some(l), None) if l != c => Some(l),
            _ => None,
        };
        std::iter::once(c)
            .chain(lower)
            .find_map(|c| self.lookalike(c))
            .map(|s| (s, true))
    }

    fn is_lookalike(&self, c: char) -> bool {
        c.is_alphabetic() && !is_han(c) && self.fold_letter(c).is_some_and(|f| f.1)
    }

    fn lookalike(&self, c: char) -> Option<String> {
        if let Some(&l) = self.lookalikes.get(&c) {
            return Some(l.to_string());
        }
        // Skeletons keep overlays and hooks as combining marks (ø -> o + stroke): the
        // letter underneath is what a reader sees.
        let mut buf = [0u8; 4];
        let skeleton: String = unicode_security::skeleton(c.encode_utf8(&mut buf))
            .filter(|&s| !is_combining(s))
            .map(|s| self.lookalikes.get(&s).copied().unwrap_or(s))
            .collect();
        (!skeleton.is_empty() && skeleton.chars().all(|s| s.is_ascii_alphanumeric()))
            .then(|| skeleton.to_ascii_lowercase())
    }
}

/// The look-alike table: one `look-alike letter` pair per line.
fn parse_lookalikes(
    (file, text): (&'static str, &str),
) -> Result<FxHashMap<char, char>, MatcherError> {
    let mut map = FxHashMap::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut chars = line.split_whitespace().map(|w| {
            let mut c = w.chars();
            (c.next(), c.next())
        });
        match (chars.next(), chars.next(), chars.next()) {
            (Some((Some(from), None)), Some((Some(to), None)), None)
                if !from.is_ascii() && to.is_ascii_lowercase() =>
            {
                map.insert(from, to);
            }
            _ => {
                return Err(MatcherError::Data {
                    file,
                    line: i + 1,
                    message: "expected a non-ASCII letter and the ASCII letter it imitates".into(),
                });
            }
        }
    }
    Ok(map)
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CharFlags {
    pub han: bool,
    /// Written in traditional script in the original.
    pub trad: bool,
}

/// One character of the normalised text and where it came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CharInfo {
    /// Byte offset in `Analysed::simple`.
    pub byte: u32,
    /// Byte range in the original text.
    pub orig: (u32, u32),
    pub flags: CharFlags,
}

/// A Latin word of the normalised text.
#[derive(Debug, Clone, Default)]
pub(crate) struct Token {
    /// Lower-case ASCII letters and digits.
    pub text: String,
    /// Range of characters in `Analysed::chars`.
    pub first: u32,
    pub end: u32,
    /// Follows the previous token with only separators or a case change between.
    pub joined: bool,
    /// A separator (not just a case change) stands before it.
    pub separated: bool,
    /// Joined to the previous token by punctuation rather than blanks (Louis_Vuitton).
    pub punctuated: bool,
    /// Joined to the previous token by punctuation alone, as a word is hyphenated (GUC-CI).
    pub hyphened: bool,
    /// Letters spelled out with separators between them (N-I-K-E).
    pub spaced: bool,
    pub wide: bool,
    pub glyph: bool,
}

impl Token {
    pub(super) fn has_digit(&self) -> bool {
        self.text.bytes().any(|b| b.is_ascii_digit())
    }
}

/// A text normalised for matching.
#[derive(Debug, Default)]
pub(crate) struct Analysed {
    /// Lower case, half-width, simplified script; separators kept.
    pub simple: String,
    pub chars: Vec<CharInfo>,
    pub tokens: Vec<Token>,
}

impl Analysed {
    fn with_capacity(n: usize) -> Self {
        Analysed {
            simple: String::with_capacity(n),
            chars: Vec::with_capacity(n),
            tokens: Vec::new(),
        }
    }

    fn push_char(&mut self, c: char, orig: (u32, u32), flags: CharFlags) -> u32 {
        let idx = self.chars.len() as u32;
        self.chars.push(CharInfo {
            byte: self.simple.len() as u32,
            orig,
            flags,
        });
        self.simple.push(c);
        idx
    }

    /// Index of the character that starts at byte `byte` of `simple`.
    pub(super) fn char_at(&self, byte: usize) -> u32 {
        self.chars.partition_point(|c| (c.byte as usize) < byte) as u32
    }

    /// The original text of characters `first..end`.
    pub(super) fn original<'t>(&self, text: &'t str, first: u32, end: u32) -> &'t str {
        if first >= end || end as usize > self.chars.len() {
            return "";
        }
        let start = self.chars[first as usize].orig.0 as usize;
        let stop = self.chars[end as usize - 1].orig.1 as usize;
        text.get(start..stop).unwrap_or("")
    }

    pub(super) fn any_flag(&self, first: u32, end: u32, f: impl Fn(&CharFlags) -> bool) -> bool {
        self.chars[first as usize..end as usize]
            .iter()
            .any(|c| f(&c.flags))
    }
}

/// Cuts Latin letters into tokens while the text is walked.
#[derive(Default)]
struct TokenBuilder {
    current: Option<Token>,
    /// What stands between the last finished token and the next one.
    gap: Gap,
}

#[derive(Default, PartialEq, Eq, Clone, Copy)]
enum Gap {
    /// Nothing yet, or a Chinese character / unknown script: tokens are not joined.
    #[default]
    Broken,
    /// A case change only.
    Camel,
    /// Up to a few separators; whether any was punctuation, whether any was a blank.
    Separators(u8, bool, bool),
}

impl TokenBuilder {
    fn letter(&mut self, _out: &mut Analysed, idx: u32, l: char, wide: bool, glyph: bool) {
        let gap = self.gap;
        let token = self.current.get_or_insert_with(|| Token {
            first: idx,
            end: idx,
            joined: matches!(gap, Gap::Camel | Gap::Separators(1..=3, ..)),
            separated: matches!(gap, Gap::Separators(..)),
            punctuated: matches!(gap, Gap::Separators(1..=3, true, _)),
            hyphened: matches!(gap, Gap::Separators(1..=3, true, false)),
            ..Token::default()
        });
        token.text.push(l);
        token.end = idx + 1;
        token.wide |= wide;
        token.glyph |= glyph;
    }

    fn close(&mut self, out: &mut Analysed) -> bool {
        match self.current.take() {
            Some(t) => {
                out.tokens.push(t);
                true
            }
            None => false,
        }
    }

    fn camel_split(&mut self, out: &mut Analysed) {
        if self.close(out) {
            self.gap = Gap::Camel;
        }
    }

    fn separator(&mut self, out: &mut Analysed, blank: bool) {
        if self.close(out) || self.gap == Gap::Camel {
            self.gap = Gap::Separators(1, !blank, blank);
        } else if let Gap::Separators(n, punct, blanks) = self.gap {
            self.gap = Gap::Separators(n.saturating_add(1), punct || !blank, blanks || blank);
        }
    }

    fn hard_break(&mut self, out: &mut Analysed) {
        self.close(out);
        self.gap = Gap::Broken;
    }

    fn finish(&mut self, out: &mut Analysed) {
        self.close(out);
    }
}

/// Joins runs of single letters written with separators between them (N-I-K-E, G U C C I,
/// L.V) into one token marked `spaced`.
fn merge_spelled_letters(tokens: &mut Vec<Token>) {
    let single = |t: &Token| t.text.len() == 1 && t.text.as_bytes()[0].is_ascii_alphabetic();
    let mut out: Vec<Token> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let mut j = i + 1;
        if single(&tokens[i]) {
            while j < tokens.len() && single(&tokens[j]) && tokens[j].joined && tokens[j].separated
            {
                j += 1;
            }
        }
        if j - i >= 2 {
            let mut merged = tokens[i].clone();
            for t in &tokens[i + 1..j] {
                merged.text.push_str(&t.text);
                merged.end = t.end;
                merged.wide |= t.wide;
                merged.glyph |= t.glyph;
            }
            merged.spaced = true;
            out.push(merged);
        } else {
            out.push(std::mem::take(&mut tokens[i]));
        }
        i = j;
    }
    *tokens = out;
}

/// The form a mark's Latin text is indexed under: ASCII letters and digits, lower case,
/// diacritics and look-alikes folded. Also returns the lengths of its words.
pub(crate) fn latin_key(norm: &Normalizer, text: &str) -> (String, Vec<u8>) {
    let analysed = norm.analyse(text);
    let key: String = analysed.tokens.iter().map(|t| t.text.as_str()).collect();
    let split = analysed
        .tokens
        .iter()
        .map(|t| t.text.len().min(255) as u8)
        .collect();
    (key, split)
}

/// A shop name as compared with a list of shop names: full-width folded, case and blanks
/// ignored. Script is not folded: 旗艦店 is not the flagship 旗舰店.
pub(crate) fn shop_key(name: &str) -> String {
    name.nfkc()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Digits and letters that stand in for each other (N1KE, G0CCI, Nlke): the "loose" form
/// maps each group to one letter.
pub(crate) fn loosen(text: &str) -> Option<String> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        text.chars()
            .map(|c| match c {
                '0' => 'o',
                '1' | 'l' | '!' | '|' => 'i',
                '3' => 'e',
                '4' => 'a',
                '5' => 's',
                '7' => 't',
                '8' => 'b',
                other => other,
            })
            .collect(),
    )
}

/// Letter pairs that read as one letter at a glance (rn as m, cl as d, vv as w): `text`
/// with each kind of pair replaced in turn.
pub(crate) fn read_as_single_letters(text: &str) -> impl Iterator<Item = String> + '_ {
    [("rn", "m"), ("cl", "d"), ("vv", "w")]
        .into_iter()
        .filter(|(pair, _)| text.contains(pair))
        .map(|(pair, letter)| text.replace(pair, letter))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn norm() -> &'static Normalizer {
        static N: OnceLock<Normalizer> = OnceLock::new();
        N.get_or_init(|| Normalizer::new().unwrap())
    }

    fn words(text: &str) -> Vec<String> {
        norm()
            .analyse(text)
            .tokens
            .into_iter()
            .map(|t| t.text)
            .collect()
    }

    #[test]
    fn folds_case_and_diacritics() {
        assert_eq!(words("LANCÔME Génifique"), ["lancome", "genifique"]);
        // Decomposed input (o + combining circumflex) folds the same way.
        assert_eq!(words("LANCO\u{302}ME"), ["lancome"]);
    }

    #[test]
    fn folds_full_width_and_remembers_it() {
        let a = norm().analyse("ＧＵＣＣＩ包");
        assert_eq!(a.tokens[0].text, "gucci");
        assert!(a.tokens[0].wide);
        assert_eq!(
            a.original("ＧＵＣＣＩ包", a.tokens[0].first, a.tokens[0].end),
            "ＧＵＣＣＩ"
        );
    }

    #[test]
    fn folds_greek_and_cyrillic_look_alikes() {
        // Cyrillic А and Е, Greek Ο.
        let a = norm().analyse("ΝΙΚΕ АDIDАS RΟLEX");
        let texts: Vec<&str> = a.tokens.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(loosen(texts[0]).unwrap(), "nike");
        assert_eq!(texts[1], "adidas");
        assert_eq!(texts[2], "rolex");
        assert!(a.tokens.iter().all(|t| t.glyph));
    }

    #[test]
    fn folds_latin_extended_ipa_and_small_capital_look_alikes() {
        // Overlaid strokes (ø đ Ʉ ł), hooks and tails (ŋ ɗ), the table (ĸ ᴋ ʀ).
        assert_eq!(
            words("møncler đyson GɄCCI łego ŋike ĸenzo NIᴋE ʀolex"),
            [
                "moncler", "dyson", "gucci", "lego", "nike", "kenzo", "nike", "rolex"
            ]
        );
        assert!(
            norm()
                .analyse("møncler GɄCCI NIᴋE")
                .tokens
                .iter()
                .all(|t| t.glyph)
        );
        // Cyrillic lower case reads through its skeleton's small capital (к -> ĸ -> k).
        assert_eq!(words("niкe"), ["nike"]);
        // Diacritics are not disguises: LANCÔME is written so.
        assert!(!norm().analyse("moņcler").tokens[0].glyph);
    }

    #[test]
    fn a_look_alike_does_not_split_a_word_by_case() {
        // ᴋ and ĸ are lower-case letters that read as capitals.
        assert_eq!(words("NIᴋE NIĸE"), ["nike", "nike"]);
        assert_eq!(words("LouisVuitton"), ["louis", "vuitton"]);
    }

    #[test]
    fn the_look_alike_table_parses_and_names_a_bad_line() {
        assert!(parse_lookalikes(LATIN_LOOKALIKES).unwrap().len() > 30);
        let err = parse_lookalikes(("t.txt", "# c\nĸ k\nɢ gg\n")).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn marks_words_broken_by_hyphens() {
        let a = norm().analyse("GUC-CI GUC CI GUC - CI");
        let hyphened: Vec<bool> = a.tokens.iter().map(|t| t.hyphened).collect();
        assert_eq!(hyphened, [false, true, false, false, false, false]);
    }

    #[test]
    fn reads_letter_pairs_as_one_letter() {
        let read: Vec<String> = read_as_single_letters("rnoncler").collect();
        assert_eq!(read, ["moncler", "rnonder"]);
        assert_eq!(read_as_single_letters("gucci").count(), 0);
    }

    #[test]
    fn loosens_digit_swaps() {
        assert_eq!(loosen("n1ke").unwrap(), loosen("nike").unwrap());
        assert_eq!(loosen("g0cc1").unwrap(), loosen("gocci").unwrap());
        assert_eq!(loosen("r0l3x"), loosen("rolex"));
        assert_eq!(loosen("adida5").unwrap(), "adidas");
        assert_eq!(loosen("nlke").unwrap(), loosen("nike").unwrap());
        assert!(loosen("2024").is_none());
    }

    #[test]
    fn joins_spelled_out_letters() {
        for text in ["N-I-K-E", "G U C C I", "L.V", "B.U.R.B.E.R.R.Y"] {
            let a = norm().analyse(text);
            assert_eq!(a.tokens.len(), 1, "{text}");
            assert!(a.tokens[0].spaced, "{text}");
        }
        assert_eq!(words("B.U.R.B.E.R.R.Y"), ["burberry"]);
        // Ordinary words are not merged.
        assert_eq!(words("a bag"), ["a", "bag"]);
    }

    #[test]
    fn splits_camel_case_and_scripts() {
        let a = norm().analyse("LouisVuitton LV女包 Louis_Vuitton");
        let texts: Vec<&str> = a.tokens.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["louis", "vuitton", "lv", "louis", "vuitton"]);
        assert!(a.tokens[1].joined && !a.tokens[1].separated);
        assert!(!a.tokens[3].joined, "a Chinese character breaks the chain");
        assert!(a.tokens[4].joined && a.tokens[4].separated);
    }

    #[test]
    fn makes_traditional_simplified() {
        let a = norm().analyse("勞力士 手錶");
        assert_eq!(a.simple, "劳力士 手表");
        assert!(a.chars[0].flags.trad);
        assert!(!a.chars[1].flags.trad);
    }

    #[test]
    fn gives_homophones_a_common_reading() {
        let n = norm();
        let common = |a: char, b: char| {
            let (ra, rb) = (n.readings(a), n.readings(b));
            ra.iter().any(|&r| r != 0 && rb.contains(&r))
        };
        assert!(common('耐', '奈'));
        assert!(!common('耐', '克'));
        // 勒 reads lè as well as lēi; 乐 reads lè as well as yuè.
        assert!(common('勒', '乐'));
        // Fuzzy pinyin: sheng ~ sen.
        assert!(common('生', '森'));
        assert_eq!(fuzzy_syllable("zhuang"), "zuan");
        assert_eq!(n.pinyin("耐克").unwrap(), ["nai", "ke"]);
        assert_eq!(n.pinyin("勞力士").unwrap(), ["lao", "li", "shi"]);
        assert!(n.pinyin("耐k").is_none());
    }

    #[test]
    fn mark_keys_keep_word_lengths() {
        assert_eq!(latin_key(norm(), "SK-II"), ("skii".into(), vec![2, 2]));
        assert_eq!(latin_key(norm(), "LANCÔME"), ("lancome".into(), vec![7]));
        assert_eq!(
            latin_key(norm(), "NEW BALANCE"),
            ("newbalance".into(), vec![3, 7])
        );
    }

    #[test]
    fn keeps_counterfeit_wording_searchable() {
        let a = norm().analyse("１：１ 複刻 Ａ貨");
        assert_eq!(a.simple, "1:1 复刻 a货");
    }
}
