/*
 * fuzz_config.c - the config loader on arbitrary file contents: it must
 * never crash or leak, and when it refuses a file every message must name
 * the file.
 */
#include "fuzz.h"

#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/tg-fuzz-config-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        unlink(path);
        return 0;
    }
    close(fd);
    struct tg_config *cfg = NULL;
    json_t *errs = NULL;
    int rc = tg_config_load(path, &cfg, &errs);
    if (rc == TG_OK) {
        tg_config_free(cfg);
    } else {
        size_t i;
        json_t *e;
        json_array_foreach(errs, i, e)
        {
            if (!json_is_string(e) || strncmp(json_string_value(e), path, strlen(path)) != 0)
                abort();
        }
    }
    json_decref(errs);
    unlink(path);
    return 0;
}
