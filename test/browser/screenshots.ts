/**
 * Screenshots of the console's pages at desk (1440 × 900) and phone (360 × 640) sizes, with Debian's chromium
 * driven by playwright-core. Not a test: a look at what the pages are like, and a list of browser errors (CSP
 * violations, exceptions, failed requests) seen on the way.
 *
 *   npx tsx test/browser/screenshots.ts --url http://localhost:18080 --password <admin password> \
 *     [--data-dir <the node's GRIDWATCH_DATA_DIR>] [--out screenshots]
 *
 * With --data-dir it presses an emergency button and a wristband of the demo fleet first (their secrets are in
 * demo-secrets.json there), so that the board has alerts, and signs the phone in as the grid worker of that grid.
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { type Browser, chromium, type Page } from 'playwright-core';

const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const { values: args } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://localhost:18080' },
    user: { type: 'string', default: 'admin' },
    password: { type: 'string', default: process.env.GRIDWATCH_ADMIN_PASSWORD ?? '' },
    'data-dir': { type: 'string' },
    'mqtt-port': { type: 'string' },
    out: { type: 'string', default: 'screenshots' },
    lang: { type: 'string', default: 'zh' },
  },
});

const base = args.url!.replace(/\/$/, '');
const out = path.resolve(args.out!);
const problems: string[] = [];

interface DemoSecrets {
  deviceSecrets: { deviceId: string; model: string; secret: string; householdId?: string }[];
  staffPasswords: { username: string; password: string }[];
}

async function demoSecrets(): Promise<DemoSecrets | undefined> {
  if (!args['data-dir']) return undefined;
  return JSON.parse(await readFile(path.join(args['data-dir'], 'demo-secrets.json'), 'utf8')) as DemoSecrets;
}

/** Presses SOS on one emergency button and one wristband, over real MQTT with their own credentials. */
async function raiseAlerts(secrets: DemoSecrets, port: number): Promise<string[]> {
  const picks = ['native-emergency-button', 'native-wristband']
    .map((model) => secrets.deviceSecrets.find((d) => d.model === model))
    .filter((d) => d !== undefined);
  const households: string[] = [];
  for (const d of picks) {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      clientId: d.deviceId,
      username: d.deviceId,
      password: d.secret,
      reconnectPeriod: 0,
    });
    await client.publishAsync(
      `gridwatch/${d.deviceId}/event`,
      JSON.stringify({ type: 'sos', id: `shot-${Date.now()}-${d.deviceId}`, ts: Date.now() }),
      { qos: 1 },
    );
    await client.endAsync();
    if (d.householdId) households.push(d.householdId);
  }
  return households;
}

async function mqttPort(): Promise<number | undefined> {
  if (args['mqtt-port']) return Number(args['mqtt-port']);
  return undefined;
}

function watch(page: Page, label: string): void {
  page.on('console', (msg) => {
    // the 401 of /auth/me before signing in is how the console learns it must show the login page
    if (/status of 401/.test(msg.text())) return;
    if (msg.type() === 'error' || msg.type() === 'warning')
      problems.push(`${label} console ${msg.type()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`${label} exception: ${err.message}`));
  page.on('requestfailed', (req) => {
    // an aborted fetch (a page left before its data came) is not a problem
    if (!/ERR_ABORTED/.test(req.failure()?.errorText ?? '')) {
      problems.push(`${label} request failed: ${req.url()} ${req.failure()?.errorText}`);
    }
  });
  page.on('response', (res) => {
    if (res.status() >= 400 && !res.url().includes('/auth/me')) problems.push(`${label} ${res.status()} ${res.url()}`);
  });
}

async function signIn(page: Page, username: string, password: string, phone: boolean): Promise<void> {
  await page.goto(`${base}/`);
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(password);
  const box = page.getByTestId('login-phone');
  if ((await box.isChecked()) !== phone) await box.click();
  await page.getByTestId('login-submit').click();
  await page.getByTestId('conn').waitFor();
}

async function shoot(page: Page, name: string, route: string, ready?: string): Promise<void> {
  // (these run in the page: strings, since this file is type-checked without the DOM library)
  await page.evaluate(`location.hash = ${JSON.stringify(route)}`);
  if (ready) {
    await page
      .getByTestId(ready)
      .first()
      .waitFor({ timeout: 10_000 })
      .catch(() => problems.push(`${name}: ${ready} did not show within 10 s`));
  }
  // charts and lazy pages settle
  await page.waitForLoadState('networkidle').catch(() => undefined);
  await page.waitForTimeout(600);
  await page.evaluate('window.scrollTo(0, 0)');
  const file = path.join(out, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  process.stdout.write(`${file}\n`);
}

async function main(): Promise<void> {
  await mkdir(out, { recursive: true });
  const secrets = await demoSecrets();
  const port = await mqttPort();
  const households = secrets && port ? await raiseAlerts(secrets, port) : [];
  const browser: Browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: FLAGS });
  try {
    // ---------------------------------------------------------------- desk
    const desk = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'zh-CN' });
    await desk.addInitScript({ content: `localStorage.setItem('gw.lang', ${JSON.stringify(args.lang)})` });
    const page = await desk.newPage();
    watch(page, 'desk');
    await page.goto(`${base}/`);
    await page.screenshot({ path: path.join(out, 'desk-login.png') });
    await signIn(page, args.user!, args.password!, false);
    await page.waitForTimeout(1500);
    await shoot(page, 'desk-board', '#/board', 'page-board');
    const firstRow = page.locator('[data-testid^="alert-row-"]').first();
    if (await firstRow.count()) {
      const id = await firstRow.getAttribute('data-alert-id');
      await page.getByTestId(`expand-${id}`).click();
      await page.waitForTimeout(500);
      await page.screenshot({ path: path.join(out, 'desk-board-expanded.png'), fullPage: true });
    }
    await shoot(page, 'desk-overview', '#/overview', 'page-overview');
    await shoot(page, 'desk-households', '#/households', 'page-households');
    // a household with activity sensors, for the charts
    const hh =
      households[0] ??
      (await page.evaluate(async () => {
        const r = await fetch('/api/v1/devices?model=native-motion&limit=1');
        const body = (await r.json()) as { items: { placement: { householdId?: string } }[] };
        return body.items[0]?.placement.householdId ?? 'h-limin-01-1-0101';
      }));
    await shoot(page, 'desk-household', `#/households/${hh}`, 'page-household');
    const devices = await page.evaluate(async (h) => {
      const r = await fetch(`/api/v1/devices?householdId=${encodeURIComponent(h)}`);
      return ((await r.json()) as { items: { id: string; model: string }[] }).items;
    }, hh);
    const device = devices.find((d) => /wristband|wb200|button/.test(d.model)) ?? devices[0];
    if (device) await shoot(page, 'desk-device', `#/devices/${device.id}`, 'page-device');
    await shoot(page, 'desk-devices', '#/devices?status=offline', 'page-devices');
    await shoot(page, 'desk-outbox', '#/outbox', 'page-outbox');
    await shoot(page, 'desk-staff', '#/staff', 'page-staff');
    await shoot(page, 'desk-access-log', '#/access-log', 'page-access-log');
    await shoot(page, 'desk-roster', '#/roster', 'page-roster');
    await shoot(page, 'desk-mobile-page', '#/m', 'page-mobile');

    // ---------------------------------------------------------------- phone
    const phone = await browser.newContext({
      viewport: { width: 360, height: 640 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
      locale: 'zh-CN',
    });
    await phone.addInitScript({ content: `localStorage.setItem('gw.lang', ${JSON.stringify(args.lang)})` });
    const m = await phone.newPage();
    watch(m, 'phone');
    await m.goto(`${base}/`);
    await m.screenshot({ path: path.join(out, 'phone-login.png') });
    const worker = secrets?.staffPasswords.find((s) => s.username === 'gw.limin.01');
    if (worker) await signIn(m, worker.username, worker.password, true);
    else await signIn(m, args.user!, args.password!, true);
    await m.waitForTimeout(1500);
    await shoot(m, 'phone-my-alerts', '#/m', 'page-mobile');
    await m.screenshot({ path: path.join(out, 'phone-my-alerts-viewport.png') });
    const card = m.locator('[data-testid^="alert-row-"]').first();
    if (await card.count()) {
      const id = await card.getAttribute('data-alert-id');
      await m.getByTestId(`resolve-${id}`).click();
      await m.waitForTimeout(300);
      await card.screenshot({ path: path.join(out, 'phone-resolve-form.png') });
      await m
        .getByRole('button', { name: /取消|Cancel/ })
        .first()
        .click();
    }
    const visit = m.locator('[data-testid^="record-visit-"]').first();
    if (await visit.count()) {
      await visit.click();
      await m.waitForTimeout(300);
      await m.getByTestId('visit-form').screenshot({ path: path.join(out, 'phone-visit-form.png') });
    }
    await shoot(m, 'phone-board', '#/board', 'page-board');
    await shoot(m, 'phone-household', `#/households/${hh}`, 'page-household');
    if (device) await shoot(m, 'phone-device', `#/devices/${device.id}`, 'page-device');
    await shoot(m, 'phone-overview', '#/overview', 'page-overview');
    await shoot(m, 'phone-outbox', '#/outbox', 'page-outbox');
  } finally {
    await browser.close();
  }
  process.stdout.write(problems.length ? `\nproblems:\n${problems.join('\n')}\n` : '\nno browser problems seen\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
