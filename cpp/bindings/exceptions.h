// smrt::Error (C++) -> the matching class of smrt.errors (Python), registered once.
#pragma once

#include <pybind11/pybind11.h>

namespace smrt::bindings {

// Maps each smrt::ErrorCode to smrt.errors.ERRORS[code]; call once at import.
void register_exceptions();
// {"kNotFound": 5, ...}: every C++ error code, for smrt.errors to be checked against.
pybind11::dict error_codes();

}  // namespace smrt::bindings
