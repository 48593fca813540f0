// tract-wasm (spamlens) vs onnxruntime-web in headless Chromium, same ONNX (the default combined
// model), same input tensors, one thread each; plus native spamlens on the same images and the
// shipped wasm sizes. Prints median ms per image and the ratios.
//
//   npm ci --prefix benches/wasm && runtime-wasm/build.sh && cargo build --release -p spamlens-native
//   node benches/wasm/bench.mjs [--rounds 3] [--images 12] [--model M.onnx] [--native target/release/spamlens]
import { readFile, readdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { homedir } from 'node:os';
import { join, dirname, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serveFiles } from '../static-server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
};
const rounds = Number(option('--rounds', 3));
const imageCount = Number(option('--images', 12));
const native = option('--native', [join(repo, 'target/release/spamlens'), join(repo, 'target/debug/spamlens')].find(existsSync));
if (!native) throw new Error('build spamlens first: cargo build --release -p spamlens-native');

// The same images every run: the shared test photos, then an even stride over both datasets.
async function pickImages() {
  const shared = join(repo, '..', 'shared');
  const photos = (await readdir(join(shared, 'models/testimages'))).sort().map((f) => join(shared, 'models/testimages', f));
  const rest = [];
  for (const set of ['dredze2007', 'image-spam-hunter']) {
    const rows = (await readFile(join(shared, 'data/imagespam', set, 'manifest.tsv'), 'utf8')).trim().split('\n').slice(1);
    const want = Math.ceil((imageCount - photos.length) / 2);
    const stride = Math.max(1, Math.floor(rows.length / want));
    for (let i = 0; i < rows.length && rest.length < (set === 'dredze2007' ? want : 2 * want); i += stride) {
      rest.push(join(shared, 'data/imagespam', set, rows[i].split('\t')[0]));
    }
  }
  return [...photos, ...rest].slice(0, imageCount);
}

function cacheDir() {
  if (process.env.SPAMLENS_CACHE) return process.env.SPAMLENS_CACHE;
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'spamlens');
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const images = await pickImages();
// Native first: it also makes (and caches) the default combined model the browser runs.
const nativeRuns = [];
for (let round = 0; round <= rounds; round++) {
  const out = execFileSync(native, ['classify', '--json', '--jobs', '1', ...images], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  if (round > 0) nativeRuns.push(...out.trim().split('\n').map((l) => JSON.parse(l).millis));
}
let model = option('--model');
if (!model) {
  const dir = join(cacheDir(), 'models');
  const found = (await readdir(dir)).filter((f) => f.startsWith('spamlens-default-') && f.endsWith('.onnx'));
  if (!found.length) throw new Error(`no default model in ${dir}; pass --model`);
  model = join(dir, found[0]);
}

const ortDist = join(here, 'node_modules/onnxruntime-web/dist');
const routes = {
  '/bench.html': join(here, 'bench.html'),
  '/bench.js': join(here, 'bench.js'),
  '/model.onnx': model,
};
const { base, close } = await serveFiles((path) => {
  if (routes[path]) return routes[path];
  if (path === '/images.json') return { json: images.map((f, i) => ({ url: `/img/${i}`, name: basename(f) })) };
  if (path.startsWith('/img/')) return images[Number(path.slice(5))];
  if (path.startsWith('/pkg/')) return join(repo, 'runtime-wasm/js', path.slice(5));
  if (path.startsWith('/ort/')) return join(ortDist, basename(path));
  return null;
});

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const runs = {};
try {
  for (const variant of ['relaxed', 'simd']) {
    const page = await browser.newPage();
    await page.goto(`${base}/bench.html?rounds=${rounds}&variant=${variant}`);
    await page.waitForFunction(() => window.benchResult, null, { timeout: 600_000, polling: 500 });
    runs[variant] = await page.evaluate(() => window.benchResult);
    await page.close();
    if (runs[variant].error) throw new Error(`${variant}: ${runs[variant].error}`);
  }
} finally {
  await browser.close();
  close();
}

const size = async (file) => {
  const bytes = await readFile(file);
  return { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
};
const ours = {
  relaxed: await size(join(repo, 'runtime-wasm/js/dist/spamlens_relaxed.wasm')),
  simd: await size(join(repo, 'runtime-wasm/js/dist/spamlens_simd.wasm')),
  glue: await size(join(repo, 'runtime-wasm/js/dist/spamlens_wasm.js')),
};
const theirs = {
  wasm: await size(join(ortDist, 'ort-wasm-simd-threaded.wasm')),
  glue: await size(join(ortDist, 'ort-wasm-simd-threaded.mjs')),
  api: await size(join(ortDist, 'ort.wasm.min.mjs')),
};

const mb = (n) => `${(n / 1e6).toFixed(2)} MB`;
const nativeMedian = median(nativeRuns);
const r = runs.relaxed;
const s = runs.simd;
console.log(`images: ${images.length} × ${rounds} rounds (after one warm-up round), 1 thread everywhere, model ${basename(model)} (${mb((await stat(model)).size)})`);
console.log(`chromium: ${r.simd} / ${s.simd}, crossOriginIsolated ${r.crossOriginIsolated}`);
console.log('');
console.log('inference only (same input tensor)          median ms/image');
console.log(`  spamlens tract-wasm, relaxed SIMD         ${r.tractMedianMillis.toFixed(1)}`);
console.log(`  spamlens tract-wasm, SIMD128              ${s.tractMedianMillis.toFixed(1)}`);
console.log(`  onnxruntime-web 1.30.0, wasm EP, SIMD     ${r.ortMedianMillis.toFixed(1)}   (second page: ${s.ortMedianMillis.toFixed(1)})`);
console.log(`  ratio tract(relaxed) / onnxruntime-web    ${(r.tractMedianMillis / r.ortMedianMillis).toFixed(2)}`);
console.log(`  ratio tract(simd) / onnxruntime-web       ${(s.tractMedianMillis / s.ortMedianMillis).toFixed(2)}`);
console.log(`  ratio relaxed / simd                      ${(r.tractMedianMillis / s.tractMedianMillis).toFixed(2)}`);
console.log(`  max |Δp| tract vs onnxruntime-web         ${Math.max(r.maxProbabilityDiff, s.maxProbabilityDiff).toExponential(2)}`);
console.log('decode + preprocess + inference');
console.log(`  spamlens wasm (relaxed)                   ${r.tractClassifyMedianMillis.toFixed(1)}`);
console.log(`  spamlens native (${native.replace(repo + "/", "")}, --jobs 1)  ${nativeMedian.toFixed(1)}`);
console.log(`  ratio wasm / native                       ${(r.tractClassifyMedianMillis / nativeMedian).toFixed(2)}`);
console.log('model load (parse + optimise), ms');
console.log(`  tract-wasm ${r.tractLoadMillis.toFixed(0)}, onnxruntime-web ${r.ortLoadMillis.toFixed(0)}, ratio ${(r.tractLoadMillis / r.ortLoadMillis).toFixed(2)}`);
console.log(`  tract-wasm phases: ${r.tractLoadPhases.map((p) => `${p.phase} ${p.millis.toFixed(0)}`).join(', ')}`);
console.log('wasm linear memory (one worker: model + plan + buffers; it never shrinks)');
console.log(`  after load ${mb(r.tractMemoryAfterLoad)}, after ${images.length * (rounds + 1)} images ${mb(r.tractMemoryAfterRuns)}`);
console.log('download size                               raw        gzip -9');
console.log(`  model ${basename(model).padEnd(36)} ${mb((await size(model)).raw)}   ${mb((await size(model)).gzip)}`);
console.log(`  spamlens_relaxed.wasm                     ${mb(ours.relaxed.raw)}   ${mb(ours.relaxed.gzip)}`);
console.log(`  spamlens_simd.wasm                        ${mb(ours.simd.raw)}   ${mb(ours.simd.gzip)}`);
console.log(`  spamlens glue js                          ${mb(ours.glue.raw)}   ${mb(ours.glue.gzip)}`);
console.log(`  ort-wasm-simd-threaded.wasm               ${mb(theirs.wasm.raw)}   ${mb(theirs.wasm.gzip)}`);
console.log(`  ort glue + api (mjs)                      ${mb(theirs.glue.raw + theirs.api.raw)}   ${mb(theirs.glue.gzip + theirs.api.gzip)}`);
