// smrt::Tensor: an owning handle to a TF_Tensor (TensorFlow's C tensor), move-only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "smrt/dtype.h"
#include "smrt/errors.h"

struct TF_Tensor;

namespace smrt {

// TF_TensorDefaultAlignment(): TensorFlow adopts memory aligned to this without a copy and copies
// anything less aligned.
inline constexpr std::size_t kTensorAlignment = 64;

class Tensor {
 public:
  // Called by TensorFlow when it no longer needs memory given to Tensor::wrap.
  using Deallocator = void (*)(void* data, std::size_t nbytes, void* arg);

  Tensor() noexcept = default;
  explicit Tensor(TF_Tensor* adopt) noexcept : tensor_(adopt) {}
  Tensor(Tensor&& other) noexcept : tensor_(other.release()) {}
  Tensor& operator=(Tensor&& other) noexcept;
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;
  ~Tensor();

  // A new tensor with uninitialized contents, aligned as TensorFlow prefers (numeric dtypes).
  static Tensor allocate(DType dtype, const int64_t* dims, int rank);
  static Tensor allocate(DType dtype, const std::vector<int64_t>& shape) {
    return allocate(dtype, shape.data(), static_cast<int>(shape.size()));
  }
  // Caller-owned memory, without a copy when `data` is 64-byte aligned (TensorFlow copies it
  // otherwise). `deallocator(data, nbytes, arg)` runs once TensorFlow is done with it, which
  // may be after this Tensor is gone and on another thread.
  static Tensor wrap(DType dtype, const int64_t* dims, int rank, void* data, std::size_t nbytes,
                     Deallocator deallocator, void* arg);
  // A string tensor of empty strings; fill it with set_string.
  static Tensor strings(const int64_t* dims, int rank);
  static Tensor strings(const std::vector<int64_t>& shape, const std::vector<std::string_view>& values);

  template <class T>
  static Tensor from_vector(const std::vector<int64_t>& shape, const std::vector<T>& values);
  template <class T>
  static Tensor scalar(T value) { return from_vector<T>({}, {value}); }

  explicit operator bool() const noexcept { return tensor_ != nullptr; }
  DType dtype() const;
  int rank() const;
  int64_t dim(int index) const;
  std::vector<int64_t> shape() const;
  int64_t num_elements() const;
  std::size_t byte_size() const;
  void* raw_data() const;
  template <class T> T* data() const;
  // Element i of a string tensor (a view into the tensor).
  std::string_view string_at(int64_t index) const;
  void set_string(int64_t index, std::string_view value);

  // True if this Tensor holds the only reference to a buffer TensorFlow allocated, so writing
  // to it changes nothing else (an output can share a graph constant, a variable or an input).
  bool sole_owner();

  TF_Tensor* get() const noexcept { return tensor_; }
  TF_Tensor* release() noexcept {
    TF_Tensor* t = tensor_;
    tensor_ = nullptr;
    return t;
  }

 private:
  void check_dtype(DType expected) const;
  TF_Tensor* tensor_ = nullptr;
};

template <class T>
Tensor Tensor::from_vector(const std::vector<int64_t>& shape, const std::vector<T>& values) {
  static_assert(!std::is_same_v<T, bool>, "use std::vector<uint8_t> and DType::kBool via allocate");
  Tensor t = allocate(dtype_of<T>::value, shape);
  if (static_cast<std::size_t>(t.num_elements()) != values.size()) {
    throw InvalidInputError("Tensor::from_vector: shape has " + std::to_string(t.num_elements()) +
                            " elements but " + std::to_string(values.size()) + " values were given");
  }
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}

template <class T>
T* Tensor::data() const {
  check_dtype(dtype_of<T>::value);
  return static_cast<T*>(raw_data());
}

}  // namespace smrt
