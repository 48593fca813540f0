// Types for the spamlens JS package.

/** A class the model can output. */
export type Label = 'spam' | 'ham' | 'ad' | (string & {});

/**
 * Each class's probability, in the model's class order: `{ ham, spam }` for the built-in model,
 * `{ ham, spam, ad }` for a three-class one (`scanner.info.labels` says which).
 */
export type Probabilities = { [label: string]: number };

/** Image input: a Blob/File, an ArrayBuffer, or any typed array or DataView over the bytes. */
export type ImageInput = Blob | ArrayBuffer | ArrayBufferView;

/** One classified image. */
export interface ImageResult {
  name: string;
  /** The most probable class. */
  label: Label;
  /** Every class's probability (they sum to 1): `{ ham, spam, ad? }`. */
  probabilities: Probabilities;
  /** Decode + preprocessing + inference, in milliseconds. */
  millis: number;
  width: number;
  height: number;
  /** Detected from the bytes: JPEG, PNG, GIF, BMP, WEBP, TIFF, ICO. */
  format: string;
  /** A model that reads text: what the image alone says. */
  image_probabilities?: Probabilities;
  /** A model that reads text, when the text was read: the text, what it alone says, layout, words. */
  text?: TextReading;
  /** Why the image's text was not read (the image alone decided). */
  ocr_problem?: string;
  /** OCR time in milliseconds (within `millis`). */
  ocr_millis?: number;
}

/** One word OCR read: its box is in the decoded image's pixels. */
export interface OcrWord {
  text: string;
  /** 0–100. */
  confidence: number;
  /** left, top, right, bottom. */
  bbox: [number, number, number, number];
  /** Text line index in reading order. */
  line: number;
}

/** What OCR read in an image. */
export interface TextReading {
  /** Words joined by spaces, lines by newlines. */
  text: string;
  /** The text-only probabilities. */
  probabilities?: Probabilities;
  layout: {
    words: number;
    confident_words: number;
    lines: number;
    mean_confidence: number;
    text_area_fraction: number;
    characters: number;
    digit_fraction: number;
    symbol_fraction: number;
  };
  words: OcrWord[];
}

/** A model's OCR contract (`spamlens.ocr`): the engine and trained data it was trained with. */
export interface OcrContract {
  engine: string;
  engine_major: number;
  engine_mode: string;
  page_segmentation: number;
  data: { language: string; sha256: string }[];
  dpi: number;
  image: string;
  featurizer: string;
  trained_with: string;
}

/** An image that could not be classified (corrupt, unsupported, over the limits). */
export interface ImageFailure {
  name: string;
  /** Names the image and the problem. */
  error: string;
}

export interface LoadProgress {
  phase: 'cache' | 'download' | 'verify' | 'compile' | 'ocr-engine' | 'ocr-data' | 'ready';
  /** For 'ocr-data': the trained data's language. */
  language?: string;
  loaded: number;
  /** Null while the size is unknown (no Content-Length). */
  total: number | null;
  /** Which worker reports (workers after the first load from the cache). */
  worker?: number;
}

/** The loaded model's contract and provenance (from its ONNX metadata_props). */
export interface ModelInfo {
  name: string;
  sha256: string;
  bytes: number;
  labels: Label[];
  kind: string | null;
  preprocessing: string | null;
  backboneSha256: string | null;
  featureSource: string | null;
  head: string | null;
  precision: string | null;
  version: string | null;
  created: string | null;
  metrics: Record<string, unknown> | null;
  training: Record<string, unknown> | null;
  inputDims: number[];
  /** The model's operating point (`spamlens.thresholds`): the probability that makes an image each
   * class (an image's `label` follows it); empty when the label is the most probable class. */
  thresholds: Thresholds;
  /** How the operating point was chosen (`spamlens.operating_point`), when the model says. */
  operatingPoint: Record<string, unknown> | null;
  /** How long each step of the model's load took in this worker, in order (milliseconds):
   * wasm module, model bytes (network or cache), sha256 (WebCrypto; or in wasm without it), then
   * tract's steps: protobuf, widen weights, onnx graph, typing, declutter, optimise (kernel
   * selection, weight packing), plan. */
  loadPhases: { phase: string; millis: number }[];
  runtimeVersion: string;
  /** The wasm variant running: 'relaxed-simd' or 'simd128'. */
  simd: string;
  /** A model that reads text: its OCR contract (else null). */
  ocr: OcrContract | null;
  /** A model that reads text: the image-only operating point. */
  imageThresholds: Thresholds;
  /** Whether this scanner reads text (the model does and OCR is on). */
  readsText: boolean;
  /** The OCR engine running, when it reads text. */
  ocrEngine?: {
    engine: string;
    version: string;
    engine_mode: string;
    page_segmentation: number;
    dpi: number;
    data: { language: string; sha256: string }[];
    variant: 'simd' | 'relaxed';
  };
  /** Where the model bytes came from this time. */
  source: 'cache' | 'network' | 'bytes';
  /** Whether the model is now in the Cache API store. */
  cached: boolean;
  /**
   * The wasm module's linear memory once the model is loaded, in bytes: what this worker holds
   * (WebAssembly memory never shrinks, so it is also the load's peak).
   */
  wasmMemoryBytes: number;
  metadata: Record<string, string>;
}

/** An operating point: class → the probability that makes an image that class. */
export type Thresholds = { [label: string]: number };

export interface ScannerOptions {
  /** The combined spamlens model (backbone + head), ~100 MB. */
  modelUrl?: string | URL;
  /** Or its bytes. */
  modelBytes?: ArrayBuffer | Uint8Array;
  /** The model's sha256: cache key and integrity check. Else `<modelUrl>.sha256` is read if served. */
  sha256?: string;
  onProgress?: (progress: LoadProgress) => void;
  /** Web Workers, each with its own model copy (default 1). */
  workers?: number;
  /** Run in Web Workers (default: when `Worker` exists). */
  worker?: boolean;
  /** Keep the model in the Cache API (default true). */
  cache?: boolean;
  /** Keep other cached model versions (default false: a new model replaces them). */
  keepOtherModels?: boolean;
  /** How the parts' results become a message's verdict (core's rule) in `scanEmail`,
   * `classifyMessage` and `messageVerdict`, whose own `rule` may override fields. Default: an image
   * counts by its label (the model's operating point), and the text filter counts. */
  rule?: VerdictRule;
  /** Force a wasm variant (benchmarks). */
  wasmVariant?: 'relaxed' | 'simd';
  /** Where to fetch the wasm module from instead of beside the package. */
  wasmUrl?: string | URL;
  /** Where to start the worker from instead of beside the package. */
  workerUrl?: string | URL;
  /** A fetch to use (only with `worker: false`). */
  fetchImpl?: typeof fetch;
  /** The model's name in errors (default: its URL). */
  modelName?: string;
  /** Whose text filter to load and teach (default 'default'). */
  user?: string;
  /** Where text filters and reactions are kept (default: IndexedDB, else memory). */
  store?: FilterStore;
  /** A text filter state (JSON) to start from instead of the stored one. */
  textFilter?: string;
  /** Read the text in images when the model does (default true); false: the image alone decides. */
  ocr?: boolean;
  /** The folder serving the OCR trained data (`<language>.traineddata`); default `tessdata/` beside modelUrl. */
  ocrDataUrl?: string | URL;
  /** The folder of tesseract.js-core's build (default: the package's dist/tesseract/). */
  ocrEngineUrl?: string | URL;
  /** 'simd' (default) or 'relaxed'. */
  ocrVariant?: 'simd' | 'relaxed';
}

/** Keeps users' text filters and reactions; `MemoryStore` and `IndexedDbStore` are provided. */
export interface FilterStore {
  loadFilter(user: string): Promise<string | null>;
  saveFilter(user: string, state: string): Promise<void>;
  clearFilter(user: string): Promise<void>;
  addReaction(user: string, record: ReactionRecord): Promise<void>;
  reactions(user: string): Promise<ReactionRecord[]>;
}
export declare class MemoryStore implements FilterStore {
  loadFilter(user: string): Promise<string | null>;
  saveFilter(user: string, state: string): Promise<void>;
  clearFilter(user: string): Promise<void>;
  addReaction(user: string, record: ReactionRecord): Promise<void>;
  reactions(user: string): Promise<ReactionRecord[]>;
}
export declare class IndexedDbStore implements FilterStore {
  /** The IndexedDB database (default 'spamlens'). */
  constructor(databaseName?: string);
  loadFilter(user: string): Promise<string | null>;
  saveFilter(user: string, state: string): Promise<void>;
  clearFilter(user: string): Promise<void>;
  addReaction(user: string, record: ReactionRecord): Promise<void>;
  reactions(user: string): Promise<ReactionRecord[]>;
}

/** The CLA_ANN text filter's judgement of a message. */
export interface TextScore {
  /** Mean weight of the matched input layers (0 when none matched). */
  score: number;
  is_spam: boolean;
  threshold: number;
  matched: number;
  /** [token, weight] of the matched layers with the highest weights. */
  strongest: [string, number][];
}

/** One image of a scanned email. */
export interface EmailImage {
  name: string;
  source: { kind: 'attachment' } | { kind: 'inline'; content_id: string } | { kind: 'data_uri' };
  content_type: string | null;
  bytes: number;
  sha256: string;
  label?: Label;
  probabilities?: Probabilities;
  width?: number;
  height?: number;
  format?: string;
  /** Why it was not classified. */
  error?: string;
  /** Why images were not classified at all (no image model in use). */
  skipped?: string;
  image_probabilities?: Probabilities;
  text?: TextReading;
  ocr_problem?: string;
}

/** What `scanEmail` returns: the same JSON as `spamlens scan --json`. */
export interface EmailScan {
  message: string;
  subject: string;
  from: string | null;
  message_id: string | null;
  date: string | null;
  verdict: MessageVerdict;
  text: TextScore | null;
  images: EmailImage[];
  /** Remote image URLs: listed, never fetched. */
  remote_images: string[];
  problems: string[];
}

/** A message's verdict by core's rule (`core::scan::combine`), as `spamlens scan --json` gives it. */
export interface MessageVerdict {
  label: 'spam' | 'ham' | 'ad';
  /** Which part decided: `image+text` when both said spam, `none` for ham. */
  decided_by: 'image' | 'text' | 'image+text' | 'none';
  /** The reason in words, naming the image that decided. */
  reason: string;
}

/**
 * How the parts become the message's verdict (core's `VerdictRule`); every field is optional, and
 * an unknown field, a wrong type or a threshold outside 0..=1 is refused with an Error naming it.
 */
export interface VerdictRule {
  /** An image with at least this p(spam) makes the message spam; null/absent: its label decides. */
  image_spam_threshold?: number | null;
  /** An image with at least this p(ad) makes a not-spam message an ad; null/absent: its label decides. */
  image_ad_threshold?: number | null;
  /** Whether the text filter's verdict counts (default true). */
  use_text?: boolean;
  /** Whether the images' labels count (default true). */
  use_images?: boolean;
}

/** A "mark as spam / not spam" reaction, in the Email.cz vocabulary. */
export interface ReactionRecord {
  time_unix: number;
  message: string;
  message_id: string | null;
  label: 'spam' | 'ham';
  reaction: 'USER_MESSAGE_MARK_SPAM' | 'USER_MESSAGE_UNMARK_SPAM' | 'USER_MESSAGE_MARK_AD' | 'USER_MESSAGE_MARK_NONAD';
  images: { sha256: string; name: string }[];
  text_score_before: number;
  text_score_after: number;
}

/** What `feedback` returns. */
export interface FeedbackResult {
  before: TextScore;
  after: TextScore;
  steps: number;
  merged: boolean;
  record: ReactionRecord;
}

/** A part of an email, as webmail has it. */
export interface MessagePart {
  data: ImageInput;
  contentType?: string;
  name?: string;
}

/** What `classifyMessage` returns. */
export interface MessageClassification {
  /** Core's verdict over the image parts (`messageVerdict`). */
  verdict: MessageVerdict;
  images: Array<(ImageResult | ImageFailure) & { contentType: string | null }>;
  /** The parts that are not images. */
  skipped: Array<{ name: string; contentType: string | null; reason: string }>;
}

/** A per-image result the verdict reads: `classify`'s (other fields are ignored) or a failure. */
export type VerdictImage =
  | { name: string; label: Label; probabilities: Probabilities }
  | ImageFailure;

export declare class Scanner {
  readonly info: ModelInfo;
  readonly labels: Label[];
  classify(image: ImageInput, options?: { name?: string }): Promise<ImageResult>;
  classifyBatch(images: ImageInput[], options?: { names?: string[] }): Promise<Array<ImageResult | ImageFailure>>;
  /** Classifies the image parts and gives their verdict by core's rule. */
  classifyMessage(parts: MessagePart[], options?: { rule?: VerdictRule }): Promise<MessageClassification>;
  /** The message verdict from per-image results by core's rule (the one `scanEmail` uses), in a worker. */
  messageVerdict(images: VerdictImage[], options?: { rule?: VerdictRule }): Promise<MessageVerdict>;
  /** One verdict for a whole email (.eml bytes): text filter + every image, as `spamlens scan --json`. */
  scanEmail(message: ImageInput, options?: { name?: string; rule?: VerdictRule }): Promise<EmailScan>;
  /** "Mark as spam / not spam": the user's text filter learns at once; saved to the store. */
  feedback(message: ImageInput, label: 'spam' | 'ham', options?: { name?: string }): Promise<FeedbackResult>;
  /** The user's text filter state (JSON). */
  textFilterState(): Promise<string | null>;
  /** Back to the built-in text filter. */
  resetTextFilter(): Promise<void>;
  /** The user's logged reactions. */
  reactions(): Promise<ReactionRecord[]>;
  preprocess(image: ImageInput, options?: { name?: string }): Promise<Float32Array>;
  classifyTensor(tensor: Float32Array): Promise<{ label: Label; probabilities: Probabilities; millis: number }>;
  close(): void;
}

/** Loads the model (from the cache when it can) and starts the worker(s). */
export declare function createScanner(options: ScannerOptions): Promise<Scanner>;

/** Whether a message part is scanned as an image. */
export declare function isImagePart(part: { contentType?: string; name?: string }): boolean;

/** The Cache API cache name. */
export declare const MODEL_CACHE: string;

/** The Cache API cache that holds OCR trained data. */
export declare const TESSDATA_CACHE: string;

/** Deletes the cached OCR trained data. */
export declare function clearOcrCache(): Promise<number>;

/** Deletes cached models (all, or all but `keep`); resolves to how many were removed. */
export declare function clearModelCache(options?: { keep?: string }): Promise<number>;

/** The wasm variant this engine would run ('relaxed' | 'simd'); throws without WebAssembly SIMD. */
export declare function bestVariant(): 'relaxed' | 'simd';
