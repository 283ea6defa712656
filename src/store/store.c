/*
 * store.c - the public face of the store: picks a backend from the uri,
 * checks arguments once for every backend, and dispatches through the
 * backend's ops table (store_int.h).
 */
#include "core/jw.h"
#include "store/store_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/*
 * Known uri schemes, tried in order.  A NULL ops names a backend this build
 * lacks.  keep_prefix hands the whole uri to the backend (libpq parses
 * "postgres://" itself); otherwise only what follows the prefix is passed.
 */
struct backend {
    const char *prefix;
    const struct tg_store_ops *ops;
    bool keep_prefix;
    const char *missing;
};

static const struct backend backends[] = {
    {.prefix = "sqlite:", .ops = &tg_store_sqlite_ops},
    {.prefix = "postgres://", .missing = "the PostgreSQL backend is not built yet"},
    {.prefix = "postgresql://", .missing = "the PostgreSQL backend is not built yet"},
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* True when a fixed-size field holds a terminated string (non-empty if asked). */
static bool field_ok(const char *s, size_t size, bool nonempty)
{
    return memchr(s, '\0', size) != NULL && (!nonempty || s[0] != '\0');
}

/* "scheme://" with a scheme we do not know: refuse rather than create a file by that name. */
static bool unknown_scheme(const char *uri)
{
    size_t n = strspn(uri, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
    return n > 0 && strncmp(uri + n, "://", 3) == 0;
}

int tg_store_open(const char *uri, struct tg_store **out, char *err, size_t errlen)
{
    const struct backend *be = NULL;
    const char *target = uri;
    int rc = TG_OK;

    if (!uri || !out) {
        set_err(err, errlen, "store: no uri given");
        rc = TG_E_INVAL;
        goto out;
    }
    for (size_t i = 0; i < TG_ARRAY_LEN(backends) && !be; i++) {
        if (tg_str_has_prefix(uri, backends[i].prefix))
            be = &backends[i];
    }
    if (be && !be->ops) {
        set_err(err, errlen, "store: %s", be->missing);
        rc = TG_E_CONFIG;
        goto out;
    }
    if (!be) {
        if (unknown_scheme(uri)) {
            set_err(err, errlen, "store: unknown uri scheme in \"%s\"", uri);
            rc = TG_E_CONFIG;
            goto out;
        }
        be = &backends[0]; /* a bare path means SQLite */
    } else if (!be->keep_prefix) {
        target = uri + strlen(be->prefix);
    }
    if (target[0] == '\0') {
        set_err(err, errlen, "store: empty location in uri \"%s\"", uri);
        rc = TG_E_CONFIG;
        goto out;
    }
    rc = be->ops->open(target, out, err, errlen);
out:
    return rc;
}

void tg_store_close(struct tg_store *st)
{
    if (st)
        st->ops->close(st);
}

const char *tg_store_kind(const struct tg_store *st)
{
    return st ? st->ops->kind : "none";
}

int tg_store_flush(struct tg_store *st)
{
    if (!st)
        return TG_E_INVAL;
    return st->ops->flush(st);
}

uint64_t tg_store_ticket(struct tg_store *st)
{
    return st && st->ops->ticket ? st->ops->ticket(st) : 0;
}

uint64_t tg_store_committed(struct tg_store *st, int *err)
{
    if (st && st->ops->committed)
        return st->ops->committed(st, err);
    *err = st ? tg_store_flush(st) : TG_E_INVAL;
    return tg_store_ticket(st);
}

int tg_store_commit_fd(struct tg_store *st)
{
    return st && st->ops->commit_fd ? st->ops->commit_fd(st) : -1;
}

void tg_store_commit_drain(struct tg_store *st)
{
    if (st && st->ops->commit_drain)
        st->ops->commit_drain(st);
}

/* ------------------------------------------------------------ writes */

int tg_store_conversation_put(struct tg_store *st, const struct tg_conversation *c)
{
    if (!st || !c || !field_ok(c->id, sizeof(c->id), true) ||
        !field_ok(c->customer_id, sizeof(c->customer_id), false))
        return TG_E_INVAL;
    return st->ops->conversation_put(st, c);
}

int tg_store_message_add(struct tg_store *st, const struct tg_message *m)
{
    if (!st || !m || !m->role || !m->content ||
        !field_ok(m->conversation_id, sizeof(m->conversation_id), true) ||
        !field_ok(m->turn_id, sizeof(m->turn_id), false))
        return TG_E_INVAL;
    return st->ops->message_add(st, m);
}

int tg_store_blob_put(struct tg_store *st, const char *key, const void *data, size_t len)
{
    if (!st || !key || !key[0] || (!data && len))
        return TG_E_INVAL;
    return st->ops->blob_put(st, key, data ? data : "", len);
}

int tg_store_blob_delete(struct tg_store *st, const char *key)
{
    if (!st || !key || !key[0])
        return TG_E_INVAL;
    return st->ops->blob_put(st, key, NULL, 0);
}

int tg_store_blob_get(struct tg_store *st, const char *key, char **data, size_t *len)
{
    if (!st || !key || !data || !len)
        return TG_E_INVAL;
    return st->ops->blob_get(st, key, data, len);
}

int tg_store_blob_list(struct tg_store *st, const char *prefix, size_t limit, json_t **out)
{
    if (!st || !prefix || !prefix[0] || !out)
        return TG_E_INVAL;
    return st->ops->blob_list(st, prefix, limit, out);
}

void tg_store_set_group_commit(struct tg_store *st, int64_t ms)
{
    if (st && st->ops->set_group_commit)
        st->ops->set_group_commit(st, ms);
}

int tg_store_turn_put_text(struct tg_store *st, const char *turn_id, const char *conversation_id,
                           const char *decision, int64_t created_ms, const char *record, size_t len)
{
    if (!st || !turn_id || !turn_id[0] || !conversation_id || !decision || !record || !len ||
        record[0] != '{')
        return TG_E_INVAL;
    return st->ops->turn_put(st, turn_id, conversation_id, decision, created_ms, record, len, -1);
}

int tg_store_turn_put_leaf(struct tg_store *st, const char *turn_id, const char *conversation_id,
                           const char *decision, int64_t created_ms, uint64_t audit_index)
{
    if (!st || !turn_id || !turn_id[0] || !conversation_id || !decision ||
        audit_index > (uint64_t)INT64_MAX)
        return TG_E_INVAL;
    return st->ops->turn_put(st, turn_id, conversation_id, decision, created_ms, "", 0,
                             (int64_t)audit_index);
}

int tg_store_turn_put(struct tg_store *st, const char *turn_id, const char *conversation_id,
                      const char *decision, int64_t created_ms, const json_t *record)
{
    struct tg_buf b;
    struct tg_jw w;
    int rc;
    if (!json_is_object(record))
        return TG_E_INVAL;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    tg_jw_init(&w, &b);
    tg_jw_json(&w, record);
    rc = tg_jw_finish(&w);
    if (!rc)
        rc = tg_store_turn_put_text(st, turn_id, conversation_id, decision, created_ms, b.data,
                                    b.len);
    tg_buf_free(&b);
    return rc;
}

int tg_store_review_put(struct tg_store *st, const struct tg_review_row *r, const json_t *task)
{
    if (!st || !r || !json_is_object(task) || !field_ok(r->id, sizeof(r->id), true) ||
        !field_ok(r->turn_id, sizeof(r->turn_id), false) ||
        !field_ok(r->state, sizeof(r->state), true) || !field_ok(r->queue, sizeof(r->queue), false))
        return TG_E_INVAL;
    return st->ops->review_put(st, r, task);
}

int tg_store_audit_put(struct tg_store *st, const struct tg_audit_row *row)
{
    if (!st || !row || (!row->data && row->len) || row->index > (uint64_t)INT64_MAX)
        return TG_E_INVAL;
    return st->ops->audit_put(st, row);
}

/* ------------------------------------------------------------ reads */

int tg_store_conversation_latest(struct tg_store *st, const char *customer_id,
                                 struct tg_conversation *out)
{
    if (!st || !customer_id || !out)
        return TG_E_INVAL;
    return st->ops->conversation_latest(st, customer_id, out);
}

int tg_store_conversation_get(struct tg_store *st, const char *id, struct tg_conversation *out)
{
    if (!st || !id || !out)
        return TG_E_INVAL;
    return st->ops->conversation_get(st, id, out);
}

int tg_store_messages(struct tg_store *st, const char *conversation_id, size_t limit, json_t **out)
{
    if (!st || !conversation_id || !out)
        return TG_E_INVAL;
    return st->ops->messages(st, conversation_id, limit, out);
}

int tg_store_turn_get(struct tg_store *st, const char *turn_id, json_t **record)
{
    if (!st || !turn_id || !record)
        return TG_E_INVAL;
    return st->ops->turn_get(st, turn_id, record);
}

int tg_store_review_get(struct tg_store *st, const char *id, struct tg_review_row *row,
                        json_t **task)
{
    if (!st || !id)
        return TG_E_INVAL;
    return st->ops->review_get(st, id, row, task);
}

int tg_store_review_list(struct tg_store *st, const char *state, size_t limit, json_t **out)
{
    if (!st || !out)
        return TG_E_INVAL;
    return st->ops->review_list(st, state, limit, out);
}

int tg_store_audit_size(struct tg_store *st, uint64_t *n)
{
    if (!st || !n)
        return TG_E_INVAL;
    return st->ops->audit_size(st, n);
}

int tg_store_audit_get(struct tg_store *st, uint64_t index, struct tg_audit_row *row)
{
    if (!st || !row)
        return TG_E_INVAL;
    return st->ops->audit_get(st, index, row);
}

int tg_store_audit_scan(struct tg_store *st, uint64_t from,
                        int (*cb)(void *ctx, const struct tg_audit_row *row), void *ctx)
{
    if (!st || !cb)
        return TG_E_INVAL;
    return st->ops->audit_scan(st, from, cb, ctx);
}
