#define _GNU_SOURCE
#include "weft_shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

int weft_shim_version(void) { return 2; }

int64_t weft_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- addresses ---- */

static socklen_t to_sockaddr(const weft_endpoint *ep, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    if (ep->family == 6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(ep->port);
        memcpy(&s6->sin6_addr, ep->addr, 16);
        return sizeof *s6;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(ep->port);
    memcpy(&s4->sin_addr, ep->addr, 4);
    return sizeof *s4;
}

static void from_sockaddr(const struct sockaddr_storage *ss, weft_endpoint *out) {
    memset(out, 0, sizeof *out);
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        /* IPv4-mapped (::ffff:a.b.c.d) is reported as IPv4 so endpoints compare equal. */
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            out->family = 4;
            memcpy(out->addr, &s6->sin6_addr.s6_addr[12], 4);
        } else {
            out->family = 6;
            memcpy(out->addr, &s6->sin6_addr, 16);
        }
        out->port = ntohs(s6->sin6_port);
    } else if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        out->family = 4;
        memcpy(out->addr, &s4->sin_addr, 4);
        out->port = ntohs(s4->sin_port);
    }
}

/* An IPv4 destination on an IPv6 socket must be written as ::ffff:a.b.c.d. */
static socklen_t dest_sockaddr(int sock_family, const weft_endpoint *ep, struct sockaddr_storage *ss) {
    if (sock_family == AF_INET6 && ep->family == 4) {
        weft_endpoint m = *ep;
        m.family = 6;
        memset(m.addr, 0, 16);
        m.addr[10] = 0xff;
        m.addr[11] = 0xff;
        memcpy(&m.addr[12], ep->addr, 4);
        return to_sockaddr(&m, ss);
    }
    return to_sockaddr(ep, ss);
}

static int sock_family(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return AF_INET;
    return ss.ss_family;
}

/* ---- UDP ---- */

int weft_udp_open(const weft_endpoint *ep, int bufbytes, int reuse_addr, const char **failed_call) {
    int family = ep->family == 6 ? AF_INET6 : AF_INET;
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) { *failed_call = "socket"; return -errno; }
    int one = 1, zero = 0;
    if (reuse_addr && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) {
        int e = errno; close(fd); *failed_call = "setsockopt(SO_REUSEADDR)"; return -e;
    }
    if (family == AF_INET6) {
        int any = 1;
        for (int i = 0; i < 16; i++) if (ep->addr[i]) { any = 0; break; }
        if (any) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
    if (bufbytes > 0) {
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufbytes, sizeof bufbytes) < 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufbytes, sizeof bufbytes);
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufbytes, sizeof bufbytes) < 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufbytes, sizeof bufbytes);
    }
    struct sockaddr_storage ss;
    socklen_t len = to_sockaddr(ep, &ss);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
        int e = errno; close(fd); *failed_call = "bind"; return -e;
    }
    return fd;
}

int weft_udp_local_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -errno;
    weft_endpoint ep;
    from_sockaddr(&ss, &ep);
    return ep.port;
}

int weft_udp_buffer(int fd, int receive) {
    int v = 0;
    socklen_t len = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, receive ? SO_RCVBUF : SO_SNDBUF, &v, &len) < 0) return -errno;
    return v;
}

static int wait_writable(int fd, int wait_ms) {
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    for (;;) {
        int r = poll(&p, 1, wait_ms);
        if (r < 0 && errno == EINTR) continue;
        return r;
    }
}

int weft_udp_sendto(int fd, const void *buf, size_t len, const weft_endpoint *to, int wait_ms) {
    struct sockaddr_storage ss;
    socklen_t sl = dest_sockaddr(sock_family(fd), to, &ss);
    for (int attempt = 0; attempt < 2; attempt++) {
        ssize_t n = sendto(fd, buf, len, 0, (struct sockaddr *)&ss, sl);
        if (n >= 0) return (int)n;
        if (errno == EINTR) { attempt--; continue; }
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
        if (attempt == 0 && wait_writable(fd, wait_ms) <= 0) return -EAGAIN;
    }
    return -EAGAIN;
}

#define WEFT_GSO_MAX_SEGMENTS 64
#define WEFT_GSO_MAX_BYTES 65000

struct weft_batch {
    int count, slot_bytes, family, gso;
    uint8_t *data;
    struct iovec *iov;
    struct mmsghdr *msgs;
    struct sockaddr_storage *addrs;
    struct mmsghdr *gmsgs;   /* one per GSO group */
    int *gstart;             /* first slot of each group */
    char *ctrl;              /* CMSG_SPACE(uint16_t) per group */
};

#define WEFT_CTRL_BYTES CMSG_SPACE(sizeof(uint16_t))

weft_batch *weft_batch_new(int count, int slot_bytes) {
    if (count <= 0 || slot_bytes <= 0) return NULL;
    weft_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->count = count;
    b->slot_bytes = slot_bytes;
    b->family = AF_INET;
    b->data = aligned_alloc(64, (size_t)count * (size_t)slot_bytes + 64);
    b->iov = calloc((size_t)count, sizeof *b->iov);
    b->msgs = calloc((size_t)count, sizeof *b->msgs);
    b->addrs = calloc((size_t)count, sizeof *b->addrs);
    b->gmsgs = calloc((size_t)count, sizeof *b->gmsgs);
    b->gstart = calloc((size_t)count + 1, sizeof *b->gstart);
    b->ctrl = calloc((size_t)count, WEFT_CTRL_BYTES);
    if (!b->data || !b->iov || !b->msgs || !b->addrs || !b->gmsgs || !b->gstart || !b->ctrl) { weft_batch_free(b); return NULL; }
    for (int i = 0; i < count; i++) {
        b->iov[i].iov_base = b->data + (size_t)i * (size_t)slot_bytes;
        b->iov[i].iov_len = (size_t)slot_bytes;
        b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
        b->msgs[i].msg_hdr.msg_iovlen = 1;
        b->msgs[i].msg_hdr.msg_name = &b->addrs[i];
        b->msgs[i].msg_hdr.msg_namelen = sizeof b->addrs[i];
    }
    return b;
}

void weft_batch_free(weft_batch *b) {
    if (!b) return;
    free(b->data);
    free(b->iov);
    free(b->msgs);
    free(b->addrs);
    free(b->gmsgs);
    free(b->gstart);
    free(b->ctrl);
    free(b);
}

int weft_batch_count(const weft_batch *b) { return b->count; }
int weft_batch_slot_bytes(const weft_batch *b) { return b->slot_bytes; }
uint8_t *weft_batch_slot(weft_batch *b, int i) { return b->data + (size_t)i * (size_t)b->slot_bytes; }

int weft_batch_recv(weft_batch *b, int fd) {
    for (int i = 0; i < b->count; i++) {
        b->iov[i].iov_len = (size_t)b->slot_bytes;
        b->msgs[i].msg_hdr.msg_namelen = sizeof b->addrs[i];
        b->msgs[i].msg_hdr.msg_flags = 0;
        b->msgs[i].msg_len = 0;
    }
    for (;;) {
        int n = recvmmsg(fd, b->msgs, (unsigned)b->count, MSG_DONTWAIT, NULL);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return -errno;
    }
}

int weft_batch_length(const weft_batch *b, int i) {
    if (b->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) return -1;
    return (int)b->msgs[i].msg_len;
}

void weft_batch_source(const weft_batch *b, int i, weft_endpoint *out) { from_sockaddr(&b->addrs[i], out); }

void weft_batch_set(weft_batch *b, int i, int len, const weft_endpoint *to) {
    b->iov[i].iov_len = (size_t)len;
    b->msgs[i].msg_hdr.msg_namelen = dest_sockaddr(b->family, to, &b->addrs[i]);
    b->msgs[i].msg_hdr.msg_flags = 0;
}

/* sendmmsg of prepared message headers msgs[0, n), each carrying `weight[i]` datagrams
 * (1 without GSO). Returns datagrams the kernel took. */
static int send_msgs(struct mmsghdr *msgs, const int *weights, int fd, int n, int wait_ms, int *err, int *refused,
                     int *gso_refused) {
    int done = 0, waits = 0, taken = 0;
    while (done < n) {
        int r = sendmmsg(fd, msgs + done, (unsigned)(n - done), MSG_DONTWAIT);
        if (r > 0) {
            for (int i = 0; i < r; i++) taken += weights ? weights[done + i] : 1;
            done += r;
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
            if (waits++ < 4 && wait_writable(fd, wait_ms) > 0) continue;
            *err = errno ? errno : EAGAIN;
            return taken;
        }
        int e = r < 0 ? errno : EIO;
        /* A GSO super-datagram the kernel will not segment (EINVAL or EMSGSIZE, depending on the
         * kernel: segment + headers above the path MTU; EIO/EOPNOTSUPP: no offload): tell the
         * caller to resend it without GSO. */
        if (gso_refused && weights && weights[done] > 1 &&
            (e == EINVAL || e == EMSGSIZE || e == EIO || e == EOPNOTSUPP)) {
            *gso_refused = done;
            *err = e;
            return taken;
        }
        *err = e;
        *refused += weights ? weights[done] : 1;
        done++;
    }
    return taken;
}

static int send_plain(weft_batch *b, int fd, int from, int n, int wait_ms, int *err, int *refused) {
    return send_msgs(b->msgs + from, NULL, fd, n - from, wait_ms, err, refused, NULL);
}

int weft_batch_send(weft_batch *b, int fd, int n, int wait_ms, int *err, int *refused) {
    *err = 0;
    *refused = 0;
    if (!b->gso) return send_plain(b, fd, 0, n, wait_ms, err, refused);
    /* Group consecutive slots to the same destination whose lengths equal the first one's
     * (the last of a group may be shorter) into one UDP_SEGMENT super-datagram. */
    int groups = 0, i = 0;
    int weights[n > 0 ? n : 1];
    while (i < n) {
        int start = i;
        size_t seg = b->iov[i].iov_len, total = seg;
        i++;
        while (i < n && i - start < WEFT_GSO_MAX_SEGMENTS && b->iov[i - 1].iov_len == seg &&
               b->iov[i].iov_len <= seg && total + b->iov[i].iov_len <= WEFT_GSO_MAX_BYTES &&
               b->msgs[i].msg_hdr.msg_namelen == b->msgs[start].msg_hdr.msg_namelen &&
               memcmp(&b->addrs[i], &b->addrs[start], b->msgs[start].msg_hdr.msg_namelen) == 0) {
            total += b->iov[i].iov_len;
            i++;
        }
        int k = i - start;
        struct msghdr *h = &b->gmsgs[groups].msg_hdr;
        memset(h, 0, sizeof *h);
        h->msg_name = &b->addrs[start];
        h->msg_namelen = b->msgs[start].msg_hdr.msg_namelen;
        h->msg_iov = &b->iov[start];
        h->msg_iovlen = (size_t)k;
        if (k > 1) {
            char *ctrl = b->ctrl + (size_t)groups * WEFT_CTRL_BYTES;
            memset(ctrl, 0, WEFT_CTRL_BYTES);
            h->msg_control = ctrl;
            h->msg_controllen = WEFT_CTRL_BYTES;
            struct cmsghdr *cm = CMSG_FIRSTHDR(h);
            cm->cmsg_level = SOL_UDP;
            cm->cmsg_type = UDP_SEGMENT;
            cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t gs = (uint16_t)seg;
            memcpy(CMSG_DATA(cm), &gs, sizeof gs);
        }
        b->gstart[groups] = start;
        weights[groups] = k;
        groups++;
    }
    b->gstart[groups] = n;
    int refused_group = -1;
    int taken = send_msgs(b->gmsgs, weights, fd, groups, wait_ms, err, refused, &refused_group);
    if (refused_group >= 0) {
        /* Fall back for good (this socket or path cannot do GSO) and send the rest plainly. */
        b->gso = 0;
        int e2 = 0, r2 = 0;
        taken += send_plain(b, fd, b->gstart[refused_group], n, wait_ms, &e2, &r2);
        *err = e2;
        *refused += r2;
    }
    return taken;
}

void weft_batch_set_gso(weft_batch *b, int on) { b->gso = on; }
int weft_batch_gso(const weft_batch *b) { return b->gso; }

/* sendmmsg needs to know the socket family to write IPv4 destinations on IPv6 sockets. */
void weft_batch_set_family(weft_batch *b, int fd) { b->family = sock_family(fd); }

/* ---- TUN ---- */

static int tun_open_flags(const char *name, char *name_out, short extra, const char **failed_call) {
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) { *failed_call = "open(/dev/net/tun)"; return -errno; }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI | extra;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = errno; close(fd); *failed_call = "ioctl(TUNSETIFF)"; return -e;
    }
    memcpy(name_out, ifr.ifr_name, IFNAMSIZ);
    name_out[IFNAMSIZ - 1] = 0;
    return fd;
}

int weft_tun_open(const char *name, char *name_out, int offload, int *offload_on, const char **failed_call) {
    *offload_on = 0;
    if (offload) {
        /* Every read then starts with a virtio_net_hdr and may hold a TCP super-segment of up
           to 64 KiB with its checksum left to us (TUN_F_CSUM | TUN_F_TSO4: the overlay is IPv4);
           every write must start with one. A kernel that refuses either gets the plain device
           (the device is not persistent: closing the fd removes it, so the name is free again). */
        const char *call = NULL;
        int fd = tun_open_flags(name, name_out, IFF_VNET_HDR, &call);
        if (fd >= 0) {
            int size = 10;
            if (ioctl(fd, TUNSETVNETHDRSZ, &size) == 0 &&
                ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4)) == 0) {
                *offload_on = 1;
                return fd;
            }
            close(fd);
        }
    }
    return tun_open_flags(name, name_out, 0, failed_call);
}

int weft_tun_configure(const char *name, uint32_t addr, int prefix_len, int mtu, const char **failed_call) {
    if (prefix_len < 0 || prefix_len > 32) { *failed_call = "prefix length"; return -EINVAL; }
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) { *failed_call = "socket"; return -errno; }
    struct ifreq ifr;
    int rc = 0;
#define IFR_RESET() do { memset(&ifr, 0, sizeof ifr); strncpy(ifr.ifr_name, name, IFNAMSIZ - 1); } while (0)
#define TRY(req, label) do { if (ioctl(s, req, &ifr) < 0) { rc = -errno; *failed_call = label; goto out; } } while (0)
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
    IFR_RESET();
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(addr);
    TRY(SIOCSIFADDR, "ioctl(SIOCSIFADDR)");
    IFR_RESET();
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(prefix_len == 0 ? 0 : (uint32_t)(0xffffffffu << (32 - prefix_len)));
    TRY(SIOCSIFNETMASK, "ioctl(SIOCSIFNETMASK)");
    IFR_RESET();
    ifr.ifr_mtu = mtu;
    TRY(SIOCSIFMTU, "ioctl(SIOCSIFMTU)");
    IFR_RESET();
    TRY(SIOCGIFFLAGS, "ioctl(SIOCGIFFLAGS)");
    if (!(ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        TRY(SIOCSIFFLAGS, "ioctl(SIOCSIFFLAGS)");
    }
out:
    close(s);
    return rc;
#undef TRY
#undef IFR_RESET
}

int weft_enable_ip_forward(void) {
    /* Already on (set by the host, a systemd ExecStartPre, kubelet's prerequisites): no write,
       so a node whose /proc/sys is read-only (a non-privileged container, ProtectKernelTunables)
       still starts. */
    int rfd = open("/proc/sys/net/ipv4/ip_forward", O_RDONLY | O_CLOEXEC);
    if (rfd >= 0) {
        char c = 0;
        ssize_t r;
        do { r = read(rfd, &c, 1); } while (r < 0 && errno == EINTR);
        close(rfd);
        if (r == 1 && c == '1') return 0;
    }
    int fd = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n;
    do { n = write(fd, "1\n", 2); } while (n < 0 && errno == EINTR);
    int e = n < 0 ? errno : 0;
    close(fd);
    return -e;
}

int weft_tun_read(int fd, void *buf, size_t cap) {
    for (;;) {
        ssize_t n = read(fd, buf, cap);
        if (n >= 0) return (int)n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return -errno;
    }
}

int weft_tun_write(int fd, const void *buf, size_t len, int vnet) {
    static const unsigned char no_offload[10] = {0};  /* virtio_net_hdr: no GSO, checksum complete */
    struct iovec iov[2] = {{(void *)no_offload, sizeof no_offload}, {(void *)buf, len}};
    for (;;) {
        ssize_t n = vnet ? writev(fd, iov, 2) : write(fd, buf, len);
        if (n >= 0) return vnet ? (int)(n >= 10 ? n - 10 : 0) : (int)n;
        if (errno == EINTR) continue;
        return -errno;
    }
}

int weft_tun_write_frame(int fd, const void *frame, size_t len) {
    for (;;) {
        ssize_t n = write(fd, frame, len);
        if (n >= 0) return (int)n;
        if (errno == EINTR) continue;
        return -errno;
    }
}

#include <pthread.h>
int weft_set_thread_name(const char *name) {
    char buf[16];
    strncpy(buf, name, 15);
    buf[15] = 0;
    return -pthread_setname_np(pthread_self(), buf);
}

/* ---- waking ---- */

int weft_eventfd(void) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int weft_eventfd_signal(int fd) {
    uint64_t one = 1;
    ssize_t n;
    do { n = write(fd, &one, sizeof one); } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : 0;
}

int weft_wait_readable(int fd, int wakefd, int timeout_ms) {
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = wakefd, .events = POLLIN}};
    int r = poll(p, wakefd >= 0 ? 2 : 1, timeout_ms);
    if (r < 0) return errno == EINTR ? 0 : -errno;
    if (r == 0) return 0;
    if (wakefd >= 0 && (p[1].revents & POLLIN)) return 2;
    if (p[0].revents & (POLLIN | POLLERR | POLLHUP)) return 1;
    return 0;
}

int weft_close(int fd) { return close(fd) < 0 ? -errno : 0; }

int weft_enter_netns(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int r = setns(fd, CLONE_NEWNET);
    int e = r < 0 ? errno : 0;
    close(fd);
    return -e;
}
