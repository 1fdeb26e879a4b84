# FindCAF: CAF 0.17 as shipped by Debian (libcaf-dev), which has no CMake config
# and no pkg-config file. Defines the imported targets caf::core and caf::io.
find_path(CAF_INCLUDE_DIR caf/all.hpp)
find_library(CAF_CORE_LIB caf_core)
find_library(CAF_IO_LIB caf_io)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CAF REQUIRED_VARS CAF_INCLUDE_DIR CAF_CORE_LIB CAF_IO_LIB)
if(CAF_FOUND AND NOT TARGET caf::core)
  find_package(Threads REQUIRED)
  add_library(caf::core UNKNOWN IMPORTED)
  set_target_properties(caf::core PROPERTIES
    IMPORTED_LOCATION ${CAF_CORE_LIB}
    INTERFACE_INCLUDE_DIRECTORIES ${CAF_INCLUDE_DIR}
    INTERFACE_LINK_LIBRARIES Threads::Threads)
  add_library(caf::io UNKNOWN IMPORTED)
  set_target_properties(caf::io PROPERTIES
    IMPORTED_LOCATION ${CAF_IO_LIB}
    INTERFACE_LINK_LIBRARIES caf::core)
endif()
mark_as_advanced(CAF_INCLUDE_DIR CAF_CORE_LIB CAF_IO_LIB)
