# codegen_plugin_errors_test: capnpc-strata refuses what it cannot map with a message
# that names the file, struct or field and the fix (and writes nothing), instead of
# generating wrong code. -DCAPNP=<capnp> -DPLUGIN=<capnpc-strata> -DIMPORT=<root> -DWORK=<dir>
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}/out")
set(head "@0xf3c2a1b0d9e8f7a6;\n$import \"/capnp/c++.capnp\".namespace(\"t::schema\");\nusing Strata = import \"/strata/schema/strata.capnp\";\n")
set(ns "$Strata.namespace(\"t\");\n$Strata.aggregate(\"t\");\n")
# check_case(<name> <schema body> <expected message regex>)
function(check_case name body expected)
  file(WRITE "${WORK}/${name}.capnp" "${head}${body}\n")
  execute_process(COMMAND ${CAPNP} compile -I "${IMPORT}" --src-prefix=${WORK}
    -o${PLUGIN}:${WORK}/out "${WORK}/${name}.capnp"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc EQUAL 0)
    message(FATAL_ERROR "case ${name}: capnpc-strata accepted an unsupported schema:\n${out}\n${err}")
  endif()
  if(NOT err MATCHES "capnpc-strata: ${name}\\.capnp: " OR
      NOT err MATCHES "${expected}")
    message(FATAL_ERROR "case ${name}: expected '${expected}' in:\n${err}")
  endif()
  if(EXISTS "${WORK}/out/${name}.strata.hpp")
    message(FATAL_ERROR "case ${name}: a refused schema must not produce ${name}.strata.hpp")
  endif()
endfunction()

check_case(union "${ns}struct E $Strata.event(\"e\") { union { a @0 :Int32; b @1 :Text; } }"
  "E\\.a: unions are not supported")
check_case(group "${ns}struct E $Strata.event(\"e\") { g :group { a @0 :Int32; } }"
  "E\\.g: groups are not supported")
check_case(namespace "$Strata.aggregate(\"t\");\nstruct E $Strata.event(\"e\") { a @0 :Int32; }"
  "missing the file annotation \\$Strata\\.namespace")
check_case(no-events "${ns}struct S $Strata.state { a @0 :Int32; }"
  "no struct has \\$Strata\\.event")
check_case(two-states "${ns}struct E $Strata.event(\"e\") {}\nstruct S $Strata.state {}\nstruct T $Strata.state {}"
  "more than one struct has \\$Strata\\.state")
check_case(same-type "${ns}struct E $Strata.event(\"e\") {}\nstruct F $Strata.event(\"e\") {}"
  "two events have the stored type name \"e\"")
check_case(nested-list "${ns}struct E $Strata.event(\"e\") { a @0 :List(List(Int32)); }"
  "E\\.a: lists of lists are not supported")
check_case(reserved "${ns}struct E $Strata.event(\"e\") { schemaVersion @0 :UInt32; }"
  "E\\.schemaVersion: the C\\+\\+ name schema_version is taken")
check_case(member-name "${ns}struct Closed $Strata.event(\"closed\") { closed @0 :Bool; }"
  "Closed\\.closed: a C\\+\\+ member cannot have its struct's name")
check_case(command-no-aggregate "$Strata.namespace(\"t\");\nstruct C $Strata.command(\"c\") {}"
  "commands or a reply are declared but the file annotation \\$Strata\\.aggregate")
check_case(two-replies "${ns}struct E $Strata.event(\"e\") {}\nstruct R $Strata.reply {}\nstruct S $Strata.reply {}"
  "more than one struct has \\$Strata\\.reply")
check_case(same-command "${ns}struct E $Strata.event(\"e\") {}\nstruct DoIt $Strata.command(\"\") {}\nstruct D $Strata.command(\"do_it\") {}"
  "two commands have the name \"do_it\"")
string(REPEAT "n" 256 long_name)
check_case(long-command "${ns}struct E $Strata.event(\"e\") {}\nstruct C $Strata.command(\"${long_name}\") {}"
  "C: the command name is longer than 255 bytes")
check_case(command-version "${ns}struct E $Strata.event(\"e\") {}\nstruct C $Strata.command(\"c\") $Strata.version(2) {}"
  "C: \\$Strata\\.version applies to events and the state only")
check_case(two-roles "${ns}struct E $Strata.event(\"e\") {}\nstruct C $Strata.command(\"c\") $Strata.reply {}"
  "C: at most one of \\$Strata\\.event, \\$Strata\\.state, \\$Strata\\.command and \\$Strata\\.reply")
