import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.ts';
import type { RulesConfig } from './config.ts';
import { household, RuleHarness } from './harness.ts';
import { NightExitRule } from './night-exit.ts';

const root = path.resolve(import.meta.dirname, '../..');
const S = 1000;
const MIN = 60 * S;
const HOUR = 60 * MIN;
/** The harness starts at 2026-03-02 00:00 in Shanghai. */
const MIDNIGHT = Date.UTC(2026, 2, 1, 16, 0);

function config(): RulesConfig {
  const c = structuredClone(loadConfig({ env: {}, cwd: root }).rules);
  c.nightExit = { enabled: true, start: '22:00', end: '06:00', returnMinutes: 15 };
  return c;
}

async function setup(cfg = config()) {
  const h = new RuleHarness({
    rules: [new NightExitRule()],
    config: cfg,
    households: [
      household('h-1', { atRisk: true, loneElderly: true, colour: 'red' }),
      household('h-2', { atRisk: false, loneElderly: true }),
      household('h-3', { atRisk: true, loneElderly: true, buildingId: 'b-2', unitId: 'u-2-1' }),
      household('h-4', { atRisk: true, loneElderly: false }),
    ],
  });
  await h.start();
  for (const id of ['h-1', 'h-2', 'h-3', 'h-4']) {
    h.addDevice(`dc-${id}`, 'native-door-contact', { kind: 'household', householdId: id });
    h.addDevice(`pir-${id}`, 'native-motion', { kind: 'household', householdId: id });
  }
  h.addDevice('door-b1', 'native-door-access', { kind: 'building', buildingId: 'b-1' });
  h.addDevice('door-b2', 'native-door-access', { kind: 'building', buildingId: 'b-2' });
  return { h, alerts: h.memory! };
}

const out = (personId?: string) =>
  ({
    type: 'door_access',
    direction: 'out',
    method: 'card',
    granted: true,
    ...(personId ? { personId } : {}),
  }) as const;
const inn = (personId?: string) =>
  ({ type: 'door_access', direction: 'in', method: 'card', granted: true, ...(personId ? { personId } : {}) }) as const;

describe('NightExitRule', () => {
  it('raises critical on time when a linked at-risk resident does not come back, without further messages', async () => {
    const { h, alerts } = await setup();
    const t = MIDNIGHT + HOUR; // 01:00
    await h.reading('dc-h-1', 'contact_open', true, t);
    await h.reading('dc-h-1', 'contact_open', false, t + 10 * S);
    await h.event('door-b1', out('p-1'), t + 2 * MIN);
    expect(h.scheduler.get('nightExit|h-1')?.at).toBe(t + 17 * MIN);
    await h.advance(15 * MIN - S);
    expect(alerts.alerts).toHaveLength(0);
    await h.advance(S);
    const [a] = alerts.alerts;
    expect(a).toMatchObject({
      type: 'night_exit',
      severity: 'critical',
      category: 'resident_safety',
      key: 'night_exit|household:h-1',
      householdId: 'h-1',
      buildingId: 'b-1',
      colour: 'red',
      drill: false,
      firstSeen: new Date(t + 17 * MIN).toISOString(),
    });
    expect(a!.evidence.map((e) => e.kind)).toEqual(['reading', 'event', 'rule']);
    expect(a!.evidence[1]).toMatchObject({ ts: t + 2 * MIN, deviceId: 'door-b1', value: 'out' });
    await h.advance(2 * HOUR);
    expect(alerts.alerts).toHaveLength(1); // the wait fires once
  });

  it('stays quiet when the same person comes back in through the building door in time', async () => {
    const { h, alerts } = await setup();
    const t = MIDNIGHT + HOUR;
    await h.reading('dc-h-1', 'contact_open', true, t);
    await h.event('door-b1', out('p-1'), t + MIN);
    await h.event('door-b1', inn('p-9'), t + 5 * MIN); // someone else: still waiting
    expect(h.scheduler.get('nightExit|h-1')).toBeDefined();
    await h.event('door-b1', inn('p-1'), t + 10 * MIN);
    expect(h.scheduler.get('nightExit|h-1')).toBeUndefined();
    await h.advance(HOUR);
    expect(alerts.alerts).toHaveLength(0);
  });

  it('stays quiet when there is activity in the home before the deadline', async () => {
    const { h, alerts } = await setup();
    const t = MIDNIGHT + 2 * HOUR;
    await h.reading('dc-h-1', 'contact_open', true, t);
    await h.event('door-b1', out(), t + MIN);
    await h.reading('pir-h-1', 'motion', false, t + 2 * MIN); // not activity
    expect(h.scheduler.get('nightExit|h-1')).toBeDefined();
    await h.reading('pir-h-1', 'motion', true, t + 8 * MIN);
    await h.advance(HOUR);
    expect(alerts.alerts).toHaveLength(0);
  });

  it('an anonymous exit is ended by anyone coming in', async () => {
    const { h, alerts } = await setup();
    const t = MIDNIGHT + HOUR;
    await h.reading('dc-h-1', 'contact_open', true, t);
    await h.event('door-b1', out(), t + MIN);
    await h.event('door-b1', inn('p-7'), t + 4 * MIN);
    await h.advance(HOUR);
    expect(alerts.alerts).toHaveLength(0);
  });

  it('does nothing by day, without a flat-door opening, for homes not at risk, or for another building', async () => {
    const { h, alerts } = await setup();
    const day = MIDNIGHT + 10 * HOUR; // 10:00
    await h.reading('dc-h-1', 'contact_open', true, day);
    await h.event('door-b1', out(), day + MIN);
    // night, but the flat door opened too long before (20 min)
    const night = MIDNIGHT + 23 * HOUR;
    await h.reading('dc-h-1', 'contact_open', true, night);
    await h.event('door-b1', out(), night + 20 * MIN);
    // not at risk
    await h.reading('dc-h-2', 'contact_open', true, night + HOUR);
    await h.event('door-b1', out(), night + HOUR + MIN);
    // at risk, but in building b-2: a b-1 exit says nothing about it
    await h.reading('dc-h-3', 'contact_open', true, night + 2 * HOUR);
    await h.event('door-b1', out(), night + 2 * HOUR + MIN);
    // a denied exit is not an exit
    await h.reading('dc-h-1', 'contact_open', true, night + 3 * HOUR);
    await h.event('door-b1', { ...out(), granted: false }, night + 3 * HOUR + MIN);
    await h.advance(3 * HOUR);
    expect(h.scheduler.size).toBe(0);
    expect(alerts.alerts).toHaveLength(0);
  });

  it('covers an at-risk resident who does not live alone: others moving at home is no return, the flat door is', async () => {
    const { h, alerts } = await setup();
    const t = MIDNIGHT + 2 * HOUR; // 02:00
    await h.reading('dc-h-4', 'contact_open', true, t);
    await h.event('door-b1', out(), t + MIN);
    // the spouse walks about at home: says nothing about the resident outside
    await h.reading('pir-h-4', 'motion', true, t + 5 * MIN);
    await h.advance(16 * MIN);
    expect(alerts.ofType('night_exit').map((a) => [a.householdId, a.status])).toEqual([['h-4', 'open']]);
    // the flat door opens: someone came in; the alert clears
    await h.reading('dc-h-4', 'contact_open', true, t + 30 * MIN);
    expect(alerts.ofType('night_exit')[0]!.status).toBe('resolved');

    // another night: the resident comes back within the wait through the flat door, nothing is raised
    const n2 = t + 24 * HOUR;
    await h.reading('dc-h-4', 'contact_open', true, n2);
    await h.event('door-b1', out(), n2 + MIN);
    await h.reading('dc-h-4', 'contact_open', true, n2 + 8 * MIN);
    await h.advance(30 * MIN);
    expect(alerts.ofType('night_exit')).toHaveLength(1);
  });

  it('honours a household override of the night window', async () => {
    const cfg = config();
    cfg.households = { 'h-1': { nightExit: { start: '20:00', end: '07:00' } } };
    const { h, alerts } = await setup(cfg);
    const t = MIDNIGHT + 20 * HOUR + 30 * MIN; // 20:30
    await h.reading('dc-h-1', 'contact_open', true, t);
    await h.event('door-b1', out(), t + MIN);
    await h.advance(HOUR);
    expect(alerts.alerts.map((a) => a.householdId)).toEqual(['h-1']);
  });

  it('resolves by itself when the household shows activity again', async () => {
    const { h, alerts } = await setup();
    const t = MIDNIGHT + HOUR;
    await h.reading('dc-h-1', 'contact_open', true, t);
    await h.event('door-b1', out('p-1'), t + MIN);
    await h.advance(20 * MIN);
    const a = alerts.active('night_exit|household:h-1')!;
    expect(a.status).toBe('open');
    await h.reading('pir-h-2', 'motion', true, t + 40 * MIN); // another home: nothing
    expect(a.status).toBe('open');
    await h.reading('dc-h-1', 'contact_open', true, t + 45 * MIN);
    expect(a.status).toBe('resolved');
    expect(a.outcome).toMatch(/back home/);
  });

  it('resolves by itself when the same named person comes back in', async () => {
    const { h, alerts } = await setup();
    const t = MIDNIGHT + HOUR;
    await h.reading('dc-h-1', 'contact_open', true, t);
    await h.event('door-b1', out('p-1'), t + MIN);
    await h.advance(20 * MIN);
    await h.event('door-b1', inn('p-1'), t + 30 * MIN);
    expect(alerts.ofType('night_exit')[0]!.status).toBe('resolved');
  });

  it('a drill door makes a drill alert; a real one does not', async () => {
    const { h, alerts } = await setup();
    h.addDevice('drill-door-b2', 'native-door-access', { kind: 'building', buildingId: 'b-2' }, { drill: true });
    const t = MIDNIGHT + HOUR;
    await h.reading('dc-h-3', 'contact_open', true, t);
    await h.event('drill-door-b2', out(), t + MIN);
    await h.reading('dc-h-1', 'contact_open', true, t);
    await h.event('door-b1', out(), t + 2 * MIN);
    await h.advance(HOUR);
    expect(alerts.active('night_exit|household:h-3|drill')!.drill).toBe(true);
    expect(alerts.active('night_exit|household:h-1')!.drill).toBe(false);
  });

  it('keeps its waits across a snapshot and restore (activity still cancels, the deadline still fires once)', async () => {
    const { h, alerts } = await setup();
    const rule = h.engine.rule<NightExitRule>('nightExit')!;
    const t = MIDNIGHT + HOUR;
    await h.reading('dc-h-1', 'contact_open', true, t);
    await h.event('door-b1', out('p-1'), t + MIN);
    await h.reading('dc-h-3', 'contact_open', true, t);
    await h.event('door-b2', out(), t + MIN);
    const snap = JSON.parse(JSON.stringify(rule.snapshot()));
    rule.restore({});
    rule.restore(snap);
    await h.reading('pir-h-1', 'motion', true, t + 5 * MIN);
    await h.advance(HOUR);
    expect(alerts.alerts.map((a) => [a.householdId, a.count])).toEqual([['h-3', 1]]);
  });
});
