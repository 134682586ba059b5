/**
 * Builds the operations console (src/console/web) with esbuild: one JS bundle and one CSS file with content-hashed
 * names under `assets/`, and an `index.html` that loads them (no inline script or style, so the strict CSP holds).
 *
 * - `buildConsole({ outDir, minify })` always builds. It builds into a temporary folder beside `outDir` and swaps it
 *   in, so a server reading `outDir` never sees half a build, and two processes building at once both end well.
 * - `ensureConsoleBuilt(outDir)` builds only when `outDir` is missing or older than one of the files that went into
 *   it (recorded in `build.json` from esbuild's metafile) or than a file of src/console/web: a few dozen `stat`s when
 *   up to date.
 *
 * `npm run build:console` runs it into dist/console.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The project root: the nearest folder with a package.json (src/console from tsx, dist/src/console compiled). */
export const REPO_ROOT = findRoot(here);
export const WEB_DIR = path.join(here, 'web');
export const DEFAULT_CONSOLE_DIR = path.join(REPO_ROOT, 'dist', 'console');
const MANIFEST = 'build.json';

export interface ConsoleBuild {
  /** files written, relative to outDir */
  files: string[];
  /** total bytes of the files written */
  bytes: number;
}

interface Manifest {
  builtAt: number;
  minify: boolean;
  /** absolute paths of every input esbuild read */
  inputs: string[];
  files: string[];
}

/**
 * What shared server modules import but the browser never runs, replaced by stubs in the bundle:
 * - `pino`: src/notify/templates.ts imports the logger for `maskName`; the console only uses its titles.
 * - `typebox`: src/contracts/console.ts builds its message schemas at load time; the console uses only `seqAfter`
 *   and the constants (it trusts its own server and validates nothing), so the schema builders become no-ops
 *   instead of 77 KB of TypeBox. Types still come from the real modules (`import type`). A stub schema's
 *   `properties` answers every name with another stub, so a shared schema built from a part of another one
 *   (`Other.properties.trigger`) loads as well, and spreading them (`...Other.properties`) adds nothing.
 */
const SERVER_ONLY: Record<string, string> = {
  pino: 'export const pino = () => { throw new Error("pino is not in the browser bundle"); };',
  typebox:
    'const schema = () => ({ properties: new Proxy({}, { get: () => ({}) }) });\n' +
    'export const Type = new Proxy({}, { get: () => schema });\n' +
    'export default Type;',
};

const serverOnly: Plugin = {
  name: 'server-only',
  setup(b) {
    const filter = new RegExp(`^(${Object.keys(SERVER_ONLY).join('|')})$`);
    b.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'server-only' }));
    b.onLoad({ filter: /.*/, namespace: 'server-only' }, (args) => ({
      contents: SERVER_ONLY[args.path],
      loader: 'js',
    }));
  },
};

const ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#b71c1c"/><path d="M8 8h16v16H8z" fill="none" stroke="#fff" stroke-width="2.5"/><path d="M16 8v16M8 16h16" stroke="#fff" stroke-width="2.5"/></svg>`;

function html(js: string, css: string, icon: string, preload: string[]): string {
  return `<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<meta name="referrer" content="same-origin">
<title>GridWatch 社区应急</title>
<link rel="icon" href="/${icon}" type="image/svg+xml">
<link rel="stylesheet" href="/${css}">
${preload.map((f) => `<link rel="modulepreload" href="/${f}">\n`).join('')}<script type="module" src="/${js}"></script>
</head>
<body>
<div id="app"><noscript>GridWatch needs JavaScript. 请启用 JavaScript。</noscript></div>
</body>
</html>
`;
}

/** Bundles the console into `outDir` (replaced whole). */
export async function buildConsole(opts: { outDir: string; minify?: boolean }): Promise<ConsoleBuild> {
  const outDir = path.resolve(opts.outDir);
  const minify = opts.minify ?? true;
  const tmp = `${outDir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await mkdir(path.join(tmp, 'assets'), { recursive: true });
  try {
    const result = await build({
      entryPoints: { app: path.join(WEB_DIR, 'main.tsx') },
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: ['es2022', 'chrome100', 'safari15', 'firefox100'],
      outdir: path.join(tmp, 'assets'),
      entryNames: '[name]-[hash]',
      chunkNames: '[name]-[hash]',
      assetNames: '[name]-[hash]',
      // pages with charts (uPlot), admin pages and the English texts load when first needed
      splitting: true,
      minify,
      sourcemap: minify ? false : 'linked',
      legalComments: 'none',
      metafile: true,
      write: true,
      logLevel: 'silent',
      tsconfig: path.join(WEB_DIR, 'tsconfig.json'),
      jsx: 'automatic',
      jsxImportSource: 'preact',
      define: { 'process.env.NODE_ENV': '"production"' },
      charset: 'utf8', // Chinese text as UTF-8, not \u escapes (half the size)
      plugins: [serverOnly],
    });
    const outputs = Object.keys(result.metafile.outputs).map((f) => path.relative(tmp, path.resolve(f)));
    const entry = Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint?.endsWith('main.tsx'));
    const js = entry && path.relative(tmp, path.resolve(entry[0]));
    const css = entry?.[1].cssBundle && path.relative(tmp, path.resolve(entry[1].cssBundle));
    if (!entry || !js || !css)
      throw new Error(`console build: expected a .js and a .css output, got ${outputs.join(', ')}`);
    const iconHash = createHash('sha256').update(ICON).digest('hex').slice(0, 8);
    const icon = `assets/icon-${iconHash}.svg`;
    await writeFile(path.join(tmp, icon), ICON);
    // the chunks the entry imports statically: fetched in parallel with it rather than after it
    const preload = (entry[1].imports ?? [])
      .filter((i) => i.kind === 'import-statement')
      .map((i) => path.relative(tmp, path.resolve(i.path)));
    await writeFile(path.join(tmp, 'index.html'), html(js, css, icon, preload));
    const files = [...outputs, icon, 'index.html'].sort();
    let bytes = 0;
    for (const f of files) bytes += (await stat(path.join(tmp, f))).size;
    const inputs = Object.keys(result.metafile.inputs)
      .filter((f) => !f.startsWith('server-only:'))
      .map((f) => path.resolve(f));
    const manifest: Manifest = { builtAt: Date.now(), minify, inputs, files };
    await writeFile(path.join(tmp, MANIFEST), `${JSON.stringify(manifest, null, 1)}\n`);
    await swapIn(tmp, outDir);
    return { files, bytes };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Replaces `outDir` with `tmp`; when another process swapped its own build in meanwhile, keeps that one. */
async function swapIn(tmp: string, outDir: string): Promise<void> {
  await mkdir(path.dirname(outDir), { recursive: true });
  const old = `${outDir}.old-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(outDir, old);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  try {
    await rename(tmp, outDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    await rm(tmp, { recursive: true, force: true }); // another build landed first: equally good
  }
  await rm(old, { recursive: true, force: true });
}

async function newestIn(dir: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, await newestIn(p));
    else newest = Math.max(newest, (await stat(p)).mtimeMs);
  }
  return newest;
}

/** Why `outDir` needs a build, or undefined when it is up to date. */
export async function staleReason(outDir: string): Promise<string | undefined> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(path.join(outDir, MANIFEST), 'utf8')) as Manifest;
  } catch {
    return 'no build';
  }
  for (const f of manifest.files) if (!existsSync(path.join(outDir, f))) return `${f} is missing`;
  // this file decides what the build looks like, and src/console/web may have gained files
  const sources = [fileURLToPath(import.meta.url), ...manifest.inputs];
  const mtimes = await Promise.all(
    sources.map((f) =>
      stat(f).then(
        (s) => s.mtimeMs,
        () => Number.POSITIVE_INFINITY,
      ),
    ),
  );
  const i = mtimes.findIndex((m) => m > manifest.builtAt);
  if (i >= 0) return `${path.relative(REPO_ROOT, sources[i]!)} changed`;
  if ((await newestIn(WEB_DIR)) > manifest.builtAt) return 'src/console/web changed';
  return undefined;
}

/** Builds the console into `outDir` unless it is up to date. Answers whether it built and what is there. */
export async function ensureConsoleBuilt(
  outDir: string = DEFAULT_CONSOLE_DIR,
): Promise<{ built: boolean; reason?: string; ms: number }> {
  const started = performance.now();
  const reason = await staleReason(outDir);
  if (reason === undefined) return { built: false, ms: performance.now() - started };
  // a runtime image ships the built console without its sources (Dockerfile: npm run build:console)
  if (!existsSync(WEB_DIR) && existsSync(path.join(outDir, 'index.html')))
    return { built: false, ms: performance.now() - started };
  await buildConsole({ outDir, minify: true });
  return { built: true, reason, ms: performance.now() - started };
}

// `npm run build:console [outDir] [--no-minify]`
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const outDir = path.resolve(args.find((a) => !a.startsWith('--')) ?? DEFAULT_CONSOLE_DIR);
  const started = performance.now();
  buildConsole({ outDir, minify: !args.includes('--no-minify') }).then(
    async (r) => {
      const { gzipSync } = await import('node:zlib');
      let gzip = 0;
      for (const f of r.files) gzip += gzipSync(await readFile(path.join(outDir, f))).length;
      const ms = Math.round(performance.now() - started);
      process.stdout.write(`${JSON.stringify({ outDir, files: r.files, bytes: r.bytes, gzipBytes: gzip, ms })}\n`);
    },
    (err: unknown) => {
      process.stderr.write(`console build failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}

function findRoot(from: string): string {
  let dir = from;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(from, '../..');
    dir = up;
  }
  return dir;
}
