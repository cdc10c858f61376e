/* tests/dlp/mmap_shim.c — LD_PRELOAD shim for t_scan_file.sh: makes a
 * read-only file mapping fail (SHIM_MMAP_FAIL=1) or cuts the mapped file
 * short right after it is mapped (SHIM_TRUNCATE=PATH: truncated to 4 KiB)
 * or rewrites its start then (SHIM_REWRITE=PATH: an armoured PGP message,
 * a type the policy denies), so that `sluice scan`'s look at a file meets
 * what a concurrent writer or an unmappable file would do to it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    static void *(*real)(void *, size_t, int, int, int, off_t);
    if (!real)
        real = (void *(*)(void *, size_t, int, int, int, off_t))dlsym(RTLD_NEXT, "mmap");
    const int file_ro = fd >= 0 && prot == PROT_READ;
    if (file_ro && getenv("SHIM_MMAP_FAIL")) {
        errno = ENODEV;
        return MAP_FAILED;
    }
    void *m = real(addr, len, prot, flags, fd, off);
    const char *cut = getenv("SHIM_TRUNCATE");
    if (file_ro && cut && m != MAP_FAILED && len > 8192)
        truncate(cut, 4096);
    const char *re = getenv("SHIM_REWRITE");
    if (file_ro && re && m != MAP_FAILED && len > 8192) {
        static const char pgp[] = "-----BEGIN PGP MESSAGE-----\n\nhQEMA5pZ3x8AAAAAAQf/\n";
        const int wfd = open(re, O_WRONLY);
        if (wfd >= 0) {
            if (pwrite(wfd, pgp, strlen(pgp), 0) < 0)
                _exit(99);
            close(wfd);
        }
    }
    return m;
}
