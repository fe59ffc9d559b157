/*
 * cmd_cert.c -- `sprig certificate`: the server's TLS certificate in the
 * storage directory (--path), which QUIC and wss:// serve:
 *   install-self-signed [--overwrite]   make a self-signed pair
 *   install KEY.pem CHAIN.pem           install a key and its chain
 *   show                                where it is, its SHA-256, expiry
 * Each prints what is installed as JSON (the fingerprint is what clients
 * pin: --ca SHA256 on the command line, pinned_cert_sha256 in code).
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char cert_usage[] =
    "usage: sprig [--path DIR] certificate install-self-signed "
    "[--overwrite]\n"
    "       sprig [--path DIR] certificate install KEY.pem CHAIN.pem\n"
    "       sprig [--path DIR] certificate show\n"
    "\n"
    "The server certificate of the storage at --path (DIR/certificate.pem\n"
    "and DIR/private-key.pem), which `sprig serve` uses for QUIC (and for\n"
    "wss:// with --wss).  `serve` makes a self-signed one on its first\n"
    "start when there is none.  Clients trust it by its file (--ca FILE)\n"
    "or its SHA-256 fingerprint (--ca SHA256), or through the system's\n"
    "CAs for a certificate a CA signed.\n"
    "\n"
    "  install-self-signed  make a new key and self-signed certificate\n"
    "                       (refused when one exists, unless --overwrite)\n"
    "  install KEY CHAIN    install a PEM key and its PEM certificate chain\n"
    "                       (leaf first); the key must be the leaf's\n"
    "  show                 print the certificate's paths, subject, expiry\n"
    "                       and SHA-256 fingerprint\n";

static int
print_info(const sprig_cert_info *ci)
{
    char when[64] = "?";
    time_t t = (time_t)ci->not_after;
    struct tm tm;
    if (gmtime_r(&t, &tm)) {
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    jw w = {0};
    jw_raw(&w, "{");
    jw_key(&w, "certificate");
    jw_cstr(&w, ci->cert_path);
    jw_raw(&w, ",");
    jw_key(&w, "key");
    jw_cstr(&w, ci->key_path);
    jw_raw(&w, ",");
    jw_key(&w, "sha256");
    jw_cstr(&w, ci->sha256);
    jw_raw(&w, ",");
    jw_key(&w, "subject");
    jw_cstr(&w, ci->subject);
    jw_raw(&w, ",");
    jw_key(&w, "expires");
    jw_cstr(&w, when);
    jw_raw(&w, ",");
    jw_key(&w, "self_signed");
    jw_raw(&w, ci->self_signed ? "true" : "false");
    jw_raw(&w, ",");
    jw_key(&w, "created");
    jw_raw(&w, ci->created ? "true" : "false");
    jw_raw(&w, "}");
    return jw_print(&w);
}

/* The storage directory, made if missing (a certificate may come first). */
static int
ensure_dir(const char *path)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        return cli_err(SPRIG_EIO, "cannot make %s: %s", path, strerror(errno));
    }
    return CLI_CONTINUE;
}

int
cli_cmd_cert(cli *c, int argc, char **argv)
{
    bool overwrite = false;
    const cli_opt opts[] = {{"--overwrite", NULL, &overwrite},
                            {NULL, NULL, NULL}};
    cli_args a;
    int rc = cli_parse(argc, argv, opts, cert_usage, 1, 3, &a);
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    if (c->url || !*c->path) {
        return cli_usage(cert_usage, "certificate works on --path DIR");
    }
    const char *sub = a.pos[0];
    bool self = !strcmp(sub, "install-self-signed") && a.n == 1;
    bool install = !strcmp(sub, "install") && a.n == 3;
    if (!self && !install && (strcmp(sub, "show") || a.n != 1)) {
        return cli_usage(cert_usage,
                         "unknown certificate command or wrong "
                         "arguments: '%s'",
                         sub);
    }
    if ((self || install) && (rc = ensure_dir(c->path)) != CLI_CONTINUE) {
        return rc;
    }
    sprig_cert_info ci;
    memset(&ci, 0, sizeof ci);
    rc = self      ? sprig_cert_install_self_signed(c->path, overwrite, &ci)
         : install ? sprig_cert_install(c->path, a.pos[1], a.pos[2], &ci)
                   : sprig_cert_show(c->path, &ci);
    return rc ? cli_fail(rc) : print_info(&ci);
}
