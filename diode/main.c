/* diode/main.c — the sluice-diode command: `send` on the corporate side,
 * `recv` on the sandbox side. Dispatch only; each side lives in its own
 * file and never calls into the other. */
#include "diode/diode.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: sluice-diode send [options] SOURCE_DIR --to CHANNEL --key FILE\n"
                 "       sluice-diode recv --from CHANNEL --vault DIR --key FILE [options]\n"
                 "       sluice-diode --help | --version\n"
                 "CHANNEL: fd:N | fifo:PATH | udp:HOST:PORT. See sluice-diode(8).\n");
}

int main(int argc, char **argv)
{
    log_init("sluice-diode", LOG_LVL_WARN);
    if (argc < 2) {
        usage(stderr);
        return DIODE_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return DIODE_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("sluice-diode %s (wire format %d)\n", SLUICE_VERSION, DIODE_WIRE_VERSION);
        return DIODE_EXIT_OK;
    }
    if (strcmp(argv[1], "send") == 0)
        return diode_send_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "recv") == 0)
        return diode_recv_main(argc - 1, argv + 1);
    sluice_err("%s: unknown command (send or recv; see --help)", argv[1]);
    usage(stderr);
    return DIODE_EXIT_USAGE;
}
