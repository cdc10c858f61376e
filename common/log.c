/* common/log.c — structured logging to stderr or syslog.
 * Never logs matched secrets: callers pass rule ids and offsets, not text. */
#include "common/common.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
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
