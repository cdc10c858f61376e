/* tests/diode/diode_forge.c — writes a packet stream that the real sender
 * would never produce: an entry with any path (.., absolute, through a
 * symlink), signed with a given key, followed by its data. The integration
 * tests feed it to a receiver to prove that such input is refused.
 *
 *   diode_forge KEYFILE PATH CONTENT > stream
 */
#include "diode/diode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: diode_forge KEYFILE PATH CONTENT\n");
        return 2;
    }
    uint8_t key[KEY_MAX_LEN];
    size_t keylen;
    char why[256];
    if (key_load(argv[1], key, &keylen, why, sizeof why) < 0) {
        fprintf(stderr, "diode_forge: %s: %s\n", argv[1], why);
        return 2;
    }
    enum { K = 2, SYM = 4096 };
    static uint8_t blk[K * SYM];
    size_t off = 0;
    const uint64_t session = 0x5eed5eed5eed5eedULL;
    const char *content = argv[3];
    diode_entry e = {.file_id = 1, .size = strlen(content), .mtime_ns = 0, .mode = 0644,
                     .chunk = 4096, .path_len = (uint16_t)strlen(argv[2]), .path = argv[2]};
    sha256_buf(content, e.size, e.sha256);
    const diode_hello h = {.pass = 1, .passes = 1, .k = K, .m = 0, .symbol_size = SYM};
    const diode_data d = {.file_id = 1, .offset = 0, .raw_len = (uint32_t)e.size,
                          .codec = DIODE_CODEC_RAW, .payload = (const uint8_t *)content,
                          .payload_len = e.size};
    const diode_end en = {.pass = 1, .passes = 1, .files = 1, .bytes = e.size};
    const diode_entry *list[1] = {&e};
    if (diode_put_hello(blk, sizeof blk, &off, &h) || diode_put_file(blk, sizeof blk, &off, &e, session, key, keylen) ||
        (e.size && diode_put_data_hdr(blk, sizeof blk, &off, &d)) ||
        diode_put_manifest(blk, sizeof blk, &off, 0, 1, list, 1, session, key, keylen) ||
        diode_put_end(blk, sizeof blk, &off, &en, session, key, keylen)) {
        fprintf(stderr, "diode_forge: does not fit one block\n");
        return 2;
    }
    for (unsigned i = 0; i < K; i++) {
        uint8_t hdr[DIODE_HDR_LEN];
        const diode_hdr ph = {.k = K, .m = 0, .index = (uint16_t)i, .symbol_size = SYM,
                              .session = session, .seq = i, .block = 0,
                              .payload_crc = diode_crc32c(blk + i * SYM, SYM)};
        diode_hdr_encode(&ph, hdr);
        if (write_full(1, hdr, sizeof hdr) < 0 || write_full(1, blk + i * SYM, SYM) < 0)
            return 3;
    }
    return 0;
}
