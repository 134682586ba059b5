/** Starts a whole GridWatch node for a test: real Redis, SQLite (or PostgreSQL), broker and HTTP on free ports. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Clock } from '../../src/clock/clock.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { createLogger } from '../../src/logger.ts';
import { GridWatch } from '../../src/system.ts';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const ADMIN_PASSWORD = 'admin-password-for-tests';

// biome-ignore lint/suspicious/noExplicitAny: parsed JSON answers of many shapes; tests assert on them
type Json = any;

export interface TestNode {
  system: GridWatch;
  config: Config;
  dataDir: string;
  base: string;
  mqttUrl: string;
  /** fetch against the node's HTTP API, JSON in and out */
  api: (
    method: string,
    url: string,
    body?: unknown,
    token?: string,
  ) => Promise<{ status: number; body: Json; headers: Headers }>;
  login: (username: string, password: string) => Promise<string>;
  stop: (opts?: { keepData?: boolean }) => Promise<void>;
}

/**
 * `opts.clock`: the node's Clock (a VirtualClock runs rules, escalation steps and drills on test time; HTTP, MQTT,
 * Redis and BullMQ still run in real time).
 */
/** fetch against a node's HTTP API at `base`, JSON in and out (text kept as it is when not JSON, e.g. /metrics) */
export function jsonApi(base: string): TestNode['api'] {
  return async (method, url, body, token) => {
    const res = await fetch(base + url, {
      method,
      headers: {
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };
}

export async function startNode(
  env: Record<string, string> = {},
  dataDir?: string,
  opts: { clock?: Clock } = {},
): Promise<TestNode> {
  const dir = dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'gw-node-'));
  const config = loadConfig({
    cwd: ROOT,
    env: {
      GRIDWATCH_DATA_DIR: dir,
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: '0',
      MQTT_HOST: '127.0.0.1',
      MQTT_PORT: '0',
      MQTT_WS_PORT: '0',
      GRIDWATCH__redis__privatePort: '0',
      GRIDWATCH_ADMIN_PASSWORD: ADMIN_PASSWORD,
      GRIDWATCH_DEMO: 'false',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      ...env,
    },
  });
  const system = new GridWatch(config, createLogger(config.log.level), { root: ROOT, clock: opts.clock });
  await system.start();
  const base = `http://127.0.0.1:${system.http.port}`;
  const api = jsonApi(base);
  return {
    system,
    config,
    dataDir: dir,
    base,
    mqttUrl: system.deviceBrokerUrl('127.0.0.1'),
    api,
    login: async (username, password) => {
      const r = await api('POST', '/api/v1/auth/login', { username, password });
      if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body.token as string;
    },
    stop: async (opts) => {
      await system.stop();
      if (!opts?.keepData) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
