// Where the model bytes come from: given bytes, the Cache API (keyed by the model's sha256, so a
// returning user does not download ~100 MB again), or a streaming download with progress.

/** The Cache API cache that holds models. */
export const MODEL_CACHE = 'spamlens-models-v1';
const cacheKey = (sha256) => `https://spamlens.invalid/models/${sha256}.onnx`;
const SHA256_HEX = /^[0-9a-f]{64}$/;

const hasCacheApi = () => typeof caches === 'object' && caches !== null && typeof caches.open === 'function';

/**
 * Hex sha256 of `bytes` (WebCrypto), or null where WebCrypto is unavailable (insecure origins)
 * or refuses the buffer (a view of shared memory).
 */
export async function sha256Hex(bytes) {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return null;
  let digest;
  try {
    digest = new Uint8Array(await subtle.digest('SHA-256', bytes));
  } catch {
    return null;
  }
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Validates a caller-supplied sha256 (64 hex digits, any case) and returns it lower-cased. */
export function normaliseSha256(value, what = 'sha256') {
  if (value == null) return null;
  const hex = String(value).trim().toLowerCase();
  if (!SHA256_HEX.test(hex)) throw new Error(`spamlens: ${what} '${value}' is not 64 hex digits`);
  return hex;
}

/** The sha256 published beside a model as `<modelUrl>.sha256` (sha256sum format), or null. */
export async function fetchSidecarSha256(modelUrl, fetchImpl = fetch) {
  try {
    const response = await fetchImpl(`${modelUrl}.sha256`, { cache: 'no-cache' });
    if (!response.ok) return null;
    const first = (await response.text()).trim().split(/\s+/)[0]?.toLowerCase() ?? '';
    return SHA256_HEX.test(first) ? first : null;
  } catch {
    return null;
  }
}

/** Downloads `url` into one buffer, reporting `{ phase: 'download', loaded, total }` as it streams. */
export async function download(url, onProgress = () => {}, fetchImpl = fetch) {
  let response;
  try {
    response = await fetchImpl(url);
  } catch (error) {
    throw new Error(`spamlens: model ${url}: download failed: ${error.message}`);
  }
  if (!response.ok) throw new Error(`spamlens: model ${url}: HTTP ${response.status} ${response.statusText}`.trim());
  // Content-Length counts encoded bytes; with a Content-Encoding it says nothing about the body size.
  const length = Number(response.headers.get('content-length'));
  const total = !response.headers.get('content-encoding') && length > 0 ? length : null;
  onProgress({ phase: 'download', loaded: 0, total });
  if (!response.body) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    onProgress({ phase: 'download', loaded: bytes.length, total: bytes.length });
    return bytes;
  }
  const reader = response.body.getReader();
  let buffer = new Uint8Array(total ?? 1 << 20);
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (loaded + value.length > buffer.length) {
      const grown = new Uint8Array(Math.max(buffer.length * 2, loaded + value.length));
      grown.set(buffer.subarray(0, loaded));
      buffer = grown;
    }
    buffer.set(value, loaded);
    loaded += value.length;
    onProgress({ phase: 'download', loaded, total });
  }
  if (total !== null && loaded !== total) {
    throw new Error(`spamlens: model ${url}: download ended after ${loaded} of ${total} bytes`);
  }
  return loaded === buffer.length ? buffer : buffer.slice(0, loaded);
}

/**
 * The model's bytes: `modelBytes` as given; else from the model cache by sha256 (the `sha256`
 * option, or the `<modelUrl>.sha256` sidecar); else downloaded, checked against that sha256 and
 * cached, replacing older cached models unless `keepOtherModels`. Resolves to
 * `{ bytes, sha256, source: 'bytes' | 'cache' | 'network', cached, digest? }` (`digest`: the
 * bytes' sha256 when this function computed it, to be reused).
 */
export async function loadModelBytes({
  modelUrl,
  modelBytes,
  sha256,
  cache = true,
  keepOtherModels = false,
  onProgress = () => {},
  fetchImpl = globalThis.fetch?.bind(globalThis),
} = {}) {
  const expected = normaliseSha256(sha256);
  if (modelBytes) {
    const bytes = modelBytes instanceof Uint8Array ? modelBytes : new Uint8Array(modelBytes);
    return { bytes, sha256: expected, source: 'bytes', cached: false };
  }
  if (!modelUrl) throw new Error('spamlens: give modelUrl or modelBytes');
  const url = String(modelUrl);
  const known = expected ?? (await fetchSidecarSha256(url, fetchImpl));
  const store = cache && known && hasCacheApi() ? await caches.open(MODEL_CACHE).catch(() => null) : null;
  if (store) {
    const hit = await store.match(cacheKey(known));
    if (hit) {
      const bytes = new Uint8Array(await hit.arrayBuffer());
      onProgress({ phase: 'cache', loaded: bytes.length, total: bytes.length });
      return { bytes, sha256: known, source: 'cache', cached: true };
    }
  }
  const bytes = await download(url, onProgress, fetchImpl);
  let digest = null;
  if (known) {
    onProgress({ phase: 'verify', loaded: bytes.length, total: bytes.length });
    digest = await sha256Hex(bytes);
    if (digest !== null && digest !== known) {
      throw new Error(`spamlens: model ${url}: sha256 is ${digest}, expected ${known}`);
    }
  }
  let cached = false;
  if (store) {
    try {
      if (!keepOtherModels) {
        for (const request of await store.keys()) {
          if (request.url !== cacheKey(known)) await store.delete(request);
        }
      }
      await store.put(
        cacheKey(known),
        new Response(bytes, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) } }),
      );
      cached = true;
    } catch (error) {
      // A full quota must not stop classification; the next visit downloads again.
      console.warn(`spamlens: could not cache the model (${error.message})`);
    }
  }
  return { bytes, sha256: known, digest, source: 'network', cached };
}

/** Deletes cached models, all of them or all but `keep` (a sha256). Resolves to how many went. */
export async function clearModelCache({ keep } = {}) {
  if (!hasCacheApi()) return 0;
  const store = await caches.open(MODEL_CACHE);
  let removed = 0;
  for (const request of await store.keys()) {
    if (keep && request.url === cacheKey(normaliseSha256(keep))) continue;
    if (await store.delete(request)) removed += 1;
  }
  return removed;
}
