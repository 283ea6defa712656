/*
 * audit.c - the audit log kept in the store: open (rebuild the tree head
 * from the stored leaves), append, and verify (find the first stored leaf
 * whose data, hash or tree head no longer agrees).
 *
 * A leaf gets its index and tree head where it is committed: the store's
 * writer keeps the compact range of the tree (range.h) and, on a store
 * several nodes share, takes it from the database under a lock, so the
 * leaves of every node make one log in one order.  Open and verify
 * rebuild the range from the stored leaves to check them.
 *
 * The hashing primitives (merkle.c) signal a libcrypto failure with an
 * all-zero hash; everything here checks for it so a wrong hash is never
 * queued for the store.
 */
#include "audit/audit.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "audit/range.h"
#include "store/store.h"

struct tg_audit {
    struct tg_store *st;
};

/* ------------------------------------------------------------ open */

struct open_ctx {
    struct tg_range range;
    uint8_t last_root[TG_HASH_LEN];
    int64_t bad; /* first leaf that failed, or -1 */
    int err;
};

static int open_cb(void *arg, const struct tg_audit_row *row)
{
    struct open_ctx *c = arg;
    uint8_t h[TG_HASH_LEN];

    if (row->index != c->range.size) {
        c->bad = (int64_t)c->range.size;
        c->err = TG_E_CONFLICT;
        return c->err;
    }
    tg_audit_leaf_hash(row->data, row->len, h);
    if (tg_hash_failed(h)) {
        c->err = TG_E_NOMEM;
        return c->err;
    }
    /* The head is rebuilt from the data, so a rewritten leaf_hash column
     * would otherwise pass unnoticed; this also names the leaf. */
    if (memcmp(h, row->leaf_hash, TG_HASH_LEN) != 0) {
        c->bad = (int64_t)row->index;
        c->err = TG_E_CONFLICT;
        return c->err;
    }
    c->err = tg_range_push(&c->range, h);
    if (c->err)
        return c->err;
    memcpy(c->last_root, row->root, TG_HASH_LEN);
    return 0;
}

/* Read the whole stored log into c and check it reproduces its last head;
 * root receives the head.  TG_E_CONFLICT (with c->bad) when it does not. */
static int rebuild(struct tg_store *st, struct open_ctx *c, uint8_t root[TG_HASH_LEN])
{
    uint64_t n = 0;
    int rc;

    /* Leaves queued by an earlier tg_audit on this store must be visible. */
    rc = tg_store_flush(st);
    if (!rc)
        rc = tg_store_audit_size(st, &n);
    if (!rc)
        rc = tg_store_audit_scan(st, 0, open_cb, c);
    if (rc && c->err)
        rc = c->err;
    if (rc)
        return rc;
    if (c->range.size != n) {
        c->bad = (int64_t)TG_MIN(c->range.size, n);
        return TG_E_CONFLICT;
    }
    rc = tg_range_root(&c->range, root);
    if (rc)
        return rc;
    if (n > 0 && memcmp(root, c->last_root, TG_HASH_LEN) != 0) {
        c->bad = (int64_t)n - 1;
        return TG_E_CONFLICT;
    }
    return TG_OK;
}

int tg_audit_open(struct tg_store *st, struct tg_audit **out)
{
    struct tg_audit *a = NULL;
    struct open_ctx c;
    uint8_t root[TG_HASH_LEN];
    int rc;

    tg_range_init(&c.range);
    c.bad = -1;
    c.err = TG_OK;
    a = tg_calloc(1, sizeof(*a));
    if (!a) {
        rc = TG_E_NOMEM;
        goto out;
    }
    rc = rebuild(st, &c, root);
    if (rc) {
        if (c.bad >= 0)
            tg_error("audit: the stored log does not reproduce its tree head at leaf %" PRId64
                     "; run verify",
                     c.bad);
        tg_free(a);
        a = NULL;
        goto out;
    }
    a->st = st;
out:
    *out = a;
    return rc;
}

void tg_audit_close(struct tg_audit *a)
{
    tg_free(a);
}

/* ------------------------------------------------------------ append */

int tg_audit_append(struct tg_audit *a, const void *data, size_t len, uint64_t *seq)
{
    struct tg_audit_row row;

    if (!data && len)
        return TG_E_INVAL;
    memset(&row, 0, sizeof(row));
    /* The store copies the bytes and never writes through this pointer;
     * an empty leaf still gets a non-NULL pointer for the store to bind. */
    row.data = len ? (char *)data : (char *)"";
    row.len = len;
    row.ts_ms = tg_clock_wall_ms();
    tg_audit_leaf_hash(data, len, row.leaf_hash);
    if (tg_hash_failed(row.leaf_hash))
        return TG_E_NOMEM;
    return tg_store_audit_append(a->st, &row, seq);
}

int tg_audit_append_json(struct tg_audit *a, const json_t *record, uint64_t *seq)
{
    size_t len = 0;
    char *s;
    int rc;

    if (!record)
        return TG_E_INVAL;
    s = tg_json_canonical(record, &len);
    if (!s)
        return TG_E_NOMEM;
    rc = tg_audit_append(a, s, len, seq);
    tg_free(s);
    return rc;
}

int tg_audit_index(struct tg_audit *a, uint64_t seq, uint64_t *index)
{
    return tg_store_audit_index(a->st, seq, index);
}

int tg_audit_head(struct tg_audit *a, uint64_t *size, uint8_t root[TG_HASH_LEN])
{
    struct tg_audit_row row;
    uint64_t n = 0;
    int rc = tg_store_audit_size(a->st, &n);
    if (rc == TG_OK && n == 0)
        tg_audit_tree_root(NULL, 0, root);
    else if (rc == TG_OK && (rc = tg_store_audit_get(a->st, n - 1, &row)) == TG_OK) {
        memcpy(root, row.root, TG_HASH_LEN);
        tg_free(row.data);
    }
    if (rc == TG_OK)
        *size = n;
    return rc;
}

uint64_t tg_audit_size(struct tg_audit *a)
{
    uint8_t root[TG_HASH_LEN];
    uint64_t n = 0;
    if (tg_store_flush(a->st) != TG_OK || tg_audit_head(a, &n, root) != TG_OK)
        n = 0;
    return n;
}

void tg_audit_root(struct tg_audit *a, uint8_t out[TG_HASH_LEN])
{
    uint64_t n;
    if (tg_store_flush(a->st) != TG_OK || tg_audit_head(a, &n, out) != TG_OK)
        tg_audit_tree_root(NULL, 0, out);
}

/* ------------------------------------------------------------ verify */

struct verify_ctx {
    struct tg_range range;
    uint8_t root[TG_HASH_LEN]; /* head of the leaves that passed */
    struct tg_audit_report *rep;
    int err;
};

static int verify_fail(struct verify_ctx *c, uint64_t leaf, int err, const char *what)
{
    /* Only a disagreement names a bad leaf; running out of memory does not. */
    if (err == TG_E_CONFLICT)
        c->rep->first_bad = (int64_t)leaf;
    snprintf(c->rep->reason, sizeof(c->rep->reason), "leaf %" PRIu64 ": %s", leaf, what);
    c->err = err;
    return err;
}

static int verify_cb(void *arg, const struct tg_audit_row *row)
{
    struct verify_ctx *c = arg;
    uint8_t h[TG_HASH_LEN], root[TG_HASH_LEN];
    int rc;

    if (row->index != c->range.size)
        return verify_fail(c, c->range.size, TG_E_CONFLICT, "missing from the store");
    tg_audit_leaf_hash(row->data, row->len, h);
    if (tg_hash_failed(h))
        return verify_fail(c, row->index, TG_E_NOMEM, "out of memory while hashing");
    if (memcmp(h, row->leaf_hash, TG_HASH_LEN) != 0)
        return verify_fail(c, row->index, TG_E_CONFLICT, "data does not match its stored hash");
    rc = tg_range_push(&c->range, h);
    if (!rc)
        rc = tg_range_root(&c->range, root);
    if (rc)
        return verify_fail(c, row->index, rc, "cannot compute the tree head");
    if (memcmp(root, row->root, TG_HASH_LEN) != 0)
        return verify_fail(c, row->index, TG_E_CONFLICT,
                           "tree head differs from the recomputed one");
    memcpy(c->root, root, TG_HASH_LEN);
    return 0;
}

int tg_audit_verify(struct tg_store *st, struct tg_audit_report *rep)
{
    struct verify_ctx c;
    uint64_t n = 0;
    int rc;

    memset(rep, 0, sizeof(*rep));
    rep->first_bad = -1;
    tg_range_init(&c.range);
    c.rep = rep;
    c.err = TG_OK;
    rc = tg_range_root(&c.range, c.root);
    if (rc)
        goto out;
    rc = tg_store_flush(st);
    if (!rc)
        rc = tg_store_audit_size(st, &n);
    if (!rc)
        rc = tg_store_audit_scan(st, 0, verify_cb, &c);
    if (rc && c.err) {
        rc = c.err;
    } else if (rc) {
        snprintf(rep->reason, sizeof(rep->reason), "cannot read the log at leaf %" PRIu64 ": %s",
                 c.range.size, tg_err_str(rc));
    } else if (c.range.size != n) {
        rc = verify_fail(&c, TG_MIN(c.range.size, n), TG_E_CONFLICT,
                         "the store's leaf count disagrees with the leaves it returns");
    }
out:
    rep->size = n;
    memcpy(rep->root, c.root, TG_HASH_LEN);
    return rc;
}
