/* diode/recv.c — `sluice-diode recv`: the sandbox side of the diode.
 *
 * Reads packets from a receive-only channel, rebuilds blocks, and writes
 * each file's chunks into a staging file; a file is published into the
 * vault only when every chunk arrived, its SHA-256 equals the one in an
 * entry authenticated by HMAC, and its bytes are durable. Threads: the main
 * one reads the channel (and on a stream decodes too), on UDP a decoder
 * checks, writes and hashes, the publisher flushes and renames. It never
 * transmits, never publishes a partial or unverified file, and never lets
 * hostile input grow memory or open files without bound. */
#include "diode/diode.h"
#include "ledger/ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define RECV_MAX_OPEN 256       /* files being received at once (fds) */
#define RECV_BATCH_FILES 4096   /* publish batch: files, bytes, age */
#define RECV_BATCH_BYTES (1024u << 20)
#define RECV_BATCH_MS 500
#define RECV_MAX_FILES (4u << 20) /* entries per session */

enum rstate { RF_KNOWN, RF_RECEIVING, RF_PENDING, RF_DONE, RF_FAILED };

typedef struct rfile {
    uint64_t id, size;
    int64_t mtime_ns;
    uint32_t mode, chunk;
    uint8_t sha[SHA256_LEN];
    char *path;
    enum rstate state;
    int fd;
    char stage[64];
    uint8_t *bitmap;
    uint64_t nchunks, nhave, hashed, touch;
    sha256_ctx *h;
} rfile;

typedef struct receiver {
    /* options */
    const char *from, *vault_dir, *staging, *key_path, *ledger_path, *ledger_key;
    const char *user; /* --user: drop to this user once set up */
    int once, idle_exit, rcvbuf;
    uint64_t max_file_size;
    size_t mem_cap;
    /* state */
    uint8_t key[KEY_MAX_LEN];
    size_t keylen;
    diode_chan ch;
    vault *v;
    ledger *led;
    diode_rx *rx;
    ZSTD_DCtx *dctx;
    uint8_t *zbuf;
    size_t zcap;
    uint64_t session;
    int have_session;
    rfile **tab; /* open addressing by id */
    size_t tabcap, nfiles, nopen;
    uint64_t touch;
    rfile **pending;            /* collecting (receive thread) */
    size_t npending, pending_bytes;
    struct timespec pending_since;
    /* The publisher thread: syncfs + renames + commit + ledger run there so
     * that the receive loop keeps draining the socket meanwhile (a UDP
     * receiver that stops to flush the disk loses whole bursts). */
    pthread_t pub_thread;
    pthread_mutex_t pub_mu;
    pthread_cond_t pub_cv;
    rfile **pub_items;          /* handed over */
    int *pub_rc;
    size_t pub_n;
    int pub_busy, pub_ready, pub_quit, pub_started;
    int final_end_seen;
    /* counters */
    uint32_t kernel_drops;
    uint64_t published, published_bytes, present, hash_fail, rejected, write_fail, switches;
} receiver;

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { (void)sig; g_stop = 1; }

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void ledger_note(receiver *r, ledger_event ev, const rfile *f, const char *decision,
                        const char *reason)
{
    if (!r->led)
        return;
    char hex[SHA256_HEX_LEN];
    hex_encode(f->sha, SHA256_LEN, hex);
    char sess[17];
    snprintf(sess, sizeof sess, "%016llx", (unsigned long long)r->session);
    const ledger_record rec = {.event = ev, .pid = getpid(), .uid = getuid(), .gid = getgid(),
                               .process = "sluice-diode", .session = sess, .path = f->path,
                               .source_sha256 = hex, .served_sha256 = hex,
                               .size_served = f->size, .decision = decision, .reason = reason};
    if (ledger_append(r->led, &rec, NULL) < 0)
        log_error("msg=\"ledger append failed\" path=\"%s\"", f->path);
}

/* ---- the file table ---- */

static rfile *tab_get(receiver *r, uint64_t id)
{
    if (!r->tabcap)
        return NULL;
    for (size_t i = (size_t)(id * 0x9E3779B97F4A7C15ULL) & (r->tabcap - 1);; i = (i + 1) & (r->tabcap - 1)) {
        if (!r->tab[i])
            return NULL;
        if (r->tab[i]->id == id)
            return r->tab[i];
    }
}

static int tab_put(receiver *r, rfile *f)
{
    if ((r->nfiles + 1) * 2 > r->tabcap) {
        const size_t ncap = r->tabcap ? r->tabcap * 2 : 1024;
        rfile **nt = calloc(ncap, sizeof *nt);
        if (!nt)
            return -ENOMEM;
        for (size_t j = 0; j < r->tabcap; j++) {
            rfile *g = r->tab[j];
            if (!g)
                continue;
            size_t i = (size_t)(g->id * 0x9E3779B97F4A7C15ULL) & (ncap - 1);
            while (nt[i])
                i = (i + 1) & (ncap - 1);
            nt[i] = g;
        }
        free(r->tab);
        r->tab = nt;
        r->tabcap = ncap;
    }
    size_t i = (size_t)(f->id * 0x9E3779B97F4A7C15ULL) & (r->tabcap - 1);
    while (r->tab[i])
        i = (i + 1) & (r->tabcap - 1);
    r->tab[i] = f;
    r->nfiles++;
    return 0;
}

static void file_close_stage(receiver *r, rfile *f, int discard)
{
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
        r->nopen--;
    }
    if (discard && f->stage[0])
        vault_stage_discard(r->v, f->stage);
    if (discard)
        f->stage[0] = '\0';
    free(f->bitmap);
    f->bitmap = NULL;
    sha256_free(f->h);
    f->h = NULL;
    f->nhave = f->hashed = 0;
}

static void session_reset(receiver *r)
{
    /* Files already queued for publication were verified: publish them
     * first (see flush in the caller); everything else of the old session
     * is dropped. */
    for (size_t i = 0; i < r->tabcap; i++) {
        rfile *f = r->tab[i];
        if (!f)
            continue;
        if (f->state == RF_RECEIVING)
            file_close_stage(r, f, 1);
        free(f->path);
        free(f);
    }
    free(r->tab);
    r->tab = NULL;
    r->tabcap = r->nfiles = 0;
    __atomic_store_n(&r->final_end_seen, 0, __ATOMIC_RELEASE);
}

/* ---- publication ---- */

/* Publisher thread: one flush makes every staged file of the batch
 * durable, the renames make them visible atomically, a second flush makes
 * the renames durable; only then is the ingest recorded. It touches only
 * the immutable fields of the files it is handed (path, sha, size, stage). */
static void *publisher(void *arg)
{
    receiver *r = arg;
    pthread_mutex_lock(&r->pub_mu);
    for (;;) {
        while (!r->pub_ready && !r->pub_quit)
            pthread_cond_wait(&r->pub_cv, &r->pub_mu);
        if (!r->pub_ready && r->pub_quit)
            break;
        const size_t n = r->pub_n;
        pthread_mutex_unlock(&r->pub_mu);
        const int sync_rc = vault_sync_staging(r->v);
        for (size_t i = 0; i < n; i++) {
            rfile *f = r->pub_items[i];
            int rc = sync_rc;
            if (rc == 0)
                rc = vault_publish(r->v, f->stage, f->path, f->sha);
            if (rc < 0) {
                log_error("msg=\"publish failed\" path=\"%s\" err=\"%s\"", f->path, strerror(-rc));
                vault_stage_discard(r->v, f->stage);
                ledger_note(r, LEDGER_INGEST_REJECTED, f, "rejected", strerror(-rc));
            } else {
                log_info("msg=published path=\"%s\" size=%llu", f->path, (unsigned long long)f->size);
            }
            r->pub_rc[i] = rc;
        }
        const int crc = vault_commit(r->v);
        if (crc < 0)
            log_error("msg=\"cannot flush the vault's directory entries\" err=\"%s\"", strerror(-crc));
        for (size_t i = 0; i < n; i++)
            if (r->pub_rc[i] == 0)
                ledger_note(r, LEDGER_INGEST_ACCEPTED, r->pub_items[i], "accepted",
                            "verified and published");
        pthread_mutex_lock(&r->pub_mu);
        r->pub_ready = 0;
        r->pub_busy = 0;
        pthread_cond_broadcast(&r->pub_cv);
    }
    pthread_mutex_unlock(&r->pub_mu);
    return NULL;
}

/* Collect the results of a finished batch (receive thread; pub_mu held,
 * publisher idle). */
static void publish_reap_locked(receiver *r)
{
    for (size_t i = 0; i < r->pub_n; i++) {
        rfile *f = r->pub_items[i];
        if (r->pub_rc[i] == 0) {
            f->state = RF_DONE;
            r->published++;
            r->published_bytes += f->size;
        } else {
            f->state = RF_FAILED;
            r->write_fail++;
        }
        f->stage[0] = '\0';
    }
    r->pub_n = 0;
}

/* Hand the collected files to the publisher; with `wait`, block until it
 * is idle first and until this batch is done too. */
static void publish_handoff(receiver *r, int wait)
{
    pthread_mutex_lock(&r->pub_mu);
    if (r->pub_busy && !wait) {
        pthread_mutex_unlock(&r->pub_mu);
        return;
    }
    while (r->pub_busy)
        pthread_cond_wait(&r->pub_cv, &r->pub_mu);
    publish_reap_locked(r);
    if (r->npending) {
        rfile **t = r->pub_items;
        r->pub_items = r->pending;
        r->pending = t;
        r->pub_n = r->npending;
        r->npending = 0;
        r->pending_bytes = 0;
        r->pub_busy = r->pub_ready = 1;
        pthread_cond_broadcast(&r->pub_cv);
        while (wait && r->pub_busy)
            pthread_cond_wait(&r->pub_cv, &r->pub_mu);
        if (wait)
            publish_reap_locked(r);
    }
    pthread_mutex_unlock(&r->pub_mu);
}

/* Everything collected so far is published when this returns. */
static void publish_flush(receiver *r) { publish_handoff(r, 1); }

static double ts_ms_since(const struct timespec *t)
{
    struct timespec n;
    clock_gettime(CLOCK_MONOTONIC, &n);
    return (double)(n.tv_sec - t->tv_sec) * 1e3 + (double)(n.tv_nsec - t->tv_nsec) / 1e6;
}

/* Non-blocking: reap a finished batch, hand over a due one. */
static void publish_maybe(receiver *r)
{
    if (r->npending && (r->npending >= RECV_BATCH_FILES / 2 || r->pending_bytes >= RECV_BATCH_BYTES ||
                        ts_ms_since(&r->pending_since) >= RECV_BATCH_MS))
        publish_handoff(r, 0);
    else if (r->pub_n) {
        pthread_mutex_lock(&r->pub_mu);
        if (!r->pub_busy)
            publish_reap_locked(r);
        pthread_mutex_unlock(&r->pub_mu);
    }
}

static int file_open_stage(receiver *r, rfile *f)
{
    if (r->nopen >= RECV_MAX_OPEN) {
        /* Too many files in flight: give up the least recently fed one; a
         * later pass can bring it again. */
        rfile *old = NULL;
        for (size_t i = 0; i < r->tabcap; i++) {
            rfile *g = r->tab[i];
            if (g && g->state == RF_RECEIVING && g->fd >= 0 && (!old || g->touch < old->touch))
                old = g;
        }
        if (old) {
            log_warn("msg=\"too many files in flight, dropping one\" path=\"%s\"", old->path);
            file_close_stage(r, old, 1);
            old->state = RF_KNOWN;
        }
    }
    const int fd = vault_stage_create(r->v, f->stage, sizeof f->stage);
    if (fd < 0)
        return fd;
    f->fd = fd;
    r->nopen++;
    f->nchunks = (f->size + f->chunk - 1) / f->chunk;
    f->bitmap = calloc((size_t)(f->nchunks / 8 + 1), 1);
    f->h = sha256_new();
    if (!f->bitmap || !f->h) {
        file_close_stage(r, f, 1);
        return -ENOMEM;
    }
    f->state = RF_RECEIVING;
    return 0;
}

static int file_finish(receiver *r, rfile *f)
{
    static uint8_t buf[1 << 20];
    while (f->hashed < f->size) {
        const size_t n = f->size - f->hashed < sizeof buf ? (size_t)(f->size - f->hashed) : sizeof buf;
        const ssize_t got = pread_full(f->fd, buf, n, (off_t)f->hashed);
        if (got != (ssize_t)n)
            return -EIO;
        sha256_update(f->h, buf, n);
        f->hashed += n;
    }
    uint8_t got[SHA256_LEN];
    const int rc = sha256_final(f->h, got);
    f->h = NULL;
    if (rc < 0 || !ct_equal(got, f->sha, SHA256_LEN)) {
        r->hash_fail++;
        log_warn("msg=\"SHA-256 mismatch, file discarded\" path=\"%s\"", f->path);
        ledger_note(r, LEDGER_INGEST_REJECTED, f, "rejected", "SHA-256 mismatch");
        file_close_stage(r, f, 1);
        f->state = RF_KNOWN; /* a later pass may bring it intact */
        return 0;
    }
    const struct timespec ts[2] = {{.tv_sec = 0, .tv_nsec = UTIME_OMIT},
                                   {.tv_sec = f->mtime_ns / 1000000000,
                                    .tv_nsec = f->mtime_ns % 1000000000}};
    if (fchmod(f->fd, f->mode & 0755) < 0 ||
        (f->mtime_ns >= 0 && futimens(f->fd, ts) < 0)) {
        log_error("msg=\"staging failed\" path=\"%s\" err=\"%s\"", f->path, strerror(errno));
        file_close_stage(r, f, 1);
        f->state = RF_FAILED;
        r->write_fail++;
        return 0;
    }
    /* No writeback here: the batch's single syncfs() writes everything at
     * once, which costs far less than starting it file by file. */
    file_close_stage(r, f, 0);
    f->state = RF_PENDING;
    if (r->npending == 0)
        clock_gettime(CLOCK_MONOTONIC, &r->pending_since);
    r->pending[r->npending++] = f;
    r->pending_bytes += f->size;
    if (r->npending >= RECV_BATCH_FILES)
        publish_handoff(r, 1); /* the publisher is behind: wait for it */
    else
        publish_maybe(r);
    return 0;
}

/* ---- record callbacks ---- */

static int switch_session(receiver *r, uint64_t session)
{
    if (r->have_session && r->session == session)
        return 0;
    if (r->have_session) {
        log_warn("msg=\"new sender session; files in flight of the old one are dropped\" "
                 "old=%016llx new=%016llx", (unsigned long long)r->session,
                 (unsigned long long)session);
        r->switches++;
    }
    publish_flush(r);
    session_reset(r);
    r->session = session;
    r->have_session = 1;
    return 0;
}

static int on_entry(void *ctx, uint64_t session, const diode_entry *e, int from_manifest)
{
    receiver *r = ctx;
    (void)from_manifest;
    switch_session(r, session);
    rfile *f = tab_get(r, e->file_id);
    if (f) {
        if (f->size != e->size || memcmp(f->sha, e->sha256, SHA256_LEN) || strcmp(f->path, e->path))
            r->rejected++; /* the same id cannot name two files: keep the first */
        return 0;
    }
    if (r->nfiles >= RECV_MAX_FILES) {
        r->rejected++;
        return 0;
    }
    f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(e->path))) {
        free(f);
        return 0;
    }
    f->id = e->file_id;
    f->size = e->size;
    f->mtime_ns = e->mtime_ns;
    f->mode = e->mode;
    f->chunk = e->chunk;
    memcpy(f->sha, e->sha256, SHA256_LEN);
    f->fd = -1;
    f->state = RF_KNOWN;
    if (tab_put(r, f) < 0) {
        free(f->path);
        free(f);
        return 0;
    }
    if (e->size > r->max_file_size) {
        f->state = RF_FAILED;
        r->rejected++;
        log_warn("msg=\"file larger than --max-file-size refused\" path=\"%s\"", f->path);
        ledger_note(r, LEDGER_INGEST_REJECTED, f, "rejected", "larger than --max-file-size");
        return 0;
    }
    if (vault_has(r->v, f->path, f->size, f->sha)) {
        f->state = RF_DONE;
        r->present++;
        log_debug("msg=\"already in the vault\" path=\"%s\"", f->path);
        return 0;
    }
    if (f->size == 0) {
        if (file_open_stage(r, f) == 0)
            file_finish(r, f);
    }
    return 0;
}

static int on_data(void *ctx, uint64_t session, const diode_data *d)
{
    receiver *r = ctx;
    if (!r->have_session || session != r->session)
        return 0; /* only an authenticated record may switch sessions */
    rfile *f = tab_get(r, d->file_id);
    if (!f || f->state == RF_DONE || f->state == RF_PENDING || f->state == RF_FAILED)
        return 0;
    if (d->offset >= f->size || d->offset % f->chunk != 0)
        goto bad;
    const uint64_t want = f->size - d->offset < f->chunk ? f->size - d->offset : f->chunk;
    if (d->raw_len != want)
        goto bad;
    const uint64_t ci = d->offset / f->chunk;
    if (f->state == RF_RECEIVING && (f->bitmap[ci / 8] >> (ci % 8)) & 1)
        return 0;
    const uint8_t *raw = d->payload;
    if (d->codec == DIODE_CODEC_ZSTD) {
        const unsigned long long fcs = ZSTD_getFrameContentSize(d->payload, d->payload_len);
        if (fcs != want)
            goto bad;
        if (r->zcap < want) {
            uint8_t *nb = realloc(r->zbuf, (size_t)want);
            if (!nb)
                return 0;
            r->zbuf = nb;
            r->zcap = (size_t)want;
        }
        const size_t n = ZSTD_decompressDCtx(r->dctx, r->zbuf, (size_t)want, d->payload,
                                             d->payload_len);
        if (ZSTD_isError(n) || n != want)
            goto bad;
        raw = r->zbuf;
    }
    if (f->state == RF_KNOWN) {
        const int rc = file_open_stage(r, f);
        if (rc < 0) {
            log_error("msg=\"cannot stage\" path=\"%s\" err=\"%s\"", f->path, strerror(-rc));
            return 0;
        }
    }
    f->touch = ++r->touch;
    if (pwrite(f->fd, raw, (size_t)want, (off_t)d->offset) != (ssize_t)want) {
        log_error("msg=\"staging write failed\" path=\"%s\" err=\"%s\"", f->path, strerror(errno));
        file_close_stage(r, f, 1);
        f->state = RF_KNOWN;
        return 0;
    }
    f->bitmap[ci / 8] |= (uint8_t)(1u << (ci % 8));
    f->nhave++;
    if (d->offset == f->hashed) {
        /* In order (the usual case): hash while the bytes are at hand. */
        sha256_update(f->h, raw, (size_t)want);
        f->hashed += want;
    }
    if (f->nhave == f->nchunks)
        return file_finish(r, f);
    return 0;
bad:
    r->rejected++;
    log_warn("msg=\"malformed data chunk\" path=\"%s\"", f->path);
    return 0;
}

static int on_end(void *ctx, uint64_t session, const diode_end *e)
{
    receiver *r = ctx;
    switch_session(r, session);
    publish_flush(r);
    log_info("msg=\"end of pass\" pass=%u passes=%u files=%llu", e->pass, e->passes,
             (unsigned long long)e->files);
    if (e->pass >= e->passes) /* read by the reading thread */
        __atomic_store_n(&r->final_end_seen, 1, __ATOMIC_RELEASE);
    return 0;
}

static int on_hello(void *ctx, uint64_t session, const diode_hello *h)
{
    receiver *r = ctx;
    if (!r->have_session || session != r->session)
        log_info("msg=\"sender hello\" session=%016llx pass=%u k=%u m=%u symbol=%u",
                 (unsigned long long)session, h->pass, h->k, h->m, h->symbol_size);
    return 0;
}

static void on_reject(void *ctx, uint64_t session, const char *what)
{
    receiver *r = ctx;
    r->rejected++;
    log_warn("msg=\"record refused\" why=\"%s\" session=%016llx", what, (unsigned long long)session);
}

/* ---- main loop ---- */

static uint64_t count_missing(const receiver *r)
{
    uint64_t n = 0;
    for (size_t i = 0; i < r->tabcap; i++)
        if (r->tab[i] && r->tab[i]->state != RF_DONE)
            n++;
    return n;
}

/* ---- reading and decoding ----
 * On UDP, two stages: the main thread only reads the socket (recvmmsg)
 * into a small ring of batch buffers; the decoder thread checks packets,
 * rebuilds blocks, writes, hashes and hands files to the publisher. The
 * socket keeps being drained while the decoder waits for the disk or for
 * the CPU, and the ring bounds the memory between the two (RECV_RING
 * batches of RECV_BATCH datagrams). A stream is read and decoded in the
 * main thread. */
#define RECV_RING 6
#define RECV_BATCH 64
#define RECV_DGRAM 65536 /* with UDP GRO one datagram buffer may hold several packets */

typedef struct rbatch {
    uint8_t *buf;                 /* RECV_BATCH * RECV_DGRAM bytes */
    uint32_t len[RECV_BATCH];     /* datagram lengths (UDP) */
    uint32_t seg[RECV_BATCH];     /* GRO segment size, 0 when not coalesced */
    int n;                        /* datagrams; for a stream, -1 and len[0] bytes */
    int flush;                    /* a stream's sender went away: flush after this */
} rbatch;

typedef struct rring {
    rbatch b[RECV_RING];
    rbatch *free_[RECV_RING], *fill[RECV_RING];
    size_t nfree, head, nfill;
    int eof;
    pthread_mutex_t mu;
    pthread_cond_t room, work;
} rring;

static rring g_ring;

static int ring_init(rring *q)
{
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->room, NULL);
    pthread_cond_init(&q->work, NULL);
    for (size_t i = 0; i < RECV_RING; i++) {
        q->b[i].buf = malloc((size_t)RECV_BATCH * RECV_DGRAM);
        if (!q->b[i].buf)
            return -ENOMEM;
        q->free_[q->nfree++] = &q->b[i];
    }
    return 0;
}

static void ring_free(rring *q)
{
    for (size_t i = 0; i < RECV_RING; i++)
        free(q->b[i].buf);
}

/* Reader: an empty batch (waits while the decoder holds them all). */
static rbatch *ring_get(rring *q)
{
    pthread_mutex_lock(&q->mu);
    while (q->nfree == 0)
        pthread_cond_wait(&q->room, &q->mu);
    rbatch *b = q->free_[--q->nfree];
    pthread_mutex_unlock(&q->mu);
    b->n = 0;
    b->flush = 0;
    return b;
}

static void ring_put(rring *q, rbatch *b)
{
    pthread_mutex_lock(&q->mu);
    q->fill[(q->head + q->nfill) % RECV_RING] = b;
    q->nfill++;
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->mu);
}

/* The batch was not used: back to the free list. */
static void ring_unget(rring *q, rbatch *b)
{
    pthread_mutex_lock(&q->mu);
    q->free_[q->nfree++] = b;
    pthread_cond_signal(&q->room);
    pthread_mutex_unlock(&q->mu);
}

static void ring_close(rring *q)
{
    pthread_mutex_lock(&q->mu);
    q->eof = 1;
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->mu);
}

static void decode_batch(receiver *r, const rbatch *b)
{
    if (b->n < 0) {
        diode_rx_stream(r->rx, b->buf, b->len[0]);
    } else {
        for (int i = 0; i < b->n; i++) {
            /* Coalesced datagrams: every one but the last is exactly `seg`
             * bytes; each is checked as a packet of its own. */
            const uint8_t *d = b->buf + (size_t)i * RECV_DGRAM;
            const size_t len = b->len[i], step = b->seg[i] > 0 ? b->seg[i] : len;
            for (size_t o = 0; o < len; o += step)
                diode_rx_packet(r->rx, d + o, len - o < step ? len - o : step);
        }
    }
    if (b->flush) {
        diode_rx_flush(r->rx);
        publish_flush(r);
    }
}

/* Decoder thread: every record callback, file write and publication hand-off
 * runs here (and the publisher's work in its own thread). */
static void *decoder(void *arg)
{
    receiver *r = arg;
    rring *q = &g_ring;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        if (q->nfill == 0 && !q->eof) {
            /* Idle: hand over what waits for publication meanwhile. */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += (long)RECV_BATCH_MS * 1000000;
            until.tv_sec += until.tv_nsec / 1000000000;
            until.tv_nsec %= 1000000000;
            if (pthread_cond_timedwait(&q->work, &q->mu, &until) != 0 && q->nfill == 0) {
                pthread_mutex_unlock(&q->mu);
                publish_handoff(r, 0);
                pthread_mutex_lock(&q->mu);
            }
            continue;
        }
        if (q->nfill == 0)
            break; /* end of input, everything decoded */
        rbatch *b = q->fill[q->head];
        q->head = (q->head + 1) % RECV_RING;
        q->nfill--;
        pthread_mutex_unlock(&q->mu);
        decode_batch(r, b);
        publish_maybe(r);
        pthread_mutex_lock(&q->mu);
        q->free_[q->nfree++] = b;
        pthread_cond_signal(&q->room);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static int final_end_seen(const receiver *r)
{
    return __atomic_load_n(&r->final_end_seen, __ATOMIC_ACQUIRE);
}

/* A stream needs no separate reading stage: nothing is lost while we are
 * busy, the pipe just holds the sender back. Read, decode, publish, all in
 * this thread (the decoder thread is not started). */
static int loop_stream(receiver *r)
{
    for (;;) {
        struct pollfd p = {.fd = r->ch.fd, .events = POLLIN};
        const int pr = poll(&p, 1, RECV_BATCH_MS);
        if (g_stop)
            return 0;
        if (pr == 0) {
            publish_handoff(r, 0);
            continue;
        }
        rbatch *b = ring_get(&g_ring);
        const ssize_t n = read(r->ch.fd, b->buf, (size_t)RECV_BATCH * RECV_DGRAM);
        if (n < 0) {
            ring_unget(&g_ring, b);
            if (errno == EINTR || errno == EAGAIN)
                continue;
            sluice_err("%s: %s", r->from, strerror(errno));
            return -errno;
        }
        b->n = -1;
        b->len[0] = (uint32_t)n;
        b->flush = n == 0; /* the sender went away: drop incomplete blocks, publish */
        decode_batch(r, b);
        publish_maybe(r);
        ring_unget(&g_ring, b);
        if (n == 0) {
            if (r->ch.kind == DIODE_CHAN_FIFO && !r->once && !g_stop) {
                /* Wait for the next sender. */
                close(r->ch.fd);
                do
                    r->ch.fd = open(r->from + 5, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                while (r->ch.fd < 0 && errno == EINTR && !g_stop);
                if (r->ch.fd < 0)
                    return g_stop ? 0 : -errno;
                continue;
            }
            return 0;
        }
        if (r->once && final_end_seen(r))
            return 0;
    }
}

static int loop_udp(receiver *r)
{
    struct mmsghdr msgs[RECV_BATCH];
    struct iovec iov[RECV_BATCH];
    /* SO_RXQ_OVFL: the kernel tells how many datagrams it dropped because
     * our socket buffer was full; reported so that a too-small buffer or a
     * too-fast sender shows as such. */
    static union {
        char buf[CMSG_SPACE(sizeof(uint32_t)) + CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl[RECV_BATCH];
    const int one = 1;
    setsockopt(r->ch.fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
    setsockopt(r->ch.fd, SOL_UDP, UDP_GRO, &one, sizeof one); /* best effort */
    double last = now_s(), linger_until = 0;
    for (;;) {
        struct pollfd p = {.fd = r->ch.fd, .events = POLLIN};
        /* With --once, look often whether the decoder has seen the last
         * END (it runs behind this thread), so that the quiet period
         * starts without waiting out a long poll. */
        const int pr = poll(&p, 1, linger_until > 0 ? 200 : r->once ? 50 : RECV_BATCH_MS);
        if (g_stop)
            return 0;
        if (pr == 0) {
            if (r->idle_exit > 0 && now_s() - last > r->idle_exit)
                return 0;
            if (linger_until > 0)
                return 0; /* the link went quiet after the last pass */
            if (r->once && final_end_seen(r))
                linger_until = now_s() + 1.0;
            continue;
        }
        rbatch *b = ring_get(&g_ring);
        for (int i = 0; i < RECV_BATCH; i++) {
            iov[i] = (struct iovec){.iov_base = b->buf + (size_t)i * RECV_DGRAM,
                                    .iov_len = RECV_DGRAM};
            msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1,
                                                   .msg_control = ctl[i].buf,
                                                   .msg_controllen = sizeof ctl[i].buf}};
        }
        const int n = recvmmsg(r->ch.fd, msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) {
            ring_unget(&g_ring, b);
            if (n == 0 || errno == EINTR || errno == EAGAIN)
                continue;
            sluice_err("%s: %s", r->from, strerror(errno));
            return -errno;
        }
        last = now_s();
        for (int i = 0; i < n; i++) {
            int seg = 0;
            for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msgs[i].msg_hdr); cm;
                 cm = CMSG_NXTHDR(&msgs[i].msg_hdr, cm)) {
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_RXQ_OVFL &&
                    cm->cmsg_len >= CMSG_LEN(sizeof(uint32_t)))
                    memcpy(&r->kernel_drops, CMSG_DATA(cm), sizeof(uint32_t));
                if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO &&
                    cm->cmsg_len >= CMSG_LEN(sizeof(int)))
                    memcpy(&seg, CMSG_DATA(cm), sizeof(int));
            }
            b->len[i] = msgs[i].msg_len;
            b->seg[i] = seg > 0 ? (uint32_t)seg : 0;
        }
        b->n = n;
        ring_put(&g_ring, b);
        if (r->once && final_end_seen(r)) {
            /* Keep the socket bound until the link is quiet (200 ms) or for
             * a second at most: closing it while the last repair packets
             * are in flight would make our kernel answer them with ICMP
             * port-unreachable, a packet back to the sender. */
            if (linger_until == 0)
                linger_until = now_s() + 1.0;
            else if (now_s() >= linger_until)
                return 0;
        }
    }
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sluice-diode recv --from CHANNEL --vault DIR --key FILE [options]\n"
            "  --from CHANNEL        fd:N | fifo:PATH | udp:HOST:PORT (HOST: local or multicast)\n"
            "  --vault DIR           where verified files are published\n"
            "  --key FILE            shared HMAC key (same as the sender's)\n"
            "  --staging DIR         staging directory on the vault's filesystem\n"
            "                        (default: .<vault>.sluice-staging beside the vault)\n"
            "  --once                exit after the sender's last pass (or end of stream)\n"
            "  --idle-exit SECONDS   exit after this long without a packet (udp)\n"
            "  --rcvbuf BYTES        UDP socket receive buffer (default 256M)\n"
            "  --max-file-size BYTES refuse larger files (default 64G)\n"
            "  --mem BYTES           memory for incomplete blocks (default 256M)\n"
            "  --ledger DB --ledger-key FILE   record ingest events in the ledger\n"
            "  --log-level LEVEL     error|warn|info|debug (default warn)\n"
            "  --user NAME           run as this unprivileged user once set up\n"
            "exit: 0 every announced file is in the vault, 1 some are missing or were refused,\n"
            "      2 usage error, 3 setup or channel error\n");
}

int diode_recv_main(int argc, char **argv)
{
    static receiver R;
    receiver *r = &R;
    r->rcvbuf = 256 << 20;
    r->max_file_size = 64ULL << 30;
    r->mem_cap = 256u << 20;
    enum { O_FROM = 1, O_VAULT, O_KEY, O_STAGING, O_ONCE, O_IDLE, O_RCVBUF, O_MAXF, O_MEM,
           O_LEDGER, O_LKEY, O_LOG, O_USER, O_HELP };
    static const struct option lo[] = {
        {"from", 1, 0, O_FROM}, {"vault", 1, 0, O_VAULT}, {"key", 1, 0, O_KEY},
        {"staging", 1, 0, O_STAGING}, {"once", 0, 0, O_ONCE}, {"idle-exit", 1, 0, O_IDLE},
        {"rcvbuf", 1, 0, O_RCVBUF}, {"max-file-size", 1, 0, O_MAXF}, {"mem", 1, 0, O_MEM},
        {"ledger", 1, 0, O_LEDGER}, {"ledger-key", 1, 0, O_LKEY}, {"log-level", 1, 0, O_LOG},
        {"user", 1, 0, O_USER}, {"help", 0, 0, O_HELP}, {0, 0, 0, 0}};
    int c;
    uint64_t v;
    enum log_level lvl = LOG_LVL_WARN;
    opterr = 0; /* reported below, in sluice's own format */
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case O_FROM: r->from = optarg; break;
        case O_VAULT: r->vault_dir = optarg; break;
        case O_KEY: r->key_path = optarg; break;
        case O_STAGING: r->staging = optarg; break;
        case O_ONCE: r->once = 1; break;
        case O_IDLE: r->idle_exit = atoi(optarg); break;
        case O_RCVBUF:
            if (parse_size(optarg, &v) < 0 || v > (1u << 30)) {
                sluice_err("--rcvbuf: bad size '%s'", optarg);
                return DIODE_EXIT_USAGE;
            }
            r->rcvbuf = (int)v;
            break;
        case O_MAXF:
            if (parse_size(optarg, &r->max_file_size) < 0) {
                sluice_err("--max-file-size: bad size '%s'", optarg);
                return DIODE_EXIT_USAGE;
            }
            break;
        case O_MEM:
            if (parse_size(optarg, &v) < 0) {
                sluice_err("--mem: bad size '%s'", optarg);
                return DIODE_EXIT_USAGE;
            }
            r->mem_cap = (size_t)v;
            break;
        case O_USER: r->user = optarg; break;
        case O_LEDGER: r->ledger_path = optarg; break;
        case O_LKEY: r->ledger_key = optarg; break;
        case O_LOG:
            if (log_parse_level(optarg, &lvl) < 0) {
                sluice_err("--log-level: unknown level '%s'", optarg);
                return DIODE_EXIT_USAGE;
            }
            break;
        case O_HELP: usage(stdout); return DIODE_EXIT_OK;
        default:
            sluice_bad_option("recv", argv);
            return DIODE_EXIT_USAGE;
        }
    }
    log_init("sluice-diode", lvl);
    if (optind != argc || !r->from || !r->vault_dir || !r->key_path) {
        sluice_err("recv: --from, --vault and --key are required");
        usage(stderr);
        return DIODE_EXIT_USAGE;
    }
    if (!!r->ledger_path != !!r->ledger_key) {
        sluice_err("recv: --ledger and --ledger-key go together");
        return DIODE_EXIT_USAGE;
    }
    char why[512];
    if (key_load(r->key_path, r->key, &r->keylen, why, sizeof why) < 0) {
        sluice_err("%s: %s", r->key_path, why);
        return DIODE_EXIT_ERROR;
    }
    if (vault_open(r->vault_dir, r->staging, &r->v, why, sizeof why) < 0) {
        sluice_err("vault: %s", why);
        return DIODE_EXIT_ERROR;
    }
    if (r->ledger_path && ledger_open(r->ledger_path, r->ledger_key, &r->led, why, sizeof why) < 0) {
        sluice_err("%s: %s", r->ledger_path, why);
        return DIODE_EXIT_ERROR;
    }
    r->dctx = ZSTD_createDCtx();
    r->pending = calloc(RECV_BATCH_FILES, sizeof *r->pending);
    r->pub_items = calloc(RECV_BATCH_FILES, sizeof *r->pub_items);
    r->pub_rc = calloc(RECV_BATCH_FILES, sizeof *r->pub_rc);
    pthread_mutex_init(&r->pub_mu, NULL);
    pthread_cond_init(&r->pub_cv, NULL);
    const diode_rx_ops ops = {.hello = on_hello, .entry = on_entry, .data = on_data,
                              .end = on_end, .reject = on_reject};
    if (ring_init(&g_ring) < 0 || !r->dctx || !r->pending || !r->pub_items || !r->pub_rc || diode_rx_new(r->key, r->keylen, r->mem_cap, &ops, r, &r->rx) < 0) {
        sluice_err("recv: out of memory");
        return DIODE_EXIT_ERROR;
    }
    /* Chunks are at most DIODE_MAX_BLOCK bytes: refuse frames that ask for
     * a larger decompression window. */
    ZSTD_DCtx_setParameter(r->dctx, ZSTD_d_windowLogMax, 23);
    if (diode_chan_open_recv(r->from, r->rcvbuf, &r->ch, why, sizeof why) < 0) {
        sluice_err("%s: %s", r->from, why);
        return DIODE_EXIT_ERROR;
    }
    if (r->ch.kind == DIODE_CHAN_UDP && r->ch.rcvbuf < r->rcvbuf) {
        sluice_err("warning: %s: the UDP receive buffer is %d bytes, wanted %d: bursts will be "
                   "lost; run as root or raise net.core.rmem_max", r->from, r->ch.rcvbuf,
                   r->rcvbuf);
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Everything is open: from here on the receiver reaches the vault, its
     * staging directory and its ledger only, and can never emit on its
     * channel (diode/sandbox.c). */
    const diode_sandbox_paths sp = {.vault = r->vault_dir, .staging = r->staging,
                                    .ledger = r->ledger_path, .key = r->key_path,
                                    .channel = r->from, .user = r->user};
    if (diode_confine_receiver(r->ch.fd, &sp) < 0) {
        sluice_err("recv: cannot confine the receiver (see the log above)");
        return DIODE_EXIT_ERROR;
    }
    /* Created after the seccomp filter: the thread inherits it. */
    if (pthread_create(&r->pub_thread, NULL, publisher, r) != 0) {
        sluice_err("recv: cannot start the publisher thread");
        return DIODE_EXIT_ERROR;
    }
    r->pub_started = 1;
    /* UDP only: a stream decodes in this thread (see loop_stream). */
    pthread_t dec_thread;
    const int split = !r->ch.is_stream;
    if (split && pthread_create(&dec_thread, NULL, decoder, r) != 0) {
        sluice_err("recv: cannot start the decoder thread");
        return DIODE_EXIT_ERROR;
    }
    log_info("msg=\"receiving\" from=\"%s\" vault=\"%s\" rcvbuf=%d", r->from, r->vault_dir,
             r->ch.rcvbuf);
    const int rc = r->ch.is_stream ? loop_stream(r) : loop_udp(r);
    /* The decoder finishes what was read, then the rest is flushed here. */
    if (split) {
        ring_close(&g_ring);
        pthread_join(dec_thread, NULL);
    }
    diode_rx_flush(r->rx);
    publish_flush(r);
    pthread_mutex_lock(&r->pub_mu);
    r->pub_quit = 1;
    pthread_cond_broadcast(&r->pub_cv);
    pthread_mutex_unlock(&r->pub_mu);
    pthread_join(r->pub_thread, NULL);
    const diode_rx_stats *st = diode_rx_get_stats(r->rx);
    const uint64_t missing = count_missing(r);
    char drops[64] = "";
    if (r->ch.kind == DIODE_CHAN_UDP)
        snprintf(drops, sizeof drops, "; dropped by the kernel (socket buffer full) %u",
                 r->kernel_drops);
    fprintf(stderr,
            "sluice-diode: recv: published %llu files (%llu bytes), already present %llu, "
            "missing %llu, rejected %llu, hash mismatches %llu; packets %llu, bad %llu, "
            "blocks %llu, repaired %llu, lost %llu%s\n",
            (unsigned long long)r->published, (unsigned long long)r->published_bytes,
            (unsigned long long)r->present, (unsigned long long)missing,
            (unsigned long long)(r->rejected + r->write_fail), (unsigned long long)r->hash_fail,
            (unsigned long long)st->packets, (unsigned long long)st->bad_packets,
            (unsigned long long)st->blocks, (unsigned long long)st->blocks_repaired,
            (unsigned long long)st->blocks_lost, drops);
    session_reset(r);
    diode_rx_free(r->rx);
    ZSTD_freeDCtx(r->dctx);
    free(r->zbuf);
    free(r->pending);
    free(r->pub_items);
    free(r->pub_rc);
    ring_free(&g_ring);
    if (r->led)
        ledger_close(r->led);
    vault_close(r->v);
    diode_chan_close(&r->ch);
    if (rc < 0)
        return DIODE_EXIT_ERROR;
    return missing || r->write_fail ? DIODE_EXIT_INCOMPLETE : DIODE_EXIT_OK;
}
