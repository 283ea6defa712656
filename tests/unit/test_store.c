/*
 * test_store.c - the store conformance suite, plus uri dispatch checks and
 * a few SQLite-specific ones.
 *
 * The conformance cases use store.h only.  Each runs against every fixture
 * in `openers`: a fixture makes a fresh, empty store location, says which
 * uri opens it and which uri must fail, and removes it afterwards.  Adding
 * a backend to the suite means adding one opener (e.g. PostgreSQL creating
 * a scratch database from an environment variable, unavailable otherwise).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../support/harness.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "audit/audit.h"
#include "store/store.h"

/* ------------------------------------------------------------ fixtures */

struct env;

struct opener {
    const char *name; /* also the expected tg_store_kind() */
    /* false when the backend cannot be tested here; its cases are skipped */
    bool (*available)(void);
    /* Make a fresh, empty location and write its uri to e->uri; 0 on success. */
    int (*init)(struct env *e);
    /* A uri that must fail to open, and a fragment its error message must contain. */
    void (*bad_uri)(struct env *e, char *uri, size_t n, char *hint, size_t hn);
    void (*fini)(struct env *e);
};

struct env {
    const struct opener *op;
    char dir[256];
    char uri[512];
    struct tg_store *st;
};

static bool sqlite_available(void)
{
    return true;
}

static int sqlite_init(struct env *e)
{
    tg_strlcpy(e->dir, "/tmp/tg-store-XXXXXX", sizeof(e->dir));
    if (!mkdtemp(e->dir))
        return -1;
    snprintf(e->uri, sizeof(e->uri), "sqlite:%s/store.db", e->dir);
    return 0;
}

static void sqlite_bad_uri(struct env *e, char *uri, size_t n, char *hint, size_t hn)
{
    snprintf(hint, hn, "%s/no-such-dir/store.db", e->dir);
    snprintf(uri, n, "sqlite:%s", hint);
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[768];

    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static void sqlite_fini(struct env *e)
{
    remove_tree(e->dir);
}

/*
 * PostgreSQL: a scratch database per case on the server whose libpq uri
 * the file $TG_TEST_PG_URI_FILE holds (scripts/pg-test.sh, started by
 * ctest's fixture "pg"); skipped when the variable is unset.
 */
static int pg_init(struct env *e)
{
    return tg_h_pg_create("tg_store", e->dir, sizeof(e->dir), e->uri, sizeof(e->uri));
}

static void pg_bad_uri(struct env *e, char *uri, size_t n, char *hint, size_t hn)
{
    snprintf(hint, hn, "%s_missing", e->dir);
    tg_h_pg_uri_for(hint, uri, n);
}

static void pg_fini(struct env *e)
{
    tg_h_pg_drop(e->dir);
}

static bool pg_available(void)
{
    return tg_h_pg_available();
}

static const struct opener openers[] = {
    {
        .name = "sqlite",
        .available = sqlite_available,
        .init = sqlite_init,
        .bad_uri = sqlite_bad_uri,
        .fini = sqlite_fini,
    },
    {
        .name = "postgres",
        .available = pg_available,
        .init = pg_init,
        .bad_uri = pg_bad_uri,
        .fini = pg_fini,
    },
};

static void open_store(struct env *e)
{
    char err[256] = "";
    int rc = tg_store_open(e->uri, &e->st, err, sizeof(err));
    if (rc != TG_OK)
        print_error("open %s: %s\n", e->uri, err);
    assert_int_equal(rc, TG_OK);
    assert_non_null(e->st);
}

static void reopen(struct env *e)
{
    tg_store_close(e->st);
    e->st = NULL;
    open_store(e);
}

/* ------------------------------------------------------------ helpers */

static struct tg_conversation conv(const char *id, const char *customer, int64_t created,
                                   int64_t updated, int64_t turns, int64_t streak)
{
    struct tg_conversation c;
    memset(&c, 0, sizeof(c));
    tg_strlcpy(c.id, id, sizeof(c.id));
    tg_strlcpy(c.customer_id, customer, sizeof(c.customer_id));
    c.created_ms = created;
    c.updated_ms = updated;
    c.turns = turns;
    c.degraded_streak = streak;
    return c;
}

static void put_conv(struct env *e, const struct tg_conversation *c)
{
    assert_int_equal(tg_store_conversation_put(e->st, c), TG_OK);
}

static void add_msg(struct env *e, const char *conv_id, const char *turn_id, const char *role,
                    const char *content, int64_t ts)
{
    struct tg_message m;
    memset(&m, 0, sizeof(m));
    tg_strlcpy(m.conversation_id, conv_id, sizeof(m.conversation_id));
    tg_strlcpy(m.turn_id, turn_id, sizeof(m.turn_id));
    m.role = role;
    m.content = content;
    m.ts_ms = ts;
    assert_int_equal(tg_store_message_add(e->st, &m), TG_OK);
}

static size_t message_count(struct env *e, const char *conv_id)
{
    json_t *arr = NULL;
    assert_int_equal(tg_store_messages(e->st, conv_id, 1000000, &arr), TG_OK);
    size_t n = json_array_size(arr);
    json_decref(arr);
    return n;
}

/* A leaf whose bytes, hash and head are all derived from its index. */
struct leaf {
    char data[64];
    struct tg_audit_row row;
};

static void make_leaf(uint64_t i, struct leaf *l)
{
    memset(l, 0, sizeof(*l));
    int n = snprintf(l->data, sizeof(l->data), "{\"event\":\"turn\",\"n\":%llu}",
                     (unsigned long long)i);
    l->row.index = i;
    l->row.data = l->data;
    l->row.len = (size_t)n;
    tg_sha256(l->data, l->row.len, l->row.leaf_hash);
    for (size_t k = 0; k < TG_SHA256_LEN; k++)
        l->row.root[k] = (uint8_t)(i * 31 + k);
    l->row.ts_ms = 1700000000000 + (int64_t)i;
}

static void put_leaf(struct env *e, uint64_t i)
{
    struct leaf l;
    make_leaf(i, &l);
    assert_int_equal(tg_store_audit_put(e->st, &l.row), TG_OK);
}

static void assert_leaf(const struct tg_audit_row *row, uint64_t i)
{
    struct leaf l;
    make_leaf(i, &l);
    assert_int_equal(row->index, i);
    assert_int_equal(row->len, l.row.len);
    assert_memory_equal(row->data, l.data, l.row.len);
    assert_memory_equal(row->leaf_hash, l.row.leaf_hash, TG_SHA256_LEN);
    assert_memory_equal(row->root, l.row.root, TG_SHA256_LEN);
    assert_int_equal(row->ts_ms, l.row.ts_ms);
}

static uint64_t audit_size(struct env *e)
{
    uint64_t n = 0;
    assert_int_equal(tg_store_audit_size(e->st, &n), TG_OK);
    return n;
}

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    if (!v)
        print_error("bad test JSON: %s\n", jerr.text);
    assert_non_null(v);
    return v;
}

static struct tg_review_row review(const char *id, const char *state, int64_t prio,
                                   int64_t deadline)
{
    struct tg_review_row r;
    memset(&r, 0, sizeof(r));
    tg_strlcpy(r.id, id, sizeof(r.id));
    snprintf(r.turn_id, sizeof(r.turn_id), "turn_of_%s", id);
    tg_strlcpy(r.state, state, sizeof(r.state));
    tg_strlcpy(r.queue, "refunds", sizeof(r.queue));
    r.priority = prio;
    r.deadline_ms = deadline;
    r.updated_ms = deadline - 10;
    return r;
}

static void put_review(struct env *e, const char *id, const char *state, int64_t prio,
                       int64_t deadline)
{
    struct tg_review_row r = review(id, state, prio, deadline);
    json_t *task = json_pack("{s:s, s:s, s:I, s:s}", "id", id, "state", state, "priority",
                             (json_int_t)prio, "note", "需要人工审核");
    assert_non_null(task);
    assert_int_equal(tg_store_review_put(e->st, &r, task), TG_OK);
    json_decref(task);
}

/* The "id" of every task in a review list, joined by commas. */
static void review_ids(struct env *e, const char *state, size_t limit, char *out, size_t n)
{
    json_t *arr = NULL;
    size_t i;
    json_t *t;

    assert_int_equal(tg_store_review_list(e->st, state, limit, &arr), TG_OK);
    assert_true(json_is_array(arr));
    out[0] = '\0';
    json_array_foreach(arr, i, t)
    {
        size_t len = strlen(out);
        snprintf(out + len, n - len, "%s%s", i ? "," : "", tg_json_str(t, "id", "?"));
    }
    json_decref(arr);
}

/* ------------------------------------------------------------ conformance cases */

static void t_reopen_keeps_data(struct env *e)
{
    struct tg_conversation c = conv("conv_a", "cust_1", 100, 200, 3, 1);
    struct tg_conversation got;
    json_t *rec = parse("{\"decision\":\"deliver\"}");
    json_t *back = NULL;
    struct tg_audit_row row;

    put_conv(e, &c);
    add_msg(e, "conv_a", "turn_1", "user", "hello", 150);
    assert_int_equal(tg_store_turn_put(e->st, "turn_1", "conv_a", "deliver", 150, rec), TG_OK);
    put_review(e, "rev_1", "pending", 2, 1000);
    put_leaf(e, 0);
    put_leaf(e, 1);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    reopen(e);

    assert_int_equal(tg_store_conversation_get(e->st, "conv_a", &got), TG_OK);
    assert_memory_equal(&got, &c, sizeof(c));
    assert_int_equal(message_count(e, "conv_a"), 1);
    assert_int_equal(tg_store_turn_get(e->st, "turn_1", &back), TG_OK);
    assert_true(json_equal(back, rec));
    assert_int_equal(tg_store_review_get(e->st, "rev_1", NULL, NULL), TG_OK);
    assert_int_equal(audit_size(e), 2);
    assert_int_equal(tg_store_audit_get(e->st, 1, &row), TG_OK);
    assert_leaf(&row, 1);
    tg_free(row.data);

    /* The audit sequence continues where the previous session stopped. */
    put_leaf(e, 2);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(audit_size(e), 3);
    json_decref(rec);
    json_decref(back);
}

static void t_conversation_put_get_latest(struct env *e)
{
    struct tg_conversation a = conv("conv_a", "cust_1", 100, 200, 1, 0);
    struct tg_conversation b = conv("conv_b", "cust_1", 150, 400, 7, 2);
    struct tg_conversation c = conv("conv_c", "cust_2", 300, 900, 1, 0);
    struct tg_conversation got;

    put_conv(e, &a);
    put_conv(e, &b);
    put_conv(e, &c);
    assert_int_equal(tg_store_flush(e->st), TG_OK);

    assert_int_equal(tg_store_conversation_get(e->st, "conv_a", &got), TG_OK);
    assert_memory_equal(&got, &a, sizeof(a));
    assert_int_equal(tg_store_conversation_latest(e->st, "cust_1", &got), TG_OK);
    assert_string_equal(got.id, "conv_b");
    assert_int_equal(got.turns, 7);
    assert_int_equal(got.degraded_streak, 2);
    assert_int_equal(tg_store_conversation_latest(e->st, "cust_2", &got), TG_OK);
    assert_string_equal(got.id, "conv_c");

    assert_int_equal(tg_store_conversation_latest(e->st, "cust_unknown", &got), TG_E_NOTFOUND);
    assert_int_equal(tg_store_conversation_get(e->st, "conv_unknown", &got), TG_E_NOTFOUND);

    /* Replacing a by id makes it the most recently updated of cust_1. */
    a.updated_ms = 500;
    a.turns = 2;
    a.degraded_streak = 1;
    put_conv(e, &a);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_store_conversation_latest(e->st, "cust_1", &got), TG_OK);
    assert_memory_equal(&got, &a, sizeof(a));
}

static void t_message_order_and_limit(struct env *e)
{
    char text[32];
    json_t *arr = NULL;

    for (int i = 0; i < 10; i++) {
        snprintf(text, sizeof(text), "x%d", i);
        add_msg(e, "conv_x", "turn_x", i % 2 ? "assistant" : "user", text, 1000 + i);
        snprintf(text, sizeof(text), "y%d", i);
        add_msg(e, "conv_y", "turn_y", "user", text, 2000 + i);
    }
    assert_int_equal(tg_store_flush(e->st), TG_OK);

    assert_int_equal(tg_store_messages(e->st, "conv_x", 3, &arr), TG_OK);
    assert_int_equal(json_array_size(arr), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *m = json_array_get(arr, i);
        snprintf(text, sizeof(text), "x%zu", 7 + i);
        assert_string_equal(tg_json_str(m, "content", ""), text);
        assert_string_equal(tg_json_str(m, "role", ""), (7 + i) % 2 ? "assistant" : "user");
        assert_string_equal(tg_json_str(m, "turn_id", ""), "turn_x");
        assert_int_equal(tg_json_int(m, "ts_ms", 0), 1007 + (int64_t)i);
    }
    json_decref(arr);

    assert_int_equal(tg_store_messages(e->st, "conv_y", 100, &arr), TG_OK);
    assert_int_equal(json_array_size(arr), 10);
    assert_string_equal(tg_json_str(json_array_get(arr, 0), "content", ""), "y0");
    assert_string_equal(tg_json_str(json_array_get(arr, 9), "content", ""), "y9");
    json_decref(arr);

    assert_int_equal(tg_store_messages(e->st, "conv_y", 0, &arr), TG_OK);
    assert_int_equal(json_array_size(arr), 0);
    json_decref(arr);
    assert_int_equal(tg_store_messages(e->st, "conv_y", SIZE_MAX, &arr), TG_OK);
    assert_int_equal(json_array_size(arr), 10);
    json_decref(arr);

    assert_int_equal(tg_store_messages(e->st, "conv_unknown", 10, &arr), TG_OK);
    assert_true(json_is_array(arr));
    assert_int_equal(json_array_size(arr), 0);
    json_decref(arr);
}

static void t_turn_roundtrip(struct env *e)
{
    static const char reply[] = "您好，您的退款已于3月5日处理，金额为¥1,280.00。";
    json_t *rec = json_pack(
        "{s:s, s:s, s:{s:s, s:[{s:s, s:f}, {s:s, s:f}]}, s:{s:[], s:{s:{s:b, s:n}}}, s:I}",
        "turn_id", "turn_1", "decision", "deliver", "reply", "text", reply, "citations", "id",
        "kb_1", "score", 0.875, "id", "kb_2", "score", 0.5, "policy", "hits", "nested", "deeper",
        "ok", 1, "none", "amount", (json_int_t)128000);
    json_t *back = NULL;

    assert_non_null(rec);
    assert_int_equal(tg_store_turn_put(e->st, "turn_1", "conv_a", "deliver", 123, rec), TG_OK);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_store_turn_get(e->st, "turn_1", &back), TG_OK);
    assert_true(json_equal(back, rec));
    assert_string_equal(json_string_value(json_object_get(json_object_get(back, "reply"), "text")),
                        reply);
    json_decref(back);
    json_decref(rec);

    rec = parse("{\"turn_id\":\"turn_1\",\"decision\":\"review\",\"why\":{\"rule\":\"金额\"}}");
    assert_int_equal(tg_store_turn_put(e->st, "turn_1", "conv_a", "review", 124, rec), TG_OK);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_store_turn_get(e->st, "turn_1", &back), TG_OK);
    assert_true(json_equal(back, rec));
    json_decref(back);
    json_decref(rec);

    back = NULL;
    assert_int_equal(tg_store_turn_get(e->st, "turn_unknown", &back), TG_E_NOTFOUND);
    assert_null(back);
}

static void t_review_put_get_list(struct env *e)
{
    char ids[256];
    struct tg_review_row row;
    struct tg_review_row want = review("rev_2", "pending", 5, 900);
    json_t *task = NULL;

    put_review(e, "rev_1", "pending", 1, 500);
    put_review(e, "rev_2", "pending", 5, 900);
    put_review(e, "rev_3", "pending", 5, 300);
    put_review(e, "rev_4", "claimed", 9, 100);
    put_review(e, "rev_5", "decided", 0, 50);
    assert_int_equal(tg_store_flush(e->st), TG_OK);

    review_ids(e, "pending", 100, ids, sizeof(ids));
    assert_string_equal(ids, "rev_3,rev_2,rev_1");
    review_ids(e, "pending", 2, ids, sizeof(ids));
    assert_string_equal(ids, "rev_3,rev_2");
    review_ids(e, NULL, 100, ids, sizeof(ids));
    assert_string_equal(ids, "rev_4,rev_3,rev_2,rev_1,rev_5");
    review_ids(e, "expired", 100, ids, sizeof(ids));
    assert_string_equal(ids, "");

    assert_int_equal(tg_store_review_get(e->st, "rev_2", &row, &task), TG_OK);
    assert_memory_equal(&row, &want, sizeof(row));
    assert_string_equal(tg_json_str(task, "note", ""), "需要人工审核");
    assert_int_equal(tg_json_int(task, "priority", 0), 5);
    json_decref(task);
    assert_int_equal(tg_store_review_get(e->st, "rev_2", NULL, NULL), TG_OK);
    assert_int_equal(tg_store_review_get(e->st, "rev_unknown", &row, NULL), TG_E_NOTFOUND);

    /* Replacing by id moves a task between states. */
    put_review(e, "rev_1", "claimed", 1, 500);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    review_ids(e, "pending", 100, ids, sizeof(ids));
    assert_string_equal(ids, "rev_3,rev_2");
    review_ids(e, "claimed", 100, ids, sizeof(ids));
    assert_string_equal(ids, "rev_4,rev_1");
}

struct scan_log {
    uint64_t seen[32];
    size_t n;
    uint64_t stop_at; /* return 42 after this index */
};

static int scan_cb(void *ctx, const struct tg_audit_row *row)
{
    struct scan_log *log = ctx;
    assert_true(log->n < TG_ARRAY_LEN(log->seen));
    assert_leaf(row, row->index);
    log->seen[log->n++] = row->index;
    return row->index == log->stop_at ? 42 : 0;
}

static void t_audit_sequence(struct env *e)
{
    struct tg_audit_row row;
    struct scan_log log = {.stop_at = UINT64_MAX};

    assert_int_equal(audit_size(e), 0);
    for (uint64_t i = 0; i < 10; i++)
        put_leaf(e, i);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(audit_size(e), 10);

    assert_int_equal(tg_store_audit_get(e->st, 3, &row), TG_OK);
    assert_leaf(&row, 3);
    assert_int_equal(row.data[row.len], '\0');
    tg_free(row.data);
    assert_int_equal(tg_store_audit_get(e->st, 10, &row), TG_E_NOTFOUND);
    assert_int_equal(tg_store_audit_get(e->st, UINT64_MAX, &row), TG_E_NOTFOUND);

    assert_int_equal(tg_store_audit_scan(e->st, 4, scan_cb, &log), TG_OK);
    assert_int_equal(log.n, 6);
    for (size_t k = 0; k < log.n; k++)
        assert_int_equal(log.seen[k], 4 + k);

    log = (struct scan_log){.stop_at = 6};
    assert_int_equal(tg_store_audit_scan(e->st, 4, scan_cb, &log), 42);
    assert_int_equal(log.n, 3);
    assert_int_equal(log.seen[2], 6);

    log = (struct scan_log){.stop_at = UINT64_MAX};
    assert_int_equal(tg_store_audit_scan(e->st, 10, scan_cb, &log), TG_OK);
    assert_int_equal(log.n, 0);
    assert_int_equal(tg_store_audit_scan(e->st, 0, scan_cb, &log), TG_OK);
    assert_int_equal(log.n, 10);

    /* An empty leaf is stored and read back as zero bytes. */
    struct leaf l;
    make_leaf(10, &l);
    l.row.data = NULL;
    l.row.len = 0;
    assert_int_equal(tg_store_audit_put(e->st, &l.row), TG_OK);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_store_audit_get(e->st, 10, &row), TG_OK);
    assert_int_equal(row.len, 0);
    assert_non_null(row.data);
    tg_free(row.data);
}

static void t_audit_gap_is_conflict(struct env *e)
{
    struct tg_conversation c = conv("conv_a", "cust_1", 1, 2, 0, 0);

    put_leaf(e, 0);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    put_leaf(e, 2);
    assert_int_equal(tg_store_flush(e->st), TG_E_CONFLICT);
    /* Sticky: every later write and flush reports it. */
    assert_int_equal(tg_store_conversation_put(e->st, &c), TG_E_CONFLICT);
    assert_int_equal(tg_store_flush(e->st), TG_E_CONFLICT);
    assert_int_equal(audit_size(e), 1);
}

static void t_audit_duplicate_is_conflict(struct env *e)
{
    struct leaf l;
    struct tg_audit_row row;

    put_leaf(e, 0);
    put_leaf(e, 1);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    make_leaf(1, &l);
    l.row.ts_ms = 5; /* a different leaf claiming index 1 */
    assert_int_equal(tg_store_audit_put(e->st, &l.row), TG_OK);
    assert_int_equal(tg_store_flush(e->st), TG_E_CONFLICT);
    assert_int_equal(audit_size(e), 2);
    assert_int_equal(tg_store_audit_get(e->st, 1, &row), TG_OK);
    assert_leaf(&row, 1);
    tg_free(row.data);
}

static void t_reads_after_flush(struct env *e)
{
    struct tg_conversation c = conv("conv_a", "cust_1", 10, 20, 1, 0);
    struct tg_conversation got;

    put_conv(e, &c);
    add_msg(e, "conv_a", "turn_1", "user", "first", 20);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_store_conversation_get(e->st, "conv_a", &got), TG_OK);
    assert_int_equal(got.updated_ms, 20);
    assert_int_equal(message_count(e, "conv_a"), 1);

    c.updated_ms = 30;
    c.turns = 2;
    put_conv(e, &c);
    add_msg(e, "conv_a", "turn_2", "user", "second", 30);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_store_conversation_get(e->st, "conv_a", &got), TG_OK);
    assert_int_equal(got.updated_ms, 30);
    assert_int_equal(got.turns, 2);
    assert_int_equal(message_count(e, "conv_a"), 2);
}

/* A group-commit window delays only durability: a flush ends it at once,
 * and without a flush the writes land when the window closes. */
static void t_group_commit_window(struct env *e)
{
    struct tg_conversation got;
    tg_store_set_group_commit(e->st, 300);
    for (int i = 0; i < 50; i++)
        add_msg(e, "conv_g", "turn_g", "user", "grouped", 10 + i);
    int64_t t0 = tg_clock_mono_ns();
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_true(tg_clock_mono_ns() - t0 < 250 * 1000000LL);
    assert_int_equal(message_count(e, "conv_g"), 50);

    struct tg_conversation c = conv("conv_h", "cust_h", 1, 2, 1, 0);
    put_conv(e, &c);
    assert_int_equal(tg_store_conversation_get(e->st, "conv_h", &got), TG_E_NOTFOUND);
    int64_t deadline = tg_clock_mono_ns() + 3000 * 1000000LL;
    while (tg_store_conversation_get(e->st, "conv_h", &got) != TG_OK &&
           tg_clock_mono_ns() < deadline)
        usleep(20000);
    assert_int_equal(tg_store_conversation_get(e->st, "conv_h", &got), TG_OK);
    tg_store_set_group_commit(e->st, 0);
}

static void t_blobs(struct env *e)
{
    char *d = NULL;
    size_t n = 0;
    uint8_t bin[300];
    for (size_t i = 0; i < sizeof(bin); i++)
        bin[i] = (uint8_t)(i * 7);
    assert_int_equal(tg_store_blob_get(e->st, "kb:index", &d, &n), TG_E_NOTFOUND);
    assert_int_equal(tg_store_blob_put(e->st, "kb:index", bin, sizeof(bin)), TG_OK);
    assert_int_equal(tg_store_blob_put(e->st, "empty", NULL, 0), TG_OK);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_store_blob_get(e->st, "kb:index", &d, &n), TG_OK);
    assert_int_equal(n, sizeof(bin));
    assert_memory_equal(d, bin, sizeof(bin));
    tg_free(d);
    assert_int_equal(tg_store_blob_get(e->st, "empty", &d, &n), TG_OK);
    assert_int_equal(n, 0);
    tg_free(d);
    assert_int_equal(tg_store_blob_put(e->st, "kb:index", "v2", 2), TG_OK);
    assert_int_equal(tg_store_blob_delete(e->st, "empty"), TG_OK);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_store_blob_get(e->st, "kb:index", &d, &n), TG_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(d, "v2", 2);
    tg_free(d);
    assert_int_equal(tg_store_blob_get(e->st, "empty", &d, &n), TG_E_NOTFOUND);
    assert_int_equal(tg_store_blob_put(e->st, "", "x", 1), TG_E_INVAL);
}

/* A turn whose record is an audit leaf reads back as that leaf. */
static void t_turn_record_in_the_audit_log(struct env *e)
{
    const char *leaf = "{\"decision\":\"deliver\",\"turn_id\":\"turn_L\"}";
    struct tg_audit_row row;
    memset(&row, 0, sizeof(row));
    row.index = 0;
    row.data = (char *)leaf;
    row.len = strlen(leaf);
    put_leaf(e, 0);
    assert_int_equal(tg_store_audit_append(e->st, &row, NULL), TG_OK);
    assert_int_equal(tg_store_turn_put_leaf(e->st, "turn_L", "conv_L", "deliver", 5), TG_OK);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    json_t *rec = NULL;
    assert_int_equal(tg_store_turn_get(e->st, "turn_L", &rec), TG_OK);
    assert_string_equal(tg_json_str(rec, "turn_id", ""), "turn_L");
    assert_string_equal(tg_json_str(rec, "decision", ""), "deliver");
    assert_int_equal(tg_json_int(rec, "audit_index", -1), 1); /* where it was committed */
    json_decref(rec);
}

/* The MTH of the stored leaves 0..n-1 from their hashes. */
static void stored_root(struct env *e, uint64_t n, uint8_t out[TG_SHA256_LEN])
{
    uint8_t(*h)[TG_SHA256_LEN] = tg_calloc(n ? n : 1, TG_SHA256_LEN);
    struct tg_audit_row row;
    assert_non_null(h);
    for (uint64_t i = 0; i < n; i++) {
        assert_int_equal(tg_store_audit_get(e->st, i, &row), TG_OK);
        memcpy(h[i], row.leaf_hash, TG_SHA256_LEN);
        tg_free(row.data);
    }
    tg_audit_tree_root((const uint8_t(*)[TG_SHA256_LEN])h, n, out);
    tg_free(h);
}

/* Appended leaves are numbered where they are committed, after the ones
 * put with their index, each with the tree head after it. */
static void t_audit_append_numbers(struct env *e)
{
    uint64_t seq[5], idx = 0;
    struct tg_audit_row row;
    uint8_t root[TG_SHA256_LEN];

    put_leaf(e, 0);
    put_leaf(e, 1);
    for (int i = 0; i < 5; i++) {
        struct leaf l;
        make_leaf(100 + (uint64_t)i, &l);
        l.row.index = 7; /* not read */
        assert_int_equal(tg_store_audit_append(e->st, &l.row, &seq[i]), TG_OK);
        assert_int_equal(tg_store_audit_index(e->st, seq[i], &idx), TG_E_NOTFOUND);
    }
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(tg_store_audit_index(e->st, seq[i], &idx), TG_OK);
        assert_int_equal(idx, 2 + i);
        assert_int_equal(tg_store_audit_get(e->st, idx, &row), TG_OK);
        stored_root(e, idx + 1, root);
        assert_memory_equal(row.root, root, TG_SHA256_LEN);
        tg_free(row.data);
    }
    reopen(e); /* the numbering goes on from the stored log */
    struct leaf l;
    make_leaf(200, &l);
    assert_int_equal(tg_store_audit_append(e->st, &l.row, &seq[0]), TG_OK);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_store_audit_index(e->st, seq[0], &idx), TG_OK);
    assert_int_equal(idx, 7);
    assert_int_equal(audit_size(e), 8);
}

static void t_writes_copy_arguments(struct env *e)
{
    char content[32] = "original text";
    char role[16] = "user";
    char data[16] = "leaf-bytes";
    struct tg_message m;
    struct tg_audit_row row;
    json_t *rec = parse("{\"k\":\"v\"}");
    json_t *arr = NULL;

    memset(&m, 0, sizeof(m));
    tg_strlcpy(m.conversation_id, "conv_a", sizeof(m.conversation_id));
    m.role = role;
    m.content = content;
    assert_int_equal(tg_store_message_add(e->st, &m), TG_OK);
    assert_int_equal(tg_store_turn_put(e->st, "turn_1", "conv_a", "deliver", 1, rec), TG_OK);
    memset(&row, 0, sizeof(row));
    row.data = data;
    row.len = strlen(data);
    assert_int_equal(tg_store_audit_put(e->st, &row), TG_OK);

    /* Scribble over everything the caller passed before the writer runs. */
    memset(content, 'z', sizeof(content) - 1);
    memset(role, 'q', sizeof(role) - 1);
    memset(data, '#', sizeof(data) - 1);
    memset(&m, 0xff, sizeof(m));
    json_object_set_new(rec, "k", json_string("changed"));
    json_decref(rec);

    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_store_messages(e->st, "conv_a", 10, &arr), TG_OK);
    assert_int_equal(json_array_size(arr), 1);
    assert_string_equal(tg_json_str(json_array_get(arr, 0), "content", ""), "original text");
    assert_string_equal(tg_json_str(json_array_get(arr, 0), "role", ""), "user");
    assert_string_equal(tg_json_str(json_array_get(arr, 0), "turn_id", "?"), "");
    json_decref(arr);
    assert_int_equal(tg_store_turn_get(e->st, "turn_1", &rec), TG_OK);
    assert_string_equal(tg_json_str(rec, "k", ""), "v");
    json_decref(rec);
    assert_int_equal(tg_store_audit_get(e->st, 0, &row), TG_OK);
    assert_int_equal(row.len, strlen("leaf-bytes"));
    assert_memory_equal(row.data, "leaf-bytes", row.len);
    tg_free(row.data);
}

static void t_many_writes(struct env *e)
{
    enum { N = 5000 };
    char text[32];
    json_t *arr = NULL;

    for (int i = 0; i < N; i++) {
        snprintf(text, sizeof(text), "m%04d", i);
        add_msg(e, "conv_bulk", "turn_bulk", "user", text, i);
        if (i % 10 == 0)
            put_leaf(e, (uint64_t)i / 10);
    }
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(audit_size(e), N / 10);

    assert_int_equal(tg_store_messages(e->st, "conv_bulk", 2 * N, &arr), TG_OK);
    assert_int_equal(json_array_size(arr), N);
    for (size_t i = 0; i < N; i++) {
        json_t *m = json_array_get(arr, i);
        snprintf(text, sizeof(text), "m%04zu", i);
        assert_string_equal(tg_json_str(m, "content", ""), text);
        assert_int_equal(tg_json_int(m, "ts_ms", -1), (int64_t)i);
    }
    json_decref(arr);

    assert_int_equal(tg_store_messages(e->st, "conv_bulk", 10, &arr), TG_OK);
    assert_int_equal(json_array_size(arr), 10);
    assert_string_equal(tg_json_str(json_array_get(arr, 0), "content", ""), "m4990");
    assert_string_equal(tg_json_str(json_array_get(arr, 9), "content", ""), "m4999");
    json_decref(arr);
}

static void t_close_without_flush(struct env *e)
{
    enum { N = 3000, LEAVES = 200 };
    char text[32];
    struct tg_conversation c = conv("conv_last", "cust_9", 1, 99, 5, 0);
    struct tg_conversation got;

    for (int i = 0; i < N; i++) {
        snprintf(text, sizeof(text), "n%d", i);
        add_msg(e, "conv_last", "turn_last", "assistant", text, i);
    }
    for (uint64_t i = 0; i < LEAVES; i++)
        put_leaf(e, i);
    put_conv(e, &c);
    reopen(e); /* close straight away: close itself must commit the queue */

    assert_int_equal(message_count(e, "conv_last"), N);
    assert_int_equal(audit_size(e), LEAVES);
    assert_int_equal(tg_store_conversation_get(e->st, "conv_last", &got), TG_OK);
    assert_int_equal(got.updated_ms, 99);
}

static void t_flush_idle_and_kind(struct env *e)
{
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_string_equal(tg_store_kind(e->st), e->op->name);
}

static void t_invalid_arguments(struct env *e)
{
    struct tg_conversation c = conv("", "cust", 1, 1, 0, 0);
    struct tg_message m;
    struct tg_review_row r = review("rev_1", "pending", 1, 1);
    struct tg_audit_row row;
    json_t *arr = json_array();
    json_t *obj = json_object();

    assert_int_equal(tg_store_conversation_put(e->st, &c), TG_E_INVAL);
    memset(&m, 0, sizeof(m));
    tg_strlcpy(m.conversation_id, "conv_a", sizeof(m.conversation_id));
    m.role = "user";
    assert_int_equal(tg_store_message_add(e->st, &m), TG_E_INVAL);
    assert_int_equal(tg_store_turn_put(e->st, "turn_1", "conv_a", "deliver", 1, arr), TG_E_INVAL);
    assert_int_equal(tg_store_turn_put(e->st, NULL, "conv_a", "deliver", 1, obj), TG_E_INVAL);
    assert_int_equal(tg_store_review_put(e->st, &r, NULL), TG_E_INVAL);
    memset(&row, 0, sizeof(row));
    row.len = 3;
    assert_int_equal(tg_store_audit_put(e->st, &row), TG_E_INVAL);
    assert_int_equal(tg_store_review_list(e->st, NULL, 10, NULL), TG_E_INVAL);
    assert_int_equal(tg_store_audit_scan(e->st, 0, NULL, NULL), TG_E_INVAL);
    /* Rejected arguments are not write errors: the store still works. */
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(audit_size(e), 0);
    json_decref(arr);
    json_decref(obj);
}

static void t_bad_uri_reports(struct env *e)
{
    char uri[600], hint[600], err[512] = "";
    struct tg_store *st = NULL;

    e->op->bad_uri(e, uri, sizeof(uri), hint, sizeof(hint));
    assert_int_not_equal(tg_store_open(uri, &st, err, sizeof(err)), TG_OK);
    assert_null(st);
    assert_true(strlen(err) > 0);
    if (!strstr(err, hint))
        print_error("error \"%s\" does not mention \"%s\"\n", err, hint);
    assert_non_null(strstr(err, hint));
}

/* ------------------------------------------------------------ hand-off threads */

static void handoff(struct env *e, const char *rid, const char *from, const char *actor,
                    const char *text, int64_t at, int64_t after)
{
    struct tg_handoff_msg m = {
        .from = from, .actor = actor, .text = text, .at_ms = at, .after_events = after};
    tg_strlcpy(m.review_id, rid, sizeof(m.review_id));
    if (!strcmp(from, "customer"))
        snprintf(m.turn_id, sizeof(m.turn_id), "turn_%lld", (long long)at);
    assert_int_equal(tg_store_handoff_add(e->st, &m), TG_OK);
}

static void put_task(struct env *e, const char *text)
{
    json_t *task = parse(text);
    struct tg_review_row r = review("rev_h", tg_json_str(task, "state", ""), 5, 900);
    assert_int_equal(tg_store_review_put(e->st, &r, task), TG_OK);
    json_decref(task);
}

/* A hand-off's thread lives in rows and reads back in the task's shape,
 * each message's event where it happened among the task's own. */
static void t_handoff_thread(struct env *e)
{
    json_t *t = NULL;
    struct tg_review_row row;
    put_task(e, "{\"id\":\"rev_h\",\"state\":\"handed_off\",\"conversation_id\":\"conv_h\","
                "\"events\":[{\"at\":1,\"event\":\"created\"},{\"at\":2,\"event\":\"handed_off\"}],"
                "\"customer_messages\":[{\"text\":\"not stored with the task\"}]}");
    handoff(e, "rev_h", "customer", "customer", "还在吗", 3, 2);
    handoff(e, "rev_h", "agent", "ann", "在的", 4, 2);
    /* closing: the task gets its event after the reply's */
    put_task(e, "{\"id\":\"rev_h\",\"state\":\"closed\",\"conversation_id\":\"conv_h\","
                "\"events\":[{\"at\":1,\"event\":\"created\"},{\"at\":2,\"event\":\"handed_off\"},"
                "{\"at\":4,\"event\":\"closed\"}]}");
    assert_int_equal(tg_store_flush(e->st), TG_OK);

    assert_int_equal(tg_store_review_get(e->st, "rev_h", &row, &t), TG_OK);
    assert_string_equal(row.conversation_id, "conv_h");
    const json_t *cm = json_object_get(t, "customer_messages");
    assert_int_equal(json_array_size(cm), 1);
    assert_string_equal(tg_json_str(json_array_get(cm, 0), "text", ""), "还在吗");
    assert_string_equal(tg_json_str(json_array_get(cm, 0), "turn_id", ""), "turn_3");
    assert_int_equal(tg_json_int(json_array_get(cm, 0), "at", 0), 3);
    const json_t *ar = json_object_get(t, "agent_replies");
    assert_int_equal(json_array_size(ar), 1);
    assert_string_equal(tg_json_str(json_array_get(ar, 0), "actor", ""), "ann");
    assert_string_equal(tg_json_str(json_array_get(ar, 0), "text", ""), "在的");
    static const char *const order[] = {"created", "handed_off", "customer_message", "agent_reply",
                                        "closed"};
    const json_t *ev = json_object_get(t, "events");
    assert_int_equal(json_array_size(ev), TG_ARRAY_LEN(order));
    for (size_t i = 0; i < TG_ARRAY_LEN(order); i++)
        assert_string_equal(tg_json_str(json_array_get(ev, i), "event", ""), order[i]);
    json_decref(t);

    /* a writer reads the task without its thread */
    assert_int_equal(tg_store_review_get_bare(e->st, "rev_h", NULL, &t), TG_OK);
    assert_null(json_object_get(t, "customer_messages"));
    assert_null(json_object_get(t, "agent_replies"));
    assert_int_equal(json_array_size(json_object_get(t, "events")), 3);
    json_decref(t);

    /* a list shows the latest messages of each thread */
    for (int i = 0; i < TG_STORE_LIST_THREAD + 10; i++)
        handoff(e, "rev_h", "customer", "customer", "又一条", 10 + i, 3);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    json_t *list = NULL;
    assert_int_equal(tg_store_review_list(e->st, "closed", 10, &list), TG_OK);
    cm = json_object_get(json_array_get(list, 0), "customer_messages");
    ar = json_object_get(json_array_get(list, 0), "agent_replies");
    assert_int_equal(json_array_size(cm) + json_array_size(ar), TG_STORE_LIST_THREAD);
    assert_int_equal(tg_json_int(json_array_get(cm, json_array_size(cm) - 1), "at", 0),
                     10 + TG_STORE_LIST_THREAD + 9);
    json_decref(list);
    assert_int_equal(tg_store_review_get(e->st, "rev_h", NULL, &t), TG_OK);
    assert_int_equal(json_array_size(json_object_get(t, "customer_messages")),
                     TG_STORE_LIST_THREAD + 11);
    json_decref(t);
    /* a task without a thread reads as it was put */
    put_review(e, "rev_p", "pending", 1, 100);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_store_review_get(e->st, "rev_p", NULL, &t), TG_OK);
    assert_null(json_object_get(t, "customer_messages"));
    assert_null(json_object_get(t, "events"));
    json_decref(t);
}

struct scanned {
    char ids[512];
    int64_t deadlines[8];
    size_t n;
};

static int task_scan_cb(void *ctx, const struct tg_review_row *row)
{
    struct scanned *sc = ctx;
    size_t len = strlen(sc->ids);
    snprintf(sc->ids + len, sizeof(sc->ids) - len, "%s%s@%s", len ? "," : "", row->id,
             row->conversation_id);
    if (sc->n < TG_ARRAY_LEN(sc->deadlines))
        sc->deadlines[sc->n] = row->deadline_ms;
    sc->n++;
    return strcmp(row->id, "rev_stop") == 0 ? 42 : TG_OK;
}

/* Start-up reads the key columns of the tasks in a state, by deadline. */
static void t_review_scan(struct env *e)
{
    struct scanned sc;
    const char *tasks[][3] = {{"rev_a", "pending", "conv_1"},
                              {"rev_b", "handed_off", "conv_2"},
                              {"rev_c", "pending", "conv_3"},
                              {"rev_stop", "claimed", "conv_4"},
                              {"rev_d", "claimed", "conv_5"}};
    const int64_t deadlines[] = {300, 100, 200, 50, 60};
    for (size_t i = 0; i < TG_ARRAY_LEN(tasks); i++) {
        struct tg_review_row r = review(tasks[i][0], tasks[i][1], 5, deadlines[i]);
        json_t *task = json_pack("{s:s, s:s, s:s}", "id", tasks[i][0], "state", tasks[i][1],
                                 "conversation_id", tasks[i][2]);
        assert_int_equal(tg_store_review_put(e->st, &r, task), TG_OK);
        json_decref(task);
    }
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    memset(&sc, 0, sizeof(sc));
    assert_int_equal(tg_store_review_scan(e->st, "pending", task_scan_cb, &sc), TG_OK);
    assert_string_equal(sc.ids, "rev_c@conv_3,rev_a@conv_1");
    assert_int_equal(sc.deadlines[0], 200);
    memset(&sc, 0, sizeof(sc));
    assert_int_equal(tg_store_review_scan(e->st, "handed_off", task_scan_cb, &sc), TG_OK);
    assert_string_equal(sc.ids, "rev_b@conv_2");
    memset(&sc, 0, sizeof(sc));
    assert_int_equal(tg_store_review_scan(e->st, "claimed", task_scan_cb, &sc),
                     42); /* cb stops it */
    assert_string_equal(sc.ids, "rev_stop@conv_4");
    assert_int_equal(tg_store_review_scan(e->st, NULL, task_scan_cb, &sc), TG_E_INVAL);
}

/* ------------------------------------------------------------ privacy hooks */

/* Test hooks: a pseudonym that is a hash of the lower-cased id, a mask that hides digits. */
static int test_pseudonym(void *arg, const char *id, char out[TG_STORE_KEY_MAX])
{
    uint8_t h[TG_SHA256_LEN];
    char lower[TG_STORE_KEY_MAX];
    size_t i;
    int *calls = arg;
    (*calls)++;
    for (i = 0; id[i] && i + 1 < sizeof(lower); i++)
        lower[i] = (char)(id[i] >= 'A' && id[i] <= 'Z' ? id[i] - 'A' + 'a' : id[i]);
    lower[i] = '\0';
    tg_sha256(lower, i, h);
    memcpy(out, "ps_", 3);
    tg_hex_encode(h, 16, out + 3);
    return TG_OK;
}

static int test_mask(void *arg, const char *text, size_t len, struct tg_buf *out)
{
    int rc = TG_OK;
    (void)arg;
    for (size_t i = 0; i < len && rc == TG_OK; i++)
        rc = tg_buf_append(out, text[i] >= '0' && text[i] <= '9' ? "*" : text + i, 1);
    return rc;
}

static int hook_calls;
static const struct tg_store_privacy test_priv = {
    .pseudonym = test_pseudonym, .mask = test_mask, .arg = &hook_calls};

static void open_private(struct env *e)
{
    char err[256] = "";
    tg_store_close(e->st);
    e->st = NULL;
    int rc = tg_store_open_private(e->uri, &test_priv, &e->st, err, sizeof(err));
    if (rc != TG_OK)
        print_error("open %s: %s\n", e->uri, err);
    assert_int_equal(rc, TG_OK);
}

/* With hooks, customer ids are found by their pseudonyms and free texts
 * are stored masked, whoever writes them; the caller's values stay as
 * they were. */
static void t_privacy_hooks(struct env *e)
{
    struct tg_conversation c = conv("conv_p", "Cust-13800138000", 1, 5, 1, 0), got;
    char ps[TG_STORE_KEY_MAX];
    json_t *t = NULL;
    open_private(e);
    put_conv(e, &c);
    assert_string_equal(c.customer_id, "Cust-13800138000");
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_store_conversation_latest(e->st, "cust-13800138000", &got), TG_OK);
    assert_string_equal(got.id, "conv_p");
    assert_int_equal(tg_store_pseudonym(e->st, "CUST-13800138000", ps), TG_OK);
    assert_string_equal(got.customer_id, ps);
    assert_null(strstr(got.customer_id, "13800138000"));

    struct tg_review_row r = review("rev_p", "decided", 5, 900);
    json_t *task = parse("{\"id\":\"rev_p\",\"state\":\"decided\",\"answer\":\"call 13800138000\","
                         "\"decision\":{\"text\":\"call 13800138000\",\"reason\":\"card 6222\"},"
                         "\"conversation\":[{\"role\":\"user\",\"content\":\"id 110105\"}],"
                         "\"draft\":\"kept 42\"}");
    assert_int_equal(tg_store_review_put(e->st, &r, task), TG_OK);
    assert_string_equal(tg_json_str(task, "answer", ""), "call 13800138000");
    json_decref(task);
    handoff(e, "rev_p", "agent", "ann", "reach me at 13800138000", 7, 0);
    struct tg_buf b;
    tg_buf_init(&b, 64);
    assert_int_equal(tg_store_mask(e->st, "a1b2", 4, &b), TG_OK);
    assert_string_equal(b.data, "a*b*");
    tg_buf_free(&b);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_store_review_get(e->st, "rev_p", NULL, &t), TG_OK);
    assert_string_equal(tg_json_str(t, "answer", ""), "call ***********");
    assert_string_equal(tg_json_str(json_object_get(t, "decision"), "text", ""),
                        "call ***********");
    assert_string_equal(tg_json_str(json_object_get(t, "decision"), "reason", ""), "card ****");
    assert_string_equal(
        tg_json_str(json_array_get(json_object_get(t, "conversation"), 0), "content", ""),
        "id ******");
    assert_string_equal(tg_json_str(t, "draft", ""), "kept 42"); /* the AI's, masked upstream */
    json_decref(t);
    /* a hand-off message is stored masked too */
    struct tg_review_row h = review("rev_q", "handed_off", 5, 900);
    task = parse("{\"id\":\"rev_q\",\"state\":\"handed_off\"}");
    assert_int_equal(tg_store_review_put(e->st, &h, task), TG_OK);
    json_decref(task);
    handoff(e, "rev_q", "customer", "customer", "my card 6222021234567890", 8, 0);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_store_review_get(e->st, "rev_q", NULL, &t), TG_OK);
    assert_string_equal(
        tg_json_str(json_array_get(json_object_get(t, "customer_messages"), 0), "text", ""),
        "my card ****************");
    json_decref(t);

    /* reopened with the hooks: nothing is converted twice */
    open_private(e);
    assert_int_equal(tg_store_conversation_latest(e->st, "Cust-13800138000", &got), TG_OK);
    assert_string_equal(got.customer_id, ps);
}

struct conformance_case {
    const char *name;
    void (*run)(struct env *e);
};

struct facts_seen {
    int n;
    char line[512];
};

static int facts_cb(void *ctx, const struct tg_review_facts *f)
{
    struct facts_seen *s = ctx;
    size_t len = strlen(s->line);
    snprintf(s->line + len, sizeof(s->line) - len, "%s%s:%s:%s:%s:%lld:%lld:%s:%s",
             s->n++ ? " " : "", f->state, f->queue, f->original_queue, f->kind,
             (long long)f->created_ms, (long long)f->decided_ms, f->actor, f->action);
    return TG_OK;
}

/* Statistics read open tasks of any age and the rest since a time, a few
 * facts of each, without the task being parsed. */
static void t_review_facts(struct env *e)
{
    struct tg_review_row r = review("rev_old", "pending", 1, 50);
    r.updated_ms = 10;
    json_t *t = json_pack("{s:s, s:s, s:s, s:I}", "id", "rev_old", "kind", "review", "queue",
                          "wealth", "created_ms", (json_int_t)5);
    assert_int_equal(tg_store_review_put(e->st, &r, t), TG_OK);
    json_decref(t);
    r = review("rev_done", "decided", 1, 5000);
    r.updated_ms = 4000;
    t = json_pack("{s:s, s:s, s:I, s:{s:s, s:s, s:I}}", "id", "rev_done", "kind", "review",
                  "created_ms", (json_int_t)3000, "decision", "action", "approve", "actor", "rex",
                  "at", (json_int_t)3900);
    assert_int_equal(tg_store_review_put(e->st, &r, t), TG_OK);
    json_decref(t);
    r = review("rev_gone", "handed_off", 1, 20);
    r.updated_ms = 20; /* before the window: not read */
    tg_strlcpy(r.queue, "human_agent", sizeof(r.queue));
    t = json_pack("{s:s, s:s, s:s, s:I}", "id", "rev_gone", "kind", "review", "original_queue",
                  "claims", "created_ms", (json_int_t)1);
    assert_int_equal(tg_store_review_put(e->st, &r, t), TG_OK);
    json_decref(t);
    assert_int_equal(tg_store_flush(e->st), TG_OK);

    struct facts_seen seen = {0};
    assert_int_equal(tg_store_review_facts(e->st, 1000, facts_cb, &seen), TG_OK);
    assert_int_equal(seen.n, 2);
    assert_non_null(strstr(seen.line, "pending:refunds::review:5:0::"));
    assert_non_null(strstr(seen.line, "decided:refunds::review:3000:3900:rex:approve"));
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(tg_store_review_facts(e->st, 0, facts_cb, &seen), TG_OK);
    assert_int_equal(seen.n, 3);
    assert_non_null(strstr(seen.line, "handed_off:human_agent:claims:review:1:0::"));
    assert_int_equal(tg_store_review_facts(e->st, 0, NULL, NULL), TG_E_INVAL);
}

/* Which person has a conversation: its latest task in a state. */
static void t_review_of_conversation(struct env *e)
{
    static const struct {
        const char *id, *conv, *state;
        int64_t updated;
    } rows[] = {
        {"rev_1", "conv_x", "handed_off", 100},
        {"rev_2", "conv_x", "handed_off", 300},
        {"rev_3", "conv_x", "closed", 500},
        {"rev_4", "conv_y", "pending", 200},
    };
    struct tg_review_row got;
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        struct tg_review_row r = review(rows[i].id, rows[i].state, 1, 1000);
        tg_strlcpy(r.conversation_id, rows[i].conv, sizeof(r.conversation_id));
        r.updated_ms = rows[i].updated;
        json_t *t = json_pack("{s:s, s:s}", "id", rows[i].id, "conversation_id", rows[i].conv);
        assert_int_equal(tg_store_review_put(e->st, &r, t), TG_OK);
        json_decref(t);
    }
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_store_review_of_conversation(e->st, "conv_x", "handed_off", &got), TG_OK);
    assert_string_equal(got.id, "rev_2");
    assert_string_equal(got.conversation_id, "conv_x");
    assert_int_equal(got.updated_ms, 300);
    assert_int_equal(tg_store_review_of_conversation(e->st, "conv_y", "handed_off", &got),
                     TG_E_NOTFOUND);
    assert_int_equal(tg_store_review_of_conversation(e->st, "conv_z", "pending", &got),
                     TG_E_NOTFOUND);
    assert_int_equal(tg_store_review_of_conversation(e->st, "", "pending", &got), TG_E_INVAL);
    assert_int_equal(tg_store_shared(e->st), !strcmp(e->op->name, "postgres"));
}

/* A turn is counted where it is committed: two turns written from the same
 * stale view (two nodes, one customer) are both counted. */
static void t_conversation_step(struct env *e)
{
    struct tg_conversation c = conv("conv_s", "cust_s", 10, 20, 1, 0), got;
    put_conv(e, &c);
    struct tg_conversation seen = c; /* what both writers read */
    seen.turns = 2;
    seen.degraded_streak = 1;
    seen.updated_ms = 30;
    assert_int_equal(tg_store_conversation_step(e->st, &seen, true), TG_OK);
    seen.updated_ms = 25; /* the later one committed first */
    assert_int_equal(tg_store_conversation_step(e->st, &seen, true), TG_OK);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_store_conversation_get(e->st, "conv_s", &got), TG_OK);
    assert_int_equal(got.turns, 3);
    assert_int_equal(got.degraded_streak, 2);
    assert_int_equal(got.updated_ms, 30);
    assert_int_equal(got.created_ms, 10);
    assert_int_equal(tg_store_conversation_step(e->st, &seen, false), TG_OK);
    /* a new conversation is inserted as given */
    struct tg_conversation n = conv("conv_n", "cust_n", 40, 40, 1, 1);
    assert_int_equal(tg_store_conversation_step(e->st, &n, true), TG_OK);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_store_conversation_get(e->st, "conv_s", &got), TG_OK);
    assert_int_equal(got.turns, 4);
    assert_int_equal(got.degraded_streak, 0);
    assert_int_equal(tg_store_conversation_get(e->st, "conv_n", &got), TG_OK);
    assert_int_equal(got.turns, 1);
    assert_int_equal(got.degraded_streak, 1);
    assert_string_equal(got.customer_id, "cust_n");
}

/* A write that fails loses itself, not the writes committed beside it. */
static void t_failed_write_keeps_its_batch(struct env *e)
{
    struct tg_conversation c = conv("conv_b", "cust_2", 1, 2, 1, 0), got;

    tg_store_set_group_commit(e->st, 200); /* the three writes share one batch */
    put_conv(e, &c);
    put_leaf(e, 3); /* a gap: refused */
    add_msg(e, "conv_b", "turn_1", "user", "still here", 5);
    assert_int_equal(tg_store_flush(e->st), TG_E_CONFLICT);
    assert_int_equal(tg_store_conversation_get(e->st, "conv_b", &got), TG_OK);
    assert_int_equal(got.turns, 1);
    assert_int_equal(message_count(e, "conv_b"), 1);
    assert_int_equal(audit_size(e), 0);
}

/*
 * An act's writes held together (tg_store_hold) are not committed while
 * the act is still queueing them, then commit together; one failing loses
 * the whole act and not the writes beside it.
 */
static void t_held_writes_commit_together(struct env *e)
{
    struct tg_conversation a = conv("conv_h1", "cust_h", 1, 2, 1, 0),
                           b = conv("conv_h2", "cust_h", 3, 4, 1, 0), got;
    int err = TG_OK;

    tg_store_hold(e->st);
    put_conv(e, &a);
    uint64_t queued = tg_store_ticket(e->st); /* a waiter: the writer would commit at once */
    usleep(200 * 1000);
    assert_true(tg_store_committed(e->st, &err) < queued);
    add_msg(e, "conv_h1", "turn_1", "user", "held", 5);
    tg_store_release(e->st, TG_OK);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_store_conversation_get(e->st, "conv_h1", &got), TG_OK);
    assert_int_equal(message_count(e, "conv_h1"), 1);

    /* an act given up: its writes are dropped, never written */
    tg_store_hold(e->st);
    put_conv(e, &b);
    add_msg(e, "conv_h1", "turn_x", "user", "given up", 5);
    assert_int_equal(tg_store_release(e->st, TG_E_INVAL), TG_E_INVAL);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(tg_store_conversation_get(e->st, "conv_h2", &got), TG_E_NOTFOUND);
    assert_int_equal(message_count(e, "conv_h1"), 1);

    tg_store_set_group_commit(e->st, 200); /* the act and its neighbours share one batch */
    add_msg(e, "conv_h1", "turn_2", "user", "before", 6);
    tg_store_hold(e->st);
    put_conv(e, &b);
    put_leaf(e, 3); /* a gap: refused, and the act with it */
    tg_store_release(e->st, TG_OK);
    add_msg(e, "conv_h1", "turn_3", "user", "after", 7);
    assert_int_equal(tg_store_flush(e->st), TG_E_CONFLICT);
    assert_int_equal(tg_store_conversation_get(e->st, "conv_h2", &got), TG_E_NOTFOUND);
    assert_int_equal(message_count(e, "conv_h1"), 3);
    assert_int_equal(audit_size(e), 0);
}

static const struct conformance_case cases[] = {
    {"failed_write_keeps_its_batch", t_failed_write_keeps_its_batch},
    {"held_writes_commit_together", t_held_writes_commit_together},
    {"audit_append_numbers", t_audit_append_numbers},
    {"review_of_conversation", t_review_of_conversation},
    {"conversation_step", t_conversation_step},
    {"review_facts", t_review_facts},
    {"reopen_keeps_data", t_reopen_keeps_data},
    {"conversation_put_get_latest", t_conversation_put_get_latest},
    {"message_order_and_limit", t_message_order_and_limit},
    {"turn_roundtrip", t_turn_roundtrip},
    {"review_put_get_list", t_review_put_get_list},
    {"audit_sequence", t_audit_sequence},
    {"audit_gap_is_conflict", t_audit_gap_is_conflict},
    {"audit_duplicate_is_conflict", t_audit_duplicate_is_conflict},
    {"reads_after_flush", t_reads_after_flush},
    {"group_commit_window", t_group_commit_window},
    {"blobs", t_blobs},
    {"turn_record_in_the_audit_log", t_turn_record_in_the_audit_log},
    {"writes_copy_arguments", t_writes_copy_arguments},
    {"many_writes", t_many_writes},
    {"close_without_flush", t_close_without_flush},
    {"flush_idle_and_kind", t_flush_idle_and_kind},
    {"invalid_arguments", t_invalid_arguments},
    {"bad_uri_reports", t_bad_uri_reports},
    {"handoff_thread", t_handoff_thread},
    {"review_scan", t_review_scan},
    {"privacy_hooks", t_privacy_hooks},
};

/* One (fixture, case) pair: the cmocka state of a conformance test. */
struct slot {
    const struct opener *op;
    const struct conformance_case *tc;
    struct env env;
};

static int slot_setup(void **state)
{
    struct slot *sl = *state;
    memset(&sl->env, 0, sizeof(sl->env));
    sl->env.op = sl->op;
    if (sl->op->init(&sl->env) != 0)
        return -1;
    open_store(&sl->env);
    return 0;
}

static int slot_teardown(void **state)
{
    struct slot *sl = *state;
    tg_store_close(sl->env.st);
    sl->env.st = NULL;
    sl->op->fini(&sl->env);
    return 0;
}

static void slot_run(void **state)
{
    struct slot *sl = *state;
    sl->tc->run(&sl->env);
}

static int run_conformance(const struct opener *op)
{
    static struct slot slots[TG_ARRAY_LEN(cases)];
    struct CMUnitTest tests[TG_ARRAY_LEN(cases)];
    char group[64];

    snprintf(group, sizeof(group), "store conformance: %s", op->name);
    if (!op->available()) {
        print_message("[  SKIPPED ] %s: backend not available here\n", group);
        return 0;
    }
    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        slots[i] = (struct slot){.op = op, .tc = &cases[i]};
        tests[i] = (struct CMUnitTest){
            .name = cases[i].name,
            .test_func = slot_run,
            .setup_func = slot_setup,
            .teardown_func = slot_teardown,
            .initial_state = &slots[i],
        };
    }
    return _cmocka_run_group_tests(group, tests, TG_ARRAY_LEN(tests), NULL, NULL);
}

/* ------------------------------------------------------------ uri dispatch (store.c) */

/* Connections the server drops (a restart, a killed backend) are opened
 * again: a read runs once more, a batch is run again, nothing is lost. */
static void test_postgres_reconnects(void **state)
{
    struct env e = {.op = &openers[1]};
    struct tg_conversation c = conv("conv_r", "cust_r", 1, 2, 3, 0), got;
    char sql[512];
    (void)state;
    if (!pg_available())
        skip();
    assert_int_equal(pg_init(&e), 0);
    open_store(&e);
    put_conv(&e, &c);
    assert_int_equal(tg_store_flush(e.st), TG_OK);
    snprintf(sql, sizeof(sql),
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'", e.dir);
    assert_int_equal(tg_h_pg_exec(sql), 0);
    assert_int_equal(tg_store_conversation_get(e.st, "conv_r", &got), TG_OK);
    assert_int_equal(got.turns, 3);
    add_msg(&e, "conv_r", "turn_1", "user", "after the restart", 4);
    put_leaf(&e, 0);
    assert_int_equal(tg_store_flush(e.st), TG_OK);
    assert_int_equal(message_count(&e, "conv_r"), 1);
    assert_int_equal(audit_size(&e), 1);
    tg_store_close(e.st);
    pg_fini(&e);
}

/* Two stores on one database, as two gateway nodes: their leaves make one
 * log, numbered in the order of their commits, every head right. */
/* Two handles on one fresh PostgreSQL database, as two nodes have; skipped
 * without a server. */
static void two_nodes(struct env *a, struct env *b)
{
    if (!pg_available())
        skip();
    assert_int_equal(pg_init(a), 0);
    *b = *a;
    open_store(a);
    open_store(b);
}

static void test_postgres_two_writers_one_log(void **state)
{
    struct env a = {.op = &openers[1]}, b;
    struct tg_audit_report rep;
    uint64_t seq, idx;
    bool seen[100] = {false};
    (void)state;
    two_nodes(&a, &b);
    for (int i = 0; i < 50; i++) {
        for (int k = 0; k < 2; k++) {
            struct env *e = k ? &b : &a;
            struct leaf l;
            make_leaf((uint64_t)(i * 2 + k), &l);
            tg_audit_leaf_hash(l.data, l.row.len, l.row.leaf_hash); /* as the log hashes */
            assert_int_equal(tg_store_audit_append(e->st, &l.row, &seq), TG_OK);
            if (i % 10 == 9) { /* now and then wait, so commits interleave */
                assert_int_equal(tg_store_flush(e->st), TG_OK);
                assert_int_equal(tg_store_audit_index(e->st, seq, &idx), TG_OK);
                assert_true(idx < 100 && !seen[idx]);
                seen[idx] = true;
            }
        }
    }
    assert_int_equal(tg_store_flush(a.st), TG_OK);
    assert_int_equal(tg_store_flush(b.st), TG_OK);
    if (tg_audit_verify(a.st, &rep) != TG_OK)
        fail_msg("verify: %s", rep.reason);
    assert_int_equal(rep.size, 100);
    tg_store_close(b.st);
    tg_store_close(a.st);
    pg_fini(&a);
}

static void note_change(void *ctx, const char *id, const char *state)
{
    char *seen = ctx;
    snprintf(seen, 128, "%s %s", id, state);
}

/* What one node tells (tg_store_tell) reaches another's listener with the
 * commit, before the task's change, and is never stored; too long a text
 * is not told.  On a store nobody shares, telling is a no-op. */
static void test_postgres_tell(void **state)
{
    struct env a = {.op = &openers[1]}, b;
    char seen[128] = "", *text = NULL, *big = NULL;
    (void)state;
    two_nodes(&a, &b);
    int fd = tg_store_changes_fd(b.st);
    assert_true(fd >= 0);
    assert_int_equal(tg_store_tell(a.st, "rev_t", "请致电13800138000"), TG_OK);
    assert_int_equal(tg_store_told(b.st, "rev_t", &text), TG_E_NOTFOUND); /* not committed */
    put_review(&a, "rev_t", "decided", 1, 1000);
    big = calloc(TG_STORE_TELL_MAX + 2, 1);
    memset(big, 'x', TG_STORE_TELL_MAX + 1);
    assert_int_equal(tg_store_tell(a.st, "rev_big", big), TG_OK);
    put_review(&a, "rev_big", "decided", 1, 1000);
    assert_int_equal(tg_store_flush(a.st), TG_OK);
    for (int i = 0; i < 250 && !strstr(seen, "rev_big"); i++) {
        usleep(20000);
        assert_int_equal(tg_store_changes(b.st, note_change, seen), TG_OK);
    }
    assert_string_equal(seen, "rev_big decided");
    assert_int_equal(tg_store_told(b.st, "rev_t", &text), TG_OK);
    assert_string_equal(text, "请致电13800138000");
    tg_free(text);
    assert_int_equal(tg_store_told(b.st, "rev_big", &text), TG_E_NOTFOUND);
    assert_int_equal(tg_store_told(a.st, "rev_t", &text), TG_E_NOTFOUND); /* its own: not told */
    free(big);
    tg_store_close(b.st);
    tg_store_close(a.st);
    pg_fini(&a);

    /* SQLite: nobody to tell */
    struct env c = {.op = &openers[0]};
    assert_int_equal(sqlite_init(&c), 0);
    open_store(&c);
    assert_int_equal(tg_store_tell(c.st, "rev_t", "x"), TG_OK);
    assert_int_equal(tg_store_flush(c.st), TG_OK);
    assert_int_equal(tg_store_told(c.st, "rev_t", &text), TG_E_NOTFOUND);
    tg_store_close(c.st);
    sqlite_fini(&c);
}

/* A server that is not there: the open fails at once, naming the uri
 * without its password. */
static void test_postgres_unreachable(void **state)
{
    static const char *uris[] = {"postgres://tg:secret@127.0.0.1:1/trustgate",
                                 "postgresql://127.0.0.1:1/trustgate?password=secret"};
    (void)state;
    for (size_t i = 0; i < TG_ARRAY_LEN(uris); i++) {
        char err[512] = "";
        struct tg_store *st = NULL;
        assert_int_equal(tg_store_open(uris[i], &st, err, sizeof(err)), TG_E_DB);
        assert_null(st);
        assert_non_null(strstr(err, "cannot connect"));
        assert_non_null(strstr(err, "127.0.0.1:1/trustgate"));
        assert_null(strstr(err, "secret"));
    }
}

static void test_redact_and_local_dir(void **state)
{
    static const char *const uris[][2] = {
        {"postgres://tg:s3cret@db:5432/tg", "postgres://tg:***@db:5432/tg"},
        {"postgresql://db/tg?user=tg&password=s3cret&sslmode=require",
         "postgresql://db/tg?user=tg&password=***&sslmode=require"},
        {"postgresql://tg@/tg?host=/tmp/x", "postgresql://tg@/tg?host=/tmp/x"},
        {"sqlite:./data/trustgate.db", "sqlite:./data/trustgate.db"},
    };
    char dir[64];
    (void)state;
    for (size_t i = 0; i < TG_ARRAY_LEN(uris); i++) {
        char *r = tg_store_redact(uris[i][0]);
        assert_string_equal(r, uris[i][1]);
        tg_free(r);
    }
    tg_store_local_dir("sqlite:./data/trustgate.db", "/srv/tg", dir, sizeof(dir));
    assert_string_equal(dir, "./data");
    tg_store_local_dir("trustgate.db", "/srv/tg", dir, sizeof(dir));
    assert_string_equal(dir, ".");
    tg_store_local_dir("sqlite:/x.db", "/srv/tg", dir, sizeof(dir));
    assert_string_equal(dir, "/");
    tg_store_local_dir("postgres://db/tg", "/srv/tg", dir, sizeof(dir));
    assert_string_equal(dir, "/srv/tg");
}

static void test_bad_uris(void **state)
{
    static const char *uris[] = {"sqlite:", "", "mysql://localhost/db"};
    char err[256];
    struct tg_store *st = NULL;
    (void)state;

    for (size_t i = 0; i < TG_ARRAY_LEN(uris); i++) {
        err[0] = '\0';
        assert_int_equal(tg_store_open(uris[i], &st, err, sizeof(err)), TG_E_CONFIG);
        assert_null(st);
        assert_true(strlen(err) > 0);
    }
    assert_int_equal(tg_store_open(NULL, &st, err, sizeof(err)), TG_E_INVAL);
    assert_int_equal(tg_store_open("sqlite:/tmp/x.db", NULL, NULL, 0), TG_E_INVAL);
    tg_store_close(NULL);
    assert_int_equal(tg_store_flush(NULL), TG_E_INVAL);
}

/* A fresh SQLite temp dir for tests outside the conformance table. */
static int sqlite_env_setup(void **state)
{
    struct env *e = tg_calloc(1, sizeof(*e));
    if (!e || sqlite_init(e) != 0) {
        tg_free(e);
        return -1;
    }
    e->op = &openers[0];
    *state = e;
    return 0;
}

static int sqlite_env_teardown(void **state)
{
    struct env *e = *state;
    tg_store_close(e->st);
    sqlite_fini(e);
    tg_free(e);
    return 0;
}

static void test_bare_path_is_sqlite(void **state)
{
    struct env *e = *state;
    struct tg_store *other = NULL;
    struct tg_conversation got;
    char path[400], err[256] = "";

    snprintf(path, sizeof(path), "%s/bare.db", e->dir);
    assert_int_equal(tg_store_open(path, &other, err, sizeof(err)), TG_OK);
    assert_string_equal(tg_store_kind(other), "sqlite");
    struct tg_conversation c = conv("conv_a", "cust_1", 1, 2, 0, 0);
    assert_int_equal(tg_store_conversation_put(other, &c), TG_OK);
    tg_store_close(other);

    snprintf(e->uri, sizeof(e->uri), "sqlite:%s", path);
    open_store(e);
    assert_int_equal(tg_store_conversation_get(e->st, "conv_a", &got), TG_OK);
}

/* ------------------------------------------------------------ SQLite specifics */

static int64_t pragma_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void test_sqlite_file_settings(void **state)
{
    struct env *e = *state;
    char path[400];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    open_store(e);
    snprintf(path, sizeof(path), "%s/store.db", e->dir);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(pragma_int(db, "PRAGMA user_version"), 7); /* one step per migration */
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_equal(pragma_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                                    " AND name IN ('conversations', 'messages', 'turns',"
                                    " 'reviews', 'audit', 'blobs', 'handoff_messages',"
                                    " 'privacy')"),
                     8);

    /* A file from a newer trustgate is refused rather than misread. */
    tg_store_close(e->st);
    e->st = NULL;
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char err[512] = "";
    struct tg_store *st2 = NULL;
    assert_int_equal(tg_store_open(e->uri, &st2, err, sizeof(err)), TG_E_CONFIG);
    assert_null(st2);
    assert_non_null(strstr(err, "99"));
    assert_non_null(strstr(err, path));
}

static int64_t task_row_bytes(const char *path, const char *id)
{
    sqlite3 *db = NULL;
    char sql[128];
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    snprintf(sql, sizeof(sql), "SELECT length(task) FROM reviews WHERE id = '%s'", id);
    int64_t n = pragma_int(db, sql);
    sqlite3_close(db);
    return n;
}

/* Each message of a long hand-off is one small row: the task row keeps its
 * size however long the thread grows. */
static void test_sqlite_thread_rows_keep_the_task_small(void **state)
{
    struct env *e = *state;
    char path[400];
    json_t *t = NULL;
    open_store(e);
    snprintf(path, sizeof(path), "%s/store.db", e->dir);
    put_task(e, "{\"id\":\"rev_h\",\"state\":\"handed_off\",\"conversation_id\":\"conv_h\","
                "\"events\":[{\"at\":1,\"event\":\"handed_off\"}]}");
    handoff(e, "rev_h", "customer", "customer", "第一条消息，比较长的一段文字。", 2, 1);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    int64_t first = task_row_bytes(path, "rev_h");
    assert_true(first > 0);
    for (int i = 0; i < 3000; i++)
        handoff(e, "rev_h", "customer", "customer", "第一条消息，比较长的一段文字。", 3 + i, 1);
    assert_int_equal(tg_store_flush(e->st), TG_OK);
    assert_int_equal(task_row_bytes(path, "rev_h"), first);
    assert_int_equal(tg_store_review_get(e->st, "rev_h", NULL, &t), TG_OK);
    assert_int_equal(json_array_size(json_object_get(t, "customer_messages")), 3001);
    assert_int_equal(json_array_size(json_object_get(t, "events")), 3002);
    json_decref(t);
}

/* Does the file hold s? */
static bool file_holds(const char *path, const char *s)
{
    struct tg_buf b;
    bool found = false;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    if (tg_buf_read_file(&b, path) == TG_OK && b.len)
        found = memmem(b.data, b.len, s, strlen(s)) != NULL;
    tg_buf_free(&b);
    return found;
}

/* A database of an older version, written in clear, is converted when it
 * is first opened with privacy hooks: customer ids to pseudonyms, texts
 * masked, the hand-off thread moved out of the task into rows, and no
 * page of the file or its WAL keeps the clear values. */
static void test_sqlite_upgrade_converts_personal_data(void **state)
{
    struct env *e = *state;
    static const char *const planted[] = {"13800138000", "6222021234567890", "ann2024@example.com"};
    char path[400], wal[420];
    sqlite3 *db = NULL;
    snprintf(path, sizeof(path), "%s/store.db", e->dir);
    snprintf(wal, sizeof(wal), "%s-wal", path);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, tg_h_schema_v3, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(
            db,
            "INSERT INTO conversations VALUES ('conv_u', '13800138000', 1, 2, 3, 0);"
            "INSERT INTO reviews VALUES ('rev_u', 'turn_u', 'handed_off', 'human_agent', 5, 9, 9,"
            " '{\"id\":\"rev_u\",\"state\":\"handed_off\",\"conversation_id\":\"conv_u\","
            "\"started_by\":\"13800138000\",\"answer\":\"call 13800138000\","
            "\"decision\":{\"action\":\"edit\",\"text\":\"mail ann2024@example.com\"},"
            "\"events\":[{\"at\":1,\"event\":\"created\"},{\"at\":2,\"event\":\"handed_off\"},"
            "{\"at\":3,\"actor\":\"customer\",\"event\":\"customer_message\"},"
            "{\"at\":4,\"actor\":\"ann\",\"event\":\"agent_reply\"}],"
            "\"customer_messages\":[{\"at\":3,\"turn_id\":\"turn_v\",\"text\":\"card "
            "6222021234567890\"}],"
            "\"agent_replies\":[{\"at\":4,\"actor\":\"ann\",\"text\":\"I call 13800138000\"}]}');"
            "INSERT INTO blobs VALUES ('feedback/turn_u',"
            " CAST('{\"turn_id\":\"turn_u\",\"good\":false,\"correct_answer\":\"ann2024@example."
            "com\"}'"
            " AS BLOB), 1);",
            NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    /* opened without hooks: the schema moves on, the data stays as it was */
    open_store(e);
    json_t *t = NULL;
    assert_int_equal(tg_store_review_get(e->st, "rev_u", NULL, &t), TG_OK);
    assert_string_equal(tg_json_str(t, "started_by", ""), "13800138000");
    assert_int_equal(json_array_size(json_object_get(t, "customer_messages")), 1);
    json_decref(t);
    tg_store_close(e->st);
    e->st = NULL;

    hook_calls = 0;
    open_private(e);
    assert_int_equal(hook_calls, 2); /* the conversation's customer and the task's */
    struct tg_conversation got;
    assert_int_equal(tg_store_conversation_latest(e->st, "13800138000", &got), TG_OK);
    assert_string_equal(got.id, "conv_u");
    assert_int_equal(tg_store_review_get(e->st, "rev_u", NULL, &t), TG_OK);
    char ps[TG_STORE_KEY_MAX];
    assert_int_equal(tg_store_pseudonym(e->st, "13800138000", ps), TG_OK);
    assert_string_equal(tg_json_str(t, "started_by", ""), ps);
    assert_string_equal(tg_json_str(t, "answer", ""), "call ***********");
    const json_t *cm = json_object_get(t, "customer_messages");
    assert_int_equal(json_array_size(cm), 1);
    assert_string_equal(tg_json_str(json_array_get(cm, 0), "text", ""), "card ****************");
    assert_string_equal(tg_json_str(json_array_get(cm, 0), "turn_id", ""), "turn_v");
    const json_t *ar = json_object_get(t, "agent_replies");
    assert_string_equal(tg_json_str(json_array_get(ar, 0), "text", ""), "I call ***********");
    static const char *const order[] = {"created", "handed_off", "customer_message", "agent_reply"};
    const json_t *ev = json_object_get(t, "events");
    assert_int_equal(json_array_size(ev), TG_ARRAY_LEN(order));
    for (size_t i = 0; i < TG_ARRAY_LEN(order); i++)
        assert_string_equal(tg_json_str(json_array_get(ev, i), "event", ""), order[i]);
    json_decref(t);
    char *fb = NULL;
    size_t fblen = 0;
    assert_int_equal(tg_store_blob_get(e->st, "feedback/turn_u", &fb, &fblen), TG_OK);
    assert_null(strstr(fb, "13800138000"));
    assert_non_null(strstr(fb, "correct_answer"));
    tg_free(fb);
    /* the mark keeps a second open from converting again */
    hook_calls = 0;
    open_private(e);
    assert_int_equal(hook_calls, 0);
    tg_store_close(e->st);
    e->st = NULL;
    for (size_t i = 0; i < TG_ARRAY_LEN(planted); i++) {
        if (file_holds(path, planted[i]) || file_holds(wal, planted[i]))
            fail_msg("%s is still in the database file or its WAL", planted[i]);
    }
}

static void test_sqlite_not_a_database(void **state)
{
    struct env *e = *state;
    char path[400], err[512] = "";
    struct tg_store *st = NULL;
    FILE *f;

    snprintf(path, sizeof(path), "%s/junk.db", e->dir);
    f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not an SQLite database file. ", f);
    fclose(f);
    assert_int_not_equal(tg_store_open(path, &st, err, sizeof(err)), TG_OK);
    assert_null(st);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "not a database"));
}

int main(void)
{
    const struct CMUnitTest dispatch[] = {
        cmocka_unit_test(test_postgres_unreachable),
        cmocka_unit_test(test_postgres_reconnects),
        cmocka_unit_test(test_postgres_two_writers_one_log),
        cmocka_unit_test(test_postgres_tell),
        cmocka_unit_test(test_redact_and_local_dir),
        cmocka_unit_test(test_bad_uris),
        cmocka_unit_test_setup_teardown(test_bare_path_is_sqlite, sqlite_env_setup,
                                        sqlite_env_teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_file_settings, sqlite_env_setup,
                                        sqlite_env_teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_not_a_database, sqlite_env_setup,
                                        sqlite_env_teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_thread_rows_keep_the_task_small,
                                        sqlite_env_setup, sqlite_env_teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_upgrade_converts_personal_data,
                                        sqlite_env_setup, sqlite_env_teardown),
    };
    int failed = 0;

    tg_log_set_level(TG_LOG_OFF); /* the error cases log on purpose */
    for (size_t i = 0; i < TG_ARRAY_LEN(openers); i++)
        failed += run_conformance(&openers[i]);
    failed += cmocka_run_group_tests_name("store uri and sqlite", dispatch, NULL, NULL);
    return failed ? 1 : 0;
}
