import type { Config } from '../config/resolve-config.ts';
import type { DecisionRecorder } from '../decisions/types.ts';
import type { Database } from '../store/types.ts';
import { DisabledRecorder } from './memory-recorder.ts';
import { AuditWriter, type AuditWriterOptions, spoolDirectory } from './writer.ts';

/** The audit trail as the process wires it: the recorder for DecisionService, and its writer. */
export interface AuditTrail {
  recorder: DecisionRecorder;
  /** Absent in mode `off`. */
  writer?: AuditWriter;
  /** Flushes pending records (queue, spool replay attempt) and stops. */
  close(): Promise<void>;
}

/**
 * Builds the recorder for `config.audit.mode`: `off` → DisabledRecorder (nothing recorded);
 * `sync`/`async` → an AuditWriter on `db`, spooling to `${dataDir}/spool`, started (leftover spool
 * files replayed) before this resolves.
 */
export async function createAuditTrail(
  config: Pick<Config, 'audit' | 'dataDir'>,
  db: Database,
  logger?: AuditWriterOptions['logger'],
  overrides: Partial<AuditWriterOptions> = {},
): Promise<AuditTrail> {
  const { mode, batchMaxRecords, batchMaxWaitMs, queueMaxRecords, enqueueTimeoutMs, spoolMaxBytes } =
    config.audit;
  if (mode === 'off') {
    const recorder = new DisabledRecorder();
    return { recorder, close: () => recorder.close() };
  }
  const writer = new AuditWriter({
    db,
    spoolDir: spoolDirectory(config.dataDir),
    mode,
    batchMaxRecords,
    batchMaxWaitMs,
    queueMaxRecords,
    enqueueTimeoutMs,
    spoolMaxBytes,
    logger,
    ...overrides,
  });
  await writer.start();
  return { recorder: writer, writer, close: () => writer.close() };
}
