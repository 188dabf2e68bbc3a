/** A parameterised SQL statement. Values are always parameters, never spliced into the text. */
export interface Sql {
  /**
   * Names a statement that runs often: Postgres then parses and plans it once per connection
   * (`pg` prepared statement). One name, one text. Ignored by PGlite.
   */
  name?: string;
  text: string;
  values?: unknown[];
}

/** The rows a statement returned. */
export interface QueryResult<Row> {
  rows: Row[];
  rowCount: number;
}

/** What a transaction's work may do: parameterised queries and parameterless scripts. */
export interface Queryable {
  query<Row = Record<string, unknown>>(sql: Sql): Promise<QueryResult<Row>>;
  /** Runs a script of several statements without parameters (migrations, DDL). */
  exec(script: string): Promise<void>;
}

/** How another thread reaches the same Postgres database, over connections of its own. */
export interface PostgresConnection {
  url: string;
  /** The schema the tables live in (first on the search_path), when one is named. */
  schema?: string;
}

/**
 * The database as the domain sees it: real Postgres (`pg` pool) or embedded PGlite, running the
 * same migrations and SQL. Implementations live in src/store/.
 */
export interface Database extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /**
   * How a worker thread opens connections of its own to this database (impact analysis's workers
   * read their pages there); null when only this thread can reach it: PGlite lives in its memory.
   */
  readonly connection: PostgresConnection | null;
  /** Runs `work` in one transaction on one connection; commits when it resolves, rolls back when it throws. */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  /** True when the database answers a trivial query. Never throws. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
