/**
 * A real Chromium for the console's tests (playwright-core, no browser build downloaded from a CDN):
 *   1. $VERDICT_CHROMIUM (a path; or `registry` to force step 4);
 *   2. the system's `chromium` (Debian's package; `.ci/run` installs it when missing);
 *   3. as root with apt-get, Debian's package installed now;
 *   4. else the Chromium binary shipped inside the npm package @sparticuz/chromium (pinned below,
 *      x64 Linux), installed from the npm registry into node_modules/.cache/ and unpacked there.
 * A loud failure, saying what to install, only when none of these can be had; never a skip.
 * (Playwright's own `playwright install chromium` downloads from a CDN, which machines limited to
 * the package registries cannot reach; a registry package that ships the binary installs as usual.)
 *
 *   const browser = await launchBrowser();
 *   const page = await browser.newPage();          // a fresh context: its own cookies
 *   await page.goto(`${url}/console/login`);
 *   await expectAccessible(page);                   // axe-core: no critical or serious finding
 *   await screenshot(page, 'approvals-inbox');      // test/.screenshots/approvals-inbox.png
 *   await browser.close();
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/** The registry package whose tarball ships a Chromium binary (brotli-compressed, x64 Linux). */
export const REGISTRY_CHROMIUM = { name: '@sparticuz/chromium', version: '153.0.0' } as const;
const REGISTRY_CACHE = path.resolve(
  import.meta.dirname,
  `../../node_modules/.cache/verdict-chromium/${REGISTRY_CHROMIUM.version}`,
);

/** A Chromium to drive: its binary, where it came from, and what its process needs in its environment. */
export interface FoundChromium {
  executablePath: string;
  source: 'VERDICT_CHROMIUM' | 'system' | 'apt-get' | 'registry';
  env?: Record<string, string>;
}

const WHAT_TO_INSTALL =
  "install Debian's package (apt-get install chromium), or point VERDICT_CHROMIUM at a Chromium or " +
  `Chrome binary; on x64 Linux the tests can also use ${REGISTRY_CHROMIUM.name}@${REGISTRY_CHROMIUM.version} ` +
  'from the npm registry';

/** The Chromium to drive, found in the order above. */
export function findChromium(): FoundChromium {
  const fromEnv = process.env.VERDICT_CHROMIUM;
  if (fromEnv === 'registry') return registryChromium();
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`VERDICT_CHROMIUM=${fromEnv} does not exist`);
    return { executablePath: fromEnv, source: 'VERDICT_CHROMIUM' };
  }
  const found = CANDIDATES.find((candidate) => existsSync(candidate));
  if (found) return { executablePath: found, source: 'system' };
  let aptFailure = 'not root with apt-get';
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
      aptFailure = `apt-get could not install it: ${String(err)}`;
    }
    const installed = CANDIDATES.find((candidate) => existsSync(candidate));
    if (installed) return { executablePath: installed, source: 'apt-get' };
  }
  process.stderr.write(
    `browser tests: no system Chromium (tried ${CANDIDATES.join(', ')}; ${aptFailure}); ` +
      `falling back to ${REGISTRY_CHROMIUM.name}@${REGISTRY_CHROMIUM.version} from the npm registry\n`,
  );
  return registryChromium();
}

/**
 * The Chromium shipped inside @sparticuz/chromium: the package installed (once) with npm into
 * node_modules/.cache/verdict-chromium/<version>/, its binary, fonts and (when the system lacks
 * them) NSS libraries unpacked beside it by the package's own code, run with TMPDIR pointing there
 * (it unpacks into the temporary directory, and must not share a world-writable /tmp).
 */
function registryChromium(): FoundChromium {
  mkdirSync(REGISTRY_CACHE, { recursive: true });
  // Test files run in parallel workers: one installs and unpacks, the others wait for it.
  const lock = path.join(REGISTRY_CACHE, '.lock');
  const deadline = Date.now() + 300_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (Date.now() > deadline) {
        throw new Error(`browser tests: ${lock} held for 5 minutes (a killed run?): remove it and run again`);
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
  try {
    return installRegistryChromium();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function installRegistryChromium(): FoundChromium {
  const spec = `${REGISTRY_CHROMIUM.name}@${REGISTRY_CHROMIUM.version}`;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(
      `browser tests: no Chromium found, and ${spec} ships a binary for x64 Linux only ` +
        `(this is ${process.platform}/${process.arch}); ${WHAT_TO_INSTALL.split('; on x64')[0]}`,
    );
  }
  const packageDir = path.join(REGISTRY_CACHE, 'node_modules', REGISTRY_CHROMIUM.name);
  if (!existsSync(path.join(packageDir, 'bin', 'chromium.br'))) {
    process.stderr.write(`browser tests: npm install ${spec} into ${REGISTRY_CACHE} (about 70 MB)\n`);
    try {
      execFileSync(
        'npm',
        [
          'install',
          '--no-save',
          '--no-package-lock',
          '--no-audit',
          '--no-fund',
          '--prefix',
          REGISTRY_CACHE,
          spec,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' },
      );
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr ?? String(err);
      throw new Error(
        `browser tests: no Chromium found, and npm could not install ${spec}:\n${stderr.trim()}\n` +
          `To run the browser tests, ${WHAT_TO_INSTALL.split('; on x64')[0]}.`,
      );
    }
  }
  const unpacked = path.join(REGISTRY_CACHE, 'unpacked');
  mkdirSync(unpacked, { recursive: true });
  const unpack = `
    import Chromium, { inflate } from '${REGISTRY_CHROMIUM.name}';
    import { fileURLToPath } from 'node:url';
    const bin = fileURLToPath(new URL('../bin/', import.meta.resolve('${REGISTRY_CHROMIUM.name}')));
    const executablePath = await Chromium.executablePath(bin);
    const libs = await inflate(bin + 'al2023.tar.br');
    process.stdout.write(JSON.stringify({ executablePath, libs: libs + '/lib' }));
  `;
  const { executablePath, libs } = JSON.parse(
    execFileSync(process.execPath, ['--input-type=module', '-e', unpack], {
      cwd: REGISTRY_CACHE,
      env: { ...process.env, TMPDIR: unpacked },
      encoding: 'utf8',
    }),
  ) as { executablePath: string; libs: string };
  const env: Record<string, string> = {};
  // The binary needs NSS (libnss3 and kin): the system's when it has them, else the package's.
  const missing = execFileSync('ldd', [executablePath], { encoding: 'utf8' }).includes('not found');
  if (missing) env.LD_LIBRARY_PATH = [libs, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':');
  // Fonts: the system's fontconfig when there is one, else the package's fonts.
  if (!existsSync('/etc/fonts/fonts.conf')) {
    const conf = path.join(REGISTRY_CACHE, 'fonts.conf');
    writeFileSync(
      conf,
      `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n` +
        `  <dir>/usr/share/fonts</dir>\n  <dir>${path.join(unpacked, 'fonts')}</dir>\n` +
        `  <cachedir>${path.join(REGISTRY_CACHE, 'fonts-cache')}</cachedir>\n</fontconfig>\n`,
    );
    env.FONTCONFIG_FILE = conf;
  }
  return { executablePath, source: 'registry', env };
}

/** Launches headless Chromium with a fresh profile, no network of its own, no sandbox (root). */
export async function launchBrowser(): Promise<Browser> {
  const found = findChromium();
  return chromium.launch({
    executablePath: found.executablePath,
    ...(found.env ? { env: { ...(process.env as Record<string, string>), ...found.env } } : {}),
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

/**
 * Fails when the page is wider than its window (a table or a long string pushed it past the right
 * edge: the reader has to scroll sideways), naming the elements that stick out.
 */
export async function expectNoHorizontalOverflow(page: Page): Promise<void> {
  // A page still loading (its URL already the new one after a redirect) may have no body yet.
  await page.waitForLoadState('load');
  const { scrollWidth, innerWidth, outside } = await page.evaluate(() => {
    const width = window.innerWidth;
    const outside: string[] = [];
    for (const element of Array.from(document.body.querySelectorAll('*'))) {
      const box = element.getBoundingClientRect();
      if (
        box.right > width + 0.5 &&
        !Array.from(element.children).some((c) => c.getBoundingClientRect().right > width + 0.5)
      ) {
        outside.push(
          `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''} (right edge ${Math.round(box.right)} px)`,
        );
        if (outside.length === 5) break;
      }
    }
    return { scrollWidth: document.documentElement.scrollWidth, innerWidth: width, outside };
  });
  if (scrollWidth > innerWidth) {
    throw new Error(
      `${page.url()} is ${scrollWidth} px wide in a ${innerWidth} px window; past the edge: ${outside.join(', ')}`,
    );
  }
}

/**
 * Fails with the findings when axe-core finds anything critical or serious on the page, or when
 * the page does not fit its window's width.
 */
export async function expectAccessible(page: Page): Promise<void> {
  await expectNoHorizontalOverflow(page);
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
