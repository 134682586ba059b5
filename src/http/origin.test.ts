import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.ts';
import { claimedOrigin, csrfGuard, originAllowed, originVerdict } from './origin.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const plain = { http: { trustProxy: false } };
const behindProxy = { http: { trustProxy: true, publicOrigins: ['https://console.example.org/'] } };

const req = (headers: Record<string, string>, host?: string) => ({ headers, ...(host ? { host } : {}) });

describe('originVerdict / originAllowed', () => {
  it('matches the Origin against the request’s own Host, default ports included', () => {
    expect(originAllowed(req({ origin: 'http://gw.local:8080', host: 'gw.local:8080' }), plain)).toBe(true);
    expect(originAllowed(req({ origin: 'https://gw.local', host: 'gw.local' }), plain)).toBe(true);
    expect(originAllowed(req({ origin: 'https://gw.local', host: 'gw.local:443' }), plain)).toBe(true);
    expect(originAllowed(req({ origin: 'http://GW.local', host: 'gw.local' }), plain)).toBe(true);
    expect(originAllowed(req({ origin: 'http://gw.local:8080', host: 'gw.local' }), plain)).toBe(false);
    expect(originAllowed(req({ origin: 'http://gw.local.evil.example', host: 'gw.local' }), plain)).toBe(false);
    expect(originAllowed(req({ origin: 'http://evil.example', host: 'evil.example@gw.local' }), plain)).toBe(false);
  });

  it('prefers Fastify’s req.host, and reads X-Forwarded-Host only behind a trusted proxy', () => {
    expect(originAllowed(req({ origin: 'https://a.example', host: 'internal:8080' }, 'a.example'), plain)).toBe(true);
    const forwarded = { origin: 'https://a.example', host: 'internal:8080', 'x-forwarded-host': 'a.example' };
    expect(originAllowed(req(forwarded), plain)).toBe(false);
    expect(originAllowed(req(forwarded), { http: { trustProxy: true } })).toBe(true);
  });

  it('accepts the configured public origins', () => {
    const r = req({ origin: 'https://console.example.org', host: 'internal:8080' });
    expect(originAllowed(r, plain)).toBe(false);
    expect(originAllowed(r, behindProxy)).toBe(true);
    expect(originAllowed(req({ origin: 'http://console.example.org', host: 'internal' }), behindProxy)).toBe(false);
  });

  it('falls back to the Referer’s origin; absent, foreign, "null" and junk are told apart', () => {
    expect(claimedOrigin(req({ referer: 'http://gw.local/console/alerts?x=1' }))).toBe('http://gw.local');
    expect(originVerdict(req({ referer: 'http://gw.local/console/', host: 'gw.local' }), plain)).toBe('same');
    // Origin wins over Referer
    expect(
      originVerdict(req({ origin: 'https://evil.example', referer: 'http://gw.local/', host: 'gw.local' }), plain),
    ).toBe('foreign');
    expect(originVerdict(req({ host: 'gw.local' }), plain)).toBe('absent');
    expect(originVerdict(req({ origin: 'null', host: 'gw.local' }), plain)).toBe('foreign');
    expect(originVerdict(req({ referer: 'not a url', host: 'gw.local' }), plain)).toBe('foreign');
    expect(originVerdict(req({ origin: 'file://gw.local', host: 'gw.local' }), plain)).toBe('foreign');
    expect(originAllowed(req({ host: 'gw.local' }), plain)).toBe(false);
  });
});

describe('csrfGuard', () => {
  async function app() {
    const a = Fastify();
    a.addHook('onRequest', csrfGuard(plain, 'gw_session'));
    let changes = 0;
    for (const url of ['/api/thing', '/webhooks/twilio/status']) {
      a.post(url, async () => ({ changes: ++changes }));
      a.get(url, async () => ({ changes }));
    }
    return a;
  }
  const host = 'gw.local';
  const cookie = 'other=1; gw_session=abc';

  it('refuses cookie-signed changes without this site’s origin, before the handler runs', async () => {
    const a = await app();
    for (const headers of [
      { cookie },
      { cookie, origin: 'https://evil.example' },
      { cookie, referer: 'https://evil.example/x' },
    ]) {
      const r = await a.inject({ method: 'POST', url: '/api/thing', headers: { host, ...headers } });
      expect(r.statusCode).toBe(403);
      expect(r.json()).toMatchObject({ statusCode: 403, code: 'csrf' });
    }
    expect((await a.inject({ method: 'GET', url: '/api/thing', headers: { host, cookie } })).json()).toEqual({
      changes: 0,
    });
    const ok = await a.inject({
      method: 'POST',
      url: '/api/thing',
      headers: { host, cookie, origin: 'http://gw.local' },
    });
    expect(ok.json()).toEqual({ changes: 1 });
  });

  it('lets bearer tokens, cookie-less requests without an origin and signed webhooks through', async () => {
    const a = await app();
    const evil = 'https://evil.example';
    const cases: Array<[string, Record<string, string>, number]> = [
      ['/api/thing', { cookie, authorization: 'Bearer t', origin: evil }, 200],
      ['/api/thing', {}, 200],
      ['/api/thing', { origin: evil }, 403], // e.g. a login from another site
      ['/api/thing', { cookie: 'gw_sessionx=1' }, 200], // not our cookie
      ['/webhooks/twilio/status', { cookie, origin: evil }, 200],
    ];
    for (const [url, headers, status] of cases) {
      const r = await a.inject({ method: 'POST', url, headers: { host, ...headers } });
      expect(r.statusCode, JSON.stringify(headers)).toBe(status);
    }
  });
});

describe('configuration', () => {
  it('phoneSessionDays defaults to 90; HTTP_PUBLIC_ORIGINS is a comma-separated list of origins', () => {
    const base = { GRIDWATCH_DATA_DIR: '/tmp/gw-origin-test' };
    const cfg = loadConfig({ cwd: ROOT, env: base });
    expect(cfg.auth.phoneSessionDays).toBe(90);
    expect(cfg.http.publicOrigins).toBeUndefined();
    const withOrigins = loadConfig({
      cwd: ROOT,
      env: { ...base, HTTP_PUBLIC_ORIGINS: 'https://a.example, https://b.example:8443' },
    });
    expect(withOrigins.http.publicOrigins).toEqual(['https://a.example', 'https://b.example:8443']);
    expect(() => loadConfig({ cwd: ROOT, env: { ...base, HTTP_PUBLIC_ORIGINS: 'https://a.example/console' } })).toThrow(
      /publicOrigins/,
    );
  });
});
