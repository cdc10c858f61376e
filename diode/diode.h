/* diode/diode.h — sluice-diode's whole public surface: the wire format
 * (packets, records, manifest), the erasure code, the one-way channels, the
 * receiver's parsing core and the vault into which verified files are
 * published.
 *
 * Data crosses one way only. Nothing in here ever sends anything back from
 * the receiver; the receiver's side treats every byte as hostile: every
 * length is bounded before use, every path is confined to the vault, and a
 * file is published only after its SHA-256 matches an entry authenticated
 * by HMAC-SHA256 under the shared key. The wire format is documented in
 * sluice-diode(8); keep the two in step.
 */
#ifndef SLUICE_DIODE_H
#define SLUICE_DIODE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/common.h"

/* ---- packets ---------------------------------------------------------------
 * Every packet is a 48-byte header followed by exactly `symbol_size` bytes
 * (one symbol of an erasure-coded block). All integers little-endian. */
#define DIODE_WIRE_VERSION 1
#define DIODE_HDR_LEN 48
#define DIODE_MAGIC "SLDI"
#define DIODE_MIN_SYMBOL 256
#define DIODE_MAX_SYMBOL 65000 /* one UDP datagram with the header */
#define DIODE_MAX_K 128
#define DIODE_MAX_M 128
#define DIODE_MIN_BLOCK 8192       /* K * symbol: room for the largest FILE record */
#define DIODE_MAX_BLOCK (8u << 20) /* K * symbol */

typedef struct diode_hdr {
    uint8_t version, flags;
    uint16_t k, m;          /* data and repair symbols per block */
    uint16_t index;         /* 0..k-1 data, k..k+m-1 repair */
    uint32_t symbol_size;
    uint64_t session;       /* random per sender run */
    uint64_t seq;           /* packet sequence number in the session */
    uint64_t block;         /* block number in the session */
    uint32_t payload_crc;   /* CRC32C of the symbol */
} diode_hdr;

/* CRC-32C (Castagnoli), the standard one (check value 0xE3069283). */
uint32_t diode_crc32c(const void *buf, size_t len);
/* Writes DIODE_HDR_LEN bytes (the header CRC is computed here). */
void diode_hdr_encode(const diode_hdr *h, uint8_t out[DIODE_HDR_LEN]);
/* 0, or -EBADMSG (bad magic, version, CRC or parameters). Does not check the
 * payload CRC: see diode_pkt_check(). */
int diode_hdr_decode(const uint8_t *buf, size_t len, diode_hdr *h);
/* Whole packet: header valid, length exact, payload CRC right. */
int diode_pkt_check(const uint8_t *pkt, size_t len, diode_hdr *h);

/* ---- records ----------------------------------------------------------------
 * A decoded block holds whole records: u16 type, u16 zero, u32 body length,
 * body. Type 0 ends the block (the rest is padding). */
enum diode_rec_type {
    DIODE_REC_END_OF_BLOCK = 0,
    DIODE_REC_HELLO = 1,    /* session start: time, FEC parameters, pass */
    DIODE_REC_FILE = 2,     /* one file's entry + HMAC */
    DIODE_REC_DATA = 3,     /* one chunk of a file, raw or zstd */
    DIODE_REC_MANIFEST = 4, /* a part of the manifest + HMAC */
    DIODE_REC_END = 5,      /* end of a pass + HMAC */
};
#define DIODE_REC_HDR 8
#define DIODE_PATH_MAX 4000      /* bytes of a relative path on the wire */
#define DIODE_NAME_MAX 255
#define DIODE_DEPTH_MAX 64
#define DIODE_MAX_FILE_SIZE (1ULL << 40)
#define DIODE_ENTRY_FIXED 66     /* an entry without its path */
#define DIODE_DATA_FIXED 24

enum diode_codec { DIODE_CODEC_RAW = 0, DIODE_CODEC_ZSTD = 1 };

/* What the receiver may publish: a file's identity in a session. */
typedef struct diode_entry {
    uint64_t file_id;
    uint64_t size;
    int64_t mtime_ns;
    uint32_t mode;       /* permission bits only (& 07777 on the sender) */
    uint32_t chunk;      /* DATA chunk size for this file */
    uint8_t sha256[SHA256_LEN];
    uint16_t path_len;
    const char *path;    /* path_len bytes; NUL-terminated in parsed entries */
} diode_entry;

typedef struct diode_data {
    uint64_t file_id, offset;
    uint32_t raw_len;
    uint8_t codec;
    const uint8_t *payload;
    size_t payload_len;
} diode_data;

typedef struct diode_hello {
    int64_t start_ns;
    uint32_t pass, passes;
    uint16_t k, m;
    uint32_t symbol_size;
} diode_hello;

typedef struct diode_end {
    uint32_t pass, passes;
    uint64_t files, bytes;
} diode_end;

/* Record encoders: append to buf[*off..cap); -ENOSPC when it does not fit.
 * `key` signs FILE, MANIFEST and END records for `session`. */
size_t diode_entry_wire_len(const diode_entry *e);
int diode_put_hello(uint8_t *buf, size_t cap, size_t *off, const diode_hello *h);
int diode_put_file(uint8_t *buf, size_t cap, size_t *off, const diode_entry *e,
                   uint64_t session, const uint8_t *key, size_t keylen);
int diode_put_data_hdr(uint8_t *buf, size_t cap, size_t *off, const diode_data *d);
int diode_put_end(uint8_t *buf, size_t cap, size_t *off, const diode_end *e,
                  uint64_t session, const uint8_t *key, size_t keylen);
/* A manifest part: entries[0..n), `part` of `nparts`. */
int diode_put_manifest(uint8_t *buf, size_t cap, size_t *off, uint32_t part, uint32_t nparts,
                       const diode_entry *const *entries, size_t n, uint64_t session,
                       const uint8_t *key, size_t keylen);

/* What the parser found in a block. Every callback gets only records whose
 * lengths are consistent and (FILE, MANIFEST, END) whose HMAC verified;
 * paths are checked with vault_path_check(). Pointers (entry path, data
 * payload) are valid during the callback only. A non-zero return stops. */
typedef struct diode_rx_ops {
    int (*hello)(void *ctx, uint64_t session, const diode_hello *h);
    int (*entry)(void *ctx, uint64_t session, const diode_entry *e, int from_manifest);
    int (*data)(void *ctx, uint64_t session, const diode_data *d);
    int (*end)(void *ctx, uint64_t session, const diode_end *e);
    /* A record refused (bad HMAC, bad path, bad lengths): for counting and logs. */
    void (*reject)(void *ctx, uint64_t session, const char *what);
} diode_rx_ops;

/* Parse the records of one decoded block. 0, or the first non-zero
 * callback return. Malformed input is reported through ops->reject and
 * skipped, never trusted. */
int diode_block_parse(const uint8_t *blk, size_t len, uint64_t session, const uint8_t *key,
                      size_t keylen, const diode_rx_ops *ops, void *ctx);

/* ---- erasure code (ISA-L Reed-Solomon, Cauchy matrix) ------------------------ */
typedef struct diode_fec diode_fec;
int diode_fec_new(unsigned k, unsigned m, diode_fec **out);
void diode_fec_free(diode_fec *f);
/* data[k] -> repair[m], each `len` bytes. */
void diode_fec_encode(diode_fec *f, size_t len, uint8_t *const *data, uint8_t *const *repair);
/* Rebuild missing data symbols. `sym[k+m]` are the symbol buffers, `have`
 * a mask of which arrived (at least k of them). 0 or -EIO. */
int diode_fec_decode(diode_fec *f, size_t len, uint8_t *const *sym, const uint8_t *have);

/* ---- the receiving core: packets -> blocks -> records --------------------------
 * Holds a bounded table of incomplete blocks (memory cap in bytes); the
 * oldest block is dropped when it is full. No I/O. */
typedef struct diode_rx diode_rx;
typedef struct diode_rx_stats {
    uint64_t packets, bad_packets, dup_packets, blocks, blocks_repaired, blocks_lost;
    uint64_t sessions, rejects;
} diode_rx_stats;
int diode_rx_new(const uint8_t *key, size_t keylen, size_t mem_cap, const diode_rx_ops *ops,
                 void *ctx, diode_rx **out);
void diode_rx_free(diode_rx *rx);
/* One packet as received (datagram). 0, or a callback's non-zero return. */
int diode_rx_packet(diode_rx *rx, const uint8_t *pkt, size_t len);
/* Bytes of a stream channel (fd, fifo), any split: packets are found by
 * their magic and checksums, so garbage, truncation and bit flips only lose
 * the packets they touch. */
int diode_rx_stream(diode_rx *rx, const uint8_t *buf, size_t len);
/* End of input: incomplete blocks are counted as lost. */
void diode_rx_flush(diode_rx *rx);
const diode_rx_stats *diode_rx_get_stats(const diode_rx *rx);

/* ---- channels ---------------------------------------------------------------
 * "fd:N", "fifo:PATH", "udp:HOST:PORT" (HOST may be a multicast group). A
 * receiving channel is opened receive-only (O_RDONLY, or a UDP socket that is
 * only bound), a sending one send-only. */
enum diode_chan_kind { DIODE_CHAN_FD, DIODE_CHAN_FIFO, DIODE_CHAN_UDP };
typedef struct diode_chan {
    enum diode_chan_kind kind;
    int fd;
    int is_stream;                 /* fd and fifo */
    unsigned char addr[128];       /* UDP destination (sender) */
    unsigned addrlen;
    int rcvbuf;                    /* receiver: the socket buffer obtained */
} diode_chan;
/* 0 or negative; `why` gets a human reason. rcvbuf: bytes wanted (UDP). */
int diode_chan_open_recv(const char *spec, int rcvbuf, diode_chan *c, char *why, size_t whylen);
int diode_chan_open_send(const char *spec, diode_chan *c, char *why, size_t whylen);
void diode_chan_close(diode_chan *c);

/* ---- confinement ----------------------------------------------------------------
 * The one-way rules: the receiver is killed if it sends, connects or writes
 * on its channel; the sender if it receives or reads on its channel. */
/* Full confinement of one side, once set up (diode/sandbox.c): drop to
 * `user` when given, Landlock to the paths below (NULL: none), then a
 * seccomp allowlist with those direction rules. 0 or negative; on
 * error the caller must stop. The sender reads `source` and may append to
 * `report`; the receiver reads and writes `vault` and `staging` (NULL: the
 * vault's default). Both write the directory of `ledger`, read `key`, and
 * may open their `channel` spec's fifo again (its direction only). */
typedef struct diode_sandbox_paths {
    const char *source, *report;  /* sender */
    const char *vault, *staging;  /* receiver */
    const char *ledger, *key;     /* both */
    const char *channel;          /* both: the --to / --from spec */
    const char *user;             /* both: unprivileged user, or NULL */
} diode_sandbox_paths;
int diode_confine_sender(int chan_fd, const diode_sandbox_paths *p);
int diode_confine_receiver(int chan_fd, const diode_sandbox_paths *p);

/* ---- the vault ----------------------------------------------------------------
 * Publication into the directory tree that sluicefs serves. A staging
 * directory on the same filesystem holds files being received; a file
 * becomes visible in the vault only by an atomic rename after it was
 * verified and made durable. Nothing here follows a symlink or creates
 * anything but directories and regular files. */
typedef struct vault vault;

/* 0 when `path` is an acceptable relative vault path: no empty, "." or ".."
 * component, not absolute, no NUL or control bytes, no component beginning
 * with ".sluice", bounded length and depth. Else -EINVAL. */
int vault_path_check(const char *path, size_t len);

/* Open (creating) the vault and its staging directory (default: a sibling
 * ".<name>.sluice-staging"). Leftover staged files of an earlier run are
 * removed. 0 or negative with `why`. */
int vault_open(const char *dir, const char *staging, vault **out, char *why, size_t whylen);
void vault_close(vault *v);
/* A new empty staging file; returns its fd and fills name (16+ bytes). */
int vault_stage_create(vault *v, char *name, size_t namelen);
void vault_stage_discard(vault *v, const char *name);
/* Does the vault hold `path` as a regular file of `size` bytes whose
 * SHA-256 is `sha`? 1 yes, 0 no (absent, different, or not a regular file). */
int vault_has(vault *v, const char *path, uint64_t size, const uint8_t sha[SHA256_LEN]);
/* Make every staged file durable at once (one flush for a batch). */
int vault_sync_staging(vault *v);
/* Move a staged (already durable: vault_sync_staging) file to `path`
 * atomically, creating parent directories, replacing an older regular file,
 * never following symlinks. Readers see the old file or the new one, never
 * a mixture. `sha` (may be NULL) is remembered so that vault_has() need not
 * hash the file again. 0 or negative. */
int vault_publish(vault *v, const char *stage_name, const char *path,
                  const uint8_t sha[SHA256_LEN]);
/* Make the directory entries of every publish so far durable (one flush
 * per batch rather than an fsync per directory). */
int vault_commit(vault *v);
int vault_staging_fd(const vault *v);

/* ---- the programs ------------------------------------------------------------- */
enum { DIODE_EXIT_OK = 0, DIODE_EXIT_INCOMPLETE = 1, DIODE_EXIT_USAGE = 2, DIODE_EXIT_ERROR = 3 };
int diode_send_main(int argc, char **argv);
int diode_recv_main(int argc, char **argv);

#endif
