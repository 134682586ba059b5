/**
 * The drill API on a real node (virtual clock): who may do what, pause and resume moving the timed injects, manual
 * and `after` triggers, task states, conflicts answered clearly, the report as JSON, CSV and HTML, the live `drill`
 * messages on `WS /ws` (and only to those who may see them), a restart that resumes a running drill, and a broken
 * scenario file that stops the start.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ServerMessage } from '../../src/contracts/console.ts';
import { startNode } from '../support/system.ts';
import { type DrillNode, drillAlert, type Json, startDrillNode } from './drills-support.ts';

let d: DrillNode;
let outsider: string;

beforeAll(async () => {
  d = await startDrillNode();
  // a grid worker who covers no grid: sees no drill
  const created = await d.api('POST', '/api/v1/staff', {
    username: 'gw.nowhere',
    name: '林小雨',
    phone: '+8613800009999',
    roles: ['grid_worker'],
    password: 'outsider-password-1',
  });
  expect(created.status).toBe(201);
  outsider = await d.node.login('gw.nowhere', 'outsider-password-1');
}, 120_000);
afterAll(async () => d?.node.stop());

interface LiveConsole {
  got: ServerMessage[];
  close: () => void;
}

async function openConsole(token: string): Promise<LiveConsole> {
  const ws = new WebSocket(`${d.node.base.replace('http', 'ws')}/ws`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const got: ServerMessage[] = [];
  ws.on('message', (m) => got.push(JSON.parse(String(m)) as ServerMessage));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ type: 'hello', v: 1 }));
  await waitUntil(() => got.some((m) => m.type === 'snapshot'));
  return { got, close: () => ws.close() };
}

async function waitUntil(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const post = (url: string, as: Parameters<DrillNode['api']>[3], body?: unknown) => d.api('POST', url, body, as);

describe('drill API', () => {
  it('roles: who starts, controls, marks tasks, writes notes and rates; errors are clear and change nothing', async () => {
    expect((await d.node.api('GET', '/api/v1/drills/scenarios')).status).toBe(401);
    const scenarios = await d.api('GET', '/api/v1/drills/scenarios', undefined, 'gw1');
    expect(scenarios.status).toBe(200);
    expect(scenarios.body.items.map((s: Json) => s.id).sort()).toEqual([
      'ebike-fire-night',
      'lone-elderly-unresponsive',
      'power-cut-lift',
      'rainstorm-flood',
    ]);
    expect(scenarios.body.items.every((s: Json) => s.available && s.communityId === 'c-limin')).toBe(true);

    for (const who of ['gw1', 'evaluator', 'committee', 'leader'] as const) {
      const r = await post('/api/v1/drills', who, { scenarioId: 'ebike-fire-night' });
      expect(r.status, who).toBe(403);
      expect(r.body.error).toBe('forbidden');
    }
    expect((await post('/api/v1/drills', 'controller', { scenarioId: 'no-such-drill' })).status).toBe(404);
    expect((await post('/api/v1/drills', 'controller', {})).status).toBe(400);
    expect((await d.api('GET', '/api/v1/drills', undefined, 'controller')).body.items).toEqual([]);

    const started = await post('/api/v1/drills', 'director', { scenarioId: 'ebike-fire-night' });
    expect(started.status).toBe(201);
    const id = started.body.id;
    const second = await post('/api/v1/drills', 'controller', { scenarioId: 'rainstorm-flood' });
    expect(second.status).toBe(409);
    expect(second.body.message).toContain(id);

    // visibility
    expect((await d.node.api('GET', `/api/v1/drills/${id}`, undefined, outsider)).status).toBe(403);
    expect((await d.node.api('GET', `/api/v1/drills`, undefined, outsider)).body.items).toEqual([]);
    expect((await d.api('GET', `/api/v1/drills/${id}`, undefined, 'gw1')).status).toBe(200);
    expect((await d.api('GET', `/api/v1/drills/${id}`)).status).toBe(200); // admins see every drill

    // control is for directors, controllers and admins
    expect((await post(`/api/v1/drills/${id}/pause`, 'gw1')).status).toBe(403);
    expect((await post(`/api/v1/drills/${id}/injects/fire-out/trigger`, 'evaluator')).status).toBe(403);
    // tasks: participants only (gw.limin.02 covers the other grid)
    await d.advance(125_000); // tasks issued at drill time 90 and 120
    await d.settle();
    expect((await post(`/api/v1/drills/${id}/tasks/check-red-orange/done`, 'gw2', {})).status).toBe(403);
    expect((await post(`/api/v1/drills/${id}/tasks/no-such-task/done`, 'gw1', {})).status).toBe(404);
    expect((await post(`/api/v1/drills/${id}/tasks/check-red-orange/done`, 'gw1', { note: '全部安全' })).status).toBe(
      200,
    );
    const again = await post(`/api/v1/drills/${id}/tasks/check-red-orange/done`, 'gw1', {});
    expect(again.status).toBe(409);
    expect(again.body.message).toContain('done already');
    // notes: evaluators, controllers, directors
    expect((await post(`/api/v1/drills/${id}/notes`, 'gw1', { text: 'x' })).status).toBe(403);
    expect((await post(`/api/v1/drills/${id}/notes`, 'evaluator', { text: '   ' })).status).toBe(400);
    expect((await post(`/api/v1/drills/${id}/notes`, 'evaluator', { text: '烟感响应及时' })).status).toBe(201);
    // ratings: evaluators
    expect((await d.api('PUT', `/api/v1/drills/${id}/ratings/first-ack`, { rating: 'P' }, 'controller')).status).toBe(
      403,
    );
    expect((await d.api('PUT', `/api/v1/drills/${id}/ratings/first-ack`, { rating: 'X' }, 'evaluator')).status).toBe(
      400,
    );
    expect((await d.api('PUT', `/api/v1/drills/${id}/ratings/nope`, { rating: 'P' }, 'evaluator')).status).toBe(404);
    const rated = await d.api(
      'PUT',
      `/api/v1/drills/${id}/ratings/first-ack`,
      { rating: 'S', note: '确认及时，但未复述地址' },
      'evaluator',
    );
    expect(rated.status).toBe(200);
    expect(rated.body.objectives.find((o: Json) => o.id === 'first-ack').rating).toMatchObject({
      rating: 'S',
      by: d.staffIds.evaluator,
    });
    const view = rated.body;
    expect(view.notes).toEqual([expect.objectContaining({ text: '烟感响应及时', by: d.staffIds.evaluator })]);
    expect(view.tasks.find((t: Json) => t.id === 'check-red-orange')).toMatchObject({
      status: 'done',
      doneBy: d.staffIds.gw1,
      note: '全部安全',
    });

    expect((await post(`/api/v1/drills/${id}/end`, 'controller')).status).toBe(200);
    expect((await post(`/api/v1/drills/${id}/end`, 'controller')).status).toBe(409);
    expect((await post(`/api/v1/drills/${id}/tasks/evacuate-unit/done`, 'building', {})).status).toBe(409);
    // notes may still come after the end
    expect((await post(`/api/v1/drills/${id}/notes`, 'controller', { text: '讲评：疏散路线需标识' })).status).toBe(201);
    const list = await d.api('GET', '/api/v1/drills?communityId=c-limin', undefined, 'gw1');
    expect(list.body.items).toEqual([expect.objectContaining({ id, status: 'ended', scenarioId: 'ebike-fire-night' })]);
  });

  it('pause and resume move the timed injects; manual and after triggers; live messages to those who may see', async () => {
    const boss = await openConsole(d.tokens.controller);
    const stranger = await openConsole(outsider);
    const t0 = d.clock.now();
    const started = await post('/api/v1/drills', 'controller', { scenarioId: 'ebike-fire-night' });
    expect(started.status).toBe(201);
    const id = started.body.id;
    await d.advance(30_000);
    let v = await d.view(id);
    expect(v.injects.find((i: Json) => i.id === 'cutoff-overtemp').state).toBe('fired');
    expect(v.injects.find((i: Json) => i.id === 'stairwell-smoke')).toMatchObject({ state: 'scheduled', dueS: 60 });

    const paused = await post(`/api/v1/drills/${id}/pause`, 'controller');
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ status: 'paused', clock: { elapsedS: 30, running: false } });
    expect((await post(`/api/v1/drills/${id}/pause`, 'controller')).status).toBe(409);
    expect((await post(`/api/v1/drills/${id}/injects/fire-out/trigger`, 'controller')).status).toBe(409);
    await d.advance(100_000);
    v = await d.view(id);
    expect(v.clock.elapsedS).toBe(30);
    expect(v.injects.find((i: Json) => i.id === 'stairwell-smoke').state).toBe('scheduled');

    expect((await post(`/api/v1/drills/${id}/resume`, 'director')).status).toBe(200);
    expect((await post(`/api/v1/drills/${id}/resume`, 'director')).status).toBe(409);
    await d.advance(29_000, 1000);
    expect((await d.view(id)).injects.find((i: Json) => i.id === 'stairwell-smoke').state).toBe('scheduled');
    await d.advance(1000, 1000);
    v = await d.view(id);
    const smoke = v.injects.find((i: Json) => i.id === 'stairwell-smoke');
    // drill time 60 s, wall time 160 s: the 100 s pause moved it
    expect(smoke).toMatchObject({ state: 'fired', firedS: 60, firedBy: 'schedule' });
    expect(Date.parse(smoke.firedAt)).toBe(t0 + 160_000);
    const alert = await drillAlert(d, id, 'smoke');
    expect(alert.t).toBe(60);

    // `after`: 30 s of drill time after the smoke
    await d.advance(30_000, 1000);
    v = await d.view(id);
    expect(v.injects.find((i: Json) => i.id === 'call-119')).toMatchObject({ state: 'fired', firedS: 90 });
    expect(Date.parse(v.injects.find((i: Json) => i.id === 'call-119').firedAt)).toBe(t0 + 190_000);
    // issued right after call-119; evacuate-unit only at 120
    expect(v.tasks.find((t: Json) => t.id === 'issue-extinguishers').status).toBe('open');
    const early = await post(`/api/v1/drills/${id}/tasks/evacuate-unit/done`, 'building', {});
    expect(early.status).toBe(409);
    expect(early.body.message).toContain('not been issued');

    // manual: fire-out waits for a controller; all-clear follows it
    expect(v.injects.find((i: Json) => i.id === 'fire-out').state).toBe('manual');
    expect(v.injects.find((i: Json) => i.id === 'all-clear').state).toBe('waiting');
    const fired = await post(`/api/v1/drills/${id}/injects/fire-out/trigger`, 'controller');
    expect(fired.status).toBe(200);
    expect(fired.body.injects.find((i: Json) => i.id === 'fire-out')).toMatchObject({
      state: 'fired',
      firedBy: d.staffIds.controller,
    });
    expect((await post(`/api/v1/drills/${id}/injects/fire-out/trigger`, 'controller')).status).toBe(409);
    expect((await post(`/api/v1/drills/${id}/injects/nope/trigger`, 'controller')).status).toBe(404);
    await d.advance(30_000, 1000);
    expect((await d.view(id)).injects.find((i: Json) => i.id === 'all-clear')).toMatchObject({ state: 'fired' });

    // the report while running is provisional
    const report = (await d.api('GET', `/api/v1/drills/${id}/report`, undefined, 'gw1')).body;
    expect(report.final).toBe(false);
    expect(report.objectives.find((o: Json) => o.id === 'evacuated').result).toBe('pending');
    // the smoke alert was never acknowledged and its 2 min are over
    expect(report.objectives.find((o: Json) => o.id === 'first-ack').result).toBe('missed');
    const csv = await fetch(`${d.node.base}/api/v1/drills/${id}/report.csv?lang=en`, {
      headers: { authorization: `Bearer ${d.tokens.evaluator}` },
    });
    expect(csv.headers.get('content-type')).toContain('text/csv');
    const csvBytes = Buffer.from(await csv.arrayBuffer());
    expect([...csvBytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]); // a BOM: spreadsheets read UTF-8
    const csvText = csvBytes.toString('utf8');
    expect(csvText).toContain('section,t_s,time,kind,ref,who,text,measured_s,target_s,result,rating');
    expect(csvText).toContain('first acknowledgement not done, target 2 min: missed');
    const html = await fetch(`${d.node.base}/api/v1/drills/${id}/report.html`, {
      headers: { authorization: `Bearer ${d.tokens.evaluator}` },
    });
    expect(html.headers.get('content-type')).toContain('text/html');
    const page = await html.text();
    expect(page).toContain('<html lang="zh-CN">');
    expect(page).toContain('演练评估报告：夜间楼道电动车火灾');
    expect(page).not.toContain('<script');
    const en = await (
      await fetch(`${d.node.base}/api/v1/drills/${id}/report.html?lang=en`, {
        headers: { authorization: `Bearer ${d.tokens.evaluator}` },
      })
    ).text();
    expect(en).toContain('After-action report: Night e-bike fire in a stairwell');
    expect((await d.node.api('GET', `/api/v1/drills/${id}/report.html`, undefined, outsider)).status).toBe(403);

    const ended = await post(`/api/v1/drills/${id}/end`, 'controller');
    expect(ended.body).toMatchObject({ status: 'ended', clock: { running: false } });
    const endedAt = ended.body.clock.elapsedS;
    await d.advance(60_000);
    expect((await d.view(id)).clock.elapsedS).toBe(endedAt);

    // live: the controller's console heard every change of the drill, the outsider's none
    await waitUntil(() => boss.got.some((m) => m.type === 'drill' && m.change === 'ended'));
    const changes = boss.got.flatMap((m) => (m.type === 'drill' && m.drillId === id ? [m.change] : []));
    expect(changes).toEqual(
      expect.arrayContaining(['started', 'inject_fired', 'alert', 'paused', 'resumed', 'message', 'ended']),
    );
    const last = boss.got.filter((m) => m.type === 'drill').at(-1)!;
    expect(last).toMatchObject({ type: 'drill', drillId: id, drill: { id, status: 'ended' } });
    expect(stranger.got.some((m) => m.type === 'drill')).toBe(false);
    boss.close();
    stranger.close();
  });
});

describe('drill restart and scenario files', () => {
  it('a node restarted during a drill resumes it: timers rebuilt, drill devices publish again', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gw-drill-restart-'));
    let a: DrillNode | undefined = await startDrillNode({}, { dataDir: dir });
    let b: DrillNode | undefined;
    try {
      const t0 = a.clock.now();
      const started = await a.api('POST', '/api/v1/drills', { scenarioId: 'ebike-fire-night' }, 'controller');
      expect(started.status).toBe(201);
      const id = started.body.id;
      await drillAlert(a, id, 'ebike_overtemp');
      await a.advance(30_000);
      await a.node.stop({ keepData: true });
      a = undefined;
      // 10 s later the node is back: the drill clock ran on through the restart
      b = await startDrillNode({}, { dataDir: dir, clockStart: t0 + 40_000 });
      let v = await b.view(id);
      expect(v).toMatchObject({ status: 'running', clock: { elapsedS: 40, running: true } });
      expect(v.injects.find((i: Json) => i.id === 'stairwell-smoke').state).toBe('scheduled');
      await b.advance(20_000, 1000);
      const smoke = await drillAlert(b, id, 'smoke');
      expect(smoke).toMatchObject({ t: 60, drill: true });
      v = await b.view(id);
      expect(v.injects.find((i: Json) => i.id === 'stairwell-smoke')).toMatchObject({ state: 'fired', firedS: 60 });
      const report = (await b.api('GET', `/api/v1/drills/${id}/report`)).body;
      expect(report.timeline.map((e: Json) => e.kind)).toContain('restarted');
      expect((await b.api('POST', `/api/v1/drills/${id}/end`, undefined, 'controller')).status).toBe(200);
    } finally {
      await a?.node.stop({ keepData: true });
      await b?.node.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a broken scenario file stops the start with every problem and the file named', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gw-drill-bad-'));
    try {
      writeFileSync(
        path.join(dir, 'broken.yaml'),
        [
          'id: broken-drill',
          'name: { zh: 坏的, en: Broken }',
          'type: meteor_strike',
          'description: { zh: 描述, en: description }',
          'scope: { buildingIds: [b-limin-01] }',
          'participants: { roles: [grid_worker] }',
          'objectives:',
          '  - { id: o1, text: { zh: 目标, en: objective }, target: { kind: tasks_done_within, taskIds: [nope], seconds: 60 } }',
          'injects:',
          '  - id: smoke',
          '    title: { zh: 烟, en: smoke }',
          '    trigger: { at: 0 }',
          '    action: { kind: device_event, model: native-wristband, place: { unitId: u-limin-01-1 }, event: { type: smoke } }',
        ].join('\n'),
      );
      await expect(startNode({ GRIDWATCH__drills__dir: dir })).rejects.toThrow(
        /drill scenario .*broken\.yaml: type: must be one of fire, ebike_fire/,
      );
      // schema first; with the type fixed, the references and the device checks speak
      writeFileSync(
        path.join(dir, 'broken.yaml'),
        [
          'id: broken-drill',
          'name: { zh: 坏的, en: Broken }',
          'type: fire',
          'description: { zh: 描述, en: description }',
          'scope: { buildingIds: [b-limin-01] }',
          'participants: { roles: [grid_worker] }',
          'objectives:',
          '  - { id: o1, text: { zh: 目标, en: objective }, target: { kind: tasks_done_within, taskIds: [nope], seconds: 60 } }',
          'injects:',
          '  - id: smoke',
          '    title: { zh: 烟, en: smoke }',
          '    trigger: { at: 0 }',
          '    action: { kind: device_event, model: native-wristband, place: { unitId: u-limin-01-1 }, event: { type: smoke } }',
        ].join('\n'),
      );
      const err = await startNode({ GRIDWATCH__drills__dir: dir }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err?.message).toContain('objectives.0.target.taskIds: no task inject "nope"');
      expect(err?.message).toContain(
        'injects.0.action.place: native-wristband is installed on household, not on a unit',
      );
      expect(err?.message).toContain('injects.0.action.event.type: native-wristband does not send "smoke"');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
