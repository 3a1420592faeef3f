//! The report's charts, as SVG text (plotters' SVG backend: no font or script is loaded;
//! text is SVG `<text>`). Colours are from the Okabe-Ito palette, safe for colour-blind
//! readers, and every line has a legend.

use plotters::prelude::*;

use super::model::{FailoverView, LoadView, RestoreView};
use crate::domain::human;
use crate::domain::requirement::fmt_num;
use crate::load::Second;

const BLUE: RGBColor = RGBColor(0x00, 0x72, 0xB2);
const ORANGE: RGBColor = RGBColor(0xE6, 0x9F, 0x00);
const VERMILLION: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
const GREEN: RGBColor = RGBColor(0x00, 0x9E, 0x73);
const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
const PURPLE: RGBColor = RGBColor(0xCC, 0x79, 0xA7);

const SIZE: (u32, u32) = (720, 260);

type Drawn = Result<(), Box<dyn std::error::Error>>;

/// Draw into an SVG string; a chart that cannot be drawn says so instead.
fn svg(draw: impl FnOnce(DrawingArea<SVGBackend, plotters::coord::Shift>) -> Drawn) -> String {
    let mut out = String::new();
    let failed = {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        draw(root).err().map(|e| e.to_string())
    };
    match failed {
        None => out,
        Some(e) => format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"40\"><text x=\"8\" y=\"24\">chart not drawn: {}</text></svg>",
            SIZE.0,
            e.replace('<', "&lt;")
        ),
    }
}

fn top(values: impl Iterator<Item = f64>) -> f64 {
    let m = values.fold(0.0_f64, f64::max);
    if m <= 0.0 {
        1.0
    } else {
        m * 1.1
    }
}

/// The x axis of a run's series: its seconds, and no further than the data.
fn run_end(series: &[Second]) -> f64 {
    series.iter().map(|s| s.t as f64).fold(0.0, f64::max).max(1.0)
}

/// A dashed horizontal line at `y` across `0..end`, as segments (plotters draws no dashes).
fn dashed(end: f64, y: f64) -> Vec<PathElement<(f64, f64)>> {
    let step = end / 60.0;
    (0..30)
        .map(|i| {
            let a = 2.0 * i as f64 * step;
            PathElement::new(vec![(a, y), ((a + step).min(end), y)], INK.stroke_width(2))
        })
        .collect()
}

/// Latency percentiles over time (from the intended send time), one point a second, with the
/// warm-up shaded and each latency target as a dashed line.
pub fn latency_over_time(l: &LoadView) -> String {
    let series = &l.series;
    let end = run_end(series);
    let ymax = top(series.iter().map(|s| s.p99_ms.max(s.mean_ms)).chain(l.latency_targets.iter().map(|t| t.1)));
    svg(|root| {
        root.fill(&WHITE)?;
        let mut c = ChartBuilder::on(&root)
            .caption("latency over time", ("sans-serif", 15).into_font().color(&INK))
            .margin(10)
            .x_label_area_size(28)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..end, 0f64..ymax)?;
        c.configure_mesh()
            .x_desc("seconds into the run")
            .y_label_formatter(&|v| format!("{} ms", fmt_num((v * 10.0).round() / 10.0)))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        warmup(&mut c, l.warmup_s.min(end), ymax)?;
        for (name, color, f) in [
            ("p99", VERMILLION, (|s: &Second| s.p99_ms) as fn(&Second) -> f64),
            ("p50", BLUE, |s: &Second| s.p50_ms),
            ("mean", GREEN, |s: &Second| s.mean_ms),
        ] {
            // Evidence from before per-second percentiles were kept has none: no flat line.
            if series.iter().all(|s| f(s) == 0.0) {
                continue;
            }
            c.draw_series(LineSeries::new(series.iter().map(|s| (s.t as f64, f(s))), color.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        }
        for (name, v) in &l.latency_targets {
            c.draw_series(dashed(end, *v))?.label(format!("{name} target {} ms", fmt_num(*v))).legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 6, y), (x + 10, y), (x + 16, y)], INK.stroke_width(2))
            });
        }
        c.configure_series_labels().background_style(WHITE.mix(0.9)).border_style(INK).draw()?;
        root.present()?;
        Ok(())
    })
}

/// The warm-up, shaded: sent, but not counted in the figures.
fn warmup<DB: DrawingBackend>(
    c: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    until: f64,
    ymax: f64,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    if until > 0.0 {
        c.draw_series(std::iter::once(Rectangle::new([(0.0, 0.0), (until, ymax)], INK.mix(0.08).filled())))?
            .label("warm-up (not counted)")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], INK.mix(0.08).filled()));
    }
    Ok(())
}

/// Answers and errors per second, the warm-up shaded, the throughput target dashed.
pub fn throughput_over_time(l: &LoadView) -> String {
    let series = &l.series;
    let end = run_end(series);
    let ymax = top(series.iter().map(|s| s.completed as f64).chain(l.rate_target));
    svg(|root| {
        root.fill(&WHITE)?;
        let mut c = ChartBuilder::on(&root)
            .caption("throughput", ("sans-serif", 15).into_font().color(&INK))
            .margin(10)
            .x_label_area_size(28)
            .y_label_area_size(72)
            .build_cartesian_2d(0f64..end, 0f64..ymax)?;
        c.configure_mesh()
            .x_desc("seconds into the run")
            .y_label_formatter(&|v| format!("{} req/s", human::grouped(v.round())))
            .draw()?;
        warmup(&mut c, l.warmup_s.min(end), ymax)?;
        c.draw_series(
            AreaSeries::new(series.iter().map(|s| (s.t as f64, s.ok as f64)), 0.0, BLUE.mix(0.25))
                .border_style(BLUE.stroke_width(2)),
        )?
        .label("ok")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE.stroke_width(2)));
        c.draw_series(LineSeries::new(
            series.iter().map(|s| (s.t as f64, s.errors as f64)),
            VERMILLION.stroke_width(2),
        ))?
        .label("errors")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], VERMILLION.stroke_width(2)));
        if let Some(t) = l.rate_target {
            c.draw_series(dashed(end, t))?.label(format!("target {} req/s", human::grouped(t))).legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 6, y), (x + 10, y), (x + 16, y)], INK.stroke_width(2))
            });
        }
        c.configure_series_labels().background_style(WHITE.mix(0.9)).border_style(INK).draw()?;
        root.present()?;
        Ok(())
    })
}

/// The run's latency by percentile, each bar labelled with its figure and the targets dashed.
pub fn latency_distribution(l: &LoadView) -> String {
    let percentiles = &l.percentiles;
    let n = percentiles.len().max(1);
    let ymax = top(percentiles.iter().map(|p| p.1).chain(l.latency_targets.iter().map(|t| t.1)));
    let labels: Vec<String> = percentiles.iter().map(|p| p.0.clone()).collect();
    svg(|root| {
        root.fill(&WHITE)?;
        let mut c = ChartBuilder::on(&root)
            .caption("latency by percentile", ("sans-serif", 15).into_font().color(&INK))
            .margin(10)
            .x_label_area_size(28)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..ymax)?;
        c.configure_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| labels.get(x.round() as usize).cloned().unwrap_or_default())
            .y_label_formatter(&|v| format!("{} ms", fmt_num((v * 10.0).round() / 10.0)))
            .draw()?;
        c.draw_series(percentiles.iter().enumerate().map(|(i, (_, v))| {
            let x = i as f64;
            Rectangle::new([(x - 0.3, 0.0), (x + 0.3, *v)], BLUE.filled())
        }))?;
        c.draw_series(percentiles.iter().enumerate().map(|(i, (_, v))| {
            Text::new(
                format!("{} ms", fmt_num((v * 100.0).round() / 100.0)),
                (i as f64 - 0.25, *v + ymax * 0.04),
                ("sans-serif", 12).into_font().color(&INK),
            )
        }))?;
        for (name, v) in &l.latency_targets {
            let end = n as f64 - 0.5;
            let segs: Vec<_> = (0..(2 * n))
                .map(|i| {
                    let a = -0.5 + i as f64 * 0.5;
                    PathElement::new(vec![(a, *v), ((a + 0.25).min(end), *v)], INK.stroke_width(2))
                })
                .collect();
            c.draw_series(segs)?.label(format!("{name} target {} ms", fmt_num(*v))).legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 6, y), (x + 10, y), (x + 16, y)], INK.stroke_width(2))
            });
        }
        if !l.latency_targets.is_empty() {
            c.configure_series_labels().background_style(WHITE.mix(0.9)).border_style(INK).draw()?;
        }
        root.present()?;
        Ok(())
    })
}

/// The failover drill: probes up or down over time, outages as bands, the fault's start.
pub fn probe_timeline(f: &FailoverView) -> String {
    let end = (f.end_ms.max(1)) as f64 / 1000.0;
    svg(|root| {
        root.fill(&WHITE)?;
        let mut c = ChartBuilder::on(&root)
            .caption("probes: service up (1) or down (0)", ("sans-serif", 15).into_font().color(&INK))
            .margin(10)
            .x_label_area_size(28)
            .y_label_area_size(40)
            .build_cartesian_2d(0f64..end, -0.1f64..1.2f64)?;
        c.configure_mesh().x_desc("seconds since the probes started").y_labels(2).draw()?;
        c.draw_series(f.outages.iter().map(|o| {
            let (a, b) = (o.start_ms as f64 / 1000.0, o.end_ms.map(|e| e as f64 / 1000.0).unwrap_or(end));
            Rectangle::new([(a, -0.1), (b, 1.2)], VERMILLION.mix(0.25).filled())
        }))?
        .label("outage")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], VERMILLION.mix(0.25).filled()));
        // A step line through the changes of state.
        let mut pts: Vec<(f64, f64)> = Vec::new();
        for ch in &f.timeline {
            let t = ch.at_ms as f64 / 1000.0;
            if let Some(&(_, last)) = pts.last() {
                pts.push((t, last));
            }
            pts.push((t, if ch.up { 1.0 } else { 0.0 }));
        }
        if let Some(&(_, last)) = pts.last() {
            pts.push((end, last));
        }
        c.draw_series(LineSeries::new(pts, BLUE.stroke_width(2)))?
            .label("probe")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE.stroke_width(2)));
        let fault = f.fault_at_ms as f64 / 1000.0;
        c.draw_series(LineSeries::new(vec![(fault, -0.1), (fault, 1.2)], ORANGE.stroke_width(2)))?
            .label("fault injected")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], ORANGE.stroke_width(2)));
        // When each alarm fired, within the window.
        let fired: Vec<f64> =
            f.alarms.iter().map(|(_, at, _)| fault + at).filter(|t| (0.0..=end).contains(t)).collect();
        if !fired.is_empty() {
            c.draw_series(fired.iter().map(|&t| PathElement::new(vec![(t, -0.1), (t, 1.2)], PURPLE.stroke_width(2))))?
                .label("alarm fired")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], PURPLE.stroke_width(2)));
        }
        c.configure_series_labels().background_style(WHITE.mix(0.9)).border_style(INK).draw()?;
        root.present()?;
        Ok(())
    })
}

/// The restore drill: RTO as its parts against the target; RPO measured and worst case against
/// the target. Each bar is labelled in the units people read (`3 s`, `2 h`). When the figures
/// differ by orders of magnitude (a 3 s restore against a 2 h target), the axis is logarithmic,
/// so the measured bar is not a sliver.
pub fn restore_breakdown(r: &RestoreView) -> String {
    let rows: Vec<(&str, f64, RGBColor)> = [
        ("RTO: restore", r.rto_restore_s, BLUE),
        ("RTO: until it answered", r.rto_probe_s, GREEN),
        ("RTO target", r.rto_target_s, INK),
        ("RPO measured", r.rpo_measured_s, ORANGE),
        ("RPO worst case", r.rpo_worst_case_s, VERMILLION),
        ("RPO target", r.rpo_target_s, INK),
    ]
    .into_iter()
    .filter_map(|(l, v, c)| v.map(|v| (l, v, c)))
    .collect();
    let max = rows.iter().map(|r| r.1).fold(0.0_f64, f64::max).max(1.0);
    let min = rows.iter().map(|r| r.1).filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    // Log: the axis is log10(seconds) from a tenth of the smallest figure (zero sits there).
    let log = min.is_finite() && max / min > 50.0;
    let floor = if log { (min / 10.0).log10().floor() } else { 0.0 };
    let x = |v: f64| if log { v.max(10f64.powf(floor)).log10() } else { v };
    let xmax = if log { max.log10() + 0.6 } else { top(rows.iter().map(|r| r.1)) * 1.15 };
    let n = rows.len().max(1);
    let labels: Vec<&str> = rows.iter().map(|r| r.0).collect();
    svg(|root| {
        root.fill(&WHITE)?;
        let caption = if log { "restore drill: RTO and RPO (log scale)" } else { "restore drill: RTO and RPO" };
        let mut c = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 15).into_font().color(&INK))
            .margin(10)
            .x_label_area_size(28)
            .y_label_area_size(150)
            .build_cartesian_2d(floor..xmax, -0.5f64..(n as f64 - 0.5))?;
        c.configure_mesh()
            .y_labels(n)
            .y_label_formatter(&|y| labels.get(y.round() as usize).map(|s| s.to_string()).unwrap_or_default())
            .x_label_formatter(&|v| human::duration_s(if log { 10f64.powf(*v) } else { *v }))
            .x_labels(if log { (xmax - floor).ceil() as usize + 1 } else { 6 })
            .draw()?;
        c.draw_series(rows.iter().enumerate().map(|(i, (_, v, color))| {
            let y = i as f64;
            Rectangle::new([(floor, y - 0.3), (x(*v), y + 0.3)], color.filled())
        }))?;
        c.draw_series(rows.iter().enumerate().map(|(i, (_, v, _))| {
            Text::new(
                human::duration_s(*v),
                (x(*v) + (xmax - floor) * 0.01, i as f64 + 0.15),
                ("sans-serif", 12).into_font().color(&INK),
            )
        }))?;
        root.present()?;
        Ok(())
    })
}
