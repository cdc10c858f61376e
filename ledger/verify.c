/* ledger/verify.c — what auditors rely on: walking the whole chain
 * (archived segments, then the live database) and checkpoints, the signed
 * digests of the head that detect a truncated tail.
 *
 * Must never: write to the ledger; report "clean" for anything it did not
 * check (a record it could not read is a failure, not a skip); trust any
 * stored hash without recomputing it from the record's content. */
#include "ledger/ledger_i.h"

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

typedef struct walk {
    const uint8_t *key;
    size_t keylen;
    uint64_t next_seq; /* the seq the next record must have */
    uint8_t prev[SHA256_LEN];
    const ledger_checkpoint *cps;
    size_t ncps;
    uint8_t *cp_seen; /* per checkpoint: its record was found and matched */
    ledger_verify_report *rep;
} walk;

static int fail(walk *w, uint64_t seq, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(walk *w, uint64_t seq, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->rep->what, sizeof w->rep->what, fmt, ap);
    va_end(ap);
    w->rep->bad_seq = seq;
    return -EBADMSG;
}

static int hex32(const char *s, uint8_t out[SHA256_LEN])
{
    if (!s || strlen(s) != 64)
        return -EINVAL;
    return hex_decode(s, out, SHA256_LEN);
}

/* Check every record of `db` (seq order) against the chain so far. `where`
 * names the source in messages ("" for the live database). */
static int walk_records(walk *w, sqlite3 *db, const char *where)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT " LEDGER_COLUMNS " FROM records ORDER BY seq", -1, &st,
                           NULL) != SQLITE_OK) {
        snprintf(w->rep->what, sizeof w->rep->what, "cannot read records%s: %s", where,
                 sqlite3_errmsg(db));
        return -EIO;
    }
    int rc = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const uint64_t seq = (uint64_t)sqlite3_column_int64(st, LC_SEQ);
        if (seq != w->next_seq) {
            if (seq == w->next_seq + 1)
                rc = fail(w, w->next_seq, "record %" PRIu64 " is missing%s (deleted?)",
                          w->next_seq, where);
            else if (seq > w->next_seq)
                rc = fail(w, w->next_seq, "records %" PRIu64 "..%" PRIu64 " are missing%s (deleted?)",
                          w->next_seq, seq - 1, where);
            else
                rc = fail(w, seq, "record %" PRIu64 " appears out of order%s (expected %" PRIu64 ")",
                          seq, where, w->next_seq);
            break;
        }
        ledger_row row = {.seq = seq};
        ledger_row_from_stmt(st, &row);
        uint8_t stored_prev[SHA256_LEN], stored_hash[SHA256_LEN], stored_mac[SHA256_LEN];
        if (hex32((const char *)sqlite3_column_text(st, LC_PREV), stored_prev) < 0 ||
            hex32((const char *)sqlite3_column_text(st, LC_HASH), stored_hash) < 0 ||
            hex32((const char *)sqlite3_column_text(st, LC_HMAC), stored_mac) < 0) {
            rc = fail(w, seq, "record %" PRIu64 "%s: prev_hash, hash or hmac is not 64 hex digits",
                      seq, where);
            break;
        }
        memcpy(row.prev_hash, stored_prev, SHA256_LEN);
        uint8_t hash[SHA256_LEN], mac[SHA256_LEN];
        if ((rc = ledger_row_hash(&row, hash)) < 0 ||
            (rc = hmac_sha256(w->key, w->keylen, hash, SHA256_LEN, mac)) < 0) {
            snprintf(w->rep->what, sizeof w->rep->what, "cannot hash record %" PRIu64, seq);
            break;
        }
        if (!ct_equal(hash, stored_hash, SHA256_LEN)) {
            rc = fail(w, seq, "record %" PRIu64 "%s: content does not match its hash (a field was edited)",
                      seq, where);
            break;
        }
        if (!ct_equal(stored_prev, w->prev, SHA256_LEN)) {
            rc = fail(w, seq,
                      seq == 1 ? "record %" PRIu64 "%s: prev_hash is not the chain's start (records before it were removed or replaced)"
                               : "record %" PRIu64 "%s: prev_hash does not match the hash of the record before it (records deleted, inserted or reordered)",
                      seq, where);
            break;
        }
        if (!ct_equal(mac, stored_mac, SHA256_LEN)) {
            rc = fail(w, seq, "record %" PRIu64 "%s: HMAC does not match (record forged, or sealed with another key)",
                      seq, where);
            break;
        }
        for (size_t i = 0; i < w->ncps; i++)
            if (w->cps[i].seq == seq) {
                if (!ct_equal(w->cps[i].hash, hash, SHA256_LEN)) {
                    rc = fail(w, seq, "record %" PRIu64 "%s differs from the checkpoint taken at %s (history rewritten)",
                              seq, where, w->cps[i].time);
                    break;
                }
                w->cp_seen[i] = 1;
            }
        if (rc < 0)
            break;
        memcpy(w->prev, hash, SHA256_LEN);
        if (w->rep->records == 0)
            w->rep->first_seq = seq;
        w->rep->records++;
        w->rep->last_seq = seq;
        w->next_seq = seq + 1;
    }
    if (rc == 0 && step != SQLITE_DONE) {
        snprintf(w->rep->what, sizeof w->rep->what, "cannot read records%s: %s", where,
                 sqlite3_errmsg(db));
        rc = -EIO;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Read, check and open one segment file as an in-memory database. */
static int open_segment(const char *dbpath, const char *file, const char *sha_hex,
                        sqlite3 **out, char *why, size_t whylen)
{
    if (strchr(file, '/')) {
        snprintf(why, whylen, "segment name %s is not a plain file name", file);
        return -EBADMSG;
    }
    char *copy = strdup(dbpath);
    if (!copy)
        return -ENOMEM;
    char full[4096];
    snprintf(full, sizeof full, "%s/%s", dirname(copy), file);
    free(copy);
    uint8_t *z = NULL;
    size_t zlen = 0;
    int rc = file_read_all(full, (size_t)1 << 34, &z, &zlen);
    if (rc < 0) {
        snprintf(why, whylen, "segment %.300s: %s", full, strerror(-rc));
        return rc == -ENOENT ? -EBADMSG : rc;
    }
    uint8_t digest[SHA256_LEN], want[SHA256_LEN];
    if (sha256_buf(z, zlen, digest) < 0 || hex32(sha_hex, want) < 0 ||
        !ct_equal(digest, want, SHA256_LEN)) {
        snprintf(why, whylen, "segment %.300s: its SHA-256 does not match the segments table", full);
        free(z);
        return -EBADMSG;
    }
    const unsigned long long raw = ZSTD_getFrameContentSize(z, zlen);
    if (raw == ZSTD_CONTENTSIZE_ERROR || raw == ZSTD_CONTENTSIZE_UNKNOWN || raw > ((size_t)1 << 36)) {
        snprintf(why, whylen, "segment %.300s: not a zstd frame of known size", full);
        free(z);
        return -EBADMSG;
    }
    unsigned char *buf = sqlite3_malloc64(raw ? raw : 1);
    if (!buf) {
        free(z);
        return -ENOMEM;
    }
    const size_t got = ZSTD_decompress(buf, raw, z, zlen);
    free(z);
    if (ZSTD_isError(got) || got != raw) {
        snprintf(why, whylen, "segment %.300s: zstd: %s", full,
                 ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short");
        sqlite3_free(buf);
        return -EBADMSG;
    }
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        sqlite3_free(buf);
        sqlite3_close(db);
        return -ENOMEM;
    }
    rc = sqlite3_deserialize(db, "main", buf, (sqlite3_int64)raw, (sqlite3_int64)raw,
                             SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_READONLY);
    if (rc != SQLITE_OK) {
        snprintf(why, whylen, "segment %.300s: %s", full, sqlite3_errmsg(db));
        sqlite3_close(db);
        return -EBADMSG;
    }
    *out = db;
    return 0;
}

static int walk_segments(walk *w, sqlite3 *db, const char *path)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT first_seq, last_seq, file, sha256, last_hash FROM segments "
                           "ORDER BY first_seq",
                           -1, &st, NULL) != SQLITE_OK) {
        snprintf(w->rep->what, sizeof w->rep->what, "cannot read segments: %s", sqlite3_errmsg(db));
        return -EIO;
    }
    int rc = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const uint64_t first = (uint64_t)sqlite3_column_int64(st, 0);
        const uint64_t last = (uint64_t)sqlite3_column_int64(st, 1);
        const char *file = (const char *)sqlite3_column_text(st, 2);
        const char *sha = (const char *)sqlite3_column_text(st, 3);
        const char *last_hash = (const char *)sqlite3_column_text(st, 4);
        char why[512] = "";
        sqlite3 *seg = NULL;
        rc = open_segment(path, file ? file : "", sha, &seg, why, sizeof why);
        if (rc < 0) {
            if (rc == -EBADMSG)
                rc = fail(w, first, "archived records %" PRIu64 "..%" PRIu64 ": %s", first, last, why);
            else
                snprintf(w->rep->what, sizeof w->rep->what, "%s", why);
            break;
        }
        char where[600];
        snprintf(where, sizeof where, " (in segment %s)", file);
        const uint64_t before = w->rep->records;
        rc = walk_records(w, seg, where);
        sqlite3_close(seg);
        if (rc < 0)
            break;
        uint8_t lh[SHA256_LEN];
        if (w->rep->records - before != last - first + 1 || w->next_seq != last + 1 ||
            hex32(last_hash, lh) < 0 || !ct_equal(lh, w->prev, SHA256_LEN)) {
            rc = fail(w, first, "segment %s does not hold exactly records %" PRIu64 "..%" PRIu64
                      " ending in the recorded hash", file, first, last);
            break;
        }
        w->rep->segments++;
    }
    if (rc == 0 && step != SQLITE_DONE) {
        snprintf(w->rep->what, sizeof w->rep->what, "cannot read segments: %s", sqlite3_errmsg(db));
        rc = -EIO;
    }
    sqlite3_finalize(st);
    return rc;
}

int ledger_foreach_segment(sqlite3 *db, const char *path, ledger_segment_fn fn, void *ctx,
                           char *why, size_t whylen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT file, sha256 FROM segments ORDER BY first_seq", -1, &st,
                           NULL) != SQLITE_OK) {
        snprintf(why, whylen, "cannot read segments: %s", sqlite3_errmsg(db));
        return -EIO;
    }
    int rc = 0, step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *file = (const char *)sqlite3_column_text(st, 0);
        const char *sha = (const char *)sqlite3_column_text(st, 1);
        sqlite3 *seg = NULL;
        rc = open_segment(path, file ? file : "", sha, &seg, why, whylen);
        if (rc == 0) {
            rc = fn(ctx, seg, file);
            sqlite3_close(seg);
        }
    }
    if (rc == 0 && step != SQLITE_DONE) {
        snprintf(why, whylen, "cannot read segments: %s", sqlite3_errmsg(db));
        rc = -EIO;
    }
    sqlite3_finalize(st);
    return rc;
}

static int load_key(const char *key_path, uint8_t *key, size_t *keylen, char *what, size_t len)
{
    char why[256] = "";
    int rc = key_load(key_path, key, keylen, why, sizeof why);
    if (rc < 0)
        snprintf(what, len, "key %s: %s", key_path, why);
    return rc;
}

int ledger_verify(const char *path, const char *key_path, const ledger_checkpoint *cps,
                  size_t ncps, ledger_verify_report *rep)
{
    memset(rep, 0, sizeof *rep);
    uint8_t key[KEY_MAX_LEN];
    size_t keylen = 0;
    int rc = load_key(key_path, key, &keylen, rep->what, sizeof rep->what);
    if (rc < 0)
        return rc;
    sqlite3 *db = NULL;
    char why[256] = "";
    rc = ledger_open_readonly(path, &db, why, sizeof why);
    if (rc < 0) {
        snprintf(rep->what, sizeof rep->what, "%s: %s", path, why);
        explicit_bzero(key, sizeof key);
        return rc;
    }
    walk w = {.key = key, .keylen = keylen, .next_seq = 1, .cps = cps, .ncps = ncps, .rep = rep};
    w.cp_seen = calloc(ncps ? ncps : 1, 1);
    if (!w.cp_seen) {
        rc = -ENOMEM;
        goto out;
    }
    /* One read transaction: an archive running meanwhile cannot make us see
     * a record twice or not at all. */
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(rep->what, sizeof rep->what, "%s", sqlite3_errmsg(db));
        rc = -EIO;
        goto out;
    }
    rc = walk_segments(&w, db, path);
    if (rc == 0)
        rc = walk_records(&w, db, "");
    if (rc == 0) {
        /* The key check in meta must be this key's: a ledger re-sealed under
         * another key with a rewritten key check fails here at the latest. */
        char kc[SHA256_HEX_LEN];
        sqlite3_stmt *st = NULL;
        const char *stored = NULL;
        if (ledger_key_check(key, keylen, kc) == 0 &&
            sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'key_check'", -1, &st,
                               NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            stored = (const char *)sqlite3_column_text(st, 0);
        if (!stored || strlen(stored) != 64 || !ct_equal(stored, kc, 64))
            rc = fail(&w, 0, "the ledger's key check does not match this key (wrong key, or the ledger was re-sealed)");
        sqlite3_finalize(st);
    }
    for (size_t i = 0; rc == 0 && i < ncps; i++) {
        if (cps[i].seq == 0 || w.cp_seen[i])
            continue;
        if (cps[i].seq > rep->last_seq)
            rc = fail(&w, rep->last_seq + 1,
                      "truncated tail: the checkpoint taken at %s covers records up to %" PRIu64
                      " but the ledger ends at %" PRIu64,
                      cps[i].time, cps[i].seq, rep->last_seq);
        else
            rc = fail(&w, cps[i].seq, "record %" PRIu64 " named by a checkpoint is missing", cps[i].seq);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
out:
    free(w.cp_seen);
    sqlite3_close(db);
    explicit_bzero(key, sizeof key);
    return rc;
}

/* ---- checkpoints --------------------------------------------------------------- */

static void checkpoint_body(const ledger_checkpoint *c, char *out, size_t outlen)
{
    char hex[SHA256_HEX_LEN];
    hex_encode(c->hash, SHA256_LEN, hex);
    snprintf(out, outlen, "sluice-ledger-checkpoint v1 seq=%" PRIu64 " hash=%s time=%s", c->seq,
             hex, c->time);
}

void ledger_checkpoint_format(const ledger_checkpoint *c, char *out, size_t outlen)
{
    char body[LEDGER_CHECKPOINT_MAX], mac[SHA256_HEX_LEN];
    checkpoint_body(c, body, sizeof body);
    hex_encode(c->hmac, SHA256_LEN, mac);
    snprintf(out, outlen, "%s hmac=%s", body, mac);
}

int ledger_checkpoint_parse(const char *line, const uint8_t *key, size_t keylen,
                            ledger_checkpoint *out)
{
    memset(out, 0, sizeof *out);
    char hash[65], time_s[40], mac[65];
    unsigned long long seq;
    int n = 0;
    if (sscanf(line, "sluice-ledger-checkpoint v1 seq=%llu hash=%64s time=%39s hmac=%64s%n", &seq,
               hash, time_s, mac, &n) != 4 ||
        hex32(hash, out->hash) < 0 || hex32(mac, out->hmac) < 0)
        return -EINVAL;
    while (line[n] == ' ' || line[n] == '\t' || line[n] == '\r' || line[n] == '\n')
        n++;
    if (line[n] != '\0')
        return -EINVAL;
    out->seq = seq;
    snprintf(out->time, sizeof out->time, "%s", time_s);
    char body[LEDGER_CHECKPOINT_MAX];
    uint8_t want[SHA256_LEN];
    checkpoint_body(out, body, sizeof body);
    if (hmac_sha256(key, keylen, body, strlen(body), want) < 0)
        return -EIO;
    return ct_equal(want, out->hmac, SHA256_LEN) ? 0 : -EBADMSG;
}

int ledger_checkpoint_take(const char *path, const char *key_path, ledger_checkpoint *out,
                           char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    uint8_t key[KEY_MAX_LEN];
    size_t keylen = 0;
    int rc = load_key(key_path, key, &keylen, why, whylen);
    if (rc < 0)
        return rc;
    sqlite3 *db = NULL;
    rc = ledger_open_readonly(path, &db, why, whylen);
    if (rc < 0) {
        explicit_bzero(key, sizeof key);
        return rc;
    }
    /* Sign only a head that is ours: signing under the wrong key would hand
     * the auditor a checkpoint that can never verify. */
    char kc[SHA256_HEX_LEN];
    sqlite3_stmt *st = NULL;
    rc = -EKEYREJECTED;
    snprintf(why, whylen, "this ledger is sealed with a different key");
    if (ledger_key_check(key, keylen, kc) == 0 &&
        sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'key_check'", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const char *stored = (const char *)sqlite3_column_text(st, 0);
        if (stored && strlen(stored) == 64 && ct_equal(stored, kc, 64))
            rc = 0;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc == 0) {
        rc = -EIO;
        if (sqlite3_prepare_v2(db,
                               "SELECT seq, hash FROM records UNION ALL "
                               "SELECT last_seq, last_hash FROM segments ORDER BY 1 DESC LIMIT 1",
                               -1, &st, NULL) == SQLITE_OK) {
            const int step = sqlite3_step(st);
            if (step == SQLITE_ROW) {
                out->seq = (uint64_t)sqlite3_column_int64(st, 0);
                rc = hex32((const char *)sqlite3_column_text(st, 1), out->hash) < 0 ? -EBADMSG : 0;
                if (rc < 0)
                    snprintf(why, whylen, "the head record's hash is not 64 hex digits");
            } else if (step == SQLITE_DONE) {
                rc = 0; /* empty ledger: seq 0, hash zeros */
            }
        }
        if (rc == -EIO)
            snprintf(why, whylen, "%s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
    }
    if (rc == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        char t[LEDGER_TIME_LEN];
        ledger_format_time(&ts, t);
        snprintf(out->time, sizeof out->time, "%s", t);
        char body[LEDGER_CHECKPOINT_MAX];
        checkpoint_body(out, body, sizeof body);
        rc = hmac_sha256(key, keylen, body, strlen(body), out->hmac);
    }
    sqlite3_close(db);
    explicit_bzero(key, sizeof key);
    return rc;
}
