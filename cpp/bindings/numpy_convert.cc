#include "numpy_convert.h"

#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <mutex>
#include <string>

#include "numpy_api.h"
#include "../src/shape_text.h"
#include "../src/small_array.h"

namespace py = pybind11;

namespace smrt::bindings {

using ::smrt::detail::SmallArray;
namespace {

constexpr std::uintptr_t kAlignment = kTensorAlignment;  // less-aligned data is copied
constexpr int kNoNumpyType = -1;
constexpr std::size_t kInlineRank = 16;  // dimensions kept on the stack; more go to the heap

// Clears a conversion failure the caller reports as an smrt error; KeyboardInterrupt,
// MemoryError and anything else that is not an ordinary Exception propagates as it is.
void clear_conversion_error() {
  if (PyErr_ExceptionMatches(PyExc_MemoryError) || !PyErr_ExceptionMatches(PyExc_Exception)) {
    throw py::error_already_set();
  }
  PyErr_Clear();
}

// ml_dtypes' bfloat16, the one TensorFlow itself uses; looked up on first need. Imported
// under pybind11's GIL-safe once: a C++ static would deadlock two threads (the import
// releases the GIL while the other thread waits on the static's guard holding it).
PyArray_Descr* bfloat16_descr() {
  PYBIND11_CONSTINIT static py::gil_safe_call_once_and_store<py::object> storage;
  const py::object& descr = storage.call_once_and_store_result([]() -> py::object {
    try {
      py::object type = py::module_::import("ml_dtypes").attr("bfloat16");
      PyArray_Descr* d = nullptr;
      if (PyArray_DescrConverter(type.ptr(), &d)) return py::reinterpret_steal<py::object>(reinterpret_cast<PyObject*>(d));
      PyErr_Clear();
    } catch (const py::error_already_set&) {
    }
    return py::none();
  }).get_stored();
  return descr.is_none() ? nullptr : reinterpret_cast<PyArray_Descr*>(descr.ptr());
}

int numpy_type(DType dtype) {
  switch (dtype) {
    case DType::kFloat16: return NPY_HALF;
    case DType::kFloat32: return NPY_FLOAT32;
    case DType::kFloat64: return NPY_FLOAT64;
    case DType::kInt8: return NPY_INT8;
    case DType::kInt16: return NPY_INT16;
    case DType::kInt32: return NPY_INT32;
    case DType::kInt64: return NPY_INT64;
    case DType::kUInt8: return NPY_UINT8;
    case DType::kUInt16: return NPY_UINT16;
    case DType::kUInt32: return NPY_UINT32;
    case DType::kUInt64: return NPY_UINT64;
    case DType::kBool: return NPY_BOOL;
    case DType::kComplex64: return NPY_COMPLEX64;
    case DType::kComplex128: return NPY_COMPLEX128;
    case DType::kBFloat16: {
      PyArray_Descr* d = bfloat16_descr();
      return d ? d->type_num : kNoNumpyType;
    }
    default: return kNoNumpyType;
  }
}

std::string describe_dtype(PyArray_Descr* descr) {
  py::str s(reinterpret_cast<PyObject*>(descr));
  return std::string(s);
}

// One input being converted: its spec, and what errors call it (built only on error).
struct Input {
  const TensorSpec& spec;
  const char* owner_kind;     // "signature", "concrete function"
  const std::string& owner;   // its key or name

  std::string label() const { return "input '" + spec.key + "' of " + owner_kind + " '" + owner + "'"; }
  [[noreturn]] void throw_dtype_mismatch(std::string_view got) const {
    throw InputTypeError(label() + " expects " + std::string(dtype_name(spec.dtype)) + ", got " + std::string(got));
  }
};

void destroy_tensor_capsule(PyObject* capsule) {
  Tensor owned(static_cast<TF_Tensor*>(PyCapsule_GetPointer(capsule, "smrt.Tensor")));
}

std::vector<int64_t> dims_of(PyArrayObject* array) {
  const int nd = PyArray_NDIM(array);
  std::vector<int64_t> dims(static_cast<std::size_t>(nd));
  for (int i = 0; i < nd; ++i) dims[static_cast<std::size_t>(i)] = PyArray_DIM(array, i);
  return dims;
}

// Throws unless every value of integer array `array` fits integer dtype `want`.
void check_int_range(PyArrayObject* array, PyArray_Descr* want, const Input& in) {
  if (PyArray_SIZE(array) == 0) return;
  py::handle values(reinterpret_cast<PyObject*>(array));
  py::object info = py::module_::import("numpy").attr("iinfo")(py::handle(reinterpret_cast<PyObject*>(want)));
  py::object lo = values.attr("min")(), hi = values.attr("max")();
  if (lo < info.attr("min") || hi > info.attr("max")) {
    throw InputTypeError(in.label() + " expects " + describe_dtype(want) + ", whose range [" +
                         std::string(py::str(info.attr("min"))) + ", " + std::string(py::str(info.attr("max"))) +
                         "] does not hold the values given (" + std::string(py::str(lo)) + " to " +
                         std::string(py::str(hi)) + ")");
  }
}

// An ndarray of the signature's dtype for `value`. Arrays and NumPy scalars carry a dtype that
// must match exactly; anything else (Python scalars, lists, objects with __array__) converts
// if NumPy's same_kind casting allows, or if integers fit the integer dtype.
py::object as_typed_array(PyObject* value, const Input& in, PyArray_Descr* want) {
  if (PyArray_Check(value)) {
    // By type number: byte order is not the dtype's business (the copy path swaps it), and
    // int64/longlong are one type on LP64.
    if (!PyArray_EquivTypenums(PyArray_DESCR(reinterpret_cast<PyArrayObject*>(value))->type_num, want->type_num)) {
      in.throw_dtype_mismatch(describe_dtype(PyArray_DESCR(reinterpret_cast<PyArrayObject*>(value))));
    }
    return py::reinterpret_borrow<py::object>(value);
  }
  if (PyArray_IsScalar(value, Generic)) {
    py::object array = py::reinterpret_steal<py::object>(PyArray_FromScalar(value, nullptr));
    if (!array) throw py::error_already_set();
    return as_typed_array(array.ptr(), in, want);
  }
  // Python scalars, lists, objects with __array__: check the kind NumPy infers, then convert.
  py::object natural = py::reinterpret_steal<py::object>(PyArray_FromAny(value, nullptr, 0, 0, 0, nullptr));
  if (!natural) {
    clear_conversion_error();
    in.throw_dtype_mismatch("a " + std::string(Py_TYPE(value)->tp_name) + ", which is not array-like");
  }
  auto* natural_array = reinterpret_cast<PyArrayObject*>(natural.ptr());
  PyArray_Descr* got = PyArray_DESCR(natural_array);
  // Python ints infer int64, which same_kind will not cast to unsigned: allow any integer to
  // integer conversion whose values all fit (checked below; NumPy's cast would wrap).
  const bool int_to_int = PyTypeNum_ISINTEGER(got->type_num) && PyTypeNum_ISINTEGER(want->type_num);
  if (got->type_num == NPY_OBJECT || !(int_to_int || PyArray_CanCastTypeTo(got, want, NPY_SAME_KIND_CASTING))) {
    in.throw_dtype_mismatch("a " + std::string(Py_TYPE(value)->tp_name) + " of " + describe_dtype(got));
  }
  if (int_to_int && !PyArray_EquivTypenums(got->type_num, want->type_num)) check_int_range(natural_array, want, in);
  Py_INCREF(want);  // PyArray_FromArray steals it
  py::object converted = py::reinterpret_steal<py::object>(
      PyArray_FromArray(natural_array, want, NPY_ARRAY_CARRAY | NPY_ARRAY_FORCECAST));
  if (!converted) throw py::error_already_set();
  return converted;
}

Tensor numeric_tensor(PyObject* value, const Input& in, InPlace& in_place) {
  const TensorSpec& spec = in.spec;
  py::object want_owner = py::reinterpret_steal<py::object>(reinterpret_cast<PyObject*>(numpy_descr(spec.dtype)));
  if (!want_owner) {
    throw InputTypeError(in.label() + " has dtype " + std::string(dtype_name(spec.dtype)) +
                         (spec.dtype == DType::kBFloat16 ? ", which needs the ml_dtypes package (pip install ml_dtypes)"
                                                         : ", which smrt cannot feed from NumPy"));
  }
  auto* want = reinterpret_cast<PyArray_Descr*>(want_owner.ptr());
  py::object array_owner = as_typed_array(value, in, want);
  auto* array = reinterpret_cast<PyArrayObject*>(array_owner.ptr());
  const int rank = PyArray_NDIM(array);
  SmallArray<int64_t, kInlineRank> dims(static_cast<std::size_t>(rank));
  for (int i = 0; i < rank; ++i) dims[static_cast<std::size_t>(i)] = PyArray_DIM(array, i);
  // Shapes are the core's to check, once, when the signature runs (Signature::run).

  auto* data = static_cast<char*>(PyArray_DATA(array));
  const auto nbytes = static_cast<std::size_t>(PyArray_NBYTES(array));
  const bool flat = PyArray_IS_C_CONTIGUOUS(array) && PyArray_ISNOTSWAPPED(array);
  if (flat && nbytes > 0 && reinterpret_cast<std::uintptr_t>(data) % kAlignment == 0) {
    // Only the caller's own array is reused without a reference: the caller holds it for the call.
    if (in_place.reuse && array_owner.ptr() == value) {
      in_place.reused = in_place.reuse->take(spec.dtype, dims.data(), rank, data, nbytes);
      return std::move(in_place.reused->tensor);
    }
    if (in_place.loans) {
      return Tensor::wrap(spec.dtype, dims.data(), rank, data, nbytes, &Loans::give_back,
                          in_place.loans->lend(reinterpret_cast<PyObject*>(array)));
    }
  }
  // One copy, straight into TensorFlow's aligned buffer.
  Tensor t = Tensor::allocate(spec.dtype, dims.data(), rank);
  if (flat) {
    if (nbytes > 0) std::memcpy(t.raw_data(), data, nbytes);
    return t;
  }
  // Strided or byte-swapped: NumPy's copy handles both.
  std::vector<npy_intp> npy_dims(dims.begin(), dims.end());
  Py_INCREF(want);
  py::object view = py::reinterpret_steal<py::object>(PyArray_NewFromDescr(
      &PyArray_Type, want, rank, npy_dims.data(), nullptr, t.raw_data(), NPY_ARRAY_CARRAY, nullptr));
  if (!view || PyArray_CopyInto(reinterpret_cast<PyArrayObject*>(view.ptr()), array) < 0) throw py::error_already_set();
  return t;
}

// The UTF-8 (str) or raw (bytes) contents of one string element; `keep` holds anything made
// for it, so the view stays valid.
std::string_view string_element(PyObject* item, const Input& in,
                                std::vector<py::object>& keep) {
  if (PyBytes_Check(item)) return {PyBytes_AS_STRING(item), static_cast<std::size_t>(PyBytes_GET_SIZE(item))};
  if (PyUnicode_Check(item)) {
    Py_ssize_t size = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(item, &size);  // cached in the str object
    if (!utf8) {
      clear_conversion_error();
      throw InputTypeError(in.label() + " holds a str that is not valid Unicode");
    }
    return {utf8, static_cast<std::size_t>(size)};
  }
  if (PyByteArray_Check(item) || PyMemoryView_Check(item)) {
    PyObject* bytes = PyBytes_FromObject(item);
    if (!bytes) throw py::error_already_set();
    keep.push_back(py::reinterpret_steal<py::object>(bytes));
    return string_element(bytes, in, keep);
  }
  in.throw_dtype_mismatch("an element of type " + std::string(Py_TYPE(item)->tp_name));
}

// The bytes of every element of a NumPy S, U or object array, in C order.
std::vector<std::string_view> string_elements(PyArrayObject* flat, const Input& in,
                                              std::vector<py::object>& keep) {
  const int type = PyArray_TYPE(flat);
  const char* data = static_cast<const char*>(PyArray_DATA(flat));
  const auto itemsize = static_cast<std::size_t>(PyArray_ITEMSIZE(flat));
  std::vector<std::string_view> out(static_cast<std::size_t>(PyArray_SIZE(flat)));
  for (std::size_t i = 0; i < out.size(); ++i) {
    const char* item = data + i * itemsize;
    if (type == NPY_STRING) {  // fixed-width bytes: NumPy drops trailing NULs, so do we
      std::size_t size = itemsize;
      while (size > 0 && item[size - 1] == '\0') --size;
      out[i] = {item, size};
    } else if (type == NPY_UNICODE) {  // fixed-width UCS4, trailing NULs dropped likewise
      std::size_t chars = itemsize / 4;
      const auto* ucs4 = reinterpret_cast<const Py_UCS4*>(item);
      while (chars > 0 && ucs4[chars - 1] == 0) --chars;
      // CPython trusts the caller here: a code point past U+10FFFF would become bad UTF-8.
      if (std::any_of(ucs4, ucs4 + chars, [](Py_UCS4 c) { return c > 0x10ffff; })) {
        throw InputTypeError(in.label() + " holds a str element that is not valid Unicode");
      }
      PyObject* text = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, ucs4, static_cast<Py_ssize_t>(chars));
      if (!text) throw py::error_already_set();
      keep.push_back(py::reinterpret_steal<py::object>(text));
      out[i] = string_element(text, in, keep);
    } else {
      out[i] = string_element(*reinterpret_cast<PyObject* const*>(item), in, keep);
    }
  }
  return out;
}

Tensor string_tensor(PyObject* value, const Input& in) {
  // Anything but an ndarray becomes an object array, so each element keeps its Python type:
  // NumPy's own inference would turn [1, b"x"] into b"1", b"x" and strip bytes' trailing NULs.
  py::object array_owner = py::reinterpret_borrow<py::object>(value);
  if (!PyArray_Check(value)) {
    array_owner = py::reinterpret_steal<py::object>(
        PyArray_FromAny(value, PyArray_DescrFromType(NPY_OBJECT), 0, 0, 0, nullptr));
    if (!array_owner) {
      clear_conversion_error();
      in.throw_dtype_mismatch("a " + std::string(Py_TYPE(value)->tp_name) + ", which is not array-like");
    }
  }
  auto* array = reinterpret_cast<PyArrayObject*>(array_owner.ptr());
  const int type = PyArray_TYPE(array);
  if (type != NPY_OBJECT && type != NPY_STRING && type != NPY_UNICODE) {
    in.throw_dtype_mismatch(describe_dtype(PyArray_DESCR(array)));
  }
  py::object contiguous;
  if (type == NPY_UNICODE && !PyArray_ISNOTSWAPPED(array)) {
    // Big-endian UCS4 (">U"): a native-order copy, so code points are read as written.
    PyArray_Descr* native = PyArray_DescrNewByteorder(PyArray_DESCR(array), NPY_NATIVE);
    if (!native) throw py::error_already_set();
    contiguous = py::reinterpret_steal<py::object>(PyArray_FromArray(array, native, NPY_ARRAY_CARRAY | NPY_ARRAY_FORCECAST));
  } else {
    contiguous = py::reinterpret_steal<py::object>(reinterpret_cast<PyObject*>(PyArray_GETCONTIGUOUS(array)));
  }
  if (!contiguous) throw py::error_already_set();
  std::vector<py::object> keep;
  const std::vector<std::string_view> elements =
      string_elements(reinterpret_cast<PyArrayObject*>(contiguous.ptr()), in, keep);
  const std::vector<int64_t> dims = dims_of(array);
  const int rank = static_cast<int>(dims.size());

  Tensor t = Tensor::strings(dims.data(), rank);
  for (std::size_t i = 0; i < elements.size(); ++i) t.set_string(static_cast<int64_t>(i), elements[i]);
  return t;
}

Tensor convert(PyObject* value, const Input& in, InPlace& in_place) {
  if (in.spec.dtype == DType::kString) return string_tensor(value, in);
  return numeric_tensor(value, in, in_place);
}

// ReusedInput's tensors own nothing: the caller's array stays the caller's.
void leave_memory(void*, std::size_t, void*) {}

}  // namespace

namespace {

// Loan records recycled per thread: a call's arrays are normally handed back before it
// returns, so a thread reuses the same few records instead of allocating one per input per
// call. A record freed on another thread (TensorFlow kept the array) joins that thread's pool.
constexpr std::size_t kPooledLoans = 16;
thread_local bool loan_pool_gone = false;  // trivially destructible: readable at thread exit
struct LoanPool {
  std::vector<Loans::Loan*> free;
  ~LoanPool() {
    loan_pool_gone = true;
    for (Loans::Loan* loan : free) delete loan;
  }
};
thread_local LoanPool loan_pool;

Loans::Loan* take_loan() {
  if (!loan_pool_gone && !loan_pool.free.empty()) {
    Loans::Loan* loan = loan_pool.free.back();
    loan_pool.free.pop_back();
    return loan;
  }
  return new Loans::Loan{};
}

void recycle(Loans::Loan* loan) {
  if (loan_pool_gone || loan_pool.free.size() >= kPooledLoans) {
    delete loan;
    return;
  }
  if (loan_pool.free.capacity() == 0) loan_pool.free.reserve(kPooledLoans);  // the pool's one allocation
  loan_pool.free.push_back(loan);
}

}  // namespace

// (numpy_convert.h) The DType of NumPy dtype `descr`: kString for object arrays (of bytes),
// kInvalid for dtypes TensorFlow has no match for.
DType dtype_of(PyArray_Descr* descr) {
  if (descr->type_num == NPY_OBJECT) return DType::kString;
  for (int d = 1; d <= static_cast<int>(DType::kUInt64); ++d) {
    const int type = numpy_type(static_cast<DType>(d));
    if (type != kNoNumpyType && PyArray_EquivTypenums(type, descr->type_num)) return static_cast<DType>(d);
  }
  return DType::kInvalid;
}

// (numpy_convert.h) A new reference to the NumPy dtype for `dtype`, or nullptr if NumPy cannot hold it.
PyArray_Descr* numpy_descr(DType dtype) {
  // Each found once and kept (a reference held for good): every call converts through here, two
  // or more times. Callers hold the GIL, which guards the table.
  static PyArray_Descr* found[static_cast<int>(DType::kUInt64) + 1] = {};
  const auto index = static_cast<std::size_t>(dtype);
  const bool cached = index < std::size(found);
  if (cached && found[index]) {
    Py_INCREF(found[index]);
    return found[index];
  }
  PyArray_Descr* d = nullptr;
  if (dtype == DType::kBFloat16) {
    d = bfloat16_descr();
    Py_XINCREF(d);
  } else if (const int type = numpy_type(dtype); type != kNoNumpyType) {
    d = PyArray_DescrFromType(type);
  }
  if (d && cached) {
    Py_INCREF(d);
    found[index] = d;
  }
  return d;
}


Loans::~Loans() {
  for (std::size_t i = 0; i < count_; ++i) {
    Loan* loan = at(i);
    if (--loan->holders == 0) recycle(loan);
  }
}

Loans::Loan* Loans::lend(PyObject* array) {
  if (count_ >= kInline) more_.reserve(count_ - kInline + 1);  // so the store below cannot throw after the INCREF
  Loan* loan = take_loan();
  loan->array = array;
  loan->returned.store(false, std::memory_order_relaxed);
  loan->holders.store(2, std::memory_order_relaxed);
  Py_INCREF(array);
  if (count_ < kInline) {
    inline_[count_] = loan;
  } else {
    more_.push_back(loan);
  }
  ++count_;
  return loan;
}

namespace {

// Arrays TensorFlow handed back on a thread without the GIL, released later by a thread that
// has it. Waiting for the GIL there could deadlock: a thread that holds it (a call with
// release_gil=False, a close) may be waiting for that very TensorFlow thread to finish.
std::mutex returned_mutex;
std::vector<PyObject*>& returned_arrays() {
  static auto* arrays = new std::vector<PyObject*>;  // never destroyed: used up to exit
  return *arrays;
}
std::atomic<bool> release_scheduled{false};

// Whether this thread holds the GIL: it has a thread state, and that state is the current one.
// (PyGILState_Check answers 1 on every thread once a subinterpreter exists; before 3.12 the
// current state is process-wide, so it alone would name another thread's.) A thread whose
// state this cannot see (a subinterpreter's) takes the queue: slower, never unsafe.
bool holds_gil() {
  PyThreadState* mine = PyGILState_GetThisThreadState();
#if PY_VERSION_HEX >= 0x030D0000
  return mine != nullptr && mine == PyThreadState_GetUnchecked();
#else
  return mine != nullptr && mine == _PyThreadState_UncheckedGet();
#endif
}

int release_returned(void*) {
  std::vector<PyObject*> arrays;
  {
    std::lock_guard<std::mutex> lock(returned_mutex);
    arrays.swap(returned_arrays());
    release_scheduled = false;
  }
  for (PyObject* array : arrays) Py_DECREF(array);
  return 0;
}

}  // namespace

void Loans::give_back(void*, std::size_t, void* arg) {
  auto* loan = static_cast<Loan*>(arg);
  // At interpreter exit there is nothing left to release into.
  if (Py_IsInitialized()) {
    if (holds_gil()) {  // the usual case: the call's own thread, deleting its inputs
      Py_DECREF(loan->array);
    } else {
      try {
        std::lock_guard<std::mutex> lock(returned_mutex);
        returned_arrays().push_back(loan->array);
      } catch (...) {  // no memory: keep the array rather than risk a deadlock
      }
      // Py_AddPendingCall needs no GIL; the main thread runs it between bytecodes (so while
      // it waits in C, the arrays wait too: at most the one input a variable kept, as lending
      // stops after that).
      if (!release_scheduled.exchange(true) && Py_AddPendingCall(&release_returned, nullptr) != 0) {
        release_scheduled = false;  // the queue was full: the next hand-back schedules it
      }
    }
  }
  loan->returned = true;
  if (--loan->holders == 0) recycle(loan);
}

bool Loans::all_returned() const {
  for (std::size_t i = 0; i < count_; ++i) {
    if (!at(i)->returned) return false;
  }
  return true;
}

Tensor to_tensor(PyObject* value, const Signature& sig, std::size_t index, InPlace& in_place) {
  return convert(value, Input{sig.inputs()[index], "signature", sig.key()}, in_place);
}

Tensor to_tensor(PyObject* value, const TensorSpec& spec, const std::string& function, Loans* loans) {
  InPlace in_place{loans, nullptr, nullptr};
  return convert(value, Input{spec, "concrete function", function}, in_place);
}

ReusedInput::~ReusedInput() { delete kept_.load(); }

std::unique_ptr<ReusedInput::Wrapped> ReusedInput::take(DType dtype, const int64_t* dims, int rank, void* data,
                                                        std::size_t nbytes) {
  std::unique_ptr<Wrapped> kept(kept_.exchange(nullptr));
  if (kept && kept->data == data && kept->dims.size() == static_cast<std::size_t>(rank) &&
      std::equal(dims, dims + rank, kept->dims.begin())) {
    return kept;
  }
  auto made = std::make_unique<Wrapped>();  // `kept`, if any, goes: it did not fit
  made->tensor = Tensor::wrap(dtype, dims, rank, data, nbytes, &leave_memory, nullptr);
  made->data = data;
  made->dims.assign(dims, dims + rank);
  return made;
}

void ReusedInput::keep(std::unique_ptr<Wrapped> wrapped) noexcept { delete kept_.exchange(wrapped.release()); }

Tensor lend_tensor(PyObject* value, const Signature& sig, std::size_t index, Loans& loans, bool check_shapes) {
  const Input in{sig.inputs()[index], "signature", sig.key()};
  if (in.spec.dtype == DType::kString) {
    throw InputTypeError(in.label() + " takes strings, which a bound call cannot read in place: call the signature");
  }
  if (!PyArray_Check(value)) {
    throw InputTypeError(in.label() + " must be bound to a NumPy array, got " + std::string(Py_TYPE(value)->tp_name));
  }
  py::object want_owner = py::reinterpret_steal<py::object>(reinterpret_cast<PyObject*>(numpy_descr(in.spec.dtype)));
  if (!want_owner) in.throw_dtype_mismatch("an array NumPy cannot describe");
  as_typed_array(value, in, reinterpret_cast<PyArray_Descr*>(want_owner.ptr()));  // throws on another dtype
  auto* array = reinterpret_cast<PyArrayObject*>(value);
  const int rank = PyArray_NDIM(array);
  SmallArray<int64_t, kInlineRank> dims(static_cast<std::size_t>(rank));
  for (int i = 0; i < rank; ++i) dims[static_cast<std::size_t>(i)] = PyArray_DIM(array, i);
  sig.check_input(index, in.spec.dtype, dims.data(), rank, check_shapes);
  auto* data = static_cast<char*>(PyArray_DATA(array));
  const auto nbytes = static_cast<std::size_t>(PyArray_NBYTES(array));
  if (nbytes == 0) return Tensor::allocate(in.spec.dtype, dims.data(), rank);  // nothing to read in place
  if (!PyArray_IS_C_CONTIGUOUS(array) || !PyArray_ISNOTSWAPPED(array) ||
      reinterpret_cast<std::uintptr_t>(data) % kAlignment != 0) {
    throw InvalidInputError(in.label() + " must be bound to a C-contiguous, native-endian, 64-byte aligned array, "
                            "which TensorFlow reads in place (smrt.aligned(array) makes one)");
  }
  return Tensor::wrap(in.spec.dtype, dims.data(), rank, data, nbytes, &Loans::give_back, loans.lend(value));
}

void check_output_array(PyObject* value, const Signature& sig, std::size_t index, bool check_shapes) {
  const TensorSpec& spec = sig.outputs()[index];
  const std::string label = "output '" + spec.key + "' of signature '" + sig.key() + "'";
  if (spec.dtype == DType::kString) {
    throw InputTypeError(label + " is strings, which a bound call cannot write in place: call the signature");
  }
  if (!PyArray_Check(value)) {
    throw InputTypeError(label + " must be bound to a NumPy array, got " + std::string(Py_TYPE(value)->tp_name));
  }
  auto* array = reinterpret_cast<PyArrayObject*>(value);
  const int want = numpy_type(spec.dtype);
  if (want == kNoNumpyType || !PyArray_EquivTypenums(PyArray_TYPE(array), want)) {
    throw InputTypeError(label + " is " + std::string(dtype_name(spec.dtype)) + ", but was bound to an array of " +
                         describe_dtype(PyArray_DESCR(array)));
  }
  if (!PyArray_IS_C_CONTIGUOUS(array) || !PyArray_ISNOTSWAPPED(array) || !PyArray_ISWRITEABLE(array)) {
    throw InvalidInputError(label + " must be bound to a writeable, C-contiguous, native-endian array");
  }
  const int rank = PyArray_NDIM(array);
  if (check_shapes && !spec.unknown_rank) {
    bool fits = static_cast<std::size_t>(rank) == spec.shape.size();
    for (int i = 0; fits && i < rank; ++i) {
      const int64_t declared = spec.shape[static_cast<std::size_t>(i)];
      fits = declared < 0 || declared == PyArray_DIM(array, i);
    }
    if (!fits) throw InvalidInputError(label + " cannot fit an array of shape " + std::string(py::str(py::handle(value).attr("shape"))));
  }
}

void copy_output(const Tensor& tensor, PyObject* value, const Signature& sig, std::size_t index) {
  auto* array = reinterpret_cast<PyArrayObject*>(value);
  const int rank = tensor.rank();
  bool same = rank == PyArray_NDIM(array) && PyArray_ISWRITEABLE(array);
  for (int i = 0; same && i < rank; ++i) same = tensor.dim(i) == PyArray_DIM(array, i);
  if (!same) {
    throw InvalidInputError("output '" + sig.outputs()[index].key + "' of signature '" + sig.key() +
                            "' has shape " + ::smrt::detail::shape_string(tensor.shape().data(), rank) +
                            " this run, which the writeable array " +
                            "of shape " + std::string(py::str(py::handle(value).attr("shape"))) + " bound to it cannot take");
  }
  const std::size_t nbytes = tensor.byte_size();
  // memmove: an output may be the very buffer of a bound input, which may be this array.
  if (nbytes > 0) std::memmove(PyArray_DATA(array), tensor.raw_data(), nbytes);
}

PyObject* to_numpy(Tensor tensor, const std::string& key) {
  const DType dtype = tensor.dtype();
  const int rank = tensor.rank();
  SmallArray<npy_intp, kInlineRank> dims(static_cast<std::size_t>(rank));
  for (int i = 0; i < rank; ++i) dims[static_cast<std::size_t>(i)] = tensor.dim(i);

  if (dtype == DType::kString) {  // object array of bytes, as TensorFlow's .numpy() gives
    PyObject* array = PyArray_SimpleNew(rank, dims.data(), NPY_OBJECT);
    if (!array) return nullptr;
    auto** items = static_cast<PyObject**>(PyArray_DATA(reinterpret_cast<PyArrayObject*>(array)));
    const int64_t n = tensor.num_elements();
    for (int64_t i = 0; i < n; ++i) {
      const std::string_view s = tensor.string_at(i);
      PyObject* item = PyBytes_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size()));
      if (!item) {
        Py_DECREF(array);
        return nullptr;
      }
      Py_XSETREF(items[i], item);  // NumPy filled in NULL or None
    }
    return array;
  }

  PyArray_Descr* descr = numpy_descr(dtype);
  if (!descr) {
    throw InputTypeError("output '" + key + "' has dtype " + std::string(dtype_name(dtype)) +
                         (dtype == DType::kBFloat16 ? ", which needs the ml_dtypes package (pip install ml_dtypes)"
                                                    : ", which NumPy cannot hold"));
  }
  const std::size_t nbytes = tensor.byte_size();
  auto* data = static_cast<char*>(tensor.raw_data());  // the buffer's: sole_owner() does not move it
  if (nbytes == 0 || data == nullptr) return PyArray_Empty(rank, dims.data(), descr, 0);
  if (!tensor.sole_owner()) {
    // TensorFlow still holds this buffer (a graph constant, a variable, the caller's own input
    // handed back by an identity): the caller gets a copy, never a window onto model state.
    PyObject* copy = PyArray_Empty(rank, dims.data(), descr, 0);
    if (copy) std::memcpy(PyArray_DATA(reinterpret_cast<PyArrayObject*>(copy)), data, nbytes);
    return copy;
  }
  // A view of TensorFlow's buffer; the capsule deletes the TF_Tensor with the last view.
  PyObject* capsule = PyCapsule_New(tensor.get(), "smrt.Tensor", destroy_tensor_capsule);
  if (!capsule) {
    Py_DECREF(descr);
    return nullptr;
  }
  tensor.release();
  PyObject* array = PyArray_NewFromDescr(&PyArray_Type, descr, rank, dims.data(), nullptr, data, NPY_ARRAY_CARRAY, nullptr);
  if (!array) {
    Py_DECREF(capsule);
    return nullptr;
  }
  if (PyArray_SetBaseObject(reinterpret_cast<PyArrayObject*>(array), capsule) < 0) {  // steals capsule
    Py_DECREF(array);
    return nullptr;
  }
  return array;
}

}  // namespace smrt::bindings
