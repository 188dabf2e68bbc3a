import type { DecisionRecord, DecisionRecorder } from '../decisions/types.ts';

/**
 * Keeps records in memory. Used by unit tests and by `VERDICT_AUDIT_MODE=off`-style setups that
 * still want to look at what was decided; never by a production audit trail.
 */
export class MemoryRecorder implements DecisionRecorder {
  readonly records: DecisionRecord[] = [];
  /** When set, `record` rejects with it: lets tests prove that an unrecordable decision fails closed. */
  failWith: Error | null = null;

  async record(records: DecisionRecord[]): Promise<void> {
    if (this.failWith) throw this.failWith;
    this.records.push(...records);
  }

  async close(): Promise<void> {}
}

/** `VERDICT_AUDIT_MODE=off`: decisions are answered and not recorded anywhere. */
export class DisabledRecorder implements DecisionRecorder {
  async record(): Promise<void> {}
  async close(): Promise<void> {}
}
