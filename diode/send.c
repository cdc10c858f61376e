/* diode/send.c — `sluice-diode send`: the corporate side of the diode.
 *
 * Approves each file (regular, readable, size, content type by the policy,
 * optional DLP pre-scan), records the decision with the file's SHA-256 (JSON
 * lines report, ledger) since nothing can come back, then pushes it across
 * the channel: records packed into blocks (main thread), erasure-coded, cut
 * into fixed-size packets, paced and written (the sending thread). It never reads from its channel, never sends a
 * file it did not approve, and never sends bytes other than those it hashed
 * (a file that changes while being sent is reported and left for the
 * receiver to discard). */
#include "diode/diode.h"
#include "dlp/dlp.h"
#include "ledger/ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <fts.h>
#include <getopt.h>
#include <limits.h>
#include <linux/openat2.h>
#include <openssl/rand.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/udp.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define SEND_INMEM_MAX (64u << 20) /* files up to this are read once, into memory */
#define SEND_MAX_REFUSE 32
/* UDP blocks are sent in interleaved groups of up to SEND_MAX_GROUP (as
 * many as one GSO message has packets); the packing stage may run
 * SEND_AHEAD blocks ahead of the group being sent. */
#define SEND_MAX_GROUP 40
#define SEND_AHEAD 6
#define SEND_MAX_BUFS (SEND_MAX_GROUP + SEND_AHEAD)
#define SEND_PROBE 4096 /* bytes compressed to judge a file's first chunk */

typedef struct sent {
    diode_entry e;
    char *path;
    int live; /* replaced by a newer version (watch mode) when 0 */
} sent;

typedef struct sender {
    /* options */
    const char *src, *to, *policy_path, *key_path, *report_path, *ledger_path, *ledger_key;
    const char *user; /* --user: drop to this user once set up */
    int no_policy, watch, prescan, level, progress;
    int compress_auto; /* compress only while the sending stage has a backlog */
    unsigned repeat;
    double rate_mbit, manifest_every, settle;
    uint64_t max_size;
    const char *refuse[SEND_MAX_REFUSE];
    size_t nrefuse;
    unsigned k, m;
    uint32_t sym;
    /* state */
    uint8_t key[KEY_MAX_LEN];
    size_t keylen;
    diode_chan ch;
    dlp_policy *pol;
    ledger *led;
    FILE *report;
    char session_hex[17];
    uint64_t session, seq, block_no, next_id;
    size_t blkcap, off;
    uint32_t chunk;
    uint8_t *blk, *repair, *hdrs;
    /* The sending stage (worker thread) and the queue of filled blocks. */
    pthread_t q_thread;
    pthread_mutex_t q_mu;
    pthread_cond_t q_work, q_room;
    uint8_t *q_fill[SEND_MAX_BUFS], *q_free[SEND_MAX_BUFS];
    uint64_t q_no[SEND_MAX_BUFS];
    size_t q_head, q_len, q_nfree, backlog;
    int q_err, q_quit, q_flush, q_started;
    /* the group being sent (worker) */
    uint8_t *g_blk[SEND_MAX_GROUP];
    uint64_t g_no[SEND_MAX_GROUP];
    unsigned g_n, group_max;
    uint64_t sent_bytes; /* worker's count, for pacing */
    int link_bound;      /* worker: the last packets waited for the rate */
    struct iovec *iov;
    struct mmsghdr *msgs;
    diode_fec *fec;
    ZSTD_CCtx *cctx;
    uint8_t *zbuf, *rbuf, *fbuf;
    size_t zcap, fcap;
    double t0, last_manifest, last_progress;
    uint64_t wire_bytes, wire_at_manifest, manifest_bytes;
    sent *ents;
    size_t nents, capents;
    uint32_t pass, passes;
    int chan_error, watching, src_fd, gso;
    unsigned gso_per;
    /* counters */
    uint64_t files, bytes, refused, changed;
} sender;

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { (void)sig; g_stop = 1; }

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- the decision record ---- */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void decide(sender *s, const char *path, int accepted, const char *reason, uint64_t size,
                   const uint8_t *sha, const char *mime, uint64_t file_id)
{
    char hex[SHA256_HEX_LEN] = "";
    if (sha)
        hex_encode(sha, SHA256_LEN, hex);
    if (s->report) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        char when[64];
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        fprintf(s->report, "{\"time\":\"%s\",\"session\":\"%s\",\"path\":", when, s->session_hex);
        json_str(s->report, path);
        fprintf(s->report, ",\"decision\":\"%s\",\"reason\":", accepted ? "accepted" : "rejected");
        json_str(s->report, reason);
        fprintf(s->report, ",\"size\":%llu,\"sha256\":", (unsigned long long)size);
        if (sha)
            fprintf(s->report, "\"%s\"", hex);
        else
            fputs("null", s->report);
        fputs(",\"mime\":", s->report);
        if (mime)
            json_str(s->report, mime);
        else
            fputs("null", s->report);
        if (accepted)
            fprintf(s->report, ",\"file_id\":%llu", (unsigned long long)file_id);
        fputs("}\n", s->report);
        fflush(s->report);
    }
    if (s->led) {
        const ledger_record rec = {
            .event = accepted ? LEDGER_INGEST_ACCEPTED : LEDGER_INGEST_REJECTED,
            .pid = getpid(), .uid = getuid(), .gid = getgid(), .process = "sluice-diode",
            .session = s->session_hex, .path = path, .source_sha256 = sha ? hex : NULL,
            .size_served = accepted ? size : 0, .mime = mime,
            .policy_hash = s->pol ? dlp_policy_hash(s->pol) : NULL,
            .decision = accepted ? "accepted" : "rejected", .reason = reason};
        if (ledger_append(s->led, &rec, NULL) < 0) {
            /* The record of the decision is part of the decision. */
            sluice_err("ledger: cannot record the decision for %s", path);
            s->chan_error = 1;
        }
    }
    if (!accepted) {
        s->refused++;
        log_warn("msg=refused path=\"%s\" reason=\"%s\"", path, reason);
    }
}

/* ---- blocks and packets ----
 * Two stages, so that the two halves of the work overlap: the main thread
 * approves, reads, hashes, compresses and packs records into blocks; a
 * worker thread erasure-codes each filled block, frames its packets, paces
 * and writes them. They meet in a small bounded queue of block buffers
 * (a group and SEND_AHEAD more: memory stays a few blocks whatever the
 * tree). */

/* Worker: wait until the rate allows the next `bytes` to leave. Each step
 * leaves no earlier than its share of the rate since the start allows, so
 * a late step is followed by a catch-up burst (the receiver's socket
 * buffer absorbs it). */
static void pace(sender *s, uint64_t bytes)
{
    if (s->rate_mbit > 0) {
        const double due = s->t0 + (double)s->sent_bytes * 8 / (s->rate_mbit * 1e6);
        const double ahead = due - now_s();
        /* Ahead of the rate: the link, not the CPU, is what we wait for
         * (read by the packing stage to decide on compression). */
        __atomic_store_n(&s->link_bound, ahead > 0.0002, __ATOMIC_RELAXED);
        if (ahead > 0.0002) {
            const struct timespec ts = {.tv_sec = (time_t)ahead,
                                        .tv_nsec = (long)((ahead - (double)(time_t)ahead) * 1e9)};
            nanosleep(&ts, NULL);
        }
    }
    s->sent_bytes += bytes;
}

/* Worker: the repair symbols of group slot g. */
static void encode_block(sender *s, unsigned g)
{
    uint8_t *data[DIODE_MAX_K] = {0}, *rep[DIODE_MAX_M] = {0};
    for (unsigned i = 0; i < s->k; i++)
        data[i] = s->g_blk[g] + (size_t)i * s->sym;
    for (unsigned i = 0; i < s->m; i++)
        rep[i] = s->repair + ((size_t)g * s->m + i) * s->sym;
    diode_fec_encode(s->fec, s->sym, data, rep);
}

/* Worker: symbol i of group slot g, and its header (the sequence number
 * counts packets in the order they leave). */
static uint8_t *frame_packet(sender *s, unsigned g, unsigned i, uint8_t *hdr)
{
    uint8_t *sym = i < s->k ? s->g_blk[g] + (size_t)i * s->sym
                            : s->repair + ((size_t)g * s->m + (i - s->k)) * s->sym;
    const diode_hdr h = {.k = (uint16_t)s->k, .m = (uint16_t)s->m, .index = (uint16_t)i,
                         .symbol_size = s->sym, .session = s->session, .seq = s->seq++,
                         .block = s->g_no[g], .payload_crc = diode_crc32c(sym, s->sym)};
    diode_hdr_encode(&h, hdr);
    return sym;
}

/* Worker, stream channel: one block, its packets in order. */
static int send_stream(sender *s)
{
    const unsigned n = s->k + s->m;
    encode_block(s, 0);
    for (unsigned i = 0; i < n; i++) {
        uint8_t *hdr = s->hdrs + (size_t)i * DIODE_HDR_LEN;
        uint8_t *sym = frame_packet(s, 0, i, hdr);
        s->iov[2 * i] = (struct iovec){hdr, DIODE_HDR_LEN};
        s->iov[2 * i + 1] = (struct iovec){sym, s->sym};
    }
    pace(s, (uint64_t)n * (DIODE_HDR_LEN + s->sym));
    /* writev may write part of the vector: advance through it. */
    struct iovec *v = s->iov;
    int cnt = (int)(2 * n);
    while (cnt > 0) {
        const int batch = cnt > 1024 ? 1024 : cnt;
        ssize_t w = writev(s->ch.fd, v, batch);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            const int e = errno;
            sluice_err("%s: %s", s->to, strerror(e));
            return -e;
        }
        while (cnt > 0 && (size_t)w >= v->iov_len) {
            w -= (ssize_t)v->iov_len;
            v++;
            cnt--;
        }
        if (cnt > 0 && w > 0) {
            v->iov_base = (uint8_t *)v->iov_base + w;
            v->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* Worker, UDP: the g_n blocks of the group, interleaved: symbol 0 of every
 * block, then symbol 1 of every block, and so on. With UDP GSO one message
 * carries several packets (the kernel cuts them: far less per-packet work),
 * and a link that carries the message whole (a veth pair) or loses a burst
 * must not take several symbols of one block with it: interleaved, a
 * message holds at most ceil(gso_per / g_n) symbols of any block. */
static int send_group(sender *s)
{
    const unsigned n = s->k + s->m, G = s->g_n;
    const size_t total = (size_t)G * n;
    for (unsigned g = 0; g < G; g++)
        encode_block(s, g);
    size_t q = 0;
    for (unsigned i = 0; i < n; i++)
        for (unsigned g = 0; g < G; g++, q++) {
            uint8_t *hdr = s->hdrs + q * DIODE_HDR_LEN;
            uint8_t *sym = frame_packet(s, g, i, hdr);
            s->iov[2 * q] = (struct iovec){hdr, DIODE_HDR_LEN};
            s->iov[2 * q + 1] = (struct iovec){sym, s->sym};
        }
    /* Paced a block's worth of packets at a time, as without a group. */
    size_t p = 0;
    int tries = 0;
    while (p < total) {
        const unsigned per = s->gso ? s->gso_per : 1;
        unsigned nm = 0;
        size_t e = p;
        while (e < total && e - p < n) {
            const size_t cnt = total - e < per ? total - e : per;
            s->msgs[nm++] = (struct mmsghdr){.msg_hdr = {.msg_name = s->ch.addr,
                                                         .msg_namelen = s->ch.addrlen,
                                                         .msg_iov = &s->iov[2 * e],
                                                         .msg_iovlen = 2 * cnt}};
            e += cnt;
        }
        pace(s, (uint64_t)(e - p) * (DIODE_HDR_LEN + s->sym));
        unsigned done = 0;
        while (done < nm) {
            const int r = sendmmsg(s->ch.fd, s->msgs + done, nm - done, 0);
            if (r >= 0) {
                for (int j = 0; j < r; j++)
                    p += s->msgs[done + (unsigned)j].msg_hdr.msg_iovlen / 2;
                done += (unsigned)r;
                continue;
            }
            if ((errno == ENOBUFS || errno == EAGAIN || errno == EINTR) && tries++ < 1000) {
                const struct timespec ts = {0, 200000};
                nanosleep(&ts, NULL);
                continue;
            }
            if (errno == ECONNREFUSED) /* an ICMP error from an earlier datagram */
                continue;
            if (s->gso && (errno == EINVAL || errno == EIO || errno == EMSGSIZE)) {
                /* GSO cannot cut packets larger than the link's MTU
                 * (they go as IP fragments): send them one by one, and
                 * stop grouping blocks, which only served GSO. */
                const int off = 0;
                setsockopt(s->ch.fd, SOL_UDP, UDP_SEGMENT, &off, sizeof off);
                s->gso = 0;
                s->group_max = 1;
                log_info("msg=\"UDP GSO not usable on this path; sending packet by packet\"");
                break; /* rebuild the messages from packet p */
            }
            const int err = errno;
            sluice_err("%s: %s", s->to, strerror(err));
            return -err;
        }
    }
    return 0;
}

static void *send_worker(void *arg)
{
    sender *s = arg;
    pthread_mutex_lock(&s->q_mu);
    for (;;) {
        while (s->q_len == 0 && !s->q_quit && !(s->q_flush && s->g_n))
            pthread_cond_wait(&s->q_work, &s->q_mu);
        while (s->q_len > 0 && s->g_n < s->group_max) {
            s->g_blk[s->g_n] = s->q_fill[s->q_head];
            s->g_no[s->g_n++] = s->q_no[s->q_head];
            s->q_head = (s->q_head + 1) % SEND_MAX_BUFS;
            s->q_len--;
        }
        /* A group leaves when full, or partial when the producer asks
         * (--watch: nothing is held back) or is done. */
        const int go = s->g_n == s->group_max || (s->g_n && (s->q_flush || s->q_quit));
        if (s->q_len == 0)
            s->q_flush = 0;
        if (!go) {
            if (s->q_quit && s->q_len == 0)
                break; /* quit, and nothing left */
            continue;
        }
        const int failed = s->q_err != 0;
        pthread_mutex_unlock(&s->q_mu);
        /* After a channel error the rest is dropped, not sent. */
        const int rc = failed ? 0 : s->ch.is_stream ? send_stream(s) : send_group(s);
        pthread_mutex_lock(&s->q_mu);
        if (rc < 0)
            s->q_err = rc;
        for (unsigned g = 0; g < s->g_n; g++)
            s->q_free[s->q_nfree++] = s->g_blk[g];
        s->g_n = 0;
        pthread_cond_broadcast(&s->q_room);
    }
    pthread_mutex_unlock(&s->q_mu);
    return NULL;
}

static int send_start(sender *s)
{
    pthread_mutex_init(&s->q_mu, NULL);
    pthread_cond_init(&s->q_work, NULL);
    pthread_cond_init(&s->q_room, NULL);
    if (pthread_create(&s->q_thread, NULL, send_worker, s) != 0)
        return -EAGAIN;
    s->q_started = 1;
    return 0;
}

/* --watch: let the blocks queued so far leave now, even as a partial group. */
static void send_flush(sender *s)
{
    pthread_mutex_lock(&s->q_mu);
    s->q_flush = 1;
    pthread_cond_signal(&s->q_work);
    pthread_mutex_unlock(&s->q_mu);
}

/* Wait until every queued block is on the channel and stop the worker.
 * 0, or the worker's channel error. */
static int send_finish(sender *s)
{
    if (!s->q_started)
        return 0;
    pthread_mutex_lock(&s->q_mu);
    s->q_quit = 1;
    pthread_cond_broadcast(&s->q_work);
    pthread_mutex_unlock(&s->q_mu);
    pthread_join(s->q_thread, NULL);
    s->q_started = 0;
    return s->q_err;
}

/* Producer: hand the filled block to the worker and continue in an empty
 * buffer (waiting for one while the worker holds all the others). */
static int emit_block(sender *s)
{
    if (s->off == 0 || s->chan_error)
        return s->chan_error ? -EPIPE : 0;
    memset(s->blk + s->off, 0, s->blkcap - s->off);
    pthread_mutex_lock(&s->q_mu);
    const size_t tail = (s->q_head + s->q_len) % SEND_MAX_BUFS;
    s->q_fill[tail] = s->blk;
    s->q_no[tail] = s->block_no++;
    s->q_len++;
    pthread_cond_signal(&s->q_work);
    /* The worker returns every buffer, even after an error. */
    while (s->q_nfree == 0)
        pthread_cond_wait(&s->q_room, &s->q_mu);
    const int err = s->q_err;
    s->blk = s->q_free[--s->q_nfree];
    s->backlog = s->q_len;
    pthread_mutex_unlock(&s->q_mu);
    s->off = 0;
    s->wire_bytes += (uint64_t)(s->k + s->m) * (DIODE_HDR_LEN + s->sym);
    if (err) {
        s->chan_error = 1;
        return err;
    }
    return 0;
}

/* Append a record, emitting the current block first when it does not fit. */
#define PUT(s, call)                                                                               \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ == -ENOSPC) {                                                                      \
            if ((rc_ = emit_block(s)) < 0)                                                         \
                return rc_;                                                                        \
            rc_ = (call);                                                                          \
        }                                                                                          \
        if (rc_ < 0)                                                                               \
            return rc_;                                                                            \
    } while (0)

static int put_manifest(sender *s)
{
    /* Cut the live entries into parts that each fit an empty block. */
    const size_t room = s->blkcap - DIODE_REC_HDR - 12 - SHA256_LEN;
    size_t nparts = 0, used = 0, cnt = 0;
    uint64_t used_total = 0;
    for (size_t i = 0; i < s->nents; i++) {
        if (!s->ents[i].live)
            continue;
        const size_t l = diode_entry_wire_len(&s->ents[i].e);
        used_total += l;
        if (cnt == 0 || used + l > room) {
            nparts++;
            used = 0;
        }
        used += l;
        cnt++;
    }
    const diode_entry **part = malloc((s->nents + 1) * sizeof *part);
    if (!part)
        return -ENOMEM;
    size_t np = 0, idx = 0;
    used = 0;
    for (size_t i = 0; i <= s->nents; i++) {
        const int last = i == s->nents;
        const size_t l = last ? 0 : diode_entry_wire_len(&s->ents[i].e);
        if (!last && !s->ents[i].live)
            continue;
        if (np > 0 && (last || used + l > room)) {
            int rc = diode_put_manifest(s->blk, s->blkcap, &s->off, (uint32_t)idx,
                                        (uint32_t)nparts, part, np, s->session, s->key, s->keylen);
            if (rc == -ENOSPC) {
                if ((rc = emit_block(s)) == 0)
                    rc = diode_put_manifest(s->blk, s->blkcap, &s->off, (uint32_t)idx,
                                            (uint32_t)nparts, part, np, s->session, s->key,
                                            s->keylen);
            }
            if (rc < 0) {
                free(part);
                return rc;
            }
            idx++;
            np = 0;
            used = 0;
        }
        if (!last) {
            part[np++] = &s->ents[i].e;
            used += l;
        }
    }
    free(part);
    s->last_manifest = now_s();
    s->wire_at_manifest = s->wire_bytes;
    s->manifest_bytes = used_total;
    return 0;
}

/* The manifest is repeated every --manifest-interval seconds, but never
 * so often that it takes more than 1/20 of the channel: a tree of a million
 * files has a manifest of tens of megabytes. */
static int manifest_due(const sender *s)
{
    const double el = now_s() - s->last_manifest;
    if (s->manifest_every <= 0 || el < s->manifest_every)
        return 0;
    if (s->wire_bytes - s->wire_at_manifest >= 20 * s->manifest_bytes)
        return 1;
    /* An idle channel (--watch): by time, as if it ran at its rate (an
     * unpaced channel counts as 1 Gbit/s). */
    const double bps = (s->rate_mbit > 0 ? s->rate_mbit : 1000) * 1e6 / 8;
    return el * bps / 20 >= (double)s->manifest_bytes;
}

static void progress(sender *s, int final)
{
    const double t = now_s();
    if (!final && (!s->progress || t - s->last_progress < 0.2))
        return;
    s->last_progress = t;
    const double el = t - s->t0 > 1e-6 ? t - s->t0 : 1e-6;
    if (s->progress && !final)
        fprintf(stderr, "\rsluice-diode: pass %u/%u  %llu files  %.1f MiB  %llu refused  %.0f Mbit/s ",
                s->pass, s->passes, (unsigned long long)s->files, (double)s->bytes / 1048576.0,
                (unsigned long long)s->refused, (double)s->wire_bytes * 8 / el / 1e6);
    else if (final)
        fprintf(stderr,
                "%ssluice-diode: send: %llu files (%llu bytes) sent in %u pass%s, %llu refused, "
                "%llu changed while sending, %llu wire bytes in %.2f s (%.0f Mbit/s)\n",
                s->progress ? "\n" : "", (unsigned long long)s->files,
                (unsigned long long)s->bytes, s->passes, s->passes == 1 ? "" : "es",
                (unsigned long long)s->refused, (unsigned long long)s->changed,
                (unsigned long long)s->wire_bytes, el, (double)s->wire_bytes * 8 / el / 1e6);
}

/* Send one chunk of a file. *squeeze is cleared when a chunk does not
 * shrink by 3%: the rest of that file (a scan, an archive, media) is sent
 * raw rather than spending CPU on both sides for nothing. With automatic
 * compression (the UDP default) a chunk is compressed only while the
 * channel, not this thread, is the bottleneck (the sending stage waits for
 * the rate, or has a backlog): compression then costs no time and saves
 * wire bytes; when the channel waits for data, it would only slow it down.
 * The codec is chosen per chunk and said in each DATA record. */
static int put_chunk(sender *s, uint64_t id, uint64_t off, const uint8_t *raw, size_t len,
                     int *squeeze)
{
    diode_data d = {.file_id = id, .offset = off, .raw_len = (uint32_t)len,
                    .codec = DIODE_CODEC_RAW, .payload = raw, .payload_len = len};
    if (*squeeze && s->level > -100 && len >= 64 &&
        (!s->compress_auto || s->backlog >= 2 ||
         __atomic_load_n(&s->link_bound, __ATOMIC_RELAXED))) {
        if (off == 0 && len > 4 * SEND_PROBE) {
            /* A file's first chunk: a small sample from its middle tells
             * random-looking data (scans, archives, media) at a fraction of
             * the cost of compressing the whole chunk in vain. */
            const size_t z = ZSTD_compressCCtx(s->cctx, s->zbuf, s->zcap, raw + len / 2,
                                               SEND_PROBE, s->level);
            if (ZSTD_isError(z) || z > SEND_PROBE - SEND_PROBE / 32) {
                *squeeze = 0;
                goto put;
            }
        }
        const size_t z = ZSTD_compressCCtx(s->cctx, s->zbuf, s->zcap, raw, len, s->level);
        if (!ZSTD_isError(z) && z < len) {
            d.codec = DIODE_CODEC_ZSTD;
            d.payload = s->zbuf;
            d.payload_len = z;
        }
        if (ZSTD_isError(z) || z > len - len / 32)
            *squeeze = 0;
    }
put:
    PUT(s, diode_put_data_hdr(s->blk, s->blkcap, &s->off, &d));
    return 0;
}

/* Send an approved file's entry and bytes. `mem` holds the whole file when
 * it was small enough, else the file is read again through `fd` and hashed
 * again; 1 is returned when it changed since approval. */
static int send_file(sender *s, const diode_entry *e, const uint8_t *mem, int fd)
{
    PUT(s, diode_put_file(s->blk, s->blkcap, &s->off, e, s->session, s->key, s->keylen));
    int squeeze = 1;
    if (mem) {
        for (uint64_t o = 0; o < e->size; o += s->chunk) {
            const size_t n = e->size - o < s->chunk ? (size_t)(e->size - o) : s->chunk;
            int rc = put_chunk(s, e->file_id, o, mem + o, n, &squeeze);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    sha256_ctx *h = sha256_new();
    if (!h)
        return -ENOMEM;
    uint64_t o = 0;
    int changed = 0;
    while (o < e->size) {
        const size_t n = e->size - o < s->chunk ? (size_t)(e->size - o) : s->chunk;
        const ssize_t got = pread_full(fd, s->rbuf, n, (off_t)o);
        if (got != (ssize_t)n) {
            changed = 1;
            break;
        }
        sha256_update(h, s->rbuf, n);
        int rc = put_chunk(s, e->file_id, o, s->rbuf, n, &squeeze);
        if (rc < 0) {
            sha256_free(h);
            return rc;
        }
        o += n;
    }
    uint8_t got[SHA256_LEN];
    if (sha256_final(h, got) < 0 || changed || memcmp(got, e->sha256, SHA256_LEN) != 0)
        return 1;
    return 0;
}

static int refuse_match(const sender *s, const char *rule)
{
    for (size_t i = 0; i < s->nrefuse; i++)
        if (fnmatch(s->refuse[i], rule, 0) == 0)
            return 1;
    return 0;
}

static int read_into(sender *s, int fd, uint64_t size)
{
    if (s->fcap < size + 1) {
        uint8_t *nb = realloc(s->fbuf, (size_t)size + 1);
        if (!nb)
            return -ENOMEM;
        s->fbuf = nb;
        s->fcap = (size_t)size + 1;
    }
    /* One byte more than announced: a file that grew is caught here. */
    const ssize_t n = pread_full(fd, s->fbuf, (size_t)size + 1, 0);
    if (n < 0)
        return (int)n;
    return (uint64_t)n == size ? 0 : -EAGAIN;
}

static sent *ents_add(sender *s, const diode_entry *e)
{
    /* A newer version of a path supersedes the older one in the manifest
     * (only --watch sends a path twice: the first walk never does). */
    for (size_t i = 0; s->watching && i < s->nents; i++)
        if (s->ents[i].live && strcmp(s->ents[i].path, e->path) == 0)
            s->ents[i].live = 0;
    if (s->nents == s->capents) {
        const size_t nc = s->capents ? s->capents * 2 : 256;
        sent *ne = realloc(s->ents, nc * sizeof *ne);
        if (!ne)
            return NULL;
        s->ents = ne;
        s->capents = nc;
    }
    sent *x = &s->ents[s->nents];
    x->path = strdup(e->path);
    if (!x->path)
        return NULL;
    x->e = *e;
    x->e.path = x->path;
    x->live = 1;
    s->nents++;
    return x;
}

/* Open `rel` beneath SOURCE_DIR without following any symlink on the way:
 * a directory swapped for a link after the walk cannot lead elsewhere. */
static int open_source(const sender *s, const char *rel)
{
    struct open_how how = {.flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
    const long fd = syscall(SYS_openat2, s->src_fd, rel, &how, sizeof how);
    return fd < 0 ? -1 : (int)fd;
}

/* Approve and send one file (first pass, or a --watch event). */
static int process_file(sender *s, const char *abs, const char *rel)
{
    const size_t rl = strlen(rel);
    if (vault_path_check(rel, rl) < 0) {
        decide(s, rel, 0, "name not allowed in the vault", 0, NULL, NULL, 0);
        return 0;
    }
    struct stat lst, st;
    if (lstat(abs, &lst) < 0) {
        decide(s, rel, 0, strerror(errno), 0, NULL, NULL, 0);
        return 0;
    }
    if (S_ISLNK(lst.st_mode)) {
        decide(s, rel, 0, "symbolic link", 0, NULL, NULL, 0);
        return 0;
    }
    if (!S_ISREG(lst.st_mode)) {
        decide(s, rel, 0, "not a regular file", 0, NULL, NULL, 0);
        return 0;
    }
    const int fd = open_source(s, rel);
    if (fd < 0) {
        char why[128];
        snprintf(why, sizeof why, "unreadable: %s", strerror(errno));
        decide(s, rel, 0, why, 0, NULL, NULL, 0);
        return 0;
    }
    int rc = 0;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_ino != lst.st_ino) {
        decide(s, rel, 0, "changed while being opened", 0, NULL, NULL, 0);
        goto out;
    }
    const uint64_t size = (uint64_t)st.st_size;
    uint64_t limit = s->max_size;
    if (s->pol && dlp_policy_max_size(s->pol) && dlp_policy_max_size(s->pol) < limit)
        limit = dlp_policy_max_size(s->pol);
    if (size > limit) {
        char why[96];
        snprintf(why, sizeof why, "larger than the size limit (%llu bytes)", (unsigned long long)limit);
        decide(s, rel, 0, why, size, NULL, NULL, 0);
        goto out;
    }
    /* Read once when small (the bytes approved are the bytes sent); hash by
     * streaming when large, and re-check the hash while sending. */
    const int inmem = size <= SEND_INMEM_MAX || s->prescan;
    uint8_t sha[SHA256_LEN];
    if (inmem) {
        rc = read_into(s, fd, size);
        if (rc < 0) {
            decide(s, rel, 0, rc == -EAGAIN ? "changed while being read" : strerror(-rc), size,
                   NULL, NULL, 0);
            rc = 0;
            goto out;
        }
        sha256_buf(s->fbuf, (size_t)size, sha);
    } else {
        sha256_ctx *h = sha256_new();
        uint64_t o = 0;
        while (h && o < size) {
            const size_t n = size - o < s->chunk ? (size_t)(size - o) : s->chunk;
            if (pread_full(fd, s->rbuf, n, (off_t)o) != (ssize_t)n)
                break;
            sha256_update(h, s->rbuf, n);
            o += n;
        }
        int bad = !h || o != size;
        if (h && o != size)
            sha256_free(h);
        if (!bad && sha256_final(h, sha) < 0)
            bad = 1;
        if (bad) {
            decide(s, rel, 0, "read failed or file shrank", size, NULL, NULL, 0);
            goto out;
        }
    }
    dlp_type t = {0};
    const char *mime = NULL;
    if (s->pol) {
        size_t head = inmem ? (size_t)size : 0;
        const uint8_t *hb = s->fbuf;
        if (!inmem) {
            const ssize_t n = pread_full(fd, s->rbuf, s->chunk < (1u << 20) ? s->chunk : (1u << 20), 0);
            head = n > 0 ? (size_t)n : 0;
            hb = s->rbuf;
        }
        if (head > (1u << 20))
            head = 1u << 20;
        if (dlp_classify(s->pol, hb, head, &t) < 0) {
            decide(s, rel, 0, "content type could not be determined", size, sha, NULL, 0);
            goto out;
        }
        mime = t.mime;
        if (!t.allowed) {
            decide(s, rel, 0, t.reason[0] ? t.reason : "content type not allowed", size, sha,
                   mime, 0);
            goto out;
        }
        if (s->prescan) {
            dlp_result res = {0};
            const int src = dlp_sanitize(s->pol, s->fbuf, (size_t)size, &res);
            char why[200] = "";
            if (src < 0)
                snprintf(why, sizeof why, "DLP pre-scan could not check the file: %s",
                         res.reason[0] ? res.reason : strerror(-src));
            for (size_t i = 0; src == 0 && !why[0] && i < res.nhits; i++)
                if (refuse_match(s, res.hits[i].rule_id))
                    snprintf(why, sizeof why, "DLP pre-scan: %llu finding(s) of %s",
                             (unsigned long long)res.hits[i].count, res.hits[i].rule_id);
            dlp_result_free(&res);
            if (why[0]) {
                decide(s, rel, 0, why, size, sha, mime, 0);
                goto out;
            }
        }
    }
    const diode_entry e = {.file_id = ++s->next_id, .size = size,
                           .mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
                           .mode = st.st_mode & 07777, .chunk = s->chunk,
                           .path_len = (uint16_t)rl, .path = rel};
    diode_entry ee = e;
    memcpy(ee.sha256, sha, SHA256_LEN);
    if (!ents_add(s, &ee)) {
        rc = -ENOMEM;
        goto out;
    }
    decide(s, rel, 1, "approved", size, sha, mime, ee.file_id);
    rc = send_file(s, &ee, inmem ? s->fbuf : NULL, fd);
    if (rc == 1) {
        s->changed++;
        s->ents[s->nents - 1].live = 0;
        log_warn("msg=\"file changed while being sent; the receiver will discard it\" path=\"%s\"", rel);
        rc = 0;
    } else if (rc == 0) {
        s->files++;
        s->bytes += size;
    }
out:
    close(fd);
    progress(s, 0);
    if (rc == 0 && manifest_due(s))
        rc = put_manifest(s);
    return rc;
}

/* Re-send an entry approved in the first pass (repeat passes). */
static int resend(sender *s, sent *x)
{
    const int fd = open_source(s, x->path);
    if (fd < 0) {
        log_warn("msg=\"file vanished before a repeat pass\" path=\"%s\"", x->path);
        return 0;
    }
    int rc = send_file(s, &x->e, NULL, fd);
    close(fd);
    if (rc == 1) {
        log_warn("msg=\"file changed since approval; not repeated\" path=\"%s\"", x->path);
        rc = 0;
    }
    progress(s, 0);
    if (rc == 0 && manifest_due(s))
        rc = put_manifest(s);
    return rc;
}

static int cmp_fts(const FTSENT **a, const FTSENT **b) { return strcmp((*a)->fts_name, (*b)->fts_name); }

static const char *rel_of(const sender *s, const char *abs)
{
    const size_t l = strlen(s->src);
    const char *r = abs + l;
    while (*r == '/')
        r++;
    return r;
}

static int walk(sender *s, const char *root)
{
    char *const roots[] = {(char *)root, NULL};
    FTS *f = fts_open(roots, FTS_PHYSICAL | FTS_NOCHDIR | FTS_XDEV, cmp_fts);
    if (!f)
        return -errno;
    FTSENT *e;
    int rc = 0;
    while (rc == 0 && !g_stop && (e = fts_read(f)) != NULL) {
        switch (e->fts_info) {
        case FTS_D:
        case FTS_DP:
            break;
        case FTS_DNR:
        case FTS_ERR:
            decide(s, rel_of(s, e->fts_path), 0, strerror(e->fts_errno), 0, NULL, NULL, 0);
            break;
        default:
            rc = process_file(s, e->fts_path, rel_of(s, e->fts_path));
        }
    }
    fts_close(f);
    return rc;
}

static int pass_begin(sender *s)
{
    const diode_hello h = {.start_ns = (int64_t)(s->t0 * 1e9), .pass = s->pass, .passes = s->passes,
                           .k = (uint16_t)s->k, .m = (uint16_t)s->m, .symbol_size = s->sym};
    PUT(s, diode_put_hello(s->blk, s->blkcap, &s->off, &h));
    return 0;
}

static int pass_end(sender *s)
{
    int rc = put_manifest(s);
    if (rc < 0)
        return rc;
    uint64_t live = 0;
    for (size_t i = 0; i < s->nents; i++)
        live += s->ents[i].live;
    const diode_end e = {.pass = s->pass, .passes = s->passes, .files = live, .bytes = s->bytes};
    PUT(s, diode_put_end(s->blk, s->blkcap, &s->off, &e, s->session, s->key, s->keylen));
    return emit_block(s);
}

/* ---- --watch ---- */

typedef struct pend {
    char *rel;
    double t;
} pend;

static int watch_add_tree(sender *s, int ino, const char *dir, char ***wd_paths, size_t *nwd)
{
    char *const roots[] = {(char *)dir, NULL};
    FTS *f = fts_open(roots, FTS_PHYSICAL | FTS_NOCHDIR | FTS_XDEV, NULL);
    if (!f)
        return -errno;
    FTSENT *e;
    while ((e = fts_read(f)) != NULL) {
        if (e->fts_info != FTS_D)
            continue;
        const int wd = inotify_add_watch(ino, e->fts_path,
                                         IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_MODIFY | IN_ONLYDIR);
        if (wd < 0) {
            log_warn("msg=\"cannot watch\" dir=\"%s\" err=\"%s\"", e->fts_path, strerror(errno));
            continue;
        }
        if ((size_t)wd >= *nwd) {
            const size_t nn = (size_t)wd * 2 + 16;
            char **np = realloc(*wd_paths, nn * sizeof *np);
            if (!np)
                break;
            memset(np + *nwd, 0, (nn - *nwd) * sizeof *np);
            *wd_paths = np;
            *nwd = nn;
        }
        free((*wd_paths)[wd]);
        (*wd_paths)[wd] = strdup(e->fts_path);
    }
    fts_close(f);
    (void)s;
    return 0;
}

static void pend_add(pend **p, size_t *n, size_t *cap, const char *rel)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*p)[i].rel, rel) == 0) {
            (*p)[i].t = now_s();
            return;
        }
    if (*n >= 100000)
        return; /* bounded: the next event for it will find room */
    if (*n == *cap) {
        const size_t nc = *cap ? *cap * 2 : 64;
        pend *np = realloc(*p, nc * sizeof *np);
        if (!np)
            return;
        *p = np;
        *cap = nc;
    }
    (*p)[*n].rel = strdup(rel);
    (*p)[*n].t = now_s();
    if ((*p)[*n].rel)
        (*n)++;
}

static int watch_loop(sender *s)
{
    const int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (ino < 0)
        return -errno;
    char **wd_paths = NULL;
    size_t nwd = 0, np = 0, cap = 0;
    pend *p = NULL;
    watch_add_tree(s, ino, s->src, &wd_paths, &nwd);
    /* Files created between the first walk and the watches: walk again;
     * unchanged files are recognised by the receiver and skipped. */
    int rc = 0;
    _Alignas(struct inotify_event) char buf[64 * 1024];
    while (!g_stop && rc == 0) {
        struct pollfd pfd = {.fd = ino, .events = POLLIN};
        poll(&pfd, 1, 250);
        for (;;) {
            const ssize_t n = read(ino, buf, sizeof buf);
            if (n <= 0)
                break;
            for (char *q = buf; q < buf + n;) {
                const struct inotify_event *ev = (const struct inotify_event *)q;
                q += sizeof *ev + ev->len;
                if (ev->wd < 0 || (size_t)ev->wd >= nwd || !wd_paths[ev->wd] || !ev->len)
                    continue;
                char abs[PATH_MAX];
                if (snprintf(abs, sizeof abs, "%s/%s", wd_paths[ev->wd], ev->name) >= (int)sizeof abs)
                    continue;
                if (ev->mask & IN_ISDIR) {
                    watch_add_tree(s, ino, abs, &wd_paths, &nwd);
                    /* Files may already be inside: queue them. */
                    char *const roots[] = {abs, NULL};
                    FTS *f = fts_open(roots, FTS_PHYSICAL | FTS_NOCHDIR | FTS_XDEV, NULL);
                    FTSENT *e;
                    while (f && (e = fts_read(f)) != NULL)
                        if (e->fts_info == FTS_F)
                            pend_add(&p, &np, &cap, rel_of(s, e->fts_path));
                    if (f)
                        fts_close(f);
                } else if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_MODIFY)) {
                    /* Every write restarts the file's quiet period. */
                    pend_add(&p, &np, &cap, rel_of(s, abs));
                }
            }
        }
        /* Settled files (no event for --settle seconds) are sent. */
        const double t = now_s();
        int sent_any = 0;
        for (size_t i = 0; i < np && rc == 0;) {
            if (t - p[i].t < s->settle) {
                i++;
                continue;
            }
            char abs[PATH_MAX];
            snprintf(abs, sizeof abs, "%s/%s", s->src, p[i].rel);
            struct stat st;
            if (lstat(abs, &st) == 0)
                rc = process_file(s, abs, p[i].rel);
            free(p[i].rel);
            p[i] = p[--np];
            sent_any = 1;
        }
        if (rc == 0 && (sent_any || manifest_due(s))) {
            if (!sent_any)
                rc = put_manifest(s);
            if (rc == 0)
                rc = emit_block(s); /* watch mode: do not hold data back */
            send_flush(s);
        }
    }
    for (size_t i = 0; i < np; i++)
        free(p[i].rel);
    free(p);
    for (size_t i = 0; i < nwd; i++)
        free(wd_paths[i]);
    free(wd_paths);
    close(ino);
    return rc;
}

/* ---- main ---- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sluice-diode send [options] SOURCE_DIR --to CHANNEL --key FILE\n"
            "  --to CHANNEL          fd:N | fifo:PATH | udp:HOST:PORT (unicast or multicast)\n"
            "  --key FILE            shared HMAC key (the receiver holds the same)\n"
            "  --policy FILE         approve content types by this sluice policy\n"
            "  --no-policy           send without content-type approval (explicit)\n"
            "  --prescan             DLP pre-scan; refuse files with findings of --refuse rules\n"
            "  --refuse GLOB         rule ids that refuse a file (repeatable; default *private-key*)\n"
            "  --max-size BYTES      refuse larger files (default 1G, or the policy's limit)\n"
            "  --report FILE         JSON lines: every decision with the file's SHA-256\n"
            "  --ledger DB --ledger-key FILE   record ingest events in the ledger\n"
            "  --watch               keep running, send new and changed files as they settle\n"
            "  --settle SECONDS      quiet time before a changed file is sent (default 1)\n"
            "  --rate MBIT           pace the channel (udp default 1000; 0 = unpaced)\n"
            "  --fec K:M             K data + M repair packets per block (udp default 32:8)\n"
            "  --packet-size BYTES   datagram size (udp default 8192)\n"
            "  --repeat N            send everything N more times (late or lossy receivers)\n"
            "  --manifest-interval S repeat the manifest every S seconds (default 1)\n"
            "  --compress LEVEL      zstd level (udp default 1, fd/fifo default 0 = off)\n"
            "  --progress/--no-progress   progress bar (default: when stderr is a terminal)\n"
            "  --log-level LEVEL     error|warn|info|debug (default warn)\n"
            "  --user NAME           run as this unprivileged user once set up\n"
            "exit: 0 all sent, 1 sent but some files refused, 2 usage error, 3 channel or setup error\n");
}

static int parse_fec(const char *a, unsigned *k, unsigned *m)
{
    char *end;
    const unsigned long kk = strtoul(a, &end, 10);
    if (end == a || *end != ':')
        return -EINVAL;
    const char *b = end + 1;
    const unsigned long mm = strtoul(b, &end, 10);
    if (end == b || *end || kk < 1 || kk > DIODE_MAX_K || mm > DIODE_MAX_M)
        return -EINVAL;
    *k = (unsigned)kk;
    *m = (unsigned)mm;
    return 0;
}

int diode_send_main(int argc, char **argv)
{
    static sender S;
    sender *s = &S;
    s->max_size = 1ULL << 30;
    s->level = INT_MIN; /* per channel, below */
    s->manifest_every = 1;
    s->settle = 1;
    s->rate_mbit = -1;
    s->progress = -1;
    int fec_set = 0, psize = 0;
    enum { O_TO = 1, O_KEY, O_POLICY, O_NOPOL, O_PRESCAN, O_REFUSE, O_MAXS, O_REPORT, O_LEDGER,
           O_LKEY, O_WATCH, O_SETTLE, O_RATE, O_FEC, O_PSIZE, O_REPEAT, O_MINT, O_COMP, O_PROG,
           O_NOPROG, O_LOG, O_USER, O_HELP };
    static const struct option lo[] = {
        {"to", 1, 0, O_TO}, {"key", 1, 0, O_KEY}, {"policy", 1, 0, O_POLICY},
        {"no-policy", 0, 0, O_NOPOL}, {"prescan", 0, 0, O_PRESCAN}, {"refuse", 1, 0, O_REFUSE},
        {"max-size", 1, 0, O_MAXS}, {"report", 1, 0, O_REPORT}, {"ledger", 1, 0, O_LEDGER},
        {"ledger-key", 1, 0, O_LKEY}, {"watch", 0, 0, O_WATCH}, {"settle", 1, 0, O_SETTLE},
        {"rate", 1, 0, O_RATE}, {"fec", 1, 0, O_FEC}, {"packet-size", 1, 0, O_PSIZE},
        {"repeat", 1, 0, O_REPEAT}, {"manifest-interval", 1, 0, O_MINT},
        {"compress", 1, 0, O_COMP}, {"progress", 0, 0, O_PROG}, {"no-progress", 0, 0, O_NOPROG},
        {"log-level", 1, 0, O_LOG}, {"user", 1, 0, O_USER}, {"help", 0, 0, O_HELP}, {0, 0, 0, 0}};
    enum log_level lvl = LOG_LVL_WARN;
    int c;
    opterr = 0; /* reported below, in sluice's own format */
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case O_TO: s->to = optarg; break;
        case O_KEY: s->key_path = optarg; break;
        case O_POLICY: s->policy_path = optarg; break;
        case O_NOPOL: s->no_policy = 1; break;
        case O_PRESCAN: s->prescan = 1; break;
        case O_REFUSE:
            if (s->nrefuse == SEND_MAX_REFUSE) {
                sluice_err("--refuse: at most %d", SEND_MAX_REFUSE);
                return DIODE_EXIT_USAGE;
            }
            s->refuse[s->nrefuse++] = optarg;
            break;
        case O_MAXS:
            if (parse_size(optarg, &s->max_size) < 0 || s->max_size > DIODE_MAX_FILE_SIZE) {
                sluice_err("--max-size: bad size '%s'", optarg);
                return DIODE_EXIT_USAGE;
            }
            break;
        case O_REPORT: s->report_path = optarg; break;
        case O_LEDGER: s->ledger_path = optarg; break;
        case O_LKEY: s->ledger_key = optarg; break;
        case O_WATCH: s->watch = 1; break;
        case O_SETTLE: s->settle = atof(optarg); break;
        case O_RATE:
            s->rate_mbit = atof(optarg);
            if (s->rate_mbit < 0) {
                sluice_err("--rate: must be >= 0");
                return DIODE_EXIT_USAGE;
            }
            break;
        case O_FEC:
            if (parse_fec(optarg, &s->k, &s->m) < 0) {
                sluice_err("--fec: expected K:M with 1<=K<=%d, 0<=M<=%d", DIODE_MAX_K, DIODE_MAX_M);
                return DIODE_EXIT_USAGE;
            }
            fec_set = 1;
            break;
        case O_PSIZE:
            psize = atoi(optarg);
            if (psize < DIODE_HDR_LEN + DIODE_MIN_SYMBOL || psize > DIODE_HDR_LEN + DIODE_MAX_SYMBOL) {
                sluice_err("--packet-size: between %d and %d", DIODE_HDR_LEN + DIODE_MIN_SYMBOL,
                           DIODE_HDR_LEN + DIODE_MAX_SYMBOL);
                return DIODE_EXIT_USAGE;
            }
            break;
        case O_REPEAT: s->repeat = (unsigned)atoi(optarg); break;
        case O_MINT: s->manifest_every = atof(optarg); break;
        case O_COMP: s->level = atoi(optarg); break;
        case O_USER: s->user = optarg; break;
        case O_PROG: s->progress = 1; break;
        case O_NOPROG: s->progress = 0; break;
        case O_LOG:
            if (log_parse_level(optarg, &lvl) < 0) {
                sluice_err("--log-level: unknown level '%s'", optarg);
                return DIODE_EXIT_USAGE;
            }
            break;
        case O_HELP: usage(stdout); return DIODE_EXIT_OK;
        default:
            sluice_bad_option("send", argv);
            return DIODE_EXIT_USAGE;
        }
    }
    log_init("sluice-diode", lvl);
    if (optind + 1 != argc || !s->to || !s->key_path) {
        sluice_err("send: SOURCE_DIR, --to and --key are required");
        usage(stderr);
        return DIODE_EXIT_USAGE;
    }
    if (!s->policy_path && !s->no_policy) {
        sluice_err("send: --policy FILE is required (or --no-policy to send without type approval)");
        return DIODE_EXIT_USAGE;
    }
    if (s->prescan && !s->policy_path) {
        sluice_err("send: --prescan needs --policy");
        return DIODE_EXIT_USAGE;
    }
    if (!!s->ledger_path != !!s->ledger_key) {
        sluice_err("send: --ledger and --ledger-key go together");
        return DIODE_EXIT_USAGE;
    }
    if (s->repeat > 1000 || s->repeat + 1 > UINT32_MAX) {
        sluice_err("--repeat: at most 1000");
        return DIODE_EXIT_USAGE;
    }
    if (s->prescan && s->nrefuse == 0)
        s->refuse[s->nrefuse++] = "*private-key*";
    if (s->level == 0)
        s->level = -1000; /* off */
    s->src = argv[optind];
    struct stat st;
    if (stat(s->src, &st) < 0 || !S_ISDIR(st.st_mode)) {
        sluice_err("%s: not a directory", s->src);
        return DIODE_EXIT_USAGE;
    }
    s->src_fd = open(s->src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->src_fd < 0) {
        sluice_err("%s: %s", s->src, strerror(errno));
        return DIODE_EXIT_USAGE;
    }
    char why[512];
    if (key_load(s->key_path, s->key, &s->keylen, why, sizeof why) < 0) {
        sluice_err("%s: %s", s->key_path, why);
        return DIODE_EXIT_ERROR;
    }
    if (s->policy_path) {
        dlp_error de;
        if (dlp_policy_load(s->policy_path, &s->pol, &de) < 0) {
            char msg[1200];
            dlp_error_format(&de, msg, sizeof msg);
            sluice_err("policy: %s", msg);
            return DIODE_EXIT_ERROR;
        }
    }
    if (s->ledger_path && ledger_open(s->ledger_path, s->ledger_key, &s->led, why, sizeof why) < 0) {
        sluice_err("%s: %s", s->ledger_path, why);
        return DIODE_EXIT_ERROR;
    }
    if (s->report_path) {
        s->report = fopen(s->report_path, "ae");
        if (!s->report) {
            sluice_err("%s: %s", s->report_path, strerror(errno));
            return DIODE_EXIT_ERROR;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    if (diode_chan_open_send(s->to, &s->ch, why, sizeof why) < 0) {
        sluice_err("%s: %s", s->to, why);
        return DIODE_EXIT_ERROR;
    }
    /* Packet geometry: large symbols on a stream (no loss to spread), one
     * datagram per packet on UDP. */
    if (s->ch.is_stream) {
        if (!fec_set) {
            s->k = 16;
            s->m = 0;
        }
        s->sym = psize ? (uint32_t)(psize - DIODE_HDR_LEN) : 65000;
        if (s->rate_mbit < 0)
            s->rate_mbit = 0;
        /* A local stream is not short of bandwidth: compressing would only
         * spend CPU on both sides. */
        if (s->level == INT_MIN)
            s->level = -1000;
    } else {
        if (!fec_set) {
            /* 25% repair in blocks of 40: at 2% random loss a block is
             * lost (9+ of 40 missing) about once in 12 million blocks,
             * where 16:4 at the same overhead loses one in 26,000. */
            s->k = 32;
            s->m = 8;
        }
        s->sym = (uint32_t)((psize ? psize : 8192) - DIODE_HDR_LEN);
        if (s->rate_mbit < 0)
            s->rate_mbit = 1000;
        if (s->level == INT_MIN) {
            s->level = 1;
            s->compress_auto = 1;
        }
    }
    if (!s->ch.is_stream) {
        const int seg = (int)(DIODE_HDR_LEN + s->sym);
        s->gso_per = (unsigned)(60000 / seg);
        if (s->gso_per > 1 && setsockopt(s->ch.fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof seg) == 0)
            s->gso = 1;
    }
    s->blkcap = (size_t)s->k * s->sym;
    if (s->blkcap < DIODE_MIN_BLOCK || s->blkcap > DIODE_MAX_BLOCK) {
        sluice_err("--fec/--packet-size: a block (K x symbol) must hold %d to %u bytes",
                   DIODE_MIN_BLOCK, DIODE_MAX_BLOCK);
        return DIODE_EXIT_USAGE;
    }
    /* A quarter of a block per DATA record: a file's first chunk rarely
     * finds a whole empty block, and a record that does not fit the rest
     * of the current block sends that rest as padding. With quarter-block
     * chunks the padding is under a quarter block per file (whole-block
     * chunks padded about half a block per large file: 15% of the wire on
     * a tree of mixed documents). */
    s->chunk = (uint32_t)(s->blkcap / 4 - DIODE_REC_HDR - DIODE_DATA_FIXED);
    if (s->chunk > (1u << 20))
        s->chunk = 1u << 20;
    s->group_max = s->gso ? (s->gso_per < SEND_MAX_GROUP ? s->gso_per : SEND_MAX_GROUP) : 1;
    const size_t npk = (size_t)(s->k + s->m) * s->group_max;
    int nomem = 0;
    for (unsigned i = 0; i < s->group_max + SEND_AHEAD; i++) {
        uint8_t *b = malloc(s->blkcap);
        if (!b)
            nomem = 1;
        else if (!s->blk)
            s->blk = b;
        else
            s->q_free[s->q_nfree++] = b;
    }
    s->repair = malloc((size_t)(s->m ? s->m : 1) * s->group_max * s->sym);
    s->hdrs = malloc(npk * DIODE_HDR_LEN);
    s->iov = calloc(npk * 2, sizeof *s->iov);
    s->msgs = calloc((size_t)(s->k + s->m), sizeof *s->msgs);
    s->zcap = ZSTD_compressBound(s->chunk);
    s->zbuf = malloc(s->zcap);
    s->rbuf = malloc(s->chunk);
    s->cctx = ZSTD_createCCtx();
    if (nomem || !s->blk || !s->repair || !s->hdrs || !s->iov || !s->msgs || !s->zbuf || !s->rbuf ||
        !s->cctx || diode_fec_new(s->k, s->m, &s->fec) < 0) {
        sluice_err("send: out of memory");
        return DIODE_EXIT_ERROR;
    }
    if (RAND_bytes((unsigned char *)&s->session, sizeof s->session) != 1) {
        sluice_err("send: no randomness for the session id");
        return DIODE_EXIT_ERROR;
    }
    snprintf(s->session_hex, sizeof s->session_hex, "%016llx", (unsigned long long)s->session);
    if (s->progress < 0)
        s->progress = isatty(2);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* Everything is open: from here on the sender reads SOURCE_DIR only and
     * can never read from its channel (diode/sandbox.c). */
    const diode_sandbox_paths sp = {.source = s->src, .report = s->report_path,
                                    .ledger = s->ledger_path, .key = s->key_path,
                                    .channel = s->to, .user = s->user};
    if (diode_confine_sender(s->ch.fd, &sp) < 0) {
        sluice_err("send: cannot confine the sender (see the log above)");
        return DIODE_EXIT_ERROR;
    }
    /* Started after the seccomp filter: the worker inherits it. */
    if (send_start(s) < 0) {
        sluice_err("send: cannot start the sending thread");
        return DIODE_EXIT_ERROR;
    }
    log_info("msg=sending session=%s to=\"%s\" k=%u m=%u symbol=%u rate=%.0f", s->session_hex,
             s->to, s->k, s->m, s->sym, s->rate_mbit);
    s->t0 = now_s();
    s->last_manifest = s->t0;
    s->passes = s->watch ? 1 : 1 + s->repeat;
    s->pass = 1;
    int rc = pass_begin(s);
    if (rc == 0)
        rc = walk(s, s->src);
    if (rc == 0 && s->watch) {
        rc = emit_block(s);
        send_flush(s);
        s->watching = 1;
        if (rc == 0)
            rc = watch_loop(s);
    }
    if (rc == 0)
        rc = pass_end(s);
    for (s->pass = 2; rc == 0 && !g_stop && s->pass <= s->passes; s->pass++) {
        rc = pass_begin(s);
        for (size_t i = 0; rc == 0 && i < s->nents && !g_stop; i++)
            if (s->ents[i].live)
                rc = resend(s, &s->ents[i]);
        if (rc == 0)
            rc = pass_end(s);
    }
    if (s->pass > s->passes)
        s->pass = s->passes;
    /* Everything queued goes out before the summary and the close. */
    const int wrc = send_finish(s);
    if (wrc < 0)
        s->chan_error = 1;
    progress(s, 1);
    if (s->report) {
        fflush(s->report);
        fsync(fileno(s->report));
        fclose(s->report);
    }
    if (s->led)
        ledger_close(s->led);
    diode_chan_close(&s->ch);
    if (rc < 0 || s->chan_error) {
        if (rc < 0 && !s->chan_error)
            sluice_err("send: %s", strerror(-rc));
        return DIODE_EXIT_ERROR;
    }
    return s->refused || s->changed ? DIODE_EXIT_INCOMPLETE : DIODE_EXIT_OK;
}
