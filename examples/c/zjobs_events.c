/* zjobs_events: a ZJP/1 event subscriber in C, written from docs/protocol.md (section 7).
 *
 *   zjobs_events ENDPOINT [PREFIX ...]
 *
 * Connects a SUB to the broker's events endpoint, subscribed to the topic
 * prefixes given ("job.", "log", "job.succeeded"...; none: every event), and
 * prints one line per event, in seq order: `SEQ TYPE ID`, where ID is the
 * event's job_id, else its worker, else "-". A message is one event
 * ([type, map]) or a batch ([type, "ZJB1", array of maps]); both are read.
 * A malformed message is dropped with a line on stderr. Subscribed to
 * everything, it also says on stderr when seqs were missed (PUB drops for a
 * slow subscriber; a full subscriber replays them with EVENTS, section 7.4).
 * SIGINT/SIGTERM: exit 0.
 */
#include <signal.h>

#include "zjp.h"

static volatile sig_atomic_t stopping = 0;
static void on_signal(int sig) { (void)sig; stopping = 1; }

typedef struct {
    int all;       /* subscribed to every topic: seqs must be contiguous */
    int64_t last;  /* the last seq printed, 0 before the first */
} follower;

/* 1 if `event` is a map of the topic's type with an int seq (set in *seq). */
static int valid_event(msgpack_object *event, zmq_msg_t *topic, int64_t *seq) {
    msgpack_object *type = zjp_get(event, "type");
    msgpack_object *number = zjp_get(event, "seq");
    if (type == NULL || type->type != MSGPACK_OBJECT_STR || number == NULL
        || number->type != MSGPACK_OBJECT_POSITIVE_INTEGER
        || type->via.str.size != zmq_msg_size(topic)
        || memcmp(type->via.str.ptr, zmq_msg_data(topic), type->via.str.size) != 0)
        return 0;
    *seq = (int64_t)number->via.u64;
    return 1;
}

static void print_event(follower *f, msgpack_object *event, int64_t seq) {
    char type[128], id[256];
    if (f->all && f->last && seq != f->last + 1)
        fprintf(stderr, "gap: events %lld to %lld were missed (EVENTS replays them)\n",
                (long long)f->last + 1, (long long)seq - 1);
    zjp_str(zjp_get(event, "type"), type, sizeof type);
    zjp_str(zjp_get(event, "job_id"), id, sizeof id);
    if (!id[0]) zjp_str(zjp_get(event, "worker"), id, sizeof id);
    printf("%lld %s %s\n", (long long)seq, type, id[0] ? id : "-");
    f->last = seq;
}

/* The events of one message, checked whole before any is printed; 0 if malformed. */
static int read_message(follower *f, zjp_message *m) {
    int batch = m->count == 3 && zjp_frame_is(m, 1, ZJP_BATCH);
    if (m->truncated || !(m->count == 2 || batch)) return 0;
    zmq_msg_t *body = &m->frames[m->count - 1];
    msgpack_unpacked unpacked;
    msgpack_unpacked_init(&unpacked);
    size_t off = 0;
    int ok = msgpack_unpack_next(&unpacked, zmq_msg_data(body), zmq_msg_size(body), &off)
        == MSGPACK_UNPACK_SUCCESS && off == zmq_msg_size(body);
    msgpack_object *events = &unpacked.data;
    uint32_t n = 1;
    if (ok && batch) {
        ok = events->type == MSGPACK_OBJECT_ARRAY && events->via.array.size > 0;
        n = ok ? events->via.array.size : 0;
        events = ok ? events->via.array.ptr : NULL;
    }
    int64_t first = 0, seq = 0;
    for (uint32_t i = 0; ok && i < n; i++) { /* one type, seqs that follow each other */
        ok = valid_event(&events[i], &m->frames[0], &seq) && (i == 0 || seq == first + i);
        if (i == 0) first = seq;
    }
    for (uint32_t i = 0; ok && i < n; i++) print_event(f, &events[i], first + i);
    msgpack_unpacked_destroy(&unpacked);
    return ok;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: zjobs_events ENDPOINT [PREFIX ...]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* a line per event, as it comes, even into a pipe */
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_SUB);
    int linger = 0, hwm = 0; /* hwm 0: no limit, so this reader drops nothing itself */
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    follower f = {argc == 2, 0};
    for (int i = 2; i < argc; i++) {
        zmq_setsockopt(sock, ZMQ_SUBSCRIBE, argv[i], strlen(argv[i]));
        f.all = f.all || argv[i][0] == '\0';
    }
    if (argc == 2) zmq_setsockopt(sock, ZMQ_SUBSCRIBE, "", 0);
    if (zmq_connect(sock, argv[1]) != 0) {
        fprintf(stderr, "error: cannot connect to %s: %s\n", argv[1], zmq_strerror(zmq_errno()));
        return 2;
    }
    while (!stopping) {
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 200) <= 0) continue; /* a signal, or nothing yet */
        zjp_message m;
        if (zjp_recv(sock, &m) < 0) continue;
        if (!read_message(&f, &m)) fprintf(stderr, "dropped a malformed events message\n");
        zjp_close(&m);
    }
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return 0;
}
