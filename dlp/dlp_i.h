/* dlp/dlp_i.h — the engine's private structures, shared by the dlp sources only.
 * Nothing outside dlp/ includes this file: dlp/dlp.h is the public surface. */
#ifndef SLUICE_DLP_I_H
#define SLUICE_DLP_I_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <hs/hs.h>
#include <pcre2.h>

#include "common/common.h"
#include "dlp/dlp.h"

/* Bytes past a match's end that its pattern may look at (\b, lookahead)
 * before the match is final; see scan.c. */
#define DLP_LOOKAHEAD 64
/* Default window for patterns Vectorscan cannot bound (see max-length). */
#define DLP_DEFAULT_MAX_LENGTH 4096
#define DLP_MAX_MAX_LENGTH (1u << 20)
/* The `digits` prefilter: at most this many separator bytes between two
 * digits of a match, and the largest `min`. */
#define DLP_DIGITS_GAP 2
#define DLP_DIGITS_MAX_MIN 64

enum dlp_validator { VAL_NONE, VAL_LUHN, VAL_IBAN, VAL_US_SSN, VAL_ENTROPY };

typedef struct dlp_action_spec {
    enum dlp_action type;
    char mask_char;
    int keep_last;
    int keep_separators;
    char *label;  /* replace: the text; hash: the pseudonym's prefix */
    int hash_len; /* hex digits of the HMAC kept */
} dlp_action_spec;

typedef struct dlp_span {
    size_t off, len;
} dlp_span;

typedef struct dlp_example {
    char *text; /* with [[ ]] markers removed */
    size_t len;
    dlp_span *spans;
    size_t nspans;
    int line;
} dlp_example;

typedef struct dlp_rule {
    char *id, *description, *pattern;
    char *prefilter; /* optional: a superset of `pattern` for Vectorscan */
    unsigned digits_min; /* optional: every match holds this many digits (scan.c), 0 = none */
    unsigned digits_groups; /* and at least this many runs of them (0 = any) */
    unsigned digits_lead;   /* and it starts with this many A-Z before its first digit */
    char *digits_seps;   /* the bytes that may separate them, at most DLP_DIGITS_GAP in a row */
    char *file; /* the pack it came from, for messages */
    int line;
    int pat_line, pat_col; /* where the pattern's text starts in the file */
    int caseless;
    unsigned max_length; /* declared bound, 0 = none */
    enum dlp_validator validator;
    double min_bits;
    char **ctx_words;
    size_t nctx;
    unsigned ctx_window;
    dlp_action_spec action; /* effective, after policy overrides */
    char **tags;
    size_t ntags;
    char **allow;
    size_t nallow;
    dlp_example *must_match, *must_not;
    size_t nmust_match, nmust_not;

    /* compiled */
    pcre2_code *re;
    uint32_t secret_group; /* 0 when the whole match is the finding */
    unsigned window;       /* longest possible match: the PCRE2 confirm window */
    int prefiltered;       /* in the Vectorscan database (its pattern, or its context words) */
} dlp_rule;

struct dlp_policy {
    char *path;
    char hash[SHA256_HEX_LEN];
    dlp_rule *rules;
    size_t nrules;
    char **allow_types, **deny_types;
    size_t nallow_types, ndeny_types;
    int all_types; /* a bare pack: every type allowed */
    uint8_t key[KEY_MAX_LEN];
    size_t keylen;
    uint64_t max_size;
    uint32_t match_limit, depth_limit;
    dlp_documents docs;
    char **doc_types;
    size_t ndoc_types;

    /* compiled */
    hs_database_t *hs;
    hs_scratch_t *hs_proto; /* cloned per stream: scratch is per thread */
    pcre2_match_context *mctx;
    uint32_t max_groups;
    uint32_t max_lookbehind; /* longest PCRE2 lookbehind of any rule */
    uint32_t *ctx_rule;  /* Vectorscan ids >= nrules are context words: their rule */
    uint32_t *ctx_len;   /* and their lengths */
    size_t nctx_words;
    uint32_t *digit_rule;    /* the rules prefiltered by the digit scan */
    size_t ndigit_rules;
    /* [c]: the fewest groups a token of c digits needs to be a candidate
     * for any of them (UINT_MAX: none takes c digits). [0]: rules without a
     * lead (no letter A-Z before the token); [1]: and lead rules with
     * separators (a letter, then a separator, then the token); [2]: all (a
     * letter right before the token). */
    unsigned digits_groups_needed[3][DLP_DIGITS_MAX_MIN + 1];
    int digits_short; /* no claim takes a token of 3 digits or fewer without a letter before it */
    uint8_t digit_sep[256];  /* the union of their separators */
    uint8_t digit_sep_list[256]; /* the same, as a list */
    size_t ndigit_seps;
    /* digits.c: bitmaps of the digits, separators and letters A-Z of
     * nwords 64-byte words at b (bit j of word k: byte 64k + j) */
    void (*digit_masks)(const uint8_t *b, size_t nwords, const struct dlp_policy *p, uint64_t *d,
                        uint64_t *s, uint64_t *u);
    size_t hold;       /* bytes held back before a cut: window + context + lookahead */
    size_t ctx_before; /* bytes kept before a cut for lookbehind and context */
};

/* config.c */
int dlp_config_load(const char *path, int is_pack_only, struct dlp_policy *p, dlp_error *err);
void dlp_rule_free_fields(dlp_rule *r);

/* compile.c */
int dlp_compile(struct dlp_policy *p, dlp_error *err);

/* validators.c */
int dlp_validate(const dlp_rule *r, const uint8_t *s, size_t len);
int dlp_luhn(const uint8_t *s, size_t len);
int dlp_iban(const uint8_t *s, size_t len);
int dlp_us_ssn(const uint8_t *s, size_t len);
double dlp_entropy_bits(const uint8_t *s, size_t len);

/* mask.c: append the action's replacement for `s` to the growable buffer. */
typedef struct dlp_buf {
    uint8_t *data;
    size_t len, cap;
} dlp_buf;
int dlp_buf_put(dlp_buf *b, const void *data, size_t len);
int dlp_apply_action(const struct dlp_policy *p, const dlp_rule *r, const uint8_t *s, size_t len,
                     dlp_buf *out);

/* classify.c */
int dlp_type_allowed(const struct dlp_policy *p, const char *mime, char *reason, size_t rlen);

/* scan.c: scan a whole input in place (the stream borrows `buf` and never
 * writes it) and finish the stream; for dlp_sanitize(), which would
 * otherwise copy the whole input into the stream's buffer. */
int dlp_stream_scan_whole(dlp_stream *s, const uint8_t *buf, size_t len);
/* Reserve the stream's per-round output buffer (avoids growing it by realloc). */
int dlp_stream_reserve(dlp_stream *s, size_t out_bytes);

/* scan.c: rule ri's accepted finding spans in `text`, alone (for examples);
 * with `all`, also the span of every PCRE2 match, accepted or not. */
int dlp_rule_spans(const struct dlp_policy *p, size_t ri, const uint8_t *text, size_t len,
                   dlp_span **spans, size_t *nspans, dlp_span **all, size_t *nall, char *why,
                   size_t whylen);

/* digits.c: picks p->digit_masks for this CPU, lists p->digit_sep. */
void dlp_digit_masks_init(struct dlp_policy *p);

/* compile.c: the expression Vectorscan gets for a rule (malloc'd). */
char *dlp_prefilter_expr(const dlp_rule *r);

#endif
