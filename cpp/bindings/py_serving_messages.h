// smrt._core's TF Serving message layer: serialized PredictRequest / ClassificationRequest /
// RegressionRequest / MultiInferenceRequest / PredictionLog bytes -> NumPy arrays (numeric
// tensors 64-byte aligned, so they reach TensorFlow with no copy beyond the one from the
// message), bounded by a byte budget per message. The decoding itself is
// cpp/src/serving_messages.cc.
#pragma once

#include <pybind11/pybind11.h>

namespace smrt::bindings {

void register_serving_messages(pybind11::module_& m);

}  // namespace smrt::bindings
