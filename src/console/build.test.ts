import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleRoutes } from '../http/routes/console.ts';
import { buildConsole, ensureConsoleBuilt, staleReason } from './build.ts';

describe('the console build', () => {
  let dir: string;
  let outDir: string;
  let files: string[];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gw-console-'));
    outDir = path.join(dir, 'console');
    files = (await buildConsole({ outDir, minify: true })).files;
  }, 30_000);
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('writes content-hashed assets and an index.html that loads them without inline code', async () => {
    const html = await readFile(path.join(outDir, 'index.html'), 'utf8');
    const js = files.filter((f) => f.endsWith('.js'));
    const css = files.filter((f) => f.endsWith('.css'));
    expect(css).toHaveLength(1);
    for (const f of [...js, ...css]) expect(f).toMatch(/^assets\/[\w-]+-[A-Z0-9]{8}\.(js|css)$/);
    expect(html).toContain(`<link rel="stylesheet" href="/${css[0]}">`);
    expect(html).toMatch(/<script type="module" src="\/assets\/app-[A-Z0-9]{8}\.js"><\/script>/);
    // no inline script or style: the console's CSP allows neither
    expect(html.match(/<script[^>]*>[^<]/g)).toBeNull();
    expect(html).not.toContain('<style');
  });

  it('leaves server-only code out of the bundle', async () => {
    const js = await Promise.all(
      files.filter((f) => f.endsWith('.js')).map((f) => readFile(path.join(outDir, f), 'utf8')),
    );
    const all = js.join('\n');
    expect(all).not.toContain('pino'); // the logger's dependency, stubbed
    expect(all).not.toMatch(/TypeBox|typebox/); // the contract's schema library, stubbed
    expect(all).toContain('紧急呼叫'); // the SMS templates' titles are shared, as UTF-8
  });

  it('rebuilds only when something changed', async () => {
    expect(await staleReason(outDir)).toBeUndefined();
    const again = await ensureConsoleBuilt(outDir);
    expect(again.built).toBe(false);
    expect(again.ms).toBeLessThan(500);
    await rm(path.join(outDir, files.find((f) => f.endsWith('.css'))!));
    expect(await staleReason(outDir)).toMatch(/missing/);
  });

  it('is served with a strict CSP on the page and long caching on the assets', async () => {
    await buildConsole({ outDir, minify: true });
    const app = Fastify();
    await app.register(consoleRoutes, { dir: outDir });
    const page = await app.inject({ url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['cache-control']).toBe('no-cache');
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    const asset = /src="(\/assets\/[^"]+)"/.exec(page.body)![1]!;
    const res = await app.inject({ url: asset });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toContain('immutable');
    expect((await app.inject({ url: '/assets/nope.js' })).statusCode).toBe(404);
    await app.close();
  });
});
