/*
 * sha256.c - SHA-256 of a message given in parts (core.h), with libcrypto's
 * SHA-256 functions on a context on the stack.
 *
 * OpenSSL 3 marks them deprecated in favour of EVP, but EVP_DigestInit
 * allocates a context for the algorithm on every call; every turn hashes a
 * dozen short texts (keyed digests, pseudonyms, Merkle nodes), so the
 * low-level calls (no allocation, no provider dispatch) are used here, in
 * this one file.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "core/core.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>

bool tg_sha256_parts(const void *const parts[], const size_t lens[], size_t n,
                     uint8_t out[TG_SHA256_LEN])
{
    SHA256_CTX c;
    bool ok = SHA256_Init(&c) == 1;
    for (size_t i = 0; ok && i < n; i++)
        if (lens[i])
            ok = SHA256_Update(&c, parts[i], lens[i]) == 1;
    ok = ok && SHA256_Final(out, &c) == 1;
    OPENSSL_cleanse(&c, sizeof(c));
    if (!ok)
        memset(out, 0, TG_SHA256_LEN);
    return ok;
}
