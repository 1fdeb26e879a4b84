#include "strata/persistence/envelope_peek.hpp"

#include "strata/schema/envelope.capnp.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>

namespace strata::persistence {

status peek_envelope(std::string_view bytes, envelope_fields& out,
                     std::vector<std::uint64_t>& scratch) {
  if (bytes.size() < sizeof(capnp::word) || bytes.size() % sizeof(capnp::word) != 0)
    return {errc::corrupt, "envelope of " + std::to_string(bytes.size()) +
                             " bytes is not a whole number of Cap'n Proto words"};
  const auto* data = reinterpret_cast<const capnp::word*>(bytes.data());
  std::size_t words = bytes.size() / sizeof(capnp::word);
  if (reinterpret_cast<std::uintptr_t>(bytes.data()) % alignof(capnp::word) != 0) {
    scratch.resize(words);
    std::memcpy(scratch.data(), bytes.data(), bytes.size());
    data = reinterpret_cast<const capnp::word*>(scratch.data());
  }
  try {
    capnp::FlatArrayMessageReader reader(kj::arrayPtr(data, words));
    auto env = reader.getRoot<strata::schema::Envelope>();
    auto pid = env.getPersistenceId();
    auto type = env.getEventType();
    out.persistence_id = std::string_view{pid.cStr(), pid.size()};
    out.event_type = std::string_view{type.cStr(), type.size()};
    out.seq = env.getSeq();
    out.position = env.getPosition();
    out.timestamp_ns = env.getTimestampNs();
    out.schema_version = env.getSchemaVersion();
  } catch (const kj::Exception& e) {
    return {errc::corrupt, std::string{"envelope does not decode: "} + e.getDescription().cStr()};
  }
  return {};
}

} // namespace strata::persistence
