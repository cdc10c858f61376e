/* common/io.c — EINTR-safe full reads and writes, whole-file reads, key files
 * and size parsing. */
#include "common/common.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

ssize_t read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

ssize_t pread_full(int fd, void *buf, size_t len, off_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, (char *)buf + got, len - got, off + (off_t)got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

int write_full(int fd, const void *buf, size_t len)
{
    size_t put = 0;
    while (put < len) {
        ssize_t n = write(fd, (const char *)buf + put, len - put);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        put += (size_t)n;
    }
    return 0;
}

int file_read_all(const char *path, size_t max, uint8_t **out, size_t *outlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return -EFBIG;
    }
    /* Read to EOF rather than trusting st_size: the file may grow. */
    size_t cap = (size_t)st.st_size + 1, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        if (len == cap) {
            if (cap > max) {
                free(buf);
                close(fd);
                return -EFBIG;
            }
            size_t ncap = cap * 2;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                close(fd);
                return -ENOMEM;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t n = read_full(fd, buf + len, cap - len);
        if (n < 0) {
            free(buf);
            close(fd);
            return (int)n;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (len > max) {
        free(buf);
        return -EFBIG;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

int key_load(const char *path, uint8_t *key, size_t *keylen, char *why, size_t whylen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return -errno;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "not a regular file");
        close(fd);
        return -EINVAL;
    }
    if (st.st_mode & 077) {
        snprintf(why, whylen, "key file is readable by group or others (mode %03o); chmod 600 it",
                 (unsigned)(st.st_mode & 0777));
        close(fd);
        return -EPERM;
    }
    uint8_t buf[2 * KEY_MAX_LEN + 2];
    ssize_t n = read_full(fd, buf, sizeof buf);
    close(fd);
    if (n < 0) {
        snprintf(why, whylen, "%s", strerror((int)-n));
        return (int)n;
    }
    size_t len = (size_t)n;
    /* A hex key on one line is decoded; anything else is raw bytes. */
    size_t hl = len;
    while (hl > 0 && (buf[hl - 1] == '\n' || buf[hl - 1] == '\r'))
        hl--;
    int all_hex = hl > 0 && hl % 2 == 0;
    for (size_t i = 0; all_hex && i < hl; i++)
        all_hex = isxdigit(buf[i]);
    if (all_hex) {
        char tmp[sizeof buf + 1];
        memcpy(tmp, buf, hl);
        tmp[hl] = '\0';
        if (hl / 2 > KEY_MAX_LEN || hex_decode(tmp, key, hl / 2) < 0) {
            snprintf(why, whylen, "bad hex key");
            return -EINVAL;
        }
        len = hl / 2;
    } else {
        if (len > KEY_MAX_LEN) {
            snprintf(why, whylen, "key longer than %d bytes", KEY_MAX_LEN);
            return -EINVAL;
        }
        memcpy(key, buf, len);
    }
    if (len < KEY_MIN_LEN) {
        snprintf(why, whylen, "key shorter than %d bytes", KEY_MIN_LEN);
        return -EINVAL;
    }
    *keylen = len;
    return 0;
}

int key_generate(const char *path)
{
    uint8_t raw[32];
    char hex[65];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -EIO;
    hex_encode(raw, sizeof raw, hex);
    hex[64] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = write_full(fd, hex, sizeof hex);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

int parse_size(const char *s, uint64_t *out)
{
    if (!isdigit((unsigned char)s[0])) /* strtoull would take "-1" and " 5" */
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    uint64_t mul = 1;
    switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'K': mul = 1ULL << 10; end++; break;
    case 'M': mul = 1ULL << 20; end++; break;
    case 'G': mul = 1ULL << 30; end++; break;
    case 'T': mul = 1ULL << 40; end++; break;
    default: return -EINVAL;
    }
    if (*end == 'i' || *end == 'I')
        end++;
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end != '\0' || (v && mul > UINT64_MAX / v))
        return -EINVAL;
    *out = v * mul;
    return 0;
}
