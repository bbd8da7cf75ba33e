// Finding and loading libtensorflow at run time: smrt never links against it.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace smrt::runtime {

struct Info {
  std::string path;     // the library smrt loaded its C API from
  std::string version;  // TF_Version()
  std::string source;   // how it was found: "explicit", "environment", "tensorflow wheel", "system"...
};

// Loads libtensorflow's C API from `path`: the wheel's libtensorflow_cc.so.2, a C distribution's
// libtensorflow.so.2, a directory holding either (directly or in lib/), or a bare file name for
// the loader's search path. Once one library is loaded, loading the same path again is a no-op
// and another path throws. Throws LibraryNotFoundError with the loader's message.
void load_library(const std::string& path, const std::string& source = "explicit");

// Loads a library if none is, trying in order: $SMRT_LIBTENSORFLOW (its failure is final);
// each (directory, source) of `hints` (the Python module passes the tensorflow package it
// found); the tensorflow wheel installed beside libsmrt itself; libtensorflow.so.2 and
// libtensorflow_cc.so.2 on the loader's search path. Throws LibraryNotFoundError saying what was
// tried and how to install a library.
void ensure_loaded(const std::vector<std::pair<std::string, std::string>>& hints = {});

bool is_loaded() noexcept;
// Throws LibraryNotFoundError if no library is loaded.
Info info();

}  // namespace smrt::runtime
