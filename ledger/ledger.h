/* ledger/ledger.h — the access ledger's whole public surface.
 *
 * An append-only SQLite database (WAL) of every access and decision, each
 * record chained to the previous one by hash and sealed by HMAC-SHA256 under
 * a key the sandbox cannot read. ledger_append() returns only once the record
 * is durable (committed and fsynced, possibly in a group commit shared with
 * other threads): the caller serves nothing before that, and refuses the
 * access when it fails.
 */
#ifndef SLUICE_LEDGER_H
#define SLUICE_LEDGER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct ledger ledger;

typedef enum ledger_event {
    LEDGER_MOUNT = 1,
    LEDGER_UNMOUNT,
    LEDGER_POLICY_LOAD,
    LEDGER_OPEN_SERVED,
    LEDGER_OPEN_REFUSED,
    LEDGER_INGEST_ACCEPTED,
    LEDGER_INGEST_REJECTED,
} ledger_event;

const char *ledger_event_name(ledger_event e); /* "open-served", ... */

typedef struct ledger_hit {
    const char *rule_id;
    uint64_t count;
} ledger_hit;

/* Every pointer may be NULL (stored as NULL). Strings are copied. */
typedef struct ledger_record {
    ledger_event event;
    pid_t pid;
    uid_t uid;
    gid_t gid;
    const char *process;   /* comm */
    const char *exe;       /* /proc/PID/exe target */
    const char *cgroup;    /* the reader's cgroup path */
    const char *session;   /* -o session= label */
    const char *path;      /* relative to the served root */
    const char *source_sha256; /* hex */
    const char *served_sha256; /* hex */
    uint64_t size_served;
    const char *mime;
    const char *policy_hash;
    const ledger_hit *hits;
    size_t nhits;
    const char *decision;  /* "served", "refused", "accepted", "rejected", ... */
    const char *reason;
    const char *extractor; /* document extractor, when one was used */
    const char *request_id; /* matches the daemon's log line */
} ledger_record;

/* Open (creating and migrating as needed) the ledger at `path`, sealing
 * records with the key in `key_path` (see key_load()). 0 or -errno; `why`
 * gets a human reason. -EKEYREJECTED: the ledger is sealed with another key.
 * Open it after any fork()/daemon() (a SQLite connection must not cross a
 * fork). One handle serves any number of threads; several processes may
 * append to one ledger (the chain stays linear). */
int ledger_open(const char *path, const char *key_path, ledger **out, char *why, size_t whylen);

/* Append one record; returns when it is durable. *seq (may be NULL) gets its
 * sequence number. 0 or negative: the access must then be refused
 * (-ENOSPC disk full, -EBUSY locked by another process for more than 5 s,
 * -EUCLEAN corrupted, -ESTALE or -ENOENT the file was removed or replaced,
 * -EIO ...; the reason is also logged). Thread-safe: concurrent appends
 * share one transaction and one fsync (group commit). */
int ledger_append(ledger *l, const ledger_record *r, uint64_t *seq);

/* A hint for group commit: delta = +1 when a caller starts work that will
 * end in one ledger_append() (an open being checked), -1 just before that
 * append (or when the work ends without one). A leader about to commit
 * waits, at most about one commit's time, while appends are announced, so
 * that concurrent opens share one fsync instead of paying one each; with
 * nothing announced (a lone reader) nobody waits. Only a hint: what is
 * committed and when it is durable does not depend on it. */
void ledger_expect(ledger *l, int delta);

/* Only once no thread is inside ledger_append() on `l`. */
void ledger_close(ledger *l);

/* ---- additions (auditing; used by `sluice ledger` and the tests) ----------- */

/* Group-commit counters since ledger_open(): records / commits is the
 * average batch (one fsync each). */
typedef struct ledger_stats {
    uint64_t commits, records, failed_commits;
} ledger_stats;
void ledger_get_stats(ledger *l, ledger_stats *out);

/* "open-served" -> LEDGER_OPEN_SERVED; 0 or -EINVAL. */
int ledger_event_parse(const char *name, ledger_event *out);

/* A signed digest of the chain's head, for auditors to keep elsewhere. Its
 * text form is one line:
 *   sluice-ledger-checkpoint v1 seq=N hash=HEX time=UTC hmac=HEX
 * where hmac = HMAC-SHA256(key, everything before " hmac="). */
#define LEDGER_CHECKPOINT_MAX 256
typedef struct ledger_checkpoint {
    uint64_t seq;                 /* 0 for an empty ledger */
    uint8_t hash[32];             /* chain hash of record seq */
    char time[40];                /* when it was taken (UTC) */
    uint8_t hmac[32];
} ledger_checkpoint;

/* Take a checkpoint of the ledger at `path` (read-only). 0 or -errno. */
int ledger_checkpoint_take(const char *path, const char *key_path, ledger_checkpoint *out,
                           char *why, size_t whylen);
void ledger_checkpoint_format(const ledger_checkpoint *c, char *out, size_t outlen);
/* Parse one checkpoint line and check its HMAC under the key: 0, -EINVAL
 * (not a checkpoint line) or -EBADMSG (HMAC does not match). */
int ledger_checkpoint_parse(const char *line, const uint8_t *key, size_t keylen,
                            ledger_checkpoint *out);

typedef struct ledger_verify_report {
    uint64_t records;     /* records checked (archived segments included) */
    uint64_t segments;    /* archived segments checked */
    uint64_t first_seq, last_seq;
    uint64_t bad_seq;     /* first bad record (0 when the problem has no seq) */
    char what[512];       /* what is wrong with it, or "" */
} ledger_verify_report;

/* Walk the whole chain (archived segments, then the database): sequence
 * without gaps from 1, each prev_hash = the previous hash, each hash = the
 * SHA-256 of the record's canonical form, each HMAC under the key; then each
 * checkpoint (HMAC, record seq present with that hash: a missing one means a
 * truncated tail). Opens the database read-only. 0 = clean, -EBADMSG =
 * verification failed (rep->bad_seq and rep->what say where and why), other
 * negative = could not verify (rep->what says why). */
int ledger_verify(const char *path, const char *key_path, const ledger_checkpoint *cps,
                  size_t ncps, ledger_verify_report *rep);

/* Move records with seq < before_seq (at most up to the newest but one: the
 * head always stays in the database) into a zstd-compressed segment file
 * beside the database, "<db>.seg-<first>-<last>.zst" (a SQLite database with
 * the same records table), listed in the `segments` table; verify keeps
 * checking them and the chain continues across. *moved gets the number of
 * records archived (0: nothing to do). 0 or -errno (why says). */
int ledger_archive(const char *path, const char *key_path, uint64_t before_seq,
                   uint64_t *moved, char *why, size_t whylen);
/* Every archived segment listed in the ledger open as `db` (a read-only
 * SQLite handle on the database at `path`; run this inside the caller's read
 * transaction so that it and the live records are one consistent view),
 * oldest first: each is checked against its recorded SHA-256, decompressed
 * and handed to fn as a read-only in-memory database with the same
 * `records` table. A non-zero return from fn stops and is returned; else 0
 * or -errno (why says). */
struct sqlite3;
typedef int (*ledger_segment_fn)(void *ctx, struct sqlite3 *seg, const char *file);
int ledger_foreach_segment(struct sqlite3 *db, const char *path, ledger_segment_fn fn, void *ctx,
                           char *why, size_t whylen);

/* The first seq whose time is not older than `days` days (for --older-than). */
int ledger_seq_older_than(const char *path, double days, uint64_t *before_seq, char *why,
                          size_t whylen);

#endif
