// Loads libtensorflow with dlopen and resolves the C API table (tf_c_api.h) once per process.
#include "smrt/runtime.h"

#include <dlfcn.h>  // dladdr
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <mutex>
#include <optional>

#include "smrt/errors.h"
#include "install_location.h"
#include "library_loading.h"
#include "tf_c_api.h"

namespace smrt {
namespace detail {

std::filesystem::path site_packages_beside_libsmrt() {
  Dl_info self{};
  if (!dladdr(reinterpret_cast<void*>(&site_packages_beside_libsmrt), &self) || !self.dli_fname) return {};
  std::error_code ec;
  const std::filesystem::path here = std::filesystem::canonical(self.dli_fname, ec);
  return ec ? std::filesystem::path() : here.parent_path().parent_path();
}

}  // namespace detail

namespace tf {
std::atomic<const Api*> g_loaded_api{nullptr};
}  // namespace tf

namespace runtime {
namespace {

namespace fs = std::filesystem;

std::mutex g_mutex;  // guards loading; the hot path reads g_loaded_api only
Info g_info;
tf::Api g_api;

const char kInstallHint[] =
    "smrt needs libtensorflow. Install TensorFlow's CPU wheel with `pip install " SMRT_DISTRIBUTION "[tf]` "
    "(or `pip install tensorflow-cpu`; `tensorflow` for GPUs), or point SMRT_LIBTENSORFLOW at "
    "a libtensorflow.so.2 from a TensorFlow C library distribution, or at its directory.";

// The C API's file names: the wheel's first, then the C distribution's.
#ifdef __APPLE__
constexpr const char* kLibraryNames[] = {"libtensorflow_cc.2.dylib", "libtensorflow.2.dylib"};
#else
constexpr const char* kLibraryNames[] = {"libtensorflow_cc.so.2", "libtensorflow.so.2"};
#endif

// The library in `dir` (or in `dir`/lib), or "" if there is none.
std::string library_in(const fs::path& dir) {
  std::error_code ec;
  for (const fs::path& sub : {dir, dir / "lib"}) {
    for (const char* name : kLibraryNames) {
      if (fs::is_regular_file(sub / name, ec)) return (sub / name).string();
    }
  }
  return "";
}

// What dlopen should open for a path the user gave: a directory becomes the library in it.
std::string resolve(const std::string& path, const std::string& origin) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::string found = library_in(path);
    if (found.empty()) {
      throw LibraryNotFoundError(origin + " names the directory '" + path + "', which holds none of " +
                                 kLibraryNames[0] + ", " + kLibraryNames[1]);
    }
    return found;
  }
  if (path.find('/') != std::string::npos && !fs::exists(path, ec)) {
    throw LibraryNotFoundError(origin + " names '" + path + "', which does not exist");
  }
  return path;  // a file, or a bare name for the loader's search path
}

// site-packages/tensorflow when libsmrt is site-packages/smrt/libsmrt.so (the wheel layout).
std::string wheel_beside_this_library() {
  const fs::path site = detail::site_packages_beside_libsmrt();
  return site.empty() ? "" : library_in(site / "tensorflow");
}

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

// Opens `path` with fd 2 silenced (unless TF_CPP_MIN_LOG_LEVEL=0); a failure is reported by
// the caller, after stderr is back, so an uncaught error still prints its message.
detail::OpenedLibrary open_quietly(const std::string& path) {
  // Quiet by default: TensorFlow logs INFO lines to stderr as it loads. TF_CPP_MIN_LOG_LEVEL=0
  // asks for everything; any other value the user set is kept.
  const char* level = std::getenv("TF_CPP_MIN_LOG_LEVEL");
  const bool quiet = !level || std::atoi(level) > 0;
  setenv("TF_CPP_MIN_LOG_LEVEL", "2", /*overwrite=*/0);
  StderrSilencer silencer(quiet);
  // Opened RTLD_LOCAL (library_loading.h): if TensorFlow's Python package loads the same file
  // later, the loader reuses it.
  return detail::OpenedLibrary(path);
}

void load_locked(const std::string& given, const std::string& source) {
  const std::string path = resolve(given, source == "environment" ? "$SMRT_LIBTENSORFLOW" : "the library path given");
  if (tf::g_loaded_api.load()) {
    if (path == g_info.path) return;
    throw LibraryNotFoundError("cannot load libtensorflow from '" + path + "': '" + g_info.path +
                               "' is already loaded, and one process can hold only one");
  }
  detail::OpenedLibrary library = open_quietly(path);
  if (!library.opened()) {
    throw LibraryNotFoundError("cannot load libtensorflow from '" + path + "': " + library.error());
  }
  tf::Api api;
  SMRT_TF_FUNCTIONS(SMRT_RESOLVE_FROM_LIBRARY)
  if (library.missing()) {
    throw LibraryNotFoundError("'" + path + "' is not a usable libtensorflow: it lacks " +
                               library.missing() + " of the TensorFlow C API");
  }
  library.keep();
  g_api = api;
  g_info = {path, g_api.TF_Version(), source};
  tf::g_loaded_api.store(&g_api, std::memory_order_release);
}

}  // namespace

void load_library(const std::string& path, const std::string& source) {
  std::lock_guard<std::mutex> lock(g_mutex);
  load_locked(path, source);
}

namespace {

// Where the search looks, in order, as (path, source); bare names are for the loader's path.
std::vector<std::pair<std::string, std::string>> candidates(
    const std::vector<std::pair<std::string, std::string>>& hints) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [dir, source] : hints) {
    if (std::string found = library_in(dir); !found.empty()) out.emplace_back(found, source);
  }
  if (std::string found = wheel_beside_this_library(); !found.empty()) out.emplace_back(found, "tensorflow wheel");
#ifdef SMRT_INSTALL_LIBTENSORFLOW
  // The wheel found when smrt was built for its environment (CMakeLists.txt), if still there.
  std::error_code ec;
  if (*SMRT_INSTALL_LIBTENSORFLOW && fs::is_regular_file(SMRT_INSTALL_LIBTENSORFLOW, ec)) {
    out.emplace_back(SMRT_INSTALL_LIBTENSORFLOW, "found at install");
  }
#endif
  for (auto it = std::rbegin(kLibraryNames); it != std::rend(kLibraryNames); ++it) out.emplace_back(*it, "system");
  return out;
}

// A bare library name in the directories the loader searches by default ($LD_LIBRARY_PATH,
// then the usual system ones; the ld.so cache is not read), or "".
std::string on_loader_path(const std::string& name) {
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("LD_LIBRARY_PATH"); env) {
    for (const std::string& dir : detail::split_path_list(env)) dirs.emplace_back(dir);
  }
  for (const char* dir : {"/usr/local/lib", "/usr/lib", "/usr/lib64", "/lib", "/usr/lib/x86_64-linux-gnu",
                          "/usr/lib/aarch64-linux-gnu"}) {
    dirs.emplace_back(dir);
  }
  std::error_code ec;
  for (const auto& dir : dirs) {
    if (fs::exists(dir / name, ec)) return (dir / name).string();
  }
  return "";
}

}  // namespace

void ensure_loaded(const std::vector<std::pair<std::string, std::string>>& hints) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (tf::g_loaded_api.load()) return;
  if (const char* env = std::getenv("SMRT_LIBTENSORFLOW"); env && *env) {
    load_locked(env, "environment");  // an explicit choice: its error is the one to report
    return;
  }
  std::string tried;
  for (const auto& [path, source] : candidates(hints)) {
    try {
      load_locked(path, source);
      return;
    } catch (const LibraryNotFoundError& e) {
      tried += std::string("\n  ") + e.what();
    }
  }
  throw LibraryNotFoundError(std::string(kInstallHint) + "\nTried:" + tried);
}

std::optional<Info> find_library(const std::vector<std::pair<std::string, std::string>>& hints) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (tf::g_loaded_api.load()) return g_info;
  if (const char* env = std::getenv("SMRT_LIBTENSORFLOW"); env && *env) {
    return Info{resolve(env, "$SMRT_LIBTENSORFLOW"), "", "environment"};
  }
  for (const auto& [path, source] : candidates(hints)) {
    if (source != "system") return Info{path, "", source};
    if (std::string found = on_loader_path(path); !found.empty()) return Info{found, "", source};
  }
  return std::nullopt;
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
