// CPython's vectorcall protocol (PEP 590) for a pybind11 class: `obj(...)` reaches a C++ member
// function with the arguments as CPython holds them (a C array, keyword names in a tuple),
// without pybind11's dispatcher building argument lists and trying overloads. What makes a
// signature call cost about what the C API's own call costs.
#pragma once

#include <pybind11/pybind11.h>

#include <cstddef>

namespace smrt::bindings {

// Where an instance keeps its vectorcall function: right after pybind11's own instance record.
inline constexpr Py_ssize_t kVectorcallOffset =
    (sizeof(pybind11::detail::instance) + alignof(vectorcallfunc) - 1) / alignof(vectorcallfunc) *
    alignof(vectorcallfunc);

namespace detail {

// `Call`: PyObject* (T::*)(PyObject* const* args, std::size_t nargs, PyObject* kwnames),
// returning a new reference or throwing (C++ exceptions become Python ones as pybind11 maps them).
template <class T, auto Call>
PyObject* vectorcall(PyObject* self, PyObject* const* args, std::size_t nargsf, PyObject* kwnames) noexcept {
  void* value = reinterpret_cast<pybind11::detail::instance*>(self)->get_value_and_holder(nullptr, false).value_ptr();
  if (!value) {
    PyErr_Format(PyExc_TypeError, "%s.__init__() was not called", Py_TYPE(self)->tp_name);
    return nullptr;
  }
  try {
    return (static_cast<T*>(value)->*Call)(args, static_cast<std::size_t>(PyVectorcall_NARGS(nargsf)), kwnames);
  } catch (...) {
    pybind11::detail::try_translate_exceptions();
    return nullptr;
  }
}

// tp_call, for callers that have a tuple and a dict (and for instances pybind11 made without
// tp_new, whose vectorcall slot is empty): the same entry, the arguments laid out as vectorcall's.
template <class T, auto Call>
PyObject* call(PyObject* self, PyObject* args, PyObject* kwargs) noexcept {
  const Py_ssize_t n_args = PyTuple_GET_SIZE(args), n_kw = kwargs ? PyDict_GET_SIZE(kwargs) : 0;
  PyObject* kwnames = n_kw ? PyTuple_New(n_kw) : nullptr;
  if (n_kw && !kwnames) return nullptr;
  PyObject* small[8];
  const auto n = static_cast<std::size_t>(n_args + n_kw);
  PyObject** stack = n <= 8 ? small : static_cast<PyObject**>(PyMem_Malloc(n * sizeof(PyObject*)));
  if (!stack) {
    Py_XDECREF(kwnames);
    return PyErr_NoMemory();
  }
  for (Py_ssize_t i = 0; i < n_args; ++i) stack[i] = PyTuple_GET_ITEM(args, i);
  Py_ssize_t pos = 0, k = 0;
  PyObject *key = nullptr, *value = nullptr;
  while (n_kw && PyDict_Next(kwargs, &pos, &key, &value)) {
    Py_INCREF(key);
    PyTuple_SET_ITEM(kwnames, k, key);
    stack[n_args + k++] = value;
  }
  PyObject* result = vectorcall<T, Call>(self, stack, static_cast<std::size_t>(n_args), kwnames);
  if (stack != small) PyMem_Free(stack);
  Py_XDECREF(kwnames);
  return result;
}

template <class T, auto Call>
void set_slot(PyObject* self) {
  if (self) *reinterpret_cast<vectorcallfunc*>(reinterpret_cast<char*>(self) + kVectorcallOffset) = &vectorcall<T, Call>;
}

// Instances pybind11 makes for C++ return values come from tp_alloc; those Python makes
// (of this class or a Python subclass, whose tp_alloc is Python's own) from tp_new.
template <class T, auto Call>
PyObject* alloc_instance(PyTypeObject* type, Py_ssize_t n_items) {
  PyObject* self = PyType_GenericAlloc(type, n_items);
  set_slot<T, Call>(self);
  return self;
}

template <class T, auto Call>
PyObject* new_instance(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  PyObject* self = pybind11::detail::pybind11_object_new(type, args, kwargs);
  set_slot<T, Call>(self);
  return self;
}

}  // namespace detail

// For py::class_<T>(m, "Name", py::custom_type_setup(&enable_vectorcall<T, &T::call>)).
template <class T, auto Call>
void enable_vectorcall(PyHeapTypeObject* heap_type) {
  PyTypeObject* type = &heap_type->ht_type;
  type->tp_basicsize = kVectorcallOffset + static_cast<Py_ssize_t>(sizeof(vectorcallfunc));
  type->tp_vectorcall_offset = kVectorcallOffset;
  type->tp_flags |= Py_TPFLAGS_HAVE_VECTORCALL;
  type->tp_call = &detail::call<T, Call>;  // callers without vectorcall; also makes __call__ exist
  type->tp_new = &detail::new_instance<T, Call>;
  type->tp_alloc = &detail::alloc_instance<T, Call>;
}

// Python subclasses of such a class inherit the vectorcall slot but, before Python 3.12, not
// the flag that enables it; this sets it for `subclass` unless it defines its own __call__.
inline void inherit_vectorcall(PyTypeObject* subclass, PyTypeObject* base) {
  if (!PyType_IsSubtype(subclass, base)) throw pybind11::type_error("not a subclass of " + std::string(base->tp_name));
  if (subclass->tp_call == base->tp_call && subclass->tp_vectorcall_offset == kVectorcallOffset) {
    subclass->tp_flags |= Py_TPFLAGS_HAVE_VECTORCALL;
  }
}

}  // namespace smrt::bindings
