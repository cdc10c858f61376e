/* cli/cli.h — the `sluice` command's subcommands. Each lives in its own
 * cmd_*.c and uses only public module headers. */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H

/* Exit codes shared by every subcommand (documented in sluice(1)). */
enum { EXIT_CLEAN = 0, EXIT_FINDINGS = 1, EXIT_ERROR = 2 };

int cmd_scan(int argc, char **argv);
int cmd_rules(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_ledger(int argc, char **argv);

/* After getopt_long() returned '?' or ':': report the offending argument as
 * `sluice: <cmd>: <arg>: unknown option or missing value` and return
 * EXIT_ERROR. (main() turns getopt's own messages off.) */
int cli_bad_option(const char *cmd, char **argv);

/* The default policy: $SLUICE_POLICY, else the installed or in-tree one. */
const char *cli_default_policy(void);

#endif
