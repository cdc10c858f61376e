/* extract/core.c — the in-process side of extraction: the bounded text
 * buffer every extractor writes to, dispatch by MIME type, and the final
 * clean-up to valid UTF-8. Runs only inside the sluice-extract helper (or the
 * fuzz target); it must never be linked into sluicefs or the diode.
 */
#include "extract/extract_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int xfail(xctx *x, int err, const char *fmt, ...)
{
    if (x->err == 0) {
        x->err = err;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(x->reason, sizeof x->reason, fmt, ap);
        va_end(ap);
    }
    return x->err;
}

void xset_extractor(xctx *x, const char *name)
{
    /* An attachment's extractor must not rename the outer document's. */
    if (x->depth == 0)
        snprintf(x->extractor, sizeof x->extractor, "%s", name);
}

int xput(xctx *x, const char *s, size_t n)
{
    if (x->err)
        return x->err;
    if (n == 0)
        return 0;
    if (n > x->opt->max_output || x->len > x->opt->max_output - n)
        return xfail(x, -EFBIG, "extracted text exceeds the output limit (%llu bytes)",
                     (unsigned long long)x->opt->max_output);
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < x->len + n + 1)
            cap *= 2;
        char *p = realloc(x->text, cap);
        if (!p)
            return xfail(x, -ENOMEM, "out of memory");
        x->text = p;
        x->cap = cap;
    }
    memcpy(x->text + x->len, s, n);
    x->len += n;
    x->text[x->len] = '\0';
    return 0;
}

int xputs(xctx *x, const char *s)
{
    return xput(x, s, strlen(s));
}

int xnewline(xctx *x)
{
    if (x->len == 0 || x->text[x->len - 1] == '\n')
        return x->err;
    return xput(x, "\n", 1);
}

static int mime_is(const char *mime, const char *what)
{
    size_t n = strlen(what);
    /* libmagic may append parameters ("text/html; charset=utf-8"). */
    return strncasecmp(mime, what, n) == 0 && (mime[n] == '\0' || mime[n] == ';');
}

int extract_run(xctx *x, const void *buf, size_t len, const char *mime)
{
    if (!mime)
        mime = "application/octet-stream";
    if (mime_is(mime, "application/pdf") || mime_is(mime, "application/x-pdf"))
        return extract_pdf(x, buf, len);
    if (mime_is(mime, "text/rtf") || mime_is(mime, "application/rtf"))
        return extract_rtf(x, buf, len);
    if (mime_is(mime, "text/html") || mime_is(mime, "application/xhtml+xml"))
        return extract_html(x, buf, len);
    if (mime_is(mime, "message/rfc822"))
        return extract_eml(x, buf, len);
    if (strncasecmp(mime, "application/vnd.openxmlformats-officedocument.", 46) == 0 ||
        strncasecmp(mime, "application/vnd.oasis.opendocument.", 35) == 0 ||
        mime_is(mime, "application/zip") || mime_is(mime, "application/x-zip-compressed") ||
        mime_is(mime, "application/octet-stream")) {
        if (len < 4 || memcmp(buf, "PK\003\004", 4) != 0)
            return xfail(x, -EINVAL, "not a zip container (type %.60s)", mime);
        return extract_zipdoc(x, buf, len);
    }
    return xfail(x, -EINVAL, "not a document type that can be extracted: %.100s", mime);
}

/* Length of the valid UTF-8 sequence at p (max n bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t need;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        need = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 4, min = 0x10000;
    else
        return 0;
    if (n < need)
        return 0;
    unsigned cp = c & (0xFF >> (need + 1));
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return need;
}

void extract_clean_utf8(xctx *x)
{
    /* In place, never longer: an invalid byte becomes '?', a control
     * character a space, CR LF and lone CR a newline. The DLP engine then
     * sees plain text whatever a parser let through. */
    unsigned char *p = (unsigned char *)x->text;
    size_t r = 0, w = 0, n = x->len;
    while (r < n) {
        size_t k = utf8_seq(p + r, n - r);
        if (k == 0) {
            p[w++] = '?';
            r++;
        } else if (k == 1) {
            unsigned char c = p[r++];
            if (c == '\r') {
                if (r < n && p[r] == '\n')
                    r++;
                c = '\n';
            } else if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7F)
                c = ' ';
            p[w++] = c;
        } else {
            memmove(p + w, p + r, k);
            w += k;
            r += k;
        }
    }
    x->len = w;
    if (x->text)
        x->text[w] = '\0';
}
