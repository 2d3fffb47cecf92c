/* The floor under hira's per-call latency where every side polls shared
 * memory (the command rings on a machine with free cores): round trips of a
 * 64-byte message through mailboxes in one shared mapping, between
 * processes that spin on them, in the shapes of socket_pingpong:
 *
 *   pair   A <-> C                      one mailbox each way, 2 processes
 *   relay  A <-> B <-> C                B forwards with one thread per
 *                                       direction (the router's two pumps)
 *   hira   as relay, plus the server's handoff: C's reading thread passes
 *          each message to a worker thread (the shadow) through one more
 *          mailbox, and the worker replies
 *
 * A hop is a copy of the message and a release store of a sequence number
 * that the next side spins on (pause between looks; after ~4096 looks it
 * yields, which only happens where threads outnumber free cores): this is
 * what the hops cost when nothing sleeps. Compare a shape's round
 * trip with hira's synchronous call on the same machine to see what is
 * hops and what is hira's own work.
 * Usage: shm_pingpong [ROUND_TRIPS=200000]
 * Prints one JSON object per shape on stdout. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kMsg = 64 };

/* One direction of one hop, alone on its cache lines. */
struct mailbox {
  _Alignas(128) _Atomic uint64_t seq;
  _Alignas(128) char msg[kMsg];
};

static void post(struct mailbox *m, const char *msg, uint64_t seq) {
  memcpy(m->msg, msg, kMsg);
  atomic_store_explicit(&m->seq, seq, memory_order_release);
}

/* Spins; yields between looks once a wait is long (a machine with fewer
 * cores than spinning threads would otherwise crawl). */
static void take(struct mailbox *m, char *msg, uint64_t seq) {
  for (int looks = 0; atomic_load_explicit(&m->seq, memory_order_acquire) < seq; looks++) {
    if (looks < 4096) {
      __builtin_ia32_pause();
    } else {
      sched_yield();
    }
  }
  memcpy(msg, m->msg, kMsg);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Mailboxes: 0 A->B (or A->C), 1 B->C, 2 C->B, 3 B->A (or C->A), 4 C's
 * reader -> C's worker. */
static struct mailbox *box;
static long trips;

struct forward {
  struct mailbox *from, *to;
};

static void *forward_loop(void *arg) {
  const struct forward *f = arg;
  char msg[kMsg];
  for (long i = 1; i <= trips; i++) {
    take(f->from, msg, (uint64_t)i);
    post(f->to, msg, (uint64_t)i);
  }
  return NULL;
}

/* The far end: replies to each message, itself or through a worker. */
static void serve(struct mailbox *in, struct mailbox *out, int handoff) {
  struct forward reader = {in, &box[4]}; /* lives as long as its thread */
  pthread_t t;
  if (handoff) {
    pthread_create(&t, NULL, forward_loop, &reader);
    in = &box[4];
  }
  char msg[kMsg];
  for (long i = 1; i <= trips; i++) {
    take(in, msg, (uint64_t)i);
    msg[0]++;
    post(out, msg, (uint64_t)i);
  }
  if (handoff) pthread_join(t, NULL);
}

static void relay(void) {
  struct forward down = {&box[0], &box[1]}, up = {&box[2], &box[3]};
  pthread_t t;
  pthread_create(&t, NULL, forward_loop, &up);
  forward_loop(&down);
  pthread_join(t, NULL);
}

static void run_shape(const char *name, int relayed, int handoff) {
  memset(box, 0, 5 * sizeof(*box));
  pid_t far = fork();
  if (far == 0) {
    serve(relayed ? &box[1] : &box[0], relayed ? &box[2] : &box[3], handoff);
    _exit(0);
  }
  pid_t mid = -1;
  if (relayed) {
    mid = fork();
    if (mid == 0) {
      relay();
      _exit(0);
    }
  }
  char msg[kMsg] = {0};
  const double start = now_s();
  for (long i = 1; i <= trips; i++) {
    post(&box[0], msg, (uint64_t)i);
    take(&box[3], msg, (uint64_t)i);
  }
  const double s = now_s() - start;
  waitpid(far, NULL, 0);
  if (mid > 0) waitpid(mid, NULL, 0);
  printf("{\"shape\":\"%s\",\"round_trips\":%ld,\"us_per_round_trip\":%.3f}\n", name, trips,
         s * 1e6 / (double)trips);
  fflush(stdout);
}

int main(int argc, char **argv) {
  trips = argc > 1 ? atol(argv[1]) : 200000;
  if (trips <= 0) {
    fprintf(stderr, "usage: shm_pingpong [ROUND_TRIPS]\n");
    return 2;
  }
  box = mmap(NULL, 5 * sizeof(*box), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (box == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  run_shape("pair", 0, 0);
  run_shape("relay", 1, 0);
  run_shape("hira-shaped", 1, 1);
  return 0;
}
