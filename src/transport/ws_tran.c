/*
 * ws_tran.c -- the WebSocket transport's operations table: what the scheme
 * table (tran.c) holds for "ws" and "wss".  The functions it names live in
 * ws_server.c (listeners), ws_client.c (connect) and ws_conn.c (a
 * connection's send, close and information); this file only checks that a
 * listener's TLS files agree with its scheme and fills the table.
 */
#include "ws_int.h"

#include <unistd.h>

/* "wss" needs a certificate and key, "ws" must not have them. */
static int
ws_listen_scheme(uv_loop_t *loop, bool tls, const char *host, int port,
                 const sprig__tran_opts *opts, const sprig__conn_cbs *cbs,
                 void *udata, sprig__listener **out)
{
    bool files = opts && (opts->tls_cert_file || opts->tls_key_file);
    if (tls && !files) {
        return sprig__err(SPRIG_EINVAL, "wss needs a TLS certificate and "
                                        "key file");
    }
    if (!tls && files) {
        return sprig__err(SPRIG_EINVAL, "TLS files given for plain ws: "
                                        "listen on wss");
    }
    return sprig__ws_listen(loop, host, port, opts, cbs, udata, out);
}

const sprig__tran_ops sprig__ws_tran = {
    .name = "websocket",
    .listen = ws_listen_scheme,
    .listener_port = sprig__ws_listener_port,
    .listener_close = sprig__ws_listener_close,
    .listener_conns = sprig__ws_listener_conns,
    .connect = sprig__ws_connect,
    .send = sprig__ws_send,
    .queued = sprig__ws_queued,
    .close = sprig__ws_close,
    .info = sprig__ws_info,
    .path = sprig__ws_path,
    .peer = sprig__ws_peer,
};

/* HTTP hand-over (issue 12): only a plain WebSocket listener adopts. */
int
sprig__tran_adopt(sprig__listener *l, int fd, const uint8_t *already_read,
                  size_t n, bool upgraded)
{
    if (!l || l->ops != &sprig__ws_tran) {
        close(fd);
        return sprig__err(SPRIG_EINVAL, "adopt: not a WebSocket listener");
    }
    return sprig__ws_adopt(l, (uv_os_sock_t)fd, already_read, n, upgraded,
                           NULL);
}
