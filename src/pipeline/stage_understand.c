/*
 * stage_understand.c - what the customer said: normalized text, language,
 * entities (amounts of money, personal identifiers) and intent with its
 * probability and the tokens that drove it.
 *
 * Entities are read from the customer's own words (offsets point into
 * them); matching and classification use the normalized text.
 */
#include "pipeline/pipeline.h"

#include "model/model.h"
#include "text/text.h"

#include <string.h>

/* "ja" if any kana, else "zh" if any Han, else "en". */
static const char *detect_language(const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    bool han = false;
    while (*s) {
        uint32_t cp = *s;
        size_t l = 1;
        if ((s[0] & 0xF0) == 0xE0 && s[1] && s[2]) {
            cp = (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
            l = 3;
        } else if ((s[0] & 0xE0) == 0xC0 && s[1]) {
            l = 2;
        } else if ((s[0] & 0xF8) == 0xF0 && s[1] && s[2] && s[3]) {
            l = 4;
        }
        if ((cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0x31F0 && cp <= 0x31FF))
            return "ja";
        if ((cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF))
            han = true;
        s += l;
    }
    return han ? "zh" : "en";
}

static int extract_entities(struct tg_turn *t)
{
    struct tg_entity_opts opts = {.policy_pattern = t->a->cfg->policy_pattern};
    t->ents = tg_calloc(1, sizeof(*t->ents));
    if (!t->ents)
        return TG_E_NOMEM;
    tg_entities_init(t->ents);
    int rc = tg_entities_extract(t->user_text, strlen(t->user_text), &opts, t->ents);
    if (!rc) {
        t->entities = tg_entities_to_json(t->ents, t->user_text);
        t->money_max = tg_entities_money_max(t->ents);
        if (!t->entities)
            rc = TG_E_NOMEM;
    }
    return rc;
}

static int classify(struct tg_turn *t)
{
    struct tg_intent_result r;
    int rc = tg_intent_predict(t->a->intents, t->p->text, t->user_text, strlen(t->user_text), &r);
    if (rc)
        return rc;
    t->intent = r.label;
    t->intent_confidence = r.probability;
    t->intent_explain = json_array();
    for (size_t i = 0; t->intent_explain && i < r.n_top; i++)
        json_array_append_new(
            t->intent_explain,
            json_pack("{s:s, s:f}", "feature", r.top[i].feature, "weight", r.top[i].weight));
    return t->intent_explain ? TG_OK : TG_E_NOMEM;
}

enum tg_stage_rc tg_stage_understand(struct tg_turn *t)
{
    struct tg_buf norm;
    int rc;
    tg_buf_init(&norm, 1u << 22);
    t->language = detect_language(t->user_text);
    /* Japanese kanji must not be turned into Simplified Chinese. */
    t->norm_flags = strcmp(t->language, "ja") == 0 ? 0 : TG_NORM_T2S;
    rc = tg_text_normalize(t->p->text, t->user_text, strlen(t->user_text), t->norm_flags, &norm);
    if (!rc) {
        t->norm_len = norm.len;
        t->norm_text = tg_arena_strndup(&t->arena, norm.data ? norm.data : "", norm.len);
        if (!t->norm_text)
            rc = TG_E_NOMEM;
    }
    tg_buf_free(&norm);
    t->money_max = -1;
    if (!rc)
        rc = extract_entities(t);
    t->intent = "unclassified";
    t->intent_confidence = 0.0;
    if (!rc && t->a->intents)
        rc = classify(t);
    if (rc) {
        tg_turn_fail(t, rc, 500, "internal_error", NULL, "understanding failed: %s",
                     tg_err_str(rc));
        return TG_DONE;
    }
    return TG_NEXT;
}
