/**
 * A real Chromium for the console's tests (playwright-core, no downloaded browser build): the
 * system's `chromium` (Debian's package; `.ci/run` installs it when missing), found here or — as
 * root with apt-get — installed here; a loud failure when none can be had, never a skip.
 *
 *   const browser = await launchBrowser();
 *   const page = await browser.newPage();          // a fresh context: its own cookies
 *   await page.goto(`${url}/console/login`);
 *   await expectAccessible(page);                   // axe-core: no critical or serious finding
 *   await screenshot(page, 'approvals-inbox');      // test/.screenshots/approvals-inbox.png
 *   await browser.close();
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

/** Where the tests' screenshots go (git-ignored); docs/ only when VERDICT_UPDATE_SCREENSHOTS=1. */
export const SCREENSHOT_DIR = path.resolve(import.meta.dirname, '../.screenshots');

const CANDIDATES = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
];

/** The Chromium to drive: $VERDICT_CHROMIUM, else a system one, else Debian's, installed now (root). */
export function findChromium(): string {
  const fromEnv = process.env.VERDICT_CHROMIUM;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`VERDICT_CHROMIUM=${fromEnv} does not exist`);
    return fromEnv;
  }
  const found = CANDIDATES.find((candidate) => existsSync(candidate));
  if (found) return found;
  if (process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
    process.stderr.write(
      "browser tests: no chromium; installing Debian's package (apt-get install chromium)\n",
    );
    try {
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore' });
      execFileSync('apt-get', ['install', '-y', '-qq', 'chromium'], {
        stdio: 'ignore',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    } catch (err) {
      throw new Error(`browser tests: chromium is missing and apt-get could not install it: ${String(err)}`);
    }
    const installed = CANDIDATES.find((candidate) => existsSync(candidate));
    if (installed) return installed;
  }
  throw new Error(
    'browser tests: no Chromium found (tried $VERDICT_CHROMIUM, ' +
      `${CANDIDATES.join(', ')}); install Debian's package: apt-get install chromium`,
  );
}

/** Launches headless Chromium with a fresh profile, no network of its own, no sandbox (root). */
export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: findChromium(),
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

/** A page in a fresh context (its own cookie jar: one person), recording CSP violations. */
export async function newPerson(
  browser: Browser,
): Promise<{ context: BrowserContext; page: Page; cspViolations: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const cspViolations: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
  });
  return { context, page, cspViolations };
}

/** Saves a PNG of the page under test/.screenshots/ (and returns its path). */
export async function screenshot(
  page: Page,
  name: string,
  options: { fullPage?: boolean } = {},
): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: options.fullPage ?? true });
  return file;
}

const AXE_SOURCE = readFileSync(fileURLToPath(import.meta.resolve('axe-core/axe.min.js')), 'utf8');

/** One axe-core finding worth failing on. */
export interface AxeFinding {
  id: string;
  impact: string;
  help: string;
  nodes: string[];
}

/**
 * Runs axe-core on the page as it is (WCAG 2.x A and AA rules) and returns its critical and serious
 * findings. Injected with `page.evaluate`, which the page's CSP does not govern (an inline script
 * tag would be refused, as it should be).
 */
export async function axeFindings(page: Page): Promise<AxeFinding[]> {
  await page.evaluate(AXE_SOURCE);
  return page.evaluate(async () => {
    const axe = (
      globalThis as unknown as {
        axe: {
          run(
            context: unknown,
            options: unknown,
          ): Promise<{
            violations: { id: string; impact: string; help: string; nodes: { target: unknown[] }[] }[];
          }>;
        };
      }
    ).axe;
    const result = await axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    });
    return result.violations
      .filter((v) => v.impact === 'critical' || v.impact === 'serious')
      .map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.map((n) => JSON.stringify(n.target)),
      }));
  });
}

/** Fails with the findings when axe-core finds anything critical or serious on the page. */
export async function expectAccessible(page: Page): Promise<void> {
  const findings = await axeFindings(page);
  if (findings.length > 0) {
    throw new Error(
      `axe-core on ${page.url()}:\n${findings.map((f) => `${f.impact} ${f.id}: ${f.help} ${f.nodes.join(' ')}`).join('\n')}`,
    );
  }
}

/**
 * Presses Tab until the focused element matches `selector` (at most `max` presses): a keyboard
 * user reaches it in the page's own order. Fails when it is never reached.
 */
export async function tabTo(page: Page, selector: string, max = 30): Promise<void> {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((s) => document.activeElement?.matches(s) === true, selector)) return;
  }
  throw new Error(`${selector} is not reachable with Tab within ${max} presses on ${page.url()}`);
}
