/*
 * fuzz_http_upgrade.c -- libFuzzer harness for the sans-I/O WebSocket
 * handshake (src/transport/http_upgrade.c) and the frame guard
 * (src/transport/ws_frame.c).
 *
 * The first input byte picks a chunk size, so heads split at every place
 * get tried; the rest is fed as a request (server side), as a response
 * (client side), and as a frame stream to both guards.  Checks: nothing
 * crashes, consumption never exceeds the input, the verdict never changes
 * once given, answers build, and no memory is left allocated.
 */
#include "transport/http_upgrade.h"
#include "transport/ws_int.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
feed_all(sprig__http_upgrade *u, const uint8_t *p, size_t n, size_t chunk)
{
    size_t off = 0;
    int verdict = SPRIG__HTTP_MORE;
    while (off < n && verdict == SPRIG__HTTP_MORE) {
        size_t len = n - off < chunk ? n - off : chunk, used = 0;
        verdict = sprig__http_upgrade_feed(u, p + off, len, &used);
        if (used > len) {
            abort();
        }
        off += verdict == SPRIG__HTTP_MORE ? len : used;
    }
    if (verdict == SPRIG__HTTP_MORE) {
        size_t used = 0;
        verdict = sprig__http_upgrade_feed(u, NULL, 0, &used);
    }
    size_t used = 0;
    if (sprig__http_upgrade_feed(u, p, n, &used) != verdict || used != 0) {
        abort(); /* a verdict is final */
    }
}

static void
guard_all(bool server, const uint8_t *p, size_t n, size_t chunk)
{
    sprig__ws_guard g;
    sprig__ws_guard_init(&g, server, 1000);
    for (size_t off = 0; off < n; off += chunk) {
        size_t len = n - off < chunk ? n - off : chunk;
        size_t ok = sprig__ws_guard_scan(&g, p + off, len);
        if (ok > len || (ok < len && !g.code)) {
            abort();
        }
        if (g.code) {
            break;
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    size_t chunk = (size_t)data[0] % 64 + 1;
    data++;
    size--;
    long live = sprig__alloc_live();
    sprig__http_upgrade *u = malloc(sizeof *u);
    if (!u) {
        return 0;
    }
    sprig__http_upgrade_init(u, false, "sprig/1", NULL);
    feed_all(u, data, size, chunk);
    sprig_buf out = {0};
    if (sprig__http_answer(u, "ok", &out) != SPRIG_OK) {
        abort();
    }
    sprig_buf_clear(&out);
    sprig__http_upgrade_init(u, true, "sprig/1", "dGhlIHNhbXBsZSBub25jZQ==");
    feed_all(u, data, size, chunk);
    free(u);
    guard_all(true, data, size, chunk);
    guard_all(false, data, size, chunk);
    if (sprig__alloc_live() != live) {
        abort();
    }
    return 0;
}
