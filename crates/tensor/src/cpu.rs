//! What the CPU can run, and which of it the engine runs: the SIMD [`Tier`].
//!
//! The build targets plain x86-64 (or aarch64), so wide vector code lives in functions compiled
//! with `#[target_feature]`, entered only after a check that the CPU has the instructions. Every
//! such check that chooses a kernel goes through a tier: the process's active one ([`tier`]),
//! or one a test passes explicitly (so tests can compare tiers in one process, in parallel).
//!
//! The active tier is the best one the CPU has ([`detected`]) unless `SALIENCY_SIMD` (read
//! once, then cached) or [`set_tier`] forces another. A tier the CPU lacks is refused with a
//! [`TierError`] naming what it has; the library itself never panics over it: [`tier`] falls
//! back to the detected tier (with one warning on stderr), and the CLI calls [`init_from_env`]
//! at start-up to report the error instead.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

/// The environment variable that forces a tier: `portable`, `avx2`, `avx512` or `neon`.
pub const SIMD_ENV: &str = "SALIENCY_SIMD";

/// A family of kernels the engine can run.
///
/// - `Portable`: the reference algorithms (im2col + GEMM, scalar and `wide` loops), no
///   `#[target_feature]` code of ours (`matrixmultiply` still picks its own kernels);
/// - `Avx2`, `Avx512`, `Neon`: the vector kernels (direct convolutions, fused ReLU + pooling,
///   layout copies, bias sums, Adam), each one body instantiated for the tier's instructions
///   (see [`crate::tiered!`]), plus the AVX2 narrow GEMMs on both x86 tiers. All three give the
///   same bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Portable code only.
    Portable,
    /// x86-64 with AVX2 and FMA.
    Avx2,
    /// x86-64 with AVX-512F, AVX2 and FMA.
    Avx512,
    /// aarch64 (NEON).
    Neon,
}

impl Tier {
    /// Every tier, in the order of the names [`Tier::parse`] accepts.
    pub const ALL: [Tier; 4] = [Tier::Portable, Tier::Avx2, Tier::Avx512, Tier::Neon];

    /// The name `SALIENCY_SIMD` and `--simd` use, and reports record.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Portable => "portable",
            Tier::Avx2 => "avx2",
            Tier::Avx512 => "avx512",
            Tier::Neon => "neon",
        }
    }

    /// The tier named `name` (see [`Tier::name`]); the error lists the valid names.
    pub fn parse(name: &str) -> Result<Tier, TierError> {
        Tier::ALL
            .into_iter()
            .find(|t| t.name() == name.trim().to_ascii_lowercase())
            .ok_or_else(|| TierError::Unknown(name.to_string()))
    }

    /// The CPU features the tier needs, as named in `/proc/cpuinfo`-style terms.
    pub fn needs(self) -> &'static str {
        match self {
            Tier::Portable => "nothing",
            Tier::Avx2 => "x86-64 avx2 and fma",
            Tier::Avx512 => "x86-64 avx512f, avx2 and fma",
            Tier::Neon => "aarch64 neon",
        }
    }

    /// True when this CPU can run the tier.
    pub fn supported(self) -> bool {
        match self {
            Tier::Portable => true,
            Tier::Avx2 => avx2_fma_cpu(),
            Tier::Avx512 => avx512_cpu(),
            Tier::Neon => cfg!(target_arch = "aarch64"),
        }
    }

    /// True when this tier runs the AVX-512 kernels: it is [`Tier::Avx512`] and the CPU has
    /// the features (so an unsupported tier passed in can never reach an illegal instruction).
    pub fn avx512(self) -> bool {
        self == Tier::Avx512 && avx512_cpu()
    }

    /// True when this tier runs the AVX2 + FMA kernels: [`Tier::Avx2`] or [`Tier::Avx512`], on
    /// a CPU that has them.
    pub fn avx2_fma(self) -> bool {
        matches!(self, Tier::Avx2 | Tier::Avx512) && avx2_fma_cpu()
    }

    /// True when this tier runs the vector kernels (direct convolutions, fused pooling, layout
    /// copies, Adam) at all: AVX-512, AVX2 + FMA or NEON on a CPU that has them. The portable
    /// tier runs the reference algorithms instead (im2col + GEMM, scalar loops), since the
    /// vector kernels' fused multiply-adds would be library calls without FMA hardware.
    pub fn vector_kernels(self) -> bool {
        self.avx2_fma() || (self == Tier::Neon && self.supported())
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Tier {
    type Err = TierError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tier::parse(s)
    }
}

/// Why a tier cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TierError {
    /// Not one of the names of [`Tier::ALL`].
    #[error("unknown SIMD tier {0:?}: expected portable, avx2, avx512 or neon")]
    Unknown(String),
    /// The CPU lacks the tier's instructions.
    #[error("SIMD tier {tier} needs {needs}, which this CPU lacks; it has: {has}", needs = tier.needs(), has = names(&supported_tiers()))]
    Unsupported {
        /// The tier asked for.
        tier: Tier,
    },
}

/// `portable, avx2`: tier names joined for messages.
fn names(tiers: &[Tier]) -> String {
    tiers
        .iter()
        .map(|t| t.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The tiers this CPU can run, portable first.
pub fn supported_tiers() -> Vec<Tier> {
    Tier::ALL.into_iter().filter(|t| t.supported()).collect()
}

/// The best tier this CPU can run.
pub fn detected() -> Tier {
    [Tier::Avx512, Tier::Avx2, Tier::Neon]
        .into_iter()
        .find(|t| t.supported())
        .unwrap_or(Tier::Portable)
}

/// `tier` if this CPU can run it, else [`TierError::Unsupported`].
pub fn check(tier: Tier) -> Result<Tier, TierError> {
    if tier.supported() {
        Ok(tier)
    } else {
        Err(TierError::Unsupported { tier })
    }
}

/// The tier `SALIENCY_SIMD` asks for (checked against the CPU), or the detected one when it is
/// unset or empty. Reads the environment each call; [`tier`] caches.
pub fn tier_from_env() -> Result<Tier, TierError> {
    match std::env::var(SIMD_ENV) {
        Ok(name) if !name.trim().is_empty() => check(Tier::parse(&name)?),
        _ => Ok(detected()),
    }
}

/// The active tier, encoded as its index in [`Tier::ALL`] plus one; 0 until first decided.
static ACTIVE: AtomicU8 = AtomicU8::new(0);

/// Makes `tier` the active tier for the rest of the process, if the CPU can run it. For
/// start-up code (the CLI's `--simd`): kernels chosen before the change may have kept buffers
/// laid out for the old tier's paths.
pub fn set_tier(tier: Tier) -> Result<Tier, TierError> {
    let tier = check(tier)?;
    ACTIVE.store(encode(tier), Ordering::Relaxed);
    Ok(tier)
}

/// Reads `SALIENCY_SIMD` and makes its tier active: the CLI's start-up check, which turns an
/// invalid value into an error rather than [`tier`]'s warning and fallback.
pub fn init_from_env() -> Result<Tier, TierError> {
    set_tier(tier_from_env()?)
}

/// The active tier: forced by [`set_tier`] or `SALIENCY_SIMD`, else [`detected`]. Decided on
/// first use and cached. An unusable `SALIENCY_SIMD` gives the detected tier and a warning.
pub fn tier() -> Tier {
    match ACTIVE.load(Ordering::Relaxed) {
        0 => {
            let chosen = tier_from_env().unwrap_or_else(|e| {
                let fallback = detected();
                eprintln!("warning: {e}; using {fallback}");
                fallback
            });
            // a racing first use decides the same tier from the same environment
            let _ =
                ACTIVE.compare_exchange(0, encode(chosen), Ordering::Relaxed, Ordering::Relaxed);
            decode(ACTIVE.load(Ordering::Relaxed))
        }
        code => decode(code),
    }
}

fn encode(tier: Tier) -> u8 {
    Tier::ALL
        .iter()
        .position(|&t| t == tier)
        .expect("a tier of ALL") as u8
        + 1
}

fn decode(code: u8) -> Tier {
    Tier::ALL[usize::from(code) - 1]
}

/// The kernels `matrixmultiply` (the GEMMs our own kernels do not take, and every f64 GEMM)
/// runs on this CPU: `avx512`, `avx2`, `avx` or `sse2` on x86-64, `neon` on aarch64, else
/// `generic`. It picks them at run time whatever the active [`Tier`], unless capped when it is
/// compiled (`MMTEST_FEATURE`, a comma-separated list of the x86 features it may use, which
/// this crate, built in the same cargo run, sees too). The tests are its sgemm dispatch's
/// (0.3): AVX-512F, else FMA and AVX2, else AVX.
pub fn matrixmultiply_kernels() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        let allowed = |feature: &str| match option_env!("MMTEST_FEATURE") {
            None | Some("") => true,
            Some(list) => list.split(',').any(|f| f.trim() == feature),
        };
        if allowed("avx512f") && is_x86_feature_detected!("avx512f") {
            "avx512"
        } else if allowed("fma")
            && allowed("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("avx2")
        {
            "avx2"
        } else if allowed("avx") && is_x86_feature_detected!("avx") {
            "avx"
        } else {
            "sse2"
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        "neon"
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "generic"
    }
}

/// True when the CPU has AVX-512F, AVX2 and FMA (whatever the active tier).
fn avx512_cpu() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// True when the CPU has AVX2 and FMA (whatever the active tier).
fn avx2_fma_cpu() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The AVX-512 mask of the first `n` of 16 lanes (`n <= 16`): a row's valid values in the f32
/// intrinsics kernels' masked loads and stores.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn first_lanes(n: usize) -> std::arch::x86_64::__mmask16 {
    debug_assert!(n <= 16);
    ((1u32 << n) - 1) as std::arch::x86_64::__mmask16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// matrixmultiply's kernels follow the CPU, not the tier: uncapped on an AVX-512 CPU they
    /// are its AVX-512 ones whatever `SALIENCY_SIMD` says.
    #[test]
    fn matrixmultiply_kernels_follow_the_cpu_unless_capped_at_build() {
        let kernels = matrixmultiply_kernels();
        #[cfg(target_arch = "x86_64")]
        {
            assert!(["avx512", "avx2", "avx", "sse2"].contains(&kernels));
            if option_env!("MMTEST_FEATURE").unwrap_or("").is_empty() {
                assert_eq!(kernels == "avx512", is_x86_feature_detected!("avx512f"));
            }
        }
        #[cfg(target_arch = "aarch64")]
        assert_eq!(kernels, "neon");
    }

    #[test]
    fn names_parse_back_to_their_tier() {
        for t in Tier::ALL {
            assert_eq!(Tier::parse(t.name()), Ok(t));
            assert_eq!(t.to_string().parse::<Tier>(), Ok(t));
        }
        assert_eq!(Tier::parse(" AVX512 "), Ok(Tier::Avx512));
        assert_eq!(Tier::parse("sse"), Err(TierError::Unknown("sse".into())));
    }

    #[test]
    fn portable_is_always_supported_and_detected_is_the_best_supported() {
        let have = supported_tiers();
        assert_eq!(have[0], Tier::Portable);
        assert!(detected().supported());
        assert!(have.contains(&detected()));
        if Tier::Avx512.supported() {
            assert!(Tier::Avx2.supported(), "AVX-512 here implies AVX2 + FMA");
            assert_eq!(detected(), Tier::Avx512);
        }
    }

    #[test]
    fn an_unsupported_tier_is_refused_naming_what_the_cpu_has() {
        // on any one CPU at least one of these is missing (x86 lacks neon, aarch64 lacks avx)
        let missing = [Tier::Neon, Tier::Avx512]
            .into_iter()
            .find(|t| !t.supported())
            .expect("no CPU has both neon and avx512");
        let err = check(missing).expect_err("refused");
        let msg = err.to_string();
        assert!(
            msg.contains(missing.name()) && msg.contains("it has: portable"),
            "{msg}"
        );
        assert!(
            !missing.avx512() && !missing.avx2_fma(),
            "an unsupported tier gates nothing on"
        );
        assert!(!Tier::Portable.avx512() && !Tier::Portable.avx2_fma());
    }
}
