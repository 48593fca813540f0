// Loads the spamlens WebAssembly module once per JS realm (page, worker or Node process), picking
// the fastest variant this engine validates: relaxed SIMD (fused multiply-add in tract's matmul
// kernels), else plain SIMD128. Both variants share one wasm-bindgen glue file.
import init, { Classifier, TextFilter, parseEmail, feedback, messageVerdict, version, simdLevel } from '../dist/spamlens_wasm.js';

// (func (result v128) v128.const 0 v128.const 0 v128.const 0 f32x4.relaxed_madd)
const RELAXED_SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00,
  0x0a, 0x3d, 0x01, 0x3b, 0x00,
  ...[0, 1, 2].flatMap(() => [0xfd, 0x0c, ...new Array(16).fill(0)]),
  0xfd, 0x85, 0x02, 0x0b,
]);
// (func (result v128) v128.const 0)
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00,
  0x0a, 0x16, 0x01, 0x14, 0x00, 0xfd, 0x0c, ...new Array(16).fill(0), 0x0b,
]);

const VARIANT_URLS = {
  relaxed: new URL('../dist/spamlens_relaxed.wasm', import.meta.url),
  simd: new URL('../dist/spamlens_simd.wasm', import.meta.url),
};

/** The variant this engine can run best: 'relaxed' or 'simd'; throws if it has no WebAssembly SIMD. */
export function bestVariant() {
  if (typeof WebAssembly !== 'object') {
    throw new Error('spamlens: this environment has no WebAssembly');
  }
  if (WebAssembly.validate(RELAXED_SIMD_PROBE)) return 'relaxed';
  if (WebAssembly.validate(SIMD_PROBE)) return 'simd';
  throw new Error('spamlens: this browser lacks WebAssembly SIMD (Chrome 91+, Firefox 89+, Safari 16.4+ have it)');
}

const isNode = typeof process === 'object' && typeof process.versions === 'object' && !!process.versions.node;

let loading = null;

/**
 * Initialises the module once; later calls share the first. `variant` ('relaxed' | 'simd') forces
 * one (benchmarks); `wasmUrl` overrides where the module is fetched from (a CDN, say).
 * Resolves to `{ Classifier, TextFilter, parseEmail, feedback, messageVerdict, version, simd, memoryBytes }`.
 */
export function loadWasm({ variant, wasmUrl } = {}) {
  if (!loading) {
    loading = (async () => {
      const chosen = variant ?? bestVariant();
      const url = wasmUrl ? new URL(wasmUrl, globalThis.location?.href) : VARIANT_URLS[chosen];
      if (!url) throw new Error(`spamlens: unknown wasm variant '${chosen}' (relaxed, simd)`);
      let source = url;
      if (isNode && url.protocol === 'file:') {
        // Node's fetch cannot read file: URLs; bundlers never see this branch's import.
        const fs = await import(/* webpackIgnore: true */ /* @vite-ignore */ 'node:fs/promises');
        source = await fs.readFile(url);
      }
      const exports = await init({ module_or_path: source });
      // Linear memory only grows, so its size is the realm's peak (the model load sets it).
      const memoryBytes = () => exports.memory.buffer.byteLength;
      return {
        Classifier,
        TextFilter,
        parseEmail,
        feedback,
        messageVerdict,
        version: version(),
        simd: simdLevel(),
        memoryBytes,
      };
    })();
    loading.catch(() => {
      loading = null;
    });
  }
  return loading;
}
