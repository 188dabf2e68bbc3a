/**
 * The one walker of hash chains: decisions per writer (verify.ts), platform events per writer
 * (event-log.ts) and the copies of chain segments in an evidence package (evidence/verify.ts). Each
 * row stores its predecessor's hash and its own, and hash = hex(SHA-256(prev_hash ‖ canonical JSON
 * of the other columns)); the caller gives the row's hash function, the walker recomputes it and
 * checks the positions and the links.
 */

/** The prev_hash of a chain's first record. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * Why a chain is broken, at the row where it was noticed:
 * - edited: the row's stored hash is not the hash of its stored fields;
 * - deleted: seq jumps (rows before this one are missing);
 * - inserted: a second row at a position already taken, rows past the writer's recorded head, or
 *   rows of a writer that never recorded a head;
 * - reordered: the row is intact but does not link to its predecessor (rows moved between positions,
 *   or the predecessor rewritten together with its hash);
 * - tail_truncated: the writer's chain ends before its recorded head.
 */
export type ChainBreak = 'edited' | 'deleted' | 'inserted' | 'reordered' | 'tail_truncated';

/** The columns of a chained row that the walker reads. */
export interface ChainedRow {
  id: string;
  writer_id: string;
  seq: number;
  prev_hash: string;
  hash: string;
}

/** A break, at a row (`id` null when the writer has no row left at all). */
export interface ChainBreakAt {
  id: string | null;
  writerId: string;
  seq: number;
  reason: ChainBreak;
  /** For `inserted` and `deleted` found by position: the seq the chain expected there. */
  expectedSeq?: number;
}

/** How the chains are walked. */
export interface ChainWalkOptions<Row extends ChainedRow> {
  /** The row's hash recomputed from its fields (chainHash, eventHash). */
  hash: (row: Row) => string;
  /**
   * The recorded head seq of every writer (chain_heads, platform_event_heads). When given, rows of
   * a writer without a head are `inserted`; when absent (an evidence segment) no head is checked.
   */
  heads?: ReadonlyMap<string, number>;
  /**
   * True when the chains run to their heads: a row past its writer's head is `inserted`, and a
   * chain that ends before its head is `tail_truncated` (a time window with an end turns this off).
   */
  toHeads?: boolean;
  /**
   * True when a writer's first row in view may start past seq 1 (a window, or retention dropped the
   * oldest rows): it is then taken as the chain's anchor, since nothing before it can be checked.
   * Otherwise every chain starts at seq 1 with GENESIS_HASH, and a writer whose head was recorded
   * but whose rows are all gone is `tail_truncated`.
   */
  anchored?: boolean;
  /** Which chain a row belongs to. Default: its writer_id. */
  chainOf?: (row: Row) => string;
}

/**
 * Walks rows in chain order (by chain, then seq), one `step` per row, and `finish` after the last.
 * Both return the breaks they found, the most telling first (a caller that stops at the first break
 * takes `[0]`); after a break the walk goes on from the row that broke, so a caller that reports
 * every break sees each one once.
 */
export class ChainWalker<Row extends ChainedRow> {
  /** Rows that passed every check. */
  checked = 0;
  private readonly options: ChainWalkOptions<Row>;
  private readonly seen = new Set<string>();
  private chain: string | null = null;
  private expected = 1;
  private prevHash = GENESIS_HASH;
  private last: { id: string; seq: number } | null = null;

  constructor(options: ChainWalkOptions<Row>) {
    this.options = options;
  }

  /** How many chains had rows. */
  get chains(): number {
    return this.seen.size;
  }

  /** Checks the next row against the position and the link its chain expects. */
  step(row: Row): ChainBreakAt[] {
    const breaks: ChainBreakAt[] = [];
    const chain = this.options.chainOf?.(row) ?? row.writer_id;
    if (chain !== this.chain) {
      if (this.chain !== null) breaks.push(...this.tail(this.chain));
      const missingHead = this.begin(chain, row);
      if (missingHead) return [...breaks, missingHead];
    }
    const at = { id: row.id, writerId: chain, seq: row.seq };
    if (row.seq !== this.expected) {
      const reason = row.seq < this.expected ? 'inserted' : 'deleted';
      breaks.push({ ...at, reason, expectedSeq: this.expected });
    }
    if (this.options.hash(row) !== row.hash) breaks.push({ ...at, reason: 'edited' });
    if (row.seq === this.expected && row.prev_hash !== this.prevHash)
      breaks.push({ ...at, reason: 'reordered' });
    const head = this.options.heads?.get(chain);
    if (this.options.toHeads && head !== undefined && row.seq > head)
      breaks.push({ ...at, reason: 'inserted' });
    this.expected = row.seq + 1;
    this.prevHash = row.hash;
    this.last = { id: row.id, seq: row.seq };
    if (breaks.length === 0) this.checked += 1;
    return breaks;
  }

  /** After the last row: the chains that end before their heads (with `toHeads`). */
  finish(): ChainBreakAt[] {
    const breaks = this.chain === null ? [] : this.tail(this.chain);
    const { heads, toHeads, anchored } = this.options;
    if (heads && toHeads && !anchored) {
      for (const [writerId, head] of heads) {
        if (!this.seen.has(writerId) && head > 0) {
          breaks.push({ id: null, writerId, seq: 0, reason: 'tail_truncated' });
        }
      }
    }
    return breaks;
  }

  /** Starts `chain` at `row`; a row of a writer without a recorded head is `inserted`. */
  private begin(chain: string, row: Row): ChainBreakAt | null {
    this.chain = chain;
    this.seen.add(chain);
    this.last = null;
    if (this.options.anchored && row.seq > 1) {
      this.expected = row.seq;
      this.prevHash = row.prev_hash;
    } else {
      this.expected = 1;
      this.prevHash = GENESIS_HASH;
    }
    if (this.options.heads && !this.options.heads.has(chain)) {
      this.expected = row.seq + 1;
      this.prevHash = row.hash;
      this.last = { id: row.id, seq: row.seq };
      return { id: row.id, writerId: chain, seq: row.seq, reason: 'inserted' };
    }
    return null;
  }

  private tail(chain: string): ChainBreakAt[] {
    const head = this.options.heads?.get(chain);
    if (!this.options.toHeads || head === undefined) return [];
    const lastSeq = this.last?.seq ?? 0;
    if (lastSeq >= head) return [];
    return [{ id: this.last?.id ?? null, writerId: chain, seq: lastSeq, reason: 'tail_truncated' }];
  }
}

/** How many breaks a verification report lists; past it they are only counted. */
export const MAX_BREAKS_REPORTED = 100;

/** Every break of a walk, bounded: the first `max` in chain order, and how many there were. */
export interface ChainBreaks {
  breaks: ChainBreakAt[];
  count: number;
  /** Rows that passed before the first break (every row that passed, when none broke). */
  checkedBeforeFirst: number;
}

/**
 * Walks every row `pages` yields (in chain order) and keeps going past a break, so that one report
 * names every break in the window — an edited row and a deleted one further on are two findings,
 * not one. Keeps the first `max` breaks and counts the rest.
 */
export async function everyBreak<Row extends ChainedRow>(
  walker: ChainWalker<Row>,
  pages: AsyncIterable<readonly Row[]>,
  max: number,
  onChecked?: (checked: number) => void,
): Promise<ChainBreaks> {
  const found: ChainBreaks = { breaks: [], count: 0, checkedBeforeFirst: 0 };
  const add = (breaks: ChainBreakAt[]) => {
    if (breaks.length > 0 && found.count === 0) found.checkedBeforeFirst = walker.checked;
    found.count += breaks.length;
    for (const b of breaks) if (found.breaks.length < max) found.breaks.push(b);
  };
  for await (const page of pages) {
    for (const row of page) {
      const broken = walker.step(row);
      if (broken.length > 0) add(broken);
      else onChecked?.(walker.checked);
    }
  }
  add(walker.finish());
  if (found.count === 0) found.checkedBeforeFirst = walker.checked;
  return found;
}
