/* dlp/examples.c — runs each rule's embedded must-match / must-not-match
 * examples (`sluice rules test`). A must-match passes only when the rule,
 * alone, finds exactly the marked spans: no fewer, no more, none shifted. */
#include "dlp/dlp_i.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void describe(char *out, size_t outlen, const char *lead, const dlp_example *ex,
                     const dlp_span *got, size_t ngot)
{
    size_t o = (size_t)snprintf(out, outlen, "%s (line %d): found", lead, ex->line);
    if (ngot == 0 && o < outlen)
        o += (size_t)snprintf(out + o, outlen - o, " nothing");
    for (size_t i = 0; i < ngot && o < outlen; i++)
        o += (size_t)snprintf(out + o, outlen - o, " [%zu,+%zu)", got[i].off, got[i].len);
    if (o < outlen && ex->nspans) {
        o += (size_t)snprintf(out + o, outlen - o, ", expected");
        for (size_t i = 0; i < ex->nspans && o < outlen; i++)
            o += (size_t)snprintf(out + o, outlen - o, " [%zu,+%zu)", ex->spans[i].off,
                                  ex->spans[i].len);
    }
}

int dlp_test_examples(const dlp_policy *p, dlp_example_report_fn report, void *ctx)
{
    int failed = 0;
    char what[512];
    for (size_t ri = 0; ri < p->nrules; ri++) {
        const dlp_rule *r = &p->rules[ri];
        for (int kind = 0; kind < 2; kind++) {
            const dlp_example *exs = kind ? r->must_not : r->must_match;
            size_t n = kind ? r->nmust_not : r->nmust_match;
            for (size_t i = 0; i < n; i++) {
                const dlp_example *ex = &exs[i];
                dlp_span *got = NULL;
                size_t ngot = 0;
                char why[200];
                int rc = dlp_rule_spans(p, ri, (const uint8_t *)ex->text, ex->len, &got, &ngot,
                                        why, sizeof why);
                int ok;
                if (rc) {
                    snprintf(what, sizeof what, "%s (line %d): %s",
                             kind ? "must-not-match" : "must-match", ex->line, why);
                    ok = 0;
                } else if (kind) {
                    ok = ngot == 0;
                    describe(what, sizeof what, "must-not-match", ex, got, ngot);
                } else {
                    ok = ngot == ex->nspans;
                    for (size_t k = 0; ok && k < ngot; k++)
                        ok = got[k].off == ex->spans[k].off && got[k].len == ex->spans[k].len;
                    describe(what, sizeof what, "must-match", ex, got, ngot);
                }
                free(got);
                failed += !ok;
                if (report)
                    report(ctx, r->id, ok, what);
            }
        }
    }
    return failed;
}
