/* tests/dlp/fuzz_rules.c — libFuzzer target: arbitrary bytes as a rule pack.
 * Loading must either fail with a positioned error or give a policy whose
 * examples run and which sanitizes a fixed text — never crash or leak. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlp/dlp.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/sluice-fuzz-rules.%d.yaml", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    dlp_policy *p = NULL;
    dlp_error err;
    if (dlp_pack_load(path, &p, &err) == 0) {
        dlp_test_examples(p, NULL, NULL);
        static const char text[] = "mail a.b@example.com card 4111 1111 1111 1111 ssn 123-45-6789\n";
        dlp_result r;
        if (dlp_sanitize(p, text, sizeof text - 1, &r) == 0 && !r.data)
            abort(); /* success must come with a view */
        dlp_result_free(&r);
        dlp_policy_free(p);
    } else if (!err.msg[0]) {
        abort(); /* a failure must say why */
    }
    unlink(path);
    return 0;
}
