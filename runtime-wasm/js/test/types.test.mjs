// The hand-written declarations (index.d.ts, engine.d.ts) against the code: `tsc --noEmit` over them
// and test/types/usage.ts (the API as the README documents it), and the names each declares against
// what its module exports at run time. Needs `npm ci` (typescript) and the built dist/ (the modules
// import the wasm glue). Run by runtime-wasm/tests/js_types.rs; alone: node --test test/types.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const ts = require('typescript');

test('tsc --noEmit accepts the declarations and the documented usage', () => {
  const tsc = join(packageDir, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    execFileSync(process.execPath, [tsc, '--noEmit', '--pretty', 'false', '-p', join(packageDir, 'test', 'types')], {
      cwd: packageDir,
      encoding: 'utf8',
    });
  } catch (error) {
    assert.fail(`tsc found errors (TypeScript ${ts.version}):\n${error.stdout}${error.stderr}`);
  }
});

/** The value names (functions, classes, constants) a declaration file exports. */
function declaredValues(file) {
  const program = ts.createProgram([join(packageDir, file)], { noEmit: true, types: [] });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(join(packageDir, file));
  return checker
    .getExportsOfModule(checker.getSymbolAtLocation(source))
    .filter((symbol) => symbol.flags & ts.SymbolFlags.Value)
    .map((symbol) => symbol.name)
    .sort();
}

for (const [declarations, module] of [
  ['index.d.ts', '../src/index.js'],
  ['engine.d.ts', '../src/engine.js'],
]) {
  test(`${declarations} declares exactly what ${module.slice(3)} exports`, async () => {
    const runtime = Object.keys(await import(module)).sort();
    assert.deepEqual(declaredValues(declarations), runtime);
  });
}

test('package.json points each entry at its declarations', async () => {
  const { exports, types, files } = JSON.parse(
    (await import('node:fs')).readFileSync(join(packageDir, 'package.json'), 'utf8'),
  );
  assert.equal(types, './index.d.ts');
  assert.equal(exports['.'].types, './index.d.ts');
  assert.equal(exports['./engine'].types, './engine.d.ts');
  for (const file of ['index.d.ts', 'engine.d.ts']) assert.ok(files.includes(file), `${file} is shipped`);
});
