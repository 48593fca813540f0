#!/usr/bin/env bash
# Builds the browser runtime into runtime-wasm/js/dist/: the wasm module in two variants
# (simd128, and simd128 + relaxed-simd, whose fused multiply-add tract's matmul kernels use), the
# wasm-bindgen glue (--target web, one file for both variants), each module through wasm-opt -O3;
# and the OCR engine (tesseract.js-core's LSTM builds) into dist/tesseract/.
# The JS package (runtime-wasm/js) picks the best variant the browser validates at load time.
#
# Needs: the wasm32-unknown-unknown Rust target, wasm-bindgen-cli at the version Cargo.lock pins
# for the wasm-bindgen crate, and wasm-opt (the binaryen npm package pinned in runtime-wasm/js:
# npm ci --prefix runtime-wasm/js). .ci/run installs all three.
# Usage: runtime-wasm/build.sh [--variants "simd relaxed"]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

variants="simd relaxed"
while [ $# -gt 0 ]; do
    case "$1" in
        --variants) variants="$2"; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done

pinned="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
have="$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)"
if [ "$have" != "$pinned" ]; then
    echo "build.sh: wasm-bindgen-cli $pinned is needed (found '${have:-none}'):" >&2
    echo "    cargo install wasm-bindgen-cli --version $pinned" >&2
    exit 1
fi
# Debian's binaryen (108) cannot parse the final relaxed-SIMD opcodes ("invalid code after SIMD
# prefix: 272"), so the pinned npm build of binaryen is used: npm ci --prefix runtime-wasm/js.
wasm_opt="runtime-wasm/js/node_modules/.bin/wasm-opt"
if [ ! -x "$wasm_opt" ]; then
    wasm_opt="$(command -v wasm-opt || true)"
    version="$("${wasm_opt:-false}" --version 2>/dev/null | awk '{ print $3 }' || true)"
    if [ -z "$wasm_opt" ] || [ "${version:-0}" -lt 120 ] 2>/dev/null; then
        echo "build.sh: wasm-opt 120+ is needed (found '${version:-none}'): npm ci --prefix runtime-wasm/js" >&2
        exit 1
    fi
fi
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
    || { echo "build.sh: rustup target add wasm32-unknown-unknown" >&2; exit 1; }

out="runtime-wasm/js/dist"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
rm -rf "$out"
mkdir -p "$out"

for variant in $variants; do
    case "$variant" in
        simd) features="+simd128"; opt_features="--enable-simd" ;;
        relaxed) features="+simd128,+relaxed-simd"; opt_features="--enable-simd --enable-relaxed-simd" ;;
        *) echo "build.sh: unknown variant '$variant' (simd, relaxed)" >&2; exit 2 ;;
    esac
    echo "== wasm ($variant: $features)"
    # One target dir per variant: the flags differ, and sharing one would rebuild everything.
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C target-feature=$features" \
        cargo build --locked --target wasm32-unknown-unknown --profile wasm-release \
        -p spamlens-wasm --target-dir "target/wasm-$variant"
    wasm-bindgen --target web --no-typescript --out-dir "$stage/$variant" --out-name spamlens_wasm \
        "target/wasm-$variant/wasm32-unknown-unknown/wasm-release/spamlens_wasm.wasm"
    if [ -f "$out/spamlens_wasm.js" ]; then
        cmp -s "$stage/$variant/spamlens_wasm.js" "$out/spamlens_wasm.js" \
            || { echo "build.sh: the wasm-bindgen glue differs between variants" >&2; exit 1; }
    else
        cp "$stage/$variant/spamlens_wasm.js" "$out/spamlens_wasm.js"
    fi
    printf '%s\n' "$variant $opt_features" >>"$stage/opt-jobs"
done

# wasm-opt is single-threaded and takes minutes per module: optimise the variants side by side.
echo "== wasm-opt -O3 ($("$wasm_opt" --version))"
pids=()
while read -r variant opt_features; do
    # shellcheck disable=SC2086
    "$wasm_opt" -O3 $opt_features --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
        --enable-mutable-globals --enable-reference-types --enable-multivalue \
        "$stage/$variant/spamlens_wasm_bg.wasm" -o "$out/spamlens_$variant.wasm" &
    pids+=($!)
done <"$stage/opt-jobs"
for pid in "${pids[@]}"; do
    wait "$pid" || { echo "build.sh: wasm-opt failed" >&2; exit 1; }
done

# The OCR engine: tesseract.js-core's LSTM-only builds (Tesseract 5, Apache-2.0), pinned in
# runtime-wasm/js/package.json and package-lock.json (npm ci checks its integrity). The browser
# loads the ES-module wrapper (the same script with an export), Node the CommonJS original as .cjs
# (the package is "type": "module", so a .js there would be read as a module).
core_dir="runtime-wasm/js/node_modules/tesseract.js-core"
[ -f "$core_dir/package.json" ] \
    || { echo "build.sh: tesseract.js-core is missing: npm ci --prefix runtime-wasm/js" >&2; exit 1; }
mkdir -p "$out/tesseract"
for build in tesseract-core-simd-lstm tesseract-core-relaxedsimd-lstm; do
    cp "$core_dir/$build.wasm" "$out/tesseract/"
    cp "$core_dir/$build.js" "$out/tesseract/$build.cjs"
    { cat "$core_dir/$build.js"; printf '\nexport default TesseractCore;\n'; } >"$out/tesseract/$build.mjs"
done
cp "$core_dir/LICENSE" "$out/tesseract/LICENSE"
printf '%s\n' "tesseract.js-core $(node -p "require('./$core_dir/package.json').version" 2>/dev/null || echo '?')" \
    >"$out/tesseract/VERSION"

echo "== sizes"
printf '%-28s %12s %12s\n' file raw gzip
for f in "$stage"/*/spamlens_wasm_bg.wasm; do
    printf '%-28s %12d %12d\n' "before wasm-opt ($(basename "$(dirname "$f")"))" "$(stat -c %s "$f")" "$(gzip -9 -c "$f" | wc -c)"
done
for f in "$out"/*.wasm "$out"/*.js "$out"/tesseract/*-simd-lstm.wasm "$out"/tesseract/*-simd-lstm.mjs; do
    printf '%-28s %12d %12d\n' "$(basename "$f")" "$(stat -c %s "$f")" "$(gzip -9 -c "$f" | wc -c)"
done
