import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactedConfig, SECRET_PATHS } from './load.ts';

const root = path.resolve(import.meta.dirname, '../..');

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

function tmpFile(name: string, text: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gw-config-'));
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('loadConfig', () => {
  it('loads the embedded defaults: demo on, SQLite, private Redis', () => {
    const cfg = loadConfig({ env: {}, cwd: root });
    expect(cfg.demo.enabled).toBe(true);
    expect(cfg.timeseries.driver).toBe('sqlite');
    expect(cfg.timeseries.spill).toEqual({
      enabled: true,
      dir: 'spill',
      maxBytes: 512 * 1024 * 1024,
      fsyncIntervalMs: 1000,
      drainPointsPerSecond: 20_000,
    });
    expect(cfg.redis.url).toBeUndefined();
    expect(cfg.database.url).toBeUndefined();
    expect(path.isAbsolute(cfg.dataDir)).toBe(true);
  });

  it('applies a deployment file, then environment variables on top, with types coerced', () => {
    const file = tmpFile('deploy.yaml', 'http:\n  port: 9000\nmqtt:\n  port: 1999\n');
    const cfg = loadConfig({
      env: { GRIDWATCH_CONFIG: file, MQTT_PORT: '2883', GRIDWATCH__timeseries__sqlite__retentionDays: '30' },
      cwd: root,
    });
    expect(cfg.http.port).toBe(9000);
    expect(cfg.mqtt.port).toBe(2883);
    expect(cfg.timeseries.sqlite.retentionDays).toBe(30);
    // a deployment is not a demo unless it says so
    expect(cfg.demo.enabled).toBe(false);
  });

  it('takes secrets from the environment and from *_FILE, and redacts them', () => {
    const tokenFile = tmpFile('token', 's3cr3t-token\n');
    const cfg = loadConfig({
      env: {
        INFLUX_URL: 'http://127.0.0.1:8086',
        INFLUX_TOKEN_FILE: tokenFile,
        GRIDWATCH_ADMIN_PASSWORD: 'correct horse',
      },
      cwd: root,
    });
    expect(cfg.timeseries.driver).toBe('influx');
    expect(cfg.timeseries.influx.token).toBe('s3cr3t-token');
    expect(cfg.auth.adminPassword).toBe('correct horse');
    const shown = JSON.stringify(redactedConfig(cfg));
    expect(shown).not.toContain('s3cr3t-token');
    expect(shown).not.toContain('correct horse');
    expect(SECRET_PATHS).toEqual(
      expect.arrayContaining(['database.url', 'redis.url', 'auth.adminPassword', 'timeseries.influx.token']),
    );
  });

  it('lists every problem with where it came from', () => {
    const file = tmpFile('deploy.yaml', 'http:\n  port: 70000\n  colour: blue\nlog:\n  level: loud\n');
    const problems = problemsOf(() =>
      loadConfig({ env: { GRIDWATCH_CONFIG: file, MQTT_PORT: 'eighteen', GRIDWATCH__demo__speed: '-1' }, cwd: root }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^http\\.port: must be <= 65535 \\(from ${file}\\)`)),
        expect.stringMatching(/^http\.colour: unknown setting/),
        expect.stringMatching(/^log\.level: must be equal to one of the allowed values: fatal, error/),
        expect.stringMatching(/^mqtt\.port: must be integer \(from environment MQTT_PORT\)/),
        expect.stringMatching(/^demo\.speed: must be >= 0\.1 \(from environment GRIDWATCH__demo__speed\)/),
      ]),
    );
    expect(problems).toHaveLength(5);
  });

  it('refuses secrets in config files and through generic overrides', () => {
    const file = tmpFile('deploy.yaml', 'database:\n  url: postgres://u:p@db/gw\n');
    const problems = problemsOf(() =>
      loadConfig({ env: { GRIDWATCH_CONFIG: file, GRIDWATCH__redis__url: 'redis://x' }, cwd: root }),
    );
    expect(problems).toEqual([
      `${file}: database.url is a secret and may only come from DATABASE_URL or DATABASE_URL_FILE`,
      'GRIDWATCH__redis__url: redis.url is a secret; set it with its own variable (REDIS_URL) or REDIS_URL_FILE',
    ]);
  });

  it('takes the broker hook token (MQTT_AUTH_HOOK_TOKEN) from the environment or a file only, and hides it', () => {
    expect(loadConfig({ env: {}, cwd: root }).mqtt.authHookToken).toBeUndefined();
    const token = 'hook-token-0123456789abcdef';
    const fromEnv = loadConfig({ env: { MQTT_AUTH_HOOK_TOKEN: token }, cwd: root });
    expect(fromEnv.mqtt.authHookToken).toBe(token);
    expect(JSON.stringify(redactedConfig(fromEnv))).not.toContain(token);
    expect(SECRET_PATHS).toContain('mqtt.authHookToken');
    const fromFile = loadConfig({ env: { MQTT_AUTH_HOOK_TOKEN_FILE: tmpFile('hook', `${token}\n`) }, cwd: root });
    expect(fromFile.mqtt.authHookToken).toBe(token);
    const file = tmpFile('deploy.yaml', `mqtt:\n  authHookToken: ${token}\n`);
    expect(problemsOf(() => loadConfig({ env: { GRIDWATCH_CONFIG: file }, cwd: root }))).toEqual([
      `${file}: mqtt.authHookToken is a secret and may only come from MQTT_AUTH_HOOK_TOKEN or MQTT_AUTH_HOOK_TOKEN_FILE`,
    ]);
    // a guessable token would open the hooks to anyone who can reach the HTTP port
    expect(problemsOf(() => loadConfig({ env: { MQTT_AUTH_HOOK_TOKEN: 'short' }, cwd: root }))[0]).toMatch(
      /^mqtt\.authHookToken: must NOT have fewer than 16 characters \(from environment MQTT_AUTH_HOOK_TOKEN\)/,
    );
  });

  it('validates escalation policies: unknown recipients and channels are listed with their path', () => {
    const file = tmpFile(
      'deploy.yaml',
      'escalation:\n  policies:\n    - name: x\n      match: {}\n      steps:\n        - { afterMinutes: 0, to: [mayor], channel: pigeon }\n',
    );
    const problems = problemsOf(() => loadConfig({ env: { GRIDWATCH_CONFIG: file }, cwd: root }));
    expect(
      problems.some((p) =>
        p.startsWith('escalation.policies.0.steps.0.channel: must be equal to one of the allowed values'),
      ),
    ).toBe(true);
    expect(problems.some((p) => p.startsWith('escalation.policies.0.steps.0.to.0'))).toBe(true);
  });

  it('chooses Twilio with TWILIO_ACCOUNT_SID and asks for what else it needs; the token stays secret', () => {
    const sid = `AC${'0'.repeat(32)}`;
    expect(problemsOf(() => loadConfig({ env: { TWILIO_ACCOUNT_SID: sid }, cwd: root }))).toEqual([
      'sms.transport is twilio but TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not both set',
      'sms.transport is twilio: set TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID',
    ]);
    const cfg = loadConfig({
      env: { TWILIO_ACCOUNT_SID: sid, TWILIO_AUTH_TOKEN: 'tok-123', TWILIO_FROM: '+15005550006' },
      cwd: root,
    });
    expect(cfg.sms.transport).toBe('twilio');
    expect(JSON.stringify(redactedConfig(cfg))).not.toContain('tok-123');
    expect(loadConfig({ env: {}, cwd: root }).sms.transport).toBe('outbox');
  });

  it('reports unreadable and malformed files', () => {
    expect(problemsOf(() => loadConfig({ env: { GRIDWATCH_CONFIG: '/nonexistent/gw.yaml' }, cwd: root }))[0]).toMatch(
      /^\/nonexistent\/gw\.yaml: cannot read/,
    );
    const bad = tmpFile('bad.yaml', 'http: [1, 2\n');
    expect(problemsOf(() => loadConfig({ env: { GRIDWATCH_CONFIG: bad }, cwd: root }))[0]).toMatch(
      /not valid YAML or JSON/,
    );
  });

  it('needs a token when InfluxDB is chosen, and TLS cert and key together', () => {
    expect(problemsOf(() => loadConfig({ env: { INFLUX_URL: 'http://127.0.0.1:8086' }, cwd: root }))[0]).toMatch(
      /INFLUX_URL and INFLUX_TOKEN/,
    );
    expect(problemsOf(() => loadConfig({ env: { MQTT_TLS_CERT_FILE: '/x.pem' }, cwd: root }))[0]).toMatch(
      /set together/,
    );
    // cross-setting problems are listed together
    expect(
      problemsOf(() =>
        loadConfig({ env: { INFLUX_URL: 'http://127.0.0.1:8086', MQTT_TLS_KEY_FILE: '/k.pem' }, cwd: root }),
      ),
    ).toHaveLength(2);
  });

  it('MQTT_URL switches to an external broker, with the service account and the shared-subscription group', () => {
    const cfg = loadConfig({
      env: {
        MQTT_URL: 'mqtt://broker:1883',
        MQTT_USERNAME: 'gridwatch',
        MQTT_PASSWORD: 'pw',
        MQTT_SHARED_GROUP: 'street-7',
      },
      cwd: root,
    });
    expect(cfg.mqtt).toMatchObject({ url: 'mqtt://broker:1883', username: 'gridwatch', sharedGroup: 'street-7' });
    expect(problemsOf(() => loadConfig({ env: { MQTT_URL: 'http://broker' }, cwd: root }))[0]).toMatch(/mqtt\.url/);
  });

  it('MQTT_CLUSTER clusters the embedded broker: off by default, refused without a shared Redis (REDIS_URL)', () => {
    expect(loadConfig({ env: {}, cwd: root }).mqtt.cluster).toEqual({ enabled: false, offlineMessageTtlS: 86400 });
    const cfg = loadConfig({ env: { MQTT_CLUSTER: 'true', REDIS_URL: 'redis://127.0.0.1:6379' }, cwd: root });
    expect(cfg.mqtt.cluster?.enabled).toBe(true);
    expect(problemsOf(() => loadConfig({ env: { MQTT_CLUSTER: 'true' }, cwd: root }))).toEqual([
      expect.stringMatching(/^mqtt\.cluster\.enabled \(environment MQTT_CLUSTER\): .*set REDIS_URL/),
    ]);
    expect(
      problemsOf(() =>
        loadConfig({
          env: { MQTT_CLUSTER: 'true', REDIS_URL: 'redis://r:6379', MQTT_URL: 'mqtt://b:1883' },
          cwd: root,
        }),
      ),
    ).toEqual([expect.stringMatching(/external broker/)]);
    expect(problemsOf(() => loadConfig({ env: { MQTT_CLUSTER: 'yes please' }, cwd: root }))[0]).toMatch(
      /^mqtt\.cluster\.enabled: must be boolean/,
    );
  });

  it('REDIS_SENTINELS takes host:port and [ipv6]:port entries; the sentinels’ password is a secret', () => {
    const cfg = loadConfig({
      env: {
        REDIS_SENTINELS: '10.0.0.11:26379,[::1]:26380',
        REDIS_SENTINEL_NAME: 'street',
        REDIS_SENTINEL_PASSWORD: 'sentinel-pw',
      },
      cwd: root,
    });
    expect(cfg.redis).toMatchObject({
      sentinels: ['10.0.0.11:26379', '[::1]:26380'],
      sentinelName: 'street',
      sentinelPassword: 'sentinel-pw',
    });
    expect(problemsOf(() => loadConfig({ env: { REDIS_SENTINELS: 'no-port' }, cwd: root }))[0]).toMatch(
      /redis\.sentinels/,
    );
  });
});
