// Benchmark: a first sync of N records (10,000 by default) through the client into WatermelonDB
// over LokiJS, beside the server's own time for the same pages. The server sends no Server-Timing,
// so its time is measured as a raw HTTP loop pulling the same snapshot with the same page size
// (fetch and JSON parsing, no store): the client's and the store's cost is what the ratio adds on
// top. The plain client over a MemoryStore is timed too, to tell the client's share from
// WatermelonDB's. Rounds alternate the three, so a busy machine weighs on each alike.
//
//   FIELDSYNC_URL=... FIELDSYNC_MANAGER=... FIELDSYNC_PASSWORD=... npm run bench:initial-sync
//   (BENCH_RECORDS, BENCH_ROUNDS, BENCH_PAGE; BENCH_SEED=0 to use the records already there)
//
// It seeds the records as customers of the manager's branch (pushes of 1,000 creates), so run it
// against a throwaway server: `go test -run '^$' -bench InitialSync ./internal/tsclient/` starts
// one and reports the figures as benchmark metrics.

import { Client } from '../client.js';
import { MemoryStore } from '../memory-store.js';
import type { Store } from '../store.js';
import { uuidv7 } from '../uuid.js';
import { memoryDatabase } from '../adapters/watermelondb-lokijs.js';
import { WatermelonStore } from '../adapters/watermelondb.js';

const need = (k: string) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const url = need('FIELDSYNC_URL');
const login = need('FIELDSYNC_MANAGER');
const password = need('FIELDSYNC_PASSWORD');
const records = Number(process.env.BENCH_RECORDS ?? 10_000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const page = Number(process.env.BENCH_PAGE ?? 1000);

async function seed(): Promise<void> {
  const m = new Client({ url, store: new MemoryStore(), platform: 'web', deviceName: 'bench seeder' });
  await m.login(login, password);
  await m.sync();
  const have = (await m.list('customer')).length;
  for (let i = have; i < records; i++) await m.create('customer', { name: `Bench customer ${i}`, phone: `+1 555 ${String(i).padStart(6, '0')}` });
  await m.sync();
}

/** The server's time: the snapshot pulled page by page by a bare HTTP loop, parsed, nothing stored. */
async function rawPull(): Promise<{ ms: number; changes: number }> {
  const res = await fetch(`${url}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ login, password, device: { id: uuidv7(), platform: 'web', name: 'bench raw' } }),
  });
  if (!res.ok) throw new Error(`login: ${res.status}`);
  const { access_token: token } = (await res.json()) as { access_token: string };
  const t0 = performance.now();
  let cursor: string | undefined;
  let changes = 0;
  for (;;) {
    const q = new URLSearchParams({ limit: String(page), ...(cursor ? { cursor } : {}) });
    const r = await fetch(`${url}/v1/sync/pull?${q}`, { headers: { authorization: `Bearer ${token}`, 'accept-encoding': 'gzip' } });
    if (!r.ok) throw new Error(`pull: ${r.status}`);
    const p = (await r.json()) as { changes: unknown[]; cursor: string; has_more: boolean };
    changes += p.changes.length;
    cursor = p.cursor;
    if (!p.has_more) break;
  }
  return { ms: performance.now() - t0, changes };
}

/** The client's first sync into a store; returns the time and how many customers landed. */
async function clientPull(store: Store): Promise<{ ms: number; changes: number }> {
  const c = new Client({ url, store, platform: 'web', deviceName: 'bench client', pullLimit: page });
  await c.login(login, password);
  const t0 = performance.now();
  const r = await c.sync();
  const ms = performance.now() - t0;
  const held = (await store.listIds('customer')).length;
  if (held < records) throw new Error(`only ${held} of ${records} customers arrived`);
  return { ms, changes: r.pulled };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

if (process.env.BENCH_SEED !== '0') await seed();
const times = { raw: [] as number[], watermelondb: [] as number[], memory: [] as number[] };
let changes = 0;
for (let i = 0; i < rounds; i++) {
  const raw = await rawPull();
  times.raw.push(raw.ms);
  changes = raw.changes;
  times.watermelondb.push((await clientPull(new WatermelonStore(memoryDatabase()))).ms);
  times.memory.push((await clientPull(new MemoryStore())).ms);
}
const result = {
  records,
  changes,
  page,
  rounds,
  server_ms: Math.round(median(times.raw)),
  watermelondb_ms: Math.round(median(times.watermelondb)),
  memory_ms: Math.round(median(times.memory)),
  watermelondb_to_server: +(median(times.watermelondb) / median(times.raw)).toFixed(2),
  memory_to_server: +(median(times.memory) / median(times.raw)).toFixed(2),
};
console.log(`first sync of ${changes} changes (${records} seeded customers), pages of ${page}, median of ${rounds} rounds:`);
console.log(`  server (raw HTTP loop, no store)   ${result.server_ms} ms`);
console.log(`  client → WatermelonDB (LokiJS)     ${result.watermelondb_ms} ms   ×${result.watermelondb_to_server} the server's`);
console.log(`  client → MemoryStore               ${result.memory_ms} ms   ×${result.memory_to_server} the server's`);
console.log('BENCH ' + JSON.stringify(result));
