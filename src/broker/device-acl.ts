/**
 * Who may connect, publish and subscribe: the one place these rules are written, shared by the embedded broker
 * (src/broker/embedded.ts) and the hooks external brokers call (src/http/routes/broker-auth.ts), and mirrored by
 * the mosquitto files (src/broker/mosquitto-files.ts).
 *
 * - A device: username = device id = MQTT client id, password = its secret (scrypt hash in the registry). It
 *   publishes only to its own `<base>/<id>/telemetry|event|status` and subscribes only to its own
 *   `<base>/<id>/cmd|error` (or `<base>/<id>/#` / `+`). Disabled devices are refused.
 * - The service account (mqtt.username / mqtt.password), which GridWatch uses on an external broker: it subscribes
 *   `<base>/+/+` (as `$share/<group>/<base>/+/+` too) and publishes `<base>/<device id>/cmd|error`. Nothing else; it
 *   is no superuser.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { type InboundKind, isValidDeviceId } from '../contracts/topics.ts';
import type { DeviceDirectory, DeviceRecord } from '../registry/types.ts';

export type AuthRefusal =
  | 'missing_credentials'
  | 'client_id_mismatch'
  | 'unknown_device'
  | 'bad_secret'
  | 'disabled_device';

export type DeviceAuthResult = { ok: true; device: DeviceRecord } | { ok: false; reason: AuthRefusal };

export interface DeviceAuthenticatorDeps {
  directory: DeviceDirectory;
  /** `verifyDeviceSecret` from src/registry/secrets.ts (caches successes). */
  verifySecret: (secret: string, hash: string) => Promise<boolean>;
}

/** Checks device credentials against the registry. */
export class DeviceAuthenticator {
  /** Unknown ids refreshed from the registry recently, so a flood of bad ids cannot hammer the database. */
  private readonly refreshedUnknown = new Map<string, number>();

  constructor(private readonly deps: DeviceAuthenticatorDeps) {}

  async authenticate(
    clientId: string | undefined,
    username: string | undefined,
    password: Buffer | string | undefined,
  ): Promise<DeviceAuthResult> {
    if (!username || password === undefined || password.length === 0) return refused('missing_credentials');
    // One session per device: the client id must be the device id. A broker closes an older session when a new one
    // with the same client id arrives, so a stolen secret cannot coexist unnoticed with the real device (the two
    // keep kicking each other off, which shows up as connection churn), and no device can end another's session.
    if (clientId !== username) return refused('client_id_mismatch');
    const record = this.deps.directory.get(username) ?? (await this.refreshUnknown(username));
    if (!record) return refused('unknown_device');
    const secret = typeof password === 'string' ? password : password.toString('utf8');
    if (!(await this.deps.verifySecret(secret, record.secretHash))) return refused('bad_secret');
    // Checked after the secret, so only the device's owner learns that it is disabled.
    if (record.disabled) return refused('disabled_device');
    return { ok: true, device: record };
  }

  /** A device provisioned on another node may not be in this node's directory yet: re-read it, at most every 30 s. */
  private async refreshUnknown(deviceId: string): Promise<DeviceRecord | undefined> {
    // ids that cannot exist are not worth a query
    if (!isValidDeviceId(deviceId)) return undefined;
    const now = Date.now();
    const last = this.refreshedUnknown.get(deviceId);
    if (last !== undefined && now - last < 30_000) return undefined;
    if (this.refreshedUnknown.size >= 10_000) this.refreshedUnknown.clear();
    this.refreshedUnknown.set(deviceId, now);
    await this.deps.directory.refresh(deviceId);
    return this.deps.directory.get(deviceId);
  }
}

function refused(reason: AuthRefusal): DeviceAuthResult {
  return { ok: false, reason };
}

/** The part of `topic` after `<base>/<deviceId>/`, or undefined when it is not under the device. */
export function ownRest(baseTopic: string, topic: string, deviceId: string): string | undefined {
  const p = `${baseTopic}/`;
  if (!topic.startsWith(p) || !topic.startsWith(deviceId, p.length)) return undefined;
  const at = p.length + deviceId.length;
  if (topic.charCodeAt(at) !== 47 /* '/' */) return undefined;
  return topic.slice(at + 1);
}

/** What a device's publish to `topic` is (telemetry, event, status), or undefined when it may not publish there. */
export function inboundKind(baseTopic: string, topic: string, deviceId: string): InboundKind | undefined {
  const rest = ownRest(baseTopic, topic, deviceId);
  return rest === 'telemetry' || rest === 'event' || rest === 'status' ? rest : undefined;
}

/** A device subscribes only to its own cmd and error topics, or to `#` / `+` under its own id. */
export function deviceMaySubscribe(baseTopic: string, filter: string, deviceId: string): boolean {
  const rest = ownRest(baseTopic, filter, deviceId);
  return rest === 'cmd' || rest === 'error' || rest === '#' || rest === '+';
}

/**
 * Whether a message on `topic` may be delivered to the device (mosquitto-go-auth checks "read" per delivered
 * message, with the message's topic): only what its subscriptions allow, i.e. anything under its own id.
 */
export function deviceMayRead(baseTopic: string, topic: string, deviceId: string): boolean {
  const rest = ownRest(baseTopic, topic, deviceId);
  return rest === 'cmd' || rest === 'error' || rest === 'telemetry' || rest === 'event' || rest === 'status';
}

/** `$share/<group>/<filter>` → its group and filter; any other filter is returned as it is. */
export function unshare(filter: string): { group?: string; filter: string } {
  if (!filter.startsWith('$share/')) return { filter };
  const slash = filter.indexOf('/', 7);
  // `$share/<group>` without a filter, or an empty group, is not a shared subscription but a malformed one
  if (slash <= 7) return { filter: '' };
  return { group: filter.slice(7, slash), filter: filter.slice(slash + 1) };
}

/**
 * The service account subscribes to every device's topics, `<base>/+/+`, plainly or as a shared subscription
 * (`$share/<any group>/<base>/+/+`; EMQX may pass either form to its authorizer). The group is not checked: it only
 * decides how the service's own nodes split the messages, and the plain filter is allowed anyway.
 */
export function serviceMaySubscribe(baseTopic: string, filter: string): boolean {
  return unshare(filter).filter === `${baseTopic}/+/+`;
}

/** The service account publishes commands and error replies to devices: `<base>/<device id>/cmd|error`. */
export function serviceMayPublish(baseTopic: string, topic: string): boolean {
  return outboundOf(baseTopic, topic) !== undefined;
}

/** Messages delivered to the service: anything on `<base>/<device id>/<kind>` (what `<base>/+/+` matches). */
export function serviceMayRead(baseTopic: string, topic: string): boolean {
  const p = `${baseTopic}/`;
  if (!topic.startsWith(p)) return false;
  const parts = topic.slice(p.length).split('/');
  return parts.length === 2 && isValidDeviceId(parts[0]!) && parts[1]!.length > 0 && !/[+#]/.test(parts[1]!);
}

function outboundOf(baseTopic: string, topic: string): 'cmd' | 'error' | undefined {
  const p = `${baseTopic}/`;
  if (!topic.startsWith(p)) return undefined;
  const parts = topic.slice(p.length).split('/');
  if (parts.length !== 2 || !isValidDeviceId(parts[0]!)) return undefined;
  return parts[1] === 'cmd' || parts[1] === 'error' ? parts[1] : undefined;
}

/** The service account's credentials (mqtt.username / mqtt.password). */
export interface ServiceAccount {
  username?: string;
  password?: string;
}

/** Whether `username` names the service account (set, and not empty). */
export function isServiceUser(account: ServiceAccount, username: string | undefined): boolean {
  return !!account.username && username === account.username;
}

/** Constant-time check of the service account's password; false when no password is configured. */
export function serviceCredentialsValid(
  account: ServiceAccount,
  username: string | undefined,
  password: Buffer | string | undefined,
): boolean {
  if (!isServiceUser(account, username) || !account.password || password === undefined) return false;
  return sameSecret(typeof password === 'string' ? password : password.toString('utf8'), account.password);
}

/** Constant-time comparison of two secrets of any length (compares their sha256). */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Who asks: a device (by its id) or the service account. */
export type Principal = { kind: 'device'; id: string } | { kind: 'service' };

/**
 * `publish`: a message to `topic`; `subscribe`: a subscription to the filter `topic`; `read`: a message on `topic`
 * delivered to the principal (mosquitto checks that per message, on top of the subscription).
 */
export type Access = 'publish' | 'subscribe' | 'read';

/** The whole ACL in one decision, for the broker hooks and the tests that compare them with the generated files. */
export function aclAllows(baseTopic: string, who: Principal, access: Access, topic: string): boolean {
  if (who.kind === 'service') {
    if (access === 'publish') return serviceMayPublish(baseTopic, topic);
    if (access === 'subscribe') return serviceMaySubscribe(baseTopic, topic);
    return serviceMayRead(baseTopic, topic);
  }
  if (access === 'publish') return inboundKind(baseTopic, topic, who.id) !== undefined;
  if (access === 'subscribe') return deviceMaySubscribe(baseTopic, topic, who.id);
  return deviceMayRead(baseTopic, topic, who.id);
}
