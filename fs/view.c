/* fs/view.c — sanitized views of source files and the size-capped cache that
 * keeps them between opens.
 *
 * A view is built from one stable read of the source (fs_source_read) by one
 * dlp_sanitize() call over the whole content, so every byte served comes out
 * of a single sanitization of a single version of the file: no offset can see
 * a mix of versions or of policies. Views are immutable and reference
 * counted; the cache only drops its own reference on eviction.
 *
 * Keyed by (dev, ino, size, mtime, ctime, policy hash): a changed source or a
 * new policy never finds an old view. Refusals (denied type, unchecked
 * content) are cached too, so a listing with `ls -l` does not rescan them.
 *
 * Must never: hand out a view whose key does not match the caller's fresh
 * stat of the source, or serve data when dlp_sanitize() did not return 0.
 */
#include "fs/fs_i.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CACHE_BUCKETS 16384u
/* How close (ns) a source's mtime/ctime may be to the moment we read it for
 * the view to count as racy. Kernel timestamps come from a coarse clock (one
 * tick, at most 10 ms at HZ=100); the margin is generous. */
#define RACY_WINDOW_NS 200000000LL

struct fs_cache {
    pthread_mutex_t lock;
    fs_view *buckets[CACHE_BUCKETS];
    fs_view *lru_head, *lru_tail; /* head = most recently used */
    uint64_t cap, bytes, count;
    uint64_t hits, misses, builds, evictions;
};

static atomic_uint_fast64_t g_view_gen;

void fs_view_key_from_stat(const struct stat *st, const char *policy_hash, fs_view_key *k)
{
    memset(k, 0, sizeof *k);
    k->dev = st->st_dev;
    k->ino = st->st_ino;
    k->size = st->st_size;
    k->mtime = st->st_mtim;
    k->ctime = st->st_ctim;
    snprintf(k->policy_hash, sizeof k->policy_hash, "%s", policy_hash);
}

static int key_equal(const fs_view_key *a, const fs_view_key *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec &&
           strcmp(a->policy_hash, b->policy_hash) == 0;
}

static unsigned key_bucket(const fs_view_key *k)
{
    uint64_t h = 1469598103934665603ull;
    const uint64_t parts[] = {(uint64_t)k->dev, (uint64_t)k->ino, (uint64_t)k->size,
                              (uint64_t)k->mtime.tv_nsec, (uint64_t)k->ctime.tv_nsec};
    for (size_t i = 0; i < SLUICE_ARRAY_LEN(parts); i++) {
        h ^= parts[i];
        h *= 1099511628211ull;
        h ^= h >> 29;
    }
    return (unsigned)(h % CACHE_BUCKETS);
}

int fs_cache_new(uint64_t cap, fs_cache **out)
{
    fs_cache *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    c->cap = cap;
    *out = c;
    return 0;
}

static void view_destroy(fs_view *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->nhits; i++)
        free((char *)v->hits[i].rule_id);
    free(v->hits);
    free(v->data);
    free(v);
}

/* Callers hold c->lock. */
static void lru_unlink(fs_cache *c, fs_view *v)
{
    if (v->lprev)
        v->lprev->lnext = v->lnext;
    else
        c->lru_head = v->lnext;
    if (v->lnext)
        v->lnext->lprev = v->lprev;
    else
        c->lru_tail = v->lprev;
    v->lprev = v->lnext = NULL;
}

static void lru_push_front(fs_cache *c, fs_view *v)
{
    v->lprev = NULL;
    v->lnext = c->lru_head;
    if (c->lru_head)
        c->lru_head->lprev = v;
    c->lru_head = v;
    if (c->lru_tail == NULL)
        c->lru_tail = v;
}

/* Remove from the table and the LRU; returns 1 when the last reference went. */
static int cache_remove(fs_cache *c, fs_view *v)
{
    fs_view **pp = &c->buckets[key_bucket(&v->key)];
    while (*pp && *pp != v)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = v->hnext;
    v->hnext = NULL;
    lru_unlink(c, v);
    v->cached = 0;
    c->bytes -= v->len;
    c->count--;
    return --v->refs == 0;
}

static void cache_trim(fs_cache *c, fs_view **freelist)
{
    while (c->bytes > c->cap && c->lru_tail != NULL) {
        fs_view *v = c->lru_tail;
        c->evictions++;
        if (cache_remove(c, v)) {
            v->hnext = *freelist;
            *freelist = v;
        }
    }
}

static void free_list(fs_view *v)
{
    while (v) {
        fs_view *n = v->hnext;
        view_destroy(v);
        v = n;
    }
}

void fs_cache_free(fs_cache *c)
{
    if (c == NULL)
        return;
    fs_cache_clear(c);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void fs_cache_clear(fs_cache *c)
{
    fs_view *dead = NULL;
    pthread_mutex_lock(&c->lock);
    while (c->lru_tail) {
        fs_view *v = c->lru_tail;
        if (cache_remove(c, v)) {
            v->hnext = dead;
            dead = v;
        }
    }
    pthread_mutex_unlock(&c->lock);
    free_list(dead);
}

static fs_view *lookup_locked(fs_cache *c, const fs_view_key *k)
{
    for (fs_view *v = c->buckets[key_bucket(k)]; v; v = v->hnext)
        if (key_equal(&v->key, k))
            return v;
    return NULL;
}

int fs_view_peek(fs_cache *c, const struct stat *st, const char *policy_hash, fs_view **out)
{
    fs_view_key k;
    fs_view_key_from_stat(st, policy_hash, &k);
    pthread_mutex_lock(&c->lock);
    fs_view *v = lookup_locked(c, &k);
    if (v) {
        v->refs++;
        lru_unlink(c, v);
        lru_push_front(c, v);
        c->hits++;
    }
    pthread_mutex_unlock(&c->lock);
    if (v == NULL)
        return -ENOENT;
    *out = v;
    return 0;
}

void fs_view_ref(fs_cache *c, fs_view *v)
{
    pthread_mutex_lock(&c->lock);
    v->refs++;
    pthread_mutex_unlock(&c->lock);
}

void fs_view_unref(fs_cache *c, fs_view *v)
{
    if (v == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    int last = --v->refs == 0;
    pthread_mutex_unlock(&c->lock);
    if (last)
        view_destroy(v);
}

/* Run the engine over one stable read. Any failure becomes a refusal view
 * (status < 0, reason set): the caller records and denies it. */
static int64_t ts_ns(const struct timespec *t) { return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec; }

/* Whether a source stat'ed as `st` and read at `read_at` is racy (see fs_view.racy). */
static int is_racy(const struct stat *st, const struct timespec *read_at)
{
    int64_t m = ts_ns(&st->st_mtim) > ts_ns(&st->st_ctim) ? ts_ns(&st->st_mtim) : ts_ns(&st->st_ctim);
    return ts_ns(read_at) - m < RACY_WINDOW_NS;
}

static fs_view *view_build(const dlp_policy *pol, const fs_source *src, const struct timespec *read_at)
{
    fs_view *v = calloc(1, sizeof *v);
    if (v == NULL)
        return NULL;
    fs_view_key_from_stat(&src->st, dlp_policy_hash(pol), &v->key);
    v->racy = is_racy(&src->st, read_at);
    v->gen = atomic_fetch_add(&g_view_gen, 1) + 1;
    uint8_t md[SHA256_LEN];
    if (sha256_buf(src->data, src->len, md) < 0) {
        v->status = -EIO;
        snprintf(v->reason, sizeof v->reason, "could not hash the source");
        return v;
    }
    hex_encode(md, SHA256_LEN, v->source_sha256);

    dlp_result res;
    memset(&res, 0, sizeof res);
    int r = dlp_sanitize(pol, src->data, src->len, &res);
    snprintf(v->mime, sizeof v->mime, "%s", res.type.mime);
    if (r < 0) {
        /* -EACCES: type denied by policy; anything else: the engine could not
         * check the content. Both are refusals, never a fallback to raw bytes. */
        v->status = r == -EACCES ? -EACCES : -EIO;
        const char *why = res.reason[0] ? res.reason : res.type.reason;
        snprintf(v->reason, sizeof v->reason, "%s%s",
                 r == -EACCES ? "type denied: " : "could not check: ",
                 why[0] ? why : strerror(-r));
        dlp_result_free(&res);
        return v;
    }
    if (res.nhits > 0) {
        v->hits = calloc(res.nhits, sizeof *v->hits);
        if (v->hits == NULL)
            goto oom;
        for (size_t i = 0; i < res.nhits; i++) {
            v->hits[i].rule_id = strdup(res.hits[i].rule_id ? res.hits[i].rule_id : "?");
            v->hits[i].count = res.hits[i].count;
            v->nhits = i + 1;
            if (v->hits[i].rule_id == NULL)
                goto oom;
        }
    }
    if (sha256_buf(res.data ? (const void *)res.data : (const void *)"", res.len, md) < 0)
        goto oom;
    hex_encode(md, SHA256_LEN, v->served_sha256);
    v->data = res.data; /* ownership moves to the view */
    v->len = res.len;
    res.data = NULL;
    res.len = 0;
    dlp_result_free(&res);
    v->status = 0;
    return v;
oom:
    dlp_result_free(&res);
    v->status = -ENOMEM;
    snprintf(v->reason, sizeof v->reason, "out of memory building the view");
    free(v->data);
    v->data = NULL;
    v->len = 0;
    return v;
}

/* A racy cached view `v` (held) against a fresh read of the source: the
 * same bytes (and identity) keep it, and once the source is old enough it
 * stops being racy. 1: v is good; 0: it is not (the caller builds anew). */
static int racy_still_good(fs_cache *c, fs_view *v, const fs_source *src, const struct timespec *read_at)
{
    fs_view_key k;
    fs_view_key_from_stat(&src->st, v->key.policy_hash, &k);
    uint8_t md[SHA256_LEN];
    char hex[SHA256_HEX_LEN];
    if (!key_equal(&k, &v->key) || sha256_buf(src->data, src->len, md) < 0)
        return 0;
    hex_encode(md, SHA256_LEN, hex);
    if (strcmp(hex, v->source_sha256) != 0)
        return 0;
    if (!is_racy(&src->st, read_at)) {
        pthread_mutex_lock(&c->lock);
        v->racy = 0;
        pthread_mutex_unlock(&c->lock);
    }
    return 1;
}

int fs_view_get(fs_cache *c, const dlp_policy *pol, int rootfd, const char *rel, uint64_t max,
                fs_view **out)
{
    const char *ph = dlp_policy_hash(pol);
    struct stat st;
    int r = fs_source_stat(rootfd, rel, &st);
    if (r < 0)
        return r;
    if (S_ISDIR(st.st_mode))
        return -EISDIR;
    if (!S_ISREG(st.st_mode))
        return -EPERM;
    if ((uint64_t)st.st_size > max)
        return -EFBIG;
    fs_view *hit = NULL;
    if (fs_view_peek(c, &st, ph, &hit) == 0) {
        int racy;
        pthread_mutex_lock(&c->lock);
        racy = hit->racy;
        pthread_mutex_unlock(&c->lock);
        if (!racy) {
            *out = hit;
            return 0;
        }
    }

    struct timespec read_at;
    clock_gettime(CLOCK_REALTIME, &read_at);
    fs_source src;
    r = fs_source_read(rootfd, rel, max, &src);
    if (r < 0) {
        fs_view_unref(c, hit);
        return r;
    }
    if (hit) {
        if (racy_still_good(c, hit, &src, &read_at)) {
            fs_source_free(&src);
            *out = hit;
            return 0;
        }
        fs_view_unref(c, hit);
    }
    pthread_mutex_lock(&c->lock);
    c->misses++;
    c->builds++;
    pthread_mutex_unlock(&c->lock);
    fs_view *v = view_build(pol, &src, &read_at);
    fs_source_free(&src);
    if (v == NULL)
        return -ENOMEM;
    log_debug("msg=\"view built\" path=\"%s\" view=%llu source_size=%zu size=%zu status=%d racy=%d",
              rel, (unsigned long long)v->gen, (size_t)src.st.st_size, v->len, v->status, v->racy);

    fs_view *dead = NULL;
    pthread_mutex_lock(&c->lock);
    fs_view *other = lookup_locked(c, &v->key);
    if (other && !other->racy && !v->racy) {
        /* Built concurrently by another thread from the same settled
         * version: the same bytes; keep one. */
        other->refs++;
        pthread_mutex_unlock(&c->lock);
        view_destroy(v);
        *out = other;
        return 0;
    }
    if (other && cache_remove(c, other)) { /* a racy entry is replaced by the newest read */
        other->hnext = dead;
        dead = other;
    }
    v->refs = 2; /* the cache's and the caller's */
    v->cached = 1;
    unsigned b = key_bucket(&v->key);
    v->hnext = c->buckets[b];
    c->buckets[b] = v;
    lru_push_front(c, v);
    c->bytes += v->len;
    c->count++;
    cache_trim(c, &dead);
    pthread_mutex_unlock(&c->lock);
    free_list(dead);
    *out = v;
    return 0;
}

void fs_cache_get_stats(fs_cache *c, fs_cache_stats *out)
{
    pthread_mutex_lock(&c->lock);
    out->bytes = c->bytes;
    out->count = c->count;
    out->hits = c->hits;
    out->misses = c->misses;
    out->builds = c->builds;
    out->evictions = c->evictions;
    pthread_mutex_unlock(&c->lock);
}
