// strata/runtime/wire.hpp: the wire form of reply values (numbers, bool, enums,
// strings, std::monostate), command framing, reply_codec, and the trait
// strata::is_routable_v (aggregate.hpp) on hand-written aggregates.
#include "counter.hpp"

#include "strata/runtime/aggregate.hpp"
#include "strata/runtime/wire.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace wire = strata::wire;

namespace {

enum class color : std::uint16_t { red = 1, blue = 0x0102 };

template <class T>
void check_round_trip(const T& v) {
  auto bytes = wire::encode(v);
  auto back = wire::decode<T>(bytes);
  REQUIRE(back.has_value());
  CHECK(wire::encode(*back) == bytes); // bit for bit (NaN, -0.0)
}

template <class T>
void check_extremes() {
  check_round_trip(std::numeric_limits<T>::min());
  check_round_trip(std::numeric_limits<T>::max());
  check_round_trip(T{});
  CHECK(wire::encode(T{}).size() == sizeof(T));
  CHECK_FALSE(wire::decode<T>(std::string(sizeof(T) - 1, '\0')).has_value());
  CHECK_FALSE(wire::decode<T>(std::string(sizeof(T) + 1, '\0')).has_value());
}

// The command codec an aggregate may write by hand: [name][8-byte amount].
std::string encode_amount(const test_counter::counter::command& c) {
  std::int64_t n = 0;
  if (auto a = std::get_if<test_counter::add>(&c)) n = a->n;
  return wire::command_prefix("add") + wire::encode(n);
}

/// The test counter, routable: a hand-written command codec (adds only) and
/// reply_codec for its std::int64_t reply.
struct routable_counter : test_counter::counter, wire::reply_codec<std::int64_t> {
  static std::string encode_command(const command& c) { return encode_amount(c); }
  static std::optional<command> decode_command(std::string_view bytes) {
    auto f = wire::unframe_command(bytes);
    if (!f || f->name != "add") return std::nullopt;
    auto n = wire::decode<std::int64_t>(f->message);
    if (!n) return std::nullopt;
    return command{test_counter::add{*n}};
  }
};

/// Commands without a reply codec.
struct commands_only : test_counter::counter {
  static std::string encode_command(const command& c) { return encode_amount(c); }
  static std::optional<command> decode_command(std::string_view) { return std::nullopt; }
};

/// A reply codec for another type than its reply.
struct wrong_reply : routable_counter {
  using reply = std::int32_t;
};

/// decode_command with another signature (a std::string, not a string_view).
struct wrong_signature : test_counter::counter, wire::reply_codec<std::int64_t> {
  static std::string encode_command(const command& c) { return encode_amount(c); }
  static std::optional<command> decode_command(const std::string&) { return std::nullopt; }
};

} // namespace

TEST_CASE("wire: numbers are their fixed-width little-endian bytes") {
  CHECK(wire::encode(std::int32_t{0x01020304}) == std::string("\x04\x03\x02\x01", 4));
  CHECK(wire::encode(std::int16_t{-2}) == std::string("\xfe\xff", 2));
  CHECK(wire::encode(std::uint64_t{1}) == std::string("\x01\0\0\0\0\0\0\0", 8));
  CHECK(wire::encode(color::blue) == std::string("\x02\x01", 2));
  CHECK(wire::decode<std::int64_t>(wire::encode(std::int64_t{-5})) == -5);
  CHECK(wire::decode<color>(std::string("\x01\x00", 2)) == color::red);
  check_extremes<std::int8_t>();
  check_extremes<std::uint8_t>();
  check_extremes<std::int16_t>();
  check_extremes<std::uint16_t>();
  check_extremes<std::int32_t>();
  check_extremes<std::uint32_t>();
  check_extremes<std::int64_t>();
  check_extremes<std::uint64_t>();
  check_extremes<char>();
  check_extremes<float>();
  check_extremes<double>();
  check_round_trip(std::numeric_limits<double>::quiet_NaN());
  check_round_trip(-0.0);
  check_round_trip(std::numeric_limits<float>::infinity());
  CHECK(wire::decode<double>(wire::encode(0.1)) == 0.1);
  CHECK(std::signbit(*wire::decode<double>(wire::encode(-0.0))));
}

TEST_CASE("wire: bool, std::string and std::monostate") {
  CHECK(wire::encode(true) == "\x01");
  CHECK(wire::encode(false) == std::string(1, '\0'));
  CHECK(wire::decode<bool>("\x01") == true);
  CHECK(wire::decode<bool>(std::string(1, '\0')) == false);
  CHECK_FALSE(wire::decode<bool>("\x02").has_value());
  CHECK_FALSE(wire::decode<bool>("").has_value());
  CHECK_FALSE(wire::decode<bool>("\x01\x01").has_value());
  const std::string binary("a\0\xff\n", 4);
  CHECK(wire::encode(binary) == binary);
  CHECK(wire::decode<std::string>(binary) == binary);
  CHECK(wire::decode<std::string>("") == std::string());
  CHECK(wire::encode(std::monostate{}).empty());
  CHECK(wire::decode<std::monostate>("").has_value());
  CHECK_FALSE(wire::decode<std::monostate>("x").has_value());
}

TEST_CASE("wire: more than bytes_max is refused") {
  std::string big(wire::bytes_max + 1, 'b');
  CHECK_FALSE(wire::decode<std::string>(big).has_value());
  CHECK(wire::decode<std::string>(big.substr(1)).has_value());
  CHECK_FALSE(wire::unframe_command("\x03"
                                    "add" +
                                    big)
                .has_value());
}

TEST_CASE("wire: which types are encodable") {
  static_assert(wire::is_encodable_v<std::int64_t> && wire::is_encodable_v<bool> &&
                wire::is_encodable_v<double> && wire::is_encodable_v<color> &&
                wire::is_encodable_v<std::string> && wire::is_encodable_v<std::monostate>);
  static_assert(!wire::is_encodable_v<std::vector<int>>);
  static_assert(!wire::is_encodable_v<test_counter::counter::state>); // no hooks
  static_assert(!wire::is_encodable_v<long double>);
}

TEST_CASE("wire: command framing") {
  auto bytes = wire::command_prefix("add") + "rest";
  CHECK(bytes == std::string("\x03"
                             "addrest"));
  auto f = wire::unframe_command(bytes);
  REQUIRE(f.has_value());
  CHECK(f->name == "add");
  CHECK(f->message == "rest");
  auto empty_message = wire::unframe_command("\x03"
                                             "add");
  REQUIRE(empty_message.has_value());
  CHECK(empty_message->message.empty());
  CHECK_FALSE(wire::unframe_command("").has_value());
  CHECK_FALSE(wire::unframe_command(std::string(1, '\0') + "x").has_value()); // empty name
  CHECK_FALSE(wire::unframe_command("\x04"
                                    "add")
                .has_value()); // shorter than announced
}

TEST_CASE("is_routable_v: true with all four functions, false otherwise") {
  static_assert(strata::is_aggregate_v<test_counter::counter>);
  static_assert(!strata::is_routable_v<test_counter::counter>); // none of the four
  static_assert(strata::is_routable_v<routable_counter>);
  static_assert(strata::check_routable<routable_counter>());
  static_assert(!strata::is_routable_v<commands_only>);
  static_assert(!strata::is_routable_v<wrong_reply>);
  static_assert(!strata::is_routable_v<wrong_signature>);
  static_assert(!strata::is_routable_v<int>);
  auto c = routable_counter::decode_command(
    routable_counter::encode_command(test_counter::counter::command{test_counter::add{42}}));
  REQUIRE(c.has_value());
  CHECK(std::get<test_counter::add>(*c).n == 42);
  CHECK(routable_counter::decode_reply(routable_counter::encode_reply(-9)) == -9);
  CHECK_FALSE(routable_counter::decode_reply("short").has_value());
}
