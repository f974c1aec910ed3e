//! OpenTelemetry spans for durable executions (feature `otel`), following
//! the conventions AWS publishes for its durable-execution SDKs, so that a
//! Rust function's trace looks like a Python or JavaScript one in the same
//! backend.
//!
//! [`OtelPlugin`] is a lifecycle [`Plugin`] that
//! writes, through any OpenTelemetry [`Tracer`]:
//!
//! | span | when | parent | attributes |
//! |---|---|---|---|
//! | `Invocation` | every invocation | the execution's trace root | `durable.execution.arn`, `durable.invocation.first`, `durable.invocation.status` |
//! | the operation's name (its type if unnamed) | every operation started or ended in the invocation | `Invocation` | `durable.execution.arn`, `durable.operation.id`, `.type`, `.subtype`, `.name`, `.status`; `durable.attempt.number` for steps |
//! | `<name> attempt <n>` | every step attempt and condition check | the operation's span | the operation's, `durable.attempt.number`, `durable.attempt.outcome` |
//! | `Workflow` | once, when the execution ends | the execution's trace root | `durable.execution.arn`, `durable.execution.status` |
//!
//! **One trace per execution.** Every span of an execution, in every
//! invocation, belongs to one trace: the one in the X-Ray trace header
//! Lambda passes the invocation (the durable service keeps it for the
//! execution), or, without one (the local runner), a trace id derived from
//! the execution ARN and start time (its first 32 bits are the start time
//! in seconds, as X-Ray expects) under a synthetic root span id derived
//! from the ARN.
//!
//! **Links.** Operation and attempt spans link to the `Workflow` span,
//! whose id is derived from the ARN so that spans written before the
//! execution ended can point at it. An operation that spans invocations (a
//! wait, a retried step, a callback) gets a span in each invocation that
//! sees it; the first has an id derived from the ARN and the operation id,
//! the later ones link to it. Derived span ids need the
//! [`DeterministicIds`] generator on the tracer provider; without it spans
//! get random ids and the links point nowhere (a warning says so, once).
//!
//! Spans carry the runtime's clock: the system clock on Lambda, the virtual
//! clock on the local runner (so local traces are reproducible).
//!
//! ```
//! use durable_yield::otel::{DeterministicIds, OtelPlugin};
//! use durable_yield::LocalRunner;
//! use opentelemetry::trace::TracerProvider as _;
//! use opentelemetry_sdk::trace::SdkTracerProvider;
//!
//! let provider = SdkTracerProvider::builder()
//!     .with_id_generator(DeterministicIds::default())
//!     // .with_batch_exporter(your OTLP exporter)
//!     .build();
//! let runner = LocalRunner::new().plugin(OtelPlugin::new(provider.tracer("durable-yield")));
//! ```

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    Link, Span, SpanBuilder, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags,
    TraceId, TraceState, Tracer,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};

use crate::BoxError;
use crate::model::{Millis, OperationId, OperationStatus, OperationType};
use crate::plugin::{
    AttemptEvent, HookResult, InvocationEnd, InvocationEndStatus, InvocationHooks, InvocationStart,
    OperationEvent, Plugin,
};

thread_local! {
    /// The id the next span built on this thread must have.
    static NEXT_SPAN_ID: Cell<Option<SpanId>> = const { Cell::new(None) };
}

/// An OpenTelemetry id generator that gives [`OtelPlugin`]'s spans the ids
/// it derives (the `Workflow` span's, an operation's first span's), and
/// random ids to everything else. Install it on the tracer provider:
/// `SdkTracerProvider::builder().with_id_generator(DeterministicIds::default())`.
#[derive(Debug, Default)]
pub struct DeterministicIds {
    random: RandomIdGenerator,
}

impl IdGenerator for DeterministicIds {
    fn new_trace_id(&self) -> TraceId {
        self.random.new_trace_id()
    }

    fn new_span_id(&self) -> SpanId {
        NEXT_SPAN_ID
            .with(Cell::take)
            .unwrap_or_else(|| self.random.new_span_id())
    }
}

/// A lifecycle plugin that writes the execution's spans (see the
/// [module docs](self)).
pub struct OtelPlugin<T> {
    tracer: Arc<T>,
    warned: Arc<AtomicBool>,
}

impl<T> OtelPlugin<T>
where
    T: Tracer + Send + Sync + 'static,
    T::Span: Send + Sync + 'static,
{
    /// Writes spans with `tracer`.
    pub fn new(tracer: T) -> Self {
        OtelPlugin {
            tracer: Arc::new(tracer),
            warned: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl<T> Plugin for OtelPlugin<T>
where
    T: Tracer + Send + Sync + 'static,
    T::Span: Send + Sync + 'static,
{
    fn invocation(
        &self,
        start: &InvocationStart<'_>,
    ) -> Result<Box<dyn InvocationHooks>, BoxError> {
        let arn = start.execution_arn;
        let root = start
            .trace_header
            .and_then(parse_trace_header)
            .unwrap_or_else(|| {
                let seconds = start.execution_started_at.unwrap_or(start.at) / 1000;
                SpanContext::new(
                    derived_trace_id(arn, seconds),
                    derived_span_id("execution-root:", arn),
                    TraceFlags::SAMPLED,
                    true,
                    TraceState::default(),
                )
            });
        let workflow = SpanContext::new(
            root.trace_id(),
            derived_span_id("workflow:", arn),
            root.trace_flags(),
            false,
            TraceState::default(),
        );
        let root = Context::new().with_remote_span_context(root);
        let mut hooks = OtelHooks {
            tracer: self.tracer.clone(),
            warned: self.warned.clone(),
            arn: Arc::from(arn),
            execution_started_at: start.execution_started_at,
            root,
            workflow,
            invocation: None,
            invocation_cx: Context::new(),
            operations: HashMap::new(),
            attempts: HashMap::new(),
        };
        let builder = SpanBuilder::from_name("Invocation")
            .with_kind(SpanKind::Internal)
            .with_start_time(time(start.at))
            .with_attributes([
                KeyValue::new("durable.execution.arn", hooks.arn.to_string()),
                KeyValue::new("durable.invocation.first", start.first_invocation),
            ]);
        let span = hooks.tracer.build_with_context(builder, &hooks.root);
        hooks.invocation_cx = Context::new().with_remote_span_context(span.span_context().clone());
        hooks.invocation = Some(span);
        Ok(Box::new(hooks))
    }

    fn name(&self) -> &str {
        "durable_yield::otel::OtelPlugin"
    }
}

/// An operation's span in this invocation.
struct OpSpan<S> {
    span: S,
    cx: Context,
    attempt: Option<u32>,
}

struct OtelHooks<T: Tracer> {
    tracer: Arc<T>,
    warned: Arc<AtomicBool>,
    arn: Arc<str>,
    execution_started_at: Option<Millis>,
    root: Context,
    workflow: SpanContext,
    invocation: Option<T::Span>,
    invocation_cx: Context,
    operations: HashMap<OperationId, OpSpan<T::Span>>,
    attempts: HashMap<OperationId, T::Span>,
}

impl<T> OtelHooks<T>
where
    T: Tracer,
{
    fn op_attributes(
        &self,
        id: &OperationId,
        op_type: OperationType,
        sub_type: Option<&str>,
        name: Option<&str>,
    ) -> Vec<KeyValue> {
        let mut attributes = vec![
            KeyValue::new("durable.execution.arn", self.arn.to_string()),
            KeyValue::new("durable.operation.id", id.to_string()),
            KeyValue::new("durable.operation.type", op_type.to_string()),
        ];
        if let Some(sub_type) = sub_type {
            attributes.push(KeyValue::new(
                "durable.operation.subtype",
                sub_type.to_owned(),
            ));
        }
        if let Some(name) = name {
            attributes.push(KeyValue::new("durable.operation.name", name.to_owned()));
        }
        attributes
    }

    /// Builds a span, with `id` if it must have a derived one.
    fn build(&self, builder: SpanBuilder, parent: &Context, id: Option<SpanId>) -> T::Span {
        NEXT_SPAN_ID.with(|next| next.set(id));
        let span = self.tracer.build_with_context(builder, parent);
        NEXT_SPAN_ID.with(|next| next.set(None));
        if let Some(id) = id {
            let got = span.span_context();
            if got.is_valid() && got.span_id() != id && !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "durable-yield's OpenTelemetry spans need the DeterministicIds id generator on \
                     the tracer provider to link across invocations; without it the links point \
                     nowhere"
                );
            }
        }
        span
    }

    /// Opens an operation's span.
    fn open(&mut self, event: &OperationEvent<'_>) {
        let first = derived_span_id(&format!("{}:", self.arn), event.id.as_str());
        let mut links = vec![Link::with_context(self.workflow.clone())];
        let id = if event.replayed {
            // Its first span was written by an earlier invocation.
            links.insert(
                0,
                Link::with_context(SpanContext::new(
                    self.workflow.trace_id(),
                    first,
                    self.workflow.trace_flags(),
                    false,
                    TraceState::default(),
                )),
            );
            None
        } else {
            Some(first)
        };
        let name = match event.name {
            Some(name) => Cow::Owned(name.to_owned()),
            None => Cow::Owned(event.op_type.to_string()),
        };
        let builder = SpanBuilder::from_name(name)
            .with_kind(SpanKind::Internal)
            .with_start_time(time(event.at))
            .with_links(links)
            .with_attributes(self.op_attributes(
                event.id,
                event.op_type,
                event.sub_type,
                event.name,
            ));
        let span = self.build(builder, &self.invocation_cx, id);
        let cx = Context::new().with_remote_span_context(span.span_context().clone());
        self.operations.insert(
            *event.id,
            OpSpan {
                span,
                cx,
                attempt: None,
            },
        );
    }

    /// Ends an operation's span with its status.
    fn close(
        &mut self,
        id: &OperationId,
        status: OperationStatus,
        at: Millis,
        error: Option<&str>,
    ) {
        let Some(mut op) = self.operations.remove(id) else {
            return;
        };
        op.span.set_attribute(KeyValue::new(
            "durable.operation.status",
            status.to_string(),
        ));
        if let Some(attempt) = op.attempt {
            op.span
                .set_attribute(KeyValue::new("durable.attempt.number", i64::from(attempt)));
        }
        op.span.set_status(span_status(status, error));
        op.span.end_with_timestamp(time(at));
    }
}

impl<T> InvocationHooks for OtelHooks<T>
where
    T: Tracer + Send + Sync + 'static,
    T::Span: Send + Sync + 'static,
{
    fn on_operation_start(&mut self, event: &OperationEvent<'_>) -> HookResult {
        self.open(event);
        Ok(())
    }

    fn on_operation_end(&mut self, event: &OperationEvent<'_>) -> HookResult {
        if !self.operations.contains_key(event.id) {
            // Finished between invocations: a span in this one that says so.
            self.open(event);
        }
        if let Some(attempt) = event
            .record
            .and_then(|r| r.step_details.as_ref())
            .and_then(|d| d.attempt)
        {
            if let Some(op) = self.operations.get_mut(event.id) {
                op.attempt = op.attempt.or(Some(attempt));
            }
        }
        let error = event.error.and_then(|e| e.error_message.as_deref());
        self.close(event.id, event.status, event.at, error);
        Ok(())
    }

    fn on_attempt_start(&mut self, event: &AttemptEvent<'_>) -> HookResult {
        let parent = match self.operations.get_mut(event.id) {
            Some(op) => {
                op.attempt = Some(event.attempt);
                op.cx.clone()
            }
            None => self.invocation_cx.clone(),
        };
        let mut attributes = self.op_attributes(
            event.id,
            OperationType::Step,
            Some(event.sub_type),
            event.name,
        );
        attributes.push(KeyValue::new(
            "durable.attempt.number",
            i64::from(event.attempt),
        ));
        let name = format!("{} attempt {}", event.name.unwrap_or("STEP"), event.attempt);
        let builder = SpanBuilder::from_name(name)
            .with_kind(SpanKind::Internal)
            .with_start_time(time(event.at))
            .with_links(vec![Link::with_context(self.workflow.clone())])
            .with_attributes(attributes);
        let span = self.build(builder, &parent, None);
        self.attempts.insert(*event.id, span);
        Ok(())
    }

    fn on_attempt_end(&mut self, event: &AttemptEvent<'_>) -> HookResult {
        if let (Some(mut span), Some(outcome)) = (self.attempts.remove(event.id), event.outcome) {
            span.set_attribute(KeyValue::new("durable.attempt.outcome", outcome.as_str()));
            span.set_status(match event.error {
                Some(error) => Status::error(error.error_message.clone().unwrap_or_default()),
                None => Status::Ok,
            });
            span.end_with_timestamp(time(event.at));
        }
        Ok(())
    }

    fn on_invocation_end(&mut self, event: &InvocationEnd<'_>) -> HookResult {
        let end = time(event.at);
        for (_, mut span) in self.attempts.drain() {
            span.end_with_timestamp(end);
        }
        // Operations still going on (a wait, a retry, a callback) end
        // with the invocation, with the status they have now.
        let open: Vec<OperationId> = self.operations.keys().copied().collect();
        for id in open {
            self.close(&id, OperationStatus::Started, event.at, None);
        }
        let message = event.error.and_then(|e| e.error_message.as_deref());
        if let Some(mut span) = self.invocation.take() {
            span.set_attribute(KeyValue::new(
                "durable.invocation.status",
                event.status.as_str(),
            ));
            span.set_status(match event.status {
                InvocationEndStatus::Failed | InvocationEndStatus::Retry => {
                    Status::error(message.unwrap_or_default().to_owned())
                }
                _ => Status::Ok,
            });
            span.end_with_timestamp(end);
        }
        if event.status.is_terminal() {
            let start = self.execution_started_at.unwrap_or(event.at);
            let builder = SpanBuilder::from_name("Workflow")
                .with_kind(SpanKind::Internal)
                .with_start_time(time(start))
                .with_attributes([
                    KeyValue::new("durable.execution.arn", self.arn.to_string()),
                    KeyValue::new("durable.execution.status", event.status.as_str()),
                ]);
            let mut span = self.build(builder, &self.root, Some(self.workflow.span_id()));
            span.set_status(match event.status {
                InvocationEndStatus::Failed => {
                    Status::error(message.unwrap_or_default().to_owned())
                }
                _ => Status::Ok,
            });
            span.end_with_timestamp(end);
        }
        Ok(())
    }
}

fn span_status(status: OperationStatus, error: Option<&str>) -> Status {
    match status {
        OperationStatus::Succeeded => Status::Ok,
        s if s.is_terminal() => Status::error(error.unwrap_or_default().to_owned()),
        _ => Status::Unset,
    }
}

fn time(at: Millis) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(at).unwrap_or(0))
}

fn digest(prefix: &str, value: &str) -> [u8; 64] {
    let mut state = blake2b_simd::State::new();
    state.update(prefix.as_bytes());
    state.update(value.as_bytes());
    *state.finalize().as_array()
}

/// A span id derived from `prefix` and `value`, never the invalid zero.
fn derived_span_id(prefix: &str, value: &str) -> SpanId {
    let d = digest(prefix, value);
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&d[..8]);
    if bytes == [0; 8] {
        bytes[7] = 1;
    }
    SpanId::from_bytes(bytes)
}

/// A trace id whose first 32 bits are `seconds` (as X-Ray expects) and the
/// rest derived from the execution ARN.
fn derived_trace_id(arn: &str, seconds: Millis) -> TraceId {
    let d = digest("trace:", arn);
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&(seconds as u32).to_be_bytes());
    bytes[4..].copy_from_slice(&d[..12]);
    TraceId::from_bytes(bytes)
}

/// Reads an X-Ray trace header, `Root=1-5759e988-bd862e3fe1be46a994272793;
/// Parent=53995c3f42cd8ad8;Sampled=1`, into a remote span context.
pub fn parse_trace_header(header: &str) -> Option<SpanContext> {
    let mut trace = None;
    let mut parent = None;
    let mut sampled = true;
    for part in header.split(';') {
        let (key, value) = part.trim().split_once('=')?;
        match key {
            "Root" => {
                let mut pieces = value.split('-');
                let (Some("1"), Some(time), Some(rest), None) =
                    (pieces.next(), pieces.next(), pieces.next(), pieces.next())
                else {
                    return None;
                };
                if time.len() != 8 || rest.len() != 24 {
                    return None;
                }
                trace = TraceId::from_hex(&format!("{time}{rest}")).ok();
            }
            "Parent" if value.len() == 16 => parent = SpanId::from_hex(value).ok(),
            "Sampled" => sampled = value != "0",
            _ => {}
        }
    }
    let context = SpanContext::new(
        trace?,
        parent?,
        if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        },
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_xray_trace_headers() {
        let sc = parse_trace_header(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .unwrap();
        assert_eq!(
            sc.trace_id().to_string(),
            "5759e988bd862e3fe1be46a994272793"
        );
        assert_eq!(sc.span_id().to_string(), "53995c3f42cd8ad8");
        assert!(sc.is_sampled() && sc.is_remote());
        let unsampled = parse_trace_header(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
        )
        .unwrap();
        assert!(!unsampled.is_sampled());
        for bad in [
            "",
            "Root=1-5759e988-bd862e3fe1be46a994272793",
            "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-zz862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "Root=1-00000000-000000000000000000000000;Parent=0000000000000000",
            "garbage",
        ] {
            assert!(parse_trace_header(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn derived_ids_are_stable_and_carry_the_start_time() {
        let arn = "arn:aws:lambda:us-east-1:1:function:f/durable-execution/n/1";
        assert_eq!(
            derived_span_id("workflow:", arn),
            derived_span_id("workflow:", arn)
        );
        assert_ne!(
            derived_span_id("workflow:", arn),
            derived_span_id("execution-root:", arn)
        );
        let trace = derived_trace_id(arn, 0x5759_e988);
        assert!(trace.to_string().starts_with("5759e988"));
        assert_eq!(trace, derived_trace_id(arn, 0x5759_e988));
    }
}
