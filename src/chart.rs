//! Charts drawn as SVG text on the server: no script, and readable without colour. Each
//! series has its own dash pattern and marker and is named in a legend; reference lines
//! are labelled in words; the title and every label are `<text>`, so Chinese names render
//! with the page's fonts and screen readers and `pdftotext` can read them.

use std::fmt::Write as _;

use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

const WIDTH: f64 = 720.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 36.0;
const FONTS: &str = "'Noto Sans CJK SC','WenQuanYi Micro Hei','Microsoft YaHei',sans-serif";

/// Dash patterns and markers, in the order series get them; the colours only help.
const DASHES: [&str; 6] = ["", "7 4", "2 3", "9 3 2 3", "4 2", "1 4"];
const COLOURS: [&str; 6] = [
    "#1f4e79", "#b03a2e", "#2e7d32", "#6a1b9a", "#8d6e00", "#37474f",
];

/// One named line of values, one per x position; `None` where there is no value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// A horizontal line across the plot, such as a programme's threshold.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reference {
    pub value: f64,
    pub label: String,
}

/// A line chart over ordered categories (weeks).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LineChart<'a> {
    /// Unique on the page: the SVG's ids derive from it.
    pub id: &'a str,
    pub title: &'a str,
    pub x_labels: &'a [String],
    pub series: &'a [Series],
    /// Appended to the y axis's numbers ("%", " d").
    pub unit: &'a str,
    /// Values are multiplied by this for display (100 for rates).
    pub scale: f64,
    pub reference: Option<Reference>,
}

/// A horizontal bar chart: one bar per label.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BarChart<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub bars: &'a [(String, Option<f64>)],
    /// The value a full-width bar stands for.
    pub max: f64,
    pub unit: &'a str,
    pub scale: f64,
    pub reference: Option<Reference>,
}

fn open(out: &mut String, id: &str, title: &str, desc: &str, height: f64) {
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-labelledby="{id}-title {id}-desc" font-family="{FONTS}" font-size="12"><title id="{id}-title">{t}</title><desc id="{id}-desc">{d}</desc><rect width="{WIDTH}" height="{height}" fill="#fff"/><text x="{LEFT}" y="20" font-size="14" font-weight="bold">{t}</text>"##,
        id = attr(id),
        t = text(title),
        d = text(desc),
    );
}

/// A round top for the y axis: 1, 2 or 5 times a power of ten, at least `max`.
fn nice_ceiling(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * power)
}

/// A number as the axis and labels show it: whole where it is whole.
pub(crate) fn number(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else if v.abs() >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn marker(out: &mut String, i: usize, x: f64, y: f64, colour: &str) {
    let _ = match i % DASHES.len() {
        0 => write!(
            out,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{colour}"/>"#
        ),
        1 => write!(
            out,
            r#"<rect x="{:.1}" y="{:.1}" width="6" height="6" fill="{colour}"/>"#,
            x - 3.0,
            y - 3.0
        ),
        2 => write!(
            out,
            r#"<path d="M{x:.1} {:.1}L{:.1} {:.1}L{:.1} {:.1}Z" fill="{colour}"/>"#,
            y - 4.0,
            x + 4.0,
            y + 3.0,
            x - 4.0,
            y + 3.0
        ),
        3 => write!(
            out,
            r#"<path d="M{x:.1} {:.1}L{:.1} {y:.1}L{x:.1} {:.1}L{:.1} {y:.1}Z" fill="{colour}"/>"#,
            y - 4.0,
            x + 4.0,
            y + 4.0,
            x - 4.0
        ),
        4 => write!(
            out,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="#fff" stroke="{colour}" stroke-width="1.5"/>"##
        ),
        _ => write!(
            out,
            r#"<path d="M{:.1} {:.1}L{:.1} {:.1}M{:.1} {:.1}L{:.1} {:.1}" stroke="{colour}" stroke-width="1.5"/>"#,
            x - 3.0,
            y - 3.0,
            x + 3.0,
            y + 3.0,
            x - 3.0,
            y + 3.0,
            x + 3.0,
            y - 3.0
        ),
    };
}

/// Draws a line chart. Markers are drawn at every point up to 13 weeks, and at each
/// series' last point beyond, where 52 would crowd.
pub(crate) fn line_chart(c: &LineChart<'_>) -> String {
    let legend_rows = c.series.len().div_ceil(3) as f64;
    let plot_h = 180.0;
    let bottom = 30.0 + legend_rows * 18.0;
    let height = TOP + plot_h + bottom;
    let plot_w = WIDTH - LEFT - RIGHT;
    let n = c.x_labels.len().max(1);
    let values = c
        .series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .map(|v| v * c.scale);
    let values: Vec<f64> = values
        .chain(c.reference.iter().map(|r| r.value * c.scale))
        .collect();
    // Counts get whole-number steps: a top of at least 5, in fives.
    let whole = values.iter().all(|v| v.fract() == 0.0);
    let top_value =
        nice_ceiling(values.iter().copied().fold(0.0, f64::max)).max(if whole { 5.0 } else { 0.0 });
    let x_at = |i: usize| {
        if n == 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * i as f64 / (n - 1) as f64
        }
    };
    let y_at = |v: f64| TOP + plot_h - plot_h * (v * c.scale / top_value).clamp(0.0, 1.0);
    let desc = format!(
        "{} series over {} weeks: {}",
        c.series.len(),
        c.x_labels.len(),
        c.series
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut out = String::with_capacity(4096);
    open(&mut out, c.id, c.title, &desc, height);

    // Grid and y axis labels, at round values: 20 in fours, 10 and 50 in fives.
    let steps = if (top_value / 10f64.powf(top_value.log10().floor()) - 2.0).abs() < 1e-9 {
        4
    } else {
        5
    };
    for step in 0..=steps {
        let v = top_value * f64::from(step) / f64::from(steps);
        let y = TOP + plot_h - plot_h * f64::from(step) / f64::from(steps);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#444">{}{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            number(v),
            text(c.unit)
        );
    }
    // x labels: at most about eight, always the last.
    let every = n.div_ceil(8).max(1);
    for (i, label) in c.x_labels.iter().enumerate() {
        // The last label always shows; a regular one too close before it gives way.
        let last = i + 1 == n;
        if last || (i % every == 0 && n - 1 - i >= every.div_ceil(2).max(1)) {
            let _ = write!(
                out,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#444">{}</text>"##,
                x_at(i),
                TOP + plot_h + 16.0,
                text(label)
            );
        }
    }
    if let Some(r) = &c.reference {
        let y = y_at(r.value);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#000" stroke-dasharray="1 3"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"##,
            LEFT + plot_w,
            LEFT + plot_w,
            y - 4.0,
            text(&r.label)
        );
    }
    for (si, s) in c.series.iter().enumerate() {
        let colour = COLOURS[si % COLOURS.len()];
        let dash = DASHES[si % DASHES.len()];
        // Gaps (weeks without a value) break the line.
        let mut d = String::new();
        let mut pen_down = false;
        for (i, v) in s.values.iter().enumerate() {
            match v {
                Some(v) => {
                    let _ = write!(
                        d,
                        "{}{:.1} {:.1}",
                        if pen_down { "L" } else { "M" },
                        x_at(i),
                        y_at(*v)
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        let _ = write!(
            out,
            r#"<path d="{d}" fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"><title>{}</title></path>"#,
            text(&s.name)
        );
        let last = s.values.iter().rposition(Option::is_some);
        for (i, v) in s.values.iter().enumerate() {
            if let Some(v) = v
                && (n <= 13 || Some(i) == last)
            {
                marker(&mut out, si, x_at(i), y_at(*v), colour);
            }
        }
    }
    // Legend: a sample of each line with its marker and name.
    for (si, s) in c.series.iter().enumerate() {
        let colour = COLOURS[si % COLOURS.len()];
        let x = LEFT + (si % 3) as f64 * (plot_w / 3.0);
        let y = TOP + plot_h + 36.0 + (si / 3) as f64 * 18.0;
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="2" stroke-dasharray="{}"/>"#,
            x + 28.0,
            y - 4.0,
            y - 4.0,
            DASHES[si % DASHES.len()]
        );
        marker(&mut out, si, x + 14.0, y - 4.0, colour);
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{y:.1}">{}</text>"#,
            x + 34.0,
            text(&s.name)
        );
    }
    out.push_str("</svg>");
    out
}

/// Draws horizontal bars, each labelled with its value; a bar without a value says so.
pub(crate) fn bar_chart(c: &BarChart<'_>) -> String {
    let label_w = 280.0;
    let row_h = 24.0;
    let plot_x = LEFT + label_w - 40.0;
    let plot_w = WIDTH - plot_x - RIGHT - 56.0;
    let height = TOP + 12.0 + row_h * c.bars.len().max(1) as f64 + 24.0;
    let desc = format!("{} bars", c.bars.len());
    let mut out = String::with_capacity(2048);
    open(&mut out, c.id, c.title, &desc, height);
    let x_at = |v: f64| plot_x + plot_w * (v / c.max).clamp(0.0, 1.0);
    if c.bars.is_empty() {
        let _ = write!(
            out,
            r##"<text x="{LEFT}" y="{:.1}" fill="#444">No data in this period.</text>"##,
            TOP + 24.0
        );
    }
    for (i, (label, value)) in c.bars.iter().enumerate() {
        let y = TOP + 12.0 + row_h * i as f64;
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect x="{plot_x:.1}" y="{:.1}" width="{plot_w:.1}" height="14" fill="none" stroke="#ccc"/>"##,
            plot_x - 8.0,
            y + 11.0,
            text(label),
            y
        );
        match value {
            Some(v) => {
                let _ = write!(
                    out,
                    r##"<rect x="{plot_x:.1}" y="{y:.1}" width="{:.1}" height="14" fill="{}" stroke="#000" stroke-width="0.5"/><text x="{:.1}" y="{:.1}">{}{}</text>"##,
                    x_at(*v) - plot_x,
                    COLOURS[0],
                    plot_x + plot_w + 6.0,
                    y + 11.0,
                    number(v * c.scale),
                    text(c.unit)
                );
            }
            None => {
                let _ = write!(
                    out,
                    r##"<text x="{:.1}" y="{:.1}" fill="#444">no outcome yet</text>"##,
                    plot_x + 6.0,
                    y + 11.0
                );
            }
        }
    }
    if let Some(r) = &c.reference {
        let x = x_at(r.value);
        let bottom = TOP + 12.0 + row_h * c.bars.len().max(1) as f64;
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="#000" stroke-width="1.5" stroke-dasharray="4 2"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"##,
            TOP + 4.0,
            bottom,
            bottom + 14.0,
            text(&r.label)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_tops() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(13.0), 20.0);
        assert_eq!(nice_ceiling(41.0), 50.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
    }

    #[test]
    fn hostile_names_are_escaped() {
        let series = [Series {
            name: "<script>alert(1)</script> & 淘宝".into(),
            values: vec![Some(1.0), None, Some(3.0)],
        }];
        let labels = ["a\"b".to_owned(), "2".into(), "3".into()];
        let svg = line_chart(&LineChart {
            id: "x\"y",
            title: "<b>",
            x_labels: &labels,
            series: &series,
            unit: "",
            scale: 1.0,
            reference: None,
        });
        assert!(!svg.contains("<script>") && !svg.contains("<b>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; 淘宝"));
        assert!(svg.contains(r#"id="x&quot;y-title""#));
        // The gap breaks the line into two pieces.
        assert_eq!(svg.matches(" d=\"M").count(), 1);
        assert!(svg.contains("M56.0"), "{svg}");
    }
}

/// A node of a graph: a label and a second line under it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GraphNode {
    pub label: String,
    pub detail: String,
}

/// An edge between two nodes (indexes), drawn in the style of its kind (an index into
/// `kinds` of [`graph`]), with its words as the line's tooltip.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GraphEdge {
    pub a: usize,
    pub b: usize,
    pub kind: usize,
    pub label: String,
}

/// Draws nodes on a circle with their edges, each kind of edge with its own dash pattern,
/// named in a legend. Node labels are text beside each node.
pub(crate) fn graph(
    id: &str,
    title: &str,
    nodes: &[GraphNode],
    edges: &[GraphEdge],
    kinds: &[&str],
) -> String {
    let n = nodes.len().max(1);
    let radius = (60.0 + 22.0 * n as f64).min(260.0);
    let legend_h = 20.0 * kinds.len() as f64 + 10.0;
    let height = TOP + 2.0 * radius + 80.0 + legend_h;
    let (cx, cy) = (WIDTH / 2.0, TOP + radius + 30.0);
    let at = |i: usize| {
        let angle = std::f64::consts::TAU * i as f64 / n as f64 - std::f64::consts::FRAC_PI_2;
        (cx + radius * angle.cos(), cy + radius * angle.sin())
    };
    let desc = format!("{} nodes and {} links", nodes.len(), edges.len());
    let mut out = String::with_capacity(4096);
    open(&mut out, id, title, &desc, height);
    for e in edges {
        let ((x1, y1), (x2, y2)) = (at(e.a), at(e.b));
        let _ = write!(
            out,
            r##"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{}" stroke-width="2" stroke-dasharray="{}"><title>{}</title></line>"##,
            COLOURS[e.kind % COLOURS.len()],
            DASHES[e.kind % DASHES.len()],
            text(&e.label)
        );
    }
    for (i, node) in nodes.iter().enumerate() {
        let (x, y) = at(i);
        // Labels sit outside the circle: to the right of nodes on the right half, and so on.
        let anchor = if (x - cx).abs() < 1.0 {
            "middle"
        } else if x > cx {
            "start"
        } else {
            "end"
        };
        let dx = match anchor {
            "start" => 10.0,
            "end" => -10.0,
            _ => 0.0,
        };
        let dy = match ((x - cx).abs() < 1.0, y < cy) {
            (true, true) => -22.0,
            (true, false) => 24.0,
            _ => 4.0,
        };
        let _ = write!(
            out,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="7" fill="#fff" stroke="#000" stroke-width="2"/><text x="{:.1}" y="{:.1}" text-anchor="{anchor}" font-weight="bold">{}</text><text x="{:.1}" y="{:.1}" text-anchor="{anchor}" font-size="11" fill="#333">{}</text>"##,
            x + dx,
            y + dy,
            text(&node.label),
            x + dx,
            y + dy + 14.0,
            text(&node.detail)
        );
    }
    let top = TOP + 2.0 * radius + 80.0;
    for (k, name) in kinds.iter().enumerate() {
        let y = top + 20.0 * k as f64;
        let _ = write!(
            out,
            r#"<line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{}" stroke-width="2" stroke-dasharray="{}"/><text x="{:.1}" y="{y:.1}">{}</text>"#,
            LEFT + 36.0,
            y - 4.0,
            y - 4.0,
            COLOURS[k % COLOURS.len()],
            DASHES[k % DASHES.len()],
            LEFT + 44.0,
            text(name)
        );
    }
    out.push_str("</svg>");
    out
}
