// SessionOptions -> a serialized tensorflow.ConfigProto. Appending fields to a serialized
// message merges them into it (later scalars win), so the typed options override the raw proto.
#include <cstring>

#include "smrt/errors.h"
#include "smrt/model.h"

namespace smrt {
namespace {

// ConfigProto and GPUOptions field numbers (tensorflow/core/protobuf/config.proto).
constexpr int kIntraOpThreads = 2, kInterOpThreads = 5, kGpuOptions = 6;
constexpr int kGpuMemoryFraction = 1, kGpuAllowGrowth = 4, kGpuVisibleDevices = 5;

void put_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>(value | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void put_tag(std::string& out, int field, int wire_type) { put_varint(out, static_cast<uint64_t>(field) << 3 | wire_type); }

void put_varint_field(std::string& out, int field, uint64_t value) {
  put_tag(out, field, 0);
  put_varint(out, value);
}

void put_bytes_field(std::string& out, int field, const std::string& value) {
  put_tag(out, field, 2);
  put_varint(out, value.size());
  out += value;
}

}  // namespace

std::string SessionOptions::serialize() const {
  if (intra_op_threads < 0) throw InvalidInputError("intra_op_threads must be >= 0 (0 lets TensorFlow choose)");
  if (gpu_memory_fraction && !(*gpu_memory_fraction > 0.0 && *gpu_memory_fraction <= 1.0)) {
    throw InvalidInputError("gpu_memory_fraction must be in (0, 1]");
  }
  std::string out = config_proto;
  if (intra_op_threads) put_varint_field(out, kIntraOpThreads, static_cast<uint64_t>(intra_op_threads));
  // Negative: run ops in the caller's thread. int32 fields encode negatives as 10-byte varints.
  if (inter_op_threads) put_varint_field(out, kInterOpThreads, static_cast<uint64_t>(static_cast<int64_t>(inter_op_threads)));
  std::string gpu;
  if (gpu_memory_fraction) {
    put_tag(gpu, kGpuMemoryFraction, 1);
    char bytes[8];
    std::memcpy(bytes, &*gpu_memory_fraction, 8);  // little-endian double, as protobuf stores it
    gpu.append(bytes, 8);
  }
  if (gpu_memory_growth) put_varint_field(gpu, kGpuAllowGrowth, *gpu_memory_growth ? 1 : 0);
  if (!visible_devices.empty()) put_bytes_field(gpu, kGpuVisibleDevices, visible_devices);
  if (!gpu.empty()) put_bytes_field(out, kGpuOptions, gpu);
  return out;
}

}  // namespace smrt
