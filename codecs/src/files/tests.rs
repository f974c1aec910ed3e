use super::*;
use serde_json::json;

const ARN: &str =
    "arn:aws:lambda:us-east-1:123456789012:function:orders:$LATEST/durable-execution/run-7/0f1e2d";

/// A fresh directory for one test.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("fs-codec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cx(op: &str) -> PayloadContext<'_> {
    PayloadContext::new(ARN, op)
}

#[test]
fn always_writes_the_value_to_a_file_named_from_the_arn_and_points_at_it() {
    let dir = Dir::new("always");
    let codec = FileSystem::new(&dir.0);
    let value = json!({"id": 7, "note": "crème"});
    let payload = to_payload(&codec, &value, &cx("abc123")).unwrap();
    let file = dir.0.join("orders/run-7/0f1e2d/abc123.json");
    assert_eq!(
        payload,
        format!("{{\"file\": \"{}\"}}", file.to_str().unwrap())
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        r#"{"id":7,"note":"crème"}"#
    );
    // No temporary file left beside it.
    let names: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("abc123.json")]);
    let back: Value = from_payload(&codec, &payload, &cx("abc123")).unwrap();
    assert_eq!(back, value);
}

#[test]
fn overflow_keeps_small_values_inline_and_writes_large_ones() {
    let dir = Dir::new("overflow");
    let codec = FileSystem::new(&dir.0).mode(StorageMode::Overflow);
    // Inline: the value's JSON as a string, escaped as Python's json.dumps.
    let small = json!({"a": "é\n\"", "b": [1, 2]});
    let payload = to_payload(&codec, &small, &cx("s")).unwrap();
    assert_eq!(
        payload,
        r#"{"data": "{\"a\":\"\u00e9\\n\\\"\",\"b\":[1,2]}"}"#
    );
    assert!(!dir.0.exists(), "nothing written for an inline value");
    let back: Value = from_payload(&codec, &payload, &cx("s")).unwrap();
    assert_eq!(back, small);

    // Just at the threshold: inline. One byte more: a file.
    let fits = "x".repeat(OVERFLOW_THRESHOLD - r#"{"data": "\"\""}"#.len());
    let payload = to_payload(&codec, &fits, &cx("fits")).unwrap();
    assert_eq!(payload.len(), OVERFLOW_THRESHOLD);
    assert!(payload.starts_with("{\"data\": "));
    let over = format!("{fits}x");
    let payload = to_payload(&codec, &over, &cx("over")).unwrap();
    assert!(payload.starts_with("{\"file\": "), "{}", &payload[..40]);
    let back: String = from_payload(&codec, &payload, &cx("over")).unwrap();
    assert_eq!(back, over);
}

#[test]
fn hashed_paths_are_sha256_hex_of_the_arn_and_the_operation_id() {
    let dir = Dir::new("hash");
    let codec = FileSystem::new(&dir.0).path_encoding(PathEncoding::Hash);
    let path = codec.file_for(&PayloadContext::new("abc", "abc")).unwrap();
    // SHA-256("abc"), FIPS 180-2's test vector.
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(path, dir.0.join(abc).join(format!("{abc}.json")));
}

#[test]
fn uri_paths_percent_encode_what_is_not_unreserved() {
    let codec = FileSystem::new("/mnt/s3");
    // Not a durable execution ARN: the whole ARN is one encoded segment.
    let path = codec
        .file_for(&PayloadContext::new("arn:aws:lambda:x/y z", "a/b~c_d.e-f"))
        .unwrap();
    assert_eq!(
        path,
        Path::new("/mnt/s3/arn%3Aaws%3Alambda%3Ax%2Fy%20z/a%2Fb~c_d.e-f.json")
    );
    // Other fields of the record get their own files.
    let input = codec
        .file_for(&cx("op").with_kind(PayloadKind::Input))
        .unwrap();
    assert_eq!(
        input,
        Path::new("/mnt/s3/orders/run-7/0f1e2d/op.input.json")
    );
    let data = codec
        .file_for(&cx("op").with_kind(PayloadKind::ErrorData))
        .unwrap();
    assert!(data.ends_with("op.error-data.json"));
    // ARN segments that would climb out of the base are not used as names.
    let dots = "arn:aws:lambda:r:1:function:f:1/durable-execution/../x";
    let path = codec.file_for(&PayloadContext::new(dots, "op")).unwrap();
    assert_eq!(
        path.parent().unwrap().parent().unwrap(),
        Path::new("/mnt/s3")
    );
    assert!(!path.components().any(|c| c == Component::ParentDir));
}

#[test]
fn the_durable_execution_arn_is_parsed_as_aws_sdk_does() {
    assert_eq!(
        parse_arn("arn:aws:lambda:us-east-1:1:function:f:1/durable-execution/e/i"),
        Some(["f", "e", "i"])
    );
    assert_eq!(
        parse_arn("arn:aws-cn:lambda:::function:f:$LATEST/durable-execution/e:x/i:y"),
        Some(["f", "e:x", "i:y"])
    );
    for not in [
        "arn:aws:lambda:r:1:function:f/durable-execution/e/i",
        "arn:aws:lambda:r:1:function:f:1/durable-execution/e/i/j",
        "arn:aws:lambda:r:1:function:f:1/durable-execution/e",
        "arn:aws:lambda:r:1:function:f:1:2/durable-execution/e/i",
        "arn:aws:s3:r:1:function:f:1/durable-execution/e/i",
        "arn:aws:lambda:r:1:layer:f:1/durable-execution/e/i",
        "arn:aws:lambda:r:1:function::1/durable-execution/e/i",
        "",
    ] {
        assert_eq!(parse_arn(not), None, "{not}");
    }
}

#[test]
fn a_preview_goes_inline_beside_the_pointer_when_it_shows_something() {
    let dir = Dir::new("preview");
    let config = PreviewConfig::new(PreviewMode::ExcludeAll)
        .include("id")
        .mask("card");
    let codec = FileSystem::new(&dir.0).preview(move |v| build_preview(v, &config));
    let value = json!({"id": 7, "card": "4111", "lines": [{"sku": "é"}]});
    let payload = to_payload(&codec, &value, &cx("p")).unwrap();
    let file = dir.0.join("orders/run-7/0f1e2d/p.json");
    assert_eq!(
        payload,
        format!(
            "{{\"file\": \"{}\", \"preview\": {{\"card\": \"***\", \"id\": 7}}}}",
            file.to_str().unwrap()
        )
    );
    // Nothing shown: no preview key (an empty one is left out, as AWS's
    // `if preview:`).
    let nothing = FileSystem::new(&dir.0).preview(|_| Some(json!({})));
    let payload = to_payload(&nothing, &value, &cx("q")).unwrap();
    assert!(!payload.contains("\"preview\""), "{payload}");
    let back: Value = from_payload(&codec, &payload, &cx("q")).unwrap();
    assert_eq!(back, value);
}

#[test]
fn bad_envelopes_and_files_are_errors_that_say_what_is_wrong() {
    let dir = Dir::new("bad");
    let codec = FileSystem::new(&dir.0);
    let read = |payload: &str| {
        from_payload::<_, Value>(&codec, payload, &cx("x"))
            .unwrap_err()
            .to_string()
    };
    assert!(read("[1]").contains("not a JSON object"), "{}", read("[1]"));
    assert!(read("7").contains("not a JSON object"));
    assert!(read("{").contains("not a file system envelope"));
    assert!(read(r#"{"other": 1}"#).contains("neither \"file\" nor \"data\""));
    assert!(read(r#"{"file": 1}"#).contains("\"file\" is not a string"));
    assert!(read(r#"{"data": 1}"#).contains("\"data\" is not a string"));
    // Outside the base path, or climbing out of it: not read.
    let outside = read(r#"{"file": "/etc/passwd"}"#);
    assert!(
        outside.contains("outside this codec's base path"),
        "{outside}"
    );
    let climbing = format!(r#"{{"file": "{}/../x.json"}}"#, dir.0.to_str().unwrap());
    assert!(read(&climbing).contains("outside this codec's base path"));
    // A missing file names itself and the mount.
    let missing = format!(r#"{{"file": "{}/gone.json"}}"#, dir.0.to_str().unwrap());
    let message = read(&missing);
    assert!(
        message.contains("could not read")
            && message.contains("is the durable file system mounted"),
        "{message}"
    );
    // A file needs its execution and operation.
    let detached = to_payload(&codec, &1, &PayloadContext::DETACHED).unwrap_err();
    assert!(
        detached.to_string().contains("needs the execution"),
        "{detached}"
    );
    // An inline value written by another codec is that codec's mismatch.
    #[cfg(feature = "bincode")]
    {
        let payload = r#"{"data": "{\"a\":1}"}"#;
        let bin = FileSystem::new(&dir.0).inner(crate::Bincode);
        let err = from_payload::<_, u32>(&bin, payload, &cx("x")).unwrap_err();
        assert!(matches!(err, CodecError::Mismatch { .. }), "{err}");
    }
}

#[test]
fn python_json_dumps_escapes_and_separators() {
    let mut out = String::new();
    write_value(
        &json!({"k": ["a", 1, 2.5, true, null], "u": "\u{1F600}\u{7f}\u{1}/"}),
        &mut out,
    );
    assert_eq!(
        out,
        r#"{"k": ["a", 1, 2.5, true, null], "u": "\ud83d\ude00\u007f\u0001/"}"#
    );
}

#[test]
fn previews_follow_aws_rules() {
    let value = json!({
        "id": 1,
        "secret": {"token": "t", "id": 2},
        "items": [{"sku": "a", "price": 3}, {"sku": "b"}],
        "a.b": 4,
        "user": {"email": "e", "name": "n"}
    });
    // Include everything but what is excluded; excluded wins over masked.
    let config = PreviewConfig::new(PreviewMode::IncludeAll)
        .exclude("secret")
        .mask("secret")
        .mask(PreviewField::path("user.email"));
    assert_eq!(
        build_preview(&value, &config),
        Some(json!({
            "id": 1,
            "items": {"price": 3, "sku": "b"},
            "user": {"email": "***", "name": "n"}
        }))
    );
    // Anywhere matches any segment; a path only from the root.
    let config = PreviewConfig::new(PreviewMode::ExcludeAll).include("id");
    assert_eq!(
        build_preview(&value, &config),
        Some(json!({"id": 1, "secret": {"id": 2}}))
    );
    let config = PreviewConfig::new(PreviewMode::ExcludeAll).include(PreviewField::path("id"));
    assert_eq!(build_preview(&value, &config), Some(json!({"id": 1})));
    let config = PreviewConfig::new(PreviewMode::ExcludeAll)
        .include(PreviewField::new("secret.id", FieldMatch::Path));
    assert_eq!(
        build_preview(&value, &config),
        Some(json!({"secret": {"id": 2}}))
    );
    // Nothing shown, or not an object: none.
    let config = PreviewConfig::new(PreviewMode::ExcludeAll).include("absent");
    assert_eq!(build_preview(&value, &config), None);
    let all = PreviewConfig::new(PreviewMode::IncludeAll);
    assert_eq!(build_preview(&json!([1, 2]), &all), None);
    assert_eq!(build_preview(&json!({}), &all), None);
    // The budget: `"id":1,` is 7 bytes, `"items.price":3,` 16, over 2 for {}.
    let budget = PreviewConfig::new(PreviewMode::IncludeAll).max_preview_bytes(2 + 7 + 16);
    assert_eq!(
        build_preview(&value, &budget),
        Some(json!({"id": 1, "items": {"price": 3}}))
    );
    let tight = PreviewConfig::new(PreviewMode::IncludeAll).max_preview_bytes(2 + 6);
    assert_eq!(build_preview(&value, &tight), None);
}

#[test]
fn io_errors_that_may_pass_are_transient_the_others_permanent() {
    use std::io::{Error, ErrorKind};
    for kind in [
        ErrorKind::TimedOut,
        ErrorKind::Interrupted,
        ErrorKind::WouldBlock,
    ] {
        assert!(transient(&Error::from(kind)), "{kind:?}");
    }
    // EIO and ESTALE (a stale NFS handle, as EFS gives): transient.
    for errno in [5, 116] {
        assert!(transient(&Error::from_raw_os_error(errno)), "errno {errno}");
    }
    for kind in [
        ErrorKind::NotFound,
        ErrorKind::PermissionDenied,
        ErrorKind::InvalidData,
    ] {
        assert!(!transient(&Error::from(kind)), "{kind:?}");
    }
    // EROFS (Lambda's root, no file system mounted), ENOSPC, EISDIR.
    for errno in [30, 28, 21] {
        assert!(
            !transient(&Error::from_raw_os_error(errno)),
            "errno {errno}"
        );
    }
    // Through the codec: a missing file is permanent, a directory too.
    let dir = Dir::new("kinds");
    let codec = FileSystem::new(&dir.0);
    std::fs::create_dir_all(dir.0.join("sub.json")).unwrap();
    for path in ["gone.json", "sub.json"] {
        let envelope = format!(r#"{{"file": "{}"}}"#, dir.0.join(path).to_str().unwrap());
        let err = from_payload::<_, Value>(&codec, &envelope, &cx("x")).unwrap_err();
        assert!(matches!(err, CodecError::Decode { .. }), "{path}: {err}");
        assert!(!err.is_transient());
    }
}
