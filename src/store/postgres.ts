import pg from 'pg';
import type { Database, PostgresConnection, Queryable, QueryResult, Sql } from './types.ts';

/** How to reach a Postgres server. */
export interface PostgresOptions {
  url: string;
  /**
   * A schema to work in (created when missing and put first on the search_path), so that several
   * test suites or tenants can share one database without seeing each other's tables.
   */
  schema?: string;
  /** Pool size; the group-commit writer needs one connection, queries the rest. */
  max?: number;
  /** Fail a connection attempt after this long, so an outage is noticed rather than waited on. */
  connectTimeoutMs?: number;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

function wrap(client: pg.Pool | pg.PoolClient): Queryable {
  return {
    async query<Row>(sql: Sql): Promise<QueryResult<Row>> {
      const result = await client.query({
        name: sql.name,
        text: sql.text,
        values: sql.values as unknown[] | undefined,
      });
      return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
    },
    async exec(script: string): Promise<void> {
      // A query without parameters goes through the simple protocol, which accepts many statements.
      await client.query(script);
    },
  };
}

/** Postgres through a `pg` pool. */
export class PostgresDatabase implements Database {
  readonly kind = 'postgres' as const;
  readonly connection: PostgresConnection;
  private readonly pool: pg.Pool;
  private readonly direct: Queryable;

  constructor(options: PostgresOptions) {
    if (options.schema !== undefined && !SCHEMA_NAME.test(options.schema)) {
      throw new Error(`invalid schema name "${options.schema}"`);
    }
    this.connection =
      options.schema === undefined ? { url: options.url } : { url: options.url, schema: options.schema };
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.max ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 3_000,
      options: options.schema ? `-c search_path=${options.schema},public` : undefined,
    });
    // NOTE: an idle client whose server went away emits 'error' on the pool; without a listener that
    // would crash the process. The next query fails instead, and the audit writer spools.
    this.pool.on('error', () => {});
    this.direct = wrap(this.pool);
  }

  query<Row = Record<string, unknown>>(sql: Sql): Promise<QueryResult<Row>> {
    return this.direct.query<Row>(sql);
  }

  exec(script: string): Promise<void> {
    return this.direct.exec(script);
  }

  async transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // NOTE: a checked-out client whose server goes away emits 'error' on itself (not on the pool);
    // unheard, that would crash the process. The pending query rejects anyway, so ignore it here.
    const ignore = () => {};
    client.on('error', ignore);
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await work(wrap(client));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw err;
    } finally {
      // A client whose rollback failed has a dead or confused connection: destroy it.
      client.off('error', ignore);
      client.release(broken);
    }
  }

  async ping(): Promise<boolean> {
    try {
      await this.pool.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** Opens a pool and, when a schema is named, makes sure it exists. */
export async function openPostgres(options: PostgresOptions): Promise<PostgresDatabase> {
  if (options.schema !== undefined) {
    const setup = new PostgresDatabase({ url: options.url, max: 1 });
    try {
      await setup.exec(`CREATE SCHEMA IF NOT EXISTS ${options.schema}`);
    } finally {
      await setup.close();
    }
  }
  return new PostgresDatabase(options);
}
