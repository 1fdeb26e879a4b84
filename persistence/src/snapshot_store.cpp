#include "strata/persistence/snapshot_store.hpp"

#include "journal_impl.hpp"
#include "strata/persistence/codec.hpp"

#include <chrono>

namespace strata::persistence {

using detail::get_be64;
using detail::key128;

namespace detail {

status save_snapshot(journal::impl& j, write_txn& txn, const snapshot_record& s,
                     std::uint64_t stream_id) {
  snapshot_record rec = s;
  if (rec.timestamp_ns == 0)
    rec.timestamp_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  if (auto st = txn.put(j.snaps, key128(stream_id, s.seq).view(), encode_snapshot(rec)); !st.ok())
    return st;
  // Retention: keep the newest keep_n snapshots of the stream.
  std::vector<std::string> keys;
  auto st =
    txn.scan(j.snaps, key128(stream_id, 0).view(), [&](std::string_view k, std::string_view) {
      if (get_be64(k.data()) != stream_id) return false;
      keys.emplace_back(k);
      return true;
    });
  if (!st.ok()) return st;
  auto keep = j.snapshots_api.keep_n();
  for (std::size_t i = 0; i + keep < keys.size(); ++i)
    if (auto d = txn.del(j.snaps, keys[i]); !d.ok()) return d;
  return {};
}

} // namespace detail

namespace {

journal::impl& jimpl(void* p) { return *static_cast<journal::impl*>(p); }

result<std::uint64_t> known_stream(journal::impl& j, const snapshot_record& s) {
  auto id = j.stream_id(s.persistence_id);
  if (!id) return id.error();
  if (*id == 0)
    return status{errc::invalid_argument, "snapshot for unknown stream '" + s.persistence_id + "'"};
  return id;
}

} // namespace

status snapshot_store::save(const snapshot_record& s) {
  auto& j = jimpl(journal_);
  auto id = known_stream(j, s);
  if (!id) return id.error();
  auto head = [&]() -> result<std::uint64_t> {
    std::uint64_t sid = 0, h = 0;
    {
      std::shared_lock lk(j.mem);
      if (auto* c = j.cached(s.persistence_id)) return c->head;
    }
    auto st = j.env->read([&](read_txn& txn) {
      return j.lookup_stored(txn, s.persistence_id, sid, h);
    });
    if (!st.ok()) return st;
    return h;
  }();
  if (!head) return head.error();
  if (s.seq == 0 || s.seq > *head)
    return {errc::invalid_argument, "snapshot of stream '" + s.persistence_id + "' at seq " +
                                      std::to_string(s.seq) + " is beyond its head " +
                                      std::to_string(*head)};
  return j.env->write([&](write_txn& txn) {
    return detail::save_snapshot(j, txn, s, *id);
  });
}

status snapshot_store::save(write_txn& txn, const snapshot_record& s) {
  auto& j = jimpl(journal_);
  auto id = known_stream(j, s);
  if (!id) return id.error();
  return detail::save_snapshot(j, txn, s, *id);
}

result<std::optional<snapshot_record>>
snapshot_store::load_at_or_before(std::string_view pid, std::uint64_t max_seq) const {
  auto& j = jimpl(journal_);
  auto id = j.stream_id(pid);
  if (!id) return id.error();
  std::optional<snapshot_record> out;
  if (*id == 0 || max_seq == 0) return out;
  auto st = j.env->read([&](read_txn& txn) -> status {
    status cst;
    detail::cursor c(txn.native(), j.snaps.dbi, cst);
    if (!c) return cst;
    detail::entry e;
    int rc = c.seek_at_or_before(key128(*id, max_seq).view(), e);
    if (rc == MDB_NOTFOUND) return {};
    if (rc != 0) return c.error(rc, "reading snapshots of '" + std::string(pid) + "'");
    if (e.key.size() != 16 || get_be64(e.key.data()) != *id) return {};
    auto seq = get_be64(e.key.data() + 8);
    auto r = decode_snapshot(e.value, "snapshot of stream '" + std::string(pid) + "' seq " +
                                        std::to_string(seq));
    if (!r) return r.error();
    if (r->persistence_id != pid || r->seq != seq)
      return {errc::corrupt, "snapshot stored for stream '" + std::string(pid) + "' seq " +
                               std::to_string(seq) + " holds stream '" + r->persistence_id +
                               "' seq " + std::to_string(r->seq)};
    out = std::move(*r);
    return {};
  });
  if (!st.ok()) return st;
  return out;
}

result<std::optional<snapshot_record>> snapshot_store::load_latest(std::string_view pid) const {
  return load_at_or_before(pid, ~std::uint64_t{0});
}

result<std::vector<std::uint64_t>> snapshot_store::list(std::string_view pid) const {
  auto& j = jimpl(journal_);
  auto id = j.stream_id(pid);
  if (!id) return id.error();
  std::vector<std::uint64_t> out;
  if (*id == 0) return out;
  auto st = j.env->read([&](read_txn& txn) {
    return txn.scan(j.snaps, key128(*id, 0).view(), [&](std::string_view k, std::string_view) {
      if (get_be64(k.data()) != *id) return false;
      out.push_back(get_be64(k.data() + 8));
      return true;
    });
  });
  if (!st.ok()) return st;
  return out;
}

} // namespace strata::persistence
