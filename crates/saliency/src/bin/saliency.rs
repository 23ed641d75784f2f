//! The `saliency` command line: a thin shell over the library (see `saliency::cli`).

fn main() -> std::process::ExitCode {
    saliency::cli::main()
}
