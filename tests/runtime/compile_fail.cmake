# cmake -DCXX=... -DINCLUDE=... -DSNIPPET=... -P compile_fail.cmake
#
# The snippet must compile with -DSTRATA_FIXED (the control: a broken include path or a
# typo cannot fake a failure) and fail without it. The snippet states what the compiler
# must say, in comment lines:
#   // expect: TEXT        each TEXT must appear in the compiler's output (plain text)
#   // errors-max: N       at most N lines with "error:" (the message stays short)
#   // static-asserts: N   exactly N "static assertion failed" (GCC) lines
execute_process(
  COMMAND ${CXX} -std=c++17 -fsyntax-only -I${INCLUDE} -DSTRATA_FIXED ${SNIPPET}
  RESULT_VARIABLE ok_rc ERROR_VARIABLE ok_err)
if(NOT ok_rc EQUAL 0)
  message(FATAL_ERROR "control snippet (with the fix) does not compile:\n${ok_err}")
endif()
execute_process(
  COMMAND ${CXX} -std=c++17 -fsyntax-only -I${INCLUDE} ${SNIPPET}
  RESULT_VARIABLE bad_rc ERROR_VARIABLE bad_err)
if(bad_rc EQUAL 0)
  message(FATAL_ERROR "${SNIPPET} compiled without the fix")
endif()
# GCC quotes with ‘’ in UTF-8 locales and '' otherwise: compare without quotes.
string(REGEX REPLACE "(‘|’|')" "" plain_err "${bad_err}")

file(STRINGS ${SNIPPET} expectations REGEX "^// expect: ")
if(NOT expectations)
  message(FATAL_ERROR "${SNIPPET} has no `// expect:` line")
endif()
foreach(line IN LISTS expectations)
  string(REGEX REPLACE "^// expect: " "" text "${line}")
  string(FIND "${plain_err}" "${text}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the compiler's message does not say `${text}`:\n${bad_err}")
  endif()
endforeach()

file(STRINGS ${SNIPPET} limit REGEX "^// errors-max: ")
if(limit)
  string(REGEX REPLACE "^// errors-max: " "" limit "${limit}")
  string(REGEX MATCHALL "error:" errors "${bad_err}")
  list(LENGTH errors n)
  if(n GREATER limit)
    message(FATAL_ERROR "${n} errors (at most ${limit} expected):\n${bad_err}")
  endif()
endif()

file(STRINGS ${SNIPPET} asserts REGEX "^// static-asserts: ")
if(asserts)
  string(REGEX REPLACE "^// static-asserts: " "" asserts "${asserts}")
  string(REGEX MATCHALL "static assertion failed" found "${bad_err}")
  list(LENGTH found n)
  if(NOT n EQUAL asserts)
    message(FATAL_ERROR "${n} static assertions failed (${asserts} expected):\n${bad_err}")
  endif()
endif()
message(STATUS "ok: ${SNIPPET} fails to compile with the expected message")
