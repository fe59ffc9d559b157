/*
 * quic_tran.c -- the QUIC transport's operations table: what the scheme
 * table (tran.c) holds for "quic" and "sprig" (an alias).  The functions
 * it names live in quic_ep.c (listeners, connect) and quic_conn.c (a
 * connection's send, close and information).
 */
#include "quic_int.h"

const sprig__tran_ops sprig__quic_tran = {
    .name = "quic",
    .listen = sprig__quic_listen,
    .listener_port = sprig__quic_listener_port,
    .listener_close = sprig__quic_listener_close,
    .listener_conns = sprig__quic_listener_conns,
    .connect = sprig__quic_connect,
    .send = sprig__quic_send,
    .queued = sprig__quic_queued,
    .close = sprig__quic_close,
    .info = sprig__quic_info,
    .path = sprig__quic_path,
    .peer = sprig__quic_peer,
};
