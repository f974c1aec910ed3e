//! The `TelemetryAssertions` of AWS's OpenTelemetry conformance
//! requirements (PyPI `aws-durable-execution-conformance-tests-otel`
//! 0.2.0): the package's trace validation rules, written anew from its
//! `validators.py` for spans exported in process (no backend, so none of
//! the package's backend "feature disparities": exact statuses, links
//! present, timestamps at the microsecond its model keeps).
//!
//! A trace passes when it holds the spans the assertions select, each as
//! the assertion expects (properties matched as `_matches` does: `*`,
//! `${/regex/}`, `$any_of`, mappings by the keys named, sequences item by
//! item; parents, links and temporal relations resolved among the spans;
//! exact `durable.` attribute sets), and the trace-wide rules hold (one
//! root per trace, one trace per execution, parented spans, execution
//! correlation, minimum counts, every span in scope covered).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

mod relations;

use relations::Spans;
#[cfg(test)]
mod tests;

/// The attributes that correlate a span with an execution.
const EXECUTION_KEYS: [&str; 3] = [
    "aws.lambda.durable_execution.arn",
    "durable.execution.arn",
    "durable_execution_arn",
];

/// The keys of an expectation that relate the span to another in time.
const TEMPORAL: [&str; 3] = ["before", "after", "inside"];

/// A span as the validator sees it (the package's `Span` and its
/// `span_to_dict` form).
#[derive(Debug, Clone)]
pub struct Span {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    /// Microseconds since the epoch (the package's `datetime`).
    pub start: i64,
    pub end: i64,
    /// `(trace_id, span_id)` of each link.
    pub links: Vec<(String, String)>,
    /// The serialized span selectors and expectations are matched against:
    /// `trace_id`, `span_id`, `parent_span_id`, `name`, `kind`,
    /// `start_time`, `end_time`, `status`, `service_name`, `attributes`,
    /// `links`.
    pub dict: Value,
}

impl Span {
    fn attributes(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.dict["attributes"]
            .as_object()
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
    }
    fn describe(&self) -> String {
        format!("{:?} ({})", self.name, self.span_id)
    }
}

/// The regular expression of a `${/pattern/}` value.
fn regex_of(value: &Value) -> Option<regex::Regex> {
    let pattern = value.as_str()?.strip_prefix("${/")?.strip_suffix("/}")?;
    if pattern.is_empty() {
        return None;
    }
    regex::Regex::new(pattern).ok()
}

/// `str(value)` in Python, for regular expressions.
fn py_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// `expected == actual` in Python on decoded values (numbers by value, a
/// boolean equal to 1 or 0).
fn py_eq(a: &Value, b: &Value) -> bool {
    let number = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    };
    match (a, b) {
        (Value::Number(_), _) | (_, Value::Number(_)) => {
            matches!((number(a), number(b)), (Some(x), Some(y)) if x == y)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| py_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w)))
        }
        _ => a == b,
    }
}

/// The alternatives of a `{$any_of: [...]}` value.
fn any_of(value: &Value) -> Option<&Value> {
    let map = value.as_object()?;
    (map.len() == 1).then(|| map.get("$any_of")).flatten()
}

/// The package's `_matches`.
fn matches(expected: &Value, actual: &Value) -> bool {
    if expected == "*" {
        return true;
    }
    if let Some(re) = regex_of(expected) {
        return re.is_match(&py_str(actual));
    }
    if let Some(alternatives) = any_of(expected) {
        return alternatives
            .as_array()
            .is_some_and(|a| a.iter().any(|alt| matches(alt, actual)));
    }
    match (expected, actual) {
        (Value::Object(e), a) => a.as_object().is_some_and(|a| {
            e.iter()
                .all(|(k, v)| a.get(k).is_some_and(|actual| matches(v, actual)))
        }),
        (Value::Array(e), a) => a
            .as_array()
            .is_some_and(|a| e.len() == a.len() && e.iter().zip(a).all(|(e, a)| matches(e, a))),
        (e, a) => py_eq(e, a),
    }
}

/// The package's `_matches_span`: every key present and matching.
fn matches_span(selector: &Map<String, Value>, span: &Value) -> bool {
    selector
        .iter()
        .all(|(k, v)| span.get(k).is_some_and(|actual| matches(v, actual)))
}

/// The package's `_expectation_errors`.
fn expectation_errors(expected: &Value, actual: &Value, path: &str) -> Vec<String> {
    if expected == "*" {
        return Vec::new();
    }
    if let Some(re) = regex_of(expected) {
        return if re.is_match(&py_str(actual)) {
            Vec::new()
        } else {
            vec![format!(
                "{path}: value {actual} does not match regex pattern {:?}",
                re.as_str()
            )]
        };
    }
    if let Some(alternatives) = any_of(expected) {
        return match alternatives.as_array() {
            Some(a) if !a.is_empty() => {
                if a.iter().any(|alt| matches(alt, actual)) {
                    Vec::new()
                } else {
                    vec![format!(
                        "{path}: value {actual} does not match any allowed value"
                    )]
                }
            }
            _ => vec![format!("{path}.$any_of: expected a non-empty sequence")],
        };
    }
    match expected {
        Value::Object(e) => {
            if !actual.is_object() {
                return vec![format!("{path}: expected a mapping")];
            }
            span_expectation_errors(e, actual, path)
        }
        Value::Array(e) => {
            let Some(a) = actual.as_array() else {
                return vec![format!("{path}: expected a sequence")];
            };
            if e.len() != a.len() {
                return vec![format!(
                    "{path}: expected {} item(s), found {}",
                    e.len(),
                    a.len()
                )];
            }
            e.iter()
                .zip(a)
                .enumerate()
                .flat_map(|(i, (e, a))| expectation_errors(e, a, &format!("{path}[{i}]")))
                .collect()
        }
        e if py_eq(e, actual) => Vec::new(),
        e => vec![format!("{path}: expected {e}, found {actual}")],
    }
}

/// The package's `_span_expectation_errors` (with no backend disparity,
/// also `_expectation_errors` on a mapping): each key present and as
/// expected.
fn span_expectation_errors(expected: &Map<String, Value>, span: &Value, path: &str) -> Vec<String> {
    let mut errors = Vec::new();
    for (key, value) in expected {
        let child = format!("{path}.{key}");
        match span.get(key) {
            None => errors.push(format!("{child}: property is missing")),
            Some(actual) => errors.extend(expectation_errors(value, actual, &child)),
        }
    }
    errors
}

fn valid_span_id(id: &str) -> bool {
    id.len() == 16 && id != "0000000000000000" && id.chars().all(|c| c.is_ascii_hexdigit())
}

/// The package's `_is_durable_sdk_span`.
fn is_sdk_span(span: &Span) -> bool {
    let attributes = span.attributes();
    let execution = EXECUTION_KEYS.iter().any(|k| attributes.contains_key(*k));
    let name = span.name.to_lowercase();
    if name == "workflow" && (attributes.contains_key("durable.execution.status") || execution) {
        return true;
    }
    if name == "invocation"
        && (attributes
            .keys()
            .any(|k| k.starts_with("durable.invocation."))
            || execution)
    {
        return true;
    }
    attributes
        .keys()
        .any(|k| k.starts_with("durable.operation.") || k.starts_with("durable.attempt."))
}

/// A count that is a positive integer or `{$any_of: [positive integers]}`.
fn counts_of(value: Option<&Value>) -> Option<Vec<usize>> {
    let positive = |v: &Value| v.as_u64().filter(|&n| n >= 1).map(|n| n as usize);
    match value {
        None => Some(vec![1]),
        Some(v) if positive(v).is_some() => positive(v).map(|n| vec![n]),
        Some(v) => {
            let alternatives = any_of(v)?.as_array()?;
            let counts: Option<Vec<usize>> = alternatives.iter().map(positive).collect();
            let mut counts = counts?;
            counts.dedup();
            (!counts.is_empty()).then_some(counts)
        }
    }
}

/// The package's `_span_assertion_errors`.
fn span_assertion_errors(
    spans: &[Span],
    assertions: &Value,
    require_all_spans: bool,
    scopes: &[Map<String, Value>],
    exact_prefixes: &[String],
) -> Vec<String> {
    let assertions: Vec<&Value> = match assertions {
        Value::Null => return Vec::new(),
        Value::Object(_) => vec![assertions],
        Value::Array(a) => a.iter().collect(),
        _ => return vec!["span_assertions must be a mapping or sequence of mappings".into()],
    };
    let index = Spans::new(spans);
    let mut errors = Vec::new();
    let mut covered = BTreeSet::new();
    let mut used = BTreeSet::new();
    for (i, assertion) in assertions.iter().enumerate() {
        let path = format!("span_assertions[{i}]");
        let Some(assertion) = assertion.as_object() else {
            errors.push(format!("{path} must be a mapping"));
            continue;
        };
        let unknown: Vec<&String> = assertion
            .keys()
            .filter(|k| {
                !["select", "expect", "expect_by_occurrence", "count"].contains(&k.as_str())
            })
            .collect();
        if !unknown.is_empty() {
            errors.push(format!("{path} has unknown field(s): {unknown:?}"));
            continue;
        }
        let empty = Map::new();
        let Some(selector) = assertion
            .get("select")
            .map_or(Some(&empty), Value::as_object)
        else {
            errors.push(format!("{path}.select must be a mapping"));
            continue;
        };
        let Some(expected) = assertion.get("expect").and_then(Value::as_object) else {
            errors.push(format!("{path}.expect must be a mapping"));
            continue;
        };
        let by_occurrence: Option<Vec<&Map<String, Value>>> =
            match assertion.get("expect_by_occurrence") {
                None => None,
                Some(v) => match v
                    .as_array()
                    .and_then(|a| a.iter().map(Value::as_object).collect::<Option<Vec<_>>>())
                {
                    Some(items) => Some(items),
                    None => {
                        errors.push(format!(
                            "{path}.expect_by_occurrence must be a sequence of mappings"
                        ));
                        continue;
                    }
                },
            };
        let Some(counts) = counts_of(assertion.get("count")) else {
            errors.push(format!(
                "{path}.count must be a positive integer or $any_of positive integers"
            ));
            continue;
        };
        let mut matched: Vec<usize> = (0..spans.len())
            .filter(|i| !used.contains(i) && matches_span(selector, &spans[*i].dict))
            .collect();
        if matched.is_empty() && counts == [1] {
            errors.push(format!("{path}.select matched no spans"));
            continue;
        }
        if matched.len() > 1 && counts == [1] {
            errors.push(format!(
                "{path}.select matched {} spans; it must select exactly one",
                matched.len()
            ));
            continue;
        }
        if !counts.contains(&matched.len()) {
            errors.push(format!(
                "{path}.select matched {} spans; expected {counts:?}",
                matched.len()
            ));
            continue;
        }
        if let Some(items) = &by_occurrence {
            if items.len() != matched.len() {
                errors.push(format!(
                    "{path}.expect_by_occurrence has {} item(s); expected {}",
                    items.len(),
                    matched.len()
                ));
                continue;
            }
            matched.sort_by(|&a, &b| {
                let (a, b) = (&spans[a], &spans[b]);
                (a.start, a.end, &a.span_id).cmp(&(b.start, b.end, &b.span_id))
            });
        }
        covered.extend(matched.iter().copied());
        used.extend(matched.iter().copied());
        for (m, &span) in matched.iter().enumerate() {
            let mut effective = expected.clone();
            let mut expectation_path = format!("{path}.expect");
            if let Some(items) = &by_occurrence {
                effective.extend(items[m].iter().map(|(k, v)| (k.clone(), v.clone())));
                expectation_path = format!("{path}.expect_by_occurrence[{m}]");
            } else if matched.len() > 1 {
                expectation_path = format!("{expectation_path}[{m}]");
            }
            let properties: Map<String, Value> = effective
                .iter()
                .filter(|(k, _)| *k != "links" && *k != "parent" && !TEMPORAL.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            errors.extend(span_expectation_errors(
                &properties,
                &spans[span].dict,
                &expectation_path,
            ));
            if let Some(parent) = effective.get("parent") {
                errors.extend(index.parent_errors(
                    parent,
                    span,
                    &format!("{expectation_path}.parent"),
                ));
            }
            if let Some(links) = effective.get("links") {
                errors.extend(index.link_errors(links, span, &format!("{expectation_path}.links")));
            }
            for relation in TEMPORAL {
                if let Some(related) = effective.get(relation) {
                    errors.extend(index.temporal_errors(
                        relation,
                        related,
                        span,
                        &format!("{expectation_path}.{relation}"),
                    ));
                }
            }
            if let Some(expected_attributes) =
                effective.get("attributes").and_then(Value::as_object)
            {
                let actual = spans[span].attributes();
                for prefix in exact_prefixes {
                    let keys = |m: &Map<String, Value>| -> Vec<String> {
                        m.keys()
                            .filter(|k| k.starts_with(prefix.as_str()))
                            .cloned()
                            .collect()
                    };
                    let (want, have) = (keys(expected_attributes), keys(actual));
                    if want != have {
                        errors.push(format!(
                            "{expectation_path}.attributes: expected exact {prefix:?} attribute \
                             keys {want:?}, found {have:?}"
                        ));
                    }
                }
            }
        }
    }
    if require_all_spans {
        let everything = [Map::new()];
        let scopes = if scopes.is_empty() {
            &everything[..]
        } else {
            scopes
        };
        let uncovered: Vec<String> = spans
            .iter()
            .enumerate()
            .filter(|(i, s)| {
                !covered.contains(i) && scopes.iter().any(|scope| matches_span(scope, &s.dict))
            })
            .map(|(_, s)| s.describe())
            .collect();
        if !uncovered.is_empty() {
            errors.push(format!(
                "Span assertions did not cover: {}",
                uncovered.join(", ")
            ));
        }
    }
    errors
}

/// One or several mappings.
fn mappings(value: &Value) -> Option<Vec<Map<String, Value>>> {
    match value {
        Value::Object(m) => Some(vec![m.clone()]),
        Value::Array(a) => a.iter().map(|v| v.as_object().cloned()).collect(),
        _ => None,
    }
}

/// One or several strings.
fn strings(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => a.iter().map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}

/// The package's `validate_trace`: what is wrong with `spans` (the spans
/// of the execution `execution_arn` and of the executions it correlates
/// with) against `assertions` (placeholders substituted).
pub fn validate_trace(spans: &[Span], assertions: &Value, execution_arn: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let get = |key: &str| assertions.get(key);
    let flag = |key: &str, default: bool| -> Result<bool, String> {
        match get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(format!("{key} must be a boolean")),
        }
    };
    let minimum_spans = get("minimum_spans").and_then(Value::as_u64).unwrap_or(1) as usize;
    if spans.len() < minimum_spans {
        errors.push(format!(
            "Expected at least {minimum_spans} span(s), found {}",
            spans.len()
        ));
    }
    match flag("require_unique_root_per_trace", false) {
        Err(e) => errors.push(e),
        Ok(false) => {}
        Ok(true) => {
            let mut roots: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
            for s in spans.iter().filter(|s| s.parent_span_id.is_none()) {
                roots.entry(&s.trace_id).or_default().insert(&s.span_id);
            }
            for (trace, ids) in roots.iter().filter(|(_, ids)| ids.len() > 1) {
                errors.push(format!(
                    "Trace {trace} contains {} distinct root spans",
                    ids.len()
                ));
            }
        }
    }
    match flag("require_single_trace_per_execution", false) {
        Err(e) => errors.push(e),
        Ok(false) => {}
        Ok(true) => {
            let mut traces: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
            for s in spans {
                for key in EXECUTION_KEYS {
                    if let Some(arn) = s.attributes().get(key) {
                        traces
                            .entry(py_str(arn).to_lowercase())
                            .or_default()
                            .insert(&s.trace_id);
                    }
                }
            }
            for (arn, ids) in traces.iter().filter(|(_, ids)| ids.len() > 1) {
                errors.push(format!(
                    "Durable execution {arn:?} appears in {} trace IDs",
                    ids.len()
                ));
            }
        }
    }
    if let Some(selectors) = get("require_parented_spans") {
        match mappings(selectors) {
            None => errors
                .push("require_parented_spans must be a mapping or sequence of mappings".into()),
            Some(selectors) => {
                for (i, selector) in selectors.iter().enumerate() {
                    for s in spans.iter().filter(|s| matches_span(selector, &s.dict)) {
                        match &s.parent_span_id {
                            None => errors.push(format!(
                                "require_parented_spans[{i}]: span {} has no parent",
                                s.describe()
                            )),
                            Some(p) if !valid_span_id(p) => errors.push(format!(
                                "require_parented_spans[{i}]: span {} has invalid parent span \
                                 ID {p:?}",
                                s.describe()
                            )),
                            Some(_) => {}
                        }
                    }
                }
            }
        }
    }
    for s in spans.iter().filter(|s| s.start > s.end) {
        errors.push(format!("Span {} starts after it ends", s.describe()));
    }
    match flag("require_execution_correlation", true) {
        Err(e) => errors.push(e),
        Ok(false) => {}
        Ok(true) => {
            let values: BTreeSet<String> = spans
                .iter()
                .flat_map(|s| {
                    EXECUTION_KEYS
                        .iter()
                        .filter_map(|k| s.attributes().get(*k).map(|v| py_str(v).to_lowercase()))
                        .collect::<Vec<_>>()
                })
                .collect();
            if !values.contains(&execution_arn.to_lowercase()) {
                errors.push(
                    "No span carries the durable execution ARN in a supported correlation \
                     attribute"
                        .into(),
                );
            }
            let allowed: BTreeSet<String> = match get("allowed_execution_arns") {
                None => BTreeSet::from([execution_arn.to_lowercase()]),
                Some(v) => match strings(v) {
                    Some(arns) => arns.iter().map(|a| a.to_lowercase()).collect(),
                    None => {
                        errors.push(
                            "allowed_execution_arns must be a string or sequence of strings".into(),
                        );
                        BTreeSet::from([execution_arn.to_lowercase()])
                    }
                },
            };
            if values.difference(&allowed).next().is_some() {
                errors.push(
                    "Spans contain durable execution correlation values outside \
                     allowed_execution_arns"
                        .into(),
                );
            }
        }
    }
    let minimum_invocations = get("minimum_invocations")
        .and_then(Value::as_u64)
        .unwrap_or(1) as usize;
    if minimum_invocations > 1 {
        let invocations = spans
            .iter()
            .filter(|s| {
                s.name.to_lowercase() == "invocation"
                    && s.attributes().contains_key("durable.invocation.first")
            })
            .count();
        if invocations < minimum_invocations {
            errors.push(format!(
                "Expected at least {minimum_invocations} canonical durable invocation spans, \
                 found {invocations}"
            ));
        }
    }
    let prefixes = match get("exact_attribute_prefixes") {
        None => Vec::new(),
        Some(v) => strings(v).unwrap_or_else(|| {
            errors.push("exact_attribute_prefixes must be a string or sequence of strings".into());
            Vec::new()
        }),
    };
    let scopes = match get("span_assertion_scope") {
        None => vec![Map::new()],
        Some(v) => mappings(v).unwrap_or_else(|| {
            errors.push("span_assertion_scope must be a mapping or sequence of mappings".into());
            vec![Map::new()]
        }),
    };
    errors.extend(span_assertion_errors(
        spans,
        get("span_assertions").unwrap_or(&Value::Null),
        flag("require_all_spans", false).unwrap_or(false),
        &scopes,
        &prefixes,
    ));
    errors
}
