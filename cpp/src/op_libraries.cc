// Custom op libraries: loading them (TF_LoadLibrary), the ops registered, and the check that a
// model's ops are all registered before TensorFlow sees it.
#include "op_libraries.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <filesystem>
#include <mutex>
#include <set>

#include "library_loading.h"
#include "op_packages.h"
#include "smrt/errors.h"
#include "smrt/runtime.h"
#include "status.h"
#include "tf_c_api.h"
#include "wire_reader.h"

namespace smrt {
namespace {

namespace fs = std::filesystem;

std::mutex g_mutex;                                    // guards everything below
std::map<std::string, std::vector<std::string>> g_loaded;  // canonical path -> its ops
std::vector<fs::path> g_package_roots;                 // runtime::add_op_package_root

constexpr const char kEnvVar[] = "SMRT_OP_LIBRARIES";

// The op names of a serialized OpList{repeated OpDef op = 1}, OpDef{string name = 1}.
std::vector<std::string> op_names(const void* data, std::size_t size) {
  std::vector<std::string> names;
  wire::for_each_field(std::string_view(static_cast<const char*>(data), size), [&](wire::Reader& list) {
    if (list.field() != 1) return list.skip();
    wire::for_each_field(list.bytes(), [&](wire::Reader& def) {
      if (def.field() == 1) names.emplace_back(def.bytes());
      else def.skip();
    });
  });
  return names;
}

// The ops of `needed` that TensorFlow's registry lacks.
std::vector<std::string> unregistered(const std::map<std::string, std::vector<std::string>>& needed) {
  const detail::OpRegistry registry;
  std::vector<std::string> out;
  for (const auto& [op, holders] : needed) {
    if (!registry.op_def(op)) out.push_back(op);
  }
  return out;
}

// One library file, once per canonical path. `origin` says who named it, for errors.
const std::vector<std::string>& load_file(const fs::path& path, const std::string& origin) {
  std::error_code ec;
  const std::string key = fs::canonical(path, ec).string();
  if (ec) throw LibraryNotFoundError(origin + " names the op library '" + path.string() + "', which does not exist");
  if (auto it = g_loaded.find(key); it != g_loaded.end()) return it->second;
  const auto& api = tf::api();  // libtensorflow first: the library registers into it
  tf::Status status;
  TF_Library* library = api.TF_LoadLibrary(key.c_str(), status.get());
  if (!status.ok() || !library) {
    throw LibraryNotFoundError("cannot load the op library '" + path.string() + "' (" + origin +
                               "): " + api.TF_Message(status.get()));
  }
  const TF_Buffer ops = api.TF_GetOpList(library);  // owned by the library, which stays loaded
  return g_loaded.emplace(key, op_names(ops.data, ops.length)).first->second;
}

std::vector<std::string> load_locked(const std::string& path, const std::string& origin) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return load_file(path, origin);
  std::set<fs::path> files;  // a directory: every shared library in it, in name order
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    if (entry.path().extension() == ".so" || entry.path().extension() == ".dylib") files.insert(entry.path());
  }
  if (files.empty()) throw LibraryNotFoundError(origin + " names the directory '" + path + "', which holds no op library (.so)");
  std::vector<std::string> ops;
  for (const auto& file : files) {
    const auto& more = load_file(file, origin);
    ops.insert(ops.end(), more.begin(), more.end());
  }
  return ops;
}

std::string holders_text(const std::vector<std::string>& holders) {
  std::string out;
  const std::size_t shown = std::min<std::size_t>(holders.size(), 3);
  for (std::size_t i = 0; i < shown; ++i) {
    out += (i ? ", " : "") + (holders[i].empty() ? std::string("the graph") : "function '" + holders[i] + "'");
  }
  if (holders.size() > shown) out += " and " + std::to_string(holders.size() - shown) + " more";
  return out;
}

// Where a known package's op library would be: under each root, the first that exists.
fs::path find_known_library(const char* relative) {
  std::error_code ec;
  for (const auto& root : g_package_roots) {
    if (fs::is_regular_file(root / relative, ec)) return root / relative;
  }
  return {};
}

}  // namespace

namespace runtime {

std::vector<std::string> load_op_library(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mutex);
  return load_locked(path, "the path given");
}

void add_op_package_root(const std::string& dir) {
  std::lock_guard<std::mutex> lock(g_mutex);
  for (const auto& root : g_package_roots) {
    if (root == dir) return;
  }
  g_package_roots.emplace_back(dir);
}

std::vector<std::string> registered_ops() {
  const auto& api = tf::api();
  TF_Buffer* all = api.TF_GetAllOpList();
  std::vector<std::string> names;
  try {
    names = op_names(all->data, all->length);
  } catch (...) {
    api.TF_DeleteBuffer(all);
    throw;
  }
  api.TF_DeleteBuffer(all);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace runtime

namespace detail {

void load_environment_op_libraries() {
  const char* env = std::getenv(kEnvVar);
  if (!env || !*env) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  for (const std::string& path : split_path_list(env)) load_locked(path, std::string("$") + kEnvVar);
}

OpRegistry::OpRegistry() : graph_(tf::api().TF_NewGraph()) {}

OpRegistry::~OpRegistry() { tf::api().TF_DeleteGraph(graph_); }

std::optional<std::string> OpRegistry::op_def(const std::string& op) const {
  tf::Status status;
  TF_Buffer def{nullptr, 0, nullptr};
  tf::api().TF_GraphGetOpDef(graph_, op.c_str(), &def, status.get());
  std::optional<std::string> result;
  if (status.ok()) result.emplace(static_cast<const char*>(def.data), def.length);
  if (def.data_deallocator) def.data_deallocator(const_cast<void*>(def.data), def.length);
  return result;
}

void require_ops(const std::map<std::string, std::vector<std::string>>& needed, const std::string& dir) {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::vector<std::string> absent = unregistered(needed);
  if (absent.empty()) return;

  // Load the libraries of installed packages smrt knows, once each.
  std::map<std::string, std::string> load_errors;  // op -> why its library did not load
  bool loaded_any = false;
  for (const auto& op : absent) {
    const auto provider = detail::op_provider(op);
    if (!provider || !provider->library) continue;
    const fs::path library = find_known_library(provider->library);
    if (library.empty()) continue;
    try {
      load_file(library, std::string("the ") + provider->package + " package");
      loaded_any = true;
    } catch (const Error& e) {
      load_errors[op] = e.what();
    }
  }
  if (loaded_any) {
    std::map<std::string, std::vector<std::string>> still;
    for (const auto& op : absent) still.emplace(op, needed.at(op));
    absent = unregistered(still);
    if (absent.empty()) return;
  }

  std::string message = "the SavedModel at '" + dir + "' uses " + std::to_string(absent.size()) +
                        (absent.size() == 1 ? " op" : " ops") +
                        " that neither TensorFlow nor any op library loaded registers:";
  for (const auto& op : absent) {
    message += "\n  '" + op + "' in " + holders_text(needed.at(op));
    const auto provider = detail::op_provider(op);
    if (auto why = load_errors.find(op); why != load_errors.end()) {
      message += ": " + why->second;
    } else if (provider && provider->library) {
      message += std::string(": from the ") + provider->package + " package, which is not installed (pip install " +
                 provider->package + ")";
    } else if (provider) {
      message += std::string(": from the ") + provider->package + " package; load its op library";
    }
  }
  message += "\nLoad op libraries with smrt.load(..., op_libraries=[path]), smrt.load_op_library(path), "
             "$SMRT_OP_LIBRARIES, --op_library, or smrt::runtime::load_op_library in C++.";
  throw MissingOpError(message);
}

}  // namespace detail
}  // namespace smrt
