/**
 * The load generator (simulators/load.ts) as a child process in `--control` mode: one process, the same clients,
 * driven against several brokers in turn by commands on its stdin (see control() there).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { LoadResult, PublishOptions } from '../../simulators/load.ts';
import { ROOT } from './system.ts';

export type GeneratorRun = LoadResult & { cpuPercent: number };

interface Answer {
  ok?: boolean;
  error?: string;
  started?: number;
  [k: string]: unknown;
}

export class LoadGenerator {
  private readonly waiting: Array<(a: Answer) => void> = [];
  private stderr = '';
  private exited: string | undefined;

  private constructor(private readonly child: ChildProcess) {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      let a: Answer;
      try {
        a = JSON.parse(line) as Answer;
      } catch {
        return; // not ours (a stray log line)
      }
      this.waiting.shift()?.(a);
    });
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    child.on('exit', (code, signal) => {
      this.exited = `load generator exited (${code ?? signal}): ${this.stderr.slice(-1000)}`;
      for (const w of this.waiting.splice(0)) w({ ok: false, error: this.exited });
    });
  }

  /** Starts the generator on the loadable devices of `secretsFile` (the first `devices` of them). */
  static async start(secretsFile: string, devices: number): Promise<LoadGenerator> {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(ROOT, 'simulators/load.ts'),
        ...['--control', '--secrets', secretsFile, '--clients', String(devices)],
      ],
      { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const g = new LoadGenerator(child);
    await g.next();
    return g;
  }

  get pid(): number {
    return this.child.pid!;
  }

  connect(url: string, batch: number): Promise<{ connected: number; ms: number }> {
    return this.send({ cmd: 'connect', url, batch }) as Promise<{ connected: number; ms: number }>;
  }

  /** `onStarted` gets the generator's clock (epoch ms) when its first publish goes out. */
  async run(opts: Omit<PublishOptions, 'baseTopic'>, onStarted: (at: number) => void): Promise<GeneratorRun> {
    const started = this.next();
    const done = this.send({ cmd: 'run', ...opts });
    // the first answer is `started`, the second the result: queue both before either can arrive
    const s = await started;
    if (s.ok === false) throw new Error(s.error);
    onStarted(s.started!);
    return (await done) as unknown as GeneratorRun;
  }

  async disconnect(): Promise<void> {
    await this.send({ cmd: 'disconnect' });
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    await this.send({ cmd: 'exit' }).catch(() => {});
    this.child.stdin!.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(t);
  }

  private next(): Promise<Answer> {
    if (this.exited) return Promise.reject(new Error(this.exited));
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private async send(cmd: object): Promise<Answer> {
    const answer = this.next();
    this.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
    const a = await answer;
    if (a.ok !== true) throw new Error(`load generator: ${a.error ?? JSON.stringify(a)}`);
    return a;
  }
}
