/*
 * chunk.c - cutting a document into chunks for retrieval.
 *
 * Three passes over the bytes: lines give Markdown sections (ATX headings
 * outside code fences) with their heading paths; neighbouring sections
 * are joined into groups when the first is tiny or the next is a small
 * subsection; a group larger than the target is cut into windows of
 * whole sentences that overlap by whole sentences.  Sizes are counted in
 * code points, so a Chinese character and a Latin letter weigh the same.
 */
#include "kb/kb_int.h"

#include <string.h>

struct section {
    uint32_t body_start, body_end;
    int level; /* 0 for text before the first heading */
    char *path;
};

struct unit {
    uint32_t start, end;
    size_t chars;
};

struct pieces {
    struct tg_kb_piece *v;
    size_t n, cap;
};

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static size_t count_cp(const char *s, size_t start, size_t end)
{
    size_t n = 0;
    for (size_t i = start; i < end; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

/* Decode one code point at s[i] (i < len); an invalid byte stands for itself. */
static uint32_t decode(const char *s, size_t len, size_t i, size_t *adv)
{
    unsigned char c = (unsigned char)s[i];
    size_t need;
    uint32_t cp;
    *adv = 1;
    if (c >= 0xF0) {
        need = 3;
        cp = c & 0x07u;
    } else if (c >= 0xE0) {
        need = 2;
        cp = c & 0x0Fu;
    } else if (c >= 0xC0) {
        need = 1;
        cp = c & 0x1Fu;
    } else {
        return c;
    }
    if (i + need >= len)
        return c;
    for (size_t k = 1; k <= need; k++) {
        unsigned char d = (unsigned char)s[i + k];
        if ((d & 0xC0) != 0x80)
            return c;
        cp = (cp << 6) | (d & 0x3Fu);
    }
    *adv = need + 1;
    return cp;
}

static void trim(const char *s, uint32_t *start, uint32_t *end)
{
    while (*start < *end && is_space((unsigned char)s[*start]))
        (*start)++;
    while (*end > *start && is_space((unsigned char)s[*end - 1]))
        (*end)--;
}

static size_t trimmed_chars(const char *s, uint32_t start, uint32_t end)
{
    trim(s, &start, &end);
    return count_cp(s, start, end);
}

static int push_piece(struct pieces *p, const char *text, uint32_t start, uint32_t end,
                      const char *path)
{
    trim(text, &start, &end);
    if (start >= end)
        return TG_OK;
    if (tg_grow(&p->v, &p->cap, p->n, sizeof(*p->v), 8))
        return TG_E_NOMEM;
    char *h = tg_strdup(path ? path : "");
    if (!h)
        return TG_E_NOMEM;
    p->v[p->n++] = (struct tg_kb_piece){.start = start, .end = end, .heading = h};
    return TG_OK;
}

/* ATX heading: up to 3 spaces, 1-6 '#', then a space, a tab or the line end. */
static int heading_level(const char *s, size_t start, size_t end, size_t *tstart, size_t *tend)
{
    size_t i = start, lv = 0;
    while (i < end && i - start < 3 && s[i] == ' ')
        i++;
    while (i < end && s[i] == '#' && lv < 7) {
        i++;
        lv++;
    }
    if (lv == 0 || lv > 6 || (i < end && s[i] != ' ' && s[i] != '\t' && s[i] != '\r'))
        return 0;
    size_t e = end;
    while (e > i && is_space((unsigned char)s[e - 1]))
        e--;
    while (e > i && s[e - 1] == '#')
        e--;
    while (i < e && is_space((unsigned char)s[i]))
        i++;
    while (e > i && is_space((unsigned char)s[e - 1]))
        e--;
    *tstart = i;
    *tend = e;
    return (int)lv;
}

static bool fence_line(const char *s, size_t start, size_t end)
{
    size_t i = start;
    while (i < end && i - start < 3 && s[i] == ' ')
        i++;
    return end - i >= 3 && (memcmp(s + i, "```", 3) == 0 || memcmp(s + i, "~~~", 3) == 0);
}

static char *join_path(const char *s, const size_t hs[7], const size_t he[7], int upto)
{
    struct tg_buf b;
    tg_buf_init(&b, TG_BUF_UNLIMITED);
    int rc = tg_buf_append(&b, "", 0);
    for (int l = 1; l <= upto && !rc; l++) {
        if (he[l] <= hs[l])
            continue;
        if (b.len)
            rc = tg_buf_puts(&b, " > ");
        if (!rc)
            rc = tg_buf_append(&b, s + hs[l], he[l] - hs[l]);
    }
    if (rc) {
        tg_buf_free(&b);
        return NULL;
    }
    return tg_buf_steal(&b, NULL);
}

static void sections_free(struct section *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tg_free(v[i].path);
    tg_free(v);
}

static int find_sections(const char *s, size_t len, struct section **out, size_t *nout)
{
    size_t hs[7] = {0}, he[7] = {0};
    struct section *v = NULL;
    size_t n = 0, cap = 0;
    bool fenced = false;
    int rc = TG_OK;
    char *path0 = tg_strdup("");
    if (!path0)
        return TG_E_NOMEM;
    v = tg_malloc(sizeof(*v));
    if (!v) {
        tg_free(path0);
        return TG_E_NOMEM;
    }
    cap = 1;
    v[n++] =
        (struct section){.body_start = 0, .body_end = (uint32_t)len, .level = 0, .path = path0};
    for (size_t ls = 0; ls < len;) {
        const char *nl = memchr(s + ls, '\n', len - ls);
        size_t le = nl ? (size_t)(nl - s) : len;
        size_t next = nl ? le + 1 : len;
        size_t ts, te;
        int lv = 0;
        if (fence_line(s, ls, le))
            fenced = !fenced;
        else if (!fenced)
            lv = heading_level(s, ls, le, &ts, &te);
        if (lv) {
            hs[lv] = ts;
            he[lv] = te;
            for (int d = lv + 1; d <= 6; d++)
                hs[d] = he[d] = 0;
            rc = tg_grow(&v, &cap, n, sizeof(*v), 16);
            if (rc)
                goto out;
            char *path = join_path(s, hs, he, lv);
            if (!path) {
                rc = TG_E_NOMEM;
                goto out;
            }
            v[n - 1].body_end = (uint32_t)ls;
            v[n++] = (struct section){
                .body_start = (uint32_t)next, .body_end = (uint32_t)len, .level = lv, .path = path};
        }
        ls = next;
    }
out:
    if (rc) {
        sections_free(v, n);
        return rc;
    }
    *out = v;
    *nout = n;
    return TG_OK;
}

static bool closer(uint32_t cp)
{
    return cp == 0x201D || cp == 0x2019 || cp == 0x300D || cp == 0x300F || cp == 0xFF09 ||
           cp == ')' || cp == '"' || cp == '\'' || cp == 0x300B || cp == ']';
}

static int split_units(const char *s, uint32_t gs, uint32_t ge, struct unit **out, size_t *nout)
{
    struct unit *v = NULL;
    size_t n = 0, cap = 0;
    uint32_t start = gs;
    size_t i = gs;
    while (i < ge) {
        size_t adv;
        uint32_t cp = decode(s, ge, i, &adv);
        i += adv;
        bool end = cp == '\n' || cp == 0x3002 || cp == 0xFF01 || cp == 0xFF1F || cp == '!' ||
                   cp == '?' || (cp == '.' && (i >= ge || is_space((unsigned char)s[i])));
        if (!end && i < ge)
            continue;
        while (end && i < ge) {
            uint32_t c2 = decode(s, ge, i, &adv);
            if (!closer(c2) && !(c2 < 0x80 && is_space((unsigned char)c2)))
                break;
            i += adv;
        }
        uint32_t e = (uint32_t)i;
        uint32_t ts = start, te = e;
        trim(s, &ts, &te);
        if (ts == te && n) {
            v[n - 1].end = e;
        } else {
            if (tg_grow(&v, &cap, n, sizeof(*v), 32)) {
                tg_free(v);
                return TG_E_NOMEM;
            }
            v[n++] = (struct unit){.start = start, .end = e};
        }
        start = e;
    }
    for (size_t k = 0; k < n; k++)
        v[k].chars = count_cp(s, v[k].start, v[k].end);
    *out = v;
    *nout = n;
    return TG_OK;
}

/* A sentence longer than the target: windows of target code points. */
static int hard_split(struct pieces *p, const char *s, const struct unit *u, size_t target,
                      size_t overlap, const char *path)
{
    size_t step = target - overlap;
    uint32_t ws = u->start;
    int rc = TG_OK;
    while (!rc && ws < u->end) {
        uint32_t we = ws, adv_pos = ws;
        size_t c = 0;
        while (we < u->end && c < target) {
            we++;
            while (we < u->end && ((unsigned char)s[we] & 0xC0) == 0x80)
                we++;
            c++;
            if (c == step)
                adv_pos = we;
        }
        rc = push_piece(p, s, ws, we, path);
        if (we >= u->end)
            break;
        ws = adv_pos > ws ? adv_pos : we;
    }
    return rc;
}

static int window_group(struct pieces *p, const char *s, uint32_t gs, uint32_t ge, size_t target,
                        size_t overlap, const char *path)
{
    struct unit *u = NULL;
    size_t n = 0;
    int rc = split_units(s, gs, ge, &u, &n);
    size_t i = 0;
    while (!rc && i < n) {
        if (u[i].chars > target) {
            rc = hard_split(p, s, &u[i], target, overlap, path);
            i++;
            continue;
        }
        size_t j = i, tot = 0;
        while (j < n && u[j].chars <= target && tot + u[j].chars <= target)
            tot += u[j++].chars;
        rc = push_piece(p, s, u[i].start, u[j - 1].end, path);
        if (rc || j >= n)
            break;
        size_t m = j, ov = 0;
        if (u[j].chars <= target)
            while (m - 1 > i && ov + u[m - 1].chars <= overlap &&
                   ov + u[m - 1].chars + u[j].chars <= target)
                ov += u[--m].chars;
        i = m;
    }
    tg_free(u);
    return rc;
}

int tg_kb_split(const char *text, size_t len, size_t target, size_t overlap,
                struct tg_kb_piece **out, size_t *n)
{
    struct section *sec = NULL;
    size_t nsec = 0;
    struct pieces p = {0};
    int rc;
    if (len >= UINT32_MAX)
        return TG_E_TOOBIG;
    if (target < 16)
        target = 16;
    if (overlap > target / 2)
        overlap = target / 2;
    size_t tiny = target / 16;
    rc = find_sections(text, len, &sec, &nsec);
    if (rc)
        return rc;
    size_t g = 0;
    while (!rc && g < nsec) {
        size_t gchars = trimmed_chars(text, sec[g].body_start, sec[g].body_end);
        size_t last = g;
        if (gchars == 0) {
            g++;
            continue;
        }
        while (last + 1 < nsec) {
            const struct section *nx = &sec[last + 1];
            size_t comb = trimmed_chars(text, sec[g].body_start, nx->body_end);
            if (comb > target || (nx->level > 0 && nx->level < 3 && gchars >= tiny))
                break;
            last++;
            gchars = comb;
        }
        if (gchars <= target)
            rc = push_piece(&p, text, sec[g].body_start, sec[last].body_end, sec[g].path);
        else
            rc = window_group(&p, text, sec[g].body_start, sec[last].body_end, target, overlap,
                              sec[g].path);
        g = last + 1;
    }
    sections_free(sec, nsec);
    if (rc) {
        tg_kb_pieces_free(p.v, p.n);
        return rc;
    }
    *out = p.v;
    *n = p.n;
    return TG_OK;
}

void tg_kb_pieces_free(struct tg_kb_piece *pieces, size_t n)
{
    for (size_t i = 0; pieces && i < n; i++)
        tg_free(pieces[i].heading);
    tg_free(pieces);
}
