//! Cold start of a durable Lambda function binary, measured locally: the
//! time from process start to its first `CheckpointDurableExecution`
//! request, and to its response.
//!
//! It runs a function binary (by default `target/release/step-wait-step`,
//! built with `cargo build --release -p durable-yield-functions --bin
//! step-wait-step`) as Lambda would, several times, each a fresh process,
//! against an in-process stand-in for both Lambda's Runtime API (which
//! hands it one invocation envelope) and the durable execution service
//! (`AWS_ENDPOINT_URL_LAMBDA`: it accepts checkpoints). What is measured is
//! the binary's own start: the Lambda runtime, `aws-config`, the AWS client,
//! the envelope, the first step and its checkpoint request. No network
//! beyond the loopback, no real AWS.
//!
//! ```text
//! cargo build --release -p durable-yield-functions --bin step-wait-step
//! cargo run --release -p durable-yield-examples --example cold_start [-- BINARY [RUNS]]
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The invocation envelope the stand-in hands out: a new execution of
/// `step-wait-step` for "ada".
const ENVELOPE: &str = r#"{"DurableExecutionArn":"arn:aws:lambda:us-east-1:123456789012:function:step-wait-step:$LATEST/durable-execution/cold/0","CheckpointToken":"token-0","InitialExecutionState":{"Operations":[{"Id":"exec-0","Type":"EXECUTION","Status":"STARTED","StartTimestamp":1795755600.0,"ExecutionDetails":{"InputPayload":"{\"name\":\"ada\"}"}}]}}"#;

/// What the stand-in saw, in order.
enum Seen {
    Checkpoint,
    Response(String),
}

/// One HTTP request: method, path, body.
fn read_request(stream: &mut TcpStream) -> Option<(String, String, Vec<u8>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((method, path, body))
}

fn respond(stream: &mut TcpStream, headers: &[(&str, &str)], body: &str) {
    let mut text = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    let _ = stream.write_all(text.as_bytes());
}

/// Serves connections until the process ends: the first `next` gets the
/// envelope, later ones are held open; checkpoints get a new token.
fn serve(listener: TcpListener, seen: mpsc::Sender<Seen>) {
    let mut handed_out = false;
    let mut tokens = 0u32;
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        // Each connection may carry several requests (keep-alive).
        let seen = seen.clone();
        let first = !handed_out;
        handed_out = true;
        tokens += 100;
        let base = tokens;
        std::thread::spawn(move || {
            let mut token = base;
            let mut gave_envelope = !first;
            while let Some((method, path, body)) = read_request(&mut stream) {
                if path.ends_with("/runtime/invocation/next") {
                    if gave_envelope {
                        // The next invocation never comes.
                        std::thread::sleep(Duration::from_secs(3600));
                        return;
                    }
                    gave_envelope = true;
                    let deadline = (std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_millis()
                        + 60_000)
                        .to_string();
                    respond(
                        &mut stream,
                        &[
                            ("Lambda-Runtime-Aws-Request-Id", "cold-start-1"),
                            ("Lambda-Runtime-Deadline-Ms", &deadline),
                            (
                                "Lambda-Runtime-Invoked-Function-Arn",
                                "arn:aws:lambda:us-east-1:123456789012:function:step-wait-step",
                            ),
                        ],
                        ENVELOPE,
                    );
                } else if method == "POST" && path.contains("/checkpoint") {
                    let _ = seen.send(Seen::Checkpoint);
                    token += 1;
                    respond(
                        &mut stream,
                        &[],
                        &format!(
                            r#"{{"CheckpointToken":"token-{token}","NewExecutionState":{{"Operations":[]}}}}"#
                        ),
                    );
                } else if path.contains("/response") || path.contains("/error") {
                    let _ = seen.send(Seen::Response(String::from_utf8_lossy(&body).into_owned()));
                    respond(&mut stream, &[], "{}");
                } else {
                    respond(&mut stream, &[], "{}");
                }
            }
        });
    }
}

/// One cold start: (to the first checkpoint, to the response).
fn once(binary: &str) -> Result<(Duration, Duration), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || serve(listener, tx));
    let start = Instant::now();
    let mut child = Command::new(binary)
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_ENDPOINT_URL_LAMBDA", format!("http://{address}"))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "cold")
        .env("AWS_SECRET_ACCESS_KEY", "start")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_LAMBDA_FUNCTION_NAME", "step-wait-step")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "cold-start")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "cold-start")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{binary}: {e} (build it first: cargo build --release -p durable-yield-functions --bin step-wait-step)"))?;
    let mut first = None;
    let outcome = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Seen::Checkpoint) => {
                first.get_or_insert(start.elapsed());
            }
            Ok(Seen::Response(body)) => break Ok(body),
            Err(e) => break Err(format!("no response from the function: {e}")),
        }
    };
    let done = start.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    let body = outcome?;
    if !body.contains("PENDING") {
        return Err(format!(
            "expected a PENDING response (the wait), got {body}"
        ));
    }
    let first = first.ok_or("the function sent no checkpoint")?;
    Ok((first, done))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let binary = args
        .next()
        .unwrap_or_else(|| "target/release/step-wait-step".to_owned());
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(20);
    let size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
    let mut firsts = Vec::new();
    let mut dones = Vec::new();
    for _ in 0..runs {
        match once(&binary) {
            Ok((first, done)) => {
                firsts.push(first);
                dones.push(done);
            }
            Err(e) => {
                eprintln!("cold start failed: {e}");
                std::process::exit(1);
            }
        }
    }
    firsts.sort();
    dones.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{binary} ({:.1} MiB), {runs} fresh processes:\n  process start to the first checkpoint request: median {:.1} ms, min {:.1} ms, max {:.1} ms\n  process start to the invocation's response:    median {:.1} ms, min {:.1} ms, max {:.1} ms",
        size as f64 / 1_048_576.0,
        ms(firsts[runs / 2]),
        ms(firsts[0]),
        ms(firsts[runs - 1]),
        ms(dones[runs / 2]),
        ms(dones[0]),
        ms(dones[runs - 1]),
    );
}
