// n elements on the stack when there are few, on the heap otherwise: the per-call path
// allocates nothing of its own for signatures and tensors of ordinary size.
#pragma once

#include <cstddef>
#include <memory>

namespace smrt::detail {

template <class T, std::size_t N = 16>
class SmallArray {
 public:
  // n value-initialized elements (zeros, empty handles). Only those n are made: value-
  // initializing all N on every call cost two `rep stos` per array, a few percent of a tiny call.
  explicit SmallArray(std::size_t n)
      : heap_(n > N ? std::make_unique<T[]>(n) : nullptr),
        data_(n > N ? heap_.get() : reinterpret_cast<T*>(small_)),
        size_(n) {
    if (n <= N) std::uninitialized_value_construct_n(data_, n);
  }
  ~SmallArray() {
    if (!heap_) std::destroy_n(data_, size_);
  }
  SmallArray(const SmallArray&) = delete;
  SmallArray& operator=(const SmallArray&) = delete;
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  T* data() { return data_; }
  std::size_t size() const { return size_; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }

 private:
  alignas(T) unsigned char small_[N * sizeof(T)];
  std::unique_ptr<T[]> heap_;
  T* data_;
  std::size_t size_;
};

}  // namespace smrt::detail
