// smrt::Error (C++) -> the matching class of smrt.errors (Python), registered once.
#pragma once

#include <pybind11/pybind11.h>

namespace smrt::bindings {

void register_exceptions();

}  // namespace smrt::bindings
