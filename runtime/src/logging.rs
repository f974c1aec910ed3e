//! JSON log lines for Lambda (feature `logging`): one JSON object per
//! line, with the execution ARN as a top-level field, so that CloudWatch's
//! execution-scoped filter (`{ $.durableExecutionArn = "<ARN>" }`) finds
//! every line an execution wrote, and each workflow line once per
//! execution.
//!
//! [`JsonLogLayer`] is a `tracing-subscriber` layer. Each line holds:
//!
//! - `timestamp` (RFC 3339, UTC), `level`, `target`, `message` and the
//!   event's own fields;
//! - inside an invocation: `durableExecutionArn` and, on Lambda,
//!   `requestId` and, when the invocation runs for a tenant (Lambda's
//!   tenant isolation mode), `tenantId`, as AWS's JavaScript SDK writes
//!   it;
//! - inside a step attempt: `operationId`, `operationName`, `attempt` and,
//!   in a child context, `parentId`;
//! - with [`JsonLogLayer::span_fields`], the fields of the code's own
//!   spans (or of those a plugin enters around user code), as AWS's
//!   JavaScript SDK's `enrichLogContext` plugin hook adds fields;
//! - with feature `otel`, when an OpenTelemetry span is current: `traceId`
//!   (32 hex digits), `spanId` (16) and `otelTraceSampled`, as AWS's
//!   OpenTelemetry plugin stamps its SDK's log records. With
//!   `durable_yield::otel::OtelPlugin` registered, that is the step
//!   attempt's span in a step body, the context's span in a child
//!   context's (or map item's, or branch's) code and the `Invocation` span
//!   in the rest of the workflow's code, so a line finds its place in the
//!   execution's trace.
//!
//! Lambda passes a line that is a JSON object through as it is when the
//! function's log format is JSON (`LoggingConfig.LogFormat = JSON`, or
//! `AWS_LAMBDA_LOG_FORMAT=JSON`), so these fields are queryable as they
//! are in CloudWatch Logs Insights and in metric and subscription filters.
//!
//! By default a line written by workflow code while it replays what an
//! earlier invocation ran ([`is_replaying`](crate::is_replaying)) is left
//! out: workflow lines appear once per execution, not once per invocation.
//! [`JsonLogLayer::every_replay`] keeps them. Step bodies only run live, so
//! their lines are always written.
//!
//! ```no_run
//! use tracing_subscriber::prelude::*;
//!
//! tracing_subscriber::registry()
//!     .with(durable_yield::logging::JsonLogLayer::stdout()
//!         .with_filter(tracing_subscriber::filter::LevelFilter::INFO))
//!     .init();
//! ```

use std::fmt;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The spans whose fields become top-level fields, and how they are named.
const SPAN_FIELDS: &[(&str, &[(&str, &str)])] = &[
    (
        "durable_execution",
        &[
            ("execution_arn", "durableExecutionArn"),
            ("request_id", "requestId"),
            ("tenant_id", "tenantId"),
        ],
    ),
    (
        "durable_operation",
        &[
            ("operation_id", "operationId"),
            ("name", "operationName"),
            ("attempt", "attempt"),
            ("parent_id", "parentId"),
        ],
    ),
];

/// A layer that writes each event as one JSON line (see the
/// [module docs](self)).
pub struct JsonLogLayer<W = fn() -> std::io::Stdout> {
    make_writer: W,
    every_replay: bool,
    span_fields: bool,
}

impl JsonLogLayer {
    /// Writes to standard output (where Lambda collects logs).
    pub fn stdout() -> Self {
        JsonLogLayer {
            make_writer: std::io::stdout,
            every_replay: false,
            span_fields: false,
        }
    }
}

impl<W> JsonLogLayer<W> {
    /// Writes to `make_writer` instead (a file, a buffer in a test).
    pub fn with_writer<W2>(self, make_writer: W2) -> JsonLogLayer<W2>
    where
        W2: for<'a> MakeWriter<'a> + 'static,
    {
        JsonLogLayer {
            make_writer,
            every_replay: self.every_replay,
            span_fields: self.span_fields,
        }
    }

    /// Also writes the lines workflow code writes while it replays: each
    /// workflow line then appears once per invocation that runs it.
    pub fn every_replay(mut self) -> Self {
        self.every_replay = true;
        self
    }

    /// Also writes the fields of the other spans a line is written in
    /// (your own, or those a plugin's [`Scope`](crate::plugin::Scope)
    /// enters around user code), as top-level fields: what AWS's
    /// JavaScript SDK lets a plugin add with `enrichLogContext`. A field
    /// of an inner span replaces an outer span's of the same name; the
    /// SDK's fields (`durableExecutionArn`, `operationId`, ...) and the
    /// event's own are never replaced by them. The spans of the SDK's
    /// other targets (`durable_yield::...`) are left out.
    ///
    /// ```
    /// use durable_yield::plugin::Scope;
    ///
    /// /// Every line user code writes carries `tenant`: a plugin's
    /// /// `InvocationHooks::scope` hands this out for
    /// /// `UserCode::Workflow` and `UserCode::Attempt` (step bodies run on
    /// /// tasks of their own, outside the workflow's scope).
    /// struct Tenant(String);
    /// impl Scope for Tenant {
    ///     fn run(&self, code: &mut dyn FnMut()) {
    ///         tracing::info_span!("tenant", tenant = %self.0).in_scope(code)
    ///     }
    /// }
    ///
    /// let layer = durable_yield::logging::JsonLogLayer::stdout().span_fields();
    /// # let _ = (layer, Tenant("acme".into()));
    /// ```
    pub fn span_fields(mut self) -> Self {
        self.span_fields = true;
        self
    }
}

impl<W> fmt::Debug for JsonLogLayer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLogLayer")
            .field("every_replay", &self.every_replay)
            .field("span_fields", &self.span_fields)
            .finish_non_exhaustive()
    }
}

/// The top-level fields a span contributes.
struct DurableFields(Map<String, Value>);

/// The fields of a span of the code's own (with
/// [`JsonLogLayer::span_fields`]), under their own names.
struct OtherFields(Map<String, Value>);

/// Whether a span's fields are the code's own: not the SDK's.
fn is_others(meta: &tracing::Metadata<'_>) -> bool {
    !meta.target().starts_with("durable_yield")
}

/// Records the fields of one of [`SPAN_FIELDS`]'s spans.
struct SpanVisitor<'a> {
    names: &'static [(&'static str, &'static str)],
    fields: &'a mut Map<String, Value>,
}

impl SpanVisitor<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        if let Some((_, key)) = self.names.iter().find(|(name, _)| *name == field.name()) {
            self.fields.insert((*key).to_owned(), value);
        }
    }
}

impl Visit for SpanVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
}

/// Records an event's fields as JSON values.
struct EventVisitor<'a>(&'a mut Map<String, Value>);

impl EventVisitor<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.0.insert(name.to_owned(), value);
    }
}

impl Visit for EventVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }
}

impl<S, W> Layer<S> for JsonLogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let name = attrs.metadata().name();
        let Some((_, names)) = SPAN_FIELDS.iter().find(|(span, _)| *span == name) else {
            if self.span_fields && is_others(attrs.metadata()) {
                let mut fields = Map::new();
                attrs.record(&mut EventVisitor(&mut fields));
                if let Some(span) = ctx.span(id) {
                    span.extensions_mut().insert(OtherFields(fields));
                }
            }
            return;
        };
        let mut fields = Map::new();
        attrs.record(&mut SpanVisitor {
            names,
            fields: &mut fields,
        });
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(DurableFields(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let Some((_, names)) = SPAN_FIELDS.iter().find(|(name, _)| *name == span.name()) else {
            if let Some(OtherFields(fields)) = span.extensions_mut().get_mut::<OtherFields>() {
                values.record(&mut EventVisitor(fields));
            }
            return;
        };
        if let Some(DurableFields(fields)) = span.extensions_mut().get_mut::<DurableFields>() {
            values.record(&mut SpanVisitor { names, fields });
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if !self.every_replay && crate::is_replaying() {
            return;
        }
        let meta = event.metadata();
        let mut line = Map::new();
        // Lowest first: the code's own spans' fields, then the line's own,
        // the SDK's, the trace context and the event's fields.
        if self.span_fields {
            if let Some(scope) = ctx.event_scope(event) {
                for span in scope.from_root() {
                    if let Some(OtherFields(fields)) = span.extensions().get::<OtherFields>() {
                        line.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                    }
                }
            }
        }
        line.insert(
            "timestamp".into(),
            Value::String(rfc3339(SystemTime::now())),
        );
        line.insert("level".into(), Value::String(meta.level().to_string()));
        line.insert("target".into(), Value::String(meta.target().to_owned()));
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(DurableFields(fields)) = span.extensions().get::<DurableFields>() {
                    line.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        #[cfg(feature = "otel")]
        trace_context(&mut line);
        event.record(&mut EventVisitor(&mut line));
        let Ok(mut text) = serde_json::to_vec(&Value::Object(line)) else {
            return;
        };
        text.push(b'\n');
        // One write per line, so that lines from concurrent tasks do not
        // interleave; a failed write has nowhere to be reported.
        let _ = self.make_writer.make_writer_for(meta).write_all(&text);
    }
}

/// The current OpenTelemetry span's ids, as AWS's plugin names them.
#[cfg(feature = "otel")]
fn trace_context(line: &mut Map<String, Value>) {
    use opentelemetry::trace::TraceContextExt;
    let context = opentelemetry::Context::current();
    let span = context.span();
    let span = span.span_context();
    if !span.is_valid() {
        return;
    }
    line.insert("traceId".into(), Value::String(span.trace_id().to_string()));
    line.insert("spanId".into(), Value::String(span.span_id().to_string()));
    line.insert("otelTraceSampled".into(), Value::Bool(span.is_sampled()));
}

/// `2026-11-30T03:29:38.123Z`.
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc_timestamps() {
        let at = |s: u64, ms: u64| rfc3339(UNIX_EPOCH + Duration::from_millis(s * 1000 + ms));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_795_750_178, 123), "2026-11-27T03:29:38.123Z");
        assert_eq!(at(4_102_444_799, 999), "2099-12-31T23:59:59.999Z");
    }
}
