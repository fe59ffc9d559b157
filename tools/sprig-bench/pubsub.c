/*
 * pubsub.c -- `sprig-bench --pubsub N`: one publisher and `clients`
 * subscribers, each on its own connection, against a Sprig server
 * (pubsub.publish, pubsub.message pushes, over WebSockets) or, with
 * --redis HOST:PORT, against Redis PUBLISH / SUBSCRIBE (RESP over raw TCP,
 * resp.c).  The loop, the payloads, the flow control and the checks are
 * the same for both, so only the server and its protocol differ.
 *
 * Every message is `datasize` bytes: the publisher's monotonic clock at the
 * send (8 bytes, big-endian), its sequence number (8 bytes), then filler.
 * Publisher and subscribers share one thread and one libuv loop, so the
 * clock is the same on both ends and publish -> receive latency is exact.
 * The publisher keeps at most `pipeline` publishes unanswered and at most
 * `window` messages not yet received by every subscriber (without a
 * window a fast publisher only fills the server's queues: what is measured
 * is then a queue bound, not a rate).  Each subscriber checks that it
 * receives every message exactly once, of the right size (a message lost
 * never lets the window move: the run times out); messages that overtake
 * an earlier one are counted (`out_of_order`), not failed.  Each Redis
 * PUBLISH must count every subscriber as a receiver.  The first error
 * ends the run.  The rate is messages delivered (N x subscribers) per
 * second, from the first publish to the last delivery.
 */
#include "bench.h"

#include "proto/api.h"
#include "proto/envelope.h"
#include "transport/transport.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PS_TOPIC "bench"
#define PS_HDR 16         /* clock + sequence at the payload's start */
#define PH_ID 0xffffffffu /* placeholder request id (uint32 0xce) */
#define ID_NEW 1u         /* pubsub.subscriber_new */
#define ID_SUB 2u         /* pubsub.subscribe */
#define ID_PUB0 16u       /* publishes: 16 + sequence mod 2^31 */

ps_state ps;

/* Count an error, keep the first sentence, and end the run. */
void
ps_fail(const char *fmt, ...)
{
    ps.res.errors++;
    if (!ps.res.first_error[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ps.res.first_error, sizeof ps.res.first_error, fmt, ap);
        va_end(ap);
    }
    ps.failed = true;
    uv_stop(&ps.loop);
}

static void
put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t
get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

/* ---- the publisher ------------------------------------------------------- */

/* The fewest messages any subscriber has received. */
static uint64_t
min_received(void)
{
    uint64_t m = UINT64_MAX;
    for (unsigned i = 1; i < ps.n; i++) {
        m = ps.c[i].received < m ? ps.c[i].received : m;
    }
    return m;
}

static int
send_to(ps_conn *c, const uint8_t *data, size_t len)
{
    if (ps.redis_port) {
        return resp_send(c, data, len);
    }
    if (sprig__conn_send(c->ws, data, len) != 0) {
        ps_fail("send: %s", sprig_errmsg());
        return -1;
    }
    return 0;
}

void
ps_publish_more(void)
{
    const bench_cfg *cfg = ps.cfg;
    uint8_t *p = ps.tpl.data;
    while (!ps.failed && ps.started && ps.published < ps.total &&
           ps.inflight < cfg->pipeline &&
           ps.published - min_received() < ps.window) {
        uint64_t seq = ps.published++;
        if (!ps.redis_port) {
            put_be(p + ps.id_off, ID_PUB0 + (seq & 0x7fffffffu), 4);
        }
        put_be(p + ps.pay_off + 8, seq, 8);
        put_be(p + ps.pay_off, bench_now_ns(), 8);
        ps.inflight++;
        if (send_to(&ps.c[0], p, ps.tpl.len) != 0) {
            return;
        }
    }
}

/* A publish was answered; `receivers`: Redis's count, or -1 (Sprig). */
void
ps_publish_answered(int64_t receivers)
{
    if (ps.inflight == 0) {
        ps_fail("a publish answer nobody asked for");
        return;
    }
    if (receivers >= 0 && receivers != (int64_t)ps.n - 1) {
        ps_fail("PUBLISH reached %lld subscribers, not %u",
                (long long)receivers, ps.n - 1);
        return;
    }
    ps.inflight--;
    ps_publish_more();
}

/* ---- the subscribers ----------------------------------------------------- */

void
ps_ready(ps_conn *c)
{
    if (c->ready) {
        ps_fail("a second subscription answer");
        return;
    }
    c->ready = true;
    if (++ps.n_ready == ps.n) {
        ps.started = true;
        ps.t_start = bench_now_ns();
        ps_publish_more();
    }
}

/* Record message `seq` at subscriber `c`; -1 when it arrived before. */
static int
mark_seen(ps_conn *c, uint64_t seq)
{
    uint64_t *w = &c->seen[(seq % PS_RING) / 64], bit = 1ull << (seq % 64);
    if (seq < c->received || (*w & bit)) {
        return -1;
    }
    *w |= bit;
    if (seq != c->received) {
        ps.res.out_of_order++;
        return 0;
    }
    for (;;) { /* advance over the run of messages that arrived */
        w = &c->seen[(c->received % PS_RING) / 64];
        bit = 1ull << (c->received % 64);
        if (!(*w & bit)) {
            return 0;
        }
        *w &= ~bit;
        c->received++;
    }
}

void
ps_delivered(ps_conn *c, const uint8_t *data, size_t len)
{
    uint64_t now = bench_now_ns();
    if (len != ps.cfg->datasize) {
        ps_fail("a message of %zu bytes, not %u", len, ps.cfg->datasize);
        return;
    }
    uint64_t t0 = get_be(data, 8), seq = get_be(data + 8, 8);
    if (seq >= ps.published || mark_seen(c, seq) != 0) {
        ps_fail("subscriber %u got message %llu twice, or one never "
                "published",
                (unsigned)(c - ps.c), (unsigned long long)seq);
        return;
    }
    hist_add(&ps.res.lat, now - t0);
    ps.res.done++;
    if (ps.res.done == ps.total * (ps.n - 1)) {
        ps.t_end = now;
        uv_stop(&ps.loop);
        return;
    }
    ps_publish_more();
}

/* ---- Sprig: WebSockets, protocol sprig/1 ----------------------------------
 */

/* Encode a request of `api` into `b`; 0 or -1. */
static int
encode(sprig_buf *b, const sprig__api *api, const void *req, uint32_t id)
{
    sprig__mp_wr w;
    b->len = 0;
    sprig__mp_wr_init(&w, b);
    sprig__frame_request(&w, id, NULL, api->name);
    return sprig__api_encode(&w, api->req, api->n_req, req);
}

static void
sub_subscribe(ps_conn *c, uint64_t sub_id)
{
    sprig_buf b = {0};
    sprig__topic_req r = {sub_id, sprig_str(PS_TOPIC)};
    c->sub_id = sub_id;
    if (encode(&b, &sprig__api_subscribe, &r, ID_SUB) != 0) {
        ps_fail("cannot encode pubsub.subscribe: %s", sprig_errmsg());
    } else {
        send_to(c, b.data, b.len);
    }
    sprig_buf_clear(&b);
}

/* A response to a subscriber's setup request. */
static void
sprig_setup_answer(ps_conn *c, const sprig__frame *f)
{
    sprig__mp_rd r;
    uint64_t id;
    if (f->id == ID_NEW) {
        if (frame_field(f->payload.data, f->payload.len, "subscriber", &r) ||
            sprig__mp_read_u64(&r, &id) != 0) {
            ps_fail("pubsub.subscriber_new: no subscriber in the answer");
            return;
        }
        sub_subscribe(c, id);
    } else if (f->id == ID_SUB) {
        ps_ready(c);
    } else {
        ps_fail("an answer with unknown id %u", f->id);
    }
}

static void
sprig_push(ps_conn *c, const sprig__frame *f)
{
    sprig__mp_rd r;
    uint64_t id;
    sprig_bytes payload;
    if (f->api.len != strlen(SPRIG__PUSH_MESSAGE) ||
        memcmp(f->api.data, SPRIG__PUSH_MESSAGE, f->api.len) != 0) {
        ps_fail("a push of another kind: %.*s", (int)f->api.len,
                (const char *)f->api.data);
        return;
    }
    if (frame_field(f->payload.data, f->payload.len, "subscriber", &r) ||
        sprig__mp_read_u64(&r, &id) != 0 || id != c->sub_id ||
        frame_field(f->payload.data, f->payload.len, "payload", &r) ||
        sprig__mp_read_bin(&r, &payload) != 0) {
        ps_fail("a malformed pubsub.message push, or another subscriber's");
        return;
    }
    ps_delivered(c, payload.data, payload.len);
}

static void
sprig_on_message(sprig__conn *conn, const uint8_t *data, size_t len,
                 void *udata)
{
    ps_conn *c = udata;
    sprig__frame f;
    if (ps.failed) {
        return;
    }
    if (sprig__frame_decode((sprig_bytes){data, len}, &f) != 0) {
        ps_fail("undecodable frame: %s", sprig_errmsg());
    } else if (f.kind == SPRIG__FRAME_ERROR) {
        ps_fail("error frame (id %u): %d: %.*s", f.id, f.code,
                (int)(f.message.len > 150 ? 150 : f.message.len),
                (const char *)f.message.data);
    } else if (f.kind == SPRIG__FRAME_PUSH && !c->pub) {
        sprig_push(c, &f);
    } else if (f.kind != SPRIG__FRAME_RESPONSE) {
        ps_fail("a frame of kind %d", (int)f.kind);
    } else if (c->pub) {
        ps_publish_answered(-1);
    } else {
        sprig_setup_answer(c, &f);
    }
}

static void
sprig_on_open(sprig__conn *conn, void *udata)
{
    ps_conn *c = udata;
    if (c->pub) {
        ps_ready(c);
        return;
    }
    sprig_buf b = {0};
    sprig__db_req r = {(char *)ps.cfg->db};
    if (encode(&b, &sprig__api_subscriber_new, &r, ID_NEW) != 0) {
        ps_fail("cannot encode pubsub.subscriber_new: %s", sprig_errmsg());
    } else {
        send_to(c, b.data, b.len);
    }
    sprig_buf_clear(&b);
}

static void
sprig_on_close(sprig__conn *conn, int code, const char *reason, void *udata)
{
    ps_conn *c = udata;
    c->ws = NULL;
    ps_closed(c, code, reason);
}

static const sprig__conn_cbs sprig_cbs = {sprig_on_open, sprig_on_message,
                                          sprig_on_close, NULL};

/* The publish request template: the frame, and where id and payload go. */
static int
sprig_template(uint8_t *payload)
{
    sprig_bytes topic = sprig_str(PS_TOPIC);
    sprig__publish_req r = {
        (char *)ps.cfg->db, {&topic, 1}, {payload, ps.cfg->datasize}};
    if (encode(&ps.tpl, &sprig__api_publish, &r, PH_ID) != 0) {
        fprintf(stderr, "sprig-bench: cannot encode pubsub.publish: %s\n",
                sprig_errmsg());
        return -1;
    }
    const uint8_t *p = ps.tpl.data;
    ps.id_off = 3; /* [0x95, 0x00, 0xce, id x4, ...] */
    ps.pay_off = frame_find_bin(&ps.tpl, r.payload);
    if (ps.tpl.len < 7 || p[0] != 0x95 || p[2] != 0xce ||
        ps.pay_off == SIZE_MAX) {
        fprintf(stderr, "sprig-bench: unexpected pubsub.publish layout\n");
        return -1;
    }
    return 0;
}

static int
sprig_connect(ps_conn *c)
{
    sprig__tran_opts o;
    sprig__tran_opts_init(&o);
    o.ping_interval_ms = 0;
    o.idle_timeout_ms = 0;
    o.connect_timeout_ms = ps.cfg->timeout_s * 1000;
    if (sprig__tran_connect(&ps.loop, ps.cfg->url, &o, &sprig_cbs, c, &c->ws)) {
        fprintf(stderr, "sprig-bench: %s: %s\n", ps.cfg->url, sprig_errmsg());
        c->dead = true;
        return -1;
    }
    return 0;
}

/* ---- the run ------------------------------------------------------------- */

void
ps_closed(ps_conn *c, int code, const char *reason)
{
    c->dead = true;
    ps.n_closed++;
    if (ps.closing) {
        if (ps.n_closed == ps.n) {
            uv_stop(&ps.loop);
        }
        return;
    }
    ps_fail("%s connection %s: %s (%d)", c->pub ? "publisher" : "subscriber",
            c->ready || c->pub ? "closed" : "could not subscribe", reason,
            code);
}

static void
on_deadline(uv_timer_t *t)
{
    (void)t;
    ps_fail("timed out after %u s (--timeout): %llu of %llu messages "
            "delivered",
            ps.cfg->timeout_s, (unsigned long long)ps.res.done,
            (unsigned long long)(ps.total * (ps.n - 1)));
}

/* Build the publish template; 0 or -1. */
static int
make_template(void)
{
    uint8_t *payload = malloc(ps.cfg->datasize);
    int rc = payload ? 0 : -1;
    if (payload) {
        memset(payload, 'x', ps.cfg->datasize);
        memset(payload, 0xa5, PS_HDR); /* found by its bytes: unique */
        rc = ps.redis_port ? resp_template(&ps.tpl, &ps.pay_off, payload,
                                           ps.cfg->datasize)
                           : sprig_template(payload);
    }
    free(payload);
    return rc;
}

static void
close_all(void)
{
    ps.closing = true;
    unsigned open = 0;
    for (unsigned i = 0; i < ps.n; i++) {
        ps_conn *c = &ps.c[i];
        if (c->dead) {
            continue;
        }
        open++;
        if (ps.redis_port) {
            resp_close(c);
        } else {
            sprig__conn_close(c->ws, SPRIG_WS_NORMAL, "benchmark over");
        }
    }
    if (open) {
        uv_run(&ps.loop, UV_RUN_DEFAULT);
    }
    uv_close((uv_handle_t *)&ps.timer, NULL);
    if (ps.redis_port) {
        uv_close((uv_handle_t *)&ps.flush, NULL);
    }
    uv_run(&ps.loop, UV_RUN_DEFAULT);
    uv_loop_close(&ps.loop);
}

/* Connect everything, run to the end; 0, or -1 (set up failed). */
static int
ps_start(void)
{
    if (uv_loop_init(&ps.loop) != 0) {
        return -1;
    }
    uv_timer_init(&ps.loop, &ps.timer);
    if (ps.redis_port) {
        uv_prepare_init(&ps.loop, &ps.flush);
        uv_prepare_start(&ps.flush, resp_flush_all);
    }
    int rc = 0;
    for (unsigned i = 0; i < ps.n; i++) {
        ps_conn *c = &ps.c[i];
        c->pub = i == 0;
        if (rc == 0) {
            rc = ps.redis_port
                     ? resp_connect(c, &ps.loop, ps.redis_host, ps.redis_port)
                     : sprig_connect(c);
        }
        if (rc != 0) { /* this one and the rest: never opened */
            c->dead = true;
            ps.n_closed++;
        }
    }
    return rc;
}

int
pubsub_run(const bench_cfg *cfg, const char *redis_host, int redis_port,
           uint64_t n, unsigned window, bench_result *out)
{
    memset(&ps, 0, sizeof ps);
    memset(out, 0, sizeof *out);
    hist_init(&ps.res.lat);
    ps.cfg = cfg;
    ps.redis_host = redis_host;
    ps.redis_port = redis_port;
    ps.total = n;
    ps.window = window;
    ps.n = cfg->clients + 1;
    ps.c = calloc(ps.n, sizeof *ps.c);
    if (!ps.c || cfg->datasize < PS_HDR || make_template() != 0) {
        fprintf(stderr,
                "sprig-bench: --pubsub needs -d of at least %d "
                "bytes (or memory)\n",
                PS_HDR);
        free(ps.c);
        sprig_buf_clear(&ps.tpl);
        return -1;
    }
    if (ps_start() == 0) {
        uv_timer_start(&ps.timer, on_deadline, cfg->timeout_s * 1000ull, 0);
        uv_run(&ps.loop, UV_RUN_DEFAULT);
        uv_timer_stop(&ps.timer);
    } else {
        ps.failed = true;
    }
    bool failed = ps.failed;
    close_all();
    *out = ps.res;
    out->seconds =
        ps.t_end > ps.t_start ? (double)(ps.t_end - ps.t_start) / 1e9 : 0;
    for (unsigned i = 0; i < ps.n; i++) {
        sprig_buf_clear(&ps.c[i].in);
        sprig_buf_clear(&ps.c[i].out);
    }
    free(ps.c);
    sprig_buf_clear(&ps.tpl);
    return failed ? -1 : 0;
}
