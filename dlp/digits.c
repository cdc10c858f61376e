/* dlp/digits.c — the digit scan's byte classifier: for each 64-byte word of
 * text, a bitmap of its ASCII digits and one of its separator bytes (the
 * union of the `digits` rules' separators). scan.c finds tokens in these
 * bitmaps with word arithmetic instead of stepping through the text a run of
 * digits at a time (document text has a run every 20 bytes or so, and each
 * cost a mispredicted branch or two).
 *
 * Three versions give the same bits: AVX2 (chosen at run time when the CPU
 * has it), SSE2 (every x86-64) and a portable one (8 bytes at a time with
 * word arithmetic). With more separators than the vector versions compare
 * against one by one, the separator bitmap is built from a table instead.
 * This file only classifies bytes; it never decides anything. */
#include "dlp/dlp_i.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DLP_X86 1
#include <immintrin.h>
#endif

/* Separators compared one by one in the vector versions (more: a table). */
#define VEC_SEPS 8

/* ---- portable ---------------------------------------------------------------- */

/* 0x80 in each byte of w that is an ASCII digit. */
static inline uint64_t digit_bytes(uint64_t w)
{
    const uint64_t hi = 0x8080808080808080ull;
    uint64_t x = w ^ 0x3030303030303030ull; /* a digit becomes 0..9 */
    uint64_t nd = (((x & 0x7f7f7f7f7f7f7f7full) + 0x7676767676767676ull) | x) & hi;
    return nd ^ hi;
}

/* 0x80 in each zero byte of w, exactly (no borrow between bytes). */
static inline uint64_t zero_bytes(uint64_t w)
{
    const uint64_t lo7 = 0x7f7f7f7f7f7f7f7full;
    return ~(((w & lo7) + lo7) | w | lo7);
}

/* The high bits of eight bytes, as eight bits (byte 0 -> bit 0). */
static inline uint64_t gather8(uint64_t m)
{
    return ((m >> 7) * 0x0102040810204080ull) >> 56;
}

static void masks_table(const uint8_t *b, size_t nwords, const struct dlp_policy *p,
                        uint64_t *s)
{
    for (size_t k = 0; k < nwords; k++) {
        uint64_t m = 0;
        for (unsigned j = 0; j < 64; j++)
            m |= (uint64_t)p->digit_sep[b[64 * k + j]] << j;
        s[k] = m;
    }
}

/* 0x80 in each byte of w that is an ASCII capital letter. */
static inline uint64_t upper_bytes(uint64_t w)
{
    const uint64_t hi = 0x8080808080808080ull;
    uint64_t x = w ^ 0x4040404040404040ull; /* 'A'..'Z' become 1..26 */
    /* 1..26: x - 1 < 26 in the low 7 bits, and bit 7 of w clear */
    uint64_t y = (x & 0x7f7f7f7f7f7f7f7full) | hi;
    uint64_t lt1 = ~(y - 0x0101010101010101ull) & hi;       /* x == 0 */
    uint64_t ge27 = ((x & 0x7f7f7f7f7f7f7f7full) + 0x6565656565656565ull) & hi; /* x >= 27 */
    return ~(lt1 | ge27 | x) & hi;
}

static void masks_portable(const uint8_t *b, size_t nwords, const struct dlp_policy *p,
                           uint64_t *d, uint64_t *s, uint64_t *u)
{
    const int table = p->ndigit_seps > VEC_SEPS;
    for (size_t k = 0; k < nwords; k++) {
        uint64_t dm = 0, sm = 0, um = 0;
        for (unsigned j = 0; j < 8; j++) {
            uint64_t w;
            memcpy(&w, b + 64 * k + 8 * j, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            w = __builtin_bswap64(w);
#endif
            dm |= gather8(digit_bytes(w)) << (8 * j);
            um |= gather8(upper_bytes(w)) << (8 * j);
            if (!table) {
                uint64_t z = 0;
                for (size_t q = 0; q < p->ndigit_seps; q++)
                    z |= zero_bytes(w ^ (0x0101010101010101ull * p->digit_sep_list[q]));
                sm |= gather8(z) << (8 * j);
            }
        }
        d[k] = dm;
        s[k] = sm;
        u[k] = um;
    }
    if (table)
        masks_table(b, nwords, p, s);
}

/* ---- x86-64 ------------------------------------------------------------------- */
#ifdef DLP_X86
static inline uint64_t mm_bits(__m128i a, __m128i b2, __m128i c, __m128i d4)
{
    return (uint64_t)(uint16_t)_mm_movemask_epi8(a) | (uint64_t)(uint16_t)_mm_movemask_epi8(b2) << 16 |
           (uint64_t)(uint16_t)_mm_movemask_epi8(c) << 32 | (uint64_t)(uint16_t)_mm_movemask_epi8(d4) << 48;
}

static inline __m128i sse_digits(__m128i v)
{
    /* signed compares: bytes >= 0x80 are negative, never digits */
    return _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)), _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
}

static inline __m128i sse_seps(__m128i v, const uint8_t *list, size_t n)
{
    __m128i m = _mm_setzero_si128();
    for (size_t q = 0; q < n; q++)
        m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8((char)list[q])));
    return m;
}

static inline __m128i sse_upper(__m128i v)
{
    return _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('A' - 1)), _mm_cmplt_epi8(v, _mm_set1_epi8('Z' + 1)));
}

static void masks_sse2(const uint8_t *b, size_t nwords, const struct dlp_policy *p, uint64_t *d,
                       uint64_t *s, uint64_t *u)
{
    const int table = p->ndigit_seps > VEC_SEPS;
    const size_t ns = table ? 0 : p->ndigit_seps;
    for (size_t k = 0; k < nwords; k++) {
        const uint8_t *w = b + 64 * k;
        __m128i v0 = _mm_loadu_si128((const __m128i *)w), v1 = _mm_loadu_si128((const __m128i *)(w + 16));
        __m128i v2 = _mm_loadu_si128((const __m128i *)(w + 32)), v3 = _mm_loadu_si128((const __m128i *)(w + 48));
        d[k] = mm_bits(sse_digits(v0), sse_digits(v1), sse_digits(v2), sse_digits(v3));
        u[k] = mm_bits(sse_upper(v0), sse_upper(v1), sse_upper(v2), sse_upper(v3));
        const uint8_t *l = p->digit_sep_list;
        s[k] = mm_bits(sse_seps(v0, l, ns), sse_seps(v1, l, ns), sse_seps(v2, l, ns), sse_seps(v3, l, ns));
    }
    if (table)
        masks_table(b, nwords, p, s);
}

__attribute__((target("avx2"))) static inline __m256i avx_digits(__m256i v)
{
    return _mm256_and_si256(_mm256_cmpgt_epi8(v, _mm256_set1_epi8('0' - 1)),
                            _mm256_cmpgt_epi8(_mm256_set1_epi8('9' + 1), v));
}

__attribute__((target("avx2"))) static inline __m256i avx_upper(__m256i v)
{
    return _mm256_and_si256(_mm256_cmpgt_epi8(v, _mm256_set1_epi8('A' - 1)),
                            _mm256_cmpgt_epi8(_mm256_set1_epi8('Z' + 1), v));
}

__attribute__((target("avx2"))) static void masks_avx2(const uint8_t *b, size_t nwords,
                                                        const struct dlp_policy *p, uint64_t *d,
                                                        uint64_t *s, uint64_t *u)
{
    const int table = p->ndigit_seps > VEC_SEPS;
    const size_t ns = table ? 0 : p->ndigit_seps;
    __m256i sep[VEC_SEPS];
    for (size_t q = 0; q < ns; q++)
        sep[q] = _mm256_set1_epi8((char)p->digit_sep_list[q]);
    for (size_t k = 0; k < nwords; k++) {
        const uint8_t *w = b + 64 * k;
        __m256i v0 = _mm256_loadu_si256((const __m256i *)w), v1 = _mm256_loadu_si256((const __m256i *)(w + 32));
        d[k] = (uint64_t)(uint32_t)_mm256_movemask_epi8(avx_digits(v0)) |
               (uint64_t)(uint32_t)_mm256_movemask_epi8(avx_digits(v1)) << 32;
        u[k] = (uint64_t)(uint32_t)_mm256_movemask_epi8(avx_upper(v0)) |
               (uint64_t)(uint32_t)_mm256_movemask_epi8(avx_upper(v1)) << 32;
        __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
        for (size_t q = 0; q < ns; q++) {
            s0 = _mm256_or_si256(s0, _mm256_cmpeq_epi8(v0, sep[q]));
            s1 = _mm256_or_si256(s1, _mm256_cmpeq_epi8(v1, sep[q]));
        }
        s[k] = (uint64_t)(uint32_t)_mm256_movemask_epi8(s0) | (uint64_t)(uint32_t)_mm256_movemask_epi8(s1) << 32;
    }
    if (table)
        masks_table(b, nwords, p, s);
}
#endif

void dlp_digit_masks_init(struct dlp_policy *p)
{
    p->ndigit_seps = 0;
    for (unsigned c = 0; c < 256; c++)
        if (p->digit_sep[c])
            p->digit_sep_list[p->ndigit_seps++] = (uint8_t)c;
    /* SLUICE_DLP_SIMD=portable|sse2 picks a lesser version, for the tests
     * that check every version finds the same tokens. */
    const char *want = getenv("SLUICE_DLP_SIMD");
    p->digit_masks = masks_portable;
    if (want && !strcmp(want, "portable"))
        return;
#ifdef DLP_X86
    p->digit_masks = masks_sse2;
    if (want && !strcmp(want, "sse2"))
        return;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        p->digit_masks = masks_avx2;
#endif
}
