import { describe, expect, it } from 'vitest';
import type { StoredAlert } from '../alerts/service.ts';
import type { Notification } from '../notify/store.ts';
import { buildReport, formatDuration, type ReportInput, reportCsv, reportHtml } from './report.ts';
import { elapsedAt } from './time.ts';
import type { Scenario } from './scenario.ts';
import type { DrillRecord } from './store.ts';

const T0 = Date.UTC(2026, 2, 1, 14, 0, 0);
const s = (sec: number) => T0 + sec * 1000;

const scenario: Scenario = {
  id: 'x',
  name: { zh: '测试演练', en: 'Test drill' },
  type: 'fire',
  description: { zh: '描述', en: 'Description' },
  scope: { buildingIds: ['b-1'] },
  participants: { roles: ['grid_worker'] },
  objectives: [
    { id: 'ack', text: { zh: '确认', en: 'Ack' }, target: { kind: 'first_ack_within', seconds: 120 } },
    { id: 'all', text: { zh: '全部', en: 'All' }, target: { kind: 'all_alerts_acked_within', seconds: 60 } },
    {
      id: 'task',
      text: { zh: '任务', en: 'Task' },
      target: { kind: 'tasks_done_within', taskIds: ['t1'], seconds: 600 },
    },
    {
      id: 'inj',
      text: { zh: '注入', en: 'Inject' },
      target: { kind: 'injects_handled', injectIds: ['smoke'], seconds: 60 },
    },
  ],
  injects: [
    {
      id: 'smoke',
      title: { zh: '烟感', en: 'Smoke' },
      trigger: { at: 20 },
      action: {
        kind: 'device_event',
        model: 'native-smoke-detector',
        place: { unitId: 'u-1' },
        event: { type: 'smoke' },
      },
    },
    {
      id: 't1',
      title: { zh: '检查', en: 'Check' },
      trigger: { at: 30 },
      action: { kind: 'task', text: { zh: '检查', en: 'Check' } },
    },
  ],
};

function alert(id: string, openedS: number, ack?: { s: number; by: string }, status = 'open'): StoredAlert {
  return {
    id,
    type: 'smoke',
    category: 'fire',
    severity: 'critical',
    status: ack ? 'acknowledged' : status,
    key: `smoke|unit:u-1|drill`,
    summary: '',
    count: 1,
    firstSeen: new Date(s(openedS)).toISOString(),
    lastSeen: new Date(s(openedS)).toISOString(),
    updatedAt: new Date(s(openedS)).toISOString(),
    drill: true,
    evidence: [],
    timeline: [
      { ts: s(openedS), action: 'opened', by: 'rule:smoke', via: 'rule' },
      ...(ack ? [{ ts: s(ack.s), action: 'acknowledged' as const, by: ack.by, via: 'api' }] : []),
    ],
  } as StoredAlert;
}

function input(over: Partial<ReportInput> = {}): ReportInput {
  // running from 0 to 60 s, paused 100 s, running again from 160 s
  const rec: DrillRecord = {
    id: 'd1',
    scenarioId: 'x',
    communityId: 'c-1',
    status: 'running',
    scenario,
    participants: [
      { staffId: 'st-a', username: 'gw.a', name: '肖*', roles: ['grid_worker'], as: ['grid_worker'], named: false },
    ],
    gridIds: ['g-1'],
    state: {
      segments: [{ from: s(0), to: s(60) }, { from: s(160) }],
      fired: { smoke: { at: s(20), by: 'schedule' }, t1: { at: s(30), by: 'schedule' } },
      due: {},
      devices: [],
      lastInjectOf: {},
    },
    startedAt: s(0),
    startedBy: 'st-boss',
    updatedAt: s(0),
  };
  return {
    rec,
    summary: {
      id: 'd1',
      scenarioId: 'x',
      name: scenario.name,
      type: 'fire',
      communityId: 'c-1',
      status: 'running',
      startedAt: new Date(T0).toISOString(),
      startedBy: 'st-boss',
      clock: { elapsedS: 150, running: true, asOf: new Date(s(250)).toISOString() },
      progress: { injects: { total: 2, fired: 2 }, tasks: { total: 1, done: 0 }, alerts: 1 },
      participants: 1,
      gridIds: ['g-1'],
    },
    events: [],
    tasks: [{ taskId: 't1', status: 'open', issuedAt: s(30), targets: { households: [], places: [] } }],
    notes: [],
    ratings: [],
    // opened at drill time 20, acknowledged at wall 170 = drill time 70: 50 s, the pause not counted
    alerts: [{ alert: alert('a1', 20, { s: 170, by: 'st-a' }), injectId: 'smoke' }],
    notifications: [],
    realAlerts: [],
    staff: new Map(),
    now: s(250),
    ...over,
  };
}

describe('drill time', () => {
  it('excludes pauses', () => {
    const segs = [{ from: 0, to: 60_000 }, { from: 160_000 }];
    expect(elapsedAt(segs, 30_000)).toBe(30_000);
    expect(elapsedAt(segs, 100_000)).toBe(60_000);
    expect(elapsedAt(segs, 170_000)).toBe(70_000);
  });

  it('formats durations for people', () => {
    expect(formatDuration(90)).toBe('1 min 30 s');
    expect(formatDuration(90, 'zh')).toBe('1分30秒');
    expect(formatDuration(120)).toBe('2 min');
    expect(formatDuration(120, 'zh')).toBe('2分钟');
    expect(formatDuration(45)).toBe('45 s');
    expect(formatDuration(3900, 'zh')).toBe('1小时5分钟');
    expect(formatDuration(0)).toBe('0 s');
  });
});

describe('objectives', () => {
  it('are measured in drill time and marked met, missed or pending', () => {
    const r = buildReport(input());
    const o = (id: string) => r.objectives.find((x) => x.id === id)!;
    expect(r.final).toBe(false);
    expect(r.durationS).toBe(150);
    expect(o('ack')).toMatchObject({ measuredS: 50, result: 'met' });
    expect(o('ack').statement).toEqual({
      zh: '首次确认用时50秒，目标2分钟：达成',
      en: 'first acknowledgement 50 s, target 2 min: met',
    });
    expect(o('all')).toMatchObject({ measuredS: 50, result: 'met' });
    expect(o('inj')).toMatchObject({ measuredS: 50, result: 'met' });
    // issued at 30, not done at 150: 120 s of its 600 used, still pending
    expect(o('task')).toMatchObject({ result: 'pending' });
    expect(o('task').measuredS).toBeUndefined();
    expect(o('task').statement.en).toBe('tasks done, slowest not done, target 10 min: pending');
  });

  it('a second, unanswered alert: all-acked pending until its time is out, then missed', () => {
    const two = input({
      alerts: [...input().alerts, { alert: alert('a2', 200) }],
    });
    // a2 opened at wall 200 = drill 100; now drill 150: 50 s of 60
    expect(buildReport(two).objectives.find((x) => x.id === 'all')!.result).toBe('pending');
    const later = { ...two, now: s(280) };
    expect(buildReport(later).objectives.find((x) => x.id === 'all')!.result).toBe('missed');
    // an alert closed without an answer cannot be answered any more
    const closed = input({ alerts: [{ alert: alert('a3', 20, undefined, 'resolved') }] });
    expect(buildReport(closed).objectives.find((x) => x.id === 'ack')!.result).toBe('missed');
  });

  it('an ended drill: whatever was not done is missed', () => {
    const i = input();
    i.rec = {
      ...i.rec,
      status: 'ended',
      endedAt: s(200),
      state: {
        ...i.rec.state,
        segments: [
          { from: s(0), to: s(60) },
          { from: s(160), to: s(200) },
        ],
      },
    };
    const r = buildReport(i);
    expect(r.final).toBe(true);
    expect(r.durationS).toBe(100);
    expect(r.objectives.find((x) => x.id === 'task')!.result).toBe('missed');
  });
});

describe('participants, CSV and HTML', () => {
  const sms = (over: Partial<Notification>): Notification =>
    ({
      id: 'n1',
      alertId: 'a1',
      recipient: '+8613800000001',
      staffId: 'st-a',
      role: 'grid_worker',
      body: '【演练】…',
      transport: 'outbox',
      status: 'sent',
      step: 0,
      drill: true,
      createdAt: new Date(s(25)).toISOString(),
      updatedAt: new Date(s(25)).toISOString(),
      statusHistory: [
        { status: 'pending', at: new Date(s(25)).toISOString() },
        { status: 'sent', at: new Date(s(25)).toISOString() },
      ],
      ...over,
    }) as Notification;

  it('response times per participant; failed SMS listed with the number masked', () => {
    const r = buildReport(
      input({
        notifications: [
          sms({}),
          sms({ id: 'n2', status: 'failed', errorCode: '21211', staffId: 'st-b', recipient: '+8613800000002' }),
        ],
      }),
    );
    expect(r.participants[0]).toMatchObject({
      username: 'gw.a',
      notifiedS: 25,
      acknowledgedS: 70,
      responseS: 45,
      sms: 1,
    });
    expect(r.failedNotifications).toEqual([
      expect.objectContaining({ id: 'n2', recipient: '+86138****0002', errorCode: '21211', status: 'failed' }),
    ]);
    expect(r.notifications).toMatchObject({ total: 2, sent: 1, failed: 1 });
    expect(r.timeline.some((e) => e.kind === 'sms_failed')).toBe(true);
  });

  it('CSV quotes and defuses formulas; HTML escapes everything and has no scripts', () => {
    const r = buildReport(
      input({ notes: [{ id: 'x', ts: s(40), by: 'st-a', text: '=HYPERLINK("x"), <script>alert(1)</script>' }] }),
    );
    const csv = reportCsv(r, 'en');
    expect(csv.startsWith('\uFEFFsection,t_s,')).toBe(true);
    expect(csv).toContain(
      `note,40,${new Date(s(40)).toISOString()},note,,肖*,"'=HYPERLINK(""x""), <script>alert(1)</script>"`,
    );
    const html = reportHtml(r, 'en');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).not.toContain('<script');
    expect(html).toContain('first acknowledgement 50 s, target 2 min: met');
    expect(reportHtml(r)).toContain('<html lang="zh-CN">');
  });
});
