/* diode/frame.c — the wire format: packet headers, records, HMACs, and the
 * parser of decoded blocks.
 *
 * The parser runs on the receiving side on bytes an attacker may control. It
 * must never read past a length it has not checked against what remains,
 * never trust a record before its HMAC verified, and never hand a path to
 * the vault that vault_path_check() refused. */
#include "diode/diode.h"

#include <errno.h>
#include <isa-l/crc.h>
#include <stdlib.h>
#include <string.h>

/* ---- little-endian helpers ---- */
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

uint32_t diode_crc32c(const void *buf, size_t len)
{
    /* ISA-L's crc32_iscsi takes an int length: feed large buffers in pieces. */
    uint32_t crc = 0xFFFFFFFFu;
    const uint8_t *p = buf;
    while (len > 0) {
        const size_t n = len > (1u << 30) ? (1u << 30) : len;
        crc = crc32_iscsi((unsigned char *)p, (int)n, crc);
        p += n;
        len -= n;
    }
    return ~crc;
}

void diode_hdr_encode(const diode_hdr *h, uint8_t out[DIODE_HDR_LEN])
{
    memcpy(out, DIODE_MAGIC, 4);
    out[4] = DIODE_WIRE_VERSION;
    out[5] = h->flags;
    put16(out + 6, h->k);
    put16(out + 8, h->m);
    put16(out + 10, h->index);
    put32(out + 12, h->symbol_size);
    put64(out + 16, h->session);
    put64(out + 24, h->seq);
    put64(out + 32, h->block);
    put32(out + 40, h->payload_crc);
    put32(out + 44, diode_crc32c(out, 44));
}

int diode_hdr_decode(const uint8_t *buf, size_t len, diode_hdr *h)
{
    if (len < DIODE_HDR_LEN || memcmp(buf, DIODE_MAGIC, 4) != 0)
        return -EBADMSG;
    if (get32(buf + 44) != diode_crc32c(buf, 44))
        return -EBADMSG;
    h->version = buf[4];
    h->flags = buf[5];
    h->k = get16(buf + 6);
    h->m = get16(buf + 8);
    h->index = get16(buf + 10);
    h->symbol_size = get32(buf + 12);
    h->session = get64(buf + 16);
    h->seq = get64(buf + 24);
    h->block = get64(buf + 32);
    h->payload_crc = get32(buf + 40);
    if (h->version != DIODE_WIRE_VERSION || h->flags != 0)
        return -EBADMSG;
    if (h->k < 1 || h->k > DIODE_MAX_K || h->m > DIODE_MAX_M || h->index >= h->k + h->m)
        return -EBADMSG;
    if (h->symbol_size < DIODE_MIN_SYMBOL || h->symbol_size > DIODE_MAX_SYMBOL)
        return -EBADMSG;
    const uint64_t blk = (uint64_t)h->k * h->symbol_size;
    if (blk < DIODE_MIN_BLOCK || blk > DIODE_MAX_BLOCK)
        return -EBADMSG;
    return 0;
}

int diode_pkt_check(const uint8_t *pkt, size_t len, diode_hdr *h)
{
    if (diode_hdr_decode(pkt, len, h) < 0)
        return -EBADMSG;
    if (len != DIODE_HDR_LEN + (size_t)h->symbol_size)
        return -EBADMSG;
    if (diode_crc32c(pkt + DIODE_HDR_LEN, h->symbol_size) != h->payload_crc)
        return -EBADMSG;
    return 0;
}

/* ---- records ---- */

static int rec_begin(uint8_t *buf, size_t cap, size_t *off, uint16_t type, size_t body)
{
    if (body > UINT32_MAX || *off > cap || cap - *off < DIODE_REC_HDR + body)
        return -ENOSPC;
    uint8_t *p = buf + *off;
    put16(p, type);
    put16(p + 2, 0);
    put32(p + 4, (uint32_t)body);
    return 0;
}

size_t diode_entry_wire_len(const diode_entry *e) { return DIODE_ENTRY_FIXED + e->path_len; }

static void entry_encode(uint8_t *p, const diode_entry *e)
{
    put64(p, e->file_id);
    put64(p + 8, e->size);
    put64(p + 16, (uint64_t)e->mtime_ns);
    put32(p + 24, e->mode);
    put32(p + 28, e->chunk);
    memcpy(p + 32, e->sha256, SHA256_LEN);
    put16(p + 64, e->path_len);
    memcpy(p + 66, e->path, e->path_len);
}

/* Bounded decode of one entry; *used gets its wire length. */
static int entry_decode(const uint8_t *p, size_t len, diode_entry *e, size_t *used,
                        char pbuf[DIODE_PATH_MAX + 1])
{
    if (len < DIODE_ENTRY_FIXED)
        return -EBADMSG;
    e->file_id = get64(p);
    e->size = get64(p + 8);
    e->mtime_ns = (int64_t)get64(p + 16);
    e->mode = get32(p + 24);
    e->chunk = get32(p + 28);
    memcpy(e->sha256, p + 32, SHA256_LEN);
    e->path_len = get16(p + 64);
    if (e->path_len == 0 || e->path_len > DIODE_PATH_MAX || len - DIODE_ENTRY_FIXED < e->path_len)
        return -EBADMSG;
    memcpy(pbuf, p + 66, e->path_len);
    pbuf[e->path_len] = '\0';
    e->path = pbuf;
    *used = DIODE_ENTRY_FIXED + e->path_len;
    /* A chunk must fit a block, a file must be of a bounded size, and the
     * number of chunks must be bounded for the receiver's bitmaps. */
    if (e->chunk < 1024 || e->chunk > DIODE_MAX_BLOCK || e->size > DIODE_MAX_FILE_SIZE)
        return -EBADMSG;
    if (e->mode & ~07777u)
        return -EBADMSG;
    return 0;
}

/* HMAC over a domain label, the session id and the signed bytes. */
static int mac(const char *domain, uint64_t session, const uint8_t *body, size_t len,
               const uint8_t *key, size_t keylen, uint8_t out[SHA256_LEN])
{
    const size_t dl = strlen(domain);
    if (len > SIZE_MAX - dl - 8)
        return -EOVERFLOW;
    uint8_t stackbuf[8192];
    uint8_t *tmp = dl + 8 + len <= sizeof stackbuf ? stackbuf : malloc(dl + 8 + len);
    if (!tmp)
        return -ENOMEM;
    memcpy(tmp, domain, dl);
    put64(tmp + dl, session);
    memcpy(tmp + dl + 8, body, len);
    const int rc = hmac_sha256(key, keylen, tmp, dl + 8 + len, out);
    if (tmp != stackbuf)
        free(tmp);
    return rc;
}

int diode_put_hello(uint8_t *buf, size_t cap, size_t *off, const diode_hello *h)
{
    if (rec_begin(buf, cap, off, DIODE_REC_HELLO, 24) < 0)
        return -ENOSPC;
    uint8_t *p = buf + *off + DIODE_REC_HDR;
    put64(p, (uint64_t)h->start_ns);
    put32(p + 8, h->pass);
    put32(p + 12, h->passes);
    put16(p + 16, h->k);
    put16(p + 18, h->m);
    put32(p + 20, h->symbol_size);
    *off += DIODE_REC_HDR + 24;
    return 0;
}

int diode_put_file(uint8_t *buf, size_t cap, size_t *off, const diode_entry *e, uint64_t session,
                   const uint8_t *key, size_t keylen)
{
    const size_t el = diode_entry_wire_len(e);
    if (rec_begin(buf, cap, off, DIODE_REC_FILE, el + SHA256_LEN) < 0)
        return -ENOSPC;
    uint8_t *p = buf + *off + DIODE_REC_HDR;
    entry_encode(p, e);
    int rc = mac("SLDI-FILE1", session, p, el, key, keylen, p + el);
    if (rc < 0)
        return rc;
    *off += DIODE_REC_HDR + el + SHA256_LEN;
    return 0;
}

int diode_put_data_hdr(uint8_t *buf, size_t cap, size_t *off, const diode_data *d)
{
    if (rec_begin(buf, cap, off, DIODE_REC_DATA, DIODE_DATA_FIXED + d->payload_len) < 0)
        return -ENOSPC;
    uint8_t *p = buf + *off + DIODE_REC_HDR;
    put64(p, d->file_id);
    put64(p + 8, d->offset);
    put32(p + 16, d->raw_len);
    p[20] = d->codec;
    p[21] = p[22] = p[23] = 0;
    /* The caller writes the payload at p + 24 (often compressing in place). */
    if (d->payload && d->payload != p + DIODE_DATA_FIXED)
        memcpy(p + DIODE_DATA_FIXED, d->payload, d->payload_len);
    *off += DIODE_REC_HDR + DIODE_DATA_FIXED + d->payload_len;
    return 0;
}

int diode_put_end(uint8_t *buf, size_t cap, size_t *off, const diode_end *e, uint64_t session,
                  const uint8_t *key, size_t keylen)
{
    if (rec_begin(buf, cap, off, DIODE_REC_END, 24 + SHA256_LEN) < 0)
        return -ENOSPC;
    uint8_t *p = buf + *off + DIODE_REC_HDR;
    put32(p, e->pass);
    put32(p + 4, e->passes);
    put64(p + 8, e->files);
    put64(p + 16, e->bytes);
    int rc = mac("SLDI-END1", session, p, 24, key, keylen, p + 24);
    if (rc < 0)
        return rc;
    *off += DIODE_REC_HDR + 24 + SHA256_LEN;
    return 0;
}

int diode_put_manifest(uint8_t *buf, size_t cap, size_t *off, uint32_t part, uint32_t nparts,
                       const diode_entry *const *entries, size_t n, uint64_t session,
                       const uint8_t *key, size_t keylen)
{
    size_t body = 12;
    for (size_t i = 0; i < n; i++)
        body += diode_entry_wire_len(entries[i]);
    if (n > UINT32_MAX || rec_begin(buf, cap, off, DIODE_REC_MANIFEST, body + SHA256_LEN) < 0)
        return -ENOSPC;
    uint8_t *p = buf + *off + DIODE_REC_HDR;
    put32(p, part);
    put32(p + 4, nparts);
    put32(p + 8, (uint32_t)n);
    size_t o = 12;
    for (size_t i = 0; i < n; i++) {
        entry_encode(p + o, entries[i]);
        o += diode_entry_wire_len(entries[i]);
    }
    int rc = mac("SLDI-MAN1", session, p, body, key, keylen, p + body);
    if (rc < 0)
        return rc;
    *off += DIODE_REC_HDR + body + SHA256_LEN;
    return 0;
}

static int verify(const char *domain, uint64_t session, const uint8_t *body, size_t len,
                  const uint8_t *tag, const uint8_t *key, size_t keylen)
{
    uint8_t want[SHA256_LEN];
    if (mac(domain, session, body, len, key, keylen, want) < 0)
        return 0;
    return ct_equal(want, tag, SHA256_LEN);
}

static void reject(const diode_rx_ops *ops, void *ctx, uint64_t session, const char *what)
{
    if (ops->reject)
        ops->reject(ctx, session, what);
}

static int parse_entry_checked(const uint8_t *p, size_t len, diode_entry *e, size_t *used,
                               const diode_rx_ops *ops, void *ctx, uint64_t session)
{
    static char pbuf[DIODE_PATH_MAX + 1];
    if (entry_decode(p, len, e, used, pbuf) < 0) {
        reject(ops, ctx, session, "malformed entry");
        return -EBADMSG;
    }
    return 0;
}

int diode_block_parse(const uint8_t *blk, size_t len, uint64_t session, const uint8_t *key,
                      size_t keylen, const diode_rx_ops *ops, void *ctx)
{
    size_t off = 0;
    diode_entry e;
    while (len - off >= DIODE_REC_HDR) {
        const uint16_t type = get16(blk + off);
        const uint32_t blen = get32(blk + off + 4);
        if (type == DIODE_REC_END_OF_BLOCK)
            return 0;
        if (get16(blk + off + 2) != 0 || blen > len - off - DIODE_REC_HDR) {
            reject(ops, ctx, session, "malformed record header");
            return 0; /* the rest of the block cannot be delimited */
        }
        const uint8_t *p = blk + off + DIODE_REC_HDR;
        off += DIODE_REC_HDR + blen;
        int rc = 0;
        switch (type) {
        case DIODE_REC_HELLO: {
            if (blen != 24) {
                reject(ops, ctx, session, "malformed hello");
                break;
            }
            diode_hello h = {.start_ns = (int64_t)get64(p), .pass = get32(p + 8),
                             .passes = get32(p + 12), .k = get16(p + 16), .m = get16(p + 18),
                             .symbol_size = get32(p + 20)};
            if (ops->hello)
                rc = ops->hello(ctx, session, &h);
            break;
        }
        case DIODE_REC_FILE: {
            size_t used;
            if (blen < SHA256_LEN || parse_entry_checked(p, blen - SHA256_LEN, &e, &used, ops, ctx,
                                                         session) < 0)
                break;
            if (used != blen - SHA256_LEN) {
                reject(ops, ctx, session, "malformed file record");
                break;
            }
            if (!verify("SLDI-FILE1", session, p, used, p + used, key, keylen)) {
                reject(ops, ctx, session, "file record HMAC mismatch");
                break;
            }
            if (vault_path_check(e.path, e.path_len) < 0) {
                reject(ops, ctx, session, "unsafe path");
                break;
            }
            if (ops->entry)
                rc = ops->entry(ctx, session, &e, 0);
            break;
        }
        case DIODE_REC_DATA: {
            if (blen < DIODE_DATA_FIXED || p[21] || p[22] || p[23]) {
                reject(ops, ctx, session, "malformed data record");
                break;
            }
            diode_data d = {.file_id = get64(p), .offset = get64(p + 8), .raw_len = get32(p + 16),
                            .codec = p[20], .payload = p + DIODE_DATA_FIXED,
                            .payload_len = blen - DIODE_DATA_FIXED};
            if (d.codec > DIODE_CODEC_ZSTD || d.raw_len > DIODE_MAX_BLOCK ||
                (d.codec == DIODE_CODEC_RAW && d.payload_len != d.raw_len)) {
                reject(ops, ctx, session, "malformed data record");
                break;
            }
            if (ops->data)
                rc = ops->data(ctx, session, &d);
            break;
        }
        case DIODE_REC_MANIFEST: {
            if (blen < 12 + SHA256_LEN) {
                reject(ops, ctx, session, "malformed manifest");
                break;
            }
            const size_t body = blen - SHA256_LEN;
            if (!verify("SLDI-MAN1", session, p, body, p + body, key, keylen)) {
                reject(ops, ctx, session, "manifest HMAC mismatch");
                break;
            }
            const uint32_t n = get32(p + 8);
            size_t o = 12;
            for (uint32_t i = 0; i < n && rc == 0; i++) {
                size_t used;
                if (parse_entry_checked(p + o, body - o, &e, &used, ops, ctx, session) < 0)
                    break;
                o += used;
                if (vault_path_check(e.path, e.path_len) < 0) {
                    reject(ops, ctx, session, "unsafe path");
                    continue;
                }
                if (ops->entry)
                    rc = ops->entry(ctx, session, &e, 1);
            }
            break;
        }
        case DIODE_REC_END: {
            if (blen != 24 + SHA256_LEN ||
                !verify("SLDI-END1", session, p, 24, p + 24, key, keylen)) {
                reject(ops, ctx, session, "malformed or unauthenticated end record");
                break;
            }
            diode_end en = {.pass = get32(p), .passes = get32(p + 4), .files = get64(p + 8),
                            .bytes = get64(p + 16)};
            if (ops->end)
                rc = ops->end(ctx, session, &en);
            break;
        }
        default:
            reject(ops, ctx, session, "unknown record type");
            break;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}
