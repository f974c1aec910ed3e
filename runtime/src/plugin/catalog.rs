//! Plugins turned on by name at cold start: the `DURABLE_EXECUTION_PLUGINS`
//! environment variable, as AWS's SDKs read it ([`PluginCatalog`]).

use std::fmt;
use std::sync::Arc;

use super::{Plugin, PluginConflict, Plugins};

/// The environment variable that names the plugins to turn on, comma
/// separated (`otel,metrics`), as AWS's SDKs read it.
pub const PLUGINS_ENV: &str = "DURABLE_EXECUTION_PLUGINS";

type MakePlugin = Arc<dyn Fn() -> Arc<dyn Plugin> + Send + Sync>;

/// The plugins a function can turn on by name, without a new build: the
/// names in [`PLUGINS_ENV`] (`DURABLE_EXECUTION_PLUGINS`) are looked up
/// here at cold start, as AWS's SDKs look them up among the plugin
/// packages installed with the function. A Rust binary cannot load code it
/// was not built with, so the catalog lists what it was built with; the
/// environment chooses among them.
///
/// Plugins named this way are registered after the ones registered in
/// code, in the order named; exclusive groups apply to all of them
/// ([`Plugin::exclusive_groups`]). A plugin built by [`PluginCatalog::add`]
/// is a new one, registered beside any registered in code (its exclusive
/// groups refuse it if one of them is taken, as `OtelPlugin`'s do, with a
/// message that says to keep one). A plugin listed with
/// [`PluginCatalog::add_shared`] is the very object: when that same one
/// was registered in code (`plugin_shared`), naming it changes nothing but
/// a warning, as AWS's Python SDK skips a factory registered both ways.
///
/// ```
/// use durable_yield::plugin::{InvocationHooks, InvocationStart, Plugin, PluginCatalog};
/// use durable_yield::{BoxError, LocalRunner};
///
/// struct Audit;
/// impl Plugin for Audit {
///     fn invocation(&self, _: &InvocationStart<'_>) -> Result<Box<dyn InvocationHooks>, BoxError> {
///         struct Hooks;
///         impl InvocationHooks for Hooks {}
///         Ok(Box::new(Hooks))
///     }
///     fn name(&self) -> &str {
///         "audit"
///     }
/// }
///
/// let catalog = PluginCatalog::new().add("audit", || Audit);
/// // On Lambda: `DurableHandler::new(workflow).plugins_from_env(&catalog)?`.
/// let runner = LocalRunner::new().plugins_named(&catalog, "audit").unwrap();
/// # let _ = runner;
/// let unknown = LocalRunner::new().plugins_named(&catalog, "audit, metrics").unwrap_err();
/// assert_eq!(
///     unknown.to_string(),
///     "DURABLE_EXECUTION_PLUGINS names plugin 'metrics', which this function was not \
///      built with (its catalog has: audit): add it to the PluginCatalog, or remove it \
///      from DURABLE_EXECUTION_PLUGINS"
/// );
/// ```
#[derive(Clone, Default)]
pub struct PluginCatalog {
    entries: Vec<(String, MakePlugin)>,
}

impl fmt::Debug for PluginCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(name, _)| name))
            .finish()
    }
}

impl PluginCatalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lists a plugin under `name`: `make` builds it when the name is
    /// configured (once, at cold start). A second entry under the same
    /// name replaces the first.
    pub fn add<P, F>(self, name: impl Into<String>, make: F) -> Self
    where
        P: Plugin,
        F: Fn() -> P + Send + Sync + 'static,
    {
        self.listed(
            name.into(),
            Arc::new(move || Arc::new(make()) as Arc<dyn Plugin>),
        )
    }

    /// Lists `plugin` itself under `name`, already built: when the name is
    /// configured, this very plugin is registered, unless the same one was
    /// registered in code (`DurableHandler::plugin_shared`,
    /// `LocalRunner::plugin_shared`): then it is skipped with a warning,
    /// not refused by its exclusive groups. A second entry under the same
    /// name replaces the first.
    ///
    /// ```
    /// use std::sync::Arc;
    /// # use durable_yield::plugin::{InvocationHooks, InvocationStart, Plugin};
    /// # use durable_yield::BoxError;
    /// # struct Audit;
    /// # impl Plugin for Audit {
    /// #     fn invocation(&self, _: &InvocationStart<'_>) -> Result<Box<dyn InvocationHooks>, BoxError> {
    /// #         struct Hooks;
    /// #         impl InvocationHooks for Hooks {}
    /// #         Ok(Box::new(Hooks))
    /// #     }
    /// # }
    /// use durable_yield::LocalRunner;
    /// use durable_yield::plugin::PluginCatalog;
    ///
    /// let audit = Arc::new(Audit);
    /// let catalog = PluginCatalog::new().add_shared("audit", audit.clone());
    /// // Registered in code and named as well: registered once.
    /// let runner = LocalRunner::new()
    ///     .plugin_shared(audit)
    ///     .plugins_named(&catalog, "audit")
    ///     .unwrap();
    /// # let _ = runner;
    /// ```
    pub fn add_shared<P: Plugin>(self, name: impl Into<String>, plugin: Arc<P>) -> Self {
        let plugin: Arc<dyn Plugin> = plugin;
        self.listed(name.into(), Arc::new(move || plugin.clone()))
    }

    /// Lists `make` under `name`, replacing an entry of that name.
    fn listed(mut self, name: String, make: MakePlugin) -> Self {
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = make,
            None => self.entries.push((name, make)),
        }
        self
    }

    /// The names it lists, in the order they were added.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(name, _)| name.as_str())
    }

    /// The value of [`PLUGINS_ENV`] (empty when unset).
    #[cfg(feature = "lambda")]
    pub(crate) fn configured() -> String {
        std::env::var(PLUGINS_ENV).unwrap_or_default()
    }

    /// Registers on `plugins` the plugins `configured` names (the value of
    /// [`PLUGINS_ENV`]). Nothing is registered unless every name is valid
    /// and no two plugins conflict.
    pub(crate) fn register(
        &self,
        plugins: &mut Plugins,
        configured: &str,
    ) -> Result<(), PluginLoadError> {
        let names = parse(configured)?;
        let mut chosen = Vec::with_capacity(names.len());
        for name in names {
            let Some((_, make)) = self.entries.iter().find(|(n, _)| n == name) else {
                return Err(PluginLoadError::Unknown {
                    name: name.to_owned(),
                    known: self.names().map(str::to_owned).collect(),
                });
            };
            chosen.push((name, make()));
        }
        let mut all = plugins.clone();
        for (name, plugin) in chosen {
            if all.contains(&plugin) {
                tracing::warn!(
                    plugin = name,
                    "skipping plugin '{name}' named in {PLUGINS_ENV}: the same plugin is \
                     already registered"
                );
                continue;
            }
            all.try_push_shared(plugin)
                .map_err(PluginLoadError::Conflict)?;
        }
        *plugins = all;
        Ok(())
    }
}

/// The names in a value of [`PLUGINS_ENV`]: none for an empty or blank
/// value; otherwise comma separated, each trimmed, none empty or repeated.
fn parse(configured: &str) -> Result<Vec<&str>, PluginLoadError> {
    if configured.trim().is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = configured.split(',').map(str::trim).collect();
    if names.iter().any(|n| n.is_empty()) {
        return Err(PluginLoadError::Malformed(configured.to_owned()));
    }
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(PluginLoadError::Duplicate((*name).to_owned()));
        }
    }
    Ok(names)
}

/// Why the plugins named in [`PLUGINS_ENV`] could not be turned on: a
/// configuration error, reported at cold start (AWS's SDKs raise
/// `PluginLoadError` there too). Its message says what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PluginLoadError {
    /// The value has an empty name (`a,,b`, `a,`).
    Malformed(String),
    /// A name appears twice.
    Duplicate(String),
    /// A name the catalog does not list.
    Unknown {
        /// The name.
        name: String,
        /// The names the catalog lists.
        known: Vec<String>,
    },
    /// A named plugin shares an exclusive group with another registered
    /// plugin.
    Conflict(PluginConflict),
}

impl fmt::Display for PluginLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginLoadError::Malformed(value) => write!(
                f,
                "{PLUGINS_ENV} must hold non-empty, comma-separated plugin names, not {value:?}"
            ),
            PluginLoadError::Duplicate(name) => write!(
                f,
                "{PLUGINS_ENV} names plugin '{name}' more than once: name it once"
            ),
            PluginLoadError::Unknown { name, known } => {
                let known = if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                };
                write!(
                    f,
                    "{PLUGINS_ENV} names plugin '{name}', which this function was not built \
                     with (its catalog has: {known}): add it to the PluginCatalog, or remove \
                     it from {PLUGINS_ENV}"
                )
            }
            PluginLoadError::Conflict(conflict) => {
                write!(
                    f,
                    "{conflict} (registered in code or named in {PLUGINS_ENV})"
                )
            }
        }
    }
}

impl std::error::Error for PluginLoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PluginLoadError::Conflict(conflict) => Some(conflict),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_comma_separated_trimmed_non_empty_and_unique() {
        assert_eq!(parse("").unwrap(), Vec::<&str>::new());
        assert_eq!(parse("  ").unwrap(), Vec::<&str>::new());
        assert_eq!(parse(" a , b,c").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            parse("a,,b").unwrap_err().to_string(),
            "DURABLE_EXECUTION_PLUGINS must hold non-empty, comma-separated plugin names, \
             not \"a,,b\""
        );
        assert!(matches!(parse("a,"), Err(PluginLoadError::Malformed(_))));
        assert_eq!(
            parse("a, b ,a").unwrap_err().to_string(),
            "DURABLE_EXECUTION_PLUGINS names plugin 'a' more than once: name it once"
        );
    }
}
