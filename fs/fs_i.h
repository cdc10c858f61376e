/* fs/fs_i.h — private to fs/: how sluicefs reaches the source tree and how it
 * keeps sanitized views. Nothing outside fs/ includes this.
 *
 * Two pieces:
 *  - source.c resolves every path beneath the SOURCE directory with openat2
 *    (RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) and reads a regular file once,
 *    whole or in pieces, under one stable fd. It must never open anything
 *    but a regular file and never touch the source's atime.
 *  - view.c builds the sanitized view of a source file with the DLP engine
 *    (dlp_sanitize, or a dlp_stream for large text: the same bytes) on build
 *    threads of its own, and keeps views in a size-capped LRU cache keyed by
 *    the source's identity (dev, ino, size, mtime, ctime) and the policy
 *    hash. A view is
 *    immutable once built; holders keep a reference, so a view is never
 *    changed or freed under a reader.
 */
#ifndef SLUICE_FS_I_H
#define SLUICE_FS_I_H

#include "common/common.h"
#include "dlp/dlp.h"
#include "ledger/ledger.h"

#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

/* ---- source.c ------------------------------------------------------------- */

/* An O_PATH fd for `rel` (relative to rootfd; "" or "." is the root itself),
 * resolved beneath rootfd. Symlinks are followed when `follow` and only while
 * they stay beneath (an escape gives -EXDEV); magic links never. 0 or -errno. */
int fs_source_path_fd(int rootfd, const char *rel, int follow, int *out);

/* stat of `rel` after following symlinks beneath rootfd. 0 or -errno
 * (-EXDEV: a symlink points outside SOURCE). */
int fs_source_stat(int rootfd, const char *rel, struct stat *st);

/* The whole content of a regular file, read once from one fd and checked to be
 * unchanged (fstat before and after the read); retried a few times when the
 * file changes while being read, then -EAGAIN. -EFBIG above `max`,
 * -EPERM for anything but a regular file (FIFOs, sockets and devices are
 * never opened), -EXDEV for a symlink escaping SOURCE. */
typedef struct fs_source {
    uint8_t *data; /* malloc'd (len + 1 bytes allocated) */
    size_t len;
    struct stat st; /* of the fd the data came from */
} fs_source;
int fs_source_read(int rootfd, const char *rel, uint64_t max, fs_source *out);
void fs_source_free(fs_source *s);

/* The same stable read in pieces, for files too large to hold twice: open
 * (same checks and errors as fs_source_read), read front to back, then end,
 * which says whether what was read is exactly the whole file as it was at
 * open (0; st becomes the final stat) or the file changed meanwhile
 * (-EAGAIN: discard everything made from it, try again after
 * fs_source_settle). end and close both close the fd. */
#define FS_SOURCE_READ_ATTEMPTS 4
typedef struct fs_source_stream {
    int fd;
    struct stat st; /* at open; at end when unchanged */
    uint64_t got;
} fs_source_stream;
int fs_source_stream_open(int rootfd, const char *rel, uint64_t max, fs_source_stream *s);
/* Up to len bytes; short only at end of file. Bytes or -errno. */
ssize_t fs_source_stream_read(fs_source_stream *s, void *buf, size_t len);
int fs_source_stream_end(fs_source_stream *s);
void fs_source_stream_close(fs_source_stream *s);
/* Wait a little before attempt `attempt` (1, 2, ...): let a writer finish. */
void fs_source_settle(int attempt);

/* The first `len` bytes of a regular file (for classifying a listing under
 * hide_denied without building the whole view). Bytes read or -errno. */
ssize_t fs_source_head(int rootfd, const char *rel, void *buf, size_t len);

/* ---- sandbox.c ------------------------------------------------------------ */

/* An unconfined child that unmounts MOUNTPOINT when told to, or when the
 * daemon dies (its pipe closes). Start it before opening anything it must
 * not inherit. */
struct fs_ident_waiter;
typedef struct fs_unmount_helper {
    pid_t pid;
    int fd;
    pthread_mutex_t lock;
    /* Questions of concurrent opens wait here and go to the helper
     * together, one round trip for all (sandbox.c). */
    pthread_cond_t cond;
    struct fs_ident_waiter *qhead, *qtail;
    int asking;   /* a thread is asking the helper (lock not held meanwhile) */
    char *answer; /* the asker's receive buffer */
    uint32_t last_id; /* of the last question asked */
    uint64_t questions, round_trips;
    uint32_t owed; /* a question the helper has not answered yet (0: none) */
    uint64_t timeouts, late; /* questions left unanswered; answers that came too late */
    uint64_t unasked;        /* questions not asked while one was owed */
} fs_unmount_helper;
int fs_unmount_helper_start(const char *mountpoint, fs_unmount_helper *h);
/* Who process `pid` is, for the ledger ("" where unknown), asked of the
 * helper (a confined daemon may read none of /proc/PID) while the open
 * that asks waits: read afresh for every question, never remembered (an
 * exec, a new comm or cgroup, or a pid reused by another process shows at
 * once). Concurrent questions share one round trip. 0, or -EIO when the
 * helper did not answer within its time (stopped, stuck or gone): the open
 * must then be refused. */
typedef struct fs_proc_ident {
    char exe[PATH_MAX];
    char comm[64];
    char cgroup[512];
} fs_proc_ident;
int fs_helper_identify(fs_unmount_helper *h, pid_t pid, fs_proc_ident *out);
/* Unmount now (lazily) and wait for the helper. */
void fs_unmount_helper_run(fs_unmount_helper *h);

/* A place the confined daemon may reach: read (files, and listings beneath
 * a directory), or read and change when `writable`. `optional`: skipped
 * when it does not exist. */
typedef struct fs_sandbox_path {
    const char *path;
    int writable;
    int optional;
} fs_sandbox_path;
/* Confine this thread and its future threads and children for good:
 * Landlock (reading only beneath `paths` and the system files that running
 * needs, writing only beneath the writable ones, executing only
 * sluice-extract), `user` (NULL: stay) taken between building the rules and
 * applying them, then the seccomp allowlist. *abi gets the kernel's
 * Landlock ABI (0: none). 0, -EOPNOTSUPP (no Landlock: seccomp only), or
 * -errno. */
int fs_sandbox_apply_user(const fs_sandbox_path *paths, size_t n, const char *user, int *abi);
/* 0 when the confinement does not let this process read `path`, else 1
 * (always before it or without Landlock; also when `path` cannot be
 * resolved, which opening it reports whatever the confinement). Follows
 * symlinks as opening would. */
int fs_sandbox_readable(const char *path);
/* Switch to `user` and its group for good (no way back). 0 or -errno. */
int fs_sandbox_drop_user(const char *user);

/* The first of the files a policy reads (dlp_policy_files_list) that the
 * confinement does not let this process read, or NULL. */
const char *fs_policy_files_outside(const dlp_policy_files *f);

/* ---- view.c --------------------------------------------------------------- */

/* What identifies the content a view was built from. Any change of these
 * (a rewrite, a rename over, a touch) gives a different key. */
typedef struct fs_view_key {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
    char policy_hash[SHA256_HEX_LEN];
} fs_view_key;

/* A sanitized view, or the record of a refusal. Immutable after build. */
typedef struct fs_view {
    fs_view_key key;
    int status;              /* 0: may be served; negative: refused (the errno-style why) */
    uint8_t *data;           /* the served bytes (NULL when refused or empty) */
    size_t len;
    size_t map_len;          /* data is an mmap of this length (0: malloc'd) */
    char source_sha256[SHA256_HEX_LEN];
    char served_sha256[SHA256_HEX_LEN];
    char mime[128];
    char reason[200];
    char extractor[32];      /* document extractor used by the engine, "" for text */
    ledger_hit *hits;        /* rule ids copied: the policy may be reloaded meanwhile */
    size_t nhits;
    uint64_t gen;            /* unique per build, for logs */
    /* The source was modified within a clock tick or so of our read: a later
     * rewrite of the same size could keep the same mtime and ctime (kernel
     * timestamps are coarse), so the key alone cannot prove the content is
     * unchanged. Such a view is reused only after re-reading the source and
     * comparing its SHA-256 (git's "racy clean" problem and answer). */
    int racy;
    /* cache bookkeeping (view.c only) */
    int prebuilt;            /* built ahead of any open (fs_view_prebuild), not looked up since */
    int refs;
    int cached;
    int evicted;             /* left the cache for room: worth spilling when released */
    int held;                /* left the cache while open files still hold it (counted in held_bytes) */
    struct fs_view *hnext, *lprev, *lnext;
} fs_view;

typedef struct fs_cache fs_cache;

/* cap: bytes of view data kept in memory. Views that left the cache while
 * open files still hold them count against it until released (the cache
 * then keeps that much less), and so do views of large files being built,
 * so view memory stays within cap unless the files held open (or being
 * built) at once need more by themselves. */
int fs_cache_new(uint64_t cap, fs_cache **out);
/* Also keep evicted views zstd-compressed in a fresh private directory made
 * under `dir` (removed by fs_cache_free), up to `cap` compressed bytes. Only
 * the compressed served bytes go to disk; what identifies and verifies them
 * (key, SHA-256 of the view) stays in memory, and a spilled view is used only
 * when it decompresses to exactly that SHA-256. 0 or -errno. */
int fs_cache_spill(fs_cache *c, const char *dir, uint64_t cap);
/* The private spill directory, or NULL when spilling is off. */
const char *fs_cache_spill_path(const fs_cache *c);
void fs_cache_free(fs_cache *c);

/* The view of `rel` for the source identity in `st` under `pol`: from the
 * cache when the key matches, else read the source (stable read), sanitize and
 * insert. `max` is the size limit. Returns 0 with *out holding a reference (a
 * view whose status may be a refusal), or a negative errno when the file does
 * not exist or cannot be resolved at all. */
int fs_view_get(fs_cache *c, const dlp_policy *pol, int rootfd, const char *rel, uint64_t max,
                fs_view **out);

/* The same, for a caller that has just stat'ed the source (known: *st is
 * that fs_source_stat of `rel`) or wants the stat the view was looked up
 * by (known = 0: *st gets it). Saves a path walk per FUSE request. */
int fs_view_get_stat(fs_cache *c, const dlp_policy *pol, int rootfd, const char *rel, uint64_t max,
                     struct stat *st, int known, fs_view **out);

/* Build the view of `rel` ahead of any open, like the kernel's readahead:
 * only when it is not cached, spilled or being built already, and only
 * when there is room now (build memory and builds running as for an open;
 * the view at most a quarter of the cache), never waiting for it: 0 when
 * built or not needed, -EBUSY when there was no room, or the source's
 * error. The view goes into the cache like any other (a refusal too) and is
 * found there by a later lookup exactly as a view built by an open
 * (same key check on a fresh stat); nothing is recorded in the ledger:
 * that is the open's business. The caller holds `pol` for the call. */
int fs_view_prebuild(fs_cache *c, const dlp_policy *pol, int rootfd, const char *rel, uint64_t max);

/* Only a cache lookup for the key of `st`: 0 with a reference, or -ENOENT. */
int fs_view_peek(fs_cache *c, const struct stat *st, const char *policy_hash, fs_view **out);

void fs_view_ref(fs_cache *c, fs_view *v);
void fs_view_unref(fs_cache *c, fs_view *v);

/* Drop every cached view (after a policy reload). Views held by open files
 * stay alive until released. */
void fs_cache_clear(fs_cache *c);

/* Builds may take at most about `bytes` of memory together besides the
 * views of files of 1 MiB or more, which count against the cache's cap from
 * the moment their build knows it makes one (the least recently used views
 * make room then); a build that takes more than `bytes` runs alone, at most
 * `builds` run at once; more wait. Two opens of the same version never build it
 * twice: the second waits for the first. Defaults: FS_BUILD_MEMORY and the
 * number of processors (at least 2); builds == 0 keeps the number. */
#define FS_BUILD_MEMORY (64ull << 20)
void fs_cache_set_build_limits(fs_cache *c, uint64_t bytes, unsigned builds);
/* What a build of a source of `size` bytes is charged against that limit. */
uint64_t fs_build_cost(uint64_t size);

typedef struct fs_cache_stats {
    uint64_t bytes, count, hits, misses, builds, evictions;
    uint64_t spill_bytes, spill_count, spill_hits, spill_bad;
    uint64_t held_bytes;      /* views out of the cache, still held by open files */
    uint64_t build_waits;     /* opens that waited for another's build of the same version */
    uint64_t room_waits;      /* builds that waited for views being built to leave room */
    uint64_t build_peak;      /* most build memory charged at once */
    uint64_t prebuilds;       /* views built ahead of an open (fs_view_prebuild) */
    uint64_t prebuild_hits;   /* lookups that found a prebuilt view (first use only) */
    uint64_t prebuild_skipped; /* prebuilds not started: no room */
    uint64_t recycled;        /* builds that took an evicted view's memory for theirs */
} fs_cache_stats;
void fs_cache_get_stats(fs_cache *c, fs_cache_stats *out);

void fs_view_key_from_stat(const struct stat *st, const char *policy_hash, fs_view_key *k);

#endif
