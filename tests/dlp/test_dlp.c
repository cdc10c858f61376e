/* tests/dlp/test_dlp.c — unit tests of the DLP engine through its public
 * header: validators (through rules), operators, the chunking property,
 * overlaps, many findings, allow lists, encodings, fail-closed paths and
 * configuration errors. Every assertion is on the bytes a reader would get. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "dlp/dlp.h"

static char dir[] = "/tmp/sluice-dlp-test.XXXXXX";

static void write_file(const char *name, const char *text, int mode)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write_full(fd, text, strlen(text)), 0);
    close(fd);
    chmod(path, (mode_t)mode);
}

static const char *PACK =
    "pack: t\n"
    "version: 1\n"
    "rules:\n"
    "  - id: card\n"
    "    pattern: '(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])'\n"
    "    validator: luhn\n"
    "    action: {type: mask, keep-last: 4}\n"
    "    tags: [pci]\n"
    "  - id: iban\n"
    "    pattern: '\\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\\b'\n"
    "    validator: iban\n"
    "    action: {type: replace}\n"
    "  - id: ssn\n"
    "    pattern: '\\b[0-9]{3}-[0-9]{2}-[0-9]{4}\\b'\n"
    "    validator: us-ssn\n"
    "    action: {type: replace, label: '[SSN]'}\n"
    "  - id: email\n"
    "    pattern: '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,24}'\n"
    "    max-length: 256\n"
    "    action: {type: hash, label: email, length: 8}\n"
    "  - id: aws-key\n"
    "    pattern: '\\bAKIA[0-9A-Z]{16}\\b'\n"
    "    allow: ['AKIAIOSFODNN7EXAMPLE']\n"
    "    action: replace\n"
    "  - id: password\n"
    "    pattern: '(?i)password\\s*[=:]\\s*(?<secret>[^\\s]{6,64})'\n"
    "    max-length: 128\n"
    "    validator: {name: entropy, min-bits: 2.5}\n"
    "    action: remove\n"
    "  - id: dob\n"
    "    pattern: '\\b[0-9]{4}-[0-9]{2}-[0-9]{2}\\b'\n"
    "    context: {words: [born, dob], window: 20}\n"
    "    action: replace\n"
    "  - id: token\n"
    "    pattern: 'tok_[a-z]{4,40}'\n"
    "    action: replace\n"
    "  - id: tokword\n"
    "    pattern: '[a-z]{3}_[a-z]{6}'\n"
    "    action: {type: mask}\n"
    "  - id: pem\n"
    "    pattern: '(?s)-----BEGIN PRIVATE KEY-----.*?-----END PRIVATE KEY-----'\n"
    "    max-length: 8192\n"
    "    action: replace\n"
    "    must-match:\n"
    "      - 'x [[-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----]] y'\n"
    "    must-not-match:\n"
    "      - '-----BEGIN PUBLIC KEY-----'\n";

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(dir));
    write_file("t.yaml", PACK, 0644);
    write_file("key", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600);
    write_file("key2", "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n", 0600);
    char pol[512];
    snprintf(pol, sizeof pol,
             "policy: t\nversion: 1\npacks: [t.yaml]\n"
             "types:\n  allow: ['text/*', 'application/json']\n  deny: ['application/x-*executable']\n"
             "key-file: key\nlimits:\n  match-limit: 10000\n");
    write_file("p.yaml", pol, 0644);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static dlp_policy *load(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    dlp_policy *p = NULL;
    dlp_error err;
    int rc = dlp_policy_load(path, &p, &err);
    if (rc) {
        char msg[1200];
        dlp_error_format(&err, msg, sizeof msg);
        print_error("load %s: %s\n", name, msg);
    }
    assert_int_equal(rc, 0);
    return p;
}

/* Write `text` as the pack file `name` and load it alone. */
static dlp_policy *pack_from(const char *name, const char *text)
{
    write_file(name, text, 0644);
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    dlp_policy *p = NULL;
    dlp_error err;
    assert_int_equal(dlp_pack_load(path, &p, &err), 0);
    return p;
}

/* Sanitize a NUL-terminated text; returns a malloc'd NUL-terminated view. */
static char *san(const dlp_policy *p, const char *text, dlp_result *keep)
{
    dlp_result r;
    int rc = dlp_sanitize(p, text, strlen(text), &r);
    if (rc)
        print_error("sanitize: %d %s\n", rc, r.reason);
    assert_int_equal(rc, 0);
    char *s = malloc(r.len + 1);
    memcpy(s, r.data, r.len);
    s[r.len] = '\0';
    if (keep)
        *keep = r;
    else
        dlp_result_free(&r);
    return s;
}

static void expect_view(const dlp_policy *p, const char *in, const char *want)
{
    char *got = san(p, in, NULL);
    assert_string_equal(got, want);
    free(got);
}

/* ---- validators and operators, seen through the view ---------------------- */

static void test_luhn_and_mask(void **state)
{
    (void)state;
    dlp_policy *p = load("p.yaml");
    expect_view(p, "card 4111 1111 1111 1111 end\n", "card **** **** **** 1111 end\n");
    expect_view(p, "card 4111-1111-1111-1111.\n", "card ****-****-****-1111.\n");
    expect_view(p, "card 5500005555555559\n", "card ************5559\n");
    /* one digit off: Luhn fails, nothing masked */
    expect_view(p, "card 4111 1111 1111 1112 end\n", "card 4111 1111 1111 1112 end\n");
    dlp_policy_free(p);
}

/* Review: a card followed by an expiry or a street number was one greedy
 * match that failed Luhn, and nothing shorter was tried. */
static void test_card_then_digits(void **state)
{
    (void)state;
    dlp_policy *p = load("p.yaml");
    expect_view(p, "Card: 4111 1111 1111 1111 12/27 CVV\n", "Card: **** **** **** 1111 12/27 CVV\n");
    expect_view(p, "4111111111111111 12/27\n", "************1111 12/27\n");
    dlp_policy_free(p);
}

/* Review: a BOM in front of ASCII made the whole file "UTF-16", scanned as
 * CJK and served as the original bytes. */
static void test_bom_before_ascii_denied(void **state)
{
    (void)state;
    dlp_policy *p = load("p.yaml");
    static const char in[] = "\xff\xfe" "Employee SSN: 123-45-6789 card 4111 1111 1111 1111\n\n";
    dlp_result r;
    assert_true(dlp_sanitize(p, in, sizeof in - 1, &r) < 0);
    assert_null(r.data);
    dlp_result_free(&r);
    /* and 8-bit text with binary data after the first MiB is refused */
    size_t n = (1u << 20) + 64;
    char *big = malloc(n);
    memset(big, 'a', n);
    for (size_t i = 80; i < n; i += 81)
        big[i] = '\n';
    big[n - 10] = '\0';
    assert_true(dlp_sanitize(p, big, n, &r) < 0);
    assert_null(r.data);
    dlp_result_free(&r);
    free(big);
    dlp_policy_free(p);
}

static void test_iban(void **state)
{
    (void)state;
    dlp_policy *p = load("p.yaml");
    expect_view(p, "pay GB82 WEST 1234 5698 7654 32 now\n", "pay [REDACTED:iban] now\n");
    expect_view(p, "pay DE89370400440532013000 now\n", "pay [REDACTED:iban] now\n");
    /* checksum wrong, length wrong for the country */
    expect_view(p, "pay GB82 WEST 1234 5698 7654 33 now\n", "pay GB82 WEST 1234 5698 7654 33 now\n");
    expect_view(p, "pay DE8937040044053201300 now\n", "pay DE8937040044053201300 now\n");
    dlp_policy_free(p);
}

static void test_ssn_rules(void **state)
{
    (void)state;
    dlp_policy *p = load("p.yaml");
    expect_view(p, "ssn 123-45-6789\n", "ssn [SSN]\n");
    expect_view(p, "ssn 000-45-6789, 666-45-6789, 912-45-6789, 123-00-6789, 123-45-0000\n",
                "ssn 000-45-6789, 666-45-6789, 912-45-6789, 123-00-6789, 123-45-0000\n");
    dlp_policy_free(p);
}

static void test_entropy_secret_group_remove(void **state)
{
    (void)state;
    dlp_policy *p = load("p.yaml");
    expect_view(p, "password = xK9#mQ2$vL7p\n", "password = \n");
    /* low entropy: left alone */
    expect_view(p, "password: aaaaaaaa\n", "password: aaaaaaaa\n");
    dlp_policy_free(p);
}

static void test_hash_is_keyed_and_stable(void **state)
{
    (void)state;
    dlp_policy *p = load("p.yaml");
    char *a = san(p, "to alice@example.com and alice@example.com, bob@example.com\n", NULL);
    /* same value, same pseudonym; different values, different pseudonyms */
    char h1[32], h2[32], h3[32];
    assert_int_equal(sscanf(a, "to <email:%8[0-9a-f]> and <email:%8[0-9a-f]>, <email:%8[0-9a-f]>", h1,
                            h2, h3),
                     3);
    assert_string_equal(h1, h2);
    assert_string_not_equal(h1, h3);
    assert_null(strstr(a, "alice"));
    /* another key gives another pseudonym */
    setenv("SLUICE_KEY_FILE", "", 1);
    char kpath[256];
    snprintf(kpath, sizeof kpath, "%s/key2", dir);
    setenv("SLUICE_KEY_FILE", kpath, 1);
    dlp_policy *p2 = load("p.yaml");
    unsetenv("SLUICE_KEY_FILE");
    char *b = san(p2, "to alice@example.com\n", NULL);
    char k1[32];
    assert_int_equal(sscanf(b, "to <email:%8[0-9a-f]>", k1), 1);
    assert_string_not_equal(h1, k1);
    /* and the policy hash differs, so no view is shared between them */
    assert_string_not_equal(dlp_policy_hash(p), dlp_policy_hash(p2));
    free(a);
    free(b);
    dlp_policy_free(p);
    dlp_policy_free(p2);
}

static void test_context_words(void **state)
{
    (void)state;
    dlp_policy *p = load("p.yaml");
    expect_view(p, "She was born 1984-03-12 in Lyon.\n", "She was born [REDACTED:dob] in Lyon.\n");
    expect_view(p, "Invoice dated 1984-03-12 paid.\n", "Invoice dated 1984-03-12 paid.\n");
    /* a context word counts only as a whole word */
    expect_view(p, "token xdobq 1984-03-12 reborn\n", "token xdobq 1984-03-12 reborn\n");
    expect_view(p, "DOB:1984-03-12\n", "DOB:[REDACTED:dob]\n");
    dlp_policy_free(p);
}

static void test_allow_list(void **state)
{
    (void)state;
    dlp_policy *p = load("p.yaml");
    expect_view(p, "key AKIAIOSFODNN7EXAMPLE and AKIAZ3MPLE0000ABCDEF\n",
                "key AKIAIOSFODNN7EXAMPLE and [REDACTED:aws-key]\n");
    dlp_policy_free(p);
}

/* ---- many findings, overlaps ------------------------------------------------ */

static void test_many_findings_all_masked(void **state)
{
    (void)state;
    dlp_policy *p = load("p.yaml");
    size_t n = 2000;
    char *in = malloc(n * 40 + 1), *o = in;
    for (size_t i = 0; i < n; i++)
        o += sprintf(o, "%s123-45-%04zu", i ? (i % 7 ? "; " : "\n") : "", i + 1);
    dlp_result r;
    char *v = san(p, in, &r);
    assert_null(strstr(v, "123-45-"));
    assert_int_equal(r.nhits, 1);
    assert_int_equal(r.hits[0].count, n);
    assert_int_equal(r.nfindings, n);
    dlp_result_free(&r);
    free(v);
    free(in);
    dlp_policy_free(p);
}

static void test_overlap_union(void **state)
{
    (void)state;
    dlp_policy *p = load("p.yaml");
    /* `token` matches tok_abcdefghij, `tokword` matches tok_abcdef inside it and
     * xyz_tok... overlapping: one group, the earliest start's action. */
    dlp_result r;
    char *v = san(p, "a xyz_tokabc tok_abcdefghij z\n", &r);
    assert_null(strstr(v, "tokabc"));
    assert_null(strstr(v, "abcdefghij"));
    dlp_result_free(&r);
    free(v);
    v = san(p, "see tok_abcdefghij.\n", &r);
    /* tok_abcdefghij (token, starts first, longest) wins over tok_abcdef */
    assert_string_equal(v, "see [REDACTED:token].\n");
    assert_int_equal(r.nhits, 2); /* both rules counted */
    dlp_result_free(&r);
    free(v);
    dlp_policy_free(p);
}

/* ---- the chunking property ----------------------------------------------------- */

typedef struct sink {
    struct {
        char *d;
        size_t len, cap;
    } b;
    size_t reserved; /* dlp_sink: the room given out and not committed yet */
    int reserves, fail_reserve_at, fail_commit; /* fault injection: 0 = never */
} sink;

static unsigned long g_outs; /* output calls and commits: rounds that emitted */

static int sink_out(void *ctx, const void *buf, size_t len)
{
    sink *s = ctx;
    g_outs++;
    if (s->b.len + len + 1 > s->b.cap) {
        s->b.cap = (s->b.len + len + 1) * 2;
        s->b.d = realloc(s->b.d, s->b.cap);
    }
    memcpy(s->b.d + s->b.len, buf, len);
    s->b.len += len;
    s->b.d[s->b.len] = '\0';
    return 0;
}

/* A dlp_sink that moves the output on every reserve (an engine writing
 * through a stale pointer shows) and fills the room with 0xA5, a byte no
 * view of these texts holds (room left unwritten shows). */
static void *sink_reserve(void *ctx, size_t len)
{
    sink *s = ctx;
    assert_int_equal(s->reserved, 0); /* one room at a time, each committed */
    if (++s->reserves == s->fail_reserve_at)
        return NULL;
    char *n = malloc(s->b.len + len + 1);
    assert_non_null(n);
    memcpy(n, s->b.d, s->b.len);
    memset(n + s->b.len, 0xA5, len + 1);
    free(s->b.d);
    s->b.d = n;
    s->b.cap = s->b.len + len + 1;
    s->reserved = len;
    return n + s->b.len;
}

static int sink_commit(void *ctx, size_t len)
{
    sink *s = ctx;
    assert_int_equal(len, s->reserved); /* exactly the room reserved */
    assert_null(memchr(s->b.d + s->b.len, 0xA5, len));
    s->reserved = 0;
    g_outs++;
    s->b.len += len;
    s->b.d[s->b.len] = '\0';
    return s->fail_commit;
}

/* Feed `in` cut at the given offsets, with rounds forced small; through
 * the output callback, then again through a dlp_sink: both must give the
 * same bytes. */
static char *stream_cuts1(const dlp_policy *p, const char *in, size_t len, const size_t *cuts,
                          size_t ncuts, size_t round, int use_sink)
{
    sink s = {0};
    sink_out(&s, "", 0);
    dlp_stream *st;
    assert_int_equal(dlp_stream_new(p, use_sink ? NULL : sink_out, NULL, &s, &st), 0);
    if (use_sink)
        assert_int_equal(dlp_stream_set_sink(st, &(const dlp_sink){sink_reserve, sink_commit}), 0);
    dlp_stream_set_round_size(st, round);
    size_t at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        assert_int_equal(dlp_stream_feed(st, in + at, end - at), 0);
        at = end;
    }
    assert_int_equal(dlp_stream_finish(st), 0);
    dlp_stream_free(st);
    assert_int_equal(s.reserved, 0);
    return s.b.d;
}

static char *stream_cuts(const dlp_policy *p, const char *in, size_t len, const size_t *cuts,
                         size_t ncuts, size_t round)
{
    char *v = stream_cuts1(p, in, len, cuts, ncuts, round, 0);
    char *w = stream_cuts1(p, in, len, cuts, ncuts, round, 1);
    if (strcmp(v, w)) {
        print_error("the sink's output differs from the callback's\n");
        fail();
    }
    free(w);
    return v;
}

static char *chunk_corpus(size_t *len)
{
    /* long enough that forced rounds cut it many times; findings everywhere */
    static const char *lines[] = {
        "Employee Jane Roe, SSN 123-45-6789, card 4111 1111 1111 1111.\n",
        "Mail jane.roe@example.com or j.r+hr@corp.example.org today.\n",
        "password = xK9#mQ2$vL7p and AKIAZ3MPLE0000ABCDEF\n",
        "born 1984-03-12; IBAN GB82 WEST 1234 5698 7654 32.\n",
        "tok_abcdefghij xyz_tokabc plain words here.\n",
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n",
        "Nothing sensitive on this line at all, just prose.\n",
    };
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    for (int i = 0; n < 12000; i++) {
        const char *l = lines[(i * 5) % 7];
        size_t ll = strlen(l);
        memcpy(b + n, l, ll);
        n += ll;
    }
    b[n] = '\0';
    *len = n;
    return b;
}

/* A sink that cannot give room, or whose commit fails, fails the stream:
 * the caller denies. A sink comes before the first feed only. */
static void test_sink_errors(void **state)
{
    (void)state;
    dlp_policy *p = load("p.yaml");
    size_t len;
    char *in = chunk_corpus(&len);
    const dlp_sink ds = {sink_reserve, sink_commit};
    for (int k = 0; k < 2; k++) {
        sink s = {0};
        sink_out(&s, "", 0);
        if (k == 0)
            s.fail_reserve_at = 3;
        else
            s.fail_commit = -EIO;
        dlp_stream *st;
        assert_int_equal(dlp_stream_new(p, NULL, NULL, &s, &st), 0);
        assert_int_equal(dlp_stream_set_sink(st, &ds), 0);
        dlp_stream_set_round_size(st, 1);
        int rc = 0;
        for (size_t at = 0; at < len && rc == 0; at += 700)
            rc = dlp_stream_feed(st, in + at, len - at < 700 ? len - at : 700);
        if (rc == 0)
            rc = dlp_stream_finish(st);
        assert_int_equal(rc, k == 0 ? -ENOMEM : -EIO);
        assert_non_null(dlp_stream_error(st));
        assert_int_equal(dlp_stream_feed(st, "x", 1), rc); /* stays failed */
        dlp_stream_free(st);
        free(s.b.d);
    }
    /* after a feed, or without both halves: refused */
    sink s = {0};
    dlp_stream *st;
    assert_int_equal(dlp_stream_new(p, sink_out, NULL, &s, &st), 0);
    assert_int_equal(dlp_stream_set_sink(st, &(const dlp_sink){sink_reserve, NULL}), -EINVAL);
    assert_int_equal(dlp_stream_feed(st, "abc", 3), 0);
    assert_int_equal(dlp_stream_set_sink(st, &ds), -EINVAL);
    assert_int_equal(dlp_stream_finish(st), 0);
    assert_int_equal(s.b.len, 3); /* still the callback's */
    dlp_stream_free(st);
    free(s.b.d);
    free(in);
    dlp_policy_free(p);
}

static void test_chunking_every_offset(void **state)
{
    (void)state;
    dlp_policy *p = load("p.yaml");
    size_t len;
    char *in = chunk_corpus(&len);
    char *whole = san(p, in, NULL);
    assert_null(strstr(whole, "123-45-6789"));
    assert_null(strstr(whole, "MIIEvQ"));
    /* every single cut point, with rounds as small as they go; under
     * valgrind (make memcheck, some 50 times slower) every 61st: make check
     * and make sanitize run them all */
    const char *mc = getenv("SLUICE_MEMCHECK");
    const size_t stride = mc && *mc && strcmp(mc, "0") ? 61 : 1;
    for (size_t k = 0; k <= len; k += stride) {
        char *v = stream_cuts(p, in, len, &k, 1, 1);
        if (strcmp(v, whole)) {
            print_error("output differs when cut at %zu\n", k);
            fail();
        }
        free(v);
    }
    free(whole);
    free(in);
    dlp_policy_free(p);
}

/* Context words on every line chain their windows through the whole text
 * (an "SSN" or "born" column): rounds must still cut through them, and
 * give the same findings: dates near a word masked, dates farther away
 * not, wherever the cuts fall. */
static void test_chunking_dense_context(void **state)
{
    (void)state;
    /* a pack of its own: no rule with a long window (p.yaml's pem, 8 KiB),
     * so the hold is short and small rounds really cut the text */
    dlp_policy *p = pack_from("dc.yaml",
                              "pack: dc\nversion: 1\nrules:\n"
                              "  - id: dob\n    pattern: '\\b[0-9]{4}-[0-9]{2}-[0-9]{2}\\b'\n"
                              "    context: {words: [born, dob], window: 20}\n    action: replace\n"
                              "  - id: tok\n    pattern: 'tok_[a-z]{4,12}'\n    action: replace\n");
    static const char *lines[] = {
        "row born 1984-03-12 ok\n",               /* within the window: masked */
        "row dob: 1990-01-02; also 2001-02-03\n", /* both within 20 of dob */
        "row 2020-12-31 born tok_abcdefgh\n",     /* word after the date */
        "row born and then a long gap of plain words 1977-07-07 and more words to end\n", /* too far */
    };
    size_t cap = 1 << 16, len = 0;
    char *in = malloc(cap);
    for (int i = 0; len < 6000; i++) {
        const char *l = lines[(i * 3) % 4];
        memcpy(in + len, l, strlen(l));
        len += strlen(l);
    }
    in[len] = '\0';
    char *whole = san(p, in, NULL);
    assert_null(strstr(whole, "1984-03-12"));
    assert_null(strstr(whole, "2001-02-03"));
    assert_null(strstr(whole, "2020-12-31"));
    assert_non_null(strstr(whole, "1977-07-07"));
    const char *mc = getenv("SLUICE_MEMCHECK");
    const size_t stride = mc && *mc && strcmp(mc, "0") ? 61 : 1;
    for (size_t k = 0; k <= len; k += stride) {
        g_outs = 0;
        char *v = stream_cuts(p, in, len, &k, 1, 1);
        if (strcmp(v, whole)) {
            print_error("dense context: output differs when cut at %zu\n", k);
            fail();
        }
        /* a round ran at the cut and emitted up to a point inside the
         * chained windows (both passes: callback and sink) */
        if (k >= 600 && g_outs < 4) {
            print_error("dense context: only %lu rounds emitted when cut at %zu\n", g_outs, k);
            fail();
        }
        free(v);
    }
    srand(11);
    size_t cuts[256];
    for (int trial = 0; trial < 100; trial++) {
        size_t nc = 0, at = 0;
        while (nc < 256 && (at += 1 + (size_t)rand() % 120) < len)
            cuts[nc++] = at;
        g_outs = 0;
        char *v = stream_cuts(p, in, len, cuts, nc, 1 + (size_t)rand() % 200);
        assert_string_equal(v, whole);
        assert_true(g_outs >= 40); /* many rounds, each cut inside the chain */
        free(v);
    }
    free(whole);
    free(in);
    dlp_policy_free(p);
}

static void test_chunking_bytewise_and_random(void **state)
{
    (void)state;
    dlp_policy *p = load("p.yaml");
    size_t len;
    char *in = chunk_corpus(&len);
    char *whole = san(p, in, NULL);
    size_t *cuts = malloc(len * sizeof *cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    char *v = stream_cuts(p, in, len, cuts, len - 1, 1); /* one byte at a time */
    assert_string_equal(v, whole);
    free(v);
    srand(7);
    for (int trial = 0; trial < 200; trial++) {
        size_t nc = 0, at = 0;
        while (at < len) {
            at += 1 + (size_t)rand() % 700;
            if (at < len)
                cuts[nc++] = at;
        }
        v = stream_cuts(p, in, len, cuts, nc, 1 + (size_t)rand() % 3000);
        assert_string_equal(v, whole);
        free(v);
    }
    free(cuts);
    free(whole);
    free(in);
    dlp_policy_free(p);
}

/* ---- encodings ------------------------------------------------------------------- */

static size_t to_utf16(const char *s, uint8_t *out, int le, int bom)
{
    size_t n = 0;
    if (bom) {
        out[n++] = le ? 0xFF : 0xFE;
        out[n++] = le ? 0xFE : 0xFF;
    }
    for (; *s; s++) {
        out[n++] = le ? (uint8_t)*s : 0;
        out[n++] = le ? 0 : (uint8_t)*s;
    }
    return n;
}

static void test_utf16(void **state)
{
    (void)state;
    dlp_policy *p = load("p.yaml");
    const char *text = "Employee SSN 123-45-6789, card 4111 1111 1111 1111, mail a.b@example.com.\n";
    for (int le = 0; le < 2; le++)
        for (int bom = 0; bom < 2; bom++) {
            uint8_t in[512], want[512];
            size_t n = to_utf16(text, in, le, bom);
            char *view8 = san(p, text, NULL);
            size_t wn = to_utf16(view8, want, le, bom);
            dlp_result r;
            assert_int_equal(dlp_sanitize(p, in, n, &r), 0);
            assert_string_equal(r.type.encoding, le ? "utf-16le" : "utf-16be");
            /* masked in its own encoding: exactly the UTF-16 of the UTF-8 view */
            assert_int_equal(r.len, wn);
            assert_memory_equal(r.data, want, wn);
            assert_int_equal(r.nhits, 3);
            dlp_result_free(&r);
            free(view8);
        }
    dlp_policy_free(p);
}

static void test_invalid_utf8_does_not_hide(void **state)
{
    (void)state;
    dlp_policy *p = load("p.yaml");
    const char in[] = "x\xff\xfe 123-45-6789\xc3 card\x80 4111111111111111\xe2\x82 end\n";
    dlp_result r;
    int rc = dlp_sanitize(p, in, sizeof in - 1, &r);
    if (rc == 0) {
        assert_null(memmem(r.data, r.len, "123-45-6789", 11));
        assert_null(memmem(r.data, r.len, "41111111", 8));
        dlp_result_free(&r);
    } else {
        /* a denial is also safe: nothing served */
        assert_null(r.data);
        dlp_result_free(&r);
    }
    dlp_policy_free(p);
}

/* ---- types and fail-closed ----------------------------------------------------- */

static void test_types(void **state)
{
    (void)state;
    dlp_policy *p = load("p.yaml");
    uint8_t *elf;
    size_t n;
    assert_int_equal(file_read_all("/bin/true", 1 << 24, &elf, &n), 0);
    dlp_result r;
    assert_int_equal(dlp_sanitize(p, elf, n, &r), -EACCES);
    assert_null(r.data);
    assert_non_null(strstr(r.reason, "type application/"));
    dlp_result_free(&r);
    free(elf);
    /* gzip data is not text */
    static const uint8_t gz[] = {0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 3, 0x4b, 0x4c, 0x4a, 0x06, 0, 0xc2, 0x41, 0x24, 0x35, 3, 0, 0, 0};
    assert_int_equal(dlp_sanitize(p, gz, sizeof gz, &r), -EACCES);
    dlp_result_free(&r);
    /* empty files are served empty */
    assert_int_equal(dlp_sanitize(p, "", 0, &r), 0);
    assert_int_equal(r.len, 0);
    dlp_result_free(&r);
    /* JSON is allowed */
    char *v = san(p, "{\"ssn\": \"123-45-6789\"}\n", NULL);
    assert_string_equal(v, "{\"ssn\": \"[SSN]\"}\n");
    free(v);
    dlp_policy_free(p);
}

/* libmagic's text tests (its magic database's text set) are what tell an
 * armoured PGP message, an e-mail or a web page from plain text. They are
 * also most of what classifying a small text file costs, and some libmagic
 * flags would skip them (MAGIC_NO_CHECK_SOFT, MAGIC_NO_CHECK_ENCODING: all
 * three come out text/plain, and PGP armour would then be served as text).
 * This pins that they are consulted. */
static void test_types_text_magic(void **state)
{
    (void)state;
    write_file("pt.yaml",
               "policy: pt\nversion: 1\npacks: [t.yaml]\n"
               "types:\n  allow: ['text/*']\n  deny: ['application/pgp-*']\nkey-file: key\n",
               0644);
    dlp_policy *p = load("pt.yaml");
    static const struct {
        const char *text, *mime;
        int allowed;
    } cases[] = {
        {"-----BEGIN PGP MESSAGE-----\n\nhQEMA1234567890abcdefghijklmnop\n=abcd\n"
         "-----END PGP MESSAGE-----\n",
         "application/pgp-encrypted", 0},
        {"<!DOCTYPE html>\n<html><body><p>hello</p></body></html>\n", "text/html", 1},
        {"From: a@example.com\nTo: b@example.com\nSubject: x\nMessage-ID: <1@example.com>\n"
         "Date: Mon, 1 Jan 2024 00:00:00 +0000\n\nbody\n",
         "message/rfc822", 0},
        {"just a line of plain text, nothing more\n", "text/plain", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dlp_type t;
        assert_int_equal(dlp_classify(p, cases[i].text, strlen(cases[i].text), &t), 0);
        if (strcmp(t.mime, cases[i].mime) != 0 || t.allowed != cases[i].allowed) {
            print_error("case %zu: got %s allowed=%d, want %s allowed=%d\n", i, t.mime,
                        t.allowed, cases[i].mime, cases[i].allowed);
            fail();
        }
    }
    dlp_policy_free(p);
}

static void test_catastrophic_backtracking_denies(void **state)
{
    (void)state;
    write_file("evil.yaml",
               "pack: evil\nversion: 1\nrules:\n  - id: evil\n    pattern: '(a|aa)+(?<!a)b'\n"
               "    action: replace\n",
               0644);
    write_file("pe.yaml",
               "policy: e\nversion: 1\npacks: [evil.yaml]\ntypes: {allow: ['text/*']}\n"
               "limits: {match-limit: 10000, depth-limit: 1000}\n",
               0644);
    dlp_policy *p = load("pe.yaml");
    char in[200];
    /* Vectorscan drops the lookbehind (prefilter mode), so it reports a
     * candidate at the b; PCRE2 then backtracks through every split of the
     * a's until the match limit stops it. */
    memset(in, 'a', 60);
    strcpy(in + 60, "b\n");
    dlp_result r;
    int rc = dlp_sanitize(p, in, strlen(in), &r);
    assert_true(rc < 0);
    assert_int_not_equal(rc, -EACCES); /* "could not check", not a type denial */
    assert_null(r.data);
    assert_non_null(strstr(r.reason, "limit"));
    dlp_result_free(&r);
    dlp_policy_free(p);
}

static void test_size_limit(void **state)
{
    (void)state;
    write_file("small.yaml",
               "policy: s\nversion: 1\npacks: [t.yaml]\ntypes: {allow: ['text/*']}\n"
               "key-file: key\nlimits: {max-file-size: 16}\n",
               0644);
    dlp_policy *p = load("small.yaml");
    dlp_result r;
    assert_int_equal(dlp_sanitize(p, "0123456789abcdefg", 17, &r), -EFBIG);
    assert_null(r.data);
    dlp_result_free(&r);
    dlp_policy_free(p);
}

/* ---- configuration errors -------------------------------------------------------- */

static void expect_error(const char *name, const char *text, int line, const char *needle)
{
    write_file(name, text, 0644);
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    dlp_policy *p = NULL;
    dlp_error err;
    int rc = dlp_pack_load(path, &p, &err);
    if (rc && strstr(err.msg, "a policy has 'policy:'"))
        rc = dlp_policy_load(path, &p, &err);
    assert_int_equal(rc, -EINVAL);
    char msg[1200];
    dlp_error_format(&err, msg, sizeof msg);
    if (!strstr(msg, needle) || (line && err.line != line)) {
        print_error("got: %s (line %d), want line %d and '%s'\n", msg, err.line, line, needle);
        fail();
    }
    assert_non_null(strstr(msg, name));
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_error("e1.yaml", "pack: x\nversion: 1\nrules:\n  - id: a\n    pattern: '(ab'\n    action: replace\n",
                 5, "missing closing parenthesis");
    expect_error("e2.yaml", "pack: x\nversion: 1\nrules:\n  - id: a\n    patern: 'ab'\n", 5,
                 "unknown key 'patern'");
    expect_error("e3.yaml", "pack: x\nversion: 1\nrules:\n  - pattern: 'ab'\n", 4, "missing 'id'");
    expect_error("e4.yaml", "pack: x\nversion: 1\nrules:\n  - id: a\n    pattern: 'ab'\n    validator: lunh\n",
                 6, "unknown 'lunh'");
    expect_error("e5.yaml", "pack: x\nrules: [\n", 0, "YAML");
    expect_error("e6.yaml", "pack: x\nversion: 1\nrules:\n  - id: a\n    pattern: 'a*'\n", 5, "empty string");
    expect_error("e7.yaml",
                 "policy: p\nversion: 1\npacks: [t.yaml]\ntypes: {allow: ['text/*']}\nkey-file: nokey\n", 5,
                 "nokey");
    expect_error("e8.yaml",
                 "policy: p\nversion: 1\npacks: [t.yaml]\ntypes: {allow: ['text/*']}\nkey-file: key\n"
                 "actions:\n  rules:\n    nosuch: replace\n",
                 8, "no rule 'nosuch'");
    /* a key readable by others is refused */
    write_file("openkey", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0644);
    expect_error("e10.yaml",
                 "policy: p\nversion: 1\npacks: [t.yaml, missing.yaml]\ntypes: {allow: ['text/*']}\n", 3,
                 "packs: missing.yaml: No such file");
    expect_error("e9.yaml",
                 "policy: p\nversion: 1\npacks: [t.yaml]\ntypes: {allow: ['text/*']}\nkey-file: openkey\n",
                 5, "readable by group or others");
}

static void report_count(void *ctx, const char *rule, int ok, const char *what)
{
    (void)rule;
    (void)what;
    int *c = ctx;
    c[ok]++;
}

static void test_examples_runner(void **state)
{
    (void)state;
    dlp_policy *p = pack_from("ex.yaml",
                              "pack: x\nversion: 1\nrules:\n  - id: a\n    pattern: 'ab+'\n    action: replace\n"
                              "    must-match: ['x [[abb]] y [[ab]]', 'wrong [[a]]b span']\n"
                              "    must-not-match: ['nothing', 'has ab in it']\n");
    int counts[2] = {0, 0};
    assert_int_equal(dlp_test_examples(p, report_count, counts), 2);
    assert_int_equal(counts[1], 2); /* passed */
    assert_int_equal(counts[0], 2); /* failed: the shifted span, the must-not with a match */
    dlp_policy_free(p);
}

/* A rule's own prefilter: same answers when it is a superset, and `rules
 * test` catches one that is not. */
static void test_rule_prefilter(void **state)
{
    (void)state;
    write_file("pf.yaml",
               "pack: pf\nversion: 1\nrules:\n"
               "  - id: card\n"
               "    pattern: '(?<![0-9])(?:4[0-9]{3}|5[1-5][0-9]{2})(?:[ -]?[0-9]{4}){3}(?![0-9])'\n"
               "    prefilter: '[0-9](?:[ -]?[0-9]){12,18}'\n"
               "    validator: luhn\n"
               "    action: {type: mask, keep-last: 4}\n"
               "    must-match: ['pay [[4111 1111 1111 1111]] now', '[[5555-5555-5555-4444]]']\n"
               "    must-not-match: ['4111 1111 1111 1112']\n",
               0644);
    write_file("pfbad.yaml",
               "pack: pf\nversion: 1\nrules:\n"
               "  - id: card\n"
               "    pattern: '(?<![0-9])(?:4[0-9]{3}|5[1-5][0-9]{2})(?:[ -]?[0-9]{4}){3}(?![0-9])'\n"
               "    prefilter: '4[0-9]{15}'\n"
               "    action: {type: mask, keep-last: 4}\n"
               "    must-match: ['pay [[4111 1111 1111 1111]] now']\n",
               0644);
    char path[256];
    dlp_policy *p;
    dlp_error err;
    int counts[2] = {0, 0};
    snprintf(path, sizeof path, "%s/pf.yaml", dir);
    assert_int_equal(dlp_pack_load(path, &p, &err), 0);
    assert_int_equal(dlp_test_examples(p, report_count, counts), 0);
    char *v = san(p, "a 4111 1111 1111 1111 b 5555-5555-5555-4444 c 4111111111111111\n", NULL);
    assert_string_equal(v, "a **** **** **** 1111 b ****-****-****-4444 c ************1111\n");
    free(v);
    dlp_policy_free(p);
    /* the unspaced prefilter cannot see a spaced card: rules test says so */
    snprintf(path, sizeof path, "%s/pfbad.yaml", dir);
    assert_int_equal(dlp_pack_load(path, &p, &err), 0);
    assert_int_equal(dlp_test_examples(p, NULL, NULL), 1);
    dlp_policy_free(p);
}

/* The digit scan: rules with `digits` leave Vectorscan and are found from
 * runs of digits joined by their separators. Wide gaps ("(212) 555"), a
 * card inside a longer chain of numbers, a card next to a date, numbers at
 * the edges of the text; the same view at every cut point; and `rules test`
 * refusing a claim the examples break. */
static const char *DIGITS_PACK =
    "pack: dg\nversion: 1\nrules:\n"
    "  - id: card\n"
    "    pattern: '(?<![0-9]|[0-9]\\.)(?=4|5[1-5])(?:[0-9]{4}(?:[ -]?[0-9]{4}){2}[ -]?[0-9]{1,4}(?:[ -]?[0-9]{1,3})?|[0-9]{4}[ -]?[0-9]{6}[ -]?[0-9]{4,5})(?![0-9])'\n"
    "    digits: {min: 13, separators: ' -'}\n"
    "    validator: luhn\n"
    "    action: {type: mask, keep-last: 4, keep-separators: true}\n"
    "    must-match: ['pay [[4111 1111 1111 1111]] now', '[[5555-5555-5555-4444]]', '[[4222222222222]]']\n"
    "  - id: nanp\n"
    "    pattern: '(?<![A-Za-z0-9_+-])(?:\\+?1[ .-]?)?(?:\\([2-9][0-9]{2}\\) ?|[2-9][0-9]{2}[ .-])(?=[2-9])[0-9]{3}[ .-][0-9]{4}(?![A-Za-z0-9_-])'\n"
    "    digits: {min: 10, separators: ' .-()'}\n"
    "    action: {type: replace, label: '[PHONE]'}\n"
    "    must-match: ['[[(212) 555-0147]]', 'or [[+1 (212) 555-0147]]', '[[1-800-555-0199]]']\n"
    "  - id: ssn\n"
    "    pattern: '(?<![A-Za-z0-9_-])[0-9]{3}-[0-9]{2}-[0-9]{4}(?![A-Za-z0-9_-])'\n"
    "    digits: {min: 9, separators: '-'}\n"
    "    action: {type: replace, label: '[SSN]'}\n"
    "    must-match: ['ssn [[123-45-6789]]']\n"
    "  - id: ip\n"
    "    pattern: '(?<![0-9.])[0-9]{1,3}(?:\\.[0-9]{1,3}){3}(?![0-9]|\\.[0-9])'\n"
    "    digits: {min: 4, groups: 4, separators: '.'}\n"
    "    action: {type: replace, label: '[IP]'}\n"
    "    must-match: ['[[10.0.0.1]]:80', 'at [[1.2.3.4]].']\n"
    "  - id: ni\n"
    "    pattern: '(?<![A-Za-z0-9])[A-Z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D](?![A-Za-z0-9])'\n"
    "    digits: {min: 6, lead: 2, separators: ' '}\n"
    "    action: {type: replace, label: '[NI]'}\n"
    "    must-match: ['[[AB 12 34 56 C]]', 'x [[JG103759A]].']\n"
    "  - id: ib\n"
    "    pattern: '(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])'\n"
    "    digits: {min: 2, lead: 2, separators: ' '}\n"
    "    validator: iban\n"
    "    action: {type: replace, label: '[IBAN]'}\n"
    "    must-match: ['[[GB82 WEST 1234 5698 7654 32]]', 'to [[NL91ABNA0417164300]]']\n"
    "  - id: word\n"
    "    pattern: 'secretword'\n"
    "    action: {type: replace, label: '[W]'}\n";

/* Drop every `digits:` line: the rules are then prefiltered by their
 * patterns in Vectorscan, which is what the digit scan must agree with. */
static char *without_digits(const char *pack)
{
    char *o = malloc(strlen(pack) + 1), *q = o;
    for (const char *l = pack; *l;) {
        const char *e = strchr(l, '\n');
        size_t n = e ? (size_t)(e - l) + 1 : strlen(l);
        if (!strstr(l, "    digits:") || strstr(l, "    digits:") - l >= (ptrdiff_t)n) {
            memcpy(q, l, n);
            q += n;
        }
        l += n;
    }
    *q = '\0';
    return o;
}

/* Text made for the digit scan: runs of digits, separators, capital
 * letters and the shapes the rules take, at random (fixed seed), with long
 * chains that cross the scan's 64-byte words. */
static char *digit_noise(size_t len, unsigned seed)
{
    static const char alpha[] = "0123456789012345678901234567890123456789 .-() .-()GBAZQx\n:/,";
    static const char *shapes[] = {"4111 1111 1111 1111", "5555-5555-5555-4444", "123-45-6789",
                                   "(212) 555-0147", "+1 212.555.0147", "10.0.0.1", "AB 12 34 56 C",
                                   "JG103759A", "GB82 WEST 1234 5698 7654 32", "NL91ABNA0417164300",
                                   "4222222222222", "1.2.3.4.5", "  12  34 ", "secretword"};
    char *o = malloc(len + 64);
    size_t n = 0;
    while (n < len) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = seed >> 8;
        if (r % 11 == 0) {
            const char *sh = shapes[(r / 11) % (sizeof shapes / sizeof shapes[0])];
            size_t k = strlen(sh);
            memcpy(o + n, sh, k);
            n += k;
        } else if (r % 97 == 1) { /* a chain of up to 80 digits and separators */
            for (unsigned k = (r >> 8) % 80; k-- > 0 && n < len + 60;) {
                seed = seed * 1103515245u + 12345u;
                o[n++] = (seed >> 12) % 4 ? (char)('0' + (seed >> 16) % 10) : " .-"[(seed >> 16) % 3];
            }
        } else {
            o[n++] = alpha[(r >> 4) % (sizeof alpha - 1)];
        }
    }
    o[len] = '\0';
    return o;
}

/* The digit scan finds what Vectorscan would (the same views), in each of
 * its versions (SIMD or not), whole and streamed in small rounds, for a
 * lead rule with separators and one without. */
static void test_digits_oracle(void **state)
{
    (void)state;
    char path[256];
    dlp_error err;
    /* under valgrind (make memcheck) a shorter text: still every shape,
     * and chains across many 64-byte words */
    const char *mc = getenv("SLUICE_MEMCHECK");
    const size_t len = mc && *mc && strcmp(mc, "0") ? 40000 : 300000;
    char *text = digit_noise(len, 7);
    for (int variant = 0; variant < 2; variant++) {
        char pack[4096];
        snprintf(pack, sizeof pack, "%s", DIGITS_PACK);
        if (variant) {
            char *at = strstr(pack, "{min: 2, lead: 2, separators: ' '}");
            memmove(at + 17, at + 34, strlen(at + 34) + 1);
            memcpy(at, "{min: 2, lead: 2}", 17);
        }
        char *plain = without_digits(pack);
        write_file("dgo.yaml", plain, 0644);
        snprintf(path, sizeof path, "%s/dgo.yaml", dir);
        dlp_policy *ref;
        assert_int_equal(dlp_pack_load(path, &ref, &err), 0);
        char *want = san(ref, text, NULL);
        dlp_policy_free(ref);
        free(plain);
        assert_true(strlen(want) < len); /* things were masked */
        write_file("dgo.yaml", pack, 0644);
        static const char *const simd[] = {"portable", "sse2", NULL};
        for (size_t v = 0; v < 3; v++) {
            if (v < 2)
                setenv("SLUICE_DLP_SIMD", simd[v], 1);
            else
                unsetenv("SLUICE_DLP_SIMD");
            dlp_policy *p;
            assert_int_equal(dlp_pack_load(path, &p, &err), 0);
            unsetenv("SLUICE_DLP_SIMD");
            char *got = san(p, text, NULL);
            if (strcmp(got, want)) {
                size_t k = 0;
                while (got[k] == want[k])
                    k++;
                print_error("variant %d, %s: views differ at %zu: ...%.40s\n", variant,
                            v < 2 ? simd[v] : "default", k, got + (k > 20 ? k - 20 : 0));
                fail();
            }
            free(got);
            size_t cuts[3] = {len / 3, len / 3 + 1, 2 * len / 3 + 5};
            char *st = stream_cuts(p, text, len, cuts, 3, 4096 + v * 61);
            assert_string_equal(st, want);
            free(st);
            dlp_policy_free(p);
        }
        free(want);
    }
    free(text);
}

/* A whole buffer is scanned in rounds of 1 MiB first; a chain of
 * overlapping matches longer than that (every 19-digit window of a run of
 * ones is a match Luhn rejects, and each overlaps the next) leaves a round
 * no cut point: the round is widened, not refused. */
static void test_whole_round_widens(void **state)
{
    (void)state;
    write_file("lw.yaml",
               "pack: lw\nversion: 1\nrules:\n  - id: c19\n    pattern: '[0-9]{19}'\n"
               "    validator: luhn\n    action: {type: replace, label: '[C]'}\n",
               0644);
    char path[256];
    snprintf(path, sizeof path, "%s/lw.yaml", dir);
    dlp_policy *p;
    dlp_error err;
    assert_int_equal(dlp_pack_load(path, &p, &err), 0);
    const size_t len = (3u << 20) + 100;
    char *in = malloc(len + 1);
    memset(in, '1', len);
    in[len - 1] = '\n';
    in[len] = '\0';
    dlp_result r;
    int rc = dlp_sanitize(p, in, len, &r);
    if (rc)
        print_error("sanitize: %s\n", r.reason);
    assert_int_equal(rc, 0);
    assert_int_equal(r.len, len); /* nothing to mask: the same bytes */
    assert_memory_equal(r.data, in, len);
    dlp_result_free(&r);
    free(in);
    dlp_policy_free(p);
}

static void test_digits_prefilter(void **state)
{
    (void)state;
    write_file("dg.yaml", DIGITS_PACK, 0644);
    char path[256];
    dlp_policy *p;
    dlp_error err;
    snprintf(path, sizeof path, "%s/dg.yaml", dir);
    assert_int_equal(dlp_pack_load(path, &p, &err), 0);
    assert_int_equal(dlp_test_examples(p, NULL, NULL), 0);
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"4111111111111111", "************1111"},
        {"(212) 555-0147 and +1 (212) 555-0147.", "[PHONE] and [PHONE]."},
        {"1 (212)555-0147;1.212.555.0147", "[PHONE];[PHONE]"},
        {"2025-12-08 4111-1111-1111-1111 12/27", "2025-12-08 ****-****-****-1111 12/27"},
        {"1 2 3 4 5 6 7 8 9 10 11 4111 1111 1111 1111 12 13", "1 2 3 4 5 6 7 8 9 10 11 **** **** **** 1111 12 13"},
        {"INV-20201214-1546, 123-45-6789,2025-11-04T12:00:00", "INV-20201214-1546, [SSN],2025-11-04T12:00:00"},
        {"x secretword 078-05-1120", "x [W] [SSN]"},
        {"no digits here at all, only words and secretword", "no digits here at all, only words and [W]"},
        {"12 34 56 78 90 12 4", "12 34 56 78 90 12 4"},
        {"host 10.0.0.1:80 v1.2.3 and 1.2.3.4.5 or 9.40 s, 8.8.8.8", "host [IP]:80 v1.2.3 and 1.2.3.4.5 or 9.40 s, [IP]"},
        {"IBAN: GB82 WEST 1234 5698 7654 32 and NI AB 12 34 56 C, USD 12 34 56 A, XAB 12 34 56 C",
         "IBAN: [IBAN] and NI [NI], USD 12 34 56 A, XAB 12 34 56 C"},
        {"NL91ABNA0417164300/JG103759A", "[IBAN]/[NI]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_view(p, cases[i].in, cases[i].want);
    /* every cut point, rounds as small as they go */
    const char *in = "call (212) 555-0147, card 4111 1111 1111 1111 or 5555-5555-5555-4444; "
                     "ssn 123-45-6789; ref 2025-12-08 98765432109876543210 +1 800 555 0199 "
                     "NI AB 12 34 56 C IBAN GB82 WEST 1234 5698 7654 32 end";
    size_t len = strlen(in);
    char *whole = san(p, in, NULL);
    assert_string_equal(whole, "call [PHONE], card **** **** **** 1111 or ****-****-****-4444; "
                               "ssn [SSN]; ref 2025-12-08 98765432109876543210 [PHONE] "
                               "NI [NI] IBAN [IBAN] end");
    for (size_t k = 0; k <= len; k++) {
        char *v = stream_cuts(p, in, len, &k, 1, 1);
        if (strcmp(v, whole)) {
            print_error("output differs when cut at %zu: %s\n", k, v);
            fail();
        }
        free(v);
    }
    free(whole);
    dlp_policy_free(p);

    /* claims the examples break: too many digits, a missing separator */
    char bad[4096];
    snprintf(bad, sizeof bad, "%s", DIGITS_PACK);
    char *at = strstr(bad, "min: 13");
    memcpy(at, "min: 14", 7);
    write_file("dgbad.yaml", bad, 0644);
    snprintf(path, sizeof path, "%s/dgbad.yaml", dir);
    assert_int_equal(dlp_pack_load(path, &p, &err), 0);
    assert_int_equal(dlp_test_examples(p, NULL, NULL), 1); /* '[[4222222222222]]' has 13 */
    dlp_policy_free(p);
    snprintf(bad, sizeof bad, "%s", DIGITS_PACK);
    at = strstr(bad, "separators: ' .-()'");
    memcpy(at, "separators: ' .-(('", 19);
    write_file("dgbad.yaml", bad, 0644);
    assert_int_equal(dlp_pack_load(path, &p, &err), 0);
    assert_int_equal(dlp_test_examples(p, NULL, NULL), 2); /* ") " twice */
    dlp_policy_free(p);
    snprintf(bad, sizeof bad, "%s", DIGITS_PACK);
    at = strstr(bad, "{min: 4, groups: 4");
    memcpy(at, "{min: 5, groups: 5", 18);
    write_file("dgbad.yaml", bad, 0644);
    assert_int_equal(dlp_pack_load(path, &p, &err), 0);
    /* 10.0.0.1 has 5 digits but 4 groups; 1.2.3.4 fails both */
    assert_int_equal(dlp_test_examples(p, NULL, NULL), 2);
    dlp_policy_free(p);
    /* a lead whose separator the examples do not use */
    snprintf(bad, sizeof bad, "%s", DIGITS_PACK);
    at = strstr(bad, "{min: 6, lead: 2, separators: ' '}");
    memcpy(at, "{min: 6, lead: 2, separators: '-'}", 34);
    write_file("dgbad.yaml", bad, 0644);
    assert_int_equal(dlp_pack_load(path, &p, &err), 0);
    assert_int_equal(dlp_test_examples(p, NULL, NULL), 1); /* AB 12 34 56 C */
    dlp_policy_free(p);

    expect_error("dge1.yaml",
                 "pack: x\nversion: 1\nrules:\n  - id: a\n    pattern: '[0-9]{9}'\n"
                 "    digits: {min: 9}\n    context: {words: [ssn]}\n",
                 6, "digits cannot be combined with context");
    expect_error("dge2.yaml",
                 "pack: x\nversion: 1\nrules:\n  - id: a\n    pattern: '[0-9]{9}'\n    digits: {separators: '-'}\n",
                 6, "digits: needs min");
    expect_error("dge3.yaml",
                 "pack: x\nversion: 1\nrules:\n  - id: a\n    pattern: '[0-9]{9}'\n"
                 "    digits: {min: 9, separators: ' 1'}\n",
                 6, "'1' is not punctuation or white space");
    expect_error("dge4.yaml",
                 "pack: x\nversion: 1\nrules:\n  - id: a\n    pattern: '[0-9]{9}'\n"
                 "    digits: {min: 3, groups: 4}\n",
                 6, "more groups than digits");
}

/* Review: \K, a secret group in a lookaround, a literal brace loosen() once
 * took for a quantifier, an all-punctuation secret; each masked, whatever
 * the chunking. */
static void test_review_patterns(void **state)
{
    (void)state;
    write_file("rv.yaml",
               "pack: rv\nversion: 1\nrules:\n"
               "  - id: kk\n    pattern: 'key=\\K[a-z0-9]{20}'\n    max-length: 64\n    action: replace\n"
               "  - id: ahead\n    pattern: 'pin=(?=(?<secret>[0-9]{6}))'\n    action: replace\n"
               "  - id: behind\n    pattern: '(?<=(?<secret>[0-9]{6}))=code'\n    action: replace\n"
               "  - id: lit\n    pattern: 'ref\\{ 1,9\\}=(?<secret>[A-Z]{5})'\n    action: replace\n"
               "  - id: punct\n    pattern: 'pw:(?<secret>[#%!@]{8})'\n    action: {type: mask}\n",
               0644);
    write_file("prv.yaml",
               "policy: rv\nversion: 1\npacks: [rv.yaml]\ntypes: {allow: ['text/*']}\n", 0644);
    dlp_policy *p = load("prv.yaml");
    size_t cap = 64 << 10, n = 0;
    char *in = malloc(cap);
    for (int i = 0; n < cap - 200; i++)
        n += (size_t)sprintf(in + n, "%.*s key=abcdefghij0123456789 pin=%06d %06d=code ref{ 1,9}=ABCDE pw:#%%!@#%%!@\n",
                             i % 37, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 100000 + i, 200000 + i);
    char *whole = san(p, in, NULL);
    assert_null(strstr(whole, "abcdefghij0123456789"));
    assert_null(strstr(whole, "pin=1"));
    assert_null(strstr(whole, "2000"));
    assert_null(strstr(whole, "ABCDE"));
    assert_null(strstr(whole, "#%!@"));
    for (size_t k = 1; k < 3000; k += 7) {
        size_t cut = (k * 7919) % n;
        char *v = stream_cuts(p, in, n, &cut, 1, k);
        assert_string_equal(v, whole);
        free(v);
    }
    free(whole);
    free(in);
    dlp_policy_free(p);
    uint64_t v;
    assert_int_equal(parse_size("-1", &v), -EINVAL);
    assert_int_equal(parse_size(" 5", &v), -EINVAL);
    assert_int_equal(parse_size("64M", &v), 0);
    assert_int_equal(v, 64ull << 20);
}

/* The compiled-database cache: used when trustworthy, ignored otherwise,
 * and never a different answer. */
static void test_compile_cache(void **state)
{
    (void)state;
    char cdir[300], cmd[700];
    snprintf(cdir, sizeof cdir, "%s/cache", dir);
    setenv("SLUICE_CACHE_DIR", cdir, 1);
    const char *text = "mail a.b@example.com born 1984-03-12 card 4111 1111 1111 1111 ssn 123-45-6789\n";
    dlp_policy *p = load("p.yaml"); /* compiles and stores */
    char *first = san(p, text, NULL);
    dlp_policy_free(p);
    snprintf(cmd, sizeof cmd, "test $(ls %s/hs-*.db | wc -l) -ge 1", cdir);
    assert_int_equal(system(cmd), 0);
    p = load("p.yaml"); /* from the cache */
    char *second = san(p, text, NULL);
    dlp_policy_free(p);
    assert_string_equal(first, second);
    /* readable by others: ignored (and rewritten), same answer */
    snprintf(cmd, sizeof cmd, "chmod 644 %s/hs-*.db", cdir);
    assert_int_equal(system(cmd), 0);
    p = load("p.yaml");
    char *third = san(p, text, NULL);
    dlp_policy_free(p);
    assert_string_equal(first, third);
    /* garbage where the database was: compiled again, same answer */
    snprintf(cmd, sizeof cmd, "for f in %s/hs-*.db; do head -c 64 /dev/urandom > $f; chmod 600 $f; done", cdir);
    assert_int_equal(system(cmd), 0);
    p = load("p.yaml");
    char *fourth = san(p, text, NULL);
    dlp_policy_free(p);
    assert_string_equal(first, fourth);
    unsetenv("SLUICE_CACHE_DIR");
    free(first);
    free(second);
    free(third);
    free(fourth);
}

/* dlp_policy_files_list() names what dlp_policy_load() reads: the policy,
 * its packs resolved against the policy's directory (absolute ones as they
 * are), the key file likewise, and SLUICE_KEY_FILE in its place when set. */
static void test_policy_files_list(void **state)
{
    (void)state;
    write_file("pf-pack.yaml", PACK, 0644);
    write_file("pf-pack2.yaml", "pack: t2\nversion: 1\nrules:\n  - id: t2-word\n    pattern: 'zzqx'\n"
                                "    action: replace\n", 0644);
    write_file("pf-key", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", 0600);
    char abs_pack[300], text[1024], path[300], want[300];
    snprintf(abs_pack, sizeof abs_pack, "%s/pf-pack2.yaml", dir);
    snprintf(text, sizeof text,
             "policy: pf\nversion: 1\npacks: [pf-pack.yaml, '%s']\ntypes: {allow: ['text/*']}\n"
             "key-file: pf-key\n", abs_pack);
    write_file("pf.yaml", text, 0644);
    snprintf(path, sizeof path, "%s/pf.yaml", dir);
    const char *env = getenv("SLUICE_KEY_FILE");
    char *saved = env ? strdup(env) : NULL;
    unsetenv("SLUICE_KEY_FILE");
    dlp_policy_files f;
    dlp_error err = {0};
    assert_int_equal(dlp_policy_files_list(path, &f, &err), 0);
    assert_int_equal(f.nfiles, 3);
    assert_string_equal(f.files[0], path);
    snprintf(want, sizeof want, "%s/pf-pack.yaml", dir);
    assert_string_equal(f.files[1], want);
    assert_string_equal(f.files[2], abs_pack);
    snprintf(want, sizeof want, "%s/pf-key", dir);
    assert_non_null(f.key);
    assert_string_equal(f.key, want);
    dlp_policy_files_free(&f);
    /* the loader reads the same files: it loads */
    dlp_policy_free(load("pf.yaml"));
    setenv("SLUICE_KEY_FILE", "/elsewhere/k", 1);
    assert_int_equal(dlp_policy_files_list(path, &f, &err), 0);
    assert_string_equal(f.key, "/elsewhere/k");
    dlp_policy_files_free(&f);
    if (saved)
        setenv("SLUICE_KEY_FILE", saved, 1);
    else
        unsetenv("SLUICE_KEY_FILE");
    free(saved);
    /* not YAML: an error naming the file and the line */
    write_file("pf-bad.yaml", "policy: [unclosed\n", 0644);
    snprintf(path, sizeof path, "%s/pf-bad.yaml", dir);
    memset(&err, 0, sizeof err);
    assert_int_equal(dlp_policy_files_list(path, &f, &err), -EINVAL);
    assert_true(err.line > 0);
    assert_non_null(strstr(err.file, "pf-bad.yaml"));
    assert_null(f.files);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_luhn_and_mask),
        cmocka_unit_test(test_policy_files_list),
        cmocka_unit_test(test_iban),
        cmocka_unit_test(test_card_then_digits),
        cmocka_unit_test(test_bom_before_ascii_denied),
        cmocka_unit_test(test_ssn_rules),
        cmocka_unit_test(test_entropy_secret_group_remove),
        cmocka_unit_test(test_hash_is_keyed_and_stable),
        cmocka_unit_test(test_context_words),
        cmocka_unit_test(test_allow_list),
        cmocka_unit_test(test_many_findings_all_masked),
        cmocka_unit_test(test_overlap_union),
        cmocka_unit_test(test_chunking_every_offset),
        cmocka_unit_test(test_chunking_dense_context),
        cmocka_unit_test(test_chunking_bytewise_and_random),
        cmocka_unit_test(test_sink_errors),
        cmocka_unit_test(test_utf16),
        cmocka_unit_test(test_invalid_utf8_does_not_hide),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_types_text_magic),
        cmocka_unit_test(test_catastrophic_backtracking_denies),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_examples_runner),
        cmocka_unit_test(test_compile_cache),
        cmocka_unit_test(test_rule_prefilter),
        cmocka_unit_test(test_digits_prefilter),
        cmocka_unit_test(test_digits_oracle),
        cmocka_unit_test(test_whole_round_widens),
        cmocka_unit_test(test_review_patterns),
    };
    return cmocka_run_group_tests_name("dlp", tests, setup, teardown);
}
