/*
 * compile.c - policy rules (a YAML/JSON list) into the flat arrays of
 * policy_int.h, with every problem reported as "FILE:LINE: message" in one
 * pass, the way the config module reports its own sections.
 *
 * Keyword lists of all rules become one Aho-Corasick automaton (ac.c)
 * over their distinct terms, with an index from each term back to the
 * keyword tests that use it; regexes are compiled and JIT-compiled here.
 * Merging two policies concatenates their arrays and rebuilds that one
 * automaton.
 */
#include "policy/policy_int.h"

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

struct seen_id {
    const char *id;
    int line;
};

struct cctx {
    const char *path;
    const char *base_dir;
    const struct tg_config_lines *lines;
    json_t *errs;
    size_t n_errs;
    int rc; /* TG_E_NOMEM once an allocation failed */
    struct tg_policy *p;
    struct tg_arena *arena;
    char where[POLICY_MAX_ID + 16]; /* "rule 'id'" */
    enum tg_policy_stage stage;
    size_t cap_rules, cap_nodes, cap_kids, cap_kw, cap_rx;
    struct seen_id *ids;
    size_t n_ids, cap_ids;
    pcre2_general_context *gctx;
    pcre2_compile_context *ccx;
};

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

static void nomem(struct cctx *c)
{
    c->rc = TG_E_NOMEM;
}

static void err(struct cctx *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Report "PATH:LINE: rule 'id': message". */
static void err(struct cctx *c, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->n_errs++;
    if (tg_config_errorf(c->errs, c->path, line, "%s: %s", c->where, msg))
        nomem(c);
}

static void type_err(struct cctx *c, int line, const char *what, const char *want, const json_t *v)
{
    if (json_is_null(v))
        err(c, line, "%s has no value (expected %s)", what, want);
    else
        err(c, line, "%s must be %s, not %s", what, want, tg_config_type_name(v));
}

/* Line of member key of obj, else of obj itself. */
static int kline(const struct cctx *c, const json_t *obj, const char *key)
{
    int line = tg_config_lines_key(c->lines, obj, key);
    return line ? line : tg_config_lines_node(c->lines, obj);
}

/* Line of element i of arr, else of the element, else fallback. */
static int eline(const struct cctx *c, const json_t *arr, size_t i, int fallback)
{
    int line = tg_config_lines_elem(c->lines, arr, i);
    if (!line)
        line = tg_config_lines_node(c->lines, json_array_get(arr, i));
    return line ? line : fallback;
}

/* Report unknown keys of obj "in WHAT of rule 'id'" (or "in rule 'id'"); their number. */
static size_t check_keys(struct cctx *c, const json_t *obj, const char *what,
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
static bool room(struct cctx *c, void *pv, size_t n, size_t *cap, size_t elem)
{
    void **v = pv;
    if (n < *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 16;
    void *q = tg_realloc(*v, nc * elem);
    if (!q) {
        nomem(c);
        return false;
    }
    *v = q;
    *cap = nc;
    return true;
}

static char *adup(struct cctx *c, const char *s, size_t len)
{
    char *d = tg_arena_strndup(c->arena, s, len);
    if (!d)
        nomem(c);
    return d;
}

/* ------------------------------------------------------------ values */

/* A non-empty string value; NULL (reported) otherwise. */
static const char *get_text(struct cctx *c, const json_t *v, int line, const char *what)
{
    if (!json_is_string(v)) {
        type_err(c, line, what, "a string", v);
        return NULL;
    }
    if (json_string_length(v) == 0) {
        err(c, line, "%s must not be empty", what);
        return NULL;
    }
    return adup(c, json_string_value(v), json_string_length(v));
}

/* NAME or [NAMES...], each a non-empty string, copied to the arena. */
static bool get_names(struct cctx *c, const json_t *v, int line, const char *what,
                      const char *const **out, size_t *n_out)
{
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (!json_is_string(v) && !json_is_array(v)) {
        type_err(c, line, what, "a name or a list of names", v);
        return false;
    }
    if (n == 0) {
        err(c, line, "%s is an empty list", what);
        return false;
    }
    const char **names = tg_arena_alloc(c->arena, n * sizeof(*names));
    if (!names) {
        nomem(c);
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        int el = json_is_array(v) ? eline(c, v, i, line) : line;
        names[i] = get_text(c, e, el, what);
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
        err(c, line, "%s: '%s' is not a number", what, json_string_value(v));
    else
        type_err(c, line, what, "a number", v);
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
        type_err(c, line, what, "a number or a mapping such as {gt: 50000}", v);
        return false;
    }
    size_t n = json_object_size(v);
    if (n == 0 || n > 2) {
        err(c, line, "%s must have one or two bounds (gt, ge, lt, le, eq, ne), not %zu", what, n);
        return false;
    }
    char w[96];
    snprintf(w, sizeof(w), "the comparison %s", what);
    bool ok = check_keys(c, v, w, cmp_ops, TG_ARRAY_LEN(cmp_ops)) == 0;
    const char *key;
    const json_t *b;
    json_object_foreach((json_t *)v, key, b)
    {
        for (size_t op = 0; op < TG_ARRAY_LEN(cmp_ops); op++) {
            if (strcmp(key, cmp_ops[op]) != 0)
                continue;
            snprintf(w, sizeof(w), "%s.%s", what, key);
            if (get_number(c, b, kline(c, v, key), w, &cmp->v[cmp->n])) {
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
        type_err(c, line, what, "true or false", v);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

/* ------------------------------------------------------------ keywords */

static void lower_ascii(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= 'A' && s[i] <= 'Z')
            s[i] = (char)(s[i] + ('a' - 'A'));
    }
}

/* Terms being collected for one keyword test. */
struct terms {
    const char **v;
    uint32_t *lens;
    size_t n, cap;
};

static bool add_term(struct cctx *c, struct terms *t, const char *s, size_t len)
{
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 16;
        const char **v = tg_realloc(t->v, nc * sizeof(*v));
        if (v)
            t->v = v;
        uint32_t *l = v ? tg_realloc(t->lens, nc * sizeof(*l)) : NULL;
        if (!l) {
            nomem(c);
            return false;
        }
        t->lens = l;
        t->cap = nc;
    }
    char *d = adup(c, s, len);
    if (!d)
        return false;
    lower_ascii(d, len);
    t->v[t->n] = d;
    t->lens[t->n++] = (uint32_t)len;
    return true;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* Read a whole file into a tg_malloc'd buffer; errno is kept on failure. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    struct stat st;
    int saved;
    if (!f)
        return NULL;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        errno = EISDIR;
        goto out;
    }
    if ((uint64_t)st.st_size > POLICY_MAX_KW_FILE) {
        errno = EFBIG;
        goto out;
    }
    buf = tg_malloc((size_t)st.st_size + 1);
    if (!buf) {
        errno = ENOMEM;
        goto out;
    }
    *len = fread(buf, 1, (size_t)st.st_size, f);
    buf[*len] = '\0';
out:
    saved = errno;
    fclose(f);
    errno = saved;
    return buf;
}

/* One term per line, trimmed; blank lines and lines starting with '#' are skipped. */
static bool split_lines(struct cctx *c, const char *text, size_t len, struct terms *t)
{
    size_t i = (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) ? 3 : 0;
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - text) : len;
        size_t a = i, b = e;
        while (a < b && is_space(text[a]))
            a++;
        while (b > a && is_space(text[b - 1]))
            b--;
        if (b > a && text[a] != '#' && !add_term(c, t, text + a, b - a))
            return false;
        i = e + 1;
    }
    return true;
}

/* keywords: {file: PATH}: the terms of the file, relative to base_dir. */
static bool keyword_file(struct cctx *c, const json_t *v, int line, const char *what,
                         struct terms *t)
{
    const char *name = get_text(c, v, line, what);
    struct tg_buf path;
    size_t len = 0;
    char *text = NULL;
    bool ok = false;
    tg_buf_init(&path, 1u << 16);
    if (!name)
        goto out;
    int rc = (name[0] != '/' && c->base_dir && c->base_dir[0])
                 ? tg_buf_printf(&path, "%s/%s", c->base_dir, name)
                 : tg_buf_puts(&path, name);
    if (rc == TG_E_NOMEM) {
        nomem(c);
        goto out;
    }
    if (rc) {
        err(c, line, "%s: path too long", what);
        goto out;
    }
    text = read_file(path.data, &len);
    if (!text) {
        if (errno == ENOMEM)
            nomem(c);
        else
            err(c, line, "cannot read keyword file '%s': %s", path.data, strerror(errno));
        goto out;
    }
    size_t before = t->n;
    if (!split_lines(c, text, len, t))
        goto out;
    if (t->n == before) {
        err(c, line, "keyword file '%s' holds no terms", path.data);
        goto out;
    }
    ok = true;
out:
    tg_free(text);
    tg_buf_free(&path);
    return ok;
}

/* keywords: [TERMS...]: strings, or integers ("12378") as their digits. */
static bool keyword_list(struct cctx *c, const json_t *v, int line, const char *what,
                         struct terms *t)
{
    bool ok = true;
    if (json_array_size(v) == 0) {
        err(c, line, "%s is an empty list", what);
        return false;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *e = json_array_get(v, i);
        int el = eline(c, v, i, line);
        char num[32];
        if (json_is_integer(e)) {
            int n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(e));
            ok = add_term(c, t, num, (size_t)n) && ok;
        } else if (!json_is_string(e)) {
            type_err(c, el, what, "a list of strings", e);
            ok = false;
        } else if (json_string_length(e) == 0) {
            err(c, el, "%s: a keyword must not be empty", what);
            ok = false;
        } else {
            ok = add_term(c, t, json_string_value(e), json_string_length(e)) && ok;
        }
    }
    return ok;
}

/* keywords: [TERMS...] | TERM | {file: PATH} -> a new keyword leaf. */
static bool keywords(struct cctx *c, const json_t *v, int line, const char *what, uint8_t field,
                     uint32_t *leaf)
{
    static const char *const file_keys[] = {"file"};
    struct terms t = {0};
    bool ok = false;
    if (json_is_array(v)) {
        ok = keyword_list(c, v, line, what, &t);
    } else if (json_is_string(v) && json_string_length(v) > 0) {
        ok = add_term(c, &t, json_string_value(v), json_string_length(v));
    } else if (json_is_object(v)) {
        char w[64];
        if (check_keys(c, v, what, file_keys, 1))
            goto out;
        const json_t *f = json_object_get(v, "file");
        if (!f) {
            err(c, line, "%s needs a list of terms or {file: PATH}", what);
            goto out;
        }
        snprintf(w, sizeof(w), "%s.file", what);
        ok = keyword_file(c, f, kline(c, v, "file"), w, &t);
    } else {
        type_err(c, line, what, "a list of terms or {file: PATH}", v);
    }
    if (!ok || c->rc)
        goto out;
    ok = false;
    struct policy_kw *kw;
    const char **terms = tg_arena_alloc(c->arena, t.n * sizeof(*terms));
    uint32_t *lens = tg_arena_alloc(c->arena, t.n * sizeof(*lens));
    if (!terms || !lens || !room(c, &c->p->kw, c->p->n_kw, &c->cap_kw, sizeof(*kw))) {
        nomem(c);
        goto out;
    }
    memcpy(terms, t.v, t.n * sizeof(*terms));
    memcpy(lens, t.lens, t.n * sizeof(*lens));
    kw = &c->p->kw[c->p->n_kw];
    kw->terms = terms;
    kw->lens = lens;
    kw->n_terms = (uint32_t)t.n;
    kw->field = field;
    *leaf = (uint32_t)c->p->n_kw++;
    c->p->tool_args = c->p->tool_args || field == PF_TOOL;
    ok = true;
out:
    tg_free(t.v);
    tg_free(t.lens);
    return ok;
}

/* ------------------------------------------------------------ regex */

static bool regex_ctx(struct cctx *c)
{
    if (c->ccx)
        return true;
    if (!c->gctx)
        c->gctx = pcre2_general_context_create(policy_pcre_alloc, policy_pcre_release, NULL);
    if (c->gctx && !c->p->mctx)
        c->p->mctx = pcre2_match_context_create(c->gctx);
    if (c->p->mctx && pcre2_set_match_limit(c->p->mctx, POLICY_MATCH_LIMIT) == 0)
        c->ccx = pcre2_compile_context_create(c->gctx);
    if (!c->ccx)
        nomem(c);
    return c->ccx != NULL;
}

/* on: text | norm | draft, into *field; false (reported) otherwise. */
static bool regex_on(struct cctx *c, const json_t *on, int line, const char *what, uint8_t *field)
{
    const char *s = json_string_value(on);
    if (s && strcmp(s, "text") == 0) {
        *field = PF_TEXT;
    } else if (s && strcmp(s, "norm") == 0) {
        *field = PF_NORM;
    } else if (s && strcmp(s, "draft") == 0 && c->stage == TG_POLICY_POST) {
        *field = PF_DRAFT;
    } else if (s && strcmp(s, "draft") == 0) {
        err(c, line, "%s.on: draft is only known in post rules (stage: post)", what);
        return false;
    } else {
        err(c, line, "%s.on must be text, norm or draft", what);
        return false;
    }
    return true;
}

/*
 * The pattern of PATTERN | {pattern: P, on: F}, its line and field; NULL
 * (reported) if bad.  Only the plain regex (field PF_TEXT by default) may
 * choose its text with on:; the others read the field they name.
 */
static const json_t *regex_spec(struct cctx *c, const json_t *v, int *line, const char *what,
                                uint8_t field_in, uint8_t *field)
{
    static const char *const keys[] = {"pattern", "on"};
    const json_t *pat = v;
    bool fixed = field_in != PF_TEXT;
    *field = field_in;
    if (json_is_object(v)) {
        bool ok = check_keys(c, v, what, keys, fixed ? 1 : 2) == 0;
        const json_t *on = json_object_get(v, "on");
        if (on && !fixed)
            ok = regex_on(c, on, kline(c, v, "on"), what, field) && ok;
        pat = json_object_get(v, "pattern");
        if (!pat) {
            err(c, *line, "%s needs a pattern", what);
            return NULL;
        }
        *line = kline(c, v, "pattern");
        if (!ok)
            return NULL;
    }
    if (!json_is_string(pat) || json_string_length(pat) == 0) {
        if (json_is_string(pat))
            err(c, *line, "%s: the pattern must not be empty", what);
        else
            type_err(c, *line, what, "a pattern or {pattern, on}", pat);
        return NULL;
    }
    return pat;
}

/*
 * regex: PATTERN | {pattern: P, on: norm|text|draft} -> a regex leaf
 * (shared when equal); draft.regex and tool.arguments.regex: PATTERN |
 * {pattern: P} on their own field.
 */
static bool regex(struct cctx *c, const json_t *v, int line, const char *what, uint8_t field_in,
                  uint32_t *leaf)
{
    uint8_t field;
    const json_t *pat = regex_spec(c, v, &line, what, field_in, &field);
    if (!pat)
        return false;
    const char *ps = json_string_value(pat);
    size_t plen = json_string_length(pat);
    for (size_t i = 0; i < c->p->n_rx; i++) {
        const struct policy_rx *x = &c->p->rx[i];
        if (x->field == field && x->pattern_len == plen && memcmp(x->pattern, ps, plen) == 0) {
            *leaf = (uint32_t)i;
            return true;
        }
    }
    if (!regex_ctx(c))
        return false;
    int code_err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code *code =
        pcre2_compile((PCRE2_SPTR)ps, plen, PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF,
                      &code_err, &off, c->ccx);
    if (!code) {
        PCRE2_UCHAR msg[256];
        if (code_err == PCRE2_ERROR_HEAP_FAILED || code_err == PCRE2_ERROR_NOMEMORY) {
            nomem(c);
            return false;
        }
        if (pcre2_get_error_message(code_err, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", code_err);
        err(c, line, "%s: bad pattern: %s at offset %zu", what, (const char *)msg, (size_t)off);
        return false;
    }
    /* Without JIT (no executable memory) the interpreter still matches. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    const char *copy = adup(c, ps, plen);
    if (!copy || !room(c, &c->p->rx, c->p->n_rx, &c->cap_rx, sizeof(*c->p->rx))) {
        pcre2_code_free(code);
        return false;
    }
    c->p->rx[c->p->n_rx] =
        (struct policy_rx){.code = code, .pattern = copy, .pattern_len = plen, .field = field};
    *leaf = (uint32_t)c->p->n_rx++;
    c->p->tool_args = c->p->tool_args || field == PF_TOOL;
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
    if (!room(c, &c->p->nodes, c->p->n_nodes, &c->cap_nodes, sizeof(*n)))
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
            err(c, line,
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
            err(c, json_is_array(v) ? eline(c, v, i, line) : line,
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
        type_err(c, line, what, "a list of conditions", v);
        return false;
    }
    size_t count = json_array_size(v);
    if (count == 0) {
        err(c, line, "%s is an empty list", what);
        return false;
    }
    uint32_t *idx = tg_malloc(count * sizeof(*idx));
    bool ok = idx != NULL;
    if (!idx)
        nomem(c);
    for (size_t i = 0; i < count && idx; i++) {
        int64_t k = cond(c, json_array_get(v, i), eline(c, v, i, line), depth + 1);
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
            nomem(c);
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
        err(c, line, "conditions nest deeper than %d levels", POLICY_MAX_DEPTH);
        return -1;
    }
    if (!json_is_object(v)) {
        type_err(c, line, "a condition", "a mapping with one key (all, any, not, intent, ...)", v);
        return -1;
    }
    if (json_object_size(v) != 1) {
        if (json_object_size(v) == 0)
            err(c, line, "a condition is an empty mapping");
        else
            err(c, line,
                "a condition has exactly one key, not %zu (put several tests under all: or any:)",
                json_object_size(v));
        return -1;
    }
    void *it = json_object_iter((json_t *)v);
    const char *key = json_object_iter_key(it);
    const json_t *val = json_object_iter_value(it);
    int kl = kline(c, v, key);
    const struct cond_def *d = find_cond(key);
    if (!d) {
        for (size_t i = 0; i < TG_ARRAY_LEN(conds); i++)
            names[i] = conds[i].name;
        check_keys(c, v, "a condition", names, TG_ARRAY_LEN(conds));
        return -1;
    }
    if (d->post && c->stage == TG_POLICY_PRE) {
        err(c, kl, "%s tests %s: only post rules (stage: post) may use it", key, d->post);
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
        ok = keywords(c, val, kl, key, d->field, &n.a);
        break;
    case A_REGEX:
        ok = regex(c, val, kl, key, d->field, &n.a);
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
        type_err(c, line, "attestations", "a list of statements", v);
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
        type_err(c, line, what, "true or a mapping of options", v);
        return false;
    }
    bool ok = check_keys(c, v, what, is_review ? review_keys : human_keys, is_review ? 4 : 2) == 0;
    const json_t *rep = json_object_get(v, "reply");
    if (rep && is_review) {
        a->text = get_text(c, rep, kline(c, v, "reply"), "reply");
        ok = ok && a->text;
    }
    const json_t *sla = json_object_get(v, "sla");
    const json_t *queue = json_object_get(v, "queue");
    const json_t *att = json_object_get(v, "attestations");
    if (sla && is_review) {
        int sl = kline(c, v, "sla");
        int64_t ms = 0;
        if (json_is_integer(sla)) {
            ms = json_integer_value(sla);
        } else if (!json_is_string(sla) ||
                   tg_parse_duration_ms(json_string_value(sla), &ms) != TG_OK) {
            if (json_is_string(sla))
                err(c, sl, "%s.sla: '%s' is not a duration (such as 90s, 5m)", what,
                    json_string_value(sla));
            else
                type_err(c, sl, "sla", "a duration such as 90s", sla);
            ok = false;
            ms = 1;
        }
        if (ms <= 0) {
            err(c, sl, "%s.sla must be positive", what);
            ok = false;
        }
        a->sla_ms = ms;
    }
    if (queue) {
        a->queue = get_text(c, queue, kline(c, v, "queue"), "queue");
        ok = ok && a->queue;
    }
    if (att)
        ok = attestations(c, att, kline(c, v, "attestations"), a) && ok;
    return ok;
}

/* refuse / script: TEXT | {reply: TEXT}. */
static bool reply(struct cctx *c, const json_t *v, int line, const char *what,
                  struct tg_policy_action *a)
{
    static const char *const keys[] = {"reply"};
    if (json_is_object(v)) {
        if (check_keys(c, v, what, keys, 1))
            return false;
        const json_t *r = json_object_get(v, "reply");
        if (!r) {
            err(c, line, "%s needs a reply", what);
            return false;
        }
        v = r;
        line = kline(c, v, "reply");
    }
    a->text = get_text(c, v, line, what);
    return a->text != NULL;
}

static bool action(struct cctx *c, const json_t *holder, const char *key, const json_t *v,
                   struct tg_policy_action *a)
{
    int line = kline(c, holder, key);
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
        a->text = get_text(c, v, line, key);
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
        type_err(c, line, "then", "an action or a list of actions", v);
        return false;
    }
    if (n == 0) {
        err(c, line, "then is empty: give at least one action");
        return false;
    }
    struct tg_policy_action *acts = tg_arena_alloc(c->arena, n * sizeof(*acts));
    if (!acts) {
        nomem(c);
        return false;
    }
    if (json_is_object(v)) {
        const char *key;
        const json_t *a;
        size_t i = 0;
        ok = check_keys(c, v, "then", action_names, TG_ARRAY_LEN(action_names)) == 0;
        json_object_foreach((json_t *)v, key, a)
        {
            ok = action(c, v, key, a, &acts[i++]) && ok;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            const json_t *e = json_array_get(v, i);
            int el = eline(c, v, i, line);
            if (!json_is_object(e) || json_object_size(e) != 1) {
                if (json_is_object(e))
                    err(c, el, "each action of then is a mapping with one key, not %zu",
                        json_object_size(e));
                else
                    type_err(c, el, "an action", "a mapping such as {tag: NAME}", e);
                ok = false;
                continue;
            }
            check_keys(c, e, "then", action_names, TG_ARRAY_LEN(action_names));
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
    int il = kline(c, r, "id");
    if (!v) {
        err(c, line, "id is missing");
        return NULL;
    }
    if (!json_is_string(v) || json_string_length(v) == 0) {
        if (json_is_string(v))
            err(c, il, "id must not be empty");
        else
            type_err(c, il, "id", "a string", v);
        return NULL;
    }
    const char *id = json_string_value(v);
    size_t len = json_string_length(v);
    bool good = len <= POLICY_MAX_ID;
    for (size_t i = 0; i < len && good; i++)
        good = id_char(id[i]);
    if (!good) {
        err(c, il, "id '%.*s' must be at most %d of A-Z a-z 0-9 . _ -", (int)TG_MIN(len, 200), id,
            POLICY_MAX_ID);
        return NULL;
    }
    snprintf(c->where, sizeof(c->where), "rule '%s'", id);
    for (size_t i = 0; i < c->n_ids; i++) {
        if (strcmp(c->ids[i].id, id) == 0) {
            err(c, il, "duplicate rule id '%s' (first at line %d)", id, c->ids[i].line);
            return NULL;
        }
    }
    if (!room(c, &c->ids, c->n_ids, &c->cap_ids, sizeof(*c->ids)))
        return NULL;
    c->ids[c->n_ids++] = (struct seen_id){.id = id, .line = il};
    return adup(c, id, len);
}

static void rule(struct cctx *c, const json_t *r, int line, size_t index)
{
    static const char *const keys[] = {"id", "description", "stage", "when", "then", "applies_to"};
    struct policy_rule out = {0};
    size_t errs_before = c->n_errs;
    snprintf(c->where, sizeof(c->where), "rule %zu", index + 1);
    if (!json_is_object(r)) {
        type_err(c, line, "a rule", "a mapping with id, description, when and then", r);
        return;
    }
    out.id = rule_id(c, r, line);
    check_keys(c, r, NULL, keys, TG_ARRAY_LEN(keys));
    const json_t *desc = json_object_get(r, "description");
    if (desc)
        out.description = get_text(c, desc, kline(c, r, "description"), "description");
    else
        err(c, line, "description is missing");
    const json_t *stage = json_object_get(r, "stage");
    out.stage = TG_POLICY_PRE;
    if (stage) {
        const char *s = json_string_value(stage);
        if (s && strcmp(s, "post") == 0)
            out.stage = TG_POLICY_POST;
        else if (!s || strcmp(s, "pre") != 0)
            err(c, kline(c, r, "stage"), "stage must be pre or post");
    }
    c->stage = out.stage;
    const json_t *when = json_object_get(r, "when");
    int64_t root = -1;
    if (when)
        root = cond(c, when, kline(c, r, "when"), 0);
    else
        err(c, line, "when is missing: give a condition");
    const json_t *th = json_object_get(r, "then");
    if (th)
        then(c, th, kline(c, r, "then"), &out);
    else
        err(c, line, "then is missing: give at least one action");
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
        int tl = kline(c, r, "applies_to");
        if (!s || (strcmp(s, "ai") && strcmp(s, "human") && strcmp(s, "both")))
            err(c, tl, "applies_to must be ai, human or both");
        else if (out.stage != TG_POLICY_POST && strcmp(s, "ai"))
            err(c, tl, "applies_to: %s needs stage: post (a rule on the customer's message is "
                       "for AI answers)", s);
        else
            out.audience = !strcmp(s, "ai")      ? TG_POLICY_FOR_AI
                           : !strcmp(s, "human") ? TG_POLICY_FOR_HUMAN
                                                 : TG_POLICY_FOR_AI | TG_POLICY_FOR_HUMAN;
    }
    if (c->n_errs != errs_before || c->rc || root < 0)
        return;
    out.root = (uint32_t)root;
    if (!room(c, &c->p->rules, c->p->n_rules, &c->cap_rules, sizeof(out)))
        return;
    c->p->rules[c->p->n_rules++] = out;
    c->p->n_stage[out.stage]++;
}

/* ------------------------------------------------------------ keywords index */

struct pair {
    const char *s;
    uint32_t len;
    uint32_t leaf;
};

static int pair_cmp(const void *x, const void *y)
{
    const struct pair *a = x, *b = y;
    int d = memcmp(a->s, b->s, TG_MIN(a->len, b->len));
    if (d)
        return d;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return a->leaf < b->leaf ? -1 : a->leaf > b->leaf;
}

int policy_keywords_build(struct tg_policy *p)
{
    struct pair *pairs = NULL;
    const char **terms = NULL;
    uint32_t *lens = NULL, *start = NULL, *leaf = NULL;
    struct policy_ac *ac = NULL;
    size_t np = 0;
    int rc = TG_E_NOMEM;
    for (size_t i = 0; i < p->n_kw; i++)
        np += p->kw[i].n_terms;
    if (np == 0) {
        rc = TG_OK;
        goto swap;
    }
    if (np >= UINT32_MAX)
        goto out;
    pairs = tg_malloc(np * sizeof(*pairs));
    terms = tg_malloc(np * sizeof(*terms));
    lens = tg_malloc(np * sizeof(*lens));
    start = tg_malloc((np + 1) * sizeof(*start));
    leaf = tg_malloc(np * sizeof(*leaf));
    if (!pairs || !terms || !lens || !start || !leaf)
        goto out;
    np = 0;
    for (size_t i = 0; i < p->n_kw; i++) {
        for (uint32_t j = 0; j < p->kw[i].n_terms; j++)
            pairs[np++] = (struct pair){p->kw[i].terms[j], p->kw[i].lens[j], (uint32_t)i};
    }
    qsort(pairs, np, sizeof(*pairs), pair_cmp);
    uint32_t nt = 0, nl = 0;
    for (size_t i = 0; i < np; i++) {
        bool same_term = i > 0 && pairs[i].len == pairs[i - 1].len &&
                         memcmp(pairs[i].s, pairs[i - 1].s, pairs[i].len) == 0;
        if (same_term && pairs[i].leaf == pairs[i - 1].leaf)
            continue;
        if (!same_term) {
            terms[nt] = pairs[i].s;
            lens[nt] = pairs[i].len;
            start[nt++] = nl;
        }
        leaf[nl++] = pairs[i].leaf;
    }
    start[nt] = nl;
    rc = policy_ac_build(terms, lens, nt, &ac);
    if (rc)
        goto out;
swap:
    policy_ac_free(p->ac);
    tg_free(p->term_leaf_start);
    tg_free(p->term_leaf);
    p->ac = ac;
    p->term_leaf_start = start;
    p->term_leaf = leaf;
    ac = NULL;
    start = leaf = NULL;
out:
    policy_ac_free(ac);
    tg_free(pairs);
    tg_free(terms);
    tg_free(lens);
    tg_free(start);
    tg_free(leaf);
    return rc;
}

/* ------------------------------------------------------------ public */

/* Free the arrays of p, not what they point to (regexes, arenas, match context). */
static void free_arrays(struct tg_policy *p)
{
    policy_ac_free(p->ac);
    tg_free(p->term_leaf_start);
    tg_free(p->term_leaf);
    tg_free(p->rules);
    tg_free(p->nodes);
    tg_free(p->kids);
    tg_free(p->kw);
    tg_free(p->rx);
    tg_free(p->arenas);
}

void tg_policy_free(struct tg_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_rx; i++)
        pcre2_code_free(p->rx[i].code);
    pcre2_match_context_free(p->mctx);
    for (size_t i = 0; i < p->n_arenas; i++) {
        tg_arena_free(p->arenas[i]);
        tg_free(p->arenas[i]);
    }
    free_arrays(p);
    tg_free(p);
}

size_t tg_policy_count(const struct tg_policy *p)
{
    return p ? p->n_rules : 0;
}

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
        nomem(&c);
        goto out;
    }
    tg_arena_init(c.arena, 16384);
    c.p->arenas[c.p->n_arenas++] = c.arena;
    if (!json_is_array(rules)) {
        int line = tg_config_lines_node(lines, rules);
        if (rules && !json_is_null(rules))
            err(&c, line, "must be a list of rules, not %s", tg_config_type_name(rules));
        else
            err(&c, line, "no rules (expected a list of rules)");
    } else if (json_array_size(rules) == 0) {
        err(&c, tg_config_lines_node(lines, rules), "the list of rules is empty");
    }
    for (size_t i = 0; i < json_array_size(rules) && !c.rc; i++)
        rule(&c, json_array_get(rules, i), eline(&c, rules, i, 0), i);
    if (!c.rc && !c.n_errs && policy_keywords_build(c.p))
        nomem(&c);
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

/* A new array holding a[0..na) then b[0..nb); NULL on allocation failure. */
static void *concat(const void *a, size_t na, const void *b, size_t nb, size_t elem)
{
    void *v = tg_malloc(TG_MAX(na + nb, 1) * elem);
    if (!v)
        return NULL;
    if (na)
        memcpy(v, a, na * elem);
    if (nb)
        memcpy((char *)v + na * elem, b, nb * elem);
    return v;
}

/* In m, a's arrays followed by b's: renumber what b's rules, nodes and kids refer to. */
static void shift_b(struct tg_policy *m, const struct tg_policy *a)
{
    for (size_t i = a->n_rules; i < m->n_rules; i++)
        m->rules[i].root += (uint32_t)a->n_nodes;
    for (size_t i = a->n_kids; i < m->n_kids; i++)
        m->kids[i] += (uint32_t)a->n_nodes;
    for (size_t i = a->n_nodes; i < m->n_nodes; i++) {
        struct policy_node *n = &m->nodes[i];
        if (n->kind == PC_ALL || n->kind == PC_ANY)
            n->a += (uint32_t)a->n_kids;
        else if (n->kind == PC_NOT)
            n->a += (uint32_t)a->n_nodes;
        else if (n->kind == PC_KEYWORDS || n->kind == PC_CONV_KEYWORDS ||
                 n->kind == PC_DRAFT_KEYWORDS || n->kind == PC_TOOL_KEYWORDS)
            n->a += (uint32_t)a->n_kw;
        else if (n->kind == PC_REGEX || n->kind == PC_DRAFT_REGEX || n->kind == PC_TOOL_REGEX)
            n->a += (uint32_t)a->n_rx;
    }
}

int tg_policy_merge(struct tg_policy *a, struct tg_policy *b)
{
    struct tg_policy m = {0};
    int rc = TG_E_NOMEM;
    TG_ASSERT(a != NULL);
    if (!b)
        return TG_OK;
    for (size_t i = 0; i < b->n_rules; i++) {
        for (size_t j = 0; j < a->n_rules; j++) {
            if (strcmp(a->rules[j].id, b->rules[i].id) == 0) {
                tg_error("policy: rule id '%s' is defined twice", b->rules[i].id);
                rc = TG_E_CONFIG;
                goto out;
            }
        }
    }
    m.rules = concat(a->rules, a->n_rules, b->rules, b->n_rules, sizeof(*m.rules));
    m.nodes = concat(a->nodes, a->n_nodes, b->nodes, b->n_nodes, sizeof(*m.nodes));
    m.kids = concat(a->kids, a->n_kids, b->kids, b->n_kids, sizeof(*m.kids));
    m.kw = concat(a->kw, a->n_kw, b->kw, b->n_kw, sizeof(*m.kw));
    m.rx = concat(a->rx, a->n_rx, b->rx, b->n_rx, sizeof(*m.rx));
    m.arenas = concat(a->arenas, a->n_arenas, b->arenas, b->n_arenas, sizeof(*m.arenas));
    if (!m.rules || !m.nodes || !m.kids || !m.kw || !m.rx || !m.arenas)
        goto out;
    m.n_rules = a->n_rules + b->n_rules;
    m.n_nodes = a->n_nodes + b->n_nodes;
    m.n_kids = a->n_kids + b->n_kids;
    m.n_kw = a->n_kw + b->n_kw;
    m.n_rx = a->n_rx + b->n_rx;
    m.n_arenas = a->n_arenas + b->n_arenas;
    m.n_stage[0] = a->n_stage[0] + b->n_stage[0];
    m.n_stage[1] = a->n_stage[1] + b->n_stage[1];
    m.tool_args = a->tool_args || b->tool_args;
    shift_b(&m, a);
    if (policy_keywords_build(&m))
        goto out;
    /* Committed: a takes b's regexes, arenas and, if it had none, match context. */
    m.mctx = a->mctx ? a->mctx : b->mctx;
    if (m.mctx == b->mctx)
        b->mctx = NULL;
    b->n_rx = 0;
    b->n_arenas = 0;
    free_arrays(a);
    *a = m;
    memset(&m, 0, sizeof(m));
    rc = TG_OK;
out:
    free_arrays(&m);
    tg_policy_free(b);
    return rc;
}
