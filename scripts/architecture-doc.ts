// Writes the generated part of docs/architecture.md (the folder table, the table owners, the
// enforced rules) from test/architecture/rules.ts. `--check` writes nothing and fails when the
// doc differs; test/architecture/architecture.test.ts makes the same comparison.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { withRules } from '../test/architecture/doc.ts';
import { RULES } from '../test/architecture/rules.ts';

const file = path.resolve(import.meta.dirname, '../docs/architecture.md');
const doc = readFileSync(file, 'utf8');
const next = withRules(doc, RULES);
if (process.argv.includes('--check')) {
  if (next !== doc) {
    console.error(
      'docs/architecture.md differs from test/architecture/rules.ts: run node scripts/architecture-doc.ts',
    );
    process.exit(1);
  }
} else if (next !== doc) {
  writeFileSync(file, next);
  console.log('docs/architecture.md: rules written');
}
