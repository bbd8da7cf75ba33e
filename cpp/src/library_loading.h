// What smrt's loaders of dlopen'd libraries share: runtime.cc (libtensorflow) and
// openvino_runtime.cc (libopenvino_c) open a library and fill a table of its C API functions,
// each named by its symbol; runtime.cc ($LD_LIBRARY_PATH) and op_libraries.cc
// ($SMRT_OP_LIBRARIES) read ':'-separated path lists.
#pragma once

#include <dlfcn.h>

#include <string>
#include <vector>

namespace smrt::detail {

// The non-empty entries of a ':'-separated list, in order ("a::b:" -> a, b).
inline std::vector<std::string> split_path_list(const std::string& list) {
  std::vector<std::string> entries;
  for (std::size_t start = 0; start <= list.size();) {
    std::size_t end = list.find(':', start);
    if (end == std::string::npos) end = list.size();
    if (end > start) entries.push_back(list.substr(start, end - start));
    start = end + 1;
  }
  return entries;
}

// A library opened with dlopen, closed again when this goes unless kept: a loader keeps it
// once every function of its table resolved, and the table then lives for the process.
class OpenedLibrary {
 public:
  // RTLD_NOW finds a missing dependency here, not at a first call; RTLD_LOCAL keeps the
  // library's own symbols (its protobuf among them) out of the global namespace.
  explicit OpenedLibrary(const std::string& path) : handle_(dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
    if (!handle_) {
      const char* why = dlerror();
      error_ = why ? why : "unknown error";
    }
  }
  OpenedLibrary(const OpenedLibrary&) = delete;
  OpenedLibrary& operator=(const OpenedLibrary&) = delete;
  ~OpenedLibrary() {
    if (handle_) dlclose(handle_);
  }

  bool opened() const noexcept { return handle_ != nullptr; }
  const std::string& error() const noexcept { return error_; }  // dlerror's words, if it did not open

  // Points `slot` at the library's function `name`; the first name not found is missing().
  template <class Function>
  void resolve(Function*& slot, const char* name) {
    slot = reinterpret_cast<Function*>(dlsym(handle_, name));
    if (!slot && !missing_) missing_ = name;
  }
  const char* missing() const noexcept { return missing_; }

  void keep() noexcept { handle_ = nullptr; }

 private:
  void* handle_;
  std::string error_;
  const char* missing_ = nullptr;
};

}  // namespace smrt::detail

// The X-macro step (ret, name, args) that fills `api.name` from an OpenedLibrary `library`
// (both in scope): SMRT_TF_FUNCTIONS(SMRT_RESOLVE_FROM_LIBRARY), SMRT_OV_FUNCTIONS(...).
#define SMRT_RESOLVE_FROM_LIBRARY(ret, name, args) library.resolve(api.name, #name);
