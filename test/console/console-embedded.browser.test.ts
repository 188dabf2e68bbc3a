import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectAccessible, launchBrowser, newPerson, screenshot } from '../support/browser.ts';
import { freePort } from '../support/net.ts';

/** Polls a page (a live update, a navigation) for up to 10 s: the machine may be busy. */
const poll = <T>(probe: () => T | Promise<T>) => expect.poll(probe, { timeout: 10_000, interval: 50 });

// The README's quick start, in a real Chromium: `npm start` in the embedded mode prints the
// console's URL with a one-time sign-in link; the link signs the dev user in (once); the banner's
// denied call appears in the inbox. The screenshot of that inbox is the README's
// (docs/console-approvals.png, rewritten when VERDICT_UPDATE_SCREENSHOTS=1).

const root = path.resolve(import.meta.dirname, '../..');

describe('the embedded quick start: the banner links to the console', () => {
  let child: ChildProcess;
  let browser: Browser;
  let banner = '';
  let port = 0;

  beforeAll(async () => {
    port = await freePort();
    child = spawn(process.execPath, ['src/main.ts'], {
      cwd: root,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        VERDICT_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'verdict-console-embedded-')),
        PORT: String(port),
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner within 100 s: ${banner}`)), 100_000);
      child.stdout?.on('data', (chunk) => {
        banner += chunk;
        if (/\/console\/login\/link\?code=\S+\n/.test(banner)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', (code) => reject(new Error(`exited ${code}: ${banner}`)));
    });
    browser = await launchBrowser();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });

  it('the one-time link signs the dev user in once; the banner’s denied call is in the inbox', async () => {
    expect(banner).toContain(`verdict: console: http://127.0.0.1:${port}/console`);
    const link = banner.split('\n').find((line) => line.includes('/console/login/link?code=')) as string;
    expect(link).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/console/login/link\\?code=[\\w-]{43}$`));

    // The banner's second call (denied, human_approval), with the banner's token.
    const curl = banner.split('\n').filter((line) => line.startsWith('curl '))[1] as string;
    const token = /Bearer ([\w-]+\.[\w-]+\.[\w-]+)/.exec(curl)?.[1] as string;
    const body = /-d '([^']*)'/.exec(curl)?.[1] as string;
    const denied = await fetch(`http://127.0.0.1:${port}/v1/decisions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body,
    });
    const decision = (await denied.json()) as { allow: boolean; approval_request: { id: string } };
    expect(decision.allow).toBe(false);

    const { page, context } = await newPerson(browser);
    await page.goto(link);
    await expectAccessible(page);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await poll(() => new URL(page.url()).pathname).toBe('/console/approvals');
    expect(await page.getByText('Signed in as').textContent()).toContain('dev');
    await page.locator(`tr[data-approval="${decision.approval_request.id}"]`).waitFor();
    await expectAccessible(page);
    await page.setViewportSize({ width: 1200, height: 400 });
    const shot = await screenshot(page, 'console-approvals', { fullPage: false });
    if (process.env.VERDICT_UPDATE_SCREENSHOTS === '1')
      copyFileSync(shot, path.join(root, 'docs/console-approvals.png'));

    // The link is used up: a second browser cannot sign in with it.
    const other = await newPerson(browser);
    await other.page.goto(link);
    await other.page.getByRole('button', { name: 'Sign in' }).click();
    expect(await other.page.getByRole('alert').textContent()).toContain('used up');
    await other.context.close();
    await context.close();
  });
});
