/* The transport floor under hira's per-call latency: round trips of a small
 * message over Unix stream sockets (socketpair) between processes, in three
 * shapes of increasing resemblance to a hira call:
 *
 *   pair   A <-> C                      1 socket each way, 2 processes
 *   relay  A <-> B <-> C                2 sockets each way; B forwards with
 *                                       one thread per direction (the router)
 *   hira   as relay, plus hira's thread handoffs: A's caller sends and waits on
 *          a condition variable that A's receiver thread signals; C's main
 *          thread reads and hands the message to a worker thread (mutex +
 *          condition variable) that writes the reply (the server's shadow)
 *
 * Nothing is computed or encoded: this is the cost of the hops alone. Each
 * relay stores and forwards whole messages, like hira. Buffers are reused,
 * unless the 4th argument is "fresh": then every receiving end mallocs a new
 * buffer per message and frees it after use, as hira's Channel::recv does
 * (for large messages glibc then maps fresh pages, which fault on first use).
 * Usage: socket_pingpong [ROUND_TRIPS=20000] [REQUEST_BYTES=64]
 *                        [REPLY_BYTES=REQUEST_BYTES] [reuse|fresh]
 * (a large request and a small reply is the shape of a blocking write).
 * Prints one JSON object per shape on stdout. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static size_t req_bytes = 64, rep_bytes = 64;
static int fresh = 0;

/* Reads one message of n bytes into *buf; in "fresh" mode into a new buffer. */
static int read_full(int fd, void *buf, size_t n);
static int recv_msg(int fd, char **buf, size_t n) {
  if (fresh) {
    free(*buf);
    *buf = malloc(n);
    if (*buf == NULL) return 0;
  }
  return read_full(fd, *buf, n);
}

static char *alloc_buf(void) {
  const size_t n = req_bytes > rep_bytes ? req_bytes : rep_bytes;
  char *b = malloc(n);
  if (b == NULL) {
    perror("malloc");
    exit(1);
  }
  memset(b, 1, n);
  return b;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* 1 on a full message, 0 on end of stream. */
static int read_full(int fd, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = read(fd, (char *)buf + got, n - got);
    if (r <= 0) return 0;
    got += (size_t)r;
  }
  return 1;
}

static int write_full(int fd, const void *buf, size_t n) {
  size_t put = 0;
  while (put < n) {
    const ssize_t r = write(fd, (const char *)buf + put, n - put);
    if (r <= 0) return 0;
    put += (size_t)r;
  }
  return 1;
}

static void make_pair(int sv[2]) {
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
    perror("socketpair");
    exit(1);
  }
}

/* ---- C: the echo end ---------------------------------------------------- */

static void echo_loop(int fd) {
  char *buf = alloc_buf();
  while (recv_msg(fd, &buf, req_bytes) && write_full(fd, buf, rep_bytes)) {
  }
  free(buf);
}

/* Main thread reads, a worker thread replies (the server's shadow thread). */
typedef struct {
  int fd;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int pending; /* messages read but not yet answered */
  int closed;
  char *buf;
} Handoff;

static void *shadow_worker(void *arg) {
  Handoff *h = arg;
  for (;;) {
    pthread_mutex_lock(&h->mu);
    while (h->pending == 0 && !h->closed) pthread_cond_wait(&h->cv, &h->mu);
    if (h->pending == 0) {
      pthread_mutex_unlock(&h->mu);
      return NULL;
    }
    --h->pending;
    pthread_mutex_unlock(&h->mu);
    if (!write_full(h->fd, h->buf, rep_bytes)) return NULL;
  }
}

static void echo_with_shadow(int fd) {
  static Handoff h;
  h.fd = fd;
  h.buf = alloc_buf();
  pthread_mutex_init(&h.mu, NULL);
  pthread_cond_init(&h.cv, NULL);
  pthread_t t;
  pthread_create(&t, NULL, shadow_worker, &h);
  char *buf = alloc_buf();
  while (recv_msg(fd, &buf, req_bytes)) {
    pthread_mutex_lock(&h.mu);
    ++h.pending;
    pthread_cond_signal(&h.cv);
    pthread_mutex_unlock(&h.mu);
  }
  pthread_mutex_lock(&h.mu);
  h.closed = 1;
  pthread_cond_signal(&h.cv);
  pthread_mutex_unlock(&h.mu);
  pthread_join(t, NULL);
}

/* ---- B: the relay (one thread per direction, like the router's pumps) ---- */

typedef struct {
  int from, to;
  size_t bytes;
} Pump;

static void *pump(void *arg) {
  Pump *p = arg;
  char *buf = alloc_buf();
  while (recv_msg(p->from, &buf, p->bytes) && write_full(p->to, buf, p->bytes)) {
  }
  shutdown(p->to, SHUT_WR);
  free(buf);
  return NULL;
}

static void relay(int guest_fd, int server_fd) {
  Pump up = {guest_fd, server_fd, req_bytes}, down = {server_fd, guest_fd, rep_bytes};
  pthread_t t;
  pthread_create(&t, NULL, pump, &down);
  pump(&up);
  pthread_join(t, NULL);
}

/* ---- A: the caller -------------------------------------------------------- */

typedef struct {
  int fd;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  long replies;
} Receiver;

static void *receiver_loop(void *arg) {
  Receiver *r = arg;
  char *buf = alloc_buf();
  while (recv_msg(r->fd, &buf, rep_bytes)) {
    pthread_mutex_lock(&r->mu);
    ++r->replies;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
  }
  free(buf);
  return NULL;
}

static double call_direct(int fd, int n) {
  char *buf = alloc_buf();
  for (int i = 0; i < n / 10 + 1; ++i) { /* warm-up */
    write_full(fd, buf, req_bytes);
    read_full(fd, buf, rep_bytes);
  }
  const double t0 = now_s();
  for (int i = 0; i < n; ++i) {
    if (!write_full(fd, buf, req_bytes) || !read_full(fd, buf, rep_bytes)) exit(1);
  }
  const double t = now_s() - t0;
  free(buf);
  return t;
}

static double call_via_receiver(int fd, int n) {
  static Receiver r;
  r.fd = fd;
  pthread_mutex_init(&r.mu, NULL);
  pthread_cond_init(&r.cv, NULL);
  pthread_t rt;
  pthread_create(&rt, NULL, receiver_loop, &r);
  char *buf = alloc_buf();
  const int warm = n / 10 + 1;
  double t0 = 0;
  for (int i = 0; i < warm + n; ++i) {
    if (i == warm) t0 = now_s();
    if (!write_full(fd, buf, req_bytes)) exit(1);
    pthread_mutex_lock(&r.mu);
    while (r.replies <= i) pthread_cond_wait(&r.cv, &r.mu);
    pthread_mutex_unlock(&r.mu);
  }
  const double t = now_s() - t0;
  shutdown(fd, SHUT_WR);
  pthread_join(rt, NULL);
  free(buf);
  return t;
}

static pid_t spawn(void (*fn)(int, int), int a, int b, const int *close_fds, int nclose) {
  const pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    exit(1);
  }
  if (pid == 0) {
    for (int i = 0; i < nclose; ++i) close(close_fds[i]);
    fn(a, b);
    _exit(0);
  }
  return pid;
}

static void run_echo(int fd, int unused) {
  (void)unused;
  echo_loop(fd);
}
static void run_echo_shadow(int fd, int unused) {
  (void)unused;
  echo_with_shadow(fd);
}

static void shape(const char *name, int n) {
  const int is_pair = strcmp(name, "pair") == 0, is_hira = strcmp(name, "hira") == 0;
  int ab[2], bc[2];
  make_pair(ab);
  pid_t pids[2];
  int np = 0;
  double t;
  if (is_pair) {
    const int cl[] = {ab[0]};
    pids[np++] = spawn(run_echo, ab[1], 0, cl, 1);
    close(ab[1]);
  } else {
    make_pair(bc);
    const int cl_c[] = {ab[0], ab[1], bc[0]};
    pids[np++] = spawn(is_hira ? run_echo_shadow : run_echo, bc[1], 0, cl_c, 3);
    const int cl_b[] = {ab[0], bc[1]};
    pids[np++] = spawn(relay, ab[1], bc[0], cl_b, 2);
    close(ab[1]);
    close(bc[0]);
    close(bc[1]);
  }
  t = is_hira ? call_via_receiver(ab[0], n) : call_direct(ab[0], n);
  close(ab[0]);
  for (int i = 0; i < np; ++i) waitpid(pids[i], NULL, 0);
  printf("{\"bench\":\"socket\",\"shape\":\"%s\",\"buffers\":\"%s\",\"request_bytes\":%zu,"
         "\"reply_bytes\":%zu,\"round_trips\":%d,\"us_per_round_trip\":%.3f,"
         "\"request_gbps\":%.4f}\n",
         name, fresh ? "fresh" : "reuse", req_bytes, rep_bytes, n, t / n * 1e6, (double)req_bytes * n / t / 1e9);
  fflush(stdout);
}

int main(int argc, char **argv) {
  const int n = argc > 1 ? atoi(argv[1]) : 20000;
  if (argc > 2) req_bytes = rep_bytes = (size_t)atoll(argv[2]);
  if (argc > 3) rep_bytes = (size_t)atoll(argv[3]);
  if (argc > 4) fresh = strcmp(argv[4], "fresh") == 0;
  if (n <= 0 || req_bytes == 0 || rep_bytes == 0) {
    fprintf(stderr, "usage: %s [ROUND_TRIPS=20000] [REQUEST_BYTES=64] [REPLY_BYTES=REQUEST]"
            " [reuse|fresh]\n",
            argv[0]);
    return 2;
  }
  shape("pair", n);
  shape("relay", n);
  shape("hira", n);
  return 0;
}
