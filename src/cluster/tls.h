/*
 * tls.h -- node-to-node TLS (issue 18): a raft_uv_transport whose
 * connections are mutually authenticated TLS over TCP, through GnuTLS,
 * on the node's libuv loop.  Private to src/cluster (runtime.c uses it in
 * place of raft_uv_tcp when the cluster file has a "tls" object).
 *
 * raft_uv reads and writes the uv_stream_t a transport hands it, so the
 * transport terminates TLS itself and hands raft_uv one end of a
 * socketpair; it pumps the other end through the TLS session (plaintext
 * from raft_uv is encrypted onto the TCP socket, records from the socket
 * are decrypted into the pair).  Every node presents its certificate and
 * requires the peer's, which must verify against the cluster's CA file:
 * any certificate that CA signed is a member, so the CA must be the
 * cluster's own.  Inside the session the connecting node first sends the
 * same handshake raft_uv_tcp sends in the clear (protocol 1, its id, its
 * Raft address), which the accepting side reads before handing the
 * stream to raft_uv.  A failed handshake (or one not finished within
 * 10 s) closes the connection and prints one line to stderr naming the
 * peer and GnuTLS's reason.
 */
#ifndef SPRIG_CLUSTER_TLS_H
#define SPRIG_CLUSTER_TLS_H

#include <raft.h>
#include <raft/uv.h>
#include <stdint.h>

typedef struct sprig__ctls sprig__ctls;

/** Load the credentials of node `node`: `ca` (PEM, the certificates
 *  peers must chain to), `cert` (PEM, this node's certificate or chain)
 *  and `key` (PEM, its private key).  Any thread.  Errors: SPRIG_EINVAL
 *  (a file unreadable or not PEM, key and certificate not a pair, no
 *  certificate in `ca`, detail names the file and GnuTLS's reason),
 *  SPRIG_ENOMEM.  Free with sprig__ctls_free. */
int sprig__ctls_load(const char *ca, const char *cert, const char *key,
                     uint64_t node, sprig__ctls **out);

/** Make `tr` a TLS transport on `loop` using `t`'s credentials (in place
 *  of raft_uv_tcp_init).  `t` must outlive every connection: free it only
 *  after the loop ran dry.  Loop thread.  Returns 0 or RAFT_NOMEM. */
int sprig__ctls_transport(sprig__ctls *t, struct raft_uv_transport *tr,
                          uv_loop_t *loop);

/** Free the credentials and the transport's state (after raft_uv closed
 *  it and its loop ran dry).  NULL is fine. */
void sprig__ctls_free(sprig__ctls *t);

#endif
