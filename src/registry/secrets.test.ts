import { describe, expect, it } from 'vitest';
import {
  dummyHash,
  generateSecret,
  hashSecret,
  hashToken,
  SecretVerifyCache,
  verifyDeviceSecret,
  verifySecret,
} from './secrets.ts';

describe('secrets', () => {
  it('hashes in the scrypt$N$r$p$salt$hash form and verifies', async () => {
    const h = await hashSecret('correct horse battery');
    const parts = h.split('$');
    expect(parts.slice(0, 4)).toEqual(['scrypt', '16384', '8', '1']);
    expect(Buffer.from(parts[4]!, 'base64')).toHaveLength(16);
    expect(Buffer.from(parts[5]!, 'base64')).toHaveLength(32);
    expect(await verifySecret('correct horse battery', h)).toBe(true);
    expect(await verifySecret('correct horse batterx', h)).toBe(false);
  });

  it('salts: the same secret hashes differently each time', async () => {
    const p = { N: 1024, r: 8, p: 1 };
    const [a, b] = await Promise.all([hashSecret('same', p), hashSecret('same', p)]);
    expect(a).not.toBe(b);
    expect(await verifySecret('same', a)).toBe(true);
    expect(await verifySecret('same', b)).toBe(true);
  });

  it('verifies with the parameters stored in the hash', async () => {
    const h = await hashSecret('low-cost', { N: 1024, r: 4, p: 2 });
    expect(h.startsWith('scrypt$1024$4$2$')).toBe(true);
    expect(await verifySecret('low-cost', h)).toBe(true);
  });

  it('answers false for malformed or hostile hashes instead of throwing', async () => {
    for (const bad of [
      '',
      'plain',
      'bcrypt$1$2$3$4$5',
      'scrypt$abc$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
      // N not a power of two, and N far too large (would allocate gigabytes)
      'scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
      'scrypt$1073741824$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
      'scrypt$16384$8$1$$',
    ]) {
      expect(await verifySecret('x', bad)).toBe(false);
    }
  });

  it('generates 24-byte base64url secrets', () => {
    const s = generateSecret();
    expect(s).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(Buffer.from(s, 'base64url')).toHaveLength(24);
    expect(generateSecret()).not.toBe(s);
  });

  it('hashes session tokens with sha256 hex', () => {
    expect(hashToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('dummyHash is a valid hash that no ordinary password matches, computed once', async () => {
    const h = await dummyHash();
    expect(h.startsWith('scrypt$16384$8$1$')).toBe(true);
    expect(await dummyHash()).toBe(h);
    expect(await verifySecret('', h)).toBe(false);
  });

  describe('SecretVerifyCache', () => {
    const params = { N: 1024, r: 8, p: 1 };

    it('caches successes, so a repeat is cheap, and never caches failures', async () => {
      const cache = new SecretVerifyCache(10);
      const h = await hashSecret('device-secret', params);
      expect(await cache.verify('device-secret', h)).toBe(true);
      expect(cache.size).toBe(1);
      const t0 = performance.now();
      for (let i = 0; i < 200; i++) expect(await cache.verify('device-secret', h)).toBe(true);
      // 200 full scrypt runs even at N=1024 take far longer than 200 HMACs
      expect(performance.now() - t0).toBeLessThan(200);
      expect(await cache.verify('wrong', h)).toBe(false);
      expect(await cache.verify('wrong', h)).toBe(false);
      expect(cache.size).toBe(1);
    });

    it('a cached success does not validate another secret or another hash', async () => {
      const cache = new SecretVerifyCache(10);
      const h1 = await hashSecret('one', params);
      const h2 = await hashSecret('two', params);
      expect(await cache.verify('one', h1)).toBe(true);
      expect(await cache.verify('one', h2)).toBe(false);
      expect(await cache.verify('two', h1)).toBe(false);
    });

    it('is bounded: the least recently used entry goes first', async () => {
      const cache = new SecretVerifyCache(3);
      const secrets = ['a', 'b', 'c', 'd'];
      const hashes = await Promise.all(secrets.map((s) => hashSecret(s, params)));
      for (let i = 0; i < 3; i++) await cache.verify(secrets[i]!, hashes[i]!);
      await cache.verify('a', hashes[0]!); // a is now the most recent
      await cache.verify('d', hashes[3]!); // evicts b
      expect(cache.size).toBe(3);
      expect(cache.has('a', hashes[0]!)).toBe(true);
      expect(cache.has('b', hashes[1]!)).toBe(false);
      expect(cache.has('c', hashes[2]!)).toBe(true);
      expect(cache.has('d', hashes[3]!)).toBe(true);
      cache.clear();
      expect(cache.size).toBe(0);
    });

    it('never keeps a plain secret in memory', async () => {
      const cache = new SecretVerifyCache(10);
      const secret = generateSecret();
      await cache.verify(secret, await hashSecret(secret, params));
      const keys = [...(cache as unknown as { entries: Map<string, true> }).entries.keys()];
      expect(keys.some((k) => k.includes(secret))).toBe(false);
    });

    it('the shared device cache works through verifyDeviceSecret', async () => {
      const h = await hashSecret('shared', params);
      expect(await verifyDeviceSecret('shared', h)).toBe(true);
      expect(await verifyDeviceSecret('nope', h)).toBe(false);
    });
  });
});
