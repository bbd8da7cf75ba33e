// Loads OpenVINO's C API (libopenvino_c) with dlopen and resolves its table (openvino_c_api.h)
// once per process, for the "openvino" backend. Found the way libtensorflow is (runtime.cc):
// an explicit path or $SMRT_LIBOPENVINO, the `openvino` wheel Python points at, the wheel
// installed beside libsmrt, then the loader's search path.
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "install_location.h"
#include "library_loading.h"
#include "openvino_c_api.h"
#include "smrt/errors.h"
#include "smrt/runtime.h"

namespace smrt {
namespace {

namespace fs = std::filesystem;

std::mutex g_mutex;  // guards loading; the hot path reads g_loaded only
std::atomic<const ov::Api*> g_loaded{nullptr};
ov::Api g_api;
runtime::Info g_info;

const char kInstallHint[] =
    "the openvino backend needs OpenVINO's C API (libopenvino_c). Install it with "
    "`pip install " SMRT_DISTRIBUTION "[openvino]` (or `pip install openvino`), or point SMRT_LIBOPENVINO at "
    "libopenvino_c.so or its directory.";

// libopenvino_c.so, or the versioned libopenvino_c.so.NNNN the wheel ships, in `dir` (or in
// `dir`/libs, the wheel's layout); "" if there is none.
std::string library_in(const fs::path& dir) {
  std::error_code ec;
  for (const fs::path& sub : {dir, dir / "libs", dir / "lib"}) {
    if (fs::is_regular_file(sub / "libopenvino_c.so", ec)) return (sub / "libopenvino_c.so").string();
    if (!fs::is_directory(sub, ec)) continue;
    for (const auto& entry : fs::directory_iterator(sub, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("libopenvino_c.so.", 0) == 0) return entry.path().string();
    }
  }
  return "";
}

void load_locked(const std::string& given, const std::string& source) {
  std::string path = given;
  std::error_code ec;
  if (fs::is_directory(given, ec)) {
    path = library_in(given);
    if (path.empty()) throw LibraryNotFoundError("'" + given + "' (" + source + ") holds no libopenvino_c.so");
  } else if (given.find('/') != std::string::npos && !fs::exists(given, ec)) {
    throw LibraryNotFoundError("'" + given + "' (" + source + ") does not exist");
  }
  if (g_loaded.load()) {
    if (path == g_info.path) return;
    throw LibraryNotFoundError("cannot load OpenVINO from '" + path + "': '" + g_info.path + "' is already loaded");
  }
  // RTLD_LOCAL (library_loading.h): OpenVINO's frontends link their protobuf statically and
  // export none of it, so it never meets libtensorflow's.
  detail::OpenedLibrary library(path);
  if (!library.opened()) throw LibraryNotFoundError("cannot load OpenVINO from '" + path + "': " + library.error());
  ov::Api api;
  SMRT_OV_FUNCTIONS(SMRT_RESOLVE_FROM_LIBRARY)
  if (library.missing()) {
    throw LibraryNotFoundError("'" + path + "' is not a usable libopenvino_c: it lacks " + library.missing());
  }
  library.keep();
  g_api = api;
  ov_version_t version{};
  std::string number = "unknown";
  if (g_api.ov_get_openvino_version(&version) == ov::kOk) {
    if (version.buildNumber) number = version.buildNumber;
    g_api.ov_version_free(&version);
  }
  g_info = {path, number, source};
  g_loaded.store(&g_api, std::memory_order_release);
}

}  // namespace

namespace runtime {

void load_openvino(const std::string& path, const std::string& source) {
  std::lock_guard<std::mutex> lock(g_mutex);
  load_locked(path, source);
}

void ensure_openvino_loaded(const std::vector<std::pair<std::string, std::string>>& hints) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_loaded.load()) return;
  if (const char* env = std::getenv("SMRT_LIBOPENVINO"); env && *env) {
    try {
      load_locked(env, "$SMRT_LIBOPENVINO");  // an explicit choice: its error is the one to report
    } catch (const LibraryNotFoundError& e) {
      throw LibraryNotFoundError(std::string(kInstallHint) + "\nTried:\n  " + e.what());
    }
    return;
  }
  std::vector<std::pair<std::string, std::string>> candidates;
  for (const auto& [dir, source] : hints) {
    if (std::string found = library_in(dir); !found.empty()) candidates.emplace_back(found, source);
  }
  if (const fs::path site = detail::site_packages_beside_libsmrt(); !site.empty()) {
    if (std::string found = library_in(site / "openvino"); !found.empty()) candidates.emplace_back(found, "openvino wheel");
  }
  candidates.emplace_back("libopenvino_c.so", "system");
  std::string tried;
  for (const auto& [path, source] : candidates) {
    try {
      load_locked(path, source);
      return;
    } catch (const LibraryNotFoundError& e) {
      tried += std::string("\n  ") + e.what();
    }
  }
  throw LibraryNotFoundError(std::string(kInstallHint) + "\nTried:" + tried);
}

bool openvino_loaded() noexcept { return g_loaded.load() != nullptr; }

Info openvino_info() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_loaded.load()) throw LibraryNotFoundError("OpenVINO is not loaded yet");
  return g_info;
}

}  // namespace runtime

const ov::Api& ov::api() {
  if (const Api* loaded = g_loaded.load(std::memory_order_acquire)) return *loaded;
  runtime::ensure_openvino_loaded();
  return *g_loaded.load();
}

}  // namespace smrt
