/* tests/ledger/test_ledger.c — unit tests of the ledger: what is stored for
 * an append, group commit under 16 concurrent appenders, refusal on
 * failure. Each test works in its own scratch directory and reads the result
 * back with plain SQL, as an auditor would.
 *
 * Must never: assert on internals only; every check reads the database. */
#include "common/common.h"
#include "ledger/ledger.h"
#include "ledger/ledger_i.h" /* to forge records as an attacker with write access would */

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct fixture {
    char dir[64];
    char db[128];
    char key[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/sluice-ledger-test.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->db, sizeof f->db, "%s/ledger.db", f->dir);
    snprintf(f->key, sizeof f->key, "%s/ledger.key", f->dir);
    if (key_generate(f->key) < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* One integer from SQL against the database. */
static long long sql_int(const char *db, const char *sql)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    long long v = -1;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

/* One text value (malloc'd, NULL for SQL NULL). */
static char *sql_text(const char *db, const char *sql)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    char *v = NULL;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

static void assert_sql_text(const char *db, const char *sql, const char *expected)
{
    char *v = sql_text(db, sql);
    if (!expected) {
        assert_null(v);
        return;
    }
    assert_non_null(v);
    assert_string_equal(v, expected);
    free(v);
}

static const ledger_hit demo_hits[] = {{"us-ssn", 2}, {"email", 1}};

static ledger_record served(const char *path)
{
    ledger_record r = {
        .event = LEDGER_OPEN_SERVED,
        .pid = 4242,
        .uid = 1000,
        .gid = 1000,
        .process = "cat",
        .exe = "/usr/bin/cat",
        .cgroup = "/system.slice/model.scope",
        .session = "audit-7",
        .path = path,
        .source_sha256 = "aa00000000000000000000000000000000000000000000000000000000000000",
        .served_sha256 = "bb00000000000000000000000000000000000000000000000000000000000000",
        .size_served = 1234,
        .mime = "text/plain",
        .policy_hash = "cc00000000000000000000000000000000000000000000000000000000000000",
        .hits = demo_hits,
        .nhits = 2,
        .decision = "served",
        .reason = NULL,
        .request_id = "req-1",
    };
    return r;
}

static void test_append_stores_every_field(void **state)
{
    fixture *f = *state;
    ledger *l;
    char why[256];
    assert_int_equal(ledger_open(f->db, f->key, &l, why, sizeof why), 0);
    ledger_record r = served("docs/a.txt");
    uint64_t seq = 0;
    assert_int_equal(ledger_append(l, &r, &seq), 0);
    assert_int_equal(seq, 1);
    ledger_record m = {.event = LEDGER_MOUNT, .pid = 1, .decision = "mounted"};
    assert_int_equal(ledger_append(l, &m, &seq), 0);
    assert_int_equal(seq, 2);
    ledger_close(l);

    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM records"), 2);
    assert_sql_text(f->db, "SELECT event FROM records WHERE seq=1", "open-served");
    assert_sql_text(f->db, "SELECT path FROM records WHERE seq=1", "docs/a.txt");
    assert_sql_text(f->db, "SELECT process || ' ' || exe FROM records WHERE seq=1",
                    "cat /usr/bin/cat");
    assert_sql_text(f->db, "SELECT cgroup FROM records WHERE seq=1", "/system.slice/model.scope");
    assert_sql_text(f->db, "SELECT session FROM records WHERE seq=1", "audit-7");
    assert_int_equal(sql_int(f->db, "SELECT size_served FROM records WHERE seq=1"), 1234);
    assert_int_equal(sql_int(f->db, "SELECT uid FROM records WHERE seq=1"), 1000);
    assert_sql_text(f->db, "SELECT hits FROM records WHERE seq=1",
                    "[{\"rule\":\"us-ssn\",\"count\":2},{\"rule\":\"email\",\"count\":1}]");
    assert_sql_text(f->db, "SELECT reason FROM records WHERE seq=1", NULL);
    assert_sql_text(f->db, "SELECT hits FROM records WHERE seq=2", "[]");
    /* UTC with nanoseconds. */
    assert_int_equal(sql_int(f->db, "SELECT time GLOB "
                                    "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]"
                                    ":[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]Z' "
                                    "FROM records WHERE seq=1"),
                     1);
    /* The chain: seq 1 starts from zeros, seq 2 links to seq 1. */
    assert_sql_text(f->db, "SELECT prev_hash FROM records WHERE seq=1",
                    "0000000000000000000000000000000000000000000000000000000000000000");
    assert_int_equal(sql_int(f->db, "SELECT (SELECT prev_hash FROM records WHERE seq=2) = "
                                    "(SELECT hash FROM records WHERE seq=1)"),
                     1);
    assert_int_equal(sql_int(f->db, "SELECT length(hmac) FROM records WHERE seq=2"), 64);
    /* WAL mode, versioned schema. */
    assert_sql_text(f->db, "PRAGMA journal_mode", "wal");
    assert_int_equal(sql_int(f->db, "PRAGMA user_version"), 1);
    /* The audit views answer from plain SQL. */
    assert_sql_text(f->db, "SELECT process FROM rule_hits WHERE rule='us-ssn'", "cat");
    assert_int_equal(sql_int(f->db, "SELECT bytes FROM bytes_per_process_day WHERE process='cat'"),
                     1234);
}

static void test_reopen_continues_chain(void **state)
{
    fixture *f = *state;
    ledger *l;
    char why[256];
    ledger_record r = served("x");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ledger_open(f->db, f->key, &l, why, sizeof why), 0);
        uint64_t seq;
        assert_int_equal(ledger_append(l, &r, &seq), 0);
        assert_int_equal(seq, (uint64_t)i + 1);
        ledger_close(l);
    }
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM records a JOIN records b "
                                    "ON b.seq = a.seq + 1 AND b.prev_hash = a.hash"),
                     2);
}

static void test_wrong_key_refused_at_open(void **state)
{
    fixture *f = *state;
    ledger *l;
    char why[256];
    assert_int_equal(ledger_open(f->db, f->key, &l, why, sizeof why), 0);
    ledger_close(l);
    char other[160];
    snprintf(other, sizeof other, "%s/other.key", f->dir);
    assert_int_equal(key_generate(other), 0);
    assert_int_equal(ledger_open(f->db, other, &l, why, sizeof why), -EKEYREJECTED);
    assert_non_null(strstr(why, "different key"));
}

static void test_bad_event_rejected(void **state)
{
    fixture *f = *state;
    ledger *l;
    char why[256];
    assert_int_equal(ledger_open(f->db, f->key, &l, why, sizeof why), 0);
    ledger_record r = {.event = 99};
    assert_int_equal(ledger_append(l, &r, NULL), -EINVAL);
    ledger_close(l);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM records"), 0);
}

static void test_removed_database_refuses(void **state)
{
    fixture *f = *state;
    ledger *l;
    char why[256];
    assert_int_equal(ledger_open(f->db, f->key, &l, why, sizeof why), 0);
    ledger_record r = served("x");
    assert_int_equal(ledger_append(l, &r, NULL), 0);
    assert_int_equal(unlink(f->db), 0);
    assert_true(ledger_append(l, &r, NULL) < 0);
    ledger_close(l);
}

/* Daemons chdir("/") after opening: a ledger opened by a relative path
 * keeps working (and is not mistaken for a removed file); it is created
 * 0640, not world-readable. */
static void test_relative_path_and_mode(void **state)
{
    fixture *f = *state;
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(f->dir), 0);
    ledger *l;
    char why[256];
    assert_int_equal(ledger_open("rel.db", f->key, &l, why, sizeof why), 0);
    assert_int_equal(chdir("/"), 0);
    ledger_record r = served("x");
    uint64_t seq;
    assert_int_equal(ledger_append(l, &r, &seq), 0);
    assert_int_equal(seq, 1);
    ledger_close(l);
    assert_int_equal(chdir(cwd), 0);
    char db[160];
    snprintf(db, sizeof db, "%s/rel.db", f->dir);
    struct stat sb;
    assert_int_equal(stat(db, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0640);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM records"), 1);
}

#define THREADS 16
#define PER_THREAD 500

typedef struct worker {
    ledger *l;
    int id;
    uint64_t seqs[PER_THREAD];
    int failures;
} worker;

static void *append_worker(void *arg)
{
    worker *w = arg;
    char path[32];
    snprintf(path, sizeof path, "t%02d", w->id);
    ledger_record r = served(path);
    for (int i = 0; i < PER_THREAD; i++)
        if (ledger_append(w->l, &r, &w->seqs[i]) != 0)
            w->failures++;
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_concurrent_appenders(void **state)
{
    fixture *f = *state;
    ledger *l;
    char why[256];
    assert_int_equal(ledger_open(f->db, f->key, &l, why, sizeof why), 0);
    static worker w[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){.l = l, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, append_worker, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    ledger_close(l);
    static uint64_t all[THREADS * PER_THREAD];
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(w[i].failures, 0);
        memcpy(all + i * PER_THREAD, w[i].seqs, sizeof w[i].seqs);
    }
    qsort(all, THREADS * PER_THREAD, sizeof all[0], cmp_u64);
    for (int i = 0; i < THREADS * PER_THREAD; i++)
        assert_int_equal(all[i], (uint64_t)i + 1); /* distinct and contiguous */
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM records"), THREADS * PER_THREAD);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM records a JOIN records b "
                                    "ON b.seq = a.seq + 1 AND b.prev_hash = a.hash"),
                     THREADS * PER_THREAD - 1);
    /* Each thread's records are its own: the seq it was told holds its path. */
    for (int i = 0; i < THREADS; i++) {
        char sql[96], expect[16];
        snprintf(sql, sizeof sql, "SELECT path FROM records WHERE seq=%llu",
                 (unsigned long long)w[i].seqs[PER_THREAD - 1]);
        snprintf(expect, sizeof expect, "t%02d", i);
        assert_sql_text(f->db, sql, expect);
    }
}


/* ---- verification and tampering --------------------------------------------- */

static void sql_exec(const char *db, const char *sql)
{
    sqlite3 *h;
    char *err = NULL;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    int rc = sqlite3_exec(h, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
    sqlite3_close(h);
}

/* A ledger of n served records, paths f1..fn. */
static void make_ledger(const fixture *f, int n)
{
    ledger *l;
    char why[256];
    assert_int_equal(ledger_open(f->db, f->key, &l, why, sizeof why), 0);
    for (int i = 1; i <= n; i++) {
        char path[32];
        snprintf(path, sizeof path, "f%d", i);
        ledger_record r = served(path);
        uint64_t seq;
        assert_int_equal(ledger_append(l, &r, &seq), 0);
        assert_int_equal(seq, (uint64_t)i);
    }
    ledger_close(l);
}

/* Verify and expect failure at bad_seq with `what` mentioning `needle`. */
static void expect_bad(const fixture *f, const ledger_checkpoint *cps, size_t n, uint64_t bad_seq,
                       const char *needle)
{
    ledger_verify_report rep;
    int rc = ledger_verify(f->db, f->key, cps, n, &rep);
    if (rc != -EBADMSG || rep.bad_seq != bad_seq || !strstr(rep.what, needle))
        fail_msg("verify: rc=%d bad_seq=%llu what=\"%s\" (expected -EBADMSG at %llu, \"%s\")", rc,
                 (unsigned long long)rep.bad_seq, rep.what, (unsigned long long)bad_seq, needle);
}

static void expect_clean(const fixture *f, const ledger_checkpoint *cps, size_t n, uint64_t records)
{
    ledger_verify_report rep;
    int rc = ledger_verify(f->db, f->key, cps, n, &rep);
    if (rc != 0)
        fail_msg("verify: rc=%d bad_seq=%llu what=\"%s\"", rc, (unsigned long long)rep.bad_seq,
                 rep.what);
    assert_int_equal(rep.records, records);
    assert_int_equal(rep.last_seq, records);
}

/* Processes that open one new ledger at the same moment (sluice-diode's
 * sender and receiver start together on one) all get it, and their
 * appends chain. Before the fix about 7 rounds in 100 had an opener told
 * "database is locked" (SQLite does not wait when two connections upgrade
 * their locks at once) or "not a sluice ledger" (it saw the other's schema
 * half built). */
#define CREATE_ROUNDS 60
#define CREATE_PROCS 4
static void test_concurrent_creation(void **state)
{
    fixture *f = *state;
    int failed = 0;
    for (int round = 0; round < CREATE_ROUNDS; round++) {
        char db[160];
        snprintf(db, sizeof db, "%s/new%02d.db", f->dir, round);
        pid_t kids[CREATE_PROCS];
        for (int k = 0; k < CREATE_PROCS; k++) {
            kids[k] = fork();
            assert_true(kids[k] >= 0);
            if (kids[k] == 0) {
                ledger *l;
                char why[256] = "";
                int rc = ledger_open(db, f->key, &l, why, sizeof why);
                if (rc < 0) {
                    fprintf(stderr, "round %d, opener %d: %s (%s)\n", round, k, why, strerror(-rc));
                    _exit(1);
                }
                ledger_record r = served("p");
                rc = ledger_append(l, &r, NULL);
                ledger_close(l);
                _exit(rc < 0 ? 2 : 0);
            }
        }
        for (int k = 0; k < CREATE_PROCS; k++) {
            int st;
            assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
            failed += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
        }
        assert_int_equal(sql_int(db, "SELECT count(*) FROM records"), CREATE_PROCS);
        ledger_verify_report rep;
        assert_int_equal(ledger_verify(db, f->key, NULL, 0, &rep), 0);
    }
    assert_int_equal(failed, 0);
}

static void test_untouched_ledger_verifies(void **state)
{
    fixture *f = *state;
    make_ledger(f, 10);
    expect_clean(f, NULL, 0, 10);
}

static void test_tamper_edit_field(void **state)
{
    fixture *f = *state;
    make_ledger(f, 10);
    sql_exec(f->db, "DROP TRIGGER records_no_update;"
                    "UPDATE records SET size_served = 1 WHERE seq = 5");
    expect_bad(f, NULL, 0, 5, "edited");
}

static void test_tamper_edit_hits(void **state)
{
    fixture *f = *state;
    make_ledger(f, 10);
    sql_exec(f->db, "DROP TRIGGER records_no_update;"
                    "UPDATE records SET hits = '[]' WHERE seq = 7");
    expect_bad(f, NULL, 0, 7, "edited");
}

static void test_tamper_delete_middle(void **state)
{
    fixture *f = *state;
    make_ledger(f, 10);
    sql_exec(f->db, "DROP TRIGGER records_no_delete; DELETE FROM records WHERE seq = 5");
    expect_bad(f, NULL, 0, 5, "missing");
}

static void test_tamper_delete_middle_renumbered(void **state)
{
    fixture *f = *state;
    make_ledger(f, 10);
    /* Close the gap, as a careful attacker would: seq is hashed, so it shows. */
    sql_exec(f->db, "DROP TRIGGER records_no_delete; DROP TRIGGER records_no_update;"
                    "DELETE FROM records WHERE seq = 5;"
                    "UPDATE records SET seq = seq + 1000 WHERE seq > 5;"
                    "UPDATE records SET seq = seq - 1001 WHERE seq > 1000;");
    expect_bad(f, NULL, 0, 5, "");
}

static void test_tamper_delete_tail(void **state)
{
    fixture *f = *state;
    make_ledger(f, 10);
    ledger_checkpoint cp;
    char why[256];
    assert_int_equal(ledger_checkpoint_take(f->db, f->key, &cp, why, sizeof why), 0);
    assert_int_equal(cp.seq, 10);
    sql_exec(f->db, "DROP TRIGGER records_no_delete; DELETE FROM records WHERE seq >= 9");
    /* Without a checkpoint a cut tail is a shorter, valid chain; with one it is caught. */
    expect_clean(f, NULL, 0, 8);
    expect_bad(f, &cp, 1, 9, "truncated tail");
}

static void test_tamper_insert_middle(void **state)
{
    fixture *f = *state;
    make_ledger(f, 10);
    sql_exec(f->db, "DROP TRIGGER records_no_update;"
                    "UPDATE records SET seq = seq + 1000 WHERE seq > 5;"
                    "UPDATE records SET seq = seq - 999 WHERE seq > 1000;"
                    "INSERT INTO records SELECT 6, time, event, pid, uid, gid, process, exe, cgroup,"
                    " session, 'forged', source_sha256, served_sha256, size_served, mime, "
                    " policy_hash, hits, decision, reason, extractor, request_id, prev_hash, hash,"
                    " hmac FROM records WHERE seq = 5;");
    expect_bad(f, NULL, 0, 6, "");
}

/* An attacker who recomputes the hash chain perfectly still cannot make the
 * HMAC without the key. */
static void test_tamper_insert_forged_hash(void **state)
{
    fixture *f = *state;
    make_ledger(f, 10);
    char *prev_hex = sql_text(f->db, "SELECT hash FROM records WHERE seq = 10");
    ledger_row row = {.seq = 11,
                      .time = {"2026-01-01T00:00:00.000000000Z", 30},
                      .event = {"open-served", 11},
                      .pid = 1, .uid = 0, .gid = 0,
                      .path = {"forged", 6},
                      .hits = {"[]", 2}};
    assert_int_equal(hex_decode(prev_hex, row.prev_hash, SHA256_LEN), 0);
    uint8_t h[SHA256_LEN];
    assert_int_equal(ledger_row_hash(&row, h), 0);
    char hex[SHA256_HEX_LEN], sql[1024];
    hex_encode(h, SHA256_LEN, hex);
    snprintf(sql, sizeof sql,
             "INSERT INTO records (seq, time, event, pid, uid, gid, path, size_served, hits, "
             "prev_hash, hash, hmac) VALUES (11, '%s', 'open-served', 1, 0, 0, 'forged', 0, '[]', "
             "'%s', '%s', '%s')",
             row.time.s, prev_hex, hex, hex);
    sql_exec(f->db, sql);
    free(prev_hex);
    expect_bad(f, NULL, 0, 11, "HMAC");
}

static void test_tamper_reorder(void **state)
{
    fixture *f = *state;
    make_ledger(f, 10);
    sql_exec(f->db, "DROP TRIGGER records_no_update;"
                    "UPDATE records SET seq = 1003 WHERE seq = 3;"
                    "UPDATE records SET seq = 3 WHERE seq = 4;"
                    "UPDATE records SET seq = 4 WHERE seq = 1003;");
    expect_bad(f, NULL, 0, 3, "");
}

static void test_tamper_change_key(void **state)
{
    fixture *f = *state;
    make_ledger(f, 10);
    char other[160];
    snprintf(other, sizeof other, "%s/other.key", f->dir);
    assert_int_equal(key_generate(other), 0);
    ledger_verify_report rep;
    assert_int_equal(ledger_verify(f->db, other, NULL, 0, &rep), -EBADMSG);
    assert_int_equal(rep.bad_seq, 1);
    assert_non_null(strstr(rep.what, "HMAC"));
}

/* Re-sealing the whole ledger under a new key (and rewriting the key check)
 * gives a self-consistent chain, which the real key still rejects. */
static void test_tamper_reseal_with_other_key(void **state)
{
    fixture *f = *state;
    make_ledger(f, 3);
    char other[160], odb[160], why[256];
    snprintf(other, sizeof other, "%s/other.key", f->dir);
    snprintf(odb, sizeof odb, "%s/other.db", f->dir);
    assert_int_equal(key_generate(other), 0);
    ledger *l;
    assert_int_equal(ledger_open(odb, other, &l, why, sizeof why), 0);
    ledger_record r = served("f1");
    for (int i = 0; i < 3; i++)
        assert_int_equal(ledger_append(l, &r, NULL), 0);
    ledger_close(l);
    char sql[512];
    snprintf(sql, sizeof sql,
             "ATTACH '%s' AS o; DROP TRIGGER records_no_delete; DELETE FROM records;"
             "INSERT INTO records SELECT * FROM o.records;"
             "UPDATE meta SET value = (SELECT value FROM o.meta WHERE key = 'key_check')"
             " WHERE key = 'key_check';",
             odb);
    sql_exec(f->db, sql);
    ledger_verify_report rep;
    assert_int_equal(ledger_verify(f->db, other, NULL, 0, &rep), 0); /* consistent under its key */
    expect_bad(f, NULL, 0, 1, "HMAC");
}

static void test_checkpoint_roundtrip(void **state)
{
    fixture *f = *state;
    make_ledger(f, 5);
    ledger_checkpoint cp, parsed;
    char why[256], line[LEDGER_CHECKPOINT_MAX];
    assert_int_equal(ledger_checkpoint_take(f->db, f->key, &cp, why, sizeof why), 0);
    ledger_checkpoint_format(&cp, line, sizeof line);
    uint8_t key[KEY_MAX_LEN];
    size_t keylen;
    assert_int_equal(key_load(f->key, key, &keylen, why, sizeof why), 0);
    assert_int_equal(ledger_checkpoint_parse(line, key, keylen, &parsed), 0);
    assert_int_equal(parsed.seq, 5);
    assert_memory_equal(parsed.hash, cp.hash, SHA256_LEN);
    /* A forged checkpoint (seq changed) fails its HMAC. */
    char *p = strstr(line, "seq=5");
    assert_non_null(p);
    p[4] = '4';
    assert_int_equal(ledger_checkpoint_parse(line, key, keylen, &parsed), -EBADMSG);
    assert_int_equal(ledger_checkpoint_parse("garbage", key, keylen, &parsed), -EINVAL);
    /* A ledger that grew since the checkpoint still verifies against it. */
    ledger *l;
    assert_int_equal(ledger_open(f->db, f->key, &l, why, sizeof why), 0);
    ledger_record r = served("later");
    assert_int_equal(ledger_append(l, &r, NULL), 0);
    ledger_close(l);
    expect_clean(f, &cp, 1, 6);
    /* History rewritten before the checkpoint, chain recomputed with the key:
     * impossible without the key, but a changed hash at seq 5 is caught. */
    cp.hash[0] ^= 1;
    expect_bad(f, &cp, 1, 5, "checkpoint");
}

/* ---- archive ------------------------------------------------------------------------ */

static void test_archive_keeps_chain(void **state)
{
    fixture *f = *state;
    make_ledger(f, 100);
    ledger_checkpoint cp;
    char why[256];
    assert_int_equal(ledger_checkpoint_take(f->db, f->key, &cp, why, sizeof why), 0);
    uint64_t moved = 0;
    assert_int_equal(ledger_archive(f->db, f->key, 61, &moved, why, sizeof why), 0);
    assert_int_equal(moved, 60);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM records"), 40);
    assert_int_equal(sql_int(f->db, "SELECT min(seq) FROM records"), 61);
    char seg[256];
    snprintf(seg, sizeof seg, "%s/ledger.db.seg-000000000001-000000000060.zst", f->dir);
    struct stat sb;
    assert_int_equal(stat(seg, &sb), 0);
    expect_clean(f, &cp, 1, 100);
    ledger_verify_report rep;
    assert_int_equal(ledger_verify(f->db, f->key, NULL, 0, &rep), 0);
    assert_int_equal(rep.segments, 1);
    /* The chain continues after archiving; archiving again leaves the head. */
    ledger *l;
    assert_int_equal(ledger_open(f->db, f->key, &l, why, sizeof why), 0);
    ledger_record r = served("after");
    uint64_t seq;
    assert_int_equal(ledger_append(l, &r, &seq), 0);
    assert_int_equal(seq, 101);
    ledger_close(l);
    assert_int_equal(ledger_archive(f->db, f->key, 1000, &moved, why, sizeof why), 0);
    assert_int_equal(moved, 40);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM records"), 1);
    assert_int_equal(ledger_archive(f->db, f->key, 1000, &moved, why, sizeof why), 0);
    assert_int_equal(moved, 0);
    expect_clean(f, &cp, 1, 101);
    assert_int_equal(ledger_verify(f->db, f->key, NULL, 0, &rep), 0);
    assert_int_equal(rep.segments, 2);
    /* Archived records are in the segment as stored: decompress and read. */
    char cmd[600];
    snprintf(cmd, sizeof cmd,
             "zstd -q -d -c '%s' > '%s/seg.db' && test \"$(sqlite3 '%s/seg.db' "
             "'SELECT path FROM records WHERE seq = 42')\" = f42",
             seg, f->dir, f->dir);
    assert_int_equal(system(cmd), 0);
}

static void test_archive_tampered_segment(void **state)
{
    fixture *f = *state;
    make_ledger(f, 30);
    uint64_t moved = 0;
    char why[256];
    assert_int_equal(ledger_archive(f->db, f->key, 21, &moved, why, sizeof why), 0);
    char seg[256];
    snprintf(seg, sizeof seg, "%s/ledger.db.seg-000000000001-000000000020.zst", f->dir);
    /* Replace the segment with one whose record 7 was edited (and fix up the
     * segments table's checksum): the chain still catches it. */
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "set -e; cd '%s'; zstd -q -d -c '%s' > s.db;"
             "sqlite3 s.db \"UPDATE records SET path = 'x' WHERE seq = 7\";"
             "zstd -q -f s.db -o '%s';"
             "sqlite3 ledger.db \"UPDATE segments SET sha256 = '$(sha256sum '%s' | cut -c1-64)'\"",
             f->dir, seg, seg, seg);
    assert_int_equal(system(cmd), 0);
    expect_bad(f, NULL, 0, 7, "segment");
    /* Removing the segment altogether leaves a hole at the start. */
    sql_exec(f->db, "DELETE FROM segments");
    expect_bad(f, NULL, 0, 1, "missing");
}

/* Another process holds the write lock longer than the busy timeout: the
 * append fails (the access is refused), nothing half-written remains, and
 * appends work again once the lock is gone. */
static void test_locked_database_refuses(void **state)
{
    fixture *f = *state;
    make_ledger(f, 2);
    ledger *l;
    char why[256];
    assert_int_equal(ledger_open(f->db, f->key, &l, why, sizeof why), 0);
    sqlite3 *other;
    assert_int_equal(sqlite3_open(f->db, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    ledger_record r = served("while-locked");
    assert_int_equal(ledger_append(l, &r, NULL), -EBUSY);
    assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    uint64_t seq;
    r.path = "after-lock";
    assert_int_equal(ledger_append(l, &r, &seq), 0);
    assert_int_equal(seq, 3);
    ledger_close(l);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM records WHERE path = 'while-locked'"), 0);
    expect_clean(f, NULL, 0, 3);
}

/* A database overwritten with garbage is refused at open, and an open
 * handle whose file is replaced by another refuses to append. */
static void test_corrupted_database_refuses(void **state)
{
    fixture *f = *state;
    make_ledger(f, 5);
    ledger *l;
    char why[256];
    FILE *fp = fopen(f->db, "r+");
    assert_non_null(fp);
    static char junk[8192];
    memset(junk, 0x5a, sizeof junk);
    assert_int_equal(fwrite(junk, 1, sizeof junk, fp), sizeof junk);
    fclose(fp);
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", f->db);
    unlink(wal);
    assert_true(ledger_open(f->db, f->key, &l, why, sizeof why) < 0);
    ledger_verify_report rep;
    assert_true(ledger_verify(f->db, f->key, NULL, 0, &rep) < 0);

    /* Replaced under an open handle. */
    char db2[160];
    snprintf(db2, sizeof db2, "%s/second.db", f->dir);
    assert_int_equal(ledger_open(db2, f->key, &l, why, sizeof why), 0);
    ledger_record r = served("x");
    assert_int_equal(ledger_append(l, &r, NULL), 0);
    char moved[170];
    snprintf(moved, sizeof moved, "%s.old", db2);
    assert_int_equal(rename(db2, moved), 0);
    fp = fopen(db2, "w");
    fclose(fp);
    assert_int_equal(ledger_append(l, &r, NULL), -ESTALE);
    ledger_close(l);
}

static void *archive_appender(void *arg)
{
    worker *w = arg;
    ledger_record r = served("during-archive");
    for (int i = 0; i < 300; i++)
        if (ledger_append(w->l, &r, &w->seqs[i]) != 0)
            w->failures++;
    return NULL;
}

/* Archiving while sluicefs appends: nothing lost, nothing twice, the chain
 * verifies across segments; a second archiver waits its turn. */
static void test_archive_during_appends(void **state)
{
    fixture *f = *state;
    make_ledger(f, 200);
    ledger *l;
    char why[256];
    assert_int_equal(ledger_open(f->db, f->key, &l, why, sizeof why), 0);
    static worker w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){.l = l, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, archive_appender, &w[i]), 0);
    }
    uint64_t moved = 0, total = 0;
    for (uint64_t before = 100; before <= 400; before += 100) {
        assert_int_equal(ledger_archive(f->db, f->key, before, &moved, why, sizeof why), 0);
        total += moved;
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    ledger_close(l);
    /* How far each archive got depends on how far the appenders were (the
     * head always stays); together they cover 1..the last archived seq. */
    assert_true(total >= 99);
    assert_int_equal(sql_int(f->db, "SELECT max(last_seq) FROM segments"), (long long)total);
    assert_int_equal(sql_int(f->db, "SELECT min(seq) FROM records"), (long long)total + 1);
    ledger_verify_report rep;
    int rc = ledger_verify(f->db, f->key, NULL, 0, &rep);
    if (rc != 0)
        fail_msg("verify: %s", rep.what);
    assert_int_equal(rep.records, 1400);
    assert_true(rep.segments >= 1 && rep.segments <= 4);

    /* Another archiver holding the lock: this one is refused, not interleaved. */
    char lock[160];
    snprintf(lock, sizeof lock, "%s.archive-lock", f->db);
    int fd = open(lock, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    assert_int_equal(ledger_archive(f->db, f->key, 1000, &moved, why, sizeof why), -EBUSY);
    close(fd);
    assert_int_equal(ledger_archive(f->db, f->key, 1000, &moved, why, sizeof why), 0);
    assert_int_equal(moved, 999 - total); /* total+1 .. 999 */
}

/* Schema versions: a newer ledger is refused (not misread), and so is a
 * SQLite database of something else (never grafted onto). */
static void test_schema_versions(void **state)
{
    fixture *f = *state;
    make_ledger(f, 1);
    ledger *l;
    char why[256];
    sql_exec(f->db, "PRAGMA user_version = 99");
    assert_int_equal(ledger_open(f->db, f->key, &l, why, sizeof why), -EPROTO);
    assert_non_null(strstr(why, "newer"));
    char other[160];
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    sqlite3 *h;
    assert_int_equal(sqlite3_open(other, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "CREATE TABLE invoices (id INTEGER)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    assert_int_equal(ledger_open(other, f->key, &l, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "not a sluice ledger"));
    assert_int_equal(sql_int(other, "SELECT count(*) FROM sqlite_master"), 1);
    /* refused before anything in it changed, its journal mode included */
    assert_sql_text(other, "PRAGMA journal_mode", "delete");
    char wal[180];
    snprintf(wal, sizeof wal, "%s-wal", other);
    assert_int_equal(access(wal, F_OK), -1);
}

/* ---- crash: SIGKILL while 16 threads append ----------------------------------------- */

typedef struct crash_worker {
    ledger *l;
    int id, fd;
} crash_worker;

static void *crash_append(void *arg)
{
    crash_worker *w = arg;
    for (unsigned i = 0;; i++) {
        char path[48], line[64];
        snprintf(path, sizeof path, "c%02d-%u", w->id, i);
        ledger_record r = served(path);
        uint64_t seq;
        if (ledger_append(w->l, &r, &seq) != 0)
            _exit(3);
        /* Reported only after the append returned: this line is the claim. */
        int n = snprintf(line, sizeof line, "%llu %s\n", (unsigned long long)seq, path);
        if (write(w->fd, line, (size_t)n) != n) /* pipe writes <= PIPE_BUF are atomic */
            _exit(4);
    }
    return NULL;
}

static void test_crash_loses_nothing_claimed(void **state)
{
    fixture *f = *state;
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        ledger *l;
        char why[256];
        if (ledger_open(f->db, f->key, &l, why, sizeof why) != 0)
            _exit(2);
        static crash_worker w[THREADS];
        pthread_t th[THREADS];
        for (int i = 0; i < THREADS; i++) {
            w[i] = (crash_worker){.l = l, .id = i, .fd = pfd[1]};
            pthread_create(&th[i], NULL, crash_append, &w[i]);
        }
        for (;;)
            pause();
    }
    close(pfd[1]);
    /* Let it run until a good number of appends were claimed, then kill it. */
    FILE *in = fdopen(pfd[0], "r");
    char line[128];
    size_t claimed = 0, cap = 4096;
    char **lines = malloc(cap * sizeof *lines);
    while (claimed < 3000 && fgets(line, sizeof line, in)) {
        if (claimed == cap)
            lines = realloc(lines, (cap *= 2) * sizeof *lines);
        lines[claimed++] = strdup(line);
    }
    kill(pid, SIGKILL);
    while (fgets(line, sizeof line, in)) { /* what was claimed before the kill */
        if (claimed == cap)
            lines = realloc(lines, (cap *= 2) * sizeof *lines);
        lines[claimed++] = strdup(line);
    }
    fclose(in);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_true(claimed >= 3000);
    /* Every claimed append is there, with its own content, and the chain verifies. */
    sqlite3 *h;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open_v2(f->db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT path FROM records WHERE seq = ?", -1, &st, NULL),
                     SQLITE_OK);
    for (size_t i = 0; i < claimed; i++) {
        unsigned long long seq;
        char path[48];
        assert_int_equal(sscanf(lines[i], "%llu %47s", &seq, path), 2);
        sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
        if (sqlite3_step(st) != SQLITE_ROW)
            fail_msg("claimed record %llu (%s) is missing after the crash", seq, path);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), path);
        sqlite3_reset(st);
        free(lines[i]);
    }
    free(lines);
    sqlite3_finalize(st);
    sqlite3_close(h);
    ledger_verify_report rep;
    int rc = ledger_verify(f->db, f->key, NULL, 0, &rep);
    if (rc != 0)
        fail_msg("verify after crash: %s", rep.what);
    assert_true(rep.records >= claimed);
    /* And it opens again and continues the chain. */
    ledger *l;
    char why[256];
    assert_int_equal(ledger_open(f->db, f->key, &l, why, sizeof why), 0);
    ledger_record r = served("after-crash");
    uint64_t seq;
    assert_int_equal(ledger_append(l, &r, &seq), 0);
    assert_int_equal(seq, rep.last_seq + 1);
    ledger_close(l);
}

/* ---- full disk ------------------------------------------------------------------------- */

static void test_full_disk_refuses(void **state)
{
    fixture *f = *state;
    char mnt[128];
    snprintf(mnt, sizeof mnt, "%s/tiny", f->dir);
    assert_int_equal(mkdir(mnt, 0700), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m,mode=0700") != 0) {
        print_message("cannot mount a tmpfs (%s): needs root\n", strerror(errno));
        skip();
    }
    char db[160];
    snprintf(db, sizeof db, "%s/ledger.db", mnt);
    ledger *l;
    char why[256];
    int rc = ledger_open(db, f->key, &l, why, sizeof why);
    if (rc != 0) {
        umount2(mnt, MNT_DETACH);
        fail_msg("open: %s", why);
    }
    /* Fill it up with records; a record big enough that 1 MiB goes fast. */
    static char reason[2000];
    memset(reason, 'r', sizeof reason - 1);
    uint64_t last_ok = 0, seq;
    int failed = 0, first_err = 0;
    for (int i = 0; i < 100000; i++) {
        ledger_record r = served("fill");
        r.reason = reason;
        rc = ledger_append(l, &r, &seq);
        if (rc == 0) {
            assert_int_equal(seq, last_ok + 1);
            last_ok = seq;
        } else {
            if (!first_err)
                first_err = rc;
            if (++failed == 3)
                break;
        }
    }
    ledger_close(l);
    if (failed == 0) {
        umount2(mnt, MNT_DETACH);
        fail_msg("100000 appends of 2 KB fitted in a 1 MiB tmpfs?");
    }
    print_message("full disk after %llu records: %s\n", (unsigned long long)last_ok,
                  strerror(-first_err));
    /* Every record reported durable is there and the chain verifies. */
    long long n = sql_int(db, "SELECT count(*) FROM records");
    long long maxseq = sql_int(db, "SELECT max(seq) FROM records");
    ledger_verify_report rep;
    rc = ledger_verify(db, f->key, NULL, 0, &rep);
    umount2(mnt, MNT_DETACH);
    assert_true(last_ok > 0);
    assert_int_equal(n, (long long)last_ok);
    assert_int_equal(maxseq, (long long)last_ok);
    if (rc != 0)
        fail_msg("verify after full disk: %s", rep.what);
    assert_true(first_err < 0);
}

int main(void)
{
    log_init("test_ledger", LOG_LVL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_stores_every_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_continues_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key_refused_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_event_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removed_database_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relative_path_and_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_appenders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_creation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untouched_ledger_verifies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_edit_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_edit_hits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_delete_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_delete_middle_renumbered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_delete_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_insert_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_insert_forged_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_reorder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_change_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_reseal_with_other_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_archive_keeps_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_archive_tampered_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_archive_during_appends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked_database_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupted_database_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_loses_nothing_claimed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_refuses, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
