/* dlp/examples.c — runs each rule's embedded must-match / must-not-match
 * examples (`sluice rules test`). A must-match passes only when the rule,
 * alone, finds exactly the marked spans: no fewer, no more, none shifted. */
#include "dlp/dlp_i.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A rule's own `prefilter` must report every place the rule's pattern can
 * end, or findings would be lost; check that on every example. */
typedef struct ends_ctx {
    const dlp_span *want;
    size_t n;
    uint8_t *seen;
} ends_ctx;

static int on_end(unsigned int id, unsigned long long from, unsigned long long to,
                  unsigned int flags, void *ctx)
{
    (void)id;
    (void)from;
    (void)flags;
    ends_ctx *e = ctx;
    for (size_t i = 0; i < e->n; i++)
        if (e->want[i].off + e->want[i].len == to)
            e->seen[i] = 1;
    return 0;
}

/* 0 when the end of every match in `want` is reported by the rule's
 * prefilter; else the first missing end + 1. */
static size_t prefilter_misses(const dlp_rule *r, const dlp_example *ex, const dlp_span *want,
                               size_t n)
{
    if (!r->prefilter || n == 0)
        return 0;
    char *expr = dlp_prefilter_expr(r);
    hs_database_t *db = NULL;
    hs_scratch_t *scratch = NULL;
    hs_compile_error_t *ce = NULL;
    size_t miss = 0;
    uint8_t *seen = calloc(n, 1);
    if (!expr || !seen ||
        hs_compile(expr, (r->caseless ? HS_FLAG_CASELESS : 0) | HS_FLAG_PREFILTER, HS_MODE_BLOCK,
                   NULL, &db, &ce) != HS_SUCCESS ||
        hs_alloc_scratch(db, &scratch) != HS_SUCCESS) {
        miss = want[0].off + want[0].len + 1;
    } else {
        ends_ctx e = {want, n, seen};
        hs_scan(db, ex->text, (unsigned)ex->len, 0, scratch, on_end, &e);
        for (size_t i = 0; i < n && !miss; i++)
            if (!seen[i])
                miss = want[i].off + want[i].len + 1;
    }
    hs_free_compile_error(ce);
    hs_free_scratch(scratch);
    hs_free_database(db);
    free(expr);
    free(seen);
    return miss;
}

/* A rule's `digits` claim must hold for every match (see scan.c's digit
 * scan): from its first digit, a chain of at least `min` digits (and
 * `groups` runs of them), any two consecutive ones separated by at most
 * DLP_DIGITS_GAP bytes of `separators` (what follows the chain is free);
 * with `lead`, the match starts with that many letters A-Z, then at most
 * one separator byte, then its first digit. 0 when it holds for all in
 * `want`; else the first failing match's start + 1. */
static int is_sep(const dlp_rule *r, uint8_t c)
{
    return c && memchr(r->digits_seps, c, strlen(r->digits_seps)) != NULL;
}

static int digits_hold(const dlp_rule *r, const uint8_t *t, size_t len)
{
    size_t k = 0;
    if (r->digits_lead) {
        for (; k < r->digits_lead; k++)
            if (k >= len || t[k] < 'A' || t[k] > 'Z')
                return 0;
        if (k < len && is_sep(r, t[k]))
            k++;
        if (k >= len || t[k] < '0' || t[k] > '9')
            return 0;
    }
    while (k < len && !(t[k] >= '0' && t[k] <= '9'))
        k++;
    unsigned count = 0, groups = 0;
    while (k < len) {
        groups++;
        while (k < len && t[k] >= '0' && t[k] <= '9') {
            count++;
            k++;
        }
        size_t g = k;
        while (g < len && g - k < DLP_DIGITS_GAP && is_sep(r, t[g]))
            g++;
        if (g == k || g >= len || !(t[g] >= '0' && t[g] <= '9'))
            break; /* the chain ends */
        k = g;
    }
    return count >= r->digits_min && groups >= r->digits_groups;
}

static size_t digits_misses(const dlp_rule *r, const dlp_example *ex, const dlp_span *want,
                            size_t n)
{
    if (!r->digits_min)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!digits_hold(r, (const uint8_t *)ex->text + want[i].off, want[i].len))
            return want[i].off + 1;
    return 0;
}

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
                dlp_span *ends = NULL;
                size_t ngot = 0, nends = 0, miss;
                char why[200];
                int rc = dlp_rule_spans(p, ri, (const uint8_t *)ex->text, ex->len, &got, &ngot,
                                        &ends, &nends, why, sizeof why);
                int ok;
                if (!rc && (miss = prefilter_misses(r, ex, ends, nends))) {
                    snprintf(what, sizeof what,
                             "%s (line %d): the rule's prefilter misses the match ending at %zu",
                             kind ? "must-not-match" : "must-match", ex->line, miss - 1);
                    ok = 0;
                } else if (!rc && (miss = digits_misses(r, ex, ends, nends))) {
                    snprintf(what, sizeof what,
                             "%s (line %d): the match starting at %zu does not hold the rule's "
                             "digits (min %u, groups %u, lead %u, separated by at most %d of '%s')",
                             kind ? "must-not-match" : "must-match", ex->line, miss - 1,
                             r->digits_min, r->digits_groups, r->digits_lead, DLP_DIGITS_GAP,
                             r->digits_seps);
                    ok = 0;
                } else if (rc) {
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
                free(ends);
                failed += !ok;
                if (report)
                    report(ctx, r->id, ok, what);
            }
        }
    }
    return failed;
}
