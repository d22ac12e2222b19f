//! The matcher against squatting variants of marks it was not tuned on: a small generator in
//! the spirit of dnstwist's fuzzers (addition, insertion, omission, repetition, replacement
//! with keyboard neighbours, transposition, hyphenation, homoglyphs, cl/rn) applied to a
//! registry of well-known marks that are not in fixtures/brands.toml, each variant put into
//! a Chinese title; and ordinary words, pinyin and other makers' names that must stay clear.
//! Run with `--nocapture` for the figures per fuzzer.

use std::collections::{BTreeMap, HashSet};

use markwatch::{Brand, Mark, MatchItem, Matcher, Outcome};

/// Goods the titles of a brand are about, with the Nice classes they fall in.
#[derive(Clone, Copy)]
enum Goods {
    Fashion,
    Shoes,
    Watches,
    Cosmetics,
    Electronics,
    Luggage,
}

impl Goods {
    fn classes(self) -> Vec<u8> {
        match self {
            Goods::Fashion => vec![14, 18, 25],
            Goods::Shoes => vec![25],
            Goods::Watches => vec![14],
            Goods::Cosmetics => vec![3],
            Goods::Electronics => vec![9],
            Goods::Luggage => vec![18],
        }
    }

    fn titles(self) -> &'static [&'static str] {
        match self {
            Goods::Fashion => &[
                "{} 女包 2024新款 真皮 单肩 斜挎包",
                "新款 {} 男士 皮带 真皮 腰带 百搭",
                "{}同款 卫衣 男女 宽松 潮牌 外套",
                "【{}】羊绒 围巾 女 秋冬 百搭 披肩",
            ],
            Goods::Shoes => &[
                "{} 运动鞋 男 透气 跑步鞋 减震",
                "{}板鞋 女 百搭 小白鞋 学生",
            ],
            Goods::Watches => &[
                "{} 男士 机械表 夜光 防水 钢带",
                "{}手链 925银 女 轻奢 礼物",
                "{} 项链 女 锁骨链 气质 简约",
            ],
            Goods::Cosmetics => &[
                "{} 精华液 30ml 补水 保湿 修护",
                "专柜 {} 口红 哑光 持久 不脱色",
                "{} 香水 女士 淡香 持久 100ml",
            ],
            Goods::Electronics => &[
                "{} 蓝牙耳机 无线 降噪 入耳式",
                "{}手机壳 硅胶 防摔 全包",
                "{} 无线鼠标 静音 办公 游戏",
            ],
            Goods::Luggage => &["{} 行李箱 拉杆箱 20寸 登机箱", "{} 钱包 男士 短款 真皮"],
        }
    }
}

/// Real marks that fixtures/brands.toml does not hold, none of them an English word.
const MARKS: &[(&str, Goods)] = &[
    ("PRADA", Goods::Fashion),
    ("HERMES", Goods::Fashion),
    ("VERSACE", Goods::Fashion),
    ("FENDI", Goods::Fashion),
    ("BALENCIAGA", Goods::Fashion),
    ("GIVENCHY", Goods::Fashion),
    ("VALENTINO", Goods::Fashion),
    ("ARMANI", Goods::Fashion),
    ("MONCLER", Goods::Fashion),
    ("CELINE", Goods::Fashion),
    ("DIESEL", Goods::Fashion),
    ("BOTTEGA VENETA", Goods::Fashion),
    ("LOEWE", Goods::Fashion),
    ("KENZO", Goods::Fashion),
    ("MOSCHINO", Goods::Fashion),
    ("LACOSTE", Goods::Fashion),
    ("MIU MIU", Goods::Fashion),
    ("ZARA", Goods::Fashion),
    ("ASICS", Goods::Shoes),
    ("SKECHERS", Goods::Shoes),
    ("TIMBERLAND", Goods::Shoes),
    ("SALOMON", Goods::Shoes),
    ("PUMA", Goods::Shoes),
    ("VANS", Goods::Shoes),
    ("FILA", Goods::Shoes),
    ("CARTIER", Goods::Watches),
    ("TIFFANY", Goods::Watches),
    ("BVLGARI", Goods::Watches),
    ("PANDORA", Goods::Watches),
    ("SWAROVSKI", Goods::Watches),
    ("LONGINES", Goods::Watches),
    ("TISSOT", Goods::Watches),
    ("CASIO", Goods::Watches),
    ("SEIKO", Goods::Watches),
    ("CLINIQUE", Goods::Cosmetics),
    ("SHISEIDO", Goods::Cosmetics),
    ("LOREAL", Goods::Cosmetics),
    ("MAYBELLINE", Goods::Cosmetics),
    ("GUERLAIN", Goods::Cosmetics),
    ("KIEHLS", Goods::Cosmetics),
    ("SULWHASOO", Goods::Cosmetics),
    ("CLARINS", Goods::Cosmetics),
    ("NARS", Goods::Cosmetics),
    ("SAMSUNG", Goods::Electronics),
    ("HUAWEI", Goods::Electronics),
    ("XIAOMI", Goods::Electronics),
    ("LENOVO", Goods::Electronics),
    ("NINTENDO", Goods::Electronics),
    ("SENNHEISER", Goods::Electronics),
    ("LOGITECH", Goods::Electronics),
    ("GARMIN", Goods::Electronics),
    ("RAZER", Goods::Electronics),
    ("BOSE", Goods::Electronics),
    ("ASUS", Goods::Electronics),
    ("RIMOWA", Goods::Luggage),
    ("SAMSONITE", Goods::Luggage),
    ("TUMI", Goods::Luggage),
];

fn registry() -> Vec<Brand> {
    MARKS
        .iter()
        .enumerate()
        .map(|(i, &(text, goods))| Brand {
            name: text.to_string(),
            owner: format!("{text} owner"),
            marks: vec![Mark {
                text: text.to_string(),
                jurisdiction: "CN".into(),
                registration_no: format!("FUZZ-{i}"),
                classes: goods.classes(),
                expires: None,
            }],
            ..Brand::default()
        })
        .collect()
}

/// The QWERTY keys around each key, the digit row included.
fn neighbours(c: char) -> &'static str {
    match c {
        'q' => "12wa",
        'w' => "23qeas",
        'e' => "34wrsd",
        'r' => "45etdf",
        't' => "56ryfg",
        'y' => "67tugh",
        'u' => "78yihj",
        'i' => "89uojk",
        'o' => "90ipkl",
        'p' => "0ol",
        'a' => "qwsz",
        's' => "weadzx",
        'd' => "ersfxc",
        'f' => "rtdgcv",
        'g' => "tyfhvb",
        'h' => "yugjbn",
        'j' => "uihknm",
        'k' => "iojlm",
        'l' => "opk",
        'z' => "asx",
        'x' => "sdzc",
        'c' => "dfxv",
        'v' => "fgcb",
        'b' => "ghvn",
        'n' => "hjbm",
        'm' => "jkn",
        _ => "",
    }
}

/// Letters from other scripts and the Latin extensions that pass for each letter: diacritics,
/// IPA and small capitals, Latin Extended-B, Cyrillic and Greek.
fn glyphs(c: char) -> &'static str {
    match c {
        'a' => "àáâãäåāăąǎȧạɑаα",
        'b' => "ḃḅḇƀɓʙьƅ",
        'c' => "çćĉċčƈᴄсϲ",
        'd' => "ďđḋḍḏḑɗɖᴅԁ",
        'e' => "èéêëēĕėęěȩɇẹеε",
        'f' => "ḟƒꜰ",
        'g' => "ĝğġģǧǥɡɢ",
        'h' => "ĥħȟḣḥḧḩɦʜһ",
        'i' => "ìíîïĩīĭįǐıɨɩɪỉịіι",
        'j' => "ĵǰȷɉʝј",
        'k' => "ķĸḳḵƙᴋⱪкκ",
        'l' => "ĺļľłḷɫʟӏ",
        'm' => "ḿṁṃɱᴍм",
        'n' => "ñńņňṅṇŋɲɳɴꞑη",
        'o' => "òóôõöøōŏőơǒȯọỏᴏоο",
        'p' => "ṕṗƥᴘрρ",
        'q' => "ʠԛ",
        'r' => "ŕŗřȑȓɍɼɽɾʀṙṛг",
        's' => "śŝşšșʂṡṣꜱѕ",
        't' => "ţťŧƫƭțʈṫṭᴛт",
        'u' => "ùúûüũūŭůűųưǔȕȗʉụᴜυ",
        'v' => "ṽṿⱴᴠѵν",
        'w' => "ŵẁẃẅẇẉⱳᴡԝ",
        'x' => "ẋẍхχ",
        'y' => "ýÿŷƴȳɏẏỵʏу",
        'z' => "źżžƶȥʐẓẕⱬᴢ",
        _ => "",
    }
}

fn letters(mark: &str) -> usize {
    mark.chars().filter(char::is_ascii_alphanumeric).count()
}

/// Every variant of `mark` (lower case) each fuzzer makes. Fuzzers that the matcher does not
/// claim for short marks (a dropped or replaced letter of a four-letter mark makes another
/// word: nice, bike) leave them out.
fn fuzz(mark: &str) -> Vec<(&'static str, String)> {
    let m: Vec<char> = mark.chars().collect();
    let n = m.len();
    let long = letters(mark) >= 5;
    let s = |v: &[char]| v.iter().collect::<String>();
    let mut out: Vec<(&'static str, String)> = Vec::new();
    let mut push = |fuzzer: &'static str, v: String| out.push((fuzzer, v));
    let alnum = ('a'..='z').chain('0'..='9');
    if long {
        for c in alnum {
            push("addition", format!("{c}{mark}"));
            push("addition", format!("{mark}{c}"));
        }
    }
    for i in 1..n {
        if m[i] == ' ' || m[i - 1] == ' ' {
            continue;
        }
        // A stray digit inside the mark (PANDO9RA).
        for d in ['0', '2', '5', '7', '9'] {
            let mut v = m.clone();
            v.insert(i, d);
            push("digit-insertion", s(&v));
        }
        if long && i < n - 1 {
            // dnstwist: a neighbour of a letter typed before or after it.
            for k in neighbours(m[i]).chars() {
                let mut v = m.clone();
                v.insert(i, k);
                push("insertion", s(&v));
                let mut v = m.clone();
                v.insert(i + 1, k);
                push("insertion", s(&v));
            }
        }
        push("hyphenation", format!("{}-{}", s(&m[..i]), s(&m[i..])));
    }
    for i in 0..n {
        if m[i] == ' ' {
            continue;
        }
        if long {
            let mut v = m.clone();
            v.remove(i);
            push("omission", s(&v));
            for k in neighbours(m[i]).chars() {
                let mut v = m.clone();
                v[i] = k;
                push("replacement", s(&v));
            }
        }
        let mut v = m.clone();
        v.insert(i, m[i]);
        push("repetition", s(&v));
        if i + 1 < n && m[i + 1] != ' ' && m[i] != m[i + 1] {
            let mut v = m.clone();
            v.swap(i, i + 1);
            push("transposition", s(&v));
        }
        for g in glyphs(m[i]).chars() {
            let mut v = m.clone();
            v[i] = g;
            push("homoglyph", s(&v));
        }
        let read_as = match m[i] {
            'd' => "cl",
            'm' => "rn",
            'w' => "vv",
            _ => "",
        };
        if !read_as.is_empty() {
            push(
                "cl-rn",
                format!("{}{read_as}{}", s(&m[..i]), s(&m[i + 1..])),
            );
        }
    }
    out
}

fn english_words() -> HashSet<&'static str> {
    include_str!("../src/matcher/data/english_words.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// A variant that is an ordinary word is not a misspelt mark; the matcher must leave it.
fn is_english(words: &HashSet<&str>, w: &str) -> bool {
    words.contains(w)
        || ["s", "es", "ed", "d", "ing", "ly"].iter().any(|suffix| {
            w.strip_suffix(suffix)
                .is_some_and(|stem| stem.len() >= 5 && words.contains(stem))
        })
}

fn check(matcher: &Matcher, title: &str) -> markwatch::Verdict {
    matcher.check(&MatchItem {
        title,
        seller: "某某小店",
        price: None,
        category: None,
        platform: "taobao",
        ..MatchItem::default()
    })
}

/// The variant as a seller writes it: upper case, capitalised or lower case. Greek ν, υ, η
/// and Cyrillic г only pass for v, u, n and r in lower case.
fn written(variant: &str, i: usize) -> String {
    let case = if variant.contains(['ν', 'υ', 'η', 'г']) {
        2
    } else {
        i % 3
    };
    match case {
        0 => variant.to_uppercase(),
        1 => {
            let mut c = variant.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default()
        }
        _ => variant.to_string(),
    }
}

#[derive(Default)]
struct Tally {
    found: usize,
    total: usize,
    missed: Vec<String>,
}

impl Tally {
    fn rate(&self) -> f64 {
        self.found as f64 / self.total.max(1) as f64
    }
}

#[test]
fn generated_misspellings_of_unseen_marks_are_found() {
    let brands = registry();
    let matcher = Matcher::new(&brands).unwrap();
    let words = english_words();
    let keys: HashSet<String> = MARKS
        .iter()
        .map(|(m, _)| m.to_lowercase().replace(' ', ""))
        .collect();
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut skipped = 0;
    let mut i = 0;
    for (b, &(mark, goods)) in MARKS.iter().enumerate() {
        let lower = mark.to_lowercase();
        let mut seen = HashSet::new();
        for (fuzzer, variant) in fuzz(&lower) {
            let plain: String = variant.chars().filter(|c| *c != ' ').collect();
            if variant == lower
                || !seen.insert(variant.clone())
                || keys.contains(&plain)
                || variant.split(' ').any(|w| is_english(&words, w))
            {
                skipped += 1;
                continue;
            }
            i += 1;
            let templates = goods.titles();
            let title = templates[i % templates.len()].replace("{}", &written(&variant, i));
            let v = check(&matcher, &title);
            let tally = tallies.entry(fuzzer).or_default();
            tally.total += 1;
            if v.verdict != Outcome::Clear && v.brand.as_deref() == Some(brands[b].name.as_str()) {
                tally.found += 1;
            } else {
                tally.missed.push(format!("{title} -> {:?}", v.brand));
            }
        }
    }
    let found: usize = tallies.values().map(|t| t.found).sum();
    let total: usize = tallies.values().map(|t| t.total).sum();
    let overall = found as f64 / total as f64;
    println!("fuzzer           recall  variants");
    for (fuzzer, t) in &tallies {
        println!("{fuzzer:<16} {:.3}  {:>6}", t.rate(), t.total);
    }
    println!("{:<16} {overall:.3}  {total:>6}", "overall");
    println!("({skipped} variants skipped: duplicates, other marks or English words)");
    for (fuzzer, t) in &tallies {
        for m in t.missed.iter().take(8) {
            println!("  missed {fuzzer}: {m}");
        }
    }
    assert!(overall >= 0.95, "overall recall {overall:.3}");
    let glyph = &tallies["homoglyph"];
    assert!(glyph.rate() >= 0.9, "homoglyph recall {:.3}", glyph.rate());
    for (fuzzer, t) in &tallies {
        assert!(t.rate() >= 0.9, "{fuzzer}: recall {:.3}", t.rate());
    }
}

/// Other makers' names, given names and places that sit close to a mark of the registry.
/// Written down before the matcher was tuned; none is removed for failing.
const LOOKALIKES: &[&str] = &[
    "Nikon",
    "Sonic",
    "Sonny Angel",
    "Phillips",
    "Prado",
    "Pucci",
    "Fendt",
    "Fender",
    "Versa",
    "Hermosa",
    "Celina",
    "Armand Basi",
    "Arman",
    "Pandoro",
    "Valentina",
    "Valentine",
    "Samsun",
    "Garmont",
    "Clarion",
    "Razor",
    "Asos",
    "Hugo Boss",
    "Pumas",
    "Mars",
    "Kenji",
    "Carter's",
    "Cassio",
    "Seiki",
    "Canton",
    "Xiaomei",
    "Nintendogs",
    "Logitec",
    "ASIC",
    "Lowe Alpine",
    "Moncloa",
    "Lining",
    "Anta",
    "Meizu",
    "Haier",
    "Midea",
    "Gree",
    "Vivo",
    "Oppo",
    "Honor",
    "Realme",
    "Erke",
    "Xtep",
    "Peak",
    "Bosideng",
    "Semir",
    "Balabala",
    "Uniqlo",
    "Muji",
    "Jeanswest",
    "Septwolves",
    "Youngor",
    "Feiyue",
    "Skyworth",
    "Hisense",
    "Changhong",
    "Konka",
    "Joyoung",
    "Supor",
    "Lenox",
    "Tissu",
    "Pandas",
    "Lacroix",
    "Casino",
    "Seikei",
    "Zarah",
    "Vance",
    "Razr",
    "Loewen",
    "Kenzie",
    "Salmon",
];

/// Pinyin as it turns up in titles: goods, styles, places, given names.
const PINYIN: &[&str] = &[
    "nanxie",
    "nvxie",
    "nanzhuang",
    "nvzhuang",
    "tongkuan",
    "zhengpin",
    "xinkuan",
    "baoyou",
    "chaopai",
    "guochao",
    "hanban",
    "oushi",
    "jianyue",
    "shishang",
    "xiuxian",
    "yundong",
    "qingqi",
    "toumi",
    "naimo",
    "fangshui",
    "baonuan",
    "jiahou",
    "chunmian",
    "zhenpi",
    "niupi",
    "yangrong",
    "canshi",
    "weiyi",
    "chenshan",
    "niuzai",
    "kuzi",
    "qunzi",
    "xiezi",
    "baobao",
    "shoubiao",
    "erji",
    "shouji",
    "chongdian",
    "yinxiang",
    "xiangshui",
    "kouhong",
    "jinghua",
    "mianmo",
    "fangshai",
    "xiangji",
    "pingban",
    "diannao",
    "jianpan",
    "shubiao",
    "wanju",
    "jimu",
    "shouban",
    "moxing",
    "yifu",
    "waitao",
    "maozi",
    "shoutao",
    "weijin",
    "wazi",
    "neiyi",
    "shuiyi",
    "xiangbao",
    "qianbao",
    "beibao",
    "xiangzi",
    "taiyang",
    "yanjing",
    "mojing",
    "jiezhi",
    "xianglian",
    "shoulian",
    "erhuan",
    "fashi",
    "meizhuang",
    "hufu",
    "caizhuang",
    "yanying",
    "saihong",
    "jiemao",
    "meijia",
    "dianchi",
    "shujuxian",
    "luyouqi",
    "xianshiqi",
    "yingpan",
    "neicun",
    "xianka",
    "zhuban",
    "guangzhou",
    "shenzhen",
    "hangzhou",
    "yiwu",
    "putian",
    "jinjiang",
    "dongguan",
    "shanghai",
    "beijing",
    "xiaoming",
    "lihua",
    "zhangwei",
    "wangfang",
    "liuyang",
    "chenjing",
    "yangguang",
    "huanle",
    "kuaile",
    "xingfu",
    "pingan",
    "jixiang",
    "fugui",
    "mingpai",
    "pinpai",
];

#[test]
fn ordinary_words_pinyin_and_other_names_stay_clear() {
    let brands = registry();
    let matcher = Matcher::new(&brands).unwrap();
    let keys: HashSet<String> = MARKS
        .iter()
        .map(|(m, _)| m.to_lowercase().replace(' ', ""))
        .collect();
    let rate = |label: &str, words: &mut dyn Iterator<Item = &str>| {
        let (mut flagged, mut total) = (Vec::new(), 0);
        for (i, w) in words.enumerate() {
            if keys.contains(&w.to_lowercase().replace([' ', '\''], "")) {
                continue;
            }
            total += 1;
            let title = format!("{} 2024新款 热卖 包邮", written(w, i));
            let v = check(&matcher, &title);
            if v.verdict != Outcome::Clear {
                flagged.push(format!("{title} -> {:?}", v.brand));
            }
        }
        let r = flagged.len() as f64 / total.max(1) as f64;
        println!("{label:<12} flagged {r:.4} of {total}");
        for f in &flagged {
            println!("  {f}");
        }
        r
    };
    let words = english_words();
    let english = rate("english", &mut words.iter().copied());
    let pinyin = rate("pinyin", &mut PINYIN.iter().copied());
    let names = rate("lookalikes", &mut LOOKALIKES.iter().copied());
    assert!(english <= 0.001, "English words flagged: {english:.4}");
    assert!(pinyin <= 0.02, "pinyin flagged: {pinyin:.4}");
    // The nearest real names to marks of the registry, so a few stay within the edits a
    // squatter makes (Samsun, Carter's, Razr); it was 0.227 before the edits were weighed.
    assert!(names <= 0.15, "look-alike names flagged: {names:.4}");
}
