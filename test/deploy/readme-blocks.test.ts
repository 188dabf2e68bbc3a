/**
 * Every ```sh / ```bash block of README.md, run as written, in order, in one shell — as a reader
 * pastes them into one terminal — against the service `npm start` starts (embedded mode) in a
 * fresh directory that links to this checkout, so `npm run token`, `npm run verdict` and
 * `npm run audit:verify` work as from a clone.
 *
 * The conventions (for whoever adds a block):
 * - Every block runs. The only exceptions are marked on the line before the fence with
 *   `<!-- test: skip, <reason> -->`, and the reason must be one of `SKIPS` below: a block that starts
 *   the server (`npm start`: this test starts it), runs the whole suite (`npm test`), or starts a
 *   stdio process for an MCP host (test/mcp/proxy.test.ts runs that one).
 * - The shell has only what the README tells the reader to have: `TOKEN` (the start banner's
 *   `export TOKEN=…` line), the pinned `opa` on PATH, `curl`, `jq`, `node`/`npm`; every other
 *   variable is set by the blocks themselves (`set -euo pipefail`: an unset one fails the run).
 *   `localhost:8080` is replaced by the test server's address; nothing else is changed.
 * - A command states its answer in the comment right after it: `# → …` or `# ⇒ …` (continued on
 *   `#   ` lines). What is checked, on the last HTTP response of the command (curl is wrapped to
 *   record each response) or on its output:
 *   - a leading status (`⇒ 201 …`): the response's status;
 *   - `allow: true|false` (also `"allow"`, `result`, `decision`; per `results[i]` for a batch);
 *   - control ids (`TOOL-002`): each is in the answer, and a decision has no unwaived violation the
 *     statement does not name;
 *   - `state: x`: the answer's `state`;
 *   - otherwise the statement is the output, `…` standing for anything.
 *   A command that made no HTTP call (`npm run verdict …`) is judged on its output only.
 *   Every HTTP response without a stated status must be a 2xx or 3xx.
 * - No block holds a literal date still to come (it would stop working that day): use
 *   `date -u -d '+30 days' …`.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/net.ts';

const root = path.resolve(import.meta.dirname, '../..');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');

/** The documented reasons a block may be skipped, and nothing else. */
const SKIPS = [
  'starts the server',
  'runs the whole suite',
  'a stdio process an MCP host starts',
  'the packaged CLI (test/cli/package.test.ts installs the tarball offline and runs it)',
];

interface Statement {
  text: string;
  /** 1-based README line of the `# →` line. */
  line: number;
}

interface Step {
  commands: string;
  statement: Statement | null;
}

interface Block {
  /** 1-based README line of the opening fence. */
  line: number;
  heading: string;
  skip: string | null;
  steps: Step[];
}

/** The sh/bash blocks of a Markdown text, each split into steps at its stated answers. */
function readmeBlocks(text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let heading = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^#{2,} /.test(line)) heading = line.replace(/^#+ /, '');
    const fence = /^(\s*)```(sh|bash)\s*$/.exec(line);
    if (!fence) continue;
    const indent = fence[1]!.length;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j]!); j++) body.push(lines[j]!.slice(indent));
    let before = i - 1;
    while (before >= 0 && lines[before]!.trim() === '') before--;
    const marker = /^\s*<!-- test: skip, (.*?) -->\s*$/.exec(lines[before] ?? '');
    blocks.push({ line: i + 1, heading, skip: marker ? marker[1]! : null, steps: steps(body, i + 2) });
    i = j;
  }
  return blocks;
}

function steps(body: string[], firstLine: number): Step[] {
  const found: Step[] = [];
  let commands: string[] = [];
  for (let k = 0; k < body.length; k++) {
    const start = /^#\s*[→⇒]\s*(.*)$/.exec(body[k]!);
    if (!start) {
      commands.push(body[k]!);
      continue;
    }
    const text = [start[1]!];
    while (k + 1 < body.length && /^# {2,}\S/.test(body[k + 1]!)) text.push(body[++k]!.slice(1).trim());
    found.push({
      commands: commands.join('\n'),
      statement: { text: text.join(' '), line: firstLine + k },
    });
    commands = [];
  }
  if (commands.some((c) => c.trim() !== '' && !c.trim().startsWith('#')))
    found.push({ commands: commands.join('\n'), statement: null });
  return found;
}

interface Call {
  status: number;
  body: string;
}

interface Ran {
  stdout: string;
  calls: Call[];
}

const MARK = (b: number, s: number) => `@@readme ${b}.${s}@@`;

/** The script: the blocks to run, a mark after every step (in the output and in the curl log). */
function script(blocks: Block[], address: string, log: string): string {
  const out = [
    'set -euo pipefail',
    `__readme_mark() { printf '\\n%s\\n' "$1"; printf '%s\\n' "$1" >> '${log}'; }`,
  ];
  blocks.forEach((block, b) => {
    if (block.skip) return;
    block.steps.forEach((step, s) => {
      out.push(step.commands.replaceAll('localhost:8080', address), `__readme_mark '${MARK(b, s)}'`);
    });
  });
  return `${out.join('\n')}\n`;
}

/** A `curl` that runs the real one and appends each response's status and body to `log`. */
function curlShim(real: string, log: string): string {
  return `#!/usr/bin/env bash
# README test instrumentation: the real curl, its response recorded for the checks.
body=$(mktemp); err=$(mktemp)
'${real}' "$@" -w '%{stderr}\\n@@http %{http_code}@@\\n' 2>"$err" | tee "$body"
rc=\${PIPESTATUS[0]}
code=$(sed -n 's/^@@http \\([0-9]*\\)@@$/\\1/p' "$err" | tail -n 1)
grep -v '^@@http ' "$err" >&2 || true
{ printf '@@call %s@@\\n' "\${code:-000}"; cat "$body"; printf '\\n@@end@@\\n'; } >> '${log}'
rm -f "$body" "$err"
exit "$rc"
`;
}

/** Splits the run's stdout and curl log at the step marks. */
function split(stdout: string, log: string, blocks: Block[]): Map<string, Ran> {
  const ran = new Map<string, Ran>();
  let outRest = stdout;
  let logRest = log;
  blocks.forEach((block, b) => {
    if (block.skip) return;
    block.steps.forEach((_step, s) => {
      const mark = MARK(b, s);
      const o = outRest.indexOf(mark);
      const l = logRest.indexOf(mark);
      if (o < 0 || l < 0) return;
      const calls = [...logRest.slice(0, l).matchAll(/@@call (\d+)@@\n([\s\S]*?)\n@@end@@\n/g)].map((m) => ({
        status: Number(m[1]),
        body: m[2]!,
      }));
      ran.set(`${b}.${s}`, { stdout: outRest.slice(0, o), calls });
      outRest = outRest.slice(o + mark.length);
      logRest = logRest.slice(l + mark.length);
    });
  });
  return ran;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Checks one stated answer against what the step did; returns how many checks it made. */
function check(statement: Statement, ran: Ran): number {
  const where = `README.md:${statement.line}: ${statement.text}`;
  const last = ran.calls.at(-1);
  let checks = 0;
  const status = /^(\d{3})\b/.exec(statement.text);
  if (status) {
    expect(last?.status, where).toBe(Number(status[1]));
    checks++;
  }
  const json = (): Record<string, any> => {
    expect(last, `${where}: no HTTP response`).toBeDefined();
    return JSON.parse(last!.body);
  };
  const parts = statement.text.split(/results\[(\d+)\]/);
  const targets: [Record<string, any> | null, string][] =
    parts.length > 1
      ? parts.slice(1).flatMap((p, i, all) => (i % 2 === 0 ? [[json().results[Number(p)], all[i + 1]!]] : []))
      : [[null, statement.text]];
  for (const [given, text] of targets) {
    const target = () => given ?? json();
    // A command that made no HTTP call (a CLI) is judged on its output, below.
    const verdict = last && /"?(allow|result|decision|ok)"?:\s*(true|false)/.exec(text);
    if (verdict) {
      expect(target()[verdict[1]!], where).toBe(verdict[2] === 'true');
      checks++;
    }
    const state = last && /\bstate: (\w+)/.exec(text);
    if (state) {
      expect(target().state, where).toBe(state[1]);
      checks++;
    }
    const controls = [...new Set(text.match(/\b[A-Z]+-\d{3}\b/g) ?? [])];
    if (controls.length > 0 && last) {
      const answer = JSON.stringify(target());
      for (const control of controls) expect(answer, where).toContain(`"${control}"`);
      if (last && Array.isArray(target().violations)) {
        const unwaived = (target().violations as { control: string; waived_by?: unknown }[])
          .filter((v) => v.waived_by === undefined)
          .map((v) => v.control);
        for (const control of unwaived) expect(controls, `${where}: unstated violation`).toContain(control);
      }
      checks++;
    }
  }
  if (checks === 0) {
    const pattern = escapeRegExp(statement.text.trim()).replaceAll('…', '[\\s\\S]*?').replace(/\s+/g, '\\s+');
    expect(ran.stdout, where).toMatch(new RegExp(pattern));
    checks++;
  }
  return checks;
}

const blocks = readmeBlocks(readme);
let work: string;
let server: ChildProcess | undefined;
let serverOutput = '';
let result: { stdout: string; stderr: string; error?: Error } = { stdout: '', stderr: '' };
let ran = new Map<string, Ran>();

async function startService(port: number): Promise<string> {
  server = spawn('npm', ['start'], {
    cwd: work,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? work, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const child = server;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start printed no token:\n${serverOutput}`)), 90_000);
    const read = (chunk: Buffer) => {
      serverOutput += chunk.toString();
      const token = /^export TOKEN=(\S+)$/m.exec(serverOutput);
      if (token) {
        clearTimeout(timer);
        resolve(token[1]!);
      }
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', read);
    child.once('exit', (code) => reject(new Error(`npm start exited (${code}):\n${serverOutput}`)));
  });
}

beforeAll(async () => {
  // scripts/run.sh runs `npm ci` when node_modules looks older than package-lock.json: through the
  // link below that would empty this checkout's node_modules, so refuse instead.
  const installed = path.join(root, 'node_modules', '.package-lock.json');
  if (
    !existsSync(installed) ||
    statSync(installed).mtimeMs < statSync(path.join(root, 'package-lock.json')).mtimeMs
  )
    throw new Error(
      'node_modules is missing or older than package-lock.json: run npm ci in this checkout first',
    );
  work = mkdtempSync(path.join(tmpdir(), 'verdict-readme-'));
  for (const name of [
    'package.json',
    'package-lock.json',
    'node_modules',
    'src',
    'scripts',
    'policies',
    'packages',
    '.tools',
    '.node-version',
    '.opa-version',
  ]) {
    if (existsSync(path.join(root, name))) symlinkSync(path.join(root, name), path.join(work, name));
  }
  const bin = path.join(work, '.readme-bin');
  mkdirSync(bin);
  const log = path.join(work, '.readme-curl.log');
  writeFileSync(log, '');
  const { stdout: realCurl } = await promisify(execFile)('bash', ['-c', 'command -v curl']);
  writeFileSync(path.join(bin, 'curl'), curlShim(realCurl.trim(), log));
  chmodSync(path.join(bin, 'curl'), 0o755);

  const port = await freePort();
  const token = await startService(port);
  writeFileSync(path.join(work, '.readme.sh'), script(blocks, `127.0.0.1:${port}`, log));
  try {
    const { stdout, stderr } = await promisify(execFile)('bash', ['.readme.sh'], {
      cwd: work,
      env: { PATH: `${bin}:${process.env.PATH ?? ''}`, HOME: process.env.HOME ?? work, TOKEN: token },
      timeout: 400_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    result = { stdout, stderr };
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    result = { stdout: e.stdout ?? '', stderr: e.stderr ?? '', error: e };
  }
  ran = split(result.stdout, readFileSync(log, 'utf8'), blocks);
}, 600_000);

afterAll(async () => {
  if (server?.pid !== undefined && server.exitCode === null) {
    const exited = new Promise((resolve) => server!.once('exit', resolve));
    process.kill(-server.pid, 'SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('README.md: every shell block, run as written', () => {
  it('has blocks, and every skipped one for a documented reason', () => {
    expect(blocks.filter((b) => !b.skip).length).toBeGreaterThan(5);
    for (const block of blocks.filter((b) => b.skip))
      expect(SKIPS, `README.md:${block.line} (${block.heading})`).toContain(block.skip);
  });

  it('holds no literal date still to come', () => {
    const today = new Date().toISOString().slice(0, 10);
    for (const block of blocks) {
      const text = block.steps.map((s) => s.commands).join('\n');
      for (const date of text.match(/\b20\d\d-\d\d-\d\d\b/g) ?? [])
        expect(date <= today, `README.md:${block.line}: ${date} will pass`).toBe(true);
    }
  });

  it('runs to the end', () => {
    expect(result.error, `${result.stderr}\n--- server:\n${serverOutput.slice(-4000)}`).toBeUndefined();
  });

  // A skipped block (a documented reason, checked above) gets no test of its own: it is not run.
  const run = blocks.flatMap((block, b) =>
    block.skip === null ? [[block.line, block.heading, block, b] as const] : [],
  );
  describe.each(run)('block at README.md:%i (%s)', (_line, _heading, block, b) => {
    it('answers what it states', () => {
      block.steps.forEach((step, s) => {
        const got = ran.get(`${b}.${s}`);
        expect(
          got,
          `not reached: ${step.commands.slice(0, 200)}\n${result.stderr.slice(-3000)}`,
        ).toBeDefined();
        for (const call of got!.calls.slice(0, step.statement ? -1 : undefined))
          expect(call.status, `${step.commands.slice(0, 300)}\n${call.body}`).toBeLessThan(400);
        if (step.statement) expect(check(step.statement, got!)).toBeGreaterThan(0);
        else if (got!.calls.at(-1))
          expect(
            got!.calls.at(-1)!.status,
            `${step.commands.slice(0, 300)}\n${got!.calls.at(-1)!.body}`,
          ).toBeLessThan(400);
      });
    });
  });
});
