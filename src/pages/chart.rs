//! The console's bar chart, drawn on the server as SVG: no script, no
//! library, and screen readers get a label and a title per bar.

use crate::ports::clock::rfc3339;
use crate::ports::store::SeriesPoint;
use maud::{html, Markup};

const WIDTH: u64 = 720;
const HEIGHT: u64 = 180;
/// Room under the bars for the time labels.
const AXIS: u64 = 20;

/// How a chart's buckets are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buckets {
    /// `14:00`, labelled every 6 hours.
    Hours,
    /// `2026-11-26`, labelled every 5 days.
    Days,
}

impl Buckets {
    fn name(self, start: u64) -> String {
        let t = rfc3339(start);
        match self {
            Self::Hours => format!("{} {}", &t[..10], &t[11..16]),
            Self::Days => t[..10].to_owned(),
        }
    }

    fn tick(self, start: u64) -> String {
        let t = rfc3339(start);
        match self {
            Self::Hours => t[11..16].to_owned(),
            Self::Days => t[5..10].to_owned(),
        }
    }

    fn every(self) -> usize {
        match self {
            Self::Hours => 6,
            Self::Days => 5,
        }
    }
}

/// Three bars per bucket: codes sent, verified and failed.
pub fn chart(id: &str, label: &str, points: &[SeriesPoint], buckets: Buckets) -> Markup {
    let max = points
        .iter()
        .flat_map(|p| [p.sent, p.verified, p.failed])
        .max()
        .unwrap_or(0)
        .max(1);
    let n = points.len().max(1) as u64;
    let slot = WIDTH / n;
    let bar = (slot.saturating_sub(2) / 3).max(1);
    let plot = HEIGHT - AXIS;
    let height = |v: u64| v * plot / max;
    html! {
        svg id=(id) .chart role="img" aria-label=(label) viewBox=(format!("0 0 {WIDTH} {HEIGHT}"))
            xmlns="http://www.w3.org/2000/svg" {
            title { (label) }
            // `{}`, not `;`: in SVG a `<line>` left open swallows what follows.
            line .axis x1="0" y1=(plot) x2=(WIDTH) y2=(plot) {}
            text .max x="2" y="10" { (max) }
            @for (i, p) in points.iter().enumerate() {
                @let x = i as u64 * slot + 1;
                @let name = buckets.name(p.start);
                g .bar {
                    @for (j, (class, value)) in [("sent", p.sent), ("verified", p.verified), ("failed", p.failed)].into_iter().enumerate() {
                        rect class=(class) x=(x + j as u64 * bar) y=(plot - height(value))
                            width=(bar) height=(height(value)) {
                            title { (name) " — " (class) ": " (value) }
                        }
                    }
                    @if i % buckets.every() == 0 {
                        text .tick x=(x) y=(HEIGHT - 4) { (buckets.tick(p.start)) }
                    }
                }
            }
        }
    }
}

/// The key to the series' colours, shared by both charts.
pub fn legend() -> Markup {
    html! {
        ul .legend {
            li { span .swatch.sent {} "Codes sent" }
            li { span .swatch.verified {} "Verified" }
            li { span .swatch.failed {} "Failed guesses" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_group_of_three_bars_per_bucket_scaled_to_the_largest() {
        let points: Vec<SeriesPoint> = (0..24)
            .map(|i| SeriesPoint {
                start: 1_764_115_200 + i * 3_600,
                sent: i,
                verified: i / 2,
                failed: 1,
            })
            .collect();
        let svg = chart("chart-hourly", "Codes per hour", &points, Buckets::Hours).into_string();
        assert_eq!(svg.matches(r#"<g class="bar">"#).count(), 24);
        assert_eq!(svg.matches("<rect").count(), 72);
        assert!(svg.contains(r#"role="img" aria-label="Codes per hour""#));
        // The largest value (23) fills the plot; the axis says so.
        assert!(svg.contains(&format!(r#"height="{}""#, HEIGHT - AXIS)));
        assert!(svg.contains("2025-11-26 00:00 — sent: 0"));
        assert!(!svg.contains("style="));
        assert!(
            svg.contains("</line>"),
            "an SVG element left open hides the rest"
        );
    }

    #[test]
    fn a_quiet_day_draws_empty_bars() {
        let points = vec![SeriesPoint::default(); 30];
        let svg = chart("chart-daily", "Codes per day", &points, Buckets::Days).into_string();
        assert_eq!(svg.matches(r#"<g class="bar">"#).count(), 30);
        assert!(svg.contains(r#"height="0""#));
    }
}
