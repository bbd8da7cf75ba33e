// Where libsmrt itself is installed, for finding packages installed beside it.
#pragma once

#include <filesystem>

namespace smrt::detail {

// The directory holding libsmrt's package directory (site-packages when libsmrt is
// site-packages/smrt/libsmrt.so, the wheel layout), or an empty path if unknown.
std::filesystem::path site_packages_beside_libsmrt();

}  // namespace smrt::detail
