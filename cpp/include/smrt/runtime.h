// Finding and loading libtensorflow at run time: smrt never links against it.
#pragma once

#include <string>

namespace smrt::runtime {

struct Info {
  std::string path;     // the library smrt loaded its C API from
  std::string version;  // TF_Version()
};

// Loads libtensorflow's C API from `path` (a libtensorflow.so.2 or the wheel's
// libtensorflow_cc.so.2). Once one library is loaded, loading the same path again is a no-op
// and another path throws. Throws LibraryNotFoundError with the loader's message.
void load_library(const std::string& path);

// Loads a library if none is: $SMRT_LIBTENSORFLOW, then libtensorflow.so.2 and
// libtensorflow_cc.so.2 on the loader's search path. Throws LibraryNotFoundError saying how to
// install one.
void ensure_loaded();

bool is_loaded() noexcept;
// Throws LibraryNotFoundError if no library is loaded.
Info info();

}  // namespace smrt::runtime
