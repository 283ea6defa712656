/*
 * password.c - password hashes for people who log in: PBKDF2-HMAC-SHA256
 * from libcrypto, written as "pbkdf2-sha256$ITERATIONS$SALT$HASH" (hex).
 */
#include "core/core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define SALT_LEN 16

static int derive(const char *pw, const uint8_t *salt, size_t saltlen, uint32_t iter,
                  uint8_t out[TG_SHA256_LEN])
{
    return PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, (int)saltlen, (int)iter, EVP_sha256(),
                             TG_SHA256_LEN, out) == 1
               ? TG_OK
               : TG_E_INTERNAL;
}

int tg_password_hash(const char *pw, uint32_t iter, char out[TG_PASSWORD_HASH_MAX])
{
    uint8_t salt[SALT_LEN], h[TG_SHA256_LEN];
    char salthex[2 * SALT_LEN + 1], hhex[2 * TG_SHA256_LEN + 1];
    if (tg_random_bytes(salt, sizeof(salt)) || derive(pw, salt, sizeof(salt), iter, h))
        return TG_E_INTERNAL;
    tg_hex_encode(salt, sizeof(salt), salthex);
    tg_hex_encode(h, sizeof(h), hhex);
    snprintf(out, TG_PASSWORD_HASH_MAX, "pbkdf2-sha256$%u$%s$%s", iter, salthex, hhex);
    return TG_OK;
}

#define SALT_MAX 64

/* Split "pbkdf2-sha256$ITER$SALT$HASH" (a salt of 1 to 64 bytes). */
static bool parse_hash(const char *enc, uint32_t *iter, uint8_t salt[SALT_MAX], size_t *saltlen,
                       uint8_t h[TG_SHA256_LEN])
{
    static const char prefix[] = "pbkdf2-sha256$";
    char *end;
    if (!enc || strncmp(enc, prefix, sizeof(prefix) - 1) != 0)
        return false;
    enc += sizeof(prefix) - 1;
    errno = 0;
    unsigned long n = strtoul(enc, &end, 10);
    if (errno || end == enc || *end != '$' || n < 1000 || n > 100000000)
        return false;
    *iter = (uint32_t)n;
    enc = end + 1;
    const char *dollar = strchr(enc, '$');
    size_t sl = dollar ? (size_t)(dollar - enc) : 0;
    if (!sl || sl % 2 || sl > 2 * SALT_MAX || strlen(dollar + 1) != 2 * TG_SHA256_LEN)
        return false;
    char salthex[2 * SALT_MAX + 1];
    memcpy(salthex, enc, sl);
    salthex[sl] = '\0';
    *saltlen = sl / 2;
    return tg_hex_decode(salthex, salt, *saltlen) == TG_OK &&
           tg_hex_decode(dollar + 1, h, TG_SHA256_LEN) == TG_OK;
}

bool tg_password_hash_valid(const char *enc)
{
    uint32_t iter;
    size_t sl;
    uint8_t salt[SALT_MAX], h[TG_SHA256_LEN];
    return parse_hash(enc, &iter, salt, &sl, h);
}

int tg_password_verify(const char *pw, const char *enc)
{
    uint32_t iter;
    size_t sl;
    uint8_t salt[SALT_MAX], want[TG_SHA256_LEN], got[TG_SHA256_LEN];
    if (!parse_hash(enc, &iter, salt, &sl, want))
        return TG_E_PARSE;
    if (derive(pw, salt, sl, iter, got))
        return TG_E_INTERNAL;
    return tg_ct_equal(got, want, sizeof(got)) ? TG_OK : TG_E_AUTH;
}
