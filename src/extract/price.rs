//! Price text to numbers: "¥1,299.00", "￥83.22", "149.00 - 159.00" (lower bound first).

use crate::platform::PriceRules;

/// Parses displayed price text into (lowest, highest if a range). None without any number.
pub(crate) fn parse_price(text: &str, rules: &PriceRules) -> Option<(f64, Option<f64>)> {
    let decimal = rules.decimal_separator.chars().next().unwrap_or('.');
    let cleaned = if !rules.thousands_separator.is_empty()
        && rules.thousands_separator != rules.decimal_separator
    {
        text.replace(&rules.thousands_separator, "")
    } else {
        text.to_string()
    };
    // (start, end, value) of each number in the text.
    let mut numbers: Vec<(usize, usize, f64)> = Vec::new();
    let mut chars = cleaned.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if !c.is_ascii_digit() {
            continue;
        }
        let mut s = String::from(c);
        let mut end = start + c.len_utf8();
        let mut seen_decimal = false;
        while let Some(&(i, d)) = chars.peek() {
            if d.is_ascii_digit() {
                s.push(d);
            } else if d == decimal && !seen_decimal {
                seen_decimal = true;
                s.push('.');
            } else {
                break;
            }
            end = i + d.len_utf8();
            chars.next();
        }
        if let Ok(v) = s.trim_end_matches('.').parse::<f64>()
            && v.is_finite()
        {
            numbers.push((start, end, v));
        }
        if numbers.len() == 2 {
            break;
        }
    }
    let (_, first_end, low) = *numbers.first()?;
    let high = numbers.get(1).and_then(|&(start, _, v)| {
        let between = &cleaned[first_end..start];
        rules
            .range_separators
            .iter()
            .any(|sep| between.contains(sep.as_str()))
            .then_some(v)
    });
    Some((low, high))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_formats() {
        let r = PriceRules::default();
        assert_eq!(parse_price("¥1,299.00", &r), Some((1299.0, None)));
        assert_eq!(parse_price("￥83.22", &r), Some((83.22, None)));
        assert_eq!(
            parse_price("149.00 - 159.00", &r),
            Some((149.0, Some(159.0)))
        );
        assert_eq!(
            parse_price("￥149.00 - ￥159.00", &r),
            Some((149.0, Some(159.0)))
        );
        assert_eq!(parse_price("99", &r), Some((99.0, None)));
        assert_eq!(parse_price("价格面议", &r), None);
        assert_eq!(parse_price("", &r), None);
    }

    #[test]
    fn two_prices_without_a_separator_are_not_a_range() {
        let r = PriceRules::default();
        assert_eq!(parse_price("￥83.22 ￥99.00", &r), Some((83.22, None)));
    }
}
