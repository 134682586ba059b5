import { beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.ts';
import type { RulesConfig } from './config.ts';
import { RuleHarness, household } from './harness.ts';
import { createHomeRules, InactivityRule, NotSeenRule } from './inactivity.ts';
import type { HouseholdInfo } from './types.ts';

const DEFAULTS: RulesConfig = loadConfig({ env: {} }).rules;
// the learned-threshold tests below are written for a 1 h floor; pin it so they test the method, not the default
const CONFIG: RulesConfig = { ...DEFAULTS, inactivity: { ...DEFAULTS.inactivity, minHours: 1 } };
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
/** the harness starts at Monday 2 March 2026, 00:00 Shanghai */
const T0 = Date.UTC(2026, 2, 1, 16, 0);
/** local time on day `d` (0 = Monday 2 March) */
const at = (d: number, hhmm: string) => {
  const [h, m] = hhmm.split(':').map(Number);
  return T0 + d * DAY + (h ?? 0) * HOUR + (m ?? 0) * MIN;
};

async function setup(opts: { households?: HouseholdInfo[]; config?: RulesConfig } = {}) {
  const home = createHomeRules({ isEntrance: (_d, id) => id.startsWith('door') });
  const households = opts.households ?? [household('h1'), household('h-red', { colour: 'red' })];
  const h = await new RuleHarness({ rules: home.rules, config: opts.config ?? CONFIG, households }).start();
  for (const hh of households) {
    h.addDevice(`pir-${hh.id}`, 'native-motion', { kind: 'household', householdId: hh.id });
    h.addDevice(`door-${hh.id}`, 'native-door-contact', { kind: 'household', householdId: hh.id });
    h.addDevice(`cup-${hh.id}`, 'native-door-contact', { kind: 'household', householdId: hh.id });
  }
  const alerts = (type = 'inactivity', hh = 'h1') => h.memory!.ofType(type).filter((a) => a.householdId === hh);
  /** a PIR motion period from 3 min before `ts` to `ts` (the sensor reports its end after a quiet hold) */
  const motion = async (ts: number, hh = 'h1') => {
    await h.reading(`pir-${hh}`, 'motion', true, ts - 3 * MIN);
    await h.reading(`pir-${hh}`, 'motion', false, ts);
  };
  /** the flat door opens and closes */
  const passage = async (ts: number, hh = 'h1') => {
    await h.reading(`door-${hh}`, 'contact_open', true, ts);
    await h.reading(`door-${hh}`, 'contact_open', false, ts + 20_000);
  };
  // every contact first reports its resting state
  for (const hh of households) {
    await h.reading(`door-${hh.id}`, 'contact_open', false, T0);
    await h.reading(`cup-${hh.id}`, 'contact_open', false, T0);
  }
  return { h, home, alerts, motion, passage };
}

describe('inactivity: cold start', () => {
  let s: Awaited<ReturnType<typeof setup>>;
  beforeEach(async () => {
    s = await setup();
  });

  it('fires after 3 h without activity by day, on time and with no further message', async () => {
    await s.motion(at(0, '09:00'));
    await s.h.advanceTo(at(0, '11:59'));
    expect(s.alerts()).toHaveLength(0);
    await s.h.advanceTo(at(0, '12:30'));
    const [a] = s.alerts();
    expect(a).toMatchObject({
      type: 'inactivity',
      severity: 'major',
      category: 'resident_safety',
      key: 'inactivity|household:h1',
      status: 'open',
      gridId: 'g-1',
      colour: 'yellow',
    });
    expect(a!.firstSeen).toBe(new Date(at(0, '12:00')).toISOString());
    expect(a!.summary).toContain('09:00');
    expect(a!.evidence[0]).toMatchObject({ deviceId: 'pir-h1', field: 'motion', ts: at(0, '09:00') });
  });

  it('a red household is alarmed sooner (2 h)', async () => {
    await s.motion(at(0, '09:00'), 'h-red');
    await s.h.advanceTo(at(0, '11:30'));
    expect(s.alerts('inactivity', 'h-red')[0]!.firstSeen).toBe(new Date(at(0, '11:00')).toISOString());
  });

  it('dedups: one alert per quiet spell, however long it lasts', async () => {
    await s.motion(at(0, '09:00'));
    await s.h.advanceTo(at(1, '20:00'));
    expect(s.alerts()).toHaveLength(1);
    expect(s.alerts()[0]!.count).toBe(1);
  });

  it('resolves on the next activity, with the reason on the timeline, and waits again from it', async () => {
    await s.motion(at(0, '09:00'));
    await s.h.advanceTo(at(0, '12:10'));
    await s.h.reading('cup-h1', 'contact_open', true, at(0, '12:20'));
    const [a] = s.alerts();
    expect(a!.status).toBe('resolved');
    expect(a!.outcome).toMatch(/activity at home again: contact_open on cup-h1 at 12:20/);
    expect(a!.timeline.at(-1)).toMatchObject({ action: 'resolved', by: 'system' });
    await s.h.advanceTo(at(0, '15:30'));
    expect(s.alerts()).toHaveLength(2);
    expect(s.alerts()[1]!.firstSeen).toBe(new Date(at(0, '15:20')).toISOString());
  });

  it('does not alarm at night; sleeping through and then nothing by 10:00 is detected', async () => {
    await s.motion(at(0, '23:30'));
    await s.h.advanceTo(at(1, '09:59'));
    expect(s.alerts()).toHaveLength(0);
    await s.h.advanceTo(at(1, '10:30'));
    expect(s.alerts()[0]!.firstSeen).toBe(new Date(at(1, '10:00')).toISOString());
  });

  it('an evening spell running into the night waits for the morning, and a morning activity keeps it quiet', async () => {
    await s.motion(at(0, '20:30'));
    await s.h.advanceTo(at(1, '07:50'));
    expect(s.alerts()).toHaveLength(0);
    await s.motion(at(1, '07:55'));
    await s.h.advanceTo(at(1, '10:30'));
    expect(s.alerts()).toHaveLength(0);
  });

  it('stays quiet while away (flat door, nothing inside after) and waits from the return', async () => {
    await s.motion(at(0, '09:00'));
    await s.passage(at(0, '09:10'));
    expect(s.home.tracker.isOut('h1')).toBe(true);
    await s.h.advanceTo(at(0, '20:00'));
    expect(s.alerts()).toHaveLength(0);
    await s.passage(at(0, '20:30')); // back
    expect(s.home.tracker.isOut('h1')).toBe(false);
    await s.h.advanceTo(at(1, '10:30'));
    // back at 20:30, nothing after: the night is not counted, 07:00 + 3 h
    expect(s.alerts()[0]!.firstSeen).toBe(new Date(at(1, '10:00')).toISOString());
  });

  it('a guest arriving and moving about is activity: home, and the wait restarts', async () => {
    await s.motion(at(0, '09:00'));
    await s.passage(at(0, '10:00')); // the door: someone came in or went out
    await s.motion(at(0, '10:05')); // someone is inside
    expect(s.home.tracker.isOut('h1')).toBe(false);
    await s.h.advanceTo(at(0, '13:00'));
    expect(s.alerts()).toHaveLength(0);
    await s.h.advanceTo(at(0, '13:10'));
    expect(s.alerts()[0]!.firstSeen).toBe(new Date(at(0, '13:05')).toISOString());
  });

  it('stays quiet during a staff-set away period and waits from its end', async () => {
    s.h.households.set('h1', household('h1', { away: [{ from: at(0, '10:00'), until: at(0, '16:00') }] }));
    await s.motion(at(0, '09:00'));
    await s.h.advanceTo(at(0, '18:59'));
    expect(s.alerts()).toHaveLength(0);
    await s.h.advanceTo(at(0, '19:10'));
    expect(s.alerts()[0]!.firstSeen).toBe(new Date(at(0, '19:00')).toISOString());
  });

  it('does not alarm while every activity sensor is offline; waits again once one is back', async () => {
    await s.motion(at(0, '09:00'));
    for (const d of ['pir-h1', 'door-h1', 'cup-h1']) await s.h.status(d, 'offline', 'timeout', at(0, '09:30'));
    await s.h.advanceTo(at(0, '15:00'));
    expect(s.alerts()).toHaveLength(0);
    await s.h.status('pir-h1', 'online', 'status_topic', at(0, '15:00'));
    await s.h.advanceTo(at(0, '18:10'));
    expect(s.alerts()[0]!.firstSeen).toBe(new Date(at(0, '18:00')).toISOString());
  });

  it('still alarms when only some sensors are dead', async () => {
    await s.motion(at(0, '09:00'));
    await s.h.status('cup-h1', 'offline', 'timeout', at(0, '09:30'));
    await s.h.advanceTo(at(0, '12:10'));
    expect(s.alerts()).toHaveLength(1);
  });

  it('leaves households that are not lone-elderly alone', async () => {
    const t = await setup({ households: [household('h1', { loneElderly: false })] });
    await t.motion(at(0, '09:00'));
    await t.h.advanceTo(at(3, '12:00'));
    expect(t.h.memory!.alerts).toHaveLength(0);
  });

  it('is switched off per household by config', async () => {
    const config = { ...CONFIG, households: { h1: { inactivity: { enabled: false } } } } as RulesConfig;
    const t = await setup({ config });
    await t.motion(at(0, '09:00'));
    await t.h.advanceTo(at(0, '15:00'));
    expect(t.alerts()).toHaveLength(0);
  });
});

/**
 * Synthetic routine: up at 07:30, busy until 13:00 (activity every 15 min), a nap until 15:30 (weekends until
 * 17:00), activity every 20 min until 21:30, bed at 23:00 (one last activity).
 */
async function routine(
  s: Awaited<ReturnType<typeof setup>>,
  days: number,
  hhs = ['h1'],
  lastDayUntil?: string,
  from = 0,
) {
  for (let d = from; d < days; d++) {
    const weekend = d % 7 >= 5;
    const times: number[] = [];
    for (let t = at(d, '07:30'); t <= at(d, '13:00'); t += 15 * MIN) times.push(t);
    for (let t = at(d, weekend ? '17:00' : '15:30'); t <= at(d, '21:30'); t += 20 * MIN) times.push(t);
    times.push(at(d, '23:00'));
    const until = d === days - 1 && lastDayUntil ? at(d, lastDayUntil) : Number.POSITIVE_INFINITY;
    for (const t of times) if (t <= until) for (const hh of hhs) await s.motion(t, hh);
  }
}

describe('inactivity: learned thresholds', () => {
  let s: Awaited<ReturnType<typeof setup>>;
  let rule: InactivityRule;
  const DAYS = 15; // two weeks of routine, then day 15 (a Tuesday) is measured
  beforeEach(async () => {
    s = await setup();
    rule = s.home.inactivity;
    await routine(s, DAYS, ['h1', 'h-red']);
    // the fixed cold-start thresholds (3 h, red 2 h) alarm on the naps of the first week; once learned, never
    const learned = s.h.memory!.alerts.filter((a) => Date.parse(a.firstSeen) >= at(7, '07:30'));
    expect(learned).toHaveLength(0);
    expect(s.h.memory!.alerts.length).toBeGreaterThan(0);
  });
  /** inactivity alerts of h1 raised on the measured days */
  const fresh = () => s.alerts().filter((a) => Date.parse(a.firstSeen) >= at(DAYS, '00:00'));

  it('a busy slot gets a short threshold: quiet from 09:00 is alarmed at 10:00 (minHours)', async () => {
    await routine(s, DAYS + 1, ['h1'], '09:00', DAYS); // day 15 as usual until 09:00, then nothing
    await s.h.advanceTo(at(DAYS, '09:59'));
    expect(fresh()).toHaveLength(0);
    await s.h.advanceTo(at(DAYS, '10:30'));
    expect(fresh()).toHaveLength(1);
    expect(fresh()[0]!.firstSeen).toBe(new Date(at(DAYS, '10:00')).toISOString());
    expect(fresh()[0]!.evidence.at(-1)!.note).toMatch(/learned/);
  });

  it('the nap slot gets a longer one: the nap times the margin', () => {
    const d = rule.deadline('h1', at(DAYS, '13:00'), s.h.engine.ctx);
    expect(d.how).toBe('learned');
    expect(d.thresholdMs).toBeGreaterThan(2.5 * HOUR * 1.25);
    expect(d.thresholdMs).toBeLessThan(2.5 * HOUR * 1.35);
    const busy = rule.deadline('h1', at(DAYS, '10:00'), s.h.engine.ctx);
    expect(busy.thresholdMs).toBe(1 * HOUR);
  });

  it('weekdays and rest days are learned apart (the weekend nap is longer)', () => {
    const saturday = at(19, '13:00'); // day 19 is a Saturday
    const weekday = rule.deadline('h1', at(DAYS, '13:00'), s.h.engine.ctx).thresholdMs;
    const rest = rule.deadline('h1', saturday, s.h.engine.ctx).thresholdMs;
    expect(rest).toBeGreaterThan(4 * HOUR * 1.25);
    expect(rest).toBeGreaterThan(weekday);
  });

  it('a red household has a shorter threshold (margin 1.1)', () => {
    const yellow = rule.deadline('h1', at(DAYS, '13:00'), s.h.engine.ctx).thresholdMs;
    const red = rule.deadline('h-red', at(DAYS, '13:00'), s.h.engine.ctx).thresholdMs;
    expect(red).toBeLessThan(yellow);
    // the nap: from the end of the 13:00 motion to the start of the next (3 min before 15:30)
    // (spells are stored on a log scale in 3 % steps)
    expect(Math.abs(red / ((2.5 * HOUR - 3 * MIN) * 1.1) - 1)).toBeLessThan(0.02);
  });

  it('after a night, the usual wake-up time plus margin: up by 07:30 → alarm at 08:00 (minHours 1 h)', async () => {
    // bed as usual on day 14 at 23:00, then nothing
    await s.h.advanceTo(at(DAYS, '07:59'));
    expect(fresh()).toHaveLength(0);
    await s.h.advanceTo(at(DAYS, '08:30'));
    expect(fresh()[0]!.firstSeen).toBe(new Date(at(DAYS, '08:00')).toISOString());
  });

  it('nothing since the evening and all night, which this resident never does: alarmed at dayStart', async () => {
    await routine(s, DAYS + 1, ['h1'], '21:30', DAYS); // day 15 as usual until 21:30, no bedtime
    await s.h.advanceTo(at(DAYS + 1, '06:59'));
    expect(fresh()).toHaveLength(0);
    await s.h.advanceTo(at(DAYS + 1, '07:30'));
    expect(fresh()[0]!.firstSeen).toBe(new Date(at(DAYS + 1, '07:00')).toISOString());
  });

  it('keeps what it learned across a restart (snapshot → JSON → restore)', async () => {
    const saved = JSON.parse(JSON.stringify(rule.snapshot())) as unknown;
    expect(JSON.stringify(saved).length).toBeLessThan(8_000); // two households
    const fresh = createHomeRules({ isEntrance: (_d, id) => id.startsWith('door') });
    fresh.inactivity.restore(saved);
    for (const t of [at(DAYS, '09:00'), at(DAYS, '13:00'), at(DAYS, '23:00'), at(19, '13:00')]) {
      expect(fresh.inactivity.deadline('h1', t, s.h.engine.ctx)).toEqual(rule.deadline('h1', t, s.h.engine.ctx));
    }
    expect(fresh.tracker.house('h1')).toEqual(s.home.tracker.house('h1'));
  });
});

describe('inactivity: up before dayStart', () => {
  it('a resident already moving at 07:00 every morning has a wake-up time of 0 (threshold minHours, not 3 h)', async () => {
    const s = await setup();
    for (let d = 0; d < 10; d++) {
      await s.h.reading('pir-h1', 'motion', true, at(d, '06:40')); // up at 06:40, moving without pause until 07:20
      await s.h.reading('pir-h1', 'motion', false, at(d, '07:20'));
      for (const hhmm of ['08:00', '09:00', '10:00', '11:00', '12:00', '13:00', '14:00', '15:00', '16:00']) {
        await s.motion(at(d, hhmm));
      }
      await s.motion(at(d, '17:00'));
      await s.motion(at(d, '22:30'));
    }
    const rule = s.home.inactivity;
    const d = rule.deadline('h1', at(10, '00:30'), s.h.engine.ctx);
    expect(d).toMatchObject({ morning: true, how: 'learned', thresholdMs: 1 * HOUR, at: at(10, '08:00') });
  });
});

describe('not seen for days', () => {
  it('fires after 48 h without any sign, also while away, and resolves on the next sign', async () => {
    const s = await setup();
    await s.motion(at(0, '09:00'));
    await s.passage(at(0, '09:10')); // went out and never came back
    await s.h.advanceTo(at(2, '09:09'));
    expect(s.alerts('not_seen')).toHaveLength(0);
    await s.h.advanceTo(at(2, '10:00'));
    const [a] = s.alerts('not_seen');
    expect(a).toMatchObject({ type: 'not_seen', severity: 'major', key: 'not_seen|household:h1' });
    // the second change of the passage (door closing at 09:10:20) is the last sign
    expect(a!.firstSeen).toBe(new Date(at(0, '09:10') + 20_000 + 48 * HOUR).toISOString());
    expect(a!.summary).toMatch(/went out and has not come back/);
    expect(s.alerts('inactivity')).toHaveLength(0);
    await s.h.advanceTo(at(4, '10:00'));
    expect(s.alerts('not_seen')).toHaveLength(1); // dedup
    await s.passage(at(4, '11:00'));
    expect(s.alerts('not_seen')[0]!.status).toBe('resolved');
    expect(s.alerts('not_seen')[0]!.outcome).toMatch(/resident seen again/);
  });

  it('waits for the end of a staff-set away period', async () => {
    const s = await setup();
    s.h.households.set('h1', household('h1', { away: [{ from: at(0, '10:00'), until: at(5, '10:00') }] }));
    await s.motion(at(0, '09:00'));
    await s.h.advanceTo(at(7, '09:00'));
    expect(s.alerts('not_seen')).toHaveLength(0);
    await s.h.advanceTo(at(7, '11:00'));
    expect(s.alerts('not_seen')[0]!.firstSeen).toBe(new Date(at(7, '10:00')).toISOString());
  });

  it('uses timer keys of its own', () => {
    expect(NotSeenRule.timerKey('h1')).toBe('not_seen|h1');
    expect(InactivityRule.timerKey('h1')).toBe('inactivity|h1');
  });
});

describe('inactivity: drill devices', () => {
  it('a drill device in a real home neither delays nor relabels the real alarm', async () => {
    const s = await setup();
    s.h.addDevice('drill-pir-h1', 'native-motion', { kind: 'household', householdId: 'h1' }, { drill: true });
    await s.motion(at(0, '09:00'));
    // a drill's motion an hour later must not count as the resident moving
    await s.h.reading('drill-pir-h1', 'motion', true, at(0, '10:00'));
    await s.h.advanceTo(at(0, '12:30'));
    const [alert] = s.alerts();
    expect(alert).toMatchObject({ drill: false, status: 'open' });
    expect(Date.parse(alert!.firstSeen)).toBeLessThanOrEqual(at(0, '12:00') + 60_000);
    // and real activity resolves it
    await s.motion(at(0, '13:00'));
    expect(s.alerts()[0]!.status).toBe('resolved');
  });
});

describe('inactivity: which door is the entrance', () => {
  it('with several door contacts and no entrance named, a cupboard door is not taken for leaving home', async () => {
    const home = createHomeRules();
    const h = await new RuleHarness({ rules: home.rules, config: CONFIG, households: [household('h1')] }).start();
    h.addDevice('pir', 'native-motion', { kind: 'household', householdId: 'h1' });
    h.addDevice('door', 'native-door-contact', { kind: 'household', householdId: 'h1' });
    h.addDevice('fridge', 'native-door-contact', { kind: 'household', householdId: 'h1' });
    await h.reading('door', 'contact_open', false, T0);
    await h.reading('fridge', 'contact_open', false, T0);
    await h.reading('pir', 'motion', true, at(0, '08:57'));
    await h.reading('pir', 'motion', false, at(0, '09:00'));
    // the resident opens the fridge, then collapses
    await h.reading('fridge', 'contact_open', true, at(0, '09:05'));
    await h.reading('fridge', 'contact_open', false, at(0, '09:06'));
    await h.advanceTo(at(0, '13:00'));
    expect(h.memory!.ofType('inactivity')).toHaveLength(1);
  });

  it('a household with one door contact: that is its entrance, and leaving through it is away, not inactive', async () => {
    const home = createHomeRules();
    const h = await new RuleHarness({ rules: home.rules, config: CONFIG, households: [household('h1')] }).start();
    h.addDevice('pir', 'native-motion', { kind: 'household', householdId: 'h1' });
    h.addDevice('door', 'native-door-contact', { kind: 'household', householdId: 'h1' });
    await h.reading('door', 'contact_open', false, T0);
    await h.reading('pir', 'motion', true, at(0, '08:57'));
    await h.reading('pir', 'motion', false, at(0, '09:00'));
    await h.reading('door', 'contact_open', true, at(0, '09:05'));
    await h.reading('door', 'contact_open', false, at(0, '09:06'));
    await h.advanceTo(at(0, '16:00'));
    expect(h.memory!.ofType('inactivity')).toHaveLength(0);
  });
});
