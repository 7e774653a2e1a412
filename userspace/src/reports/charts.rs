//! The charts of the reports, each an SVG document drawn by plotters.

use anyhow::{anyhow, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Series colours: ordinary traffic, anomalies, then more.
pub const BLUE: RGBColor = RGBColor(70, 110, 180);
pub const RED: RGBColor = RGBColor(205, 60, 50);
pub const GREEN: RGBColor = RGBColor(60, 150, 90);

const WIDTH: u32 = 900;
const HEIGHT: u32 = 340;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Draws with `f` on a white SVG canvas of `size`.
fn svg(
    size: (u32, u32),
    f: impl FnOnce(&Area) -> Result<(), Box<dyn std::error::Error>>,
) -> Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| anyhow!("drawing a chart: {e}"))?;
        f(&root).map_err(|e| anyhow!("drawing a chart: {e}"))?;
        root.present()
            .map_err(|e| anyhow!("drawing a chart: {e}"))?;
    }
    Ok(out)
}

type Chart<'a> = ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The legend box every chart with several series draws.
fn legend(chart: &mut Chart<'_>) -> Result<(), Box<dyn std::error::Error>> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// The label (its first `chars` characters) of the category whose axis
/// position is `position`; empty between categories.
fn category(labels: &[String], position: f64, chars: usize) -> String {
    let r = position.round();
    if (r - position).abs() < 0.01 && r >= 0.0 && (r as usize) < labels.len() {
        crate::screen::shown_cell(&labels[r as usize])
            .chars()
            .take(chars)
            .collect()
    } else {
        String::new()
    }
}

/// One series of values.
pub struct Series<'a> {
    pub name: &'a str,
    pub values: &'a [f64],
    pub color: RGBColor,
}

/// The (min, max) of every finite value, widened when flat.
fn range<'a>(values: impl Iterator<Item = &'a f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    }
}

/// Counts of `values` in `bins` equal bins over `lo..hi` (as shares of the
/// series with `share`).
pub fn bin(values: &[f64], lo: f64, hi: f64, bins: usize, share: bool) -> Vec<f64> {
    let mut counts = vec![0.0; bins];
    let width = (hi - lo) / bins as f64;
    for &v in values.iter().filter(|v| v.is_finite()) {
        let b = (((v - lo) / width) as usize).min(bins - 1);
        counts[b] += 1.0;
    }
    if share && !values.is_empty() {
        let n = values.len() as f64;
        counts.iter_mut().for_each(|c| *c /= n);
    }
    counts
}

/// Overlaid histograms of `series` (each as counts, or as shares of its
/// own values with `share`), with a vertical marker line when given.
pub fn histogram(
    series: &[Series],
    bins: usize,
    share: bool,
    marker: Option<(f64, &str)>,
    x_desc: &str,
) -> Result<String> {
    let (lo, hi) = range(series.iter().flat_map(|s| s.values.iter()));
    let binned: Vec<Vec<f64>> = series
        .iter()
        .map(|s| bin(s.values, lo, hi, bins, share))
        .collect();
    let top = binned
        .iter()
        .flatten()
        .cloned()
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.1;
    let width = (hi - lo) / bins as f64;
    svg((WIDTH, HEIGHT), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, 0.0..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(x_desc)
            .y_desc(if share { "share of the series" } else { "rows" })
            .draw()?;
        for (s, counts) in series.iter().zip(&binned) {
            let color = s.color;
            chart
                .draw_series(
                    counts
                        .iter()
                        .enumerate()
                        .filter(|(_, &c)| c > 0.0)
                        .map(|(b, &c)| {
                            let x0 = lo + b as f64 * width;
                            Rectangle::new([(x0, 0.0), (x0 + width, c)], color.mix(0.55).filled())
                        }),
                )?
                .label(format!("{} ({})", s.name, s.values.len()))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        if let Some((x, label)) = marker {
            chart
                .draw_series(LineSeries::new([(x, 0.0), (x, top)], BLACK.stroke_width(2)))?
                .label(label.to_string())
                .legend(|(x, y)| PathElement::new([(x, y), (x + 12, y)], BLACK.stroke_width(2)));
        }
        legend(&mut chart)?;
        Ok(())
    })
}

/// A named series of points and its colour.
pub type Points<'a> = (&'a str, Vec<(f64, f64)>, RGBColor);

/// Points (x, y) of each series, with a horizontal marker line.
pub fn scatter(
    series: &[Points],
    marker: Option<(f64, &str)>,
    x_desc: &str,
    y_desc: &str,
) -> Result<String> {
    let (x0, x1) = range(series.iter().flat_map(|s| s.1.iter().map(|p| &p.0)));
    let (y0, y1) = range(series.iter().flat_map(|s| s.1.iter().map(|p| &p.1)));
    svg((WIDTH, HEIGHT), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()?;
        for (name, points, color) in series {
            let color = *color;
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&p| Circle::new(p, 2, color.mix(0.6).filled())),
                )?
                .label(format!("{name} ({})", points.len()))
                .legend(move |(x, y)| Circle::new((x + 5, y), 3, color.filled()));
        }
        if let Some((y, label)) = marker {
            chart
                .draw_series(LineSeries::new([(x0, y), (x1, y)], BLACK.stroke_width(2)))?
                .label(label.to_string())
                .legend(|(x, y)| PathElement::new([(x, y), (x + 12, y)], BLACK.stroke_width(2)));
        }
        legend(&mut chart)?;
        Ok(())
    })
}

/// Horizontal bars, one per label, in the order given; each group of
/// `values` (name, one value per label, colour) side by side.
pub fn bars(
    labels: &[String],
    groups: &[(&str, Vec<f64>, RGBColor)],
    x_desc: &str,
) -> Result<String> {
    let top = groups
        .iter()
        .flat_map(|g| g.1.iter().cloned())
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.05;
    let n = labels.len().max(1);
    let height = (60 + n as u32 * (14 + 8 * groups.len() as u32)).max(160);
    let k = groups.len().max(1) as f64;
    svg((WIDTH, height), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(190)
            .build_cartesian_2d(0.0..top, 0.0..n as f64)?;
        let shown = |y: &f64| category(labels, n as f64 - y - 0.5, 28);
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n * 2 + 1)
            .y_label_formatter(&shown)
            .x_desc(x_desc)
            .draw()?;
        for (g, (name, values, color)) in groups.iter().enumerate() {
            let color = *color;
            chart
                .draw_series(values.iter().enumerate().map(|(i, &v)| {
                    let y1 = n as f64 - i as f64 - 0.1 - g as f64 * 0.8 / k;
                    Rectangle::new([(0.0, y1 - 0.8 / k), (v, y1)], color.filled())
                }))?
                .label(name.to_string())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        if groups.len() > 1 {
            legend(&mut chart)?;
        }
        Ok(())
    })
}

/// A confusion matrix as a heat map: rows true classes, columns predicted,
/// each cell shaded by its share of its row and labelled with its count.
pub fn heatmap(labels: &[String], matrix: &[Vec<u64>]) -> Result<String> {
    let n = labels.len().max(1);
    let cell = (520 / n as u32).clamp(24, 90);
    let size = (cell * n as u32 + 260, cell * n as u32 + 160);
    svg(size, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(110)
            .y_label_area_size(190)
            .build_cartesian_2d(0.0..n as f64, 0.0..n as f64)?;
        let name = |v: &f64, flip: bool| {
            category(labels, if flip { n as f64 - v - 0.5 } else { v - 0.5 }, 24)
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(n * 2 + 1)
            .y_labels(n * 2 + 1)
            .x_label_formatter(&|v| name(v, false))
            .y_label_formatter(&|v| name(v, true))
            .x_desc("predicted")
            .y_desc("true")
            .draw()?;
        for (i, row) in matrix.iter().enumerate() {
            let total = row.iter().sum::<u64>().max(1) as f64;
            for (j, &count) in row.iter().enumerate() {
                let share = count as f64 / total;
                let y = (n - 1 - i) as f64;
                let shade = RGBColor(
                    (255.0 - 185.0 * share) as u8,
                    (255.0 - 145.0 * share) as u8,
                    (255.0 - 75.0 * share) as u8,
                );
                chart.draw_series([Rectangle::new(
                    [(j as f64, y), (j as f64 + 1.0, y + 1.0)],
                    shade.filled(),
                )])?;
                let ink = if share > 0.55 { WHITE } else { BLACK };
                chart.draw_series([Text::new(
                    count.to_string(),
                    (j as f64 + 0.4, y + 0.6),
                    ("sans-serif", 14).into_font().color(&ink),
                )])?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_count_every_value_once() {
        let v = [0.0, 0.1, 0.5, 0.99, 1.0];
        assert_eq!(bin(&v, 0.0, 1.0, 2, false), vec![2.0, 3.0]);
        let shares = bin(&v, 0.0, 1.0, 4, true);
        assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(range([3.0, f64::NAN, -1.0].iter()), (-1.0, 3.0));
        assert_eq!(range([2.0].iter()), (1.5, 2.5));
    }

    #[test]
    fn charts_are_svg_documents_with_their_labels() {
        let a = [1.0, 2.0, 2.5, 3.0];
        let h = histogram(
            &[Series {
                name: "ordinary",
                values: &a,
                color: BLUE,
            }],
            10,
            false,
            Some((2.0, "threshold")),
            "score",
        )
        .unwrap();
        assert!(h.starts_with("<svg") && h.trim_end().ends_with("</svg>"));
        assert!(h.contains("ordinary (4)") && h.contains("threshold"));
        let m = heatmap(&["a".into(), "b".into()], &[vec![5, 1], vec![0, 7]]).unwrap();
        assert!(
            m.contains(">\n5\n</text>") && m.contains(">\n7\n</text>"),
            "{m}"
        );
        let b = bars(
            &["x".into(), "y".into()],
            &[("n", vec![3.0, 1.0], RED)],
            "n",
        )
        .unwrap();
        assert!(b.contains("<rect"));
    }
}
