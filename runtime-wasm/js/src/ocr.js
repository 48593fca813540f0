// Reading the text in images in the browser: Tesseract 5 compiled to WebAssembly (tesseract.js-core's
// LSTM-only build, pinned in package.json and copied into dist/tesseract/ by build.sh) with the same
// trained data files as the native runtime (Debian's tesseract-ocr-eng, -rus, -chi-sim 1:4.1.0-2),
// each checked against the model's OCR contract by sha256 and kept in the Cache API under it.
//
// The engine reads the grey pixels core prepared (`PreparedImage.ocrImage()`), so both runtimes give
// Tesseract the same input, and returns words with boxes and confidences; core maps them back and
// turns them into the model's text inputs. The settings are the native engine's
// (`ocr/src/tesseract.rs`): LSTM only, the contract's page segmentation and dpi, the same variables.
import { download, sha256Hex } from './model-source.js';

/** The Cache API cache that holds trained data files. */
export const TESSDATA_CACHE = 'spamlens-tessdata-v1';

/** Tesseract variables set on every engine, native and here (some defaults moved between 5.x releases). */
export const VARIABLES = [
  ['tessedit_do_invert', '1'],
  ['tessedit_create_hocr', '0'],
  ['tessedit_create_pdf', '0'],
];

const isNode = typeof process === 'object' && typeof process.versions === 'object' && !!process.versions.node;
const hasCacheApi = () => typeof caches === 'object' && caches !== null && typeof caches.open === 'function';
const cacheKey = (sha256) => `https://spamlens.invalid/tessdata/${sha256}.traineddata`;

/** Where build.sh puts tesseract.js-core's LSTM-only SIMD build. */
const CORE_BASE = new URL('../dist/tesseract/', import.meta.url);
const CORE_FILES = {
  simd: 'tesseract-core-simd-lstm',
  relaxed: 'tesseract-core-relaxedsimd-lstm',
};

async function readUrl(url, what, onProgress, fetchImpl) {
  if (isNode && url.protocol === 'file:') {
    const fs = await import(/* webpackIgnore: true */ /* @vite-ignore */ 'node:fs/promises');
    return new Uint8Array(await fs.readFile(url));
  }
  try {
    return await download(url, onProgress, fetchImpl);
  } catch (error) {
    throw new Error(`spamlens: OCR ${what} ${url}: ${error.message.replace(/^spamlens: model \S+: /, '')}`);
  }
}

/** Loads tesseract.js-core's factory: an ES module wrapper in browsers, the CommonJS file in Node. */
async function coreFactory(base, file) {
  if (isNode && base.protocol === 'file:') {
    const { createRequire } = await import(/* webpackIgnore: true */ /* @vite-ignore */ 'node:module');
    return createRequire(import.meta.url)(new URL(`${file}.cjs`, base).pathname);
  }
  const module = await import(/* webpackIgnore: true */ /* @vite-ignore */ new URL(`${file}.mjs`, base).href);
  return module.default;
}

/** The trained data file for one language: from the cache by sha256, else downloaded and checked. */
async function trainedData({ language, sha256 }, base, cache, onProgress, fetchImpl) {
  const store = cache && hasCacheApi() ? await caches.open(TESSDATA_CACHE).catch(() => null) : null;
  if (store) {
    const hit = await store.match(cacheKey(sha256));
    if (hit) {
      const bytes = new Uint8Array(await hit.arrayBuffer());
      if ((await sha256Hex(bytes)) === sha256) return bytes;
    }
  }
  const url = new URL(`${language}.traineddata`, base);
  const bytes = await readUrl(url, 'trained data', (p) => onProgress({ ...p, phase: 'ocr-data', language }), fetchImpl);
  const actual = await sha256Hex(bytes);
  if (actual !== null && actual !== sha256) {
    throw new Error(
      `spamlens: OCR trained data ${url}: sha256 is ${actual}, the model needs ${sha256} (${language}); ` +
        'serve the files of Debian\'s tesseract-ocr-* 1:4.1.0-2 packages (`spamlens-train ocr-data fetch`)',
    );
  }
  if (store) {
    await store
      .put(cacheKey(sha256), new Response(bytes, { headers: { 'content-type': 'application/octet-stream' } }))
      .catch((error) => console.warn(`spamlens: could not cache ${language}.traineddata (${error.message})`));
  }
  return bytes;
}

/** A grey image as a binary PGM (P5) file: what Leptonica reads into the same 8-bit image natively made. */
function pgm({ width, height, pixels }) {
  const header = new TextEncoder().encode(`P5\n${width} ${height}\n255\n`);
  const file = new Uint8Array(header.length + pixels.length);
  file.set(header);
  file.set(pixels, header.length);
  return file;
}

/** Tesseract's TSV (one row per page, block, paragraph, line, word) → words with their line index. */
export function wordsFromTsv(tsv) {
  const words = [];
  let lineKey = null;
  let line = -1;
  for (const row of tsv.split('\n')) {
    const cells = row.split('\t');
    if (cells.length < 12 || cells[0] !== '5') continue;
    const [, page, block, paragraph, lineNumber, , left, top, width, height, confidence, ...text] = cells;
    const key = `${page}.${block}.${paragraph}.${lineNumber}`;
    if (key !== lineKey) {
      lineKey = key;
      line += 1;
    }
    const l = Number(left);
    const t = Number(top);
    words.push({
      text: text.join('\t'),
      confidence: Number(confidence),
      bbox: [l, t, l + Number(width), t + Number(height)],
      line,
    });
  }
  return words;
}

/** One Tesseract instance with the model's languages loaded. */
export class OcrEngine {
  /**
   * Starts Tesseract for a model's OCR `contract` (`scanner.info.ocr`): the trained data from
   * `tessdataUrl` (a folder URL holding `<language>.traineddata`), the engine from `coreUrl`
   * (default: the package's dist/tesseract/). `variant`: 'simd' (default: integer dot products that
   * give the native engine's results) or 'relaxed'.
   */
  static async load({ contract, tessdataUrl, coreUrl, variant = 'simd', cache = true, onProgress = () => {}, fetchImpl }) {
    if (!contract) throw new Error('spamlens: this model reads no text (no OCR contract)');
    if (!tessdataUrl) throw new Error('spamlens: give ocrDataUrl, the folder that serves the OCR trained data');
    const file = CORE_FILES[variant];
    if (!file) throw new Error(`spamlens: unknown OCR engine variant '${variant}' (simd, relaxed)`);
    const base = new URL(coreUrl ?? CORE_BASE, globalThis.location?.href);
    const dataBase = new URL(String(tessdataUrl).replace(/\/?$/, '/'), globalThis.location?.href);
    onProgress({ phase: 'ocr-engine', loaded: 0, total: null });
    const [factory, wasmBinary] = await Promise.all([
      coreFactory(base, file),
      readUrl(new URL(`${file}.wasm`, base), 'engine', (p) => onProgress({ ...p, phase: 'ocr-engine' }), fetchImpl),
    ]);
    const data = [];
    for (const entry of contract.data) {
      data.push({ ...entry, bytes: await trainedData(entry, dataBase, cache, onProgress, fetchImpl) });
    }
    const core = await factory({ wasmBinary, print: () => {}, printErr: () => {} });
    core.FS.mkdir('/tessdata');
    for (const entry of data) core.FS.writeFile(`/tessdata/${entry.language}.traineddata`, entry.bytes);
    const api = new core.TessBaseAPI();
    api.SetVariable('debug_file', '/dev/null');
    const languages = contract.data.map((d) => d.language).join('+');
    const status = api.Init('/tessdata', languages, 1 /* OEM_LSTM_ONLY */);
    if (status !== 0) throw new Error(`spamlens: Tesseract could not load ${languages} (status ${status})`);
    for (const [name, value] of VARIABLES) {
      if (!api.SetVariable(name, value)) throw new Error(`spamlens: Tesseract has no variable ${name}`);
    }
    api.SetPageSegMode(contract.page_segmentation);
    for (const entry of data) core.FS.unlink(`/tessdata/${entry.language}.traineddata`);
    const identity = {
      engine: 'tesseract',
      version: api.Version(),
      engine_mode: 'lstm',
      page_segmentation: contract.page_segmentation,
      dpi: contract.dpi,
      data: contract.data.map(({ language, sha256 }) => ({ language, sha256 })),
    };
    return new OcrEngine(core, api, identity, variant);
  }

  constructor(core, api, identity, variant) {
    this.core = core;
    this.api = api;
    /** `{ engine, version, engine_mode, page_segmentation, dpi, data }`, checked by the model. */
    this.identity = identity;
    this.variant = variant;
  }

  /**
   * The words of an OCR image from `PreparedImage.ocrImage()`: `[{ text, confidence, bbox: [left,
   * top, right, bottom], line }]` in its pixels. Throws an Error naming `name` when Tesseract fails.
   */
  recognize(image, name = 'image') {
    const { core, api } = this;
    core.FS.writeFile('/input', pgm(image));
    try {
      if (api.SetImageFile(1, 0) === 1) throw new Error(`${name}: OCR failed: Tesseract could not read the image`);
      api.SetSourceResolution(this.identity.dpi);
      if (api.Recognize(null) !== 0) throw new Error(`${name}: OCR failed: recognition returned an error`);
      return wordsFromTsv(api.GetTSVText(0));
    } finally {
      api.Clear();
      core.FS.unlink('/input');
    }
  }

  /** Frees the engine. */
  dispose() {
    this.api?.End();
    this.api = null;
  }
}

/** Deletes the cached trained data. Resolves to how many files went. */
export async function clearOcrCache() {
  if (!hasCacheApi()) return 0;
  return (await caches.delete(TESSDATA_CACHE)) ? 1 : 0;
}
