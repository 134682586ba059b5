/**
 * The HTTP API against a real node (Redis, SQLite, broker, HTTP on loopback), seeded with the sample community.
 * Every bad request gets a 4xx in the error shape `{error, message}` and changes nothing.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, startNode, type TestNode, waitFor } from '../support/system.ts';

let node: TestNode;
let admin: string;
let worker: string;

beforeAll(async () => {
  node = await startNode({ GRIDWATCH__auth__loginRateLimitMax: '5' });
  admin = await node.login('admin', ADMIN_PASSWORD);
  const created = await node.api(
    'POST',
    '/api/v1/staff',
    {
      username: 'gw.test',
      name: '王小明',
      phone: '+8613800000001',
      roles: ['grid_worker'],
      coverage: { gridIds: ['g-limin-01'] },
      password: 'worker-password-1',
    },
    admin,
  );
  expect(created.status).toBe(201);
  worker = await node.login('gw.test', 'worker-password-1');
});
afterAll(async () => node?.stop());

function expectError(r: { status: number; body: { error: string; message: string } }, status: number, code?: string) {
  expect(r.status).toBe(status);
  expect(typeof r.body.message).toBe('string');
  expect(r.body.message.length).toBeGreaterThan(5);
  if (code) expect(r.body.error).toBe(code);
}

describe('operations endpoints', () => {
  it('answers /healthz, /readyz with every dependency, /metrics and the OpenAPI document', async () => {
    expect((await node.api('GET', '/healthz')).body).toEqual({ status: 'ok' });
    const ready = await node.api('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toEqual({ broker: true, redis: true, database: true, timeseries: true });
    // the embedded default sends SMS nowhere, and says so
    expect(ready.body.warnings).toEqual([expect.stringMatching(/outbox.*nobody’s phone will ring/)]);
    const metrics = await node.api('GET', '/metrics');
    expect(metrics.body).toContain('gridwatch_ingest_rejected_total{reason="bad_json"} 0');
    const doc = await node.api('GET', '/docs/json');
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/auth/login',
        '/api/v1/households',
        '/api/v1/devices',
        '/api/v1/readings',
        '/api/v1/staff',
      ]),
    );
  });

  it('sets security headers (helmet)', async () => {
    const r = await node.api('GET', '/healthz');
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.headers.get('content-security-policy')).toBeTruthy();
  });
});

describe('authentication', () => {
  it('signs in with a token and a session cookie, and the cookie works alone', async () => {
    const res = await fetch(`${node.base}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
    });
    const body = (await res.json()) as {
      token: string;
      expiresAt: string;
      user: { username: string; roles: string[] };
    };
    expect(body.user).toMatchObject({ username: 'admin', roles: ['admin'] });
    expect(Date.parse(body.expiresAt)).toBeGreaterThan(Date.now());
    const cookie = res.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/gw_session=.+; .*HttpOnly/);
    const me = await fetch(`${node.base}/api/v1/auth/me`, { headers: { cookie: cookie.split(';')[0]! } });
    expect(((await me.json()) as { username: string }).username).toBe('admin');
  });

  it('refuses wrong passwords, missing and bad tokens, with the error shape', async () => {
    expectError(
      await node.api('POST', '/api/v1/auth/login', { username: 'admin', password: 'wrong-password' }),
      401,
      'invalid_credentials',
    );
    expectError(
      await node.api('POST', '/api/v1/auth/login', { username: 'nobody', password: 'wrong-password' }),
      401,
      'invalid_credentials',
    );
    expectError(await node.api('POST', '/api/v1/auth/login', { username: 'admin' }), 400, 'bad_request');
    expectError(await node.api('GET', '/api/v1/households'), 401, 'unauthorized');
    expectError(await node.api('GET', '/api/v1/households', undefined, 'not-a-token'), 401, 'unauthorized');
  });

  it('logout revokes the token', async () => {
    const t = await node.login('admin', ADMIN_PASSWORD);
    expect((await node.api('POST', '/api/v1/auth/logout', undefined, t)).status).toBe(204);
    expectError(await node.api('GET', '/api/v1/auth/me', undefined, t), 401);
  });

  it('rate-limits login attempts per account and address, not for everyone behind it', async () => {
    // the limit is 5 per minute for this node
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      statuses.push(
        (await node.api('POST', '/api/v1/auth/login', { username: 'gw.victim', password: 'guess' })).status,
      );
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429]);
    // another account from the same address still signs in
    await node.login('gw.test', 'worker-password-1');
  });
});

describe('registry reads and scope', () => {
  it('lists households with filters and pages without duplicates', async () => {
    const seen = new Set<string>();
    let cursor: string | undefined;
    do {
      const r = await node.api(
        'GET',
        `/api/v1/households?limit=40${cursor ? `&cursor=${cursor}` : ''}`,
        undefined,
        admin,
      );
      expect(r.status).toBe(200);
      for (const h of r.body.items) {
        expect(seen.has(h.id)).toBe(false);
        seen.add(h.id);
      }
      cursor = r.body.nextCursor;
    } while (cursor);
    expect(seen.size).toBe(150);
    const red = await node.api('GET', '/api/v1/households?colour=red&limit=1000', undefined, admin);
    expect(red.body.items.length).toBeGreaterThan(0);
    expect(red.body.items.every((h: { colour: string }) => h.colour === 'red')).toBe(true);
    // residents are shown masked
    const withResidents = red.body.items.find((h: { residents: unknown[] }) => h.residents.length > 0);
    expect(withResidents.residents[0].displayName).toMatch(/\*/);
  });

  it('shows a grid worker only the households and devices of their grids', async () => {
    const r = await node.api('GET', '/api/v1/households?limit=1000', undefined, worker);
    expect(r.body.items.length).toBeGreaterThan(0);
    expect(r.body.items.every((h: { gridId: string }) => h.gridId === 'g-limin-01')).toBe(true);
    const other = await node.api('GET', '/api/v1/households?gridId=g-limin-02&limit=1000', undefined, admin);
    const foreign = other.body.items[0].id as string;
    expectError(await node.api('GET', `/api/v1/households/${foreign}`, undefined, worker), 403, 'forbidden');
    expectError(await node.api('GET', `/api/v1/readings?householdId=${foreign}`, undefined, worker), 403, 'forbidden');
    // the grid worker sees the emergency contacts of their households; an evaluator (all grids) does not
    const mine = r.body.items.find((h: { id: string }) => h.id.startsWith('h-'))!.id as string;
    const withContacts = await node.api('GET', `/api/v1/households/${mine}`, undefined, worker);
    expect(withContacts.body).toHaveProperty('emergencyContacts');
    await node.api(
      'POST',
      '/api/v1/staff',
      {
        username: 'eval.test',
        name: '赵评估',
        phone: '+8613800000009',
        roles: ['evaluator'],
        password: 'evaluator-pw-1',
      },
      admin,
    );
    const evaluator = await node.login('eval.test', 'evaluator-pw-1');
    const withheld = await node.api('GET', `/api/v1/households/${mine}`, undefined, evaluator);
    expect(withheld.status).toBe(200);
    expect(withheld.body).not.toHaveProperty('emergencyContacts');
    const devices = await node.api('GET', '/api/v1/devices?limit=1000', undefined, worker);
    expect(
      devices.body.items.every((d: { placement: { gridId?: string } }) => d.placement.gridId === 'g-limin-01'),
    ).toBe(true);
  });

  it('rejects bad query parameters with 400', async () => {
    expectError(await node.api('GET', '/api/v1/households?colour=purple', undefined, admin), 400, 'bad_request');
    expectError(await node.api('GET', '/api/v1/households?limit=5000', undefined, admin), 400, 'bad_request');
    expectError(await node.api('GET', '/api/v1/households?surprise=1', undefined, admin), 400, 'bad_request');
    expectError(await node.api('GET', '/api/v1/households/h-none', undefined, admin), 404, 'not_found');
  });
});

describe('device provisioning', () => {
  it('provisions a device, shows the secret once, and the device can publish with it', async () => {
    const r = await node.api(
      'POST',
      '/api/v1/devices',
      { id: 'pir-new-1', model: 'native-motion', householdId: 'h-limin-01-1-0101' },
      admin,
    );
    expect(r.status).toBe(201);
    expect(r.body.secret.length).toBeGreaterThanOrEqual(24);
    const shown = await node.api('GET', '/api/v1/devices/pir-new-1', undefined, admin);
    expect(JSON.stringify(shown.body)).not.toContain(r.body.secret);
    expect(shown.body).toMatchObject({ id: 'pir-new-1', model: 'native-motion', kind: 'motion_sensor', drill: false });

    const client = await mqtt.connectAsync(node.mqttUrl, {
      clientId: 'pir-new-1',
      username: 'pir-new-1',
      password: r.body.secret,
      reconnectPeriod: 0,
    });
    await client.publishAsync('gridwatch/pir-new-1/telemetry', JSON.stringify({ motion: true, battery_pct: 88 }), {
      qos: 1,
    });
    await client.endAsync();
    await node.system.timeseries.flush();
    const readings = await node.api('GET', '/api/v1/readings?deviceId=pir-new-1', undefined, admin);
    expect(readings.body.items).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ field: 'motion', value: true }),
        expect.objectContaining({ field: 'battery_pct', value: 88 }),
      ]),
    );
    const device = await waitFor('device online', async () => {
      const d = await node.api('GET', '/api/v1/devices/pir-new-1', undefined, admin);
      return d.body.lastSeen ? d.body : undefined;
    });
    expect(device.lastReading.motion.value).toBe(true);
  });

  it('rejects bad provisioning requests and changes nothing', async () => {
    const before = (await node.api('GET', '/api/v1/devices?limit=1000', undefined, admin)).body.items.length;
    expectError(
      await node.api('POST', '/api/v1/devices', { id: 'x-1', model: 'native-motion' }, admin),
      400,
      'bad_request',
    );
    expectError(
      await node.api(
        'POST',
        '/api/v1/devices',
        { id: 'x-1', model: 'native-motion', householdId: 'h-limin-01-1-0101', buildingId: 'b-limin-01' },
        admin,
      ),
      400,
    );
    expectError(
      await node.api(
        'POST',
        '/api/v1/devices',
        { id: 'x-1', model: 'no-such-model', householdId: 'h-limin-01-1-0101' },
        admin,
      ),
      400,
      'unknown_model',
    );
    expectError(
      await node.api(
        'POST',
        '/api/v1/devices',
        { id: 'bad/id', model: 'native-motion', householdId: 'h-limin-01-1-0101' },
        admin,
      ),
      400,
    );
    expectError(
      await node.api('POST', '/api/v1/devices', { id: 'x-1', model: 'native-motion', householdId: 'h-nowhere' }, admin),
      400,
      'invalid',
    );
    expectError(
      await node.api(
        'POST',
        '/api/v1/devices',
        { id: 'pir-new-1', model: 'native-motion', householdId: 'h-limin-01-1-0101' },
        admin,
      ),
      409,
      'conflict',
    );
    expectError(
      await node.api(
        'POST',
        '/api/v1/devices',
        { id: 'x-2', model: 'native-motion', householdId: 'h-limin-01-1-0101' },
        worker,
      ),
      403,
      'forbidden',
    );
    const after = (await node.api('GET', '/api/v1/devices?limit=1000', undefined, admin)).body.items.length;
    expect(after).toBe(before);
  });
});

describe('readings', () => {
  it('returns raw points and aggregates over windows', async () => {
    const r = await node.api(
      'POST',
      '/api/v1/devices',
      { id: 'em-agg-1', model: 'native-electricity-meter', householdId: 'h-limin-01-1-0101' },
      admin,
    );
    const client = await mqtt.connectAsync(node.mqttUrl, {
      clientId: 'em-agg-1',
      username: 'em-agg-1',
      password: r.body.secret,
      reconnectPeriod: 0,
    });
    const t0 = Math.floor(Date.now() / 600_000) * 600_000 - 3_600_000; // an hour ago, on a 10-minute boundary
    const backfill = [0, 1, 2, 3].map((i) => ({ ts: t0 + i * 300_000, power_w: 100 * (i + 1) }));
    await client.publishAsync('gridwatch/em-agg-1/telemetry', JSON.stringify(backfill), { qos: 1 });
    await client.endAsync();
    await node.system.timeseries.flush();
    const from = new Date(t0).toISOString();
    const raw = await node.api(
      'GET',
      `/api/v1/readings?deviceId=em-agg-1&field=power_w&from=${from}`,
      undefined,
      admin,
    );
    expect(raw.body.items.map((p: { value: number }) => p.value)).toEqual([100, 200, 300, 400]);
    const mean = await node.api(
      'GET',
      `/api/v1/readings?deviceId=em-agg-1&field=power_w&from=${t0}&every=10m&agg=mean`,
      undefined,
      admin,
    );
    expect(mean.body.items).toEqual([
      { deviceId: 'em-agg-1', field: 'power_w', ts: new Date(t0).toISOString(), value: 150, agg: 'mean' },
      { deviceId: 'em-agg-1', field: 'power_w', ts: new Date(t0 + 600_000).toISOString(), value: 350, agg: 'mean' },
    ]);
    // pages of 3, then the rest, following nextCursor
    const p1 = await node.api(
      'GET',
      `/api/v1/readings?deviceId=em-agg-1&field=power_w&from=${t0}&limit=3`,
      undefined,
      admin,
    );
    expect(p1.body.items.map((p: { value: number }) => p.value)).toEqual([100, 200, 300]);
    expect(p1.body, JSON.stringify(p1.body)).toHaveProperty('nextCursor', String(t0 + 900_000));
    const p2 = await node.api(
      'GET',
      `/api/v1/readings?deviceId=em-agg-1&field=power_w&from=${t0}&limit=3&cursor=${p1.body.nextCursor}`,
      undefined,
      admin,
    );
    expect(p2.body.items.map((p: { value: number }) => p.value)).toEqual([400]);
    expect(p2.body.nextCursor).toBeUndefined();
    const byHousehold = await node.api(
      'GET',
      `/api/v1/readings?householdId=h-limin-01-1-0101&field=power_w&from=${t0}&every=1h&agg=count`,
      undefined,
      admin,
    );
    expect(byHousehold.body.items.reduce((n: number, p: { value: number }) => n + p.value, 0)).toBeGreaterThanOrEqual(
      4,
    );
  });

  it('rejects bad reading queries with a clear message', async () => {
    expectError(await node.api('GET', '/api/v1/readings', undefined, admin), 400);
    expectError(await node.api('GET', '/api/v1/readings?deviceId=em-agg-1&from=yesterday', undefined, admin), 400);
    expectError(
      await node.api(
        'GET',
        '/api/v1/readings?deviceId=em-agg-1&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z',
        undefined,
        admin,
      ),
      400,
    );
    expectError(await node.api('GET', '/api/v1/readings?deviceId=em-agg-1&every=5m', undefined, admin), 400);
    expectError(await node.api('GET', '/api/v1/readings?deviceId=em-agg-1&every=5m&agg=median', undefined, admin), 400);
    expectError(await node.api('GET', '/api/v1/readings?deviceId=em-agg-1&every=5x&agg=mean', undefined, admin), 400);
    expectError(await node.api('GET', '/api/v1/readings?deviceId=nope', undefined, admin), 404);
    expectError(
      await node.api(
        'GET',
        '/api/v1/readings?deviceId=em-agg-1&from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z',
        undefined,
        admin,
      ),
      400,
    );
    expectError(await node.api('GET', '/api/v1/readings?deviceId=em-agg-1&limit=50000', undefined, admin), 400);
  });
});

describe('staff accounts (admins)', () => {
  it('creates, changes, disables and resets passwords; others may not', async () => {
    const s = await node.api(
      'POST',
      '/api/v1/staff',
      {
        username: 'gl.test',
        name: '李建国',
        phone: '+8613900000002',
        roles: ['grid_leader'],
        coverage: { gridIds: ['g-limin-02'] },
        password: 'leader-password-1',
      },
      admin,
    );
    expect(s.status).toBe(201);
    const id = s.body.id as string;
    const leader = await node.login('gl.test', 'leader-password-1');
    const patched = await node.api(
      'PATCH',
      `/api/v1/staff/${id}`,
      { roles: ['grid_leader', 'drill_controller'] },
      admin,
    );
    expect(patched.body.roles.sort()).toEqual(['drill_controller', 'grid_leader']);
    // a password reset signs the account out everywhere
    expect(
      (await node.api('POST', `/api/v1/staff/${id}/password`, { password: 'new-leader-password' }, admin)).status,
    ).toBe(204);
    expectError(await node.api('GET', '/api/v1/auth/me', undefined, leader), 401);
    await node.login('gl.test', 'new-leader-password');
    await node.api('PATCH', `/api/v1/staff/${id}`, { disabled: true }, admin);
    expectError(
      await node.api('POST', '/api/v1/auth/login', { username: 'gl.test', password: 'new-leader-password' }),
      401,
    );
    expectError(await node.api('GET', '/api/v1/staff', undefined, worker), 403, 'forbidden');
  });

  it('rejects bad staff input', async () => {
    const good = {
      username: 'ok.name',
      name: '张三',
      phone: '+8613700000003',
      roles: ['grid_worker'],
      password: 'long-enough-pw',
    };
    expectError(await node.api('POST', '/api/v1/staff', { ...good, phone: '13700000003' }, admin), 400);
    expectError(await node.api('POST', '/api/v1/staff', { ...good, roles: ['emperor'] }, admin), 400);
    expectError(await node.api('POST', '/api/v1/staff', { ...good, password: 'short' }, admin), 400);
    expectError(await node.api('POST', '/api/v1/staff', { ...good, username: 'Bad Name' }, admin), 400);
    expectError(await node.api('POST', '/api/v1/staff', { ...good, username: 'gw.test' }, admin), 409);
    expectError(await node.api('PATCH', '/api/v1/staff/st-nobody', { name: 'x' }, admin), 404);
  });
});
