/*
 * kb.h - the knowledge base: a company's own documents split into chunks,
 * an inverted index with BM25 ranking over them, and a metric glossary
 * that widens queries and is cited in answers.
 *
 * Documents come from a folder of Markdown/text files, from JSONL files of
 * articles or FAQ pairs, or from loaders calling tg_kb_add_doc() and
 * tg_kb_add_faq().  Ingesting a source file again is incremental: its
 * SHA-256 decides whether it is skipped, re-chunked or, when the file is
 * gone, removed.  With a store the whole knowledge base (sources, chunks,
 * index, glossary) is kept as blobs, so a restart loads the index without
 * tokenizing anything; a missing, corrupt or old-version index blob is
 * rebuilt from the chunks.  docs/internals/kb.md describes the formats.
 *
 * Text goes through the shared tokenizer (text/text.h): documents and
 * queries are normalized with the same flags (Traditional Chinese becomes
 * Simplified by default) and tokenized with the same token flags, so a
 * term means the same thing on both sides.
 *
 * Threading and ownership: a struct tg_kb is used from one thread (its
 * tg_text is not thread-safe, and search reuses scratch space).  It
 * borrows the tg_text and the store, which must outlive it.  Every string
 * returned through an accessor is owned by the knowledge base and stays
 * valid until the next call that changes it (add, remove, ingest, glossary
 * load) or tg_kb_close().  Chunk ids are dense numbers 0..n-1 that are
 * renumbered by such changes; use the chunk's doc id and ordinal as a
 * stable name.
 */
#ifndef TG_KB_H
#define TG_KB_H

#include "core/core.h"
#include "text/text.h"

struct tg_kb;
struct tg_store;

/* Token flags that retrieved best on both evaluation sets (bench/RETRIEVAL.md). */
#define TG_KB_TOKENS_DEFAULT (TG_TOKEN_WORDS | TG_TOKEN_BIGRAMS | TG_TOKEN_STEM | TG_TOKEN_NO_STOP)

struct tg_kb_opts {
    double k1;                /* BM25 term-frequency saturation, >= 0; default 1.2 */
    double b;                 /* BM25 length normalization, 0..1; default 0.75 */
    size_t chunk_chars;       /* target chunk size in characters (code points); default 600 */
    size_t chunk_overlap;     /* characters of whole sentences repeated from the end of one
                                 window at the start of the next; default 80 */
    unsigned token_flags;     /* TG_TOKEN_*; default TG_KB_TOKENS_DEFAULT */
    unsigned norm_flags;      /* TG_NORM_*; default TG_NORM_T2S */
    const char *store_prefix; /* blob keys "<prefix>/docs", "/index", "/glossary"; default "kb" */
};

/* Fill opts with the defaults above. */
void tg_kb_opts_init(struct tg_kb_opts *opts);

/*
 * Open a knowledge base.  opts may be NULL for the defaults; tx is
 * required; st may be NULL for a knowledge base that lives in memory only.
 * With a store, what an earlier tg_kb_save() kept is loaded: the chunks,
 * the glossary and, when its blob is intact, of the current version and
 * made with the same normalization and token flags, the index (no
 * tokenization); otherwise the index is rebuilt from the chunks and saved
 * again.  A damaged or foreign-version docs blob cannot be rebuilt from:
 * the knowledge base then opens empty (with a warning) and the next ingest
 * adds every file again.  On failure (out of memory, a store read error)
 * returns an error and a message in err; *out is untouched.
 */
int tg_kb_open(const struct tg_kb_opts *opts, struct tg_text *tx, struct tg_store *st,
               struct tg_kb **out, char *err, size_t errlen);
/* Free the knowledge base (unsaved changes are lost).  NULL is a no-op. */
void tg_kb_close(struct tg_kb *kb);

/*
 * Write what changed since the last save (chunks, index, glossary) to the
 * store as blobs and wait until they are committed.  TG_OK without a
 * store.  On failure returns the store's error; the knowledge base in
 * memory is unchanged and a later save tries again.
 */
int tg_kb_save(struct tg_kb *kb);

/* ------------------------------------------------------------ ingest */

/* What an ingest did, counted in source files (a JSONL file is one source). */
struct tg_kb_report {
    size_t added;   /* new source files */
    size_t updated; /* files whose SHA-256 changed: re-chunked, old chunks replaced */
    size_t removed; /* files that disappeared: their documents removed */
    size_t skipped; /* files whose SHA-256 is unchanged */
    size_t docs;    /* documents made from added and updated files */
    size_t chunks;  /* chunks made from added and updated files */
};

/*
 * Ingest path: a folder (recursively: *.md, *.markdown, *.txt and *.jsonl,
 * skipping names that start with '.'), a single such file, or a path that
 * no longer exists (what was ingested from it is removed).  Every source
 * file previously ingested from under a folder and not found there now is
 * removed.  Markdown and text files become one document each (id = the
 * file's path, title = its first "# " heading or else its file name).  A
 * JSONL file holds one object per line: an article {"id", "title",
 * "text"} or an FAQ pair {"id"?, "question", "answer"}; id defaults to
 * "PATH:LINE".  Counts are added to *rep (rep may be NULL).  A bad JSONL
 * line fails that file (err names FILE:LINE) and leaves its previous
 * version in place; files handled before it stay ingested.
 */
int tg_kb_ingest(struct tg_kb *kb, const char *path, struct tg_kb_report *rep, char *err,
                 size_t errlen);

/*
 * Add a document (Markdown or plain text, len bytes of UTF-8), replacing
 * any document with the same id.  title and source may be NULL (source is
 * what citations show).  The text is chunked and tokenized now.
 * TG_E_INVAL for an empty id; TG_E_NOMEM.
 */
int tg_kb_add_doc(struct tg_kb *kb, const char *id, const char *title, const char *text, size_t len,
                  const char *source);
/*
 * Add one FAQ pair as a document with exactly one chunk that keeps the
 * question and the answer apart (both are indexed), replacing any document
 * with the same id.  source may be NULL.
 */
int tg_kb_add_faq(struct tg_kb *kb, const char *id, const char *question, const char *answer,
                  const char *source);
/* Remove a document and its chunks; TG_E_NOTFOUND when there is none. */
int tg_kb_remove_doc(struct tg_kb *kb, const char *id);

/* ------------------------------------------------------------ chunking */

/* One chunk of a document: a byte range of its text and its heading path. */
struct tg_kb_piece {
    uint32_t start, end; /* bytes [start, end) of the text */
    char *heading;       /* "A > B > C" of the Markdown headings above it, "" if none */
};

/*
 * Split Markdown or plain text into chunks of about target characters
 * (code points).  Sections start at heading lines ("#" to "######" and a
 * space, outside ``` fences); a chunk never spans two sections, except
 * that a section smaller than target/16 characters joins the next one and
 * subsections (### and deeper) that fit together share one chunk.  A long
 * section is cut into windows at sentence ends (。！？!?, "." before a
 * space, newlines); consecutive windows share whole sentences worth up to
 * overlap characters; a sentence longer than target is cut at character
 * boundaries.  Heading lines are not part of a chunk's range (they are in
 * its heading path) unless they fall inside a joined range.  Whitespace-only
 * text gives no chunks.  On success *out is a tg_malloc'd array of *n
 * pieces freed with tg_kb_pieces_free().
 */
int tg_kb_split(const char *text, size_t len, size_t target, size_t overlap,
                struct tg_kb_piece **out, size_t *n);
void tg_kb_pieces_free(struct tg_kb_piece *pieces, size_t n);

/* ------------------------------------------------------------ search */

struct tg_kb_hit {
    uint32_t chunk; /* chunk id, for tg_kb_chunk_get() */
    double score;   /* BM25 plus the key match (see tg_kb_search), > 0; 0 for a passage
                       only the dense search found (tg_kb_search_dense) */
    double match;   /* the key's cosine with the query, 0..1 (1: the same terms) */
    double dense;   /* the passage vector's cosine with the question's, or 0 without one */
};

/*
 * A search result, reused across searches.  hits are best first (ties:
 * lower chunk id first); glossary lists the glossary entries (indexes for
 * tg_kb_glossary_get()) whose term or a synonym the query mentions, in
 * glossary order.
 */
struct tg_kb_result {
    struct tg_kb_hit *hits;
    size_t n, cap;
    uint32_t *glossary;
    size_t n_glossary, cap_glossary;
};

void tg_kb_result_init(struct tg_kb_result *r);
void tg_kb_result_free(struct tg_kb_result *r);

enum {
    TG_KB_SEARCH_PER_DOC = 1 << 0,     /* at most one hit (its best chunk) per document */
    TG_KB_SEARCH_NO_GLOSSARY = 1 << 1, /* do not expand the query with the glossary */
    /* the query is already normalized with tg_kb_norm_flags(kb): not again */
    TG_KB_SEARCH_NORMALIZED = 1 << 2,
    /* the question is in another language than the articles: the glossary's
     * translations (cite: false) lead its words to the articles' terms */
    TG_KB_SEARCH_TRANSLATE = 1 << 3,
};

/* The TG_NORM_* flags the knowledge base normalizes text with. */
unsigned tg_kb_norm_flags(const struct tg_kb *kb);

/*
 * The k best chunks for a query (len bytes of UTF-8) by Okapi BM25
 * (Robertson and Sparck Jones): for each distinct query term t,
 *   idf(t) * f(t,d) * (k1 + 1) / (f(t,d) + k1 * (1 - b + b * |d| / avgdl)),
 *   idf(t) = ln(1 + (N - n_t + 0.5) / (n_t + 0.5)),
 * summed, where N is the number of chunks, n_t those containing t, |d| a
 * chunk's length in tokens and avgdl the mean length.  The query is
 * normalized and tokenized like the chunks; when it mentions a glossary
 * term or synonym, the term and all its synonyms are added to it.  Chunks
 * that share no term with the query are not returned.
 *
 * Each chunk also has a key: the line saying what it answers (an FAQ
 * pair's question, else the last heading above it when that is not the
 * document's title).  The cosine of the query's and the key's idf-weighted term sets
 * (the query's own terms give its norm; a glossary expansion may match;
 * capped at 1) is the hit's match, and match^2 times the query's best
 * BM25 score is added to the chunk's score, so an FAQ pair asked in its
 * own words ranks first.  A knowledge base without titles, headings or
 * FAQ pairs ranks by BM25 alone.  Results replace
 * what *res held.  Returns TG_OK or TG_E_NOMEM (res then holds no hits).
 */
int tg_kb_search(struct tg_kb *kb, const char *query, size_t len, size_t k, unsigned flags,
                 struct tg_kb_result *res);

/* ------------------------------------------------------------ dense vectors */

/*
 * Passages may carry a vector from an embedding model (backend/embed.h
 * fills them).  Vectors are kept by the SHA-256 of the passage text they
 * were made from, so re-ingesting an unchanged file keeps them, and saved
 * with the knowledge base (blob "<prefix>/vectors").  All have the same
 * model and length and unit norm.
 */

/*
 * The model the vectors come from.  Naming another model than the one
 * kept drops every vector (they are not comparable); the same model is a
 * no-op.  TG_OK or TG_E_NOMEM.
 */
int tg_kb_vectors_model(struct tg_kb *kb, const char *model);
/* The kept vectors' model (NULL when none was named) and length (0 when none is kept). */
const char *tg_kb_vectors_name(const struct tg_kb *kb);
size_t tg_kb_vectors_dim(const struct tg_kb *kb);
/* Chunks with a vector, of tg_kb_chunk_count(). */
size_t tg_kb_vectors_count(struct tg_kb *kb);
/* The chunk ids without a vector, ascending, in *ids (tg_malloc'd, NULL when *n is 0). */
int tg_kb_vectors_missing(struct tg_kb *kb, uint32_t **ids, size_t *n);
/* The text a chunk's vector is made from (title, heading path, text), appended to out. */
int tg_kb_passage_text(struct tg_kb *kb, uint32_t chunk, struct tg_buf *out);
/*
 * Keep v (dim floats, scaled here to unit length) as chunk's vector.
 * TG_E_INVAL for a dim other than the kept vectors', a zero or non-finite
 * vector or no model named; TG_E_NOTFOUND for no such chunk; TG_E_NOMEM.
 */
int tg_kb_vector_put(struct tg_kb *kb, uint32_t chunk, const float *v, size_t dim);

/*
 * tg_kb_search fused with a dense search: the passages ranked by BM25 (as
 * tg_kb_search, flags alike) and by the cosine of their vectors with qvec
 * (the question's unit vector, dim floats, from the same model) are merged
 * by reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009):
 *   fused(d) = 1 / (rrf_k + rank_bm25(d)) + 1 / (rrf_k + rank_dense(d)),
 * a list a passage is missing from adding nothing; each list holds its
 * best max(k, 50) passages (per document with TG_KB_SEARCH_PER_DOC), the
 * dense one only those whose cosine is at least min_cos (a nearest
 * neighbour is not evidence when it is far: an unrelated question finds
 * nothing), and the k best by fused score are returned (ties: the BM25
 * order).  A passage the dense list alone found has score 0.  With qvec
 * NULL, dim other than the vectors', or no vectors kept, this is
 * tg_kb_search.  rrf_k <= 0 means 60.
 */
struct tg_kb_dense {
    const float *qvec; /* the question's unit vector, or NULL */
    size_t dim;
    double rrf_k;
    double min_cos;
};
int tg_kb_search_dense(struct tg_kb *kb, const char *query, size_t len,
                       const struct tg_kb_dense *dq, size_t k, unsigned flags,
                       struct tg_kb_result *res);

/* ------------------------------------------------------------ accessors */

/* A read-only view of one chunk; strings are owned by the knowledge base. */
struct tg_kb_chunk {
    const char *doc_id;
    const char *title;    /* the document's title, "" if none */
    const char *source;   /* the file it came from or what a loader said, "" if none */
    const char *heading;  /* heading path "A > B", "" if none */
    const char *text;     /* the chunk's text; for an FAQ pair "question\nanswer" */
    const char *question; /* FAQ pairs only, else NULL */
    const char *answer;   /* FAQ pairs only, else NULL */
    const char *intent;   /* the deployment's label for it (front matter, FAQ "intent"), or NULL */
    uint32_t ordinal;     /* the chunk's number within its document, from 0 */
    uint32_t offset;      /* byte offset of text in the document's text */
    uint32_t tokens;      /* |d| for BM25 (title and heading path included) */
};

/* Chunks in the knowledge base (the index is brought up to date first). */
size_t tg_kb_chunk_count(struct tg_kb *kb);
/* Fill *out for chunk id; TG_E_NOTFOUND when id >= tg_kb_chunk_count(). */
int tg_kb_chunk_get(struct tg_kb *kb, uint32_t id, struct tg_kb_chunk *out);

/* ------------------------------------------------------------ glossary */

/* One glossary entry; strings and arrays owned by the knowledge base. */
struct tg_kb_term {
    const char *term;
    const char *definition; /* "" if none */
    const char *const *synonyms;
    size_t n_synonyms;
    const char *const *includes; /* what the metric counts */
    size_t n_includes;
    const char *const *excludes; /* what it leaves out */
    size_t n_excludes;
    bool cite; /* false: a translation, expanding queries only (not cited, not a passage) */
};

/*
 * Replace the glossary with the entries of a YAML or JSON file: a list of
 * {term, definition?, synonyms?: [], includes?: [], excludes?: []}, or a
 * mapping whose "glossary" (or "terms") key holds that list.  On failure
 * returns TG_E_IO, TG_E_CONFIG (err says FILE:LINE: what) or TG_E_NOMEM
 * and keeps the glossary it had.  The glossary is saved with the knowledge
 * base.
 */
int tg_kb_glossary_load(struct tg_kb *kb, const char *path, char *err, size_t errlen);
/* The same from a JSON list already in memory (borrowed); errors name "glossary[i]". */
int tg_kb_glossary_set(struct tg_kb *kb, const json_t *list, char *err, size_t errlen);
size_t tg_kb_glossary_count(const struct tg_kb *kb);
/* Entry i, or NULL when i is out of range. */
const struct tg_kb_term *tg_kb_glossary_get(const struct tg_kb *kb, size_t i);

/* ------------------------------------------------------------ stats */

enum tg_kb_index_origin {
    TG_KB_INDEX_NEW,    /* built in this process from chunks tokenized here */
    TG_KB_INDEX_LOADED, /* loaded from the store without tokenizing */
    TG_KB_INDEX_REBUILT /* the stored index was missing, corrupt or stale: rebuilt */
};

struct tg_kb_stats {
    size_t sources; /* source files ingested */
    size_t documents;
    size_t chunks;
    size_t terms;       /* distinct terms in the index */
    size_t postings;    /* (term, chunk) pairs */
    size_t text_bytes;  /* bytes of chunk text */
    size_t index_bytes; /* bytes of the index in memory (postings, dictionary, norms) */
    size_t glossary;    /* glossary entries */
    double avg_tokens;  /* mean chunk length in tokens (avgdl) */
    uint64_t tokenized; /* chunks tokenized since open (0 after a clean load) */
    enum tg_kb_index_origin origin;
};

/* Bring the index up to date and describe the knowledge base.  TG_OK or TG_E_NOMEM. */
int tg_kb_stats(struct tg_kb *kb, struct tg_kb_stats *out);

#endif
