/**
 * The SDK ships on its own: `npm pack` builds it (prepack: tsc), the tarball installs offline into an
 * empty project, the README's "Enforce decisions" example type-checks there against the shipped
 * declarations and runs with Node against a live Verdict, and the installed package fails closed.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../support/app.ts';
import { DEFAULT_BUNDLE } from '../support/bundle.ts';
import { freePort } from '../support/net.ts';

/** Runs a child without blocking this process's event loop (the Verdict under test lives in it). */
function runChild(
  file: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { ...options, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ status: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const root = path.resolve(import.meta.dirname, '../..');
const sdkDir = path.join(root, 'packages/sdk');

/** The ```ts block of README.md's "From code" subsection. */
function readmeSdkExample(): string {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const start = readme.indexOf('### From code: the TypeScript SDK');
  const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(start));
  if (start < 0 || !block) throw new Error('README.md has no SDK example');
  return block[1]!;
}

describe('the SDK package', () => {
  let work: string;
  let project: string;
  let tarball: string;
  let verdict: Awaited<ReturnType<typeof buildTestApp>>;
  let url: string;

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'verdict-sdk-pack-'));
    const packed = JSON.parse(
      execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: sdkDir, encoding: 'utf8' }),
    ) as { filename: string; files: { path: string }[] }[];
    tarball = path.join(work, packed[0]!.filename);
    project = path.join(work, 'consumer');
    execFileSync('mkdir', ['-p', project]);
    writeFileSync(
      path.join(project, 'package.json'),
      JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }),
    );
    execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], { cwd: project });
    verdict = await buildTestApp({ bundlePath: DEFAULT_BUNDLE });
    url = await verdict.app.listen({ port: 0, host: '127.0.0.1' });
  }, 120_000);
  afterAll(async () => {
    await verdict?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('packs built JS and declarations, no sources, and has no runtime dependency', () => {
    const listing = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean);
    expect(listing).toEqual(
      expect.arrayContaining(['package/dist/index.js', 'package/dist/index.d.ts', 'package/dist/client.js']),
    );
    expect(listing.some((f) => f.startsWith('package/src/'))).toBe(false);
    const installed = JSON.parse(
      readFileSync(path.join(project, 'node_modules/@verdict/sdk/package.json'), 'utf8'),
    ) as Record<string, unknown>;
    expect(installed.dependencies).toBeUndefined();
    expect(installed.type).toBe('module');
    // Nothing but the SDK itself was installed.
    const lock = JSON.parse(readFileSync(path.join(project, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, unknown>;
    };
    expect(Object.keys(lock.packages).sort()).toEqual(['', 'node_modules/@verdict/sdk']);
  });

  it('runs the README example in the empty project, type-checked against the shipped declarations', async () => {
    writeFileSync(path.join(project, 'example.ts'), readmeSdkExample());
    writeFileSync(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'es2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          noEmit: true,
          typeRoots: [path.join(root, 'node_modules/@types')],
          types: ['node'],
        },
        files: ['example.ts'],
      }),
    );
    const tsc = spawnSync(path.join(root, 'node_modules/.bin/tsc'), ['-p', project], { encoding: 'utf8' });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);

    const env = { ...process.env, VERDICT_URL: url, VERDICT_TOKEN: verdict.token(['decisions:evaluate']) };
    const run = await runChild(process.execPath, ['example.ts'], { cwd: project, env });
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^allowed by decision [0-9a-f-]{36}\n$/);
    expect(run.status).toBe(0);

    // The same example with a PDP that is not there: the tool is not run.
    const down = await runChild(process.execPath, ['example.ts'], {
      cwd: project,
      env: { ...env, VERDICT_URL: `http://127.0.0.1:${await freePort()}` },
    });
    expect(down.status).not.toBe(0);
    expect(down.stdout).toBe('');
    expect(down.stderr).toContain('denied: PDP-UNAVAILABLE');
  });
});
