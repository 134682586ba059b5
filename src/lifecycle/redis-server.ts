/**
 * A private redis-server child process: used by `npm start` when REDIS_URL is not set, and by the tests.
 * AOF is on (appendfsync everysec) and the data lives under the given directory; eviction is off because BullMQ
 * must never lose a job (maxmemory-policy noeviction).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export interface RedisServerOptions {
  binary?: string;
  dataDir: string;
  port: number;
  /** bind address, loopback by default: this Redis is private to the process */
  host?: string;
  appendOnly?: boolean;
  /** More redis-server arguments (tests: `--replicaof host port` for a replica). */
  extraArgs?: string[];
  /** Called when the server exits without stop() having asked it to. */
  onUnexpectedExit?: (code: number | null, output: string) => void;
}

export class RedisServer {
  private child?: ChildProcess;
  private stopping = false;
  private killOnExit: (() => void) | undefined;
  private exited?: Promise<void>;
  constructor(private readonly opts: RedisServerOptions) {}

  get url(): string {
    return `redis://${this.opts.host ?? '127.0.0.1'}:${this.opts.port}`;
  }

  async start(): Promise<void> {
    mkdirSync(this.opts.dataDir, { recursive: true });
    const args = [
      '--port',
      String(this.opts.port),
      '--bind',
      this.opts.host ?? '127.0.0.1',
      '--dir',
      path.resolve(this.opts.dataDir),
      '--appendonly',
      this.opts.appendOnly === false ? 'no' : 'yes',
      '--appendfsync',
      'everysec',
      '--maxmemory-policy',
      'noeviction',
      '--save',
      '',
      '--daemonize',
      'no',
      '--protected-mode',
      'yes',
      ...(this.opts.extraArgs ?? []),
    ];
    // Its own process group: Ctrl-C in a terminal signals the whole foreground group, and Redis must outlive the
    // graceful stop that still needs it (rule deadlines and state are flushed to it). We stop it last, ourselves.
    const child = spawn(this.opts.binary ?? 'redis-server', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.child = child;
    // if this process exits without stop() (a crash, process.exit), do not leave the server behind
    this.killOnExit = () => child.kill('SIGTERM');
    process.once('exit', this.killOnExit);
    let output = '';
    child.stdout?.on('data', (d: Buffer) => {
      if (output.length < 8192) output += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      if (output.length < 8192) output += d.toString();
    });
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('exit', (code) => {
      if (!this.stopping) this.opts.onUnexpectedExit?.(code, output.slice(-600));
    });
    const spawnError = new Promise<never>((_, reject) => {
      child.once('error', (e) => reject(new Error(`cannot run ${this.opts.binary ?? 'redis-server'}: ${e.message}`)));
      child.once('exit', (code) =>
        reject(new Error(`redis-server exited with code ${code}: ${output.trim().slice(-600)}`)),
      );
    });
    await Promise.race([waitForPort(this.opts.host ?? '127.0.0.1', this.opts.port, 15_000), spawnError]);
  }

  /** SIGTERM lets Redis finish its AOF write; SIGKILL after the timeout. */
  async stop(timeoutMs = 5000): Promise<void> {
    const child = this.child;
    this.stopping = true;
    if (this.killOnExit) process.off('exit', this.killOnExit);
    if (!child || child.exitCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** For fault tests: kill without a chance to save. */
  kill(): void {
    this.child?.kill('SIGKILL');
  }
}

export async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A free TCP port on loopback (for tests and for a private server when the default is taken). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}
