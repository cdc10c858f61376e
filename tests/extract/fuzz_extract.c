/* tests/extract/fuzz_extract.c — libFuzzer target for every extractor, run in
 * process (no helper: the fuzzer must see the parsers' own faults). The
 * first byte picks the format and drop_metadata; the rest is the document.
 *
 * Properties checked beyond "no crash, no leak": a successful extraction
 * returns valid UTF-8 text within max_output; a failure always has a reason.
 * `make fuzz-extract FUZZ_SECONDS=60`; seeds in tests/extract/corpus.
 */
#include "extract/extract_i.h"

#include <libxml/parser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const mimes[] = {
    "application/pdf", "application/zip", "text/rtf", "text/html", "message/rfc822",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.oasis.opendocument.text", "application/octet-stream",
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    xmlInitParser();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const unsigned sel = data[0];
    extract_options o;
    extract_options_default(&o);
    o.drop_metadata = (sel >> 7) & 1;
    o.max_output = 1 << 20;
    o.max_expanded = 8 << 20;
    xctx x = { .opt = &o };
    const char *mime = mimes[(sel & 0x7f) % (sizeof mimes / sizeof mimes[0])];
    int rc = extract_run(&x, data + 1, size - 1, mime);
    if (rc == 0) {
        extract_clean_utf8(&x);
        if (x.len > o.max_output)
            abort();
        if (x.text && strlen(x.text) != x.len)
            abort(); /* a NUL survived the clean-up */
    } else if (x.reason[0] == '\0')
        abort();
    free(x.text);
    return 0;
}
