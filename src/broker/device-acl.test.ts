import { describe, expect, it } from 'vitest';
import type { DeviceDirectory, DeviceRecord } from '../registry/types.ts';
import { aclAllows, DeviceAuthenticator, serviceCredentialsValid, unshare } from './device-acl.ts';

const B = 'gridwatch';
const dev = { kind: 'device', id: 'pir-1' } as const;
const svc = { kind: 'service' } as const;

function directory(records: DeviceRecord[]): DeviceDirectory & { refreshes: string[] } {
  const byId = new Map(records.map((r) => [r.id, r]));
  const refreshes: string[] = [];
  return {
    refreshes,
    get: (id) => byId.get(id),
    refresh: async (id) => {
      refreshes.push(id ?? '*');
    },
    all: () => byId.values(),
  };
}

const record = (id: string, disabled = false): DeviceRecord => ({
  id,
  model: 'native-motion',
  install: { kind: 'household', householdId: 'h' },
  placement: {},
  drill: false,
  disabled,
  secretHash: `hash-of-${id}`,
});

describe('device authentication', () => {
  const dir = directory([record('pir-1'), record('pir-off', true)]);
  // the secret check itself is secrets.ts; here: which hash is checked and in which order the refusals come
  const auth = new DeviceAuthenticator({ directory: dir, verifySecret: async (s, h) => h === `hash-of-${s}` });

  it('accepts id = client id with the right secret, and names each refusal', async () => {
    expect(await auth.authenticate('pir-1', 'pir-1', Buffer.from('pir-1'))).toMatchObject({ ok: true });
    expect(await auth.authenticate('pir-1', 'pir-1', 'wrong')).toEqual({ ok: false, reason: 'bad_secret' });
    expect(await auth.authenticate('pir-2', 'pir-1', 'pir-1')).toEqual({ ok: false, reason: 'client_id_mismatch' });
    expect(await auth.authenticate('pir-1', 'pir-1', '')).toEqual({ ok: false, reason: 'missing_credentials' });
    expect(await auth.authenticate('x', undefined, 'x')).toEqual({ ok: false, reason: 'missing_credentials' });
    // disabled is only said to whoever knows the secret
    expect(await auth.authenticate('pir-off', 'pir-off', 'nope')).toEqual({ ok: false, reason: 'bad_secret' });
    expect(await auth.authenticate('pir-off', 'pir-off', 'pir-off')).toEqual({ ok: false, reason: 'disabled_device' });
  });

  it('re-reads an unknown id at most every 30 s, and never one that cannot be a device id', async () => {
    for (let i = 0; i < 3; i++) await auth.authenticate('ghost', 'ghost', 'x');
    await auth.authenticate('bad/id', 'bad/id', 'x');
    expect(dir.refreshes).toEqual(['ghost']);
  });
});

describe('ACL', () => {
  it('a device publishes telemetry, event and status under its own id only', () => {
    for (const k of ['telemetry', 'event', 'status'])
      expect(aclAllows(B, dev, 'publish', `${B}/pir-1/${k}`)).toBe(true);
    for (const t of [`${B}/pir-1/cmd`, `${B}/pir-1/error`, `${B}/pir-10/telemetry`, `${B}/pir-2/telemetry`, 'pir-1'])
      expect(aclAllows(B, dev, 'publish', t)).toBe(false);
  });

  it('a device subscribes to its own cmd, error, # and + only; shared subscriptions are not for devices', () => {
    for (const f of ['cmd', 'error', '#', '+']) expect(aclAllows(B, dev, 'subscribe', `${B}/pir-1/${f}`)).toBe(true);
    for (const f of ['#', `${B}/#`, `${B}/+/cmd`, `${B}/pir-2/cmd`, `$share/g/${B}/pir-1/cmd`, `${B}/pir-1/cmd/x`])
      expect(aclAllows(B, dev, 'subscribe', f)).toBe(false);
    expect(aclAllows(B, dev, 'read', `${B}/pir-1/cmd`)).toBe(true);
    expect(aclAllows(B, dev, 'read', `${B}/pir-2/cmd`)).toBe(false);
  });

  it('the service account: $share/<group>/<base>/+/+ or <base>/+/+, and cmd / error to any device', () => {
    expect(aclAllows(B, svc, 'subscribe', `$share/g/${B}/+/+`)).toBe(true);
    expect(aclAllows(B, svc, 'subscribe', `$share/street-7/${B}/+/+`)).toBe(true);
    expect(aclAllows(B, svc, 'subscribe', `${B}/+/+`)).toBe(true);
    for (const f of ['#', `${B}/#`, `$share//${B}/+/+`, `$share/g`, `$SYS/#`, `${B}/+/+/+`])
      expect(aclAllows(B, svc, 'subscribe', f)).toBe(false);
    expect(aclAllows(B, svc, 'publish', `${B}/pir-1/cmd`)).toBe(true);
    expect(aclAllows(B, svc, 'publish', `${B}/pir-1/error`)).toBe(true);
    for (const t of [`${B}/pir-1/telemetry`, `${B}/+/cmd`, `${B}/a/b/cmd`, `${B}/bad id/cmd`, `other/pir-1/cmd`])
      expect(aclAllows(B, svc, 'publish', t)).toBe(false);
    expect(aclAllows(B, svc, 'read', `${B}/pir-1/telemetry`)).toBe(true);
    expect(aclAllows(B, svc, 'read', `other/pir-1/telemetry`)).toBe(false);
  });

  it('unwraps shared subscriptions; checks the service password in constant time', () => {
    expect(unshare(`$share/g/${B}/+/+`)).toEqual({ group: 'g', filter: `${B}/+/+` });
    expect(unshare(`${B}/+/+`)).toEqual({ filter: `${B}/+/+` });
    const account = { username: 'svc', password: 'pw-1' };
    expect(serviceCredentialsValid(account, 'svc', 'pw-1')).toBe(true);
    expect(serviceCredentialsValid(account, 'svc', 'pw-2')).toBe(false);
    expect(serviceCredentialsValid(account, 'other', 'pw-1')).toBe(false);
    expect(serviceCredentialsValid({ username: 'svc' }, 'svc', '')).toBe(false);
  });
});
