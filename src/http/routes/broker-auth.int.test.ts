/**
 * The external-broker hooks on a real node (registry, HTTP), called as each broker's documentation shows:
 *
 * - EMQX 5 authenticator: emqx/emqx-docs en_US/access-control/authn/http.md, "Configure with Configuration Items"
 *   (`method = post`, `body { username = "${username}", password = "${password}" }`, JSON; answer `200
 *   {"result": "allow"|"deny"|"ignore", "is_superuser": bool}`); we add `clientid` and `peerhost` to the body.
 * - EMQX 5 authorizer: emqx/emqx-docs en_US/access-control/authz/http.md (`body { username = "${username}", topic =
 *   "${topic}", action = "${action}" }`, placeholders ${clientid} ${qos} ${retain}; answer `{"result": …}`).
 * - mosquitto-go-auth HTTP backend: iegomez/mosquitto-go-auth README "HTTP" and backends/http.go: POST, JSON
 *   `{"username","password","clientid"}` to the user URI, `{"username"}` to the superuser URI,
 *   `{"username","clientid","topic","acc"}` to the ACL URI (acc 1 read, 2 write, 3 readwrite, 4 subscribe), or the
 *   same as a form (http_params_mode form); response modes status (default, 200 = ok), json `{"ok","error"}`, text.
 */
import Fastify from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNode, type TestNode, ADMIN_PASSWORD } from '../../../test/support/system.ts';
import type { HttpDeps } from '../app.ts';
import { brokerAuthRoutes } from './broker-auth.ts';

const TOKEN = 'hook-token-for-tests-0123456789';
const SERVICE = { username: 'gridwatch-svc', password: 'service-password-1' };
let node: TestNode;
let secret: string;
let secret2: string;
let disabledSecret: string;

async function hook(path: string, body: unknown, opts: { token?: string | null; form?: boolean } = {}) {
  const token = opts.token === undefined ? TOKEN : opts.token;
  const res = await fetch(`${node.base}/api/v1/broker${path}`, {
    method: 'POST',
    headers: {
      'content-type': opts.form ? 'application/x-www-form-urlencoded' : 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: opts.form ? new URLSearchParams(body as Record<string, string>).toString() : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // text response mode
  }
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers of several shapes
  return { status: res.status, body: parsed as any };
}

beforeAll(async () => {
  node = await startNode({
    MQTT_AUTH_HOOK_TOKEN: TOKEN,
    MQTT_USERNAME: SERVICE.username,
    MQTT_PASSWORD: SERVICE.password,
    GRIDWATCH__mqtt__authFailuresPerMinute: '5',
  });
  const admin = await node.login('admin', ADMIN_PASSWORD);
  const provision = async (id: string) => {
    const r = await node.api(
      'POST',
      '/api/v1/devices',
      { id, model: 'native-motion', householdId: 'h-limin-01-1-0101' },
      admin,
    );
    expect(r.status).toBe(201);
    return r.body.secret as string;
  };
  secret = await provision('pir-hook-1');
  secret2 = await provision('pir-hook-2');
  disabledSecret = await provision('pir-hook-off');
  await node.system.registry.db.updateTable('device').set({ disabled: 1 }).where('id', '=', 'pir-hook-off').execute();
  await node.system.registry.devices.refresh('pir-hook-off');
});
afterAll(async () => node?.stop());

const authn = (username: string, password: string, clientid = username, peerhost = '10.0.0.1') =>
  hook('/emqx/authn', { username, password, clientid, peerhost });
const authz = (username: string, topic: string, action: 'publish' | 'subscribe', clientid = username) =>
  hook('/emqx/authz', { username, clientid, topic, action, qos: '1', retain: 'false' });

describe('EMQX 5 HTTP authenticator', () => {
  it('allows a device with its secret, never as superuser, and denies everything else', async () => {
    expect(await authn('pir-hook-1', secret)).toEqual({ status: 200, body: { result: 'allow', is_superuser: false } });
    const deny = { status: 200, body: { result: 'deny', is_superuser: false } };
    expect(await authn('pir-hook-1', 'wrong-secret')).toEqual(deny);
    expect(await authn('no-such-device', secret)).toEqual(deny);
    expect(await authn('pir-hook-off', disabledSecret)).toEqual(deny);
    // client id ≠ username: one session per device
    expect(await authn('pir-hook-1', secret, 'pir-hook-2')).toEqual(deny);
    expect(await authn(SERVICE.username, SERVICE.password, 'gw-node-1')).toEqual({
      status: 200,
      body: { result: 'allow', is_superuser: false },
    });
    expect(await authn(SERVICE.username, 'not-it', 'gw-node-1')).toEqual(deny);
  });

  it('throttles wrong secrets per peerhost, not per device', async () => {
    for (let i = 0; i < 5; i++) await authn('pir-hook-2', `guess-${i}`, 'pir-hook-2', '10.9.9.9');
    // the guesser's address is now refused even with the right secret; the device from elsewhere still gets in
    expect((await authn('pir-hook-1', secret, 'pir-hook-1', '10.9.9.9')).body.result).toBe('deny');
    expect((await authn('pir-hook-1', secret, 'pir-hook-1', '10.0.0.7')).body.result).toBe('allow');
  });

  it('never throttles the service account, not even from a throttled address or after wrong passwords', async () => {
    for (let i = 0; i < 5; i++) await authn('pir-hook-2', `guess-${i}`, 'pir-hook-2', '10.8.8.8');
    expect((await authn('pir-hook-1', secret, 'pir-hook-1', '10.8.8.8')).body.result).toBe('deny');
    expect((await authn(SERVICE.username, SERVICE.password, 'gw-node-1', '10.8.8.8')).body.result).toBe('allow');
    for (let i = 0; i < 6; i++) await authn(SERVICE.username, `wrong-${i}`, 'gw-node-1', '10.8.8.9');
    expect((await authn(SERVICE.username, SERVICE.password, 'gw-node-1', '10.8.8.9')).body.result).toBe('allow');
  });
});

describe('EMQX 5 HTTP authorizer', () => {
  it('lets a device publish to its own topics only and subscribe to its own cmd / # only', async () => {
    const allow = { status: 200, body: { result: 'allow' } };
    const deny = { status: 200, body: { result: 'deny' } };
    expect(await authz('pir-hook-1', 'gridwatch/pir-hook-1/telemetry', 'publish')).toEqual(allow);
    expect(await authz('pir-hook-1', 'gridwatch/pir-hook-2/telemetry', 'publish')).toEqual(deny);
    expect(await authz('pir-hook-1', 'gridwatch/pir-hook-1/cmd', 'publish')).toEqual(deny);
    expect(await authz('pir-hook-1', 'gridwatch/pir-hook-1/cmd', 'subscribe')).toEqual(allow);
    expect(await authz('pir-hook-1', 'gridwatch/pir-hook-1/#', 'subscribe')).toEqual(allow);
    expect(await authz('pir-hook-1', '#', 'subscribe')).toEqual(deny);
    expect(await authz('pir-hook-1', 'gridwatch/+/cmd', 'subscribe')).toEqual(deny);
    expect(await authz('pir-hook-1', 'gridwatch/pir-hook-1/telemetry', 'publish', 'pir-hook-2')).toEqual(deny);
    expect(await authz('pir-hook-off', 'gridwatch/pir-hook-off/telemetry', 'publish')).toEqual(deny);
  });

  it('lets the service account take the shared subscription and send commands, nothing more', async () => {
    const svc = (topic: string, action: 'publish' | 'subscribe') => authz(SERVICE.username, topic, action, 'gw-node-1');
    expect((await svc('$share/g/gridwatch/+/+', 'subscribe')).body.result).toBe('allow');
    // EMQX may pass the unwrapped filter to the authorizer
    expect((await svc('gridwatch/+/+', 'subscribe')).body.result).toBe('allow');
    expect((await svc('gridwatch/pir-hook-1/cmd', 'publish')).body.result).toBe('allow');
    expect((await svc('gridwatch/pir-hook-1/error', 'publish')).body.result).toBe('allow');
    expect((await svc('#', 'subscribe')).body.result).toBe('deny');
    expect((await svc('gridwatch/pir-hook-1/telemetry', 'publish')).body.result).toBe('deny');
    expect((await svc('$SYS/#', 'subscribe')).body.result).toBe('deny');
  });
});

describe('mosquitto-go-auth HTTP backend', () => {
  it('checks users (JSON and form bodies), has no superusers, and checks ACLs by acc', async () => {
    expect(await hook('/go-auth/user', { username: 'pir-hook-1', password: secret, clientid: 'pir-hook-1' })).toEqual({
      status: 200,
      body: { ok: true },
    });
    const bad = await hook('/go-auth/user', { username: 'pir-hook-1', password: 'nope', clientid: 'pir-hook-1' });
    expect(bad.status).toBe(403);
    expect(bad.body.ok).toBe(false);
    const form = await hook(
      '/go-auth/user',
      { username: 'pir-hook-2', password: 'x', clientid: 'pir-hook-2' },
      { form: true },
    );
    expect(form.status).toBe(403);
    expect((await hook('/go-auth/superuser', { username: SERVICE.username })).status).toBe(403);
    const acl = (username: string, topic: string, acc: number, clientid = username) =>
      hook('/go-auth/acl', { username, clientid, topic, acc: String(acc) }, { form: true }).then((r) => r.status);
    expect(await acl('pir-hook-1', 'gridwatch/pir-hook-1/event', 2)).toBe(200);
    expect(await acl('pir-hook-1', 'gridwatch/pir-hook-2/event', 2)).toBe(403);
    expect(await acl('pir-hook-1', 'gridwatch/pir-hook-1/cmd', 4)).toBe(200);
    expect(await acl('pir-hook-1', '#', 4)).toBe(403);
    expect(await acl('pir-hook-1', 'gridwatch/pir-hook-1/cmd', 1)).toBe(200);
    expect(await acl('pir-hook-1', 'gridwatch/pir-hook-2/cmd', 1)).toBe(403);
    expect(await acl('pir-hook-1', 'gridwatch/pir-hook-1/telemetry', 3)).toBe(200);
    expect(await acl('pir-hook-1', 'gridwatch/pir-hook-1/cmd', 3)).toBe(403);
    expect(await acl(SERVICE.username, '$share/g/gridwatch/+/+', 4, 'gw-node-1')).toBe(200);
    expect(await acl(SERVICE.username, 'gridwatch/pir-hook-1/telemetry', 1, 'gw-node-1')).toBe(200);
    expect(await acl(SERVICE.username, 'gridwatch/pir-hook-1/cmd', 2, 'gw-node-1')).toBe(200);
    expect(await acl(SERVICE.username, 'gridwatch/pir-hook-1/status', 2, 'gw-node-1')).toBe(403);
  });

  it('takes the token in the path (go-auth sends no custom headers) and answers text mode', async () => {
    const body = { username: 'pir-hook-1', password: secret, clientid: 'pir-hook-1' };
    const inPath = await hook(`/go-auth/${TOKEN}/user?response=text`, body, { token: null });
    expect(inPath).toEqual({ status: 200, body: 'ok' });
    const wrong = await hook('/go-auth/not-the-token/user', body, { token: null });
    expect(wrong.status).toBe(401);
  });

  it('throttles per username behind one broker: a device guessed at does not lock out the fleet or the service', async () => {
    const user = (username: string, password: string, clientid = username) =>
      hook('/go-auth/user?response=text', { username, password, clientid });
    for (let i = 0; i < 5; i++) expect((await user('pir-hook-2', `guess-${i}`)).status).toBe(403);
    // the guessed-at id is throttled, even with its right secret …
    expect(await user('pir-hook-2', secret2)).toEqual({ status: 403, body: 'too many failed logins' });
    // … the other devices behind the same broker are not, nor is GridWatch's own account
    expect(await user('pir-hook-1', secret)).toEqual({ status: 200, body: 'ok' });
    expect(await user(SERVICE.username, SERVICE.password, 'gw-node-1')).toEqual({ status: 200, body: 'ok' });
    for (let i = 0; i < 6; i++) await user(SERVICE.username, `wrong-${i}`, 'gw-node-1');
    expect(await user(SERVICE.username, SERVICE.password, 'gw-node-1')).toEqual({ status: 200, body: 'ok' });
  });

  it('keeps the token in the path out of the log, even at trace level and in error lines', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'trace' }, { write: (l: string) => void lines.push(l) });
    // the hooks on a bare Fastify with a trace-level logger; the second registry fails (a database outage) so that
    // Fastify writes an error line with the request in it
    const serve = async (registry: unknown) => {
      const app = Fastify({ loggerInstance: log });
      const deps = { config: node.config, log, registry } as unknown as HttpDeps;
      await app.register(brokerAuthRoutes, { deps, prefix: '/api/v1/broker' });
      return app;
    };
    const app = await serve(node.system.registry);
    const failing = await serve({
      devices: {
        get: () => {
          throw new Error('registry unavailable');
        },
      },
    });
    try {
      const body = { username: 'pir-hook-1', password: secret, clientid: 'pir-hook-1' };
      const post = (a: typeof app, url: string, payload: Record<string, unknown>) =>
        a.inject({ method: 'POST', url, payload });
      expect((await post(app, `/api/v1/broker/go-auth/${TOKEN}/user`, body)).statusCode).toBe(200);
      expect((await post(app, `/api/v1/broker/go-auth/${TOKEN}/user`, { ...body, password: 'x' })).statusCode).toBe(
        403,
      );
      expect((await post(app, `/api/v1/broker/go-auth/${TOKEN}/acl`, { topic: 1 })).statusCode).toBe(400);
      expect((await post(app, `/api/v1/broker/go-auth/${TOKEN}x/user`, body)).statusCode).toBe(401);
      expect((await post(failing, `/api/v1/broker/go-auth/${TOKEN}/user`, body)).statusCode).toBe(500);
      const text = lines.join('');
      // the error line was written, with the request, but with the token masked
      expect(text).toContain('registry unavailable');
      expect(text).toContain('/api/v1/broker/go-auth/[redacted]/user');
      expect(text).not.toContain(TOKEN);
    } finally {
      await app.close();
      await failing.close();
    }
  });
});

describe('the hook token', () => {
  it('is required on every hook: missing or wrong gets 401 and grants nothing', async () => {
    for (const token of [null, 'wrong-token-0000000000000000']) {
      const r = await hook(
        '/emqx/authn',
        { username: 'pir-hook-1', password: secret, clientid: 'pir-hook-1' },
        { token },
      );
      expect(r.status).toBe(401);
      expect(r.body.error).toBe('unauthorized');
      expect((await hook('/go-auth/acl', { username: 'pir-hook-1', topic: 'x', acc: 1 }, { token })).status).toBe(401);
    }
  });

  it('appears in the OpenAPI document; a node without the token serves no hooks at all', async () => {
    const doc = await node.api('GET', '/docs/json');
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining(['/api/v1/broker/emqx/authn', '/api/v1/broker/emqx/authz', '/api/v1/broker/go-auth/acl']),
    );
    const plain = await startNode();
    try {
      const r = await fetch(`${plain.base}/api/v1/broker/emqx/authn`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({ username: 'pir-hook-1', password: 'x' }),
      });
      expect(r.status).toBe(404);
    } finally {
      await plain.stop();
    }
  });
});
