import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError } from '../config/load.ts';
import { loadScenarios, parseScenario, registryProblems, ScenarioError, validateScenario } from './scenario.ts';

const good = () => ({
  id: 'test-drill',
  name: { zh: '测试', en: 'Test' },
  type: 'fire',
  description: { zh: '描述', en: 'Description' },
  scope: { buildingIds: ['b-1'] },
  participants: { roles: ['grid_worker', 'drill_controller'] },
  objectives: [
    {
      id: 'ack',
      text: { zh: '确认', en: 'Ack' },
      target: { kind: 'first_ack_within', seconds: 120, alertTypes: ['smoke'] },
    },
    {
      id: 'done',
      text: { zh: '完成', en: 'Done' },
      target: { kind: 'tasks_done_within', taskIds: ['t1'], seconds: 600 },
    },
  ],
  injects: [
    {
      id: 'smoke',
      title: { zh: '烟感', en: 'Smoke' },
      trigger: { at: 0 },
      action: {
        kind: 'device_event',
        model: 'native-smoke-detector',
        place: { unitId: 'u-1' },
        event: { type: 'smoke' },
      },
    },
    {
      id: 'm1',
      title: { zh: '消息', en: 'Message' },
      trigger: { after: { injectId: 'smoke', state: 'fired', delaySeconds: 30 } },
      action: { kind: 'message', text: { zh: '请疏散', en: 'Evacuate' } },
    },
    {
      id: 't1',
      title: { zh: '任务', en: 'Task' },
      trigger: { manual: true },
      action: { kind: 'task', text: { zh: '检查', en: 'Check' }, householdIds: ['h-1'] },
    },
  ],
});

type Doc = ReturnType<typeof good>;
const edit = (fn: (d: Doc & Record<string, unknown>) => void) => {
  const d = good() as Doc & Record<string, unknown>;
  fn(d);
  return validateScenario(d);
};

describe('scenario validation', () => {
  it('accepts a well-formed scenario', () => {
    expect(validateScenario(good())).toEqual([]);
  });

  it('names the path and the problem for schema errors', () => {
    expect(edit((d) => (d.type = 'meteor'))).toEqual([
      'type: must be one of fire, ebike_fire, flood, power_cut, sewage_overflow, lone_elderly, gas_leak, earthquake, epidemic, other',
    ]);
    expect(edit((d) => (d.colour = 'red'))).toEqual(['colour: is not a known field']);
    expect(edit((d) => delete (d as Partial<Doc>).injects)).toEqual(['injects: is required']);
    expect(edit((d) => (d.injects[0]!.id = 'Bad Id'))).toEqual([
      'injects.0.id: must match pattern "^[a-z0-9][a-z0-9_-]{0,47}$"',
    ]);
  });

  it('checks triggers: exactly one kind, references that exist, no loops', () => {
    expect(edit((d) => (d.injects[0]!.trigger = { at: 0, manual: true } as never))).toEqual([
      'injects.0.trigger: exactly one of at, manual or after',
    ]);
    expect(edit((d) => (d.injects[1]!.trigger = { after: { injectId: 'nope', state: 'fired' } } as never))).toEqual([
      'injects.1.trigger.after.injectId: no inject "nope"',
    ]);
    expect(edit((d) => (d.injects[1]!.trigger = { after: { injectId: 'smoke', state: 'done' } } as never))).toEqual([
      'injects.1.trigger.after.state: an inject can only be "fired"',
    ]);
    expect(edit((d) => (d.injects[1]!.trigger = { after: { taskId: 'smoke', state: 'done' } } as never))).toEqual([
      'injects.1.trigger.after.taskId: no task inject "smoke"',
    ]);
    const loop = edit((d) => {
      d.injects[0]!.trigger = { after: { injectId: 'm1', state: 'fired' } } as never;
    });
    expect(loop).toEqual(['injects: the "after" triggers of m1, smoke form a loop; none of them would ever fire']);
  });

  it('checks device events against the model: native, installed there, sends that event, canonical payload', () => {
    const set = (action: object) => edit((d) => (d.injects[0]!.action = action as never));
    expect(
      set({ kind: 'device_event', model: 'acme-wb200', place: { householdId: 'h' }, event: { type: 'sos' } }),
    ).toEqual([
      'injects.0.action.model: "acme-wb200" is a vendor model; drills publish canonical payloads (native-* models)',
    ]);
    expect(
      set({ kind: 'device_event', model: 'native-wristband', place: { unitId: 'u' }, event: { type: 'sos' } }),
    ).toEqual(['injects.0.action.place: native-wristband is installed on household, not on a unit']);
    expect(
      set({ kind: 'device_event', model: 'native-wristband', place: { householdId: 'h' }, event: { type: 'smoke' } }),
    ).toEqual(['injects.0.action.event.type: native-wristband does not send "smoke" (sos, fall, cancel, low_battery)']);
    expect(
      set({ kind: 'device_event', model: 'native-ebike-cutoff', place: { unitId: 'u' }, event: { type: 'overtemp' } }),
    ).toEqual(['injects.0.action.event.temperature_c: is required']);
    expect(
      set({ kind: 'device_event', model: 'native-motion', place: { householdId: 'h' }, telemetry: { smoke: true } }),
    ).toEqual(['injects.0.action.telemetry.smoke: native-motion does not report smoke']);
    expect(
      set({ kind: 'device_event', model: 'native-motion', place: { householdId: 'h' }, event: { type: 'explosion' } }),
    ).toEqual(['injects.0.action.event.type: "explosion" is not a canonical event type (ARCHITECTURE.md section 2)']);
    expect(
      set({ kind: 'device_event', model: 'native-motion', place: { householdId: 'h' }, telemetry: { motion: 'no' } }),
    ).toEqual(['injects.0.action.telemetry.motion: must be boolean']);
    expect(
      set({
        kind: 'device_event',
        model: 'native-motion',
        place: { householdId: 'h', unitId: 'u' },
        telemetry: { motion: true },
      }),
    ).toEqual(['injects.0.action.place: exactly one of householdId, buildingId, unitId or areaId']);
    expect(
      set({
        kind: 'device_event',
        model: 'native-smoke-detector',
        place: { unitId: 'u' },
        event: { type: 'smoke', id: 'x' },
      }),
    ).toEqual(['injects.0.action.event: leave out id and ts (the runner sets them)']);
    expect(
      set({
        kind: 'device_event',
        model: 'native-electricity-meter',
        place: { areaId: 'a' },
        each: 'household',
        telemetry: { power_w: 0 },
      }),
    ).toEqual(['injects.0.action.each: "household" needs a buildingId or unitId place']);
    expect(
      set({
        kind: 'device_event',
        model: 'native-electricity-meter',
        place: { buildingId: 'b' },
        each: 'household',
        telemetry: { power_w: 0 },
      }),
    ).toEqual([]);
  });

  it('keeps drill SMS short and free of URLs', () => {
    const long = '很'.repeat(140);
    expect(edit((d) => ((d.injects[1]!.action as { text: { zh: string } }).text.zh = long))).toEqual([
      'injects.1.action.text.zh: with 【演练】 the SMS is 144 characters; at most 134 (two segments)',
    ]);
    expect(edit((d) => ((d.injects[1]!.action as { text: { en: string } }).text.en = 'see www.example.com'))).toEqual([
      'injects.1.action.text.en: must not contain a URL or domain (carriers block them)',
    ]);
  });

  it('checks objectives: known kinds, tasks and injects that exist', () => {
    expect(
      edit((d) => (d.objectives[1]!.target = { kind: 'tasks_done_within', taskIds: ['smoke'], seconds: 60 } as never)),
    ).toEqual(['objectives.1.target.taskIds: no task inject "smoke"']);
    expect(
      edit((d) => (d.objectives[1]!.target = { kind: 'injects_handled', injectIds: ['m1'], seconds: 60 } as never)),
    ).toEqual(['objectives.1.target.injectIds: "m1" is a message; only device events and tasks are handled']);
    expect(edit((d) => (d.objectives[0]!.target = { kind: 'first_ack_within' } as never))).toEqual([
      'objectives.0.target.seconds: is required',
    ]);
    expect(edit((d) => (d.objectives[1]!.id = 'ack'))).toEqual(['objectives.1.id: duplicate objective id "ack"']);
  });

  it('reports YAML syntax errors with the line', () => {
    const r = parseScenario('id: x\nname: [unclosed\n', 'f.yaml');
    expect(r.scenario).toBeUndefined();
    expect(r.problems[0]).toMatch(/^f\.yaml: not valid YAML at line \d+, column \d+/);
  });
});

describe('loading a directory', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('lists every problem of every file and refuses duplicate ids; a ConfigError like the config loader’s', () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gw-scen-'));
    writeFileSync(path.join(dir, 'a.yaml'), stringify(good()));
    writeFileSync(path.join(dir, 'b.yaml'), stringify(good()));
    writeFileSync(path.join(dir, 'c.yaml'), stringify({ ...good(), id: 'other', type: 'volcano' }));
    writeFileSync(path.join(dir, 'notes.txt'), 'ignored');
    let err: unknown;
    try {
      loadScenarios(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ScenarioError);
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ScenarioError).problems;
    expect(problems).toEqual([
      `drill scenario ${path.join(dir, 'b.yaml')}: id: scenario "test-drill" is already defined in ${path.join(dir, 'a.yaml')}`,
      expect.stringMatching(/^drill scenario .*c\.yaml: type: must be one of fire/),
    ]);
    expect((err as Error).message).toMatch(/^invalid configuration \(2 problems\):/);
  });

  it('a missing directory holds no scenarios; the sample scenarios load', () => {
    expect(loadScenarios('/nonexistent/drills')).toEqual([]);
    const sample = loadScenarios(path.resolve(import.meta.dirname, '../../config/drills'));
    expect(sample.map((s) => s.scenario.type).sort()).toEqual(['ebike_fire', 'flood', 'lone_elderly', 'power_cut']);
  });
});

describe('references to the registry', () => {
  const dirOf = (known: Record<string, string>) => ({
    placeOf: (_kind: string, id: string) => (known[id] ? { gridId: known[id], communityId: 'c-1' } : undefined),
    hasStaff: (u: string) => u === 'gw.1',
  });

  it('lists places and staff that do not exist; finds the community', () => {
    const s = good();
    const ok = registryProblems(s as never, dirOf({ 'b-1': 'g-1', 'u-1': 'g-1', 'h-1': 'g-1' }));
    expect(ok).toEqual({ problems: [], communityId: 'c-1' });
    const bad = registryProblems({ ...s, participants: { staff: ['nobody'] } } as never, dirOf({ 'b-1': 'g-1' }));
    expect(bad.problems).toEqual([
      'participants.staff: no staff account nobody',
      'injects.0.action.place: unit u-1 does not exist',
      'injects.2.action.householdIds: household h-1 does not exist',
    ]);
  });
});
