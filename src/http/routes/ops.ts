import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { HttpDeps } from '../app.ts';

/** A readiness probe: a dependency and how to check it is reachable. */
export interface ReadinessCheck {
  name: string;
  check: () => Promise<boolean>;
}

export const opsRoutes: FastifyPluginAsyncTypebox<{ deps: HttpDeps }> = async (app, { deps }) => {
  app.get(
    '/healthz',
    { schema: { hide: true, response: { 200: Type.Object({ status: Type.Literal('ok') }) } }, logLevel: 'warn' },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      logLevel: 'warn',
      schema: {
        hide: true,
        response: {
          200: Type.Object({
            status: Type.String(),
            checks: Type.Record(Type.String(), Type.Boolean()),
            warnings: Type.Array(Type.String()),
          }),
          503: Type.Object({
            status: Type.String(),
            checks: Type.Record(Type.String(), Type.Boolean()),
            warnings: Type.Array(Type.String()),
          }),
        },
      },
    },
    async (_req, reply) => {
      const results = await Promise.all(
        deps.readiness.map(async (c) => {
          const ok = await Promise.race([
            c.check().catch(() => false),
            new Promise<boolean>((r) => setTimeout(() => r(false), 2000).unref()),
          ]);
          return [c.name, ok] as const;
        }),
      );
      const checks = Object.fromEntries(results);
      const ready = results.every(([, ok]) => ok);
      return reply
        .code(ready ? 200 : 503)
        .send({ status: ready ? 'ready' : 'not_ready', checks, warnings: deps.warnings() });
    },
  );

  app.get('/metrics', { schema: { hide: true }, logLevel: 'warn' }, async (_req, reply) => {
    const { contentType, body } = await deps.metricsText();
    return reply.type(contentType).send(body);
  });
};
