/**
 * Loads the configuration: config/default.yaml, then the deployment file named by GRIDWATCH_CONFIG, then
 * environment variables. Validated once against ConfigSchema; an invalid config throws a ConfigError that lists
 * every problem with where it came from (file or variable). Secrets come only from the environment or from
 * `<VAR>_FILE` files.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse as parseYaml } from 'yaml';
import { type Config, ConfigSchema } from './schema.ts';

// ajv-formats is CommonJS; its default export arrives wrapped under ESM.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  - ${problems.join('\n  - ')}`,
    );
  }
}

/** Well-known environment variables and where they land. `secret` ones may also be given as `<VAR>_FILE`. */
export const ENV_VARS: ReadonlyArray<{ name: string; path: string; secret?: boolean; list?: boolean }> = [
  { name: 'GRIDWATCH_DATA_DIR', path: 'dataDir' },
  { name: 'LOG_LEVEL', path: 'log.level' },
  { name: 'HTTP_HOST', path: 'http.host' },
  { name: 'HTTP_PORT', path: 'http.port' },
  { name: 'HTTP_PUBLIC_ORIGINS', path: 'http.publicOrigins', list: true },
  { name: 'MQTT_HOST', path: 'mqtt.host' },
  { name: 'MQTT_PORT', path: 'mqtt.port' },
  { name: 'MQTT_WS_PORT', path: 'mqtt.wsPort' },
  { name: 'MQTT_TLS_PORT', path: 'mqtt.tlsPort' },
  { name: 'MQTT_TLS_CERT_FILE', path: 'mqtt.tlsCertFile' },
  { name: 'MQTT_TLS_KEY_FILE', path: 'mqtt.tlsKeyFile' },
  { name: 'MQTT_CLUSTER', path: 'mqtt.cluster.enabled' },
  { name: 'MQTT_URL', path: 'mqtt.url' },
  { name: 'MQTT_USERNAME', path: 'mqtt.username' },
  { name: 'MQTT_SHARED_GROUP', path: 'mqtt.sharedGroup' },
  { name: 'GRIDWATCH_RULES_PLACEMENT', path: 'placement.rules' },
  { name: 'MQTT_PASSWORD', path: 'mqtt.password', secret: true },
  { name: 'MQTT_AUTH_HOOK_TOKEN', path: 'mqtt.authHookToken', secret: true },
  { name: 'REDIS_URL', path: 'redis.url', secret: true },
  { name: 'REDIS_SENTINELS', path: 'redis.sentinels', list: true },
  { name: 'REDIS_SENTINEL_NAME', path: 'redis.sentinelName' },
  { name: 'REDIS_PASSWORD', path: 'redis.password', secret: true },
  { name: 'REDIS_SENTINEL_PASSWORD', path: 'redis.sentinelPassword', secret: true },
  { name: 'DATABASE_URL', path: 'database.url', secret: true },
  { name: 'INFLUX_URL', path: 'timeseries.influx.url' },
  { name: 'INFLUX_TOKEN', path: 'timeseries.influx.token', secret: true },
  { name: 'INFLUX_ORG', path: 'timeseries.influx.org' },
  { name: 'INFLUX_BUCKET', path: 'timeseries.influx.bucket' },
  { name: 'GRIDWATCH_ADMIN_PASSWORD', path: 'auth.adminPassword', secret: true },
  { name: 'TWILIO_ACCOUNT_SID', path: 'sms.twilio.accountSid' },
  { name: 'TWILIO_AUTH_TOKEN', path: 'sms.twilio.authToken', secret: true },
  { name: 'TWILIO_FROM', path: 'sms.twilio.from' },
  { name: 'TWILIO_MESSAGING_SERVICE_SID', path: 'sms.twilio.messagingServiceSid' },
  { name: 'TWILIO_PUBLIC_URL', path: 'sms.twilio.publicUrl' },
  { name: 'TWILIO_API_BASE_URL', path: 'sms.twilio.apiBaseUrl' },
  { name: 'GRIDWATCH_ROLE', path: 'role' },
  { name: 'GRIDWATCH_DEMO', path: 'demo.enabled' },
  { name: 'GRIDWATCH_DEMO_SPEED', path: 'demo.speed' },
];

/** Dotted paths of secret settings, read from the schema's `secret: true` marks. */
export const SECRET_PATHS: readonly string[] = collectSecretPaths(ConfigSchema as unknown as SchemaNode, '');

interface SchemaNode {
  type?: string;
  secret?: boolean;
  properties?: Record<string, SchemaNode>;
}

function collectSecretPaths(node: SchemaNode, prefix: string): string[] {
  if (node.secret) return [prefix];
  if (!node.properties) return [];
  return Object.entries(node.properties).flatMap(([k, child]) =>
    collectSecretPaths(child, prefix ? `${prefix}.${k}` : k),
  );
}

type Tree = Record<string, unknown>;

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** project root (where config/default.yaml lives); default: the current directory */
  cwd?: string;
}

const ajv = new Ajv({ allErrors: true, coerceTypes: true, strict: false });
addFormats(ajv);
const validate = ajv.compile<Config>(ConfigSchema);

export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const problems: string[] = [];
  const sources = new Map<string, string>();
  const config: Tree = {};

  const defaultsFile = path.join(cwd, 'config', 'default.yaml');
  mergeFile(config, defaultsFile, sources, problems);

  const deploymentFile = env.GRIDWATCH_CONFIG;
  if (deploymentFile) {
    const file = path.resolve(cwd, deploymentFile);
    // A deployment is not a demo: simulated devices stay off unless the file turns them on.
    setPath(config, 'demo.enabled', false);
    sources.set('demo.enabled', `${file} (deployment default)`);
    mergeFile(config, file, sources, problems);
  }

  for (const v of ENV_VARS) {
    const fromFile = v.secret ? env[`${v.name}_FILE`] : undefined;
    if (fromFile) {
      try {
        setPath(config, v.path, readFileSync(path.resolve(cwd, fromFile), 'utf8').trim());
        sources.set(v.path, `${v.name}_FILE (${fromFile})`);
      } catch (e) {
        problems.push(`${v.name}_FILE: cannot read ${fromFile}: ${(e as Error).message}`);
      }
    } else if (env[v.name] !== undefined && env[v.name] !== '') {
      // a list variable is comma-separated: HTTP_PUBLIC_ORIGINS=https://a.example,https://b.example
      const list = (text: string) => text.split(',').flatMap((x) => (x.trim() ? [x.trim()] : []));
      setPath(config, v.path, v.list ? list(env[v.name]!) : env[v.name]);
      sources.set(v.path, `environment ${v.name}`);
    }
  }
  // INFLUX_URL alone switches the time-series store to InfluxDB: the common way to deploy it.
  if (env.INFLUX_URL && sources.get('timeseries.driver') === defaultsFile) {
    setPath(config, 'timeseries.driver', 'influx');
    sources.set('timeseries.driver', 'environment INFLUX_URL');
  }
  // Generic overrides for anything else: GRIDWATCH__timeseries__sqlite__retentionDays=30
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('GRIDWATCH__') || value === undefined) continue;
    const p = name.slice('GRIDWATCH__'.length).split('__').join('.');
    if (SECRET_PATHS.includes(p)) {
      problems.push(
        `${name}: ${p} is a secret; set it with its own variable (${secretVarOf(p)}) or ${secretVarOf(p)}_FILE`,
      );
      continue;
    }
    setPath(config, p, value);
    sources.set(p, `environment ${name}`);
  }

  if (!validate(config)) {
    for (const err of validate.errors ?? []) problems.push(describe(err, sources));
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const cfg = config as unknown as Config;
  // checks across settings, all reported together
  if (cfg.timeseries.driver === 'influx' && (!cfg.timeseries.influx.url || !cfg.timeseries.influx.token)) {
    problems.push(
      `timeseries.driver is influx (${sources.get('timeseries.driver') ?? 'config'}) but INFLUX_URL and INFLUX_TOKEN are not both set`,
    );
  }
  if (Boolean(cfg.mqtt.tlsCertFile) !== Boolean(cfg.mqtt.tlsKeyFile)) {
    problems.push('mqtt.tlsCertFile and mqtt.tlsKeyFile must be set together (MQTT_TLS_CERT_FILE, MQTT_TLS_KEY_FILE)');
  }
  if (cfg.mqtt.cluster?.enabled) {
    const from = sources.get('mqtt.cluster.enabled') ?? 'config';
    // the nodes meet in Redis: a private redis-server lives on one machine and dies with its node
    if (!cfg.redis.url && !cfg.redis.sentinels)
      problems.push(
        `mqtt.cluster.enabled (${from}): the nodes of a cluster share one Redis; set REDIS_URL (a private redis-server cannot be shared)`,
      );
    if (cfg.mqtt.url)
      problems.push(
        `mqtt.cluster.enabled (${from}): clusters the embedded broker; unset it with an external broker (MQTT_URL)`,
      );
  }
  // TWILIO_ACCOUNT_SID alone chooses Twilio, as INFLUX_URL chooses InfluxDB
  if (env.TWILIO_ACCOUNT_SID && sources.get('sms.transport') === defaultsFile) cfg.sms.transport = 'twilio';
  if (cfg.sms.transport === 'twilio') {
    const t = cfg.sms.twilio;
    if (!t.accountSid || !t.authToken)
      problems.push('sms.transport is twilio but TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not both set');
    if (!t.from && !t.messagingServiceSid)
      problems.push('sms.transport is twilio: set TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID');
  }
  try {
    new Intl.DateTimeFormat('en', { timeZone: cfg.timezone });
  } catch {
    problems.push(
      `timezone: "${cfg.timezone}" is not an IANA time zone such as Asia/Shanghai (${sources.get('timezone') ?? 'config'})`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  cfg.dataDir = path.resolve(cwd, cfg.dataDir);
  return cfg;
}

function secretVarOf(p: string): string {
  return ENV_VARS.find((v) => v.path === p)?.name ?? p;
}

function mergeFile(into: Tree, file: string, sources: Map<string, string>, problems: string[]) {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    problems.push(`${file}: cannot read: ${(e as Error).message}`);
    return;
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (e) {
    problems.push(`${file}: not valid YAML or JSON: ${(e as Error).message.split('\n')[0]}`);
    return;
  }
  if (data === null || data === undefined) return;
  if (typeof data !== 'object' || Array.isArray(data)) {
    problems.push(`${file}: must hold a mapping of settings`);
    return;
  }
  for (const [p, value] of leaves(data as Tree, '')) {
    if (SECRET_PATHS.includes(p)) {
      // Config files get copied, committed and shown around; secrets must not live in them.
      problems.push(`${file}: ${p} is a secret and may only come from ${secretVarOf(p)} or ${secretVarOf(p)}_FILE`);
      continue;
    }
    setPath(into, p, value);
    sources.set(p, file);
  }
}

function* leaves(tree: Tree, prefix: string): Generator<[string, unknown]> {
  for (const [k, v] of Object.entries(tree)) {
    const p = prefix ? `${prefix}.${k}` : k;
    // an empty mapping (e.g. `households: {}`) is a value of its own
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0)
      yield* leaves(v as Tree, p);
    else yield [p, v];
  }
}

function setPath(tree: Tree, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let node = tree;
  for (const k of keys.slice(0, -1)) {
    const next = node[k];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) node[k] = {};
    node = node[k] as Tree;
  }
  node[keys[keys.length - 1]!] = value;
}

function describe(err: ErrorObject, sources: Map<string, string>): string {
  const p = err.instancePath.replace(/^\//, '').split('/').filter(Boolean).join('.');
  if (err.keyword === 'additionalProperties') {
    const extra = (err.params as { additionalProperty: string }).additionalProperty;
    const full = p ? `${p}.${extra}` : extra;
    return `${full}: unknown setting (${sourceOf(full, sources)})`;
  }
  if (err.keyword === 'required') {
    const missing = (err.params as { missingProperty: string }).missingProperty;
    const full = p ? `${p}.${missing}` : missing;
    return `${full}: missing`;
  }
  const allowed =
    err.keyword === 'enum' ? `: ${(err.params as { allowedValues: unknown[] }).allowedValues.join(', ')}` : '';
  return `${p || '(root)'}: ${err.message ?? err.keyword}${allowed} (${sourceOf(p, sources)})`;
}

function sourceOf(p: string, sources: Map<string, string>): string {
  for (let q = p; q; q = q.includes('.') ? q.slice(0, q.lastIndexOf('.')) : '') {
    const s = sources.get(q);
    if (s) return `from ${s}`;
  }
  return 'from config/default.yaml';
}

/** The config with secrets replaced, for a start-up log line. */
export function redactedConfig(cfg: Config): unknown {
  const copy = structuredClone(cfg) as unknown as Tree;
  for (const p of SECRET_PATHS) {
    const keys = p.split('.');
    let node: Tree | undefined = copy;
    for (const k of keys.slice(0, -1)) node = node?.[k] as Tree | undefined;
    const last = keys[keys.length - 1]!;
    if (node && node[last] !== undefined) node[last] = '[secret]';
  }
  return copy;
}
