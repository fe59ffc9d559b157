/*
 * fuzz_quic.c -- libFuzzer harness for the QUIC server's datagram entry
 * point (sprig__quic_ep_datagram, src/transport/quic_ep.c): routing by
 * connection id, the engine's classification (version negotiation, Retry,
 * stateless reset, refusal), accepting, and ngtcp2 reading what follows.
 *
 * The input is a sequence of datagrams, each a 2-byte big-endian length, a
 * source byte (the sender is 127.0.0.1:20000+source, so inputs can speak
 * from several peers) and the bytes; a short last record takes what is
 * left.  Each input gets a fresh listener (bound to 127.0.0.1:0, so the
 * answers it sends go nowhere that matters) on its own loop; after the
 * datagrams the loop runs once (timers, flushes), the listener is closed
 * and the loop drained, so nothing outlives the input: a leak is a bug.
 * The certificate is made once, in $TMPDIR.
 */
#include "transport/quic_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sprig_cert_info cert;

static void
nop_open(sprig__conn *c, void *u)
{
    (void)c, (void)u;
}

static void
nop_msg(sprig__conn *c, const uint8_t *d, size_t n, void *u)
{
    (void)d, (void)n, (void)u;
    sprig__conn_send(c, d, n); /* echo, as a server answers */
}

static void
nop_close(sprig__conn *c, int code, const char *reason, void *u)
{
    (void)c, (void)code, (void)reason, (void)u;
}

static const sprig__conn_cbs cbs = {nop_open, nop_msg, nop_close, NULL};

static int
make_cert(void)
{
    const char *tmp = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/sprig-fuzz-quic.%ld", tmp ? tmp : "/tmp",
             (long)getuid());
    (void)mkdir(dir, 0700);
    return sprig_cert_ensure(dir, &cert);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready = -1;
    if (ready < 0) {
        ready = make_cert() == SPRIG_OK;
    }
    if (!ready) {
        abort(); /* the harness cannot run without a certificate */
    }
    uv_loop_t loop;
    sprig__listener *l;
    sprig__tran_opts o;
    uv_loop_init(&loop);
    sprig__tran_opts_init(&o);
    o.tls_cert_file = cert.cert_path;
    o.tls_key_file = cert.key_path;
    o.handshake_timeout_ms = 1000;
    o.idle_timeout_ms = 1000;
    if (sprig__tran_listen(&loop, "quic", "127.0.0.1", 0, &o, &cbs, NULL, &l)) {
        abort();
    }
    sprig__quic_ep *ep = sprig__quic_listener_ep(l);
    size_t off = 0;
    while (off < size) {
        size_t n = size - off < 3 ? 0 : (size_t)data[off] << 8 | data[off + 1];
        uint8_t src = size - off < 3 ? 0 : data[off + 2];
        off += size - off < 3 ? size - off : 3;
        n = n < size - off ? n : size - off;
        sprig__qaddr from = {0};
        uv_ip4_addr("127.0.0.1", 20000 + src, (struct sockaddr_in *)&from.ss);
        from.len = sizeof(struct sockaddr_in);
        sprig__quic_ep_datagram(ep, data + off, n, &from);
        off += n;
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    sprig__listener_close(l);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}
