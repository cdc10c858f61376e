/* diode/fuzz_frame.c — libFuzzer target for everything the receiver parses
 * before a byte reaches the disk: stream framing, packet headers and CRCs,
 * the erasure-coded block table, and record parsing with HMAC checks.
 *
 * Input: first byte chooses the mode (even: a raw stream; odd: datagrams,
 * each prefixed by a 16-bit length). The key is fixed so that seeds made by
 * the real sender with the same key (tests/diode/corpus) reach deep. The
 * callbacks assert what the receiver relies on. */
#include "diode/diode.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t fuzz_key[32] = "sluice-diode-fuzzing-key-32bytes";

static int on_entry(void *ctx, uint64_t session, const diode_entry *e, int from_manifest)
{
    (void)ctx, (void)session, (void)from_manifest;
    if (vault_path_check(e->path, e->path_len) != 0 || strlen(e->path) != e->path_len)
        abort();
    if (e->chunk < 1024 || e->size > DIODE_MAX_FILE_SIZE)
        abort();
    return 0;
}

static int on_data(void *ctx, uint64_t session, const diode_data *d)
{
    (void)ctx, (void)session;
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < d->payload_len; i += 4096)
        sink ^= d->payload[i];
    if (d->payload_len)
        sink ^= d->payload[d->payload_len - 1];
    (void)sink;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const diode_rx_ops ops = {.entry = on_entry, .data = on_data};
    diode_rx *rx;
    if (diode_rx_new(fuzz_key, sizeof fuzz_key, 32u << 20, &ops, NULL, &rx) < 0)
        return 0;
    if (data[0] % 2 == 0) {
        /* Feed in uneven pieces to exercise reassembly. */
        size_t off = 1, step = 1 + data[0] * 37u;
        while (off < size) {
            const size_t n = size - off < step ? size - off : step;
            diode_rx_stream(rx, data + off, n);
            off += n;
            step = step * 3 % 70001 + 1;
        }
    } else {
        size_t off = 1;
        while (size - off >= 2) {
            const size_t n = (size_t)data[off] | (size_t)data[off + 1] << 8;
            off += 2;
            const size_t take = n < size - off ? n : size - off;
            diode_rx_packet(rx, data + off, take);
            off += take;
        }
    }
    diode_rx_flush(rx);
    diode_rx_free(rx);
    return 0;
}
