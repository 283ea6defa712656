/*
 * postgres_reads.c - the PostgreSQL store's reads, on the caller's
 * connection: conversations, messages, turns, blobs, review tasks and
 * their threads, audit leaves.  Scans read a page of rows at a time.
 */
#include "store/postgres_int.h"

#include <stdlib.h>

/* size_t limits larger than the server's integers mean "no limit" anyway. */
static int64_t clamp_limit(size_t limit)
{
    return limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit;
}

static void copy_col(char *dst, size_t size, const PGresult *res, int row, int col)
{
    tg_strlcpy(dst, PQgetvalue(res, row, col), size);
}

static int set_string(json_t *obj, const char *key, const PGresult *res, int row, int col)
{
    json_t *v = json_stringn(PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
    return v ? tg_json_set(obj, key, v) : TG_E_NOMEM;
}

/* Parse a stored JSON text column into a new reference. */
static int col_json(struct pg_store *s, const PGresult *res, int row, int col, json_t **out)
{
    json_error_t jerr;
    json_t *v = json_loadb(PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col), 0, &jerr);
    if (!v) {
        tg_error("store %s: stored JSON does not parse: %s", s->name, jerr.text);
        return TG_E_DB;
    }
    *out = v;
    return TG_OK;
}

static int read_conversation(struct pg_store *s, enum pg_stmt k, const char *key,
                             struct tg_conversation *out)
{
    struct pg_params p = {.n = 0};
    struct tg_conversation c;
    int rc;
    par_text(&p, key);
    PGresult *res = pg_run(s, k, &p, 0, &rc);
    if (res && PQntuples(res) == 0)
        rc = TG_E_NOTFOUND;
    if (rc == TG_OK) {
        memset(&c, 0, sizeof(c));
        copy_col(c.id, sizeof(c.id), res, 0, 0);
        copy_col(c.customer_id, sizeof(c.customer_id), res, 0, 1);
        c.created_ms = col_i64(res, 0, 2);
        c.updated_ms = col_i64(res, 0, 3);
        c.turns = col_i64(res, 0, 4);
        c.degraded_streak = col_i64(res, 0, 5);
        *out = c;
    }
    PQclear(res);
    return rc;
}

int pg_conversation_latest(struct tg_store *st, const char *customer_id,
                           struct tg_conversation *out)
{
    return read_conversation(pg(st), P_CONV_LATEST, customer_id, out);
}

int pg_conversation_get(struct tg_store *st, const char *id, struct tg_conversation *out)
{
    return read_conversation(pg(st), P_CONV_GET, id, out);
}

int pg_messages(struct tg_store *st, const char *conversation_id, size_t limit, json_t **out)
{
    struct pg_params p = {.n = 0};
    json_t *arr = json_array();
    int rc = arr ? TG_OK : TG_E_NOMEM;
    PGresult *res = NULL;

    par_text(&p, conversation_id);
    par_i64(&p, clamp_limit(limit));
    if (rc == TG_OK)
        res = pg_run(pg(st), P_MESSAGES, &p, 0, &rc);
    for (int i = 0; rc == TG_OK && i < PQntuples(res); i++) {
        json_t *m = json_object();
        rc = m ? set_string(m, "role", res, i, 0) : TG_E_NOMEM;
        if (rc == TG_OK)
            rc = set_string(m, "content", res, i, 1);
        if (rc == TG_OK)
            rc = set_string(m, "turn_id", res, i, 2);
        if (rc == TG_OK)
            rc = tg_json_set(m, "ts_ms", json_integer(col_i64(res, i, 3)));
        if (rc == TG_OK)
            rc = tg_json_push(arr, m);
        else
            json_decref(m);
    }
    PQclear(res);
    if (rc == TG_OK)
        *out = arr;
    else
        json_decref(arr);
    return rc;
}

int pg_blob_get(struct tg_store *st, const char *key, char **data, size_t *len)
{
    struct pg_params p = {.n = 0};
    int rc;
    par_text(&p, key);
    PGresult *res = pg_run(pg(st), P_BLOB_GET, &p, 1, &rc);
    if (res && PQntuples(res) == 0)
        rc = TG_E_NOTFOUND;
    if (rc == TG_OK) {
        size_t n = (size_t)PQgetlength(res, 0, 0);
        char *d = tg_malloc(n + 1);
        if (!d) {
            rc = TG_E_NOMEM;
        } else {
            if (n)
                memcpy(d, PQgetvalue(res, 0, 0), n);
            d[n] = '\0';
            *data = d;
            *len = n;
        }
    }
    PQclear(res);
    return rc;
}

int pg_blob_list(struct tg_store *st, const char *prefix, size_t limit, json_t **out)
{
    struct pg_params p = {.n = 0};
    json_t *arr = json_array();
    int rc = arr ? TG_OK : TG_E_NOMEM;
    PGresult *res = NULL;

    par_text(&p, prefix);
    par_i64(&p, clamp_limit(limit));
    if (rc == TG_OK)
        res = pg_run(pg(st), P_BLOB_LIST, &p, 1, &rc);
    for (int i = 0; rc == TG_OK && i < PQntuples(res); i++) {
        json_error_t jerr;
        json_t *v = json_loadb(PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0), 0, &jerr);
        if (v)
            rc = tg_json_push(arr, v);
        else if (json_error_code(&jerr) == json_error_out_of_memory)
            rc = TG_E_NOMEM; /* a blob that is not JSON is left out; one we could not read is not */
    }
    PQclear(res);
    if (rc == TG_OK)
        *out = arr;
    else
        json_decref(arr);
    return rc;
}

int pg_turn_get(struct tg_store *st, const char *turn_id, json_t **record)
{
    struct pg_params p = {.n = 0};
    int rc;
    par_text(&p, turn_id);
    PGresult *res = pg_run(pg(st), P_TURN_GET, &p, 0, &rc);
    if (res && PQntuples(res) == 0)
        rc = TG_E_NOTFOUND;
    if (rc == TG_OK)
        rc = col_json(pg(st), res, 0, 0, record);
    if (rc == TG_OK && !PQgetisnull(res, 0, 1))
        rc = tg_store_record_index(*record, col_i64(res, 0, 1));
    PQclear(res);
    return rc;
}

/* The key columns of a review row from columns 0..6 and conversation_id at cc. */
static void review_row(const PGresult *res, int i, int cc, struct tg_review_row *row)
{
    memset(row, 0, sizeof(*row));
    copy_col(row->id, sizeof(row->id), res, i, 0);
    copy_col(row->turn_id, sizeof(row->turn_id), res, i, 1);
    copy_col(row->state, sizeof(row->state), res, i, 2);
    copy_col(row->queue, sizeof(row->queue), res, i, 3);
    row->priority = col_i64(res, i, 4);
    row->deadline_ms = col_i64(res, i, 5);
    row->updated_ms = col_i64(res, i, 6);
    copy_col(row->conversation_id, sizeof(row->conversation_id), res, i, cc);
}

int pg_review_get(struct tg_store *st, const char *id, struct tg_review_row *row, json_t **task)
{
    struct pg_params p = {.n = 0};
    json_t *t = NULL;
    int rc;
    par_text(&p, id);
    PGresult *res = pg_run(pg(st), P_REVIEW_GET, &p, 0, &rc);
    if (res && PQntuples(res) == 0)
        rc = TG_E_NOTFOUND;
    if (rc == TG_OK && task)
        rc = col_json(pg(st), res, 0, 7, &t);
    if (rc == TG_OK) {
        if (row)
            review_row(res, 0, 8, row);
        if (task)
            *task = t;
    }
    PQclear(res);
    return rc;
}

int pg_review_list(struct tg_store *st, const char *state, size_t limit, json_t **out)
{
    bool open = state && (!strcmp(state, "pending") || !strcmp(state, "claimed"));
    enum pg_stmt k = !state ? P_REVIEW_LIST : open ? P_REVIEW_LIST_STATE : P_REVIEW_LIST_DONE;
    struct pg_params p = {.n = 0};
    json_t *arr = json_array();
    int rc = arr ? TG_OK : TG_E_NOMEM;
    PGresult *res = NULL;

    if (state)
        par_text(&p, state);
    par_i64(&p, clamp_limit(limit));
    if (rc == TG_OK)
        res = pg_run(pg(st), k, &p, 0, &rc);
    for (int i = 0; rc == TG_OK && i < PQntuples(res); i++) {
        json_t *t = NULL;
        rc = col_json(pg(st), res, i, 0, &t);
        if (rc == TG_OK)
            rc = tg_json_push(arr, t);
    }
    PQclear(res);
    if (rc == TG_OK)
        *out = arr;
    else
        json_decref(arr);
    return rc;
}

int pg_review_of_conversation(struct tg_store *st, const char *conversation_id, const char *state,
                              struct tg_review_row *row)
{
    struct pg_params p = {.n = 0};
    int rc;
    par_text(&p, conversation_id);
    par_text(&p, state);
    PGresult *res = pg_run(pg(st), P_REVIEW_OF_CONV, &p, 0, &rc);
    if (res && PQntuples(res) == 0)
        rc = TG_E_NOTFOUND;
    if (rc == TG_OK)
        review_row(res, 0, 7, row);
    PQclear(res);
    return rc;
}

int pg_review_scan(struct tg_store *st, const char *state,
                   int (*cb)(void *ctx, const struct tg_review_row *row), void *ctx)
{
    struct tg_review_row row = {.deadline_ms = INT64_MIN};
    int rc = TG_OK, n;
    do {
        struct pg_params p = {.n = 0};
        par_text(&p, state);
        par_i64(&p, row.deadline_ms);
        par_text(&p, row.id);
        par_i64(&p, PG_PAGE);
        PGresult *res = pg_run(pg(st), P_REVIEW_PAGE, &p, 0, &rc);
        n = res ? PQntuples(res) : 0;
        for (int i = 0; i < n && rc == TG_OK; i++) {
            review_row(res, i, 7, &row);
            rc = cb(ctx, &row); /* non-zero stops the scan and is returned as is */
        }
        PQclear(res);
    } while (rc == TG_OK && n == PG_PAGE);
    return rc;
}

int pg_review_facts(struct tg_store *st, int64_t since_ms,
                    int (*cb)(void *ctx, const struct tg_review_facts *f), void *ctx)
{
    char last[TG_ID_MAX] = "";
    int rc = TG_OK, n;
    do {
        struct pg_params p = {.n = 0};
        par_i64(&p, since_ms);
        par_text(&p, last);
        par_i64(&p, PG_PAGE);
        PGresult *res = pg_run(pg(st), P_FACTS_PAGE, &p, 0, &rc);
        n = res ? PQntuples(res) : 0;
        for (int i = 0; i < n && rc == TG_OK; i++) {
            const struct tg_review_facts f = {
                .state = PQgetvalue(res, i, 1),
                .queue = PQgetvalue(res, i, 2),
                .original_queue = PQgetvalue(res, i, 3),
                .created_ms = col_i64(res, i, 4),
                .deadline_ms = col_i64(res, i, 5),
                .decided_ms = col_i64(res, i, 6),
                .actor = PQgetvalue(res, i, 7),
                .action = PQgetvalue(res, i, 8),
                .kind = PQgetvalue(res, i, 9),
                .turn_id = PQgetvalue(res, i, 10),
                .turn_ms = col_i64(res, i, 11),
            };
            copy_col(last, sizeof(last), res, i, 0);
            rc = cb(ctx, &f);
        }
        PQclear(res);
    } while (rc == TG_OK && n == PG_PAGE);
    return rc;
}

int pg_handoff_list(struct tg_store *st, const char *review_id, size_t limit,
                    int (*cb)(void *ctx, const struct tg_handoff_msg *m), void *ctx)
{
    struct pg_params p = {.n = 0};
    int rc;
    par_text(&p, review_id);
    par_i64(&p, clamp_limit(limit));
    PGresult *res = pg_run(pg(st), P_HANDOFF_LIST, &p, 0, &rc);
    for (int i = 0; rc == TG_OK && i < PQntuples(res); i++) {
        struct tg_handoff_msg m;
        memset(&m, 0, sizeof(m));
        copy_col(m.review_id, sizeof(m.review_id), res, i, 0);
        copy_col(m.turn_id, sizeof(m.turn_id), res, i, 1);
        m.from = PQgetvalue(res, i, 2);
        m.actor = PQgetvalue(res, i, 3);
        m.text = PQgetvalue(res, i, 4);
        m.at_ms = col_i64(res, i, 5);
        m.after_events = col_i64(res, i, 6);
        rc = cb(ctx, &m);
    }
    PQclear(res);
    return rc;
}

int pg_audit_size(struct tg_store *st, uint64_t *n)
{
    int rc;
    PGresult *res = pg_run(pg(st), P_AUDIT_SIZE, NULL, 0, &rc);
    if (res && PQntuples(res) != 1)
        rc = TG_E_DB; /* an aggregate always yields a row */
    if (rc == TG_OK)
        *n = (uint64_t)col_i64(res, 0, 0);
    PQclear(res);
    return rc;
}

/*
 * Fill row from row i of a binary audit result.  With copy the data is a
 * new NUL-terminated tg_malloc'd string; without, it points into the
 * result, valid until it is cleared.
 */
static int audit_row(struct pg_store *s, const PGresult *res, int i, bool copy,
                     struct tg_audit_row *row)
{
    struct tg_audit_row r;
    size_t len = (size_t)PQgetlength(res, i, 1);
    memset(&r, 0, sizeof(r));
    r.index = (uint64_t)col_bin_i64(res, i, 0);
    if (PQgetlength(res, i, 2) != TG_SHA256_LEN || PQgetlength(res, i, 3) != TG_SHA256_LEN) {
        tg_error("store %s: audit leaf %llu has a malformed hash", s->name,
                 (unsigned long long)r.index);
        return TG_E_DB;
    }
    r.len = len;
    memcpy(r.leaf_hash, PQgetvalue(res, i, 2), TG_SHA256_LEN);
    memcpy(r.root, PQgetvalue(res, i, 3), TG_SHA256_LEN);
    r.ts_ms = col_bin_i64(res, i, 4);
    if (copy) {
        r.data = tg_malloc(len + 1);
        if (!r.data)
            return TG_E_NOMEM;
        if (len)
            memcpy(r.data, PQgetvalue(res, i, 1), len);
        r.data[len] = '\0';
    } else {
        r.data = PQgetvalue(res, i, 1); /* binary values are NUL-terminated too */
    }
    *row = r;
    return TG_OK;
}

int pg_audit_get(struct tg_store *st, uint64_t index, struct tg_audit_row *row)
{
    struct pg_params p = {.n = 0};
    int rc;
    if (index > (uint64_t)INT64_MAX)
        return TG_E_NOTFOUND;
    par_i64(&p, (int64_t)index);
    PGresult *res = pg_run(pg(st), P_AUDIT_GET, &p, 1, &rc);
    if (res && PQntuples(res) == 0)
        rc = TG_E_NOTFOUND;
    if (rc == TG_OK)
        rc = audit_row(pg(st), res, 0, true, row);
    PQclear(res);
    return rc;
}

int pg_audit_scan(struct tg_store *st, uint64_t from,
                  int (*cb)(void *ctx, const struct tg_audit_row *row), void *ctx)
{
    int rc = TG_OK, n;
    if (from > (uint64_t)INT64_MAX)
        return TG_OK;
    do {
        struct pg_params p = {.n = 0};
        par_i64(&p, (int64_t)from);
        par_i64(&p, PG_PAGE);
        PGresult *res = pg_run(pg(st), P_AUDIT_PAGE, &p, 1, &rc);
        n = res ? PQntuples(res) : 0;
        for (int i = 0; i < n && rc == TG_OK; i++) {
            struct tg_audit_row row;
            rc = audit_row(pg(st), res, i, false, &row);
            if (rc == TG_OK) {
                from = row.index + 1;
                rc = cb(ctx, &row); /* non-zero stops the scan and is returned as is */
            }
        }
        PQclear(res);
    } while (rc == TG_OK && n == PG_PAGE);
    return rc;
}
