/**
 * The service as a real child process (`src/main.ts`, what `npm start` runs), for tests and benchmarks that kill
 * it, or that need two nodes on two event loops: start with an environment, wait for `/readyz`, talk JSON to its
 * API, SIGKILL or stop it, start it again on the same data dir.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { freePort } from '../../src/lifecycle/redis-server.ts';
import { ADMIN_PASSWORD, jsonApi, ROOT, waitFor } from './system.ts';

// biome-ignore lint/suspicious/noExplicitAny: JSON answers of the API; the tests assert on them
type Json = any;

export interface ServiceProcess {
  readonly httpPort: number;
  readonly dataDir: string;
  readonly pid: number | undefined;
  /** what the process printed so far (pino JSON lines) */
  log(): string;
  api(method: string, url: string, body?: unknown, token?: string): Promise<{ status: number; body: Json }>;
  login(username?: string, password?: string): Promise<string>;
  /** SIGKILL: no stop hooks, nothing flushed */
  kill(): Promise<void>;
  /** SIGTERM and wait for the exit */
  stop(): Promise<void>;
  /** starts it again with the same environment (same data dir, same ports) */
  restart(): Promise<void>;
}

export interface ServiceProcessOptions {
  dataDir: string;
  env: Record<string, string>;
  /** extra node flags, e.g. --cpu-prof */
  nodeArgs?: string[];
  readyTimeoutMs?: number;
}

export async function startServiceProcess(opts: ServiceProcessOptions): Promise<ServiceProcess> {
  const httpPort = await freePort();
  const env = {
    ...process.env,
    GRIDWATCH_DATA_DIR: opts.dataDir,
    HTTP_HOST: '127.0.0.1',
    HTTP_PORT: String(httpPort),
    MQTT_HOST: '127.0.0.1',
    MQTT_WS_PORT: '0',
    GRIDWATCH_ADMIN_PASSWORD: ADMIN_PASSWORD,
    GRIDWATCH_DEMO: 'false',
    LOG_LEVEL: 'warn',
    LOG_PRETTY: 'false',
    ...opts.env,
  };
  let child: ChildProcess | undefined;
  let output = '';
  const launch = async () => {
    output = '';
    const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', 'src/main.ts'], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    proc.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    proc.stderr?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    await waitFor(
      'the service to be ready',
      async () => {
        if (proc.exitCode !== null) throw new Error(`service exited ${proc.exitCode}: ${output.slice(-2000)}`);
        const r = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
        return r.status === 200;
      },
      opts.readyTimeoutMs ?? 90_000,
    );
  };
  const exit = (signal: NodeJS.Signals) => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
    return new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill(signal);
    });
  };
  const api: ServiceProcess['api'] = jsonApi(`http://127.0.0.1:${httpPort}`);
  await launch();
  return {
    httpPort,
    dataDir: opts.dataDir,
    get pid() {
      return child?.pid;
    },
    log: () => output,
    api,
    login: async (username = 'admin', password = ADMIN_PASSWORD) => {
      const r = await api('POST', '/api/v1/auth/login', { username, password });
      if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body.token as string;
    },
    kill: () => exit('SIGKILL'),
    stop: () => exit('SIGTERM'),
    restart: launch,
  };
}
