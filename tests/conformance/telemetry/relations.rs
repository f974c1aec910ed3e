//! How a selected span relates to the others: its parent, its links, its
//! place in time (the package's `_parent_expectation_errors`,
//! `_link_expectation_errors`, `_temporal_relation_errors`).

use super::*;

/// The spans of one trace, indexed by span id.
pub(super) struct Spans<'a> {
    all: &'a [Span],
    by_id: HashMap<&'a str, Vec<usize>>,
}

impl<'a> Spans<'a> {
    pub(super) fn new(all: &'a [Span]) -> Self {
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
    pub(super) fn parent_errors(&self, expected: &Value, span: usize, path: &str) -> Vec<String> {
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
    pub(super) fn link_errors(&self, expected: &Value, span: usize, path: &str) -> Vec<String> {
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
    pub(super) fn temporal_errors(
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
