// The JS package's API under Node (no browser): the web build's wasm, the in-thread engine, the
// message verdict and the model loader. Run by runtime-native/tests/web.rs, which passes:
//   SPAMLENS_TEST_MODEL     a combined spamlens model (the built-in default)
//   SPAMLENS_TEST_EXPECTED  `spamlens classify --json` output (JSON Lines) for some real images
// Alone: SPAMLENS_TEST_MODEL=… SPAMLENS_TEST_EXPECTED=… node --test runtime-wasm/js/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { createScanner, isImagePart, bestVariant, MemoryStore } from '../src/index.js';
import { loadModelBytes, download } from '../src/model-source.js';
import { loadWasm } from '../src/wasm.js';

const here = dirname(fileURLToPath(import.meta.url));
const packageDir = join(here, '..');
const repo = join(packageDir, '..', '..');

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (runtime-native/tests/web.rs sets it; see this file's header)`);
  return value;
}

const modelPath = required('SPAMLENS_TEST_MODEL');
const expected = (await readFile(required('SPAMLENS_TEST_EXPECTED'), 'utf8'))
  .split('\n')
  .filter((line) => line.trim())
  .map((line) => JSON.parse(line));
const modelBytes = await readFile(modelPath);
const modelSha = createHash('sha256').update(modelBytes).digest('hex');
// The model reads text: the OCR trained data comes from the folder native spamlens uses.
const ocrDataUrl = pathToFileURL(`${required('SPAMLENS_TEST_TESSDATA')}/`);
const base = { modelBytes, worker: false, ocrDataUrl };
const scanner = await createScanner({ ...base, modelName: 'test-model.onnx' });

/**
 * Browser vs native on one image: the image-only probabilities within 1e-4 (the same network on the
 * same pixels); the fused ones within 1e-3 when OCR read the same text (two builds of Tesseract 5
 * may read a rare word differently). Returns `{ image, fused, sameText }`.
 */
function parity(result, reference) {
  const diff = (a, b) => Math.max(0, ...Object.entries(b ?? {}).map(([cls, p]) => Math.abs(a[cls] - p)));
  const sameText = (result.text?.text ?? null) === (reference.text?.text ?? null);
  return {
    image: diff(result.image_probabilities ?? result.probabilities, reference.image_probabilities ?? reference.probabilities),
    fused: sameText ? diff(result.probabilities, reference.probabilities) : 0,
    fusedAnyway: diff(result.probabilities, reference.probabilities),
    characters: characterAgreement(result.text?.text ?? '', reference.text?.text ?? ''),
    sameText,
  };
}

/** Share of characters two texts have in common, in order (longest common subsequence / longer length). */
function characterAgreement(a, b) {
  const x = [...a];
  const y = [...b];
  if (!x.length && !y.length) return 1;
  let previous = new Array(y.length + 1).fill(0);
  for (const cx of x) {
    const row = [0];
    for (let j = 0; j < y.length; j++) row.push(cx === y[j] ? previous[j] + 1 : Math.max(previous[j + 1], row[j]));
    previous = row;
  }
  return previous[y.length] / Math.max(x.length, y.length);
}

test('the engine picks the SIMD build Node can run', () => {
  assert.equal(bestVariant(), scanner.info.simd === 'relaxed-simd' ? 'relaxed' : 'simd');
});

test('model info comes from the metadata', () => {
  const { info } = scanner;
  assert.equal(info.sha256, modelSha);
  assert.equal(info.name, 'test-model.onnx');
  assert.equal(info.kind, 'combined');
  assert.deepEqual(info.labels, ['ham', 'spam']);
  assert.equal(info.bytes, modelBytes.length);
  assert.equal(info.source, 'bytes');
  assert.deepEqual(info.inputDims, [3, 224, 224]);
  assert.equal(typeof info.metrics, 'object');
  assert.ok(info.metadata['spamlens.preprocessing'].length > 0);
  // The load's steps, timed: WebCrypto hashed the bytes, so the wasm side did not.
  const phases = info.loadPhases.map((p) => p.phase);
  assert.deepEqual(phases.slice(0, 4), ['wasm module', 'model bytes', 'sha256 (WebCrypto)', 'protobuf']);
  assert.deepEqual(phases.slice(-4), ['typing', 'declutter', 'optimise', 'plan']);
  assert.ok(!phases.includes('sha256'), phases.join(', '));
  assert.ok(info.loadPhases.every((p) => Number.isFinite(p.millis) && p.millis >= 0));
});

test('probabilities and OCR text match native spamlens classify', async () => {
  assert.ok(expected.length >= 5, 'expected at least 5 reference images');
  assert.equal(scanner.info.readsText, true);
  assert.equal(scanner.info.ocrEngine.engine, 'tesseract');
  let worst = { image: 0, fused: 0 };
  const differing = [];
  for (const reference of expected) {
    const bytes = await readFile(reference.file);
    const result = await scanner.classify(bytes, { name: reference.file });
    assert.equal(result.width, reference.width);
    assert.equal(result.height, reference.height);
    assert.equal(result.format, reference.format);
    assert.ok(result.millis > 0);
    assert.equal(typeof result.text?.text, 'string', `${reference.file}: the text is read`);
    const p = parity(result, reference);
    worst = { image: Math.max(worst.image, p.image), fused: Math.max(worst.fused, p.fused) };
    // Labels agree everywhere; Tesseract 5.1 (wasm) and 5.3 (Debian) may read a few characters apart.
    assert.equal(result.label, reference.label, reference.file);
    if (!p.sameText) differing.push(`${reference.file}: ${(100 * p.characters).toFixed(1)}% of characters agree, |Δp| fused ${p.fusedAnyway.toExponential(2)}, labels ${result.label}/${reference.label}`);
  }
  assert.ok(worst.image <= 1e-4, `max |Δp| image-only ${worst.image}`);
  assert.ok(worst.fused <= 1e-3, `max |Δp| fused ${worst.fused}`);
  assert.ok(differing.length * 10 <= expected.length * 4, `OCR text differs on more than 4 in 10 images:\n${differing.join('\n')}`);
  console.log(`# ${expected.length} images: max |Δp| image-only ${worst.image.toExponential(2)}, fused ${worst.fused.toExponential(2)}; ` +
    `OCR text differs on ${differing.length}`);
  for (const line of differing) console.log(`#   ${line}`);
});

test('ocr: false decides by the image alone', async () => {
  const plain = await createScanner({ ...base, ocr: false });
  try {
    assert.equal(plain.info.readsText, false);
    const result = await plain.classify(await readFile(expected[0].file));
    assert.equal(result.text, undefined);
    assert.deepEqual(result.probabilities, result.image_probabilities);
  } finally {
    plain.close();
  }
  await assert.rejects(
    createScanner({ modelBytes, worker: false }),
    /ocrDataUrl/,
    'a model that reads text needs its trained data',
  );
});

test('a corrupt image is an Error naming it; the scanner keeps working', async () => {
  await assert.rejects(scanner.classify(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]), { name: 'broken.png' }), (error) => {
    assert.match(error.message, /^broken\.png: /);
    return true;
  });
  await assert.rejects(scanner.classify('not bytes'), TypeError);
  const good = await scanner.classify(await readFile(expected[0].file));
  assert.equal(good.label, expected[0].label);
});

test('a batch reports failures per image, in input order', async () => {
  const good = await readFile(expected[0].file);
  const results = await scanner.classifyBatch([good, new Uint8Array(10), good.buffer.slice(good.byteOffset, good.byteOffset + good.byteLength)], {
    names: ['a.jpg', 'zeros.bin'],
  });
  assert.equal(results.length, 3);
  assert.equal(results[0].name, 'a.jpg');
  assert.equal(results[0].label, expected[0].label);
  assert.equal(results[1].name, 'zeros.bin');
  assert.match(results[1].error, /^zeros\.bin: /);
  assert.equal(results[2].name, 'image 3');
  assert.deepEqual(results[2].probabilities, results[0].probabilities);
});

test('the wasm Classifier itself: classifyBatch, labels, errors as Error', async () => {
  const { Classifier } = await loadWasm();
  const classifier = new Classifier(modelBytes, 'direct.onnx');
  try {
    assert.deepEqual(classifier.labels, ['ham', 'spam']);
    // Without a digest from the caller the wasm side hashes the bytes itself.
    assert.equal(classifier.info().sha256, modelSha);
    assert.equal(classifier.info().loadPhases[0].phase, 'sha256');
    const good = await readFile(expected[0].file);
    const results = classifier.classifyBatch([good, new Uint8Array([1, 2])], ['good.jpg']);
    assert.equal(results[0].label, expected[0].label);
    assert.equal(results[1].name, 'image 2');
    assert.match(results[1].error, /^image 2: /);
    assert.throws(() => classifier.classify(new Uint8Array(0), 'empty.png'), (error) => error instanceof Error && /^empty\.png: /.test(error.message));
  } finally {
    classifier.free();
  }
  assert.throws(() => new Classifier(new Uint8Array([0, 1]), 'tiny.onnx'), /tiny\.onnx/);
  assert.throws(() => new Classifier(modelBytes, 'digest.onnx', 'not-a-digest'), /digest\.onnx: cannot load: the given sha256 'not-a-digest' is not 64 hex digits/);
});

test('preprocess + classifyTensor gives classify\'s probabilities', async () => {
  const bytes = await readFile(expected[0].file);
  const tensor = await scanner.preprocess(bytes);
  assert.equal(tensor.length, 3 * 224 * 224);
  const fromTensor = await scanner.classifyTensor(tensor);
  const direct = await scanner.classify(bytes);
  // A tensor carries no text: the image-only output.
  assert.deepEqual(fromTensor.probabilities, direct.image_probabilities);
  await assert.rejects(scanner.classifyTensor(new Float32Array(5)), /input batch of 5 floats/);
});

test('a message: image parts classified, others skipped, core\'s rule decides', async () => {
  const spam = expected.find((r) => r.label === 'spam');
  const ham = expected.find((r) => r.label === 'ham');
  assert.ok(spam && ham, 'the reference images include a spam and a ham image');
  const parts = [
    { data: new TextEncoder().encode('hello'), contentType: 'text/plain; charset=utf-8', name: 'body.txt' },
    { data: await readFile(ham.file), contentType: 'image/jpeg', name: 'ham-part' },
    { data: await readFile(spam.file), contentType: 'application/octet-stream', name: 'offer.gif' },
    { data: new Uint8Array(3), contentType: 'image/png', name: 'broken.png' },
  ];
  const message = await scanner.classifyMessage(parts);
  assert.equal(message.verdict.label, 'spam');
  assert.equal(message.verdict.decided_by, 'image');
  assert.match(message.verdict.reason, /^image 'offer\.gif' is spam \(p = [0-9.]+ over the model's threshold\)$/);
  assert.deepEqual(message.skipped.map((s) => s.name), ['body.txt']);
  assert.equal(message.images.length, 3);
  assert.match(message.images[2].error, /^broken\.png: /);
  // The verdict is messageVerdict's over the image results.
  assert.deepEqual(await scanner.messageVerdict(message.images), message.verdict);
  const hamOnly = await scanner.classifyMessage(parts.slice(0, 2));
  assert.deepEqual(hamOnly.verdict, { label: 'ham', decided_by: 'none', reason: 'no text filter; 1 of 1 images classified, none spam' });
  // A threshold above the spam image's p(spam) lets it through.
  const pSpam = message.images[1].probabilities.spam;
  const lenient = await scanner.classifyMessage(parts, { rule: { image_spam_threshold: Math.min(1, pSpam + 1e-3) } });
  assert.equal(lenient.verdict.label, 'ham');
  const none = await scanner.classifyMessage([parts[0]]);
  assert.deepEqual(none.verdict, { label: 'ham', decided_by: 'none', reason: 'no text filter; 0 of 0 images classified, none spam' });
  await assert.rejects(scanner.classifyMessage(parts, { thresholds: { spam: 0.8 } }), /'thresholds' option was replaced by 'rule'/);
});

test('messageVerdict is core\'s rule: labels, thresholds, failures, and errors naming the field', async () => {
  const img = (name, label, spam, ad) => ({ name, label, probabilities: { ham: 1 - spam - ad, spam, ad } });
  const images = [img('a', 'ad', 0.2, 0.4), img('b', 'ham', 0.45, 0.25), { name: 'c', error: 'c: corrupt' }];
  const verdict = (rule) => scanner.messageVerdict(images, { rule });
  // By default each image counts by its label (the model's operating point).
  assert.deepEqual(await verdict(), { label: 'ad', decided_by: 'image', reason: "image 'a' is an ad (p = 0.400 over the model's threshold)" });
  assert.deepEqual(await verdict({ image_spam_threshold: 0.4 }), { label: 'spam', decided_by: 'image', reason: "image 'b' is spam (p = 0.450 ≥ 0.4)" });
  assert.equal((await verdict({ image_ad_threshold: 0.5 })).label, 'ham');
  assert.equal((await verdict({ use_images: false })).label, 'ham');
  assert.equal((await scanner.messageVerdict([{ name: 'x', error: 'x: corrupt' }])).label, 'ham');
  assert.equal((await scanner.messageVerdict([])).reason, 'no text filter; 0 of 0 images classified, none spam');
  // Bad rules and results are Errors naming what is wrong.
  await assert.rejects(verdict({ image_spam_threshold: 1.5 }), /^Error: rule: image spam threshold 1\.5 is outside 0\.\.=1$/);
  await assert.rejects(verdict({ image_spam_threshold: Number.NaN }), /rule: image spam threshold NaN is outside 0\.\.=1/);
  await assert.rejects(verdict({ image_ad_threshold: 'high' }), /^Error: rule\.image_ad_threshold: invalid type: string "high"/);
  await assert.rejects(verdict({ use_text: 1 }), /^Error: rule\.use_text: /);
  await assert.rejects(verdict({ spam: 0.8 }), /^Error: rule: unknown field 'spam' \(known: image_ad_threshold, image_spam_threshold, use_images, use_text\)$/);
  await assert.rejects(verdict('strict'), /^Error: rule: expected an object with any of .*, got the string "strict"$/);
  await assert.rejects(scanner.messageVerdict([{ name: 'p', probabilities: { spam: 0.9 } }]), /^Error: images\[0\] \('p'\): needs 'label' and 'probabilities'/);
  await assert.rejects(scanner.messageVerdict([img('q', 'spam', 1.5, 0)]), /images\[0\] \('q'\): probabilities\.ham = -0\.5 is not within 0\.\.=1/);
  await assert.rejects(scanner.messageVerdict([{ label: 'spam', probabilities: {} }]), /^Error: images\[0\]: needs a 'name'$/);
  await assert.rejects(scanner.messageVerdict([{ name: 'r', label: 'spam', probabilities: { spam: '0.9' } }]), /^Error: images\[0\] \('r'\)\.probabilities: invalid type: string "0\.9", expected f64$/);
  await assert.rejects(scanner.messageVerdict([img('s', 'spam', 0.9, 0), 7]), /^Error: images\[1\]: expected \{ name, label, probabilities \} or \{ name, error \}, got number$/);
  await assert.rejects(scanner.messageVerdict({ name: 'x' }), /^Error: images: expected an array/);
  // The same rule reaches scanEmail.
  await assert.rejects(scanner.scanEmail(new Uint8Array(0), { rule: { image_spam_treshold: 0.5 } }), /unknown field 'image_spam_treshold'/);
  // A scanner's rule is checked when it is created, and is the default its calls override.
  await assert.rejects(createScanner({ ...base, rule: { image_spam_threshold: 2 } }), /rule: image spam threshold 2 is outside/);
  await assert.rejects(createScanner({ ...base, thresholds: { spam: 0.5 } }), /'thresholds' option was replaced by 'rule'/);
  const strict = await createScanner({ ...base, ocr: false, rule: { image_spam_threshold: 0.4 } });
  try {
    assert.equal((await strict.messageVerdict(images)).label, 'spam');
    assert.equal((await strict.messageVerdict(images, { rule: { image_spam_threshold: 0.5 } })).label, 'ad');
  } finally {
    strict.close();
  }
  assert.ok(isImagePart({ contentType: 'IMAGE/GIF' }));
  assert.ok(isImagePart({ name: 'x.JPG' }));
  assert.ok(!isImagePart({ contentType: 'text/html', name: 'x.png' }));
});

test('wrong models are refused with a message naming them', async () => {
  await assert.rejects(createScanner({ modelBytes: new Uint8Array([1, 2, 3]), modelName: 'junk.onnx', worker: false }), /junk\.onnx/);
  const head = await readFile(join(repo, 'models', 'default', 'head.onnx'));
  await assert.rejects(createScanner({ modelBytes: head, modelName: 'head.onnx', worker: false }), /head-only/);
});

test('the loader streams with progress, checks the sha256 and names HTTP failures', async () => {
  const body = new Uint8Array(3000).map((_, i) => i % 251);
  const sha = createHash('sha256').update(body).digest('hex');
  const fakeFetch = async (url) => {
    if (url.endsWith('.sha256')) return new Response(`${sha}  m.onnx\n`);
    if (url.includes('missing')) return new Response('no', { status: 404, statusText: 'Not Found' });
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < body.length; i += 1000) controller.enqueue(body.slice(i, i + 1000));
        controller.close();
      },
    });
    return new Response(stream, { headers: { 'content-length': String(body.length) } });
  };
  const events = [];
  const loaded = await loadModelBytes({ modelUrl: 'http://x/m.onnx', fetchImpl: fakeFetch, onProgress: (e) => events.push(e) });
  assert.deepEqual(loaded.bytes, body);
  assert.equal(loaded.sha256, sha, 'the sidecar sha256 is used');
  assert.equal(loaded.source, 'network');
  const downloads = events.filter((e) => e.phase === 'download');
  assert.deepEqual(downloads.map((e) => e.loaded), [0, 1000, 2000, 3000]);
  assert.ok(downloads.every((e) => e.total === 3000));
  await assert.rejects(loadModelBytes({ modelUrl: 'http://x/m.onnx', sha256: '0'.repeat(64), fetchImpl: fakeFetch }), /sha256 is [0-9a-f]{64}, expected 0{64}/);
  await assert.rejects(loadModelBytes({ modelUrl: 'http://x/m.onnx', sha256: 'xyz', fetchImpl: fakeFetch }), /not 64 hex digits/);
  await assert.rejects(download('http://x/missing.onnx', undefined, fakeFetch), /missing\.onnx: HTTP 404 Not Found/);
});

test('npm pack ships a self-contained package', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'spamlens-pack-'));
  try {
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: packageDir, encoding: 'utf8' });
    const [packed] = JSON.parse(out);
    const files = packed.files.map((f) => f.path).sort();
    for (const needed of ['dist/spamlens_relaxed.wasm', 'dist/spamlens_simd.wasm', 'dist/spamlens_wasm.js', 'index.d.ts', 'engine.d.ts', 'package.json', 'README.md', 'src/index.js', 'src/worker.js']) {
      assert.ok(files.includes(needed), `${needed} missing from ${files.join(', ')}`);
    }
    assert.ok(!files.some((f) => f.startsWith('test/')), 'tests are not shipped');
    execFileSync('tar', ['-xzf', join(dir, packed.filename), '-C', dir]);
    const packedIndex = pathToFileURL(join(dir, 'package', 'src', 'index.js')).href;
    const { createScanner: packedCreate, bestVariant: packedVariant } = await import(packedIndex);
    assert.equal(typeof packedCreate, 'function');
    assert.ok(['relaxed', 'simd'].includes(packedVariant()));
    console.log(`# packed ${packed.filename}: ${files.length} files, ${packed.size} bytes (${packed.unpackedSize} unpacked)`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// Whole emails: scanEmail against native `spamlens scan --json` (SPAMLENS_TEST_SCAN_EXPECTED), and
// feedback teaching the user's stored filter.
const scanExpected = (await readFile(required('SPAMLENS_TEST_SCAN_EXPECTED'), 'utf8'))
  .split('\n')
  .filter((line) => line.trim())
  .map((line) => JSON.parse(line));

test('scanEmail gives the verdict native spamlens scan gives', async () => {
  assert.ok(scanExpected.length >= 4);
  for (const reference of scanExpected) {
    const bytes = await readFile(reference.message);
    const scan = await scanner.scanEmail(bytes, { name: reference.message });
    assert.equal(scan.message, reference.message);
    const sameTexts = scan.images.every((image, i) => (image.text?.text ?? null) === (reference.images[i]?.text?.text ?? null));
    if (sameTexts) {
      assert.deepEqual(scan.verdict, reference.verdict, reference.message);
      // The text filter reads the body and the images' text: the same score.
      assert.ok(Math.abs(scan.text.score - reference.text.score) < 1e-12, `${reference.message}: text score`);
    }
    assert.equal(scan.subject, reference.subject);
    assert.equal(scan.images.length, reference.images.length);
    scan.images.forEach((image, index) => {
      const expectedImage = reference.images[index];
      assert.equal(image.sha256, expectedImage.sha256);
      assert.deepEqual(image.source, expectedImage.source);
      if (expectedImage.probabilities) {
        const p = parity(image, expectedImage);
        assert.ok(p.image < 1e-4, `${image.name}: image-only`);
        if (p.sameText) {
          assert.equal(image.label, expectedImage.label, `${reference.message}: ${image.name}`);
          assert.ok(p.fused < 1e-3, `${image.name}: fused`);
        }
      }
    });
  }
  await assert.rejects(scanner.scanEmail(new Uint8Array([0x89, 0x50, 0x4e, 0x47]), { name: 'x.png' }), /x\.png: not an email message/);
});

test('messageVerdict over an email\'s images is scanEmail\'s verdict without the text: one rule', async () => {
  let withImages = 0;
  for (const reference of scanExpected) {
    const bytes = await readFile(reference.message);
    for (const rule of [{ use_text: false }, { use_text: false, image_spam_threshold: 0.3, image_ad_threshold: 0.3 }]) {
      const scan = await scanner.scanEmail(bytes, { name: reference.message, rule });
      assert.deepEqual(await scanner.messageVerdict(scan.images, { rule }), scan.verdict, reference.message);
    }
    if (reference.images.length) withImages += 1;
  }
  assert.ok(withImages >= 2, 'some of the emails have images');
});

test('feedback teaches the user\'s filter, persists it and logs the reaction', async () => {
  const store = new MemoryStore();
  const user = 'anna@example.org';
  const own = await createScanner({ ...base, modelName: 'test-model.onnx', store, user });
  const parcel = (n) =>
    new TextEncoder().encode(
      `From: a@b.test\r\nSubject: Re: update ${n}\r\nMessage-ID: <p${n}@b.test>\r\n\r\n` +
        `Hello, your parcel ${7000 + n} could not be delivered. Please confirm the address so the driver can try again tomorrow.\r\n`,
    );
  const first = await own.scanEmail(parcel(3), { name: 'p3.eml' });
  assert.equal(first.verdict.label, 'ham');
  for (const n of [0, 1]) {
    const result = await own.feedback(parcel(n), 'spam', { name: `p${n}.eml` });
    assert.equal(result.after.is_spam, true);
    // Error-driven: the first mark moves the weights; the second message is already spam.
    if (n === 0) assert.ok(result.after.score > result.before.score && result.steps >= 1);
    else assert.equal(result.steps, 0);
    assert.equal(result.record.reaction, 'USER_MESSAGE_MARK_SPAM');
    assert.equal(result.record.message_id, `p${n}@b.test`);
  }
  const second = await own.scanEmail(parcel(3), { name: 'p3.eml' });
  assert.equal(second.verdict.label, 'spam');
  assert.equal(second.verdict.decided_by, 'text');
  assert.equal((await own.reactions()).length, 2);
  const state = await store.loadFilter(user);
  assert.ok(state && JSON.parse(state).format === 'spamlens.cla_ann.v1');

  // Another scanner for the same user starts from the stored filter; another user does not.
  const again = await createScanner({ ...base, store, user });
  assert.equal((await again.scanEmail(parcel(4))).verdict.label, 'spam');
  const other = await createScanner({ ...base, store, user: 'bob' });
  assert.equal((await other.scanEmail(parcel(4))).verdict.label, 'ham');
  await again.resetTextFilter();
  assert.equal((await again.scanEmail(parcel(4))).verdict.label, 'ham');
  assert.equal(await store.loadFilter(user), null);
  await assert.rejects(own.feedback(parcel(5), 'maybe'), /label must be 'spam' or 'ham'/);
  for (const s of [own, again, other]) s.close();
});
