/* diode/channel.c — opening the one-way channel: fd:N, fifo:PATH,
 * udp:HOST:PORT (unicast or multicast).
 *
 * A receiving channel is opened so that it cannot transmit: an fd or fifo
 * must be read-only, a UDP socket is bound and never connected. A sending
 * channel is write-only. A socket passed as fd:N is refused, since a socket
 * carries data both ways. */
#include "diode/diode.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int parse_fd(const char *s, int *fd)
{
    char *end;
    errno = 0;
    const long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 65535)
        return -EINVAL;
    *fd = (int)v;
    return 0;
}

/* "HOST:PORT" or "[V6]:PORT" */
static int split_hostport(const char *s, char *host, size_t hl, char *port, size_t pl)
{
    const char *colon;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -EINVAL;
        if ((size_t)(rb - s - 1) >= hl)
            return -EINVAL;
        memcpy(host, s + 1, (size_t)(rb - s - 1));
        host[rb - s - 1] = '\0';
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= hl || colon == s)
            return -EINVAL;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
    }
    if (strlen(colon + 1) == 0 || strlen(colon + 1) >= pl)
        return -EINVAL;
    snprintf(port, pl, "%s", colon + 1);
    return 0;
}

static int resolve(const char *spec, struct addrinfo **res, char *why, size_t whylen)
{
    char host[256], port[32];
    if (split_hostport(spec, host, sizeof host, port, sizeof port) < 0) {
        snprintf(why, whylen, "expected udp:HOST:PORT");
        return -EINVAL;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV};
    const int rc = getaddrinfo(host, port, &hints, res);
    if (rc != 0) {
        snprintf(why, whylen, "%s: %s", host, gai_strerror(rc));
        return -EINVAL;
    }
    return 0;
}

static int is_multicast(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return IN_MULTICAST(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_MULTICAST(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return 0;
}

/* A larger pipe (1 MiB, the default pipe-max-size) means far fewer
 * wake-ups between sender and receiver. Best effort: a file or a fifo
 * someone else sized stays as it is. */
static void grow_pipe(int fd)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode))
        fcntl(fd, F_SETPIPE_SZ, 1 << 20);
}

/* Open one end of a fifo (the receiver's read end, the sender's write end,
 * which blocks until a receiver opens the other) and make sure it is one. */
static int open_fifo(diode_chan *c, const char *path, int mode, char *why, size_t whylen)
{
    c->fd = open(path, mode | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (c->fd < 0 || fstat(c->fd, &st) < 0) {
        int e = errno;
        snprintf(why, whylen, "%s: %s", path, strerror(e));
        return -e;
    }
    if (!S_ISFIFO(st.st_mode)) {
        snprintf(why, whylen, "%s: not a fifo", path);
        close(c->fd);
        c->fd = -1;
        return -EINVAL;
    }
    grow_pipe(c->fd);
    return 0;
}

static int check_fd_kind(int fd, int want_acc, char *why, size_t whylen)
{
    struct stat st;
    const int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fstat(fd, &st) < 0) {
        snprintf(why, whylen, "fd %d: %s", fd, strerror(errno));
        return -EBADF;
    }
    if (S_ISSOCK(st.st_mode)) {
        snprintf(why, whylen, "fd %d is a socket, which carries data both ways; use a pipe", fd);
        return -EINVAL;
    }
    if ((fl & O_ACCMODE) != want_acc) {
        snprintf(why, whylen, "fd %d must be open %s", fd,
                 want_acc == O_RDONLY ? "read-only" : "write-only");
        return -EINVAL;
    }
    grow_pipe(fd);
    return 0;
}

int diode_chan_open_recv(const char *spec, int rcvbuf, diode_chan *c, char *why, size_t whylen)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    if (strncmp(spec, "fd:", 3) == 0) {
        c->kind = DIODE_CHAN_FD;
        c->is_stream = 1;
        if (parse_fd(spec + 3, &c->fd) < 0) {
            snprintf(why, whylen, "expected fd:N");
            return -EINVAL;
        }
        return check_fd_kind(c->fd, O_RDONLY, why, whylen);
    }
    if (strncmp(spec, "fifo:", 5) == 0) {
        const char *path = spec + 5;
        c->kind = DIODE_CHAN_FIFO;
        c->is_stream = 1;
        if (mkfifo(path, 0600) < 0 && errno != EEXIST) {
            snprintf(why, whylen, "%s: %s", path, strerror(errno));
            return -errno;
        }
        return open_fifo(c, path, O_RDONLY, why, whylen);
    }
    if (strncmp(spec, "udp:", 4) == 0) {
        c->kind = DIODE_CHAN_UDP;
        struct addrinfo *ai;
        int rc = resolve(spec + 4, &ai, why, whylen);
        if (rc < 0)
            return rc;
        c->fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
            snprintf(why, whylen, "socket: %s", strerror(errno));
            freeaddrinfo(ai);
            return -errno;
        }
        const int one = 1;
        setsockopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        /* As root SO_RCVBUFFORCE ignores net.core.rmem_max; otherwise the
         * kernel silently caps SO_RCVBUF, which we detect below. */
        if (setsockopt(c->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
            setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        socklen_t ol = sizeof c->rcvbuf;
        getsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &c->rcvbuf, &ol);
        const int mc = is_multicast(ai->ai_addr);
        rc = 0;
        if (mc && ai->ai_family == AF_INET) {
            struct sockaddr_in any = *(struct sockaddr_in *)ai->ai_addr;
            struct ip_mreqn mreq = {.imr_multiaddr = any.sin_addr};
            if (bind(c->fd, (struct sockaddr *)&any, sizeof any) < 0 ||
                setsockopt(c->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) < 0)
                rc = -errno;
        } else if (mc) {
            struct sockaddr_in6 any = *(struct sockaddr_in6 *)ai->ai_addr;
            struct ipv6_mreq mreq = {.ipv6mr_multiaddr = any.sin6_addr};
            if (bind(c->fd, (struct sockaddr *)&any, sizeof any) < 0 ||
                setsockopt(c->fd, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &mreq, sizeof mreq) < 0)
                rc = -errno;
        } else if (bind(c->fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            rc = -errno;
        }
        freeaddrinfo(ai);
        if (rc < 0) {
            snprintf(why, whylen, "bind %s: %s", spec + 4, strerror(-rc));
            close(c->fd);
            c->fd = -1;
            return rc;
        }
        return 0;
    }
    snprintf(why, whylen, "unknown channel '%s' (fd:N, fifo:PATH or udp:HOST:PORT)", spec);
    return -EINVAL;
}

int diode_chan_open_send(const char *spec, diode_chan *c, char *why, size_t whylen)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    if (strncmp(spec, "fd:", 3) == 0) {
        c->kind = DIODE_CHAN_FD;
        c->is_stream = 1;
        if (parse_fd(spec + 3, &c->fd) < 0) {
            snprintf(why, whylen, "expected fd:N");
            return -EINVAL;
        }
        return check_fd_kind(c->fd, O_WRONLY, why, whylen);
    }
    if (strncmp(spec, "fifo:", 5) == 0) {
        const char *path = spec + 5;
        c->kind = DIODE_CHAN_FIFO;
        c->is_stream = 1;
        return open_fifo(c, path, O_WRONLY, why, whylen);
    }
    if (strncmp(spec, "udp:", 4) == 0) {
        c->kind = DIODE_CHAN_UDP;
        struct addrinfo *ai;
        int rc = resolve(spec + 4, &ai, why, whylen);
        if (rc < 0)
            return rc;
        if (ai->ai_addrlen > sizeof c->addr) {
            freeaddrinfo(ai);
            snprintf(why, whylen, "address too long");
            return -EINVAL;
        }
        memcpy(c->addr, ai->ai_addr, ai->ai_addrlen);
        c->addrlen = ai->ai_addrlen;
        c->fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        freeaddrinfo(ai);
        if (c->fd < 0) {
            snprintf(why, whylen, "socket: %s", strerror(errno));
            return -errno;
        }
        const int sndbuf = 8 << 20;
        if (setsockopt(c->fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0)
            setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        /* Nothing is ever read from this socket: shrink its receive side. */
        const int tiny = 1;
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &tiny, sizeof tiny);
        return 0;
    }
    snprintf(why, whylen, "unknown channel '%s' (fd:N, fifo:PATH or udp:HOST:PORT)", spec);
    return -EINVAL;
}

void diode_chan_close(diode_chan *c)
{
    if (c->fd >= 0 && c->kind != DIODE_CHAN_FD)
        close(c->fd);
    c->fd = -1;
}
