// Twilio adapter of the SMS transport port, on the real `twilio` client (6.x). Twilio ignores `template` (it sends
// free text); mainland China delivery still needs Twilio's own sender/template registration (see NOTES.md).
import twilio from 'twilio';
import type RequestClientType from 'twilio/lib/base/RequestClient.js';
import type ResponseModule from 'twilio/lib/http/response.js';
import type {
  SendResult,
  SmsAcceptedStatus,
  SmsLookupResult,
  SmsMessage,
  SmsRecentQuery,
  SmsSendFailure,
  SmsTransport,
} from './port.ts';

export interface TwilioTransportConfig {
  readonly accountSid: string;
  readonly authToken: string;
  /** Sender number (E.164) or alphanumeric sender; at least one of `from` / `messagingServiceSid`. */
  readonly from?: string;
  readonly messagingServiceSid?: string;
  /** Replace https://api.twilio.com (tests: the local fake). Sets `client.api.baseUrl`. */
  readonly baseUrl?: string;
  /** Per-request timeout; a request without an answer by then is a transient 'TIMEOUT' failure. */
  readonly timeoutMs: number;
  /** Used when a message has no `statusCallbackUrl` of its own. */
  readonly statusCallbackUrl?: string;
  /** Used when a message has no `validitySeconds` of its own. */
  readonly defaultValiditySeconds?: number;
}

/** Twilio accepts ValidityPeriod from 1 to 36000 seconds. */
export const TWILIO_MAX_VALIDITY_SECONDS = 36000;

/**
 * Twilio error codes after which sending again to the same number is pointless: invalid / non-mobile / landline /
 * unknown numbers, unsubscribed (STOP), blocked or filtered by the carrier, unreachable, region not enabled,
 * unregistered sender. Applies both to the create response and to ErrorCode in status callbacks.
 */
export const TWILIO_PERMANENT_ERROR_CODES: ReadonlySet<number> = new Set([
  20003, 20404, 21211, 21214, 21217, 21401, 21407, 21408, 21421, 21602, 21603, 21604, 21606, 21610, 21612, 21614, 21623,
  30002, 30003, 30004, 30005, 30006, 30007, 30032, 30034,
]);

/** Is this Twilio error code (from a create error or a status callback's ErrorCode) permanent for the number? */
export function isPermanentTwilioError(code: number | string): boolean {
  return TWILIO_PERMANENT_ERROR_CODES.has(Number(code));
}

/**
 * Validate a Twilio webhook (status callback or inbound SMS): `publicUrl` is the full URL configured at Twilio
 * (scheme, host, path and query string exactly as Twilio calls it), `params` the form-decoded POST body.
 */
export function verifyTwilioSignature(
  authToken: string,
  publicUrl: string,
  params: Record<string, string | string[] | undefined>,
  signatureHeader: string | string[] | undefined,
): boolean {
  const sig = Array.isArray(signatureHeader) ? signatureHeader[0] : signatureHeader;
  if (!sig || !authToken) return false;
  const clean: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(params)) if (v !== undefined) clean[k] = v;
  try {
    return twilio.validateRequest(authToken, sig, publicUrl, clean);
  } catch {
    return false;
  }
}

type HttpResponse<T> = ResponseModule.default<T>;

/** A Twilio API error with the Retry-After hint the library would otherwise drop. */
interface TwilioHttpError {
  status?: number;
  code?: number | string;
  message?: string;
  retryAfterMs?: number;
}

function retryAfterMs(headers: unknown): number | undefined {
  if (!headers || typeof headers !== 'object') return undefined;
  const h = headers as Record<string, unknown>;
  const raw = h['retry-after'] ?? h['Retry-After'];
  if (typeof raw !== 'string' && typeof raw !== 'number') return undefined;
  const secs = Number(raw);
  if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
  const at = Date.parse(String(raw));
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

/** The library's RequestClient, except that 429 / 5xx answers carrying Retry-After keep the hint. */
class RetryHintRequestClient extends twilio.RequestClient {
  override async request<TData>(opts: RequestClientType.RequestOptions<TData>): Promise<HttpResponse<TData>> {
    const res = await super.request<TData>(opts);
    if (res.statusCode === 429 || res.statusCode >= 500) {
      const hint = retryAfterMs(res.headers);
      if (hint !== undefined) {
        const err = new twilio.RestException(res) as twilio.RestException & TwilioHttpError;
        err.retryAfterMs = hint;
        throw err;
      }
    }
    return res;
  }
}

const TIMEOUT_CODES = new Set(['ECONNABORTED', 'ETIMEDOUT', 'ESOCKETTIMEDOUT']);
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

class GuardTimeout extends Error {
  readonly code = 'ETIMEDOUT';
}

/** Map anything the twilio client throws to the port's failure shape. */
export function classifyTwilioError(err: unknown): SmsSendFailure {
  const e = (err ?? {}) as TwilioHttpError & { code?: unknown; isAxiosError?: boolean; response?: unknown };
  const status = typeof e.status === 'number' ? e.status : undefined;
  if (status !== undefined && !e.isAxiosError) {
    const twilioCode = typeof e.code === 'number' ? e.code : undefined;
    const code = twilioCode !== undefined ? String(twilioCode) : `HTTP_${status}`;
    const message = e.message || `HTTP ${status}`;
    if (status === 429 || status === 408) {
      return { ok: false, permanent: false, code, message, retryAfterMs: e.retryAfterMs ?? 1000, maybeSent: false };
    }
    if (status >= 500) {
      // 503: not taken; 500 / 502 / 504: the message may exist anyway
      return {
        ok: false,
        permanent: false,
        code,
        message,
        retryAfterMs: e.retryAfterMs ?? 2000,
        maybeSent: status !== 503,
      };
    }
    return { ok: false, permanent: true, code, message };
  }
  const netCode = typeof e.code === 'string' ? e.code : '';
  const message = e.message || String(err);
  if (TIMEOUT_CODES.has(netCode) || /timeout/i.test(message)) {
    return { ok: false, permanent: false, code: 'TIMEOUT', message, retryAfterMs: 1000, maybeSent: true };
  }
  return {
    ok: false,
    permanent: false,
    code: 'NETWORK',
    message: netCode ? `${netCode}: ${message}` : message,
    retryAfterMs: 1000,
    maybeSent: !NOT_SENT_CODES.has(netCode),
  };
}

function acceptedStatus(s: string): SmsAcceptedStatus {
  if (s === 'accepted' || s === 'scheduled') return 'accepted';
  if (s === 'sending' || s === 'sent' || s === 'delivered') return 'sent';
  return 'queued';
}

export class TwilioTransport implements SmsTransport {
  readonly name = 'twilio';
  readonly delivers = true;
  readonly client: twilio.Twilio;
  readonly #cfg: TwilioTransportConfig;
  readonly #http: RetryHintRequestClient;

  constructor(cfg: TwilioTransportConfig) {
    if (!cfg.accountSid || !cfg.authToken) throw new Error('twilio: accountSid and authToken are required');
    if (!cfg.from && !cfg.messagingServiceSid) throw new Error('twilio: set a sender (from) or a messagingServiceSid');
    if (!(cfg.timeoutMs > 0)) throw new Error('twilio: timeoutMs must be > 0');
    this.#cfg = cfg;
    this.#http = new RetryHintRequestClient({ timeout: cfg.timeoutMs });
    this.client = twilio(cfg.accountSid, cfg.authToken, {
      httpClient: this.#http,
      autoRetry: false, // retries are the queue's job (with backoff and the lookup-before-resend rule)
      env: {}, // never pick TWILIO_EDGE / TWILIO_REGION etc. from process.env behind our back
    });
    if (cfg.baseUrl) this.client.api.baseUrl = cfg.baseUrl;
  }

  async send(msg: SmsMessage): Promise<SendResult> {
    const validity = msg.validitySeconds ?? this.#cfg.defaultValiditySeconds;
    const statusCallback = msg.statusCallbackUrl ?? this.#cfg.statusCallbackUrl;
    try {
      const created = await this.#guard(
        this.client.messages.create({
          to: msg.to,
          body: msg.body,
          ...(this.#cfg.messagingServiceSid ? { messagingServiceSid: this.#cfg.messagingServiceSid } : {}),
          ...(this.#cfg.from ? { from: this.#cfg.from } : {}),
          ...(validity !== undefined
            ? { validityPeriod: Math.min(TWILIO_MAX_VALIDITY_SECONDS, Math.max(1, Math.round(validity))) }
            : {}),
          ...(statusCallback ? { statusCallback } : {}),
        }),
      );
      return { ok: true, providerId: created.sid, status: acceptedStatus(created.status) };
    } catch (err) {
      return classifyTwilioError(err);
    }
  }

  async lookup(providerId: string): Promise<SmsLookupResult | undefined> {
    try {
      const m = await this.#guard(this.client.messages(providerId).fetch());
      return { status: m.status, errorCode: m.errorCode === null ? null : String(m.errorCode) };
    } catch (err) {
      if ((err as TwilioHttpError).status === 404) return undefined;
      throw err;
    }
  }

  async findRecent(q: SmsRecentQuery): Promise<({ providerId: string } & SmsLookupResult) | undefined> {
    const list = await this.#guard(this.client.messages.list({ to: q.to, limit: 50 }));
    // date_created has one-second resolution
    const since = Math.floor(q.since.getTime() / 1000) * 1000;
    const hit = list.find((m) => m.body === q.body && m.dateCreated && m.dateCreated.getTime() >= since);
    return hit
      ? { providerId: hit.sid, status: hit.status, errorCode: hit.errorCode === null ? null : String(hit.errorCode) }
      : undefined;
  }

  async close(): Promise<void> {
    const inner = this.#http as unknown as { axios?: { defaults?: { httpsAgent?: { destroy?: () => void } } } };
    inner.axios?.defaults?.httpsAgent?.destroy?.();
  }

  /** Belt and braces on top of the client's own timeout. */
  #guard<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const guard = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new GuardTimeout(`timeout of ${this.#cfg.timeoutMs}ms exceeded`)),
        this.#cfg.timeoutMs + 50,
      );
    });
    return Promise.race([p, guard]).finally(() => clearTimeout(timer));
  }
}
