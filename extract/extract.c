/* extract/extract.c — the caller's side of extraction: which MIME types are
 * documents, and getting one document's text from a confined sluice-extract
 * process under limits, through a bounded channel.
 *
 * Why separate processes started with posix_spawn, not fork(): the callers
 * (sluicefs, the diode) are multithreaded. A forked child of a threaded
 * process may only call async-signal-safe functions (another thread may hold
 * malloc's or GLib's locks at the moment of the fork), and poppler, libxml2
 * and GMime are nothing like that. posix_spawn (vfork+exec in glibc) starts a
 * fresh process image without copying the caller's memory, so the parsers
 * never share an address space, a lock or a file descriptor with the caller,
 * and this library links no parser at all.
 *
 * Two ways to run it, same confinement and result:
 *   served (default)  one `sluice-extract --server` per calling process,
 *       spawned on first use, forks a fresh confined child per document:
 *       about 10 ms of CPU per document instead of about 70 ms for exec'ing
 *       the helper and mapping its ~70 libraries each time;
 *   spawned (SLUICE_EXTRACT_SPAWN=1)  one `sluice-extract --child` per
 *       document.
 *
 * Must never: parse a document in this process, block much past timeout_ms,
 * trust the helper's output beyond its framing (it runs on hostile input),
 * or leave a child behind (every helper started here is reaped).
 */
#include "extract/extract_i.h"
#include "common/common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A sanitizer build (make sanitize): see helper_env below. */
#if defined(__SANITIZE_ADDRESS__)
#define EXTRACT_CALLER_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EXTRACT_CALLER_SANITIZED 1
#endif
#endif
#define HELPER_SANITIZER_EXIT 86
#define HELPER_SANITIZER_EXIT_S "86"

#ifndef SLUICE_EXTRACT_DEFAULT
#define SLUICE_EXTRACT_DEFAULT "/usr/local/bin/sluice-extract"
#endif

#define FRAME_HEADER_MAX 512 /* "SLX1 rc extractor\nreason\n" */

void extract_options_default(extract_options *opt)
{
    opt->drop_metadata = 0;
    opt->max_output = 64ull << 20;
    opt->max_expanded = 256ull << 20;
    opt->timeout_ms = 30000;
    opt->max_memory = 1ull << 30;
}

static int mime_eq(const char *mime, const char *what)
{
    size_t n = strlen(what);
    return strncasecmp(mime, what, n) == 0 && (mime[n] == '\0' || mime[n] == ';' || mime[n] == ' ');
}

int extract_handles(const char *mime, const void *head, size_t len)
{
    static const char *const types[] = {
        "application/pdf", "application/x-pdf", "text/rtf", "application/rtf", "text/html",
        "application/xhtml+xml", "message/rfc822",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.template",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.template",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.openxmlformats-officedocument.presentationml.template",
        "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.text-template",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.spreadsheet-template",
        "application/vnd.oasis.opendocument.presentation",
        "application/vnd.oasis.opendocument.presentation-template",
    };
    if (!mime)
        return 0;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (mime_eq(mime, types[i]))
            return 1;
    /* libmagic calls some OOXML files (entries in an unusual order, written
     * by other tools) only "application/zip" or "application/octet-stream";
     * their first local headers still name the parts that say what they are. */
    if ((mime_eq(mime, "application/zip") || mime_eq(mime, "application/octet-stream")) && head &&
        len >= 4 && memcmp(head, "PK\003\004", 4) == 0) {
        const size_t n = len < 65536 ? len : 65536;
        static const char odf[] = "mimetypeapplication/vnd.oasis.opendocument.";
        if (memmem(head, n, "[Content_Types].xml", 19) || memmem(head, n, odf, sizeof odf - 1))
            return 1;
    }
    return 0;
}

void extract_result_free(extract_result *r)
{
    if (!r)
        return;
    free(r->text);
    r->text = NULL;
    r->len = 0;
}

static int fail(extract_result *out, int err, const char *why)
{
    free(out->text);
    out->text = NULL;
    out->len = 0;
    snprintf(out->reason, sizeof out->reason, "%s", why);
    return err;
}

/* The helper: $SLUICE_EXTRACT, else next to the calling program (installed
 * binaries sit together in one bin/, built ones in build/), else the
 * configured install path. */
static int helper_path(char *buf, size_t n)
{
    const char *env = secure_getenv("SLUICE_EXTRACT");
    if (env && *env) {
        /* Checked here, not left to posix_spawn: where it is emulated with
         * fork (valgrind), a failed exec is only an exit status 127. */
        snprintf(buf, n, "%s", env);
        return access(buf, X_OK) == 0 ? 0 : -ENOENT;
    }
    char self[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k > 0) {
        self[k] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            if ((size_t)snprintf(buf, n, "%s/sluice-extract", self) < n && access(buf, X_OK) == 0)
                return 0;
        }
    }
    snprintf(buf, n, "%s", SLUICE_EXTRACT_DEFAULT);
    return access(buf, X_OK) == 0 ? 0 : -ENOENT;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parse the child's frame "SLX1 <rc> <extractor> <textlen>\n<reason>\n<text>":
 * the text must be exactly as long as declared (a helper that died while
 * writing leaves a short one, which is refused). */
static int parse_frame(char *buf, size_t len, extract_result *out)
{
    char *nl1 = memchr(buf, '\n', len < FRAME_HEADER_MAX ? len : FRAME_HEADER_MAX);
    if (!nl1 || len < 5 || memcmp(buf, EXTRACT_FRAME_MAGIC " ", 5) != 0)
        return fail(out, -ECHILD, "extractor produced no result");
    char *nl2 = memchr(nl1 + 1, '\n', (size_t)(buf + len - (nl1 + 1)));
    if (!nl2 || nl2 - nl1 > (ptrdiff_t)sizeof out->reason)
        return fail(out, -ECHILD, "extractor produced a malformed result");
    *nl1 = '\0';
    char ext[32];
    long rc;
    unsigned long long tlen;
    int used = 0;
    if (sscanf(buf + 5, "%ld %31s %llu%n", &rc, ext, &tlen, &used) != 3 || buf[5 + used] != '\0' ||
        rc > 0 || rc < -4095)
        return fail(out, -ECHILD, "extractor produced a malformed result");
    snprintf(out->extractor, sizeof out->extractor, "%s", strcmp(ext, "none") ? ext : "");
    *nl2 = '\0';
    snprintf(out->reason, sizeof out->reason, "%s", nl1 + 1);
    const size_t have = (size_t)(buf + len - (nl2 + 1));
    if (rc != 0) {
        if (!out->reason[0])
            snprintf(out->reason, sizeof out->reason, "extraction failed");
        return (int)rc;
    }
    if (tlen != have)
        return fail(out, -ECHILD, "extractor result incomplete");
    memmove(buf, nl2 + 1, have);
    buf[have] = '\0';
    out->text = buf;
    out->len = have;
    out->reason[0] = '\0';
    return 0;
}

/* What a helper's end says, when it did not end by writing its result. */
static int status_result(int status, int timed_out, extract_result *out)
{
    if (timed_out)
        return fail(out, -ETIMEDOUT, "timeout");
    if (WIFSIGNALED(status)) {
        const int sig = WTERMSIG(status);
        char msg[80];
        if (sig == SIGXCPU || sig == SIGKILL)
            return fail(out, -ETIMEDOUT, "timeout (CPU limit)");
        if (sig == SIGABRT)
            return fail(out, -ENOMEM, "extractor aborted (memory limit or internal error)");
        snprintf(msg, sizeof msg, "extractor crashed (signal %d)", sig);
        return fail(out, -ECHILD, msg);
    }
#ifdef EXTRACT_CALLER_SANITIZED
    if (WIFEXITED(status) && WEXITSTATUS(status) == HELPER_SANITIZER_EXIT) {
        sluice_sanitizer_report("sluice-extract helper: a sanitizer error (exit 86); run the "
                                "document through `sluice-extract --child` to see it");
        return fail(out, -ECHILD, "extractor hit a sanitizer error");
    }
#endif
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fail(out, -ECHILD, "extractor exited with an error");
    return 0;
}

/* Has process pid exited? Leaves it unreaped (WNOWAIT): the caller reaps. */
static int has_exited(pid_t pid)
{
    siginfo_t si = { 0 };
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

/* Poll interval when the child's exit cannot be watched through a pidfd. */
#define EXIT_POLL_MS 20

/* Read fd to its end and, with pid > 0, until that process has exited
 * (watched through pidfd, or when pidfd_open failed -- EMFILE, a kernel
 * before 5.3, valgrind -- by polling waitid every EXIT_POLL_MS), at most
 * cap_max bytes, before the deadline. */
static int collect(int fd, pid_t pid, int pidfd, int64_t deadline, size_t cap_max, char **bufp,
                   size_t *lenp, const char **why)
{
    size_t cap = 65536, got = 0;
    char *res = malloc(cap + 1);
    if (!res)
        return *why = "out of memory", -ENOMEM;
    int err = 0, eof = 0, exited = pid <= 0;
    while (!(eof && exited)) {
        if (!exited && pidfd < 0 && has_exited(pid)) {
            exited = 1;
            continue;
        }
        const int64_t left = deadline - now_ms();
        if (left <= 0) {
            err = -ETIMEDOUT, *why = "timeout";
            break;
        }
        int wait_ms = (int)(left > INT_MAX ? INT_MAX : left);
        if (!exited && pidfd < 0 && wait_ms > EXIT_POLL_MS)
            wait_ms = EXIT_POLL_MS;
        struct pollfd pf[2] = { { .fd = eof ? -1 : fd, .events = POLLIN },
                                { .fd = exited ? -1 : pidfd, .events = POLLIN } };
        int n = poll(pf, 2, wait_ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err = -errno, *why = "poll failed";
            break;
        }
        if (pf[1].revents)
            exited = 1;
        if (pf[0].revents) {
            if (got == cap) {
                if (cap >= cap_max) {
                    err = -EFBIG, *why = "extracted text exceeds the output limit";
                    break;
                }
                size_t ncap = cap * 2 > cap_max ? cap_max : cap * 2;
                char *p = realloc(res, ncap + 1);
                if (!p) {
                    err = -ENOMEM, *why = "out of memory";
                    break;
                }
                res = p;
                cap = ncap;
            }
            ssize_t k = read(fd, res + got, cap - got);
            if (k < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (k <= 0)
                eof = 1;
            else
                got += (size_t)k;
        }
    }
    if (err) {
        free(res);
        return err;
    }
    *bufp = res;
    *lenp = got;
    return 0;
}

#ifdef EXTRACT_CALLER_SANITIZED
/* Sanitizer builds (make sanitize): the helper's stderr is /dev/null and it
 * may create no file once confined, so its sanitizer reports cannot reach
 * tests/run. Instead a sanitizer error ends it with this exit code, which
 * status_result() turns into a report in the caller's own report file (the
 * test fails; run the document through `sluice-extract --child` by hand to
 * see the report). detect_leaks=0: LeakSanitizer stops the process's
 * threads with clone() and ptrace(), which the helper's seccomp filter
 * refuses, so it could only fail at exit; the per-document children leave
 * with _exit() and are never leak-checked anyway. The parsers' leaks are
 * checked in process: test_extract under `make sanitize` and `make
 * memcheck`, and the fuzz target. */
static char *const helper_env[] = { "PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8",
                                    "ASAN_OPTIONS=exitcode=" HELPER_SANITIZER_EXIT_S ":detect_leaks=0",
                                    "UBSAN_OPTIONS=exitcode=" HELPER_SANITIZER_EXIT_S ":print_stacktrace=1",
                                    NULL };
#else
static char *const helper_env[] = { "PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8", NULL };
#endif

/* posix_spawn with stdin/stdout set, stderr to /dev/null, and a clean
 * signal state (the caller's threads may block signals or ignore SIGPIPE
 * and SIGCHLD; the helper starts with none blocked and the defaults). */
static int spawn(const char *path, char *const argv[], int in_fd, int out_fd, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc)
        return -rc;
    rc = posix_spawnattr_init(&at);
    if (rc) {
        posix_spawn_file_actions_destroy(&fa);
        return -rc;
    }
    posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    if (out_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    else
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    const int sigs[] = { SIGPIPE, SIGCHLD, SIGXCPU, SIGXFSZ, SIGSEGV, SIGBUS, SIGABRT,
                         SIGTERM, SIGINT, SIGHUP, SIGALRM, SIGUSR1, SIGUSR2 };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&defaults, sigs[i]);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &defaults);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    /* A fixed, small environment: nothing of the caller's (keys, paths,
     * LD_PRELOAD, G_DEBUG...) reaches a process that parses hostile files. */
    rc = posix_spawn(pid, path, &fa, &at, argv, helper_env);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return -rc;
}

/* ---- one helper per document ------------------------------------------------------ */
static int run_spawned(const char *path, int in_fd, const extract_options *opt, const char *mime,
                       extract_result *out)
{
    char a_out[24], a_exp[24], a_mem[24], a_ms[16];
    snprintf(a_out, sizeof a_out, "%llu", (unsigned long long)opt->max_output);
    snprintf(a_exp, sizeof a_exp, "%llu", (unsigned long long)opt->max_expanded);
    snprintf(a_mem, sizeof a_mem, "%llu", (unsigned long long)opt->max_memory);
    snprintf(a_ms, sizeof a_ms, "%u", opt->timeout_ms);
    char *const argv[] = {
        "sluice-extract", "--child", "--mime", (char *)mime, "--max-output", a_out,
        "--max-expanded", a_exp, "--max-memory", a_mem, "--timeout-ms", a_ms,
        opt->drop_metadata ? "--drop-metadata" : "--keep-metadata", NULL,
    };
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return fail(out, -errno, "cannot create a pipe");
    pid_t pid;
    int rc = spawn(path, argv, in_fd, pfd[1], &pid);
    close(pfd[1]);
    if (rc) {
        close(pfd[0]);
        return fail(out, rc, "cannot start the sluice-extract helper");
    }
    /* The helper's exit is watched through a pidfd, so a helper that closes
     * its stdout and then hangs is still killed at the deadline. */
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    char *res = NULL;
    size_t got = 0;
    const char *why = NULL;
    int err = collect(pfd[0], pid, pidfd, now_ms() + opt->timeout_ms,
                      (size_t)opt->max_output + FRAME_HEADER_MAX, &res, &got, &why);
    close(pfd[0]);
    if (err)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (pidfd >= 0)
        close(pidfd);
    if (err)
        return fail(out, err, why);
    rc = status_result(status, 0, out);
    if (rc == 0)
        rc = parse_frame(res, got, out);
    if (rc)
        free(res);
    return rc;
}

/* ---- the extraction server ------------------------------------------------------------
 * Starting the helper costs more than most extractions (it maps ~70 shared
 * libraries: poppler alone brings cairo, NSS, lcms...). So by default one
 * `sluice-extract --server` per calling process, started with posix_spawn
 * like the helper above, forks a fresh single-threaded child per document
 * (fork is safe there: the server has one thread and never parsed anything)
 * and that child confines itself exactly as a spawned helper does. The
 * server enforces the timeout, kills and reaps, and appends the child's wait
 * status to the result: "SLXS <status> <timed out>\n", always the last line.
 * The library keeps its own deadline too: a server that misses one is killed
 * and replaced. SLUICE_EXTRACT_SPAWN=1 uses a new helper per document. */
#define SERVER_UNUSABLE 1 /* run_served: the server failed; try a spawned helper */
#define SERVER_MAX_FAILURES 3
static pthread_mutex_t srv_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int srv_failures; /* in a row; at SERVER_MAX_FAILURES, spawn from then on */
static int srv_fd = -1;
static pid_t srv_pid = -1, srv_owner = -1;

static void server_stop_locked(void)
{
    if (srv_fd >= 0)
        close(srv_fd);
    if (srv_pid > 0 && srv_owner == getpid()) {
        kill(srv_pid, SIGKILL);
        while (waitpid(srv_pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    srv_fd = -1;
    srv_pid = -1;
}

static int server_start_locked(const char *path)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    char *const argv[] = { "sluice-extract", "--server", NULL };
    pid_t pid;
    int rc = spawn(path, argv, sv[1], -1, &pid);
    close(sv[1]);
    if (rc) {
        close(sv[0]);
        return rc;
    }
    srv_fd = sv[0];
    srv_pid = pid;
    srv_owner = getpid();
    return 0;
}

/* Hand one request (text + the document's memfd + the reply socket) to the
 * server, starting or restarting it as needed. */
static int server_send(const char *path, const char *msg, int in_fd, int reply_fd, pid_t *server)
{
    pthread_mutex_lock(&srv_lock);
    if (srv_owner != getpid()) {
        /* we are a fork of the process that started it: not ours to use */
        if (srv_fd >= 0)
            close(srv_fd);
        srv_fd = -1;
        srv_pid = -1;
    }
    int rc = -EPIPE;
    for (int attempt = 0; attempt < 2 && rc; attempt++) {
        if (srv_fd < 0 && (rc = server_start_locked(path)) != 0)
            break;
        int fds[2] = { in_fd, reply_fd };
        union {
            char buf[CMSG_SPACE(sizeof fds)];
            struct cmsghdr align;
        } u;
        memset(&u, 0, sizeof u);
        struct iovec iov = { .iov_base = (void *)msg, .iov_len = strlen(msg) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                             .msg_controllen = sizeof u.buf };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof fds);
        memcpy(CMSG_DATA(c), fds, sizeof fds);
        ssize_t n;
        do
            n = sendmsg(srv_fd, &mh, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        rc = n == (ssize_t)iov.iov_len ? 0 : -EPIPE;
        if (rc)
            server_stop_locked(); /* died since the last request: start anew */
    }
    *server = srv_pid;
    pthread_mutex_unlock(&srv_lock);
    return rc;
}

static int run_served(const char *path, int in_fd, const extract_options *opt, const char *mime,
                      extract_result *out)
{
    char msg[400];
    int n = snprintf(msg, sizeof msg, "SLXQ %d %llu %llu %llu %u %s", opt->drop_metadata ? 1 : 0,
                     (unsigned long long)opt->max_output, (unsigned long long)opt->max_expanded,
                     (unsigned long long)opt->max_memory, opt->timeout_ms, mime);
    if (n < 0 || (size_t)n >= sizeof msg)
        return fail(out, -EINVAL, "MIME type too long");
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return fail(out, -errno, "cannot create a socket pair");
    pid_t server;
    int rc = server_send(path, msg, in_fd, sv[1], &server);
    close(sv[1]);
    if (rc) {
        close(sv[0]);
        return rc == -ENOENT ? fail(out, -ENOENT, "sluice-extract helper not found (set SLUICE_EXTRACT)")
                             : SERVER_UNUSABLE;
    }
    char *res = NULL;
    size_t got = 0;
    const char *why = NULL;
    /* The server kills the child at timeout_ms; a second more is for it. */
    int err = collect(sv[0], 0, -1, now_ms() + opt->timeout_ms + 1000,
                      (size_t)opt->max_output + FRAME_HEADER_MAX + 64, &res, &got, &why);
    close(sv[0]);
    if (err) {
        if (err == -ETIMEDOUT) {
            pthread_mutex_lock(&srv_lock);
            if (srv_pid == server)
                server_stop_locked();
            pthread_mutex_unlock(&srv_lock);
        }
        return fail(out, err, why);
    }
    /* The server's "SLXS <status> <timed out>\n" ends the reply, right after
     * whatever the child wrote (its text need not end with a newline): the
     * last "SLXS " in the reply's final bytes. */
    int status = 0, timed_out = 0;
    char *last = NULL;
    if (got >= 2 && res[got - 1] == '\n') {
        res[got - 1] = '\0';
        for (size_t i = got - 1; i-- > 0 && got - i < 64;)
            if (memcmp(res + i, "SLXS ", 5) == 0) {
                last = res + i;
                break;
            }
    }
    if (!last || sscanf(last, "SLXS %d %d", &status, &timed_out) != 2) {
        free(res);
        return SERVER_UNUSABLE; /* the server died: it parses nothing, so not the document's doing */
    }
    rc = status_result(status, timed_out, out);
    if (rc == 0)
        rc = parse_frame(res, (size_t)(last - res), out);
    if (rc)
        free(res);
    return rc;
}

int extract_text(const void *buf, size_t len, const char *mime, const extract_options *opt_in,
                 extract_result *out)
{
    memset(out, 0, sizeof *out);
    extract_options opt;
    extract_options_default(&opt);
    if (opt_in) {
        opt.drop_metadata = opt_in->drop_metadata;
        if (opt_in->max_output)
            opt.max_output = opt_in->max_output;
        if (opt_in->max_expanded)
            opt.max_expanded = opt_in->max_expanded;
        if (opt_in->timeout_ms)
            opt.timeout_ms = opt_in->timeout_ms;
        if (opt_in->max_memory)
            opt.max_memory = opt_in->max_memory;
    }
    if (!mime || !*mime || strlen(mime) > 200 || strpbrk(mime, "\n\r \t"))
        return fail(out, -EINVAL, "no valid MIME type given");
    if (opt.max_output > SIZE_MAX / 2 - FRAME_HEADER_MAX)
        opt.max_output = SIZE_MAX / 2 - FRAME_HEADER_MAX;
    if (opt.timeout_ms > 3600000)
        opt.timeout_ms = 3600000;

    char path[PATH_MAX];
    if (helper_path(path, sizeof path))
        return fail(out, -ENOENT, "sluice-extract helper not found (set SLUICE_EXTRACT)");

    /* The document goes to the helper's stdin as a sealed memfd: no temp
     * file, no second pipe to deadlock on, and the helper cannot change it. */
    int in_fd = memfd_create("sluice-extract-input", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (in_fd < 0)
        return fail(out, -errno, "cannot create the input buffer");
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(in_fd, (const char *)buf + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? -errno : -EIO;
            close(in_fd);
            return fail(out, e, "cannot fill the input buffer");
        }
        off += (size_t)n;
    }
    fcntl(in_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    const char *sp = secure_getenv("SLUICE_EXTRACT_SPAWN");
    int rc = SERVER_UNUSABLE;
    if (!(sp && *sp && strcmp(sp, "0")) && atomic_load(&srv_failures) < SERVER_MAX_FAILURES) {
        /* A server can be unusable where a helper is not: a caller that
         * confined itself with seccomp before the first document (the diode
         * sender forbids recvmsg) passes its filter on to the server, which
         * is then killed on its first request. Such a caller gets a spawned
         * helper for that document, and for every one after a few failures. */
        rc = run_served(path, in_fd, &opt, mime, out);
        if (rc == SERVER_UNUSABLE)
            atomic_fetch_add(&srv_failures, 1);
        else
            atomic_store(&srv_failures, 0);
    }
    if (rc == SERVER_UNUSABLE) {
        memset(out, 0, sizeof *out);
        rc = run_spawned(path, in_fd, &opt, mime, out);
    }
    close(in_fd);
    return rc;
}
