/*
 * merkle.c - the pure RFC 6962 Merkle tree arithmetic behind the audit log:
 * leaf and node hashes, the tree head of a list of leaf hashes, and
 * inclusion proofs (generated as in RFC 6962 §2.1.1, checked with the
 * iterative algorithm of RFC 9162 §2.1.3.2).  Nothing here touches the
 * store; audit.c keeps the log itself.
 *
 * SHA-256 comes from libcrypto, which can fail only when it cannot allocate
 * its digest context.  The void primitives then write an all-zero hash, a
 * value SHA-256 does not produce in practice, so callers that must not
 * store a wrong hash (audit.c) test for it.
 */
#include "audit/audit.h"

#include <string.h>


static const uint8_t leaf_prefix = 0x00;
static const uint8_t node_prefix = 0x01;

/* SHA-256 of a || b || c (any part may be empty).  False, with out zeroed,
 * when libcrypto fails. */
static bool digest(const void *a, size_t alen, const void *b, size_t blen, const void *c,
                   size_t clen, uint8_t out[TG_HASH_LEN])
{
    const void *const part[3] = {a, b, c};
    const size_t plen[3] = {alen, blen, clen};
    return tg_sha256_parts(part, plen, 3, out);
}

/* Node hash without the aliasing copy; out may not alias left or right. */
static bool node(const uint8_t *left, const uint8_t *right, uint8_t out[TG_HASH_LEN])
{
    return digest(&node_prefix, 1, left, TG_HASH_LEN, right, TG_HASH_LEN, out);
}

void tg_audit_leaf_hash(const void *data, size_t len, uint8_t out[TG_HASH_LEN])
{
    digest(&leaf_prefix, 1, data, len, NULL, 0, out);
}

void tg_audit_node_hash(const uint8_t left[TG_HASH_LEN], const uint8_t right[TG_HASH_LEN],
                        uint8_t out[TG_HASH_LEN])
{
    uint8_t tmp[TG_HASH_LEN];
    /* Through tmp so out may alias left or right. */
    node(left, right, tmp);
    memcpy(out, tmp, TG_HASH_LEN);
}

/* The largest power of two strictly smaller than n (n >= 2): RFC 6962's k. */
static size_t split_point(size_t n)
{
    size_t k = 1;
    while (k < n - k)
        k <<= 1;
    return k;
}

/* MTH(D[0:n]) of RFC 6962 §2.1; false when a hash failed. */
static bool mth(const uint8_t (*h)[TG_HASH_LEN], size_t n, uint8_t out[TG_HASH_LEN])
{
    uint8_t left[TG_HASH_LEN], right[TG_HASH_LEN];
    size_t k;

    if (n == 0)
        return digest(NULL, 0, NULL, 0, NULL, 0, out);
    if (n == 1) {
        memcpy(out, h[0], TG_HASH_LEN);
        return true;
    }
    k = split_point(n);
    if (!mth(h, k, left) || !mth(h + k, n - k, right))
        return false;
    return node(left, right, out);
}

void tg_audit_tree_root(const uint8_t (*leaf_hashes)[TG_HASH_LEN], size_t n,
                        uint8_t out[TG_HASH_LEN])
{
    if (!mth(leaf_hashes, n, out))
        memset(out, 0, TG_HASH_LEN);
}

/* Number of hashes in PATH(m, D[n]) (m < n). */
static size_t path_length(size_t m, size_t n)
{
    size_t len = 0;
    while (n > 1) {
        size_t k = split_point(n);
        if (m < k) {
            n = k;
        } else {
            m -= k;
            n -= k;
        }
        len++;
    }
    return len;
}

/*
 * PATH(m, D[0:n]) of RFC 6962 §2.1.1, written leaf side first into path
 * starting at *pos.  The caller has checked that path is long enough.
 */
static bool build_path(const uint8_t (*h)[TG_HASH_LEN], size_t n, size_t m,
                       uint8_t (*path)[TG_HASH_LEN], size_t *pos)
{
    size_t k;

    if (n <= 1)
        return true;
    k = split_point(n);
    if (m < k)
        return build_path(h, k, m, path, pos) && mth(h + k, n - k, path[(*pos)++]);
    return build_path(h + k, n - k, m - k, path, pos) && mth(h, k, path[(*pos)++]);
}

int tg_audit_inclusion_proof(const uint8_t (*leaf_hashes)[TG_HASH_LEN], size_t n, size_t m,
                             uint8_t (*path)[TG_HASH_LEN], size_t max, size_t *len)
{
    size_t need, pos = 0;

    if (m >= n)
        return TG_E_INVAL;
    need = path_length(m, n);
    if (need > max)
        return TG_E_INVAL;
    if (!build_path(leaf_hashes, n, m, path, &pos))
        return TG_E_NOMEM;
    *len = pos;
    return TG_OK;
}

bool tg_audit_inclusion_verify(const uint8_t leaf_hash[TG_HASH_LEN], size_t m, size_t n,
                               const uint8_t (*path)[TG_HASH_LEN], size_t len,
                               const uint8_t root[TG_HASH_LEN])
{
    uint8_t r[TG_HASH_LEN], next[TG_HASH_LEN];
    size_t fn, sn;

    if (m >= n)
        return false;
    fn = m;
    sn = n - 1;
    memcpy(r, leaf_hash, TG_HASH_LEN);
    for (size_t i = 0; i < len; i++) {
        if (sn == 0)
            return false;
        if ((fn & 1) || fn == sn) {
            if (!node(path[i], r, next))
                return false;
            /* Skip the levels where this node is a right-edge node with no sibling. */
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            if (!node(r, path[i], next))
                return false;
        }
        memcpy(r, next, TG_HASH_LEN);
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && memcmp(r, root, TG_HASH_LEN) == 0;
}
