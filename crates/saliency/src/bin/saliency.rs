//! The `saliency` command line: a thin shell over the library (see `saliency::cli`).

#![forbid(unsafe_code)]

/// `mimalloc`, which `saliency::cli::main` tells to keep freed memory
/// (`saliency::allocator`).
#[global_allocator]
static ALLOCATOR: saliency::allocator::MiMalloc = saliency::allocator::MiMalloc;

fn main() -> std::process::ExitCode {
    saliency::cli::main()
}
