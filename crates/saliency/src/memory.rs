//! Memory estimates checked before large allocations, so an option that asks for more memory
//! than the machine has gets an error naming the option instead of an allocation abort.

use crate::models::{layer_table, Model};
use tensor::Float;

/// Bytes this process may still allocate: the smallest of the kernel's `MemAvailable`, the
/// cgroup limit (`memory.max` minus `memory.current`) and the address-space limit (`ulimit -v`,
/// minus the address space in use), of those that can be read.
pub fn available_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("MemAvailable:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    let read = |f: &str| -> Option<u64> {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{f}"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
    };
    // "max" (no limit) does not parse and is skipped.
    let cgroup =
        read("memory.max").map(|max| max.saturating_sub(read("memory.current").unwrap_or(0)));
    [meminfo, cgroup, address_space_left()]
        .into_iter()
        .flatten()
        .min()
}

/// What `ulimit -v` (RLIMIT_AS, soft) leaves of this process's address space, `None` without a
/// limit: under one an allocation fails (and the process aborts) long before memory runs out.
fn address_space_left() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    address_space_left_from(&limits, &status)
}

/// [`address_space_left`] from the texts of `/proc/self/limits` and `/proc/self/status`.
fn address_space_left_from(limits: &str, status: &str) -> Option<u64> {
    // "Max address space   <soft>   <hard>   bytes"; "unlimited" does not parse.
    let limit: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    let used_kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmSize:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(limit.saturating_sub(used_kib * 1024))
}

/// Floats one image occupies on its way through `model`: the input plus every layer's output.
pub fn activation_floats<T: Float>(model: &Model<T>) -> u64 {
    let input: usize = model.input.iter().product();
    input as u64
        + layer_table(model)
            .iter()
            .map(|r| r.output.iter().product::<usize>() as u64)
            .sum::<u64>()
}

/// A size in human units.
pub fn show_bytes(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else {
        format!("{:.0} MB", (b / 1e6).max(1.0))
    }
}

/// Refuses `needed` bytes beyond what is available, naming `option` and its `value`, what the
/// memory is for, and the largest value that would fit (`needed` grows linearly with `value`).
pub fn check(option: &str, value: u64, what: &str, needed: f64) -> Result<(), String> {
    let Some(available) = available_bytes() else {
        return Ok(());
    };
    if needed <= available as f64 {
        return Ok(());
    }
    let fits = (value as f64 * available as f64 / needed).floor() as u64;
    Err(format!(
        "{option} {value}: {what} needs about {} (estimated from the layer sizes), more than the {} \
         of memory available; use a smaller {option} (at most about {})",
        show_bytes(needed),
        show_bytes(available as f64),
        fits.max(1)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelKind;

    #[test]
    fn an_absurd_request_is_refused_naming_the_option() {
        let model: Model<f32> = ModelKind::Deep.build([1, 28, 28], 10, 0).unwrap();
        let per = activation_floats(&model);
        assert!(per > 784, "{per}");
        let err = check(
            "--batch-size",
            100_000_000,
            "the batch",
            1e8 * per as f64 * 4.0,
        )
        .unwrap_err();
        assert!(
            err.contains("--batch-size 100000000") && err.contains("at most about"),
            "{err}"
        );
        assert!(check("--batch-size", 16, "the batch", 16.0 * per as f64 * 4.0).is_ok());
    }

    #[test]
    fn an_address_space_limit_counts_what_is_left_of_it() {
        let status = "Name:\tsaliency\nVmPeak:\t  900000 kB\nVmSize:\t  500000 kB\n";
        let limited =
            "Max cpu time              unlimited            unlimited            seconds\n\
                       Max address space         1536000000           unlimited            bytes\n";
        assert_eq!(
            address_space_left_from(limited, status),
            Some(1_536_000_000 - 512_000_000)
        );
        let unlimited =
            "Max address space         unlimited            unlimited            bytes\n";
        assert_eq!(address_space_left_from(unlimited, status), None);
    }
}
