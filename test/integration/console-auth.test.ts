/**
 * Console sessions on a real node: desk and phone sessions, sliding expiry, listing and revoking sessions,
 * disabling an account or resetting its password signs it out everywhere, and cross-site (CSRF) protection of
 * everything done with the session cookie.
 */
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/clock/clock.ts';
import { SqlRegistry } from '../../src/registry/registry.ts';
import { getModel } from '../../devices/index.ts';
import { ADMIN_PASSWORD, startNode, type TestNode } from '../support/system.ts';

// biome-ignore lint/suspicious/noExplicitAny: parsed JSON answers
type Json = any;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const PHONE_UA =
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36';

let node: TestNode;
let admin: string;
let origin: string;

/** A raw request: a cookie, an Origin, a bearer token, whatever the test needs. */
async function raw(
  method: string,
  url: string,
  opts: { body?: unknown; cookie?: string; origin?: string; referer?: string; token?: string; ua?: string } = {},
): Promise<{ status: number; body: Json; setCookie: string }> {
  const headers: Record<string, string> = {};
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (opts.cookie) headers.cookie = opts.cookie;
  if (opts.origin) headers.origin = opts.origin;
  if (opts.referer) headers.referer = opts.referer;
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.ua) headers['user-agent'] = opts.ua;
  const res = await fetch(node.base + url, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  return {
    status: res.status,
    body: text ? JSON.parse(text) : undefined,
    setCookie: res.headers.get('set-cookie') ?? '',
  };
}

/** Signs in like the console: returns the token, the cookie pair and the answer. */
async function signIn(username: string, password: string, device?: 'desk' | 'phone', ua?: string) {
  const r = await raw('POST', '/api/v1/auth/login', {
    body: { username, password, ...(device ? { device } : {}) },
    origin,
    ua,
  });
  expect(r.status).toBe(200);
  return { token: r.body.token as string, cookie: r.setCookie.split(';')[0]!, body: r.body, setCookie: r.setCookie };
}

async function createStaff(username: string, roles: string[], coverage?: Json) {
  const r = await node.api(
    'POST',
    '/api/v1/staff',
    { username, name: '测试员工', phone: '+8613800009999', roles, coverage, password: `${username}-password` },
    admin,
  );
  expect(r.status).toBe(201);
  return r.body.id as string;
}

beforeAll(async () => {
  node = await startNode({ GRIDWATCH__auth__loginRateLimitMax: '1000' });
  origin = node.base; // the console is served by the node itself
  admin = await node.login('admin', ADMIN_PASSWORD);
  await createStaff('gw.sess', ['grid_worker'], { gridIds: ['g-limin-01'] });
});
afterAll(async () => node?.stop());

describe('desk and phone sessions', () => {
  it('a desk session lasts sessionTtlHours, a phone session phoneSessionDays; the cookie ends with it', async () => {
    const before = Date.now();
    const desk = await signIn('gw.sess', 'gw.sess-password');
    expect(desk.body.device).toBe('desk');
    const deskTtl = node.config.auth.sessionTtlHours * HOUR;
    expect(Date.parse(desk.body.expiresAt) - before).toBeGreaterThanOrEqual(deskTtl - 1000);
    expect(Date.parse(desk.body.expiresAt) - Date.now()).toBeLessThanOrEqual(deskTtl + 1000);
    expect(desk.body.user).toMatchObject({ username: 'gw.sess', roles: ['grid_worker'] });

    const phone = await signIn('gw.sess', 'gw.sess-password', 'phone', PHONE_UA);
    expect(node.config.auth.phoneSessionDays).toBe(90);
    expect(phone.body.device).toBe('phone');
    expect(Math.abs(Date.parse(phone.body.expiresAt) - (Date.now() + 90 * DAY))).toBeLessThan(5000);
    expect(phone.setCookie).toMatch(/HttpOnly/i);
    expect(phone.setCookie).toMatch(/SameSite=Strict/i);
    const cookieExpires = Date.parse(/Expires=([^;]+)/i.exec(phone.setCookie)![1]!);
    expect(Math.abs(cookieExpires - Date.parse(phone.body.expiresAt))).toBeLessThan(1000);

    // a bad device is a 400, and signs nobody in
    const bad = await raw('POST', '/api/v1/auth/login', {
      body: { username: 'gw.sess', password: 'gw.sess-password', device: 'tablet' },
    });
    expect(bad.status).toBe(400);
    expect(bad.setCookie).toBe('');
  });

  it('GET /auth/me: own full name, roles, the grids in scope and this session’s device', async () => {
    const phone = await signIn('gw.sess', 'gw.sess-password', 'phone');
    const me = await raw('GET', '/api/v1/auth/me', { cookie: phone.cookie });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({
      id: 'st-gw.sess',
      username: 'gw.sess',
      name: '测试员工',
      roles: ['grid_worker'],
      all: false,
      gridIds: ['g-limin-01'],
      device: 'phone',
    });
    expect(me.body.sessionId).toMatch(/^s-/);
    const adminMe = await node.api('GET', '/api/v1/auth/me', undefined, admin);
    expect(adminMe.body).toMatchObject({ username: 'admin', all: true, gridIds: [], device: 'desk' });
  });

  it('expiry on the registry’s clock: a desk session ends on time, a phone session slides while used', async () => {
    const clock = new VirtualClock(Date.now());
    const registry = new SqlRegistry(node.system.database, {
      knownModel: (m) => getModel(m) !== undefined,
      clock,
      sessionSweepMs: 0,
    });
    const desk = await registry.createSession('st-gw.sess', 10 * HOUR, { device: 'desk' });
    const phone = await registry.createSession('st-gw.sess', 90 * DAY, { device: 'phone', sliding: true });

    clock.advance(9 * HOUR);
    expect((await registry.authenticateSession(desk.token))?.session.device).toBe('desk');
    clock.advance(2 * HOUR);
    expect(await registry.authenticateSession(desk.token)).toBeUndefined();

    // used every 60 days: still signed in after 300 days
    for (let i = 0; i < 5; i++) {
      clock.advance(60 * DAY);
      const found = await registry.authenticateSession(phone.token);
      expect(found?.session.device).toBe('phone');
      expect(Date.parse(found!.session.expiresAt)).toBe(clock.now() + 90 * DAY);
      expect(found?.renewed).toBe(true);
    }
    // one use a minute later writes nothing: at most one write an hour
    const row = () =>
      node.system.database.db
        .selectFrom('session')
        .selectAll()
        .where('token_hash', '=', sha256(phone.token))
        .executeTakeFirstOrThrow() as Promise<Json>;
    const written = await row();
    clock.advance(59 * 60_000);
    const again = await registry.authenticateSession(phone.token);
    expect(again?.renewed).toBe(false);
    expect(await row()).toEqual(written);
    clock.advance(2 * 60_000);
    expect((await registry.authenticateSession(phone.token))?.renewed).toBe(true);
    expect(Number((await row()).expires_at)).toBe(clock.now() + 90 * DAY);
    // not used for 90 days: over
    clock.advance(90 * DAY + 1);
    expect(await registry.authenticateSession(phone.token)).toBeUndefined();
  });

  it('over HTTP: a used phone session moves its expiry and its cookie forward; a desk session does not', async () => {
    const phone = await signIn('gw.sess', 'gw.sess-password', 'phone');
    const desk = await signIn('gw.sess', 'gw.sess-password', 'desk');
    const db = node.system.database.db as unknown as Kysely<Json>;
    // as if both were last used two hours ago and about to end
    const soon = Date.now() + 60_000;
    for (const t of [phone.token, desk.token]) {
      await db
        .updateTable('session')
        .set({ expires_at: soon, last_used_at: Date.now() - 2 * HOUR })
        .where('token_hash', '=', sha256(t))
        .execute();
    }
    const p = await raw('GET', '/api/v1/auth/me', { cookie: phone.cookie });
    expect(p.status).toBe(200);
    expect(Math.abs(Date.parse(p.body.expiresAt) - (Date.now() + 90 * DAY))).toBeLessThan(5000);
    expect(p.setCookie).toMatch(/^gw_session=/);
    expect(Math.abs(Date.parse(/Expires=([^;]+)/i.exec(p.setCookie)![1]!) - Date.parse(p.body.expiresAt))).toBeLessThan(
      1000,
    );
    const d = await raw('GET', '/api/v1/auth/me', { cookie: desk.cookie });
    expect(d.status).toBe(200);
    expect(Date.parse(d.body.expiresAt)).toBe(soon);
    expect(d.setCookie).toBe('');
    // the desk session's last use was recorded though
    const sessions = await raw('GET', '/api/v1/auth/sessions', { cookie: desk.cookie });
    const mine = sessions.body.items.find((s: Json) => s.current);
    expect(Date.now() - Date.parse(mine.lastUsedAt)).toBeLessThan(60_000);
    // an ended session is refused
    await db
      .updateTable('session')
      .set({ expires_at: Date.now() - 1 })
      .where('token_hash', '=', sha256(desk.token))
      .execute();
    expect((await raw('GET', '/api/v1/auth/me', { cookie: desk.cookie })).status).toBe(401);
  });
});

describe('listing and revoking sessions', () => {
  it('lists own sessions without tokens, marks the current one, and revokes one (401 after)', async () => {
    await createStaff('gw.list', ['grid_worker'], { gridIds: ['g-limin-01'] });
    const desk = await signIn('gw.list', 'gw.list-password', 'desk', 'curl/8.5.0');
    const phone = await signIn('gw.list', 'gw.list-password', 'phone', PHONE_UA);
    const list = await raw('GET', '/api/v1/auth/sessions', { cookie: desk.cookie });
    expect(list.status).toBe(200);
    expect(list.body.items).toHaveLength(2);
    const text = JSON.stringify(list.body);
    for (const t of [desk.token, phone.token]) {
      expect(text).not.toContain(t);
      expect(text).not.toContain(sha256(t));
    }
    const [newest, oldest] = list.body.items;
    expect(newest).toMatchObject({ device: 'phone', current: false, userAgent: 'Chrome on Android' });
    expect(oldest).toMatchObject({ device: 'desk', current: true, userAgent: 'curl' });
    expect(Object.keys(newest).sort()).toEqual(
      ['createdAt', 'current', 'device', 'expiresAt', 'id', 'lastUsedAt', 'userAgent'].sort(),
    );

    // the lost phone: revoked from the desk
    const del = await raw('DELETE', `/api/v1/auth/sessions/${newest.id}`, { cookie: desk.cookie, origin });
    expect(del.status).toBe(204);
    expect((await raw('GET', '/api/v1/auth/me', { token: phone.token })).status).toBe(401);
    expect((await raw('GET', '/api/v1/auth/me', { cookie: phone.cookie })).status).toBe(401);
    expect((await raw('GET', '/api/v1/auth/me', { cookie: desk.cookie })).status).toBe(200);
    expect((await raw('DELETE', `/api/v1/auth/sessions/${newest.id}`, { token: desk.token })).status).toBe(404);
    // revoking the current session signs out and clears the cookie
    const self = await raw('DELETE', `/api/v1/auth/sessions/${oldest.id}`, { token: desk.token });
    expect(self.status).toBe(204);
    expect(self.setCookie).toMatch(/^gw_session=;/);
    expect((await raw('GET', '/api/v1/auth/me', { token: desk.token })).status).toBe(401);
  });

  it('someone else’s session: not found for a non-admin, revocable by an admin; admins list anyone’s', async () => {
    await createStaff('gw.other', ['grid_worker'], { gridIds: ['g-limin-02'] });
    const victim = await signIn('gw.other', 'gw.other-password', 'phone');
    const nosy = await signIn('gw.sess', 'gw.sess-password');
    const theirs = await node.api('GET', '/api/v1/staff/st-gw.other/sessions', undefined, admin);
    expect(theirs.status).toBe(200);
    expect(theirs.body.items).toHaveLength(1);
    expect(theirs.body.items[0]).toMatchObject({ device: 'phone', current: false });
    const id = theirs.body.items[0].id as string;
    expect(JSON.stringify(theirs.body)).not.toContain(victim.token);

    expect((await raw('GET', '/api/v1/staff/st-gw.other/sessions', { token: nosy.token })).status).toBe(403);
    const refused = await raw('DELETE', `/api/v1/auth/sessions/${id}`, { token: nosy.token });
    expect(refused.status).toBe(404);
    expect(refused.body.error).toBe('not_found');
    expect((await raw('GET', '/api/v1/auth/me', { token: victim.token })).status).toBe(200);

    expect((await node.api('DELETE', `/api/v1/auth/sessions/${id}`, undefined, admin)).status).toBe(204);
    expect((await raw('GET', '/api/v1/auth/me', { token: victim.token })).status).toBe(401);
    expect((await node.api('GET', '/api/v1/staff/st-nobody/sessions', undefined, admin)).status).toBe(404);
  });

  it('an admin signs someone out everywhere; the account stays usable', async () => {
    const a = await signIn('gw.other', 'gw.other-password', 'desk');
    const b = await signIn('gw.other', 'gw.other-password', 'phone');
    const r = await node.api('DELETE', '/api/v1/staff/st-gw.other/sessions', undefined, admin);
    expect(r.status).toBe(200);
    expect(r.body.revoked).toBe(2);
    for (const t of [a.token, b.token]) expect((await raw('GET', '/api/v1/auth/me', { token: t })).status).toBe(401);
    await signIn('gw.other', 'gw.other-password');
  });

  it('disabling an account or resetting its password ends all its sessions at once', async () => {
    await createStaff('gw.leaver', ['grid_worker'], { gridIds: ['g-limin-01'] });
    const desk = await signIn('gw.leaver', 'gw.leaver-password', 'desk');
    const phone = await signIn('gw.leaver', 'gw.leaver-password', 'phone');
    const off = await node.api('PATCH', '/api/v1/staff/st-gw.leaver', { disabled: true }, admin);
    expect(off.status).toBe(200);
    expect(off.body.disabled).toBe(true);
    for (const t of [desk.token, phone.token])
      expect((await raw('GET', '/api/v1/auth/me', { token: t })).status).toBe(401);
    expect((await node.api('GET', '/api/v1/staff/st-gw.leaver/sessions', undefined, admin)).body.items).toEqual([]);
    // enabling again does not bring the old sessions back
    await node.api('PATCH', '/api/v1/staff/st-gw.leaver', { disabled: false }, admin);
    for (const t of [desk.token, phone.token])
      expect((await raw('GET', '/api/v1/auth/me', { token: t })).status).toBe(401);

    const again = await signIn('gw.leaver', 'gw.leaver-password', 'phone');
    const reset = await node.api(
      'POST',
      '/api/v1/staff/st-gw.leaver/password',
      { password: 'a-new-password-1' },
      admin,
    );
    expect(reset.status).toBe(204);
    expect((await raw('GET', '/api/v1/auth/me', { token: again.token })).status).toBe(401);
    await signIn('gw.leaver', 'a-new-password-1');
  });
});

describe('staff administration', () => {
  it('GET /staff/:id; bad changes are refused and change nothing', async () => {
    const one = await node.api('GET', '/api/v1/staff/st-gw.sess', undefined, admin);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ id: 'st-gw.sess', username: 'gw.sess', roles: ['grid_worker'], disabled: false });
    expect(JSON.stringify(one.body)).not.toContain('password');
    expect((await node.api('GET', '/api/v1/staff/st-nobody', undefined, admin)).status).toBe(404);
    const worker = await signIn('gw.sess', 'gw.sess-password');
    expect((await raw('GET', '/api/v1/staff/st-gw.sess', { token: worker.token })).status).toBe(403);

    const bad: Array<[unknown, number]> = [
      [{ roles: ['grid_worker', 'wizard'] }, 400],
      [{ coverage: { gridIds: ['g-nowhere'] } }, 400],
      [{ phone: '13800000000' }, 400],
      [{ name: '' }, 400],
      [{}, 400],
      [{ username: 'renamed' }, 400],
    ];
    for (const [body, status] of bad) {
      const r = await node.api('PATCH', '/api/v1/staff/st-gw.sess', body, admin);
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(typeof r.body.message).toBe('string');
    }
    expect((await node.api('GET', '/api/v1/staff/st-gw.sess', undefined, admin)).body).toEqual(one.body);
    expect((await node.api('PATCH', '/api/v1/staff/st-nobody', { name: '某人' }, admin)).status).toBe(404);
    expect((await node.api('POST', '/api/v1/staff/st-gw.sess/password', { password: 'short' }, admin)).status).toBe(
      400,
    );
    await signIn('gw.sess', 'gw.sess-password');

    // an admin cannot lock themselves out
    expect((await node.api('PATCH', '/api/v1/staff/st-admin', { disabled: true }, admin)).status).toBe(400);
    expect((await node.api('PATCH', '/api/v1/staff/st-admin', { roles: ['grid_worker'] }, admin)).status).toBe(400);
    expect((await node.api('GET', '/api/v1/staff/st-admin', undefined, admin)).body.roles).toEqual(['admin']);
  });
});

describe('cross-site request protection', () => {
  const foreign = 'https://evil.example';

  it('a cookie-signed change from another origin is refused (403 csrf) and changes nothing', async () => {
    const desk = await signIn('admin', ADMIN_PASSWORD);
    const target = '/api/v1/staff/st-gw.sess';
    const before = (await node.api('GET', target, undefined, admin)).body;
    const attempts = [
      { origin: foreign },
      { origin: 'null' },
      { origin: `${origin.replace('127.0.0.1', 'localhost')}` },
      { origin: origin.replace(/:\d+$/, ':1') },
      { referer: `${foreign}/page` },
      {}, // neither Origin nor Referer
    ];
    for (const a of attempts) {
      const r = await raw('PATCH', target, { body: { name: '被篡改' }, cookie: desk.cookie, ...a });
      expect(r.status, JSON.stringify(a)).toBe(403);
      expect(r.body.error).toBe('csrf');
      expect(r.body.message.length).toBeGreaterThan(10);
    }
    const logout = await raw('POST', '/api/v1/auth/logout', { cookie: desk.cookie, origin: foreign });
    expect(logout.status).toBe(403);
    expect((await node.api('GET', target, undefined, admin)).body).toEqual(before);
    expect((await raw('GET', '/api/v1/auth/me', { cookie: desk.cookie })).status).toBe(200);
  });

  it('the same change with this site’s Origin (or Referer), or with a bearer token, works', async () => {
    const desk = await signIn('admin', ADMIN_PASSWORD);
    const target = '/api/v1/staff/st-gw.sess';
    const a = await raw('PATCH', target, { body: { name: '王一' }, cookie: desk.cookie, origin });
    expect(a.status).toBe(200);
    expect(a.body.name).toBe('王一');
    const b = await raw('PATCH', target, {
      body: { name: '王二' },
      cookie: desk.cookie,
      referer: `${origin}/console/`,
    });
    expect(b.status).toBe(200);
    // a bearer token cannot be sent cross-site by a browser: no Origin needed, and a stray one does not matter
    const c = await raw('PATCH', target, { body: { name: '王三' }, token: desk.token, origin: foreign });
    expect(c.status).toBe(200);
    expect((await node.api('GET', target, undefined, admin)).body.name).toBe('王三');
    // reading needs no Origin
    expect((await raw('GET', target, { cookie: desk.cookie })).status).toBe(200);
    const out = await raw('POST', '/api/v1/auth/logout', { cookie: desk.cookie, origin });
    expect(out.status).toBe(204);
  });

  it('login: refused from a foreign Origin (no cookie set), accepted from this site or without an Origin', async () => {
    const body = { username: 'gw.sess', password: 'gw.sess-password' };
    const evil = await raw('POST', '/api/v1/auth/login', { body, origin: foreign });
    expect(evil.status).toBe(403);
    expect(evil.body.error).toBe('csrf');
    expect(evil.setCookie).toBe('');
    expect((await raw('POST', '/api/v1/auth/login', { body, origin })).status).toBe(200);
    expect((await raw('POST', '/api/v1/auth/login', { body })).status).toBe(200);
  });
});

function sha256(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
