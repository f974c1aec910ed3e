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

/// What an X-Ray trace header says, each part read on its own, as AWS's
/// plugin (2.0.0) reads `_X_AMZN_TRACE_ID`: a valid `Root` is the
/// execution's trace even without a `Parent`, a valid `Parent` (with a
/// valid `Root`) is the execution's remote ancestor, and `Sampled=1` or
/// `Sampled=0` is the decision (anything else leaves it undecided).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct TraceHeader {
    /// `Root`, if valid (`1-<8 hex>-<24 hex>`, not all zeros).
    pub(super) trace: Option<TraceId>,
    /// `Parent`, if valid (16 hex digits, not all zeros).
    pub(super) parent: Option<SpanId>,
    /// `Sampled`: `Some(true)` for `1`, `Some(false)` for `0`.
    pub(super) sampled: Option<bool>,
}

impl TraceHeader {
    /// Reads `header`: `;`-separated `key=value` parts, spaces around
    /// either ignored, parts without `=` and unknown keys (`Lineage`,
    /// `Self`) skipped, the last of a repeated key kept. `None` when it
    /// says nothing usable.
    pub(super) fn read(header: &str) -> Option<TraceHeader> {
        let (mut root, mut parent, mut sampled) = (None, None, None);
        for part in header.split(';') {
            if let Some((key, value)) = part.split_once('=') {
                match key.trim() {
                    "Root" => root = Some(value.trim()),
                    "Parent" => parent = Some(value.trim()),
                    "Sampled" => sampled = Some(value.trim()),
                    _ => {}
                }
            }
        }
        let read = TraceHeader {
            trace: root.and_then(xray_trace_id),
            parent: parent
                .and_then(|p| hex_id(p, 16))
                .and_then(|p| SpanId::from_hex(p).ok())
                .filter(|p| *p != SpanId::INVALID),
            sampled: match sampled {
                Some("1") => Some(true),
                Some("0") => Some(false),
                _ => None,
            },
        };
        (read != TraceHeader::default()).then_some(read)
    }
}

/// `value` if it is `len` hex digits.
fn hex_id(value: &str, len: usize) -> Option<&str> {
    (value.len() == len && value.bytes().all(|b| b.is_ascii_hexdigit())).then_some(value)
}

/// An X-Ray `Root`, `1-<time>-<unique>` whose two hex parts make 32
/// digits, as an OpenTelemetry trace id (all zeros: none).
fn xray_trace_id(root: &str) -> Option<TraceId> {
    let mut pieces = root.split('-');
    let (Some("1"), Some(time), Some(rest), None) =
        (pieces.next(), pieces.next(), pieces.next(), pieces.next())
    else {
        return None;
    };
    let digits = format!("{time}{rest}");
    hex_id(&digits, 32)
        .and_then(|d| TraceId::from_hex(d).ok())
        .filter(|t| *t != TraceId::INVALID)
}

/// Reads an X-Ray trace header, `Root=1-5759e988-bd862e3fe1be46a994272793;
/// Parent=53995c3f42cd8ad8;Sampled=1`, into a remote span context: `None`
/// unless it names both a valid trace (`Root`) and a valid parent span
/// (`Parent`). Other parts (`Lineage`, ...) are skipped. Without
/// `Sampled=0` the context is sampled (what the default sampler decides
/// for a trace with no decision).
pub fn parse_trace_header(header: &str) -> Option<SpanContext> {
    let read = TraceHeader::read(header)?;
    let context = SpanContext::new(
        read.trace?,
        read.parent?,
        if read.sampled == Some(false) {
            TraceFlags::default()
        } else {
            TraceFlags::SAMPLED
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
        // Other parts, a trailing `;`, parts without `=` and spaces do not
        // spoil a header (Lambda adds `Lineage`).
        for header in [
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0;Lineage=1:9ee8b440:0",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0;",
            " Root = 1-5759e988-bd862e3fe1be46a994272793 ; junk ; Parent=53995c3f42cd8ad8;Sampled=0",
        ] {
            let sc = parse_trace_header(header).expect(header);
            assert_eq!(sc.span_id().to_string(), "53995c3f42cd8ad8", "{header}");
            assert!(!sc.is_sampled(), "{header}");
        }
    }

    /// Each part on its own, as AWS's plugin (2.0.0) reads the header.
    #[test]
    fn reads_each_part_of_a_trace_header_on_its_own() {
        const ROOT: &str = "Root=1-5759e988-bd862e3fe1be46a994272793";
        let trace = TraceId::from_hex("5759e988bd862e3fe1be46a994272793").ok();
        let parent = SpanId::from_hex("53995c3f42cd8ad8").ok();
        let cases: [(&str, Option<TraceHeader>); 9] = [
            ("", None),
            ("garbage", None),
            ("Lineage=1:9ee8b440:0", None),
            // A valid Root without a Parent is still the trace.
            (
                &format!("{ROOT};Parent=0000000000000000;Sampled=0"),
                Some(TraceHeader {
                    trace,
                    parent: None,
                    sampled: Some(false),
                }),
            ),
            (
                ROOT,
                Some(TraceHeader {
                    trace,
                    parent: None,
                    sampled: None,
                }),
            ),
            // An all-zero Root is dropped, the rest kept.
            (
                "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8;Sampled=1",
                Some(TraceHeader {
                    trace: None,
                    parent,
                    sampled: Some(true),
                }),
            ),
            (
                "Sampled=1",
                Some(TraceHeader {
                    trace: None,
                    parent: None,
                    sampled: Some(true),
                }),
            ),
            // Anything but 1 or 0 leaves the decision open.
            (
                &format!("{ROOT};Parent=53995c3f42cd8ad8;Sampled=?"),
                Some(TraceHeader {
                    trace,
                    parent,
                    sampled: None,
                }),
            ),
            // Version 2, short or non-hex ids: not read.
            (
                "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad;Sampled=x",
                None,
            ),
        ];
        for (header, expected) in cases {
            assert_eq!(TraceHeader::read(header), expected, "{header:?}");
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
