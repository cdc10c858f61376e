/* dlp/compile.c — turns loaded rules into matchers: PCRE2 with JIT per rule,
 * and one Vectorscan database (prefilter mode) over all rules.
 *
 * A pattern PCRE2 rejects is an error at file:line:col with PCRE2's own
 * message. A pattern Vectorscan cannot take even in prefilter mode is not an
 * error: that rule is confirmed by PCRE2 over the whole input (slower, never
 * weaker), and `sluice rules lint` says so. */
#include "dlp/dlp_i.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>
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

/* The pattern Vectorscan prefilters with: the rule's own, with every bounded
 * repeat {m,n} (n >= LOOSEN_MIN) opened to {m,}. Vectorscan builds large
 * automata for wide bounded repeats (an e-mail pattern with {0,63} scanned at
 * 36 MB/s, the same with {0,} at 450 MB/s here), and a looser pattern's match
 * ends are a superset of the original's, which is all a prefilter must give:
 * PCRE2 confirms the exact spans with the original, and the confirm window
 * comes from the original's width. Braces inside classes, escaped, or in
 * \Q...\E are left alone. */
#define LOOSEN_MIN 4
static char *loosen(const char *pat)
{
    size_t n = strlen(pat);
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    int in_class = 0, quoted = 0;
    for (size_t i = 0; i < n; i++) {
        char c = pat[i];
        if (quoted) {
            if (c == '\\' && pat[i + 1] == 'E')
                quoted = 0;
            *o++ = c;
            continue;
        }
        if (c == '\\') {
            if (in_class == 1)
                in_class = 2;
            if (pat[i + 1] == 'Q')
                quoted = 1; /* \Q...\E is literal, in a class too */
            *o++ = c;
            if (i + 1 < n)
                *o++ = pat[++i];
            if (pat[i] == 'c' && i + 1 < n) /* \cX: X is part of the escape */
                *o++ = pat[++i];
            continue;
        }
        if (in_class) {
            if (c == ']' && !(in_class == 1))
                in_class = 0;
            else if (in_class == 1)
                in_class = 2; /* past the first char, where ']' is literal */
            if (c == '[' && pat[i + 1] == ':') { /* [:alpha:] inside a class */
                const char *e = strstr(pat + i + 2, ":]");
                if (e) {
                    size_t len = (size_t)(e + 2 - (pat + i));
                    memcpy(o, pat + i, len);
                    o += len;
                    i += len - 1;
                    continue;
                }
            }
            *o++ = c;
            continue;
        }
        if (c == '[') {
            in_class = 1;
            *o++ = c;
            if (pat[i + 1] == '^') {
                *o++ = pat[++i];
            }
            continue;
        }
        /* Exactly {digits,digits}: PCRE2 reads anything else ("{ 1,9}",
         * "{-2,-1}") as literal text, and so must this. */
        if (c == '{' && isdigit((unsigned char)pat[i + 1])) {
            size_t j = i + 1;
            unsigned long m = 0, mx = 0;
            while (isdigit((unsigned char)pat[j]) && m < 100000)
                m = m * 10 + (unsigned long)(pat[j++] - '0');
            if (pat[j] == ',' && isdigit((unsigned char)pat[j + 1])) {
                size_t k = j + 1;
                while (isdigit((unsigned char)pat[k]) && mx < 100000)
                    mx = mx * 10 + (unsigned long)(pat[k++] - '0');
                if (pat[k] == '}' && mx > m && mx >= LOOSEN_MIN) {
                    size_t keep = j - i + 1; /* "{m," */
                    memcpy(o, pat + i, keep);
                    o += keep;
                    *o++ = '}';
                    i = k;
                    continue;
                }
            }
        }
        *o++ = c;
    }
    *o = '\0';
    return out;
}

/* The longest possible match: Vectorscan knows it for bounded patterns. */
static unsigned rule_window(const dlp_rule *r)
{
    hs_expr_info_t *info = NULL;
    hs_compile_error_t *ce = NULL;
    unsigned w = 0;
    /* Prefilter mode accepts lookarounds (as zero-width approximations) and
     * its superset's width bounds the original's. */
    if (hs_expression_info(r->pattern, hs_flags(r) | HS_FLAG_PREFILTER, &info, &ce) == HS_SUCCESS) {
        if (info->max_width != UINT_MAX)
            w = info->max_width;
        free(info);
    } else {
        hs_free_compile_error(ce);
    }
    if (w == 0 || w > DLP_MAX_MAX_LENGTH)
        w = r->max_length ? r->max_length : DLP_DEFAULT_MAX_LENGTH; /* lint warns */
    return w;
}

static int compile_pcre(struct dlp_policy *p, dlp_rule *r, dlp_error *err)
{
    int ec;
    PCRE2_SIZE off;
    /* USE_OFFSET_LIMIT: confirm() bounds where a match may start (see
     * scan.c); without it PCRE2 would try every start up to the end of the
     * confirm window's subject. */
    r->re = pcre2_compile((PCRE2_SPTR)r->pattern, PCRE2_ZERO_TERMINATED,
                          (r->caseless ? PCRE2_CASELESS : 0) | PCRE2_USE_OFFSET_LIMIT, &ec, &off,
                          NULL);
    if (!r->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return perr(err, r, off, "rule %s: pattern: %s", r->id, (const char *)msg);
    }
    /* JIT is a speed-up; the interpreter gives the same answers. */
    (void)pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE);
    uint32_t minlen = 0, groups = 0, lookbehind = 0;
    pcre2_pattern_info(r->re, PCRE2_INFO_MINLENGTH, &minlen);
    pcre2_pattern_info(r->re, PCRE2_INFO_MAXLOOKBEHIND, &lookbehind);
    if (lookbehind > p->max_lookbehind)
        p->max_lookbehind = lookbehind;
    pcre2_pattern_info(r->re, PCRE2_INFO_CAPTURECOUNT, &groups);
    if (minlen == 0)
        return perr(err, r, 0, "rule %s: pattern can match the empty string", r->id);
    int g = pcre2_substring_number_from_name(r->re, (PCRE2_SPTR) "secret");
    r->secret_group = g > 0 ? (uint32_t)g : 0;
    if (groups > p->max_groups)
        p->max_groups = groups;
    return 0;
}

char *dlp_prefilter_expr(const dlp_rule *r) { return loosen(r->prefilter ? r->prefilter : r->pattern); }

/* A context word as a Vectorscan literal: every byte escaped. */
static char *literal(const char *w)
{
    size_t n = strlen(w);
    char *o = malloc(4 * n + 1), *q = o;
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i++)
        q += sprintf(q, "\\x%02x", (unsigned char)w[i]);
    *q = '\0';
    return o;
}

/* ---- the compiled-database cache ---------------------------------------------
 * Compiling the default packs takes ~0.5 s of CPU; loading the serialized
 * database takes a few ms. The cache is trusted like the binary itself: a
 * tampered database could make the prefilter miss findings, so a cache file
 * is used only when it and its directory belong to this user and are closed
 * to group and others. Any doubt (or SLUICE_NO_CACHE) means: compile. The
 * key covers every expression, flag and id and the library's version, and
 * the file records which rules Vectorscan refused. */
static int cache_dir(char *out, size_t outlen)
{
    const char *env = getenv("SLUICE_CACHE_DIR"), *home = getenv("HOME");
    const char *xdg = getenv("XDG_CACHE_HOME");
    int n;
    if (getenv("SLUICE_NO_CACHE"))
        return -1;
    if (env && *env)
        n = snprintf(out, outlen, "%s", env);
    else if (geteuid() == 0)
        n = snprintf(out, outlen, "/var/cache/sluice");
    else if (xdg && *xdg)
        n = snprintf(out, outlen, "%s/sluice", xdg);
    else if (home && *home)
        n = snprintf(out, outlen, "%s/.cache/sluice", home);
    else
        return -1;
    if (n < 0 || (size_t)n >= outlen)
        return -1;
    (void)mkdir(out, 0700);
    struct stat st;
    if (lstat(out, &st) || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))
        return -1;
    return 0;
}

static int cache_path(const struct dlp_policy *p, const char *const *exprs, const unsigned *flags,
                      const unsigned *ids, size_t k, char *out, size_t outlen)
{
    char dir[PATH_MAX - 100];
    if (cache_dir(dir, sizeof dir))
        return -1;
    sha256_ctx *h = sha256_new();
    if (!h)
        return -1;
    const char *ver = hs_version();
    sha256_update(h, "sluice-hs-cache-4", 18);
    sha256_update(h, ver, strlen(ver) + 1);
    /* A database is compiled for this CPU's features: one built elsewhere
     * (another host sharing the directory, or under valgrind's emulated CPU)
     * would scan slower or fail. */
    hs_platform_info_t plat;
    if (hs_populate_platform(&plat) != HS_SUCCESS) {
        sha256_free(h);
        return -1;
    }
    sha256_update(h, &plat.tune, sizeof plat.tune);
    sha256_update(h, &plat.cpu_features, sizeof plat.cpu_features);
    for (size_t i = 0; i < k; i++) {
        sha256_update(h, &flags[i], sizeof flags[i]);
        sha256_update(h, &ids[i], sizeof ids[i]);
        sha256_update(h, exprs[i], strlen(exprs[i]) + 1);
    }
    /* The file also holds each rule's window, which depends on the rule's
     * own pattern and max-length (not only on what Vectorscan is given): key
     * by every rule's full definition, or an edited rule would get a stale,
     * too-short window. */
    uint64_t nr = p->nrules;
    sha256_update(h, &nr, sizeof nr);
    for (size_t i = 0; i < p->nrules; i++) {
        const dlp_rule *r = &p->rules[i];
        sha256_update(h, r->id, strlen(r->id) + 1);
        sha256_update(h, r->pattern, strlen(r->pattern) + 1);
        sha256_update(h, r->prefilter ? r->prefilter : "", strlen(r->prefilter ? r->prefilter : "") + 1);
        sha256_update(h, &r->caseless, sizeof r->caseless);
        sha256_update(h, &r->max_length, sizeof r->max_length);
        sha256_update(h, &r->digits_min, sizeof r->digits_min);
        sha256_update(h, &r->digits_groups, sizeof r->digits_groups);
        sha256_update(h, &r->digits_lead, sizeof r->digits_lead);
        sha256_update(h, r->digits_seps ? r->digits_seps : "", strlen(r->digits_seps ? r->digits_seps : "") + 1);
    }
    uint8_t d[SHA256_LEN];
    char hex[SHA256_HEX_LEN];
    if (sha256_final(h, d))
        return -1;
    hex_encode(d, sizeof d, hex);
    int n = snprintf(out, outlen, "%s/hs-%s.db", dir, hex);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* Returns 0 with p->hs set and refused rules marked, or -1. */
static int cache_load(struct dlp_policy *p, const char *path, const unsigned *ids, size_t nexpr)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    uint8_t *buf = NULL;
    int rc = -1;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) ||
        st.st_size < 8 || st.st_size > (1 << 28) || !(buf = malloc((size_t)st.st_size)) ||
        read_full(fd, buf, (size_t)st.st_size) != st.st_size)
        goto out;
    /* [nrules][window x nrules][nbad][bad index x nbad][serialized database] */
    uint32_t nr, nbad;
    memcpy(&nr, buf, 4);
    if (nr != p->nrules || 8 + 4 * (size_t)nr >= (size_t)st.st_size)
        goto out;
    memcpy(&nbad, buf + 4 + 4 * (size_t)nr, 4);
    size_t bad_at = 8 + 4 * (size_t)nr, hdr = bad_at + 4 * (size_t)nbad;
    if (nbad > nexpr || hdr >= (size_t)st.st_size)
        goto out;
    for (uint32_t i = 0; i < nr; i++) {
        uint32_t w;
        memcpy(&w, buf + 4 + 4 * (size_t)i, 4);
        if (w == 0 || w > DLP_MAX_MAX_LENGTH)
            goto out;
        p->rules[i].window = w;
    }
    if (hs_deserialize_database((const char *)buf + hdr, (size_t)st.st_size - hdr, &p->hs) !=
        HS_SUCCESS)
        goto out;
    for (uint32_t i = 0; i < nbad; i++) {
        uint32_t idx;
        memcpy(&idx, buf + bad_at + 4 * (size_t)i, 4);
        if (idx >= nexpr) {
            hs_free_database(p->hs);
            p->hs = NULL;
            goto out;
        }
        unsigned id = ids[idx];
        p->rules[id < p->nrules ? id : p->ctx_rule[id - p->nrules]].prefiltered = 0;
    }
    rc = 0;
out:
    free(buf);
    close(fd);
    return rc;
}

static void cache_store(const struct dlp_policy *p, const char *path, const uint32_t *bad,
                        uint32_t nbad)
{
    char *ser = NULL;
    size_t len = 0;
    if (hs_serialize_database(p->hs, &ser, &len) != HS_SUCCESS)
        return;
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s.XXXXXX", path);
    int fd = n > 0 && (size_t)n < sizeof tmp ? mkstemp(tmp) : -1;
    if (fd >= 0) {
        uint32_t nr = (uint32_t)p->nrules;
        int ok = fchmod(fd, 0600) == 0 && write_full(fd, &nr, 4) == 0;
        for (size_t i = 0; ok && i < p->nrules; i++) {
            uint32_t w = p->rules[i].window;
            ok = write_full(fd, &w, 4) == 0;
        }
        ok = ok && write_full(fd, &nbad, 4) == 0 && write_full(fd, bad, 4 * (size_t)nbad) == 0 &&
             write_full(fd, ser, len) == 0;
        close(fd);
        if (!ok || rename(tmp, path))
            unlink(tmp);
    }
    free(ser);
}

/* Vectorscan expressions: each rule's loosened pattern, except that a rule
 * gated by context words is prefiltered on its words (cheap literals) and
 * confirmed in a window around each (see scan.c), and a rule with `digits`
 * is prefiltered by the digit scan instead (scan.c: Vectorscan runs a
 * separate automaton over every digit for each such pattern, about half
 * of its time on document text). */
static int compile_hs(struct dlp_policy *p, dlp_error *err)
{
    size_t n = p->nrules, nw = 0;
    for (size_t i = 0; i < n; i++)
        nw += p->rules[i].nctx;
    size_t nexpr = n + nw;
    const char **exprs = calloc(nexpr + 1, sizeof *exprs);
    char **loose = calloc(nexpr + 1, sizeof *loose);
    unsigned *flags = calloc(nexpr + 1, sizeof *flags), *ids = calloc(nexpr + 1, sizeof *ids);
    p->ctx_rule = calloc(nw + 1, sizeof *p->ctx_rule);
    p->ctx_len = calloc(nw + 1, sizeof *p->ctx_len);
    int rc = 0;
    if (!exprs || !flags || !ids || !loose || !p->ctx_rule || !p->ctx_len) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        p->rules[i].prefiltered = 1;
        if (p->rules[i].digits_min)
            continue;
        if (!p->rules[i].nctx && !(loose[i] = dlp_prefilter_expr(&p->rules[i]))) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t w = 0; w < p->rules[i].nctx; w++) {
            size_t k = p->nctx_words++;
            p->ctx_rule[k] = (uint32_t)i;
            p->ctx_len[k] = (uint32_t)strlen(p->rules[i].ctx_words[w]);
            if (!(loose[n + k] = literal(p->rules[i].ctx_words[w]))) {
                rc = -ENOMEM;
                goto out;
            }
        }
    }
    /* The initial set, in order, is what the cache is keyed by. */
    const char **all = calloc(nexpr + 1, sizeof *all);
    unsigned *allf = calloc(nexpr + 1, sizeof *allf), *alli = calloc(nexpr + 1, sizeof *alli);
    uint32_t *bad_list = calloc(nexpr + 1, sizeof *bad_list), nbad = 0;
    size_t nall = 0;
    char cpath[PATH_MAX];
    int cached = 0;
    if (!all || !allf || !alli || !bad_list) {
        rc = -ENOMEM;
        goto out2;
    }
    for (size_t i = 0; i < nexpr; i++) {
        if (!loose[i])
            continue;
        all[nall] = loose[i];
        allf[nall] = i < n ? hs_flags(&p->rules[i]) | HS_FLAG_PREFILTER : HS_FLAG_CASELESS;
        alli[nall] = (unsigned)i;
        nall++;
    }
    int have_path = cache_path(p, all, allf, alli, nall, cpath, sizeof cpath) == 0;
    if (have_path && cache_load(p, cpath, alli, nall) == 0) {
        cached = 1;
        goto scratch;
    }
    for (size_t i = 0; i < n; i++)
        p->rules[i].window = rule_window(&p->rules[i]);
    /* Drop the patterns Vectorscan refuses one by one until the set compiles. */
    for (;;) {
        size_t k = 0;
        for (size_t i = 0; i < nexpr; i++) {
            size_t ri = i < n ? i : p->ctx_rule[i - n];
            if (!p->rules[ri].prefiltered || !loose[i])
                continue;
            exprs[k] = loose[i];
            flags[k] = i < n ? hs_flags(&p->rules[i]) | HS_FLAG_PREFILTER : HS_FLAG_CASELESS;
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
            goto out2;
        }
        hs_free_compile_error(ce);
        p->rules[ids[bad] < n ? ids[bad] : p->ctx_rule[ids[bad] - n]].prefiltered = 0;
        for (size_t j = 0; j < nall; j++)
            if (alli[j] == ids[bad])
                bad_list[nbad++] = (uint32_t)j;
    }
    if (p->hs && have_path && !cached)
        cache_store(p, cpath, bad_list, nbad);
scratch:
    if (p->hs && hs_alloc_scratch(p->hs, &p->hs_proto) != HS_SUCCESS)
        rc = -ENOMEM;
out2:
    free(all);
    free(allf);
    free(alli);
    free(bad_list);
out:
    for (size_t i = 0; loose && i < nexpr; i++)
        free(loose[i]);
    free(loose);
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
    for (size_t i = 0; i < p->nrules; i++) {
        int rc = compile_pcre(p, &p->rules[i], err);
        if (rc)
            return rc;
    }
    if (p->nrules) {
        int rc = compile_hs(p, err);
        if (rc)
            return rc;
    }
    unsigned max_window = 0, max_ctx = 0, max_word = DLP_LOOKAHEAD;
    if (!(p->digit_rule = calloc(p->nrules + 1, sizeof *p->digit_rule)))
        return -ENOMEM;
    for (size_t i = 0; i < p->nrules; i++) {
        const dlp_rule *r = &p->rules[i];
        if (r->digits_min) {
            /* one digit scan serves every such rule: its tokens are joined
             * by the union of their separators (a superset for each) */
            p->digit_rule[p->ndigit_rules++] = (uint32_t)i;
            for (const char *c = r->digits_seps; *c; c++)
                p->digit_sep[(uint8_t)*c] = 1;
        }
        if (r->window > max_window)
            max_window = r->window;
        if (r->nctx && r->ctx_window > max_ctx)
            max_ctx = r->ctx_window;
        for (size_t w = 0; w < r->nctx; w++)
            if (strlen(r->ctx_words[w]) > max_word)
                max_word = (unsigned)strlen(r->ctx_words[w]);
    }
    dlp_digit_masks_init(p);
    for (int lead = 0; lead < 3; lead++)
        for (unsigned c = 0; c <= DLP_DIGITS_MAX_MIN; c++) {
            unsigned *need = &p->digits_groups_needed[lead][c];
            *need = UINT_MAX;
            for (size_t k = 0; k < p->ndigit_rules; k++) {
                const dlp_rule *r = &p->rules[p->digit_rule[k]];
                const int takes = !r->digits_lead || lead == 2 ||
                                  (lead == 1 && r->digits_seps && r->digits_seps[0]);
                if (takes && r->digits_min <= c && r->digits_groups < *need)
                    *need = r->digits_groups;
            }
        }
    p->digits_short = p->digits_groups_needed[0][1] == UINT_MAX &&
                      p->digits_groups_needed[0][2] == UINT_MAX && p->digits_groups_needed[0][3] == UINT_MAX;
    /* Enough that a match starting before the cut is final, with the
     * context words that decide it seen. */
    p->hold = (size_t)max_window + max_ctx + max_word;
    /* Kept before a cut: context words, the longest lookbehind, and enough
     * for Vectorscan to see a whole match (or prefilter match) that starts
     * before the cut and ends after it. */
    size_t behind = 256;
    if (p->max_lookbehind + 16 > behind)
        behind = p->max_lookbehind + 16;
    if ((size_t)max_window + 16 > behind)
        behind = (size_t)max_window + 16;
    /* (+ max_word: a margin; a word that can accept a finding after the
     * cut starts at most max_ctx before it) */
    p->ctx_before = (size_t)max_ctx + max_word + behind;
    return 0;
}
