//! The kind registry: one line per scenario kind, in [`registry!`]. Every
//! list of kinds is derived from it — the [`Kind`] and [`KindSpec`] enums,
//! [`Kind::ALL`], ids, the suite parser's dispatch and its "key of another
//! kind" hints (`config`), and the executor of each kind (`exec`) — and each
//! rule a layer needs of a kind is a trait its spec type implements:
//! [`KindRules`] here, `exec::Executes` for the executor. A kind missing
//! from a list, or a trait left unimplemented, does not compile.
//!
//! Adding a kind: its spec in `src/plan/<kind>.rs` (or a folder) with
//! `impl KindRules`, its executor in `src/exec/<kind>.rs` with
//! `impl exec::Executes`, and its line below. docs/architecture.md lists the
//! steps.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{DeviceSel, ParamPoint};

/// The registry. A layer that needs every kind calls `registry!(its_macro)`,
/// and `its_macro!` receives the table below, one `Variant "id" SpecType,`
/// per kind.
macro_rules! registry {
    ($then:ident) => {
        $then! {
            Command        "command"         $crate::plan::command::CommandSpec,
            GpuKernel      "gpu_kernel"      $crate::plan::gpu_kernel::GpuKernelSpec,
            OomStress      "oom_stress"      $crate::plan::oom::OomStressSpec,
            BatchSweep     "batch_sweep"     $crate::plan::batch_sweep::BatchSweepSpec,
            WebsocketFlood "websocket_flood" $crate::plan::websocket::WebsocketFloodSpec,
        }
    };
}
pub(crate) use registry;

/// What the layers above need to know of a kind, implemented by its spec
/// (the `serde` struct of its keys, with `deny_unknown_fields`).
pub trait KindRules: DeserializeOwned + Into<KindSpec> {
    /// Whether a bless can tell a slow state of the machine from a run's
    /// shape alone (`compare::state`): true for kinds whose samples repeat
    /// one fixed piece of work (a program, a kernel, a forward pass), so a
    /// tight distribution is expected; false where it is wide by nature (a
    /// flood's round trips) or samples are few (an out-of-memory probe).
    const BLESS_CAN_TELL: bool;
    /// Whether every sample is a fresh process that sets nothing up for the
    /// next one (`command`): then warm-up only warms what outlives a
    /// process, and a run right after another of the same program needs
    /// none. The other kinds set up state in every run (a server, a model,
    /// a CUDA module) that their warm-up warms.
    const FRESH_PROCESSES: bool;
    /// Whether its metrics include values a program prints once per
    /// iteration, so a metric rule's `leak = true` can fit them (`command`).
    const LEAK_RULES: bool;
    /// The checks `serde` cannot do (combinations, ranges, placeholders),
    /// run by the suite parser after deserializing.
    fn check(&self, ctx: &CheckCtx<'_>) -> Result<(), SpecError>;
    /// The `{env:NAME}` the spec reads when it runs (`plan::env_ref`).
    fn env_uses(&self) -> Vec<crate::plan::env_ref::EnvUse> {
        Vec::new()
    }
}

/// What a spec's check may look at besides the spec itself.
#[derive(Clone, Copy, Debug)]
pub struct CheckCtx<'a> {
    pub device: DeviceSel,
    /// The sweep points (one empty point without `params`).
    pub points: &'a [ParamPoint],
    /// The names of the scenario's params, in declaration order.
    pub params: &'a [String],
}

/// Where in the scenario's table a problem is; the suite parser turns it
/// into a file:line:column.
#[derive(Clone, Debug, PartialEq)]
pub enum At {
    /// The `[[scenario]]` header.
    Scenario,
    /// A key's value (the header when the key is absent); a `table.key`
    /// path reaches into inline and sub-tables.
    Key(&'static str),
    /// Item `index` of the array under a key.
    Item(&'static str, usize),
    /// The placeholder `{name}`, in the first string under `within` that uses
    /// it (keys or `table.key` paths, searched in order; an array's items and
    /// a table's values in source order).
    Placeholder {
        within: &'static [&'static str],
        name: String,
    },
    /// The text `needle` in the first string under the `table.key` path
    /// that contains it (a table's values in source order).
    Within { path: &'static str, needle: String },
}

/// A spec that deserialized but makes no sense.
#[derive(Clone, Debug, PartialEq)]
pub struct SpecError {
    pub at: At,
    pub message: String,
    pub hint: Option<String>,
}

impl SpecError {
    pub fn new(at: At, message: impl Into<String>) -> Self {
        SpecError {
            at,
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }
}

/// The older `(key, message)` form of the spec checks; an empty key is the
/// scenario itself.
impl From<(&'static str, String)> for SpecError {
    fn from((key, message): (&'static str, String)) -> Self {
        let at = if key.is_empty() {
            At::Scenario
        } else {
            At::Key(key)
        };
        SpecError::new(at, message)
    }
}

macro_rules! define {
    ($($variant:ident $id:literal $spec:ty,)+) => {
        /// A scenario kind; `kind = "<id>"` in a suite.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Kind {
            $(#[serde(rename = $id)] $variant,)+
        }

        impl Kind {
            pub const ALL: [Kind; [$($id),+].len()] = [$(Kind::$variant),+];

            pub fn id(self) -> &'static str {
                match self {
                    $(Kind::$variant => $id,)+
                }
            }

            /// See [`KindRules::BLESS_CAN_TELL`].
            pub fn bless_can_tell(self) -> bool {
                match self {
                    $(Kind::$variant => <$spec as KindRules>::BLESS_CAN_TELL,)+
                }
            }

            /// See [`KindRules::LEAK_RULES`].
            pub fn takes_leak_rules(self) -> bool {
                match self {
                    $(Kind::$variant => <$spec as KindRules>::LEAK_RULES,)+
                }
            }

            /// See [`KindRules::FRESH_PROCESSES`].
            pub fn samples_are_fresh_processes(self) -> bool {
                match self {
                    $(Kind::$variant => <$spec as KindRules>::FRESH_PROCESSES,)+
                }
            }
        }

        /// What the executor of a kind needs: its spec.
        #[derive(Clone, Debug)]
        pub enum KindSpec {
            $($variant(Box<$spec>),)+
        }

        impl KindSpec {
            pub fn kind(&self) -> Kind {
                match self {
                    $(KindSpec::$variant(_) => Kind::$variant,)+
                }
            }
        }

        $(
            impl From<$spec> for KindSpec {
                fn from(spec: $spec) -> Self {
                    KindSpec::$variant(Box::new(spec))
                }
            }
        )+
    };
}
registry!(define);

impl Kind {
    pub fn from_id(s: &str) -> Option<Kind> {
        Self::ALL.into_iter().find(|k| k.id() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_are_the_ids() {
        for k in Kind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.id()));
            assert_eq!(serde_json::from_str::<Kind>(&json).unwrap(), k);
            assert_eq!(Kind::from_id(k.id()), Some(k));
        }
    }

    #[test]
    fn the_rules_of_todays_kinds() {
        let can_tell: Vec<_> = Kind::ALL
            .into_iter()
            .filter(|k| k.bless_can_tell())
            .collect();
        assert_eq!(can_tell, [Kind::Command, Kind::GpuKernel, Kind::BatchSweep]);
        let fresh: Vec<_> = Kind::ALL
            .into_iter()
            .filter(|k| k.samples_are_fresh_processes())
            .collect();
        assert_eq!(fresh, [Kind::Command]);
    }
}
