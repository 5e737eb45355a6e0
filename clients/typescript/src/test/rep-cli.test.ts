// The rep-cli example, run as a newcomer would, without a prompt (--do), against the test server:
// a task arrives, is completed offline, survives a restart, goes up once online; a photo uploads.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Client } from '../client.js';
import { envFromProcess, jpeg } from '../conformance/index.js';
import { MemoryStore } from '../memory-store.js';

const env = envFromProcess();

test('rep-cli: a task arrives, is completed offline, goes up after a restart; a photo uploads', { skip: env ? false : 'FIELDSYNC_URL is not set' }, async () => {
  const e = env!;
  const manager = new Client({ url: e.url, store: new MemoryStore() });
  await manager.login(e.manager, e.password);
  const rep = new Client({ url: e.url, store: new MemoryStore() });
  const repId = (await rep.login(e.rep2, e.password)).id;
  const customerId = await manager.create('customer', { name: 'CLI Customer' });
  await manager.sync();
  const res = await manager.session.request('POST', '/v1/claims', { body: { customer_id: customerId, policy_number: 'CLI-1', kind: 'accident' } });
  const claimId = ((await res.json()) as { claim: { id: string } }).claim.id;
  const taskId = await manager.create('task', { claim_id: claimId, kind: 'follow_up', title: 'CLI visit', assignee_id: repId });
  await manager.sync();

  const dir = mkdtempSync(join(tmpdir(), 'rep-cli-'));
  const photo = join(dir, 'site.jpg');
  (await import('node:fs')).writeFileSync(photo, jpeg(300 * 1024));
  const cli = (...cmds: string[]) =>
    execFileSync(process.execPath, ['examples/rep-cli/dist/main.js', '--url', e.url, '--login', e.rep2, '--password', e.password,
      '--state', join(dir, 'state.json'), ...cmds.flatMap((c) => ['--do', c])], { encoding: 'utf8' });

  // Pulls can lag on a busy database (see the conformance kit): sync until the task shows.
  let out = '';
  for (let i = 0; i < 600 && !out.includes('CLI visit'); i++) out = cli('tasks');
  assert.match(out, /CLI visit/);
  out = cli('offline', `accept ${taskId}`, `complete ${taskId} done offline`, 'outbox');
  assert.match(out, /2 waiting/);
  out = cli('outbox'); // a restart: the outbox was on disk, and the first sync sent it
  assert.match(out, /0 waiting/);
  out = cli(`photo ${taskId} ${photo}`);
  assert.match(out, /photo uploaded/);

  let t;
  for (let i = 0; i < 600; i++) {
    await manager.sync();
    t = await manager.get('task', taskId);
    if (t?.status === 'completed') break;
  }
  assert.equal(t?.status, 'completed');
  assert.equal(t?.completion_note, 'done offline');
});
