// Field numbers from tensorflow/core/framework/tensor.proto and tensorflow_serving/apis/*.proto.
#include "serving_messages.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "smrt/errors.h"

namespace smrt::messages {
namespace {

using wire::for_each_field;
using wire::Merged;
using wire::Reader;
using wire::WireType;

// TensorProto fields.
constexpr uint32_t kDtype = 1, kShape = 2, kContent = 4, kFloat = 5, kDouble = 6, kInt = 7,
                   kString = 8, kSComplex = 9, kInt64 = 10, kBool = 11, kDComplex = 12, kHalf = 13,
                   kUInt32 = 16, kUInt64 = 17;
constexpr int kMaxRank = 254;  // TensorShape's limit

[[noreturn]] void invalid(const std::string& message) {
  throw StatusError(ErrorCode::kInvalidArgument, message);
}

std::string utf8_or_skip(Reader& r) {
  if (!r.is(wire::kLengthDelimited)) {
    r.skip();
    return {};
  }
  return std::string(r.utf8());
}

// The wire type a repeated scalar field's single values use (packed runs are length-delimited).
WireType scalar_type(uint32_t field) {
  switch (field) {
    case kFloat: case kSComplex: return wire::kFixed32;
    case kDouble: case kDComplex: return wire::kFixed64;
    default: return wire::kVarint;
  }
}

uint64_t fixed(std::string_view bytes, std::size_t at, int width) {
  uint64_t bits = 0;
  for (int i = width - 1; i >= 0; --i) bits = bits << 8 | static_cast<uint8_t>(bytes[at + static_cast<std::size_t>(i)]);
  return bits;
}

// Calls emit(raw) for each value of `field` in order, packed runs and single values alike.
template <class Emit>
void for_each_value(const std::vector<Occurrence>& field, int width, Emit emit) {
  for (const Occurrence& o : field) {
    if (o.type != wire::kLengthDelimited) {
      if (!emit(o.value)) return;
      continue;
    }
    if (width) {
      for (std::size_t at = 0; at < o.packed.size(); at += static_cast<std::size_t>(width)) {
        if (!emit(fixed(o.packed, at, width))) return;
      }
    } else {
      Reader r(o.packed);
      while (!r.at_end()) {
        if (!emit(r.varint())) return;
      }
    }
  }
}

// How many values `field` holds; throws for a packed run that is not whole values.
int64_t count_values(const std::vector<Occurrence>& field, int width, const std::string& what) {
  int64_t n = 0;
  for (const Occurrence& o : field) {
    if (o.type != wire::kLengthDelimited) {
      ++n;
    } else if (width) {
      if (o.packed.size() % static_cast<std::size_t>(width)) invalid(what + ": a packed field's length is not a whole number of values");
      n += static_cast<int64_t>(o.packed.size() / static_cast<std::size_t>(width));
    } else {
      // Read each varint whole: an over-long one must be refused here, not later in copy_to.
      Reader r(o.packed);
      try {
        for (; !r.at_end(); ++n) r.varint();
      } catch (const wire::WireError& e) {
        invalid(what + ": bad packed varints (" + e.what() + ")");
      }
    }
  }
  return n;
}

// The typed field a dtype's values come in, values per element, and the width of one value
// on the wire (0: varint). TensorFlow's ProtoHelper mapping (tensor.cc).
struct TypedField {
  uint32_t field;
  int per_element;
  int width;
};

std::optional<TypedField> typed_field(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return TypedField{kFloat, 1, 4};
    case DType::kFloat64: return TypedField{kDouble, 1, 8};
    case DType::kInt32: case DType::kInt16: case DType::kInt8: case DType::kUInt8: case DType::kUInt16:
      return TypedField{kInt, 1, 0};
    case DType::kInt64: return TypedField{kInt64, 1, 0};
    case DType::kBool: return TypedField{kBool, 1, 0};
    case DType::kFloat16: case DType::kBFloat16: return TypedField{kHalf, 1, 0};
    case DType::kUInt32: return TypedField{kUInt32, 1, 0};
    case DType::kUInt64: return TypedField{kUInt64, 1, 0};
    case DType::kComplex64: return TypedField{kSComplex, 2, 4};
    case DType::kComplex128: return TypedField{kDComplex, 2, 8};
    default: return std::nullopt;
  }
}

ModelSpec read_model_spec(std::string_view message) {
  ModelSpec spec;
  for_each_field(message, [&](Reader& r) {
    switch (r.field()) {
      case 1: spec.name = utf8_or_skip(r); break;
      // version (2) and version_label (4) are one oneof: the last member set wins.
      case 2:
        if (!r.is(wire::kLengthDelimited)) { r.skip(); break; }
        // Int64Value{value = 1}: present even when empty (a set wrapper means version 0).
        if (!spec.version) spec.version = 0;
        spec.version_label.clear();
        for_each_field(r.bytes(), [&](Reader& v) {
          if (v.field() == 1 && v.is(wire::kVarint)) spec.version = static_cast<int64_t>(v.varint());
          else v.skip();
        });
        break;
      case 3: spec.signature_name = utf8_or_skip(r); break;
      case 4:
        if (!r.is(wire::kLengthDelimited)) { r.skip(); break; }
        spec.version_label = std::string(r.utf8());
        spec.version.reset();
        break;
      default: r.skip();
    }
  });
  return spec;
}

// Input{example_list = 1 {examples = 1}, example_list_with_context = 2 {examples = 1,
// context = 2}}: a oneof, so the last member set wins, and the same member set twice merges.
void read_input(std::string_view message, ExamplesRequest& out) {
  int kind = 0;
  auto& member = *out.storage.emplace_back(std::make_unique<Merged>());
  for_each_field(message, [&](Reader& r) {
    if ((r.field() == 1 || r.field() == 2) && r.is(wire::kLengthDelimited)) {
      if (kind != static_cast<int>(r.field())) member.clear();
      kind = static_cast<int>(r.field());
      member.add(r.bytes());
    } else {
      r.skip();
    }
  });
  if (!kind) invalid("Input is empty.");  // TF Serving's words (util.cc)
  auto& context = *out.storage.emplace_back(std::make_unique<Merged>());
  for_each_field(member.view(), [&](Reader& r) {
    if (r.field() == 1 && r.is(wire::kLengthDelimited)) out.examples.push_back(r.bytes());
    else if (r.field() == 2 && kind == 2 && r.is(wire::kLengthDelimited)) context.add(r.bytes());
    else r.skip();
  });
  if (out.examples.empty()) invalid("Input is empty.");  // no examples: TF Serving's words (util.cc)
  out.context = context.view();
}

}  // namespace

TensorProto::TensorProto(std::string_view message, const std::string& what) : what_(what) {
  Merged shape;
  try {
    for_each_field(message, [&](Reader& r) {
      const uint32_t f = r.field();
      if (f == kDtype && r.is(wire::kVarint)) {
        dtype_ = static_cast<DType>(static_cast<int32_t>(r.varint()));
      } else if (f == kShape && r.is(wire::kLengthDelimited)) {
        shape.add(r.bytes());
      } else if (f == kContent && r.is(wire::kLengthDelimited)) {
        content_ = r.bytes();
      } else if (f == kString && r.is(wire::kLengthDelimited)) {
        strings_.push_back(r.bytes());
      } else if (f >= kFloat && f <= kUInt64 && f != kString && f != 14 && f != 15) {
        if (r.is(wire::kLengthDelimited)) {
          typed_[f].push_back({wire::kLengthDelimited, r.bytes(), 0});
        } else if (r.is(scalar_type(f))) {
          typed_[f].push_back({r.type(), {}, r.is(wire::kVarint) ? r.varint() : r.fixed_bits(scalar_type(f) == wire::kFixed32 ? 4 : 8)});
        } else {
          r.skip();
        }
      } else {
        r.skip();
      }
    });
    bool unknown_rank = false;
    for_each_field(shape.view(), [&](Reader& r) {
      if (r.field() == 2 && r.is(wire::kLengthDelimited)) {
        int64_t size = 0;
        for_each_field(r.bytes(), [&](Reader& d) {
          if (d.field() == 1 && d.is(wire::kVarint)) size = static_cast<int64_t>(d.varint());
          else d.skip();
        });
        shape_.push_back(size);
      } else if (r.field() == 3 && r.is(wire::kVarint)) {
        unknown_rank = r.varint() != 0;
      } else {
        r.skip();
      }
    });
    if (unknown_rank) invalid(what_ + ": a tensor's shape must be known (unknown_rank is set)");
  } catch (const wire::WireError& e) {
    invalid(what_ + ": not a valid TensorProto (" + e.what() + ")");
  }
  if (shape_.size() > static_cast<std::size_t>(kMaxRank)) invalid(what_ + ": more than 254 dimensions");
  num_elements_ = 1;
  for (int64_t d : shape_) {
    if (d < 0) invalid(what_ + ": dimension " + std::to_string(d) + " is negative");
    if (d && num_elements_ > INT64_MAX / d) invalid(what_ + ": the shape has more elements than fit in int64");
    num_elements_ *= d;
  }
  // byte_size() and the Python side's budget multiply num_elements by at most 8 bytes each.
  if (static_cast<uint64_t>(num_elements_) > SIZE_MAX / std::max<std::size_t>(dtype_size(dtype_), 8)) {
    invalid(what_ + ": the shape has " + std::to_string(num_elements_) + " elements, more than fit in memory");
  }
  if (dtype_ == DType::kString) {
    if (!content_.empty()) invalid(what_ + ": string tensors in tensor_content are not supported; use string_val");
    return;
  }
  const auto typed = typed_field(dtype_);
  if (!typed) {
    invalid(what_ + ": dtype " + std::string(dtype_enum_name(dtype_)) + " (" + std::to_string(static_cast<int>(dtype_)) +
            ") is not supported");
  }
  if (!content_.empty()) {
    const std::size_t size = dtype_size(dtype_);
    if (static_cast<uint64_t>(num_elements_) > content_.size() / size || content_.size() != static_cast<std::size_t>(num_elements_) * size) {
      invalid(what_ + ": tensor_content holds " + std::to_string(content_.size()) + " bytes; shape and dtype " +
              std::string(dtype_name(dtype_)) + " need " + std::to_string(num_elements_) + " x " + std::to_string(size));
    }
  } else {
    count_values(typed_[typed->field], typed->width, what_);  // checks packed runs are whole
  }
}

std::size_t TensorProto::byte_size() const {
  return dtype_ == DType::kString ? 0 : static_cast<std::size_t>(num_elements_) * dtype_size(dtype_);
}

template <class T, class Decode>
void TensorProto::fill(T* out, const std::vector<Occurrence>& field, int width, Decode decode) const {
  const int64_t n = num_elements_;
  int64_t i = 0;
  for_each_value(field, width, [&](uint64_t raw) {
    if (i == n) return false;  // extra values are ignored, as TensorFlow does
    out[i++] = decode(raw);
    return true;
  });
  const T last = i ? out[i - 1] : T{};  // too few: the last value repeats (none: zeros)
  for (; i < n; ++i) out[i] = last;
}

void TensorProto::copy_to(void* out) const {
  if (!content_.empty()) {
    std::memcpy(out, content_.data(), content_.size());  // tensor_content is little-endian
    return;
  }
  const TypedField t = *typed_field(dtype_);
  const auto& field = typed_[t.field];
  auto as_float = [](uint64_t bits) { float v; const auto b = static_cast<uint32_t>(bits); std::memcpy(&v, &b, 4); return v; };
  auto as_double = [](uint64_t bits) { double v; std::memcpy(&v, &bits, 8); return v; };
  switch (dtype_) {
    case DType::kFloat32: fill(static_cast<float*>(out), field, 4, as_float); break;
    case DType::kFloat64: fill(static_cast<double*>(out), field, 8, as_double); break;
    // int32 varints are sign-extended to 64 bits on the wire; TensorFlow casts int_val's int32.
    case DType::kInt32: fill(static_cast<int32_t*>(out), field, 0, [](uint64_t v) { return static_cast<int32_t>(v); }); break;
    case DType::kInt16: fill(static_cast<int16_t*>(out), field, 0, [](uint64_t v) { return static_cast<int16_t>(static_cast<int32_t>(v)); }); break;
    case DType::kInt8: fill(static_cast<int8_t*>(out), field, 0, [](uint64_t v) { return static_cast<int8_t>(static_cast<int32_t>(v)); }); break;
    case DType::kUInt8: fill(static_cast<uint8_t*>(out), field, 0, [](uint64_t v) { return static_cast<uint8_t>(static_cast<int32_t>(v)); }); break;
    case DType::kUInt16: fill(static_cast<uint16_t*>(out), field, 0, [](uint64_t v) { return static_cast<uint16_t>(static_cast<int32_t>(v)); }); break;
    case DType::kInt64: fill(static_cast<int64_t*>(out), field, 0, [](uint64_t v) { return static_cast<int64_t>(v); }); break;
    case DType::kUInt32: fill(static_cast<uint32_t*>(out), field, 0, [](uint64_t v) { return static_cast<uint32_t>(v); }); break;
    case DType::kUInt64: fill(static_cast<uint64_t*>(out), field, 0, [](uint64_t v) { return v; }); break;
    case DType::kBool: fill(static_cast<bool*>(out), field, 0, [](uint64_t v) { return v != 0; }); break;
    // half_val holds each half or bfloat16's 16 bits in an int32.
    case DType::kFloat16: case DType::kBFloat16:
      fill(static_cast<uint16_t*>(out), field, 0, [](uint64_t v) { return static_cast<uint16_t>(v); });
      break;
    case DType::kComplex64: case DType::kComplex128: {
      // Pairs (real, imaginary); a too-short list repeats the last whole pair.
      const bool single = dtype_ == DType::kComplex64;
      const int64_t n = num_elements_;
      const int64_t carried = count_values(field, t.width, what_) / 2;
      int64_t k = 0;
      auto* f = static_cast<float*>(out);
      auto* d = static_cast<double*>(out);
      for_each_value(field, t.width, [&](uint64_t raw) {
        if (k >= 2 * std::min(n, carried)) return false;
        if (single) f[k++] = as_float(raw);
        else d[k++] = as_double(raw);
        return true;
      });
      for (int64_t i = k / 2; i < n; ++i) {
        if (single) { f[2 * i] = k ? f[k - 2] : 0.0f; f[2 * i + 1] = k ? f[k - 1] : 0.0f; }
        else { d[2 * i] = k ? d[k - 2] : 0.0; d[2 * i + 1] = k ? d[k - 1] : 0.0; }
      }
      break;
    }
    default: invalid(what_ + ": unsupported dtype");
  }
}

std::vector<std::string_view> TensorProto::strings() const {
  const auto n = static_cast<std::size_t>(num_elements_);
  std::vector<std::string_view> out(strings_.begin(), strings_.begin() + static_cast<std::ptrdiff_t>(std::min(n, strings_.size())));
  const std::string_view last = strings_.empty() ? std::string_view() : out.empty() ? std::string_view() : out.back();
  out.resize(n, last);
  return out;
}

PredictRequest parse_predict_request(std::string_view message) {
  PredictRequest request;
  try {
    Merged spec;
    std::map<std::string, Merged> inputs;
    for_each_field(message, [&](Reader& r) {
      const bool bytes = r.is(wire::kLengthDelimited);
      if (r.field() == 1 && bytes) spec.add(r.bytes());
      else if (r.field() == 2 && bytes) wire::add_map_entry(r.bytes(), inputs);
      else if (r.field() == 3 && bytes) request.output_filter.emplace_back(r.utf8());
      else r.skip();
    });
    request.model_spec = read_model_spec(spec.view());
    for (auto& entry : inputs) request.inputs.emplace_back(entry.first, std::move(entry.second));
  } catch (const wire::WireError& e) {
    invalid(std::string("the PredictRequest could not be parsed: ") + e.what());
  }
  return request;
}

ExamplesRequest parse_examples_request(std::string_view message, bool multi_inference) {
  ExamplesRequest request;
  try {
    Merged spec, input;
    std::vector<std::string_view> tasks;
    for_each_field(message, [&](Reader& r) {
      const bool bytes = r.is(wire::kLengthDelimited);
      if (r.field() == 1 && bytes) {
        if (multi_inference) tasks.push_back(r.bytes());
        else spec.add(r.bytes());
      } else if (r.field() == 2 && bytes) {
        input.add(r.bytes());
      } else {
        r.skip();
      }
    });
    if (multi_inference) {
      for (std::string_view task : tasks) {
        Merged task_spec;
        std::string method;
        for_each_field(task, [&](Reader& r) {
          if (r.field() == 1 && r.is(wire::kLengthDelimited)) task_spec.add(r.bytes());
          else if (r.field() == 2) method = utf8_or_skip(r);
          else r.skip();
        });
        request.tasks.emplace_back(read_model_spec(task_spec.view()), method);
      }
    } else {
      request.tasks.emplace_back(read_model_spec(spec.view()), "");
    }
    auto& merged_input = *request.storage.emplace_back(std::make_unique<Merged>(std::move(input)));
    read_input(merged_input.view(), request);
  } catch (const wire::WireError& e) {
    invalid(std::string("the request could not be parsed: ") + e.what());
  }
  return request;
}

std::pair<ModelSpec, std::vector<std::string>> parse_spec_request(std::string_view message) {
  std::pair<ModelSpec, std::vector<std::string>> out;
  try {
    Merged spec;
    for_each_field(message, [&](Reader& r) {
      const bool bytes = r.is(wire::kLengthDelimited);
      if (r.field() == 1 && bytes) spec.add(r.bytes());
      else if (r.field() == 2 && bytes) out.second.emplace_back(r.utf8());
      else r.skip();
    });
    out.first = read_model_spec(spec.view());
  } catch (const wire::WireError& e) {
    invalid(std::string("the request could not be parsed: ") + e.what());
  }
  return out;
}

std::pair<std::string, std::string> parse_prediction_log(std::string_view message) {
  static const char* const kKinds[] = {nullptr, nullptr, "classify", "regress", "multi_inference", "session_run",
                                       "predict", "predict_streamed"};
  int kind = 0;
  Merged log;
  try {
    for_each_field(message, [&](Reader& r) {
      const uint32_t f = r.field();
      if (f >= 2 && f <= 7 && r.is(wire::kLengthDelimited)) {  // the log_type oneof
        if (kind != static_cast<int>(f)) log.clear();
        kind = static_cast<int>(f);
        log.add(r.bytes());
      } else {
        r.skip();
      }
    });
    if (!kind) return {"", ""};
    Merged request;
    for_each_field(log.view(), [&](Reader& r) {
      if (r.field() == 1 && r.is(wire::kLengthDelimited)) request.add(r.bytes());
      else r.skip();
    });
    return {kKinds[kind], std::string(request.view())};
  } catch (const wire::WireError& e) {
    invalid(std::string("not a PredictionLog: ") + e.what());
  }
}

uint32_t masked_crc32c(std::string_view data) {
  static const auto table = [] {
    std::vector<uint32_t> t(256);
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xffffffffu;
  for (char ch : data) crc = table[(crc ^ static_cast<uint8_t>(ch)) & 0xff] ^ (crc >> 8);
  crc = ~crc;
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

}  // namespace smrt::messages
