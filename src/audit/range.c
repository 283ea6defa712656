/*
 * range.c - the compact range of a Merkle tree (range.h).
 *
 * Appending pushes the leaf hash and merges the two rightmost roots once
 * per trailing one bit of the old size; the tree head folds the roots from
 * right to left.  Both match MTH of RFC 6962 §2.1 because MTH splits at
 * the largest power of two below n, which is exactly where the highest set
 * bit of n starts a new perfect subtree.
 */
#include "audit/range.h"

#include <endian.h>
#include <string.h>

#include "audit/audit.h"

bool tg_hash_failed(const uint8_t h[TG_SHA256_LEN])
{
    static const uint8_t zero[TG_SHA256_LEN];
    return memcmp(h, zero, TG_SHA256_LEN) == 0;
}

void tg_range_init(struct tg_range *r)
{
    r->size = 0;
    r->depth = 0;
}

void tg_range_copy(struct tg_range *dst, const struct tg_range *src)
{
    dst->size = src->size;
    dst->depth = src->depth;
    memcpy(dst->h, src->h, (size_t)src->depth * TG_SHA256_LEN);
}

int tg_range_push(struct tg_range *r, const uint8_t leaf[TG_SHA256_LEN])
{
    if (r->size == UINT64_MAX)
        return TG_E_LIMIT;
    memcpy(r->h[r->depth++], leaf, TG_SHA256_LEN);
    for (uint64_t s = r->size; s & 1; s >>= 1) {
        uint8_t *left = r->h[r->depth - 2];
        tg_audit_node_hash(left, r->h[r->depth - 1], left);
        if (tg_hash_failed(left))
            return TG_E_NOMEM;
        r->depth--;
    }
    r->size++;
    return TG_OK;
}

int tg_range_root(const struct tg_range *r, uint8_t out[TG_SHA256_LEN])
{
    uint8_t acc[TG_SHA256_LEN];

    if (r->depth == 0) {
        tg_audit_tree_root(NULL, 0, acc);
    } else {
        memcpy(acc, r->h[r->depth - 1], TG_SHA256_LEN);
        for (unsigned i = r->depth - 1; i-- > 0;) {
            tg_audit_node_hash(r->h[i], acc, acc);
            if (tg_hash_failed(acc))
                break;
        }
    }
    if (tg_hash_failed(acc))
        return TG_E_NOMEM;
    memcpy(out, acc, TG_SHA256_LEN);
    return TG_OK;
}

size_t tg_range_encode(const struct tg_range *r, uint8_t out[TG_RANGE_BYTES])
{
    uint64_t be = htobe64(r->size);
    memcpy(out, &be, 8);
    memcpy(out + 8, r->h, (size_t)r->depth * TG_SHA256_LEN);
    return 8 + (size_t)r->depth * TG_SHA256_LEN;
}

int tg_range_decode(const void *data, size_t len, struct tg_range *r)
{
    uint64_t be;
    if (len < 8 || (len - 8) % TG_SHA256_LEN)
        return TG_E_PARSE;
    memcpy(&be, data, 8);
    r->size = be64toh(be);
    r->depth = (unsigned)((len - 8) / TG_SHA256_LEN);
    /* one root per set bit of the size */
    if (r->depth != (unsigned)__builtin_popcountll(r->size))
        return TG_E_PARSE;
    memcpy(r->h, (const uint8_t *)data + 8, len - 8);
    return TG_OK;
}
