// Op libraries (TF_LoadLibrary) and the check that every op a model needs is registered.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace smrt::detail {

// Loads each library $SMRT_OP_LIBRARIES names (':'-separated; each once per process).
void load_environment_op_libraries();

// Makes sure every op in `needed` (op -> the functions holding it, "" for the graph) is
// registered before TensorFlow sees the model at `dir`: loads the library of each missing op
// smrt knows (tensorflow-text's) if that package is installed, then throws MissingOpError
// naming each op still missing, where it is used and the package that provides it.
void require_ops(const std::map<std::string, std::vector<std::string>>& needed, const std::string& dir);

}  // namespace smrt::detail
