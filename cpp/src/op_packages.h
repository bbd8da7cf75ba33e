// Which package provides an op that TensorFlow itself does not register: a small table, used to
// name the package in a missing-op error and to load tensorflow-text's libraries when a model
// needs them.
#pragma once

#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace smrt::detail {

struct OpProvider {
  const char* package;  // the pip distribution, e.g. "tensorflow-text"
  const char* library;  // its op library, relative to a site-packages directory; nullptr if unknown
};

// The package that provides `op`, if smrt knows it.
std::optional<OpProvider> op_provider(std::string_view op);

// The ops known by exact name with their library (tensorflow-text's), for tests to check
// against the installed package.
const std::vector<std::pair<const char*, OpProvider>>& known_op_libraries();

}  // namespace smrt::detail
