/*
 * envelope.h -- the frames of protocol sprig/1 (src/proto, sans-I/O).
 *
 * Every frame is one MessagePack array whose first element says its kind:
 *
 *   request   [0, id u32 (not 0), session nil|u64, api str, payload]
 *   response  [1, id u32, payload]
 *   error     [2, id u32, code int, message str, detail|nil]
 *   push      [3, api str, payload]
 *
 * `payload` is any MessagePack value; what it holds is set by the API
 * (docs/protocol.md).  A request id is chosen by the client and echoed by
 * the response or error that answers it; pushes (PubSub messages, custom
 * API pushes) carry no id.  Over WebSockets one binary message carries one
 * frame; over QUIC a frame is prefixed by its length (u32, big-endian).
 */
#ifndef SPRIG_PROTO_ENVELOPE_H
#define SPRIG_PROTO_ENVELOPE_H

#include "proto/mp.h"

#define SPRIG_PROTOCOL "sprig/1"

typedef enum sprig__frame_kind {
    SPRIG__FRAME_REQUEST = 0,
    SPRIG__FRAME_RESPONSE = 1,
    SPRIG__FRAME_ERROR = 2,
    SPRIG__FRAME_PUSH = 3
} sprig__frame_kind;

/** A decoded frame.  Every byte field borrows from the input frame. */
typedef struct sprig__frame {
    sprig__frame_kind kind;
    uint32_t id;
    bool has_session;
    uint64_t session;
    sprig_bytes api;     /* request, push */
    sprig_bytes payload; /* request, response, push: the raw value */
    int code;            /* error */
    sprig_bytes message; /* error */
    sprig_bytes detail;  /* error: raw value (nil when none) */
} sprig__frame;

/**
 * Decode a frame.  The whole input must be exactly one frame.  A request
 * frame's id must be 1 to 2^32-1 (id 0 is reserved for error frames that
 * answer no request in particular), and its session nil: sessions do not
 * exist yet, so a request naming one is refused.
 * Errors: SPRIG_EPROTO with a detail naming the fault (the answer a server
 * gives a client that sent it).  On failure f->id is 0, except for a
 * (nothing else: a well-formed request keeps its id).
 */
int sprig__frame_decode(sprig_bytes in, sprig__frame *f);

/* Encoders start a frame in `w`; the caller then writes the payload value
 * (exactly one) for requests, responses and pushes. */
void sprig__frame_request(sprig__mp_wr *w, uint32_t id, const uint64_t *session,
                          const char *api);
void sprig__frame_response(sprig__mp_wr *w, uint32_t id);
void sprig__frame_push(sprig__mp_wr *w, const char *api);
/** Write `s` as a str, each byte that does not begin a well-formed UTF-8
 *  sequence as U+FFFD (names quoted from a peer stay valid UTF-8). */
void sprig__mp_str_utf8(sprig__mp_wr *w, const char *s);
/** A whole error frame; `detail` is a raw MessagePack value or empty. */
void sprig__frame_error(sprig__mp_wr *w, uint32_t id, int code,
                        const char *message, sprig_bytes detail);

#endif
