/*
 * quic_ng.c -- the QUIC engine: the only file that names ngtcp2 (0.12),
 * so an upgrade of the library touches this file alone.
 *
 * Design notes.  An engine (sprig__qng) is one QUIC connection: an
 * ngtcp2_conn and the GnuTLS session it drives (ngtcp2_crypto_gnutls).  It
 * is sans-I/O: quic_conn.c hands it datagrams (sprig__qng_read), asks it
 * for datagrams to send (sprig__qng_flush, with the stream bytes waiting:
 * ngtcp2 keeps none of them, the connection keeps them until `acked`),
 * and calls sprig__qng_expire when sprig__qng_timeout_ms says so (loss
 * recovery, keep-alive PINGs, idle and handshake timeouts all live in
 * ngtcp2).  Flow control: the stream and connection windows are extended
 * by what the connection consumed, as it consumes it (recv_stream_data
 * hands the bytes over and the credit goes back at once, since the
 * connection has taken them).
 *
 * A listener's state (sprig__qng_srv) holds the static secret that signs
 * Retry tokens and makes stateless reset tokens.  It is derived from the
 * private key, so a restarted server (same key) resets the connections of
 * its previous life with tokens their clients recognise, and they
 * reconnect at once instead of waiting for an idle timeout.
 *
 * Trust (client): GnuTLS calls verify_cb during the handshake; it asks
 * tls.c (pinned certificate, SHA-256 fingerprint, or CAs), and a refusal
 * fails the handshake with the reason kept for on_close.
 */
#include "quic_int.h"

#include <arpa/inet.h>
#include <stdio.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#define CIDLEN 16
#define STREAM_WINDOW (1u << 20)
#define CONN_WINDOW (4u << 20)

struct sprig__qng_srv {
    uint8_t secret[32];
    gnutls_certificate_credentials_t cred;
    char alpn[64];
};

struct sprig__qng {
    ngtcp2_crypto_conn_ref ref; /* first: GnuTLS's session pointer */
    ngtcp2_conn *conn;
    gnutls_session_t tls;
    sprig__qng_io io;
    sprig__qng_srv *srv;
    const sprig__tls_cfg *trust;
    char *host;
    char alpn[64];
    bool server, ready, closed, silent;
    int64_t sid; /* the message stream; -1 until it exists */
    ngtcp2_connection_close_error last;
    uint8_t *close_pkt; /* the CONNECTION_CLOSE datagram sent, kept for
                         * the closing period (sprig__qng_linger) */
    size_t close_len;
    sprig__qng_why why;
    char verify_err[300];
};

static const char priority[] =
    "%DISABLE_TLS13_COMPAT_MODE:NORMAL:-VERS-ALL:+VERS-TLS1.3:"
    "-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:"
    "+AES-128-CCM";

static ngtcp2_tstamp
now_ns(void)
{
    return uv_hrtime();
}

size_t
sprig__qng_cid_len(void)
{
    return CIDLEN;
}

static void
rand_bytes(uint8_t *d, size_t n)
{
    (void)gnutls_rnd(GNUTLS_RND_NONCE, d, n);
}

static void
to_qcid(const ngtcp2_cid *c, sprig__qcid *out)
{
    out->len = (uint8_t)c->datalen;
    memcpy(out->data, c->data, c->datalen);
}

static void
from_qcid(const sprig__qcid *c, ngtcp2_cid *out)
{
    ngtcp2_cid_init(out, c->data, c->len);
}

/* ---- listener state ------------------------------------------------------ */

/* secret = SHA-256("sprig quic secret" || key file bytes). */
static int
derive_secret(const char *key_file, uint8_t out[32])
{
    gnutls_datum_t key = {NULL, 0};
    if (gnutls_load_file(key_file, &key) < 0) {
        return sprig__err(SPRIG_EINVAL, "QUIC: cannot read key %s", key_file);
    }
    gnutls_hash_hd_t h;
    int g = gnutls_hash_init(&h, GNUTLS_DIG_SHA256);
    if (g >= 0) {
        gnutls_hash(h, "sprig quic secret", 17);
        gnutls_hash(h, key.data, key.size);
        gnutls_hash_deinit(h, out);
    }
    gnutls_free(key.data);
    return g < 0 ? sprig__err(SPRIG_ENOMEM, "QUIC: %s", gnutls_strerror(g))
                 : SPRIG_OK;
}

int
sprig__qng_srv_new(const char *cert_file, const char *key_file,
                   const char *alpn, sprig__qng_srv **out)
{
    if (!cert_file || !key_file) {
        return sprig__err(SPRIG_EINVAL, "QUIC needs a certificate and a key "
                                        "(sprig certificate "
                                        "install-self-signed)");
    }
    sprig__qng_srv *s = sprig__calloc(1, sizeof *s);
    if (!s) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for a QUIC listener");
    }
    snprintf(s->alpn, sizeof s->alpn, "%s", alpn);
    int g = gnutls_certificate_allocate_credentials(&s->cred);
    if (g >= 0) {
        g = gnutls_certificate_set_x509_key_file(s->cred, cert_file, key_file,
                                                 GNUTLS_X509_FMT_PEM);
    }
    int rc = g < 0 ? sprig__err(SPRIG_EINVAL, "TLS certificate %s / key %s: %s",
                                cert_file, key_file, gnutls_strerror(g))
                   : derive_secret(key_file, s->secret);
    if (rc) {
        sprig__qng_srv_free(s);
        return rc;
    }
    *out = s;
    return SPRIG_OK;
}

void
sprig__qng_srv_free(sprig__qng_srv *s)
{
    if (s) {
        if (s->cred) {
            gnutls_certificate_free_credentials(s->cred);
        }
        sprig__free(s);
    }
}

/* ---- stateless answers --------------------------------------------------- */

bool
sprig__qng_dcid(const uint8_t *pkt, size_t n, size_t short_len,
                sprig__qcid *out)
{
    ngtcp2_version_cid vc;
    if (n == 0) {
        return false; /* ngtcp2 asserts on empty input */
    }
    int rv = ngtcp2_pkt_decode_version_cid(&vc, pkt, n, short_len);
    if ((rv != 0 && rv != NGTCP2_ERR_VERSION_NEGOTIATION) ||
        vc.dcidlen > sizeof out->data) {
        return false;
    }
    out->len = (uint8_t)vc.dcidlen;
    memcpy(out->data, vc.dcid, vc.dcidlen);
    return true;
}

static sprig__qng_verdict
reply_vn(const ngtcp2_version_cid *vc, uint8_t *reply, size_t *len)
{
    uint32_t sv[2] = {0x1a2a3a4au, NGTCP2_PROTO_VER_V1}; /* grease, v1 */
    uint8_t r;
    rand_bytes(&r, 1);
    ngtcp2_ssize w = ngtcp2_pkt_write_version_negotiation(
        reply, SPRIG__QUIC_MAX_DGRAM, r, vc->scid, vc->scidlen, vc->dcid,
        vc->dcidlen, sv, 2);
    if (w < 0) {
        return SPRIG__QNG_DROP;
    }
    *len = (size_t)w;
    return SPRIG__QNG_VN;
}

/* A short-header packet for a connection we do not have: a stateless
 * reset, smaller than what came (so two endpoints cannot loop). */
static sprig__qng_verdict
reply_reset(sprig__qng_srv *s, const ngtcp2_version_cid *vc, size_t n,
            uint8_t *reply, size_t *len)
{
    uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN], rnd[40];
    ngtcp2_cid cid;
    if (n < 43 || vc->dcidlen != CIDLEN) {
        return SPRIG__QNG_DROP;
    }
    ngtcp2_cid_init(&cid, vc->dcid, vc->dcidlen);
    size_t randlen = n - 1 - NGTCP2_STATELESS_RESET_TOKENLEN - 1;
    randlen = randlen > sizeof rnd ? sizeof rnd : randlen;
    rand_bytes(rnd, randlen);
    if (ngtcp2_crypto_generate_stateless_reset_token(
            token, s->secret, sizeof s->secret, &cid) != 0) {
        return SPRIG__QNG_DROP;
    }
    ngtcp2_ssize w = ngtcp2_pkt_write_stateless_reset(
        reply, SPRIG__QUIC_MAX_DGRAM, token, rnd, randlen);
    if (w < 0) {
        return SPRIG__QNG_DROP;
    }
    *len = (size_t)w;
    return SPRIG__QNG_RESET;
}

static sprig__qng_verdict
reply_retry(sprig__qng_srv *s, const ngtcp2_pkt_hd *hd,
            const sprig__qaddr *from, uint8_t *reply, size_t *len)
{
    uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN];
    ngtcp2_cid scid;
    scid.datalen = CIDLEN;
    rand_bytes(scid.data, CIDLEN);
    ngtcp2_ssize tl = ngtcp2_crypto_generate_retry_token(
        token, s->secret, sizeof s->secret, hd->version,
        (const ngtcp2_sockaddr *)&from->ss, from->len, &scid, &hd->dcid,
        now_ns());
    if (tl < 0) {
        return SPRIG__QNG_DROP;
    }
    ngtcp2_ssize w = ngtcp2_crypto_write_retry(reply, SPRIG__QUIC_MAX_DGRAM,
                                               hd->version, &hd->scid, &scid,
                                               &hd->dcid, token, (size_t)tl);
    if (w < 0) {
        return SPRIG__QNG_DROP;
    }
    *len = (size_t)w;
    return SPRIG__QNG_RETRY;
}

static sprig__qng_verdict
reply_refuse(const ngtcp2_pkt_hd *hd, uint64_t code, uint8_t *reply,
             size_t *len)
{
    ngtcp2_ssize w = ngtcp2_crypto_write_connection_close(
        reply, SPRIG__QUIC_MAX_DGRAM, hd->version, &hd->scid, &hd->dcid, code,
        NULL, 0);
    if (w < 0) {
        return SPRIG__QNG_DROP;
    }
    *len = (size_t)w;
    return SPRIG__QNG_REFUSE;
}

void
sprig__qng_refuse(const sprig__qng_hello *h, uint8_t *reply, size_t *reply_len)
{
    ngtcp2_pkt_hd hd;
    memset(&hd, 0, sizeof hd);
    hd.version = h->version;
    from_qcid(&h->dcid, &hd.dcid);
    from_qcid(&h->scid, &hd.scid);
    *reply_len = 0;
    if (reply_refuse(&hd, NGTCP2_CONNECTION_REFUSED, reply, reply_len) ==
        SPRIG__QNG_DROP) {
        *reply_len = 0;
    }
}

/* An Initial carrying a token: ours, from a Retry, still fresh? */
static sprig__qng_verdict
check_token(sprig__qng_srv *s, const ngtcp2_pkt_hd *hd,
            const sprig__qaddr *from, uint8_t *reply, size_t *len,
            sprig__qng_hello *h)
{
    ngtcp2_cid odcid;
    if (hd->token.base[0] != NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY ||
        ngtcp2_crypto_verify_retry_token(
            &odcid, hd->token.base, hd->token.len, s->secret, sizeof s->secret,
            hd->version, (const ngtcp2_sockaddr *)&from->ss, from->len,
            &hd->dcid, 10 * NGTCP2_SECONDS, now_ns()) != 0) {
        return reply_refuse(hd, NGTCP2_INVALID_TOKEN, reply, len);
    }
    to_qcid(&odcid, &h->odcid);
    h->validated = true;
    return SPRIG__QNG_ACCEPT;
}

sprig__qng_verdict
sprig__qng_classify(sprig__qng_srv *s, const uint8_t *pkt, size_t n,
                    const sprig__qaddr *from, bool want_retry, uint8_t *reply,
                    size_t *reply_len, sprig__qng_hello *h)
{
    ngtcp2_version_cid vc;
    ngtcp2_pkt_hd hd;
    memset(h, 0, sizeof *h);
    if (n == 0) {
        return SPRIG__QNG_DROP;
    }
    int rv = ngtcp2_pkt_decode_version_cid(&vc, pkt, n, CIDLEN);
    if (rv == NGTCP2_ERR_VERSION_NEGOTIATION) {
        return reply_vn(&vc, reply, reply_len);
    }
    if (rv != 0) {
        return SPRIG__QNG_DROP;
    }
    if (vc.version == 0) {
        return reply_reset(s, &vc, n, reply, reply_len);
    }
    rv = ngtcp2_accept(&hd, pkt, n);
    if (rv == NGTCP2_ERR_RETRY) {
        return reply_retry(s, &hd, from, reply, reply_len);
    }
    if (rv != 0) {
        return SPRIG__QNG_DROP;
    }
    to_qcid(&hd.dcid, &h->dcid);
    to_qcid(&hd.scid, &h->scid);
    h->version = hd.version;
    if (hd.token.len) {
        return check_token(s, &hd, from, reply, reply_len, h);
    }
    if (want_retry) {
        return reply_retry(s, &hd, from, reply, reply_len);
    }
    return SPRIG__QNG_ACCEPT;
}

/* ---- callbacks ----------------------------------------------------------- */

static ngtcp2_conn *
get_conn(ngtcp2_crypto_conn_ref *ref)
{
    return ((sprig__qng *)ref->user_data)->conn;
}

static void
rand_cb(uint8_t *dest, size_t destlen, const ngtcp2_rand_ctx *ctx)
{
    (void)ctx;
    rand_bytes(dest, destlen);
}

static int
new_cid_cb(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t cidlen,
           void *ud)
{
    sprig__qng *q = ud;
    sprig__qcid c;
    (void)conn;
    cid->datalen = cidlen;
    rand_bytes(cid->data, cidlen);
    if (q->srv) {
        ngtcp2_crypto_generate_stateless_reset_token(
            token, q->srv->secret, sizeof q->srv->secret, cid);
    } else {
        rand_bytes(token, NGTCP2_STATELESS_RESET_TOKENLEN);
    }
    to_qcid(cid, &c);
    return q->io.cid_add(q->io.ctx, &c) ? NGTCP2_ERR_CALLBACK_FAILURE : 0;
}

static int
remove_cid_cb(ngtcp2_conn *conn, const ngtcp2_cid *cid, void *ud)
{
    sprig__qng *q = ud;
    sprig__qcid c;
    (void)conn;
    to_qcid(cid, &c);
    q->io.cid_remove(q->io.ctx, &c);
    return 0;
}

/* Stream bytes: the message stream's as stream -1, a request stream's
 * under its id (the server accepts only client-opened bidirectional
 * streams, up to its limit: ngtcp2 enforces both). */
static int
recv_stream_cb(ngtcp2_conn *conn, uint32_t flags, int64_t sid, uint64_t off,
               const uint8_t *data, size_t n, void *ud, void *sud)
{
    sprig__qng *q = ud;
    bool fin = (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0;
    (void)off, (void)sud;
    if (q->sid < 0 && q->server && sid == 0) {
        q->sid = 0; /* the client's message stream */
    }
    int failed = (n || fin) &&
                 q->io.data(q->io.ctx, sid == q->sid ? -1 : sid, data, n, fin);
    if (n) { /* consumed: wipe it where ngtcp2 decrypted (or reordered) it,
              * as it may hold a password (issue 10) */
        explicit_bzero((uint8_t *)(uintptr_t)data, n);
    }
    if (failed) {
        return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    ngtcp2_conn_extend_max_stream_offset(conn, sid, n);
    ngtcp2_conn_extend_max_offset(conn, n);
    return 0;
}

static int
acked_cb(ngtcp2_conn *conn, int64_t sid, uint64_t off, uint64_t n, void *ud,
         void *sud)
{
    sprig__qng *q = ud;
    (void)conn, (void)off, (void)sud;
    q->io.acked(q->io.ctx, sid == q->sid ? -1 : sid, n);
    return 0;
}

/* A request stream closed: the connection forgets it, and a server gives
 * the client the credit for another. */
static int
stream_close_cb(ngtcp2_conn *conn, uint32_t flags, int64_t sid, uint64_t code,
                void *ud, void *sud)
{
    sprig__qng *q = ud;
    (void)flags, (void)code, (void)sud;
    if (sid == q->sid) {
        return 0;
    }
    q->io.stream_closed(q->io.ctx, sid);
    if (q->server && (sid & 3) == 0) {
        ngtcp2_conn_extend_max_streams_bidi(conn, 1);
    }
    return 0;
}

static int
stream_open_cb(ngtcp2_conn *conn, int64_t sid, void *ud)
{
    sprig__qng *q = ud;
    (void)conn;
    if (q->server && q->sid < 0 && sid == 0) {
        q->sid = 0;
    }
    return 0;
}

static int
handshake_done_cb(ngtcp2_conn *conn, void *ud)
{
    sprig__qng *q = ud;
    if (!q->server && ngtcp2_conn_open_bidi_stream(conn, &q->sid, NULL) != 0) {
        return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    q->ready = true;
    q->io.ready(q->io.ctx);
    return 0;
}

/* The message stream is the connection: a reset of it closes it.  A
 * request stream's reset only ends that stream (stream_close_cb). */
static int
stream_reset_cb(ngtcp2_conn *conn, int64_t sid, uint64_t size, uint64_t code,
                void *ud, void *sud)
{
    sprig__qng *q = ud;
    (void)conn, (void)size, (void)code, (void)sud;
    return sid == q->sid ? NGTCP2_ERR_CALLBACK_FAILURE : 0;
}

static const ngtcp2_callbacks base_callbacks = {
    .recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb,
    .handshake_completed = handshake_done_cb,
    .encrypt = ngtcp2_crypto_encrypt_cb,
    .decrypt = ngtcp2_crypto_decrypt_cb,
    .hp_mask = ngtcp2_crypto_hp_mask_cb,
    .recv_stream_data = recv_stream_cb,
    .acked_stream_data_offset = acked_cb,
    .stream_open = stream_open_cb,
    .rand = rand_cb,
    .get_new_connection_id = new_cid_cb,
    .remove_connection_id = remove_cid_cb,
    .update_key = ngtcp2_crypto_update_key_cb,
    .stream_reset = stream_reset_cb,
    .stream_close = stream_close_cb,
    .delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,
    .delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,
    .get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,
    .version_negotiation = ngtcp2_crypto_version_negotiation_cb,
};

/* ---- TLS sessions -------------------------------------------------------- */

/* GnuTLS, client side, once the server's certificate arrived. */
static int
verify_cb(gnutls_session_t s)
{
    ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr(s);
    sprig__qng *q = ref->user_data;
    if (sprig__tls_cfg_verify(q->trust, s, q->host) != SPRIG_OK) {
        snprintf(q->verify_err, sizeof q->verify_err, "%s", sprig_errmsg());
        return -1;
    }
    return 0;
}

static int
tls_setup(sprig__qng *q, gnutls_certificate_credentials_t cred)
{
    unsigned flags = q->server ? GNUTLS_SERVER : GNUTLS_CLIENT;
    gnutls_datum_t alpn = {(unsigned char *)q->alpn, (unsigned)strlen(q->alpn)};
    int g = gnutls_init(&q->tls, flags | GNUTLS_NO_END_OF_EARLY_DATA);
    if (g < 0) {
        return sprig__err(SPRIG_ENOMEM, "TLS: %s", gnutls_strerror(g));
    }
    g = q->server ? ngtcp2_crypto_gnutls_configure_server_session(q->tls)
                  : ngtcp2_crypto_gnutls_configure_client_session(q->tls);
    if (g == 0) {
        g = gnutls_priority_set_direct(q->tls, priority, NULL);
    }
    if (g == 0) {
        g = gnutls_credentials_set(q->tls, GNUTLS_CRD_CERTIFICATE, cred);
    }
    if (g == 0) {
        g = gnutls_alpn_set_protocols(
            q->tls, &alpn, 1,
            GNUTLS_ALPN_MANDATORY |
                (q->server ? GNUTLS_ALPN_SERVER_PRECEDENCE : 0));
    }
    if (g != 0) {
        return sprig__err(SPRIG_EPROTO, "TLS session for QUIC: %s",
                          gnutls_strerror(g));
    }
    gnutls_session_set_ptr(q->tls, &q->ref);
    if (!q->server) {
        gnutls_session_set_verify_function(q->tls, verify_cb);
        const char *sni = q->host;
        uint8_t a[16];
        if (inet_pton(AF_INET, sni, a) == 1 ||
            inet_pton(AF_INET6, sni, a) == 1) {
            sni = "localhost"; /* an address is no SNI name */
        }
        gnutls_server_name_set(q->tls, GNUTLS_NAME_DNS, sni, strlen(sni));
    }
    return SPRIG_OK;
}

/* ---- engines ------------------------------------------------------------- */

static void
settings_of(const sprig__qng_cfg *cfg, ngtcp2_settings *st,
            ngtcp2_transport_params *tp, bool server)
{
    ngtcp2_settings_default(st);
    st->initial_ts = now_ns();
    st->max_window = 16u << 20;
    st->max_stream_window = 16u << 20;
    st->max_tx_udp_payload_size = SPRIG__QUIC_MAX_DGRAM;
    /* Acknowledge every ack-eliciting packet in the next packet sent:
     * with ngtcp2's default (every second packet, else after the ACK
     * delay of smoothed RTT / 8) an answer leaves without the ACK of its
     * request, and a separate ACK-only datagram follows on a timer, on
     * both sides, for every request: 2.5 datagrams and two timer wake-ups
     * per round trip instead of 2 and none.  The endpoint flushes once
     * per loop turn, so a burst of packets still gets one ACK. */
    st->ack_thresh = 1;
    if (cfg->handshake_timeout_ms) {
        st->handshake_timeout =
            (ngtcp2_duration)cfg->handshake_timeout_ms * NGTCP2_MILLISECONDS;
    }
    ngtcp2_transport_params_default(tp);
    tp->initial_max_stream_data_bidi_local = STREAM_WINDOW;
    tp->initial_max_stream_data_bidi_remote = STREAM_WINDOW;
    tp->initial_max_data = CONN_WINDOW;
    /* the message stream and the request streams */
    tp->initial_max_streams_bidi = server ? 1 + SPRIG__QUIC_REQ_STREAMS : 0;
    tp->initial_max_streams_uni = 0;
    tp->max_idle_timeout =
        (ngtcp2_duration)cfg->idle_timeout_ms * NGTCP2_MILLISECONDS;
    tp->active_connection_id_limit = 4;
}

static sprig__qng *
engine_alloc(const sprig__qng_cfg *cfg, const sprig__qng_io *io, bool server)
{
    sprig__qng *q = sprig__calloc(1, sizeof *q);
    if (!q) {
        return NULL;
    }
    q->ref.get_conn = get_conn;
    q->ref.user_data = q;
    q->io = *io;
    q->server = server;
    q->sid = -1;
    q->trust = cfg->trust;
    if (cfg->alpn) {
        snprintf(q->alpn, sizeof q->alpn, "%s", cfg->alpn);
    }
    ngtcp2_connection_close_error_default(&q->last);
    if (cfg->host && !(q->host = sprig__strdup(cfg->host))) {
        sprig__free(q);
        return NULL;
    }
    return q;
}

static void
path_of(const sprig__qaddr *local, const sprig__qaddr *remote, ngtcp2_path *p)
{
    p->local.addr = (ngtcp2_sockaddr *)&local->ss;
    p->local.addrlen = local->len;
    p->remote.addr = (ngtcp2_sockaddr *)&remote->ss;
    p->remote.addrlen = remote->len;
    p->user_data = NULL;
}

/* Register the connection's first ids; the rest come via new_cid_cb. */
static int
register_scids(sprig__qng *q, const sprig__qcid *extra)
{
    ngtcp2_cid ids[8];
    size_t n = ngtcp2_conn_get_num_scid(q->conn);
    n = n > 8 ? 8 : n;
    ngtcp2_conn_get_scid(q->conn, ids);
    for (size_t i = 0; i < n; i++) {
        sprig__qcid c;
        to_qcid(&ids[i], &c);
        if (q->io.cid_add(q->io.ctx, &c)) {
            return sprig__err(SPRIG_ENOMEM, "QUIC: no room for an id");
        }
    }
    return extra && q->io.cid_add(q->io.ctx, extra)
               ? sprig__err(SPRIG_ENOMEM, "QUIC: no room for an id")
               : SPRIG_OK;
}

int
sprig__qng_server_new(sprig__qng_srv *s, const sprig__qng_hello *h,
                      const sprig__qaddr *local, const sprig__qaddr *remote,
                      const sprig__qng_cfg *cfg, const sprig__qng_io *io,
                      sprig__qng **out)
{
    ngtcp2_settings st;
    ngtcp2_transport_params tp;
    ngtcp2_path path;
    ngtcp2_cid dcid, scid, odcid;
    ngtcp2_callbacks cb = base_callbacks;
    sprig__qng *q = engine_alloc(cfg, io, true);
    if (!q) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for a QUIC connection");
    }
    cb.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
    q->srv = s;
    snprintf(q->alpn, sizeof q->alpn, "%s", s->alpn);
    settings_of(cfg, &st, &tp, true);
    from_qcid(&h->scid, &dcid);
    from_qcid(&h->dcid, &odcid);
    scid.datalen = CIDLEN;
    rand_bytes(scid.data, CIDLEN);
    tp.original_dcid = odcid;
    if (h->validated) {
        from_qcid(&h->odcid, &tp.original_dcid);
        tp.retry_scid = odcid; /* the id our Retry gave the client */
        tp.retry_scid_present = 1;
    }
    tp.stateless_reset_token_present = 1;
    ngtcp2_crypto_generate_stateless_reset_token(
        tp.stateless_reset_token, s->secret, sizeof s->secret, &scid);
    path_of(local, remote, &path);
    int rv = ngtcp2_conn_server_new(&q->conn, &dcid, &scid, &path, h->version,
                                    &cb, &st, &tp, NULL, q);
    int rc = rv ? sprig__err(SPRIG_ENOMEM, "QUIC: %s", ngtcp2_strerror(rv))
                : tls_setup(q, s->cred);
    if (!rc) {
        ngtcp2_conn_set_tls_native_handle(q->conn, q->tls);
        rc = register_scids(q, &h->dcid);
    }
    if (!rc && cfg->ping_interval_ms) { /* keep-alive from this side too */
        ngtcp2_conn_set_keep_alive_timeout(
            q->conn,
            (ngtcp2_duration)cfg->ping_interval_ms * NGTCP2_MILLISECONDS);
    }
    if (rc) {
        sprig__qng_free(q);
        return rc;
    }
    *out = q;
    return SPRIG_OK;
}

int
sprig__qng_client_new(const sprig__qaddr *local, const sprig__qaddr *remote,
                      const sprig__qng_cfg *cfg, const sprig__qng_io *io,
                      sprig__qng **out)
{
    ngtcp2_settings st;
    ngtcp2_transport_params tp;
    ngtcp2_path path;
    ngtcp2_cid dcid, scid;
    ngtcp2_callbacks cb = base_callbacks;
    sprig__qng *q = engine_alloc(cfg, io, false);
    if (!q) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for a QUIC connection");
    }
    cb.client_initial = ngtcp2_crypto_client_initial_cb;
    cb.recv_retry = ngtcp2_crypto_recv_retry_cb;
    settings_of(cfg, &st, &tp, false);
    if (cfg->ping_interval_ms == 0 && cfg->idle_timeout_ms == 0) {
        tp.max_idle_timeout = 0;
    }
    dcid.datalen = CIDLEN;
    rand_bytes(dcid.data, CIDLEN);
    scid.datalen = CIDLEN;
    rand_bytes(scid.data, CIDLEN);
    path_of(local, remote, &path);
    int rv =
        ngtcp2_conn_client_new(&q->conn, &dcid, &scid, &path,
                               NGTCP2_PROTO_VER_V1, &cb, &st, &tp, NULL, q);
    gnutls_certificate_credentials_t cred = sprig__tls_cfg_cred(cfg->trust);
    int rc = rv ? sprig__err(SPRIG_ENOMEM, "QUIC: %s", ngtcp2_strerror(rv))
                : tls_setup(q, cred);
    if (rc) {
        sprig__qng_free(q);
        return rc;
    }
    ngtcp2_conn_set_tls_native_handle(q->conn, q->tls);
    if (cfg->ping_interval_ms) {
        ngtcp2_conn_set_keep_alive_timeout(
            q->conn,
            (ngtcp2_duration)cfg->ping_interval_ms * NGTCP2_MILLISECONDS);
    }
    *out = q;
    return SPRIG_OK;
}

void
sprig__qng_free(sprig__qng *q)
{
    if (!q) {
        return;
    }
    if (q->conn) {
        ngtcp2_conn_del(q->conn);
    }
    if (q->tls) {
        gnutls_deinit(q->tls);
    }
    sprig__free(q->host);
    sprig__free(q->close_pkt);
    sprig__free(q);
}

/* ---- why a connection ended ---------------------------------------------- */

/* The peer's CONNECTION_CLOSE, as a close code and a reason. */
static void
why_from_peer(sprig__qng *q)
{
    ngtcp2_connection_close_error e;
    ngtcp2_conn_get_connection_close_error(q->conn, &e);
    int rl = (int)(e.reasonlen > 150 ? 150 : e.reasonlen);
    const char *r = e.reason ? (const char *)e.reason : "";
    if (e.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION) {
        q->why.code = e.error_code >= 1000 && e.error_code <= 4999
                          ? (int)e.error_code
                          : SPRIG_CLOSE_PROTOCOL;
        snprintf(q->why.reason, sizeof q->why.reason, "%.*s", rl, r);
    } else if (e.error_code >= NGTCP2_CRYPTO_ERROR &&
               e.error_code < NGTCP2_CRYPTO_ERROR + 256) {
        const char *alert = gnutls_alert_get_name(
            (gnutls_alert_description_t)(e.error_code - NGTCP2_CRYPTO_ERROR));
        q->why.code = SPRIG_CLOSE_TLS;
        snprintf(q->why.reason, sizeof q->why.reason,
                 "the peer refused the TLS handshake (%s)%s%.*s",
                 alert ? alert : "alert", rl ? ": " : "", rl, r);
    } else {
        q->why.code = e.error_code == NGTCP2_CONNECTION_REFUSED
                          ? SPRIG_CLOSE_GOING_AWAY
                          : SPRIG_CLOSE_ABNORMAL;
        snprintf(q->why.reason, sizeof q->why.reason,
                 "the peer closed the QUIC connection (transport error 0x%llx)"
                 "%s%.*s",
                 (unsigned long long)e.error_code, rl ? ": " : "", rl, r);
    }
}

/* A local failure `rv` (ngtcp2 error): why, and what to tell the peer. */
static void
why_local(sprig__qng *q, int rv)
{
    q->why.code = SPRIG_CLOSE_PROTOCOL;
    if (rv == NGTCP2_ERR_CRYPTO) {
        uint8_t alert = ngtcp2_conn_get_tls_alert(q->conn);
        const char *name =
            gnutls_alert_get_name((gnutls_alert_description_t)alert);
        q->why.code = SPRIG_CLOSE_TLS;
        if (q->verify_err[0]) {
            snprintf(q->why.reason, sizeof q->why.reason, "%s", q->verify_err);
        } else if (q->server && alert == GNUTLS_A_NO_APPLICATION_PROTOCOL) {
            snprintf(q->why.reason, sizeof q->why.reason,
                     "ALPN: the client does not offer %s", q->alpn);
        } else {
            snprintf(q->why.reason, sizeof q->why.reason,
                     "TLS handshake failed (%s)", name ? name : "alert");
        }
        ngtcp2_connection_close_error_set_transport_error_tls_alert(
            &q->last, alert, (const uint8_t *)q->why.reason,
            strlen(q->why.reason));
        return;
    }
    q->silent =
        rv == NGTCP2_ERR_IDLE_CLOSE || rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT;
    if (rv == NGTCP2_ERR_IDLE_CLOSE) {
        q->why.code = SPRIG_CLOSE_GOING_AWAY;
        snprintf(q->why.reason, sizeof q->why.reason, "idle timeout");
    } else if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
        q->why.code = SPRIG_CLOSE_ABNORMAL;
        snprintf(q->why.reason, sizeof q->why.reason,
                 "QUIC handshake timed out");
    } else {
        snprintf(q->why.reason, sizeof q->why.reason, "QUIC: %s",
                 ngtcp2_strerror(rv));
    }
    ngtcp2_connection_close_error_set_transport_error_liberr(
        &q->last, rv, (const uint8_t *)q->why.reason, strlen(q->why.reason));
}

static int
fail(sprig__qng *q, int rv)
{
    if (!q->closed) {
        q->closed = true;
        if (rv == NGTCP2_ERR_DRAINING) {
            why_from_peer(q);
        } else {
            why_local(q, rv);
        }
    }
    return SPRIG__QNG_CLOSED;
}

void
sprig__qng_close_info(const sprig__qng *q, sprig__qng_why *out)
{
    *out = q->why;
}

/* ---- I/O ----------------------------------------------------------------- */

int
sprig__qng_read(sprig__qng *q, const sprig__qaddr *local,
                const sprig__qaddr *remote, const uint8_t *pkt, size_t n)
{
    ngtcp2_path path;
    ngtcp2_pkt_info pi = {0};
    if (q->closed) {
        return SPRIG__QNG_CLOSED;
    }
    if (n == 0) {
        return SPRIG__QNG_OK;
    }
    path_of(local, remote, &path);
    int rv = ngtcp2_conn_read_pkt(q->conn, &path, &pi, pkt, n, now_ns());
    if (rv == 0) {
        return SPRIG__QNG_OK;
    }
    if (rv == NGTCP2_ERR_DROP_CONN) {
        q->closed = q->silent = true;
        q->why.code = SPRIG_CLOSE_ABNORMAL;
        snprintf(q->why.reason, sizeof q->why.reason,
                 "QUIC: connection dropped");
        return SPRIG__QNG_CLOSED;
    }
    return fail(q, rv);
}

/* The next chunk at or after *k with something to write (bytes, or a
 * FIN not yet sent) on a stream that exists; false when none is left. */
static bool
next_chunk(const sprig__qng *q, sprig__qng_chunk *ch, size_t nch, size_t *k)
{
    for (; *k < nch; (*k)++) {
        const sprig__qng_chunk *c = &ch[*k];
        bool sid_ok = c->sid >= 0 || q->sid >= 0;
        if (sid_ok && (c->taken < c->n || (c->fin && !c->fin_sent))) {
            return true;
        }
    }
    return false;
}

/* One writev_stream call with chunk `c` (NULL: none, finish the packet). */
static ngtcp2_ssize
write_one(sprig__qng *q, ngtcp2_path_storage *ps, ngtcp2_pkt_info *pi,
          uint8_t *buf, sprig__qng_chunk *c, ngtcp2_tstamp ts)
{
    ngtcp2_ssize nd = -1;
    if (!c) {
        return ngtcp2_conn_writev_stream(q->conn, &ps->path, pi, buf,
                                         SPRIG__QUIC_MAX_DGRAM, NULL, 0, -1,
                                         NULL, 0, ts);
    }
    ngtcp2_vec v = {(uint8_t *)c->d + c->taken, c->n - c->taken};
    uint32_t fl = NGTCP2_WRITE_STREAM_FLAG_MORE |
                  (c->fin ? NGTCP2_WRITE_STREAM_FLAG_FIN : 0);
    ngtcp2_ssize w = ngtcp2_conn_writev_stream(
        q->conn, &ps->path, pi, buf, SPRIG__QUIC_MAX_DGRAM, &nd, fl,
        c->sid < 0 ? q->sid : c->sid, &v, v.len ? 1 : 0, ts);
    if (nd >= 0) {
        c->taken += (size_t)nd;
        c->fin_sent = c->fin && c->taken == c->n;
    }
    return w;
}

/* Write datagrams until ngtcp2 has nothing more (or is blocked): ACKs,
 * retransmissions and the stream bytes of the chunks, several streams'
 * frames in one packet when they fit (NGTCP2_WRITE_STREAM_FLAG_MORE:
 * while a chunk is offered, the packet stays open for the next). */
static int
write_loop(sprig__qng *q, sprig__qng_chunk *ch, size_t nch,
           void (*send)(void *ctx, const uint8_t *d, size_t n), void *ctx,
           ngtcp2_tstamp ts)
{
    uint8_t buf[SPRIG__QUIC_MAX_DGRAM];
    ngtcp2_path_storage ps;
    ngtcp2_pkt_info pi;
    ngtcp2_ssize w = 0;
    size_t k = 0;
    ngtcp2_path_storage_zero(&ps);
    for (int i = 0; i < 4096; i++) {
        bool have = next_chunk(q, ch, nch, &k);
        w = write_one(q, &ps, &pi, buf, have ? &ch[k] : NULL, ts);
        if (w == NGTCP2_ERR_WRITE_MORE) { /* room left: the next chunk */
            k += have && ch[k].taken == ch[k].n;
            continue;
        }
        if (w == NGTCP2_ERR_STREAM_DATA_BLOCKED ||
            w == NGTCP2_ERR_STREAM_SHUT_WR ||
            w == NGTCP2_ERR_STREAM_NOT_FOUND) {
            k++; /* flow control, or a stream gone: the others */
            continue;
        }
        if (w < 0) {
            return fail(q, (int)w);
        }
        if (w == 0) {
            break;
        }
        send(ctx, buf, (size_t)w);
    }
    if (w == NGTCP2_ERR_WRITE_MORE) { /* the cap hit with a packet open:
                                       * finish it (ngtcp2 asserts none is
                                       * open when the timer is handled) */
        w = write_one(q, &ps, &pi, buf, NULL, ts);
        if (w < 0) {
            return fail(q, (int)w);
        }
        if (w > 0) {
            send(ctx, buf, (size_t)w);
        }
    }
    ngtcp2_conn_update_pkt_tx_time(q->conn, ts);
    return SPRIG__QNG_OK;
}

/* Everything offered was taken (and every FIN sent)? */
static bool
all_taken(const sprig__qng_chunk *ch, size_t nch)
{
    for (size_t i = 0; i < nch; i++) {
        if (ch[i].taken < ch[i].n || (ch[i].fin && !ch[i].fin_sent)) {
            return false;
        }
    }
    return true;
}

int
sprig__qng_flush(sprig__qng *q, sprig__qng_chunk *ch, size_t nch,
                 void (*send)(void *ctx, const uint8_t *d, size_t n), void *ctx)
{
    ngtcp2_tstamp ts = now_ns();
    for (size_t i = 0; i < nch; i++) {
        ch[i].taken = 0;
        ch[i].fin_sent = false;
    }
    if (q->closed) {
        return SPRIG__QNG_CLOSED;
    }
    int rc = write_loop(q, ch, nch, send, ctx, ts);
    /* Pacing's next send time (set by the writes) is no deadline when
     * nothing waits to be sent: ngtcp2 lets a packet go up to 1 ms before
     * it anyway, and a timer for it (rounded up to 1 ms) would only wake
     * the loop for nothing after every packet.  Handling the expiry now
     * cancels it (and anything else due within that 1 ms waits for its
     * own timer, as it should). */
    if (rc == SPRIG__QNG_OK && all_taken(ch, nch) &&
        ngtcp2_conn_get_expiry(q->conn) <= ts + NGTCP2_MILLISECONDS) {
        int rv = ngtcp2_conn_handle_expiry(q->conn, ts);
        rc = rv ? fail(q, rv) : write_loop(q, ch, nch, send, ctx, ts);
    }
    return rc;
}

int
sprig__qng_open_stream(sprig__qng *q, int64_t *sid)
{
    if (q->closed || q->server || q->sid < 0) {
        return SPRIG_EBUSY;
    }
    return ngtcp2_conn_open_bidi_stream(q->conn, sid, NULL) == 0 ? SPRIG_OK
                                                                 : SPRIG_EBUSY;
}

uint64_t
sprig__qng_streams_left(sprig__qng *q)
{
    return q->closed ? 0 : ngtcp2_conn_get_streams_bidi_left(q->conn);
}

uint64_t
sprig__qng_timeout_ms(sprig__qng *q)
{
    ngtcp2_tstamp exp = ngtcp2_conn_get_expiry(q->conn), now = now_ns();
    if (exp == UINT64_MAX) {
        return UINT64_MAX;
    }
    return exp <= now
               ? 0
               : (exp - now + NGTCP2_MILLISECONDS - 1) / NGTCP2_MILLISECONDS;
}

int
sprig__qng_expire(sprig__qng *q)
{
    if (q->closed) {
        return SPRIG__QNG_CLOSED;
    }
    int rv = ngtcp2_conn_handle_expiry(q->conn, now_ns());
    return rv ? fail(q, rv) : SPRIG__QNG_OK;
}

void
sprig__qng_close(sprig__qng *q, int code, const char *reason,
                 void (*send)(void *ctx, const uint8_t *d, size_t n), void *ctx)
{
    uint8_t buf[SPRIG__QUIC_MAX_DGRAM];
    ngtcp2_path_storage ps;
    ngtcp2_pkt_info pi;
    if (!q->closed) {
        q->closed = true;
        q->why.code = code;
        snprintf(q->why.reason, sizeof q->why.reason, "%s",
                 reason ? reason : "");
        ngtcp2_connection_close_error_set_application_error(
            &q->last, (uint64_t)code, (const uint8_t *)q->why.reason,
            strlen(q->why.reason));
    }
    if (q->silent || ngtcp2_conn_is_in_closing_period(q->conn) ||
        ngtcp2_conn_is_in_draining_period(q->conn)) {
        return;
    }
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_ssize w = ngtcp2_conn_write_connection_close(
        q->conn, &ps.path, &pi, buf, sizeof buf, &q->last, now_ns());
    if (w > 0) {
        send(ctx, buf, (size_t)w);
        if (!q->close_pkt && (q->close_pkt = sprig__malloc((size_t)w))) {
            memcpy(q->close_pkt, buf, (size_t)w);
            q->close_len = (size_t)w;
        }
    }
}

sprig__qng_linger_kind
sprig__qng_linger(const sprig__qng *q, const uint8_t **pkt, size_t *len,
                  uint64_t *pto_ms)
{
    *pkt = NULL;
    *len = 0;
    *pto_ms = 0;
    if (!q->conn || q->silent) { /* idle, handshake timeout, dropped */
        return SPRIG__QNG_LINGER_NONE;
    }
    *pto_ms = (ngtcp2_conn_get_pto(q->conn) + NGTCP2_MILLISECONDS - 1) /
              NGTCP2_MILLISECONDS;
    if (ngtcp2_conn_is_in_draining_period(q->conn)) {
        return SPRIG__QNG_LINGER_DRAINING;
    }
    if (q->close_pkt) {
        *pkt = q->close_pkt;
        *len = q->close_len;
        return SPRIG__QNG_LINGER_CLOSING;
    }
    return SPRIG__QNG_LINGER_NONE;
}

bool
sprig__qng_stream_ready(const sprig__qng *q)
{
    return q->sid >= 0;
}

void
sprig__qng_describe(const sprig__qng *q, char *ver, size_t vn, char *cipher,
                    size_t cn)
{
    const char *v =
        gnutls_protocol_get_name(gnutls_protocol_get_version(q->tls));
    const char *c = gnutls_cipher_get_name(gnutls_cipher_get(q->tls));
    snprintf(ver, vn, "%s", v ? v : "TLS1.3");
    snprintf(cipher, cn, "%s", c ? c : "?");
}
