/**
 * Cross-site request protection (CSRF) by origin.
 *
 * The console signs in with a `SameSite=Strict`, `HttpOnly` cookie; on top of that, every change made with that
 * cookie must say where it comes from: browsers send `Origin` on every POST, PUT, PATCH and DELETE (and `Referer`
 * when some privacy setting drops Origin), and it must be this site: the request's own Host (X-Forwarded-Host
 * when `http.trustProxy`) or one of `http.publicOrigins`. Requests with `Authorization: Bearer` cannot be forged
 * cross-site (a browser only adds that header after a CORS preflight, which this server never grants), and
 * Twilio's webhooks are signed, so both are exempt. A request with no credentials at all (login) is refused only
 * when it names a foreign origin: a login from another site would sign the victim's browser into someone else's
 * account.
 *
 * `originAllowed(req, config)` is the same test for other entry points, e.g. the WebSocket upgrade (`WS /ws`).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyRequest } from 'fastify';
import { HttpError } from './app.ts';

/** What the test needs of a request: a FastifyRequest, or a raw IncomingMessage (then `host` is derived). */
export interface OriginRequest {
  headers: IncomingHttpHeaders;
  /** Fastify's `req.host` (honours trustProxy); taken from the headers when absent */
  host?: string;
}

/** What the test needs of the configuration (the whole Config fits). */
export interface OriginConfig {
  http: { publicOrigins?: readonly string[]; trustProxy?: boolean };
}

export type OriginVerdict = 'same' | 'foreign' | 'absent';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Paths with their own authentication (Twilio request signatures). */
const EXEMPT_PREFIXES = ['/webhooks/'];

/** The origin a request claims: its Origin header, else the origin of its Referer; undefined when neither. */
export function claimedOrigin(req: OriginRequest): string | undefined {
  const origin = first(req.headers.origin);
  if (origin !== undefined && origin !== '') return origin;
  const referer = first(req.headers.referer);
  if (referer === undefined || referer === '') return undefined;
  try {
    return new URL(referer).origin;
  } catch {
    return 'null';
  }
}

/** Whether the request comes from this site ('same'), from elsewhere ('foreign'), or does not say ('absent'). */
export function originVerdict(req: OriginRequest, config: OriginConfig): OriginVerdict {
  const claimed = claimedOrigin(req);
  if (claimed === undefined) return 'absent';
  let url: URL;
  try {
    url = new URL(claimed);
  } catch {
    return 'foreign'; // "null" (sandboxed frames, opaque redirects) and anything unparsable
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'foreign';
  if (publicOriginsOf(config).has(url.origin)) return 'same';
  const host = hostOf(req, config);
  return host !== undefined && sameHost(url, host) ? 'same' : 'foreign';
}

/**
 * True when the request names an origin (Origin, or failing that Referer) and it is this site's: its own Host or
 * one of `http.publicOrigins`. False when it names another origin OR none at all; callers that accept requests
 * without an origin (scripts with a bearer token) check `claimedOrigin(req) === undefined` themselves.
 */
export function originAllowed(req: OriginRequest, config: OriginConfig): boolean {
  return originVerdict(req, config) === 'same';
}

/**
 * The onRequest hook: unsafe methods authenticated by the session cookie must come from this site; requests
 * without credentials must not come from another one. Runs before the body is read, so a refused request
 * changes nothing.
 */
export function csrfGuard(config: OriginConfig, cookieName: string) {
  const cookieRe = new RegExp(`(?:^|;)\\s*${cookieName.replace(/[^A-Za-z0-9_]/g, '\\$&')}=`);
  return async (req: FastifyRequest): Promise<void> => {
    if (SAFE_METHODS.has(req.method)) return;
    const path = req.url.split('?')[0] ?? '';
    if (EXEMPT_PREFIXES.some((p) => path.startsWith(p))) return;
    if (req.headers.authorization?.startsWith('Bearer ')) return;
    const withCookie = cookieRe.test(first(req.headers.cookie) ?? '');
    const verdict = originVerdict(req, config);
    if (verdict === 'same' || (verdict === 'absent' && !withCookie)) return;
    req.log.warn(
      { event: 'csrf_refused', method: req.method, path, origin: claimedOrigin(req), withCookie },
      'cross-site request refused',
    );
    throw new HttpError(
      403,
      'csrf',
      verdict === 'absent'
        ? 'a change signed in with the session cookie must carry an Origin (or Referer) header of this site; scripts send Authorization: Bearer <token> instead'
        : `requests from ${claimedOrigin(req)} may not change anything here; open the console from this site`,
    );
  };
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

const publicOriginCache = new WeakMap<readonly string[], Set<string>>();
function publicOriginsOf(config: OriginConfig): Set<string> {
  const list = config.http.publicOrigins;
  if (!list || list.length === 0) return new Set();
  let set = publicOriginCache.get(list);
  if (!set) {
    set = new Set();
    for (const o of list) {
      try {
        set.add(new URL(o).origin);
      } catch {
        // the config schema only lets scheme://host[:port] through; anything else matches nothing
      }
    }
    publicOriginCache.set(list, set);
  }
  return set;
}

function hostOf(req: OriginRequest, config: OriginConfig): string | undefined {
  if (typeof req.host === 'string' && req.host !== '') return req.host;
  const forwarded = config.http.trustProxy ? first(req.headers['x-forwarded-host']) : undefined;
  const host = forwarded?.split(',')[0]?.trim() || first(req.headers.host);
  return host || undefined;
}

/** Host header `host[:port]` against an origin; a missing port is the origin scheme's default. */
function sameHost(origin: URL, host: string): boolean {
  if (/[@/\\?#\s]/.test(host)) return false;
  try {
    return new URL(`${origin.protocol}//${host}`).host === origin.host;
  } catch {
    return false;
  }
}
