/* ledger/archive.c — moving old records out of the live database into
 * zstd-compressed segment files beside it. A segment is a SQLite database
 * holding the same `records` table (serialized, then compressed), so verify
 * checks it with the very same code, and an auditor can read one with
 * `zstd -d` and `sqlite3`.
 *
 * Must never: delete a record from the database before its segment file is
 * written, fsynced and renamed into place; archive the head (the chain
 * continues from it); alter a record on the way (rows are copied as stored,
 * hash and HMAC included). */
#include "ledger/ledger_i.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

/* zstd level for segments: archives are written once and kept for years;
 * level 9 compresses ledger rows well at tens of MB/s. */
#define SEGMENT_ZSTD_LEVEL 9

static int sql_fail(sqlite3 *db, int rc, char *why, size_t whylen, const char *what)
{
    snprintf(why, whylen, "%s: %s", what, sqlite3_errmsg(db));
    int e = ledger_sqlite_errno(db, rc);
    return e ? e : -EIO;
}

static int write_segment(const char *dbpath, const char *name, const void *buf, size_t len,
                         char *why, size_t whylen)
{
    char *copy = strdup(dbpath);
    if (!copy)
        return -ENOMEM;
    char dir[4096], tmp[4700], final[4700];
    snprintf(dir, sizeof dir, "%s", dirname(copy));
    free(copy);
    snprintf(final, sizeof final, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    int rc = fd < 0 ? -errno : 0;
    if (rc == 0)
        rc = write_full(fd, buf, len);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (fd >= 0 && close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, final) < 0)
        rc = -errno;
    if (rc == 0) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0)
            rc = -errno;
        if (dfd >= 0)
            close(dfd);
    }
    if (rc < 0) {
        snprintf(why, whylen, "writing segment %.300s: %s", final, strerror(-rc));
        unlink(tmp);
    }
    return rc;
}

static int range_of(sqlite3 *db, uint64_t before, uint64_t *first, uint64_t *last)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT min(seq), max(seq) FROM records", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return rc;
    }
    *first = *last = 0;
    if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
        const uint64_t lo = (uint64_t)sqlite3_column_int64(st, 0);
        const uint64_t head = (uint64_t)sqlite3_column_int64(st, 1);
        uint64_t hi = before ? before - 1 : 0;
        if (hi > head - 1)
            hi = head - 1; /* the head stays: the chain continues from it */
        if (hi >= lo) {
            *first = lo;
            *last = hi;
        }
    }
    sqlite3_finalize(st);
    return SQLITE_OK;
}

int ledger_archive(const char *path, const char *key_path, uint64_t before_seq,
                   uint64_t *moved, char *why, size_t whylen)
{
    *moved = 0;
    ledger *l = NULL;
    /* One archiver at a time (a lock file, not the database's write lock:
     * appenders must not wait while a segment is compressed and written). */
    char lockpath[4200];
    snprintf(lockpath, sizeof lockpath, "%s.archive-lock", path);
    int lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lockfd < 0) {
        snprintf(why, whylen, "%.300s: %s", lockpath, strerror(errno));
        return -errno;
    }
    if (flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
        const int e = errno;
        snprintf(why, whylen, "another archive of this ledger is running (%.300s)",
                 e == EWOULDBLOCK ? lockpath : strerror(e));
        close(lockfd);
        return e == EWOULDBLOCK ? -EBUSY : -e;
    }
    int rc = ledger_open(path, key_path, &l, why, whylen); /* migrates, checks the key */
    if (rc < 0) {
        close(lockfd);
        return rc;
    }
    sqlite3 *db = ledger_handle(l);
    uint64_t first = 0, last = 0;
    int src = range_of(db, before_seq, &first, &last);
    if (src != SQLITE_OK) {
        rc = sql_fail(db, src, why, whylen, "reading the ledger");
        goto out;
    }
    if (last == 0)
        goto out; /* nothing older than the head below before_seq */

    /* Copy the range into an in-memory database of the same shape. Records
     * below the head never change, so this needs no write lock on the ledger. */
    char sql[4096];
    snprintf(sql, sizeof sql, "ATTACH ':memory:' AS seg");
    if ((src = sqlite3_exec(db, sql, NULL, NULL, NULL)) != SQLITE_OK) {
        rc = sql_fail(db, src, why, whylen, "attach");
        goto out;
    }
    static const char prefix[] = "CREATE TABLE IF NOT EXISTS records";
    snprintf(sql, sizeof sql, "CREATE TABLE seg.records%s", ledger_records_ddl + sizeof prefix - 1);
    if ((src = sqlite3_exec(db, sql, NULL, NULL, NULL)) != SQLITE_OK) {
        rc = sql_fail(db, src, why, whylen, "segment schema");
        goto detach;
    }
    snprintf(sql, sizeof sql,
             "INSERT INTO seg.records (" LEDGER_COLUMNS ") SELECT " LEDGER_COLUMNS
             " FROM main.records WHERE seq BETWEEN %" PRIu64 " AND %" PRIu64 " ORDER BY seq",
             first, last);
    if ((src = sqlite3_exec(db, sql, NULL, NULL, NULL)) != SQLITE_OK) {
        rc = sql_fail(db, src, why, whylen, "copying records");
        goto detach;
    }
    char last_hash[SHA256_HEX_LEN] = "";
    uint64_t count = 0;
    {
        sqlite3_stmt *st = NULL;
        snprintf(sql, sizeof sql,
                 "SELECT count(*), (SELECT hash FROM seg.records WHERE seq = %" PRIu64 ") "
                 "FROM seg.records",
                 last);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 1)) {
            count = (uint64_t)sqlite3_column_int64(st, 0);
            snprintf(last_hash, sizeof last_hash, "%s", (const char *)sqlite3_column_text(st, 1));
        }
        sqlite3_finalize(st);
    }
    if (count != last - first + 1 || strlen(last_hash) != 64) {
        snprintf(why, whylen,
                 "records %" PRIu64 "..%" PRIu64 " are not all present (run sluice ledger verify)",
                 first, last);
        rc = -EBADMSG;
        goto detach;
    }
    sqlite3_int64 rawlen = 0;
    unsigned char *raw = sqlite3_serialize(db, "seg", &rawlen, 0);
    if (!raw) {
        snprintf(why, whylen, "cannot serialize the segment");
        rc = -ENOMEM;
        goto detach;
    }
    const size_t bound = ZSTD_compressBound((size_t)rawlen);
    void *z = malloc(bound);
    size_t zlen = z ? ZSTD_compress(z, bound, raw, (size_t)rawlen, SEGMENT_ZSTD_LEVEL) : 0;
    sqlite3_free(raw);
    if (!z || ZSTD_isError(zlen)) {
        snprintf(why, whylen, "zstd: %s", z ? ZSTD_getErrorName(zlen) : "out of memory");
        free(z);
        rc = -ENOMEM;
        goto detach;
    }
    uint8_t digest[SHA256_LEN];
    char digest_hex[SHA256_HEX_LEN], name[512];
    sha256_buf(z, zlen, digest);
    hex_encode(digest, SHA256_LEN, digest_hex);
    char *copy = strdup(path);
    if (!copy) {
        free(z);
        rc = -ENOMEM;
        goto detach;
    }
    snprintf(name, sizeof name, "%.400s.seg-%012" PRIu64 "-%012" PRIu64 ".zst", basename(copy),
             first, last);
    free(copy);
    rc = write_segment(path, name, z, zlen, why, whylen);
    free(z);
    if (rc < 0)
        goto detach;

    /* Only now, in one transaction: list the segment and drop its rows. The
     * append-only trigger lets deletes through while meta says so. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char now[LEDGER_TIME_LEN];
    ledger_format_time(&ts, now);
    sqlite3_stmt *ins = NULL;
    src = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_prepare_v2(db,
                                 "INSERT INTO segments (first_seq, last_seq, file, sha256, last_hash,"
                                 " records, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 -1, &ins, NULL);
    if (src == SQLITE_OK) {
        sqlite3_bind_int64(ins, 1, (sqlite3_int64)first);
        sqlite3_bind_int64(ins, 2, (sqlite3_int64)last);
        sqlite3_bind_text(ins, 3, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 4, digest_hex, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 5, last_hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 6, (sqlite3_int64)count);
        sqlite3_bind_text(ins, 7, now, -1, SQLITE_STATIC);
        src = sqlite3_step(ins) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
    }
    sqlite3_finalize(ins);
    /* Belt and braces: the range must still be whole in the database. */
    if (src == SQLITE_OK) {
        sqlite3_stmt *cnt = NULL;
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM main.records WHERE seq BETWEEN %" PRIu64 " AND %" PRIu64,
                 first, last);
        if (sqlite3_prepare_v2(db, sql, -1, &cnt, NULL) != SQLITE_OK ||
            sqlite3_step(cnt) != SQLITE_ROW)
            src = sqlite3_errcode(db);
        else if ((uint64_t)sqlite3_column_int64(cnt, 0) != count)
            src = SQLITE_CONSTRAINT;
        sqlite3_finalize(cnt);
    }
    snprintf(sql, sizeof sql,
             "INSERT OR REPLACE INTO meta (key, value) VALUES ('archiving', '1');"
             "DELETE FROM main.records WHERE seq BETWEEN %" PRIu64 " AND %" PRIu64 ";"
             "DELETE FROM meta WHERE key = 'archiving';"
             "COMMIT;",
             first, last);
    char *err = NULL;
    if (src != SQLITE_OK || (src = sqlite3_exec(db, sql, NULL, NULL, &err)) != SQLITE_OK) {
        snprintf(why, whylen, "recording the segment: %s", err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        rc = ledger_sqlite_errno(db, src);
        if (rc == 0)
            rc = -EIO;
        if (!sqlite3_get_autocommit(db))
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        goto detach;
    }
    *moved = count;
    log_info("msg=\"ledger records archived\" ledger=%s first=%" PRIu64 " last=%" PRIu64
             " segment=%s",
             path, first, last, name);
detach:
    sqlite3_exec(db, "DETACH seg", NULL, NULL, NULL);
out:
    ledger_close(l);
    close(lockfd); /* releases the lock */
    return rc;
}

int ledger_seq_older_than(const char *path, double days, uint64_t *before_seq, char *why,
                          size_t whylen)
{
    sqlite3 *db = NULL;
    int rc = ledger_open_readonly(path, &db, why, whylen);
    if (rc < 0)
        return rc;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec -= (time_t)(days * 86400.0);
    char cutoff[LEDGER_TIME_LEN];
    ledger_format_time(&ts, cutoff);
    sqlite3_stmt *st = NULL;
    /* Times are fixed-width UTC strings, so text order is time order. */
    rc = sqlite3_prepare_v2(db,
                            "SELECT coalesce((SELECT min(seq) FROM records WHERE time >= ?1),"
                            " (SELECT max(seq) + 1 FROM records), 0)",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, cutoff, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_ROW) {
        *before_seq = (uint64_t)sqlite3_column_int64(st, 0);
        rc = 0;
    } else {
        rc = sql_fail(db, rc, why, whylen, "reading the ledger");
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
