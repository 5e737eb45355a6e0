// The event stream (GET /v1/events, Server-Sent Events) read with fetch: browsers' EventSource
// cannot send the Authorization header, and Node 20 has none. The parser is the few lines of the
// SSE format the server uses (event, id, data, comments); reconnects carry Last-Event-ID.

import { FieldsyncError, SessionEndedError } from './errors.js';
import type { Session } from './session.js';

export interface ServerEvent {
  event: string;
  id?: string;
  data: string;
}

/** Splits an SSE byte stream into events. */
export async function* parseSSE(body: ReadableStream<Uint8Array>): AsyncGenerator<ServerEvent> {
  const decoder = new TextDecoder();
  let buf = '';
  let ev: { event?: string; id?: string; data: string[] } = { data: [] };
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        if (ev.data.length || ev.event) yield { event: ev.event ?? 'message', id: ev.id, data: ev.data.join('\n') };
        ev = { data: [] };
        continue;
      }
      if (line.startsWith(':')) continue; // heartbeat
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') ev.event = value;
      else if (field === 'id') ev.id = value;
      else if (field === 'data') ev.data.push(value);
    }
  }
}

/**
 * Reads the event stream until `signal` aborts, reconnecting after drops (from the last event id)
 * and refreshing the tokens when the stream says they expired. A session that ended stops it.
 */
export async function watchEvents(
  session: Session,
  o: { signal: AbortSignal; onEvent: (e: ServerEvent) => void; onError?: (e: unknown) => void },
): Promise<void> {
  let lastId: string | undefined;
  let backoff = 1000;
  while (!o.signal.aborted) {
    try {
      const res = await session.request('GET', '/v1/events', {
        headers: { Accept: 'text/event-stream', ...(lastId ? { 'Last-Event-ID': lastId } : {}) },
        signal: o.signal,
      });
      backoff = 1000;
      for await (const ev of parseSSE(res.body!)) {
        if (ev.id) lastId = ev.id;
        if (ev.event === 'error') {
          // The token expired or the session ended: refresh (which throws if the session is over).
          await session.refresh();
          break;
        }
        o.onEvent(ev);
      }
    } catch (e) {
      if (o.signal.aborted) return;
      o.onError?.(e);
      if (e instanceof SessionEndedError) return;
      const ms = e instanceof FieldsyncError && e.retryAfterMs ? e.retryAfterMs : backoff;
      backoff = Math.min(backoff * 2, 60_000);
      await new Promise((r) => setTimeout(r, ms));
    }
  }
}
