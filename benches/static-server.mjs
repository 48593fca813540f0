// A loopback static server for the benches: `resolve(path)` maps a URL path to a file, or to
// `{ json }` for a generated answer; everything is served cross-origin isolated, as a webmail page
// that wants SharedArrayBuffer would be.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';

const TYPES = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
};

/** Starts the server; resolves to `{ base, close }`. */
export async function serveFiles(resolve) {
  const server = createServer(async (request, response) => {
    const path = new URL(request.url, 'http://x').pathname;
    const target = resolve(path);
    const headers = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
    try {
      if (target && typeof target === 'object') {
        response.writeHead(200, { ...headers, 'content-type': 'application/json' });
        response.end(JSON.stringify(target.json));
        return;
      }
      const body = await readFile(target);
      response.writeHead(200, { ...headers, 'content-type': TYPES[extname(target)] ?? 'application/octet-stream' });
      response.end(body);
    } catch {
      response.writeHead(404);
      response.end();
    }
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  return { base: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}
