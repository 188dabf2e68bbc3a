import { resolveConfig } from '../config/index.ts';
import { openDatabase } from '../store/index.ts';
import { verifyChains } from './verify.ts';

/**
 * `npm run audit:verify [-- --from ISO --to ISO]`: recomputes every hash chain of the configured
 * database; prints progress every 100k rows; exits 1 when a chain is broken.
 */
async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const option = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const config = resolveConfig();
  const db = await openDatabase(config);
  try {
    const started = performance.now();
    const report = await verifyChains(db, {
      from: option('--from'),
      to: option('--to'),
      onProgress: (checked) => process.stdout.write(`audit:verify: ${checked} rows checked…\n`),
    });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    if (report.ok) {
      process.stdout.write(
        `audit:verify: OK — ${report.checked} rows in ${report.writers} chains verified in ${seconds} s\n`,
      );
      return 0;
    }
    const b = report.firstBroken!;
    process.stdout.write(
      `audit:verify: BROKEN — writer ${b.writerId} at seq ${b.seq} (decision ${b.decisionId ?? 'none'}): ${b.reason}; ${report.checked} rows verified before it\n`,
    );
    return 1;
  } finally {
    await db.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`audit:verify: failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
