/*
 * quic_cert.c -- the server certificate in a storage directory (sprig.h,
 * "certificates"): make a self-signed one with GnuTLS, install a given
 * key and chain, describe one (SHA-256 fingerprint, subject, expiry).
 *
 * Design notes.  Files are written whole to a temporary name and renamed,
 * so a reader (a starting server) never sees half a key; the key is
 * created 0600.  A self-signed certificate names localhost, 127.0.0.1,
 * ::1 and the host's name, so a client that trusts it by file verifies the
 * usual loopback addresses as well as by pinning.
 */
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

static void
paths(const char *dir, sprig_cert_info *out)
{
    snprintf(out->cert_path, sizeof out->cert_path, "%s/%s", dir,
             SPRIG_CERT_FILE);
    snprintf(out->key_path, sizeof out->key_path, "%s/%s", dir,
             SPRIG_CERT_KEY_FILE);
}

/* Write `d` to `path` atomically (temporary file + rename), mode `mode`. */
static int
write_file(const char *path, const gnutls_datum_t *d, mode_t mode)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        return sprig__err(SPRIG_EIO, "cannot write %s: %s", tmp,
                          strerror(errno));
    }
    size_t off = 0;
    while (off < d->size) {
        ssize_t w = write(fd, d->data + off, d->size - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return sprig__err(SPRIG_EIO, "cannot write %s: %s", tmp,
                              strerror(e));
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        int rc =
            sprig__err(SPRIG_EIO, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return rc;
    }
    return SPRIG_OK;
}

/* ---- describing ---------------------------------------------------------- */

static void
describe_crt(gnutls_x509_crt_t crt, sprig_cert_info *out)
{
    uint8_t fp[32];
    size_t fl = sizeof fp, sl = sizeof out->subject;
    gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fp, &fl);
    for (size_t i = 0; i < 32; i++) {
        snprintf(out->sha256 + 2 * i, 3, "%02x", fp[i]);
    }
    if (gnutls_x509_crt_get_dn(crt, out->subject, &sl) < 0) {
        out->subject[0] = '\0';
    }
    out->not_after = (int64_t)gnutls_x509_crt_get_expiration_time(crt);
    char issuer[256];
    size_t il = sizeof issuer;
    out->self_signed = gnutls_x509_crt_get_issuer_dn(crt, issuer, &il) >= 0 &&
                       strcmp(issuer, out->subject) == 0;
}

/* The first certificate of a PEM file.  SPRIG_EINVAL / SPRIG_ENOTFOUND. */
static int
load_leaf(const char *path, gnutls_x509_crt_t *out)
{
    gnutls_datum_t pem = {NULL, 0};
    if (access(path, F_OK) != 0) {
        return sprig__err(SPRIG_ENOTFOUND, "no certificate at %s", path);
    }
    int g = gnutls_load_file(path, &pem);
    unsigned n = 1; /* the leaf; list_import initialises it */
    if (g >= 0) {
        g = gnutls_x509_crt_list_import(out, &n, &pem, GNUTLS_X509_FMT_PEM, 0);
        g = g == 0 ? GNUTLS_E_NO_CERTIFICATE_FOUND : g;
    }
    gnutls_free(pem.data);
    if (g < 0) {
        return sprig__err(SPRIG_EINVAL, "certificate %s: %s", path,
                          gnutls_strerror(g));
    }
    return SPRIG_OK;
}

int
sprig_cert_fingerprint(const char *pem_path, char out[65])
{
    gnutls_x509_crt_t crt;
    sprig_cert_info info;
    if (!pem_path || !out) {
        return sprig__err(SPRIG_EINVAL, "fingerprint: path and out needed");
    }
    int rc = load_leaf(pem_path, &crt);
    if (rc) {
        return rc == SPRIG_ENOTFOUND
                   ? sprig__err(SPRIG_EINVAL, "%s", sprig_errmsg())
                   : rc;
    }
    describe_crt(crt, &info);
    gnutls_x509_crt_deinit(crt);
    memcpy(out, info.sha256, 65);
    return SPRIG_OK;
}

int
sprig_cert_show(const char *dir, sprig_cert_info *out)
{
    gnutls_x509_crt_t crt;
    sprig_cert_info info;
    if (!dir) {
        return sprig__err(SPRIG_EINVAL, "certificate: no directory");
    }
    memset(&info, 0, sizeof info);
    paths(dir, &info);
    int rc = load_leaf(info.cert_path, &crt);
    if (rc) {
        return rc;
    }
    describe_crt(crt, &info);
    gnutls_x509_crt_deinit(crt);
    if (access(info.key_path, F_OK) != 0) {
        return sprig__err(SPRIG_ENOTFOUND, "certificate %s has no key %s",
                          info.cert_path, info.key_path);
    }
    if (out) {
        *out = info;
    }
    return SPRIG_OK;
}

/* ---- making one ---------------------------------------------------------- */

static int
add_names(gnutls_x509_crt_t crt)
{
    static const uint8_t v4[4] = {127, 0, 0, 1};
    static const uint8_t v6[16] = {[15] = 1};
    char host[256] = "";
    int g = gnutls_x509_crt_set_subject_alt_name(
        crt, GNUTLS_SAN_DNSNAME, "localhost", 9, GNUTLS_FSAN_APPEND);
    if (g >= 0) {
        g = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, v4,
                                                 4, GNUTLS_FSAN_APPEND);
    }
    if (g >= 0) {
        g = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, v6,
                                                 16, GNUTLS_FSAN_APPEND);
    }
    if (g >= 0 && gethostname(host, sizeof host - 1) == 0 && host[0] &&
        strcmp(host, "localhost") != 0) {
        g = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, host,
                                                 (unsigned)strlen(host),
                                                 GNUTLS_FSAN_APPEND);
    }
    return g;
}

static int
fill_crt(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key)
{
    uint8_t serial[16];
    time_t now = time(NULL);
    gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial);
    serial[0] &= 0x7f;
    int g = gnutls_x509_crt_set_version(crt, 3);
    g = g < 0 ? g : gnutls_x509_crt_set_serial(crt, serial, sizeof serial);
    g = g < 0 ? g : gnutls_x509_crt_set_activation_time(crt, now - 3600);
    g = g < 0 ? g
              : gnutls_x509_crt_set_expiration_time(crt, now + 3650L * 86400L);
    g = g < 0 ? g
              : gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME,
                                              0, "Sprig self-signed", 17);
    g = g < 0 ? g : gnutls_x509_crt_set_key(crt, key);
    g = g < 0 ? g : add_names(crt);
    g = g < 0 ? g : gnutls_x509_crt_set_basic_constraints(crt, 0, -1);
    g = g < 0
            ? g
            : gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
    g = g < 0 ? g
              : gnutls_x509_crt_set_key_purpose_oid(
                    crt, GNUTLS_KP_TLS_WWW_SERVER, 0);
    g = g < 0 ? g : gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
    return g;
}

/* A new key and self-signed certificate, as PEM. */
static int
make_pair(gnutls_datum_t *crt_pem, gnutls_datum_t *key_pem)
{
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    int g = gnutls_x509_privkey_init(&key);
    g = g < 0 ? g
              : gnutls_x509_privkey_generate(
                    key, GNUTLS_PK_ECDSA,
                    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
    g = g < 0 ? g : gnutls_x509_crt_init(&crt);
    g = g < 0 ? g : fill_crt(crt, key);
    g = g < 0 ? g : gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, crt_pem);
    g = g < 0 ? g
              : gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, key_pem);
    if (crt) {
        gnutls_x509_crt_deinit(crt);
    }
    if (key) {
        gnutls_x509_privkey_deinit(key);
    }
    return g < 0 ? sprig__err(SPRIG_ENOMEM, "cannot make a certificate: %s",
                              gnutls_strerror(g))
                 : SPRIG_OK;
}

int
sprig_cert_install_self_signed(const char *dir, bool overwrite,
                               sprig_cert_info *out)
{
    sprig_cert_info info;
    gnutls_datum_t crt = {NULL, 0}, key = {NULL, 0};
    if (!dir) {
        return sprig__err(SPRIG_EINVAL, "certificate: no directory");
    }
    memset(&info, 0, sizeof info);
    paths(dir, &info);
    if (!overwrite && (access(info.cert_path, F_OK) == 0 ||
                       access(info.key_path, F_OK) == 0)) {
        return sprig__err(SPRIG_EEXIST,
                          "a certificate is already installed at %s "
                          "(--overwrite replaces it)",
                          info.cert_path);
    }
    int rc = make_pair(&crt, &key);
    rc = rc ? rc : write_file(info.key_path, &key, 0600);
    rc = rc ? rc : write_file(info.cert_path, &crt, 0644);
    gnutls_free(crt.data);
    gnutls_free(key.data);
    rc = rc ? rc : sprig_cert_show(dir, &info);
    if (!rc && out) {
        *out = info;
        out->created = true;
    }
    return rc;
}

int
sprig_cert_ensure(const char *dir, sprig_cert_info *out)
{
    int rc = sprig_cert_show(dir, out);
    if (rc == SPRIG_ENOTFOUND) {
        rc = sprig_cert_install_self_signed(dir, false, out);
    }
    return rc;
}

/* ---- installing one ------------------------------------------------------ */

/* Do the key and chain parse, and does the key match the leaf? */
static int
check_pair(const char *key_pem, const char *chain_pem)
{
    gnutls_certificate_credentials_t cred;
    int g = gnutls_certificate_allocate_credentials(&cred);
    if (g < 0) {
        return sprig__err(SPRIG_ENOMEM, "TLS: %s", gnutls_strerror(g));
    }
    g = gnutls_certificate_set_x509_key_file(cred, chain_pem, key_pem,
                                             GNUTLS_X509_FMT_PEM);
    gnutls_certificate_free_credentials(cred);
    if (g < 0) {
        return sprig__err(SPRIG_EINVAL,
                          "certificate %s with key %s: %s (is the key the "
                          "certificate's, and are both PEM?)",
                          chain_pem, key_pem, gnutls_strerror(g));
    }
    return SPRIG_OK;
}

int
sprig_cert_install(const char *dir, const char *key_pem, const char *chain_pem,
                   sprig_cert_info *out)
{
    sprig_cert_info info;
    gnutls_datum_t key = {NULL, 0}, chain = {NULL, 0};
    if (!dir || !key_pem || !chain_pem) {
        return sprig__err(SPRIG_EINVAL, "certificate install: directory, key "
                                        "and chain are needed");
    }
    int rc = check_pair(key_pem, chain_pem);
    if (rc) {
        return rc;
    }
    memset(&info, 0, sizeof info);
    paths(dir, &info);
    if (gnutls_load_file(key_pem, &key) < 0 ||
        gnutls_load_file(chain_pem, &chain) < 0) {
        rc = sprig__err(SPRIG_EINVAL, "cannot read %s or %s", key_pem,
                        chain_pem);
    }
    rc = rc ? rc : write_file(info.key_path, &key, 0600);
    rc = rc ? rc : write_file(info.cert_path, &chain, 0644);
    gnutls_free(key.data);
    gnutls_free(chain.data);
    rc = rc ? rc : sprig_cert_show(dir, &info);
    if (!rc && out) {
        *out = info;
    }
    return rc;
}
