/* dlp/dlp.h — the DLP engine's whole public surface.
 *
 * A policy (YAML) names rule packs (YAML), the content types that may be
 * served, the action per tag or rule, a key file for keyed hashing and limits.
 * dlp_policy_load() parses and compiles everything once (Vectorscan prefilter
 * database + PCRE2 JIT per rule); a loaded policy is immutable and may be
 * shared by any number of threads.
 *
 * Fail closed: every function that decides what may be served returns 0 only
 * when the answer is certain. Any negative return (match limit hit, out of
 * memory, libmagic failure, undecodable text...) means the caller must DENY.
 */
#ifndef SLUICE_DLP_H
#define SLUICE_DLP_H

#include <stddef.h>
#include <stdint.h>

typedef struct dlp_policy dlp_policy;
typedef struct dlp_stream dlp_stream;

/* Where a rule or policy file is wrong: rendered as "file:line:col: msg". */
typedef struct dlp_error {
    char file[512];
    int line, col; /* 1-based; 0 when unknown */
    char msg[512];
} dlp_error;

/* "file:line:col: msg" (or "file: msg" without a position). */
void dlp_error_format(const dlp_error *e, char *out, size_t outlen);

/* ---- loading ------------------------------------------------------------- */

/* Load a policy file and the rule packs it names (relative to the policy's
 * directory). Returns 0, -EINVAL with *err filled for a bad file, or another
 * negative errno. The key file named by the policy is read here, once. */
int dlp_policy_load(const char *policy_path, dlp_policy **out, dlp_error *err);

/* Load a single rule pack as a policy of its own (every type allowed, the
 * rules' own actions, a random per-process hashing key): for `rules lint` and
 * `rules test`. */
int dlp_pack_load(const char *pack_path, dlp_policy **out, dlp_error *err);

void dlp_policy_free(dlp_policy *p);

/* The files dlp_policy_load() would read for the policy at `policy_path`:
 * the policy itself, each pack it names, and the key file ($SLUICE_KEY_FILE,
 * else the policy's key-file; NULL when neither), each resolved as the
 * loader resolves it. Only the policy file is read, and only its `packs`
 * and `key-file` are looked at: a confined reader (sluicefs) learns what it
 * must be allowed to read, or which file of a new policy lies outside what
 * it may. 0, -EINVAL with *err for a file that is not a YAML mapping, or
 * another negative errno. */
typedef struct dlp_policy_files {
    char **files; /* the policy, then its packs */
    size_t nfiles;
    char *key; /* or NULL */
} dlp_policy_files;
int dlp_policy_files_list(const char *policy_path, dlp_policy_files *out, dlp_error *err);
void dlp_policy_files_free(dlp_policy_files *f);

/* SHA-256 (hex) over the policy file and every pack it loaded, in order.
 * Views, ledger records and caches are keyed by it. */
const char *dlp_policy_hash(const dlp_policy *p);
const char *dlp_policy_path(const dlp_policy *p);
/* Largest input the policy lets the engine check (policy `limits.max-file-size`). */
uint64_t dlp_policy_max_size(const dlp_policy *p);
size_t dlp_policy_rule_count(const dlp_policy *p);

/* Documents (PDF, Office, OpenDocument, RTF, HTML, e-mail): the policy's
 * `documents:` section. Types it lists are served as their extracted text,
 * sanitized like any text; the original bytes never are. */
typedef struct dlp_documents {
    int enabled;           /* the policy extracts some document types */
    int drop_metadata;     /* 1: properties, comments, tracked changes left out */
    uint64_t max_output;   /* extracted text larger than this is refused */
    uint64_t max_expanded; /* zip containers expanding past this are refused */
    uint64_t max_memory;   /* the extractor's address-space limit */
    unsigned timeout_ms;   /* one extraction's wall-clock limit */
    char suffix[32];       /* how sluicefs names the view: contract.pdf -> contract.pdf.txt */
} dlp_documents;
const dlp_documents *dlp_policy_documents(const dlp_policy *p);
/* 1 when content of this MIME type (and start `head`) is served as its
 * extracted text under the policy. */
int dlp_policy_extracts(const dlp_policy *p, const char *mime, const void *head, size_t len);
const char *dlp_policy_rule_id(const dlp_policy *p, size_t i);
/* 0 when Vectorscan refused rule i's pattern: it is then confirmed by PCRE2
 * over the whole input (correct, slower). */
int dlp_policy_rule_prefiltered(const dlp_policy *p, size_t i);
/* 1 when rule i's pattern has no bounded length and no max-length: matches
 * are then looked for within DLP_DEFAULT_MAX_LENGTH (4096) bytes only. */
int dlp_policy_rule_unbounded(const dlp_policy *p, size_t i);

/* ---- content type --------------------------------------------------------- */

typedef struct dlp_type {
    char mime[128];     /* libmagic MIME type, e.g. "text/plain" */
    char encoding[64];  /* libmagic encoding, e.g. "utf-8", "utf-16le", "binary" */
    int allowed;        /* 1 when the policy lets this type be served */
    int document;       /* 1 when it is served as its extracted text */
    char reason[160];   /* why it is denied, for the ledger and logs */
} dlp_type;

/* Classify a buffer (the start of a file; libmagic looks at up to 1 MiB)
 * and decide by policy. 0 or negative (libmagic failure: deny). */
int dlp_classify(const dlp_policy *p, const void *buf, size_t len, dlp_type *out);

/* ---- findings -------------------------------------------------------------- */

enum dlp_action { DLP_ACT_MASK, DLP_ACT_REPLACE, DLP_ACT_HASH, DLP_ACT_REMOVE };
const char *dlp_action_name(enum dlp_action a);

typedef struct dlp_finding {
    const char *rule_id;     /* owned by the policy */
    uint64_t offset, length; /* in the input, bytes (for UTF-16 input: of the UTF-8 text) */
    enum dlp_action action;
} dlp_finding;

typedef struct dlp_rule_hits {
    const char *rule_id;
    uint64_t count;
} dlp_rule_hits;

/* ---- whole buffers ----------------------------------------------------------
 * Classify, decode (UTF-16 is transcoded, scanned, masked and re-encoded in
 * its own encoding), scan, and mask. */
typedef struct dlp_result {
    dlp_type type;
    uint8_t *data; /* the sanitized view (malloc'd); NULL when denied */
    size_t len;
    dlp_finding *findings; /* every finding, in input order (after overlap resolution) */
    size_t nfindings;
    dlp_rule_hits *hits; /* per rule, rules with count > 0 only, in policy order */
    size_t nhits;
    char reason[160]; /* set when the call fails or denies */
    char extractor[32]; /* the document extractor used, "" for plain text */
} dlp_result;

/* 0: out->data may be served. -EACCES: the policy denies the type (out->type
 * and out->reason say why). Any other negative: the engine could not check the
 * content (out->reason says why) — deny. dlp_result_free() in every case. */
int dlp_sanitize(const dlp_policy *p, const void *buf, size_t len, dlp_result *out);
void dlp_result_free(dlp_result *r);

/* ---- streams ----------------------------------------------------------------
 * Byte-oriented scanning of ASCII-compatible text (UTF-8, Latin-1...) of any
 * length in chunks of any size. The output is identical to that of one call
 * over the whole input, whatever the chunking. Sanitized bytes go to `out`,
 * findings (offsets in the whole input) to `on_finding` (may be NULL). A
 * callback returning non-zero stops the stream with that error. */
typedef int (*dlp_out_fn)(void *ctx, const void *buf, size_t len);
typedef int (*dlp_finding_fn)(void *ctx, const dlp_finding *f);

int dlp_stream_new(const dlp_policy *p, dlp_out_fn out, dlp_finding_fn on_finding,
                   void *ctx, dlp_stream **sp);
/* A destination the caller owns, in place of `out`: the stream writes its
 * output there directly rather than into a buffer of its own that `out`
 * would copy from (one copy of every byte less). Per batch of output,
 * reserve(ctx, len) returns `len` writable bytes right after everything
 * committed so far (it may move what was committed; NULL fails the stream
 * with -ENOMEM), the stream fills exactly those, then commit(ctx, len)
 * makes them output (non-zero stops the stream, as from `out`). Reserved
 * bytes are never output before their commit, and the batches and their
 * bytes are exactly those `out` would get. `ctx` is dlp_stream_new's. Set
 * before the first feed: 0, or -EINVAL. */
typedef struct dlp_sink {
    void *(*reserve)(void *ctx, size_t len);
    int (*commit)(void *ctx, size_t len);
} dlp_sink;
int dlp_stream_set_sink(dlp_stream *s, const dlp_sink *sink);
/* 0 or negative (deny: whatever was written to `out` must be discarded). */
int dlp_stream_feed(dlp_stream *s, const void *buf, size_t len);
int dlp_stream_finish(dlp_stream *s);
/* Hits per rule so far; valid until dlp_stream_free(). */
const dlp_rule_hits *dlp_stream_hits(const dlp_stream *s, size_t *n);
const char *dlp_stream_error(const dlp_stream *s);
/* How much input a stream buffers before it scans (default 256 KiB). Any
 * value gives the same output; small values make rounds (and their cuts)
 * happen often, which is what the chunking tests want. */
void dlp_stream_set_round_size(dlp_stream *s, size_t bytes);
void dlp_stream_free(dlp_stream *s);

/* ---- rule packs' embedded examples (`sluice rules test`) -------------------- */
typedef void (*dlp_example_report_fn)(void *ctx, const char *rule_id, int ok, const char *what);
/* Runs every must-match / must-not-match example of every rule; returns the
 * number of failed examples (0 = all passed) or a negative error. */
int dlp_test_examples(const dlp_policy *p, dlp_example_report_fn report, void *ctx);

#endif
