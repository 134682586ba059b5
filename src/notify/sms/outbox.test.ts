import { describe, expect, it } from 'vitest';
import { OutboxTransport } from './outbox.ts';

describe('OutboxTransport', () => {
  it('records every message, delivers nothing, answers with OB ids', async () => {
    const seen: string[] = [];
    const o = new OutboxTransport({ onMessage: (e) => seen.push(e.id) });
    expect(o.name).toBe('outbox');
    expect(o.delivers).toBe(false);
    const r = await o.send({ to: '+8613800138000', body: '测试', notificationId: 'n1', validitySeconds: 60 });
    expect(r).toMatchObject({ ok: true, status: 'accepted' });
    if (!r.ok) throw new Error('unreachable');
    expect(r.providerId).toMatch(/^OB[0-9a-f]{32}$/);
    expect(seen).toEqual([r.providerId]);
    expect(o.messages()).toMatchObject([
      { id: r.providerId, to: '+8613800138000', body: '测试', notificationId: 'n1' },
    ]);
    expect(await o.lookup(r.providerId)).toEqual({ status: 'accepted', errorCode: null });
    expect(await o.lookup('OBnope')).toBeUndefined();
  });

  it('keeps a bounded ring (oldest dropped) and counts the total', async () => {
    const o = new OutboxTransport({ capacity: 3 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await o.send({ to: '+8613800138000', body: `m${i}`, notificationId: `n${i}` });
      if (r.ok) ids.push(r.providerId);
    }
    expect(o.messages().map((m) => m.body)).toEqual(['m2', 'm3', 'm4']);
    expect(o.total).toBe(5);
    expect(await o.lookup(ids[0]!)).toBeUndefined();
    expect(await o.lookup(ids[4]!)).toBeDefined();
    expect(new OutboxTransport().capacity).toBe(1000);
  });

  it('findRecent matches number + body since a time; keeps templates', async () => {
    let now = new Date('2025-01-01T00:00:00Z');
    const o = new OutboxTransport({ now: () => now });
    await o.send({
      to: '+8613800138000',
      body: 'a',
      notificationId: 'n1',
      template: { code: 'T1', params: { x: '1' } },
    });
    now = new Date('2025-01-01T00:01:00Z');
    const b = await o.send({ to: '+8613800138000', body: 'b', notificationId: 'n2' });
    const since = new Date('2025-01-01T00:00:30Z');
    expect(await o.findRecent({ to: '+8613800138000', body: 'a', since })).toBeUndefined();
    expect(await o.findRecent({ to: '+8613800138000', body: 'b', since })).toMatchObject({
      providerId: b.ok ? b.providerId : '',
    });
    expect(o.messages()[0]!.template).toEqual({ code: 'T1', params: { x: '1' } });
  });
});
