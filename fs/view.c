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
 * Optionally, views evicted from memory are kept zstd-compressed on disk
 * (spill): decompressing is an order of magnitude faster than sanitizing
 * again. Only served bytes go to disk, never source bytes; the key and the
 * view's SHA-256 stay in memory and a spilled view is used only when its
 * bytes hash to that SHA-256, so a damaged or altered spill file is rebuilt
 * from the source, never served.
 *
 * Must never: hand out a view whose key does not match the caller's fresh
 * stat of the source, or serve data when dlp_sanitize() did not return 0.
 */
#include "fs/fs_i.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define CACHE_BUCKETS 16384u
/* How close (ns) a source's mtime/ctime may be to the moment we read it for
 * the view to count as racy. Kernel timestamps come from a coarse clock (one
 * tick, at most 10 ms at HZ=100); the margin is generous. */
#define RACY_WINDOW_NS 200000000LL

/* A view kept on disk: everything but the bytes, in memory. */
typedef struct spilled {
    fs_view *meta;          /* a view without data (len = the view's length) */
    uint64_t id;            /* file "<id>.zst" in the spill directory */
    uint64_t clen;
    struct spilled *hnext, *lprev, *lnext;
} spilled;

/* Views smaller than this are cheaper to rebuild than to spill. */
#define SPILL_MIN_BYTES (64u << 10)
#define SPILL_ZSTD_LEVEL 1

struct fs_cache {
    pthread_mutex_t lock;
    /* spill (dirfd < 0: off) */
    int spill_dirfd;
    char spill_path[4096];
    uint64_t spill_cap, spill_bytes, spill_count, spill_next_id, spill_hits, spill_bad;
    spilled *spill_buckets[CACHE_BUCKETS];
    spilled *spill_head, *spill_tail;
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
    c->spill_dirfd = -1;
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
        v->evicted = 1;
        if (cache_remove(c, v)) {
            v->hnext = *freelist;
            *freelist = v;
        }
    }
}

static void spill_out(fs_cache *c, const fs_view *v);

/* Destroy views that left the cache with their last reference; evicted ones
 * (spill != NULL) are first kept on disk when spilling is on. */
static void free_list_spill(fs_cache *spill, fs_view *v)
{
    while (v) {
        fs_view *n = v->hnext;
        if (spill)
            spill_out(spill, v);
        view_destroy(v);
        v = n;
    }
}
#define free_list(v) free_list_spill(NULL, (v))

static void spill_drop_all(fs_cache *c);

void fs_cache_free(fs_cache *c)
{
    if (c == NULL)
        return;
    fs_cache_clear(c);
    if (c->spill_dirfd >= 0) {
        close(c->spill_dirfd);
        if (rmdir(c->spill_path) < 0)
            log_warn("msg=\"cannot remove spill directory\" dir=\"%s\" err=\"%s\"", c->spill_path,
                     strerror(errno));
    }
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
    spill_drop_all(c); /* keyed by the old policy or about to be orphaned */
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
    if (last && v->evicted)
        spill_out(c, v); /* evicted while an open file still held it */
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
    snprintf(v->extractor, sizeof v->extractor, "%s", res.extractor);
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

/* ---- spill ------------------------------------------------------------------ */

int fs_cache_spill(fs_cache *c, const char *dir, uint64_t cap)
{
    char tmpl[4096];
    if ((size_t)snprintf(tmpl, sizeof tmpl, "%s/sluicefs-spill.XXXXXX", dir) >= sizeof tmpl)
        return -ENAMETOOLONG;
    if (mkdtemp(tmpl) == NULL) /* mode 0700 */
        return -errno;
    int fd = open(tmpl, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int e = -errno;
        rmdir(tmpl);
        return e;
    }
    snprintf(c->spill_path, sizeof c->spill_path, "%s", tmpl);
    c->spill_dirfd = fd;
    c->spill_cap = cap;
    return 0;
}

const char *fs_cache_spill_path(const fs_cache *c)
{
    return c->spill_dirfd >= 0 ? c->spill_path : NULL;
}

static void spill_name(uint64_t id, char out[32])
{
    snprintf(out, 32, "%llu.zst", (unsigned long long)id);
}

/* Callers hold c->lock. Unlinks the file too (a cheap metadata call). */
static void spill_remove_locked(fs_cache *c, spilled *e)
{
    spilled **pp = &c->spill_buckets[key_bucket(&e->meta->key)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    if (e->lprev)
        e->lprev->lnext = e->lnext;
    else
        c->spill_head = e->lnext;
    if (e->lnext)
        e->lnext->lprev = e->lprev;
    else
        c->spill_tail = e->lprev;
    c->spill_bytes -= e->clen;
    c->spill_count--;
    char name[32];
    spill_name(e->id, name);
    unlinkat(c->spill_dirfd, name, 0);
    view_destroy(e->meta);
    free(e);
}

static void spill_drop_all(fs_cache *c)
{
    if (c->spill_dirfd < 0)
        return;
    pthread_mutex_lock(&c->lock);
    while (c->spill_head)
        spill_remove_locked(c, c->spill_head);
    pthread_mutex_unlock(&c->lock);
}

/* A copy of everything about `v` but its bytes. */
static fs_view *meta_copy(const fs_view *v)
{
    fs_view *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->key = v->key;
    m->status = v->status;
    m->len = v->len;
    memcpy(m->source_sha256, v->source_sha256, sizeof m->source_sha256);
    memcpy(m->served_sha256, v->served_sha256, sizeof m->served_sha256);
    memcpy(m->mime, v->mime, sizeof m->mime);
    memcpy(m->reason, v->reason, sizeof m->reason);
    memcpy(m->extractor, v->extractor, sizeof m->extractor);
    m->gen = v->gen;
    if (v->nhits) {
        m->hits = calloc(v->nhits, sizeof *m->hits);
        if (m->hits == NULL) {
            free(m);
            return NULL;
        }
        for (size_t i = 0; i < v->nhits; i++) {
            m->hits[i].count = v->hits[i].count;
            m->hits[i].rule_id = strdup(v->hits[i].rule_id);
            m->nhits = i + 1;
            if (m->hits[i].rule_id == NULL) {
                view_destroy(m);
                return NULL;
            }
        }
    }
    return m;
}

/* Write an evicted view to disk (outside the lock); failures only cost a
 * rebuild later. */
static void spill_out(fs_cache *c, const fs_view *v)
{
    if (c->spill_dirfd < 0 || v->status != 0 || v->racy || v->len < SPILL_MIN_BYTES)
        return;
    size_t bound = ZSTD_compressBound(v->len);
    uint8_t *z = malloc(bound);
    fs_view *m = meta_copy(v);
    spilled *e = calloc(1, sizeof *e);
    size_t zlen = z ? ZSTD_compress(z, bound, v->data, v->len, SPILL_ZSTD_LEVEL) : 0;
    if (!z || !m || !e || ZSTD_isError(zlen) || zlen > c->spill_cap)
        goto fail;
    pthread_mutex_lock(&c->lock);
    e->id = ++c->spill_next_id;
    pthread_mutex_unlock(&c->lock);
    char name[32];
    spill_name(e->id, name);
    int fd = openat(c->spill_dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        goto fail;
    int w = write_full(fd, z, zlen);
    close(fd);
    if (w < 0) {
        unlinkat(c->spill_dirfd, name, 0);
        goto fail;
    }
    free(z);
    e->meta = m;
    e->clen = zlen;
    pthread_mutex_lock(&c->lock);
    unsigned b = key_bucket(&m->key);
    e->hnext = c->spill_buckets[b];
    c->spill_buckets[b] = e;
    e->lprev = NULL;
    e->lnext = c->spill_head;
    if (c->spill_head)
        c->spill_head->lprev = e;
    c->spill_head = e;
    if (!c->spill_tail)
        c->spill_tail = e;
    c->spill_bytes += zlen;
    c->spill_count++;
    while (c->spill_bytes > c->spill_cap && c->spill_tail && c->spill_tail != e)
        spill_remove_locked(c, c->spill_tail);
    pthread_mutex_unlock(&c->lock);
    return;
fail:
    free(z);
    view_destroy(m);
    free(e);
}

/* A spilled view for key `k`, read back and verified; NULL when there is
 * none or it does not verify (then it is dropped). */
static fs_view *spill_in(fs_cache *c, const fs_view_key *k)
{
    if (c->spill_dirfd < 0)
        return NULL;
    pthread_mutex_lock(&c->lock);
    spilled *e = c->spill_buckets[key_bucket(k)];
    while (e && !key_equal(&e->meta->key, k))
        e = e->hnext;
    fs_view *v = NULL;
    uint64_t id = 0, clen = 0;
    if (e) {
        v = meta_copy(e->meta);
        id = e->id;
        clen = e->clen;
    }
    pthread_mutex_unlock(&c->lock);
    if (v == NULL)
        return NULL;
    char name[32];
    spill_name(id, name);
    uint8_t *z = malloc(clen ? clen : 1);
    v->data = malloc(v->len ? v->len : 1);
    int ok = 0;
    int fd = openat(c->spill_dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    const int taken = fd < 0 && errno == ENOENT; /* another thread took it back first */
    if (fd >= 0 && z && v->data) {
        ssize_t n = read_full(fd, z, clen);
        if (n == (ssize_t)clen) {
            size_t d = ZSTD_decompress(v->data, v->len, z, clen);
            uint8_t md[SHA256_LEN];
            char hex[SHA256_HEX_LEN];
            if (!ZSTD_isError(d) && d == v->len && sha256_buf(v->data, v->len, md) == 0) {
                hex_encode(md, SHA256_LEN, hex);
                ok = strcmp(hex, v->served_sha256) == 0;
            }
        }
    }
    if (fd >= 0)
        close(fd);
    free(z);
    pthread_mutex_lock(&c->lock);
    /* Taken back into memory (or found bad): the disk copy goes either way;
     * the view returns to disk when evicted again. */
    for (spilled *x = c->spill_buckets[key_bucket(k)]; x; x = x->hnext)
        if (x->id == id) {
            spill_remove_locked(c, x);
            break;
        }
    if (ok)
        c->spill_hits++;
    else if (!taken)
        c->spill_bad++;
    pthread_mutex_unlock(&c->lock);
    if (!ok && taken) {
        view_destroy(v);
        return NULL;
    }
    if (!ok) {
        log_warn("msg=\"spilled view failed verification, rebuilding from the source\" file=%s", name);
        view_destroy(v);
        return NULL;
    }
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

/* Put a new view (one reference: the caller's) into the cache; *out gets a
 * referenced view for the same key (this one or an equal one found there). */
static int cache_insert(fs_cache *c, fs_view *v, fs_view **out)
{
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
    free_list_spill(c, dead);
    *out = v;
    return 0;
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
    if (hit == NULL) {
        fs_view_key k;
        fs_view_key_from_stat(&st, ph, &k);
        fs_view *sv = spill_in(c, &k);
        if (sv) {
            log_debug("msg=\"view from spill\" path=\"%s\" view=%llu size=%zu", rel,
                      (unsigned long long)sv->gen, sv->len);
            return cache_insert(c, sv, out);
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

    return cache_insert(c, v, out);
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
    out->spill_bytes = c->spill_bytes;
    out->spill_count = c->spill_count;
    out->spill_hits = c->spill_hits;
    out->spill_bad = c->spill_bad;
    pthread_mutex_unlock(&c->lock);
}
