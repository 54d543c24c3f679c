//! Charts as SVG rendered on the server: no chart library and no script.
//! Each chart has a title (the SVG's `<title>` and the figure's caption)
//! and a data table holding every plotted value, for screen readers and
//! tests.

use askama::Template;

/// One series (a colour in the stack).
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Its name, in the legend and the table's header.
    pub name: &'static str,
    /// Its CSS class (`allowed`, `blocked`, `rejected`, …: the stylesheet
    /// colours `.chart .<class>`).
    pub class: &'static str,
}

/// One bar: its label (e.g. a day) and one value per series.
#[derive(Debug, Clone)]
pub(crate) struct Bar {
    /// The label under the bar and in the table.
    pub label: String,
    /// One value per series, bottom to top.
    pub values: Vec<u64>,
}

/// A rectangle to draw.
#[derive(Debug)]
pub(crate) struct Rect {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
    class: &'static str,
    tip: String,
}

/// An axis label.
#[derive(Debug)]
pub(crate) struct Label {
    x: u32,
    y: u32,
    text: String,
    anchor: &'static str,
}

/// A stacked bar chart: one bar per label, one stacked segment per series.
#[derive(Debug, Template)]
#[template(path = "chart_partial.html")]
pub(crate) struct StackedBars {
    id: String,
    title: String,
    series: Vec<Series>,
    bars: Vec<Bar>,
    rects: Vec<Rect>,
    labels: Vec<Label>,
    width: u32,
    height: u32,
}

const WIDTH: u32 = 720;
const HEIGHT: u32 = 220;
const LEFT: u32 = 44;
const BOTTOM: u32 = 24;
const TOP: u32 = 8;

impl StackedBars {
    /// A chart titled `title` (`id` must be unique on the page: it names
    /// the SVG's title element).
    pub(crate) fn new(id: &str, title: &str, series: Vec<Series>, bars: Vec<Bar>) -> Self {
        let max = bars.iter().map(|b| b.values.iter().sum::<u64>()).max().unwrap_or(0).max(1);
        let plot_h = HEIGHT - BOTTOM - TOP;
        let count = u32::try_from(bars.len()).unwrap_or(u32::MAX).max(1);
        let slot = (WIDTH - LEFT) / count;
        let bar_w = (slot * 7 / 10).max(1);
        let scale = |v: u64| -> u32 {
            let h = u128::from(v) * u128::from(plot_h) / u128::from(max);
            u32::try_from(h).unwrap_or(plot_h)
        };
        let mut rects = Vec::new();
        let mut labels = Vec::new();
        let step = (bars.len() / 6).max(1);
        for (i, bar) in bars.iter().enumerate() {
            let x = LEFT + u32::try_from(i).unwrap_or(0) * slot + (slot - bar_w) / 2;
            let mut base = 0u64;
            for (value, s) in bar.values.iter().zip(&series) {
                if *value > 0 {
                    let y_top = HEIGHT - BOTTOM - scale(base + value);
                    let h = scale(base + value) - scale(base);
                    rects.push(Rect {
                        x,
                        y: y_top,
                        w: bar_w,
                        h: h.max(1),
                        class: s.class,
                        tip: format!("{}: {} {}", bar.label, value, s.name),
                    });
                }
                base += value;
            }
            if i % step == 0 || i + 1 == bars.len() {
                // The last label ends at its bar's right edge, so it stays
                // inside the drawing however long it is.
                let (lx, anchor) = if i + 1 == bars.len() { (x + bar_w, "end") } else { (x + bar_w / 2, "middle") };
                labels.push(Label { x: lx, y: HEIGHT - 6, text: bar.label.clone(), anchor });
            }
        }
        labels.push(Label { x: LEFT - 6, y: TOP + 10, text: max.to_string(), anchor: "end" });
        labels.push(Label { x: LEFT - 6, y: HEIGHT - BOTTOM, text: "0".to_owned(), anchor: "end" });
        Self { id: id.to_owned(), title: title.to_owned(), series, bars, rects, labels, width: WIDTH, height: HEIGHT }
    }

    /// The chart and its data table as HTML (embed with `|safe`: every
    /// value in it was escaped when it was rendered).
    pub(crate) fn html(&self) -> String {
        self.render().unwrap_or_else(|e| {
            tracing::error!(error = %e, "a chart failed to render");
            String::new()
        })
    }
}

impl Bar {
    /// The sum of its values.
    pub(crate) fn total(&self) -> u64 {
        self.values.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;

    fn chart(bars: Vec<Bar>) -> StackedBars {
        let series = vec![Series { name: "allowed", class: "allowed" }, Series { name: "blocked", class: "blocked" }];
        StackedBars::new("t", "Decisions <per> day", series, bars)
    }

    #[test]
    fn the_tallest_bar_fills_the_plot_and_segments_stack() {
        let c = chart(vec![
            Bar { label: "d1".into(), values: vec![10, 30] },
            Bar { label: "d2".into(), values: vec![20, 0] },
        ]);
        let plot_h = HEIGHT - BOTTOM - TOP;
        let d1: Vec<_> = c.rects.iter().filter(|r| r.tip.starts_with("d1")).collect();
        assert_eq!(d1.len(), 2);
        assert_eq!(d1[0].h + d1[1].h, plot_h);
        assert_eq!(d1[1].y + d1[1].h, d1[0].y, "blocked sits on allowed");
        let d2: Vec<_> = c.rects.iter().filter(|r| r.tip.starts_with("d2")).collect();
        assert_eq!(d2.len(), 1, "zero segments are not drawn");
        assert_eq!(d2[0].h, plot_h / 2);
    }

    #[test]
    fn html_escapes_labels_and_lists_every_value() {
        let html = chart(vec![Bar { label: "<b>".into(), values: vec![1, 2] }]).html();
        assert!(!html.contains("<b>"), "{html}");
        assert!(!html.contains("<per>"));
        assert!(html.contains("<td class=\"num\">3</td>"), "the table holds the total: {html}");
    }

    #[test]
    fn the_last_label_ends_inside_the_drawing() {
        let bars = (1..=30).map(|d| Bar { label: format!("2026-11-{d:02}"), values: vec![d, 1] }).collect();
        let c = chart(bars);
        let last = c.labels.iter().find(|l| l.text == "2026-11-30").unwrap();
        assert_eq!(last.anchor, "end");
        assert!(last.x <= WIDTH);
    }

    #[test]
    fn an_empty_chart_renders() {
        assert!(chart(vec![]).html().contains("<svg"));
    }
}
