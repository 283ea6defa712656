/*
 * eval.c - the rules of one stage against the facts of one turn, in file
 * order, each reporting what made it fire.
 *
 * Keyword tests share one pass of the Aho-Corasick automaton per text
 * (norm, the conversation so far, or draft), run the first time a rule of
 * the stage asks for it;
 * each regex runs at most once, also on first use.  Their results are kept
 * in scratch memory that lives in the same allocation as hits->v, after
 * its cap hits, so a struct tg_policy_hits is all the state an evaluation
 * needs and, once grown, evaluation allocates nothing:
 *
 *     [ hit 0 .. hit cap-1 ][ struct scratch ][ kw spans ][ rx records ]
 *
 * The arguments of the draft's tool calls are read twice, as written (JSON
 * text) and as the strings in them decoded ("\u6279\u51c6" is 批准), so a
 * model cannot hide a word behind escapes.  Decoding is done once per
 * evaluation, on the first test that reads arguments, into a second
 * buffer the scratch owns (grown before evaluation starts, when the policy
 * has such tests and the draft has tool calls); each decoded byte keeps
 * the offset it came from, so every span is one of the text as written.
 *
 * Only this file grows or frees hits->v; callers read v[0..n).
 */
#include "policy/policy_int.h"

#include "text/text.h"

#include <string.h>

struct span {
    uint32_t start, end; /* start == POLICY_NONE: no occurrence */
    uint32_t call;       /* PF_TOOL: the tool call it is in */
};

enum { RX_UNKNOWN, RX_NO, RX_YES };

struct rx_rec {
    uint32_t start, end;
    uint32_t state;
    uint32_t call; /* PF_TOOL: the tool call it is in */
};

struct scratch {
    size_t kw_cap, rx_cap;
    pcre2_match_data *md; /* one ovector pair: the whole match */
    void *dec;            /* decoded tool-call arguments (see struct dcall), or NULL */
    size_t dec_cap;       /* bytes at dec */
};

/*
 * The decoded arguments of tool call i: text[off, off + len) with
 * map[off + k] the offset in the arguments as written where decoded byte k
 * came from, and map[off + len] the end of the arguments.  Call i has room
 * for its arguments' length + 1 bytes and map entries at off (decoding
 * never grows a text).  In memory: [ struct dcall x n ][ map ][ text ].
 */
struct dcall {
    size_t off;
    uint32_t len;
};

_Static_assert(sizeof(struct tg_policy_hit) % _Alignof(struct scratch) == 0,
               "scratch follows the hits unaligned");
_Static_assert(sizeof(struct scratch) % _Alignof(struct span) == 0, "span records unaligned");
_Static_assert(sizeof(struct span) % _Alignof(struct rx_rec) == 0, "regex records unaligned");

static struct scratch *scratch_of(const struct tg_policy_hits *h)
{
    return (struct scratch *)(void *)(h->v + h->cap);
}

static struct span *spans_of(struct scratch *s)
{
    return (struct span *)(void *)(s + 1);
}

static struct rx_rec *rx_of(struct scratch *s)
{
    return (struct rx_rec *)(void *)(spans_of(s) + s->kw_cap);
}

void tg_policy_hits_init(struct tg_policy_hits *h)
{
    h->v = NULL;
    h->n = 0;
    h->cap = 0;
}

void tg_policy_hits_free(struct tg_policy_hits *h)
{
    if (h->v) {
        pcre2_match_data_free(scratch_of(h)->md);
        tg_free(scratch_of(h)->dec);
        tg_free(h->v);
    }
    tg_policy_hits_init(h);
}

/* Room for nh hits and the scratch of nkw keyword and nrx regex tests. */
static int ensure(struct tg_policy_hits *h, size_t nh, size_t nkw, size_t nrx)
{
    struct scratch *old = h->v ? scratch_of(h) : NULL;
    pcre2_general_context *gctx = NULL;
    if (old && h->cap >= nh && old->kw_cap >= nkw && old->rx_cap >= nrx && (!nrx || old->md))
        return TG_OK;
    size_t cap = TG_MAX(TG_MAX(nh, h->cap), (size_t)4);
    size_t kwc = TG_MAX(nkw, old ? old->kw_cap : 0);
    size_t rxc = TG_MAX(nrx, old ? old->rx_cap : 0);
    pcre2_match_data *md = old ? old->md : NULL;
    if (!md && nrx) {
        gctx = pcre2_general_context_create(policy_pcre_alloc, policy_pcre_release, NULL);
        md = gctx ? pcre2_match_data_create(1, gctx) : NULL;
        pcre2_general_context_free(gctx);
        if (!md)
            return TG_E_NOMEM;
    }
    size_t bytes = sizeof(struct scratch);
    bool fits = cap <= (SIZE_MAX / 4) / sizeof(struct tg_policy_hit) &&
                kwc <= (SIZE_MAX / 4) / sizeof(struct span) &&
                rxc <= (SIZE_MAX / 4) / sizeof(struct rx_rec);
    bytes += cap * sizeof(struct tg_policy_hit) + kwc * sizeof(struct span) +
             rxc * sizeof(struct rx_rec);
    void *v = fits ? tg_malloc(bytes) : NULL;
    if (!v) {
        if (!old || md != old->md)
            pcre2_match_data_free(md);
        return TG_E_NOMEM;
    }
    void *dec = old ? old->dec : NULL;
    size_t dec_cap = old ? old->dec_cap : 0;
    tg_free(h->v);
    h->v = v;
    h->cap = cap;
    h->n = 0;
    struct scratch *s = scratch_of(h);
    s->kw_cap = kwc;
    s->rx_cap = rxc;
    s->md = md;
    s->dec = dec;
    s->dec_cap = dec_cap;
    return TG_OK;
}

/* Tool calls an evaluation reads: none without an array, and at most what a uint32_t counts. */
static size_t n_calls(const struct tg_policy_facts *f)
{
    return f->tool_calls ? TG_MIN(f->n_tool_calls, (size_t)UINT32_MAX - 1) : 0;
}

/* The arguments of call c, never NULL, at most UINT32_MAX - 1 bytes long. */
static const char *args_of(const struct tg_policy_tool_call *c, size_t *len)
{
    *len = c->arguments ? TG_MIN(c->arguments_len, (size_t)UINT32_MAX - 1) : 0;
    return c->arguments ? c->arguments : "";
}

/*
 * Room in s->dec for the decoded arguments of the nc calls of f; *slots is
 * the number of map entries (and text bytes) they need.  TG_OK or
 * TG_E_NOMEM (s unchanged).
 */
static int ensure_dec(struct scratch *s, const struct tg_policy_facts *f, size_t nc, size_t *slots)
{
    const size_t limit = SIZE_MAX / 8;
    size_t total = 0, len;
    for (size_t i = 0; i < nc; i++) {
        (void)args_of(&f->tool_calls[i], &len);
        if (len + 1 > limit - total)
            return TG_E_NOMEM;
        total += len + 1;
    }
    if (nc > limit / sizeof(struct dcall))
        return TG_E_NOMEM;
    size_t bytes = nc * sizeof(struct dcall) + total * (sizeof(uint32_t) + 1);
    *slots = total;
    if (bytes <= s->dec_cap)
        return TG_OK;
    void *d = tg_malloc(bytes);
    if (!d)
        return TG_E_NOMEM;
    tg_free(s->dec);
    s->dec = d;
    s->dec_cap = bytes;
    return TG_OK;
}

/* ------------------------------------------------------------ evaluation */

struct ectx {
    const struct tg_policy *p;
    const struct tg_policy_facts *f;
    struct scratch *s;
    struct span *kw;
    struct rx_rec *rx;
    bool scanned[PF_COUNT];
    uint8_t scan_field;
    /* tool calls: how many, and their arguments decoded (dcalls NULL until then) */
    size_t n_calls;
    size_t dec_slots;
    const struct dcall *dcalls;
    const uint32_t *dmap;
    const char *dtext;
    /* while scanning arguments: the call, and for its decoded text the map to offsets */
    uint32_t scan_call;
    const uint32_t *scan_map;
};

/*
 * What made a condition hold, as a reviewer would name it: the first leaf,
 * in evaluation order, that points at a fact (something the customer or
 * the model wrote or called: a keyword or regex span, an amount, an
 * identifier, a tool call); failing that, the first with a bare number (an
 * intent and its confidence, a score, a count); failing that, the name of
 * the first leaf that held ("channel"), or "not", so a hit always names
 * something.  So in all: [intent, money.max] the amount is the trigger,
 * not the classifier's confidence.
 */
struct trig {
    const char *field;
    uint32_t start, end;
    double value;
    bool has_value;
    bool set;
    bool fact; /* set by a fact, which no later leaf replaces */
    const char *fallback;
};

static const char *const field_names[] = {[PF_TEXT] = "text",
                                          [PF_NORM] = "norm",
                                          [PF_DRAFT] = "draft",
                                          [PF_TOOL] = "tool_calls",
                                          [PF_CONV] = "conversation"};

/* Record a leaf's trigger unless t already holds a fact, or a number and this is none. */
static void trig_set(struct trig *t, const char *field, uint32_t start, uint32_t end, double value,
                     bool has_value, bool fact)
{
    if (t->set && (t->fact || !fact))
        return;
    t->set = true;
    t->fact = fact;
    t->field = field;
    t->start = start;
    t->end = end;
    t->value = value;
    t->has_value = has_value;
}

/* The text of a field other than PF_TOOL. */
static const char *field_text(const struct tg_policy_facts *f, uint8_t field, size_t *len)
{
    TG_ASSERT(field != PF_TOOL);
    const char *s = field == PF_TEXT   ? f->text
                    : field == PF_NORM ? f->norm
                    : field == PF_CONV ? f->conversation
                                       : f->draft;
    *len = field == PF_TEXT   ? f->text_len
           : field == PF_NORM ? f->norm_len
           : field == PF_CONV ? f->conversation_len
                              : f->draft_len;
    if (*len > UINT32_MAX - 1)
        *len = UINT32_MAX - 1;
    return s;
}

static bool cmp_holds(const struct policy_cmp *c, double x)
{
    for (uint8_t i = 0; i < c->n; i++) {
        double v = c->v[i];
        bool ok;
        switch (c->op[i]) {
        case OP_EQ:
            ok = x == v;
            break;
        case OP_NE:
            ok = x != v;
            break;
        case OP_GT:
            ok = x > v;
            break;
        case OP_GE:
            ok = x >= v;
            break;
        case OP_LT:
            ok = x < v;
            break;
        default:
            ok = x <= v;
            break;
        }
        if (!ok)
            return false;
    }
    return true;
}

/* A leaf without span or value held: name it unless something was named before. */
static bool named(struct trig *t, const char *name, bool held)
{
    if (held && !t->fallback)
        t->fallback = name;
    return held;
}

/* A comparison leaf: holds when x passes; the trigger is the value. */
static bool value(struct trig *t, const struct policy_node *n, double x)
{
    if (!cmp_holds(&n->cmp, x))
        return false;
    trig_set(t, n->name, 0, 0, x, true, false);
    return true;
}

static bool in_names(const struct policy_node *n, const char *s)
{
    if (!s)
        return false;
    for (size_t i = 0; i < n->n_names; i++) {
        if (strcmp(n->names[i], s) == 0)
            return true;
    }
    return false;
}

static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((uint8_t)s[i] & 0xC0) != 0x80;
    return n;
}

/* A term occurred: keep, for each test of the scanned text using it, the leftmost (longest). */
static void on_term(void *arg, uint32_t term, uint32_t start, uint32_t end)
{
    struct ectx *e = arg;
    const struct tg_policy *p = e->p;
    if (e->scan_map) {
        start = e->scan_map[start];
        end = e->scan_map[end];
    }
    for (uint32_t i = p->term_leaf_start[term]; i < p->term_leaf_start[term + 1]; i++) {
        uint32_t leaf = p->term_leaf[i];
        struct span *sp = &e->kw[leaf];
        if (p->kw[leaf].field != e->scan_field)
            continue;
        /* Tool calls are scanned in order: one found in an earlier call stays. */
        if (sp->start == POLICY_NONE ||
            (sp->call == e->scan_call &&
             (start < sp->start || (start == sp->start && end > sp->end)))) {
            sp->start = start;
            sp->end = end;
            sp->call = e->scan_call;
        }
    }
}

/* Append code point cp (at most U+10FFFF) to out as UTF-8, each byte from raw offset at. */
static size_t put_utf8(uint32_t cp, char *out, uint32_t *map, size_t o, uint32_t at)
{
    char b[4];
    size_t n = tg_utf8_encode(cp, b);
    for (size_t k = 0; k < n; k++) {
        out[o + k] = (char)b[k];
        map[o + k] = at;
    }
    return o + n;
}

/* The four hex digits at s[0..4) as a number, or -1. */
static int32_t hex4(const char *s)
{
    int32_t v = 0;
    for (int k = 0; k < 4; k++) {
        char ch = s[k];
        int d = (ch >= '0' && ch <= '9')   ? ch - '0'
                : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10
                : (ch >= 'A' && ch <= 'F') ? ch - 'A' + 10
                                           : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/*
 * The escape at s[i] (a backslash, i + 1 < len) decoded: its code point
 * and the bytes it takes, or -1 when it is no JSON escape.  A surrogate
 * pair is one code point; a lone surrogate is U+FFFD.
 */
static int32_t escape(const char *s, size_t len, size_t i, size_t *used)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *hit = memchr(from, s[i + 1], sizeof(from) - 1);
    if (hit) {
        *used = 2;
        return (uint8_t)to[hit - from];
    }
    int32_t cp = s[i + 1] == 'u' && len - i >= 6 ? hex4(s + i + 2) : -1;
    *used = 6;
    if (cp >= 0xD800 && cp < 0xDC00 && len - i >= 12 && s[i + 6] == '\\' && s[i + 7] == 'u') {
        int32_t lo = hex4(s + i + 8);
        if (lo >= 0xDC00 && lo < 0xE000) {
            *used = 12;
            return 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
    }
    return cp >= 0xD800 && cp < 0xE000 ? 0xFFFD : cp;
}

/*
 * Every string of the JSON text s (keys and values; the text need not be
 * valid JSON, an unterminated string runs to its end) decoded into out,
 * each followed by a line break, with map as struct dcall describes.
 * Anything not a valid escape is kept as written.  Writes at most len + 1
 * map entries and len bytes; returns the bytes written.
 */
static size_t json_strings(const char *s, size_t len, char *out, uint32_t *map)
{
    size_t i = 0, o = 0;
    while (i < len) {
        if (s[i++] != '"')
            continue;
        while (i < len && s[i] != '"') {
            size_t used = 1;
            int32_t cp = s[i] == '\\' && i + 1 < len ? escape(s, len, i, &used) : -1;
            if (cp < 0) {
                used = 1;
                out[o] = s[i];
                map[o++] = (uint32_t)i;
            } else {
                o = put_utf8((uint32_t)cp, out, map, o, (uint32_t)i);
            }
            i += used;
        }
        out[o] = '\n';
        map[o++] = (uint32_t)TG_MIN(i, len);
        i++;
    }
    map[o] = (uint32_t)len;
    return o;
}

/* Decode the arguments of every tool call, once per evaluation. */
static void decode_calls(struct ectx *e)
{
    if (e->dcalls)
        return;
    struct dcall *dc = e->s->dec;
    uint32_t *map = (uint32_t *)(void *)(dc + e->n_calls);
    char *text = (char *)(map + e->dec_slots);
    size_t off = 0, len;
    for (size_t i = 0; i < e->n_calls; i++) {
        const char *args = args_of(&e->f->tool_calls[i], &len);
        dc[i].off = off;
        dc[i].len = (uint32_t)json_strings(args, len, text + off, map + off);
        off += len + 1;
    }
    TG_ASSERT(off == e->dec_slots);
    e->dcalls = dc;
    e->dmap = map;
    e->dtext = text;
}

/* The automaton over the arguments of every call, as written and decoded. */
static void scan_tools(struct ectx *e)
{
    size_t len;
    decode_calls(e);
    e->scan_field = PF_TOOL;
    for (size_t i = 0; i < e->n_calls; i++) {
        const char *args = args_of(&e->f->tool_calls[i], &len);
        const struct dcall *dc = &e->dcalls[i];
        e->scan_call = (uint32_t)i;
        e->scan_map = NULL;
        policy_ac_scan(e->p->ac, args, len, on_term, e);
        e->scan_map = e->dmap + dc->off;
        policy_ac_scan(e->p->ac, e->dtext + dc->off, dc->len, on_term, e);
    }
    e->scan_map = NULL;
    e->scan_call = 0;
}

/* Run the automaton over one text, once per evaluation. */
static void scan(struct ectx *e, uint8_t field)
{
    size_t len;
    if (e->scanned[field])
        return;
    e->scanned[field] = true;
    for (size_t i = 0; i < e->p->n_kw; i++) {
        if (e->p->kw[i].field == field)
            e->kw[i] = (struct span){.start = POLICY_NONE};
    }
    if (field == PF_TOOL) {
        if (e->p->ac && e->n_calls)
            scan_tools(e);
        return;
    }
    const char *text = field_text(e->f, field, &len);
    if (!text || !e->p->ac)
        return;
    e->scan_field = field;
    policy_ac_scan(e->p->ac, text, len, on_term, e);
}

/*
 * Match x against s[0..len) into r; map (NULL: none) turns the span into
 * offsets of the text as written.  A failure to match (match limit, bad
 * UTF-8) counts as no match.
 */
static bool match(struct ectx *e, const struct policy_rx *x, const char *s, size_t len,
                  const uint32_t *map, struct rx_rec *r)
{
    if (pcre2_match(x->code, (PCRE2_SPTR)s, len, 0, 0, e->s->md, e->p->mctx) < 0)
        return false;
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->s->md);
    size_t start = ov[0], end = TG_MAX(ov[1], ov[0]);
    r->start = map ? map[start] : (uint32_t)start;
    r->end = map ? map[end] : (uint32_t)end;
    r->state = RX_YES;
    return true;
}

/* Run regex id, once per evaluation; on tool calls, the first call that matches. */
static const struct rx_rec *regex(struct ectx *e, uint32_t id)
{
    struct rx_rec *r = &e->rx[id];
    size_t len;
    if (r->state != RX_UNKNOWN)
        return r;
    r->state = RX_NO;
    const struct policy_rx *x = &e->p->rx[id];
    if (x->field != PF_TOOL) {
        const char *s = field_text(e->f, x->field, &len);
        if (s)
            match(e, x, s, len, NULL, r);
        return r;
    }
    if (e->n_calls)
        decode_calls(e);
    for (size_t i = 0; i < e->n_calls && r->state != RX_YES; i++) {
        const char *args = args_of(&e->f->tool_calls[i], &len);
        const struct dcall *dc = &e->dcalls[i];
        r->call = (uint32_t)i;
        if (!match(e, x, args, len, NULL, r))
            match(e, x, e->dtext + dc->off, dc->len, e->dmap + dc->off, r);
    }
    return r;
}

/* Whether a tool's name equals one of n's names, or starts with one that ends in '*'. */
static bool tool_name_in(const struct policy_node *n, const struct tg_policy_tool_call *c)
{
    const char *s = c->name ? c->name : "";
    size_t len = c->name ? c->name_len : 0;
    for (size_t i = 0; i < n->n_names; i++) {
        size_t nl = strlen(n->names[i]);
        bool glob = nl > 0 && n->names[i][nl - 1] == '*';
        if (glob ? len >= nl - 1 && memcmp(s, n->names[i], nl - 1) == 0
                 : len == nl && memcmp(s, n->names[i], nl) == 0)
            return true;
    }
    return false;
}

/* tool.name: the first call with a wanted name; the trigger is its index. */
static bool eval_tool_name(const struct ectx *e, const struct policy_node *n, struct trig *t)
{
    for (size_t i = 0; i < e->n_calls; i++) {
        if (tool_name_in(n, &e->f->tool_calls[i])) {
            trig_set(t, field_names[PF_TOOL], 0, 0, (double)i, true, true);
            return true;
        }
    }
    return false;
}

static bool eval_node(struct ectx *e, uint32_t idx, struct trig *t);

/*
 * all: every child, the trigger struct trig prefers among theirs.  A false result
 * leaves t in no particular state: any and not give each child a trigger
 * of its own and drop it when the child fails, and a rule that does not
 * fire reports nothing.
 */
static bool eval_all(struct ectx *e, const struct policy_node *n, struct trig *t)
{
    for (uint32_t i = 0; i < n->n; i++) {
        if (!eval_node(e, e->p->kids[n->a + i], t))
            return false;
    }
    return true;
}

static bool eval_any(struct ectx *e, const struct policy_node *n, struct trig *t)
{
    for (uint32_t i = 0; i < n->n; i++) {
        struct trig sub = {0};
        if (eval_node(e, e->p->kids[n->a + i], &sub)) {
            if (sub.set)
                trig_set(t, sub.field, sub.start, sub.end, sub.value, sub.has_value, sub.fact);
            if (!t->fallback)
                t->fallback = sub.fallback;
            return true;
        }
    }
    return false;
}

static bool eval_money(const struct tg_policy_facts *f, const struct policy_node *n, struct trig *t)
{
    const struct tg_entities *en = f->entities;
    size_t count = en ? en->n_money : 0;
    if (n->kind == PC_MONEY_COUNT)
        return value(t, n, (double)count);
    if (n->kind == PC_MONEY_ANY) {
        if ((count > 0) != n->flag)
            return false;
        if (count)
            trig_set(t, "money", en->money[0].start, en->money[0].end, en->money[0].value_cny, true,
                     true);
        return true;
    }
    if (!count)
        return false;
    size_t best = 0;
    for (size_t i = 1; i < count; i++) {
        if (en->money[i].value_cny > en->money[best].value_cny)
            best = i;
    }
    double x = en->money[best].value_cny;
    if (!cmp_holds(&n->cmp, x))
        return false;
    trig_set(t, "money", en->money[best].start, en->money[best].end, x, true, true);
    return true;
}

static bool eval_pii(const struct tg_policy_facts *f, const struct policy_node *n, struct trig *t)
{
    const struct tg_entities *en = f->entities;
    size_t count = en ? en->n_pii : 0;
    if (n->kind == PC_PII_ANY) {
        if ((count > 0) != n->flag)
            return false;
        if (count)
            trig_set(t, "pii", en->pii[0].start, en->pii[0].end, 0, false, true);
        return true;
    }
    for (size_t i = 0; i < count; i++) {
        if (n->pii_mask & (1u << en->pii[i].type)) {
            trig_set(t, "pii", en->pii[i].start, en->pii[i].end, 0, false, true);
            return true;
        }
    }
    return false;
}

static bool eval_node(struct ectx *e, uint32_t idx, struct trig *t)
{
    const struct policy_node *n = &e->p->nodes[idx];
    const struct tg_policy_facts *f = e->f;
    switch ((enum policy_cond)n->kind) {
    case PC_ALL:
        return eval_all(e, n, t);
    case PC_ANY:
        return eval_any(e, n, t);
    case PC_NOT: {
        struct trig sub = {0};
        return named(t, "not", !eval_node(e, n->a, &sub));
    }
    case PC_INTENT:
        if (!in_names(n, f->intent))
            return false;
        trig_set(t, "intent", 0, 0, f->intent_confidence, true, false);
        return true;
    case PC_INTENT_CONFIDENCE:
        return value(t, n, f->intent_confidence);
    case PC_MONEY_MAX:
    case PC_MONEY_COUNT:
    case PC_MONEY_ANY:
        return eval_money(f, n, t);
    case PC_PII_ANY:
    case PC_PII_TYPE:
        return eval_pii(f, n, t);
    case PC_KEYWORDS:
    case PC_CONV_KEYWORDS:
    case PC_DRAFT_KEYWORDS:
    case PC_TOOL_KEYWORDS: {
        uint8_t field = e->p->kw[n->a].field;
        scan(e, field);
        const struct span *sp = &e->kw[n->a];
        if (sp->start == POLICY_NONE)
            return false;
        trig_set(t, field_names[field], sp->start, sp->end, field == PF_TOOL ? sp->call : 0,
                 field == PF_TOOL, true);
        return true;
    }
    case PC_REGEX:
    case PC_DRAFT_REGEX:
    case PC_TOOL_REGEX: {
        const struct rx_rec *r = regex(e, n->a);
        uint8_t field = e->p->rx[n->a].field;
        if (r->state != RX_YES)
            return false;
        trig_set(t, field_names[field], r->start, r->end, field == PF_TOOL ? r->call : 0,
                 field == PF_TOOL, true);
        return true;
    }
    case PC_EVIDENCE_BEST:
        return value(t, n, f->best_score);
    case PC_EVIDENCE_COUNT:
        return value(t, n, (double)f->n_evidence);
    case PC_DEGRADATIONS:
        return value(t, n, (double)f->degradations);
    case PC_CHANNEL:
        return named(t, n->name, in_names(n, f->channel));
    case PC_TIER:
        return named(t, n->name, in_names(n, f->tier));
    case PC_DRAFT_UNGROUNDED:
        return value(t, n, (double)f->ungrounded);
    case PC_DRAFT_LENGTH:
        return value(t, n, f->draft ? (double)utf8_chars(f->draft, f->draft_len) : 0.0);
    case PC_DRAFT_LANGUAGE:
        return named(t, n->name, in_names(n, f->draft_language));
    case PC_CONFIDENCE:
        return f->confidence >= 0 && value(t, n, f->confidence);
    case PC_TOOL_NAME:
        return eval_tool_name(e, n, t);
    case PC_TOOL_COUNT:
        return value(t, n, (double)e->n_calls);
    }
    return false;
}

int tg_policy_eval(const struct tg_policy *p, enum tg_policy_stage stage,
                   const struct tg_policy_facts *facts, struct tg_policy_hits *hits)
{
    TG_ASSERT(facts && hits);
    hits->n = 0;
    if (!p || (stage != TG_POLICY_PRE && stage != TG_POLICY_POST) || !p->n_stage[stage])
        return TG_OK;
    int rc = ensure(hits, p->n_stage[stage], p->n_kw, p->n_rx);
    if (rc)
        return rc;
    struct ectx e = {.p = p, .f = facts, .s = scratch_of(hits), .n_calls = n_calls(facts)};
    if (stage == TG_POLICY_POST && p->tool_args && e.n_calls) {
        rc = ensure_dec(e.s, facts, e.n_calls, &e.dec_slots);
        if (rc)
            return rc;
    }
    e.kw = spans_of(e.s);
    e.rx = rx_of(e.s);
    if (p->n_rx)
        memset(e.rx, 0, p->n_rx * sizeof(*e.rx));
    for (size_t i = 0; i < p->n_rules; i++) {
        const struct policy_rule *r = &p->rules[i];
        struct trig t = {0};
        if (r->stage != stage || !eval_node(&e, r->root, &t))
            continue;
        TG_ASSERT(hits->n < hits->cap);
        hits->v[hits->n++] = (struct tg_policy_hit){
            .rule = r->id,
            .description = r->description,
            .audience = r->audience,
            .actions = r->actions,
            .n_actions = r->n_actions,
            .field = t.set        ? t.field
                     : t.fallback ? t.fallback
                                  : "not",
            .start = t.set ? t.start : 0,
            .end = t.set ? t.end : 0,
            .value = t.set ? t.value : 0,
            .has_value = t.set && t.has_value,
        };
    }
    return TG_OK;
}
