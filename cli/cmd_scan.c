/* cli/cmd_scan.c — `sluice scan`: the sanitized view of files on stdout.
 *
 * Text is streamed through the engine in 1 MiB reads into memory of our
 * own, so memory stays flat whatever the input's size; never from a mapping
 * of the file, whose pages a writer could change between the engine's check
 * and the output. A regular file is looked over first (size, NUL bytes) so
 * that a file refused for them prints nothing: that look alone goes through
 * a read-only mapping, and decides only whether to refuse. UTF-16 text is sanitized whole (it must be transcoded both ways). A file the policy denies, or the engine could not
 * check, prints nothing of its own and makes the exit code 2. --report writes
 * JSON lines of findings (rule, offset, length, action) — never the text. */
#include "cli/cli.h"
#include "common/common.h"
#include "dlp/dlp.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (1u << 20)

typedef struct scan_ctx {
    const char *name;
    FILE *report;
    uint64_t nfindings;
} scan_ctx;

static int write_stdout(void *ctx, const void *buf, size_t len)
{
    (void)ctx;
    return write_full(STDOUT_FILENO, buf, len);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static int report_finding(void *ctx, const dlp_finding *fd)
{
    scan_ctx *c = ctx;
    c->nfindings++;
    if (!c->report)
        return 0;
    fputs("{\"file\":", c->report);
    json_str(c->report, c->name);
    fputs(",\"rule\":", c->report);
    json_str(c->report, fd->rule_id);
    fprintf(c->report, ",\"offset\":%llu,\"length\":%llu,\"action\":\"%s\"}\n",
            (unsigned long long)fd->offset, (unsigned long long)fd->length,
            dlp_action_name(fd->action));
    return 0;
}

/* Whole-buffer path (UTF-16 and small inputs already in memory). */
static int scan_whole(const dlp_policy *p, scan_ctx *c, const uint8_t *buf, size_t len)
{
    dlp_result r;
    int rc = dlp_sanitize(p, buf, len, &r);
    if (rc == 0 && r.extractor[0])
        log_info("msg=\"document extracted\" file=\"%s\" extractor=%s", c->name, r.extractor);
    if (rc) {
        sluice_err("%s: %s: %s", c->name, rc == -EACCES ? "denied" : "could not check", r.reason);
        dlp_result_free(&r);
        return EXIT_ERROR;
    }
    for (size_t i = 0; i < r.nfindings; i++)
        report_finding(c, &r.findings[i]);
    rc = write_full(STDOUT_FILENO, r.data, r.len);
    dlp_result_free(&r);
    if (rc) {
        sluice_err("stdout: %s", strerror(-rc));
        return EXIT_ERROR;
    }
    return c->nfindings ? EXIT_FINDINGS : EXIT_CLEAN;
}

/* The look at a regular file (below) reads its pages where they lie in the
 * page cache, through a read-only mapping: no copy of the file is made for
 * it (a pread pass copied every byte once more than the scan itself). The
 * mapping is only looked at: nothing printed comes from it, so a writer
 * changing it meanwhile changes no output; every byte printed is read again
 * into memory of our own and checked there. A file cut short while looked
 * at raises SIGBUS at the missing pages: caught here, a refusal. */
static sigjmp_buf look_jmp;
static volatile sig_atomic_t looking;

static void on_sigbus(int sig)
{
    if (looking) {
        looking = 0;
        siglongjmp(look_jmp, 1);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* 1 when the `size` bytes mapped at `m` hold a NUL byte, 0 when not, -1
 * when the file shrank under the look. */
static int look_for_nul(const uint8_t *m, size_t size)
{
    struct sigaction sa = {.sa_handler = on_sigbus}, old;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &old) < 0)
        return -1;
    volatile int found = -1;
    if (sigsetjmp(look_jmp, 1) == 0) {
        looking = 1;
        found = memchr(m, 0, size) != NULL;
        looking = 0;
    }
    sigaction(SIGBUS, &old, NULL);
    return found;
}

/* A regular file of `size` bytes is refused before anything of it is
 * printed when the policy's size limit or, for 8-bit text (text8: its
 * encoding), a NUL byte anywhere in it would stop the stream part-way: a
 * first pass looks at it (mapped, see above; where it cannot be mapped,
 * read CHUNK bytes at a time into a buffer of its own). The stream checks every read
 * again, so a file changed in between still ends in a refusal, only after
 * some of its checked bytes. 0, or EXIT_ERROR with the reason said. */
static int precheck_file(const dlp_policy *p, scan_ctx *c, int fd, uint64_t size, int text8,
                         const char *encoding)
{
    const uint64_t max = dlp_policy_max_size(p);
    if (size > max) {
        sluice_err("%s: denied: larger than the policy's limit of %llu bytes", c->name,
                   (unsigned long long)max);
        return EXIT_ERROR;
    }
    if (!text8)
        return 0;
    int nul = 0;
    void *m = size <= SIZE_MAX ? mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    if (m != MAP_FAILED) {
        madvise(m, (size_t)size, MADV_SEQUENTIAL);
        nul = look_for_nul(m, (size_t)size);
        munmap(m, (size_t)size);
        if (nul < 0) {
            sluice_err("%s: could not check: could not read the file through its mapping (cut short "
                       "while read, or a read error)", c->name);
            return EXIT_ERROR;
        }
        goto looked;
    }
    uint8_t *buf = malloc(CHUNK);
    if (!buf) {
        sluice_err("%s: out of memory", c->name);
        return EXIT_ERROR;
    }
    for (uint64_t at = 0; !nul && at < size;) {
        const ssize_t k = pread(fd, buf, CHUNK, (off_t)at);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            sluice_err("%s: %s", c->name, strerror(errno));
            free(buf);
            return EXIT_ERROR;
        }
        if (k == 0)
            break;
        nul = memchr(buf, 0, (size_t)k) != NULL;
        at += (uint64_t)k;
    }
    free(buf);
looked:
    if (nul) {
        sluice_err("%s: could not check: binary data (NUL bytes) inside a file classified as %s text",
                   c->name, encoding);
        return EXIT_ERROR;
    }
    return 0;
}

static int scan_fd(const dlp_policy *p, scan_ctx *c, int fd, const struct stat *st)
{
    uint8_t *buf = malloc(CHUNK);
    if (!buf) {
        sluice_err("%s: out of memory", c->name);
        return EXIT_ERROR;
    }
    ssize_t n = read_full(fd, buf, CHUNK);
    if (n < 0) {
        sluice_err("%s: %s", c->name, strerror((int)-n));
        free(buf);
        return EXIT_ERROR;
    }
    dlp_type t;
    int rc = dlp_classify(p, buf, (size_t)n, &t);
    if (rc || !t.allowed) {
        sluice_err("%s: %s: %s", c->name, rc ? "could not check" : "denied", t.reason);
        free(buf);
        return EXIT_ERROR;
    }
    if (!strncmp(t.encoding, "utf-16", 6) || t.document) {
        /* Transcoding and document extraction need the whole input: read
         * the rest, bounded. */
        size_t len = (size_t)n, cap = CHUNK;
        uint64_t max = dlp_policy_max_size(p);
        for (;;) {
            if (len == cap) {
                if (cap > max) {
                    sluice_err("%s: denied: larger than the policy's limit", c->name);
                    free(buf);
                    return EXIT_ERROR;
                }
                uint8_t *nb = realloc(buf, cap *= 2);
                if (!nb) {
                    free(buf);
                    sluice_err("%s: out of memory", c->name);
                    return EXIT_ERROR;
                }
                buf = nb;
            }
            ssize_t m = read_full(fd, buf + len, cap - len);
            if (m < 0) {
                sluice_err("%s: %s", c->name, strerror((int)-m));
                free(buf);
                return EXIT_ERROR;
            }
            if (m == 0)
                break;
            len += (size_t)m;
        }
        int ex = scan_whole(p, c, buf, len);
        free(buf);
        return ex;
    }
    /* libmagic judged the first MiB; the rest must be text too (see
     * dlp_sanitize): a NUL byte in 8-bit text means binary data. */
    const int text8 = strcmp(t.encoding, "binary") != 0;
    if (st && S_ISREG(st->st_mode) && (uint64_t)st->st_size > (uint64_t)n) {
        /* buf keeps the bytes libmagic judged: they are what the stream
         * starts with (never read again: a writer could have changed them
         * to another type meanwhile), and it goes on from the offset after */
        if (precheck_file(p, c, fd, (uint64_t)st->st_size, text8, t.encoding)) {
            free(buf);
            return EXIT_ERROR;
        }
    }
    dlp_stream *s;
    if ((rc = dlp_stream_new(p, write_stdout, report_finding, c, &s))) {
        free(buf);
        sluice_err("%s: %s", c->name, strerror(-rc));
        return EXIT_ERROR;
    }
    uint64_t total = 0, max = dlp_policy_max_size(p);
    while (n > 0 && !rc) {
        if (text8 && memchr(buf, 0, (size_t)n)) {
            sluice_err("%s: could not check: binary data (NUL bytes) inside a file classified as %s text",
                       c->name, t.encoding);
            rc = -EILSEQ;
            break;
        }
        total += (uint64_t)n;
        if (total > max) {
            sluice_err("%s: denied: larger than the policy's limit of %llu bytes", c->name,
                       (unsigned long long)max);
            rc = -EFBIG;
            break;
        }
        if ((rc = dlp_stream_feed(s, buf, (size_t)n)))
            break;
        n = read_full(fd, buf, CHUNK);
        if (n < 0) {
            sluice_err("%s: %s", c->name, strerror((int)-n));
            rc = (int)n;
        }
    }
    if (!rc)
        rc = dlp_stream_finish(s);
    if (rc && dlp_stream_error(s))
        sluice_err("%s: could not check: %s", c->name, dlp_stream_error(s));
    dlp_stream_free(s);
    free(buf);
    if (rc)
        return EXIT_ERROR;
    return c->nfindings ? EXIT_FINDINGS : EXIT_CLEAN;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sluice scan [--policy FILE] [--report[=FILE]] FILE...\n"
               "  Print the sanitized view of each FILE ('-' for standard input).\n"
               "  --policy FILE   policy to apply (default: $SLUICE_POLICY or the installed default)\n"
               "  --report[=FILE] JSON lines of findings to FILE (default: standard error)\n"
               "exit: 0 nothing found, 1 findings masked, 2 error or denied\n");
}

int cmd_scan(int argc, char **argv)
{
    static const struct option opts[] = {{"policy", required_argument, 0, 'p'},
                                         {"report", optional_argument, 0, 'r'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *policy = NULL, *report = NULL;
    int want_report = 0, o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "p:h", opts, NULL)) != -1) {
        switch (o) {
        case 'p': policy = optarg; break;
        case 'r': want_report = 1; report = optarg; break;
        case 'h': usage(stdout); return EXIT_CLEAN;
        default: return cli_bad_option("scan", argv);
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_ERROR;
    }
    if (!policy)
        policy = cli_default_policy();
    dlp_policy *p;
    dlp_error err;
    int rc = dlp_policy_load(policy, &p, &err);
    if (rc) {
        char msg[1200];
        dlp_error_format(&err, msg, sizeof msg);
        sluice_err("policy: %s", msg);
        return EXIT_ERROR;
    }
    FILE *rep = NULL;
    if (want_report) {
        rep = report ? fopen(report, "w") : stderr;
        if (!rep) {
            sluice_err("%s: %s", report, strerror(errno));
            dlp_policy_free(p);
            return EXIT_ERROR;
        }
    }
    int worst = EXIT_CLEAN;
    for (int i = optind; i < argc; i++) {
        scan_ctx c = {argv[i], rep, 0};
        int ex;
        if (!strcmp(argv[i], "-")) {
            c.name = "(stdin)";
            ex = scan_fd(p, &c, STDIN_FILENO, NULL);
        } else {
            int fd = open(argv[i], O_RDONLY | O_CLOEXEC | O_NONBLOCK);
            struct stat st;
            if (fd < 0) {
                sluice_err("%s: %s", argv[i], strerror(errno));
                ex = EXIT_ERROR;
            } else if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                sluice_err("%s: denied: not a regular file", argv[i]);
                ex = EXIT_ERROR;
            } else {
                fcntl(fd, F_SETFL, 0);
                ex = scan_fd(p, &c, fd, &st);
            }
            if (fd >= 0)
                close(fd);
        }
        if (ex > worst)
            worst = ex;
    }
    if (rep && rep != stderr)
        fclose(rep);
    dlp_policy_free(p);
    return worst;
}
