//! Options with a fixed set of values: parsed by the type's own `FromStr` (so the library and
//! the CLI accept the same names) and listed by clap as `[possible values: ...]` in `--help`,
//! with a wrong value refused before the command runs, naming the valid ones.

use std::str::FromStr;

use std::sync::LazyLock;

use clap::builder::{PossibleValuesParser, TypedValueParser};

use crate::bench::Workload;

/// A value parser for `T` that accepts exactly `names` (each parsed with `T::from_str`).
pub(crate) fn one_of<T>(names: &[&'static str]) -> impl TypedValueParser<Value = T>
where
    T: FromStr + Clone + Send + Sync + 'static,
    T::Err: std::fmt::Display,
{
    PossibleValuesParser::new(names).try_map(|name| T::from_str(&name).map_err(|e| e.to_string()))
}

/// Networks a command builds: the study's three.
pub(crate) const MODELS: &[&str] = &["deep", "alexnet", "medium"];

/// Data sets.
pub(crate) const DATA_SETS: &[&str] = &["fashion-mnist", "flowers", "flowers17"];

/// Optimizers.
pub(crate) const OPTIMIZERS: &[&str] = &["adam", "sgd"];

/// Training losses.
pub(crate) const LOSSES: &[&str] = &["cross-entropy", "double-softmax"];

/// SIMD tiers.
pub(crate) const TIERS: &[&str] = &["portable", "avx2", "avx512", "neon"];

/// Benchmark workloads: every [`Workload`]'s name, in order (from its `Display`, so a new
/// workload is listed without an edit here; clap keeps `'static` names, made once per process).
pub(crate) static WORKLOADS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    Workload::ALL
        .iter()
        .map(|w| &*Box::leak(w.to_string().into_boxed_str()))
        .collect()
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::LossKind;
    use crate::models::ModelKind;
    use tensor::cpu::Tier;

    /// Every listed name parses with the type's own parser, and the lists cover each type.
    #[test]
    fn every_listed_name_parses() {
        for name in MODELS {
            ModelKind::from_str(name).expect(name);
        }
        for name in LOSSES {
            LossKind::from_str(name).expect(name);
        }
        for name in TIERS {
            Tier::from_str(name).expect(name);
        }
        for name in WORKLOADS.iter() {
            Workload::from_str(name).expect(name);
        }
        assert_eq!(TIERS.len(), Tier::ALL.len());
    }
}
