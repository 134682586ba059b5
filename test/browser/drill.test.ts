/**
 * A short drill run from the console in a real chromium (issue 6), against a whole real node (Redis, SQLite, MQTT
 * broker, HTTP; demo off, the sample community seeded). The node reads its scenarios from a temporary folder
 * (`drills.dir`): the sample ones and a one-minute scenario written here — an SOS pressed in building 1 (a drill
 * device over MQTT), a message, a task issued a second later, and a manual task.
 *
 * The community director signs in at the desk, starts the drill from #/drills and watches it live on #/drills/<id>:
 * the banner, the clock ticking (standing still while paused), the injects firing, the drill's SOS alert arriving
 * from the live board, a real SOS in the same building meanwhile counted apart and kept off the drill's list. The
 * director acknowledges the drill alert, marks the task done, fires the manual inject, adds a note; the evaluator,
 * on a second console, rates an objective and the director's page shows it live; a grid worker taking part gets
 * the drills entry on their phone while the drill is on. The director pauses and resumes, ends the drill and opens
 * the report: two objectives met, the one whose task was never done missed, the rating, the downloads.
 */
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DESKTOP, launchBrowser, newContext, PHONE, screenshot } from '../support/browser.ts';
import { ADMIN_PASSWORD, ROOT, startNode, type TestNode } from '../support/system.ts';

const SCENARIO = 'browser-short';
const HOUSEHOLD = 'h-limin-01-2-0501';
const DIRECTOR = 'dir.limin';
const EVALUATOR = 'eval.heping';
/** a grid worker of the drill's grid: a participant without a drill role */
const WORKER = 'gw.limin.01';
/** "live": a change shows within this long on every console that may see it */
const LIVE_MS = 5_000;

const SCENARIO_YAML = `# A one-minute drill for the browser test (test/browser/drill.test.ts).
id: ${SCENARIO}
name:
  zh: 浏览器测试：独居老人紧急呼叫
  en: "Browser test: a lone elderly resident's SOS"
type: lone_elderly
description:
  zh: 1号楼2单元501老人按下紧急呼叫按钮，网格员上门查看，再联系家属。
  en: The resident of building 1 unit 2 flat 501 presses the emergency button; the grid worker goes to the door, then calls the family.
durationMinutes: 1
scope:
  buildingIds: [b-limin-01]
participants:
  roles: [grid_worker, grid_leader, community_director, drill_controller, evaluator]
objectives:
  - id: sos-ack
    text: { zh: 紧急呼叫2分钟内确认, en: The SOS acknowledged within 2 min }
    target: { kind: first_ack_within, seconds: 120, alertTypes: [sos] }
  - id: at-the-door
    text: { zh: 10分钟内上门, en: At the door within 10 min }
    target: { kind: tasks_done_within, taskIds: [visit], seconds: 600 }
  - id: family-called
    text: { zh: 10分钟内联系家属, en: The family called within 10 min }
    target: { kind: tasks_done_within, taskIds: [call-family], seconds: 600 }
injects:
  - id: sos
    title: { zh: 紧急呼叫按钮被按下, en: The emergency button is pressed }
    trigger: { at: 0 }
    action:
      kind: device_event
      model: native-emergency-button
      place: { householdId: ${HOUSEHOLD} }
      event: { type: sos }
  - id: visit
    title: { zh: 上门查看, en: Go to the door }
    trigger: { after: { injectId: sos, state: fired, delaySeconds: 1 } }
    action:
      kind: task
      text: { zh: 立即上门查看老人情况。, en: Go and see the resident now. }
      assigneeRole: grid_worker
      householdIds: [${HOUSEHOLD}]
  - id: briefing
    title: { zh: 通报：电话无人接听, en: "Message: nobody answers the phone" }
    trigger: { after: { injectId: sos, state: fired, delaySeconds: 2 } }
    action:
      kind: message
      text: { zh: 老人电话无人接听，请网格员立即上门。, en: Nobody answers the phone; grid worker go now. }
  - id: call-family
    title: { zh: 联系家属, en: Call the family }
    trigger: { manual: true }
    action:
      kind: task
      text: { zh: 电话告知老人子女（演练中只模拟）。, en: Tell the resident's children (simulated). }
      assigneeRole: grid_leader
      householdIds: [${HOUSEHOLD}]
`;

// biome-ignore lint/suspicious/noExplicitAny: JSON answers of the API; the test asserts on them
type Json = any;

let drillsDir: string;
let node: TestNode;
let admin: string;
let browser: Browser;
let deskCtx: BrowserContext;
let evalCtx: BrowserContext;
let phoneCtx: BrowserContext;
let phone: Page;
let desk: Page;
let evaluator: Page;
let passwords: Map<string, string>;
/** a real emergency button in building 1, for a real alert during the drill */
let realButton: { deviceId: string; secret: string; householdId: string };
const seen: { page: string; kind: string; text: string; url: string }[] = [];
const ids: { drill?: string; alert?: string; real?: string } = {};

function watch(page: Page, label: string): void {
  page.on('pageerror', (err) => seen.push({ page: label, kind: 'pageerror', text: err.message, url: page.url() }));
  page.on('console', (msg) => {
    if (msg.type() === 'error') seen.push({ page: label, kind: 'console', text: msg.text(), url: msg.location().url });
  });
  // start and end ask for a confirmation
  page.on('dialog', (d) => void d.accept());
}

const CSP_REPORTER = `document.addEventListener('securitypolicyviolation', (e) => {
  console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline'));
});`;

async function signIn(page: Page, username: string, password: string, onPhone = false): Promise<void> {
  await page.goto('/');
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(password);
  const keep = page.getByTestId('login-phone');
  if (onPhone) await keep.check();
  else await keep.uncheck();
  await page.getByTestId('login-submit').click();
  await page.getByTestId(onPhone ? 'page-mobile' : 'page-board').waitFor();
  await page.locator('[data-testid="conn"][data-state="live"]').waitFor({ timeout: 10_000 });
}

async function go(page: Page, route: string): Promise<void> {
  await page.evaluate(`location.hash = ${JSON.stringify(route)}`);
}

const state = (page: Page, testid: string, attr = 'data-state') => page.getByTestId(testid).getAttribute(attr);

async function shot(page: Page, name: string): Promise<void> {
  await expect.poll(() => page.locator('.toast').count(), { timeout: 10_000, interval: 100 }).toBe(0);
  await screenshot(page, name);
}

async function drill(): Promise<Json> {
  const r = await node.api('GET', `/api/v1/drills/${ids.drill}`, undefined, admin);
  expect(r.status).toBe(200);
  return r.body;
}

beforeAll(async () => {
  // the sample scenarios and the short one, in a folder of their own
  drillsDir = mkdtempSync(path.join(os.tmpdir(), 'gw-drills-'));
  for (const f of readdirSync(path.join(ROOT, 'config/drills'))) {
    if (/\.ya?ml$/.test(f)) copyFileSync(path.join(ROOT, 'config/drills', f), path.join(drillsDir, f));
  }
  writeFileSync(path.join(drillsDir, `${SCENARIO}.yaml`), SCENARIO_YAML);
  node = await startNode({ GRIDWATCH__drills__dir: drillsDir });
  admin = await node.login('admin', ADMIN_PASSWORD);

  const secrets = JSON.parse(readFileSync(path.join(node.dataDir, 'demo-secrets.json'), 'utf8')) as {
    staffPasswords: { username: string; password: string }[];
    deviceSecrets: { deviceId: string; model: string; secret: string; householdId?: string }[];
  };
  passwords = new Map(secrets.staffPasswords.map((p) => [p.username, p.password]));
  const button = secrets.deviceSecrets.find(
    (d) =>
      d.model === 'native-emergency-button' && d.householdId?.startsWith('h-limin-01-') && d.householdId !== HOUSEHOLD,
  );
  expect(button).toBeDefined();
  realButton = { deviceId: button!.deviceId, secret: button!.secret, householdId: button!.householdId! };

  browser = await launchBrowser();
  deskCtx = await newContext(browser, node.base, DESKTOP);
  evalCtx = await newContext(browser, node.base, DESKTOP);
  phoneCtx = await newContext(browser, node.base, PHONE);
  for (const ctx of [deskCtx, evalCtx, phoneCtx]) await ctx.addInitScript({ content: CSP_REPORTER });
  desk = await deskCtx.newPage();
  evaluator = await evalCtx.newPage();
  phone = await phoneCtx.newPage();
  watch(desk, 'desk');
  watch(evaluator, 'evaluator');
  watch(phone, 'phone');
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await node?.stop();
  if (drillsDir) rmSync(drillsDir, { recursive: true, force: true });
});

describe('a short drill run from the console', () => {
  it('the director signs in, opens the drills page from the nav and starts the short scenario', async () => {
    await signIn(desk, DIRECTOR, passwords.get(DIRECTOR)!);
    await desk.getByTestId('nav-drills').click();
    await desk.getByTestId('page-drills').waitFor();
    // the sample scenarios and the test's own, each with its start button
    for (const id of [SCENARIO, 'ebike-fire-night', 'rainstorm-flood', 'power-cut-lift', 'lone-elderly-unresponsive']) {
      await desk.getByTestId(`scenario-${id}`).waitFor();
    }
    const card = desk.getByTestId(`scenario-${SCENARIO}`);
    expect(await card.textContent()).toContain('紧急呼叫2分钟内确认');
    expect(await card.textContent()).toContain('注入 4 项');

    await desk.getByTestId(`start-${SCENARIO}`).click();
    await desk.getByTestId('page-drill').waitFor();
    const m = /#\/drills\/([^/?]+)$/.exec(desk.url());
    expect(m).not.toBeNull();
    ids.drill = decodeURIComponent(m![1]!);
    expect((await drill()).status).toBe('running');
  });

  it('the drill page: the banner, the clock ticking, the injects firing and the drill alert arriving live', async () => {
    const banner = desk.getByTestId('drill-banner');
    // the banner comes with the drill's data, a moment after the page itself on a busy machine
    await banner.waitFor({ timeout: LIVE_MS });
    expect(await banner.isVisible()).toBe(true);
    expect(await banner.textContent()).toContain('【演练 DRILL】');
    expect(await state(desk, 'drill-clock')).toBe('running');

    // the injects fire on schedule and show so without a reload
    await expect.poll(() => state(desk, 'inject-sos'), { timeout: LIVE_MS }).toBe('fired');
    await expect.poll(() => state(desk, 'inject-visit'), { timeout: LIVE_MS }).toBe('fired');
    await expect.poll(() => state(desk, 'task-visit'), { timeout: LIVE_MS }).toBe('open');
    await desk.getByTestId('drill-message-briefing').waitFor({ timeout: LIVE_MS });
    expect(await state(desk, 'inject-call-family')).toBe('pending');
    expect(await state(desk, 'task-call-family')).toBe('pending');

    // the drill's SOS from its drill device, from the live board, with its acknowledge button
    const row = desk.getByTestId('drill-alerts').locator('[data-testid^="alert-row-"]');
    await row.first().waitFor({ timeout: LIVE_MS });
    ids.alert = (await row.first().getAttribute('data-alert-id'))!;
    const alert = (await node.api('GET', `/api/v1/alerts/${ids.alert}`, undefined, admin)).body;
    expect(alert).toMatchObject({ type: 'sos', drill: true, householdId: HOUSEHOLD, status: 'open' });
    expect(await desk.getByTestId(`ack-${ids.alert}`).isVisible()).toBe(true);
    await expect.poll(async () => (await drill()).alerts.map((a: Json) => a.id)).toEqual([ids.alert]);

    // the clock runs: drill seconds go up while the page stays put
    const s0 = Number(await state(desk, 'drill-clock', 'data-seconds'));
    await expect
      .poll(async () => Number(await state(desk, 'drill-clock', 'data-seconds')), { timeout: 3_000 })
      .toBeGreaterThan(s0);
  });

  it('a real SOS in the same building meanwhile is counted apart, not listed with the drill', async () => {
    const c = await mqtt.connectAsync(node.mqttUrl, {
      clientId: realButton.deviceId,
      username: realButton.deviceId,
      password: realButton.secret,
      reconnectPeriod: 0,
    });
    await c.publishAsync(
      `gridwatch/${realButton.deviceId}/event`,
      JSON.stringify({ type: 'sos', id: `real-${Date.now()}`, ts: Date.now() }),
      { qos: 1 },
    );
    await c.endAsync();
    await expect
      .poll(() => state(desk, 'drill-real-alerts', 'data-count'), { timeout: LIVE_MS, interval: 100 })
      .toBe('1');
    const real = await node.api(
      'GET',
      `/api/v1/alerts?type=sos&status=open&householdId=${realButton.householdId}`,
      undefined,
      admin,
    );
    ids.real = real.body.items[0].id;
    expect(real.body.items[0].drill).toBe(false);
    expect(await desk.getByTestId('drill-alerts').getByTestId(`alert-row-${ids.real}`).count()).toBe(0);
  });

  it('the director acknowledges the drill alert, marks the task done, fires the manual inject and adds a note', async () => {
    await desk.getByTestId(`ack-${ids.alert}`).click();
    await expect
      .poll(() => desk.getByTestId(`alert-row-${ids.alert}`).getAttribute('data-status'), { timeout: LIVE_MS })
      .toBe('acknowledged');

    await desk.getByTestId('task-done-visit').click();
    await expect.poll(() => state(desk, 'task-visit'), { timeout: LIVE_MS }).toBe('done');
    expect(await desk.getByTestId('task-done-visit').count()).toBe(0);

    await desk.getByTestId('trigger-call-family').click();
    await expect.poll(() => state(desk, 'inject-call-family'), { timeout: LIVE_MS }).toBe('fired');
    await expect.poll(() => state(desk, 'task-call-family'), { timeout: LIVE_MS }).toBe('open');

    await desk.getByTestId('drill-note-input').fill('网格员3分钟内到达，楼栋长备用钥匙未带。');
    await desk.getByTestId('drill-note-submit').click();
    await expect
      .poll(() => desk.getByTestId('drill-notes').textContent(), { timeout: LIVE_MS })
      .toContain('楼栋长备用钥匙未带');

    const v = await drill();
    expect(v.tasks.find((x: Json) => x.id === 'visit')).toMatchObject({ status: 'done' });
    expect(v.injects.find((x: Json) => x.id === 'call-family')).toMatchObject({ state: 'fired' });
  });

  it('the evaluator, on another console, sees the drill and rates an objective; the director sees it live', async () => {
    await signIn(evaluator, EVALUATOR, passwords.get(EVALUATOR)!);
    // a drill of theirs is on: the banner says so and leads to it
    await evaluator.getByTestId(`drill-running-banner-${ids.drill}`).waitFor({ timeout: LIVE_MS });
    await go(evaluator, `#/drills/${ids.drill}`);
    await evaluator.getByTestId('page-drill').waitFor();
    await expect.poll(() => state(evaluator, 'task-visit')).toBe('done');
    // evaluators rate and note; they do not run the drill
    expect(await evaluator.getByTestId('drill-pause').count()).toBe(0);
    expect(await evaluator.getByTestId('trigger-call-family').count()).toBe(0);
    await evaluator.getByTestId('rating-sos-ack-P').click();
    await expect
      .poll(() => evaluator.getByTestId('rating-sos-ack-P').getAttribute('aria-pressed'), { timeout: LIVE_MS })
      .toBe('true');
    await expect.poll(() => state(desk, 'drill-objective-sos-ack', 'data-rating'), { timeout: LIVE_MS }).toBe('P');
    // the director may not rate
    expect(await desk.getByTestId('rating-sos-ack-P').count()).toBe(0);
  });

  it('a grid worker taking part gets the drills entry on the phone while the drill is on, and the drill page', async () => {
    await signIn(phone, WORKER, passwords.get(WORKER)!, true);
    await phone.getByTestId('nav-drills').waitFor({ timeout: LIVE_MS });
    await phone.getByTestId(`drill-running-banner-${ids.drill}`).waitFor({ timeout: LIVE_MS });
    await go(phone, `#/drills/${ids.drill}`);
    await phone.getByTestId('page-drill').waitFor();
    await phone.getByTestId('drill-banner').waitFor();
    // a participant marks tasks done; the controls are not theirs
    await phone.getByTestId('task-done-call-family').waitFor();
    expect(await phone.getByTestId('drill-end').count()).toBe(0);
    expect(await phone.getByTestId('trigger-call-family').count()).toBe(0);
    // nothing scrolls sideways at 360 px
    expect(await phone.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(PHONE.width);
    await shot(phone, 'phone-drill');
  });

  it('pause stops the clock, resume starts it again; a screenshot of the running drill', async () => {
    await desk.getByTestId('drill-pause').click();
    await expect.poll(() => state(desk, 'drill-clock'), { timeout: LIVE_MS }).toBe('paused');
    await desk.getByTestId('drill-resume').waitFor();
    const paused = await state(desk, 'drill-clock', 'data-seconds');
    await desk.waitForTimeout(1_200);
    expect(await state(desk, 'drill-clock', 'data-seconds')).toBe(paused);
    // the evaluator's console follows
    await expect.poll(() => state(evaluator, 'drill-clock'), { timeout: LIVE_MS }).toBe('paused');

    await desk.getByTestId('drill-resume').click();
    await expect.poll(() => state(desk, 'drill-clock'), { timeout: LIVE_MS }).toBe('running');
    await desk.getByTestId('drill-pause').waitFor();
    await shot(desk, 'desktop-drill');
    // the evaluator goes back to the board: the banner there says a drill is on
    await go(evaluator, '#/board');
    await evaluator.getByTestId(`drill-running-banner-${ids.drill}`).waitFor({ timeout: LIVE_MS });
  });

  it('the director ends the drill; the report shows the objectives met and missed, the rating and the downloads', async () => {
    await desk.getByTestId('drill-end').click();
    await expect
      .poll(() => desk.getByTestId('page-drill').getAttribute('data-status'), { timeout: LIVE_MS })
      .toBe('ended');
    expect(await state(desk, 'drill-clock')).toBe('ended');
    expect(await desk.getByTestId('drill-end').count()).toBe(0);
    // the drill alert was cancelled at the end: off the live list, among the closed ones
    await desk.getByTestId(`drill-closed-${ids.alert}`).waitFor({ state: 'attached', timeout: LIVE_MS });
    expect(await desk.getByTestId(`alert-row-${ids.alert}`).count()).toBe(0);
    // the real alert is untouched
    expect((await node.api('GET', `/api/v1/alerts/${ids.real}`, undefined, admin)).body.status).toBe('open');

    await desk.getByTestId('drill-report-link').click();
    await desk.getByTestId('page-drill-report').waitFor();
    await expect.poll(() => desk.getByTestId('page-drill-report').getAttribute('data-final')).toBe('true');
    expect(await state(desk, 'objective-sos-ack', 'data-met')).toBe('true');
    expect(await state(desk, 'objective-at-the-door', 'data-met')).toBe('true');
    expect(await state(desk, 'objective-family-called', 'data-met')).toBe('false');
    expect(await state(desk, 'objective-family-called', 'data-result')).toBe('missed');
    expect(await desk.getByTestId('objective-sos-ack').textContent()).toContain('顺利完成（P）');
    expect(await desk.getByTestId('report-summary').textContent()).toBe('达成 2 项，未达成 1 项，进行中 0 项');
    expect(await desk.getByTestId('report-notes').textContent()).toContain('楼栋长备用钥匙未带');
    expect(await desk.getByTestId('report-real').textContent()).not.toContain('无');
    expect(await desk.locator('[data-testid="report-timeline-chart"] circle').count()).toBeGreaterThan(5);

    // the downloads: the printable page, the CSV and the JSON, with the console's own session
    const html = desk.getByTestId('report-html-link');
    const htmlRes = await desk.request.get((await html.getAttribute('href'))!);
    expect(htmlRes.status()).toBe(200);
    expect(htmlRes.headers()['content-type']).toContain('text/html');
    expect(await htmlRes.text()).toContain('演练');
    const csv = await desk.request.get((await desk.getByTestId('report-csv-link').getAttribute('href'))!);
    expect(csv.status()).toBe(200);
    expect(await csv.text()).toContain('objective');
    const json = await desk.request.get((await desk.getByTestId('report-json-link').getAttribute('href'))!);
    expect((await json.json()).objectives.map((o: Json) => o.result)).toEqual(['met', 'met', 'missed']);
    await shot(desk, 'desktop-drill-report');

    // the drills page lists it, ended, with its results for comparing with the next one
    await go(desk, '#/drills');
    const row = desk.getByTestId(`drill-row-${ids.drill}`);
    await row.waitFor();
    expect(await row.getAttribute('data-status')).toBe('ended');
    await expect.poll(() => desk.getByTestId(`drill-result-${ids.drill}`).textContent()).toBe('达成 2 · 未达成 1');
    // the banner of the running drill is gone on the evaluator's console
    await expect
      .poll(() => evaluator.getByTestId(`drill-running-banner-${ids.drill}`).count(), { timeout: LIVE_MS })
      .toBe(0);
    // and the worker's drills entry with it: they took part in no drill that is still on
    await expect.poll(() => phone.getByTestId('nav-drills').count(), { timeout: LIVE_MS }).toBe(0);
  });

  it('no uncaught page errors, no CSP violations, no console errors', () => {
    // before signing in, /auth/me answers 401: that is how the console knows to show the login page
    const expected = (e: (typeof seen)[number]) =>
      /Failed to load resource/.test(e.text) && /status of 401/.test(e.text) && e.url.endsWith('/api/v1/auth/me');
    expect(seen.filter((e) => !expected(e))).toEqual([]);
  });
});
