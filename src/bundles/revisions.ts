import { type ParsedBundle, parseBundle } from '../engine/bundle.ts';
import type { Queryable, Sql } from '../store/types.ts';

/** A stored policy revision, without its bytes. */
export interface BundleRevision {
  digest: string;
  revision: string;
  firstSeen: string;
}

/** Who stored a revision and what was checked; revisions stored for replay alone are `system`'s. */
export interface UploadMeta {
  uploadedBy: string;
  /** True when its signature was verified with the configured key. */
  signed: boolean;
}

/** The entrypoints a bundle's manifest names, sorted. */
export function manifestEntrypoints(bundle: ParsedBundle): string[] {
  return [...new Set((bundle.manifest.wasm ?? []).map((w) => w.entrypoint))].sort();
}

/** Stores a bundle once per digest; a second put of the same bytes changes nothing. */
export function putRevisionSql(
  bundle: ParsedBundle,
  meta: UploadMeta = { uploadedBy: 'system', signed: false },
): Sql {
  return {
    text: `INSERT INTO policy_revisions (digest, revision, manifest, bundle, size, uploaded_by, signed, entrypoints)
           VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8) ON CONFLICT (digest) DO NOTHING`,
    values: [
      bundle.digest,
      bundle.revision,
      JSON.stringify(bundle.manifest),
      bundle.bytes,
      bundle.bytes.byteLength,
      meta.uploadedBy,
      meta.signed,
      manifestEntrypoints(bundle),
    ],
  };
}

/** A stored revision's bundle bytes. */
export function revisionBytesSql(digest: string): Sql {
  return { text: 'SELECT bundle FROM policy_revisions WHERE digest = $1', values: [digest] };
}

/** Every stored revision, newest first. */
export function listRevisionsSql(): Sql {
  return {
    text: `SELECT digest, revision, first_seen FROM policy_revisions ORDER BY first_seen DESC, digest`,
    values: [],
  };
}

const INFO_COLUMNS = 'digest, revision, entrypoints, size, signed, uploaded_by, first_seen';

/** One revision's details, without its bytes. */
export function revisionInfoSql(digest: string): Sql {
  return { text: `SELECT ${INFO_COLUMNS} FROM policy_revisions WHERE digest = $1`, values: [digest] };
}

/** A page of revisions' details, newest first, after the revision `before` when given. */
export function listRevisionInfoSql(limit: number, before?: string): Sql {
  return before === undefined
    ? {
        text: `SELECT ${INFO_COLUMNS} FROM policy_revisions ORDER BY first_seen DESC, digest LIMIT $1`,
        values: [limit],
      }
    : {
        text: `SELECT ${INFO_COLUMNS} FROM policy_revisions
               WHERE (first_seen, digest) < (SELECT first_seen, digest FROM policy_revisions WHERE digest = $2)
               ORDER BY first_seen DESC, digest LIMIT $1`,
        values: [limit, before],
      };
}

/**
 * Every policy revision a decision was made on, kept with its bundle bytes so that any decision can
 * be replayed on exactly the policy that made it. Revisions are immutable and identified by the
 * digest of their bytes.
 */
export class RevisionStore {
  private readonly db: Queryable;

  constructor(db: Queryable) {
    this.db = db;
  }

  /** Stores the bundle unless its digest is already there; true when it was new. */
  async put(bundle: ParsedBundle, meta?: UploadMeta): Promise<boolean> {
    const { rowCount } = await this.db.query(putRevisionSql(bundle, meta));
    return rowCount > 0;
  }

  /** The stored bundle, parsed again from its bytes (so its digest is re-derived, not trusted). */
  async get(digest: string): Promise<ParsedBundle | null> {
    const { rows } = await this.db.query<{ bundle: Uint8Array }>(revisionBytesSql(digest));
    const bytes = rows[0]?.bundle;
    if (!bytes) return null;
    // pg returns a Buffer, PGlite a Uint8Array: copy-free view either way.
    const bundle = parseBundle(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    if (bundle.digest !== digest) {
      throw new Error(`stored policy revision ${digest} does not match its bytes (${bundle.digest})`);
    }
    return bundle;
  }

  async list(): Promise<BundleRevision[]> {
    const { rows } = await this.db.query<{ digest: string; revision: string; first_seen: Date | string }>(
      listRevisionsSql(),
    );
    return rows.map((row) => ({
      digest: row.digest,
      revision: row.revision,
      firstSeen: new Date(row.first_seen).toISOString(),
    }));
  }
}
