/*
 * audit.h - the tamper-evident audit log: an append-only RFC 6962 Merkle
 * tree whose leaves are canonical JSON records, kept in the store.
 *
 * Hashing is exactly RFC 6962 §2.1: leaf hash = SHA-256(0x00 || data),
 * node hash = SHA-256(0x01 || left || right), MTH({}) = SHA-256("").  The
 * store's writer keeps the compact range (one subtree root per set bit of
 * the size, range.h), so an append costs O(log n) hashes and no reads.
 *
 * Every leaf is stored with the tree head after it, so verification can say
 * which leaf is the first one whose data, hash or head no longer agrees.
 *
 * Threading: a tg_audit is used from one thread.  It borrows the store,
 * which must outlive it.
 */
#ifndef TG_AUDIT_H
#define TG_AUDIT_H

#include "core/core.h"

struct tg_store;
struct tg_audit;

#define TG_HASH_LEN TG_SHA256_LEN

/* RFC 6962 primitives. */
void tg_audit_leaf_hash(const void *data, size_t len, uint8_t out[TG_HASH_LEN]);
void tg_audit_node_hash(const uint8_t left[TG_HASH_LEN], const uint8_t right[TG_HASH_LEN],
                        uint8_t out[TG_HASH_LEN]);
/* MTH of n leaves given their leaf hashes (n may be 0). */
void tg_audit_tree_root(const uint8_t (*leaf_hashes)[TG_HASH_LEN], size_t n,
                        uint8_t out[TG_HASH_LEN]);

/*
 * Inclusion proof PATH(m, D[n]) of RFC 6962 §2.1.1 from the n leaf hashes.
 * Writes at most max hashes to path and their count to *len.
 * TG_E_INVAL when m >= n or max is too small.
 */
int tg_audit_inclusion_proof(const uint8_t (*leaf_hashes)[TG_HASH_LEN], size_t n, size_t m,
                             uint8_t (*path)[TG_HASH_LEN], size_t max, size_t *len);
/* Check an inclusion proof against a root (RFC 9162 §2.1.3.2). */
bool tg_audit_inclusion_verify(const uint8_t leaf_hash[TG_HASH_LEN], size_t m, size_t n,
                               const uint8_t (*path)[TG_HASH_LEN], size_t len,
                               const uint8_t root[TG_HASH_LEN]);

/*
 * Consistency proof PROOF(m, D[n]) of RFC 6962 §2.1.2: that the tree of the
 * first m leaves is a prefix of the tree of all n.  Empty when m is 0 or n.
 * TG_E_INVAL when m > n or max is too small.
 */
int tg_audit_consistency_proof(const uint8_t (*leaf_hashes)[TG_HASH_LEN], size_t n, size_t m,
                               uint8_t (*proof)[TG_HASH_LEN], size_t max, size_t *len);
/* Check one (RFC 9162 §2.1.4.2): the tree of size m with old_root grew into
 * the tree of size n with new_root by appending only. */
bool tg_audit_consistency_verify(size_t m, const uint8_t old_root[TG_HASH_LEN], size_t n,
                                 const uint8_t new_root[TG_HASH_LEN],
                                 const uint8_t (*proof)[TG_HASH_LEN], size_t len);

/*
 * Signed tree heads (checkpoint.c), in the C2SP tlog-checkpoint form:
 * "ORIGIN\nSIZE\nBASE64(ROOT)\n\n— NAME BASE64(KEYID || SIG)\n", signed with
 * Ed25519.  The signer's key lives in DIR/audit-ed25519.pem (made, 0600, on
 * first use); its name is the log's origin.  The verifier key is
 * "NAME+KEYID+BASE64(0x01 || PUBLIC KEY)" (C2SP signed-note).
 */
struct tg_audit_signer;
int tg_audit_signer_open(const char *dir, const char *name, struct tg_audit_signer **out, char *err,
                         size_t errlen);
void tg_audit_signer_free(struct tg_audit_signer *s);
void tg_audit_signer_vkey(const struct tg_audit_signer *s, char *out, size_t outlen);
/* Append the signed checkpoint of the tree of size leaves with root to out. */
int tg_audit_checkpoint(const struct tg_audit_signer *s, uint64_t size,
                        const uint8_t root[TG_HASH_LEN], struct tg_buf *out);
/* Check a checkpoint against a verifier key; its size and root on success,
 * else an error (TG_E_PARSE, TG_E_FORBIDDEN for a bad signature) and err. */
int tg_audit_checkpoint_verify(const char *note, size_t len, const char *vkey, uint64_t *size,
                               uint8_t root[TG_HASH_LEN], char *err, size_t errlen);

/*
 * Open the log kept in st: reads every stored leaf hash once to rebuild the
 * compact range (and checks that the last stored head matches).  Returns
 * TG_E_CONFLICT if the stored leaves do not reproduce the stored head.
 */
int tg_audit_open(struct tg_store *st, struct tg_audit **out);
void tg_audit_close(struct tg_audit *a);

/*
 * Append a leaf: hashes data and queues it (copied) for the store, which
 * gives it the log's next index and the tree head after it when it
 * commits; on a store several nodes share, in the order of their commits.
 * *seq (may be NULL) receives the write's sequence number, for
 * tg_audit_index once it is committed.  Fails with TG_E_NOMEM or the
 * store's sticky write error.
 */
int tg_audit_append(struct tg_audit *a, const void *data, size_t len, uint64_t *seq);
/* Append the canonical JSON form (tg_json_canonical) of record. */
int tg_audit_append_json(struct tg_audit *a, const json_t *record, uint64_t *seq);
/* The index a committed append got (tg_store_audit_index). */
int tg_audit_index(struct tg_audit *a, uint64_t seq, uint64_t *index);
/* The committed log's size and tree head, as the store has them now. */
int tg_audit_head(struct tg_audit *a, uint64_t *size, uint8_t root[TG_HASH_LEN]);
/* The same once every write queued is committed (it waits for the store:
 * for tools and tests, not the event loop); 0 and the empty tree's head
 * when the store cannot say. */
uint64_t tg_audit_size(struct tg_audit *a);
void tg_audit_root(struct tg_audit *a, uint8_t out[TG_HASH_LEN]);
/*
 * Recompute the whole tree from the store and compare every leaf's hash and
 * every stored head.  TG_OK when all agree; TG_E_CONFLICT when not, with
 * rep->first_bad the first leaf that fails and rep->reason saying how.
 */
struct tg_audit_report {
    uint64_t size;
    int64_t first_bad; /* -1 when the log is intact */
    char reason[160];
    uint8_t root[TG_HASH_LEN];
};
int tg_audit_verify(struct tg_store *st, struct tg_audit_report *rep);

#endif
