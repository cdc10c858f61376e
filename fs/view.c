/* fs/view.c — sanitized views of source files and the size-capped cache that
 * keeps them between opens.
 *
 * A view is built from one stable read of the source (one fd, checked
 * unchanged at the end) by one sanitization of the whole content: one
 * dlp_sanitize() call, or for large text one dlp_stream fed in order (see
 * "streamed builds"), so every byte served comes out of a single
 * sanitization of a single version of the file: no offset can see a mix of
 * versions or of policies. Builds run on a few build threads of their own,
 * one per version at a time, within a memory budget. Views are immutable and reference
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
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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
    uint64_t held_bytes; /* see fs_view.held */
    uint64_t reserved;   /* views of large files being built (cache_reserve) */
    uint64_t hits, misses, builds, evictions;
    /* views under construction (see fs_cache_set_build_limits) */
    pthread_cond_t built;         /* broadcast whenever a build ends */
    struct inflight *inflight;    /* builds running or waiting for room */
    uint64_t build_budget, build_used, build_peak, build_waits, room_waits, next_build_id;
    uint64_t prebuilds, prebuild_hits, prebuild_skipped;
    uint64_t recycled; /* builds whose view buffer was an evicted view's memory */
    unsigned build_max, builds_running;
    /* Builds run on a few threads of their own, started at the first build
     * (not before: the daemon forks after making the cache): what a build
     * keeps per thread (a libmagic handle maps the whole magic database,
     * about 7 MB; the engine's scratch) then exists build_max times, not once
     * per FUSE worker thread. */
    struct build_job *jobs_head, *jobs_tail;
    pthread_cond_t job_ready;
    pthread_t *pool;
    unsigned npool;
    int pool_stop;
};

/* A build in progress (on its builder's stack): opens of the same version
 * wait for it instead of building the same view again. */
typedef struct inflight {
    fs_view_key key;
    uint64_t id;
    struct inflight *next;
} inflight;

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
    pthread_cond_init(&c->built, NULL);
    pthread_cond_init(&c->job_ready, NULL);
    c->cap = cap;
    c->spill_dirfd = -1;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    fs_cache_set_build_limits(c, FS_BUILD_MEMORY, ncpu > 2 ? (unsigned)ncpu : 2);
    *out = c;
    return 0;
}

void fs_cache_set_build_limits(fs_cache *c, uint64_t bytes, unsigned builds)
{
    pthread_mutex_lock(&c->lock);
    c->build_budget = bytes;
    if (builds)
        c->build_max = builds;
    pthread_mutex_unlock(&c->lock);
}

static void view_destroy(fs_view *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->nhits; i++)
        free((char *)v->hits[i].rule_id);
    free(v->hits);
    if (v->map_len)
        munmap(v->data, v->map_len);
    else
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
    if (--v->refs == 0)
        return 1;
    v->held = 1; /* still in memory for its holders: counted until released */
    c->held_bytes += v->len;
    return 0;
}

static void cache_trim(fs_cache *c, fs_view **freelist)
{
    while (c->bytes + c->held_bytes + c->reserved > c->cap && c->lru_tail != NULL) {
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
    pthread_mutex_lock(&c->lock);
    c->pool_stop = 1;
    pthread_cond_broadcast(&c->job_ready);
    pthread_mutex_unlock(&c->lock);
    for (unsigned i = 0; i < c->npool; i++)
        pthread_join(c->pool[i], NULL);
    free(c->pool);
    pthread_cond_destroy(&c->job_ready);
    pthread_cond_destroy(&c->built);
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
        if (v->prebuilt) {
            v->prebuilt = 0;
            c->prebuild_hits++;
        }
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
    if (last && v->held)
        c->held_bytes -= v->len;
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

/* ---- streamed builds ----------------------------------------------------------
 * A large text file is not read whole and then sanitized: it is read front to
 * back in pieces that are hashed as they arrive and fed to a dlp_stream, which
 * writes its output into the view itself (a dlp_sink: no buffer of its own to
 * copy from), hashed as it is committed. Memory is the
 * view plus one piece, not the file twice or three times, and no byte is
 * gone over more often than needed. The engine's stream gives the same bytes
 * as dlp_sanitize() over the whole input (dlp.h); what dlp_sanitize decides
 * before it scans (the policy's size limit, the type from the first MiB, NUL
 * bytes in 8-bit text) is decided here the same way, as `sluice scan` does
 * (cli/cmd_scan.c), so a view is still exactly what `sluice scan` prints.
 * UTF-16 and documents need the whole input: they go through dlp_sanitize().
 *
 * Pieces are libmagic's window (dlp_classify looks at the first MiB), so the
 * first piece decides the type exactly as a whole read would. Smaller files
 * are read whole and go through dlp_sanitize() as before. */
#define BUILD_CHUNK (1u << 20)
/* View buffers this large or larger are mappings of their own: munmap
 * gives the memory back at once when the view goes (a heap would keep it).
 * The feeder faults them in ahead of the engine in bulk (MADV_POPULATE_WRITE),
 * in 4 KiB pages: transparent huge pages cost more there, not less, in a
 * virtual machine (zeroing fresh 2 MiB pages measured 1.1-1.7 s per GB of
 * view in a first read of 1 GiB, 4 KiB pages 0.1-0.9 s, side by side). */
#define VBUF_MAP_MIN (2u << 20)

uint64_t fs_build_cost(uint64_t size)
{
    /* whole: source + dlp_sanitize's output and stream buffers; streamed:
     * the feeder's pieces + the engine's round buffer. The view of a file of
     * BUILD_CHUNK or more counts against the cache instead (cache_reserve). */
    if (size < BUILD_CHUNK)
        return 3 * size + (64u << 10);
    return 3 * BUILD_CHUNK + (1u << 20);
}

/* What the view of a large file is charged against the cache while built:
 * its size, +1/8 for labels longer than what they replace. */
static uint64_t view_reserve_size(uint64_t size)
{
    return size < BUILD_CHUNK ? 0 : size + size / 8;
}


typedef struct vbuf {
    uint8_t *data;
    size_t len, cap;
    int mapped;
} vbuf;

static void vbuf_free(vbuf *b)
{
    if (b->mapped)
        munmap(b->data, b->cap);
    else
        free(b->data);
    memset(b, 0, sizeof *b);
}

static int vbuf_reserve(vbuf *b, size_t need)
{
    if (need <= b->cap)
        return 0;
    size_t ncap = b->cap + b->cap / 2;
    if (ncap < need)
        ncap = need;
    if (ncap < VBUF_MAP_MIN) {
        uint8_t *n = realloc(b->data, ncap);
        if (n == NULL)
            return -ENOMEM;
        b->data = n;
        b->cap = ncap;
        return 0;
    }
    ncap = (ncap + VBUF_MAP_MIN - 1) & ~(size_t)(VBUF_MAP_MIN - 1);
    void *n;
    if (b->mapped) {
        n = mremap(b->data, b->cap, ncap, MREMAP_MAYMOVE);
        if (n == MAP_FAILED)
            return -ENOMEM;
    } else {
        n = mmap(NULL, ncap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (n == MAP_FAILED)
            return -ENOMEM;
        madvise(n, ncap, MADV_NOHUGEPAGE);
        if (b->len)
            memcpy(n, b->data, b->len);
        free(b->data);
        b->mapped = 1;
    }
    b->data = n;
    b->cap = ncap;
    return 0;
}

/* The view of a large file counts against the cache from the moment its
 * build knows it will make one (type allowed, not when it is done: a
 * refused file takes no room): the least recently used views make room
 * now, so that views and views being built stay within the cache size
 * together, and build memory is only what a build needs besides its view.
 * Idempotent across a build's attempts (*reserved: what it holds).
 *
 * The memory of a view that leaves the cache for this room becomes the new
 * view's buffer when `reuse` is given and still empty: its pages are
 * faulted in already, while fresh ones cost a fault and zeroing each (and,
 * in a virtual machine whose balloon reports free pages to the host, a
 * host fault: 1-2 s per GB measured, against 0.4 s for a recycled page). */
static void cache_reserve(fs_cache *c, uint64_t *reserved, uint64_t want, vbuf *reuse)
{
    if (c == NULL || want <= *reserved)
        return;
    fs_view *dead = NULL;
    pthread_mutex_lock(&c->lock);
    /* Views being built never take more than the cache together: this one
     * waits while others being built would (they hold their room, run, and
     * give it to the cache when done; a build that waits holds none, so
     * builds never wait for each other in a circle). Alone, it goes ahead
     * whatever its size. */
    int waited = 0;
    while (c->reserved - *reserved > 0 && c->reserved - *reserved + want > c->cap && !c->pool_stop) {
        waited = 1;
        pthread_cond_wait(&c->built, &c->lock);
    }
    c->room_waits += (uint64_t)waited;
    c->reserved += want - *reserved;
    *reserved = want;
    cache_trim(c, &dead);
    pthread_mutex_unlock(&c->lock);
    const int had = reuse && reuse->data;
    while (dead) {
        fs_view *v = dead;
        dead = v->hnext;
        spill_out(c, v); /* evicted: kept on disk when spilling is on */
        if (reuse && reuse->data == NULL && v->map_len && v->data) {
            reuse->data = v->data;
            reuse->cap = v->map_len;
            reuse->mapped = 1;
            v->data = NULL;
            v->map_len = 0;
        }
        view_destroy(v);
    }
    if (reuse && reuse->data && !had) {
        pthread_mutex_lock(&c->lock);
        c->recycled++;
        pthread_mutex_unlock(&c->lock);
    }
}

/* Hand the bytes to `v`, giving back the unused tail of a mapping. */
static void vbuf_give(vbuf *b, fs_view *v)
{
    if (b->mapped) {
        const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
        size_t keep = (b->len + pg - 1) & ~(pg - 1);
        if (keep == 0)
            keep = pg;
        if (keep < b->cap && mremap(b->data, b->cap, keep, 0) != MAP_FAILED)
            b->cap = keep; /* shrinking in place never moves */
        if (b->len < keep && b->len < b->cap) /* recycled memory: nothing of another view past the end */
            memset(b->data + b->len, 0, (keep < b->cap ? keep : b->cap) - b->len);
        v->map_len = b->cap;
    }
    v->data = b->data;
    v->len = b->len;
    memset(b, 0, sizeof *b);
}

typedef struct builder {
    vbuf out;
    sha256_ctx *served;
    pthread_mutex_t pop; /* see feeder: held while the buffer is faulted in, moved or hashed */
    int no_populate;
    /* The served SHA-256 runs on the feeder's thread while the engine
     * works (offload): it hashes out.data[hashed, published) under `pop`,
     * in order; what is left when the feeder stops is hashed here. */
    int offload;
    size_t hashed, published; /* published: under the feeder's lock */
    struct feeder *f;
    int hash_err;
} builder;

static void feeder_publish(struct feeder *f, size_t len);

/* The engine writes its output straight into the view (dlp_sink): room
 * for `len` bytes past the view's end, then the commit of what it wrote
 * there. The feeder only reads [hashed, published), never past out.len,
 * so the engine writes the room without `pop`; only moving the buffer
 * takes it. */
static void *build_reserve(void *ctx, size_t len)
{
    builder *b = ctx;
    if (b->out.len + len > b->out.cap) { /* past the reservation: the buffer may move */
        pthread_mutex_lock(&b->pop);
        b->no_populate = 1;
        int r = vbuf_reserve(&b->out, b->out.len + len);
        pthread_mutex_unlock(&b->pop);
        if (r < 0)
            return NULL;
    }
    return b->out.data + b->out.len;
}

static int build_commit(void *ctx, size_t len)
{
    builder *b = ctx;
    if (len == 0)
        return 0;
    b->out.len += len;
    if (b->offload) {
        feeder_publish(b->f, b->out.len);
        return 0;
    }
    if (b->hashed != b->out.len - len) /* catch up after the feeder stopped */
        return -EIO;
    b->hashed = b->out.len;
    return sha256_update(b->served, b->out.data + b->hashed - len, len) < 0 ? -EIO : 0;
}

/* Hash the served bytes the feeder has not: after feeder_stop(), before
 * any further output. */
static int served_catch_up(builder *b)
{
    b->offload = 0;
    if (b->hash_err)
        return -EIO;
    if (b->hashed < b->out.len && sha256_update(b->served, b->out.data + b->hashed, b->out.len - b->hashed) < 0)
        return -EIO;
    b->hashed = b->out.len;
    return 0;
}

/* ---- the feeder: reading ahead on another processor -------------------------
 * While the engine scans one piece, a helper thread reads the next ones
 * (up to FEED_RING pieces ahead), hashes them for the source's SHA-256, and
 * faults in the view's buffer ahead of the engine's output (zeroing fresh
 * memory is a cost of its own): a view of a large file is built on two
 * processors, the engine's work alone on the build thread. The engine still
 * gets the pieces in order, from one stream; only the work around it moves.
 * The served SHA-256 (the view's bytes as the engine writes them) is taken
 * there too, a piece behind the engine. Without a thread (none could be
 * started) all of it happens inline. */
#define FEED_RING 3

typedef struct feeder {
    fs_source_stream *ss;
    sha256_ctx *sh;
    uint8_t *ring; /* FEED_RING pieces of BUILD_CHUNK */
    ssize_t len[FEED_RING];
    unsigned head, tail; /* consumer's next, producer's next; tail - head pieces ready */
    ssize_t end;         /* once done: 0 (end of file) or -errno */
    int done, stop, threaded;
    pthread_mutex_t m;
    pthread_cond_t cv;
    pthread_t th;
    /* prefaulting the view's buffer (NULL: none); pop guards it against
     * the builder moving the buffer (vbuf growing past its reservation) */
    builder *b;
    uint64_t read_total;
    size_t populated;
} feeder;

/* The builder wrote the view up to `len` (its served hash is offloaded). */
static void feeder_publish(feeder *f, size_t len)
{
    pthread_mutex_lock(&f->m);
    f->b->published = len;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->m);
}

/* On the feeder's thread, f->m not held: hash the view's bytes in
 * [hashed, upto), at most a piece at a time. */
static void feed_hash_served(feeder *f, size_t upto)
{
    builder *b = f->b;
    pthread_mutex_lock(&b->pop); /* the buffer does not move meanwhile */
    size_t n = upto - b->hashed;
    if (n > BUILD_CHUNK)
        n = BUILD_CHUNK;
    if (!b->hash_err && sha256_update(b->served, b->out.data + b->hashed, n) < 0)
        b->hash_err = 1;
    b->hashed += n;
    pthread_mutex_unlock(&b->pop);
}

/* Read and hash the next piece into slot `slot`: bytes, 0 at the end, -errno. */
static ssize_t feed_one(feeder *f, unsigned slot)
{
    uint8_t *p = f->ring + (size_t)slot * BUILD_CHUNK;
    ssize_t n = fs_source_stream_read(f->ss, p, BUILD_CHUNK);
    if (n > 0 && sha256_update(f->sh, p, (size_t)n) < 0)
        n = -EIO;
    if (n > 0)
        f->read_total += (uint64_t)n;
    return n;
}

/* Fault in the view's buffer up to a little past what was read so far. */
static void feed_populate(feeder *f)
{
    builder *b = f->b;
    if (b == NULL)
        return;
    pthread_mutex_lock(&b->pop);
    if (!b->no_populate && b->out.mapped) {
        size_t want = (size_t)f->read_total + VBUF_MAP_MIN;
        want = (want + VBUF_MAP_MIN - 1) & ~(size_t)(VBUF_MAP_MIN - 1);
        if (want > b->out.cap)
            want = b->out.cap;
        if (want > f->populated &&
            madvise(b->out.data + f->populated, want - f->populated, MADV_POPULATE_WRITE) == 0)
            f->populated = want;
        else if (want > f->populated)
            b->no_populate = 1; /* not supported here: the engine's writes fault them in */
    }
    pthread_mutex_unlock(&b->pop);
}

static void *feeder_main(void *arg)
{
    feeder *f = arg;
    pthread_mutex_lock(&f->m);
    for (;;) {
        builder *b = f->b && f->b->offload ? f->b : NULL;
        /* b->hashed is only written on this thread while it runs */
        while ((f->done || f->tail - f->head == FEED_RING) && !f->stop &&
               !(b && b->hashed < b->published))
            pthread_cond_wait(&f->cv, &f->m);
        if (f->stop)
            break;
        if (b && b->hashed < b->published && (f->done || f->tail - f->head > 0)) {
            /* the engine's output first while it has input to go on with */
            const size_t upto = b->published;
            pthread_mutex_unlock(&f->m);
            feed_hash_served(f, upto);
            pthread_mutex_lock(&f->m);
            continue;
        }
        const unsigned slot = f->tail % FEED_RING;
        pthread_mutex_unlock(&f->m);
        ssize_t n = feed_one(f, slot);
        if (n > 0)
            feed_populate(f);
        pthread_mutex_lock(&f->m);
        if (n <= 0) {
            f->end = n;
            f->done = 1;
            pthread_cond_broadcast(&f->cv);
            continue; /* the served hash goes on until feeder_stop() */
        }
        f->len[slot] = n;
        f->tail++;
        pthread_cond_broadcast(&f->cv);
    }
    pthread_mutex_unlock(&f->m);
    return NULL;
}

/* The first piece is already in slot 0 (n0 bytes, not hashed yet). */
static int feeder_start(feeder *f, fs_source_stream *ss, sha256_ctx *sh, uint8_t *ring, ssize_t n0,
                        builder *b)
{
    memset(f, 0, sizeof *f);
    if (sha256_update(sh, ring, (size_t)n0) < 0)
        return -EIO;
    pthread_mutex_init(&f->m, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->ss = ss;
    f->sh = sh;
    f->ring = ring;
    f->b = b;
    f->read_total = (uint64_t)n0;
    f->len[0] = n0;
    f->tail = 1;
    feed_populate(f);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (b) { /* before the thread starts: it reads b->offload */
        b->f = f;
        b->offload = 1;
    }
    f->threaded = pthread_create(&f->th, NULL, feeder_main, f) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (b && !f->threaded)
        b->offload = 0;
    return 0;
}

/* The next piece in order: bytes (*p points at them), 0 at the end, -errno. */
static ssize_t feeder_next(feeder *f, const uint8_t **p)
{
    pthread_mutex_lock(&f->m);
    if (!f->threaded && f->head == f->tail && !f->done) {
        ssize_t n = feed_one(f, f->tail % FEED_RING);
        if (n > 0) {
            f->len[f->tail % FEED_RING] = n;
            f->tail++;
        } else {
            f->end = n;
            f->done = 1;
        }
    }
    while (f->head == f->tail && !f->done)
        pthread_cond_wait(&f->cv, &f->m);
    ssize_t n = f->end;
    if (f->head != f->tail) {
        const unsigned slot = f->head % FEED_RING;
        *p = f->ring + (size_t)slot * BUILD_CHUNK;
        n = f->len[slot];
    }
    pthread_mutex_unlock(&f->m);
    if (!f->threaded && n > 0)
        feed_populate(f);
    return n;
}

/* The consumer is finished with the piece feeder_next gave. */
static void feeder_release(feeder *f)
{
    pthread_mutex_lock(&f->m);
    f->head++;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->m);
}

static void feeder_stop(feeder *f)
{
    if (f->ring == NULL)
        return;
    pthread_mutex_lock(&f->m);
    f->stop = 1;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->m);
    if (f->threaded)
        pthread_join(f->th, NULL);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->m);
    f->ring = NULL;
}

/* A refusal as view_build words it for the same dlp_sanitize() outcome. */
static void view_refuse(fs_view *v, int r, const char *why)
{
    v->status = r == -EACCES ? -EACCES : -EIO;
    /* The longest prefix is 17 bytes: the reason is cut to fit. */
    snprintf(v->reason, sizeof v->reason, "%s%.180s", r == -EACCES ? "type denied: " : "could not check: ",
             why && why[0] ? why : strerror(-r));
}

static int copy_hits(fs_view *v, const dlp_rule_hits *h, size_t n)
{
    if (n == 0)
        return 0;
    v->hits = calloc(n, sizeof *v->hits);
    if (v->hits == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        v->hits[i].rule_id = strdup(h[i].rule_id ? h[i].rule_id : "?");
        v->hits[i].count = h[i].count;
        v->nhits = i + 1;
        if (v->hits[i].rule_id == NULL)
            return -ENOMEM;
    }
    return 0;
}

/* One attempt at the view of `rel`: 0 with *out (maybe a refusal view),
 * -EAGAIN when the source changed while read (try again), or the source's
 * own error (-ENOENT, -EFBIG, -EPERM...). */
static int view_build_stream(fs_cache *c, uint64_t *reserved, const dlp_policy *pol, int rootfd,
                             const char *rel, uint64_t max, uint8_t *ring, fs_view **out)
{
    struct timespec read_at;
    clock_gettime(CLOCK_REALTIME, &read_at);
    fs_source_stream ss;
    int r = fs_source_stream_open(rootfd, rel, max, &ss);
    if (r < 0)
        return r;
    const size_t size = (size_t)ss.st.st_size;
    if (size < BUILD_CHUNK) { /* small: whole, one dlp_sanitize() */
        fs_source src = {.data = malloc(size + 1)};
        if (src.data == NULL) {
            fs_source_stream_close(&ss);
            return -ENOMEM;
        }
        ssize_t n = fs_source_stream_read(&ss, src.data, size);
        r = n < 0 ? (int)n : fs_source_stream_end(&ss);
        if (n < 0)
            fs_source_stream_close(&ss);
        if (r < 0) {
            fs_source_free(&src);
            return r;
        }
        src.len = (size_t)n;
        src.st = ss.st;
        fs_view *v = view_build(pol, &src, &read_at);
        fs_source_free(&src);
        if (v == NULL)
            return -ENOMEM;
        *out = v;
        return 0;
    }

    enum { M_REFUSE, M_WHOLE, M_STREAM } mode = M_STREAM;
    int vr = 0;              /* the engine's verdict so far (dlp_sanitize's return) */
    char why[200] = "";      /* and its reason */
    builder b = {0};
    pthread_mutex_init(&b.pop, NULL);
    dlp_stream *ds = NULL;
    vbuf whole = {0};
    feeder fd = {0};
    dlp_type t;
    memset(&t, 0, sizeof t);
    uint8_t *const own = ring ? NULL : malloc((size_t)FEED_RING * BUILD_CHUNK);
    uint8_t *chunk = ring ? ring : own;
    sha256_ctx *sh = sha256_new();
    b.served = sha256_new();
    fs_view *v = calloc(1, sizeof *v);
    if (!chunk || !sh || !b.served || !v) {
        r = -ENOMEM;
        goto fail;
    }
    ssize_t n = fs_source_stream_read(&ss, chunk, BUILD_CHUNK);
    if (n <= 0) { /* shorter than at open: changed */
        r = n < 0 ? (int)n : -EAGAIN;
        goto fail;
    }
    if (size > dlp_policy_max_size(pol)) {
        vr = -EFBIG;
        snprintf(why, sizeof why, "larger than the policy's limit of %llu bytes",
                 (unsigned long long)dlp_policy_max_size(pol));
        mode = M_REFUSE;
    } else if ((vr = dlp_classify(pol, chunk, (size_t)n, &t)) < 0 || !t.allowed) {
        vr = vr < 0 ? vr : -EACCES;
        snprintf(why, sizeof why, "%s", t.reason);
        mode = M_REFUSE;
    } else if (strncmp(t.encoding, "utf-16", 6) == 0 || t.document) {
        mode = M_WHOLE;
        cache_reserve(c, reserved, view_reserve_size(size), NULL);
        r = vbuf_reserve(&whole, size + 1);
    } else {
        cache_reserve(c, reserved, view_reserve_size(size), &b.out);
        r = vbuf_reserve(&b.out, size + size / 8 + 4096);
        if (r == 0)
            r = dlp_stream_new(pol, NULL, NULL, &b, &ds);
        if (r == 0)
            r = dlp_stream_set_sink(ds, &(const dlp_sink){build_reserve, build_commit});
    }
    if (r < 0 || (r = feeder_start(&fd, &ss, sh, chunk, n, mode == M_STREAM ? &b : NULL)) < 0)
        goto fail;
    const int text8 = strcmp(t.encoding, "binary") != 0;
    const uint8_t *piece = NULL;
    while ((n = feeder_next(&fd, &piece)) > 0) {
        if (mode == M_WHOLE) {
            if ((r = vbuf_reserve(&whole, whole.len + (size_t)n)) < 0)
                goto fail;
            memcpy(whole.data + whole.len, piece, (size_t)n);
            whole.len += (size_t)n;
        } else if (mode == M_STREAM && vr == 0) {
            if (text8 && memchr(piece, 0, (size_t)n)) {
                vr = -EILSEQ;
                snprintf(why, sizeof why, "binary data (NUL bytes) inside a file classified as %s text",
                         t.encoding);
            } else if ((vr = dlp_stream_feed(ds, piece, (size_t)n)) < 0) {
                snprintf(why, sizeof why, "%s", dlp_stream_error(ds) ? dlp_stream_error(ds) : "");
            }
        }
        /* after a refusal, read on only for the source's SHA-256 */
        feeder_release(&fd);
    }
    feeder_stop(&fd);
    if (mode == M_STREAM && vr == 0 && served_catch_up(&b) < 0) {
        vr = -EIO;
        snprintf(why, sizeof why, "could not hash the view");
    }
    if (n < 0) {
        r = (int)n;
        goto fail;
    }
    if ((r = fs_source_stream_end(&ss)) < 0)
        goto fail; /* changed while read: nothing made from it is used */
    free(own);

    if (mode == M_WHOLE) {
        fs_source src = {.data = whole.data, .len = whole.len, .st = ss.st};
        fs_view *wv = view_build(pol, &src, &read_at);
        pthread_mutex_destroy(&b.pop);
        vbuf_free(&whole);
        sha256_free(sh);
        sha256_free(b.served);
        free(v);
        if (wv == NULL)
            return -ENOMEM;
        *out = wv;
        return 0;
    }
    fs_view_key_from_stat(&ss.st, dlp_policy_hash(pol), &v->key);
    v->racy = is_racy(&ss.st, &read_at);
    v->gen = atomic_fetch_add(&g_view_gen, 1) + 1;
    snprintf(v->mime, sizeof v->mime, "%s", t.mime);
    uint8_t md[SHA256_LEN];
    r = sha256_final(sh, md);
    sh = NULL;
    if (r < 0) {
        vr = -EIO;
        snprintf(why, sizeof why, "could not hash the source");
    } else {
        hex_encode(md, SHA256_LEN, v->source_sha256);
    }
    if (mode == M_STREAM && vr == 0 && (vr = dlp_stream_finish(ds)) < 0)
        snprintf(why, sizeof why, "%s", dlp_stream_error(ds) ? dlp_stream_error(ds) : "");
    if (vr == 0) {
        size_t nh;
        const dlp_rule_hits *h = dlp_stream_hits(ds, &nh);
        r = copy_hits(v, h, nh);
        if (r == 0) {
            r = sha256_final(b.served, md);
            b.served = NULL;
        }
        if (r < 0) {
            vr = -ENOMEM;
            snprintf(why, sizeof why, "out of memory building the view");
        } else {
            hex_encode(md, SHA256_LEN, v->served_sha256);
            vbuf_give(&b.out, v);
        }
    }
    if (vr < 0)
        view_refuse(v, vr, why);
    dlp_stream_free(ds);
    vbuf_free(&b.out);
    sha256_free(b.served);
    pthread_mutex_destroy(&b.pop);
    *out = v;
    return 0;
fail:
    feeder_stop(&fd);
    fs_source_stream_close(&ss);
    free(own);
    sha256_free(sh);
    sha256_free(b.served);
    dlp_stream_free(ds);
    vbuf_free(&b.out);
    vbuf_free(&whole);
    pthread_mutex_destroy(&b.pop);
    if (v)
        view_destroy(v);
    return r;
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

/* A racy cached view `v` (held) against a fresh read of the source, hashed
 * in pieces: the same bytes (and identity) keep it, and once the source is
 * old enough it stops being racy. 1: v is good; 0: it is not (the caller
 * builds anew); negative: the source cannot be read. */
static int racy_still_good(fs_cache *c, fs_view *v, int rootfd, const char *rel, uint64_t max)
{
    struct timespec read_at;
    clock_gettime(CLOCK_REALTIME, &read_at);
    fs_source_stream ss;
    int r = fs_source_stream_open(rootfd, rel, max, &ss);
    if (r < 0)
        return r == -EAGAIN ? 0 : r;
    uint8_t *chunk = malloc(BUILD_CHUNK);
    sha256_ctx *sh = sha256_new();
    ssize_t n = chunk && sh ? 1 : -ENOMEM;
    while (n > 0 && (n = fs_source_stream_read(&ss, chunk, BUILD_CHUNK)) > 0)
        if (sha256_update(sh, chunk, (size_t)n) < 0)
            n = -EIO;
    free(chunk);
    if (n < 0) {
        fs_source_stream_close(&ss);
        sha256_free(sh);
        return (int)n;
    }
    uint8_t md[SHA256_LEN];
    char hex[SHA256_HEX_LEN];
    r = fs_source_stream_end(&ss);
    if (r < 0) {
        sha256_free(sh);
        return r == -EAGAIN ? 0 : r;
    }
    if (sha256_final(sh, md) < 0)
        return 0;
    hex_encode(md, SHA256_LEN, hex);
    fs_view_key k;
    fs_view_key_from_stat(&ss.st, v->key.policy_hash, &k);
    if (!key_equal(&k, &v->key) || strcmp(hex, v->source_sha256) != 0)
        return 0;
    if (!is_racy(&ss.st, &read_at)) {
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

static inflight *inflight_find(fs_cache *c, const fs_view_key *k)
{
    for (inflight *f = c->inflight; f; f = f->next)
        if (key_equal(&f->key, k))
            return f;
    return NULL;
}

static int inflight_running(fs_cache *c, uint64_t id)
{
    for (inflight *f = c->inflight; f; f = f->next)
        if (f->id == id)
            return 1;
    return 0;
}

/* ---- build threads -------------------------------------------------------- */

typedef struct build_job {
    fs_cache *c;
    uint64_t reserved; /* of the cache, for the view (cache_reserve) */
    const dlp_policy *pol; /* the caller holds it (and waits) for the job's life */
    int rootfd;
    const char *rel;
    uint64_t max;
    fs_view *v;
    int r, done;
    struct build_job *next;
} build_job;

/* ring: FEED_RING * BUILD_CHUNK bytes to read into, or NULL */
static void run_job(build_job *j, uint8_t *piece)
{
    j->r = -EAGAIN;
    for (int i = 0; i < FS_SOURCE_READ_ATTEMPTS && j->r == -EAGAIN; i++) {
        if (i > 0)
            fs_source_settle(i);
        j->r = view_build_stream(j->c, &j->reserved, j->pol, j->rootfd, j->rel, j->max, piece, &j->v);
    }
}

static void *builder_main(void *arg)
{
    fs_cache *c = arg;
    /* The source pieces for the thread's life: fresh memory per build would
     * be a page fault per 4 KiB each time. */
    uint8_t *piece = malloc((size_t)FEED_RING * BUILD_CHUNK);
    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (c->jobs_head == NULL && !c->pool_stop)
            pthread_cond_wait(&c->job_ready, &c->lock);
        build_job *j = c->jobs_head;
        if (j == NULL)
            break;
        c->jobs_head = j->next;
        if (c->jobs_head == NULL)
            c->jobs_tail = NULL;
        pthread_mutex_unlock(&c->lock);
        run_job(j, piece);
        pthread_mutex_lock(&c->lock);
        j->done = 1;
        pthread_cond_broadcast(&c->built);
    }
    pthread_mutex_unlock(&c->lock);
    free(piece);
    return NULL;
}

/* Callers hold c->lock. Start build threads up to build_max; 0 when at
 * least one runs. Signals stay with the daemon's other threads. */
static int pool_start_locked(fs_cache *c)
{
    if (c->npool >= c->build_max)
        return 0;
    pthread_t *np = realloc(c->pool, c->build_max * sizeof *np);
    if (np == NULL)
        return c->npool ? 0 : -ENOMEM;
    c->pool = np;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (c->npool < c->build_max && pthread_create(&c->pool[c->npool], NULL, builder_main, c) == 0)
        c->npool++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return c->npool ? 0 : -EAGAIN;
}

/* Callers hold c->lock. Whether a build of `cost` may start now: a build
 * larger than the whole budget runs alone. */
static int build_room_locked(const fs_cache *c, uint64_t cost)
{
    return !(c->build_used > 0 && c->build_used + cost > c->build_budget) &&
           c->builds_running < c->build_max;
}

static void inflight_remove_locked(fs_cache *c, const inflight *me)
{
    for (inflight **pp = &c->inflight; *pp; pp = &(*pp)->next)
        if (*pp == me) {
            *pp = me->next;
            break;
        }
}

/* Build the view for key `k` (the source as stat'ed just before) and
 * insert it: one build per version at a time, within the build limits.
 * prebuild: not for an open (fs_view_prebuild): -EBUSY at once instead of
 * waiting for room, and the view is marked prebuilt. Called with c->lock
 * held, right after the caller found no view and no build of `k` under it
 * (so that two opens never both start one: the second waits). */
static int build_and_insert(fs_cache *c, const dlp_policy *pol, int rootfd, const char *rel,
                            uint64_t max, const fs_view_key *k, int prebuild, fs_view **out)
{
    inflight me = {.key = *k};
    const uint64_t cost = fs_build_cost((uint64_t)k->size);
    if (prebuild && !build_room_locked(c, cost)) { /* readahead never waits nor queues */
        c->prebuild_skipped++;
        pthread_mutex_unlock(&c->lock);
        return -EBUSY;
    }
    me.id = ++c->next_build_id;
    me.next = c->inflight;
    c->inflight = &me;
    while (!build_room_locked(c, cost))
        pthread_cond_wait(&c->built, &c->lock);
    c->build_used += cost;
    c->builds_running++;
    if (c->build_used > c->build_peak)
        c->build_peak = c->build_used;
    if (prebuild)
        c->prebuilds++;
    else
        c->misses++;
    c->builds++;
    build_job job = {.c = c, .pol = pol, .rootfd = rootfd, .rel = rel, .max = max};
    if (pool_start_locked(c) == 0) {
        if (c->jobs_tail)
            c->jobs_tail->next = &job;
        else
            c->jobs_head = &job;
        c->jobs_tail = &job;
        pthread_cond_signal(&c->job_ready);
        while (!job.done)
            pthread_cond_wait(&c->built, &c->lock);
        pthread_mutex_unlock(&c->lock);
    } else { /* no thread could be started: build here */
        pthread_mutex_unlock(&c->lock);
        run_job(&job, NULL);
    }
    fs_view *v = job.v;
    int r = job.r;
    if (job.reserved) { /* the view itself is counted from here on (cache_insert) */
        pthread_mutex_lock(&c->lock);
        c->reserved -= job.reserved;
        pthread_mutex_unlock(&c->lock);
    }
    if (r == 0) {
        log_debug("msg=\"view built\" path=\"%s\" view=%llu source_size=%lld size=%zu status=%d "
                  "racy=%d prebuilt=%d",
                  rel, (unsigned long long)v->gen, (long long)v->key.size, v->len, v->status, v->racy,
                  prebuild);
        v->prebuilt = prebuild;
        r = cache_insert(c, v, out); /* before the waiters wake: they find it there */
    }
    pthread_mutex_lock(&c->lock);
    inflight_remove_locked(c, &me);
    c->build_used -= cost;
    c->builds_running--;
    pthread_cond_broadcast(&c->built);
    pthread_mutex_unlock(&c->lock);
    return r;
}

/* How many times an open waits for other builds of the same version before
 * building it itself (each wait ends with a finished build). */
#define BUILD_WAIT_ROUNDS 8

int fs_view_get(fs_cache *c, const dlp_policy *pol, int rootfd, const char *rel, uint64_t max,
                fs_view **out)
{
    struct stat st;
    return fs_view_get_stat(c, pol, rootfd, rel, max, &st, 0, out);
}

int fs_view_get_stat(fs_cache *c, const dlp_policy *pol, int rootfd, const char *rel, uint64_t max,
                     struct stat *stp, int known, fs_view **out)
{
    const char *ph = dlp_policy_hash(pol);
    for (int round = 0;; round++) {
        /* after waiting for another build, look at the source again */
        int r = known && round == 0 ? 0 : fs_source_stat(rootfd, rel, stp);
        if (r < 0)
            return r;
        const struct stat st = *stp;
        if (S_ISDIR(st.st_mode))
            return -EISDIR;
        if (!S_ISREG(st.st_mode))
            return -EPERM;
        if ((uint64_t)st.st_size > max)
            return -EFBIG;
        fs_view *hit = NULL;
        if (fs_view_peek(c, &st, ph, &hit) == 0) {
            pthread_mutex_lock(&c->lock);
            const int racy = hit->racy;
            pthread_mutex_unlock(&c->lock);
            if (!racy) {
                *out = hit;
                return 0;
            }
            r = racy_still_good(c, hit, rootfd, rel, max);
            if (r > 0) {
                *out = hit;
                return 0;
            }
            fs_view_unref(c, hit);
            if (r < 0)
                return r;
        }
        fs_view_key k;
        fs_view_key_from_stat(&st, ph, &k);
        if (hit == NULL) {
            fs_view *sv = spill_in(c, &k);
            if (sv) {
                log_debug("msg=\"view from spill\" path=\"%s\" view=%llu size=%zu", rel,
                          (unsigned long long)sv->gen, sv->len);
                return cache_insert(c, sv, out);
            }
        }
        pthread_mutex_lock(&c->lock);
        if (hit == NULL && round < BUILD_WAIT_ROUNDS && lookup_locked(c, &k)) {
            /* inserted since the peek (a build that ended meanwhile) */
            pthread_mutex_unlock(&c->lock);
            continue;
        }
        inflight *f = round < BUILD_WAIT_ROUNDS ? inflight_find(c, &k) : NULL;
        if (f == NULL)
            return build_and_insert(c, pol, rootfd, rel, max, &k, 0, out); /* unlocks */
        /* Being built by another open: wait for it, then look again. */
        const uint64_t id = f->id;
        c->build_waits++;
        while (inflight_running(c, id))
            pthread_cond_wait(&c->built, &c->lock);
        pthread_mutex_unlock(&c->lock);
    }
}

int fs_view_prebuild(fs_cache *c, const dlp_policy *pol, int rootfd, const char *rel, uint64_t max)
{
    struct stat st;
    int r = fs_source_stat(rootfd, rel, &st);
    if (r < 0)
        return r;
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max)
        return 0; /* an open answers these without a view */
    fs_view_key k;
    fs_view_key_from_stat(&st, dlp_policy_hash(pol), &k);
    pthread_mutex_lock(&c->lock);
    int have = lookup_locked(c, &k) != NULL || inflight_find(c, &k) != NULL;
    if (!have && c->spill_dirfd >= 0) /* taking it back from disk is the open's (cheap) business */
        for (spilled *e = c->spill_buckets[key_bucket(&k)]; e && !have; e = e->hnext)
            have = key_equal(&e->meta->key, &k);
    /* A guess never takes more than a quarter of the cache (evicting views
     * that were really opened for it). */
    const int big = (uint64_t)st.st_size > c->cap / 4;
    if (!have && big)
        c->prebuild_skipped++;
    if (have || big) {
        pthread_mutex_unlock(&c->lock);
        return have ? 0 : -EBUSY;
    }
    fs_view *v = NULL;
    r = build_and_insert(c, pol, rootfd, rel, max, &k, 1, &v); /* unlocks */
    if (r == 0 && v)
        fs_view_unref(c, v); /* the cache keeps its own reference */
    return r;
}

void fs_cache_get_stats(fs_cache *c, fs_cache_stats *out)
{
    pthread_mutex_lock(&c->lock);
    out->bytes = c->bytes;
    out->held_bytes = c->held_bytes;
    out->count = c->count;
    out->hits = c->hits;
    out->misses = c->misses;
    out->builds = c->builds;
    out->evictions = c->evictions;
    out->spill_bytes = c->spill_bytes;
    out->spill_count = c->spill_count;
    out->spill_hits = c->spill_hits;
    out->spill_bad = c->spill_bad;
    out->build_waits = c->build_waits;
    out->room_waits = c->room_waits;
    out->build_peak = c->build_peak;
    out->prebuilds = c->prebuilds;
    out->prebuild_hits = c->prebuild_hits;
    out->prebuild_skipped = c->prebuild_skipped;
    out->recycled = c->recycled;
    pthread_mutex_unlock(&c->lock);
}
