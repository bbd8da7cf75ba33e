// Loads libtensorflow with dlopen and resolves the C API table (tf_c_api.h) once per process.
#include "smrt/runtime.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "smrt/errors.h"
#include "tf_c_api.h"

namespace smrt {
namespace tf {
std::atomic<const Api*> g_loaded_api{nullptr};
}  // namespace tf

namespace runtime {
namespace {

std::mutex g_mutex;  // guards loading; the hot path reads g_loaded_api only
Info g_info;
tf::Api g_api;

const char kInstallHint[] =
    "smrt needs libtensorflow. Install TensorFlow's CPU wheel with `pip install smrt[tf]` "
    "(or `pip install tensorflow-cpu`; `tensorflow` for GPUs), or point SMRT_LIBTENSORFLOW at "
    "a libtensorflow.so.2 from a TensorFlow C library distribution.";

// Points fd 2 at /dev/null for its lifetime: libtensorflow's static initializers log to stderr
// before any log level applies (absl prints everything until InitializeLog).
class StderrSilencer {
 public:
  explicit StderrSilencer(bool active) {
    if (!active) return;
    std::fflush(stderr);
    saved_ = dup(STDERR_FILENO);
    const int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (saved_ < 0 || null_fd < 0 || dup2(null_fd, STDERR_FILENO) < 0) {
      if (saved_ >= 0) close(saved_);
      saved_ = -1;
    }
    if (null_fd >= 0) close(null_fd);
  }
  ~StderrSilencer() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    dup2(saved_, STDERR_FILENO);
    close(saved_);
  }
  StderrSilencer(const StderrSilencer&) = delete;
  StderrSilencer& operator=(const StderrSilencer&) = delete;

 private:
  int saved_ = -1;
};

void load_locked(const std::string& path) {
  if (tf::g_loaded_api.load()) {
    if (path == g_info.path) return;
    throw LibraryNotFoundError("cannot load libtensorflow from '" + path + "': '" + g_info.path +
                               "' is already loaded, and one process can hold only one");
  }
  // Quiet by default: TensorFlow logs INFO lines to stderr as it loads. TF_CPP_MIN_LOG_LEVEL=0
  // asks for everything; any other value the user set is kept.
  const char* level = std::getenv("TF_CPP_MIN_LOG_LEVEL");
  const bool quiet = !level || std::atoi(level) > 0;
  setenv("TF_CPP_MIN_LOG_LEVEL", "2", /*overwrite=*/0);
  StderrSilencer silencer(quiet);
  // RTLD_LOCAL keeps TensorFlow's many symbols (its protobuf among them) out of the global
  // namespace; if TensorFlow's Python package loads the same file later, the loader reuses it.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = dlerror();
    throw LibraryNotFoundError("cannot load libtensorflow from '" + path + "': " +
                               (why ? why : "unknown error"));
  }
  tf::Api api;
  const char* missing = nullptr;
#define SMRT_RESOLVE(ret, name, args)                                   \
  api.name = reinterpret_cast<ret(*) args>(dlsym(handle, #name));      \
  if (!api.name && !missing) missing = #name;
  SMRT_TF_FUNCTIONS(SMRT_RESOLVE)
#undef SMRT_RESOLVE
  if (missing) {
    dlclose(handle);
    throw LibraryNotFoundError("'" + path + "' is not a usable libtensorflow: it lacks " +
                               missing + " of the TensorFlow C API");
  }
  g_api = api;
  g_info.path = path;
  g_info.version = g_api.TF_Version();
  tf::g_loaded_api.store(&g_api, std::memory_order_release);
}

}  // namespace

void load_library(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mutex);
  load_locked(path);
}

void ensure_loaded() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (tf::g_loaded_api.load()) return;
  std::string tried;
  if (const char* env = std::getenv("SMRT_LIBTENSORFLOW"); env && *env) {
    load_locked(env);  // an explicit choice: its error is the one to report
    return;
  }
  for (const char* name : {"libtensorflow.so.2", "libtensorflow_cc.so.2"}) {
    try {
      load_locked(name);
      return;
    } catch (const LibraryNotFoundError& e) {
      tried += std::string("\n  ") + e.what();
    }
  }
  throw LibraryNotFoundError(std::string(kInstallHint) + "\nTried:" + tried);
}

bool is_loaded() noexcept { return tf::g_loaded_api.load() != nullptr; }

Info info() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!tf::g_loaded_api.load()) throw LibraryNotFoundError("no libtensorflow is loaded yet");
  return g_info;
}

}  // namespace runtime

const tf::Api& tf::load_default_api() {
  runtime::ensure_loaded();
  return *g_loaded_api.load();
}

}  // namespace smrt
