import { beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.ts';
import type { CanonicalEvent, TelemetryField } from '../contracts/canonical.ts';
import type { DeviceEventRecord, Reading } from '../ingest/types.ts';
import { ActivityTracker, type ActivityNote, DEBOUNCE_MS } from './activity.ts';
import { RuleHarness, household } from './harness.ts';
import type { RuleContext } from './types.ts';

const CONFIG = loadConfig({ env: {} }).rules;
const MIN = 60_000;
const T0 = Date.UTC(2026, 2, 2, 1, 0); // Monday 09:00 Shanghai

describe('ActivityTracker', () => {
  let h: RuleHarness;
  let ctx: RuleContext;
  let tracker: ActivityTracker;
  let person: Map<string, string>;

  beforeEach(async () => {
    h = await new RuleHarness({ rules: [], config: CONFIG, households: [household('h1'), household('h2')] }).start();
    ctx = h.engine.ctx;
    person = new Map([['card-1', 'h1']]);
    tracker = new ActivityTracker({
      isEntrance: (_d, id) => id === 'door',
      householdOfPerson: (p) => person.get(p),
    });
    const inH1 = { kind: 'household', householdId: 'h1' } as const;
    h.addDevice('pir', 'native-motion', inH1);
    h.addDevice('door', 'native-door-contact', inH1);
    h.addDevice('fridge-door', 'native-door-contact', inH1);
    h.addDevice('wm', 'native-water-meter', inH1);
    h.addDevice('gm', 'native-gas-meter', inH1);
    h.addDevice('em', 'native-electricity-meter', inH1);
    h.addDevice('band', 'native-wristband', inH1);
    h.addDevice('gate', 'native-door-access', { kind: 'building', buildingId: 'b-1' });
  });

  const read = (deviceId: string, field: TelemetryField, value: number | boolean, ts: number): ActivityNote[] => {
    const d = h.devices.get(deviceId)!;
    const r: Reading = { deviceId, model: d.model, field, ts, value, placement: d.placement, drill: false };
    return [...tracker.readings([r], ctx)];
  };
  const event = (deviceId: string, ev: CanonicalEvent, ts: number): ActivityNote[] => {
    const d = h.devices.get(deviceId)!;
    const e: DeviceEventRecord = {
      deviceId,
      model: d.model,
      ts,
      receivedAt: ts,
      event: ev,
      placement: d.placement,
      drill: false,
    };
    return [...tracker.event(e, ctx)];
  };
  const isActivity = (notes: ActivityNote[]) => notes.some((n) => n.activity);

  it('motion: a new true is motion now; the end of a motion period is motion just before; false again is nothing', () => {
    expect(read('pir', 'motion', true, T0)[0]).toMatchObject({ activity: true, inHome: true, householdId: 'h1' });
    expect(read('pir', 'motion', true, T0 + MIN)[0]).toMatchObject({ activity: true, since: T0 }); // heartbeat
    expect(read('pir', 'motion', false, T0 + 4 * MIN)[0]).toMatchObject({ activity: true, since: T0 });
    expect(isActivity(read('pir', 'motion', false, T0 + 60 * MIN))).toBe(false); // heartbeat of the quiet state
    expect(tracker.house('h1')!.last).toBe(T0 + 4 * MIN);
  });

  it("the PIR's hold after the resident left does not bring them back", () => {
    read('door', 'contact_open', false, T0 - MIN);
    read('pir', 'motion', true, T0);
    read('door', 'contact_open', true, T0 + MIN);
    read('door', 'contact_open', false, T0 + MIN + 10_000);
    expect(tracker.isOut('h1')).toBe(true);
    read('pir', 'motion', true, T0 + 2 * MIN); // hourly heartbeat, still holding `true`
    read('pir', 'motion', false, T0 + 4 * MIN); // three quiet minutes
    expect(tracker.isOut('h1')).toBe(true);
    expect(read('pir', 'motion', true, T0 + 60 * MIN)[0]).toMatchObject({ returned: true });
  });

  it('a door contact counts when it changes, not when it reports the same state again', () => {
    expect(isActivity(read('fridge-door', 'contact_open', false, T0))).toBe(false); // first report: the state
    expect(isActivity(read('fridge-door', 'contact_open', false, T0 + MIN))).toBe(false);
    expect(read('fridge-door', 'contact_open', true, T0 + 2 * MIN)[0]).toMatchObject({ activity: true, inHome: true });
    expect(isActivity(read('fridge-door', 'contact_open', false, T0 + 3 * MIN))).toBe(true);
  });

  it('a bed mat getting on and getting off are both a person', () => {
    read('pir', 'occupancy', false, T0);
    expect(isActivity(read('pir', 'occupancy', true, T0 + MIN))).toBe(true);
    expect(isActivity(read('pir', 'occupancy', true, T0 + 2 * MIN))).toBe(false);
    expect(isActivity(read('pir', 'occupancy', false, T0 + 3 * MIN))).toBe(true);
  });

  it('water: the start of a flow is activity, its continuation and a leak are not', () => {
    expect(read('wm', 'water_total_l', 100, T0)[0]).toMatchObject({ activity: false, counter: 'water', delta: 0 });
    expect(read('wm', 'water_total_l', 106, T0 + MIN)[0]).toMatchObject({ activity: true, delta: 6 });
    expect(read('wm', 'water_total_l', 110, T0 + 2 * MIN)[0]).toMatchObject({ activity: false, delta: 4 }); // still flowing
    expect(read('wm', 'water_total_l', 110, T0 + 3 * MIN)[0]).toMatchObject({ activity: false, delta: 0 }); // stopped
    expect(read('wm', 'water_total_l', 112, T0 + 4 * MIN)[0]).toMatchObject({ activity: true }); // a new flow
    // a leak: increasing every minute for an hour is one start
    let starts = 0;
    for (let i = 1; i <= 60; i++)
      starts += Number(isActivity(read('wm', 'water_total_l', 112 + i * 0.2, T0 + (4 + i) * MIN)));
    expect(starts).toBe(0);
  });

  it('gas: the start of a flow is activity', () => {
    read('gm', 'gas_total_m3', 10, T0);
    expect(read('gm', 'gas_total_m3', 10.01, T0 + MIN)[0]).toMatchObject({ activity: true, counter: 'gas' });
    expect(read('gm', 'gas_total_m3', 10.02, T0 + 2 * MIN)[0]).toMatchObject({ activity: false, counter: 'gas' });
  });

  it('electricity: a fridge cycling becomes background, a kettle switched on is activity', () => {
    // 12 h of a fridge: 120 W for 20 min, off for 40, one reading a minute, nobody else doing anything
    let t = T0;
    let fridgeStarts = 0;
    for (let i = 0; i < 12 * 60; i++, t += MIN) {
      const on = i % 60 < 20;
      const notes = read('em', 'power_w', on ? 120 : 2, t);
      if (i >= 11 * 60) fridgeStarts += Number(isActivity(notes));
    }
    expect(fridgeStarts).toBe(0); // learned by the last hour
    expect(isActivity(read('em', 'power_w', 2100, t))).toBe(true); // kettle
    expect(isActivity(read('em', 'power_w', 2100, t + MIN))).toBe(false); // still on: not a new action
  });

  it("a wristband's heart rate only says it is worn", () => {
    expect(read('band', 'heart_rate_bpm', 72, T0)[0]).toMatchObject({ activity: false, worn: true });
    expect(tracker.house('h1')).toBeUndefined();
  });

  it('an SOS or cancel pressed is activity', () => {
    expect(event('band', { type: 'cancel', id: 'c1' }, T0)[0]).toMatchObject({ activity: true, inHome: false });
    expect(event('band', { type: 'fall', id: 'f1' }, T0)).toHaveLength(0);
  });

  describe('away', () => {
    const passage = (ts: number) => [
      ...read('door', 'contact_open', true, ts),
      ...read('door', 'contact_open', false, ts + 15_000),
    ];
    beforeEach(() => {
      read('door', 'contact_open', false, T0 - MIN);
      read('pir', 'motion', true, T0);
    });

    it('a passage with nothing inside after it is going out; the next passage is coming back', () => {
      const out = passage(T0 + 10 * MIN);
      expect(out[0]).toMatchObject({ activity: true, inHome: false, entrance: 'passage', left: true });
      expect(tracker.isOut('h1')).toBe(true);
      // the door's second change and a re-opening within the debounce are the same passage
      read('door', 'contact_open', true, T0 + 12 * MIN);
      read('door', 'contact_open', false, T0 + 12 * MIN + 5000);
      expect(tracker.isOut('h1')).toBe(true);
      const back = passage(T0 + 12 * MIN + DEBOUNCE_MS + MIN);
      expect(back[0]).toMatchObject({ returned: true, gapHome: false });
      expect(tracker.isOut('h1')).toBe(false);
    });

    it('in-home activity after the door means home (a guest, or the resident never left)', () => {
      read('fridge-door', 'contact_open', false, T0 + MIN); // its resting state
      passage(T0 + 10 * MIN);
      expect(tracker.isOut('h1')).toBe(true);
      const fridge = read('fridge-door', 'contact_open', true, T0 + 11 * MIN);
      expect(fridge[0]).toMatchObject({ activity: true, inHome: true, returned: true });
      expect(tracker.isOut('h1')).toBe(false);
      expect(read('pir', 'motion', true, T0 + 20 * MIN)[0]!.returned).toBeUndefined();
      read('pir', 'motion', false, T0 + 23 * MIN);
      passage(T0 + 30 * MIN); // someone leaves: the guest or the resident; nothing inside after → out
      expect(tracker.isOut('h1')).toBe(true);
      expect(read('pir', 'motion', true, T0 + 40 * MIN)[0]).toMatchObject({ returned: true, gapHome: false });
    });

    it('building door access by a known person: out is away, in is home, the flat door after it stays home', () => {
      expect(
        event(
          'gate',
          { type: 'door_access', id: 'a1', personId: 'card-1', direction: 'out', method: 'card', granted: true },
          T0 + 10 * MIN,
        )[0],
      ).toMatchObject({
        householdId: 'h1',
        entrance: 'out',
        left: true,
      });
      expect(tracker.isOut('h1')).toBe(true);
      event(
        'gate',
        { type: 'door_access', id: 'a2', personId: 'card-1', direction: 'in', method: 'card', granted: true },
        T0 + 60 * MIN,
      );
      expect(tracker.isOut('h1')).toBe(false);
      passage(T0 + 62 * MIN); // the flat door on the way in
      expect(tracker.isOut('h1')).toBe(false);
      // a denied attempt is a sign (seen), not activity
      const denied = event(
        'gate',
        { type: 'door_access', id: 'a3', personId: 'card-1', direction: 'in', method: 'card', granted: false },
        T0 + 70 * MIN,
      );
      expect(denied[0]).toMatchObject({ activity: false, sign: true });
      expect(tracker.house('h1')!.seen).toBe(T0 + 70 * MIN);
    });

    it('without a person registry, a building exit links to the flat whose door opened just before', () => {
      person.clear();
      passage(T0 + 10 * MIN);
      const notes = event(
        'gate',
        { type: 'door_access', id: 'a1', direction: 'out', method: 'face', granted: true },
        T0 + 12 * MIN,
      );
      expect(notes.map((n) => n.householdId)).toEqual(['h1']);
      expect(
        event(
          'gate',
          { type: 'door_access', id: 'a2', direction: 'out', method: 'face', granted: true },
          T0 + 40 * MIN,
        ),
      ).toEqual([]);
    });
  });

  it('knows when every activity sensor of a household is offline', async () => {
    const off = (id: string) => tracker.status({ deviceId: id, status: 'offline', ts: T0, reason: 'timeout' }, ctx);
    for (const id of ['pir', 'door', 'fridge-door', 'wm', 'gm', 'em']) off(id);
    // the wristband still reports: the home is still monitored (the same list as the device-health rule's)
    expect(tracker.allDead('h1', ctx)).toBe(false);
    const last = off('band');
    expect(last).toMatchObject({ householdId: 'h1', allDead: true, wasAllDead: false });
    expect(tracker.allDead('h1', ctx)).toBe(true);
    expect(tracker.allOfKindDead('h1', 'water_meter', ctx)).toBe(true);
    read('pir', 'motion', true, T0 + MIN); // a reading is proof of life
    expect(tracker.allDead('h1', ctx)).toBe(false);
  });

  it('snapshot and restore keep the state, in compact JSON', () => {
    read('door', 'contact_open', false, T0);
    read('pir', 'motion', true, T0 + MIN);
    read('door', 'contact_open', true, T0 + 2 * MIN);
    read('wm', 'water_total_l', 100, T0 + 3 * MIN);
    read('em', 'power_w', 5, T0 + 3 * MIN);
    tracker.status({ deviceId: 'gm', status: 'offline', ts: T0, reason: 'timeout' }, ctx);
    const json = JSON.stringify(tracker.snapshot());
    expect(json.length).toBeLessThan(600);
    const again = new ActivityTracker({ isEntrance: (_d, id) => id === 'door' });
    again.restore(JSON.parse(json));
    expect(again.house('h1')).toEqual(tracker.house('h1'));
    expect(again.isOut('h1')).toBe(true);
    expect(JSON.stringify(again.snapshot())).toBe(json);
  });
});
