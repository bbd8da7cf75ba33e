// What saved_model.pb says, read without libtensorflow: tag-sets and SignatureDefs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smrt/dtype.h"

namespace smrt {

// One input or output of a signature (a TensorInfo in SignatureDef).
struct TensorSpec {
  std::string key;          // the signature's name for it ("x", "output_0")
  DType dtype = DType::kInvalid;
  std::vector<int64_t> shape;  // -1 for an unknown dimension
  bool unknown_rank = false;   // when true, `shape` is empty and means nothing
  std::string tensor_name;     // graph tensor, "serving_default_x:0"
};

struct SignatureInfo {
  std::string key;
  std::string method_name;         // "tensorflow/serving/predict"
  std::vector<TensorSpec> inputs;  // sorted by key
  std::vector<TensorSpec> outputs; // sorted by key
};

struct MetaGraphInfo {
  std::vector<std::string> tags;           // as stored
  std::vector<SignatureInfo> signatures;   // sorted by key
  // The ops the graph uses, sorted, as saved_model_cli --list_ops counts them (graph nodes and
  // the functions they call); filled only when inspect() is asked for them.
  std::optional<std::vector<std::string>> ops;
  // The signature with this key, or nullptr.
  const SignatureInfo* find_signature(std::string_view key) const noexcept;
  // Same tags, ignoring order and repeats.
  bool has_tags(const std::vector<std::string>& tags) const;
};

struct SavedModelInfo {
  std::string path;                   // the directory
  std::vector<MetaGraphInfo> meta_graphs;
  // The MetaGraph with exactly this tag-set; throws NotFound-coded StatusError naming the
  // tag-sets there are.
  const MetaGraphInfo& meta_graph(const std::vector<std::string>& tags) const;
};

// Reads `dir`/saved_model.pb. Throws ModelNotFoundError if the directory or file is missing,
// and a DataLoss StatusError if the file is empty, truncated or not a SavedModel.
SavedModelInfo inspect(const std::string& dir, bool with_ops = false);

// Decodes the bytes of a saved_model.pb; `origin` names it in error messages. Never reads
// out of bounds, whatever the bytes (it is fuzzed).
SavedModelInfo parse_saved_model(std::string_view bytes, const std::string& origin, bool with_ops = false);

}  // namespace smrt
