// The generated sources are what `npm run gen` makes of openapi.json (the Go test
// TestGeneratedTypesAreCurrent checks openapi.json against the server's description).
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

test('src/generated is what npm run gen makes of openapi.json', () => {
  execFileSync(process.execPath, ['scripts/gen-openapi.mjs', '--check'], { stdio: 'inherit' });
});
