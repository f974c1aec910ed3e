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

/// The spans of one trace, indexed by span id.
struct Spans<'a> {
    all: &'a [Span],
    by_id: HashMap<&'a str, Vec<usize>>,
}

impl<'a> Spans<'a> {
    fn new(all: &'a [Span]) -> Self {
        let mut by_id: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, span) in all.iter().enumerate() {
            by_id.entry(span.span_id.as_str()).or_default().push(i);
        }
        Spans { all, by_id }
    }

    /// The spans with span id `id` in trace `trace`.
    fn with_id(&self, id: &str, trace: &str) -> Vec<usize> {
        self.by_id
            .get(id)
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|&i| self.all[i].trace_id == trace)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The package's `_parent_chain_reaches_span`: whether `span` is
    /// `parent` or one of its ancestors.
    fn chain_reaches(&self, parent: usize, span: usize) -> bool {
        let target = &self.all[span];
        let mut pending = vec![parent];
        let mut visited = BTreeSet::new();
        while let Some(c) = pending.pop() {
            if !visited.insert(c) {
                continue;
            }
            let candidate = &self.all[c];
            if candidate.span_id == target.span_id {
                return true;
            }
            let Some(parent_id) = &candidate.parent_span_id else {
                continue;
            };
            if *parent_id == target.span_id {
                return true;
            }
            pending.extend(self.with_id(parent_id, &target.trace_id));
        }
        false
    }

    /// The package's `_parent_expectation_errors`.
    fn parent_errors(&self, expected: &Value, span: usize, path: &str) -> Vec<String> {
        let Some(expected) = expected.as_object() else {
            return vec![format!("{path} must be a mapping")];
        };
        let flag = |key: &str| expected.get(key).is_some_and(|v| v == true);
        for key in ["$allow_outside", "$allow_unresolved", "$reject_sdk_span"] {
            if expected.contains_key(key) && !flag(key) {
                return vec![format!("{path}.{key} must be true")];
            }
        }
        let (allow_outside, allow_unresolved, reject_sdk) = (
            flag("$allow_outside"),
            flag("$allow_unresolved"),
            flag("$reject_sdk_span"),
        );
        let properties: Map<String, Value> = expected
            .iter()
            .filter(|(k, _)| !k.starts_with('$'))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let child = &self.all[span];
        let Some(parent_id) = &child.parent_span_id else {
            return vec![format!("{path}: selected span has no parent")];
        };
        if !valid_span_id(parent_id) {
            return vec![format!(
                "{path}: selected span has invalid parent span ID {parent_id:?}"
            )];
        }
        let parents = self.with_id(parent_id, &child.trace_id);
        if parents.is_empty() {
            return if allow_unresolved {
                Vec::new()
            } else {
                vec![format!("{path}: parent span is not present in the trace")]
            };
        }
        let candidate_errors: Vec<Vec<String>> = parents
            .iter()
            .map(|&p| {
                let parent = &self.all[p];
                let mut errors = span_expectation_errors(&properties, &parent.dict, path);
                if errors.is_empty() && self.chain_reaches(p, span) {
                    errors.push(format!(
                        "{path}: resolved parent span {} is the selected span or one of its \
                         descendants",
                        parent.describe()
                    ));
                }
                if errors.is_empty() && reject_sdk && is_sdk_span(parent) {
                    errors.push(format!(
                        "{path}: resolved parent span {} is emitted by the durable SDK",
                        parent.describe()
                    ));
                }
                errors
            })
            .collect();
        let matching: Vec<usize> = parents
            .iter()
            .zip(&candidate_errors)
            .filter(|(_, e)| e.is_empty())
            .map(|(&p, _)| p)
            .collect();
        if matching.is_empty() {
            if parents.len() > 1 {
                return vec![format!(
                    "{path}: parent span id matched {} spans; none matched the expected parent",
                    parents.len()
                )];
            }
            return candidate_errors.into_iter().next().unwrap_or_default();
        }
        if allow_outside {
            return Vec::new();
        }
        let containment: Vec<Vec<String>> = matching
            .iter()
            .map(|&p| {
                let parent = &self.all[p];
                let mut errors = Vec::new();
                if parent.start > child.start {
                    errors.push(format!(
                        "{path}: child span {} starts before its parent {} starts",
                        child.describe(),
                        parent.describe()
                    ));
                }
                if child.end > parent.end {
                    errors.push(format!(
                        "{path}: child span {} ends after its parent {} ends",
                        child.describe(),
                        parent.describe()
                    ));
                }
                errors
            })
            .collect();
        if containment.iter().any(Vec::is_empty) {
            return Vec::new();
        }
        if matching.len() > 1 {
            return vec![format!(
                "{path}: parent span id matched {} expected spans; none contained the child \
                 timespan",
                matching.len()
            )];
        }
        containment.into_iter().next().unwrap_or_default()
    }

    /// The package's `_link_expectation_errors`.
    fn link_errors(&self, expected: &Value, span: usize, path: &str) -> Vec<String> {
        if let Some(alternatives) = any_of(expected) {
            return match alternatives.as_array() {
                Some(a) if !a.is_empty() => {
                    if a.iter()
                        .any(|alt| self.link_errors(alt, span, path).is_empty())
                    {
                        Vec::new()
                    } else {
                        vec![format!(
                            "{path}: linked spans do not match any allowed value"
                        )]
                    }
                }
                _ => vec![format!("{path}.$any_of: expected a non-empty sequence")],
            };
        }
        let Some(expected) = expected.as_array() else {
            return vec![format!("{path} must be a sequence")];
        };
        let links = &self.all[span].links;
        if expected.len() != links.len() {
            return vec![format!(
                "{path}: expected {} item(s), found {}",
                expected.len(),
                links.len()
            )];
        }
        let mut errors = Vec::new();
        for (index, (expected_span, (link_trace, link_span))) in
            expected.iter().zip(links).enumerate()
        {
            let link_path = format!("{path}[{index}]");
            let Some(expected_span) = expected_span.as_object() else {
                errors.push(format!("{link_path} must be a mapping"));
                continue;
            };
            let positive = |v: &Value| v.as_u64().filter(|&n| n >= 1 && !v.is_boolean());
            let count = match expected_span.get("count") {
                None => 1,
                Some(v) => match positive(v) {
                    Some(n) => n as usize,
                    None => {
                        errors.push(format!("{link_path}.count must be a positive integer"));
                        continue;
                    }
                },
            };
            let occurrence = match expected_span.get("$occurrence") {
                None => None,
                Some(v) => match positive(v) {
                    Some(n) => Some(n as usize),
                    None => {
                        errors.push(format!(
                            "{link_path}.$occurrence must be a positive integer"
                        ));
                        continue;
                    }
                },
            };
            let properties: Map<String, Value> = expected_span
                .iter()
                .filter(|(k, _)| *k != "$occurrence" && *k != "count")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let linked = self.with_id(link_span, link_trace);
            if linked.is_empty() {
                errors.push(format!(
                    "{link_path}: linked span is not present in the trace"
                ));
                continue;
            }
            let candidate_errors: Vec<Vec<String>> = linked
                .iter()
                .map(|&l| span_expectation_errors(&properties, &self.all[l].dict, &link_path))
                .collect();
            let matching = candidate_errors.iter().filter(|e| e.is_empty()).count();
            if matching == count {
                if let Some(occurrence) = occurrence {
                    let mut candidates: Vec<&Span> = self
                        .all
                        .iter()
                        .filter(|s| matches_span(&properties, &s.dict))
                        .collect();
                    candidates.sort_by(|a, b| {
                        (a.start, a.end, &a.trace_id, &a.span_id).cmp(&(
                            b.start,
                            b.end,
                            &b.trace_id,
                            &b.span_id,
                        ))
                    });
                    candidates.dedup_by(|a, b| a.trace_id == b.trace_id && a.span_id == b.span_id);
                    let actual = candidates
                        .iter()
                        .position(|s| &s.trace_id == link_trace && &s.span_id == link_span)
                        .map(|i| i + 1);
                    if actual != Some(occurrence) {
                        errors.push(format!(
                            "{link_path}.$occurrence: linked span is occurrence {actual:?}, \
                             expected {occurrence}"
                        ));
                    }
                }
                continue;
            }
            if linked.len() == 1 && count == 1 {
                errors.extend(candidate_errors.into_iter().flatten());
                continue;
            }
            errors.push(format!(
                "{link_path}: linked span expectation matched {matching} spans; expected {count}"
            ));
        }
        errors
    }

    /// The package's `_temporal_relation_errors`.
    fn temporal_errors(
        &self,
        relation: &str,
        expected: &Value,
        span: usize,
        path: &str,
    ) -> Vec<String> {
        let Some(expected) = expected.as_object() else {
            return vec![format!("{path} must be a mapping")];
        };
        if expected.contains_key("$linked") && expected["$linked"] != true {
            return vec![format!("{path}.$linked must be true")];
        }
        let linked_only = expected.get("$linked") == Some(&Value::Bool(true));
        let selector: Map<String, Value> = expected
            .iter()
            .filter(|(k, _)| *k != "$linked")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let selected = &self.all[span];
        let related: Vec<&Span> = self
            .all
            .iter()
            .enumerate()
            .filter(|&(i, s)| {
                i != span
                    && (!linked_only
                        || selected
                            .links
                            .iter()
                            .any(|(t, id)| *t == s.trace_id && *id == s.span_id))
                    && matches_span(&selector, &s.dict)
            })
            .map(|(_, s)| s)
            .collect();
        let related = match related.as_slice() {
            [] => return vec![format!("{path} matched no spans")],
            [one] => *one,
            many => {
                return vec![format!(
                    "{path} matched {} spans; it must select exactly one",
                    many.len()
                )];
            }
        };
        let (s, r) = (selected.describe(), related.describe());
        match relation {
            "before" if selected.end > related.start => {
                vec![format!("{path}: span {s} ends after span {r} starts")]
            }
            "after" if related.end > selected.start => {
                vec![format!("{path}: span {s} starts before span {r} ends")]
            }
            "inside" => {
                let mut errors = Vec::new();
                if related.start > selected.start {
                    errors.push(format!(
                        "{path}: span {s} starts before its containing span {r} starts"
                    ));
                }
                if selected.end > related.end {
                    errors.push(format!(
                        "{path}: span {s} ends after its containing span {r} ends"
                    ));
                }
                errors
            }
            _ => Vec::new(),
        }
    }
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

#[cfg(test)]
mod tests {
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
}
