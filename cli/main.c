/* cli/main.c — `sluice`: the operator's command (scan, rules, ledger, keygen).
 * Dispatch only; every subcommand lives in its own file. */
#include "cli/cli.h"
#include "common/common.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} commands[] = {
    {"scan", cmd_scan, "print the sanitized view of files"},
    {"rules", cmd_rules, "lint or test rule packs and policies"},
    {"ledger", cmd_ledger, "query, verify and checkpoint the access ledger"},
    {"keygen", cmd_keygen, "create a key file for hashing or ledger sealing"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: sluice COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < SLUICE_ARRAY_LEN(commands); i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'sluice COMMAND --help' for a command's options. See sluice(1).\n");
}

int cli_bad_option(const char *cmd, char **argv)
{
    sluice_bad_option(cmd, argv);
    return EXIT_ERROR;
}

/* $SLUICE_POLICY, else the policy installed beside this binary
 * (<bin>/../share/sluice/rules, so an install works wherever its prefix is),
 * else the one of the source tree this binary was built in (<build>/../rules),
 * else the build-time prefix. */
const char *cli_default_policy(void)
{
    static char found[4096];
    const char *env = getenv("SLUICE_POLICY");
    if (env && *env)
        return env;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            static const char *const rel[] = {"/../share/sluice/rules/default-policy.yaml",
                                              "/../rules/default-policy.yaml"};
            for (size_t i = 0; i < SLUICE_ARRAY_LEN(rel); i++) {
                int m = snprintf(found, sizeof found, "%s%s", exe, rel[i]);
                if (m > 0 && (size_t)m < sizeof found && access(found, R_OK) == 0)
                    return found;
            }
        }
    }
#ifdef SLUICE_RULES_DIR
    return SLUICE_RULES_DIR "/default-policy.yaml";
#else
    return "rules/default-policy.yaml";
#endif
}

int main(int argc, char **argv)
{
    log_init("sluice", LOG_LVL_WARN);
    opterr = 0; /* cli_bad_option() reports in the project's own format */
    if (argc < 2) {
        usage(stderr);
        return EXIT_ERROR;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return EXIT_CLEAN;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("sluice %s\n", SLUICE_VERSION);
        return EXIT_CLEAN;
    }
    for (size_t i = 0; i < SLUICE_ARRAY_LEN(commands); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    sluice_err("%s: unknown command (try 'sluice --help')", argv[1]);
    return EXIT_ERROR;
}
