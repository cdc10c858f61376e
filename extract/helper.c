/* extract/helper.c — sluice-extract: the process in which documents are
 * parsed. Two uses:
 *
 *   sluice-extract --child ...   started by extract_text() (the library):
 *       stdin is the document (a sealed memfd), stdout a pipe for the framed
 *       result "SLX1 <rc> <extractor>\n<reason>\n<text>". Before touching the
 *       document it closes every other descriptor, limits itself
 *       (RLIMIT_AS, RLIMIT_CPU, no core dumps, no file writes) and installs a
 *       seccomp filter: no exec, no network, no ptrace, no opening files for
 *       writing, no changes to the file system.
 *   sluice-extract [options] FILE   for people and tests: libmagic decides
 *       the type, extract_text() runs the child as above, the text goes to
 *       stdout; a refusal prints `sluice-extract: FILE: reason` and exits 1.
 *
 * Must never write anything but the frame to stdout in child mode, and never
 * run the parsers before the limits and the filter are in place.
 */
#include "common/common.h"
#include "extract/extract_i.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libxml/parser.h>
#include <magic.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define EXTRACT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define EXTRACT_SANITIZED 1
#endif
#endif

/* ---- allocation failures ------------------------------------------------------
 * Under RLIMIT_AS an allocation in poppler, GLib or libxml2 fails somewhere
 * deep inside; some report a parse error, some abort. Interposing malloc in
 * the executable (glibc supports replacing it) lets the helper tell the
 * caller the true reason: the memory limit. Not under sanitizers, which own
 * malloc and reserve terabytes of address space (no RLIMIT_AS there either). */
static volatile int alloc_failed;
#ifndef EXTRACT_SANITIZED
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
void *malloc(size_t n)
{
    void *p = __libc_malloc(n);
    if (!p && n)
        alloc_failed = 1;
    return p;
}
void *calloc(size_t a, size_t b)
{
    void *p = __libc_calloc(a, b);
    if (!p && a && b)
        alloc_failed = 1;
    return p;
}
void *realloc(void *q, size_t n)
{
    void *p = __libc_realloc(q, n);
    if (!p && n)
        alloc_failed = 1;
    return p;
}
#endif

static int limit(int res, rlim_t soft, rlim_t hard)
{
    struct rlimit rl = { .rlim_cur = soft, .rlim_max = hard };
    return setrlimit(res, &rl) == 0 ? 0 : -errno;
}

static int confine(const extract_options *opt)
{
    int rc = 0;
    const rlim_t cpu = opt->timeout_ms / 1000 + 2; /* the caller's wall clock comes first */
    rc |= limit(RLIMIT_CORE, 0, 0);                /* a crash must not dump the document */
    rc |= limit(RLIMIT_FSIZE, 0, 0);
    rc |= limit(RLIMIT_CPU, cpu, cpu + 1);
    rc |= limit(RLIMIT_NOFILE, 64, 64);
#ifndef EXTRACT_SANITIZED
    rc |= limit(RLIMIT_AS, opt->max_memory, opt->max_memory);
#endif
    if (rc)
        return -EPERM;

    scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
    if (!f)
        return -ENOMEM;
    static const int denied[] = {
        SCMP_SYS(execve), SCMP_SYS(execveat), SCMP_SYS(fork), SCMP_SYS(vfork),
        SCMP_SYS(socket), SCMP_SYS(socketpair), SCMP_SYS(connect), SCMP_SYS(bind),
        SCMP_SYS(listen), SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(ptrace),
        SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev), SCMP_SYS(mount),
        SCMP_SYS(umount2), SCMP_SYS(chroot), SCMP_SYS(pivot_root), SCMP_SYS(unshare),
        SCMP_SYS(setns), SCMP_SYS(unlink), SCMP_SYS(unlinkat), SCMP_SYS(rename),
        SCMP_SYS(renameat), SCMP_SYS(renameat2), SCMP_SYS(mkdir), SCMP_SYS(mkdirat),
        SCMP_SYS(rmdir), SCMP_SYS(link), SCMP_SYS(linkat), SCMP_SYS(symlink),
        SCMP_SYS(symlinkat), SCMP_SYS(chmod), SCMP_SYS(fchmod), SCMP_SYS(fchmodat),
        SCMP_SYS(chown), SCMP_SYS(fchown), SCMP_SYS(lchown), SCMP_SYS(fchownat),
        SCMP_SYS(truncate), SCMP_SYS(kill), SCMP_SYS(bpf), SCMP_SYS(perf_event_open),
        SCMP_SYS(keyctl), SCMP_SYS(add_key), SCMP_SYS(request_key), SCMP_SYS(userfaultfd),
        SCMP_SYS(io_uring_setup), SCMP_SYS(init_module), SCMP_SYS(finit_module),
        SCMP_SYS(setuid), SCMP_SYS(setgid), SCMP_SYS(setreuid), SCMP_SYS(setregid),
        SCMP_SYS(setresuid), SCMP_SYS(setresgid), SCMP_SYS(mknod), SCMP_SYS(mknodat),
    };
    for (size_t i = 0; i < sizeof denied / sizeof denied[0] && !rc; i++)
        rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), denied[i], 0);
    /* Opening for writing or creating: fontconfig may try to refresh its
     * cache; it gets EPERM and carries on. */
    static const int opens[] = { SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(creat) };
    for (size_t i = 0; i < 3 && !rc; i++) {
        const unsigned arg = opens[i] == SCMP_SYS(openat) ? 2 : 1;
        if (opens[i] == SCMP_SYS(creat)) {
            rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), opens[i], 0);
            continue;
        }
        rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), opens[i], 1,
                              SCMP_CMP(arg, SCMP_CMP_MASKED_EQ, O_ACCMODE, O_WRONLY));
        if (!rc)
            rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), opens[i], 1,
                                  SCMP_CMP(arg, SCMP_CMP_MASKED_EQ, O_ACCMODE, O_RDWR));
        if (!rc)
            rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), opens[i], 1,
                                  SCMP_CMP(arg, SCMP_CMP_MASKED_EQ, O_CREAT, O_CREAT));
    }
    if (!rc)
        rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(openat2), 0);
    if (!rc)
        rc = seccomp_load(f);
    seccomp_release(f);
    return rc;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return -EINVAL;
    *out = v;
    return 0;
}

/* Write the frame; the reason stays on one line whatever a library said. */
static void write_frame(int rc, const xctx *x)
{
    char head[FILENAME_MAX];
    char reason[sizeof x->reason];
    snprintf(reason, sizeof reason, "%s", x->reason);
    for (char *p = reason; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    int n = snprintf(head, sizeof head, EXTRACT_FRAME_MAGIC " %d %s\n%s\n", rc,
                     x->extractor[0] ? x->extractor : "none", rc ? reason : "");
    if (n < 0 || (size_t)n >= sizeof head)
        _exit(3);
    if (write_full(1, head, (size_t)n) || (rc == 0 && write_full(1, x->text ? x->text : "", x->len)))
        _exit(3);
}

static int child_main(const extract_options *opt, const char *mime)
{
    /* Nothing of the caller's may be reachable: only 0, 1, 2 stay open. */
    close_range(3, ~0U, 0);
    struct stat st;
    if (fstat(0, &st) < 0 || !S_ISREG(st.st_mode))
        return 2;
    const size_t len = (size_t)st.st_size;
    void *buf = NULL;
    if (len > 0) {
        buf = mmap(NULL, len, PROT_READ, MAP_PRIVATE, 0, 0);
        if (buf == MAP_FAILED)
            return 2;
    }
    xctx x = { .opt = opt };
    int rc = confine(opt);
    if (rc)
        xfail(&x, -EPERM, "cannot confine the extractor");
    else {
        xmlInitParser();
        rc = extract_run(&x, len ? buf : "", len, mime);
        if (rc == 0)
            extract_clean_utf8(&x);
    }
    if (alloc_failed && rc != -EFBIG) {
        x.err = 0;
        rc = xfail(&x, -ENOMEM, "memory limit exceeded (%llu bytes)", (unsigned long long)opt->max_memory);
    }
    write_frame(rc, &x);
    /* No cleanup: exiting is the fastest free, and a parser's broken state
     * must not get a chance to run destructors. */
    _exit(0);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sluice-extract [--drop-metadata] [--mime TYPE] [--max-output BYTES]\n"
               "                      [--max-expanded BYTES] [--max-memory BYTES] [--timeout-ms MS]\n"
               "                      [--show-extractor] FILE|-\n"
               "Prints the text of a document (PDF, DOCX, XLSX, PPTX, ODT, ODS, ODP, RTF, HTML,\n"
               "e-mail), extracted in a confined child process. See sluice-documents(7).\n");
}

int main(int argc, char **argv)
{
    extract_options opt;
    extract_options_default(&opt);
    const char *mime = NULL;
    int child = 0, show = 0;
    static const struct option longopts[] = {
        { "child", no_argument, NULL, 'c' },          { "mime", required_argument, NULL, 'm' },
        { "max-output", required_argument, NULL, 'o' }, { "max-expanded", required_argument, NULL, 'e' },
        { "max-memory", required_argument, NULL, 'M' }, { "timeout-ms", required_argument, NULL, 't' },
        { "drop-metadata", no_argument, NULL, 'd' },  { "keep-metadata", no_argument, NULL, 'k' },
        { "show-extractor", no_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    log_init("sluice-extract", LOG_LVL_WARN);
    int c;
    uint64_t v;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': child = 1; break;
        case 'm': mime = optarg; break;
        case 'd': opt.drop_metadata = 1; break;
        case 'k': opt.drop_metadata = 0; break;
        case 's': show = 1; break;
        case 'h': usage(stdout); return 0;
        case 'o': case 'e': case 'M': case 't':
            if (parse_size(optarg, &v) && parse_u64(optarg, &v)) {
                sluice_err("%s: not a size", optarg);
                return 2;
            }
            if (c == 'o') opt.max_output = v;
            else if (c == 'e') opt.max_expanded = v;
            else if (c == 'M') opt.max_memory = v;
            else opt.timeout_ms = v > 3600000 ? 3600000 : (unsigned)v;
            break;
        default: usage(stderr); return 2;
        }
    }
    if (child) {
        if (!mime)
            return 2;
        return child_main(&opt, mime);
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    const char *path = argv[optind];
    uint8_t *data = NULL;
    size_t len = 0;
    int rc;
    if (strcmp(path, "-") == 0) {
        size_t cap = 0;
        for (;;) {
            if (len == cap) {
                cap = cap ? cap * 2 : 1 << 20;
                uint8_t *p = realloc(data, cap);
                if (!p) { sluice_err("-: out of memory"); return 1; }
                data = p;
            }
            ssize_t n = read_full(0, data + len, cap - len);
            if (n < 0) { sluice_err("-: %s", strerror((int)-n)); return 1; }
            len += (size_t)n;
            if (len < cap)
                break;
        }
    } else if ((rc = file_read_all(path, 1ull << 30, &data, &len))) {
        sluice_err("%s: %s", path, strerror(-rc));
        return 1;
    }
    char detected[256] = "";
    if (!mime) {
        magic_t m = magic_open(MAGIC_MIME_TYPE);
        const char *t = m && magic_load(m, NULL) == 0 ? magic_buffer(m, data, len) : NULL;
        snprintf(detected, sizeof detected, "%s", t ? t : "application/octet-stream");
        if (m)
            magic_close(m);
        mime = detected;
    }
    if (!extract_handles(mime, data, len)) {
        sluice_err("%s: not a document type that can be extracted (%s)", path, mime);
        free(data);
        return 1;
    }
    extract_result r;
    rc = extract_text(data, len, mime, &opt, &r);
    free(data);
    if (show)
        fprintf(stderr, "extractor: %s\nmime: %s\n", r.extractor[0] ? r.extractor : "none", mime);
    if (rc) {
        sluice_err("%s: %s", path, r.reason);
        extract_result_free(&r);
        return 1;
    }
    rc = write_full(1, r.text, r.len) ? 1 : 0;
    extract_result_free(&r);
    return rc;
}
