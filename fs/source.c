/* fs/source.c — the only code in sluicefs that touches the SOURCE tree.
 *
 * Every path is resolved from the SOURCE directory fd with openat2
 * (RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS): `..` and absolute symlinks can
 * never lead outside SOURCE, whatever the kernel-side lookups did before.
 * Content is read from one fd opened O_NOATIME, whole or front to back in
 * pieces, and checked unchanged after the read.
 *
 * Must never: open a FIFO, socket or device (they are stat'ed through an
 * O_PATH fd, never opened), write to the source, or return bytes read across a
 * change of the file.
 */
#include "fs/fs_i.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>


static int sys_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve)
{
    struct open_how how = {.flags = flags, .resolve = resolve};
    long r;
    do
        r = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    while (r < 0 && (errno == EINTR || errno == EAGAIN));
    return r < 0 ? -errno : (int)r;
}

int fs_source_path_fd(int rootfd, const char *rel, int follow, int *out)
{
    if (rel == NULL || rel[0] == '\0')
        rel = ".";
    uint64_t flags = O_PATH | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW);
    int fd = sys_openat2(rootfd, rel, flags, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
    if (fd < 0)
        return fd;
    *out = fd;
    return 0;
}

int fs_source_stat(int rootfd, const char *rel, struct stat *st)
{
    int fd;
    int r = fs_source_path_fd(rootfd, rel, 1, &fd);
    if (r < 0)
        return r;
    r = fstat(fd, st) < 0 ? -errno : 0;
    close(fd);
    return r;
}

static int same_file_state(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Reopen an O_PATH fd for reading. Going through /proc/self/fd reopens the
 * very inode we stat'ed, so a file swapped for a FIFO or device between the
 * check and the open cannot be opened by mistake. O_NOATIME keeps the
 * source's atime untouched; it needs ownership or CAP_FOWNER, which the
 * daemon has as root. Without it we refuse rather than touch the atime. */
static int reopen_for_read(int pathfd)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", pathfd);
    int fd;
    do
        fd = open(proc, O_RDONLY | O_CLOEXEC | O_NOATIME | O_NOCTTY | O_NONBLOCK);
    while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

/* Open `rel` for one stable read: the same checks as fs_source_read. */
int fs_source_stream_open(int rootfd, const char *rel, uint64_t max, fs_source_stream *s)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    int pfd;
    int r = fs_source_path_fd(rootfd, rel, 1, &pfd);
    if (r < 0)
        return r;
    struct stat st;
    if (fstat(pfd, &st) < 0) {
        r = -errno;
        close(pfd);
        return r;
    }
    if (S_ISDIR(st.st_mode)) {
        close(pfd);
        return -EISDIR;
    }
    if (!S_ISREG(st.st_mode)) { /* never opened: a FIFO would block, a device act */
        close(pfd);
        return -EPERM;
    }
    if ((uint64_t)st.st_size > max) {
        close(pfd);
        return -EFBIG;
    }
    int fd = reopen_for_read(pfd);
    close(pfd);
    if (fd < 0)
        return fd;
    if (fstat(fd, &s->st) < 0 || !S_ISREG(s->st.st_mode) || s->st.st_ino != st.st_ino ||
        s->st.st_dev != st.st_dev || (uint64_t)s->st.st_size > max) {
        close(fd);
        return -EAGAIN;
    }
    /* One pass front to back: let the kernel read ahead generously. */
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    s->fd = fd;
    return 0;
}

ssize_t fs_source_stream_read(fs_source_stream *s, void *buf, size_t len)
{
    ssize_t n = read_full(s->fd, buf, len);
    if (n > 0)
        s->got += (uint64_t)n;
    return n;
}

int fs_source_stream_end(fs_source_stream *s)
{
    if (s->fd < 0)
        return -EBADF;
    /* Past the size read at open there must be nothing: a file that grew
     * is seen as changed. */
    uint8_t extra;
    ssize_t n = s->got == (uint64_t)s->st.st_size ? read_full(s->fd, &extra, 1) : 0;
    struct stat st1;
    int r = fstat(s->fd, &st1) < 0 ? -errno : 0;
    close(s->fd);
    s->fd = -1;
    if (n < 0)
        return (int)n;
    if (r < 0)
        return r;
    if (n > 0 || s->got != (uint64_t)s->st.st_size || !same_file_state(&s->st, &st1))
        return -EAGAIN;
    s->st = st1;
    return 0;
}

void fs_source_stream_close(fs_source_stream *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

static int read_once(int rootfd, const char *rel, uint64_t max, fs_source *out)
{
    fs_source_stream s;
    int r = fs_source_stream_open(rootfd, rel, max, &s);
    if (r < 0)
        return r;
    size_t size = (size_t)s.st.st_size;
    uint8_t *buf = malloc(size + 1);
    if (buf == NULL) {
        fs_source_stream_close(&s);
        return -ENOMEM;
    }
    ssize_t n = fs_source_stream_read(&s, buf, size);
    if (n < 0) {
        fs_source_stream_close(&s);
        free(buf);
        return (int)n;
    }
    r = fs_source_stream_end(&s);
    if (r < 0) {
        free(buf);
        return r;
    }
    out->data = buf;
    out->len = (size_t)n;
    out->st = s.st;
    return 0;
}

int fs_source_read(int rootfd, const char *rel, uint64_t max, fs_source *out)
{
    memset(out, 0, sizeof *out);
    int r = -EAGAIN;
    for (int i = 0; i < FS_SOURCE_READ_ATTEMPTS && r == -EAGAIN; i++) {
        if (i > 0)
            fs_source_settle(i);
        r = read_once(rootfd, rel, max, out);
    }
    return r;
}

void fs_source_settle(int attempt)
{
    usleep(1000u << attempt); /* let a writer finish */
}

void fs_source_free(fs_source *s)
{
    if (s == NULL)
        return;
    free(s->data);
    s->data = NULL;
    s->len = 0;
}

ssize_t fs_source_head(int rootfd, const char *rel, void *buf, size_t len)
{
    int pfd;
    int r = fs_source_path_fd(rootfd, rel, 1, &pfd);
    if (r < 0)
        return r;
    struct stat st;
    if (fstat(pfd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(pfd);
        return -EPERM;
    }
    int fd = reopen_for_read(pfd);
    close(pfd);
    if (fd < 0)
        return fd;
    ssize_t n = read_full(fd, buf, len);
    close(fd);
    return n;
}
