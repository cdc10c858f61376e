/* fs/sluicefs.c — sluicefs: the read-only FUSE filesystem that serves every
 * file of SOURCE as its sanitized view, and records every open in the ledger.
 *
 * Must never: serve a byte that did not come out of dlp_sanitize() returning
 * 0 for the same version of the file under the policy in force; serve before
 * the ledger record is durable; open a special file; follow a symlink out of
 * SOURCE; modify SOURCE (not even atime).
 *
 * Why the low-level libfuse API (the shape of libfuse's passthrough_hp): a
 * FUSE inode must stand for one source inode, as on a native file system.
 * When a file is replaced by rename (how the diode's vault publishes), the
 * new version gets a new FUSE inode with its own page cache and size, so a
 * reader that opened the old version keeps reading the old version whole
 * while new opens see the new one: no reader ever gets a mix. The high-level
 * API ties inodes to path names and cannot do that. Every access is still
 * resolved by path from the SOURCE directory fd with openat2(RESOLVE_BENEATH)
 * (fs/source.c); an inode whose path now leads to another source inode answers
 * ESTALE, which makes the kernel look the name up again.
 *
 * Sizes and stat: a file's size is the size of its view, which exists only
 * after sanitizing it. lookup/getattr of a single regular file builds its view
 * (once: it is cached); readdir never does (readdirplus is disabled, d_type
 * comes from the directory entry), so a listing or `find` over thousands of
 * files sanitizes nothing. Each open re-stats the source and uses the view of
 * that exact version; reads of an open file always come from the view it
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
#include <fuse_lowlevel.h>
#include <limits.h>
#include <malloc.h>
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
 * this only bounds how long `stat` may show the previous version after the
 * source changes behind our back (we get no notification of that). One
 * second keeps repeated `stat`s of unchanged files off the daemon while a
 * changed source shows up almost at once. */
#define FS_ATTR_TIMEOUT 1.0
#define FS_ENTRY_TIMEOUT 1.0
/* Largest request: 1 MiB reads (256 pages). */
#define FS_MAX_READ (1u << 20)
/* libmagic looks at no more than this much of a file's start. */
#define FS_CLASSIFY_BYTES (1u << 20)
#define FS_DEFAULT_CACHE (512ull << 20)
#define FS_MAX_THREADS 64
#define INODE_BUCKETS 65536u

/* ---- state ----------------------------------------------------------------- */

struct fs_opts {
    char *policy, *ledger, *ledger_key, *cache_size, *max_file_size, *session, *log_level;
    char *spill_dir, *spill_size, *build_memory, *user, *readahead;
    int hide_denied;
    int no_sandbox;
    int no_prebuild;
    int show_help, show_version;
    char *source;
    int nonopts;
};

enum fs_kind {
    FS_KIND_DIR = 1,
    FS_KIND_FILE,    /* a regular file: served as its view (or refused by the engine) */
    FS_KIND_REFUSED, /* special file, symlink out of SOURCE or looping: shown, never opened */
};

/* One FUSE inode = one version of one source inode: (dev, ino) and, for
 * regular files, the ctime, which every write, truncate or rename changes.
 * A rewritten or replaced file is a new FUSE inode with its own page cache
 * and size, so an fd opened on the old version keeps reading that version
 * whole and no reader can get a mix; the ctime also tells apart a new file
 * that got a recycled inode number (ext4 reuses them at once). The symlink
 * itself stands for refused links. The nodeid is the address (passthrough_hp's
 * choice): no lookup table on the hot path. */
struct fs_inode {
    dev_t dev;
    ino_t sino;
    struct timespec ctime; /* zero for directories and refused entries */
    uint64_t pgen;         /* policy generation (files): a new policy, a new inode */
    enum fs_kind kind;
    uint64_t generation;
    uint64_t nlookup;              /* kernel references; freed at 0 (root never) */
    char *path;                    /* relative to SOURCE, as last looked up */
    /* what the kernel last got for this inode: keep_cache is safe only while
     * the view served is byte-identical to it */
    int served_known;
    char served_sha256[SHA256_HEX_LEN];
    size_t served_len;
    struct fs_inode *hnext;
};

static struct {
    struct fs_opts o;
    int rootfd;
    char source_abs[PATH_MAX];
    uint64_t max_size_opt; /* 0: from the policy */
    fs_cache *cache;
    ledger *ledger;
    struct fuse_session *se;

    pthread_rwlock_t pol_lock; /* builders hold it shared; reload swaps exclusively */
    dlp_policy *pol;

    pthread_mutex_t ino_lock;
    /* Open files: freed at exit too, when the loop stopped (SIGTERM) before
     * the kernel's release of a file closed just before reached us. */
    pthread_mutex_t handles_lock;
    struct fs_handle *handles;
    struct fs_inode root;
    struct fs_inode *inodes[INODE_BUCKETS];
    uint64_t next_generation;

    char mount_id[17];
    atomic_uint_fast64_t req_counter;
    /* Bumped when a reload changes the policy. A file's FUSE inode belongs
     * to one generation: after a reload, names lead to new inodes (fresh
     * page cache), and fds opened before read nothing more (EIO), neither
     * old-policy bytes nor new bytes their open did not record. */
    atomic_uint_fast64_t pol_gen;

    sem_t hup_sem;
    atomic_int stopping;
    unsigned readahead; /* the mount's readahead, bytes (0: the kernel's) */
    fs_unmount_helper helper; /* unmounts; reads /proc/PID/exe for us */
} g;

/* An open file: the view it pinned and the attributes it was opened with. */
struct fs_handle {
    fs_view *view;
    struct stat st;
    struct fs_handle *prev, *next; /* g.handles */
};

static void handle_link(struct fs_handle *h)
{
    pthread_mutex_lock(&g.handles_lock);
    h->prev = NULL;
    h->next = g.handles;
    if (g.handles)
        g.handles->prev = h;
    g.handles = h;
    pthread_mutex_unlock(&g.handles_lock);
}

static void handle_free(struct fs_handle *h)
{
    pthread_mutex_lock(&g.handles_lock);
    if (h->prev)
        h->prev->next = h->next;
    else
        g.handles = h->next;
    if (h->next)
        h->next->prev = h->prev;
    pthread_mutex_unlock(&g.handles_lock);
    fs_view_unref(g.cache, h->view);
    free(h);
}

/* An open directory. */
struct fs_dir {
    DIR *dir;
    off_t offset;
    char rel[];
};

static uint64_t max_size_locked(void)
{
    uint64_t pmax = dlp_policy_max_size(g.pol);
    if (g.max_size_opt && (pmax == 0 || g.max_size_opt < pmax))
        return g.max_size_opt;
    return pmax ? pmax : UINT64_MAX;
}

/* ---- the reader's identity (for the ledger) --------------------------------- */

struct reader {
    pid_t pid;
    uid_t uid;
    gid_t gid;
    fs_proc_ident id; /* exe, comm, cgroup: read by the unconfined helper */
};

/* 0, or -EIO when who the reader is could not be learnt (pid, uid and gid,
 * from the kernel, are always there) */
static int reader_identify(fuse_req_t req, struct reader *r)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    r->pid = ctx->pid;
    r->uid = ctx->uid;
    r->gid = ctx->gid;
    return fs_helper_identify(&g.helper, r->pid, &r->id);
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

/* ---- inodes ------------------------------------------------------------------ */

static struct fs_inode *inode_of(fuse_ino_t ino)
{
    return ino == FUSE_ROOT_ID ? &g.root : (struct fs_inode *)(uintptr_t)ino;
}

static fuse_ino_t nodeid_of(struct fs_inode *i)
{
    return i == &g.root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)i;
}

/* Regular files are versions; directories keep one inode while their
 * entries change (their ctime changes with every entry). */
static struct timespec identity_ctime(const struct stat *st, enum fs_kind kind)
{
    return kind == FS_KIND_FILE ? st->st_ctim : (struct timespec){0, 0};
}

static uint64_t identity_pgen(enum fs_kind kind)
{
    return kind == FS_KIND_FILE ? (uint64_t)atomic_load(&g.pol_gen) : 0;
}

static int same_identity(const struct fs_inode *i, const struct stat *st, enum fs_kind kind)
{
    const struct timespec c = identity_ctime(st, kind);
    return i->kind == kind && i->dev == st->st_dev && i->sino == st->st_ino &&
           i->ctime.tv_sec == c.tv_sec && i->ctime.tv_nsec == c.tv_nsec &&
           i->pgen == identity_pgen(kind);
}

static unsigned inode_bucket(dev_t dev, ino_t sino, enum fs_kind kind)
{
    uint64_t h = ((uint64_t)dev * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)sino * 0xC2B2AE3D27D4EB4Full) ^ (uint64_t)kind;
    h ^= h >> 31;
    return (unsigned)(h % INODE_BUCKETS);
}

/* The relative path of an inode, copied (the inode's may be replaced by a
 * concurrent lookup). NULL on allocation failure. */
static char *inode_path(struct fs_inode *i)
{
    pthread_mutex_lock(&g.ino_lock);
    char *p = strdup(i->path);
    pthread_mutex_unlock(&g.ino_lock);
    return p;
}

/* Find or make the inode for a source identity, count one kernel reference
 * and remember the path it was reached by. */
static struct fs_inode *inode_get(const struct stat *st, enum fs_kind kind, const char *rel)
{
    char *path = strdup(rel);
    if (path == NULL)
        return NULL;
    const dev_t dev = st->st_dev;
    const ino_t sino = st->st_ino;
    pthread_mutex_lock(&g.ino_lock);
    unsigned b = inode_bucket(dev, sino, kind);
    struct fs_inode *i = g.inodes[b];
    while (i && !same_identity(i, st, kind))
        i = i->hnext;
    if (i == NULL) {
        i = calloc(1, sizeof *i);
        if (i == NULL) {
            pthread_mutex_unlock(&g.ino_lock);
            free(path);
            return NULL;
        }
        i->dev = dev;
        i->sino = sino;
        i->ctime = identity_ctime(st, kind);
        i->pgen = identity_pgen(kind);
        i->kind = kind;
        i->generation = ++g.next_generation;
        i->hnext = g.inodes[b];
        g.inodes[b] = i;
    }
    i->nlookup++;
    free(i->path);
    i->path = path;
    pthread_mutex_unlock(&g.ino_lock);
    return i;
}

static void inode_forget(struct fs_inode *i, uint64_t n)
{
    if (i == &g.root)
        return;
    pthread_mutex_lock(&g.ino_lock);
    i->nlookup = n >= i->nlookup ? 0 : i->nlookup - n;
    if (i->nlookup > 0) {
        pthread_mutex_unlock(&g.ino_lock);
        return;
    }
    struct fs_inode **pp = &g.inodes[inode_bucket(i->dev, i->sino, i->kind)];
    while (*pp && *pp != i)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = i->hnext;
    pthread_mutex_unlock(&g.ino_lock);
    free(i->path);
    free(i);
}

/* Record that the kernel is getting `v` for inode `i`; 1 when it is
 * byte-identical to what the kernel got last time (its page cache may be
 * kept). *was_known: the kernel may hold pages or a size of an older view. */
static int inode_served(struct fs_inode *i, const fs_view *v, int *was_known)
{
    pthread_mutex_lock(&g.ino_lock);
    *was_known = i->served_known;
    int same = i->served_known && i->served_len == v->len &&
               strcmp(i->served_sha256, v->served_sha256) == 0;
    i->served_known = 1;
    i->served_len = v->len;
    memcpy(i->served_sha256, v->served_sha256, sizeof i->served_sha256);
    pthread_mutex_unlock(&g.ino_lock);
    return same;
}

/* After a policy change every view may differ: make the kernel drop the
 * sizes and pages it holds for every inode it was served. The notifications
 * are sent without holding ino_lock: the kernel may need our worker threads
 * (which take that lock) to finish reads before it can drop pages. */
static void inodes_invalidate_all(void)
{
    size_t n = 0, cap = 1024;
    fuse_ino_t *ids = malloc(cap * sizeof *ids);
    pthread_mutex_lock(&g.ino_lock);
    for (unsigned b = 0; b < INODE_BUCKETS; b++)
        for (struct fs_inode *i = g.inodes[b]; i; i = i->hnext) {
            if (!i->served_known)
                continue;
            i->served_known = 0;
            if (n == cap) {
                fuse_ino_t *nids = realloc(ids, 2 * cap * sizeof *ids);
                if (nids == NULL)
                    continue;
                ids = nids;
                cap *= 2;
            }
            if (ids)
                ids[n++] = nodeid_of(i);
        }
    pthread_mutex_unlock(&g.ino_lock);
    for (size_t k = 0; k < n; k++)
        fuse_lowlevel_notify_inval_inode(g.se, ids[k], 0, 0); /* -ENOENT: already forgotten */
    free(ids);
    log_info("msg=\"kernel caches invalidated\" inodes=%zu", n);
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
    ro_attrs(st);
}

static void view_attrs(struct stat *st, const fs_view *v)
{
    st->st_size = (off_t)v->len;
    st->st_blocks = (blkcnt_t)((v->len + 511) / 512);
    st->st_mtim = v->key.mtime;
    st->st_ctim = v->key.ctime;
    st->st_ino = v->key.ino;
    st->st_dev = v->key.dev;
    ro_attrs(st);
}

/* What `rel` is now: its kind, the source identity (in st) and attributes as
 * served. Regular files get their view built (or found in the cache). Under
 * hide_denied, whatever would be refused does not exist (-ENOENT). */
static int resolve_entry(const char *rel, struct stat *st, enum fs_kind *kind)
{
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
        *kind = FS_KIND_REFUSED;
        return 0;
    }
    if (r < 0)
        return r;
    if (S_ISDIR(st->st_mode)) {
        ro_attrs(st);
        *kind = FS_KIND_DIR;
        return 0;
    }
    if (!S_ISREG(st->st_mode)) {
        if (g.o.hide_denied)
            return -ENOENT;
        refused_attrs(st);
        *kind = FS_KIND_REFUSED;
        return 0;
    }
    *kind = FS_KIND_FILE;
    fs_view *v = NULL;
    pthread_rwlock_rdlock(&g.pol_lock);
    r = fs_view_get_stat(g.cache, g.pol, g.rootfd, rel, max_size_locked(), st, 1, &v);
    pthread_rwlock_unlock(&g.pol_lock);
    if (r == -ENOENT || r == -ENOTDIR)
        return r;
    if (r == -EISDIR || r == -EPERM || r == -EXDEV || r == -ELOOP)
        return -ESTALE; /* changed kind between the two looks: look again */
    if (r < 0 || v->status < 0) {
        if (v) { /* identity of the version that was refused */
            st->st_dev = v->key.dev;
            st->st_ino = v->key.ino;
        }
        fs_view_unref(g.cache, v);
        if (g.o.hide_denied)
            return -ENOENT;
        refused_attrs(st);
        return 0;
    }
    view_attrs(st, v);
    fs_view_unref(g.cache, v);
    return 0;
}

static char *child_path(const char *parent, const char *name)
{
    char *p;
    if (strcmp(parent, ".") == 0)
        p = strdup(name);
    else if (asprintf(&p, "%s/%s", parent, name) < 0)
        p = NULL;
    return p;
}

/* ---- document names ----------------------------------------------------------------
 * A policy that extracts documents serves contract.pdf as its text; the
 * mount names it contract.pdf.txt (documents.suffix) so that readers and
 * tools take it for what it is. Listings can only go by the name (they build
 * no view), so documents are known by their extension here; the content
 * still decides what is served (a .pdf that is not a PDF is refused). */
static const char *const doc_ext[] = {".pdf", ".docx", ".xlsx", ".pptx", ".odt", ".ods",
                                      ".odp", ".rtf", ".eml", ".html", ".htm"};

static int is_doc_name(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < SLUICE_ARRAY_LEN(doc_ext); i++) {
        size_t e = strlen(doc_ext[i]);
        if (n > e && strcasecmp(name + n - e, doc_ext[i]) == 0)
            return 1;
    }
    return 0;
}

/* The current policy's suffix for documents, "" when it extracts none. */
static void doc_suffix(char out[32])
{
    pthread_rwlock_rdlock(&g.pol_lock);
    const dlp_documents *d = dlp_policy_documents(g.pol);
    snprintf(out, 32, "%s", d->enabled ? d->suffix : "");
    pthread_rwlock_unlock(&g.pol_lock);
}

/* The source name behind a name in the mount: "contract.pdf.txt" ->
 * "contract.pdf" (in *src, malloc'd). -ENOENT for a document's own name,
 * which the mount does not show. 0 with *src = NULL: the name is itself. */
static int source_name(const char *name, char **src)
{
    char suffix[32];
    doc_suffix(suffix);
    *src = NULL;
    size_t n = strlen(name), s = strlen(suffix);
    if (!s)
        return 0;
    if (n > s && strcmp(name + n - s, suffix) == 0) {
        char *base = strndup(name, n - s);
        if (!base)
            return -ENOMEM;
        if (is_doc_name(base)) {
            *src = base;
            return 0;
        }
        free(base);
    }
    return is_doc_name(name) ? -ENOENT : 0;
}

/* ---- lookup / forget / getattr -------------------------------------------------- */

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    char *srcname = NULL;
    int sr = source_name(name, &srcname);
    if (sr < 0) {
        fuse_reply_err(req, -sr);
        return;
    }
    char *pp = inode_path(inode_of(parent));
    char *rel = pp ? child_path(pp, srcname ? srcname : name) : NULL;
    free(pp);
    free(srcname);
    if (rel == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    enum fs_kind kind;
    int r = resolve_entry(rel, &e.attr, &kind);
    if (r == -ESTALE)
        r = resolve_entry(rel, &e.attr, &kind);
    if (r < 0) {
        free(rel);
        fuse_reply_err(req, -r);
        return;
    }
    struct fs_inode *i = inode_get(&e.attr, kind, rel);
    free(rel);
    if (i == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    e.ino = nodeid_of(i);
    e.generation = i->generation;
    e.attr_timeout = FS_ATTR_TIMEOUT;
    e.entry_timeout = FS_ENTRY_TIMEOUT;
    if (fuse_reply_entry(req, &e) == -ENOENT) /* the lookup was interrupted */
        inode_forget(i, 1);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    inode_forget(inode_of(ino), nlookup);
    fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    for (size_t k = 0; k < count; k++)
        inode_forget(inode_of(forgets[k].ino), forgets[k].nlookup);
    fuse_reply_none(req);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (fi && fi->fh) { /* fstat of an open file: the view it serves */
        const struct fs_handle *h = (const struct fs_handle *)(uintptr_t)fi->fh;
        fuse_reply_attr(req, &h->st, FS_ATTR_TIMEOUT);
        return;
    }
    struct fs_inode *i = inode_of(ino);
    char *rel = inode_path(i);
    if (rel == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    struct stat st;
    enum fs_kind kind;
    int r = resolve_entry(rel, &st, &kind);
    free(rel);
    if (r == 0 && i != &g.root && !same_identity(i, &st, kind))
        r = -ESTALE; /* the name now leads elsewhere: the kernel looks it up again */
    if (r < 0) {
        fuse_reply_err(req, -r);
        return;
    }
    fuse_reply_attr(req, &st, FS_ATTR_TIMEOUT);
}

/* ---- sequential prebuilding (readahead of views) --------------------------------------
 * A reader going through a directory's large files one after another (`cat
 * *`, a loop over sorted names, find or tar in directory order) waits at each
 * open for that file's view, built by one build thread (and its feeder) at a
 * time. When two opens in a row of large files of one directory are
 * neighbours in name order (bytes) or in directory (readdir) order, the views
 * of the next PF_AHEAD entries in that order are built in the background
 * (fs_view_prebuild: within the build limits, never waiting for room, never
 * more than a quarter of the cache), so that another processor works on the
 * next file while the reader reads or waits for this one. A prebuilt view is
 * no access: nothing is recorded until a real open, which finds it in the
 * cache by the same key check on a fresh stat as any view (a source changed
 * since is built again). Small files are built further ahead (PF_AHEAD_SMALL):
 * each costs little memory but a few milliseconds of type checking, which
 * the second processor takes on while the reader waits for its ledger
 * record. A run keeps a frontier, so that each further open asks for one
 * more entry, not the whole window again (a walk over views already built
 * asks one quick question per open). Off with -o no_prebuild. */
#define PF_AHEAD 2               /* threads, and files of PF_BIG_SIZE or more built ahead */
#define PF_AHEAD_SMALL 8         /* smaller files built ahead */
#define PF_DIRS 8                /* directories followed at once */
#define PF_BIG_SIZE (1u << 20)
#define PF_MAX_ENTRIES 65536u    /* a larger directory is not listed for it */

struct pf_dir {
    char *rel;      /* the directory, relative to SOURCE (NULL: slot free) */
    char **names;   /* its entries in directory order */
    size_t *sorted; /* indices into names, in name order */
    size_t *rank;   /* rank[i]: position of names[i] in sorted */
    size_t n;
    char *last;     /* the last file opened here */
    int listed;     /* names[] was read (at the second open here, not the first) */
    struct timespec listed_at;
    int run;        /* the run's order: 1 name order, 2 directory order, 0 none */
    size_t front;   /* the furthest position (in that order) asked for ahead */
    uint64_t used;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct pf_dir dirs[PF_DIRS];
    uint64_t tick;
    char *queue[2 * PF_AHEAD_SMALL]; /* paths to build ahead, oldest first */
    size_t nq;
    pthread_t th[PF_AHEAD];
    unsigned nth;
    int stop;
} g_ra = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void pf_dir_list_free(struct pf_dir *d)
{
    for (size_t k = 0; k < d->n; k++)
        free(d->names[k]);
    free(d->names);
    free(d->sorted);
    free(d->rank);
    d->names = NULL;
    d->sorted = d->rank = NULL;
    d->n = 0;
}

static int pf_cmp(const void *a, const void *b, void *arg)
{
    char *const *names = arg;
    return strcmp(names[*(const size_t *)a], names[*(const size_t *)b]);
}

/* (Re)read d's listing; on failure it is empty. */
static void pf_dir_list(struct pf_dir *d)
{
    pf_dir_list_free(d);
    int pfd, fd = -1;
    if (fs_source_path_fd(g.rootfd, d->rel, 1, &pfd) == 0) {
        fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOATIME);
        close(pfd);
    }
    DIR *dp = fd >= 0 ? fdopendir(fd) : NULL;
    if (dp == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    size_t cap = 0;
    int ok = 1;
    for (struct dirent *de; ok && (de = readdir(dp)) != NULL;) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (d->n == PF_MAX_ENTRIES) {
            ok = 0;
            break;
        }
        if (d->n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(d->names, cap * sizeof *nn);
            if (nn == NULL) {
                ok = 0;
                break;
            }
            d->names = nn;
        }
        if ((d->names[d->n] = strdup(de->d_name)) == NULL)
            ok = 0;
        else
            d->n++;
    }
    closedir(dp);
    if (ok && d->n) {
        d->sorted = malloc(d->n * sizeof *d->sorted);
        d->rank = malloc(d->n * sizeof *d->rank);
        ok = d->sorted && d->rank;
    }
    if (!ok) {
        pf_dir_list_free(d);
        return;
    }
    for (size_t k = 0; k < d->n; k++)
        d->sorted[k] = k;
    qsort_r(d->sorted, d->n, sizeof *d->sorted, pf_cmp, d->names);
    for (size_t k = 0; k < d->n; k++)
        d->rank[d->sorted[k]] = k;
}

/* The index of `name` in d's directory order, or -1 (a binary search in
 * name order: directories of thousands of files are walked too). */
static long pf_find(const struct pf_dir *d, const char *name)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        const int c = strcmp(name, d->names[d->sorted[mid]]);
        if (c == 0)
            return (long)d->sorted[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

static void *pf_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_ra.lock);
    for (;;) {
        while (g_ra.nq == 0 && !g_ra.stop)
            pthread_cond_wait(&g_ra.cond, &g_ra.lock);
        if (g_ra.stop)
            break;
        char *rel = g_ra.queue[0];
        memmove(g_ra.queue, g_ra.queue + 1, --g_ra.nq * sizeof g_ra.queue[0]);
        pthread_mutex_unlock(&g_ra.lock);
        pthread_rwlock_rdlock(&g.pol_lock);
        const int r = fs_view_prebuild(g.cache, g.pol, g.rootfd, rel, max_size_locked());
        pthread_rwlock_unlock(&g.pol_lock);
        log_debug("msg=\"prebuild\" path=\"%s\" result=\"%s\"", rel, r < 0 ? strerror(-r) : "ok");
        free(rel);
        pthread_mutex_lock(&g_ra.lock);
    }
    pthread_mutex_unlock(&g_ra.lock);
    return NULL;
}

/* Callers hold g_ra.lock. Ask for `rel` (taken) to be built ahead: newer
 * asks push out the oldest. */
static void pf_enqueue_locked(char *rel)
{
    for (size_t k = 0; k < g_ra.nq; k++)
        if (strcmp(g_ra.queue[k], rel) == 0) {
            free(rel);
            return;
        }
    if (g_ra.nq == SLUICE_ARRAY_LEN(g_ra.queue)) {
        free(g_ra.queue[0]);
        memmove(g_ra.queue, g_ra.queue + 1, --g_ra.nq * sizeof g_ra.queue[0]);
    }
    g_ra.queue[g_ra.nq++] = rel;
    if (g_ra.nth < PF_AHEAD) { /* started at first use, signals stay with the daemon's other threads */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        while (g_ra.nth < PF_AHEAD && pthread_create(&g_ra.th[g_ra.nth], NULL, pf_main, NULL) == 0)
            g_ra.nth++;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    pthread_cond_signal(&g_ra.cond);
}

/* An open of the regular file `rel` (source size `size`) was served. */
static void pf_opened(const char *rel, off_t size)
{
    if (g.o.no_prebuild)
        return;
    const size_t ahead = size >= (off_t)PF_BIG_SIZE ? PF_AHEAD : PF_AHEAD_SMALL;
    const char *slash = strrchr(rel, '/');
    char dir[PATH_MAX];
    const char *name = slash ? slash + 1 : rel;
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if ((size_t)(slash - rel) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - rel), rel);
    else
        return;
    pthread_mutex_lock(&g_ra.lock);
    if (g_ra.stop)
        goto out;
    struct pf_dir *d = NULL, *lru = &g_ra.dirs[0];
    for (size_t k = 0; k < PF_DIRS && !d; k++) {
        if (g_ra.dirs[k].rel && strcmp(g_ra.dirs[k].rel, dir) == 0)
            d = &g_ra.dirs[k];
        else if (g_ra.dirs[k].used < lru->used)
            lru = &g_ra.dirs[k];
    }
    if (d == NULL) { /* follow this directory instead of the least recently used one */
        d = lru;
        pf_dir_list_free(d);
        free(d->rel);
        free(d->last);
        d->last = NULL;
        d->run = 0;
        d->listed = 0;
        if ((d->rel = strdup(dir)) == NULL)
            goto out;
    }
    d->used = ++g_ra.tick;
    /* A directory is listed at its second open in a row, not its first:
     * opens here and there across many directories (or one file of a
     * large one) list nothing. A name missing from the listing (a file
     * added since) lists it again, at most once a second. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long i = -1;
    if (d->last != NULL) {
        if (!d->listed || (pf_find(d, name) < 0 && now.tv_sec - d->listed_at.tv_sec >= 1)) {
            pf_dir_list(d);
            d->listed = 1;
            d->listed_at = now;
        }
        i = pf_find(d, name);
    }
    const long j = i >= 0 && d->last ? pf_find(d, d->last) : -1;
    int run = 0;
    size_t pos = 0; /* this open's position in the run's order */
    if (j >= 0 && d->rank[i] == d->rank[j] + 1) {
        run = 1; /* name order */
        pos = d->rank[i];
    } else if (j >= 0 && i == j + 1) {
        run = 2; /* directory order */
        pos = (size_t)i;
    }
    if (run != d->run || pos >= d->front) /* a new run, or the reader overtook it */
        d->front = pos;
    d->run = run;
    for (size_t k = 1; run && k <= ahead && pos + k < d->n; k++) {
        if (pos + k <= d->front)
            continue; /* asked for already */
        const size_t next = run == 1 ? d->sorted[pos + k] : pos + k;
        char *p = child_path(dir, d->names[next]);
        if (p)
            pf_enqueue_locked(p);
        d->front = pos + k;
    }
    free(d->last);
    d->last = strdup(name);
out:
    pthread_mutex_unlock(&g_ra.lock);
}

/* At exit, before the cache and the policy go: builds ahead end first. */
static void pf_stop(void)
{
    pthread_mutex_lock(&g_ra.lock);
    g_ra.stop = 1;
    pthread_cond_broadcast(&g_ra.cond);
    pthread_mutex_unlock(&g_ra.lock);
    for (unsigned k = 0; k < g_ra.nth; k++)
        pthread_join(g_ra.th[k], NULL);
    for (size_t k = 0; k < g_ra.nq; k++)
        free(g_ra.queue[k]);
    g_ra.nq = 0;
    for (size_t k = 0; k < PF_DIRS; k++) {
        pf_dir_list_free(&g_ra.dirs[k]);
        free(g_ra.dirs[k].rel);
        free(g_ra.dirs[k].last);
    }
}

/* ---- open / read / release -------------------------------------------------------- */

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & (O_TRUNC | O_CREAT))) {
        fuse_reply_err(req, EROFS);
        return;
    }
    struct fs_inode *i = inode_of(ino);
    if (i->kind == FS_KIND_DIR) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    char *rel = inode_path(i);
    if (rel == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    fs_view *v = NULL;
    char policy_hash[SHA256_HEX_LEN];
    pthread_rwlock_rdlock(&g.pol_lock);
    snprintf(policy_hash, sizeof policy_hash, "%s", dlp_policy_hash(g.pol));
    struct stat cur; /* the source as the view was looked up by */
    int r = fs_view_get_stat(g.cache, g.pol, g.rootfd, rel, max_size_locked(), &cur, 0, &v);
    pthread_rwlock_unlock(&g.pol_lock);

    /* The path must still lead to this inode's source; if it leads to
     * another one (replaced by rename, or a refused link turned into a file
     * and back), ESTALE makes the kernel look the name up again and open the
     * right inode, which is then recorded and served. */
    int stale = 0;
    if (i->kind == FS_KIND_FILE)
        stale = (r == 0 && (v->key.dev != i->dev || v->key.ino != i->sino ||
                            v->key.ctime.tv_sec != i->ctime.tv_sec ||
                            v->key.ctime.tv_nsec != i->ctime.tv_nsec ||
                            i->pgen != identity_pgen(FS_KIND_FILE))) ||
                r == -EXDEV || r == -ELOOP || r == -EPERM || r == -EISDIR;
    else /* refused kinds: stale when the path now leads to a servable regular file */
        stale = r == 0;
    if (stale) {
        fs_view_unref(g.cache, v);
        free(rel);
        fuse_reply_err(req, ESTALE);
        return;
    }

    /* A record will follow as soon as the reader is identified: a ledger
     * leader committing meanwhile waits for it (one fsync for both). */
    ledger_expect(g.ledger, 1);
    struct reader rd;
    const int who = reader_identify(req, &rd);
    ledger_expect(g.ledger, -1);
    char rid[48];
    next_request_id(rid, sizeof rid);
    int served = r == 0 && v->status == 0 && who == 0;
    const char *reason = NULL;
    char why[200];
    if (who < 0 && r == 0 && v->status == 0) {
        reason = "who the reader is could not be learnt: the unmount helper did not answer";
    } else if (r < 0) {
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
        .process = rd.id.comm,
        .exe = rd.id.exe[0] ? rd.id.exe : NULL,
        .cgroup = rd.id.cgroup[0] ? rd.id.cgroup : NULL,
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
        .extractor = v && v->extractor[0] ? v->extractor : NULL,
        .request_id = rid,
    };
    uint64_t seq = 0;
    int lr = ledger_append(g.ledger, &rec, &seq);
    if (lr < 0) {
        /* No durable record, no access. */
        log_error("msg=\"open refused: ledger append failed\" req=%s path=\"%s\" err=\"%s\"", rid,
                  rel, strerror(-lr));
        fs_view_unref(g.cache, v);
        free(rel);
        fuse_reply_err(req, EACCES);
        return;
    }
    if (!served) {
        log_info("msg=\"open refused\" req=%s seq=%llu path=\"%s\" pid=%d comm=\"%s\" reason=\"%s\"",
                 rid, (unsigned long long)seq, rel, (int)rd.pid, rd.id.comm, reason ? reason : "");
        fs_view_unref(g.cache, v);
        free(rel);
        fuse_reply_err(req, r == -ENOENT || r == -ENOTDIR ? -r : EACCES);
        return;
    }
    log_debug("msg=\"open served\" req=%s seq=%llu path=\"%s\" pid=%d comm=\"%s\" size=%zu "
              "view=%llu hits=%zu",
              rid, (unsigned long long)seq, rel, (int)rd.pid, rd.id.comm, v->len,
              (unsigned long long)v->gen, v->nhits);
    struct fs_handle *h = calloc(1, sizeof *h);
    if (h == NULL) {
        fs_view_unref(g.cache, v);
        free(rel);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    pf_opened(rel, cur.st_size);
    free(rel);
    h->view = v;
    handle_link(h);
    /* Mode and owner of the source version the view is of (a chmod or chown
     * changes the ctime, hence the view's key); size and times of the view. */
    h->st = cur;
    view_attrs(&h->st, v);
    fi->fh = (uint64_t)(uintptr_t)h;
    fi->direct_io = 0; /* through the page cache: mmap works, repeated reads are free */
    int known;
    fi->keep_cache = (unsigned)inode_served(i, v, &known);
    if (!fi->keep_cache && known) {
        /* The kernel holds the size of an older view of this inode (rewritten
         * in place, or a new policy): expire its attributes so the first read
         * fetches this view's size. keep_cache=0 drops the pages. */
        fuse_lowlevel_notify_inval_inode(g.se, ino, -1, 0);
    }
    if (fuse_reply_open(req, fi) == -ENOENT) { /* interrupted: no release will come */
        fs_view_unref(g.cache, v);
        free(h);
    }
}

/* Whether `v` is still the view the kernel holds for inode `i`: pages and
 * size in the kernel are per inode, so a handle whose view was superseded
 * (source rewritten in place and reopened, or a policy reload) must not put
 * its bytes into the page cache that newer opens read from. */
static int view_is_current(struct fs_inode *i, const fs_view *v)
{
    pthread_mutex_lock(&g.ino_lock);
    int cur = i->served_known && i->served_len == v->len &&
              strcmp(i->served_sha256, v->served_sha256) == 0;
    pthread_mutex_unlock(&g.ino_lock);
    return cur;
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    const struct fs_handle *h = (const struct fs_handle *)(uintptr_t)fi->fh;
    const fs_view *v = h->view;
    if (!view_is_current(inode_of(ino), v)) {
        /* Serving the old view could mix versions in the page cache; serving
         * the new one would give this reader bytes its open did not record.
         * Fail closed: the reader can open the file again. */
        log_info("msg=\"read refused: view superseded since open\" view=%llu",
                 (unsigned long long)v->gen);
        fuse_reply_err(req, EIO);
        return;
    }
    if (off < 0 || (uint64_t)off >= v->len) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    size_t n = v->len - (size_t)off;
    if (n > size)
        n = size;
    /* Straight from the view. Our own reference for the duration of the
     * reply: the kernel may queue this handle's RELEASE as soon as it has
     * taken the data, i.e. before writev() returns here. */
    fs_view_ref(g.cache, (fs_view *)v);
    fuse_reply_buf(req, (const char *)v->data + off, n);
    fs_view_unref(g.cache, (fs_view *)v);
}

static void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
    if (h)
        handle_free(h);
    fuse_reply_err(req, 0);
}

/* ---- directories -------------------------------------------------------------------- */

static void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs_inode *i = inode_of(ino);
    char *rel = inode_path(i);
    if (rel == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    int pfd = -1;
    int r = fs_source_path_fd(g.rootfd, rel, 1, &pfd);
    struct stat st;
    if (r == 0 && fstat(pfd, &st) < 0)
        r = -errno;
    if (r == 0 && i != &g.root && (st.st_dev != i->dev || st.st_ino != i->sino))
        r = -ESTALE;
    int fd = -1;
    if (r == 0) {
        /* Reopened from the O_PATH fd: O_DIRECTORY refuses anything else, and
         * O_NOATIME keeps the source directory's atime. */
        fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOATIME);
        if (fd < 0)
            r = -errno;
    }
    if (pfd >= 0)
        close(pfd);
    struct fs_dir *d = r == 0 ? malloc(sizeof *d + strlen(rel) + 1) : NULL;
    DIR *dp = d ? fdopendir(fd) : NULL;
    if (r == 0 && dp == NULL)
        r = -ENOMEM;
    if (r < 0) {
        if (fd >= 0)
            close(fd);
        free(d);
        free(rel);
        fuse_reply_err(req, -r);
        return;
    }
    d->dir = dp;
    d->offset = 0;
    strcpy(d->rel, rel);
    free(rel);
    fi->fh = (uint64_t)(uintptr_t)d;
    fi->cache_readdir = 0;
    if (fuse_reply_open(req, fi) == -ENOENT) {
        closedir(dp);
        free(d);
    }
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

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    (void)ino;
    struct fs_dir *d = (struct fs_dir *)(uintptr_t)fi->fh;
    char *buf = malloc(size);
    if (buf == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (off != d->offset) {
        seekdir(d->dir, off);
        d->offset = off;
    }
    size_t used = 0;
    char suffix[32];
    doc_suffix(suffix);
    for (;;) {
        long pos = telldir(d->dir);
        errno = 0;
        struct dirent *de = readdir(d->dir);
        if (de == NULL)
            break;
        const char *name = de->d_name;
        int isdot = strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
        char *child = isdot ? NULL : child_path(d->rel, name);
        if (!isdot && child == NULL)
            break;
        /* d_type as lookup will report it: directories (also through a
         * symlink that stays inside) are directories, everything else shows
         * as a regular file. Nothing here builds a view. */
        unsigned char type = de->d_type;
        if (!isdot && (type == DT_LNK || type == DT_UNKNOWN)) {
            struct stat t;
            type = fs_source_stat(g.rootfd, child, &t) == 0 && S_ISDIR(t.st_mode) ? DT_DIR : DT_REG;
        }
        int hidden = !isdot && g.o.hide_denied && !entry_visible(child);
        free(child);
        if (hidden) {
            d->offset = de->d_off;
            continue;
        }
        struct stat st;
        memset(&st, 0, sizeof st);
        st.st_ino = de->d_ino;
        st.st_mode = (type == DT_DIR ? S_IFDIR : S_IFREG);
        char shown[NAME_MAX + 1];
        if (suffix[0] && type != DT_DIR && !isdot && is_doc_name(name)) {
            /* shown by its text's name; one too long for that is not shown */
            int m = snprintf(shown, sizeof shown, "%s%s", name, suffix);
            if (m < 0 || (size_t)m >= sizeof shown) {
                d->offset = de->d_off;
                continue;
            }
            name = shown;
        }
        size_t n = fuse_add_direntry(req, buf + used, size - used, name, &st, de->d_off);
        if (n > size - used) {
            seekdir(d->dir, pos); /* did not fit: the next call starts here */
            break;
        }
        used += n;
        d->offset = de->d_off;
    }
    fuse_reply_buf(req, buf, used);
    free(buf);
}

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct fs_dir *d = (struct fs_dir *)(uintptr_t)fi->fh;
    if (d) {
        closedir(d->dir);
        free(d);
    }
    fuse_reply_err(req, 0);
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
    (void)ino;
    struct statvfs sv;
    if (fstatvfs(g.rootfd, &sv) < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    sv.f_flag |= ST_RDONLY;
    fuse_reply_statfs(req, &sv);
}

/* ---- read-only, for real ---------------------------------------------------------------
 * Mounted `ro` as well, so the kernel normally answers EROFS itself; these
 * make the answer EROFS even if a mount option were lost. */
static void ro_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{ (void)ino; (void)attr; (void)to_set; (void)fi; fuse_reply_err(req, EROFS); }
static void ro_mknod(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m, dev_t d)
{ (void)p; (void)n; (void)m; (void)d; fuse_reply_err(req, EROFS); }
static void ro_mkdir(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m)
{ (void)p; (void)n; (void)m; fuse_reply_err(req, EROFS); }
static void ro_unlink(fuse_req_t req, fuse_ino_t p, const char *n)
{ (void)p; (void)n; fuse_reply_err(req, EROFS); }
static void ro_symlink(fuse_req_t req, const char *l, fuse_ino_t p, const char *n)
{ (void)l; (void)p; (void)n; fuse_reply_err(req, EROFS); }
static void ro_rename(fuse_req_t req, fuse_ino_t p, const char *n, fuse_ino_t np, const char *nn, unsigned f)
{ (void)p; (void)n; (void)np; (void)nn; (void)f; fuse_reply_err(req, EROFS); }
static void ro_link(fuse_req_t req, fuse_ino_t i, fuse_ino_t np, const char *nn)
{ (void)i; (void)np; (void)nn; fuse_reply_err(req, EROFS); }
static void ro_write(fuse_req_t req, fuse_ino_t i, const char *b, size_t s, off_t o, struct fuse_file_info *fi)
{ (void)i; (void)b; (void)s; (void)o; (void)fi; fuse_reply_err(req, EROFS); }
static void ro_create(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m, struct fuse_file_info *fi)
{ (void)p; (void)n; (void)m; (void)fi; fuse_reply_err(req, EROFS); }
static void ro_setxattr(fuse_req_t req, fuse_ino_t i, const char *n, const char *v, size_t s, int f)
{ (void)i; (void)n; (void)v; (void)s; (void)f; fuse_reply_err(req, EROFS); }
static void ro_removexattr(fuse_req_t req, fuse_ino_t i, const char *n)
{ (void)i; (void)n; fuse_reply_err(req, EROFS); }
static void ro_fallocate(fuse_req_t req, fuse_ino_t i, int m, off_t o, off_t l, struct fuse_file_info *fi)
{ (void)i; (void)m; (void)o; (void)l; (void)fi; fuse_reply_err(req, EROFS); }

/* ---- init --------------------------------------------------------------------------------- */

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    /* readdirplus would make the kernel ask for every entry's attributes
     * during a listing, and attributes of a file need its view. */
    conn->want &= ~(unsigned)(FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO);
    /* Refresh attributes (and drop stale pages) when they expire and the
     * mtime/size changed. */
    if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
        conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
    conn->max_read = FS_MAX_READ; /* must equal the max_read mount option */
    /* the kernel lowers it to its own limit: the backing device's readahead
     * (see set_readahead) */
    const unsigned ra = g.readahead > FS_MAX_READ ? g.readahead : FS_MAX_READ;
    if (conn->max_readahead < ra)
        conn->max_readahead = ra;
}

static const struct fuse_lowlevel_ops fs_ops = {
    .init = fs_init,
    .lookup = fs_lookup,
    .forget = fs_forget,
    .forget_multi = fs_forget_multi,
    .getattr = fs_getattr,
    .open = fs_open,
    .read = fs_read,
    .release = fs_release,
    .opendir = fs_opendir,
    .readdir = fs_readdir,
    .releasedir = fs_releasedir,
    .statfs = fs_statfs,
    .setattr = ro_setattr,
    .mknod = ro_mknod,
    .mkdir = ro_mkdir,
    .unlink = ro_unlink,
    .rmdir = ro_unlink,
    .symlink = ro_symlink,
    .rename = ro_rename,
    .link = ro_link,
    .write = ro_write,
    .create = ro_create,
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

/* A reload must read nothing the confinement set at mount does not allow:
 * a policy (or a pack or key it names) that lies elsewhere is refused by
 * name before the engine reads anything. 0, or -EACCES with `why`. */
static int policy_reload_confined(char *why, size_t whylen)
{
    dlp_policy_files pf;
    dlp_error e = {0};
    const int r = dlp_policy_files_list(g.o.policy, &pf, &e);
    const char *outside = NULL;
    if (r == 0)
        outside = fs_policy_files_outside(&pf);
    else if (!fs_sandbox_readable(g.o.policy))
        outside = g.o.policy;
    /* any other failure to read it: the engine says what is wrong */
    if (outside)
        snprintf(why, whylen, "%s: lies outside the confinement set at mount: remount to use it",
                 outside);
    if (r == 0)
        dlp_policy_files_free(&pf);
    return outside ? -EACCES : 0;
}

static void policy_reload(void)
{
    dlp_policy *np = NULL;
    char why[1200];
    int r = policy_reload_confined(why, sizeof why);
    if (r == 0)
        r = policy_load(g.o.policy, &np, why, sizeof why);
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
    if (changed)
        atomic_fetch_add(&g.pol_gen, 1);
    pthread_rwlock_unlock(&g.pol_lock);
    dlp_policy_free(old); /* no builder holds it: they run under the read lock */
    log_info("msg=\"policy reloaded\" policy=\"%s\" hash=%s changed=%d", g.o.policy, nh, changed);
    if (changed) {
        /* Old views can never match the new key; free their memory now and
         * make the kernel forget sizes and pages it got under the old policy. */
        fs_cache_clear(g.cache);
        inodes_invalidate_all();
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
    FS_OPT("spill_dir=%s", spill_dir),
    FS_OPT("spill_size=%s", spill_size),
    FS_OPT("build_memory=%s", build_memory),
    FS_OPT("readahead=%s", readahead),
    FS_OPT("hide_denied", hide_denied),
    FS_OPT("no_sandbox", no_sandbox),
    FS_OPT("no_prebuild", no_prebuild),
    FS_OPT("user=%s", user),
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
    case FUSE_OPT_KEY_OPT:
        /* libfuse's own flags pass; any other dash-option is ours to refuse,
         * in sluice's words and with exit 2, before libfuse sees it. */
        if (arg[0] == '-' && strcmp(arg, "-f") && strcmp(arg, "-d") && strcmp(arg, "-s")) {
            sluice_err("%s: unknown option (see --help)", arg);
            return -1;
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
           "    spill_dir=DIR        keep evicted views zstd-compressed under DIR\n"
           "    spill_size=SIZE      disk for spilled views (default 4G)\n"
           "    build_memory=SIZE    memory for views being built (default 64M)\n"
           "    readahead=SIZE       kernel readahead on the mount (default 1M, 0: the kernel's)\n"
           "    hide_denied          leave refused files out of listings\n"
           "    user=NAME            run as this unprivileged user once mounted\n"
           "    no_sandbox           do not confine the daemon (debugging only)\n"
           "    no_prebuild          never build views ahead of sequential opens\n"
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

/* Leave main() before the session exists: libfuse's argument list is ours
 * to free (LeakSanitizer counts it, and `make sanitize` runs every exit). */
static int fs_exit(struct fuse_args *args, int code)
{
    fuse_opt_free_args(args);
    return code;
}

/* The same, once the command line has given a mountpoint. */
static int fs_exit_mnt(struct fuse_args *args, char *mountpoint, int code)
{
    free(mountpoint);
    return fs_exit(args, code);
}

/* The kernel reads ahead of a sequential reader 128 KiB at a time by
 * default (and FUSE's INIT cannot raise that): each step is a FUSE read
 * request, a wake-up of a worker and a copy. A view is in memory once
 * opened, so reading further ahead costs nothing but memory the page cache
 * would take anyway: the mount's readahead is raised to `bytes` (max_read,
 * 1 MiB, by default) through its backing device's sysfs file, found by the
 * mount's device number in /proc/self/mountinfo (a stat of the mount
 * point would wait for the FUSE session, which is not served yet). Root
 * only, before confinement; where it cannot be set, the kernel's stays. */
static void set_readahead(const char *mountpoint, uint64_t bytes)
{
    FILE *mi = fopen("/proc/self/mountinfo", "re");
    if (!mi)
        return;
    char line[8192], dev[32] = "";
    unsigned maj, min;
    while (fgets(line, sizeof line, mi)) {
        char mnt[4096];
        /* id parent major:minor root mountpoint ...; the last mount wins */
        if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mnt) == 3 &&
            strcmp(mnt, mountpoint) == 0)
            snprintf(dev, sizeof dev, "%u:%u", maj, min);
    }
    fclose(mi);
    char path[96];
    snprintf(path, sizeof path, "/sys/class/bdi/%s/read_ahead_kb", dev);
    FILE *f = dev[0] ? fopen(path, "we") : NULL;
    int ok = f && fprintf(f, "%llu\n", (unsigned long long)(bytes >> 10)) > 0;
    if (f && fclose(f) != 0)
        ok = 0;
    if (ok)
        log_debug("msg=\"readahead set\" bdi=%s kb=%llu", dev, (unsigned long long)(bytes >> 10));
    else
        log_info("msg=\"readahead left as the kernel set it\" bdi=\"%s\" err=\"%s\"", dev,
                 dev[0] ? strerror(errno) : "mount not found");
}

/* ---- confinement --------------------------------------------------------------------------- */

/* The directory `file` lies in (symlinks resolved: Landlock looks at where
 * the file really is), into out. */
static void real_dir(const char *file, char *out, size_t n)
{
    char real[PATH_MAX];
    if (!realpath(file, real))
        snprintf(real, sizeof real, "%s", file);
    char *slash = strrchr(real, '/');
    if (slash == real)
        real[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(real, sizeof real, ".");
    snprintf(out, n, "%s", real);
}

/* Confine the daemon (fs/sandbox.c) to what it needs from now on.
 * Writable: the ledger's directory (SQLite adds -wal/-shm files), the spill
 * directory, /dev/null. Readable besides: SOURCE, the ledger's key, the
 * directories of the policy and of every pack it names (so that a SIGHUP
 * reload of an edited policy or pack there works) and the hash key file.
 * Nothing else: no /etc/shadow, no neighbour of SOURCE. */
static int confine(void)
{
    dlp_policy_files pf;
    dlp_error e = {0};
    int r = dlp_policy_files_list(g.o.policy, &pf, &e);
    if (r < 0) {
        char why[1200];
        if (e.msg[0])
            dlp_error_format(&e, why, sizeof why);
        else
            snprintf(why, sizeof why, "%s", strerror(-r));
        log_error("msg=\"cannot confine the daemon, unmounting\" policy=\"%s\" err=\"%s\"", g.o.policy,
                  why);
        return r;
    }
    const size_t max = 6 + pf.nfiles;
    fs_sandbox_path *paths = calloc(max, sizeof *paths);
    char (*dirs)[PATH_MAX] = calloc(pf.nfiles + 1, PATH_MAX);
    if (!paths || !dirs) {
        free(paths);
        free(dirs);
        dlp_policy_files_free(&pf);
        log_error("msg=\"cannot confine the daemon, unmounting\" err=\"out of memory\"");
        return -ENOMEM;
    }
    size_t n = 0;
    real_dir(g.o.ledger, dirs[0], PATH_MAX);
    paths[n++] = (fs_sandbox_path){.path = dirs[0], .writable = 1};
    paths[n++] = (fs_sandbox_path){.path = "/dev/null", .writable = 1};
    if (fs_cache_spill_path(g.cache)) /* its parent: the private directory is removed at exit */
        paths[n++] = (fs_sandbox_path){.path = g.o.spill_dir, .writable = 1};
    paths[n++] = (fs_sandbox_path){.path = g.source_abs};
    paths[n++] = (fs_sandbox_path){.path = g.o.ledger_key};
    for (size_t i = 0; i < pf.nfiles; i++) {
        real_dir(pf.files[i], dirs[i + 1], PATH_MAX);
        paths[n++] = (fs_sandbox_path){.path = dirs[i + 1]};
    }
    /* The file alone, not its directory (keys are kept beside other keys);
     * absent when no rule uses it. */
    if (pf.key)
        paths[n++] = (fs_sandbox_path){.path = pf.key, .optional = 1};
    int abi = 0;
    /* Opened before: its report files, which a confined process could
     * no longer create (sanitizer builds only). */
    sluice_sanitizer_keep_reports();
    r = fs_sandbox_apply_user(paths, n, g.o.user, &abi);
    if (r == -EOPNOTSUPP) {
        log_warn("msg=\"Landlock not available: running unconfined\"");
        r = 0;
    } else if (r < 0) {
        log_error("msg=\"cannot confine the daemon, unmounting\" err=\"%s\"", strerror(-r));
    } else {
        log_info("msg=\"confined\" landlock_abi=%d writable=\"%s\" policy_dir=\"%s\"", abi, dirs[0],
                 dirs[1]);
    }
    free(paths);
    free(dirs);
    dlp_policy_files_free(&pf);
    return r;
}

int main(int argc, char **argv)
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    log_init("sluicefs", LOG_LVL_INFO);
    /* glibc gives each new thread that allocates an arena of its own, up to
     * 8 per processor, and each keeps what was freed in it: with dozens of
     * FUSE threads that grows with the number of readers. Four arenas are
     * plenty for a daemon whose work is mostly in a few build threads, and
     * keep memory within the bound sluicefs(8) states. */
    mallopt(M_ARENA_MAX, 4);
    if (fuse_opt_parse(&args, &g.o, fs_optspec, opt_proc) < 0)
        return fs_exit(&args, 2);
    if (g.o.show_help) {
        usage(argv[0]);
        return fs_exit(&args, 0);
    }
    if (g.o.show_version) {
        printf("sluicefs %s (libfuse %s)\n", SLUICE_VERSION, fuse_pkgversion());
        return fs_exit(&args, 0);
    }
    if (g.o.log_level) {
        enum log_level lvl;
        if (log_parse_level(g.o.log_level, &lvl) < 0) {
            sluice_err("log_level=%s: expected error, warn, info or debug", g.o.log_level);
            return fs_exit(&args, 2);
        }
        log_init("sluicefs", lvl);
    }
    if (!g.o.policy && getenv("SLUICE_POLICY"))
        g.o.policy = strdup(getenv("SLUICE_POLICY"));
    if (!g.o.ledger_key && getenv("SLUICE_LEDGER_KEY"))
        g.o.ledger_key = strdup(getenv("SLUICE_LEDGER_KEY"));
    if (!g.o.source) {
        sluice_err("missing SOURCE and MOUNTPOINT (see --help)");
        return fs_exit(&args, 2);
    }
    if (!g.o.policy) {
        sluice_err("no policy: give -o policy=FILE or set SLUICE_POLICY");
        return fs_exit(&args, 2);
    }
    if (!g.o.ledger || !g.o.ledger_key) {
        sluice_err("no ledger: give -o ledger=FILE,ledger_key=FILE (every access is recorded)");
        return fs_exit(&args, 2);
    }
    /* Opened or read again after fuse_daemonize() has moved to "/" (the
     * ledger, the confinement's rules, every SIGHUP reload): named from
     * where they were given. */
    char **const rel[] = {&g.o.policy, &g.o.ledger, &g.o.ledger_key, &g.o.spill_dir};
    for (size_t i = 0; i < SLUICE_ARRAY_LEN(rel); i++) {
        char cwd[PATH_MAX], *abs = NULL;
        if (*rel[i] && (*rel[i])[0] != '/' && getcwd(cwd, sizeof cwd) &&
            asprintf(&abs, "%s/%s", cwd, *rel[i]) > 0) {
            free(*rel[i]);
            *rel[i] = abs;
        }
    }
    uint64_t cache_cap = FS_DEFAULT_CACHE;
    if (g.o.cache_size && parse_size(g.o.cache_size, &cache_cap) < 0) {
        sluice_err("cache_size=%s: not a size", g.o.cache_size);
        return fs_exit(&args, 2);
    }
    if (g.o.max_file_size &&
        (parse_size(g.o.max_file_size, &g.max_size_opt) < 0 || g.max_size_opt == 0)) {
        sluice_err("max_file_size=%s: not a size", g.o.max_file_size);
        return fs_exit(&args, 2);
    }

    struct fuse_cmdline_opts cmd;
    memset(&cmd, 0, sizeof cmd);
    if (fuse_parse_cmdline(&args, &cmd) != 0)
        return fs_exit(&args, 2);
    if (!cmd.mountpoint) {
        sluice_err("missing MOUNTPOINT (see --help)");
        return fs_exit_mnt(&args, cmd.mountpoint, 2);
    }

    g.rootfd = open(g.o.source, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (g.rootfd < 0) {
        sluice_err("%s: %s", g.o.source, strerror(errno));
        return fs_exit_mnt(&args, cmd.mountpoint, 1);
    }
    if (!realpath(g.o.source, g.source_abs))
        snprintf(g.source_abs, sizeof g.source_abs, "%s", g.o.source);

    char why[1200];
    if (policy_load(g.o.policy, &g.pol, why, sizeof why) < 0) {
        sluice_err("policy: %s", why);
        return fs_exit_mnt(&args, cmd.mountpoint, 1);
    }
    /* Validate the ledger now, while errors still reach the terminal; it is
     * opened for real after daemonizing (SQLite's locks do not survive fork). */
    {
        ledger *probe = NULL;
        if (ledger_open(g.o.ledger, g.o.ledger_key, &probe, why, sizeof why) < 0) {
            sluice_err("ledger %s: %s", g.o.ledger, why);
            return fs_exit_mnt(&args, cmd.mountpoint, 1);
        }
        ledger_close(probe);
    }
    uint64_t readahead = FS_MAX_READ;
    if (g.o.readahead && (parse_size(g.o.readahead, &readahead) < 0 || readahead > (64u << 20))) {
        sluice_err("readahead=%s: not a size up to 64M", g.o.readahead);
        return fs_exit_mnt(&args, cmd.mountpoint, 2);
    }
    uint64_t build_mem = FS_BUILD_MEMORY;
    if (g.o.build_memory && (parse_size(g.o.build_memory, &build_mem) < 0 || build_mem == 0)) {
        sluice_err("build_memory=%s: not a size", g.o.build_memory);
        return fs_exit_mnt(&args, cmd.mountpoint, 2);
    }
    if (fs_cache_new(cache_cap, &g.cache) < 0) {
        sluice_err("out of memory");
        return fs_exit_mnt(&args, cmd.mountpoint, 1);
    }
    fs_cache_set_build_limits(g.cache, build_mem, 0);
    if (g.o.spill_dir) {
        uint64_t spill_cap = 4ull << 30;
        if (g.o.spill_size && parse_size(g.o.spill_size, &spill_cap) < 0) {
            sluice_err("spill_size=%s: not a size", g.o.spill_size);
            return fs_exit_mnt(&args, cmd.mountpoint, 2);
        }
        int r = fs_cache_spill(g.cache, g.o.spill_dir, spill_cap);
        if (r < 0) {
            sluice_err("spill_dir=%s: %s", g.o.spill_dir, strerror(-r));
            return fs_exit_mnt(&args, cmd.mountpoint, 1);
        }
    }
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* A pending reload must not wait behind a stream of opens. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&g.pol_lock, &ra);
    pthread_mutex_init(&g.ino_lock, NULL);
    pthread_mutex_init(&g.handles_lock, NULL);
    sem_init(&g.hup_sem, 0, 0);
    mount_id_init();
    struct stat rst;
    if (fstat(g.rootfd, &rst) < 0) {
        sluice_err("%s: %s", g.o.source, strerror(errno));
        return fs_exit_mnt(&args, cmd.mountpoint, 1);
    }
    g.root.dev = rst.st_dev;
    g.root.sino = rst.st_ino;
    g.root.kind = FS_KIND_DIR;
    g.root.nlookup = 1;
    g.root.path = strdup(".");

    /* ro for real; default_permissions: the kernel checks the source's mode
     * bits (as reported) for every user; nosuid/nodev: nothing served runs
     * privileged or acts as a device. */
    char mopts[256];
    snprintf(mopts, sizeof mopts,
             "-oro,default_permissions,nosuid,nodev,fsname=sluicefs,subtype=sluice,max_read=%u",
             FS_MAX_READ);
    fuse_opt_add_arg(&args, mopts);

    g.se = fuse_session_new(&args, &fs_ops, sizeof fs_ops, NULL);
    if (g.se == NULL) {
        sluice_err("could not set up FUSE (bad option?)");
        return fs_exit_mnt(&args, cmd.mountpoint, 1);
    }
    if (fuse_session_mount(g.se, cmd.mountpoint) != 0) {
        sluice_err("%s: could not mount", cmd.mountpoint);
        fuse_session_destroy(g.se);
        return fs_exit_mnt(&args, cmd.mountpoint, 1);
    }
    g.readahead = (unsigned)readahead;
    if (readahead)
        set_readahead(cmd.mountpoint, readahead);
    if (!cmd.foreground)
        log_use_syslog(1);
    if (fuse_daemonize(cmd.foreground) != 0) {
        fuse_session_unmount(g.se);
        fuse_session_destroy(g.se);
        return fs_exit_mnt(&args, cmd.mountpoint, 1);
    }
    int rc = 1;
    /* Before anything it must not inherit is opened (the ledger). */
    int hr = fs_unmount_helper_start(cmd.mountpoint, &g.helper);
    if (hr < 0)
        log_warn("msg=\"no unmount helper: a crash would leave the mount behind\" err=\"%s\"",
                 strerror(-hr));
    if (ledger_open(g.o.ledger, g.o.ledger_key, &g.ledger, why, sizeof why) < 0) {
        log_error("msg=\"cannot open ledger, unmounting\" ledger=\"%s\" error=\"%s\"", g.o.ledger, why);
        goto out_unmount;
    }
    const char *ph = dlp_policy_hash(g.pol);
    if (record_event(LEDGER_POLICY_LOAD, "loaded", "at mount", g.o.policy, ph) < 0 ||
        record_event(LEDGER_MOUNT, "mounted", cmd.mountpoint, g.source_abs, ph) < 0)
        goto out_ledger;

    if (!g.o.no_sandbox) {
        if (confine() < 0)
            goto out_ledger;
    } else if (fs_sandbox_drop_user(g.o.user) < 0) {
        goto out_ledger;
    }
    if (fuse_set_signal_handlers(g.se) != 0)
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

    int lr;
    if (cmd.singlethread) {
        lr = fuse_session_loop(g.se);
    } else {
        struct fuse_loop_config *lc = fuse_loop_cfg_create();
        fuse_loop_cfg_set_clone_fd(lc, cmd.clone_fd);
        fuse_loop_cfg_set_idle_threads(lc, cmd.max_idle_threads != UINT_MAX && cmd.max_idle_threads
                                               ? cmd.max_idle_threads : 10);
        fuse_loop_cfg_set_max_threads(lc, FS_MAX_THREADS);
        lr = fuse_session_loop_mt(g.se, lc);
        fuse_loop_cfg_destroy(lc);
    }
    /* libfuse reports the signal that stopped the loop; SIGTERM and SIGINT
     * are the ordinary ways to stop a daemon. */
    const int clean = lr == 0 || lr == SIGTERM || lr == SIGINT;
    rc = clean ? 0 : 1;

    atomic_store(&g.stopping, 1);
    sem_post(&g.hup_sem);
    pthread_join(rt, NULL);
    record_event(LEDGER_UNMOUNT, "unmounted",
                 lr == 0 ? "clean" : lr == SIGTERM ? "clean (SIGTERM)" : lr == SIGINT ? "clean (SIGINT)" : "loop error",
                 g.source_abs, dlp_policy_hash(g.pol));
    log_info("msg=\"unmounted\" mountpoint=\"%s\" status=%d", cmd.mountpoint, lr);
out_signals:
    fuse_remove_signal_handlers(g.se);
out_ledger:
    ledger_close(g.ledger);
out_unmount:
    if (g.helper.round_trips)
        log_info("msg=\"reader identities\" questions=%llu round_trips=%llu timeouts=%llu late=%llu "
                 "unasked=%llu",
                 (unsigned long long)g.helper.questions, (unsigned long long)g.helper.round_trips,
                 (unsigned long long)g.helper.timeouts, (unsigned long long)g.helper.late,
                 (unsigned long long)g.helper.unasked);
    /* The helper unmounts (a confined daemon may not); libfuse then finds
     * the connection gone and only closes its descriptor. */
    fs_unmount_helper_run(&g.helper);
    fuse_session_unmount(g.se);
    fuse_session_destroy(g.se);
    pf_stop();
    while (g.handles) /* no FUSE thread is left */
        handle_free(g.handles);
    fs_cache_stats cs;
    fs_cache_get_stats(g.cache, &cs);
    log_info("msg=\"view cache\" builds=%llu hits=%llu misses=%llu evictions=%llu build_waits=%llu "
             "room_waits=%llu prebuilds=%llu prebuild_hits=%llu prebuild_skipped=%llu recycled=%llu",
             (unsigned long long)cs.builds, (unsigned long long)cs.hits, (unsigned long long)cs.misses,
             (unsigned long long)cs.evictions, (unsigned long long)cs.build_waits,
             (unsigned long long)cs.room_waits, (unsigned long long)cs.prebuilds, (unsigned long long)cs.prebuild_hits,
             (unsigned long long)cs.prebuild_skipped, (unsigned long long)cs.recycled);
    fs_cache_free(g.cache);
    dlp_policy_free(g.pol);
    close(g.rootfd);
    free(cmd.mountpoint);
    fuse_opt_free_args(&args);
    return rc;
}
