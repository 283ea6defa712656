/*
 * kb.c - the knowledge base object: options, documents and their chunks,
 * the document-id map, compaction, accessors and stats.
 *
 * Removing or replacing a document only marks it dead; its chunks die
 * with it.  The next index build (before a search, a save or stats)
 * compacts sources, documents and chunks, so chunk ids stay dense.  Every
 * change first makes sure each live chunk has its (term, count) vector:
 * after a load the vectors are derived from the postings once, so an
 * incremental ingest never re-tokenizes chunks it keeps.
 */
#include "kb/kb_int.h"

#include <string.h>

#include "store/store.h"

void tg_kb_opts_init(struct tg_kb_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->k1 = 1.2;
    opts->b = 0.75;
    opts->chunk_chars = 600;
    opts->chunk_overlap = 80;
    opts->token_flags = TG_KB_TOKENS_DEFAULT;
    opts->norm_flags = TG_NORM_T2S;
    opts->store_prefix = "kb";
}

/* ------------------------------------------------------------ id map */

static int map_grow(struct kb_map *m)
{
    size_t ns = m->nslots ? m->nslots * 2 : 1024;
    const char **keys = tg_calloc(ns, sizeof(*keys));
    uint32_t *vals = tg_malloc(ns * sizeof(*vals));
    if (!keys || !vals) {
        tg_free(keys);
        tg_free(vals);
        return TG_E_NOMEM;
    }
    for (size_t i = 0; i < m->nslots; i++) {
        if (!m->keys[i])
            continue;
        size_t j = kb_hash(m->keys[i], strlen(m->keys[i])) & (ns - 1);
        while (keys[j])
            j = (j + 1) & (ns - 1);
        keys[j] = m->keys[i];
        vals[j] = m->vals[i];
    }
    tg_free(m->keys);
    tg_free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->nslots = ns;
    return TG_OK;
}

/* Insert or update; key must stay valid while the map refers to it. */
int kb_map_put(struct kb_map *m, const char *key, uint32_t val)
{
    if ((m->n + 1) * 2 > m->nslots) {
        int rc = map_grow(m);
        if (rc)
            return rc;
    }
    size_t j = kb_hash(key, strlen(key)) & (m->nslots - 1);
    while (m->keys[j] && strcmp(m->keys[j], key) != 0)
        j = (j + 1) & (m->nslots - 1);
    if (!m->keys[j])
        m->n++;
    m->keys[j] = key;
    m->vals[j] = val;
    return TG_OK;
}

uint32_t kb_map_get(const struct kb_map *m, const char *key)
{
    if (!m->nslots)
        return KB_NONE;
    size_t j = kb_hash(key, strlen(key)) & (m->nslots - 1);
    while (m->keys[j]) {
        if (strcmp(m->keys[j], key) == 0)
            return m->vals[j];
        j = (j + 1) & (m->nslots - 1);
    }
    return KB_NONE;
}

void kb_map_free(struct kb_map *m)
{
    tg_free(m->keys);
    tg_free(m->vals);
    memset(m, 0, sizeof(*m));
}

/* ------------------------------------------------------------ open, close */

int tg_kb_open(const struct tg_kb_opts *opts, struct tg_text *tx, struct tg_store *st,
               struct tg_kb **out, char *err, size_t errlen)
{
    struct tg_kb *kb = NULL;
    int rc = TG_OK;
    if (errlen)
        err[0] = '\0';
    if (!tx) {
        snprintf(err, errlen, "knowledge base: no text engine");
        return TG_E_INVAL;
    }
    kb = tg_calloc(1, sizeof(*kb));
    if (!kb) {
        snprintf(err, errlen, "knowledge base: out of memory");
        return TG_E_NOMEM;
    }
    if (opts)
        kb->opts = *opts;
    else
        tg_kb_opts_init(&kb->opts);
    if (kb->opts.k1 < 0 || kb->opts.b < 0 || kb->opts.b > 1 || kb->opts.chunk_chars == 0) {
        snprintf(err, errlen, "knowledge base: need k1 >= 0, 0 <= b <= 1 and a chunk size");
        rc = TG_E_INVAL;
        goto out;
    }
    if (!kb->opts.token_flags)
        kb->opts.token_flags = TG_KB_TOKENS_DEFAULT;
    const char *pfx =
        kb->opts.store_prefix && *kb->opts.store_prefix ? kb->opts.store_prefix : "kb";
    if (tg_strlcpy(kb->prefix, pfx, sizeof(kb->prefix)) >= sizeof(kb->prefix)) {
        snprintf(err, errlen, "knowledge base: store prefix too long");
        rc = TG_E_INVAL;
        goto out;
    }
    kb->opts.store_prefix = kb->prefix;
    kb->tx = tx;
    kb->st = st;
    kb->have_fwd = true;
    kb->ix_dirty = true;
    kb->origin = TG_KB_INDEX_NEW;
    tg_buf_init(&kb->nbuf, TG_BUF_UNLIMITED);
    tg_buf_init(&kb->kbuf, TG_BUF_UNLIMITED);
    tg_tokens_init(&kb->toks);
    if (st)
        rc = kb_persist_load(kb, err, errlen);
out:
    if (rc) {
        tg_kb_close(kb);
        return rc;
    }
    *out = kb;
    return TG_OK;
}

void kb_chunk_clear(struct kb_chunk *c)
{
    tg_free(c->heading);
    tg_free(c->text);
    tg_free(c->question);
    tg_free(c->answer);
    tg_free(c->intent);
    tg_free(c->fwd);
    memset(c, 0, sizeof(*c));
}

void kb_doc_clear(struct kb_doc *d)
{
    tg_free(d->id);
    tg_free(d->title);
    tg_free(d->source);
    memset(d, 0, sizeof(*d));
}

void kb_docs_free(struct tg_kb *kb)
{
    for (size_t i = 0; i < kb->nchunks; i++)
        kb_chunk_clear(&kb->chunks[i]);
    for (size_t i = 0; i < kb->ndocs; i++)
        kb_doc_clear(&kb->docs[i]);
    for (size_t i = 0; i < kb->nsrc; i++)
        tg_free(kb->src[i].path);
    tg_free(kb->chunks);
    tg_free(kb->docs);
    tg_free(kb->src);
    kb->chunks = NULL;
    kb->docs = NULL;
    kb->src = NULL;
    kb->nchunks = kb->ndocs = kb->nsrc = 0;
    kb->capchunks = kb->capdocs = kb->capsrc = 0;
    kb_map_free(&kb->docmap);
}

void tg_kb_close(struct tg_kb *kb)
{
    if (!kb)
        return;
    kb_docs_free(kb);
    kb_terms_free(&kb->terms);
    kb_index_free(kb);
    kb_gloss_free(kb);
    kb_vecs_free(&kb->vec);
    tg_buf_free(&kb->nbuf);
    tg_buf_free(&kb->kbuf);
    tg_tokens_free(&kb->toks);
    tg_free(kb->ids);
    tg_free(kb->qids);
    tg_free(kb->cnt);
    tg_free(kb);
}

/* ------------------------------------------------------------ tokens */

unsigned tg_kb_norm_flags(const struct tg_kb *kb)
{
    return kb->opts.norm_flags;
}

int kb_normalize(struct tg_kb *kb, const char *s, size_t len)
{
    tg_buf_reset(&kb->nbuf);
    int rc = tg_buf_append(&kb->nbuf, "", 0);
    if (!rc && len)
        rc = tg_text_normalize(kb->tx, s, len, kb->opts.norm_flags, &kb->nbuf);
    return rc;
}

/* Tokenize "title\nheading\ntext" (or question and answer) into c->fwd. */
int kb_tokenize_chunk(struct tg_kb *kb, struct kb_chunk *c, const char *title)
{
    struct tg_buf raw;
    int rc;
    tg_buf_init(&raw, TG_BUF_UNLIMITED);
    rc = tg_buf_printf(&raw, "%s\n%s\n", title ? title : "", c->heading ? c->heading : "");
    if (!rc && c->question)
        rc = tg_buf_printf(&raw, "%s\n%s", c->question, c->answer ? c->answer : "");
    else if (!rc)
        rc = tg_buf_puts(&raw, c->text ? c->text : "");
    if (!rc)
        rc = kb_normalize(kb, raw.data, raw.len);
    tg_buf_free(&raw);
    if (rc)
        return rc;
    tg_tokens_reset(&kb->toks);
    rc = tg_text_tokenize(kb->tx, kb->nbuf.data, kb->nbuf.len, kb->opts.token_flags, &kb->toks);
    kb->nids = 0;
    if (!rc)
        rc = kb_token_ids(kb, &kb->toks, true);
    if (rc)
        return rc;
    /* Count with a term-indexed scratch array: no sort, linear in the tokens. */
    if (kb->capcnt < kb->terms.n) {
        size_t cap = kb->terms.cap;
        uint32_t *cnt = tg_realloc(kb->cnt, cap * sizeof(*cnt));
        if (!cnt)
            return TG_E_NOMEM;
        memset(cnt + kb->capcnt, 0, (cap - kb->capcnt) * sizeof(*cnt));
        kb->cnt = cnt;
        kb->capcnt = cap;
    }
    size_t distinct = 0, ntok = kb->nids;
    for (size_t i = 0; i < ntok; i++)
        if (kb->cnt[kb->ids[i]]++ == 0)
            kb->ids[distinct++] = kb->ids[i];
    uint32_t *fwd = tg_malloc((distinct ? distinct * 2 : 1) * sizeof(uint32_t));
    for (size_t j = 0; j < distinct; j++) {
        if (fwd) {
            fwd[j] = kb->ids[j];
            fwd[distinct + j] = kb->cnt[kb->ids[j]];
        }
        kb->cnt[kb->ids[j]] = 0;
    }
    if (!fwd)
        return TG_E_NOMEM;
    tg_free(c->fwd);
    c->fwd = fwd;
    c->nterm = (uint32_t)distinct;
    c->ntok = (uint32_t)(ntok > UINT32_MAX ? UINT32_MAX : ntok);
    kb->tokenized++;
    return TG_OK;
}

/* ------------------------------------------------------------ documents */

int kb_ensure_fwd(struct tg_kb *kb)
{
    if (kb->have_fwd)
        return TG_OK;
    return kb_index_transpose(kb);
}

void kb_mark_changed(struct tg_kb *kb)
{
    kb->ix_dirty = true;
    kb->docs_unsaved = true;
    kb->vec.of_ok = false;
}

static void kill_doc(struct tg_kb *kb, uint32_t d)
{
    if (kb->docs[d].dead)
        return;
    kb->docs[d].dead = true;
    kb->dead_docs++;
    uint32_t cur = kb_map_get(&kb->docmap, kb->docs[d].id);
    if (cur == d)
        kb_map_put(&kb->docmap, kb->docs[d].id, KB_NONE);
}

/* Append a document (its chunks follow); replaces a live one with the same id. */
static int new_doc(struct tg_kb *kb, const char *id, const char *title, const char *source,
                   uint32_t src, uint8_t kind, uint32_t *out)
{
    int rc = kb_ensure_fwd(kb);
    if (rc)
        return rc;
    if (kb->ndocs >= UINT32_MAX - 1)
        return TG_E_TOOBIG;
    rc = tg_grow(&kb->docs, &kb->capdocs, kb->ndocs, sizeof(*kb->docs), 64);
    if (rc)
        return rc;
    struct kb_doc d = {.src = src, .kind = kind};
    d.id = tg_strdup(id);
    d.title = tg_strdup(title ? title : "");
    d.source = tg_strdup(source ? source : "");
    if (!d.id || !d.title || !d.source) {
        kb_doc_clear(&d);
        return TG_E_NOMEM;
    }
    uint32_t old = kb_map_get(&kb->docmap, id);
    uint32_t di = (uint32_t)kb->ndocs;
    rc = kb_map_put(&kb->docmap, d.id, di);
    if (rc) {
        kb_doc_clear(&d);
        return rc;
    }
    if (old != KB_NONE) {
        kb->docs[old].dead = true;
        kb->dead_docs++;
    }
    kb->docs[kb->ndocs++] = d;
    kb_mark_changed(kb);
    *out = di;
    return TG_OK;
}

static int new_chunk(struct tg_kb *kb, struct kb_chunk *c, const char *title)
{
    int rc = tg_grow(&kb->chunks, &kb->capchunks, kb->nchunks, sizeof(*kb->chunks), 64);
    if (!rc && kb->nchunks >= UINT32_MAX - 1)
        rc = TG_E_TOOBIG;
    if (!rc)
        rc = kb_tokenize_chunk(kb, c, title);
    if (rc) {
        kb_chunk_clear(c);
        return rc;
    }
    kb->chunks[kb->nchunks++] = *c;
    return TG_OK;
}

/* The text of the first level-1 heading, or NULL. */
char *kb_md_title(const char *text, size_t len)
{
    for (size_t ls = 0; ls < len;) {
        const char *nl = memchr(text + ls, '\n', len - ls);
        size_t le = nl ? (size_t)(nl - text) : len;
        size_t i = ls;
        while (i < le && i - ls < 3 && text[i] == ' ')
            i++;
        if (le - i >= 2 && text[i] == '#' && (text[i + 1] == ' ' || text[i + 1] == '\t')) {
            size_t s = i + 2, e = le;
            while (s < e && (text[s] == ' ' || text[s] == '\t'))
                s++;
            while (e > s && (text[e - 1] == ' ' || text[e - 1] == '\t' || text[e - 1] == '\r' ||
                             text[e - 1] == '#'))
                e--;
            if (e > s)
                return tg_strndup(text + s, e - s);
        }
        if (le - i >= 3 && memcmp(text + i, "```", 3) == 0)
            return NULL;
        ls = nl ? le + 1 : len;
    }
    return NULL;
}

int kb_add_doc_src(struct tg_kb *kb, const char *id, const char *title, const char *text,
                   size_t len, const char *source, uint32_t src, bool markdown, size_t *nchunks)
{
    struct tg_kb_piece *pieces = NULL;
    size_t np = 0;
    char *own_title = NULL;
    uint32_t d;
    int rc;
    if (!id || !*id || (!text && len))
        return TG_E_INVAL;
    if (!title && markdown)
        title = own_title = kb_md_title(text, len);
    rc = tg_kb_split(text ? text : "", len, kb->opts.chunk_chars, kb->opts.chunk_overlap, &pieces,
                     &np);
    if (!rc)
        rc = new_doc(kb, id, title, source, src, KB_DOC_TEXT, &d);
    for (size_t i = 0; i < np && !rc; i++) {
        struct kb_chunk c = {.doc = d, .ord = (uint32_t)i, .off = pieces[i].start};
        c.heading = pieces[i].heading;
        pieces[i].heading = NULL;
        c.text = tg_strndup(text + pieces[i].start, pieces[i].end - pieces[i].start);
        rc = c.text ? new_chunk(kb, &c, kb->docs[d].title) : TG_E_NOMEM;
        if (rc && !c.text)
            kb_chunk_clear(&c);
    }
    if (rc == TG_OK && nchunks)
        *nchunks += np;
    tg_kb_pieces_free(pieces, np);
    tg_free(own_title);
    return rc;
}

int kb_add_faq_src(struct tg_kb *kb, const char *id, const char *question, const char *answer,
                   const char *title, const char *source, uint32_t src)
{
    uint32_t d;
    if (!id || !*id || !question || !answer)
        return TG_E_INVAL;
    int rc = new_doc(kb, id, title, source, src, KB_DOC_FAQ, &d);
    if (rc)
        return rc;
    struct kb_chunk c = {.doc = d};
    c.heading = tg_strdup("");
    c.question = tg_strdup(question);
    c.answer = tg_strdup(answer);
    struct tg_buf b;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    if (tg_buf_printf(&b, "%s\n%s", question, answer) == TG_OK)
        c.text = tg_buf_steal(&b, NULL);
    tg_buf_free(&b);
    if (!c.heading || !c.question || !c.answer || !c.text) {
        kb_chunk_clear(&c);
        return TG_E_NOMEM;
    }
    return new_chunk(kb, &c, kb->docs[d].title);
}

int tg_kb_add_doc(struct tg_kb *kb, const char *id, const char *title, const char *text, size_t len,
                  const char *source)
{
    return kb_add_doc_src(kb, id, title, text, len, source, KB_NONE, true, NULL);
}

int tg_kb_add_faq(struct tg_kb *kb, const char *id, const char *question, const char *answer,
                  const char *source)
{
    return kb_add_faq_src(kb, id, question, answer, NULL, source, KB_NONE);
}

int tg_kb_remove_doc(struct tg_kb *kb, const char *id)
{
    uint32_t d = id ? kb_map_get(&kb->docmap, id) : KB_NONE;
    if (d == KB_NONE)
        return TG_E_NOTFOUND;
    int rc = kb_ensure_fwd(kb);
    if (rc)
        return rc;
    kill_doc(kb, d);
    kb_mark_changed(kb);
    return TG_OK;
}

void kb_remove_source_docs(struct tg_kb *kb, uint32_t src)
{
    for (size_t d = 0; d < kb->ndocs; d++)
        if (kb->docs[d].src == src && !kb->docs[d].dead)
            kill_doc(kb, (uint32_t)d);
    kb_mark_changed(kb);
}

int kb_compact(struct tg_kb *kb)
{
    uint32_t *dmap = NULL, *smap = NULL;
    int rc = TG_OK;
    if (!kb->dead_docs && !kb->dead_src)
        return TG_OK;
    dmap = tg_malloc((kb->ndocs ? kb->ndocs : 1) * sizeof(*dmap));
    smap = tg_malloc((kb->nsrc ? kb->nsrc : 1) * sizeof(*smap));
    if (!dmap || !smap) {
        rc = TG_E_NOMEM;
        goto out;
    }
    size_t w = 0;
    for (size_t s = 0; s < kb->nsrc; s++) {
        if (kb->src[s].dead) {
            tg_free(kb->src[s].path);
            smap[s] = KB_NONE;
            continue;
        }
        smap[s] = (uint32_t)w;
        kb->src[w++] = kb->src[s];
    }
    kb->nsrc = w;
    kb->dead_src = 0;
    w = 0;
    for (size_t d = 0; d < kb->ndocs; d++) {
        if (kb->docs[d].dead) {
            kb_doc_clear(&kb->docs[d]);
            dmap[d] = KB_NONE;
            continue;
        }
        dmap[d] = (uint32_t)w;
        struct kb_doc doc = kb->docs[d];
        if (doc.src != KB_NONE)
            doc.src = smap[doc.src];
        kb->docs[w++] = doc;
    }
    kb->ndocs = w;
    kb->dead_docs = 0;
    w = 0;
    for (size_t c = 0; c < kb->nchunks; c++) {
        uint32_t nd = dmap[kb->chunks[c].doc];
        if (nd == KB_NONE) {
            kb_chunk_clear(&kb->chunks[c]);
            continue;
        }
        struct kb_chunk ch = kb->chunks[c];
        ch.doc = nd;
        kb->chunks[w++] = ch;
    }
    kb->nchunks = w;
    kb_map_free(&kb->docmap);
    for (size_t d = 0; d < kb->ndocs && !rc; d++)
        rc = kb_map_put(&kb->docmap, kb->docs[d].id, (uint32_t)d);
out:
    tg_free(dmap);
    tg_free(smap);
    return rc;
}

/* ------------------------------------------------------------ accessors */

size_t tg_kb_chunk_count(struct tg_kb *kb)
{
    if (kb_index_build(kb))
        return 0;
    return kb->nchunks;
}

int tg_kb_chunk_get(struct tg_kb *kb, uint32_t id, struct tg_kb_chunk *out)
{
    if (kb_index_build(kb) || id >= kb->nchunks)
        return TG_E_NOTFOUND;
    const struct kb_chunk *c = &kb->chunks[id];
    const struct kb_doc *d = &kb->docs[c->doc];
    *out = (struct tg_kb_chunk){
        .doc_id = d->id,
        .title = d->title,
        .source = d->source,
        .heading = c->heading ? c->heading : "",
        .text = c->text ? c->text : "",
        .question = c->question,
        .answer = c->answer,
        .intent = c->intent,
        .ordinal = c->ord,
        .offset = c->off,
        .tokens = c->ntok,
    };
    return TG_OK;
}

int tg_kb_stats(struct tg_kb *kb, struct tg_kb_stats *out)
{
    int rc = kb_index_build(kb);
    if (rc)
        return rc;
    memset(out, 0, sizeof(*out));
    out->sources = kb->nsrc;
    out->documents = kb->ndocs;
    out->chunks = kb->nchunks;
    out->terms = kb->terms.n;
    out->postings = kb->npost;
    for (size_t c = 0; c < kb->nchunks; c++)
        out->text_bytes += kb->chunks[c].text ? strlen(kb->chunks[c].text) : 0;
    out->index_bytes = kb->npost * 2 * sizeof(uint32_t) +
                       (kb->terms.n + 1) * (sizeof(uint32_t) * 4 + sizeof(double)) +
                       kb->terms.pool_len + kb->terms.nslots * sizeof(uint32_t) +
                       kb->nchunks * 3 * sizeof(double);
    out->glossary = kb->ngloss;
    out->avg_tokens = kb->nchunks ? kb->avgdl : 0.0;
    out->tokenized = kb->tokenized;
    out->origin = kb->origin;
    return TG_OK;
}
