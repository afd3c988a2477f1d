/* A Kafka cluster for tests: librdkafka's mock cluster (the real Kafka protocol over TCP on
 * 127.0.0.1) in its own process. Prints "bootstrap <host:port,...>" on stdout, then reads
 * commands on stdin, one per line, answering "ok" or "error <why>" to each:
 *   topic NAME PARTITIONS     create a topic
 *   down ID | up ID           take broker ID (1..N, -1: all) down or bring it back
 *   rtt ID MS                 add round-trip delay
 *   topic_error NAME CODE     answer metadata requests for topic NAME with Kafka error CODE
 *                             (3: unknown topic, 29: not authorized; 0 clears it)
 *   copy NAME PARTITION N     append the partition's last N messages to it again, keys and
 *                             values unchanged: the copies a broker keeps when a producer's
 *                             retry writes again what it had written
 *   quit                      stop (also at end of input)
 * Usage: kafka_mock [BROKERS] */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The copy command: a consumer reads the last n messages of the partition, a producer appends
 * them again. Returns 0, or -1 with err set. */
static int copy_tail(const char *bootstrap, const char *topic, int partition, int n, char *err,
                     size_t errsz)
{
    if (n <= 0) {
        snprintf(err, errsz, "copy: N must be positive");
        return -1;
    }
    rd_kafka_conf_t *cc = rd_kafka_conf_new(), *pc = rd_kafka_conf_new();
    if (rd_kafka_conf_set(cc, "bootstrap.servers", bootstrap, err, errsz) ||
        rd_kafka_conf_set(pc, "bootstrap.servers", bootstrap, err, errsz)) {
        rd_kafka_conf_destroy(cc);
        rd_kafka_conf_destroy(pc);
        return -1;
    }
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, errsz);
    if (!c) {
        rd_kafka_conf_destroy(cc);
        rd_kafka_conf_destroy(pc);
        return -1;
    }
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, errsz);
    if (!p) {
        rd_kafka_conf_destroy(pc);
        rd_kafka_destroy(c);
        return -1;
    }
    rd_kafka_topic_t *ct = rd_kafka_topic_new(c, topic, NULL);
    int rc = ct ? rd_kafka_consume_start(ct, partition, RD_KAFKA_OFFSET_TAIL(n)) : -1;
    if (rc)
        snprintf(err, errsz, "reading %s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
    int copied = 0;
    while (rc == 0 && copied < n) {
        rd_kafka_message_t *m = rd_kafka_consume(ct, partition, 10000);
        if (!m || m->err) {
            snprintf(err, errsz, "reading: %s",
                     m ? rd_kafka_err2str(m->err) : "no message in 10 s");
            rc = -1;
        } else if (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                     RD_KAFKA_V_KEY(m->key, m->key_len),
                                     RD_KAFKA_V_VALUE(m->payload, m->len),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) {
            snprintf(err, errsz, "producing: %s", rd_kafka_err2str(rd_kafka_last_error()));
            rc = -1;
        } else {
            copied++;
        }
        if (m)
            rd_kafka_message_destroy(m);
    }
    if (rc == 0 && rd_kafka_flush(p, 10000)) {
        snprintf(err, errsz, "the copies not acknowledged in 10 s");
        rc = -1;
    }
    if (ct) {
        rd_kafka_consume_stop(ct, partition);
        rd_kafka_topic_destroy(ct);
    }
    rd_kafka_destroy(c);
    rd_kafka_destroy(p);
    return rc;
}

int main(int argc, char **argv)
{
    int brokers = argc > 1 ? atoi(argv[1]) : 1;
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    /* Its brokers' sockets as a real broker's (Kafka sets TCP_NODELAY): with Nagle's algorithm on,
     * an answer's short tail waits for the client's delayed acknowledgement. */
    rd_kafka_conf_set(conf, "socket.nagle.disable", "true", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "kafka_mock: %s\n", err);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        fprintf(stderr, "kafka_mock: cannot create the mock cluster\n");
        return 1;
    }
    printf("bootstrap %s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    char line[512];
    while (fgets(line, sizeof(line), stdin)) {
        char cmd[64] = "", name[256] = "";
        int a = 0, b = 0;
        int n = sscanf(line, "%63s %255s %d", cmd, name, &b);
        rd_kafka_resp_err_t rc = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (!strcmp(cmd, "quit")) {
            break;
        } else if (!strcmp(cmd, "topic") && n == 3) {
            rc = rd_kafka_mock_topic_create(mc, name, b, 1);
        } else if ((!strcmp(cmd, "down") || !strcmp(cmd, "up")) && n >= 2) {
            a = atoi(name);
            rc = cmd[0] == 'd' ? rd_kafka_mock_broker_set_down(mc, a)
                               : rd_kafka_mock_broker_set_up(mc, a);
        } else if (!strcmp(cmd, "rtt") && n == 3) {
            rc = rd_kafka_mock_broker_set_rtt(mc, atoi(name), b);
        } else if (!strcmp(cmd, "copy") && sscanf(line, "%*s %255s %d %d", name, &a, &b) == 3) {
            if (copy_tail(rd_kafka_mock_cluster_bootstraps(mc), name, a, b, err, sizeof(err))) {
                printf("error %s\n", err);
                fflush(stdout);
                continue;
            }
        } else if (!strcmp(cmd, "topic_error") && n == 3) {
            rd_kafka_mock_topic_set_error(mc, name, (rd_kafka_resp_err_t)b);
        } else {
            printf("error unknown command\n");
            fflush(stdout);
            continue;
        }
        if (rc)
            printf("error %s\n", rd_kafka_err2str(rc));
        else
            printf("ok\n");
        fflush(stdout);
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
