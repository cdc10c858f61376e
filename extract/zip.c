/* extract/zip.c — reading the members of a zip container (OOXML,
 * OpenDocument) with libarchive, bounded: total inflated bytes at most
 * max_expanded (zip bombs), a member count limit, the whole archive read to
 * its end so that a truncated or corrupt file is refused rather than half
 * extracted. Never hand-parses zip structures, never writes to disk.
 */
#include "extract/extract_i.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ZIP_MAX_ENTRIES 20000 /* real documents have tens to a few thousand */

static int add_member(xctx *x, zipdoc *z, const char *name, struct archive *a, int64_t declared)
{
    const uint64_t limit = x->opt->max_expanded;
    if (declared > 0 && (uint64_t)declared > limit - x->expanded)
        return xfail(x, -EFBIG, "zip expands past limit (%llu bytes): %.80s declares %lld bytes",
                     (unsigned long long)limit, name, (long long)declared);
    /* Start from the declared size but at most 1 MiB: a member that claims
     * 200 MB and holds 10 bytes must not reserve 200 MB. */
    size_t cap = declared > 0 && declared < (1 << 20) ? (size_t)declared + 1 : 65536, len = 0;
    unsigned char *data = malloc(cap);
    if (!data)
        return xfail(x, -ENOMEM, "out of memory");
    for (;;) {
        if (len == cap) {
            unsigned char *p = realloc(data, cap * 2);
            if (!p) {
                free(data);
                return xfail(x, -ENOMEM, "out of memory");
            }
            data = p;
            cap *= 2;
        }
        /* Never ask for more than the limit still allows: the declared size
         * of a hostile entry may lie. */
        size_t want = cap - len;
        if (want > limit - x->expanded + 1)
            want = (size_t)(limit - x->expanded + 1);
        la_ssize_t n = archive_read_data(a, data + len, want);
        if (n < 0) {
            free(data);
            const char *why = archive_error_string(a);
            if (why && strstr(why, "ncrypt"))
                return xfail(x, -EACCES, "encrypted zip member %.80s", name);
            return xfail(x, -EINVAL, "corrupt zip: %.80s: %.80s", name, why ? why : "read error");
        }
        if (n == 0)
            break;
        len += (size_t)n;
        x->expanded += (uint64_t)n;
        if (x->expanded > limit) {
            free(data);
            return xfail(x, -EFBIG, "zip expands past limit (%llu bytes)", (unsigned long long)limit);
        }
    }
    zmember *m = realloc(z->m, (z->n + 1) * sizeof *m);
    char *nm = strdup(name);
    if (!m || !nm) {
        if (m)
            z->m = m;
        free(nm);
        free(data);
        return xfail(x, -ENOMEM, "out of memory");
    }
    z->m = m;
    m[z->n].name = nm;
    m[z->n].data = data;
    m[z->n].len = len;
    z->n++;
    return 0;
}

int zip_load(xctx *x, const void *buf, size_t len, int (*want)(const char *name), zipdoc *z)
{
    z->m = NULL;
    z->n = 0;
    struct archive *a = archive_read_new();
    if (!a)
        return xfail(x, -ENOMEM, "out of memory");
    /* The seekable reader works from the central directory, as office
     * suites do: a file cut anywhere (even inside the directory, after every
     * member's data) has none and is refused. The streaming reader would
     * accept local headers up to the cut. */
    archive_read_support_format_zip_seekable(a);
    if (archive_read_open_memory(a, buf, len) != ARCHIVE_OK) {
        xfail(x, -EINVAL, "corrupt zip: %.120s", archive_error_string(a) ? archive_error_string(a) : "unreadable");
        archive_read_free(a);
        return x->err;
    }
    struct archive_entry *e;
    size_t entries = 0;
    int r;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        if (++entries > ZIP_MAX_ENTRIES) {
            xfail(x, -EFBIG, "zip has more than %d entries", ZIP_MAX_ENTRIES);
            break;
        }
        const char *name = archive_entry_pathname(e);
        if (name && archive_entry_filetype(e) == AE_IFREG && want(name)) {
            if (archive_entry_is_encrypted(e)) {
                xfail(x, -EACCES, "encrypted zip member %.80s", name);
                break;
            }
            if (zip_find(z, name)) {
                /* Two members of one name: which one a reader uses is
                 * ambiguous, so the file is. */
                xfail(x, -EINVAL, "corrupt zip: duplicate member %.80s", name);
                break;
            }
            int64_t declared = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
            if (add_member(x, z, name, a, declared))
                break;
        } else if (archive_read_data_skip(a) != ARCHIVE_OK) {
            xfail(x, -EINVAL, "corrupt zip: %.120s", archive_error_string(a) ? archive_error_string(a) : "bad entry");
            break;
        }
    }
    if (!x->err && r != ARCHIVE_EOF)
        xfail(x, -EINVAL, "corrupt or truncated zip: %.120s",
              archive_error_string(a) ? archive_error_string(a) : "bad header");
    archive_read_free(a);
    if (x->err) {
        zip_free(z);
        return x->err;
    }
    return 0;
}

const zmember *zip_find(const zipdoc *z, const char *name)
{
    for (size_t i = 0; i < z->n; i++)
        if (strcmp(z->m[i].name, name) == 0)
            return &z->m[i];
    return NULL;
}

void zip_free(zipdoc *z)
{
    for (size_t i = 0; i < z->n; i++) {
        free(z->m[i].name);
        free(z->m[i].data);
    }
    free(z->m);
    z->m = NULL;
    z->n = 0;
}
