#ifndef WEFT_SHIM_H
#define WEFT_SHIM_H
/*
 * Linux system calls and ioctls for Weft's data plane (WeftDataPlane).
 *
 * Conventions: functions return >= 0 on success and -errno on failure (never a bare -1), so the
 * Swift side can name the call and the errno in one DataPlaneError. EINTR is retried inside.
 * Batches (weft_batch) are preallocated once per thread: no allocation per packet.
 */
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

int weft_shim_version(void);

/* ---- time ---- */
/* CLOCK_MONOTONIC in nanoseconds. */
int64_t weft_monotonic_ns(void);

/* ---- relaxed atomics on plain uint64_t counters (any thread) ---- */
static inline void weft_counter_add(uint64_t *p, uint64_t v) { __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
static inline uint64_t weft_counter_load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

/* ---- addresses ----
 * An endpoint as the Swift side sees it: family 4 or 6, 16 address bytes (IPv4 in the first 4,
 * network order), port in host order. */
typedef struct {
    int32_t family;
    uint16_t port;
    uint8_t addr[16];
} weft_endpoint;

/* ---- UDP ---- */
/* Opens a non-blocking UDP socket bound to `ep` (SO_REUSEADDR only when `reuse_addr`: for UDP
 * on Linux it lets a second socket bind the same port and silently split the traffic), asks for `bufbytes` of
 * receive and send buffer (SO_*BUFFORCE first, as root, then SO_*BUF). IPv6 sockets accept
 * IPv4-mapped peers only when bound to :: (IPV6_V6ONLY off). Returns the fd or -errno; on
 * failure *failed_call names the call ("socket", "bind", ...). */
int weft_udp_open(const weft_endpoint *ep, int bufbytes, int reuse_addr, const char **failed_call);
/* Bound port in host order, or -errno. */
int weft_udp_local_port(int fd);
/* Effective SO_RCVBUF / SO_SNDBUF (what the kernel reports, i.e. doubled), or -errno. */
int weft_udp_buffer(int fd, int receive);
/* One datagram. Returns bytes sent or -errno (EAGAIN is retried with poll for up to
 * `wait_ms`). */
int weft_udp_sendto(int fd, const void *buf, size_t len, const weft_endpoint *to, int wait_ms);

/* A preallocated ring of `count` message slots of `slot_bytes` each, with their iovecs,
 * mmsghdrs and sockaddr_storage, for recvmmsg/sendmmsg. */
typedef struct weft_batch weft_batch;
weft_batch *weft_batch_new(int count, int slot_bytes);
void weft_batch_free(weft_batch *b);
int weft_batch_count(const weft_batch *b);
int weft_batch_slot_bytes(const weft_batch *b);
uint8_t *weft_batch_slot(weft_batch *b, int i);
/* recvmmsg up to count messages without blocking. Returns the number received (0 when none
 * was waiting) or -errno. Truncated datagrams (MSG_TRUNC) get length -1. */
int weft_batch_recv(weft_batch *b, int fd);
int weft_batch_length(const weft_batch *b, int i);
void weft_batch_source(const weft_batch *b, int i, weft_endpoint *out);
/* Prepares slot i for sending: payload length and destination. */
void weft_batch_set(weft_batch *b, int i, int len, const weft_endpoint *to);
/* sendmmsg of slots [0, n). Retries partial sends; on EAGAIN waits for POLLOUT up to
 * `wait_ms` per attempt. Returns the number of messages the kernel took; *err gets the errno
 * that stopped it (0 if all went). A message the kernel refuses outright (e.g. EMSGSIZE,
 * ENETUNREACH) is skipped and counted in *refused. */
int weft_batch_send(weft_batch *b, int fd, int n, int wait_ms, int *err, int *refused);
/* With GSO on, weft_batch_send groups consecutive slots to the same destination with equal
 * lengths (the last may be shorter; at most 64 and 65,000 bytes) into one UDP_SEGMENT
 * super-datagram: one pass through the UDP/IP stack for the group. If the kernel refuses a
 * group (EINVAL/EMSGSIZE/EIO/EOPNOTSUPP) the batch turns GSO off for good and sends plainly. */
void weft_batch_set_gso(weft_batch *b, int on);
int weft_batch_gso(const weft_batch *b);
/* Remembers the socket's family (IPv4 destinations on an IPv6 socket become v4-mapped). */
void weft_batch_set_family(weft_batch *b, int fd);

/* ---- TUN ---- */
/* Opens /dev/net/tun as IFF_TUN | IFF_NO_PI with the requested name (may contain %d), non-
 * blocking and close-on-exec. Writes the actual name into name_out (IFNAMSIZ = 16 bytes).
 * Returns the fd or -errno; *failed_call names the call. */
/* offload != 0: try IFF_VNET_HDR with TUN_F_CSUM | TUN_F_TSO4, else (or if refused) a plain
   device; *offload_on says which one was opened. */
int weft_tun_open(const char *name, char *name_out, int offload, int *offload_on, const char **failed_call);
/* Sets IPv4 address/prefix, MTU, and IFF_UP on the interface (SIOCSIFADDR, SIOCSIFNETMASK,
 * SIOCSIFMTU, SIOCSIFFLAGS), in the calling thread's network namespace. Idempotent.
 * Returns 0 or -errno; *failed_call names the ioctl. */
int weft_tun_configure(const char *name, uint32_t addr_host_order, int prefix_len, int mtu, const char **failed_call);
/* Writes "1" to /proc/sys/net/ipv4/ip_forward (the calling thread's namespace) unless it reads 1
   already (so a read-only /proc/sys is fine then). 0 or -errno. */
int weft_enable_ip_forward(void);
/* read() one packet, non-blocking: bytes, 0 when none waiting (EAGAIN), or -errno. */
int weft_tun_read(int fd, void *buf, size_t cap);
/* write() one packet: bytes or -errno (EIO when the device is down, ENOBUFS, ...). */
/* vnet != 0: the device was opened with a virtio_net_hdr; one (all zero) is written first. */
int weft_tun_write(int fd, const void *buf, size_t len, int vnet);
/* write() one frame that already starts with its virtio_net_hdr (a device opened with
   IFF_VNET_HDR): bytes written or -errno (EINVAL when the kernel refuses its GSO header). */
int weft_tun_write_frame(int fd, const void *frame, size_t len);

/* Names the calling thread (first 15 bytes), for top -H / perf. */
int weft_set_thread_name(const char *name);

/* ---- waking threads ---- */
/* eventfd (non-blocking, close-on-exec), or -errno. */
int weft_eventfd(void);
int weft_eventfd_signal(int fd);
/* poll(fd, POLLIN) and wakefd together: 1 fd readable, 2 wakefd readable (stop), 0 timeout,
 * -errno. */
int weft_wait_readable(int fd, int wakefd, int timeout_ms);
int weft_close(int fd);

/* ---- namespaces (tests and tools) ---- */
/* setns(open(path), CLONE_NEWNET) for the calling thread only. 0 or -errno. */
int weft_enter_netns(const char *path);

#ifdef __cplusplus
}
#endif
#endif
