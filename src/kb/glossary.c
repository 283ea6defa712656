/*
 * glossary.c - the metric glossary: what a business term means, what it
 * includes and excludes, and the other names customers use for it.
 *
 * A query that mentions an entry's term or any synonym (matched on the
 * normalized text; Latin-script forms only at word boundaries) gets the
 * tokens of the term and of every synonym added, so a document that uses
 * only one of the names is found by all of them, and the result lists the
 * entries used so an answer can cite their definitions.  An entry with
 * `cite: false` is a translation (the articles' Chinese term with its
 * English and Japanese names): a question in another language
 * (TG_KB_SEARCH_TRANSLATE) that says any of them is expanded with the term
 * alone, and the entry is never cited.
 */
#include "kb/kb_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        tg_free(v[i]);
    tg_free(v);
}

static void entry_free(struct kb_gloss *g)
{
    tg_free(g->term);
    tg_free(g->definition);
    strv_free(g->syn, g->nsyn);
    strv_free(g->inc, g->ninc);
    strv_free(g->exc, g->nexc);
    strv_free(g->forms, g->nforms);
    memset(g, 0, sizeof(*g));
}

static void entries_free(struct kb_gloss *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        entry_free(&v[i]);
    tg_free(v);
}

void kb_gloss_free(struct tg_kb *kb)
{
    entries_free(kb->gloss, kb->ngloss);
    kb->gloss = NULL;
    kb->ngloss = 0;
    json_decref(kb->gloss_json);
    kb->gloss_json = NULL;
}

struct where {
    const char *path;
    const struct tg_config_lines *lines;
    const json_t *list;
};

static void say(const struct where *w, size_t i, char *err, size_t errlen, const char *what)
{
    int line = w->lines ? tg_config_lines_elem(w->lines, w->list, i) : 0;
    if (line)
        snprintf(err, errlen, "%s:%d: glossary entry %zu: %s", w->path, line, i + 1, what);
    else
        snprintf(err, errlen, "%s[%zu]: %s", w->path, i, what);
}

/* A list of strings, or one string; absent gives an empty list. */
static int strv_from(const json_t *v, char ***out, size_t *n)
{
    size_t cnt = json_is_string(v) ? 1 : json_is_array(v) ? json_array_size(v) : 0;
    if (v && !json_is_null(v) && !json_is_string(v) && !json_is_array(v))
        return TG_E_CONFIG;
    char **sv = tg_calloc(cnt ? cnt : 1, sizeof(*sv));
    if (!sv)
        return TG_E_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < cnt; i++) {
        const json_t *e = json_is_string(v) ? v : json_array_get(v, i);
        if (!json_is_string(e)) {
            strv_free(sv, k);
            return TG_E_CONFIG;
        }
        if (!*json_string_value(e))
            continue;
        sv[k] = tg_strdup(json_string_value(e));
        if (!sv[k]) {
            strv_free(sv, k);
            return TG_E_NOMEM;
        }
        k++;
    }
    *out = sv;
    *n = k;
    return TG_OK;
}

static json_t *strv_json(char **v, size_t n)
{
    json_t *a = json_array();
    int rc = a ? TG_OK : TG_E_NOMEM;
    for (size_t i = 0; !rc && i < n; i++)
        rc = tg_json_push(a, json_string(v[i]));
    if (rc) {
        json_decref(a);
        a = NULL;
    }
    return a;
}

static int add_form(struct tg_kb *kb, struct kb_gloss *g, const char *s)
{
    int rc = kb_normalize(kb, s, strlen(s));
    if (rc)
        return rc;
    if (!kb->nbuf.len)
        return TG_OK;
    char *f = tg_strndup(kb->nbuf.data, kb->nbuf.len);
    if (!f)
        return TG_E_NOMEM;
    g->forms[g->nforms++] = f;
    return TG_OK;
}

static int make_entry(struct tg_kb *kb, const json_t *o, struct kb_gloss *g, const char **why)
{
    const json_t *term = json_object_get(o, "term");
    const json_t *def = json_object_get(o, "definition");
    const char *k;
    json_t *v;
    int rc;
    *why = NULL;
    if (!json_is_object(o)) {
        *why = "must be a mapping {term, definition, synonyms, includes, excludes, cite}";
        return TG_E_CONFIG;
    }
    json_object_foreach((json_t *)o, k, v)
    {
        if (strcmp(k, "term") && strcmp(k, "definition") && strcmp(k, "synonyms") &&
            strcmp(k, "includes") && strcmp(k, "excludes") && strcmp(k, "cite")) {
            *why = "unknown key (expected term, definition, synonyms, includes, excludes, cite)";
            return TG_E_CONFIG;
        }
    }
    const json_t *cite = json_object_get(o, "cite");
    if (cite && !json_is_boolean(cite)) {
        *why = "'cite' must be true or false";
        return TG_E_CONFIG;
    }
    g->cite = !cite || json_is_true(cite);
    if (!json_is_string(term) || !*json_string_value(term)) {
        *why = "needs a non-empty string 'term'";
        return TG_E_CONFIG;
    }
    if (def && !json_is_null(def) && !json_is_string(def)) {
        *why = "'definition' must be a string";
        return TG_E_CONFIG;
    }
    g->term = tg_strdup(json_string_value(term));
    g->definition = tg_strdup(json_is_string(def) ? json_string_value(def) : "");
    if (!g->term || !g->definition)
        return TG_E_NOMEM;
    rc = strv_from(json_object_get(o, "synonyms"), &g->syn, &g->nsyn);
    if (!rc)
        rc = strv_from(json_object_get(o, "includes"), &g->inc, &g->ninc);
    if (!rc)
        rc = strv_from(json_object_get(o, "excludes"), &g->exc, &g->nexc);
    if (rc == TG_E_CONFIG)
        *why = "synonyms, includes and excludes must be lists of strings";
    if (rc)
        return rc;
    g->forms = tg_calloc(g->nsyn + 1, sizeof(char *));
    if (!g->forms)
        return TG_E_NOMEM;
    rc = add_form(kb, g, g->term);
    g->term_form = g->nforms == 1;
    for (size_t i = 0; i < g->nsyn && !rc; i++)
        rc = add_form(kb, g, g->syn[i]);
    g->view = (struct tg_kb_term){
        .term = g->term,
        .definition = g->definition,
        .synonyms = (const char *const *)g->syn,
        .n_synonyms = g->nsyn,
        .includes = (const char *const *)g->inc,
        .n_includes = g->ninc,
        .excludes = (const char *const *)g->exc,
        .n_excludes = g->nexc,
        .cite = g->cite,
    };
    return rc;
}

static int set_list(struct tg_kb *kb, const json_t *root, const struct where *w0, char *err,
                    size_t errlen)
{
    struct where w = *w0;
    const json_t *list = root;
    struct kb_gloss *v = NULL;
    json_t *copy = NULL;
    size_t n = 0;
    int rc = TG_OK;
    if (json_is_object(root)) {
        list = json_object_get(root, "glossary");
        if (!list)
            list = json_object_get(root, "terms");
    }
    if (!json_is_array(list)) {
        snprintf(err, errlen,
                 "%s: a glossary is a list of {term, definition, synonyms, "
                 "includes, excludes}",
                 w.path);
        return TG_E_CONFIG;
    }
    w.list = list;
    size_t cnt = json_array_size(list);
    v = tg_calloc(cnt ? cnt : 1, sizeof(*v));
    copy = json_array();
    if (!v || !copy) {
        rc = TG_E_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < cnt && !rc; i++) {
        const char *why = NULL;
        rc = make_entry(kb, json_array_get(list, i), &v[i], &why);
        n = i + 1;
        if (rc) {
            say(&w, i, err, errlen, why ? why : tg_err_str(rc));
            break;
        }
        json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:b}", "term", v[i].term, "definition",
                              v[i].definition, "synonyms", strv_json(v[i].syn, v[i].nsyn),
                              "includes", strv_json(v[i].inc, v[i].ninc), "excludes",
                              strv_json(v[i].exc, v[i].nexc), "cite", v[i].cite);
        rc = tg_json_push(copy, o);
    }
out:
    if (rc) {
        entries_free(v, n);
        json_decref(copy);
        return rc;
    }
    kb_gloss_free(kb);
    kb->gloss = v;
    kb->ngloss = cnt;
    kb->gloss_json = copy;
    kb->gloss_unsaved = true;
    return TG_OK;
}

int tg_kb_glossary_set(struct tg_kb *kb, const json_t *list, char *err, size_t errlen)
{
    struct where w = {.path = "glossary"};
    return set_list(kb, list, &w, err, errlen);
}

int tg_kb_glossary_load(struct tg_kb *kb, const char *path, char *err, size_t errlen)
{
    json_t *root = NULL, *errs = json_array();
    struct tg_config_lines *lines = NULL;
    int rc = errs ? tg_config_parse_yaml(path, &root, &lines, errs) : TG_E_NOMEM;
    if (rc) {
        const char *first = json_string_value(json_array_get(errs, 0));
        snprintf(err, errlen, "%s", first ? first : tg_err_str(rc));
    } else {
        struct where w = {.path = path, .lines = lines};
        rc = set_list(kb, root, &w, err, errlen);
    }
    json_decref(root);
    json_decref(errs);
    tg_config_lines_free(lines);
    return rc;
}

size_t tg_kb_glossary_count(const struct tg_kb *kb)
{
    return kb->ngloss;
}

const struct tg_kb_term *tg_kb_glossary_get(const struct tg_kb *kb, size_t i)
{
    return i < kb->ngloss ? &kb->gloss[i].view : NULL;
}

static bool word_byte(unsigned char c)
{
    return isalnum(c) || c == '_';
}

/* Does the normalized query q mention form f (Latin words only whole)? */
static bool mentions(const char *q, size_t qlen, const char *f)
{
    size_t flen = strlen(f);
    const char *p = q, *end = q + qlen;
    while (flen && (size_t)(end - p) >= flen) {
        const char *hit = memmem(p, (size_t)(end - p), f, flen);
        if (!hit)
            return false;
        bool left =
            hit == q || !word_byte((unsigned char)f[0]) || !word_byte((unsigned char)hit[-1]);
        bool right = hit + flen == end || !word_byte((unsigned char)f[flen - 1]) ||
                     !word_byte((unsigned char)hit[flen]);
        if (left && right)
            return true;
        p = hit + 1;
    }
    return false;
}

static int note_used(struct tg_kb_result *res, uint32_t i)
{
    if (tg_grow(&res->glossary, &res->cap_glossary, res->n_glossary, sizeof(*res->glossary), 8))
        return TG_E_NOMEM;
    res->glossary[res->n_glossary++] = i;
    return TG_OK;
}

int kb_gloss_expand(struct tg_kb *kb, struct tg_kb_result *res, unsigned flags)
{
    int rc = TG_OK;
    for (size_t i = 0; i < kb->ngloss && !rc; i++) {
        const struct kb_gloss *g = &kb->gloss[i];
        bool used = false;
        if (!g->cite && !(flags & TG_KB_SEARCH_TRANSLATE))
            continue;
        for (size_t f = 0; f < g->nforms && !used; f++)
            used = mentions(kb->nbuf.data, kb->nbuf.len, g->forms[f]);
        if (!used)
            continue;
        if (g->cite)
            rc = note_used(res, (uint32_t)i);
        /* a translation leads to the articles' word only: its other names
         * would pull a Chinese question toward the English articles */
        size_t nf = g->cite ? g->nforms : g->term_form ? 1 : 0;
        for (size_t f = 0; f < nf && !rc; f++) {
            tg_tokens_reset(&kb->toks);
            rc = tg_text_tokenize(kb->tx, g->forms[f], strlen(g->forms[f]), kb->opts.token_flags,
                                  &kb->toks);
            if (!rc)
                rc = kb_token_ids(kb, &kb->toks, false);
        }
    }
    return rc;
}
