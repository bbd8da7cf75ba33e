// NumPy <-> smrt::Tensor. Inputs go to TensorFlow without a copy when they can; outputs are
// NumPy arrays viewing TensorFlow's buffers, which a capsule keeps alive.
#pragma once

#include <Python.h>

#include "numpy_api.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "smrt/model.h"

namespace smrt::bindings {

// The caller's arrays one call lends TensorFlow without a copy. TensorFlow hands each back
// (drops its reference, through the tensor's deallocator) when it is done with it, which is
// normally when the call's input tensors are destroyed. An array it keeps past that, e.g.
// because a signature assigned the input to a variable, now backs model state.
class Loans {
 public:
  struct Loan {
    PyObject* array;
    std::atomic<bool> returned{false};
    std::atomic<int> holders{2};  // TensorFlow's deallocator and this Loans
  };
  Loans() = default;
  Loans(const Loans&) = delete;
  Loans& operator=(const Loans&) = delete;
  ~Loans();

  // Records `array` as lent (taking a reference TensorFlow's deallocator drops); returns the
  // deallocator argument.
  Loan* lend(PyObject* array);
  // The TF_NewTensor deallocator for a Loan.
  static void give_back(void* data, std::size_t nbytes, void* loan);
  // False if TensorFlow still holds any lent array.
  bool all_returned() const;

 private:
  static constexpr std::size_t kInline = 8;  // loans recorded without allocating
  Loan* at(std::size_t i) const { return i < kInline ? inline_[i] : more_[i - kInline]; }
  Loan* inline_[kInline] = {};
  std::vector<Loan*> more_;
  std::size_t count_ = 0;
};

// One input's tensor over the caller's memory, kept from one call to the next for a signature
// that keeps no input (Signature::may_keep_inputs() false): a call over the same memory, dtype
// and shape takes it again instead of wrapping anew (TF_NewTensor and TF_DeleteTensor are a
// fair share of a small call). It holds no reference to the array: TensorFlow reads the memory
// only while a run lasts, and the caller holds the array until the call returns, so the array
// is lent for the call only, as without it. Thread-safe: a call that finds the tensor taken
// by another thread's call wraps its own.
class ReusedInput {
 public:
  ReusedInput() = default;
  ReusedInput(const ReusedInput&) = delete;
  ReusedInput& operator=(const ReusedInput&) = delete;
  ~ReusedInput();
  // The tensor a call runs with: over the caller's memory, made once and taken again while that
  // memory and shape stay the same.
  struct Wrapped {
    Tensor tensor;
    const void* data = nullptr;
    std::vector<int64_t> dims;  // what it was made with, compared without calling TensorFlow
  };
  // A Wrapped over `data` (nbytes, C-contiguous, aligned, of the input's one dtype): the kept one
  // if it matches, else a new one.
  std::unique_ptr<Wrapped> take(DType dtype, const int64_t* dims, int rank, void* data, std::size_t nbytes);
  // Keeps `wrapped`, which take() gave, for the next call.
  void keep(std::unique_ptr<Wrapped> wrapped) noexcept;

 private:
  std::atomic<Wrapped*> kept_{nullptr};
};

// How a call hands aligned arrays to TensorFlow in place: lent with a reference (`loans`), or
// through `reuse` (a signature that keeps no input); neither: copied. When it goes through
// `reuse`, to_tensor returns the reused tensor and leaves its Wrapped in `reused`: put the
// tensor back there after the run and give it to ReusedInput::keep.
struct InPlace {
  Loans* loans = nullptr;
  ReusedInput* reuse = nullptr;
  std::unique_ptr<ReusedInput::Wrapped> reused;
};

// A new reference to the NumPy dtype for `dtype` (bfloat16: ml_dtypes'), or nullptr if NumPy
// cannot hold it.
PyArray_Descr* numpy_descr(DType dtype);
// The DType of NumPy dtype `descr` (object arrays: kString); kInvalid if none fits.
DType dtype_of(PyArray_Descr* descr);

// Converts `value` for input `index` of `sig`, checking its dtype first (smrt errors; shapes
// are the core's to check when the signature runs). An aligned C-contiguous array reaches
// TensorFlow in place as `in_place` says; any other input, or with neither, is copied once.
Tensor to_tensor(PyObject* value, const Signature& sig, std::size_t index, InPlace& in_place);
// The same for flat input `spec` of concrete function `function` (errors name it).
Tensor to_tensor(PyObject* value, const TensorSpec& spec, const std::string& function, Loans* loans);

// For a bound call: input `index` of `sig` as a tensor over `array`'s own memory, lent for
// as long as the tensor lives; the array must have the input's dtype and a shape that fits it,
// and be C-contiguous, native-endian and 64-byte aligned (else InputTypeError or
// InvalidInputError naming the input). Its contents are read at every run. With
// `check_shapes` false the shape is left to TensorFlow (its rank checked as sig.run does).
Tensor lend_tensor(PyObject* array, const Signature& sig, std::size_t index, Loans& loans, bool check_shapes);
// Throws unless `array` can receive output `index` of `sig`: a writeable, C-contiguous,
// native-endian ndarray of its dtype whose shape fits the declared one (with `check_shapes`;
// each run checks the shape it gives anyway).
void check_output_array(PyObject* array, const Signature& sig, std::size_t index, bool check_shapes);
// Copies output `tensor` (output `index` of `sig`) into its bound `array`; InvalidInputError
// if this run gave another shape.
void copy_output(const Tensor& tensor, PyObject* array, const Signature& sig, std::size_t index);

// A new NumPy array for output `tensor`: a view of its buffer when TensorFlow holds no other
// reference to it, else a copy (a graph constant or a variable must not be written through);
// bytes objects for strings. `key` names it in errors. Returns nullptr with a Python error set
// on failure.
PyObject* to_numpy(Tensor tensor, const std::string& key);

}  // namespace smrt::bindings
