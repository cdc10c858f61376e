/* diode/vault.c — publishing verified files into the vault that sluicefs
 * serves: path confinement, staging, atomic rename, durability.
 *
 * It must never follow a symlink, never create anything but directories and
 * regular files, never let a path escape the vault, and never make a file
 * visible before its bytes are durable. A file appears whole or not at all. */
#include "diode/diode.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define VAULT_CACHE_BUCKETS 65536
#define VAULT_CACHE_MAX 1000000

typedef struct vcache {
    struct vcache *next;
    dev_t dev;
    ino_t ino;
    uint64_t size;
    struct timespec mtime, ctime;
    uint8_t sha[SHA256_LEN];
    char path[];
} vcache;

struct vault {
    int dir_fd, stage_fd;
    uint64_t counter;
    pid_t pid;
    vcache **cache;
    size_t ncache;
    /* The receiver checks presence in one thread and publishes in another. */
    pthread_mutex_t cache_mu;
    /* The directory of the last publish: files arrive grouped by directory,
     * so walking the path again for each is mostly wasted. */
    int last_dir_fd;
    char last_dir[DIODE_PATH_MAX + 1];
};

int vault_path_check(const char *path, size_t len)
{
    if (len == 0 || len > DIODE_PATH_MAX || path[0] == '/')
        return -EINVAL;
    size_t depth = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len) {
            const unsigned char c = (unsigned char)path[i];
            if (c == 0 || c < 0x20 || c == 0x7f)
                return -EINVAL;
            if (c != '/')
                continue;
        }
        const size_t n = i - start;
        const char *comp = path + start;
        if (n == 0 || n > DIODE_NAME_MAX)
            return -EINVAL;
        if ((n == 1 && comp[0] == '.') || (n == 2 && comp[0] == '.' && comp[1] == '.'))
            return -EINVAL;
        if (n >= 7 && memcmp(comp, ".sluice", 7) == 0)
            return -EINVAL; /* reserved for our own bookkeeping */
        if (++depth > DIODE_DEPTH_MAX)
            return -EINVAL;
        start = i + 1;
    }
    return 0;
}

static int stage_clean(int fd)
{
    const int dup_fd = dup(fd);
    if (dup_fd < 0)
        return -errno;
    DIR *d = fdopendir(dup_fd);
    if (!d) {
        close(dup_fd);
        return -errno;
    }
    rewinddir(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "stage-", 6) == 0)
            unlinkat(fd, de->d_name, 0);
    closedir(d);
    return 0;
}

int vault_open(const char *dir, const char *staging, vault **out, char *why, size_t whylen)
{
    char sbuf[4096];
    if (!staging) {
        char a[4096], b[4096];
        snprintf(a, sizeof a, "%s", dir);
        snprintf(b, sizeof b, "%s", dir);
        size_t l = strlen(a);
        while (l > 1 && a[l - 1] == '/') {
            l--;
            a[l] = b[l] = '\0';
        }
        if (snprintf(sbuf, sizeof sbuf, "%s/.%s.sluice-staging", dirname(a), basename(b)) >=
            (int)sizeof sbuf) {
            snprintf(why, whylen, "vault path too long");
            return -ENAMETOOLONG;
        }
        staging = sbuf;
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        snprintf(why, whylen, "%s: %s", dir, strerror(errno));
        return -errno;
    }
    if (mkdir(staging, 0700) < 0 && errno != EEXIST) {
        snprintf(why, whylen, "%s: %s", staging, strerror(errno));
        return -errno;
    }
    vault *v = calloc(1, sizeof *v);
    if (!v) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    v->pid = getpid();
    v->last_dir_fd = -1;
    pthread_mutex_init(&v->cache_mu, NULL);
    v->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    v->stage_fd = open(staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    struct stat a, b;
    int rc = 0;
    if (v->dir_fd < 0 || v->stage_fd < 0) {
        rc = -errno;
        snprintf(why, whylen, "%s: %s", v->dir_fd < 0 ? dir : staging, strerror(errno));
    } else if (fstat(v->dir_fd, &a) < 0 || fstat(v->stage_fd, &b) < 0) {
        rc = -errno;
        snprintf(why, whylen, "stat: %s", strerror(errno));
    } else if (a.st_dev != b.st_dev) {
        rc = -EXDEV;
        snprintf(why, whylen, "staging directory %s is not on the vault's filesystem", staging);
    } else if (a.st_ino == b.st_ino) {
        rc = -EINVAL;
        snprintf(why, whylen, "the staging directory cannot be the vault itself");
    } else if ((rc = stage_clean(v->stage_fd)) < 0) {
        snprintf(why, whylen, "%s: cannot clean: %s", staging, strerror(-rc));
    }
    if (rc == 0) {
        v->cache = calloc(VAULT_CACHE_BUCKETS, sizeof *v->cache);
        if (!v->cache) {
            rc = -ENOMEM;
            snprintf(why, whylen, "out of memory");
        }
    }
    if (rc < 0) {
        vault_close(v);
        return rc;
    }
    *out = v;
    return 0;
}

void vault_close(vault *v)
{
    if (!v)
        return;
    if (v->dir_fd >= 0)
        close(v->dir_fd);
    if (v->stage_fd >= 0)
        close(v->stage_fd);
    if (v->last_dir_fd >= 0)
        close(v->last_dir_fd);
    if (v->cache) {
        for (size_t i = 0; i < VAULT_CACHE_BUCKETS; i++)
            for (vcache *c = v->cache[i], *n; c; c = n) {
                n = c->next;
                free(c);
            }
        free(v->cache);
    }
    free(v);
}

int vault_staging_fd(const vault *v) { return v->stage_fd; }

int vault_stage_create(vault *v, char *name, size_t namelen)
{
    snprintf(name, namelen, "stage-%d-%llu", (int)v->pid, (unsigned long long)++v->counter);
    const int fd = openat(v->stage_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                          0600);
    return fd < 0 ? -errno : fd;
}

void vault_stage_discard(vault *v, const char *name) { unlinkat(v->stage_fd, name, 0); }

int vault_sync_staging(vault *v)
{
    /* One flush of the filesystem for a whole batch of staged files is far
     * cheaper than an fsync per file, and just as durable. */
    return syncfs(v->stage_fd) < 0 ? -errno : 0;
}

int vault_commit(vault *v)
{
    /* Renames and new directories of a whole batch become durable at once.
     * The cached directory is forgotten at each batch: it saves walks
     * within a batch and never outlives one. */
    if (v->last_dir_fd >= 0)
        close(v->last_dir_fd);
    v->last_dir_fd = -1;
    v->last_dir[0] = '\0';
    return syncfs(v->dir_fd) < 0 ? -errno : 0;
}

static int open_beneath(int dirfd, const char *path, int flags)
{
    struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                                      RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV};
    const long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    return fd < 0 ? -errno : (int)fd;
}

static size_t cache_bucket(const char *path)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t)(h % VAULT_CACHE_BUCKETS);
}

static vcache *cache_get(vault *v, const char *path)
{
    for (vcache *c = v->cache[cache_bucket(path)]; c; c = c->next)
        if (strcmp(c->path, path) == 0)
            return c;
    return NULL;
}

static void cache_put(vault *v, const char *path, const struct stat *st, const uint8_t *sha)
{
    vcache *c = cache_get(v, path);
    if (!c) {
        if (v->ncache >= VAULT_CACHE_MAX)
            return;
        const size_t l = strlen(path);
        c = malloc(sizeof *c + l + 1);
        if (!c)
            return;
        memcpy(c->path, path, l + 1);
        const size_t b = cache_bucket(path);
        c->next = v->cache[b];
        v->cache[b] = c;
        v->ncache++;
    }
    c->dev = st->st_dev;
    c->ino = st->st_ino;
    c->size = (uint64_t)st->st_size;
    c->mtime = st->st_mtim;
    c->ctime = st->st_ctim;
    memcpy(c->sha, sha, SHA256_LEN);
}

int vault_has(vault *v, const char *path, uint64_t size, const uint8_t sha[SHA256_LEN])
{
    if (vault_path_check(path, strlen(path)) < 0)
        return 0;
    const int fd = open_beneath(v->dir_fd, path, O_RDONLY);
    if (fd < 0)
        return 0;
    struct stat st;
    int ret = 0;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != size)
        goto out;
    pthread_mutex_lock(&v->cache_mu);
    const vcache *c = cache_get(v, path);
    int hit = 0;
    if (c && c->dev == st.st_dev && c->ino == st.st_ino && c->size == size &&
        c->mtime.tv_sec == st.st_mtim.tv_sec && c->mtime.tv_nsec == st.st_mtim.tv_nsec &&
        c->ctime.tv_sec == st.st_ctim.tv_sec && c->ctime.tv_nsec == st.st_ctim.tv_nsec) {
        ret = memcmp(c->sha, sha, SHA256_LEN) == 0;
        hit = 1;
    }
    pthread_mutex_unlock(&v->cache_mu);
    if (hit)
        goto out;
    sha256_ctx *h = sha256_new();
    if (!h)
        goto out;
    static uint8_t buf[1 << 20];
    uint64_t done = 0;
    for (;;) {
        const ssize_t n = read_full(fd, buf, sizeof buf);
        if (n < 0) {
            sha256_free(h);
            goto out;
        }
        if (n == 0)
            break;
        sha256_update(h, buf, (size_t)n);
        done += (uint64_t)n;
    }
    uint8_t got[SHA256_LEN];
    if (sha256_final(h, got) < 0 || done != size)
        goto out;
    pthread_mutex_lock(&v->cache_mu);
    cache_put(v, path, &st, got);
    pthread_mutex_unlock(&v->cache_mu);
    ret = memcmp(got, sha, SHA256_LEN) == 0;
out:
    close(fd);
    return ret;
}

int vault_publish(vault *v, const char *stage_name, const char *path, const uint8_t sha[SHA256_LEN])
{
    const size_t len = strlen(path);
    if (vault_path_check(path, len) < 0)
        return -EINVAL;
    char comp[DIODE_NAME_MAX + 1];
    const char *leaf = strrchr(path, '/');
    const size_t dlen = leaf ? (size_t)(leaf - path) : 0;
    const char *p = path;
    int dfd;
    if (v->last_dir_fd >= 0 && strlen(v->last_dir) == dlen && memcmp(v->last_dir, path, dlen) == 0) {
        /* Still valid: the receiver is the vault's only writer, and a
         * directory it opened with O_NOFOLLOW stays that directory. */
        dfd = dup(v->last_dir_fd);
        p = leaf ? leaf + 1 : path;
    } else {
        dfd = dup(v->dir_fd);
    }
    if (dfd < 0)
        return -errno;
    int rc = 0;
    for (;;) {
        const char *slash = strchr(p, '/');
        if (!slash)
            break;
        const size_t n = (size_t)(slash - p);
        memcpy(comp, p, n);
        comp[n] = '\0';
        if (mkdirat(dfd, comp, 0755) < 0 && errno != EEXIST) {
            rc = -errno;
            break;
        }
        /* O_NOFOLLOW|O_DIRECTORY: a symlink or a file in the way is refused. */
        const int nfd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nfd < 0) {
            rc = errno == ELOOP ? -ENOTDIR : -errno;
            break;
        }
        close(dfd);
        dfd = nfd;
        p = slash + 1;
    }
    if (rc == 0 && (v->last_dir_fd < 0 || strlen(v->last_dir) != dlen ||
                    memcmp(v->last_dir, path, dlen) != 0)) {
        if (v->last_dir_fd >= 0)
            close(v->last_dir_fd);
        v->last_dir_fd = dup(dfd);
        memcpy(v->last_dir, path, dlen);
        v->last_dir[dlen] = '\0';
        if (v->last_dir_fd < 0)
            v->last_dir[0] = '\0';
    }
    if (rc == 0) {
        struct stat st;
        if (fstatat(dfd, p, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode))
            rc = -EEXIST; /* never replace a directory, symlink or device */
        else if (renameat2(v->stage_fd, stage_name, dfd, p, RENAME_NOREPLACE) < 0) {
            if (errno != EEXIST)
                rc = -errno;
            else if (renameat(v->stage_fd, stage_name, dfd, p) < 0)
                rc = -errno;
        }
        if (rc == 0 && sha && fstatat(dfd, p, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            pthread_mutex_lock(&v->cache_mu);
            cache_put(v, path, &st, sha);
            pthread_mutex_unlock(&v->cache_mu);
        }
    }
    close(dfd);
    return rc;
}
