/* fs/sluicefs.c — sluicefs: the read-only FUSE filesystem that serves every
 * file of SOURCE as its sanitized view, and records every open in the ledger.
 *
 * Must never: serve a byte that did not come out of dlp_sanitize() returning
 * 0 for the same version of the file under the policy in force; serve before
 * the ledger record is durable; open a special file; follow a symlink out of
 * SOURCE; modify SOURCE (not even atime).
 *
 * Why the high-level (path-based) libfuse API: every access has to be
 * resolved from the SOURCE directory fd with openat2(RESOLVE_BENEATH), which
 * needs the path relative to SOURCE; the high-level library hands us exactly
 * that and keeps the node table. The hot paths (read from an in-memory view,
 * open of a cached view) cost the same in both APIs, and fuse_invalidate_path()
 * gives us the kernel cache invalidation we need when a view changes.
 *
 * Sizes and stat: a file's size is the size of its view, which exists only
 * after sanitizing it. getattr of a single regular file builds its view (once:
 * it is cached); readdir never does (readdirplus is disabled and d_type is
 * filled from the directory entry), so listing or `find` over thousands of
 * files sanitizes nothing. Each open re-stats the source and uses the view
 * for that exact version; reads of an open file always come from the view it
 * pinned at open, so stat size == bytes served and no read mixes versions.
 */
#define FUSE_USE_VERSION 314
#include "common/common.h"
#include "dlp/dlp.h"
#include "fs/fs_i.h"
#include "ledger/ledger.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* Kernel attribute/entry cache lifetime. Opens always re-stat the source, so
 * this only bounds how long `stat` may show the previous version's size after
 * the source changes behind our back (we get no notification of that). One
 * second keeps `ls -l`/`stat` of unchanged files off the daemon while a
 * changed source shows up almost at once. */
#define FS_ATTR_TIMEOUT 1.0
#define FS_ENTRY_TIMEOUT 1.0
#define FS_NEGATIVE_TIMEOUT 1.0
/* Largest request: 1 MiB reads (256 pages). */
#define FS_MAX_READ (1u << 20)
/* libmagic looks at no more than this much of a file's start. */
#define FS_CLASSIFY_BYTES (1u << 20)
#define FS_DEFAULT_CACHE (512ull << 20)
#define FS_MAX_THREADS 64

/* ---- state ----------------------------------------------------------------- */

struct fs_opts {
    char *policy, *ledger, *ledger_key, *cache_size, *max_file_size, *session, *log_level;
    int hide_denied;
    int show_help, show_version;
    char *source;
    int nonopts;
};

/* What the kernel last got for a path: keep_cache is safe only while the view
 * served is byte-identical to that. */
struct seen {
    struct seen *next;
    char served_sha256[SHA256_HEX_LEN];
    size_t len;
    char path[];
};
#define SEEN_BUCKETS 16384u

static struct {
    struct fs_opts o;
    int rootfd;
    char source_abs[PATH_MAX];
    uint64_t max_size_opt; /* 0: from the policy */
    fs_cache *cache;
    ledger *ledger;
    struct fuse *fuse;

    pthread_rwlock_t pol_lock; /* builders hold it shared; reload swaps exclusively */
    dlp_policy *pol;

    pthread_mutex_t seen_lock;
    struct seen *seen[SEEN_BUCKETS];

    char mount_id[17];
    atomic_uint_fast64_t req_counter;

    sem_t hup_sem;
    atomic_int stopping;
} g;

/* An open file: the view it pinned. */
struct fs_handle {
    fs_view *view;
};

static uint64_t max_size_locked(void)
{
    uint64_t pmax = dlp_policy_max_size(g.pol);
    if (g.max_size_opt && (pmax == 0 || g.max_size_opt < pmax))
        return g.max_size_opt;
    return pmax ? pmax : UINT64_MAX;
}

/* "/a/b" -> "a/b", "/" -> "." */
static const char *relpath(const char *path)
{
    while (*path == '/')
        path++;
    return *path ? path : ".";
}

/* ---- the reader's identity (for the ledger) --------------------------------- */

struct reader {
    pid_t pid;
    uid_t uid;
    gid_t gid;
    char comm[64];
    char exe[PATH_MAX];
    char cgroup[512];
};

static void read_small(const char *path, char *out, size_t outlen)
{
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read_full(fd, out, outlen - 1);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
}

static void reader_identify(struct reader *r)
{
    const struct fuse_context *ctx = fuse_get_context();
    r->pid = ctx->pid;
    r->uid = ctx->uid;
    r->gid = ctx->gid;
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/comm", (int)r->pid);
    read_small(p, r->comm, sizeof r->comm);
    r->comm[strcspn(r->comm, "\n")] = '\0';
    snprintf(p, sizeof p, "/proc/%d/exe", (int)r->pid);
    ssize_t n = readlink(p, r->exe, sizeof r->exe - 1);
    r->exe[n > 0 ? n : 0] = '\0';
    /* cgroup v2: one line "0::/path". */
    char cg[sizeof r->cgroup];
    snprintf(p, sizeof p, "/proc/%d/cgroup", (int)r->pid);
    read_small(p, cg, sizeof cg);
    const char *s = strstr(cg, "0::");
    snprintf(r->cgroup, sizeof r->cgroup, "%s", s ? s + 3 : cg);
    r->cgroup[strcspn(r->cgroup, "\n")] = '\0';
}

static void next_request_id(char *out, size_t len)
{
    unsigned long long n = (unsigned long long)atomic_fetch_add(&g.req_counter, 1) + 1;
    snprintf(out, len, "%s-%llu", g.mount_id, n);
}

/* ---- ledger ------------------------------------------------------------------ */

static int record_event(ledger_event ev, const char *decision, const char *reason,
                        const char *path, const char *policy_hash)
{
    char rid[48];
    next_request_id(rid, sizeof rid);
    ledger_record rec = {
        .event = ev,
        .pid = getpid(),
        .uid = getuid(),
        .gid = getgid(),
        .process = "sluicefs",
        .session = g.o.session,
        .path = path,
        .policy_hash = policy_hash,
        .decision = decision,
        .reason = reason,
        .request_id = rid,
    };
    int r = ledger_append(g.ledger, &rec, NULL);
    if (r < 0)
        log_error("msg=\"ledger append failed\" event=%s err=\"%s\"", ledger_event_name(ev),
                  strerror(-r));
    return r;
}

static const char *refusal_reason(int err)
{
    switch (err) {
    case -EXDEV: return "symlink leads outside the source";
    case -ELOOP: return "too many levels of symlinks";
    case -EPERM: return "not a regular file: special files are never opened";
    case -EFBIG: return "larger than the size limit";
    case -EAGAIN: return "source kept changing while being read";
    case -ENOENT: return "no such file";
    case -EISDIR: return "is a directory";
    default: return NULL;
    }
}

/* ---- kernel cache coherence ------------------------------------------------- */

static unsigned seen_bucket(const char *path)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % SEEN_BUCKETS;
}

/* Record that the kernel is getting `v` for `path`; 1 when it is byte-identical
 * to what the kernel got last time (so its page cache may be kept), 0 when the
 * content changed (or is new) and the kernel's caches must be dropped. */
static int seen_update(const char *path, const fs_view *v, int *was_known)
{
    unsigned b = seen_bucket(path);
    int same = 0;
    *was_known = 0;
    pthread_mutex_lock(&g.seen_lock);
    struct seen *s = g.seen[b];
    while (s && strcmp(s->path, path) != 0)
        s = s->next;
    if (s) {
        *was_known = 1;
        same = s->len == v->len && strcmp(s->served_sha256, v->served_sha256) == 0;
    } else {
        s = malloc(sizeof *s + strlen(path) + 1);
        if (s) {
            strcpy(s->path, path);
            s->next = g.seen[b];
            g.seen[b] = s;
        }
    }
    if (s) {
        memcpy(s->served_sha256, v->served_sha256, sizeof s->served_sha256);
        s->len = v->len;
    }
    pthread_mutex_unlock(&g.seen_lock);
    return same;
}

/* After a policy reload every view may change: drop what the kernel caches
 * for every path it was served, and forget them. */
static void seen_invalidate_all(void)
{
    pthread_mutex_lock(&g.seen_lock);
    struct seen *all = NULL;
    for (unsigned b = 0; b < SEEN_BUCKETS; b++) {
        struct seen *s = g.seen[b];
        while (s) {
            struct seen *n = s->next;
            s->next = all;
            all = s;
            s = n;
        }
        g.seen[b] = NULL;
    }
    pthread_mutex_unlock(&g.seen_lock);
    size_t n = 0;
    while (all) {
        struct seen *nx = all->next;
        char p[PATH_MAX + 2];
        snprintf(p, sizeof p, "/%s", all->path);
        /* -ENOENT: the kernel has forgotten the node already; nothing cached. */
        fuse_invalidate_path(g.fuse, p);
        free(all);
        all = nx;
        n++;
    }
    log_info("msg=\"kernel caches invalidated\" paths=%zu", n);
}

/* ---- attributes ---------------------------------------------------------------- */

static void ro_attrs(struct stat *st)
{
    st->st_mode &= ~(mode_t)(S_IWUSR | S_IWGRP | S_IWOTH | S_ISUID | S_ISGID | S_ISVTX);
}

/* Something that exists but will never be served (special file, escaping
 * symlink, refused content): a read-only regular file of size 0, so listings
 * and `stat` show it and an open gets EACCES (and a ledger record). */
static void refused_attrs(struct stat *st)
{
    st->st_mode = S_IFREG | (st->st_mode & 0444);
    st->st_size = 0;
    st->st_blocks = 0;
    st->st_rdev = 0;
    st->st_nlink = 1;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    if (fi && fi->fh) { /* fstat of an open file: the view it serves */
        const struct fs_handle *h = (const struct fs_handle *)(uintptr_t)fi->fh;
        *st = (struct stat){0};
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        st->st_dev = h->view->key.dev;
        st->st_ino = h->view->key.ino;
        st->st_size = (off_t)h->view->len;
        st->st_blocks = (blkcnt_t)((h->view->len + 511) / 512);
        st->st_mtim = h->view->key.mtime;
        st->st_ctim = h->view->key.ctime;
        st->st_atim = h->view->key.mtime;
        /* Mode and owner of the source as it is now; size and times of the view. */
        struct stat cur;
        if (fs_source_stat(g.rootfd, relpath(path ? path : "/"), &cur) == 0 && S_ISREG(cur.st_mode)) {
            st->st_mode = S_IFREG | (cur.st_mode & 07777);
            st->st_uid = cur.st_uid;
            st->st_gid = cur.st_gid;
        }
        ro_attrs(st);
        return 0;
    }
    const char *rel = relpath(path);
    int r = fs_source_stat(g.rootfd, rel, st);
    if (r == -EXDEV || r == -ELOOP) {
        if (g.o.hide_denied)
            return -ENOENT;
        int fd; /* the link itself, still resolved beneath SOURCE */
        if (fs_source_path_fd(g.rootfd, rel, 0, &fd) < 0)
            return r;
        r = fstat(fd, st) < 0 ? -errno : 0;
        close(fd);
        if (r < 0)
            return r;
        st->st_mode = S_IFREG | 0444;
        refused_attrs(st);
        return 0;
    }
    if (r < 0)
        return r;
    if (S_ISDIR(st->st_mode)) {
        ro_attrs(st);
        return 0;
    }
    if (!S_ISREG(st->st_mode)) {
        if (g.o.hide_denied)
            return -ENOENT;
        refused_attrs(st);
        ro_attrs(st);
        return 0;
    }
    fs_view *v = NULL;
    pthread_rwlock_rdlock(&g.pol_lock);
    r = fs_view_get(g.cache, g.pol, g.rootfd, rel, max_size_locked(), &v);
    pthread_rwlock_unlock(&g.pol_lock);
    if (r == -ENOENT || r == -ENOTDIR)
        return r;
    if (r < 0 || v->status < 0) {
        fs_view_unref(g.cache, v);
        if (g.o.hide_denied)
            return -ENOENT;
        refused_attrs(st);
        ro_attrs(st);
        return 0;
    }
    /* The identity the view was built from (it may be newer than our stat). */
    st->st_size = (off_t)v->len;
    st->st_blocks = (blkcnt_t)((v->len + 511) / 512);
    st->st_mtim = v->key.mtime;
    st->st_ctim = v->key.ctime;
    st->st_ino = v->key.ino;
    fs_view_unref(g.cache, v);
    ro_attrs(st);
    return 0;
}

/* ---- open / read / release -------------------------------------------------------- */

static int fs_open(const char *path, struct fuse_file_info *fi)
{
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & (O_TRUNC | O_CREAT)))
        return -EROFS;
    const char *rel = relpath(path);
    struct reader rd;
    reader_identify(&rd);
    char rid[48];
    next_request_id(rid, sizeof rid);

    fs_view *v = NULL;
    char policy_hash[SHA256_HEX_LEN];
    pthread_rwlock_rdlock(&g.pol_lock);
    snprintf(policy_hash, sizeof policy_hash, "%s", dlp_policy_hash(g.pol));
    int r = fs_view_get(g.cache, g.pol, g.rootfd, rel, max_size_locked(), &v);
    pthread_rwlock_unlock(&g.pol_lock);

    int served = r == 0 && v->status == 0;
    const char *reason = NULL;
    char why[200];
    if (r < 0) {
        reason = refusal_reason(r);
        if (reason == NULL) {
            snprintf(why, sizeof why, "could not read the source: %s", strerror(-r));
            reason = why;
        }
    } else if (!served) {
        reason = v->reason;
    }
    ledger_record rec = {
        .event = served ? LEDGER_OPEN_SERVED : LEDGER_OPEN_REFUSED,
        .pid = rd.pid,
        .uid = rd.uid,
        .gid = rd.gid,
        .process = rd.comm,
        .exe = rd.exe[0] ? rd.exe : NULL,
        .cgroup = rd.cgroup[0] ? rd.cgroup : NULL,
        .session = g.o.session,
        .path = rel,
        .source_sha256 = v && v->source_sha256[0] ? v->source_sha256 : NULL,
        .served_sha256 = served ? v->served_sha256 : NULL,
        .size_served = served ? v->len : 0,
        .mime = v && v->mime[0] ? v->mime : NULL,
        .policy_hash = policy_hash,
        .hits = v ? v->hits : NULL,
        .nhits = v ? v->nhits : 0,
        .decision = served ? "served" : "refused",
        .reason = reason,
        .request_id = rid,
    };
    uint64_t seq = 0;
    int lr = ledger_append(g.ledger, &rec, &seq);
    if (lr < 0) {
        /* No durable record, no access. */
        log_error("msg=\"open refused: ledger append failed\" req=%s path=\"%s\" err=\"%s\"", rid,
                  rel, strerror(-lr));
        fs_view_unref(g.cache, v);
        return -EACCES;
    }
    if (!served) {
        log_info("msg=\"open refused\" req=%s seq=%llu path=\"%s\" pid=%d comm=\"%s\" reason=\"%s\"",
                 rid, (unsigned long long)seq, rel, (int)rd.pid, rd.comm, reason ? reason : "");
        fs_view_unref(g.cache, v);
        return r == -ENOENT || r == -ENOTDIR ? r : -EACCES;
    }
    log_debug("msg=\"open served\" req=%s seq=%llu path=\"%s\" pid=%d comm=\"%s\" size=%zu "
              "view=%llu hits=%zu",
              rid, (unsigned long long)seq, rel, (int)rd.pid, rd.comm, v->len,
              (unsigned long long)v->gen, v->nhits);
    struct fs_handle *h = malloc(sizeof *h);
    if (h == NULL) {
        fs_view_unref(g.cache, v);
        return -ENOMEM;
    }
    h->view = v;
    fi->fh = (uint64_t)(uintptr_t)h;
    fi->direct_io = 0; /* through the page cache: mmap works, repeated reads are free */
    int known;
    fi->keep_cache = (unsigned)seen_update(rel, v, &known);
    if (!fi->keep_cache && known) {
        /* The kernel holds the previous version's pages and size: drop both
         * now, so the first read refetches the size of this view. (A new
         * path has nothing cached; keep_cache=0 alone clears pages.) */
        fuse_invalidate_path(g.fuse, path);
    }
    return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)path;
    const struct fs_handle *h = (const struct fs_handle *)(uintptr_t)fi->fh;
    const fs_view *v = h->view;
    if (off < 0)
        return -EINVAL;
    if ((uint64_t)off >= v->len)
        return 0;
    size_t n = v->len - (size_t)off;
    if (n > size)
        n = size;
    memcpy(buf, v->data + off, n);
    return (int)n;
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
    if (h) {
        fs_view_unref(g.cache, h->view);
        free(h);
    }
    return 0;
}

/* ---- directories -------------------------------------------------------------------- */

/* An open directory; the path is kept because readdir may get none
 * (nullpath_ok) and entries are resolved from SOURCE by relative path. */
struct fs_dir {
    DIR *dir;
    char rel[];
};

static int fs_opendir(const char *path, struct fuse_file_info *fi)
{
    int pfd;
    int r = fs_source_path_fd(g.rootfd, relpath(path), 1, &pfd);
    if (r < 0)
        return r;
    /* Reopened from the O_PATH fd: O_DIRECTORY refuses anything else, and
     * O_NOATIME keeps the source directory's atime. */
    int fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOATIME);
    r = fd < 0 ? -errno : 0;
    close(pfd);
    if (r < 0)
        return r;
    const char *rel = relpath(path);
    struct fs_dir *dh = malloc(sizeof *dh + strlen(rel) + 1);
    DIR *d = dh ? fdopendir(fd) : NULL;
    if (d == NULL) {
        r = dh ? -errno : -ENOMEM;
        free(dh);
        close(fd);
        return r;
    }
    dh->dir = d;
    strcpy(dh->rel, rel);
    fi->fh = (uint64_t)(uintptr_t)dh;
    return 0;
}

/* Under hide_denied: would this entry be served? Decided without building the
 * view: the cached verdict if any, else the policy's verdict on the type of
 * the file's first bytes. Errors hide (fail closed). */
static int entry_visible(const char *rel)
{
    struct stat st;
    if (fs_source_stat(g.rootfd, rel, &st) < 0)
        return 0; /* escaping or dangling symlink, loop, gone */
    if (S_ISDIR(st.st_mode))
        return 1;
    if (!S_ISREG(st.st_mode))
        return 0;
    int visible = 0;
    pthread_rwlock_rdlock(&g.pol_lock);
    if ((uint64_t)st.st_size > max_size_locked())
        goto out;
    fs_view *v;
    if (fs_view_peek(g.cache, &st, dlp_policy_hash(g.pol), &v) == 0) {
        visible = v->status == 0;
        fs_view_unref(g.cache, v);
        goto out;
    }
    size_t want = (size_t)st.st_size < FS_CLASSIFY_BYTES ? (size_t)st.st_size : FS_CLASSIFY_BYTES;
    uint8_t *buf = malloc(want ? want : 1);
    if (buf == NULL)
        goto out;
    ssize_t n = fs_source_head(g.rootfd, rel, buf, want);
    dlp_type t;
    if (n >= 0 && dlp_classify(g.pol, buf, (size_t)n, &t) == 0)
        visible = t.allowed;
    free(buf);
out:
    pthread_rwlock_unlock(&g.pol_lock);
    return visible;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    (void)path;
    (void)off;
    (void)flags;
    struct fs_dir *dh = (struct fs_dir *)(uintptr_t)fi->fh;
    DIR *d = dh->dir;
    const char *rel = dh->rel;
    rewinddir(d);
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        struct stat st = {0};
        int isdot = strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
        char child[PATH_MAX];
        if (!isdot) {
            if (strcmp(rel, ".") == 0)
                snprintf(child, sizeof child, "%s", name);
            else if ((size_t)snprintf(child, sizeof child, "%s/%s", rel, name) >= sizeof child)
                continue;
        }
        /* d_type as getattr will report it: directories (also through a
         * symlink that stays inside) are directories, everything else is
         * shown as a regular file. Nothing here builds a view. */
        unsigned char type = de->d_type;
        if (!isdot && (type == DT_LNK || type == DT_UNKNOWN)) {
            struct stat t;
            type = fs_source_stat(g.rootfd, child, &t) == 0 && S_ISDIR(t.st_mode) ? DT_DIR : DT_REG;
        }
        st.st_mode = type == DT_DIR ? S_IFDIR : S_IFREG;
        if (!isdot && g.o.hide_denied && !entry_visible(child))
            continue;
        if (filler(buf, name, &st, 0, 0))
            break;
    }
    return 0;
}

static int fs_releasedir(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    struct fs_dir *dh = (struct fs_dir *)(uintptr_t)fi->fh;
    if (dh) {
        closedir(dh->dir);
        free(dh);
    }
    return 0;
}

static int fs_statfs(const char *path, struct statvfs *sv)
{
    (void)path;
    if (fstatvfs(g.rootfd, sv) < 0)
        return -errno;
    sv->f_flag |= ST_RDONLY;
    return 0;
}

/* ---- read-only, for real ---------------------------------------------------------------
 * Mounted `ro` as well, so the kernel normally answers EROFS itself; these
 * make the answer EROFS even if a mount option were lost. */
static int ro_mknod(const char *p, mode_t m, dev_t d) { (void)p; (void)m; (void)d; return -EROFS; }
static int ro_mkdir(const char *p, mode_t m) { (void)p; (void)m; return -EROFS; }
static int ro_unlink(const char *p) { (void)p; return -EROFS; }
static int ro_rmdir(const char *p) { (void)p; return -EROFS; }
static int ro_symlink(const char *a, const char *b) { (void)a; (void)b; return -EROFS; }
static int ro_rename(const char *a, const char *b, unsigned f) { (void)a; (void)b; (void)f; return -EROFS; }
static int ro_link(const char *a, const char *b) { (void)a; (void)b; return -EROFS; }
static int ro_chmod(const char *p, mode_t m, struct fuse_file_info *fi) { (void)p; (void)m; (void)fi; return -EROFS; }
static int ro_chown(const char *p, uid_t u, gid_t g_, struct fuse_file_info *fi) { (void)p; (void)u; (void)g_; (void)fi; return -EROFS; }
static int ro_truncate(const char *p, off_t o, struct fuse_file_info *fi) { (void)p; (void)o; (void)fi; return -EROFS; }
static int ro_write(const char *p, const char *b, size_t s, off_t o, struct fuse_file_info *fi) { (void)p; (void)b; (void)s; (void)o; (void)fi; return -EROFS; }
static int ro_create(const char *p, mode_t m, struct fuse_file_info *fi) { (void)p; (void)m; (void)fi; return -EROFS; }
static int ro_utimens(const char *p, const struct timespec tv[2], struct fuse_file_info *fi) { (void)p; (void)tv; (void)fi; return -EROFS; }
static int ro_setxattr(const char *p, const char *n, const char *v, size_t s, int f) { (void)p; (void)n; (void)v; (void)s; (void)f; return -EROFS; }
static int ro_removexattr(const char *p, const char *n) { (void)p; (void)n; return -EROFS; }
static int ro_fallocate(const char *p, int m, off_t o, off_t l, struct fuse_file_info *fi) { (void)p; (void)m; (void)o; (void)l; (void)fi; return -EROFS; }

/* ---- init --------------------------------------------------------------------------------- */

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    /* readdirplus would make the kernel ask for every entry's attributes
     * during a listing, and attributes of a file need its view. */
    conn->want &= ~(unsigned)(FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO);
    /* Refresh attributes (and drop stale pages) when they expire and the
     * mtime/size changed. */
    if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
        conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
    conn->max_read = FS_MAX_READ; /* must equal the max_read mount option */
    if (conn->max_readahead < FS_MAX_READ)
        conn->max_readahead = FS_MAX_READ; /* the kernel lowers it to its own limit */
    cfg->use_ino = 0;         /* symlinked paths would share inode numbers */
    cfg->nullpath_ok = 1;     /* read/release only need the handle */
    cfg->entry_timeout = FS_ENTRY_TIMEOUT;
    cfg->attr_timeout = FS_ATTR_TIMEOUT;
    cfg->negative_timeout = FS_NEGATIVE_TIMEOUT;
    cfg->kernel_cache = 0;    /* keep_cache decided per open (see fs_open) */
    cfg->auto_cache = 0;
    cfg->direct_io = 0;
    return NULL;
}

static const struct fuse_operations fs_ops = {
    .init = fs_init,
    .getattr = fs_getattr,
    .open = fs_open,
    .read = fs_read,
    .release = fs_release,
    .opendir = fs_opendir,
    .readdir = fs_readdir,
    .releasedir = fs_releasedir,
    .statfs = fs_statfs,
    .mknod = ro_mknod,
    .mkdir = ro_mkdir,
    .unlink = ro_unlink,
    .rmdir = ro_rmdir,
    .symlink = ro_symlink,
    .rename = ro_rename,
    .link = ro_link,
    .chmod = ro_chmod,
    .chown = ro_chown,
    .truncate = ro_truncate,
    .write = ro_write,
    .create = ro_create,
    .utimens = ro_utimens,
    .setxattr = ro_setxattr,
    .removexattr = ro_removexattr,
    .fallocate = ro_fallocate,
};

/* ---- policy (re)load ----------------------------------------------------------------------- */

static int policy_load(const char *path, dlp_policy **out, char *why, size_t whylen)
{
    dlp_error e;
    memset(&e, 0, sizeof e);
    int r = dlp_policy_load(path, out, &e);
    if (r < 0) {
        if (e.msg[0])
            dlp_error_format(&e, why, whylen);
        else
            snprintf(why, whylen, "%s: %s", path, strerror(-r));
    }
    return r;
}

static void policy_reload(void)
{
    dlp_policy *np = NULL;
    char why[1200];
    int r = policy_load(g.o.policy, &np, why, sizeof why);
    if (r < 0) {
        log_error("msg=\"policy reload rejected, previous policy stays in force\" error=\"%s\"", why);
        pthread_rwlock_rdlock(&g.pol_lock);
        record_event(LEDGER_POLICY_LOAD, "rejected", why, g.o.policy, dlp_policy_hash(g.pol));
        pthread_rwlock_unlock(&g.pol_lock);
        return;
    }
    char nh[SHA256_HEX_LEN];
    snprintf(nh, sizeof nh, "%s", dlp_policy_hash(np));
    /* Recorded before it takes effect: a policy that cannot be recorded is
     * not used. */
    if (record_event(LEDGER_POLICY_LOAD, "loaded", "SIGHUP reload", g.o.policy, nh) < 0) {
        log_error("msg=\"policy reload not applied: ledger append failed\"");
        dlp_policy_free(np);
        return;
    }
    pthread_rwlock_wrlock(&g.pol_lock);
    dlp_policy *old = g.pol;
    int changed = strcmp(dlp_policy_hash(old), nh) != 0;
    g.pol = np;
    pthread_rwlock_unlock(&g.pol_lock);
    dlp_policy_free(old); /* no builder holds it: they run under the read lock */
    log_info("msg=\"policy reloaded\" policy=\"%s\" hash=%s changed=%d", g.o.policy, nh, changed);
    if (changed) {
        /* Old views can never match the new key; free their memory now and
         * make the kernel forget sizes and pages it got under the old policy. */
        fs_cache_clear(g.cache);
        seen_invalidate_all();
    }
}

static void on_sighup(int sig)
{
    (void)sig;
    sem_post(&g.hup_sem); /* async-signal-safe; the reload runs in its thread */
}

static void *reload_thread(void *arg)
{
    (void)arg;
    for (;;) {
        if (sem_wait(&g.hup_sem) < 0)
            continue;
        if (atomic_load(&g.stopping))
            break;
        policy_reload();
    }
    return NULL;
}

/* ---- command line ------------------------------------------------------------------------------ */

enum { KEY_HELP, KEY_VERSION };
#define FS_OPT(t, p) {t, offsetof(struct fs_opts, p), 1}
static const struct fuse_opt fs_optspec[] = {
    FS_OPT("policy=%s", policy),
    FS_OPT("ledger=%s", ledger),
    FS_OPT("ledger_key=%s", ledger_key),
    FS_OPT("cache_size=%s", cache_size),
    FS_OPT("max_file_size=%s", max_file_size),
    FS_OPT("session=%s", session),
    FS_OPT("log_level=%s", log_level),
    FS_OPT("hide_denied", hide_denied),
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    FUSE_OPT_END,
};

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    (void)outargs;
    struct fs_opts *o = data;
    switch (key) {
    case KEY_HELP:
        o->show_help = 1;
        return 0;
    case KEY_VERSION:
        o->show_version = 1;
        return 0;
    case FUSE_OPT_KEY_NONOPT:
        if (o->nonopts++ == 0) {
            o->source = strdup(arg);
            return 0; /* consumed: libfuse sees only the mountpoint */
        }
        return 1;
    default:
        return 1;
    }
}

static void usage(const char *prog)
{
    printf("usage: %s [-f] [-o OPTIONS] SOURCE MOUNTPOINT\n"
           "\n"
           "Serve SOURCE read-only at MOUNTPOINT, every file as its sanitized view.\n"
           "\n"
           "sluicefs options (-o):\n"
           "    policy=FILE          DLP policy (default: $SLUICE_POLICY)\n"
           "    ledger=FILE          access ledger database (required)\n"
           "    ledger_key=FILE      ledger sealing key (default: $SLUICE_LEDGER_KEY)\n"
           "    cache_size=SIZE      memory for cached views (default 512M)\n"
           "    max_file_size=SIZE   refuse larger files (default: the policy's limit)\n"
           "    hide_denied          leave refused files out of listings\n"
           "    session=LABEL        label recorded with every access\n"
           "    log_level=LEVEL      error, warn, info (default) or debug\n"
           "    allow_other          let other users (the sandbox) use the mount\n"
           "general options:\n"
           "    -f                   foreground, log to stderr (else daemon, syslog)\n"
           "    -d                   foreground with FUSE debug output\n"
           "    -h, --help           this help\n"
           "    -V, --version        version\n"
           "\n"
           "See sluicefs(8).\n",
           prog);
}

static void mount_id_init(void)
{
    uint8_t r[8];
    if (RAND_bytes(r, sizeof r) != 1)
        memset(r, 0, sizeof r);
    hex_encode(r, sizeof r, g.mount_id);
}

int main(int argc, char **argv)
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    log_init("sluicefs", LOG_LVL_INFO);
    if (fuse_opt_parse(&args, &g.o, fs_optspec, opt_proc) < 0)
        return 2;
    if (g.o.show_help) {
        usage(argv[0]);
        return 0;
    }
    if (g.o.show_version) {
        printf("sluicefs %s (libfuse %s)\n", SLUICE_VERSION, fuse_pkgversion());
        return 0;
    }
    if (g.o.log_level) {
        enum log_level lvl;
        if (log_parse_level(g.o.log_level, &lvl) < 0) {
            sluice_err("log_level=%s: expected error, warn, info or debug", g.o.log_level);
            return 2;
        }
        log_init("sluicefs", lvl);
    }
    if (!g.o.policy && getenv("SLUICE_POLICY"))
        g.o.policy = strdup(getenv("SLUICE_POLICY"));
    if (!g.o.ledger_key && getenv("SLUICE_LEDGER_KEY"))
        g.o.ledger_key = strdup(getenv("SLUICE_LEDGER_KEY"));
    if (!g.o.source) {
        sluice_err("missing SOURCE and MOUNTPOINT (see --help)");
        return 2;
    }
    if (!g.o.policy) {
        sluice_err("no policy: give -o policy=FILE or set SLUICE_POLICY");
        return 2;
    }
    if (!g.o.ledger || !g.o.ledger_key) {
        sluice_err("no ledger: give -o ledger=FILE,ledger_key=FILE (every access is recorded)");
        return 2;
    }
    uint64_t cache_cap = FS_DEFAULT_CACHE;
    if (g.o.cache_size && parse_size(g.o.cache_size, &cache_cap) < 0) {
        sluice_err("cache_size=%s: not a size", g.o.cache_size);
        return 2;
    }
    if (g.o.max_file_size &&
        (parse_size(g.o.max_file_size, &g.max_size_opt) < 0 || g.max_size_opt == 0)) {
        sluice_err("max_file_size=%s: not a size", g.o.max_file_size);
        return 2;
    }

    struct fuse_cmdline_opts cmd;
    memset(&cmd, 0, sizeof cmd);
    if (fuse_parse_cmdline(&args, &cmd) != 0)
        return 2;
    if (!cmd.mountpoint) {
        sluice_err("missing MOUNTPOINT (see --help)");
        return 2;
    }

    g.rootfd = open(g.o.source, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (g.rootfd < 0) {
        sluice_err("%s: %s", g.o.source, strerror(errno));
        return 1;
    }
    if (!realpath(g.o.source, g.source_abs))
        snprintf(g.source_abs, sizeof g.source_abs, "%s", g.o.source);

    char why[1200];
    if (policy_load(g.o.policy, &g.pol, why, sizeof why) < 0) {
        sluice_err("policy: %s", why);
        return 1;
    }
    /* Validate the ledger now, while errors still reach the terminal; it is
     * opened for real after daemonizing (SQLite's locks do not survive fork). */
    {
        ledger *probe = NULL;
        if (ledger_open(g.o.ledger, g.o.ledger_key, &probe, why, sizeof why) < 0) {
            sluice_err("ledger %s: %s", g.o.ledger, why);
            return 1;
        }
        ledger_close(probe);
    }
    if (fs_cache_new(cache_cap, &g.cache) < 0) {
        sluice_err("out of memory");
        return 1;
    }
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* A pending reload must not wait behind a stream of opens. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&g.pol_lock, &ra);
    pthread_mutex_init(&g.seen_lock, NULL);
    sem_init(&g.hup_sem, 0, 0);
    mount_id_init();

    /* ro for real; default_permissions: the kernel checks the source's mode
     * bits (as reported) for every user; nosuid/nodev: nothing served runs
     * privileged or acts as a device. */
    char mopts[256];
    snprintf(mopts, sizeof mopts,
             "-oro,default_permissions,nosuid,nodev,fsname=sluicefs,subtype=sluice,max_read=%u",
             FS_MAX_READ);
    fuse_opt_add_arg(&args, mopts);

    g.fuse = fuse_new(&args, &fs_ops, sizeof fs_ops, NULL);
    if (g.fuse == NULL) {
        sluice_err("could not set up FUSE (bad option?)");
        return 1;
    }
    if (fuse_mount(g.fuse, cmd.mountpoint) != 0) {
        sluice_err("%s: could not mount", cmd.mountpoint);
        fuse_destroy(g.fuse);
        return 1;
    }
    if (!cmd.foreground)
        log_use_syslog(1);
    if (fuse_daemonize(cmd.foreground) != 0) {
        fuse_unmount(g.fuse);
        fuse_destroy(g.fuse);
        return 1;
    }
    int rc = 1;
    if (ledger_open(g.o.ledger, g.o.ledger_key, &g.ledger, why, sizeof why) < 0) {
        log_error("msg=\"cannot open ledger, unmounting\" ledger=\"%s\" error=\"%s\"", g.o.ledger, why);
        goto out_unmount;
    }
    const char *ph = dlp_policy_hash(g.pol);
    if (record_event(LEDGER_POLICY_LOAD, "loaded", "at mount", g.o.policy, ph) < 0 ||
        record_event(LEDGER_MOUNT, "mounted", cmd.mountpoint, g.source_abs, ph) < 0)
        goto out_ledger;

    struct fuse_session *se = fuse_get_session(g.fuse);
    if (fuse_set_signal_handlers(se) != 0)
        goto out_ledger;
    /* libfuse makes SIGHUP unmount; for us it means "reload the policy". */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sighup;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
    pthread_t rt;
    if (pthread_create(&rt, NULL, reload_thread, NULL) != 0)
        goto out_signals;

    log_info("msg=\"mounted\" source=\"%s\" mountpoint=\"%s\" policy=\"%s\" policy_hash=%s "
             "cache=%llu hide_denied=%d session=\"%s\" mount_id=%s",
             g.source_abs, cmd.mountpoint, g.o.policy, ph, (unsigned long long)cache_cap,
             g.o.hide_denied, g.o.session ? g.o.session : "", g.mount_id);

    struct fuse_loop_config *lc = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(lc, cmd.clone_fd);
    fuse_loop_cfg_set_idle_threads(lc, cmd.max_idle_threads ? cmd.max_idle_threads : 10);
    fuse_loop_cfg_set_max_threads(lc, FS_MAX_THREADS);
    int lr = cmd.singlethread ? fuse_loop(g.fuse) : fuse_loop_mt(g.fuse, lc);
    fuse_loop_cfg_destroy(lc);
    rc = lr == 0 ? 0 : 1;

    atomic_store(&g.stopping, 1);
    sem_post(&g.hup_sem);
    pthread_join(rt, NULL);
    record_event(LEDGER_UNMOUNT, "unmounted", lr == 0 ? "clean" : "loop error", g.source_abs,
                 dlp_policy_hash(g.pol));
    log_info("msg=\"unmounted\" mountpoint=\"%s\"", cmd.mountpoint);
out_signals:
    fuse_remove_signal_handlers(se);
out_ledger:
    ledger_close(g.ledger);
out_unmount:
    fuse_unmount(g.fuse);
    fuse_destroy(g.fuse);
    fs_cache_free(g.cache);
    dlp_policy_free(g.pol);
    close(g.rootfd);
    free(cmd.mountpoint);
    fuse_opt_free_args(&args);
    return rc;
}
