/**
 * A real PostgreSQL 15 for integration tests (the deployed relational store), started from the Debian binaries.
 *
 * One server per test file (module state is per file under vitest's isolation), started on first use; every
 * `startTestPostgres()` call gets a fresh database on it, so test files and suites never see each other's rows.
 * PostgreSQL refuses to run as root: as root the data folder is handed to the `postgres` user and the server
 * commands run through `su postgres -c`.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from '../../src/lifecycle/redis-server.ts';

const PG_USER = 'gridwatch';

function pgBinDir(): string {
  if (process.env.PG_BIN_DIR) return process.env.PG_BIN_DIR;
  for (const v of ['15', '16', '17', '14']) {
    const dir = `/usr/lib/postgresql/${v}/bin`;
    if (existsSync(path.join(dir, 'initdb'))) return dir;
  }
  throw new Error(
    'PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (run: node scripts/setup.mjs test)',
  );
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Runs a server command, as `postgres` when we are root. */
function run(bin: string, args: string[], asPostgres: boolean): void {
  try {
    if (asPostgres) {
      const cmd = [bin, ...args].map(shellQuote).join(' ');
      execFileSync('su', ['postgres', '-s', '/bin/sh', '-c', cmd], { stdio: 'pipe', timeout: 60_000 });
    } else {
      execFileSync(bin, args, { stdio: 'pipe', timeout: 60_000 });
    }
  } catch (e) {
    const err = e as { stderr?: Buffer; stdout?: Buffer; message: string };
    const out = `${err.stdout?.toString() ?? ''}${err.stderr?.toString() ?? ''}`.trim().slice(-1500);
    throw new Error(`${path.basename(bin)} failed: ${out || err.message}`);
  }
}

interface Server {
  port: number;
  dir: string;
  stop(): void;
}

let server: Promise<Server> | undefined;
let users = 0;
let dbSeq = 0;

async function startServer(): Promise<Server> {
  const bin = pgBinDir();
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gw-pg-'));
  const dataDir = path.join(dir, 'data');
  const log = path.join(dir, 'server.log');
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  const port = await freePort();
  // C collation: byte order, the same order SQLite uses, so keyset pagination orders ids alike in both stores.
  run(
    path.join(bin, 'initdb'),
    ['-D', dataDir, '-A', 'trust', '-U', PG_USER, '-E', 'UTF8', '--locale=C', '--no-sync'],
    asRoot,
  );
  run(
    path.join(bin, 'pg_ctl'),
    [
      '-D',
      dataDir,
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`,
      '-l',
      log,
      '-w',
      '-t',
      '60',
      'start',
    ],
    asRoot,
  );
  const stop = () => {
    try {
      run(path.join(bin, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop'], asRoot);
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Stop the server even when a test file forgets to (or crashes before) calling stop().
  process.once('exit', () => {
    if (existsSync(dir)) stop();
  });
  return { port, dir, stop };
}

export interface TestPostgres {
  /** postgres://gridwatch@127.0.0.1:<port>/<fresh database> */
  url: string;
  stop(): Promise<void>;
}

export async function startTestPostgres(): Promise<TestPostgres> {
  server ??= startServer();
  let srv: Server;
  try {
    srv = await server;
  } catch (e) {
    server = undefined;
    throw e;
  }
  users++;
  const dbName = `gw_${process.pid}_${++dbSeq}_${Date.now().toString(36)}`;
  const admin = new pg.Client({ host: '127.0.0.1', port: srv.port, user: PG_USER, database: 'postgres' });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${dbName}"`);
  } finally {
    await admin.end();
  }
  let stopped = false;
  return {
    url: `postgres://${PG_USER}@127.0.0.1:${srv.port}/${dbName}`,
    async stop() {
      if (stopped) return;
      stopped = true;
      users--;
      if (users === 0 && server) {
        server = undefined;
        srv.stop();
      }
    },
  };
}
