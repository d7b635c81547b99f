#ifndef WEFT_CNI_SHIM_H
#define WEFT_CNI_SHIM_H
/*
 * The Linux calls the CNI plugin needs, over rtnetlink (no `ip` binary).
 *
 * Namespaces: a netlink socket stays bound to the network namespace it was created in, so
 * `weft_nl_open_in_netns` creates the socket on a short-lived helper thread that `setns`es into
 * the target namespace and then exits. The calling process never changes namespace; every
 * later request on that socket acts inside the target namespace.
 *
 * Every function returns 0 (or a positive value where documented) on success and a negative
 * errno on failure. Addresses are IPv4 in network byte order.
 */
#include <stdint.h>

/* A netlink route socket in the caller's network namespace. */
int weft_nl_open(void);
/* A netlink route socket inside the namespace at `netns_path` (e.g. /run/netns/x, /proc/PID/ns/net). */
int weft_nl_open_in_netns(const char *netns_path);
void weft_nl_close(int fd);
/* open(netns_path, O_RDONLY|O_CLOEXEC), for IFLA_NET_NS_FD. */
int weft_netns_open(const char *netns_path);

struct weft_link {
    int index;
    int mtu;
    unsigned int flags; /* IFF_* */
    unsigned char mac[6];
    int mac_len;
    char kind[16]; /* IFLA_INFO_KIND, e.g. "veth"; empty when none */
};

/* 1 and fills `out` when the link exists, 0 when it does not, negative errno on error. */
int weft_nl_link_get(int fd, const char *name, struct weft_link *out);
/* veth pair: `host_name` in fd's namespace, `peer_name` in the namespace of `peer_netns_fd`. */
int weft_nl_veth_create(int fd, const char *host_name, const char *peer_name, int peer_netns_fd, int mtu);
/* Sets IFF_UP (up != 0) and, when mtu > 0, the MTU. */
int weft_nl_link_set(int fd, int index, int up, int mtu);
int weft_nl_link_del(int fd, int index);
/* Adds (or replaces) addr/prefix on the link. */
int weft_nl_addr_add(int fd, int index, uint32_t addr, int prefix);

struct weft_addr {
    int index;
    uint32_t addr;
    int prefix;
};
/* Fills up to `max` IPv4 addresses of link `index` (0: all links); returns the count. */
int weft_nl_addr_list(int fd, int index, struct weft_addr *out, int max);

/* Adds or replaces a main-table route dst/prefix dev index [via gw]; scope link when gw == 0. */
int weft_nl_route_replace(int fd, int index, uint32_t dst, int prefix, uint32_t gw);
int weft_nl_route_del(int fd, int index, uint32_t dst, int prefix);

struct weft_route {
    uint32_t dst;
    int prefix;
    uint32_t gw;
    int oif;
};
/* Fills up to `max` IPv4 routes of the main table; returns the count. */
int weft_nl_route_list(int fd, struct weft_route *out, int max);

#endif
