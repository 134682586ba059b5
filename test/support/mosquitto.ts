/**
 * Starts Debian's real `mosquitto` (2.0) for a test on a free loopback port, with a config of the test's choosing
 * (by default anonymous access: the tests that use this prove what the service does with the broker's messages;
 * the broker's own authentication against the registry is proven with the generated files in its own test).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../src/lifecycle/redis-server.ts';

export const MOSQUITTO = '/usr/sbin/mosquitto';

export interface TestMosquitto {
  url: string;
  port: number;
  dir: string;
  /** the broker process (benchmarks read its CPU time) */
  readonly pid: number | undefined;
  /** SIGKILL and start again on the same port (a broker crash); without persistence its sessions are gone */
  restart: () => Promise<void>;
  stop: () => Promise<void>;
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`mosquitto did not listen on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** `extraConfig`: lines appended to the mosquitto.conf (password_file, acl_file, …). */
export async function startTestMosquitto(extraConfig: string[] = ['allow_anonymous true']): Promise<TestMosquitto> {
  if (!existsSync(MOSQUITTO))
    throw new Error(`${MOSQUITTO} is missing: npm test installs the Debian package mosquitto`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gw-mosquitto-'));
  const port = await freePort();
  const conf = path.join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [`listener ${port} 127.0.0.1`, 'persistence false', 'log_dest stderr', 'log_type error', ...extraConfig, ''].join(
      '\n',
    ),
  );
  let child: ChildProcess | undefined;
  let stderr = '';
  const launch = async () => {
    stderr = '';
    child = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    try {
      await waitForPort(port, 10_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}: ${stderr.slice(-500)}`);
    }
  };
  const kill = async (signal: NodeJS.Signals) => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill(signal);
    });
  };
  await launch();
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    dir,
    get pid() {
      return child?.pid;
    },
    restart: async () => {
      await kill('SIGKILL');
      await launch();
    },
    stop: async () => {
      await kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
