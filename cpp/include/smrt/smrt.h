// smrt: run TensorFlow SavedModels through libtensorflow's C API. Include this one header.
#pragma once

#include "smrt/dtype.h"
#include "smrt/errors.h"
#include "smrt/model.h"
#include "smrt/runtime.h"
#include "smrt/saved_model_info.h"
#include "smrt/tensor.h"
