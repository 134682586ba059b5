#!/usr/bin/env node
// Installs what `npm start` / `npm test` need on a fresh machine, before they run (prestart / pretest).
// Plain Node on purpose: it runs before node_modules exists.
//   node scripts/setup.mjs start   npm packages + redis-server (unless REDIS_URL is set)
//   node scripts/setup.mjs test    npm packages + the servers the integration tests start
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const mode = process.argv[2] ?? 'start';

function say(msg) {
  process.stderr.write(`[setup] ${msg}\n`);
}

function fail(msg) {
  say(msg);
  process.exit(1);
}

// --- Node itself -----------------------------------------------------------------------------
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  fail(`GridWatch needs Node.js 20.19 or newer; this is ${process.version}. Install a current Node 20 or 22 LTS.`);
}

// --- npm packages: `npm ci` when node_modules is missing or older than package-lock.json ---------
const lockFile = path.join(root, 'package-lock.json');
const stampFile = path.join(root, 'node_modules', '.gridwatch-lock-hash');
const lockHash = createHash('sha256').update(readFileSync(lockFile)).digest('hex');
const installed = existsSync(stampFile) ? readFileSync(stampFile, 'utf8').trim() : '';
if (installed !== lockHash) {
  say(
    existsSync(path.join(root, 'node_modules'))
      ? 'package-lock.json changed: npm ci'
      : 'installing npm packages: npm ci',
  );
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) fail('npm ci failed (see above). Is the npm registry reachable?');
  writeFileSync(stampFile, `${lockHash}\n`);
}

// --- Debian packages ----------------------------------------------------------------------------
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const hasPostgres = () => {
  try {
    return readdirSync('/usr/lib/postgresql').some((v) => existsSync(`/usr/lib/postgresql/${v}/bin/initdb`));
  } catch {
    return false;
  }
};

/** [Debian package, is it there?] */
const wanted = [];
if (mode === 'start') {
  if (!process.env.REDIS_URL) wanted.push(['redis-server', () => has('redis-server')]);
} else if (mode === 'test') {
  wanted.push(['redis-server', () => has('redis-server')]);
  wanted.push(['postgresql', hasPostgres]);
  wanted.push(['victoria-metrics', () => has('victoria-metrics')]);
  wanted.push(['openssl', () => has('openssl')]);
  // external-broker mode is tested against Debian's mosquitto (two ingest processes on one shared subscription)
  wanted.push(['mosquitto', () => existsSync('/usr/sbin/mosquitto')]);
  // the console's browser tests drive Debian's chromium through playwright-core
  wanted.push(['chromium', () => has('chromium')]);
  // a Chinese font, or the console's screenshots show empty boxes
  wanted.push(['fonts-wqy-microhei', () => existsSync('/usr/share/fonts/truetype/wqy/wqy-microhei.ttc')]);
} else {
  fail(`unknown mode ${mode}: use start or test`);
}

const missing = wanted.filter(([, present]) => !present()).map(([pkg]) => pkg);
if (missing.length > 0) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    fail(
      `missing Debian packages: ${missing.join(' ')}.\n` +
        `  Install them once as root:  sudo apt-get update && sudo apt-get install -y ${missing.join(' ')}\n` +
        (mode === 'start' ? '  (or point GridWatch at an existing Redis with REDIS_URL=redis://host:6379)\n' : ''),
    );
  }
  if (!has('apt-get'))
    fail(`missing packages ${missing.join(' ')} and no apt-get here: install them with your package manager.`);
  say(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  } catch {
    fail(`apt-get could not install ${missing.join(' ')} (see above).`);
  }
  const still = wanted.filter(([, present]) => !present()).map(([pkg]) => pkg);
  if (still.length > 0) fail(`still missing after apt-get: ${still.join(' ')}`);
}
