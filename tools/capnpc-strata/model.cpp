#include "model.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <sstream>

namespace capnpc_strata {

namespace {

// The annotation IDs of strata.capnp and Cap'n Proto's c++.capnp.
constexpr std::uint64_t id_aggregate = 0xe39c6dc5b8d3eb8eull;
constexpr std::uint64_t id_namespace = 0xe2f4b9ba6e6feebcull;
constexpr std::uint64_t id_upcaster = 0xaab555b33d870a6full;
constexpr std::uint64_t id_event = 0x877cc411a8ebc980ull;
constexpr std::uint64_t id_state = 0xbef704e3cbde6b39ull;
constexpr std::uint64_t id_command = 0x865f11baf513bce8ull;
constexpr std::uint64_t id_reply = 0xe22c629f0ffef2f6ull;
constexpr std::uint64_t id_version = 0x9be20ffa998d9031ull;
constexpr std::uint64_t id_cxx_namespace = 0xb9c6f99ebf805f2cull;

using annotations = capnp::List<capnp::schema::Annotation>::Reader;

bool find(annotations as, std::uint64_t id, capnp::schema::Value::Reader* value = nullptr) {
  for (auto a : as)
    if (a.getId() == id) {
      if (value) *value = a.getValue();
      return true;
    }
  return false;
}

std::string text(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

bool is_cpp_keyword(const std::string& s) {
  static const std::set<std::string> words{
    "alignas", "alignof",   "and",    "asm",      "auto",      "bool",     "break",    "case",
    "catch",   "char",      "class",  "const",    "constexpr", "continue", "default",  "delete",
    "do",      "double",    "else",   "enum",     "explicit",  "export",   "extern",   "false",
    "float",   "for",       "friend", "goto",     "if",        "inline",   "int",      "long",
    "mutable", "namespace", "new",    "noexcept", "not",       "nullptr",  "operator", "or",
    "private", "protected", "public", "register", "return",    "short",    "signed",   "sizeof",
    "static",  "struct",    "switch", "template", "this",      "throw",    "true",     "try",
    "typedef", "typename",  "union",  "unsigned", "using",     "virtual",  "void",     "volatile",
    "while",   "xor"};
  return words.count(s) > 0;
}

std::string cpp_identifier(const std::string& capnp_name) {
  auto s = snake_case(capnp_name);
  return is_cpp_keyword(s) ? s + "_" : s;
}

struct file_context {
  const capnp::SchemaLoader& loader;
  std::uint64_t file_id;
  std::string capnp_ns; // "::bank::schema"
  std::string ns;       // "bank"
};

/// The qualified C++ name capnpc-c++ gives a top-level struct or enum of the file.
std::string top_level_name(const file_context& fc, capnp::Schema s, const std::string& where) {
  auto proto = s.getProto();
  if (proto.getScopeId() != fc.file_id)
    throw schema_error(where + ": type " + text(proto.getDisplayName()) +
                       " is not declared at the top level of this file; capnpc-strata maps "
                       "only top-level structs and enums of the same file (move it there)");
  auto name = text(proto.getDisplayName()).substr(proto.getDisplayNamePrefixLength());
  return fc.capnp_ns + "::" + name;
}

std::string cpp_top_level_name(capnp::Schema s) {
  auto proto = s.getProto();
  return cpp_identifier(text(proto.getDisplayName()).substr(proto.getDisplayNamePrefixLength()));
}

type_model primitive(const char* cpp) {
  type_model t;
  t.kind = type_kind::primitive;
  t.cpp = cpp;
  return t;
}

type_model map_type(const file_context& fc, capnp::Type type, const std::string& where,
                    bool in_list);

type_model map_list(const file_context& fc, capnp::Type type, const std::string& where) {
  auto element = type.asList().getElementType();
  type_model t;
  t.kind = type_kind::list;
  t.element = std::make_unique<type_model>(map_type(fc, element, where, true));
  t.cpp = "std::vector<" + t.element->cpp + ">";
  return t;
}

type_model map_type(const file_context& fc, capnp::Type type, const std::string& where,
                    bool in_list) {
  using w = capnp::schema::Type;
  switch (type.which()) {
    case w::BOOL: return primitive("bool");
    case w::INT8: return primitive("std::int8_t");
    case w::INT16: return primitive("std::int16_t");
    case w::INT32: return primitive("std::int32_t");
    case w::INT64: return primitive("std::int64_t");
    case w::UINT8: return primitive("std::uint8_t");
    case w::UINT16: return primitive("std::uint16_t");
    case w::UINT32: return primitive("std::uint32_t");
    case w::UINT64: return primitive("std::uint64_t");
    case w::FLOAT32: return primitive("float");
    case w::FLOAT64: return primitive("double");
    case w::TEXT: {
      type_model t;
      t.kind = type_kind::text;
      t.cpp = "std::string";
      return t;
    }
    case w::DATA: {
      type_model t;
      t.kind = type_kind::data;
      t.cpp = "std::string";
      return t;
    }
    case w::ENUM: {
      type_model t;
      t.kind = type_kind::enumeration;
      t.capnp = top_level_name(fc, type.asEnum(), where);
      t.cpp = "::" + fc.ns + "::" + cpp_top_level_name(type.asEnum());
      return t;
    }
    case w::STRUCT: {
      type_model t;
      t.kind = type_kind::structure;
      t.capnp = top_level_name(fc, type.asStruct(), where);
      t.cpp = "::" + fc.ns + "::" + cpp_top_level_name(type.asStruct());
      return t;
    }
    case w::LIST:
      if (in_list)
        throw schema_error(where + ": lists of lists are not supported by capnpc-strata "
                                   "(wrap the inner list in a struct)");
      return map_list(fc, type, where);
    default:
      throw schema_error(where + ": Void, AnyPointer, interfaces and generic parameters are "
                                 "not supported by capnpc-strata (write a hand-written mapping, "
                                 "docs/runtime.md)");
  }
}

std::string initializer(const type_model& t, capnp::schema::Value::Reader v,
                        capnp::StructSchema::Field f) {
  using w = capnp::schema::Value;
  switch (v.which()) {
    case w::BOOL: return v.getBool() ? "true" : "false";
    case w::INT8: return std::to_string(v.getInt8());
    case w::INT16: return std::to_string(v.getInt16());
    case w::INT32: return std::to_string(v.getInt32());
    case w::INT64:
      // INT64_MIN has no literal of its own.
      return v.getInt64() == INT64_MIN ? "INT64_MIN" : std::to_string(v.getInt64()) + "LL";
    case w::UINT8: return std::to_string(v.getUint8());
    case w::UINT16: return std::to_string(v.getUint16());
    case w::UINT32: return std::to_string(v.getUint32()) + "U";
    case w::UINT64: return std::to_string(v.getUint64()) + "ULL";
    case w::FLOAT32: {
      std::ostringstream os;
      os.precision(9);
      os << "static_cast<float>(" << std::showpoint << v.getFloat32() << ")";
      return os.str();
    }
    case w::FLOAT64: {
      std::ostringstream os;
      os.precision(17);
      os << std::showpoint << v.getFloat64();
      return os.str();
    }
    case w::TEXT:
      return v.hasText() && v.getText().size() > 0 ? c_string_literal(text(v.getText())) : "";
    case w::ENUM: return "static_cast<" + t.cpp + ">(" + std::to_string(v.getEnum()) + ")";
    default:
      if (f.getProto().getSlot().getHadExplicitDefault())
        throw schema_error("field " + text(f.getProto().getName()) +
                           ": capnpc-strata maps explicit defaults of scalars, enums and Text "
                           "only (remove the default of this Data/List/struct field)");
      return "";
  }
}

field_model read_field(const file_context& fc, capnp::StructSchema::Field f,
                       const std::string& where) {
  auto proto = f.getProto();
  field_model m;
  m.capnp_name = text(proto.getName());
  auto field_where = where + "." + m.capnp_name;
  if (proto.getDiscriminantValue() != capnp::schema::Field::NO_DISCRIMINANT)
    throw schema_error(field_where + ": unions are not supported by capnpc-strata (use a "
                                     "separate event per case, or a hand-written mapping)");
  if (proto.isGroup())
    throw schema_error(field_where + ": groups are not supported by capnpc-strata (use a "
                                     "named struct)");
  m.accessor = m.capnp_name;
  m.accessor[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(m.accessor[0])));
  m.cpp_name = cpp_identifier(m.capnp_name);
  m.type = map_type(fc, f.getType(), field_where, false);
  m.initializer = initializer(m.type, proto.getSlot().getDefaultValue(), f);
  return m;
}

void read_role(struct_model& m, capnp::schema::Node::Reader proto) {
  auto as = proto.getAnnotations();
  capnp::schema::Value::Reader v;
  int roles = 0;
  if (find(as, id_event, &v)) {
    m.role = struct_role::event;
    m.event_type = text(v.getText());
    if (m.event_type.empty()) m.event_type = snake_case(m.capnp_name);
    ++roles;
  }
  if (find(as, id_state)) {
    m.role = struct_role::state;
    ++roles;
  }
  if (find(as, id_command, &v)) {
    m.role = struct_role::command;
    m.command_name = text(v.getText());
    if (m.command_name.empty()) m.command_name = snake_case(m.capnp_name);
    ++roles;
  }
  if (find(as, id_reply)) {
    m.role = struct_role::reply;
    ++roles;
  }
  if (roles > 1)
    throw schema_error(m.capnp_name + ": at most one of $Strata.event, $Strata.state, "
                                      "$Strata.command and $Strata.reply per struct");
  if (find(as, id_version, &v)) {
    if (m.role != struct_role::event && m.role != struct_role::state)
      throw schema_error(m.capnp_name + ": $Strata.version applies to events and the state "
                                        "only");
    m.version = v.getUint32();
    if (m.version == 0) throw schema_error(m.capnp_name + ": $Strata.version must be 1 or more");
  }
}

struct_model read_struct(const file_context& fc, capnp::StructSchema s) {
  auto proto = s.getProto();
  struct_model m;
  m.capnp_name = text(proto.getDisplayName()).substr(proto.getDisplayNamePrefixLength());
  m.capnp_cpp = fc.capnp_ns + "::" + m.capnp_name;
  m.cpp_name = cpp_identifier(m.capnp_name);
  m.id = proto.getId();
  read_role(m, proto);
  if (proto.getIsGeneric())
    throw schema_error(m.capnp_name + ": generic structs are not supported by capnpc-strata");
  for (auto f : s.getFields()) {
    m.fields.push_back(read_field(fc, f, m.capnp_name));
    const auto& name = m.fields.back().cpp_name;
    if (name == m.cpp_name)
      throw schema_error(m.capnp_name + "." + m.fields.back().capnp_name +
                         ": a C++ member cannot have its struct's name (" + name +
                         "); rename the field (the name is not part of the stored bytes)");
    if (name == "event_type" || name == "schema_version")
      throw schema_error(m.capnp_name + "." + m.fields.back().capnp_name + ": the C++ name " +
                         name +
                         " is taken by a generated constant; rename the field (the "
                         "name is not part of the stored bytes)");
    const type_model* t = &m.fields.back().type;
    if (t->kind == type_kind::list) t = t->element.get();
    // Qualified, so that a field may share its type's name (`kind @1 :Kind`).
    if (t->kind == type_kind::structure) m.depends_on.push_back(t->cpp.substr(fc.ns.size() + 4));
  }
  return m;
}

enum_model read_enum(const file_context& fc, capnp::EnumSchema s) {
  auto proto = s.getProto();
  enum_model m;
  m.capnp_name = text(proto.getDisplayName()).substr(proto.getDisplayNamePrefixLength());
  m.capnp_cpp = fc.capnp_ns + "::" + m.capnp_name;
  m.cpp_name = cpp_identifier(m.capnp_name);
  for (auto e : s.getEnumerants())
    m.enumerants.push_back({cpp_identifier(text(e.getProto().getName())), e.getOrdinal()});
  return m;
}

/// Orders the structs so that a struct comes after every struct it contains.
std::vector<struct_model> dependency_order(std::vector<struct_model> in) {
  std::vector<struct_model> out;
  std::set<std::string> done;
  while (!in.empty()) {
    auto ready = std::find_if(in.begin(), in.end(), [&](const struct_model& s) {
      return std::all_of(s.depends_on.begin(), s.depends_on.end(), [&](const std::string& d) {
        return done.count(d) > 0;
      });
    });
    if (ready == in.end())
      throw schema_error(in.front().capnp_name + ": structs that contain themselves (directly "
                                                 "or through others) are not supported by "
                                                 "capnpc-strata");
    done.insert(ready->cpp_name);
    out.push_back(std::move(*ready));
    in.erase(ready);
  }
  return out;
}

void read_file_annotations(file_model& m, file_context& fc, capnp::schema::Node::Reader proto) {
  auto as = proto.getAnnotations();
  capnp::schema::Value::Reader v;
  if (!find(as, id_namespace, &v))
    throw schema_error(m.path + ": missing the file annotation $Strata.namespace(\"...\") (the "
                                "C++ namespace of the generated types; import "
                                "\"/strata/schema/strata.capnp\" as Strata)");
  m.ns = text(v.getText());
  if (!find(as, id_cxx_namespace, &v))
    throw schema_error(m.path + ": missing $import \"/capnp/c++.capnp\".namespace(\"...\") "
                                "(capnpc-strata's code uses capnpc-c++'s)");
  fc.capnp_ns = "::" + text(v.getText());
  fc.ns = m.ns;
  if (fc.capnp_ns == "::" + m.ns)
    throw schema_error(m.path + ": $Strata.namespace must differ from the Cap'n Proto C++ "
                                "namespace (e.g. \"bank\" and \"bank::schema\")");
  if (find(as, id_aggregate, &v)) m.aggregate = text(v.getText());
  m.upcaster = find(as, id_upcaster);
}

/// A command's wire name is framed with a one-byte length (wire.hpp) and read back by
/// nodes of other versions: non-empty, at most 255 bytes, unique.
void check_command_names(const file_model& m) {
  std::set<std::string> names;
  for (const auto& s : m.structs) {
    if (s.role != struct_role::command) continue;
    if (s.command_name.size() > 255)
      throw schema_error(s.capnp_name + ": the command name is longer than 255 bytes");
    if (!names.insert(s.command_name).second)
      throw schema_error("two commands have the name \"" + s.command_name +
                         "\" (set distinct names with $Strata.command(\"...\"))");
  }
}

void check_roles(const file_model& m) {
  int states = 0;
  int replies = 0;
  bool events = false;
  bool commands = false;
  for (const auto& s : m.structs) {
    states += s.role == struct_role::state;
    replies += s.role == struct_role::reply;
    events = events || s.role == struct_role::event;
    commands = commands || s.role == struct_role::command;
  }
  if (states > 1) throw schema_error(m.path + ": more than one struct has $Strata.state");
  if (replies > 1) throw schema_error(m.path + ": more than one struct has $Strata.reply");
  if ((events || states > 0 || commands || replies > 0) && m.aggregate.empty())
    throw schema_error(m.path + ": events, a state, commands or a reply are declared but the "
                                "file annotation $Strata.aggregate(\"<type name>\") is missing");
  try {
    check_command_names(m);
  } catch (const schema_error& e) {
    throw schema_error(m.path + ": " + e.what());
  }
  if (!m.aggregate.empty() && !events)
    throw schema_error(m.path + ": $Strata.aggregate is set but no struct has $Strata.event");
  std::set<std::string> types;
  for (const auto& s : m.structs)
    if (s.role == struct_role::event && !types.insert(s.event_type).second)
      throw schema_error(m.path + ": two events have the stored type name \"" + s.event_type +
                         "\"");
}

} // namespace

std::string snake_case(const std::string& name) {
  std::string out;
  for (std::size_t i = 0; i < name.size(); ++i) {
    auto c = static_cast<unsigned char>(name[i]);
    if (std::isupper(c)) {
      bool prev_lower = i > 0 && (std::islower(static_cast<unsigned char>(name[i - 1])) ||
                                  std::isdigit(static_cast<unsigned char>(name[i - 1])));
      bool next_lower = i > 0 && i + 1 < name.size() &&
                        std::islower(static_cast<unsigned char>(name[i + 1])) &&
                        std::isupper(static_cast<unsigned char>(name[i - 1]));
      if (prev_lower || next_lower) out += '_';
      out += static_cast<char>(std::tolower(c));
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string c_string_literal(const std::string& s) {
  std::ostringstream os;
  os << '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\')
      os << '\\' << c;
    else if (c < 0x20 || c >= 0x7f)
      os << "\\" << std::oct << ((c >> 6) & 7) << ((c >> 3) & 7) << (c & 7) << std::dec;
    else
      os << c;
  }
  os << '"';
  return os.str();
}

file_model read_file(const capnp::SchemaLoader& loader,
                     capnp::schema::CodeGeneratorRequest::RequestedFile::Reader file) {
  file_model m;
  m.path = text(file.getFilename());
  m.stem = m.path.size() > 6 && m.path.compare(m.path.size() - 6, 6, ".capnp") == 0
             ? m.path.substr(0, m.path.size() - 6)
             : m.path;
  m.id = file.getId();
  auto schema = loader.get(m.id);
  file_context fc{loader, m.id, "", ""};
  read_file_annotations(m, fc, schema.getProto());
  std::vector<struct_model> structs;
  try {
    for (auto nested : schema.getProto().getNestedNodes()) {
      auto s = loader.get(nested.getId());
      if (s.getProto().isStruct())
        structs.push_back(read_struct(fc, s.asStruct()));
      else if (s.getProto().isEnum())
        m.enums.push_back(read_enum(fc, s.asEnum()));
    }
    m.structs = dependency_order(std::move(structs));
  } catch (const schema_error& e) {
    throw schema_error(m.path + ": " + e.what());
  }
  check_roles(m);
  return m;
}

} // namespace capnpc_strata
