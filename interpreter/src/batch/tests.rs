//! Unit tests of the batch configurations, completion rules and results.
use super::*;
use crate::batch_result::{BatchItem, BatchStatus, BatchSummary, CompletionReason};

#[test]
fn default_names_are_the_formatted_ones() {
    for n in [0, 7, 10, 99, 1000, 24_999, usize::MAX] {
        let map = BatchKind::Map.default_branch_name(n);
        assert_eq!(map.as_str(), format!("map-item-{n}"));
        let parallel = BatchKind::Parallel.default_branch_name(n);
        assert_eq!(parallel.as_str(), format!("parallel-branch-{n}"));
        // Recognized without being written anew: only its own name.
        assert!(BatchKind::Map.is_default_branch_name(map.as_bytes(), n));
        assert!(BatchKind::Parallel.is_default_branch_name(parallel.as_bytes(), n));
        assert!(!BatchKind::Parallel.is_default_branch_name(map.as_bytes(), n));
        assert!(!BatchKind::Map.is_default_branch_name(map.as_bytes(), n ^ 1));
        assert!(!BatchKind::Map.is_default_branch_name(format!("{map}0").as_bytes(), n));
        assert!(!BatchKind::Map.is_default_branch_name(b"map-item-", n));
    }
}

#[test]
fn completion_rules() {
    let p = CompletionPolicy::default();
    assert_eq!(p.evaluate(3, 1, 0, &[]), None);
    assert_eq!(
        p.evaluate(3, 1, 1, &[]),
        Some(CompletionReason::FailureToleranceExceeded)
    );
    assert_eq!(
        p.evaluate(3, 3, 0, &[]),
        Some(CompletionReason::AllCompleted)
    );
    assert_eq!(
        p.evaluate(0, 0, 0, &[]),
        Some(CompletionReason::AllCompleted)
    );
    let all = CompletionPolicy::all();
    assert_eq!(all.evaluate(3, 0, 2, &[]), None);
    assert_eq!(
        all.evaluate(3, 0, 3, &[]),
        Some(CompletionReason::AllCompleted)
    );
    let min = CompletionPolicy::default().min_successful(2);
    assert_eq!(
        min.evaluate(4, 1, 1, &[]),
        None,
        "only min_successful: never stops"
    );
    assert_eq!(
        min.evaluate(4, 2, 1, &[]),
        Some(CompletionReason::MinSuccessfulReached)
    );
    let count = CompletionPolicy::default().tolerated_failure_count(1);
    assert_eq!(count.evaluate(3, 0, 1, &[]), None);
    assert_eq!(
        count.evaluate(3, 0, 2, &[]),
        Some(CompletionReason::FailureToleranceExceeded)
    );
    let pct = CompletionPolicy::default().tolerated_failure_percentage(25.0);
    assert_eq!(pct.evaluate(8, 0, 2, &[]), None);
    assert_eq!(
        pct.evaluate(8, 0, 3, &[]),
        Some(CompletionReason::FailureToleranceExceeded)
    );
    // Every branch finished but too many failed: the tolerance wins.
    assert_eq!(
        count.evaluate(2, 0, 2, &[]),
        Some(CompletionReason::FailureToleranceExceeded)
    );
    assert!(
        CompletionPolicy::default()
            .min_successful(0)
            .invalid()
            .is_some()
    );
    assert!(
        CompletionPolicy::default()
            .tolerated_failure_percentage(101.0)
            .invalid()
            .is_some()
    );
    assert!(
        CompletionPolicy::default()
            .tolerated_failure_percentage(f64::NAN)
            .invalid()
            .is_some()
    );
    assert!(CompletionPolicy::all().invalid().is_none());
}

#[test]
fn a_predicate_decides_alone_and_first() {
    use crate::completion::{CompletionDecision, CompletionItem};
    let quorum = CompletionPolicy::should_complete(|s| {
        if s.success_count >= 2 {
            CompletionDecision::succeed()
        } else if s.failure_count >= 2 {
            CompletionDecision::fail()
        } else {
            CompletionDecision::Continue
        }
    });
    assert!(quorum.has_predicate() && quorum.invalid().is_none());
    // No failure ends the batch by itself.
    assert_eq!(quorum.evaluate(4, 0, 1, &[]), None);
    assert_eq!(
        quorum.evaluate(4, 2, 1, &[]),
        Some(CompletionReason::CustomCompletionSucceeded)
    );
    assert_eq!(
        quorum.evaluate(4, 1, 2, &[]),
        Some(CompletionReason::CustomCompletionFailed)
    );
    // Asked before "every branch finished": its decision is the reason.
    assert_eq!(
        quorum.evaluate(2, 2, 0, &[]),
        Some(CompletionReason::CustomCompletionSucceeded)
    );
    // Every branch finished and it says go on: ALL_COMPLETED.
    assert_eq!(
        quorum.evaluate(2, 1, 1, &[]),
        Some(CompletionReason::AllCompleted)
    );
    assert_eq!(
        quorum.evaluate(0, 0, 0, &[]),
        Some(CompletionReason::AllCompleted)
    );
    // It sees what it is given: the counts and each branch.
    let first_done = CompletionPolicy::should_complete(|s| {
        assert_eq!(s.completed_count, s.success_count + s.failure_count);
        match s.items.first().and_then(CompletionItem::status) {
            Some(BatchItemStatus::Succeeded) => CompletionDecision::succeed(),
            _ => CompletionDecision::Continue,
        }
    });
    let mut items = vec![
        CompletionItem::new(0, Some("a".into())),
        CompletionItem::new(1, None),
    ];
    assert_eq!(first_done.evaluate(2, 0, 0, &items), None);
    items[0].set_status(Some(BatchItemStatus::Succeeded));
    assert_eq!(
        first_done.evaluate(2, 1, 0, &items),
        Some(CompletionReason::CustomCompletionSucceeded)
    );
    assert_eq!(items[0].name(), Some("a"));
    assert_eq!((items[1].index(), items[1].name()), (1, None));
    // Not with the thresholds; clones share the predicate.
    for mixed in [
        quorum.clone().min_successful(1),
        quorum.clone().tolerated_failure_count(0),
        quorum.clone().tolerated_failure_percentage(10.0),
    ] {
        assert!(
            mixed
                .invalid()
                .is_some_and(|m| m.starts_with("should_complete cannot be combined"))
        );
    }
    assert_eq!(quorum.clone(), quorum);
    assert_ne!(quorum, first_done);
    assert_ne!(quorum, CompletionPolicy::default());
    assert!(format!("{quorum:?}").contains("should_complete: Some(\"<predicate>\")"));
}

#[test]
fn a_custom_decision_says_how_the_batch_stands() {
    let item = |index, status| BatchItem {
        index,
        status,
        result: (status == BatchItemStatus::Succeeded).then_some(index as u32),
        error: (status == BatchItemStatus::Failed).then(|| ErrorObject::new("E", "m")),
    };
    let batch = |reason, items| BatchResult {
        items,
        completion_reason: reason,
        name: Some("quorum".into()),
    };
    // Failed by the decision, no branch failed: AWS's BatchCompletionError.
    let failed = batch(
        CompletionReason::CustomCompletionFailed,
        vec![
            item(0, BatchItemStatus::Succeeded),
            item(1, BatchItemStatus::Started),
        ],
    );
    assert_eq!(failed.status(), BatchStatus::Failed);
    let json = serde_json::to_string(&failed).unwrap();
    assert!(json.ends_with(r#""completionReason":"CUSTOM_COMPLETION_FAILED"}"#));
    let back: BatchResult<u32> = serde_json::from_str(&json).unwrap();
    assert_eq!(
        back.completion_reason(),
        CompletionReason::CustomCompletionFailed
    );
    assert_eq!(back.status(), BatchStatus::Failed);
    let error = failed.into_values().unwrap_err();
    assert_eq!(error.error_type(), Some("BatchCompletionError"));
    assert_eq!(
        error.message(),
        Some("Batch completed as failed by should_complete (CUSTOM_COMPLETION_FAILED)")
    );
    assert_eq!(
        (error.operation_kind(), error.step_name()),
        ("batch", Some("quorum"))
    );
    // A failed branch's own error comes first.
    let both = batch(
        CompletionReason::CustomCompletionFailed,
        vec![item(0, BatchItemStatus::Failed)],
    );
    assert_eq!(both.into_values().unwrap_err().error_type(), Some("E"));
    // Succeeded by the decision, whatever failed.
    let succeeded = batch(
        CompletionReason::CustomCompletionSucceeded,
        vec![
            item(0, BatchItemStatus::Failed),
            item(1, BatchItemStatus::Succeeded),
        ],
    );
    assert_eq!(succeeded.status(), BatchStatus::Succeeded);
    assert!(succeeded.has_failures());
    for reason in [
        CompletionReason::CustomCompletionSucceeded,
        CompletionReason::CustomCompletionFailed,
    ] {
        assert_eq!(CompletionReason::parse(reason.as_str()), Some(reason));
    }
}

#[test]
fn batch_results_serialize_like_the_other_sdks() {
    let result = BatchResult {
        items: vec![
            BatchItem {
                index: 0,
                status: BatchItemStatus::Succeeded,
                result: Some("a".to_owned()),
                error: None,
            },
            BatchItem {
                index: 1,
                status: BatchItemStatus::Failed,
                result: None,
                error: Some(ErrorObject::new("E", "m")),
            },
        ],
        completion_reason: CompletionReason::AllCompleted,
        name: None,
    };
    let json = serde_json::to_string(&result).unwrap();
    assert_eq!(
        json,
        r#"{"all":[{"index":0,"status":"SUCCEEDED","result":"a","error":null},{"index":1,"status":"FAILED","result":null,"error":{"ErrorType":"E","ErrorMessage":"m","ErrorData":null,"StackTrace":null}}],"completionReason":"ALL_COMPLETED"}"#
    );
    let back: BatchResult<String> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, result);
    assert_eq!(
        back.clone().into_values().unwrap_err().error_type(),
        Some("E")
    );
    assert_eq!(back.successes().collect::<Vec<_>>(), vec!["a"]);
    let summary = BatchSummary {
        kind: "MapResult".into(),
        total_count: 4,
        completion_reason: "MIN_SUCCESSFUL_REACHED".into(),
        started_indexes: None,
        completed_indexes: Some(vec![0, 2]),
        started_count: 2,
        success_count: 2,
        failure_count: 0,
        status: "SUCCEEDED".into(),
        summary: None,
    };
    assert_eq!(summary.started(), Some(vec![1, 3]));
    // Another SDK may list them in any order.
    let unsorted = BatchSummary {
        completed_indexes: Some(vec![2, 0]),
        ..summary.clone()
    };
    assert_eq!(unsorted.started(), Some(vec![1, 3]));
}
