# cmake -DCXX=... -DINCLUDE=... -DSNIPPET=... -P compile_fail.cmake
# The snippet must compile with -DSTRATA_SAY_HOW_TO_REPLY and fail without it.
execute_process(
  COMMAND ${CXX} -std=c++17 -fsyntax-only -I${INCLUDE} -DSTRATA_SAY_HOW_TO_REPLY ${SNIPPET}
  RESULT_VARIABLE ok_rc ERROR_VARIABLE ok_err)
if(NOT ok_rc EQUAL 0)
  message(FATAL_ERROR "control snippet (with the reply) does not compile:\n${ok_err}")
endif()
execute_process(
  COMMAND ${CXX} -std=c++17 -fsyntax-only -I${INCLUDE} ${SNIPPET}
  RESULT_VARIABLE bad_rc ERROR_VARIABLE bad_err)
if(bad_rc EQUAL 0)
  message(FATAL_ERROR "a handler returning effect::persist(...) without then_reply/then_no_reply compiled")
endif()
if(NOT bad_err MATCHES "persist_builder")
  message(FATAL_ERROR "it failed, but not because of the missing reply:\n${bad_err}")
endif()
message(STATUS "ok: forgetting how to reply does not compile")
