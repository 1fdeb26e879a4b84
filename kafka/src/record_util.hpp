// Internal: reading strata's own headers of a consumed Kafka record (record_format.hpp).
#pragma once

#include "strata/kafka/record_format.hpp"

#include <librdkafka/rdkafka.h>

#include <string_view>

namespace strata::kafka::detail {

/// A claim record (record_format.hpp): its key is claim_key and it carries the
/// claim_header. The key is compared first, so an event record costs one memcmp.
inline bool is_claim(const rd_kafka_message_t* m) {
  if (m->key_len != claim_key.size() ||
      std::string_view{static_cast<const char*>(m->key), m->key_len} != claim_key)
    return false;
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) return false;
  const void* v = nullptr;
  size_t n = 0;
  std::string name{claim_header};
  return rd_kafka_header_get_last(hdrs, name.c_str(), &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

} // namespace strata::kafka::detail
