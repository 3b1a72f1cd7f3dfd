/* core/errmap.c - HTTP status + API error code -> errno, in one table.
 * A code-specific row wins over the status-wide row; unknown 4xx map to
 * EINVAL and unknown 5xx to EIO. Called by core/client.c.
 */
#include "config.h"
#include "errmap.h"

#include <errno.h>
#include <string.h>

static const struct {
    long status;
    const char *code; /* NULL: any code */
    int err;
} table[] = {
    {400, "IMMUTABLE_CHANGE", EPERM},
    {400, NULL, EINVAL},
    {401, NULL, EACCES},
    {403, "READ_ONLY", EROFS},
    {403, NULL, EACCES},
    {404, NULL, ENOENT},
    {405, NULL, ENOTSUP},
    {406, NULL, EISDIR},
    {409, "ALREADY_EXISTS", EEXIST},
    {409, "STALE_BASE", ESTALE},
    {409, "MERGE_CONFLICT", EBUSY},
    {409, "CONFLICT", ENOTDIR},
    {409, NULL, EBUSY},
    {413, NULL, EFBIG},
    {416, NULL, EINVAL},
    {429, NULL, EAGAIN},
    {503, NULL, EIO},
};

int mesa_errmap_http(long status, const char *code)
{
    if (status >= 200 && status < 400)
        return 0;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (table[i].status != status)
            continue;
        if (!table[i].code || (code && strcmp(code, table[i].code) == 0))
            return table[i].err;
    }
    return status >= 500 ? EIO : EINVAL;
}
