//! A small OTLP/HTTP receiver for the interop tests: it accepts
//! `POST /v1/traces` with a protobuf `ExportTraceServiceRequest` (what
//! `opentelemetry-otlp`'s `http-proto` exporter sends), keeps the spans,
//! and answers 200 with an empty `ExportTraceServiceResponse`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;

/// A span as received.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// Hex.
    pub trace_id: String,
    /// Hex.
    pub span_id: String,
    /// Hex; empty for a root span.
    pub parent_span_id: String,
    /// The span's name.
    pub name: String,
    /// `SPAN_KIND_INTERNAL` is 1.
    pub kind: i32,
    /// Attributes as text (`true`, `1`, `SUCCEEDED`), in order; a key set
    /// twice appears twice.
    pub attributes: Vec<(String, String)>,
    /// The span ids it links to (hex).
    pub links: Vec<String>,
    /// Unix nanoseconds.
    pub start: u64,
    /// Unix nanoseconds.
    pub end: u64,
    /// 0 unset, 1 ok, 2 error.
    pub status: i32,
    /// The resource's `service.name`.
    pub service_name: String,
}

impl ReceivedSpan {
    /// The value of attribute `key` (the first, if set twice).
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The receiver: listening until dropped with the test process.
pub struct OtlpReceiver {
    port: u16,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl OtlpReceiver {
    /// Listens on a free local port.
    pub fn start() -> std::io::Result<OtlpReceiver> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (spans.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (s, r) = (s.clone(), r.clone());
                std::thread::spawn(move || serve(stream, &s, &r));
            }
        });
        Ok(OtlpReceiver {
            port,
            spans,
            requests,
        })
    }

    /// `http://127.0.0.1:<port>`: the value of `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The spans received so far whose `durable.execution.arn` is `arn`.
    pub fn spans_of(&self, arn: &str) -> Vec<ReceivedSpan> {
        self.spans
            .lock()
            .map(|spans| {
                spans
                    .iter()
                    .filter(|s| s.attr("durable.execution.arn") == Some(arn))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until `done` holds for the spans of `arn`, or `timeout`.
    pub fn wait_for(
        &self,
        arn: &str,
        timeout: Duration,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let deadline = Instant::now() + timeout;
        loop {
            let spans = self.spans_of(arn);
            if done(&spans) || Instant::now() > deadline {
                return spans;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What the receiver did not understand (request lines, errors).
    pub fn problems(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn serve(stream: TcpStream, spans: &Mutex<Vec<ReceivedSpan>>, problems: &Mutex<Vec<String>>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if request_line.starts_with("POST /v1/traces") {
            match ExportTraceServiceRequest::decode(body.as_slice()) {
                Ok(request) => {
                    if let Ok(mut all) = spans.lock() {
                        all.extend(flatten(request));
                    }
                }
                Err(e) => push(problems, format!("undecodable export: {e}")),
            }
        } else {
            push(
                problems,
                format!("unexpected request: {}", request_line.trim()),
            );
        }
        let response =
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn push(problems: &Mutex<Vec<String>>, problem: String) {
    if let Ok(mut p) = problems.lock() {
        p.push(problem);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn flatten(request: ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for resource in request.resource_spans {
        let resource_attributes: BTreeMap<String, String> = resource
            .resource
            .map(|r| {
                r.attributes
                    .into_iter()
                    .map(|kv| (kv.key, text(kv.value.as_ref())))
                    .collect()
            })
            .unwrap_or_default();
        let service_name = resource_attributes
            .get("service.name")
            .cloned()
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                out.push(ReceivedSpan {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    kind: span.kind,
                    attributes: span
                        .attributes
                        .into_iter()
                        .map(|kv| (kv.key, text(kv.value.as_ref())))
                        .collect(),
                    links: span.links.iter().map(|l| hex(&l.span_id)).collect(),
                    start: span.start_time_unix_nano,
                    end: span.end_time_unix_nano,
                    status: span.status.map_or(0, |s| s.code),
                    service_name: service_name.clone(),
                });
            }
        }
    }
    out
}
