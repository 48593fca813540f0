// The Web Worker: one Engine, requests answered in arrival order, progress posted while loading.
// Messages in: { id, op: 'load' | 'classify' | 'preprocess' | 'classifyTensor' | 'scanEmail' |
// 'messageVerdict' | 'feedback' | 'setTextFilter', ... }.
// Messages out: { id, progress } while loading, then { id, result } or { id, error, fatal }.
import { Engine } from './engine.js';

let engine = null;

const handlers = {
  async load(message) {
    engine = await Engine.load({
      ...message.options,
      onProgress: (progress) => self.postMessage({ id: message.id, progress }),
    });
    return engine.info;
  },
  async classify(message) {
    return ready().classify(message.image, message.name);
  },
  async preprocess(message) {
    return ready().preprocess(message.image, message.name);
  },
  async classifyTensor(message) {
    return ready().classifyTensor(message.tensor);
  },
  async scanEmail(message) {
    return ready().scanEmail(message.image, message.name, message.rule);
  },
  async messageVerdict(message) {
    return ready().messageVerdict(message.images, message.rule);
  },
  async feedback(message) {
    return ready().feedback(message.image, message.label, message.name, message.now);
  },
  async setTextFilter(message) {
    return ready().setTextFilter(message.state);
  },
};

function ready() {
  if (!engine) throw new Error('spamlens: the model is not loaded');
  return engine;
}

self.onmessage = async (event) => {
  const message = event.data;
  const handler = handlers[message.op];
  try {
    if (!handler) throw new Error(`spamlens: unknown worker request '${message.op}'`);
    self.postMessage({ id: message.id, result: await handler(message) });
  } catch (error) {
    // A trap (a Rust panic, out of memory) leaves the wasm instance unusable: say so, so the
    // scanner replaces this worker.
    const fatal = typeof WebAssembly === 'object' && error instanceof WebAssembly.RuntimeError;
    self.postMessage({ id: message.id, error: String(error?.message ?? error), fatal });
  }
};
