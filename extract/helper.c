/* extract/helper.c — sluice-extract: the process in which documents are
 * parsed. Three uses:
 *
 *   sluice-extract --server      started by extract_text() (the library) once
 *       per calling process: receives requests on stdin (a unix socket) and
 *       forks one child per document, which then acts as --child below on
 *       the descriptors it was handed. Single-threaded, parses nothing.
 *   sluice-extract --child ...   one document: stdin is the document (a
 *       sealed memfd), stdout the channel for the framed result
 *       "SLX1 <rc> <extractor> <textlen>\n<reason>\n<text>". Before touching
 *       the document it closes every other descriptor, limits itself
 *       (RLIMIT_AS, RLIMIT_CPU, no core dumps, no file writes) and installs a
 *       seccomp allowlist (reading, memory, threads, time; files opened
 *       read-only): no exec, no fork, no sockets, no ptrace, no signals to
 *       other processes, no changes to the file system (all EPERM).
 *   sluice-extract [options] FILE   for people and tests: libmagic decides
 *       the type, extract_text() runs the above, the text goes to stdout; a
 *       refusal prints `sluice-extract: FILE: reason` and exits 1.
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
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <poll.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <netinet/in.h>
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

    /* An allowlist: what parsing a document in memory needs, as traced
     * (strace -f over tests/extract and documents through sluicefs).
     * Unlisted calls fail with EPERM, which the parsers report as an
     * error: a refusal, never output the filter did not allow. */
    scmp_filter_ctx f = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (!f)
        return -ENOMEM;
    static const int allowed[] = {
        /* the document (mmap'ed fd 0), the frame (fd 1), library data files
         * read-only (poppler's tables, gconv modules, fonts, time zone) */
        SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(pread64), SCMP_SYS(write), SCMP_SYS(writev),
        SCMP_SYS(close), SCMP_SYS(fstat), SCMP_SYS(stat), SCMP_SYS(lstat), SCMP_SYS(newfstatat),
        SCMP_SYS(statx), SCMP_SYS(lseek), SCMP_SYS(getdents64), SCMP_SYS(getcwd),
        SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(access), SCMP_SYS(faccessat),
        SCMP_SYS(faccessat2), SCMP_SYS(fcntl), SCMP_SYS(fadvise64), SCMP_SYS(poll),
        /* memory, under RLIMIT_AS */
        SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(mprotect),
        SCMP_SYS(madvise),
        /* threads some libraries start (clone is limited to threads below),
         * their locks, signals, exit */
        SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(get_robust_list), SCMP_SYS(rseq),
        SCMP_SYS(set_tid_address), SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(gettid),
        SCMP_SYS(getpid), SCMP_SYS(sched_yield), SCMP_SYS(sched_getaffinity),
        SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),
        SCMP_SYS(sigaltstack), SCMP_SYS(restart_syscall),
        /* time, identity (GLib asks) */
        SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(gettimeofday), SCMP_SYS(time),
        SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep), SCMP_SYS(getrandom), SCMP_SYS(getuid),
        SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid), SCMP_SYS(uname),
        SCMP_SYS(sysinfo), SCMP_SYS(getrlimit), SCMP_SYS(getrusage),
    };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0] && !rc; i++) {
        rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, allowed[i], 0);
        if (rc == -EDOM || rc == -EFAULT) /* not a call on this architecture */
            rc = 0;
    }
    /* Files are opened read-only: no access mode but O_RDONLY, no O_CREAT,
     * no O_TRUNC (which truncates even with O_RDONLY). Fontconfig may try
     * to refresh its cache; it gets EPERM and carries on. openat2's flags
     * are behind a pointer: not allowed. */
    const scmp_datum_t wmask = O_ACCMODE | O_CREAT | O_TRUNC;
    if (!rc)
        rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
                              SCMP_A2(SCMP_CMP_MASKED_EQ, wmask, 0));
    if (!rc) {
        rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(open), 1,
                              SCMP_A1(SCMP_CMP_MASKED_EQ, wmask, 0));
        if (rc == -EDOM || rc == -EFAULT)
            rc = 0;
    }
    /* Threads only: glibc's fork() is clone() without CLONE_THREAD. clone3
     * cannot be filtered by its flags (they are behind a pointer): ENOSYS
     * makes glibc fall back to clone for threads. No grandchild can outlive
     * the helper and write after its result. */
    if (!rc)
        rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
    if (!rc)
        rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    /* Signals to itself only (abort()); limits read, never raised. */
    if (!rc)
        rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                              SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
    if (!rc)
        rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 2,
                              SCMP_A0(SCMP_CMP_EQ, 0), SCMP_A2(SCMP_CMP_EQ, 0));
    /* isatty() from stdio and GLib's logging */
    if (!rc)
        rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)TCGETS));
    static const int prctl_ok[] = { PR_SET_NAME, PR_GET_NAME, PR_SET_VMA, PR_GET_DUMPABLE };
    for (size_t i = 0; i < sizeof prctl_ok / sizeof prctl_ok[0] && !rc; i++)
        rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                              SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)prctl_ok[i]));
#ifdef EXTRACT_SANITIZED
    /* The sanitizers' runtime: LeakSanitizer stops the world with ptrace
     * from a clone that sets itself up with prctl. */
    if (!rc)
        rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(ptrace), 0);
    if (!rc)
        rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 0);
#endif
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
    int n = snprintf(head, sizeof head, EXTRACT_FRAME_MAGIC " %d %s %zu\n%s\n", rc,
                     x->extractor[0] ? x->extractor : "none", rc ? 0 : x->len, rc ? reason : "");
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

/* ---- the extraction server (see extract.c) -------------------------------------------
 * One thread, never parses anything itself: receives "SLXQ drop max_output
 * max_expanded max_memory timeout_ms mime" with the document's memfd and
 * the reply socket, forks a child that becomes a confined helper on those
 * two descriptors, kills it at its deadline, reaps it and appends
 * "SLXS <wait status> <timed out>\n" to its reply. Exits when the library's
 * end of the control socket closes (the calling process is gone). */
#define SERVER_MAX_CHILDREN 64

typedef struct served {
    pid_t pid;
    int reply;
    int64_t deadline;
    int timed_out;
} served;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void reply_status(int fd, int status, int timed_out)
{
    char t[48];
    int n = snprintf(t, sizeof t, "SLXS %d %d\n", status, timed_out);
    /* blocking is short: the library is reading, or has closed (EPIPE) */
    (void)!send(fd, t, (size_t)n, MSG_NOSIGNAL);
}

static int server_main(void)
{
    const int ctl = 0;
    /* descriptors a threaded caller opened without O_CLOEXEC while it
     * spawned us are not ours to keep */
    close_range(3, ~0U, 0);
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);
    const int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        return 1;
    struct rlimit nocore = { 0, 0 };
    setrlimit(RLIMIT_CORE, &nocore);
    /* Set up the parsers' globals once, here, so every child starts warm.
     * (Neither starts a thread: the server must stay single-threaded.) */
    xmlInitParser();
    served kids[SERVER_MAX_CHILDREN];
    size_t nkids = 0;
    for (;;) {
        int64_t now = mono_ms(), wait = -1;
        for (size_t i = 0; i < nkids; i++) {
            if (!kids[i].timed_out && kids[i].deadline <= now) {
                kill(kids[i].pid, SIGKILL);
                kids[i].timed_out = 1;
            } else if (!kids[i].timed_out && (wait < 0 || kids[i].deadline - now < wait))
                wait = kids[i].deadline - now;
        }
        struct pollfd pf[2] = { { .fd = ctl, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
        if (poll(pf, 2, wait < 0 ? -1 : (int)(wait > 60000 ? 60000 : wait) + 1) < 0 && errno != EINTR)
            return 1;
        if (pf[1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) > 0)
                ;
            int st;
            pid_t pid;
            while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
                for (size_t i = 0; i < nkids; i++)
                    if (kids[i].pid == pid) {
                        reply_status(kids[i].reply, st, kids[i].timed_out);
                        close(kids[i].reply);
                        kids[i] = kids[--nkids];
                        break;
                    }
        }
        if (!pf[0].revents)
            continue;
        char msg[512];
        union {
            char buf[CMSG_SPACE(2 * sizeof(int))];
            struct cmsghdr align;
        } u;
        struct iovec iov = { .iov_base = msg, .iov_len = sizeof msg - 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                             .msg_controllen = sizeof u.buf };
        ssize_t n = recvmsg(ctl, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* the library is gone */
        msg[n] = '\0';
        int fds[2] = { -1, -1 };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof fds))
            memcpy(fds, CMSG_DATA(c), sizeof fds);
        extract_options opt;
        extract_options_default(&opt);
        char mime[256];
        unsigned long long mo, me, mm;
        int drop;
        unsigned tmo;
        const int ok = fds[0] >= 0 && fds[1] >= 0 && !(mh.msg_flags & MSG_CTRUNC) &&
                       sscanf(msg, "SLXQ %d %llu %llu %llu %u %255s", &drop, &mo, &me, &mm, &tmo, mime) == 6;
        if (!ok || nkids == SERVER_MAX_CHILDREN) {
            if (fds[1] >= 0) {
                static const char busy[] = EXTRACT_FRAME_MAGIC " -11 none 0\nextraction server busy\n";
                static const char bad[] = EXTRACT_FRAME_MAGIC " -22 none 0\nmalformed request\n";
                (void)!send(fds[1], ok ? busy : bad, ok ? sizeof busy - 1 : sizeof bad - 1, MSG_NOSIGNAL);
                reply_status(fds[1], 0, 0);
            }
            for (int i = 0; i < 2; i++)
                if (fds[i] >= 0)
                    close(fds[i]);
            continue;
        }
        opt.drop_metadata = drop != 0;
        opt.max_output = mo;
        opt.max_expanded = me;
        opt.max_memory = mm;
        opt.timeout_ms = tmo;
        pid_t pid = fork();
        if (pid == 0) {
            /* the child: the document on 0, the reply on 1, nothing else */
            close(sfd);
            sigprocmask(SIG_SETMASK, &old, NULL);
            if (dup2(fds[0], 0) < 0 || dup2(fds[1], 1) < 0)
                _exit(2);
            return child_main(&opt, mime);
        }
        close(fds[0]);
        if (pid < 0) {
            reply_status(fds[1], 2 << 8, 0);
            close(fds[1]);
            continue;
        }
        kids[nkids++] = (served){ .pid = pid, .reply = fds[1], .deadline = mono_ms() + tmo };
    }
    for (size_t i = 0; i < nkids; i++)
        kill(kids[i].pid, SIGKILL);
    return 0;
}

/* --check-sandbox: the same attempts twice in one process, first
 * unconfined ("unconfined NAME: allowed" expected: the attempt is real and
 * can succeed here), then confined as a child is ("NAME: denied" expected).
 * Exit 0 only when every unconfined attempt worked and every confined one
 * was refused (run by the tests, and useful after a libseccomp upgrade).
 * Every attempt is harmless when it works: /bin/true, an empty child, a
 * socket closed at once, and files and directories of its own under /tmp
 * that check_sandbox() removes. */
static int probe_attempts(int confined, const char *tmp, const char *rwfile)
{
    int bad = 0;
#define TRY(name, expr)                                                                  \
    do {                                                                                 \
        const int ok_ = (expr);                                                          \
        if (confined)                                                                    \
            printf("%s: %s\n", name, ok_ ? "ALLOWED" : "denied");                        \
        else                                                                             \
            printf("unconfined %s: %s\n", name, ok_ ? "allowed" : "DENIED");             \
        bad |= confined ? ok_ : !ok_;                                                    \
    } while (0)
    char path[300];
    char *const argv[] = { "/bin/true", NULL };
    if (confined) {
        TRY("execve", execve("/bin/true", argv, argv + 1) == 0);
    } else { /* in a child: working, it would end this probe */
        pid_t c = fork();
        if (c == 0) {
            execve("/bin/true", argv, argv + 1);
            _exit(127);
        }
        int st = 0;
        TRY("execve", c > 0 && waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    TRY("fork", pid >= 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    TRY("socket", fd >= 0);
    if (fd >= 0)
        close(fd);
    snprintf(path, sizeof path, "%s/new-%d", tmp, confined);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    TRY("open for writing", fd >= 0);
    if (fd >= 0)
        close(fd);
    fd = open(rwfile, O_RDWR);
    TRY("open read-write", fd >= 0);
    if (fd >= 0)
        close(fd);
    snprintf(path, sizeof path, "%s/victim-%d", tmp, confined);
    TRY("unlink", unlink(path) == 0);
    snprintf(path, sizeof path, "%s/dir-%d", tmp, confined);
    TRY("mkdir", mkdir(path, 0700) == 0);
    TRY("kill", kill(getppid(), 0) == 0);
#ifndef EXTRACT_SANITIZED
    void *big = malloc((size_t)512 << 20);
    TRY("512 MiB under a 256 MiB limit", big != NULL);
    free(big);
#endif
#undef TRY
    return bad;
}

static int probe_sandbox(const char *tmp)
{
    extract_options opt;
    extract_options_default(&opt);
    opt.max_memory = 256u << 20;
    char rwfile[300];
    snprintf(rwfile, sizeof rwfile, "%s/rw", tmp);
    int bad = probe_attempts(0, tmp, rwfile);
    if (confine(&opt)) {
        printf("confine: failed\n");
        return 1;
    }
    bad |= probe_attempts(1, tmp, rwfile);
    struct rlimit rl;
    const int cores = getrlimit(RLIMIT_CORE, &rl) == 0 && rl.rlim_cur != 0;
    printf("core dumps: %s\n", cores ? "ALLOWED" : "denied");
    const int fd = open("/etc/hostname", O_RDONLY);
    printf("open read-only: %s\n", fd >= 0 ? "allowed" : "DENIED");
    fflush(stdout);
    return bad || cores || fd < 0;
}

/* The probe runs in a child whose stdout is a pipe: RLIMIT_FSIZE 0 would
 * stop it writing to a file, which is what the parent's stdout may be. */
static int check_sandbox(void)
{
    char tmp[] = "/tmp/sluice-extract-probe.XXXXXX";
    if (!mkdtemp(tmp))
        return 1;
    /* what the probe may open read-write, and unlink, in each phase */
    static const char *const mine[] = { "rw", "victim-0", "victim-1" };
    char f[300];
    size_t made = 0;
    for (size_t i = 0; i < sizeof mine / sizeof mine[0]; i++) {
        snprintf(f, sizeof f, "%s/%s", tmp, mine[i]);
        const int fd = open(f, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        made += fd >= 0;
        if (fd >= 0)
            close(fd);
    }
    int p[2];
    if (made != sizeof mine / sizeof mine[0] || pipe(p) < 0)
        return 1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        _exit(probe_sandbox(tmp));
    }
    close(p[1]);
    char buf[4096];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) > 0)
        (void)!write(1, buf, (size_t)n);
    close(p[0]);
    int st;
    const int failed = waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    static const char *const left[] = { "rw", "victim-0", "victim-1", "new-0", "new-1" };
    for (size_t i = 0; i < sizeof left / sizeof left[0]; i++) {
        snprintf(f, sizeof f, "%s/%s", tmp, left[i]);
        unlink(f);
    }
    for (int i = 0; i < 2; i++) {
        snprintf(f, sizeof f, "%s/dir-%d", tmp, i);
        rmdir(f);
    }
    rmdir(tmp);
    if (failed) {
        printf("sandbox check failed\n");
        return 1;
    }
    return 0;
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
        { "child", no_argument, NULL, 'c' },          { "server", no_argument, NULL, 'S' },          { "mime", required_argument, NULL, 'm' },
        { "max-output", required_argument, NULL, 'o' }, { "max-expanded", required_argument, NULL, 'e' },
        { "max-memory", required_argument, NULL, 'M' }, { "timeout-ms", required_argument, NULL, 't' },
        { "drop-metadata", no_argument, NULL, 'd' },  { "keep-metadata", no_argument, NULL, 'k' },
        { "show-extractor", no_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' },
        { "check-sandbox", no_argument, NULL, 'C' }, { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    log_init("sluice-extract", LOG_LVL_WARN);
    int c;
    uint64_t v;
    opterr = 0; /* errors below, in sluice's own format */
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': child = 1; break;
        case 'S': child = 2; break;
        case 'C': return check_sandbox();
        case 'm': mime = optarg; break;
        case 'd': opt.drop_metadata = 1; break;
        case 'k': opt.drop_metadata = 0; break;
        case 's': show = 1; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("sluice-extract %s\n", SLUICE_VERSION); return 0;
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
        default:
            sluice_bad_option(NULL, argv);
            return 2;
        }
    }
    if (child == 2)
        return server_main();
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
