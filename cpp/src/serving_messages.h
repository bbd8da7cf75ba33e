// TensorFlow Serving's request messages (PredictRequest, ClassificationRequest,
// RegressionRequest, MultiInferenceRequest, PredictionLog) and TensorProto, read with smrt's
// own wire reader: the server process holds libtensorflow, which carries its own protobuf
// runtime, so linking a second one (or importing TensorFlow's Python protos) is not an option.
// Decoding follows protobuf's parser exactly: the last scalar wins, singular embedded messages
// merge, repeated fields concatenate (packed or not), map entries replace, a field with an
// unexpected wire type is an unknown field and skipped. Values stay views into the message
// until a caller copies them once into its own buffer (materialize()).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "smrt/dtype.h"
#include "wire_reader.h"

namespace smrt::messages {

// ModelSpec{name = 1, version = 2 (Int64Value{value = 1}), signature_name = 3, version_label = 4}.
struct ModelSpec {
  std::string name;
  std::optional<int64_t> version;
  std::string version_label;
  std::string signature_name;
};

// One occurrence of a repeated scalar field: a packed run (kLengthDelimited) or one value.
struct Occurrence {
  wire::WireType type;
  std::string_view packed;  // the run, for packed occurrences
  uint64_t value;           // varint, or the fixed32/fixed64 bits, for unpacked ones
};

// A TensorProto whose values are not copied yet. Checked as TensorFlow's Tensor::FromProto
// checks it: a known dtype, a valid fully-defined shape, tensor_content of the exact size;
// typed *_val fields fill the tensor, the last value repeated if there are too few (none:
// zeros), extra ones ignored.
class TensorProto {
 public:
  // Parses `message` (a view that must outlive this object). Throws StatusError
  // (kInvalidArgument) naming `what` for anything TensorFlow would refuse.
  TensorProto(std::string_view message, const std::string& what);

  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t num_elements() const { return num_elements_; }
  // Bytes of the numeric buffer (num_elements * element size); 0 for strings.
  std::size_t byte_size() const;
  // Writes the numeric values into `out` (byte_size() bytes, any alignment).
  void copy_to(void* out) const;
  // The string values (num_elements of them; views into the message).
  std::vector<std::string_view> strings() const;
  // How many distinct values the proto carries (for sizing what the strings will cost).
  std::size_t carried_strings() const { return strings_.size(); }

 private:
  template <class T, class Decode>
  void fill(T* out, const std::vector<Occurrence>& field, int width, Decode decode) const;

  std::string what_;
  DType dtype_ = DType::kInvalid;
  std::vector<int64_t> shape_;
  int64_t num_elements_ = 0;
  std::string_view content_;
  std::vector<std::string_view> strings_;
  std::vector<Occurrence> typed_[18];  // by field number, 5..17
};

// PredictRequest{model_spec = 1, inputs = 2 (map<string, TensorProto>), output_filter = 3}.
// Inputs are kept in key order; each value's bytes live in `storage` or the message.
struct PredictRequest {
  ModelSpec model_spec;
  std::vector<std::pair<std::string, wire::Merged>> inputs;
  std::vector<std::string> output_filter;
};
PredictRequest parse_predict_request(std::string_view message);

// ClassificationRequest / RegressionRequest{model_spec = 1, input = 2}, and
// MultiInferenceRequest{tasks = 1 {model_spec = 1, method_name = 2}, input = 2}: the Input's
// tf.Examples as serialized bytes, each preceded by the context's serialization when there is
// one (protobuf merges concatenated messages, the example's own features winning), as TF
// Serving feeds them to a signature.
struct ExamplesRequest {
  std::vector<std::pair<ModelSpec, std::string>> tasks;  // (model_spec, method_name)
  std::vector<std::string_view> examples;                // views into the message or storage
  std::string_view context;                              // empty without one
  std::vector<std::unique_ptr<wire::Merged>> storage;    // merged occurrences, kept in place
};
ExamplesRequest parse_examples_request(std::string_view message, bool multi_inference);

// GetModelStatusRequest{model_spec = 1} and GetModelMetadataRequest{model_spec = 1,
// metadata_field = 2 (repeated string)}: the spec and the strings of field 2.
std::pair<ModelSpec, std::vector<std::string>> parse_spec_request(std::string_view message);

// PredictionLog: which request it logs ("predict", "classify", "regress", "multi_inference",
// "session_run", "predict_streamed" or "" for none) and that request's bytes.
std::pair<std::string, std::string> parse_prediction_log(std::string_view message);

// TFRecord's masked CRC-32C (Castagnoli) of `data`.
uint32_t masked_crc32c(std::string_view data);

}  // namespace smrt::messages
