// A bad network between a device and the server, for the conformance scenarios: an HTTP proxy that
// can be offline, lose answers (the server did the work, the device never hears), and cut upload
// requests part-way. Any client in any language can be pointed at it.

import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export class FlakyProxy {
  /** Every connection is cut at once, as with no network. */
  offline = false;
  /** How many uploads' bodies were cut. */
  cuts = 0;
  private drops: { left: number; match: (method: string, path: string) => boolean }[] = [];
  private cut: { afterBytes: number; left: number } | undefined;
  private server: http.Server;
  private readonly target: URL;

  private constructor(target: string) {
    this.target = new URL(target);
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  /** Starts a proxy to `target` on a free loopback port. */
  static async start(target: string): Promise<FlakyProxy> {
    const p = new FlakyProxy(target);
    await new Promise<void>((r) => p.server.listen(0, '127.0.0.1', r));
    return p;
  }

  /** The URL devices use instead of the server's. */
  get url(): string {
    const a = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${a.port}`;
  }

  /** The next `n` requests that match reach the server, but their answers are lost. */
  dropAnswers(n: number, match: (method: string, path: string) => boolean): void {
    this.drops.push({ left: n, match });
  }

  /** The next `times` upload PATCH requests are cut after `afterBytes` bytes of their body. */
  cutUploads(afterBytes: number, times: number): void {
    this.cut = { afterBytes, left: times };
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.offline) {
      req.socket.destroy();
      return;
    }
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const drop = this.drops.find((d) => d.left > 0 && d.match(method, path));
    if (drop) drop.left--;
    const overridden = String(req.headers['x-http-method-override'] ?? method);
    const cut = this.cut && this.cut.left > 0 && path.startsWith('/v1/uploads/') && overridden === 'PATCH' ? this.cut : undefined;
    if (cut) cut.left--;

    const up = http.request({
      host: this.target.hostname, port: this.target.port, method, path,
      // The Host stays the proxy's, so the URLs the server hands out (tus Location) lead back here.
      headers: req.headers,
    });
    up.on('error', () => req.socket.destroy());
    up.on('response', (ur) => {
      if (drop) {
        // The server answered; the device never hears it.
        ur.resume();
        ur.on('end', () => req.socket.destroy());
        return;
      }
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
      req.socket.on('close', () => ur.destroy());
    });
    let sent = 0;
    req.on('data', (chunk: Buffer) => {
      if (cut) {
        const room = cut.afterBytes - sent;
        if (room <= chunk.length) {
          if (room > 0) up.write(chunk.subarray(0, room));
          this.cuts++;
          // Both sides lose the connection mid-body: the server keeps what arrived.
          setTimeout(() => { up.destroy(); req.socket.destroy(); }, 50);
          req.pause();
          sent = Infinity;
          return;
        }
      }
      sent += chunk.length;
      up.write(chunk);
    });
    req.on('end', () => { if (sent !== Infinity) up.end(); });
    req.on('error', () => up.destroy());
  }
}
