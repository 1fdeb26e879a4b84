# Install rules and the CMake/pkg-config packages (docs/embedding.md).
# Layout under the prefix:
#   include/strata/{persistence,kafka,cluster,runtime}/...  public headers
#   include/strata/schema/envelope.capnp       the envelope schema (+ envelope.capnp.h);
#                                              include/ is the capnp import root
#   lib/libstrata_{persistence,kafka,cluster,runtime}.a  the libraries (persistence <-
#                                              kafka <- runtime, persistence <- cluster;
#                                              only kafka links librdkafka)
#   lib/cmake/strata/                          strataConfig.cmake, strataConfigVersion.cmake,
#                                              strataTargets*.cmake, Find{CAF,LMDB,RdKafka}.cmake
#   lib/pkgconfig/strata.pc
#   include/strata/schema/strata.capnp         capnpc-strata's annotations
#   bin/capnpc-strata                          the codegen plugin (always; exported as
#                                              strata::capnpc-strata, StrataSchema.cmake)
#   bin/strata, bin/strata-kafka-mock          the tools (when STRATA_BUILD_TOOLS)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(STRATA_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/strata"
  CACHE STRING "Where strataConfig.cmake is installed (relative to the prefix)")
mark_as_advanced(STRATA_INSTALL_CMAKEDIR)

set_target_properties(strata_persistence PROPERTIES EXPORT_NAME persistence)
set_target_properties(strata_kafka PROPERTIES EXPORT_NAME kafka)
set_target_properties(strata_cluster PROPERTIES EXPORT_NAME cluster)
set_target_properties(strata_runtime PROPERTIES EXPORT_NAME runtime)
install(TARGETS strata_persistence strata_kafka strata_cluster strata_runtime capnpc-strata
  EXPORT strataTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/persistence/include/ ${PROJECT_SOURCE_DIR}/kafka/include/
  ${PROJECT_SOURCE_DIR}/cluster/include/ ${PROJECT_SOURCE_DIR}/runtime/include/
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/persistence/schema/envelope.capnp
  ${STRATA_CAPNP_IMPORT_DIR}/strata/schema/envelope.capnp.h
  ${PROJECT_SOURCE_DIR}/tools/capnpc-strata/strata.capnp
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/strata/schema)
foreach(tool strata strata-kafka-mock)
  if(TARGET ${tool})
    install(TARGETS ${tool} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()

install(EXPORT strataTargets
  NAMESPACE strata::
  FILE strataTargets.cmake
  DESTINATION ${STRATA_INSTALL_CMAKEDIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/strataConfig.cmake.in
  ${PROJECT_BINARY_DIR}/strataConfig.cmake
  INSTALL_DESTINATION ${STRATA_INSTALL_CMAKEDIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_BINDIR)
# 0.x: a minor release may break the API (semantic versioning's rule for 0.y.z), so
# find_package(strata 0.1) accepts 0.1.z only, not 0.2; from 1.0 on SameMajorVersion.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/strataConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/strataConfig.cmake
  ${PROJECT_BINARY_DIR}/strataConfigVersion.cmake
  ${PROJECT_SOURCE_DIR}/cmake/FindCAF.cmake
  ${PROJECT_SOURCE_DIR}/cmake/FindLMDB.cmake
  ${PROJECT_SOURCE_DIR}/cmake/FindRdKafka.cmake
  ${PROJECT_SOURCE_DIR}/cmake/StrataSchema.cmake
  DESTINATION ${STRATA_INSTALL_CMAKEDIR})

# strata.pc: relocatable (prefix from the .pc file's own location), so an install with
# `cmake --install build --prefix P` works without reconfiguring.
set(STRATA_PC_RELDIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
set(STRATA_PC_PREFIX "\${pcfiledir}")
string(REPLACE "/" ";" _strata_pc_parts "${STRATA_PC_RELDIR}")
foreach(_part IN LISTS _strata_pc_parts)
  string(APPEND STRATA_PC_PREFIX "/..")
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/cmake/strata.pc.in ${PROJECT_BINARY_DIR}/strata.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/strata.pc DESTINATION ${STRATA_PC_RELDIR})
