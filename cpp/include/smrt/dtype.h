// Tensor element types. The values are TensorFlow's TF_DataType values, so a DType converts
// to and from TF_DataType with a cast.
#pragma once

#include <complex>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace smrt {

enum class DType : int {
  kInvalid = 0,
  kFloat32 = 1,
  kFloat64 = 2,
  kInt32 = 3,
  kUInt8 = 4,
  kInt16 = 5,
  kInt8 = 6,
  kString = 7,
  kComplex64 = 8,
  kInt64 = 9,
  kBool = 10,
  kQInt8 = 11,
  kQUInt8 = 12,
  kQInt32 = 13,
  kBFloat16 = 14,
  kQInt16 = 15,
  kQUInt16 = 16,
  kUInt16 = 17,
  kComplex128 = 18,
  kFloat16 = 19,
  kResource = 20,
  kVariant = 21,
  kUInt32 = 22,
  kUInt64 = 23,
};

// TensorFlow's Python name ("float32", "string", ...); "invalid" for values it does not know.
std::string_view dtype_name(DType dtype) noexcept;
// The DataType enum name saved_model_cli prints ("DT_FLOAT", "DT_STRING", ...).
std::string_view dtype_enum_name(DType dtype) noexcept;
// The DType with TensorFlow's Python name `name`; kInvalid if there is none.
DType dtype_from_name(std::string_view name) noexcept;
// Bytes per element; 0 for string, resource, variant and unknown types.
std::size_t dtype_size(DType dtype) noexcept;

// The DType of a C++ element type, for Tensor::from_vector and Tensor::data<T>.
template <class T> struct dtype_of;
#define SMRT_DTYPE_OF(T, D) \
  template <> struct dtype_of<T> { static constexpr DType value = DType::D; };
SMRT_DTYPE_OF(float, kFloat32)
SMRT_DTYPE_OF(double, kFloat64)
SMRT_DTYPE_OF(std::int8_t, kInt8)
SMRT_DTYPE_OF(std::int16_t, kInt16)
SMRT_DTYPE_OF(std::int32_t, kInt32)
SMRT_DTYPE_OF(std::int64_t, kInt64)
SMRT_DTYPE_OF(std::uint8_t, kUInt8)
SMRT_DTYPE_OF(std::uint16_t, kUInt16)
SMRT_DTYPE_OF(std::uint32_t, kUInt32)
SMRT_DTYPE_OF(std::uint64_t, kUInt64)
SMRT_DTYPE_OF(bool, kBool)
SMRT_DTYPE_OF(std::complex<float>, kComplex64)
SMRT_DTYPE_OF(std::complex<double>, kComplex128)
#undef SMRT_DTYPE_OF

}  // namespace smrt
