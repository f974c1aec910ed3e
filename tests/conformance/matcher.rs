//! AWS's conformance requirements for durable-execution SDKs (PyPI
//! `aws-durable-execution-conformance-tests`): one YAML file per
//! requirement, saying what the execution's result and its history
//! (`GetDurableExecutionHistory` events) must hold. This module reads those
//! files and checks a history against them by the rules the package states
//! (its `history.py` and `variables.py`), written here anew:
//!
//! - expected events are matched to actual ones by `EventId`; actual events
//!   not named are not checked;
//! - a mapping checks only the keys it names, each of which must be there;
//!   `{}` accepts anything (but its key must exist); `'*'` accepts any value;
//! - `${NAME}` binds `NAME` to the value at its first use and requires the
//!   same value at every later one; `${/re/}` requires a string (or the
//!   number as text) the regular expression matches somewhere;
//! - lists match element by element, of the same length; anything else must
//!   be equal, after the names already bound are substituted into strings
//!   (numbers compare by value, as Python's do: `2 == 2.0`);
//! - `Variables` (`${GEN_STR:n}`: n random lowercase letters and digits)
//!   are bound before the input is substituted;
//! - the result: the status must be the expected one, and only for a
//!   `SUCCEEDED` execution with a `Result` key is the result compared (the
//!   JSON value, after substitution).
//!
//! The files themselves are not in this repository: `.ci/run` downloads
//! the wheel and `tests/conformance.rs` reads them from
//! `.venv/conformance/` (or `$DURABLE_YIELD_CONFORMANCE_DIR`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// The distribution the requirements come from, and the version read.
pub const PACKAGE: &str = "aws-durable-execution-conformance-tests==1.0.0";

/// Where the requirement files are: `$DURABLE_YIELD_CONFORMANCE_DIR`, or
/// `<workspace>/.venv/conformance/aws_durable_execution_conformance_tests/test_requirements`
/// (where `.ci/run` unpacks the wheel). `None` when that is no directory.
pub fn requirements_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("DURABLE_YIELD_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../.venv/conformance/aws_durable_execution_conformance_tests/test_requirements"),
    };
    dir.is_dir().then_some(dir)
}

/// One requirement file, read.
#[derive(Debug, Clone)]
pub struct Requirement {
    /// Its id, the file's stem (`1-1`, `2-3`, ...).
    pub id: String,
    /// Its suite, the folder it is in (`step`, `wait`, ...).
    pub suite: String,
    /// Its one-line description.
    pub description: String,
    /// Whether the package marks it optional.
    pub optional: bool,
    /// The whole file, as JSON.
    pub spec: Value,
}

impl Requirement {
    /// The execution's input, with the variables substituted.
    pub fn input(&self, bindings: &Bindings) -> Value {
        bindings.substitute(self.spec.get("Input").unwrap_or(&Value::Null))
    }

    /// The expected history events.
    pub fn expected_history(&self) -> &[Value] {
        self.spec
            .get("ExpectedExecutionHistory")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    /// The `ExpectedResult` mapping, if any.
    pub fn expected_result(&self) -> Option<&Map<String, Value>> {
        self.spec.get("ExpectedResult").and_then(Value::as_object)
    }

    /// The file's `CallbackActions`, their placeholders substituted.
    pub fn callback_actions(&self, bindings: &Bindings) -> Vec<crate::cases::Action> {
        let Some(actions) = self.spec.get("CallbackActions").and_then(Value::as_array) else {
            return Vec::new();
        };
        actions
            .iter()
            .map(|a| {
                let a = bindings.substitute(a);
                crate::cases::Action {
                    name: a.get("CallbackName").map(python_str).unwrap_or_default(),
                    operation: a
                        .get("Operation")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_lowercase(),
                    payload: a.get("Payload").cloned().unwrap_or(Value::Null),
                    delay: a.get("Delay").and_then(Value::as_f64).unwrap_or(0.0),
                }
            })
            .collect()
    }

    /// The file's `ExpectedLogs` (log lines).
    pub fn expected_logs(&self) -> &[Value] {
        self.spec
            .get("ExpectedLogs")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    /// Fresh bindings for one run: the file's `Variables` generated.
    pub fn bindings(&self, seed: u64) -> Bindings {
        let mut bindings = Bindings::default();
        let mut rng = seed | 1;
        if let Some(vars) = self.spec.get("Variables").and_then(Value::as_object) {
            for (name, value) in vars {
                let text = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let generated = text
                    .strip_prefix("${GEN_STR:")
                    .and_then(|rest| rest.strip_suffix('}'))
                    .and_then(|n| n.parse::<usize>().ok());
                let value = match generated {
                    Some(len) => (0..len)
                        .map(|_| {
                            rng ^= rng << 13;
                            rng ^= rng >> 7;
                            rng ^= rng << 17;
                            let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
                            char::from(alphabet[(rng % alphabet.len() as u64) as usize])
                        })
                        .collect(),
                    None => text,
                };
                bindings.values.insert(name.clone(), Value::String(value));
            }
        }
        bindings
    }
}

/// Reads every requirement file under `dir` (`<suite>/<id>.yaml`), by id.
pub fn load_all(dir: &Path) -> Result<BTreeMap<String, Requirement>, String> {
    let mut out = BTreeMap::new();
    let suites = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for suite in suites.flatten() {
        let path = suite.path();
        if !path.is_dir() {
            continue;
        }
        let suite_name = suite.file_name().to_string_lossy().into_owned();
        let files = std::fs::read_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for file in files.flatten() {
            let file = file.path();
            if file.extension().and_then(|e| e.to_str()) != Some("yaml") {
                continue;
            }
            let Some(id) = file.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let spec: Value =
                serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            let description = spec
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let optional = spec.get("optional").and_then(Value::as_bool) == Some(true);
            out.insert(
                id.to_owned(),
                Requirement {
                    id: id.to_owned(),
                    suite: suite_name.clone(),
                    description,
                    optional,
                    spec,
                },
            );
        }
    }
    Ok(out)
}

/// The values placeholders are bound to in one run.
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    values: HashMap<String, Value>,
}

impl Bindings {
    /// Binds `name` to `value` (a value the run knows, such as the
    /// execution's ARN).
    pub fn bind(&mut self, name: &str, value: Value) {
        self.values.insert(name.to_owned(), value);
    }

    /// The value `name` is bound to.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    /// `data` with every `${NAME}` of a bound name replaced by its value
    /// (as text, inside strings); other placeholders are left as they are.
    pub fn substitute(&self, data: &Value) -> Value {
        match data {
            Value::String(s) => Value::String(self.substitute_str(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.substitute(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.substitute(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn substitute_str(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let name = &after[..name_len];
            let closed = after[name_len..].starts_with('}');
            let first_ok = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
            match self.values.get(name) {
                Some(value) if closed && first_ok => {
                    out.push_str(&python_str(value));
                    rest = &after[name_len + 1..];
                }
                _ => {
                    out.push_str("${");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// A value as Python's `str()` writes it (for regular expressions and
/// substitution): strings as they are, numbers as numbers.
fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        other => other.to_string(),
    }
}

/// Whether two JSON values are equal as Python compares the decoded
/// values (numbers by value; everything else structurally).
fn python_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| python_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| python_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Checks actual values against expected ones by the package's rules,
/// collecting every mismatch.
#[derive(Debug, Default)]
pub struct Matcher {
    /// The placeholders bound so far (the variables included).
    pub bindings: Bindings,
    /// What did not match, with the path to it.
    pub errors: Vec<String>,
}

impl Matcher {
    /// A matcher that starts from `bindings`.
    pub fn new(bindings: Bindings) -> Self {
        Matcher {
            bindings,
            errors: Vec::new(),
        }
    }

    /// Matches expected events to actual ones by `EventId`.
    pub fn events(&mut self, expected: &[Value], actual: &[Value]) {
        let by_id: HashMap<u64, &Value> = actual
            .iter()
            .filter_map(|e| Some((e.get("EventId")?.as_u64()?, e)))
            .collect();
        for event in expected {
            let Some(id) = event.get("EventId").and_then(Value::as_u64) else {
                self.errors
                    .push(format!("an expected event has no EventId: {event}"));
                continue;
            };
            match by_id.get(&id) {
                Some(actual) => self.value(event, actual, &format!("Event[EventId={id}]")),
                None => self.errors.push(format!("no event has EventId={id}")),
            }
        }
    }

    /// Matches one expected value against the actual one at `path`.
    pub fn value(&mut self, expected: &Value, actual: &Value, path: &str) {
        match expected {
            Value::Object(map) if map.is_empty() => return,
            Value::String(s) if s == "*" => return,
            _ => {}
        }
        if let Value::String(s) = expected
            && let Some(inner) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
            && !inner.is_empty()
        {
            if let Some(pattern) = inner
                .strip_prefix('/')
                .and_then(|r| r.strip_suffix('/'))
                .filter(|p| !p.is_empty())
            {
                match regex::Regex::new(pattern) {
                    Ok(re) if re.is_match(&python_str(actual)) => {}
                    Ok(_) => self.errors.push(format!(
                        "{path}: {actual} does not match the pattern {pattern:?}"
                    )),
                    Err(e) => self
                        .errors
                        .push(format!("{path}: the pattern {pattern:?} is invalid: {e}")),
                }
                return;
            }
            match self.bindings.values.get(inner) {
                Some(bound) if !python_eq(bound, actual) => self.errors.push(format!(
                    "{path}: ${{{inner}}} was bound to {bound}, here it is {actual}"
                )),
                Some(_) => {}
                None => {
                    self.bindings
                        .values
                        .insert(inner.to_owned(), actual.clone());
                }
            }
            return;
        }
        match (expected, actual) {
            (Value::Object(e), Value::Object(a)) => {
                for (key, value) in e {
                    match a.get(key) {
                        Some(actual) => self.value(value, actual, &format!("{path}.{key}")),
                        None => self.errors.push(format!("{path}.{key}: missing")),
                    }
                }
            }
            (Value::Array(e), Value::Array(a)) => {
                if e.len() != a.len() {
                    self.errors.push(format!(
                        "{path}: {} items expected, {} found",
                        e.len(),
                        a.len()
                    ));
                    return;
                }
                for (i, (e, a)) in e.iter().zip(a).enumerate() {
                    self.value(e, a, &format!("{path}[{i}]"));
                }
            }
            _ => {
                let expected = self.bindings.substitute(expected);
                if !python_eq(&expected, actual) {
                    self.errors
                        .push(format!("{path}: expected {expected}, found {actual}"));
                }
            }
        }
    }

    /// Checks log records (in the order they were written) against
    /// `ExpectedLogs`, by the package's rules for CloudWatch lines: each
    /// entry's `match` names fields that must all be there and match (a
    /// string exactly, whitespace trimmed, or as `/regex/`; numbers by
    /// value; booleans exactly); `count` (or `min_count` / `max_count`;
    /// at least one without any) bounds how many records match; every
    /// match must come at or after all records matching each `after`
    /// anchor and at or before those of each `before` anchor, and an
    /// anchor must match some record. Placeholders bound so far (the
    /// history's ids) are substituted first.
    pub fn logs(&mut self, expected: &[Value], records: &[Value]) {
        fn value_matches(expected: &Value, actual: &Value) -> bool {
            match (expected, actual) {
                (Value::String(e), a) => {
                    let a = python_str(a);
                    let a = a.trim();
                    match e.strip_prefix('/').and_then(|r| r.strip_suffix('/')) {
                        Some(pattern) if e.len() >= 2 => {
                            regex::Regex::new(pattern).is_ok_and(|re| re.is_match(a))
                        }
                        _ => a == e.trim(),
                    }
                }
                (Value::Bool(e), a) => a.as_bool() == Some(*e),
                (e, Value::Bool(_)) if !e.is_boolean() => false,
                (Value::Number(e), Value::Number(a)) => e.as_f64() == a.as_f64(),
                (e, a) => python_str(e) == python_str(a),
            }
        }
        let matching = |matcher: &Value| -> Vec<usize> {
            let Some(fields) = matcher.as_object() else {
                return Vec::new();
            };
            records
                .iter()
                .enumerate()
                .filter(|(_, r)| {
                    fields
                        .iter()
                        .all(|(k, v)| r.get(k).is_some_and(|a| value_matches(v, a)))
                })
                .map(|(i, _)| i)
                .collect()
        };
        for (i, entry) in expected.iter().enumerate() {
            let entry = self.bindings.substitute(entry);
            let Some(matcher) = entry.get("match") else {
                self.errors.push(format!("ExpectedLogs[{i}]: no match"));
                continue;
            };
            let label = format!("ExpectedLogs[{i}] match({matcher})");
            let own = matching(matcher);
            let n = own.len() as u64;
            let bound = |k: &str| entry.get(k).and_then(Value::as_u64);
            match (bound("count"), bound("min_count"), bound("max_count")) {
                (Some(c), _, _) if c != n => self
                    .errors
                    .push(format!("{label}: expected exactly {c} match(es), got {n}")),
                (Some(_), _, _) => {}
                (None, min, max) => {
                    let min = if min.is_none() && max.is_none() {
                        Some(1)
                    } else {
                        min
                    };
                    if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                        self.errors.push(format!(
                            "{label}: expected {min:?} to {max:?} match(es), got {n}"
                        ));
                    }
                }
            }
            for (direction, anchors) in [
                ("after", entry.get("after")),
                ("before", entry.get("before")),
            ] {
                let anchors: Vec<&Value> = match anchors {
                    Some(Value::Array(a)) => a.iter().collect(),
                    Some(one) => vec![one],
                    None => Vec::new(),
                };
                for anchor in anchors {
                    let at = matching(anchor);
                    let (Some(&first), Some(&last)) = (at.first(), at.last()) else {
                        self.errors.push(format!(
                            "{label}: the {direction} anchor {anchor} matched no record"
                        ));
                        continue;
                    };
                    let (Some(&own_first), Some(&own_last)) = (own.first(), own.last()) else {
                        continue;
                    };
                    if (direction == "after" && own_first < last)
                        || (direction == "before" && own_last > first)
                    {
                        self.errors
                            .push(format!("{label}: not every match is {direction} {anchor}"));
                    }
                }
            }
        }
    }

    /// `Ok` when everything matched, else the mismatches followed by the
    /// `events` checked (titled `what`), to read the failure by.
    pub fn verdict(mut self, events: &[Value], what: &str) -> Result<(), Vec<String>> {
        if self.errors.is_empty() {
            return Ok(());
        }
        self.errors.push(format!(
            "{what}:\n{}",
            serde_json::to_string_pretty(events).unwrap_or_default()
        ));
        Err(self.errors)
    }

    /// Checks the execution's status and result against `ExpectedResult`.
    pub fn result(
        &mut self,
        expected: Option<&Map<String, Value>>,
        status: &str,
        result: Option<&Value>,
    ) {
        let Some(expected) = expected else {
            return;
        };
        if let Some(want) = expected.get("ExecutionStatus").and_then(Value::as_str)
            && want != status
        {
            self.errors
                .push(format!("ExecutionStatus: expected {want}, found {status}"));
            return;
        }
        if status != "SUCCEEDED" {
            return;
        }
        if let Some(want) = expected.get("Result") {
            let want = self.bindings.substitute(want);
            let actual = result.cloned().unwrap_or(Value::Null);
            if !python_eq(&want, &actual) {
                self.errors
                    .push(format!("Result: expected {want}, found {actual}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matched(expected: Value, actual: Value) -> Vec<String> {
        let mut m = Matcher::default();
        m.events(
            expected.as_array().map_or(&[][..], Vec::as_slice),
            actual.as_array().map_or(&[][..], Vec::as_slice),
        );
        m.errors
    }

    #[test]
    fn events_match_by_id_and_by_the_keys_named() {
        let actual = json!([
            {"EventId": 1, "EventType": "ExecutionStarted"},
            {"EventId": 2, "EventType": "WaitStarted", "Id": "a", "SubType": "Wait",
             "WaitStartedDetails": {"Duration": 2, "ScheduledEndTimestamp": 9}},
            {"EventId": 3, "EventType": "WaitSucceeded", "Id": "a",
             "WaitSucceededDetails": {"Duration": 2.0}},
        ]);
        let ok = json!([
            {"EventId": 3, "EventType": "WaitSucceeded", "Id": "${ID1}",
             "WaitSucceededDetails": {"Duration": 2}},
            {"EventId": 2, "EventType": "WaitStarted", "Id": "${ID1}", "EventTimestamp": "*",
             "WaitStartedDetails": {"Duration": "${/^[0-9]$/}"}},
        ]);
        // EventTimestamp is absent from the actual event: '*' still needs
        // the key.
        assert_eq!(
            matched(ok.clone(), actual.clone()),
            ["Event[EventId=2].EventTimestamp: missing"]
        );
        let mut ok = ok;
        ok[1].as_object_mut().unwrap().remove("EventTimestamp");
        assert!(matched(ok, actual.clone()).is_empty());

        // Each rule can fail.
        let wrong = json!([
            {"EventId": 2, "Id": "${ID1}", "WaitStartedDetails": {"Duration": 3}},
            {"EventId": 3, "Id": "${ID1}x"},
            {"EventId": 4},
            {"EventId": 1, "EventType": "${/Succeeded$/}", "Missing": {}},
        ]);
        let errors = matched(wrong, actual);
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(
            errors[0].contains("Duration: expected 3, found 2"),
            "{errors:?}"
        );
        assert!(errors[1].contains("expected \"ax\""), "{errors:?}");
        assert!(errors[2].contains("no event has EventId=4"), "{errors:?}");
        assert!(errors[3].contains("does not match"), "{errors:?}");
        assert!(errors[4].contains("Missing: missing"), "{errors:?}");
    }

    #[test]
    fn placeholders_bind_once_and_substitute_into_strings() {
        let mut m = Matcher::default();
        m.value(&json!("${ID1}"), &json!("abc"), "x");
        m.value(&json!("${ID1}"), &json!("abd"), "y");
        assert_eq!(m.errors.len(), 1);
        m.errors.clear();
        m.value(&json!("id is ${ID1}!"), &json!("id is abc!"), "z");
        m.value(&json!(["${ID1}", 1]), &json!(["abc", 1.0]), "w");
        m.value(&json!(["${ID1}"]), &json!(["abc", 1]), "v");
        assert_eq!(m.errors.len(), 1, "{:?}", m.errors);
        assert!(m.errors[0].contains("1 items expected, 2 found"));
    }

    #[test]
    fn log_lines_match_by_fields_counts_and_order() {
        let records = vec![
            json!({"plugin": "P", "hook": "start", "first": true}),
            json!({"message": "  running for: ab12  "}),
            json!({"plugin": "P", "hook": "end", "n": 2.0}),
        ];
        let ok = json!([
            {"match": {"plugin": "P", "hook": "start", "first": true}, "count": 1},
            {"match": {"message": "/running for: ${X}/"}, "after": [{"hook": "start"}]},
            {"match": {"hook": "end", "n": 2}, "count": 1, "after": [{"message": "/running/"}]},
            {"match": {"hook": "start", "first": false}, "count": 0},
            {"match": {"hook": "start"}, "before": {"hook": "end"}},
        ]);
        let mut bindings = Bindings::default();
        bindings.values.insert("X".into(), json!("ab12"));
        let mut m = Matcher::new(bindings.clone());
        m.logs(ok.as_array().unwrap(), &records);
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        let wrong = json!([
            {"match": {"hook": "start"}, "count": 2},
            {"match": {"hook": "start"}, "after": [{"hook": "end"}]},
            {"match": {"hook": "end"}, "after": [{"hook": "missing"}]},
            {"match": {"hook": "nothing"}},
            {"match": {"first": "true"}},
        ]);
        let mut m = Matcher::new(bindings);
        m.logs(wrong.as_array().unwrap(), &records);
        assert_eq!(m.errors.len(), 5, "{:?}", m.errors);
    }

    #[test]
    fn the_result_is_compared_only_when_the_execution_succeeded() {
        let expected = json!({"ExecutionStatus": "SUCCEEDED", "Result": {"n": 2}});
        let mut m = Matcher::default();
        m.result(expected.as_object(), "SUCCEEDED", Some(&json!({"n": 2.0})));
        assert!(m.errors.is_empty());
        m.result(expected.as_object(), "SUCCEEDED", Some(&json!({"n": 3})));
        m.result(expected.as_object(), "FAILED", None);
        assert_eq!(m.errors.len(), 2, "{:?}", m.errors);
        let failed = json!({"ExecutionStatus": "FAILED", "Result": "ignored"});
        let mut m = Matcher::default();
        m.result(failed.as_object(), "FAILED", None);
        assert!(m.errors.is_empty());
    }

    #[test]
    fn variables_are_generated_and_substituted() {
        let req = Requirement {
            id: "x".into(),
            suite: "s".into(),
            description: String::new(),
            optional: false,
            spec: json!({"Variables": {"INPUT_1": "${GEN_STR:8}", "FIXED": "v"},
                         "Input": "${INPUT_1}-${FIXED}-${UNKNOWN}"}),
        };
        let b = req.bindings(42);
        let generated = b.get("INPUT_1").and_then(Value::as_str).unwrap().to_owned();
        assert_eq!(generated.len(), 8);
        assert!(
            generated
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_eq!(req.input(&b), json!(format!("{generated}-v-${{UNKNOWN}}")));
    }
}
