//! Previews: a compact object of chosen fields of a value, kept inline in
//! a file system envelope (the rules of AWS's Python SDK's `build_preview`).

use serde_json::{Map, Value};

use super::write_value;

/// Whether a preview starts from every field or from none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PreviewMode {
    /// Every field, less the excluded ones.
    IncludeAll,
    /// Only the included (and masked) fields.
    ExcludeAll,
}

/// How a [`PreviewField`] matches a field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FieldMatch {
    /// A field of that name at any depth (any segment of its dotted path).
    #[default]
    Anywhere,
    /// The field at exactly that dotted path from the root (`email` is the
    /// root's `email` only).
    Path,
}

/// A field rule of a [`PreviewConfig`]: a name or a dotted path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PreviewField {
    name: String,
    matching: FieldMatch,
}

impl PreviewField {
    /// A rule for `name`, matched as `matching` says.
    pub fn new(name: impl Into<String>, matching: FieldMatch) -> Self {
        PreviewField {
            name: name.into(),
            matching,
        }
    }

    /// Fields named `name` at any depth.
    pub fn anywhere(name: impl Into<String>) -> Self {
        PreviewField::new(name, FieldMatch::Anywhere)
    }

    /// The field at the dotted `path` from the root.
    pub fn path(path: impl Into<String>) -> Self {
        PreviewField::new(path, FieldMatch::Path)
    }

    fn matches(&self, path: &str) -> bool {
        match self.matching {
            FieldMatch::Path => path == self.name,
            FieldMatch::Anywhere => path.split('.').any(|segment| segment == self.name),
        }
    }
}

impl From<&str> for PreviewField {
    fn from(name: &str) -> Self {
        PreviewField::anywhere(name)
    }
}

/// Which fields of a value a preview shows ([`build_preview`]).
///
/// An excluded field is never shown, even if masked; a masked field is
/// shown (as the mask string) unless excluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewConfig {
    mode: PreviewMode,
    include: Vec<PreviewField>,
    exclude: Vec<PreviewField>,
    mask: Vec<PreviewField>,
    mask_string: String,
    max_bytes: usize,
}

impl PreviewConfig {
    /// Starting from every field or none, masking with `***`, at most 4,096
    /// bytes of preview (AWS's defaults).
    pub fn new(mode: PreviewMode) -> Self {
        PreviewConfig {
            mode,
            include: Vec::new(),
            exclude: Vec::new(),
            mask: Vec::new(),
            mask_string: "***".to_owned(),
            max_bytes: 4096,
        }
    }

    /// Shows this field (with [`PreviewMode::ExcludeAll`]).
    pub fn include(mut self, field: impl Into<PreviewField>) -> Self {
        self.include.push(field.into());
        self
    }

    /// Never shows this field (nor what it holds).
    pub fn exclude(mut self, field: impl Into<PreviewField>) -> Self {
        self.exclude.push(field.into());
        self
    }

    /// Shows this field as the mask string, whatever it holds.
    pub fn mask(mut self, field: impl Into<PreviewField>) -> Self {
        self.mask.push(field.into());
        self
    }

    /// What a masked field shows (`***` by default).
    pub fn mask_string(mut self, mask: impl Into<String>) -> Self {
        self.mask_string = mask.into();
        self
    }

    /// The most bytes of preview: fields are taken in order while their
    /// entries (`"path":value,`) fit.
    pub fn max_preview_bytes(mut self, max: usize) -> Self {
        self.max_bytes = max;
        self
    }

    fn matched(fields: &[PreviewField], path: &str) -> bool {
        fields.iter().any(|f| f.matches(path))
    }
}

/// A preview of `value` (a JSON object) by `config`'s rules: an object of
/// the shown fields at their paths, nested as in the value, under the byte
/// budget; none when no field shows or `value` is not an object.
///
/// As in AWS's SDK: field names with a dot are skipped (a dot separates
/// path segments); the fields of an array's elements are merged into one
/// object at the array's path, a later element's value replacing an
/// earlier one. Fields are taken in the value's order, which for a value
/// serialized by `serde_json` (without its `preserve_order` feature) is
/// the alphabetical order of the keys, where Python keeps the order the
/// object was built in: the budget may keep other fields than AWS's SDK
/// would for the same value.
///
/// ```
/// use durable_yield_codecs::files::{PreviewConfig, PreviewMode, PreviewField, build_preview};
/// use serde_json::json;
///
/// let order = json!({"id": 7, "customer": {"email": "a@b.c", "name": "Ann"}, "card": "4111"});
/// let config = PreviewConfig::new(PreviewMode::ExcludeAll)
///     .include(PreviewField::path("id"))
///     .include("name")
///     .mask("card");
/// assert_eq!(
///     build_preview(&order, &config),
///     Some(json!({"card": "***", "customer": {"name": "Ann"}, "id": 7}))
/// );
/// ```
pub fn build_preview(value: &Value, config: &PreviewConfig) -> Option<Value> {
    let Value::Object(_) = value else {
        return None;
    };
    let mut pairs: Vec<(String, Value)> = Vec::new();
    collect(value, "", config, &mut pairs);
    let mut size = 2; // "{}"
    let mut shown = Map::new();
    for (path, item) in pairs {
        let mut entry = String::with_capacity(path.len() + 8);
        write_value(&item, &mut entry);
        size += path.len() + entry.len() + 4; // "path":value,
        if size > config.max_bytes {
            break;
        }
        insert(&mut shown, &path, item);
    }
    (!shown.is_empty()).then_some(Value::Object(shown))
}

fn collect(value: &Value, prefix: &str, config: &PreviewConfig, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Array(items) => {
            for item in items {
                collect(item, prefix, config, out);
            }
        }
        Value::Object(fields) => {
            for (key, item) in fields {
                if key.contains('.') {
                    continue;
                }
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                let masked = PreviewConfig::matched(&config.mask, &path);
                let excluded = PreviewConfig::matched(&config.exclude, &path);
                let visible = !excluded
                    && (masked
                        || config.mode == PreviewMode::IncludeAll
                        || PreviewConfig::matched(&config.include, &path));
                if !visible {
                    if !excluded {
                        collect(item, &path, config, out);
                    }
                } else if masked {
                    out.push((path, Value::String(config.mask_string.clone())));
                } else if matches!(item, Value::Object(_) | Value::Array(_)) {
                    collect(item, &path, config, out);
                } else {
                    out.push((path, item.clone()));
                }
            }
        }
        _ => {}
    }
}

/// Sets `path` (dotted) in `root`, making (or replacing with) objects on
/// the way.
fn insert(root: &mut Map<String, Value>, path: &str, item: Value) {
    let mut node = root;
    let mut segments = path.split('.').peekable();
    while let Some(segment) = segments.next() {
        if segments.peek().is_none() {
            node.insert(segment.to_owned(), item);
            return;
        }
        let slot = node
            .entry(segment.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(next) = slot else {
            return;
        };
        node = next;
    }
}
