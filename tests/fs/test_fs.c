/* tests/fs/test_fs.c — unit tests of fs/source.c and fs/view.c: what a
 * source read returns (and refuses), and that the view cache never hands out
 * a view of another version of a file. Each test works in its own scratch
 * directory, on real files.
 *
 * Must never: pass without looking at the bytes a view would serve. */
#include "common/common.h"
#include "dlp/dlp.h"
#include "fs/fs_i.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct fixture {
    char dir[64];
    char src[96];
    char outside[96];
    int rootfd;
    dlp_policy *pol;
} fixture;

static void put(const fixture *f, const char *rel, const char *text)
{
    char p[256], tmp[272];
    snprintf(p, sizeof p, "%s/%s", f->src, rel);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    FILE *fp = fopen(tmp, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(rename(tmp, p), 0);
}

static void put_in_place(const fixture *f, const char *rel, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", f->src, rel);
    int fd = open(p, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write_full(fd, text, strlen(text)), 0);
    close(fd);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/sluice-fs-unit.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->src, sizeof f->src, "%s/src", f->dir);
    snprintf(f->outside, sizeof f->outside, "%s/outside.txt", f->dir);
    mkdir(f->src, 0755);
    f->rootfd = open(f->src, O_PATH | O_DIRECTORY | O_CLOEXEC);
    const char *root = getenv("SLUICE_ROOT");
    char pol[512];
    snprintf(pol, sizeof pol, "%s/tests/fs/policy.yaml", root ? root : ".");
    dlp_error e;
    if (f->rootfd < 0 || dlp_policy_load(pol, &f->pol, &e) != 0) {
        char m[1200];
        dlp_error_format(&e, m, sizeof m);
        print_message("cannot load %s: %s\n", pol, m);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        print_message("could not remove %s\n", f->dir);
    close(f->rootfd);
    dlp_policy_free(f->pol);
    free(f);
    return 0;
}

static void test_source_read_and_refusals(void **state)
{
    fixture *f = *state;
    put(f, "a.txt", "hello\n");
    FILE *o = fopen(f->outside, "w");
    fputs("outside\n", o);
    fclose(o);
    char p[256];
    snprintf(p, sizeof p, "%s/up", f->src);
    assert_int_equal(symlink("../outside.txt", p), 0);
    snprintf(p, sizeof p, "%s/abs", f->src);
    assert_int_equal(symlink(f->outside, p), 0);
    snprintf(p, sizeof p, "%s/in", f->src);
    assert_int_equal(symlink("a.txt", p), 0);
    snprintf(p, sizeof p, "%s/fifo", f->src);
    assert_int_equal(mkfifo(p, 0644), 0);

    fs_source s;
    assert_int_equal(fs_source_read(f->rootfd, "a.txt", 1000, &s), 0);
    assert_int_equal(s.len, 6);
    assert_memory_equal(s.data, "hello\n", 6);
    fs_source_free(&s);
    assert_int_equal(fs_source_read(f->rootfd, "in", 1000, &s), 0); /* link inside */
    assert_memory_equal(s.data, "hello\n", 6);
    fs_source_free(&s);
    assert_int_equal(fs_source_read(f->rootfd, "up", 1000, &s), -EXDEV);
    assert_int_equal(fs_source_read(f->rootfd, "abs", 1000, &s), -EXDEV);
    assert_int_equal(fs_source_read(f->rootfd, "../outside.txt", 1000, &s), -EXDEV);
    assert_int_equal(fs_source_read(f->rootfd, "fifo", 1000, &s), -EPERM); /* and no hang */
    assert_int_equal(fs_source_read(f->rootfd, "a.txt", 5, &s), -EFBIG);
    assert_int_equal(fs_source_read(f->rootfd, "nope", 1000, &s), -ENOENT);
    assert_int_equal(fs_source_read(f->rootfd, ".", 1000, &s), -EISDIR);
}

static void test_source_read_keeps_atime(void **state)
{
    fixture *f = *state;
    put(f, "a.txt", "hello\n");
    char p[256];
    snprintf(p, sizeof p, "%s/a.txt", f->src);
    const struct timespec old[2] = {{.tv_sec = 1000000000}, {.tv_nsec = UTIME_OMIT}};
    assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
    fs_source s;
    assert_int_equal(fs_source_read(f->rootfd, "a.txt", 1000, &s), 0);
    fs_source_free(&s);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_atim.tv_sec, 1000000000);
}

static void view_text(fs_view *v, char *out, size_t outlen)
{
    assert_int_equal(v->status, 0);
    assert_true(v->len < outlen);
    memcpy(out, v->data, v->len);
    out[v->len] = '\0';
}

static void test_view_cache_hit_and_change(void **state)
{
    fixture *f = *state;
    fs_cache *c;
    assert_int_equal(fs_cache_new(1 << 20, &c), 0);
    put(f, "a.txt", "SSN 123-45-6789\n");
    fs_view *v1, *v2, *v3;
    char t[256];
    assert_int_equal(fs_view_get(c, f->pol, f->rootfd, "a.txt", 1 << 20, &v1), 0);
    view_text(v1, t, sizeof t);
    assert_string_equal(t, "SSN [REDACTED:us-ssn]\n");
    assert_int_equal(v1->nhits, 1);
    assert_string_equal(v1->hits[0].rule_id, "us-ssn");
    /* unchanged: the same view (racy or not, the content check keeps it) */
    assert_int_equal(fs_view_get(c, f->pol, f->rootfd, "a.txt", 1 << 20, &v2), 0);
    assert_ptr_equal(v1, v2);
    fs_view_unref(c, v2);
    /* same size, rewritten in place at once: never the old view */
    put_in_place(f, "a.txt", "SSN 234-56-7890\n");
    put_in_place(f, "a.txt", "tok 0123456789A\n");
    assert_int_equal(fs_view_get(c, f->pol, f->rootfd, "a.txt", 1 << 20, &v3), 0);
    view_text(v3, t, sizeof t);
    assert_string_equal(t, "tok 0123456789A\n");
    assert_string_not_equal(v3->source_sha256, v1->source_sha256);
    /* the old view stays intact for whoever holds it */
    view_text(v1, t, sizeof t);
    assert_string_equal(t, "SSN [REDACTED:us-ssn]\n");
    fs_view_unref(c, v1);
    fs_view_unref(c, v3);
    fs_cache_free(c);
}

static void test_view_refusal_and_eviction(void **state)
{
    fixture *f = *state;
    fs_cache *c;
    assert_int_equal(fs_cache_new(100, &c), 0); /* room for about two small views */
    char elf[] = "\x7f" "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0\x01\0\0\0";
    char p[256];
    snprintf(p, sizeof p, "%s/prog.txt", f->src);
    FILE *fp = fopen(p, "w");
    fwrite(elf, 1, sizeof elf, fp);
    for (int i = 0; i < 200; i++)
        fputc(0, fp);
    fclose(fp);
    fs_view *v;
    assert_int_equal(fs_view_get(c, f->pol, f->rootfd, "prog.txt", 1 << 20, &v), 0);
    assert_int_equal(v->status, -EACCES);
    assert_null(v->data);
    assert_int_equal(v->len, 0);
    assert_true(strstr(v->reason, "denied") != NULL);
    fs_view_unref(c, v);

    for (int i = 0; i < 10; i++) {
        char name[32], text[64];
        snprintf(name, sizeof name, "f%d.txt", i);
        snprintf(text, sizeof text, "file number %d with some words\n", i);
        put(f, name, text);
        assert_int_equal(fs_view_get(c, f->pol, f->rootfd, name, 1 << 20, &v), 0);
        char t[128];
        view_text(v, t, sizeof t);
        assert_string_equal(t, text);
        fs_view_unref(c, v);
    }
    fs_cache_stats st;
    fs_cache_get_stats(c, &st);
    assert_true(st.bytes <= 100);
    assert_true(st.evictions >= 7);
    /* an evicted view is rebuilt identical */
    assert_int_equal(fs_view_get(c, f->pol, f->rootfd, "f0.txt", 1 << 20, &v), 0);
    char t[128];
    view_text(v, t, sizeof t);
    assert_string_equal(t, "file number 0 with some words\n");
    fs_view_unref(c, v);
    fs_cache_free(c);
}

/* Write `len` bytes of `buf` to rel. */
static void put_bytes(const fixture *f, const char *rel, const void *buf, size_t len)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", f->src, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write_full(fd, buf, len), 0);
    close(fd);
}

/* ~3 MiB of text with secrets everywhere, one of them across the 1 MiB
 * boundary where a streamed build cuts its first piece. */
static char *big_text(size_t *len)
{
    const size_t n = 3u << 20;
    char *t = malloc(n + 64);
    size_t k = 0;
    for (int i = 0; k < n; i++)
        k += (size_t)sprintf(t + k, i % 7 ? "line %d of the report, nothing here\n"
                                          : "line %d SSN 123-45-6789 tok_0123456789ABCDEF\n", i);
    const size_t at = (1u << 20) - 5;
    memcpy(t + at, " 234-56-7890 ", 13);
    *len = k;
    return t;
}

/* A large file's view (built in pieces) is byte for byte what one
 * dlp_sanitize() call over the whole file gives, with the same hits, and
 * SHA-256s of exactly the source and the served bytes. */
static void test_view_large_equals_whole(void **state)
{
    fixture *f = *state;
    size_t len;
    char *t = big_text(&len);
    put_bytes(f, "big.txt", t, len);
    dlp_result res;
    assert_int_equal(dlp_sanitize(f->pol, t, len, &res), 0);
    fs_cache *c;
    assert_int_equal(fs_cache_new(64 << 20, &c), 0);
    fs_view *v;
    assert_int_equal(fs_view_get(c, f->pol, f->rootfd, "big.txt", 64 << 20, &v), 0);
    assert_int_equal(v->status, 0);
    assert_int_equal(v->len, res.len);
    assert_memory_equal(v->data, res.data, res.len);
    assert_true(strstr((char *)res.data, "234-56-7890") == NULL);
    assert_int_equal(v->nhits, res.nhits);
    for (size_t i = 0; i < res.nhits; i++) {
        assert_string_equal(v->hits[i].rule_id, res.hits[i].rule_id);
        assert_int_equal(v->hits[i].count, res.hits[i].count);
    }
    uint8_t md[SHA256_LEN];
    char hex[SHA256_HEX_LEN];
    sha256_buf(t, len, md);
    hex_encode(md, SHA256_LEN, hex);
    assert_string_equal(v->source_sha256, hex);
    sha256_buf(res.data, res.len, md);
    hex_encode(md, SHA256_LEN, hex);
    assert_string_equal(v->served_sha256, hex);
    fs_view_unref(c, v);
    dlp_result_free(&res);

    /* a NUL byte past the first MiB of 8-bit text: refused, as dlp_sanitize does */
    t[(2u << 20) + 3] = '\0';
    put_bytes(f, "nul.txt", t, len);
    assert_int_equal(dlp_sanitize(f->pol, t, len, &res), -EILSEQ);
    dlp_result_free(&res);
    assert_int_equal(fs_view_get(c, f->pol, f->rootfd, "nul.txt", 64 << 20, &v), 0);
    assert_int_equal(v->status, -EIO);
    assert_null(v->data);
    assert_true(strstr(v->reason, "NUL bytes") != NULL);
    assert_true(v->source_sha256[0] != '\0');
    fs_view_unref(c, v);

    /* a large executable: denied by type */
    memcpy(t, "\x7f" "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0\x01\0\0\0", 24);
    put_bytes(f, "prog.txt", t, len);
    assert_int_equal(fs_view_get(c, f->pol, f->rootfd, "prog.txt", 64 << 20, &v), 0);
    assert_int_equal(v->status, -EACCES);
    assert_true(strstr(v->reason, "type denied") != NULL);
    fs_view_unref(c, v);
    /* over the size limit given: refused before reading */
    assert_int_equal(fs_view_get(c, f->pol, f->rootfd, "big.txt", 1 << 20, &v), -EFBIG);
    free(t);
    fs_cache_free(c);
}

/* A large UTF-16 file needs the whole input: it still gets dlp_sanitize's view. */
static void test_view_large_utf16(void **state)
{
    fixture *f = *state;
    const char *line = "SSN 123-45-6789 and more words on the line\n";
    const size_t ll = strlen(line), n = (1u << 20) / ll + 100;
    size_t len = 2 + 2 * ll * n;
    uint8_t *u = malloc(len);
    u[0] = 0xFF;
    u[1] = 0xFE;
    for (size_t i = 0, k = 2; i < n; i++)
        for (size_t j = 0; j < ll; j++, k += 2) {
            u[k] = (uint8_t)line[j];
            u[k + 1] = 0;
        }
    put_bytes(f, "u16.txt", u, len);
    dlp_result res;
    assert_int_equal(dlp_sanitize(f->pol, u, len, &res), 0);
    fs_cache *c;
    assert_int_equal(fs_cache_new(64 << 20, &c), 0);
    fs_view *v;
    assert_int_equal(fs_view_get(c, f->pol, f->rootfd, "u16.txt", 64 << 20, &v), 0);
    assert_int_equal(v->status, 0);
    assert_int_equal(v->len, res.len);
    assert_memory_equal(v->data, res.data, res.len);
    assert_memory_not_equal(v->data, u, len < v->len ? len : v->len);
    fs_view_unref(c, v);
    dlp_result_free(&res);
    free(u);
    fs_cache_free(c);
}

typedef struct getter {
    fixture *f;
    fs_cache *c;
    fs_view *v;
    int r;
} getter;

static void *get_big(void *arg)
{
    getter *g = arg;
    g->r = fs_view_get(g->c, g->f->pol, g->f->rootfd, "big.txt", 64 << 20, &g->v);
    return NULL;
}

/* Eight opens of the same new version at once build it once; the others
 * wait and get that view. Build memory stays within its budget. */
static void test_view_single_build(void **state)
{
    fixture *f = *state;
    size_t len;
    char *t = big_text(&len);
    put_bytes(f, "big.txt", t, len);
    free(t);
    fs_cache *c;
    assert_int_equal(fs_cache_new(64 << 20, &c), 0);
    fs_cache_set_build_limits(c, 1 << 20, 4); /* less than one build: they run alone */
    getter g[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        g[i] = (getter){.f = f, .c = c};
        assert_int_equal(pthread_create(&th[i], NULL, get_big, &g[i]), 0);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(g[i].r, 0);
        assert_ptr_equal(g[i].v, g[0].v);
        fs_view_unref(c, g[i].v);
    }
    fs_cache_stats st;
    fs_cache_get_stats(c, &st);
    assert_int_equal(st.builds, 1);
    assert_int_equal(st.build_peak, fs_build_cost(len));
    fs_cache_free(c);
}

/* A view an open file still holds after it left the cache keeps counting
 * against the cache's size until released: memory for views stays within
 * the cap. */
static void test_view_held_counts(void **state)
{
    fixture *f = *state;
    fs_cache *c;
    assert_int_equal(fs_cache_new(100, &c), 0);
    put(f, "held.txt", "a view someone keeps open for a while\n"); /* 38 bytes */
    fs_view *held, *v;
    assert_int_equal(fs_view_get(c, f->pol, f->rootfd, "held.txt", 1 << 20, &held), 0);
    for (int i = 0; i < 6; i++) {
        char name[32], text[64];
        snprintf(name, sizeof name, "o%d.txt", i);
        snprintf(text, sizeof text, "other file %d, thirty bytes\n", i);
        put(f, name, text);
        assert_int_equal(fs_view_get(c, f->pol, f->rootfd, name, 1 << 20, &v), 0);
        fs_view_unref(c, v);
        fs_cache_stats st;
        fs_cache_get_stats(c, &st);
        assert_true(st.bytes + st.held_bytes <= 100);
    }
    fs_cache_stats st;
    fs_cache_get_stats(c, &st);
    assert_int_equal(st.held_bytes, held->len); /* evicted, still held, still counted */
    char t[128];
    view_text(held, t, sizeof t);
    assert_string_equal(t, "a view someone keeps open for a while\n");
    fs_view_unref(c, held);
    fs_cache_get_stats(c, &st);
    assert_int_equal(st.held_bytes, 0);
    fs_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_source_read_and_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_source_read_keeps_atime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_cache_hit_and_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_refusal_and_eviction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_large_equals_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_large_utf16, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_single_build, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_held_counts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
