#include "aligned_memory.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "numpy_api.h"
#include "smrt/tensor.h"

namespace smrt::bindings {
namespace {

constexpr std::size_t kAlignment = kTensorAlignment;

// Stored just before each aligned block: what to free, and the size realloc must copy.
struct Header {
  void* raw;
  std::size_t size;
};
constexpr std::size_t kSlack = kAlignment + sizeof(Header);

Header* header_of(void* data) { return static_cast<Header*>(data) - 1; }

void* place(void* raw, std::size_t size) {
  if (!raw) return nullptr;
  const auto start = reinterpret_cast<std::uintptr_t>(raw) + sizeof(Header);
  auto* data = reinterpret_cast<void*>((start + kAlignment - 1) & ~(kAlignment - 1));
  *header_of(data) = {raw, size};
  return data;
}

void* aligned_malloc(void*, std::size_t size) {
  return size > SIZE_MAX - kSlack ? nullptr : place(std::malloc(size + kSlack), size);
}

void* aligned_calloc(void*, std::size_t count, std::size_t elsize) {
  if (elsize != 0 && count > (SIZE_MAX - kSlack) / elsize) return nullptr;
  const std::size_t size = count * elsize;
  return place(std::calloc(1, size + kSlack), size);
}

void aligned_free(void*, void* data, std::size_t) {
  if (data) std::free(header_of(data)->raw);
}

void* aligned_realloc(void* ctx, void* data, std::size_t size) {
  if (!data) return aligned_malloc(ctx, size);
  void* moved = aligned_malloc(ctx, size);
  if (!moved) return nullptr;  // like realloc: the old block stays valid
  const std::size_t old_size = header_of(data)->size;
  std::memcpy(moved, data, old_size < size ? old_size : size);
  aligned_free(ctx, data, old_size);
  return moved;
}

PyDataMem_Handler g_handler = {
    "smrt_aligned_64",
    1,
    {nullptr, aligned_malloc, aligned_calloc, aligned_realloc, aligned_free},
};

}  // namespace

PyObject* aligned_handler_capsule() { return PyCapsule_New(&g_handler, "mem_handler", nullptr); }

}  // namespace smrt::bindings
