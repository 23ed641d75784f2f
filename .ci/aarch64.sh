#!/usr/bin/env bash
# aarch64 CI step: `cargo check` of the whole workspace for aarch64-unknown-linux-gnu, then the
# kernel crates' tests (tensor, conv, pool, tape) cross-compiled and run under qemu-aarch64.
#
# Installs what it needs itself, idempotently: the rustup target, and (only when missing) the
# Debian packages for the cross linker and the emulator. The linker and runner are set here in
# the environment, not in a .cargo/config, so normal builds are untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
TARGET=aarch64-unknown-linux-gnu

if ! rustup target list --installed | grep -qx "$TARGET"; then
    rustup target add "$TARGET"
fi

# qemu-user provides qemu-aarch64; libc6-dev-arm64-cross (pulled in by the gcc package) the
# sysroot under /usr/aarch64-linux-gnu that the runner's -L points at.
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
        gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"

cargo check --workspace --all-targets --target "$TARGET"
cargo test -p saliency-tensor -p saliency-conv -p saliency-pool -p saliency-tape --target "$TARGET"
