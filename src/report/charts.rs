//! The report's charts, as SVG text (plotters' SVG backend: no font or script is loaded;
//! text is SVG `<text>`). Colours are from the Okabe-Ito palette, safe for colour-blind
//! readers, and every line has a legend.

use plotters::prelude::*;

use crate::app::report::{FailoverView, RestoreView};
use crate::load::Second;

const BLUE: RGBColor = RGBColor(0x00, 0x72, 0xB2);
const ORANGE: RGBColor = RGBColor(0xE6, 0x9F, 0x00);
const VERMILLION: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
const GREEN: RGBColor = RGBColor(0x00, 0x9E, 0x73);
const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);

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

/// Latency percentiles over time (from the intended send time), one point a second.
pub fn latency_over_time(series: &[Second]) -> String {
    let end = series.len().max(1) as f64;
    let ymax = top(series.iter().map(|s| s.p99_ms.max(s.mean_ms)));
    svg(|root| {
        root.fill(&WHITE)?;
        let mut c = ChartBuilder::on(&root)
            .caption("latency over time (ms)", ("sans-serif", 15).into_font().color(&INK))
            .margin(10)
            .x_label_area_size(28)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..end, 0f64..ymax)?;
        c.configure_mesh().x_desc("seconds into the run").y_desc("ms").light_line_style(WHITE.mix(0.0)).draw()?;
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
        c.configure_series_labels().background_style(WHITE.mix(0.9)).border_style(INK).draw()?;
        root.present()?;
        Ok(())
    })
}

/// Answers and errors per second.
pub fn throughput_over_time(series: &[Second]) -> String {
    let end = series.len().max(1) as f64;
    let ymax = top(series.iter().map(|s| s.completed as f64));
    svg(|root| {
        root.fill(&WHITE)?;
        let mut c = ChartBuilder::on(&root)
            .caption("throughput (answers per second)", ("sans-serif", 15).into_font().color(&INK))
            .margin(10)
            .x_label_area_size(28)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..end, 0f64..ymax)?;
        c.configure_mesh().x_desc("seconds into the run").y_desc("per second").draw()?;
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
        c.configure_series_labels().background_style(WHITE.mix(0.9)).border_style(INK).draw()?;
        root.present()?;
        Ok(())
    })
}

/// The run's latency by percentile.
pub fn latency_distribution(percentiles: &[(String, f64)]) -> String {
    let n = percentiles.len().max(1);
    let ymax = top(percentiles.iter().map(|p| p.1));
    let labels: Vec<String> = percentiles.iter().map(|p| p.0.clone()).collect();
    svg(|root| {
        root.fill(&WHITE)?;
        let mut c = ChartBuilder::on(&root)
            .caption("latency by percentile (ms)", ("sans-serif", 15).into_font().color(&INK))
            .margin(10)
            .x_label_area_size(28)
            .y_label_area_size(48)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..ymax)?;
        c.configure_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| labels.get(x.round() as usize).cloned().unwrap_or_default())
            .y_desc("ms")
            .draw()?;
        c.draw_series(percentiles.iter().enumerate().map(|(i, (_, v))| {
            let x = i as f64;
            Rectangle::new([(x - 0.3, 0.0), (x + 0.3, *v)], BLUE.filled())
        }))?;
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
        c.configure_series_labels().background_style(WHITE.mix(0.9)).border_style(INK).draw()?;
        root.present()?;
        Ok(())
    })
}

/// The restore drill: RTO as its parts against the target; RPO measured and worst case against
/// the target (seconds).
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
    let xmax = top(rows.iter().map(|r| r.1));
    let n = rows.len().max(1);
    let labels: Vec<&str> = rows.iter().map(|r| r.0).collect();
    svg(|root| {
        root.fill(&WHITE)?;
        let mut c = ChartBuilder::on(&root)
            .caption("restore drill: RTO and RPO (seconds)", ("sans-serif", 15).into_font().color(&INK))
            .margin(10)
            .x_label_area_size(28)
            .y_label_area_size(150)
            .build_cartesian_2d(0f64..xmax, -0.5f64..(n as f64 - 0.5))?;
        c.configure_mesh()
            .y_labels(n)
            .y_label_formatter(&|y| labels.get(y.round() as usize).map(|s| s.to_string()).unwrap_or_default())
            .x_desc("seconds")
            .draw()?;
        c.draw_series(rows.iter().enumerate().map(|(i, (_, v, color))| {
            let y = i as f64;
            Rectangle::new([(0.0, y - 0.3), (*v, y + 0.3)], color.filled())
        }))?;
        root.present()?;
        Ok(())
    })
}
