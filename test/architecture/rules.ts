/**
 * The house rules of src/ as data. `rules-check.ts` checks the tree against them
 * (`architecture.test.ts`), and the folder table of docs/architecture.md is generated from them
 * (`node scripts/architecture-doc.ts`; the test fails when the doc differs).
 *
 * Each folder is declared once, by name, after every folder it may import: renaming a folder is a
 * change to its `name` line, and a cycle in the table cannot be written.
 */

/** A place outside src/ that some folders may import by a relative path. */
export interface OutsidePath {
  /** Repository-relative path prefix, e.g. `packages/sdk`. */
  readonly path: string;
  /** How the doc names it. */
  readonly label: string;
}

/** A folder of src/: what it owns and what it may import. */
export interface FolderRule {
  /** The folder's name under src/. */
  readonly name: string;
  /** What it owns, one line of Markdown (the doc's "what it owns" column). */
  readonly owns: string;
  /** The folders of src/ (and the places outside it) its files may import; none other. */
  readonly imports: readonly (FolderRule | OutsidePath)[];
  /** Whether its files may import Fastify, a `@fastify/*` package or a `fastify-*` plugin. */
  readonly fastify: boolean;
}

/** A module of src/ that holds SQL: a file of a folder. */
export interface SqlModule {
  readonly folder: FolderRule;
  /** File name inside the folder. */
  readonly file: string;
}

/** Every rule, as one value, so that a test can plant a changed copy. */
export interface ArchitectureRules {
  /** The folders of src/, in the order the doc lists them; every folder of src/ has one entry. */
  readonly folders: readonly FolderRule[];
  /** The files at the top of src/ (the composition root and the process). */
  readonly root: {
    readonly owns: string;
    readonly imports: readonly FolderRule[];
    readonly fastify: boolean;
  };
  /**
   * Each Postgres table created by migrations/*.sql → the one module whose SQL reads and writes
   * it. Every other module calls that module's functions.
   */
  readonly tables: Readonly<Record<string, SqlModule>>;
}

const folder = (
  name: string,
  owns: string,
  imports: readonly (FolderRule | OutsidePath)[],
  options: { fastify?: boolean } = {},
): FolderRule => ({ name, owns, imports, fastify: options.fastify ?? false });

const sql = (folder: FolderRule, file: string): SqlModule => ({ folder, file });

/** The module path of a SqlModule, relative to src/. */
export const modulePath = (m: SqlModule): string => `${m.folder.name}/${m.file}`;

/** The TypeScript SDK's sources, which the enforcement points (mcp, gate, cli) import. */
export const SDK: OutsidePath = { path: 'packages/sdk', label: 'the SDK (`packages/sdk`)' };

// Leaves first: a folder can only name the folders declared above it.
const json = folder('json', 'tests on parsed JSON values (`values.ts`: `isObject`); imports nothing', []);
const config = folder(
  'config',
  'one typed `Config` and its pure resolver (`resolve-config.ts`), the env parsers (`env.ts`), the console’s OIDC settings (`oidc.ts`); nothing else reads `process.env`',
  [],
);
const engine = folder(
  'engine',
  'bundle parsing, the wasm module cache, evaluation: `PolicyEngine`, `ActivePolicy`, `RevisionRef`',
  [json],
);
const guardrails = folder(
  'guardrails',
  'the detectors on text models read and write: secrets, personal data, prompt injection (`detectors.ts`, `checksums.ts`), the content scanner that turns a content into `findings` (`scan.ts`), the redaction the log applies (`redact.ts`)',
  [],
);
const decisions = folder(
  'decisions',
  'the evaluation core (`evaluateDecision`), the result contract, the decision service (`decide`, `decideMany`, `decideSearch`), the `DecisionRecord`, its input digest and masking, the content actions’ findings and redacted record (`content.ts`)',
  [engine, guardrails, json],
);
const store = folder(
  'store',
  'the database (`open-database.ts`: `pg` pool or embedded PGlite), migrations, the Redis client, the notice bus (`bus.ts`), `fleet_state` and replica heartbeats (`fleet.ts`), keyset page conditions (`keyset.ts`)',
  [config],
);
const audit = folder(
  'audit',
  'the decision log and its SQL homes (`decision-log.ts`, `kpi-sql.ts`, `checkpoint-sql.ts`, `siem-cursor-sql.ts`), the hash chain and the one chain walker (`chain-walk.ts`), the group-commit writer and spool, signed checkpoints, queries, export and the SIEM forwarder, KPIs, verify, replay, partitions, the platform event log (`event-log.ts`)',
  [engine, decisions, store, config, json],
);
const bundles = folder(
  'bundles',
  'the policy lifecycle: revisions by digest, signatures, upload / activate / shadow (`lifecycle.ts`), each replica’s follower (`replica.ts`), seeding, the bundle-service puller, the shadow report, impact analysis (`impact.ts`: a candidate on recorded decisions in worker threads, `impact-worker.ts`; its runs’ SQL, `impact-sql.ts`)',
  [engine, decisions, audit, store, config, json],
);
const grants = folder(
  'grants',
  'waivers and human approvals, one vocabulary (waiver): the control catalog (`control-catalog.ts`), the waiver store and cache, the approval store and its webhook, `StoredGrants` (the decision service’s `input.grants`), `createGrants`; their SQL (`grants-sql.ts`)',
  [engine, audit, decisions, store, config, json],
);
const auth = folder(
  'auth',
  'token verification (JWT, JWKS), scopes, caller identity, key sources, the development token, the console’s OIDC sign-in and its claim → scope mapping (`oidc.ts`)',
  [decisions, config],
);
const sessions = folder(
  'sessions',
  'the console’s server-side sessions and one-time sign-in links (`session-store.ts`: `SessionStore`); their SQL (`sessions-sql.ts`)',
  [decisions, store],
);
const observability = folder(
  'observability',
  'the metrics registry and names, logger options, the decision observer',
  [config, decisions, engine],
);
const evidence = folder(
  'evidence',
  'evidence packages: build a signed tar.gz about one resource (`package.ts`), verify one offline (`verify.ts`)',
  [audit, decisions, engine, grants, json, store],
);
const consoleFolder = folder(
  'console',
  'the governance console at `/console` (`console-plugin.ts`: `consoleRoutes`): server-rendered pages (`html.ts`: the escaping template tag), sign-in and sessions, CSRF, CSP, the live approvals inbox, the waiver pages, the decision explorer, the policy register, the playground, KPIs and evidence pages, OIDC sign-in routes; reads and changes state only through the capabilities’ modules (no SQL)',
  [audit, auth, bundles, config, decisions, engine, evidence, grants, json, sessions, store],
  { fastify: true },
);
const http = folder(
  'http',
  'the app (`app.ts`: `buildApp`) and every Fastify plugin: the routes with their TypeBox schemas (`wire/`), the one error mapper (`errors.ts`), the auth hook, body parsing, problem+json errors, security headers, request ids, request metrics, load shedding',
  [
    audit,
    auth,
    bundles,
    config,
    consoleFolder,
    decisions,
    engine,
    evidence,
    grants,
    json,
    observability,
    sessions,
    store,
  ],
  { fastify: true },
);
const shutdown = folder('shutdown', 'graceful shutdown and the readiness drain (`graceful-shutdown.ts`)', [
  http,
]);
const mcp = folder(
  'mcp',
  'the MCP guard: `McpGuard` (one MCP session’s decisions and state), `proxyMcp` (the guard between two transports) and `ServerProcessTransport` (the guarded server in a process group of its own)',
  [SDK],
);
const gate = folder(
  'gate',
  'the CI release gate: the `release.deploy` envelope from a pipeline’s files (`release.ts`) and its reports (`report.ts`)',
  [json, SDK],
);
const cli = folder(
  'cli',
  'the `verdict` command (`verdict.ts`): bundles, decisions, waivers and approvals over the HTTP API (`api-group.ts`), `gate release`, `mcp-proxy`, `token`, `audit verify`, `migrate`, `evidence verify`; packed as `@verdict/cli` (`packages/cli`)',
  [audit, auth, config, evidence, store, mcp, gate, SDK],
);

export const RULES: ArchitectureRules = {
  folders: [
    json,
    config,
    engine,
    guardrails,
    decisions,
    audit,
    bundles,
    grants,
    auth,
    store,
    sessions,
    consoleFolder,
    http,
    observability,
    shutdown,
    evidence,
    mcp,
    gate,
    cli,
  ],
  root: {
    owns: '`create-verdict.ts`, the composition root (`createVerdict`); `main.ts`, the process; `cluster.ts`, the worker group',
    imports: [
      config,
      engine,
      decisions,
      store,
      audit,
      bundles,
      grants,
      auth,
      sessions,
      observability,
      evidence,
      http,
      shutdown,
    ],
    fastify: false,
  },
  tables: {
    decision_log: sql(audit, 'decision-log.ts'),
    decision_log_default: sql(audit, 'decision-log.ts'),
    decision_log_retention: sql(audit, 'decision-log.ts'),
    chain_heads: sql(audit, 'decision-log.ts'),
    decision_rollup_hourly: sql(audit, 'kpi-sql.ts'),
    release_gates: sql(audit, 'kpi-sql.ts'),
    chain_checkpoints: sql(audit, 'checkpoint-sql.ts'),
    siem_cursors: sql(audit, 'siem-cursor-sql.ts'),
    siem_leases: sql(audit, 'siem-cursor-sql.ts'),
    platform_events: sql(audit, 'event-log.ts'),
    platform_event_heads: sql(audit, 'event-log.ts'),
    policy_revisions: sql(bundles, 'revisions.ts'),
    impact_runs: sql(bundles, 'impact-sql.ts'),
    fleet_state: sql(store, 'fleet.ts'),
    replicas: sql(store, 'fleet.ts'),
    exceptions: sql(grants, 'grants-sql.ts'),
    approvals: sql(grants, 'grants-sql.ts'),
    console_sessions: sql(sessions, 'sessions-sql.ts'),
    console_sign_in_links: sql(sessions, 'sessions-sql.ts'),
  },
};

/** The rules the checker enforces, by id, as the doc states them. */
export const RULE_TEXT = {
  'folder-table': 'every folder of `src/` has a row in the table above, and every row a folder',
  'folder-import': 'a file imports only its own folder and the folders its row allows',
  'outside-import': 'a relative import that leaves `src/` goes only where its folder’s row allows (the SDK)',
  'root-import': 'no file inside a folder imports a file at the top of `src/`',
  fastify: 'Fastify, `@fastify/*` and `fastify-*` are imported only in the folders whose row allows Fastify',
  loader:
    'no CommonJS loader in `src/` (`require()`, or Node’s createRequire), and no `import()` of anything but a literal',
  'folder-cycle': 'no two folders import each other in a cycle',
  'table-owner':
    'SQL naming a table (`FROM`, `JOIN`, `INTO`, `UPDATE`, `TABLE`, `TRUNCATE`, `COPY`) stands only in the module that owns it',
  'table-list':
    'every table created by `migrations/*.sql` has exactly one owning module, and each owner exists',
} as const;

export type RuleId = keyof typeof RULE_TEXT;
