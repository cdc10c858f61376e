/* common/log.c — structured logging to stderr or syslog; in sanitizer
 * builds, where the sanitizers' reports go.
 * Never logs matched secrets: callers pass rule ids and offsets, not text. */
#include "common/common.h"

#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

static const char *g_prog = "sluice";
static enum log_level g_level = LOG_LVL_INFO;
static int g_syslog;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_init(const char *progname, enum log_level level)
{
    g_prog = progname;
    g_level = level;
    sluice_sanitizer_init(); /* every program starts here: sanitizer reports to their files */
}

void log_use_syslog(int on)
{
    if (on && !g_syslog)
        openlog(g_prog, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    g_syslog = on;
}

enum log_level log_get_level(void) { return g_level; }

int log_parse_level(const char *name, enum log_level *out)
{
    for (size_t i = 0; i < SLUICE_ARRAY_LEN(level_names); i++)
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    return -EINVAL;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level > g_level)
        return;
    char body[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    if (g_syslog) {
        static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
        syslog(prio[level], "level=%s %s", level_names[level], body);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    pthread_mutex_lock(&g_lock);
    fprintf(stderr, "%s: ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s %s\n", g_prog,
            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
            ts.tv_nsec / 1000000, level_names[level], body);
    pthread_mutex_unlock(&g_lock);
}

void sluice_bad_option(const char *cmd, char *const *argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (cmd)
        sluice_err("%s: %s: unknown option or missing value (see --help)", cmd, arg);
    else
        sluice_err("%s: unknown option or missing value (see --help)", arg);
}

void sluice_err(const char *fmt, ...)
{
    char body[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\n", g_prog, body);
}

/* ---- sanitizer builds (make sanitize): where reports go -----------------------
 * tests/run points every process's reports at files (log_path in
 * ASAN_OPTIONS and UBSAN_OPTIONS) and fails the test that left one. Two gaps
 * closed here (here, not in a file of its own, because every program and
 * fuzz target links this file):
 *  - gcc links UBSan as a runtime of its own (libubsan) beside libasan, and
 *    that runtime, initialised as ASan's plug-in, ignores log_path and writes
 *    to stderr, which a test may capture or discard: sluice_sanitizer_init()
 *    (from log_init, which every program calls first) hands it the path;
 *  - a runtime creates a process's report file at its first report; by then
 *    a confined process may no longer create files (Landlock; a seccomp
 *    filter refusing O_CREAT), and the runtime would only print "Can't open
 *    file" and die: sluice_sanitizer_keep_reports(), called just before
 *    confining, opens the files while it still can (asking a runtime for its
 *    report path opens it). tests/run drops the empty ones.
 * LeakSanitizer's exit check needs system calls a confinement may refuse
 * (listing /proc/PID/task, ptrace): fs/sandbox.c and diode/sandbox.c allow
 * them in sanitizer builds; the sluice-extract helper, whose filter refuses
 * them, runs without it (extract/extract.c).
 * Must never: do anything in a build without AddressSanitizer, or weaken a
 * confinement (it only opens files early). */
#if defined(__SANITIZE_ADDRESS__)
#define SLUICE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLUICE_ASAN 1
#endif
#endif

#ifdef SLUICE_ASAN
/* compiler-rt's interface (sanitizer/common_interface_defs.h). */
const char *__sanitizer_get_report_path(void);

/* The last log_path= in UBSAN_OPTIONS (options are separated by ':', ','
 * or blanks; the last one wins, as in the runtime), or NULL. */
static const char *ubsan_log_path(char *buf, size_t len)
{
    const char *opts = getenv("UBSAN_OPTIONS");
    const char *found = NULL;
    for (const char *p = opts; p && *p; p++) {
        if ((p == opts || strchr(":, \t", p[-1])) && strncmp(p, "log_path=", 9) == 0)
            found = p + 9;
    }
    if (found == NULL)
        return NULL;
    const size_t n = strcspn(found, ":, \t");
    if (n == 0 || n >= len)
        return NULL;
    memcpy(buf, found, n);
    buf[n] = '\0';
    return buf;
}

/* Calls fn(handle) for each loaded separate UBSan runtime (gcc's libubsan;
 * clang's UBSan lives inside its ASan runtime, which needs nothing). */
struct each { void (*fn)(void *h); };
static int each_ubsan(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    if (info->dlpi_name == NULL || strstr(info->dlpi_name, "libubsan") == NULL)
        return 0;
    void *h = dlopen(info->dlpi_name, RTLD_LAZY | RTLD_NOLOAD);
    if (h != NULL) {
        ((struct each *)arg)->fn(h);
        dlclose(h);
    }
    return 0;
}

static void ubsan_set_path(void *h)
{
    char buf[PATH_MAX];
    const char *path = ubsan_log_path(buf, sizeof buf);
    void (*set)(const char *) = (void (*)(const char *))dlsym(h, "__sanitizer_set_report_path");
    if (path != NULL && set != NULL)
        set(path);
}

static void ubsan_open(void *h)
{
    const char *(*get)(void) = (const char *(*)(void))dlsym(h, "__sanitizer_get_report_path");
    if (get != NULL)
        (void)get();
}

void sluice_sanitizer_init(void)
{
    /* Once: setting the path again would close a report file already
     * opened by sluice_sanitizer_keep_reports(). */
    static int done;
    if (done)
        return;
    done = 1;
    struct each e = {ubsan_set_path};
    dl_iterate_phdr(each_ubsan, &e);
}

void sluice_sanitizer_keep_reports(void)
{
    (void)__sanitizer_get_report_path(); /* ASan and LeakSanitizer */
    struct each e = {ubsan_open};
    dl_iterate_phdr(each_ubsan, &e);
}

void __sanitizer_report_error_summary(const char *error_summary);

void sluice_sanitizer_report(const char *what)
{
    char line[512];
    snprintf(line, sizeof line, "SUMMARY: %s: %s", g_prog, what);
    __sanitizer_report_error_summary(line); /* into this process's report file */
}
#else
void sluice_sanitizer_init(void)
{
}

void sluice_sanitizer_keep_reports(void)
{
}

void sluice_sanitizer_report(const char *what)
{
    (void)what;
}
#endif
