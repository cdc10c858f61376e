/* dlp/config.c — reads rule packs and policies (YAML, through libyaml's
 * document API) into struct dlp_policy.
 *
 * Every error names file:line:col. Unknown keys are errors, not warnings: a
 * misspelt `validator` must not silently turn a rule into a weaker one. This
 * file never compiles patterns (compile.c does) and never reads the key's
 * bytes into anything but the policy. */
#include "dlp/dlp_i.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_CONFIG_BYTES (16u << 20)

typedef struct ycx {
    yaml_document_t doc;
    const char *file;
    dlp_error *err;
} ycx;

static int set_err(dlp_error *err, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int set_err(dlp_error *err, const char *file, int line, int col, const char *fmt, ...)
{
    snprintf(err->file, sizeof err->file, "%s", file);
    err->line = line;
    err->col = col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

#define YERR(c, n, ...)                                                                     \
    set_err((c)->err, (c)->file, (int)(n)->start_mark.line + 1, (int)(n)->start_mark.column + 1, \
            __VA_ARGS__)

static yaml_node_t *ynode(ycx *c, int i) { return yaml_document_get_node(&c->doc, i); }

static int yscalar(ycx *c, yaml_node_t *n, const char *what, const char **out)
{
    if (n->type != YAML_SCALAR_NODE)
        return YERR(c, n, "%s: expected a string", what);
    const char *s = (const char *)n->data.scalar.value;
    if (strlen(s) != n->data.scalar.length)
        return YERR(c, n, "%s: NUL byte in string", what);
    *out = s;
    return 0;
}

static int ystrdup(ycx *c, yaml_node_t *n, const char *what, char **out)
{
    const char *s = NULL;
    int rc = yscalar(c, n, what, &s);
    if (rc)
        return rc;
    if (!(*out = strdup(s)))
        return -ENOMEM;
    return 0;
}

static int yint(ycx *c, yaml_node_t *n, const char *what, long lo, long hi, long *out)
{
    const char *s = NULL;
    int rc = yscalar(c, n, what, &s);
    if (rc)
        return rc;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return YERR(c, n, "%s: expected a whole number from %ld to %ld", what, lo, hi);
    *out = v;
    return 0;
}

static int ybool(ycx *c, yaml_node_t *n, const char *what, int *out)
{
    const char *s = NULL;
    int rc = yscalar(c, n, what, &s);
    if (rc)
        return rc;
    if (!strcmp(s, "true") || !strcmp(s, "yes"))
        *out = 1;
    else if (!strcmp(s, "false") || !strcmp(s, "no"))
        *out = 0;
    else
        return YERR(c, n, "%s: expected true or false", what);
    return 0;
}

/* A list of strings (a single string is a list of one). */
static int ystrlist(ycx *c, yaml_node_t *n, const char *what, char ***out, size_t *nout)
{
    if (n->type == YAML_SCALAR_NODE) {
        char **v = calloc(1, sizeof *v);
        if (!v)
            return -ENOMEM;
        int rc = ystrdup(c, n, what, &v[0]);
        if (rc) {
            free(v);
            return rc;
        }
        *out = v;
        *nout = 1;
        return 0;
    }
    if (n->type != YAML_SEQUENCE_NODE)
        return YERR(c, n, "%s: expected a list of strings", what);
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    char **v = calloc(cnt + 1, sizeof *v);
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < cnt; i++) {
        int rc = ystrdup(c, ynode(c, n->data.sequence.items.start[i]), what, &v[i]);
        if (rc) {
            for (size_t j = 0; j < i; j++)
                free(v[j]);
            free(v);
            return rc;
        }
    }
    *out = v;
    *nout = cnt;
    return 0;
}

static void strlist_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Iterate a mapping, rejecting keys not in `allowed` (NULL-terminated). */
typedef int (*ykey_fn)(ycx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg);
static int ymap(ycx *c, yaml_node_t *n, const char *what, const char *const *allowed, ykey_fn fn,
                void *arg)
{
    if (n->type != YAML_MAPPING_NODE)
        return YERR(c, n, "%s: expected a mapping", what);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = ynode(c, p->key), *v = ynode(c, p->value);
        const char *key;
        int rc = yscalar(c, k, what, &key);
        if (rc)
            return rc;
        if (allowed) {
            int ok = 0;
            for (const char *const *a = allowed; *a && !ok; a++)
                ok = !strcmp(*a, key);
            if (!ok)
                return YERR(c, k, "%s: unknown key '%s'", what, key);
        }
        /* Duplicate keys: libyaml keeps both; the second would silently win. */
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *qk = ynode(c, q->key);
            if (qk->type == YAML_SCALAR_NODE && !strcmp((const char *)qk->data.scalar.value, key))
                return YERR(c, k, "%s: duplicate key '%s'", what, key);
        }
        if ((rc = fn(c, key, k, v, arg)))
            return rc;
    }
    return 0;
}

/* ---- actions ---------------------------------------------------------------- */

static int parse_action_type(ycx *c, yaml_node_t *n, enum dlp_action *t)
{
    const char *s = NULL;
    int rc = yscalar(c, n, "action", &s);
    if (rc)
        return rc;
    static const char *const names[] = {"mask", "replace", "hash", "remove"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) {
            *t = (enum dlp_action)i;
            return 0;
        }
    return YERR(c, n, "action: unknown type '%s' (mask, replace, hash, remove)", s);
}

static void action_defaults(dlp_action_spec *a, enum dlp_action t)
{
    memset(a, 0, sizeof *a);
    a->type = t;
    a->mask_char = '*';
    a->keep_last = 0;
    a->keep_separators = 1;
    a->hash_len = 8;
}

static int action_key(ycx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    (void)k;
    dlp_action_spec *a = arg;
    long n;
    int rc = 0;
    if (!strcmp(key, "type"))
        return 0; /* handled first */
    if (!strcmp(key, "char")) {
        const char *s = NULL;
        if ((rc = yscalar(c, v, "action.char", &s)))
            return rc;
        if (strlen(s) != 1 || (unsigned char)s[0] < 0x20 || (unsigned char)s[0] > 0x7e)
            return YERR(c, v, "action.char: expected one printable ASCII character");
        a->mask_char = s[0];
    } else if (!strcmp(key, "keep-last")) {
        if ((rc = yint(c, v, "action.keep-last", 0, 64, &n)))
            return rc;
        a->keep_last = (int)n;
    } else if (!strcmp(key, "keep-separators")) {
        rc = ybool(c, v, "action.keep-separators", &a->keep_separators);
    } else if (!strcmp(key, "label")) {
        free(a->label);
        a->label = NULL;
        rc = ystrdup(c, v, "action.label", &a->label);
    } else if (!strcmp(key, "length")) {
        if ((rc = yint(c, v, "action.length", 4, 64, &n)))
            return rc;
        a->hash_len = (int)n;
    }
    return rc;
}

static int parse_action(ycx *c, yaml_node_t *n, dlp_action_spec *a)
{
    static const char *const keys[] = {"type", "char", "keep-last", "keep-separators",
                                       "label", "length", NULL};
    enum dlp_action t;
    int rc;
    if (n->type == YAML_SCALAR_NODE) {
        if ((rc = parse_action_type(c, n, &t)))
            return rc;
        action_defaults(a, t);
        return 0;
    }
    if (n->type != YAML_MAPPING_NODE)
        return YERR(c, n, "action: expected a type name or a mapping");
    yaml_node_t *tn = NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = ynode(c, p->key);
        if (k->type == YAML_SCALAR_NODE && !strcmp((const char *)k->data.scalar.value, "type"))
            tn = ynode(c, p->value);
    }
    if (!tn)
        return YERR(c, n, "action: missing 'type'");
    if ((rc = parse_action_type(c, tn, &t)))
        return rc;
    action_defaults(a, t);
    return ymap(c, n, "action", keys, action_key, a);
}

/* ---- rules ------------------------------------------------------------------ */

static int parse_example(ycx *c, yaml_node_t *n, int with_spans, dlp_example *ex)
{
    const char *s = NULL;
    int rc = yscalar(c, n, with_spans ? "must-match" : "must-not-match", &s);
    if (rc)
        return rc;
    size_t len = strlen(s);
    ex->text = malloc(len + 1);
    ex->spans = calloc(len / 4 + 1, sizeof *ex->spans);
    if (!ex->text || !ex->spans)
        return -ENOMEM;
    ex->line = (int)n->start_mark.line + 1;
    size_t o = 0, open_at = 0;
    int open = 0;
    for (size_t i = 0; i < len; i++) {
        if (with_spans && s[i] == '[' && s[i + 1] == '[' && !open) {
            open = 1;
            open_at = o;
            i++;
        } else if (with_spans && s[i] == ']' && s[i + 1] == ']' && open) {
            /* ']]]' closes after the first ']' of the run is text */
            while (i + 2 < len && s[i + 2] == ']')
                ex->text[o++] = s[i++];
            open = 0;
            ex->spans[ex->nspans].off = open_at;
            ex->spans[ex->nspans].len = o - open_at;
            ex->nspans++;
            i++;
        } else {
            ex->text[o++] = s[i];
        }
    }
    ex->text[o] = '\0';
    ex->len = o;
    if (open)
        return YERR(c, n, "must-match: '[[' without ']]'");
    if (with_spans && ex->nspans == 0)
        return YERR(c, n, "must-match: mark the expected span with [[...]]");
    return 0;
}

static int parse_examples(ycx *c, yaml_node_t *n, int with_spans, dlp_example **out, size_t *nout)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return YERR(c, n, "%s: expected a list of strings", with_spans ? "must-match" : "must-not-match");
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    *out = calloc(cnt + 1, sizeof **out);
    if (!*out)
        return -ENOMEM;
    *nout = cnt;
    for (size_t i = 0; i < cnt; i++) {
        int rc = parse_example(c, ynode(c, n->data.sequence.items.start[i]), with_spans, &(*out)[i]);
        if (rc)
            return rc;
    }
    return 0;
}

static int validator_key(ycx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    (void)k;
    dlp_rule *r = arg;
    if (!strcmp(key, "name"))
        return 0;
    const char *s = NULL;
    int rc = yscalar(c, v, "validator.min-bits", &s);
    if (rc)
        return rc;
    char *end;
    double d = strtod(s, &end);
    if (end == s || *end || !isfinite(d) || d <= 0 || d > 8)
        return YERR(c, v, "validator.min-bits: expected a number of bits per character, 0 to 8");
    r->min_bits = d;
    return 0;
}

static int parse_validator(ycx *c, yaml_node_t *n, dlp_rule *r)
{
    yaml_node_t *name = n;
    if (n->type == YAML_MAPPING_NODE) {
        name = NULL;
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *k = ynode(c, p->key);
            if (k->type == YAML_SCALAR_NODE && !strcmp((const char *)k->data.scalar.value, "name"))
                name = ynode(c, p->value);
        }
        if (!name)
            return YERR(c, n, "validator: missing 'name'");
    }
    const char *s = NULL;
    int rc = yscalar(c, name, "validator", &s);
    if (rc)
        return rc;
    if (!strcmp(s, "luhn"))
        r->validator = VAL_LUHN;
    else if (!strcmp(s, "iban"))
        r->validator = VAL_IBAN;
    else if (!strcmp(s, "us-ssn"))
        r->validator = VAL_US_SSN;
    else if (!strcmp(s, "entropy"))
        r->validator = VAL_ENTROPY;
    else
        return YERR(c, name, "validator: unknown '%s' (luhn, iban, us-ssn, entropy)", s);
    if (n->type == YAML_MAPPING_NODE) {
        static const char *const keys[] = {"name", "min-bits", NULL};
        if ((rc = ymap(c, n, "validator", keys, validator_key, r)))
            return rc;
    }
    if (r->validator == VAL_ENTROPY && r->min_bits <= 0)
        return YERR(c, n, "validator: entropy needs min-bits (e.g. {name: entropy, min-bits: 3.5})");
    return 0;
}

static int context_key(ycx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    (void)k;
    dlp_rule *r = arg;
    if (!strcmp(key, "words")) {
        int rc = ystrlist(c, v, "context.words", &r->ctx_words, &r->nctx);
        if (rc)
            return rc;
        for (size_t i = 0; i < r->nctx; i++)
            if (!r->ctx_words[i][0])
                return YERR(c, v, "context.words: empty word");
        return 0;
    }
    long n;
    int rc = yint(c, v, "context.window", 1, 4096, &n);
    r->ctx_window = (unsigned)n;
    return rc;
}

static int digits_key(ycx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    (void)k;
    dlp_rule *r = arg;
    if (!strcmp(key, "min")) {
        long n;
        int rc = yint(c, v, "digits.min", 1, DLP_DIGITS_MAX_MIN, &n);
        r->digits_min = (unsigned)n;
        return rc;
    }
    if (!strcmp(key, "lead")) {
        long n;
        int rc = yint(c, v, "digits.lead", 1, 2, &n);
        r->digits_lead = (unsigned)n;
        return rc;
    }
    if (!strcmp(key, "groups")) {
        long n;
        int rc = yint(c, v, "digits.groups", 1, DLP_DIGITS_MAX_MIN, &n);
        r->digits_groups = (unsigned)n;
        return rc;
    }
    int rc = ystrdup(c, v, "digits.separators", &r->digits_seps);
    if (rc)
        return rc;
    /* punctuation and white space only: a run of digits then starts right
     * after a letter, which is what `lead` relies on (scan.c) */
    for (const char *s = r->digits_seps; *s; s++)
        if ((*s >= '0' && *s <= '9') || ((*s | 32) >= 'a' && (*s | 32) <= 'z'))
            return YERR(c, v, "digits.separators: '%c' is not punctuation or white space", *s);
    if (strlen(r->digits_seps) > 32)
        return YERR(c, v, "digits.separators: at most 32 bytes");
    return 0;
}

typedef struct rule_parse {
    dlp_rule *r;
    yaml_node_t *pattern_node;
    yaml_node_t *digits_node;
} rule_parse;

static int rule_key(ycx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    (void)k;
    rule_parse *rp = arg;
    dlp_rule *r = rp->r;
    long n;
    if (!strcmp(key, "id")) {
        int rc = ystrdup(c, v, "id", &r->id);
        if (rc)
            return rc;
        const char *s = r->id;
        if (!*s || !((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
            return YERR(c, v, "id: must match [a-z0-9][a-z0-9-]*");
        for (; *s; s++)
            if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
                return YERR(c, v, "id: must match [a-z0-9][a-z0-9-]*");
        return 0;
    }
    if (!strcmp(key, "description"))
        return ystrdup(c, v, "description", &r->description);
    if (!strcmp(key, "pattern")) {
        rp->pattern_node = v;
        r->pat_line = (int)v->start_mark.line + 1;
        /* quoted scalars start one column after their quote */
        r->pat_col = (int)v->start_mark.column + 1 +
                     (v->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                      v->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE);
        return ystrdup(c, v, "pattern", &r->pattern);
    }
    if (!strcmp(key, "caseless"))
        return ybool(c, v, "caseless", &r->caseless);
    if (!strcmp(key, "prefilter"))
        return ystrdup(c, v, "prefilter", &r->prefilter);
    if (!strcmp(key, "digits")) {
        static const char *const keys[] = {"min", "groups", "lead", "separators", NULL};
        rp->digits_node = v;
        int rc = ymap(c, v, "digits", keys, digits_key, r);
        if (!rc && r->digits_min == 0)
            return YERR(c, v, "digits: needs min");
        if (!rc && r->digits_groups > r->digits_min)
            return YERR(c, v, "digits: more groups than digits");
        if (!rc && !r->digits_seps && !(r->digits_seps = strdup("")))
            return -ENOMEM;
        return rc;
    }
    if (!strcmp(key, "max-length")) {
        int rc = yint(c, v, "max-length", 1, DLP_MAX_MAX_LENGTH, &n);
        r->max_length = (unsigned)n;
        return rc;
    }
    if (!strcmp(key, "validator"))
        return parse_validator(c, v, r);
    if (!strcmp(key, "context")) {
        static const char *const keys[] = {"words", "window", NULL};
        r->ctx_window = 40;
        int rc = ymap(c, v, "context", keys, context_key, r);
        if (!rc && r->nctx == 0)
            return YERR(c, v, "context: needs words");
        return rc;
    }
    if (!strcmp(key, "action"))
        return parse_action(c, v, &r->action);
    if (!strcmp(key, "tags"))
        return ystrlist(c, v, "tags", &r->tags, &r->ntags);
    if (!strcmp(key, "allow"))
        return ystrlist(c, v, "allow", &r->allow, &r->nallow);
    if (!strcmp(key, "must-match"))
        return parse_examples(c, v, 1, &r->must_match, &r->nmust_match);
    if (!strcmp(key, "must-not-match"))
        return parse_examples(c, v, 0, &r->must_not, &r->nmust_not);
    return 0;
}

void dlp_rule_free_fields(dlp_rule *r)
{
    free(r->id);
    free(r->description);
    free(r->pattern);
    free(r->prefilter);
    free(r->digits_seps);
    free(r->file);
    strlist_free(r->ctx_words, r->nctx);
    free(r->action.label);
    strlist_free(r->tags, r->ntags);
    strlist_free(r->allow, r->nallow);
    for (size_t i = 0; i < r->nmust_match; i++) {
        free(r->must_match[i].text);
        free(r->must_match[i].spans);
    }
    free(r->must_match);
    for (size_t i = 0; i < r->nmust_not; i++) {
        free(r->must_not[i].text);
        free(r->must_not[i].spans);
    }
    free(r->must_not);
    if (r->re)
        pcre2_code_free(r->re);
}

static int grow_rules(struct dlp_policy *p)
{
    if (p->nrules % 32 == 0) {
        dlp_rule *nr = realloc(p->rules, (p->nrules + 32) * sizeof *nr);
        if (!nr)
            return -ENOMEM;
        p->rules = nr;
    }
    memset(&p->rules[p->nrules], 0, sizeof p->rules[0]);
    return 0;
}

static int parse_rule(ycx *c, yaml_node_t *n, struct dlp_policy *p)
{
    static const char *const keys[] = {"id", "description", "pattern", "prefilter", "digits", "caseless",
                                       "max-length", "validator", "context", "action", "tags", "allow",
                                       "must-match", "must-not-match", NULL};
    int rc = grow_rules(p);
    if (rc)
        return rc;
    dlp_rule *r = &p->rules[p->nrules++];
    action_defaults(&r->action, DLP_ACT_REPLACE);
    r->line = (int)n->start_mark.line + 1;
    if (!(r->file = strdup(c->file)))
        return -ENOMEM;
    rule_parse rp = {r, NULL, NULL};
    if ((rc = ymap(c, n, "rule", keys, rule_key, &rp)))
        return rc;
    if (!r->id)
        return YERR(c, n, "rule: missing 'id'");
    if (!r->pattern)
        return YERR(c, n, "rule %s: missing 'pattern'", r->id);
    if (!r->pattern[0])
        return YERR(c, rp.pattern_node, "rule %s: empty pattern", r->id);
    /* One prefilter per rule: its context words, its own expression, or
     * the digit scan (see scan.c). */
    if (rp.digits_node && (r->prefilter || r->nctx))
        return YERR(c, rp.digits_node, "rule %s: digits cannot be combined with %s", r->id,
                    r->prefilter ? "prefilter" : "context");
    for (size_t i = 0; i + 1 < p->nrules; i++)
        if (!strcmp(p->rules[i].id, r->id))
            return YERR(c, n, "rule %s: id already used at %s:%d", r->id, p->rules[i].file,
                        p->rules[i].line);
    return 0;
}

static int pack_key(ycx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    (void)k;
    struct dlp_policy *p = arg;
    if (!strcmp(key, "pack")) {
        const char *s = NULL;
        return yscalar(c, v, "pack", &s);
    }
    if (!strcmp(key, "version")) {
        long n;
        return yint(c, v, "version", 1, 1, &n);
    }
    if (!strcmp(key, "description")) {
        const char *s = NULL;
        return yscalar(c, v, "description", &s);
    }
    /* rules */
    if (v->type != YAML_SEQUENCE_NODE)
        return YERR(c, v, "rules: expected a list of rules");
    for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
        int rc = parse_rule(c, ynode(c, *i), p);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- documents ---------------------------------------------------------------- */

static int load_doc(ycx *c, const uint8_t *buf, size_t len)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, buf, len);
    int ok = yaml_parser_load(&parser, &c->doc);
    int rc = 0;
    if (!ok) {
        rc = set_err(c->err, c->file, (int)parser.problem_mark.line + 1,
                     (int)parser.problem_mark.column + 1, "YAML: %s%s%s",
                     parser.problem ? parser.problem : "syntax error",
                     parser.context ? " " : "", parser.context ? parser.context : "");
    } else if (!yaml_document_get_root_node(&c->doc)) {
        yaml_document_delete(&c->doc);
        rc = set_err(c->err, c->file, 1, 1, "empty document");
    }
    yaml_parser_delete(&parser);
    return rc;
}

static int read_config(const char *path, dlp_error *err, uint8_t **buf, size_t *len)
{
    int rc = file_read_all(path, MAX_CONFIG_BYTES, buf, len);
    if (rc)
        return set_err(err, path, 0, 0, "%s", rc == -EFBIG ? "file too large" : strerror(-rc)),
               rc == -EFBIG ? -EINVAL : rc;
    return 0;
}

static int hash_feed(sha256_ctx *h, const char *tag, const uint8_t *buf, size_t len)
{
    uint64_t n = len;
    if (sha256_update(h, tag, strlen(tag) + 1) || sha256_update(h, &n, sizeof n) ||
        sha256_update(h, buf, len))
        return -EIO;
    return 0;
}

static int load_pack(const char *path, struct dlp_policy *p, dlp_error *err, sha256_ctx *h)
{
    uint8_t *buf;
    size_t len;
    int rc = read_config(path, err, &buf, &len);
    if (rc)
        return rc;
    ycx c = {.file = path, .err = err};
    if (!(rc = hash_feed(h, "pack", buf, len)) && !(rc = load_doc(&c, buf, len))) {
        yaml_node_t *root = yaml_document_get_root_node(&c.doc);
        static const char *const keys[] = {"pack", "version", "description", "rules", NULL};
        int has_pack = 0;
        if (root->type == YAML_MAPPING_NODE)
            for (yaml_node_pair_t *q = root->data.mapping.pairs.start;
                 q < root->data.mapping.pairs.top; q++) {
                yaml_node_t *k = ynode(&c, q->key);
                has_pack |= k->type == YAML_SCALAR_NODE &&
                            !strcmp((const char *)k->data.scalar.value, "pack");
            }
        if (!has_pack)
            rc = YERR(&c, root, "not a rule pack: missing 'pack:' (a policy has 'policy:')");
        else
            rc = ymap(&c, root, "pack", keys, pack_key, p);
        yaml_document_delete(&c.doc);
    }
    free(buf);
    return rc;
}

/* ---- policies ------------------------------------------------------------------ */

/* dir/name, or name when absolute; 0 or -ENAMETOOLONG. */
static int path_join(char *out, size_t outlen, const char *dir, const char *name)
{
    int n = name[0] == '/' ? snprintf(out, outlen, "%s", name)
                           : snprintf(out, outlen, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

typedef struct policy_parse {
    struct dlp_policy *p;
    sha256_ctx *h;
    char dir[PATH_MAX];
    yaml_node_t *packs, *disable, *actions, *keyfile;
    int has_policy;
} policy_parse;

static int types_key(ycx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    (void)k;
    struct dlp_policy *p = arg;
    if (!strcmp(key, "allow"))
        return ystrlist(c, v, "types.allow", &p->allow_types, &p->nallow_types);
    return ystrlist(c, v, "types.deny", &p->deny_types, &p->ndeny_types);
}

static int limits_key(ycx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    (void)k;
    struct dlp_policy *p = arg;
    if (!strcmp(key, "max-file-size")) {
        const char *s = NULL;
        int rc = yscalar(c, v, "limits.max-file-size", &s);
        if (rc)
            return rc;
        if (parse_size(s, &p->max_size) || p->max_size == 0)
            return YERR(c, v, "limits.max-file-size: expected a size such as 256M");
        return 0;
    }
    long n;
    int rc = yint(c, v, key, 1000, 1000000000L, &n);
    if (!strcmp(key, "match-limit"))
        p->match_limit = (uint32_t)n;
    else
        p->depth_limit = (uint32_t)n;
    return rc;
}

static int documents_key(ycx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    (void)k;
    struct dlp_policy *p = arg;
    const char *s = NULL;
    int rc;
    if (!strcmp(key, "extract"))
        return ystrlist(c, v, "documents.extract", &p->doc_types, &p->ndoc_types);
    if ((rc = yscalar(c, v, key, &s)))
        return rc;
    if (!strcmp(key, "metadata")) {
        if (strcmp(s, "mask") && strcmp(s, "drop"))
            return YERR(c, v, "documents.metadata: expected mask or drop");
        p->docs.drop_metadata = !strcmp(s, "drop");
    } else if (!strcmp(key, "suffix")) {
        if (strlen(s) >= sizeof p->docs.suffix || strchr(s, '/'))
            return YERR(c, v, "documents.suffix: expected a short file-name suffix such as .txt");
        snprintf(p->docs.suffix, sizeof p->docs.suffix, "%s", s);
    } else if (!strcmp(key, "timeout-ms")) {
        long n;
        if ((rc = yint(c, v, key, 100, 600000, &n)))
            return rc;
        p->docs.timeout_ms = (unsigned)n;
    } else {
        uint64_t *dst = !strcmp(key, "max-output") ? &p->docs.max_output
                      : !strcmp(key, "max-expanded") ? &p->docs.max_expanded
                                                     : &p->docs.max_memory;
        if (parse_size(s, dst) || *dst == 0)
            return YERR(c, v, "documents.%s: expected a size such as 64M", key);
    }
    return 0;
}

static int policy_key(ycx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    (void)k;
    policy_parse *pp = arg;
    const char *s = NULL;
    long n;
    if (!strcmp(key, "policy")) {
        pp->has_policy = 1;
        return yscalar(c, v, "policy", &s);
    }
    if (!strcmp(key, "version"))
        return yint(c, v, "version", 1, 1, &n);
    if (!strcmp(key, "description"))
        return yscalar(c, v, "description", &s);
    if (!strcmp(key, "packs"))
        pp->packs = v;
    else if (!strcmp(key, "disable"))
        pp->disable = v;
    else if (!strcmp(key, "actions"))
        pp->actions = v;
    else if (!strcmp(key, "key-file"))
        pp->keyfile = v;
    else if (!strcmp(key, "types")) {
        static const char *const keys[] = {"allow", "deny", NULL};
        return ymap(c, v, "types", keys, types_key, pp->p);
    } else if (!strcmp(key, "documents")) {
        static const char *const keys[] = {"extract", "metadata", "suffix", "timeout-ms",
                                           "max-output", "max-expanded", "max-memory", NULL};
        return ymap(c, v, "documents", keys, documents_key, pp->p);
    } else if (!strcmp(key, "limits")) {
        static const char *const keys[] = {"max-file-size", "match-limit", "depth-limit", NULL};
        return ymap(c, v, "limits", keys, limits_key, pp->p);
    }
    return 0;
}

static dlp_rule *find_rule(struct dlp_policy *p, const char *id)
{
    for (size_t i = 0; i < p->nrules; i++)
        if (!strcmp(p->rules[i].id, id))
            return &p->rules[i];
    return NULL;
}

typedef struct override_ctx {
    struct dlp_policy *p;
    int by_rule;
} override_ctx;

static int override_key(ycx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    override_ctx *oc = arg;
    struct dlp_policy *p = oc->p;
    dlp_action_spec a;
    memset(&a, 0, sizeof a);
    int rc = parse_action(c, v, &a);
    if (rc) {
        free(a.label);
        return rc;
    }
    int used = 0;
    for (size_t i = 0; i < p->nrules; i++) {
        dlp_rule *r = &p->rules[i];
        int hit = 0;
        if (oc->by_rule)
            hit = !strcmp(r->id, key);
        else
            for (size_t t = 0; t < r->ntags && !hit; t++)
                hit = !strcmp(r->tags[t], key);
        if (!hit)
            continue;
        used = 1;
        /* A rule override beats a tag override: tags are applied first. */
        free(r->action.label);
        r->action = a;
        if (a.label && !(r->action.label = strdup(a.label))) {
            free(a.label);
            return -ENOMEM;
        }
    }
    free(a.label);
    if (!used && oc->by_rule)
        return YERR(c, k, "actions.rules: no rule '%s' in the loaded packs", key);
    if (!used)
        return YERR(c, k, "actions.tags: no rule carries tag '%s'", key);
    return 0;
}

static int actions_key(ycx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    (void)k;
    (void)key;
    (void)c;
    (void)v;
    (void)arg;
    return 0;
}

static int apply_actions(ycx *c, yaml_node_t *n, struct dlp_policy *p)
{
    static const char *const keys[] = {"tags", "rules", NULL};
    int rc = ymap(c, n, "actions", keys, actions_key, NULL);
    if (rc)
        return rc;
    /* tags first, then rules, whatever their order in the file */
    for (int pass = 0; pass < 2; pass++)
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < n->data.mapping.pairs.top; q++) {
            const char *key = (const char *)ynode(c, q->key)->data.scalar.value;
            if (strcmp(key, pass ? "rules" : "tags"))
                continue;
            override_ctx oc = {p, pass};
            if ((rc = ymap(c, ynode(c, q->value), pass ? "actions.rules" : "actions.tags", NULL,
                           override_key, &oc)))
                return rc;
        }
    return 0;
}

static int load_key(ycx *c, yaml_node_t *n, policy_parse *pp)
{
    struct dlp_policy *p = pp->p;
    const char *env = getenv("SLUICE_KEY_FILE");
    const char *path = NULL;
    char full[PATH_MAX];
    if (env && *env) {
        path = env;
    } else if (n) {
        int rc = yscalar(c, n, "key-file", &path);
        if (rc)
            return rc;
        if (path_join(full, sizeof full, pp->dir, path))
            return YERR(c, n, "key-file: path too long");
        path = full;
    }
    int needed = 0;
    for (size_t i = 0; i < p->nrules; i++)
        needed |= p->rules[i].action.type == DLP_ACT_HASH;
    if (!path) {
        if (needed)
            return set_err(c->err, c->file, 0, 0,
                           "a rule uses the hash action but the policy names no key-file");
        return 0;
    }
    char why[256];
    int rc = key_load(path, p->key, &p->keylen, why, sizeof why);
    if (rc) {
        if (!needed)
            return 0; /* a key nobody uses need not exist */
        if (n && !(env && *env))
            return YERR(c, n, "key-file: %s: %s", path, why);
        return set_err(c->err, c->file, 0, 0, "key file %s (from SLUICE_KEY_FILE): %s", path, why);
    }
    /* The key shapes the output (hash pseudonyms): fold a fingerprint of it,
     * never the key itself, into the policy hash. */
    uint8_t fp[SHA256_LEN];
    if (hmac_sha256(p->key, p->keylen, "sluice-key-id", 13, fp) || hash_feed(pp->h, "key", fp, sizeof fp))
        return -EIO;
    return 0;
}

int dlp_config_load(const char *path, int is_pack_only, struct dlp_policy *p, dlp_error *err)
{
    sha256_ctx *h = sha256_new();
    if (!h)
        return -ENOMEM;
    int rc;
    p->max_size = 256ull << 20;
    p->match_limit = 1000000;
    p->depth_limit = 10000;
    p->docs = (dlp_documents){.drop_metadata = 0,
                              .max_output = 64ull << 20,
                              .max_expanded = 512ull << 20,
                              .max_memory = 1ull << 30,
                              .timeout_ms = 20000,
                              .suffix = ".txt"};
    if (is_pack_only) {
        p->all_types = 1;
        rc = load_pack(path, p, err, h);
        /* A bare pack gets a random key so that hash actions can be tested. */
        if (!rc) {
            FILE *f = fopen("/dev/urandom", "rb");
            p->keylen = 32;
            if (!f || fread(p->key, 1, 32, f) != 32)
                rc = set_err(err, path, 0, 0, "cannot read /dev/urandom");
            if (f)
                fclose(f);
        }
        goto out;
    }
    uint8_t *buf;
    size_t len;
    if ((rc = read_config(path, err, &buf, &len)))
        goto out;
    ycx c = {.file = path, .err = err};
    if ((rc = hash_feed(h, "policy", buf, len)) || (rc = load_doc(&c, buf, len))) {
        free(buf);
        goto out;
    }
    policy_parse pp = {.p = p, .h = h};
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    snprintf(pp.dir, sizeof pp.dir, "%s", dirname(tmp)); /* dirname may write into tmp */
    yaml_node_t *root = yaml_document_get_root_node(&c.doc);
    static const char *const keys[] = {"policy", "version", "description", "packs", "disable",
                                       "types", "actions", "key-file", "limits", "documents", NULL};
    rc = ymap(&c, root, "policy", keys, policy_key, &pp);
    if (!rc && !pp.has_policy)
        rc = YERR(&c, root, "not a policy: missing 'policy:' (a rule pack has 'pack:')");
    if (!rc && !pp.packs)
        rc = YERR(&c, root, "policy: missing 'packs'");
    if (!rc && !p->nallow_types)
        rc = YERR(&c, root, "policy: missing 'types.allow' (nothing could be served)");
    char **packs = NULL;
    size_t npacks = 0;
    if (!rc)
        rc = ystrlist(&c, pp.packs, "packs", &packs, &npacks);
    for (size_t i = 0; !rc && i < npacks; i++) {
        char full[PATH_MAX];
        rc = path_join(full, sizeof full, pp.dir, packs[i]);
        if (rc)
            rc = YERR(&c, pp.packs, "packs: path too long");
        else if ((rc = load_pack(full, p, err, h)) && err->line == 0) {
            /* The pack could not be read at all: say where the policy names it. */
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            rc = YERR(&c, pp.packs, "packs: %s: %s", packs[i], why);
        }
    }
    strlist_free(packs, npacks);
    if (!rc && pp.disable) {
        char **ids = NULL;
        size_t nids = 0;
        rc = ystrlist(&c, pp.disable, "disable", &ids, &nids);
        for (size_t i = 0; !rc && i < nids; i++) {
            dlp_rule *r = find_rule(p, ids[i]);
            if (!r) {
                rc = YERR(&c, pp.disable, "disable: no rule '%s' in the loaded packs", ids[i]);
                break;
            }
            dlp_rule_free_fields(r);
            memmove(r, r + 1, (size_t)(p->rules + p->nrules - (r + 1)) * sizeof *r);
            p->nrules--;
        }
        strlist_free(ids, nids);
    }
    if (!rc && pp.actions)
        rc = apply_actions(&c, pp.actions, p);
    p->docs.enabled = p->ndoc_types > 0;
    if (!rc)
        rc = load_key(&c, pp.keyfile, &pp);
    yaml_document_delete(&c.doc);
    free(buf);
out:
    if (rc) {
        sha256_free(h);
        return rc;
    }
    uint8_t d[SHA256_LEN];
    if (sha256_final(h, d))
        return -EIO;
    hex_encode(d, sizeof d, p->hash);
    return 0;
}

/* ---- the files a policy reads ------------------------------------------------------ */

static int files_add(char ***v, size_t *n, const char *dir, const char *name)
{
    char full[PATH_MAX];
    if (path_join(full, sizeof full, dir, name))
        return -ENAMETOOLONG;
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return -ENOMEM;
    *v = nv;
    if (!(nv[*n] = strdup(full)))
        return -ENOMEM;
    (*n)++;
    return 0;
}

static int files_key(ycx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
    (void)c;
    (void)k;
    policy_parse *pp = arg;
    if (!strcmp(key, "packs"))
        pp->packs = v;
    else if (!strcmp(key, "key-file"))
        pp->keyfile = v;
    return 0;
}

int dlp_policy_files_list(const char *path, dlp_policy_files *out, dlp_error *err)
{
    memset(out, 0, sizeof *out);
    uint8_t *buf;
    size_t len;
    int rc = read_config(path, err, &buf, &len);
    if (rc)
        return rc;
    ycx c = {.file = path, .err = err};
    rc = load_doc(&c, buf, len);
    free(buf);
    if (rc)
        return rc;
    policy_parse pp = {0};
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    snprintf(pp.dir, sizeof pp.dir, "%s", dirname(tmp)); /* as dlp_config_load() */
    rc = ymap(&c, yaml_document_get_root_node(&c.doc), "policy", NULL, files_key, &pp);
    if (!rc)
        rc = files_add(&out->files, &out->nfiles, ".", path);
    char **packs = NULL;
    size_t npacks = 0;
    if (!rc && pp.packs)
        rc = ystrlist(&c, pp.packs, "packs", &packs, &npacks);
    for (size_t i = 0; !rc && i < npacks; i++)
        rc = files_add(&out->files, &out->nfiles, pp.dir, packs[i]);
    strlist_free(packs, npacks);
    /* the key file as load_key() picks it */
    const char *env = getenv("SLUICE_KEY_FILE");
    const char *kf = NULL;
    char **kv = NULL;
    size_t kn = 0;
    if (!rc && env && *env)
        rc = files_add(&kv, &kn, ".", env);
    else if (!rc && pp.keyfile && !(rc = yscalar(&c, pp.keyfile, "key-file", &kf)))
        rc = files_add(&kv, &kn, pp.dir, kf);
    out->key = kn ? kv[0] : NULL;
    free(kv);
    yaml_document_delete(&c.doc);
    if (rc)
        dlp_policy_files_free(out);
    return rc == -ENAMETOOLONG ? set_err(err, path, 0, 0, "a path it names is too long") : rc;
}

void dlp_policy_files_free(dlp_policy_files *f)
{
    strlist_free(f->files, f->nfiles);
    free(f->key);
    memset(f, 0, sizeof *f);
}

void dlp_error_format(const dlp_error *e, char *out, size_t outlen)
{
    if (e->line > 0)
        snprintf(out, outlen, "%s:%d:%d: %s", e->file, e->line, e->col, e->msg);
    else
        snprintf(out, outlen, "%s: %s", e->file, e->msg);
}
