// In-page half of bench.mjs: the same model and the same input tensors (spamlens' own
// preprocessing) through tract-wasm (the spamlens package, in this thread) and onnxruntime-web
// (wasm execution provider, SIMD, one thread), alternating image by image.
import { createScanner } from '/pkg/src/index.js';
import { loadWasm } from '/pkg/src/wasm.js';
import * as ort from '/ort/ort.wasm.min.mjs';

const params = new URLSearchParams(location.search);
const rounds = Number(params.get('rounds') ?? 3);
const variant = params.get('variant') ?? undefined;
const log = (text) => {
  document.querySelector('#log').textContent += `\n${text}`;
};

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main() {
  const images = await (await fetch('/images.json')).json();
  const modelBytes = new Uint8Array(await (await fetch('/model.onnx')).arrayBuffer());

  let started = performance.now();
  // Inference alone: the model's image side (OCR is benchmarked by benches/ocr).
  const scanner = await createScanner({ modelBytes: modelBytes.slice(), worker: false, wasmVariant: variant, ocr: false });
  const tractLoad = performance.now() - started;

  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = '/ort/';
  started = performance.now();
  const session = await ort.InferenceSession.create(modelBytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const ortLoad = performance.now() - started;
  const inputName = session.inputNames[0];
  const buckets = Number(scanner.info.ocr?.featurizer.match(/mod (\d+)/)?.[1]);
  const textInputs = session.inputNames.includes('ocr_ngrams') ? { buckets } : null;

  const tract = [];
  const onnx = [];
  const full = [];
  let maxDiff = 0;
  for (let round = -1; round < rounds; round++) {
    for (const image of images) {
      const bytes = new Uint8Array(await (await fetch(image.url)).arrayBuffer());
      const classified = await scanner.classify(bytes, { name: image.name });
      const tensor = await scanner.preprocess(bytes, { name: image.name });
      const ours = await scanner.classifyTensor(tensor);
      const feeds = { [inputName]: new ort.Tensor('float32', tensor, [1, ...scanner.info.inputDims]) };
      // A model that reads text takes its text inputs too: none here, and its image-only output.
      if (textInputs) {
        feeds.ocr_ngrams = new ort.Tensor('float32', new Float32Array(textInputs.buckets), [1, textInputs.buckets]);
        feeds.ocr_layout = new ort.Tensor('float32', new Float32Array(8), [1, 8]);
      }
      const output = textInputs ? 'image_probabilities' : 'probabilities';
      const t0 = performance.now();
      const out = await session.run(feeds, [output]);
      const ortMillis = performance.now() - t0;
      const theirs = out[output].data;
      scanner.labels.forEach((label, i) => {
        maxDiff = Math.max(maxDiff, Math.abs(theirs[i] - ours.probabilities[label]));
      });
      if (round >= 0) {
        // Round -1 warms both runtimes up (first-run allocations, lazy packing).
        tract.push(ours.millis);
        onnx.push(ortMillis);
        full.push(classified.millis);
      }
    }
  }
  const result = {
    simd: scanner.info.simd,
    crossOriginIsolated: globalThis.crossOriginIsolated,
    images: images.length,
    rounds,
    tractLoadMillis: tractLoad,
    tractLoadPhases: scanner.info.loadPhases,
    // The module's linear memory (only grows): after the model load, and after every run.
    tractMemoryAfterLoad: scanner.info.wasmMemoryBytes,
    tractMemoryAfterRuns: (await loadWasm()).memoryBytes(),
    ortLoadMillis: ortLoad,
    tractMedianMillis: median(tract),
    ortMedianMillis: median(onnx),
    tractClassifyMedianMillis: median(full),
    maxProbabilityDiff: maxDiff,
    perImage: { tract, ort: onnx },
  };
  log(JSON.stringify(result, null, 1));
  window.benchResult = result;
}

main().catch((error) => {
  log(`failed: ${error.stack ?? error}`);
  window.benchResult = { error: String(error) };
});
