// File: capnpc-strata/emit.hpp
//
// The files capnpc-strata writes for one schema file `<stem>.capnp` (model.hpp):
//   <stem>.strata.hpp   value types, the event variant, <aggregate>_schema (codec decl.)
//   <stem>.strata.cpp   the codec (includes capnpc-c++'s <stem>.capnp.h) and printing
//   <stem>.strata.md    the event type + schema version -> payload struct table
//   <stem>.strata.json  the same table for programs (consumers in other languages)
//
// Errors: none (pure string building).
#pragma once

#include "model.hpp"

#include <string>

namespace capnpc_strata {

std::string emit_header(const file_model& m);
std::string emit_source(const file_model& m);
std::string emit_markdown(const file_model& m);
std::string emit_json(const file_model& m);

} // namespace capnpc_strata
