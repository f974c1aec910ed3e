//! The trace rules, each met and each broken once.

use super::*;
use serde_json::json;

const ARN: &str = "arn:x";

/// A span `name` with `id`, `parent`, times and `durable.*` attributes.
fn span(name: &str, id: &str, parent: Option<&str>, at: (i64, i64), attrs: Value) -> Span {
    let mut attributes = attrs.as_object().cloned().unwrap_or_default();
    attributes.insert("durable.execution.arn".into(), json!(ARN));
    Span {
        trace_id: "t".repeat(32),
        span_id: id.into(),
        parent_span_id: parent.map(str::to_owned),
        name: name.into(),
        start: at.0,
        end: at.1,
        links: Vec::new(),
        dict: json!({
            "trace_id": "t".repeat(32), "span_id": id, "parent_span_id": parent,
            "name": name, "kind": "INTERNAL", "start_time": at.0, "end_time": at.1,
            "status": "OK", "service_name": "svc", "attributes": attributes, "links": [],
        }),
    }
}

fn linked(mut s: Span, to: &Span) -> Span {
    s.links.push((to.trace_id.clone(), to.span_id.clone()));
    s.dict["links"] = json!([{ "trace_id": to.trace_id, "span_id": to.span_id }]);
    s
}

const W: &str = "aaaaaaaaaaaaaaaa";
const I: &str = "bbbbbbbbbbbbbbbb";
const S: &str = "cccccccccccccccc";
const LAMBDA: &str = "dddddddddddddddd";

/// A Workflow under Lambda's segment, an Invocation under it, a step
/// under the Invocation linking to Workflow.
fn trace() -> Vec<Span> {
    let workflow = span(
        "Workflow",
        W,
        Some(LAMBDA),
        (0, 10),
        json!({"durable.execution.status": "SUCCEEDED"}),
    );
    let invocation = span(
        "Invocation",
        I,
        Some(W),
        (1, 9),
        json!({"durable.invocation.first": true}),
    );
    let step = linked(
        span(
            "s",
            S,
            Some(I),
            (2, 3),
            json!({"durable.operation.status": "SUCCEEDED"}),
        ),
        &workflow,
    );
    vec![workflow, invocation, step]
}

fn assertions(span_assertions: Value) -> Value {
    json!({
        "require_unique_root_per_trace": true,
        "require_parented_spans": [{"name": "Workflow"}, {"name": "Invocation"}],
        "require_all_spans": true,
        "span_assertion_scope": {"attributes": {"durable.execution.arn": ARN}},
        "exact_attribute_prefixes": ["durable."],
        "span_assertions": span_assertions,
    })
}

fn all_met() -> Value {
    json!([
        {"select": {"name": "Workflow"}, "expect": {
            "parent": {"$allow_unresolved": true, "$allow_outside": true, "$reject_sdk_span": true},
            "status": "OK", "links": [],
            "attributes": {"durable.execution.arn": ARN, "durable.execution.status": "SUCCEEDED"}}},
        {"select": {"name": "Invocation"}, "expect": {
            "attributes": {"durable.execution.arn": ARN, "durable.invocation.first": true},
            "parent": {"name": "Workflow"}}},
        {"select": {"name": "s"}, "expect": {
            "status": {"$any_of": ["OK", "UNSET"]}, "kind": "${/^INT/}",
            "links": [{"name": "Workflow"}],
            "parent": {"name": "Invocation"},
            "inside": {"name": "Invocation"},
            "attributes": {"durable.execution.arn": "*", "durable.operation.status": "SUCCEEDED"}}},
    ])
}

#[test]
fn a_trace_meeting_every_rule_passes() {
    let errors = validate_trace(&trace(), &assertions(all_met()), ARN);
    assert!(errors.is_empty(), "{errors:#?}");
}

/// Each rule, broken once, is reported.
#[test]
fn each_rule_fails_when_broken() {
    let broken = |edit: &dyn Fn(&mut Vec<Span>, &mut Value), expected: &str| {
        let (mut spans, mut a) = (trace(), assertions(all_met()));
        edit(&mut spans, &mut a);
        let errors = validate_trace(&spans, &a, ARN);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{expected:?} not in {errors:#?}"
        );
    };
    // A root (no parent) where the Workflow must have one.
    broken(
        &|s, _| {
            s[0].parent_span_id = None;
            s[0].dict["parent_span_id"] = Value::Null;
        },
        "has no parent",
    );
    // The Workflow's parent is an SDK span.
    broken(
        &|s, _| {
            let sdk = span(
                "Invocation",
                LAMBDA,
                None,
                (0, 0),
                json!({"durable.invocation.first": true}),
            );
            s.push(sdk);
        },
        "is emitted by the durable SDK",
    );
    // An attribute more than the assertion names.
    broken(
        &|s, _| {
            s[2].dict["attributes"]["durable.extra"] = json!(1);
        },
        "expected exact \"durable.\" attribute keys",
    );
    // A wrong value, a wrong status, a regex that does not match.
    broken(
        &|s, _| s[2].dict["attributes"]["durable.operation.status"] = json!("FAILED"),
        "durable.operation.status: expected",
    );
    broken(
        &|s, _| s[2].dict["status"] = json!("ERROR"),
        "does not match any allowed value",
    );
    broken(
        &|s, _| s[2].dict["kind"] = json!("SERVER"),
        "does not match regex",
    );
    // A missing link, a parent of another name, the order in time.
    broken(
        &|s, _| {
            s[2].links.clear();
            s[2].dict["links"] = json!([]);
        },
        "expected 1 item(s), found 0",
    );
    broken(
        &|s, _| {
            s[2].parent_span_id = Some(W.into());
        },
        "expected \"Invocation\"",
    );
    broken(
        &|s, _| {
            s[2].start = 0;
        },
        "starts before its containing span",
    );
    // Before and after another span.
    broken(
        &|_, a| a["span_assertions"][2]["expect"]["before"] = json!({"name": "Workflow"}),
        "ends after span",
    );
    broken(
        &|_, a| a["span_assertions"][0]["expect"]["after"] = json!({"name": "s"}),
        "starts before span",
    );
    // A child outside its parent's time span.
    broken(
        &|s, _| {
            s[2].end = 20;
        },
        "ends after its parent",
    );
    // A span no assertion covers.
    broken(
        &|s, _| {
            s.push(span(
                "stray",
                "eeeeeeeeeeeeeeee",
                Some(I),
                (4, 5),
                json!({}),
            ))
        },
        "did not cover",
    );
    // Two roots in one trace.
    broken(
        &|s, _| {
            s.push(span("r1", "1111111111111111", None, (0, 0), json!({})));
            s.push(span("r2", "2222222222222222", None, (0, 0), json!({})));
        },
        "distinct root spans",
    );
    // A selector matching nothing; one matching twice.
    broken(
        &|_, a| a["span_assertions"][2]["select"]["name"] = json!("none"),
        "matched no spans",
    );
    broken(
        &|s, _| s.push(span("s", "ffffffffffffffff", Some(I), (4, 5), json!({}))),
        "it must select exactly one",
    );
    // The execution ARN nowhere; another execution's.
    broken(
        &|s, _| s[1].dict["attributes"]["durable.execution.arn"] = json!("arn:y"),
        "outside allowed_execution_arns",
    );
}

#[test]
fn counts_and_occurrences() {
    let mut spans = trace();
    spans.push(span(
        "s",
        "ffffffffffffffff",
        Some(I),
        (4, 5),
        json!({"durable.operation.status": "SUCCEEDED"}),
    ));
    spans[3] = linked(spans[3].clone(), &spans[2].clone());
    let a = json!({"span_assertions": [
        {"select": {"name": "s"}, "count": {"$any_of": [2, 3]}, "expect_by_occurrence": [
            {"links": [{"name": "Workflow"}]},
            {"links": [{"name": "s", "$occurrence": 1}]},
        ], "expect": {"kind": "INTERNAL"}},
    ]});
    assert!(
        validate_trace(&spans, &a, ARN).is_empty(),
        "{:#?}",
        validate_trace(&spans, &a, ARN)
    );
    let wrong = json!({"span_assertions": [
        {"select": {"name": "s"}, "count": 2, "expect_by_occurrence": [
            {"links": [{"name": "Workflow"}]},
            {"links": [{"name": "s", "$occurrence": 2}]},
        ], "expect": {}},
    ]});
    let errors = validate_trace(&spans, &wrong, ARN);
    assert!(
        errors.iter().any(|e| e.contains("$occurrence")),
        "{errors:#?}"
    );
}
