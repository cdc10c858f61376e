/* extract/eml.c — e-mail (RFC 5322 / MIME, .eml) with GMime 3: headers
 * decoded from RFC 2047, text parts converted to UTF-8, HTML parts through
 * the HTML extractor, attached documents (PDF, DOCX, ...) extracted in turn,
 * forwarded messages (message/rfc822) walked like the outer one.
 *
 * Never serves an attachment's bytes: one that is not a document this module
 * reads, or that fails to extract, leaves only a one-line note. Nesting is
 * bounded (EML_MAX_DEPTH) so a hostile message cannot recurse without end.
 */
#include "extract/extract_i.h"

#include <errno.h>
#include <gmime/gmime.h>
#include <string.h>

#define EML_MAX_DEPTH 8

/* With drop_metadata only the subject of a message is kept: routing and
 * address headers (From, To, Cc, Received, Message-ID, X-...) are metadata. */
static int put_headers(xctx *x, GMimeObject *obj)
{
    GMimeHeaderList *hl = g_mime_object_get_header_list(obj);
    const int n = hl ? g_mime_header_list_get_count(hl) : 0;
    for (int i = 0; i < n && !x->err; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
        const char *name = g_mime_header_get_name(h);
        const char *raw = g_mime_header_get_raw_value(h);
        if (!name || !raw)
            continue;
        if (x->opt->drop_metadata && g_ascii_strcasecmp(name, "Subject") != 0)
            continue;
        if (!g_ascii_strncasecmp(name, "Content-", 8) || !g_ascii_strcasecmp(name, "MIME-Version"))
            continue;
        char *v = g_mime_utils_header_decode_text(NULL, raw);
        /* unfold: a header's line breaks are not the text's */
        for (char *p = v; p && *p; p++)
            if (*p == '\r' || *p == '\n' || *p == '\t')
                *p = ' ';
        xputs(x, name);
        xputs(x, ": ");
        xputs(x, v ? g_strstrip(v) : "");
        xputs(x, "\n");
        g_free(v);
    }
    return x->err;
}

static int walk(xctx *x, GMimeObject *obj, int depth);

/* An attachment: extracted in a context of its own, so that one that cannot
 * be read leaves a note instead of refusing the whole message. */
static int put_attachment(xctx *x, GMimePart *part, const char *mime)
{
    const char *fname = g_mime_part_get_filename(part);
    GMimeDataWrapper *dw = g_mime_part_get_content(part);
    GMimeStream *mem = g_mime_stream_mem_new();
    GByteArray *ba = NULL;
    if (dw && g_mime_data_wrapper_write_to_stream(dw, mem) >= 0)
        ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    xnewline(x);
    xputs(x, "[attachment");
    if (fname) {
        xputs(x, " ");
        xputs(x, fname);
    }
    xputs(x, " (");
    xputs(x, mime);
    xputs(x, ")]\n");
    /* Mail clients often label attachments application/octet-stream: a PDF
     * is known by its signature (zip-based documents by extract_handles). */
    if (ba && ba->len > 5 && memcmp(ba->data, "%PDF-", 5) == 0 &&
        (!g_ascii_strcasecmp(mime, "application/octet-stream") || !g_ascii_strcasecmp(mime, "binary/octet-stream")))
        mime = "application/pdf";
    if (ba && x->depth < 2 && extract_handles(mime, ba->data, ba->len)) {
        xctx sub = { .opt = x->opt, .expanded = x->expanded, .depth = x->depth + 1 };
        if (extract_run(&sub, ba->data, ba->len, mime) == 0) {
            xput(x, sub.text, sub.len);
            xnewline(x);
        } else {
            xputs(x, "[attachment not extracted: ");
            xputs(x, sub.reason);
            xputs(x, "]\n");
        }
        x->expanded = sub.expanded;
        free(sub.text);
    } else
        xputs(x, "[attachment not extracted]\n");
    g_object_unref(mem);
    return x->err;
}

static int walk_part(xctx *x, GMimePart *part)
{
    GMimeContentType *ct = g_mime_object_get_content_type(GMIME_OBJECT(part));
    char *mime = ct ? g_mime_content_type_get_mime_type(ct) : g_strdup("text/plain");
    if (GMIME_IS_TEXT_PART(part)) {
        /* text, inline or attached (a .txt or .csv file): its decoded UTF-8 */
        if (g_mime_part_is_attachment(part)) {
            const char *fname = g_mime_part_get_filename(part);
            xnewline(x);
            xputs(x, "[attachment ");
            xputs(x, fname ? fname : "");
            xputs(x, " (");
            xputs(x, mime ? mime : "text");
            xputs(x, ")]\n");
        }
        char *t = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
        if (t) {
            xnewline(x);
            x->depth++; /* keeps the extractor name "eml/gmime" */
            if (g_mime_content_type_is_type(ct, "text", "html"))
                extract_html(x, t, strlen(t));
            else if (g_mime_content_type_is_type(ct, "text", "rtf") ||
                     g_mime_content_type_is_type(ct, "text", "richtext"))
                extract_rtf(x, t, strlen(t));
            else
                xputs(x, t);
            x->depth--;
            xnewline(x);
        }
        g_free(t);
    } else
        put_attachment(x, part, mime ? mime : "application/octet-stream");
    g_free(mime);
    return x->err;
}

static int walk(xctx *x, GMimeObject *obj, int depth)
{
    if (depth > EML_MAX_DEPTH)
        return xfail(x, -EINVAL, "e-mail nested deeper than %d levels", EML_MAX_DEPTH);
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        const int n = g_mime_multipart_get_count(mp);
        GMimeContentType *ct = g_mime_object_get_content_type(obj);
        if (ct && g_mime_content_type_is_type(ct, "multipart", "alternative") && n > 0) {
            /* the same text twice: the plain one if there is one, else the last */
            GMimeObject *pick = g_mime_multipart_get_part(mp, n - 1);
            for (int i = 0; i < n; i++) {
                GMimeObject *p = g_mime_multipart_get_part(mp, i);
                GMimeContentType *pct = g_mime_object_get_content_type(p);
                if (pct && g_mime_content_type_is_type(pct, "text", "plain")) {
                    pick = p;
                    break;
                }
            }
            return walk(x, pick, depth + 1);
        }
        for (int i = 0; i < n && !x->err; i++)
            walk(x, g_mime_multipart_get_part(mp, i), depth + 1);
        return x->err;
    }
    if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (!m)
            return 0;
        xnewline(x);
        xputs(x, "[attached message]\n");
        put_headers(x, GMIME_OBJECT(m));
        GMimeObject *body = g_mime_message_get_mime_part(m);
        return body ? walk(x, body, depth + 1) : x->err;
    }
    if (GMIME_IS_PART(obj))
        return walk_part(x, GMIME_PART(obj));
    return 0;
}

int extract_eml(xctx *x, const void *buf, size_t len)
{
    static int initialized;
    xset_extractor(x, "eml/gmime");
    if (!initialized) {
        g_mime_init();
        initialized = 1;
    }
    GMimeStream *s = g_mime_stream_mem_new_with_buffer(buf, len);
    GMimeParser *parser = g_mime_parser_new_with_stream(s);
    GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
    if (!msg) {
        g_object_unref(parser);
        g_object_unref(s);
        return xfail(x, -EINVAL, "not an e-mail message (no headers)");
    }
    put_headers(x, GMIME_OBJECT(msg));
    GMimeObject *body = g_mime_message_get_mime_part(msg);
    if (body && !x->err) {
        xputs(x, "\n");
        walk(x, body, 0);
    }
    g_object_unref(msg);
    g_object_unref(parser);
    g_object_unref(s);
    return x->err;
}
