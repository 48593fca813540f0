// Types for `spamlens/engine`: the in-thread engine, for workers of your own.
import type {
  EmailScan,
  ImageInput,
  ImageResult,
  Label,
  MessageVerdict,
  Probabilities,
  ModelInfo,
  ReactionRecord,
  ScannerOptions,
  TextScore,
  VerdictImage,
  VerdictRule,
} from './index.js';

/** What `Engine.load` takes: the scanner's options that concern one engine. */
export type EngineOptions = Omit<ScannerOptions, 'workers' | 'worker' | 'workerUrl' | 'store' | 'user' | 'rule'>;

/** Image input as bytes (a view over the caller's buffer where it can be). */
export declare function imageBytes(image: ImageInput): Promise<Uint8Array>;

/** One loaded model (and OCR engine, and text filter) in this thread. */
export declare class Engine {
  static load(options: EngineOptions): Promise<Engine>;
  readonly info: ModelInfo;
  classify(image: ImageInput, name?: string): Promise<ImageResult>;
  preprocess(image: ImageInput, name?: string): Promise<Float32Array>;
  classifyTensor(tensor: Float32Array): { label: Label; probabilities: Probabilities; millis: number };
  /** One verdict for a whole email, as `spamlens scan --json`. */
  scanEmail(message: ImageInput, name?: string, rule?: VerdictRule): Promise<EmailScan>;
  /** The message verdict from per-image results by core's rule; throws an Error naming what is wrong. */
  messageVerdict(images: VerdictImage[], rule?: VerdictRule): MessageVerdict;
  /** The text filter learns from the message; `state` is its new state (JSON) to keep. */
  feedback(
    message: ImageInput,
    label: 'spam' | 'ham',
    name?: string,
    nowSeconds?: number,
  ): Promise<{
    outcome: { before: TextScore; after: TextScore; steps: number; new_adaptive_tokens: number; merged: boolean };
    record: ReactionRecord;
    state: string;
  }>;
  /** Replaces the text filter (a saved state, or null for the built-in one). */
  setTextFilter(state: string | null): { inputLayers: number; threshold: number; adaptiveTokens: number; merges: number };
  /** The text filter's state as JSON. */
  textFilterState(): string;
  dispose(): void;
}
