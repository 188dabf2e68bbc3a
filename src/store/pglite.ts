import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import type { Database, Queryable, QueryResult, Sql } from './types.ts';

interface PGliteLike {
  query<T>(query: string, params?: unknown[]): Promise<{ rows: T[]; affectedRows?: number }>;
  exec(query: string): Promise<unknown>;
}

function wrap(client: PGliteLike): Queryable {
  return {
    async query<Row>(sql: Sql): Promise<QueryResult<Row>> {
      const result = await client.query<Row>(sql.text, sql.values);
      return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
    },
    async exec(script: string): Promise<void> {
      await client.exec(script);
    },
  };
}

/**
 * Embedded Postgres (WASM) in a local folder: what `npm start` uses when no DATABASE_URL is set.
 * One connection; PGlite queues concurrent statements itself.
 */
export class PGliteDatabase implements Database {
  readonly kind = 'pglite' as const;
  /** Nobody else: PGlite lives in this thread's memory. */
  readonly connection = null;
  private readonly db: PGlite;
  private readonly direct: Queryable;
  private closed = false;

  private constructor(db: PGlite) {
    this.db = db;
    this.direct = wrap(db as unknown as PGliteLike);
  }

  /** Opens (creating when missing) the database in `dataDir`; in memory when `dataDir` is undefined. */
  static async open(dataDir: string | undefined): Promise<PGliteDatabase> {
    if (dataDir !== undefined) mkdirSync(dataDir, { recursive: true });
    const db = await PGlite.create(dataDir === undefined ? {} : { dataDir });
    return new PGliteDatabase(db);
  }

  query<Row = Record<string, unknown>>(sql: Sql): Promise<QueryResult<Row>> {
    return this.direct.query<Row>(sql);
  }

  exec(script: string): Promise<void> {
    return this.direct.exec(script);
  }

  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.db.transaction((tx) => work(wrap(tx as unknown as PGliteLike)));
  }

  async ping(): Promise<boolean> {
    if (this.closed) return false;
    try {
      await this.db.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.close();
  }
}
