/* extract/zipdoc.c — Office Open XML (DOCX, XLSX, PPTX) and OpenDocument
 * (ODT, ODS, ODP): which parts of the container are read, in which order,
 * and what of each is text, what is metadata (dropped with drop_metadata)
 * and what is left out (images, embedded objects, charts, macros).
 *
 * The format is decided by the container's contents, never by the name or
 * the MIME type alone. Must never follow relationships outside the zip,
 * never expand repeated rows/columns (ODS table:number-*-repeated), and never
 * read a member it does not need.
 */
#include "extract/extract_i.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- which members --------------------------------------------------------- */
static const char *const wanted[] = {
    /* OOXML */
    "docProps/core.xml", "docProps/app.xml", "docProps/custom.xml",
    "word/document.xml", "word/header*.xml", "word/footer*.xml", "word/footnotes.xml",
    "word/endnotes.xml", "word/comments.xml",
    "xl/workbook.xml", "xl/_rels/workbook.xml.rels", "xl/sharedStrings.xml",
    "xl/worksheets/*.xml", "xl/comments*.xml", "xl/comments/*.xml", "xl/threadedComments/*.xml",
    "ppt/presentation.xml", "ppt/slides/*.xml", "ppt/notesSlides/*.xml", "ppt/comments/*.xml",
    "ppt/commentAuthors.xml",
    /* OpenDocument */
    "mimetype", "content.xml", "styles.xml", "meta.xml", "META-INF/manifest.xml",
};

static int want_member(const char *name)
{
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++)
        if (fnmatch(wanted[i], name, FNM_PATHNAME) == 0)
            return 1;
    return 0;
}

/* ---- the walker -------------------------------------------------------------- */
enum wmode { W_WORD, W_DRAWING, W_SHEET, W_SST, W_WORKBOOK, W_RELS, W_ODF, W_META };

typedef struct sheetref {
    char *name, *rid, *target;
} sheetref;

typedef struct walker {
    xctx *x;
    enum wmode mode;
    int skip_depth;  /* >= 0: inside a dropped subtree that started at this depth */
    int cell;        /* > 0: inside a table cell, where a paragraph ends with a space */
    int hf_label;    /* XLSX: header/footer label still to print before its text */
    const char *const *only; /* W_META: elements kept (NULL: all) */
    int text_depth;  /* > 0: inside an element whose text is content */
    int scope_depth; /* ODF: >= 0 inside office:body / a header or footer */
    const char *const *scopes;
    char elem[64];   /* W_META: innermost element */
    /* XLSX */
    char cell_type[16];
    int in_v, in_f, in_hf;
    char **sst;
    size_t nsst, capsst;
    char *cur;       /* shared string being built */
    size_t curlen;
    sheetref *sheets;
    size_t nsheets;
} walker;

static int is(const xml_event *ev, const char *local)
{
    return ev->local && strcmp(ev->local, local) == 0;
}

static void skip_subtree(walker *w, const xml_event *ev)
{
    w->skip_depth = ev->depth;
}

/* Emit "[label by AUTHOR] " from an element's author attribute. */
static void put_author(walker *w, const xml_event *ev, const char *label)
{
    char *a = xml_attr(ev, "author");
    xputs(w->x, "[");
    xputs(w->x, label);
    if (a && *a) {
        xputs(w->x, " by ");
        xputs(w->x, a);
    }
    xputs(w->x, "] ");
    free(a);
}

static int str_append(walker *w, const char *s)
{
    size_t n = strlen(s);
    char *p = realloc(w->cur, w->curlen + n + 1);
    if (!p)
        return xfail(w->x, -ENOMEM, "out of memory");
    memcpy(p + w->curlen, s, n + 1);
    w->cur = p;
    w->curlen += n;
    return 0;
}

static int on_word(walker *w, const xml_event *ev)
{
    xctx *x = w->x;
    const int drop = x->opt->drop_metadata;
    if (ev->type == XML_EV_START) {
        if (is(ev, "Fallback")) /* mc:Fallback repeats mc:Choice's text */
            skip_subtree(w, ev);
        else if (is(ev, "del") || is(ev, "moveFrom")) {
            if (drop)
                skip_subtree(w, ev);
            else
                put_author(w, ev, "deleted");
        } else if ((is(ev, "ins") || is(ev, "moveTo")) && !drop)
            put_author(w, ev, "inserted");
        else if (is(ev, "rPrChange") || is(ev, "pPrChange") || is(ev, "sectPrChange")) {
            if (drop)
                skip_subtree(w, ev);
        } else if (is(ev, "comment"))
            put_author(w, ev, "comment");
        else if (is(ev, "t") || is(ev, "delText"))
            w->text_depth++;
        else if (is(ev, "instrText")) { /* field codes: HYPERLINK "mailto:..." */
            if (drop)
                skip_subtree(w, ev);
            else
                w->text_depth++;
        } else if (is(ev, "tab") && w->text_depth == 0)
            xputs(x, "\t");
        else if (is(ev, "br") || is(ev, "cr"))
            xputs(x, "\n");
        else if (is(ev, "tc"))
            w->cell++;
    } else if (ev->type == XML_EV_END) {
        if (is(ev, "t") || is(ev, "delText") || is(ev, "instrText")) {
            if (w->text_depth > 0)
                w->text_depth--;
        } else if (is(ev, "p") && w->cell > 0)
            xputs(x, " ");
        else if (is(ev, "p") || is(ev, "tr") || is(ev, "comment"))
            xnewline(x);
        else if (is(ev, "tc")) {
            if (w->cell > 0)
                w->cell--;
            xputs(x, "\t");
        }
    } else if (w->text_depth > 0)
        xputs(x, ev->text);
    return 0;
}

static int on_drawing(walker *w, const xml_event *ev)
{
    xctx *x = w->x;
    if (ev->type == XML_EV_START) {
        if (is(ev, "Fallback"))
            skip_subtree(w, ev);
        else if (is(ev, "t") || is(ev, "text"))
            w->text_depth++;
        else if (is(ev, "br"))
            xputs(x, "\n");
        else if (is(ev, "tc"))
            w->cell++;
        else if (is(ev, "cm") || is(ev, "cmAuthor")) {
            char *a = xml_attr(ev, "name");
            if (a) {
                xputs(x, "[comment author] ");
                xputs(x, a);
                xnewline(x);
                free(a);
            }
        }
    } else if (ev->type == XML_EV_END) {
        if (is(ev, "t") || is(ev, "text")) {
            if (w->text_depth > 0)
                w->text_depth--;
            if (is(ev, "text"))
                xnewline(x);
        } else if (is(ev, "p") && w->cell > 0)
            xputs(x, " ");
        else if (is(ev, "p") || is(ev, "tr"))
            xnewline(x);
        else if (is(ev, "tc")) {
            if (w->cell > 0)
                w->cell--;
            xputs(x, "\t");
        }
    } else if (w->text_depth > 0)
        xputs(x, ev->text);
    return 0;
}

static int on_sst(walker *w, const xml_event *ev)
{
    if (ev->type == XML_EV_START) {
        if (is(ev, "rPh")) /* phonetic guide: a reading of text already there */
            skip_subtree(w, ev);
        else if (is(ev, "si")) {
            free(w->cur);
            w->cur = NULL;
            w->curlen = 0;
            str_append(w, "");
        } else if (is(ev, "t"))
            w->text_depth++;
    } else if (ev->type == XML_EV_END) {
        if (is(ev, "t") && w->text_depth > 0)
            w->text_depth--;
        else if (is(ev, "si") && w->cur) {
            if (w->nsst == w->capsst) {
                size_t cap = w->capsst ? w->capsst * 2 : 256;
                char **p = realloc(w->sst, cap * sizeof *p);
                if (!p)
                    return xfail(w->x, -ENOMEM, "out of memory");
                w->sst = p;
                w->capsst = cap;
            }
            w->sst[w->nsst++] = w->cur;
            w->cur = NULL;
            w->curlen = 0;
        }
    } else if (w->text_depth > 0 && w->cur)
        str_append(w, ev->text);
    return 0;
}

static int on_sheet(walker *w, const xml_event *ev)
{
    xctx *x = w->x;
    if (ev->type == XML_EV_START) {
        if (is(ev, "c")) {
            char *t = xml_attr(ev, "t");
            snprintf(w->cell_type, sizeof w->cell_type, "%s", t ? t : "n");
            free(t);
        } else if (is(ev, "v"))
            w->in_v = 1;
        else if (is(ev, "f")) {
            w->in_f = 1;
            xputs(x, "=");
        } else if (is(ev, "t"))
            w->text_depth++;
        else if (is(ev, "rPh"))
            skip_subtree(w, ev);
        else if (strstr(ev->local, "Header") || strstr(ev->local, "Footer")) {
            /* headerFooter/oddHeader...: printed on every page */
            if (!is(ev, "headerFooter"))
                w->in_hf = w->hf_label = 1;
        }
    } else if (ev->type == XML_EV_END) {
        if (is(ev, "v"))
            w->in_v = 0;
        else if (is(ev, "f")) {
            w->in_f = 0;
            xputs(x, " ");
        } else if (is(ev, "t") && w->text_depth > 0)
            w->text_depth--;
        else if (is(ev, "c"))
            xputs(x, "\t");
        else if (is(ev, "row"))
            xnewline(x);
        else if (w->in_hf && !is(ev, "headerFooter")) {
            w->in_hf = 0;
            if (!w->hf_label)
                xnewline(x);
        }
    } else if (w->in_v && strcmp(w->cell_type, "s") == 0) {
        char *end;
        unsigned long i = strtoul(ev->text, &end, 10);
        if (end != ev->text && i < w->nsst)
            xputs(x, w->sst[i]);
    } else if (w->in_hf) {
        if (w->hf_label) {
            xnewline(x);
            xputs(x, "[header/footer] ");
            w->hf_label = 0;
        }
        xputs(x, ev->text);
    } else if (w->in_v || w->in_f || w->text_depth > 0)
        xputs(x, ev->text);
    return 0;
}

static int on_workbook(walker *w, const xml_event *ev)
{
    if (ev->type != XML_EV_START || !is(ev, "sheet"))
        return 0;
    sheetref *p = realloc(w->sheets, (w->nsheets + 1) * sizeof *p);
    if (!p)
        return xfail(w->x, -ENOMEM, "out of memory");
    w->sheets = p;
    p[w->nsheets].name = xml_attr(ev, "name");
    p[w->nsheets].rid = xml_attr(ev, "id");
    p[w->nsheets].target = NULL;
    w->nsheets++;
    return 0;
}

static int on_rels(walker *w, const xml_event *ev)
{
    if (ev->type != XML_EV_START || !is(ev, "Relationship"))
        return 0;
    char *id = xml_attr(ev, "Id"), *target = xml_attr(ev, "Target");
    for (size_t i = 0; id && target && i < w->nsheets; i++)
        if (w->sheets[i].rid && !w->sheets[i].target && strcmp(w->sheets[i].rid, id) == 0) {
            const char *t = target[0] == '/' ? target + 1 : target;
            size_t n = strlen(t) + 4;
            w->sheets[i].target = malloc(n);
            if (w->sheets[i].target)
                snprintf(w->sheets[i].target, n, "%s%s", target[0] == '/' ? "" : "xl/", t);
        }
    free(id);
    free(target);
    return 0;
}

static const char *const odf_body_scopes[] = { "body", NULL };
static const char *const odf_style_scopes[] = { "header", "footer", "header-left", "footer-left",
                                                 "header-first", "footer-first", NULL };

static int on_odf(walker *w, const xml_event *ev)
{
    xctx *x = w->x;
    const int drop = x->opt->drop_metadata;
    if (w->scope_depth < 0) {
        if (ev->type == XML_EV_START)
            for (size_t i = 0; w->scopes[i]; i++)
                if (is(ev, w->scopes[i])) {
                    w->scope_depth = ev->depth;
                    if (w->scopes != odf_body_scopes) {
                        xnewline(x);
                        xputs(x, "[");
                        xputs(x, ev->local);
                        xputs(x, "]\n");
                    }
                }
        return 0;
    }
    if (ev->type == XML_EV_START) {
        if (is(ev, "annotation")) {
            if (drop)
                skip_subtree(w, ev);
            else
                xputs(x, " [comment] ");
        } else if (is(ev, "tracked-changes")) {
            if (drop)
                skip_subtree(w, ev);
            else
                xputs(x, "[tracked changes] ");
        } else if (is(ev, "table")) {
            char *name = xml_attr(ev, "name");
            xnewline(x);
            xputs(x, "## ");
            xputs(x, name ? name : "table");
            xputs(x, "\n");
            free(name);
        } else if (is(ev, "table-cell") || is(ev, "covered-table-cell"))
            w->cell++;
        else if (is(ev, "tab"))
            xputs(x, "\t");
        else if (is(ev, "line-break"))
            xputs(x, "\n");
        else if (is(ev, "s"))
            xputs(x, " ");
    } else if (ev->type == XML_EV_END) {
        if (ev->depth == w->scope_depth)
            w->scope_depth = -1;
        if ((is(ev, "p") || is(ev, "h")) && w->cell > 0)
            xputs(x, " ");
        else if (is(ev, "p") || is(ev, "h") || is(ev, "table-row") || is(ev, "annotation") ||
                 is(ev, "creator") || is(ev, "date") || is(ev, "changed-region") || w->scope_depth < 0)
            xnewline(x);
        else if (is(ev, "table-cell") || is(ev, "covered-table-cell")) {
            if (w->cell > 0)
                w->cell--;
            xputs(x, "\t");
        }
    } else
        xputs(x, ev->text);
    return 0;
}

static int on_meta(walker *w, const xml_event *ev)
{
    xctx *x = w->x;
    if (w->only) {
        /* app.xml: the few free-text fields, not page and word counts */
        int keep = 0;
        for (size_t i = 0; w->only[i]; i++)
            if (ev->type != XML_EV_START ? strcmp(w->elem, w->only[i]) == 0 : is(ev, w->only[i]))
                keep = 1;
        if (!keep)
            return 0;
    }
    if (ev->type == XML_EV_START) {
        snprintf(w->elem, sizeof w->elem, "%s", ev->local);
        /* custom property names, comment authors */
        static const char *const attrs[] = { "name", "author", "initials" };
        for (size_t i = 0; i < 3; i++) {
            char *a = xml_attr(ev, attrs[i]);
            if (a && *a) {
                xnewline(x);
                xputs(x, ev->local);
                xputs(x, " ");
                xputs(x, attrs[i]);
                xputs(x, ": ");
                xputs(x, a);
                xputs(x, "\n");
            }
            free(a);
        }
    } else if (ev->type == XML_EV_TEXT) {
        const char *s = ev->text;
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
            s++;
        if (*s) {
            xnewline(x);
            xputs(x, w->elem);
            xputs(x, ": ");
            xputs(x, ev->text);
            xnewline(x);
        }
    }
    return 0;
}

static int on_event(void *ctx, const xml_event *ev)
{
    walker *w = ctx;
    if (w->skip_depth >= 0) {
        if (ev->type == XML_EV_END && ev->depth == w->skip_depth)
            w->skip_depth = -1;
        return 0;
    }
    switch (w->mode) {
    case W_WORD: return on_word(w, ev);
    case W_DRAWING: return on_drawing(w, ev);
    case W_SHEET: return on_sheet(w, ev);
    case W_SST: return on_sst(w, ev);
    case W_WORKBOOK: return on_workbook(w, ev);
    case W_RELS: return on_rels(w, ev);
    case W_ODF: return on_odf(w, ev);
    case W_META: return on_meta(w, ev);
    }
    return 0;
}

static int walk(walker *w, enum wmode mode, const zmember *m)
{
    w->mode = mode;
    w->skip_depth = -1;
    w->text_depth = 0;
    w->scope_depth = -1;
    w->in_v = w->in_f = w->in_hf = w->hf_label = w->cell = 0;
    w->elem[0] = '\0';
    return xml_walk(w->x, m->name, m->data, m->len, on_event, w);
}

/* Members matching `pattern`, in natural order (slide2 before slide10). */
static int by_version(const void *a, const void *b)
{
    return strverscmp((*(const zmember *const *)a)->name, (*(const zmember *const *)b)->name);
}

static int walk_all(walker *w, const zipdoc *z, const char *pattern, enum wmode mode, const char *label)
{
    const zmember **list = calloc(z->n + 1, sizeof *list);
    if (!list)
        return xfail(w->x, -ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < z->n; i++)
        if (fnmatch(pattern, z->m[i].name, FNM_PATHNAME) == 0)
            list[n++] = &z->m[i];
    qsort(list, n, sizeof *list, by_version);
    for (size_t i = 0; i < n && !w->x->err; i++) {
        if (label) {
            xnewline(w->x);
            xputs(w->x, label);
            xputs(w->x, "\n");
        }
        walk(w, mode, list[i]);
        xnewline(w->x);
    }
    free(list);
    return w->x->err;
}

static int ooxml_props(walker *w, const zipdoc *z)
{
    if (w->x->opt->drop_metadata)
        return 0;
    walk_all(w, z, "docProps/core.xml", W_META, "[document properties]");
    static const char *const app_fields[] = { "Company", "Manager", "HyperlinkBase", NULL };
    w->only = app_fields;
    walk_all(w, z, "docProps/app.xml", W_META, NULL);
    w->only = NULL;
    return walk_all(w, z, "docProps/custom.xml", W_META, "[custom properties]");
}

static int do_docx(walker *w, const zipdoc *z)
{
    xset_extractor(w->x, "docx/libxml2");
    walk_all(w, z, "word/header*.xml", W_WORD, "[header]");
    walk_all(w, z, "word/document.xml", W_WORD, NULL);
    walk_all(w, z, "word/footnotes.xml", W_WORD, "[footnotes]");
    walk_all(w, z, "word/endnotes.xml", W_WORD, "[endnotes]");
    walk_all(w, z, "word/footer*.xml", W_WORD, "[footer]");
    if (!w->x->opt->drop_metadata)
        walk_all(w, z, "word/comments.xml", W_WORD, "[comments]");
    return ooxml_props(w, z);
}

static int do_xlsx(walker *w, const zipdoc *z)
{
    xset_extractor(w->x, "xlsx/libxml2");
    const zmember *m;
    if ((m = zip_find(z, "xl/sharedStrings.xml")) && walk(w, W_SST, m))
        return w->x->err;
    if ((m = zip_find(z, "xl/workbook.xml")) && walk(w, W_WORKBOOK, m))
        return w->x->err;
    if ((m = zip_find(z, "xl/_rels/workbook.xml.rels")) && walk(w, W_RELS, m))
        return w->x->err;
    /* Sheets in workbook order, under their names (always: a sheet name is
     * content, and can carry a customer's name as well as any cell). */
    char *done = calloc(z->n + 1, 1);
    if (!done)
        return xfail(w->x, -ENOMEM, "out of memory");
    for (size_t i = 0; i < w->nsheets && !w->x->err; i++) {
        xnewline(w->x);
        xputs(w->x, "## ");
        xputs(w->x, w->sheets[i].name ? w->sheets[i].name : "sheet");
        xputs(w->x, "\n");
        if (w->sheets[i].target && (m = zip_find(z, w->sheets[i].target)) && !done[m - z->m]) {
            done[m - z->m] = 1;
            walk(w, W_SHEET, m);
        }
    }
    /* Worksheets the workbook does not list are still in the file. */
    for (size_t i = 0; i < z->n && !w->x->err; i++)
        if (!done[i] && fnmatch("xl/worksheets/*.xml", z->m[i].name, FNM_PATHNAME) == 0) {
            xnewline(w->x);
            xputs(w->x, "## (unlisted sheet)\n");
            walk(w, W_SHEET, &z->m[i]);
        }
    free(done);
    if (!w->x->opt->drop_metadata) {
        walk_all(w, z, "xl/comments*.xml", W_META, "[comments]");
        walk_all(w, z, "xl/comments/*.xml", W_META, "[comments]");
        walk_all(w, z, "xl/threadedComments/*.xml", W_META, "[comments]");
    }
    return ooxml_props(w, z);
}

static int do_pptx(walker *w, const zipdoc *z)
{
    xset_extractor(w->x, "pptx/libxml2");
    walk_all(w, z, "ppt/slides/*.xml", W_DRAWING, "[slide]");
    if (!w->x->opt->drop_metadata) {
        walk_all(w, z, "ppt/notesSlides/*.xml", W_DRAWING, "[speaker notes]");
        walk_all(w, z, "ppt/comments/*.xml", W_DRAWING, "[comments]");
        walk_all(w, z, "ppt/commentAuthors.xml", W_DRAWING, NULL);
    }
    return ooxml_props(w, z);
}

static int do_odf(walker *w, const zipdoc *z, const char *kind)
{
    char name[32];
    snprintf(name, sizeof name, "%s/libxml2", kind);
    xset_extractor(w->x, name);
    const zmember *m = zip_find(z, "META-INF/manifest.xml");
    if (m && memmem(m->data, m->len, "encryption-data", 15))
        return xfail(w->x, -EACCES, "encrypted OpenDocument (password required)");
    if (!zip_find(z, "content.xml"))
        return xfail(w->x, -EINVAL, "OpenDocument without content.xml");
    w->scopes = odf_style_scopes;
    walk_all(w, z, "styles.xml", W_ODF, NULL);
    w->scopes = odf_body_scopes;
    walk_all(w, z, "content.xml", W_ODF, NULL);
    if (!w->x->opt->drop_metadata)
        walk_all(w, z, "meta.xml", W_META, "[document properties]");
    return w->x->err;
}

int extract_zipdoc(xctx *x, const void *buf, size_t len)
{
    zipdoc z;
    xset_extractor(x, "zip");
    if (zip_load(x, buf, len, want_member, &z))
        return x->err;
    walker w = { .x = x, .skip_depth = -1, .scope_depth = -1 };
    const zmember *mt = zip_find(&z, "mimetype");
    static const char odf[] = "application/vnd.oasis.opendocument.";
    if (zip_find(&z, "word/document.xml"))
        do_docx(&w, &z);
    else if (zip_find(&z, "xl/workbook.xml"))
        do_xlsx(&w, &z);
    else if (zip_find(&z, "ppt/presentation.xml"))
        do_pptx(&w, &z);
    else if (mt && mt->len > sizeof odf - 1 && memcmp(mt->data, odf, sizeof odf - 1) == 0) {
        const char *sub = (const char *)mt->data + sizeof odf - 1;
        const size_t sublen = mt->len - (sizeof odf - 1);
        if (sublen >= 4 && memcmp(sub, "text", 4) == 0)
            do_odf(&w, &z, "odt");
        else if (sublen >= 11 && memcmp(sub, "spreadsheet", 11) == 0)
            do_odf(&w, &z, "ods");
        else if (sublen >= 12 && memcmp(sub, "presentation", 12) == 0)
            do_odf(&w, &z, "odp");
        else
            xfail(x, -EINVAL, "OpenDocument type not extracted: %.*s", (int)(mt->len > 80 ? 80 : mt->len),
                  (const char *)mt->data);
    } else
        xfail(x, -EINVAL, "zip is not an Office Open XML or OpenDocument document");

    for (size_t i = 0; i < w.nsst; i++)
        free(w.sst[i]);
    free(w.sst);
    free(w.cur);
    for (size_t i = 0; i < w.nsheets; i++) {
        free(w.sheets[i].name);
        free(w.sheets[i].rid);
        free(w.sheets[i].target);
    }
    free(w.sheets);
    zip_free(&z);
    return x->err;
}
