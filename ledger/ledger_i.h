/* ledger/ledger_i.h — private to ledger/: the schema, the canonical form of a
 * record that its hash covers, and error mapping. Nothing outside ledger/ may
 * include this; the public surface is ledger/ledger.h.
 *
 * The canonical form must never change for schema version 1: every record
 * ever written is verified against it. A new form needs a new tag. */
#ifndef SLUICE_LEDGER_I_H
#define SLUICE_LEDGER_I_H

#include "common/common.h"
#include "ledger/ledger.h"

#include <sqlite3.h>
#include <stdint.h>

#define LEDGER_CANON_TAG "sluice-ledger/1"
#define LEDGER_SCHEMA_VERSION 1
#define LEDGER_BUSY_TIMEOUT_MS 5000

/* The columns of `records` in table order; SELECT lists and the canonical
 * form use this order. */
#define LEDGER_COLUMNS                                                                       \
    "seq, time, event, pid, uid, gid, process, exe, cgroup, session, path, source_sha256, " \
    "served_sha256, size_served, mime, policy_hash, hits, decision, reason, extractor, "    \
    "request_id, prev_hash, hash, hmac"
enum {
    LC_SEQ, LC_TIME, LC_EVENT, LC_PID, LC_UID, LC_GID, LC_PROCESS, LC_EXE, LC_CGROUP,
    LC_SESSION, LC_PATH, LC_SOURCE, LC_SERVED, LC_SIZE, LC_MIME, LC_POLICY, LC_HITS,
    LC_DECISION, LC_REASON, LC_EXTRACTOR, LC_REQUEST, LC_PREV, LC_HASH, LC_HMAC, LC_NCOLS
};

/* A text value with its length: NULL stays distinct from "" in the hash, and
 * an embedded NUL cannot shorten what is hashed. */
typedef struct ledger_text {
    const char *s; /* NULL = SQL NULL */
    size_t len;
} ledger_text;

/* One record as stored, before its own hash/hmac. */
typedef struct ledger_row {
    uint64_t seq;
    ledger_text time, event;
    int64_t pid, uid, gid;
    ledger_text process, exe, cgroup, session, path, source_sha256, served_sha256;
    int64_t size_served;
    ledger_text mime, policy_hash, hits, decision, reason, extractor, request_id;
    uint8_t prev_hash[SHA256_LEN];
} ledger_row;

/* hash = SHA-256(canonical form); 0 or -ENOMEM/-EIO. */
int ledger_row_hash(const ledger_row *row, uint8_t out[SHA256_LEN]);
/* Fill `row` (but seq and prev_hash) from a statement positioned on a row of
 * SELECT LEDGER_COLUMNS; pointers are valid until the next step. */
void ledger_row_from_stmt(sqlite3_stmt *st, ledger_row *row);

/* "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" (31 bytes with NUL). */
#define LEDGER_TIME_LEN 40
void ledger_format_time(const struct timespec *ts, char out[LEDGER_TIME_LEN]);

/* Hits as JSON text `[{"rule":"id","count":n},...]` (malloc'd; NULL when
 * nhits == 0 is stored as "[]"). 0 or -ENOMEM. */
int ledger_hits_json(const ledger_hit *hits, size_t nhits, char **out);
/* JSON string escaping into a malloc'd buffer; appends to buf (len, cap). */
int ledger_json_str(char **buf, size_t *len, size_t *cap, const char *s);

/* Create or migrate the schema (PRAGMA user_version); 0 or -errno, why set. */
int ledger_schema_migrate(sqlite3 *db, char *why, size_t whylen);
/* -EINVAL when db holds tables but no ledger schema version; *version
 * set otherwise. Read-only. */
int ledger_schema_foreign(sqlite3 *db, int *version, char *why, size_t whylen);
/* The DDL of the records table, for segment files. */
extern const char ledger_records_ddl[];

/* The open ledger's connection and path, for archive.c (same process, no
 * appends running meanwhile). */
sqlite3 *ledger_handle(ledger *l);

/* Open an existing ledger read-only (audits never write). 0 or -errno. */
int ledger_open_readonly(const char *path, sqlite3 **out, char *why, size_t whylen);

/* SQLite result code -> negative errno. */
int ledger_sqlite_errno(sqlite3 *db, int rc);

/* Key check value stored in meta: proves which key seals this ledger
 * without revealing it. hex out (65 bytes). */
int ledger_key_check(const uint8_t *key, size_t keylen, char out[SHA256_HEX_LEN]);

#endif
