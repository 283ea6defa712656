/*
 * console.h - who is calling: reviewer console sessions, passwords and
 * bearer tokens.
 *
 * People (the config's `users:`) authenticate either with a bearer token
 * (scripts, the CLI) or through the console: a password checked with
 * PBKDF2-HMAC-SHA256 on a worker thread (so a login never stalls the event
 * loop), then a session cookie (HttpOnly, SameSite=Strict) and a CSRF
 * token that every POST made with the cookie must carry in X-CSRF-Token.
 * Sessions are kept in the store, so a restart logs nobody out.  Failed
 * logins delay further attempts per (name, client address), never lock a
 * name for everyone.
 */
#ifndef TG_HTTP_CONSOLE_H
#define TG_HTTP_CONSOLE_H

#include "api/api.h"

struct tg_console;

/* Start the console: sessions and the password worker for api's users.
 * Plaintext `password:` entries are hashed on the worker and dropped. */
int tg_console_start(struct tg_api *api);
/* Answer logins still being checked (503), stop the worker, free sessions. */
void tg_console_stop(struct tg_api *api);

/* Who is calling, from a bearer token or a console session. */
struct tg_who {
    const char *name; /* the user's name (borrowed from the config) */
    const char *role; /* reviewer | supervisor | agent */
    bool session;     /* authenticated by the console cookie */
};

/*
 * Identify the caller.  TG_OK and *who filled; otherwise the HTTP status to
 * answer (401: no valid credentials; 403: a session POST without its CSRF
 * token) with an error code and message.
 */
int tg_api_who(struct tg_api *api, const struct tg_http_req *req, struct tg_who *who,
               const char **code, const char **msg);

/* The console's own routes (/console/api/...); false when req is not one. */
bool tg_api_console(struct tg_api *api, struct tg_http_req *req);

/* The value of cookie name in req, copied to out; false when absent or too long. */
bool tg_api_cookie(const struct tg_http_req *req, const char *name, char *out, size_t outlen);

#endif
