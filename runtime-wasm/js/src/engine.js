// The in-thread engine: the wasm module, one loaded classifier, and image input normalisation.
// The Web Worker runs one of these; `createScanner({ worker: false })` (Node, tests) uses it directly.
import { loadWasm } from './wasm.js';
import { loadModelBytes, sha256Hex } from './model-source.js';
import { OcrEngine } from './ocr.js';
import { messageVerdict } from './verdict.js';

const now = () => (typeof performance === 'object' ? performance.now() : Date.now());

/** Image input as bytes: Blob/File, ArrayBuffer, any typed array or DataView. */
export async function imageBytes(image) {
  if (image instanceof Uint8Array) return image;
  if (image instanceof ArrayBuffer) return new Uint8Array(image);
  if (ArrayBuffer.isView(image)) return new Uint8Array(image.buffer, image.byteOffset, image.byteLength);
  if (typeof Blob === 'function' && image instanceof Blob) return new Uint8Array(await image.arrayBuffer());
  throw new TypeError('spamlens: an image must be a Blob, File, ArrayBuffer or typed array');
}

/** A loaded model in this thread. */
export class Engine {
  /**
   * Loads the wasm module and the model (see `loadModelBytes` for the options), reporting
   * `{ phase, loaded, total }` progress and then `{ phase: 'compile' }` while tract optimises it.
   */
  static async load(options = {}) {
    const onProgress = options.onProgress ?? (() => {});
    const started = now();
    const wasm = await loadWasm({ variant: options.wasmVariant, wasmUrl: options.wasmUrl });
    const wasmReady = now();
    const source = await loadModelBytes({ ...options, onProgress });
    const bytesReady = now();
    onProgress({ phase: 'compile', loaded: source.bytes.length, total: source.bytes.length });
    const name = options.modelName ?? (options.modelUrl ? String(options.modelUrl) : 'model');
    // WebCrypto hashes the model ~20× faster than sha2 compiled to wasm (0.7 s for 26 MB in
    // Chromium); without WebCrypto (an insecure origin) the wasm side hashes.
    const digest = source.digest ?? (await sha256Hex(source.bytes));
    const hashed = now();
    const classifier = new wasm.Classifier(source.bytes, name, digest ?? undefined);
    const info = classifier.info();
    if (source.sha256 && info.sha256 !== source.sha256) {
      classifier.free();
      throw new Error(`spamlens: model ${name}: sha256 is ${info.sha256}, expected ${source.sha256}`);
    }
    // Where the load's time went: this thread's share of the wasm module (0 once another load in
    // the realm compiled it), getting the model's bytes (network or cache), then tract's steps.
    info.loadPhases = [
      { phase: 'wasm module', millis: wasmReady - started },
      { phase: 'model bytes', millis: bytesReady - wasmReady },
      ...(digest !== null ? [{ phase: 'sha256 (WebCrypto)', millis: hashed - bytesReady }] : []),
      ...info.loadPhases,
    ];
    info.source = source.source;
    info.cached = source.cached;
    info.wasmMemoryBytes = wasm.memoryBytes();
    let ocr = null;
    if (info.ocr && options.ocr !== false) {
      try {
        ocr = await OcrEngine.load({
          contract: info.ocr,
          tessdataUrl: options.ocrDataUrl ?? (options.modelUrl ? new URL('tessdata/', new URL(String(options.modelUrl), globalThis.location?.href)) : null),
          coreUrl: options.ocrEngineUrl,
          variant: options.ocrVariant,
          cache: options.cache,
          onProgress,
          fetchImpl: options.fetchImpl,
        });
        classifier.checkOcrEngine(ocr.identity);
      } catch (error) {
        ocr?.dispose();
        classifier.free();
        throw error;
      }
      info.ocrEngine = { ...ocr.identity, variant: ocr.variant };
    } else if (info.ocr) {
      // OCR off: a model that reads text decides by its image-only output.
      classifier.setReadText(false);
    }
    info.readsText = !!ocr;
    const engine = new Engine(wasm, classifier, info, ocr);
    engine.setTextFilter(options.textFilter ?? null);
    onProgress({ phase: 'ready', loaded: source.bytes.length, total: source.bytes.length });
    return engine;
  }

  constructor(wasm, classifier, info, ocr = null) {
    this.wasm = wasm;
    this.classifier = classifier;
    this.info = info;
    this.ocr = ocr;
    this.filter = null;
  }

  /**
   * The OCR engine's words for a prepared image: `{ words, problem, millis }`; `words` is null when
   * the model reads no text (then `problem` is null too) or OCR failed (then `problem` says why).
   */
  wordsOf(prepared, name) {
    if (!prepared.readsText()) return { words: null, problem: null, millis: null };
    const image = prepared.ocrImage();
    if (!image) return { words: [], problem: null, millis: 0 };
    if (!this.ocr) return { words: null, problem: `${name}: OCR is not available`, millis: null };
    const started = now();
    try {
      return { words: this.ocr.recognize(image, name), problem: null, millis: now() - started };
    } catch (error) {
      return { words: null, problem: String(error?.message ?? error), millis: now() - started };
    }
  }

  /** Decodes, reads the text (when the model does and OCR is on) and classifies one image. */
  read(bytes, name) {
    const prepared = this.classifier.prepare(bytes, name);
    try {
      const { words, problem, millis } = this.wordsOf(prepared, name);
      const result = this.classifier.classifyPrepared(prepared, words, problem ?? undefined);
      if (millis !== null) {
        // `millis` covers the whole image: decode, OCR and inference.
        result.ocr_millis = millis;
        result.millis += millis;
      }
      return result;
    } finally {
      prepared.free();
    }
  }

  /** The text OCR reads in each image of a message (for learning from it). */
  imageTexts(bytes, name) {
    if (!this.ocr) return [];
    const texts = [];
    for (const image of this.wasm.parseEmail(bytes, name).images) {
      const imageName = `${name}: ${image.name}`;
      let prepared;
      try {
        prepared = this.classifier.prepare(image.bytes, imageName);
      } catch {
        continue;
      }
      try {
        const { words } = this.wordsOf(prepared, imageName);
        if (words?.length) texts.push(prepared.textOf(words));
      } finally {
        prepared.free();
      }
    }
    return texts;
  }

  /**
   * Replaces the CLA_ANN text filter: a state saved by `textFilterState()` (JSON), or null for the
   * built-in filter. Throws an Error naming the problem when the state is not a filter.
   */
  setTextFilter(state) {
    const next = state ? this.wasm.TextFilter.fromJson(state, 'saved text filter') : this.wasm.TextFilter.builtin();
    this.filter?.free();
    this.filter = next;
    return this.filter.summary();
  }

  /** The text filter's state as JSON (what a page keeps per user). */
  textFilterState() {
    return this.filter.toJson();
  }

  /**
   * One verdict for a whole email (`.eml` bytes, Blob or buffer): `{ verdict: { label, decided_by,
   * reason }, text, images, remote_images, problems, subject, ... }` as `spamlens scan --json`.
   */
  async scanEmail(message, name = 'message', rule = undefined) {
    // The rule is checked before any image is classified (a mistake in it throws at once).
    messageVerdict(this.wasm, [], rule);
    const scan = this.classifier.beginScan(await imageBytes(message), name);
    try {
      for (let index = 0; index < scan.imageCount; index++) {
        const prepared = this.classifier.prepareScanImage(scan, index);
        if (!prepared) continue;
        try {
          const { words, problem } = this.wordsOf(prepared, `${name}: image ${index + 1}`);
          this.classifier.classifyScanImage(scan, index, prepared, words, problem ?? undefined);
        } finally {
          prepared.free();
        }
      }
      return scan.finish(this.filter, rule);
    } finally {
      scan.free();
    }
  }

  /**
   * The message verdict from per-image results (`classify` results, `{ name, error }` failures) by
   * core's rule, the one `scanEmail` uses: `{ label, decided_by, reason }`. Throws an Error naming
   * the image or the `rule` field that is wrong.
   */
  messageVerdict(images, rule = undefined) {
    return messageVerdict(this.wasm, images, rule);
  }

  /**
   * "Mark as spam / not spam": the text filter learns from the message at once. Returns `{ outcome:
   * { before, after, steps, new_adaptive_tokens, merged }, record, state }`; `state` is the new
   * filter state to persist, `record` the reaction (Email.cz vocabulary) with the images' sha256.
   */
  async feedback(message, label, name = 'message', nowSeconds = Date.now() / 1000) {
    const bytes = await imageBytes(message);
    // A campaign marked once is learnt from the words drawn in its images too.
    const texts = this.imageTexts(bytes, name);
    const result = this.wasm.feedback(this.filter, bytes, label, name, nowSeconds, texts);
    return { ...result, state: this.filter.toJson() };
  }

  /**
   * `{ name, label, probabilities, millis, width, height, format }`, and for a model that reads text
   * `image_probabilities`, `text: { text, probabilities, layout, words }` (or `ocr_problem`) and
   * `ocr_millis`; throws an Error naming the image.
   */
  async classify(image, name = 'image') {
    return this.read(await imageBytes(image), name);
  }

  /** The model's input tensor for `image` (for benchmarks and other runtimes). */
  async preprocess(image, name = 'image') {
    return this.classifier.preprocess(await imageBytes(image), name);
  }

  /** Classifies a tensor from `preprocess`: `{ label, probabilities, millis }` (inference only). */
  classifyTensor(tensor) {
    return this.classifier.classifyTensor(tensor);
  }

  /** Frees the model's memory; the engine is unusable afterwards. */
  dispose() {
    this.ocr?.dispose();
    this.ocr = null;
    this.classifier?.free();
    this.classifier = null;
    this.filter?.free();
    this.filter = null;
  }
}
