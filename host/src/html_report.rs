//! The HTML report of a job: one self-contained file (inline CSS and SVG,
//! no script, nothing fetched) with the summary, the faults, a top-N bar
//! chart, the rank-frequency plot on log-log axes, throughput over time with
//! every fault event marked, and the dead letters with their errors.
//!
//! Presentation only: it takes plain data ([`ReportData`]) and knows
//! neither Redis nor plugins. Charts are drawn by `plotters` (SVG backend).

use std::fmt::Write as _;

use plotters::coord::combinators::IntoLogRange;
use plotters::coord::ranged1d::{IntoSegmentedCoord, SegmentValue};
use plotters::prelude::*;

use crate::report::{human_seconds, printable, Summary};

/// One event on the job's timeline.
#[derive(Clone, Debug)]
pub struct TimelineEvent {
    /// Seconds since the job started.
    pub t: f64,
    /// `worker_died`, `redis_restart`, ... (see `protocol::events`).
    pub kind: String,
    pub fault: bool,
    /// What it was about (task, worker, error, ...).
    pub detail: String,
}

/// Everything the report shows.
pub struct ReportData<'a> {
    pub summary: &'a Summary,
    /// Milestones and faults, oldest first (progress samples excluded).
    pub events: Vec<TimelineEvent>,
    /// (seconds since the start, MB/s over the interval ending then).
    pub throughput: Vec<(f64, f64)>,
    /// (rank, count), 1 = the most frequent key, sampled for a log-log plot.
    pub rank_frequency: Vec<(u64, u64)>,
    /// The top keys for the bar chart, most frequent first.
    pub top: Vec<(String, u64)>,
    /// When the report was made (text).
    pub generated: String,
}

const WIDTH: u32 = 1000;

/// Colours of the fault kinds on the timeline.
fn kind_colour(kind: &str) -> RGBColor {
    match kind {
        "task_stolen" => RGBColor(230, 159, 0),
        "worker_died" => RGBColor(213, 94, 0),
        "worker_respawned" => RGBColor(0, 114, 178),
        "redis_restart" => RGBColor(204, 0, 0),
        "tasks_resubmitted" => RGBColor(204, 121, 167),
        "checkpoint_failed" => RGBColor(120, 60, 0),
        "dead_letter" => RGBColor(0, 0, 0),
        _ => RGBColor(0, 158, 115),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// 1234567 -> "1,234,567".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The whole report as one HTML document.
pub fn render(data: &ReportData) -> String {
    let s = data.summary;
    let mut html = String::new();
    let title = format!("wc-host report: job {}", s.job);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>{}</style></head><body>\n",
        esc(&title),
        STYLE
    );
    let again = if s.reported_again { " <span class=\"tag\">reported again</span>" } else { "" };
    let _ = writeln!(html, "<h1>{}{again}</h1>", esc(&title));
    let _ = writeln!(html, "<p class=\"sub\">plugin {} · {} · generated {}</p>", esc(&s.plugin), esc(&s.redis), esc(&data.generated));

    // The summary and the faults, side by side.
    let number = |field: &str, label: &str, n: u64| {
        format!("<tr><th>{label}</th><td data-field=\"{field}\" data-value=\"{n}\">{}</td></tr>\n", thousands(n))
    };
    html.push_str("<div class=\"tables\"><table id=\"summary\"><caption>Summary</caption>\n");
    html.push_str(&number("tokens", "tokens", s.tokens));
    html.push_str(&number("distinct", "distinct keys", s.distinct));
    html.push_str(&number("rows", "rows", s.rows));
    html.push_str(&number("tasks", "tasks", s.tasks as u64));
    html.push_str(&number("files", "files", s.files as u64));
    let _ = writeln!(html, "<tr><th>data</th><td data-field=\"bytes\" data-value=\"{}\">{:.1} MB</td></tr>", s.bytes, s.bytes as f64 / 1e6);
    let _ = writeln!(html, "<tr><th>wall time</th><td data-field=\"wall_seconds\" data-value=\"{:.3}\">{}</td></tr>", s.wall_seconds, human_seconds(s.wall_seconds));
    let _ = writeln!(html, "<tr><th>throughput</th><td data-field=\"mb_per_second\" data-value=\"{:.3}\">{:.1} MB/s</td></tr>", s.mb_per_second, s.mb_per_second);
    html.push_str("</table>\n<table id=\"faults\"><caption>Faults survived</caption>\n");
    html.push_str(&number("tasks_stolen", "tasks stolen", s.tasks_stolen));
    html.push_str(&number("tasks_resubmitted", "tasks resubmitted", s.tasks_resubmitted));
    html.push_str(&number("duplicates_suppressed", "duplicates suppressed", s.duplicates_suppressed));
    html.push_str(&number("retries", "retries", s.retries));
    html.push_str(&number("dead_lettered", "dead-lettered tasks", s.dead_lettered.len() as u64));
    html.push_str(&number("redis_restarts", "Redis restarts", s.redis_restarts));
    html.push_str(&number("worker_respawns", "workers respawned", s.worker_respawns));
    html.push_str(&number("checkpoints_failed", "failed checkpoints", s.checkpoints_failed));
    html.push_str("</table></div>\n");

    figure(&mut html, "top-chart", &format!("Top {} keys", data.top.len()), top_chart(&data.top));
    figure(&mut html, "zipf-chart", "Rank-frequency (log-log): a straight line is Zipf's law", zipf_chart(&data.rank_frequency));
    figure(&mut html, "throughput-chart", "Throughput over time, faults marked", throughput_chart(&data.throughput, &data.events));

    let faults: Vec<&TimelineEvent> = data.events.iter().filter(|e| e.fault).collect();
    let _ = writeln!(html, "<h2>Timeline <small>({} fault events)</small></h2>", faults.len());
    // Checkpoints are taken every few seconds: counted, not listed.
    let checkpoints = data.events.iter().filter(|e| e.kind == "checkpoint_taken").count();
    if checkpoints > 0 {
        let _ = writeln!(html, "<p class=\"sub\">{checkpoints} checkpoints taken (not listed).</p>");
    }
    html.push_str("<table id=\"events\"><tr><th>at</th><th>event</th><th>detail</th></tr>\n");
    for e in data.events.iter().filter(|e| e.kind != "checkpoint_taken") {
        let class = if e.fault { "event fault" } else { "event" };
        let colour = kind_colour(&e.kind);
        let _ = writeln!(
            html,
            "<tr class=\"{class}\" data-kind=\"{}\"><td>{:.1}s</td><td><span class=\"dot\" style=\"background:rgb({},{},{})\"></span>{}</td><td>{}</td></tr>",
            esc(&e.kind),
            e.t,
            colour.0,
            colour.1,
            colour.2,
            esc(&e.kind.replace('_', " ")),
            esc(&e.detail)
        );
    }
    html.push_str("</table>\n");

    let _ = writeln!(html, "<h2>Dead letters <small>({})</small></h2>", s.dead_lettered.len());
    if s.dead_lettered.is_empty() {
        html.push_str("<p id=\"dead-letters\" class=\"none\">None: every task was counted.</p>\n");
    } else {
        html.push_str("<table id=\"dead-letters\"><tr><th>task</th><th>file</th><th>bytes</th><th>error</th></tr>\n");
        for d in &s.dead_lettered {
            let _ = writeln!(html, "<tr class=\"dead\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", esc(&d.task), esc(&d.file), esc(&d.bytes), esc(&d.error));
        }
        html.push_str("</table>\n");
    }
    let _ = writeln!(html, "<p class=\"sub\">counts: <code>{}</code></p>", esc(&s.counts_hint));
    html.push_str("</body></html>\n");
    html
}

fn figure(html: &mut String, id: &str, caption: &str, svg: Result<String, String>) {
    let _ = writeln!(html, "<figure id=\"{id}\" class=\"chart\"><figcaption>{}</figcaption>", esc(caption));
    match svg {
        Ok(svg) => html.push_str(&svg),
        Err(why) => {
            let _ = write!(html, "<p class=\"none\">{}</p>", esc(&why));
        }
    }
    html.push_str("</figure>\n");
}

/// Horizontal bars, the most frequent key on top.
fn top_chart(top: &[(String, u64)]) -> Result<String, String> {
    if top.is_empty() {
        return Err("No keys: the result is empty.".into());
    }
    let n = top.len() as i32;
    let max = top.iter().map(|(_, c)| *c).max().unwrap_or(1).max(1);
    let height = 60 + 24 * top.len() as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let labels: Vec<String> = top.iter().map(|(k, _)| shorten(&printable(k), 28)).collect();
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(160)
            .build_cartesian_2d(0u64..max + max / 20 + 1, (0..n).into_segmented())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(top.len())
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) if *i >= 0 && *i < n => labels[(n - 1 - *i) as usize].clone(),
                _ => String::new(),
            })
            .x_label_formatter(&|v| thousands(*v))
            .x_desc("count")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(top.iter().enumerate().map(|(rank, (_, count))| {
                let y = n - 1 - rank as i32;
                let mut bar = Rectangle::new([(0, SegmentValue::Exact(y)), (*count, SegmentValue::Exact(y + 1))], RGBColor(0, 114, 178).filled());
                bar.set_margin(3, 3, 0, 0);
                bar
            }))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Count against rank, both logarithmic, with the Zipf line C/r for comparison.
fn zipf_chart(points: &[(u64, u64)]) -> Result<String, String> {
    let points: Vec<(f64, f64)> = points.iter().filter(|(r, c)| *r > 0 && *c > 0).map(|(r, c)| (*r as f64, *c as f64)).collect();
    if points.is_empty() {
        return Err("No keys: the result is empty.".into());
    }
    let max_rank = points.iter().map(|p| p.0).fold(1.0, f64::max) * 1.2;
    let max_count = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.5;
    let top = points[0].1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 460)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((1.0..max_rank).log_scale(), (0.8..max_count).log_scale())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("rank")
            .y_desc("count")
            .label_style(("sans-serif", 14))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(|e| e.to_string())?;
        let zipf: Vec<(f64, f64)> = points.iter().map(|(r, _)| (*r, top / r)).filter(|(_, c)| *c >= 0.8).collect();
        chart
            .draw_series(LineSeries::new(zipf, RGBColor(170, 170, 170).stroke_width(1)))
            .map_err(|e| e.to_string())?
            .label("Zipf: count ∝ 1/rank")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RGBColor(170, 170, 170)));
        chart
            .draw_series(LineSeries::new(points.clone(), RGBColor(0, 114, 178).stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label("this job")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RGBColor(0, 114, 178).stroke_width(2)));
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 2, RGBColor(0, 114, 178).filled()))).map_err(|e| e.to_string())?;
        chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw().map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// MB/s over time; each fault event a vertical line in its kind's colour.
fn throughput_chart(samples: &[(f64, f64)], events: &[TimelineEvent]) -> Result<String, String> {
    let faults: Vec<&TimelineEvent> = events.iter().filter(|e| e.fault).collect();
    if samples.is_empty() && faults.is_empty() {
        return Err("The job was too short for a throughput curve (two samples a second).".into());
    }
    let end = samples.iter().map(|s| s.0).chain(events.iter().map(|e| e.t)).fold(1.0, f64::max) * 1.02;
    let top = samples.iter().map(|s| s.1).fold(1.0, f64::max) * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..end, 0.0..top)
            .map_err(|e| e.to_string())?;
        chart.configure_mesh().x_desc("seconds since the start").y_desc("MB/s").label_style(("sans-serif", 14)).draw().map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(samples.iter().copied(), RGBColor(0, 114, 178).stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label("throughput")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RGBColor(0, 114, 178).stroke_width(2)));
        let mut kinds: Vec<&str> = faults.iter().map(|e| e.kind.as_str()).collect();
        kinds.dedup();
        kinds.sort();
        kinds.dedup();
        for kind in kinds {
            let colour = kind_colour(kind);
            let lines = faults
                .iter()
                .filter(|e| e.kind == kind)
                .map(|e| PathElement::new(vec![(e.t, 0.0), (e.t, top)], colour.stroke_width(2)));
            chart
                .draw_series(lines)
                .map_err(|e| e.to_string())?
                .label(kind.replace('_', " "))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1040px;color:#222}\
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.5em}small{color:#777;font-weight:normal}\
.sub{color:#666;margin-top:0}.tag{background:#fc6;border-radius:4px;padding:0 .4em;font-size:.7em;vertical-align:middle}\
.tables{display:flex;gap:2em;flex-wrap:wrap}table{border-collapse:collapse}caption{text-align:left;font-weight:bold;padding:.3em 0}\
th,td{padding:.2em .8em;border-bottom:1px solid #eee;text-align:left}td[data-value]{text-align:right;font-variant-numeric:tabular-nums}\
figure{margin:1.5em 0}figcaption{font-weight:bold;margin-bottom:.4em}svg{max-width:100%;height:auto}\
.dot{display:inline-block;width:.7em;height:.7em;border-radius:50%;margin-right:.4em}tr.fault td{color:#900}.none{color:#777}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Summary;

    fn summary() -> Summary {
        serde_json::from_value(serde_json::json!({
            "job": "j<1>", "plugin": "words", "redis": "redis://x", "count_key": "k", "files": 1, "tasks": 2,
            "bytes": 2_000_000, "rows": 10, "tokens": 1_234_567, "distinct": 3, "wall_seconds": 1.5, "mb_per_second": 1.3,
            "tasks_stolen": 1, "tasks_resubmitted": 0, "duplicates_suppressed": 0, "retries": 0,
            "dead_lettered": [{"task": "t", "file": "f.csv", "bytes": "0-9", "error": "bad <row>"}],
            "redis_restarts": 1, "worker_respawns": 2, "checkpoints_failed": 0, "pairs_committed": 3,
            "redis_cpu_seconds": 0.0, "redis_peak_memory_mb": 0.0, "short_rows": 0, "invalid_utf8_rows": 0,
            "resumed": false, "reported_again": true, "counts_hint": "wc-host top", "output": null, "report": null,
            "top": [["a", 5], ["b", 2], ["c", 1]]
        }))
        .unwrap()
    }

    #[test]
    fn a_report_has_its_numbers_charts_and_escaped_text() {
        let s = summary();
        let data = ReportData {
            summary: &s,
            events: vec![TimelineEvent { t: 0.5, kind: "redis_restart".into(), fault: true, detail: "restarts=1".into() }],
            throughput: vec![(0.0, 0.0), (0.5, 10.0), (1.0, 12.0)],
            rank_frequency: vec![(1, 5), (2, 2), (3, 1)],
            top: s.top.clone(),
            generated: "now".into(),
        };
        let html = render(&data);
        assert!(html.contains("data-field=\"tokens\" data-value=\"1234567\">1,234,567<"));
        assert!(html.contains("data-field=\"worker_respawns\" data-value=\"2\">2<"));
        assert_eq!(html.matches("<svg").count(), 3);
        assert!(html.contains("reported again"));
        assert!(html.contains("j&lt;1&gt;") && html.contains("bad &lt;row&gt;") && !html.contains("<row>"));
        assert!(html.contains("data-kind=\"redis_restart\""));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn an_empty_result_gives_messages_not_empty_charts() {
        let mut s = summary();
        s.top.clear();
        let data = ReportData { summary: &s, events: vec![], throughput: vec![], rank_frequency: vec![], top: vec![], generated: "now".into() };
        let html = render(&data);
        assert_eq!(html.matches("<svg").count(), 0);
        assert_eq!(html.matches("No keys: the result is empty.").count(), 2);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
