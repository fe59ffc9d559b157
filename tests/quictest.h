/*
 * quictest.h -- the scaffolding the QUIC transport tests share
 * (test_quic_close.c, test_quic_input.c, test_quic_latency.c): a server
 * with only a QUIC listener, on a certificate made in the test's
 * directory, holding database "db" of schema "q" (collection "docs", u64
 * ids); the listener's counters; a client pinned to the certificate.
 * Header-only; tests include it after testutil.h.  All on the test's
 * thread; failures fail the test (SPRIG_OK_).
 */
#ifndef SPRIG_TESTS_QUICTEST_H
#define SPRIG_TESTS_QUICTEST_H

#include "sprig/client.h"
#include "sprig/server.h"
#include "testutil.h"

#include "server/server_int.h"  /* the server's QUIC listener, for counters */
#include "transport/quic_int.h" /* sprig__quic_listener_stats */

static const sprig_collection_def quictest_cols[] = {{"docs", SPRIG_ID_U64, 0}};
static const sprig_schema_def quictest_schema = {"q", quictest_cols, 1};

/* Options of a server that listens on QUIC only (127.0.0.1, any port)
 * with `cert`, open access (the transport is tested, not permissions),
 * two workers; the caller may change more before quictest_server. */
static inline void
quictest_options(sprig_server_options *o, const sprig_cert_info *cert)
{
    sprig_server_options_init(o);
    o->open_access = true;
    o->ws_listen = NULL;
    o->quic_listen = "127.0.0.1:0";
    o->quic_cert_file = cert->cert_path;
    o->quic_key_file = cert->key_path;
    o->workers = 2;
}

/* A new server (not started) on a storage at `dir` (durability none)
 * holding database "db" of schema "q".  The caller frees it. */
static inline sprig_server *
quictest_server(const char *dir, const sprig_server_options *o)
{
    sprig_storage_options so;
    sprig_server *srv;
    sprig_storage_options_init(&so);
    so.path = dir;
    so.durability = SPRIG_DURABILITY_NONE;
    SPRIG_OK_(sprig_server_new(&so, o, &srv));
    sprig_storage *st = sprig_server_storage(srv);
    SPRIG_OK_(sprig_storage_register_schema(st, &quictest_schema));
    SPRIG_OK_(sprig_storage_create_database(st, "db", "q", true));
    return srv;
}

/* The QUIC listener's counters (under the server's lock). */
static inline void
quictest_stats(sprig_server *srv, sprig__quic_stats *st)
{
    pthread_mutex_lock(&srv->lock);
    sprig__quic_listener_stats(srv->quic, st);
    pthread_mutex_unlock(&srv->lock);
}

/* A client of quic://127.0.0.1:PORT<query> pinned to `cert` (20 s to
 * connect).  The caller closes it. */
static inline sprig_client *
quictest_client(int port, const char *query, const sprig_cert_info *cert)
{
    char url[160];
    sprig_client_options co;
    sprig_client *c;
    snprintf(url, sizeof url, "quic://127.0.0.1:%d%s", port, query);
    sprig_client_options_init(&co);
    co.pinned_cert_sha256 = cert->sha256;
    co.connect_timeout_ms = 20000;
    SPRIG_OK_(sprig_client_connect(url, &co, &c));
    return c;
}

/* Make (or reuse) the test's certificate in `root`; 1 after saying why
 * on stderr. */
static inline int
quictest_cert(const char *root, sprig_cert_info *cert)
{
    if (sprig_cert_ensure(root, cert) != SPRIG_OK) {
        fprintf(stderr, "certificate: %s\n", sprig_errmsg());
        return 1;
    }
    return 0;
}

#endif
