//! The SVG chart of a [`Report`]: one horizontal bar per row that has a baseline, its length
//! nadb's ratio to the first baseline on a log scale, with a line at 1 (as fast as the
//! baseline).

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use super::{BenchError, Report};

const WIDTH: u32 = 1200;
const BAR_HEIGHT: u32 = 22;

fn chart_err(e: impl std::fmt::Display) -> BenchError {
    BenchError::Chart(e.to_string())
}

/// Draws the chart as an SVG document.
pub(crate) fn ratios(report: &Report) -> Result<String, BenchError> {
    // Top to bottom in report order; plotters counts segments from the bottom.
    let bars: Vec<(String, f64)> = report
        .rows
        .iter()
        .filter_map(|row| {
            let b = row.baselines.first()?;
            let label = format!(
                "{} · {} · {} (vs {})",
                row.backend,
                row.mode.name(),
                row.title,
                b.name
            );
            Some((label, b.ratio.max(1e-4)))
        })
        .rev()
        .collect();
    let n = bars.len().max(1);
    let lo = bars.iter().map(|b| b.1).fold(1.0, f64::min) / 1.5;
    // Room right of the longest bar for its label.
    let hi = bars.iter().map(|b| b.1).fold(1.0, f64::max) * 4.0;
    let height = 90 + BAR_HEIGHT * n as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "nadb ÷ baseline, {} (right of 1: nadb faster)",
                    report.machine.cpu
                ),
                ("sans-serif", 16),
            )
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(560)
            .build_cartesian_2d((lo..hi).log_scale(), (0..n).into_segmented())
            .map_err(chart_err)?;
        let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .x_label_formatter(&|x| format!("{x}×"))
            .x_desc("nadb speed ÷ baseline speed (log scale)")
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(chart_err)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, r))| {
                let color = if *r >= 1.0 {
                    RGBColor(46, 139, 87)
                } else {
                    RGBColor(70, 110, 180)
                };
                let mut bar = Rectangle::new(
                    [
                        (lo, SegmentValue::Exact(i)),
                        (*r, SegmentValue::Exact(i + 1)),
                    ],
                    color.filled(),
                );
                bar.set_margin(3, 3, 0, 0);
                bar
            }))
            .map_err(chart_err)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, r))| {
                Text::new(
                    format!(" {}", super::report::ratio_text(*r)),
                    (*r, SegmentValue::CenterOf(i)),
                    ("sans-serif", 12),
                )
            }))
            .map_err(chart_err)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Last)],
                BLACK.stroke_width(1),
            )))
            .map_err(chart_err)?;
        root.present().map_err(chart_err)?;
    }
    Ok(svg)
}
