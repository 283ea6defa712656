/*
 * people.c - the sections about people and what they read: review (with
 * the hand-offs' risk tags), translations, labels, privacy, web (with the
 * pages' texts), users (one person each: names, tokens and customer ids no
 * one else has) and webhooks.
 */
#include "config/config_int.h"

#include <stdio.h>
#include <string.h>

/* review.risk_tags: a list of tag names (non-empty texts), each at its line. */
static void check_risk_tags(struct tg_config_vctx *c, const json_t *sec)
{
    const json_t *list = json_object_get(sec, "risk_tags");
    size_t i;
    json_t *v;
    if (!list || tg_config_env_failed(c, list))
        return;
    if (!json_is_array(list)) {
        tg_config_type_err(c, tg_config_key_line(c, sec, "risk_tags"), "review.risk_tags",
                           "a list of tag names", list);
        return;
    }
    json_array_foreach(list, i, v)
    {
        if (tg_config_env_failed(c, v) || (json_is_string(v) && json_string_length(v)))
            continue;
        tg_config_verr(c, tg_config_lines_elem(c->lines, list, i),
                       "review.risk_tags[%zu] must be a tag name, not %s", i,
                       json_is_string(v) ? "an empty text" : tg_config_type_name(v));
    }
}

/* review: {warn_before, claim_lapse, four_eyes, internal_queues, follow_up: {queue, sla},
 * risk_tags} — for the review API, the gate and the console's hand-offs. */
void tg_config_check_review(struct tg_config_vctx *c, const json_t *root)
{
    static const char *const known[] = {"warn_before",     "claim_lapse", "four_eyes",
                                        "internal_queues", "follow_up",   "risk_tags"};
    const json_t *sec = tg_config_get_mapping(c, root, "review", "review");
    int64_t ms;
    if (!sec)
        return;
    tg_config_check_keys(c->errs, c->path, c->lines, sec, "review", known, TG_ARRAY_LEN(known));
    for (size_t i = 0; i < 2; i++) {
        const json_t *v = json_object_get(sec, known[i]);
        char w[48];
        snprintf(w, sizeof(w), "review.%s", known[i]);
        if (v && !tg_config_env_failed(c, v) && !tg_config_get_duration(v, &ms))
            tg_config_type_err(c, tg_config_key_line(c, sec, known[i]), w,
                               "a duration such as \"30s\"", v);
    }
    const json_t *iq = json_object_get(sec, "internal_queues");
    size_t i;
    json_t *q;
    if (iq && !json_is_array(iq))
        tg_config_type_err(c, tg_config_key_line(c, sec, "internal_queues"),
                           "review.internal_queues", "a list of queue names", iq);
    json_array_foreach(iq, i, q)
    {
        if (!json_is_string(q))
            tg_config_type_err(c, tg_config_lines_elem(c->lines, iq, i), "review.internal_queues",
                               "a list of queue names", q);
    }
    check_risk_tags(c, sec);
    const json_t *fe = json_object_get(sec, "four_eyes");
    if (fe && !json_is_boolean(fe))
        tg_config_type_err(c, tg_config_key_line(c, sec, "four_eyes"), "review.four_eyes",
                           "true or false", fe);
    /* follow_up: {queue, sla} — where promises to wait go (stage_gate.c) */
    const json_t *fu = json_object_get(sec, "follow_up");
    static const char *const fu_keys[] = {"queue", "sla"};
    if (fu && !json_is_object(fu)) {
        tg_config_type_err(c, tg_config_key_line(c, sec, "follow_up"), "review.follow_up",
                           "a mapping", fu);
        return;
    }
    if (!fu)
        return;
    tg_config_check_keys(c->errs, c->path, c->lines, fu, "review.follow_up", fu_keys, 2);
    const json_t *fq = json_object_get(fu, "queue"), *sla = json_object_get(fu, "sla");
    if (fq && (!json_is_string(fq) || !json_string_length(fq)))
        tg_config_type_err(c, tg_config_key_line(c, fu, "queue"), "review.follow_up.queue",
                           "a queue name", fq);
    if (sla && !tg_config_env_failed(c, sla) && (!tg_config_get_duration(sla, &ms) || ms <= 0))
        tg_config_type_err(c, tg_config_key_line(c, fu, "sla"), "review.follow_up.sla",
                           "a duration such as \"2m\"", sla);
}

/*
 * translations: {LANG: {TEXT: TEXT}} — the customer-facing texts of the
 * configuration (scripts, holding replies, disclaimers, refusals) in
 * another language, keyed by the default (Chinese) text.  LANG is en,
 * zh-Hant or ja; zh-Hant falls back to the text in Traditional characters.
 */
void tg_config_check_translations(struct tg_config_vctx *c, const json_t *root)
{
    static const char *const langs[] = {"en", "zh-Hant", "ja"};
    const json_t *sec = tg_config_get_mapping(c, root, "translations", "translations");
    const char *lang, *text;
    const json_t *table, *v;
    if (!sec)
        return;
    tg_config_check_keys(c->errs, c->path, c->lines, sec, "translations", langs,
                         TG_ARRAY_LEN(langs));
    json_object_foreach((json_t *)sec, lang, table)
    {
        char w[64];
        snprintf(w, sizeof(w), "translations.%s", lang);
        if (!json_is_object(table)) {
            tg_config_type_err(c, tg_config_key_line(c, sec, lang), w,
                               "a mapping of texts to their translations", table);
            continue;
        }
        json_object_foreach((json_t *)table, text, v)
        {
            if (!json_is_string(v) || !json_string_length(v))
                tg_config_type_err(c, tg_config_key_line(c, table, text), w, "a text", v);
        }
    }
}

#define LANG_TAG_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"

/* A language tag such as zh, en or zh-CN, as labels: and web.texts: are keyed. */
static bool lang_tag_ok(const char *lang)
{
    size_t len = strlen(lang);
    return len >= 2 && len <= 16 && lang[0] != '-' && strspn(lang, LANG_TAG_CHARS) == len;
}

/*
 * labels: {LANG: {CODE: TEXT}} — what the console shows for a tag, an
 * event, a rule id or a queue in the interface's language (served by
 * console.c); a code without a label is shown as it is.
 */
void tg_config_check_labels(struct tg_config_vctx *c, const json_t *root)
{
    const json_t *sec = tg_config_get_mapping(c, root, "labels", "labels");
    const char *lang, *code;
    const json_t *table, *v;
    if (!sec)
        return;
    json_object_foreach((json_t *)sec, lang, table)
    {
        char w[80];
        snprintf(w, sizeof(w), "labels.%.40s", lang);
        if (!lang_tag_ok(lang)) {
            tg_config_verr(c, tg_config_key_line(c, sec, lang),
                           "labels: '%.40s' is not a language tag such as zh or en", lang);
            continue;
        }
        if (!json_is_object(table)) {
            if (!tg_config_env_failed(c, table))
                tg_config_type_err(c, tg_config_key_line(c, sec, lang), w,
                                   "a mapping of codes to labels", table);
            continue;
        }
        json_object_foreach((json_t *)table, code, v)
        {
            if (!json_is_string(v) || !json_string_length(v)) {
                if (!tg_config_env_failed(c, v))
                    tg_config_verr(c, tg_config_key_line(c, table, code),
                                   "%s.%.60s must be a non-empty text, not %s", w, code,
                                   json_is_string(v) ? "an empty one" : tg_config_type_name(v));
            }
        }
    }
}

/* privacy: {customer_map} — whether the store keeps pseudonym -> customer
 * id (stage_record.c); a boolean. */
void tg_config_check_privacy(struct tg_config_vctx *c, const json_t *root)
{
    static const char *const known[] = {"customer_map"};
    const json_t *sec = tg_config_get_mapping(c, root, "privacy", "privacy");
    if (!sec)
        return;
    tg_config_check_keys(c->errs, c->path, c->lines, sec, "privacy", known, TG_ARRAY_LEN(known));
    const json_t *m = json_object_get(sec, "customer_map");
    if (m && !json_is_boolean(m))
        tg_config_type_err(c, tg_config_key_line(c, sec, "customer_map"), "privacy.customer_map",
                           "true or false", m);
}

/* The longest example question: what the chat page accepts as one message. */
#define WEB_EXAMPLE_MAX 4000

/* One text of web.texts.LANG (at WHERE): a non-empty text, of at most max bytes when max. */
static void check_web_text(struct tg_config_vctx *c, int line, const char *where, const json_t *v,
                           size_t max)
{
    if (tg_config_env_failed(c, v))
        return;
    if (!json_is_string(v) || !json_string_length(v))
        tg_config_verr(c, line, "%s must be a non-empty text, not %s", where,
                       json_is_string(v) ? "an empty one" : tg_config_type_name(v));
    else if (max && json_string_length(v) > max)
        tg_config_verr(c, line, "%s is longer than the chat page takes (%zu bytes at most)", where,
                       max);
}

/* web.texts.LANG: {chat_title, chat_intro, chat_examples: [TEXT], login_hint}. */
static void check_web_lang(struct tg_config_vctx *c, const json_t *texts, const char *lang,
                           const json_t *table)
{
    static const char *const known[] = {"chat_title", "chat_intro", "chat_examples", "login_hint"};
    const json_t *v;
    const char *key;
    char w[112];
    snprintf(w, sizeof(w), "web.texts.%.40s", lang);
    if (!lang_tag_ok(lang)) {
        tg_config_verr(c, tg_config_key_line(c, texts, lang),
                       "web.texts: '%.40s' is not a language tag such as zh or en", lang);
        return;
    }
    if (!json_is_object(table)) {
        if (!tg_config_env_failed(c, table))
            tg_config_type_err(c, tg_config_key_line(c, texts, lang), w,
                               "a mapping of the pages' texts", table);
        return;
    }
    tg_config_check_keys(c->errs, c->path, c->lines, table, w, known, TG_ARRAY_LEN(known));
    json_object_foreach((json_t *)table, key, v)
    {
        char where[160];
        int line = tg_config_key_line(c, table, key);
        snprintf(where, sizeof(where), "%s.%s", w, key);
        if (strcmp(key, "chat_examples") != 0) {
            if (strcmp(key, "chat_title") == 0 || strcmp(key, "chat_intro") == 0 ||
                strcmp(key, "login_hint") == 0)
                check_web_text(c, line, where, v, 0);
            continue;
        }
        if (!json_is_array(v)) {
            if (!tg_config_env_failed(c, v))
                tg_config_type_err(c, line, where, "a list of example questions", v);
            continue;
        }
        size_t i;
        const json_t *q;
        json_array_foreach(v, i, q)
        {
            snprintf(where, sizeof(where), "%s.chat_examples[%zu]", w, i);
            check_web_text(c, tg_config_lines_elem(c->lines, v, i), where, q, WEB_EXAMPLE_MAX);
        }
    }
}

/* web: {chat, console, texts: {LANG: {...}}} — the pages the daemon serves (booleans) and the
 * deployment's own words on them. */
void tg_config_check_web(struct tg_config_vctx *c, const json_t *root)
{
    static const char *const known[] = {"chat", "console", "texts"};
    const json_t *sec = tg_config_get_mapping(c, root, "web", "web");
    if (!sec)
        return;
    tg_config_check_keys(c->errs, c->path, c->lines, sec, "web", known, TG_ARRAY_LEN(known));
    const json_t *texts = tg_config_get_mapping(c, sec, "texts", "web.texts");
    const char *lang;
    const json_t *table;
    json_object_foreach((json_t *)texts, lang, table)
    {
        check_web_lang(c, texts, lang, table);
    }
    for (size_t i = 0; i < 2; i++) {
        const json_t *v = json_object_get(sec, known[i]);
        char w[32];
        snprintf(w, sizeof(w), "web.%s", known[i]);
        if (v && !json_is_boolean(v))
            tg_config_type_err(c, tg_config_key_line(c, sec, known[i]), w, "true or false", v);
    }
}

/* One identity a user is known by: their name or a customer id mapped to them. */
struct ident {
    char *canon;       /* tg_config_identity() of it */
    const char *shown; /* as written (borrowed from the tree) */
    size_t user;       /* index in users */
    bool name;         /* the user's name, not a customer id */
};

/* A user's token, by hash, and whose it is. */
struct user_token {
    uint8_t sha256[TG_SHA256_LEN];
    size_t user;
};

/* What tg_config_check_users() has seen so far. */
struct people {
    struct ident *ids;
    size_t n_ids, cap_ids;
    struct user_token *tokens;
    size_t n_tokens;
};

static void people_free(struct people *pp)
{
    for (size_t i = 0; i < pp->n_ids; i++)
        tg_free(pp->ids[i].canon);
    tg_free(pp->ids);
    tg_free(pp->tokens);
}

/*
 * Record identity v (a name or a customer id, at WHERE on line) of user ui,
 * refusing it when its canonical form already names another user, or is
 * the very same name twice.
 */
static void add_identity(struct tg_config_vctx *c, struct people *pp, const json_t *users,
                         size_t ui, const json_t *v, const char *where, int line, bool is_name)
{
    struct tg_buf b;
    tg_buf_init(&b, TG_CONFIG_MAX_FILE);
    int rc = tg_config_identity(json_string_value(v), json_string_length(v), &b);
    if (rc == TG_E_NOMEM) {
        c->rc = rc;
        goto out;
    }
    if (rc) {
        tg_config_verr(c, line, "%s is not a usable identity (at most 1024 characters)", where);
        goto out;
    }
    for (size_t i = 0; i < pp->n_ids; i++) {
        const struct ident *o = &pp->ids[i];
        if (o->user == ui || strcmp(o->canon, b.data) != 0)
            continue; /* a user's customer id may spell their own name */
        const char *other = tg_json_str(json_array_get(users, o->user), "name", "?");
        if (is_name && o->name && !strcmp(o->shown, json_string_value(v)))
            tg_config_verr(c, line, "%s: duplicate user name '%s' (users[%zu] has it too)", where,
                           json_string_value(v), o->user);
        else
            tg_config_verr(
                c, line,
                "%s '%s' is the same identity as '%s' of users[%zu] ('%s') once case and "
                "width are folded: one person, one user",
                where, json_string_value(v), o->shown, o->user, other);
        goto out;
    }
    if (tg_grow(&pp->ids, &pp->cap_ids, pp->n_ids, sizeof(*pp->ids), 16)) {
        c->rc = TG_E_NOMEM;
        goto out;
    }
    pp->ids[pp->n_ids].canon = tg_buf_steal(&b, NULL);
    pp->ids[pp->n_ids].shown = json_string_value(v);
    pp->ids[pp->n_ids].user = ui;
    pp->ids[pp->n_ids].name = is_name;
    pp->n_ids++;
out:
    tg_buf_free(&b);
}

/* users[ui].token: one person's, never another user's nor an API key. */
static void check_token(struct tg_config_vctx *c, const struct tg_config *cfg, struct people *pp,
                        const json_t *users, size_t ui, const json_t *u, const char *w)
{
    const json_t *tok = json_object_get(u, "token");
    int line = tg_config_key_line(c, u, "token");
    struct user_token t = {.user = ui};
    if (!tok || tg_config_env_failed(c, tok))
        return;
    if (!json_is_string(tok) || json_string_length(tok) == 0) {
        tg_config_verr(c, line, "%s.token must be a non-empty string", w);
        return;
    }
    tg_sha256(json_string_value(tok), json_string_length(tok), t.sha256);
    for (size_t i = 0; i < pp->n_tokens; i++) {
        if (tg_ct_equal(pp->tokens[i].sha256, t.sha256, TG_SHA256_LEN)) {
            tg_config_verr(c, line,
                           "%s.token is the token of users[%zu] ('%s') too: one token, one person",
                           w, pp->tokens[i].user,
                           tg_json_str(json_array_get(users, pp->tokens[i].user), "name", "?"));
            return;
        }
    }
    for (size_t i = 0; i < cfg->n_api_keys; i++) {
        if (tg_ct_equal(cfg->api_keys[i].sha256, t.sha256, TG_SHA256_LEN)) {
            tg_config_verr(
                c, line,
                "%s.token is also API key '%s': a person's token must not be a channel's key", w,
                cfg->api_keys[i].name);
            return;
        }
    }
    pp->tokens[pp->n_tokens++] = t;
}

/* users[ui].customer_ids: the channel customer ids this person chats as. */
static void check_customer_ids(struct tg_config_vctx *c, struct people *pp, const json_t *users,
                               size_t ui, const json_t *u, const char *w)
{
    const json_t *list = json_object_get(u, "customer_ids");
    char where[96];
    size_t i;
    json_t *v;
    if (!list || tg_config_env_failed(c, list))
        return;
    snprintf(where, sizeof(where), "%s.customer_ids", w);
    if (!json_is_array(list)) {
        tg_config_type_err(c, tg_config_key_line(c, u, "customer_ids"), where,
                           "a list of customer ids", list);
        return;
    }
    json_array_foreach(list, i, v)
    {
        int line = tg_config_lines_elem(c->lines, list, i);
        snprintf(where, sizeof(where), "%s.customer_ids[%zu]", w, i);
        if (tg_config_env_failed(c, v))
            continue;
        if (!json_is_string(v) || json_string_length(v) == 0)
            tg_config_type_err(c, line, where, "a non-empty string", v);
        else
            add_identity(c, pp, users, ui, v, where, line, false);
    }
}

/* users[i], one person each: a role, a way to authenticate, and identities
 * (name, token, customer ids) that are no one else's. */
static void check_user(struct tg_config_vctx *c, const struct tg_config *cfg, struct people *pp,
                       const json_t *users, size_t i)
{
    static const char *const user_keys[] = {"name",     "role",          "token",
                                            "password", "password_hash", "customer_ids"};
    const json_t *u = json_array_get(users, i);
    char w[48];
    int line = tg_config_lines_elem(c->lines, users, i);
    snprintf(w, sizeof(w), "users[%zu]", i);
    if (!json_is_object(u)) {
        tg_config_type_err(c, line, w, "a mapping with name, role and token", u);
        return;
    }
    tg_config_check_keys(c->errs, c->path, c->lines, u, w, user_keys, TG_ARRAY_LEN(user_keys));
    const char *ph = tg_json_str(u, "password_hash", NULL);
    const json_t *name = json_object_get(u, "name");
    if (!json_is_string(name) ||
        !(json_object_get(u, "token") || tg_json_str(u, "password", NULL) || ph))
        tg_config_verr(c, line, "%s needs a name and a token, a password or a password_hash", w);
    if (ph && !tg_password_hash_valid(ph))
        tg_config_verr(c, tg_config_key_line(c, u, "password_hash"),
                       "%s.password_hash is not a hash from 'trustgate passwd' "
                       "(pbkdf2-sha256$ITERATIONS$SALT$HASH)",
                       w);
    if (tg_json_str(u, "password", NULL) && ph)
        tg_config_verr(c, line, "%s has both a password and a password_hash; keep one", w);
    const char *role = tg_json_str(u, "role", "reviewer");
    if (strcmp(role, "reviewer") && strcmp(role, "supervisor") && strcmp(role, "agent") &&
        strcmp(role, "auditor"))
        tg_config_verr(c, tg_config_key_line(c, u, "role"),
                       "%s.role must be reviewer, supervisor, agent or auditor, not '%s'", w, role);
    if (json_is_string(name) && json_string_length(name) > 0) {
        char where[64];
        snprintf(where, sizeof(where), "%s.name", w);
        add_identity(c, pp, users, i, name, where, tg_config_key_line(c, u, "name"), true);
    }
    check_token(c, cfg, pp, users, i, u, w);
    check_customer_ids(c, pp, users, i, u, w);
}

/* users: [{name, role: reviewer|supervisor|agent|auditor, token?, password? | password_hash?,
 * customer_ids?}] — each element checked with its line; no two users share a name (as
 * tg_config_identity() compares them), a token or a customer id, and no token is an API key. */
void tg_config_check_users(struct tg_config_vctx *c, const struct tg_config *cfg,
                           const json_t *root)
{
    const json_t *users = tg_config_get_list(c, root, "users", "users");
    struct people pp = {0};
    size_t n = json_array_size(users);
    if (n == 0)
        return;
    pp.tokens = tg_calloc(n, sizeof(*pp.tokens));
    if (!pp.tokens) {
        c->rc = TG_E_NOMEM;
        return;
    }
    for (size_t i = 0; i < n && !c->rc; i++)
        check_user(c, cfg, &pp, users, i);
    people_free(&pp);
}

/* webhooks: [{url, secret}] — each element checked with its line. */
void tg_config_check_hooks(struct tg_config_vctx *c, const json_t *root)
{
    static const char *const hook_keys[] = {"url", "secret"};
    const json_t *hooks = tg_config_get_list(c, root, "webhooks", "webhooks");
    size_t i;
    json_t *u;
    json_array_foreach(hooks, i, u)
    {
        char w[48];
        int line = tg_config_lines_elem(c->lines, hooks, i);
        snprintf(w, sizeof(w), "webhooks[%zu]", i);
        if (!json_is_object(u)) {
            tg_config_type_err(c, line, w, "a mapping with url and secret", u);
            continue;
        }
        tg_config_check_keys(c->errs, c->path, c->lines, u, w, hook_keys, TG_ARRAY_LEN(hook_keys));
        const char *url = tg_json_str(u, "url", "");
        if (!tg_config_url_ok(url))
            tg_config_verr(c, tg_config_key_line(c, u, "url"),
                           "%s.url must be an http:// or https:// URL, not '%s'", w, url);
        if (!tg_json_str(u, "secret", NULL) || !tg_json_str(u, "secret", "")[0])
            tg_config_verr(c, line, "%s needs a secret (it signs every delivery)", w);
    }
}
