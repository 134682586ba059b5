/**
 * The generated password_file and acl_file against the REAL mosquitto 2.0 (Debian's /usr/sbin/mosquitto), with a
 * registry seeded from the sample community (SQLite): the device connects with its secret, a wrong secret is
 * refused, its own telemetry reaches the service account through `$share/g/gridwatch/+/+`, a message it writes
 * into another device's topic reaches nobody, and a rotated secret works after SIGHUP while the old one stops.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getModel } from '../../devices/index.ts';
import { startTestMosquitto, type TestMosquitto } from '../../test/support/mosquitto.ts';
import { SqlRegistry } from '../registry/registry.ts';
import { type SeedResult, seedIfEmpty } from '../registry/seed.ts';
import { verifyMosquittoHash } from '../registry/secrets.ts';
import { createDatabase, type Database } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { aclAllows } from './device-acl.ts';
import { buildMosquittoFiles, reloadMosquitto, writeMosquittoFiles } from './mosquitto-files.ts';

const SAMPLE = path.resolve(import.meta.dirname, '../../config/sample-community.yaml');
const SERVICE = { username: 'gridwatch-svc', password: 'service-password-1' };

let dir: string;
let database: Database;
let registry: SqlRegistry;
let broker: TestMosquitto;
let secrets: Map<string, string>;
let ids: string[];
const clients: MqttClient[] = [];

async function generate(): Promise<Awaited<ReturnType<typeof buildMosquittoFiles>>> {
  const files = await buildMosquittoFiles({
    baseTopic: 'gridwatch',
    devices: await registry.mosquittoAccounts(),
    service: SERVICE,
  });
  await writeMosquittoFiles(dir, files);
  return files;
}

function connect(username: string, password: string, clientId = username): Promise<MqttClient> {
  return mqtt
    .connectAsync(broker.url, { username, password, clientId, reconnectPeriod: 0, connectTimeout: 5000 })
    .then((c) => {
      clients.push(c);
      return c;
    });
}

async function refused(username: string, password: string): Promise<string> {
  const err = await connect(username, password).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  expect(err).toBeInstanceOf(Error);
  return err!.message;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'gw-mosq-files-'));
  database = await createDatabase({ sqliteFile: 'registry.sqlite' }, dir);
  await migrateToLatest(database.db);
  registry = new SqlRegistry(database, { knownModel: (m) => getModel(m) !== undefined, sessionSweepMs: 0 });
  await registry.start();
  const seeded = (await seedIfEmpty(registry, SAMPLE, { env: {} })) as Extract<SeedResult, { seeded: true }>;
  secrets = new Map(seeded.deviceSecrets.map((d) => [d.deviceId, d.secret]));
  ids = [...secrets.keys()].slice(0, 4);
  // one device provisioned before migration 013 (no mosquitto hash) and one disabled
  await registry.db.updateTable('device').set({ mosquitto_hash: null }).where('id', '=', ids[2]!).execute();
  await registry.db.updateTable('device').set({ disabled: 1 }).where('id', '=', ids[3]!).execute();
  await generate();
  broker = await startTestMosquitto([
    // devices cannot pick another client id: mosquitto replaces it with the (checked) username
    'use_username_as_clientid true',
    'allow_anonymous false',
    `password_file ${path.join(dir, 'password_file')}`,
    `acl_file ${path.join(dir, 'acl_file')}`,
    `pid_file ${path.join(dir, 'mosquitto.pid')}`,
    // started as root, mosquitto drops to its own user, which could not read our 0600 files
    ...(process.getuid?.() === 0 ? ['user root'] : []),
  ]);
}, 120_000);

afterAll(async () => {
  for (const c of clients) c.end(true);
  await broker?.stop();
  await registry?.stop();
  await database?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('mosquitto files from the registry', () => {
  it('writes mosquitto_passwd-compatible hashes (0600, atomically) and lists what it left out', async () => {
    const files = await generate();
    expect(files.needRotation).toEqual([ids[2]]);
    expect(files.disabled).toEqual([ids[3]]);
    expect(files.devices).toBe(secrets.size - 2);
    const lines = readFileSync(path.join(dir, 'password_file'), 'utf8').trim().split('\n');
    const svc = lines.find((l) => l.startsWith(`${SERVICE.username}:`))!;
    expect(await verifyMosquittoHash(SERVICE.password, svc.slice(SERVICE.username.length + 1))).toBe(true);
    expect(lines.some((l) => l.startsWith(`${ids[2]}:`) || l.startsWith(`${ids[3]}:`))).toBe(false);
    for (const f of ['password_file', 'acl_file']) expect(statSync(path.join(dir, f)).mode & 0o777).toBe(0o600);
    // the real mosquitto_passwd and our verifier agree on the format
    const pw = path.join(dir, 'check_passwd');
    execFileSync('mosquitto_passwd', ['-c', '-b', pw, 'x', 'the-secret']);
    const theirs = readFileSync(pw, 'utf8').trim().split(':')[1]!;
    expect(theirs).toMatch(/^\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$/);
    expect(await verifyMosquittoHash('the-secret', theirs)).toBe(true);
    expect(await verifyMosquittoHash('not-the-secret', theirs)).toBe(false);
  });

  it('refuses a service account that shares a device id or lacks its password', async () => {
    const devices = await registry.mosquittoAccounts();
    await expect(
      buildMosquittoFiles({ baseTopic: 'gridwatch', devices, service: { username: ids[0], password: 'p' } }),
    ).rejects.toThrow(/has the service account's username/);
    await expect(
      buildMosquittoFiles({ baseTopic: 'gridwatch', devices, service: { username: 'svc' } }),
    ).rejects.toThrow(/MQTT_PASSWORD/);
  });

  it('lets a device in with its secret only, and never as a disabled or hash-less device', async () => {
    const [a] = ids as [string];
    expect((await connect(a, secrets.get(a)!)).connected).toBe(true);
    expect(await refused(a, 'wrong-secret-000000000000000000')).toMatch(/Not authorized|Bad username/);
    expect(await refused('no-such-device', 'x')).toMatch(/Not authorized|Bad username/);
    expect(await refused(ids[3]!, secrets.get(ids[3]!)!)).toMatch(/Not authorized|Bad username/);
    expect(await refused(ids[2]!, secrets.get(ids[2]!)!)).toMatch(/Not authorized|Bad username/);
  });

  it('delivers a device’s own telemetry to the service account’s shared subscription, and nothing it forges', async () => {
    const [a, b] = ids as [string, string];
    const svc = await mqtt.connectAsync(broker.url, {
      ...SERVICE,
      clientId: 'gw-node-1',
      protocolVersion: 5,
      reconnectPeriod: 0,
    });
    clients.push(svc);
    const seen: string[] = [];
    svc.on('message', (topic, payload) => seen.push(`${topic} ${payload}`));
    await svc.subscribeAsync('$share/g/gridwatch/+/+', { qos: 1 });
    const devB = await connect(b, secrets.get(b)!);
    const toB: string[] = [];
    devB.on('message', (topic, payload) => toB.push(`${topic} ${payload}`));
    await devB.subscribeAsync(`gridwatch/${b}/#`, { qos: 1 });
    // a client id other than the username changes nothing: mosquitto uses the username (use_username_as_clientid)
    const devA = await connect(a, secrets.get(a)!, b);
    await devA.publishAsync(`gridwatch/${a}/telemetry`, '{"n":1}', { qos: 1 });
    await devA.publishAsync(`gridwatch/${b}/telemetry`, '{"forged":true}', { qos: 1 });
    await devA.publishAsync(`gridwatch/${b}/cmd`, '{"forged":true}', { qos: 1 });
    await svc.publishAsync(`gridwatch/${b}/cmd`, '{"name":"ping"}', { qos: 1 });
    await new Promise((r) => setTimeout(r, 500));
    expect(seen).toEqual([`gridwatch/${a}/telemetry {"n":1}`, `gridwatch/${b}/cmd {"name":"ping"}`]);
    // b kept its session although a claimed b's client id, and got only the service's command
    expect(devB.connected).toBe(true);
    expect(toB).toEqual([`gridwatch/${b}/cmd {"name":"ping"}`]);
    // the same decisions as the hooks' ACL
    expect(aclAllows('gridwatch', { kind: 'device', id: a }, 'publish', `gridwatch/${b}/telemetry`)).toBe(false);
    expect(aclAllows('gridwatch', { kind: 'service' }, 'subscribe', '$share/g/gridwatch/+/+')).toBe(true);
  });

  it('after a secret rotation and SIGHUP the new secret works and the old one no longer does', async () => {
    const c = ids[2]!;
    const { secret } = await registry.rotateDeviceSecret(c);
    const a = ids[0]!;
    const old = secrets.get(a)!;
    const rotatedA = await registry.rotateDeviceSecret(a);
    const files = await generate();
    expect(files.needRotation).toEqual([]);
    await reloadMosquitto(path.join(dir, 'mosquitto.pid'));
    await new Promise((r) => setTimeout(r, 300));
    expect((await connect(c, secret)).connected).toBe(true);
    expect((await connect(a, rotatedA.secret)).connected).toBe(true);
    expect(await refused(a, old)).toMatch(/Not authorized|Bad username/);
  });
});
