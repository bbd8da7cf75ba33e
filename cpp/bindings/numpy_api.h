// Include NumPy's C API the same way in every file of the module; module.cc imports it.
#pragma once

#define PY_ARRAY_UNIQUE_SYMBOL smrt_ARRAY_API
#define NPY_NO_DEPRECATED_API NPY_1_22_API_VERSION
#define NPY_TARGET_VERSION NPY_1_22_API_VERSION  // runs on any NumPy >= 1.22
#ifndef SMRT_IMPORT_NUMPY
#define NO_IMPORT_ARRAY
#endif
#include <Python.h>
#include <numpy/arrayobject.h>
