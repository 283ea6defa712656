/*
 * fuzz_store.c - the SQLite store (store.h) driven by arbitrary sequences of
 * writes and reads, against a model kept in memory: every blob read back is
 * the last one written under its key (or absent after a delete), every
 * conversation's messages come back in the order written with the bytes
 * written, and a write the store refuses (an over-long key, text that is
 * not a string) changes nothing.  One store is opened once in a temporary
 * directory; each input uses keys of its own so inputs never see each
 * other.
 *
 * Input: a list of operations, each one byte of kind followed by
 * length-prefixed fields (one byte of length, then the bytes).
 */
#include "fuzz.h"

#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLOTS 8

static struct tg_store *st;
static char dir[64];
static unsigned long input_no;

static void close_store(void)
{
    char cmd[128];
    tg_store_close(st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_store: could not remove %s\n", dir);
}

static void open_store(void)
{
    char uri[128], err[256];
    snprintf(dir, sizeof(dir), "/tmp/tg-fuzz-store-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    snprintf(uri, sizeof(uri), "sqlite:%s/t.db", dir);
    if (tg_store_open(uri, &st, err, sizeof(err))) {
        fprintf(stderr, "fuzz_store: %s\n", err);
        abort();
    }
    atexit(close_store);
}

struct cursor {
    const uint8_t *p, *end;
};

/* The next field: up to 255 bytes; false at the end of the input. */
static bool field(struct cursor *c, const uint8_t **v, size_t *n)
{
    if (c->p >= c->end)
        return false;
    size_t len = *c->p++;
    if ((size_t)(c->end - c->p) < len)
        len = (size_t)(c->end - c->p);
    *v = c->p;
    *n = len;
    c->p += len;
    return true;
}

/* What the model expects of one blob slot. */
struct blob {
    bool present;
    uint8_t data[255];
    size_t len;
};

/* One conversation's messages as written. */
struct convo {
    char text[64][256];
    size_t n;
};

static void check_blob(const char *key, const struct blob *b)
{
    char *data = NULL;
    size_t len = 0;
    int rc = tg_store_blob_get(st, key, &data, &len);
    if (b->present ? rc != TG_OK || len != b->len || (len && memcmp(data, b->data, len) != 0)
                   : rc != TG_E_NOTFOUND)
        abort();
    tg_free(data);
}

static void check_messages(const char *conv, const struct convo *m)
{
    json_t *list = NULL;
    if (tg_store_messages(st, conv, 1000, &list) != TG_OK || json_array_size(list) != m->n)
        abort();
    for (size_t i = 0; i < m->n; i++) {
        const char *got = json_string_value(json_object_get(json_array_get(list, i), "content"));
        if (!got || strcmp(got, m->text[i]) != 0)
            abort();
    }
    json_decref(list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct blob blobs[SLOTS];
    static struct convo convos[2];
    struct cursor c = {data, data + size};
    char key[64], conv[2][TG_ID_MAX];
    if (!st)
        open_store();
    input_no++;
    memset(blobs, 0, sizeof(blobs));
    memset(convos, 0, sizeof(convos));
    for (int i = 0; i < 2; i++)
        snprintf(conv[i], sizeof(conv[i]), "conv_f%lu_%d", input_no, i);
    for (int ops = 0; ops < 64 && c.p < c.end; ops++) {
        uint8_t kind = *c.p++;
        const uint8_t *v = NULL;
        size_t n = 0;
        size_t slot = kind % SLOTS;
        snprintf(key, sizeof(key), "fuzz/%lu/%zu", input_no, slot);
        switch ((kind >> 3) % 4) {
        case 0: /* blob put: any bytes */
            if (!field(&c, &v, &n))
                break;
            if (tg_store_blob_put(st, key, v, n) == TG_OK) {
                blobs[slot].present = true;
                memcpy(blobs[slot].data, v, n);
                blobs[slot].len = n;
            }
            break;
        case 1: /* blob delete */
            if (tg_store_blob_delete(st, key) == TG_OK)
                blobs[slot].present = false;
            break;
        case 2: { /* a message: text up to its first NUL */
            struct convo *m = &convos[kind >> 7];
            if (!field(&c, &v, &n) || m->n >= 64)
                break;
            char text[256];
            size_t tl = strnlen((const char *)v, n);
            memcpy(text, v, tl);
            text[tl] = '\0';
            struct tg_message msg = {.role = "user", .content = text, .ts_ms = (int64_t)ops};
            tg_strlcpy(msg.conversation_id, conv[kind >> 7], sizeof(msg.conversation_id));
            tg_strlcpy(msg.turn_id, "turn_f", sizeof(msg.turn_id));
            if (tg_store_message_add(st, &msg) == TG_OK)
                memcpy(m->text[m->n++], text, tl + 1);
            break;
        }
        default: /* read back everything so far */
            if (tg_store_flush(st) != TG_OK)
                abort();
            check_blob(key, &blobs[slot]);
            check_messages(conv[kind >> 7], &convos[kind >> 7]);
            break;
        }
    }
    if (tg_store_flush(st) != TG_OK)
        abort();
    for (size_t i = 0; i < SLOTS; i++) {
        snprintf(key, sizeof(key), "fuzz/%lu/%zu", input_no, i);
        check_blob(key, &blobs[i]);
    }
    check_messages(conv[0], &convos[0]);
    check_messages(conv[1], &convos[1]);
    return 0;
}
