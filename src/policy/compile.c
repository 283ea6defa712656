/*
 * compile.c - policy rules (a YAML/JSON list) into the flat arrays of
 * policy_int.h, with every problem reported as "FILE:LINE: message" in one
 * pass, the way the config module reports its own sections.
 *
 * Keyword lists of all rules become one Aho-Corasick automaton (ac.c)
 * over their distinct terms, with an index from each term back to the
 * keyword tests that use it (merge.c); keyword lists and regexes are read
 * and compiled by compile_terms.c.  Merging two policies concatenates
 * their arrays and rebuilds that one automaton (merge.c).
 */
#include "policy/compile_int.h"

#include "config/config.h"
#include "text/text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------ tables */

enum arg { A_CONDS, A_COND, A_NAMES, A_CMP, A_BOOL, A_PII, A_KEYWORDS, A_REGEX, A_TOOL_NAMES };

static const struct cond_def {
    const char *name;
    uint8_t kind;
    uint8_t arg;
    uint8_t field;    /* keyword and regex tests: the text read (regex: unless on: says) */
    const char *post; /* what it reads when only post rules may use it, else NULL */
} conds[] = {
    {"all", PC_ALL, A_CONDS, 0, NULL},
    {"any", PC_ANY, A_CONDS, 0, NULL},
    {"not", PC_NOT, A_COND, 0, NULL},
    {"intent", PC_INTENT, A_NAMES, 0, NULL},
    {"intent_confidence", PC_INTENT_CONFIDENCE, A_CMP, 0, NULL},
    {"money.max", PC_MONEY_MAX, A_CMP, 0, NULL},
    {"money.count", PC_MONEY_COUNT, A_CMP, 0, NULL},
    {"money.any", PC_MONEY_ANY, A_BOOL, 0, NULL},
    {"pii.any", PC_PII_ANY, A_BOOL, 0, NULL},
    {"pii.type", PC_PII_TYPE, A_PII, 0, NULL},
    {"keywords", PC_KEYWORDS, A_KEYWORDS, PF_NORM, NULL},
    {"conversation.keywords", PC_CONV_KEYWORDS, A_KEYWORDS, PF_CONV, NULL},
    {"regex", PC_REGEX, A_REGEX, PF_TEXT, NULL},
    {"evidence.best_score", PC_EVIDENCE_BEST, A_CMP, 0, NULL},
    {"evidence.count", PC_EVIDENCE_COUNT, A_CMP, 0, NULL},
    {"degradations", PC_DEGRADATIONS, A_CMP, 0, NULL},
    {"channel", PC_CHANNEL, A_NAMES, 0, NULL},
    {"tier", PC_TIER, A_NAMES, 0, NULL},
    {"draft.ungrounded", PC_DRAFT_UNGROUNDED, A_CMP, 0, "the draft answer"},
    {"draft.length", PC_DRAFT_LENGTH, A_CMP, 0, "the draft answer"},
    {"draft.language", PC_DRAFT_LANGUAGE, A_NAMES, 0, "the draft answer"},
    {"draft.keywords", PC_DRAFT_KEYWORDS, A_KEYWORDS, PF_DRAFT, "the draft answer"},
    {"draft.regex", PC_DRAFT_REGEX, A_REGEX, PF_DRAFT, "the draft answer"},
    {"confidence", PC_CONFIDENCE, A_CMP, 0, "the draft answer"},
    {"tool.name", PC_TOOL_NAME, A_TOOL_NAMES, 0, "the draft's tool calls"},
    {"tool.count", PC_TOOL_COUNT, A_CMP, 0, "the draft's tool calls"},
    {"tool.arguments.keywords", PC_TOOL_KEYWORDS, A_KEYWORDS, PF_TOOL, "the draft's tool calls"},
    {"tool.arguments.regex", PC_TOOL_REGEX, A_REGEX, PF_TOOL, "the draft's tool calls"},
};

static const char *const cmp_ops[] = {"eq", "ne", "gt", "ge", "lt", "le"}; /* enum policy_op */

static const char *const action_names[] = {
    [TG_ACT_REVIEW] = "review", [TG_ACT_HUMAN_DECISION] = "human_decision",
    [TG_ACT_PREFIX] = "prefix", [TG_ACT_SUFFIX] = "suffix",
    [TG_ACT_REDACT] = "redact", [TG_ACT_REFUSE] = "refuse",
    [TG_ACT_TAG] = "tag",       [TG_ACT_SCRIPT] = "script",
};

const char *tg_policy_action_name(enum tg_policy_action_kind k)
{
    if ((unsigned)k < TG_ARRAY_LEN(action_names))
        return action_names[k];
    return "unknown";
}

/* ------------------------------------------------------------ context */

void *policy_pcre_alloc(size_t n, void *data)
{
    (void)data;
    return tg_malloc(n);
}

void policy_pcre_release(void *p, void *data)
{
    (void)data;
    tg_free(p);
}

void cctx_nomem(struct cctx *c)
{
    c->rc = TG_E_NOMEM;
}

/* Report "PATH:LINE: rule 'id': message". */
void cctx_err(struct cctx *c, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->n_errs++;
    if (tg_config_errorf(c->errs, c->path, line, "%s: %s", c->where, msg))
        cctx_nomem(c);
}

void cctx_type_err(struct cctx *c, int line, const char *what, const char *want, const json_t *v)
{
    if (json_is_null(v))
        cctx_err(c, line, "%s has no value (expected %s)", what, want);
    else
        cctx_err(c, line, "%s must be %s, not %s", what, want, tg_config_type_name(v));
}

/* Line of member key of obj, else of obj itself. */
int cctx_kline(const struct cctx *c, const json_t *obj, const char *key)
{
    int line = tg_config_lines_key(c->lines, obj, key);
    return line ? line : tg_config_lines_node(c->lines, obj);
}

/* Line of element i of arr, else of the element, else fallback. */
int cctx_eline(const struct cctx *c, const json_t *arr, size_t i, int fallback)
{
    int line = tg_config_lines_elem(c->lines, arr, i);
    if (!line)
        line = tg_config_lines_node(c->lines, json_array_get(arr, i));
    return line ? line : fallback;
}

/* Report unknown keys of obj "in WHAT of rule 'id'" (or "in rule 'id'"); their number. */
size_t cctx_check_keys(struct cctx *c, const json_t *obj, const char *what,
                       const char *const *known, size_t n)
{
    char where[POLICY_MAX_ID + 256];
    if (what)
        snprintf(where, sizeof(where), "%s of %s", what, c->where);
    else
        snprintf(where, sizeof(where), "%s", c->where);
    size_t bad = tg_config_check_keys(c->errs, c->path, c->lines, obj, where, known, n);
    c->n_errs += bad;
    return bad;
}

/* Room for one more element in *v (of elem bytes, n used, *cap held). */
bool cctx_room(struct cctx *c, void *pv, size_t n, size_t *cap, size_t elem)
{
    void **v = pv;
    if (n < *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 16;
    void *q = tg_realloc(*v, nc * elem);
    if (!q) {
        cctx_nomem(c);
        return false;
    }
    *v = q;
    *cap = nc;
    return true;
}

char *cctx_adup(struct cctx *c, const char *s, size_t len)
{
    char *d = tg_arena_strndup(c->arena, s, len);
    if (!d)
        cctx_nomem(c);
    return d;
}

/* ------------------------------------------------------------ values */

/* A non-empty string value; NULL (reported) otherwise. */
const char *cctx_get_text(struct cctx *c, const json_t *v, int line, const char *what)
{
    if (!json_is_string(v)) {
        cctx_type_err(c, line, what, "a string", v);
        return NULL;
    }
    if (json_string_length(v) == 0) {
        cctx_err(c, line, "%s must not be empty", what);
        return NULL;
    }
    return cctx_adup(c, json_string_value(v), json_string_length(v));
}

/* NAME or [NAMES...], each a non-empty string, copied to the arena. */
static bool get_names(struct cctx *c, const json_t *v, int line, const char *what,
                      const char *const **out, size_t *n_out)
{
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (!json_is_string(v) && !json_is_array(v)) {
        cctx_type_err(c, line, what, "a name or a list of names", v);
        return false;
    }
    if (n == 0) {
        cctx_err(c, line, "%s is an empty list", what);
        return false;
    }
    const char **names = tg_arena_alloc(c->arena, n * sizeof(*names));
    if (!names) {
        cctx_nomem(c);
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        int el = json_is_array(v) ? cctx_eline(c, v, i, line) : line;
        names[i] = cctx_get_text(c, e, el, what);
        ok = ok && names[i];
    }
    *out = names;
    *n_out = n;
    return ok;
}

/* A number, or an amount written as text ("5万", "12,500"). */
static bool get_number(struct cctx *c, const json_t *v, int line, const char *what, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    if (json_is_string(v) &&
        tg_text_parse_number(json_string_value(v), json_string_length(v), out) == TG_OK)
        return true;
    if (json_is_string(v))
        cctx_err(c, line, "%s: '%s' is not a number", what, json_string_value(v));
    else
        cctx_type_err(c, line, what, "a number", v);
    return false;
}

/* CMP: a number (equality) or {gt|ge|lt|le|eq|ne: NUMBER} with one or two bounds. */
static bool get_cmp(struct cctx *c, const json_t *v, int line, const char *what,
                    struct policy_cmp *cmp)
{
    memset(cmp, 0, sizeof(*cmp));
    if (json_is_number(v) || json_is_string(v)) {
        cmp->n = 1;
        cmp->op[0] = OP_EQ;
        return get_number(c, v, line, what, &cmp->v[0]);
    }
    if (!json_is_object(v)) {
        cctx_type_err(c, line, what, "a number or a mapping such as {gt: 50000}", v);
        return false;
    }
    size_t n = json_object_size(v);
    if (n == 0 || n > 2) {
        cctx_err(c, line, "%s must have one or two bounds (gt, ge, lt, le, eq, ne), not %zu", what,
                 n);
        return false;
    }
    char w[96];
    snprintf(w, sizeof(w), "the comparison %s", what);
    bool ok = cctx_check_keys(c, v, w, cmp_ops, TG_ARRAY_LEN(cmp_ops)) == 0;
    const char *key;
    const json_t *b;
    json_object_foreach((json_t *)v, key, b)
    {
        for (size_t op = 0; op < TG_ARRAY_LEN(cmp_ops); op++) {
            if (strcmp(key, cmp_ops[op]) != 0)
                continue;
            snprintf(w, sizeof(w), "%s.%s", what, key);
            if (get_number(c, b, cctx_kline(c, v, key), w, &cmp->v[cmp->n])) {
                cmp->op[cmp->n] = (uint8_t)op;
                cmp->n++;
            } else {
                ok = false;
            }
        }
    }
    return ok;
}

static bool get_bool(struct cctx *c, const json_t *v, int line, const char *what, bool *out)
{
    if (!json_is_boolean(v)) {
        cctx_type_err(c, line, what, "true or false", v);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

/* ------------------------------------------------------------ conditions */

static const struct cond_def *find_cond(const char *name)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(conds); i++) {
        if (strcmp(conds[i].name, name) == 0)
            return &conds[i];
    }
    return NULL;
}

static int64_t add_node(struct cctx *c, const struct policy_node *n)
{
    if (!cctx_room(c, &c->p->nodes, c->p->n_nodes, &c->cap_nodes, sizeof(*n)))
        return -1;
    c->p->nodes[c->p->n_nodes] = *n;
    return (int64_t)c->p->n_nodes++;
}

static bool pii_types(struct cctx *c, const struct policy_node *n, int line, unsigned *mask)
{
    bool ok = true;
    *mask = 0;
    for (size_t i = 0; i < n->n_names; i++) {
        bool found = false;
        for (unsigned t = TG_PII_ID_CARD; t <= TG_PII_POLICY_NO && !found; t++) {
            if (strcmp(n->names[i], tg_pii_type_name((enum tg_pii_type)t)) == 0) {
                *mask |= 1u << t;
                found = true;
            }
        }
        if (!found) {
            cctx_err(c, line,
                     "pii.type: unknown type '%s' (one of id_card, mobile, bank_card, email, "
                     "policy_no)",
                     n->names[i]);
            ok = false;
        }
    }
    return ok;
}

/* tool.name: names, each either exact or a prefix ending in one '*' ("approve_*"). */
static bool tool_names(struct cctx *c, const json_t *v, int line, const char *what,
                       struct policy_node *n)
{
    if (!get_names(c, v, line, what, &n->names, &n->n_names))
        return false;
    bool ok = true;
    for (size_t i = 0; i < n->n_names; i++) {
        const char *star = strchr(n->names[i], '*');
        if (star && star[1] != '\0') {
            cctx_err(c, json_is_array(v) ? cctx_eline(c, v, i, line) : line,
                     "%s: '%s': '*' may only end a name (approve_*)", what, n->names[i]);
            ok = false;
        }
    }
    return ok;
}

static int64_t cond(struct cctx *c, const json_t *v, int line, int depth);

/* all/any: [c...] -> children appended to kids in order. */
static bool cond_list(struct cctx *c, const json_t *v, int line, int depth, const char *what,
                      struct policy_node *n)
{
    if (!json_is_array(v)) {
        cctx_type_err(c, line, what, "a list of conditions", v);
        return false;
    }
    size_t count = json_array_size(v);
    if (count == 0) {
        cctx_err(c, line, "%s is an empty list", what);
        return false;
    }
    uint32_t *idx = tg_malloc(count * sizeof(*idx));
    bool ok = idx != NULL;
    if (!idx)
        cctx_nomem(c);
    for (size_t i = 0; i < count && idx; i++) {
        int64_t k = cond(c, json_array_get(v, i), cctx_eline(c, v, i, line), depth + 1);
        if (k < 0)
            ok = false;
        else
            idx[i] = (uint32_t)k;
    }
    if (ok && c->p->n_kids + count > c->cap_kids) {
        size_t nc = TG_MAX(c->cap_kids * 2, c->p->n_kids + count);
        uint32_t *q = tg_realloc(c->p->kids, nc * sizeof(*q));
        if (q) {
            c->p->kids = q;
            c->cap_kids = nc;
        } else {
            cctx_nomem(c);
            ok = false;
        }
    }
    if (ok) {
        n->a = (uint32_t)c->p->n_kids;
        n->n = (uint32_t)count;
        memcpy(c->p->kids + c->p->n_kids, idx, count * sizeof(*idx));
        c->p->n_kids += count;
    }
    tg_free(idx);
    return ok;
}

/* A condition (a mapping with one key): the index of its node, or -1 (reported). */
static int64_t cond(struct cctx *c, const json_t *v, int line, int depth)
{
    const char *names[TG_ARRAY_LEN(conds)];
    struct policy_node n = {0};
    if (depth > POLICY_MAX_DEPTH) {
        cctx_err(c, line, "conditions nest deeper than %d levels", POLICY_MAX_DEPTH);
        return -1;
    }
    if (!json_is_object(v)) {
        cctx_type_err(c, line, "a condition", "a mapping with one key (all, any, not, intent, ...)",
                      v);
        return -1;
    }
    if (json_object_size(v) != 1) {
        if (json_object_size(v) == 0)
            cctx_err(c, line, "a condition is an empty mapping");
        else
            cctx_err(
                c, line,
                "a condition has exactly one key, not %zu (put several tests under all: or any:)",
                json_object_size(v));
        return -1;
    }
    void *it = json_object_iter((json_t *)v);
    const char *key = json_object_iter_key(it);
    const json_t *val = json_object_iter_value(it);
    int kl = cctx_kline(c, v, key);
    const struct cond_def *d = find_cond(key);
    if (!d) {
        for (size_t i = 0; i < TG_ARRAY_LEN(conds); i++)
            names[i] = conds[i].name;
        cctx_check_keys(c, v, "a condition", names, TG_ARRAY_LEN(conds));
        return -1;
    }
    if (d->post && c->stage == TG_POLICY_PRE) {
        cctx_err(c, kl, "%s tests %s: only post rules (stage: post) may use it", key, d->post);
        return -1;
    }
    n.kind = d->kind;
    n.name = d->name;
    bool ok = false;
    int64_t k;
    switch (d->arg) {
    case A_CONDS:
        ok = cond_list(c, val, kl, depth, key, &n);
        break;
    case A_COND:
        k = cond(c, val, kl, depth + 1);
        ok = k >= 0;
        n.a = ok ? (uint32_t)k : 0;
        break;
    case A_NAMES:
        ok = get_names(c, val, kl, key, &n.names, &n.n_names);
        break;
    case A_PII:
        ok = get_names(c, val, kl, key, &n.names, &n.n_names) && pii_types(c, &n, kl, &n.pii_mask);
        break;
    case A_CMP:
        ok = get_cmp(c, val, kl, key, &n.cmp);
        break;
    case A_BOOL:
        ok = get_bool(c, val, kl, key, &n.flag);
        break;
    case A_KEYWORDS:
        ok = compile_keywords(c, val, kl, key, d->field, &n.a);
        break;
    case A_REGEX:
        ok = compile_regex(c, val, kl, key, d->field, &n.a);
        break;
    case A_TOOL_NAMES:
        ok = tool_names(c, val, kl, key, &n);
        break;
    }
    return ok && !c->rc ? add_node(c, &n) : -1;
}

/* ------------------------------------------------------------ actions */

static bool attestations(struct cctx *c, const json_t *v, int line, struct tg_policy_action *a)
{
    const char *const *names = NULL;
    size_t n = 0;
    if (!json_is_array(v)) {
        cctx_type_err(c, line, "attestations", "a list of statements", v);
        return false;
    }
    if (!get_names(c, v, line, "attestations", &names, &n))
        return false;
    a->attestations = names;
    a->n_attestations = n;
    return true;
}

/* review / human_decision: true or a mapping of options (review's reply:
 * what the customer is told while they wait, in place of the default). */
static bool review(struct cctx *c, const json_t *v, int line, const char *what,
                   struct tg_policy_action *a)
{
    static const char *const review_keys[] = {"sla", "queue", "attestations", "reply"};
    static const char *const human_keys[] = {"queue", "attestations"};
    bool is_review = a->kind == TG_ACT_REVIEW;
    if (json_is_true(v))
        return true;
    if (!json_is_object(v)) {
        cctx_type_err(c, line, what, "true or a mapping of options", v);
        return false;
    }
    bool ok =
        cctx_check_keys(c, v, what, is_review ? review_keys : human_keys, is_review ? 4 : 2) == 0;
    const json_t *rep = json_object_get(v, "reply");
    if (rep && is_review) {
        a->text = cctx_get_text(c, rep, cctx_kline(c, v, "reply"), "reply");
        ok = ok && a->text;
    }
    const json_t *sla = json_object_get(v, "sla");
    const json_t *queue = json_object_get(v, "queue");
    const json_t *att = json_object_get(v, "attestations");
    if (sla && is_review) {
        int sl = cctx_kline(c, v, "sla");
        int64_t ms = 0;
        if (json_is_integer(sla)) {
            ms = json_integer_value(sla);
        } else if (!json_is_string(sla) ||
                   tg_parse_duration_ms(json_string_value(sla), &ms) != TG_OK) {
            if (json_is_string(sla))
                cctx_err(c, sl, "%s.sla: '%s' is not a duration (such as 90s, 5m)", what,
                         json_string_value(sla));
            else
                cctx_type_err(c, sl, "sla", "a duration such as 90s", sla);
            ok = false;
            ms = 1;
        }
        if (ms <= 0) {
            cctx_err(c, sl, "%s.sla must be positive", what);
            ok = false;
        }
        a->sla_ms = ms;
    }
    if (queue) {
        a->queue = cctx_get_text(c, queue, cctx_kline(c, v, "queue"), "queue");
        ok = ok && a->queue;
    }
    if (att)
        ok = attestations(c, att, cctx_kline(c, v, "attestations"), a) && ok;
    return ok;
}

/* refuse / script: TEXT | {reply: TEXT}. */
static bool reply(struct cctx *c, const json_t *v, int line, const char *what,
                  struct tg_policy_action *a)
{
    static const char *const keys[] = {"reply"};
    if (json_is_object(v)) {
        if (cctx_check_keys(c, v, what, keys, 1))
            return false;
        const json_t *r = json_object_get(v, "reply");
        if (!r) {
            cctx_err(c, line, "%s needs a reply", what);
            return false;
        }
        v = r;
        line = cctx_kline(c, v, "reply");
    }
    a->text = cctx_get_text(c, v, line, what);
    return a->text != NULL;
}

static bool action(struct cctx *c, const json_t *holder, const char *key, const json_t *v,
                   struct tg_policy_action *a)
{
    int line = cctx_kline(c, holder, key);
    bool ok = false;
    size_t k;
    memset(a, 0, sizeof(*a));
    for (k = 0; k < TG_ARRAY_LEN(action_names); k++) {
        if (strcmp(key, action_names[k]) == 0)
            break;
    }
    if (k == TG_ARRAY_LEN(action_names))
        return false; /* then() reported it with the other unknown keys */
    a->kind = (enum tg_policy_action_kind)k;
    switch (a->kind) {
    case TG_ACT_REVIEW:
    case TG_ACT_HUMAN_DECISION:
        a->sla_ms = a->kind == TG_ACT_REVIEW ? 90000 : 0;
        a->queue = "default";
        ok = review(c, v, line, key, a);
        break;
    case TG_ACT_PREFIX:
    case TG_ACT_SUFFIX:
        a->text = cctx_get_text(c, v, line, key);
        ok = a->text != NULL;
        break;
    case TG_ACT_REDACT:
        ok = get_bool(c, v, line, key, &a->on);
        break;
    case TG_ACT_REFUSE:
    case TG_ACT_SCRIPT:
        ok = reply(c, v, line, key, a);
        break;
    case TG_ACT_TAG:
        ok = get_names(c, v, line, key, &a->tags, &a->n_tags);
        break;
    }
    return ok;
}

/* then: a mapping of actions, or a list of one-key mappings. */
static bool then(struct cctx *c, const json_t *v, int line, struct policy_rule *r)
{
    size_t n = 0;
    bool ok = true;
    if (json_is_object(v)) {
        n = json_object_size(v);
    } else if (json_is_array(v)) {
        n = json_array_size(v);
    } else {
        cctx_type_err(c, line, "then", "an action or a list of actions", v);
        return false;
    }
    if (n == 0) {
        cctx_err(c, line, "then is empty: give at least one action");
        return false;
    }
    struct tg_policy_action *acts = tg_arena_alloc(c->arena, n * sizeof(*acts));
    if (!acts) {
        cctx_nomem(c);
        return false;
    }
    if (json_is_object(v)) {
        const char *key;
        const json_t *a;
        size_t i = 0;
        ok = cctx_check_keys(c, v, "then", action_names, TG_ARRAY_LEN(action_names)) == 0;
        json_object_foreach((json_t *)v, key, a)
        {
            ok = action(c, v, key, a, &acts[i++]) && ok;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            const json_t *e = json_array_get(v, i);
            int el = cctx_eline(c, v, i, line);
            if (!json_is_object(e) || json_object_size(e) != 1) {
                if (json_is_object(e))
                    cctx_err(c, el, "each action of then is a mapping with one key, not %zu",
                             json_object_size(e));
                else
                    cctx_type_err(c, el, "an action", "a mapping such as {tag: NAME}", e);
                ok = false;
                continue;
            }
            cctx_check_keys(c, e, "then", action_names, TG_ARRAY_LEN(action_names));
            void *it = json_object_iter((json_t *)e);
            ok = action(c, e, json_object_iter_key(it), json_object_iter_value(it), &acts[i]) && ok;
        }
    }
    r->actions = acts;
    r->n_actions = n;
    return ok;
}

/* ------------------------------------------------------------ rules */

static bool id_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
}

/* id: required, [A-Za-z0-9._-], unique. */
static const char *rule_id(struct cctx *c, const json_t *r, int line)
{
    const json_t *v = json_object_get(r, "id");
    int il = cctx_kline(c, r, "id");
    if (!v) {
        cctx_err(c, line, "id is missing");
        return NULL;
    }
    if (!json_is_string(v) || json_string_length(v) == 0) {
        if (json_is_string(v))
            cctx_err(c, il, "id must not be empty");
        else
            cctx_type_err(c, il, "id", "a string", v);
        return NULL;
    }
    const char *id = json_string_value(v);
    size_t len = json_string_length(v);
    bool good = len <= POLICY_MAX_ID;
    for (size_t i = 0; i < len && good; i++)
        good = id_char(id[i]);
    if (!good) {
        cctx_err(c, il, "id '%.*s' must be at most %d of A-Z a-z 0-9 . _ -", (int)TG_MIN(len, 200),
                 id, POLICY_MAX_ID);
        return NULL;
    }
    snprintf(c->where, sizeof(c->where), "rule '%s'", id);
    for (size_t i = 0; i < c->n_ids; i++) {
        if (strcmp(c->ids[i].id, id) == 0) {
            cctx_err(c, il, "duplicate rule id '%s' (first at line %d)", id, c->ids[i].line);
            return NULL;
        }
    }
    if (!cctx_room(c, &c->ids, c->n_ids, &c->cap_ids, sizeof(*c->ids)))
        return NULL;
    c->ids[c->n_ids++] = (struct seen_id){.id = id, .line = il};
    return cctx_adup(c, id, len);
}

static void rule(struct cctx *c, const json_t *r, int line, size_t index)
{
    static const char *const keys[] = {"id", "description", "stage", "when", "then", "applies_to"};
    struct policy_rule out = {0};
    size_t errs_before = c->n_errs;
    snprintf(c->where, sizeof(c->where), "rule %zu", index + 1);
    if (!json_is_object(r)) {
        cctx_type_err(c, line, "a rule", "a mapping with id, description, when and then", r);
        return;
    }
    out.id = rule_id(c, r, line);
    cctx_check_keys(c, r, NULL, keys, TG_ARRAY_LEN(keys));
    const json_t *desc = json_object_get(r, "description");
    if (desc)
        out.description = cctx_get_text(c, desc, cctx_kline(c, r, "description"), "description");
    else
        cctx_err(c, line, "description is missing");
    const json_t *stage = json_object_get(r, "stage");
    out.stage = TG_POLICY_PRE;
    if (stage) {
        const char *s = json_string_value(stage);
        if (s && strcmp(s, "post") == 0)
            out.stage = TG_POLICY_POST;
        else if (!s || strcmp(s, "pre") != 0)
            cctx_err(c, cctx_kline(c, r, "stage"), "stage must be pre or post");
    }
    c->stage = out.stage;
    const json_t *when = json_object_get(r, "when");
    int64_t root = -1;
    if (when)
        root = cond(c, when, cctx_kline(c, r, "when"), 0);
    else
        cctx_err(c, line, "when is missing: give a condition");
    const json_t *th = json_object_get(r, "then");
    if (th)
        then(c, th, cctx_kline(c, r, "then"), &out);
    else
        cctx_err(c, line, "then is missing: give at least one action");
    out.audience = TG_POLICY_FOR_AI;
    bool framing = out.stage == TG_POLICY_POST;
    for (size_t k = 0; k < out.n_actions; k++) {
        enum tg_policy_action_kind kind = out.actions[k].kind;
        framing &= kind == TG_ACT_PREFIX || kind == TG_ACT_SUFFIX || kind == TG_ACT_TAG;
    }
    if (framing)
        out.audience |= TG_POLICY_FOR_HUMAN;
    const json_t *to = json_object_get(r, "applies_to");
    if (to) {
        const char *s = json_string_value(to);
        int tl = cctx_kline(c, r, "applies_to");
        if (!s || (strcmp(s, "ai") && strcmp(s, "human") && strcmp(s, "both")))
            cctx_err(c, tl, "applies_to must be ai, human or both");
        else if (out.stage != TG_POLICY_POST && strcmp(s, "ai"))
            cctx_err(c, tl,
                     "applies_to: %s needs stage: post (a rule on the customer's message is "
                     "for AI answers)",
                     s);
        else
            out.audience = !strcmp(s, "ai")      ? TG_POLICY_FOR_AI
                           : !strcmp(s, "human") ? TG_POLICY_FOR_HUMAN
                                                 : TG_POLICY_FOR_AI | TG_POLICY_FOR_HUMAN;
    }
    if (c->n_errs != errs_before || c->rc || root < 0)
        return;
    out.root = (uint32_t)root;
    if (!cctx_room(c, &c->p->rules, c->p->n_rules, &c->cap_rules, sizeof(out)))
        return;
    c->p->rules[c->p->n_rules++] = out;
    c->p->n_stage[out.stage]++;
}

/* ------------------------------------------------------------ public */

int tg_policy_compile(const json_t *rules, const struct tg_config_lines *lines, const char *path,
                      const char *base_dir, struct tg_policy **out, json_t *errs)
{
    struct cctx c = {
        .path = path ? path : "policies", .base_dir = base_dir, .lines = lines, .errs = errs};
    int rc;
    snprintf(c.where, sizeof(c.where), "policies");
    c.p = tg_calloc(1, sizeof(*c.p));
    c.arena = tg_calloc(1, sizeof(*c.arena));
    if (c.p)
        c.p->arenas = tg_malloc(sizeof(*c.p->arenas));
    if (!c.p || !c.arena || !c.p->arenas) {
        tg_free(c.arena);
        cctx_nomem(&c);
        goto out;
    }
    tg_arena_init(c.arena, 16384);
    c.p->arenas[c.p->n_arenas++] = c.arena;
    if (!json_is_array(rules)) {
        int line = tg_config_lines_node(lines, rules);
        if (rules && !json_is_null(rules))
            cctx_err(&c, line, "must be a list of rules, not %s", tg_config_type_name(rules));
        else
            cctx_err(&c, line, "no rules (expected a list of rules)");
    } else if (json_array_size(rules) == 0) {
        cctx_err(&c, tg_config_lines_node(lines, rules), "the list of rules is empty");
    }
    for (size_t i = 0; i < json_array_size(rules) && !c.rc; i++)
        rule(&c, json_array_get(rules, i), cctx_eline(&c, rules, i, 0), i);
    if (!c.rc && !c.n_errs && policy_keywords_build(c.p))
        cctx_nomem(&c);
out:
    rc = c.rc ? c.rc : c.n_errs ? TG_E_CONFIG : TG_OK;
    if (rc == TG_OK)
        *out = c.p;
    else
        tg_policy_free(c.p);
    pcre2_compile_context_free(c.ccx);
    pcre2_general_context_free(c.gctx);
    tg_free(c.ids);
    return rc;
}

int tg_policy_load(const char *path, struct tg_policy **out, json_t *errs)
{
    static const char *const top_keys[] = {"rules"};
    json_t *root = NULL;
    struct tg_config_lines *lines = NULL;
    char *dir = NULL;
    int rc = tg_config_parse_yaml(path, &root, &lines, errs);
    if (rc)
        goto out;
    const json_t *rules = root;
    size_t bad = 0;
    if (json_is_object(root)) {
        bad = tg_config_check_keys(errs, path, lines, root, NULL, top_keys, 1);
        rules = json_object_get(root, "rules");
        if (!rules) {
            rc = tg_config_errorf(errs, path, tg_config_lines_node(lines, root),
                                  "expected a list of rules or a mapping with rules:");
            rc = rc ? rc : TG_E_CONFIG;
            goto out;
        }
    }
    const char *slash = strrchr(path, '/');
    dir = slash ? tg_strndup(path, slash == path ? 1 : (size_t)(slash - path)) : tg_strdup(".");
    if (!dir) {
        rc = TG_E_NOMEM;
        goto out;
    }
    struct tg_policy *p = NULL;
    rc = tg_policy_compile(rules, lines, path, dir, &p, errs);
    if (rc == TG_OK && bad) {
        tg_policy_free(p);
        rc = TG_E_CONFIG;
    } else if (rc == TG_OK) {
        *out = p;
    }
out:
    tg_free(dir);
    json_decref(root);
    tg_config_lines_free(lines);
    return rc;
}
