#include "smrt/tensor.h"

#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "tf_c_api.h"

namespace smrt {
namespace {

constexpr std::size_t kAlignment = kTensorAlignment;

int64_t element_count(const int64_t* dims, int rank) {
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) {
    if (dims[i] < 0) throw InvalidInputError("tensor dimension " + std::to_string(dims[i]) + " is negative");
    if (dims[i] != 0 && n > std::numeric_limits<int64_t>::max() / dims[i]) {
      throw InvalidInputError("tensor shape has more elements than fit in 64 bits");
    }
    n *= dims[i];
  }
  return n;
}

// String tensors own their TF_TStrings: TensorFlow calls this when the last reference to the
// buffer goes, so every element's heap storage is freed exactly once, whoever held it last.
void free_strings(void* data, std::size_t nbytes, void*) {
  auto* strings = static_cast<TF_TString*>(data);
  const auto& api = tf::api();
  for (std::size_t i = 0; i < nbytes / sizeof(TF_TString); ++i) api.TF_StringDealloc(&strings[i]);
  std::free(data);
}

}  // namespace

Tensor& Tensor::operator=(Tensor&& other) noexcept {
  if (this != &other) {
    if (tensor_) tf::api().TF_DeleteTensor(tensor_);
    tensor_ = other.release();
  }
  return *this;
}

Tensor::~Tensor() {
  if (tensor_) tf::api().TF_DeleteTensor(tensor_);
}

Tensor Tensor::allocate(DType dtype, const int64_t* dims, int rank) {
  const std::size_t size = dtype_size(dtype);
  if (size == 0) {
    throw InputTypeError("cannot allocate a " + std::string(dtype_name(dtype)) +
                         " tensor of plain memory");
  }
  const auto n = static_cast<std::size_t>(element_count(dims, rank));
  if (n > std::numeric_limits<std::size_t>::max() / size) {
    throw InvalidInputError("tensor is too large to allocate");
  }
  const auto& api = tf::api();
  Tensor t(api.TF_AllocateTensor(static_cast<int>(dtype), dims, rank, n * size));
  // When the memory cannot be had TF_AllocateTensor still returns a tensor, with no data.
  if (!t.get() || (n > 0 && api.TF_TensorData(t.get()) == nullptr)) {
    throw StatusError(ErrorCode::kResourceExhausted,
                      "out of memory allocating a " + std::to_string(n * size) + "-byte " +
                          std::string(dtype_name(dtype)) + " tensor");
  }
  return t;
}

Tensor Tensor::wrap(DType dtype, const int64_t* dims, int rank, void* data, std::size_t nbytes,
                    Deallocator deallocator, void* arg) {
  // The deallocator runs exactly once, also when this throws.
  const std::size_t size = dtype_size(dtype);
  int64_t n = -1;
  try {
    n = element_count(dims, rank);
  } catch (...) {
    deallocator(data, nbytes, arg);
    throw;
  }
  if (size == 0 || static_cast<uint64_t>(n) > std::numeric_limits<std::size_t>::max() / size ||
      nbytes != static_cast<std::size_t>(n) * size) {
    deallocator(data, nbytes, arg);
    throw InvalidInputError("Tensor::wrap: " + std::to_string(nbytes) + " bytes do not hold " +
                            std::to_string(n) + " elements of " + std::string(dtype_name(dtype)));
  }
  TF_Tensor* t = tf::api().TF_NewTensor(static_cast<int>(dtype), dims, rank, data, nbytes,
                                        deallocator, arg);
  // TF_NewTensor has already called the deallocator when it returns null.
  if (!t) throw StatusError(ErrorCode::kInternal, "TensorFlow refused to wrap a tensor buffer");
  return Tensor(t);
}

Tensor Tensor::strings(const int64_t* dims, int rank) {
  const auto n = static_cast<std::size_t>(element_count(dims, rank));
  if (n > (std::numeric_limits<std::size_t>::max() - kAlignment) / sizeof(TF_TString)) {
    throw InvalidInputError("string tensor is too large to allocate");
  }
  const std::size_t nbytes = n * sizeof(TF_TString);
  // Aligned so TF_NewTensor adopts the buffer instead of memcpy'ing live TF_TStrings.
  const std::size_t padded = (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  void* data = std::aligned_alloc(kAlignment, padded == 0 ? kAlignment : padded);
  if (!data) throw StatusError(ErrorCode::kResourceExhausted, "out of memory for a string tensor");
  const auto& api = tf::api();
  auto* strings = static_cast<TF_TString*>(data);
  for (std::size_t i = 0; i < n; ++i) api.TF_StringInit(&strings[i]);
  TF_Tensor* t = api.TF_NewTensor(static_cast<int>(DType::kString), dims, rank, data, nbytes,
                                  free_strings, nullptr);
  if (!t) throw StatusError(ErrorCode::kInternal, "TensorFlow refused a string tensor");
  return Tensor(t);
}

Tensor Tensor::strings(const std::vector<int64_t>& shape, const std::vector<std::string_view>& values) {
  Tensor t = strings(shape.data(), static_cast<int>(shape.size()));
  if (static_cast<std::size_t>(t.num_elements()) != values.size()) {
    throw InvalidInputError("Tensor::strings: shape has " + std::to_string(t.num_elements()) +
                            " elements but " + std::to_string(values.size()) + " values were given");
  }
  for (std::size_t i = 0; i < values.size(); ++i) t.set_string(static_cast<int64_t>(i), values[i]);
  return t;
}

bool Tensor::sole_owner() {
  // TF_TensorMaybeMove succeeds only for a buffer TensorFlow allocated and nobody else holds.
  TF_Tensor* moved = tf::api().TF_TensorMaybeMove(tensor_);
  if (!moved) return false;
  tensor_ = moved;
  return true;
}

DType Tensor::dtype() const { return static_cast<DType>(tf::api().TF_TensorType(tensor_)); }
int Tensor::rank() const { return tf::api().TF_NumDims(tensor_); }
int64_t Tensor::dim(int index) const { return tf::api().TF_Dim(tensor_, index); }
int64_t Tensor::num_elements() const { return tf::api().TF_TensorElementCount(tensor_); }
std::size_t Tensor::byte_size() const { return tf::api().TF_TensorByteSize(tensor_); }
void* Tensor::raw_data() const { return tf::api().TF_TensorData(tensor_); }

std::vector<int64_t> Tensor::shape() const {
  std::vector<int64_t> dims(static_cast<std::size_t>(rank()));
  for (std::size_t i = 0; i < dims.size(); ++i) dims[i] = dim(static_cast<int>(i));
  return dims;
}

void Tensor::check_dtype(DType expected) const {
  if (!tensor_) throw InvalidInputError("the tensor is empty (moved from)");
  if (dtype() != expected) {
    throw InputTypeError("tensor holds " + std::string(dtype_name(dtype())) + ", not " +
                         std::string(dtype_name(expected)));
  }
}

std::string_view Tensor::string_at(int64_t index) const {
  check_dtype(DType::kString);
  if (index < 0 || index >= num_elements()) throw InvalidInputError("string index out of range");
  const auto* s = static_cast<const TF_TString*>(raw_data()) + index;
  const auto& api = tf::api();
  return {api.TF_StringGetDataPointer(s), api.TF_StringGetSize(s)};
}

void Tensor::set_string(int64_t index, std::string_view value) {
  check_dtype(DType::kString);
  if (index < 0 || index >= num_elements()) throw InvalidInputError("string index out of range");
  tf::api().TF_StringCopy(static_cast<TF_TString*>(raw_data()) + index, value.data(), value.size());
}

}  // namespace smrt
