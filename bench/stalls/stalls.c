// Host stalls on one CPU: how late that CPU wakes a real-time thread that
// sleeps a millisecond at a time. With SCHED_FIFO the thread runs as soon as it
// wakes, before the server pinned beside it, so a wake-up later than STALL_US
// means the CPU itself ran nothing of this machine's for that long (the
// hypervisor ran another guest) or the kernel kept interrupts off.
//
//   stalls [STALL_US=500]   pinned by the caller (taskset -c 0 stalls)
//
// Prints "fifo 1" (or "fifo 0": not permitted, an ordinary thread, whose own
// scheduling delays then count as stalls too), then one line per stall:
// "<CLOCK_MONOTONIC ms when it ended> <ms late>". Ends when stdin closes or on SIGTERM.
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  double stall_ms = (argc > 1 ? atof(argv[1]) : 500) / 1000;
  struct sched_param param = {.sched_priority = 1};
  int fifo = sched_setscheduler(0, SCHED_FIFO, &param) == 0;
  printf("fifo %d\n", fifo);
  fflush(stdout);
  struct pollfd in = {.fd = 0, .events = POLLIN};
  for (;;) {
    double before = now_ms();
    // poll on stdin with a 1 ms timeout: the sleep, and the end when the parent goes away (EOF or POLLHUP).
    int ready = poll(&in, 1, 1);
    if (ready > 0) {
      char buf[64];
      if (read(0, buf, sizeof buf) <= 0) return 0;
    }
    double after = now_ms();
    double late = after - before - 1;
    if (late >= stall_ms) {
      printf("%.3f %.3f\n", after, late);
      fflush(stdout);
    }
  }
}
