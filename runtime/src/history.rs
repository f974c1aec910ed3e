//! Execution histories, as `GetDurableExecutionHistory` reports them, and
//! pictures of them: a table for the terminal and a self-contained HTML
//! page with a Gantt view of the operations across invocations.
//!
//! An [`ExecutionHistory`] comes from AWS or the emulator
//! ([`lambda::fetch_history`](crate::lambda::fetch_history)), from a JSON
//! file in the service's shape (`{"Events": [...]}`, which the AWS CLI's
//! `aws lambda get-durable-execution-history` prints), or from a local run
//! ([`LocalRun::history`](crate::LocalRun::history)). [`Gantt::new`] reads
//! it into operations (nested under their contexts), attempts and
//! invocations; [`Gantt::to_text`] and [`Gantt::to_html`] draw it. The
//! `durable-yield` binary does all of it from the command line:
//!
//! ```text
//! cargo run -p durable-yield --bin durable-yield -- timeline --file history.json --html timeline.html
//! cargo run -p durable-yield --bin durable-yield -- timeline --arn <execution ARN> --html timeline.html
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One history event, in the service's JSON shape: `EventType`, `EventId`,
/// `EventTimestamp` (epoch seconds), the operation's `Id`, `Name`,
/// `ParentId`, `SubType`, and its `<EventType>Details` object as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryEvent {
    /// `StepStarted`, `WaitSucceeded`, `InvocationCompleted`, ...
    pub event_type: String,
    /// Its position, from 1.
    #[serde(default)]
    pub event_id: u64,
    /// When it happened, in epoch seconds.
    #[serde(default)]
    pub event_timestamp: f64,
    /// The operation's id (none for invocation events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The operation's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The context the operation belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// The operation's subtype.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<String>,
    /// The details objects (`StepFailedDetails`, ...), as they are.
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

impl HistoryEvent {
    /// The details object of this event (`<EventType>Details`).
    pub fn detail(&self) -> Option<&Map<String, Value>> {
        self.details
            .get(&format!("{}Details", self.event_type))
            .and_then(Value::as_object)
    }

    /// The error message this event carries, if any (`Error.Payload`).
    pub fn error(&self) -> Option<String> {
        let error = self.detail()?.get("Error")?;
        let payload = error.get("Payload").unwrap_or(error);
        let kind = payload.get("ErrorType").and_then(Value::as_str);
        let message = payload.get("ErrorMessage").and_then(Value::as_str);
        match (kind, message) {
            (Some(k), Some(m)) => Some(format!("{k}: {m}")),
            (Some(s), None) | (None, Some(s)) => Some(s.to_owned()),
            (None, None) => None,
        }
    }

    /// The result payload this event carries, if any (`Result.Payload`).
    pub fn result(&self) -> Option<&str> {
        self.detail()?.get("Result")?.get("Payload")?.as_str()
    }

    fn detail_f64(&self, key: &str) -> Option<f64> {
        self.detail()?.get(key)?.as_f64()
    }

    /// `RetryDetails`: the attempt count and the delay before the next.
    fn retry(&self) -> Option<(u64, Option<f64>)> {
        let retry = self.detail()?.get("RetryDetails")?;
        let attempt = retry.get("CurrentAttempt")?.as_u64()?;
        let delay = retry.get("NextAttemptDelaySeconds").and_then(Value::as_f64);
        Some((attempt, delay))
    }
}

/// An execution's history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecutionHistory {
    /// The execution's ARN, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durable_execution_arn: Option<String>,
    /// The events, in order.
    pub events: Vec<HistoryEvent>,
}

/// A history that could not be read.
#[derive(Debug, thiserror::Error)]
#[error(
    "not an execution history (expected {{\"Events\": [...]}} or [...] in the shape GetDurableExecutionHistory returns): {0}"
)]
pub struct HistoryError(String);

impl ExecutionHistory {
    /// Reads `{"Events": [...]}` (GetDurableExecutionHistory's response,
    /// or what [`ExecutionHistory::to_json`] writes) or a bare array of
    /// events.
    pub fn from_json(text: &str) -> Result<Self, HistoryError> {
        let value: Value = serde_json::from_str(text).map_err(|e| HistoryError(e.to_string()))?;
        let history = if value.is_array() {
            ExecutionHistory {
                durable_execution_arn: None,
                events: serde_json::from_value(value).map_err(|e| HistoryError(e.to_string()))?,
            }
        } else {
            serde_json::from_value(value).map_err(|e| HistoryError(e.to_string()))?
        };
        Ok(history)
    }

    /// The history as pretty JSON, in the service's shape.
    pub fn to_json(&self) -> String {
        // Plain data: serializing it cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// The kinds of an event's type: `StepFailed` is `("Step", "Failed")`.
fn split_event_type(event_type: &str) -> (&str, &str) {
    const ENDINGS: [&str; 8] = [
        "Started",
        "Succeeded",
        "Failed",
        "TimedOut",
        "Stopped",
        "Cancelled",
        "Completed",
        "Scheduled",
    ];
    for ending in ENDINGS {
        if let Some(kind) = event_type.strip_suffix(ending) {
            return (kind, ending);
        }
    }
    (event_type, "")
}

/// The status an event's ending leaves an operation in.
fn status_of(ending: &str) -> &'static str {
    match ending {
        "Started" => "STARTED",
        "Succeeded" => "SUCCEEDED",
        "Failed" => "FAILED",
        "TimedOut" => "TIMED_OUT",
        "Stopped" => "STOPPED",
        "Cancelled" => "CANCELLED",
        _ => "UNKNOWN",
    }
}

/// The operation type for an event's kind.
fn op_type_of(kind: &str) -> &'static str {
    match kind {
        "Step" => "STEP",
        "Wait" => "WAIT",
        "Context" => "CONTEXT",
        "Callback" => "CALLBACK",
        "ChainedInvoke" => "CHAINED_INVOKE",
        "Execution" => "EXECUTION",
        _ => "UNKNOWN",
    }
}

/// One attempt of a step (or one check of a wait-for-condition).
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// The attempt, from 1.
    pub number: u64,
    /// When it started (seconds since the execution started); when the
    /// history does not record its start, when it ended.
    pub start: f64,
    /// When it ended.
    pub end: f64,
    /// Whether it failed (a check whose condition was not met did not).
    pub failed: bool,
    /// The delay before the next attempt, if one was scheduled.
    pub next_delay: Option<f64>,
    /// Its error.
    pub error: Option<String>,
}

/// One operation of the execution.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The operation id.
    pub id: String,
    /// Its name.
    pub name: Option<String>,
    /// `STEP`, `WAIT`, `CONTEXT`, `CALLBACK`, `CHAINED_INVOKE`.
    pub op_type: &'static str,
    /// Its subtype.
    pub sub_type: Option<String>,
    /// The context it belongs to.
    pub parent_id: Option<String>,
    /// How deep it is nested (0 at the root).
    pub depth: usize,
    /// When it started (seconds since the execution started).
    pub start: f64,
    /// When it ended, if it did.
    pub end: Option<f64>,
    /// Its last status.
    pub status: &'static str,
    /// Its attempts (steps).
    pub attempts: Vec<Attempt>,
    /// When a wait was scheduled to end.
    pub scheduled_end: Option<f64>,
    /// Its error.
    pub error: Option<String>,
    /// Its result, as recorded.
    pub result: Option<String>,
}

impl Row {
    /// The name to show: its name, else its type.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(self.op_type)
    }

    /// Whether it ended in failure.
    pub fn is_failure(&self) -> bool {
        matches!(self.status, "FAILED" | "TIMED_OUT" | "STOPPED")
    }
}

/// One invocation of the function.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// When it started (seconds since the execution started). Histories
    /// that do not record it (AWS's emulator) get the first event after
    /// the previous invocation.
    pub start: f64,
    /// When it ended.
    pub end: f64,
    /// The Lambda request id, if recorded.
    pub request_id: Option<String>,
    /// Its error, if it failed.
    pub error: Option<String>,
}

/// An execution read for drawing: operations in tree order, attempts,
/// invocations, times in seconds since the execution started.
#[derive(Debug, Clone, PartialEq)]
pub struct Gantt {
    /// The execution's ARN, when known.
    pub arn: Option<String>,
    /// When the execution started (epoch seconds).
    pub started_at: f64,
    /// How long it ran (or has run so far), in seconds.
    pub duration: f64,
    /// `SUCCEEDED`, `FAILED`, ... or `RUNNING`.
    pub status: &'static str,
    /// Its result or error, when it ended.
    pub outcome: Option<String>,
    /// The operations, each context followed by what it holds.
    pub rows: Vec<Row>,
    /// The invocations.
    pub invocations: Vec<Invocation>,
}

impl Gantt {
    /// Reads `history`.
    pub fn new(history: &ExecutionHistory) -> Self {
        let mut events: Vec<&HistoryEvent> = history.events.iter().collect();
        events.sort_by(|a, b| {
            a.event_timestamp
                .total_cmp(&b.event_timestamp)
                .then(a.event_id.cmp(&b.event_id))
        });
        let started_at = events
            .iter()
            .find(|e| e.event_type == "ExecutionStarted")
            .or(events.first())
            .map_or(0.0, |e| e.event_timestamp);
        let at = |t: f64| (t - started_at).max(0.0);
        let mut status = "RUNNING";
        let mut outcome = None;
        let mut end = 0.0f64;
        let mut rows: Vec<Row> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut invocations: Vec<Invocation> = Vec::new();
        let mut first_since_invocation: Option<f64> = None;
        // Rows whose last step attempt has started and not ended.
        let mut open: std::collections::HashSet<usize> = std::collections::HashSet::new();
        for e in &events {
            let t = at(e.event_timestamp);
            end = end.max(t);
            let (kind, ending) = split_event_type(&e.event_type);
            if kind == "Invocation" {
                let detail = |key: &str| e.detail_f64(key).map(at);
                let start = detail("StartTimestamp")
                    .or(first_since_invocation)
                    .unwrap_or(t)
                    .min(t);
                let stop = detail("EndTimestamp").unwrap_or(t);
                invocations.push(Invocation {
                    start,
                    end: stop,
                    request_id: e
                        .detail()
                        .and_then(|d| d.get("RequestId"))
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    error: e.error(),
                });
                first_since_invocation = None;
                continue;
            }
            first_since_invocation.get_or_insert(t);
            if kind == "Execution" {
                if ending != "Started" {
                    status = status_of(ending);
                    outcome = e.error().or_else(|| e.result().map(str::to_owned));
                }
                continue;
            }
            let Some(id) = e.id.as_deref() else { continue };
            let i = match index.get(id) {
                Some(&i) => i,
                None => {
                    index.insert(id, rows.len());
                    rows.push(Row {
                        id: id.to_owned(),
                        name: e.name.clone(),
                        op_type: op_type_of(kind),
                        sub_type: e.sub_type.clone(),
                        parent_id: e.parent_id.clone(),
                        depth: 0,
                        start: t,
                        end: None,
                        status: "STARTED",
                        attempts: Vec::new(),
                        scheduled_end: None,
                        error: None,
                        result: None,
                    });
                    rows.len() - 1
                }
            };
            let row = &mut rows[i];
            if row.name.is_none() {
                row.name = e.name.clone();
            }
            match ending {
                "Started" => {
                    row.status = "STARTED";
                    if kind == "Wait" {
                        row.scheduled_end = e.detail_f64("ScheduledEndTimestamp").map(at);
                    }
                    if kind == "Step" {
                        open.insert(i);
                        row.attempts.push(Attempt {
                            number: row.attempts.len() as u64 + 1,
                            start: t,
                            end: t,
                            failed: false,
                            next_delay: None,
                            error: None,
                        });
                        row.end = None;
                    }
                }
                _ => {
                    let retry = e.retry();
                    let retried = retry.is_some_and(|(_, delay)| delay.is_some_and(|d| d > 0.0));
                    if kind == "Step" {
                        // The attempt that ends: the one its START opened,
                        // else one whose START was not recorded.
                        if !open.remove(&i) {
                            row.attempts.push(Attempt {
                                number: row.attempts.len() as u64 + 1,
                                start: t,
                                end: t,
                                failed: false,
                                next_delay: None,
                                error: None,
                            });
                        }
                        if let Some(attempt) = row.attempts.last_mut() {
                            attempt.end = t;
                            attempt.failed = ending != "Succeeded";
                            attempt.error = e.error();
                            if retried {
                                attempt.next_delay = retry.and_then(|(_, delay)| delay);
                            }
                        }
                    }
                    if retried {
                        // Not over: the next attempt comes after the delay.
                        row.status = "PENDING";
                    } else {
                        row.status = status_of(ending);
                        row.end = Some(t);
                        row.error = e.error();
                        row.result = e.result().map(str::to_owned);
                    }
                }
            }
        }
        // Depths and tree order: each context followed by what it holds.
        let order = tree_order(&rows);
        let mut slots: Vec<Option<Row>> = rows.into_iter().map(Some).collect();
        let rows: Vec<Row> = order
            .into_iter()
            .filter_map(|(i, depth)| {
                let mut row = slots[i].take()?;
                row.depth = depth;
                Some(row)
            })
            .collect();
        Gantt {
            arn: history.durable_execution_arn.clone(),
            started_at,
            duration: end,
            status,
            outcome,
            rows,
            invocations,
        }
    }
}

/// Rows in tree order (parents before children, siblings by start), with
/// depths; rows whose parent is unknown are roots.
fn tree_order(rows: &[Row]) -> Vec<(usize, usize)> {
    let ids: HashMap<&str, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    let mut children: HashMap<Option<usize>, Vec<usize>> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let parent = row
            .parent_id
            .as_deref()
            .and_then(|p| ids.get(p).copied())
            .filter(|&p| p != i);
        children.entry(parent).or_default().push(i);
    }
    let mut out = Vec::with_capacity(rows.len());
    let mut stack: Vec<(usize, usize)> = children
        .get(&None)
        .map(|roots| roots.iter().rev().map(|&i| (i, 0)).collect())
        .unwrap_or_default();
    let mut seen = vec![false; rows.len()];
    while let Some((i, depth)) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        out.push((i, depth));
        if let Some(kids) = children.get(&Some(i)) {
            stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
        }
    }
    // Rows caught in a parent cycle (a malformed history) still show.
    for (i, done) in seen.iter().enumerate() {
        if !done {
            out.push((i, 0));
        }
    }
    out
}

/// `+hh:mm:ss` (and `.mmm` when `fine`).
fn clock(seconds: f64, fine: bool) -> String {
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

fn shorten(s: &str, max: usize) -> String {
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
struct Scale {
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
fn escape(s: &str) -> String {
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
