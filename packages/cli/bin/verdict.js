#!/usr/bin/env node
// The `verdict` command of the @verdict/cli package: the CLI compiled from src/cli/verdict.ts at pack
// time (ADR 0020). Not `import.meta.main` there: Node 20 has none.
import { PROCESS_IO, runCli } from '../dist/src/cli/verdict.js';

process.exitCode = await runCli(process.argv.slice(2), PROCESS_IO);
