//! The history as a self-contained HTML page: a Gantt chart.

use super::*;

impl Gantt {
    /// The history as a self-contained HTML page (inline CSS and SVG, no
    /// scripts, nothing fetched): a Gantt view with a bar per operation
    /// (nested under its context, colored by status), its attempts with
    /// failures and retry delays marked, and the invocations as bands
    /// behind. Hovering a bar shows its details.
    pub fn to_html(&self) -> String {
        const LABEL: f64 = 300.0;
        const CHART: f64 = 860.0;
        const ROW: f64 = 24.0;
        const TOP: f64 = 56.0;
        let scale = Scale::new(self);
        let x = |t: f64| LABEL + scale.at(t) * CHART;
        let height = TOP + ROW * self.rows.len().max(1) as f64 + 20.0;
        let width = LABEL + CHART + 30.0;
        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="timeline">"#
        );
        svg.push_str(r##"<defs><pattern id="delay" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fdf0d5"/><line x1="0" y1="0" x2="0" y2="6" stroke="#e0a030" stroke-width="2"/></pattern></defs>"##);
        // Invocations: bands behind everything, numbered on top.
        for (n, inv) in self.invocations.iter().enumerate() {
            let (x0, x1) = (x(inv.start), x(inv.end));
            let w = (x1 - x0).max(3.0);
            let class = if inv.error.is_some() {
                "inv failed"
            } else {
                "inv"
            };
            let _ = write!(
                svg,
                r#"<g class="{class}"><title>invocation {} {} .. {}{}</title><rect x="{x0:.1}" y="{:.1}" width="{w:.1}" height="{:.1}"/><text x="{:.1}" y="{:.1}">#{}</text></g>"#,
                n + 1,
                clock(inv.start, true),
                clock(inv.end, true),
                inv.error
                    .as_deref()
                    .map(|e| format!(" failed: {}", escape(e)))
                    .unwrap_or_default(),
                TOP - 14.0,
                height - TOP - 6.0,
                x0 + 2.0,
                TOP - 18.0,
                n + 1
            );
        }
        // Axis: a line at each invocation's start and at the end, labelled
        // where there is room. Idle time between invocations is drawn
        // compressed (see `Scale`), so the labels give the real times.
        let mut marks: Vec<f64> = self.invocations.iter().map(|i| i.start).collect();
        marks.push(0.0);
        marks.push(self.duration);
        marks.sort_by(f64::total_cmp);
        marks.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
        let fine = self.duration < 10.0;
        let mut last_label = f64::NEG_INFINITY;
        for t in marks {
            let tx = x(t);
            let _ = write!(
                svg,
                r#"<line class="tick" x1="{tx:.1}" y1="{:.1}" x2="{tx:.1}" y2="{:.1}"/>"#,
                TOP - 8.0,
                height - 14.0,
            );
            if tx - last_label >= 64.0 {
                last_label = tx;
                let _ = write!(
                    svg,
                    r#"<text class="axis" x="{tx:.1}" y="{:.1}">{}</text>"#,
                    TOP - 34.0,
                    escape(&clock(t, fine))
                );
            }
        }
        let _ = write!(
            svg,
            r#"<text class="head" x="8" y="{:.1}">operation</text><text class="head" x="8" y="{:.1}">invocations</text>"#,
            TOP - 4.0,
            TOP - 18.0
        );
        for (i, row) in self.rows.iter().enumerate() {
            let y = TOP + ROW * i as f64;
            let mid = y + ROW / 2.0;
            if i % 2 == 1 {
                let _ = write!(
                    svg,
                    r#"<rect class="stripe" x="0" y="{y:.1}" width="{width}" height="{ROW}"/>"#
                );
            }
            let kind = match &row.sub_type {
                Some(sub) => format!("{} {sub}", row.op_type),
                None => row.op_type.to_owned(),
            };
            let _ = write!(
                svg,
                r#"<text class="label" x="{:.1}" y="{:.1}">{}<tspan class="kind"> {}</tspan></text>"#,
                8.0 + 14.0 * row.depth as f64,
                mid + 4.0,
                escape(&shorten(row.label(), 28)),
                escape(&kind)
            );
            let end = row.end.unwrap_or(self.duration);
            let (x0, x1) = (x(row.start), x(end));
            let mut tip = format!(
                "{} ({kind})\nstatus {}\nstart {}  duration {}",
                row.label(),
                row.status,
                clock(row.start, true),
                row.end
                    .map(|e| human_duration(e - row.start))
                    .unwrap_or_else(|| "still going".into())
            );
            for a in &row.attempts {
                let _ = write!(
                    tip,
                    "\nattempt {} {}{}",
                    a.number,
                    if a.failed { "failed" } else { "ok" },
                    a.next_delay
                        .map(|d| format!(", retry in {}", human_duration(d)))
                        .unwrap_or_default()
                );
            }
            if let Some(e) = &row.error {
                let _ = write!(tip, "\nerror {}", shorten(e, 200));
            } else if let Some(r) = &row.result {
                let _ = write!(tip, "\nresult {}", shorten(r, 200));
            }
            let class = format!(
                "bar {} {}",
                row.op_type.to_lowercase(),
                row.status.to_lowercase()
            );
            let _ = write!(
                svg,
                r#"<g class="{class}"><title>{}</title><rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="3"/>"#,
                escape(&tip),
                y + 5.0,
                (x1 - x0).max(4.0),
                ROW - 10.0
            );
            // Retry delays, hatched, and failed attempts, crossed.
            for a in &row.attempts {
                if let Some(delay) = a.next_delay {
                    let (d0, d1) = (x(a.end), x(a.end + delay));
                    let _ = write!(
                        svg,
                        r#"<rect class="delay" style="fill:url(#delay)" x="{d0:.1}" y="{:.1}" width="{:.1}" height="{:.1}"/>"#,
                        y + 5.0,
                        (d1 - d0).max(3.0),
                        ROW - 10.0
                    );
                }
                if a.failed {
                    let ax = x(a.end);
                    let _ = write!(
                        svg,
                        r#"<path class="cross" d="M{:.1} {:.1} l8 8 m0 -8 l-8 8"/>"#,
                        ax - 4.0,
                        mid - 4.0
                    );
                }
            }
            let length = row.end.unwrap_or(self.duration) - row.start;
            if x1 - x0 >= 56.0 && length >= 1.0 {
                let on_delay = row.attempts.iter().any(|a| a.next_delay.is_some());
                let _ = write!(
                    svg,
                    r#"<text class="{}" x="{:.1}" y="{:.1}">{}</text>"#,
                    if on_delay { "dur dark" } else { "dur" },
                    x0 + 6.0,
                    mid + 4.0,
                    escape(&human_duration(length))
                );
            }
            if row.end.is_none() {
                let _ = write!(
                    svg,
                    r#"<text class="open" x="{:.1}" y="{:.1}">…</text>"#,
                    x1 + 3.0,
                    mid + 4.0
                );
            }
            svg.push_str("</g>");
        }
        svg.push_str("</svg>");
        let title = self.arn.as_deref().unwrap_or("durable execution");
        let outcome = self
            .outcome
            .as_deref()
            .map(|o| format!(": {}", escape(&shorten(o, 160))))
            .unwrap_or_default();
        format!(
            r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>timeline: {title}</title>
<style>
body {{ font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 20px; color: #1d2733; }}
h1 {{ font-size: 16px; margin: 0 0 4px; word-break: break-all; }}
.summary {{ margin: 0 0 12px; color: #4a5868; }}
.status-succeeded {{ color: #1f7a45; font-weight: 600; }}
.status-failed, .status-timed_out, .status-stopped {{ color: #b42318; font-weight: 600; }}
svg text {{ font: 12px system-ui, sans-serif; fill: #1d2733; }}
svg .head {{ font-weight: 600; fill: #4a5868; }}
svg .kind {{ fill: #8592a3; font-size: 10px; }}
svg .axis {{ fill: #6b7a8c; font-size: 11px; text-anchor: middle; }}
svg .tick {{ stroke: #e3e8ee; }}
svg .stripe {{ fill: #f6f8fa; }}
svg .inv rect {{ fill: #dcebfb; opacity: .55; }}
svg .inv.failed rect {{ fill: #fbdcdc; }}
svg .inv text {{ fill: #3d6fa8; font-size: 11px; }}
svg .bar rect {{ fill: #9aa5b1; }}
svg .bar.succeeded rect {{ fill: #2e9d5b; }}
svg .bar.wait.succeeded rect {{ fill: #6c8ef0; }}
svg .bar.context.succeeded rect {{ fill: #8bc9a3; }}
svg .bar.callback.succeeded rect, svg .bar.chained_invoke.succeeded rect {{ fill: #a17be0; }}
svg .bar.failed rect, svg .bar.timed_out rect, svg .bar.stopped rect {{ fill: #d64545; }}
svg .bar.started rect, svg .bar.pending rect {{ fill: #c3cbd4; }}
svg .cross {{ stroke: #b42318; stroke-width: 2.2; fill: none; }}
svg .open {{ fill: #6b7a8c; }}
svg .dur {{ fill: #ffffff; font-size: 11px; font-weight: 600; pointer-events: none; }}
svg .dur.dark {{ fill: #7a4a00; }}
.note {{ color: #6b7a8c; font-size: 12px; max-width: 1160px; }}
.legend span {{ display: inline-block; margin-right: 14px; }}
.legend i {{ display: inline-block; width: 22px; height: 10px; margin-right: 5px; border-radius: 2px; vertical-align: middle; }}
</style></head>
<body>
<h1>{title}</h1>
<p class="summary"><span class="status-{status_class}">{status}</span>{outcome} · {duration} · {invocations} invocation(s) · {operations} operation(s)</p>
{svg}
<p class="note">Time runs left to right on a compressed scale: long idle stretches (waits, retry delays, callbacks) take less room than their length, so that the work in between stays visible; the axis gives the real times. Hover a bar for its details.</p>
<p class="legend"><span><i style="background:#2e9d5b"></i>step</span><span><i style="background:#6c8ef0"></i>wait</span><span><i style="background:#8bc9a3"></i>context</span><span><i style="background:#a17be0"></i>callback / invoke</span><span><i style="background:#d64545"></i>failed</span><span><i style="background:#c3cbd4"></i>not finished</span><span><i style="background:repeating-linear-gradient(45deg,#fdf0d5 0 3px,#e0a030 3px 5px)"></i>retry delay</span><span><i style="background:#dcebfb"></i>invocation</span><span>✕ failed attempt</span></p>
</body></html>
"##,
            title = escape(title),
            status = self.status,
            status_class = self.status.to_lowercase(),
            duration = human_duration(self.duration),
            invocations = self.invocations.len(),
            operations = self.rows.len(),
        )
    }
}

/// Where times go across the chart: piecewise linear between the moments
/// something happens, each stretch between two of them as wide as the
/// logarithm of its length, so that a two-day wait and the milliseconds of
/// work around it both stay readable.
pub(super) struct Scale {
    /// The moments, sorted, distinct.
    times: Vec<f64>,
    /// The position (0 to 1) of each.
    at: Vec<f64>,
}

impl Scale {
    /// Shorter stretches than this (seconds) count as about linear.
    const QUANTUM: f64 = 0.05;

    fn new(gantt: &Gantt) -> Self {
        let mut times = vec![0.0, gantt.duration];
        for row in &gantt.rows {
            times.push(row.start);
            times.extend(row.end);
            times.extend(row.scheduled_end);
            for a in &row.attempts {
                times.push(a.start);
                times.push(a.end);
                times.extend(a.next_delay.map(|d| a.end + d));
            }
        }
        for inv in &gantt.invocations {
            times.push(inv.start);
            times.push(inv.end);
        }
        times.retain(|t| t.is_finite());
        times.sort_by(f64::total_cmp);
        times.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
        let mut at = Vec::with_capacity(times.len());
        let mut total = 0.0;
        for (i, t) in times.iter().enumerate() {
            if i > 0 {
                total += (1.0 + (t - times[i - 1]) / Self::QUANTUM).ln();
            }
            at.push(total);
        }
        if total > 0.0 {
            for a in &mut at {
                *a /= total;
            }
        }
        Scale { times, at }
    }

    /// The position (0 to 1) of `t`.
    fn at(&self, t: f64) -> f64 {
        let i = self.times.partition_point(|&x| x <= t);
        match i {
            0 => 0.0,
            i if i >= self.times.len() => self.at.last().copied().unwrap_or(0.0),
            i => {
                let (t0, t1) = (self.times[i - 1], self.times[i]);
                let (a0, a1) = (self.at[i - 1], self.at[i]);
                let within =
                    (1.0 + (t - t0) / Self::QUANTUM).ln() / (1.0 + (t1 - t0) / Self::QUANTUM).ln();
                a0 + (a1 - a0) * within
            }
        }
    }
}

/// Escapes text for HTML and SVG.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
