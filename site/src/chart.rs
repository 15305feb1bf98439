//! A small SVG line chart of shares over time, with no dependencies and no script.
//!
//! Each series is drawn in its own colour (a palette safe for colour-blind readers)
//! and its own dash pattern, is named in a legend above the plot and is labelled at
//! the end of its line, so the chart reads without colour too.

use std::fmt::Write as _;

use jiff::Timestamp;
use wavecast_schema::Simulation;

/// One line of a [`LineChart`].
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The name shown in the legend and at the end of the line.
    pub label: String,
    /// One value per time of the chart, in percent (`0..=100`).
    pub values: Vec<f64>,
}

/// A line chart of percentages over time.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// The heading drawn above the plot (and the SVG's accessible name).
    pub title: String,
    /// The x positions, in increasing order.
    pub times: Vec<Timestamp>,
    /// The lines.
    pub series: Vec<Series>,
    /// An instant to mark with a labelled vertical line, such as "now".
    pub marker: Option<(Timestamp, String)>,
}

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 78.0;
const BOTTOM: f64 = 58.0;

/// Okabe–Ito colours, distinguishable with the common colour-vision deficiencies.
const COLOURS: [&str; 7] = [
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000",
];
/// Dash patterns, combined with the colours so no two of the first 42 lines look alike.
const DASHES: [&str; 6] = ["", "9 4", "2 3", "9 3 2 3", "14 4", "4 4"];

/// The chart of a simulation: the share of the fleet on each version over time.
/// Versions no client ever ran are left out.
pub fn share_chart(simulation: &Simulation, title: &str, now: Option<Timestamp>) -> String {
    let series = simulation
        .versions
        .iter()
        .enumerate()
        .filter(|(_, version)| version.clients.iter().any(|count| *count > 0))
        .map(|(index, version)| Series {
            label: version.label(),
            values: (0..simulation.sample_times.len())
                .map(|sample| simulation.share_percent(index, sample))
                .collect(),
        })
        .collect();
    render(&LineChart {
        title: title.to_owned(),
        times: simulation.sample_times.clone(),
        series,
        marker: now.map(|now| (now, "now".to_owned())),
    })
}

/// Renders `chart` as a standalone `<svg>` element.
pub fn render(chart: &LineChart) -> String {
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let (first, last) = match (chart.times.first(), chart.times.last()) {
        (Some(first), Some(last)) => (
            first.as_second(),
            last.as_second().max(first.as_second() + 1),
        ),
        _ => (0, 1),
    };
    let x = |second: i64| LEFT + (second - first) as f64 / (last - first) as f64 * plot_width;
    let y = |percent: f64| TOP + (1.0 - percent.clamp(0.0, 100.0) / 100.0) * plot_height;

    let mut svg = String::new();
    let title = escape(&chart.title);
    let names: Vec<&str> = chart.series.iter().map(|s| s.label.as_str()).collect();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img"><title>{title}</title><desc>Share of the fleet, in percent, on each version ({}) over time.</desc>"#,
        escape(&names.join(", "))
    );
    svg.push_str(r##"<rect x="0" y="0" width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = write!(
        svg,
        r##"<text x="{LEFT}" y="22" font-size="16" font-weight="bold" fill="#111">{title}</text>"##
    );

    // Legend: a dashed sample line and the name of each series.
    let mut legend_x = LEFT;
    for (index, series) in chart.series.iter().enumerate() {
        let (colour, dash) = style(index);
        let _ = write!(
            svg,
            r##"<g class="legend-item"><line x1="{legend_x}" y1="44" x2="{}" y2="44" stroke="{colour}" stroke-width="3"{dash}/><text x="{}" y="48" font-size="13" fill="#111">{}</text></g>"##,
            legend_x + 28.0,
            legend_x + 34.0,
            escape(&series.label)
        );
        legend_x += 48.0 + 7.5 * series.label.chars().count() as f64;
    }

    // Horizontal grid and y labels.
    for percent in [0.0, 25.0, 50.0, 75.0, 100.0] {
        let at = y(percent);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{at:.1}" x2="{:.1}" y2="{at:.1}" stroke="#d0d0d0" stroke-width="1"/><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end" fill="#333">{percent}%</text>"##,
            LEFT + plot_width,
            LEFT - 8.0,
            at + 4.0
        );
    }
    let _ = write!(
        svg,
        r##"<text transform="translate(16 {:.1}) rotate(-90)" font-size="13" text-anchor="middle" fill="#333">share of fleet</text>"##,
        TOP + plot_height / 2.0
    );

    // Time ticks on round UTC boundaries, at most about eight.
    let span = last - first;
    let interval = [
        3600,
        3 * 3600,
        6 * 3600,
        12 * 3600,
        86_400,
        2 * 86_400,
        7 * 86_400,
        30 * 86_400,
    ]
    .into_iter()
    .find(|interval| span / interval <= 8)
    .unwrap_or(span.max(1));
    let format = if interval < 86_400 {
        "%b %-d %H:%M"
    } else {
        "%b %-d"
    };
    let mut tick = first.div_euclid(interval) * interval;
    if tick < first {
        tick += interval;
    }
    while tick <= last {
        let at = x(tick);
        let label = Timestamp::from_second(tick)
            .map(|time| time.strftime(format).to_string())
            .unwrap_or_default();
        let _ = write!(
            svg,
            r##"<line x1="{at:.1}" y1="{TOP}" x2="{at:.1}" y2="{:.1}" stroke="#ececec" stroke-width="1"/><line x1="{at:.1}" y1="{:.1}" x2="{at:.1}" y2="{:.1}" stroke="#333" stroke-width="1"/><text x="{at:.1}" y="{:.1}" font-size="12" text-anchor="middle" fill="#333">{label}</text>"##,
            TOP + plot_height,
            TOP + plot_height,
            TOP + plot_height + 5.0,
            TOP + plot_height + 20.0
        );
        tick += interval;
    }
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333" stroke-width="1"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="#333" stroke-width="1"/><text x="{:.1}" y="{:.1}" font-size="13" text-anchor="middle" fill="#333">time (UTC)</text>"##,
        TOP + plot_height,
        LEFT + plot_width,
        TOP + plot_height,
        TOP + plot_height,
        LEFT + plot_width / 2.0,
        HEIGHT - 10.0
    );

    // The marker carries the plot's span, so the status page's script can move it
    // to the time the page is viewed; outside the span it is hidden.
    if let Some((when, label)) = &chart.marker {
        let second = when.as_second();
        let at = x(second.clamp(first, last));
        let hidden = if (first..=last).contains(&second) {
            ""
        } else {
            r#" visibility="hidden""#
        };
        let _ = write!(
            svg,
            r##"<g class="marker" data-first="{first}" data-last="{last}" data-left="{LEFT}" data-width="{plot_width}"{hidden}><line x1="{at:.1}" y1="{TOP}" x2="{at:.1}" y2="{:.1}" stroke="#555" stroke-width="1.5" stroke-dasharray="3 3"/><text x="{:.1}" y="{:.1}" font-size="12" fill="#555">{}</text></g>"##,
            TOP + plot_height,
            at + 4.0,
            TOP + 12.0,
            escape(label)
        );
    }

    // The lines, then their end labels spread so that they do not overlap.
    let mut ends = Vec::new();
    for (index, series) in chart.series.iter().enumerate() {
        let (colour, dash) = style(index);
        let points: Vec<String> = chart
            .times
            .iter()
            .zip(&series.values)
            .map(|(time, value)| format!("{:.1},{:.1}", x(time.as_second()), y(*value)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline class="series" data-version="{}" fill="none" stroke="{colour}" stroke-width="2.5" stroke-linejoin="round"{dash} points="{}"/>"#,
            escape(&series.label),
            points.join(" ")
        );
        if let Some(value) = series.values.last() {
            ends.push((y(*value), index, *value));
        }
    }
    ends.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut previous = f64::NEG_INFINITY;
    for (at, index, value) in ends {
        let at = at.max(previous + 15.0);
        previous = at;
        let (colour, _) = style(index);
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" fill="{colour}" font-weight="bold">{} · {value:.1}%</text>"#,
            LEFT + plot_width + 8.0,
            at + 4.0,
            escape(&chart.series[index].label)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The colour and ` stroke-dasharray` attribute of series `index`.
fn style(index: usize) -> (&'static str, String) {
    let colour = COLOURS[index % COLOURS.len()];
    let dash = DASHES[(index + index / COLOURS.len()) % DASHES.len()];
    let dash = if dash.is_empty() {
        String::new()
    } else {
        format!(r#" stroke-dasharray="{dash}""#)
    };
    (colour, dash)
}

/// Escapes text for HTML and SVG content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(count: i64) -> Vec<Timestamp> {
        (0..count)
            .map(|hour| Timestamp::from_second(1_795_000_000 + hour * 3600).unwrap())
            .collect()
    }

    fn chart() -> LineChart {
        LineChart {
            title: "stable <fleet>".into(),
            times: hours(49),
            series: vec![
                Series {
                    label: "1.0.0".into(),
                    values: (0..49).map(|h| 100.0 - f64::from(h) * 2.0).collect(),
                },
                Series {
                    label: "1.1.0".into(),
                    values: (0..49).map(|h| f64::from(h) * 2.0).collect(),
                },
            ],
            marker: Some((hours(49)[10], "now".into())),
        }
    }

    #[test]
    fn one_polyline_per_series_with_legend_and_labels() {
        let svg = render(&chart());
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches(r#"class="legend-item""#).count(), 2);
        assert!(svg.contains(r#"data-version="1.1.0""#));
        assert!(
            svg.contains("1.1.0 · 96.0%"),
            "end label with the final share"
        );
        assert!(svg.contains("share of fleet") && svg.contains("time (UTC)"));
        assert!(svg.contains("100%") && svg.contains("50%"));
        assert!(svg.contains(r#"class="marker""#));
        assert!(svg.contains("stable &lt;fleet&gt;") && !svg.contains("<fleet>"));
        let dashed = svg.matches("stroke-dasharray").count();
        assert!(dashed >= 2, "the second line is dashed, so is the marker");
    }

    #[test]
    fn lines_stay_inside_the_plot() {
        let svg = render(&chart());
        let points = svg
            .split(r#"points=""#)
            .skip(1)
            .flat_map(|rest| rest.split('"').next().unwrap().split(' '))
            .map(|pair| {
                let (x, y) = pair.split_once(',').unwrap();
                (x.parse::<f64>().unwrap(), y.parse::<f64>().unwrap())
            })
            .collect::<Vec<_>>();
        assert_eq!(points.len(), 98);
        for (x, y) in points {
            assert!((LEFT..=WIDTH - RIGHT).contains(&x), "x {x}");
            assert!((TOP..=HEIGHT - BOTTOM).contains(&y), "y {y}");
        }
    }

    #[test]
    fn a_chart_of_a_simulation_skips_versions_nobody_ran() {
        let manifest = wavecast_schema::Manifest::parse(
            br#"{"format": 2, "product": "demo", "channel": "stable", "serial": 1,
                "published_at": "2026-11-21T00:00:00Z", "expires_at": "2026-12-21T00:00:00Z",
                "min_client_version": "0.1.0", "releases": []}"#,
        )
        .unwrap();
        let fleet = wavecast_schema::Fleet::new(10, Some("0.9.0".parse().unwrap()));
        let plan = wavecast_schema::SimulationPlan::for_manifest(&manifest, 3600);
        let simulation = wavecast_schema::simulate(&manifest, &fleet, &plan);
        let svg = share_chart(&simulation, "empty", None);
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains("0.9.0 · 100.0%"));
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
    }
}
