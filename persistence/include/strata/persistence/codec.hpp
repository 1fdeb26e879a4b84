// File: strata/persistence/codec.hpp
//
// The Cap'n Proto envelope (persistence/schema/envelope.capnp) as bytes. What a Kafka
// record carries as its value, and what `capnp decode envelope.capnp Envelope`
// reads. Decoding never throws: a malformed buffer is a `corrupt` status.
//
//   std::string bytes = encode_envelope(record);
//   auto back = decode_envelope(bytes);                       // result<event_record>
#pragma once

#include "strata/persistence/event.hpp"
#include "strata/persistence/status.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace strata::persistence {

/// CRC32C (Castagnoli) of `data`, hardware-accelerated when the CPU has SSE4.2.
std::uint32_t crc32c(std::string_view data, std::uint32_t seed = 0) noexcept;

/// Encodes an event as an unpacked single-segment Cap'n Proto message (the checksum
/// field is computed from the payload, whatever `e.checksum` says).
std::string encode_envelope(const event_record& e);

/// Decodes and checks the payload checksum. Errors: corrupt ("envelope at <where>:
/// …"), where `where` names the source for the message (e.g. "kafka partition 3
/// offset 17").
result<event_record> decode_envelope(std::string_view bytes, std::string_view where = {});

std::string encode_snapshot(const snapshot_record& s);
result<snapshot_record> decode_snapshot(std::string_view bytes, std::string_view where = {});

} // namespace strata::persistence
