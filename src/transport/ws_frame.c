/*
 * ws_frame.c -- the frame guard: RFC 6455 frame-header checks on the
 * incoming byte stream, ahead of wslay, without I/O.
 *
 * Design notes.  wslay enforces the same rules but closes with a bare code;
 * the guard finds the violation first and names it, so the peer and the
 * owner of the connection both get a code and a reason.  It reads only
 * headers and skips payloads, so it costs a few comparisons per frame.
 * States: reading a header (hdr_len bytes of hdr_need), skipping a payload
 * (payload_left), or stopped (code != 0).  sprig__ws_guard_scan() moves
 * between them; once stopped it lets nothing more through.
 */
#include "ws_int.h"

#include <stdio.h>

void
sprig__ws_guard_init(sprig__ws_guard *g, bool server, uint64_t max_message)
{
    memset(g, 0, sizeof *g);
    g->server = server;
    g->max_message = max_message;
}

static bool stop(sprig__ws_guard *g, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool
stop(sprig__ws_guard *g, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->reason, sizeof g->reason, fmt, ap);
    va_end(ap);
    g->code = code;
    return false;
}

/* The first two bytes: everything but the length's value.  False: stop. */
static bool
check_start(sprig__ws_guard *g)
{
    unsigned fin = g->hdr[0] >> 7, rsv = (g->hdr[0] >> 4) & 7;
    unsigned op = g->hdr[0] & 0xf, mask = g->hdr[1] >> 7;
    unsigned len7 = g->hdr[1] & 0x7f;
    if (rsv) {
        return stop(g, SPRIG_CLOSE_PROTOCOL, "reserved bits set in a frame");
    }
    if (op > 2 && (op < 8 || op > 10)) {
        return stop(g, SPRIG_CLOSE_PROTOCOL, "unknown opcode 0x%x", op);
    }
    if ((op & 8) && (!fin || len7 > 125)) {
        return stop(g, SPRIG_CLOSE_PROTOCOL,
                    "control frame fragmented or over 125 bytes");
    }
    if (g->server != (mask != 0)) {
        return stop(g, SPRIG_CLOSE_PROTOCOL,
                    g->server ? "unmasked frame from a client"
                              : "masked frame from a server");
    }
    if (op == 1) {
        return stop(g, SPRIG_CLOSE_UNSUPPORTED,
                    "text message refused: Sprig speaks binary only");
    }
    if (op == 0 && !g->in_message) {
        return stop(g, SPRIG_CLOSE_PROTOCOL,
                    "continuation frame without a message");
    }
    if (op == 2 && g->in_message) {
        return stop(g, SPRIG_CLOSE_PROTOCOL,
                    "new message inside a fragmented one");
    }
    g->hdr_need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + mask * 4;
    return true;
}

/* The whole header: the length and the message limit.  False: stop. */
static bool
check_length(sprig__ws_guard *g)
{
    unsigned len7 = g->hdr[1] & 0x7f, op = g->hdr[0] & 0xf;
    uint64_t len = len7;
    if (len7 == 126) {
        len = ((uint64_t)g->hdr[2] << 8) | g->hdr[3];
        if (len < 126) {
            return stop(g, SPRIG_CLOSE_PROTOCOL, "frame length not minimal");
        }
    } else if (len7 == 127) {
        len = sprig__get_u64be(g->hdr + 2);
        if (len < 65536 || (len >> 63)) {
            return stop(g, SPRIG_CLOSE_PROTOCOL,
                        "frame length not minimal or over 2^63");
        }
    }
    if (!(op & 8)) {
        if (len > g->max_message - g->msg_len) {
            return stop(g, SPRIG_CLOSE_TOO_BIG,
                        "message over the limit of %llu bytes",
                        (unsigned long long)g->max_message);
        }
        bool fin = g->hdr[0] >> 7;
        g->msg_len = fin ? 0 : g->msg_len + len;
        g->in_message = !fin;
    }
    g->payload_left = len;
    return true;
}

size_t
sprig__ws_guard_scan(sprig__ws_guard *g, const uint8_t *data, size_t len)
{
    size_t pos = 0, hdr_start = 0;
    bool here = false; /* the current header began in this chunk */
    if (g->code) {
        return 0;
    }
    while (pos < len) {
        if (g->payload_left) {
            uint64_t skip = len - pos;
            if (skip > g->payload_left) {
                skip = g->payload_left;
            }
            pos += (size_t)skip;
            g->payload_left -= skip;
            continue;
        }
        if (g->hdr_len == 0) {
            hdr_start = pos;
            here = true;
            g->hdr_need = 2;
        }
        g->hdr[g->hdr_len++] = data[pos++];
        bool ok = true;
        if (g->hdr_len == 2) {
            ok = check_start(g);
        }
        if (ok && g->hdr_len >= 2 && g->hdr_len == g->hdr_need) {
            ok = check_length(g);
            g->hdr_len = 0;
        }
        if (!ok) {
            /* let through what preceded the bad header in this chunk */
            return here ? hdr_start : 0;
        }
    }
    return len;
}
