// capnpc-strata: a Cap'n Proto compiler plugin. `capnp compile -o<path>/capnpc-strata:DIR
// FILE.capnp` runs it with the CodeGeneratorRequest on stdin and DIR as the working
// directory; for each requested file it writes <stem>.strata.{hpp,cpp,md,json}
// (emit.hpp). The CMake function strata_add_schema runs it next to capnpc-c++.
//
// Exit codes: 0 written; 1 a schema it cannot map or a file it cannot write (the
// message on stderr names the file, struct or field and what to do).
#include "emit.hpp"
#include "model.hpp"

#include <capnp/schema-loader.h>
#include <capnp/schema.capnp.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

namespace {

void write_file(const std::filesystem::path& path, const std::string& content) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out)
    throw std::runtime_error("cannot write " + path.string() +
                             " (check the output directory's "
                             "permissions and free space)");
}

void generate(capnp::schema::CodeGeneratorRequest::Reader request) {
  capnp::SchemaLoader loader;
  for (auto node : request.getNodes())
    loader.load(node);
  for (auto file : request.getRequestedFiles()) {
    auto m = capnpc_strata::read_file(loader, file);
    write_file(m.stem + ".strata.hpp", capnpc_strata::emit_header(m));
    write_file(m.stem + ".strata.cpp", capnpc_strata::emit_source(m));
    write_file(m.stem + ".strata.md", capnpc_strata::emit_markdown(m));
    write_file(m.stem + ".strata.json", capnpc_strata::emit_json(m));
  }
}

} // namespace

int main() {
  try {
    capnp::ReaderOptions opts;
    opts.traversalLimitInWords = 1ull << 30; // a request holds every imported schema
    capnp::StreamFdMessageReader reader(0, opts);
    generate(reader.getRoot<capnp::schema::CodeGeneratorRequest>());
    return 0;
  } catch (const kj::Exception& e) {
    std::cerr << "capnpc-strata: cannot read the code generator request: "
              << e.getDescription().cStr() << " (run it through `capnp compile`)\n";
  } catch (const std::exception& e) {
    std::cerr << "capnpc-strata: " << e.what() << "\n";
  }
  return 1;
}
