/**
 * The SQLite migration ladder of the state file: each step runs once, in order, and existing
 * rows are kept.
 *
 * Layer: state (private).
 *
 * @module
 */

/** `PRAGMA application_id` of a rivet state file: "RIVT", so foreign SQLite files are told apart. */
export const STATE_APPLICATION_ID = 0x52495654;

/** One schema migration; each runs in its own transaction. */
export interface Migration {
  readonly version: number;
  readonly sql: string;
}

/**
 * The migration ladder. Append only: never edit a released migration. v1 holds every table of the
 * first release that kept state (cursors, file log, metrics, schema baselines, checkpoints,
 * progression, journal, run aggregates); v2 adds what `--resume` needs to rebuild and verify a
 * manifest from the file log; v3 records whether a failed chunk may be retried by a plain
 * `--resume`; v4 keeps the longest value per column with the schema baseline; v5 keys cursors by
 * export name and config identity; v6 records who holds a running chunk task;
 * v7 who finishes a chunked run.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE schema_version (
        version INTEGER PRIMARY KEY,
        applied_at TEXT NOT NULL
      );
      CREATE TABLE export_state (
        export_name TEXT PRIMARY KEY,
        last_cursor_value TEXT,
        last_run_at TEXT NOT NULL
      );
      CREATE TABLE export_metrics (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL,
        export_name TEXT NOT NULL,
        run_at TEXT NOT NULL,
        duration_ms INTEGER NOT NULL,
        total_rows INTEGER NOT NULL,
        peak_rss_mb INTEGER,
        status TEXT NOT NULL,
        error_message TEXT,
        tuning_profile TEXT,
        format TEXT,
        mode TEXT,
        files_produced INTEGER,
        bytes_written INTEGER,
        retries INTEGER,
        validated INTEGER,
        schema_changed INTEGER,
        files_committed INTEGER,
        reconciled INTEGER,
        source_count INTEGER,
        quality_passed INTEGER,
        pg_temp_bytes_delta INTEGER,
        batch_size INTEGER,
        batch_size_memory_mb INTEGER,
        skip_reason TEXT,
        schema_fingerprint TEXT,
        chunk_size INTEGER,
        parallel INTEGER,
        source_type TEXT,
        destination_type TEXT,
        rivet_version TEXT,
        longest_chunk_ms INTEGER
      );
      CREATE INDEX idx_export_metrics_export ON export_metrics(export_name, id DESC);
      CREATE TABLE export_schema (
        export_name TEXT PRIMARY KEY,
        columns_json TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE TABLE file_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL,
        export_name TEXT NOT NULL,
        file_name TEXT NOT NULL,
        row_count INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        format TEXT NOT NULL,
        compression TEXT,
        created_at TEXT NOT NULL
      );
      CREATE INDEX idx_file_log_export ON file_log(export_name, id DESC);
      CREATE INDEX idx_file_log_run ON file_log(run_id);
      CREATE TABLE chunk_run (
        run_id TEXT PRIMARY KEY,
        export_name TEXT NOT NULL,
        plan_hash TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('in_progress', 'completed')),
        max_chunk_attempts INTEGER NOT NULL CHECK (max_chunk_attempts >= 1),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE INDEX idx_chunk_run_export ON chunk_run(export_name, created_at DESC);
      -- At most one run in progress per export: a second fresh run fails on insert instead of
      -- racing a check-then-act (the reference tool's v15 lesson).
      CREATE UNIQUE INDEX idx_chunk_run_one_in_progress
        ON chunk_run(export_name) WHERE status = 'in_progress';
      CREATE TABLE chunk_task (
        run_id TEXT NOT NULL REFERENCES chunk_run(run_id) ON DELETE CASCADE,
        chunk_index INTEGER NOT NULL,
        start_key TEXT,
        end_key TEXT,
        status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        rows_written INTEGER,
        file_name TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (run_id, chunk_index)
      );
      CREATE INDEX idx_chunk_task_run_status ON chunk_task(run_id, status, chunk_index);
      CREATE TABLE export_progression (
        export_name TEXT PRIMARY KEY,
        last_committed_strategy TEXT,
        last_committed_cursor TEXT,
        last_committed_chunk_index INTEGER,
        last_committed_run_id TEXT,
        last_committed_at TEXT,
        last_verified_strategy TEXT,
        last_verified_cursor TEXT,
        last_verified_chunk_index INTEGER,
        last_verified_run_id TEXT,
        last_verified_at TEXT
      );
      CREATE TABLE run_journal (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL,
        export_name TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        journal_json TEXT NOT NULL
      );
      CREATE INDEX idx_run_journal_export ON run_journal(export_name, id DESC);
      CREATE INDEX idx_run_journal_run ON run_journal(run_id);
      CREATE TABLE run_aggregate (
        run_aggregate_id TEXT PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        duration_ms INTEGER NOT NULL,
        config_path TEXT,
        parallel_mode TEXT NOT NULL,
        total_exports INTEGER NOT NULL,
        success_count INTEGER NOT NULL,
        failed_count INTEGER NOT NULL,
        skipped_count INTEGER NOT NULL,
        total_rows INTEGER NOT NULL,
        total_files INTEGER NOT NULL,
        total_bytes INTEGER NOT NULL,
        details_json TEXT NOT NULL
      );
      CREATE INDEX idx_run_aggregate_finished ON run_aggregate(finished_at DESC);
      PRAGMA application_id = ${STATE_APPLICATION_ID};
    `,
  },
  {
    version: 2,
    // Nullable columns only, so rows of a v1 file stay valid as they are: NULL reads back as an
    // absent field, and a NULL status means committed.
    sql: `
      ALTER TABLE file_log ADD COLUMN content_fingerprint TEXT;
      ALTER TABLE file_log ADD COLUMN content_md5 TEXT;
      ALTER TABLE file_log ADD COLUMN chunk_index INTEGER;
      ALTER TABLE file_log ADD COLUMN part_index INTEGER;
      ALTER TABLE file_log ADD COLUMN status TEXT
        CHECK (status IS NULL OR status IN ('committed', 'quarantined'));
    `,
  },
  {
    version: 3,
    // The class of a failed task's failure, so that --resume gives a transient failure (an
    // outage, a full disk) a fresh budget and leaves a permanent one to --force. NULL for rows of
    // older files: read as transient.
    sql: `
      ALTER TABLE chunk_task ADD COLUMN failure TEXT
        CHECK (failure IS NULL OR failure IN ('transient', 'permanent'));
    `,
  },
  {
    version: 4,
    // Shape drift: the longest value per string/binary column, kept with the schema baseline.
    // NULL for baselines of older files: read as "not tracked yet".
    sql: `
      ALTER TABLE export_schema ADD COLUMN shape_json TEXT;
    `,
  },
  {
    version: 5,
    // Cursor identity: a cursor belongs to an export name *and* the identity of its source and
    // query, so two configs in one folder that reuse a name never share a cursor. The key changes,
    // so the table is rebuilt; rows of older files keep '' (no identity), which the next run of
    // that export takes over.
    sql: `
      CREATE TABLE export_state_v5 (
        export_name TEXT NOT NULL,
        config_identity TEXT NOT NULL DEFAULT '',
        last_cursor_value TEXT,
        last_run_at TEXT NOT NULL,
        PRIMARY KEY (export_name, config_identity)
      );
      INSERT INTO export_state_v5 (export_name, config_identity, last_cursor_value, last_run_at)
        SELECT export_name, '', last_cursor_value, last_run_at FROM export_state;
      DROP TABLE export_state;
      ALTER TABLE export_state_v5 RENAME TO export_state;
    `,
  },
  {
    version: 6,
    // Who holds a running task (the shared chunk ledger of several hosts): the claimer's host
    // name and pid, and until when its claim is good (lease renewal and the recovery of expired
    // claims build on it). NULL while nobody holds the task, and in rows of older files.
    sql: `
      ALTER TABLE chunk_task ADD COLUMN claimed_by_host TEXT;
      ALTER TABLE chunk_task ADD COLUMN claimed_by_pid INTEGER;
      ALTER TABLE chunk_task ADD COLUMN lease_expires_at TEXT;
    `,
  },
  {
    version: 7,
    // Who finishes a run shared by several processes (manifest, _SUCCESS, completed): exactly
    // one claims it, under a lease so that a finisher that dies is replaced. NULL until then.
    sql: `
      ALTER TABLE chunk_run ADD COLUMN finished_by_host TEXT;
      ALTER TABLE chunk_run ADD COLUMN finished_by_pid INTEGER;
      ALTER TABLE chunk_run ADD COLUMN finish_lease_expires_at TEXT;
    `,
  },
  {
    version: 8,
    // The trace of each export run (`rivet report`): a JSON document bounded by the recorder,
    // a few per export (older ones are deleted when a new one is saved). One per process (the
    // writer: host, pid and start), saved as the run goes: a resumed run, or one shared by
    // several hosts, has several under one run id.
    sql: `
      CREATE TABLE run_trace (
        run_id TEXT NOT NULL,
        export_name TEXT NOT NULL,
        writer TEXT NOT NULL,
        started_at TEXT NOT NULL,
        trace_json TEXT NOT NULL
      );
      CREATE INDEX run_trace_by_run ON run_trace (run_id, export_name, writer);
      CREATE INDEX run_trace_by_export ON run_trace (export_name);
    `,
  },
];

/** Highest schema version this build knows. */
export const STATE_SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1]!.version;
