/* zjp.h: the few pieces of ZJP/1 (docs/protocol.md) the C examples share (static inline:
 * each example uses some of them).
 *
 * Messages are multipart ZeroMQ messages: a 4-byte header ("ZJC1" for clients,
 * "ZJW1" for workers), an ASCII command, then msgpack bodies. Header-only, so each
 * example builds from one command: cc x.c $(pkg-config --cflags --libs libzmq msgpack).
 */
#ifndef ZJP_H
#define ZJP_H

#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define ZJP_CLIENT "ZJC1"
#define ZJP_WORKER "ZJW1"
#define ZJP_BATCH "ZJB1" /* frame 1 of an events message carrying several events */
#define ZJP_MAX_FRAMES 16

/* A received message: up to ZJP_MAX_FRAMES frames. */
typedef struct {
    zmq_msg_t frames[ZJP_MAX_FRAMES];
    int count;
    int truncated; /* more frames came than we keep: the message is dropped */
} zjp_message;

static inline double zjp_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline int zjp_recv(void *sock, zjp_message *m) {
    int more = 1;
    m->count = 0;
    m->truncated = 0;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, sock, 0) < 0) {
            zmq_msg_close(&part);
            return -1;
        }
        more = zmq_msg_more(&part);
        if (m->count < ZJP_MAX_FRAMES)
            m->frames[m->count++] = part;
        else {
            m->truncated = 1;
            zmq_msg_close(&part);
        }
    }
    return 0;
}

static inline void zjp_close(zjp_message *m) {
    for (int i = 0; i < m->count; i++) zmq_msg_close(&m->frames[i]);
    m->count = 0;
}

/* Frame i of m equals the C string s. */
static inline int zjp_frame_is(zjp_message *m, int i, const char *s) {
    size_t n = strlen(s);
    return i < m->count && zmq_msg_size(&m->frames[i]) == n
        && memcmp(zmq_msg_data(&m->frames[i]), s, n) == 0;
}

/* Send header, command, then `n` bodies (each a buffer and its size). */
static inline int zjp_send(void *sock, const char *header, const char *command, int n,
                    const char **bodies, const size_t *sizes) {
    if (zmq_send(sock, header, 4, ZMQ_SNDMORE) < 0) return -1;
    if (zmq_send(sock, command, strlen(command), n ? ZMQ_SNDMORE : 0) < 0) return -1;
    for (int i = 0; i < n; i++)
        if (zmq_send(sock, bodies[i], sizes[i], i + 1 < n ? ZMQ_SNDMORE : 0) < 0) return -1;
    return 0;
}

static inline void zjp_pack_str(msgpack_packer *pk, const char *s) {
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* The value of `key` in a msgpack map, or NULL. */
static inline msgpack_object *zjp_get(msgpack_object *map, const char *key) {
    if (map->type != MSGPACK_OBJECT_MAP) return NULL;
    size_t n = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n
            && memcmp(k->via.str.ptr, key, n) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

/* An integer value (either sign), or `fallback`. */
static inline int64_t zjp_int(msgpack_object *o, int64_t fallback) {
    if (o == NULL) return fallback;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) return (int64_t)o->via.u64;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) return o->via.i64;
    return fallback;
}

/* A string value copied into buf (NUL-terminated), or "" when absent or not a string. */
static inline const char *zjp_str(msgpack_object *o, char *buf, size_t size) {
    buf[0] = '\0';
    if (o != NULL && o->type == MSGPACK_OBJECT_STR && o->via.str.size < size) {
        memcpy(buf, o->via.str.ptr, o->via.str.size);
        buf[o->via.str.size] = '\0';
    }
    return buf;
}

#endif
