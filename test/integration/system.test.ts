/**
 * The whole system as `npm start` runs it: sample community, simulated devices over real MQTT, private Redis,
 * SQLite stores. Then a restart on the same data, and the real process's start-up, SIGTERM and bad config.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, ROOT, startNode, type TestNode, waitFor } from '../support/system.ts';

describe('the embedded default with the demo', () => {
  let node: TestNode | undefined;
  afterAll(async () => node?.stop());

  it('shows every simulated device online and stores their readings; a restart keeps everything', async () => {
    // 600× speed: the demo's 5-minute telemetry interval is half a second here
    node = await startNode({ GRIDWATCH_DEMO: 'true', GRIDWATCH_DEMO_SPEED: '600' });
    const token = await node.login('admin', ADMIN_PASSWORD);
    const all = await node.api('GET', '/api/v1/devices?limit=1000', undefined, token);
    const total = all.body.items.length as number;
    expect(total).toBeGreaterThanOrEqual(200);

    const online = await waitFor(
      'every demo device online',
      async () => {
        const r = await node!.api('GET', '/api/v1/devices?status=online&limit=1000', undefined, token);
        return r.body.items.length === total ? r.body.items : undefined;
      },
      60_000,
    );
    expect(online.every((d: { lastSeen?: string }) => d.lastSeen)).toBe(true);

    const meter = online.find((d: { model: string }) => d.model === 'native-electricity-meter');
    const readings = await waitFor('stored readings', async () => {
      await node!.system.timeseries.flush();
      const r = await node!.api('GET', `/api/v1/readings?deviceId=${meter.id}`, undefined, token);
      return r.body.items.length >= 4 ? r.body.items : undefined;
    });
    expect(new Set(readings.map((p: { field: string }) => p.field))).toEqual(new Set(['energy_total_kwh', 'power_w']));
    // vendor-format devices are decoded to canonical readings too
    const vendor = online.find((d: { model: string }) => d.model === 'zenmeter-em3');
    const vendorReadings = await node.api(
      'GET',
      `/api/v1/readings?deviceId=${vendor.id}&field=power_w`,
      undefined,
      token,
    );
    expect(vendorReadings.body.items.length).toBeGreaterThan(0);

    const metrics = (await node.api('GET', '/metrics')).body as string;
    expect(Number(/gridwatch_ingest_messages_total\{kind="telemetry"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(
      total,
    );
    expect(metrics).toMatch(/gridwatch_ingest_rejected_total\{reason="future"\} 0/);

    // restart on the same data dir: not seeded again, readings and last-seen kept, the demo reconnects
    const { dataDir } = node;
    const lastSeenBefore = new Map(online.map((d: { id: string; lastSeen: string }) => [d.id, d.lastSeen]));
    const pointsBefore = readings.length;
    await node.stop({ keepData: true });
    node = await startNode({ GRIDWATCH_DEMO: 'true', GRIDWATCH_DEMO_SPEED: '600' }, dataDir);
    const token2 = await node.login('admin', ADMIN_PASSWORD);
    const after = await node.api('GET', '/api/v1/devices?limit=1000', undefined, token2);
    expect(after.body.items.length).toBe(total);
    for (const d of after.body.items)
      expect(Date.parse(d.lastSeen)).toBeGreaterThanOrEqual(Date.parse(lastSeenBefore.get(d.id) as string));
    // the simulated devices said `offline` when the demo stopped; with the same secrets they all come back
    await waitFor(
      'every demo device online again',
      async () =>
        (await node!.api('GET', '/api/v1/devices?status=online&limit=1000', undefined, token2)).body.items.length ===
        total,
      60_000,
    );
    const kept = await node.api('GET', `/api/v1/readings?deviceId=${meter.id}`, undefined, token2);
    expect(kept.body.items.length).toBeGreaterThanOrEqual(pointsBefore);
    const households = await node.api('GET', '/api/v1/households?limit=1000', undefined, token2);
    expect(households.body.items.length).toBe(150);
  }, 120_000);
});

describe('the npm start process', () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
  });

  function run(env: Record<string, string>): {
    child: ChildProcess;
    output: () => string;
    exited: Promise<number | null>;
  } {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, output: () => out, exited };
  }

  it('starts, reports ready, and on SIGTERM flushes and exits 0 within the shutdown budget', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gw-main-'));
    const started = Date.now();
    const p = run({
      GRIDWATCH_DATA_DIR: dir,
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: '0',
      MQTT_PORT: '0',
      MQTT_WS_PORT: '0',
      GRIDWATCH__redis__privatePort: '0',
      GRIDWATCH_DEMO_SPEED: '600',
    });
    const up = await waitFor('GridWatch is up', async () => /"msg":"GridWatch is up[^"]*"/.test(p.output()), 60_000);
    expect(up).toBe(true);
    const startupMs = Date.now() - started;
    const line = p
      .output()
      .split('\n')
      .find((l) => l.includes('GridWatch is up'))!;
    const { http } = JSON.parse(line) as { http: number };
    const ready = await fetch(`http://127.0.0.1:${http}/readyz`);
    expect(ready.status).toBe(200);
    // the generated admin password never reaches the log
    expect(p.output()).toContain('admin-password.txt');

    const stopAt = Date.now();
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    const stopMs = Date.now() - stopAt;
    expect(stopMs).toBeLessThan(12_000);
    expect(p.output()).toContain('"msg":"stopped"');
    // the private redis-server went with it
    await expect(fetch(`http://127.0.0.1:${http}/healthz`)).rejects.toThrow();
    process.stdout.write(`npm start: up in ${startupMs} ms (incl. tsx load), stopped in ${stopMs} ms\n`);
    rmSync(dir, { recursive: true, force: true });
  }, 90_000);

  it('refuses an invalid configuration, listing every problem, and exits 2', async () => {
    const p = run({ HTTP_PORT: '99999', LOG_LEVEL: 'loud', GRIDWATCH__mqtt__colour: 'blue' });
    expect(await p.exited).toBe(2);
    const out = p.output();
    expect(out).toContain('invalid configuration (3 problems)');
    expect(out).toContain('http.port: must be <= 65535 (from environment HTTP_PORT)');
    expect(out).toContain('log.level: must be equal to one of the allowed values');
    expect(out).toContain('mqtt.colour: unknown setting (from environment GRIDWATCH__mqtt__colour)');
  }, 30_000);
});
