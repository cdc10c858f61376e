/* cli/cmd_ledger.c — `sluice ledger`: what auditors run against the access
 * ledger: verify, checkpoint, query, archive. Uses the public ledger API for
 * everything that judges integrity, and plain read-only SQL for queries.
 *
 * Must never: write a record (only sluicefs and the diode append); say "ok"
 * for a ledger it could not fully check; print matched text (the ledger
 * holds none, only rule ids and counts). */
#include "cli/cli.h"
#include "common/common.h"
#include "ledger/ledger.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_LEDGER "/var/lib/sluice/ledger.db"
#define DEFAULT_KEY "/etc/sluice/ledger.key"

static const char *default_ledger(void)
{
    const char *e = getenv("SLUICE_LEDGER");
    return e && *e ? e : DEFAULT_LEDGER;
}

static const char *default_key(void)
{
    const char *e = getenv("SLUICE_LEDGER_KEY");
    return e && *e ? e : DEFAULT_KEY;
}

static void usage_main(FILE *f)
{
    fprintf(f,
            "usage: sluice ledger COMMAND [OPTIONS]\n"
            "\n"
            "commands:\n"
            "  verify      check the whole hash chain, HMACs and checkpoints\n"
            "  checkpoint  print a signed digest of the ledger's head\n"
            "  query       list records, filtered, as a table, CSV or JSON lines\n"
            "  archive     move old records into zstd-compressed segment files\n"
            "\n"
            "common options:\n"
            "  --ledger DB   the ledger database (default $SLUICE_LEDGER, else %s)\n"
            "  --key FILE    the ledger's sealing key (default $SLUICE_LEDGER_KEY, else %s)\n"
            "\n"
            "'sluice ledger COMMAND --help' for a command's options. See sluice-ledger(5).\n"
            "Exit status: 0 ok, 1 verification failed, 2 usage or other error.\n",
            DEFAULT_LEDGER, DEFAULT_KEY);
}

/* ---- verify ---------------------------------------------------------------- */

static int read_checkpoints(const char *file, const char *key_path, ledger_checkpoint **out,
                            size_t *n)
{
    uint8_t key[KEY_MAX_LEN];
    size_t keylen;
    char why[256];
    if (key_load(key_path, key, &keylen, why, sizeof why) < 0) {
        sluice_err("%s: %s", key_path, why);
        return EXIT_ERROR;
    }
    FILE *f = fopen(file, "r");
    if (!f) {
        sluice_err("%s: %s", file, strerror(errno));
        explicit_bzero(key, sizeof key);
        return EXIT_ERROR;
    }
    char line[1024];
    int lineno = 0, rc = EXIT_CLEAN;
    size_t cap = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        const char *p = line + strspn(line, " \t");
        if (*p == '#' || *p == '\n' || *p == '\0')
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            ledger_checkpoint *nc = realloc(*out, cap * sizeof **out);
            if (!nc) {
                rc = EXIT_ERROR;
                break;
            }
            *out = nc;
        }
        int prc = ledger_checkpoint_parse(p, key, keylen, &(*out)[*n]);
        if (prc == -EINVAL) {
            sluice_err("%s:%d: not a checkpoint line", file, lineno);
            rc = EXIT_ERROR;
            break;
        }
        if (prc == -EBADMSG) {
            sluice_err("%s:%d: checkpoint HMAC does not match (forged checkpoint, or another key)",
                       file, lineno);
            rc = EXIT_FINDINGS;
            break;
        }
        if (prc < 0) {
            sluice_err("%s:%d: %s", file, lineno, strerror(-prc));
            rc = EXIT_ERROR;
            break;
        }
        (*n)++;
    }
    fclose(f);
    explicit_bzero(key, sizeof key);
    return rc;
}

static int cmd_verify(int argc, char **argv)
{
    const char *db = default_ledger(), *key = default_key();
    const char *cpfiles[16];
    size_t ncpfiles = 0;
    int quiet = 0;
    static const struct option opts[] = {
        {"ledger", required_argument, NULL, 'l'}, {"key", required_argument, NULL, 'k'},
        {"checkpoint", required_argument, NULL, 'c'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "l:k:c:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'l': db = optarg; break;
        case 'k': key = optarg; break;
        case 'q': quiet = 1; break;
        case 'c':
            if (ncpfiles == SLUICE_ARRAY_LEN(cpfiles)) {
                sluice_err("ledger verify: at most %zu --checkpoint files", SLUICE_ARRAY_LEN(cpfiles));
                return EXIT_ERROR;
            }
            cpfiles[ncpfiles++] = optarg;
            break;
        case 'h':
            printf("usage: sluice ledger verify [--ledger DB] [--key FILE] [--checkpoint FILE]... [--quiet]\n"
                   "\n"
                   "Walk the whole chain, archived segments included: sequence numbers without\n"
                   "gaps, each record's hash recomputed from its content, each link to the\n"
                   "previous record, each HMAC under the key. With --checkpoint FILE (lines\n"
                   "printed by 'sluice ledger checkpoint'), also check that every checkpointed\n"
                   "record is still there unchanged: this detects a truncated tail.\n"
                   "Names the first bad record. Exit 0 clean, 1 verification failed, 2 error.\n");
            return EXIT_CLEAN;
        default: return cli_bad_option("ledger verify", argv);
        }
    }
    if (optind != argc) {
        sluice_err("ledger verify: unexpected argument '%s' (try --help)", argv[optind]);
        return EXIT_ERROR;
    }
    ledger_checkpoint *cps = NULL;
    size_t ncps = 0;
    for (size_t i = 0; i < ncpfiles; i++) {
        int rc = read_checkpoints(cpfiles[i], key, &cps, &ncps);
        if (rc != EXIT_CLEAN) {
            free(cps);
            return rc;
        }
    }
    ledger_verify_report rep;
    int rc = ledger_verify(db, key, cps, ncps, &rep);
    free(cps);
    if (rc == -EBADMSG) {
        if (rep.bad_seq)
            sluice_err("%s: verification failed at record %" PRIu64 ": %s", db, rep.bad_seq, rep.what);
        else
            sluice_err("%s: verification failed: %s", db, rep.what);
        return EXIT_FINDINGS;
    }
    if (rc < 0) {
        sluice_err("%s: cannot verify: %s", db, rep.what[0] ? rep.what : strerror(-rc));
        return EXIT_ERROR;
    }
    if (!quiet) {
        if (rep.records)
            printf("%s: ok: %" PRIu64 " records (seq %" PRIu64 "..%" PRIu64 "), %" PRIu64
                   " archived segments, %zu checkpoints\n",
                   db, rep.records, rep.first_seq, rep.last_seq, rep.segments, ncps);
        else
            printf("%s: ok: empty ledger, %zu checkpoints\n", db, ncps);
    }
    return EXIT_CLEAN;
}

/* ---- checkpoint ---------------------------------------------------------------- */

static int cmd_checkpoint(int argc, char **argv)
{
    const char *db = default_ledger(), *key = default_key();
    static const struct option opts[] = {{"ledger", required_argument, NULL, 'l'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "l:k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': db = optarg; break;
        case 'k': key = optarg; break;
        case 'h':
            printf("usage: sluice ledger checkpoint [--ledger DB] [--key FILE]\n"
                   "\n"
                   "Print one line: the head's sequence number and chain hash, the time, and\n"
                   "an HMAC-SHA256 of them under the ledger's key:\n"
                   "  sluice-ledger-checkpoint v1 seq=N hash=HEX time=UTC hmac=HEX\n"
                   "Keep these lines somewhere the ledger's host cannot write (append them to a\n"
                   "file, mail them to the auditors); 'sluice ledger verify --checkpoint FILE'\n"
                   "then detects a ledger cut back to before any of them.\n");
            return EXIT_CLEAN;
        default: return cli_bad_option("ledger checkpoint", argv);
        }
    }
    if (optind != argc) {
        sluice_err("ledger checkpoint: unexpected argument '%s' (try --help)", argv[optind]);
        return EXIT_ERROR;
    }
    ledger_checkpoint cp;
    char why[512] = "";
    int rc = ledger_checkpoint_take(db, key, &cp, why, sizeof why);
    if (rc < 0) {
        sluice_err("%s: cannot checkpoint: %s", db, why[0] ? why : strerror(-rc));
        return EXIT_ERROR;
    }
    char line[LEDGER_CHECKPOINT_MAX];
    ledger_checkpoint_format(&cp, line, sizeof line);
    printf("%s\n", line);
    return fflush(stdout) == 0 ? EXIT_CLEAN : EXIT_ERROR;
}

/* ---- archive -------------------------------------------------------------------- */

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-')
        return -EINVAL;
    *out = v;
    return 0;
}

static int cmd_archive(int argc, char **argv)
{
    const char *db = default_ledger(), *key = default_key();
    const char *before = NULL, *older = NULL;
    static const struct option opts[] = {
        {"ledger", required_argument, NULL, 'l'}, {"key", required_argument, NULL, 'k'},
        {"before", required_argument, NULL, 'b'}, {"older-than", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "l:k:b:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': db = optarg; break;
        case 'k': key = optarg; break;
        case 'b': before = optarg; break;
        case 'o': older = optarg; break;
        case 'h':
            printf("usage: sluice ledger archive [--ledger DB] [--key FILE] (--before SEQ | --older-than DAYS)\n"
                   "\n"
                   "Move the records with sequence numbers below SEQ (or older than DAYS days)\n"
                   "into a zstd-compressed segment file beside the database,\n"
                   "DB.seg-FIRST-LAST.zst, listed in its `segments` table. The newest record\n"
                   "always stays. 'sluice ledger verify' keeps checking archived records and\n"
                   "the chain continues across segments; 'sluice ledger query' and the SQL\n"
                   "views see only the live database (see sluice-ledger(5) to read a segment).\n");
            return EXIT_CLEAN;
        default: return cli_bad_option("ledger archive", argv);
        }
    }
    if (optind != argc) {
        sluice_err("ledger archive: unexpected argument '%s' (try --help)", argv[optind]);
        return EXIT_ERROR;
    }
    if (!!before == !!older) {
        sluice_err("ledger archive: give exactly one of --before SEQ or --older-than DAYS");
        return EXIT_ERROR;
    }
    uint64_t seq = 0;
    char why[512] = "";
    if (before && parse_u64(before, &seq) < 0) {
        sluice_err("ledger archive: --before %s: not a sequence number", before);
        return EXIT_ERROR;
    }
    if (older) {
        char *end;
        errno = 0;
        double days = strtod(older, &end);
        if (errno || end == older || *end || days < 0) {
            sluice_err("ledger archive: --older-than %s: not a number of days", older);
            return EXIT_ERROR;
        }
        int rc = ledger_seq_older_than(db, days, &seq, why, sizeof why);
        if (rc < 0) {
            sluice_err("%s: %s", db, why[0] ? why : strerror(-rc));
            return EXIT_ERROR;
        }
    }
    uint64_t moved = 0;
    int rc = ledger_archive(db, key, seq, &moved, why, sizeof why);
    if (rc < 0) {
        sluice_err("%s: cannot archive: %s", db, why[0] ? why : strerror(-rc));
        return rc == -EBADMSG ? EXIT_FINDINGS : EXIT_ERROR;
    }
    if (moved)
        printf("%s: archived %" PRIu64 " records\n", db, moved);
    else
        printf("%s: nothing to archive\n", db);
    return EXIT_CLEAN;
}

/* ---- query --------------------------------------------------------------------- */

/* "2026-11-23", "2026-11-23T10:00", "2026-11-23 10:00:05.5Z", or a duration
 * back from now: "90s", "15m", "2h", "7d". Out: the ledger's time format. */
static int parse_when(const char *s, char out[48])
{
    struct timespec ts;
    char unit = 0;
    double n;
    int used = 0;
    if (sscanf(s, "%lf%c%n", &n, &unit, &used) == 2 && s[used] == '\0' && n >= 0 &&
        strchr("smhd", unit) && !strchr(s, '-')) {
        const double mul = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : 86400;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec -= (time_t)(n * mul);
    } else {
        struct tm tm = {0};
        int y, mo, d, h = 0, mi = 0, sec = 0, k = 0;
        char frac[16] = "";
        if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &k) != 3)
            return -EINVAL;
        const char *p = s + k;
        if (*p == 'T' || *p == ' ') {
            int k2 = 0;
            if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &k2) != 2)
                return -EINVAL;
            p += 1 + k2;
            if (*p == ':') {
                if (sscanf(p + 1, "%2d%n", &sec, &k2) != 1)
                    return -EINVAL;
                p += 1 + k2;
                if (*p == '.') {
                    size_t fl = strspn(p + 1, "0123456789");
                    if (fl == 0 || fl > 9)
                        return -EINVAL;
                    memcpy(frac, p + 1, fl);
                    p += 1 + fl;
                }
            }
        }
        if (*p == 'Z')
            p++;
        if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
            return -EINVAL;
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = sec;
        ts.tv_sec = timegm(&tm);
        long ns = 0;
        for (size_t i = 0, fl = strlen(frac); i < 9; i++)
            ns = ns * 10 + (i < fl ? frac[i] - '0' : 0);
        ts.tv_nsec = ns; /* "5" means .500000000: digits are padded on the right */
    }
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 48, "%.19s.%09uZ", date, (unsigned)(ts.tv_nsec % 1000000000));
    return 0;
}

enum fmt { FMT_TABLE, FMT_CSV, FMT_JSON };

static void csv_field(const char *s)
{
    if (!s)
        return;
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

/* Control characters in a path or name must not rewrite the auditor's
 * terminal: shown as '?' in the table (CSV and JSON carry them escaped). */
static void table_field(const char *s, int width)
{
    int n = 0;
    for (; s && *s; s++, n++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
    for (; n < width; n++)
        putchar(' ');
}

static void bind_opt(sqlite3_stmt *st, const char *name, const char *v)
{
    if (v)
        sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, name), v, -1, SQLITE_STATIC);
}

/* One query, run on the live database or on one archived segment. */
struct qrun {
    const char *sql, *db;
    enum fmt fmt;
    const char *since, *until, *glob, *process, *rule, *decision, *event, *session;
    const uint64_t *uid;
    int limited;
    uint64_t remaining;
};
#define QUERY_LIMIT_REACHED 1

static int query_one(void *ctx, sqlite3 *h, const char *segment)
{
    struct qrun *q = ctx;
    if (q->limited && q->remaining == 0)
        return QUERY_LIMIT_REACHED;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(h, q->sql, -1, &st, NULL) != SQLITE_OK) {
        sluice_err("%s%s%s: not a sluice ledger? %s", q->db, segment ? ": segment " : "",
                   segment ? segment : "", sqlite3_errmsg(h));
        return -EINVAL;
    }
    bind_opt(st, ":since", q->since);
    bind_opt(st, ":until", q->until);
    bind_opt(st, ":glob", q->glob);
    bind_opt(st, ":proc", q->process);
    bind_opt(st, ":rule", q->rule);
    bind_opt(st, ":decision", q->decision);
    bind_opt(st, ":event", q->event);
    bind_opt(st, ":session", q->session);
    if (q->uid)
        sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":uid"), (sqlite3_int64)*q->uid);
    if (q->limited)
        sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":limit"),
                           (sqlite3_int64)q->remaining);
    const int ncols = 24; /* the record's own columns */
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *col[26];
        for (int i = 0; i < 26; i++)
            col[i] = (const char *)sqlite3_column_text(st, i);
        switch (q->fmt) {
        case FMT_JSON:
            printf("%s\n", col[25]);
            break;
        case FMT_CSV:
            for (int i = 0; i < ncols; i++) {
                if (i)
                    putchar(',');
                csv_field(col[i]);
            }
            putchar('\n');
            break;
        case FMT_TABLE: {
            char t[32];
            snprintf(t, sizeof t, "%.30s", col[1] ? col[1] : "");
            printf("%-7s %-30s %-15s %-7s %-6s ", col[0], t, col[2], col[3], col[4]);
            table_field(col[6] ? col[6] : "-", 15);
            putchar(' ');
            table_field(col[17] ? col[17] : "-", 8);
            printf(" %10s ", col[13]);
            table_field(col[24] ? col[24] : "-", 24);
            putchar(' ');
            table_field(col[10] ? col[10] : "-", 0);
            putchar('\n');
            break;
        }
        }
        if (q->limited)
            q->remaining--;
    }
    int rc = 0;
    if (step != SQLITE_DONE) {
        sluice_err("%s%s%s: %s", q->db, segment ? ": segment " : "", segment ? segment : "",
                   sqlite3_errmsg(h));
        rc = -EIO;
    }
    sqlite3_finalize(st);
    return rc;
}

static int cmd_query(int argc, char **argv)
{
    const char *db = default_ledger();
    const char *since = NULL, *until = NULL, *glob = NULL, *uid = NULL, *process = NULL,
               *rule = NULL, *decision = NULL, *event = NULL, *session = NULL, *limit = NULL;
    enum fmt fmt = FMT_TABLE;
    int archived = 0;
    static const struct option opts[] = {
        {"archived", no_argument, NULL, 'A'},
        {"ledger", required_argument, NULL, 'l'}, {"since", required_argument, NULL, 's'},
        {"until", required_argument, NULL, 'u'}, {"path", required_argument, NULL, 'p'},
        {"uid", required_argument, NULL, 'U'}, {"process", required_argument, NULL, 'P'},
        {"rule", required_argument, NULL, 'r'}, {"decision", required_argument, NULL, 'd'},
        {"event", required_argument, NULL, 'e'}, {"session", required_argument, NULL, 'S'},
        {"limit", required_argument, NULL, 'n'}, {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "Al:s:u:p:U:P:r:d:e:S:n:f:h", opts, NULL)) != -1) {
        switch (c) {
        case 'A': archived = 1; break;
        case 'l': db = optarg; break;
        case 's': since = optarg; break;
        case 'u': until = optarg; break;
        case 'p': glob = optarg; break;
        case 'U': uid = optarg; break;
        case 'P': process = optarg; break;
        case 'r': rule = optarg; break;
        case 'd': decision = optarg; break;
        case 'e': event = optarg; break;
        case 'S': session = optarg; break;
        case 'n': limit = optarg; break;
        case 'f':
            if (!strcmp(optarg, "table")) fmt = FMT_TABLE;
            else if (!strcmp(optarg, "csv")) fmt = FMT_CSV;
            else if (!strcmp(optarg, "json")) fmt = FMT_JSON;
            else {
                sluice_err("ledger query: --format %s: expected table, csv or json", optarg);
                return EXIT_ERROR;
            }
            break;
        case 'h':
            printf("usage: sluice ledger query [--ledger DB] [FILTERS] [--format table|csv|json] [--limit N] [--archived]\n"
                   "\n"
                   "filters (all must hold):\n"
                   "  --since WHEN      records at or after WHEN\n"
                   "  --until WHEN      records before WHEN\n"
                   "                    WHEN: 2026-11-23, 2026-11-23T10:00[:05[.123]][Z] (UTC),\n"
                   "                    or a time back from now: 90s, 15m, 2h, 7d\n"
                   "  --path GLOB       path (relative to the served root) matches GLOB\n"
                   "                    (SQLite GLOB: * ? [...], case-sensitive)\n"
                   "  --uid UID         reader's user id\n"
                   "  --process NAME    reader's process name (comm) or executable path\n"
                   "  --rule ID         records with hits of DLP rule ID\n"
                   "  --decision D      served, refused, accepted, rejected, ...\n"
                   "  --event E         mount, unmount, policy-load, open-served, open-refused,\n"
                   "                    ingest-accepted, ingest-rejected\n"
                   "  --session LABEL   the mount's session label\n"
                   "output:\n"
                   "  --format table    (default) one line per record for people\n"
                   "  --format csv      every column, with a header line (RFC 4180)\n"
                   "  --format json     one JSON object per line, every column (for a SIEM)\n"
                   "  --limit N         at most N records\n"
                   "  --archived        also search archived segments (oldest first)\n"
                   "Opens the ledger read-only; without --archived, the live database only.\n");
            return EXIT_CLEAN;
        default: return cli_bad_option("ledger query", argv);
        }
    }
    if (optind != argc) {
        sluice_err("ledger query: unexpected argument '%s' (try --help)", argv[optind]);
        return EXIT_ERROR;
    }
    char since_s[48], until_s[48];
    if (since && parse_when(since, since_s) < 0) {
        sluice_err("ledger query: --since %s: not a time (e.g. 2026-11-23T10:00 or 2h)", since);
        return EXIT_ERROR;
    }
    if (until && parse_when(until, until_s) < 0) {
        sluice_err("ledger query: --until %s: not a time (e.g. 2026-11-23T10:00 or 2h)", until);
        return EXIT_ERROR;
    }
    uint64_t uid_v = 0, limit_v = 0;
    if (uid && parse_u64(uid, &uid_v) < 0) {
        sluice_err("ledger query: --uid %s: not a user id", uid);
        return EXIT_ERROR;
    }
    if (limit && parse_u64(limit, &limit_v) < 0) {
        sluice_err("ledger query: --limit %s: not a number", limit);
        return EXIT_ERROR;
    }
    if (event) {
        ledger_event ev;
        if (ledger_event_parse(event, &ev) < 0) {
            sluice_err("ledger query: --event %s: unknown event (try --help)", event);
            return EXIT_ERROR;
        }
    }

    /* Filters are bound parameters, never pasted into the SQL. */
    char sql[4096];
    int len = snprintf(
        sql, sizeof sql,
        "SELECT seq, time, event, pid, uid, gid, process, exe, cgroup, session, path, "
        "source_sha256, served_sha256, size_served, mime, policy_hash, hits, decision, reason, "
        "extractor, request_id, prev_hash, hash, hmac, "
        "(SELECT group_concat(json_extract(h.value, '$.rule') || ':' || "
        "json_extract(h.value, '$.count'), ',') FROM json_each(CASE WHEN json_valid(hits) THEN "
        "hits ELSE '[]' END) AS h) AS hits_short, "
        "json_object('seq', seq, 'time', time, 'event', event, 'pid', pid, 'uid', uid, 'gid', "
        "gid, 'process', process, 'exe', exe, 'cgroup', cgroup, 'session', session, 'path', "
        "path, 'source_sha256', source_sha256, 'served_sha256', served_sha256, 'size_served', "
        "size_served, 'mime', mime, 'policy_hash', policy_hash, 'hits', CASE WHEN "
        "json_valid(hits) THEN json(hits) ELSE hits END, 'decision', decision, 'reason', reason, "
        "'extractor', extractor, 'request_id', request_id, 'prev_hash', prev_hash, 'hash', hash, "
        "'hmac', hmac) AS js "
        "FROM records WHERE 1");
    if (since) len += snprintf(sql + len, sizeof sql - len, " AND time >= :since");
    if (until) len += snprintf(sql + len, sizeof sql - len, " AND time < :until");
    if (glob) len += snprintf(sql + len, sizeof sql - len, " AND path GLOB :glob");
    if (uid) len += snprintf(sql + len, sizeof sql - len, " AND uid = :uid");
    if (process) len += snprintf(sql + len, sizeof sql - len, " AND (process = :proc OR exe = :proc)");
    if (rule)
        len += snprintf(sql + len, sizeof sql - len,
                        " AND EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(hits) THEN hits "
                        "ELSE '[]' END) AS r WHERE json_extract(r.value, '$.rule') = :rule)");
    if (decision) len += snprintf(sql + len, sizeof sql - len, " AND decision = :decision");
    if (event) len += snprintf(sql + len, sizeof sql - len, " AND event = :event");
    if (session) len += snprintf(sql + len, sizeof sql - len, " AND session = :session");
    len += snprintf(sql + len, sizeof sql - len, " ORDER BY seq");
    if (limit) len += snprintf(sql + len, sizeof sql - len, " LIMIT :limit");

    struct qrun q = {.sql = sql, .fmt = fmt, .since = since ? since_s : NULL,
                     .until = until ? until_s : NULL, .glob = glob, .process = process,
                     .rule = rule, .decision = decision, .event = event, .session = session,
                     .uid = uid ? &uid_v : NULL, .limited = limit != NULL, .remaining = limit_v,
                     .db = db};
    sqlite3 *h = NULL;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
        sluice_err("%s: %s", db, h ? sqlite3_errmsg(h) : "cannot open");
        sqlite3_close(h);
        return EXIT_ERROR;
    }
    sqlite3_busy_timeout(h, 5000);
    if (fmt == FMT_CSV) {
        static const char *const cols[] = {
            "seq", "time", "event", "pid", "uid", "gid", "process", "exe", "cgroup", "session",
            "path", "source_sha256", "served_sha256", "size_served", "mime", "policy_hash", "hits",
            "decision", "reason", "extractor", "request_id", "prev_hash", "hash", "hmac"};
        for (size_t i = 0; i < SLUICE_ARRAY_LEN(cols); i++)
            printf("%s%s", i ? "," : "", cols[i]);
        putchar('\n');
    } else if (fmt == FMT_TABLE) {
        printf("%-7s %-30s %-15s %-7s %-6s %-15s %-8s %10s %-24s %s\n", "SEQ", "TIME (UTC)", "EVENT",
               "PID", "UID", "PROCESS", "DECISION", "BYTES", "HITS", "PATH");
    }
    /* One read transaction: an archive running meanwhile cannot make a
     * record appear twice (in a segment and the database) or not at all. */
    int rc = sqlite3_exec(h, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
    if (rc < 0)
        sluice_err("%s: %s", db, sqlite3_errmsg(h));
    if (rc == 0 && archived) {
        char why[512] = "";
        rc = ledger_foreach_segment(h, db, query_one, &q, why, sizeof why);
        if (rc < 0 && why[0])
            sluice_err("%s: archived segments: %s", db, why);
    }
    if (rc == 0)
        rc = query_one(&q, h, NULL);
    if (rc == QUERY_LIMIT_REACHED)
        rc = 0;
    sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(h);
    if (fflush(stdout) != 0) {
        sluice_err("ledger query: writing output: %s", strerror(errno));
        rc = -EIO;
    }
    return rc == 0 ? EXIT_CLEAN : EXIT_ERROR;
}

int cmd_ledger(int argc, char **argv)
{
    if (argc < 2) {
        usage_main(stderr);
        return EXIT_ERROR;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        usage_main(stdout);
        return EXIT_CLEAN;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } subs[] = {{"verify", cmd_verify},
                {"checkpoint", cmd_checkpoint},
                {"query", cmd_query},
                {"archive", cmd_archive}};
    for (size_t i = 0; i < SLUICE_ARRAY_LEN(subs); i++)
        if (!strcmp(sub, subs[i].name)) {
            optind = 0; /* glibc: restart getopt for the subcommand's own options */
            return subs[i].fn(argc - 1, argv + 1);
        }
    sluice_err("ledger: %s: unknown command (try 'sluice ledger --help')", sub);
    return EXIT_ERROR;
}
