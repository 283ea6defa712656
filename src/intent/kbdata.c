/*
 * kbdata.c - the knowledge base as labelled data for the intent
 * classifier.
 *
 * A deployment labels its articles and FAQ pairs with intents (front
 * matter and an FAQ pair's "intent", src/kb/front.c); every FAQ question,
 * article title and "title heading" line then is an example of its
 * intent, in the customer's vocabulary of the products, beside the
 * hand-written examples of the training file.
 */
#include "intent/intent_int.h"

#include "kb/kb.h"

#include <string.h>

/* Append "text<TAB>label\n", with tabs and line ends in text made spaces. */
static int put_example(struct tg_buf *out, const char *text, size_t n, const char *label)
{
    size_t start = out->len;
    int rc = tg_buf_append(out, text, n);
    for (size_t i = start; !rc && i < out->len; i++)
        if (out->data[i] == '\t' || out->data[i] == '\n' || out->data[i] == '\r')
            out->data[i] = ' ';
    return rc ? rc : tg_buf_printf(out, "\t%s\n", label);
}

/* The last component of a heading path "A > B > C". */
static const char *last_heading(const char *path)
{
    const char *s = path, *sep;
    while ((sep = strstr(s, " > ")) != NULL)
        s = sep + 3;
    return s;
}

int tg_intent_kb_examples(struct tg_kb *kb, struct tg_buf *out)
{
    const char *prev_doc = NULL, *prev_h = NULL;
    size_t n = tg_kb_chunk_count(kb);
    int rc = TG_OK;
    struct tg_buf line;
    tg_buf_init(&line, 1u << 16);
    for (uint32_t id = 0; id < n && !rc; id++) {
        struct tg_kb_chunk c;
        if (tg_kb_chunk_get(kb, id, &c) || !c.intent)
            continue;
        if (c.question) {
            rc = put_example(out, c.question, strlen(c.question), c.intent);
            continue;
        }
        /* the title once per document, with its first chunk's label */
        if (c.title[0] && (!prev_doc || strcmp(prev_doc, c.doc_id) != 0))
            rc = put_example(out, c.title, strlen(c.title), c.intent);
        bool same_doc = prev_doc && strcmp(prev_doc, c.doc_id) == 0;
        const char *h = last_heading(c.heading);
        prev_doc = c.doc_id;
        /* a long section's windows share its heading: one example */
        if (rc || !h[0] || strcmp(h, c.title) == 0 || (same_doc && prev_h && !strcmp(prev_h, h)))
            continue;
        prev_h = h;
        tg_buf_reset(&line);
        rc = tg_buf_printf(&line, "%s %s", c.title, h);
        if (!rc)
            rc = put_example(out, line.data, line.len, c.intent);
    }
    tg_buf_free(&line);
    return rc;
}
