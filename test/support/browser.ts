/**
 * Debian's chromium driven by playwright-core, for the console's browser tests. The flags keep it from reaching
 * for hosts this machine cannot reach (../shared/NOTES.md). Screenshots go to test/browser/screenshots/ (linked
 * from the README), overwritten by each run.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { ROOT } from './system.ts';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOTS = path.join(ROOT, 'test/browser/screenshots');

export const DESKTOP = { width: 1440, height: 900 };
export const PHONE = { width: 360, height: 640 };

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`no chromium at ${CHROMIUM}: npm test installs it (apt-get install chromium) when run as root`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/** A fresh context (cookies apart) at a viewport; touch and a phone's scale for the phone size. */
export async function newContext(
  browser: Browser,
  baseURL: string,
  size: { width: number; height: number } = DESKTOP,
): Promise<BrowserContext> {
  const phone = size.width < 500;
  return browser.newContext({
    baseURL,
    viewport: size,
    deviceScaleFactor: phone ? 2 : 1,
    isMobile: phone,
    hasTouch: phone,
    locale: 'zh-CN',
    timezoneId: 'Asia/Shanghai',
  });
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  return file;
}
