// The package's public API used as README.md documents it, for `tsc --noEmit` (test/types.test.mjs):
// a declaration in index.d.ts or engine.d.ts that does not fit the documented use fails the test.
// Never run. The imports go through package.json's "exports", as a user's would.
import {
  createScanner,
  isImagePart,
  clearModelCache,
  clearOcrCache,
  bestVariant,
  MemoryStore,
  IndexedDbStore,
  MODEL_CACHE,
  TESSDATA_CACHE,
  type EmailScan,
  type FilterStore,
  type ImageFailure,
  type ImageResult,
  type LoadProgress,
  type MessageClassification,
  type MessageVerdict,
  type ModelInfo,
  type Scanner,
  type VerdictRule,
} from 'spamlens';
import { Engine, imageBytes, type EngineOptions } from 'spamlens/engine';

declare const bar: { value: number };
declare const email: { attachments: { blob: Blob; type: string; filename: string }[] };
declare function showWarning(reason: string): void;

export async function readme(): Promise<void> {
  // The README's first example.
  const scanner = await createScanner({
    modelUrl: '/static/spamlens/model.onnx',
    sha256: 'ab12…',
    onProgress: ({ phase, loaded, total }) => (bar.value = total ? loaded / total : 0),
  });
  const parts = email.attachments.map((a) => ({ data: a.blob, contentType: a.type, name: a.filename }));
  const { verdict, images } = await scanner.classifyMessage(parts, { rule: { image_spam_threshold: 0.8 } });
  if (verdict.label === 'spam') showWarning(verdict.reason);
  for (const image of images) {
    if ('error' in image) console.log(image.name, image.error, image.contentType);
    else console.log(image.name, image.label, image.probabilities.spam, image.millis);
  }

  // createScanner's options.
  const progress: LoadProgress[] = [];
  const rule: VerdictRule = { image_spam_threshold: 0.9, image_ad_threshold: null, use_text: true, use_images: true };
  const other: Scanner = await createScanner({
    modelBytes: new Uint8Array(0),
    ocr: false,
    ocrDataUrl: new URL('https://example.org/tessdata/'),
    ocrEngineUrl: '/tesseract/',
    ocrVariant: 'relaxed',
    workers: 2,
    worker: false,
    cache: false,
    keepOtherModels: true,
    rule,
    wasmVariant: 'simd',
    wasmUrl: '/spamlens_simd.wasm',
    workerUrl: '/worker.js',
    user: 'anna@example.org',
    store: new MemoryStore(),
    textFilter: '{}',
    onProgress: (p) => progress.push(p),
  });

  // classify, classifyBatch.
  const one: ImageResult = await scanner.classify(new Blob([]), { name: 'a.png' });
  const { name, label, probabilities, millis, width, height, format } = one;
  console.log(name, label, probabilities.ham, millis, width, height, format, one.ocr_millis, one.ocr_problem);
  console.log(one.image_probabilities?.spam, one.text?.text, one.text?.probabilities, one.text?.layout.words);
  const batch: Array<ImageResult | ImageFailure> = await scanner.classifyBatch([new ArrayBuffer(1), new Uint8Array(1)], {
    names: ['a', 'b'],
  });

  // messageVerdict: the same shape as scanEmail's verdict.
  const fromResults: MessageVerdict = await scanner.messageVerdict(batch, { rule: { use_text: false } });
  const byHand: MessageVerdict = await scanner.messageVerdict([
    { name: 'x.png', label: 'spam', probabilities: { ham: 0.1, spam: 0.9 } },
    { name: 'y.png', error: 'y.png: corrupt' },
  ]);
  const message: MessageClassification = await scanner.classifyMessage(parts);
  console.log(fromResults.decided_by, byHand.reason, message.skipped[0]?.reason);

  // scanEmail, feedback and the text filter.
  const scan: EmailScan = await scanner.scanEmail(new Uint8Array(0), { name: 'm.eml', rule: { use_images: false } });
  const sameShape: MessageVerdict = scan.verdict;
  console.log(sameShape.label, scan.text?.score, scan.text?.is_spam, scan.images[0]?.source.kind, scan.remote_images);
  const learnt = await scanner.feedback(new Blob([]), 'spam', { name: 'm.eml' });
  console.log(learnt.before.score, learnt.after.score, learnt.steps, learnt.merged, learnt.record.reaction);
  const state: string | null = await scanner.textFilterState();
  await scanner.resetTextFilter();
  console.log(state, (await scanner.reactions()).length);

  // scanner.info.
  const info: ModelInfo = scanner.info;
  console.log(info.sha256, info.labels, info.metrics, info.training, info.metadata['spamlens.kind'], info.source);
  console.log(info.simd, info.wasmMemoryBytes, info.thresholds.spam, info.ocr?.engine, info.readsText, info.cached);
  console.log(scanner.labels.length);

  // preprocess + classifyTensor, the rest.
  const tensor = await scanner.preprocess(new Uint8Array(0));
  console.log((await scanner.classifyTensor(tensor)).probabilities);
  other.close();
  scanner.close();
  const removed: number = (await clearModelCache({ keep: 'ab12' })) + (await clearOcrCache());
  const variant: 'relaxed' | 'simd' = bestVariant();
  const store: FilterStore = new IndexedDbStore('spamlens');
  console.log(removed, variant, store, MODEL_CACHE, TESSDATA_CACHE, isImagePart({ contentType: 'image/png', name: 'a.png' }));

  // The API before core's rule: each must be a type error.
  // @ts-expect-error the `thresholds` option was replaced by `rule`
  await scanner.classifyMessage(parts, { thresholds: { spam: 0.8 } });
  // @ts-expect-error a verdict is { label, decided_by, reason }, not a label
  if (verdict === 'spam') showWarning('');
  // @ts-expect-error a rule's thresholds are numbers
  await scanner.messageVerdict([], { rule: { image_spam_threshold: '0.8' } });
  // @ts-expect-error not a rule field
  await scanner.messageVerdict([], { rule: { spam: 0.8 } });
}

// spamlens/engine: a worker of your own.
export async function engine(): Promise<void> {
  const options: EngineOptions = { modelUrl: '/model.onnx', ocr: false };
  const own = await Engine.load(options);
  const bytes: Uint8Array = await imageBytes(new Blob([]));
  const result = await own.classify(bytes, 'a.png');
  const verdict: MessageVerdict = own.messageVerdict([result], { image_spam_threshold: 0.5 });
  const scan: EmailScan = await own.scanEmail(bytes, 'm.eml');
  const taught = await own.feedback(bytes, 'ham', 'm.eml', Date.now() / 1000);
  own.setTextFilter(taught.state);
  console.log(verdict.label, scan.verdict.label, own.textFilterState(), own.info.name, own.classifyTensor(new Float32Array(0)).label);
  own.dispose();
}
