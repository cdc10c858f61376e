/* tests/ledger/test_ledger.c — unit tests of the ledger: what is stored for
 * an append, group commit under 16 concurrent appenders, refusal on
 * failure. Each test works in its own scratch directory and reads the result
 * back with plain SQL, as an auditor would.
 *
 * Must never: assert on internals only; every check reads the database. */
#include "common/common.h"
#include "ledger/ledger.h"

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
#include <sys/stat.h>
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
        char sql[96], expect[8];
        snprintf(sql, sizeof sql, "SELECT path FROM records WHERE seq=%llu",
                 (unsigned long long)w[i].seqs[PER_THREAD - 1]);
        snprintf(expect, sizeof expect, "t%02d", i);
        assert_sql_text(f->db, sql, expect);
    }
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
        cmocka_unit_test_setup_teardown(test_concurrent_appenders, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
