/* tests/dlp/fuzz_scan.c — libFuzzer target: arbitrary documents through the
 * default policy. Besides memory safety it checks the chunking property: the
 * whole-buffer view and a view streamed in two chunks (cut at an offset taken
 * from the input) must be byte-identical. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dlp/dlp.h"

static dlp_policy *policy;

typedef struct buf {
    uint8_t *d;
    size_t len;
} buf;

static int put(void *ctx, const void *data, size_t len)
{
    buf *b = ctx;
    uint8_t *n = realloc(b->d, b->len + len + 1);
    if (!n)
        return -1;
    memcpy(n + b->len, data, len);
    b->d = n;
    b->len += len;
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const char key[] = "/dev/shm/sluice-fuzz-scan.key";
    FILE *f = fopen(key, "w");
    if (f) {
        fputs("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", f);
        fclose(f);
    }
    if (chmod(key, 0600) != 0)
        abort();
    setenv("SLUICE_KEY_FILE", key, 1);
    const char *pol = getenv("SLUICE_FUZZ_POLICY");
    dlp_error err;
    if (dlp_policy_load(pol ? pol : "rules/default-policy.yaml", &policy, &err)) {
        fprintf(stderr, "fuzz_scan: %s:%d:%d: %s (run from the repository root)\n", err.file,
                err.line, err.col, err.msg);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    dlp_result r;
    int rc = dlp_sanitize(policy, data, size, &r);
    if (rc == 0 && !r.data)
        abort();
    if (rc != 0 && r.data)
        abort(); /* a refusal must not come with bytes */
    /* the streaming property, for text the policy serves as bytes */
    if (rc == 0 && strncmp(r.type.encoding, "utf-16", 6) != 0) {
        size_t cut = size ? (size_t)data[0] * 131 % (size + 1) : 0;
        buf b = {0};
        dlp_stream *s;
        if (dlp_stream_new(policy, put, NULL, &b, &s) == 0) {
            dlp_stream_set_round_size(s, 1);
            int src = dlp_stream_feed(s, data, cut);
            if (!src)
                src = dlp_stream_feed(s, data + cut, size - cut);
            if (!src)
                src = dlp_stream_finish(s);
            if (!src && (b.len != r.len || (b.len && memcmp(b.d, r.data, b.len))))
                abort(); /* chunking changed the output */
            dlp_stream_free(s);
        }
        free(b.d);
    }
    dlp_result_free(&r);
    return 0;
}
