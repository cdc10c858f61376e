/* diode/sandbox.c — confinement of each side of the diode once it is set
 * up (channel open, vault or source open, keys read, ledger open).
 *
 * diode_confine_sender() / diode_confine_receiver(), in this order:
 *   1. the user: drop to an unprivileged user when one is configured;
 *   2. Landlock: the sender may read only SOURCE_DIR (and what running the
 *      document-extraction helper needs: the helper, the loader, system
 *      libraries), append to its report and write its ledger's directory;
 *      the receiver may read and write only the vault, its staging
 *      directory and its ledger's directory, and read its key file. Neither
 *      may read anything else (no /etc/shadow, no neighbour of SOURCE);
 *   3. seccomp (libseccomp): an allowlist of the calls each side makes,
 *      traced with strace -f over tests/diode. Unlisted calls fail with
 *      EPERM. The one-way rules kill the process instead: the receiver is
 *      killed if it ever tries to send, connect or write on its channel,
 *      the sender if it tries to receive or read on its channel. A
 *      direction violation is never an accident of a missed library path;
 *      it is the one thing a diode must make impossible.
 *
 * Must never: return 0 with a layer the kernel offers left unapplied, let
 * the receiver keep any way to emit on its channel, or run before setup is
 * complete (whatever is opened later must be reachable under the rules).
 */
#include "diode/diode.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <link.h>
#include <linux/landlock.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef SLUICE_EXTRACT_INSTALLED
#define SLUICE_EXTRACT_INSTALLED "/usr/local/bin/sluice-extract"
#endif
#if defined(__SANITIZE_ADDRESS__)
#define DIODE_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DIODE_SANITIZED 1
#endif
#endif

/* ---- the direction rules (part of the allowlist, 3.) ------------------------------ */

static int deny_all(scmp_filter_ctx ctx, const int *calls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, calls[i], 0);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int deny_on_fd(scmp_filter_ctx ctx, const int *calls, size_t n, int fd)
{
    for (size_t i = 0; i < n; i++) {
        int rc = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, calls[i], 1,
                                  SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)fd));
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* What each side must never do (killed), and on its channel. */
static const int rx_never[] = {SCMP_SYS(sendto), SCMP_SYS(sendmsg), SCMP_SYS(sendmmsg),
                               SCMP_SYS(connect), SCMP_SYS(listen), SCMP_SYS(accept),
                               SCMP_SYS(accept4)};
static const int rx_never_on_chan[] = {SCMP_SYS(write), SCMP_SYS(writev), SCMP_SYS(pwrite64),
                                       SCMP_SYS(pwritev), SCMP_SYS(pwritev2), SCMP_SYS(sendfile)};
static const int tx_never[] = {SCMP_SYS(recvfrom), SCMP_SYS(recvmsg), SCMP_SYS(recvmmsg),
                               SCMP_SYS(listen), SCMP_SYS(accept), SCMP_SYS(accept4)};
static const int tx_never_on_chan[] = {SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(pread64),
                                       SCMP_SYS(preadv), SCMP_SYS(preadv2)};

/* ---- 1. the user ------------------------------------------------------------------ */

static int drop_user(const char *user)
{
    if (!user || !*user)
        return 0;
    const struct passwd *pw = getpwnam(user);
    if (!pw) {
        log_error("msg=\"cannot drop privileges: no such user\" user=\"%s\"", user);
        return -ENOENT;
    }
    const uid_t uid = pw->pw_uid;
    const gid_t gid = pw->pw_gid;
    if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
        const int e = errno;
        log_error("msg=\"cannot drop privileges\" user=\"%s\" err=\"%s\"", user, strerror(e));
        return -e;
    }
    if (uid != 0 && (setresuid(0, 0, 0) == 0 || geteuid() == 0))
        return -EPERM; /* the drop did not hold */
    log_info("msg=\"privileges dropped\" user=\"%s\" uid=%u gid=%u", user, (unsigned)uid,
             (unsigned)gid);
    return 0;
}

/* ---- 2. Landlock --------------------------------------------------------------------- */

#define LL_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define LL_EXEC (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE)

static long ll_create_ruleset(const struct landlock_ruleset_attr *a, size_t size, uint32_t flags)
{
    return syscall(SYS_landlock_create_ruleset, a, size, flags);
}

/* Allow `access` beneath `path` (or on the file `path`). Skipped: NULL, or
 * a path that does not exist when `optional`. */
static int ll_allow(int rfd, const char *path, uint64_t access, uint64_t handled, int optional)
{
    if (!path || !*path)
        return 0;
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0) {
        if (optional && (errno == ENOENT || errno == ENOTDIR))
            return 0;
        log_error("msg=\"cannot confine to a path\" path=\"%s\" err=\"%s\"", path, strerror(errno));
        return -errno;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
        access &= LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                  LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE;
    const struct landlock_path_beneath_attr pb = {.allowed_access = access & handled,
                                                  .parent_fd = fd};
    int r = syscall(SYS_landlock_add_rule, rfd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0 ? -errno : 0;
    close(fd);
    return r;
}

/* The directory of a file (SQLite creates and removes -wal/-shm beside the
 * ledger). */
static void parent_dir(const char *file, char *out, size_t n)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", file);
    snprintf(out, n, "%s", dirname(tmp));
}

/* The default staging directory, as vault_open() makes it:
 * .<vault>.sluice-staging beside the vault. */
static void default_staging(const char *vault_dir, char *out, size_t n)
{
    char a[PATH_MAX], b[PATH_MAX];
    snprintf(a, sizeof a, "%s", vault_dir);
    size_t l = strlen(a);
    while (l > 1 && a[l - 1] == '/')
        a[--l] = '\0';
    snprintf(b, sizeof b, "%s", a);
    snprintf(out, n, "%s/.%s.sluice-staging", dirname(a), basename(b));
}

/* The sluice-extract helper, found as extract_text() finds it, and the
 * loader that runs it: the only programs the sender may start. */
static void extract_helper_path(char *buf, size_t n)
{
    const char *env = secure_getenv("SLUICE_EXTRACT");
    if (env && *env) {
        snprintf(buf, n, "%s", env);
        return;
    }
    char self[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k > 0) {
        self[k] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            if ((size_t)snprintf(buf, n, "%s/sluice-extract", self) < n && access(buf, X_OK) == 0)
                return;
        }
    }
    snprintf(buf, n, "%s", SLUICE_EXTRACT_INSTALLED);
}

static int find_interp(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    if (info->dlpi_addr == (ElfW(Addr))getauxval(AT_BASE) && info->dlpi_name && info->dlpi_name[0]) {
        snprintf(data, PATH_MAX, "%s", info->dlpi_name);
        return 1;
    }
    return 0;
}

/* What the extraction helper reads when it starts and parses: shared
 * libraries and their data (poppler's tables, gconv), the loader's cache,
 * the time zone, fontconfig's files. System files, none of them secret. */
static const char *const extract_system_paths[] = {
    "/usr", "/etc/ld.so.cache", "/etc/localtime", "/etc/fonts", "/var/cache/fontconfig",
    "/proc/filesystems",
};

static const char *const lazy_system_files[] = {
    "/etc/localtime", "/usr/lib/ssl/openssl.cnf", "/etc/ssl/openssl.cnf",
};

/* The ruleset is built before dropping privileges (the paths may be
 * reachable only by the starting user) and applied after. */
static int landlock_prepare(const diode_sandbox_paths *p, int sender, int *abi_out, int *rfd_out)
{
    *rfd_out = -1;
    long abi = ll_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    *abi_out = abi < 0 ? 0 : (int)abi;
    if (abi < 1)
        return -EOPNOTSUPP;
    uint64_t handled = LL_READ | LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                       LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
                       LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
                       LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
                       LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
                       LANDLOCK_ACCESS_FS_MAKE_SYM;
    if (abi >= 2)
        handled |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        handled |= LANDLOCK_ACCESS_FS_TRUNCATE;
    struct {
        struct landlock_ruleset_attr a;
        uint64_t scoped; /* ABI 6 */
    } ra = {.a = {.handled_access_fs = handled}};
    size_t rsize = sizeof ra.a;
    if (abi >= 6) {
        /* No signals to, and no abstract unix sockets towards, processes
         * outside this side's own domain. */
        ra.scoped = 0x1 /* LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET */ | 0x2 /* LANDLOCK_SCOPE_SIGNAL */;
        rsize = sizeof ra;
    }
    int rfd = (int)ll_create_ruleset(&ra.a, rsize, 0);
    if (rfd < 0)
        return -errno;
    const uint64_t rw = handled & ~LANDLOCK_ACCESS_FS_EXECUTE;
    char ldir[PATH_MAX] = "", staging[PATH_MAX] = "";
    if (p->ledger)
        parent_dir(p->ledger, ldir, sizeof ldir);
    int r = 0;
    r = r ? r : ll_allow(rfd, p->ledger ? ldir : NULL, rw, handled, 0);
    r = r ? r : ll_allow(rfd, p->key, LANDLOCK_ACCESS_FS_READ_FILE, handled, 0);
    r = r ? r : ll_allow(rfd, "/dev/null", LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE,
                         handled, 0);
    /* A fifo channel is opened again when its writer goes away: in this
     * side's direction only. */
    if (p->channel && strncmp(p->channel, "fifo:", 5) == 0)
        r = r ? r : ll_allow(rfd, p->channel + 5,
                             sender ? LANDLOCK_ACCESS_FS_WRITE_FILE : LANDLOCK_ACCESS_FS_READ_FILE,
                             handled, 0);
    /* Read lazily by glibc (time zone) and OpenSSL (its configuration). */
    for (size_t i = 0; i < SLUICE_ARRAY_LEN(lazy_system_files) && !r; i++)
        r = ll_allow(rfd, lazy_system_files[i], LANDLOCK_ACCESS_FS_READ_FILE, handled, 1);
#ifdef DIODE_SANITIZED
    /* LeakSanitizer reads /proc/PID/task and /proc/self/maps at exit
     * (sanitizer builds only). */
    r = r ? r : ll_allow(rfd, "/proc", LL_READ, handled, 0);
#endif
    if (sender) {
        char helper[PATH_MAX], interp[PATH_MAX] = "";
        extract_helper_path(helper, sizeof helper);
        dl_iterate_phdr(find_interp, interp);
        r = r ? r : ll_allow(rfd, p->source, LL_READ, handled, 0);
        r = r ? r : ll_allow(rfd, p->report, LANDLOCK_ACCESS_FS_WRITE_FILE, handled, 0);
        r = r ? r : ll_allow(rfd, helper, LL_EXEC, handled, 1);
        r = r ? r : ll_allow(rfd, interp[0] ? interp : NULL, LL_EXEC, handled, 1);
        for (size_t i = 0; i < SLUICE_ARRAY_LEN(extract_system_paths) && !r; i++)
            r = ll_allow(rfd, extract_system_paths[i], LL_READ, handled, 1);
    } else {
        if (p->vault && !p->staging)
            default_staging(p->vault, staging, sizeof staging);
        r = r ? r : ll_allow(rfd, p->vault, rw, handled, 0);
        r = r ? r : ll_allow(rfd, p->staging ? p->staging : staging[0] ? staging : NULL, rw,
                             handled, 0);
    }
    if (r < 0) {
        close(rfd);
        return r;
    }
    *rfd_out = rfd;
    return 0;
}

static int landlock_restrict(int rfd)
{
    int r = 0;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || syscall(SYS_landlock_restrict_self, rfd, 0) < 0)
        r = -errno;
    close(rfd);
    return r;
}

/* ---- 3. seccomp allowlists ------------------------------------------------------------
 * Traced with strace -f over tests/diode (fd, fifo and UDP channels, --watch,
 * ledgers, reports, documents approved by the policy). */
static const int both_calls[] = {
    /* files: the vault's staging files and renames (receiver), SOURCE's files
     * (sender), the ledger (SQLite WAL: fcntl locks, -wal/-shm), the report */
    SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(pread64), SCMP_SYS(preadv), SCMP_SYS(write),
    SCMP_SYS(writev), SCMP_SYS(pwrite64), SCMP_SYS(pwritev), SCMP_SYS(open), SCMP_SYS(openat),
    SCMP_SYS(openat2), SCMP_SYS(close), SCMP_SYS(close_range), SCMP_SYS(fstat), SCMP_SYS(stat),
    SCMP_SYS(lstat), SCMP_SYS(newfstatat), SCMP_SYS(statx), SCMP_SYS(fstatfs), SCMP_SYS(statfs),
    SCMP_SYS(getdents64), SCMP_SYS(lseek), SCMP_SYS(readlink), SCMP_SYS(readlinkat),
    SCMP_SYS(access), SCMP_SYS(faccessat), SCMP_SYS(faccessat2), SCMP_SYS(fadvise64),
    SCMP_SYS(dup), SCMP_SYS(dup2), SCMP_SYS(dup3), SCMP_SYS(fcntl), SCMP_SYS(poll),
    SCMP_SYS(ppoll), SCMP_SYS(select), SCMP_SYS(pselect6), SCMP_SYS(getcwd), SCMP_SYS(fsync),
    SCMP_SYS(fdatasync), SCMP_SYS(syncfs), SCMP_SYS(sync_file_range), SCMP_SYS(ftruncate),
    SCMP_SYS(fallocate), SCMP_SYS(unlink), SCMP_SYS(unlinkat), SCMP_SYS(rename),
    SCMP_SYS(renameat), SCMP_SYS(renameat2), SCMP_SYS(link), SCMP_SYS(linkat), SCMP_SYS(mkdir),
    SCMP_SYS(mkdirat), SCMP_SYS(rmdir), SCMP_SYS(fchmod), SCMP_SYS(fchmodat), SCMP_SYS(umask),
    SCMP_SYS(utimensat), SCMP_SYS(copy_file_range), SCMP_SYS(pipe2), SCMP_SYS(splice),
    SCMP_SYS(inotify_init1), SCMP_SYS(inotify_add_watch), SCMP_SYS(inotify_rm_watch),
    /* memory (PCRE2's JIT maps, writes and then executes its code) */
    SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(mprotect),
    SCMP_SYS(madvise), SCMP_SYS(memfd_create),
    /* threads (the receiver's publisher), locks, signals */
    SCMP_SYS(clone), SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(get_robust_list),
    SCMP_SYS(rseq), SCMP_SYS(set_tid_address), SCMP_SYS(exit), SCMP_SYS(exit_group),
    SCMP_SYS(gettid), SCMP_SYS(getpid), SCMP_SYS(getppid), SCMP_SYS(tgkill), SCMP_SYS(tkill),
    SCMP_SYS(sched_yield), SCMP_SYS(sched_getaffinity), SCMP_SYS(membarrier),
    SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),
    SCMP_SYS(rt_sigtimedwait), SCMP_SYS(sigaltstack), SCMP_SYS(restart_syscall),
    /* time, identity, limits */
    SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(clock_nanosleep),
    SCMP_SYS(nanosleep), SCMP_SYS(gettimeofday), SCMP_SYS(time), SCMP_SYS(getrandom),
    SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid),
    SCMP_SYS(getresuid), SCMP_SYS(getresgid), SCMP_SYS(getgroups), SCMP_SYS(uname),
    SCMP_SYS(sysinfo), SCMP_SYS(prlimit64), SCMP_SYS(getrlimit), SCMP_SYS(getrusage),
    SCMP_SYS(times), SCMP_SYS(arch_prctl),
    /* sockets already open: options and names (the UDP socket buffer) */
    SCMP_SYS(getsockopt), SCMP_SYS(setsockopt), SCMP_SYS(getsockname), SCMP_SYS(getpeername),
    /* confining oneself further */
    SCMP_SYS(seccomp), SCMP_SYS(landlock_create_ruleset), SCMP_SYS(landlock_add_rule),
    SCMP_SYS(landlock_restrict_self),
};
/* The receiver takes datagrams. */
static const int rx_calls[] = {SCMP_SYS(recvfrom), SCMP_SYS(recvmsg), SCMP_SYS(recvmmsg)};
/* The sender emits datagrams, and approves documents through the
 * extraction helper: spawned (Landlock lets it execute nothing else) over
 * a unix socketpair, watched with a pidfd, killed at its deadline, reaped;
 * the helper inherits this filter, so its calls are here too. */
static const int tx_calls[] = {SCMP_SYS(sendto), SCMP_SYS(sendmsg), SCMP_SYS(sendmmsg),
                               SCMP_SYS(execve), SCMP_SYS(vfork), SCMP_SYS(wait4),
                               SCMP_SYS(waitid), SCMP_SYS(kill), SCMP_SYS(pidfd_open),
                               SCMP_SYS(signalfd4), SCMP_SYS(shutdown)};

static int allow_list(scmp_filter_ctx ctx, const int *calls, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, calls[i], 0);
        if (rc == -EDOM || rc == -EFAULT) /* not a call on this architecture */
            rc = 0;
    }
    return rc;
}

static int seccomp_apply(int chan_fd, int sender)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (!ctx)
        return -ENOMEM;
    /* The channel calls that would reverse the direction: the process dies.
     * Everything else that touches the channel or emits is either allowed
     * below with the channel excluded, or not allowed at all. */
    const int *never = sender ? tx_never : rx_never;
    const size_t nnever = sender ? SLUICE_ARRAY_LEN(tx_never) : SLUICE_ARRAY_LEN(rx_never);
    const int *onchan = sender ? tx_never_on_chan : rx_never_on_chan;
    const size_t nonchan =
        sender ? SLUICE_ARRAY_LEN(tx_never_on_chan) : SLUICE_ARRAY_LEN(rx_never_on_chan);
    int rc = deny_all(ctx, never, nnever);
    if (rc == 0)
        rc = deny_on_fd(ctx, onchan, nonchan, chan_fd);
    for (size_t i = 0; i < SLUICE_ARRAY_LEN(both_calls) && rc == 0; i++) {
        int call = both_calls[i];
        int reversed = 0;
        for (size_t j = 0; j < nonchan; j++)
            reversed |= onchan[j] == call;
        if (reversed) /* allowed on any descriptor but the channel */
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, call, 1,
                                  SCMP_A0(SCMP_CMP_NE, (scmp_datum_t)chan_fd));
        else
            rc = allow_list(ctx, &call, 1);
    }
    if (rc == 0)
        rc = sender ? allow_list(ctx, tx_calls, SLUICE_ARRAY_LEN(tx_calls))
                    : allow_list(ctx, rx_calls, SLUICE_ARRAY_LEN(rx_calls));
    /* New sockets: the sender's socketpairs to the extraction helper; the
     * receiver opens none. */
    if (rc == 0 && sender)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1,
                              SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
    static const int prctl_ok[] = {PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS, PR_SET_NAME,
                                   PR_GET_NAME, PR_GET_DUMPABLE, PR_SET_VMA, PR_GET_SECCOMP};
    for (size_t i = 0; i < SLUICE_ARRAY_LEN(prctl_ok) && rc == 0; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                              SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)prctl_ok[i]));
#ifdef DIODE_SANITIZED
    /* Sanitizer builds only (`make sanitize`): LeakSanitizer stops the
     * world at exit with ptrace from a clone that sets itself up with prctl
     * (PR_SET_PTRACER, PR_SET_PDEATHSIG, PR_SET_DUMPABLE). */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ptrace), 0);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 0);
    if (rc == 0) /* it lists /proc/PID/task with the old getdents */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(getdents), 0);
    if (rc == 0) /* and waits for the threads it attached */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(wait4), 0);
#endif
    /* isatty() (progress output) */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)TCGETS));
    /* clone3's flags are behind a pointer: ENOSYS makes glibc use clone. */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (rc == 0)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    return rc;
}

/* ---- the confinement probe (tests only) ------------------------------------------
 * SLUICE_TEST_PROBE=PATH makes diode_confine_*() try, once just before
 * confining and once right after, what confinement must refuse: create
 * PATH (O_EXCL; removed again at once if that worked), read /etc/shadow,
 * open an IPv4 socket, run /bin/true, and last reverse the channel's
 * direction (receiver: send a datagram to 127.0.0.1:9, the discard port;
 * sender: read from its channel without waiting). Each outcome is logged
 * ("refused" for EPERM/EACCES, else "allowed"); a reversal under the filter
 * kills the process with SIGSYS, which the test expects.
 *
 * Why an environment variable in the production binary rather than a test
 * build: the tests must prove that the installed binary is confined. The
 * hook cannot weaken confinement and reaches nothing the process's starter
 * could not reach anyway: before confinement it does what any process of
 * that user may do; after, only what must be refused. The "before" run is
 * what makes the test able to fail. */
static void probe_log(const char *phase, const char *what, int err)
{
    const int refused = err == EPERM || err == EACCES;
    log_warn("msg=\"confinement probe\" phase=%s attempt=%s outcome=%s err=\"%s\"", phase, what,
             refused ? "refused" : "allowed", err ? strerror(err) : "none");
}

static void probe_run(const char *phase, const char *path, int chan_fd, int sender)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    probe_log(phase, "create-outside", fd < 0 ? errno : 0);
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    fd = open("/etc/shadow", O_RDONLY | O_CLOEXEC);
    probe_log(phase, "read-outside", fd < 0 ? errno : 0);
    if (fd >= 0)
        close(fd);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    probe_log(phase, "socket-inet", s < 0 ? errno : 0);
    if (s >= 0)
        close(s);
    char *const argv[] = {"true", NULL}, *const envp[] = {NULL};
    pid_t pid;
    int e = posix_spawn(&pid, "/bin/true", NULL, NULL, argv, envp);
    if (e == 0)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    probe_log(phase, "exec-other", e);
    /* Logged before the attempt: under the filter the attempt kills. */
    log_warn("msg=\"confinement probe\" phase=%s attempt=%s outcome=attempting", phase,
             sender ? "read-channel" : "send-channel");
    ssize_t n;
    if (sender) {
        char b;
        n = recvfrom(chan_fd, &b, 1, MSG_DONTWAIT, NULL, NULL);
    } else {
        const struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9),
                                       .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        n = sendto(chan_fd, "x", 1, MSG_DONTWAIT, (const struct sockaddr *)&to, sizeof to);
    }
    probe_log(phase, sender ? "read-channel" : "send-channel", n < 0 ? errno : 0);
}

static int confine(int chan_fd, const diode_sandbox_paths *p, int sender)
{
    static const diode_sandbox_paths none = {0};
    if (!p)
        p = &none;
    /* Opened now: its report files, which a confined process could no
     * longer create (sanitizer builds only). */
    sluice_sanitizer_keep_reports();
    const char *probe = secure_getenv("SLUICE_TEST_PROBE");
    if (probe && *probe)
        probe_run("before", probe, chan_fd, sender);
    int abi = 0, rfd = -1;
    int r = landlock_prepare(p, sender, &abi, &rfd);
    if (r == -EOPNOTSUPP)
        log_warn("msg=\"Landlock not available: file access not confined\"");
    else if (r < 0) {
        log_error("msg=\"cannot confine with Landlock\" err=\"%s\"", strerror(-r));
        return r;
    }
    r = drop_user(p->user);
    if (r == 0 && rfd >= 0 && (r = landlock_restrict(rfd)) < 0)
        log_error("msg=\"cannot confine with Landlock\" err=\"%s\"", strerror(-r));
    else if (r < 0 && rfd >= 0)
        close(rfd);
    if (r < 0)
        return r;
    r = seccomp_apply(chan_fd, sender);
    if (r < 0) {
        log_error("msg=\"cannot install the seccomp filter\" err=\"%s\"", strerror(-r));
        return r;
    }
    log_info("msg=\"confined\" side=%s landlock_abi=%d seccomp=allowlist", sender ? "send" : "recv",
             abi);
    if (probe && *probe)
        probe_run("after", probe, chan_fd, sender);
    return 0;
}

int diode_confine_sender(int chan_fd, const diode_sandbox_paths *p)
{
    return confine(chan_fd, p, 1);
}

int diode_confine_receiver(int chan_fd, const diode_sandbox_paths *p)
{
    return confine(chan_fd, p, 0);
}
