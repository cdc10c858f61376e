/* dlp/compile.c — turns loaded rules into matchers: PCRE2 with JIT per rule,
 * and one Vectorscan database (prefilter mode) over all rules.
 *
 * A pattern PCRE2 rejects is an error at file:line:col with PCRE2's own
 * message. A pattern Vectorscan cannot take even in prefilter mode is not an
 * error: that rule is confirmed by PCRE2 over the whole input (slower, never
 * weaker), and `sluice rules lint` says so. */
#include "dlp/dlp_i.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int perr(dlp_error *err, const dlp_rule *r, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int perr(dlp_error *err, const dlp_rule *r, size_t off, const char *fmt, ...)
{
    snprintf(err->file, sizeof err->file, "%s", r->file);
    err->line = r->pat_line ? r->pat_line : r->line;
    err->col = (r->pat_col ? r->pat_col : 1) + (int)off;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static unsigned hs_flags(const dlp_rule *r) { return r->caseless ? HS_FLAG_CASELESS : 0; }

/* The longest possible match: Vectorscan knows it for bounded patterns. */
static unsigned rule_window(const dlp_rule *r)
{
    hs_expr_info_t *info = NULL;
    hs_compile_error_t *ce = NULL;
    unsigned w = 0;
    if (hs_expression_info(r->pattern, hs_flags(r), &info, &ce) == HS_SUCCESS) {
        if (info->max_width != UINT_MAX)
            w = info->max_width;
        free(info);
    } else {
        hs_free_compile_error(ce);
    }
    if (w == 0 || w > DLP_MAX_MAX_LENGTH)
        w = r->max_length ? r->max_length : DLP_DEFAULT_MAX_LENGTH;
    return w;
}

static int compile_pcre(struct dlp_policy *p, dlp_rule *r, dlp_error *err)
{
    int ec;
    PCRE2_SIZE off;
    r->re = pcre2_compile((PCRE2_SPTR)r->pattern, PCRE2_ZERO_TERMINATED,
                          r->caseless ? PCRE2_CASELESS : 0, &ec, &off, NULL);
    if (!r->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return perr(err, r, off, "rule %s: pattern: %s", r->id, (const char *)msg);
    }
    /* JIT is a speed-up; the interpreter gives the same answers. */
    (void)pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE);
    uint32_t minlen = 0, groups = 0;
    pcre2_pattern_info(r->re, PCRE2_INFO_MINLENGTH, &minlen);
    pcre2_pattern_info(r->re, PCRE2_INFO_CAPTURECOUNT, &groups);
    if (minlen == 0)
        return perr(err, r, 0, "rule %s: pattern can match the empty string", r->id);
    int g = pcre2_substring_number_from_name(r->re, (PCRE2_SPTR) "secret");
    r->secret_group = g > 0 ? (uint32_t)g : 0;
    if (groups > p->max_groups)
        p->max_groups = groups;
    r->window = rule_window(r);
    return 0;
}

static int compile_hs(struct dlp_policy *p, dlp_error *err)
{
    size_t n = p->nrules;
    const char **exprs = calloc(n + 1, sizeof *exprs);
    unsigned *flags = calloc(n + 1, sizeof *flags), *ids = calloc(n + 1, sizeof *ids);
    int rc = 0;
    if (!exprs || !flags || !ids) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        p->rules[i].prefiltered = 1;
    /* Drop the patterns Vectorscan refuses one by one until the set compiles. */
    for (;;) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (p->rules[i].prefiltered) {
                exprs[k] = p->rules[i].pattern;
                flags[k] = hs_flags(&p->rules[i]) | HS_FLAG_PREFILTER;
                ids[k] = (unsigned)i;
                k++;
            }
        if (k == 0)
            break;
        hs_compile_error_t *ce = NULL;
        if (hs_compile_multi(exprs, flags, ids, (unsigned)k, HS_MODE_BLOCK, NULL, &p->hs, &ce) ==
            HS_SUCCESS)
            break;
        int bad = ce ? ce->expression : -1;
        if (bad < 0 || (size_t)bad >= k) {
            snprintf(err->file, sizeof err->file, "%s", p->path);
            err->line = err->col = 0;
            snprintf(err->msg, sizeof err->msg, "Vectorscan: %s", ce ? ce->message : "compile failed");
            hs_free_compile_error(ce);
            rc = -EINVAL;
            goto out;
        }
        hs_free_compile_error(ce);
        p->rules[ids[bad]].prefiltered = 0;
        p->any_unfiltered = 1;
    }
    if (p->hs && hs_alloc_scratch(p->hs, &p->hs_proto) != HS_SUCCESS)
        rc = -ENOMEM;
out:
    free(exprs);
    free(flags);
    free(ids);
    return rc;
}

int dlp_compile(struct dlp_policy *p, dlp_error *err)
{
    p->mctx = pcre2_match_context_create(NULL);
    if (!p->mctx)
        return -ENOMEM;
    pcre2_set_match_limit(p->mctx, p->match_limit);
    pcre2_set_depth_limit(p->mctx, p->depth_limit);
    unsigned max_window = 0, max_ctx = 0;
    for (size_t i = 0; i < p->nrules; i++) {
        dlp_rule *r = &p->rules[i];
        int rc = compile_pcre(p, r, err);
        if (rc)
            return rc;
        if (r->window > max_window)
            max_window = r->window;
        if (r->nctx && r->ctx_window > max_ctx)
            max_ctx = r->ctx_window;
    }
    p->hold = (size_t)max_window + max_ctx + DLP_LOOKAHEAD;
    p->ctx_before = (size_t)max_ctx + 256; /* context words and lookbehind */
    return p->nrules ? compile_hs(p, err) : 0;
}
