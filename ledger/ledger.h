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
 * gets a human reason. */
int ledger_open(const char *path, const char *key_path, ledger **out, char *why, size_t whylen);

/* Append one record; returns when it is durable. *seq (may be NULL) gets its
 * sequence number. 0 or negative: the access must then be refused. */
int ledger_append(ledger *l, const ledger_record *r, uint64_t *seq);

void ledger_close(ledger *l);

#endif
