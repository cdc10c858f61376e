/* ledger/ledger.c — opening the ledger and appending records with group
 * commit: concurrent appenders queue their records; the first one that finds
 * no commit in progress becomes the leader, writes the whole queue in one
 * BEGIN IMMEDIATE ... COMMIT (WAL, synchronous=FULL: one fsync) and wakes
 * every appender of that batch with the shared result.
 *
 * Must never: report success for a record that is not committed and fsynced;
 * assign a sequence number or chain hash outside the write transaction (two
 * processes may append to one ledger, and the chain must stay linear); or
 * keep writing to a database file that is no longer the one at the path
 * (removed or replaced: what we wrote would be lost to the auditors). */
#include "ledger/ledger_i.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Records per transaction at most: bounds the time one leader holds the
 * write lock and the latency of the appenders queued behind it. */
#define LEDGER_MAX_BATCH 4096
/* Gathering. A new leader may wait for the appenders of recent batches to
 * queue again before it commits: without that, batches alternate between 1
 * record (whoever comes back first leads at once) and the rest, and half of
 * every fsync is wasted. The leader waits until the queue holds `target`
 * records (a peak of recent batch sizes, decaying by 1/8 per commit so that
 * a drop in load costs only a few short waits) or for at most the average
 * commit time (capped): waiting one fsync to fill a batch never loses more
 * than it gains. A lone appender never waits (its target is 1). It also
 * waits, within the same time, while callers have announced appends that
 * are on their way (ledger_expect): sluicefs announces an open once it has
 * stat'ed the source, and the append follows as soon as the reader has
 * been identified. Measured with 8 concurrent readers of cached 4 KiB
 * files (bench_fs case b): about 4 opens per fdatasync became 5 to 6, on a
 * machine where a commit costs on the order of 100 us of CPU. */
#define LEDGER_GATHER_MAX_NS 2000000L

/* Waking. Each appender sleeps on a semaphore of its own, posted once:
 * when its batch is committed (done) or when it is to lead the next one
 * (lead). A shared condition variable woke every appender after every
 * commit, and all of them then fought for the queue lock to find out
 * whether it was their turn: with 8 concurrent opens that herd was most of
 * sluicefs's futex calls and a good part of its CPU per open. */
typedef struct ledger_waiter {
    struct ledger_waiter *next;
    const ledger_record *rec;
    char time[LEDGER_TIME_LEN];
    char *hits_json;
    uint64_t seq;
    int result;
    int done, lead; /* under the ledger's lock until posted */
    sem_t wake;
} ledger_waiter;

struct ledger {
    sqlite3 *db;
    sqlite3_stmt *ins, *head, *seghead;
    sqlite3_stmt *begin, *commit; /* prepared once: parsing them cost ~5 us per commit */
    char *path;
    uint8_t key[KEY_MAX_LEN];
    size_t keylen;
    dev_t dev;
    ino_t ino;

    pthread_mutex_t lock;
    pthread_cond_t gather; /* the leader waits here for its batch to fill */
    ledger_waiter *qhead, *qtail;
    size_t qlen, target;    /* queued records; the batch size gathering aims for */
    atomic_long expected;   /* appends announced by ledger_expect(), not yet made */
    long commit_ns;         /* moving average of a commit's duration */
    int leader_active, gathering;
    ledger_stats stats;
    const char *step; /* what the current leader is doing, for the failure log */
    char errmsg[256]; /* SQLite's message for the last failed batch ("-": not SQLite's) */
};

static const char *const event_names[] = {
    [LEDGER_MOUNT] = "mount",
    [LEDGER_UNMOUNT] = "unmount",
    [LEDGER_POLICY_LOAD] = "policy-load",
    [LEDGER_OPEN_SERVED] = "open-served",
    [LEDGER_OPEN_REFUSED] = "open-refused",
    [LEDGER_INGEST_ACCEPTED] = "ingest-accepted",
    [LEDGER_INGEST_REJECTED] = "ingest-rejected",
};

const char *ledger_event_name(ledger_event e)
{
    if ((int)e <= 0 || (size_t)e >= SLUICE_ARRAY_LEN(event_names))
        return NULL;
    return event_names[e];
}

int ledger_event_parse(const char *name, ledger_event *out)
{
    for (size_t i = 1; i < SLUICE_ARRAY_LEN(event_names); i++)
        if (event_names[i] && !strcmp(event_names[i], name)) {
            *out = (ledger_event)i;
            return 0;
        }
    return -EINVAL;
}

static int fsync_parent_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static int exec_sql(ledger *l, const char *sql, char *why, size_t whylen)
{
    char *err = NULL;
    int rc = sqlite3_exec(l->db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        snprintf(why, whylen, "%s", err ? err : sqlite3_errmsg(l->db));
        sqlite3_free(err);
        int e = ledger_sqlite_errno(l->db, rc);
        return e ? e : -EIO;
    }
    return 0;
}

/* Record which key seals this ledger (first open) or check that it is the
 * one given: appending under another key would make every later record fail
 * verification, so refuse at open rather than discover it at audit. */
static int check_meta(ledger *l, char *why, size_t whylen)
{
    char kc[SHA256_HEX_LEN];
    int rc = ledger_key_check(l->key, l->keylen, kc);
    if (rc < 0) {
        snprintf(why, whylen, "cannot compute key check");
        return rc;
    }
    rc = exec_sql(l, "BEGIN IMMEDIATE", why, whylen);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(l->db, "INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", -1,
                           &st, NULL) != SQLITE_OK)
        goto sqlfail;
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        char created[LEDGER_TIME_LEN];
        ledger_format_time(&ts, created);
        const char *const kv[][2] = {{"key_check", kc}, {"created", created},
                                     {"format", LEDGER_CANON_TAG}};
        for (size_t i = 0; i < SLUICE_ARRAY_LEN(kv); i++) {
            sqlite3_bind_text(st, 1, kv[i][0], -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, kv[i][1], -1, SQLITE_TRANSIENT);
            if (sqlite3_step(st) != SQLITE_DONE)
                goto sqlfail;
            sqlite3_reset(st);
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(l->db, "SELECT value FROM meta WHERE key = 'key_check'", -1, &st,
                           NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        goto sqlfail;
    const char *stored = (const char *)sqlite3_column_text(st, 0);
    if (!stored || strlen(stored) != 64 || !ct_equal(stored, kc, 64)) {
        snprintf(why, whylen, "this ledger is sealed with a different key");
        sqlite3_finalize(st);
        sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
        return -EKEYREJECTED;
    }
    sqlite3_finalize(st);
    rc = exec_sql(l, "COMMIT", why, whylen);
    if (rc < 0 && !sqlite3_get_autocommit(l->db))
        sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
sqlfail:
    snprintf(why, whylen, "%s", sqlite3_errmsg(l->db));
    rc = ledger_sqlite_errno(l->db, sqlite3_errcode(l->db));
    sqlite3_finalize(st);
    sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
    return rc ? rc : -EIO;
}

void ledger_get_stats(ledger *l, ledger_stats *out)
{
    pthread_mutex_lock(&l->lock);
    *out = l->stats;
    pthread_mutex_unlock(&l->lock);
}

sqlite3 *ledger_handle(ledger *l)
{
    return l->db;
}

int ledger_open_readonly(const char *path, sqlite3 **out, char *why, size_t whylen)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW, NULL);
    if (rc != SQLITE_OK) {
        snprintf(why, whylen, "%s", db ? sqlite3_errmsg(db) : "cannot open");
        rc = ledger_sqlite_errno(db, rc);
        sqlite3_close(db);
        return rc ? rc : -EIO;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, LEDGER_BUSY_TIMEOUT_MS);
    /* Refuse what is not a sluice ledger before anyone trusts an answer. */
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'format'", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        snprintf(why, whylen, "not a sluice ledger (%s)",
                 rc == SQLITE_DONE ? "no format in meta" : sqlite3_errmsg(db));
        sqlite3_finalize(st);
        int e = rc == SQLITE_DONE ? -EINVAL : ledger_sqlite_errno(db, rc);
        sqlite3_close(db);
        return e ? e : -EINVAL;
    }
    sqlite3_finalize(st);
    *out = db;
    return 0;
}

void ledger_close(ledger *l)
{
    if (!l)
        return;
    if (l->stats.commits || l->stats.failed_commits)
        log_info("msg=\"ledger closed\" ledger=%s records=%llu commits=%llu failed_commits=%llu "
                 "records_per_commit=%.1f commit_ms=%.2f",
                 l->path, (unsigned long long)l->stats.records,
                 (unsigned long long)l->stats.commits,
                 (unsigned long long)l->stats.failed_commits,
                 l->stats.commits ? (double)l->stats.records / (double)l->stats.commits : 0.0,
                 (double)l->commit_ns / 1e6);
    sqlite3_finalize(l->ins);
    sqlite3_finalize(l->head);
    sqlite3_finalize(l->seghead);
    sqlite3_finalize(l->begin);
    sqlite3_finalize(l->commit);
    if (l->db)
        sqlite3_close_v2(l->db);
    explicit_bzero(l->key, sizeof l->key);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->gather);
    free(l->path);
    free(l);
}

/* The connection's settings and the file's schema and key check: every
 * step may be repeated (ledger_open tries again while busy). */
static int setup(ledger *l, char *why, size_t whylen)
{
    char w[400] = "";
    int rc, version;
    /* Some other application's database given by mistake is refused
     * before anything is changed in it, its journal mode included
     * (ledger_schema_migrate checks again, in its write transaction). */
    if ((rc = ledger_schema_foreign(l->db, &version, why, whylen)) < 0)
        return rc;
    /* WAL + synchronous=FULL: every COMMIT fsyncs the WAL before returning,
     * which is what "durable before the data" means. */
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(l->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        if (!mode || strcmp(mode, "wal") != 0) {
            snprintf(why, whylen, "cannot switch to WAL mode (got %s)", mode ? mode : "?");
            sqlite3_finalize(st);
            return -EIO;
        }
        sqlite3_finalize(st);
    } else {
        snprintf(why, whylen, "switching to WAL mode: %s", sqlite3_errmsg(l->db));
        rc = ledger_sqlite_errno(l->db, rc == SQLITE_OK ? sqlite3_errcode(l->db) : rc);
        sqlite3_finalize(st);
        return rc ? rc : -EIO;
    }
    if ((rc = exec_sql(l, "PRAGMA synchronous=FULL", w, sizeof w)) < 0) {
        snprintf(why, whylen, "PRAGMA synchronous: %s", w);
        return rc;
    }
    if ((rc = ledger_schema_migrate(l->db, why, whylen)) < 0)
        return rc;
    if ((rc = check_meta(l, w, sizeof w)) < 0) {
        snprintf(why, whylen, rc == -EKEYREJECTED ? "%s" : "key check: %s", w);
        return rc;
    }
    return 0;
}

int ledger_open(const char *path, const char *key_path, ledger **out, char *why, size_t whylen)
{
    char dummy[8];
    if (!why || whylen == 0) {
        why = dummy;
        whylen = sizeof dummy;
    }
    *out = NULL;
    ledger *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    pthread_mutex_init(&l->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->gather, &ca);
    pthread_condattr_destroy(&ca);
    /* Absolute, so that the removed-or-replaced check still looks at the
     * right file if the process changes directory later (daemonizing does). */
    if (path[0] == '/') {
        l->path = strdup(path);
    } else {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof cwd) && asprintf(&l->path, "%s/%s", cwd, path) < 0)
            l->path = NULL;
    }
    if (!l->path) {
        ledger_close(l);
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    char kwhy[256] = "";
    int rc = key_load(key_path, l->key, &l->keylen, kwhy, sizeof kwhy);
    if (rc < 0) {
        snprintf(why, whylen, "key %s: %s", key_path, kwhy);
        ledger_close(l);
        return rc;
    }
    /* A new ledger is created 0640 (SQLite gives its -wal and -shm the same
     * mode): auditors read it through a group; others, and the sandbox, not. */
    int cfd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (cfd >= 0)
        close(cfd);
    /* FULLMUTEX: appenders hand the connection from leader to leader, and the
     * audit functions may share it; SQLite's own mutex keeps that safe. */
    rc = sqlite3_open_v2(path, &l->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX |
                             SQLITE_OPEN_NOFOLLOW,
                         NULL);
    if (rc != SQLITE_OK) {
        snprintf(why, whylen, "%s", l->db ? sqlite3_errmsg(l->db) : "cannot open");
        rc = ledger_sqlite_errno(l->db, rc);
        ledger_close(l);
        return rc ? rc : -EIO;
    }
    sqlite3_extended_result_codes(l->db, 1);
    sqlite3_busy_timeout(l->db, LEDGER_BUSY_TIMEOUT_MS);

    /* Another process may be opening (or creating) the same ledger at this
     * moment: sluice-diode's sender and receiver start together on one
     * ledger. Setting up a new file takes locks SQLite will not wait for
     * (two connections upgrading at once: one is told "locked" at once,
     * not after the busy timeout), so a step that found the database busy
     * is tried again, for as long as the busy timeout. */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned attempt = 0;; attempt++) {
        rc = setup(l, why, whylen);
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        const long ms = (t1.tv_sec - t0.tv_sec) * 1000L + (t1.tv_nsec - t0.tv_nsec) / 1000000L;
        if (rc != -EBUSY || ms >= LEDGER_BUSY_TIMEOUT_MS)
            break;
        /* 1-32 ms (a step growing to 16 ms, plus as much jitter) so that
         * two openers fall apart; SQLite's own waits share the budget */
        const unsigned step = 1000u << (attempt < 4 ? attempt : 4);
        usleep(step + (unsigned)(t1.tv_nsec / 1000 % step));
        sqlite3_busy_timeout(l->db, (int)(LEDGER_BUSY_TIMEOUT_MS - ms > 1 ? LEDGER_BUSY_TIMEOUT_MS - ms : 1));
    }
    sqlite3_busy_timeout(l->db, LEDGER_BUSY_TIMEOUT_MS);
    if (rc < 0) {
        ledger_close(l);
        return rc;
    }
    /* A new database file (and its WAL) must survive a crash as an entry in
     * its directory, not only as contents. */
    if ((rc = fsync_parent_dir(path)) < 0) {
        snprintf(why, whylen, "fsync of the ledger's directory: %s", strerror(-rc));
        ledger_close(l);
        return rc;
    }
    struct stat sb;
    if (stat(path, &sb) < 0) {
        rc = -errno;
        snprintf(why, whylen, "%s", strerror(errno));
        ledger_close(l);
        return rc;
    }
    l->dev = sb.st_dev;
    l->ino = sb.st_ino;

    if (sqlite3_prepare_v3(l->db,
                           "INSERT INTO records (" LEDGER_COLUMNS ") VALUES "
                           "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           -1, SQLITE_PREPARE_PERSISTENT, &l->ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(l->db, "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1", -1,
                           SQLITE_PREPARE_PERSISTENT, &l->head, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(l->db,
                           "SELECT last_seq, last_hash FROM segments ORDER BY last_seq DESC "
                           "LIMIT 1",
                           -1, SQLITE_PREPARE_PERSISTENT, &l->seghead, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(l->db, "BEGIN IMMEDIATE", -1, SQLITE_PREPARE_PERSISTENT, &l->begin,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(l->db, "COMMIT", -1, SQLITE_PREPARE_PERSISTENT, &l->commit, NULL) !=
            SQLITE_OK) {
        snprintf(why, whylen, "%s", sqlite3_errmsg(l->db));
        rc = ledger_sqlite_errno(l->db, sqlite3_errcode(l->db));
        ledger_close(l);
        return rc ? rc : -EIO;
    }
    *out = l;
    return 0;
}

/* ---- group commit ---------------------------------------------------------- */

static int read_head_from(sqlite3_stmt *st, uint64_t *seq, uint8_t hash[SHA256_LEN], int *found)
{
    *found = 0;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *hex = (const char *)sqlite3_column_text(st, 1);
        *seq = (uint64_t)sqlite3_column_int64(st, 0);
        if (!hex || hex_decode(hex, hash, SHA256_LEN) < 0) {
            sqlite3_reset(st);
            return -EUCLEAN; /* a head we cannot chain onto: refuse, never fork the chain */
        }
        *found = 1;
        rc = SQLITE_DONE;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

/* The head of the chain, read inside the write transaction. */
static int read_head(ledger *l, uint64_t *seq, uint8_t hash[SHA256_LEN])
{
    int found;
    int rc = read_head_from(l->head, seq, hash, &found);
    if (rc < 0 || found)
        return rc;
    rc = read_head_from(l->seghead, seq, hash, &found); /* everything archived */
    if (rc < 0 || found)
        return rc;
    *seq = 0;
    memset(hash, 0, SHA256_LEN);
    return 0;
}

static void bind_text(sqlite3_stmt *st, int col, const char *s)
{
    if (s)
        sqlite3_bind_text(st, col + 1, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, col + 1);
}

static ledger_text txt(const char *s)
{
    ledger_text t = {s, s ? strlen(s) : 0};
    return t;
}

static int insert_one(ledger *l, ledger_waiter *w, uint64_t seq, uint8_t prev[SHA256_LEN])
{
    const ledger_record *r = w->rec;
    ledger_row row = {
        .seq = seq,
        .time = txt(w->time),
        .event = txt(ledger_event_name(r->event)),
        .pid = r->pid,
        .uid = r->uid,
        .gid = r->gid,
        .process = txt(r->process),
        .exe = txt(r->exe),
        .cgroup = txt(r->cgroup),
        .session = txt(r->session),
        .path = txt(r->path),
        .source_sha256 = txt(r->source_sha256),
        .served_sha256 = txt(r->served_sha256),
        .size_served = (int64_t)r->size_served,
        .mime = txt(r->mime),
        .policy_hash = txt(r->policy_hash),
        .hits = txt(w->hits_json),
        .decision = txt(r->decision),
        .reason = txt(r->reason),
        .extractor = txt(r->extractor),
        .request_id = txt(r->request_id),
    };
    memcpy(row.prev_hash, prev, SHA256_LEN);
    uint8_t hash[SHA256_LEN], mac[SHA256_LEN];
    int rc = ledger_row_hash(&row, hash);
    if (rc == 0)
        rc = hmac_sha256(l->key, l->keylen, hash, SHA256_LEN, mac);
    if (rc < 0)
        return rc;
    char prev_hex[SHA256_HEX_LEN], hash_hex[SHA256_HEX_LEN], mac_hex[SHA256_HEX_LEN];
    hex_encode(prev, SHA256_LEN, prev_hex);
    hex_encode(hash, SHA256_LEN, hash_hex);
    hex_encode(mac, SHA256_LEN, mac_hex);

    sqlite3_stmt *st = l->ins;
    sqlite3_bind_int64(st, LC_SEQ + 1, (sqlite3_int64)seq);
    bind_text(st, LC_TIME, w->time);
    bind_text(st, LC_EVENT, row.event.s);
    sqlite3_bind_int64(st, LC_PID + 1, r->pid);
    sqlite3_bind_int64(st, LC_UID + 1, r->uid);
    sqlite3_bind_int64(st, LC_GID + 1, r->gid);
    bind_text(st, LC_PROCESS, r->process);
    bind_text(st, LC_EXE, r->exe);
    bind_text(st, LC_CGROUP, r->cgroup);
    bind_text(st, LC_SESSION, r->session);
    bind_text(st, LC_PATH, r->path);
    bind_text(st, LC_SOURCE, r->source_sha256);
    bind_text(st, LC_SERVED, r->served_sha256);
    sqlite3_bind_int64(st, LC_SIZE + 1, (sqlite3_int64)r->size_served);
    bind_text(st, LC_MIME, r->mime);
    bind_text(st, LC_POLICY, r->policy_hash);
    bind_text(st, LC_HITS, w->hits_json);
    bind_text(st, LC_DECISION, r->decision);
    bind_text(st, LC_REASON, r->reason);
    bind_text(st, LC_EXTRACTOR, r->extractor);
    bind_text(st, LC_REQUEST, r->request_id);
    bind_text(st, LC_PREV, prev_hex);
    bind_text(st, LC_HASH, hash_hex);
    bind_text(st, LC_HMAC, mac_hex);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return ledger_sqlite_errno(l->db, rc) ? ledger_sqlite_errno(l->db, rc) : -EIO;
    memcpy(prev, hash, SHA256_LEN);
    w->seq = seq;
    return 0;
}

/* Is the file at our path still the database we have open? */
static int check_identity(ledger *l)
{
    struct stat sb;
    if (stat(l->path, &sb) < 0)
        return -errno;
    if (sb.st_dev != l->dev || sb.st_ino != l->ino)
        return -ESTALE;
    return 0;
}

/* Run a prepared statement that returns no rows: SQLITE_OK or the error. */
static int step_once(sqlite3_stmt *st)
{
    const int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int write_batch(ledger *l, ledger_waiter *batch)
{
    snprintf(l->errmsg, sizeof l->errmsg, "-");
    int rc = check_identity(l);
    if (rc < 0) {
        l->step = "ledger file removed or replaced";
        return rc;
    }
    l->step = "begin";
    rc = step_once(l->begin);
    if (rc != SQLITE_OK) {
        snprintf(l->errmsg, sizeof l->errmsg, "%s", sqlite3_errmsg(l->db));
        rc = ledger_sqlite_errno(l->db, rc);
        return rc ? rc : -EIO;
    }
    uint64_t seq;
    uint8_t prev[SHA256_LEN];
    l->step = "read head";
    rc = read_head(l, &seq, prev);
    for (ledger_waiter *w = batch; rc == 0 && w; w = w->next) {
        l->step = "insert";
        rc = insert_one(l, w, ++seq, prev);
    }
    if (rc == 0) {
        l->step = "commit";
        int src = step_once(l->commit);
        rc = ledger_sqlite_errno(l->db, src);
        if (src != SQLITE_OK && rc == 0)
            rc = -EIO;
    }
    if (rc < 0 && sqlite3_errcode(l->db) != SQLITE_OK) /* before ROLLBACK resets it */
        snprintf(l->errmsg, sizeof l->errmsg, "%s", sqlite3_errmsg(l->db));
    if (rc < 0 && !sqlite3_get_autocommit(l->db))
        sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

void ledger_expect(ledger *l, int delta)
{
    /* Lock-free: it is read by a gathering leader, which an append wakes
     * once it is queued (not signalled at -1: the append follows at once). */
    if (l)
        atomic_fetch_add(&l->expected, delta);
}

int ledger_append(ledger *l, const ledger_record *r, uint64_t *seq)
{
    if (!l || !r || !ledger_event_name(r->event))
        return -EINVAL;
    ledger_waiter w = {.rec = r};
    int rc = ledger_hits_json(r->hits, r->nhits, &w.hits_json);
    if (rc < 0)
        return rc;
    sem_init(&w.wake, 0, 0);

    pthread_mutex_lock(&l->lock);
    /* Stamped under the queue lock: within one process, time never goes
     * backwards as seq goes forward (auditors read them side by side). */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ledger_format_time(&ts, w.time);
    if (l->qtail)
        l->qtail->next = &w;
    else
        l->qhead = &w;
    l->qtail = &w;
    l->qlen++;
    if (l->gathering && l->qlen >= l->target && l->expected <= 0)
        pthread_cond_signal(&l->gather);
    if (l->leader_active) {
        /* A leader is committing: it, or a leader after it, posts us when
         * our record is committed or when it is our turn to lead (we are
         * then the head of the queue). Nothing else touches w meanwhile
         * but under the lock, and nobody after the post. */
        pthread_mutex_unlock(&l->lock);
        while (sem_wait(&w.wake) < 0 && errno == EINTR)
            ;
        pthread_mutex_lock(&l->lock);
        if (w.done) {
            pthread_mutex_unlock(&l->lock);
            goto out;
        }
    } else {
        l->leader_active = 1; /* the queue was empty: we are its head */
    }

    /* Lead: take the queue (ours is at its head), commit it, wake its
     * owners, hand the lead to the next in line. */
    if ((l->target > 1 && l->qlen < l->target) || l->expected > 0) {
        const long wait_ns = l->commit_ns < LEDGER_GATHER_MAX_NS ? l->commit_ns
                                                                : LEDGER_GATHER_MAX_NS;
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_nsec += wait_ns;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        l->gathering = 1;
        while ((l->qlen < l->target || l->expected > 0) &&
               pthread_cond_timedwait(&l->gather, &l->lock, &deadline) != ETIMEDOUT)
            ;
        l->gathering = 0;
    }
    ledger_waiter *batch = l->qhead, *last = batch;
    size_t n = 1;
    while (last->next && n < LEDGER_MAX_BATCH) {
        last = last->next;
        n++;
    }
    l->qhead = last->next;
    if (!l->qhead)
        l->qtail = NULL;
    l->qlen -= n;
    l->target = n > l->target * 7 / 8 ? n : l->target * 7 / 8;
    last->next = NULL;
    pthread_mutex_unlock(&l->lock);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int brc = write_batch(l, batch);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const long took = (t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec);
    if (brc < 0) {
        log_error("msg=\"ledger append failed: access must be refused\" ledger=%s step=\"%s\" "
                  "records=%zu err=\"%s\" sqlite=\"%s\"",
                  l->path, l->step, n, strerror(-brc), l->errmsg);
    }

    pthread_mutex_lock(&l->lock);
    l->commit_ns = l->commit_ns ? (l->commit_ns * 7 + took) / 8 : took;
    if (brc == 0) {
        l->stats.commits++;
        l->stats.records += n;
    } else {
        l->stats.failed_commits++;
    }
    for (ledger_waiter *b = batch; b; b = b->next) {
        b->result = brc;
        b->done = 1;
    }
    ledger_waiter *next_leader = l->qhead;
    if (next_leader)
        next_leader->lead = 1; /* leader_active stays set: the lead passes on */
    else
        l->leader_active = 0;
    pthread_mutex_unlock(&l->lock);
    /* Posted outside the lock: a woken appender returns without taking it. */
    for (ledger_waiter *b = batch, *next; b; b = next) {
        next = b->next; /* b may vanish once posted */
        if (b != &w) /* ours heads the batch */
            sem_post(&b->wake);
    }
    if (next_leader)
        sem_post(&next_leader->wake);
out:
    sem_destroy(&w.wake);
    free(w.hits_json);
    if (w.result == 0 && seq)
        *seq = w.seq;
    return w.result;
}
