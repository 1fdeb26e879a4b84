# strata_add_schema(<target> <file.capnp>...
#                   [SRC_PREFIX <dir>] [OUTPUT_DIR <dir>] [IMPORT_DIRS <dir>...])
#
# Runs `capnp compile` with capnpc-c++ and capnpc-strata on each schema file and adds
# the generated code to <target> (docs/runtime.md, "Declaring events in Cap'n Proto"):
#   <OUTPUT_DIR>/<rel>.capnp.h, .capnp.c++   capnpc-c++'s code
#   <OUTPUT_DIR>/<rel>.strata.hpp, .cpp      value types, event variant, codec
#   <OUTPUT_DIR>/<rel>.strata.md, .json      event type + version -> payload struct table
# where <rel> is the file's path relative to SRC_PREFIX (default: the current source
# directory) without ".capnp". OUTPUT_DIR defaults to
# ${CMAKE_CURRENT_BINARY_DIR}/strata_schema; it becomes a PUBLIC include directory of
# <target>, which also links strata::runtime and CapnProto::capnp PUBLIC.
# Schemas import "/strata/schema/strata.capnp" (the annotations) from
# STRATA_CAPNP_IMPORT_DIR, set by strata's build and by find_package(strata).
#
# Provided by strata's own CMakeLists (so also under add_subdirectory/FetchContent) and
# by strataConfig.cmake; the plugin is the target strata::capnpc-strata either way.
function(strata_add_schema target)
  cmake_parse_arguments(arg "" "SRC_PREFIX;OUTPUT_DIR" "IMPORT_DIRS" ${ARGN})
  if(NOT arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "strata_add_schema(${target}): no .capnp file given")
  endif()
  if(NOT TARGET strata::capnpc-strata)
    message(FATAL_ERROR "strata_add_schema: the plugin strata::capnpc-strata is not defined "
      "(add strata with add_subdirectory or find_package(strata) first)")
  endif()
  if(NOT STRATA_CAPNP_IMPORT_DIR)
    message(FATAL_ERROR "strata_add_schema: STRATA_CAPNP_IMPORT_DIR is not set (the capnp "
      "import root holding /strata/schema/strata.capnp; set by strata's build and by "
      "find_package(strata))")
  endif()
  if(NOT arg_SRC_PREFIX)
    set(arg_SRC_PREFIX ${CMAKE_CURRENT_SOURCE_DIR})
  endif()
  if(NOT arg_OUTPUT_DIR)
    set(arg_OUTPUT_DIR ${CMAKE_CURRENT_BINARY_DIR}/strata_schema)
  endif()
  get_filename_component(arg_SRC_PREFIX "${arg_SRC_PREFIX}" ABSOLUTE)
  set(capnp_exe ${CAPNP_EXECUTABLE})
  if(NOT capnp_exe)
    set(capnp_exe capnp)
  endif()
  set(cxx_plugin ${CAPNPC_CXX_EXECUTABLE})
  if(NOT cxx_plugin)
    set(cxx_plugin capnpc-c++)
  endif()
  set(includes -I ${STRATA_CAPNP_IMPORT_DIR})
  foreach(dir IN LISTS arg_IMPORT_DIRS)
    list(APPEND includes -I ${dir})
  endforeach()
  if(CAPNP_INCLUDE_DIRECTORY)
    list(APPEND includes -I ${CAPNP_INCLUDE_DIRECTORY})
  endif()
  set(plugin $<TARGET_FILE:strata::capnpc-strata>)
  foreach(file IN LISTS arg_UNPARSED_ARGUMENTS)
    get_filename_component(abs "${file}" ABSOLUTE)
    file(RELATIVE_PATH rel "${arg_SRC_PREFIX}" "${abs}")
    if(rel MATCHES "^\\.\\./")
      message(FATAL_ERROR "strata_add_schema(${target}): ${abs} is not under SRC_PREFIX "
        "${arg_SRC_PREFIX}")
    endif()
    string(REGEX REPLACE "\\.capnp$" "" stem "${rel}")
    set(out ${arg_OUTPUT_DIR}/${stem})
    file(MAKE_DIRECTORY ${arg_OUTPUT_DIR})
    add_custom_command(
      OUTPUT ${out}.capnp.h ${out}.capnp.c++ ${out}.strata.hpp ${out}.strata.cpp
        ${out}.strata.md ${out}.strata.json
      COMMAND ${capnp_exe} compile ${includes} --src-prefix=${arg_SRC_PREFIX}
        -o${cxx_plugin}:${arg_OUTPUT_DIR} -o${plugin}:${arg_OUTPUT_DIR} ${abs}
      DEPENDS ${abs} ${plugin} ${STRATA_CAPNP_IMPORT_DIR}/strata/schema/strata.capnp
      COMMENT "capnpc-c++ and capnpc-strata: ${rel}"
      VERBATIM)
    target_sources(${target} PRIVATE ${out}.capnp.c++ ${out}.strata.cpp)
  endforeach()
  target_include_directories(${target} PUBLIC ${arg_OUTPUT_DIR})
  target_link_libraries(${target} PUBLIC strata::runtime CapnProto::capnp)
endfunction()
