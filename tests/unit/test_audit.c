/*
 * test_audit.c - the audit module: RFC 6962 hashing and inclusion proofs
 * against published test vectors, then the log kept in a real SQLite store
 * (incremental heads, reopen, verify) and tamper tests that edit the
 * database file behind the store's back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "audit/audit.h"
#include "store/store.h"

/*
 * RFC 6962 reference tree, as used by Certificate Transparency
 * implementations: eight leaves and the tree head of each prefix.
 */
static const char *const vec_leaves[8] = {
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
};
static const char *const vec_roots[9] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

/* Inclusion proofs in the same reference tree. */
struct vec_proof {
    size_t m, n, len;
    const char *path[3];
};
static const struct vec_proof vec_proofs[] = {
    {.m = 0,
     .n = 8,
     .len = 3,
     .path = {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
              "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
              "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {.m = 5,
     .n = 8,
     .len = 3,
     .path = {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
              "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
              "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {.m = 2,
     .n = 3,
     .len = 1,
     .path = {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
    {.m = 1,
     .n = 5,
     .len = 3,
     .path = {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
              "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
              "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

/* Decoded reference leaves and their hashes. */
static uint8_t leaf_data[8][16];
static size_t leaf_len[8];
static uint8_t leaf_hashes[8][TG_HASH_LEN];

static void unhex(const char *hex, uint8_t *out, size_t n)
{
    assert_int_equal(tg_hex_decode(hex, out, n), TG_OK);
}

static void assert_hash_hex(const uint8_t h[TG_HASH_LEN], const char *hex)
{
    char got[2 * TG_HASH_LEN + 1];
    tg_hex_encode(h, TG_HASH_LEN, got);
    assert_string_equal(got, hex);
}

static int setup_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < 8; i++) {
        leaf_len[i] = strlen(vec_leaves[i]) / 2;
        if (tg_hex_decode(vec_leaves[i], leaf_data[i], leaf_len[i]))
            return -1;
        tg_audit_leaf_hash(leaf_data[i], leaf_len[i], leaf_hashes[i]);
    }
    return 0;
}

/* ------------------------------------------------------------ primitives */

static void test_single_hashes(void **state)
{
    uint8_t h[TG_HASH_LEN], l[TG_HASH_LEN], r[TG_HASH_LEN], buf[1 + 2 * TG_HASH_LEN];
    (void)state;

    tg_audit_leaf_hash("L123456", 7, h);
    assert_hash_hex(h, "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56");

    /* The node vector hashes 0x01 || "N123" || "N456" as if those were the
     * children; tg_audit_node_hash takes 32-byte children, so check the
     * construction on the vector and then that the function follows it. */
    tg_sha256("\x01N123N456", 9, h);
    assert_hash_hex(h, "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb");
    tg_sha256("L", 1, l);
    tg_sha256("R", 1, r);
    buf[0] = 0x01;
    memcpy(buf + 1, l, TG_HASH_LEN);
    memcpy(buf + 1 + TG_HASH_LEN, r, TG_HASH_LEN);
    tg_sha256(buf, sizeof(buf), h);
    uint8_t got[TG_HASH_LEN];
    tg_audit_node_hash(l, r, got);
    assert_memory_equal(got, h, TG_HASH_LEN);
    /* Order matters, and out may alias an input. */
    tg_audit_node_hash(r, l, got);
    assert_memory_not_equal(got, h, TG_HASH_LEN);
    tg_audit_node_hash(l, r, l);
    assert_memory_equal(l, h, TG_HASH_LEN);

    /* The leaf prefix separates a leaf from a node over the same bytes. */
    tg_audit_leaf_hash(buf + 1, 2 * TG_HASH_LEN, got);
    assert_memory_not_equal(got, h, TG_HASH_LEN);
}

static void test_tree_roots(void **state)
{
    uint8_t h[TG_HASH_LEN];
    (void)state;

    assert_hash_hex(leaf_hashes[0], vec_roots[1]);
    for (size_t n = 0; n <= 8; n++) {
        tg_audit_tree_root((const uint8_t(*)[TG_HASH_LEN])leaf_hashes, n, h);
        assert_hash_hex(h, vec_roots[n]);
    }
}

static void test_known_proofs(void **state)
{
    uint8_t path[8][TG_HASH_LEN], want[3][TG_HASH_LEN], root[TG_HASH_LEN];
    size_t len = 0;
    (void)state;

    for (size_t i = 0; i < TG_ARRAY_LEN(vec_proofs); i++) {
        const struct vec_proof *p = &vec_proofs[i];
        assert_int_equal(tg_audit_inclusion_proof((const uint8_t(*)[TG_HASH_LEN])leaf_hashes, p->n,
                                                  p->m, path, 8, &len),
                         TG_OK);
        assert_int_equal(len, p->len);
        for (size_t j = 0; j < len; j++) {
            unhex(p->path[j], want[j], TG_HASH_LEN);
            assert_memory_equal(path[j], want[j], TG_HASH_LEN);
        }
        unhex(vec_roots[p->n], root, TG_HASH_LEN);
        assert_true(tg_audit_inclusion_verify(leaf_hashes[p->m], p->m, p->n,
                                              (const uint8_t(*)[TG_HASH_LEN])want, p->len, root));
    }
}

static bool verify_path(const uint8_t leaf[TG_HASH_LEN], size_t m, size_t n,
                        uint8_t (*path)[TG_HASH_LEN], size_t len, const uint8_t root[TG_HASH_LEN])
{
    return tg_audit_inclusion_verify(leaf, m, n, (const uint8_t(*)[TG_HASH_LEN])path, len, root);
}

static void test_all_proofs(void **state)
{
    uint8_t path[8][TG_HASH_LEN], root[TG_HASH_LEN], leaf[TG_HASH_LEN];
    size_t len = 0, checked = 0;
    (void)state;

    for (size_t n = 1; n <= 8; n++) {
        unhex(vec_roots[n], root, TG_HASH_LEN);
        for (size_t m = 0; m < n; m++) {
            assert_int_equal(tg_audit_inclusion_proof((const uint8_t(*)[TG_HASH_LEN])leaf_hashes, n,
                                                      m, path, 8, &len),
                             TG_OK);
            memcpy(leaf, leaf_hashes[m], TG_HASH_LEN);
            assert_true(verify_path(leaf, m, n, path, len, root));

            for (size_t j = 0; j < len; j++) {
                for (size_t b = 0; b < TG_HASH_LEN; b += 7) {
                    path[j][b] ^= 0x01;
                    assert_false(verify_path(leaf, m, n, path, len, root));
                    path[j][b] ^= 0x01;
                }
            }
            leaf[31] ^= 0x80;
            assert_false(verify_path(leaf, m, n, path, len, root));
            leaf[31] ^= 0x80;
            root[0] ^= 0x01;
            assert_false(verify_path(leaf, m, n, path, len, root));
            root[0] ^= 0x01;

            /* The proof is bound to m, and its length to n.  (A different n
             * can share the proof's shape, so n itself is not tested.) */
            if (m + 1 < n)
                assert_false(verify_path(leaf, m + 1, n, path, len, root));
            assert_false(verify_path(leaf, m, n, path, len + 1, root));
            if (len > 0)
                assert_false(verify_path(leaf, m, n, path, len - 1, root));
            checked++;
        }
    }
    assert_int_equal(checked, 36);
}

/* Consistency proofs for the reference leaves, as published with Certificate
 * Transparency's RFC 6962 test data (the third node of (6, 8) is MTH of the
 * first four leaves, vec_roots[4]). */
static const struct {
    size_t m, n, len;
    const char *proof[3];
} vec_consistency[] = {
    {1,
     8,
     3,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6,
     8,
     3,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2,
     5,
     2,
     {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

static void test_consistency_proofs(void **state)
{
    (void)state;
    const uint8_t(*lh)[TG_HASH_LEN] = (const uint8_t(*)[TG_HASH_LEN])leaf_hashes;
    uint8_t proof[8][TG_HASH_LEN], want[3][TG_HASH_LEN], r1[TG_HASH_LEN], r2[TG_HASH_LEN];
    size_t len = 0, checked = 0;
    for (size_t i = 0; i < TG_ARRAY_LEN(vec_consistency); i++) {
        assert_int_equal(tg_audit_consistency_proof(lh, vec_consistency[i].n, vec_consistency[i].m,
                                                    proof, 8, &len),
                         TG_OK);
        assert_int_equal(len, vec_consistency[i].len);
        for (size_t j = 0; j < len; j++) {
            unhex(vec_consistency[i].proof[j], want[j], TG_HASH_LEN);
            assert_memory_equal(proof[j], want[j], TG_HASH_LEN);
        }
    }
    /* every pair of sizes up to 8: the proof verifies, and any change breaks it */
    for (size_t n = 1; n <= 8; n++) {
        for (size_t m = 1; m <= n; m++) {
            unhex(vec_roots[m], r1, TG_HASH_LEN);
            unhex(vec_roots[n], r2, TG_HASH_LEN);
            assert_int_equal(tg_audit_consistency_proof(lh, n, m, proof, 8, &len), TG_OK);
            const uint8_t(*pf)[TG_HASH_LEN] = (const uint8_t(*)[TG_HASH_LEN])proof;
            assert_true(tg_audit_consistency_verify(m, r1, n, r2, pf, len));
            for (size_t j = 0; j < len; j++) {
                proof[j][5] ^= 0x04;
                assert_false(tg_audit_consistency_verify(m, r1, n, r2, pf, len));
                proof[j][5] ^= 0x04;
            }
            if (m < n) {
                r1[0] ^= 1; /* an old head the new tree does not extend */
                assert_false(tg_audit_consistency_verify(m, r1, n, r2, pf, len));
                r1[0] ^= 1;
                r2[9] ^= 1;
                assert_false(tg_audit_consistency_verify(m, r1, n, r2, pf, len));
                r2[9] ^= 1;
                if (len)
                    assert_false(tg_audit_consistency_verify(m, r1, n, r2, pf, len - 1));
            }
            checked++;
        }
    }
    assert_int_equal(checked, 36);
    /* a tree whose second leaf was rewritten does not extend the original */
    uint8_t other[8][TG_HASH_LEN];
    memcpy(other, leaf_hashes, sizeof(other));
    tg_audit_leaf_hash("rewritten", 9, other[1]);
    tg_audit_tree_root((const uint8_t(*)[TG_HASH_LEN])other, 8, r2);
    unhex(vec_roots[3], r1, TG_HASH_LEN);
    assert_int_equal(
        tg_audit_consistency_proof((const uint8_t(*)[TG_HASH_LEN])other, 8, 3, proof, 8, &len),
        TG_OK);
    assert_false(
        tg_audit_consistency_verify(3, r1, 8, r2, (const uint8_t(*)[TG_HASH_LEN])proof, len));
    assert_int_equal(tg_audit_consistency_proof(lh, 3, 4, proof, 8, &len), TG_E_INVAL);
}

/* Signed checkpoints: made and checked; a changed size, root, signature,
 * origin or key is refused; the key is kept in the directory. */
static void test_checkpoints(void **state)
{
    (void)state;
    char dir[] = "/tmp/tg-ckpt-XXXXXX", err[256], vkey[256], vkey2[256];
    assert_non_null(mkdtemp(dir));
    struct tg_audit_signer *s = NULL, *again = NULL;
    assert_int_equal(tg_audit_signer_open(dir, "bank.example/trustgate", &s, err, sizeof(err)),
                     TG_OK);
    tg_audit_signer_vkey(s, vkey, sizeof(vkey));
    assert_true(tg_str_has_prefix(vkey, "bank.example/trustgate+"));
    uint8_t root[TG_HASH_LEN], got[TG_HASH_LEN];
    unhex(vec_roots[7], root, TG_HASH_LEN);
    struct tg_buf b;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    assert_int_equal(tg_audit_checkpoint(s, 7, root, &b), TG_OK);
    /* the body, then a blank line, then the signature line */
    assert_true(
        tg_str_has_prefix(b.data, "bank.example/trustgate\n7\n3bib5AOAnjJXUNPSY814kpwpQre"));
    assert_non_null(strstr(b.data, "\n\n\xe2\x80\x94 bank.example/trustgate "));
    uint64_t size = 0;
    assert_int_equal(tg_audit_checkpoint_verify(b.data, b.len, vkey, &size, got, err, sizeof(err)),
                     TG_OK);
    assert_int_equal(size, 7);
    assert_memory_equal(got, root, TG_HASH_LEN);
    /* the same key after reopening */
    assert_int_equal(tg_audit_signer_open(dir, "bank.example/trustgate", &again, err, sizeof(err)),
                     TG_OK);
    tg_audit_signer_vkey(again, vkey2, sizeof(vkey2));
    assert_string_equal(vkey, vkey2);
    tg_audit_signer_free(again);
    /* tampering */
    char *forged = tg_strdup(b.data);
    forged[strlen("bank.example/trustgate\n")] = '8'; /* size 8 */
    assert_int_equal(tg_audit_checkpoint_verify(forged, b.len, vkey, &size, got, err, sizeof(err)),
                     TG_E_FORBIDDEN);
    memcpy(forged, b.data, b.len + 1);
    char *r64 = strstr(forged, "\n7\n") + 3;
    r64[0] = r64[0] == 'A' ? 'B' : 'A'; /* another root */
    assert_int_equal(tg_audit_checkpoint_verify(forged, b.len, vkey, &size, got, err, sizeof(err)),
                     TG_E_FORBIDDEN);
    memcpy(forged, b.data, b.len + 1);
    /* the signature: a character well inside it (the last one before the padding
     * also carries bits base64 ignores) */
    forged[b.len - 10] = forged[b.len - 10] == 'A' ? 'B' : 'A';
    assert_int_equal(tg_audit_checkpoint_verify(forged, b.len, vkey, &size, got, err, sizeof(err)),
                     TG_E_FORBIDDEN);
    tg_free(forged);
    /* another log's key */
    char dir2[] = "/tmp/tg-ckpt-XXXXXX";
    assert_non_null(mkdtemp(dir2));
    assert_int_equal(tg_audit_signer_open(dir2, "bank.example/trustgate", &again, err, sizeof(err)),
                     TG_OK);
    tg_audit_signer_vkey(again, vkey2, sizeof(vkey2));
    assert_string_not_equal(vkey, vkey2);
    assert_int_equal(tg_audit_checkpoint_verify(b.data, b.len, vkey2, &size, got, err, sizeof(err)),
                     TG_E_FORBIDDEN);
    tg_audit_signer_free(again);
    assert_int_equal(
        tg_audit_checkpoint_verify(b.data, b.len, "nonsense", &size, got, err, sizeof(err)),
        TG_E_PARSE);
    tg_buf_free(&b);
    tg_audit_signer_free(s);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s %s", dir, dir2);
    assert_int_equal(system(cmd), 0);
}

static void test_proof_errors(void **state)
{
    uint8_t path[8][TG_HASH_LEN], root[TG_HASH_LEN];
    size_t len = 99;
    const uint8_t(*lh)[TG_HASH_LEN] = (const uint8_t(*)[TG_HASH_LEN])leaf_hashes;
    (void)state;

    assert_int_equal(tg_audit_inclusion_proof(lh, 8, 8, path, 8, &len), TG_E_INVAL);
    assert_int_equal(tg_audit_inclusion_proof(lh, 0, 0, path, 8, &len), TG_E_INVAL);
    assert_int_equal(tg_audit_inclusion_proof(lh, 8, 3, path, 2, &len), TG_E_INVAL);
    assert_int_equal(len, 99);
    /* A one-leaf tree: the empty path, and the root is the leaf hash. */
    assert_int_equal(tg_audit_inclusion_proof(lh, 1, 0, NULL, 0, &len), TG_OK);
    assert_int_equal(len, 0);
    assert_true(tg_audit_inclusion_verify(leaf_hashes[0], 0, 1, NULL, 0, leaf_hashes[0]));
    unhex(vec_roots[8], root, TG_HASH_LEN);
    assert_false(tg_audit_inclusion_verify(leaf_hashes[0], 8, 8, NULL, 0, root));
    assert_false(tg_audit_inclusion_verify(leaf_hashes[0], 0, 0, NULL, 0, root));

    /* A proof for (0, 4) rebuilds the head of 4 leaves, yet a verifier told
     * n = 5 expects one more level: it must reject, not accept a stale head. */
    assert_int_equal(tg_audit_inclusion_proof(lh, 4, 0, path, 8, &len), TG_OK);
    assert_int_equal(len, 2);
    unhex(vec_roots[4], root, TG_HASH_LEN);
    assert_true(verify_path(leaf_hashes[0], 0, 4, path, len, root));
    assert_false(verify_path(leaf_hashes[0], 0, 5, path, len, root));
}

/* ------------------------------------------------------------ store-backed */

struct env {
    char dir[64];
    char path[96];
    char uri[128];
    struct tg_store *st;
    struct tg_audit *a;
};

static int env_open_store(struct env *e)
{
    char err[256] = "";
    int rc = tg_store_open(e->uri, &e->st, err, sizeof(err));
    if (rc)
        print_error("tg_store_open(%s): %s\n", e->uri, err);
    return rc;
}

static void env_reopen(struct env *e)
{
    tg_audit_close(e->a);
    e->a = NULL;
    tg_store_close(e->st);
    e->st = NULL;
    assert_int_equal(env_open_store(e), TG_OK);
}

static int teardown_store(void **state);

static int setup_store(void **state)
{
    struct env *e = tg_calloc(1, sizeof(*e));
    if (!e)
        return -1;
    snprintf(e->dir, sizeof(e->dir), "/tmp/tg_audit_XXXXXX");
    if (!mkdtemp(e->dir))
        return -1;
    snprintf(e->path, sizeof(e->path), "%s/audit.db", e->dir);
    snprintf(e->uri, sizeof(e->uri), "sqlite:%s", e->path);
    *state = e;
    if (env_open_store(e)) {
        teardown_store(state);
        return -1;
    }
    return 0;
}

static int teardown_store(void **state)
{
    struct env *e = *state;
    char p[160];
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};

    tg_audit_close(e->a);
    tg_store_close(e->st);
    for (size_t i = 0; i < TG_ARRAY_LEN(suffix); i++) {
        snprintf(p, sizeof(p), "%s%s", e->path, suffix[i]);
        unlink(p);
    }
    rmdir(e->dir);
    tg_free(e);
    return 0;
}

/* The index the append numbered seq got, once the store committed it. */
static uint64_t committed_index(struct env *e, uint64_t seq)
{
    uint64_t idx = UINT64_MAX;
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_audit_index(e->a, seq, &idx), TG_OK);
    return idx;
}

static void append_reference(struct env *e, size_t from, size_t to)
{
    uint8_t h[TG_HASH_LEN];
    uint64_t seq = 0;

    for (size_t i = from; i < to; i++) {
        assert_int_equal(tg_audit_append(e->a, leaf_data[i], leaf_len[i], &seq), TG_OK);
        assert_int_equal(committed_index(e, seq), i);
        assert_int_equal(tg_audit_size(e->a), i + 1);
        tg_audit_root(e->a, h);
        assert_hash_hex(h, vec_roots[i + 1]);
    }
}

static void test_store_roots(void **state)
{
    struct env *e = *state;
    struct tg_audit_row row;
    uint8_t h[TG_HASH_LEN];
    uint64_t n = 99;

    assert_int_equal(tg_audit_open(e->st, &e->a), TG_OK);
    assert_int_equal(tg_audit_size(e->a), 0);
    tg_audit_root(e->a, h);
    assert_hash_hex(h, vec_roots[0]);
    append_reference(e, 0, 8);

    /* What reached the store: data, leaf hash and the head after each leaf. */
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_store_audit_size(e->st, &n), TG_OK);
    assert_int_equal(n, 8);
    for (uint64_t i = 0; i < 8; i++) {
        assert_int_equal(tg_store_audit_get(e->st, i, &row), TG_OK);
        assert_int_equal(row.index, i);
        assert_int_equal(row.len, leaf_len[i]);
        if (row.len)
            assert_memory_equal(row.data, leaf_data[i], row.len);
        assert_memory_equal(row.leaf_hash, leaf_hashes[i], TG_HASH_LEN);
        assert_hash_hex(row.root, vec_roots[i + 1]);
        assert_true(row.ts_ms > 1600000000000LL);
        tg_free(row.data);
    }
}

static void test_reopen_continues(void **state)
{
    struct env *e = *state;
    uint8_t h[TG_HASH_LEN];

    assert_int_equal(tg_audit_open(e->st, &e->a), TG_OK);
    append_reference(e, 0, 3);
    /* Reopen the log on the same store without flushing: open must see it. */
    tg_audit_close(e->a);
    assert_int_equal(tg_audit_open(e->st, &e->a), TG_OK);
    assert_int_equal(tg_audit_size(e->a), 3);
    append_reference(e, 3, 5);

    env_reopen(e);
    assert_int_equal(tg_audit_open(e->st, &e->a), TG_OK);
    assert_int_equal(tg_audit_size(e->a), 5);
    tg_audit_root(e->a, h);
    assert_hash_hex(h, vec_roots[5]);
    append_reference(e, 5, 8);
}

static void test_append_json(void **state)
{
    struct env *e = *state;
    struct tg_audit_row row;
    uint64_t idx = 99;
    json_t *rec =
        json_pack("{s:i, s:[i,i], s:{s:s, s:n}}", "zeta", 1, "alpha", 1, 2, "mid", "b", "x", "a");
    assert_non_null(rec);

    assert_int_equal(tg_audit_open(e->st, &e->a), TG_OK);
    assert_int_equal(tg_audit_append_json(e->a, rec, &idx), TG_OK);
    assert_int_equal(committed_index(e, idx), 0);
    assert_int_equal(tg_audit_append_json(e->a, NULL, &idx), TG_E_INVAL);
    assert_int_equal(tg_audit_append(e->a, NULL, 3, &idx), TG_E_INVAL);
    assert_int_equal(tg_audit_size(e->a), 1);
    /* An empty leaf may come as (NULL, 0). */
    assert_int_equal(tg_audit_append(e->a, NULL, 0, &idx), TG_OK);
    assert_int_equal(committed_index(e, idx), 1);
    struct tg_audit_report rep;
    assert_int_equal(tg_audit_verify(e->st, &rep), TG_OK);
    assert_int_equal(rep.size, 2);
    json_decref(rec);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_store_audit_get(e->st, 0, &row), TG_OK);
    const char *want = "{\"alpha\":[1,2],\"mid\":{\"a\":null,\"b\":\"x\"},\"zeta\":1}";
    assert_int_equal(row.len, strlen(want));
    assert_memory_equal(row.data, want, row.len);
    tg_free(row.data);
}

static void test_append_failure_unchanged(void **state)
{
    struct env *e = *state;
    uint8_t before[TG_HASH_LEN], after[TG_HASH_LEN];
    uint64_t idx = 77;
    int rc;

    assert_int_equal(tg_audit_open(e->st, &e->a), TG_OK);
    append_reference(e, 0, 4);
    tg_audit_root(e->a, before);

    /* The store must copy the leaf, so it cannot queue it without memory. */
    tg_mem_fail_after(0);
    rc = tg_audit_append(e->a, leaf_data[4], leaf_len[4], &idx);
    tg_mem_fail_after(-1);
    assert_int_not_equal(rc, TG_OK);
    assert_int_equal(idx, 77);
    assert_int_equal(tg_audit_size(e->a), 4);
    tg_audit_root(e->a, after);
    assert_memory_equal(before, after, TG_HASH_LEN);

    append_reference(e, 4, 8);
    env_reopen(e);
    assert_int_equal(tg_audit_open(e->st, &e->a), TG_OK);
    assert_int_equal(tg_audit_size(e->a), 8);
}

/* xorshift64*: a fixed pseudo-random sequence so failures reproduce. */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void test_random_log(void **state)
{
    struct env *e = *state;
    enum { N = 1000 };
    uint8_t(*hashes)[TG_HASH_LEN] = tg_calloc(N, TG_HASH_LEN);
    uint8_t data[600], want[TG_HASH_LEN], got[TG_HASH_LEN];
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    struct tg_audit_report rep;
    assert_non_null(hashes);

    assert_int_equal(tg_audit_open(e->st, &e->a), TG_OK);
    for (size_t i = 0; i < N; i++) {
        size_t len = (size_t)(next_rand(&seed) % sizeof(data));
        for (size_t j = 0; j < len; j++)
            data[j] = (uint8_t)next_rand(&seed);
        tg_audit_leaf_hash(data, len, hashes[i]);
        assert_int_equal(tg_audit_append(e->a, data, len, NULL), TG_OK);
        if (i < 130 || i % 61 == 0 || i == N - 1) {
            tg_audit_tree_root((const uint8_t(*)[TG_HASH_LEN])hashes, i + 1, want);
            tg_audit_root(e->a, got);
            assert_memory_equal(got, want, TG_HASH_LEN);
        }
    }

    /* verify recomputes every stored head; then a reopened log agrees. */
    assert_int_equal(tg_audit_verify(e->st, &rep), TG_OK);
    assert_int_equal(rep.size, N);
    assert_int_equal(rep.first_bad, -1);
    assert_memory_equal(rep.root, want, TG_HASH_LEN);
    env_reopen(e);
    assert_int_equal(tg_audit_open(e->st, &e->a), TG_OK);
    assert_int_equal(tg_audit_size(e->a), N);
    tg_audit_root(e->a, got);
    assert_memory_equal(got, want, TG_HASH_LEN);

    /* Proofs from the stored leaf hashes check against the log's head. */
    uint8_t path[16][TG_HASH_LEN];
    size_t len = 0;
    for (size_t m = 0; m < N; m += 97) {
        assert_int_equal(
            tg_audit_inclusion_proof((const uint8_t(*)[TG_HASH_LEN])hashes, N, m, path, 16, &len),
            TG_OK);
        assert_int_equal(len, 10);
        assert_true(verify_path(hashes[m], m, N, path, len, got));
    }
    tg_free(hashes);
}

static void test_verify_intact(void **state)
{
    struct env *e = *state;
    struct tg_audit_report rep;

    assert_int_equal(tg_audit_verify(e->st, &rep), TG_OK);
    assert_int_equal(rep.size, 0);
    assert_int_equal(rep.first_bad, -1);
    assert_hash_hex(rep.root, vec_roots[0]);

    assert_int_equal(tg_audit_open(e->st, &e->a), TG_OK);
    append_reference(e, 0, 8);
    /* verify flushes first, so queued leaves count. */
    assert_int_equal(tg_audit_verify(e->st, &rep), TG_OK);
    assert_int_equal(rep.size, 8);
    assert_int_equal(rep.first_bad, -1);
    assert_string_equal(rep.reason, "");
    assert_hash_hex(rep.root, vec_roots[8]);
}

/* ------------------------------------------------------------ tampering */

/* Build the eight-leaf reference log, close the store, and open its file
 * directly as an attacker with write access to the database would. */
static sqlite3 *tamper_begin(struct env *e)
{
    sqlite3 *db = NULL;

    assert_int_equal(tg_audit_open(e->st, &e->a), TG_OK);
    append_reference(e, 0, 8);
    tg_audit_close(e->a);
    e->a = NULL;
    tg_store_close(e->st);
    e->st = NULL;
    assert_int_equal(sqlite3_open(e->path, &db), SQLITE_OK);
    return db;
}

static void tamper_exec(sqlite3 *db, const char *sql, const void *blob, int len)
{
    sqlite3_stmt *stmt = NULL;

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    if (blob)
        assert_int_equal(sqlite3_bind_blob(stmt, 1, blob, len, SQLITE_TRANSIENT), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_finalize(stmt);
}

static void tamper_end(struct env *e, sqlite3 *db)
{
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    assert_int_equal(env_open_store(e), TG_OK);
}

static void test_tamper_data(void **state)
{
    struct env *e = *state;
    struct tg_audit_report rep;
    static const uint8_t forged[] = {0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x58};

    sqlite3 *db = tamper_begin(e);
    tamper_exec(db, "UPDATE audit SET data = ?1 WHERE idx = 5", forged, (int)sizeof(forged));
    tamper_end(e, db);

    assert_int_equal(tg_audit_verify(e->st, &rep), TG_E_CONFLICT);
    assert_int_equal(rep.size, 8);
    assert_int_equal(rep.first_bad, 5);
    assert_string_equal(rep.reason, "leaf 5: data does not match its stored hash");
    assert_hash_hex(rep.root, vec_roots[5]);
    assert_int_equal(tg_audit_open(e->st, &e->a), TG_E_CONFLICT);
    assert_null(e->a);
}

static void test_tamper_data_and_hash(void **state)
{
    struct env *e = *state;
    struct tg_audit_report rep;
    static const uint8_t forged[] = {0x20, 0x22};
    uint8_t h[TG_HASH_LEN];

    tg_audit_leaf_hash(forged, sizeof(forged), h);
    sqlite3 *db = tamper_begin(e);
    tamper_exec(db, "UPDATE audit SET data = ?1 WHERE idx = 3", forged, (int)sizeof(forged));
    tamper_exec(db, "UPDATE audit SET leaf_hash = ?1 WHERE idx = 3", h, TG_HASH_LEN);
    tamper_end(e, db);

    assert_int_equal(tg_audit_verify(e->st, &rep), TG_E_CONFLICT);
    assert_int_equal(rep.first_bad, 3);
    assert_string_equal(rep.reason, "leaf 3: tree head differs from the recomputed one");
    assert_hash_hex(rep.root, vec_roots[3]);
    assert_int_equal(tg_audit_open(e->st, &e->a), TG_E_CONFLICT);
    assert_null(e->a);
}

static void test_tamper_leaf_hash(void **state)
{
    struct env *e = *state;
    struct tg_audit_report rep;
    uint8_t h[TG_HASH_LEN];

    /* Only the stored leaf hash changes; the data and heads still agree, so
     * the mismatch between data and hash is what both must notice. */
    memcpy(h, leaf_hashes[4], TG_HASH_LEN);
    h[0] ^= 0x01;
    sqlite3 *db = tamper_begin(e);
    tamper_exec(db, "UPDATE audit SET leaf_hash = ?1 WHERE idx = 4", h, TG_HASH_LEN);
    tamper_end(e, db);

    assert_int_equal(tg_audit_verify(e->st, &rep), TG_E_CONFLICT);
    assert_int_equal(rep.first_bad, 4);
    assert_string_equal(rep.reason, "leaf 4: data does not match its stored hash");
    assert_int_equal(tg_audit_open(e->st, &e->a), TG_E_CONFLICT);
}

static void test_tamper_head(void **state)
{
    struct env *e = *state;
    struct tg_audit_report rep;
    uint8_t h[TG_HASH_LEN];

    /* Only a stored head changes: verify names that leaf, while open, which
     * checks only the last head, still accepts the log. */
    unhex(vec_roots[1], h, TG_HASH_LEN);
    sqlite3 *db = tamper_begin(e);
    tamper_exec(db, "UPDATE audit SET root = ?1 WHERE idx = 6", h, TG_HASH_LEN);
    tamper_end(e, db);

    assert_int_equal(tg_audit_verify(e->st, &rep), TG_E_CONFLICT);
    assert_int_equal(rep.first_bad, 6);
    assert_string_equal(rep.reason, "leaf 6: tree head differs from the recomputed one");
    assert_int_equal(tg_audit_open(e->st, &e->a), TG_OK);
}

static void test_tamper_gap(void **state)
{
    struct env *e = *state;
    struct tg_audit_report rep;

    sqlite3 *db = tamper_begin(e);
    tamper_exec(db, "DELETE FROM audit WHERE idx = 2", NULL, 0);
    tamper_end(e, db);

    assert_int_equal(tg_audit_verify(e->st, &rep), TG_E_CONFLICT);
    assert_int_equal(rep.first_bad, 2);
    assert_string_equal(rep.reason, "leaf 2: missing from the store");
    assert_int_equal(tg_audit_open(e->st, &e->a), TG_E_CONFLICT);
}

static void test_tamper_truncate(void **state)
{
    struct env *e = *state;
    struct tg_audit_report rep;
    uint8_t h[TG_HASH_LEN];

    /* Dropping the newest leaf leaves a shorter log that is consistent in
     * itself: only a head published elsewhere can reveal it. */
    sqlite3 *db = tamper_begin(e);
    tamper_exec(db, "DELETE FROM audit WHERE idx = 7", NULL, 0);
    tamper_end(e, db);

    assert_int_equal(tg_audit_verify(e->st, &rep), TG_OK);
    assert_int_equal(rep.size, 7);
    assert_int_equal(rep.first_bad, -1);
    assert_hash_hex(rep.root, vec_roots[7]);
    assert_int_equal(tg_audit_open(e->st, &e->a), TG_OK);
    assert_int_equal(tg_audit_size(e->a), 7);
    tg_audit_root(e->a, h);
    assert_hash_hex(h, vec_roots[7]);
}

#define STORE_TEST(f) cmocka_unit_test_setup_teardown(f, setup_store, teardown_store)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_hashes),
        cmocka_unit_test(test_tree_roots),
        cmocka_unit_test(test_consistency_proofs),
        cmocka_unit_test(test_checkpoints),
        cmocka_unit_test(test_known_proofs),
        cmocka_unit_test(test_all_proofs),
        cmocka_unit_test(test_proof_errors),
        STORE_TEST(test_store_roots),
        STORE_TEST(test_reopen_continues),
        STORE_TEST(test_append_json),
        STORE_TEST(test_append_failure_unchanged),
        STORE_TEST(test_random_log),
        STORE_TEST(test_verify_intact),
        STORE_TEST(test_tamper_data),
        STORE_TEST(test_tamper_data_and_hash),
        STORE_TEST(test_tamper_leaf_hash),
        STORE_TEST(test_tamper_head),
        STORE_TEST(test_tamper_gap),
        STORE_TEST(test_tamper_truncate),
    };
    return cmocka_run_group_tests(tests, setup_vectors, NULL);
}
