// The glue an app writes to adopt fieldsync, counted: every line of examples/<adapter>-app.ts but
// blank lines and comments, plus the lines of its model marked `// fieldsync`. The goal for
// WatermelonDB is under 20 (its own sync needed a 144-line adapter; RxDB's a 118-line one). The
// examples are type-checked against the built package, so the count is of code that compiles.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const examples = fileURLToPath(new URL('../../examples/', import.meta.url));

/** The glue lines of an example app and its model file. */
export function glueLines(app: string, model: string): number {
  const code = (text: string) => text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('//'));
  const own = code(readFileSync(examples + app, 'utf8')).length;
  const marked = code(readFileSync(examples + model, 'utf8')).filter((l) => l.endsWith('// fieldsync')).length;
  return own + marked;
}

test('the examples compile against the package', () => {
  const tsc = fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url));
  execFileSync(process.execPath, [tsc, '-p', examples + 'tsconfig.json'], { stdio: 'inherit' });
});

test('a WatermelonDB app adopts fieldsync in under 20 lines', (t) => {
  const n = glueLines('watermelondb-app.ts', 'app-model.ts');
  t.diagnostic(`WatermelonDB glue: ${n} lines`);
  assert.ok(n < 20, `${n} lines of glue`);
});

test('an RxDB app adopts fieldsync in under 20 lines', (t) => {
  const n = glueLines('rxdb-app.ts', 'rxdb-model.ts');
  t.diagnostic(`RxDB glue: ${n} lines`);
  assert.ok(n < 20, `${n} lines of glue`);
});
