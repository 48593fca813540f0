// The spamlens demo page: load the model with a progress bar, classify dropped or picked images in
// the package's Web Worker, one card per image (thumbnail, label, probability bars, milliseconds,
// or the error), and the verdict the images would give one email. Dropped `.eml` files are scanned
// whole (text filter + images, one verdict) with "mark as spam / not spam" buttons that teach the
// text filter kept in this browser, showing the score before and after.
//
// A model that reads text (OCR) shows the text it read in each image beside the verdict, and the
// image-only and text-only probabilities.
//
// Query parameters: ?model=URL (a combined model; default: model.json's), ?sha256=HEX, ?workers=N,
// ?ocr=0 (decide by the image alone), ?ocrData=URL (the OCR trained data folder).
import { createScanner } from './pkg/src/index.js';

const $ = (selector) => document.querySelector(selector);
const params = new URLSearchParams(location.search);
const cards = [];
let scanner = null;
let failed = null;
const waiting = [];

function formatBytes(n) {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${Math.round(n / 1024)} kB`;
}

function showProgress({ phase, loaded, total, worker = 0 }) {
  if (worker > 0) return;
  const bar = $('#load-progress');
  const words = {
    cache: 'Read from the browser cache',
    download: 'Downloading the model',
    verify: 'Checking its sha256',
    compile: 'Preparing the network (optimising, a few seconds)',
    'ocr-engine': 'Loading the OCR engine',
    'ocr-data': 'Downloading the OCR trained data',
    ready: 'Ready',
  };
  if (total) {
    bar.value = loaded / total;
  } else {
    bar.removeAttribute('value');
  }
  const amount = ['download', 'ocr-data', 'ocr-engine'].includes(phase) && loaded
    ? `: ${formatBytes(loaded)}${total ? ` of ${formatBytes(total)}` : ''}`
    : '';
  $('#load-status').textContent = `${words[phase] ?? phase}${amount}…`;
}

function showModelInfo(info) {
  const list = $('#model-info');
  const metrics = info.metrics ?? {};
  const rows = [
    ['model', `${info.name} (${formatBytes(info.bytes)}, from ${info.source}${info.cached ? ', cached' : ''})`],
    ['sha256', info.sha256],
    ['classes', info.labels.join(', ')],
    ['head', info.head ?? '—'],
    ['held-out weighted F1', typeof metrics.weighted_f1 === 'number' ? metrics.weighted_f1.toFixed(3) : '—'],
    ['spam threshold', typeof info.thresholds?.spam === 'number'
      ? `${info.thresholds.spam.toFixed(3)} (the model's operating point)` : '0.5 (most probable class)'],
    ['reads text', info.ocrEngine
      ? `${info.ocrEngine.engine} ${info.ocrEngine.version} (${info.ocrEngine.data.map((d) => d.language).join(', ')}); `
        + `image-only spam threshold ${info.imageThresholds?.spam?.toFixed(3) ?? '—'}`
      : (info.ocr ? 'no (OCR turned off: images decided by the image alone)' : 'no (this model reads no text)')],
    ['runtime', `spamlens ${info.runtimeVersion}, wasm ${info.simd}`],
  ];
  list.replaceChildren(...rows.flatMap(([key, value]) => {
    const dt = document.createElement('dt');
    dt.textContent = key;
    const dd = document.createElement('dd');
    dd.textContent = value;
    return [dt, dd];
  }));
  list.hidden = false;
}

function newCard(file) {
  const fragment = $('#card-template').content.cloneNode(true);
  const card = fragment.querySelector('.card');
  card.dataset.name = file.name;
  card.querySelector('.name').textContent = file.name;
  card.querySelector('.name').title = file.name;
  const img = card.querySelector('img');
  const url = URL.createObjectURL(file);
  img.src = url;
  img.alt = file.name;
  // Formats the browser cannot show (TIFF, corrupt files) keep an empty thumbnail.
  img.addEventListener('error', () => img.remove(), { once: true });
  card.objectUrl = url;
  $('#results').append(card);
  const entry = { file, card, result: null };
  cards.push(entry);
  return entry;
}

function showResult(entry, result) {
  const { card } = entry;
  entry.result = result;
  card.dataset.state = 'done';
  card.dataset.label = result.label;
  card.dataset.probabilities = JSON.stringify(result.probabilities);
  if (result.image_probabilities) card.dataset.imageProbabilities = JSON.stringify(result.image_probabilities);
  card.dataset.millis = String(result.millis);
  card.querySelector('.label').textContent = result.label;
  const bars = Object.entries(result.probabilities).map(([cls, p]) => {
    const li = document.createElement('li');
    li.dataset.class = cls;
    const name = document.createElement('span');
    name.textContent = cls;
    const track = document.createElement('span');
    track.className = 'track';
    const fill = document.createElement('span');
    fill.className = 'fill';
    fill.style.display = 'block';
    fill.style.width = `${(p * 100).toFixed(1)}%`;
    track.append(fill);
    const value = document.createElement('span');
    value.className = 'value';
    value.textContent = `${(p * 100).toFixed(1)}%`;
    li.append(name, track, value);
    return li;
  });
  card.querySelector('.bars').replaceChildren(...bars);
  const ocrMillis = typeof result.ocr_millis === 'number' ? ` (OCR ${result.ocr_millis.toFixed(0)} ms)` : '';
  card.querySelector('.meta').textContent = `${result.millis.toFixed(0)} ms${ocrMillis} · ${result.format} ${result.width}×${result.height}`;
  // What the image's text said, and what the image alone and the text alone say.
  const read = card.querySelector('.ocr');
  if (result.text) {
    card.dataset.ocrText = result.text.text;
    const pct = (p) => (typeof p === 'number' ? `${(100 * p).toFixed(1)}%` : '—');
    read.querySelector('.ocr-scores').textContent = `spam: image alone ${pct(result.image_probabilities?.spam)}, `
      + `text alone ${pct(result.text.probabilities?.spam)} · ${result.text.layout.words} words, `
      + `mean confidence ${result.text.layout.mean_confidence.toFixed(0)}`;
    read.querySelector('.ocr-text').textContent = result.text.text || '(no text found)';
    read.hidden = false;
  } else if (result.ocr_problem) {
    read.querySelector('.ocr-scores').textContent = `text not read: ${result.ocr_problem}`;
    read.querySelector('.ocr-text').textContent = '';
    read.hidden = false;
  }
}

function showError(entry, message) {
  const { card } = entry;
  entry.result = { name: entry.file.name, error: message };
  card.dataset.state = 'error';
  card.querySelector('.label').textContent = 'error';
  card.querySelector('.error').textContent = message;
}

// Later updates win: a slider moved quickly starts several, which the worker may answer out of order.
let verdictRequest = 0;

async function updateMessageVerdict() {
  const done = cards.map((entry) => entry.result).filter(Boolean);
  const target = $('#message-verdict');
  const request = ++verdictRequest;
  if (!done.length || !scanner) {
    target.textContent = '';
    return;
  }
  const spam = Number($('#threshold').value);
  let text;
  let label = '';
  try {
    // Core's rule, the one a scanned email gets, over these images (computed in the worker).
    const verdict = await scanner.messageVerdict(done, { rule: { image_spam_threshold: spam } });
    text = `As one email: ${verdict.label} (${verdict.reason})`;
    label = verdict.label;
  } catch (error) {
    text = error.message;
  }
  if (request !== verdictRequest) return;
  target.textContent = text;
  target.dataset.verdict = label;
}

async function classify(entry) {
  entry.card.dataset.state = 'running';
  entry.card.querySelector('.label').textContent = 'classifying…';
  try {
    showResult(entry, await scanner.classify(entry.file, { name: entry.file.name }));
  } catch (error) {
    showError(entry, error.message);
  }
  updateMessageVerdict();
}

const isEmail = (file) => /\.eml$/i.test(file.name) || file.type === 'message/rfc822';

function newEmailCard(file) {
  const card = $('#email-template').content.cloneNode(true).querySelector('.email');
  card.dataset.name = file.name;
  card.querySelector('.subject').textContent = file.name;
  $('#emails').append(card);
  const entry = { file, card };
  card.querySelector('.mark-spam').addEventListener('click', () => teach(entry, 'spam'));
  card.querySelector('.mark-ham').addEventListener('click', () => teach(entry, 'ham'));
  return entry;
}

function showScan(entry, scan) {
  const { card } = entry;
  card.dataset.state = 'done';
  card.dataset.verdict = scan.verdict.label;
  card.dataset.decidedBy = scan.verdict.decided_by;
  card.dataset.textScore = String(scan.text?.score ?? '');
  card.querySelector('.subject').textContent = scan.subject || entry.file.name;
  card.querySelector('.verdict').textContent = `${scan.verdict.label} — ${scan.verdict.reason}`;
  const text = scan.text;
  card.querySelector('.text-score').textContent = text
    ? `text score ${text.score.toFixed(3)} (threshold ${text.threshold.toFixed(3)}, ${text.matched} known tokens)`
    : '';
  card.querySelector('.email-images').replaceChildren(
    ...scan.images.map((image) => {
      const li = document.createElement('li');
      const p = image.probabilities ? ` (spam ${(100 * (image.probabilities.spam ?? 0)).toFixed(1)}%)` : '';
      const words = image.text?.text ? ` — reads: “${image.text.text.replace(/\s+/g, ' ').slice(0, 120)}”` : '';
      li.textContent = `${image.name} [${image.source.kind}]: ${image.label ?? image.error ?? image.skipped}${p}${words}`;
      return li;
    }),
  );
  card.querySelector('.remote').textContent = scan.remote_images.length
    ? `${scan.remote_images.length} remote image(s) listed, not fetched`
    : '';
}

async function scanEmailCard(entry) {
  entry.card.dataset.state = 'running';
  try {
    showScan(entry, await scanner.scanEmail(entry.file, { name: entry.file.name }));
  } catch (error) {
    entry.card.dataset.state = 'error';
    entry.card.querySelector('.verdict').textContent = 'error';
    entry.card.querySelector('.error').textContent = error.message;
  }
}

async function teach(entry, label) {
  if (!scanner) return;
  const learnt = entry.card.querySelector('.learnt');
  try {
    const { before, after } = await scanner.feedback(entry.file, label, { name: entry.file.name });
    learnt.textContent = `learnt: text score ${before.score.toFixed(3)} → ${after.score.toFixed(3)}`;
    entry.card.dataset.learnt = label;
    // Every email on the page is scored again by the filter that just learnt.
    for (const card of document.querySelectorAll('#emails .email')) {
      if (card.entry) await scanEmailCard(card.entry);
    }
  } catch (error) {
    learnt.textContent = error.message;
  }
}

function addFiles(files) {
  for (const file of files) {
    if (isEmail(file)) {
      const entry = newEmailCard(file);
      entry.card.entry = entry;
      if (failed) entry.card.querySelector('.error').textContent = `the model did not load: ${failed.message}`;
      else if (scanner) scanEmailCard(entry);
      else waiting.push(entry);
      continue;
    }
    const entry = newCard(file);
    if (failed) showError(entry, `the model did not load: ${failed.message}`);
    else if (scanner) classify(entry);
    else waiting.push(entry);
  }
}

function wireInput() {
  const drop = $('#drop');
  $('#files').addEventListener('change', (event) => {
    addFiles([...event.target.files]);
    event.target.value = '';
  });
  for (const type of ['dragenter', 'dragover']) {
    drop.addEventListener(type, (event) => {
      event.preventDefault();
      drop.classList.add('over');
    });
  }
  for (const type of ['dragleave', 'drop']) {
    drop.addEventListener(type, () => drop.classList.remove('over'));
  }
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    addFiles([...event.dataTransfer.files]);
  });
  $('#threshold').addEventListener('input', updateMessageVerdict);
  $('#clear').addEventListener('click', () => {
    for (const entry of cards.splice(0)) URL.revokeObjectURL(entry.card.objectUrl);
    $('#results').replaceChildren();
    $('#emails').replaceChildren();
    updateMessageVerdict();
  });
}

async function main() {
  wireInput();
  try {
    let modelUrl = params.get('model');
    let sha256 = params.get('sha256') ?? undefined;
    let ocrData;
    if (!modelUrl) {
      const response = await fetch('model.json', { cache: 'no-cache' });
      if (!response.ok) throw new Error(`model.json: HTTP ${response.status}`);
      const manifest = await response.json();
      modelUrl = manifest.url;
      sha256 = manifest.sha256;
      ocrData = manifest.ocr_data ?? undefined;
    }
    scanner = await createScanner({
      modelUrl: new URL(modelUrl, location.href).href,
      sha256,
      workers: Number(params.get('workers') ?? 1),
      ocr: params.get('ocr') !== '0',
      ocrDataUrl: params.get('ocrData') ?? (ocrData ? new URL(ocrData, location.href).href : undefined),
      onProgress: showProgress,
    });
    $('#model').classList.add('ready');
    $('#load-status').textContent = 'Model ready.';
    showModelInfo(scanner.info);
    // Start the threshold control at the model's operating point; the user can still move it.
    if (typeof scanner.info.thresholds?.spam === 'number') {
      $('#threshold').value = String(scanner.info.thresholds.spam);
      updateMessageVerdict();
    }
    Object.assign(document.body.dataset, {
      modelSource: scanner.info.source,
      modelSha256: scanner.info.sha256,
      simd: scanner.info.simd,
      readsText: String(!!scanner.info.readsText),
    });
    document.body.dataset.model = 'ready';
    for (const entry of waiting.splice(0)) (entry.card.classList.contains('email') ? scanEmailCard(entry) : classify(entry));
  } catch (error) {
    failed = error;
    $('#model').classList.add('failed');
    $('#load-status').textContent = `The model did not load: ${error.message}`;
    document.body.dataset.model = 'failed';
    for (const entry of waiting.splice(0)) {
      if (entry.card.classList.contains('email')) entry.card.querySelector('.error').textContent = error.message;
      else showError(entry, `the model did not load: ${error.message}`);
    }
  }
}

main();
