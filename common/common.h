/* common/common.h — the pieces every sluice program shares: logging, hashing,
 * key files, careful I/O. Nothing here knows about rules, FUSE or the wire.
 *
 * Error convention (the whole project): functions return 0 on success or a
 * negative errno-style code; in a security decision any error means deny. */
#ifndef SLUICE_COMMON_H
#define SLUICE_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.0.0"
#endif

#define SLUICE_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- logging ------------------------------------------------------------
 * Structured key=value lines: `sluice: level=warn msg="..." key=value`.
 * To stderr by default; to syslog after log_use_syslog(). */
enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_init(const char *progname, enum log_level level);
void log_use_syslog(int on);
int log_parse_level(const char *name, enum log_level *out); /* 0 or -EINVAL */
enum log_level log_get_level(void);
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/* A user-facing error on stderr: `<prog>: <what>: <why>`. */
void sluice_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* After getopt_long() returned '?' or ':' (with opterr = 0): `<prog>: <cmd>:
 * <arg>: unknown option or missing value (see --help)`; `cmd` may be NULL.
 * Every program's option errors read the same. */
void sluice_bad_option(const char *cmd, char *const *argv);

/* Sanitizer builds only (no-ops otherwise; common/log.c): init sends
 * UBSan's reports where UBSAN_OPTIONS's log_path says (log_init calls it);
 * keep_reports opens this process's report files now, before confinement
 * would refuse creating them: call it just before confining, in each
 * process that confines itself. */
void sluice_sanitizer_init(void);
void sluice_sanitizer_keep_reports(void);
/* A line in this process's sanitizer report file (a failure for tests/run),
 * for an error a sanitizer saw elsewhere: a helper process's. */
void sluice_sanitizer_report(const char *what);

/* ---- hashing (OpenSSL) --------------------------------------------------- */
#define SHA256_LEN 32
#define SHA256_HEX_LEN 65 /* 64 hex digits and a NUL */

typedef struct sha256_ctx sha256_ctx;
sha256_ctx *sha256_new(void);
int sha256_update(sha256_ctx *c, const void *buf, size_t len);
int sha256_final(sha256_ctx *c, uint8_t out[SHA256_LEN]); /* frees c */
void sha256_free(sha256_ctx *c);
int sha256_buf(const void *buf, size_t len, uint8_t out[SHA256_LEN]);
int hmac_sha256(const void *key, size_t keylen, const void *buf, size_t len,
                uint8_t out[SHA256_LEN]);
void hex_encode(const uint8_t *in, size_t len, char *out); /* out: 2*len+1 */
int hex_decode(const char *in, uint8_t *out, size_t outlen); /* exact length */
/* Constant-time comparison; 1 when equal. */
int ct_equal(const void *a, const void *b, size_t len);

/* ---- key files ------------------------------------------------------------
 * A key file holds at least 32 bytes of secret (raw, or hex on one line).
 * It must be a regular file not readable by group or others. */
#define KEY_MIN_LEN 32
#define KEY_MAX_LEN 1024
int key_load(const char *path, uint8_t *key, size_t *keylen, char *why, size_t whylen);
/* Create a new random key file (mode 0600) if none exists. */
int key_generate(const char *path);

/* ---- careful I/O ---------------------------------------------------------- */
ssize_t read_full(int fd, void *buf, size_t len);        /* EINTR-safe; short only at EOF */
int write_full(int fd, const void *buf, size_t len);      /* 0 or -errno */
ssize_t pread_full(int fd, void *buf, size_t len, off_t off);
/* Read a whole file (at most max bytes, else -EFBIG) into a malloc'd buffer. */
int file_read_all(const char *path, size_t max, uint8_t **out, size_t *outlen);

/* Parse a size like "64M", "1G", "4096" into bytes; 0 or -EINVAL. */
int parse_size(const char *s, uint64_t *out);

#endif
