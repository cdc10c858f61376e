/* extract/xml.c — a streaming walk over one XML part of a document with
 * libxml2's xmlTextReader, set up for hostile input: no network, no entity
 * substitution, no DTD loading, and any DOCTYPE refused (OOXML and
 * OpenDocument parts never have one, so an internal subset can only be an
 * entity-expansion attack), nesting deeper than XML_MAX_DEPTH refused.
 * Must never fetch anything, never expand entities, never recurse on depth.
 */
#include "extract/extract_i.h"

#include <errno.h>
#include <libxml/xmlreader.h>
#include <string.h>

char *xml_attr(const xml_event *ev, const char *local)
{
    xmlTextReaderPtr r = ev->reader;
    char *out = NULL;
    if (xmlTextReaderHasAttributes(r) != 1)
        return NULL;
    while (xmlTextReaderMoveToNextAttribute(r) == 1) {
        const xmlChar *ln = xmlTextReaderConstLocalName(r);
        if (ln && strcmp((const char *)ln, local) == 0) {
            xmlChar *v = xmlTextReaderValue(r);
            if (v) {
                out = strdup((const char *)v);
                xmlFree(v);
            }
            break;
        }
    }
    xmlTextReaderMoveToElement(r);
    return out;
}

int xml_walk(xctx *x, const char *part, const void *buf, size_t len, xml_fn fn, void *ctx)
{
    if (len > (size_t)0x7fffffff)
        return xfail(x, -EFBIG, "XML part %.80s too large", part);
    /* Refused before libxml2 reads a declaration (it would then be up to its
     * own loop and amplification checks); the reader check below catches
     * the same in other encodings. */
    if (memmem(buf, len, "<!DOCTYPE", 9) || memmem(buf, len, "<!ENTITY", 8))
        return xfail(x, -EINVAL, "XML with a DTD or entity declarations in %.80s (refused)", part);
    /* No XML_PARSE_NOENT (entities stay references), no XML_PARSE_DTDLOAD,
     * no XML_PARSE_HUGE (libxml2 keeps its own size and depth limits). */
    const int options = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA;
    xmlTextReaderPtr r = xmlReaderForMemory(buf, (int)len, part, NULL, options);
    if (!r)
        return xfail(x, -ENOMEM, "cannot start XML reader");
    int rc;
    while ((rc = xmlTextReaderRead(r)) == 1) {
        const int type = xmlTextReaderNodeType(r);
        const int depth = xmlTextReaderDepth(r);
        if (depth > XML_MAX_DEPTH) {
            xfail(x, -EINVAL, "XML nested deeper than %d levels in %.80s", XML_MAX_DEPTH, part);
            break;
        }
        xml_event ev = { .depth = depth, .reader = r };
        switch (type) {
        case XML_READER_TYPE_DOCUMENT_TYPE:
        case XML_READER_TYPE_ENTITY_REFERENCE:
        case XML_READER_TYPE_ENTITY:
            xfail(x, -EINVAL, "XML with a DTD or entity references in %.80s (refused)", part);
            break;
        case XML_READER_TYPE_ELEMENT: {
            ev.type = XML_EV_START;
            ev.local = (const char *)xmlTextReaderConstLocalName(r);
            ev.ns = (const char *)xmlTextReaderConstNamespaceUri(r);
            const int empty = xmlTextReaderIsEmptyElement(r);
            if (fn(ctx, &ev) == 0 && empty) {
                ev.type = XML_EV_END;
                fn(ctx, &ev);
            }
            break;
        }
        case XML_READER_TYPE_END_ELEMENT:
            ev.type = XML_EV_END;
            ev.local = (const char *)xmlTextReaderConstLocalName(r);
            ev.ns = (const char *)xmlTextReaderConstNamespaceUri(r);
            fn(ctx, &ev);
            break;
        case XML_READER_TYPE_TEXT:
        case XML_READER_TYPE_CDATA:
        case XML_READER_TYPE_SIGNIFICANT_WHITESPACE:
        case XML_READER_TYPE_WHITESPACE:
            ev.type = XML_EV_TEXT;
            ev.text = (const char *)xmlTextReaderConstValue(r);
            if (ev.text)
                fn(ctx, &ev);
            break;
        default:
            break;
        }
        if (x->err)
            break;
    }
    if (!x->err && rc != 0) {
        const xmlError *e = xmlGetLastError();
        xfail(x, -EINVAL, "malformed XML in %.80s%s%.100s", part, e && e->message ? ": " : "",
              e && e->message ? e->message : "");
        /* libxml2's message ends with a newline; the clean-up keeps reasons on one line. */
        char *nl = strchr(x->reason, '\n');
        if (nl)
            *nl = '\0';
    }
    xmlFreeTextReader(r);
    return x->err;
}
