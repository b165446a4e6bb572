/*
 * Holds N MiB of memory and keeps dirtying it, like a busy cache: the workload of the
 * memory benchmarks. Each 4 KiB page is half pseudo-random bytes and half a repeated
 * pattern, so compression has something to do but cannot make it vanish. Every 100 ms
 * it rewrites a slice of the pages (DIRTY_PCT per second of the whole), so memory
 * changes while a copy is being taken, as it would in a real service.
 * Usage: memhog MIB [DIRTY_PCT_PER_S]
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t s = 88172645463325252ULL;
static uint64_t next(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }

static void fill(unsigned char *p) {
  uint64_t *w = (uint64_t *)p;
  for (int i = 0; i < 256; i++) w[i] = next();      /* 2 KiB random */
  memset(p + 2048, 0x5a, 2048);                      /* 2 KiB pattern */
}

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? strtoul(argv[1], 0, 10) : 256;
  unsigned pct = argc > 2 ? strtoul(argv[2], 0, 10) : 10;
  size_t pages = mib * 256;
  unsigned char *mem = malloc(pages * 4096);
  if (!mem) return 1;
  for (size_t i = 0; i < pages; i++) fill(mem + i * 4096);
  size_t per_tick = pages * pct / 1000; /* 10 ticks a second */
  size_t at = 0;
  struct timespec t = {0, 100 * 1000 * 1000};
  for (;;) {
    for (size_t i = 0; i < per_tick; i++) { fill(mem + at * 4096); at = (at + 1) % pages; }
    nanosleep(&t, 0);
  }
}
