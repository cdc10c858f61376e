/* ledger/schema.c — the ledger's SQL schema and its migrations, applied on
 * open under PRAGMA user_version. sluice-ledger(5) documents every table,
 * column and view here; keep the two in step.
 *
 * Must never: alter or drop a column of `records` that the canonical hash
 * covers, or rewrite existing rows: a migration that touched sealed records
 * would make the whole chain fail verification. Migrations only add. */
#include "ledger/ledger_i.h"

#include <errno.h>
#include <stdio.h>

const char ledger_records_ddl[] =
    "CREATE TABLE IF NOT EXISTS records (\n"
    "  seq INTEGER PRIMARY KEY,       -- 1, 2, 3 ... without gaps\n"
    "  time TEXT NOT NULL,            -- UTC, YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ\n"
    "  event TEXT NOT NULL,           -- mount, unmount, policy-load, open-served, ...\n"
    "  pid INTEGER NOT NULL,\n"
    "  uid INTEGER NOT NULL,\n"
    "  gid INTEGER NOT NULL,\n"
    "  process TEXT,                  -- comm of the reader\n"
    "  exe TEXT,                      -- its executable\n"
    "  cgroup TEXT,                   -- its cgroup (the container)\n"
    "  session TEXT,                  -- the mount's session label\n"
    "  path TEXT,                     -- relative to the served root\n"
    "  source_sha256 TEXT,            -- hex SHA-256 of the source bytes\n"
    "  served_sha256 TEXT,            -- hex SHA-256 of the bytes served\n"
    "  size_served INTEGER NOT NULL,\n"
    "  mime TEXT,\n"
    "  policy_hash TEXT,\n"
    "  hits TEXT NOT NULL,            -- JSON [{\"rule\":ID,\"count\":N},...]\n"
    "  decision TEXT,                 -- served, refused, accepted, rejected, ...\n"
    "  reason TEXT,\n"
    "  extractor TEXT,\n"
    "  request_id TEXT,\n"
    "  prev_hash TEXT NOT NULL,       -- hex hash of record seq-1 (zeros for seq 1)\n"
    "  hash TEXT NOT NULL,            -- hex SHA-256 of this record's canonical form\n"
    "  hmac TEXT NOT NULL             -- hex HMAC-SHA256(key, hash)\n"
    ");\n";

/* Version 1: records, meta, segments and the audit views. */
static const char migration_1[] =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS segments (\n"
    "  first_seq INTEGER PRIMARY KEY,\n"
    "  last_seq INTEGER NOT NULL,\n"
    "  file TEXT NOT NULL,            -- beside the database\n"
    "  sha256 TEXT NOT NULL,          -- of the compressed file\n"
    "  last_hash TEXT NOT NULL,       -- chain hash of record last_seq\n"
    "  records INTEGER NOT NULL,\n"
    "  created TEXT NOT NULL\n"
    ");\n"
    /* Only time is indexed: it grows with seq, so each commit touches one
     * index page. Indexes on path or checksums put every record of a group
     * commit on a different page and roughly halve the durable append rate;
     * auditors who need them build them on a copy (sluice-ledger(5)). */
    "CREATE INDEX IF NOT EXISTS records_time ON records(time);\n"
    /* Which processes read files that had hits of a given rule. */
    "CREATE VIEW IF NOT EXISTS rule_hits AS\n"
    "  SELECT r.seq, r.time, r.event, r.pid, r.uid, r.process, r.exe, r.cgroup, r.session,\n"
    "         r.path, r.source_sha256, r.decision,\n"
    "         json_extract(h.value, '$.rule') AS rule, json_extract(h.value, '$.count') AS count\n"
    "  FROM records AS r, json_each(r.hits) AS h;\n"
    /* All refused accesses (sluicefs opens and diode ingests). */
    "CREATE VIEW IF NOT EXISTS refusals AS\n"
    "  SELECT seq, time, event, pid, uid, gid, process, exe, cgroup, session, path,\n"
    "         source_sha256, mime, policy_hash, decision, reason, request_id\n"
    "  FROM records WHERE event IN ('open-refused', 'ingest-rejected');\n"
    /* Bytes served per process per (UTC) day. */
    "CREATE VIEW IF NOT EXISTS bytes_per_process_day AS\n"
    "  SELECT substr(time, 1, 10) AS day, process, exe, uid, cgroup,\n"
    "         count(*) AS opens, sum(size_served) AS bytes\n"
    "  FROM records WHERE event = 'open-served'\n"
    "  GROUP BY day, process, exe, uid, cgroup;\n"
    /* Every access to one file, by the checksum of its source or served bytes. */
    "CREATE VIEW IF NOT EXISTS accesses_by_checksum AS\n"
    "  SELECT source_sha256 AS sha256, 'source' AS side, seq, time, event, pid, uid, process,\n"
    "         exe, cgroup, session, path, size_served, decision, reason\n"
    "  FROM records WHERE source_sha256 IS NOT NULL\n"
    "  UNION ALL\n"
    "  SELECT served_sha256, 'served', seq, time, event, pid, uid, process,\n"
    "         exe, cgroup, session, path, size_served, decision, reason\n"
    "  FROM records WHERE served_sha256 IS NOT NULL;\n"
    /* Records are append-only: refuse edits and deletes through SQL. This is
     * a guard against accidents, not the tamper evidence (anyone with write
     * access can drop a trigger; the chain and HMAC catch that). Archiving
     * removes rows with the trigger's guard switched off in meta. */
    "CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records\n"
    "  BEGIN SELECT RAISE(ABORT, 'ledger records are append-only'); END;\n"
    "CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records\n"
    "  WHEN (SELECT value FROM meta WHERE key = 'archiving') IS NOT '1'\n"
    "  BEGIN SELECT RAISE(ABORT, 'ledger records are append-only (use sluice ledger archive)'); END;\n";

static const char *const migrations[] = {
    NULL,        /* version 0: empty database */
    migration_1, /* version 1 */
};

/* 0, or -EINVAL when `db` is a database of something else: tables but no
 * schema version of ours. Version 0 must mean "new, empty file": never
 * graft a ledger onto some other application's database given by
 * mistake. One statement, so one snapshot: read outside a transaction,
 * the version and the tables could straddle another opener's migration. */
int ledger_schema_foreign(sqlite3 *db, int *version, char *why, size_t whylen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT (SELECT user_version FROM pragma_user_version), "
                                "(SELECT count(*) FROM sqlite_master)",
                                -1, &st, NULL);
    if (rc != SQLITE_OK || (rc = sqlite3_step(st)) != SQLITE_ROW) {
        snprintf(why, whylen, "cannot read the schema: %s", sqlite3_errmsg(db));
        int e = ledger_sqlite_errno(db, rc == SQLITE_OK ? sqlite3_errcode(db) : rc);
        sqlite3_finalize(st);
        return e ? e : -EIO;
    }
    *version = sqlite3_column_int(st, 0);
    const int tables = sqlite3_column_int(st, 1);
    sqlite3_finalize(st);
    if (*version == 0 && tables != 0) {
        snprintf(why, whylen, "not a sluice ledger (a SQLite database of something else)");
        return -EINVAL;
    }
    return 0;
}

/* The version is read, and the migrations run, inside one write
 * transaction: two processes opening a new ledger at once (sluice-diode's
 * sender and receiver, sluicefs) must not both see an empty file and both
 * build it, nor one see the other's half-built schema as "a database of
 * something else". */
int ledger_schema_migrate(sqlite3 *db, char *why, size_t whylen)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        snprintf(why, whylen, "cannot lock the schema: %s", err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        const int e = ledger_sqlite_errno(db, rc);
        return e ? e : -EIO;
    }
    int version;
    if ((rc = ledger_schema_foreign(db, &version, why, whylen)) < 0) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    const int latest = (int)SLUICE_ARRAY_LEN(migrations) - 1;
    if (version > latest) {
        snprintf(why, whylen, "schema version %d is newer than this sluice understands (%d)",
                 version, latest);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -EPROTO;
    }
    rc = SQLITE_OK;
    int v = version + 1;
    for (; v <= latest && rc == SQLITE_OK; v++) {
        char sql[64];
        if (v == 1)
            rc = sqlite3_exec(db, ledger_records_ddl, NULL, NULL, &err);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(db, migrations[v], NULL, NULL, &err);
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        if (v - 1 > version)
            snprintf(why, whylen, "migration to schema version %d failed: %s", v - 1,
                     err ? err : sqlite3_errmsg(db));
        else
            snprintf(why, whylen, "committing the schema check: %s", err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        int e = ledger_sqlite_errno(db, rc);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return e ? e : -EIO;
    }
    return 0;
}
