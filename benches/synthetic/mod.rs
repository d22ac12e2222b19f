//! Synthetic registries and listings, deterministic from a seed: brand names built from
//! syllables (Latin and Chinese), 2-4 marks per brand with realistic classes, and listings that
//! mix ordinary goods (most of them), brand names, disguised marks, counterfeit wording and
//! accessories, like a real search-result stream. Shared by `benches/matcher.rs` and
//! `examples/matcher_data.rs` (which writes them out for `markwatch match`).

use markwatch::{Brand, Mark, PriceFloor};
use rand::prelude::*;
use rand_chacha::ChaCha8Rng;

const LATIN_ONSETS: &[&str] = &[
    "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br",
    "ch", "cl", "dr", "fl", "gr", "kr", "pr", "st", "tr", "ph", "sh", "",
];
const LATIN_VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "y"];
const LATIN_CODAS: &[&str] = &["", "", "n", "r", "s", "x", "l", "m", "t", "ck", "ng"];
/// Characters Chinese brand names are transliterated with (阿迪达斯, 欧米茄, 飞利浦).
const HAN_CHARS: &str = "阿埃艾安奥巴班贝比宾波伯布德迪蒂杜多厄恩法菲芬弗福盖戈格古哈汉赫亨霍基吉\
    加杰卡凯柯科克肯库拉莱兰朗劳勒雷蕾里利莉林琳隆卢鲁路伦罗洛马玛迈麦曼梅蒙米敏莫穆纳娜奈\
    尼妮纽诺欧帕佩彭皮珀普奇乔琼萨塞桑森沙莎施什斯索塔泰坦汤特提图托瓦万威维温沃乌西希锡夏\
    谢辛休雅亚扬耶伊尤约扎詹珍芝卓兹佐蔻驰莎黛诗娇兰茄浦戴宝丽";
const CLASS_SETS: &[&[u8]] = &[
    &[25],
    &[18, 25],
    &[3],
    &[9],
    &[14],
    &[28],
    &[7, 8, 11],
    &[3, 14, 18, 25],
    &[29, 30, 32],
    &[9, 28],
];
const GOODS: &[&str] = &[
    "运动鞋 男 透气 跑步鞋",
    "女包 单肩 斜挎 真皮",
    "机械表 男士 防水 夜光",
    "蓝牙耳机 无线 降噪",
    "精华液 补水 保湿 30ml",
    "积木 拼装 益智 玩具",
    "吹风机 负离子 家用",
    "手机壳 硅胶 防摔",
    "连衣裙 夏季 新款 显瘦",
    "口红 哑光 持久 不脱色",
    "新鲜水果 5斤装 脆甜",
    "保温杯 316不锈钢 大容量",
    "T恤 纯棉 短袖 宽松",
    "充电器 快充 20W PD",
    "羽绒服 女 中长款 加厚",
];
const ORDINARY: &[&str] = &[
    "2024新款 纯棉 短袖T恤 男 宽松 潮流 百搭 夏季",
    "家用 多功能 电饭煲 4L 智能 预约 不粘内胆",
    "加厚 珊瑚绒 毛毯 秋冬 沙发 午睡 盖毯",
    "儿童 书包 小学生 减负 护脊 大容量 1-3年级",
    "陶瓷 马克杯 带盖 勺 创意 情侣 办公室 水杯",
    "不锈钢 菜刀 家用 切片刀 锋利 厨师 专用",
    "瑜伽垫 加厚 加宽 防滑 初学者 健身 地垫",
    "LED 台灯 护眼 学习 宿舍 充电 夹子 床头",
    "女士 羊毛 围巾 秋冬 百搭 保暖 长款 披肩",
    "Kitchen towel cotton 吸水 不掉毛 抹布 10条装",
    "Phone stand 桌面 手机支架 懒人 可调节 铝合金",
    "快乐高效 学习桌 儿童 升降 书桌 写字桌",
];
const COUNTERFEIT: &[&str] = &["高仿", "复刻", "原单", "1:1", "莆田", "A货", "精仿", "尾单"];
const SELLERS: &[&str] = &[
    "潮流前线小店",
    "优品生活馆",
    "莆田鞋业",
    "海淘精品屋",
    "数码配件城",
    "美妆集合店",
    "官方旗舰店",
];

fn latin_word(rng: &mut ChaCha8Rng, syllables: usize) -> String {
    let mut w = String::new();
    for _ in 0..syllables {
        w.push_str(LATIN_ONSETS.choose(rng).unwrap());
        w.push_str(LATIN_VOWELS.choose(rng).unwrap());
    }
    w.push_str(LATIN_CODAS.choose(rng).unwrap());
    w
}

fn han_word(rng: &mut ChaCha8Rng, han: &[char], len: usize) -> String {
    (0..len).map(|_| *han.choose(rng).unwrap()).collect()
}

/// A registry of `n` brands with about three marks each.
pub fn registry(n: usize, seed: u64) -> Vec<Brand> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let han: Vec<char> = HAN_CHARS.chars().filter(|c| !c.is_whitespace()).collect();
    let mut names = std::collections::HashSet::new();
    let mut brands = Vec::with_capacity(n);
    while brands.len() < n {
        let syllables = rng.random_range(2..=4);
        let name = latin_word(&mut rng, syllables);
        if name.len() < 4 || !names.insert(name.clone()) {
            continue;
        }
        let classes = CLASS_SETS.choose(&mut rng).unwrap().to_vec();
        let mark = |text: String, no: usize| Mark {
            text,
            jurisdiction: "CN".into(),
            registration_no: format!("BENCH-{}-{no}", brands.len()),
            classes: classes.clone(),
            expires: None,
        };
        let mut marks = vec![mark(name.to_uppercase(), 1)];
        let chinese_len = *[2, 3, 3, 3, 4].choose(&mut rng).unwrap();
        marks.push(mark(han_word(&mut rng, &han, chinese_len), 2));
        if rng.random_bool(0.5) {
            let line = latin_word(&mut rng, 2);
            marks.push(mark(format!("{} {}", name, line).to_uppercase(), 3));
        }
        if rng.random_bool(0.2) {
            marks.push(mark(latin_word(&mut rng, 3).to_uppercase(), 4));
        }
        let mut title = name.clone();
        title[..1].make_ascii_uppercase();
        brands.push(Brand {
            name: title.clone(),
            owner: format!("{title} Ltd."),
            contacts: vec![],
            reference_price_cny: Some(f64::from(rng.random_range(100..20_000))),
            authorized_sellers: vec![format!("{title}官方旗舰店")],
            aliases: vec![],
            marks,
            ..Brand::default()
        });
    }
    add_matching_fields(&mut brands, seed);
    brands
}

/// Words for price floors, each with the Nice class of its goods.
const FLOOR_GOODS: &[(&str, u8)] = &[
    ("耳机", 9),
    ("运动鞋", 25),
    ("女包", 18),
    ("机械表", 14),
    ("精华液", 3),
    ("积木", 28),
];

/// A third of the brands get price floors and one in twenty is well known; drawn from a
/// generator of their own, so names, marks and listings stay as they were before floors.
fn add_matching_fields(brands: &mut [Brand], seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_F100);
    for brand in brands {
        brand.well_known = rng.random_bool(0.05);
        if rng.random_bool(0.33) {
            let (word, class) = *FLOOR_GOODS.choose(&mut rng).unwrap();
            let base = brand.reference_price_cny.unwrap_or(500.0);
            brand.prices.push(PriceFloor {
                words: vec![word.to_owned()],
                classes: vec![class],
                min_price_cny: (base * 0.4).round().max(1.0),
            });
            if rng.random_bool(0.3) {
                brand.prices.push(PriceFloor {
                    words: vec![],
                    classes: vec![brand.marks[0].classes[0]],
                    min_price_cny: (base * 0.8).round().max(1.0),
                });
            }
        }
    }
}

/// A title disguising `mark` the way counterfeiters do.
fn disguise(rng: &mut ChaCha8Rng, mark: &str) -> String {
    match rng.random_range(0..4) {
        0 => mark
            .chars()
            .map(|c| char::from_u32(c as u32 - 'A' as u32 + 'Ａ' as u32).unwrap_or(c))
            .collect(),
        1 => mark
            .chars()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join("-"),
        2 => mark.replacen('O', "0", 1).replacen('I', "1", 1),
        _ => {
            let mut m: Vec<char> = mark.chars().collect();
            if m.len() > 5 {
                m.remove(m.len() / 2);
            }
            m.into_iter().collect()
        }
    }
}

pub struct Listing {
    pub title: String,
    pub seller: String,
    pub price: Option<f64>,
    pub category: Option<String>,
}

/// `n` listings: 55% ordinary goods, the rest naming a brand of the registry in some form.
pub fn listings(brands: &[Brand], n: usize, seed: u64) -> Vec<Listing> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let goods = *GOODS.choose(&mut rng).unwrap();
            let brand = brands.choose(&mut rng).unwrap();
            let mark = &brand.marks.choose(&mut rng).unwrap().text;
            let roll = rng.random_range(0..100);
            let title = match roll {
                0..=54 => ORDINARY.choose(&mut rng).unwrap().to_string(),
                55..=74 => format!("{mark} {goods} 2024新款"),
                75..=84 => format!("{} {goods} 包邮", disguise(&mut rng, mark)),
                85..=94 => format!(
                    "{} {mark} {goods} 正品",
                    COUNTERFEIT.choose(&mut rng).unwrap()
                ),
                _ => format!("适用于{mark} {goods} 配件"),
            };
            Listing {
                title,
                seller: SELLERS.choose(&mut rng).unwrap().to_string(),
                price: rng
                    .random_bool(0.9)
                    .then(|| f64::from(rng.random_range(9..3000))),
                category: rng
                    .random_bool(0.5)
                    .then(|| format!("服饰 > {}", goods.split(' ').next().unwrap())),
            }
        })
        .collect()
}
