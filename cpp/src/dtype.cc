#include "smrt/dtype.h"

namespace smrt {
namespace {

struct DTypeNames {
  std::string_view name;
  std::string_view enum_name;
  std::size_t size;
};

// Indexed by DType value (TF_DataType); TensorFlow's own names for each.
constexpr DTypeNames kNames[] = {
    {"invalid", "DT_INVALID", 0},      {"float32", "DT_FLOAT", 4},
    {"float64", "DT_DOUBLE", 8},       {"int32", "DT_INT32", 4},
    {"uint8", "DT_UINT8", 1},          {"int16", "DT_INT16", 2},
    {"int8", "DT_INT8", 1},            {"string", "DT_STRING", 0},
    {"complex64", "DT_COMPLEX64", 8},  {"int64", "DT_INT64", 8},
    {"bool", "DT_BOOL", 1},            {"qint8", "DT_QINT8", 1},
    {"quint8", "DT_QUINT8", 1},        {"qint32", "DT_QINT32", 4},
    {"bfloat16", "DT_BFLOAT16", 2},    {"qint16", "DT_QINT16", 2},
    {"quint16", "DT_QUINT16", 2},      {"uint16", "DT_UINT16", 2},
    {"complex128", "DT_COMPLEX128", 16}, {"float16", "DT_HALF", 2},
    {"resource", "DT_RESOURCE", 0},    {"variant", "DT_VARIANT", 0},
    {"uint32", "DT_UINT32", 4},        {"uint64", "DT_UINT64", 8},
};
constexpr int kCount = sizeof(kNames) / sizeof(kNames[0]);

const DTypeNames& lookup(DType dtype) {
  const int i = static_cast<int>(dtype);
  return kNames[(i >= 0 && i < kCount) ? i : 0];
}

}  // namespace

std::string_view dtype_name(DType dtype) noexcept { return lookup(dtype).name; }
std::string_view dtype_enum_name(DType dtype) noexcept { return lookup(dtype).enum_name; }
std::size_t dtype_size(DType dtype) noexcept { return lookup(dtype).size; }

DType dtype_from_name(std::string_view name) noexcept {
  for (int i = 1; i < kCount; ++i) {
    if (kNames[i].name == name) return static_cast<DType>(i);
  }
  return DType::kInvalid;
}

}  // namespace smrt
