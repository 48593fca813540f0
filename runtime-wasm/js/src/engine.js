// The in-thread engine: the wasm module, one loaded classifier, and image input normalisation.
// The Web Worker runs one of these; `createScanner({ worker: false })` (Node, tests) uses it directly.
import { loadWasm } from './wasm.js';
import { loadModelBytes } from './model-source.js';

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
    const wasm = await loadWasm({ variant: options.wasmVariant, wasmUrl: options.wasmUrl });
    const source = await loadModelBytes({ ...options, onProgress });
    onProgress({ phase: 'compile', loaded: source.bytes.length, total: source.bytes.length });
    const name = options.modelName ?? (options.modelUrl ? String(options.modelUrl) : 'model');
    const classifier = new wasm.Classifier(source.bytes, name);
    const info = classifier.info();
    if (source.sha256 && info.sha256 !== source.sha256) {
      classifier.free();
      throw new Error(`spamlens: model ${name}: sha256 is ${info.sha256}, expected ${source.sha256}`);
    }
    info.source = source.source;
    info.cached = source.cached;
    const engine = new Engine(wasm, classifier, info);
    engine.setTextFilter(options.textFilter ?? null);
    onProgress({ phase: 'ready', loaded: source.bytes.length, total: source.bytes.length });
    return engine;
  }

  constructor(wasm, classifier, info) {
    this.wasm = wasm;
    this.classifier = classifier;
    this.info = info;
    this.filter = null;
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
    return this.classifier.scanEmail(await imageBytes(message), name, this.filter, rule);
  }

  /**
   * "Mark as spam / not spam": the text filter learns from the message at once. Returns `{ outcome:
   * { before, after, steps, new_adaptive_tokens, merged }, record, state }`; `state` is the new
   * filter state to persist, `record` the reaction (Email.cz vocabulary) with the images' sha256.
   */
  async feedback(message, label, name = 'message', nowSeconds = Date.now() / 1000) {
    const result = this.wasm.feedback(this.filter, await imageBytes(message), label, name, nowSeconds);
    return { ...result, state: this.filter.toJson() };
  }

  /** `{ name, label, probabilities, millis, width, height, format }`; throws an Error naming the image. */
  async classify(image, name = 'image') {
    return this.classifier.classify(await imageBytes(image), name);
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
    this.classifier?.free();
    this.classifier = null;
    this.filter?.free();
    this.filter = null;
  }
}
