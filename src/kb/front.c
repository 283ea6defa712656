/*
 * front.c - a Markdown article's front matter: the intents the deployment
 * gives the article and its sections.
 *
 * The block is the article's first lines, between two lines "---":
 *
 *   ---
 *   intent: policy_coverage
 *   sections:
 *     责任免除: policy_exclusions
 *   ---
 *
 * `intent` labels every chunk of the article; `sections` maps the text of
 * a heading to the intent of the chunks under it (the deepest heading of
 * a chunk's path that is named wins).  Nothing else may appear (blank
 * lines and "#" comments aside), so a typo is an error with file:line
 * rather than a silently unlabelled article.  The labels train the intent
 * classifier and let the knowledge base's nearest passages vote on a
 * question's intent (stage_understand.c).
 */
#include "kb/kb_int.h"

#include <stdio.h>
#include <string.h>

static bool line_is(const char *s, size_t n, const char *want)
{
    while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return n == strlen(want) && memcmp(s, want, n) == 0;
}

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' || (*s)[*n - 1] == '\r'))
        (*n)--;
    if (*n >= 2 && ((**s == '"' && (*s)[*n - 1] == '"') || (**s == '\'' && (*s)[*n - 1] == '\''))) {
        (*s)++;
        *n -= 2;
    }
}

/* An intent name: letters, digits, '_', '-', '.'. */
static bool is_name(const char *s, size_t n)
{
    if (!n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

static int add_section(struct kb_front *fm, const char *k, size_t kn, const char *v, size_t vn,
                       int line)
{
    if (tg_grow(&fm->sec, &fm->cap, fm->n, sizeof(*fm->sec), 8))
        return TG_E_NOMEM;
    struct kb_front_section *s = &fm->sec[fm->n];
    *s = (struct kb_front_section){.heading = tg_strndup(k, kn), .intent = tg_strndup(v, vn),
                                   .line = line};
    if (!s->heading || !s->intent) {
        tg_free(s->heading);
        tg_free(s->intent);
        return TG_E_NOMEM;
    }
    fm->n++;
    return TG_OK;
}

static int bad(const char *path, int line, char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s:%d: %s", path, line, msg);
    return TG_E_PARSE;
}

/* One line of the block (without its newline); *in_sections carries the
 * "sections:" state. */
static int front_line(const char *path, int line, const char *s, size_t n, bool *in_sections,
                      struct kb_front *fm, char *err, size_t errlen)
{
    const char *colon = memchr(s, ':', n);
    bool indented = n && (s[0] == ' ' || s[0] == '\t');
    const char *k = s, *v;
    size_t kn, vn;
    /* a heading may hold ':' itself: a section's key ends at its last ": " */
    if (indented && *in_sections) {
        const char *c = NULL;
        for (size_t i = 0; i + 1 < n; i++)
            if (s[i] == ':' && (s[i + 1] == ' ' || s[i + 1] == '\t'))
                c = s + i;
        if (!c && n && s[n - 1] == ':')
            c = s + n - 1;
        colon = c;
    }
    if (!colon)
        return bad(path, line, err, errlen, "front matter: expected \"key: value\"");
    kn = (size_t)(colon - s);
    v = colon + 1;
    vn = n - kn - 1;
    trim(&k, &kn);
    trim(&v, &vn);
    if (indented) {
        if (!*in_sections)
            return bad(path, line, err, errlen, "front matter: an indented line outside sections:");
        if (!kn)
            return bad(path, line, err, errlen, "front matter: a section needs its heading");
        if (!is_name(v, vn))
            return bad(path, line, err, errlen, "front matter: a section needs an intent name");
        return add_section(fm, k, kn, v, vn, line);
    }
    *in_sections = false;
    if (kn == 6 && memcmp(k, "intent", 6) == 0) {
        if (!is_name(v, vn))
            return bad(path, line, err, errlen, "front matter: intent needs an intent name");
        tg_free(fm->intent);
        fm->intent = tg_strndup(v, vn);
        fm->intent_line = line;
        return fm->intent ? TG_OK : TG_E_NOMEM;
    }
    if (kn == 8 && memcmp(k, "sections", 8) == 0) {
        if (vn)
            return bad(path, line, err, errlen, "front matter: sections: is a mapping below it");
        *in_sections = true;
        return TG_OK;
    }
    return bad(path, line, err, errlen,
               "front matter: unknown key (intent and sections are the ones known)");
}

int kb_front_parse(const char *path, const char *text, size_t len, struct kb_front *fm, char *err,
                   size_t errlen)
{
    memset(fm, 0, sizeof(*fm));
    const char *nl = memchr(text, '\n', len);
    size_t first = nl ? (size_t)(nl - text) : len;
    if (!len || !line_is(text, first, "---"))
        return TG_OK;
    bool in_sections = false;
    int line = 1, rc = TG_OK;
    for (size_t ls = nl ? first + 1 : len; ls < len && !rc;) {
        nl = memchr(text + ls, '\n', len - ls);
        size_t le = nl ? (size_t)(nl - text) : len;
        const char *s = text + ls;
        size_t n = le - ls;
        line++;
        if (line_is(s, n, "---")) {
            fm->skip = nl ? le + 1 : len;
            return TG_OK;
        }
        const char *t = s;
        size_t tn = n;
        trim(&t, &tn);
        if (tn && t[0] != '#')
            rc = front_line(path, line, s, n, &in_sections, fm, err, errlen);
        ls = nl ? le + 1 : len;
    }
    if (!rc)
        rc = bad(path, 1, err, errlen, "front matter: no closing \"---\" line");
    kb_front_free(fm);
    return rc;
}

void kb_front_free(struct kb_front *fm)
{
    for (size_t i = 0; i < fm->n; i++) {
        tg_free(fm->sec[i].heading);
        tg_free(fm->sec[i].intent);
    }
    tg_free(fm->sec);
    tg_free(fm->intent);
    memset(fm, 0, sizeof(*fm));
}

/* Whether component [s, s+n) of a heading path is the section's heading. */
static bool component_is(const char *s, size_t n, const char *heading)
{
    trim(&s, &n);
    return n == strlen(heading) && memcmp(s, heading, n) == 0;
}

const char *kb_front_intent(struct kb_front *fm, const char *path)
{
    const char *best = fm->intent;
    size_t best_depth = 0, depth = 0;
    for (const char *s = path ? path : ""; *s;) {
        const char *sep = strstr(s, " > ");
        size_t n = sep ? (size_t)(sep - s) : strlen(s);
        depth++;
        for (size_t i = 0; i < fm->n; i++)
            if (component_is(s, n, fm->sec[i].heading) && depth > best_depth) {
                best = fm->sec[i].intent;
                best_depth = depth;
            }
        s += n + (sep ? 3 : 0);
    }
    return best;
}

/* Mark the sections whose heading is the ATX heading on [s, s+n). */
static void mark_heading(struct kb_front *fm, const char *s, size_t n)
{
    size_t i = 0, hashes = 0;
    while (i < n && i < 3 && s[i] == ' ')
        i++;
    while (i < n && s[i] == '#' && hashes < 7) {
        i++;
        hashes++;
    }
    if (!hashes || hashes > 6 || (i < n && s[i] != ' ' && s[i] != '\t'))
        return;
    const char *t = s + i;
    size_t tn = n - i;
    trim(&t, &tn);
    while (tn && t[tn - 1] == '#')
        tn--;
    trim(&t, &tn);
    for (size_t k = 0; k < fm->n; k++)
        if (tn == strlen(fm->sec[k].heading) && memcmp(t, fm->sec[k].heading, tn) == 0)
            fm->sec[k].used = true;
}

int kb_front_check(const char *path, struct kb_front *fm, const char *body, size_t len, char *err,
                   size_t errlen)
{
    for (size_t ls = 0; ls < len;) {
        const char *nl = memchr(body + ls, '\n', len - ls);
        size_t le = nl ? (size_t)(nl - body) : len;
        mark_heading(fm, body + ls, le - ls);
        ls = nl ? le + 1 : len;
    }
    for (size_t i = 0; i < fm->n; i++)
        if (!fm->sec[i].used)
            return bad(path, fm->sec[i].line, err, errlen,
                       "front matter: the article has no heading of that name");
    return TG_OK;
}
