/*
 * range.h - the compact range of an RFC 6962 Merkle tree: the roots of
 * the perfect subtrees that make up its leaves, one per set bit of the
 * size, largest (leftmost) first.  What it takes to append a leaf and know
 * the new tree head without reading the leaves before it: the audit log's
 * writers (the store's writer thread, which gives leaves their index) and
 * its readers (open, verify) share it.
 */
#ifndef TG_AUDIT_RANGE_H
#define TG_AUDIT_RANGE_H

#include "core/core.h"

/* One root per bit of a 64-bit size. */
#define TG_RANGE_MAX 64

struct tg_range {
    uint64_t size;
    unsigned depth;
    uint8_t h[TG_RANGE_MAX][TG_SHA256_LEN];
};

void tg_range_init(struct tg_range *r);
/* dst = src, copying only the roots in use (a range is 2 KiB, mostly unused). */
void tg_range_copy(struct tg_range *dst, const struct tg_range *src);
/* Add one leaf hash.  TG_E_LIMIT when the size would overflow, TG_E_NOMEM
 * when a hash failed (r is then unusable: work on a copy). */
int tg_range_push(struct tg_range *r, const uint8_t leaf[TG_SHA256_LEN]);
/* The tree head MTH of the leaves pushed so far; TG_E_NOMEM when a hash failed. */
int tg_range_root(const struct tg_range *r, uint8_t out[TG_SHA256_LEN]);
/* The range as bytes (8-byte big-endian size, then the roots): at most
 * TG_RANGE_BYTES, the length returned.  Read back with tg_range_decode
 * (TG_E_PARSE when the bytes are not a range). */
#define TG_RANGE_BYTES (8 + TG_RANGE_MAX * TG_SHA256_LEN)
size_t tg_range_encode(const struct tg_range *r, uint8_t out[TG_RANGE_BYTES]);
int tg_range_decode(const void *data, size_t len, struct tg_range *r);
/* True for the all-zero hash the hashing primitives return on failure. */
bool tg_hash_failed(const uint8_t h[TG_SHA256_LEN]);

#endif
