/* zjobs_worker: a ZJP/1 worker in C, written from docs/protocol.md (section 6).
 *
 *   zjobs_worker ENDPOINT NAME [QUEUE]
 *
 * Connects a DEALER to the broker's backend, registers with READY for QUEUE
 * (default "default") and the tasks below, runs one job at a time (credit 1),
 * heartbeats whenever it has sent nothing for an interval, and reconnects
 * (Paranoid Pirate) when the broker has been silent for interval x liveness.
 * ZJOBS_HEARTBEAT_INTERVAL and ZJOBS_HEARTBEAT_LIVENESS set those two, as for
 * every zjobs process. SIGINT/SIGTERM: DISCONNECT, then exit 0.
 *
 * Tasks: c_add (the sum of its integer arguments), c_fail (always fails with
 * error type CError). Any other task name is answered UnknownTask.
 */
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "zjp.h"

static volatile sig_atomic_t stopping = 0;
static void on_signal(int sig) { (void)sig; stopping = 1; }

typedef struct {
    void *ctx, *sock;
    const char *endpoint, *name, *queue;
    double interval_s, last_heard, last_sent;
    int liveness;
} worker;

static void send_packed(worker *w, const char *command, msgpack_sbuffer *buf) {
    const char *bodies[1] = {buf ? buf->data : NULL};
    size_t sizes[1] = {buf ? buf->size : 0};
    if (zjp_send(w->sock, ZJP_WORKER, command, buf ? 1 : 0, bodies, sizes) == 0)
        w->last_sent = zjp_now();
}

static void send_ready(worker *w) {
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 7);
    zjp_pack_str(&pk, "name"); zjp_pack_str(&pk, w->name);
    zjp_pack_str(&pk, "queues"); msgpack_pack_array(&pk, 1); zjp_pack_str(&pk, w->queue);
    zjp_pack_str(&pk, "capacity"); msgpack_pack_int(&pk, 1);
    zjp_pack_str(&pk, "tasks"); msgpack_pack_array(&pk, 2);
    zjp_pack_str(&pk, "c_add"); zjp_pack_str(&pk, "c_fail");
    zjp_pack_str(&pk, "pid"); msgpack_pack_int(&pk, getpid());
    zjp_pack_str(&pk, "version"); zjp_pack_str(&pk, "c-example/1");
    zjp_pack_str(&pk, "heartbeat_interval_s"); msgpack_pack_double(&pk, w->interval_s);
    send_packed(w, "READY", &buf);
    msgpack_sbuffer_destroy(&buf);
}

static void connect_to_broker(worker *w) {
    int linger = 0;
    w->sock = zmq_socket(w->ctx, ZMQ_DEALER);
    zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(w->sock, w->endpoint);
    w->last_heard = zjp_now(); /* the broker's silence is counted from the connect */
    send_ready(w);
    fprintf(stderr, "zjobs_worker %s: READY sent to %s\n", w->name, w->endpoint);
}

/* Pack the RESULT body of one job: ok with an integer, or an error. */
static void pack_result(msgpack_packer *pk, const char *job_id, int64_t attempt, int ok,
                        int64_t value, const char *error_type, const char *message) {
    msgpack_pack_map(pk, 4);
    zjp_pack_str(pk, "job_id"); zjp_pack_str(pk, job_id);
    zjp_pack_str(pk, "attempt"); msgpack_pack_int64(pk, attempt);
    zjp_pack_str(pk, "ok"); ok ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    if (ok) {
        zjp_pack_str(pk, "result"); msgpack_pack_int64(pk, value);
        return;
    }
    zjp_pack_str(pk, "error"); msgpack_pack_map(pk, 3);
    zjp_pack_str(pk, "type"); zjp_pack_str(pk, error_type);
    zjp_pack_str(pk, "message"); zjp_pack_str(pk, message);
    zjp_pack_str(pk, "traceback"); msgpack_pack_nil(pk);
}

/* Sum the integer arguments of the payload (a packed map {args, kwargs}); -1 if any is not. */
static int sum_args(msgpack_object *payload, int64_t *sum) {
    msgpack_unpacked inner;
    size_t off = 0;
    int ok = 0;
    *sum = 0;
    if (payload == NULL || payload->type != MSGPACK_OBJECT_BIN) return -1;
    msgpack_unpacked_init(&inner);
    if (msgpack_unpack_next(&inner, payload->via.bin.ptr, payload->via.bin.size, &off)
            == MSGPACK_UNPACK_SUCCESS) {
        msgpack_object *args = zjp_get(&inner.data, "args");
        ok = args != NULL && args->type == MSGPACK_OBJECT_ARRAY;
        for (uint32_t i = 0; ok && i < args->via.array.size; i++) {
            msgpack_object *a = &args->via.array.ptr[i];
            ok = a->type == MSGPACK_OBJECT_POSITIVE_INTEGER
                || a->type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
            *sum += zjp_int(a, 0);
        }
    }
    msgpack_unpacked_destroy(&inner);
    return ok ? 0 : -1;
}

/* Run one JOB body and send its RESULT. */
static void run_job(worker *w, const char *data, size_t size) {
    msgpack_unpacked job;
    size_t off = 0;
    char job_id[256], task[512];
    msgpack_unpacked_init(&job);
    if (msgpack_unpack_next(&job, data, size, &off) != MSGPACK_UNPACK_SUCCESS
            || job.data.type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy(&job);
        return; /* not a map: nothing to answer */
    }
    zjp_str(zjp_get(&job.data, "id"), job_id, sizeof job_id);
    zjp_str(zjp_get(&job.data, "task"), task, sizeof task);
    int64_t attempt = zjp_int(zjp_get(&job.data, "attempt"), 1);
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    int64_t sum;
    if (strcmp(task, "c_add") == 0 && sum_args(zjp_get(&job.data, "payload"), &sum) == 0)
        pack_result(&pk, job_id, attempt, 1, sum, NULL, NULL);
    else if (strcmp(task, "c_add") == 0)
        pack_result(&pk, job_id, attempt, 0, 0, "TypeError", "c_add takes integers");
    else if (strcmp(task, "c_fail") == 0)
        pack_result(&pk, job_id, attempt, 0, 0, "CError", "c_fail always fails");
    else
        pack_result(&pk, job_id, attempt, 0, 0, "UnknownTask", "no such task in C");
    send_packed(w, "RESULT", &buf);
    msgpack_sbuffer_destroy(&buf);
    msgpack_unpacked_destroy(&job);
}

static void handle(worker *w, zjp_message *m) {
    if (m->truncated || m->count < 2 || !zjp_frame_is(m, 0, ZJP_WORKER)) return; /* drop */
    if (zjp_frame_is(m, 1, "JOB")) {
        for (int i = 2; i < m->count; i++) /* several bodies: several jobs */
            run_job(w, zmq_msg_data(&m->frames[i]), zmq_msg_size(&m->frames[i]));
    } else if (zjp_frame_is(m, 1, "DISCONNECT")) {
        send_ready(w); /* the broker does not know us (it restarted): register again */
    } /* HEARTBEAT: a sign of life, already counted; CANCEL: jobs end at once here */
}

static double env_number(const char *name, double fallback) {
    const char *v = getenv(name);
    return v && *v ? atof(v) : fallback;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: zjobs_worker ENDPOINT NAME [QUEUE]\n");
        return 2;
    }
    worker w = {.endpoint = argv[1], .name = argv[2], .queue = argc > 3 ? argv[3] : "default"};
    w.interval_s = env_number("ZJOBS_HEARTBEAT_INTERVAL", 1.0);
    w.liveness = (int)env_number("ZJOBS_HEARTBEAT_LIVENESS", 3);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    w.ctx = zmq_ctx_new();
    connect_to_broker(&w);
    while (!stopping) {
        zmq_pollitem_t item = {w.sock, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, (long)(w.interval_s * 500)); /* half an interval */
        if (rc < 0 && errno != EINTR) break;
        if (rc > 0 && (item.revents & ZMQ_POLLIN)) {
            zjp_message m;
            if (zjp_recv(w.sock, &m) == 0) {
                w.last_heard = zjp_now(); /* any message is a sign of life */
                handle(&w, &m);
            }
            zjp_close(&m);
        }
        double now = zjp_now();
        if (now - w.last_sent >= w.interval_s) send_packed(&w, "HEARTBEAT", NULL);
        if (now - w.last_heard > w.interval_s * w.liveness) {
            fprintf(stderr, "zjobs_worker %s: broker silent, reconnecting\n", w.name);
            zmq_close(w.sock);
            usleep((useconds_t)(w.interval_s * 1e6)); /* back off one interval */
            connect_to_broker(&w);
        }
    }
    send_packed(&w, "DISCONNECT", NULL);
    int linger = 1000; /* let the DISCONNECT go out */
    zmq_setsockopt(w.sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(w.sock);
    zmq_ctx_term(w.ctx);
    fprintf(stderr, "zjobs_worker %s: stopped\n", w.name);
    return 0;
}
