// The conformance scenarios: what went wrong for apps with hand-written glue (issue 11), each as a
// function any client can be run through (see driver.ts). A manager, working through the plain
// client straight to the server, sets the scene; the device under test talks through a FlakyProxy.
//
// A server needs: a branch with a manager and two reps (agents) whose logins and password are in
// the environment (env.ts), and the documents service (uploads) for the photo scenario.

import { createHash } from 'node:crypto';
import { Client } from '../client.js';
import { MemoryStore } from '../memory-store.js';
import type { Fields } from '../wire.js';
import type { Device, Driver } from './driver.js';
import type { ConformanceEnv } from './env.js';
import { FlakyProxy } from './proxy.js';

export interface Scene {
  env: ConformanceEnv;
  driver: Driver;
  proxy: FlakyProxy;
  /** The manager, on the plain client, straight to the server. */
  manager: Client;
  /** A device of the rep, through the proxy, signed in and synced. */
  rep: Device;
  repId: string;
  /** The second rep's user id (for reassignments). */
  rep2Id: string;
}

export interface Scenario {
  name: string;
  run(scene: Scene): Promise<void>;
}

/** Fails the scenario with a message saying what was expected. */
export function check(ok: unknown, what: string, got?: unknown): asserts ok {
  if (!ok) throw new Error(`${what}${got === undefined ? '' : `; got ${JSON.stringify(got)}`}`);
}

/** Starts a scene: proxy, manager, the rep's device signed in. */
export async function openScene(driver: Driver, env: ConformanceEnv): Promise<Scene> {
  const proxy = await FlakyProxy.start(env.url);
  const manager = new Client({ url: env.url, store: new MemoryStore(), platform: 'web', deviceName: 'conformance manager' });
  await manager.login(env.manager, env.password);
  const other = new Client({ url: env.url, store: new MemoryStore(), platform: 'android' });
  const rep2Id = (await other.login(env.rep2, env.password)).id;
  const rep = await driver.newDevice(proxy.url);
  const repId = (await rep.login(env.rep, env.password)).id;
  return { env, driver, proxy, manager, rep, repId, rep2Id };
}

export async function closeScene(s: Scene): Promise<void> {
  await s.rep.close();
  await s.proxy.close();
}

/** A customer, a claim and a task assigned to the rep, made by the manager; the rep has synced them. */
async function seedTask(s: Scene, o: { checklist?: Fields[] } = {}): Promise<{ customerId: string; claimId: string; taskId: string }> {
  const m = s.manager;
  const customerId = await m.create('customer', { name: 'Conformance Customer', phone: '+1 555 0000', address: '1 Test Street' });
  await m.sync();
  const res = await m.session.request('POST', '/v1/claims', { body: { customer_id: customerId, policy_number: 'CONF-' + customerId.slice(-6), kind: 'accident' } });
  const claimId = ((await res.json()) as { claim: { id: string } }).claim.id;
  await m.sync();
  const taskId = await m.create('task', {
    claim_id: claimId, kind: 'follow_up', title: 'Conformance visit', assignee_id: s.repId,
    ...(o.checklist ? { checklist: o.checklist } : {}),
  });
  const r = await m.sync();
  check(r.rejected === 0, 'the manager could set the scene', await m.rejected());
  await syncUntil(s.rep, async () => (await s.rep.get('task', taskId)) !== undefined);
  check(await s.rep.get('task', taskId), 'the rep holds the task assigned to them');
  return { customerId, claimId, taskId };
}

/**
 * Syncs `d` until `ready` holds, a bounded number of times. A pull serves a change only once every
 * transaction older than it has ended (sync/doc.go, "Pulls without gaps"), so on a busy database a
 * change can take a while to show; this is waiting for it, not timing it.
 */
async function syncUntil(d: { sync(): Promise<unknown> }, ready: () => Promise<boolean>): Promise<void> {
  // Up to about two minutes: another database's long transaction (a benchmark's load) holds back
  // every pull of the cluster until it ends.
  for (let i = 0; i < 1200; i++) {
    await d.sync();
    if (await ready()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The server's copy of a record, as the manager pulls it, once `ready` holds (or as it is then). */
async function serverCopy(s: Scene, type: 'task' | 'customer' | 'document', id: string, ready: (r: Fields) => boolean = () => true): Promise<Fields> {
  await syncUntil(s.manager, async () => {
    const r = await s.manager.get(type, id);
    return r !== undefined && ready(r);
  });
  const r = await s.manager.get(type, id);
  check(r, `the server holds ${type} ${id}`);
  return r;
}

async function failsOffline(d: Device): Promise<void> {
  let failed = false;
  await d.sync().catch(() => (failed = true));
  check(failed, 'a sync with no network fails');
}

export const scenarios: Scenario[] = [
  {
    name: 'offline accept, then complete',
    async run(s) {
      const { taskId } = await seedTask(s);
      s.proxy.offline = true;
      await s.rep.update('task', taskId, { status: 'accepted' });
      await s.rep.update('task', taskId, { status: 'completed', completion_note: 'Visited offline, all signed.' });
      await failsOffline(s.rep);
      const rep = await s.rep.restart();
      s.rep = rep;
      s.proxy.offline = false;
      await rep.sync();
      const t = await serverCopy(s, 'task', taskId, (t) => t.status === 'completed');
      check(t.status === 'completed', 'the server took the offline accept and complete', t.status);
      check(t.completion_note === 'Visited offline, all signed.', 'the completion note arrived', t.completion_note);
      check((await rep.pending()) === 0 && (await rep.refused()).length === 0, 'nothing left or refused', await rep.refused());
      check((await rep.get('task', taskId))?.status === 'completed', 'the device shows it completed');
    },
  },
  {
    name: 'concurrent manager edit and checklist tick',
    async run(s) {
      const list = [{ key: 'photos', label: 'Photos taken', done: false }, { key: 'signature', label: 'Signature', done: false }];
      const { taskId } = await seedTask(s, { checklist: list });
      s.proxy.offline = true;
      await s.rep.update('task', taskId, { checklist: [{ ...list[0], done: true }, list[1]] });
      // Meanwhile the manager ticks the other item and changes the instructions.
      await s.manager.update('task', taskId, { checklist: [list[0], { ...list[1], done: true }], instructions: 'Call before you go.' });
      await s.manager.sync();
      s.proxy.offline = false;
      await s.rep.sync();
      const done = (x: Fields) => Object.fromEntries((x.checklist as { key: string; done: boolean }[]).map((i) => [i.key, i.done]));
      const t = await serverCopy(s, 'task', taskId, (t) => done(t).photos === true);
      check(done(t).photos === true, "the rep's tick arrived", t.checklist);
      check(done(t).signature === true, "the manager's tick was not reverted", t.checklist);
      check(t.instructions === 'Call before you go.', "the manager's instructions stand", t.instructions);
      const mine = await s.rep.get('task', taskId);
      check(mine && done(mine).photos && done(mine).signature && mine.instructions === t.instructions, 'the device holds the merged task', mine);
    },
  },
  {
    name: 'reassignment away with unpushed edits',
    async run(s) {
      const { taskId } = await seedTask(s);
      s.proxy.offline = true;
      await s.rep.update('task', taskId, { completion_note: 'Half written before the reassignment.' });
      await s.manager.update('task', taskId, { assignee_id: s.rep2Id });
      await s.manager.sync();
      s.proxy.offline = false;
      await syncUntil(s.rep, async () => !(await s.rep.ids('task')).includes(taskId));
      check(!(await s.rep.ids('task')).includes(taskId), 'the task left the device');
      const t = await serverCopy(s, 'task', taskId, (t) => t.assignee_id === s.rep2Id);
      const kept = t.completion_note === 'Half written before the reassignment.';
      const shown = (await s.rep.refused()).some((r) => r.entityId === taskId);
      check(kept || shown, 'the unpushed edit is on the server or shown as refused, never silently lost', await s.rep.refused());
      check((await s.rep.pending()) === 0, 'nothing is left waiting for a record the device no longer holds');
    },
  },
  {
    name: 'forbidden field mixed with allowed ones',
    async run(s) {
      const { customerId } = await seedTask(s);
      const before = await serverCopy(s, 'customer', customerId);
      await s.rep.update('customer', customerId, { phone: '+1 555 0199', name: 'Renamed by the rep' });
      await s.rep.sync();
      const c = await serverCopy(s, 'customer', customerId, (c) => c.phone === '+1 555 0199');
      check(c.phone === '+1 555 0199', "the rep's allowed phone change was applied", c.phone);
      check(c.name === before.name, 'the manager-only name was not', c.name);
      const mine = await s.rep.get('customer', customerId);
      check(mine?.name === before.name && mine?.phone === '+1 555 0199', "the device's copy was corrected to the server's", mine);
      check((await s.rep.pending()) === 0, 'nothing left waiting');
    },
  },
  {
    name: 'lost answers and replays',
    async run(s) {
      const { taskId } = await seedTask(s);
      await s.rep.create('task_note', { task_id: taskId, body: 'Written once, sent twice.' });
      await s.rep.update('task', taskId, { status: 'accepted' });
      s.proxy.dropAnswers(1, (m, p) => m === 'POST' && p.startsWith('/v1/sync/push'));
      await failsOffline(s.rep);
      check((await s.rep.pending()) === 2, 'the unanswered writes are still waiting', await s.rep.pending());
      s.rep = await s.rep.restart();
      await s.rep.sync();
      check((await serverCopy(s, 'task', taskId, (t) => t.status === 'accepted')).status === 'accepted', 'the task is accepted');
      const notes = (await s.manager.list('task_note')).filter((n) => n.task_id === taskId && n.body === 'Written once, sent twice.');
      check(notes.length === 1, 'the note replayed with its mutation id was created once', notes.length);
      check((await s.rep.pending()) === 0 && (await s.rep.refused()).length === 0, 'the replays settled the outbox', await s.rep.refused());
    },
  },
  {
    name: 'expired cursor: resnapshot removes what the snapshot lacks',
    async run(s) {
      const { taskId, customerId } = await seedTask(s);
      const ghost = '01890000-0000-7000-8000-000000000001';
      await s.rep.plant('customer', { id: ghost, version: 1, name: 'Nobody the server knows', phone: '', address: '' });
      await s.rep.expireCursor();
      await s.rep.sync();
      check(!(await s.rep.ids('customer')).includes(ghost), 'the record the new snapshot did not bring is gone');
      check((await s.rep.get('task', taskId)) && (await s.rep.get('customer', customerId)), 'what the snapshot brought is there');
      await s.rep.sync();
      check((await s.rep.get('task', taskId)) !== undefined, 'the new cursor works');
    },
  },
  {
    name: 'a 5 MB photo over a link that drops',
    async run(s) {
      const { taskId, claimId } = await seedTask(s);
      const bytes = jpeg(5 * 1024 * 1024);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const docId = await s.rep.create('document', {
        claim_id: claimId, task_id: taskId, kind: 'photo', file_name: 'site.jpg', content_type: 'image/jpeg', size_bytes: bytes.length, sha256,
      });
      await s.rep.sync();
      s.proxy.cutUploads(1536 * 1024, 2);
      await s.rep.upload(docId, bytes, { fileName: 'site.jpg', contentType: 'image/jpeg', sha256 });
      check(s.proxy.cuts >= 1, 'the link dropped during the upload', s.proxy.cuts);
      const d = await serverCopy(s, 'document', docId, (d) => d.status !== 'pending_upload');
      check(d.status === 'uploaded' || d.status === 'approved', 'the document arrived', d.status);
      check(d.sha256 === sha256 && d.size_bytes === bytes.length, 'whole', d);
      await syncUntil(s.rep, async () => (await s.rep.get('document', docId))?.status === 'uploaded');
      check((await s.rep.get('document', docId))?.status === 'uploaded', 'the device hears it is uploaded');
    },
  },
];

/**
 * A valid JPEG of `size` bytes: a tiny image whose comment segments carry random bytes, so that
 * every upload is new and the server's type sniffing and image work accept it.
 */
export function jpeg(size: number): Uint8Array {
  const tiny = Buffer.from(TINY_JPEG, 'base64');
  const out = Buffer.alloc(size);
  tiny.copy(out, 0, 0, 2); // SOI
  let at = 2;
  const end = size - (tiny.length - 2);
  while (at < end) {
    const len = Math.min(65535, end - at - 2);
    if (len < 3) break;
    out[at] = 0xff;
    out[at + 1] = 0xfe; // COM
    out.writeUInt16BE(len, at + 2);
    crypto.getRandomValues(out.subarray(at + 4, at + 2 + len));
    at += 2 + len;
  }
  tiny.copy(out, at, 2);
  return out.subarray(0, at + tiny.length - 2);
}

const TINY_JPEG =
  '/9j/2wCEABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2MBERISGBUYLxoaL2NCOEJjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY//AABEIAAgACAMBIgACEQEDEQH/xAGiAAABBQEBAQEBAQAAAAAAAAAAAQIDBAUGBwgJCgsQAAIBAwMCBAMFBQQEAAABfQECAwAEEQUSITFBBhNRYQcicRQygZGhCCNCscEVUtHwJDNicoIJChYXGBkaJSYnKCkqNDU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6g4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2drh4uPk5ebn6Onq8fLz9PX29/j5+gEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoLEQACAQIEBAMEBwUEBAABAncAAQIDEQQFITEGEkFRB2FxEyIygQgUQpGhscEJIzNS8BVictEKFiQ04SXxFxgZGiYnKCkqNTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqCg4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2dri4+Tl5ufo6ery8/T19vf4+fr/2gAMAwEAAhEDEQA/AG0UUV5Z7J//2Q==';
