/* dlp/mask.c — the masking operators: mask, replace, hash, remove.
 * What a finding becomes must never contain the finding: `mask` keeps at most
 * keep-last alphanumerics, `hash` is keyed (HMAC-SHA256, truncated) so a
 * pseudonym cannot be reversed by hashing guesses without the key. */
#include "dlp/dlp_i.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dlp_buf_put(dlp_buf *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + len)
            nc *= 2;
        uint8_t *n = realloc(b->data, nc);
        if (!n)
            return -ENOMEM;
        b->data = n;
        b->cap = nc;
    }
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

static int mask_op(const dlp_action_spec *a, const uint8_t *s, size_t len, dlp_buf *out)
{
    size_t alnum = 0;
    for (size_t i = 0; i < len; i++)
        alnum += isalnum(s[i]) != 0;
    /* Never keep so much that little is hidden: at most a quarter. */
    size_t keep = (size_t)a->keep_last;
    if (keep > alnum / 4)
        keep = alnum / 4;
    size_t start = out->len;
    if (dlp_buf_put(out, s, len))
        return -ENOMEM;
    uint8_t *o = out->data + start;
    size_t seen = 0;
    if (alnum == 0) { /* all punctuation: nothing would be hidden otherwise */
        memset(o, (unsigned char)a->mask_char, len);
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (isalnum(s[i])) {
            seen++;
            if (seen <= alnum - keep)
                o[i] = (uint8_t)a->mask_char;
        } else if (!a->keep_separators || s[i] >= 0x80 || s[i] < 0x20) {
            o[i] = (uint8_t)a->mask_char;
        }
    }
    return 0;
}

int dlp_apply_action(const struct dlp_policy *p, const dlp_rule *r, const uint8_t *s, size_t len,
                     dlp_buf *out)
{
    const dlp_action_spec *a = &r->action;
    char tmp[256];
    switch (a->type) {
    case DLP_ACT_MASK:
        return mask_op(a, s, len, out);
    case DLP_ACT_REPLACE:
        if (a->label)
            return dlp_buf_put(out, a->label, strlen(a->label));
        snprintf(tmp, sizeof tmp, "[REDACTED:%s]", r->id);
        return dlp_buf_put(out, tmp, strlen(tmp));
    case DLP_ACT_HASH: {
        if (p->keylen == 0)
            return -ENOKEY;
        uint8_t mac[SHA256_LEN];
        char hex[2 * SHA256_LEN + 1];
        if (hmac_sha256(p->key, p->keylen, s, len, mac))
            return -EIO;
        hex_encode(mac, sizeof mac, hex);
        hex[a->hash_len] = '\0';
        snprintf(tmp, sizeof tmp, "<%s:%s>", a->label ? a->label : r->id, hex);
        return dlp_buf_put(out, tmp, strlen(tmp));
    }
    case DLP_ACT_REMOVE:
        return 0;
    }
    return -EINVAL;
}

const char *dlp_action_name(enum dlp_action a)
{
    static const char *const names[] = {"mask", "replace", "hash", "remove"};
    return (unsigned)a < 4 ? names[a] : "?";
}
