//! Reads JSON embedded in a page's script without building a DOM.
//!
//! The value is parsed once, in a streaming pass that keeps only what the definition points
//! at: the listing array element by element and a few scalar values. A page cut off inside
//! the JSON still yields every listing that was complete before the cut.

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::platform::EmbeddedJson;

/// What a pass captured.
#[derive(Debug, Default)]
pub(crate) struct Captured {
    /// Complete elements of the listing array, in order.
    pub items: Vec<Value>,
    /// Whether the listing array was reached at all.
    pub items_found: bool,
    /// Values at the requested scalar pointers (None: absent or not reached).
    pub values: Vec<Option<Value>>,
    /// Whether the JSON ended early or was malformed after the start.
    pub incomplete: bool,
    /// Why the value could not be read, when nothing could be.
    pub error: Option<String>,
}

/// Finds the embedded value's start and captures `items` (a pointer to an array) and `values`.
/// With `item_fields` (pointers relative to one listing), each listing keeps only those
/// values, which skips building the rest. None when the variable or regex is not in the page.
pub(crate) fn capture(
    spec: &EmbeddedJson,
    text: &str,
    items: Option<&str>,
    item_fields: &[&str],
    values: &[&str],
) -> Option<Captured> {
    let m = spec.start_regex()?.find(text)?;
    let start = m.end();
    let rest = &text[start..];
    let mut targets: Vec<Target> = Vec::new();
    if let Some(p) = items {
        targets.push(Target {
            path: split_pointer(p),
            slot: Slot::Items,
        });
    }
    for (i, p) in values.iter().enumerate() {
        targets.push(Target {
            path: split_pointer(p),
            slot: Slot::Value(i),
        });
    }
    let sink = RefCell::new(Captured {
        values: vec![None; values.len()],
        ..Captured::default()
    });
    let whole = |p: &&str| p.is_empty() || split_pointer(p).iter().any(|s| s == "*");
    let item_targets: Vec<Target> = if item_fields.iter().any(whole) {
        Vec::new() // a rule reads the whole listing (or any element of an array): keep it whole
    } else {
        item_fields
            .iter()
            .enumerate()
            .map(|(i, p)| Target {
                path: split_pointer(p),
                slot: Slot::Value(i),
            })
            .collect()
    };
    let active: Vec<usize> = (0..targets.len()).collect();
    let mut de = serde_json::Deserializer::from_str(rest);
    let walker = Walker {
        depth: 0,
        active,
        targets: &targets,
        item_targets: &item_targets,
        sink: &sink,
    };
    let result = walker.deserialize(&mut de);
    let mut captured = sink.into_inner();
    if let Err(e) = result {
        captured.incomplete = true;
        let nothing = !captured.items_found && captured.values.iter().all(Option::is_none);
        if nothing {
            // Not JSON from the start: perhaps a JavaScript object literal (unquoted keys,
            // single quotes, trailing commas), read as JSON5.
            match js_literal(rest.trim_start()) {
                Ok(v) => return Some(from_value(&v, items, values)),
                Err(js) => {
                    captured.error = Some(format!("not JSON ({e}), nor a JavaScript object ({js})"))
                }
            }
        }
    }
    Some(captured)
}

/// Reads a JavaScript object or array literal at the start of `text` as JSON5.
fn js_literal(text: &str) -> Result<Value, String> {
    let extent = literal_extent(text).ok_or("no complete `{...}` or `[...]` value")?;
    json5::from_str::<Value>(extent).map_err(|e| e.to_string())
}

/// The balanced `{...}` or `[...]` at the start of `text`, skipping strings and comments.
fn literal_extent(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    if !matches!(b.first(), Some(b'{' | b'[')) {
        return None;
    }
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'' | b'`') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return text.get(..=i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// What a pass would have captured, from a value already in memory.
fn from_value(v: &Value, items: Option<&str>, values: &[&str]) -> Captured {
    let found = items.and_then(|p| v.pointer(p));
    Captured {
        items_found: found.is_some(),
        items: match found {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        },
        values: values.iter().map(|p| v.pointer(p).cloned()).collect(),
        incomplete: false,
        error: None,
    }
}

/// Every value at `pointer`, where a `*` segment stands for each element of an array (or
/// each value of an object).
pub(crate) fn pointer_all<'v>(v: &'v Value, pointer: &str) -> Vec<&'v Value> {
    let mut cur = vec![v];
    for seg in split_pointer(pointer) {
        cur = cur
            .into_iter()
            .flat_map(|x| -> Vec<&Value> {
                match (x, seg.as_str()) {
                    (Value::Array(a), "*") => a.iter().collect(),
                    (Value::Object(o), "*") => o.values().collect(),
                    (Value::Array(a), s) => s
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| a.get(i))
                        .into_iter()
                        .collect(),
                    (Value::Object(o), s) => o.get(s).into_iter().collect(),
                    _ => Vec::new(),
                }
            })
            .collect();
    }
    cur
}

/// Splits an RFC 6901 pointer into unescaped segments.
pub(crate) fn split_pointer(p: &str) -> Vec<String> {
    if p.is_empty() {
        return Vec::new();
    }
    p.split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

#[derive(Clone, Copy)]
enum Slot {
    Items,
    Value(usize),
}

struct Target {
    path: Vec<String>,
    slot: Slot,
}

/// Walks the value; at each level only the targets whose path still matches stay active.
struct Walker<'a> {
    depth: usize,
    active: Vec<usize>,
    targets: &'a [Target],
    /// Per-listing targets handed to the listing array's sink.
    item_targets: &'a [Target],
    sink: &'a RefCell<Captured>,
}

impl Walker<'_> {
    /// Targets continuing through child `key`.
    fn children(&self, key: &str) -> Vec<usize> {
        self.active
            .iter()
            .copied()
            .filter(|&t| {
                self.targets[t]
                    .path
                    .get(self.depth)
                    .is_some_and(|s| s == key)
            })
            .collect()
    }

    fn store(&self, slot: Slot, value: Value) {
        let mut sink = self.sink.borrow_mut();
        match slot {
            Slot::Value(i) => sink.values[i] = Some(value),
            Slot::Items => {
                sink.items_found = true;
                if let Value::Array(items) = value {
                    sink.items = items;
                }
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walker<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        // The root itself is a target (empty pointer).
        let at_end: Vec<usize> = self
            .active
            .iter()
            .copied()
            .filter(|&t| self.targets[t].path.len() == self.depth)
            .collect();
        if let Some(&t) = at_end.first() {
            if let Slot::Items = self.targets[t].slot {
                return ItemsSink {
                    sink: self.sink,
                    item_targets: self.item_targets,
                }
                .deserialize(d);
            }
            let v = Value::deserialize(d)?;
            for &t in &at_end {
                self.store(self.targets[t].slot, v.clone());
            }
            return Ok(());
        }
        d.deserialize_any(self)
    }
}

use serde::Deserialize;

impl<'de> Visitor<'de> for Walker<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let next = self.children(&key);
            if next.is_empty() {
                map.next_value::<IgnoredAny>()?;
            } else {
                map.next_value_seed(Walker {
                    depth: self.depth + 1,
                    active: next,
                    targets: self.targets,
                    item_targets: self.item_targets,
                    sink: self.sink,
                })?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let next = self.children(&i.to_string());
            let more = if next.is_empty() {
                seq.next_element::<IgnoredAny>()?.is_some()
            } else {
                seq.next_element_seed(Walker {
                    depth: self.depth + 1,
                    active: next,
                    targets: self.targets,
                    item_targets: self.item_targets,
                    sink: self.sink,
                })?
                .is_some()
            };
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Streams the listing array into the sink one complete element at a time.
struct ItemsSink<'a> {
    sink: &'a RefCell<Captured>,
    item_targets: &'a [Target],
}

impl<'de> DeserializeSeed<'de> for ItemsSink<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.sink.borrow_mut().items_found = true;
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemsSink<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of listings")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.item_targets.is_empty() {
            while let Some(v) = seq.next_element::<Value>()? {
                self.sink.borrow_mut().items.push(v);
            }
            return Ok(());
        }
        let n = self.item_targets.len();
        let item = RefCell::new(Captured {
            values: vec![None; n],
            ..Captured::default()
        });
        loop {
            let walker = Walker {
                depth: 0,
                active: (0..n).collect(),
                targets: self.item_targets,
                item_targets: &[],
                sink: &item,
            };
            if seq.next_element_seed(walker)?.is_none() {
                return Ok(());
            }
            let values = std::mem::replace(&mut item.borrow_mut().values, vec![None; n]);
            let sparse = sparse_object(self.item_targets, values);
            self.sink.borrow_mut().items.push(sparse);
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// An object holding only the captured values, each at its pointer's path.
fn sparse_object(targets: &[Target], values: Vec<Option<Value>>) -> Value {
    let mut root = Value::Object(serde_json::Map::new());
    for (t, v) in targets.iter().zip(values) {
        let (Some(v), Some((last, parents))) = (v, t.path.split_last()) else {
            continue;
        };
        let mut cur = &mut root;
        for seg in parents {
            let Value::Object(map) = cur else { break };
            cur = map
                .entry(seg.clone())
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
        }
        if let Value::Object(map) = cur {
            map.insert(last.clone(), v);
        }
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> EmbeddedJson {
        let mut spec = EmbeddedJson {
            variable: Some("g_page_config".into()),
            ..EmbeddedJson::default()
        };
        spec.validate("search.json", crate::platform::PageFormat::Html)
            .unwrap();
        spec
    }

    const PAGE: &str = r#"<script> var x = 1; g_page_config = {"mods":{"pager":{"data":{"currentPage":2,"totalPage":3}},"itemlist":{"data":{"auctions":[{"nid":"1","t":"a"},{"nid":"2","t":"b \u003c/script\u003e"},{"nid":"3","t":"c"}]}}}};
    g_srp_init();</script>"#;

    #[test]
    fn captures_items_and_values_in_one_pass() {
        let c = capture(
            &spec(),
            PAGE,
            Some("/mods/itemlist/data/auctions"),
            &["/t"],
            &["/mods/pager/data/currentPage", "/mods/pager/data/totalPage"],
        )
        .unwrap();
        assert!(!c.incomplete);
        assert_eq!(c.items.len(), 3);
        assert_eq!(c.items[1]["t"], "b </script>");
        assert!(
            c.items[1].get("nid").is_none(),
            "only the wanted fields are kept"
        );
        assert_eq!(c.values, vec![Some(Value::from(2)), Some(Value::from(3))]);
    }

    #[test]
    fn truncated_json_keeps_complete_items_only() {
        let cut = &PAGE[..PAGE.find(r#""t":"c"#).unwrap() + 5];
        let c = capture(&spec(), cut, Some("/mods/itemlist/data/auctions"), &[], &[]).unwrap();
        assert!(c.incomplete);
        let ids: Vec<_> = c.items.iter().map(|i| i["nid"].as_str().unwrap()).collect();
        assert_eq!(ids, ["1", "2"]);
    }

    #[test]
    fn missing_variable_is_none() {
        assert!(capture(&spec(), "<html>no script</html>", Some("/a"), &[], &[]).is_none());
    }
}
