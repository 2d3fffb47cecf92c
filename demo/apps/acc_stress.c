/* acc_stress: tiny driver for fault-injection tests.
 *
 *   acc_stress sleep MS    one long kernel; lets a test kill the device (or
 *                          the remoting server) while a call is in flight
 *   acc_stress loop COUNT  many tiny calls, for call-overhead and churn tests
 *   acc_stress fork        calls in a forked child, then in the parent again
 *   acc_stress async MS    one asynchronous call, then MS ms without calls
 *
 * Exit codes: 0 success, 1 usage error, 2 a call failed. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "acc.h"

/* Parses a non-negative decimal into *out; returns 0 on success. */
static int parse_ull(const char *s, unsigned long long max, unsigned long long *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max) return -1;
  *out = v;
  return 0;
}

static int cmd_sleep(unsigned ms) {
  acc_context ctx;
  acc_status st = acc_context_create("stress", &ctx);
  if (st != ACC_SUCCESS) {
    printf("status=%d\n", (int)st);
    return 2;
  }
  /* Flushed so a test watching stdout knows the call is about to start. */
  printf("sleeping\n");
  fflush(stdout);
  st = acc_sleep(ctx, ms);
  printf("status=%d\n", (int)st);
  fflush(stdout);
  /* Best effort: after a failure the context may be unusable. */
  acc_context_destroy(ctx);
  return st == ACC_SUCCESS ? 0 : 2;
}

static int cmd_loop(unsigned long long count) {
  for (unsigned long long i = 0; i < count; i++) {
    int major, minor;
    acc_status st = acc_get_version(&major, &minor);
    if (st != ACC_SUCCESS) {
      printf("status=%d\n", (int)st);
      return 2;
    }
  }
  printf("ok\n");
  return 0;
}

/* Uses the API, forks, uses it in the child, then in the parent again. */
static int cmd_fork(void) {
  acc_context ctx;
  if (acc_context_create("parent", &ctx) != ACC_SUCCESS) return 2;
  const pid_t pid = fork();
  if (pid < 0) return 2;
  if (pid == 0) {
    int major = 0, minor = 0;
    const acc_status s = acc_get_version(&major, &minor);
    printf("child: acc_get_version=%d %d.%d\n", (int)s, major, minor);
    fflush(stdout);
    _exit(s == ACC_SUCCESS ? 0 : 3);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  const int count = acc_context_count();
  const acc_status s = acc_context_destroy(ctx);
  printf("parent: child exit=%d contexts=%d destroy=%d\n",
         WIFEXITED(status) ? WEXITSTATUS(status) : -1, count, (int)s);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 && count == 1 && s == ACC_SUCCESS ? 0 : 2;
}

/* An async call followed by nothing: it must still run while the program
 * makes no further call (hira sends async calls in batches). */
static int cmd_async(unsigned ms) {
  acc_context ctx;
  acc_buffer x, y;
  if (acc_context_create("async", &ctx) != ACC_SUCCESS ||
      acc_buffer_create(ctx, 64 * sizeof(float), &x) != ACC_SUCCESS ||
      acc_buffer_create(ctx, 64 * sizeof(float), &y) != ACC_SUCCESS) {
    return 2;
  }
  if (acc_saxpy(ctx, 2.0f, x, y, 64) != ACC_SUCCESS) return 2;
  printf("sent\n");
  fflush(stdout);
  struct timespec t = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
  return 0;
}

int main(int argc, char **argv) {
  unsigned long long v;
  if (argc == 3 && strcmp(argv[1], "sleep") == 0 && parse_ull(argv[2], 0xffffffffu, &v) == 0) {
    return cmd_sleep((unsigned)v);
  }
  if (argc == 3 && strcmp(argv[1], "loop") == 0 && parse_ull(argv[2], ~0ull, &v) == 0) {
    return cmd_loop(v);
  }
  if (argc == 2 && strcmp(argv[1], "fork") == 0) return cmd_fork();
  if (argc == 3 && strcmp(argv[1], "async") == 0 && parse_ull(argv[2], 600000, &v) == 0) {
    return cmd_async((unsigned)v);
  }
  fprintf(stderr, "usage: %s sleep MS | loop COUNT | fork | async MS\n", argv[0]);
  return 1;
}
