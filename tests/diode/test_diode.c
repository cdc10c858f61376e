/* tests/diode/test_diode.c — unit tests of the diode's wire format, erasure
 * code, receiving core and vault path rules. Each test asserts what the
 * receiver would do with the bytes: which records come out, which are
 * refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "diode/diode.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t KEY[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t OTHER[32] = "fedcba9876543210fedcba9876543210";

static void t_crc32c_check_value(void **st)
{
    (void)st;
    assert_int_equal(diode_crc32c("123456789", 9), 0xE3069283u);
    assert_int_equal(diode_crc32c("", 0), 0);
}

static void t_header_roundtrip_and_flips(void **st)
{
    (void)st;
    const diode_hdr h = {.k = 16, .m = 4, .index = 19, .symbol_size = 8144,
                         .session = 0x1122334455667788ULL, .seq = 1ULL << 40, .block = 7,
                         .payload_crc = 0xdeadbeef};
    uint8_t b[DIODE_HDR_LEN];
    diode_hdr_encode(&h, b);
    diode_hdr g;
    assert_int_equal(diode_hdr_decode(b, sizeof b, &g), 0);
    assert_int_equal(g.session, h.session);
    assert_int_equal(g.seq, h.seq);
    assert_int_equal(g.index, 19);
    /* Every single-bit flip anywhere in the header is detected. */
    for (size_t i = 0; i < DIODE_HDR_LEN * 8; i++) {
        b[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(diode_hdr_decode(b, sizeof b, &g), -EBADMSG);
        b[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    assert_int_equal(diode_hdr_decode(b, DIODE_HDR_LEN - 1, &g), -EBADMSG);
    /* Parameters out of bounds are refused even with a right CRC. */
    diode_hdr bad = h;
    bad.index = 20;
    diode_hdr_encode(&bad, b);
    assert_int_equal(diode_hdr_decode(b, sizeof b, &g), -EBADMSG);
    bad = h;
    bad.k = 1; /* block of 8144 bytes < DIODE_MIN_BLOCK */
    bad.index = 0;
    diode_hdr_encode(&bad, b);
    assert_int_equal(diode_hdr_decode(b, sizeof b, &g), -EBADMSG);
}

static void t_fec_any_k_of_n(void **st)
{
    (void)st;
    enum { K = 8, M = 4, L = 1000 };
    diode_fec *f;
    assert_int_equal(diode_fec_new(K, M, &f), 0);
    static uint8_t orig[K][L], buf[K + M][L];
    uint8_t *sym[K + M];
    srand(7);
    for (int i = 0; i < K; i++)
        for (int j = 0; j < L; j++)
            orig[i][j] = buf[i][j] = (uint8_t)rand();
    for (int i = 0; i < K + M; i++)
        sym[i] = buf[i];
    diode_fec_encode(f, L, sym, sym + K);
    /* Erase every combination of up to M symbols from a sample of patterns. */
    for (unsigned mask = 0; mask < (1u << (K + M)); mask += 37) {
        if (__builtin_popcount(mask) > M)
            continue;
        static uint8_t work[K + M][L];
        uint8_t have[K + M];
        uint8_t *w[K + M];
        for (int i = 0; i < K + M; i++) {
            have[i] = !(mask & (1u << i));
            memcpy(work[i], have[i] ? buf[i] : (const uint8_t *)"", have[i] ? L : 0);
            if (!have[i])
                memset(work[i], 0xAA, L);
            w[i] = work[i];
        }
        assert_int_equal(diode_fec_decode(f, L, w, have), 0);
        for (int i = 0; i < K; i++)
            assert_memory_equal(work[i], orig[i], L);
    }
    /* M+1 erasures cannot be repaired. */
    uint8_t have[K + M];
    memset(have, 1, sizeof have);
    for (int i = 0; i <= M; i++)
        have[i] = 0;
    assert_int_equal(diode_fec_decode(f, L, sym, have), -EIO);
    diode_fec_free(f);
}

static void t_path_rules(void **st)
{
    (void)st;
    const char *good[] = {"a", "a/b/c.txt", "dir.with.dots/..x", "x/.hidden", "é/ü"};
    const char *bad[] = {"", "/etc/passwd", "../x", "a/../b", "a/./b", "a//b", "a/", "./a",
                         "..", ".sluice-staging/x", "a/.sluice", "a\nb", "a\x7f"};
    for (size_t i = 0; i < SLUICE_ARRAY_LEN(good); i++)
        assert_int_equal(vault_path_check(good[i], strlen(good[i])), 0);
    for (size_t i = 0; i < SLUICE_ARRAY_LEN(bad); i++)
        assert_int_equal(vault_path_check(bad[i], strlen(bad[i])), -EINVAL);
    assert_int_equal(vault_path_check("a\0b", 3), -EINVAL);
    char deep[300];
    memset(deep, 'x', 256);
    assert_int_equal(vault_path_check(deep, 256), -EINVAL); /* a component > 255 */
    char many[200];
    for (int i = 0; i < 65; i++) {
        many[2 * i] = 'a';
        many[2 * i + 1] = '/';
    }
    assert_int_equal(vault_path_check(many, 2 * 65 - 1), -EINVAL); /* depth 65 */
}

/* ---- the receiving core ---- */

typedef struct seen {
    int entries, manifest_entries, data, ends, rejects;
    int data_before_entry; /* DATA records handed over before any entry */
    char last_path[256];
    char last_reject[128];
    uint8_t last_data[64];
    size_t last_data_len;
} seen;

static int cb_entry(void *ctx, uint64_t s, const diode_entry *e, int fm)
{
    (void)s;
    seen *x = ctx;
    if (fm)
        x->manifest_entries++;
    else
        x->entries++;
    snprintf(x->last_path, sizeof x->last_path, "%s", e->path);
    return 0;
}
static int cb_data(void *ctx, uint64_t s, const diode_data *d)
{
    (void)s;
    seen *x = ctx;
    x->data++;
    if (x->entries + x->manifest_entries == 0)
        x->data_before_entry++;
    x->last_data_len = d->payload_len < 64 ? d->payload_len : 64;
    memcpy(x->last_data, d->payload, x->last_data_len);
    return 0;
}
static int cb_end(void *ctx, uint64_t s, const diode_end *e)
{
    (void)s, (void)e;
    ((seen *)ctx)->ends++;
    return 0;
}
static void cb_reject(void *ctx, uint64_t s, const char *what)
{
    (void)s;
    seen *x = ctx;
    x->rejects++;
    snprintf(x->last_reject, sizeof x->last_reject, "%s", what);
}
static const diode_rx_ops OPS = {.entry = cb_entry, .data = cb_data, .end = cb_end,
                                 .reject = cb_reject};

enum { TK = 4, TM = 2, TS = 2048 };

/* One block with an entry for `path` + its data + manifest + end, encoded
 * as TK+TM packets into out (each DIODE_HDR_LEN + TS bytes). */
static size_t make_stream(uint8_t *out, const char *path, const char *content, const uint8_t *key)
{
    static uint8_t blk[TK * TS];
    memset(blk, 0, sizeof blk);
    size_t off = 0;
    const uint64_t session = 42;
    diode_entry e = {.file_id = 9, .size = strlen(content), .mode = 0644, .chunk = 4096,
                     .path_len = (uint16_t)strlen(path), .path = path};
    sha256_buf(content, e.size, e.sha256);
    const diode_data d = {.file_id = 9, .raw_len = (uint32_t)e.size, .codec = DIODE_CODEC_RAW,
                          .payload = (const uint8_t *)content, .payload_len = e.size};
    const diode_end en = {.pass = 1, .passes = 1, .files = 1};
    const diode_entry *list[1] = {&e};
    assert_int_equal(diode_put_file(blk, sizeof blk, &off, &e, session, key, 32), 0);
    assert_int_equal(diode_put_data_hdr(blk, sizeof blk, &off, &d), 0);
    assert_int_equal(diode_put_manifest(blk, sizeof blk, &off, 0, 1, list, 1, session, key, 32), 0);
    assert_int_equal(diode_put_end(blk, sizeof blk, &off, &en, session, key, 32), 0);
    diode_fec *f;
    assert_int_equal(diode_fec_new(TK, TM, &f), 0);
    static uint8_t rep[TM][TS];
    uint8_t *data[TK], *r[TM];
    for (int i = 0; i < TK; i++)
        data[i] = blk + i * TS;
    for (int i = 0; i < TM; i++)
        r[i] = rep[i];
    diode_fec_encode(f, TS, data, r);
    diode_fec_free(f);
    size_t o = 0;
    for (int i = 0; i < TK + TM; i++) {
        const uint8_t *sym = i < TK ? data[i] : r[i - TK];
        const diode_hdr h = {.k = TK, .m = TM, .index = (uint16_t)i, .symbol_size = TS,
                             .session = session, .seq = (uint64_t)i, .block = 0,
                             .payload_crc = diode_crc32c(sym, TS)};
        diode_hdr_encode(&h, out + o);
        memcpy(out + o + DIODE_HDR_LEN, sym, TS);
        o += DIODE_HDR_LEN + TS;
    }
    return o;
}

#define PKT (DIODE_HDR_LEN + TS)
static uint8_t g_stream[(TK + TM) * PKT];

static void t_rx_packets_with_loss(void **st)
{
    (void)st;
    make_stream(g_stream, "docs/a.txt", "hello diode", KEY);
    seen x = {0};
    diode_rx *rx;
    assert_int_equal(diode_rx_new(KEY, 32, 0, &OPS, &x, &rx), 0);
    /* Lose data packets 0 and 2: the two repair packets rebuild them. */
    for (int i = TK + TM - 1; i >= 0; i--)
        if (i != 0 && i != 2)
            assert_int_equal(diode_rx_packet(rx, g_stream + (size_t)i * PKT, PKT), 0);
    assert_int_equal(x.entries, 1);
    assert_int_equal(x.manifest_entries, 1);
    assert_int_equal(x.ends, 1);
    assert_string_equal(x.last_path, "docs/a.txt");
    assert_int_equal(x.last_data_len, 11);
    assert_memory_equal(x.last_data, "hello diode", 11);
    assert_int_equal(diode_rx_get_stats(rx)->blocks_repaired, 1);
    /* The same packets again are duplicates: nothing new comes out. */
    for (int i = 0; i < TK + TM; i++)
        diode_rx_packet(rx, g_stream + (size_t)i * PKT, PKT);
    assert_int_equal(x.entries, 1);
    diode_rx_free(rx);
}

/* Block `no` of session 42: the FILE record (block 0) or the DATA and END
 * records (block 1) of one file, as TK+TM packets into out. */
static void make_split_block(uint8_t *out, int no, const char *content, const uint8_t *key)
{
    static uint8_t blk[TK * TS];
    memset(blk, 0, sizeof blk);
    size_t off = 0;
    const uint64_t session = 42;
    diode_entry e = {.file_id = 9, .size = strlen(content), .mode = 0644, .chunk = 4096,
                     .path_len = 5, .path = "a.txt"};
    sha256_buf(content, e.size, e.sha256);
    const diode_data d = {.file_id = 9, .raw_len = (uint32_t)e.size, .codec = DIODE_CODEC_RAW,
                          .payload = (const uint8_t *)content, .payload_len = e.size};
    const diode_end en = {.pass = 1, .passes = 1, .files = 1};
    if (no == 0) {
        assert_int_equal(diode_put_file(blk, sizeof blk, &off, &e, session, key, 32), 0);
    } else {
        assert_int_equal(diode_put_data_hdr(blk, sizeof blk, &off, &d), 0);
        assert_int_equal(diode_put_end(blk, sizeof blk, &off, &en, session, key, 32), 0);
    }
    diode_fec *f;
    assert_int_equal(diode_fec_new(TK, TM, &f), 0);
    static uint8_t rep[TM][TS];
    uint8_t *data[TK], *r[TM];
    for (int i = 0; i < TK; i++)
        data[i] = blk + i * TS;
    for (int i = 0; i < TM; i++)
        r[i] = rep[i];
    diode_fec_encode(f, TS, data, r);
    diode_fec_free(f);
    for (int i = 0; i < TK + TM; i++) {
        const uint8_t *sym = i < TK ? data[i] : r[i - TK];
        const diode_hdr h = {.k = TK, .m = TM, .index = (uint16_t)i, .symbol_size = TS,
                             .session = session, .seq = (uint64_t)(no * 10 + i),
                             .block = (uint64_t)no, .payload_crc = diode_crc32c(sym, TS)};
        diode_hdr_encode(&h, out + (size_t)i * (DIODE_HDR_LEN + TS));
        memcpy(out + (size_t)i * (DIODE_HDR_LEN + TS) + DIODE_HDR_LEN, sym, TS);
    }
}

static uint8_t g_blk0[(TK + TM) * (DIODE_HDR_LEN + TS)], g_blk1[(TK + TM) * (DIODE_HDR_LEN + TS)];

/* Interleaved blocks complete out of order when the earlier one lost a
 * packet: its records (the FILE entry) must still come out before those of
 * the later block (the file's DATA), or the data of a file not yet known
 * would be dropped. */
static void t_rx_blocks_released_in_order(void **st)
{
    (void)st;
    make_split_block(g_blk0, 0, "ordered bytes", KEY);
    make_split_block(g_blk1, 1, "ordered bytes", KEY);
    seen x = {0};
    diode_rx *rx;
    assert_int_equal(diode_rx_new(KEY, 32, 0, &OPS, &x, &rx), 0);
    const size_t P = DIODE_HDR_LEN + TS;
    /* Interleaved: symbol i of block 0, then of block 1; block 0's first
     * data packet is lost, so block 1 completes first. */
    for (int i = 0; i < TK + TM; i++) {
        if (i != 0)
            assert_int_equal(diode_rx_packet(rx, g_blk0 + (size_t)i * P, P), 0);
        assert_int_equal(diode_rx_packet(rx, g_blk1 + (size_t)i * P, P), 0);
        if (i == TK - 1)
            assert_int_equal(x.data, 0); /* block 1 is decoded but waits */
    }
    assert_int_equal(x.entries, 1);
    assert_int_equal(x.data, 1);
    assert_int_equal(x.data_before_entry, 0);
    assert_int_equal(x.ends, 1);
    assert_memory_equal(x.last_data, "ordered bytes", 13);
    assert_int_equal(diode_rx_get_stats(rx)->blocks_repaired, 1);
    diode_rx_free(rx);

    /* Block 0 lost for good: block 1 waits until flushed, and is then
     * parsed (its DATA has no entry to go to; the receiver drops it). */
    memset(&x, 0, sizeof x);
    assert_int_equal(diode_rx_new(KEY, 32, 0, &OPS, &x, &rx), 0);
    for (int i = 0; i < TK + TM; i++) {
        if (i < 2)
            diode_rx_packet(rx, g_blk0 + (size_t)i * P, P);
        diode_rx_packet(rx, g_blk1 + (size_t)i * P, P);
    }
    assert_int_equal(x.data + x.ends, 0);
    diode_rx_flush(rx);
    assert_int_equal(x.data, 1);
    assert_int_equal(x.ends, 1);
    assert_int_equal(diode_rx_get_stats(rx)->blocks_lost, 1);
    diode_rx_free(rx);
}

static void t_rx_too_much_loss_gives_nothing(void **st)
{
    (void)st;
    make_stream(g_stream, "a.txt", "x", KEY);
    seen x = {0};
    diode_rx *rx;
    assert_int_equal(diode_rx_new(KEY, 32, 0, &OPS, &x, &rx), 0);
    for (int i = 3; i < TK + TM; i++) /* 3 lost of 6, M = 2 */
        diode_rx_packet(rx, g_stream + (size_t)i * PKT, PKT);
    diode_rx_flush(rx);
    assert_int_equal(x.entries + x.data + x.ends, 0);
    assert_int_equal(diode_rx_get_stats(rx)->blocks_lost, 1);
    diode_rx_free(rx);
}

static void t_rx_forged_key_refused(void **st)
{
    (void)st;
    make_stream(g_stream, "a.txt", "secret", OTHER);
    seen x = {0};
    diode_rx *rx;
    assert_int_equal(diode_rx_new(KEY, 32, 0, &OPS, &x, &rx), 0);
    diode_rx_stream(rx, g_stream, sizeof g_stream);
    assert_int_equal(x.entries + x.manifest_entries + x.ends, 0);
    assert_true(x.rejects >= 3); /* file, manifest, end */
    assert_int_equal(x.data, 1); /* unauthenticated data is parsed but names no known file */
    diode_rx_free(rx);
}

static void t_rx_dotdot_path_refused(void **st)
{
    (void)st;
    make_stream(g_stream, "../../etc/cron.d/x", "boom", KEY);
    seen x = {0};
    diode_rx *rx;
    assert_int_equal(diode_rx_new(KEY, 32, 0, &OPS, &x, &rx), 0);
    diode_rx_stream(rx, g_stream, sizeof g_stream);
    assert_int_equal(x.entries + x.manifest_entries, 0);
    assert_string_equal(x.last_reject, "unsafe path");
    diode_rx_free(rx);
}

static void t_rx_stream_garbage_and_flips(void **st)
{
    (void)st;
    make_stream(g_stream, "a.txt", "payload", KEY);
    /* Garbage before, a bit flip in data packet 1 (repairable), and the
     * stream fed one byte at a time. */
    static uint8_t s2[sizeof g_stream + 1000];
    memset(s2, 'S', 500); /* includes no magic */
    memcpy(s2 + 500, "SLDI", 4);
    memcpy(s2 + 504, g_stream, sizeof g_stream);
    memset(s2 + 504 + sizeof g_stream, 0, 496);
    s2[504 + PKT + DIODE_HDR_LEN + 100] ^= 0x10;
    seen x = {0};
    diode_rx *rx;
    assert_int_equal(diode_rx_new(KEY, 32, 0, &OPS, &x, &rx), 0);
    for (size_t i = 0; i < sizeof s2; i++)
        diode_rx_stream(rx, s2 + i, 1);
    assert_int_equal(x.entries, 1);
    assert_int_equal(x.ends, 1);
    assert_memory_equal(x.last_data, "payload", 7);
    assert_true(diode_rx_get_stats(rx)->bad_packets >= 1);
    diode_rx_free(rx);
}

static void t_rx_truncated_stream(void **st)
{
    (void)st;
    make_stream(g_stream, "a.txt", "payload", KEY);
    seen x = {0};
    diode_rx *rx;
    assert_int_equal(diode_rx_new(KEY, 32, 0, &OPS, &x, &rx), 0);
    /* Only 3 whole packets and a piece of the 4th: the block never completes. */
    diode_rx_stream(rx, g_stream, 3 * PKT + 100);
    diode_rx_flush(rx);
    assert_int_equal(x.entries + x.data + x.ends, 0);
    diode_rx_free(rx);
}

static void t_records_bounds(void **st)
{
    (void)st;
    /* A record whose length runs past the block is refused, not read. */
    uint8_t blk[64] = {0};
    blk[0] = DIODE_REC_DATA;
    blk[4] = 200;
    seen x = {0};
    assert_int_equal(diode_block_parse(blk, sizeof blk, 1, KEY, 32, &OPS, &x), 0);
    assert_int_equal(x.data, 0);
    assert_int_equal(x.rejects, 1);
    /* A manifest entry claiming a path longer than its record. */
    size_t off = 0;
    uint8_t b2[512] = {0};
    diode_entry e = {.file_id = 1, .size = 1, .chunk = 4096, .path_len = 5, .path = "a.txt"};
    const diode_entry *l[1] = {&e};
    assert_int_equal(diode_put_manifest(b2, sizeof b2, &off, 0, 1, l, 1, 1, KEY, 32), 0);
    b2[DIODE_REC_HDR + 12 + 64] = 0xff; /* path_len low byte */
    x = (seen){0};
    diode_block_parse(b2, sizeof b2, 1, KEY, 32, &OPS, &x);
    assert_int_equal(x.manifest_entries, 0); /* HMAC no longer matches */
    /* Too small a buffer for a record: -ENOSPC, nothing written past cap. */
    off = 0;
    assert_int_equal(diode_put_file(b2, 40, &off, &e, 1, KEY, 32), -ENOSPC);
    assert_int_equal(off, 0);
}

int main(void)
{
    log_init("test_diode", LOG_LVL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_crc32c_check_value),
        cmocka_unit_test(t_header_roundtrip_and_flips),
        cmocka_unit_test(t_fec_any_k_of_n),
        cmocka_unit_test(t_path_rules),
        cmocka_unit_test(t_rx_packets_with_loss),
        cmocka_unit_test(t_rx_too_much_loss_gives_nothing),
        cmocka_unit_test(t_rx_blocks_released_in_order),
        cmocka_unit_test(t_rx_forged_key_refused),
        cmocka_unit_test(t_rx_dotdot_path_refused),
        cmocka_unit_test(t_rx_stream_garbage_and_flips),
        cmocka_unit_test(t_rx_truncated_stream),
        cmocka_unit_test(t_records_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
