// File: capnpc-strata/model.hpp
//
// What capnpc-strata generates from, read out of a CodeGeneratorRequest: the value
// types (structs and enums) of one requested schema file and the strata annotations
// on them (strata.capnp).
//
//   capnp::SchemaLoader loader;  ...load every node of the request...
//   capnpc_strata::file_model m = capnpc_strata::read_file(loader, requested_file);
//
// Errors: read_file throws capnpc_strata::schema_error naming the struct or field
// that capnpc-strata cannot map (unions, groups, interfaces, AnyPointer, nested lists,
// nested structs, ...), with what to do instead.
#pragma once

#include <capnp/schema-loader.h>
#include <capnp/schema.capnp.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace capnpc_strata {

/// A schema that capnpc-strata cannot map; the message names the place and the fix.
struct schema_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class type_kind { primitive, text, data, enumeration, structure, list };

/// A field's type: the C++ value type and how to reach the Cap'n Proto one.
struct type_model {
  type_kind kind = type_kind::primitive;
  std::string cpp;   ///< C++ value type, e.g. "std::int64_t", "std::vector<std::string>"
  std::string capnp; ///< qualified Cap'n Proto C++ type (enum, struct) or ""
  std::unique_ptr<type_model> element; ///< lists only
};

struct field_model {
  std::string capnp_name; ///< e.g. "timestampNs"
  std::string accessor;   ///< e.g. "TimestampNs" (getTimestampNs / setTimestampNs)
  std::string cpp_name;   ///< e.g. "timestamp_ns"
  type_model type;
  std::string initializer; ///< C++ default member initializer ("" for none)
};

enum class struct_role { value, event, state, command, reply };

struct struct_model {
  std::string capnp_name; ///< e.g. "AccountState"
  std::string capnp_cpp;  ///< e.g. "::bank::schema::AccountState"
  std::string cpp_name;   ///< e.g. "account_state"
  std::uint64_t id = 0;
  struct_role role = struct_role::value;
  std::string event_type;    ///< events: the stored type name
  std::string command_name;  ///< commands: the wire name (wire.hpp, at most 255 bytes)
  std::uint32_t version = 1; ///< events and state: the schema version written
  std::vector<field_model> fields;
  std::vector<std::string> depends_on; ///< cpp names of the file's structs it contains
};

struct enumerant_model {
  std::string cpp_name;
  std::uint16_t value = 0;
};

struct enum_model {
  std::string capnp_name;
  std::string capnp_cpp;
  std::string cpp_name;
  std::vector<enumerant_model> enumerants;
};

/// One requested .capnp file.
struct file_model {
  std::string path; ///< as requested, e.g. "bank.capnp" or "sub/bank.capnp"
  std::string stem; ///< path without ".capnp", e.g. "bank"
  std::uint64_t id = 0;
  std::string ns;        ///< $Strata.namespace, e.g. "bank"
  std::string aggregate; ///< $Strata.aggregate, or "" (value types only)
  bool upcaster = false; ///< $Strata.upcaster
  std::vector<enum_model> enums;
  std::vector<struct_model> structs; ///< in an order where members come first
};

/// Reads one requested file. Throws schema_error (see the file comment).
file_model read_file(const capnp::SchemaLoader& loader,
                     capnp::schema::CodeGeneratorRequest::RequestedFile::Reader file);

/// "AccountState" -> "account_state", "timestampNs" -> "timestamp_ns".
std::string snake_case(const std::string& name);

/// A C++ string literal of any bytes: quotes, backslashes and non-printables escaped.
std::string c_string_literal(const std::string& s);

} // namespace capnpc_strata
