/* tests/extract/extract_bench.c — the measuring half of
 * tests/bench/bench_extract.sh (not a test: tests/run does not run it).
 *
 *   extract_bench extract THREADS LIST   read, classify (libmagic) and
 *       extract_text() every file named in LIST, THREADS at a time
 *   extract_bench raw THREADS LIST       read every file (the baseline)
 *
 * Prints `files=N failed=N seconds=S files_per_second=X cpu_ms_per_file=C
 * text_bytes=N`; C counts the extraction server and its children too.
 * Measures, asserts nothing about time.
 */
#include "common/common.h"
#include "extract/extract.h"

#include <magic.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static char **files;
static size_t nfiles;
static atomic_size_t next, failed, text_bytes;
static int do_extract;

static void *worker(void *arg)
{
    (void)arg;
    magic_t m = NULL;
    if (do_extract) {
        m = magic_open(MAGIC_MIME_TYPE);
        if (!m || magic_load(m, NULL) != 0)
            return (void *)1;
    }
    size_t i;
    while ((i = atomic_fetch_add(&next, 1)) < nfiles) {
        uint8_t *data;
        size_t len;
        if (file_read_all(files[i], 1u << 30, &data, &len)) {
            atomic_fetch_add(&failed, 1);
            continue;
        }
        if (do_extract) {
            const char *mime = magic_buffer(m, data, len);
            extract_result r;
            if (!mime || extract_text(data, len, mime, NULL, &r) != 0) {
                fprintf(stderr, "%s: %s\n", files[i], r.reason);
                atomic_fetch_add(&failed, 1);
            } else
                atomic_fetch_add(&text_bytes, r.len);
            extract_result_free(&r);
        } else
            atomic_fetch_add(&text_bytes, len);
        free(data);
    }
    if (m)
        magic_close(m);
    return NULL;
}

/* CPU seconds of this process, its reaped children and the extraction
 * server with the children it reaped: the cost of extraction whatever else
 * runs on the machine (wall-clock figures swing with the load). */
static double tree_cpu(void)
{
    const double hz = (double)sysconf(_SC_CLK_TCK);
    double total = 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", getpid(), getpid());
    FILE *f = fopen(path, "r");
    int pid;
    while (f && fscanf(f, "%d", &pid) == 1) {
        char buf[1024];
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        FILE *st = fopen(path, "r");
        if (!st)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, st);
        fclose(st);
        buf[n] = '\0';
        const char *p = strrchr(buf, ')');
        unsigned long long ut, stt, cut, cst;
        /* fields after the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime */
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu", &ut, &stt, &cut,
                        &cst) == 4)
            total += (double)(ut + stt + cut + cst) / hz;
    }
    if (f)
        fclose(f);
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    total += (double)(self.ru_utime.tv_sec + self.ru_stime.tv_sec + kids.ru_utime.tv_sec + kids.ru_stime.tv_sec) +
             (double)(self.ru_utime.tv_usec + self.ru_stime.tv_usec + kids.ru_utime.tv_usec + kids.ru_stime.tv_usec) / 1e6;
    return total;
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "extract") && strcmp(argv[1], "raw"))) {
        fprintf(stderr, "usage: extract_bench extract|raw THREADS LIST\n");
        return 2;
    }
    do_extract = strcmp(argv[1], "extract") == 0;
    const int threads = atoi(argv[2]);
    FILE *f = fopen(argv[3], "r");
    if (!f || threads < 1 || threads > 64)
        return 2;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!*line)
            continue;
        files = realloc(files, (nfiles + 1) * sizeof *files);
        files[nfiles++] = strdup(line);
    }
    fclose(f);
    struct timespec t0, t1;
    const double cpu0 = tree_cpu();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t t[64];
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* the server's children are reaped by the time every reply is read */
    const double cpu = tree_cpu() - cpu0;
    printf("files=%zu failed=%zu seconds=%.3f files_per_second=%.1f cpu_ms_per_file=%.2f text_bytes=%zu\n",
           nfiles, (size_t)failed, s, (double)nfiles / s, cpu * 1000 / (double)nfiles, (size_t)text_bytes);
    return failed ? 1 : 0;
}
