/*
 * kemu-flannel-udp-proxy: the data path of flannel's UDP backend, as flannel's own small C
 * proxy does it. Every IP packet the kernel routes into the TUN device is sent, unchanged and
 * alone, as the payload of one UDP datagram to the node that owns the destination's subnet;
 * every datagram received is written back into the TUN. The TUN's MTU (1472 = 1500 - 28)
 * keeps each datagram within the underlay's MTU, so the underlay never fragments.
 *
 * Usage: kemu-flannel-udp-proxy TUN_NAME PORT
 * Creates TUN_NAME (it vanishes when the proxy exits), binds UDP PORT, prints "ready" on stdout,
 * then takes routes on stdin, one per line:
 *     add 10.244.1.0/24 172.18.0.3
 *     del 10.244.1.0/24
 * It exits when stdin closes, so it never outlives the kemu process that started it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_ROUTES 4096
#define MAX_PACKET 65536
#define BURST 64 /* packets moved per system call pair before polling again */

struct route {
	uint32_t net, mask; /* host byte order */
	struct sockaddr_in peer;
};

static struct route routes[MAX_ROUTES];
static int nroutes;
static uint16_t port;

static int tun_open(const char *name)
{
	struct ifreq ifr = {0};
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK);
	if (fd < 0)
		return -1;
	/* IFF_NAPI: packets we write go through NAPI and GRO, so the receiving node's stack
	 * handles coalesced segments, as it would from a NIC. The wire is unchanged. */
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_NAPI;
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
		if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

static const struct route *lookup(uint32_t dst)
{
	const struct route *best = NULL;
	for (int i = 0; i < nroutes; i++)
		if ((dst & routes[i].mask) == routes[i].net &&
		    (!best || routes[i].mask > best->mask))
			best = &routes[i];
	return best;
}

static int parse_cidr(const char *text, uint32_t *net, uint32_t *mask)
{
	char buf[32];
	struct in_addr addr;
	const char *slash = strchr(text, '/');
	int len;
	if (!slash || (size_t)(slash - text) >= sizeof(buf))
		return -1;
	memcpy(buf, text, slash - text);
	buf[slash - text] = 0;
	len = atoi(slash + 1);
	if (inet_pton(AF_INET, buf, &addr) != 1 || len < 0 || len > 32)
		return -1;
	*mask = len ? ~0u << (32 - len) : 0;
	*net = ntohl(addr.s_addr) & *mask;
	return 0;
}

static void control(char *line)
{
	char verb[8], cidr[32], peer[32];
	uint32_t net, mask;
	int n = sscanf(line, "%7s %31s %31s", verb, cidr, peer);
	if (n < 2 || parse_cidr(cidr, &net, &mask) < 0) {
		fprintf(stderr, "bad control line: %s\n", line);
		return;
	}
	for (int i = 0; i < nroutes; i++) {
		if (routes[i].net == net && routes[i].mask == mask) {
			routes[i] = routes[--nroutes]; /* replaced below if "add" */
			break;
		}
	}
	if (strcmp(verb, "add") == 0 && n == 3 && nroutes < MAX_ROUTES) {
		struct route *r = &routes[nroutes];
		memset(r, 0, sizeof(*r));
		r->net = net;
		r->mask = mask;
		r->peer.sin_family = AF_INET;
		r->peer.sin_port = htons(port);
		if (inet_pton(AF_INET, peer, &r->peer.sin_addr) == 1)
			nroutes++;
		else
			fprintf(stderr, "bad peer address: %s\n", peer);
	}
}

/* Decrement the TTL as a router does, patching the header checksum (RFC 1624). */
static int forward_ttl(uint8_t *ip)
{
	uint32_t sum;
	if (ip[8] <= 1)
		return -1;
	ip[8]--;
	sum = ((ip[10] << 8) | ip[11]) + 0x0100;
	sum = (sum & 0xffff) + (sum >> 16);
	ip[10] = sum >> 8;
	ip[11] = sum & 0xff;
	return 0;
}

static uint8_t bufs[BURST][MAX_PACKET];
static struct mmsghdr msgs[BURST];
static struct iovec iovs[BURST];

/* Read up to BURST packets from the TUN, then send them with one sendmmsg. */
static void tun_to_udp(int tun, int sock)
{
	int n = 0;
	for (int i = 0; i < BURST; i++) {
		ssize_t len = read(tun, bufs[n], MAX_PACKET);
		if (len < 20)
			break; /* EAGAIN, or not an IPv4 header */
		uint8_t *ip = bufs[n];
		if ((ip[0] >> 4) != 4)
			continue;
		uint32_t dst = ((uint32_t)ip[16] << 24) | (ip[17] << 16) | (ip[18] << 8) | ip[19];
		const struct route *r = lookup(dst);
		if (!r || forward_ttl(ip) < 0)
			continue; /* no lease for that subnet, or TTL exhausted: drop */
		iovs[n].iov_base = ip;
		iovs[n].iov_len = len;
		msgs[n].msg_hdr = (struct msghdr){.msg_name = (void *)&r->peer,
						  .msg_namelen = sizeof(r->peer),
						  .msg_iov = &iovs[n], .msg_iovlen = 1};
		n++;
	}
	for (int sent = 0; sent < n;) {
		int k = sendmmsg(sock, msgs + sent, n - sent, 0);
		if (k <= 0)
			break;
		sent += k;
	}
}

/* Receive up to BURST datagrams with one recvmmsg and write each into the TUN. */
static void udp_to_tun(int sock, int tun)
{
	for (int i = 0; i < BURST; i++) {
		iovs[i].iov_base = bufs[i];
		iovs[i].iov_len = MAX_PACKET;
		msgs[i].msg_hdr = (struct msghdr){.msg_iov = &iovs[i], .msg_iovlen = 1};
	}
	int n = recvmmsg(sock, msgs, BURST, MSG_DONTWAIT, NULL);
	for (int i = 0; i < n; i++) {
		uint8_t *ip = bufs[i];
		if (msgs[i].msg_len >= 20 && (ip[0] >> 4) == 4)
			if (write(tun, ip, msgs[i].msg_len) < 0 && errno != EAGAIN)
				perror("write tun");
	}
}

int main(int argc, char **argv)
{
	char line[256];
	size_t fill = 0;
	struct sockaddr_in addr = {.sin_family = AF_INET};
	int tun, sock, one = 1, sockbuf = 8 << 20;

	if (argc != 3) {
		fprintf(stderr, "usage: %s TUN_NAME PORT\n", argv[0]);
		return 2;
	}
	port = (uint16_t)atoi(argv[2]);
	if ((tun = tun_open(argv[1])) < 0) {
		perror("tun");
		return 1;
	}
	sock = socket(AF_INET, SOCK_DGRAM, 0);
	setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Room for bursts: a receiver that falls behind for a moment should queue, not drop.
	 * The FORCE variants pass net.core.*mem_max without changing that host-wide sysctl. */
	setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &sockbuf, sizeof(sockbuf));
	setsockopt(sock, SOL_SOCKET, SO_SNDBUFFORCE, &sockbuf, sizeof(sockbuf));
	addr.sin_port = htons(port);
	if (bind(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		perror("bind");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);

	struct pollfd fds[3] = {{tun, POLLIN, 0}, {sock, POLLIN, 0}, {0, POLLIN, 0}};
	for (;;) {
		if (poll(fds, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("poll");
			return 1;
		}
		if (fds[0].revents & POLLIN)
			tun_to_udp(tun, sock);
		if (fds[1].revents & POLLIN)
			udp_to_tun(sock, tun);
		if (fds[2].revents & (POLLIN | POLLHUP)) {
			ssize_t n = read(0, line + fill, sizeof(line) - 1 - fill);
			if (n <= 0)
				return 0; /* kemu closed our stdin: stop with the cluster */
			fill += n;
			line[fill] = 0;
			char *start = line, *nl;
			while ((nl = strchr(start, '\n'))) {
				*nl = 0;
				control(start);
				start = nl + 1;
			}
			fill = strlen(start);
			memmove(line, start, fill + 1);
			if (fill == sizeof(line) - 1)
				fill = 0; /* an over-long line: drop it */
		}
	}
}
