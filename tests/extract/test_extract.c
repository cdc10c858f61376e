/* tests/extract/test_extract.c — unit tests of extract/: the public API
 * through the real sluice-extract helper ($SLUICE_BUILD/sluice-extract),
 * the isolation (fake helpers that hang, crash, flood or lie), concurrency,
 * and the in-process parsers on inputs built here (zip containers written
 * with libarchive, RTF and e-mail as text).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pthread.h>
#include <signal.h>
#include <seccomp.h>
#include <sys/wait.h>

#include <archive.h>
#include <archive_entry.h>
#include <cmocka.h>

#include "extract/extract.h"
#include "extract/extract_i.h"

static char helper[4096];
static char tmpdir[] = "/tmp/sluice-extract-test.XXXXXX";

static int setup_all(void **state)
{
    (void)state;
    const char *b = getenv("SLUICE_BUILD");
    snprintf(helper, sizeof helper, "%s/sluice-extract", b ? b : "build");
    if (access(helper, X_OK) != 0) {
        fprintf(stderr, "no helper at %s\n", helper);
        return -1;
    }
    setenv("SLUICE_EXTRACT", helper, 1);
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_all(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- building zips in memory ------------------------------------------------ */
typedef struct zbuf {
    char *p;
    size_t len, cap;
} zbuf;

static la_ssize_t zwrite(struct archive *a, void *ctx, const void *buf, size_t n)
{
    (void)a;
    zbuf *z = ctx;
    if (z->len + n > z->cap) {
        z->cap = (z->len + n) * 2;
        z->p = realloc(z->p, z->cap);
        assert_non_null(z->p);
    }
    memcpy(z->p + z->len, buf, n);
    z->len += n;
    return (la_ssize_t)n;
}

/* members: name, data, name, data, ..., NULL. A member whose data is NULL
 * gets `big` zero bytes (the bomb). */
static zbuf make_zip(size_t big, ...)
{
    zbuf z = { 0 };
    struct archive *a = archive_write_new();
    archive_write_set_format_zip(a);
    archive_write_set_options(a, "zip:compression=deflate");
    archive_write_set_bytes_in_last_block(a, 1);
    assert_int_equal(archive_write_open(a, &z, NULL, zwrite, NULL), ARCHIVE_OK);
    va_list ap;
    va_start(ap, big);
    const char *name;
    while ((name = va_arg(ap, const char *))) {
        const char *data = va_arg(ap, const char *);
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, data ? (la_int64_t)strlen(data) : (la_int64_t)big);
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (data)
            archive_write_data(a, data, strlen(data));
        else {
            static char zeros[1 << 16];
            for (size_t done = 0; done < big; done += sizeof zeros)
                archive_write_data(a, zeros, big - done < sizeof zeros ? big - done : sizeof zeros);
        }
        archive_entry_free(e);
    }
    va_end(ap);
    archive_write_close(a);
    archive_write_free(a);
    return z;
}

#define W_NS "xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\""
static const char content_types[] =
    "<?xml version=\"1.0\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"/>";
static const char docx_body[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><w:document " W_NS "><w:body>"
    "<w:p><w:r><w:t>Hello Jane Roe 078-05-1120</w:t></w:r></w:p>"
    "<w:p><w:del w:author=\"Bob\"><w:r><w:delText>gone 536-22-1234</w:delText></w:r></w:del></w:p>"
    "</w:body></w:document>";
static const char docx_core[] =
    "<?xml version=\"1.0\"?><cp:coreProperties xmlns:cp=\"http://schemas.openxmlformats.org/package/2006/"
    "metadata/core-properties\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">"
    "<dc:creator>Alice Author</dc:creator></cp:coreProperties>";

static int run(const void *buf, size_t len, const char *mime, const extract_options *o, extract_result *r)
{
    return extract_text(buf, len, mime, o, r);
}

/* ---- tests ------------------------------------------------------------------------ */
static void test_handles(void **state)
{
    (void)state;
    assert_true(extract_handles("application/pdf", NULL, 0));
    assert_true(extract_handles("text/html; charset=utf-8", NULL, 0));
    assert_true(extract_handles("text/rtf", NULL, 0));
    assert_true(extract_handles("message/rfc822", NULL, 0));
    assert_true(extract_handles("application/vnd.openxmlformats-officedocument.wordprocessingml.document", NULL, 0));
    assert_true(extract_handles("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", NULL, 0));
    assert_true(extract_handles("application/vnd.openxmlformats-officedocument.presentationml.presentation", NULL, 0));
    assert_true(extract_handles("application/vnd.oasis.opendocument.text", NULL, 0));
    assert_true(extract_handles("application/vnd.oasis.opendocument.spreadsheet", NULL, 0));
    assert_false(extract_handles("text/plain", NULL, 0));
    assert_false(extract_handles("application/pdfx", NULL, 0));
    assert_false(extract_handles("application/x-executable", NULL, 0));
    assert_false(extract_handles(NULL, NULL, 0));
    /* a zip counts only when it looks like OOXML or OpenDocument */
    zbuf docx = make_zip(0, "[Content_Types].xml", content_types, "word/document.xml", docx_body, NULL);
    zbuf plain = make_zip(0, "notes.txt", "just a zip", NULL);
    assert_true(extract_handles("application/zip", docx.p, docx.len));
    assert_true(extract_handles("application/octet-stream", docx.p, docx.len));
    assert_false(extract_handles("application/zip", plain.p, plain.len));
    assert_false(extract_handles("application/zip", NULL, 0));
    free(docx.p);
    free(plain.p);
}

static void test_docx_metadata(void **state)
{
    (void)state;
    zbuf z = make_zip(0, "[Content_Types].xml", content_types, "word/document.xml", docx_body,
                      "docProps/core.xml", docx_core, NULL);
    extract_result r;
    extract_options o = { 0 };
    assert_int_equal(run(z.p, z.len, "application/zip", &o, &r), 0);
    assert_string_equal(r.extractor, "docx/libxml2");
    assert_non_null(strstr(r.text, "Hello Jane Roe 078-05-1120"));
    assert_non_null(strstr(r.text, "gone 536-22-1234"));
    assert_non_null(strstr(r.text, "deleted by Bob"));
    assert_non_null(strstr(r.text, "Alice Author"));
    assert_int_equal(strlen(r.text), r.len);
    extract_result_free(&r);

    o.drop_metadata = 1;
    assert_int_equal(run(z.p, z.len, "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                         &o, &r), 0);
    assert_non_null(strstr(r.text, "Hello Jane Roe 078-05-1120"));
    assert_null(strstr(r.text, "536-22-1234"));
    assert_null(strstr(r.text, "Bob"));
    assert_null(strstr(r.text, "Alice Author"));
    extract_result_free(&r);
    free(z.p);
}

static void test_zip_bomb(void **state)
{
    (void)state;
    /* 64 MiB of zeros as the document part: a few tens of KiB compressed */
    zbuf z = make_zip(64u << 20, "[Content_Types].xml", content_types, "word/document.xml", NULL, NULL);
    assert_true(z.len < (1u << 20));
    extract_result r;
    extract_options o = { .max_expanded = 8u << 20 };
    assert_int_equal(run(z.p, z.len, "application/zip", &o, &r), -EFBIG);
    assert_non_null(strstr(r.reason, "expands past limit"));
    assert_null(r.text);
    extract_result_free(&r);
    free(z.p);
}

static void test_truncated_zip_prefixes(void **state)
{
    (void)state;
    zbuf z = make_zip(0, "[Content_Types].xml", content_types, "word/document.xml", docx_body,
                      "docProps/core.xml", docx_core, NULL);
    extract_result r;
    /* every strict prefix is refused: half a document is not a document */
    for (size_t n = 0; n < z.len; n += 1 + z.len / 23) {
        int rc = run(z.p, n, "application/zip", NULL, &r);
        if (rc == 0)
            fail_msg("prefix of %zu/%zu bytes was extracted", n, z.len);
        assert_true(r.reason[0] != '\0');
        extract_result_free(&r);
    }
    assert_int_equal(run(z.p, z.len, "application/zip", NULL, &r), 0);
    extract_result_free(&r);
    free(z.p);
}

static void test_not_a_document_zip(void **state)
{
    (void)state;
    zbuf z = make_zip(0, "notes.txt", "just a zip", NULL);
    extract_result r;
    assert_int_equal(run(z.p, z.len, "application/zip", NULL, &r), -EINVAL);
    assert_non_null(strstr(r.reason, "not an Office Open XML or OpenDocument"));
    extract_result_free(&r);
    free(z.p);
}

static void test_html(void **state)
{
    (void)state;
    static const char html[] =
        "<html><head><title>T</title><script>var s='SECRET-IN-SCRIPT'</script>"
        "<style>p{}</style><meta name=author content='Meta Mia'></head><body>"
        "<!-- hidden HC-1 --><p>Para &amp; one</p><table><tr><td>a</td><td>b</td></tr></table></body></html>";
    extract_result r;
    extract_options o = { 0 };
    assert_int_equal(run(html, sizeof html - 1, "text/html", &o, &r), 0);
    assert_string_equal(r.extractor, "html/libxml2");
    assert_non_null(strstr(r.text, "Para & one"));
    assert_non_null(strstr(r.text, "a\tb"));
    assert_non_null(strstr(r.text, "Meta Mia"));
    assert_non_null(strstr(r.text, "HC-1"));
    assert_null(strstr(r.text, "SECRET-IN-SCRIPT"));
    extract_result_free(&r);
    o.drop_metadata = 1;
    assert_int_equal(run(html, sizeof html - 1, "text/html", &o, &r), 0);
    assert_null(strstr(r.text, "Meta Mia"));
    assert_null(strstr(r.text, "HC-1"));
    extract_result_free(&r);
}

static void test_rtf(void **state)
{
    (void)state;
    static const char rtf[] =
        "{\\rtf1\\ansi\\ansicpg1252{\\fonttbl{\\f0 Arial;}}{\\info{\\author Rita}}"
        "Caf\\'e9 \\u8364? \\uc2\\u-10179\\'3f\\'3f\\u-8704\\'3f\\'3f end\\par "
        "{\\*\\unknowndest HIDDEN-DEST}{\\pict\\bin4 }}}}tail}"
        "\\'80\\tab x}";
    extract_result r;
    assert_int_equal(run(rtf, sizeof rtf - 1, "text/rtf", NULL, &r), 0);
    assert_string_equal(r.extractor, "rtf");
    /* CP1252 é, € from \u, a surrogate pair (U+1F600) with its fallback skipped */
    assert_non_null(strstr(r.text, "Café € \xf0\x9f\x98\x80 end"));
    assert_non_null(strstr(r.text, "Rita"));
    assert_null(strstr(r.text, "HIDDEN-DEST"));
    assert_null(strstr(r.text, "tail")); /* \bin skipped its 4 bytes, braces included */
    assert_non_null(strstr(r.text, "\xe2\x82\xac\tx"));
    extract_result_free(&r);
    assert_int_equal(run("{\\rtf1 {", 8, "text/rtf", NULL, &r), -EINVAL);
    assert_non_null(strstr(r.reason, "truncated RTF"));
    extract_result_free(&r);
    assert_int_equal(run("hello", 5, "text/rtf", NULL, &r), -EINVAL);
    extract_result_free(&r);
}

static void test_eml(void **state)
{
    (void)state;
    static const char eml[] =
        "From: Sam Sender <sam@example.com>\r\n"
        "To: =?UTF-8?B?SsO8cmdlbg==?= <jurgen@example.com>\r\n"
        "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= SUBJ-9\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
        "--b1\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        "Gr=FC=DFe, SSN 078-05-1120\r\n"
        "--b1\r\nContent-Type: text/html; charset=utf-8\r\n"
        "Content-Disposition: inline\r\n\r\n"
        "<p>html part <script>NO-SCRIPT</script>H-7</p>\r\n"
        "--b1--\r\n";
    extract_result r;
    extract_options o = { 0 };
    assert_int_equal(run(eml, sizeof eml - 1, "message/rfc822", &o, &r), 0);
    assert_string_equal(r.extractor, "eml/gmime");
    assert_non_null(strstr(r.text, "Subject: Grüße SUBJ-9"));
    assert_non_null(strstr(r.text, "Jürgen <jurgen@example.com>"));
    assert_non_null(strstr(r.text, "sam@example.com"));
    assert_non_null(strstr(r.text, "Grüße, SSN 078-05-1120"));
    assert_non_null(strstr(r.text, "H-7"));
    assert_null(strstr(r.text, "NO-SCRIPT"));
    extract_result_free(&r);
    o.drop_metadata = 1;
    assert_int_equal(run(eml, sizeof eml - 1, "message/rfc822", &o, &r), 0);
    assert_non_null(strstr(r.text, "SUBJ-9"));
    assert_null(strstr(r.text, "sam@example.com"));
    assert_null(strstr(r.text, "jurgen@example.com"));
    extract_result_free(&r);
}

static void test_unknown_type(void **state)
{
    (void)state;
    extract_result r;
    assert_int_equal(run("abc", 3, "image/png", NULL, &r), -EINVAL);
    assert_non_null(strstr(r.reason, "not a document type"));
    extract_result_free(&r);
    assert_int_equal(run("abc", 3, "bad\nmime", NULL, &r), -EINVAL);
    extract_result_free(&r);
}

/* ---- isolation: fake helpers ----------------------------------------------------- */
static void with_fake_helper(const char *script, int expect, const char *reason, const extract_options *o)
{
    char path[512];
    snprintf(path, sizeof path, "%s/fake-helper", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s\n", script);
    fclose(f);
    chmod(path, 0755);
    setenv("SLUICE_EXTRACT", path, 1);
    setenv("SLUICE_EXTRACT_SPAWN", "1", 1); /* a fake helper per call, not a fake server */
    extract_result r;
    int rc = extract_text("<p>x</p>", 8, "text/html", o, &r);
    setenv("SLUICE_EXTRACT", helper, 1);
    unsetenv("SLUICE_EXTRACT_SPAWN");
    if (rc != expect)
        fail_msg("fake helper `%s`: rc %d (%s), expected %d", script, rc, r.reason, expect);
    assert_null(r.text);
    if (!strstr(r.reason, reason))
        fail_msg("fake helper `%s`: reason '%s' lacks '%s'", script, r.reason, reason);
    extract_result_free(&r);
}

static void test_isolation(void **state)
{
    (void)state;
    extract_options quick = { .timeout_ms = 300 };
    with_fake_helper("exec sleep 30", -ETIMEDOUT, "timeout", &quick);
    /* closes its output, then hangs: still killed at the deadline */
    with_fake_helper("exec >&-; exec sleep 30", -ETIMEDOUT, "timeout", &quick);
    with_fake_helper("kill -SEGV $$", -ECHILD, "crashed", NULL);
    with_fake_helper("kill -ABRT $$", -ENOMEM, "aborted", NULL);
    with_fake_helper("echo garbage", -ECHILD, "no result", NULL);
    with_fake_helper("printf 'SLX1 0 html 10\\n\\nlooks fine'; exit 3", -ECHILD, "exited with an error", NULL);
    with_fake_helper("printf 'SLX1 7 html 0\\nbad rc\\n'", -ECHILD, "malformed", NULL);
    with_fake_helper("printf 'SLX1 0 html 99\\n\\nshort'", -ECHILD, "incomplete", NULL);
    with_fake_helper("printf 'SLX1 -13 html 0\\nencrypted thing\\n'", -EACCES, "encrypted thing", NULL);
    extract_options small = { .max_output = 1 << 20 };
    with_fake_helper("head -c 50000000 /dev/zero", -EFBIG, "output limit", &small);
    with_fake_helper("exit 0", -ECHILD, "no result", NULL);

    setenv("SLUICE_EXTRACT", "/nonexistent/sluice-extract", 1);
    setenv("SLUICE_EXTRACT_SPAWN", "1", 1); /* a server already running would serve it */
    extract_result r;
    int rc = extract_text("<p>x</p>", 8, "text/html", NULL, &r);
    setenv("SLUICE_EXTRACT", helper, 1);
    unsetenv("SLUICE_EXTRACT_SPAWN");
    assert_true(rc == -ENOENT || rc == -ENOEXEC);
    extract_result_free(&r);
}

/* make sanitize: the helper is given sanitizer options that make a
 * sanitizer error end it with exit code 86 (its own reports cannot reach
 * tests/run); the caller then fails closed and writes a line into its own
 * sanitizer report, which tests/run counts as a failure. Elsewhere exit 86
 * is an error like any other. The fake helper exits 86 only when it was
 * given those options. */
#if defined(__SANITIZE_ADDRESS__)
void __sanitizer_set_report_path(const char *path);
#endif
static void test_helper_sanitizer_exit(void **state)
{
    (void)state;
    static const char script[] =
        "case \"$ASAN_OPTIONS/$UBSAN_OPTIONS\" in *exitcode=86*/*exitcode=86*) exit 86;; esac; exit 1";
#if defined(__SANITIZE_ADDRESS__)
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s/sanitizer-report", tmpdir);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        __sanitizer_set_report_path(prefix); /* this child's report: read below, not by tests/run */
        char path[512];
        snprintf(path, sizeof path, "%s/fake-helper-san", tmpdir);
        FILE *fp = fopen(path, "w");
        if (!fp)
            _exit(4);
        fprintf(fp, "#!/bin/sh\n%s\n", script);
        fclose(fp);
        chmod(path, 0755);
        setenv("SLUICE_EXTRACT", path, 1);
        setenv("SLUICE_EXTRACT_SPAWN", "1", 1);
        extract_result r;
        int rc = extract_text("<p>x</p>", 8, "text/html", NULL, &r);
        const int ok = rc == -ECHILD && r.text == NULL && strstr(r.reason, "sanitizer error");
        extract_result_free(&r);
        _exit(ok ? 0 : 5);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    char file[700], text[4096] = "";
    snprintf(file, sizeof file, "%s.%d", prefix, (int)pid);
    FILE *f = fopen(file, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    unlink(file);
    assert_non_null(strstr(text, "sluice-extract helper: a sanitizer error"));
#else
    with_fake_helper(script, -ECHILD, "exited with an error", NULL);
#endif
}

/* ---- the extraction server ------------------------------------------------------------ */
/* Our children whose command line says --server (the library's server). */
static pid_t find_server(void)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", getpid(), getpid());
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    pid_t found = -1;
    int pid;
    while (fscanf(f, "%d", &pid) == 1) {
        snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
        FILE *c = fopen(path, "r");
        if (!c)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, c);
        fclose(c);
        for (size_t i = 0; i < n; i++)
            if (buf[i] == '\0')
                buf[i] = ' ';
        buf[n] = '\0';
        if (strstr(buf, "--server"))
            found = pid;
    }
    fclose(f);
    return found;
}

static void test_server_restart(void **state)
{
    (void)state;
    extract_result r;
    assert_int_equal(extract_text("<p>one S-1</p>", 14, "text/html", NULL, &r), 0);
    assert_non_null(strstr(r.text, "S-1"));
    extract_result_free(&r);
    pid_t s = find_server();
    assert_true(s > 0);
    /* one server serves many documents */
    assert_int_equal(extract_text("<p>two S-2</p>", 14, "text/html", NULL, &r), 0);
    extract_result_free(&r);
    assert_int_equal(find_server(), s);
    /* killed between documents: the next one still extracts, by a new server */
    assert_int_equal(kill(s, SIGKILL), 0);
    usleep(100000);
    assert_int_equal(extract_text("<p>three S-3</p>", 16, "text/html", NULL, &r), 0);
    assert_non_null(strstr(r.text, "S-3"));
    extract_result_free(&r);
    pid_t s2 = find_server();
    assert_true(s2 > 0 && s2 != s);
}

static void test_server_timeout(void **state)
{
    (void)state;
    /* ~24 MB of nested markup takes libxml2 far longer than 20 ms anywhere */
    const size_t reps = 300000;
    static const char row[] = "<div><p><span>row of text</span></p></div>\n";
    char *html = malloc(reps * (sizeof row - 1) + 1);
    assert_non_null(html);
    for (size_t i = 0; i < reps; i++)
        memcpy(html + i * (sizeof row - 1), row, sizeof row - 1);
    const size_t len = reps * (sizeof row - 1);
    extract_result r;
    extract_options o = { .timeout_ms = 20 };
    assert_int_equal(extract_text(html, len, "text/html", &o, &r), -ETIMEDOUT);
    assert_non_null(strstr(r.reason, "timeout"));
    extract_result_free(&r);
    /* the server is still there and well */
    pid_t s = find_server();
    assert_int_equal(extract_text("<p>after S-4</p>", 16, "text/html", NULL, &r), 0);
    extract_result_free(&r);
    assert_int_equal(find_server(), s);
    /* and with time enough the same page extracts */
    o.timeout_ms = 0;
    assert_int_equal(extract_text(html, len, "text/html", &o, &r), 0);
    assert_non_null(strstr(r.text, "row of text"));
    extract_result_free(&r);
    free(html);
}

/* A caller that confined itself before its first document, like the diode
 * sender (seccomp: recvmsg and friends kill the process), passes its filter
 * to the server it spawns; extraction must still work (spawned helpers). */
static void test_confined_caller(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
        const int calls[] = { SCMP_SYS(recvfrom), SCMP_SYS(recvmsg), SCMP_SYS(recvmmsg),
                              SCMP_SYS(listen), SCMP_SYS(accept), SCMP_SYS(accept4) };
        for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++)
            seccomp_rule_add(f, SCMP_ACT_KILL_PROCESS, calls[i], 0);
        const int loaded = seccomp_load(f);
        seccomp_release(f); /* the kernel keeps the loaded filter */
        if (loaded)
            _exit(3);
        int good = 0;
        for (int i = 0; i < 5; i++) {
            extract_result r;
            if (extract_text("<p>confined C-5</p>", 19, "text/html", NULL, &r) == 0 && strstr(r.text, "C-5"))
                good++;
            extract_result_free(&r);
        }
        _exit(good == 5 ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* Without a pidfd (pidfd_open refused: EMFILE, a kernel before 5.3,
 * valgrind) a helper that closes its output and then hangs is still killed
 * at the deadline, and a helper that answers is still heard. In a child
 * whose seccomp filter makes pidfd_open fail with ENOSYS. */
static void test_exit_watch_without_pidfd(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
        int bad = f == NULL || seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(pidfd_open), 0) ||
                  seccomp_load(f);
        seccomp_release(f);
        if (bad)
            _exit(3);
        char path[512];
        snprintf(path, sizeof path, "%s/fake-helper-nopidfd", tmpdir);
        FILE *fp = fopen(path, "w");
        if (!fp)
            _exit(4);
        fputs("#!/bin/sh\nexec >&-; exec sleep 30\n", fp);
        fclose(fp);
        chmod(path, 0755);
        setenv("SLUICE_EXTRACT", path, 1);
        setenv("SLUICE_EXTRACT_SPAWN", "1", 1);
        extract_options quick = { .timeout_ms = 300 };
        extract_result r;
        int rc = extract_text("<p>x</p>", 8, "text/html", &quick, &r);
        const int hung_killed = rc == -ETIMEDOUT && r.text == NULL && strstr(r.reason, "timeout");
        extract_result_free(&r);
        setenv("SLUICE_EXTRACT", helper, 1); /* the real helper, still spawned */
        rc = extract_text("<p>no pidfd N-3</p>", 19, "text/html", NULL, &r);
        const int answered = rc == 0 && r.text && strstr(r.text, "N-3");
        extract_result_free(&r);
        _exit(hung_killed ? (answered ? 0 : 6) : 5);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* ---- many threads at once (sluicefs is multithreaded) ------------------------------ */
static void *worker(void *arg)
{
    const int id = (int)(intptr_t)arg;
    char html[128];
    int n = snprintf(html, sizeof html, "<html><body><p>thread %d value T-%d</p></body></html>", id, id * 7);
    long ok = 0;
    for (int i = 0; i < 5; i++) {
        extract_result r;
        char want[32];
        snprintf(want, sizeof want, "T-%d", id * 7);
        if (extract_text(html, (size_t)n, "text/html", NULL, &r) == 0 && strstr(r.text, want))
            ok++;
        extract_result_free(&r);
    }
    return (void *)ok;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i), 0);
    long total = 0;
    for (int i = 0; i < 8; i++) {
        void *ok;
        pthread_join(t[i], &ok);
        total += (long)ok;
    }
    assert_int_equal(total, 40);
}

/* ---- in-process pieces ----------------------------------------------------------------- */
static void test_clean_utf8(void **state)
{
    (void)state;
    extract_options o;
    extract_options_default(&o);
    xctx x = { .opt = &o };
    static const char in[] = "ok \xc3\xa9 bad \xff\xfe \xed\xa0\x80 nul\x01 cr\r\nlf\rend \xf0\x9f\x98";
    assert_int_equal(xput(&x, in, sizeof in - 1), 0);
    extract_clean_utf8(&x);
    assert_string_equal(x.text, "ok \xc3\xa9 bad ?? ??? nul  cr\nlf\nend ???");
    free(x.text);
}

static void test_output_limit_inprocess(void **state)
{
    (void)state;
    extract_options o;
    extract_options_default(&o);
    o.max_output = 10;
    xctx x = { .opt = &o };
    assert_int_equal(xput(&x, "0123456789", 10), 0);
    assert_int_equal(xput(&x, "a", 1), -EFBIG);
    assert_non_null(strstr(x.reason, "output limit"));
    free(x.text);
}

static int count_text(void *ctx, const xml_event *ev)
{
    if (ev->type == XML_EV_TEXT)
        (*(int *)ctx)++;
    return 0;
}

static void test_xml_walk(void **state)
{
    (void)state;
    extract_options o;
    extract_options_default(&o);
    xctx x = { .opt = &o };
    int n = 0;
    static const char ok[] = "<a><b>one</b><c>two</c></a>";
    assert_int_equal(xml_walk(&x, "ok.xml", ok, sizeof ok - 1, count_text, &n), 0);
    assert_int_equal(n, 2);
    static const char dtd[] = "<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>";
    assert_int_equal(xml_walk(&x, "dtd.xml", dtd, sizeof dtd - 1, count_text, &n), -EINVAL);
    assert_non_null(strstr(x.reason, "DTD"));
    /* the same in UTF-16: the byte check misses it, the reader does not */
    xctx y = { .opt = &o };
    char u16[256];
    size_t k = 0;
    u16[k++] = (char)0xFF, u16[k++] = (char)0xFE;
    for (const char *p = "<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>"; *p; p++)
        u16[k++] = *p, u16[k++] = 0;
    assert_int_not_equal(xml_walk(&y, "u16.xml", u16, k, count_text, &n), 0);
    xctx z = { .opt = &o };
    char deep[4000];
    size_t d = 0;
    for (int i = 0; i < 300; i++)
        d += (size_t)snprintf(deep + d, sizeof deep - d, "<a>");
    assert_int_equal(xml_walk(&z, "deep.xml", deep, d, count_text, &n), -EINVAL);
    xctx m = { .opt = &o };
    assert_int_equal(xml_walk(&m, "bad.xml", "<a><b></a>", 10, count_text, &n), -EINVAL);
    assert_non_null(strstr(m.reason, "malformed XML"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handles),
        cmocka_unit_test(test_docx_metadata),
        cmocka_unit_test(test_zip_bomb),
        cmocka_unit_test(test_truncated_zip_prefixes),
        cmocka_unit_test(test_not_a_document_zip),
        cmocka_unit_test(test_html),
        cmocka_unit_test(test_rtf),
        cmocka_unit_test(test_eml),
        cmocka_unit_test(test_unknown_type),
        cmocka_unit_test(test_isolation),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_server_restart),
        cmocka_unit_test(test_server_timeout),
        cmocka_unit_test(test_confined_caller),
        cmocka_unit_test(test_exit_watch_without_pidfd),
        cmocka_unit_test(test_helper_sanitizer_exit),
        cmocka_unit_test(test_clean_utf8),
        cmocka_unit_test(test_output_limit_inprocess),
        cmocka_unit_test(test_xml_walk),
    };
    return cmocka_run_group_tests_name("extract", tests, setup_all, teardown_all);
}
