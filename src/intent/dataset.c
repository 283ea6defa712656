/*
 * dataset.c - labelled utterances for the intent classifier, read from
 * TSV files (`text<TAB>intent`, one per line, an optional header).
 */
#include "intent/intent_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int tg_model_read_file(const char *path, struct tg_buf *out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    int rc = TG_OK;
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return TG_E_IO;
    }
    for (;;) {
        rc = tg_buf_reserve(out, 65536);
        if (rc) {
            snprintf(err, errlen, "%s: %s", path, tg_err_str(rc));
            break;
        }
        size_t n = fread(out->data + out->len, 1, out->cap - out->len - 1, f);
        out->len += n;
        out->data[out->len] = '\0';
        if (n == 0) {
            if (ferror(f)) {
                snprintf(err, errlen, "%s: read error", path);
                rc = TG_E_IO;
            }
            break;
        }
    }
    fclose(f);
    return rc;
}

static int push(struct tg_dataset *ds, const char *text, size_t tlen, const char *label,
                size_t llen)
{
    if (tg_grow(&ds->v, &ds->cap, ds->n, sizeof(*ds->v), 256))
        return TG_E_NOMEM;
    char *t = tg_strndup(text, tlen);
    char *l = tg_strndup(label, llen);
    if (!t || !l) {
        tg_free(t);
        tg_free(l);
        return TG_E_NOMEM;
    }
    ds->v[ds->n].text = t;
    ds->v[ds->n].label = l;
    ds->n++;
    return TG_OK;
}

static bool is_header(const char *label, size_t llen)
{
    return (llen == 5 && memcmp(label, "label", 5) == 0) ||
           (llen == 6 && memcmp(label, "intent", 6) == 0);
}

int tg_dataset_parse_tsv(const char *path, const char *data, size_t size, struct tg_dataset *ds,
                         char *err, size_t errlen)
{
    size_t n0 = ds->n;
    int rc = TG_OK;
    size_t lineno = 0;
    for (size_t pos = 0; pos < size;) {
        const char *line = data + pos;
        const char *nl = memchr(line, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - line) : size - pos;
        pos += len + (nl ? 1 : 0);
        lineno++;
        if (len && line[len - 1] == '\r')
            len--;
        if (len == 0)
            continue;
        const char *tab = memchr(line, '\t', len);
        if (!tab) {
            snprintf(err, errlen, "%s:%zu: no tab; expected text<TAB>intent", path, lineno);
            rc = TG_E_PARSE;
            goto out;
        }
        size_t tlen = (size_t)(tab - line);
        const char *label = tab + 1;
        size_t llen = len - tlen - 1;
        if (memchr(label, '\t', llen)) {
            snprintf(err, errlen,
                     "%s:%zu: more than two fields; expected text<TAB>intent "
                     "(bench/intent.sh shows how to cut a split<TAB>text<TAB>intent file)",
                     path, lineno);
            rc = TG_E_PARSE;
            goto out;
        }
        if (is_header(label, llen))
            continue;
        if (tlen == 0 || llen == 0) {
            snprintf(err, errlen, "%s:%zu: empty %s", path, lineno, tlen ? "intent" : "text");
            rc = TG_E_PARSE;
            goto out;
        }
        rc = push(ds, line, tlen, label, llen);
        if (rc) {
            snprintf(err, errlen, "%s:%zu: %s", path, lineno, tg_err_str(rc));
            goto out;
        }
    }
out:
    if (rc) {
        for (size_t i = n0; i < ds->n; i++) {
            tg_free(ds->v[i].text);
            tg_free(ds->v[i].label);
        }
        ds->n = n0;
    }
    return rc;
}

int tg_dataset_load_tsv(const char *path, struct tg_dataset *ds, char *err, size_t errlen)
{
    struct tg_buf b;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    int rc = tg_model_read_file(path, &b, err, errlen);
    if (!rc)
        rc = tg_dataset_parse_tsv(path, b.data ? b.data : "", b.len, ds, err, errlen);
    tg_buf_free(&b);
    return rc;
}

void tg_dataset_free(struct tg_dataset *ds)
{
    if (!ds)
        return;
    for (size_t i = 0; i < ds->n; i++) {
        tg_free(ds->v[i].text);
        tg_free(ds->v[i].label);
    }
    tg_free(ds->v);
    memset(ds, 0, sizeof(*ds));
}
