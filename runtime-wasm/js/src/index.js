// spamlens for webmail: classify the images of an opened email in the browser, off the main thread.
//
//   const scanner = await createScanner({ modelUrl: '/models/spamlens.onnx', onProgress });
//   const { label, probabilities, millis } = await scanner.classify(blob);
//   const { verdict: { label, reason }, images } = await scanner.classifyMessage(parts);
//   const scan = await scanner.scanEmail(emlBytes);          // text (CLA_ANN) + images, one verdict
//   const { before, after } = await scanner.feedback(emlBytes, 'spam');  // the user's filter learns
import { Engine } from './engine.js';
import { defaultStore } from './storage.js';
import { isImagePart, verdictImages } from './verdict.js';

export { MemoryStore, IndexedDbStore } from './storage.js';

export { isImagePart } from './verdict.js';
export { clearModelCache, MODEL_CACHE } from './model-source.js';
export { bestVariant } from './wasm.js';
export { clearOcrCache, TESSDATA_CACHE } from './ocr.js';

/** A worker-backed engine: one Web Worker, requests matched to answers by id. */
class WorkerEngine {
  constructor(workerUrl) {
    this.worker = new Worker(workerUrl ?? new URL('./worker.js', import.meta.url), { type: 'module', name: 'spamlens' });
    this.pending = new Map();
    this.nextId = 1;
    this.broken = null;
    this.worker.onmessage = (event) => this.answer(event.data);
    this.worker.onerror = (event) => {
      event.preventDefault?.();
      this.fail(new Error(`spamlens: worker failed: ${event.message ?? 'could not start (check the worker URL and MIME types)'}`));
    };
    this.worker.onmessageerror = () => this.fail(new Error('spamlens: a worker message could not be read'));
  }

  get busy() {
    return this.pending.size;
  }

  request(message, transfer = [], onProgress) {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ ...message, id }, transfer);
    });
  }

  answer(data) {
    const entry = this.pending.get(data.id);
    if (!entry) return;
    if (data.progress) {
      entry.onProgress?.(data.progress);
      return;
    }
    this.pending.delete(data.id);
    if (data.error !== undefined) {
      const error = new Error(data.error);
      if (data.fatal) {
        error.fatal = true;
        this.fail(new Error(`spamlens: the worker's WebAssembly instance failed (${data.error})`));
      }
      entry.reject(error);
    } else {
      entry.resolve(data.result);
    }
  }

  fail(error) {
    this.broken = error;
    for (const entry of this.pending.values()) entry.reject(error);
    this.pending.clear();
    this.worker.terminate();
  }

  dispose() {
    this.fail(new Error('spamlens: the scanner was closed'));
  }
}

/** Bytes for a worker request: Blobs are shared, buffers copied and transferred (the caller keeps theirs). */
function transferable(image) {
  if (typeof Blob === 'function' && image instanceof Blob) return { image, transfer: [] };
  if (image instanceof ArrayBuffer) {
    const copy = image.slice(0);
    return { image: copy, transfer: [copy] };
  }
  if (ArrayBuffer.isView(image)) {
    const copy = image.buffer.slice(image.byteOffset, image.byteOffset + image.byteLength);
    return { image: copy, transfer: [copy] };
  }
  throw new TypeError('spamlens: an image must be a Blob, File, ArrayBuffer or typed array');
}

/**
 * Loads the model and returns a Scanner. Options:
 * - `modelUrl` (string | URL) or `modelBytes` (ArrayBuffer | Uint8Array): the combined spamlens model.
 * - `sha256`: the model's sha256; the cache key and an integrity check. Without it the scanner reads
 *   `<modelUrl>.sha256` when the server publishes one; with neither the model is not cached.
 * - `onProgress({ phase: 'cache' | 'download' | 'verify' | 'compile' | 'ready', loaded, total, worker })`.
 * - `workers` (default 1): Web Workers, each with its own copy of the model (~60 MB of wasm memory
 *   each for the built-in model with int8 compute, ~300 MB in f32; `info.wasmMemoryBytes` says).
 * - `worker` (default: whether `Worker` exists): false runs in the calling thread (Node, tests).
 * - `cache` (default true), `keepOtherModels` (default false): the Cache API model store.
 * - `rule` ({ image_spam_threshold, image_ad_threshold, use_text, use_images }): how the parts'
 *   results become a message's verdict (core's rule) in `scanEmail`, `classifyMessage` and
 *   `messageVerdict`, each of which may override fields; default: an image counts by its label,
 *   i.e. the model's own operating point (`scanner.info.thresholds`, chosen by the trainer for a
 *   target ham→spam false-positive rate), and the text filter counts.
 * - `wasmVariant` ('relaxed' | 'simd'), `wasmUrl`, `workerUrl`: overrides for benchmarks and CDNs.
 * - `ocr` (default true): read the text in images when the model does (Tesseract in the worker);
 *   false decides every image by the model's image-only output (faster). `ocrDataUrl`: the folder
 *   serving the model's OCR trained data (`<language>.traineddata`; default: `tessdata/` beside
 *   `modelUrl`); the files are checked against the model's OCR contract by sha256 and cached.
 *   `ocrEngineUrl` (the folder of tesseract.js-core's build, default the package's dist/tesseract/),
 *   `ocrVariant` ('simd' default, or 'relaxed').
 * - `user` (default 'default'): whose text filter to load and teach; `store`: where filters and
 *   reactions are kept (default IndexedDB, else memory; see storage.js); `textFilter`: a filter state
 *   (JSON) to start from instead of the stored one (else the built-in filter).
 */
export async function createScanner(options = {}) {
  const useWorker = options.worker ?? typeof Worker === 'function';
  const count = Math.max(1, Math.floor(options.workers ?? 1));
  const store = options.store ?? defaultStore();
  const user = options.user ?? 'default';
  const textFilter = options.textFilter ?? (await store.loadFilter(user));
  if (options.thresholds !== undefined) {
    throw new TypeError(
      "spamlens: the 'thresholds' option was replaced by 'rule': { image_spam_threshold, image_ad_threshold }",
    );
  }
  const { onProgress, workerUrl, modelBytes, fetchImpl, worker, workers, rule, ...rest } = options;
  delete rest.store;
  delete rest.user;
  // Workers resolve URLs against their own script: make the page's relative URLs absolute.
  const base = globalThis.location?.href;
  for (const key of ['modelUrl', 'ocrDataUrl', 'ocrEngineUrl', 'wasmUrl']) {
    if (rest[key] != null && base) rest[key] = new URL(String(rest[key]), base).href;
  }
  const loadOptions = { ...rest, textFilter };
  options = { ...options, store, user };
  if (!useWorker) {
    const engine = await Engine.load({ ...loadOptions, modelBytes, fetchImpl, onProgress });
    return checked(new Scanner([engine], engine.info, { ...options, loadOptions }, false));
  }
  const engines = [];
  try {
    // The first worker fetches (or reads the cache) and caches; the others then hit the cache.
    const first = new WorkerEngine(workerUrl);
    engines.push(first);
    const info = await first.request(
      { op: 'load', options: { ...loadOptions, modelBytes } },
      [],
      (progress) => onProgress?.({ ...progress, worker: 0 }),
    );
    const others = [];
    for (let index = 1; index < count; index++) {
      const engine = new WorkerEngine(workerUrl);
      engines.push(engine);
      others.push(
        engine.request(
          { op: 'load', options: { ...loadOptions, sha256: info.sha256, modelBytes } },
          [],
          (progress) => onProgress?.({ ...progress, worker: index }),
        ),
      );
    }
    await Promise.all(others);
    // A worker that fails is replaced from the same source (the cache, else the URL or the bytes).
    const reload = { ...loadOptions, sha256: info.sha256, modelBytes };
    return await checked(new Scanner(engines, info, { ...options, workerUrl, loadOptions: reload }, true));
  } catch (error) {
    for (const engine of engines) engine.dispose();
    throw error;
  }
}

/** The scanner, once core has accepted its `rule` (else closed, and the Error naming the field thrown). */
async function checked(scanner) {
  try {
    await scanner.messageVerdict([]);
    return scanner;
  } catch (error) {
    scanner.close();
    throw error;
  }
}

/** Classifies images with a loaded model. Create one with `createScanner`. */
export class Scanner {
  constructor(engines, info, options, workers) {
    this.engines = engines;
    /** The model: name, sha256, labels, metrics, metadata, source ('cache' | 'network' | 'bytes'), simd. */
    this.info = info;
    this.options = options;
    this.usesWorkers = workers;
    /** The verdict rule's fields this scanner was created with (calls may override them). */
    this.rule = options.rule ?? {};
    this.closed = false;
    this.store = options.store;
    this.user = options.user;
    // Feedback is applied one message at a time, so every worker ends with the same filter.
    this.learning = Promise.resolve();
  }

  /** Class names in the model's output order. */
  get labels() {
    return this.info.labels;
  }

  async pick() {
    if (this.closed) throw new Error('spamlens: the scanner was closed');
    if (!this.usesWorkers) return this.engines[0];
    // Replace workers whose wasm instance failed, from the cached model.
    for (let index = 0; index < this.engines.length; index++) {
      if (this.engines[index].broken) {
        const engine = new WorkerEngine(this.options.workerUrl);
        this.engines[index] = engine;
        engine.ready = engine.request({ op: 'load', options: this.options.loadOptions });
      }
    }
    const engine = this.engines.reduce((best, e) => (e.busy < best.busy ? e : best));
    if (engine.ready) await engine.ready;
    return engine;
  }

  async call(op, payload, name) {
    const engine = await this.pick();
    if (!this.usesWorkers) return engine[op](payload, name);
    const { image, transfer } = transferable(payload);
    return engine.request({ op, image, name }, transfer);
  }

  /**
   * Classifies one image (Blob, File, ArrayBuffer, typed array): `{ name, label, probabilities:
   * { ham, spam, ad? }, millis, width, height, format }`. Rejects with an Error naming the image
   * when it cannot be decoded or is over the limits.
   */
  classify(image, { name = image?.name ?? 'image' } = {}) {
    return this.call('classify', image, name);
  }

  /** Classifies several images across the workers; per image a result or `{ name, error }`, in order. */
  async classifyBatch(images, { names = [] } = {}) {
    return Promise.all(
      images.map((image, index) => {
        const name = names[index] ?? image?.name ?? `image ${index + 1}`;
        return this.classify(image, { name }).catch((error) => ({ name, error: error.message }));
      }),
    );
  }

  /** `rule`'s fields over the scanner's. */
  ruleWith(rule) {
    if (rule === undefined || rule === null) return this.rule;
    if (typeof rule !== 'object' || Array.isArray(rule)) return rule; // refused, with its message, in wasm
    return { ...this.rule, ...rule };
  }

  /**
   * The message verdict from per-image results (`classify` results and `{ name, error }` failures)
   * by core's rule, the one `scanEmail` uses, computed in a worker: `{ label: 'spam' | 'ham' | 'ad',
   * decided_by: 'image' | 'none', reason }`. An image counts by its label (the model's operating
   * point) unless `rule` sets `image_spam_threshold` / `image_ad_threshold`. Rejects with an Error
   * naming the image or the `rule` field that is wrong.
   */
  async messageVerdict(images, { rule } = {}) {
    const engine = await this.pick();
    if (!this.usesWorkers) return engine.messageVerdict(images, this.ruleWith(rule));
    return engine.request({ op: 'messageVerdict', images: verdictImages(images), rule: this.ruleWith(rule) });
  }

  /**
   * Scans a message's parts (`{ data, contentType, name }`, data as for `classify`): image parts are
   * classified, the rest skipped. Returns `{ verdict: { label: 'spam' | 'ham' | 'ad', decided_by,
   * reason }, images, skipped }`, the verdict by `messageVerdict` (core's rule; `rule` overrides the
   * scanner's).
   */
  async classifyMessage(parts, { rule, thresholds } = {}) {
    if (thresholds !== undefined) {
      throw new TypeError(
        "spamlens: classifyMessage's 'thresholds' option was replaced by 'rule': { image_spam_threshold, image_ad_threshold }",
      );
    }
    const images = [];
    const skipped = [];
    parts.forEach((part, index) => {
      const name = part.name ?? `part ${index + 1}`;
      if (isImagePart(part)) images.push({ ...part, name });
      else skipped.push({ name, contentType: part.contentType ?? null, reason: 'not an image part' });
    });
    const results = await this.classifyBatch(
      images.map((part) => part.data),
      { names: images.map((part) => part.name) },
    );
    const withTypes = results.map((result, index) => ({ ...result, contentType: images[index].contentType ?? null }));
    return { verdict: await this.messageVerdict(withTypes, { rule }), images: withTypes, skipped };
  }

  /**
   * One verdict for a whole email (`.eml` bytes as a Blob, File, ArrayBuffer or typed array): the
   * user's text filter scores the subject and body, every image (attachments, `cid:` inline parts,
   * `data:` URIs) is classified, and `verdict: { label: 'spam' | 'ham' | 'ad', decided_by, reason }`
   * combines them, exactly as `spamlens scan --json`. `rule` overrides fields of the scanner's `{
   * image_spam_threshold, image_ad_threshold, use_text, use_images }`. Rejects with an Error naming
   * the message when the bytes are not an email (or the rule field that is wrong).
   */
  async scanEmail(message, { name = message?.name ?? 'message', rule } = {}) {
    await this.learning;
    const engine = await this.pick();
    if (!this.usesWorkers) return engine.scanEmail(message, name, this.ruleWith(rule));
    const { image, transfer } = transferable(message);
    return engine.request({ op: 'scanEmail', image, name, rule: this.ruleWith(rule) }, transfer);
  }

  /**
   * The user's "mark as spam" (`label` 'spam') or "not spam" ('ham') on a whole email: the text
   * filter learns at once and is saved to the store; the reaction (Email.cz vocabulary, with the
   * images' sha256) is added to the store's reaction log. Resolves to `{ before, after, steps,
   * merged, record }` (`before` / `after`: the text score).
   */
  feedback(message, label, { name = message?.name ?? 'message' } = {}) {
    if (label !== 'spam' && label !== 'ham') {
      return Promise.reject(new TypeError(`spamlens: feedback label must be 'spam' or 'ham', got ${label}`));
    }
    const run = this.learning.then(async () => {
      const engine = await this.pick();
      let result;
      if (this.usesWorkers) {
        const { image, transfer } = transferable(message);
        result = await engine.request({ op: 'feedback', image, label, name, now: Date.now() / 1000 }, transfer);
        await Promise.all(
          this.engines.filter((e) => e !== engine).map((e) => e.request({ op: 'setTextFilter', state: result.state })),
        );
      } else {
        result = await engine.feedback(message, label, name);
      }
      this.options.loadOptions = { ...this.options.loadOptions, textFilter: result.state };
      await this.store.saveFilter(this.user, result.state);
      await this.store.addReaction(this.user, result.record);
      const { before, after, steps, merged } = result.outcome;
      return { before, after, steps, merged, record: result.record };
    });
    this.learning = run.catch(() => {});
    return run;
  }

  /** The user's text filter state (JSON), as stored. */
  async textFilterState() {
    await this.learning;
    return (await this.store.loadFilter(this.user)) ?? this.options.loadOptions?.textFilter ?? null;
  }

  /** Forgets what the user taught: back to the built-in text filter (reactions are kept). */
  async resetTextFilter() {
    await this.learning;
    await this.store.clearFilter(this.user);
    this.options.loadOptions = { ...this.options.loadOptions, textFilter: null };
    if (!this.usesWorkers) return this.engines[0].setTextFilter(null);
    await Promise.all(this.engines.map((e) => e.request({ op: 'setTextFilter', state: null })));
  }

  /** The user's logged reactions, oldest first. */
  reactions() {
    return this.store.reactions(this.user);
  }

  /** The model's input tensor for an image (benchmarks, other runtimes). */
  preprocess(image, { name = 'image' } = {}) {
    return this.call('preprocess', image, name);
  }

  /** Classifies a tensor from `preprocess`; `millis` is inference alone. */
  async classifyTensor(tensor) {
    const engine = await this.pick();
    if (!this.usesWorkers) return engine.classifyTensor(tensor);
    return engine.request({ op: 'classifyTensor', tensor });
  }

  /** Stops the workers and frees the model; pending requests reject. */
  close() {
    this.closed = true;
    for (const engine of this.engines) engine.dispose();
  }
}
