/* zjobs_client: a ZJP/1 client in C, written from docs/protocol.md (section 4).
 *
 *   zjobs_client ENDPOINT QUEUE TASK [INT ...]
 *
 * Submits one job (TASK with the integer arguments, in QUEUE) to the broker's
 * frontend, waits for it to end, and prints `succeeded RESULT` (exit 0) or
 * `failed TYPE: MESSAGE` / `cancelled ...` (exit 1). A broker that does not
 * answer, or an ERR reply, is one line on stderr and exit 2.
 */
#include "zjp.h"

#define REPLY_WAIT_MS 40000 /* WAIT asks for 30 s: the reply comes within that, plus margin */

static uint64_t next_request = 0;

/* Send COMMAND with a packed body; the request id is an 8-byte big-endian counter. */
static void request(void *sock, const char *command, msgpack_sbuffer *body, char id[8]) {
    uint64_t n = ++next_request;
    for (int i = 7; i >= 0; i--, n >>= 8) id[i] = (char)(n & 0xff);
    const char *frames[2] = {id, body->data};
    size_t sizes[2] = {8, body->size};
    zjp_send(sock, ZJP_CLIENT, command, 2, frames, sizes); /* request id, then the body */
}

/* Receive the reply to request `id` into `out`; 0 on OK, -1 on ERR or silence (reported). */
static int reply(void *sock, const char id[8], msgpack_unpacked *out) {
    double deadline = zjp_now() + REPLY_WAIT_MS / 1000.0;
    while (zjp_now() < deadline) {
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, (long)((deadline - zjp_now()) * 1000)) <= 0) break;
        zjp_message m;
        if (zjp_recv(sock, &m) < 0) break;
        int mine = m.count == 4 && zjp_frame_is(&m, 0, ZJP_CLIENT)
            && zmq_msg_size(&m.frames[2]) == 8 && memcmp(zmq_msg_data(&m.frames[2]), id, 8) == 0;
        if (!mine) { /* a reply to a request given up on: dropped */
            zjp_close(&m);
            continue;
        }
        size_t off = 0;
        int ok = zjp_frame_is(&m, 1, "OK");
        int unpacked = msgpack_unpack_next(out, zmq_msg_data(&m.frames[3]),
                                           zmq_msg_size(&m.frames[3]), &off)
            == MSGPACK_UNPACK_SUCCESS;
        zjp_close(&m);
        if (ok && unpacked) return 0;
        char code[64], message[512];
        zjp_str(zjp_get(&out->data, "code"), code, sizeof code);
        zjp_str(zjp_get(&out->data, "message"), message, sizeof message);
        fprintf(stderr, "error: the broker refused the request: %s: %s\n", code, message);
        return -1;
    }
    fprintf(stderr, "error: the broker did not answer; is it running?\n");
    return -1;
}

static void print_value(msgpack_object *o) {
    char text[4096];
    if (o == NULL || o->type == MSGPACK_OBJECT_NIL) printf("null");
    else if (o->type == MSGPACK_OBJECT_STR) printf("%s", zjp_str(o, text, sizeof text));
    else if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
        printf("%g", o->via.f64);
    else if (o->type == MSGPACK_OBJECT_BOOLEAN) printf(o->via.boolean ? "true" : "false");
    else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER || o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        printf("%lld", (long long)zjp_int(o, 0));
    else msgpack_object_print(stdout, *o);
}

static int submit(void *sock, int argc, char **argv, char *job_id, size_t size) {
    msgpack_sbuffer buf;
    msgpack_packer pk;
    char id[8];
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    zjp_pack_str(&pk, "queue"); zjp_pack_str(&pk, argv[2]);
    zjp_pack_str(&pk, "task"); zjp_pack_str(&pk, argv[3]);
    zjp_pack_str(&pk, "args"); msgpack_pack_array(&pk, argc - 4);
    for (int i = 4; i < argc; i++) msgpack_pack_int64(&pk, strtoll(argv[i], NULL, 10));
    request(sock, "SUBMIT", &buf, id);
    msgpack_sbuffer_destroy(&buf);
    msgpack_unpacked answer;
    msgpack_unpacked_init(&answer);
    int rc = reply(sock, id, &answer);
    if (rc == 0) zjp_str(zjp_get(&answer.data, "id"), job_id, size);
    msgpack_unpacked_destroy(&answer);
    return rc;
}

static int wait_for(void *sock, const char *job_id) {
    msgpack_sbuffer buf;
    msgpack_packer pk;
    char id[8], status[32], type[128], message[1024];
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    zjp_pack_str(&pk, "id"); zjp_pack_str(&pk, job_id);
    zjp_pack_str(&pk, "timeout"); msgpack_pack_int(&pk, 30);
    request(sock, "WAIT", &buf, id);
    msgpack_sbuffer_destroy(&buf);
    msgpack_unpacked job;
    msgpack_unpacked_init(&job);
    int rc = reply(sock, id, &job) == 0 ? 1 : 2;
    if (rc == 1) {
        zjp_str(zjp_get(&job.data, "status"), status, sizeof status);
        msgpack_object *error = zjp_get(&job.data, "error");
        if (strcmp(status, "succeeded") == 0) {
            printf("succeeded ");
            print_value(zjp_get(&job.data, "result"));
            printf("\n");
            rc = 0;
        } else if (error != NULL && error->type == MSGPACK_OBJECT_MAP) {
            printf("%s %s: %s\n", status, zjp_str(zjp_get(error, "type"), type, sizeof type),
                   zjp_str(zjp_get(error, "message"), message, sizeof message));
        } else {
            printf("%s\n", status); /* still pending after the wait */
        }
    }
    msgpack_unpacked_destroy(&job);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: zjobs_client ENDPOINT QUEUE TASK [INT ...]\n");
        return 2;
    }
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(sock, argv[1]);
    char job_id[256];
    int rc = submit(sock, argc, argv, job_id, sizeof job_id) == 0 ? wait_for(sock, job_id) : 2;
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return rc;
}
