/*
 * api_int.h - private to src/http: what the API's route files share.
 */
#ifndef TG_HTTP_API_INT_H
#define TG_HTTP_API_INT_H

#include "http/http.h"

/* Answer with body (taken) as JSON, counting the request under route. */
void tg_api_send_json(struct tg_api *api, struct tg_http_req *req, const char *route, int status,
                      json_t *body);
/* Answer with an OpenAI-style error, counting the request under route. */
void tg_api_send_error(struct tg_api *api, struct tg_http_req *req, const char *route, int status,
                       const char *type, const char *code, const char *message);
/* "Authorization: Bearer TOKEN" -> TOKEN, or NULL. */
const char *tg_api_bearer(const struct tg_http_req *req);

#endif
