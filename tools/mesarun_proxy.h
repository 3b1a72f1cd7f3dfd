/* tools/mesarun_proxy.h - `mesarun --sandbox`'s proxy: the sandbox reaches
 * the server only through it, without a credential (tools/mesarun_proxy.c).
 */
#ifndef MESARUN_PROXY_H
#define MESARUN_PROXY_H

#include <stdint.h>

#define MR_PROXY_MAX_SLOTS 64

typedef struct mr_proxy_conf {
    const char *socket; /* where to listen ($RUN/proxy.sock) */
    const char *url;    /* the server: "unix:/path" or "http(s)://host[:port]" */
    const char *token;  /* the mount's token, added to every forwarded request */
    const char *state;  /* $RUN/state: the slots, read once at start */
    const char *cache;  /* the blob and tree cache the proxy fills */
    uint64_t cache_size;
    int verbose;        /* log each refused request on stderr */
} mr_proxy_conf_t;

typedef struct mr_proxy mr_proxy_t;

/* Listen and serve on a thread; from now on, this process's state writes
 * (pusher, follower) tell the proxy where the mount has been. The strings
 * of c but socket and state must outlive the proxy. 0 or -errno
 * (-ENAMETOOLONG: the socket path does not fit a sockaddr_un). */
int mr_proxy_start(const mr_proxy_conf_t *c, mr_proxy_t **out);
/* Stop listening, wait (briefly) for open connections, free. */
void mr_proxy_stop(mr_proxy_t *p);

#endif
