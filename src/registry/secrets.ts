/**
 * Password and device-secret hashing.
 *
 * Stored form: `scrypt$N$r$p$saltB64$hashB64`. The parameters travel with the hash so that they can be raised later
 * without invalidating existing hashes (verification always uses the parameters stored in the hash).
 * scrypt at N=16384 costs ~25 ms of CPU, which is the point for staff passwords, but the broker re-verifies a
 * device secret on every reconnect: `SecretVerifyCache` remembers successful (secret, hash) pairs so that a
 * reconnect storm after a restart does not cost thousands × 25 ms.
 */
import { createHash, createHmac, pbkdf2, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

export const DEFAULT_SCRYPT: Readonly<ScryptParams> = { N: 16384, r: 8, p: 1 };
/**
 * Device secrets are 192 random bits (generateSecret), not passwords a person chose: no cost factor changes how
 * guessable they are, so they get a cheap scrypt (~1 ms). That keeps a whole street's devices reconnecting after a
 * restart, and seeding tens of thousands of devices, from queueing behind each other on the libuv pool.
 */
export const DEVICE_SCRYPT: Readonly<ScryptParams> = { N: 1024, r: 8, p: 1 };
const SALT_BYTES = 16;
const KEY_BYTES = 32;
// Bounds for parameters read from a stored hash: a tampered row must not be able to make us allocate gigabytes.
const MAX_N = 1 << 20;
const MAX_R = 32;
const MAX_P = 16;

function scryptAsync(secret: string, salt: Buffer, keylen: number, params: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem must cover 128·N·r bytes (16 MiB at the defaults) plus headroom.
    const maxmem = 256 * params.N * params.r + 1024 * 1024;
    scrypt(secret, salt, keylen, { N: params.N, r: params.r, p: params.p, maxmem }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

/** Hashes a password or device secret. `params` only for tests and benchmarks; production uses the defaults. */
export async function hashSecret(secret: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await scryptAsync(secret, salt, KEY_BYTES, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

interface ParsedHash extends ScryptParams {
  salt: Buffer;
  key: Buffer;
}

function parseHash(hash: string): ParsedHash | undefined {
  const parts = hash.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [N, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  if (!Number.isInteger(N) || N < 2 || N > MAX_N || (N & (N - 1)) !== 0) return undefined;
  if (!Number.isInteger(r) || r < 1 || r > MAX_R || !Number.isInteger(p) || p < 1 || p > MAX_P) return undefined;
  const salt = Buffer.from(parts[4] ?? '', 'base64');
  const key = Buffer.from(parts[5] ?? '', 'base64');
  if (salt.length < 8 || key.length < 16 || key.length > 128) return undefined;
  return { N, r, p, salt, key };
}

/** Constant-time check of a secret against a stored hash; false (never a throw) for a malformed hash. */
export async function verifySecret(secret: string, hash: string): Promise<boolean> {
  const parsed = parseHash(hash);
  if (!parsed) return false;
  const key = await scryptAsync(secret, parsed.salt, parsed.key.length, parsed);
  return timingSafeEqual(key, parsed.key);
}

/**
 * mosquitto 2.0's own password hash, for its `password_file` (src/broker/mosquitto-files.ts):
 * `$7$<iterations>$<salt, base64>$<PBKDF2-HMAC-SHA512, 64 bytes, base64>`, with a 12-byte salt and 101 iterations
 * as `mosquitto_passwd` 2.0 writes them (its password_mosq.h: SALT_LEN 12, PW_DEFAULT_ITERATIONS 101). Stored next
 * to the scrypt hash because the registry never keeps a secret. Few iterations are enough here: device secrets are
 * 192 random bits, which no cost factor makes more or less guessable.
 */
export const MOSQUITTO_ITERATIONS = 101;

export function mosquittoHash(secret: string, iterations = MOSQUITTO_ITERATIONS): Promise<string> {
  const salt = randomBytes(12);
  return new Promise((resolve, reject) =>
    pbkdf2(secret, salt, iterations, 64, 'sha512', (err, key) =>
      err ? reject(err) : resolve(`$7$${iterations}$${salt.toString('base64')}$${key.toString('base64')}`),
    ),
  );
}

/** Checks a secret against a `$7$…` hash as mosquitto does; false (never a throw) for a malformed hash. */
export function verifyMosquittoHash(secret: string, hash: string): Promise<boolean> {
  const m = /^\$7\$(\d{1,7})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(hash);
  const iterations = Number(m?.[1]);
  if (!m || iterations < 1 || iterations > 1_000_000) return Promise.resolve(false);
  const salt = Buffer.from(m[2]!, 'base64');
  const expected = Buffer.from(m[3]!, 'base64');
  if (expected.length !== 64) return Promise.resolve(false);
  return new Promise((resolve) =>
    pbkdf2(secret, salt, iterations, 64, 'sha512', (err, key) => resolve(!err && timingSafeEqual(key, expected))),
  );
}

/** A new device secret: 24 random bytes, base64url (32 characters, safe in MQTT passwords, URLs and shells). */
export function generateSecret(): string {
  return randomBytes(24).toString('base64url');
}

/** Session tokens are random (256 bits), so a plain sha256 is enough to store them: nothing to brute-force. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

const dummyHashes = new Map<string, Promise<string>>();
/**
 * A valid hash of a random secret, for "verify anyway" paths (unknown user at login): the answer takes as long as
 * for a real account, so response time does not reveal which usernames exist. Computed once per parameter set,
 * with the same parameters as the real hashes so that the timing matches.
 */
export function dummyHash(params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const key = `${params.N}/${params.r}/${params.p}`;
  let h = dummyHashes.get(key);
  if (!h) {
    h = hashSecret(generateSecret(), params);
    dummyHashes.set(key, h);
  }
  return h;
}

/**
 * Remembers successful verifications for the broker's hot path. Keys are an HMAC (with a per-process random key)
 * of hash and secret, so the cache never holds a secret, nor anything that would help guess one.
 * Only successes are cached: a flood of wrong passwords must not evict the good entries, and a wrong password
 * should keep costing the attacker a full scrypt. A changed secret has a new hash (new salt), so stale entries are
 * simply never hit again and age out.
 */
export class SecretVerifyCache {
  private readonly entries = new Map<string, true>();
  private readonly hmacKey = randomBytes(32);
  constructor(private readonly maxEntries = 10_000) {}

  get size(): number {
    return this.entries.size;
  }

  private key(secret: string, hash: string): string {
    return createHmac('sha256', this.hmacKey).update(hash).update('\0').update(secret).digest('base64');
  }

  /** Whether this pair is cached (diagnostics and tests); does not touch recency. */
  has(secret: string, hash: string): boolean {
    return this.entries.has(this.key(secret, hash));
  }

  async verify(secret: string, hash: string): Promise<boolean> {
    const k = this.key(secret, hash);
    if (this.entries.has(k)) {
      // refresh recency: Map keeps insertion order, so re-inserting moves it to the young end
      this.entries.delete(k);
      this.entries.set(k, true);
      return true;
    }
    const ok = await verifySecret(secret, hash);
    if (ok) {
      this.entries.set(k, true);
      if (this.entries.size > this.maxEntries) {
        const oldest = this.entries.keys().next().value;
        if (oldest !== undefined) this.entries.delete(oldest);
      }
    }
    return ok;
  }

  clear(): void {
    this.entries.clear();
  }
}

/** The process-wide cache the broker uses for device logins. */
export const deviceSecretCache = new SecretVerifyCache();

/** Cached verification for device secrets (never for staff passwords, which must always pay the full cost). */
export function verifyDeviceSecret(secret: string, hash: string): Promise<boolean> {
  return deviceSecretCache.verify(secret, hash);
}
