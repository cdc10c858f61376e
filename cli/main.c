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
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    sluice_err("%s: %s: unknown option or missing value (try 'sluice %s --help')", cmd, arg, cmd);
    return EXIT_ERROR;
}

const char *cli_default_policy(void)
{
    const char *env = getenv("SLUICE_POLICY");
    if (env && *env)
        return env;
#ifdef SLUICE_RULES_DIR
    if (access(SLUICE_RULES_DIR "/default-policy.yaml", R_OK) == 0)
        return SLUICE_RULES_DIR "/default-policy.yaml";
#endif
    return "rules/default-policy.yaml";
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
