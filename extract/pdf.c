/* extract/pdf.c — PDF text layer through poppler-glib: page text, filled-in
 * form fields, and (unless drop_metadata) the info dictionary, XMP metadata
 * and annotation contents (comments, sticky notes).
 *
 * Never guesses text from images: a PDF whose pages carry no text at all is
 * refused ("no text layer"), and one that needs a password is refused too.
 */
#include "extract/extract_i.h"

#include <errno.h>
#include <poppler.h>
#include <string.h>

static int put_prop(xctx *x, const char *label, gchar *value)
{
    int rc = 0;
    if (value && *value) {
        rc = xputs(x, label);
        if (!rc)
            rc = xputs(x, value);
        if (!rc)
            rc = xnewline(x);
    }
    g_free(value);
    return rc;
}

static int only_space(const char *s)
{
    for (; *s; s++)
        if (!g_ascii_isspace(*s))
            return 0;
    return 1;
}

static int put_forms(xctx *x, PopplerPage *page)
{
    GList *fields = poppler_page_get_form_field_mapping(page);
    for (GList *l = fields; l && !x->err; l = l->next) {
        PopplerFormField *f = ((PopplerFormFieldMapping *)l->data)->field;
        gchar *v = NULL;
        switch (poppler_form_field_get_field_type(f)) {
        case POPPLER_FORM_FIELD_TEXT:
            v = poppler_form_field_text_get_text(f);
            break;
        case POPPLER_FORM_FIELD_CHOICE:
            v = poppler_form_field_choice_get_text(f);
            break;
        default:
            break;
        }
        put_prop(x, "[form field] ", v);
    }
    poppler_page_free_form_field_mapping(fields);
    return x->err;
}

static int put_annots(xctx *x, PopplerPage *page)
{
    GList *annots = poppler_page_get_annot_mapping(page);
    for (GList *l = annots; l && !x->err; l = l->next) {
        PopplerAnnot *a = ((PopplerAnnotMapping *)l->data)->annot;
        if (POPPLER_IS_ANNOT_MARKUP(a))
            put_prop(x, "[annotation author] ", poppler_annot_markup_get_label(POPPLER_ANNOT_MARKUP(a)));
        put_prop(x, "[annotation] ", poppler_annot_get_contents(a));
    }
    poppler_page_free_annot_mapping(annots);
    return x->err;
}

int extract_pdf(xctx *x, const void *buf, size_t len)
{
    xset_extractor(x, "pdf/poppler");
    if (len > G_MAXINT)
        return xfail(x, -EFBIG, "PDF too large");
    GBytes *bytes = g_bytes_new_static(buf, len);
    GError *gerr = NULL;
    PopplerDocument *doc = poppler_document_new_from_bytes(bytes, NULL, &gerr);
    if (!doc) {
        int enc = gerr && gerr->domain == POPPLER_ERROR && gerr->code == POPPLER_ERROR_ENCRYPTED;
        if (enc)
            xfail(x, -EACCES, "encrypted PDF (password required)");
        else
            xfail(x, -EINVAL, "corrupt PDF: %s", gerr ? gerr->message : "cannot be opened");
        if (gerr)
            g_error_free(gerr);
        g_bytes_unref(bytes);
        return x->err;
    }

    if (!x->opt->drop_metadata) {
        put_prop(x, "[title] ", poppler_document_get_title(doc));
        put_prop(x, "[author] ", poppler_document_get_author(doc));
        put_prop(x, "[subject] ", poppler_document_get_subject(doc));
        put_prop(x, "[keywords] ", poppler_document_get_keywords(doc));
        put_prop(x, "[creator] ", poppler_document_get_creator(doc));
        put_prop(x, "[producer] ", poppler_document_get_producer(doc));
        put_prop(x, "[xmp metadata] ", poppler_document_get_metadata(doc));
    }

    const int pages = poppler_document_get_n_pages(doc);
    int text_found = 0;
    for (int i = 0; i < pages && !x->err; i++) {
        PopplerPage *page = poppler_document_get_page(doc, i);
        if (!page)
            continue;
        gchar *t = poppler_page_get_text(page);
        if (t && !only_space(t)) {
            text_found = 1;
            xnewline(x);
            xputs(x, t);
            xnewline(x);
        }
        g_free(t);
        put_forms(x, page);
        if (!x->opt->drop_metadata)
            put_annots(x, page);
        xnewline(x);
        g_object_unref(page);
    }
    g_object_unref(doc);
    g_bytes_unref(bytes);
    if (x->err)
        return x->err;
    if (!text_found)
        return xfail(x, -ENODATA, "no text layer (scanned or image-only PDF, %d page%s)", pages,
                     pages == 1 ? "" : "s");
    return 0;
}
