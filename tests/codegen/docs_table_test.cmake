# codegen_docs_table_test: docs/kafka.md shows the bank's event type -> payload struct
# table exactly as capnpc-strata generates it (-DGENERATED=<bank.strata.md> -DDOC=<md>).
file(READ "${GENERATED}" generated)
file(READ "${DOC}" doc)
string(REGEX REPLACE "<!--[^\n]*-->\n" "" generated "${generated}")
string(STRIP "${generated}" generated)
string(REGEX MATCH "<!-- bank.strata.md begin -->\n(.*)\n<!-- bank.strata.md end -->" m "${doc}")
if(NOT m)
  message(FATAL_ERROR "${DOC}: the markers <!-- bank.strata.md begin/end --> are missing")
endif()
string(STRIP "${CMAKE_MATCH_1}" shown)
if(NOT shown STREQUAL generated)
  message(FATAL_ERROR "${DOC} shows an outdated table; paste ${GENERATED} between the "
    "markers:\n--- shown\n${shown}\n--- generated\n${generated}")
endif()
