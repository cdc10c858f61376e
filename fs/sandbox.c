/* fs/sandbox.c — confining sluicefs once it is set up.
 *
 * Three layers, applied by fs_sandbox_apply() after the ledger is open and
 * before any thread exists (every thread and child made later inherits all
 * three):
 *
 * Landlock: the daemon may create, write, remove or rename files only
 * beneath the ledger's directory, the spill directory and /dev/null; SOURCE
 * in particular can never be written, even by a subverted daemon. It may
 * read only SOURCE, those writable places, the ledger's key, the policy's
 * and its packs' directories and the hash key file (what a SIGHUP reload
 * reads again), and the system files that it, its libraries and the
 * extraction helper read (below: fs_system_reads); no /etc/shadow, no
 * neighbour of SOURCE. A reload whose policy names a file outside that set
 * is refused before anything is read (fs_sandbox_readable). It may execute
 * only the sluice-extract helper (and the dynamic loader that runs it), so
 * the execve(2) that the seccomp list must allow for document extraction
 * cannot start anything else.
 *
 * seccomp (libseccomp): an allowlist of the system calls sluicefs makes
 * once mounted, found by tracing (strace -f) the tests/fs suite, the
 * document tests and the demo. Unlisted calls fail with EPERM rather than
 * killing the daemon: a subverted daemon gains nothing from EPERM, while a
 * rarely used library path the traces missed fails one operation closed
 * (the file is refused and logged, the mount keeps answering) instead of
 * taking every reader's mount down with ENOTCONN. Arguments are checked
 * where they decide what the call can reach (sockets: AF_UNIX only).
 *
 * Helper: a Landlock-confined process may not unmount, nor read other
 * processes' /proc/PID/exe (nor, with reads confined, anything of /proc),
 * so an unconfined helper child, forked before, answers who a reader is
 * (executable, comm, cgroup) for the ledger and unmounts when told to, and
 * also when the daemon dies without telling it: a crashed or killed
 * sluicefs leaves no dead mount.
 *
 * Must never: keep a descriptor of /dev/fuse or the ledger in the helper
 * (the mount would outlive the daemon), be applied after threads exist
 * (Landlock confines only the calling thread and its future children), or
 * carry on unconfined when a layer the kernel offers could not be applied.
 */
#include "fs/fs_i.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <linux/landlock.h>
#include <grp.h>
#include <pthread.h>
#include <poll.h>
#include <pwd.h>
#include <seccomp.h>
#include <semaphore.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* <linux/fuse.h>'s FUSE_DEV_IOC_CLONE (that header clashes with libfuse's). */
#define FUSE_DEV_IOC_CLONE_NR _IOR(229, 0, uint32_t)
#ifndef SLUICE_EXTRACT_INSTALLED
#define SLUICE_EXTRACT_INSTALLED "/usr/local/bin/sluice-extract"
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FS_SANITIZED 1
#endif
#endif
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

/* The helper's requests: 'u' unmount now; 'i' + n pids: who those
 * processes are (a Landlock-confined daemon may not read other processes'
 * /proc/PID/exe links, which need ptrace-level access, nor with reads
 * confined their comm and cgroup). The answer, one message: the question's
 * id, then for each pid in order exe NUL comm NUL cgroup NUL, each "" when
 * unknown. Opens that ask at the same time share one question
 * (fs_helper_identify), so a busy mount pays one round trip, and one
 * wake-up of the helper, for several opens. An answer that does not come
 * within IDENT_TIMEOUT_MS fails the opens that asked (they are refused and
 * recorded: an access whose reader cannot be named is not served) rather
 * than leaving them waiting for ever; the id lets the next question tell a
 * late answer from its own, so a late answer is never taken for another
 * reader's. */
#define IDENT_BATCH 16
#define IDENT_TIMEOUT_MS 2000
#define IDENT_UNMOUNT_WAIT_MS 10000
struct helper_req {
    char op;
    uint32_t id;
    int32_t n;
    int32_t pids[IDENT_BATCH];
};
#define HELPER_REQ_MIN offsetof(struct helper_req, pids)

#define IDENT_EXE PATH_MAX
#define IDENT_COMM 64
#define IDENT_CGROUP 512
#define IDENT_MAX (IDENT_EXE + IDENT_COMM + IDENT_CGROUP)
/* The largest answer (about 75 KB) fits one SOCK_SEQPACKET message within
 * the default socket buffer (net.core.wmem_default, 208 KiB). */
#define IDENT_ANSWER (sizeof(uint32_t) + IDENT_BATCH * (IDENT_MAX + 3))

/* Up to `max` bytes of a small /proc file; the count (0 when unreadable). */
static size_t read_small(const char *path, char *out, size_t max)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read_full(fd, out, max);
    close(fd);
    return n > 0 ? (size_t)n : 0;
}

/* exe NUL comm NUL cgroup of `pid` into out (IDENT_MAX + 3 bytes): its length. */
static size_t ident_read(pid_t pid, char *out)
{
    char p[64];
    size_t len = 0;
    snprintf(p, sizeof p, "/proc/%d/exe", (int)pid);
    ssize_t k = readlink(p, out, IDENT_EXE - 1);
    len = k > 0 ? (size_t)k : 0;
    out[len++] = '\0';
    snprintf(p, sizeof p, "/proc/%d/comm", (int)pid);
    len += read_small(p, out + len, IDENT_COMM - 1);
    out[len++] = '\0';
    snprintf(p, sizeof p, "/proc/%d/cgroup", (int)pid);
    len += read_small(p, out + len, IDENT_CGROUP - 1);
    out[len++] = '\0';
    return len;
}

/* The helper keeps, for each reader thread it was asked about, descriptors
 * of that thread's /proc/PID/exe link, comm and cgroup, and reads them again
 * for every question (readlinkat, pread): always the values of the moment,
 * in three system calls instead of seven and without walking /proc paths. A
 * descriptor of /proc/PID/... stays bound to the process it was opened for:
 * once that one is gone, reading fails (ESRCH, ENOENT), also when the pid
 * has been reused meanwhile, and the helper opens the files of the process
 * that has the pid now. An exec keeps the process (same values as a fresh
 * open: the new exe and comm). Direct-mapped by pid: a collision reopens. */
#define IDENT_SLOTS 64
struct ident_slot {
    pid_t pid; /* 0: empty */
    int exe, comm, cgroup;
};
static struct ident_slot ident_slots[IDENT_SLOTS];

static void ident_slot_close(struct ident_slot *s)
{
    if (s->pid > 0) {
        close(s->exe);
        close(s->comm);
        close(s->cgroup);
    }
    s->pid = 0;
}

static int ident_slot_open(struct ident_slot *s, pid_t pid)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/exe", (int)pid);
    s->exe = open(p, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    snprintf(p, sizeof p, "/proc/%d/comm", (int)pid);
    s->comm = open(p, O_RDONLY | O_CLOEXEC);
    snprintf(p, sizeof p, "/proc/%d/cgroup", (int)pid);
    s->cgroup = open(p, O_RDONLY | O_CLOEXEC);
    if (s->exe < 0 || s->comm < 0 || s->cgroup < 0) {
        if (s->exe >= 0)
            close(s->exe);
        if (s->comm >= 0)
            close(s->comm);
        if (s->cgroup >= 0)
            close(s->cgroup);
        s->pid = 0;
        return -1;
    }
    s->pid = pid;
    return 0;
}

/* ident_read() through the kept descriptors (the helper's loop only: one
 * thread); by path when they cannot be had (a process without an exe, a
 * zombie, out of descriptors): the same answer either way. */
static size_t ident_read_kept(pid_t pid, char *out)
{
    if (pid <= 0) /* not a process of ours to ask about (0: outside our pid namespace) */
        return ident_read(pid, out);
    struct ident_slot *s = &ident_slots[(unsigned)pid % IDENT_SLOTS];
    for (int attempt = 0; attempt < 2; attempt++) {
        if (s->pid != pid) {
            ident_slot_close(s);
            if (ident_slot_open(s, pid) < 0)
                break;
        }
        const ssize_t k = readlinkat(s->exe, "", out, IDENT_EXE - 1);
        if (k > 0) {
            size_t len = (size_t)k;
            out[len++] = '\0';
            const ssize_t c = pread_full(s->comm, out + len, IDENT_COMM - 1, 0);
            if (c > 0) {
                len += (size_t)c;
                out[len++] = '\0';
                const ssize_t g = pread_full(s->cgroup, out + len, IDENT_CGROUP - 1, 0);
                if (g > 0) {
                    len += (size_t)g;
                    out[len++] = '\0';
                    return len;
                }
            }
        }
        ident_slot_close(s); /* gone, or its pid reused: the files of the pid now */
    }
    return ident_read(pid, out);
}

static void helper_loop(int sock, const char *mountpoint)
{
    static char ans[IDENT_ANSWER];
    /* Room for the largest answer even where net.core.wmem_default is low
     * (the kernel caps this at wmem_max; see below for when it does not fit). */
    const int sndbuf = 2 * IDENT_ANSWER;
    setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    for (;;) {
        struct helper_req q;
        ssize_t n = recv(sock, &q, sizeof q, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n >= (ssize_t)HELPER_REQ_MIN && q.op == 'i' && q.n >= 1 && q.n <= IDENT_BATCH &&
            n == (ssize_t)(HELPER_REQ_MIN + (size_t)q.n * sizeof q.pids[0])) {
            memcpy(ans, &q.id, sizeof q.id);
            size_t k = sizeof q.id;
            for (int32_t i = 0; i < q.n; i++)
                k += ident_read_kept((pid_t)q.pids[i], ans + k);
            if (send(sock, ans, k, MSG_NOSIGNAL) < 0) {
                if (errno == EPIPE)
                    break;
                /* Too large for the socket (EMSGSIZE) or other trouble: an
                 * empty answer ("" for every reader) rather than none, for
                 * which the asking open would wait out its timeout. */
                if (send(sock, ans, sizeof q.id, MSG_NOSIGNAL) < 0 && errno == EPIPE)
                    break;
            }
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
    memset(h, 0, sizeof *h);
    h->fd = -1;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    h->answer = malloc(IDENT_ANSWER);
    if (h->answer == NULL)
        return -ENOMEM;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        int e = -errno;
        free(h->answer);
        h->answer = NULL;
        return e;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = -errno;
        close(sv[0]);
        close(sv[1]);
        free(h->answer);
        h->answer = NULL;
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
    return 0;
}

/* The next NUL-terminated field of an answer into out (cut to fit): where
 * the field after it starts. */
static const char *ident_field(const char *p, const char *end, char *out, size_t outlen)
{
    size_t i = 0;
    while (p < end && *p && i + 1 < outlen)
        out[i++] = *p++;
    out[i] = '\0';
    while (p < end && *p)
        p++;
    return p < end ? p + 1 : end;
}

/* One answer (exe NUL comm NUL cgroup NUL) into out: where the next starts. */
static const char *ident_parse(const char *p, const char *end, fs_proc_ident *out)
{
    p = ident_field(p, end, out->exe, sizeof out->exe);
    p = ident_field(p, end, out->comm, sizeof out->comm);
    out->comm[strcspn(out->comm, "\n")] = '\0';
    /* cgroup v2: one line "0::/path". */
    char cg[IDENT_CGROUP];
    p = ident_field(p, end, cg, sizeof cg);
    const char *s = strstr(cg, "0::");
    snprintf(out->cgroup, sizeof out->cgroup, "%s", s ? s + 3 : cg);
    out->cgroup[strcspn(out->cgroup, "\n")] = '\0';
    return p;
}

/* A question waiting for the helper (on the asking thread's stack),
 * posted once: answered (done) or its turn to ask (the head of the queue). */
struct fs_ident_waiter {
    struct fs_ident_waiter *next;
    pid_t pid;
    fs_proc_ident *out;
    int done;
    int rc; /* 0, or -EIO: the helper did not answer */
    sem_t wake;
};

/* The helper's answer to question `id` in h->answer: its length, or -1
 * when none came within IDENT_TIMEOUT_MS (a helper stopped or stuck) or the
 * helper is gone. Answers to other questions are dropped. */
static ssize_t wait_answer(fs_unmount_helper *h, int fd, uint32_t id)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        const long spent = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        const int r = spent >= IDENT_TIMEOUT_MS ? 0 : poll(&pfd, 1, (int)(IDENT_TIMEOUT_MS - spent));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        const ssize_t n = recv(fd, h->answer, IDENT_ANSWER, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < (ssize_t)sizeof id)
            return -1; /* the helper is gone (0) or the socket failed */
        uint32_t got;
        memcpy(&got, h->answer, sizeof got);
        if (got == id)
            return n;
    }
}

/* Ask question `q` (qlen bytes) and wait for its answer: its length, or -1.
 * At most one question is ever left unanswered (h->owed): while the helper
 * owes one, no other is sent (a stopped helper would otherwise have the
 * questions pile up in the socket until a send blocks for good); its late
 * answer is waited for first, as long as a question would be. Only the
 * asker (h->asking) gets here. */
static ssize_t ask_helper(fs_unmount_helper *h, int fd, const struct helper_req *q, size_t qlen)
{
    if (fd < 0)
        return -1;
    if (h->owed) {
        if (wait_answer(h, fd, h->owed) < 0) {
            h->unasked++;
            return -1;
        }
        h->owed = 0;
        h->late++;
    }
    if (send(fd, q, qlen, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)qlen)
        return -1;
    const ssize_t n = wait_answer(h, fd, q->id);
    if (n < 0) {
        h->owed = q->id;
        h->timeouts++;
        log_warn("msg=\"no answer from the unmount helper: opens refused until it answers\" "
                 "question=%u timeout_ms=%d", q->id, IDENT_TIMEOUT_MS);
    }
    return n;
}

/* The same shape as the ledger's group commit: whoever finds no question
 * in flight asks for everything queued (up to IDENT_BATCH) in one message,
 * fills in every waiter's answer, wakes each one alone (no herd on the
 * lock) and hands the asking to the next in line. */
int fs_helper_identify(fs_unmount_helper *h, pid_t pid, fs_proc_ident *out)
{
    if (h->pid <= 0) { /* no helper: this only works unconfined */
        char ans[IDENT_MAX + 3];
        const size_t n = ident_read(pid, ans);
        ident_parse(ans, ans + n, out);
        return 0;
    }
    struct fs_ident_waiter w = {.pid = pid, .out = out};
    sem_init(&w.wake, 0, 0);
    pthread_mutex_lock(&h->lock);
    if (h->qtail)
        h->qtail->next = &w;
    else
        h->qhead = &w;
    h->qtail = &w;
    if (h->asking) {
        pthread_mutex_unlock(&h->lock);
        while (sem_wait(&w.wake) < 0 && errno == EINTR)
            ;
        pthread_mutex_lock(&h->lock);
        if (w.done)
            goto out;
    } else {
        h->asking = 1; /* the queue was empty: we are its head */
    }
    /* Ask for the head of the queue (ours first) in one message. */
    struct helper_req q = {.op = 'i', .id = ++h->last_id};
    struct fs_ident_waiter *batch = h->qhead, *last = NULL;
    for (struct fs_ident_waiter *b = batch; b && q.n < IDENT_BATCH; b = b->next) {
        q.pids[q.n++] = (int32_t)b->pid;
        last = b;
    }
    h->qhead = last->next;
    if (h->qhead == NULL)
        h->qtail = NULL;
    last->next = NULL;
    const int fd = h->fd;
    h->questions += (uint64_t)q.n;
    h->round_trips++;
    pthread_mutex_unlock(&h->lock);

    const size_t qlen = HELPER_REQ_MIN + (size_t)q.n * sizeof q.pids[0];
    const ssize_t n = ask_helper(h, fd, &q, qlen);
    /* A short answer: "" (unknown) for whatever is missing (a reader gone,
     * or an answer too large for the socket). No answer: every open of the
     * batch fails (refused and recorded by the caller). */
    const size_t idlen = sizeof q.id;
    const char *p = h->answer + idlen, *end = h->answer + (n > (ssize_t)idlen ? (size_t)n : idlen);
    for (struct fs_ident_waiter *b = batch; b; b = b->next) {
        p = ident_parse(p, end, b->out);
        b->rc = n < 0 ? -EIO : 0;
    }

    pthread_mutex_lock(&h->lock);
    for (struct fs_ident_waiter *b = batch; b; b = b->next)
        b->done = 1;
    struct fs_ident_waiter *next_asker = h->qhead;
    if (next_asker == NULL) {
        h->asking = 0;
        pthread_cond_broadcast(&h->cond); /* fs_unmount_helper_run may wait for that */
    }
    pthread_mutex_unlock(&h->lock);
    for (struct fs_ident_waiter *b = batch, *next; b; b = next) {
        next = b->next; /* b may vanish once posted */
        if (b != &w) /* ours heads the batch */
            sem_post(&b->wake);
    }
    if (next_asker)
        sem_post(&next_asker->wake);
    sem_destroy(&w.wake);
    return w.rc;
out:
    pthread_mutex_unlock(&h->lock);
    sem_destroy(&w.wake);
    return w.rc;
}

void fs_unmount_helper_run(fs_unmount_helper *h)
{
    if (h->pid <= 0)
        return;
    const struct helper_req q = {.op = 'u'};
    pthread_mutex_lock(&h->lock);
    while (h->asking) /* the answer it waits for comes on this socket */
        pthread_cond_wait(&h->cond, &h->lock);
    /* never blocking: a stopped helper's socket may be full; closing it
     * tells the helper as well */
    if (send(h->fd, &q, HELPER_REQ_MIN, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        log_warn("msg=\"cannot reach the unmount helper\" err=\"%s\"", strerror(errno));
    close(h->fd);
    h->fd = -1;
    pthread_mutex_unlock(&h->lock);
    /* Bounded: a helper stopped (SIGSTOP) or stuck does its work when it
     * can (its socket is closed), but the daemon does not wait for ever. */
    int waited_ms = 0;
    pid_t w;
    while ((w = waitpid(h->pid, NULL, WNOHANG)) == 0 && waited_ms < IDENT_UNMOUNT_WAIT_MS) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
        waited_ms += 20;
    }
    if (w == 0)
        log_warn("msg=\"the unmount helper has not finished (stopped or stuck?): the mount goes when it "
                 "does\" pid=%d waited_ms=%d", (int)h->pid, waited_ms);
    h->pid = 0;
    free(h->answer); /* the FUSE loop has ended: no question can come any more */
    h->answer = NULL;
}

static long ll_create_ruleset(const struct landlock_ruleset_attr *a, size_t size, uint32_t flags)
{
    return syscall(SYS_landlock_create_ruleset, a, size, flags);
}

static long ll_add_rule(int fd, enum landlock_rule_type t, const void *attr, uint32_t flags)
{
    return syscall(SYS_landlock_add_rule, fd, t, attr, flags);
}

#define LL_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)

/* What the confinement lets this process read, for fs_sandbox_readable():
 * the resolved path of every rule that grants reading, set while the rules
 * are built (before any thread exists) and only read afterwards. */
static struct read_root {
    char *path;
    int dir;
} *read_roots;
static size_t n_read_roots;
static int reads_confined;

static void read_root_add(const char *path, int dir)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return;
    struct read_root *nr = realloc(read_roots, (n_read_roots + 1) * sizeof *nr);
    if (!nr)
        return; /* then reloads naming it are refused: closed, not open */
    read_roots = nr;
    if ((read_roots[n_read_roots].path = strdup(real)))
        read_roots[n_read_roots++].dir = dir;
}

/* Allow `access` beneath `path` (a directory, or one file: then only the
 * rights that apply to files). A path that does not exist is skipped when
 * `optional`. */
static int ll_allow(int rfd, const char *path, uint64_t access, int optional)
{
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0) {
        if (optional && (errno == ENOENT || errno == ENOTDIR))
            return 0;
        const int e = errno;
        log_error("msg=\"cannot confine to a path\" path=\"%s\" err=\"%s\"", path, strerror(e));
        return -e;
    }
    struct stat st;
    const int dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    if (!dir)
        access &= LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                  LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE;
    const struct landlock_path_beneath_attr pb = {.allowed_access = access, .parent_fd = fd};
    int r = ll_add_rule(rfd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0 ? -errno : 0;
    close(fd);
    if (r == 0 && (access & LANDLOCK_ACCESS_FS_READ_FILE))
        read_root_add(path, dir);
    return r;
}

int fs_sandbox_readable(const char *path)
{
    if (!reads_confined)
        return 1;
    char real[PATH_MAX];
    /* Not there, or not reachable by this user: not the confinement's doing
     * (Landlock does not restrict path lookup); opening it says what is. */
    if (!realpath(path, real))
        return 1;
    for (size_t i = 0; i < n_read_roots; i++) {
        const char *r = read_roots[i].path;
        const size_t l = strlen(r);
        if (strcmp(real, r) == 0)
            return 1;
        const int beneath = strncmp(real, r, l) == 0 && (real[l] == '/' || strcmp(r, "/") == 0);
        if (read_roots[i].dir && beneath)
            return 1;
    }
    return 0;
}

/* The sluice-extract helper, found as extract_text() finds it (extract.c:
 * $SLUICE_EXTRACT, else beside this program, else the installed one). */
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

/* The dynamic loader this program runs under (the helper, built alongside,
 * runs under the same one): the kernel opens it for execution too. */
static int find_interp(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    if (info->dlpi_addr == (ElfW(Addr))getauxval(AT_BASE) && info->dlpi_name && info->dlpi_name[0]) {
        snprintf(data, PATH_MAX, "%s", info->dlpi_name);
        return 1;
    }
    return 0;
}

/* What the daemon, its libraries and the sluice-extract helper it starts
 * read once confined, found by tracing (strace -f -e trace=%file) the
 * tests/fs suite, tests/hardening/t_confine.sh and the demo: shared
 * libraries and their data (libmagic's database, poppler's tables, gconv),
 * the loader's cache, the time zone, fontconfig's files, libmagic's local
 * file, OpenSSL's configuration, and the overcommit setting glibc's malloc
 * looks at when it trims an arena. System files, none of them secret. */
static const char *const fs_system_reads[] = {
    "/usr", "/etc/ld.so.cache", "/etc/localtime", "/etc/fonts", "/var/cache/fontconfig",
    "/proc/filesystems", "/proc/sys/vm/overcommit_memory", "/etc/magic", "/etc/ssl/openssl.cnf",
    "/usr/lib/ssl/openssl.cnf",
};

/* Build the ruleset (*rfd_out) now, while every path is reachable by the
 * user that mounted; it is applied after the user change. */
static int landlock_prepare(const fs_sandbox_path *paths, size_t n, long abi, int *rfd_out)
{
    *rfd_out = -1;
    /* Everything that reads or changes the file system, and execution. */
    uint64_t handled = LL_READ | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |
                       LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
                       LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
                       LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |
                       LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM |
                       LANDLOCK_ACCESS_FS_EXECUTE;
    if (abi >= 2)
        handled |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        handled |= LANDLOCK_ACCESS_FS_TRUNCATE;
    struct {
        struct landlock_ruleset_attr a;
        uint64_t scoped; /* ABI 6: struct landlock_ruleset_attr's third field */
    } ra = {.a = {.handled_access_fs = handled}};
    size_t rsize = sizeof ra.a;
    if (abi >= 6) {
        /* No signals to processes outside the daemon's own domain (the
         * unmount helper, the readers, anything else on the host), no
         * abstract unix sockets out of it. */
        ra.scoped = 0x1 /* LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET */ | 0x2 /* LANDLOCK_SCOPE_SIGNAL */;
        rsize = sizeof ra;
    }
    int rfd = (int)ll_create_ruleset(&ra.a, rsize, 0);
    if (rfd < 0)
        return -errno;
    const uint64_t rw = handled & ~LANDLOCK_ACCESS_FS_EXECUTE;
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++)
        r = ll_allow(rfd, paths[i].path, paths[i].writable ? rw : LL_READ, paths[i].optional);
    /* -o clone_fd: each FUSE thread opens /dev/fuse again for its own queue */
    if (r == 0)
        r = ll_allow(rfd, "/dev/fuse",
                     LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE, 1);
    for (size_t i = 0; i < SLUICE_ARRAY_LEN(fs_system_reads) && r == 0; i++)
        r = ll_allow(rfd, fs_system_reads[i], LL_READ, 1);
#ifdef FS_SANITIZED
    /* LeakSanitizer reads /proc/PID/task and /proc/self/maps at exit
     * (sanitizer builds only). */
    if (r == 0)
        r = ll_allow(rfd, "/proc", LL_READ, 0);
#endif
    char helper[PATH_MAX], interp[PATH_MAX] = "";
    extract_helper_path(helper, sizeof helper);
    dl_iterate_phdr(find_interp, interp);
    if (r == 0)
        r = ll_allow(rfd, helper, LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE, 1);
    if (r == 0 && interp[0])
        r = ll_allow(rfd, interp, LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE, 1);
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

/* ---- seccomp ------------------------------------------------------------------
 * Every system call sluicefs makes once confined, as traced (strace -f over
 * tests/fs, tests/extract/t_mount.sh, the demo), by what needs it. The
 * sluice-extract helper that extraction starts inherits this filter (a
 * seccomp filter survives execve), so the calls it and its per-document
 * children make are here too; the children add their own, narrower list. */
static const int fs_syscalls[] = {
    /* FUSE requests and replies on /dev/fuse; source files (read-only,
     * openat2 RESOLVE_BENEATH); directory listings */
    SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(pread64), SCMP_SYS(preadv), SCMP_SYS(write),
    SCMP_SYS(writev), SCMP_SYS(pwrite64), SCMP_SYS(pwritev), SCMP_SYS(splice), SCMP_SYS(pipe2),
    SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(openat2), SCMP_SYS(close), SCMP_SYS(close_range),
    SCMP_SYS(fstat), SCMP_SYS(stat), SCMP_SYS(lstat), SCMP_SYS(newfstatat), SCMP_SYS(statx),
    SCMP_SYS(fstatfs), SCMP_SYS(statfs), SCMP_SYS(getdents64), SCMP_SYS(lseek),
    SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(access), SCMP_SYS(faccessat),
    SCMP_SYS(faccessat2), SCMP_SYS(fadvise64), SCMP_SYS(dup), SCMP_SYS(dup2), SCMP_SYS(dup3),
    SCMP_SYS(fcntl), SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(getcwd),
    /* the ledger (SQLite WAL: byte-range locks through fcntl, -wal/-shm
     * files created and removed beneath its directory) and the spill files */
    SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(ftruncate), SCMP_SYS(unlink),
    SCMP_SYS(unlinkat), SCMP_SYS(rmdir), SCMP_SYS(rename), SCMP_SYS(renameat),
    SCMP_SYS(renameat2), SCMP_SYS(mkdir), SCMP_SYS(mkdirat), SCMP_SYS(fchmod), SCMP_SYS(umask),
    SCMP_SYS(fallocate),
    /* memory: PCRE2's JIT maps, writes and then executes its code */
    SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(mprotect),
    SCMP_SYS(madvise), SCMP_SYS(memfd_create),
    /* threads (libfuse's multithreaded loop, the reload thread), their
     * locks and signals; clone3 is answered ENOSYS below */
    SCMP_SYS(clone), SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(get_robust_list),
    SCMP_SYS(rseq), SCMP_SYS(set_tid_address), SCMP_SYS(exit), SCMP_SYS(exit_group),
    SCMP_SYS(gettid), SCMP_SYS(getpid), SCMP_SYS(getppid), SCMP_SYS(tgkill), SCMP_SYS(tkill),
    SCMP_SYS(sched_yield), SCMP_SYS(sched_getaffinity), SCMP_SYS(membarrier),
    SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),
    SCMP_SYS(rt_sigtimedwait), SCMP_SYS(rt_sigsuspend), SCMP_SYS(sigaltstack),
    SCMP_SYS(restart_syscall), SCMP_SYS(signalfd4),
    /* time, identity, limits */
    SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(clock_nanosleep),
    SCMP_SYS(nanosleep), SCMP_SYS(gettimeofday), SCMP_SYS(time), SCMP_SYS(getrandom),
    SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid),
    SCMP_SYS(getresuid), SCMP_SYS(getresgid), SCMP_SYS(getgroups), SCMP_SYS(uname),
    SCMP_SYS(sysinfo), SCMP_SYS(prlimit64), SCMP_SYS(getrlimit), SCMP_SYS(setrlimit),
    SCMP_SYS(getrusage), SCMP_SYS(times), SCMP_SYS(arch_prctl),
    /* syslog (/dev/log), the unmount helper and the extraction server
     * (socketpairs); socket() and socketpair() are limited to AF_UNIX below */
    SCMP_SYS(connect), SCMP_SYS(sendto), SCMP_SYS(sendmsg), SCMP_SYS(recvfrom),
    SCMP_SYS(recvmsg), SCMP_SYS(shutdown), SCMP_SYS(getsockopt), SCMP_SYS(setsockopt),
    SCMP_SYS(getsockname), SCMP_SYS(getpeername),
    /* document extraction: sluice-extract is started with posix_spawn
     * (Landlock lets it execute nothing else), watched with a pidfd, killed
     * at its deadline and reaped; the server forks one child per document */
    SCMP_SYS(execve), SCMP_SYS(wait4), SCMP_SYS(waitid), SCMP_SYS(kill),
    SCMP_SYS(pidfd_open), SCMP_SYS(vfork),
    /* confining oneself further is always allowed (the extraction children
     * install their own filter) */
    SCMP_SYS(seccomp), SCMP_SYS(landlock_create_ruleset), SCMP_SYS(landlock_add_rule),
    SCMP_SYS(landlock_restrict_self),
};

static int seccomp_apply(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (!ctx)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < SLUICE_ARRAY_LEN(fs_syscalls) && rc == 0; i++) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, fs_syscalls[i], 0);
        if (rc == -EDOM || rc == -EFAULT) /* not a call on this architecture (open on arm64) */
            rc = 0;
    }
    /* Sockets: unix only (syslog, socketpairs). No IP, no netlink, no
     * packet sockets: whatever a subverted daemon wants to reach, it cannot
     * open a way there. */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                              SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1,
                              SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
    /* prctl: only what glibc, libseccomp and the extraction children ask for. */
    static const int prctl_ok[] = {PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS, PR_SET_NAME,
                                   PR_GET_NAME, PR_GET_DUMPABLE, PR_SET_VMA, PR_CAPBSET_READ,
                                   PR_GET_SECCOMP};
    for (size_t i = 0; i < SLUICE_ARRAY_LEN(prctl_ok) && rc == 0; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                              SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)prctl_ok[i]));
    /* ioctl: isatty() (TCGETS) from stdio, and libfuse's clone_fd option. */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)TCGETS));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)FUSE_DEV_IOC_CLONE_NR));
#ifdef FS_SANITIZED
    /* Sanitizer builds only (`make sanitize`): LeakSanitizer stops the
     * world at exit with ptrace from a clone that sets itself up with prctl
     * (PR_SET_PTRACER, PR_SET_PDEATHSIG, PR_SET_DUMPABLE). */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ptrace), 0);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 0);
    if (rc == 0) /* it lists /proc/PID/task with the old getdents */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(getdents), 0);
#endif
    /* clone3's flags sit behind a pointer seccomp cannot read: ENOSYS makes
     * glibc use clone, whose flags are plain arguments. */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    /* Every thread, should one exist already. */
    if (rc == 0)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    /* A binary tree over the syscall numbers rather than a linear list: the
     * calls with argument checks (socket, prctl, ioctl) are reached in a few
     * comparisons (the kernel's per-syscall cache already skips the filter
     * for calls allowed whatever their arguments). */
    if (rc == 0)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    return rc;
}

/* ---- the confinement probe (tests only) -----------------------------------------
 * SLUICE_TEST_PROBE=PATH in the daemon's environment makes fs_sandbox_apply()
 * try, once just before confining and once right after, four things that
 * confinement must refuse: create PATH (O_EXCL; removed again at once when
 * that worked), read /etc/shadow, open an IPv4 socket (closed at once), and
 * run /bin/true. It
 * logs each outcome ("refused" for EPERM/EACCES, else "allowed") and
 * changes nothing else: the daemon carries on either way.
 *
 * Why an environment variable in the production binary rather than a test
 * build: the tests must prove that the binary people install is confined,
 * not a variant of it. The hook can neither weaken confinement nor reach
 * anything the daemon's starter could not reach anyway (whoever sets the
 * environment of a root daemon already runs code as root): before
 * confinement it does what any process of that user may do; after, it
 * attempts only what must be refused, and says so in the log. The "before"
 * run is what makes the test able to fail: the same attempts, in the same
 * process, succeed until confinement is applied. */
static void probe_log(const char *phase, const char *what, int err)
{
    const int refused = err == EPERM || err == EACCES;
    log_warn("msg=\"confinement probe\" phase=%s attempt=%s outcome=%s err=\"%s\"", phase, what,
             refused ? "refused" : "allowed", err ? strerror(err) : "none");
}

static void probe_run(const char *phase, const char *path)
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
}

/* ---- the files a policy makes the engine read ------------------------------------
 * dlp_policy_files_list() names them. This check decides which reloads are
 * refused up front, by name; it enforces nothing: a file it missed is
 * refused by Landlock when the engine opens it, and the reload fails closed
 * all the same, only with a vaguer message. */
const char *fs_policy_files_outside(const dlp_policy_files *f)
{
    for (size_t i = 0; i < f->nfiles; i++)
        if (!fs_sandbox_readable(f->files[i]))
            return f->files[i];
    if (f->key && !fs_sandbox_readable(f->key))
        return f->key;
    return NULL;
}

int fs_sandbox_drop_user(const char *user)
{
    if (!user || !*user)
        return 0;
    const struct passwd *pw = getpwnam(user);
    if (!pw) {
        log_error("msg=\"cannot change user: no such user\" user=\"%s\"", user);
        return -ENOENT;
    }
    const uid_t uid = pw->pw_uid;
    const gid_t gid = pw->pw_gid;
    /* Group first (setgid needs the privilege setuid gives up), supplementary
     * groups dropped; saved ids too, so nothing can switch back. */
    if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
        const int e = errno;
        log_error("msg=\"cannot change user\" user=\"%s\" err=\"%s\"", user, strerror(e));
        return -e;
    }
    if (uid != 0 && (setresuid(0, 0, 0) == 0 || geteuid() == 0))
        return -EPERM;
    log_info("msg=\"running as\" user=\"%s\" uid=%u gid=%u", user, (unsigned)uid, (unsigned)gid);
    return 0;
}

int fs_sandbox_apply_user(const fs_sandbox_path *paths, size_t n, const char *user, int *abi_out)
{
    const char *probe = secure_getenv("SLUICE_TEST_PROBE");
    if (probe && *probe)
        probe_run("before", probe);
    long abi = ll_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    *abi_out = abi < 0 ? 0 : (int)abi;
    int rfd = -1;
    int r = abi >= 1 ? landlock_prepare(paths, n, abi, &rfd) : -EOPNOTSUPP;
    if (r < 0 && r != -EOPNOTSUPP)
        return r;
    int ur = fs_sandbox_drop_user(user);
    if (ur == 0 && rfd >= 0) {
        ur = landlock_restrict(rfd);
        reads_confined = ur == 0;
    } else if (rfd >= 0) {
        close(rfd);
    }
    if (ur < 0)
        return ur == -EOPNOTSUPP ? -EINVAL : ur; /* EOPNOTSUPP means "no Landlock" to the caller */
    /* seccomp even without Landlock: the kernel has one but not the other. */
    int sr = seccomp_apply();
    if (sr < 0) {
        log_error("msg=\"cannot install the seccomp filter\" err=\"%s\"", strerror(-sr));
        return sr == -EOPNOTSUPP ? -EINVAL : sr;
    }
    log_info("msg=\"seccomp allowlist installed\" calls=%zu default=EPERM",
             SLUICE_ARRAY_LEN(fs_syscalls));
    if (probe && *probe)
        probe_run("after", probe);
    return r;
}
