// File: strata/runtime/capnp_bytes.hpp
//
// Helpers for an aggregate's Cap'n Proto mapping (include it in the .cpp that also
// includes your generated schema header, not in the aggregate's public header).
//
//   strata::event_bytes account::encode(const event& e) {
//     capnp::MallocMessageBuilder mb;
//     auto d = mb.initRoot<schema::Deposited>();
//     d.setCents(x.cents);
//     return {"deposited", 1, strata::capnp_to_bytes(mb)};
//   }
//   std::optional<event> account::decode(std::string_view type, std::uint32_t v,
//                                        std::string_view payload) {
//     strata::capnp_reader r{payload};       // copies into aligned words
//     if (type == "deposited") return deposited{r.root<schema::Deposited>().getCents()};
//     return std::nullopt;
//   }
//
// Threads: plain values; any thread. Errors: capnp_reader's root() throws
// kj::Exception on malformed bytes (the runtime catches it and reports `corrupt`).
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/array.h>

#include <cstring>
#include <string>
#include <string_view>

namespace strata {

/// Serialises a message (standard framing, unpacked) into a byte string.
inline std::string capnp_to_bytes(capnp::MessageBuilder& mb) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(mb);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

/// Reads a message from bytes that may be unaligned (copied into words first).
class capnp_reader {
 public:
  explicit capnp_reader(std::string_view bytes, capnp::ReaderOptions opts = {})
    : words_(copy(bytes)), reader_(words_.asPtr(), opts) {}

  template <class T>
  typename T::Reader root() {
    return reader_.getRoot<T>();
  }

 private:
  static kj::Array<capnp::word> copy(std::string_view bytes) {
    auto n = (bytes.size() + sizeof(capnp::word) - 1) / sizeof(capnp::word);
    auto w = kj::heapArray<capnp::word>(n);
    if (n > 0) {
      std::memset(w.begin(), 0, n * sizeof(capnp::word));
      std::memcpy(w.begin(), bytes.data(), bytes.size());
    }
    return w;
  }
  kj::Array<capnp::word> words_;
  capnp::FlatArrayMessageReader reader_;
};

} // namespace strata
