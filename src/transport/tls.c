/*
 * tls.c -- TLS for wss:// through GnuTLS, between the socket and the
 * HTTP/WebSocket code of a connection.
 *
 * Design notes.  A session never touches a socket: GnuTLS's pull function
 * reads from the ciphertext the connection just received (t->in), and its
 * push function hands ciphertext back through io->wire, which only appends
 * to the connection's write buffer, so it never blocks and GnuTLS never
 * sees EAGAIN on a write.  sprig__tls_feed() drives both directions: the
 * handshake until it completes (HANDSHAKE -> READY, reported through
 * io->ready after a client has verified the server), then records, each
 * decrypted record going to io->plain.  A feed consumes all it is given;
 * GnuTLS keeps partial records itself.  Credentials (sprig__tls_cfg) are
 * loaded once per listener or client connection and shared by sessions.
 *
 * Client trust: the server certificate must chain to a certificate in
 * tls_ca_file and carry the host name (or IP address) connected to, or be
 * byte for byte one of the certificates in that file (pinning).  Every
 * failure says why, as GnuTLS words it.
 */
#include "ws_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

struct sprig__tls_cfg {
    gnutls_certificate_credentials_t cred;
    bool server;
    gnutls_datum_t *pins; /* DER of the certificates in the CA file */
    unsigned npins;
    bool has_fp;    /* pinned by SHA-256 fingerprint: only that one */
    uint8_t fp[32]; /* ... of the server's leaf certificate (DER) */
};

struct sprig__tls {
    gnutls_session_t s;
    const sprig__tls_cfg *cfg;
    sprig__tls_io io;
    const uint8_t *in;
    size_t in_len;
    bool ready;
    char *host;
};

/* ---- credentials --------------------------------------------------------- */

int
sprig__tls_cfg_server(const char *cert_file, const char *key_file,
                      sprig__tls_cfg **out)
{
    sprig__tls_cfg *t = sprig__calloc(1, sizeof *t);
    if (!t) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for TLS credentials");
    }
    t->server = true;
    int g = gnutls_certificate_allocate_credentials(&t->cred);
    if (g >= 0) {
        g = gnutls_certificate_set_x509_key_file(t->cred, cert_file, key_file,
                                                 GNUTLS_X509_FMT_PEM);
    }
    if (g < 0) {
        int rc = sprig__err(SPRIG_EINVAL, "TLS certificate %s / key %s: %s",
                            cert_file, key_file, gnutls_strerror(g));
        sprig__tls_cfg_free(t);
        return rc;
    }
    *out = t;
    return SPRIG_OK;
}

/* Keep the DER of every certificate in `file` for pinning. */
static int
load_pins(sprig__tls_cfg *t, const char *file)
{
    gnutls_datum_t pem = {NULL, 0};
    gnutls_x509_crt_t *crts = NULL;
    unsigned n = 0;
    int g = gnutls_load_file(file, &pem);
    if (g >= 0) {
        g = gnutls_x509_crt_list_import2(&crts, &n, &pem, GNUTLS_X509_FMT_PEM,
                                         0);
    }
    gnutls_free(pem.data);
    if (g < 0) {
        return sprig__err(SPRIG_EINVAL, "TLS trust file %s: %s", file,
                          gnutls_strerror(g));
    }
    t->pins = sprig__calloc(n ? n : 1, sizeof *t->pins);
    int rc =
        t->pins ? SPRIG_OK : sprig__err(SPRIG_ENOMEM, "out of memory for pins");
    for (unsigned i = 0; i < n; i++) {
        if (!rc && gnutls_x509_crt_export2(crts[i], GNUTLS_X509_FMT_DER,
                                           &t->pins[t->npins]) >= 0) {
            t->npins++;
        }
        gnutls_x509_crt_deinit(crts[i]);
    }
    gnutls_free(crts);
    return rc;
}

int
sprig__tls_cfg_client(const char *ca_file, sprig__tls_cfg **out)
{
    sprig__tls_cfg *t = sprig__calloc(1, sizeof *t);
    if (!t) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for TLS credentials");
    }
    int rc = SPRIG_OK, g = gnutls_certificate_allocate_credentials(&t->cred);
    if (g < 0) {
        rc = sprig__err(SPRIG_ENOMEM, "TLS: %s", gnutls_strerror(g));
    } else if (ca_file) {
        g = gnutls_certificate_set_x509_trust_file(t->cred, ca_file,
                                                   GNUTLS_X509_FMT_PEM);
        if (g <= 0) {
            rc = sprig__err(SPRIG_EINVAL, "TLS trust file %s: %s", ca_file,
                            g < 0 ? gnutls_strerror(g) : "no certificate");
        } else {
            rc = load_pins(t, ca_file);
        }
    } else if (gnutls_certificate_set_x509_system_trust(t->cred) < 0) {
        rc = sprig__err(SPRIG_EINVAL, "TLS: no system trust store");
    }
    if (rc) {
        sprig__tls_cfg_free(t);
        return rc;
    }
    *out = t;
    return SPRIG_OK;
}

void
sprig__tls_cfg_free(sprig__tls_cfg *t)
{
    if (!t) {
        return;
    }
    for (unsigned i = 0; i < t->npins; i++) {
        gnutls_free(t->pins[i].data);
    }
    sprig__free(t->pins);
    if (t->cred) {
        gnutls_certificate_free_credentials(t->cred);
    }
    sprig__free(t);
}

/* ---- sessions ------------------------------------------------------------ */

static ssize_t
tls_push(gnutls_transport_ptr_t p, const void *data, size_t len)
{
    sprig__tls *t = p;
    if (t->io.wire(t->io.ctx, data, len)) {
        gnutls_transport_set_errno(t->s, ENOMEM);
        return -1;
    }
    return (ssize_t)len;
}

static ssize_t
tls_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
    sprig__tls *t = p;
    if (t->in_len == 0) {
        gnutls_transport_set_errno(t->s, EAGAIN);
        return -1;
    }
    size_t n = len < t->in_len ? len : t->in_len;
    memcpy(buf, t->in, n);
    t->in += n;
    t->in_len -= n;
    return (ssize_t)n;
}

static bool
is_address(const char *host)
{
    uint8_t a[16];
    return inet_pton(AF_INET, host, a) == 1 ||
           inet_pton(AF_INET6, host, a) == 1;
}

static int
session_setup(sprig__tls *t)
{
    unsigned flags = t->cfg->server ? GNUTLS_SERVER : GNUTLS_CLIENT;
    int g = gnutls_init(&t->s, flags | GNUTLS_NONBLOCK);
    if (g >= 0) {
        g = gnutls_set_default_priority(t->s);
    }
    if (g >= 0) {
        g = gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, t->cfg->cred);
    }
    if (g >= 0 && !t->cfg->server && t->host && !is_address(t->host)) {
        g = gnutls_server_name_set(t->s, GNUTLS_NAME_DNS, t->host,
                                   strlen(t->host));
    }
    if (g < 0) {
        return sprig__err(SPRIG_EINVAL, "TLS session: %s", gnutls_strerror(g));
    }
    gnutls_transport_set_ptr(t->s, t);
    gnutls_transport_set_push_function(t->s, tls_push);
    gnutls_transport_set_pull_function(t->s, tls_pull);
    return SPRIG_OK;
}

int
sprig__tls_new(const sprig__tls_cfg *cfg, const char *host,
               const sprig__tls_io *io, sprig__tls **out)
{
    sprig__tls *t = sprig__calloc(1, sizeof *t);
    if (!t || (host && !(t->host = sprig__strdup(host)))) {
        sprig__free(t);
        return sprig__err(SPRIG_ENOMEM, "out of memory for a TLS session");
    }
    t->cfg = cfg;
    t->io = *io;
    int rc = session_setup(t);
    if (rc) {
        sprig__tls_free(t);
        return rc;
    }
    *out = t;
    return SPRIG_OK;
}

/* Does the leaf certificate of `s` have the pinned fingerprint? */
static int
check_fingerprint(const sprig__tls_cfg *cfg, gnutls_session_t s)
{
    unsigned n = 0;
    uint8_t got[32];
    char hex[65], want[65];
    const gnutls_datum_t *chain = gnutls_certificate_get_peers(s, &n);
    if (!chain || n == 0 ||
        gnutls_hash_fast(GNUTLS_DIG_SHA256, chain[0].data, chain[0].size, got) <
            0) {
        return sprig__err(SPRIG_EAUTH, "TLS: the server sent no certificate");
    }
    if (memcmp(got, cfg->fp, 32) == 0) {
        return SPRIG_OK;
    }
    for (int i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", got[i]);
        snprintf(want + 2 * i, 3, "%02x", cfg->fp[i]);
    }
    return sprig__err(SPRIG_EAUTH,
                      "TLS: server certificate SHA-256 %s is not the "
                      "pinned %s",
                      hex, want);
}

/* Is the leaf certificate of `s` one of the pinned ones? */
static bool
pinned_in(const sprig__tls_cfg *cfg, gnutls_session_t s)
{
    unsigned n = 0;
    const gnutls_datum_t *chain = gnutls_certificate_get_peers(s, &n);
    if (!chain || n == 0) {
        return false;
    }
    for (unsigned i = 0; i < cfg->npins; i++) {
        const gnutls_datum_t *p = &cfg->pins[i];
        if (p->size == chain[0].size &&
            memcmp(p->data, chain[0].data, p->size) == 0) {
            return true;
        }
    }
    return false;
}

int
sprig__tls_cfg_verify(const sprig__tls_cfg *cfg, void *session,
                      const char *host)
{
    gnutls_session_t s = session;
    unsigned status = 0;
    if (cfg->has_fp) {
        return check_fingerprint(cfg, s);
    }
    int g = gnutls_certificate_verify_peers3(s, host, &status);
    if ((g >= 0 && status == 0) || pinned_in(cfg, s)) {
        return SPRIG_OK;
    }
    if (g < 0) {
        return sprig__err(SPRIG_EAUTH, "TLS: cannot verify the server: %s",
                          gnutls_strerror(g));
    }
    gnutls_datum_t why = {NULL, 0};
    gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why,
                                                 0);
    int rc = sprig__err(SPRIG_EAUTH,
                        "TLS: server certificate refused (not the pinned "
                        "certificate, not signed by a trusted CA): %s",
                        why.data ? (const char *)why.data : "not trusted");
    gnutls_free(why.data);
    return rc;
}

void *
sprig__tls_cfg_cred(const sprig__tls_cfg *cfg)
{
    return cfg->cred;
}

static int
hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

int
sprig__tls_cfg_pin_sha256(sprig__tls_cfg *t, const char *hex)
{
    size_t n = 0;
    for (const char *p = hex; *p; p++) {
        int v = hexval(*p);
        if (*p == ':' || *p == ' ') {
            continue;
        }
        if (n >= 64 || v < 0) {
            return sprig__err(SPRIG_EINVAL,
                              "pinned fingerprint \"%s\" is not 64 hex "
                              "digits (SHA-256)",
                              hex);
        }
        t->fp[n / 2] = (uint8_t)(n % 2 ? t->fp[n / 2] | v : v << 4);
        n++;
    }
    if (n != 64) {
        return sprig__err(SPRIG_EINVAL,
                          "pinned fingerprint \"%s\" is not 64 hex digits "
                          "(SHA-256)",
                          hex);
    }
    t->has_fp = true;
    return SPRIG_OK;
}

int
sprig__tls_cfg_pinned(const char *hex, sprig__tls_cfg **out)
{
    sprig__tls_cfg *t = sprig__calloc(1, sizeof *t);
    if (!t) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for TLS credentials");
    }
    int g = gnutls_certificate_allocate_credentials(&t->cred);
    int rc = g < 0 ? sprig__err(SPRIG_ENOMEM, "TLS: %s", gnutls_strerror(g))
                   : sprig__tls_cfg_pin_sha256(t, hex);
    if (rc) {
        sprig__tls_cfg_free(t);
        return rc;
    }
    *out = t;
    return SPRIG_OK;
}

/* Client: is the server's certificate trusted?  SPRIG_EAUTH if not. */
static int
verify_server(sprig__tls *t)
{
    return sprig__tls_cfg_verify(t->cfg, t->s, t->host);
}

/* What one step of sprig__tls_feed() found (errors are negative). */
enum { STEP_NEED_BYTES = 0, STEP_MORE, STEP_READY, STEP_STOP };

/* One handshake step. */
static int
handshake_step(sprig__tls *t)
{
    int g = gnutls_handshake(t->s);
    if (g == GNUTLS_E_AGAIN || g == GNUTLS_E_INTERRUPTED) {
        return STEP_NEED_BYTES;
    }
    if (g < 0 && gnutls_error_is_fatal(g)) {
        return sprig__err(SPRIG_EPROTO, "TLS handshake failed: %s",
                          gnutls_strerror(g));
    }
    if (g < 0) {
        return STEP_MORE; /* a warning alert */
    }
    if (!t->cfg->server) {
        int rc = verify_server(t);
        if (rc) {
            return rc;
        }
    }
    t->ready = true;
    return STEP_READY;
}

/* One record, handed on where GnuTLS decrypted it (no copy), then wiped
 * there before GnuTLS frees it: it may hold a password (issue 10). */
static int
record_step(sprig__tls *t)
{
    gnutls_packet_t pkt = NULL;
    ssize_t n = gnutls_record_recv_packet(t->s, &pkt);
    if (n > 0 && pkt) {
        gnutls_datum_t d = {NULL, 0};
        gnutls_packet_get(pkt, &d, NULL);
        int stop = t->io.plain(t->io.ctx, d.data, d.size);
        explicit_bzero(d.data, d.size);
        gnutls_packet_deinit(pkt);
        return stop ? STEP_STOP : STEP_MORE;
    }
    gnutls_packet_deinit(pkt);
    if (n == 0) {
        return sprig__err(SPRIG_ECLOSED, "TLS: the peer closed the session");
    }
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
        return STEP_NEED_BYTES;
    }
    if (!gnutls_error_is_fatal((int)n)) {
        return STEP_MORE; /* e.g. a rehandshake request: ignored */
    }
    return sprig__err(SPRIG_EPROTO, "TLS: %s", gnutls_strerror((int)n));
}

int
sprig__tls_feed(sprig__tls *t, const uint8_t *data, size_t len)
{
    t->in = data;
    t->in_len = len;
    for (;;) {
        int r = t->ready ? record_step(t) : handshake_step(t);
        if (r == STEP_READY && t->io.ready(t->io.ctx)) {
            r = STEP_STOP;
        }
        if (r == STEP_MORE || r == STEP_READY) {
            continue;
        }
        t->in_len = 0;
        return r == STEP_STOP ? SPRIG_OK : r;
    }
}

int
sprig__tls_send(sprig__tls *t, const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t n = gnutls_record_send(t->s, data, len);
        if (n <= 0) { /* the push function never blocks: no EAGAIN */
            return sprig__err(SPRIG_EIO, "TLS send: %s",
                              gnutls_strerror((int)n));
        }
        data += n;
        len -= (size_t)n;
    }
    return SPRIG_OK;
}

void
sprig__tls_describe(const sprig__tls *t, char *version, size_t vn, char *cipher,
                    size_t cn)
{
    const char *v = gnutls_protocol_get_name(gnutls_protocol_get_version(t->s));
    const char *ci = gnutls_cipher_get_name(gnutls_cipher_get(t->s));
    snprintf(version, vn, "%s", v ? v : "TLS");
    snprintf(cipher, cn, "%s", ci ? ci : "?");
}

void
sprig__tls_bye(sprig__tls *t)
{
    if (t && t->ready) {
        gnutls_bye(t->s, GNUTLS_SHUT_WR);
    }
}

void
sprig__tls_free(sprig__tls *t)
{
    if (!t) {
        return;
    }
    if (t->s) {
        gnutls_deinit(t->s);
    }
    sprig__free(t->host);
    sprig__free(t);
}
