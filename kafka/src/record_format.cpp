#include "strata/kafka/record_format.hpp"

#include <charconv>

namespace strata::kafka {

using namespace strata::persistence;

std::string encode_claim_value(const claim& c) {
  return "shard=" + std::to_string(c.shard) + " epoch=" + std::to_string(c.epoch) +
         " member=" + c.member;
}

namespace {

// Reads "<name>=<decimal> " at the front of `in` into `out`, consuming it.
template <class T>
bool take_number(std::string_view& in, std::string_view name, T& out) {
  if (in.substr(0, name.size()) != name || in.size() <= name.size() || in[name.size()] != '=')
    return false;
  in.remove_prefix(name.size() + 1);
  auto [p, ec] = std::from_chars(in.data(), in.data() + in.size(), out);
  if (ec != std::errc{} || p == in.data() || p == in.data() + in.size() || *p != ' ') return false;
  in.remove_prefix(static_cast<std::size_t>(p - in.data()) + 1);
  return true;
}

} // namespace

result<claim> parse_claim_value(std::string_view value) {
  claim c;
  auto in = value;
  constexpr std::string_view member = "member=";
  if (!take_number(in, "shard", c.shard) || !take_number(in, "epoch", c.epoch) ||
      in.substr(0, member.size()) != member)
    return status{errc::corrupt, "kafka claim record: value '" + std::string(value.substr(0, 200)) +
                                   "' is not 'shard=<n> epoch=<n> member=<text>'"};
  in.remove_prefix(member.size());
  c.member = std::string(in);
  return c;
}

std::optional<std::uint64_t> parse_epoch(std::string_view text) noexcept {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || text.empty() || p != text.data() + text.size()) return std::nullopt;
  return v;
}

std::string encode_checkpoint_value(const checkpoint& c) {
  return "shard=" + std::to_string(c.shard) + " offset=" + std::to_string(c.offset) +
         " epoch=" + std::to_string(c.epoch) + " member=" + c.member;
}

result<checkpoint> parse_checkpoint_value(std::string_view value) {
  checkpoint c;
  auto in = value;
  constexpr std::string_view member = "member=";
  if (!take_number(in, "shard", c.shard) || !take_number(in, "offset", c.offset) || c.offset < 0 ||
      !take_number(in, "epoch", c.epoch) || in.substr(0, member.size()) != member)
    return status{errc::corrupt, "kafka checkpoint record: value '" +
                                   std::string(value.substr(0, 200)) +
                                   "' is not 'shard=<n> offset=<n> epoch=<n> member=<text>'"};
  in.remove_prefix(member.size());
  c.member = std::string(in);
  return c;
}

} // namespace strata::kafka
