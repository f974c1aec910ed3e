//! The AWS checkpoint client against a scripted HTTP server on 127.0.0.1:
//! retries of transient errors, classification of the others (including
//! error bodies without an `X-Amzn-ErrorType` header, as AWS's emulator
//! sends them), and the conversion of API timestamps (epoch seconds).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use durable_yield::engine::{DurableService, ServiceError};
use durable_yield::id::operation_id;
use durable_yield::lambda::AwsDurableService;
use durable_yield::model::{OperationAction, OperationStatus, OperationType, OperationUpdate};

/// Serves one scripted `(status, body)` per request; records the request
/// lines and bodies.
fn server(script: Vec<(u16, &'static str)>) -> (String, Arc<Mutex<Vec<String>>>, JoinHandle<()>) {
    server_with_headers(script.into_iter().map(|(s, b)| (s, "", b)).collect())
}

/// Like [`server`], with extra response headers (`"Name: value\r\n"`) per
/// answer.
fn server_with_headers(
    script: Vec<(u16, &'static str, &'static str)>,
) -> (String, Arc<Mutex<Vec<String>>>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let handle = std::thread::spawn(move || {
        for (status, headers, body) in script {
            // A request that never comes (the client gave up) ends the
            // script instead of blocking the test forever.
            let Some(stream) = accept_within(&listener, std::time::Duration::from_secs(10)) else {
                return;
            };
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut request_body = vec![0; length];
            reader.read_exact(&mut request_body).unwrap();
            log.lock().unwrap().push(format!(
                "{} {}",
                request_line.trim(),
                String::from_utf8_lossy(&request_body)
            ));
            let mut stream = reader.into_inner();
            write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 {headers}Connection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
    });
    (endpoint, seen, handle)
}

fn accept_within(
    listener: &TcpListener,
    limit: std::time::Duration,
) -> Option<std::net::TcpStream> {
    listener.set_nonblocking(true).ok()?;
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).ok()?;
                return Some(stream);
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
        }
    }
    None
}

fn service(endpoint: &str) -> AwsDurableService {
    let config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-west-2"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_lambda::config::SharedCredentialsProvider::new(
            aws_sdk_lambda::config::Credentials::for_tests(),
        ))
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(std::time::Duration::from_millis(10)),
        )
        .build();
    AwsDurableService::from_conf(&config)
}

fn step_start() -> Vec<OperationUpdate> {
    let mut u = OperationUpdate::new(
        operation_id(None, 1),
        OperationType::Step,
        OperationAction::Start,
    );
    u.name = Some("charge".into());
    u.sub_type = Some("Step".into());
    vec![u]
}

const OK: &str = r#"{"CheckpointToken":"token-2","NewExecutionState":{"Operations":[
  {"Id":"1ced8f5be2db23a6513eba4d819c73806424748a7bc6fa0d792cc1c7d1775a97","Type":"STEP",
   "Status":"STARTED","Name":"charge","SubType":"Step","StartTimestamp":1795755619.735,
   "StepDetails":{"Attempt":0}}]}}"#;

#[tokio::test]
async fn a_5xx_is_retried_and_the_answer_converted() {
    let (endpoint, seen, server) = server(vec![(503, r#"{"message":"busy"}"#), (200, OK)]);
    let response = service(&endpoint)
        .checkpoint(
            "arn:aws:lambda:us-west-2:1:function:f:$LATEST/durable-execution/n/x",
            "token-1",
            step_start(),
        )
        .await
        .unwrap();
    server.join().unwrap();
    assert_eq!(response.checkpoint_token.as_deref(), Some("token-2"));
    let op = &response.operations[0];
    assert_eq!(op.id, operation_id(None, 1));
    assert_eq!(op.status, OperationStatus::Started);
    // API timestamps are epoch seconds; the model's are milliseconds.
    assert_eq!(op.start_timestamp, Some(1_795_755_619_735));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "one retry: {seen:?}");
    // The path label is fully encoded; the body carries the update.
    assert!(
        seen[1].starts_with("POST /2025-12-01/durable-executions/arn%3Aaws%3Alambda%3Aus-west-2%3A1%3Afunction%3Af%3A%24LATEST%2Fdurable-execution%2Fn%2Fx/checkpoint"),
        "{}",
        seen[1]
    );
    assert!(
        seen[1].contains(r#""CheckpointToken":"token-1""#),
        "{}",
        seen[1]
    );
    assert!(seen[1].contains(r#""Action":"START""#), "{}", seen[1]);
}

#[tokio::test]
async fn a_stale_token_without_an_error_type_header_is_recognized() {
    let (endpoint, seen, server) = server(vec![(
        400,
        r#"{"Type":"InvalidParameterValueException","message":"Invalid checkpoint token"}"#,
    )]);
    let error = service(&endpoint)
        .checkpoint("arn", "stale", step_start())
        .await
        .unwrap_err();
    server.join().unwrap();
    assert!(matches!(error, ServiceError::InvalidToken(_)), "{error:?}");
    assert_eq!(seen.lock().unwrap().len(), 1, "not retried");
}

#[tokio::test]
async fn other_client_errors_reject_without_retrying() {
    let (endpoint, seen, server) = server(vec![(
        400,
        r#"{"Type":"InvalidParameterValueException","message":"Invalid current STEP state to start."}"#,
    )]);
    let error = service(&endpoint)
        .checkpoint("arn", "t", step_start())
        .await
        .unwrap_err();
    server.join().unwrap();
    match error {
        ServiceError::Rejected(m) => assert!(m.contains("Invalid current STEP state"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn persisting_5xx_errors_end_as_transient() {
    let busy = r#"{"message":"busy"}"#;
    let (endpoint, seen, server) = server(vec![(500, busy), (500, busy), (500, busy)]);
    let error = service(&endpoint)
        .get_state("arn", "t", "m")
        .await
        .unwrap_err();
    server.join().unwrap();
    assert!(matches!(error, ServiceError::Transient(_)), "{error:?}");
    assert_eq!(seen.lock().unwrap().len(), 3, "3 attempts");
    assert!(seen.lock().unwrap()[0].contains("/state?"));
}

/// Throttling is retried whether or not the answer names its error type:
/// AWS's emulator sends a bare 429.
#[tokio::test]
async fn a_429_is_retried_with_or_without_an_error_type_header() {
    let bare = r#"{"Type":"TooManyRequestsException","message":"slow down"}"#;
    for headers in ["", "X-Amzn-ErrorType: TooManyRequestsException\r\n"] {
        let (endpoint, seen, server) =
            server_with_headers(vec![(429, headers, bare), (200, "", OK)]);
        let response = service(&endpoint)
            .checkpoint("arn", "token-1", step_start())
            .await
            .unwrap();
        server.join().unwrap();
        assert_eq!(
            response.checkpoint_token.as_deref(),
            Some("token-2"),
            "{headers:?}"
        );
        assert_eq!(seen.lock().unwrap().len(), 2, "retried once: {headers:?}");
    }
}

#[tokio::test]
async fn bare_5xx_answers_are_retried_then_transient() {
    let (endpoint, seen, handle) = server(vec![(502, ""), (504, "{}"), (200, OK)]);
    let response = service(&endpoint)
        .checkpoint("arn", "token-1", step_start())
        .await
        .unwrap();
    handle.join().unwrap();
    assert_eq!(response.checkpoint_token.as_deref(), Some("token-2"));
    assert_eq!(seen.lock().unwrap().len(), 3);

    let slow = r#"{"message":"slow down"}"#;
    let (endpoint, seen, server) = server(vec![(429, slow), (429, slow), (429, slow)]);
    let error = service(&endpoint)
        .get_state("arn", "t", "m")
        .await
        .unwrap_err();
    server.join().unwrap();
    assert!(matches!(error, ServiceError::Transient(_)), "{error:?}");
    assert_eq!(seen.lock().unwrap().len(), 3, "3 attempts");
}

/// A state page answered 400 by AWS's emulator: the message says what the
/// service said, in plain words, not a debug dump.
#[tokio::test]
async fn a_rejected_state_page_is_described_in_plain_words() {
    let (endpoint, _, server) = server(vec![(
        400,
        r#"{"Type":"InvalidParameterValueException","message":"Marker is not valid"}"#,
    )]);
    let error = service(&endpoint)
        .get_state("arn", "t", "bogus")
        .await
        .unwrap_err();
    server.join().unwrap();
    match error {
        ServiceError::Rejected(m) => assert_eq!(
            m,
            "HTTP 400 InvalidParameterValueException: Marker is not valid"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn unknown_types_and_statuses_in_a_response_are_kept() {
    const FUTURE: &str = r#"{"CheckpointToken":"token-2","NewExecutionState":{"Operations":[
      {"Id":"abc","Type":"FUTURE_OP","Status":"PAUSED","StartTimestamp":1795755619.735}]}}"#;
    let (endpoint, _, server) = server(vec![(200, FUTURE)]);
    let response = service(&endpoint)
        .checkpoint("arn", "token-1", step_start())
        .await
        .unwrap();
    server.join().unwrap();
    let op = &response.operations[0];
    assert_eq!(op.op_type.to_string(), "FUTURE_OP");
    assert_eq!(op.status.to_string(), "PAUSED");
    assert!(!op.op_type.is_known() && !op.status.is_known());
}

/// `get_state_into` converts a page's operations straight onto the
/// operations paged in before it and returns the next marker; a page
/// with an operation that does not convert (an empty id) leaves them as
/// they were and says the answer is invalid.
#[tokio::test]
async fn state_pages_are_converted_onto_the_operations_before_them() {
    const PAGE: &str = r#"{"NextMarker":"m-3","Operations":[
      {"Id":"b","Type":"STEP","Status":"SUCCEEDED","StartTimestamp":1795755619.735,
       "StepDetails":{"Attempt":1,"Result":"2"}},
      {"Id":"c","Type":"WAIT","Status":"STARTED","StartTimestamp":1795755620,
       "WaitDetails":{"ScheduledEndTimestamp":1795755680}}]}"#;
    const BAD: &str = r#"{"Operations":[
      {"Id":"d","Type":"STEP","Status":"SUCCEEDED","StartTimestamp":1795755619},
      {"Id":"","Type":"STEP","Status":"SUCCEEDED","StartTimestamp":1795755619}]}"#;
    let (endpoint, seen, server) = server(vec![(200, PAGE), (200, BAD)]);
    let service = service(&endpoint);
    let first = durable_yield::model::Operation::new(
        durable_yield::model::OperationId::new("a").unwrap(),
        OperationType::Execution,
        OperationStatus::Started,
    );
    let mut operations = vec![first];
    let next = service
        .get_state_into("arn", "t", "m-2", &mut operations)
        .await
        .unwrap();
    assert_eq!(next.as_deref(), Some("m-3"));
    let ids: Vec<&str> = operations.iter().map(|op| op.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(operations[1].status, OperationStatus::Succeeded);
    assert_eq!(operations[1].start_timestamp, Some(1_795_755_619_735));
    assert_eq!(
        operations[1]
            .step_details
            .as_ref()
            .and_then(|d| d.result.as_ref())
            .map(|p| p.as_str()),
        Some("2")
    );
    assert_eq!(
        operations[2]
            .wait_details
            .as_ref()
            .and_then(|d| d.scheduled_end_timestamp),
        Some(1_795_755_680_000)
    );
    let error = service
        .get_state_into("arn", "t", "m-3", &mut operations)
        .await
        .unwrap_err();
    server.join().unwrap();
    assert!(
        matches!(&error, ServiceError::InvalidResponse(m) if m.contains("invalid operation")),
        "{error:?}"
    );
    assert_eq!(operations.len(), 3, "a page that fails appends nothing");
    let seen = seen.lock().unwrap();
    assert!(seen[0].contains("Marker=m-2"), "{}", seen[0]);
    assert!(seen[1].contains("Marker=m-3"), "{}", seen[1]);
}
