// A faithful local fake of Twilio's Programmable Messaging REST API (2010-04-01) for tests: same paths, HTTP basic
// auth, form-encoded parameters, Twilio's JSON resource and error shapes, failures on demand, a hang mode, and
// status callbacks / inbound-SMS webhooks signed exactly as Twilio signs them (the `twilio` library's own
// getExpectedTwilioSignature). Point the real client at it with TwilioTransport's `baseUrl` (client.api.baseUrl).
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import twilio from 'twilio';

export type FakeFailureCode = 21211 | 21610 | 21612 | 21614 | 30007 | 429 | 500 | 503;

export interface FakeMessage {
  readonly sid: string;
  readonly accountSid: string;
  readonly to: string;
  readonly from: string | null;
  readonly body: string;
  readonly messagingServiceSid: string | null;
  readonly statusCallback: string | null;
  readonly validityPeriod: number | null;
  /** Every form parameter exactly as received. */
  readonly params: Readonly<Record<string, string>>;
  status: string;
  errorCode: number | null;
  readonly dateCreated: Date;
  dateUpdated: Date;
  dateSent: Date | null;
}

export interface FakeRequestLog {
  readonly method: string;
  readonly path: string;
  readonly params: Readonly<Record<string, string>>;
  readonly authorized: boolean;
  readonly headers: IncomingMessage['headers'];
}

export interface WebhookDelivery {
  /** HTTP status our webhook answered with. */
  readonly status: number;
  readonly responseBody: string;
  readonly url: string;
  readonly params: Readonly<Record<string, string>>;
  readonly signature: string;
  readonly idempotencyToken: string;
}

export interface TwilioFakeOptions {
  readonly accountSid?: string;
  readonly authToken?: string;
}

const API = '2010-04-01';
const E164 = /^\+[1-9]\d{6,14}$/;

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
/** Twilio's dates are RFC 2822: 'Wed, 18 Aug 2021 20:01:24 +0000'. */
const rfc2822 = (d: Date): string => d.toUTCString().replace('GMT', '+0000');

/** GSM-7 (7-bit) messages: 160 / 153 per segment; anything else (Chinese) is UCS-2: 70 / 67 per segment. */
export function segmentCount(body: string): number {
  // GSM-7 basic set, approximated by printable ASCII, LF / CR and the accented letters it has
  const gsm = /^[\n\r\x20-\x7e£¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà€]*$/.test(body);
  const len = body.length;
  if (gsm) return len <= 160 ? 1 : Math.ceil(len / 153);
  return len <= 70 ? 1 : Math.ceil(len / 67);
}

function errorBody(code: number, message: string, status: number): Record<string, unknown> {
  return { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status };
}

function failureFor(code: FakeFailureCode, to: string): { status: number; body: Record<string, unknown> } {
  switch (code) {
    case 21211:
      return { status: 400, body: errorBody(21211, `The 'To' number ${to} is not a valid phone number.`, 400) };
    case 21610:
      return { status: 400, body: errorBody(21610, 'Attempt to send to unsubscribed recipient', 400) };
    case 21612:
      return {
        status: 400,
        body: errorBody(
          21612,
          `The 'To' phone number: ${to}, is not currently reachable using the 'From' phone number`,
          400,
        ),
      };
    case 21614:
      return { status: 400, body: errorBody(21614, `'To' number ${to} is not a valid mobile number`, 400) };
    case 30007:
      return { status: 400, body: errorBody(30007, 'Message filtered', 400) };
    case 429:
      return { status: 429, body: errorBody(20429, 'Too Many Requests', 429) };
    case 500:
      return { status: 500, body: errorBody(20500, 'Internal Server Error', 500) };
    case 503:
      return { status: 503, body: errorBody(20503, 'Service Unavailable', 503) };
  }
}

export class TwilioFake {
  readonly accountSid: string;
  readonly authToken: string;
  /** Every message created, oldest first. */
  readonly messages: FakeMessage[] = [];
  /** Every API request received (after the body was read), oldest first. */
  readonly requests: FakeRequestLog[] = [];
  #server: Server;
  #sockets = new Set<Socket>();
  #failures: { code: FakeFailureCode; times: number; retryAfterSeconds?: number }[] = [];
  #hangCount = 0;
  #hangAll = false;
  #hangAfterCreate = 0;
  #port = 0;

  private constructor(opts: TwilioFakeOptions) {
    this.accountSid = opts.accountSid ?? 'AC' + hex(16);
    this.authToken = opts.authToken ?? hex(16);
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.#json(res, 500, errorBody(20500, String(err), 500));
      });
    });
    this.#server.on('connection', (s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  static async start(opts: TwilioFakeOptions = {}): Promise<TwilioFake> {
    const fake = new TwilioFake(opts);
    await new Promise<void>((resolve, reject) => {
      fake.#server.once('error', reject);
      fake.#server.listen(0, '127.0.0.1', () => resolve());
    });
    fake.#port = (fake.#server.address() as AddressInfo).port;
    return fake;
  }

  /** Base URL to give the client instead of https://api.twilio.com. */
  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** The next `times` message creations fail with this Twilio error (optionally with a Retry-After header). */
  failNext(code: FakeFailureCode, times = 1, opts: { retryAfterSeconds?: number } = {}): void {
    this.#failures.push({ code, times, ...opts });
  }

  /** Answer nothing to the next `times` API requests (the connection stays open until the client gives up). */
  hangNext(times = 1): void {
    this.#hangCount += times;
  }

  /**
   * The next `times` message creations succeed (the message exists, as when Twilio accepted it) but get no answer:
   * the sender cannot know whether it was sent, exactly as when a worker dies mid-request.
   */
  hangAfterCreateNext(times = 1): void {
    this.#hangAfterCreate += times;
  }

  /** Answer nothing to any API request until `hang(false)`. */
  hang(on = true): void {
    this.#hangAll = on;
  }

  /** Clear failures and hang modes. */
  reset(): void {
    this.#failures = [];
    this.#hangAll = false;
    this.#hangCount = 0;
    this.#hangAfterCreate = 0;
  }

  message(sid: string): FakeMessage | undefined {
    return this.messages.find((m) => m.sid === sid);
  }

  /**
   * Move a message to `status` and POST the status callback to its StatusCallback URL, form-encoded and signed as
   * Twilio does. Pass the same `idempotencyToken` again to imitate Twilio retrying the same webhook.
   */
  async deliver(
    sid: string,
    status: 'queued' | 'sending' | 'sent' | 'delivered' | 'undelivered' | 'failed' | 'read',
    opts: { errorCode?: number; idempotencyToken?: string; url?: string } = {},
  ): Promise<WebhookDelivery> {
    const m = this.message(sid);
    if (!m) throw new Error(`twilio fake: no message ${sid}`);
    const url = opts.url ?? m.statusCallback;
    if (!url) throw new Error(`twilio fake: message ${sid} has no StatusCallback`);
    m.status = status;
    m.dateUpdated = new Date();
    if (status === 'sent' || status === 'delivered') m.dateSent ??= m.dateUpdated;
    if (opts.errorCode !== undefined) m.errorCode = opts.errorCode;
    else if (status === 'undelivered' || status === 'failed') m.errorCode ??= 30003;
    const params: Record<string, string> = {
      AccountSid: m.accountSid,
      ApiVersion: API,
      From: m.from ?? '',
      MessageSid: m.sid,
      MessageStatus: status,
      SmsSid: m.sid,
      SmsStatus: status,
      To: m.to,
    };
    if (m.messagingServiceSid) params.MessagingServiceSid = m.messagingServiceSid;
    if (m.errorCode !== null) params.ErrorCode = String(m.errorCode);
    return this.#postWebhook(url, params, opts.idempotencyToken);
  }

  /** POST an inbound SMS (someone texting our number) to `url`, signed as Twilio does. */
  async inbound(
    url: string,
    msg: { From: string; To: string; Body: string } & Record<string, string>,
    opts: { idempotencyToken?: string } = {},
  ): Promise<WebhookDelivery> {
    const sid = 'SM' + hex(16);
    const params: Record<string, string> = {
      ToCountry: '',
      ToState: '',
      SmsMessageSid: sid,
      NumMedia: '0',
      ToCity: '',
      FromZip: '',
      SmsSid: sid,
      FromState: '',
      SmsStatus: 'received',
      FromCity: '',
      FromCountry: '',
      ToZip: '',
      NumSegments: String(segmentCount(msg.Body)),
      MessageSid: sid,
      AccountSid: this.accountSid,
      ApiVersion: API,
      ...msg,
    };
    return this.#postWebhook(url, params, opts.idempotencyToken);
  }

  /** The signature Twilio would put in X-Twilio-Signature for this URL and these POST params. */
  sign(url: string, params: Record<string, string>): string {
    return twilio.getExpectedTwilioSignature(this.authToken, url, params);
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    this.#server.closeAllConnections();
    await closed;
  }

  async #postWebhook(
    url: string,
    params: Record<string, string>,
    idempotencyToken: string | undefined,
  ): Promise<WebhookDelivery> {
    const signature = this.sign(url, params);
    const token = idempotencyToken ?? `${randomUUID()}-${hex(8)}`;
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8',
        'X-Twilio-Signature': signature,
        'I-Twilio-Idempotency-Token': token,
        'User-Agent': 'TwilioProxy/1.1',
        Accept: '*/*',
      },
      body: new URLSearchParams(params).toString(),
    });
    return {
      status: res.status,
      responseBody: await res.text(),
      url,
      params,
      signature,
      idempotencyToken: token,
    };
  }

  #json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): true {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
      'Twilio-Request-Id': 'RQ' + hex(16),
      ...headers,
    });
    res.end(text);
    return true;
  }

  #authorized(req: IncomingMessage): boolean {
    const h = req.headers.authorization;
    if (!h?.startsWith('Basic ')) return false;
    const decoded = Buffer.from(h.slice(6), 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    return i > 0 && decoded.slice(0, i) === this.accountSid && decoded.slice(i + 1) === this.authToken;
  }

  #resource(m: FakeMessage): Record<string, unknown> {
    const uri = `/${API}/Accounts/${m.accountSid}/Messages/${m.sid}.json`;
    return {
      account_sid: m.accountSid,
      api_version: API,
      body: m.body,
      date_created: rfc2822(m.dateCreated),
      date_sent: m.dateSent ? rfc2822(m.dateSent) : null,
      date_updated: rfc2822(m.dateUpdated),
      direction: 'outbound-api',
      error_code: m.errorCode,
      error_message: null,
      from: m.from,
      messaging_service_sid: m.messagingServiceSid,
      num_media: '0',
      num_segments: String(segmentCount(m.body)),
      price: null,
      price_unit: 'USD',
      sid: m.sid,
      status: m.status,
      subresource_uris: { media: `/${API}/Accounts/${m.accountSid}/Messages/${m.sid}/Media.json` },
      to: m.to,
      uri,
    };
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    const form = new URLSearchParams(req.method === 'GET' ? u.search : raw);
    const params: Record<string, string> = {};
    for (const [k, v] of form) params[k] = v;
    const authorized = this.#authorized(req);
    this.requests.push({ method: req.method ?? '', path: u.pathname, params, authorized, headers: req.headers });

    if (this.#hangAll || this.#hangCount > 0) {
      if (this.#hangCount > 0) this.#hangCount--;
      return; // never answer; close() destroys the socket
    }
    if (!authorized) {
      this.#json(res, 401, errorBody(20003, 'Authenticate', 401), { 'WWW-Authenticate': 'Basic realm="Twilio API"' });
      return;
    }
    const notFound = () =>
      this.#json(res, 404, errorBody(20404, `The requested resource ${u.pathname} was not found`, 404));

    const list = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/.exec(u.pathname);
    const one = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\/([^/]+)\.json$/.exec(u.pathname);
    const account = list?.[1] ?? one?.[1];
    if (account !== undefined && account !== this.accountSid) return notFound();

    if (list && req.method === 'POST') return this.#create(res, params);
    if (list && req.method === 'GET') return this.#list(res, u);
    if (one && req.method === 'GET') {
      const m = this.message(one[2]!);
      return m ? this.#json(res, 200, this.#resource(m)) : notFound();
    }
    notFound();
  }

  #create(res: ServerResponse, p: Record<string, string>): true {
    const to = p.To ?? '';
    const failure = this.#failures[0];
    if (failure) {
      if (--failure.times <= 0) this.#failures.shift();
      const f = failureFor(failure.code, to);
      const headers: Record<string, string> =
        failure.retryAfterSeconds !== undefined ? { 'Retry-After': String(failure.retryAfterSeconds) } : {};
      return this.#json(res, f.status, f.body, headers);
    }
    if (!to) return this.#json(res, 400, errorBody(21604, "A 'To' phone number is required.", 400));
    if (!p.From && !p.MessagingServiceSid)
      return this.#json(res, 400, errorBody(21603, "A 'From' phone number is required.", 400));
    if (p.Body === undefined || p.Body === '')
      return this.#json(res, 400, errorBody(21602, 'Message body is required.', 400));
    if (!E164.test(to)) return this.#json(res, 400, failureFor(21211, to).body);
    if (p.ValidityPeriod !== undefined) {
      const v = Number(p.ValidityPeriod);
      if (!Number.isInteger(v) || v < 1 || v > 36000)
        return this.#json(
          res,
          400,
          errorBody(21623, 'Invalid ValidityPeriod: must be between 1 and 36000 seconds', 400),
        );
    }
    const now = new Date();
    const m: FakeMessage = {
      sid: 'SM' + hex(16),
      accountSid: this.accountSid,
      to,
      from: p.From ?? null,
      body: p.Body,
      messagingServiceSid: p.MessagingServiceSid ?? null,
      statusCallback: p.StatusCallback ?? null,
      validityPeriod: p.ValidityPeriod !== undefined ? Number(p.ValidityPeriod) : null,
      params: p,
      // with a Messaging Service and no From, Twilio answers 'accepted' (the sender is chosen later)
      status: p.From ? 'queued' : 'accepted',
      errorCode: null,
      dateCreated: now,
      dateUpdated: now,
      dateSent: null,
    };
    this.messages.push(m);
    if (this.#hangAfterCreate > 0) {
      this.#hangAfterCreate--;
      return true; // created, never answered; close() destroys the socket
    }
    return this.#json(res, 201, this.#resource(m));
  }

  #list(res: ServerResponse, u: URL): void {
    const q = u.searchParams;
    const pageSize = Math.min(1000, Math.max(1, Number(q.get('PageSize') ?? 50) || 50));
    const matches = this.messages
      .filter((m) => (!q.get('To') || m.to === q.get('To')) && (!q.get('From') || m.from === q.get('From')))
      .reverse() // newest first, as Twilio lists them
      .slice(0, pageSize);
    const uri = `${u.pathname}?PageSize=${pageSize}&Page=0`;
    this.#json(res, 200, {
      end: Math.max(0, matches.length - 1),
      first_page_uri: uri,
      messages: matches.map((m) => this.#resource(m)),
      next_page_uri: null,
      page: 0,
      page_size: pageSize,
      previous_page_uri: null,
      start: 0,
      uri,
    });
  }
}
