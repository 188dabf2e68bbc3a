import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../support/net.ts';

function postgresBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const version of versions) {
    const bin = path.join(root, version, 'bin');
    if (existsSync(path.join(bin, 'initdb'))) return bin;
  }
  throw new Error(
    'the fault test needs the PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql)',
  );
}

/**
 * A Postgres server of this test's own (initdb into a temp folder, a free port, trust auth), which
 * the test may stop and start at will — never the shared server other suites use. Postgres refuses
 * to run as root, so as root the binaries run as the `postgres` user.
 */
export class PrivatePostgres {
  readonly dir: string;
  readonly port: number;
  private readonly bin: string;

  private constructor(dir: string, port: number, bin: string) {
    this.dir = dir;
    this.port = port;
    this.bin = bin;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  static async create(): Promise<PrivatePostgres> {
    const bin = postgresBin();
    const dir = mkdtempSync(path.join(tmpdir(), 'verdict-pg-'));
    chmodSync(dir, 0o777);
    const server = new PrivatePostgres(dir, await freePort(), bin);
    server.run('initdb', ['-D', server.data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8']);
    return server;
  }

  private get data(): string {
    return path.join(this.dir, 'data');
  }

  private run(tool: string, args: string[]): void {
    const command = path.join(this.bin, tool);
    const asRoot = process.getuid?.() === 0;
    try {
      if (asRoot)
        execFileSync('runuser', ['-u', 'postgres', '--', command, ...args], { stdio: 'pipe', cwd: '/' });
      else execFileSync(command, args, { stdio: 'pipe' });
    } catch (err) {
      const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
      throw new Error(`${tool} failed: ${stderr || (err as Error).message}`);
    }
  }

  start(): void {
    this.run('pg_ctl', [
      '-D',
      this.data,
      '-l',
      path.join(this.dir, 'log'),
      '-w',
      '-o',
      `-p ${this.port} -c listen_addresses=127.0.0.1 -k ${this.dir} -c fsync=off -c max_connections=50`,
      'start',
    ]);
  }

  /** Fast shutdown: open connections are cut, as in a crash of the database host. */
  stop(): void {
    this.run('pg_ctl', ['-D', this.data, '-m', 'fast', '-w', 'stop']);
  }

  destroy(): void {
    try {
      this.run('pg_ctl', ['-D', this.data, '-m', 'immediate', '-w', 'stop']);
    } catch {
      // already stopped
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
