#include "wire.hpp"

#include <charconv>

namespace strata::cluster::wire {

namespace {

constexpr std::uint8_t format_version = 2;
constexpr std::uint8_t heartbeat_format = 2;
/// Longest host name a decoder accepts (DNS names are at most 253 characters).
constexpr std::size_t host_max = 255;

class writer {
 public:
  void u8(std::uint8_t x) { out_.push_back(static_cast<char>(x)); }
  void u16(std::uint16_t x) { le(x, 2); }
  void u32(std::uint32_t x) { le(x, 4); }
  void u64(std::uint64_t x) { le(x, 8); }
  void text(const std::string& s) {
    u16(static_cast<std::uint16_t>(s.size()));
    out_ += s;
  }
  void member(const member_id& m) {
    text(m.address.host);
    u16(m.address.port);
    u64(m.incarnation);
  }
  std::string take() { return std::move(out_); }

 private:
  void le(std::uint64_t x, int n) {
    for (int i = 0; i < n; ++i)
      out_.push_back(static_cast<char>((x >> (8 * i)) & 0xff));
  }
  std::string out_;
};

/// Reads little-endian fields; after the first failure every read fails (ok() false).
class reader {
 public:
  explicit reader(std::string_view in) : in_(in) {}
  bool ok() const noexcept { return ok_; }
  bool at_end() const noexcept { return ok_ && pos_ == in_.size(); }
  std::uint8_t u8() { return static_cast<std::uint8_t>(le(1)); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(le(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(le(4)); }
  std::uint64_t u64() { return le(8); }
  std::string text() {
    auto n = u16();
    if (!ok_ || n > host_max || in_.size() - pos_ < n) return fail_text();
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  member_id member() {
    member_id m;
    m.address.host = text();
    m.address.port = u16();
    m.incarnation = u64();
    return m;
  }

 private:
  std::uint64_t le(std::size_t n) {
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return 0;
    }
    std::uint64_t x = 0;
    for (std::size_t i = 0; i < n; ++i)
      x |= std::uint64_t{static_cast<unsigned char>(in_[pos_ + i])} << (8 * i);
    pos_ += n;
    return x;
  }
  std::string fail_text() {
    ok_ = false;
    return {};
  }
  std::string_view in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

/// The order of a shard's states within one epoch (see merge_tables).
int phase_rank(handoff_phase p) noexcept {
  switch (p) {
    case handoff_phase::unowned: return 0;
    case handoff_phase::handed_over: return 1;
    case handoff_phase::restoring: return 2;
    case handoff_phase::serving: return 3;
    case handoff_phase::stopping: return 4;
    case handoff_phase::flushed: return 5;
  }
  return 0;
}

bool read_view(reader& r, member_view& view) {
  auto n = r.u32();
  if (!r.ok() || n > max_members) return false;
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    auto m = r.member();
    auto status = r.u8();
    auto version = r.u64();
    if (status > static_cast<std::uint8_t>(member_status::removed)) return false;
    view.absorb(m, member_record{static_cast<member_status>(status), version});
  }
  return r.ok();
}

bool read_table(reader& r, std::vector<shard_state>& table, std::uint32_t shards) {
  auto n = r.u32();
  if (!r.ok() || n != shards) return false;
  table.resize(n);
  for (auto& s : table) {
    auto phase = r.u8();
    if (phase > static_cast<std::uint8_t>(handoff_phase::restoring)) return false;
    s.phase = static_cast<handoff_phase>(phase);
    auto has_holder = r.u8();
    if (has_holder > 1) return false;
    if (has_holder == 1) s.holder = r.member();
    s.epoch = r.u64();
    if (!r.ok()) return false;
    if ((s.phase == handoff_phase::unowned) == s.holder.has_value()) return false;
  }
  return r.ok();
}

/// The reachability table: rows and subjects per row bounded by max_members. A row
/// arrives whole and is merged (absorb), like the view's records.
bool read_reach(reader& r, reachability& reach) {
  auto rows = r.u32();
  if (!r.ok() || rows > max_members) return false;
  for (std::uint32_t i = 0; i < rows; ++i) {
    auto observer = r.member();
    reachability_row row;
    row.version = r.u64();
    auto n = r.u32();
    if (!r.ok() || n > max_members) return false;
    for (std::uint32_t j = 0; j < n && r.ok(); ++j)
      row.unreachable.insert(r.member());
    if (!r.ok()) return false;
    reach.absorb(observer, row);
  }
  return r.ok();
}

void write_reach(writer& w, const reachability& reach) {
  w.u32(static_cast<std::uint32_t>(reach.rows().size()));
  for (const auto& e : reach.rows()) {
    w.member(e.observer);
    w.u64(e.row->version);
    w.u32(static_cast<std::uint32_t>(e.row->unreachable.size()));
    for (const auto& m : e.row->unreachable)
      w.member(m);
  }
}

/// Whether `b` replaces `a` in merge_tables: later by (epoch, phase rank), or equal so
/// far and with the lower holder (none first).
bool replaces(const shard_state& a, const shard_state& b) {
  auto ka = std::make_pair(a.epoch, phase_rank(a.phase));
  auto kb = std::make_pair(b.epoch, phase_rank(b.phase));
  if (ka != kb) return ka < kb;
  return b.holder < a.holder; // std::optional: nullopt is the lowest
}

} // namespace

std::string encode_heartbeat(const heartbeat& h) {
  writer w;
  w.u8(heartbeat_format);
  w.u8(h.echo ? 2 : 1);
  w.u64(static_cast<std::uint64_t>(h.sent_ns));
  return w.take();
}

std::optional<heartbeat> decode_heartbeat(std::string_view bytes) {
  reader r{bytes};
  if (r.u8() != heartbeat_format) return std::nullopt;
  auto kind = r.u8();
  heartbeat h;
  h.sent_ns = static_cast<std::int64_t>(r.u64());
  if (!r.at_end() || (kind != 1 && kind != 2)) return std::nullopt;
  h.echo = kind == 2;
  return h;
}

std::string encode_gossip(const gossip& g) {
  writer w;
  w.u8(format_version);
  w.u8(static_cast<std::uint8_t>(g.kind));
  w.u32(static_cast<std::uint32_t>(g.view.members().size()));
  for (auto& [m, rec] : g.view.members()) {
    w.member(m);
    w.u8(static_cast<std::uint8_t>(rec.status));
    w.u64(rec.version);
  }
  w.u32(static_cast<std::uint32_t>(g.table.size()));
  for (auto& s : g.table) {
    w.u8(static_cast<std::uint8_t>(s.phase));
    w.u8(s.holder ? 1 : 0);
    if (s.holder) w.member(*s.holder);
    w.u64(s.epoch);
  }
  write_reach(w, g.reach);
  return w.take();
}

std::optional<gossip> decode_gossip(std::string_view bytes, std::uint32_t shards) {
  reader r(bytes);
  if (r.u8() != format_version) return std::nullopt;
  gossip g;
  auto kind = r.u8();
  if (kind != static_cast<std::uint8_t>(gossip_kind::push) &&
      kind != static_cast<std::uint8_t>(gossip_kind::reply))
    return std::nullopt;
  g.kind = static_cast<gossip_kind>(kind);
  if (!read_view(r, g.view) || !read_table(r, g.table, shards) || !read_reach(r, g.reach) ||
      !r.at_end())
    return std::nullopt;
  return g;
}

std::optional<member_id> parse_member_id(std::string_view text) {
  auto hash = text.rfind('#');
  if (hash == std::string_view::npos) return std::nullopt;
  auto colon = text.rfind(':', hash);
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty() || host.size() > host_max) return std::nullopt;
  member_id m;
  m.address.host = std::string(host);
  auto port = text.substr(colon + 1, hash - colon - 1);
  auto inc = text.substr(hash + 1);
  auto r1 = std::from_chars(port.data(), port.data() + port.size(), m.address.port);
  auto r2 = std::from_chars(inc.data(), inc.data() + inc.size(), m.incarnation);
  if (port.empty() || inc.empty() || r1.ec != std::errc{} || r2.ec != std::errc{} ||
      r1.ptr != port.data() + port.size() || r2.ptr != inc.data() + inc.size())
    return std::nullopt;
  return m;
}

std::vector<shard_state> merge_tables(const std::vector<shard_state>& a,
                                      const std::vector<shard_state>& b) {
  if (a.size() != b.size()) return a;
  auto out = a;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (replaces(a[i], b[i])) {
      out[i] = b[i];
      out[i].target = a[i].target; // the target is each node's own computation
    }
  }
  return out;
}

} // namespace strata::cluster::wire
