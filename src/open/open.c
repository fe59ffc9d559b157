/*
 * open.c -- sprig_open(): one URL opens any placement.
 *
 * The open module sits above src/local (through sprig_storage_open(), the
 * public call) and src/client (sprig_client_connect()), and knows only
 * their public headers.  It reads the URL's scheme and hands the rest to
 * the placement that scheme names: a directory (file:, or a plain path),
 * a memory-only storage (mem:), or a server through a client (any scheme
 * in the transport table: ws://, wss://, quic://, sprig://).  For a server, the
 * storage handle returned owns its client (sprig_client_storage_owning()), so
 * closing the storage closes the connection too.
 */
#include "core/core.h"
#include "sprig/client.h"
#include "sprig/sprig.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

void
sprig_open_options_init(sprig_open_options *o)
{
    memset(o, 0, sizeof *o);
    sprig_storage_options_init(&o->storage);
}

/* A local storage: in `path`, or in memory. */
static int
open_local(const sprig_open_options *o, const char *path, bool memory,
           sprig_storage **out)
{
    sprig_storage_options so = o->storage;
    if (!memory && !*path) {
        return sprig__err(SPRIG_EINVAL, "file: URL without a path");
    }
    so.path = memory ? NULL : path;
    so.memory_only = memory;
    return sprig_storage_open(&so, out);
}

/* A server, through a client whose storage handle owns it. */
static int
open_remote(const sprig_open_options *o, const char *url, sprig_storage **out)
{
    sprig_client_options co;
    sprig_client_options_init(&co);
    co.pinned_cert_path = o->pinned_cert_path;
    co.pinned_cert_sha256 = o->pinned_cert_sha256;
    co.no_follow = o->no_follow;
    co.linearizable_reads = o->linearizable_reads;
    if (o->connect_timeout_ms) {
        co.connect_timeout_ms = o->connect_timeout_ms;
    }
    if (o->request_timeout_ms) {
        co.request_timeout_ms = o->request_timeout_ms;
    }
    sprig_client *c;
    int rc = sprig_client_connect(url, &co, &c);
    if (rc) {
        return rc;
    }
    if (o->user) {
        rc = sprig_client_authenticate_password(c, o->user,
                                                o->password ? o->password : "");
    } else if (o->token_file) {
        rc = sprig_client_authenticate_token_file(c, o->token_file);
    }
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", sprig_errmsg());
        sprig_client_close(c);
        return sprig__err(rc, "%s", msg);
    }
    *out = sprig_client_storage_owning(c);
    return SPRIG_OK;
}

/* The scheme of `url` ("file", "ws"), or "" when it has none. */
static void
scheme_of(const char *url, char *out, size_t cap)
{
    size_t n = strspn(url, "abcdefghijklmnopqrstuvwxyz"
                           "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
    /* "C:" or a bare path is no scheme; a scheme is two characters or more */
    if (n < 2 || url[n] != ':' || n >= cap) {
        out[0] = '\0';
        return;
    }
    memcpy(out, url, n);
    out[n] = '\0';
}

int
sprig_open(const char *url, const sprig_open_options *o, sprig_storage **out)
{
    if (!url || !out) {
        return sprig__err(SPRIG_EINVAL, "sprig_open: url and out are needed");
    }
    *out = NULL;
    sprig_open_options defaults;
    if (!o) {
        sprig_open_options_init(&defaults);
        o = &defaults;
    }
    char scheme[16];
    scheme_of(url, scheme, sizeof scheme);
    if (!scheme[0]) {
        return open_local(o, url, false, out); /* a plain path */
    }
    const char *rest = url + strlen(scheme) + 1;
    if (!strcasecmp(scheme, "file")) {
        if (!strncmp(rest, "//", 2)) {
            rest += 2; /* file:///abs/path or file://rel */
        }
        return open_local(o, rest, false, out);
    }
    if (!strcasecmp(scheme, "mem")) {
        return open_local(o, NULL, true, out);
    }
    if (!strncmp(rest, "//", 2)) {
        return open_remote(o, url, out); /* the client checks the scheme */
    }
    return sprig__err(SPRIG_EINVAL,
                      "URL scheme '%s' is not one Sprig opens "
                      "(file:PATH, mem:, ws://host:port, wss://host:port, "
                      "quic://host:port, sprig://host:port)",
                      scheme);
}
