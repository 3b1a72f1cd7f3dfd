/* core/embedded.h - the embedded default backend (DESIGN §2): with no
 * MESA_URL, the tools start (or reuse) the user's private mesad on a Unix
 * socket, data in $XDG_DATA_HOME/mesa, the generated admin key in
 * $XDG_CONFIG_HOME/mesa/credentials.json (0600), org "local".
 */
#ifndef MESA_EMBEDDED_H
#define MESA_EMBEDDED_H

#include <stddef.h>

typedef struct mesa_embedded {
    char url[4300];     /* "unix:<data>/mesad.sock" */
    char api_key[256];
    char org[101];
    char data_dir[4096];
} mesa_embedded_t;

/* Make sure the private mesad runs and fill *out. Concurrent first starts
 * are serialised by an flock on <data>/.start.lock: one init, one server.
 * mesad is found as $MESAD, next to the running program (or in
 * ../server/ of a build tree), else on PATH. 0, or a negative errno with a
 * one-line message in err. */
int mesa_embedded_ensure(mesa_embedded_t *out, char *err, size_t errlen);

/* Its data directory ($XDG_DATA_HOME/mesa: the server's database, git
 * storage and socket) and configuration directory ($XDG_CONFIG_HOME/mesa:
 * the admin key), n bytes each: what `mesarun --sandbox` hides. 0 or
 * -ENAMETOOLONG (also without HOME). */
int mesa_embedded_dirs(char *data, char *conf, size_t n);

#endif
