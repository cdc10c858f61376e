/* diode/sandbox.c — seccomp filters (libseccomp) that make each side of the
 * diode one-way even if its code is subverted.
 *
 * Installed after setup (channel open, vault open, keys read). The receiver
 * is killed if it ever tries to send or connect anything, or to write on its
 * channel; the sender is killed if it tries to receive anything or read from
 * its channel. Everything else stays allowed: these filters are about
 * direction, not a general sandbox. */
#include "diode/diode.h"

#include <errno.h>
#include <seccomp.h>

static int deny_all(scmp_filter_ctx ctx, const int *calls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, calls[i], 0);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int deny_on_fd(scmp_filter_ctx ctx, const int *calls, size_t n, int fd)
{
    for (size_t i = 0; i < n; i++) {
        int rc = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, calls[i], 1,
                                  SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)fd));
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int install(const int *all, size_t nall, const int *onfd, size_t nonfd, int fd)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return -ENOMEM;
    int rc = deny_all(ctx, all, nall);
    if (rc == 0 && fd >= 0)
        rc = deny_on_fd(ctx, onfd, nonfd, fd);
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    return rc;
}

int diode_sandbox_receiver(int chan_fd)
{
    static const int all[] = {SCMP_SYS(sendto), SCMP_SYS(sendmsg), SCMP_SYS(sendmmsg),
                              SCMP_SYS(connect), SCMP_SYS(listen), SCMP_SYS(accept),
                              SCMP_SYS(accept4)};
    static const int onfd[] = {SCMP_SYS(write), SCMP_SYS(writev), SCMP_SYS(pwrite64),
                               SCMP_SYS(pwritev), SCMP_SYS(pwritev2), SCMP_SYS(sendfile)};
    return install(all, SLUICE_ARRAY_LEN(all), onfd, SLUICE_ARRAY_LEN(onfd), chan_fd);
}

int diode_sandbox_sender(int chan_fd)
{
    static const int all[] = {SCMP_SYS(recvfrom), SCMP_SYS(recvmsg), SCMP_SYS(recvmmsg),
                              SCMP_SYS(listen), SCMP_SYS(accept), SCMP_SYS(accept4)};
    static const int onfd[] = {SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(pread64),
                               SCMP_SYS(preadv), SCMP_SYS(preadv2)};
    return install(all, SLUICE_ARRAY_LEN(all), onfd, SLUICE_ARRAY_LEN(onfd), chan_fd);
}
