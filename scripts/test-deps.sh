#!/usr/bin/env bash
# Installs everything the tests need, each piece only when it is missing, so a second run is fast
# and a fresh machine of this kind (Debian 12, rustup, network access to the registries) needs
# nothing installed by hand: the Rust wasm target and lint components, Python's onnxruntime,
# pillow, numpy, pyarrow and pandas (the independent reference checks), the Debian packages
# (Tesseract and its trained data via scripts/system-packages.sh, DejaVu fonts for the plots,
# Chromium and Node for the browser tests, rspamd and SpamAssassin for the mail-filter
# integration tests), wasm-bindgen-cli at the version Cargo.lock pins, and the npm packages
# (binaryen's wasm-opt, playwright-core). Called by scripts/test.sh (the README's test command).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PIP_DISABLE_PIP_VERSION_CHECK=1
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "test-deps.sh: run as root (or install sudo) to install Debian packages" >&2; exit 1; }
    sudo="sudo"
fi
# Installs the Debian packages not yet installed; a stale package list is refreshed once.
apt_install() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "== installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
        || { $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
}

echo "== Rust: the toolchain rust-toolchain.toml pins, the wasm target, rustfmt and clippy"
rustup show active-toolchain
rustup target add wasm32-unknown-unknown >/dev/null
rustup component add rustfmt clippy >/dev/null

echo "== Debian: Tesseract and its trained data, fonts, Chromium, Node, rspamd, SpamAssassin"
scripts/system-packages.sh
apt_install fonts-dejavu-core chromium rspamd spamassassin curl
# Node.js and npm only when absent: a NodeSource nodejs bundles npm, and asking apt for Debian's
# npm beside it fails with "held broken packages".
command -v node >/dev/null || apt_install nodejs
command -v npm >/dev/null || apt_install npm
/usr/bin/chromium --version

echo "== Python reference packages (onnxruntime, pillow, numpy, pyarrow, pandas)"
if ! python3 -c "import onnxruntime, PIL, numpy, pyarrow, pandas" 2>/dev/null; then
    python3 -m pip install --quiet --root-user-action=ignore onnxruntime pillow numpy pyarrow pandas
fi
# Schemathesis: runtime-native/tests/openapi_schemathesis.rs fuzzes the server against its OpenAPI document.
if ! command -v schemathesis >/dev/null; then
    python3 -m pip install --quiet --root-user-action=ignore schemathesis
fi

echo "== wasm-bindgen-cli at the version Cargo.lock pins (cached in ~/.cargo/bin)"
pinned="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }')" != "$pinned" ]; then
    # Not --locked: its lockfile pins a webpki-roots release the registry no longer serves.
    cargo install --quiet wasm-bindgen-cli --version "$pinned"
fi

echo "== npm packages (binaryen's wasm-opt for the browser build; playwright-core for the browser tests)"
# `npm ci` only when the lockfile changed since the last install (its sha256 is kept beside node_modules).
for dir in runtime-wasm/js tests/browser; do
    stamp="$dir/node_modules/.spamlens-lock-sha256"
    want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        npm ci --prefix "$dir" --no-audit --no-fund
        echo "$want" > "$stamp"
    fi
done
