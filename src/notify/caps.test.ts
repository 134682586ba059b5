import { beforeEach, describe, expect, it } from 'vitest';
import { Value } from 'typebox/value';
import type { Severity } from '../alerts/types.ts';
import { VirtualClock } from '../clock/clock.ts';
import { type GateMessage, RecipientGate, SMS_CAPS_DEFAULTS, SmsCapsSchema } from './caps.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
const A = '+8613800000001';
const B = '+8613800000002';

let clock: VirtualClock;
let gate: RecipientGate;
let seq = 0;

function msg(over: Partial<GateMessage> = {}): GateMessage {
  seq++;
  return {
    recipient: A,
    body: `body ${seq}`,
    alertId: `alert-${seq}`,
    severity: 'major' as Severity,
    firstForAlertToRecipient: true,
    drill: false,
    ...over,
  };
}

beforeEach(() => {
  clock = new VirtualClock();
  gate = new RecipientGate(clock);
  seq = 0;
});

describe('RecipientGate', () => {
  it('sends a first message at once', () => {
    expect(gate.decide(msg())).toEqual({ action: 'send' });
  });

  it('drops identical text to the same number within the dedup window, not after it', () => {
    expect(gate.decide(msg({ body: 'same' })).action).toBe('send');
    clock.advance(3 * MIN);
    expect(gate.decide(msg({ body: 'same' }))).toEqual({ action: 'drop', reason: 'duplicate_text' });
    // another number is not affected
    expect(gate.decide(msg({ body: 'same', recipient: B })).action).toBe('send');
    clock.advance(23 * HOUR);
    expect(gate.decide(msg({ body: 'same' }))).toEqual({ action: 'drop', reason: 'duplicate_text' });
    clock.advance(HOUR);
    expect(gate.decide(msg({ body: 'same' })).action).toBe('send');
  });

  it('dedup window is configurable', () => {
    gate = new RecipientGate(clock, { dedupWindowMs: 10 * MIN });
    expect(gate.decide(msg({ body: 'x' })).action).toBe('send');
    clock.advance(9 * MIN);
    expect(gate.decide(msg({ body: 'x' })).action).toBe('drop');
    clock.advance(MIN);
    expect(gate.decide(msg({ body: 'x' })).action).toBe('send');
  });

  it('caps messages per recipient over a rolling day (default 10)', () => {
    for (let i = 0; i < 10; i++) {
      expect(gate.decide(msg()).action).toBe('send');
      clock.advance(10 * MIN);
    }
    expect(gate.decide(msg())).toEqual({ action: 'drop', reason: 'daily_cap' });
    expect(gate.sentInWindow(A, false)).toBe(10);
    expect(gate.decide(msg({ recipient: B })).action).toBe('send');
    // the first send leaves the window 24 h after it was made
    clock.advance(24 * HOUR - 100 * MIN);
    expect(gate.decide(msg()).action).toBe('send');
    expect(gate.decide(msg())).toEqual({ action: 'drop', reason: 'daily_cap' }); // 9 older ones + this one
  });

  it('daily cap is configurable', () => {
    gate = new RecipientGate(clock, { dailyCap: 3 });
    for (let i = 0; i < 3; i++) {
      expect(gate.decide(msg()).action).toBe('send');
      clock.advance(5 * MIN);
    }
    expect(gate.decide(msg())).toEqual({ action: 'drop', reason: 'daily_cap' });
  });

  it('bundles several messages within 2 min of a send into one, released when the window ends', () => {
    const t0 = clock.now();
    expect(gate.decide(msg()).action).toBe('send');
    clock.advance(30_000);
    expect(gate.decide(msg({ alertId: 'b1', body: 'one' }))).toEqual({ action: 'bundle', until: t0 + 2 * MIN });
    clock.advance(30_000);
    expect(gate.decide(msg({ alertId: 'b2', body: 'two' }))).toEqual({ action: 'bundle', until: t0 + 2 * MIN });
    // another person is not bundled with A
    expect(gate.decide(msg({ recipient: B })).action).toBe('send');
    expect(gate.bundleDue()).toEqual([]);
    expect(gate.nextBundleDue()).toBe(t0 + 2 * MIN);
    clock.advance(MIN);
    expect(gate.bundleDue()).toEqual([{ recipient: A, drill: false, until: t0 + 2 * MIN, size: 2 }]);
    const taken = gate.takeBundle(A, false);
    expect(taken.map((m) => m.alertId)).toEqual(['b1', 'b2']);
    expect(gate.takeBundle(A, false)).toEqual([]);
    expect(gate.bundleDue()).toEqual([]);
    // the bundle counted as one SMS; the next message within 2 min of it waits again
    expect(gate.sentInWindow(A, false)).toBe(2);
    clock.advance(MIN);
    expect(gate.decide(msg())).toEqual({ action: 'bundle', until: clock.now() + MIN });
    // the bundled texts count for dedup
    expect(gate.decide(msg({ body: 'one' }))).toEqual({ action: 'drop', reason: 'duplicate_text' });
  });

  it('identical text already waiting in a bundle is a duplicate', () => {
    gate.decide(msg());
    expect(gate.decide(msg({ body: 'dup' })).action).toBe('bundle');
    expect(gate.decide(msg({ body: 'dup' }))).toEqual({ action: 'drop', reason: 'duplicate_text' });
  });

  it('bundle window is configurable, and 0 disables bundling', () => {
    gate = new RecipientGate(clock, { bundleWindowMs: 5 * MIN });
    gate.decide(msg());
    clock.advance(4 * MIN);
    expect(gate.decide(msg()).action).toBe('bundle');
    gate = new RecipientGate(clock, { bundleWindowMs: 0 });
    expect(gate.decide(msg()).action).toBe('send');
    expect(gate.decide(msg()).action).toBe('send');
  });

  it('a message after the window goes at once', () => {
    gate.decide(msg());
    clock.advance(2 * MIN);
    expect(gate.decide(msg()).action).toBe('send');
  });

  it('joining a pending bundle is allowed at the cap: the bundle is one SMS', () => {
    gate = new RecipientGate(clock, { dailyCap: 2 });
    gate.decide(msg());
    expect(gate.decide(msg()).action).toBe('bundle'); // count 1 + bundle = 2
    expect(gate.decide(msg()).action).toBe('bundle');
    clock.advance(2 * MIN);
    expect(gate.takeBundle(A, false)).toHaveLength(2);
    expect(gate.decide(msg())).toEqual({ action: 'drop', reason: 'daily_cap' });
  });

  describe('the first SMS of a critical alert to each recipient', () => {
    it('is never capped', () => {
      gate = new RecipientGate(clock, { dailyCap: 2 });
      gate.decide(msg());
      clock.advance(5 * MIN);
      gate.decide(msg());
      clock.advance(5 * MIN);
      expect(gate.decide(msg())).toEqual({ action: 'drop', reason: 'daily_cap' });
      expect(gate.decide(msg({ severity: 'critical' }))).toEqual({ action: 'send' });
      expect(gate.decide(msg({ severity: 'critical' }))).toEqual({ action: 'send' });
      // but repeats of a critical alert to the same person are capped
      expect(gate.decide(msg({ severity: 'critical', firstForAlertToRecipient: false }))).toEqual({
        action: 'drop',
        reason: 'daily_cap',
      });
    });

    it('is never bundled or delayed', () => {
      gate.decide(msg());
      clock.advance(10_000);
      expect(gate.decide(msg()).action).toBe('bundle');
      expect(gate.decide(msg({ severity: 'critical' }))).toEqual({ action: 'send' });
      expect(gate.decide(msg({ severity: 'critical', firstForAlertToRecipient: false })).action).toBe('bundle');
    });

    it('is never deduplicated, and it counts towards the cap', () => {
      gate.decide(msg({ body: 'same' }));
      expect(gate.decide(msg({ body: 'same', severity: 'critical' }))).toEqual({ action: 'send' });
      expect(gate.sentInWindow(A, false)).toBe(2);
    });

    it('a major alert first to the recipient gets no exemption', () => {
      gate.decide(msg());
      expect(gate.decide(msg({ severity: 'major', firstForAlertToRecipient: true })).action).toBe('bundle');
    });
  });

  it('drill and real messages never share a bundle or a cap', () => {
    gate = new RecipientGate(clock, { dailyCap: 2 });
    // real traffic to A reaches its cap
    gate.decide(msg());
    clock.advance(3 * MIN);
    gate.decide(msg());
    clock.advance(3 * MIN);
    expect(gate.decide(msg()).action).toBe('drop');
    // drill traffic to the same number has its own counter
    expect(gate.decide(msg({ drill: true })).action).toBe('send');
    // and its own bundle
    expect(gate.decide(msg({ drill: true, alertId: 'd1' })).action).toBe('bundle');
    clock.advance(MIN);
    expect(gate.decide(msg({ alertId: 'r1' })).action).toBe('drop'); // real still capped, not joining the drill bundle
    gate = new RecipientGate(clock);
    gate.decide(msg());
    gate.decide(msg({ drill: true }));
    expect(gate.decide(msg({ alertId: 'r', body: 'r' })).action).toBe('bundle');
    expect(gate.decide(msg({ alertId: 'd', body: 'd', drill: true })).action).toBe('bundle');
    clock.advance(2 * MIN);
    expect(gate.bundleDue().map((b) => [b.drill, b.size])).toEqual([
      [false, 1],
      [true, 1],
    ]);
    expect(gate.takeBundle(A, true).map((m) => m.alertId)).toEqual(['d']);
    expect(gate.takeBundle(A, false).map((m) => m.alertId)).toEqual(['r']);
    // a drill's text does not dedup a real message
    gate = new RecipientGate(clock);
    gate.decide(msg({ body: 'x', drill: true }));
    clock.advance(5 * MIN);
    expect(gate.decide(msg({ body: 'x' })).action).toBe('send');
  });

  it('prunes old entries: memory stays bounded', () => {
    for (let i = 0; i < 500; i++) gate.decide(msg({ recipient: `+86139${String(i).padStart(8, '0')}` }));
    expect(gate.stats().recipients).toBe(500);
    clock.advance(25 * HOUR);
    gate.decide(msg({ recipient: B }));
    expect(gate.stats()).toEqual({ recipients: 1, texts: 1, sends: 1, bundles: 0 });
    // pending bundles survive pruning
    gate.decide(msg({ recipient: B }));
    gate.prune(clock.now() + 25 * HOUR);
    expect(gate.stats().bundles).toBe(1);
  });

  it('bounds recipients (LRU, never losing a pending bundle) and texts per recipient', () => {
    gate = new RecipientGate(clock, { maxRecipients: 10, maxTextsPerRecipient: 5, bundleWindowMs: 0, dailyCap: 1000 });
    for (let i = 0; i < 50; i++) gate.decide(msg({ recipient: `r${i}` }));
    expect(gate.stats().recipients).toBeLessThanOrEqual(11);
    for (let i = 0; i < 40; i++) gate.decide(msg({ recipient: A }));
    expect(gate.stats().texts).toBeLessThanOrEqual(11 * 5);
    // a flood of critical firsts to one number keeps only a bounded history
    for (let i = 0; i < 3000; i++) gate.decide(msg({ recipient: B, severity: 'critical' }));
    expect(gate.stats().sends).toBeLessThan(3000);
  });

  it('settings schema: defaults validate, bad values do not', () => {
    expect(Value.Check(SmsCapsSchema, SMS_CAPS_DEFAULTS)).toBe(true);
    expect(Value.Check(SmsCapsSchema, { ...SMS_CAPS_DEFAULTS, dailyCap: 0 })).toBe(false);
    expect(Value.Check(SmsCapsSchema, { ...SMS_CAPS_DEFAULTS, extra: 1 })).toBe(false);
    expect(gate.settings).toEqual(SMS_CAPS_DEFAULTS);
    expect(SMS_CAPS_DEFAULTS).toMatchObject({ dedupWindowMs: 24 * HOUR, dailyCap: 10, bundleWindowMs: 2 * MIN });
  });

  it('uses the message ts when given', () => {
    gate.decide(msg({ ts: clock.now() }));
    expect(gate.decide(msg({ ts: clock.now() + 3 * MIN })).action).toBe('send');
  });
});
