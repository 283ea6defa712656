/*
 * rules.c - what precheck and postcheck share: the facts the policy rules
 * test, and how a rule that fired is written into the turn (its hit with
 * the trigger, its tags and attestations, and the actions the gate and
 * postcheck carry out).
 *
 * A trigger's text is copied into the hit for explanation, except where it
 * overlaps personal data: then the hit carries a keyed pseudonym instead,
 * so the audit log never holds the value.
 */
#include "pipeline/rules.h"

#include "backend/backend.h"
#include "policy/policy.h"
#include "text/text.h"

#include <string.h>

void tg_rules_facts(const struct tg_turn *t, struct tg_policy_facts *f)
{
    const json_t *meta = json_object_get(t->admit.request, "metadata");
    memset(f, 0, sizeof(*f));
    f->text = t->admit.user_text;
    f->text_len = strlen(t->admit.user_text);
    f->norm = t->understand.norm_text ? t->understand.norm_text : "";
    f->norm_len = t->understand.norm_len;
    f->entities = t->understand.ents;
    f->intent = t->understand.intent && strcmp(t->understand.intent, "unclassified") != 0
                    ? t->understand.intent
                    : NULL;
    f->intent_confidence = t->understand.intent_confidence;
    f->best_score = t->retrieve.n_evidence ? t->retrieve.evidence[0].score : 0.0;
    f->n_evidence = t->retrieve.n_evidence;
    f->degradations = (int)t->conv.degraded_streak;
    f->channel = t->channel;
    /* a tier the key vouches for: its class, or what a trusted channel names */
    f->tier = tg_turn_class(t) == TG_CLASS_VIP ? "vip"
              : t->admit.class_from_metadata
                  ? tg_json_str(meta, "tier", tg_json_str(meta, "customer_tier", NULL))
                  : NULL;
    f->confidence = t->confidence;
    f->draft = t->draft;
    f->draft_len = t->draft_len;
    f->draft_language = t->understand.language;
    f->ungrounded = t->check.ungrounded;
    f->conversation = t->check.conv_text;
    f->conversation_len = t->check.conv_len;
    f->tool_calls = t->calls;
    f->n_tool_calls = t->n_calls;
}

int tg_rules_conversation(struct tg_turn *t)
{
    json_t *hist = NULL, *m;
    size_t i;
    struct tg_buf b;
    int rc = TG_OK;
    if (t->admit.new_conversation || !t->p->cfg->history)
        return TG_OK;
    rc = tg_store_messages(t->p->store, t->conv.id, t->p->cfg->history, &hist);
    if (rc) /* the rules then see no earlier messages; never for want of memory */
        return rc == TG_E_NOMEM ? rc : TG_OK;
    tg_buf_init(&b, 1u << 22);
    json_array_foreach(hist, i, m)
    {
        const char *c = tg_json_str(m, "content", NULL);
        if (rc || !c || strcmp(tg_json_str(m, "role", ""), "user") != 0)
            continue;
        if (b.len)
            rc = tg_buf_append(&b, "\n", 1);
        if (!rc)
            rc = tg_text_normalize(t->p->text, c, strlen(c), t->understand.norm_flags, &b);
    }
    if (!rc && b.len) {
        t->check.conv_text = tg_arena_strndup(&t->arena, b.data, b.len);
        t->check.conv_len = b.len;
        rc = t->check.conv_text ? TG_OK : TG_E_NOMEM;
    }
    tg_buf_free(&b);
    json_decref(hist);
    return rc == TG_E_TOOBIG ? TG_OK : rc;
}

/* The bytes the trigger points at, or NULL when it has no span. */
static const char *span_text(const struct tg_turn *t, const struct tg_policy_hit *h, size_t *len)
{
    const char *base = NULL;
    size_t blen = 0;
    if (!strcmp(h->field, "norm")) {
        base = t->understand.norm_text;
        blen = t->understand.norm_len;
    } else if (!strcmp(h->field, "draft")) {
        base = t->draft;
        blen = t->draft_len;
    } else if (!strcmp(h->field, "conversation")) {
        base = t->check.conv_text;
        blen = t->check.conv_len;
    } else if (!strcmp(h->field, "tool_calls")) {
        /* a span in the arguments of the call the hit's value numbers */
        size_t i = h->has_value && h->value >= 0 ? (size_t)h->value : t->n_calls;
        if (i >= t->n_calls)
            return NULL;
        base = t->calls[i].arguments;
        blen = t->calls[i].arguments_len;
    } else {
        base = t->admit.user_text;
        blen = strlen(t->admit.user_text);
    }
    if (!base || h->start >= h->end || h->end > blen)
        return NULL;
    *len = h->end - h->start;
    return base + h->start;
}

/* Does [start,end) of the customer's text overlap personal data? */
static bool overlaps_pii(const struct tg_turn *t, const struct tg_policy_hit *h, const char *s,
                         size_t n)
{
    if (!strcmp(h->field, "tool_calls")) {
        /* arguments were never scanned for entities: mask the span and compare */
        struct tg_buf b;
        tg_buf_init(&b, TG_BUF_UNLIMITED);
        bool pii = tg_pii_mask(s, n, t->a->cfg->policy_pattern, &b) != TG_OK || b.len != n ||
                   memcmp(b.data, s, n) != 0;
        tg_buf_free(&b);
        return pii;
    }
    if (!t->understand.ents || strcmp(h->field, "text") != 0)
        return strcmp(h->field, "pii") == 0;
    for (size_t i = 0; i < t->understand.ents->n_pii; i++)
        if (h->start < t->understand.ents->pii[i].end && t->understand.ents->pii[i].start < h->end)
            return true;
    return false;
}

/* What fired a rule: the field and, with a span, where and what (or its
 * pseudonym).  New reference; NULL when out of memory. */
static json_t *trigger(const struct tg_turn *t, const struct tg_policy_hit *h)
{
    json_t *o = json_pack("{s:s}", "field", h->field ? h->field : "");
    size_t n = 0;
    const char *s = span_text(t, h, &n);
    int rc = o ? TG_OK : TG_E_NOMEM;
    if (!rc && s) {
        rc = tg_json_set(o, "start", json_integer(h->start));
        if (!rc)
            rc = tg_json_set(o, "end", json_integer(h->end));
        if (!rc && overlaps_pii(t, h, s, n)) {
            char ps[33];
            tg_pii_pseudonym(t->p->pseudonym_key, sizeof(t->p->pseudonym_key), "span", s, n, ps);
            rc = tg_json_set(o, "pseudonym", json_string(ps));
        } else if (!rc) {
            rc = tg_json_set(o, "text", json_stringn(s, n));
        }
    }
    if (!rc && h->has_value)
        rc = tg_json_set(o, "value", json_real(h->value));
    if (rc) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

/* Append the string s to arr unless it is there.  TG_OK or TG_E_NOMEM. */
static int add_unique(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    bool seen = false;
    json_array_foreach(arr, i, v) seen = seen || !strcmp(json_string_value(v), s);
    return seen ? TG_OK : tg_json_push(arr, json_string(s));
}

json_t *tg_rules_for_people(struct tg_turn *t)
{
    json_t *out = json_pack("{s:[], s:[]}", "prefix", "suffix");
    int rc = out ? TG_OK : TG_E_NOMEM;
    struct tg_policy_facts f;
    struct tg_policy_hits hits;
    tg_policy_hits_init(&hits);
    if (rc || !t->a->policy)
        goto out;
    tg_rules_facts(t, &f);
    f.draft = ""; /* what the person will write is not known yet */
    f.draft_len = 0;
    f.confidence = -1;
    f.ungrounded = 0;
    f.tool_calls = NULL;
    f.n_tool_calls = 0;
    if (tg_policy_eval(t->a->policy, TG_POLICY_POST, &f, &hits) == TG_OK) {
        for (size_t i = 0; !rc && i < hits.n; i++) {
            const struct tg_policy_hit *h = &hits.v[i];
            for (size_t a = 0; !rc && (h->audience & TG_POLICY_FOR_HUMAN) && a < h->n_actions;
                 a++) {
                const struct tg_policy_action *act = &h->actions[a];
                if (act->kind == TG_ACT_PREFIX || act->kind == TG_ACT_SUFFIX)
                    rc = add_unique(
                        json_object_get(out, act->kind == TG_ACT_PREFIX ? "prefix" : "suffix"),
                        tg_turn_text(t, act->text));
            }
        }
    }
out:
    tg_policy_hits_free(&hits);
    if (rc) {
        json_decref(out);
        out = NULL;
    }
    return out;
}

int tg_rules_apply(struct tg_turn *t, const struct tg_policy_hits *hits)
{
    struct tg_turn_rules *r = &t->check.rules;
    int rc = TG_OK;
    for (size_t i = 0; !rc && i < hits->n; i++) {
        const struct tg_policy_hit *h = &hits->v[i];
        if (!(h->audience & TG_POLICY_FOR_AI))
            continue; /* a rule for people's answers (tg_rules_for_people) */
        json_t *actions = json_array();
        rc = actions ? TG_OK : TG_E_NOMEM;
        for (size_t a = 0; !rc && a < h->n_actions; a++) {
            const struct tg_policy_action *act = &h->actions[a];
            rc = tg_json_push(actions, json_string(tg_policy_action_name(act->kind)));
            switch (act->kind) {
            case TG_ACT_REVIEW:
                r->review = true;
                if (act->text && !r->review_text)
                    r->review_text = act->text;
                if (!r->queue || !r->human_decision)
                    r->queue = act->queue;
                if (!r->sla_ms || (act->sla_ms && act->sla_ms < r->sla_ms))
                    r->sla_ms = act->sla_ms;
                for (size_t k = 0; !rc && k < act->n_attestations; k++)
                    rc = add_unique(t->check.attestations, act->attestations[k]);
                break;
            case TG_ACT_HUMAN_DECISION:
                r->human_decision = true;
                r->skip_generate = true;
                r->queue = act->queue;
                for (size_t k = 0; !rc && k < act->n_attestations; k++)
                    rc = add_unique(t->check.attestations, act->attestations[k]);
                break;
            case TG_ACT_PREFIX:
                if (!rc && !r->prefixes)
                    r->prefixes = json_array();
                if (!rc)
                    rc = r->prefixes ? add_unique(r->prefixes, act->text) : TG_E_NOMEM;
                break;
            case TG_ACT_SUFFIX:
                if (!rc && !r->suffixes)
                    r->suffixes = json_array();
                if (!rc)
                    rc = r->suffixes ? add_unique(r->suffixes, act->text) : TG_E_NOMEM;
                break;
            case TG_ACT_REDACT:
                r->redact_off |= !act->on;
                break;
            case TG_ACT_REFUSE:
                r->refuse = true;
                r->skip_generate = true;
                r->refuse_text = act->text;
                break;
            case TG_ACT_TAG:
                for (size_t k = 0; !rc && k < act->n_tags; k++)
                    rc = add_unique(t->tags, act->tags[k]);
                break;
            case TG_ACT_SCRIPT:
                r->script = true;
                r->script_text = act->text;
                break;
            }
        }
        if (rc) {
            json_decref(actions);
        } else {
            /* "o" steals actions and the trigger even when packing fails */
            json_t *hit = json_pack("{s:s, s:s, s:o, s:o}", "rule", h->rule, "description",
                                    h->description ? h->description : "", "actions", actions,
                                    "trigger", trigger(t, h));
            rc = tg_json_push(t->check.policy_hits, hit);
        }
    }
    return rc;
}
