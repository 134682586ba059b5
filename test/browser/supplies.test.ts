/**
 * Emergency supplies in the console (issue 7) in a real chromium, against a whole real node (Redis, SQLite, MQTT
 * broker, HTTP, the alert engine; demo off, the sample community seeded, `supplies.sample` on: four depots, their
 * keepers and opening stock).
 *
 * 利民's keeper opens 物资 from the nav: the depots and the per-community shortfalls. On the depot page they receive
 * 5 sandbags (a new lot), issue 15 to a drill (40 + 5 − 15 = 30 against a minimum of 33): the level turns below
 * minimum and the below-minimum alert shows. "Find nearby" lists 幸福's depot first; they request 20 bags from it.
 * 幸福's keeper, on a second console, sees the request arrive live, approves and dispatches it; 利民's page shows it
 * in transit live, the keeper receives it: 50 bags, not below minimum, the alert gone from the page and resolved in
 * the API; the ledger shows the drill issue and the transfer. The CSV report downloads with the session; the
 * neighbour's page reads in English. A stock count imported from CSV: a bad file shows its problems by line and
 * changes nothing; a good one is checked (a dry run), then imported. No page errors, no console errors.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DESKTOP, launchBrowser, newContext, screenshot } from '../support/browser.ts';
import { ADMIN_PASSWORD, startNode, type TestNode } from '../support/system.ts';

const KEEPER = 'depot.limin';
const NEIGHBOUR = 'depot.xingfu';
const DEPOT = 'dp-limin';
const FROM = 'dp-xingfu';
const ITEM = 'sandbag';
const DRILL_REF = 'drill-flood-2026q4';
/** "live": a change shows within this long on every console that may see it */
const LIVE_MS = 5_000;

// biome-ignore lint/suspicious/noExplicitAny: JSON answers of the API; the test asserts on them
type Json = any;

let node: TestNode;
let admin: string;
let browser: Browser;
let keeperCtx: BrowserContext;
let neighbourCtx: BrowserContext;
let keeper: Page;
let neighbour: Page;
let passwords: Map<string, string>;
let transferId: string;
let alertId: string;
const seen: { page: string; kind: string; text: string; url: string }[] = [];

function watch(page: Page, label: string): void {
  page.on('pageerror', (err) => seen.push({ page: label, kind: 'pageerror', text: err.message, url: page.url() }));
  page.on('console', (msg) => {
    if (msg.type() === 'error') seen.push({ page: label, kind: 'console', text: msg.text(), url: msg.location().url });
  });
  page.on('dialog', (d) => void d.accept());
}

const CSP_REPORTER = `document.addEventListener('securitypolicyviolation', (e) => {
  console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline'));
});`;

async function signIn(page: Page, username: string): Promise<void> {
  await page.goto('/');
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(passwords.get(username)!);
  await page.getByTestId('login-phone').uncheck();
  await page.getByTestId('login-submit').click();
  await page.getByTestId('page-board').waitFor();
  await page.locator('[data-testid="conn"][data-state="live"]').waitFor({ timeout: 10_000 });
}

async function go(page: Page, route: string): Promise<void> {
  await page.evaluate(`location.hash = ${JSON.stringify(route)}`);
}

const attr = (page: Page, testid: string, name: string) => page.getByTestId(testid).getAttribute(name);

async function shot(page: Page, name: string): Promise<void> {
  await expect.poll(() => page.locator('.toast').count(), { timeout: 10_000, interval: 100 }).toBe(0);
  await screenshot(page, name);
}

async function level(): Promise<Json> {
  const r = await node.api('GET', `/api/v1/supplies/depots/${DEPOT}`, undefined, admin);
  expect(r.status).toBe(200);
  return r.body.levels.find((l: Json) => l.itemId === ITEM);
}

beforeAll(async () => {
  node = await startNode({ GRIDWATCH__supplies__sample: 'true' });
  admin = await node.login('admin', ADMIN_PASSWORD);
  const secrets = JSON.parse(readFileSync(path.join(node.dataDir, 'demo-secrets.json'), 'utf8')) as {
    staffPasswords: { username: string; password: string }[];
  };
  passwords = new Map(secrets.staffPasswords.map((p) => [p.username, p.password]));
  expect(passwords.has(KEEPER) && passwords.has(NEIGHBOUR)).toBe(true);

  browser = await launchBrowser();
  keeperCtx = await newContext(browser, node.base, DESKTOP);
  neighbourCtx = await newContext(browser, node.base, DESKTOP);
  for (const ctx of [keeperCtx, neighbourCtx]) await ctx.addInitScript({ content: CSP_REPORTER });
  keeper = await keeperCtx.newPage();
  neighbour = await neighbourCtx.newPage();
  watch(keeper, 'keeper');
  watch(neighbour, 'neighbour');
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await node?.stop();
});

describe('supplies: receive, issue to a drill, shortfall, mutual-aid transfer, alert clears', () => {
  it('the keeper opens 物资: the depots of three levels and the shortfalls per community', async () => {
    await signIn(keeper, KEEPER);
    await keeper.getByTestId('nav-supplies').click();
    await keeper.getByTestId('page-supplies').waitFor();
    for (const id of ['dp-limin', 'dp-xingfu', 'dp-heping', 'dp-xincheng']) {
      await keeper.getByTestId(`depot-row-${id}`).waitFor();
    }
    const row = await keeper.getByTestId(`depot-row-${DEPOT}`).textContent();
    expect(row).toContain('利民社区应急物资储备点');
    expect(row).toContain('330');
    expect(row).toContain('利民社区');
    expect(row).toMatch(/项低于最低储备/);
    expect(row).toMatch(/项已过期/);
    await keeper.getByTestId('shortfall-c-limin').waitFor();
    await keeper.getByTestId('shortfall-c-xingfu').waitFor();
    // 利民 is short of first-aid kits (all expired) and bottled water
    expect(Number(await attr(keeper, 'shortfall-c-limin', 'data-short'))).toBeGreaterThan(0);
    expect(await keeper.getByTestId('shortfall-c-limin-first_aid_kit').textContent()).toContain('急救包');
    await shot(keeper, 'desktop-supplies');
  });

  it('the depot page: stock against minimums, lots by expiry colour, the calendar', async () => {
    await keeper.getByTestId(`depot-row-${DEPOT}`).getByRole('link').click();
    await keeper.getByTestId('page-depot').waitFor();
    await keeper.getByTestId(`level-${ITEM}`).waitFor();
    expect(await attr(keeper, `level-${ITEM}`, 'data-below')).toBe('false');
    expect(await attr(keeper, `level-${ITEM}`, 'data-usable')).toBe('40');
    expect(await attr(keeper, 'level-first_aid_kit', 'data-below')).toBe('true');
    // the expired first-aid kits in red, the sandbags expiring within 30 days in orange, bottled water within 90
    const lots = keeper.getByTestId('lots');
    await lots.locator('[data-expiry="expired"]').first().waitFor();
    expect(await lots.locator('[data-expiry="minor"]').count()).toBeGreaterThan(0);
    expect(await lots.locator('[data-expiry="info"]').count()).toBeGreaterThan(0);
    await keeper.getByTestId('expiry-calendar').locator('[data-testid="cal-expired"][data-qty="6"]').waitFor();
    await keeper.getByTestId('depot-alert-supplies_expired').first().waitFor();
  });

  it('receives 5 sandbags as a new lot', async () => {
    const form = keeper.getByTestId('receive-form');
    await form.getByTestId('receive-item').selectOption(ITEM);
    await form.getByTestId('receive-qty').fill('5');
    const exp = new Date(Date.now() + 2 * 365 * 86_400_000).toISOString().slice(0, 10);
    await form.getByTestId('receive-expires').fill(exp);
    await form.getByTestId('receive-submit').click();
    await expect.poll(() => attr(keeper, `level-${ITEM}`, 'data-usable'), { timeout: LIVE_MS }).toBe('45');
    expect(await level()).toMatchObject({ usable: 45, belowMinimum: false });
    const lot = keeper.getByTestId('lots').locator(`tr[data-expiry="ok"]`, { hasText: exp });
    await lot.waitFor({ timeout: LIVE_MS });
  });

  it('issues 15 to a drill: below minimum, the alert shows', async () => {
    const form = keeper.getByTestId('issue-form');
    await form.getByTestId('issue-item').selectOption(ITEM);
    await form.getByTestId('issue-qty').fill('15');
    await form.getByTestId('issue-kind').selectOption('drill');
    await form.getByTestId('issue-ref').fill(DRILL_REF);
    await form.getByTestId('issue-submit').click();
    await expect.poll(() => attr(keeper, `level-${ITEM}`, 'data-below'), { timeout: LIVE_MS }).toBe('true');
    expect(await attr(keeper, `level-${ITEM}`, 'data-usable')).toBe('30');
    const alert = keeper.locator(`[data-testid="depot-alert-supplies_below_minimum"][data-item="${ITEM}"]`);
    await alert.waitFor({ timeout: LIVE_MS });
    alertId = (await alert.getAttribute('data-alert'))!;
    const a = await node.api('GET', `/api/v1/alerts/${alertId}`, undefined, admin);
    expect(a.body).toMatchObject({ status: 'open', category: 'supplies' });
    // the ledger shows the issue with its drill reference
    const issue = keeper.getByTestId('ledger').locator('tr[data-kind="issue"]', { hasText: DRILL_REF });
    await issue.first().waitFor({ timeout: LIVE_MS });
  });

  it('finds the neighbour as a source and requests a transfer', async () => {
    await keeper.getByTestId(`find-${ITEM}`).click();
    const sources = keeper.getByTestId(`sources-${ITEM}`);
    await sources.getByTestId(`source-${FROM}`).waitFor();
    // the same-street community first, then the street and the district
    const order = await sources
      .locator('[data-testid^="source-"]')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-testid')));
    expect(order).toEqual([`source-${FROM}`, 'source-dp-heping', 'source-dp-xincheng']);
    await sources.getByTestId(`request-${FROM}`).click();
    await sources.getByTestId('request-qty').fill('20');
    await sources.getByTestId('request-submit').click();
    await expect
      .poll(
        async () => {
          const r = await node.api(
            'GET',
            `/api/v1/supplies/transfers?depotId=${DEPOT}&status=requested`,
            undefined,
            admin,
          );
          return r.body.items.length;
        },
        { timeout: LIVE_MS },
      )
      .toBe(1);
    const r = await node.api('GET', `/api/v1/supplies/transfers?depotId=${DEPOT}`, undefined, admin);
    transferId = r.body.items[0].id;
    expect(r.body.items[0]).toMatchObject({ fromDepotId: FROM, toDepotId: DEPOT, itemId: ITEM, quantity: 20 });
    await expect
      .poll(() => attr(keeper, `transfer-${transferId}`, 'data-status'), { timeout: LIVE_MS })
      .toBe('requested');
    // the requester may not approve their own request
    expect(await keeper.getByTestId(`transfer-approve-${transferId}`).count()).toBe(0);
  });

  it('the neighbour’s keeper approves and dispatches it on their own console', async () => {
    await signIn(neighbour, NEIGHBOUR);
    await go(neighbour, `#/supplies/${FROM}`);
    await neighbour.getByTestId('page-depot').waitFor();
    await expect
      .poll(() => attr(neighbour, `transfer-${transferId}`, 'data-status'), { timeout: LIVE_MS })
      .toBe('requested');
    await neighbour.getByTestId(`transfer-decline-${transferId}`).waitFor();
    await neighbour.getByTestId(`transfer-approve-${transferId}`).click();
    await expect
      .poll(() => attr(neighbour, `transfer-${transferId}`, 'data-status'), { timeout: LIVE_MS })
      .toBe('approved');
    await neighbour.getByTestId(`transfer-dispatch-${transferId}`).click();
    await expect
      .poll(() => attr(neighbour, `transfer-${transferId}`, 'data-status'), { timeout: LIVE_MS })
      .toBe('in_transit');
    // the bags left 幸福: 600 − 20
    await expect.poll(() => attr(neighbour, `level-${ITEM}`, 'data-usable'), { timeout: LIVE_MS }).toBe('580');
  });

  it('the first keeper sees it in transit live, receives it: the shortfall alert clears', async () => {
    await expect
      .poll(() => attr(keeper, `transfer-${transferId}`, 'data-status'), { timeout: LIVE_MS })
      .toBe('in_transit');
    await keeper.getByTestId(`transfer-receive-${transferId}`).click();
    await expect
      .poll(() => attr(keeper, `transfer-${transferId}`, 'data-status'), { timeout: LIVE_MS })
      .toBe('received');
    await expect.poll(() => attr(keeper, `level-${ITEM}`, 'data-below'), { timeout: LIVE_MS }).toBe('false');
    expect(await attr(keeper, `level-${ITEM}`, 'data-usable')).toBe('50');
    await expect
      .poll(() => keeper.locator(`[data-testid="depot-alert-supplies_below_minimum"][data-item="${ITEM}"]`).count(), {
        timeout: LIVE_MS,
      })
      .toBe(0);
    expect(await level()).toMatchObject({ usable: 50, belowMinimum: false, incoming: 0 });
    const a = await node.api('GET', `/api/v1/alerts/${alertId}`, undefined, admin);
    expect(a.body.status).toBe('resolved');
    // the ledger has the transfer in; the neighbour's page shows it received too
    await keeper.getByTestId('ledger').locator('tr[data-kind="transfer_in"]').first().waitFor({ timeout: LIVE_MS });
    await expect
      .poll(() => attr(neighbour, `transfer-${transferId}`, 'data-status'), { timeout: LIVE_MS })
      .toBe('received');
    await keeper.evaluate('window.scrollTo(0, 0)');
    await shot(keeper, 'desktop-depot');
  });

  it('the report links download with the session; the depot page in English', async () => {
    const csv = await keeper
      .locator('a[href*="/supplies/report.csv"][href*="depotId=dp-limin"]')
      .first()
      .getAttribute('href');
    const r = await keeperCtx.request.get(csv!);
    expect(r.status()).toBe(200);
    expect(r.headers()['content-type']).toContain('text/csv');
    expect(await r.text()).toContain('防汛沙袋');
    await neighbour.getByTestId('lang-toggle').click();
    await expect
      .poll(() => neighbour.getByTestId('page-depot').locator('h1').textContent())
      .toContain('Xingfu community depot');
    expect(await neighbour.getByTestId(`transfer-${transferId}`).textContent()).toContain('Received');
    expect(await neighbour.getByTestId('ledger').textContent()).toContain('Transfer out');
  });

  it('imports a stock count: a bad file shows its errors by line and changes nothing, then a good one', async () => {
    await go(keeper, '#/supplies');
    const card = keeper.getByTestId('import');
    await card.waitFor();
    const flashlights = async () =>
      (await node.api('GET', `/api/v1/supplies/depots/${DEPOT}`, undefined, admin)).body.levels.find(
        (l: Json) => l.itemId === 'flashlight',
      )?.usable ?? 0;
    const before = await flashlights();
    const upload = (text: string) =>
      card
        .getByTestId('import-file')
        .setInputFiles({ name: 'count.csv', mimeType: 'text/csv', buffer: Buffer.from(text) });
    await upload(
      `depot_id,item_id,quantity,received_on,expires_on\n${DEPOT},flashlight,3,,\n${DEPOT},unicorn,1,,\n${DEPOT},flashlight,-2,,\n${DEPOT},sandbag,4,2026-01-10,2025-01-01\n`,
    );
    await card.getByTestId('import-submit').click();
    const problems = card.getByTestId('import-problems');
    await problems.waitFor({ timeout: LIVE_MS });
    const text = await problems.textContent();
    expect(text).toContain('第 3 行');
    expect(text).toContain('unicorn');
    expect(text).toContain('第 4 行');
    expect(text).toContain('第 5 行');
    expect(await flashlights()).toBe(before);

    await upload(`depot_id,item_id,quantity\n${DEPOT},flashlight,3\n${DEPOT},flashlight,2\n`);
    await card.getByTestId('import-submit').click();
    await card.getByTestId('import-checked').waitFor({ timeout: LIVE_MS });
    expect(await card.getByTestId('import-checked').textContent()).toContain(DEPOT);
    expect(await flashlights()).toBe(before); // the check is a dry run
    expect(await card.getByTestId('import-submit').textContent()).toContain('2');
    await card.getByTestId('import-submit').click();
    await expect.poll(flashlights, { timeout: LIVE_MS }).toBe(before + 5);
    await expect.poll(() => card.getByTestId('import-checked').count()).toBe(0);
  });

  it('no uncaught page errors, no CSP violations, no console errors', () => {
    // before signing in, /auth/me answers 401: that is how the console knows to show the login page; the bad
    // import file is answered 400 on purpose
    const expected = (e: (typeof seen)[number]) =>
      /Failed to load resource/.test(e.text) &&
      ((/status of 401/.test(e.text) && e.url.endsWith('/api/v1/auth/me')) ||
        (/status of 400/.test(e.text) && e.url.includes('/api/v1/supplies/import')));
    expect(seen.filter((e) => !expected(e))).toEqual([]);
  });
});
