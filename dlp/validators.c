/* dlp/validators.c — checks that turn a pattern match into a finding:
 * Luhn for payment cards, ISO 13616 mod-97 for IBANs, the SSA's structural
 * rules for US SSNs, Shannon entropy for generic secrets. Each takes the
 * finding's bytes (separators included) and returns 1 to accept. */
#include "dlp/dlp_i.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

int dlp_luhn(const uint8_t *s, size_t len)
{
    int digits[32], n = 0;
    for (size_t i = 0; i < len; i++) {
        if (isdigit(s[i])) {
            if (n == 32)
                return 0;
            digits[n++] = s[i] - '0';
        } else if (s[i] != ' ' && s[i] != '-' && s[i] != '.') {
            return 0;
        }
    }
    if (n < 12 || n > 19)
        return 0;
    int sum = 0;
    for (int i = n - 1, dbl = 0; i >= 0; i--, dbl ^= 1) {
        int d = digits[i];
        if (dbl && (d *= 2) > 9)
            d -= 9;
        sum += d;
    }
    return sum % 10 == 0;
}

/* IBAN lengths by country (ISO 13616 registry). */
static const struct {
    char cc[3];
    int len;
} iban_lengths[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16},
    {"BG", 22}, {"BH", 22}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28},
    {"CZ", 24}, {"DE", 22}, {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24},
    {"FI", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18},
    {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IQ", 23},
    {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32},
    {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"MC", 27}, {"MD", 24}, {"ME", 22},
    {"MK", 19}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NL", 18}, {"NO", 15}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"SA", 24},
    {"SC", 31}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"ST", 25}, {"SV", 28},
    {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20},
};

int dlp_iban(const uint8_t *s, size_t len)
{
    char c[40];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ' || s[i] == '-')
            continue;
        if (!isalnum(s[i]) || n == sizeof c)
            return 0;
        c[n++] = (char)toupper(s[i]);
    }
    if (n < 15 || !isalpha((unsigned char)c[0]) || !isalpha((unsigned char)c[1]) ||
        !isdigit((unsigned char)c[2]) || !isdigit((unsigned char)c[3]))
        return 0;
    int want = 0;
    for (size_t i = 0; i < SLUICE_ARRAY_LEN(iban_lengths); i++)
        if (c[0] == iban_lengths[i].cc[0] && c[1] == iban_lengths[i].cc[1])
            want = iban_lengths[i].len;
    if (want == 0 || (size_t)want != n)
        return 0;
    /* Move the first four characters to the end; letters count as 10..35. */
    unsigned rem = 0;
    for (size_t k = 0; k < n; k++) {
        char ch = c[(k + 4) % n];
        if (isdigit((unsigned char)ch))
            rem = (rem * 10 + (unsigned)(ch - '0')) % 97;
        else
            rem = (rem * 100 + (unsigned)(ch - 'A' + 10)) % 97;
    }
    return rem == 1;
}

int dlp_us_ssn(const uint8_t *s, size_t len)
{
    int d[9], n = 0;
    for (size_t i = 0; i < len; i++) {
        if (isdigit(s[i])) {
            if (n == 9)
                return 0;
            d[n++] = s[i] - '0';
        } else if (s[i] != '-' && s[i] != ' ') {
            return 0;
        }
    }
    if (n != 9)
        return 0;
    int area = d[0] * 100 + d[1] * 10 + d[2];
    int group = d[3] * 10 + d[4];
    int serial = d[5] * 1000 + d[6] * 100 + d[7] * 10 + d[8];
    if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0)
        return 0;
    return 1;
}

double dlp_entropy_bits(const uint8_t *s, size_t len)
{
    if (len == 0)
        return 0;
    size_t freq[256] = {0};
    for (size_t i = 0; i < len; i++)
        freq[s[i]]++;
    double h = 0;
    for (int i = 0; i < 256; i++)
        if (freq[i]) {
            double p = (double)freq[i] / (double)len;
            h -= p * log2(p);
        }
    return h;
}

int dlp_validate(const dlp_rule *r, const uint8_t *s, size_t len)
{
    switch (r->validator) {
    case VAL_NONE: return 1;
    case VAL_LUHN: return dlp_luhn(s, len);
    case VAL_IBAN: return dlp_iban(s, len);
    case VAL_US_SSN: return dlp_us_ssn(s, len);
    case VAL_ENTROPY: return dlp_entropy_bits(s, len) >= r->min_bits;
    }
    return 0;
}
