/*
 * admit_request.c - admit's validation: the request body must have the
 * OpenAI chat shape (every problem a 400 naming the field), the last user
 * message's text becomes the question, and the sensitive attributes the
 * config names are taken out of the metadata.
 */
#include "pipeline/admit.h"

#include "eval/fairness.h"

#include <stdio.h>
#include <string.h>

static const char *const roles[] = {"system", "developer", "user", "assistant", "tool", "function"};

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
            snprintf(why, whylen,
                     "messages[%zu].content[%zu] must be an object with a string 'type'", i, k);
            return false;
        }
        if (!strcmp(type, "text") && !json_is_string(json_object_get(part, "text"))) {
            snprintf(why, whylen, "messages[%zu].content[%zu].text must be a string", i, k);
            return false;
        }
        if (!strcmp(type, "image_url")) {
            v = json_object_get(part, "image_url");
            if (!json_is_object(v) || !json_is_string(json_object_get(v, "url"))) {
                snprintf(
                    why, whylen,
                    "messages[%zu].content[%zu].image_url must be an object with a string 'url'", i,
                    k);
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

bool tg_admit_request(struct tg_turn *t)
{
    const struct tg_config *cfg = t->p->cfg;
    json_error_t jerr;
    t->admit.request =
        json_loadb(t->body ? t->body : "", t->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!t->admit.request)
        BAD("invalid_json", NULL, "request body is not valid JSON: %s (line %d, column %d)",
            jerr.text, jerr.line, jerr.column);
    if (!json_is_object(t->admit.request))
        BAD("invalid_json", NULL, "request body must be a JSON object");
    json_t *model = json_object_get(t->admit.request, "model");
    if (model && !json_is_string(model))
        BAD("invalid_type", "model", "'model' must be a string");
    t->admit.model =
        model ? json_string_value(model) : (cfg->n_models ? cfg->models[0] : "trustgate");
    json_t *stream = json_object_get(t->admit.request, "stream");
    if (stream && !json_is_boolean(stream) && !json_is_null(stream))
        BAD("invalid_type", "stream", "'stream' must be a boolean");
    t->admit.stream = json_is_true(stream);
    const char *numeric[] = {"temperature", "top_p", "presence_penalty", "frequency_penalty"};
    for (size_t i = 0; i < TG_ARRAY_LEN(numeric); i++) {
        json_t *v = json_object_get(t->admit.request, numeric[i]);
        if (v && !json_is_number(v) && !json_is_null(v))
            BAD("invalid_type", numeric[i], "'%s' must be a number", numeric[i]);
    }
    json_t *mt = json_object_get(t->admit.request, "max_tokens");
    if (mt && !json_is_null(mt) && (!json_is_integer(mt) || json_integer_value(mt) < 1))
        BAD("invalid_type", "max_tokens", "'max_tokens' must be a positive integer");
    json_t *user = json_object_get(t->admit.request, "user");
    if (user && !json_is_string(user) && !json_is_null(user))
        BAD("invalid_type", "user", "'user' must be a string");
    json_t *meta = json_object_get(t->admit.request, "metadata");
    if (meta && !json_is_object(meta) && !json_is_null(meta))
        BAD("invalid_type", "metadata", "'metadata' must be an object");

    json_t *msgs = json_object_get(t->admit.request, "messages");
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
            t->admit.user_text = txt;
            t->admit.media = has_media(content);
        }
    }
    if (!t->admit.user_text)
        BAD("missing_user_message", "messages", "'messages' must contain a user message");
    return true;
}

int tg_admit_sensitive(struct tg_turn *t)
{
    json_t *meta = json_object_get(t->admit.request, "metadata");
    const struct tg_fairness_conf *fc = &t->p->cfg->fairness;
    int rc = TG_OK;
    if (!json_is_object(meta))
        return TG_OK;
    for (size_t i = 0; i < fc->n_attributes; i++) {
        const char *name = fc->attrs[i].name;
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
        if (!rc && !t->admit.sensitive)
            t->admit.sensitive = json_object();
        if (!rc)
            rc = tg_json_set(t->admit.sensitive, name, json_string(ps));
        /* taken out even when it cannot be kept: never passed on */
        json_object_del(meta, name);
    }
    return rc;
}
