/* cli/cmd_rules.c — `sluice rules lint|test FILE...`: check rule packs and
 * policies, and run every rule's embedded examples. Errors are
 * file:line:col: message (PCRE2's own message for a bad regex), exit 2. */
#include "cli/cli.h"
#include "common/common.h"
#include "dlp/dlp.h"

#include <stdio.h>
#include <string.h>

static int load_any(const char *path, dlp_policy **p)
{
    dlp_error err;
    int rc = dlp_pack_load(path, p, &err);
    if (rc && strstr(err.msg, "a policy has 'policy:'"))
        rc = dlp_policy_load(path, p, &err);
    if (rc) {
        /* Positioned errors read like a compiler's (file:line:col: message),
         * the rest like every other error of sluice's. */
        char msg[1200];
        dlp_error_format(&err, msg, sizeof msg);
        if (err.line > 0)
            fprintf(stderr, "%s\n", msg);
        else
            sluice_err("%s", msg);
    }
    return rc;
}

typedef struct test_ctx {
    const char *cur;
    int cur_ok, cur_n;
    int rules_passed, rules_failed;
} test_ctx;

static void flush_rule(test_ctx *t)
{
    if (!t->cur)
        return;
    printf("%s %s (%d examples)\n", t->cur_ok ? "PASS" : "FAIL", t->cur, t->cur_n);
    if (t->cur_ok)
        t->rules_passed++;
    else
        t->rules_failed++;
    t->cur = NULL;
}

static void on_example(void *ctx, const char *rule_id, int ok, const char *what)
{
    test_ctx *t = ctx;
    if (!t->cur || strcmp(t->cur, rule_id)) {
        flush_rule(t);
        t->cur = rule_id;
        t->cur_ok = 1;
        t->cur_n = 0;
    }
    t->cur_n++;
    if (!ok) {
        t->cur_ok = 0;
        printf("  %s: %s\n", rule_id, what);
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sluice rules lint FILE...   check rule packs or policies\n"
               "       sluice rules test FILE...   run every rule's must-match/must-not-match examples\n"
               "exit: 0 ok, 1 examples failed, 2 a file is invalid\n");
}

int cmd_rules(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return EXIT_CLEAN;
    }
    if (argc < 3 || (strcmp(argv[1], "lint") && strcmp(argv[1], "test"))) {
        usage(stderr);
        return EXIT_ERROR;
    }
    int testing = !strcmp(argv[1], "test");
    int worst = EXIT_CLEAN;
    for (int i = 2; i < argc; i++) {
        dlp_policy *p;
        if (load_any(argv[i], &p)) {
            worst = EXIT_ERROR;
            continue;
        }
        if (!testing) {
            printf("%s: ok (%zu rules, policy %.12s)\n", argv[i], dlp_policy_rule_count(p),
                   dlp_policy_hash(p));
            for (size_t r = 0; r < dlp_policy_rule_count(p); r++)
                if (dlp_policy_rule_unbounded(p, r))
                    printf("%s: warning: rule %s: its pattern has no bounded length and no "
                           "max-length: matches longer than 4096 bytes are not found whole\n",
                           argv[i], dlp_policy_rule_id(p, r));
            for (size_t r = 0; r < dlp_policy_rule_count(p); r++)
                if (!dlp_policy_rule_prefiltered(p, r))
                    printf("%s: warning: rule %s: Vectorscan cannot prefilter its pattern; it is "
                           "checked by PCRE2 over the whole input (slower)\n",
                           argv[i], dlp_policy_rule_id(p, r));
        } else {
            test_ctx t = {0};
            int failed = dlp_test_examples(p, on_example, &t);
            flush_rule(&t);
            printf("%s: %d passed, %d failed\n", argv[i], t.rules_passed, t.rules_failed);
            if (failed && worst < EXIT_FINDINGS)
                worst = EXIT_FINDINGS;
        }
        dlp_policy_free(p);
    }
    return worst;
}

int cmd_keygen(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        FILE *f = argc == 2 && !strcmp(argv[1], "--help") ? stdout : stderr;
        fprintf(f, "usage: sluice keygen FILE   create a new random key file (mode 0600)\n");
        return f == stdout ? EXIT_CLEAN : EXIT_ERROR;
    }
    int rc = key_generate(argv[1]);
    if (rc) {
        sluice_err("%s: %s", argv[1], strerror(-rc));
        return EXIT_ERROR;
    }
    return EXIT_CLEAN;
}
