// Drives the spamlens demo page in Debian's Chromium, headless: waits for the model, picks the
// given image files (one card each), waits until every card is classified or failed, saves a
// screenshot, then reloads the page (the model must now come from the Cache API) and drops one
// image on the drop zone. Prints one JSON object on stdout for runtime-native/tests/web.rs.
//
// With --email FILE.eml it then scans that email whole, clicks "Mark as spam" and reports the
// verdict and text score before and after.
//
//   node tests/browser/demo.mjs --url http://127.0.0.1:PORT/ --screenshot out.png [--email M.eml] FILE...
import { chromium } from 'playwright-core';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

const args = process.argv.slice(2);
const option = (name) => {
  const at = args.indexOf(name);
  if (at < 0) return undefined;
  const [, value] = args.splice(at, 2);
  return value;
};
const url = option('--url');
const screenshot = option('--screenshot');
const timeout = Number(option('--timeout-ms') ?? 300_000);
const email = option('--email');
const files = args;
if (!url || files.length === 0) {
  console.error('usage: demo.mjs --url URL [--screenshot PNG] [--timeout-ms N] FILE...');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-quic',
    '--no-first-run',
  ],
});
const problems = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`));

  const modelReady = async () => {
    await page.waitForSelector('body[data-model]', { timeout });
    const state = await page.evaluate(() => ({ ...document.body.dataset, status: document.querySelector('#load-status').textContent }));
    if (state.model !== 'ready') throw new Error(`the model did not load: ${state.status}`);
    return state;
  };
  const cards = () =>
    page.$$eval('.card', (all) =>
      all.map((card) => ({
        name: card.dataset.name,
        state: card.dataset.state,
        label: card.dataset.label ?? null,
        probabilities: card.dataset.probabilities ? JSON.parse(card.dataset.probabilities) : null,
        imageProbabilities: card.dataset.imageProbabilities ? JSON.parse(card.dataset.imageProbabilities) : null,
        ocrText: card.dataset.ocrText ?? null,
        millis: card.dataset.millis ? Number(card.dataset.millis) : null,
        error: card.querySelector('.error').textContent || null,
        shown: card.querySelector('.label').textContent,
      })),
    );
  const settled = (count) =>
    page.waitForFunction(
      (n) => {
        const all = [...document.querySelectorAll('.card')];
        return all.length === n && all.every((c) => c.dataset.state === 'done' || c.dataset.state === 'error');
      },
      count,
      { timeout, polling: 250 },
    );

  const started = Date.now();
  await page.goto(url);
  const first = await modelReady();
  const loadMillis = Date.now() - started;
  const classifyStarted = Date.now();
  await page.setInputFiles('#files', files);
  await settled(files.length);
  const classifyMillis = Date.now() - classifyStarted;
  const results = await cards();
  const verdict = await page.$eval('#message-verdict', (p) => p.textContent);
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });

  // A returning visitor: the model comes from the Cache API; an image dropped on the zone classifies.
  await page.reload();
  const second = await modelReady();
  const good = files.find((f) => results.find((r) => r.name === basename(f))?.state === 'done');
  const bytes = [...(await readFile(good))];
  await page.evaluate(
    ({ name, bytes }) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([new Uint8Array(bytes)], name));
      document.querySelector('#drop').dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    },
    { name: basename(good), bytes },
  );
  await settled(1);
  const dropped = (await cards())[0];

  let emailResult = null;
  if (email) {
    const state = () =>
      page.$eval('.email', (card) => ({
        state: card.dataset.state,
        verdict: card.dataset.verdict ?? null,
        decidedBy: card.dataset.decidedBy ?? null,
        textScore: card.dataset.textScore ? Number(card.dataset.textScore) : null,
        shown: card.querySelector('.verdict').textContent,
        learnt: card.querySelector('.learnt').textContent,
        error: card.querySelector('.error').textContent || null,
      }));
    await page.setInputFiles('#files', [email]);
    await page.waitForSelector('.email[data-state="done"], .email[data-state="error"]', { timeout });
    const before = await state();
    await page.click('.email .mark-spam');
    await page.waitForSelector('.email[data-learnt="spam"][data-state="done"]', { timeout });
    const after = await state();
    emailResult = { before, after };
    if (screenshot) await page.screenshot({ path: screenshot.replace(/\.png$/, '-email.png'), fullPage: true });
  }

  console.log(
    JSON.stringify({
      first: { source: first.modelSource, simd: first.simd, sha256: first.modelSha256, loadMillis },
      classifyMillis,
      cards: results,
      verdict,
      reload: { source: second.modelSource, simd: second.simd },
      dropped,
      email: emailResult,
      problems,
    }),
  );
} finally {
  await browser.close();
}
