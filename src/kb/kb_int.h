/*
 * kb_int.h - the knowledge base's private structures, shared by its files:
 * kb.c (documents, chunks, accessors), index.c (term dictionary, postings,
 * BM25), rank.c (the key field), ingest.c (files and JSONL), persist.c
 * (blobs), glossary.c and chunk.c.  Nothing outside src/kb/ includes this.
 */
#ifndef TG_KB_INT_H
#define TG_KB_INT_H

#include "kb/kb.h"

#define KB_NONE UINT32_MAX
#define KB_FORMAT_VERSION 2u

enum kb_doc_kind { KB_DOC_TEXT = 0, KB_DOC_FAQ = 1 };

struct kb_source {
    char *path;
    uint8_t sha[TG_SHA256_LEN];
    uint32_t gen; /* the walk that last saw it */
    bool dead;
};

struct kb_doc {
    char *id;
    char *title;
    char *source;
    uint32_t src; /* index into kb->src, or KB_NONE for loader documents */
    uint8_t kind;
    bool dead;
};

struct kb_chunk {
    uint32_t doc;
    uint32_t ord;
    uint32_t off;
    char *heading;
    char *text;
    char *question; /* FAQ only */
    char *answer;
    char *intent;   /* the deployment's label (front matter, FAQ "intent"), or NULL */
    uint32_t ntok;  /* |d| */
    uint32_t nterm; /* distinct terms; fwd holds nterm ids then nterm counts */
    uint32_t *fwd;  /* NULL until tokenized or transposed from the postings */
    bool dead;
};

/* Term dictionary: term strings in one pool, open addressing on their hashes. */
struct kb_terms {
    char *pool;
    size_t pool_len, pool_cap;
    uint32_t *off, *len, *hash;
    size_t n, cap;
    uint32_t *slots; /* term id + 1, 0 = empty */
    size_t nslots;
};

/* String -> index map over keys owned elsewhere (document ids). */
struct kb_map {
    const char **keys;
    uint32_t *vals;
    size_t n, nslots;
};

struct kb_gloss {
    char *term, *definition;
    char **syn, **inc, **exc;
    size_t nsyn, ninc, nexc;
    bool cite;    /* false: a translation of a term, expanding queries, never cited */
    bool term_form; /* forms[0] is the term's */
    char **forms; /* term and synonyms, normalized like queries */
    size_t nforms;
    struct tg_kb_term view;
};

/* Dense vectors (vectors.c), content-addressed: an entry's key is the first
 * KB_VEC_KEY bytes of the SHA-256 of the passage text it was made from, so
 * a chunk re-made with the same text finds its vector again. */
#define KB_VEC_KEY 16
struct kb_vecs {
    char *model; /* the model the vectors come from, NULL: none */
    uint32_t dim;
    uint8_t *keys; /* n * KB_VEC_KEY */
    float *data;   /* n * dim, unit vectors */
    size_t n, cap;
    uint32_t *slots; /* entry + 1, 0 = empty; open addressing on the key */
    size_t nslots;
    uint32_t *of; /* per chunk: its entry or KB_NONE (valid while of_ok, for nof chunks) */
    size_t nof;
    bool of_ok;
    bool unsaved;
};

struct tg_kb {
    struct tg_kb_opts opts;
    char prefix[64];
    struct tg_text *tx;
    struct tg_store *st;

    struct kb_source *src;
    size_t nsrc, capsrc;
    struct kb_doc *docs;
    size_t ndocs, capdocs;
    struct kb_chunk *chunks;
    size_t nchunks, capchunks;
    size_t dead_docs, dead_chunks, dead_src;
    struct kb_map docmap;
    uint32_t gen;

    struct kb_terms terms;

    /* The inverted index over chunks 0..ix_chunks-1 (valid when !ix_dirty). */
    uint32_t *post_start; /* terms.n + 1 */
    uint32_t *post_chunk;
    uint32_t *post_tf;
    size_t npost;
    size_t ix_chunks, ix_terms;
    double *idf;
    double *norm; /* k1 * (1 - b + b * |d| / avgdl) per chunk */
    double avgdl;
    double *acc;
    uint32_t *mark;
    uint32_t *touched;
    uint32_t *docmark, *docslot; /* per document, for one hit per document */
    size_t ix_docs;
    uint32_t stamp;

    /* The key field (rank.c): postings over each chunk's key line, built
     * lazily after the index; valid while keys_ok. */
    uint32_t *key_start; /* ix_terms + 1 */
    uint32_t *key_chunk;
    size_t nkey;
    double *key_norm; /* per chunk: sqrt(sum of idf^2 over its key's terms) */
    double *key_dot;  /* per chunk, search scratch: the key's cosine with the query */
    bool keys_ok;
    uint32_t *qids; /* the query's own distinct term ids (before the glossary) */
    size_t nqids, capqids;

    bool have_fwd;     /* every live chunk has fwd */
    bool ix_dirty;     /* chunks changed since the index was built */
    bool docs_unsaved; /* chunks changed since the last save */
    bool ix_unsaved;
    bool gloss_unsaved;
    uint8_t docs_sha[TG_SHA256_LEN]; /* checksum of the docs blob last saved or loaded */
    bool have_docs_sha;
    uint64_t tokenized;
    enum tg_kb_index_origin origin;

    struct kb_vecs vec;

    struct kb_gloss *gloss;
    size_t ngloss;
    json_t *gloss_json; /* the glossary as loaded, for saving */

    struct tg_buf nbuf; /* normalized text */
    struct tg_buf kbuf; /* term keys and scratch */
    struct tg_tokens toks;
    uint32_t *ids;
    size_t nids, capids;
    uint32_t *cnt; /* per term, zero between uses */
    size_t capcnt;
};

/* kb.c */
int kb_tokenize_chunk(struct tg_kb *kb, struct kb_chunk *c, const char *title);
void kb_chunk_clear(struct kb_chunk *c);
/* Free the sources, documents and chunks (and their map), leaving them empty. */
void kb_docs_free(struct tg_kb *kb);
void kb_doc_clear(struct kb_doc *d);
int kb_add_doc_src(struct tg_kb *kb, const char *id, const char *title, const char *text,
                   size_t len, const char *source, uint32_t src, bool markdown, size_t *nchunks);
int kb_add_faq_src(struct tg_kb *kb, const char *id, const char *question, const char *answer,
                   const char *title, const char *source, uint32_t src);
void kb_remove_source_docs(struct tg_kb *kb, uint32_t src);
int kb_ensure_fwd(struct tg_kb *kb);
char *kb_md_title(const char *text, size_t len);
void kb_mark_changed(struct tg_kb *kb);
int kb_map_put(struct kb_map *m, const char *key, uint32_t val);
uint32_t kb_map_get(const struct kb_map *m, const char *key);
void kb_map_free(struct kb_map *m);
uint32_t kb_hash(const void *p, size_t n);
int kb_normalize(struct tg_kb *kb, const char *s, size_t len);

/* index.c */
void kb_terms_free(struct kb_terms *t);
int kb_terms_intern(struct kb_terms *t, const char *key, size_t len, uint32_t *id);
uint32_t kb_terms_find(const struct kb_terms *t, const char *key, size_t len);
int kb_token_ids(struct tg_kb *kb, const struct tg_tokens *toks, bool intern);
int kb_index_build(struct tg_kb *kb);
int kb_compact(struct tg_kb *kb);
int kb_index_finish(struct tg_kb *kb);
void kb_index_free(struct tg_kb *kb);
int kb_index_transpose(struct tg_kb *kb);

/* front.c: a Markdown article's front matter */
struct kb_front_section {
    char *heading, *intent;
    int line;
    bool used; /* the article has the heading */
};
struct kb_front {
    char *intent; /* the article's, or NULL */
    int intent_line;
    struct kb_front_section *sec;
    size_t n, cap;
    size_t skip; /* bytes of the block, closing line included; 0 without one */
};
/* Parse the block at the start of text (none: *fm empty, TG_OK); a bad
 * block is TG_E_PARSE with "PATH:LINE: message" in err. */
int kb_front_parse(const char *path, const char *text, size_t len, struct kb_front *fm, char *err,
                   size_t errlen);
void kb_front_free(struct kb_front *fm);
/* The intent of a chunk with heading path "A > B > C" (NULL if none). */
const char *kb_front_intent(struct kb_front *fm, const char *path);
/* TG_E_PARSE with "PATH:LINE: message" when a section names a heading the
 * article's text (body, after the block) does not have. */
int kb_front_check(const char *path, struct kb_front *fm, const char *body, size_t len, char *err,
                   size_t errlen);

/* persist.c */
int kb_persist_load(struct tg_kb *kb, char *err, size_t errlen);

/* rank.c */
void kb_keys_free(struct tg_kb *kb);
int kb_keys_build(struct tg_kb *kb);
void kb_keys_score(struct tg_kb *kb, const uint32_t *qids, size_t nq, const uint32_t *ids, size_t n,
                   size_t m);

/* vectors.c */
void kb_vecs_free(struct kb_vecs *v);
/* Add a vector under key (dim must match the kept ones); TG_OK, TG_E_INVAL or TG_E_NOMEM. */
int kb_vec_add(struct tg_kb *kb, const uint8_t key[KB_VEC_KEY], const float *v, size_t dim);
/* The per-chunk entries brought up to date (index built first). */
int kb_vec_map(struct tg_kb *kb);

/* glossary.c */
void kb_gloss_free(struct tg_kb *kb);
int kb_gloss_expand(struct tg_kb *kb, struct tg_kb_result *res, unsigned flags);

#endif
