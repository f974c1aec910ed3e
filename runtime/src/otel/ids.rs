//! The ids [`OtelPlugin`](super::OtelPlugin) derives (so that spans written
//! by different invocations find each other), the id generator that gives
//! them to spans, and X-Ray trace headers.

use std::cell::Cell;

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};

use crate::model::{Millis, OperationId};

thread_local! {
    /// The ids the next span built on this thread must have.
    pub(super) static NEXT_IDS: Cell<(Option<TraceId>, Option<SpanId>)> = const { Cell::new((None, None)) };
}

/// An OpenTelemetry id generator that gives
/// [`OtelPlugin`](super::OtelPlugin)'s spans the ids
/// it derives (the `Workflow` span's and its trace's, an operation's span
/// id), and random ids to everything else. Install it on the tracer
/// provider: `SdkTracerProvider::builder().with_id_generator(DeterministicIds::default())`.
#[derive(Debug, Default)]
pub struct DeterministicIds {
    random: RandomIdGenerator,
}

impl IdGenerator for DeterministicIds {
    fn new_trace_id(&self) -> TraceId {
        NEXT_IDS.with(|next| {
            let (trace, span) = next.get();
            next.set((None, span));
            trace.unwrap_or_else(|| self.random.new_trace_id())
        })
    }

    fn new_span_id(&self) -> SpanId {
        NEXT_IDS.with(|next| {
            let (trace, span) = next.get();
            next.set((trace, None));
            span.unwrap_or_else(|| self.random.new_span_id())
        })
    }
}

fn digest(prefix: &str, value: &str) -> [u8; 64] {
    digest_of(&[prefix, value])
}

/// BLAKE2b-512 of the parts, one after the other.
fn digest_of(parts: &[&str]) -> [u8; 64] {
    let mut state = blake2b_simd::State::new();
    for part in parts {
        state.update(part.as_bytes());
    }
    *state.finalize().as_array()
}

/// The first 8 bytes of a digest as a span id, never the invalid zero.
fn span_id_of(digest: &[u8; 64]) -> SpanId {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    if bytes == [0; 8] {
        bytes[7] = 1;
    }
    SpanId::from_bytes(bytes)
}

/// A span id derived from `prefix` and `value` (BLAKE2b-512's first 8
/// bytes, as AWS's Python plugin derives them), never the invalid zero.
pub(super) fn derived_span_id(prefix: &str, value: &str) -> SpanId {
    span_id_of(&digest(prefix, value))
}

/// An operation's span id: derived from `"<ARN>:<operation id>"`, as
/// AWS's Python plugin derives it (`operation_id_to_span_id`).
pub(super) fn operation_span_id(arn: &str, id: &OperationId) -> SpanId {
    span_id_of(&digest_of(&[arn, ":", id.as_str()]))
}

/// A trace id whose first 32 bits are `seconds` (as X-Ray expects) and the
/// rest the first 12 bytes of the ARN's BLAKE2b-512 digest, as AWS's
/// Python plugin derives it.
pub(super) fn derived_trace_id(arn: &str, seconds: Millis) -> TraceId {
    let d = digest("", arn);
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&(seconds as u32).to_be_bytes());
    bytes[4..].copy_from_slice(&d[..12]);
    TraceId::from_bytes(bytes)
}

/// The X-Ray trace header naming `context` as the parent.
pub(super) fn trace_header(context: &SpanContext) -> String {
    let trace = context.trace_id().to_string();
    format!(
        "Root=1-{}-{};Parent={};Sampled={}",
        &trace[..8],
        &trace[8..],
        context.span_id(),
        u8::from(context.is_sampled())
    )
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
        assert_eq!(
            trace_header(&sc),
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        );
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
    fn derived_ids_are_stable_and_match_aws_python_plugin() {
        let arn = "arn:aws:lambda:us-east-1:1:function:f/durable-execution/n/1";
        assert_eq!(
            derived_span_id("workflow:", arn),
            derived_span_id("workflow:", arn)
        );
        assert_ne!(
            derived_span_id("workflow:", arn),
            derived_span_id(&format!("{arn}:"), "op")
        );
        let trace = derived_trace_id(arn, 0x5759_e988);
        assert!(trace.to_string().starts_with("5759e988"));
        assert_eq!(trace, derived_trace_id(arn, 0x5759_e988));
        // Python: hashlib.blake2b(("workflow:" + arn).encode()).hexdigest()[:16],
        // f"{arn}:{id}" likewise, and the trace id's last 24 hex digits from
        // blake2b(arn) (computed with Python 3's hashlib).
        assert_eq!(derived_span_id("workflow:", arn).to_string(), WORKFLOW_ID);
        assert_eq!(
            derived_span_id(&format!("{arn}:"), "op").to_string(),
            OPERATION_ID
        );
        assert_eq!(trace.to_string()[8..], *TRACE_TAIL);
    }

    const WORKFLOW_ID: &str = "fb80cf1dd09b7e13";
    const OPERATION_ID: &str = "f3f2ca1dbde5fb5c";
    const TRACE_TAIL: &str = "e591f27acde7fc9311f3af9c";
}
