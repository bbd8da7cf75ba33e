// Op libraries (TF_LoadLibrary) and the check that every op a model needs is registered.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct TF_Graph;

namespace smrt::detail {

// TensorFlow's op registry, asked one op at a time through one graph (listing the whole
// registry with TF_GetAllOpList took ~50 ms, a tenth of a cold start).
class OpRegistry {
 public:
  OpRegistry();
  ~OpRegistry();
  OpRegistry(const OpRegistry&) = delete;
  OpRegistry& operator=(const OpRegistry&) = delete;
  // The serialized OpDef of `op`, or nullopt if nothing loaded so far registers it.
  std::optional<std::string> op_def(const std::string& op) const;

 private:
  TF_Graph* graph_;
};

// Loads each library $SMRT_OP_LIBRARIES names (':'-separated; each once per process).
void load_environment_op_libraries();

// Makes sure every op in `needed` (op -> the functions holding it, "" for the graph) is
// registered before TensorFlow sees the model at `dir`: loads the library of each missing op
// smrt knows (tensorflow-text's) if that package is installed, then throws MissingOpError
// naming each op still missing, where it is used and the package that provides it.
void require_ops(const std::map<std::string, std::vector<std::string>>& needed, const std::string& dir);

}  // namespace smrt::detail
