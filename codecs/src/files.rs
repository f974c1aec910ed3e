//! Payloads kept on a durable file system (Amazon EFS, or an S3 bucket
//! mounted with Amazon S3 Files), the checkpoint holding a pointer: for
//! values past the service's checkpoint size limit, or that should not sit
//! in the execution's history. The wire format is that of AWS's Python
//! SDK's `FileSystemSerDes` (3.0): the payload is a JSON envelope,
//!
//! * `{"data": "<the value's payload>"}`: the value inline (in
//!   [`StorageMode::Overflow`], when the envelope fits);
//! * `{"file": "<path>"}`: the value's payload is the file's content;
//! * `{"file": "<path>", "preview": {...}}`: the same, with a compact
//!   preview of the value inline, for the console and the API
//!   ([`FileSystem::preview`], [`build_preview`]).
//!
//! Envelopes are written byte for byte as the Python SDK writes them (its
//! `json.dumps`: `", "` and `": "` separators, non-ASCII escaped), under the
//! same paths: `<base>/<function>/<execution>/<invocation id>/<operation
//! id>.json` ([`PathEncoding::Uri`], the names taken from the execution's
//! ARN) or `<base>/<sha256(ARN)>/<sha256(operation id)>.json`
//! ([`PathEncoding::Hash`]). Either SDK reads what the other wrote when the
//! value's own payload is plain JSON: this codec wraps [`Json`] by default;
//! on the Python side configure `FileSystemSerDesConfig(serdes=JsonSerDes())`
//! (its default, `ExtendedTypeSerDes`, wraps objects in type tags).
//!
//! The file is written (to a temporary name, then renamed into place) when
//! the value is encoded, before its checkpoint is sent, and read whenever
//! the payload is decoded: on every replay. Use a file system that every
//! invocation of the function sees: never Lambda's `/tmp`, which is local
//! to one execution environment. Failing to write or read a file for a
//! reason that may pass (a timeout, a stale handle of a network file
//! system, an I/O error) is [`CodecError::Unavailable`]: the invocation
//! fails and the service invokes the function again (AWS's SDK raises no
//! such error here; its other codecs may, as `RetryableSerDesError`).
//! Other failures (a missing file, a refused permission, a read-only or
//! full file system) are permanent codec errors, as in AWS's SDK: the
//! step's result cannot be recorded, a recorded one cannot be read. The
//! codec reads only files under its own base path.
//!
//! ```
//! use durable_yield_codecs::files::{FileSystem, StorageMode};
//! use durable_yield_codecs::{PayloadContext, from_payload, to_payload};
//!
//! let dir = std::env::temp_dir().join(format!("fs-codec-doc-{}", std::process::id()));
//! let codec = FileSystem::new(&dir);
//! let arn = "arn:aws:lambda:us-east-1:123456789012:function:orders:1/durable-execution/run-7/0f1e";
//! let cx = PayloadContext::new(arn, "c4ca4238a0b92382");
//! let payload = to_payload(&codec, &vec![1, 2, 3], &cx).unwrap();
//! let file = dir.join("orders/run-7/0f1e/c4ca4238a0b92382.json");
//! assert_eq!(payload, format!("{{\"file\": \"{}\"}}", file.display()));
//! assert_eq!(std::fs::read_to_string(&file).unwrap(), "[1,2,3]");
//! let back: Vec<u32> = from_payload(&codec, &payload, &cx).unwrap();
//! assert_eq!(back, vec![1, 2, 3]);
//!
//! // Inline unless the envelope would pass the checkpoint size limit.
//! let overflow = FileSystem::new(&dir).mode(StorageMode::Overflow);
//! assert_eq!(to_payload(&overflow, &"hi", &cx).unwrap(), r#"{"data": "\"hi\""}"#);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{Codec, CodecError, Json, PayloadContext, PayloadKind, from_payload, to_payload};

/// The codec's id (in error messages; its payloads are untagged envelopes).
pub const FILE_SYSTEM_ID: &str = "fs";

/// The service's checkpoint size limit for one payload (256 KiB).
pub const CHECKPOINT_SIZE_LIMIT: usize = 256 * 1024;

/// The largest inline envelope [`StorageMode::Overflow`] writes: the
/// checkpoint size limit less 1 KiB for the rest of the update, as AWS's
/// SDK reckons it.
pub const OVERFLOW_THRESHOLD: usize = CHECKPOINT_SIZE_LIMIT - 1024;

/// When a value goes to a file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StorageMode {
    /// Every value, the checkpoint holding only the pointer (and the
    /// preview). The default, as in AWS's SDK.
    #[default]
    Always,
    /// Inline (`{"data": ...}`) unless the envelope is over
    /// [`OVERFLOW_THRESHOLD`] bytes.
    Overflow,
}

/// How the execution's directory and the operation's file are named.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PathEncoding {
    /// Readable: `<function>/<execution>/<invocation id>` from the ARN
    /// (the whole ARN percent-encoded as one directory if it does not have
    /// the durable execution ARN's shape), the operation id
    /// percent-encoded (RFC 3986 unreserved characters kept). The default.
    #[default]
    Uri,
    /// Fixed-length and always safe: the SHA-256 hex digests of the ARN
    /// (one directory) and of the operation id.
    Hash,
}

type PreviewFn = Arc<dyn Fn(&Value) -> Option<Value> + Send + Sync>;

/// A codec that keeps values in files on a durable file system (see the
/// [module docs](self)), their payloads made by the codec it wraps
/// ([`Json`] by default).
#[derive(Clone)]
pub struct FileSystem<C = Json> {
    base: Arc<PathBuf>,
    mode: StorageMode,
    paths: PathEncoding,
    preview: Option<PreviewFn>,
    inner: C,
}

impl<C> fmt::Debug for FileSystem<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSystem")
            .field("base", &self.base)
            .field("mode", &self.mode)
            .field("paths", &self.paths)
            .field("preview", &self.preview.is_some())
            .finish()
    }
}

impl FileSystem<Json> {
    /// Values as JSON in files under `base` (the mount point of a durable
    /// file system), every value in a file ([`StorageMode::Always`]),
    /// readable paths ([`PathEncoding::Uri`]), no preview.
    pub fn new(base: impl Into<PathBuf>) -> Self {
        FileSystem {
            base: Arc::new(base.into()),
            mode: StorageMode::default(),
            paths: PathEncoding::default(),
            preview: None,
            inner: Json,
        }
    }
}

impl<C: Codec> FileSystem<C> {
    /// When values go to a file.
    pub fn mode(mut self, mode: StorageMode) -> Self {
        self.mode = mode;
        self
    }

    /// How directories and files are named.
    pub fn path_encoding(mut self, paths: PathEncoding) -> Self {
        self.paths = paths;
        self
    }

    /// A preview of each value written to a file, kept inline in the
    /// envelope: `preview` gets the value as JSON and returns the preview
    /// (none, or an empty or false one, is left out, as AWS's SDK does).
    /// [`build_preview`] makes one from field rules.
    pub fn preview(
        mut self,
        preview: impl Fn(&Value) -> Option<Value> + Send + Sync + 'static,
    ) -> Self {
        self.preview = Some(Arc::new(preview));
        self
    }

    /// The payloads of values (in files and inline) made by `inner`
    /// instead: another SDK reads them only if they are plain JSON.
    pub fn inner<D: Codec>(self, inner: D) -> FileSystem<D> {
        FileSystem {
            base: self.base,
            mode: self.mode,
            paths: self.paths,
            preview: self.preview,
            inner,
        }
    }

    /// The base path files are written under.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Where the value of this payload context goes.
    pub fn file_for(&self, cx: &PayloadContext<'_>) -> Result<PathBuf, CodecError> {
        let (arn, op) = (cx.execution_arn(), cx.operation_id());
        if arn.is_empty() || op.is_empty() {
            return Err(CodecError::encode(
                FILE_SYSTEM_ID,
                "a value kept in a file needs the execution and the operation it is \
                 recorded for (the payload context names none)",
            ));
        }
        let mut path = PathBuf::from(&*self.base);
        match (self.paths, parse_arn(arn)) {
            (PathEncoding::Uri, Some(names)) => path.extend(names),
            _ => path.push(encode_segment(arn, self.paths)),
        }
        let suffix = match cx.kind() {
            PayloadKind::Result => "",
            PayloadKind::ErrorData => ".error-data",
            PayloadKind::Input => ".input",
        };
        path.push(format!("{}{suffix}.json", encode_segment(op, self.paths)));
        Ok(path)
    }

    fn write(&self, contents: &str, cx: &PayloadContext<'_>) -> Result<String, CodecError> {
        let path = self.file_for(cx)?;
        let message = |what: &str, e: &dyn fmt::Display| {
            format!(
                "could not {what} {}: {e} (is a durable file system mounted at {}?)",
                path.display(),
                self.base.display()
            )
        };
        let failed = |what: &str, e: std::io::Error| {
            let message = message(what, &e);
            if transient(&e) {
                CodecError::unavailable(FILE_SYSTEM_ID, message)
            } else {
                CodecError::encode(FILE_SYSTEM_ID, message)
            }
        };
        let text = path
            .to_str()
            .ok_or_else(|| {
                CodecError::encode(FILE_SYSTEM_ID, message("name", &"the path is not UTF-8"))
            })?
            .to_owned();
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(CodecError::encode(
                FILE_SYSTEM_ID,
                message("name", &"the path has no directory"),
            ));
        };
        std::fs::create_dir_all(dir).map_err(|e| failed("create the directory of", e))?;
        // Written whole under another name, then renamed into place: a
        // reader never sees half a file.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let temporary = dir.join(format!(
            ".{}.{}.{}.tmp",
            name.to_string_lossy(),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&temporary, contents).map_err(|e| failed("write", e))?;
        if let Err(e) = std::fs::rename(&temporary, &path) {
            let _ = std::fs::remove_file(&temporary);
            return Err(failed("write", e));
        }
        Ok(text)
    }

    /// `path` if it is a file under the base path.
    fn readable<'p>(&self, path: &'p str) -> Result<&'p Path, CodecError> {
        let file = Path::new(path);
        let inside = file.starts_with(&*self.base)
            && !file
                .components()
                .any(|c| matches!(c, Component::ParentDir | Component::CurDir));
        if inside {
            Ok(file)
        } else {
            Err(CodecError::decode(
                FILE_SYSTEM_ID,
                format!(
                    "the payload points at {path}, outside this codec's base path {}: \
                     read it with a FileSystem codec whose base is where it was written",
                    self.base.display()
                ),
            ))
        }
    }
}

impl<C: Codec> Codec for FileSystem<C> {
    fn id(&self) -> &str {
        FILE_SYSTEM_ID
    }

    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        cx: &PayloadContext<'_>,
    ) -> Result<Vec<u8>, CodecError> {
        let payload = to_payload(&self.inner, value, cx)?;
        // Escaping only lengthens it: a payload longer than the threshold
        // goes to a file without building the inline envelope first.
        let may_fit = payload.len() + r#"{"data": ""}"#.len() <= OVERFLOW_THRESHOLD;
        if self.mode == StorageMode::Overflow && may_fit {
            let mut inline = String::with_capacity(payload.len() + 16);
            inline.push_str("{\"data\": ");
            write_str(&payload, &mut inline);
            inline.push('}');
            if inline.len() <= OVERFLOW_THRESHOLD {
                return Ok(inline.into_bytes());
            }
        }
        let path = self.write(&payload, cx)?;
        let mut envelope = String::with_capacity(path.len() + 16);
        envelope.push_str("{\"file\": ");
        write_str(&path, &mut envelope);
        if let Some(preview) = &self.preview {
            let json = serde_json::to_value(value).map_err(|e| {
                CodecError::encode(FILE_SYSTEM_ID, format!("the preview's value: {e}"))
            })?;
            if let Some(preview) = preview(&json).filter(truthy) {
                envelope.push_str(", \"preview\": ");
                write_value(&preview, &mut envelope);
            }
        }
        envelope.push('}');
        Ok(envelope.into_bytes())
    }

    fn decode<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        cx: &PayloadContext<'_>,
    ) -> Result<T, CodecError> {
        let not_envelope = |why: &dyn fmt::Display| {
            CodecError::decode(
                FILE_SYSTEM_ID,
                format!(
                    "not a file system envelope ({{\"file\": ...}} or {{\"data\": ...}}): {why}"
                ),
            )
        };
        let envelope: Value = serde_json::from_slice(bytes).map_err(|e| not_envelope(&e))?;
        let Value::Object(fields) = envelope else {
            return Err(not_envelope(&"not a JSON object"));
        };
        if let Some(file) = fields.get("file") {
            let Value::String(path) = file else {
                return Err(not_envelope(&"\"file\" is not a string"));
            };
            let path = self.readable(path)?;
            let contents = std::fs::read_to_string(path).map_err(|e| {
                let message = format!(
                    "could not read {}: {e} (is the durable file system mounted at {}?)",
                    path.display(),
                    self.base.display()
                );
                if transient(&e) {
                    CodecError::unavailable(FILE_SYSTEM_ID, message)
                } else {
                    CodecError::decode(FILE_SYSTEM_ID, message)
                }
            })?;
            return from_payload(&self.inner, &contents, cx);
        }
        match fields.get("data") {
            Some(Value::String(data)) => from_payload(&self.inner, data, cx),
            Some(_) => Err(not_envelope(&"\"data\" is not a string")),
            None => Err(not_envelope(&"it holds neither \"file\" nor \"data\"")),
        }
    }

    fn is_text(&self) -> bool {
        true
    }

    /// Untagged: the envelope is the payload, as AWS's SDK writes it.
    fn tagged(&self) -> bool {
        false
    }
}

/// Whether an I/O error may pass (a timeout, a stalled or stale network
/// file system, an I/O error of the device): the invocation is retried
/// ([`CodecError::Unavailable`]). A missing file, a refused permission, a
/// read-only or full file system, a name or data the file system rejects
/// are permanent: retrying would not help.
fn transient(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    !matches!(
        error.kind(),
        NotFound
            | PermissionDenied
            | AlreadyExists
            | InvalidInput
            | InvalidData
            | Unsupported
            | OutOfMemory
            | NotADirectory
            | IsADirectory
            | DirectoryNotEmpty
            | ReadOnlyFilesystem
            | StorageFull
            | FileTooLarge
    )
}

/// The function, execution and invocation id of a durable execution ARN
/// (`arn:<partition>:lambda:<region>:<account>:function:<function>:<version>/durable-execution/<execution>/<invocation id>`,
/// AWS's SDK's pattern), none of them `.` or `..`.
fn parse_arn(arn: &str) -> Option<[&str; 3]> {
    let mut fields = arn.splitn(6, ':');
    let (Some("arn"), Some(_), Some("lambda"), Some(_), Some(_), Some(rest)) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return None;
    };
    let rest = rest.strip_prefix("function:")?;
    let (function, rest) = rest.split_once(':')?;
    let (version, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("durable-execution/")?;
    let (execution, invocation) = rest.split_once('/')?;
    let names = [function, execution, invocation];
    let plain = |s: &str| !s.is_empty() && !s.contains('/');
    let valid = plain(function)
        && !function.contains(':')
        && plain(version)
        && !version.contains(':')
        && names.iter().all(|s| plain(s) && *s != "." && *s != "..");
    valid.then_some(names)
}

/// A path segment: percent-encoded (all but RFC 3986's unreserved
/// characters, as Python's `quote(value, safe="")`) or hashed.
fn encode_segment(value: &str, paths: PathEncoding) -> String {
    match paths {
        PathEncoding::Hash => Sha256::digest(value.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        PathEncoding::Uri => {
            let mut out = String::with_capacity(value.len());
            for &b in value.as_bytes() {
                if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~') {
                    out.push(b as char);
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            out
        }
    }
}

/// Python's truthiness of a JSON value (`if preview:`).
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `value` as Python's `json.dumps` writes it with its defaults (as AWS's
/// Python SDK writes envelopes and its runner writes payloads): `", "` and
/// `": "` separators, every character outside printable ASCII escaped
/// (`\n`, `\"`, `\b`, `\u00e9`, surrogate pairs past U+FFFF). Numbers as
/// `serde_json` writes them: a float may differ from Python's `repr`
/// (`1e16` for `1e+16`).
///
/// ```
/// use durable_yield_codecs::files::python_json;
/// let value = serde_json::json!({"a": [1, "é\n"], "b": null});
/// assert_eq!(python_json(&value), r#"{"a": [1, "\u00e9\n"], "b": null}"#);
/// ```
pub fn python_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

/// [`python_json`] into `out`.
pub(crate) fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            out.push('{');
            for (i, (key, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(key, out);
                out.push_str(": ");
                write_value(item, out);
            }
            out.push('}');
        }
    }
}

/// A JSON string as Python's `json.dumps` (with `ensure_ascii`) writes it.
fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

mod preview;
pub use preview::{FieldMatch, PreviewConfig, PreviewField, PreviewMode, build_preview};

#[cfg(test)]
mod tests;
