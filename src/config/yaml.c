/*
 * yaml.c - YAML (and therefore JSON) text to a jansson tree, with the source
 * line of every node kept in a side table.
 *
 * libyaml's event parser drives a small stack machine: each mapping or list
 * start pushes a frame, each end pops it and hands the finished node to the
 * frame below.  Problems that do not break the syntax (duplicate keys,
 * anchors, aliases, tags, nesting too deep) are collected and parsing goes
 * on, so one run reports them all; a syntax error from libyaml stops it.
 *
 * The line table is an open-addressing hash keyed by (node) for nodes, by
 * (mapping, key) for keys and by (list, index) for elements.  Nodes dropped
 * from the tree are "retired" into the table instead of freed so no record
 * can ever describe a reused address.
 */
#include "config/config_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <yaml.h>

/* ------------------------------------------------------------ line table */

#define NODE_RECORD SIZE_MAX

struct line_ent {
    const json_t *node; /* NULL: empty slot */
    char *key;          /* key records: the key (owned); otherwise NULL */
    size_t index;       /* element records: the index; node records: NODE_RECORD */
    int line;
    unsigned flags;
};

struct tg_config_lines {
    struct line_ent *ents;
    size_t cap; /* a power of two, or 0 */
    size_t used;
    json_t *retired; /* list of nodes kept alive, see tg_config_lines_retire() */
};

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t ent_hash(const json_t *node, const char *key, size_t index)
{
    uint64_t h = mix64((uint64_t)(uintptr_t)node);
    if (key) {
        h ^= tg_fnv1a64(key, strlen(key), TG_FNV64_INIT);
    } else {
        h ^= mix64((uint64_t)index + 0x9e3779b97f4a7c15ULL);
    }
    return mix64(h);
}

static bool ent_match(const struct line_ent *e, const json_t *node, const char *key, size_t index)
{
    if (e->node != node)
        return false;
    if (key)
        return e->key && strcmp(e->key, key) == 0;
    return !e->key && e->index == index;
}

/* The record for (node, key, index), or the empty slot where it belongs. */
static struct line_ent *ent_find(const struct tg_config_lines *l, const json_t *node,
                                 const char *key, size_t index)
{
    size_t mask = l->cap - 1;
    size_t i = (size_t)ent_hash(node, key, index) & mask;
    while (l->ents[i].node && !ent_match(&l->ents[i], node, key, index))
        i = (i + 1) & mask;
    return &l->ents[i];
}

static int ent_grow(struct tg_config_lines *l)
{
    size_t ncap = l->cap ? l->cap * 2 : 64;
    struct line_ent *old = l->ents;
    size_t ocap = l->cap;
    struct line_ent *ents = tg_calloc(ncap, sizeof(*ents));
    if (!ents)
        return TG_E_NOMEM;
    l->ents = ents;
    l->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (old[i].node)
            *ent_find(l, old[i].node, old[i].key, old[i].index) = old[i];
    }
    tg_free(old);
    return TG_OK;
}

static int ent_set(struct tg_config_lines *l, const json_t *node, const char *key, size_t index,
                   int line, unsigned flags)
{
    int rc = TG_OK;
    if ((l->used + 1) * 2 > l->cap) {
        rc = ent_grow(l);
        if (rc)
            goto out;
    }
    struct line_ent *e = ent_find(l, node, key, index);
    if (!e->node) {
        char *k = NULL;
        if (key) {
            k = tg_strdup(key);
            if (!k) {
                rc = TG_E_NOMEM;
                goto out;
            }
        }
        e->node = node;
        e->key = k;
        e->index = index;
        l->used++;
    }
    e->line = line;
    e->flags = flags;
out:
    return rc;
}

static const struct line_ent *ent_get(const struct tg_config_lines *l, const json_t *node,
                                      const char *key, size_t index)
{
    if (!l || !node || l->cap == 0)
        return NULL;
    const struct line_ent *e = ent_find(l, node, key, index);
    return e->node ? e : NULL;
}

struct tg_config_lines *tg_config_lines_new(void)
{
    struct tg_config_lines *l = tg_calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->retired = json_array();
    if (!l->retired) {
        tg_free(l);
        return NULL;
    }
    return l;
}

void tg_config_lines_free(struct tg_config_lines *lines)
{
    if (!lines)
        return;
    for (size_t i = 0; i < lines->cap; i++)
        tg_free(lines->ents[i].key);
    tg_free(lines->ents);
    json_decref(lines->retired);
    tg_free(lines);
}

static bool is_singleton(const json_t *node)
{
    return json_is_null(node) || json_is_boolean(node);
}

int tg_config_lines_set_node(struct tg_config_lines *l, const json_t *node, int line,
                             unsigned flags)
{
    if (is_singleton(node))
        return TG_OK;
    return ent_set(l, node, NULL, NODE_RECORD, line, flags);
}

int tg_config_lines_set_key(struct tg_config_lines *l, const json_t *obj, const char *key, int line)
{
    return ent_set(l, obj, key, 0, line, 0);
}

int tg_config_lines_set_elem(struct tg_config_lines *l, const json_t *arr, size_t index, int line)
{
    return ent_set(l, arr, NULL, index, line, 0);
}

int tg_config_lines_node(const struct tg_config_lines *lines, const json_t *node)
{
    if (!node || is_singleton(node))
        return 0;
    const struct line_ent *e = ent_get(lines, node, NULL, NODE_RECORD);
    return e ? e->line : 0;
}

unsigned tg_config_lines_flags(const struct tg_config_lines *l, const json_t *node)
{
    if (!node || is_singleton(node))
        return 0;
    const struct line_ent *e = ent_get(l, node, NULL, NODE_RECORD);
    return e ? e->flags : 0;
}

int tg_config_lines_key(const struct tg_config_lines *lines, const json_t *obj, const char *key)
{
    if (!key)
        return 0;
    const struct line_ent *e = ent_get(lines, obj, key, 0);
    return e ? e->line : 0;
}

int tg_config_lines_elem(const struct tg_config_lines *lines, const json_t *arr, size_t index)
{
    if (index == NODE_RECORD)
        return 0;
    const struct line_ent *e = ent_get(lines, arr, NULL, index);
    return e ? e->line : 0;
}

int tg_config_lines_retire(struct tg_config_lines *l, json_t *node)
{
    if (json_array_append_new(l->retired, node))
        return TG_E_NOMEM;
    return TG_OK;
}

/* ------------------------------------------------------------ plain scalars */

static bool eq_nocase_n(const char *s, size_t len, const char *word)
{
    size_t wl = strlen(word);
    if (len != wl)
        return false;
    for (size_t i = 0; i < len; i++) {
        char a = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
        if (a != word[i])
            return false;
    }
    return true;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* [-+]?[0-9]+ */
static bool looks_int(const char *s, size_t len)
{
    size_t i = 0;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        i++;
    if (i == len)
        return false;
    for (; i < len; i++) {
        if (!is_digit(s[i]))
            return false;
    }
    return true;
}

static size_t skip_digits(const char *s, size_t len, size_t i)
{
    while (i < len && is_digit(s[i]))
        i++;
    return i;
}

/* [-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)? - no hex, inf or nan. */
static bool looks_real(const char *s, size_t len)
{
    size_t i = 0, digits;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        i++;
    size_t j = skip_digits(s, len, i);
    digits = j - i;
    i = j;
    if (i < len && s[i] == '.') {
        j = skip_digits(s, len, i + 1);
        digits += j - i - 1;
        i = j;
    }
    if (digits == 0)
        return false;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '-' || s[i] == '+'))
            i++;
        j = skip_digits(s, len, i);
        if (j == i)
            return false;
        i = j;
    }
    return i == len;
}

json_t *tg_config_plain_scalar(const char *s, size_t len)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    char tmp[64];

    if (len == 0 || (len == 1 && s[0] == '~') || eq_nocase_n(s, len, "null"))
        return json_null();
    for (size_t i = 0; i < TG_ARRAY_LEN(yes); i++) {
        if (eq_nocase_n(s, len, yes[i]))
            return json_true();
        if (eq_nocase_n(s, len, no[i]))
            return json_false();
    }
    if (len < sizeof(tmp) && looks_real(s, len)) {
        memcpy(tmp, s, len);
        tmp[len] = '\0';
        int64_t i64;
        double d;
        /* An integer too large for int64 falls through to a real. */
        if (looks_int(s, len) && tg_parse_i64(tmp, &i64) == TG_OK)
            return json_integer((json_int_t)i64);
        if (tg_parse_double(tmp, &d) == TG_OK)
            return json_real(d);
    }
    return json_stringn(s, len);
}

/* ------------------------------------------------------------ the parser */

struct frame {
    json_t *node; /* a mapping or a list */
    char *key;    /* mapping: the key waiting for its value */
    int key_line;
    bool want_key; /* mapping: the next node is a key */
    bool drop;     /* mapping: the pending key was rejected, drop its value */
};

struct pstate {
    const char *path;
    json_t *errs;
    struct tg_config_lines *lines;
    struct frame stack[TG_CONFIG_MAX_DEPTH];
    size_t depth;
    size_t skip; /* > 0 while skipping a subtree nested too deeply */
    json_t *root;
    size_t n_docs;
    size_t n_err;
};

static int perr(struct pstate *st, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int perr(struct pstate *st, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = tg_config_verrorf(st->errs, st->path, line, 0, fmt, ap);
    va_end(ap);
    st->n_err++;
    return rc;
}

static int mark_line(const yaml_mark_t *m)
{
    return m->line >= (size_t)INT32_MAX ? INT32_MAX : (int)m->line + 1;
}

/* Hand a finished node (stolen) to the frame below it, or make it the root. */
static int add_node(struct pstate *st, json_t *node, int line)
{
    int rc = TG_OK;
    if (st->depth == 0) {
        if (st->root)
            rc = tg_config_lines_retire(st->lines, node);
        else
            st->root = node;
        goto out;
    }
    struct frame *f = &st->stack[st->depth - 1];
    if (json_is_array(f->node)) {
        if (json_array_append_new(f->node, node)) {
            rc = TG_E_NOMEM;
            goto out;
        }
        rc = tg_config_lines_set_elem(st->lines, f->node, json_array_size(f->node) - 1, line);
    } else if (f->want_key) {
        /* A mapping or list used as a key: already reported; its value goes too. */
        rc = tg_config_lines_retire(st->lines, node);
        f->want_key = false;
    } else if (f->drop) {
        rc = tg_config_lines_retire(st->lines, node);
        f->drop = false;
        f->want_key = true;
    } else {
        if (json_object_set_new(f->node, f->key, node)) {
            rc = TG_E_NOMEM;
        } else {
            rc = tg_config_lines_set_key(st->lines, f->node, f->key, f->key_line);
        }
        tg_free(f->key);
        f->key = NULL;
        f->want_key = true;
    }
out:
    return rc;
}

static bool top_wants_key(const struct pstate *st)
{
    return st->depth > 0 && json_is_object(st->stack[st->depth - 1].node) &&
           st->stack[st->depth - 1].want_key;
}

static int on_key(struct pstate *st, const yaml_event_t *ev, int line)
{
    int rc = TG_OK;
    struct frame *f = &st->stack[st->depth - 1];
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;

    f->want_key = false;
    if (memchr(v, '\0', len)) {
        rc = perr(st, line, "a key must not contain a NUL character");
        f->drop = true;
        goto out;
    }
    if (json_object_get(f->node, v)) {
        rc = perr(st, line, "duplicate key '%s' (first at line %d)", v,
                  tg_config_lines_key(st->lines, f->node, v));
        f->drop = true;
        goto out;
    }
    f->key = tg_strndup(v, len);
    f->key_line = line;
    if (!f->key)
        rc = TG_E_NOMEM;
out:
    return rc;
}

static bool is_str_tag(const char *tag)
{
    return strcmp(tag, "!") == 0 || strcmp(tag, YAML_STR_TAG) == 0;
}

static int on_scalar(struct pstate *st, const yaml_event_t *ev)
{
    int rc = TG_OK;
    int line = mark_line(&ev->start_mark);
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tag;
    json_t *node = NULL;

    if (ev->data.scalar.anchor) {
        rc = perr(st, line, "anchors (&%s) are not supported", ev->data.scalar.anchor);
        if (rc)
            goto out;
    }
    if (tag && !is_str_tag(tag)) {
        rc = perr(st, line, "tag '%s' is not supported (only !!str)", tag);
        if (rc)
            goto out;
    }
    if (top_wants_key(st)) {
        rc = on_key(st, ev, line);
        goto out;
    }
    if (memchr(v, '\0', len)) {
        rc = perr(st, line, "a value must not contain a NUL character");
        if (rc)
            goto out;
        plain = false;
        len = strlen(v);
    }
    node = plain ? tg_config_plain_scalar(v, len) : json_stringn(v, len);
    if (!node) {
        rc = TG_E_NOMEM;
        goto out;
    }
    rc = tg_config_lines_set_node(st->lines, node, line,
                                  plain && json_is_string(node) ? TG_LINE_PLAIN : 0);
    if (rc) {
        json_decref(node);
        goto out;
    }
    rc = add_node(st, node, line);
out:
    return rc;
}

static int on_alias(struct pstate *st, const yaml_event_t *ev)
{
    int line = mark_line(&ev->start_mark);
    int rc = perr(st, line, "aliases (*%s) are not supported", ev->data.alias.anchor);
    if (rc)
        return rc;
    if (top_wants_key(st)) {
        st->stack[st->depth - 1].want_key = false;
        st->stack[st->depth - 1].drop = true;
        return TG_OK;
    }
    return add_node(st, json_null(), line);
}

static int on_start(struct pstate *st, const yaml_event_t *ev, bool mapping)
{
    int rc = TG_OK;
    int line = mark_line(&ev->start_mark);
    const char *anchor =
        (const char *)(mapping ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor);
    const char *tag =
        (const char *)(mapping ? ev->data.mapping_start.tag : ev->data.sequence_start.tag);
    const char *std_tag = mapping ? YAML_MAP_TAG : YAML_SEQ_TAG;

    if (st->skip) {
        st->skip++;
        goto out;
    }
    if (anchor) {
        rc = perr(st, line, "anchors (&%s) are not supported", anchor);
        if (rc)
            goto out;
    }
    if (tag && strcmp(tag, std_tag) != 0 && strcmp(tag, "!") != 0) {
        rc = perr(st, line, "tag '%s' is not supported", tag);
        if (rc)
            goto out;
    }
    if (top_wants_key(st)) {
        rc = perr(st, line, "a key must be a plain value, not a %s", mapping ? "mapping" : "list");
        if (rc)
            goto out;
        st->stack[st->depth - 1].drop = true;
    }
    if (st->depth == TG_CONFIG_MAX_DEPTH) {
        rc = perr(st, line, "nested deeper than %d levels", TG_CONFIG_MAX_DEPTH);
        st->skip = 1;
        goto out;
    }
    json_t *node = mapping ? json_object() : json_array();
    if (!node) {
        rc = TG_E_NOMEM;
        goto out;
    }
    st->stack[st->depth] = (struct frame){.node = node, .want_key = mapping};
    st->depth++;
    rc = tg_config_lines_set_node(st->lines, node, line, 0);
out:
    return rc;
}

static int on_end(struct pstate *st, const yaml_event_t *ev)
{
    if (st->skip) {
        st->skip--;
        return st->skip ? TG_OK : add_node(st, json_null(), mark_line(&ev->start_mark));
    }
    struct frame *f = &st->stack[st->depth - 1];
    json_t *node = f->node;
    tg_free(f->key);
    *f = (struct frame){0};
    st->depth--;
    return add_node(st, node, tg_config_lines_node(st->lines, node));
}

/* Report libyaml's own error as "FILE:LINE:COLUMN: problem (context)". */
static int report_syntax(struct pstate *st, const yaml_parser_t *p, const char *buf, size_t len)
{
    size_t line = 1, col = 1;
    if (p->error == YAML_MEMORY_ERROR)
        return TG_E_NOMEM;
    if (p->error == YAML_READER_ERROR) {
        /* The reader reports a byte offset only. */
        for (size_t i = 0; i < p->problem_offset && i < len; i++) {
            if (buf[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
    } else {
        line = p->problem_mark.line + 1;
        col = p->problem_mark.column + 1;
    }
    st->n_err++;
    const char *problem = p->problem ? p->problem : "syntax error";
    const char *hint = "";
    if (p->error != YAML_READER_ERROR && p->problem_mark.index < len &&
        buf[p->problem_mark.index] == '\t')
        hint = "; YAML indentation must use spaces, not tabs";
    if (p->context && p->error != YAML_READER_ERROR)
        return tg_config_errorf_at(st->errs, st->path, (int)line, (int)col, "%s (%s at line %zu)%s",
                                   problem, p->context, p->context_mark.line + 1, hint);
    return tg_config_errorf_at(st->errs, st->path, (int)line, (int)col, "%s%s", problem, hint);
}

static int read_file(const char *path, struct tg_buf *b, json_t *errs)
{
    int rc = TG_OK;
    char chunk[8192];
    FILE *f = fopen(path, "rb");
    if (!f) {
        rc = TG_E_IO;
        tg_config_errorf(errs, path, 0, "cannot open: %s", strerror(errno));
        goto out;
    }
    for (;;) {
        size_t n = fread(chunk, 1, sizeof(chunk), f);
        if (n == 0)
            break;
        rc = tg_buf_append(b, chunk, n);
        if (rc == TG_E_TOOBIG) {
            rc = TG_E_CONFIG;
            tg_config_errorf(errs, path, 0, "file is larger than %u bytes", TG_CONFIG_MAX_FILE);
        }
        if (rc)
            goto out;
    }
    if (ferror(f)) {
        rc = TG_E_IO;
        tg_config_errorf(errs, path, 0, "cannot read: %s", strerror(errno));
    }
out:
    if (f)
        fclose(f);
    return rc;
}

static int handle_event(struct pstate *st, const yaml_event_t *ev)
{
    int rc = TG_OK;
    if (st->skip && ev->type != YAML_MAPPING_START_EVENT && ev->type != YAML_SEQUENCE_START_EVENT &&
        ev->type != YAML_MAPPING_END_EVENT && ev->type != YAML_SEQUENCE_END_EVENT)
        return TG_OK;
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        st->n_docs++;
        if (st->n_docs > 1) {
            perr(st, mark_line(&ev->start_mark), "only one YAML document per file");
            rc = TG_E_CONFIG;
        }
        break;
    case YAML_SCALAR_EVENT:
        rc = on_scalar(st, ev);
        break;
    case YAML_ALIAS_EVENT:
        rc = on_alias(st, ev);
        break;
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
        rc = on_start(st, ev, ev->type == YAML_MAPPING_START_EVENT);
        break;
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        rc = on_end(st, ev);
        break;
    default:
        break;
    }
    return rc;
}

int tg_config_parse_yaml(const char *path, json_t **root, struct tg_config_lines **lines,
                         json_t *errs)
{
    int rc;
    struct tg_buf buf;
    yaml_parser_t parser;
    bool parser_ready = false;
    struct pstate st = {.path = path, .errs = errs};

    tg_buf_init(&buf, TG_CONFIG_MAX_FILE);
    rc = read_file(path, &buf, errs);
    if (rc)
        goto out;
    st.lines = tg_config_lines_new();
    if (!st.lines || !yaml_parser_initialize(&parser)) {
        rc = TG_E_NOMEM;
        goto out;
    }
    parser_ready = true;
    yaml_parser_set_input_string(&parser, (const unsigned char *)(buf.data ? buf.data : ""),
                                 buf.len);
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = report_syntax(&st, &parser, buf.data, buf.len);
            if (!rc)
                rc = TG_E_CONFIG;
            goto out;
        }
        rc = handle_event(&st, &ev);
        yaml_event_type_t type = ev.type;
        yaml_event_delete(&ev);
        if (rc)
            goto out;
        if (type == YAML_STREAM_END_EVENT)
            break;
    }
    if (st.n_err) {
        rc = TG_E_CONFIG;
        goto out;
    }
    *root = st.root ? st.root : json_null();
    *lines = st.lines;
    st.root = NULL;
    st.lines = NULL;
out:
    if (rc == TG_E_NOMEM)
        tg_config_errorf(errs, path, 0, "out of memory");
    while (st.depth > 0) {
        st.depth--;
        json_decref(st.stack[st.depth].node);
        tg_free(st.stack[st.depth].key);
    }
    json_decref(st.root);
    tg_config_lines_free(st.lines);
    if (parser_ready)
        yaml_parser_delete(&parser);
    /* The text may hold API keys: do not leave it in freed memory. */
    if (buf.data)
        explicit_bzero(buf.data, buf.len);
    tg_buf_free(&buf);
    return rc;
}
