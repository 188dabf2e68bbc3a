import { randomFillSync } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';

// NOTE: uuid's own v7 asks WebCrypto for 16 random bytes per id, which showed as 2% of a worker's
// CPU in the tool-call profile (bench/README.md). Random bytes are drawn here 4 KiB at a time; the
// uuid library still lays out and formats the id.
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let offset = POOL_BYTES;
let lastMsecs = -1;
let seq = 0;

/**
 * A UUIDv7 decision id whose timestamp is `msecs`, the decision's own time (so an id tells when its
 * decision was made, to the millisecond). Ids made in the same millisecond count up from a random
 * start (RFC 9562 §6.2, method 1), so they sort in the order they were made.
 */
export function decisionId(msecs: number): string {
  if (offset + 16 > pool.length) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES));
    offset = 0;
  }
  const random = pool.subarray(offset, offset + 16);
  offset += 16;
  if (msecs === lastMsecs) {
    seq = (seq + 1) >>> 0;
  } else {
    lastMsecs = msecs;
    // 31 random bits: room to count up within one millisecond.
    seq = random.readUInt32BE(6) >>> 1;
  }
  return uuidv7({ msecs, seq, random });
}
