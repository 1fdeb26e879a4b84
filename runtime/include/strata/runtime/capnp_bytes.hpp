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
// Bytes from another node (a command or reply, wire.hpp) are read with read_untrusted,
// which never throws:
//
//   std::optional<deposit> d = strata::read_untrusted<schema::Deposit>(
//     bytes, [](schema::Deposit::Reader r) { return deposit{r.getCents()}; });
//
// Threads: plain values; any thread. Errors: capnp_reader's root() throws
// kj::Exception on malformed bytes (the runtime catches it and reports `corrupt`);
// read_untrusted returns nullopt instead.
#pragma once

#include "strata/runtime/wire.hpp"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/array.h>
#include <kj/exception.h>

#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace strata {

/// Appends a message (standard framing, unpacked) to `out`.
inline void capnp_append(std::string& out, capnp::MessageBuilder& mb) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(mb);
  auto bytes = words.asBytes();
  out.append(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

/// Serialises a message (standard framing, unpacked) into a byte string.
inline std::string capnp_to_bytes(capnp::MessageBuilder& mb) {
  std::string out;
  capnp_append(out, mb);
  return out;
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

  /// Whether the message ends exactly where the bytes do (no trailing words).
  bool whole() const { return reader_.getEnd() == words_.end(); }

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

/// Reads bytes from outside the process (another node) as one message with root `Root`
/// and converts it with `read(Root::Reader)`, which must read every field it needs
/// (Cap'n Proto checks pointers lazily, when a field is read). nullopt when the bytes
/// are empty, not whole words, more than wire::bytes_max, followed by trailing words,
/// or malformed anywhere `read` looks (every kj::Exception and std::exception is
/// caught). Never throws. The default traversal limit (64 MiB) bounds the work.
template <class Root, class F>
auto read_untrusted(std::string_view bytes, F&& read) noexcept
  -> std::optional<std::decay_t<std::invoke_result_t<F&, typename Root::Reader>>> {
  if (bytes.empty() || bytes.size() > wire::bytes_max || bytes.size() % sizeof(capnp::word) != 0)
    return std::nullopt;
  try {
    capnp_reader r{bytes};
    if (!r.whole()) return std::nullopt;
    return read(r.root<Root>());
  } catch (const kj::Exception&) {
    return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

} // namespace strata
