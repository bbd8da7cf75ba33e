// Finding and loading libtensorflow at run time: smrt never links against it.
#pragma once

#include <optional>
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
// found); the tensorflow wheel installed beside libsmrt itself; the one found when smrt was
// installed (the CMake package's smrt_LIBTENSORFLOW), if still there; libtensorflow.so.2 and
// libtensorflow_cc.so.2 on the loader's search path. Throws LibraryNotFoundError saying what was
// tried and how to install a library.
void ensure_loaded(const std::vector<std::pair<std::string, std::string>>& hints = {});

// The library ensure_loaded(hints) would load first, found without loading it: its path and
// source, with an empty version (TF_Version needs the library loaded). Once a library is loaded,
// that one, with its version. Nothing if no candidate exists. Bare names for the loader's search
// path are looked up in $LD_LIBRARY_PATH and the usual system directories only. Throws
// LibraryNotFoundError if $SMRT_LIBTENSORFLOW names something that does not exist.
std::optional<Info> find_library(const std::vector<std::pair<std::string, std::string>>& hints = {});

bool is_loaded() noexcept;

// Loads a custom op library with TF_LoadLibrary (loading libtensorflow first if none is):
// a file, or a directory whose .so files are all loaded. Each path is loaded once per
// process; returns the ops it registers. Throws LibraryNotFoundError naming the path.
// $SMRT_OP_LIBRARIES (':'-separated paths) is loaded the same way at each Model::load.
std::vector<std::string> load_op_library(const std::string& path);

// Adds a directory (a site-packages) where Model::load looks for the op libraries of packages
// it knows (tensorflow-text's) when a model needs their ops. The Python module adds the one
// holding an installed tensorflow_text; C++ programs add theirs or load libraries themselves.
void add_op_package_root(const std::string& dir);

// Every op registered in the loaded libtensorflow and op libraries (TF_GetAllOpList), sorted.
std::vector<std::string> registered_ops();
// Throws LibraryNotFoundError if no library is loaded.
Info info();

}  // namespace smrt::runtime
