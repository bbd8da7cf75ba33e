/* Counts the C heap allocations of a process, for tests/test_bound_call.py: LD_PRELOAD this,
 * read smrt_test_allocations() through ctypes, or set SMRT_TEST_ALLOCATIONS_FILE to get the
 * total written there at exit. glibc's own entry points do the allocating. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);

static atomic_long allocations;

long smrt_test_allocations(void) { return atomic_load(&allocations); }

void* malloc(size_t size) {
  atomic_fetch_add(&allocations, 1);
  return __libc_malloc(size);
}

void* calloc(size_t count, size_t size) {
  atomic_fetch_add(&allocations, 1);
  return __libc_calloc(count, size);
}

void* realloc(void* p, size_t size) {
  atomic_fetch_add(&allocations, 1);
  return __libc_realloc(p, size);
}

void* memalign(size_t alignment, size_t size) {
  atomic_fetch_add(&allocations, 1);
  return __libc_memalign(alignment, size);
}

void* aligned_alloc(size_t alignment, size_t size) { return memalign(alignment, size); }

int posix_memalign(void** out, size_t alignment, size_t size) {
  void* p = memalign(alignment, size);
  if (!p) return 12; /* ENOMEM */
  *out = p;
  return 0;
}

__attribute__((destructor)) static void report(void) {
  const char* path = getenv("SMRT_TEST_ALLOCATIONS_FILE");
  if (!path) return;
  FILE* f = fopen(path, "w");
  if (!f) return;
  fprintf(f, "%ld\n", atomic_load(&allocations));
  fclose(f);
}
