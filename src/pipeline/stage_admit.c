/*
 * stage_admit.c - the door: who is asking (API key), is the request well
 * formed (the OpenAI chat shape), and which conversation it continues.
 *
 * Keys are compared as SHA-256 hashes in constant time against every
 * configured key, so neither the key nor its position leaks through
 * timing.  Conversations are keyed by the customer (the request's `user`,
 * else the configured customer header), so a conversation follows the
 * customer across devices and channels; after the idle timeout a new one
 * starts.
 */
#include "pipeline/pipeline.h"

#include "backend/backend.h"
#include "ladder/ladder.h"
#include "eval/fairness.h"
#include "govern/govern.h"
#include "eval/stats.h"
#include "metrics/metrics.h"
#include "policy/policy.h"
#include "review/review.h"

#include <stdio.h>
#include <string.h>

static const char *const roles[] = {"system", "developer", "user", "assistant", "tool", "function"};

static bool auth_ok(struct tg_turn *t)
{
    t->klass = TG_CLASS_CUSTOMER;
    if (t->trusted) {
        t->key_name = "local";
        t->class_from_metadata = true;
        return true;
    }
    const struct tg_api_key *k = tg_config_api_key(t->p->cfg, t->api_key);
    if (k) {
        t->key_name = k->name;
        t->klass = (int)k->klass;
        t->class_from_metadata = k->class_from_metadata;
    }
    return k != NULL;
}

/* The text of a message's content: a string, or the text parts of an array. */
static const char *content_text(struct tg_turn *t, const json_t *content)
{
    if (json_is_string(content))
        return json_string_value(content);
    if (!json_is_array(content))
        return NULL;
    struct tg_buf b;
    size_t i;
    json_t *part;
    tg_buf_init(&b, 1u << 24);
    json_array_foreach(content, i, part)
    {
        const char *txt = tg_json_str(part, "text", NULL);
        if (txt && strcmp(tg_json_str(part, "type", "text"), "text") == 0) {
            if (b.len)
                tg_buf_puts(&b, "\n");
            tg_buf_puts(&b, txt);
        }
    }
    const char *s = tg_arena_strndup(&t->arena, b.data ? b.data : "", b.len);
    tg_buf_free(&b);
    return s;
}

/*
 * Check the content parts of message i as OpenAI defines them: each an
 * object with a string `type`; `text` parts carry a string `text`,
 * `image_url` an object with a string `url`, `input_audio` an object with
 * string `data` and `format`, `file` an object, `refusal` a string.  Parts
 * of other types are passed on for upstreams that know them.  Writes the
 * problem to why and returns false.
 */
static bool parts_ok(const json_t *content, size_t i, char *why, size_t whylen)
{
    size_t k;
    const json_t *part;
    json_array_foreach(content, k, part)
    {
        const char *type = tg_json_str(part, "type", NULL);
        const json_t *v;
        if (!json_is_object(part) || !type) {
            snprintf(why, whylen, "messages[%zu].content[%zu] must be an object with a string 'type'",
                     i, k);
            return false;
        }
        if (!strcmp(type, "text") && !json_is_string(json_object_get(part, "text"))) {
            snprintf(why, whylen, "messages[%zu].content[%zu].text must be a string", i, k);
            return false;
        }
        if (!strcmp(type, "image_url")) {
            v = json_object_get(part, "image_url");
            if (!json_is_object(v) || !json_is_string(json_object_get(v, "url"))) {
                snprintf(why, whylen,
                         "messages[%zu].content[%zu].image_url must be an object with a string 'url'",
                         i, k);
                return false;
            }
        }
        if (!strcmp(type, "input_audio")) {
            v = json_object_get(part, "input_audio");
            if (!json_is_object(v) || !json_is_string(json_object_get(v, "data")) ||
                !json_is_string(json_object_get(v, "format"))) {
                snprintf(why, whylen,
                         "messages[%zu].content[%zu].input_audio must be an object with string "
                         "'data' and 'format'",
                         i, k);
                return false;
            }
        }
        if (!strcmp(type, "file") && !json_is_object(json_object_get(part, "file"))) {
            snprintf(why, whylen, "messages[%zu].content[%zu].file must be an object", i, k);
            return false;
        }
        if (!strcmp(type, "refusal") && !json_is_string(json_object_get(part, "refusal"))) {
            snprintf(why, whylen, "messages[%zu].content[%zu].refusal must be a string", i, k);
            return false;
        }
    }
    return true;
}

/* True when a user message carries a part other than text (an image, audio, a file). */
static bool has_media(const json_t *content)
{
    size_t k;
    const json_t *part;
    json_array_foreach(content, k, part)
    {
        if (strcmp(tg_json_str(part, "type", ""), "text") != 0)
            return true;
    }
    return false;
}

#define BAD(code, param, ...)                                                                      \
    do {                                                                                           \
        tg_turn_fail(t, TG_E_INVAL, 400, code, param, __VA_ARGS__);                                \
        return false;                                                                              \
    } while (0)

static bool validate(struct tg_turn *t)
{
    const struct tg_config *cfg = t->p->cfg;
    json_error_t jerr;
    t->request = json_loadb(t->body ? t->body : "", t->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!t->request)
        BAD("invalid_json", NULL, "request body is not valid JSON: %s (line %d, column %d)",
            jerr.text, jerr.line, jerr.column);
    if (!json_is_object(t->request))
        BAD("invalid_json", NULL, "request body must be a JSON object");
    json_t *model = json_object_get(t->request, "model");
    if (model && !json_is_string(model))
        BAD("invalid_type", "model", "'model' must be a string");
    t->model = model ? json_string_value(model) : (cfg->n_models ? cfg->models[0] : "trustgate");
    json_t *stream = json_object_get(t->request, "stream");
    if (stream && !json_is_boolean(stream) && !json_is_null(stream))
        BAD("invalid_type", "stream", "'stream' must be a boolean");
    t->stream = json_is_true(stream);
    const char *numeric[] = {"temperature", "top_p", "presence_penalty", "frequency_penalty"};
    for (size_t i = 0; i < TG_ARRAY_LEN(numeric); i++) {
        json_t *v = json_object_get(t->request, numeric[i]);
        if (v && !json_is_number(v) && !json_is_null(v))
            BAD("invalid_type", numeric[i], "'%s' must be a number", numeric[i]);
    }
    json_t *mt = json_object_get(t->request, "max_tokens");
    if (mt && !json_is_null(mt) && (!json_is_integer(mt) || json_integer_value(mt) < 1))
        BAD("invalid_type", "max_tokens", "'max_tokens' must be a positive integer");
    json_t *user = json_object_get(t->request, "user");
    if (user && !json_is_string(user) && !json_is_null(user))
        BAD("invalid_type", "user", "'user' must be a string");
    json_t *meta = json_object_get(t->request, "metadata");
    if (meta && !json_is_object(meta) && !json_is_null(meta))
        BAD("invalid_type", "metadata", "'metadata' must be an object");

    json_t *msgs = json_object_get(t->request, "messages");
    if (!msgs)
        BAD("missing_field", "messages", "'messages' is required");
    if (!json_is_array(msgs))
        BAD("invalid_type", "messages", "'messages' must be an array");
    size_t n = json_array_size(msgs);
    if (n == 0)
        BAD("empty_messages", "messages", "'messages' must not be empty");
    if (n > cfg->max_messages)
        BAD("too_many_messages", "messages", "'messages' has %zu entries; the limit is %zu", n,
            cfg->max_messages);
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        if (!json_is_object(m))
            BAD("invalid_type", "messages", "messages[%zu] must be an object", i);
        const char *role = tg_json_str(m, "role", NULL);
        if (!role)
            BAD("invalid_type", "messages", "messages[%zu].role is required and must be a string",
                i);
        bool known = false;
        for (size_t r = 0; r < TG_ARRAY_LEN(roles); r++)
            known |= strcmp(role, roles[r]) == 0;
        if (!known)
            BAD("invalid_value", "messages",
                "messages[%zu].role '%s' is not one of system, developer, user, "
                "assistant, tool",
                i, role);
        json_t *content = json_object_get(m, "content");
        if (content && !json_is_string(content) && !json_is_array(content) &&
            !json_is_null(content))
            BAD("invalid_type", "messages",
                "messages[%zu].content must be a string or an array of parts", i);
        char why[160];
        if (json_is_array(content) && !parts_ok(content, i, why, sizeof(why)))
            BAD("invalid_content_part", "messages", "%s", why);
        if (strcmp(role, "user") == 0) {
            const char *txt = content_text(t, content);
            if (!txt)
                BAD("invalid_type", "messages",
                    "messages[%zu].content must be a string or an array of parts", i);
            t->user_text = txt;
            t->media = has_media(content);
        }
    }
    if (!t->user_text)
        BAD("missing_user_message", "messages", "'messages' must contain a user message");
    return true;
}

/* Continue the customer's recent conversation, or start a new one. */
static int conversation(struct tg_turn *t)
{
    struct tg_pipeline *p = t->p;
    const char *customer = tg_json_str(t->request, "user", NULL);
    if (!customer || !customer[0])
        customer = t->customer_hint;
    memset(&t->conv, 0, sizeof(t->conv));
    if (customer && customer[0]) {
        tg_strlcpy(t->conv.customer_id, customer, sizeof(t->conv.customer_id));
        struct tg_conversation c;
        /* What this process recorded last wins over the store, which may not
         * have committed it yet (and costs no read). */
        const struct tg_conversation *mem = tg_pipeline_recent(p, t->conv.customer_id);
        if (mem)
            c = *mem;
        /* the store finds the customer by the pseudonym it keeps and hands that
         * back: the turn goes on with the id as the channel sent it */
        if ((mem || tg_store_conversation_latest(p->store, t->conv.customer_id, &c) == TG_OK) &&
            t->created_ms - c.updated_ms <= p->cfg->idle_timeout_ms) {
            t->conv = c;
            tg_strlcpy(t->conv.customer_id, customer, sizeof(t->conv.customer_id));
            return TG_OK;
        }
    }
    t->new_conversation = true;
    t->conv.created_ms = t->created_ms;
    return tg_id_new("conv", t->conv.id);
}

/*
 * The sensitive attributes the config names (fairness.attributes), taken
 * out of the channel's metadata before any rule or model can see them and
 * kept only as keyed pseudonyms (per attribute) for the fairness gate.
 */
static void sensitive(struct tg_turn *t)
{
    json_t *meta = json_object_get(t->request, "metadata");
    const struct tg_fairness_conf *fc = &t->p->cfg->fairness;
    if (!json_is_object(meta))
        return;
    for (size_t i = 0; i < fc->n_attributes; i++) {
        const char *name = fc->attributes[i];
        const json_t *v = json_object_get(meta, name);
        char val[128], ps[33];
        if (json_is_string(v))
            tg_strlcpy(val, json_string_value(v), sizeof(val));
        else if (json_is_integer(v))
            snprintf(val, sizeof(val), "%lld", (long long)json_integer_value(v));
        else {
            json_object_del(meta, name); /* not a value we group by: still never passed on */
            continue;
        }
        tg_fairness_value_pseudonym(t->p->pseudonym_key, sizeof(t->p->pseudonym_key), name, val,
                                    ps);
        if (!t->sensitive)
            t->sensitive = json_object();
        json_object_set_new(t->sensitive, name, json_string(ps));
        json_object_del(meta, name);
    }
}

/*
 * A conversation already with a person (an open hand-off): the message goes
 * to the agent (the store keeps it masked, as it keeps every hand-off
 * message) and no model answers.  False when the conversation is not with
 * a person (any more).
 */
static bool to_person(struct tg_turn *t)
{
    const char *rid = tg_json_str(t->p->with_person, t->conv.id, NULL);
    if (!rid || t->new_conversation)
        return false;
    char id[TG_ID_MAX], err[256];
    tg_strlcpy(id, rid, sizeof(id));
    json_t *task = NULL;
    int rc =
        tg_review_customer_message(t->p->store, id, t->id, t->user_text, &task, err, sizeof(err));
    if (rc == TG_E_CONFLICT || rc == TG_E_NOTFOUND) {
        tg_pipeline_with_person(t->p, t->conv.id, NULL); /* closed meanwhile: the AI answers */
        return false;
    }
    if (rc) {
        tg_turn_fail(t, rc, 503, "storage_unavailable", NULL,
                     "the message could not be passed to the agent: %s", err);
        t->decision = TG_DECISION_ERROR;
        return true;
    }
    tg_strlcpy(t->review_id, id, sizeof(t->review_id));
    t->decision = TG_DECISION_HANDOFF;
    t->handoff = true;
    t->rung = "human";
    tg_review_sla_notify(t->p->sla, id, "customer_message", task);
    json_decref(task);
    return true;
}

enum tg_stage_rc tg_stage_admit(struct tg_turn *t)
{
    if (!auth_ok(t)) {
        tg_turn_fail(t, TG_E_AUTH, 401, "invalid_api_key", NULL,
                     t->api_key ? "Incorrect API key provided."
                                : "Missing API key: send it as 'Authorization: Bearer <key>'.");
        return TG_DONE;
    }
    if (!validate(t))
        return TG_DONE;
    sensitive(t);
    if (tg_id_new("turn", t->id) || conversation(t)) {
        t->id[0] = '\0';
        tg_turn_fail(t, TG_E_INTERNAL, 500, "internal_error", NULL, "cannot create identifiers");
        return TG_DONE;
    }
    /* the variant of each running experiment this customer sees (sticky) */
    for (size_t i = 0; i < t->p->cfg->n_experiments; i++) {
        const struct tg_experiment_conf *exp = &t->p->cfg->experiments[i];
        const char *v = tg_experiment_assign(exp->node, t->conv.customer_id);
        if (!v)
            continue;
        if (!t->variants)
            t->variants = json_object();
        json_object_set_new(t->variants, exp->name, json_string(v));
        tg_metrics_experiment(t->p->metrics, exp->name, v);
        /* a variant of another release answers this customer (at most one experiment
         * changes what answers: the config's check) */
        const struct tg_answerer *a = tg_pipeline_answerer(t->p, exp->name, v);
        if (a)
            t->a = a;
    }
    /* An image or a recording with no words, where nothing that answers can
     * see it: say so rather than answer a question nobody asked. */
    struct tg_backend *first = tg_ladder_first_backend(t->a->ladder);
    if (t->media && !t->user_text[0] &&
        !(first && strcmp(tg_backend_type(first), "openai") == 0)) {
        tg_turn_fail(t, TG_E_INVAL, 400, "unsupported_content", "messages",
                     "the last user message has only image, audio or file parts, and this route "
                     "answers from text; send the question as text");
        return TG_DONE;
    }
    /* with a person: straight to the record, nothing is generated */
    return to_person(t) ? TG_DONE : TG_NEXT;
}
