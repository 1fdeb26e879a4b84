// capnpc-strata's generated code (ledger_v1.capnp, ledger_v2.capnp): every generated
// type round-trips through encode/decode; values print readably; events and states
// stored by the v1 schema decode with the v2 code (a field added later reads its
// default; the upcaster maps a renamed event type), in memory and from a real journal;
// commands and replies ($Strata.command, $Strata.reply) round-trip on the wire and
// cross between nodes running the v1 and the v2 code.
#include "ledger_v1.strata.hpp"
#include "ledger_v2.strata.hpp"

#include <strata/runtime/all.hpp>
#include <strata/test/temp_dir.hpp>

#include <doctest/doctest.h>

#include <limits>
#include <sstream>
#include <string>
#include <vector>

// v2's upcaster ($Strata.upcaster): "credited" was renamed "deposited" (same layout).
strata::event_bytes ledger_v2::ledger_schema::upcast(strata::event_bytes stored) {
  if (stored.type == "credited" && stored.schema_version == 1) stored.type = "deposited";
  return stored;
}

namespace {

template <class T>
std::string printed(const T& x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

ledger_v1::debited full_debited() {
  ledger_v1::debited d;
  d.cents = std::numeric_limits<std::int64_t>::min();
  d.flags = {true, false, true};
  d.small = -128;
  d.ratio = 0.25;
  d.blob = std::string("\0\x01\xff", 3);
  d.counts = {0, 65535};
  d.metas = {ledger_v1::meta{"a", {"x", "y"}}, ledger_v1::meta{"", {}}};
  d.kinds = {ledger_v1::kind::cash, ledger_v1::kind::bank_card};
  d.limit = std::numeric_limits<std::uint64_t>::max();
  return d;
}

template <class Schema>
void check_round_trip(const typename Schema::event& e) {
  auto b = Schema::encode(e);
  INFO("event " << e);
  CHECK(b.type == event_type_name(e));
  auto back = Schema::decode(b.type, b.schema_version, b.payload);
  REQUIRE(back.has_value());
  CHECK(back->index() == e.index());
  CHECK(*back == e);
}

} // namespace

TEST_CASE("generated value types: defaults from the schema, ==, type names") {
  ledger_v1::debited d;
  CHECK(d.small == -3);   // `small @2 :Int8 = -3`
  CHECK(d.limit == 1000); // `limit @8 :UInt64 = 1000`
  CHECK(d.cents == 0);
  CHECK(ledger_v1::ledger_state{}.last_kind == ledger_v1::kind::bank_card);
  CHECK(ledger_v2::deposited{}.currency == "EUR");
  CHECK(full_debited() == full_debited());
  auto other = full_debited();
  other.metas[1].tags.push_back("z");
  CHECK(other != full_debited());
  CHECK(std::string(ledger_v1::credited::event_type) == "credited");
  CHECK(std::string(ledger_v1::frozen::event_type) == "frozen"); // default: snake_case
  CHECK(ledger_v2::deposited::schema_version == 2);
  CHECK(ledger_v2::ledger_state::schema_version == 2);
  CHECK(std::string(ledger_v1::ledger_schema::type_name) == "ledger");
  static_assert(std::is_same_v<ledger_v1::ledger_schema::command,
                               std::variant<ledger_v1::audit, ledger_v1::transfer>>);
  static_assert(std::is_same_v<ledger_v1::ledger_schema::reply, ledger_v1::receipt>);
  CHECK(ledger_v2::audit{}.by == "system");
  static_assert(
    std::is_same_v<ledger_v1::ledger_schema::event,
                   std::variant<ledger_v1::credited, ledger_v1::debited, ledger_v1::frozen>>);
}

TEST_CASE("generated value types print readably (test failures)") {
  CHECK(printed(ledger_v1::credited{5, ledger_v1::kind::bank_card, {"n\"q", {"t"}}}) ==
        "credited{cents: 5, kind: bank_card, meta: meta{note: \"n\\\"q\", tags: [\"t\"]}}");
  CHECK(printed(ledger_v1::frozen{}) == "frozen{}");
  CHECK(printed(full_debited()) ==
        "debited{cents: -9223372036854775808, flags: [true, false, true], small: -128, "
        "ratio: 0.25, blob: \"\\x00\\x01\xff\", counts: [0, 65535], metas: [meta{note: "
        "\"a\", tags: [\"x\", \"y\"]}, meta{note: \"\", tags: []}], kinds: [cash, "
        "bank_card], limit: 18446744073709551615}");
  CHECK(printed(ledger_v1::ledger_schema::event{ledger_v1::frozen{}}) == "frozen{}");
  // doctest finds the printing too: a failed CHECK(a == b) on events shows both values.
  CHECK(doctest::toString(ledger_v1::ledger_schema::event{ledger_v1::frozen{}}) ==
        doctest::String("frozen{}"));
  CHECK(doctest::toString(ledger_v1::credited{1, {}, {}}) ==
        doctest::String("credited{cents: 1, kind: cash, meta: meta{note: \"\", tags: []}}"));
}

TEST_CASE("every generated event and state round-trips (v1 and v2)") {
  using v1 = ledger_v1::ledger_schema;
  check_round_trip<v1>(ledger_v1::credited{});
  check_round_trip<v1>(ledger_v1::credited{7, ledger_v1::kind::bank_card, {"note", {"a", ""}}});
  check_round_trip<v1>(ledger_v1::debited{});
  check_round_trip<v1>(full_debited());
  check_round_trip<v1>(ledger_v1::frozen{});
  using v2 = ledger_v2::ledger_schema;
  check_round_trip<v2>(ledger_v2::deposited{9, ledger_v2::kind::cash, {}, "CHF"});
  check_round_trip<v2>(ledger_v2::deposited{});
  check_round_trip<v2>(ledger_v2::frozen{});
  ledger_v1::ledger_state s1{-5, ledger_v1::kind::cash};
  auto b1 = v1::encode_state(s1);
  CHECK(b1.schema_version == 1);
  CHECK(v1::decode_state(b1.schema_version, b1.payload) == s1);
  ledger_v2::ledger_state s2{12, ledger_v2::kind::bank_card, true};
  auto b2 = v2::encode_state(s2);
  CHECK(b2.schema_version == 2);
  CHECK(v2::decode_state(b2.schema_version, b2.payload) == s2);
}

TEST_CASE("unknown types and newer versions decode to nullopt; garbage throws") {
  using v1 = ledger_v1::ledger_schema;
  auto b = v1::encode(ledger_v1::credited{1, {}, {}});
  CHECK_FALSE(v1::decode("refunded", 1, b.payload).has_value());
  CHECK_FALSE(v1::decode("credited", 2, b.payload).has_value()); // written by a newer schema
  CHECK_FALSE(v1::decode("credited", 0, b.payload).has_value());
  CHECK_FALSE(v1::decode_state(2, v1::encode_state({}).payload).has_value());
  CHECK_THROWS(v1::decode("credited", 1, std::string("\x05\x00\x00\x00garbage!", 12)));
}

TEST_CASE("events stored by schema v1 decode with the v2 code") {
  using v1 = ledger_v1::ledger_schema;
  using v2 = ledger_v2::ledger_schema;
  // Renamed event (upcaster) + field added later (its default, "EUR").
  auto old = v1::encode(ledger_v1::credited{42, ledger_v1::kind::bank_card, {"n", {"t"}}});
  REQUIRE(old.type == "credited");
  REQUIRE(old.schema_version == 1);
  auto e = v2::decode(old.type, old.schema_version, old.payload);
  REQUIRE(e.has_value());
  CHECK(*e == v2::event{ledger_v2::deposited{42, ledger_v2::kind::bank_card, {"n", {"t"}}, "EUR"}});
  // Unchanged event: decodes as it was.
  auto d = v1::encode(full_debited());
  auto e2 = v2::decode(d.type, d.schema_version, d.payload);
  REQUIRE(e2.has_value());
  REQUIRE(std::holds_alternative<ledger_v2::debited>(*e2));
  CHECK(std::get<ledger_v2::debited>(*e2).limit == std::numeric_limits<std::uint64_t>::max());
  CHECK(std::get<ledger_v2::debited>(*e2).blob == full_debited().blob);
  // A v1 "deposited" never existed; a v2 one written now is version 2.
  CHECK(v2::encode(ledger_v2::deposited{}).schema_version == 2);
  // The v1 snapshot: `frozen` (added in v2) reads false.
  auto st = v1::encode_state({77, ledger_v1::kind::cash});
  auto s = v2::decode_state(st.schema_version, st.payload);
  REQUIRE(s.has_value());
  CHECK(*s == ledger_v2::ledger_state{77, ledger_v2::kind::cash, false});
  // The v2 code refuses what v1 code cannot read (forward: nullopt in v1).
  auto newer = v2::encode(ledger_v2::deposited{1, {}, {}, "USD"});
  CHECK_FALSE(v1::decode(newer.type, newer.schema_version, newer.payload).has_value());
}

// -- commands and replies on the wire ($Strata.command, $Strata.reply) ----------------

namespace {

template <class Schema>
void check_command_round_trip(const typename Schema::command& c, const std::string& name) {
  INFO("command " << c);
  auto bytes = Schema::encode_command(c);
  REQUIRE(bytes.size() > name.size());
  CHECK(static_cast<unsigned char>(bytes[0]) == name.size());
  CHECK(bytes.substr(1, name.size()) == name);
  auto back = Schema::decode_command(bytes);
  REQUIRE(back.has_value());
  CHECK(back->index() == c.index());
  CHECK(*back == c);
}

// A schema's command and reply codecs make an aggregate routable; overriding either
// type without a codec for it does not.
struct routable_ledger : ledger_v1::ledger_schema {
  enum class rejection : std::uint8_t { never = 1 };
  friend const char* to_string(rejection) noexcept { return "never"; }
  using effect = strata::effect<event, rejection, state, reply>;
  static state apply(state s, const event&) noexcept { return s; }
  static effect handle(const state&, const command&) { return effect::reject(rejection::never); }
};
struct other_reply_ledger : routable_ledger {
  using reply = std::int64_t; // the schema's encode_reply takes a receipt
};
// Beside a schema that has a reply of its own, the using-declarations pick the codec.
struct reply_codec_ledger : other_reply_ledger, strata::wire::reply_codec<std::int64_t> {
  using strata::wire::reply_codec<std::int64_t>::encode_reply;
  using strata::wire::reply_codec<std::int64_t>::decode_reply;
};

} // namespace

TEST_CASE("generated commands and replies round-trip on the wire") {
  using v1 = ledger_v1::ledger_schema;
  using v2 = ledger_v2::ledger_schema;
  check_command_round_trip<v1>(ledger_v1::audit{}, "audit"); // $Strata.command(""): snake_case
  check_command_round_trip<v1>(ledger_v1::audit{"n\0te"}, "audit");
  check_command_round_trip<v1>(ledger_v1::transfer{}, "transfer");
  check_command_round_trip<v1>(
    ledger_v1::transfer{full_debited(), "acct-2", {ledger_v1::kind::bank_card}}, "transfer");
  check_command_round_trip<v2>(ledger_v2::audit{"x", ""}, "audit");
  check_command_round_trip<v2>(ledger_v2::freeze{}, "freeze");
  ledger_v1::receipt r1{-4, {ledger_v1::meta{"m", {"a", "b"}}, {}}};
  CHECK(v1::decode_reply(v1::encode_reply(r1)) == r1);
  CHECK(v1::decode_reply(v1::encode_reply({})) == ledger_v1::receipt{});
  ledger_v2::receipt r2{3, {}, true};
  CHECK(v2::decode_reply(v2::encode_reply(r2)) == r2);
  // The state has wire hooks too (strata::wire::encode / decode).
  ledger_v2::ledger_state s2{12, ledger_v2::kind::cash, true};
  CHECK(strata::wire::decode<ledger_v2::ledger_state>(strata::wire::encode(s2)) == s2);
  CHECK(printed(v1::command{ledger_v1::audit{"a"}}) == "audit{note: \"a\"}");
}

TEST_CASE("commands and replies cross between the v1 and the v2 code") {
  using v1 = ledger_v1::ledger_schema;
  using v2 = ledger_v2::ledger_schema;
  // A field added later reads its default; one the older code lacks is ignored.
  auto a = v2::decode_command(v1::encode_command(ledger_v1::audit{"n"}));
  REQUIRE(a.has_value());
  CHECK(*a == v2::command{ledger_v2::audit{"n", "system"}});
  CHECK(v1::decode_command(v2::encode_command(ledger_v2::audit{"n", "me"})) ==
        v1::command{ledger_v1::audit{"n"}});
  // A command the other side does not know is nullopt, whatever its position.
  CHECK_FALSE(v2::decode_command(v1::encode_command(ledger_v1::transfer{})).has_value());
  CHECK_FALSE(v1::decode_command(v2::encode_command(ledger_v2::freeze{})).has_value());
  auto r = v1::decode_reply(v2::encode_reply(ledger_v2::receipt{8, {}, true}));
  CHECK(r == ledger_v1::receipt{8, {}});
  CHECK(v2::decode_reply(v1::encode_reply(ledger_v1::receipt{8, {}})) ==
        ledger_v2::receipt{8, {}, false});
}

TEST_CASE("generated command and reply decoders refuse malformed bytes without throwing") {
  using v1 = ledger_v1::ledger_schema;
  auto t = v1::encode_command(ledger_v1::transfer{full_debited(), "to", {}});
  for (std::size_t n = 0; n < t.size(); ++n)
    CHECK_FALSE(v1::decode_command(t.substr(0, n)).has_value());
  std::string garbage("\x05audit\x05\x00\x00\x00garbage!", 18);
  CHECK_NOTHROW(CHECK_FALSE(v1::decode_command(garbage).has_value()));
  CHECK_FALSE(v1::decode_reply(std::string("\x05\x00\x00\x00garbage!", 12)).has_value());
  CHECK_FALSE(v1::decode_reply("").has_value());
}

TEST_CASE("is_routable_v: the generated codecs, exact signatures, reply_codec") {
  static_assert(strata::is_aggregate_v<routable_ledger>);
  static_assert(strata::is_routable_v<routable_ledger>);
  static_assert(!strata::is_routable_v<other_reply_ledger>);
  static_assert(strata::is_routable_v<reply_codec_ledger>);
  static_assert(strata::is_routable_v<ledger_v1::ledger_schema>); // the four, generated
  CHECK(reply_codec_ledger::decode_reply(reply_codec_ledger::encode_reply(-7)) == -7);
}

// -- on a real journal: events and a snapshot stored by v1 code, read by v2 code ------

namespace {

template <class Schema, class Credit>
struct ledger_agg : Schema {
  using state = typename Schema::state;
  using event = typename Schema::event;
  using command = std::variant<Credit, typename Schema::event>;
  enum class rejection : std::uint8_t { never = 1 };
  friend const char* to_string(rejection) noexcept { return "never"; }
  using reply = std::int64_t;
  using effect = strata::effect<event, rejection, state, reply>;

  static state apply(state s, const event& e) noexcept {
    if (auto c = std::get_if<Credit>(&e)) {
      s.balance += c->cents;
      s.last_kind = c->kind;
    }
    return s;
  }
  static effect handle(const state&, const command& c) {
    auto balance = [](const state& s) {
      return s.balance;
    };
    if (auto credit = std::get_if<Credit>(&c))
      return effect::persist({event{*credit}}).then_reply(balance);
    return effect::persist({std::get<event>(c)}).then_reply(balance);
  }
};
using ledger1 = ledger_agg<ledger_v1::ledger_schema, ledger_v1::credited>;
using ledger2 = ledger_agg<ledger_v2::ledger_schema, ledger_v2::deposited>;
// Its own command and reply types, without codecs for them: not routable.
static_assert(strata::is_aggregate_v<ledger1> && !strata::is_routable_v<ledger1>);

std::unique_ptr<strata::system> open_ledger(const std::string& dir) {
  strata::config c;
  c.data_dir = dir;
  c.snapshot_every = 2;
  c.map_size_bytes = std::size_t{64} << 20;
  auto s = strata::system::open(c);
  if (!s) FAIL("open " << dir << ": " << strata::describe(s.error()));
  return std::move(*s);
}

} // namespace

TEST_CASE("a journal written by the v1 schema recovers with the v2 code") {
  strata::test::temp_dir tmp{"strata-codegen"};
  const std::string& dir = tmp.path();
  {
    auto sys = open_ledger(dir);
    auto ledgers = sys->entities<ledger1>();
    REQUIRE(ledgers.ask("l-1", ledger_v1::credited{5, ledger_v1::kind::bank_card, {"a", {}}}));
    REQUIRE(ledgers.ask("l-1", ledger1::event{ledger_v1::frozen{}})); // v1 snapshot at seq 2
    REQUIRE(ledgers.ask("l-1", ledger_v1::credited{7, ledger_v1::kind::cash, {}}));
    sys->shutdown();
  }
  auto sys = open_ledger(dir);
  auto ledgers = sys->entities<ledger2>();
  auto h = ledgers.history("l-1");
  REQUIRE_MESSAGE(static_cast<bool>(h), strata::describe(h.error()));
  REQUIRE(h->size() == 3);
  CHECK((*h)[0].type == "credited"); // as stored; decoded through the upcaster
  CHECK((*h)[0].event ==
        ledger2::event{ledger_v2::deposited{5, ledger_v2::kind::bank_card, {"a", {}}, "EUR"}});
  CHECK((*h)[1].event == ledger2::event{ledger_v2::frozen{}});
  CHECK((*h)[2].event == ledger2::event{ledger_v2::deposited{7, ledger_v2::kind::cash, {}, "EUR"}});
  auto now = ledgers.current("l-1"); // the v1 snapshot (decode_state v1 -> v2) + seq 3
  REQUIRE(static_cast<bool>(now));
  CHECK(now->state == ledger_v2::ledger_state{12, ledger_v2::kind::cash, false});
  CHECK(now->seq == 3);
  auto r = ledgers.ask("l-1", ledger_v2::deposited{1, ledger_v2::kind::cash, {}, "CHF"});
  REQUIRE(static_cast<bool>(r));
  CHECK(*r == 13);
  sys->shutdown();
}
