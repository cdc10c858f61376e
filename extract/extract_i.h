/* extract/extract_i.h — private to extract/: the in-process extractors that
 * run inside the sluice-extract helper (and the fuzz target), never inside
 * sluicefs or the diode. Nothing here may be called from a threaded caller:
 * poppler, GMime and libxml2 are set up once per (single-threaded) process.
 */
#ifndef SLUICE_EXTRACT_I_H
#define SLUICE_EXTRACT_I_H

#include "extract/extract.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Helper exit codes beyond 0 carry no meaning: the result goes in the frame. */
#define EXTRACT_FRAME_MAGIC "SLX1"

/* One extraction: the options, the text built so far and the outcome. */
typedef struct xctx {
    const extract_options *opt;
    char *text;
    size_t len, cap;
    uint64_t expanded; /* zip bytes inflated so far */
    int depth;         /* nesting of documents inside documents (mail attachments) */
    int err;           /* first error (negative errno) */
    char extractor[32];
    char reason[200];
} xctx;

/* Record the first failure; returns err so callers can `return xfail(...)`. */
int xfail(xctx *x, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Append text; -EFBIG (and the reason set) past max_output. */
int xput(xctx *x, const char *s, size_t n);
int xputs(xctx *x, const char *s);
/* Append a line break unless the text is empty or already ends with one. */
int xnewline(xctx *x);
void xset_extractor(xctx *x, const char *name);

/* Dispatch by MIME type (and by content for zip/octet-stream). */
int extract_run(xctx *x, const void *buf, size_t len, const char *mime);
/* Make the text valid UTF-8 without control characters (bar tab/newline). */
void extract_clean_utf8(xctx *x);

/* Formats. Each appends to x and returns 0 or a negative code (xfail set). */
int extract_pdf(xctx *x, const void *buf, size_t len);
int extract_zipdoc(xctx *x, const void *buf, size_t len); /* OOXML and OpenDocument */
int extract_rtf(xctx *x, const void *buf, size_t len);
int extract_html(xctx *x, const void *buf, size_t len);
int extract_eml(xctx *x, const void *buf, size_t len);

/* ---- zip members (zip.c) -------------------------------------------------- */
typedef struct zmember {
    char *name;
    unsigned char *data;
    size_t len;
} zmember;
typedef struct zipdoc {
    zmember *m;
    size_t n;
} zipdoc;
/* Read every member for which want(name) is 1 into memory, checking the
 * whole archive to its end (a truncated or corrupt zip fails), with the
 * uncompressed total bounded by max_expanded. */
int zip_load(xctx *x, const void *buf, size_t len, int (*want)(const char *name), zipdoc *z);
const zmember *zip_find(const zipdoc *z, const char *name);
void zip_free(zipdoc *z);

/* ---- XML walking (xml.c) ----------------------------------------------------
 * A streaming libxml2 reader with entities off, no network, no DTD allowed
 * (none of these formats has one: a DOCTYPE is refused outright, which stops
 * billion-laughs style expansion) and a depth limit. */
enum xml_ev { XML_EV_START, XML_EV_END, XML_EV_TEXT };
typedef struct xml_event {
    enum xml_ev type;
    const char *ns;    /* namespace URI or NULL */
    const char *local; /* local name (START/END) */
    const char *text;  /* TEXT */
    int depth;
    void *reader;      /* for xml_attr() during START */
} xml_event;
typedef int (*xml_fn)(void *ctx, const xml_event *ev);
#define XML_MAX_DEPTH 256
int xml_walk(xctx *x, const char *part, const void *buf, size_t len, xml_fn fn, void *ctx);
/* Attribute by local name (any namespace) during START; malloc'd or NULL. */
char *xml_attr(const xml_event *ev, const char *local);

#endif
