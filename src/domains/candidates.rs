//! Domain names a squatter might register in a brand's name: dnstwist's permutations of the
//! Latin marks, and what no Latin-only tool makes: the pinyin of the Chinese names, their
//! initials, sound-alikes, and the Chinese names themselves as IDNs. Pure: a brand in, names
//! out, each with the rule that made it.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use pinyin::ToPinyin;
use serde::Serialize;

use crate::model::Brand;

/// CNNIC's Latin zones.
pub(crate) const LATIN_TLDS: [&str; 4] = ["cn", "com.cn", "net.cn", "org.cn"];
/// Zones that take Chinese labels: `.cn` and CNNIC's Chinese top-level domains.
pub(crate) const CHINESE_TLDS: [&str; 4] = ["cn", "中国", "公司", "网络"];
/// Words squatters add to a brand: what a shop or an official site would call itself.
pub(crate) const WORDS: [&str; 8] = [
    "官网",
    "旗舰店",
    "shop",
    "outlet",
    "china",
    "cn",
    "store",
    "sale",
];

/// The headline goods of the classes squatters name most, by Nice class: a brand's name with
/// what it sells (耐克鞋, nikexie, lv-bags, rolexwatch). Chinese words go on Chinese names as
/// they are and on Latin and pinyin names as pinyin.
const GOODS: [(u8, &[&str]); 10] = [
    (3, &["化妆品", "香水", "beauty", "perfume"]),
    (7, &["吸尘器", "vacuum"]),
    (8, &["剃须刀", "shaver"]),
    (9, &["数码", "耳机", "digital"]),
    (11, &["电器", "appliances"]),
    (14, &["手表", "表", "watch", "watches"]),
    (18, &["包", "箱包", "bag", "bags"]),
    (25, &["鞋", "服饰", "shoes", "fashion"]),
    (28, &["玩具", "toys"]),
    (16, &["文具"]),
];

/// How a candidate was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The mark itself.
    Mark,
    Omission,
    Insertion,
    Replacement,
    Transposition,
    Repetition,
    Hyphenation,
    VowelSwap,
    /// Letters read as others: 0/o, 1/l, rn/m, cl/d, vv/w.
    Homoglyph,
    Bitsquatting,
    /// A letter or digit added at the end.
    Addition,
    /// The full pinyin of a Chinese name: `naike`, `nai-ke`.
    Pinyin,
    /// The pinyin's initials: `nk`.
    Initials,
    /// Pinyin as a southern or careless speaker says it (n/l, zh/z, -ng/-n): `laike`.
    HomophonePinyin,
    /// A Chinese name as an IDN: `耐克.cn`.
    Chinese,
    /// A Chinese name with one character swapped for one that sounds the same: `奈克.cn`.
    HomophoneChinese,
    /// The brand with a shop's or an official site's word: `nikeshop`, `耐克官网`.
    Word,
    /// The brand with the goods its marks are registered for: `耐克鞋`, `rolexwatch`.
    Goods,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Mark => "mark",
            Rule::Omission => "omission",
            Rule::Insertion => "insertion",
            Rule::Replacement => "replacement",
            Rule::Transposition => "transposition",
            Rule::Repetition => "repetition",
            Rule::Hyphenation => "hyphenation",
            Rule::VowelSwap => "vowel_swap",
            Rule::Homoglyph => "homoglyph",
            Rule::Bitsquatting => "bitsquatting",
            Rule::Addition => "addition",
            Rule::Pinyin => "pinyin",
            Rule::Initials => "initials",
            Rule::HomophonePinyin => "homophone_pinyin",
            Rule::Chinese => "chinese",
            Rule::HomophoneChinese => "homophone_chinese",
            Rule::Word => "word",
            Rule::Goods => "goods",
        }
    }
}

/// One name to look up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// As DNS knows it: lower-case ASCII, IDN labels in punycode (`xn--…`).
    pub domain: String,
    /// As people read it: `耐克.中国`.
    pub display: String,
    pub rule: Rule,
    /// The mark, alias or Chinese name it came from.
    pub source: String,
}

/// What to generate beyond the built-in zones.
#[derive(Debug, Clone, Default)]
pub struct CandidateOptions {
    /// More zones, without the leading dot (`com`, `hk`, `xn--fiqs8s`).
    pub extra_tlds: Vec<String>,
}

/// Every candidate for `brand`, each name once (under the first rule that made it, in
/// [`Rule`]'s order), without the brand's own domains.
pub fn candidates(brand: &Brand, options: &CandidateOptions) -> Vec<Candidate> {
    let classes: Vec<u8> = brand.marks.iter().flat_map(|m| m.classes.clone()).collect();
    let goods: Vec<&str> = GOODS
        .iter()
        .filter(|(class, _)| classes.contains(class))
        .flat_map(|(_, words)| words.iter().copied())
        .collect();
    let mut labels: BTreeMap<String, (Rule, String)> = BTreeMap::new();
    let mut add = |label: String, rule: Rule, source: &str| {
        if valid_label(&label) {
            labels
                .entry(label)
                .and_modify(|e| {
                    if rule < e.0 {
                        *e = (rule, source.to_owned());
                    }
                })
                .or_insert_with(|| (rule, source.to_owned()));
        }
    };
    // Nicknames (勾子, N家) are everyday words more often than marks: their own spelling and
    // pinyin are watched, not their sound-alikes or initials (勾子 → gz is Guangzhou).
    let names = brand
        .marks
        .iter()
        .map(|m| (m.text.as_str(), true))
        .chain(brand.aliases.iter().map(|a| (a.as_str(), false)))
        .chain(std::iter::once((brand.name.as_str(), true)));
    for (name, registered) in names {
        if let Some(latin) = latin_label(name) {
            // Short Latin aliases (N家 → n) would be noise; marks of two letters are kept.
            if latin.len() >= 2 {
                add(latin.clone(), Rule::Mark, name);
                for (rule, v) in permutations(&latin) {
                    add(v, rule, name);
                }
                add_words(&latin, &WORDS, Rule::Word, name, &mut add);
                add_words(&latin, &goods, Rule::Goods, name, &mut add);
                let words: Vec<&str> = name.split_whitespace().collect();
                if words.len() > 1 {
                    add(words.join("-").to_lowercase(), Rule::Hyphenation, name);
                    let initials: String = words
                        .iter()
                        .filter_map(|w| w.chars().next())
                        .filter(char::is_ascii_alphanumeric)
                        .collect::<String>()
                        .to_lowercase();
                    add(initials, Rule::Initials, name);
                }
            }
        }
        let han: String = name.chars().filter(|c| is_han(*c)).collect();
        if han.chars().count() >= 2 && han.chars().count() == name.chars().count() {
            add(han.clone(), Rule::Chinese, name);
            for w in WORDS.iter().filter(|w| w.chars().all(is_han)) {
                add(format!("{han}{w}"), Rule::Word, name);
            }
            for w in goods.iter().filter(|w| w.chars().all(is_han)) {
                add(format!("{han}{w}"), Rule::Goods, name);
            }
            if registered {
                for v in homophone_names(&han) {
                    add(v, Rule::HomophoneChinese, name);
                }
            }
            if let Some(syllables) = pinyin_of(&han) {
                let joined = syllables.concat();
                add(joined.clone(), Rule::Pinyin, name);
                add(syllables.join("-"), Rule::Pinyin, name);
                add_words(&joined, &WORDS, Rule::Word, name, &mut add);
                add_words(&joined, &goods, Rule::Goods, name, &mut add);
                if registered {
                    let initials: String =
                        syllables.iter().filter_map(|s| s.chars().next()).collect();
                    add(initials, Rule::Initials, name);
                    for v in sound_alikes(&syllables) {
                        add(v, Rule::HomophonePinyin, name);
                    }
                }
            }
        }
    }
    let own: Vec<String> = brand
        .domains
        .iter()
        .map(|d| d.trim_end_matches('.').to_lowercase())
        .collect();
    let mut out = Vec::new();
    for (label, (rule, source)) in labels {
        for tld in zones_for(&label, &options.extra_tlds) {
            let display = format!("{label}.{tld}");
            let domain = to_ascii(&label, &tld);
            if domain.is_empty() || own.contains(&domain) || own.contains(&display) {
                continue;
            }
            out.push(Candidate {
                domain,
                display,
                rule,
                source: source.clone(),
            });
        }
    }
    out
}

fn zones_for(label: &str, extra: &[String]) -> Vec<String> {
    let base: &[&str] = if label.is_ascii() {
        &LATIN_TLDS
    } else {
        &CHINESE_TLDS
    };
    base.iter()
        .map(|t| (*t).to_owned())
        .chain(
            extra
                .iter()
                .map(|t| t.trim_start_matches('.').to_lowercase()),
        )
        .collect()
}

/// `label.tld` as DNS carries it; empty when IDNA refuses it.
fn to_ascii(label: &str, tld: &str) -> String {
    idna::domain_to_ascii(&format!("{label}.{tld}")).unwrap_or_default()
}

fn is_han(c: char) -> bool {
    crate::matcher::is_han(c)
}

/// A Latin name as one label: letters and digits kept, spaces and dots dropped, accents
/// folded (Lancôme → lancome). None when nothing Latin is left or Chinese is mixed in.
fn latin_label(name: &str) -> Option<String> {
    use unicode_normalization::UnicodeNormalization;
    if name.chars().any(is_han) {
        return None;
    }
    let folded: String = name
        .nfkd()
        .filter(char::is_ascii)
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect::<String>()
        .to_lowercase();
    let folded = folded.trim_matches('-').to_owned();
    (!folded.is_empty()).then_some(folded)
}

/// A label DNS takes: 1-63 ASCII letters, digits and inner hyphens, or Chinese characters.
fn valid_label(label: &str) -> bool {
    if label.is_empty() || label.starts_with('-') || label.ends_with('-') {
        return false;
    }
    if label.is_ascii() {
        label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.contains("--")
    } else {
        label.chars().all(is_han) && label.chars().count() <= 20
    }
}

/// `base` with each word after it (joined, hyphenated) and before it; Chinese words as pinyin.
fn add_words(
    base: &str,
    words: &[&str],
    rule: Rule,
    source: &str,
    add: &mut impl FnMut(String, Rule, &str),
) {
    for w in words {
        let w = match pinyin_of(w) {
            Some(syllables) if w.chars().all(is_han) => syllables.concat(),
            _ => (*w).to_owned(),
        };
        add(format!("{base}{w}"), rule, source);
        add(format!("{base}-{w}"), rule, source);
        add(format!("{w}{base}"), rule, source);
    }
}

/// Toneless pinyin, one syllable per character; None if a character has none.
fn pinyin_of(han: &str) -> Option<Vec<String>> {
    han.to_pinyin()
        .map(|p| p.map(|p| p.plain().to_owned()))
        .collect()
}

const KEYBOARD: [&str; 4] = ["1234567890-", "qwertyuiop", "asdfghjkl", "zxcvbnm"];

/// The keys around `c` on a QWERTY keyboard.
fn neighbours(c: u8) -> Vec<u8> {
    let rows: Vec<&[u8]> = KEYBOARD.iter().map(|r| r.as_bytes()).collect();
    let Some((r, i)) = rows
        .iter()
        .enumerate()
        .find_map(|(r, row)| row.iter().position(|&k| k == c).map(|i| (r, i)))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for dr in [-1i32, 0, 1] {
        let Some(row) = rows.get((r as i32 + dr) as usize) else {
            continue;
        };
        for di in [-1i32, 0, 1] {
            let j = i as i32 + di;
            if (dr, di) != (0, 0)
                && j >= 0
                && let Some(&k) = row.get(j as usize)
                && k != b'-'
            {
                out.push(k);
            }
        }
    }
    out
}

/// ASCII look-alikes, both ways: a .cn name can only be ASCII or Chinese.
const GLYPHS: [(&str, &[&str]); 12] = [
    ("o", &["0"]),
    ("0", &["o"]),
    ("l", &["1", "i"]),
    ("i", &["1", "l"]),
    ("1", &["l", "i"]),
    ("m", &["rn", "nn"]),
    ("d", &["cl"]),
    ("w", &["vv"]),
    ("e", &["3"]),
    ("a", &["4"]),
    ("s", &["5"]),
    ("g", &["9", "q"]),
];

/// dnstwist's Latin permutations of `label`.
fn permutations(label: &str) -> Vec<(Rule, String)> {
    let b = label.as_bytes();
    let n = b.len();
    let s = |v: Vec<u8>| String::from_utf8(v).unwrap_or_default();
    let mut out = Vec::new();
    for i in 0..n {
        let mut v = b.to_vec();
        v.remove(i);
        out.push((Rule::Omission, s(v)));
    }
    for i in 0..n {
        for k in neighbours(b[i]) {
            for at in [i, i + 1] {
                let mut v = b.to_vec();
                v.insert(at, k);
                out.push((Rule::Insertion, s(v)));
            }
            let mut v = b.to_vec();
            v[i] = k;
            out.push((Rule::Replacement, s(v)));
        }
    }
    for i in 0..n.saturating_sub(1) {
        if b[i] != b[i + 1] {
            let mut v = b.to_vec();
            v.swap(i, i + 1);
            out.push((Rule::Transposition, s(v)));
        }
    }
    for i in 0..n {
        let mut v = b.to_vec();
        v.insert(i, b[i]);
        out.push((Rule::Repetition, s(v)));
    }
    for i in 1..n {
        let mut v = b.to_vec();
        v.insert(i, b'-');
        out.push((Rule::Hyphenation, s(v)));
    }
    const VOWELS: &[u8] = b"aeiou";
    for i in 0..n {
        if VOWELS.contains(&b[i]) {
            for &o in VOWELS {
                if o != b[i] {
                    let mut v = b.to_vec();
                    v[i] = o;
                    out.push((Rule::VowelSwap, s(v)));
                }
            }
        }
    }
    for (from, tos) in GLYPHS {
        for (at, _) in label.match_indices(from) {
            for to in tos {
                out.push((
                    Rule::Homoglyph,
                    format!("{}{to}{}", &label[..at], &label[at + from.len()..]),
                ));
            }
        }
    }
    // A pair read as one letter, the other way: rn → m, cl → d, vv → w.
    for (pair, one) in [("rn", "m"), ("cl", "d"), ("vv", "w"), ("nn", "m")] {
        for (at, _) in label.match_indices(pair) {
            out.push((
                Rule::Homoglyph,
                format!("{}{one}{}", &label[..at], &label[at + 2..]),
            ));
        }
    }
    for i in 0..n {
        for bit in 0..8 {
            let c = b[i] ^ (1 << bit);
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' {
                let mut v = b.to_vec();
                v[i] = c;
                out.push((Rule::Bitsquatting, s(v)));
            }
        }
    }
    for c in (b'a'..=b'z').chain(b'0'..=b'9') {
        out.push((Rule::Addition, format!("{label}{}", c as char)));
    }
    out.retain(|(_, v)| v != label);
    out
}

/// Sound changes Mandarin speakers of the south make, and pinyin spellers confuse.
const SOUND_SWAPS: [(&str, &str); 10] = [
    ("zh", "z"),
    ("ch", "c"),
    ("sh", "s"),
    ("n", "l"),
    ("l", "n"),
    ("f", "h"),
    ("h", "f"),
    ("ang", "an"),
    ("eng", "en"),
    ("ing", "in"),
];

/// The pinyin with one syllable said another way, joined: naike → laike.
fn sound_alikes(syllables: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, syl) in syllables.iter().enumerate() {
        let mut variants = Vec::new();
        for (a, b) in SOUND_SWAPS {
            // Initials at the front, finals at the back.
            if a.len() <= 2 && !a.starts_with("an") {
                if let Some(rest) = syl.strip_prefix(a)
                    && !(a == "n" && rest.starts_with('g'))
                {
                    variants.push(format!("{b}{rest}"));
                }
            } else if let Some(head) = syl.strip_suffix(a) {
                variants.push(format!("{head}{b}"));
            }
            // And the reverse of the finals: an → ang.
            if a.len() > 2
                && let Some(head) = syl.strip_suffix(b)
            {
                variants.push(format!("{head}{a}"));
            }
        }
        for v in variants {
            let mut all = syllables.to_vec();
            all[i] = v;
            out.push(all.concat());
        }
    }
    out
}

/// Common characters for each toneless syllable, most used first.
static BY_SOUND: LazyLock<HashMap<String, Vec<char>>> = LazyLock::new(|| {
    let jieba = jieba_rs::Jieba::new();
    let mut by_sound: HashMap<String, Vec<(usize, char)>> = HashMap::new();
    for c in ('\u{4e00}'..='\u{9fa5}').filter(|c| is_han(*c)) {
        if let Some(p) = c.to_pinyin() {
            let freq = jieba.suggest_freq(c.encode_utf8(&mut [0; 4]));
            // Characters jieba never saw are rare, and rare characters make poor squats.
            if freq > 10 {
                by_sound
                    .entry(p.plain().to_owned())
                    .or_default()
                    .push((freq, c));
            }
        }
    }
    by_sound
        .into_iter()
        .map(|(k, mut v)| {
            v.sort_unstable_by(|a, b| b.cmp(a));
            (k, v.into_iter().map(|(_, c)| c).collect())
        })
        .collect()
});

/// How many sound-alike characters each character of a name is swapped for.
const SOUND_ALIKES_PER_CHAR: usize = 8;

/// The name with one character replaced by a common character of the same sound: 耐克 → 奈克.
fn homophone_names(han: &str) -> Vec<String> {
    let chars: Vec<char> = han.chars().collect();
    if !(2..=4).contains(&chars.len()) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, c) in chars.iter().enumerate() {
        let Some(p) = c.to_pinyin() else { continue };
        let Some(alikes) = BY_SOUND.get(p.plain()) else {
            continue;
        };
        for a in alikes
            .iter()
            .filter(|a| *a != c)
            .take(SOUND_ALIKES_PER_CHAR)
        {
            let mut v = chars.clone();
            v[i] = *a;
            out.push(v.into_iter().collect());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brand(name: &str, marks: &[&str], aliases: &[&str]) -> Brand {
        Brand {
            name: name.to_owned(),
            marks: marks
                .iter()
                .map(|m| crate::model::Mark {
                    text: (*m).to_owned(),
                    jurisdiction: "CN".to_owned(),
                    registration_no: "1".to_owned(),
                    classes: vec![25],
                    expires: None,
                })
                .collect(),
            aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
            ..Brand::default()
        }
    }

    fn rule_of<'a>(all: &'a [Candidate], domain: &str) -> Option<&'a Candidate> {
        all.iter()
            .find(|c| c.domain == domain || c.display == domain)
    }

    #[test]
    fn latin_pinyin_initials_and_idns() {
        let nike = brand("Nike", &["NIKE", "耐克"], &[]);
        let all = candidates(&nike, &CandidateOptions::default());
        for (domain, rule) in [
            ("nike.cn", Rule::Mark),
            ("nke.com.cn", Rule::Omission),
            ("nikee.cn", Rule::Repetition),
            ("n1ke.cn", Rule::Homoglyph),
            ("nkie.cn", Rule::Transposition),
            ("ni-ke.cn", Rule::Hyphenation),
            ("nikeshop.cn", Rule::Word),
            ("nike-outlet.com.cn", Rule::Word),
            ("nikeguanwang.cn", Rule::Word),
            ("naike.cn", Rule::Pinyin),
            ("nai-ke.net.cn", Rule::Pinyin),
            ("nk.cn", Rule::Initials),
            ("laike.cn", Rule::HomophonePinyin),
            ("耐克.cn", Rule::Chinese),
            ("耐克.中国", Rule::Chinese),
            ("耐克官网.cn", Rule::Word),
            ("奈克.cn", Rule::HomophoneChinese),
        ] {
            let c = rule_of(&all, domain).unwrap_or_else(|| panic!("{domain} not generated"));
            assert_eq!(c.rule, rule, "{domain}");
        }
        // IDNs are looked up in punycode.
        let idn = rule_of(&all, "耐克.中国").unwrap();
        assert_eq!(idn.domain, "xn--74q035i.xn--fiqs8s");
        // No name twice, none invalid.
        let mut names: Vec<&str> = all.iter().map(|c| c.domain.as_str()).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
        assert!(
            all.iter()
                .all(|c| c.domain.is_ascii() && !c.domain.contains("--."))
        );
        // Chinese zones take Chinese names only.
        assert!(rule_of(&all, "nike.中国").is_none());
    }

    #[test]
    fn multi_word_marks_accents_and_own_domains() {
        let mut b = brand("Lancôme", &["LANCÔME", "AIR JORDAN"], &["N家"]);
        b.domains = vec!["lancome.com.cn".to_owned()];
        let all = candidates(&b, &CandidateOptions::default());
        assert!(rule_of(&all, "lancome.cn").is_some());
        assert!(rule_of(&all, "lancome.com.cn").is_none(), "the brand's own");
        assert_eq!(rule_of(&all, "airjordan.cn").unwrap().rule, Rule::Mark);
        assert_eq!(
            rule_of(&all, "air-jordan.cn").unwrap().rule,
            Rule::Hyphenation
        );
        assert_eq!(rule_of(&all, "aj.cn").unwrap().rule, Rule::Initials);
        // Half-Chinese aliases make no Latin label.
        assert!(rule_of(&all, "n.cn").is_none());
    }

    #[test]
    fn extra_zones() {
        let b = brand("Sony", &["SONY", "索尼"], &[]);
        let all = candidates(
            &b,
            &CandidateOptions {
                extra_tlds: vec![".hk".to_owned()],
            },
        );
        assert!(rule_of(&all, "sony.hk").is_some());
        assert!(rule_of(&all, "suoni.hk").is_some());
        assert!(rule_of(&all, "索尼.hk").is_some());
    }
}
