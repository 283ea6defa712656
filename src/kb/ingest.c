/*
 * ingest.c - reading source files into the knowledge base, incrementally.
 *
 * A source is one file: Markdown or text (one document) or JSONL (one
 * document per line).  Its SHA-256 is remembered; ingesting it again
 * skips it when the digest is the same and otherwise replaces every
 * document it gave.  A folder walk stamps each file it sees with the
 * walk's generation, so sources under the folder left with an older
 * stamp are the files that were deleted.
 */
#include "kb/kb_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define MAX_FILE_BYTES (256u << 20)
#define MAX_DEPTH 64

struct paths {
    char **v;
    size_t n, cap;
};

static void paths_free(struct paths *p)
{
    for (size_t i = 0; i < p->n; i++)
        tg_free(p->v[i]);
    tg_free(p->v);
    memset(p, 0, sizeof(*p));
}

static int paths_add(struct paths *p, char *s)
{
    if (tg_grow(&p->v, &p->cap, p->n, sizeof(*p->v), 64)) {
        tg_free(s);
        return TG_E_NOMEM;
    }
    p->v[p->n++] = s;
    return TG_OK;
}

/* "./a//b/" -> "a/b": one spelling per file, so digests are found again. */
static char *clean_path(const char *in)
{
    char *s = tg_strdup(in);
    if (!s)
        return NULL;
    size_t w = 0;
    for (size_t r = 0; s[r]; r++) {
        if (s[r] == '/' && w && s[w - 1] == '/')
            continue;
        s[w++] = s[r];
    }
    s[w] = '\0';
    while (w > 1 && s[w - 1] == '/')
        s[--w] = '\0';
    while (s[0] == '.' && s[1] == '/' && s[2])
        memmove(s, s + 2, strlen(s + 2) + 1);
    return s;
}

static bool has_ext(const char *name, const char *ext)
{
    size_t n = strlen(name), e = strlen(ext);
    return n > e && strcasecmp(name + n - e, ext) == 0;
}

static bool wanted(const char *name)
{
    return has_ext(name, ".md") || has_ext(name, ".markdown") || has_ext(name, ".txt") ||
           has_ext(name, ".jsonl");
}

static char *join(const char *dir, const char *name)
{
    struct tg_buf b;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    int rc = strcmp(dir, ".") == 0 ? tg_buf_puts(&b, name) : tg_buf_printf(&b, "%s/%s", dir, name);
    if (rc) {
        tg_buf_free(&b);
        return NULL;
    }
    return tg_buf_steal(&b, NULL);
}

static int walk(const char *dir, int depth, struct paths *out, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    int rc = TG_OK;
    if (!d) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return TG_E_IO;
    }
    struct dirent *e;
    while (!rc && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *p = join(dir, e->d_name);
        struct stat sb;
        if (!p) {
            rc = TG_E_NOMEM;
            break;
        }
        if (stat(p, &sb) != 0) {
            tg_free(p);
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            if (depth < MAX_DEPTH)
                rc = walk(p, depth + 1, out, err, errlen);
            tg_free(p);
        } else if (S_ISREG(sb.st_mode) && wanted(e->d_name)) {
            rc = paths_add(out, p);
        } else {
            tg_free(p);
        }
    }
    closedir(d);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_file(const char *path, char **data, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    struct tg_buf b;
    int rc = TG_OK;
    char chunk[65536];
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return TG_E_IO;
    }
    tg_buf_init(&b, MAX_FILE_BYTES);
    size_t n;
    while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = tg_buf_append(&b, chunk, n);
    if (!rc && ferror(f))
        rc = TG_E_IO;
    if (!rc)
        rc = tg_buf_append(&b, "", 0);
    fclose(f);
    if (rc) {
        snprintf(err, errlen, "%s: %s", path, rc == TG_E_TOOBIG ? "file too large" : "read failed");
        tg_buf_free(&b);
        return rc;
    }
    *data = tg_buf_steal(&b, len);
    return TG_OK;
}

static uint32_t find_source(const struct tg_kb *kb, const char *path)
{
    for (size_t i = 0; i < kb->nsrc; i++)
        if (!kb->src[i].dead && strcmp(kb->src[i].path, path) == 0)
            return (uint32_t)i;
    return KB_NONE;
}

static void drop_source(struct tg_kb *kb, uint32_t s)
{
    kb_remove_source_docs(kb, s);
    kb->src[s].dead = true;
    kb->dead_src++;
}

/* Parse every line first, so a bad line leaves the previous version alone. */
static int parse_jsonl(const char *path, const char *data, size_t len, json_t **out, char *err,
                       size_t errlen)
{
    json_t *arr = json_array();
    int rc = arr ? TG_OK : TG_E_NOMEM;
    size_t lineno = 0;
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
        data += 3;
        len -= 3;
    }
    for (size_t ls = 0; ls < len && !rc;) {
        const char *nl = memchr(data + ls, '\n', len - ls);
        size_t le = nl ? (size_t)(nl - data) : len;
        size_t next = nl ? le + 1 : len;
        lineno++;
        size_t s = ls, e = le;
        while (s < e && (data[s] == ' ' || data[s] == '\t' || data[s] == '\r'))
            s++;
        while (e > s && (data[e - 1] == ' ' || data[e - 1] == '\t' || data[e - 1] == '\r'))
            e--;
        ls = next;
        if (s == e)
            continue;
        json_error_t jerr;
        json_t *o = json_loadb(data + s, e - s, 0, &jerr);
        const char *why = NULL;
        if (!o)
            why = jerr.text;
        else if (!json_is_object(o))
            why = "not a JSON object";
        else if (json_is_string(json_object_get(o, "question")) || json_object_get(o, "answer")) {
            if (!json_is_string(json_object_get(o, "question")) ||
                !json_is_string(json_object_get(o, "answer")))
                why = "an FAQ pair needs string \"question\" and \"answer\"";
        } else if (!json_is_string(json_object_get(o, "text"))) {
            why = "expected an article {\"id\", \"title\", \"text\"} or an FAQ pair "
                  "{\"question\", \"answer\"}";
        }
        if (why) {
            snprintf(err, errlen, "%s:%zu: %s", path, lineno, why);
            json_decref(o);
            rc = TG_E_PARSE;
            break;
        }
        rc = tg_json_set(o, "_line", json_integer((json_int_t)lineno));
        if (rc)
            json_decref(o);
        else
            rc = tg_json_push(arr, o);
    }
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return TG_OK;
}

/* Give chunks [first, end) their intent: the section's named in fm, else
 * intent (either may be NULL). */
static int label_chunks(struct tg_kb *kb, size_t first, const char *intent, struct kb_front *fm)
{
    for (size_t i = first; i < kb->nchunks; i++) {
        struct kb_chunk *c = &kb->chunks[i];
        const char *l = fm ? kb_front_intent(fm, c->heading) : intent;
        tg_free(c->intent);
        c->intent = l ? tg_strdup(l) : NULL;
        if (l && !c->intent)
            return TG_E_NOMEM;
    }
    return TG_OK;
}

static int add_jsonl(struct tg_kb *kb, const char *path, uint32_t src, const json_t *arr,
                     struct tg_kb_report *rep)
{
    int rc = TG_OK;
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        char idbuf[4096];
        const json_t *jid = json_object_get(o, "id");
        if (json_is_string(jid) && *json_string_value(jid))
            snprintf(idbuf, sizeof(idbuf), "%s", json_string_value(jid));
        else if (json_is_integer(jid))
            snprintf(idbuf, sizeof(idbuf), "%" JSON_INTEGER_FORMAT, json_integer_value(jid));
        else
            snprintf(idbuf, sizeof(idbuf), "%s:%" JSON_INTEGER_FORMAT, path,
                     json_integer_value(json_object_get(o, "_line")));
        const char *title = tg_json_str(o, "title", NULL);
        const char *q = tg_json_str(o, "question", NULL);
        size_t first = kb->nchunks;
        if (q) {
            rc = kb_add_faq_src(kb, idbuf, q, tg_json_str(o, "answer", ""), title, path, src);
            rep->chunks++;
        } else {
            const char *text = tg_json_str(o, "text", "");
            rc =
                kb_add_doc_src(kb, idbuf, title, text, strlen(text), path, src, true, &rep->chunks);
        }
        if (!rc)
            rc = label_chunks(kb, first, tg_json_str(o, "intent", NULL), NULL);
        if (rc)
            break;
        rep->docs++;
    }
    return rc;
}

static const char *base_name(const char *path, size_t *len)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    const char *dot = strrchr(b, '.');
    *len = dot && dot > b ? (size_t)(dot - b) : strlen(b);
    return b;
}

static int ingest_file(struct tg_kb *kb, const char *path, struct tg_kb_report *rep, char *err,
                       size_t errlen)
{
    char *data = NULL;
    size_t len = 0;
    json_t *arr = NULL;
    struct kb_front fm = {0};
    uint8_t sha[TG_SHA256_LEN];
    int rc = read_file(path, &data, &len, err, errlen);
    if (rc)
        return rc;
    tg_sha256(data, len, sha);
    uint32_t s = find_source(kb, path);
    if (s != KB_NONE && memcmp(kb->src[s].sha, sha, sizeof(sha)) == 0) {
        kb->src[s].gen = kb->gen;
        rep->skipped++;
        goto out;
    }
    bool jsonl = has_ext(path, ".jsonl");
    if (jsonl)
        rc = parse_jsonl(path, data, len, &arr, err, errlen);
    else
        rc = kb_front_parse(path, data, len, &fm, err, errlen);
    if (!rc && !jsonl)
        rc = kb_front_check(path, &fm, data + fm.skip, len - fm.skip, err, errlen);
    if (rc)
        goto out;
    rc = kb_ensure_fwd(kb);
    if (rc)
        goto out;
    if (s != KB_NONE) {
        kb_remove_source_docs(kb, s);
        rep->updated++;
    } else {
        rc = tg_grow(&kb->src, &kb->capsrc, kb->nsrc, sizeof(*kb->src), 32);
        if (rc)
            goto out;
        char *p = tg_strdup(path);
        if (!p) {
            rc = TG_E_NOMEM;
            goto out;
        }
        s = (uint32_t)kb->nsrc;
        kb->src[kb->nsrc++] = (struct kb_source){.path = p};
        rep->added++;
    }
    memcpy(kb->src[s].sha, sha, sizeof(sha));
    kb->src[s].gen = kb->gen;
    kb_mark_changed(kb);
    if (jsonl) {
        rc = add_jsonl(kb, path, s, arr, rep);
    } else {
        size_t blen, first = kb->nchunks;
        const char *base = base_name(path, &blen);
        const char *body = data + fm.skip;
        size_t body_len = len - fm.skip;
        char *title = kb_md_title(body, body_len);
        if (!title)
            title = tg_strndup(base, blen);
        rc = title ? kb_add_doc_src(kb, path, title, body, body_len, path, s, false, &rep->chunks)
                   : TG_E_NOMEM;
        tg_free(title);
        if (!rc && (fm.intent || fm.n))
            rc = label_chunks(kb, first, NULL, &fm);
        rep->docs += rc == TG_OK;
    }
    if (rc && errlen && !*err)
        snprintf(err, errlen, "%s: %s", path, tg_err_str(rc));
out:
    kb_front_free(&fm);
    json_decref(arr);
    tg_free(data);
    return rc;
}

/* Sources at path or under path/ that the current walk has not seen. */
static size_t drop_unseen(struct tg_kb *kb, const char *path, bool any_gen)
{
    size_t n = strlen(path), removed = 0;
    bool dot = strcmp(path, ".") == 0;
    for (size_t i = 0; i < kb->nsrc; i++) {
        struct kb_source *s = &kb->src[i];
        if (s->dead || (!any_gen && s->gen == kb->gen))
            continue;
        bool under = dot ? (s->path[0] != '/' && !tg_str_has_prefix(s->path, "../"))
                         : strcmp(s->path, path) == 0 ||
                               (strncmp(s->path, path, n) == 0 && s->path[n] == '/');
        if (under) {
            drop_source(kb, (uint32_t)i);
            removed++;
        }
    }
    return removed;
}

int tg_kb_ingest(struct tg_kb *kb, const char *path, struct tg_kb_report *rep, char *err,
                 size_t errlen)
{
    struct tg_kb_report local = {0};
    struct paths files = {0};
    struct stat sb;
    char *p = NULL;
    int rc = TG_OK;
    if (!rep)
        rep = &local;
    if (errlen)
        err[0] = '\0';
    p = path ? clean_path(path) : NULL;
    if (!p) {
        snprintf(err, errlen, "knowledge base: %s", path ? "out of memory" : "no path");
        return path ? TG_E_NOMEM : TG_E_INVAL;
    }
    kb->gen++;
    if (stat(p, &sb) != 0) {
        int e = errno;
        rc = kb_ensure_fwd(kb);
        size_t removed = rc ? 0 : drop_unseen(kb, p, true);
        if (!rc && removed) {
            rep->removed += removed;
        } else if (!rc) {
            snprintf(err, errlen, "%s: %s", p, strerror(e));
            rc = e == ENOENT ? TG_E_NOTFOUND : TG_E_IO;
        }
        goto out;
    }
    if (S_ISDIR(sb.st_mode)) {
        rc = walk(p, 0, &files, err, errlen);
        if (rc)
            goto out;
        qsort(files.v, files.n, sizeof(*files.v), cmp_str);
        for (size_t i = 0; i < files.n && !rc; i++)
            rc = ingest_file(kb, files.v[i], rep, err, errlen);
        if (!rc) {
            rc = kb_ensure_fwd(kb);
            if (!rc)
                rep->removed += drop_unseen(kb, p, false);
        }
    } else if (S_ISREG(sb.st_mode)) {
        rc = ingest_file(kb, p, rep, err, errlen);
    } else {
        snprintf(err, errlen, "%s: not a file or folder", p);
        rc = TG_E_INVAL;
    }
out:
    paths_free(&files);
    tg_free(p);
    return rc;
}
