/* dlp/scan.c — the streaming scanner: Vectorscan finds candidate match ends,
 * PCRE2 (JIT) confirms exact spans in a window before each end, validators,
 * context words and allow lists filter, overlapping findings are merged, and
 * actions rewrite the text.
 *
 * Why the output does not depend on chunking. Each rule's matches are
 * defined as PCRE2's leftmost, non-overlapping iteration over the *whole*
 * input. A round scans the buffered region [from, L) and may only emit up to
 * a cut C such that (a) every match starting before C is final: it ends at
 * most `window` bytes after its start and its pattern looks at most
 * DLP_LOOKAHEAD bytes further, context words at most ctx_window bytes, so C
 * <= L - hold suffices; and (b) no match of any rule (accepted or rejected by
 * a validator: both consume input) spans C, so restarting every rule's
 * iteration at C yields exactly the matches the whole-input iteration yields
 * after C. When no such C exists the stream keeps buffering (up to
 * MAX_BUFFER, then it fails closed).
 *
 * Why confirming only near prefilter hits finds every match: Vectorscan's
 * prefilter mode reports a superset of the pattern's matches by end offset,
 * and a match ending at e starts no earlier than e - window. Merging the
 * windows [e - window, e] of all of a rule's hits gives disjoint intervals
 * that contain every match whole, and no match straddles two intervals, so
 * iterating PCRE2 inside each interval reproduces the whole-input iteration.
 * Rules with a `digits` claim get their intervals from the digit scan below
 * instead, with the same property.
 *
 * This file must never emit a byte past a finding it has not resolved, and
 * any PCRE2 or Vectorscan error fails the stream (the caller denies). */
#include "dlp/dlp_i.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ROUND_MAX (16u << 20)  /* bytes scanned per round at most */
/* A whole input in memory is scanned in rounds of this much first: each
 * round's bytes are read by Vectorscan, the digit scan, PCRE2 and the copy
 * out in turn, and stay in the processor's cache between them at this size
 * (16 MiB rounds read them from memory four times). A round that cannot cut
 * is widened, up to ROUND_MAX. */
#define ROUND_WHOLE (1u << 20)
#define ROUND_MIN (256u << 10) /* buffer at least this much past the hold */
#define MAX_BUFFER (64u << 20) /* a finding chain longer than this fails closed */
#define DFA_ALTS 64            /* shorter matches tried at one start */
#define DFA_WORKSPACE 4096

typedef struct interval {
    uint32_t rule;
    uint64_t s, last, e; /* absolute: matches start in [s, last] and end by e */
} interval;

/* A resolved group of findings, [s, e) in the input, whose replacement
 * ends at byte `label` of the round's labels (it starts where the group
 * before's ends). */
typedef struct group {
    uint64_t s, e;
    size_t label;
} group;

typedef struct match {
    uint64_t s, e;   /* the whole PCRE2 match */
    uint64_t fs, fe; /* the finding: the `secret` group or the whole match */
    uint32_t rule;
    uint8_t accepted;
} match;

struct dlp_stream {
    const struct dlp_policy *p;
    dlp_out_fn out;
    dlp_sink sink; /* when set (reserve non-NULL), in place of `out` */
    dlp_finding_fn on_finding;
    void *ctx;
    hs_scratch_t *scratch;
    pcre2_match_data *md;
    pcre2_match_context *mctx; /* the policy's limits, and confirm()'s offset limit */
    pcre2_match_data *dfa_md; /* the shorter matches at one start (see confirm) */

    uint8_t *buf; /* buf[0] is input offset `base` */
    size_t len, cap;
    uint64_t base, from; /* `from`: everything before it is emitted */

    /* per round */
    interval *iv;
    size_t niv, capiv;
    interval *iv2; /* sort_iv's other buffer */
    size_t capiv2;
    size_t *rule_at; /* sort_iv's bucket offsets, nrules + 1 */
    interval *open; /* per rule: the interval being grown from ordered hits */
    match *m;
    size_t nm, capm;
    group *g;
    size_t capg;
    dlp_buf labels; /* the groups' replacements, one after another */
    dlp_buf obuf;   /* a round's output for `out` */
    uint64_t hs_start; /* input offset of the first byte Vectorscan saw this round */

    size_t round_min;
    size_t round_max; /* the widest round so far: ROUND_WHOLE..ROUND_MAX */
    int borrowed; /* buf is the caller's: never written, moved or freed */
    uint64_t *counts;
    dlp_rule_hits *hits;
    int failed, finished;
    char err[200];
};

static int fail(dlp_stream *s, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(dlp_stream *s, int rc, const char *fmt, ...)
{
    if (!s->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->err, sizeof s->err, fmt, ap);
        va_end(ap);
        s->failed = rc;
    }
    return s->failed;
}

static int push_iv(dlp_stream *s, interval v)
{
    if (s->niv == s->capiv) {
        size_t nc = s->capiv ? s->capiv * 2 : 256;
        interval *n = realloc(s->iv, nc * sizeof *n);
        if (!n)
            return -ENOMEM;
        s->iv = n;
        s->capiv = nc;
    }
    s->iv[s->niv++] = v;
    return 0;
}

/* Grow rule id's open interval by a candidate (matches start in [st, last]
 * and end by `end`), or close it and open a new one. */
static int add_hit(dlp_stream *s, uint32_t id, uint64_t st, uint64_t last, uint64_t end)
{
    interval *o = &s->open[id];
    if (o->e && st <= o->e + 1 && end >= o->s) {
        if (end > o->e)
            o->e = end;
        if (last > o->last)
            o->last = last;
        if (st < o->s)
            o->s = st;
        return 0;
    }
    if (o->e && push_iv(s, *o))
        return -ENOMEM;
    *o = (interval){id, st, last, end};
    return 0;
}

static int on_hit(unsigned int id, unsigned long long from, unsigned long long to,
                  unsigned int flags, void *ctx)
{
    (void)from;
    (void)flags;
    dlp_stream *s = ctx;
    const struct dlp_policy *p = s->p;
    uint64_t e = s->hs_start + (uint64_t)to;
    uint64_t st, last, end;
    if (id < p->nrules) {
        if (e <= s->from)
            return 0;
        /* a candidate match end: the match started at most `window` before */
        const dlp_rule *r = &p->rules[id];
        st = e > s->from + r->window ? e - r->window : s->from;
        last = e - 1;
        end = e;
    } else {
        /* a context word at [e - len, e): a match that counts has its finding
         * within ctx_window of it, so it lies in this window */
        uint32_t k = id - (unsigned)p->nrules;
        id = p->ctx_rule[k];
        const dlp_rule *r = &p->rules[id];
        uint64_t back = (uint64_t)p->ctx_len[k] + r->ctx_window + r->window;
        st = e > s->from + back ? e - back : s->from;
        last = e + r->ctx_window;
        /* a word before the last cut still counts for matches after it
         * (its window was cut, see cut_point) */
        if (last < s->from)
            return 0;
        end = last + r->window;
    }
    return add_hit(s, id, st, last, end) ? 1 : 0;
}

/* ---- the digit scan ------------------------------------------------------------
 * The prefilter of rules with `digits: {min: N, separators: S}`: every match
 * of such a rule holds, from its first digit, a chain of at least N ASCII
 * digits, any two consecutive ones separated by at most DLP_DIGITS_GAP
 * bytes of S (what follows the chain is free). Card numbers, phone
 * numbers and SSNs are such rules, and they are what Vectorscan scans
 * slowest: each is an automaton stepped over every digit of the text, and
 * their patterns, loosened or not, cost about 0.5 ns per byte each on
 * document text whatever their form. One pass here finds every "token" (a
 * maximal run of digits joined by such gaps, S being the union of the
 * rules' separators, so a match's digits all lie in one token), and a token
 * with at least N digits is a candidate for each rule with that N (and with
 * at least G runs of digits, for a rule that claims G `groups`: the token
 * holds every run of the chain). A rule with `lead: L` claims that its match
 * starts with L letters A-Z, then at most one separator, then its first
 * digit: that digit starts a token (separators are never letters), so the
 * match can only start at letters right before a token. A match
 * M of width at most W (the rule's window) whose chain of N or more digits
 * lies in the token [ts, te) has at most W - N other bytes, so it starts in
 * [ts - (W - N), te - N] and ends by te + (W - N). Tokens are cut only where
 * the text the round sees is, like Vectorscan's view, so a match the round
 * must find has all its digits in one of them.
 *
 * The text is classified 64 bytes at a time into bitmaps of its digits
 * and separators (digits.c, with SIMD where the CPU has it), and tokens,
 * their digits and their runs are found in the bitmaps with shifts, masks
 * and population counts: most of a document's bytes are not digits, and
 * most of its tokens are short numbers no claim takes, rejected with one
 * table lookup and no branch on the text. */
static inline int is_upper(uint8_t c) { return (unsigned)(c - 'A') < 26; }

/* A `lead` rule's match starts with digits_lead letters A-Z, then at most
 * one of its separators, then the token's first digit at b[ts] (the token
 * starts there because separators are never letters): where, in *ls. */
static int lead_start(const dlp_rule *r, const uint8_t *b, size_t ts, size_t *ls)
{
    size_t at = ts;
    if (at >= 1 && !is_upper(b[at - 1]) && memchr(r->digits_seps, b[at - 1], strlen(r->digits_seps)))
        at--;
    if (at < r->digits_lead)
        return 0;
    for (unsigned q = 1; q <= r->digits_lead; q++)
        if (!is_upper(b[at - q]))
            return 0;
    *ls = at - r->digits_lead;
    return 1;
}

_Static_assert(DLP_DIGITS_GAP == 2, "digit_scan() joins runs across one or two separators");

/* The token of `count` digits in `groups` runs at b[ts..last] (b is the
 * round's text from input offset `start`): an interval for each rule whose
 * claim it meets. `lead_seen`: 2 for a letter A-Z right before the token, 1
 * for one before a separator byte before it, else 0: only with a letter
 * can a `lead` rule's match start there. */
static int digit_token(dlp_stream *s, uint64_t start, const uint8_t *b, size_t ts, size_t last,
                       unsigned count, unsigned groups, int lead_seen)
{
    const struct dlp_policy *p = s->p;
    const uint64_t ats = start + ts, ate = start + last + 1;
    for (size_t k = 0; k < p->ndigit_rules; k++) {
        const uint32_t ri = p->digit_rule[k];
        const dlp_rule *r = &p->rules[ri];
        if (count < r->digits_min || groups < r->digits_groups)
            continue;
        uint64_t st, last_start, end;
        if (r->digits_lead) {
            /* the match starts exactly at its letters */
            size_t ls;
            if (!lead_seen || !lead_start(r, b, ts, &ls))
                continue;
            st = last_start = start + ls;
            end = st + r->window;
        } else {
            const uint64_t slack = r->window > r->digits_min ? r->window - r->digits_min : 0;
            last_start = ate - r->digits_min;
            st = ats > s->from + slack ? ats - slack : s->from;
            end = ate + slack;
        }
        if (last_start < s->from)
            continue; /* no match of it can start at or after `from` */
        if (st < s->from)
            st = s->from;
        if (add_hit(s, ri, st, last_start, end))
            return fail(s, -ENOMEM, "out of memory");
    }
    return 0;
}

#define DIGIT_BATCH 64 /* words classified per call: 4 KiB of text */

/* Classify words [k, k + nw) of b[0..n) into d[], sp[], u[] (bits past n clear). */
static void digit_masks(const struct dlp_policy *p, const uint8_t *b, size_t n, size_t k, size_t nw,
                        uint64_t *d, uint64_t *sp, uint64_t *u)
{
    size_t full = n / 64 > k ? n / 64 - k : 0;
    if (full > nw)
        full = nw;
    if (full)
        p->digit_masks(b + 64 * k, full, p, d, sp, u);
    if (full < nw) { /* the last, partial word: zeros are neither digits nor separators */
        uint8_t tail[64] = {0};
        const size_t at = 64 * (k + full), rest = n - at;
        memcpy(tail, b + at, rest);
        p->digit_masks(tail, 1, p, d + full, sp + full, u + full);
        const uint64_t keep = rest ? ~0ull >> (64 - rest) : 0;
        d[full] &= keep;
        sp[full] &= keep;
        u[full] &= keep;
    }
}

/* Tokens, in bitmaps. With D the digits and S the separators, a token's
 * first digit p has no digit at p-1 and no gap of one or two separators
 * back to a digit (p-1 a separator, and a digit at p-2, or a separator at
 * p-2 and a digit at p-3); its last digit, the same looking forward. So a
 * token is [first, last] with no other token boundary in between; its digit
 * count is popcount(D) over that span and its runs popcount(R), R being
 * the digits with no digit before them. */
/* Population counts are one instruction with POPCNT, a libgcc call
 * without: the CPU's is picked at load time where the toolchain can. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__has_attribute)
#if __has_attribute(target_clones)
__attribute__((target_clones("popcnt", "default")))
#endif
#endif
static int digit_scan(dlp_stream *s, uint64_t start, uint64_t L)
{
    const struct dlp_policy *p = s->p;
    const uint8_t *b = s->buf + (start - s->base);
    const size_t n = (size_t)(L - start), nwords = (n + 63) / 64;
    uint64_t d[DIGIT_BATCH + 1], sp[DIGIT_BATCH + 1], u[DIGIT_BATCH + 1];
    uint64_t Dp = 0, Sp = 0, Up = 0;    /* the word before */
    size_t ts = 0;                      /* the open token's first digit */
    unsigned acc = 0, accg = 0, open = 0; /* its digits and runs so far */
    int open_ls = 0;                      /* and its lead_seen */
    for (size_t k0 = 0; k0 < nwords; k0 += DIGIT_BATCH) {
        const size_t nb = nwords - k0 < DIGIT_BATCH ? nwords - k0 : DIGIT_BATCH;
        /* one word more, to look ahead (classified again with the next batch) */
        const size_t nc = nb + (k0 + nb < nwords);
        digit_masks(p, b, n, k0, nc, d, sp, u);
        if (nc == nb)
            d[nb] = sp[nb] = u[nb] = 0;
        for (size_t j = 0; j < nb; j++) {
            const uint64_t D = d[j], S = sp[j], U = u[j], Dn = d[j + 1], Sn = sp[j + 1];
            if (!(D | open)) {
                Dp = D;
                Sp = S;
                Up = U;
                continue;
            }
            /* X<<q: the bit of byte p-q at p; X>>q: of p+q */
            const uint64_t Dm1 = D << 1 | Dp >> 63, Dm2 = D << 2 | Dp >> 62, Dm3 = D << 3 | Dp >> 61;
            const uint64_t Sm1 = S << 1 | Sp >> 63, Sm2 = S << 2 | Sp >> 62;
            const uint64_t Dp1 = D >> 1 | Dn << 63, Dp2 = D >> 2 | Dn << 62, Dp3 = D >> 3 | Dn << 61;
            const uint64_t Sp1 = S >> 1 | Sn << 63, Sp2 = S >> 2 | Sn << 62;
            uint64_t first = D & ~(Dm1 | (Sm1 & (Dm2 | (Sm2 & Dm3))));
            uint64_t lastb = D & ~(Dp1 | (Sp1 & (Dp2 | (Sp2 & Dp3))));
            const uint64_t R = D & ~Dm1;
            /* 2: a letter A-Z right before p; 1: before a separator before p */
            const uint64_t Um1 = U << 1 | Up >> 63, LS1 = Sm1 & (U << 2 | Up >> 62) & ~Um1;
            Dp = D;
            Sp = S;
            Up = U;
            if (p->digits_short) {
                /* Tokens of at most 3 bytes (so 3 digits) with no letter
                 * before them, wholly in this word: no claim takes them
                 * (digits_short), so drop their first and last bits alike.
                 * The earliest last bit at or after a first is its token's. */
                const uint64_t sh = first & ~(Um1 | LS1) & (lastb | lastb >> 1 | lastb >> 2) & (~0ull >> 2);
                const uint64_t e0 = sh & lastb, s1 = sh & ~lastb;
                const uint64_t e1 = (s1 << 1) & lastb, s2 = s1 & ~(lastb >> 1);
                const uint64_t e2 = (s2 << 2) & lastb;
                first &= ~sh;
                lastb &= ~(e0 | e1 | e2);
            }
            const size_t base = 64 * (k0 + j);
            if (open) {
                if (!lastb) { /* the whole word is inside the open token */
                    acc += (unsigned)__builtin_popcountll(D);
                    accg += (unsigned)__builtin_popcountll(R);
                    continue;
                }
                const unsigned e = (unsigned)__builtin_ctzll(lastb);
                lastb &= lastb - 1;
                const uint64_t m = ~0ull >> (63 - e);
                acc += (unsigned)__builtin_popcountll(D & m);
                accg += (unsigned)__builtin_popcountll(R & m);
                open = 0;
                if (accg >= p->digits_groups_needed[open_ls][acc < DLP_DIGITS_MAX_MIN ? acc : DLP_DIGITS_MAX_MIN] &&
                    digit_token(s, start, b, ts, base + e, acc, accg, open_ls))
                    return s->failed;
            }
            while (first) {
                const unsigned f = (unsigned)__builtin_ctzll(first);
                first &= first - 1;
                if (!lastb) { /* runs into the next word */
                    const uint64_t m = ~0ull << f;
                    ts = base + f;
                    acc = (unsigned)__builtin_popcountll(D & m);
                    accg = (unsigned)__builtin_popcountll(R & m);
                    open_ls = (int)((Um1 >> f & 1) << 1 | (LS1 >> f & 1));
                    open = 1;
                    break;
                }
                const unsigned e = (unsigned)__builtin_ctzll(lastb);
                lastb &= lastb - 1;
                const uint64_t m = (~0ull >> (63 - e)) & (~0ull << f);
                const unsigned cnt = (unsigned)__builtin_popcountll(D & m);
                const unsigned g = (unsigned)__builtin_popcountll(R & m);
                const int ls = (int)((Um1 >> f & 1) << 1 | (LS1 >> f & 1));
                if (g >= p->digits_groups_needed[ls][cnt] &&
                    digit_token(s, start, b, base + f, base + e, cnt, g, ls))
                    return s->failed;
            }
        }
    }
    /* a token still open ends at the round's end: its last digit ended the text */
    if (open)
        return fail(s, -EIO, "digit scan: a token runs past the text");
    return 0;
}

static int cmp_iv(const void *a, const void *b)
{
    const interval *x = a, *y = b;
    if (x->rule != y->rule)
        return x->rule < y->rule ? -1 : 1;
    return x->s < y->s ? -1 : x->s > y->s;
}

/* Sort s->iv by (rule, start), as cmp_iv orders: bucketed by rule (a
 * counting sort), then each rule's run only if it is out of order: most
 * arrive in order (a general sort of tens of thousands of them per round
 * cost as much as confirming them). */
static int sort_iv(dlp_stream *s)
{
    const size_t nr = s->p->nrules;
    if (s->capiv2 < s->niv) {
        interval *n = realloc(s->iv2, s->niv * sizeof *n);
        if (!n)
            return -ENOMEM;
        s->iv2 = n;
        s->capiv2 = s->niv;
    }
    size_t *at = s->rule_at;
    memset(at, 0, (nr + 1) * sizeof *at);
    for (size_t i = 0; i < s->niv; i++)
        at[s->iv[i].rule + 1]++;
    for (size_t r = 0; r < nr; r++)
        at[r + 1] += at[r];
    for (size_t i = 0; i < s->niv; i++)
        s->iv2[at[s->iv[i].rule]++] = s->iv[i];
    interval *t = s->iv;
    s->iv = s->iv2;
    s->iv2 = t;
    size_t tc = s->capiv;
    s->capiv = s->capiv2;
    s->capiv2 = tc;
    /* each rule's run: left alone when in order (the usual case), sorted
     * when not */
    for (size_t r = 0, b = 0; r < nr; b = at[r++]) {
        size_t k = b + 1;
        while (k < at[r] && cmp_iv(&s->iv[k - 1], &s->iv[k]) <= 0)
            k++;
        if (k < at[r])
            qsort(s->iv + b, at[r] - b, sizeof *s->iv, cmp_iv);
    }
    return 0;
}

/* Fill s->iv with disjoint per-rule intervals covering every possible match
 * in [from, L). */
static int prefilter(dlp_stream *s, uint64_t L)
{
    const struct dlp_policy *p = s->p;
    s->niv = 0;
    /* Vectorscan sees the kept bytes before `from` too, so that a match (or
     * a rule's prefilter match) starting before the cut but ending after it
     * is reported: ctx_before covers the longest window and lookbehind. */
    uint64_t start = s->from - s->base >= p->ctx_before ? s->from - p->ctx_before : s->base;
    s->hs_start = start;
    for (size_t i = 0; i < p->nrules; i++)
        s->open[i] = (interval){(uint32_t)i, 0, 0, 0};
    if (p->hs) {
        hs_error_t he = hs_scan(p->hs, (const char *)s->buf + (start - s->base),
                                (unsigned int)(L - start), 0, s->scratch, on_hit, s);
        if (he != HS_SUCCESS)
            return fail(s, he == HS_NOMEM ? -ENOMEM : -EIO, "prefilter scan failed (%d)", (int)he);
    }
    if (p->ndigit_rules && digit_scan(s, start, L))
        return s->failed;
    for (size_t i = 0; i < p->nrules; i++) {
        if (!p->rules[i].prefiltered) {
            if (push_iv(s, (interval){(uint32_t)i, s->from, L, L}))
                return fail(s, -ENOMEM, "out of memory");
        } else if (s->open[i].e && push_iv(s, s->open[i])) {
            return fail(s, -ENOMEM, "out of memory");
        }
    }
    /* Hits may arrive out of order for some patterns: sort, then merge. */
    if (s->niv > 1 && sort_iv(s))
        return fail(s, -ENOMEM, "out of memory");
    size_t w = 0;
    for (size_t i = 0; i < s->niv; i++) {
        if (w && s->iv[w - 1].rule == s->iv[i].rule && s->iv[i].s <= s->iv[w - 1].e + 1) {
            if (s->iv[i].e > s->iv[w - 1].e)
                s->iv[w - 1].e = s->iv[i].e;
            if (s->iv[i].last > s->iv[w - 1].last)
                s->iv[w - 1].last = s->iv[i].last;
        } else {
            s->iv[w++] = s->iv[i];
        }
    }
    s->niv = w;
    return 0;
}

static int push_match(dlp_stream *s, match m)
{
    if (s->nm == s->capm) {
        size_t nc = s->capm ? s->capm * 2 : 256;
        match *n = realloc(s->m, nc * sizeof *n);
        if (!n)
            return -ENOMEM;
        s->m = n;
        s->capm = nc;
    }
    s->m[s->nm++] = m;
    return 0;
}

static inline uint8_t lower(uint8_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static inline int is_alpha(uint8_t c) { return (c | 32) >= 'a' && (c | 32) <= 'z'; }
static inline int is_alnum(uint8_t c) { return is_alpha(c) || (c >= '0' && c <= '9'); }

/* A word boundary between bytes a and b, as people and code write words:
 * anything not a letter or digit, a lower-to-upper case change
 * (secretAccessKey), or a change between letters and digits. */
static inline int boundary(uint8_t a, uint8_t b)
{
    return !is_alnum(a) || !is_alnum(b) || (a >= 'a' && a <= 'z' && b >= 'A' && b <= 'Z') ||
           is_alpha(a) != is_alpha(b);
}

/* Case-insensitive (ASCII) search for a whole word (or phrase): "dob" counts
 * in "DOB:" and "user_dob" but not inside "xdobq". The first byte is compared
 * inline because most positions fail there. */
static int ci_find(const uint8_t *hay, size_t hlen, const char *needle)
{
    size_t nlen = strlen(needle);
    if (nlen == 0 || nlen > hlen)
        return 0;
    uint8_t first = lower((uint8_t)needle[0]);
    for (size_t i = 0; i + nlen <= hlen; i++)
        if (lower(hay[i]) == first && strncasecmp((const char *)hay + i + 1, needle + 1, nlen - 1) == 0 &&
            (i == 0 || boundary(hay[i - 1], hay[i])) &&
            (i + nlen == hlen || boundary(hay[i + nlen - 1], hay[i + nlen])))
            return 1;
    return 0;
}

static int allowed_value(const dlp_rule *r, const uint8_t *v, size_t len)
{
    if (!r->nallow)
        return 0;
    char small[512];
    char *t = len < sizeof small ? small : malloc(len + 1);
    if (!t)
        return 0; /* cannot compare: treat as a finding (mask more, never less) */
    memcpy(t, v, len);
    t[len] = '\0';
    int hit = strlen(t) == len; /* a NUL inside never equals a glob */
    for (size_t i = 0; hit && i < r->nallow; i++)
        if (fnmatch(r->allow[i], t, 0) == 0)
            goto done;
    hit = 0;
done:
    if (t != small)
        free(t);
    return hit;
}

/* Does the finding [fs, fe) count: validator, allow list, context words. */
static int accept_finding(const dlp_stream *s, const dlp_rule *r, size_t fs, size_t fe)
{
    if (!dlp_validate(r, s->buf + fs, fe - fs) || allowed_value(r, s->buf + fs, fe - fs))
        return 0;
    if (!r->nctx)
        return 1;
    size_t cs = fs > r->ctx_window ? fs - r->ctx_window : 0;
    size_t ce = fe + r->ctx_window < s->len ? fe + r->ctx_window : s->len;
    for (size_t w = 0; w < r->nctx; w++)
        if (ci_find(s->buf + cs, ce - cs, r->ctx_words[w]))
            return 1;
    return 0;
}

/* The greedy match at `ms` was rejected (say 16 card digits and the " 12" of
 * an expiry date fail Luhn together): the longest shorter match at the same
 * start that is accepted, from PCRE2's DFA matcher, which reports every
 * match length at one start. Rules with a `secret` group are left as they
 * are (DFA matching has no groups); so are patterns DFA cannot run. Returns
 * its end, or 0. */
static size_t shorter_accepted(dlp_stream *s, const dlp_rule *r, PCRE2_SIZE len, PCRE2_SIZE ms,
                               PCRE2_SIZE me, uint32_t opts)
{
    if (r->secret_group)
        return 0;
    int ws[DFA_WORKSPACE];
    int rc = pcre2_dfa_match(r->re, s->buf, len, ms, opts | PCRE2_ANCHORED, s->dfa_md, s->mctx,
                             ws, DFA_WORKSPACE);
    if (rc == 0)
        rc = DFA_ALTS; /* more lengths than fit: the longest DFA_ALTS */
    if (rc <= 0)
        return 0;
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->dfa_md);
    for (int k = 0; k < rc; k++) {
        PCRE2_SIZE e = ov[2 * k + 1];
        if (ov[2 * k] == ms && e > ms && e < me && accept_finding(s, r, ms, e))
            return e;
    }
    return 0;
}

/* Iterate rule r's PCRE2 matches starting in [is, ie], the subject ending at
 * subj_end (absolute). Shared with examples.c through dlp_confirm(). */
static int confirm(dlp_stream *s, uint32_t ri, uint64_t is, uint64_t ie, uint64_t subj_end,
                   int at_eod)
{
    const struct dlp_policy *p = s->p;
    const dlp_rule *r = &p->rules[ri];
    PCRE2_SIZE len = (PCRE2_SIZE)(subj_end - s->base);
    uint32_t opts = (s->base > 0 ? PCRE2_NOTBOL : 0) | (at_eod ? 0 : PCRE2_NOTEOL);
    PCRE2_SIZE pos = (PCRE2_SIZE)(is - s->base), last = (PCRE2_SIZE)(ie - s->base);
    /* Matches that count here start by `last`: tell PCRE2, which would
     * otherwise try every start up to the subject's end (a window's
     * lookahead past its last start) before saying "no match". */
    pcre2_set_offset_limit(s->mctx, last);
    while (pos <= last && pos <= len) {
        int rc = pcre2_match(r->re, s->buf, len, pos, opts, s->md, s->mctx);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return fail(s, -ERANGE, "rule %s: %s", r->id, (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
        /* With \K, ov[0] is after the real start; the match consumed input
         * from its start, which the cut logic must see. */
        PCRE2_SIZE ms = pcre2_get_startchar(s->md), me = ov[1];
        if (ov[0] < ms)
            ms = ov[0];
        if (ms > last)
            break;
        if (me <= ms) { /* empty match: nothing to mask, move on */
            pos = ms + 1;
            continue;
        }
        PCRE2_SIZE fs = ov[0], fe = me;
        if (r->secret_group && (uint32_t)rc > r->secret_group &&
            ov[2 * r->secret_group] != PCRE2_UNSET && ov[2 * r->secret_group + 1] > ov[2 * r->secret_group]) {
            fs = ov[2 * r->secret_group];
            fe = ov[2 * r->secret_group + 1];
            /* A group captured inside a lookaround lies outside the match:
             * the match's span then covers it, so the cut logic sees it. */
            if (fs < ms)
                ms = fs;
            if (fe > me)
                me = fe;
        }
        int ok = accept_finding(s, r, fs, fe);
        if (!ok && r->validator != VAL_NONE) {
            size_t e = shorter_accepted(s, r, len, ms, me, opts);
            if (e) {
                me = fe = e;
                ok = 1;
            }
        }
        if (push_match(s, (match){s->base + ms, s->base + me, s->base + fs, s->base + fe, ri,
                                  (uint8_t)ok}))
            return fail(s, -ENOMEM, "out of memory");
        /* A rejected match (bad checksum, no context, allowed value) consumes
         * nothing: a finding overlapping it must still be found. */
        pos = ok ? me : ms + 1;
    }
    return 0;
}

static int cmp_finding(const void *a, const void *b)
{
    const match *x = a, *y = b;
    if (x->fs != y->fs)
        return x->fs < y->fs ? -1 : 1;
    if (x->fe != y->fe)
        return x->fe > y->fe ? -1 : 1;
    return x->rule < y->rule ? -1 : x->rule > y->rule;
}

/* Resolve accepted findings before C into groups and write the output up
 * to C: first every group's replacement (so the round's output size is
 * known), then the clean spans and replacements, in one pass, into the
 * caller's sink or the stream's own buffer for `out`. */
static int resolve_and_emit(dlp_stream *s, uint64_t C)
{
    const struct dlp_policy *p = s->p;
    size_t n = 0;
    for (size_t i = 0; i < s->nm; i++)
        if (s->m[i].accepted && s->m[i].s < C)
            s->m[n++] = s->m[i];
    if (n > 1)
        qsort(s->m, n, sizeof *s->m, cmp_finding);
    if (n > s->capg) {
        group *g = realloc(s->g, n * sizeof *g);
        if (!g)
            return fail(s, -ENOMEM, "out of memory");
        s->g = g;
        s->capg = n;
    }
    s->labels.len = 0;
    size_t ng = 0;
    uint64_t at = s->from; /* the output so far ends with the input before `at` */
    size_t total = 0;
    for (size_t i = 0; i < n;) {
        const match *first = &s->m[i];
        uint64_t gs = first->fs, ge = first->fe;
        size_t j = i;
        for (; j < n && s->m[j].fs < ge; j++) {
            if (s->m[j].fe > ge)
                ge = s->m[j].fe;
            s->counts[s->m[j].rule]++;
        }
        const dlp_rule *r = &p->rules[first->rule];
        if (gs < at) /* its start was already written out: never serve it */
            return fail(s, -EINVAL, "rule %s: a finding starts before text already served", r->id);
        if (dlp_apply_action(p, r, s->buf + (gs - s->base), ge - gs, &s->labels))
            return fail(s, -EIO, "rule %s: action failed", r->id);
        s->g[ng++] = (group){gs, ge, s->labels.len};
        total += (size_t)(gs - at);
        at = ge;
        if (s->on_finding) {
            dlp_finding f = {r->id, gs, ge - gs, r->action.type};
            int rc = s->on_finding(s->ctx, &f);
            if (rc)
                return fail(s, rc < 0 ? rc : -ECANCELED, "finding callback stopped the scan");
        }
        i = j;
    }
    total += (size_t)(C - at) + s->labels.len;
    if (total == 0) {
        s->from = C;
        return 0;
    }
    uint8_t *o;
    if (s->sink.reserve) {
        if (!(o = s->sink.reserve(s->ctx, total)))
            return fail(s, -ENOMEM, "out of memory");
    } else {
        if (!s->out)
            return fail(s, -EINVAL, "stream without an output");
        if (total > s->obuf.cap && dlp_stream_reserve(s, total > 2 * s->obuf.cap ? total : 2 * s->obuf.cap))
            return fail(s, -ENOMEM, "out of memory");
        o = s->obuf.data;
    }
    at = s->from;
    size_t lab = 0;
    for (size_t k = 0; k <= ng; k++) {
        const uint64_t upto = k < ng ? s->g[k].s : C;
        if (upto > at) {
            memcpy(o, s->buf + (at - s->base), (size_t)(upto - at));
            o += upto - at;
        }
        if (k < ng) {
            if (s->g[k].label > lab) {
                memcpy(o, s->labels.data + lab, s->g[k].label - lab);
                o += s->g[k].label - lab;
            }
            lab = s->g[k].label;
            at = s->g[k].e;
        }
    }
    s->from = C;
    int rc = s->sink.reserve ? s->sink.commit(s->ctx, total) : s->out(s->ctx, s->obuf.data, total);
    if (rc)
        return fail(s, rc < 0 ? rc : -EIO, "output callback failed");
    return 0;
}

typedef struct span {
    uint64_t s, e;
} span;

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->s < y->s ? -1 : x->s > y->s;
}

/* Move *C back to the largest point <= *C that no match spans: sort their
 * spans by start and, with the running maximum of their ends, take the last
 * start (or *C itself) that nothing before it crosses. O(n log n) even for
 * long chains of overlapping matches.
 *
 * A context window may be cut: the next round's prefilter scan starts
 * ctx_before bytes before the cut (compile.c: the longest window, context
 * and word), so every context word whose window reaches past the cut is
 * reported again and its window opens again at the cut, and the context
 * check looks at the kept bytes before it; with no match across the cut,
 * the rule's iteration from the cut gives the matches the uncut window
 * would. (Windows of a context word on every line, say an "SSN" column,
 * chain through a whole file: never cutting through one refused any such
 * file longer than a round.) */
static int cut_point(dlp_stream *s, uint64_t *C)
{
    size_t n = 0;
    span *v = malloc((s->nm + 1) * sizeof *v);
    if (!v)
        return fail(s, -ENOMEM, "out of memory");
    for (size_t i = 0; i < s->nm; i++)
        if (s->m[i].s < *C)
            v[n++] = (span){s->m[i].s, s->m[i].e};
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_span);
    uint64_t *maxe = malloc((n + 1) * sizeof *maxe);
    if (!maxe) {
        free(v);
        return fail(s, -ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        maxe[i] = i && maxe[i - 1] > v[i].e ? maxe[i - 1] : v[i].e;
    uint64_t c = *C;
    if (n && maxe[n - 1] > c) {
        c = s->from;
        for (size_t j = n; j-- > 0;)
            if (j == 0 || maxe[j - 1] <= v[j].s) {
                c = v[j].s > s->from ? v[j].s : s->from;
                break;
            }
    }
    *C = c;
    free(v);
    free(maxe);
    return 0;
}

/* One round over [from, L). Returns 0 and sets *progress when it emitted. */
static int scan_round(dlp_stream *s, uint64_t L, int final, int *progress)
{
    const struct dlp_policy *p = s->p;
    *progress = 0;
    int rc = prefilter(s, L);
    if (rc)
        return rc;
    s->nm = 0;
    for (size_t i = 0; i < s->niv; i++) {
        const interval *v = &s->iv[i];
        uint64_t se = v->e + DLP_LOOKAHEAD < L ? v->e + DLP_LOOKAHEAD : L;
        uint64_t last = v->last < se ? v->last : se;
        if ((rc = confirm(s, v->rule, v->s, last, se, final && se == L)))
            return rc;
    }
    uint64_t C = L;
    if (!final) {
        C = L - s->from > p->hold ? L - p->hold : s->from;
        if ((rc = cut_point(s, &C)))
            return rc;
        if (C <= s->from)
            return 0;
    }
    if ((rc = resolve_and_emit(s, C)))
        return rc;
    *progress = 1;
    /* Drop what no later round can look at; amortized, so a large buffer is
     * not moved once per round. */
    uint64_t keep = s->from - s->base > p->ctx_before ? s->from - p->ctx_before : s->base;
    if (!s->borrowed && keep - s->base > s->len / 2) {
        memmove(s->buf, s->buf + (keep - s->base), s->len - (keep - s->base));
        s->len -= keep - s->base;
        s->base = keep;
    }
    return 0;
}

static int pump(dlp_stream *s, int final)
{
    const struct dlp_policy *p = s->p;
    for (;;) {
        uint64_t L = s->base + s->len;
        uint64_t pending = L - s->from;
        if (!final && pending < s->round_min + p->hold)
            return 0;
        int last = final;
        if (pending > s->round_max + p->hold) {
            L = s->from + s->round_max + p->hold;
            last = 0;
        }
        int progress;
        int rc = scan_round(s, L, last, &progress);
        if (rc)
            return rc;
        if (last)
            return 0;
        if (!progress) {
            if (L - s->from > MAX_BUFFER)
                return fail(s, -E2BIG, "overlapping findings span more than %u MiB", MAX_BUFFER >> 20);
            if (L == s->base + s->len)
                return 0; /* wait for more input */
            /* a round cut short made no progress: widen it, up to ROUND_MAX */
            if (s->round_max < ROUND_MAX) {
                s->round_max = s->round_max * 2 < ROUND_MAX ? s->round_max * 2 : ROUND_MAX;
                continue;
            }
            return fail(s, -E2BIG, "overlapping findings span more than a scan round");
        }
    }
}

int dlp_stream_new(const dlp_policy *p, dlp_out_fn out, dlp_finding_fn on_finding, void *ctx,
                   dlp_stream **sp)
{
    dlp_stream *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->p = p;
    s->out = out;
    s->on_finding = on_finding;
    s->ctx = ctx;
    s->round_min = ROUND_MIN;
    s->round_max = ROUND_MAX;
    s->counts = calloc(p->nrules + 1, sizeof *s->counts);
    s->hits = calloc(p->nrules + 1, sizeof *s->hits);
    s->open = calloc(p->nrules + 1, sizeof *s->open);
    s->rule_at = calloc(p->nrules + 1, sizeof *s->rule_at);
    s->md = pcre2_match_data_create(p->max_groups + 1, NULL);
    s->mctx = pcre2_match_context_copy(p->mctx);
    s->dfa_md = pcre2_match_data_create(DFA_ALTS, NULL);
    if (!s->counts || !s->hits || !s->open || !s->rule_at || !s->md || !s->mctx || !s->dfa_md ||
        (p->hs && hs_clone_scratch(p->hs_proto, &s->scratch) != HS_SUCCESS)) {
        dlp_stream_free(s);
        return -ENOMEM;
    }
    *sp = s;
    return 0;
}

int dlp_stream_set_sink(dlp_stream *s, const dlp_sink *sink)
{
    if (s->buf || s->finished || !sink || !sink->reserve || !sink->commit)
        return -EINVAL;
    s->sink = *sink;
    return 0;
}

int dlp_stream_feed(dlp_stream *s, const void *buf, size_t len)
{
    if (s->failed)
        return s->failed;
    if (s->finished)
        return fail(s, -EINVAL, "feed after finish");
    if (s->len + len > s->cap) {
        size_t nc = s->cap ? s->cap : 1 << 16;
        while (nc < s->len + len)
            nc *= 2;
        uint8_t *n = realloc(s->buf, nc);
        if (!n)
            return fail(s, -ENOMEM, "out of memory");
        s->buf = n;
        s->cap = nc;
    }
    if (len == 0)
        return 0;
    memcpy(s->buf + s->len, buf, len);
    s->len += len;
    return pump(s, 0);
}

int dlp_stream_finish(dlp_stream *s)
{
    if (s->failed)
        return s->failed;
    if (s->finished)
        return 0;
    s->finished = 1;
    if (!s->buf) { /* empty input */
        return 0;
    }
    return pump(s, 1);
}

int dlp_stream_scan_whole(dlp_stream *s, const uint8_t *buf, size_t len)
{
    if (s->failed)
        return s->failed;
    if (s->buf || s->finished)
        return fail(s, -EINVAL, "scan_whole on a stream already fed");
    s->finished = 1;
    if (len == 0)
        return 0;
    s->borrowed = 1;
    s->round_max = ROUND_WHOLE;
    s->buf = (uint8_t *)buf; /* read only: see `borrowed` */
    s->len = s->cap = len;
    return pump(s, 1);
}

int dlp_stream_reserve(dlp_stream *s, size_t out_bytes)
{
    if (out_bytes <= s->obuf.cap)
        return 0;
    uint8_t *n = realloc(s->obuf.data, out_bytes);
    if (!n)
        return -ENOMEM;
    s->obuf.data = n;
    s->obuf.cap = out_bytes;
    return 0;
}

const dlp_rule_hits *dlp_stream_hits(const dlp_stream *s, size_t *n)
{
    size_t k = 0;
    for (size_t i = 0; i < s->p->nrules; i++)
        if (s->counts[i]) {
            s->hits[k].rule_id = s->p->rules[i].id;
            s->hits[k].count = s->counts[i];
            k++;
        }
    *n = k;
    return s->hits;
}

const char *dlp_stream_error(const dlp_stream *s) { return s->failed ? s->err : NULL; }

void dlp_stream_set_round_size(dlp_stream *s, size_t bytes) { s->round_min = bytes ? bytes : 1; }

void dlp_stream_free(dlp_stream *s)
{
    if (!s)
        return;
    if (s->scratch)
        hs_free_scratch(s->scratch);
    if (s->md)
        pcre2_match_data_free(s->md);
    if (s->mctx)
        pcre2_match_context_free(s->mctx);
    if (s->dfa_md)
        pcre2_match_data_free(s->dfa_md);
    if (!s->borrowed)
        free(s->buf);
    free(s->iv);
    free(s->iv2);
    free(s->rule_at);
    free(s->open);
    free(s->m);
    free(s->g);
    free(s->labels.data);
    free(s->obuf.data);
    free(s->counts);
    free(s->hits);
    free(s);
}

/* ---- one rule over one example (examples.c) -------------------------------- */

int dlp_rule_spans(const struct dlp_policy *p, size_t ri, const uint8_t *text, size_t len,
                   dlp_span **spans, size_t *nspans, dlp_span **all, size_t *nall, char *why,
                   size_t whylen)
{
    dlp_stream *s;
    int rc = dlp_stream_new(p, NULL, NULL, NULL, &s);
    if (rc)
        return rc;
    s->buf = malloc(len + 1);
    if (!s->buf) {
        dlp_stream_free(s);
        return -ENOMEM;
    }
    memcpy(s->buf, text, len);
    s->len = len;
    rc = confirm(s, (uint32_t)ri, 0, len, len, 1);
    if (rc) {
        snprintf(why, whylen, "%s", s->err);
    } else {
        *spans = calloc(s->nm + 1, sizeof **spans);
        *nspans = 0;
        if (!*spans)
            rc = -ENOMEM;
        for (size_t i = 0; !rc && i < s->nm; i++)
            if (s->m[i].accepted)
                (*spans)[(*nspans)++] = (dlp_span){s->m[i].fs, s->m[i].fe - s->m[i].fs};
        if (!rc && all) {
            *all = calloc(s->nm + 1, sizeof **all);
            if (!*all)
                rc = -ENOMEM;
            for (size_t i = 0; !rc && i < s->nm; i++)
                (*all)[i] = (dlp_span){s->m[i].s, s->m[i].e - s->m[i].s};
            *nall = rc ? 0 : s->nm;
        }
    }
    dlp_stream_free(s);
    return rc;
}
