/**
 * The Fastify app: plugins (helmet, cookie, rate-limit, swagger), one error shape, authentication and the routes.
 * Built by `buildHttpApp(deps)`; the HttpServer module listens.
 */
import cookie from '@fastify/cookie';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { AlertService } from '../alerts/service.ts';
import type { AlertStatsService } from '../alerts/stats.ts';
import type { CommandService } from '../commands/service.ts';
import type { RecentRejects } from '../ingest/pipeline.ts';
import { statsRoutes } from './routes/stats.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../logger.ts';
import { RegistryError, type Registry, type Scope, type Staff } from '../registry/port.ts';
import type { Role } from '../registry/types.ts';
import type { TimeSeriesStore } from '../timeseries/port.ts';
import type { NotificationStore } from '../notify/store.ts';
import { alertRoutes } from './routes/alerts.ts';
import { notificationRoutes } from './routes/notifications.ts';
import { type TwilioWebhookDeps, twilioWebhookRoutes } from './routes/twilio.ts';
import { type VisitDeps, visitRoutes } from './routes/visits.ts';
import type { AccessLog } from '../registry/access-log.ts';
import type { SessionInfo } from '../registry/port.ts';
import { csrfGuard, originAllowed } from './origin.ts';
import { accessLogRoutes } from './routes/access-log.ts';
import { brokerAuthRoutes } from './routes/broker-auth.ts';
import { consoleRoutes } from './routes/console.ts';
import { authRoutes, SESSION_COOKIE, setSessionCookie } from './routes/auth.ts';
import { deviceRoutes } from './routes/devices.ts';
import { opsRoutes, type ReadinessCheck } from './routes/ops.ts';
import { readingRoutes } from './routes/readings.ts';
import { registryRoutes } from './routes/registry.ts';
import { type RosterApi, rosterRoutes } from './routes/roster.ts';
import { staffRoutes } from './routes/staff.ts';
import { wsRoutes } from './routes/ws.ts';
import type { ConsoleHub } from '../console/hub.ts';
import type { DrillRunner } from '../drills/runner.ts';
import { drillRoutes } from './routes/drills.ts';
import type { SupplyService } from '../supplies/service.ts';
import { supplyRoutes } from './routes/supplies.ts';
import { ErrorBody } from './schemas.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in staff member, set by `app.authenticate`. */
    staff?: Staff;
    scope?: Scope;
    /** The session the request was made with (id, device, expiry), set by `app.authenticate`. */
    authSession?: SessionInfo;
  }
  interface FastifyInstance {
    authenticate: (req: FastifyRequest, reply: FastifyReply) => Promise<void>;
    requireRoles: (...roles: Role[]) => (req: FastifyRequest, reply: FastifyReply) => Promise<void>;
  }
}

/** Live device state kept by the broker's status tracker. */
export interface DeviceStateSource {
  get(deviceId: string):
    | {
        status: 'online' | 'offline' | 'unknown';
        lastSeen?: number;
        lastReading?: Record<string, { value: number | boolean; ts: number }>;
      }
    | undefined;
}

export interface HttpDeps {
  /** the console's live fan-out; WS /ws is served when given */
  consoleHub?: ConsoleHub;
  config: Config;
  log: Logger;
  registry: Registry;
  timeseries: TimeSeriesStore;
  deviceState: DeviceStateSource;
  metricsText: () => Promise<{ contentType: string; body: string }>;
  readiness: ReadinessCheck[];
  /** Said loudly on /readyz: e.g. SMS going to the outbox, so nobody's phone will ring. */
  warnings: () => string[];
  /** Model ids with their kind, for the API's device answers and provisioning checks. */
  models: { get(id: string): { id: string; kind: string } | undefined; list(): unknown[] };
  /** The stored alerts: what the alert API reads and changes. */
  alerts: Pick<AlertService, 'get' | 'list' | 'acknowledge' | 'resolve' | 'addNote'>;
  /** The rule settings in force, for GET /api/v1/rules. */
  rules: () => { timezone: string; rules: unknown };
  /** Home visits and away periods. */
  visits: VisitDeps['visits'];
  cadenceDays: VisitDeps['cadenceDays'];
  /** Twilio webhooks (status, SMS replies); only when Twilio is configured with its public URL. */
  twilio?: TwilioWebhookDeps;
  /** Every SMS sent or attempted. */
  notifications: Pick<NotificationStore, 'list'>;
  /**
   * Who was shown residents' full names or emergency contacts (PIPL), written before they are shown. Without it
   * nobody sees them unmasked and GET /api/v1/access-log is not served.
   */
  accessLog?: Pick<AccessLog, 'record' | 'list'>;
  /** The duty roster (absences and substitutes); its routes are served only when it is given. */
  roster?: RosterApi;
  /** Commands to devices and their answers (POST/GET /api/v1/devices/:id/commands, served when given). */
  commands?: Pick<CommandService, 'send' | 'list' | 'commandsOf'>;
  /** The latest rejected messages per device, kept in memory by this node's ingest (…/rejects, when given). */
  deviceRejects?: Pick<RecentRejects, 'recent'>;
  /** Community overview statistics (GET /api/v1/stats/…, served when given). */
  stats?: Pick<AlertStatsService, 'overview' | 'alerts'>;
  /** The built operations console (src/console/build.ts): served at / and /assets/ when given. */
  consoleDir?: string;
  /** Drills: scenarios, running drills, reports (GET/POST /api/v1/drills…, served when given). */
  drills?: DrillRunner;
  /** Emergency supplies: depots, stock, ledger, transfers (GET/POST /api/v1/supplies/…, served when given). */
  supplies?: SupplyService;
}

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: unknown[],
  ) {
    super(message);
  }
}

/** The path of the first non-finite number in a parsed request part, if any (bounded depth). */
function nonFinite(value: unknown, path: string, depth = 0): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : path;
  if (value === null || typeof value !== 'object' || depth > 32) return undefined;
  for (const [k, v] of Object.entries(value)) {
    const found = nonFinite(v, `${path}/${k}`, depth + 1);
    if (found) return found;
  }
  return undefined;
}

export async function buildHttpApp(deps: HttpDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log.child({ module: 'http' }),
    trustProxy: deps.config.http.trustProxy,
    bodyLimit: 1_048_576,
    ajv: { customOptions: { allErrors: false, coerceTypes: 'array', removeAdditional: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.addSchema(ErrorBody);
  // ajv's coercion turns "1e999" or "Infinity" in a query into ±Infinity and then skips minimum / maximum (found by
  // the HTTP fuzzer), and JSON.parse reads 1e999 as Infinity: no number in a request may be non-finite.
  app.addHook('preHandler', async (req) => {
    const where = nonFinite(req.query, 'querystring') ?? nonFinite(req.params, 'params') ?? nonFinite(req.body, 'body');
    if (where) throw new HttpError(400, 'bad_request', `${where} must be a finite number`);
  });
  await app.register(helmet, {
    // the Swagger UI needs inline scripts and styles on /docs; everything else keeps the strict defaults
    contentSecurityPolicy: {
      directives: { 'script-src': ["'self'", "'unsafe-inline'"], 'style-src': ["'self'", "'unsafe-inline'"] },
    },
  });
  await app.register(cookie);
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_req, ctx) => ({
      statusCode: 429,
      error: 'too_many_requests',
      message: `too many attempts; try again in ${Math.ceil(ctx.ttl / 1000)} s`,
    }),
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'GridWatch API', version: '1', description: 'Community emergency coordination and IoT alerting' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          cookie: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE },
        },
      },
      security: [{ bearer: [] }, { cookie: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  app.setErrorHandler((err: FastifyError | HttpError | RegistryError, req, reply) => {
    if (err instanceof HttpError) {
      return reply.code(err.statusCode).send({ error: err.code, message: err.message, details: err.details });
    }
    if (err instanceof RegistryError) {
      const status = err.code === 'not_found' ? 404 : err.code === 'conflict' ? 409 : 400;
      return reply.code(status).send({ error: err.code, message: err.message, details: err.details });
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      const details = fe.validation.map((v) => ({
        path: `${fe.validationContext ?? ''}${v.instancePath}`,
        message: v.message,
        params: v.params,
      }));
      return reply.code(400).send({ error: 'bad_request', message: fe.message, details });
    }
    if (fe.statusCode === 429) return reply.code(429).send({ error: 'too_many_requests', message: fe.message });
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      return reply.code(fe.statusCode).send({ error: fe.code?.toLowerCase() ?? 'bad_request', message: fe.message });
    }
    req.log.error({ err }, 'request failed');
    return reply.code(500).send({ error: 'internal', message: 'internal error; see the server log' });
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` });
  });

  app.decorate('authenticate', async (req: FastifyRequest, reply: FastifyReply) => {
    const token = sessionToken(req);
    if (!token)
      throw new HttpError(
        401,
        'unauthorized',
        'sign in first: POST /api/v1/auth/login, then send the token as Authorization: Bearer <token>',
      );
    const found = await deps.registry.authenticateSession(token);
    if (!found) throw new HttpError(401, 'unauthorized', 'the session has expired or was revoked; sign in again');
    req.staff = found.staff;
    req.scope = deps.registry.scopeOf(found.staff);
    req.authSession = found.session;
    // a phone session slid forward: the cookie (if that is how it came) must not end before the session does
    if (found.renewed && !req.headers.authorization?.startsWith('Bearer ') && reply) {
      setSessionCookie(reply, deps.config, token, new Date(found.session.expiresAt));
    }
  });
  // CSRF: changes made with the session cookie must come from this site (src/http/origin.ts)
  app.addHook('onRequest', csrfGuard(deps.config, SESSION_COOKIE));
  app.decorate('requireRoles', (...roles: Role[]) => async (req: FastifyRequest) => {
    if (!req.staff) throw new HttpError(401, 'unauthorized', 'sign in first');
    if (!req.staff.roles.some((r) => roles.includes(r))) {
      throw new HttpError(403, 'forbidden', `this needs one of the roles: ${roles.join(', ')}`);
    }
  });

  await app.register(opsRoutes, { deps });
  await app.register(authRoutes, { deps, prefix: '/api/v1' });
  await app.register(registryRoutes, { deps, prefix: '/api/v1' });
  await app.register(deviceRoutes, { deps, prefix: '/api/v1' });
  await app.register(readingRoutes, { deps, prefix: '/api/v1' });
  await app.register(staffRoutes, { deps, prefix: '/api/v1' });
  await app.register(alertRoutes, { deps, prefix: '/api/v1' });
  await app.register(visitRoutes, { deps, prefix: '/api/v1' });
  await app.register(notificationRoutes, { deps, prefix: '/api/v1' });
  if (deps.stats) await app.register(statsRoutes, { deps, stats: deps.stats, prefix: '/api/v1' });
  if (deps.accessLog) await app.register(accessLogRoutes, { deps, accessLog: deps.accessLog, prefix: '/api/v1' });
  if (deps.roster) await app.register(rosterRoutes, { deps, roster: deps.roster, prefix: '/api/v1' });
  if (deps.drills) await app.register(drillRoutes, { deps, drills: deps.drills, prefix: '/api/v1' });
  if (deps.supplies) await app.register(supplyRoutes, { deps, supplies: deps.supplies, prefix: '/api/v1' });
  if (deps.twilio) await app.register(twilioWebhookRoutes, { deps, twilio: deps.twilio });
  await app.register(brokerAuthRoutes, { deps, prefix: '/api/v1/broker' }); // external brokers' auth hooks
  if (deps.consoleHub)
    await app.register(wsRoutes, {
      deps,
      hub: deps.consoleHub,
      originAllowed: (req) => originAllowed(req, deps.config),
    });
  if (deps.consoleDir) await app.register(consoleRoutes, { dir: deps.consoleDir });
  // the type provider only matters while routes are declared; callers need the plain instance
  return app as unknown as FastifyInstance;
}

/** The session token: a bearer token (scripts, the phone app) or the console's cookie. */
export function sessionToken(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization;
  return header?.startsWith('Bearer ') ? header.slice(7).trim() : req.cookies[SESSION_COOKIE];
}

/** Narrowed request scope after `authenticate`. */
export function scopeOf(req: FastifyRequest): Scope {
  if (!req.scope) throw new HttpError(401, 'unauthorized', 'sign in first');
  return req.scope;
}

export function inScope(scope: Scope, gridId: string | undefined): boolean {
  return scope.all || (gridId !== undefined && scope.gridIds.includes(gridId));
}
