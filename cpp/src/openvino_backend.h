// The OpenVINO backend: a SavedModel's serving_default signature converted by OpenVINO's
// TensorFlow frontend (which reads the directory itself) and compiled for the CPU.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "smrt/saved_model_info.h"

namespace smrt::detail {

// What OpenVINO can do for one signature: its runner, or (null) why it cannot run it.
struct BackendChoice {
  std::shared_ptr<SignatureBackend> runner;
  std::string why_not;
};

// One choice per signature of `meta` (by key). Loads libopenvino_c first (LibraryNotFoundError
// naming the extra to install); throws InvalidInputError for a bad option. A model OpenVINO
// cannot convert is no error: every signature says why.
std::map<std::string, BackendChoice> openvino_signatures(const std::string& dir, const std::vector<std::string>& tags,
                                                         const MetaGraphInfo& meta, const BackendOptions& options);

// Why OpenVINO cannot run signature `key` of `meta`, judged from saved_model.pb alone (dtypes,
// variables written, which signature the frontend converts); empty if it may.
std::string openvino_refuses(const MetaGraphInfo& meta, const std::vector<std::string>& tags, const std::string& key);

}  // namespace smrt::detail
