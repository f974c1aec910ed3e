//! `durable-yield timeline` on a known history (in the shape AWS's
//! emulator writes it: no invocation details, RETRY as StepFailed with
//! RetryDetails): the table it prints, the page it writes, its errors.
#![cfg(feature = "lambda")]

use std::process::Command;

const HISTORY: &str = r#"{"Events": [
 {"EventType":"ExecutionStarted","EventId":1,"EventTimestamp":1795755600.0,"Id":"exec","Name":"order-7",
  "ExecutionStartedDetails":{"Input":{"Payload":"{}","Truncated":false}}},
 {"EventType":"StepStarted","EventId":2,"EventTimestamp":1795755600.1,"Id":"s1","Name":"charge","SubType":"Step","StepStartedDetails":{}},
 {"EventType":"StepFailed","EventId":3,"EventTimestamp":1795755600.3,"Id":"s1","Name":"charge","SubType":"Step",
  "StepFailedDetails":{"Error":{"Payload":{"ErrorType":"Declined","ErrorMessage":"busy"},"Truncated":false},
   "RetryDetails":{"CurrentAttempt":1,"NextAttemptDelaySeconds":5}}},
 {"EventType":"InvocationCompleted","EventId":4,"EventTimestamp":1795755600.4},
 {"EventType":"StepStarted","EventId":5,"EventTimestamp":1795755605.5,"Id":"s1","Name":"charge","SubType":"Step","StepStartedDetails":{}},
 {"EventType":"StepSucceeded","EventId":6,"EventTimestamp":1795755605.7,"Id":"s1","Name":"charge","SubType":"Step",
  "StepSucceededDetails":{"Result":{"Payload":"\"ch_1\"","Truncated":false}}},
 {"EventType":"WaitStarted","EventId":7,"EventTimestamp":1795755605.8,"Id":"w1","Name":"cool-off","SubType":"Wait",
  "WaitStartedDetails":{"Duration":3600,"ScheduledEndTimestamp":1795759205.8}},
 {"EventType":"InvocationCompleted","EventId":8,"EventTimestamp":1795755605.9},
 {"EventType":"WaitSucceeded","EventId":9,"EventTimestamp":1795759205.8,"Id":"w1","Name":"cool-off","SubType":"Wait",
  "WaitSucceededDetails":{"Duration":3600}},
 {"EventType":"ContextStarted","EventId":10,"EventTimestamp":1795759206.0,"Id":"c1","Name":"ship","SubType":"RunInChildContext","ContextStartedDetails":{}},
 {"EventType":"CallbackStarted","EventId":11,"EventTimestamp":1795759206.1,"Id":"cb","Name":"carrier","SubType":"Callback","ParentId":"c1",
  "CallbackStartedDetails":{"CallbackId":"abc"}},
 {"EventType":"InvocationCompleted","EventId":12,"EventTimestamp":1795759206.2},
 {"EventType":"CallbackTimedOut","EventId":13,"EventTimestamp":1795759266.1,"Id":"cb","Name":"carrier","SubType":"Callback","ParentId":"c1",
  "CallbackTimedOutDetails":{"Error":{"Payload":{"ErrorType":"Callback.Timeout","ErrorMessage":"Callback timed out"},"Truncated":false}}},
 {"EventType":"ContextFailed","EventId":14,"EventTimestamp":1795759266.5,"Id":"c1","Name":"ship","SubType":"RunInChildContext",
  "ContextFailedDetails":{"Error":{"Payload":{"ErrorType":"Callback.Timeout","ErrorMessage":"Callback timed out"},"Truncated":false}}},
 {"EventType":"ExecutionFailed","EventId":15,"EventTimestamp":1795759266.6,"Id":"exec","Name":"order-7",
  "ExecutionFailedDetails":{"Error":{"Payload":{"ErrorType":"Callback.Timeout","ErrorMessage":"Callback timed out"},"Truncated":false}}},
 {"EventType":"InvocationCompleted","EventId":16,"EventTimestamp":1795759266.7}
]}"#;

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("timeline-cli");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn durable_yield(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_durable-yield"))
        .args(args)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap()
}

#[test]
fn prints_the_table_and_writes_the_page() {
    let file = scratch("history.json");
    let html = scratch("timeline.html");
    std::fs::write(&file, HISTORY).unwrap();
    let out = durable_yield(&[
        "timeline",
        "--file",
        file.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let expected = "\
execution (ARN unknown)
status    FAILED: Callback.Timeout: Callback timed out
duration  1 h 1 min over 4 invocation(s)
  invocation 1   +00:00:00.000 .. +00:00:00.400
  invocation 2   +00:00:05.500 .. +00:00:05.900
  invocation 3   +01:00:05.800 .. +01:00:06.200
  invocation 4   +01:01:06.100 .. +01:01:06.700

operation                                type                             status     start             duration  detail
charge                                   STEP/Step                        SUCCEEDED  +00:00:00.100          5 s  2 attempt(s); #1 failed, retry in 5 s; = \"ch_1\"
cool-off                                 WAIT/Wait                        SUCCEEDED  +00:00:05.800          1 h  until +01:00:05
ship                                     CONTEXT/RunInChildContext        FAILED     +01:00:06.000        1 min  Callback.Timeout: Callback timed out
  carrier                                CALLBACK/Callback                TIMED_OUT  +01:00:06.100        1 min  Callback.Timeout: Callback timed out
";
    assert_eq!(text, expected, "\n{text}");
    let page = std::fs::read_to_string(&html).unwrap();
    // Self-contained: no scripts, nothing fetched.
    assert!(page.starts_with("<!DOCTYPE html>"));
    for banned in ["<script", "http://", "https://", "src=", "@import"] {
        let outside_svg_namespace = page.replace("http://www.w3.org/2000/svg", "");
        assert!(!outside_svg_namespace.contains(banned), "{banned}");
    }
    // A bar per operation, nested labels, the retry and the failures.
    assert_eq!(page.matches(r#"<g class="bar "#).count(), 4);
    assert!(page.contains(r#"<g class="bar step succeeded">"#));
    assert!(page.contains(r#"<g class="bar callback timed_out">"#));
    assert!(page.contains(r#"<g class="bar context failed">"#));
    assert_eq!(page.matches(r#"class="delay""#).count(), 1);
    assert_eq!(page.matches(r#"class="cross""#).count(), 1);
    assert_eq!(page.matches(r#"<g class="inv">"#).count(), 4);
    assert!(page.contains("attempt 1 failed, retry in 5 s"));
    // The callback is drawn inside its context: indented one level.
    assert!(page.contains(r#"<text class="label" x="22.0""#));
}

#[test]
fn bad_input_says_what_to_do() {
    let out = durable_yield(&["timeline"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("give --file or --arn") && err.contains("usage:"),
        "{err}"
    );

    let file = scratch("garbage.json");
    std::fs::write(&file, "{\"Events\": 7}").unwrap();
    let out = durable_yield(&["timeline", "--file", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not an execution history"), "{err}");

    let out = durable_yield(&["timeline", "--file", "/no/such/file.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file.json"));
}
