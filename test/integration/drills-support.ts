/** Helpers for the drill tests: a node on a VirtualClock, the sample community's staff signed in, time moved on. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { VirtualClock } from '../../src/clock/clock.ts';
import { ADMIN_PASSWORD, startNode, type TestNode, waitFor } from '../support/system.ts';

// biome-ignore lint/suspicious/noExplicitAny: parsed JSON answers; the tests assert on their shape
export type Json = any;

/** Sample-community accounts the drill tests act as (config/sample-community.yaml). */
export const USERS = {
  controller: 'drill.heping',
  evaluator: 'eval.heping',
  director: 'dir.limin',
  gw1: 'gw.limin.01',
  gw2: 'gw.limin.02',
  leader: 'gl.limin.1',
  building: 'bl.limin',
  depot: 'depot.limin',
  duty: 'duty.heping',
  committee: 'cm.limin',
} as const;
export type UserKey = keyof typeof USERS | 'admin';

export interface DrillNode {
  node: TestNode;
  clock: VirtualClock;
  tokens: Record<UserKey, string>;
  staffIds: Record<UserKey, string>;
  api: (method: string, url: string, body?: unknown, as?: UserKey) => Promise<{ status: number; body: Json }>;
  /** moves the virtual clock on in steps, letting real I/O (MQTT, Redis, BullMQ) run between them */
  advance: (ms: number, stepMs?: number) => Promise<void>;
  /** waits until the drill runner and the escalator have nothing in flight */
  settle: () => Promise<void>;
  view: (drillId: string) => Promise<Json>;
}

export async function startDrillNode(
  env: Record<string, string> = {},
  opts: { dataDir?: string; clockStart?: number } = {},
): Promise<DrillNode> {
  const clock = new VirtualClock(opts.clockStart ?? Date.now());
  const node = await startNode(env, opts.dataDir, { clock });
  const secrets = JSON.parse(readFileSync(path.join(node.dataDir, 'demo-secrets.json'), 'utf8')) as {
    staffPasswords: { username: string; password: string }[];
  };
  const tokens = {} as Record<UserKey, string>;
  const staffIds = {} as Record<UserKey, string>;
  tokens.admin = await node.login('admin', ADMIN_PASSWORD);
  const staff = (await node.api('GET', '/api/v1/staff?limit=1000', undefined, tokens.admin)).body.items as {
    id: string;
    username: string;
  }[];
  for (const [key, username] of Object.entries(USERS) as [UserKey, string][]) {
    const pw = secrets.staffPasswords.find((p) => p.username === username)!.password;
    tokens[key] = await node.login(username, pw);
    staffIds[key] = staff.find((s) => s.username === username)!.id;
  }
  staffIds.admin = staff.find((s) => s.username === 'admin')!.id;
  const api: DrillNode['api'] = (method, url, body, as = 'admin') => node.api(method, url, body, tokens[as]);
  const settle = async () => {
    await node.system.drills!.idle();
    await node.system.escalator?.idle();
  };
  const advance = async (ms: number, stepMs = 5000) => {
    let left = ms;
    while (left > 0) {
      const step = Math.min(stepMs, left);
      clock.advance(step);
      left -= step;
      await new Promise((r) => setTimeout(r, 5));
    }
    await settle();
  };
  const view = async (drillId: string) => {
    const r = await api('GET', `/api/v1/drills/${drillId}`, undefined, 'controller');
    if (r.status !== 200) throw new Error(`GET drill ${drillId}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  return { node, clock, tokens, staffIds, api, advance, settle, view };
}

/** Waits (real time, the clock standing still) for a drill alert of a type to be linked to the drill. */
export async function drillAlert(d: DrillNode, drillId: string, type: string): Promise<Json> {
  return waitFor(`drill alert ${type}`, async () => {
    await d.settle();
    const v = await d.view(drillId);
    return v.alerts.find((a: Json) => a.type === type);
  });
}

/** Every notification since a time (admin sees all, numbers unmasked). */
export async function notificationsSince(d: DrillNode, since: number): Promise<Json[]> {
  const out: Json[] = [];
  let cursor: string | undefined;
  do {
    const r = await d.api(
      'GET',
      `/api/v1/notifications?since=${since}&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    out.push(...r.body.items);
    cursor = r.body.nextCursor;
  } while (cursor);
  return out;
}

/** Every alert since a time. */
export async function alertsSince(d: DrillNode, since: number): Promise<Json[]> {
  const r = await d.api('GET', `/api/v1/alerts?since=${since}&limit=1000`);
  return r.body.items;
}
