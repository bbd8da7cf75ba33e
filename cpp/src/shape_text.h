// Shapes in error messages, written as Python writes tuples: "(1, None, 3)", "(4,)", "()".
#pragma once

#include <cstdint>
#include <string>

namespace smrt::detail {

// A negative dimension (unknown) is "None".
inline std::string shape_string(const int64_t* dims, int rank) {
  std::string s = "(";
  for (int i = 0; i < rank; ++i) {
    s += (i ? ", " : "") + (dims[i] < 0 ? std::string("None") : std::to_string(dims[i]));
  }
  return s + (rank == 1 ? ",)" : ")");
}

}  // namespace smrt::detail
