/* extract/html.c — HTML to text with libxml2's HTML parser: the text a
 * reader sees (body, title, image alt text, form values), block elements as
 * line breaks, table cells as tabs. Scripts, styles and templates are
 * dropped; comments and <meta> properties are metadata.
 *
 * Must never fetch anything (no network, no external entities) and never
 * recurse over the tree: deeply nested markup is walked with parent links.
 */
#include "extract/extract_i.h"

#include <errno.h>
#include <libxml/HTMLparser.h>
#include <string.h>
#include <strings.h>

static int name_in(const xmlChar *name, const char *const *list)
{
    for (; *list; list++)
        if (strcasecmp((const char *)name, *list) == 0)
            return 1;
    return 0;
}

static const char *const dropped[] = { "script", "style", "template", NULL };
static const char *const blocks[] = {
    "p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol",
    "section", "article", "header", "footer", "blockquote", "pre", "title", "dt", "dd", "hr",
    "address", "figcaption", "caption", "form", "nav", "aside", "main", "body", "option", NULL
};

static void put_attr(xctx *x, xmlNodePtr n, const char *attr, const char *label)
{
    xmlChar *v = xmlGetProp(n, (const xmlChar *)attr);
    if (v && *v) {
        xputs(x, label);
        xputs(x, (const char *)v);
        xputs(x, " ");
    }
    xmlFree(v);
}

static void on_enter(xctx *x, xmlNodePtr n)
{
    const int drop = x->opt->drop_metadata;
    if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
        /* layout whitespace between blocks is not text */
        if (n->content && (xmlIsBlankNode(n) == 0 || (x->len && x->text[x->len - 1] != '\n')))
            xputs(x, (const char *)n->content);
    } else if (n->type == XML_COMMENT_NODE) {
        if (!drop && n->content) {
            xnewline(x);
            xputs(x, "[html comment] ");
            xputs(x, (const char *)n->content);
            xnewline(x);
        }
    } else if (n->type == XML_ELEMENT_NODE) {
        if (name_in(n->name, blocks))
            xnewline(x);
        else if (name_in(n->name, (const char *const[]){ "td", "th", NULL }))
            xputs(x, "\t");
        if (strcasecmp((const char *)n->name, "img") == 0 || strcasecmp((const char *)n->name, "area") == 0)
            put_attr(x, n, "alt", "[image] ");
        else if (strcasecmp((const char *)n->name, "input") == 0)
            put_attr(x, n, "value", "[input] ");
        else if (strcasecmp((const char *)n->name, "meta") == 0 && !drop) {
            xmlChar *name = xmlGetProp(n, (const xmlChar *)"name");
            if (!name)
                name = xmlGetProp(n, (const xmlChar *)"property");
            if (name) {
                xnewline(x);
                xputs(x, "[meta ");
                xputs(x, (const char *)name);
                xputs(x, "] ");
                put_attr(x, n, "content", "");
                xnewline(x);
                xmlFree(name);
            }
        }
        put_attr(x, n, "title", "");
    }
}

int extract_html(xctx *x, const void *buf, size_t len)
{
    xset_extractor(x, "html/libxml2");
    if (len > (size_t)0x7fffffff)
        return xfail(x, -EFBIG, "HTML too large");
    const int options = HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_RECOVER;
    htmlDocPtr doc = htmlReadMemory(buf, (int)len, "document.html", NULL, options);
    if (!doc)
        return xfail(x, -EINVAL, "HTML could not be parsed");
    xmlNodePtr n = doc->children;
    while (n && !x->err) {
        int descend = 1;
        if (n->type == XML_ELEMENT_NODE && name_in(n->name, dropped))
            descend = 0;
        else if (n->type == XML_DTD_NODE)
            descend = 0;
        else
            on_enter(x, n);
        if (descend && n->children && n->type == XML_ELEMENT_NODE) {
            n = n->children;
            continue;
        }
        /* Next sibling, or climb until a parent has one; a block ends with a
         * line break when it closes. */
        while (n && !n->next) {
            n = n->parent;
            if (!n || n == (xmlNodePtr)doc) {
                n = NULL;
                break;
            }
            if (n->type == XML_ELEMENT_NODE && name_in(n->name, blocks))
                xnewline(x);
        }
        if (n)
            n = n->next;
    }
    xmlFreeDoc(doc);
    return x->err;
}
