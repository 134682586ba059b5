import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { HttpDeps } from '../app.ts';
import { HttpError, sessionToken } from '../app.ts';
import { responses, User } from '../schemas.ts';

export const SESSION_COOKIE = 'gw_session';

export const authRoutes: FastifyPluginAsyncTypebox<{ deps: HttpDeps }> = async (app, { deps }) => {
  const ttlMs = deps.config.auth.sessionTtlHours * 3_600_000;

  app.post(
    '/auth/login',
    {
      config: {
        rateLimit: {
          max: deps.config.auth.loginRateLimitMax,
          timeWindow: deps.config.auth.loginRateLimitWindowMs,
          // per address and account: guessing one account's password is slowed down, while a community office
          // behind one NAT address can still sign its whole staff in at 8 a.m.
          hook: 'preValidation',
          keyGenerator: (req) =>
            `${req.ip}|${String((req.body as { username?: unknown } | undefined)?.username ?? '')}`,
        },
      },
      schema: {
        tags: ['auth'],
        summary: 'Sign in: a session cookie for the console and a bearer token for scripts',
        security: [],
        body: Type.Object(
          {
            username: Type.String({ minLength: 1, maxLength: 64 }),
            password: Type.String({ minLength: 1, maxLength: 256 }),
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: Type.Object({ token: Type.String(), expiresAt: Type.String(), user: User }) }),
      },
    },
    async (req, reply) => {
      const staff = await deps.registry.verifyLogin(req.body.username, req.body.password);
      if (!staff) {
        req.log.info({ event: 'login_failed' }, 'login refused');
        throw new HttpError(401, 'invalid_credentials', 'wrong username or password, or the account is disabled');
      }
      const session = await deps.registry.createSession(staff.id, ttlMs);
      reply.setCookie(SESSION_COOKIE, session.token, {
        httpOnly: true,
        sameSite: 'strict',
        secure: deps.config.auth.cookieSecure,
        path: '/',
        expires: session.expiresAt,
      });
      req.log.info({ event: 'login', staffId: staff.id }, 'signed in');
      return {
        token: session.token,
        expiresAt: session.expiresAt.toISOString(),
        user: { id: staff.id, username: staff.username, roles: staff.roles },
      };
    },
  );

  app.post(
    '/auth/logout',
    {
      preHandler: app.authenticate,
      schema: { tags: ['auth'], summary: 'Revoke this session', response: responses({ 204: Type.Null() }) },
    },
    async (req, reply) => {
      const token = sessionToken(req);
      if (token) await deps.registry.revokeSession(token);
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/auth/me',
    {
      preHandler: app.authenticate,
      schema: { tags: ['auth'], summary: 'Who is signed in', response: responses({ 200: User }) },
    },
    async (req) => {
      const s = req.staff!;
      return { id: s.id, username: s.username, roles: s.roles };
    },
  );
};
