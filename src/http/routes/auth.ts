/**
 * Sessions: sign in (a desk session for a working day, or a phone session that stays signed in while it is used),
 * sign out, who am I, and one's own sessions (listed and revocable, e.g. a lost phone). The token is shown once,
 * at sign-in; lists show a session's public id, never the token.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Config } from '../../config/schema.ts';
import { SESSION_DEVICES, type SessionInfo } from '../../registry/port.ts';
import type { HttpDeps } from '../app.ts';
import { HttpError, sessionToken } from '../app.ts';
import { RoleSchema, responses, User } from '../schemas.ts';
import { shortUserAgent } from '../user-agent.ts';

export const SESSION_COOKIE = 'gw_session';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export const DeviceSchema = Type.Enum([...SESSION_DEVICES], {
  description: 'desk: a working day (auth.sessionTtlHours); phone: auth.phoneSessionDays after the last use',
});

export const SessionSchema = Type.Object({
  id: Type.String({ description: 'the session’s public id (never the token)' }),
  device: DeviceSchema,
  createdAt: Type.String({ description: 'ISO-8601' }),
  lastUsedAt: Type.String({ description: 'ISO-8601, accurate to the hour' }),
  expiresAt: Type.String({ description: 'ISO-8601; a phone session’s moves forward when it is used' }),
  current: Type.Boolean({ description: 'the session this request was made with' }),
  userAgent: Type.Optional(Type.String({ description: 'short, e.g. "Chrome on Android"' })),
});

const Me = Type.Object({
  id: Type.String(),
  username: Type.String(),
  name: Type.String({ description: 'your own full name (only ever masked in logs)' }),
  roles: Type.Array(RoleSchema),
  all: Type.Boolean({ description: 'true: you may see every grid' }),
  gridIds: Type.Array(Type.String(), { description: 'the grids you may see (empty when all is true)' }),
  device: DeviceSchema,
  sessionId: Type.String(),
  expiresAt: Type.String({ description: 'ISO-8601: when this session ends unless used (phone) or renewed' }),
});

/** How long a new session lasts, and whether it slides, per device. */
export function sessionPolicy(config: Config, device: 'desk' | 'phone'): { ttlMs: number; sliding: boolean } {
  return device === 'phone'
    ? { ttlMs: config.auth.phoneSessionDays * DAY_MS, sliding: true }
    : { ttlMs: config.auth.sessionTtlHours * HOUR_MS, sliding: false };
}

/** The console's session cookie: HttpOnly, SameSite=Strict, Secure when configured; ends with the session. */
export function setSessionCookie(reply: FastifyReply, config: Config, token: string, expiresAt: Date): void {
  reply.setCookie(SESSION_COOKIE, token, {
    httpOnly: true,
    sameSite: 'strict',
    secure: config.auth.cookieSecure,
    path: '/',
    expires: expiresAt,
  });
}

/** The session an authenticated request was made with. */
export function currentSession(req: FastifyRequest): SessionInfo {
  if (!req.authSession) throw new HttpError(401, 'unauthorized', 'sign in first');
  return req.authSession;
}

export function sessionView(s: SessionInfo, currentId: string | undefined) {
  return {
    id: s.id,
    device: s.device,
    createdAt: s.createdAt,
    lastUsedAt: s.lastUsedAt,
    expiresAt: s.expiresAt,
    current: s.id === currentId,
    ...(s.userAgent ? { userAgent: s.userAgent } : {}),
  };
}

export const authRoutes: FastifyPluginAsyncTypebox<{ deps: HttpDeps }> = async (app, { deps }) => {
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
        summary: 'Sign in: a session cookie for the console and a bearer token for scripts and the phone',
        description:
          'device desk (default) lasts auth.sessionTtlHours; device phone lasts auth.phoneSessionDays after its last ' +
          'use, so a grid worker’s phone stays signed in. From a browser, the Origin must be this site.',
        security: [],
        body: Type.Object(
          {
            username: Type.String({ minLength: 1, maxLength: 64 }),
            password: Type.String({ minLength: 1, maxLength: 256 }),
            device: Type.Optional(DeviceSchema),
          },
          { additionalProperties: false },
        ),
        response: responses({
          200: Type.Object({ token: Type.String(), expiresAt: Type.String(), device: DeviceSchema, user: User }),
        }),
      },
    },
    async (req, reply) => {
      const staff = await deps.registry.verifyLogin(req.body.username, req.body.password);
      if (!staff) {
        req.log.info({ event: 'login_failed' }, 'login refused');
        throw new HttpError(401, 'invalid_credentials', 'wrong username or password, or the account is disabled');
      }
      const device = req.body.device ?? 'desk';
      const { ttlMs, sliding } = sessionPolicy(deps.config, device);
      const session = await deps.registry.createSession(staff.id, ttlMs, {
        device,
        sliding,
        userAgent: shortUserAgent(req.headers['user-agent']),
      });
      setSessionCookie(reply, deps.config, session.token, session.expiresAt);
      req.log.info({ event: 'login', staffId: staff.id, sessionId: session.id, device }, 'signed in');
      return {
        token: session.token,
        expiresAt: session.expiresAt.toISOString(),
        device: session.device,
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
      req.log.info({ event: 'logout', staffId: req.staff?.id, sessionId: req.authSession?.id }, 'signed out');
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/auth/me',
    {
      preHandler: app.authenticate,
      schema: {
        tags: ['auth'],
        summary: 'Who is signed in: name, roles, the grids you may see, and this session',
        response: responses({ 200: Me }),
      },
    },
    async (req) => {
      const s = req.staff!;
      const scope = deps.registry.scopeOf(s);
      const session = currentSession(req);
      return {
        id: s.id,
        username: s.username,
        name: s.name,
        roles: s.roles,
        all: scope.all,
        gridIds: scope.all ? [] : [...scope.gridIds],
        device: session.device,
        sessionId: session.id,
        expiresAt: session.expiresAt,
      };
    },
  );

  app.get(
    '/auth/sessions',
    {
      preHandler: app.authenticate,
      schema: {
        tags: ['auth'],
        summary: 'Your sessions that have not ended, newest first (never their tokens)',
        response: responses({ 200: Type.Object({ items: Type.Array(SessionSchema) }) }),
      },
    },
    async (req) => {
      const current = currentSession(req);
      const items = await deps.registry.listSessions(req.staff!.id);
      return { items: items.map((s) => sessionView(s, current.id)) };
    },
  );

  app.delete(
    '/auth/sessions/:id',
    {
      preHandler: app.authenticate,
      schema: {
        tags: ['auth'],
        summary: 'End a session: one of yours (e.g. a lost phone), or anyone’s for admins',
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) }),
        response: responses({ 204: Type.Null() }),
      },
    },
    async (req, reply) => {
      const me = req.staff!;
      const target = await deps.registry.getSession(req.params.id);
      // someone else's session is "not found" for non-admins: its existence is none of their business
      if (!target || (target.staffId !== me.id && !me.roles.includes('admin'))) {
        throw new HttpError(404, 'not_found', `no session ${req.params.id} of yours`);
      }
      await deps.registry.revokeSessionById(target.id);
      if (target.id === req.authSession?.id) reply.clearCookie(SESSION_COOKIE, { path: '/' });
      req.log.info(
        { event: 'session_revoked', sessionId: target.id, staffId: target.staffId, by: me.id },
        'session revoked',
      );
      return reply.code(204).send(null);
    },
  );
};
