//! The history as rows on a time line: one per operation (with its
//! attempts) and one per invocation, nested as the contexts are.

use super::*;

/// One attempt of a step (or one check of a wait-for-condition).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
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
#[non_exhaustive]
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
#[non_exhaustive]
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
#[non_exhaustive]
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
pub(super) fn tree_order(rows: &[Row]) -> Vec<(usize, usize)> {
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
