import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configVariables } from './config-variables.ts';

const root = path.resolve(import.meta.dirname, '../..');

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile instructions with line continuations joined and comments dropped. */
function parseDockerfile(text: string): Instruction[] {
  const joined = text.replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [op, ...rest] = line.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
}

const instructions = parseDockerfile(readFileSync(path.join(root, 'Dockerfile'), 'utf8'));
const args = new Map(
  instructions
    .filter((i) => i.op === 'ARG' && i.args.includes('='))
    .map((i) => i.args.split('=', 2) as [string, string]),
);
const stages: { from: string; name: string | undefined; body: Instruction[] }[] = [];
for (const instruction of instructions) {
  if (instruction.op === 'FROM') {
    const [image, as, name] = instruction.args.split(/\s+/);
    const resolved = image!.replace(/^\$\{(\w+)\}$/, (_m, arg: string) => args.get(arg) ?? image!);
    stages.push({ from: resolved, name: as?.toUpperCase() === 'AS' ? name : undefined, body: [] });
  } else stages.at(-1)?.body.push(instruction);
}
const final = stages.at(-1)!;
const inFinal = (op: string) => final.body.filter((i) => i.op === op);

describe('Dockerfile', () => {
  it('is multi-stage with pinned base images (a version tag, never latest)', () => {
    expect(stages.length).toBeGreaterThanOrEqual(3);
    for (const stage of stages) {
      if (stages.some((s) => s.name === stage.from)) continue; // FROM an earlier stage
      expect(stage.from, stage.from).toMatch(/^[\w./-]+:\d+(\.\d+)+[\w.-]*$/);
      expect(stage.from).not.toMatch(/:latest$/);
    }
    expect(final.from).toMatch(/^node:24\.\d+\.\d+-\w+-slim$/);
  });

  it('compiles policies/ with the pinned OPA CLI in a build stage, not in the final image', () => {
    const goStage = stages.find((s) => s.from.startsWith('golang:'));
    expect(goStage).toBeDefined();
    const install = goStage!.body.find((i) => i.op === 'RUN' && i.args.includes('go install'));
    expect(install?.args).toContain('github.com/open-policy-agent/opa@$(tr -d');
    expect(install?.args).toContain('.opa-version');
    const policyStage = stages.find((s) =>
      s.body.some((i) => i.args.includes('node scripts/build-policies.ts')),
    );
    expect(policyStage).toBeDefined();
    expect(policyStage).not.toBe(final);
    expect(
      final.body.some((i) => /\bopa\b/.test(i.args) && i.op === 'COPY' && i.args.includes('/out/opa')),
    ).toBe(false);
    expect(
      inFinal('COPY').some(
        (i) => i.args.includes(`--from=${policyStage!.name}`) && i.args.includes('bundle.tar.gz'),
      ),
    ).toBe(true);
  });

  it("carries OPA's Go builtins compiled to wasm (ADR 0022), built from builtins-go/ beside OPA", () => {
    const goStage = stages.find((s) => s.from.startsWith('golang:'))!;
    const build = goStage.body.find((i) => i.op === 'RUN' && i.args.includes('GOOS=wasip1'));
    expect(build?.args).toContain('-buildmode=c-shared');
    expect(build?.args).toContain('-o /out/verdict-builtins.wasm');
    const copied = inFinal('COPY').find((i) => i.args.includes('/out/verdict-builtins.wasm'));
    const target = copied?.args.split(/\s+/).at(-1)?.replace(/^\.\//, '/app/');
    expect(target).toBe('/app/lib/verdict-builtins.wasm');
    const env = inFinal('ENV')
      .map((i) => i.args)
      .join(' ');
    expect(env).toContain(`VERDICT_GO_BUILTINS_WASM=${target}`);
  });

  it('ships production dependencies only', () => {
    const copyModules = inFinal('COPY').find((i) => i.args.includes('node_modules'));
    const from = /--from=(\S+)/.exec(copyModules!.args)![1];
    const depsStage = stages.find((s) => s.name === from)!;
    expect(depsStage.body.some((i) => i.op === 'RUN' && /npm ci\b.*--omit=dev/.test(i.args))).toBe(true);
    expect(final.body.some((i) => i.op === 'RUN' && /npm (ci|install)/.test(i.args))).toBe(false);
  });

  it('runs as a non-root user, read-only-root friendly, with a HEALTHCHECK and node src/main.ts', () => {
    const user = inFinal('USER').at(-1)?.args;
    expect(user).toBeDefined();
    expect(user!.split(':')[0]).not.toMatch(/^(root|0)$/);
    expect(user).toMatch(/^\d+(:\d+)?$/); // numeric, so runAsNonRoot can verify it
    const env = inFinal('ENV')
      .map((i) => i.args)
      .join(' ');
    expect(env).toContain('VERDICT_DATA_DIR=/var/lib/verdict');
    expect(
      inFinal('VOLUME')
        .map((i) => i.args)
        .join(' '),
    ).toContain('/var/lib/verdict');
    const healthcheck = inFinal('HEALTHCHECK');
    expect(healthcheck).toHaveLength(1);
    expect(healthcheck[0]!.args).toContain('/health/live');
    expect(inFinal('CMD').at(-1)?.args).toBe('["node", "src/main.ts"]');
    expect(inFinal('STOPSIGNAL')[0]?.args).toBe('SIGTERM');
  });

  it('sets only environment variables the service reads', () => {
    const known = configVariables();
    const names = inFinal('ENV').flatMap((i) => [...i.args.matchAll(/(\w+)=/g)].map((m) => m[1]!));
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) expect(known, name).toContain(name);
  });

  it('.dockerignore keeps secrets, dependencies and local state out of the build context', () => {
    const ignored = readFileSync(path.join(root, '.dockerignore'), 'utf8').split('\n');
    for (const entry of ['node_modules', '.git', '.tools', '.verdict-data', '.env'])
      expect(ignored).toContain(entry);
  });
});
