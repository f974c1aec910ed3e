//! Exclusive groups: at most one registered plugin per group
//! ([`Plugin::exclusive_groups`]).

use std::fmt;
use std::sync::Arc;

use super::{Plugin, Plugins};

/// The exclusive group of AWS's OpenTelemetry plugins' two views
/// (`aws-durable-execution-otel-view`, as AWS's Python plugin declares
/// it): one view per function. See [`Plugin::exclusive_groups`].
pub const OTEL_VIEW_GROUP: &str = "aws-durable-execution-otel-view";

/// A plugin refused at registration: another registered plugin is in one
/// of its exclusive groups ([`Plugin::exclusive_groups`]). Its message
/// names both plugins and the group, and says to keep one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginConflict {
    group: String,
    registered: String,
    refused: String,
}

impl PluginConflict {
    /// The exclusive group both plugins belong to.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The name ([`Plugin::name`]) of the plugin registered earlier, which
    /// stays registered.
    pub fn registered(&self) -> &str {
        &self.registered
    }

    /// The name of the plugin that was refused.
    pub fn refused(&self) -> &str {
        &self.refused
    }
}

impl fmt::Display for PluginConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The same plugin again (as its name says), or two of one group.
        if self.registered == self.refused {
            write!(
                f,
                "plugin {} is registered more than once in exclusive group '{}': \
                 register it only once",
                self.refused, self.group
            )
        } else {
            write!(
                f,
                "plugins {} and {} are mutually exclusive (exclusive group '{}'): \
                 register only one plugin of this group",
                self.registered, self.refused, self.group
            )
        }
    }
}

impl std::error::Error for PluginConflict {}

impl Plugins {
    /// Registers `plugin` after the others, unless one of them is in one of
    /// its exclusive groups.
    pub(crate) fn try_push<P: Plugin>(&mut self, plugin: P) -> Result<(), PluginConflict> {
        self.try_push_shared(Arc::new(plugin))
    }

    /// Whether this very plugin (the same allocation) is registered.
    pub(crate) fn contains(&self, plugin: &Arc<dyn Plugin>) -> bool {
        self.0.iter().any(|p| Arc::ptr_eq(p, plugin))
    }

    /// [`Plugins::try_push`] of a plugin already shared.
    pub(crate) fn try_push_shared(
        &mut self,
        plugin: Arc<dyn Plugin>,
    ) -> Result<(), PluginConflict> {
        for group in plugin.exclusive_groups() {
            let earlier = self.0.iter().find(|p| p.exclusive_groups().contains(group));
            if let Some(earlier) = earlier {
                return Err(PluginConflict {
                    group: (*group).to_owned(),
                    registered: earlier.name().to_owned(),
                    refused: plugin.name().to_owned(),
                });
            }
        }
        self.0.push(plugin);
        Ok(())
    }

    /// [`Plugins::try_push`] for the builders' `plugin`: a conflict is a
    /// mistake in the code that registers them, reported at once.
    #[track_caller]
    pub(crate) fn push<P: Plugin>(&mut self, plugin: P) {
        self.push_shared(Arc::new(plugin));
    }

    /// [`Plugins::push`] of a plugin already shared.
    #[track_caller]
    pub(crate) fn push_shared(&mut self, plugin: Arc<dyn Plugin>) {
        if let Err(conflict) = self.try_push_shared(plugin) {
            panic!("{conflict}");
        }
    }
}
