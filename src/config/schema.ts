/**
 * One schema for every setting. Defaults live in config/default.yaml; a deployment file (GRIDWATCH_CONFIG) and
 * environment variables override them (see src/config/load.ts). Fields marked secret may come only from the
 * environment or from files (`<VAR>_FILE`), never from a config file, and are never logged.
 */
import { type Static, Type } from 'typebox';
import { SmsCapsSchema } from '../notify/caps.ts';
import { EscalationConfigSchema } from '../notify/policy.ts';
import { RulesConfigSchema } from '../rules/config.ts';

const Port = Type.Integer({ minimum: 0, maximum: 65535 });
const Secret = (description: string) => Type.Optional(Type.String({ minLength: 1, description, secret: true }));

export const ConfigSchema = Type.Object(
  {
    /** Where the embedded stores keep their files (SQLite, Redis AOF, device secrets of the demo). */
    dataDir: Type.String({ minLength: 1 }),
    /** Graceful stop budget after SIGTERM. */
    shutdownTimeoutMs: Type.Integer({ minimum: 100, maximum: 120_000 }),
    /**
     * all: the whole system in one process (the default); worker: only the SMS-sending workers, scaled out next to
     * an `all` node that shares its Redis and database (`npm run worker`, GRIDWATCH_ROLE=worker).
     */
    role: Type.Enum(['all', 'worker']),
    log: Type.Object(
      {
        level: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
        pretty: Type.Boolean(),
      },
      { additionalProperties: false },
    ),
    http: Type.Object(
      {
        host: Type.String(),
        port: Port,
        trustProxy: Type.Boolean(),
        /**
         * Origins the console is served from besides the request's own Host, e.g. https://gridwatch.example.org
         * behind a proxy that rewrites Host (HTTP_PUBLIC_ORIGINS, comma-separated). Cookie-authenticated changes
         * must come from one of them (CSRF protection, src/http/origin.ts).
         */
        publicOrigins: Type.Optional(
          Type.Array(Type.String({ pattern: '^https?://[^/\\s?#]+/?$', description: 'scheme://host[:port]' }), {
            maxItems: 50,
          }),
        ),
      },
      { additionalProperties: false },
    ),
    mqtt: Type.Object(
      {
        baseTopic: Type.String({ pattern: '^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$' }),
        host: Type.String(),
        port: Port,
        /** MQTT over WebSocket (path /mqtt); 0 disables it. */
        wsPort: Port,
        /** MQTT over TLS, only when certFile and keyFile are set. */
        tlsPort: Port,
        tlsCertFile: Type.Optional(Type.String({ minLength: 1 })),
        tlsKeyFile: Type.Optional(Type.String({ minLength: 1 })),
        /** External broker (MQTT_URL): when set, no embedded broker runs and the service subscribes to it. */
        url: Type.Optional(Type.String({ pattern: '^(mqtt|mqtts|ws|wss|tcp)://' })),
        sharedGroup: Type.String({ minLength: 1 }),
        username: Type.Optional(Type.String()),
        password: Secret('password for the external broker (MQTT_PASSWORD)'),
        /**
         * MQTT_AUTH_HOOK_TOKEN: the shared secret an external broker sends (`Authorization: Bearer <token>`) to the
         * authentication and ACL hooks under /api/v1/broker/ (src/http/routes/broker-auth.ts). Unset: no hooks.
         */
        authHookToken: Type.Optional(
          Type.String({
            minLength: 16,
            pattern: '^[\\x21-\\x7e]+$',
            description: 'shared secret for the broker auth hooks (MQTT_AUTH_HOOK_TOKEN), 16+ printable characters',
            secret: true,
          }),
        ),
        maxPacketSize: Type.Integer({ minimum: 256, maximum: 268_435_455 }),
        concurrency: Type.Integer({ minimum: 1, maximum: 10_000 }),
        drainTimeoutMs: Type.Integer({ minimum: 100, maximum: 600_000 }),
        /**
         * Failed device logins one source address may make per minute before it is refused for the rest of that
         * minute (wrong secrets are throttled per address, never per device id). Behind a TCP balancer without the
         * PROXY protocol every device shares the balancer's address: raise it there.
         */
        authFailuresPerMinute: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
        /** After a start, devices are not marked offline by timeout before this grace period ends. */
        startupGraceS: Type.Integer({ minimum: 0, maximum: 86_400 }),
        /** How often last-seen timers are checked. */
        statusCheckIntervalS: Type.Integer({ minimum: 1, maximum: 3_600 }),
        /**
         * Clustered embedded broker (MQTT_CLUSTER): several nodes behind a TCP balancer share one Redis (REDIS_URL)
         * for MQTT fan-out (mqemitter-redis) and sessions, retained messages and QoS 1 queues
         * (aedes-persistence-redis). Optional in the type so hand-built test configs need not name it.
         */
        cluster: Type.Optional(
          Type.Object(
            {
              enabled: Type.Boolean(),
              /** How long a QoS 1 message waits in Redis for an offline persistent session; bounds Redis memory. */
              offlineMessageTtlS: Type.Integer({ minimum: 1, maximum: 2_592_000 }),
            },
            { additionalProperties: false },
          ),
        ),
      },
      { additionalProperties: false },
    ),
    ingest: Type.Object(
      {
        /** Largest accepted payload, bytes (larger: rejected as too_large). */
        maxPayloadBytes: Type.Integer({ minimum: 64, maximum: 1_048_576 }),
        /** Readings older than this (device time) are rejected as backdated. */
        maxBackdateS: Type.Integer({ minimum: 0 }),
        /** Readings further in the future than this are rejected as future (clock skew allowance). */
        maxFutureS: Type.Integer({ minimum: 0 }),
        /** How long an event id is remembered for duplicate suppression. */
        dedupeWindowS: Type.Integer({ minimum: 1 }),
        /** At most one warn-level log line per device and reason in this interval. */
        rejectLogIntervalMs: Type.Integer({ minimum: 0 }),
        /**
         * Per-device message limit (ingest/rate-limit.ts): over it, messages are rejected as `rate_limited`.
         * `perSecond: 0` turns it off (benchmarks that drive hundreds of messages a second through one client).
         */
        rateLimit: Type.Object(
          {
            perSecond: Type.Number({ minimum: 0, maximum: 1_000_000 }),
            burst: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
          },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
    redis: Type.Object(
      {
        /** REDIS_URL; when unset, a private redis-server is spawned under dataDir. */
        url: Secret('Redis URL, may carry a password (REDIS_URL)'),
        /**
         * Redis Sentinel (REDIS_SENTINELS=host:port,…): the primary named `sentinelName` is asked of the sentinels and
         * followed through a failover. Takes the place of REDIS_URL; the password is REDIS_PASSWORD.
         */
        sentinels: Type.Optional(
          Type.Array(
            Type.String({
              pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[^\\s:/\\[\\]]+):[0-9]{1,5}$',
              description: 'host:port or [ipv6]:port',
            }),
            {
              minItems: 1,
              maxItems: 16,
            },
          ),
        ),
        sentinelName: Type.String({ minLength: 1 }),
        password: Secret('password of the Redis primary and replicas with Sentinel (REDIS_PASSWORD)'),
        sentinelPassword: Secret('password of the sentinels themselves (REDIS_SENTINEL_PASSWORD)'),
        binary: Type.String({ minLength: 1 }),
        privatePort: Port,
      },
      { additionalProperties: false },
    ),
    database: Type.Object(
      {
        /** DATABASE_URL (postgres://…); when unset, SQLite at sqliteFile (relative to dataDir). */
        url: Secret('PostgreSQL URL (DATABASE_URL)'),
        sqliteFile: Type.String({ minLength: 1 }),
      },
      { additionalProperties: false },
    ),
    timeseries: Type.Object(
      {
        driver: Type.Enum(['sqlite', 'influx']),
        sqlite: Type.Object(
          {
            file: Type.String({ minLength: 1 }),
            retentionDays: Type.Integer({ minimum: 1, maximum: 3650 }),
            batchSize: Type.Integer({ minimum: 1, maximum: 100_000 }),
            flushIntervalMs: Type.Integer({ minimum: 10, maximum: 60_000 }),
          },
          { additionalProperties: false },
        ),
        influx: Type.Object(
          {
            url: Type.Optional(Type.String({ pattern: '^https?://' })),
            token: Secret('InfluxDB API token (INFLUX_TOKEN)'),
            org: Type.String({ minLength: 1 }),
            bucket: Type.String({ minLength: 1 }),
            batchSize: Type.Integer({ minimum: 1, maximum: 100_000 }),
            flushIntervalMs: Type.Integer({ minimum: 10, maximum: 60_000 }),
            maxBufferLines: Type.Integer({ minimum: 100, maximum: 10_000_000 }),
            maxRetries: Type.Integer({ minimum: 0, maximum: 1000 }),
            maxRetryDelayMs: Type.Integer({ minimum: 100, maximum: 600_000 }),
          },
          { additionalProperties: false },
        ),
        /**
         * Points beyond an adapter's memory buffer while the store is down go to disk (src/timeseries/spill.ts) and
         * are written back, oldest first, once it is up again; beyond maxBytes they are dropped and counted.
         */
        spill: Type.Object(
          {
            enabled: Type.Boolean(),
            /** relative to dataDir */
            dir: Type.String({ minLength: 1 }),
            maxBytes: Type.Integer({ minimum: 1_048_576, maximum: 1_099_511_627_776 }),
            /** a power cut loses at most this much of the spill (a killed process loses nothing) */
            fsyncIntervalMs: Type.Integer({ minimum: 10, maximum: 60_000 }),
            /** drain rate once the store is back, so live writes keep going */
            drainPointsPerSecond: Type.Integer({ minimum: 100, maximum: 10_000_000 }),
          },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
    auth: Type.Object(
      {
        /** GRIDWATCH_ADMIN_PASSWORD: the bootstrap admin's password (user `admin`). */
        adminPassword: Secret('bootstrap admin password (GRIDWATCH_ADMIN_PASSWORD)'),
        /** A desk session lasts a working day. */
        sessionTtlHours: Type.Number({ minimum: 0.1, maximum: 24 * 30 }),
        /**
         * A phone session (login with device: phone) lasts this long after its last use: a grid worker's phone
         * stays signed in so that a 3 a.m. alert is acknowledged in two taps. Revocable in the console.
         */
        phoneSessionDays: Type.Number({ minimum: 1, maximum: 365 }),
        cookieSecure: Type.Boolean(),
        loginRateLimitMax: Type.Integer({ minimum: 1 }),
        loginRateLimitWindowMs: Type.Integer({ minimum: 1000 }),
      },
      { additionalProperties: false },
    ),
    registry: Type.Object(
      {
        /** Seed file loaded into an empty registry at first start (path relative to the project). */
        seedFile: Type.Optional(Type.String({ minLength: 1 })),
      },
      { additionalProperties: false },
    ),
    /** IANA time zone of the community: rule windows (07:00–22:00, nights, "a day") are in it. */
    timezone: Type.String({ minLength: 1 }),
    rules: RulesConfigSchema,
    /**
     * Where the household rules and the device-status tracker run (docs/deployment.md, "Rules on several nodes").
     * `local`: on this node, fed by its own broker (one node). `shared`: on one owner node at a time (a lease in
     * Redis), fed by every node through a Redis stream. `auto`: shared with an external broker (MQTT_URL) or a
     * clustered embedded broker, else local.
     */
    placement: Type.Object(
      {
        rules: Type.Enum(['auto', 'local', 'shared']),
        /** the owner's lease: a dead owner is replaced after at most this long */
        leaseMs: Type.Integer({ minimum: 500, maximum: 120_000 }),
      },
      { additionalProperties: false },
    ),
    /** Where SMS go: the outbox (embedded default: recorded, nothing leaves the machine) or Twilio. */
    sms: Type.Object(
      {
        transport: Type.Enum(['outbox', 'twilio']),
        /** per-recipient caps and bundling (mainland carriers reject repeats and review bursts) */
        caps: SmsCapsSchema,
        twilio: Type.Object(
          {
            accountSid: Type.Optional(Type.String({ pattern: '^AC[0-9a-fA-F]{32}$' })),
            authToken: Secret('Twilio auth token (TWILIO_AUTH_TOKEN)'),
            from: Type.Optional(Type.String({ pattern: '^\\+[1-9]\\d{7,14}$' })),
            messagingServiceSid: Type.Optional(Type.String({ pattern: '^MG[0-9a-fA-F]{32}$' })),
            /** the public https URL Twilio calls back (webhook signatures are computed over it) */
            publicUrl: Type.Optional(Type.String({ pattern: '^https?://' })),
            timeoutMs: Type.Integer({ minimum: 100, maximum: 60_000 }),
            /** a message still undelivered after this long is dropped by Twilio rather than delivered late */
            validitySeconds: Type.Integer({ minimum: 1, maximum: 36_000 }),
            /** instead of https://api.twilio.com: a regional edge, or a local fake in tests (TWILIO_API_BASE_URL) */
            apiBaseUrl: Type.Optional(Type.String({ pattern: '^https?://' })),
          },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
    /** Who is told about an alert, how, and after how long without an acknowledgement (src/notify/policy.ts). */
    escalation: Type.Object(
      {
        policies: EscalationConfigSchema,
        /** the working-hours digest of `digest` steps (minor, maintenance, supplies, visits), in `timezone` */
        digest: Type.Object(
          {
            /** cron pattern of the digest runs */
            cron: Type.String({ minLength: 9 }),
            /** working hours 'HH:MM': a run outside them sends nothing */
            from: Type.String({ pattern: '^([01]\\d|2[0-3]):[0-5]\\d$' }),
            to: Type.String({ pattern: '^([01]\\d|2[0-3]):[0-5]\\d$|^24:00$' }),
          },
          { additionalProperties: false },
        ),
        workers: Type.Object(
          {
            /** run the SMS-sending workers in this process (false when `worker` nodes do it) */
            inProcess: Type.Boolean(),
            /** a worker that died mid-send loses its job to another worker after this long */
            lockDurationMs: Type.Integer({ minimum: 1000, maximum: 600_000 }),
            stalledIntervalMs: Type.Integer({ minimum: 1000, maximum: 600_000 }),
          },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
    /** Drills (issue 6): scenario files, validated at start like the rest of the configuration. */
    drills: Type.Object(
      {
        /** directory of the scenario files (*.yaml, *.yml, *.json), relative to the project */
        dir: Type.String({ minLength: 1 }),
      },
      { additionalProperties: false },
    ),
    /** Emergency supplies (issue 7): catalogue and depots, validated at start; the periodic stock check. */
    supplies: Type.Object(
      {
        /** items and quotas per reserve level (YAML), relative to the project */
        catalogueFile: Type.String({ minLength: 1 }),
        /** depots, keepers, supplier agreements (YAML), relative to the project; a missing file means no depots */
        depotsFile: Type.String({ minLength: 1 }),
        /** every depot is re-checked this often (expiry and inspection move with the calendar) */
        checkEveryMinutes: Type.Integer({ minimum: 1, maximum: 10_080 }),
        /** an expiring lot raises an `info` alert this many days before its expiry, a `minor` one at minorDays */
        expiringInfoDays: Type.Integer({ minimum: 1, maximum: 3650 }),
        expiringMinorDays: Type.Integer({ minimum: 0, maximum: 3650 }),
        /** the sample keepers and opening stock of depots.yaml `sample`; default: on with demo.enabled */
        sample: Type.Optional(Type.Boolean()),
      },
      { additionalProperties: false },
    ),
    demo: Type.Object(
      {
        /** Simulated devices publish over real MQTT; on in the embedded default, off with a deployment file. */
        enabled: Type.Boolean(),
        /** Time acceleration of the simulated day (1 = real time). */
        speed: Type.Number({ minimum: 0.1, maximum: 10_000 }),
        /** Telemetry interval of simulated devices in simulated seconds. */
        intervalS: Type.Number({ minimum: 1, maximum: 86_400 }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
