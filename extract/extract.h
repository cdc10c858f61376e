/* extract/extract.h — text extraction from documents (PDF, Office Open XML,
 * OpenDocument, RTF, HTML, e-mail): the module's whole public surface.
 *
 * Documents are hostile input. extract_text() never parses them in the
 * calling process: a `sluice-extract` helper (found at $SLUICE_EXTRACT, else
 * next to the calling binary) does, in a child that has limited itself
 * (RLIMIT_AS, RLIMIT_CPU, no core, no file writes) and installed a seccomp
 * filter before reading a byte, under a wall-clock timeout, and the text
 * comes back through a bounded channel. By default one helper server per
 * calling process forks such a child per document; SLUICE_EXTRACT_SPAWN=1
 * starts a new helper per document instead. A crash, hang or blow-up in a
 * parser kills only that child; the caller gets a negative code and a
 * reason, and must refuse the file.
 *
 * This library itself links nothing but libc, so sluicefs and the diode do
 * not load poppler, libxml2, libarchive or GMime into their own address space.
 */
#ifndef SLUICE_EXTRACT_H
#define SLUICE_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

typedef struct extract_options {
    int drop_metadata;     /* 1: leave document properties, comments, tracked deletions,
                              speaker notes and mail routing headers out; 0: extract them
                              (they are then masked like body text) */
    uint64_t max_output;   /* bytes of extracted text at most (else refuse); 0: 64 MiB */
    uint64_t max_expanded; /* zip containers: uncompressed bytes read at most; 0: 256 MiB */
    unsigned timeout_ms;   /* wall-clock limit for one extraction; 0: 30 s */
    uint64_t max_memory;   /* address-space limit of the helper process; 0: 1 GiB */
} extract_options;

/* Defaults for every field above (drop_metadata = 0). */
void extract_options_default(extract_options *opt);

typedef struct extract_result {
    char *text;          /* UTF-8 text (malloc'd), NUL-terminated; NULL on failure */
    size_t len;          /* bytes of text, without the NUL */
    char extractor[32];  /* "pdf/poppler", "docx/libxml2", "xlsx/libxml2", "pptx/libxml2",
                            "odt/libxml2", "ods/libxml2", "odp/libxml2", "rtf", "html/libxml2",
                            "eml/gmime"; empty when not even the format was known */
    char reason[200];    /* why it failed: "encrypted PDF", "no text layer", "zip expands past
                            limit", "timeout", ...; empty on success */
} extract_result;

/* 1 when a document of MIME type `mime` (libmagic's, e.g. "application/pdf")
 * is one this module extracts. `head`/`len` (the start of the file; may be
 * NULL/0) let it recognize OOXML and OpenDocument files that libmagic only
 * calls "application/zip" or "application/octet-stream": those count only
 * when the zip's first entries name [Content_Types].xml or an OpenDocument
 * mimetype. A cheap hint, not a parse: extract_text() decides for sure. */
int extract_handles(const char *mime, const void *head, size_t len);

/* Extract the text of `buf`. 0 with out->text set, or a negative errno-style
 * code with out->reason set (the caller refuses the file):
 *   -EINVAL   not a document this module extracts, or malformed/corrupt
 *   -EACCES   encrypted (password-protected) document
 *   -ENODATA  no text to extract (PDF without a text layer)
 *   -EFBIG    text or zip contents past max_output / max_expanded
 *   -ETIMEDOUT past timeout_ms
 *   -ENOMEM   past max_memory
 *   -ECHILD   the helper crashed or misbehaved; -ENOENT it is not installed
 *   -EAGAIN   64 documents already in extraction in this process
 * Never crashes the caller; safe to call from many threads at once (each
 * call runs its own helper). `opt` may be NULL for the defaults.
 * extract_result_free() in every case. */
int extract_text(const void *buf, size_t len, const char *mime, const extract_options *opt,
                 extract_result *out);
void extract_result_free(extract_result *r);

#endif
