/* rtnetlink calls for weft-cni. See include/weft_cni_shim.h. */
#define _GNU_SOURCE
#include "weft_cni_shim.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define WEFT_NL_BUF 65536

/* ---- message building ---- */

struct nlbuf {
    struct nlmsghdr *h;
    size_t cap;
};

static struct rtattr *nl_attr(struct nlbuf *b, unsigned short type, const void *data, size_t len) {
    size_t off = NLMSG_ALIGN(b->h->nlmsg_len);
    size_t need = RTA_LENGTH(len);
    if (off + RTA_ALIGN(need) > b->cap) return NULL;
    struct rtattr *a = (struct rtattr *)((char *)b->h + off);
    a->rta_type = type;
    a->rta_len = (unsigned short)need;
    if (len) memcpy(RTA_DATA(a), data, len);
    b->h->nlmsg_len = (uint32_t)(off + RTA_ALIGN(need));
    return a;
}

static struct rtattr *nl_nest_begin(struct nlbuf *b, unsigned short type) { return nl_attr(b, type, NULL, 0); }

static void nl_nest_end(struct nlbuf *b, struct rtattr *a) {
    if (a) a->rta_len = (unsigned short)((char *)b->h + b->h->nlmsg_len - (char *)a);
}

static void *nl_reserve(struct nlbuf *b, size_t len) {
    size_t off = NLMSG_ALIGN(b->h->nlmsg_len);
    if (off + NLMSG_ALIGN(len) > b->cap) return NULL;
    void *p = (char *)b->h + off;
    memset(p, 0, len);
    b->h->nlmsg_len = (uint32_t)(off + NLMSG_ALIGN(len));
    return p;
}

static void nl_init(struct nlbuf *b, void *mem, size_t cap, uint16_t type, uint16_t flags) {
    memset(mem, 0, cap);
    b->h = mem;
    b->cap = cap;
    b->h->nlmsg_len = NLMSG_HDRLEN;
    b->h->nlmsg_type = type;
    b->h->nlmsg_flags = NLM_F_REQUEST | flags;
}

static uint32_t next_seq(void) {
    static uint32_t seq;
    return __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
}

static int nl_send(int fd, struct nlmsghdr *h) {
    h->nlmsg_seq = next_seq();
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    for (;;) {
        ssize_t n = sendto(fd, h, h->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof sa);
        if (n >= 0) return 0;
        if (errno != EINTR) return -errno;
    }
}

static ssize_t nl_recv(int fd, char *buf, size_t cap) {
    for (;;) {
        ssize_t n = recv(fd, buf, cap, 0);
        if (n >= 0) return n;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return -ETIMEDOUT;
        if (errno != EINTR) return -errno;
    }
}

/* Sends a request with NLM_F_ACK and waits for its ack. `reply` (optional) gets the first
 * non-error message of the answer (for RTM_GET* without dump). */
static int nl_talk(int fd, struct nlmsghdr *req, int (*on_msg)(struct nlmsghdr *, void *), void *ctx) {
    req->nlmsg_flags |= NLM_F_ACK;
    int rc = nl_send(fd, req);
    if (rc < 0) return rc;
    uint32_t seq = req->nlmsg_seq;
    char buf[WEFT_NL_BUF];
    int result = 0;
    for (;;) {
        ssize_t n = nl_recv(fd, buf, sizeof buf);
        if (n < 0) return (int)n;
        if (n == 0) return -EPIPE;
        int len = (int)n;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
            if (h->nlmsg_seq != seq) continue;
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *e = NLMSG_DATA(h);
                /* error 0 is the ack; for a dump the ack comes after NLMSG_DONE */
                if (e->error) return e->error;
                return result;
            }
            if (h->nlmsg_type == NLMSG_DONE) {
                if (req->nlmsg_flags & NLM_F_DUMP) return result;
                continue;
            }
            if (on_msg) {
                int r = on_msg(h, ctx);
                if (r < 0) result = r;
            }
        }
    }
}

/* ---- sockets and namespaces ---- */

int weft_nl_open(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return -errno;
    struct timeval tv = {.tv_sec = 10, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
    return fd;
}

void weft_nl_close(int fd) {
    if (fd >= 0) close(fd);
}

int weft_netns_open(const char *netns_path) {
    int fd = open(netns_path, O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

struct open_ctx {
    int nsfd;
    int result;
};

static void *open_in_ns_thread(void *arg) {
    struct open_ctx *c = arg;
    /* Only this thread changes namespace; it exits right after, so the namespace never
     * leaks to the rest of the process. */
    if (setns(c->nsfd, CLONE_NEWNET) != 0) {
        c->result = -errno;
        return NULL;
    }
    c->result = weft_nl_open();
    return NULL;
}

int weft_nl_open_in_netns(const char *netns_path) {
    int nsfd = weft_netns_open(netns_path);
    if (nsfd < 0) return nsfd;
    struct open_ctx c = {.nsfd = nsfd, .result = -EINVAL};
    pthread_t t;
    int rc = pthread_create(&t, NULL, open_in_ns_thread, &c);
    if (rc != 0) {
        close(nsfd);
        return -rc;
    }
    pthread_join(t, NULL);
    close(nsfd);
    return c.result;
}

/* ---- links ---- */

static void parse_link(struct nlmsghdr *h, struct weft_link *out) {
    struct ifinfomsg *ifi = NLMSG_DATA(h);
    memset(out, 0, sizeof *out);
    out->index = ifi->ifi_index;
    out->flags = ifi->ifi_flags;
    int len = (int)IFLA_PAYLOAD(h);
    for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        switch (a->rta_type) {
        case IFLA_MTU:
            out->mtu = (int)*(uint32_t *)RTA_DATA(a);
            break;
        case IFLA_ADDRESS: {
            int n = (int)RTA_PAYLOAD(a);
            if (n > 6) n = 6;
            memcpy(out->mac, RTA_DATA(a), (size_t)n);
            out->mac_len = n;
            break;
        }
        case IFLA_LINKINFO: {
            int l2 = (int)RTA_PAYLOAD(a);
            for (struct rtattr *b = RTA_DATA(a); RTA_OK(b, l2); b = RTA_NEXT(b, l2)) {
                if (b->rta_type == IFLA_INFO_KIND) {
                    size_t n = RTA_PAYLOAD(b);
                    if (n >= sizeof out->kind) n = sizeof out->kind - 1;
                    memcpy(out->kind, RTA_DATA(b), n);
                    out->kind[n] = 0;
                }
            }
            break;
        }
        default:
            break;
        }
    }
}

struct link_ctx {
    struct weft_link *out;
    int found;
};

static int on_link(struct nlmsghdr *h, void *ctx) {
    struct link_ctx *c = ctx;
    if (h->nlmsg_type != RTM_NEWLINK) return 0;
    parse_link(h, c->out);
    c->found = 1;
    return 0;
}

int weft_nl_link_get(int fd, const char *name, struct weft_link *out) {
    if (strlen(name) >= IFNAMSIZ) return -EINVAL;
    char mem[512];
    struct nlbuf b;
    nl_init(&b, mem, sizeof mem, RTM_GETLINK, 0);
    struct ifinfomsg *ifi = nl_reserve(&b, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    nl_attr(&b, IFLA_IFNAME, name, strlen(name) + 1);
    struct link_ctx c = {.out = out, .found = 0};
    int rc = nl_talk(fd, b.h, on_link, &c);
    if (rc == -ENODEV) return 0;
    if (rc < 0) return rc;
    return c.found;
}

int weft_nl_veth_create(int fd, const char *host_name, const char *peer_name, int peer_netns_fd, int mtu) {
    if (strlen(host_name) >= IFNAMSIZ || strlen(peer_name) >= IFNAMSIZ) return -EINVAL;
    char mem[1024];
    struct nlbuf b;
    nl_init(&b, mem, sizeof mem, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    struct ifinfomsg *ifi = nl_reserve(&b, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    nl_attr(&b, IFLA_IFNAME, host_name, strlen(host_name) + 1);
    uint32_t m = (uint32_t)mtu;
    if (mtu > 0) nl_attr(&b, IFLA_MTU, &m, sizeof m);
    struct rtattr *info = nl_nest_begin(&b, IFLA_LINKINFO);
    nl_attr(&b, IFLA_INFO_KIND, "veth", 4);
    struct rtattr *data = nl_nest_begin(&b, IFLA_INFO_DATA);
    struct rtattr *peer = nl_nest_begin(&b, VETH_INFO_PEER);
    struct ifinfomsg *pifi = nl_reserve(&b, sizeof *pifi);
    if (!info || !data || !peer || !pifi) return -ENOBUFS;
    pifi->ifi_family = AF_UNSPEC;
    nl_attr(&b, IFLA_IFNAME, peer_name, strlen(peer_name) + 1);
    if (mtu > 0) nl_attr(&b, IFLA_MTU, &m, sizeof m);
    if (peer_netns_fd >= 0) {
        uint32_t nsfd = (uint32_t)peer_netns_fd;
        nl_attr(&b, IFLA_NET_NS_FD, &nsfd, sizeof nsfd);
    }
    nl_nest_end(&b, peer);
    nl_nest_end(&b, data);
    nl_nest_end(&b, info);
    return nl_talk(fd, b.h, NULL, NULL);
}

int weft_nl_link_set(int fd, int index, int up, int mtu) {
    char mem[256];
    struct nlbuf b;
    nl_init(&b, mem, sizeof mem, RTM_NEWLINK, 0);
    struct ifinfomsg *ifi = nl_reserve(&b, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = index;
    ifi->ifi_change = IFF_UP;
    ifi->ifi_flags = up ? IFF_UP : 0;
    uint32_t m = (uint32_t)mtu;
    if (mtu > 0) nl_attr(&b, IFLA_MTU, &m, sizeof m);
    return nl_talk(fd, b.h, NULL, NULL);
}

int weft_nl_link_del(int fd, int index) {
    char mem[128];
    struct nlbuf b;
    nl_init(&b, mem, sizeof mem, RTM_DELLINK, 0);
    struct ifinfomsg *ifi = nl_reserve(&b, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = index;
    return nl_talk(fd, b.h, NULL, NULL);
}

/* ---- addresses ---- */

int weft_nl_addr_add(int fd, int index, uint32_t addr, int prefix) {
    char mem[256];
    struct nlbuf b;
    nl_init(&b, mem, sizeof mem, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
    struct ifaddrmsg *ifa = nl_reserve(&b, sizeof *ifa);
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = (unsigned char)prefix;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = (unsigned int)index;
    nl_attr(&b, IFA_LOCAL, &addr, 4);
    nl_attr(&b, IFA_ADDRESS, &addr, 4);
    return nl_talk(fd, b.h, NULL, NULL);
}

struct addr_ctx {
    int index;
    struct weft_addr *out;
    int max;
    int count;
};

static int on_addr(struct nlmsghdr *h, void *ctx) {
    struct addr_ctx *c = ctx;
    if (h->nlmsg_type != RTM_NEWADDR) return 0;
    struct ifaddrmsg *ifa = NLMSG_DATA(h);
    if (ifa->ifa_family != AF_INET) return 0;
    if (c->index && (int)ifa->ifa_index != c->index) return 0;
    uint32_t addr = 0;
    int have = 0;
    int len = (int)IFA_PAYLOAD(h);
    for (struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type == IFA_LOCAL || (a->rta_type == IFA_ADDRESS && !have)) {
            memcpy(&addr, RTA_DATA(a), 4);
            have = 1;
        }
    }
    if (have && c->count < c->max) {
        c->out[c->count].index = (int)ifa->ifa_index;
        c->out[c->count].addr = addr;
        c->out[c->count].prefix = ifa->ifa_prefixlen;
        c->count++;
    }
    return 0;
}

int weft_nl_addr_list(int fd, int index, struct weft_addr *out, int max) {
    char mem[128];
    struct nlbuf b;
    nl_init(&b, mem, sizeof mem, RTM_GETADDR, NLM_F_DUMP);
    struct ifaddrmsg *ifa = nl_reserve(&b, sizeof *ifa);
    ifa->ifa_family = AF_INET;
    struct addr_ctx c = {.index = index, .out = out, .max = max, .count = 0};
    int rc = nl_talk(fd, b.h, on_addr, &c);
    return rc < 0 ? rc : c.count;
}

/* ---- routes ---- */

static int route_msg(int fd, uint16_t type, uint16_t flags, int index, uint32_t dst, int prefix, uint32_t gw) {
    char mem[256];
    struct nlbuf b;
    nl_init(&b, mem, sizeof mem, type, flags);
    struct rtmsg *rt = nl_reserve(&b, sizeof *rt);
    rt->rtm_family = AF_INET;
    rt->rtm_dst_len = (unsigned char)prefix;
    rt->rtm_table = RT_TABLE_MAIN;
    if (type == RTM_NEWROUTE) {
        rt->rtm_protocol = RTPROT_BOOT;
        rt->rtm_scope = gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
        rt->rtm_type = RTN_UNICAST;
    } else {
        rt->rtm_scope = RT_SCOPE_NOWHERE;
    }
    if (prefix > 0) nl_attr(&b, RTA_DST, &dst, 4);
    if (gw) nl_attr(&b, RTA_GATEWAY, &gw, 4);
    uint32_t oif = (uint32_t)index;
    if (index > 0) nl_attr(&b, RTA_OIF, &oif, 4);
    return nl_talk(fd, b.h, NULL, NULL);
}

int weft_nl_route_replace(int fd, int index, uint32_t dst, int prefix, uint32_t gw) {
    return route_msg(fd, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, index, dst, prefix, gw);
}

int weft_nl_route_del(int fd, int index, uint32_t dst, int prefix) {
    return route_msg(fd, RTM_DELROUTE, 0, index, dst, prefix, 0);
}

struct route_ctx {
    struct weft_route *out;
    int max;
    int count;
};

static int on_route(struct nlmsghdr *h, void *ctx) {
    struct route_ctx *c = ctx;
    if (h->nlmsg_type != RTM_NEWROUTE) return 0;
    struct rtmsg *rt = NLMSG_DATA(h);
    if (rt->rtm_family != AF_INET || rt->rtm_type != RTN_UNICAST) return 0;
    uint32_t table = rt->rtm_table;
    struct weft_route r = {.prefix = rt->rtm_dst_len};
    int len = (int)RTM_PAYLOAD(h);
    for (struct rtattr *a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        switch (a->rta_type) {
        case RTA_DST: memcpy(&r.dst, RTA_DATA(a), 4); break;
        case RTA_GATEWAY: memcpy(&r.gw, RTA_DATA(a), 4); break;
        case RTA_OIF: r.oif = (int)*(uint32_t *)RTA_DATA(a); break;
        case RTA_TABLE: table = *(uint32_t *)RTA_DATA(a); break;
        default: break;
        }
    }
    if (table != RT_TABLE_MAIN) return 0;
    if (c->count < c->max) c->out[c->count++] = r;
    return 0;
}

int weft_nl_route_list(int fd, struct weft_route *out, int max) {
    char mem[128];
    struct nlbuf b;
    nl_init(&b, mem, sizeof mem, RTM_GETROUTE, NLM_F_DUMP);
    struct rtmsg *rt = nl_reserve(&b, sizeof *rt);
    rt->rtm_family = AF_INET;
    struct route_ctx c = {.out = out, .max = max, .count = 0};
    int rc = nl_talk(fd, b.h, on_route, &c);
    return rc < 0 ? rc : c.count;
}
