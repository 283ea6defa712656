/*
 * intent_int.h - inside the intent classifier: the feature vocabulary (a
 * string -> id hash map), feature extraction shared by training and
 * prediction, and the model object with its prediction scratch space.
 * Only the intent module's own files include this; others use intent.h.
 */
#ifndef TG_INTENT_INT_H
#define TG_INTENT_INT_H

#include "intent/intent.h"
#include "text/text.h"

#include <linear.h>

/* Defaults chosen by tuning on BANKING77 (bench/INTENT.md). */
#define TG_INTENT_DEFAULT_C 30.0
#define TG_INTENT_DEFAULT_MAX_NGRAM 2
#define TG_INTENT_DEFAULT_CHAR_MIN 1
#define TG_INTENT_DEFAULT_CHAR_MAX 4
/* Longest word n-gram and character n-gram accepted in options. */
#define TG_INTENT_NGRAM_LIMIT 8
/* Features seen in fewer training utterances are dropped. */
#define TG_INTENT_MIN_DF 2

/*
 * The vocabulary: feature text -> dense id 0..n-1 in insertion order, by
 * open addressing with linear probing.  Keys live in one pool so ids can
 * be turned back into text for explanations.
 */
struct tg_vocab_slot {
    uint32_t id1;  /* id + 1; 0 = empty */
    uint32_t hash; /* low bits of the key's hash, checked before the bytes */
};

struct tg_vocab {
    struct tg_vocab_slot *slots;
    size_t mask;   /* slots - 1; slots is a power of two */
    uint32_t *off; /* key offset in pool, by id */
    uint32_t *len; /* key length, by id */
    size_t n, cap;
    char *pool;
    size_t pool_len, pool_cap;
};

void tg_vocab_init(struct tg_vocab *v);
void tg_vocab_free(struct tg_vocab *v);
/* The id of key, or -1. */
long tg_vocab_find(const struct tg_vocab *v, const char *key, size_t len);
/* The id of key, inserting it when new.  TG_OK, TG_E_NOMEM or TG_E_TOOBIG
 * (more than 2^31 keys or 4 GiB of key text). */
int tg_vocab_add(struct tg_vocab *v, const char *key, size_t len, uint32_t *id);
/* Key text of id (not NUL-terminated; see tg_vocab_len). */
const char *tg_vocab_key(const struct tg_vocab *v, uint32_t id);
size_t tg_vocab_len(const struct tg_vocab *v, uint32_t id);

/* Append the whole file at path to out.  TG_E_IO with "PATH: reason" in err. */
int tg_model_read_file(const char *path, struct tg_buf *out, char *err, size_t errlen);

/* Parse TSV bytes (see tg_dataset_load_tsv); path names them in errors. */
int tg_dataset_parse_tsv(const char *path, const char *data, size_t len, struct tg_dataset *ds,
                         char *err, size_t errlen);

/* Options with defaults filled in and ranges checked. */
int tg_intent_resolve_opts(const struct tg_intent_opts *in, struct tg_intent_opts *out, char *err,
                           size_t errlen);

/*
 * Reusable buffers for feature extraction: the normalized text, its
 * tokens, the feature key being built, codepoint offsets, and the feature
 * occurrences collected so far.  Grows to the longest text seen and is
 * then reused without allocation.
 */
struct tg_feat_scratch {
    struct tg_buf norm;
    struct tg_tokens toks;
    struct tg_buf key;
    uint32_t *cps; /* byte offset of each codepoint of the padded text, plus the end */
    size_t cap_cps;
    uint32_t *ids; /* feature ids of one text, with repeats */
    size_t n_ids, cap_ids;
};

void tg_feat_scratch_init(struct tg_feat_scratch *s);
void tg_feat_scratch_free(struct tg_feat_scratch *s);

/*
 * Extract the features of text into s->ids: normalize, tokenize, then word
 * n-grams ("w:a b") and character n-grams ("c:abc") as opts say.  With add
 * set, unseen features are added to v; otherwise they are skipped.
 * Returns TG_OK, TG_E_NOMEM, or the tokenizer's error.
 */
int tg_feat_extract(struct tg_text *tx, const struct tg_intent_opts *opts, struct tg_vocab *v,
                    bool add, const char *text, size_t len, struct tg_feat_scratch *s);

/* Sort ids and merge repeats into (id, count) pairs written to out (room for n);
 * returns the number of distinct ids. */
size_t tg_feat_count(uint32_t *ids, size_t n, struct feature_node *out);

/*
 * Turn (id, count) pairs into the model's vector in place: liblinear
 * index id + 1, value (1 + ln count) * idf[id], the whole vector scaled
 * to unit L2 norm.
 */
void tg_feat_weigh(struct feature_node *x, size_t n, const double *idf);

struct tg_intent_model {
    struct tg_intent_opts opts; /* resolved */
    uint8_t key[TG_SHA256_LEN]; /* cache key it was trained for; zero if none */
    size_t n_examples;
    char *cache_path; /* set by tg_intent_load_or_train */
    bool from_cache;
    size_t n_labels;
    char **labels;
    struct tg_vocab vocab;
    double *idf;      /* by feature id */
    struct model lin; /* liblinear's view; w and label owned by this struct (tg_malloc) */
    size_t nr_w;      /* columns of lin.w: 1 for two labels, else n_labels */

    /* prediction scratch, reused across calls */
    struct tg_feat_scratch fs;
    struct feature_node *x;
    size_t cap_x;
    uint32_t *pos; /* by feature id: its node in x + 1 while vectorizing, else 0 */
    double *prob;

    /* tg_intent_probabilities_of: texts already classified, by the 64-bit
     * FNV-1a hash of their bytes (open addressing, memo_slots a power of
     * two, key 0 = empty) -> row of n_labels probabilities in memo_prob */
    uint64_t *memo_key;
    uint32_t *memo_row;
    size_t memo_slots, memo_n;
    double *memo_prob;
};

/*
 * A model with room for n_labels labels (strings NULL), n_features
 * features (vocabulary empty, idf and weights zero) and its prediction
 * scratch; NULL when out of memory.  Freed with tg_intent_free.
 */
struct tg_intent_model *tg_intent_model_new(size_t n_labels, size_t n_features);

#endif
