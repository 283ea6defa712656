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
 * Known uri schemes, tried in order.  keep_prefix hands the whole uri to
 * the backend (libpq parses "postgres://" itself); otherwise only what
 * follows the prefix is passed.
 */
struct backend {
    const char *prefix;
    const struct tg_store_ops *ops;
    bool keep_prefix;
};

static const struct backend backends[] = {
    {.prefix = "sqlite:", .ops = &tg_store_sqlite_ops},
    {.prefix = "postgres://", .ops = &tg_store_postgres_ops, .keep_prefix = true},
    {.prefix = "postgresql://", .ops = &tg_store_postgres_ops, .keep_prefix = true},
};

void tg_store_set_err(char *err, size_t errlen, const char *fmt, ...)
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

/* The queue's writer hands batches to the store's backend. */
static int run_batch(void *arg, struct job *batch)
{
    struct tg_store *st = arg;
    return st->ops->run_batch(st, batch);
}

int tg_store_open(const char *uri, struct tg_store **out, char *err, size_t errlen)
{
    return tg_store_open_private(uri, NULL, out, err, errlen);
}

int tg_store_open_private(const char *uri, const struct tg_store_privacy *priv,
                          struct tg_store **out, char *err, size_t errlen)
{
    const struct backend *be = NULL;
    const char *target = uri;
    int rc = TG_OK;

    if (!uri || !out) {
        tg_store_set_err(err, errlen, "store: no uri given");
        rc = TG_E_INVAL;
        goto out;
    }
    for (size_t i = 0; i < TG_ARRAY_LEN(backends) && !be; i++) {
        if (tg_str_has_prefix(uri, backends[i].prefix))
            be = &backends[i];
    }
    if (!be) {
        if (unknown_scheme(uri)) {
            tg_store_set_err(err, errlen, "store: unknown uri scheme in \"%s\"", uri);
            rc = TG_E_CONFIG;
            goto out;
        }
        be = &backends[0]; /* a bare path means SQLite */
    } else if (!be->keep_prefix) {
        target = uri + strlen(be->prefix);
    }
    if (target[0] == '\0') {
        tg_store_set_err(err, errlen, "store: empty location in uri \"%s\"", uri);
        rc = TG_E_CONFIG;
        goto out;
    }
    if (priv && (!priv->pseudonym || !priv->mask)) {
        tg_store_set_err(err, errlen, "store: privacy hooks need both pseudonym and mask");
        rc = TG_E_INVAL;
        goto out;
    }
    rc = be->ops->open(target, priv, out, err, errlen);
    if (rc != TG_OK)
        goto out;
    if (priv)
        (*out)->priv = *priv;
    rc = tg_wq_start(&(*out)->wq, be->ops->kind, run_batch, *out, err, errlen);
    if (rc != TG_OK) {
        be->ops->close(*out);
        *out = NULL;
    }
out:
    return rc;
}

char *tg_store_redact(const char *uri)
{
    struct tg_buf b;
    const char *p = uri, *at, *colon, *pw;
    const char *scheme = strstr(uri, "://");
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    if (scheme && (at = strchr(scheme + 3, '@')) &&
        (!strchr(scheme + 3, '/') || at < strchr(scheme + 3, '/'))) {
        colon = memchr(scheme + 3, ':', (size_t)(at - scheme - 3));
        if (colon) {
            tg_buf_append(&b, uri, (size_t)(colon + 1 - uri));
            tg_buf_append(&b, "***", 3);
            p = at;
        }
    }
    while ((pw = strstr(p, "password=")) != NULL) {
        tg_buf_append(&b, p, (size_t)(pw + 9 - p));
        tg_buf_append(&b, "***", 3);
        p = pw + 9 + strcspn(pw + 9, "& ");
    }
    tg_buf_append(&b, p, strlen(p));
    char *out = b.data ? tg_strdup(b.data) : NULL;
    tg_buf_free(&b);
    return out;
}

int tg_store_record_index(json_t *record, int64_t index)
{
    if (!json_is_object(record) || json_object_get(record, "audit_index"))
        return TG_OK;
    return tg_json_set(record, "audit_index", json_integer(index));
}

void tg_store_local_dir(const char *uri, const char *data_dir, char *out, size_t n)
{
    const char *path = tg_str_has_prefix(uri, "sqlite:") ? uri + 7 : uri;
    const char *slash = strrchr(path, '/');
    if (tg_str_has_prefix(uri, "postgres://") || tg_str_has_prefix(uri, "postgresql://"))
        tg_strlcpy(out, data_dir && data_dir[0] ? data_dir : ".", n);
    else if (!slash)
        tg_strlcpy(out, ".", n);
    else
        snprintf(out, n, "%.*s", slash == path ? 1 : (int)(slash - path), path);
}

int tg_store_pseudonym(struct tg_store *st, const char *id, char out[TG_STORE_KEY_MAX])
{
    if (!st || !id || !out)
        return TG_E_INVAL;
    if (!st->priv.pseudonym) {
        tg_strlcpy(out, id, TG_STORE_KEY_MAX);
        return TG_OK;
    }
    return st->priv.pseudonym(st->priv.arg, id, out);
}

/* Mask with the hooks, or copy as is without them. */
static int mask_with(const struct tg_store_privacy *priv, const char *text, size_t len,
                     struct tg_buf *out)
{
    if (!priv || !priv->mask)
        return tg_buf_append(out, text, len);
    return priv->mask(priv->arg, text, len, out);
}

int tg_store_mask(struct tg_store *st, const char *text, size_t len, struct tg_buf *out)
{
    if (!st || (!text && len) || !out)
        return TG_E_INVAL;
    return mask_with(&st->priv, text ? text : "", len, out);
}

int tg_store_private_member(const struct tg_store_privacy *priv, json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    struct tg_buf b;
    int rc = TG_OK;
    if (!json_is_string(v) || !priv || !priv->mask)
        return TG_OK;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    rc = mask_with(priv, json_string_value(v), json_string_length(v), &b);
    if (rc == TG_OK && json_string_setn(v, b.data ? b.data : "", b.len) != 0)
        rc = TG_E_NOMEM;
    tg_buf_free(&b);
    return rc;
}

int tg_store_private_task(const struct tg_store_privacy *priv, json_t *task, bool convert)
{
    static const char *const texts[] = {"answer"};
    static const char *const decision_texts[] = {"text", "reason"};
    json_t *decision = json_object_get(task, "decision");
    size_t i;
    json_t *m;
    int rc = TG_OK;

    json_object_del(task, "customer_messages");
    json_object_del(task, "agent_replies");
    for (i = 0; i < TG_ARRAY_LEN(texts) && rc == TG_OK; i++)
        rc = tg_store_private_member(priv, task, texts[i]);
    for (i = 0; i < TG_ARRAY_LEN(decision_texts) && rc == TG_OK && json_is_object(decision); i++)
        rc = tg_store_private_member(priv, decision, decision_texts[i]);
    json_array_foreach(json_object_get(task, "conversation"), i, m)
    {
        if (rc == TG_OK)
            rc = tg_store_private_member(priv, m, "content");
    }
    const char *by = tg_json_str(task, "started_by", "");
    if (rc == TG_OK && convert && by[0] && priv && priv->pseudonym) {
        char ps[TG_STORE_KEY_MAX];
        rc = priv->pseudonym(priv->arg, by, ps);
        if (rc == TG_OK)
            rc = tg_json_set(task, "started_by", json_string(ps));
    }
    return rc;
}

void tg_store_close(struct tg_store *st)
{
    if (!st)
        return;
    struct tg_store_privacy priv = st->priv;
    int rc = tg_wq_stop(&st->wq);
    if (rc != TG_OK)
        tg_warn("store %s: closed after a write error (%s)", st->ops->kind, tg_err_name(rc));
    st->ops->close(st);
    if (priv.release)
        priv.release(priv.arg);
}

bool tg_store_shared(const struct tg_store *st)
{
    return st && st->ops->shared;
}

int tg_store_review_of_conversation(struct tg_store *st, const char *conversation_id,
                                    const char *state, struct tg_review_row *row)
{
    if (!st || !conversation_id || !conversation_id[0] || !state || !row)
        return TG_E_INVAL;
    return st->ops->review_of_conversation(st, conversation_id, state, row);
}

int tg_store_lock(struct tg_store *st, const char *key)
{
    if (!st || !st->ops->lock)
        return st ? TG_OK : TG_E_INVAL;
    return key && key[0] ? st->ops->lock(st, key, true) : TG_E_INVAL;
}

int tg_store_trylock(struct tg_store *st, const char *key)
{
    if (!st || !st->ops->trylock)
        return st ? TG_OK : TG_E_INVAL;
    return key && key[0] ? st->ops->trylock(st, key) : TG_E_INVAL;
}

void tg_store_unlock(struct tg_store *st, const char *key)
{
    if (st && key && key[0] && st->ops->lock)
        st->ops->lock(st, key, false);
}

int tg_store_changes_fd(struct tg_store *st)
{
    return st && st->ops->changes_fd ? st->ops->changes_fd(st) : -1;
}

int tg_store_tell(struct tg_store *st, const char *id, const char *text)
{
    if (!st || !id || !text)
        return TG_E_INVAL;
    if (!st->ops->shared || strlen(text) > TG_STORE_TELL_MAX || strlen(id) >= TG_ID_MAX)
        return TG_OK;
    return tg_wq_tell(&st->wq, id, text);
}

int tg_store_told(struct tg_store *st, const char *id, char **text)
{
    return st && id && st->ops->told ? st->ops->told(st, id, text) : TG_E_NOTFOUND;
}

int tg_store_changes(struct tg_store *st, void (*cb)(void *ctx, const char *id, const char *state),
                     void *ctx)
{
    if (!st || !cb)
        return TG_E_INVAL;
    return st->ops->changes ? st->ops->changes(st, cb, ctx) : TG_OK;
}

const char *tg_store_kind(const struct tg_store *st)
{
    return st ? st->ops->kind : "none";
}

void tg_store_hold(struct tg_store *st)
{
    tg_wq_hold(&st->wq);
}

int tg_store_release(struct tg_store *st, int rc)
{
    tg_wq_release(&st->wq, rc == TG_OK);
    return rc;
}

int tg_store_flush(struct tg_store *st)
{
    if (!st)
        return TG_E_INVAL;
    return tg_wq_flush(&st->wq);
}

uint64_t tg_store_ticket(struct tg_store *st)
{
    return st ? tg_wq_ticket(&st->wq) : 0;
}

uint64_t tg_store_committed(struct tg_store *st, int *err)
{
    if (!st) {
        *err = TG_E_INVAL;
        return 0;
    }
    return tg_wq_committed(&st->wq, err);
}

int tg_store_commit_fd(struct tg_store *st)
{
    return st ? tg_wq_commit_fd(&st->wq) : -1;
}

void tg_store_commit_drain(struct tg_store *st)
{
    if (st)
        tg_wq_commit_drain(&st->wq);
}

/* ------------------------------------------------------------ writes */

/* A conversation written as given (step 0) or as one more turn (wqueue.h). */
static int conversation_write(struct tg_store *st, const struct tg_conversation *c, int step)
{
    struct tg_conversation pc;
    int rc;
    if (!st || !c || !field_ok(c->id, sizeof(c->id), true) ||
        !field_ok(c->customer_id, sizeof(c->customer_id), false))
        return TG_E_INVAL;
    pc = *c;
    rc = c->customer_id[0] ? tg_store_pseudonym(st, c->customer_id, pc.customer_id) : TG_OK;
    return rc ? rc : tg_wq_conversation_put(&st->wq, &pc, step);
}

int tg_store_conversation_put(struct tg_store *st, const struct tg_conversation *c)
{
    return conversation_write(st, c, 0);
}

int tg_store_conversation_step(struct tg_store *st, const struct tg_conversation *c, bool degraded)
{
    return conversation_write(st, c, degraded ? 2 : 1);
}

int tg_store_message_add(struct tg_store *st, const struct tg_message *m)
{
    if (!st || !m || !m->role || !m->content ||
        !field_ok(m->conversation_id, sizeof(m->conversation_id), true) ||
        !field_ok(m->turn_id, sizeof(m->turn_id), false) ||
        !tg_utf8_valid(m->role, strlen(m->role)) || !tg_utf8_valid(m->content, strlen(m->content)))
        return TG_E_INVAL;
    return tg_wq_message_add(&st->wq, m);
}

int tg_store_blob_put(struct tg_store *st, const char *key, const void *data, size_t len)
{
    if (!st || !key || !key[0] || (!data && len))
        return TG_E_INVAL;
    return tg_wq_blob_put(&st->wq, key, data ? data : "", len);
}

int tg_store_blob_delete(struct tg_store *st, const char *key)
{
    if (!st || !key || !key[0])
        return TG_E_INVAL;
    return tg_wq_blob_put(&st->wq, key, NULL, 0);
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
    if (st)
        tg_wq_set_group_commit(&st->wq, ms);
}

int tg_store_turn_put_text(struct tg_store *st, const char *turn_id, const char *conversation_id,
                           const char *decision, int64_t created_ms, const char *record, size_t len)
{
    if (!st || !turn_id || !turn_id[0] || !conversation_id || !decision || !record || !len ||
        record[0] != '{')
        return TG_E_INVAL;
    return tg_wq_turn_put(&st->wq, turn_id, conversation_id, decision, created_ms, record, len, -1);
}

int tg_store_turn_put_leaf(struct tg_store *st, const char *turn_id, const char *conversation_id,
                           const char *decision, int64_t created_ms)
{
    if (!st || !turn_id || !turn_id[0] || !conversation_id || !decision)
        return TG_E_INVAL;
    return tg_wq_turn_put(&st->wq, turn_id, conversation_id, decision, created_ms, "", 0,
                          WQ_LAST_LEAF);
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
    struct tg_review_row row;
    json_t *copy = NULL;
    int rc = TG_OK;
    if (!st || !r || !json_is_object(task) || !field_ok(r->id, sizeof(r->id), true) ||
        !field_ok(r->turn_id, sizeof(r->turn_id), false) ||
        !field_ok(r->conversation_id, sizeof(r->conversation_id), false) ||
        !field_ok(r->state, sizeof(r->state), true) || !field_ok(r->queue, sizeof(r->queue), false))
        return TG_E_INVAL;
    row = *r;
    if (!row.conversation_id[0])
        tg_strlcpy(row.conversation_id, tg_json_str(task, "conversation_id", ""),
                   sizeof(row.conversation_id));
    copy = json_deep_copy(task);
    rc = copy ? tg_store_private_task(&st->priv, copy, false) : TG_E_NOMEM;
    if (rc == TG_OK)
        rc = tg_wq_review_put(&st->wq, &row, copy);
    json_decref(copy);
    return rc;
}

int tg_store_handoff_add(struct tg_store *st, const struct tg_handoff_msg *m)
{
    struct tg_handoff_msg pm;
    struct tg_buf b;
    int rc;
    if (!st || !m || !m->from || !m->actor || !m->text ||
        !field_ok(m->review_id, sizeof(m->review_id), true) ||
        !field_ok(m->turn_id, sizeof(m->turn_id), false) || m->after_events < 0)
        return TG_E_INVAL;
    pm = *m;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    rc = mask_with(&st->priv, m->text, strlen(m->text), &b);
    pm.text = b.data ? b.data : "";
    if (rc == TG_OK)
        rc = tg_wq_handoff_add(&st->wq, &pm);
    tg_buf_free(&b);
    return rc;
}

int tg_store_audit_put(struct tg_store *st, const struct tg_audit_row *row)
{
    if (!st || !row || (!row->data && row->len) || row->index > (uint64_t)INT64_MAX)
        return TG_E_INVAL;
    return tg_wq_audit_put(&st->wq, row);
}

int tg_store_audit_append(struct tg_store *st, const struct tg_audit_row *row, uint64_t *seq)
{
    if (!st || !row || (!row->data && row->len))
        return TG_E_INVAL;
    struct tg_audit_row r = *row;
    r.index = WQ_NEXT_LEAF;
    return tg_wq_audit_append(&st->wq, &r, seq);
}

int tg_store_audit_index(struct tg_store *st, uint64_t seq, uint64_t *index)
{
    if (!st || !index)
        return TG_E_INVAL;
    return tg_wq_audit_index(&st->wq, seq, index);
}

/* ------------------------------------------------------------ reads */

int tg_store_conversation_latest(struct tg_store *st, const char *customer_id,
                                 struct tg_conversation *out)
{
    char key[TG_STORE_KEY_MAX];
    int rc;
    if (!st || !customer_id || !out)
        return TG_E_INVAL;
    rc = customer_id[0] ? tg_store_pseudonym(st, customer_id, key) : TG_OK;
    if (!customer_id[0])
        key[0] = '\0';
    return rc ? rc : st->ops->conversation_latest(st, key, out);
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

/* A thread being put back into its task's shape. */
struct thread {
    json_t *customer, *agent; /* customer_messages, agent_replies */
    json_t *events;           /* [after_events, event] pairs, in thread order */
};

static int thread_row_cb(void *ctx, const struct tg_handoff_msg *m)
{
    struct thread *t = ctx;
    bool customer = strcmp(m->from, "customer") == 0;
    json_t *item = customer ? json_pack("{s:I, s:s, s:s}", "at", (json_int_t)m->at_ms, "turn_id",
                                        m->turn_id, "text", m->text)
                            : json_pack("{s:I, s:s, s:s}", "at", (json_int_t)m->at_ms, "actor",
                                        m->actor, "text", m->text);
    json_t *ev =
        json_pack("[I, {s:I, s:s, s:s}]", (json_int_t)m->after_events, "at", (json_int_t)m->at_ms,
                  "actor", m->actor, "event", customer ? "customer_message" : "agent_reply");
    /* each append takes its reference, also when it fails */
    int a = tg_json_push(customer ? t->customer : t->agent, item);
    int b = tg_json_push(t->events, ev);
    return a ? a : b;
}

/*
 * Read task id's thread (its latest limit messages) into the task: the two
 * lists, and each message's event placed after the events the task had
 * when it was written, so the timeline reads as it happened.
 */
static int thread_into(struct tg_store *st, const char *id, size_t limit, json_t *task)
{
    struct thread t = {json_array(), json_array(), json_array()};
    json_t *merged = json_array(), *old = json_object_get(task, "events");
    size_t k = 0, i;
    json_t *e;
    int rc = t.customer && t.agent && t.events && merged ? TG_OK : TG_E_NOMEM;
    if (rc == TG_OK)
        rc = st->ops->handoff_list(st, id, limit, thread_row_cb, &t);
    if (rc || !json_array_size(t.events))
        goto out;
    json_array_foreach(old, i, e)
    {
        for (; rc == TG_OK && k < json_array_size(t.events); k++) {
            json_t *pair = json_array_get(t.events, k);
            if (json_integer_value(json_array_get(pair, 0)) > (json_int_t)i)
                break;
            rc = tg_json_push(merged, json_incref(json_array_get(pair, 1)));
        }
        if (rc == TG_OK)
            rc = tg_json_push(merged, json_incref(e));
    }
    for (; rc == TG_OK && k < json_array_size(t.events); k++)
        rc = tg_json_push(merged, json_incref(json_array_get(json_array_get(t.events, k), 1)));
    /* the task gets its whole thread or none of it (the caller fails) */
    if (rc == TG_OK)
        rc = tg_json_set(task, "events", json_incref(merged));
    if (rc == TG_OK && json_array_size(t.customer))
        rc = tg_json_set(task, "customer_messages", json_incref(t.customer));
    if (rc == TG_OK && json_array_size(t.agent))
        rc = tg_json_set(task, "agent_replies", json_incref(t.agent));
out:
    json_decref(t.customer);
    json_decref(t.agent);
    json_decref(t.events);
    json_decref(merged);
    return rc;
}

/* Only a task handed to an agent has a thread. */
static bool may_have_thread(const json_t *task)
{
    const char *state = tg_json_str(task, "state", "");
    return !strcmp(state, "handed_off") || !strcmp(state, "closed");
}

int tg_store_review_get_bare(struct tg_store *st, const char *id, struct tg_review_row *row,
                             json_t **task)
{
    if (!st || !id)
        return TG_E_INVAL;
    return st->ops->review_get(st, id, row, task);
}

int tg_store_review_get(struct tg_store *st, const char *id, struct tg_review_row *row,
                        json_t **task)
{
    json_t *t = NULL;
    int rc = tg_store_review_get_bare(st, id, row, task ? &t : NULL);
    if (rc == TG_OK && t && may_have_thread(t))
        rc = thread_into(st, id, SIZE_MAX, t);
    if (rc == TG_OK && task)
        *task = t;
    else
        json_decref(t);
    return rc;
}

int tg_store_review_list(struct tg_store *st, const char *state, size_t limit, json_t **out)
{
    json_t *list = NULL;
    size_t i;
    json_t *t;
    int rc;
    if (!st || !out)
        return TG_E_INVAL;
    rc = st->ops->review_list(st, state, limit, &list);
    json_array_foreach(list, i, t)
    {
        if (rc == TG_OK && may_have_thread(t))
            rc = thread_into(st, tg_json_str(t, "id", ""), TG_STORE_LIST_THREAD, t);
    }
    if (rc == TG_OK)
        *out = list;
    else
        json_decref(list);
    return rc;
}

int tg_store_review_scan(struct tg_store *st, const char *state,
                         int (*cb)(void *ctx, const struct tg_review_row *row), void *ctx)
{
    if (!st || !state || !cb)
        return TG_E_INVAL;
    return st->ops->review_scan(st, state, cb, ctx);
}

int tg_store_review_facts(struct tg_store *st, int64_t since_ms,
                          int (*cb)(void *ctx, const struct tg_review_facts *f), void *ctx)
{
    if (!st || !cb)
        return TG_E_INVAL;
    return st->ops->review_facts(st, since_ms, cb, ctx);
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

/* ------------------------------------------------------------ copy */

struct copy {
    struct tg_store *to;
    void (*progress)(void *ctx, const char *table, uint64_t rows);
    void *ctx;
    enum job_kind kind;
    uint64_t rows;
};

static const char *const table_names[] = {
    [JOB_CONVERSATION] = "conversations",
    [JOB_MESSAGE] = "messages",
    [JOB_TURN] = "turns",
    [JOB_REVIEW] = "reviews",
    [JOB_AUDIT] = "audit",
    [JOB_BLOB] = "blobs",
    [JOB_HANDOFF] = "handoff_messages",
};

static void copy_progress(struct copy *c)
{
    if (c->progress && c->rows)
        c->progress(c->ctx, table_names[c->kind], c->rows);
}

/* One row of from, written to to as it was. */
static int copy_row(void *ctx, struct job *row)
{
    struct copy *c = ctx;
    struct tg_wqueue *q = &c->to->wq;
    int rc;
    if (row->kind != c->kind) {
        copy_progress(c);
        c->kind = row->kind;
        c->rows = 0;
    }
    switch (row->kind) {
    case JOB_CONVERSATION:
        rc = tg_wq_conversation_put(q, &row->u.conv, 0);
        break;
    case JOB_MESSAGE:
        rc = tg_wq_message_add(q, &row->u.msg);
        break;
    case JOB_TURN:
        rc = tg_wq_turn_put(q, row->u.turn.id, row->u.turn.conversation_id, row->u.turn.decision,
                            row->u.turn.created_ms, row->u.turn.record, row->u.turn.record_len,
                            row->u.turn.audit_idx);
        break;
    case JOB_REVIEW: {
        json_t *task = json_loadb(row->u.review.task, row->u.review.task_len, 0, NULL);
        rc = task ? tg_wq_review_put(q, &row->u.review.row, task) : TG_E_DB;
        json_decref(task);
        break;
    }
    case JOB_AUDIT:
        rc = tg_wq_audit_put(q, &row->u.audit);
        break;
    case JOB_BLOB:
        rc = tg_wq_blob_put(q, row->u.blob.key, row->u.blob.data, row->u.blob.len);
        break;
    case JOB_HANDOFF:
        rc = tg_wq_handoff_add(q, &row->u.handoff);
        break;
    default:
        rc = TG_E_INTERNAL;
    }
    c->rows++;
    return rc;
}

int tg_store_copy(struct tg_store *from, struct tg_store *to,
                  void (*progress)(void *ctx, const char *table, uint64_t rows), void *ctx)
{
    struct copy c = {.to = to, .progress = progress, .ctx = ctx, .kind = JOB_BLOB};
    uint64_t n = 0;
    int rc;
    if (!from || !to || from == to)
        return TG_E_INVAL;
    if (!from->ops->dump)
        return TG_E_CONFIG;
    rc = tg_store_audit_size(to, &n);
    if (rc == TG_OK && n > 0)
        rc = TG_E_CONFLICT;
    if (rc == TG_OK)
        rc = from->ops->dump(from, copy_row, &c);
    if (rc == TG_OK)
        rc = tg_store_flush(to);
    if (rc == TG_OK)
        copy_progress(&c);
    return rc;
}
