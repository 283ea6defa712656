/*
 * assets.h - the web pages compiled into the binary (cmake/embed.cmake
 * generates the table from web/).  The table ends with a zeroed entry.
 */
#ifndef TG_HTTP_ASSETS_H
#define TG_HTTP_ASSETS_H

#include <stddef.h>

struct tg_asset {
    const char *path; /* "/console/index.html" */
    const unsigned char *data;
    size_t len;
    const char *etag; /* quoted, ready for the ETag header */
};

extern const struct tg_asset tg_assets[];
extern const size_t tg_n_assets;

#endif
