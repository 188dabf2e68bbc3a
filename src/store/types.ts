/** A parameterised SQL statement. Values are always parameters, never spliced into the text. */
export interface Sql {
  text: string;
  values?: unknown[];
}

/** The rows a statement returned. */
export interface QueryResult<Row> {
  rows: Row[];
  rowCount: number;
}

/**
 * The database as the domain sees it: real Postgres (`pg` pool) or embedded PGlite, running the
 * same migrations and SQL. Implementations live in src/store/.
 */
export interface Database {
  readonly kind: 'postgres' | 'pglite';
  query<Row = Record<string, unknown>>(sql: Sql): Promise<QueryResult<Row>>;
  /** Runs `work` in one transaction on one connection; commits when it resolves, rolls back when it throws. */
  transaction<T>(work: (tx: Pick<Database, 'query'>) => Promise<T>): Promise<T>;
  /** True when the database answers a trivial query. Never throws. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
