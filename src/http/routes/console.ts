/**
 * The operations console (src/console, built by src/console/build.ts) served by the API's own Fastify app:
 * - `GET /` answers index.html, never cached (it names the current build's files), with a strict CSP of its own:
 *   scripts and styles only from this origin (no inline code), connections only to this origin (the API and `/ws`),
 *   nothing may frame it;
 * - `GET /assets/*` answers the content-hashed bundle files, cached for a year (`immutable`).
 * The console routes by hash (`#/board`), so no other path is taken: /api, /docs, /ws and /webhooks stay the server's.
 */
import { stat, readFile } from 'node:fs/promises';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';

/** The console's page: stricter than the app-wide helmet policy, which allows inline code for the Swagger UI. */
export function consoleCsp(req: FastifyRequest): string {
  const directives = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    // 'self' covers ws: / wss: to the same host and port (CSP level 3)
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ];
  // only over https: on plain http (a LAN address) upgrading would point the browser at a port that does not answer
  if (req.protocol === 'https') directives.push('upgrade-insecure-requests');
  return directives.join('; ');
}

export const consoleRoutes: FastifyPluginAsync<{ dir: string }> = async (app, { dir }) => {
  const indexFile = path.join(dir, 'index.html');
  let cached: { mtimeMs: number; html: string } | undefined;
  /** index.html, re-read when a rebuild replaced it (a build swaps the whole folder in) */
  const index = async (): Promise<string> => {
    const s = await stat(indexFile);
    if (!cached || cached.mtimeMs !== s.mtimeMs)
      cached = { mtimeMs: s.mtimeMs, html: await readFile(indexFile, 'utf8') };
    return cached.html;
  };

  await app.register(fastifyStatic, {
    root: path.join(dir, 'assets'),
    prefix: '/assets/',
    decorateReply: false,
    index: false,
    dotfiles: 'deny',
    cacheControl: true,
    maxAge: 365 * 24 * 3_600_000,
    immutable: true,
  });

  app.get('/', { schema: { hide: true } }, async (req, reply) => {
    let html: string;
    try {
      html = await index();
    } catch {
      return reply
        .code(503)
        .send({ error: 'console_not_built', message: 'the console is not built: run npm run build:console' });
    }
    return reply
      .header('cache-control', 'no-cache')
      .header('content-security-policy', consoleCsp(req))
      .type('text/html; charset=utf-8')
      .send(html);
  });
};
