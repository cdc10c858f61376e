/* diode/fec.c — Reed-Solomon erasure code over GF(2^8) with ISA-L: K data
 * symbols + M repair symbols per block, any K of them rebuild the block.
 *
 * Only erasures are repaired: a symbol whose CRC failed is treated as lost,
 * never fed to the decoder (a corrupt symbol would corrupt the block). */
#include "diode/diode.h"

#include <errno.h>
#include <isa-l/erasure_code.h>
#include <stdlib.h>
#include <string.h>

struct diode_fec {
    unsigned k, m;
    unsigned char *matrix;   /* (k+m) x k Cauchy matrix, identity on top */
    unsigned char *enc_tbls; /* k*m*32 */
    unsigned char *dec_tbls; /* k*k*32 scratch */
    unsigned char *b, *inv, *dec_rows;
};

int diode_fec_new(unsigned k, unsigned m, diode_fec **out)
{
    if (k < 1 || k > DIODE_MAX_K || m > DIODE_MAX_M)
        return -EINVAL;
    diode_fec *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->k = k;
    f->m = m;
    f->matrix = malloc((size_t)(k + m) * k);
    f->enc_tbls = malloc((size_t)k * (m ? m : 1) * 32);
    f->dec_tbls = malloc((size_t)k * k * 32);
    f->b = malloc((size_t)k * k);
    f->inv = malloc((size_t)k * k);
    f->dec_rows = malloc((size_t)k * k);
    if (!f->matrix || !f->enc_tbls || !f->dec_tbls || !f->b || !f->inv || !f->dec_rows) {
        diode_fec_free(f);
        return -ENOMEM;
    }
    gf_gen_cauchy1_matrix(f->matrix, (int)(k + m), (int)k);
    if (m)
        ec_init_tables((int)k, (int)m, f->matrix + (size_t)k * k, f->enc_tbls);
    *out = f;
    return 0;
}

void diode_fec_free(diode_fec *f)
{
    if (!f)
        return;
    free(f->matrix);
    free(f->enc_tbls);
    free(f->dec_tbls);
    free(f->b);
    free(f->inv);
    free(f->dec_rows);
    free(f);
}

void diode_fec_encode(diode_fec *f, size_t len, uint8_t *const *data, uint8_t *const *repair)
{
    if (f->m == 0)
        return;
    ec_encode_data((int)len, (int)f->k, (int)f->m, f->enc_tbls, (unsigned char **)data,
                   (unsigned char **)repair);
}

int diode_fec_decode(diode_fec *f, size_t len, uint8_t *const *sym, const uint8_t *have)
{
    const unsigned k = f->k, n = f->k + f->m;
    unsigned rows[DIODE_MAX_K], missing[DIODE_MAX_K];
    unsigned nr = 0, nmiss = 0;
    for (unsigned i = 0; i < k; i++)
        if (!have[i])
            missing[nmiss++] = i;
    if (nmiss == 0)
        return 0;
    for (unsigned i = 0; i < n && nr < k; i++)
        if (have[i])
            rows[nr++] = i;
    if (nr < k)
        return -EIO;
    for (unsigned i = 0; i < k; i++)
        memcpy(f->b + (size_t)i * k, f->matrix + (size_t)rows[i] * k, k);
    if (gf_invert_matrix(f->b, f->inv, (int)k) < 0)
        return -EIO;
    for (unsigned j = 0; j < nmiss; j++)
        memcpy(f->dec_rows + (size_t)j * k, f->inv + (size_t)missing[j] * k, k);
    unsigned char *src[DIODE_MAX_K], *dst[DIODE_MAX_K];
    for (unsigned i = 0; i < k; i++)
        src[i] = sym[rows[i]];
    for (unsigned j = 0; j < nmiss; j++)
        dst[j] = sym[missing[j]];
    ec_init_tables((int)k, (int)nmiss, f->dec_rows, f->dec_tbls);
    ec_encode_data((int)len, (int)k, (int)nmiss, f->dec_tbls, src, dst);
    return 0;
}
