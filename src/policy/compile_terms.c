/*
 * compile_terms.c - what the keyword and regex tests of policy rules match
 * (compile_int.h): keyword lists written in the rule or read from a file,
 * one term a line, lower-cased for ASCII; regexes compiled with PCRE2 (UTF,
 * invalid UTF-8 tolerated, a match limit) and JIT-compiled, each equal
 * pattern on the same text compiled once.
 */
#include "policy/compile_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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
            cctx_nomem(c);
            return false;
        }
        t->lens = l;
        t->cap = nc;
    }
    char *d = cctx_adup(c, s, len);
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
    const char *name = cctx_get_text(c, v, line, what);
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
        cctx_nomem(c);
        goto out;
    }
    if (rc) {
        cctx_err(c, line, "%s: path too long", what);
        goto out;
    }
    text = read_file(path.data, &len);
    if (!text) {
        if (errno == ENOMEM)
            cctx_nomem(c);
        else
            cctx_err(c, line, "cannot read keyword file '%s': %s", path.data, strerror(errno));
        goto out;
    }
    size_t before = t->n;
    if (!split_lines(c, text, len, t))
        goto out;
    if (t->n == before) {
        cctx_err(c, line, "keyword file '%s' holds no terms", path.data);
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
        cctx_err(c, line, "%s is an empty list", what);
        return false;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *e = json_array_get(v, i);
        int el = cctx_eline(c, v, i, line);
        char num[32];
        if (json_is_integer(e)) {
            int n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(e));
            ok = add_term(c, t, num, (size_t)n) && ok;
        } else if (!json_is_string(e)) {
            cctx_type_err(c, el, what, "a list of strings", e);
            ok = false;
        } else if (json_string_length(e) == 0) {
            cctx_err(c, el, "%s: a keyword must not be empty", what);
            ok = false;
        } else {
            ok = add_term(c, t, json_string_value(e), json_string_length(e)) && ok;
        }
    }
    return ok;
}

/* keywords: [TERMS...] | TERM | {file: PATH} -> a new keyword leaf. */
bool compile_keywords(struct cctx *c, const json_t *v, int line, const char *what, uint8_t field,
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
        if (cctx_check_keys(c, v, what, file_keys, 1))
            goto out;
        const json_t *f = json_object_get(v, "file");
        if (!f) {
            cctx_err(c, line, "%s needs a list of terms or {file: PATH}", what);
            goto out;
        }
        snprintf(w, sizeof(w), "%s.file", what);
        ok = keyword_file(c, f, cctx_kline(c, v, "file"), w, &t);
    } else {
        cctx_type_err(c, line, what, "a list of terms or {file: PATH}", v);
    }
    if (!ok || c->rc)
        goto out;
    ok = false;
    struct policy_kw *kw;
    const char **terms = tg_arena_alloc(c->arena, t.n * sizeof(*terms));
    uint32_t *lens = tg_arena_alloc(c->arena, t.n * sizeof(*lens));
    if (!terms || !lens || !cctx_room(c, &c->p->kw, c->p->n_kw, &c->cap_kw, sizeof(*kw))) {
        cctx_nomem(c);
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
        cctx_nomem(c);
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
        cctx_err(c, line, "%s.on: draft is only known in post rules (stage: post)", what);
        return false;
    } else {
        cctx_err(c, line, "%s.on must be text, norm or draft", what);
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
        bool ok = cctx_check_keys(c, v, what, keys, fixed ? 1 : 2) == 0;
        const json_t *on = json_object_get(v, "on");
        if (on && !fixed)
            ok = regex_on(c, on, cctx_kline(c, v, "on"), what, field) && ok;
        pat = json_object_get(v, "pattern");
        if (!pat) {
            cctx_err(c, *line, "%s needs a pattern", what);
            return NULL;
        }
        *line = cctx_kline(c, v, "pattern");
        if (!ok)
            return NULL;
    }
    if (!json_is_string(pat) || json_string_length(pat) == 0) {
        if (json_is_string(pat))
            cctx_err(c, *line, "%s: the pattern must not be empty", what);
        else
            cctx_type_err(c, *line, what, "a pattern or {pattern, on}", pat);
        return NULL;
    }
    return pat;
}

/*
 * regex: PATTERN | {pattern: P, on: norm|text|draft} -> a regex leaf
 * (shared when equal); draft.regex and tool.arguments.regex: PATTERN |
 * {pattern: P} on their own field.
 */
bool compile_regex(struct cctx *c, const json_t *v, int line, const char *what, uint8_t field_in,
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
            cctx_nomem(c);
            return false;
        }
        if (pcre2_get_error_message(code_err, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", code_err);
        cctx_err(c, line, "%s: bad pattern: %s at offset %zu", what, (const char *)msg,
                 (size_t)off);
        return false;
    }
    /* Without JIT (no executable memory) the interpreter still matches. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    const char *copy = cctx_adup(c, ps, plen);
    if (!copy || !cctx_room(c, &c->p->rx, c->p->n_rx, &c->cap_rx, sizeof(*c->p->rx))) {
        pcre2_code_free(code);
        return false;
    }
    c->p->rx[c->p->n_rx] =
        (struct policy_rx){.code = code, .pattern = copy, .pattern_len = plen, .field = field};
    *leaf = (uint32_t)c->p->n_rx++;
    c->p->tool_args = c->p->tool_args || field == PF_TOOL;
    return true;
}
