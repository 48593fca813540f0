// OCR: what reading the text in images costs and whether the browser reads what native reads.
// On the same images (an even stride over both shared datasets):
// - native `spamlens classify` with the built-in model: OCR ms per image (median, p95; one worker),
//   images/s end to end with and without OCR (--jobs = all cores), and the ratio;
// - the JS package in headless Chromium (one Web Worker): OCR ms per image, the ratio to native;
// - parity: the same OCR text per image, and max |Δp| of the fused probabilities;
// - the browser download OCR adds (engine + trained data, gzip -9).
//
//   npm ci --prefix benches/wasm && runtime-wasm/build.sh && cargo build -p spamlens-native
//   node benches/ocr/bench.mjs [--images 40] [--native target/debug/spamlens] [--json OUT.json]
import { readFile, readdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { homedir, availableParallelism } from 'node:os';
import { join, dirname, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { serveFiles } from '../static-server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const { chromium } = createRequire(join(repo, 'benches/wasm/package.json'))('playwright-core');
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
};
const imageCount = Number(option('--images', 40));
const native = option('--native', [join(repo, 'target/release/spamlens'), join(repo, 'target/debug/spamlens')].find(existsSync));
if (!native) throw new Error('build spamlens first: cargo build -p spamlens-native');
const jsonOut = option('--json');
const cores = availableParallelism();

async function pickImages() {
  const shared = join(repo, '..', 'shared', 'data/imagespam');
  const picked = [];
  for (const set of ['dredze2007', 'image-spam-hunter']) {
    const rows = (await readFile(join(shared, set, 'manifest.tsv'), 'utf8')).trim().split('\n').slice(1);
    const want = set === 'dredze2007' ? Math.ceil(imageCount * 0.75) : imageCount - Math.ceil(imageCount * 0.75);
    const stride = Math.max(1, Math.floor(rows.length / want));
    for (let i = 0; i < rows.length && picked.length < (set === 'dredze2007' ? want : imageCount); i += stride) {
      picked.push(join(shared, set, rows[i].split('\t')[0]));
    }
  }
  return picked;
}

const cacheDir = () => process.env.SPAMLENS_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'spamlens');
const quantile = (values, q) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
};
const classify = (extra) => {
  const started = process.hrtime.bigint();
  const out = execFileSync(native, ['classify', '--json', ...extra, ...images], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    maxBuffer: 1 << 28,
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { lines: out.trim().split('\n').map((l) => JSON.parse(l)), seconds };
};

const images = await pickImages();
// Native: also makes (and caches) the combined default model the browser runs.
const single = classify(['--jobs', '1']);
const withOcr = classify(['--jobs', String(cores)]);
const withoutOcr = classify(['--jobs', String(cores), '--no-ocr']);
const nativeOcr = single.lines.filter((l) => typeof l.ocr_millis === 'number').map((l) => l.ocr_millis);

const models = join(cacheDir(), 'models');
const model = join(models, (await readdir(models)).find((f) => f.startsWith('spamlens-default-') && f.endsWith('.onnx')));
const info = JSON.parse(execFileSync(native, ['inspect', model], { encoding: 'utf8' }).match(/spamlens\.ocr: (\{.*\})/)[1]);
const tessdata = [process.env.SPAMLENS_TESSDATA, join(cacheDir(), 'tessdata/4.1.0-2'), '/usr/share/tesseract-ocr/5/tessdata']
  .filter(Boolean)
  .find((dir) => info.data.every((d) => existsSync(join(dir, `${d.language}.traineddata`))));
if (!tessdata) throw new Error('no OCR trained data: spamlens-train ocr-data fetch');

const page = `<!doctype html><meta charset="utf-8"><script type="module">
import { createScanner } from '/pkg/src/index.js';
const images = await (await fetch('/images.json')).json();
const started = performance.now();
const scanner = await createScanner({ modelUrl: '/model.onnx', ocrDataUrl: '/tessdata/', workers: 1, cache: false });
const loadMillis = performance.now() - started;
const results = [];
for (const image of images) {
  const bytes = new Uint8Array(await (await fetch(image.url)).arrayBuffer());
  try {
    results.push(await scanner.classify(bytes, { name: image.name }));
  } catch (error) {
    results.push({ name: image.name, error: error.message });
  }
}
window.benchResult = { loadMillis, engine: scanner.info.ocrEngine, results };
</script>`;
const { base, close } = await serveFiles((path) => {
  if (path === '/') return join(here, '.page.html');
  if (path === '/model.onnx') return model;
  if (path === '/images.json') return { json: images.map((f, i) => ({ url: `/img/${i}`, name: f })) };
  if (path.startsWith('/img/')) return images[Number(path.slice(5))];
  if (path.startsWith('/tessdata/')) return join(tessdata, basename(path));
  if (path.startsWith('/pkg/')) return join(repo, 'runtime-wasm/js', path.slice(5));
  return null;
});
const { writeFile, unlink } = await import('node:fs/promises');
await writeFile(join(here, '.page.html'), page);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
let run;
try {
  const tab = await browser.newPage();
  const problems = [];
  tab.on('pageerror', (error) => problems.push(error.message));
  await tab.goto(`${base}/`);
  await tab.waitForFunction(() => window.benchResult || null, null, { timeout: 1_800_000, polling: 1000 }).catch((e) => {
    throw new Error(`${e.message}; page errors: ${problems.join('; ')}`);
  });
  run = await tab.evaluate(() => window.benchResult);
} finally {
  await browser.close();
  close();
  await unlink(join(here, '.page.html'));
}

// Parity, image by image.
let sameText = 0;
let compared = 0;
let maxDiff = 0;
let maxImageDiff = 0;
const differing = [];
run.results.forEach((b, i) => {
  const n = single.lines[i];
  if (b.error || n.error) return;
  compared += 1;
  const nt = n.text?.text ?? null;
  const bt = b.text?.text ?? null;
  for (const [label, p] of Object.entries(n.image_probabilities ?? {})) {
    maxImageDiff = Math.max(maxImageDiff, Math.abs(p - b.image_probabilities[label]));
  }
  if (nt === bt) {
    sameText += 1;
    for (const [label, p] of Object.entries(n.probabilities)) maxDiff = Math.max(maxDiff, Math.abs(p - b.probabilities[label]));
  } else {
    differing.push({ image: basename(images[i]), native: nt, browser: bt, spam: [n.probabilities.spam, b.probabilities.spam] });
  }
});
const browserOcr = run.results.filter((r) => typeof r.ocr_millis === 'number').map((r) => r.ocr_millis);

const gz = async (file) => {
  const bytes = await readFile(file);
  return { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
};
const core = join(repo, 'runtime-wasm/js/dist/tesseract');
const download = {
  engine_wasm: await gz(join(core, 'tesseract-core-simd-lstm.wasm')),
  engine_js: await gz(join(core, 'tesseract-core-simd-lstm.mjs')),
  trained_data: await Promise.all(info.data.map(async (d) => ({ language: d.language, ...(await gz(join(tessdata, `${d.language}.traineddata`))) }))),
};
const total = download.engine_wasm.gzip + download.engine_js.gzip + download.trained_data.reduce((a, d) => a + d.gzip, 0);
const mb = (n) => `${(n / 1e6).toFixed(2)} MB`;
const ms = (v) => `${v.toFixed(0)} ms`;
const perSecond = (run) => images.length / run.seconds;

console.log(`images: ${images.length} (${images.filter((f) => f.includes('/spam/')).length} spam), model ${basename(model)} (${mb((await stat(model)).size)})`);
console.log(`native: ${native.replace(`${repo}/`, '')}; browser: headless Chromium, one Web Worker, ${run.engine?.engine} ${run.engine?.version} (${run.engine?.variant})`);
console.log('');
console.log('OCR per image                          median      p95');
console.log(`  native (libtesseract, 1 worker)     ${ms(quantile(nativeOcr, 0.5)).padStart(7)}  ${ms(quantile(nativeOcr, 0.95)).padStart(7)}`);
console.log(`  browser (tesseract.js-core, wasm)   ${ms(quantile(browserOcr, 0.5)).padStart(7)}  ${ms(quantile(browserOcr, 0.95)).padStart(7)}`);
console.log(`  ratio browser / native              ${(quantile(browserOcr, 0.5) / quantile(nativeOcr, 0.5)).toFixed(2)}     ${(quantile(browserOcr, 0.95) / quantile(nativeOcr, 0.95)).toFixed(2)}`);
console.log(`end to end, native, ${cores} workers       images/s`);
console.log(`  with OCR                            ${perSecond(withOcr).toFixed(2)}`);
console.log(`  without OCR (--no-ocr)              ${perSecond(withoutOcr).toFixed(2)}`);
console.log(`  ratio with / without                ${(perSecond(withOcr) / perSecond(withoutOcr)).toFixed(2)}`);
console.log('parity (browser vs native)');
console.log(`  same OCR text                       ${sameText} of ${compared}`);
console.log(`  max |Δp| fused (same text)          ${maxDiff.toExponential(2)}`);
console.log(`  max |Δp| image-only                 ${maxImageDiff.toExponential(2)}`);
for (const d of differing.slice(0, 5)) {
  console.log(`  differs: ${d.image}: p(spam) ${d.spam.map((p) => p.toFixed(4)).join(' vs ')}`);
  console.log(`    native:  ${JSON.stringify((d.native ?? '').slice(0, 100))}`);
  console.log(`    browser: ${JSON.stringify((d.browser ?? '').slice(0, 100))}`);
}
console.log('browser download OCR adds                raw        gzip -9');
console.log(`  engine (wasm + js)                  ${mb(download.engine_wasm.raw + download.engine_js.raw).padStart(9)}  ${mb(download.engine_wasm.gzip + download.engine_js.gzip).padStart(9)}`);
for (const d of download.trained_data) console.log(`  ${`${d.language}.traineddata`.padEnd(34)}  ${mb(d.raw).padStart(9)}  ${mb(d.gzip).padStart(9)}`);
console.log(`  total                                           ${mb(total).padStart(9)}`);
console.log(`browser model + OCR load: ${ms(run.loadMillis)}`);
if (jsonOut) {
  await writeFile(jsonOut, JSON.stringify({ images: images.length, nativeOcr, browserOcr, withOcr: perSecond(withOcr), withoutOcr: perSecond(withoutOcr), sameText, compared, maxDiff, maxImageDiff, differing, download, loadMillis: run.loadMillis }, null, 1));
}
