# strata_promote_dependencies(): for add_subdirectory/FetchContent use (strata not the
# top-level project). The imported targets strata's find_package calls created (caf::*,
# lmdb::lmdb, rdkafka::rdkafka, CapnProto::*, Threads::Threads, ...) are local to
# strata's directory; the host links them through strata::runtime, strata::kafka or
# strata::persistence (only strata::kafka needs rdkafka::rdkafka) and may call
# capnp_generate_cpp itself. Promote them to global and publish the variables
# capnp_generate_cpp needs, so the host repeats none of strata's find_package calls.
# Call it from the directory that called find_package (strata's top level).
function(strata_promote_dependencies)
  get_property(imported DIRECTORY PROPERTY IMPORTED_TARGETS)
  foreach(t IN LISTS imported)
    get_target_property(is_global ${t} IMPORTED_GLOBAL)
    if(NOT is_global)
      set_target_properties(${t} PROPERTIES IMPORTED_GLOBAL TRUE)
    endif()
  endforeach()
  # CapnProtoConfig sets CAPNP_INCLUDE_DIRECTORY as a normal variable (strata's scope
  # only); capnp_generate_cpp in the host fails without it ("Could not locate capnp
  # header files"). A cache entry is visible everywhere and a host value wins.
  if(DEFINED CAPNP_INCLUDE_DIRECTORY)
    set(CAPNP_INCLUDE_DIRECTORY "${CAPNP_INCLUDE_DIRECTORY}"
      CACHE PATH "Cap'n Proto's include directory (published by strata)")
  endif()
endfunction()
