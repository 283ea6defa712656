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

/*
 * SUBPROOF(m, D[0:n], b) of RFC 6962 §2.1.2: the nodes that prove the tree
 * of the first m leaves is a prefix of the tree of all n, appended at *pos
 * (up to max).  b says whether D[0:m] is a complete subtree whose root the
 * verifier already has.
 */
static bool subproof(const uint8_t (*h)[TG_HASH_LEN], size_t m, size_t n, bool b,
                     uint8_t (*proof)[TG_HASH_LEN], size_t max, size_t *pos)
{
    if (m == n) {
        if (b)
            return true;
        if (*pos >= max)
            return false;
        return mth(h, n, proof[(*pos)++]);
    }
    size_t k = split_point(n);
    if (m <= k) {
        if (!subproof(h, m, k, b, proof, max, pos) || *pos >= max)
            return false;
        return mth(h + k, n - k, proof[(*pos)++]);
    }
    if (!subproof(h + k, m - k, n - k, false, proof, max, pos) || *pos >= max)
        return false;
    return mth(h, k, proof[(*pos)++]);
}

int tg_audit_consistency_proof(const uint8_t (*leaf_hashes)[TG_HASH_LEN], size_t n, size_t m,
                               uint8_t (*proof)[TG_HASH_LEN], size_t max, size_t *len)
{
    size_t pos = 0;
    if (m > n)
        return TG_E_INVAL;
    if (m == 0 || m == n) {
        *len = 0; /* nothing to prove: the empty tree, or the same tree */
        return TG_OK;
    }
    if (!subproof(leaf_hashes, m, n, true, proof, max, &pos))
        return TG_E_INVAL;
    *len = pos;
    return TG_OK;
}

/* RFC 9162 §2.1.4.2: verify a consistency proof between two tree heads. */
bool tg_audit_consistency_verify(size_t m, const uint8_t old_root[TG_HASH_LEN], size_t n,
                                 const uint8_t new_root[TG_HASH_LEN],
                                 const uint8_t (*proof)[TG_HASH_LEN], size_t len)
{
    uint8_t fr[TG_HASH_LEN], sr[TG_HASH_LEN], tmp[TG_HASH_LEN];
    if (m > n)
        return false;
    if (m == n)
        return len == 0 && memcmp(old_root, new_root, TG_HASH_LEN) == 0;
    if (m == 0)
        return len == 0; /* the empty tree is a prefix of every tree */
    if (len == 0)
        return false;
    /* a first tree that is a complete subtree: its root is the proof's first node */
    size_t first = 0;
    const uint8_t *start = proof[0];
    if ((m & (m - 1)) == 0) {
        start = old_root;
    } else {
        first = 1;
    }
    size_t fn = m - 1, sn = n - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    memcpy(fr, start, TG_HASH_LEN);
    memcpy(sr, start, TG_HASH_LEN);
    for (size_t i = first; i < len; i++) {
        const uint8_t *c = proof[i];
        if (sn == 0)
            return false;
        if ((fn & 1) || fn == sn) {
            if (!node(c, fr, tmp))
                return false;
            memcpy(fr, tmp, TG_HASH_LEN);
            if (!node(c, sr, tmp))
                return false;
            memcpy(sr, tmp, TG_HASH_LEN);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            if (!node(sr, c, tmp))
                return false;
            memcpy(sr, tmp, TG_HASH_LEN);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && memcmp(fr, old_root, TG_HASH_LEN) == 0 &&
           memcmp(sr, new_root, TG_HASH_LEN) == 0;
}
