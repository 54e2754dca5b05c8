/*
 * kemu-delay-line: link delay, jitter and loss where the kernel has no sch_netem.
 *
 * An iptables NFQUEUE rule in a node hands every packet leaving its underlay interface to
 * this program (metadata only: the packet stays in the kernel). Each packet is released
 * (NF_ACCEPT) DELAY ± JITTER after it was queued, never before the one ahead of it (netem
 * keeps order too unless told otherwise), or dropped (NF_DROP) with probability LOSS. The
 * last millisecond before a release is spent spinning on the clock: poll() timeouts are
 * whole milliseconds and would add ~1 ms to every packet. At most LIMIT packets wait (netem's
 * `limit`, default 1000); beyond that the kernel drops, as a full netem queue does.
 *
 * Usage: kemu-delay-line QUEUE DELAY_US JITTER_US LOSS_PPM LIMIT
 * Prints "ready" once bound. A line "DELAY_US JITTER_US LOSS_PPM" on stdin changes the link
 * for packets queued from then on (a scenario's link-set event); exits when stdin closes
 * (kemu stopped or died).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RING 65536

struct held {
	uint32_t id;
	uint64_t due;
	int drop;
};

static struct held ring[RING];
static unsigned head, tail;
static uint64_t delay_ns, jitter_ns, last_due;
static uint32_t loss_ppm;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int queued(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa,
		  void *data)
{
	(void)msg;
	(void)data;
	struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
	uint32_t id = ntohl(ph->packet_id);
	if (tail - head >= RING) /* cannot happen below LIMIT; drop rather than lose track */
		return nfq_set_verdict(qh, id, NF_DROP, 0, NULL);
	uint64_t due = now_ns() + delay_ns;
	if (jitter_ns)
		due = due - jitter_ns + (uint64_t)((double)rand() / RAND_MAX * 2 * jitter_ns);
	if (due < last_due)
		due = last_due; /* keep order */
	last_due = due;
	ring[tail % RING] = (struct held){id, due, (uint32_t)(rand() % 1000000) < loss_ppm};
	tail++;
	return 0;
}

static void release(struct nfq_q_handle *qh)
{
	uint64_t now = now_ns();
	while (head != tail && ring[head % RING].due <= now) {
		struct held *p = &ring[head % RING];
		nfq_set_verdict(qh, p->id, p->drop ? NF_DROP : NF_ACCEPT, 0, NULL);
		head++;
	}
}

/* New parameters, one line at a time; returns what read() did (0: stdin closed). */
static ssize_t read_params(void)
{
	static char line[128];
	static size_t used;
	ssize_t n = read(0, line + used, sizeof(line) - 1 - used);
	if (n <= 0)
		return n;
	used += (size_t)n;
	line[used] = 0;
	char *end;
	while ((end = strchr(line, '\n'))) {
		unsigned long long d, j;
		unsigned long l;
		*end = 0;
		if (sscanf(line, "%llu %llu %lu", &d, &j, &l) == 3) {
			delay_ns = d * 1000;
			jitter_ns = j * 1000;
			loss_ppm = (uint32_t)l;
			/* Order is kept (held packets leave first): a shorter delay shows once the
			 * packets held under the longer one have left. */
			last_due = 0;
		}
		used -= (size_t)(end + 1 - line);
		memmove(line, end + 1, used + 1);
	}
	if (used == sizeof(line) - 1)
		used = 0; /* garbage without a newline: drop it */
	return n;
}

int main(int argc, char **argv)
{
	static char buf[65536] __attribute__((aligned));
	if (argc != 6) {
		fprintf(stderr, "usage: %s QUEUE DELAY_US JITTER_US LOSS_PPM LIMIT\n", argv[0]);
		return 2;
	}
	delay_ns = strtoull(argv[2], NULL, 10) * 1000;
	jitter_ns = strtoull(argv[3], NULL, 10) * 1000;
	loss_ppm = (uint32_t)strtoul(argv[4], NULL, 10);
	srand((unsigned)now_ns());

	struct nfq_handle *h = nfq_open();
	if (!h || nfq_bind_pf(h, AF_INET) < 0) {
		perror("nfq_open");
		return 1;
	}
	struct nfq_q_handle *qh = nfq_create_queue(h, (uint16_t)atoi(argv[1]), queued, NULL);
	if (!qh || nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) {
		perror("nfq_create_queue");
		return 1;
	}
	nfq_set_queue_maxlen(qh, (uint32_t)atoi(argv[5]));
	nfnl_rcvbufsiz(nfq_nfnlh(h), 64 << 20);
	int fd = nfq_fd(h);
	printf("ready\n");
	fflush(stdout);

	struct pollfd fds[2] = {{fd, POLLIN, 0}, {0, POLLIN, 0}};
	for (;;) {
		int timeout = -1;
		if (head != tail) {
			int64_t wait = (int64_t)(ring[head % RING].due - now_ns());
			timeout = wait > 1000000 ? (int)(wait / 1000000) - 1 : 0;
			if (timeout < 0)
				timeout = 0;
		}
		if (poll(fds, 2, timeout) < 0 && errno != EINTR) {
			perror("poll");
			return 1;
		}
		if (fds[1].revents & (POLLIN | POLLHUP)) {
			if (read_params() <= 0)
				return 0; /* kemu closed our stdin */
		}
		if (fds[0].revents & POLLIN) {
			for (;;) { /* drain everything queued so far */
				ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
				if (n <= 0)
					break;
				nfq_handle_packet(h, buf, (int)n);
			}
		}
		/* Spin through the last millisecond before the next release. */
		while (head != tail && ring[head % RING].due > now_ns() &&
		       ring[head % RING].due - now_ns() < 1000000)
			;
		release(qh);
	}
}
