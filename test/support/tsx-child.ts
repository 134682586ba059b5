/** Runs a TypeScript script of the project in its own Node process (benchmarks' generators and seeders). */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './system.ts';

export interface TsxChildResult {
  code: number | null;
  stdout: string;
  /** the last 8,000 characters: enough for the error, bounded for chatty children */
  stderr: string;
}

export function runTsx(script: string, args: string[] = [], env: Record<string, string> = {}): Promise<TsxChildResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, script), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-8000);
    });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The script's report: its last stdout line as JSON, or an error with the end of its stderr. */
export async function runTsxForReport<T>(what: string, script: string, args: string[] = []): Promise<T> {
  const { code, stdout, stderr } = await runTsx(script, args);
  if (code !== 0) throw new Error(`${what} exited ${code}: ${stderr.slice(-1500)}`);
  return JSON.parse(stdout.trim().split('\n').pop()!) as T;
}
