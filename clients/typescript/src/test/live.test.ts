// The client against the real server, beyond the conformance kit: tokens that expire with edits
// waiting, and the wake-ups (long-poll, event stream) that bring a newly assigned task.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client } from '../client.js';
import { envFromProcess } from '../conformance/index.js';
import { MemoryStore } from '../memory-store.js';

const env = envFromProcess();
const clock = process.env.FIELDSYNC_TEST_CLOCK;

async function signedIn(login: string): Promise<Client> {
  const c = new Client({ url: env!.url, store: new MemoryStore(), platform: 'android', appVersion: '1.0.0' });
  await c.login(login, env!.password);
  return c;
}

/** A task assigned to `repId` by the manager; returns its id. */
async function assignTask(manager: Client, repId: string, title: string): Promise<string> {
  const customerId = await manager.create('customer', { name: 'Live Customer' });
  await manager.sync();
  const res = await manager.session.request('POST', '/v1/claims', { body: { customer_id: customerId, policy_number: 'LIVE-' + customerId.slice(-6), kind: 'accident' } });
  const claimId = ((await res.json()) as { claim: { id: string } }).claim.id;
  const taskId = await manager.create('task', { claim_id: claimId, kind: 'follow_up', title, assignee_id: repId });
  const r = await manager.sync();
  assert.equal(r.rejected, 0);
  return taskId;
}

/** Waits (bounded) until `ok` holds: pulls may lag on a busy database (see the conformance kit). */
async function until(ok: () => Promise<boolean>, step: () => Promise<unknown> = async () => undefined): Promise<boolean> {
  for (let i = 0; i < 1200; i++) {
    if (await ok()) return true;
    await step();
    await new Promise((r) => setTimeout(r, 100));
  }
  return ok();
}

test('expired access tokens are refreshed once, the outbox kept and sent', { skip: env && clock ? false : 'FIELDSYNC_URL or FIELDSYNC_TEST_CLOCK is not set' }, async () => {
  const manager = await signedIn(env!.manager);
  const rep = await signedIn(env!.rep);
  const repId = (await rep.user())!.id;
  const taskId = await assignTask(manager, repId, 'Refresh visit');
  assert.ok(await until(async () => (await rep.get('task', taskId)) !== undefined, () => rep.sync()));
  await rep.update('task', taskId, { status: 'accepted' });
  const before = await rep.session.accessToken();

  const res = await fetch(`${clock}/?by=20m`, { method: 'POST' });
  assert.equal(res.status, 204);
  // Two requests find the token expired at once: one refresh serves both (two would spend the
  // refresh token twice, and the server would end the session as stolen).
  const [r] = await Promise.all([rep.sync(), rep.pull()]);
  assert.equal(r.rejected, 0);
  assert.notEqual(await rep.session.accessToken(), before);
  assert.equal(await rep.pendingCount(), 0);
  assert.ok(await until(async () => (await manager.get('task', taskId))?.status === 'accepted', () => manager.sync()));
});

test('a long-poll brings a task assigned while it waits', { skip: env ? false : 'FIELDSYNC_URL is not set' }, async () => {
  const manager = await signedIn(env!.manager);
  const rep = await signedIn(env!.rep2);
  await rep.sync();
  const waiting = rep.sync({ wait: 30 });
  const taskId = await assignTask(manager, (await rep.user())!.id, 'Long-poll visit');
  await waiting;
  assert.ok(await until(async () => (await rep.get('task', taskId)) !== undefined, () => rep.sync({ wait: 5 })));
});

test('the event stream wakes a sync that brings a newly assigned task', { skip: env ? false : 'FIELDSYNC_URL is not set' }, async () => {
  const manager = await signedIn(env!.manager);
  const rep = await signedIn(env!.rep2);
  await rep.sync();
  const stop = new AbortController();
  const errors: unknown[] = [];
  const events: string[] = [];
  const live = rep.live({ signal: stop.signal, events: true, onError: (e) => errors.push(e), onEvent: (e) => events.push(e.event) });
  try {
    const taskId = await assignTask(manager, (await rep.user())!.id, 'Event visit');
    // No sync of ours here: only the stream's `sync` events (and the one after `ready`) pull.
    assert.ok(await until(async () => (await rep.get('task', taskId)) !== undefined), `the task arrived; events: ${events.join(', ')}; errors: ${errors.join('; ')}`);
  } finally {
    stop.abort();
    await live;
  }
});
