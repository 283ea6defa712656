/*
 * focus.c - the part of a customer's message that asks: the clauses with a
 * question mark or a question word.  Customers tell a story before the
 * question ("上周我爸在小区里摔了一跤，手腕骨折了，…，能按几成算？"); measures
 * of how much of the question a passage answers look at the focus too, so
 * the story does not dilute them.  See text.h.
 */
#include "text/text.h"

#include <string.h>

const char *tg_text_focus(const char *q, size_t n, struct tg_buf *out)
{
    /* anywhere in a clause */
    static const char *const asks[] = {"?",      "？",     "吗",     "呢",       "怎",     "多少",
                                       "多久",   "几",     "哪",     "什么",     "啥",     "谁",
                                       "能否",   "能不能", "是不是", "可不可以", "要不要", "会不会",
                                       "有没有", "咋",     "如何",   "为何",     "是否",   "か"};
    /* at a clause's start */
    static const char *const opens[] = {"how ", "what ",   "when ",  "where ", "why ",  "which ",
                                        "who ", "can ",    "could ", "do ",    "does ", "is ",
                                        "are ", "should ", "will ",  "would "};
    static const char *const ends[] = {",", ".", ";", "!", "?", "。", "、", "，", "；", "！", "？"};
    size_t start = 0, last = 0, clauses = 0;
    tg_buf_reset(out);
    while (start < n) {
        size_t i = start, el = 0;
        for (; i < n && !el; i += el ? 0 : 1)
            for (size_t k = 0; !el && k < TG_ARRAY_LEN(ends); k++)
                if (!strncmp(q + i, ends[k], strlen(ends[k])))
                    el = strlen(ends[k]);
        size_t cl = i + el - start; /* the clause with its end mark */
        bool ask = false;
        for (size_t k = 0; !ask && k < TG_ARRAY_LEN(asks); k++)
            ask = memmem(q + start, cl, asks[k], strlen(asks[k])) != NULL;
        size_t sp = start;
        while (sp < i && q[sp] == ' ')
            sp++;
        for (size_t k = 0; !ask && k < TG_ARRAY_LEN(opens); k++)
            ask = i - sp >= strlen(opens[k]) && !strncmp(q + sp, opens[k], strlen(opens[k]));
        if (ask && tg_buf_append(out, q + start, cl) != TG_OK)
            return NULL;
        if (cl > el) {
            clauses++;
            last = start;
        }
        start = i + el;
    }
    if (clauses < 2)
        return "";
    if (!out->len && tg_buf_append(out, q + last, n - last) != TG_OK)
        return NULL;
    return out->data;
}
