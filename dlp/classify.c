/* dlp/classify.c — what is this content, and may it be served?
 *
 * libmagic names the MIME type and encoding; the policy's deny globs win over
 * its allow globs; anything matched by neither is denied. A magic_t is not
 * thread-safe, so each thread gets its own, opened on first use. UTF-16 text
 * without a BOM is recognised here (libmagic calls it binary data) so that
 * it is scanned, not refused or waved through. */
#include "dlp/dlp_i.h"

#include "extract/extract.h"

#include <errno.h>
#include <fnmatch.h>
#include <iconv.h>
#include <magic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC_LOOK (1u << 20) /* libmagic looks at this much at most */

static pthread_key_t magic_key;
static pthread_once_t magic_once = PTHREAD_ONCE_INIT;

static void magic_destroy(void *m) { magic_close(m); }
static void magic_key_init(void) { pthread_key_create(&magic_key, magic_destroy); }

static magic_t thread_magic(void)
{
    pthread_once(&magic_once, magic_key_init);
    magic_t m = pthread_getspecific(magic_key);
    if (m)
        return m;
    /* No decompression: a compressed file is an archive to the policy.
     * No other test group is skipped, though most of the cost is there: on
     * a 4 KiB text file (libmagic 5.44) a call costs 1.4-2 ms, nearly all in
     * the magic database (with MAGIC_NO_CHECK_SOFT, 17 us), about a third
     * of it running its text set's regular expressions (compiled once per
     * handle, not per call), the rest in its own string searches (case-
     * insensitive ones compare byte by byte) and in walking its entries
     * (the whole database, once for binary tests, once for text). Skipping them changes decisions: MAGIC_NO_CHECK_SOFT turns
     * armoured PGP, e-mail, HTML and RTF into text/plain (a denied type
     * served, documents not extracted); MAGIC_NO_CHECK_ENCODING does so for
     * e-mail, HTML and CSV; MAGIC_NO_CHECK_TEXT makes all text
     * octet-stream. The other groups (CSV, JSON, tar, CDF, ELF, tokens) cost
     * nothing measurable. */
    m = magic_open(MAGIC_MIME | MAGIC_ERROR | MAGIC_NO_CHECK_COMPRESS);
    if (!m)
        return NULL;
    if (magic_load(m, NULL) != 0) {
        magic_close(m);
        return NULL;
    }
    size_t look = MAGIC_LOOK;
    magic_setparam(m, MAGIC_PARAM_BYTES_MAX, &look);
    pthread_setspecific(magic_key, m);
    return m;
}

/* 1 = UTF-16LE, 2 = UTF-16BE, 0 = neither. A BOM decides; without one,
 * text in UTF-16 has NULs in nearly every other byte and almost none in the
 * others. */
int dlp_utf16_kind(const uint8_t *b, size_t len)
{
    if (len >= 2 && b[0] == 0xFF && b[1] == 0xFE)
        return 1;
    if (len >= 2 && b[0] == 0xFE && b[1] == 0xFF)
        return 2;
    size_t n = len < 8192 ? len & ~(size_t)1 : 8192;
    if (n < 8)
        return 0;
    size_t z_even = 0, z_odd = 0;
    for (size_t i = 0; i < n; i += 2) {
        z_even += b[i] == 0;
        z_odd += b[i + 1] == 0;
    }
    size_t units = n / 2;
    if (z_odd * 10 >= units * 7 && z_even * 50 <= units)
        return 1;
    if (z_even * 10 >= units * 7 && z_odd * 50 <= units)
        return 2;
    return 0;
}

/* Transcode between UTF-16 (kind 1 LE, 2 BE) and UTF-8 with iconv.
 * Invalid input (a lone surrogate, a cut code unit) is an error: the caller
 * denies rather than guess. `partial_ok` allows a cut at the end. */
int dlp_utf16_convert(int kind, int to_utf8, const uint8_t *in, size_t len, int partial_ok,
                      uint8_t **out, size_t *outlen)
{
    const char *u16 = kind == 1 ? "UTF-16LE" : "UTF-16BE";
    iconv_t cd = to_utf8 ? iconv_open("UTF-8", u16) : iconv_open(u16, "UTF-8");
    if (cd == (iconv_t)-1)
        return -errno;
    size_t cap = len * 2 + 16;
    uint8_t *o = malloc(cap);
    if (!o) {
        iconv_close(cd);
        return -ENOMEM;
    }
    char *ip = (char *)in, *op = (char *)o;
    size_t il = len, ol = cap;
    int rc = 0;
    while (il > 0) {
        if (iconv(cd, &ip, &il, &op, &ol) != (size_t)-1)
            continue;
        if (errno == E2BIG) {
            size_t used = (size_t)(op - (char *)o);
            cap *= 2;
            uint8_t *n = realloc(o, cap);
            if (!n) {
                rc = -ENOMEM;
                break;
            }
            o = n;
            op = (char *)o + used;
            ol = cap - used;
        } else if (errno == EINVAL && partial_ok) {
            break;
        } else {
            rc = -EILSEQ;
            break;
        }
    }
    iconv_close(cd);
    if (rc) {
        free(o);
        return rc;
    }
    *out = o;
    *outlen = (size_t)(op - (char *)o);
    return 0;
}

int dlp_policy_extracts(const dlp_policy *p, const char *mime, const void *head, size_t len)
{
    for (size_t i = 0; i < p->ndoc_types; i++)
        if (fnmatch(p->doc_types[i], mime, 0) == 0)
            return extract_handles(mime, head, len);
    return 0;
}

int dlp_type_allowed(const struct dlp_policy *p, const char *mime, char *reason, size_t rlen)
{
    if (p->all_types)
        return 1;
    for (size_t i = 0; i < p->ndeny_types; i++)
        if (fnmatch(p->deny_types[i], mime, 0) == 0) {
            snprintf(reason, rlen, "type %s denied by policy (%s)", mime, p->deny_types[i]);
            return 0;
        }
    for (size_t i = 0; i < p->nallow_types; i++)
        if (fnmatch(p->allow_types[i], mime, 0) == 0)
            return 1;
    snprintf(reason, rlen, "type %s not in the policy's allowlist", mime);
    return 0;
}

int dlp_classify(const dlp_policy *p, const void *buf, size_t len, dlp_type *out)
{
    memset(out, 0, sizeof *out);
    if (len == 0) {
        /* Nothing to show, nothing to leak. */
        snprintf(out->mime, sizeof out->mime, "application/x-empty");
        snprintf(out->encoding, sizeof out->encoding, "binary");
        out->allowed = 1;
        return 0;
    }
    if (len > MAGIC_LOOK)
        len = MAGIC_LOOK;
    magic_t m = thread_magic();
    if (!m) {
        snprintf(out->reason, sizeof out->reason, "libmagic could not be loaded");
        return -EIO;
    }
    int kind = dlp_utf16_kind(buf, len);
    const char *res;
    uint8_t *u8 = NULL;
    if (kind) {
        size_t u8len;
        int rc = dlp_utf16_convert(kind, 1, buf, len & ~(size_t)1, 1, &u8, &u8len);
        if (rc) {
            snprintf(out->reason, sizeof out->reason, "invalid UTF-16 text");
            return rc;
        }
        res = magic_buffer(m, u8, u8len);
    } else {
        res = magic_buffer(m, buf, len);
    }
    if (!res) {
        free(u8);
        snprintf(out->reason, sizeof out->reason, "libmagic: %s",
                 magic_error(m) ? magic_error(m) : "unknown error");
        return -EIO;
    }
    /* "type/subtype; charset=enc" */
    const char *semi = strchr(res, ';');
    size_t tl = semi ? (size_t)(semi - res) : strlen(res);
    snprintf(out->mime, sizeof out->mime, "%.*s", (int)tl, res);
    const char *cs = semi ? strstr(semi, "charset=") : NULL;
    snprintf(out->encoding, sizeof out->encoding, "%s", cs ? cs + 8 : "binary");
    free(u8);
    if (kind)
        snprintf(out->encoding, sizeof out->encoding, "%s", kind == 1 ? "utf-16le" : "utf-16be");
    /* A document the policy extracts is served as its text: allowed as such,
     * whatever types.allow says of its container's bytes (which are never
     * served). types.deny still wins. */
    out->document = !kind && dlp_policy_extracts(p, out->mime, buf, len);
    out->allowed = dlp_type_allowed(p, out->mime, out->reason, sizeof out->reason);
    if (out->document && !out->allowed && !strstr(out->reason, "denied by policy")) {
        out->allowed = 1;
        out->reason[0] = '\0';
    }
    if (!out->allowed)
        out->document = 0;
    return 0;
}
