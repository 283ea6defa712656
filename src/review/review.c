/*
 * review.c - review tasks: creation from a held turn and a person's
 * decision with its attestations.  See review.h.
 */
#include "review/review.h"

#include "audit/audit.h"
#include "config/config.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>

static const char *const action_names[] = {"approve", "edit", "reject"};

int tg_review_action_parse(const char *s, enum tg_review_action *out)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(action_names); i++) {
        if (s && strcmp(s, action_names[i]) == 0) {
            *out = (enum tg_review_action)i;
            return TG_OK;
        }
    }
    return TG_E_PARSE;
}

const char *tg_review_action_name(enum tg_review_action a)
{
    return (unsigned)a < TG_ARRAY_LEN(action_names) ? action_names[a] : "unknown";
}

static json_t *copy_or_empty(const json_t *v)
{
    return v ? json_deep_copy(v) : json_array();
}

/* Append ev (taken; NULL when its constructor failed) to the task's events.
 * TG_OK or TG_E_NOMEM; a task without an events list is left without. */
static int add_event(json_t *task, json_t *ev)
{
    json_t *events = json_object_get(task, "events");
    int rc = ev ? TG_OK : TG_E_NOMEM;
    if (!rc && json_is_array(events))
        rc = tg_json_push(events, ev);
    else
        json_decref(ev);
    return rc;
}

/* Read task id without its thread, to change it.  A task that does not read
 * back as itself is TG_E_DB: short of memory, jansson's parser can drop a
 * character of a string, and an act must never be stored under another id. */
static int read_bare(struct tg_store *st, const char *id, struct tg_review_row *row, json_t **task)
{
    json_t *t = NULL;
    int rc = tg_store_review_get_bare(st, id, row, &t);
    if (!rc && strcmp(tg_json_str(t, "id", ""), id) != 0)
        rc = TG_E_DB;
    if (rc)
        json_decref(t);
    else
        *task = t;
    return rc;
}

/* Read a task as the last act left it, to change it: acts queued for the
 * writer are committed first (a flush is cheap when nothing waits), and
 * the hand-off thread, kept in rows of its own, is not read. */
static int load(struct tg_store *st, const char *id, struct tg_review_row *row, json_t **task)
{
    int rc = tg_store_flush(st);
    return rc ? rc : read_bare(st, id, row, task);
}

/* load() for a person's act: err names the task that could not be read. */
static int load_for(struct tg_store *st, const char *id, struct tg_review_row *row, json_t **task,
                    char *err, size_t errlen)
{
    int rc = load(st, id, row, task);
    if (rc)
        snprintf(err, errlen, rc == TG_E_NOTFOUND ? "no review task %s" : "cannot read task %s",
                 id);
    return rc;
}

static int put(struct tg_store *st, json_t *task)
{
    struct tg_review_row row;
    memset(&row, 0, sizeof(row));
    tg_strlcpy(row.id, tg_json_str(task, "id", ""), sizeof(row.id));
    tg_strlcpy(row.turn_id, tg_json_str(task, "turn_id", ""), sizeof(row.turn_id));
    tg_strlcpy(row.state, tg_json_str(task, "state", ""), sizeof(row.state));
    tg_strlcpy(row.queue, tg_json_str(task, "queue", ""), sizeof(row.queue));
    row.priority = tg_json_int(task, "priority", 0);
    row.deadline_ms = tg_json_int(task, "deadline_ms", 0);
    row.updated_ms = tg_clock_wall_ms();
    return tg_store_review_put(st, &row, task);
}

static tg_review_settle_fn settle_fn;
static void *settle_arg;

void tg_review_on_settle(tg_review_settle_fn fn, void *arg)
{
    settle_fn = fn;
    settle_arg = arg;
}

/*
 * Queue an act's writes to commit together (tg_store_hold): its audit
 * leaf (NULL: none, or no audit log), the task, and for a task it settles
 * what the settle hook adds.
 */
static int write_act(struct tg_store *st, struct tg_audit *audit, const json_t *leaf, json_t *task)
{
    const char *state = tg_json_str(task, "state", "");
    bool settles = !strcmp(state, "decided") || !strcmp(state, "handed_off");
    const char *answer = tg_json_str(task, "answer", NULL);
    tg_store_hold(st);
    int rc = leaf && audit ? tg_audit_append_json(audit, leaf, NULL) : TG_OK;
    /* the answer as written, for a request waiting on another node (the
     * store keeps it masked); told before the task, so it is there first */
    if (!rc && settles && answer)
        rc = tg_store_tell(st, tg_json_str(task, "id", ""), answer);
    if (!rc)
        rc = put(st, task);
    if (!rc && settle_fn && settles)
        rc = settle_fn(settle_arg, st, task);
    return tg_store_release(st, rc);
}

/*
 * A person's act on a task, made durable: append its audit leaf (taken),
 * store the task and flush, then hand the task (taken) to *task_out.  On
 * failure err says what could not be stored.
 */
static int commit(struct tg_store *st, struct tg_audit *audit, json_t *task, json_t *leaf,
                  const char *what, json_t **task_out, char *err, size_t errlen)
{
    int rc = leaf ? write_act(st, audit, leaf, task) : TG_E_NOMEM;
    json_decref(leaf);
    if (!rc)
        rc = tg_store_flush(st);
    if (rc)
        snprintf(err, errlen, "cannot store the %s: %s", what, tg_err_str(rc));
    if (!rc && task_out) {
        *task_out = task;
        task = NULL;
    }
    json_decref(task);
    return rc;
}

int tg_review_create(struct tg_store *st, const struct tg_review_new *n, char id[TG_ID_MAX])
{
    char rid[TG_ID_MAX];
    int rc = tg_id_new("rev", rid);
    if (rc)
        return rc;
    json_t *task = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:s, s:s?, s:o, s:s?, "
        "s:[{s:I, s:s, s:s}], s:n}",
        "id", rid, "turn_id", n->turn_id, "conversation_id", n->conversation_id, "kind", n->kind,
        "state", n->state ? n->state : "pending", "queue", n->queue ? n->queue : "default",
        "priority", (json_int_t)n->priority, "created_ms", (json_int_t)n->created_ms, "sla_ms",
        (json_int_t)n->sla_ms, "deadline_ms", (json_int_t)(n->created_ms + n->sla_ms),
        "required_attestations", copy_or_empty(n->attestations), "tags", copy_or_empty(n->tags),
        "policy_hits", copy_or_empty(n->policy_hits), "question", n->question, "draft", n->draft,
        "citations", copy_or_empty(n->citations), "holding_reply", n->holding_reply, "events", "at",
        (json_int_t)n->created_ms, "actor", "trustgate", "event", "created", "decision");
    /* the customer is kept as the store keeps customer ids: a pseudonym */
    char by[TG_STORE_KEY_MAX];
    if (!task)
        rc = TG_E_NOMEM;
    if (!rc && n->started_by && n->started_by[0]) {
        rc = tg_store_pseudonym(st, n->started_by, by);
        if (!rc)
            rc = tg_json_set(task, "started_by", json_string(by));
    }
    if (!rc && json_is_object(n->context) && json_object_update_missing(task, (json_t *)n->context))
        rc = TG_E_NOMEM;
    if (!rc)
        rc = put(st, task);
    json_decref(task);
    if (!rc)
        tg_strlcpy(id, rid, TG_ID_MAX);
    return rc;
}

static bool ticked(const json_t *given, const char *item)
{
    size_t i;
    json_t *g;
    json_array_foreach(given, i, g)
    {
        if (json_is_string(g) && strcmp(json_string_value(g), item) == 0)
            return true;
    }
    return false;
}

/* The decision's audit leaf: who decided what, affirming what, on which
 * turn; NULL when out of memory. */
static json_t *decision_leaf(const json_t *task, const struct tg_review_decision *d,
                             const char *answer, int64_t at)
{
    uint8_t h[TG_SHA256_LEN];
    char hex[2 * TG_SHA256_LEN + 1] = "";
    if (answer) {
        tg_sha256(answer, strlen(answer), h);
        tg_hex_encode(h, sizeof(h), hex);
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:s?, s:I}", "kind", "review_decision",
                     "review_id", tg_json_str(task, "id", ""), "turn_id",
                     tg_json_str(task, "turn_id", ""), "action", tg_review_action_name(d->action),
                     "actor", d->actor, "attestations", d->attestations, "answer_sha256",
                     answer ? hex : NULL, "at", (json_int_t)at);
}

/* Does identity s have the canonical form canon? */
static bool same_identity(const char *canon, const char *s)
{
    struct tg_buf b;
    tg_buf_init(&b, 4 * 4096);
    bool same = tg_config_identity(s, strlen(s), &b) == TG_OK && strcmp(b.data, canon) == 0;
    tg_buf_free(&b);
    return same;
}

/*
 * Is `by`, a task's started_by as stored, the identity `name`?  A store
 * with privacy hooks keeps the pseudonym of the canonical form, so the
 * pseudonym of name's is compared; a store without them keeps the id as
 * given, so the canonical forms are (canon: by's, or NULL when it has
 * none: too long to be a name, compared byte for byte).
 */
static bool same_person(struct tg_store *st, const char *by, const char *canon, const char *name)
{
    char ps[TG_STORE_KEY_MAX];
    if (!strcmp(by, name))
        return true;
    if (tg_store_pseudonym(st, name, ps) == TG_OK && !strcmp(ps, by))
        return true;
    return canon && canon[0] && same_identity(canon, name);
}

/* The four-eyes rule's question: did the decider start this task's turn?
 * The customer id that started it is compared with the decider's name and
 * the customer ids mapped to them, as one canonical identity. */
static bool started_by_actor(struct tg_store *st, const json_t *task,
                             const struct tg_review_decision *d)
{
    const char *by = tg_json_str(task, "started_by", "");
    struct tg_buf canon;
    if (!by[0])
        return false;
    tg_buf_init(&canon, 4 * 4096);
    const char *c = tg_config_identity(by, strlen(by), &canon) == TG_OK ? canon.data : NULL;
    bool same = same_person(st, by, c, d->actor);
    for (size_t i = 0; !same && i < d->n_actor_ids; i++)
        same = same_person(st, by, c, d->actor_ids[i]);
    tg_buf_free(&canon);
    return same;
}

/*
 * text as the customer is given it: with what the output rules put around
 * a person's answer (the task's people_answers, tg_rules_for_people:
 * disclaimers), each unless the text already has it where it goes.  A
 * tg_malloc'd string; NULL when out of memory.
 */
static char *for_customer(const json_t *task, const char *text)
{
    const json_t *pa = json_object_get(task, "people_answers");
    struct tg_buf b;
    size_t i, len = strlen(text);
    json_t *v;
    int rc = TG_OK;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    json_array_foreach(json_object_get(pa, "prefix"), i, v)
    {
        const char *p = json_string_value(v);
        if (!rc && p && !tg_str_has_prefix(text, p))
            rc = tg_buf_puts(&b, p);
    }
    if (!rc)
        rc = tg_buf_append(&b, text, len);
    json_array_foreach(json_object_get(pa, "suffix"), i, v)
    {
        const char *s = json_string_value(v);
        size_t sl = s ? strlen(s) : 0;
        if (!rc && s && !(sl <= len && !memcmp(text + len - sl, s, sl)))
            rc = tg_buf_puts(&b, s);
    }
    if (rc || !b.data) {
        tg_buf_free(&b);
        return rc ? NULL : tg_strdup(text);
    }
    return b.data;
}

/*
 * May d decide task now?  TG_OK, or why not with a message in err: the task
 * is no longer open or another's claim holds it (TG_E_CONFLICT), the four
 * eyes rule (TG_E_FORBIDDEN), no actor or a missing attestation (TG_E_INVAL).
 */
static int may_decide(struct tg_store *st, const json_t *task, const char *id,
                      const struct tg_review_decision *d, char *err, size_t errlen)
{
    const char *state = tg_json_str(task, "state", "");
    if (strcmp(state, "pending") != 0 && strcmp(state, "claimed") != 0) {
        snprintf(err, errlen, "task %s is %s, not pending", id, state[0] ? state : "?");
        return TG_E_CONFLICT;
    }
    if (!d->actor || !d->actor[0]) {
        snprintf(err, errlen, "a decision needs the name of the person who decides");
        return TG_E_INVAL;
    }
    const char *holder = tg_json_str(task, "claimed_by", NULL);
    if (!strcmp(state, "claimed") && holder && strcmp(holder, d->actor) != 0 &&
        tg_json_int(task, "claim_expires_ms", 0) > tg_clock_wall_ms()) {
        snprintf(err, errlen, "task %s is claimed by %s", id, holder);
        return TG_E_CONFLICT;
    }
    if (d->four_eyes && started_by_actor(st, task, d)) {
        snprintf(err, errlen, "four-eyes rule: %s started this turn and may not decide it",
                 d->actor);
        return TG_E_FORBIDDEN;
    }
    size_t i;
    json_t *req;
    json_array_foreach(json_object_get(task, "required_attestations"), i, req)
    {
        if (!ticked(d->attestations, json_string_value(req))) {
            snprintf(err, errlen, "missing required attestation: %s", json_string_value(req));
            return TG_E_INVAL;
        }
    }
    return TG_OK;
}

static int decide_act(struct tg_store *st, struct tg_audit *audit, const char *id,
                      const struct tg_review_decision *d, json_t **task_out, char *err,
                      size_t errlen)
{
    char *given = NULL;
    json_t *task = NULL, *none = json_array();
    struct tg_review_row row;
    int rc = load_for(st, id, &row, &task, err, errlen);
    const char *answer = NULL;
    struct tg_review_decision dd = *d;
    if (!dd.attestations)
        dd.attestations = none;
    d = &dd;
    if (!rc)
        rc = may_decide(st, task, id, d, err, errlen);
    if (rc)
        goto out;
    const char *draft = tg_json_str(task, "draft", NULL);
    switch (d->action) {
    case TG_REVIEW_APPROVE:
        answer = draft;
        if (!answer) {
            rc = TG_E_INVAL;
            snprintf(err, errlen,
                     "task %s has no AI draft to approve: edit (write the answer) "
                     "or reject",
                     id);
        }
        break;
    case TG_REVIEW_EDIT:
        answer = d->text;
        if (!answer || !answer[0]) {
            rc = TG_E_INVAL;
            snprintf(err, errlen, "an edit needs the text to send");
        }
        break;
    case TG_REVIEW_REJECT:
        answer = d->reason;
        if (!answer || !answer[0]) {
            rc = TG_E_INVAL;
            snprintf(err, errlen, "a rejection needs a reason");
        }
        break;
    }
    if (!rc && !(given = for_customer(task, answer)))
        rc = TG_E_NOMEM;
    if (rc)
        goto out;
    answer = given;
    int64_t at = tg_clock_wall_ms();
    rc = tg_json_set(task, "state", json_string("decided"));
    if (!rc)
        rc = tg_json_set(task, "answer", json_string(answer));
    if (!rc)
        rc = tg_json_set(task, "decision",
                         json_pack("{s:s, s:s, s:O, s:I, s:s?, s:s?}", "action",
                                   tg_review_action_name(d->action), "actor", d->actor,
                                   "attestations", d->attestations, "at", (json_int_t)at, "text",
                                   d->text, "reason", d->reason));
    if (!rc)
        rc = add_event(task, json_pack("{s:I, s:s, s:s}", "at", (json_int_t)at, "actor", d->actor,
                                       "event", tg_review_action_name(d->action)));
    if (rc) {
        snprintf(err, errlen, "cannot make the decision: %s", tg_err_str(rc));
        goto out;
    }
    rc = commit(st, audit, task, decision_leaf(task, d, answer, at), "decision", task_out, err,
                errlen);
    task = NULL; /* taken */
out:
    tg_free(given);
    json_decref(task);
    json_decref(none);
    return rc;
}

static int handoff_act(struct tg_store *st, struct tg_audit *audit, const char *id,
                       const char *reason, json_t **task_out)
{
    json_t *task = NULL;
    int rc = read_bare(st, id, NULL, &task);
    if (rc)
        return rc;
    const char *state = tg_json_str(task, "state", "");
    if (strcmp(state, "pending") != 0 && strcmp(state, "claimed") != 0) {
        json_decref(task);
        return TG_E_CONFLICT;
    }
    int64_t at = tg_clock_wall_ms();
    rc = tg_json_set(task, "state", json_string("handed_off"));
    if (!rc && !json_object_get(task, "original_queue"))
        rc =
            tg_json_set(task, "original_queue", json_string(tg_json_str(task, "queue", "default")));
    if (!rc)
        rc = tg_json_set(task, "queue", json_string("human_agent"));
    json_t *tags = json_object_get(task, "tags");
    if (!rc && !json_is_array(tags)) {
        tags = json_array();
        rc = tg_json_set(task, "tags", tags);
    }
    if (!rc)
        rc = tg_json_push(tags, json_string("review_sla_breached"));
    if (!rc)
        rc = tg_json_set(task, "answer",
                         json_string("您的问题已转由人工客服处理，客服将尽快与您联系。"));
    if (!rc)
        rc = add_event(task, json_pack("{s:I, s:s, s:s, s:s}", "at", (json_int_t)at, "actor",
                                       "trustgate", "event", "handed_off", "reason", reason));
    json_t *leaf =
        rc ? NULL
           : json_pack("{s:s, s:s, s:s, s:s, s:[s], s:I}", "kind", "handoff", "review_id", id,
                       "turn_id", tg_json_str(task, "turn_id", ""), "reason", reason, "tags",
                       "review_sla_breached", "at", (json_int_t)at);
    if (!rc)
        rc = leaf ? write_act(st, audit, leaf, task) : TG_E_NOMEM;
    json_decref(leaf);
    if (!rc && task_out) {
        *task_out = task;
        task = NULL;
    }
    json_decref(task);
    return rc;
}

static int claim_act(struct tg_store *st, struct tg_audit *audit, const char *id, const char *actor,
                     int64_t lapse_ms, json_t **task_out, char *err, size_t errlen)
{
    json_t *task = NULL;
    int rc = load(st, id, NULL, &task);
    int64_t now = tg_clock_wall_ms();
    if (rc) {
        snprintf(err, errlen, "no review task %s", id);
        return rc;
    }
    const char *state = tg_json_str(task, "state", "");
    const char *holder = tg_json_str(task, "claimed_by", NULL);
    bool lapsed = tg_json_int(task, "claim_expires_ms", 0) <= now;
    if (strcmp(state, "pending") != 0 &&
        !(strcmp(state, "claimed") == 0 && (lapsed || (holder && !strcmp(holder, actor))))) {
        snprintf(err, errlen,
                 !strcmp(state, "claimed") ? "task %s is claimed by %s" : "task %s is %s", id,
                 !strcmp(state, "claimed") ? (holder ? holder : "?") : state);
        json_decref(task);
        return TG_E_CONFLICT;
    }
    rc = tg_json_set(task, "state", json_string("claimed"));
    if (!rc)
        rc = tg_json_set(task, "claimed_by", json_string(actor));
    if (!rc)
        rc = tg_json_set(task, "claim_expires_ms", json_integer(now + lapse_ms));
    if (!rc)
        rc = add_event(task, json_pack("{s:I, s:s, s:s}", "at", (json_int_t)now, "actor", actor,
                                       "event", "claimed"));
    /* without its leaf, commit() stores nothing and says so */
    json_t *leaf = rc ? NULL
                      : json_pack("{s:s, s:s, s:s, s:s, s:I}", "kind", "review_claim", "review_id",
                                  id, "turn_id", tg_json_str(task, "turn_id", ""), "actor", actor,
                                  "at", (json_int_t)now);
    return commit(st, audit, task, leaf, "claim", task_out, err, errlen);
}

/* Append a message to a hand-off's thread: a row of its own (the task row
 * keeps its size), placed after the task's events so far. */
static int thread_add(struct tg_store *st, const json_t *task, const char *turn_id,
                      const char *from, const char *actor, const char *text, int64_t at)
{
    struct tg_handoff_msg m = {
        .from = from,
        .actor = actor,
        .text = text,
        .at_ms = at,
        .after_events = (int64_t)json_array_size(json_object_get(task, "events")),
    };
    tg_strlcpy(m.review_id, tg_json_str(task, "id", ""), sizeof(m.review_id));
    tg_strlcpy(m.turn_id, turn_id ? turn_id : "", sizeof(m.turn_id));
    return tg_store_handoff_add(st, &m);
}

/*
 * The task as readers see it (its thread read back), with the agent's
 * latest reply as written: that goes to the customer, while the store
 * keeps it masked.  Takes bare, returned when the thread cannot be read;
 * NULL when out of memory (never the masked text in its place).
 */
static json_t *as_delivered(struct tg_store *st, const char *id, json_t *bare, const char *text)
{
    json_t *full = NULL;
    if (tg_store_review_get(st, id, NULL, &full) != TG_OK)
        return bare;
    json_decref(bare);
    json_t *replies = json_object_get(full, "agent_replies");
    json_t *last = json_array_get(replies, json_array_size(replies) - 1);
    if (text && last && tg_json_set(last, "text", json_string(text))) {
        json_decref(full);
        full = NULL;
    }
    return full;
}

static int agent_reply_act(struct tg_store *st, struct tg_audit *audit, const char *id,
                           const char *actor, const char *text, bool close, json_t **task_out,
                           char *err, size_t errlen)
{
    json_t *task = NULL;
    int rc = load_for(st, id, NULL, &task, err, errlen);
    if (rc)
        return rc;
    const char *state = tg_json_str(task, "state", "");
    if (strcmp(state, "handed_off") != 0) {
        snprintf(err, errlen, "task %s is %s, not handed off to an agent", id, state);
        json_decref(task);
        return TG_E_CONFLICT;
    }
    bool has_text = text && text[0];
    if (!has_text && !close) {
        snprintf(err, errlen, "a reply needs text");
        json_decref(task);
        return TG_E_INVAL;
    }
    char *given = has_text ? for_customer(task, text) : NULL;
    if (has_text && !given) {
        snprintf(err, errlen, "out of memory");
        json_decref(task);
        return TG_E_NOMEM;
    }
    text = given;
    int64_t at = tg_clock_wall_ms();
    uint8_t h[TG_SHA256_LEN];
    char hex[2 * TG_SHA256_LEN + 1] = "";
    if (has_text) {
        tg_sha256(text, strlen(text), h);
        tg_hex_encode(h, sizeof(h), hex);
    }
    json_t *leaf =
        json_pack("{s:s, s:s, s:s, s:s, s:s?, s:b, s:I}", "kind", "handoff_reply", "review_id", id,
                  "turn_id", tg_json_str(task, "turn_id", ""), "actor", actor, "text_sha256",
                  has_text ? hex : NULL, "closed", close, "at", (json_int_t)at);
    tg_store_hold(st); /* the leaf, the message and the closing commit together */
    rc = leaf ? (audit ? tg_audit_append_json(audit, leaf, NULL) : TG_OK) : TG_E_NOMEM;
    json_decref(leaf);
    if (!rc && has_text)
        rc = thread_add(st, task, NULL, "agent", actor, text, at);
    if (!rc && close) {
        rc = tg_json_set(task, "state", json_string("closed"));
        if (!rc)
            rc = add_event(task, json_pack("{s:I, s:s, s:s}", "at", (json_int_t)at, "actor", actor,
                                           "event", "closed"));
        if (!rc)
            rc = put(st, task);
    }
    rc = tg_store_release(st, rc);
    if (!rc)
        rc = tg_store_flush(st);
    if (rc) {
        snprintf(err, errlen, "cannot store the reply: %s", tg_err_str(rc));
        goto out;
    }
    if (task_out) {
        json_t *delivered = as_delivered(st, id, task, has_text ? text : NULL);
        task = NULL;
        if (delivered) {
            *task_out = delivered;
        } else {
            rc = TG_E_NOMEM;
            snprintf(err, errlen, "the reply is stored but cannot be shown: %s", tg_err_str(rc));
        }
    }
out:
    tg_free(given);
    json_decref(task);
    return rc;
}

static int customer_message_act(struct tg_store *st, const char *id, const char *turn_id,
                                const char *text, json_t **task_out, char *err, size_t errlen)
{
    json_t *task = NULL;
    int rc = load_for(st, id, NULL, &task, err, errlen);
    if (rc)
        return rc;
    if (strcmp(tg_json_str(task, "state", ""), "handed_off") != 0) {
        snprintf(err, errlen, "task %s is %s, not with an agent", id,
                 tg_json_str(task, "state", ""));
        json_decref(task);
        return TG_E_CONFLICT;
    }
    /* the turn that carried the message is the audit record of it, and
     * waits for its commit before it answers */
    rc = thread_add(st, task, turn_id, "customer", "customer", text, tg_clock_wall_ms());
    if (rc)
        snprintf(err, errlen, "cannot store the message: %s", tg_err_str(rc));
    if (!rc && task_out) {
        *task_out = task;
        task = NULL;
    }
    json_decref(task);
    return rc;
}

/* ------------------------------------------------------------ acts under the task's lock */

/*
 * Every act on a task holds it against other nodes sharing the store
 * (tg_store_lock) from reading it to committing it: begin takes the lock,
 * end commits (on a shared store) and lets it go.
 */
static int act_begin(struct tg_store *st, const char *id, char *err, size_t errlen)
{
    int rc = tg_store_lock(st, id);
    if (rc && err)
        snprintf(err, errlen, "cannot lock task %s: %s", id ? id : "", tg_err_str(rc));
    return rc;
}

static int act_end(struct tg_store *st, const char *id, int rc)
{
    int fr;
    if (!rc && tg_store_shared(st) && (fr = tg_store_flush(st)) != TG_OK)
        tg_error("review %s: not committed: %s", id, tg_err_str(fr)); /* sticky: writes say so */
    tg_store_unlock(st, id);
    return rc;
}

int tg_review_decide(struct tg_store *st, struct tg_audit *audit, const char *id,
                     const struct tg_review_decision *d, json_t **task_out, char *err,
                     size_t errlen)
{
    int rc = act_begin(st, id, err, errlen);
    return rc ? rc : act_end(st, id, decide_act(st, audit, id, d, task_out, err, errlen));
}

int tg_review_handoff(struct tg_store *st, struct tg_audit *audit, const char *id,
                      const char *reason, json_t **task_out)
{
    int rc = act_begin(st, id, NULL, 0);
    return rc ? rc : act_end(st, id, handoff_act(st, audit, id, reason, task_out));
}

int tg_review_claim(struct tg_store *st, struct tg_audit *audit, const char *id, const char *actor,
                    int64_t lapse_ms, json_t **task_out, char *err, size_t errlen)
{
    int rc = act_begin(st, id, err, errlen);
    return rc ? rc
              : act_end(st, id, claim_act(st, audit, id, actor, lapse_ms, task_out, err, errlen));
}

int tg_review_agent_reply(struct tg_store *st, struct tg_audit *audit, const char *id,
                          const char *actor, const char *text, bool close, json_t **task_out,
                          char *err, size_t errlen)
{
    int rc = act_begin(st, id, err, errlen);
    return rc ? rc
              : act_end(st, id,
                        agent_reply_act(st, audit, id, actor, text, close, task_out, err, errlen));
}

int tg_review_customer_message(struct tg_store *st, const char *id, const char *turn_id,
                               const char *text, json_t **task_out, char *err, size_t errlen)
{
    int rc = act_begin(st, id, err, errlen);
    return rc ? rc
              : act_end(st, id, customer_message_act(st, id, turn_id, text, task_out, err, errlen));
}
