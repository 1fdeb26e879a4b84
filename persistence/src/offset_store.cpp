#include "strata/persistence/offset_store.hpp"

#include "lmdb_util.hpp"

namespace strata::persistence {

namespace {

result<std::optional<std::uint64_t>> decode(std::string_view consumer,
                                            result<std::optional<std::string_view>> v) {
  if (!v) return v.error();
  if (!*v) return std::optional<std::uint64_t>{};
  if ((*v)->size() != 8)
    return status{errc::corrupt, "stored offset of consumer '" + std::string(consumer) +
                                   "' is damaged; store a new position for it"};
  return std::optional<std::uint64_t>{detail::get_be64((*v)->data())};
}

status check_name(std::string_view consumer) {
  if (consumer.empty() || consumer.size() > 400)
    return {errc::invalid_argument, "consumer name must be 1..400 bytes"};
  return {};
}

} // namespace

result<std::optional<std::uint64_t>> offset_store::get(const read_txn& txn,
                                                       std::string_view consumer) const {
  if (auto st = check_name(consumer); !st.ok()) return st;
  return decode(consumer, txn.get(table_, consumer));
}

result<std::optional<std::uint64_t>> offset_store::get(std::string_view consumer) const {
  result<std::optional<std::uint64_t>> out = std::optional<std::uint64_t>{};
  auto st = env_->read([&](read_txn& txn) {
    out = get(txn, consumer);
    return out ? status{} : out.error();
  });
  if (!st.ok()) return st;
  return out;
}

status offset_store::put(write_txn& txn, std::string_view consumer, std::uint64_t position) {
  if (auto st = check_name(consumer); !st.ok()) return st;
  return txn.put(table_, consumer, detail::key64(position).view());
}

status offset_store::put(std::string_view consumer, std::uint64_t position) {
  return env_->write([&](write_txn& txn) {
    return put(txn, consumer, position);
  });
}

result<std::vector<std::pair<std::string, std::uint64_t>>> offset_store::list() const {
  std::vector<std::pair<std::string, std::uint64_t>> out;
  auto st = env_->read([&](read_txn& txn) {
    return txn.scan(table_, {}, [&](std::string_view k, std::string_view v) {
      out.emplace_back(std::string(k), v.size() == 8 ? detail::get_be64(v.data()) : 0);
      return true;
    });
  });
  if (!st.ok()) return st;
  return out;
}

} // namespace strata::persistence
