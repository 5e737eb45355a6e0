// Session: the HTTP side of a device: the device id, sign-in, the tokens and their refresh, and
// every request with the headers the protocol asks for (docs/protocol.md §2). The tokens live in the
// Store, so a restarted app is still signed in, and a refresh that the app did not live to see
// answered can be presented again (the server's grace for lost answers).

import { errorFromResponse, FieldsyncError, NetworkError, SessionEndedError } from './errors.js';
import { MetaKeys, type Store } from './store.js';
import { uuidv7 } from './uuid.js';
import type { User } from './wire.js';

export interface SessionOptions {
  /** The server's base URL, e.g. https://fieldsync.example.com. */
  url: string;
  store: Store;
  platform?: 'android' | 'ios' | 'web';
  deviceName?: string;
  /** Sent as X-App-Version on every request and at sign-in. */
  appVersion?: string;
  /** fetch to use (tests put a flaky network here); the global fetch by default. */
  fetch?: typeof fetch;
}

interface Tokens {
  access_token: string;
  refresh_token: string;
  user: User;
}

export interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Sign the request with the access token (true but for sign-in and refresh). */
  auth?: boolean;
}

export class Session {
  readonly url: string;
  private readonly fetch: typeof fetch;
  private refreshing: Promise<void> | undefined;

  constructor(private readonly o: SessionOptions) {
    this.url = o.url.replace(/\/+$/, '');
    this.fetch = o.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** The install's device id, made once and kept for the life of the install. */
  async deviceId(): Promise<string> {
    let id = await this.o.store.getMeta(MetaKeys.deviceId);
    if (!id) {
      id = uuidv7();
      await this.o.store.write({ meta: { [MetaKeys.deviceId]: id } });
    }
    return id;
  }

  /** Who is signed in, as of the last sign-in or refresh; undefined when signed out. */
  async user(): Promise<User | undefined> {
    const u = await this.o.store.getMeta(MetaKeys.user);
    return u ? (JSON.parse(u) as User) : undefined;
  }

  async signedIn(): Promise<boolean> {
    return (await this.o.store.getMeta(MetaKeys.refreshToken)) !== undefined;
  }

  /**
   * Signs in. Another user's data on the device is erased first (the outbox of the same user is
   * kept and goes up after the login).
   */
  async login(login: string, password: string): Promise<User> {
    const deviceId = await this.deviceId();
    const device = { id: deviceId, platform: this.o.platform ?? 'web', name: this.o.deviceName, app_version: this.o.appVersion };
    const res = await this.send('POST', '/v1/auth/login', { body: { login, password, device }, auth: false });
    const t = (await res.json()) as Tokens;
    const before = await this.user();
    if (before && before.id !== t.user.id) {
      await this.o.store.clear();
      await this.o.store.write({ meta: { [MetaKeys.deviceId]: deviceId } });
    }
    await this.saveTokens(t);
    return t.user;
  }

  /** Ends the session on the server and forgets the tokens; the outbox stays. */
  async logout(): Promise<void> {
    try {
      await this.request('POST', '/v1/auth/logout');
    } finally {
      await this.forgetTokens();
    }
  }

  /**
   * Refreshes the tokens, one refresh at a time: requests that find the access token expired
   * together wait for the same refresh (two would spend one refresh token twice, and the server
   * would end the session as stolen).
   */
  refresh(): Promise<void> {
    this.refreshing ??= this.doRefresh().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async doRefresh(): Promise<void> {
    const token = await this.o.store.getMeta(MetaKeys.refreshToken);
    if (!token) throw new SessionEndedError(401, 'token_invalid', 'not signed in');
    let res: Response;
    try {
      res = await this.send('POST', '/v1/auth/refresh', { body: { refresh_token: token }, auth: false });
    } catch (e) {
      if (!(e instanceof NetworkError)) throw e;
      // The answer was lost: the server lets the same token be presented again once, at once.
      res = await this.send('POST', '/v1/auth/refresh', { body: { refresh_token: token }, auth: false });
    }
    // Stored before use: the old refresh token is dead from now on.
    await this.saveTokens((await res.json()) as Tokens);
  }

  /**
   * A request signed with the access token. On token_expired the tokens are refreshed and the
   * request sent once more; any other error answer is thrown as a FieldsyncError.
   */
  async request(method: string, path: string, o: RequestOptions = {}): Promise<Response> {
    try {
      return await this.send(method, path, o);
    } catch (e) {
      if (!(e instanceof FieldsyncError) || e.code !== 'token_expired') throw e;
      await this.refresh();
      return this.send(method, path, o);
    }
  }

  /** The access token now (for the requests made by other libraries: tus). */
  async accessToken(): Promise<string | undefined> {
    return this.o.store.getMeta(MetaKeys.accessToken);
  }

  /** The headers every request carries. */
  async headers(auth = true): Promise<Record<string, string>> {
    const h: Record<string, string> = {};
    if (this.o.appVersion) h['X-App-Version'] = this.o.appVersion;
    if (auth) {
      const token = await this.accessToken();
      if (!token) throw new SessionEndedError(401, 'token_invalid', 'not signed in');
      h['Authorization'] = `Bearer ${token}`;
    }
    return h;
  }

  /** Handles an error answer that ends the session (a wiped device erases everything). */
  async sessionError(e: unknown): Promise<void> {
    if (!(e instanceof SessionEndedError)) return;
    if (e.code === 'device_wiped') await this.o.store.clear();
    else await this.forgetTokens();
  }

  private async send(method: string, path: string, o: RequestOptions): Promise<Response> {
    const url = new URL(this.url + path);
    for (const [k, v] of Object.entries(o.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers = { ...(await this.headers(o.auth ?? true)), ...o.headers };
    if (o.body !== undefined) headers['Content-Type'] = 'application/json';
    let res: Response;
    try {
      res = await this.fetch(url, { method, headers, body: o.body === undefined ? undefined : JSON.stringify(o.body), signal: o.signal });
    } catch (e) {
      if (o.signal?.aborted) throw e;
      throw new NetworkError(`${method} ${path}: ${(e as Error).message}`, { cause: e });
    }
    if (res.ok) return res;
    const err = await errorFromResponse(res);
    await this.sessionError(err);
    throw err;
  }

  private async saveTokens(t: Tokens): Promise<void> {
    await this.o.store.write({
      meta: { [MetaKeys.accessToken]: t.access_token, [MetaKeys.refreshToken]: t.refresh_token, [MetaKeys.user]: JSON.stringify(t.user) },
    });
  }

  private async forgetTokens(): Promise<void> {
    await this.o.store.write({ meta: { [MetaKeys.accessToken]: undefined, [MetaKeys.refreshToken]: undefined } });
  }
}
