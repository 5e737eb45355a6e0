// rep-cli: a terminal "phone" for a field rep, on the official client. Run it against `make dev`:
//
//   node examples/rep-cli/dist/main.js --login hospital
//
// It signs in (the demo's password by default), syncs, and keeps a long-poll open: tasks assigned
// to the rep appear as they arrive. Type `help` for the commands: accept, start and complete a
// task, go offline and back, attach a photo. Its store is a JSON file (--state), so an edit made
// offline survives a restart and goes up when the phone is back online.
//
// `--do "command"` (repeatable) runs commands without a prompt and exits: what the tests do.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import * as readline from 'node:readline/promises';
import { Client, FieldsyncError, type Fields } from '@fieldsync/client';
import { FileStore } from './file-store.js';

interface Args {
  url: string;
  login: string;
  password: string;
  state: string;
  do: string[];
}

function parseArgs(argv: string[]): Args {
  const a: Args = { url: 'http://127.0.0.1:8080', login: 'hospital', password: 'fieldsync-demo', state: '', do: [] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = argv[++i];
    if (v === undefined) throw new Error(`${k} needs a value`);
    if (k === '--url') a.url = v;
    else if (k === '--login') a.login = v;
    else if (k === '--password') a.password = v;
    else if (k === '--state') a.state = v;
    else if (k === '--do') a.do.push(v);
    else throw new Error(`unknown option ${k} (options: --url, --login, --password, --state, --do)`);
  }
  a.state ||= `rep-cli-${a.login}.json`;
  return a;
}

const help = `commands:
  tasks                    list my tasks (numbered)
  show N                   a task in full (N: its number in \`tasks\`, or its id)
  accept N | start N       move task N on (assigned -> accepted -> in_progress)
  complete N [note...]     complete task N with a note
  tick N KEY               tick checklist item KEY of task N
  photo N FILE             attach a photo (JPEG/PNG) to task N and upload it
  offline | online         stop and resume talking to the server (edits wait in the outbox)
  sync                     push the outbox, then pull
  outbox                   what waits to be sent, and what the server refused
  quit`;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  let offline = false;
  const store = new FileStore(args.state);
  const say = (s: string) => console.log(s);
  const client = new Client({
    url: args.url, store, platform: 'android', deviceName: 'rep-cli', appVersion: '1.0.0',
    // "offline" is a network that refuses every request: the client keeps working on its store.
    fetch: (input, init) => (offline ? Promise.reject(new Error('offline')) : fetch(input, init)),
    onResult: (r, m) => {
      if (r.status === 'rejected') say(`! ${m.type} ${m.op} refused: ${r.error?.code} ${r.error?.message ?? ''}`);
      for (const c of r.conflicts ?? []) say(`! conflict on ${c.field}: kept ${c.kept} (${c.rule})`);
    },
  });

  if (!(await client.session.signedIn())) {
    const u = await client.login(args.login, args.password);
    say(`signed in as ${u.name} (${u.role})`);
  }

  let known = new Set((await client.list('task')).map((t) => t.id as string));
  const tasks = async () => (await client.list('task')).sort((a, b) => String(a.id).localeCompare(String(b.id)));
  const task = async (n: string): Promise<Fields> => {
    const all = await tasks();
    const t = /^\d+$/.test(n) ? all[Number(n) - 1] : all.find((x) => x.id === n);
    if (!t) throw new Error(`no task ${n}: see \`tasks\``);
    return t;
  };
  const announce = async () => {
    for (const t of await tasks()) if (!known.has(t.id as string)) say(`+ new task: ${t.title} [${t.status}]`);
    known = new Set((await client.list('task')).map((t) => t.id as string));
  };
  const sync = async () => {
    const r = await client.sync();
    say(`synced: ${r.pushed} pushed, ${r.pulled} changes pulled${r.resnapshot ? ' (new snapshot)' : ''}`);
    await announce();
  };

  const commands: Record<string, (...a: string[]) => Promise<void>> = {
    help: async () => say(help),
    tasks: async () => {
      const all = await tasks();
      if (!all.length) say('no tasks');
      all.forEach((t, i) => say(`${i + 1}. [${t.status}] ${t.title}${t.due_at ? ` (due ${t.due_at})` : ''}`));
    },
    show: async (n) => say(JSON.stringify(await task(n!), null, 2)),
    accept: async (n) => void (await client.update('task', (await task(n!)).id as string, { status: 'accepted' })),
    start: async (n) => void (await client.update('task', (await task(n!)).id as string, { status: 'in_progress' })),
    complete: async (n, ...note) => void (await client.update('task', (await task(n!)).id as string, { status: 'completed', completion_note: note.join(' ') })),
    tick: async (n, key) => {
      const t = await task(n!);
      const list = ((t.checklist as { key: string; done: boolean }[] | null) ?? []).map((i) => (i.key === key ? { ...i, done: true } : i));
      await client.update('task', t.id as string, { checklist: list });
    },
    photo: async (n, file) => {
      const t = await task(n!);
      const bytes = new Uint8Array(readFileSync(file!));
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const contentType = file!.toLowerCase().endsWith('.png') ? 'image/png' : 'image/jpeg';
      const id = await client.create('document', {
        claim_id: t.claim_id, task_id: t.id, kind: 'photo', file_name: basename(file!), content_type: contentType, size_bytes: bytes.length, sha256,
      });
      await client.push(); // the document must exist on the server before its bytes go up
      await client.upload(id, bytes, { fileName: basename(file!), contentType, sha256, onProgress: (s, total) => process.stdout.write(`\ruploading ${Math.round((100 * s) / total)}%`) });
      say(`\nphoto uploaded (document ${id})`);
    },
    offline: async () => {
      offline = true;
      say('offline: edits wait in the outbox');
    },
    online: async () => {
      offline = false;
      await sync();
    },
    sync,
    outbox: async () => {
      say(`${await client.pendingCount()} waiting`);
      for (const r of await client.rejected()) say(`refused: ${r.mutation.type} ${r.mutation.op} ${JSON.stringify(r.mutation.fields ?? {})}: ${r.result.error?.code}`);
    },
  };

  // The long-poll in progress, stopped when the user types a command so it runs at once.
  let poll: AbortController | undefined;
  const exec = async (line: string): Promise<boolean> => {
    const [cmd, ...rest] = line.trim().split(/\s+/);
    if (!cmd) return true;
    poll?.abort();
    if (cmd === 'quit' || cmd === 'exit') return false;
    const f = commands[cmd];
    if (!f) say(`unknown command ${cmd}; try help`);
    else {
      try {
        await f(...rest);
      } catch (e) {
        say(e instanceof FieldsyncError ? `error: ${e.code}: ${e.message}` : `error: ${(e as Error).message}`);
      }
    }
    return true;
  };

  if (args.do.length) {
    await exec('sync');
    for (const line of args.do) if (!(await exec(line))) break;
    return;
  }

  await exec('sync');
  await exec('tasks');
  say('type help for the commands');
  const stop = new AbortController();
  // Live: a long-poll while online; new tasks are announced as they arrive.
  void (async () => {
    while (!stop.signal.aborted) {
      if (offline) {
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      poll = new AbortController();
      try {
        await client.sync({ wait: 60, signal: poll.signal });
        await announce();
      } catch {
        if (!poll.signal.aborted) await new Promise((r) => setTimeout(r, 3000));
      }
    }
  })();
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
  for (;;) {
    const line = await rl.question('rep> ').catch(() => 'quit');
    if (!(await exec(line))) break;
  }
  stop.abort();
  poll?.abort();
  rl.close();
}

main().catch((e) => {
  console.error(e instanceof FieldsyncError ? `rep-cli: ${e.code}: ${e.message}` : `rep-cli: ${(e as Error).message}`);
  process.exit(1);
});
