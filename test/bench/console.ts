/**
 * `npm run bench:console` (tsx test/bench/console.ts): live-console delivery latency (issue 5, "Done when").
 *
 * - A whole node starts (real Redis, SQLite, HTTP; demo off) on the sample community.
 * - Another process (this file with `--consoles`) opens BENCH_CONSOLES (default 200) WebSocket consoles on
 *   `WS /ws`: half signed in as the admin (every alert), half as grid workers of one grid (half the alerts), each
 *   saying hello and taking its snapshot.
 * - The node then raises BENCH_ALERTS_PER_SECOND (default 50) critical alerts a second for BENCH_SECONDS (default 20)
 *   through its AlertService (the same path a rule takes), alternating between two grids. Every alert carries its
 *   raise time; each console records, for each `opened` event it receives, now − that time (one machine clock).
 *   Escalation and SMS run as usual, so the consoles also receive the notification events of every alert.
 * - Delivery is complete when every console got every alert its scope covers; `lost` counts those that did not
 *   arrive within 5 s after the last raise.
 *
 * Prints one JSON line: {"consoles", "alertsPerSecond", "alerts", "deliveries", "lost",
 * "latency": {"p50Ms", "p95Ms", "p99Ms", "maxMs"}}. Target: p99 ≤ 1 s.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import type { ServerMessage } from '../../src/contracts/console.ts';
import { ADMIN_PASSWORD, ROOT, startNode } from '../support/system.ts';

export interface ConsoleBenchOptions {
  consoles: number;
  alertsPerSecond: number;
  seconds: number;
}

export interface ConsoleBenchResult {
  consoles: number;
  alertsPerSecond: number;
  alerts: number;
  deliveries: number;
  lost: number;
  latency: { p50Ms: number; p95Ms: number; p99Ms: number; maxMs: number };
}

const GRIDS = ['g-limin-01', 'g-limin-02'];

export async function runConsoleBench(opts: ConsoleBenchOptions): Promise<ConsoleBenchResult> {
  const node = await startNode({ GRIDWATCH_DEMO: 'false', LOG_LEVEL: 'error' });
  try {
    const admin = await node.login('admin', ADMIN_PASSWORD);
    await node.api(
      'POST',
      '/api/v1/staff',
      {
        username: 'gw.bench',
        name: '测网格',
        phone: '+8613800000099',
        roles: ['grid_worker'],
        coverage: { gridIds: [GRIDS[0]] },
        password: 'bench-password-1',
      },
      admin,
    );
    const worker = await node.login('gw.bench', 'bench-password-1');
    const households = await node.system.registry.listHouseholds({}, { all: true, gridIds: [] }, { limit: 500 });
    const byGrid = GRIDS.map((g) => households.items.filter((h) => h.gridId === g));

    const child = spawn(process.execPath, ['--import', 'tsx', 'test/bench/console.ts', '--consoles'], {
      cwd: ROOT,
      env: {
        ...process.env,
        BENCH_URL: node.base.replace('http', 'ws'),
        BENCH_ADMIN: admin,
        BENCH_WORKER: worker,
        BENCH_CONSOLES: String(opts.consoles),
      },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout });
    const next = () => new Promise<string>((resolve) => lines.once('line', resolve));
    const ready = await next();
    if (ready !== 'ready') throw new Error(`consoles: ${ready}`);

    const total = opts.alertsPerSecond * opts.seconds;
    const start = Date.now();
    let perGrid = [0, 0];
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / opts.alertsPerSecond;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const g = i % 2;
      const h = byGrid[g]![i % byGrid[g]!.length]!;
      perGrid[g]!++;
      await node.system.alerts.raise({
        type: 'sos',
        category: 'resident_safety',
        severity: 'critical',
        keyOn: 'device',
        subject: {
          householdId: h.id,
          gridId: h.gridId,
          buildingId: h.buildingId,
          unitId: h.unitId,
          colour: h.colour,
          deviceId: `bench-${i}`,
        },
        drill: false,
        ts: Date.now(),
        evidence: [],
        summary: `bench t=${Date.now()}`,
      });
    }
    child.stdin.write(`${JSON.stringify({ admin: total, worker: perGrid[0] })}\n`);
    const report = JSON.parse(await next()) as { deliveries: number; lost: number; latencies: number[] };
    child.kill();
    perGrid = [0, 0];
    const l = report.latencies.sort((a, b) => a - b);
    const q = (p: number) => (l.length ? l[Math.min(l.length - 1, Math.floor(p * l.length))]! : Number.NaN);
    return {
      consoles: opts.consoles,
      alertsPerSecond: opts.alertsPerSecond,
      alerts: total,
      deliveries: report.deliveries,
      lost: report.lost,
      latency: { p50Ms: q(0.5), p95Ms: q(0.95), p99Ms: q(0.99), maxMs: l.at(-1) ?? Number.NaN },
    };
  } finally {
    await node.stop();
  }
}

/** The consoles' process: opens them, reports "ready", then on the expected counts waits and reports. */
async function consoles(): Promise<void> {
  const url = `${process.env.BENCH_URL}/ws`;
  const n = Number(process.env.BENCH_CONSOLES);
  const latencies: number[] = [];
  const received: number[] = new Array(n).fill(0);
  const isAdmin = (i: number) => i % 2 === 0;
  await Promise.all(
    Array.from({ length: n }, (_, i) => {
      const token = isAdmin(i) ? process.env.BENCH_ADMIN : process.env.BENCH_WORKER;
      const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
      return new Promise<void>((resolve, reject) => {
        ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', v: 1 })));
        ws.on('error', reject);
        ws.on('message', (data) => {
          const m = JSON.parse(String(data)) as ServerMessage;
          if (m.type === 'snapshot') resolve();
          else if (m.type === 'alert' && m.change === 'opened') {
            const t = /t=(\d+)/.exec(m.alert.summary)?.[1];
            if (t) {
              latencies.push(Date.now() - Number(t));
              received[i]!++;
            }
          }
        });
      });
    }),
  );
  process.stdout.write('ready\n');
  const lines = createInterface({ input: process.stdin });
  const expected = await new Promise<{ admin: number; worker: number }>((resolve) =>
    lines.once('line', (l) => resolve(JSON.parse(l))),
  );
  const want = (i: number) => (isAdmin(i) ? expected.admin : expected.worker);
  const end = Date.now() + 5000;
  while (Date.now() < end && received.some((r, i) => r < want(i))) await new Promise((r) => setTimeout(r, 50));
  const lost = received.reduce((sum, r, i) => sum + Math.max(0, want(i) - r), 0);
  const deliveries = received.reduce((a, b) => a + b, 0);
  process.stdout.write(`${JSON.stringify({ deliveries, lost, latencies })}\n`);
}

if (process.argv.includes('--consoles')) {
  consoles().catch((err) => {
    process.stdout.write(`error ${String(err)}\n`);
    process.exit(1);
  });
} else if (process.argv[1]?.endsWith('console.ts')) {
  const r = await runConsoleBench({
    consoles: Number(process.env.BENCH_CONSOLES ?? 200),
    alertsPerSecond: Number(process.env.BENCH_ALERTS_PER_SECOND ?? 50),
    seconds: Number(process.env.BENCH_SECONDS ?? 20),
  });
  process.stdout.write(`${JSON.stringify(r)}\n`);
  process.exit(0);
}
