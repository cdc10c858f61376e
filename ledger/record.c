/* ledger/record.c — the canonical form of a ledger record and its hash, and
 * the small encoders (time, hits JSON) whose output that hash covers.
 *
 * Must never: change the canonical form of an existing tag (old ledgers would
 * stop verifying), or let two different rows serialize to the same bytes
 * (every field is typed and length-prefixed; NULL differs from ""). */
#include "ledger/ledger_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int put_u64(sha256_ctx *c, uint64_t v)
{
    uint8_t b[8];
    for (int i = 7; i >= 0; i--, v >>= 8)
        b[i] = (uint8_t)(v & 0xff);
    return sha256_update(c, b, sizeof b);
}

static int put_text(sha256_ctx *c, const ledger_text *t)
{
    if (!t->s) {
        const uint8_t null_tag = 0;
        return sha256_update(c, &null_tag, 1);
    }
    const uint8_t str_tag = 1;
    int rc = sha256_update(c, &str_tag, 1);
    if (rc == 0)
        rc = put_u64(c, t->len);
    if (rc == 0 && t->len)
        rc = sha256_update(c, t->s, t->len);
    return rc;
}

int ledger_row_hash(const ledger_row *r, uint8_t out[SHA256_LEN])
{
    sha256_ctx *c = sha256_new();
    if (!c)
        return -ENOMEM;
    int rc = sha256_update(c, LEDGER_CANON_TAG, sizeof LEDGER_CANON_TAG); /* with its NUL */
    if (rc == 0) rc = put_u64(c, r->seq);
    if (rc == 0) rc = put_text(c, &r->time);
    if (rc == 0) rc = put_text(c, &r->event);
    if (rc == 0) rc = put_u64(c, (uint64_t)r->pid);
    if (rc == 0) rc = put_u64(c, (uint64_t)r->uid);
    if (rc == 0) rc = put_u64(c, (uint64_t)r->gid);
    const ledger_text *const texts1[] = {&r->process, &r->exe, &r->cgroup, &r->session,
                                         &r->path, &r->source_sha256, &r->served_sha256};
    for (size_t i = 0; rc == 0 && i < SLUICE_ARRAY_LEN(texts1); i++)
        rc = put_text(c, texts1[i]);
    if (rc == 0) rc = put_u64(c, (uint64_t)r->size_served);
    const ledger_text *const texts2[] = {&r->mime, &r->policy_hash, &r->hits, &r->decision,
                                         &r->reason, &r->extractor, &r->request_id};
    for (size_t i = 0; rc == 0 && i < SLUICE_ARRAY_LEN(texts2); i++)
        rc = put_text(c, texts2[i]);
    if (rc == 0) rc = sha256_update(c, r->prev_hash, SHA256_LEN);
    if (rc != 0) {
        sha256_free(c);
        return rc < 0 ? rc : -EIO;
    }
    return sha256_final(c, out);
}

static ledger_text col_text(sqlite3_stmt *st, int i)
{
    ledger_text t = {NULL, 0};
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return t;
    t.s = (const char *)sqlite3_column_text(st, i);
    t.len = (size_t)sqlite3_column_bytes(st, i);
    if (!t.s)
        t.s = "";
    return t;
}

void ledger_row_from_stmt(sqlite3_stmt *st, ledger_row *r)
{
    r->time = col_text(st, LC_TIME);
    r->event = col_text(st, LC_EVENT);
    r->pid = sqlite3_column_int64(st, LC_PID);
    r->uid = sqlite3_column_int64(st, LC_UID);
    r->gid = sqlite3_column_int64(st, LC_GID);
    r->process = col_text(st, LC_PROCESS);
    r->exe = col_text(st, LC_EXE);
    r->cgroup = col_text(st, LC_CGROUP);
    r->session = col_text(st, LC_SESSION);
    r->path = col_text(st, LC_PATH);
    r->source_sha256 = col_text(st, LC_SOURCE);
    r->served_sha256 = col_text(st, LC_SERVED);
    r->size_served = sqlite3_column_int64(st, LC_SIZE);
    r->mime = col_text(st, LC_MIME);
    r->policy_hash = col_text(st, LC_POLICY);
    r->hits = col_text(st, LC_HITS);
    r->decision = col_text(st, LC_DECISION);
    r->reason = col_text(st, LC_REASON);
    r->extractor = col_text(st, LC_EXTRACTOR);
    r->request_id = col_text(st, LC_REQUEST);
}

void ledger_format_time(const struct timespec *ts, char out[LEDGER_TIME_LEN])
{
    struct tm tm;
    gmtime_r(&ts->tv_sec, &tm);
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, LEDGER_TIME_LEN, "%.19s.%09uZ", date, (unsigned)(ts->tv_nsec % 1000000000));
}

static int buf_reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    char *p = realloc(*buf, n);
    if (!p)
        return -ENOMEM;
    *buf = p;
    *cap = n;
    return 0;
}

static int buf_add(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (buf_reserve(buf, cap, *len + n + 1) < 0)
        return -ENOMEM;
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

int ledger_json_str(char **buf, size_t *len, size_t *cap, const char *s)
{
    if (buf_add(buf, len, cap, "\"", 1) < 0)
        return -ENOMEM;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        const char *out = esc;
        size_t n;
        switch (*p) {
        case '"': out = "\\\""; n = 2; break;
        case '\\': out = "\\\\"; n = 2; break;
        case '\n': out = "\\n"; n = 2; break;
        case '\r': out = "\\r"; n = 2; break;
        case '\t': out = "\\t"; n = 2; break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                n = (size_t)snprintf(esc, sizeof esc, "\\u%04x", *p);
            } else {
                esc[0] = (char)*p;
                n = 1;
            }
        }
        if (buf_add(buf, len, cap, out, n) < 0)
            return -ENOMEM;
    }
    return buf_add(buf, len, cap, "\"", 1);
}

int ledger_hits_json(const ledger_hit *hits, size_t nhits, char **out)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = buf_add(&buf, &len, &cap, "[", 1);
    for (size_t i = 0; rc == 0 && i < nhits; i++) {
        char num[32];
        rc = buf_add(&buf, &len, &cap, i ? ",{\"rule\":" : "{\"rule\":", i ? 9 : 8);
        if (rc == 0)
            rc = ledger_json_str(&buf, &len, &cap, hits[i].rule_id ? hits[i].rule_id : "");
        int n = snprintf(num, sizeof num, ",\"count\":%llu}", (unsigned long long)hits[i].count);
        if (rc == 0)
            rc = buf_add(&buf, &len, &cap, num, (size_t)n);
    }
    if (rc == 0)
        rc = buf_add(&buf, &len, &cap, "]", 1);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    return 0;
}

int ledger_sqlite_errno(sqlite3 *db, int rc)
{
    int sys = db ? sqlite3_system_errno(db) : 0;
    switch (rc & 0xff) {
    case SQLITE_OK: return 0;
    case SQLITE_FULL: return -ENOSPC;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return -EBUSY;
    case SQLITE_NOMEM: return -ENOMEM;
    case SQLITE_READONLY: return -EROFS;
    case SQLITE_PERM:
    case SQLITE_AUTH: return -EACCES;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return -EUCLEAN;
    case SQLITE_CANTOPEN: return sys > 0 ? -sys : -ENOENT;
    case SQLITE_IOERR: return sys > 0 ? -sys : -EIO;
    case SQLITE_CONSTRAINT: return -EEXIST;
    default: return -EIO;
    }
}

int ledger_key_check(const uint8_t *key, size_t keylen, char out[SHA256_HEX_LEN])
{
    static const char label[] = "sluice-ledger key check v1";
    uint8_t mac[SHA256_LEN];
    int rc = hmac_sha256(key, keylen, label, sizeof label - 1, mac);
    if (rc < 0)
        return rc;
    hex_encode(mac, sizeof mac, out);
    return 0;
}
