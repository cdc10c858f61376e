/* dlp/policy.c — a policy's life (load, compile, free) and dlp_sanitize(),
 * the whole-buffer path: classify, decode, stream-scan, re-encode.
 * dlp_sanitize never returns 0 without a complete, checked view. */
#include "dlp/dlp_i.h"
#include "extract/extract.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dlp_utf16_kind(const uint8_t *b, size_t len);
int dlp_utf16_convert(int kind, int to_utf8, const uint8_t *in, size_t len, int partial_ok,
                      uint8_t **out, size_t *outlen);

static int load(const char *path, int pack_only, dlp_policy **out, dlp_error *err)
{
    memset(err, 0, sizeof *err);
    dlp_policy *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    if (!(p->path = strdup(path))) {
        free(p);
        return -ENOMEM;
    }
    int rc = dlp_config_load(path, pack_only, p, err);
    if (!rc)
        rc = dlp_compile(p, err);
    if (rc) {
        if (!err->msg[0]) {
            snprintf(err->file, sizeof err->file, "%s", path);
            snprintf(err->msg, sizeof err->msg, "%s", strerror(-rc));
        }
        dlp_policy_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int dlp_policy_load(const char *path, dlp_policy **out, dlp_error *err)
{
    return load(path, 0, out, err);
}

int dlp_pack_load(const char *path, dlp_policy **out, dlp_error *err)
{
    return load(path, 1, out, err);
}

void dlp_policy_free(dlp_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nrules; i++)
        dlp_rule_free_fields(&p->rules[i]);
    free(p->rules);
    for (size_t i = 0; i < p->nallow_types; i++)
        free(p->allow_types[i]);
    free(p->allow_types);
    for (size_t i = 0; i < p->ndeny_types; i++)
        free(p->deny_types[i]);
    free(p->deny_types);
    for (size_t i = 0; i < p->ndoc_types; i++)
        free(p->doc_types[i]);
    free(p->doc_types);
    if (p->hs_proto)
        hs_free_scratch(p->hs_proto);
    if (p->hs)
        hs_free_database(p->hs);
    if (p->mctx)
        pcre2_match_context_free(p->mctx);
    free(p->ctx_rule);
    free(p->ctx_len);
    free(p->digit_rule);
    memset(p->key, 0, sizeof p->key);
    free(p->path);
    free(p);
}

const char *dlp_policy_hash(const dlp_policy *p) { return p->hash; }
const dlp_documents *dlp_policy_documents(const dlp_policy *p) { return &p->docs; }
const char *dlp_policy_path(const dlp_policy *p) { return p->path; }
uint64_t dlp_policy_max_size(const dlp_policy *p) { return p->max_size; }
size_t dlp_policy_rule_count(const dlp_policy *p) { return p->nrules; }
int dlp_policy_rule_prefiltered(const dlp_policy *p, size_t i)
{
    return i < p->nrules && p->rules[i].prefiltered;
}

int dlp_policy_rule_unbounded(const dlp_policy *p, size_t i)
{
    if (i >= p->nrules || p->rules[i].max_length)
        return 0;
    hs_expr_info_t *info = NULL;
    hs_compile_error_t *ce = NULL;
    int unbounded = 1;
    if (hs_expression_info(p->rules[i].pattern,
                           (p->rules[i].caseless ? HS_FLAG_CASELESS : 0) | HS_FLAG_PREFILTER, &info,
                           &ce) == HS_SUCCESS) {
        unbounded = info->max_width == UINT_MAX || info->max_width > DLP_MAX_MAX_LENGTH;
        free(info);
    } else {
        hs_free_compile_error(ce);
    }
    return unbounded;
}

const char *dlp_policy_rule_id(const dlp_policy *p, size_t i)
{
    return i < p->nrules ? p->rules[i].id : NULL;
}

/* ---- dlp_sanitize ------------------------------------------------------------ */

typedef struct collect {
    dlp_buf out;
    dlp_finding *f;
    size_t nf, capf;
} collect;

static int collect_out(void *ctx, const void *buf, size_t len)
{
    return dlp_buf_put(&((collect *)ctx)->out, buf, len);
}

static int collect_finding(void *ctx, const dlp_finding *f)
{
    collect *c = ctx;
    if (c->nf == c->capf) {
        size_t nc = c->capf ? c->capf * 2 : 64;
        dlp_finding *n = realloc(c->f, nc * sizeof *n);
        if (!n)
            return -ENOMEM;
        c->f = n;
        c->capf = nc;
    }
    c->f[c->nf++] = *f;
    return 0;
}

int dlp_sanitize(const dlp_policy *p, const void *buf, size_t len, dlp_result *out)
{
    memset(out, 0, sizeof *out);
    if (len > p->max_size) {
        snprintf(out->reason, sizeof out->reason, "larger than the policy's limit of %llu bytes",
                 (unsigned long long)p->max_size);
        return -EFBIG;
    }
    int rc = dlp_classify(p, buf, len, &out->type);
    if (rc) {
        snprintf(out->reason, sizeof out->reason, "%s", out->type.reason);
        return rc;
    }
    if (!out->type.allowed) {
        snprintf(out->reason, sizeof out->reason, "%s", out->type.reason);
        return -EACCES;
    }
    int kind = strncmp(out->type.encoding, "utf-16", 6) ? 0 : (out->type.encoding[6] == 'l' ? 1 : 2);
    /* libmagic looks at the first MiB only: what follows must be text too.
     * A NUL byte past the start of a file classified as 8-bit text (a gzip
     * stream, UTF-16 appended to ASCII...) is not, and is refused. */
    if (!kind && !out->type.document && strcmp(out->type.encoding, "binary") != 0 &&
        memchr(buf, 0, len)) {
        snprintf(out->reason, sizeof out->reason,
                 "binary data (NUL bytes) inside a file classified as %s text", out->type.encoding);
        return -EILSEQ;
    }
    const uint8_t *text = buf;
    size_t tlen = len;
    uint8_t *decoded = NULL;
    if (out->type.document) {
        /* The document's text, never its bytes, is what gets scanned and
         * served; any extraction failure refuses the file. */
        extract_options xo = {.drop_metadata = p->docs.drop_metadata,
                              .max_output = p->docs.max_output,
                              .max_expanded = p->docs.max_expanded,
                              .timeout_ms = p->docs.timeout_ms,
                              .max_memory = p->docs.max_memory};
        extract_result xr;
        rc = extract_text(buf, len, out->type.mime, &xo, &xr);
        snprintf(out->extractor, sizeof out->extractor, "%s", xr.extractor);
        if (rc) {
            snprintf(out->reason, sizeof out->reason, "document not extracted: %.130s",
                     xr.reason[0] ? xr.reason : strerror(-rc));
            extract_result_free(&xr);
            return rc == -EACCES ? -EPERM : (rc < 0 ? rc : -EIO);
        }
        decoded = (uint8_t *)xr.text; /* ownership moves to `decoded` */
        xr.text = NULL;
        text = decoded;
        tlen = xr.len;
        extract_result_free(&xr);
    } else if (kind) {
        if ((rc = dlp_utf16_convert(kind, 1, buf, len, 0, &decoded, &tlen))) {
            snprintf(out->reason, sizeof out->reason, "invalid UTF-16 text");
            return rc;
        }
        text = decoded;
    }
    /* The view is about as long as the text (labels may lengthen it a
     * little): reserve it once rather than growing it by realloc, and scan
     * the text where it lies rather than copying it into the stream. */
    collect c = {0};
    dlp_stream *s = NULL;
    size_t guess = tlen + tlen / 8 + 4096;
    if (!(c.out.data = malloc(guess))) {
        free(decoded);
        return -ENOMEM;
    }
    c.out.cap = guess;
    if (!(rc = dlp_stream_new(p, collect_out, collect_finding, &c, &s)) &&
        !(rc = dlp_stream_reserve(s, (tlen < (16u << 20) ? tlen : (16u << 20)) + tlen / 8 + 4096)))
        rc = dlp_stream_scan_whole(s, text, tlen);
    if (rc && s && dlp_stream_error(s))
        snprintf(out->reason, sizeof out->reason, "%s", dlp_stream_error(s));
    else if (rc)
        snprintf(out->reason, sizeof out->reason, "%s", strerror(-rc));
    if (!rc) {
        size_t nh;
        const dlp_rule_hits *h = dlp_stream_hits(s, &nh);
        if (nh && !(out->hits = malloc(nh * sizeof *h)))
            rc = -ENOMEM;
        else {
            if (nh)
                memcpy(out->hits, h, nh * sizeof *h);
            out->nhits = nh;
        }
    }
    dlp_stream_free(s);
    free(decoded);
    if (!rc && kind) {
        /* A UTF-16 view re-encodes to the original bytes wherever nothing was
         * masked, so bytes that are not really UTF-16 (ASCII after a BOM,
         * ASCII appended to UTF-16) would pass through unseen: scan the raw
         * bytes as well, and refuse the file if they hold any finding. */
        collect raw = {0};
        dlp_stream *rs = NULL;
        int rrc = dlp_stream_new(p, collect_out, collect_finding, &raw, &rs);
        if (!rrc)
            rrc = dlp_stream_scan_whole(rs, buf, len);
        dlp_stream_free(rs);
        free(raw.out.data);
        free(raw.f);
        if (rrc || raw.nf) {
            rc = rrc ? rrc : -EILSEQ;
            snprintf(out->reason, sizeof out->reason, "%s",
                     rrc ? "could not check the raw bytes of a UTF-16 file"
                         : "text in another encoding inside a UTF-16 file");
        }
    }
    if (!rc && kind) {
        uint8_t *enc;
        size_t elen;
        if ((rc = dlp_utf16_convert(kind, 0, c.out.data ? c.out.data : (uint8_t *)"", c.out.len, 0,
                                    &enc, &elen)) == 0) {
            free(c.out.data);
            c.out.data = enc;
            c.out.len = elen;
        } else {
            snprintf(out->reason, sizeof out->reason, "could not re-encode the view as UTF-16");
        }
    }
    if (rc) {
        free(c.out.data);
        free(c.f);
        free(out->hits);
        out->hits = NULL;
        out->nhits = 0;
        return rc < 0 ? rc : -EIO;
    }
    out->data = c.out.data ? c.out.data : malloc(1);
    if (!out->data) {
        free(c.f);
        return -ENOMEM;
    }
    out->len = c.out.len;
    out->findings = c.f;
    out->nfindings = c.nf;
    return 0;
}

void dlp_result_free(dlp_result *r)
{
    free(r->data);
    free(r->findings);
    free(r->hits);
    memset(r, 0, sizeof *r);
}
