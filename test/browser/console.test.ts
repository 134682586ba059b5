/**
 * The operations console in a real chromium (Debian's, driven by playwright-core) against a whole real node (Redis,
 * SQLite, MQTT broker, HTTP; demo off, the sample community seeded): the admin at the desk (1440 × 900) and the
 * grid worker of g-limin-01 on a phone (360 × 640) see an SOS pressed on an emergency button appear live, the phone
 * acknowledges it in one tap (the desk follows, the escalation stops) and resolves it; an alert of another grid
 * never reaches that phone, its household page says forbidden and the API refuses to act on it; a console dropped
 * by the server catches up without duplicates. Screenshots of the main pages land in test/browser/screenshots/.
 *
 * The tests run in order and share the browser, the two signed-in pages and the alerts they raise.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { timerKey } from '../../src/notify/escalation.ts';
import { DESKTOP, launchBrowser, newContext, PHONE, screenshot } from '../support/browser.ts';
import { ADMIN_PASSWORD, startNode, type TestNode } from '../support/system.ts';

const MY_GRID = 'g-limin-01';
const OTHER_GRID = 'g-limin-02';
const WORKER = 'gw.limin.01';
const WORKER_ID = 'st-gw.limin.01';
const WORKER_PASSWORD = 'browser-test-worker-password';
/** "live": an event shows within this long on every console that may see it */
const LIVE_MS = 5_000;
/** how long a page is watched for something that must not come, after a later event did come */
const ABSENCE_MS = 1_500;

interface Button {
  deviceId: string;
  secret: string;
  householdId: string;
  gridId: string;
}

interface WsFrame {
  type: string;
  since?: string;
  alertId?: string;
  change?: string;
}

/** One WebSocket of a page, with the frames it sent and received (parsed). */
interface Socket {
  sent: WsFrame[];
  received: WsFrame[];
}

// biome-ignore lint/suspicious/noExplicitAny: alerts and notifications as the API answers them
type Json = any;

let node: TestNode;
let admin: string;
let browser: Browser;
let deskCtx: BrowserContext;
let phoneCtx: BrowserContext;
let desk: Page;
let phone: Page;
let workerName: string;
/** emergency buttons of households in the grid worker's grid, and one in the other grid */
let mine: Button[];
let theirs: Button;
/** console errors and page errors, with the page and the resource they are about */
const seen: { page: string; kind: string; text: string; url: string }[] = [];
const deskSockets: Socket[] = [];
/** alert ids, filled in as the tests go */
const ids: { first?: string; other?: string; control?: string; missed?: string } = {};

// ------------------------------------------------------------------ helpers

function watch(page: Page, label: string): void {
  page.on('pageerror', (err) => seen.push({ page: label, kind: 'pageerror', text: err.message, url: page.url() }));
  page.on('console', (msg) => {
    if (msg.type() === 'error') seen.push({ page: label, kind: 'console', text: msg.text(), url: msg.location().url });
  });
}

function frame(payload: string | Buffer): WsFrame {
  try {
    const m = JSON.parse(String(payload)) as Json;
    return {
      type: String(m.type),
      since: m.since,
      alertId: m.alert?.id ?? m.notification?.alertId,
      change: m.change,
    };
  } catch {
    return { type: '?' };
  }
}

/** Every CSP violation becomes a console error the watcher sees (init scripts are not subject to the CSP). */
const CSP_REPORTER = `document.addEventListener('securitypolicyviolation', (e) => {
  console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline'));
});`;

async function publishSos(b: Button, eventId: string): Promise<void> {
  const c = await mqtt.connectAsync(node.mqttUrl, {
    clientId: b.deviceId,
    username: b.deviceId,
    password: b.secret,
    reconnectPeriod: 0,
  });
  await c.publishAsync(`gridwatch/${b.deviceId}/event`, JSON.stringify({ type: 'sos', id: eventId, ts: Date.now() }), {
    qos: 1,
  });
  await c.endAsync();
}

async function alertOf(householdId: string): Promise<string> {
  let id: string | undefined;
  await expect
    .poll(
      async () => {
        const r = await node.api(
          'GET',
          `/api/v1/alerts?type=sos&status=open&householdId=${householdId}`,
          undefined,
          admin,
        );
        id = r.body.items?.[0]?.id;
        return id;
      },
      { timeout: LIVE_MS, interval: 50 },
    )
    .toBeDefined();
  return id!;
}

async function getAlert(id: string, token = admin): Promise<Json> {
  const r = await node.api('GET', `/api/v1/alerts/${id}`, undefined, token);
  expect(r.status).toBe(200);
  return r.body;
}

async function notifications(alertId: string): Promise<Json[]> {
  return (await node.api('GET', `/api/v1/notifications?alertId=${alertId}&limit=1000`, undefined, admin)).body.items;
}

/** The open and acknowledged alerts the API lists for a token: what a board may show. */
async function activeIds(token: string): Promise<string[]> {
  const out: string[] = [];
  for (const status of ['open', 'acknowledged']) {
    const r = await node.api('GET', `/api/v1/alerts?status=${status}&limit=1000`, undefined, token);
    out.push(...r.body.items.map((a: Json) => a.id as string));
  }
  return out.sort();
}

/** The alert ids of the rows a page shows, in page order (duplicates kept). */
async function rowIds(page: Page): Promise<string[]> {
  return page
    .locator('[data-testid^="alert-row-"]')
    .evaluateAll((els) => els.map((e) => e.getAttribute('data-alert-id') ?? ''));
}

const row = (page: Page, id: string) => page.getByTestId(`alert-row-${id}`);

async function connState(page: Page): Promise<string | null> {
  return page.getByTestId('conn').getAttribute('data-state');
}

async function waitLive(page: Page, timeout = 10_000): Promise<void> {
  await page.locator('[data-testid="conn"][data-state="live"]').waitFor({ timeout });
}

/** Hash navigation inside the page (no reload: the live channel stays up). */
async function go(page: Page, route: string): Promise<void> {
  await page.evaluate(`location.hash = ${JSON.stringify(route)}`);
}

/** Set once after sign-in; gone if the page ever reloads. */
async function markPage(page: Page): Promise<void> {
  await page.evaluate('window.__gwSamePage = true');
}
async function samePage(page: Page): Promise<boolean> {
  return (await page.evaluate('window.__gwSamePage === true')) as boolean;
}

/** A screenshot once the action toasts (4 s) have gone, so that they do not cover the page. */
async function shot(page: Page, name: string): Promise<void> {
  await expect.poll(() => page.locator('.toast').count(), { timeout: 10_000, interval: 100 }).toBe(0);
  await screenshot(page, name);
}

async function signIn(page: Page, username: string, password: string, keepPhone: boolean): Promise<void> {
  await page.goto('/');
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(password);
  const box = page.getByTestId('login-phone');
  if (keepPhone) await box.check();
  else await box.uncheck();
  await page.getByTestId('login-submit').click();
}

// ------------------------------------------------------------------ setup

beforeAll(async () => {
  node = await startNode();
  admin = await node.login('admin', ADMIN_PASSWORD);

  // the sample's grid worker of g-limin-01, with a password this test knows (a reset signs them out everywhere)
  const pw = await node.api('POST', `/api/v1/staff/${WORKER_ID}/password`, { password: WORKER_PASSWORD }, admin);
  expect(pw.status, JSON.stringify(pw.body)).toBeLessThan(300);
  const staff = await node.api('GET', `/api/v1/staff/${WORKER_ID}`, undefined, admin);
  expect(staff.body.coverage.gridIds).toEqual([MY_GRID]);
  workerName = staff.body.name;

  // emergency buttons of the sample community, with the grid of their household
  const secrets = JSON.parse(readFileSync(path.join(node.dataDir, 'demo-secrets.json'), 'utf8')).deviceSecrets as {
    deviceId: string;
    model: string;
    secret: string;
    householdId?: string;
  }[];
  const buttons: Button[] = [];
  for (const d of secrets) {
    if (d.model !== 'native-emergency-button' || !d.householdId) continue;
    const h = await node.system.registry.getHousehold(d.householdId);
    if (h) buttons.push({ deviceId: d.deviceId, secret: d.secret, householdId: d.householdId, gridId: h.gridId });
  }
  mine = buttons.filter((b) => b.gridId === MY_GRID);
  theirs = buttons.find((b) => b.gridId === OTHER_GRID)!;
  expect(mine.length).toBeGreaterThanOrEqual(3);
  expect(theirs).toBeDefined();

  browser = await launchBrowser();
  deskCtx = await newContext(browser, node.base, DESKTOP);
  phoneCtx = await newContext(browser, node.base, PHONE);
  for (const ctx of [deskCtx, phoneCtx]) await ctx.addInitScript({ content: CSP_REPORTER });
  desk = await deskCtx.newPage();
  phone = await phoneCtx.newPage();
  watch(desk, 'desk');
  watch(phone, 'phone');
  desk.on('websocket', (ws) => {
    const s: Socket = { sent: [], received: [] };
    deskSockets.push(s);
    ws.on('framesent', (f) => s.sent.push(frame(f.payload)));
    ws.on('framereceived', (f) => s.received.push(frame(f.payload)));
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await node?.stop();
});

// ------------------------------------------------------------------ tests

describe('the console in chromium', () => {
  it('desk: the admin signs in on the login page; the board shows, live, with the outbox banner', async () => {
    await desk.goto('/');
    await desk.getByTestId('login-submit').waitFor();
    await screenshot(desk, 'desktop-login');
    await signIn(desk, 'admin', ADMIN_PASSWORD, false);
    await desk.getByTestId('page-board').waitFor();
    expect(desk.url()).toMatch(/#\/board$/);
    await waitLive(desk);
    await desk.getByTestId('sms-outbox-banner').waitFor();
    expect(await desk.getByTestId('sms-outbox-banner').isVisible()).toBe(true);
    expect(await desk.getByTestId('user').textContent()).toMatch(/admin|管理员/i);
    await markPage(desk);
  });

  it('phone: the grid worker signs in with "keep this phone signed in" and lands on #/m', async () => {
    await signIn(phone, WORKER, WORKER_PASSWORD, true);
    await phone.getByTestId('page-mobile').waitFor();
    expect(phone.url()).toMatch(/#\/m$/);
    await waitLive(phone);
    expect(await phone.getByTestId('user').textContent()).toContain(workerName);
    // a long-lived phone session, not a desk one
    const me = await phone.request.get('/api/v1/auth/me');
    expect(await me.json()).toMatchObject({ username: WORKER, device: 'phone' });
    // the phone page fits 360 px: nothing scrolls sideways
    expect(await phone.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(PHONE.width);
    await markPage(phone);
  });

  it('an SOS pressed on an emergency button (MQTT, QoS 1) appears live on the desk board and on the phone', async () => {
    const button = mine[0]!;
    const t0 = Date.now();
    await publishSos(button, `browser-sos-${t0}`);
    const id = await alertOf(button.householdId);
    ids.first = id;
    await Promise.all([row(desk, id).waitFor({ timeout: LIVE_MS }), row(phone, id).waitFor({ timeout: LIVE_MS })]);
    expect(Date.now() - t0).toBeLessThan(LIVE_MS);
    for (const page of [desk, phone]) {
      expect(await row(page, id).getAttribute('data-status')).toBe('open');
      expect(await row(page, id).getAttribute('data-severity')).toBe('critical');
      expect(await page.getByTestId(`address-${id}`).textContent()).not.toBe('');
      expect(await page.getByTestId(`ack-${id}`).isVisible()).toBe(true);
      // no reload: the same document got it over the live channel
      expect(await samePage(page)).toBe(true);
    }
    // the desk row says who was texted (the first step: grid worker and grid leader)
    await expect.poll(() => desk.getByTestId(`notified-${id}`).textContent(), { timeout: LIVE_MS }).toMatch(/\d/);
  });

  it('one tap on the phone acknowledges it: the desk follows live, the escalation stops; then resolved on the phone', async () => {
    const id = ids.first!;
    // the escalation is running: its policy is frozen into the alert, the first step's SMS are out
    await expect.poll(() => node.system.escalator?.frozen(id), { timeout: LIVE_MS }).toBeDefined();
    await expect.poll(async () => (await notifications(id)).length, { timeout: LIVE_MS }).toBeGreaterThan(0);
    expect((await notifications(id)).every((n) => n.step === 0)).toBe(true);
    const escalator = node.system.escalator!;
    // the next step (the community director, 5 minutes on) waits on its timer
    await expect.poll(() => escalator.scheduler.get(timerKey(id, 1)), { timeout: LIVE_MS }).toBeDefined();

    await phone.getByTestId(`ack-${id}`).tap();
    await expect
      .poll(() => row(desk, id).getAttribute('data-status'), { timeout: LIVE_MS, interval: 50 })
      .toBe('acknowledged');
    await expect.poll(() => desk.getByTestId(`acked-by-${id}`).textContent()).toContain(workerName);
    expect(await desk.getByTestId(`ack-${id}`).count()).toBe(0);
    // the phone hears of its own acknowledgement over the live channel too, a moment after the desk maybe
    await expect
      .poll(() => row(phone, id).getAttribute('data-status'), { timeout: LIVE_MS, interval: 50 })
      .toBe('acknowledged');

    const acked = await getAlert(id);
    expect(acked.status).toBe('acknowledged');
    expect(acked.acknowledgedBy).toBe(WORKER_ID);
    expect(acked.timeline).toContainEqual(
      expect.objectContaining({ action: 'acknowledged', by: WORKER_ID, via: 'console' }),
    );
    // the escalation stopped: no frozen policy left and the later steps' timers cancelled, so none can fire
    await expect.poll(() => escalator.frozen(id), { timeout: LIVE_MS }).toBeUndefined();
    for (const step of [1, 2]) expect(escalator.scheduler.get(timerKey(id, step))).toBeUndefined();
    const sentAtAck = await notifications(id);
    expect(sentAtAck.every((n) => n.step === 0)).toBe(true);

    // the timeline on the desk, expanded, shows the acknowledgement
    await desk.getByTestId(`expand-${id}`).click();
    await expect.poll(() => desk.getByTestId(`timeline-${id}`).locator('li').count()).toBeGreaterThanOrEqual(2);
    await desk.getByTestId(`expand-${id}`).click();

    // resolve on the phone: one tap opens the outcomes, one picks "resident fine", one confirms
    await phone.getByTestId(`resolve-${id}`).tap();
    const form = phone.getByTestId(`resolve-form-${id}`);
    await form.waitFor();
    await form.getByTestId('outcome-resident_fine').tap();
    await phone.getByTestId(`resolve-submit-${id}`).tap();
    await row(phone, id).waitFor({ state: 'detached', timeout: LIVE_MS });
    await row(desk, id).waitFor({ state: 'detached', timeout: LIVE_MS });
    const closed = desk.getByTestId(`closed-${id}`);
    await closed.waitFor({ state: 'attached', timeout: LIVE_MS });
    expect(await closed.getAttribute('data-status')).toBe('resolved');

    const resolved = await getAlert(id);
    expect(resolved).toMatchObject({ status: 'resolved', outcome: 'resident_fine' });
    expect(resolved.timeline).toContainEqual(
      expect.objectContaining({ action: 'resolved', by: WORKER_ID, via: 'console' }),
    );
    // still nothing beyond the first step
    const sent = await notifications(id);
    expect(sent.every((n) => n.step === 0)).toBe(true);
    expect(sent.length).toBe(sentAtAck.length);
  });

  it("another grid's SOS reaches the desk but never the grid worker's phone; its household and acting on it are forbidden", async () => {
    const t0 = Date.now();
    await publishSos(theirs, `browser-other-${t0}`);
    const other = await alertOf(theirs.householdId);
    ids.other = other;
    // the control: an SOS of the worker's own grid, pressed after it
    const control = mine[1]!;
    await publishSos(control, `browser-control-${t0}`);
    const mineId = await alertOf(control.householdId);
    ids.control = mineId;

    await row(desk, other).waitFor({ timeout: LIVE_MS });
    await row(desk, mineId).waitFor({ timeout: LIVE_MS });
    // the phone got the later event of its own grid; the earlier one of the other grid must not come, ever
    await row(phone, mineId).waitFor({ timeout: LIVE_MS });
    await phone.waitForTimeout(ABSENCE_MS);
    expect(await row(phone, other).count()).toBe(0);
    // and the phone shows exactly what the API lets the worker see
    const worker = await node.login(WORKER, WORKER_PASSWORD);
    await expect.poll(async () => (await rowIds(phone)).sort()).toEqual(await activeIds(worker));

    // in the browser: the other grid's household page says forbidden
    await go(phone, `#/households/${theirs.householdId}`);
    await phone.getByTestId('forbidden').waitFor();
    expect(await phone.getByTestId('page-household').count()).toBe(0);
    await shot(phone, 'phone-forbidden');

    // against the API: with the worker's bearer token, and with the phone's own cookie from the console's origin
    const byToken = await node.api('POST', `/api/v1/alerts/${other}/ack`, {}, worker);
    expect(byToken.status).toBe(403);
    expect(byToken.body.error).toBe('forbidden');
    const byCookie = await phone.request.post(`/api/v1/alerts/${other}/ack`, {
      data: {},
      headers: { origin: node.base },
    });
    expect(byCookie.status()).toBe(403);
    expect((await byCookie.json()).error).toBe('forbidden'); // refused for scope, not as cross-site
    expect((await node.api('GET', `/api/v1/alerts/${other}`, undefined, worker)).status).toBe(403);
    expect((await getAlert(other)).status).toBe('open');

    await go(phone, '#/m');
    await row(phone, mineId).waitFor();
  });

  it('reconnect catch-up: dropped by the server, the desk catches up on an alert raised meanwhile, exactly once', async () => {
    await go(desk, '#/board');
    await desk.getByTestId('page-board').waitFor();
    await waitLive(desk);
    await waitLive(phone);
    const socketsBefore = deskSockets.length;

    node.system.consoleHub.dropAll();
    await desk.locator('[data-testid="conn"][data-state="reconnecting"]').waitFor({ timeout: LIVE_MS });
    await desk.getByTestId('reconnecting-banner').waitFor();

    // raised while the consoles are away (they retry after about a second)
    const hh = (await node.system.registry.getHousehold(mine[2]!.householdId))!;
    const { alert: missed } = await node.system.alerts.raise({
      type: 'sos',
      category: 'resident_safety',
      severity: 'critical',
      keyOn: 'household',
      subject: {
        householdId: hh.id,
        gridId: hh.gridId,
        buildingId: hh.buildingId,
        unitId: hh.unitId,
        colour: hh.colour,
      },
      drill: false,
      ts: Date.now(),
      evidence: [],
      summary: 'SOS',
    });
    ids.missed = missed.id;
    expect(await connState(desk)).toBe('reconnecting');

    await waitLive(desk);
    await row(desk, missed.id).waitFor({ timeout: LIVE_MS });
    expect(await row(desk, missed.id).count()).toBe(1);
    // the phone (same grid) catches up as well
    await waitLive(phone);
    await row(phone, missed.id).waitFor({ timeout: LIVE_MS });
    expect(await row(phone, missed.id).count()).toBe(1);

    // it came in the replay of the new connection (hello with `since`, then the missed events, then caught-up),
    // not from a fresh snapshot
    expect(deskSockets.length).toBeGreaterThan(socketsBefore);
    const again = deskSockets.at(-1)!;
    await expect.poll(() => again.received.some((f) => f.type === 'caught-up'), { timeout: LIVE_MS }).toBe(true);
    const hello = again.sent.find((f) => f.type === 'hello');
    expect(hello?.since).toMatch(/^\d+-\d+$/);
    expect(again.received.some((f) => f.type === 'snapshot')).toBe(false);
    const replayed = again.received.findIndex((f) => f.type === 'alert' && f.alertId === missed.id);
    const caughtUp = again.received.findIndex((f) => f.type === 'caught-up');
    expect(replayed).toBeGreaterThanOrEqual(0);
    expect(replayed).toBeLessThan(caughtUp);

    // no duplicates, of the new alert or of older ones; the board holds exactly what the API lists
    await expect.poll(async () => (await rowIds(desk)).sort(), { timeout: LIVE_MS }).toEqual(await activeIds(admin));
    const onDesk = await rowIds(desk);
    expect(new Set(onDesk).size).toBe(onDesk.length);
    for (const id of [ids.other!, ids.control!, missed.id]) expect(await row(desk, id).count()).toBe(1);
    expect(await row(desk, ids.first!).count()).toBe(0);
    expect(await desk.getByTestId(`closed-${ids.first}`).count()).toBe(1);
    const onPhone = await rowIds(phone);
    expect(new Set(onPhone).size).toBe(onPhone.length);
    const worker = await node.login(WORKER, WORKER_PASSWORD);
    await expect.poll(async () => (await rowIds(phone)).sort()).toEqual(await activeIds(worker));
    expect(await samePage(desk)).toBe(true);
    expect(await samePage(phone)).toBe(true);

    // the board with several alerts, and the phone with its own two
    await shot(desk, 'desktop-board');
    await desk.getByTestId(`expand-${ids.control}`).click();
    await desk.getByTestId(`timeline-${ids.control}`).waitFor();
    await shot(desk, 'desktop-board-expanded');
    await desk.getByTestId(`expand-${ids.control}`).click();
    await shot(phone, 'phone-my-alerts');
  });

  it('screenshots of the main pages at desk and phone size', async () => {
    // overview: grids with their counts, the chart of alerts per day
    await desk.getByTestId('nav-overview').click();
    await desk.getByTestId(`overview-grid-${MY_GRID}`).waitFor();
    await desk.locator('[data-testid="chart-per-day"] canvas').first().waitFor();
    await shot(desk, 'desktop-overview');

    // a household (the admin sees personal details), and its emergency button's device page
    await go(desk, `#/households/${mine[0]!.householdId}`);
    await desk.getByTestId('page-household').waitFor();
    expect(await desk.getByTestId('personal-details').getAttribute('data-state')).toBe('shown');
    await shot(desk, 'desktop-household');
    await go(desk, `#/devices/${mine[0]!.deviceId}`);
    await desk.getByTestId('page-device').waitFor();
    await desk.getByTestId('device-commands').waitFor();
    await desk.getByTestId('device-status-value').waitFor();
    await shot(desk, 'desktop-device');

    // the outbox: the SMS of the alerts above
    await desk.getByTestId('nav-outbox').click();
    await desk.getByTestId('page-outbox').waitFor();
    await desk.locator('[data-testid^="sms-"]').first().waitFor();
    await shot(desk, 'desktop-outbox');

    // staff accounts (admins)
    await desk.getByTestId('nav-staff').click();
    await desk.getByTestId('page-staff').waitFor();
    await desk.getByTestId(`staff-${WORKER}`).waitFor();
    await shot(desk, 'desktop-staff');

    // the phone: a household of the worker's own grid (details shown to its grid worker)
    await go(phone, `#/households/${mine[1]!.householdId}`);
    await phone.getByTestId('page-household').waitFor();
    expect(await phone.getByTestId('personal-details').getAttribute('data-state')).toBe('shown');
    await shot(phone, 'phone-household');
    await go(phone, '#/m');
    await phone.getByTestId('page-mobile').waitFor();
  });

  it('no uncaught page errors, no CSP violations, no console errors but the expected refusals', () => {
    const csp = seen.filter((e) =>
      /Content Security Policy|CSP violation|Refused to (load|execute|apply)/i.test(e.text),
    );
    expect(csp).toEqual([]);
    expect(seen.filter((e) => e.kind === 'pageerror')).toEqual([]);
    const expected = (e: (typeof seen)[number]) =>
      /Failed to load resource/.test(e.text) &&
      // before signing in, /auth/me answers 401: that is how the console knows to show the login page
      ((/status of 401/.test(e.text) && e.url.endsWith('/api/v1/auth/me')) ||
        // the other grid's household page, opened on the phone to see it refused
        (/status of 403/.test(e.text) && e.page === 'phone' && e.url.includes(theirs.householdId)));
    expect(seen.filter((e) => !expected(e))).toEqual([]);
  });
});
