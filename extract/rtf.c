/* extract/rtf.c — RTF to text: a bounded tokenizer (groups, control words,
 * control symbols, \'hh bytes in the document's code page, \uN with its
 * \ucN fallback, \bin skipping) with a fixed-size group stack.
 *
 * Why our own: Debian has no maintained RTF-reading library. Checked:
 * unrtf (a program, no library, and its own history of memory-safety bugs),
 * librtf-document-perl and libitext-rtf-java (writers only), AbiWord and
 * LibreOffice (import filters inside whole office suites). This one only
 * walks bytes forward, never recurses, never allocates per group.
 *
 * Never interprets pictures, objects or field results as anything but bytes
 * to skip; metadata (\info, annotations, revision authors, field
 * instructions, tracked deletions) is extracted or dropped per drop_metadata.
 */
#include "extract/extract_i.h"

#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RTF_MAX_DEPTH 512

typedef struct rtfstate {
    unsigned skip : 1;    /* destination dropped whatever the options */
    unsigned meta : 1;    /* metadata destination */
    unsigned deleted : 1; /* tracked deletion (\deleted) */
    unsigned fresh : 1;   /* no control word yet in this group */
    unsigned labeled : 1; /* a metadata label was written: end the line with the group */
    int uc;               /* fallback characters after \uN */
} rtfstate;

typedef struct rtf {
    xctx *x;
    rtfstate st[RTF_MAX_DEPTH + 1];
    int depth;
    int star;         /* \* seen: the group is an ignorable destination */
    int uc_pending;   /* fallback characters still to skip */
    int in_deleted;   /* the last text written was a tracked deletion */
    int emitted;      /* any text written yet */
    unsigned hi_surrogate;
    unsigned char bytes[64]; /* \'hh bytes not yet converted */
    size_t nbytes;
    iconv_t cd;
} rtf;

static int visible(const rtf *r)
{
    const rtfstate *s = &r->st[r->depth];
    const int drop = r->x->opt->drop_metadata;
    return !s->skip && !(s->meta && drop) && !(s->deleted && drop);
}

/* Text out. A tracked deletion is a separate run of text: a space where the
 * output enters or leaves one, so that "deleted 536-22-1234" followed by
 * "Visible" cannot become one token that a pattern's boundary misses. */
static void emit(rtf *r, const char *s, size_t n)
{
    const int del = r->st[r->depth].deleted;
    if (n == 0)
        return;
    if (del != r->in_deleted && r->emitted)
        xput(r->x, " ", 1);
    r->in_deleted = del;
    r->emitted = 1;
    xput(r->x, s, n);
}

static void put_cp(rtf *r, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp >= 0xD800 && cp <= 0xDFFF)
        cp = '?';
    if (cp < 0x80)
        u[0] = (char)cp, n = 1;
    else if (cp < 0x800)
        u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    else if (cp < 0x10000)
        u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F)),
        u[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    else
        u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | ((cp >> 12) & 0x3F)),
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    emit(r, u, n);
}

/* Convert the pending \'hh bytes from the document's code page. */
static void flush_bytes(rtf *r)
{
    if (r->nbytes == 0)
        return;
    char out[sizeof r->bytes * 4];
    char *in = (char *)r->bytes, *o = out;
    size_t inleft = r->nbytes, outleft = sizeof out;
    if (r->cd != (iconv_t)-1) {
        iconv(r->cd, NULL, NULL, NULL, NULL);
        while (inleft > 0) {
            if (iconv(r->cd, &in, &inleft, &o, &outleft) == (size_t)-1) {
                if (errno == E2BIG || outleft == 0)
                    break;
                /* invalid or incomplete byte: one '?' and go on */
                *o++ = '?';
                outleft--;
                in++;
                inleft--;
            }
        }
        emit(r, out, (size_t)(o - out));
    } else {
        for (size_t i = 0; i < r->nbytes; i++)
            put_cp(r, r->bytes[i]); /* Latin-1 */
    }
    r->nbytes = 0;
}

static void put_text(rtf *r, const char *s, size_t n)
{
    flush_bytes(r);
    if (visible(r))
        emit(r, s, n);
}

/* A plain character or \'hh consumes one pending \uN fallback. */
static int eat_fallback(rtf *r)
{
    if (r->uc_pending > 0) {
        r->uc_pending--;
        return 1;
    }
    return 0;
}

static const char *const skipped_dest[] = {
    "fonttbl", "colortbl", "stylesheet", "listtable", "listoverridetable", "pict", "objdata",
    "themedata", "colorschememapping", "datastore", "latentstyles", "generator", "xmlnstbl",
    "rsidtbl", "mmathPr", "bkmkstart", "bkmkend", "filetbl", "pgdsctbl", "private", "nonshppict",
    "atndate", "atnid", "atnref", "fldrslt_ignored", "result_ignored", "shpinst", "sp", "sn", "sv",
    "userprops_ignored", "wgrffmtfilter", "passwordhash", "docvar", NULL
};
/* Metadata destinations and how their text is labelled. */
static const char *const meta_dest[][2] = {
    { "title", "[title] " },       { "subject", "[subject] " },     { "author", "[author] " },
    { "operator", "[operator] " }, { "keywords", "[keywords] " },   { "comment", "[comment] " },
    { "doccomm", "[comments] " },  { "company", "[company] " },     { "manager", "[manager] " },
    { "category", "[category] " }, { "hlinkbase", "[link base] " }, { "annotation", "[annotation] " },
    { "atnauthor", "[annotation author] " }, { "revtbl", "[revision authors] " },
    { "fldinst", "[field] " },     { "userprops", "[custom properties] " }, { "propname", "" },
    { "staticval", " = " },        { NULL, NULL }
};

static int in_list(const char *w, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(w, *list) == 0)
            return 1;
    return 0;
}

static void control_word(rtf *r, const char *w, int has_param, long param)
{
    rtfstate *s = &r->st[r->depth];
    const int fresh = s->fresh;
    s->fresh = 0;
    if (r->star && fresh) {
        /* {\*\dest ...}: only destinations we know to be text are kept */
        r->star = 0;
        int known = 0;
        for (size_t i = 0; meta_dest[i][0]; i++)
            if (strcmp(w, meta_dest[i][0]) == 0)
                known = 1;
        if (!known) {
            s->skip = 1;
            return;
        }
    }
    r->star = 0;
    if (fresh && in_list(w, skipped_dest)) {
        s->skip = 1;
        return;
    }
    for (size_t i = 0; meta_dest[i][0]; i++)
        if (strcmp(w, meta_dest[i][0]) == 0) {
            flush_bytes(r);
            s->meta = 1;
            if (visible(r)) {
                if (meta_dest[i][1][0] != ' ') {
                    xnewline(r->x);
                    s->labeled = 1;
                }
                xputs(r->x, meta_dest[i][1]);
            }
            return;
        }
    if (strcmp(w, "info") == 0) {
        s->meta = 1;
        return;
    }
    if (strcmp(w, "deleted") == 0) {
        s->deleted = !(has_param && param == 0);
        return;
    }
    if (strcmp(w, "plain") == 0) {
        s->deleted = 0;
        return;
    }
    if (strcmp(w, "uc") == 0) {
        s->uc = has_param && param >= 0 && param < 16 ? (int)param : 1;
        return;
    }
    if (strcmp(w, "u") == 0 && has_param) {
        flush_bytes(r);
        unsigned cp = (unsigned)(param < 0 ? param + 65536 : param) & 0xFFFF;
        r->uc_pending = s->uc;
        if (!visible(r))
            return;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            r->hi_surrogate = cp;
            return;
        }
        if (cp >= 0xDC00 && cp <= 0xDFFF && r->hi_surrogate) {
            cp = 0x10000 + ((r->hi_surrogate - 0xD800) << 10) + (cp - 0xDC00);
        }
        r->hi_surrogate = 0;
        put_cp(r, cp);
        return;
    }
    if (strcmp(w, "ansicpg") == 0 && has_param && param > 0 && param < 100000) {
        char name[24];
        snprintf(name, sizeof name, "CP%ld", param);
        iconv_t cd = iconv_open("UTF-8", name);
        if (cd != (iconv_t)-1) {
            if (r->cd != (iconv_t)-1)
                iconv_close(r->cd);
            r->cd = cd;
        }
        return;
    }
    static const char *const nl[] = { "par", "line", "sect", "page", "row", "pard_ignored", NULL };
    static const char *const tab[] = { "tab", "cell", NULL };
    if (in_list(w, nl)) {
        flush_bytes(r);
        if (visible(r))
            xputs(r->x, "\n");
    } else if (in_list(w, tab))
        put_text(r, "\t", 1);
    else if (strcmp(w, "emdash") == 0)
        put_text(r, "\xe2\x80\x94", 3);
    else if (strcmp(w, "endash") == 0)
        put_text(r, "\xe2\x80\x93", 3);
    else if (strcmp(w, "bullet") == 0)
        put_text(r, "\xe2\x80\xa2", 3);
    else if (strcmp(w, "lquote") == 0 || strcmp(w, "rquote") == 0)
        put_text(r, "'", 1);
    else if (strcmp(w, "ldblquote") == 0 || strcmp(w, "rdblquote") == 0)
        put_text(r, "\"", 1);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int extract_rtf(xctx *x, const void *buf, size_t len)
{
    xset_extractor(x, "rtf");
    const unsigned char *p = buf;
    if (len < 5 || memcmp(p, "{\\rtf", 5) != 0)
        return xfail(x, -EINVAL, "not RTF (no {\\rtf header)");
    rtf *r = calloc(1, sizeof *r);
    if (!r)
        return xfail(x, -ENOMEM, "out of memory");
    r->x = x;
    r->cd = iconv_open("UTF-8", "CP1252"); /* RTF's default \ansi code page */
    r->st[0].uc = 1;
    r->st[0].fresh = 1;
    int closed = 0;
    size_t i = 0;
    while (i < len && !x->err && !closed) {
        const unsigned char c = p[i];
        if (c == '{') {
            flush_bytes(r);
            if (r->depth >= RTF_MAX_DEPTH) {
                xfail(x, -EINVAL, "RTF nested deeper than %d groups", RTF_MAX_DEPTH);
                break;
            }
            r->st[r->depth + 1] = r->st[r->depth];
            r->depth++;
            r->st[r->depth].fresh = 1;
            r->st[r->depth].labeled = 0;
            r->star = 0;
            i++;
        } else if (c == '}') {
            flush_bytes(r);
            r->uc_pending = 0;
            if (r->st[r->depth].labeled && visible(r))
                xnewline(x);
            if (r->depth == 0)
                closed = 1;
            else {
                r->depth--;
                if (r->depth == 0)
                    closed = 1; /* the document's own group has ended */
            }
            i++;
        } else if (c == '\\') {
            if (i + 1 >= len) {
                i++;
                break;
            }
            const unsigned char d = p[i + 1];
            if ((d >= 'a' && d <= 'z') || (d >= 'A' && d <= 'Z')) {
                char word[33];
                size_t n = 0;
                i++;
                while (i < len && ((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z'))) {
                    if (n < sizeof word - 1)
                        word[n++] = (char)p[i];
                    i++;
                }
                word[n] = '\0';
                int has_param = 0, neg = 0, digits = 0;
                long param = 0;
                if (i < len && p[i] == '-' && i + 1 < len && p[i + 1] >= '0' && p[i + 1] <= '9')
                    neg = 1, i++;
                while (i < len && p[i] >= '0' && p[i] <= '9') {
                    if (digits++ < 10)
                        param = param * 10 + (p[i] - '0');
                    has_param = 1;
                    i++;
                }
                if (neg)
                    param = -param;
                if (i < len && p[i] == ' ')
                    i++;
                if (strcmp(word, "bin") == 0) {
                    /* raw binary data follows: skip it, never read it as text */
                    size_t skip = has_param && param > 0 ? (size_t)param : 0;
                    i = skip > len - i ? len : i + skip;
                    r->st[r->depth].fresh = 0;
                    continue;
                }
                control_word(r, word, has_param, param);
            } else if (d == '\'') {
                i += 2;
                int h1 = i < len ? hexval(p[i]) : -1, h2 = i + 1 < len ? hexval(p[i + 1]) : -1;
                if (h1 < 0 || h2 < 0)
                    continue;
                i += 2;
                r->st[r->depth].fresh = 0;
                if (eat_fallback(r))
                    continue;
                if (visible(r)) {
                    if (r->nbytes == sizeof r->bytes)
                        flush_bytes(r);
                    r->bytes[r->nbytes++] = (unsigned char)(h1 * 16 + h2);
                }
            } else {
                i += 2;
                r->st[r->depth].fresh = 0;
                switch (d) {
                case '*':
                    r->star = 1;
                    r->st[r->depth].fresh = 1;
                    break;
                case '\\': case '{': case '}':
                    if (!eat_fallback(r))
                        put_text(r, (const char *)&d, 1);
                    break;
                case '~':
                    put_text(r, " ", 1);
                    break;
                case '_':
                    put_text(r, "-", 1);
                    break;
                case '\n': case '\r':
                    flush_bytes(r);
                    if (visible(r))
                        xputs(x, "\n");
                    break;
                default:
                    break; /* \- optional hyphen, \: index subentry... */
                }
            }
        } else if (c == '\r' || c == '\n') {
            i++;
        } else {
            /* a run of plain text */
            size_t j = i;
            while (j < len && p[j] != '{' && p[j] != '}' && p[j] != '\\' && p[j] != '\r' && p[j] != '\n')
                j++;
            r->st[r->depth].fresh = 0;
            while (i < j && eat_fallback(r))
                i++;
            if (i < j)
                put_text(r, (const char *)p + i, j - i);
            i = j;
        }
    }
    flush_bytes(r);
    if (!x->err && !closed)
        xfail(x, -EINVAL, "truncated RTF (unbalanced groups)");
    if (r->cd != (iconv_t)-1)
        iconv_close(r->cd);
    free(r);
    return x->err;
}
