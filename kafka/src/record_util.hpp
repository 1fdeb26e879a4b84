// Internal: reading strata's own headers of a consumed Kafka record (record_format.hpp).
#pragma once

#include "strata/kafka/record_format.hpp"

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace strata::kafka::detail {

/// A record with key `key` that carries header `header`: claims and checkpoints
/// (record_format.hpp). The key is compared first, so an event record costs one memcmp.
inline bool is_marked(const rd_kafka_message_t* m, std::string_view key, std::string_view header) {
  if (m->key_len != key.size() ||
      std::string_view{static_cast<const char*>(m->key), m->key_len} != key)
    return false;
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) return false;
  const void* v = nullptr;
  size_t n = 0;
  std::string name{header};
  return rd_kafka_header_get_last(hdrs, name.c_str(), &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

/// The record's `strata-epoch` header (record_format.hpp); nullopt without one (or
/// when it is not a number: counts as epoch 0 for the validity rule).
inline std::optional<std::uint64_t> record_epoch(const rd_kafka_message_t* m) {
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) return std::nullopt;
  const void* v = nullptr;
  size_t n = 0;
  // epoch_header views a string literal: data() is NUL-terminated.
  if (rd_kafka_header_get_last(hdrs, epoch_header.data(), &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      !v)
    return std::nullopt;
  return parse_epoch({static_cast<const char*>(v), n});
}

/// The epoch a claim record claims: its epoch header, else the one in its value.
inline std::uint64_t claim_epoch(const rd_kafka_message_t* m) {
  if (auto e = record_epoch(m)) return *e;
  auto c = parse_claim_value({static_cast<const char*>(m->payload), m->len});
  return c ? c->epoch : 0;
}

/// A claim record (record_format.hpp).
inline bool is_claim(const rd_kafka_message_t* m) { return is_marked(m, claim_key, claim_header); }

/// A checkpoint record of a snapshot topic (record_format.hpp).
inline bool is_checkpoint(const rd_kafka_message_t* m) {
  return is_marked(m, checkpoint_key, checkpoint_header);
}

} // namespace strata::kafka::detail
