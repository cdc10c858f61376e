/* tests/ledger/ledger_tool.c — a helper for the ledger's integration tests,
 * examples and benchmark: it appends synthetic but realistic records through
 * the real ledger_append() (nothing here writes SQL).
 *
 *   ledger_tool fill DB KEY N          append N varied records (deterministic)
 *   ledger_tool bench DB KEY THREADS N [THINK_US]
 *                                      append N records from THREADS threads
 *                                      (each working THINK_US between appends)
 *                                      and print durable records per second
 *   ledger_tool sync DIR N             N times a 4 KiB write + fdatasync in DIR,
 *                                      appended to a new file and written over
 *                                      an allocated one; prints both rates
 *                                      (what one durable commit costs at best:
 *                                      SQLite's WAL is written over in place
 *                                      once it has wrapped, grown at first)
 *
 * Must never: be installed or used outside tests and examples. */
#include "common/common.h"
#include "ledger/ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const ledger_hit hits_ssn[] = {{"us-ssn", 3}, {"email", 1}};
static const ledger_hit hits_key[] = {{"aws-access-key", 1}};

static ledger_record sample(unsigned i, char *path, size_t pathlen, char *src, char *srv)
{
    static const char *const files[] = {"docs/handbook.md", "hr/salaries.csv", "code/main.c",
                                        "finance/q3.xlsx", "notes/meeting.txt"};
    static const char *const procs[][2] = {{"cat", "/usr/bin/cat"},
                                           {"python3", "/usr/bin/python3.11"},
                                           {"grep", "/usr/bin/grep"}};
    const unsigned f = i % SLUICE_ARRAY_LEN(files), p = i % SLUICE_ARRAY_LEN(procs);
    snprintf(path, pathlen, "%s", files[f]);
    uint8_t h[SHA256_LEN];
    sha256_buf(files[f], strlen(files[f]), h); /* one stable checksum per file */
    hex_encode(h, SHA256_LEN, src);
    h[0] ^= 0x5a;
    hex_encode(h, SHA256_LEN, srv);
    ledger_record r = {
        .event = LEDGER_OPEN_SERVED,
        .pid = (pid_t)(1000 + i % 7),
        .uid = 1000 + (i % 2),
        .gid = 1000,
        .process = procs[p][0],
        .exe = procs[p][1],
        .cgroup = "/sluice.slice/model-7.scope",
        .session = "audit-2026-11",
        .path = path,
        .source_sha256 = src,
        .served_sha256 = srv,
        .size_served = 4096 + 512 * f,
        .mime = "text/plain",
        .policy_hash = "9f2c1d0e7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d",
        .decision = "served",
        .request_id = NULL,
    };
    if (f == 1) {
        r.hits = hits_ssn;
        r.nhits = 2;
    } else if (f == 2) {
        r.hits = hits_key;
        r.nhits = 1;
    }
    if (f == 3) { /* a spreadsheet the policy does not allow */
        r.event = LEDGER_OPEN_REFUSED;
        r.decision = "refused";
        r.reason = "type application/vnd.openxmlformats-officedocument.spreadsheetml.sheet not allowed";
        r.mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
        r.served_sha256 = NULL;
        r.size_served = 0;
    }
    return r;
}

static int open_or_die(const char *db, const char *key, ledger **l)
{
    char why[256];
    int rc = ledger_open(db, key, l, why, sizeof why);
    if (rc < 0)
        fprintf(stderr, "ledger_tool: %s: %s\n", db, why);
    return rc;
}

static int do_fill(const char *db, const char *key, unsigned n)
{
    ledger *l;
    if (open_or_die(db, key, &l) < 0)
        return 2;
    ledger_record m = {.event = LEDGER_MOUNT, .pid = 999, .process = "sluicefs",
                       .exe = "/usr/local/bin/sluicefs", .session = "audit-2026-11",
                       .decision = "mounted", .path = "/data"};
    ledger_record pl = {.event = LEDGER_POLICY_LOAD, .pid = 999, .process = "sluicefs",
                        .policy_hash = "9f2c1d0e7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d",
                        .path = "/etc/sluice/policy.yaml", .decision = "loaded"};
    int rc = ledger_append(l, &m, NULL);
    if (rc == 0)
        rc = ledger_append(l, &pl, NULL);
    for (unsigned i = 0; rc == 0 && i < n; i++) {
        char path[64], src[SHA256_HEX_LEN], srv[SHA256_HEX_LEN];
        ledger_record r = sample(i, path, sizeof path, src, srv);
        rc = ledger_append(l, &r, NULL);
    }
    ledger_close(l);
    if (rc < 0) {
        fprintf(stderr, "ledger_tool: append: %s\n", strerror(-rc));
        return 2;
    }
    return 0;
}

typedef struct bench_worker {
    ledger *l;
    unsigned n, id, think_us;
    int rc;
} bench_worker;

/* Time between appends, as a reader spends between opens (its read, close
 * and own work): slept, as 16 readers on a 2-core machine mostly wait. */
static void think(unsigned us)
{
    if (!us)
        return;
    const struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static void *bench_thread(void *arg)
{
    bench_worker *w = arg;
    for (unsigned i = 0; i < w->n && w->rc == 0; i++) {
        char path[64], src[SHA256_HEX_LEN], srv[SHA256_HEX_LEN];
        ledger_record r = sample(i * 16 + w->id, path, sizeof path, src, srv);
        w->rc = ledger_append(w->l, &r, NULL);
        think(w->think_us);
    }
    return NULL;
}

static int do_bench(const char *db, const char *key, unsigned threads, unsigned n,
                    unsigned think_us)
{
    ledger *l;
    if (threads == 0 || threads > 256 || open_or_die(db, key, &l) < 0)
        return 2;
    bench_worker *w = calloc(threads, sizeof *w);
    pthread_t *th = calloc(threads, sizeof *th);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 0; i < threads; i++) {
        w[i] = (bench_worker){.l = l, .n = n / threads + (i < n % threads), .id = i,
                              .think_us = think_us};
        pthread_create(&th[i], NULL, bench_thread, &w[i]);
    }
    int rc = 0;
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        if (w[i].rc)
            rc = w[i].rc;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ledger_stats stats;
    ledger_get_stats(l, &stats);
    ledger_close(l);
    free(w);
    free(th);
    if (rc < 0) {
        fprintf(stderr, "ledger_tool: append: %s\n", strerror(-rc));
        return 2;
    }
    const double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("threads=%u records=%u seconds=%.3f records_per_second=%.0f commits=%" PRIu64
           " records_per_commit=%.1f\n",
           threads, n, s, n / s, stats.commits,
           stats.commits ? (double)stats.records / (double)stats.commits : 0.0);
    return 0;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* n writes of one 4 KiB block, each followed by fdatasync: `in_place` over
 * the blocks of a file written and synced beforehand (no size change, so no
 * metadata to commit), else appended to a new file. Syncs per second or
 * -errno. */
static double sync_rate(const char *dir, unsigned n, int in_place)
{
    enum { BLK = 4096, NBLK = 256 };
    char path[4096];
    snprintf(path, sizeof path, "%s/ledger_tool-sync-%d-%s", dir, (int)getpid(),
             in_place ? "inplace" : "append");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    static char blk[BLK];
    memset(blk, 'x', sizeof blk);
    double rate = 0;
    if (in_place) {
        for (unsigned i = 0; i < NBLK; i++)
            if (write(fd, blk, BLK) != BLK)
                goto fail;
        if (fsync(fd) < 0)
            goto fail;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 0; i < n; i++) {
        ssize_t w = in_place ? pwrite(fd, blk, BLK, (off_t)(i % NBLK) * BLK) : write(fd, blk, BLK);
        if (w != BLK || fdatasync(fd) < 0)
            goto fail;
    }
    rate = n / seconds_since(&t0);
    close(fd);
    unlink(path);
    return rate;
fail:
    rate = errno ? -errno : -EIO;
    close(fd);
    unlink(path);
    return rate;
}

static int do_sync(const char *dir, unsigned n)
{
    const double app = sync_rate(dir, n, 0), inp = sync_rate(dir, n, 1);
    if (app < 0 || inp < 0) {
        fprintf(stderr, "ledger_tool: sync in %s: %s\n", dir, strerror((int)-(app < 0 ? app : inp)));
        return 2;
    }
    printf("syncs=%u append_per_second=%.0f inplace_per_second=%.0f\n", n, app, inp);
    return 0;
}

int main(int argc, char **argv)
{
    log_init("ledger_tool", LOG_LVL_WARN);
    if (argc == 5 && !strcmp(argv[1], "fill"))
        return do_fill(argv[2], argv[3], (unsigned)strtoul(argv[4], NULL, 10));
    if ((argc == 6 || argc == 7) && !strcmp(argv[1], "bench"))
        return do_bench(argv[2], argv[3], (unsigned)strtoul(argv[4], NULL, 10),
                        (unsigned)strtoul(argv[5], NULL, 10),
                        argc == 7 ? (unsigned)strtoul(argv[6], NULL, 10) : 0);
    if (argc == 4 && !strcmp(argv[1], "sync"))
        return do_sync(argv[2], (unsigned)strtoul(argv[3], NULL, 10));
    fprintf(stderr,
            "usage: ledger_tool fill DB KEY N | bench DB KEY THREADS N [THINK_US] | sync DIR N\n");
    return 2;
}
