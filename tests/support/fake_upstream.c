/*
 * fake_upstream.c - a scriptable OpenAI-compatible model server that stands
 * in for a real one behind trustgate in tests and benchmarks.
 *
 * It speaks just enough HTTP/1.1 on libevent bufferevents: keep-alive and
 * pipelining, Content-Length and chunked request bodies, "Expect:
 * 100-continue", and chunked (or, for HTTP/1.0 clients, close-delimited)
 * streaming replies.  Chat requests are answered with "fake answer to: <last
 * user message>", either as one chat.completion object or as
 * chat.completion.chunk server-sent events ending in "data: [DONE]".  Each
 * reply is written in a dialect: the byte-level format of one real server
 * (vLLM, llama.cpp, Ollama, TGI, Azure...) or one isolated SSE/JSON feature,
 * from the table dialects[]; steps can also script tool calls, reasoning
 * and the finish reason.
 *
 * Tests steer it over the /_control/ endpoints: a FIFO of steps, each
 * consumed by one chat request, can delay, hang, reset the connection, fail
 * with a status, or break a stream in several ways; /_control/stats reports
 * what arrived.  All waiting is done with evtimers on the one event loop, so
 * slow or hung exchanges never hold up the others.  Usage: tests/support/fake_upstream.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "core/core.h"

#define HEAD_MAX (64 * 1024)
#define BODY_MAX (32 * 1024 * 1024)
#define CHUNK_LINE_MAX 1024
#define HDR_MAX 100
#define PIECE_CHARS 8
#define LISTEN_BACKLOG 1024
#define MODEL_ID "fake-model"

/* Reader results; an HTTP status (>= 400) means the request cannot be read. */
enum { R_MORE = 0, R_AGAIN = 1, R_DONE = 2 };

/* One scripted behaviour.  Integer fields are -1 when unset. */
struct step {
    int64_t status;
    int64_t delay_ms;
    int64_t ttft_ms;
    int64_t chunk_delay_ms;
    int64_t cut_after;
    int64_t stall_after;
    int64_t malformed_at;
    int64_t reset_after;
    bool hang;
    bool reset;
    bool reject_prefill; /* 400 when the last message is the assistant's (a prefill) */
    bool no_done;        /* stream: end after the finish (and usage) chunk, without [DONE] */
    char *content;       /* owned; NULL: the default answer */
    char *error_code;    /* owned; with status: the error's code instead of the usual one */
    char *error_message; /* owned; with status: the error's message */
    char *retry_after;   /* owned; with status: the Retry-After value, sent verbatim */
    char *dialect;       /* owned; NULL: compact, unless the request names one */
    char *reasoning;     /* owned; reasoning text sent before the answer */
    char *finish_reason; /* owned; NULL: "stop", or "tool_calls" with tool_calls */
    json_t *tool_calls;  /* owned reference; [{name, arguments, id?}], never modified */
    char *embed_as;      /* owned; embeddings: every input is embedded as this text */
    struct step *next;
};

/* F_TEXT: a string, or an integer in [min, max] kept as its decimal text. */
enum field_kind { F_INT, F_BOOL, F_STR, F_TEXT, F_TOOLS };

static const struct step_field {
    const char *name;
    enum field_kind kind;
    size_t off;
    int64_t min;
    int64_t max;
} step_fields[] = {
    {"status", F_INT, offsetof(struct step, status), 400, 599},
    {"retry_after", F_TEXT, offsetof(struct step, retry_after), 0, INT32_MAX},
    {"delay_ms", F_INT, offsetof(struct step, delay_ms), 0, INT32_MAX},
    {"ttft_ms", F_INT, offsetof(struct step, ttft_ms), 0, INT32_MAX},
    {"chunk_delay_ms", F_INT, offsetof(struct step, chunk_delay_ms), 0, INT32_MAX},
    {"cut_after", F_INT, offsetof(struct step, cut_after), 0, INT32_MAX},
    {"stall_after", F_INT, offsetof(struct step, stall_after), 0, INT32_MAX},
    {"malformed_at", F_INT, offsetof(struct step, malformed_at), 0, INT32_MAX},
    {"reset_after", F_INT, offsetof(struct step, reset_after), 0, INT32_MAX},
    {"hang", F_BOOL, offsetof(struct step, hang), 0, 0},
    {"reset", F_BOOL, offsetof(struct step, reset), 0, 0},
    {"content", F_STR, offsetof(struct step, content), 0, 0},
    {"error_code", F_STR, offsetof(struct step, error_code), 0, 0},
    {"error_message", F_STR, offsetof(struct step, error_message), 0, 0},
    {"reject_prefill", F_BOOL, offsetof(struct step, reject_prefill), 0, 0},
    {"no_done", F_BOOL, offsetof(struct step, no_done), 0, 0},
    {"dialect", F_STR, offsetof(struct step, dialect), 0, 0},
    {"reasoning", F_STR, offsetof(struct step, reasoning), 0, 0},
    {"finish_reason", F_STR, offsetof(struct step, finish_reason), 0, 0},
    {"tool_calls", F_TOOLS, offsetof(struct step, tool_calls), 0, 0},
    {"embed_as", F_STR, offsetof(struct step, embed_as), 0, 0},
};

struct conn;

struct server {
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *sig_term;
    struct event *sig_int;
    const char *require_key;
    struct step *queue_head;
    struct step *queue_tail;
    size_t queue_len;
    struct step fallback; /* used when the queue is empty */
    struct conn *conns;
    uint64_t requests;
    uint64_t completions;
    uint64_t embed_requests; /* POST /v1/embeddings, including rejected ones */
    uint64_t embed_inputs;   /* texts embedded */
    uint64_t open_connections;
    uint64_t total_connections;
    uint64_t next_id;
    json_t *last_request;
    json_t *models; /* per-model scripts: name -> {steps, default, requests, completions, at_ms} */
    struct tg_buf last_headers; /* "name\0value\0" pairs of the last chat request */
    struct tg_buf scratch;      /* the response body or the JSON of an SSE event being built */
    json_t *tool_done;          /* POST /tools/...: Idempotency-Key -> the answer given */
    uint64_t tool_calls;        /* requests to the tools */
    uint64_t tool_runs;         /* of them, executed (not answered from tool_done) */
    char tool_auth[256];        /* the Authorization header of the last one, "" when none */
    struct tg_buf event;        /* the framed SSE event being built */
};

enum conn_state { C_HEAD, C_BODY, C_CHUNKED, C_BUSY, C_DEAD };
enum chunk_phase { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER };
enum conn_job { J_NONE, J_DELAY, J_TTFT, J_NEXT_CHUNK, J_CLOSE, J_RESET, J_TOOL };
enum piece_kind { P_REASON, P_TOOL, P_CONTENT, P_END };
enum drain_action { D_NONE, D_CLOSE, D_RESET };

struct hdr {
    const char *name; /* lower-cased */
    const char *value;
};

/* One client connection; owned by the server's list, freed by conn_free(). */
struct conn {
    struct server *srv;
    struct conn *prev;
    struct conn *next;
    struct bufferevent *bev;
    struct event *timer;
    enum conn_state state;
    enum chunk_phase chunk_phase;
    enum conn_job job;
    enum drain_action drain;
    bool in_input;
    bool counted;
    bool keep_alive;
    bool http10;
    struct tg_buf head; /* the request head, split in place into strings */
    struct tg_buf body;
    uint64_t body_left;
    const char *method;
    const char *path;
    const char *query; /* after '?', "" when none */
    struct hdr hdrs[HDR_MAX];
    size_t nhdrs;
    /* the chat exchange in progress */
    struct step step;
    struct tg_buf model;
    struct tg_buf reply;
    bool stream;
    bool include_usage;
    bool prefill;    /* the request ends with an assistant message */
    bool embeddings; /* the exchange is an embeddings request: reply holds its body */
    bool chunked_out;
    uint64_t id;
    int64_t created;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    size_t reply_off;
    int64_t piece;
    int64_t npieces;
    /* the dialect and what the request asked for */
    const struct dialect *d;
    const json_t *tools; /* borrowed from step.tool_calls; NULL: a text answer */
    const char *finish;  /* the finish_reason sent */
    bool logprobs;
    bool continuous_usage; /* stream_options.continuous_usage_stats */
    bool oom;              /* a JSON value of the reply could not be built */
    int64_t top_logprobs;
    int64_t reasoning_tokens;
    int64_t events; /* SSE events sent in this reply */
    /* where the next streamed piece starts */
    enum piece_kind phase;
    size_t call;
    bool call_started;
    int tool_status; /* a tool's answer held back (J_TOOL) */
};

static void process_input(struct conn *c);
static void stream_run(struct conn *c);

/* ------------------------------------------------------------------ text */

/* Appends that remember the first failure, so a builder checks once at the end. */
struct out {
    struct tg_buf *b;
    int rc;
};

static void o_append(struct out *o, const char *s, size_t n)
{
    if (!o->rc && n)
        o->rc = tg_buf_append(o->b, s, n);
}

static void o_puts(struct out *o, const char *s)
{
    o_append(o, s, strlen(s));
}

static void o_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void o_printf(struct out *o, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (!o->rc)
        o->rc = tg_buf_vprintf(o->b, fmt, ap);
    va_end(ap);
}

/* A JSON string literal (RFC 8259 section 7); s is valid UTF-8. */
static void o_str(struct out *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, run = 0;

    o_append(o, "\"", 1);
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[6] = {'\\', (char)ch, 0, 0, 0, 0};
        size_t elen = 2;

        if (ch == '\n')
            esc[1] = 'n';
        else if (ch == '\r')
            esc[1] = 'r';
        else if (ch == '\t')
            esc[1] = 't';
        else if (ch < 0x20) {
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            elen = 6;
        } else if (ch != '"' && ch != '\\')
            continue;
        o_append(o, s + run, i - run);
        o_append(o, esc, elen);
        run = i + 1;
    }
    o_append(o, s + run, n - run);
    o_append(o, "\"", 1);
}

/* The escape of one ASCII character that needs one, as o_str writes it. */
static void o_str_char(struct out *o, char ch)
{
    struct tg_buf tmp;
    struct out t = {&tmp, TG_OK};

    tg_buf_init(&tmp, 16);
    o_str(&t, &ch, 1);
    if (!t.rc && tmp.len >= 2)
        o_append(o, tmp.data + 1, tmp.len - 2);
    else if (t.rc)
        o->rc = t.rc;
    tg_buf_free(&tmp);
}

static size_t utf8_chars(const char *s, size_t n)
{
    size_t i, count = 0;

    for (i = 0; i < n; i++)
        count += ((unsigned char)s[i] & 0xC0) != 0x80;
    return count;
}

/* End of the piece of at most PIECE_CHARS characters starting at off. */
static size_t piece_end(const char *s, size_t n, size_t off)
{
    size_t chars = 0;

    while (off < n) {
        if (((unsigned char)s[off] & 0xC0) != 0x80 && chars++ == PIECE_CHARS)
            break;
        off++;
    }
    return off;
}

static int64_t tokens_of(size_t chars)
{
    return (int64_t)((chars + 3) / 4);
}

/* Append the text of a message content (a string or an array of text parts)
 * to o when o is non-NULL; return its length in characters. */
static size_t content_text(const json_t *content, struct out *o)
{
    size_t i, chars = 0;
    const json_t *part;

    if (json_is_string(content)) {
        chars = utf8_chars(json_string_value(content), json_string_length(content));
        if (o)
            o_append(o, json_string_value(content), json_string_length(content));
        return chars;
    }
    if (!json_is_array(content))
        return 0;
    for (i = 0; i < json_array_size(content); i++) {
        part = json_object_get(json_array_get(content, i), "text");
        if (json_is_string(part))
            chars += content_text(part, o);
    }
    return chars;
}

/* ------------------------------------------------------------------ JSON writer */

/* How a reply's JSON is written: real servers differ in separators,
 * indentation, escaping and key order, and a gateway must read them all. */
enum js { JS_COMPACT, JS_SPACED, JS_PRETTY };

struct jfmt {
    enum js style;
    bool ascii;  /* non-ASCII as \uXXXX, astral characters as surrogate pairs (Python's default) */
    bool html;   /* <, >, &, U+2028 and U+2029 as \u escapes (Go's encoding/json) */
    bool sorted; /* keys in byte order at every level */
};

/* Decode the UTF-8 sequence at s[*i] (valid UTF-8) and advance *i past it. */
static uint32_t utf8_next(const char *s, size_t n, size_t *i)
{
    const unsigned char *p = (const unsigned char *)s + *i;
    size_t len = p[0] < 0x80 ? 1 : p[0] < 0xE0 ? 2 : p[0] < 0xF0 ? 3 : 4;
    uint32_t cp = len == 1 ? p[0] : (uint32_t)p[0] & (0x7Fu >> len);

    if (*i + len > n)
        len = n - *i;
    for (size_t k = 1; k < len; k++)
        cp = (cp << 6) | (p[k] & 0x3Fu);
    *i += len;
    return cp;
}

static void o_u16(struct out *o, uint32_t unit)
{
    o_printf(o, "\\u%04x", (unsigned)unit);
}

/* A JSON string literal escaped as f asks; s is valid UTF-8. */
static void o_jstr(struct out *o, const char *s, size_t n, const struct jfmt *f)
{
    size_t i = 0, run;

    if (!f->ascii && !f->html) {
        o_str(o, s, n);
        return;
    }
    o_append(o, "\"", 1);
    while (i < n) {
        run = i;
        while (i < n && (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x80 && s[i] != '"' &&
               s[i] != '\\' && !(f->html && (s[i] == '<' || s[i] == '>' || s[i] == '&')))
            i++;
        o_append(o, s + run, i - run);
        if (i == n)
            break;
        if ((unsigned char)s[i] < 0x80) {
            if (s[i] == '<' || s[i] == '>' || s[i] == '&')
                o_u16(o, (unsigned char)s[i]);
            else
                o_str_char(o, s[i]);
            i++;
            continue;
        }
        run = i;
        uint32_t cp = utf8_next(s, n, &i);
        if (!f->ascii && !(cp == 0x2028 || cp == 0x2029)) {
            o_append(o, s + run, i - run);
        } else if (cp >= 0x10000) {
            o_u16(o, 0xD800 + ((cp - 0x10000) >> 10));
            o_u16(o, 0xDC00 + ((cp - 0x10000) & 0x3FF));
        } else {
            o_u16(o, cp);
        }
    }
    o_append(o, "\"", 1);
}

/* The shortest decimal text that reads back as v, the way Python's repr()
 * writes floats: positional for exponents -4..15, always with a '.' or an
 * exponent. */
static void o_real(struct out *o, double v)
{
    char buf[64];
    const char *e;
    int prec, exp10;

    for (prec = 1; prec < 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec - 1, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    snprintf(buf, sizeof(buf), "%.*e", prec - 1, v);
    e = strchr(buf, 'e');
    exp10 = e ? (int)strtol(e + 1, NULL, 10) : 0;
    if (e && exp10 >= -4 && exp10 < 16)
        snprintf(buf, sizeof(buf), "%.*f", prec - 1 - exp10 > 0 ? prec - 1 - exp10 : 0, v);
    o_puts(o, buf);
    if (!strpbrk(buf, ".eEn"))
        o_puts(o, ".0");
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void o_newline(struct out *o, const struct jfmt *f, int depth)
{
    if (f->style == JS_PRETTY)
        o_printf(o, "\n%*s", 2 * depth, "");
}

static void o_json(struct out *o, const json_t *v, const struct jfmt *f, int depth);

static void o_json_object(struct out *o, const json_t *v, const struct jfmt *f, int depth)
{
    size_t n = json_object_size(v), i = 0;
    const char **keys = n ? tg_malloc(n * sizeof(*keys)) : NULL;
    const char *k;
    json_t *item;

    if (n && !keys) {
        o->rc = TG_E_NOMEM;
        return;
    }
    json_object_foreach((json_t *)v, k, item)
    {
        keys[i++] = k;
    }
    if (f->sorted && n > 1)
        qsort(keys, n, sizeof(*keys), key_cmp);
    o_append(o, "{", 1);
    for (i = 0; i < n; i++) {
        if (i)
            o_puts(o, f->style == JS_SPACED ? ", " : ",");
        o_newline(o, f, depth + 1);
        o_jstr(o, keys[i], strlen(keys[i]), f);
        o_puts(o, f->style == JS_COMPACT ? ":" : ": ");
        o_json(o, json_object_get(v, keys[i]), f, depth + 1);
    }
    if (n)
        o_newline(o, f, depth);
    o_append(o, "}", 1);
    tg_free(keys);
}

/* Serialize v as f says: compact (",", ":"), spaced (", ", ": ") or pretty
 * (two-space indent, ": ", empty containers as [] and {}), like json.dumps. */
static void o_json(struct out *o, const json_t *v, const struct jfmt *f, int depth)
{
    size_t i, n;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        o_json_object(o, v, f, depth);
        break;
    case JSON_ARRAY:
        n = json_array_size(v);
        o_append(o, "[", 1);
        for (i = 0; i < n; i++) {
            if (i)
                o_puts(o, f->style == JS_SPACED ? ", " : ",");
            o_newline(o, f, depth + 1);
            o_json(o, json_array_get(v, i), f, depth + 1);
        }
        if (n)
            o_newline(o, f, depth);
        o_append(o, "]", 1);
        break;
    case JSON_STRING:
        o_jstr(o, json_string_value(v), json_string_length(v), f);
        break;
    case JSON_INTEGER:
        o_printf(o, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        o_real(o, json_real_value(v));
        break;
    case JSON_TRUE:
        o_puts(o, "true");
        break;
    case JSON_FALSE:
        o_puts(o, "false");
        break;
    default:
        o_puts(o, "null");
        break;
    }
}

/* ------------------------------------------------------------------ dialects */

/* What a server puts around and inside its replies.  One row per dialect in
 * dialects[] below; docs/UPSTREAMS.md says where each row was taken from. */
enum role_mode {
    ROLE_CHUNK, /* a first chunk carries the role (and role_content) */
    ROLE_FIRST, /* the first piece's delta carries the role */
    ROLE_EVERY  /* every delta carries the role */
};
enum jv { JV_OMIT, JV_NULL, JV_EMPTY };           /* a field left out, null, or "" */
enum tool_content { TC_NULL, TC_EMPTY, TC_OMIT }; /* content beside tool calls */
enum choice_nulls {
    CN_FINISH, /* "finish_reason": null until the end, no logprobs key */
    CN_BOTH,   /* "logprobs": null and "finish_reason": null */
    CN_NONE    /* neither key until it has a value */
};
enum finish_delta { FD_EMPTY, FD_CONTENT, FD_ROLE }; /* {}, {"content":""}, {role, content:""} */
enum usage_mode {
    U_CHUNK,        /* stream_options.include_usage: a last chunk with "choices": [] */
    U_FINISH_ALWAYS /* usage inside the finish chunk, asked for or not */
};
enum tool_mode {
    T_SPLIT,     /* first {index, id, type, function{name, arguments: ""}}, then argument pieces */
    T_NAME_ONLY, /* the same, but the first chunk's function has no arguments */
    T_WHOLE,     /* each call whole in one chunk */
    T_REPEAT,    /* every chunk repeats index, id, type; name only in the first, else null */
    T_QWEN       /* first has name and arguments ""; later ones "id": "" and type again */
};

#define X_AZURE (1u << 0)            /* prompt_filter_results chunk, content_filter_results */
#define X_TIMINGS (1u << 1)          /* llama.cpp "timings" in the last chunk and the body */
#define X_TIER (1u << 2)             /* "service_tier": "default" */
#define X_OBFUSCATION (1u << 3)      /* "obfuscation" padding on every chunk */
#define X_VLLM (1u << 4)             /* stop_reason, vLLM's null fields in the body */
#define X_USAGE_DETAILS (1u << 5)    /* OpenAI's prompt/completion_tokens_details */
#define X_DS_USAGE (1u << 6)         /* DeepSeek's prompt_cache_hit/miss_tokens */
#define X_PAIR_NULLS (1u << 7)       /* with reasoning, each delta nulls the other text field */
#define X_USAGE_NULL (1u << 8)       /* "usage": null on every chunk without usage */
#define X_USAGE_NULL_ASKED (1u << 9) /* the same, only when include_usage was asked */
#define X_REFUSAL (1u << 10)         /* "refusal": null (and message annotations) */
#define X_NO_BYTES (1u << 11)        /* logprob entries without "bytes" */
#define X_OMIT_NULLS (1u << 12)      /* no null-valued fields anywhere */
#define X_EMPTY_ID (1u << 13)        /* "id": "" */
#define X_CONTINUOUS (1u << 14)      /* honour stream_options.continuous_usage_stats */
#define X_FIELDS (1u << 15)          /* id:, event: and a first retry: field on every event */
#define X_FN_DESC (1u << 16)         /* tool calls in the body carry "description": null */

struct dialect {
    const char *name;
    struct jfmt stream_fmt;
    struct jfmt body_fmt;
    const char *data;        /* the data field's name and separator; NULL: "data: " */
    const char *eol;         /* line end; NULL: "\n" */
    const char *lead;        /* comment text sent with the headers, before any event */
    const char *ping;        /* comment text sent before every piece */
    const char *body_lead;   /* bytes before a non-stream JSON body */
    const char *body_tail;   /* bytes after it */
    bool no_done;            /* the stream ends without data: [DONE] */
    const char *fingerprint; /* system_fingerprint; NULL: no key, "": null */
    const char *reasoning;   /* the key for reasoning text; NULL: reasoning_content */
    const char *tool_prefix; /* default tool call ids start with this; NULL: call_ */
    const char *top;         /* key orders, space-separated; NULL: OpenAI's order */
    const char *body_top;    /* the non-stream body's top level; NULL: top */
    const char *choice;
    const char *delta; /* also the non-stream message */
    const char *tool;
    const char *body_tool; /* tool calls of the non-stream message; NULL: tool */
    const char *fn;
    const char *usage;
    enum role_mode role;
    enum jv role_content;
    enum tool_content tool_content;
    enum choice_nulls nulls;
    enum finish_delta fin;
    enum usage_mode usage_mode;
    enum tool_mode tools;
    unsigned x;
};

static const struct dialect dialects[] = {
    {.name = "compact"},
    {.name = "spaced", .stream_fmt = {.style = JS_SPACED}, .body_fmt = {.style = JS_SPACED}},
    {.name = "pretty", .stream_fmt = {.style = JS_PRETTY}, .body_fmt = {.style = JS_PRETTY}},
    {.name = "crlf", .eol = "\r\n"},
    {.name = "cr", .eol = "\r"},
    {.name = "comments", .lead = "", .ping = " keep-alive"},
    {.name = "nospace", .data = "data:"},
    {.name = "ascii", .stream_fmt = {.ascii = true}, .body_fmt = {.ascii = true}},
    {.name = "fields", .x = X_FIELDS},
    {.name = "nodone", .no_done = true},
    {.name = "openai",
     .body_fmt = {.style = JS_PRETTY},
     .fingerprint = "fp_fake0001",
     .role_content = JV_EMPTY,
     .nulls = CN_BOTH,
     .x = X_TIER | X_OBFUSCATION | X_USAGE_DETAILS | X_USAGE_NULL_ASKED | X_REFUSAL},
    {.name = "azure",
     .stream_fmt = {.sorted = true},
     .body_fmt = {.sorted = true},
     .fingerprint = "fp_fake0001",
     .role_content = JV_EMPTY,
     .nulls = CN_BOTH,
     .x = X_AZURE | X_USAGE_DETAILS | X_REFUSAL},
    {.name = "vllm",
     .reasoning = "reasoning",
     .tool_prefix = "chatcmpl-tool-",
     .tool = "id type index function",
     .usage = "prompt_tokens total_tokens completion_tokens",
     .role_content = JV_EMPTY,
     .nulls = CN_BOTH,
     .fin = FD_CONTENT,
     .tools = T_NAME_ONLY,
     .x = X_VLLM | X_CONTINUOUS},
    {.name = "llamacpp",
     .fingerprint = "b6097-fake",
     .tool_prefix = "",
     .top = "choices created id model system_fingerprint object usage timings",
     .body_top = "choices created model system_fingerprint object usage id timings",
     .choice = "finish_reason index delta message logprobs",
     .body_tool = "type function id",
     .usage = "completion_tokens prompt_tokens total_tokens",
     .role_content = JV_NULL,
     .usage_mode = U_FINISH_ALWAYS,
     .x = X_TIMINGS},
    {.name = "ollama",
     .stream_fmt = {.html = true},
     .body_fmt = {.html = true},
     .body_tail = "\n",
     .fingerprint = "fp_ollama",
     .reasoning = "reasoning",
     .choice = "index delta message finish_reason logprobs",
     .tool = "id index type function",
     .role = ROLE_FIRST,
     .tool_content = TC_EMPTY,
     .tools = T_WHOLE},
    {.name = "tgi",
     .data = "data:",
     .fingerprint = "3.3.6-native",
     .top = "object id created model system_fingerprint choices usage",
     .role = ROLE_EVERY,
     .tool_content = TC_OMIT,
     .nulls = CN_BOTH,
     .fin = FD_ROLE,
     .tools = T_REPEAT,
     .x = X_USAGE_NULL | X_NO_BYTES | X_EMPTY_ID | X_FN_DESC},
    {.name = "deepseek",
     .lead = " keep-alive",
     .body_lead = "\n\n",
     .fingerprint = "fp_fake_prod0820_fp8_kvcache",
     .tool_prefix = "call_0_",
     .role_content = JV_EMPTY,
     .nulls = CN_BOTH,
     .fin = FD_CONTENT,
     .usage_mode = U_FINISH_ALWAYS,
     .x = X_DS_USAGE | X_PAIR_NULLS},
    {.name = "qwen",
     .fingerprint = "",
     .top = "choices object usage created system_fingerprint model id",
     .choice = "delta message finish_reason index logprobs",
     .delta = "content reasoning_content tool_calls role",
     .tool = "function index id type",
     .role_content = JV_EMPTY,
     .nulls = CN_BOTH,
     .fin = FD_CONTENT,
     .tools = T_QWEN,
     .x = X_USAGE_NULL},
    {.name = "litellm",
     .top = "id created model object system_fingerprint choices usage",
     .choice = "finish_reason index delta message logprobs",
     .delta = "content role reasoning_content tool_calls",
     .tool = "id function type index",
     .fn = "arguments name",
     .usage = "completion_tokens prompt_tokens total_tokens",
     .role_content = JV_EMPTY,
     .nulls = CN_NONE,
     .x = X_OMIT_NULLS},
};

static const char *d_data(const struct dialect *d)
{
    return d->data ? d->data : "data: ";
}

static const char *d_eol(const struct dialect *d)
{
    return d->eol ? d->eol : "\n";
}

static const char *d_reasoning(const struct dialect *d)
{
    return d->reasoning ? d->reasoning : "reasoning_content";
}

static const struct dialect *dialect_find(const char *name)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(dialects); i++)
        if (strcmp(dialects[i].name, name) == 0)
            return &dialects[i];
    return NULL;
}

/* A STEP's tool_calls: [{"name": str, "arguments": str, "id"?: str}, ...]. */
static bool tool_calls_valid(const json_t *v)
{
    size_t i;
    const json_t *call;

    if (!json_is_array(v) || json_array_size(v) == 0)
        return false;
    json_array_foreach(v, i, call)
    {
        const json_t *id = json_object_get(call, "id");
        size_t keys = 2 + (id != NULL);

        if (!json_is_object(call) || json_object_size(call) != keys ||
            !json_is_string(json_object_get(call, "name")) ||
            !json_is_string(json_object_get(call, "arguments")) || (id && !json_is_string(id)))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ steps */

static int64_t *step_int(struct step *s, const struct step_field *f)
{
    return (int64_t *)(void *)((char *)s + f->off);
}

static void step_init(struct step *s)
{
    size_t i;

    memset(s, 0, sizeof(*s));
    for (i = 0; i < TG_ARRAY_LEN(step_fields); i++)
        if (step_fields[i].kind == F_INT)
            *step_int(s, &step_fields[i]) = -1;
}

static char **step_str(struct step *s, const struct step_field *f)
{
    return (char **)(void *)((char *)s + f->off);
}

static json_t **step_json(struct step *s, const struct step_field *f)
{
    return (json_t **)(void *)((char *)s + f->off);
}

/* Does a field of this kind own a string? */
static bool kind_is_str(enum field_kind k)
{
    return k == F_STR || k == F_TEXT;
}

static void step_clear(struct step *s)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(step_fields); i++) {
        if (kind_is_str(step_fields[i].kind))
            tg_free(*step_str(s, &step_fields[i]));
        else if (step_fields[i].kind == F_TOOLS)
            json_decref(*step_json(s, &step_fields[i]));
    }
    step_init(s);
}

static int step_copy(struct step *dst, const struct step *src)
{
    struct step s = *src;

    s.next = NULL;
    for (size_t i = 0; i < TG_ARRAY_LEN(step_fields); i++) {
        if (kind_is_str(step_fields[i].kind))
            *step_str(&s, &step_fields[i]) = NULL;
        else if (step_fields[i].kind == F_TOOLS)
            json_incref(*step_json(&s, &step_fields[i]));
    }
    for (size_t i = 0; i < TG_ARRAY_LEN(step_fields); i++) {
        if (!kind_is_str(step_fields[i].kind))
            continue;
        const char *v = *step_str((struct step *)src, &step_fields[i]);
        if (!v)
            continue;
        if (!(*step_str(&s, &step_fields[i]) = tg_strdup(v))) {
            step_clear(&s);
            return TG_E_NOMEM;
        }
    }
    *dst = s;
    return TG_OK;
}

static const struct step_field *step_field_find(const char *name)
{
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(step_fields); i++)
        if (strcmp(step_fields[i].name, name) == 0)
            return &step_fields[i];
    return NULL;
}

/* An F_TEXT field: a string goes into a header line as it is, so it may
 * hold no control character but a tab; an integer becomes its digits. */
static int step_set_text(struct step *s, const struct step_field *f, const json_t *v)
{
    char num[24];
    const char *text = num;
    size_t len;

    if (json_is_string(v)) {
        text = json_string_value(v);
        len = json_string_length(v);
        for (size_t i = 0; i < len; i++)
            if (((unsigned char)text[i] < 0x20 && text[i] != '\t') || text[i] == 0x7f)
                return TG_E_INVAL;
    } else if (json_is_integer(v) && json_integer_value(v) >= f->min &&
               json_integer_value(v) <= f->max) {
        len = (size_t)snprintf(num, sizeof(num), "%" PRId64, (int64_t)json_integer_value(v));
    } else {
        return TG_E_INVAL;
    }
    char *dup = tg_strndup(text, len);
    if (!dup)
        return TG_E_NOMEM;
    tg_free(*step_str(s, f));
    *step_str(s, f) = dup;
    return TG_OK;
}

static int step_set(struct step *s, const struct step_field *f, const json_t *v)
{
    if (json_is_null(v))
        return TG_OK;
    if (f->kind == F_BOOL) {
        if (!json_is_boolean(v))
            return TG_E_INVAL;
        *(bool *)(void *)((char *)s + f->off) = json_is_true(v);
        return TG_OK;
    }
    if (f->kind == F_TOOLS) {
        if (!tool_calls_valid(v))
            return TG_E_INVAL;
        json_decref(*step_json(s, f));
        *step_json(s, f) = json_incref((json_t *)v);
        return TG_OK;
    }
    if (f->kind == F_TEXT)
        return step_set_text(s, f, v);
    if (f->kind == F_STR) {
        if (!json_is_string(v))
            return TG_E_INVAL;
        char **dst = step_str(s, f);
        tg_free(*dst);
        *dst = tg_strndup(json_string_value(v), json_string_length(v));
        return *dst ? TG_OK : TG_E_NOMEM;
    }
    if (!json_is_integer(v) || json_integer_value(v) < f->min || json_integer_value(v) > f->max)
        return TG_E_INVAL;
    *step_int(s, f) = json_integer_value(v);
    return TG_OK;
}

/* Parse one STEP object into *out (written only on success).  On failure
 * err holds a message for the client. */
static int step_parse(const json_t *obj, struct step *out, char *err, size_t errlen)
{
    struct step s;
    void *it;
    int rc = TG_OK;

    step_init(&s);
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "a step must be a JSON object");
        rc = TG_E_INVAL;
        goto out;
    }
    for (it = json_object_iter((json_t *)obj); it; it = json_object_iter_next((json_t *)obj, it)) {
        const char *key = json_object_iter_key(it);
        const struct step_field *f = step_field_find(key);

        if (!f) {
            snprintf(err, errlen, "unknown step field '%s'", key);
            rc = TG_E_INVAL;
            goto out;
        }
        rc = step_set(&s, f, json_object_iter_value(it));
        if (rc) {
            snprintf(err, errlen, "bad value for step field '%s'", key);
            goto out;
        }
    }
    if (s.dialect && !dialect_find(s.dialect)) {
        snprintf(err, errlen, "unknown dialect '%.64s'", s.dialect);
        rc = TG_E_INVAL;
    }
out:
    if (rc)
        step_clear(&s);
    else
        *out = s;
    return rc;
}

/* Move the next queued step (or a copy of the fallback) into *dst. */
static int step_take(struct server *srv, struct step *dst)
{
    struct step *s = srv->queue_head;

    if (!s)
        return step_copy(dst, &srv->fallback);
    srv->queue_head = s->next;
    if (!srv->queue_head)
        srv->queue_tail = NULL;
    srv->queue_len--;
    *dst = *s;
    dst->next = NULL;
    tg_free(s);
    return TG_OK;
}

/* ------------------------------------------------------------------ per-model scripts */

/* Count one more `what` for the model this exchange named, if it is scripted. */
static void model_count(struct conn *c, const char *what)
{
    json_t *m = json_object_get(c->srv->models, c->model.data ? c->model.data : "");
    if (m)
        json_object_set_new(m, what, json_integer(tg_json_int(m, what, 0) + 1));
}

/* The step for a request naming a scripted model: its next queued step, else
 * its default, else normal.  TG_E_NOTFOUND when the model is not scripted. */
static int model_step_take(struct server *srv, const char *name, struct step *dst)
{
    json_t *m = json_object_get(srv->models, name);
    char err[128];
    if (!m)
        return TG_E_NOTFOUND;
    json_object_set_new(m, "requests", json_integer(tg_json_int(m, "requests", 0) + 1));
    int64_t t0 = tg_json_int(m, "t0_ns", 0);
    json_array_append_new(json_object_get(m, "at_ms"),
                          json_integer((tg_clock_mono_ns() - t0) / 1000000));
    json_t *steps = json_object_get(m, "steps");
    if (json_array_size(steps)) {
        int rc = step_parse(json_array_get(steps, 0), dst, err, sizeof(err));
        json_array_remove(steps, 0);
        return rc;
    }
    const json_t *def = json_object_get(m, "default");
    if (json_is_object(def))
        return step_parse(def, dst, err, sizeof(err));
    step_init(dst);
    return TG_OK;
}

/* ------------------------------------------------------------------ connections */

static void conn_free(struct conn *c, bool rst)
{
    struct server *srv = c->srv;

    if (rst) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};

        /* Linger 0 makes close() send RST instead of FIN. */
        setsockopt(bufferevent_getfd(c->bev), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->counted)
        srv->open_connections--;
    event_free(c->timer);
    bufferevent_free(c->bev);
    tg_buf_free(&c->head);
    tg_buf_free(&c->body);
    tg_buf_free(&c->model);
    tg_buf_free(&c->reply);
    step_clear(&c->step);
    tg_free(c);
}

static void arm(struct conn *c, enum conn_job job, int64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};

    c->job = job;
    evtimer_add(c->timer, &tv);
}

/* Close (or reset) from a callback of the loop, so callers deep in request
 * handling never see the connection disappear under them. */
static void conn_kill(struct conn *c, bool rst)
{
    c->state = C_DEAD;
    c->job = rst ? J_RESET : J_CLOSE;
    evtimer_del(c->timer);
    event_active(c->timer, EV_TIMEOUT, 1);
}

/* Stop reading requests; close or reset once the output has reached the socket. */
static void finish_with(struct conn *c, enum drain_action action)
{
    c->state = C_BUSY;
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_kill(c, action == D_RESET);
    else
        c->drain = action;
}

static void reply_done(struct conn *c)
{
    step_clear(&c->step);
    if (!c->keep_alive) {
        finish_with(c, D_CLOSE);
        return;
    }
    c->state = C_HEAD;
    if (!c->in_input)
        process_input(c);
}

static const char *find_header(const struct conn *c, const char *name)
{
    size_t i;

    for (i = 0; i < c->nhdrs; i++)
        if (strcmp(c->hdrs[i].name, name) == 0)
            return c->hdrs[i].value;
    return NULL;
}

/* ------------------------------------------------------------------ responses */

static const struct {
    int status;
    const char *reason;
    const char *type;
    const char *code;
} statuses[] = {
    {200, "OK", NULL, NULL},
    {400, "Bad Request", "invalid_request_error", NULL},
    {401, "Unauthorized", "authentication_error", "invalid_api_key"},
    {403, "Forbidden", "permission_error", NULL},
    {404, "Not Found", "not_found_error", NULL},
    {405, "Method Not Allowed", "invalid_request_error", NULL},
    {408, "Request Timeout", "timeout_error", NULL},
    {413, "Content Too Large", "invalid_request_error", NULL},
    {429, "Too Many Requests", "rate_limit_error", "rate_limit_exceeded"},
    {431, "Request Header Fields Too Large", "invalid_request_error", NULL},
    {500, "Internal Server Error", "server_error", NULL},
    {501, "Not Implemented", "server_error", NULL},
    {502, "Bad Gateway", "server_error", NULL},
    {503, "Service Unavailable", "server_error", NULL},
    {504, "Gateway Timeout", "server_error", NULL},
};

static size_t status_index(int status)
{
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(statuses); i++)
        if (statuses[i].status == status)
            return i;
    return TG_ARRAY_LEN(statuses);
}

static const char *reason_of(int status)
{
    size_t i = status_index(status);

    if (i < TG_ARRAY_LEN(statuses))
        return statuses[i].reason;
    return status >= 500 ? "Server Error" : "Client Error";
}

/* retry_after: the Retry-After value, NULL for none. */
static void write_head(struct conn *c, int status, const char *ctype, int64_t clen,
                       const char *retry_after)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n", status, reason_of(status),
                        ctype);
    if (clen >= 0)
        evbuffer_add_printf(out, "Content-Length: %" PRId64 "\r\n", clen);
    else
        evbuffer_add_printf(out, "Cache-Control: no-cache\r\n%s",
                            c->chunked_out ? "Transfer-Encoding: chunked\r\n" : "");
    if (retry_after)
        evbuffer_add_printf(out, "Retry-After: %s\r\n", retry_after);
    if (!c->keep_alive)
        evbuffer_add_printf(out, "Connection: close\r\n");
    else if (c->http10)
        evbuffer_add_printf(out, "Connection: keep-alive\r\n");
    evbuffer_add(out, "\r\n", 2);
}

static void send_body(struct conn *c, int status, const char *body, size_t len,
                      const char *retry_after)
{
    write_head(c, status, "application/json", (int64_t)len, retry_after);
    evbuffer_add(bufferevent_get_output(c->bev), body, len);
    reply_done(c);
}

/* An OpenAI-style error body {"error": {"message", "type", "param", "code"}}. */
static void send_error_code(struct conn *c, int status, const char *code, const char *message,
                            const char *retry_after)
{
    struct out o = {&c->srv->scratch, TG_OK};
    size_t i = status_index(status);
    const char *type = status >= 500 ? "server_error" : "invalid_request_error";

    if (i < TG_ARRAY_LEN(statuses) && statuses[i].type) {
        type = statuses[i].type;
        code = code ? code : statuses[i].code;
    }
    tg_buf_reset(o.b);
    o_puts(&o, "{\"error\":{\"message\":");
    o_str(&o, message, strlen(message));
    o_puts(&o, ",\"type\":");
    o_str(&o, type, strlen(type));
    o_puts(&o, ",\"param\":null,\"code\":");
    if (code)
        o_str(&o, code, strlen(code));
    else
        o_puts(&o, "null");
    o_puts(&o, "}}");
    if (o.rc) {
        conn_kill(c, false);
        return;
    }
    send_body(c, status, o.b->data, o.b->len, retry_after);
}

static void send_error(struct conn *c, int status, const char *message, const char *retry_after)
{
    send_error_code(c, status, NULL, message, retry_after);
}

/* Serialize v (reference stolen) and send it with status. */
static void send_json(struct conn *c, int status, json_t *v)
{
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;

    json_decref(v);
    if (!text) {
        send_error(c, 500, "out of memory", NULL);
        return;
    }
    send_body(c, status, text, strlen(text), NULL);
    tg_free(text);
}

/* ------------------------------------------------------------------ chat */

/* Replies are built as jansson values in the dialect's key order and then
 * written by o_json(), so one builder serves every dialect.  A failed
 * allocation anywhere sets c->oom and fails the reply. */

/* obj[key] = v, v stolen. */
static void put(struct conn *c, json_t *obj, const char *key, json_t *v)
{
    if (!obj || !v || json_object_set_new(obj, key, v))
        c->oom = true;
}

/* A one-element array holding v (stolen). */
static json_t *one(struct conn *c, json_t *v)
{
    json_t *a = json_array();

    if (!a || !v || json_array_append_new(a, v))
        c->oom = true;
    return a;
}

/* obj with the keys named in order (space-separated) first and in that
 * order, then its other keys as they were.  Steals obj; NULL order keeps it. */
static json_t *shape(struct conn *c, json_t *obj, const char *order)
{
    const char *p = order, *k;
    json_t *out, *v;
    char key[64];

    if (!order || !obj)
        return obj;
    out = json_object();
    while (out && *p) {
        size_t n = strcspn(p, " ");

        if (n < sizeof(key)) {
            memcpy(key, p, n);
            key[n] = '\0';
            v = json_object_get(obj, key);
            if (v)
                put(c, out, key, json_incref(v));
        }
        p += n;
        p += strspn(p, " ");
    }
    json_object_foreach(obj, k, v)
    {
        if (out && !json_object_get(out, k))
            put(c, out, k, json_incref(v));
    }
    json_decref(obj);
    if (!out)
        c->oom = true;
    return out;
}

/* Drop every null-valued key, at every level (pydantic's exclude_none). */
static void strip_nulls(json_t *v)
{
    const char *k;
    json_t *item;
    void *tmp;
    size_t i;

    if (json_is_object(v)) {
        json_object_foreach_safe(v, tmp, k, item)
        {
            if (json_is_null(item))
                json_object_del(v, k);
            else
                strip_nulls(item);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item)
        {
            strip_nulls(item);
        }
    }
}

static size_t pieces_of(const char *s, size_t n)
{
    size_t off = 0, count = 0;

    while (off < n) {
        off = piece_end(s, n, off);
        count++;
    }
    return count;
}

static const char *call_str(const json_t *call, const char *key)
{
    return json_string_value(json_object_get(call, key));
}

static json_t *call_id(struct conn *c, size_t i)
{
    const char *id = call_str(json_array_get(c->tools, i), "id");

    if (id)
        return json_string(id);
    return json_sprintf("%sfake%" PRIu64 "x%zu", c->d->tool_prefix ? c->d->tool_prefix : "call_",
                        c->id, i);
}

static json_t *reply_id(struct conn *c)
{
    if (c->d->x & X_EMPTY_ID)
        return json_string("");
    return json_sprintf("chatcmpl-fake-%" PRIu64, c->id);
}

static json_t *model_json(const struct conn *c)
{
    return json_stringn(c->model.data ? c->model.data : "", c->model.len);
}

static json_t *usage_json(struct conn *c, int64_t completion)
{
    const struct dialect *d = c->d;
    json_t *u = json_object();

    put(c, u, "prompt_tokens", json_integer(c->prompt_tokens));
    put(c, u, "completion_tokens", json_integer(completion));
    put(c, u, "total_tokens", json_integer(c->prompt_tokens + completion));
    if (d->x & X_USAGE_DETAILS) {
        put(c, u, "prompt_tokens_details",
            json_pack("{s:i,s:i}", "cached_tokens", 0, "audio_tokens", 0));
        put(c, u, "completion_tokens_details",
            json_pack("{s:I,s:i,s:i,s:i}", "reasoning_tokens", (json_int_t)c->reasoning_tokens,
                      "audio_tokens", 0, "accepted_prediction_tokens", 0,
                      "rejected_prediction_tokens", 0));
    }
    if (d->x & X_DS_USAGE) {
        put(c, u, "prompt_tokens_details", json_pack("{s:i}", "cached_tokens", 0));
        if (c->step.reasoning)
            put(c, u, "completion_tokens_details",
                json_pack("{s:I}", "reasoning_tokens", (json_int_t)c->reasoning_tokens));
        put(c, u, "prompt_cache_hit_tokens", json_integer(0));
        put(c, u, "prompt_cache_miss_tokens", json_integer(c->prompt_tokens));
    }
    return shape(c, u, d->usage);
}

/* llama.cpp's per-request timings: fixed, made-up numbers with long fractions. */
static json_t *timings_json(const struct conn *c)
{
    json_int_t pn = c->prompt_tokens > 0 ? c->prompt_tokens : 1;
    json_int_t cn = c->completion_tokens > 0 ? c->completion_tokens : 1;
    double pms = 10.0 + (double)pn / 3.0, cms = 100.0 / 3.0 * (double)cn;

    return json_pack("{s:I,s:f,s:f,s:f,s:I,s:f,s:f,s:f}", "prompt_n", pn, "prompt_ms", pms,
                     "prompt_per_token_ms", pms / (double)pn, "prompt_per_second",
                     1000.0 * (double)pn / pms, "predicted_n", cn, "predicted_ms", cms,
                     "predicted_per_token_ms", cms / (double)cn, "predicted_per_second",
                     1000.0 * (double)cn / cms);
}

/* Azure's content filter verdicts, all "safe"; the prompt's also has jailbreak. */
static json_t *azure_filters(struct conn *c, bool prompt)
{
    static const char *const cats[] = {"hate", "self_harm", "sexual", "violence"};
    json_t *f = json_object();

    for (size_t i = 0; i < TG_ARRAY_LEN(cats); i++)
        put(c, f, cats[i], json_pack("{s:b,s:s}", "filtered", 0, "severity", "safe"));
    if (prompt)
        put(c, f, "jailbreak", json_pack("{s:b,s:b}", "filtered", 0, "detected", 0));
    return f;
}

static json_t *token_json(struct conn *c, const char *s, size_t n, double logprob)
{
    json_t *t = json_object(), *bytes = json_array();

    put(c, t, "token", json_stringn(s, n));
    put(c, t, "logprob", json_real(logprob));
    for (size_t i = 0; bytes && i < n; i++)
        if (json_array_append_new(bytes, json_integer((unsigned char)s[i])))
            c->oom = true;
    if (c->d->x & X_NO_BYTES)
        json_decref(bytes);
    else
        put(c, t, "bytes", bytes);
    return t;
}

/* One logprobs "content" entry for the piece s (k-th piece), with
 * top_logprobs alternatives: the token itself first, then "alt1", "alt2"... */
static json_t *logprob_entry(struct conn *c, const char *s, size_t n, int64_t k)
{
    double lp = -(double)(k % 8 + 1) / 16.0;
    json_t *e = token_json(c, s, n, lp), *top = json_array();
    char alt[32];

    for (int64_t j = 0; top && j < c->top_logprobs; j++) {
        int len = snprintf(alt, sizeof(alt), "alt%" PRId64, j);

        if (json_array_append_new(top, j ? token_json(c, alt, (size_t)len, lp - (double)j / 4.0)
                                         : token_json(c, s, n, lp)))
            c->oom = true;
    }
    put(c, e, "top_logprobs", top);
    return e;
}

/* {"content": [an entry per piece of the answer]} for a non-stream reply. */
static json_t *logprobs_all(struct conn *c)
{
    json_t *arr = json_array();
    size_t off = 0, end;
    int64_t k = 0;

    while (arr && !c->tools && off < c->reply.len) {
        end = piece_end(c->reply.data, c->reply.len, off);
        if (json_array_append_new(arr, logprob_entry(c, c->reply.data + off, end - off, k++)))
            c->oom = true;
        off = end;
    }
    return json_pack("{s:o}", "content", arr);
}

/* The assistant message's tool_calls, whole, for a non-stream reply. */
static json_t *tool_calls_json(struct conn *c)
{
    const struct dialect *d = c->d;
    json_t *arr = json_array();

    for (size_t i = 0; i < json_array_size(c->tools); i++) {
        const json_t *call = json_array_get(c->tools, i);
        json_t *tc = json_object(), *fn = json_object();

        put(c, tc, "id", call_id(c, i));
        if (d->tools == T_WHOLE)
            put(c, tc, "index", json_integer((json_int_t)i));
        put(c, tc, "type", json_string("function"));
        if (d->x & X_FN_DESC)
            put(c, fn, "description", json_null());
        put(c, fn, "name", json_string(call_str(call, "name")));
        put(c, fn, "arguments", json_string(call_str(call, "arguments")));
        put(c, tc, "function", shape(c, fn, d->fn));
        tc = shape(c, tc, d->body_tool ? d->body_tool : d->tool);
        if (!arr || !tc || json_array_append_new(arr, tc))
            c->oom = true;
    }
    return arr;
}

static json_t *message_json(struct conn *c)
{
    const struct dialect *d = c->d;
    json_t *m = json_object();

    put(c, m, "role", json_string("assistant"));
    if (!c->tools)
        put(c, m, "content", json_stringn(c->reply.data ? c->reply.data : "", c->reply.len));
    else if (d->tool_content != TC_OMIT)
        put(c, m, "content", d->tool_content == TC_NULL ? json_null() : json_string(""));
    if (d->x & (X_REFUSAL | X_VLLM)) {
        put(c, m, "refusal", json_null());
        put(c, m, "annotations", d->x & X_VLLM ? json_null() : json_array());
    }
    if (d->x & X_VLLM) {
        put(c, m, "audio", json_null());
        put(c, m, "function_call", json_null());
    }
    if (c->step.reasoning)
        put(c, m, d_reasoning(d), json_string(c->step.reasoning));
    if (c->tools)
        put(c, m, "tool_calls", tool_calls_json(c));
    else if (d->x & X_VLLM)
        put(c, m, "tool_calls", json_array());
    if ((d->x & X_VLLM) && !c->step.reasoning)
        put(c, m, d_reasoning(d), json_null());
    return shape(c, m, d->delta);
}

/* The non-stream chat.completion. */
static json_t *completion_json(struct conn *c)
{
    const struct dialect *d = c->d;
    json_t *o = json_object(), *ch = json_object();

    put(c, ch, "index", json_integer(0));
    put(c, ch, "message", message_json(c));
    if (c->logprobs)
        put(c, ch, "logprobs", logprobs_all(c));
    else if (!(d->x & X_TIMINGS) && d->tools != T_WHOLE)
        put(c, ch, "logprobs", json_null());
    put(c, ch, "finish_reason", json_string(c->finish));
    if (d->x & X_VLLM)
        put(c, ch, "stop_reason", json_null());
    if (d->x & X_AZURE)
        put(c, ch, "content_filter_results", azure_filters(c, false));
    put(c, o, "id", reply_id(c));
    put(c, o, "object", json_string("chat.completion"));
    put(c, o, "created", json_integer(c->created));
    put(c, o, "model", model_json(c));
    put(c, o, "choices", one(c, shape(c, ch, d->choice)));
    put(c, o, "usage", usage_json(c, c->completion_tokens));
    if (d->x & (X_TIER | X_VLLM))
        put(c, o, "service_tier", d->x & X_VLLM ? json_null() : json_string("default"));
    if (d->fingerprint)
        put(c, o, "system_fingerprint",
            *d->fingerprint ? json_string(d->fingerprint) : json_null());
    else if (d->x & X_VLLM)
        put(c, o, "system_fingerprint", json_null());
    if (d->x & X_VLLM) {
        put(c, o, "prompt_logprobs", json_null());
        put(c, o, "kv_transfer_params", json_null());
    }
    if (d->x & X_AZURE)
        put(c, o, "prompt_filter_results",
            json_pack("[{s:i,s:o}]", "prompt_index", 0, "content_filter_results",
                      azure_filters(c, true)));
    if (d->x & X_TIMINGS)
        put(c, o, "timings", timings_json(c));
    return shape(c, o, d->body_top ? d->body_top : d->top);
}

static void send_completion(struct conn *c)
{
    const struct dialect *d = c->d;
    struct out o = {&c->srv->scratch, TG_OK};
    json_t *v = completion_json(c);

    tg_buf_reset(o.b);
    if (v && (d->x & X_OMIT_NULLS))
        strip_nulls(v);
    if (!v || c->oom) {
        o.rc = TG_E_NOMEM;
    } else {
        o_puts(&o, d->body_lead ? d->body_lead : "");
        o_json(&o, v, &d->body_fmt, 0);
        o_puts(&o, d->body_tail ? d->body_tail : "");
    }
    json_decref(v);
    if (o.rc) {
        send_error(c, 500, "out of memory", NULL);
        return;
    }
    c->srv->completions++;
    model_count(c, "completions");
    send_body(c, 200, o.b->data, o.b->len, NULL);
}

/* Queue one SSE event, framed as an HTTP chunk when the reply is chunked. */
static void put_event(struct conn *c, const char *data, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    if (c->chunked_out)
        evbuffer_add_printf(out, "%zx\r\n", len);
    evbuffer_add(out, data, len);
    if (c->chunked_out)
        evbuffer_add(out, "\r\n", 2);
}

/* Queue one event whose data is text: one data field per line of text, in
 * the dialect's syntax, after its id:/event:/retry: fields if it has them. */
static int emit_data(struct conn *c, const char *text, size_t len)
{
    const struct dialect *d = c->d;
    struct out e = {&c->srv->event, TG_OK};
    size_t off = 0, end;

    tg_buf_reset(e.b);
    if (d->x & X_FIELDS) {
        if (c->events == 0)
            o_printf(&e, "retry: 3000%s", d_eol(d));
        o_printf(&e, "id: %" PRId64 "%sevent: message%s", c->events + 1, d_eol(d), d_eol(d));
    }
    do {
        const char *nl = memchr(text + off, '\n', len - off);

        end = nl ? (size_t)(nl - text) : len;
        o_puts(&e, d_data(d));
        o_append(&e, text + off, end - off);
        o_puts(&e, d_eol(d));
        off = end + 1;
    } while (end < len);
    o_puts(&e, d_eol(d));
    c->events++;
    if (!e.rc)
        put_event(c, e.b->data, e.b->len);
    return e.rc;
}

/* Queue ":text" as a comment block of its own. */
static int emit_comment(struct conn *c, const char *text)
{
    struct out e = {&c->srv->event, TG_OK};

    tg_buf_reset(e.b);
    o_printf(&e, ":%s%s%s", text, d_eol(c->d), d_eol(c->d));
    if (!e.rc)
        put_event(c, e.b->data, e.b->len);
    return e.rc;
}

/* Serialize v (stolen) in the dialect's stream format and queue it. */
static int emit(struct conn *c, json_t *v)
{
    const struct dialect *d = c->d;
    struct out j = {&c->srv->scratch, TG_OK};
    int rc;

    if (v && (d->x & X_OMIT_NULLS))
        strip_nulls(v);
    tg_buf_reset(j.b);
    if (!v || c->oom) {
        rc = TG_E_NOMEM;
    } else {
        o_json(&j, v, &d->stream_fmt, 0);
        rc = j.rc;
    }
    json_decref(v);
    return rc ? rc : emit_data(c, j.b->data, j.b->len);
}

static json_t *choice_json(struct conn *c, json_t *delta, json_t *logprobs, const char *finish,
                           json_t *filters)
{
    const struct dialect *d = c->d;
    json_t *ch = json_object();

    put(c, ch, "index", json_integer(0));
    put(c, ch, "delta", shape(c, delta, d->delta));
    if (logprobs)
        put(c, ch, "logprobs", logprobs);
    else if (d->nulls == CN_BOTH)
        put(c, ch, "logprobs", json_null());
    if (finish)
        put(c, ch, "finish_reason", json_string(finish));
    else if (d->nulls != CN_NONE)
        put(c, ch, "finish_reason", json_null());
    if (finish && (d->x & X_VLLM))
        put(c, ch, "stop_reason", json_null());
    if (d->x & X_AZURE)
        put(c, ch, "content_filter_results", filters ? filters : json_object());
    else
        json_decref(filters);
    return shape(c, ch, d->choice);
}

/* The chat.completion.chunk around choices (stolen) and usage (stolen, may be NULL). */
static json_t *chunk_json(struct conn *c, json_t *choices, json_t *usage)
{
    static const char pad[] = "Zq3xV9kLm2PwT7bRn5Yc";
    const struct dialect *d = c->d;
    json_t *o = json_object();

    put(c, o, "id", reply_id(c));
    put(c, o, "object", json_string("chat.completion.chunk"));
    put(c, o, "created", json_integer(c->created));
    put(c, o, "model", model_json(c));
    if (d->x & X_TIER)
        put(c, o, "service_tier", json_string("default"));
    if (d->fingerprint)
        put(c, o, "system_fingerprint",
            *d->fingerprint ? json_string(d->fingerprint) : json_null());
    put(c, o, "choices", choices);
    if (usage)
        put(c, o, "usage", usage);
    else if ((d->x & X_USAGE_NULL) || ((d->x & X_USAGE_NULL_ASKED) && c->include_usage))
        put(c, o, "usage", json_null());
    if (d->x & X_OBFUSCATION)
        put(c, o, "obfuscation", json_stringn(pad, (size_t)(c->events % 12) + 3));
    return shape(c, o, d->top);
}

/* vLLM's continuous_usage_stats: usage on every chunk, counting pieces sent. */
static json_t *running_usage(struct conn *c)
{
    return c->continuous_usage ? usage_json(c, c->piece) : NULL;
}

static json_t *role_delta(struct conn *c)
{
    const struct dialect *d = c->d;
    json_t *delta = json_object();

    put(c, delta, "role", json_string("assistant"));
    if ((d->x & X_PAIR_NULLS) && c->step.reasoning) {
        put(c, delta, "content", json_null());
        put(c, delta, d_reasoning(d), json_string(""));
    } else if (d->role_content != JV_OMIT) {
        put(c, delta, "content", d->role_content == JV_NULL ? json_null() : json_string(""));
    }
    if (d->x & X_REFUSAL)
        put(c, delta, "refusal", json_null());
    return delta;
}

/* What comes before the first piece: Azure's prompt filter chunk, the role chunk. */
static int stream_head(struct conn *c)
{
    const struct dialect *d = c->d;
    int rc = TG_OK;
    json_t *v;

    if (d->x & X_AZURE) {
        v = json_pack("{s:[],s:i,s:s,s:s,s:s}", "choices", "created", 0, "id", "", "model", "",
                      "object", "");
        put(c, v, "prompt_filter_results",
            json_pack("[{s:i,s:o}]", "prompt_index", 0, "content_filter_results",
                      azure_filters(c, true)));
        rc = emit(c, v);
    }
    if (!rc && (d->role == ROLE_CHUNK || (d->role == ROLE_FIRST && c->npieces == 0)))
        rc = emit(c, chunk_json(c, one(c, choice_json(c, role_delta(c), NULL, NULL, NULL)),
                                running_usage(c)));
    return rc;
}

struct piece {
    enum piece_kind kind;
    const char *s; /* the piece's text */
    size_t n;
    size_t call; /* P_TOOL: which call */
    bool first;  /* P_TOOL: the call's first chunk (it carries the name) */
};

static size_t reasoning_len(const struct conn *c)
{
    return c->step.reasoning ? strlen(c->step.reasoning) : 0;
}

/* Pieces of the stream: reasoning, then tool call chunks or the answer. */
static int64_t count_pieces(const struct conn *c)
{
    int64_t n = (int64_t)pieces_of(c->step.reasoning, reasoning_len(c));
    size_t i;
    const json_t *call;

    if (!c->tools)
        return n + (int64_t)pieces_of(c->reply.data, c->reply.len);
    json_array_foreach(c->tools, i, call)
    {
        const char *args = call_str(call, "arguments");
        int64_t k = (int64_t)pieces_of(args, strlen(args));

        if (c->d->tools == T_WHOLE)
            n += 1;
        else if (c->d->tools == T_REPEAT)
            n += k ? k : 1;
        else
            n += 1 + k;
    }
    return n;
}

/* The next piece after the cursor (phase, call, reply_off), which it advances. */
static void piece_next(struct conn *c, struct piece *p)
{
    memset(p, 0, sizeof(*p));
    p->s = "";
    p->kind = P_END;
    while (c->phase == P_REASON) {
        size_t len = reasoning_len(c);

        if (c->reply_off < len) {
            size_t end = piece_end(c->step.reasoning, len, c->reply_off);

            p->kind = P_REASON;
            p->s = c->step.reasoning + c->reply_off;
            p->n = end - c->reply_off;
            c->reply_off = end;
            return;
        }
        c->phase = c->tools ? P_TOOL : P_CONTENT;
        c->reply_off = 0;
        c->call = 0;
        c->call_started = false;
    }
    if (c->phase == P_TOOL && c->call < json_array_size(c->tools)) {
        const char *args = call_str(json_array_get(c->tools, c->call), "arguments");
        size_t len = strlen(args), end;

        p->kind = P_TOOL;
        p->call = c->call;
        if (c->d->tools == T_WHOLE || len == 0 || (!c->call_started && c->d->tools != T_REPEAT)) {
            p->first = true;
            c->call_started = true;
            if (c->d->tools == T_WHOLE) {
                p->s = args;
                p->n = len;
            }
            if (c->d->tools == T_WHOLE || len == 0) {
                c->call++;
                c->call_started = false;
            }
            return;
        }
        p->first = c->d->tools == T_REPEAT && c->reply_off == 0;
        end = piece_end(args, len, c->reply_off);
        p->s = args + c->reply_off;
        p->n = end - c->reply_off;
        c->reply_off = end;
        if (end >= len) {
            c->call++;
            c->reply_off = 0;
            c->call_started = false;
        }
        return;
    }
    if (c->phase == P_CONTENT && c->reply_off < c->reply.len) {
        size_t end = piece_end(c->reply.data, c->reply.len, c->reply_off);

        p->kind = P_CONTENT;
        p->s = c->reply.data + c->reply_off;
        p->n = end - c->reply_off;
        c->reply_off = end;
    }
}

/* One tool_calls entry of a streamed piece, shaped as the dialect sends it. */
static json_t *tool_delta(struct conn *c, const struct piece *p)
{
    const struct dialect *d = c->d;
    const json_t *call = json_array_get(c->tools, p->call);
    json_t *tc = json_object(), *fn = json_object();

    put(c, tc, "index", json_integer((json_int_t)p->call));
    if (p->first || d->tools == T_REPEAT || d->tools == T_QWEN) {
        put(c, tc, "id", !p->first && d->tools == T_QWEN ? json_string("") : call_id(c, p->call));
        put(c, tc, "type", json_string("function"));
    }
    if (p->first)
        put(c, fn, "name", json_string(call_str(call, "name")));
    else if (d->tools == T_REPEAT)
        put(c, fn, "name", json_null());
    if (!(p->first && d->tools == T_NAME_ONLY))
        put(c, fn, "arguments", json_stringn(p->s, p->n));
    put(c, tc, "function", shape(c, fn, d->fn));
    return shape(c, tc, d->tool);
}

static int stream_piece(struct conn *c)
{
    const struct dialect *d = c->d;
    json_t *delta, *lp = NULL, *filters = NULL;
    struct piece p;
    int rc = d->ping ? emit_comment(c, d->ping) : TG_OK;

    piece_next(c, &p);
    if (rc || p.kind == P_END || c->piece == c->step.malformed_at) {
        c->piece++;
        return rc || p.kind == P_END ? rc : emit_data(c, "{not json", 9);
    }
    delta = json_object();
    if (d->role == ROLE_EVERY || (d->role == ROLE_FIRST && c->piece == 0))
        put(c, delta, "role", json_string("assistant"));
    /* servers that always write content write "" beside reasoning and tool calls */
    if (p.kind != P_CONTENT &&
        (d->tool_content == TC_EMPTY || ((d->x & X_PAIR_NULLS) && p.kind == P_REASON) ||
         (d->tools == T_QWEN && p.first)))
        put(c, delta, "content", d->tool_content == TC_EMPTY ? json_string("") : json_null());
    if (p.kind == P_REASON) {
        put(c, delta, d_reasoning(d), json_stringn(p.s, p.n));
    } else if (p.kind == P_TOOL) {
        put(c, delta, "tool_calls", one(c, tool_delta(c, &p)));
    } else {
        put(c, delta, "content", json_stringn(p.s, p.n));
        if ((d->x & X_PAIR_NULLS) && c->step.reasoning)
            put(c, delta, d_reasoning(d), json_null());
        if (c->logprobs)
            lp = json_pack("{s:[o]}", "content", logprob_entry(c, p.s, p.n, c->piece));
        if (d->x & X_AZURE)
            filters = azure_filters(c, false);
    }
    c->piece++;
    return emit(c,
                chunk_json(c, one(c, choice_json(c, delta, lp, NULL, filters)), running_usage(c)));
}

static int stream_end(struct conn *c)
{
    const struct dialect *d = c->d;
    json_t *delta = json_object(), *usage = NULL, *chunk;
    int rc;

    if (d->fin == FD_ROLE)
        put(c, delta, "role", json_string("assistant"));
    if (d->fin != FD_EMPTY)
        put(c, delta, "content", json_string(""));
    if ((d->x & X_PAIR_NULLS) && c->step.reasoning)
        put(c, delta, d_reasoning(d), json_null());
    if (d->usage_mode == U_FINISH_ALWAYS)
        usage = usage_json(c, c->completion_tokens);
    else
        usage = running_usage(c);
    chunk = chunk_json(c, one(c, choice_json(c, delta, NULL, c->finish, NULL)), usage);
    if (d->x & X_TIMINGS)
        put(c, chunk, "timings", timings_json(c));
    rc = emit(c, chunk);
    if (!rc && c->include_usage && d->usage_mode == U_CHUNK)
        rc = emit(c, chunk_json(c, json_array(), usage_json(c, c->completion_tokens)));
    if (!rc && !c->step.no_done && !d->no_done)
        rc = emit_data(c, "[DONE]", 6);
    if (rc)
        return rc;
    if (c->chunked_out)
        evbuffer_add(bufferevent_get_output(c->bev), "0\r\n\r\n", 5);
    c->srv->completions++;
    model_count(c, "completions");
    reply_done(c);
    return TG_OK;
}

/* Does an "after N content chunks" trigger fire before chunk i of n?  When N
 * is past the end it fires after the last chunk, so it is never lost. */
static bool hits(int64_t n_after, int64_t i, int64_t n)
{
    return n_after >= 0 && (i >= n_after || i == n);
}

static void stream_run(struct conn *c)
{
    const struct step *s = &c->step;

    while (c->state == C_BUSY) {
        int64_t i = c->piece;
        bool last = i == c->npieces;
        int rc;

        if (hits(s->cut_after, i, c->npieces)) {
            finish_with(c, D_CLOSE);
            return;
        }
        if (hits(s->reset_after, i, c->npieces)) {
            finish_with(c, D_RESET);
            return;
        }
        if (hits(s->stall_after, i, c->npieces))
            return;
        /* stream_end() may start the next pipelined request on c. */
        rc = last ? stream_end(c) : stream_piece(c);
        if (rc)
            conn_kill(c, false);
        if (rc || last)
            return;
        if (s->chunk_delay_ms > 0) {
            arm(c, J_NEXT_CHUNK, s->chunk_delay_ms);
            return;
        }
    }
}

static void stream_begin(struct conn *c)
{
    c->chunked_out = !c->http10;
    if (c->http10)
        c->keep_alive = false;
    c->piece = 0;
    c->reply_off = 0;
    c->phase = P_REASON;
    c->call = 0;
    c->call_started = false;
    c->events = 0;
    c->npieces = count_pieces(c);
    write_head(c, 200, "text/event-stream", -1, NULL);
    /* a lead comment goes out at once, like a keep-alive while queued */
    if (c->d->lead && emit_comment(c, c->d->lead)) {
        conn_kill(c, false);
        return;
    }
    if (c->step.ttft_ms > 0) {
        arm(c, J_TTFT, c->step.ttft_ms);
        return;
    }
    if (stream_head(c)) {
        conn_kill(c, false);
        return;
    }
    stream_run(c);
}

static void respond_chat(struct conn *c)
{
    const struct step *s = &c->step;
    char msg[64];

    if (s->reset) {
        conn_kill(c, true);
        return;
    }
    if (s->hang)
        return; /* stays busy until the client gives up */
    if (c->embeddings && s->status <= 0) {
        send_body(c, 200, c->reply.data, c->reply.len, NULL);
        return;
    }
    if (s->reject_prefill && c->prefill) {
        send_error_code(c, 400, "prefill_not_supported",
                        "This model does not support an assistant message prefill.", NULL);
        return;
    }
    if (s->status > 0) {
        snprintf(msg, sizeof(msg), "scripted failure (HTTP %d)", (int)s->status);
        send_error_code(c, (int)s->status, s->error_code, s->error_message ? s->error_message : msg,
                        s->retry_after);
        return;
    }
    if (c->stream)
        stream_begin(c);
    else
        send_completion(c);
}

/* Fill the reply text, model, dialect and token counts of the exchange from
 * the request and its step.  d is the dialect the request or step named. */
static int chat_prepare(struct conn *c, const json_t *root, const json_t *messages,
                        const struct dialect *d)
{
    struct out reply = {&c->reply, TG_OK};
    struct out model = {&c->model, TG_OK};
    const json_t *msg, *last_user = NULL, *opts;
    const char *name = tg_json_str(root, "model", MODEL_ID);
    size_t i, prompt_chars = 0;

    for (i = 0; i < json_array_size(messages); i++) {
        msg = json_array_get(messages, i);
        prompt_chars += content_text(json_object_get(msg, "content"), NULL);
        if (strcmp(tg_json_str(msg, "role", ""), "user") == 0)
            last_user = json_object_get(msg, "content");
    }
    c->prefill =
        strcmp(tg_json_str(json_array_get(messages, json_array_size(messages) - 1), "role", ""),
               "assistant") == 0;
    c->d = d;
    tg_buf_reset(&c->reply);
    tg_buf_reset(&c->model);
    if (c->step.content) {
        o_puts(&reply, c->step.content);
    } else {
        o_puts(&reply, "fake answer to: ");
        content_text(last_user, &reply);
    }
    o_puts(&model, name);
    c->stream = json_is_true(json_object_get(root, "stream"));
    opts = json_object_get(root, "stream_options");
    c->include_usage = json_is_true(json_object_get(opts, "include_usage"));
    c->continuous_usage =
        (c->d->x & X_CONTINUOUS) && json_is_true(json_object_get(opts, "continuous_usage_stats"));
    c->logprobs = json_is_true(json_object_get(root, "logprobs"));
    c->top_logprobs = TG_MIN(TG_MAX(tg_json_int(root, "top_logprobs", 0), 0), 20);
    c->tools = c->step.tool_calls;
    c->finish = c->step.finish_reason ? c->step.finish_reason : c->tools ? "tool_calls" : "stop";
    c->oom = false;
    c->prompt_tokens = tokens_of(prompt_chars);
    c->reasoning_tokens =
        c->step.reasoning ? tokens_of(utf8_chars(c->step.reasoning, reasoning_len(c))) : 0;
    c->completion_tokens = tokens_of(utf8_chars(c->reply.data, c->reply.len));
    if (c->tools) {
        size_t chars = 0;

        for (i = 0; i < json_array_size(c->tools); i++)
            chars += utf8_chars(call_str(json_array_get(c->tools, i), "arguments"),
                                strlen(call_str(json_array_get(c->tools, i), "arguments")));
        c->completion_tokens = tokens_of(chars);
    }
    c->completion_tokens += c->reasoning_tokens;
    c->id = ++c->srv->next_id;
    c->created = (int64_t)time(NULL);
    return reply.rc ? reply.rc : model.rc;
}

/* Keep the header pairs of the last chat request; turned into JSON only on demand. */
static void record_headers(struct conn *c)
{
    struct tg_buf *b = &c->srv->last_headers;
    size_t i;
    int rc = TG_OK;

    tg_buf_reset(b);
    for (i = 0; i < c->nhdrs && !rc; i++) {
        rc = tg_buf_append(b, c->hdrs[i].name, strlen(c->hdrs[i].name) + 1);
        if (!rc)
            rc = tg_buf_append(b, c->hdrs[i].value, strlen(c->hdrs[i].value) + 1);
    }
    if (rc)
        tg_buf_reset(b);
}

static bool auth_ok(const struct conn *c)
{
    const char *key = c->srv->require_key;
    const char *v = find_header(c, "authorization");

    if (!key)
        return true;
    if (!v || strncasecmp(v, "Bearer ", 7) != 0)
        return false;
    v += 7;
    while (*v == ' ')
        v++;
    return strlen(v) == strlen(key) && tg_ct_equal(v, key, strlen(key));
}

/* The request's step: its model's script when it has one, else the FIFO. */
static bool take_any_step(struct server *srv, const char *model, struct step *dst)
{
    int rc = model_step_take(srv, model, dst);
    if (rc == TG_E_NOTFOUND)
        rc = step_take(srv, dst);
    return rc == TG_OK;
}

/* The dialect of the exchange: the X-Fake-Dialect header, else the step's, else compact. */
static const struct dialect *chat_dialect(const struct conn *c)
{
    const char *name = find_header(c, "x-fake-dialect");

    if (!name)
        name = c->step.dialect ? c->step.dialect : "compact";
    return dialect_find(name);
}

static void chat(struct conn *c)
{
    struct server *srv = c->srv;
    json_t *root;
    const json_t *messages;
    json_error_t jerr;
    const char *hdr = find_header(c, "x-fake-dialect");

    srv->requests++;
    record_headers(c);
    if (!auth_ok(c)) {
        send_error(c, 401, "Incorrect API key provided.", NULL);
        return;
    }
    root = json_loadb(c->body.data ? c->body.data : "", c->body.len, 0, &jerr);
    json_decref(srv->last_request);
    srv->last_request = root ? json_incref(root) : json_stringn(c->body.data, c->body.len);
    messages = json_object_get(root, "messages");
    if (!json_is_object(root))
        send_error(c, 400, "We could not parse the JSON body of your request.", NULL);
    else if (!json_is_array(messages))
        send_error(c, 400, "'messages' is a required property", NULL);
    else if (hdr && !dialect_find(hdr))
        send_error(c, 400, "unknown X-Fake-Dialect", NULL);
    else if (!take_any_step(srv, tg_json_str(root, "model", MODEL_ID), &c->step) ||
             chat_prepare(c, root, messages, chat_dialect(c)))
        send_error(c, 500, "out of memory", NULL);
    else if (c->step.delay_ms > 0)
        arm(c, J_DELAY, c->step.delay_ms);
    else
        respond_chat(c);
    json_decref(root);
}

/* ------------------------------------------------------------------ embeddings */

/* FNV-1a of n bytes. */
static uint32_t fnv1a(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 16777619u;
    return h;
}

/*
 * The deterministic vector of text (dim values): every character and every
 * pair of adjacent characters (ASCII letters lower-cased) hashed to a
 * signed coordinate, pairs weighing twice, scaled to unit length.  Texts
 * sharing characters point alike; the same text always gives the same vector.
 */
static void fake_vector(const char *text, size_t len, double *v, size_t dim)
{
    char prev[8] = "", cur[8], pair[16];
    size_t plen = 0;
    double ss = 0;
    memset(v, 0, dim * sizeof(*v));
    for (size_t i = 0; i < len;) {
        size_t start = i, n;
        utf8_next(text, len, &i);
        n = i - start < sizeof(cur) ? i - start : sizeof(cur) - 1;
        memcpy(cur, text + start, n);
        if (n == 1 && cur[0] >= 'A' && cur[0] <= 'Z')
            cur[0] = (char)(cur[0] + 32);
        if (n == 1 && (cur[0] == ' ' || cur[0] == '\n')) {
            plen = 0;
            continue;
        }
        uint32_t h = fnv1a(cur, n);
        v[h % dim] += h & 0x80000000u ? -1.0 : 1.0;
        if (plen) {
            memcpy(pair, prev, plen);
            memcpy(pair + plen, cur, n);
            h = fnv1a(pair, plen + n);
            v[h % dim] += h & 0x80000000u ? -2.0 : 2.0;
        }
        memcpy(prev, cur, n);
        plen = n;
    }
    for (size_t i = 0; i < dim; i++)
        ss += v[i] * v[i];
    if (ss == 0)
        v[0] = ss = 1;
    for (size_t i = 0; i < dim; i++)
        v[i] /= sqrt(ss);
}

/* The body answering inputs (strings), into c->reply. */
static int embeddings_body(struct conn *c, const json_t *inputs, const char *model, size_t dim)
{
    struct out o = {&c->reply, TG_OK};
    double *v = tg_calloc(dim, sizeof(*v));
    size_t i, chars = 0;
    const json_t *in;
    if (!v)
        return TG_E_NOMEM;
    tg_buf_reset(&c->reply);
    o_puts(&o, "{\"object\":\"list\",\"data\":[");
    json_array_foreach(inputs, i, in)
    {
        const char *t = c->step.embed_as ? c->step.embed_as : json_string_value(in);
        size_t n = strlen(t);
        chars += utf8_chars(t, n);
        fake_vector(t, n, v, dim);
        o_printf(&o, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":[", i ? "," : "", i);
        for (size_t j = 0; j < dim; j++)
            o_printf(&o, "%s%.6f", j ? "," : "", v[j]);
        o_puts(&o, "]}");
    }
    o_puts(&o, "],\"model\":");
    o_str(&o, model, strlen(model));
    o_printf(&o, ",\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}}",
             (long long)tokens_of(chars), (long long)tokens_of(chars));
    tg_free(v);
    return o.rc;
}

/* POST /v1/embeddings: {model, input: string or [strings], dimensions?}. */
static void embeddings(struct conn *c)
{
    struct server *srv = c->srv;
    json_error_t jerr;
    json_t *root = json_loadb(c->body.data ? c->body.data : "", c->body.len, 0, &jerr), *in;
    json_t *inputs = NULL;
    const json_t *dims = json_object_get(root, "dimensions");
    size_t i;
    bool strings = true;

    srv->embed_requests++;
    record_headers(c);
    json_decref(srv->last_request);
    srv->last_request = root ? json_incref(root) : json_stringn(c->body.data, c->body.len);
    in = json_object_get(root, "input");
    if (json_is_string(in))
        inputs = json_pack("[O]", in);
    else if (json_is_array(in) && json_array_size(in))
        inputs = json_incref(in);
    json_array_foreach(inputs, i, in) strings = strings && json_is_string(in);
    if (!auth_ok(c))
        send_error(c, 401, "Incorrect API key provided.", NULL);
    else if (!json_is_object(root))
        send_error(c, 400, "We could not parse the JSON body of your request.", NULL);
    else if (!inputs || !strings)
        send_error(c, 400, "'input' must be a string or a non-empty array of strings", NULL);
    else if (dims && (!json_is_integer(dims) || json_integer_value(dims) < 1 ||
                      json_integer_value(dims) > 4096))
        send_error(c, 400, "'dimensions' must be an integer from 1 to 4096", NULL);
    else if (!take_any_step(srv, tg_json_str(root, "model", MODEL_ID), &c->step) ||
             embeddings_body(c, inputs, tg_json_str(root, "model", MODEL_ID),
                             dims ? (size_t)json_integer_value(dims) : 64))
        send_error(c, 500, "out of memory", NULL);
    else {
        c->embeddings = true;
        srv->embed_inputs += json_array_size(inputs);
        if (c->step.delay_ms > 0)
            arm(c, J_DELAY, c->step.delay_ms);
        else
            respond_chat(c);
    }
    json_decref(inputs);
    json_decref(root);
}

/* ------------------------------------------------------------------ control */

static json_t *headers_json(const struct server *srv)
{
    json_t *obj = json_object();
    const char *p = srv->last_headers.data;
    const char *end = p + srv->last_headers.len;

    while (obj && p && p < end) {
        const char *name = p;
        const char *value = name + strlen(name) + 1;
        const char *prev = json_string_value(json_object_get(obj, name));
        json_t *v = prev ? json_sprintf("%s, %s", prev, value) : json_string(value);

        if (v)
            json_object_set_new(obj, name, v);
        p = value + strlen(value) + 1;
    }
    return obj;
}

static void control_stats(struct conn *c)
{
    const struct server *srv = c->srv;

    send_json(c, 200,
              json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:O?,s:o*}", "requests",
                        (json_int_t)srv->requests, "embedding_requests",
                        (json_int_t)srv->embed_requests, "embedding_inputs",
                        (json_int_t)srv->embed_inputs, "completions", (json_int_t)srv->completions,
                        "open_connections", (json_int_t)srv->open_connections, "total_connections",
                        (json_int_t)srv->total_connections, "queued", (json_int_t)srv->queue_len,
                        "last_request", srv->last_request, "last_headers", headers_json(srv)));
}

/* GET /_control/models: each scripted model's requests, completions, request
 * times (ms since it was scripted) and steps left. */
static void control_models(struct conn *c)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(c->srv->models, k, v)
    {
        json_object_set_new(out, k,
                            json_pack("{s:O, s:O, s:O, s:I}", "requests",
                                      json_object_get(v, "requests"), "completions",
                                      json_object_get(v, "completions"), "at_ms",
                                      json_object_get(v, "at_ms"), "steps_left",
                                      (json_int_t)json_array_size(json_object_get(v, "steps"))));
    }
    send_json(c, 200, out);
}

static void steps_free(struct step *s)
{
    while (s) {
        struct step *next = s->next;

        step_clear(s);
        tg_free(s);
        s = next;
    }
}

static void control_script(struct conn *c, const json_t *root)
{
    struct server *srv = c->srv;
    const json_t *steps = json_object_get(root, "steps");
    struct step *head = NULL, *last = NULL, *s;
    char err[128] = "'steps' must be an array of steps";
    size_t i, n = json_array_size(steps);
    int rc = json_is_array(steps) ? TG_OK : TG_E_INVAL;

    for (i = 0; !rc && i < n; i++) {
        s = tg_malloc(sizeof(*s));
        rc = s ? step_parse(json_array_get(steps, i), s, err, sizeof(err)) : TG_E_NOMEM;
        if (rc) {
            tg_free(s);
            break;
        }
        if (last)
            last->next = s;
        else
            head = s;
        last = s;
    }
    if (rc) {
        steps_free(head);
        send_error(c, rc == TG_E_NOMEM ? 500 : 400, err, NULL);
        return;
    }
    if (head) {
        if (srv->queue_tail)
            srv->queue_tail->next = head;
        else
            srv->queue_head = head;
        srv->queue_tail = last;
        srv->queue_len += n;
    }
    send_json(c, 200, json_pack("{s:b,s:I}", "ok", 1, "queued", (json_int_t)srv->queue_len));
}

static void queue_clear(struct server *srv)
{
    steps_free(srv->queue_head);
    srv->queue_head = NULL;
    srv->queue_tail = NULL;
    srv->queue_len = 0;
}

static void control_default(struct conn *c, const json_t *root)
{
    struct step s;
    char err[128];

    if (step_parse(root, &s, err, sizeof(err))) {
        send_error(c, 400, err, NULL);
        return;
    }
    step_clear(&c->srv->fallback);
    c->srv->fallback = s;
    send_json(c, 200, json_pack("{s:b}", "ok", 1));
}

/* POST /_control/model {"model", "steps"?: [STEP...], "default"?: STEP}: script one model. */
static void control_model(struct conn *c, const json_t *root)
{
    const char *name = tg_json_str(root, "model", NULL);
    const json_t *steps = json_object_get(root, "steps"), *def = json_object_get(root, "default");
    char err[128] = "the body must be {\"model\", \"steps\"?: [STEP...], \"default\"?: STEP}";
    struct step tmp;
    bool ok = name && (!steps || json_is_array(steps)) && (!def || json_is_object(def));
    for (size_t i = 0; ok && i < json_array_size(steps); i++) {
        ok = step_parse(json_array_get(steps, i), &tmp, err, sizeof(err)) == TG_OK;
        if (ok)
            step_clear(&tmp);
    }
    if (ok && def) {
        ok = step_parse(def, &tmp, err, sizeof(err)) == TG_OK;
        if (ok)
            step_clear(&tmp);
    }
    if (!ok) {
        send_error(c, 400, err, NULL);
        return;
    }
    json_object_set_new(c->srv->models, name,
                        json_pack("{s:o, s:O?, s:i, s:i, s:[], s:I}", "steps",
                                  steps ? json_deep_copy(steps) : json_array(), "default", def,
                                  "requests", 0, "completions", 0, "at_ms", "t0_ns",
                                  (json_int_t)tg_clock_mono_ns()));
    send_json(c, 200, json_pack("{s:b}", "ok", 1));
}

static void control_reset(struct conn *c)
{
    struct server *srv = c->srv;

    json_object_clear(srv->models);
    queue_clear(srv);
    step_clear(&srv->fallback);
    srv->requests = 0;
    srv->completions = 0;
    srv->tool_calls = 0;
    srv->tool_runs = 0;
    srv->tool_auth[0] = '\0';
    json_decref(srv->tool_done);
    srv->tool_done = NULL;
    srv->embed_requests = 0;
    srv->embed_inputs = 0;
    srv->total_connections = 0;
    srv->next_id = 0;
    json_decref(srv->last_request);
    srv->last_request = NULL;
    tg_buf_reset(&srv->last_headers);
    send_json(c, 200, json_pack("{s:b}", "ok", 1));
}

static void control(struct conn *c)
{
    const char *what = c->path + strlen("/_control/");
    bool post = strcmp(c->method, "POST") == 0;
    json_t *root = NULL;

    if (strcmp(what, "stats") == 0) {
        control_stats(c);
        return;
    }
    if (strcmp(what, "models") == 0) {
        control_models(c);
        return;
    }
    if (strcmp(what, "tools") == 0) {
        send_json(c, 200,
                  json_pack("{s:I, s:I, s:s}", "calls", (json_int_t)c->srv->tool_calls, "runs",
                            (json_int_t)c->srv->tool_runs, "authorization", c->srv->tool_auth));
        return;
    }
    if (strcmp(what, "script") && strcmp(what, "default") && strcmp(what, "reset") &&
        strcmp(what, "model")) {
        send_error(c, 404, "unknown control endpoint", NULL);
        return;
    }
    if (!post) {
        send_error(c, 405, "control endpoints other than stats take POST", NULL);
        return;
    }
    if (strcmp(what, "reset") == 0) {
        control_reset(c);
        return;
    }
    root = json_loadb(c->body.data ? c->body.data : "", c->body.len, 0, NULL);
    if (!root)
        send_error(c, 400, "the control body is not JSON", NULL);
    else if (strcmp(what, "script") == 0)
        control_script(c, root);
    else if (strcmp(what, "model") == 0)
        control_model(c, root);
    else
        control_default(c, root);
    json_decref(root);
}

/* ------------------------------------------------------------------ tools */

/*
 * A policy-lookup tool for workflow tests: POST /tools/policy_lookup
 * {"policy": NUMBER} answers the policy's holder, product, year, what it
 * covers and excludes, and the clause and page saying so; an unknown
 * number is a 404.  Every request is counted (tool_calls); one whose
 * Idempotency-Key was seen before gets the same answer without running
 * again (tool_runs counts the runs), as a tool with side effects must.
 * ?delay_ms=N holds the answer back (the run happens at once).
 */
static const char *const policies[][2] = {
    {"P2024000001",
     "{\"policy\":\"P2024000001\",\"holder\":\"张三\",\"product\":\"安心意外伤害保险\","
     "\"year\":2024,\"coverage\":[\"意外身故\",\"意外伤残\",\"意外医疗\"],"
     "\"exclusions\":[\"滑雪\",\"潜水\",\"攀岩\",\"跳伞\"],"
     "\"clause\":\"第七条 责任免除（四）\",\"page\":3}"},
    {"P2024000002",
     "{\"policy\":\"P2024000002\",\"holder\":\"张三\",\"product\":\"安心意外伤害保险（运动版）\","
     "\"year\":2024,\"coverage\":[\"意外身故\",\"意外医疗\",\"滑雪\",\"骑行\"],"
     "\"exclusions\":[\"职业竞技\"],\"clause\":\"第五条 保险责任（二）\",\"page\":2}"},
    {"P2024000003",
     "{\"policy\":\"P2024000003\",\"holder\":\"张三\",\"product\":\"安康综合意外险\","
     "\"year\":2024,\"coverage\":[\"意外身故\",\"意外医疗\"],"
     "\"exclusions\":[\"高风险运动\"],\"clause\":\"第八条 责任免除（二）\",\"page\":4}"},
};

static void tool(struct conn *c)
{
    struct server *srv = c->srv;
    const char *key = find_header(c, "idempotency-key");
    int64_t delay = 0;
    const char *d = c->query ? strstr(c->query, "delay_ms=") : NULL;
    if (d)
        tg_parse_i64(d + strlen("delay_ms="), &delay);
    srv->tool_calls++;
    const char *auth = find_header(c, "authorization");
    tg_strlcpy(srv->tool_auth, auth ? auth : "", sizeof(srv->tool_auth));
    if (!srv->tool_done)
        srv->tool_done = json_object();
    const json_t *seen = key ? json_object_get(srv->tool_done, key) : NULL;
    json_t *ans = NULL;
    int status = 200;
    if (seen) {
        ans = json_incref((json_t *)seen);
    } else {
        srv->tool_runs++;
        json_t *in = json_loadb(c->body.data ? c->body.data : "", c->body.len, 0, NULL);
        const char *num = json_string_value(json_object_get(in, "policy"));
        if (strcmp(c->path, "/tools/policy_lookup") != 0) {
            ans = json_pack("{s:i, s:s}", "status", 404, "error", "no such tool");
        } else {
            for (size_t i = 0; num && !ans && i < TG_ARRAY_LEN(policies); i++)
                if (!strcmp(num, policies[i][0]))
                    ans = json_loads(policies[i][1], 0, NULL);
            if (!ans)
                ans = json_pack("{s:i, s:s}", "status", 404, "error", "no such policy");
        }
        json_decref(in);
        if (key && ans)
            json_object_set(srv->tool_done, key, ans);
    }
    if (json_integer_value(json_object_get(ans, "status")) == 404)
        status = 404;
    char *text = ans ? json_dumps(ans, JSON_COMPACT) : NULL;
    json_decref(ans);
    tg_buf_reset(&c->reply);
    if (!text || tg_buf_puts(&c->reply, text) != TG_OK) {
        free(text);
        send_error(c, 500, "out of memory", NULL);
        return;
    }
    free(text);
    c->tool_status = status;
    if (delay > 0)
        arm(c, J_TOOL, delay);
    else
        send_body(c, status, c->reply.data, c->reply.len, NULL);
}

/* ------------------------------------------------------------------ routing */

static const char models_body[] = "{\"object\":\"list\",\"data\":[{\"id\":\"" MODEL_ID "\","
                                  "\"object\":\"model\",\"created\":1700000000,"
                                  "\"owned_by\":\"trustgate\"}]}";

static void dispatch(struct conn *c)
{
    const char *p = c->path;
    bool chat_path, models_path, embed_path;

    c->chunked_out = false;
    if (tg_str_has_prefix(p, "/_control/")) {
        control(c);
        return;
    }
    if (!c->counted) {
        c->counted = true;
        c->srv->open_connections++;
        c->srv->total_connections++;
    }
    if (tg_str_has_prefix(p, "/tools/") && strcmp(c->method, "POST") == 0) {
        tool(c);
        return;
    }
    if (tg_str_has_prefix(p, "/v1/"))
        p += 3;
    chat_path = strcmp(p, "/chat/completions") == 0;
    models_path = strcmp(p, "/models") == 0;
    embed_path = strcmp(p, "/embeddings") == 0;
    c->embeddings = false;
    if (chat_path && strcmp(c->method, "POST") == 0)
        chat(c);
    else if (embed_path && strcmp(c->method, "POST") == 0)
        embeddings(c);
    else if (!chat_path && !models_path && !embed_path)
        send_error(c, 404, "Unknown request URL.", NULL);
    else if (!auth_ok(c))
        send_error(c, 401, "Incorrect API key provided.", NULL);
    else if (models_path && strcmp(c->method, "GET") == 0)
        send_body(c, 200, models_body, sizeof(models_body) - 1, NULL);
    else
        send_error(c, 405, "Method not allowed.", NULL);
}

/* ------------------------------------------------------------------ request reading */

/* Move n buffered bytes from in to the end of b. */
static int take(struct tg_buf *b, struct evbuffer *in, size_t n)
{
    const unsigned char *p = n ? evbuffer_pullup(in, (ev_ssize_t)n) : NULL;
    int rc = n && !p ? TG_E_NOMEM : TG_OK;

    if (p)
        rc = tg_buf_append(b, p, n);

    evbuffer_drain(in, n);
    return rc;
}

/* Split the request line "METHOD SP target SP version" in place; return the
 * start of the header lines, or NULL when it is malformed. */
static char *parse_request_line(struct conn *c)
{
    char *p = c->head.data, *eol, *sp1, *sp2, *query;

    eol = strstr(p, "\r\n");
    sp1 = eol ? memchr(p, ' ', (size_t)(eol - p)) : NULL;
    sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp2)
        return NULL;
    *sp1 = *sp2 = *eol = '\0';
    c->method = p;
    c->path = sp1 + 1;
    c->http10 = strcmp(sp2 + 1, "HTTP/1.0") == 0;
    if (!c->http10 && strcmp(sp2 + 1, "HTTP/1.1") != 0)
        return NULL;
    query = strchr(sp1 + 1, '?');
    if (query)
        *query = '\0';
    c->query = query ? query + 1 : "";
    return eol + 2;
}

/* Split one "name: value" line ending at eol in place (name lower-cased). */
static int parse_header_line(struct conn *c, char *p, char *eol)
{
    char *colon = memchr(p, ':', (size_t)(eol - p));
    char *v, *k;

    if (!colon)
        return 400;
    if (c->nhdrs == HDR_MAX)
        return 431;
    *colon = *eol = '\0';
    for (k = p; *k; k++)
        *k = (char)(*k >= 'A' && *k <= 'Z' ? *k + 32 : *k);
    for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
        ;
    while (eol > v && (eol[-1] == ' ' || eol[-1] == '\t'))
        *--eol = '\0';
    c->hdrs[c->nhdrs].name = p;
    c->hdrs[c->nhdrs++].value = v;
    return R_AGAIN;
}

/* Split the request head in place: request line, then header lines. */
static int parse_lines(struct conn *c)
{
    char *p = parse_request_line(c), *eol = NULL;
    int rc = p ? R_AGAIN : 400;

    c->nhdrs = 0;
    while (rc == R_AGAIN && (eol = strstr(p, "\r\n")) && eol != p) {
        rc = parse_header_line(c, p, eol);
        p = eol + 2;
    }
    return rc == R_AGAIN && !eol ? 400 : rc;
}

/* Decide keep-alive and how the body is framed (RFC 9112 sections 6 and 9.3). */
static int parse_framing(struct conn *c)
{
    const char *conn = find_header(c, "connection");
    const char *te = find_header(c, "transfer-encoding");
    const char *cl = find_header(c, "content-length");
    const char *expect = find_header(c, "expect");
    uint64_t len = 0;

    if (c->http10)
        c->keep_alive = conn && strcasestr(conn, "keep-alive");
    else
        c->keep_alive = !(conn && strcasestr(conn, "close"));
    tg_buf_reset(&c->body);
    c->body_left = 0;
    c->state = C_BODY;
    if (te) {
        if (!strcasestr(te, "chunked"))
            return 501;
        c->state = C_CHUNKED;
        c->chunk_phase = CH_SIZE;
    } else if (cl) {
        if (tg_parse_u64(cl, &len))
            return 400;
        if (len > BODY_MAX)
            return 413;
        c->body_left = len;
    }
    if ((c->state == C_CHUNKED || len) && expect && strcasestr(expect, "100-continue"))
        evbuffer_add_printf(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n");
    return R_AGAIN;
}

static int read_head(struct conn *c, struct evbuffer *in)
{
    struct evbuffer_ptr end;
    char crlf[2];
    int rc;

    /* RFC 9112 section 2.2: ignore empty lines before a request line. */
    while (evbuffer_copyout(in, crlf, 2) == 2 && crlf[0] == '\r' && crlf[1] == '\n')
        evbuffer_drain(in, 2);
    end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos < 0)
        return evbuffer_get_length(in) > HEAD_MAX ? 431 : R_MORE;
    if (end.pos + 4 > HEAD_MAX)
        return 431;
    tg_buf_reset(&c->head);
    if (take(&c->head, in, (size_t)end.pos + 4))
        return 500;
    rc = parse_lines(c);
    if (rc == R_AGAIN)
        rc = parse_framing(c);
    return rc;
}

static int read_body(struct conn *c, struct evbuffer *in)
{
    if (evbuffer_get_length(in) < c->body_left)
        return R_MORE;
    if (take(&c->body, in, c->body_left))
        return 500;
    c->body_left = 0;
    return R_DONE;
}

/* One line of a chunked body (size line or trailer) into line, or R_MORE. */
static int chunk_line(struct evbuffer *in, char *line, size_t size)
{
    size_t eol_len = 0;
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);

    if (eol.pos < 0)
        return evbuffer_get_length(in) > size ? 400 : R_MORE;
    if ((size_t)eol.pos >= size)
        return 400;
    evbuffer_remove(in, line, (size_t)eol.pos);
    line[eol.pos] = '\0';
    evbuffer_drain(in, eol_len);
    return R_AGAIN;
}

/* "hex-size[;extensions]": start the next chunk, or the trailer after size 0. */
static int chunk_size(struct conn *c, const char *line)
{
    char *end;

    errno = 0;
    c->body_left = strtoull(line, &end, 16);
    if (end == line || errno || (*end && *end != ';' && *end != ' '))
        return 400;
    if (c->body_left > BODY_MAX - c->body.len)
        return 413;
    c->chunk_phase = c->body_left ? CH_DATA : CH_TRAILER;
    return R_AGAIN;
}

/* Decode a chunked request body (RFC 9112 section 7.1) as it arrives. */
static int read_chunked(struct conn *c, struct evbuffer *in)
{
    char line[CHUNK_LINE_MAX];
    size_t n;
    int rc = R_AGAIN;

    while (rc == R_AGAIN) {
        if (c->chunk_phase == CH_DATA) {
            n = TG_MIN(evbuffer_get_length(in), c->body_left);
            if (take(&c->body, in, n))
                return 413;
            c->body_left -= n;
            if (c->body_left)
                return R_MORE;
            c->chunk_phase = CH_DATA_END;
            continue;
        }
        rc = chunk_line(in, line, sizeof(line));
        if (rc != R_AGAIN)
            break;
        if (c->chunk_phase == CH_DATA_END) {
            rc = line[0] ? 400 : R_AGAIN;
            c->chunk_phase = CH_SIZE;
        } else if (c->chunk_phase == CH_TRAILER) {
            rc = line[0] ? R_AGAIN : R_DONE;
        } else {
            rc = chunk_size(c, line);
        }
    }
    return rc;
}

static void process_input(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    int rc;

    c->in_input = true;
    while (c->state == C_HEAD || c->state == C_BODY || c->state == C_CHUNKED) {
        if (c->state == C_HEAD)
            rc = read_head(c, in);
        else if (c->state == C_BODY)
            rc = read_body(c, in);
        else
            rc = read_chunked(c, in);
        if (rc == R_MORE)
            break;
        if (rc == R_AGAIN)
            continue;
        c->state = C_BUSY;
        if (rc == R_DONE) {
            dispatch(c);
        } else {
            c->keep_alive = false;
            send_error(c, rc, "malformed HTTP request", NULL);
        }
    }
    c->in_input = false;
}

/* ------------------------------------------------------------------ callbacks */

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    if (c->state == C_HEAD || c->state == C_BODY || c->state == C_CHUNKED)
        process_input(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    if (c->drain != D_NONE && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        conn_free(c, c->drain == D_RESET);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        conn_free(arg, false);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    enum conn_job job = c->job;

    (void)fd;
    (void)what;
    c->job = J_NONE;
    if (job == J_DELAY) {
        respond_chat(c);
    } else if (job == J_TOOL) {
        send_body(c, c->tool_status, c->reply.data ? c->reply.data : "", c->reply.len, NULL);
    } else if (job == J_TTFT) {
        if (stream_head(c))
            conn_kill(c, false);
        else
            stream_run(c);
    } else if (job == J_NEXT_CHUNK) {
        stream_run(c);
    } else if (job == J_CLOSE || job == J_RESET) {
        conn_free(c, job == J_RESET);
    }
}

static void accept_cb(struct evconnlistener *lst, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct server *srv = arg;
    struct conn *c = tg_calloc(1, sizeof(*c));
    int one = 1;

    (void)lst;
    (void)sa;
    (void)salen;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (c) {
        c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
        c->timer = evtimer_new(srv->base, timer_cb, c);
    }
    if (!c || !c->bev || !c->timer) {
        if (c && c->timer)
            event_free(c->timer);
        if (c && c->bev)
            bufferevent_free(c->bev);
        else
            evutil_closesocket(fd);
        tg_free(c);
        return;
    }
    c->srv = srv;
    c->state = C_HEAD;
    tg_buf_init(&c->head, HEAD_MAX + 1);
    tg_buf_init(&c->body, BODY_MAX);
    tg_buf_init(&c->model, BODY_MAX);
    tg_buf_init(&c->reply, BODY_MAX);
    step_init(&c->step);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void accept_error_cb(struct evconnlistener *lst, void *arg)
{
    (void)lst;
    (void)arg;
    tg_warn("fake-upstream: accept failed: %s", strerror(errno));
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;

    (void)sig;
    (void)what;
    event_base_loopexit(srv->base, NULL);
}

/* ------------------------------------------------------------------ main */

/* "HOST:PORT" or "[V6]:PORT" into host and port strings. */
static int parse_listen(const char *spec, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon = strrchr(spec, ':');
    size_t n;
    uint64_t num;

    if (!colon || tg_parse_u64(colon + 1, &num) || num > 65535)
        return TG_E_INVAL;
    n = (size_t)(colon - spec);
    if (n >= 2 && spec[0] == '[' && spec[n - 1] == ']') {
        spec++;
        n -= 2;
    }
    if (n == 0) {
        spec = "127.0.0.1";
        n = strlen(spec);
    }
    if (n >= hostlen)
        return TG_E_INVAL;
    memcpy(host, spec, n);
    host[n] = '\0';
    snprintf(port, portlen, "%u", (unsigned)num);
    return TG_OK;
}

static int bound_port(evutil_socket_t fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len))
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int server_listen(struct server *srv, const char *spec)
{
    char host[256], port[8];
    struct addrinfo hints, *res = NULL;
    int rc = TG_E_CONFIG;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (parse_listen(spec, host, sizeof(host), port, sizeof(port))) {
        fprintf(stderr, "fake-upstream: bad --listen '%s' (want HOST:PORT)\n", spec);
        goto out;
    }
    if (getaddrinfo(host, port, &hints, &res)) {
        fprintf(stderr, "fake-upstream: cannot resolve '%s'\n", host);
        goto out;
    }
    srv->listener =
        evconnlistener_new_bind(srv->base, accept_cb, srv,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                LISTEN_BACKLOG, res->ai_addr, (int)res->ai_addrlen);
    if (!srv->listener) {
        fprintf(stderr, "fake-upstream: cannot listen on %s: %s\n", spec, strerror(errno));
        goto out;
    }
    evconnlistener_set_error_cb(srv->listener, accept_error_cb);
    rc = TG_OK;
out:
    if (res)
        freeaddrinfo(res);
    return rc;
}

static void server_free(struct server *srv)
{
    while (srv->conns)
        conn_free(srv->conns, false);
    if (srv->listener)
        evconnlistener_free(srv->listener);
    if (srv->sig_term)
        event_free(srv->sig_term);
    if (srv->sig_int)
        event_free(srv->sig_int);
    queue_clear(srv);
    step_clear(&srv->fallback);
    json_decref(srv->last_request);
    json_decref(srv->models);
    json_decref(srv->tool_done);
    tg_buf_free(&srv->last_headers);
    tg_buf_free(&srv->scratch);
    tg_buf_free(&srv->event);
    if (srv->base)
        event_base_free(srv->base);
}

static int usage(void)
{
    fprintf(stderr, "usage: fake-upstream [--listen HOST:PORT] [--require-key KEY]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct server srv;
    const char *listen_on = "127.0.0.1:0";
    int i, port, rc = 1;

    memset(&srv, 0, sizeof(srv));
    step_init(&srv.fallback);
    tg_buf_init(&srv.last_headers, HEAD_MAX);
    srv.models = json_object();
    tg_buf_init(&srv.scratch, 2 * (size_t)BODY_MAX);
    tg_buf_init(&srv.event, 4 * (size_t)BODY_MAX);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen_on = argv[++i];
        else if (strcmp(argv[i], "--require-key") == 0 && i + 1 < argc)
            srv.require_key = argv[++i];
        else
            return usage();
    }
    signal(SIGPIPE, SIG_IGN);
    json_set_alloc_funcs(tg_malloc, tg_free);
    srv.base = event_base_new();
    if (!srv.base || server_listen(&srv, listen_on))
        goto out;
    srv.sig_term = evsignal_new(srv.base, SIGTERM, signal_cb, &srv);
    srv.sig_int = evsignal_new(srv.base, SIGINT, signal_cb, &srv);
    if (!srv.sig_term || !srv.sig_int || event_add(srv.sig_term, NULL) ||
        event_add(srv.sig_int, NULL))
        goto out;
    port = bound_port(evconnlistener_get_fd(srv.listener));
    if (port < 0)
        goto out;
    printf("%d\n", port);
    fflush(stdout);
    rc = event_base_dispatch(srv.base) < 0;
out:
    server_free(&srv);
    return rc;
}
