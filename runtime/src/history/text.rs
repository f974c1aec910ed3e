//! The history as a table for the terminal.

use super::*;

/// `+hh:mm:ss` (and `.mmm` when `fine`).
pub(super) fn clock(seconds: f64, fine: bool) -> String {
    let total_ms = (seconds.max(0.0) * 1000.0).round() as u64;
    let s = total_ms / 1000;
    let base = format!("+{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
    if fine {
        format!("{base}.{:03}", total_ms % 1000)
    } else {
        base
    }
}

/// `850 ms`, `12 s`, `30 min`, `48 h 30 min`, `3 d 4 h`.
pub fn human_duration(seconds: f64) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    let s = ms / 1000;
    match s {
        0 => format!("{ms} ms"),
        1..60 => format!("{s} s"),
        60..3600 if s % 60 == 0 => format!("{} min", s / 60),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86_400 if s % 3600 == 0 => format!("{} h", s / 3600),
        3600..86_400 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ if s % 86_400 == 0 => format!("{} d", s / 86_400),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// `s` cut to `max` characters, with `…` when cut.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}

impl Gantt {
    /// The history as a table for the terminal: the execution, its
    /// invocations, then one line per operation (nested under its
    /// context) with its start, duration, status, attempts and error.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "execution {}\nstatus    {}{}\nduration  {} over {} invocation(s)",
            self.arn.as_deref().unwrap_or("(ARN unknown)"),
            self.status,
            self.outcome
                .as_deref()
                .map(|o| format!(": {}", shorten(o, 100)))
                .unwrap_or_default(),
            human_duration(self.duration),
            self.invocations.len()
        );
        for (n, inv) in self.invocations.iter().enumerate() {
            let _ = writeln!(
                out,
                "  invocation {:<3} {} .. {}{}",
                n + 1,
                clock(inv.start, true),
                clock(inv.end, true),
                inv.error
                    .as_deref()
                    .map(|e| format!("  failed: {}", shorten(e, 80)))
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(
            out,
            "\n{:<40} {:<32} {:<10} {:<13} {:>12}  detail",
            "operation", "type", "status", "start", "duration"
        );
        for row in &self.rows {
            let label = format!("{}{}", "  ".repeat(row.depth), row.label());
            let kind = match &row.sub_type {
                Some(sub) => format!("{}/{sub}", row.op_type),
                None => row.op_type.to_owned(),
            };
            let duration = match row.end {
                Some(end) => human_duration(end - row.start),
                None => "…".to_owned(),
            };
            let mut detail = Vec::new();
            let retries: Vec<String> = row
                .attempts
                .iter()
                .filter(|a| a.failed || a.next_delay.is_some())
                .map(|a| match a.next_delay {
                    Some(d) => format!("#{} failed, retry in {}", a.number, human_duration(d)),
                    None => format!("#{} failed", a.number),
                })
                .collect();
            if row.attempts.len() > 1 || !retries.is_empty() {
                detail.push(format!("{} attempt(s)", row.attempts.len()));
                detail.extend(retries);
            }
            if let Some(end) = row.scheduled_end.filter(|_| row.op_type == "WAIT") {
                detail.push(format!("until {}", clock(end, false)));
            }
            if let Some(e) = &row.error {
                detail.push(shorten(e, 80));
            } else if let Some(r) = &row.result {
                detail.push(format!("= {}", shorten(r, 48)));
            }
            let _ = writeln!(
                out,
                "{:<40} {:<32} {:<10} {:<13} {:>12}  {}",
                shorten(&label, 40),
                shorten(&kind, 32),
                row.status,
                clock(row.start, true),
                duration,
                detail.join("; ")
            );
        }
        out
    }
}
