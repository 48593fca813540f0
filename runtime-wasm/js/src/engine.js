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
    onProgress({ phase: 'ready', loaded: source.bytes.length, total: source.bytes.length });
    return new Engine(classifier, info);
  }

  constructor(classifier, info) {
    this.classifier = classifier;
    this.info = info;
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
  }
}
