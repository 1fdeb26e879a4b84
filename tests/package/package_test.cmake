# Driver of the package tests (tests/package/CMakeLists.txt), in script mode:
#   MODE=find_package   install the current build into WORK_DIR/prefix, check the
#                       layout, build and run app/ with find_package(strata 0.1), and
#                       check that find_package(strata 0.2) is refused (SameMinorVersion)
#   MODE=pkgconfig      install, then compile app/ by hand with capnp compile and
#                       `pkg-config --cflags --libs strata`, and run it
#   MODE=subdirectory   build app/ with add_subdirectory(strata source): no strata test,
#                       bench, tool or sample target; the host's ctest lists only its
#                       own test; no build type forced; no output directories imposed
cmake_minimum_required(VERSION 3.21)
foreach(v MODE STRATA_SOURCE_DIR STRATA_BINARY_DIR APP_DIR WORK_DIR CXX CTEST)
  if(NOT DEFINED ${v} OR "${${v}}" STREQUAL "")
    message(FATAL_ERROR "package_test.cmake: -D${v}=... is required")
  endif()
endforeach()

# run(<what> COMMAND...): runs, fails the test with the output when it fails.
function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${ARGN}\n${out}\n${err}")
  endif()
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

function(expect_exists)
  foreach(f ${ARGN})
    if(NOT EXISTS "${f}")
      message(FATAL_ERROR "expected ${f} to exist")
    endif()
  endforeach()
endfunction()

# check_host_targets(<build dir>): strata's libraries and the app are targets of the
# host; no test, bench, tool or sample target of strata is.
function(check_host_targets build)
  run("list targets" ${CMAKE_COMMAND} --build "${build}" --target help)
  set(targets "${run_output}")
  foreach(t counter_app order_app strata_runtime strata_kafka strata_persistence strata_cluster capnpc-strata)
    if(NOT targets MATCHES "\\.\\.\\. ${t}\n")
      message(FATAL_ERROR "target ${t} missing from the host:\n${targets}")
    endif()
  endforeach()
  foreach(t strata strata-kafka-mock strata-bench strata-bank strata_bank strata_test_main
      runtime_effect_test persistence_journal_test kafka_bridge_test bank_account_test)
    if(targets MATCHES "\\.\\.\\. ${t}\n")
      message(FATAL_ERROR "strata target ${t} configured in the host:\n${targets}")
    endif()
  endforeach()
endfunction()

# check_link_interfaces(<cmake dir>): the exported strata::persistence does not link
# librdkafka; strata::kafka does, and strata::runtime gets it through strata::kafka.
function(check_link_interfaces dir)
  # (strataTargets-<config>.cmake sets only the locations.)
  file(READ "${dir}/strataTargets.cmake" all)
  foreach(t persistence kafka runtime)
    string(REGEX MATCH "set_target_properties\\(strata::${t} PROPERTIES[^)]*\\)" block "${all}")
    string(REGEX MATCH "INTERFACE_LINK_LIBRARIES \"[^\"]*\"" links_${t} "${block}")
    if(links_${t} STREQUAL "")
      message(FATAL_ERROR "no INTERFACE_LINK_LIBRARIES for strata::${t} in ${dir}")
    endif()
  endforeach()
  if(links_persistence MATCHES "rdkafka")
    message(FATAL_ERROR "strata::persistence links librdkafka: ${links_persistence}")
  endif()
  if(NOT links_kafka MATCHES "rdkafka::rdkafka" OR NOT links_kafka MATCHES "strata::persistence")
    message(FATAL_ERROR "strata::kafka must link strata::persistence and rdkafka: ${links_kafka}")
  endif()
  if(NOT links_runtime MATCHES "strata::kafka")
    message(FATAL_ERROR "strata::runtime must link strata::kafka: ${links_runtime}")
  endif()
endfunction()

set(launcher)
if(CCACHE)
  set(launcher -DCMAKE_CXX_COMPILER_LAUNCHER=${CCACHE})
endif()
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

if(MODE STREQUAL "find_package" OR MODE STREQUAL "pkgconfig")
  run("cmake --install" ${CMAKE_COMMAND} --install "${STRATA_BINARY_DIR}" --prefix "${prefix}")
  expect_exists(
    "${prefix}/include/strata/runtime/all.hpp"
    "${prefix}/include/strata/persistence/journal.hpp"
    "${prefix}/include/strata/persistence/projection.hpp"
    "${prefix}/include/strata/kafka/bridge.hpp"
    "${prefix}/include/strata/kafka/consumer.hpp"
    "${prefix}/include/strata/kafka/mock.hpp"
    "${prefix}/include/strata/cluster/allocation.hpp"
    "${prefix}/include/strata/schema/envelope.capnp"
    "${prefix}/include/strata/schema/envelope.capnp.h"
    "${prefix}/include/strata/schema/strata.capnp"
    "${prefix}/include/strata/runtime/codegen_support.hpp"
    "${prefix}/bin/capnpc-strata"
    "${prefix}/lib/cmake/strata/StrataSchema.cmake"
    "${prefix}/lib/libstrata_runtime.a"
    "${prefix}/lib/libstrata_kafka.a"
    "${prefix}/lib/libstrata_persistence.a"
    "${prefix}/lib/libstrata_cluster.a"
    "${prefix}/lib/cmake/strata/strataConfig.cmake"
    "${prefix}/lib/cmake/strata/strataConfigVersion.cmake"
    "${prefix}/lib/cmake/strata/strataTargets.cmake"
    "${prefix}/lib/cmake/strata/FindCAF.cmake"
    "${prefix}/lib/cmake/strata/FindLMDB.cmake"
    "${prefix}/lib/cmake/strata/FindRdKafka.cmake"
    "${prefix}/lib/pkgconfig/strata.pc")
  if(TOOLS)
    expect_exists("${prefix}/bin/strata" "${prefix}/bin/strata-kafka-mock")
  endif()
  check_link_interfaces("${prefix}/lib/cmake/strata")
endif()

if(MODE STREQUAL "find_package")
  set(build "${WORK_DIR}/app-build")
  run("configure app with find_package(strata 0.1)" ${CMAKE_COMMAND} -S "${APP_DIR}"
    -B "${build}" -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_CXX_COMPILER=${CXX} ${launcher})
  run("build app" ${CMAKE_COMMAND} --build "${build}" -j2)
  run("ctest of app" ${CTEST} --test-dir "${build}" --output-on-failure)
  if(TOOLS) # the installed tool reads the application's journal
    run("installed strata journal stats" "${prefix}/bin/strata" journal stats
      --data "${build}/counter-data")
    if(NOT run_output MATCHES "streams: +1\n" OR NOT run_output MATCHES "events: +2\n")
      message(FATAL_ERROR "strata journal stats of counter-data:\n${run_output}")
    endif()
  endif()
  # SameMinorVersion: 0.1.z satisfies 0.1, not 0.2 (0.x minor releases may break).
  execute_process(COMMAND ${CMAKE_COMMAND} -S "${APP_DIR}" -B "${WORK_DIR}/app-0.2"
    -DCMAKE_PREFIX_PATH=${prefix} -DSTRATA_REQUIRED_VERSION=0.2
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc EQUAL 0 OR NOT err MATCHES "strataConfig.cmake, version: 0\\.1\\.0")
    message(FATAL_ERROR "find_package(strata 0.2) must be refused by version:\n${out}\n${err}")
  endif()
  message(STATUS "find_package: installed, built and ran counter_app")

elseif(MODE STREQUAL "pkgconfig")
  if(NOT PKG_CONFIG)
    message(FATAL_ERROR "pkg-config not found")
  endif()
  set(ENV{PKG_CONFIG_PATH} "${prefix}/lib/pkgconfig")
  run("pkg-config --variable=capnp_import_dir" ${PKG_CONFIG} --variable=capnp_import_dir strata)
  string(STRIP "${run_output}" import_dir)
  set(gen "${WORK_DIR}/generated")
  file(MAKE_DIRECTORY "${gen}")
  run("capnp compile" capnp compile -I "${import_dir}" --src-prefix=${APP_DIR}
    -oc++:${gen} "${APP_DIR}/counter.capnp")
  # The installed plugin next to capnpc-c++ (what strata_add_schema does).
  run("capnp compile with capnpc-strata" capnp compile -I "${import_dir}"
    --src-prefix=${APP_DIR} -oc++:${gen} -o${prefix}/bin/capnpc-strata:${gen}
    "${APP_DIR}/order.capnp")
  run("pkg-config --cflags --libs strata" ${PKG_CONFIG} --cflags --libs strata)
  separate_arguments(flags UNIX_COMMAND "${run_output}")
  set(exe "${WORK_DIR}/counter_app")
  run("compile with pkg-config" ${CCACHE} ${CXX} -std=c++17 -O1 -o "${exe}"
    "${APP_DIR}/app.cpp" "${gen}/counter.capnp.c++" -I "${gen}" ${flags})
  run("run counter_app" "${exe}" "${WORK_DIR}/counter-data")
  message(STATUS "pkgconfig: ${run_output}")
  run("compile order_app with pkg-config" ${CCACHE} ${CXX} -std=c++17 -O1
    -o "${WORK_DIR}/order_app" "${APP_DIR}/order_app.cpp" "${gen}/order.capnp.c++"
    "${gen}/order.strata.cpp" -I "${gen}" ${flags})
  run("run order_app" "${WORK_DIR}/order_app" "${WORK_DIR}/order-data")
  message(STATUS "pkgconfig: ${run_output}")

elseif(MODE STREQUAL "subdirectory")
  set(build "${WORK_DIR}/host-build")
  # No CMAKE_BUILD_TYPE: strata must not force one into the host's cache.
  run("configure host with add_subdirectory(strata)" ${CMAKE_COMMAND} -S "${APP_DIR}"
    -B "${build}" -DSTRATA_SOURCE_DIR=${STRATA_SOURCE_DIR} -DCMAKE_CXX_COMPILER=${CXX}
    ${launcher})
  file(STRINGS "${build}/CMakeCache.txt" build_type REGEX "^CMAKE_BUILD_TYPE:")
  if(NOT build_type MATCHES "^CMAKE_BUILD_TYPE:[A-Z]+=$")
    message(FATAL_ERROR "strata forced the host's build type: ${build_type}")
  endif()
  check_host_targets("${build}")
  run("build host" ${CMAKE_COMMAND} --build "${build}" -j2)
  run("ctest -N of host" ${CTEST} --test-dir "${build}" -N)
  if(NOT run_output MATCHES "Test +#1: counter_app\n" OR NOT run_output MATCHES
      "Test +#2: order_app\n" OR NOT run_output MATCHES "Total Tests: 2\n")
    message(FATAL_ERROR "the host's ctest must list only counter_app and order_app:\n${run_output}")
  endif()
  run("ctest of host" ${CTEST} --test-dir "${build}" --output-on-failure)
  # strata's libraries stay in their own binary directory, not the host's lib/ or bin/.
  expect_exists("${build}/strata/persistence/libstrata_persistence.a"
    "${build}/strata/runtime/libstrata_runtime.a")
  foreach(d lib bin)
    if(EXISTS "${build}/${d}")
      message(FATAL_ERROR "strata created ${build}/${d} in the host's build directory")
    endif()
  endforeach()
  # The same host with FetchContent_MakeAvailable (configure only: the same checks).
  set(fetch "${WORK_DIR}/fetchcontent-build")
  run("configure host with FetchContent" ${CMAKE_COMMAND} -S "${APP_DIR}" -B "${fetch}"
    -DSTRATA_SOURCE_DIR=${STRATA_SOURCE_DIR} -DSTRATA_USE_FETCHCONTENT=ON
    -DCMAKE_CXX_COMPILER=${CXX} ${launcher})
  check_host_targets("${fetch}")
  run("ctest -N of FetchContent host" ${CTEST} --test-dir "${fetch}" -N)
  if(NOT run_output MATCHES "Total Tests: 2\n")
    message(FATAL_ERROR "the FetchContent host's ctest must list only its 2 tests:\n${run_output}")
  endif()
  message(STATUS "subdirectory: host built and ran counter_app; FetchContent host configured")
else()
  message(FATAL_ERROR "unknown MODE ${MODE}")
endif()
