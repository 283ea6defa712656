/*
 * stage_postcheck.c - rules on the draft answer: numbers the evidence does
 * not support, disclaimers in front, canned replies for weak answers, and
 * personal data masked in what is said and stored.
 *
 * Grounding: every amount, rate, date and percentage the draft states is
 * looked up in the cited evidence (tg_grounding_check); the count of those
 * found nowhere is what `draft.ungrounded` rules test.  Masking is the
 * default: personal data in the answer is masked unless a rule that fired
 * says `redact: false`.
 *
 * Language: evidence the customer cannot read (an English article for a
 * Chinese question) makes a weaker answer: the confidence the rules test is
 * multiplied by CROSS_LINGUAL, so such an answer needs more to be given.
 * Scripts and disclaimers go out in the customer's language
 * (tg_turn_text); a script is a promise to come back (t->promise).
 */
#include "pipeline/rules.h"

#include "backend/backend.h"
#include "policy/policy.h"
#include "text/lang.h"

#include <string.h>

#define CROSS_LINGUAL 0.8

static int grounding(struct tg_turn *t)
{
    const char *ev[33];
    size_t n = 0;
    /* What the customer said counts as evidence too: an answer may repeat
     * the customer's own numbers (a policy number, an amount) without
     * inventing anything. */
    ev[n++] = t->admit.user_text;
    for (size_t i = 0; i < t->retrieve.n_evidence && n < TG_ARRAY_LEN(ev); i++)
        ev[n++] = t->retrieve.evidence[i].text;
    struct tg_claim claims[16];
    size_t bad = 0;
    int rc = tg_grounding_check(t->draft, t->draft_len, ev, n, claims, TG_ARRAY_LEN(claims), &bad);
    t->check.ungrounded = rc ? 0 : bad;
    return rc;
}

/* The texts of list in the customer's language, in place.  TG_OK or
 * TG_E_NOMEM. */
static int translate_all(struct tg_turn *t, json_t *list)
{
    size_t i;
    json_t *v;
    int rc = TG_OK;
    json_array_foreach(list, i, v)
    {
        const char *zh = json_string_value(v), *tr = rc ? NULL : tg_turn_text(t, zh);
        if (tr && tr != zh) {
            json_t *s = json_string(tr);
            rc = s && !json_array_set_new(list, i, s) ? TG_OK : TG_E_NOMEM;
        }
    }
    return rc;
}

/* Put the prefixes and suffixes the rules asked for around the draft. */
static int frame(struct tg_turn *t)
{
    struct tg_buf b;
    size_t i;
    json_t *v;
    int rc = TG_OK;
    if (!t->check.rules.prefixes && !t->check.rules.suffixes)
        return TG_OK;
    rc = translate_all(t, t->check.rules.prefixes);
    if (!rc)
        rc = translate_all(t, t->check.rules.suffixes);
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    json_array_foreach(t->check.rules.prefixes, i, v) if (!rc) rc =
        tg_buf_puts(&b, json_string_value(v));
    if (!rc)
        rc = tg_buf_append(&b, t->draft, t->draft_len);
    json_array_foreach(t->check.rules.suffixes, i, v) if (!rc) rc =
        tg_buf_puts(&b, json_string_value(v));
    if (!rc) {
        t->draft = tg_arena_strndup(&t->arena, b.data, b.len);
        t->draft_len = b.len;
        rc = t->draft ? TG_OK : TG_E_NOMEM;
    }
    tg_buf_free(&b);
    return rc;
}

static int mask(struct tg_turn *t)
{
    struct tg_buf b;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    int rc = tg_pii_mask(t->draft, t->draft_len, t->a->cfg->policy_pattern, &b);
    if (!rc && (b.len != t->draft_len || memcmp(b.data, t->draft, b.len) != 0)) {
        t->draft = tg_arena_strndup(&t->arena, b.data, b.len);
        t->draft_len = b.len;
        rc = t->draft ? TG_OK : TG_E_NOMEM;
    }
    tg_buf_free(&b);
    return rc;
}

enum tg_stage_rc tg_stage_postcheck(struct tg_turn *t)
{
    int rc = TG_OK;
    if (t->err || !t->draft)
        return TG_NEXT; /* nothing was written: nothing to check */
    const char *written = t->draft;
    if (t->retrieve.n_evidence)
        rc = grounding(t);
    const char *ev = t->retrieve.n_evidence ? t->retrieve.evidence[0].text : NULL;
    if (ev && t->confidence > 0 &&
        !tg_lang_readable((enum tg_lang)t->check.lang, tg_lang_detect(t->p->text, ev, strlen(ev))))
        t->confidence *= CROSS_LINGUAL;
    if (!rc && t->a->policy) {
        struct tg_policy_facts f;
        struct tg_policy_hits hits;
        tg_policy_hits_init(&hits);
        tg_rules_facts(t, &f);
        rc = tg_policy_eval(t->a->policy, TG_POLICY_POST, &f, &hits);
        if (!rc)
            rc = tg_rules_apply(t, &hits);
        tg_policy_hits_free(&hits);
    }
    /* A canned reply replaces the draft (a weak answer is not given),
     * unless a person reviews it: they judge the model's own draft. */
    bool script = t->check.rules.script && !t->check.rules.review && !t->check.rules.human_decision;
    if (!rc && script) {
        t->promise = true;
        t->draft = tg_arena_strdup(&t->arena, tg_turn_text(t, t->check.rules.script_text));
        t->draft_len = t->draft ? strlen(t->draft) : 0;
        rc = t->draft ? TG_OK : TG_E_NOMEM;
        /* the canned reply asks the client to do nothing */
        json_decref(t->tool_calls);
        t->tool_calls = NULL;
        t->n_calls = 0;
    }
    if (!rc && !script)
        rc = frame(t); /* a holding reply is not an answer: no disclaimer around it */
    if (!rc && !t->check.rules.redact_off)
        rc = mask(t);
    if (!rc && t->draft != written) {
        /* logprobs describe the model's own tokens: they would name what was masked
         * and miss what was added, so a changed answer goes out without them */
        json_decref(t->logprobs);
        t->logprobs = NULL;
    }
    if (rc) {
        tg_turn_fail(t, rc, 500, "internal_error", NULL, "output check failed: %s", tg_err_str(rc));
        return TG_DONE;
    }
    return TG_NEXT;
}
