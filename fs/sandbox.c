/* fs/sandbox.c — confining sluicefs once it is set up.
 *
 * Landlock: after the ledger is open, the daemon may create, write, remove or
 * rename files only beneath the ledger's directory, the spill directory and
 * /dev/null; SOURCE in particular can never be written, even by a subverted
 * daemon (reading stays open: policies may be reloaded from anywhere). A
 * Landlock-confined process may not unmount, nor read other processes'
 * /proc/PID/exe, so an unconfined helper child, forked before, answers the
 * executable of a reader for the ledger and unmounts when told to, and also
 * when the daemon dies without telling it: a crashed or killed sluicefs
 * leaves no dead mount.
 *
 * Must never: keep a descriptor of /dev/fuse or the ledger in the helper
 * (the mount would outlive the daemon), or be applied after threads exist
 * (Landlock confines only the calling thread and its future children).
 */
#include "fs/fs_i.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/landlock.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

/* The helper's requests: 'u' unmount now; 'e' + pid: the executable of that
 * process (a Landlock-confined daemon may not read other processes'
 * /proc/PID/exe links, which need ptrace-level access). */
struct helper_req {
    char op;
    int32_t pid;
};

static void helper_loop(int sock, const char *mountpoint)
{
    for (;;) {
        struct helper_req q;
        ssize_t n = recv(sock, &q, sizeof q, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == (ssize_t)sizeof q && q.op == 'e') {
            char link[64], exe[PATH_MAX];
            snprintf(link, sizeof link, "/proc/%d/exe", (int)q.pid);
            ssize_t k = readlink(link, exe, sizeof exe - 1);
            if (k < 0)
                k = 0;
            if (send(sock, exe, (size_t)k, MSG_NOSIGNAL) < 0 && errno == EPIPE)
                break;
            continue;
        }
        break; /* 'u', EOF (the daemon is gone) or garbage: unmount */
    }
    if (geteuid() == 0)
        umount2(mountpoint, MNT_DETACH);
    else
        execlp("fusermount3", "fusermount3", "-u", "-z", "-q", mountpoint, (char *)NULL);
}

int fs_unmount_helper_start(const char *mountpoint, fs_unmount_helper *h)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = -errno;
        close(sv[0]);
        close(sv[1]);
        return e;
    }
    if (pid == 0) {
        /* Only its end of the socket survives: no /dev/fuse, no ledger. */
        if (dup2(sv[1], 3) < 0)
            _exit(1);
        close_range(4, ~0u, 0);
        signal(SIGTERM, SIG_IGN); /* a signal to the process group stops the daemon, not us */
        signal(SIGINT, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        helper_loop(3, mountpoint);
        _exit(0);
    }
    close(sv[1]);
    h->pid = pid;
    h->fd = sv[0];
    pthread_mutex_init(&h->lock, NULL);
    return 0;
}

void fs_helper_exe(fs_unmount_helper *h, pid_t pid, char *out, size_t outlen)
{
    out[0] = '\0';
    if (h->pid <= 0 || outlen == 0)
        return;
    const struct helper_req q = {.op = 'e', .pid = (int32_t)pid};
    pthread_mutex_lock(&h->lock); /* one question at a time: answers come in order */
    ssize_t n = -1;
    if (send(h->fd, &q, sizeof q, MSG_NOSIGNAL) == (ssize_t)sizeof q) {
        do
            n = recv(h->fd, out, outlen - 1, 0);
        while (n < 0 && errno == EINTR);
    }
    pthread_mutex_unlock(&h->lock);
    out[n > 0 ? n : 0] = '\0';
}

void fs_unmount_helper_run(fs_unmount_helper *h)
{
    if (h->pid <= 0)
        return;
    const struct helper_req q = {.op = 'u'};
    pthread_mutex_lock(&h->lock);
    if (send(h->fd, &q, sizeof q, MSG_NOSIGNAL) < 0)
        log_warn("msg=\"cannot reach the unmount helper\" err=\"%s\"", strerror(errno));
    close(h->fd);
    h->fd = -1;
    pthread_mutex_unlock(&h->lock);
    while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    h->pid = 0;
}

static long ll_create_ruleset(const struct landlock_ruleset_attr *a, size_t size, uint32_t flags)
{
    return syscall(SYS_landlock_create_ruleset, a, size, flags);
}

static long ll_add_rule(int fd, enum landlock_rule_type t, const void *attr, uint32_t flags)
{
    return syscall(SYS_landlock_add_rule, fd, t, attr, flags);
}

int fs_sandbox_apply(const char *const *rw_paths, size_t n, int *abi_out)
{
    long abi = ll_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    *abi_out = abi < 0 ? 0 : (int)abi;
    if (abi < 1)
        return -EOPNOTSUPP;
    /* Everything that changes the file system; reads and exec stay as they
     * are (policy reloads read from anywhere; the document extractor is a
     * helper program). */
    uint64_t handled = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |
                       LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
                       LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
                       LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |
                       LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM;
    if (abi >= 2)
        handled |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        handled |= LANDLOCK_ACCESS_FS_TRUNCATE;
    const struct landlock_ruleset_attr ra = {.handled_access_fs = handled};
    int rfd = (int)ll_create_ruleset(&ra, sizeof ra, 0);
    if (rfd < 0)
        return -errno;
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        int fd = open(rw_paths[i], O_PATH | O_CLOEXEC);
        if (fd < 0) {
            r = -errno;
            break;
        }
        struct stat st;
        uint64_t allowed = handled;
        if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode)) /* a file: only file rights apply */
            allowed &= LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE;
        const struct landlock_path_beneath_attr pb = {.allowed_access = allowed, .parent_fd = fd};
        if (ll_add_rule(rfd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
            r = -errno;
        close(fd);
    }
    if (r == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        r = -errno;
    if (r == 0 && syscall(SYS_landlock_restrict_self, rfd, 0) < 0)
        r = -errno;
    close(rfd);
    return r;
}
