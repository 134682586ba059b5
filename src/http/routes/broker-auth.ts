/**
 * Authentication and ACL hooks for an external broker (mqtt.url), so that it checks devices against the registry
 * with the same rules as the embedded broker (src/broker/device-acl.ts). docs/brokers.md shows the broker configs.
 *
 * - EMQX 5: `POST /api/v1/broker/emqx/authn` (HTTP authenticator) and `POST /api/v1/broker/emqx/authz` (HTTP
 *   authorizer), JSON bodies made from EMQX placeholders, answered `200 {"result": …}` as EMQX 5 expects.
 * - mosquitto-go-auth, HTTP backend: `POST /api/v1/broker/go-auth/user | superuser | acl`, JSON or form bodies
 *   (`http_params_mode`). The answer is 200 `{"ok":true}` or 403 `{"ok":false,"error":…}`, which satisfies both the
 *   default `http_response_mode status` and `json`; `?response=text` answers `ok` / a reason as plain text for
 *   `http_response_mode text`.
 *
 * Every request must carry mqtt.authHookToken (MQTT_AUTH_HOOK_TOKEN) as `Authorization: Bearer <token>`; the go-auth
 * HTTP backend cannot send extra headers, so its routes also take the token as a path segment,
 * `/api/v1/broker/go-auth/<token>/user`, which only ever travels between the broker and this service (these routes
 * log at warn level at most, and their request serializer masks the token, so the path never reaches the log).
 * Without the token configured nothing is served: 404. Wrong device secrets are throttled with
 * mqtt.authFailuresPerMinute per peer address (EMQX's `peerhost`), or, when the broker does not say (go-auth), per
 * calling broker and username, so that one device's wrong secrets lock out neither the rest of the fleet nor
 * GridWatch. The service account is never throttled: it is checked against its own configured password.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest, LogLevel } from 'fastify';
import { type Static, Type } from 'typebox';
import { AuthThrottle } from '../../broker/auth-throttle.ts';
import {
  type Access,
  aclAllows,
  DeviceAuthenticator,
  isServiceUser,
  type Principal,
  sameSecret,
  serviceCredentialsValid,
} from '../../broker/device-acl.ts';
import { verifyDeviceSecret } from '../../registry/secrets.ts';
import type { HttpDeps } from '../app.ts';
import { ErrorBody } from '../schemas.ts';

// Bounded strings: a broker forwards what a client sent, and MQTT allows 64 KiB usernames and topics.
const Str = (description: string, maxLength = 1024) => Type.String({ maxLength, description });
/** An EMQX placeholder as written in its config, e.g. `${username}` (built up so that it is not a template). */
const ph = (name: string) => `$${'{'}${name}}`;

export const EmqxAuthnBody = Type.Object(
  {
    username: Type.Optional(Str(ph('username'), 256)),
    password: Type.Optional(Str(ph('password'), 1024)),
    clientid: Type.Optional(Str(ph('clientid'), 256)),
    peerhost: Type.Optional(Str(`${ph('peerhost')}: the client’s address, for the login throttle`, 64)),
  },
  { description: 'EMQX 5 HTTP authenticator body (placeholders rendered by EMQX)' },
);
export const EmqxAuthnReply = Type.Object({
  result: Type.Enum(['allow', 'deny', 'ignore']),
  is_superuser: Type.Boolean({ description: 'always false: nobody bypasses the ACL' }),
});

export const EmqxAuthzBody = Type.Object(
  {
    username: Type.Optional(Str(ph('username'), 256)),
    clientid: Type.Optional(Str(ph('clientid'), 256)),
    topic: Str(`${ph('topic')}: the topic, or for a subscription the filter (possibly $share/<group>/…)`, 4096),
    action: Str(`${ph('action')}: publish or subscribe`, 32),
    qos: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 2 }), Str(ph('qos'), 8)])),
    retain: Type.Optional(Type.Union([Type.Boolean(), Str(ph('retain'), 8)])),
  },
  { description: 'EMQX 5 HTTP authorizer body (placeholders rendered by EMQX)' },
);
export const EmqxAuthzReply = Type.Object({ result: Type.Enum(['allow', 'deny']) });

export const GoAuthUserBody = Type.Object(
  {
    username: Type.Optional(Str('username', 256)),
    password: Type.Optional(Str('password', 1024)),
    clientid: Type.Optional(Str('clientid', 256)),
  },
  { description: 'mosquitto-go-auth HTTP backend, user check (JSON, or a form with http_params_mode form)' },
);
export const GoAuthSuperuserBody = Type.Object({ username: Type.Optional(Str('username', 256)) });
export const GoAuthAclBody = Type.Object({
  username: Type.Optional(Str('username', 256)),
  clientid: Type.Optional(Str('clientid', 256)),
  topic: Str('the topic, or for acc 4 the subscription filter', 4096),
  acc: Type.Integer({ minimum: 1, maximum: 4, description: '1 read, 2 write, 3 readwrite, 4 subscribe' }),
});
export const GoAuthReply = Type.Object({ ok: Type.Boolean(), error: Type.Optional(Type.String()) });
const GoAuthQuery = Type.Object({
  response: Type.Optional(
    Type.Enum(['status', 'json', 'text'], {
      description: 'text: plain `ok` for http_response_mode text; otherwise JSON with the status code',
    }),
  ),
});
const TokenParams = Type.Object({ token: Type.String({ maxLength: 512 }) });

/** Which accesses go-auth's `acc` asks for (1 read, 2 write, 3 readwrite, 4 subscribe). */
const ACC: Record<number, Access[]> = { 1: ['read'], 2: ['publish'], 3: ['read', 'publish'], 4: ['subscribe'] };

export const brokerAuthRoutes: FastifyPluginAsyncTypebox<{ deps: HttpDeps }> = async (app, { deps }) => {
  const token = deps.config.mqtt.authHookToken;
  if (!token) return; // not configured: every path here falls through to the 404 handler
  const mqttCfg = deps.config.mqtt;
  const base = mqttCfg.baseTopic;
  const account = { username: mqttCfg.username, password: mqttCfg.password };
  const auth = new DeviceAuthenticator({ directory: deps.registry.devices, verifySecret: verifyDeviceSecret });
  const throttle = new AuthThrottle({ maxFailures: mqttCfg.authFailuresPerMinute, windowMs: 60_000 });
  const lastWarn = new Map<string, number>();
  const warnLimited = (req: FastifyRequest, key: string, fields: Record<string, unknown>, msg: string) => {
    const now = Date.now();
    const last = lastWarn.get(key);
    if (last !== undefined && now - last < 60_000) return req.log.debug(fields, msg);
    if (lastWarn.size >= 10_000) lastWarn.clear();
    lastWarn.set(key, now);
    req.log.warn(fields, msg);
  };

  // go-auth's http_params_mode form posts a regular HTML form
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 16_384 },
    (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
  );

  app.addHook('onRequest', async (req, reply) => {
    const header = req.headers.authorization;
    const given = header?.startsWith('Bearer ')
      ? header.slice(7).trim()
      : (req.params as { token?: string } | undefined)?.token;
    if (given !== undefined && sameSecret(given, token)) return;
    warnLimited(req, 'token', { event: 'broker_hook_refused', ip: req.ip }, 'broker hook: missing or wrong token');
    await reply.code(401).send({
      error: 'unauthorized',
      message: 'the broker hooks need the shared token (MQTT_AUTH_HOOK_TOKEN) as Authorization: Bearer <token>',
    });
  });

  /**
   * A device or the service account logging in. Devices are throttled per `budget` (a peer address, or a calling
   * broker and username); the service account never is: its password is the one configured here, not a registry
   * secret worth guessing through the hook, and throttling it would let a few bad device logins behind the same
   * broker lock GridWatch itself out.
   */
  const login = async (
    req: FastifyRequest,
    creds: { username?: string; password?: string; clientid?: string },
    budget: string,
  ): Promise<{ ok: boolean; reason?: string }> => {
    if (isServiceUser(account, creds.username)) {
      if (serviceCredentialsValid(account, creds.username, creds.password)) return { ok: true };
      warnLimited(req, 'service|auth', { reason: 'bad_service_password' }, 'broker hook: connection refused');
      return { ok: false, reason: 'bad_service_password' };
    }
    if (throttle.blocked(budget)) {
      warnLimited(req, `throttled|${budget}`, { budget }, 'broker hook: login throttled');
      return { ok: false, reason: 'throttled' };
    }
    const result = await auth.authenticate(creds.clientid, creds.username, creds.password);
    if (result.ok) return { ok: true };
    throttle.failed(budget);
    const deviceId = creds.username ?? creds.clientid;
    warnLimited(req, `${deviceId}|auth`, { deviceId, reason: result.reason }, 'broker hook: connection refused');
    return { ok: false, reason: result.reason };
  };

  /** Who a connected client is, as far as the ACL goes; undefined: nobody it would grant anything. */
  const principalOf = (username: string | undefined, clientid: string | undefined): Principal | undefined => {
    if (!username) return undefined;
    if (isServiceUser(account, username)) return { kind: 'service' };
    // a device is only ever itself: its client id is its id (authentication made sure), and it is still enabled
    if (clientid !== undefined && clientid !== username) return undefined;
    const record = deps.registry.devices.get(username);
    return record && !record.disabled ? { kind: 'device', id: record.id } : undefined;
  };

  const check = (req: FastifyRequest, who: Principal | undefined, accesses: Access[], topic: string, name?: string) => {
    const ok = who !== undefined && accesses.every((a) => aclAllows(base, who, a, topic));
    if (!ok)
      warnLimited(
        req,
        `${name}|${accesses.join()}`,
        { username: name, topic, access: accesses },
        'broker hook: denied',
      );
    return ok;
  };

  // No per-request info lines (one per connect and publish check; the go-auth path holds the token), but never more
  // verbose than the service's own level: a route's logLevel replaces it. At debug and trace too the level is warn
  // (isLevelEnabled('info') holds there), so Fastify's request lines with req.url are never written for these routes.
  const logLevel = (deps.log.isLevelEnabled('info') ? 'warn' : deps.log.level) as LogLevel;
  const hook = { logLevel, bodyLimit: 16_384 };
  // and should a line with the request be written anyway (an error), the token in the path is masked
  const maskedReq = (req: FastifyRequest) => ({
    method: req.method,
    url: req.url.replace(/\/go-auth\/[^/?]+\//, '/go-auth/[redacted]/'),
  });
  const tokenHook = { ...hook, logSerializers: { req: maskedReq } };
  const tags = ['broker'];
  const security = [{ bearer: [] }];

  // --- EMQX 5 ------------------------------------------------------------------------------------------------------

  app.post(
    '/emqx/authn',
    {
      ...hook,
      schema: {
        tags,
        security,
        summary: 'EMQX 5 HTTP authenticator: a device (id, secret, client id = id) or the service account',
        body: EmqxAuthnBody,
        response: { 200: EmqxAuthnReply, 401: ErrorBody },
      },
    },
    async (req) => {
      const { ok } = await login(req, req.body, `peer:${req.body.peerhost || req.ip}`);
      return { result: ok ? ('allow' as const) : ('deny' as const), is_superuser: false };
    },
  );

  app.post(
    '/emqx/authz',
    {
      ...hook,
      schema: {
        tags,
        security,
        summary: 'EMQX 5 HTTP authorizer: publish and subscribe by the device ACL',
        body: EmqxAuthzBody,
        response: { 200: EmqxAuthzReply, 401: ErrorBody },
      },
    },
    async (req) => {
      const { username, clientid, topic, action } = req.body;
      const access: Access | undefined =
        action === 'publish' ? 'publish' : action === 'subscribe' ? 'subscribe' : undefined;
      const ok = access !== undefined && check(req, principalOf(username, clientid), [access], topic, username);
      return { result: ok ? ('allow' as const) : ('deny' as const) };
    },
  );

  // --- mosquitto-go-auth ---------------------------------------------------------------------------------------

  const goAuthAnswer = (req: FastifyRequest, reply: FastifyReply, ok: boolean, error: string) => {
    const text = (req.query as Static<typeof GoAuthQuery>).response === 'text';
    reply.code(ok ? 200 : 403);
    if (text) return reply.type('text/plain').send(ok ? 'ok' : error);
    return reply.send(ok ? { ok: true } : { ok: false, error });
  };

  for (const prefix of ['/go-auth', '/go-auth/:token']) {
    const inPath = prefix.includes(':token');
    const params = inPath ? { params: TokenParams, hide: true } : {};
    const opts = inPath ? tokenHook : hook;
    const answers = { 200: GoAuthReply, 401: ErrorBody, 403: GoAuthReply };
    app.post(
      `${prefix}/user`,
      {
        ...opts,
        schema: {
          tags,
          security,
          summary: 'mosquitto-go-auth HTTP backend: user check',
          body: GoAuthUserBody,
          querystring: GoAuthQuery,
          response: answers,
          ...params,
        },
      },
      async (req, reply) => {
        // go-auth does not pass the client's address: a budget per calling broker and username, so that one device's
        // wrong secrets (or a guesser trying one id) cannot lock out the others behind the same broker
        const { ok, reason } = await login(req, req.body, `caller:${req.ip}|user:${req.body.username ?? ''}`);
        return goAuthAnswer(req, reply, ok, reason === 'throttled' ? 'too many failed logins' : 'not authorised');
      },
    );
    app.post(
      `${prefix}/superuser`,
      {
        ...opts,
        schema: {
          tags,
          security,
          summary: 'mosquitto-go-auth HTTP backend: superuser check (there are none)',
          body: GoAuthSuperuserBody,
          querystring: GoAuthQuery,
          response: answers,
          ...params,
        },
      },
      async (req, reply) => goAuthAnswer(req, reply, false, 'no superusers'),
    );
    app.post(
      `${prefix}/acl`,
      {
        ...opts,
        schema: {
          tags,
          security,
          summary: 'mosquitto-go-auth HTTP backend: ACL check',
          body: GoAuthAclBody,
          querystring: GoAuthQuery,
          response: answers,
          ...params,
        },
      },
      async (req, reply) => {
        const { username, clientid, topic, acc } = req.body;
        const ok = check(req, principalOf(username, clientid), ACC[acc] ?? [], topic, username);
        return goAuthAnswer(req, reply, ok, 'not allowed');
      },
    );
  }
};
