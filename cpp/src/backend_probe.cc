// "auto": whether another backend's outputs match TensorFlow's on one probe input.
#include <cmath>
#include <cstring>
#include <vector>

#include "backend.h"

namespace smrt::detail {
namespace {

float half_to_float(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
  float value;
  if (exponent == 0) value = std::ldexp(static_cast<float>(mantissa), -24);
  else if (exponent == 31) value = mantissa ? NAN : INFINITY;
  else value = std::ldexp(static_cast<float>(mantissa | 0x400), static_cast<int>(exponent) - 25);
  return sign ? -value : value;
}

// Element i of a numeric tensor, as a double.
double element(const Tensor& t, int64_t i) {
  const auto* p = static_cast<const unsigned char*>(t.raw_data());
  switch (t.dtype()) {
    case DType::kFloat32: return reinterpret_cast<const float*>(p)[i];
    case DType::kFloat64: return reinterpret_cast<const double*>(p)[i];
    case DType::kFloat16: return half_to_float(reinterpret_cast<const uint16_t*>(p)[i]);
    case DType::kBFloat16: {
      const uint32_t bits = static_cast<uint32_t>(reinterpret_cast<const uint16_t*>(p)[i]) << 16;
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    }
    case DType::kInt8: return reinterpret_cast<const int8_t*>(p)[i];
    case DType::kInt16: return reinterpret_cast<const int16_t*>(p)[i];
    case DType::kInt32: return reinterpret_cast<const int32_t*>(p)[i];
    case DType::kInt64: return static_cast<double>(reinterpret_cast<const int64_t*>(p)[i]);
    case DType::kUInt8:
    case DType::kBool: return p[i];
    case DType::kUInt16: return reinterpret_cast<const uint16_t*>(p)[i];
    case DType::kUInt32: return reinterpret_cast<const uint32_t*>(p)[i];
    case DType::kUInt64: return static_cast<double>(reinterpret_cast<const uint64_t*>(p)[i]);
    default: throw InputTypeError("cannot compare " + std::string(dtype_name(t.dtype())) + " outputs");
  }
}

// Input `k` of the probe: unknown dimensions 1, values spread over [-1, 1) for floats and
// small non-negative numbers for integers (valid indices for most lookups).
Tensor probe_input(const TensorSpec& spec, std::size_t k) {
  std::vector<int64_t> shape;
  if (spec.unknown_rank) shape = {1};
  for (int64_t d : spec.shape) shape.push_back(d < 0 ? 1 : d);
  Tensor t = Tensor::allocate(spec.dtype, shape);
  auto* p = static_cast<unsigned char*>(t.raw_data());
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    const auto step = static_cast<int64_t>((i * 7 + static_cast<int64_t>(k) * 3) % 11);
    const double real = static_cast<double>(step) / 5.5 - 1.0;
    const int64_t integer = step % 4;
    switch (spec.dtype) {
      case DType::kFloat32: reinterpret_cast<float*>(p)[i] = static_cast<float>(real); break;
      case DType::kFloat64: reinterpret_cast<double*>(p)[i] = real; break;
      case DType::kFloat16:  // small integers and halves are exact in half precision
      case DType::kBFloat16: {
        const float f = static_cast<float>(integer) * 0.5f - 0.5f;
        uint32_t bits;
        std::memcpy(&bits, &f, 4);
        uint16_t h = static_cast<uint16_t>(bits >> 16);  // bfloat16: the upper half
        if (spec.dtype == DType::kFloat16) {
          static const uint16_t kHalves[] = {0xB800, 0x0000, 0x3800, 0x3C00};  // -0.5, 0, 0.5, 1
          h = kHalves[integer];
        }
        reinterpret_cast<uint16_t*>(p)[i] = h;
        break;
      }
      case DType::kBool: p[i] = static_cast<unsigned char>(integer % 2); break;
      default: {
        const std::size_t size = dtype_size(spec.dtype);
        std::memset(p + static_cast<std::size_t>(i) * size, 0, size);
        std::memcpy(p + static_cast<std::size_t>(i) * size, &integer, size < 8 ? size : 8);  // little-endian
      }
    }
  }
  return t;
}

}  // namespace

std::string probe_disagreement(const Signature& tensorflow, const SignatureBackend& other, double tolerance) {
  const std::size_t n_in = tensorflow.inputs().size(), n_out = tensorflow.outputs().size();
  std::vector<Tensor> inputs;
  std::vector<const Tensor*> pointers;
  try {  // a declared shape too large to allocate keeps TensorFlow, as any failed probe does
    for (std::size_t k = 0; k < n_in; ++k) inputs.push_back(probe_input(tensorflow.inputs()[k], k));
  } catch (const Error& e) {
    return std::string("no probe input could be made, so OpenVINO could not be checked: ") + e.what();
  }
  for (const Tensor& t : inputs) pointers.push_back(&t);
  std::vector<Tensor> expected(n_out), got(n_out);
  try {
    tensorflow.run(inputs.data(), expected.data());
  } catch (const Error& e) {
    return std::string("the probe input failed on TensorFlow, so OpenVINO could not be checked: ") + e.what();
  }
  try {
    other.run(pointers.data(), nullptr, n_out, got.data(), RunOptions{});
  } catch (const Error& e) {
    return std::string("the probe input failed on OpenVINO: ") + e.what();
  }
  for (std::size_t j = 0; j < n_out; ++j) {
    const std::string& key = tensorflow.outputs()[j].key;
    if (expected[j].shape() != got[j].shape()) return "output '" + key + "' has another shape on the probe input";
    for (int64_t i = 0; i < expected[j].num_elements(); ++i) {
      const double want = element(expected[j], i), have = element(got[j], i);
      if (std::isnan(want) && std::isnan(have)) continue;
      if (!(std::fabs(have - want) <= tolerance * (1.0 + std::fabs(want)))) {
        return "output '" + key + "' differs from TensorFlow's on the probe input beyond the tolerance (element " +
               std::to_string(i) + ": " + std::to_string(have) + " vs " + std::to_string(want) + ")";
      }
    }
  }
  return "";
}

}  // namespace smrt::detail
