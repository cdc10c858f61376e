/* diode/rx.c — the receiver's parsing core: packets (or raw stream bytes)
 * in, erasure-decoded blocks out to diode_block_parse().
 *
 * Everything here is hostile input. Memory is capped (mem_cap bytes of
 * incomplete blocks, a fixed number of slots, a bounded stream buffer); when
 * a cap is reached the oldest incomplete block is dropped, never the cap
 * raised. No I/O happens here, so the fuzzer can drive it directly. */
#include "diode/diode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RX_SLOTS 256
#define RX_DONE_WINDOW 8192 /* blocks remembered as decoded, per session */
#define RX_STREAM_BUF (2 * (DIODE_HDR_LEN + DIODE_MAX_SYMBOL))
/* Blocks are parsed in order (a file's FILE record comes before its DATA
 * records, possibly in an earlier block), but they may complete out of
 * order: a sender interleaves the packets of a group of blocks, and a block
 * that lost a packet completes only with its repair packets, after later
 * blocks. A decoded block therefore waits for the incomplete blocks before
 * it; an incomplete block RX_REORDER blocks behind the newest one is given
 * up (senders interleave far fewer), and so is the oldest one when memory
 * or slots run out. */
#define RX_REORDER 128
#define RX_MAP 1024
#define RX_SPARE 16

typedef struct rx_slot {
    int used, complete;    /* complete: decoded, waiting for earlier blocks */
    uint64_t session, block, touch;
    uint16_t k, m, nhave;
    uint32_t sym;
    size_t bytes;
    uint8_t *buf;          /* (k+m) * sym */
    uint8_t have[DIODE_MAX_K + DIODE_MAX_M];
} rx_slot;

struct diode_rx {
    const uint8_t *key;
    size_t keylen, mem_cap, mem_used;
    diode_rx_ops ops;
    void *ctx;
    rx_slot slots[RX_SLOTS];
    uint16_t map[RX_MAP];  /* block % RX_MAP -> a slot index (a hint, checked) */
    uint64_t touch;
    /* decoded blocks of `done_session`: [done_base, done_base + WINDOW) */
    uint64_t done_session, done_base;
    int have_session;
    uint8_t done[RX_DONE_WINDOW / 8];
    diode_fec *fec;        /* cached for the last (k, m) */
    unsigned fec_k, fec_m;
    uint8_t *sbuf;         /* stream reassembly */
    size_t slen;
    diode_rx_stats st;
    int cb_rc;             /* a callback's non-zero return, not yet reported */
    uint8_t *spare[RX_SPARE]; /* freed block buffers kept for reuse */
    size_t spare_len[RX_SPARE], nspare, spare_bytes;
};

int diode_rx_new(const uint8_t *key, size_t keylen, size_t mem_cap, const diode_rx_ops *ops,
                 void *ctx, diode_rx **out)
{
    diode_rx *rx = calloc(1, sizeof *rx);
    if (!rx)
        return -ENOMEM;
    rx->sbuf = malloc(RX_STREAM_BUF);
    if (!rx->sbuf) {
        free(rx);
        return -ENOMEM;
    }
    rx->key = key;
    rx->keylen = keylen;
    rx->mem_cap = mem_cap < (32u << 20) ? (32u << 20) : mem_cap;
    rx->ops = *ops;
    rx->ctx = ctx;
    *out = rx;
    return 0;
}

/* Block buffers are kept for reuse (a few, bounded in bytes): a fresh
 * allocation per block is a fresh mapping, and faulting its pages in, then
 * unmapping them in a threaded receiver, cost more than the copy itself. */
static uint8_t *buf_get(diode_rx *rx, size_t bytes)
{
    for (size_t i = 0; i < rx->nspare; i++)
        if (rx->spare_len[i] == bytes) {
            uint8_t *b = rx->spare[i];
            rx->spare_bytes -= bytes;
            rx->nspare--;
            rx->spare[i] = rx->spare[rx->nspare];
            rx->spare_len[i] = rx->spare_len[rx->nspare];
            return b;
        }
    return malloc(bytes);
}

static void buf_put(diode_rx *rx, uint8_t *b, size_t bytes)
{
    if (!b)
        return;
    if (rx->nspare < RX_SPARE && rx->spare_bytes + bytes <= rx->mem_cap / 8) {
        rx->spare[rx->nspare] = b;
        rx->spare_len[rx->nspare++] = bytes;
        rx->spare_bytes += bytes;
        return;
    }
    free(b);
}

static void slot_drop(diode_rx *rx, rx_slot *s)
{
    rx->mem_used -= s->bytes;
    buf_put(rx, s->buf, s->bytes);
    memset(s, 0, sizeof *s);
}

void diode_rx_free(diode_rx *rx)
{
    if (!rx)
        return;
    for (size_t i = 0; i < RX_SLOTS; i++)
        if (rx->slots[i].used)
            slot_drop(rx, &rx->slots[i]);
    diode_fec_free(rx->fec);
    for (size_t i = 0; i < rx->nspare; i++)
        free(rx->spare[i]);
    free(rx->sbuf);
    free(rx);
}

const diode_rx_stats *diode_rx_get_stats(const diode_rx *rx) { return &rx->st; }

static int done_get(diode_rx *rx, uint64_t session, uint64_t block)
{
    if (!rx->have_session || session != rx->done_session)
        return 0;
    if (block < rx->done_base)
        return 1; /* too old to matter: a later pass sends new blocks */
    const uint64_t i = block - rx->done_base;
    if (i >= RX_DONE_WINDOW)
        return 0;
    return (rx->done[i / 8] >> (i % 8)) & 1;
}

static void done_set(diode_rx *rx, uint64_t session, uint64_t block)
{
    if (!rx->have_session || session != rx->done_session) {
        rx->have_session = 1;
        rx->done_session = session;
        rx->done_base = block > RX_DONE_WINDOW / 2 ? block - RX_DONE_WINDOW / 2 : 0;
        memset(rx->done, 0, sizeof rx->done);
        rx->st.sessions++;
    }
    if (block < rx->done_base)
        return;
    while (block - rx->done_base >= RX_DONE_WINDOW) {
        /* Slide by half a window: forget the oldest half. */
        memmove(rx->done, rx->done + RX_DONE_WINDOW / 16, RX_DONE_WINDOW / 16);
        memset(rx->done + RX_DONE_WINDOW / 16, 0, RX_DONE_WINDOW / 16);
        rx->done_base += RX_DONE_WINDOW / 2;
    }
    const uint64_t i = block - rx->done_base;
    rx->done[i / 8] |= (uint8_t)(1u << (i % 8));
}

static rx_slot *slot_find(diode_rx *rx, const diode_hdr *h)
{
    /* Interleaved senders alternate blocks from one packet to the next:
     * look the block up by number first, scan only on a miss. */
    const size_t m = rx->map[h->block % RX_MAP];
    rx_slot *s = &rx->slots[m];
    if (s->used && s->block == h->block && s->session == h->session)
        return s;
    for (size_t i = 0; i < RX_SLOTS; i++) {
        s = &rx->slots[i];
        if (s->used && s->block == h->block && s->session == h->session) {
            rx->map[h->block % RX_MAP] = (uint16_t)i;
            return s;
        }
    }
    return NULL;
}

static rx_slot *slot_oldest_incomplete(diode_rx *rx)
{
    rx_slot *old = NULL;
    for (size_t i = 0; i < RX_SLOTS; i++)
        if (rx->slots[i].used && !rx->slots[i].complete &&
            (!old || rx->slots[i].touch < old->touch))
            old = &rx->slots[i];
    return old;
}

/* Parse a decoded block and free its slot. */
static int slot_parse(diode_rx *rx, rx_slot *s)
{
    /* Detach the buffer before the callbacks run so that they see a
     * consistent table. */
    uint8_t *buf = s->buf;
    const uint64_t session = s->session;
    const size_t len = (size_t)s->k * s->sym, bytes = s->bytes;
    rx->mem_used -= s->bytes;
    memset(s, 0, sizeof *s);
    const int rc = diode_block_parse(buf, len, session, rx->key, rx->keylen, &rx->ops, rx->ctx);
    buf_put(rx, buf, bytes);
    return rc;
}

/* Parse, in block order, every decoded block of `session` that no
 * incomplete block of the session precedes. */
static int release(diode_rx *rx, uint64_t session)
{
    for (;;) {
        rx_slot *first = NULL;
        uint64_t low = UINT64_MAX;
        for (size_t i = 0; i < RX_SLOTS; i++) {
            rx_slot *s = &rx->slots[i];
            if (!s->used || s->session != session)
                continue;
            if (!s->complete) {
                if (s->block < low)
                    low = s->block;
            } else if (!first || s->block < first->block) {
                first = s;
            }
        }
        if (!first || first->block > low)
            return 0;
        const int rc = slot_parse(rx, first);
        if (rc)
            return rc;
    }
}

/* An incomplete block is given up: counted as lost, and the blocks that
 * waited for it are released. */
static int slot_give_up(diode_rx *rx, rx_slot *s)
{
    const uint64_t session = s->session;
    rx->st.blocks_lost++;
    slot_drop(rx, s);
    return release(rx, session);
}

static rx_slot *slot_new(diode_rx *rx, const diode_hdr *h)
{
    const size_t bytes = (size_t)(h->k + h->m) * h->symbol_size;
    for (;;) {
        rx_slot *free_slot = NULL;
        for (size_t i = 0; i < RX_SLOTS && !free_slot; i++)
            if (!rx->slots[i].used)
                free_slot = &rx->slots[i];
        if (free_slot && rx->mem_used + bytes <= rx->mem_cap) {
            free_slot->buf = buf_get(rx, bytes);
            if (!free_slot->buf)
                return NULL;
            free_slot->used = 1;
            free_slot->session = h->session;
            free_slot->block = h->block;
            free_slot->k = h->k;
            free_slot->m = h->m;
            free_slot->sym = h->symbol_size;
            free_slot->bytes = bytes;
            rx->mem_used += bytes;
            rx->map[h->block % RX_MAP] = (uint16_t)(free_slot - rx->slots);
            return free_slot;
        }
        /* Decoded blocks wait only for incomplete ones: giving up the
         * oldest incomplete block frees its slot and releases them. */
        rx_slot *old = slot_oldest_incomplete(rx);
        if (!old)
            return NULL; /* a single block larger than the cap: refuse it */
        const int rc = slot_give_up(rx, old);
        if (rc && !rx->cb_rc)
            rx->cb_rc = rc;
    }
}

static int block_complete(diode_rx *rx, rx_slot *s)
{
    const uint64_t session = s->session;
    int repaired = 0;
    for (unsigned i = 0; i < s->k; i++)
        if (!s->have[i])
            repaired = 1;
    if (repaired) {
        if (!rx->fec || rx->fec_k != s->k || rx->fec_m != s->m) {
            diode_fec_free(rx->fec);
            rx->fec = NULL;
            if (diode_fec_new(s->k, s->m, &rx->fec) < 0)
                return -ENOMEM;
            rx->fec_k = s->k;
            rx->fec_m = s->m;
        }
        uint8_t *sym[DIODE_MAX_K + DIODE_MAX_M];
        for (unsigned i = 0; i < (unsigned)(s->k + s->m); i++)
            sym[i] = s->buf + (size_t)i * s->sym;
        if (diode_fec_decode(rx->fec, s->sym, sym, s->have) < 0) {
            done_set(rx, session, s->block);
            return slot_give_up(rx, s);
        }
        rx->st.blocks_repaired++;
    }
    rx->st.blocks++;
    done_set(rx, session, s->block);
    s->complete = 1;
    return release(rx, session);
}

static int rx_checked_packet(diode_rx *rx, const diode_hdr *h, const uint8_t *payload)
{
    rx->st.packets++;
    if (done_get(rx, h->session, h->block)) {
        rx->st.dup_packets++;
        return 0;
    }
    rx_slot *s = slot_find(rx, h);
    if (s && (s->k != h->k || s->m != h->m || s->sym != h->symbol_size)) {
        rx->st.bad_packets++; /* inconsistent parameters within a block */
        return 0;
    }
    if (!s) {
        /* A new block: incomplete blocks far behind it will not complete. */
        for (size_t i = 0; i < RX_SLOTS; i++) {
            rx_slot *o = &rx->slots[i];
            if (o->used && !o->complete && o->session == h->session &&
                o->block + RX_REORDER < h->block) {
                const int rc = slot_give_up(rx, o);
                if (rc && !rx->cb_rc)
                    rx->cb_rc = rc;
            }
        }
        s = slot_new(rx, h);
        if (rx->cb_rc) {
            const int rc = rx->cb_rc;
            rx->cb_rc = 0;
            return rc;
        }
        if (!s) {
            rx->st.bad_packets++;
            return 0;
        }
    }
    s->touch = ++rx->touch;
    if (s->have[h->index]) {
        rx->st.dup_packets++;
        return 0;
    }
    memcpy(s->buf + (size_t)h->index * s->sym, payload, s->sym);
    s->have[h->index] = 1;
    if (++s->nhave >= s->k)
        return block_complete(rx, s);
    return 0;
}

int diode_rx_packet(diode_rx *rx, const uint8_t *pkt, size_t len)
{
    diode_hdr h;
    if (diode_pkt_check(pkt, len, &h) < 0) {
        rx->st.bad_packets++;
        return 0;
    }
    return rx_checked_packet(rx, &h, pkt + DIODE_HDR_LEN);
}

/* Consume as many packets as possible from buf[0..len); returns bytes used.
 * Bytes that cannot start a valid packet are skipped one at a time up to
 * the next magic. */
static size_t stream_scan(diode_rx *rx, const uint8_t *buf, size_t len, int *rc)
{
    size_t off = 0;
    *rc = 0;
    while (len - off >= DIODE_HDR_LEN) {
        if (memcmp(buf + off, DIODE_MAGIC, 4) != 0) {
            const uint8_t *m = memmem(buf + off + 1, len - off - 1, DIODE_MAGIC, 4);
            const size_t skip = m ? (size_t)(m - (buf + off)) : len - off - 3;
            rx->st.bad_packets++;
            off += skip;
            continue;
        }
        diode_hdr h;
        if (diode_hdr_decode(buf + off, len - off, &h) < 0) {
            rx->st.bad_packets++;
            off++;
            continue;
        }
        const size_t plen = DIODE_HDR_LEN + (size_t)h.symbol_size;
        if (len - off < plen)
            break; /* wait for the rest */
        if (diode_crc32c(buf + off + DIODE_HDR_LEN, h.symbol_size) != h.payload_crc) {
            rx->st.bad_packets++;
            off++;
            continue;
        }
        *rc = rx_checked_packet(rx, &h, buf + off + DIODE_HDR_LEN);
        off += plen;
        if (*rc)
            break;
    }
    return off;
}

int diode_rx_stream(diode_rx *rx, const uint8_t *buf, size_t len)
{
    int rc = 0;
    while (len > 0) {
        if (rx->slen == 0) {
            /* Fast path: parse straight from the caller's buffer and keep
             * only an incomplete tail. */
            const size_t used = stream_scan(rx, buf, len, &rc);
            if (rc)
                return rc;
            buf += used;
            len -= used;
            if (len >= RX_STREAM_BUF) {
                /* Cannot happen with a valid header (bounded symbol size);
                 * drop a byte to keep going. */
                buf++;
                len--;
                continue;
            }
            memcpy(rx->sbuf, buf, len);
            rx->slen = len;
            return 0;
        }
        const size_t take = len < RX_STREAM_BUF - rx->slen ? len : RX_STREAM_BUF - rx->slen;
        memcpy(rx->sbuf + rx->slen, buf, take);
        rx->slen += take;
        buf += take;
        len -= take;
        const size_t used = stream_scan(rx, rx->sbuf, rx->slen, &rc);
        if (used == 0 && rx->slen == RX_STREAM_BUF) {
            /* A full buffer without a packet: give up its first byte. */
            memmove(rx->sbuf, rx->sbuf + 1, rx->slen - 1);
            rx->slen--;
        } else {
            memmove(rx->sbuf, rx->sbuf + used, rx->slen - used);
            rx->slen -= used;
        }
        if (rc)
            return rc;
    }
    return 0;
}

void diode_rx_flush(diode_rx *rx)
{
    /* Incomplete blocks are lost; the decoded ones they held back are
     * parsed (in order). */
    for (size_t i = 0; i < RX_SLOTS; i++)
        if (rx->slots[i].used && !rx->slots[i].complete) {
            rx->st.blocks_lost++;
            slot_drop(rx, &rx->slots[i]);
        }
    for (size_t i = 0; i < RX_SLOTS; i++)
        if (rx->slots[i].used)
            release(rx, rx->slots[i].session);
    rx->cb_rc = 0;
    rx->slen = 0;
}
