//! Line charts as SVG text (plotters' SVG backend, no font files: text stays `<text>`),
//! the one drawing path of every report and comparison.

use plotters::prelude::*;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// (x, y) points in x order.
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed (e.g. a second measure of the same quantity).
    pub dashed: bool,
}

/// What a chart shows.
#[derive(Debug, Clone)]
pub struct Chart {
    /// File stem and element id (`latency-post_ack`).
    pub id: String,
    /// Caption.
    pub title: String,
    /// X axis label, with unit.
    pub x_label: String,
    /// Y axis label, with unit.
    pub y_label: String,
    /// Logarithmic y axis (latency spans decades).
    pub log_y: bool,
    /// The lines.
    pub series: Vec<Series>,
}

impl Chart {
    /// Whether any line has a point.
    pub fn has_data(&self) -> bool {
        self.series.iter().any(|s| !s.points.is_empty())
    }
}

const WIDTH: u32 = 820;
const HEIGHT: u32 = 340;

/// Colours told apart by most readers (Okabe–Ito), then greys.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(120, 120, 120),
    RGBColor(0, 0, 0),
];

/// The chart as an SVG document.
pub fn svg(chart: &Chart) -> String {
    let mut out = String::new();
    // Drawing into a String cannot fail for I/O; an error here is a plotters bug, and the
    // chart is then left empty rather than the report lost.
    if let Err(e) = draw(chart, &mut out) {
        tracing::warn!(chart = %chart.id, "chart not drawn: {e}");
    }
    out
}

fn bounds(chart: &Chart) -> (f64, f64, f64, f64) {
    let pts = chart.series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        if !x.is_finite() || !y.is_finite() || (chart.log_y && y <= 0.0) {
            continue;
        }
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    // Head room above the data for the legend (upper right).
    if x0 > x1 {
        return (0.0, 1.0, if chart.log_y { 0.01 } else { 0.0 }, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if chart.log_y {
        (x0, x1, (y0 * 0.8).max(0.001), (y1 * 4.0).max(y0 * 10.0))
    } else {
        (
            x0,
            x1,
            0.0_f64.min(y0),
            if y1 > 0.0 { y1 * 1.35 } else { 1.0 },
        )
    }
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw(chart: &Chart, out: &mut String) -> DrawResult {
    let root = SVGBackend::with_string(out, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let (x0, x1, y0, y1) = bounds(chart);
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(&chart.title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(68);
    if chart.log_y {
        let mut c = builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale())?;
        mesh(c.configure_mesh(), 12)
            .x_desc(chart.x_label.as_str())
            .y_desc(chart.y_label.as_str())
            .y_label_formatter(&|v| number(*v))
            .x_label_formatter(&|v| number(*v))
            .draw()?;
        lines(&mut c, chart, true)
    } else {
        let mut c = builder.build_cartesian_2d(x0..x1, y0..y1)?;
        mesh(c.configure_mesh(), 6)
            .x_desc(chart.x_label.as_str())
            .y_desc(chart.y_label.as_str())
            .y_label_formatter(&|v| number(*v))
            .x_label_formatter(&|v| number(*v))
            .draw()?;
        lines(&mut c, chart, false)
    }?;
    root.present()?;
    Ok(())
}

/// Light grid, few labels.
fn mesh<'a, 'b, DB, X, Y>(
    m: plotters::chart::MeshStyle<'a, 'b, X, Y, DB>,
    y_labels: usize,
) -> plotters::chart::MeshStyle<'a, 'b, X, Y, DB>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let mut m = m;
    m.bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(RGBColor(246, 246, 246))
        .max_light_lines(2)
        .x_labels(10)
        .y_labels(y_labels)
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 13));
    m
}

fn lines<'a, DB, X, Y>(
    c: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    chart: &Chart,
    log_y: bool,
) -> DrawResult
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (i, s) in chart.series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let style = color.stroke_width(2);
        let points: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|&(x, y)| x.is_finite() && y.is_finite() && (!log_y || y > 0.0))
            .collect();
        let anno = if s.dashed {
            c.draw_series(DashedLineSeries::new(points, 6, 4, style))?
        } else if points.len() == 1 {
            c.draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, style.filled())),
            )?
        } else {
            c.draw_series(LineSeries::new(points, style))?
        };
        anno.label(s.name.as_str()).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
        });
    }
    if chart.series.len() > 1 || chart.series.first().is_some_and(|s| !s.name.is_empty()) {
        c.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 12))
            .draw()?;
    }
    Ok(())
}

/// Axis numbers: short, no trailing zeros.
fn number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else if a >= 0.01 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(log_y: bool, points: Vec<(f64, f64)>) -> Chart {
        Chart {
            id: "t".into(),
            title: "post_ack latency".into(),
            x_label: "seconds".into(),
            y_label: "ms".into(),
            log_y,
            series: vec![
                Series {
                    name: "p99".into(),
                    points: points.clone(),
                    dashed: false,
                },
                Series {
                    name: "service p99".into(),
                    points,
                    dashed: true,
                },
            ],
        }
    }

    #[test]
    fn a_chart_is_an_svg_with_its_title_axes_and_legend() {
        for log_y in [false, true] {
            let s = svg(&chart(log_y, vec![(0.0, 1.0), (1.0, 5.0), (2.0, 120.0)]));
            assert!(s.starts_with("<svg"), "{s}");
            assert!(s.contains("post_ack latency"));
            assert!(
                s.contains("\nseconds\n") && s.contains("\nms\n"),
                "axis labels"
            );
            assert!(s.contains("service p99"), "legend");
            assert!(
                s.contains("<polyline") || s.contains("<path"),
                "lines drawn"
            );
        }
    }

    #[test]
    fn empty_zero_and_single_point_charts_still_draw() {
        for pts in [vec![], vec![(3.0, 0.0)], vec![(3.0, 7.0)]] {
            for log_y in [false, true] {
                let s = svg(&chart(log_y, pts.clone()));
                assert!(s.contains("post_ack latency"), "{pts:?} {log_y}: {s}");
            }
        }
    }

    #[test]
    fn axis_numbers_are_short() {
        assert_eq!(number(2_500_000.0), "2.5M");
        assert_eq!(number(25_000.0), "25k");
        assert_eq!(number(250.0), "250");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(0.0025), "0.003");
    }
}
