/* tests/ledger/fuzz_ledger.c — libFuzzer target for what the ledger parses
 * from files an attacker with access to the ledger's directory (or a
 * careless auditor) could shape: archived segment files (zstd + SQLite image)
 * and checkpoint lines.
 *
 * Input: first byte selects the parser, the rest is its input.
 *   0: a checkpoint line. If it parses and its HMAC holds, formatting it
 *      again must give a line that parses to the same checkpoint.
 *   1: a segment file, listed (with its true SHA-256) in a real ledger:
 *      verify must return 0 or a negative error, never crash or leak.
 * Must never: write outside its own scratch directory. */
#include "common/common.h"
#include "ledger/ledger.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[192], db[256], key[256], seg[320];
static uint8_t keybytes[KEY_MAX_LEN];
static size_t keylen;

static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_ledger: could not remove %s\n", dir);
}

static void setup_once(void)
{
    if (dir[0])
        return;
    /* under $TMPDIR when set: a crash skips atexit, and the smoke test in
     * make check points TMPDIR at its scratch directory */
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/sluice-fuzz-ledger.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(dir))
        abort();
    atexit(cleanup);
    snprintf(db, sizeof db, "%s/l.db", dir);
    snprintf(key, sizeof key, "%s/k", dir);
    char why[256];
    ledger *l;
    /* A fixed key, so that the seed checkpoint's HMAC holds. */
    FILE *kf = fopen(key, "w");
    if (!kf || fputs("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", kf) < 0 ||
        fclose(kf) != 0 || chmod(key, 0600) != 0)
        abort();
    if (key_load(key, keybytes, &keylen, why, sizeof why) < 0 ||
        ledger_open(db, key, &l, why, sizeof why) < 0)
        abort();
    static const ledger_hit hits[] = {{"us-ssn", 1}};
    for (int i = 0; i < 4; i++) {
        ledger_record r = {.event = LEDGER_OPEN_SERVED, .pid = 1, .path = "a.txt",
                           .hits = hits, .nhits = 1, .decision = "served"};
        if (ledger_append(l, &r, NULL) < 0)
            abort();
    }
    ledger_close(l);
    uint64_t moved;
    if (ledger_archive(db, key, 4, &moved, why, sizeof why) < 0 || moved != 3)
        abort();
    snprintf(seg, sizeof seg, "%s/l.db.seg-000000000001-000000000003.zst", dir);
    log_init("fuzz_ledger", LOG_LVL_ERROR);
}

static void fuzz_checkpoint(const uint8_t *data, size_t size)
{
    char *line = malloc(size + 1);
    memcpy(line, data, size);
    line[size] = '\0';
    ledger_checkpoint cp, again;
    if (ledger_checkpoint_parse(line, keybytes, keylen, &cp) == 0) {
        char out[LEDGER_CHECKPOINT_MAX];
        ledger_checkpoint_format(&cp, out, sizeof out);
        if (ledger_checkpoint_parse(out, keybytes, keylen, &again) != 0 || again.seq != cp.seq ||
            memcmp(again.hash, cp.hash, sizeof cp.hash) != 0)
            abort();
    }
    free(line);
}

static void fuzz_segment(const uint8_t *data, size_t size)
{
    FILE *f = fopen(seg, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    uint8_t h[SHA256_LEN];
    char hex[SHA256_HEX_LEN], sql[256];
    sha256_buf(data, size, h);
    hex_encode(h, SHA256_LEN, hex);
    snprintf(sql, sizeof sql, "UPDATE segments SET sha256 = '%s'", hex);
    sqlite3 *h2;
    if (sqlite3_open(db, &h2) != SQLITE_OK || sqlite3_exec(h2, sql, NULL, NULL, NULL) != SQLITE_OK)
        abort();
    sqlite3_close(h2);
    ledger_verify_report rep;
    int rc = ledger_verify(db, key, NULL, 0, &rep);
    if (rc > 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup_once();
    if (size < 1)
        return 0;
    if (data[0] == 0)
        fuzz_checkpoint(data + 1, size - 1);
    else if (data[0] == 1)
        fuzz_segment(data + 1, size - 1);
    return 0;
}
