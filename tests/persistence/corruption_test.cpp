// Damaged data: bytes flipped in the data file of a closed journal must surface as
// errc::corrupt naming the stream and the position, never as a crash or as garbage;
// truncated or random envelope bytes must decode to corrupt.
#include "strata/persistence/codec.hpp"
#include "strata/persistence/journal.hpp"
#include "strata/persistence/snapshot_store.hpp"

#include "test_util.hpp"

#include <random>
#include <string>
#include <vector>

using namespace strata::persistence;
using namespace strata::persistence::test;

namespace {

/// Flips bytes inside every copy of `needle` in the file (LMDB's copy-on-write may
/// leave an older copy of a page in free space). Returns the number of copies damaged.
int damage_all(const std::string& file, const std::string& needle) {
  auto bytes = read_file(file);
  int copies = 0;
  for (auto at = bytes.find(needle); at != std::string::npos;
       at = bytes.find(needle, at + needle.size())) {
    for (std::size_t i = 10; i < 14; ++i)
      bytes[at + i] = static_cast<char>(bytes[at + i] ^ 0x5a);
    ++copies;
  }
  write_file(file, bytes);
  return copies;
}

bool mentions(const status& st, const std::string& what) {
  return st.message().find(what) != std::string::npos;
}

struct damaged_journal {
  std::string marker;
  std::vector<event_record> victim;    // the stream as written: seq 2 gets damaged
  std::vector<event_record> bystander; // an intact stream
  std::uint64_t bad_position = 0;
};

/// 256 random letters: unique in the file. The journal may store envelopes in a
/// framing (e.g. Cap'n Proto packing) that splits the first words of a payload, so the
/// test searches for a slice from the middle (`needle_of`).
std::string marker_payload(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> letter('a', 'z');
  std::string m(256, 'x');
  for (auto& c : m)
    c = static_cast<char>(letter(rng));
  return m;
}

std::string needle_of(const std::string& marker) { return marker.substr(96, 64); }

/// Writes victim and bystander events interleaved over several batches; the victim's
/// second event carries the marker payload.
damaged_journal write_journal(journal& j, std::uint64_t seed) {
  damaged_journal d;
  d.marker = marker_payload(seed);
  append_ok(j, {make_write("bystander", 0, {"b1", "b2"}), make_write("victim", 0, {"v1"})});
  append_ok(j, {make_write("victim", 1, {d.marker}), make_write("bystander", 2, {"b3"})});
  append_ok(j, {make_write("victim", 2, {"v3"}), make_write("bystander", 3, {"b4"})});
  d.victim = load_all(j, "victim");
  d.bystander = load_all(j, "bystander");
  REQUIRE(d.victim.size() == 3);
  d.bad_position = d.victim[1].position;
  return d;
}

} // namespace

TEST_CASE("corruption: a flipped payload byte is reported with stream and position") {
  temp_dir dir;
  STRATA_TEST_SEED(seed);
  auto o = journal_opts(dir.path(), 2);
  damaged_journal d;
  {
    auto j = open_journal(o);
    d = write_journal(*j, seed);
    STRATA_REQUIRE_OK(j->verify());
    STRATA_REQUIRE_OK(j->close());
  }
  REQUIRE(damage_all(dir.sub("data.mdb"), needle_of(d.marker)) >= 1);

  auto j = open_journal(o);
  const std::string pos = std::to_string(d.bad_position);
  INFO("damaged: stream 'victim' seq 2 at position " << pos);

  SUBCASE("load_stream") {
    auto r = j->load_stream("victim");
    REQUIRE(!r.has_value());
    INFO("error: " << r.error().to_string());
    CHECK(r.error().code() == errc::corrupt);
    CHECK(mentions(r.error(), "victim"));
    CHECK(mentions(r.error(), pos));
  }
  SUBCASE("read_stream visits only intact events before the damage") {
    std::vector<event_record> seen;
    auto st = j->read_stream("victim", 1, journal::max_seq, [&](const event_record& e) {
      seen.push_back(e);
      return true;
    });
    INFO("status: " << st.to_string());
    CHECK(st.code() == errc::corrupt);
    CHECK(mentions(st, "victim"));
    CHECK(mentions(st, pos));
    REQUIRE(seen.size() <= 1);
    if (!seen.empty()) CHECK(seen[0] == d.victim[0]);
    // Ranges that do not touch the damaged record still read.
    auto tail = j->load_stream("victim", 3);
    STRATA_REQUIRE_VALUE(tail);
    REQUIRE(tail->size() == 1);
    CHECK((*tail)[0] == d.victim[2]);
  }
  SUBCASE("read_stream_view") {
    std::size_t seen = 0;
    auto st = j->read_stream_view("victim", 1, journal::max_seq, [&](const event_view& v) {
      REQUIRE(seen < d.victim.size());
      CHECK(v.to_record() == d.victim[seen]);
      ++seen;
      return true;
    });
    INFO("status: " << st.to_string());
    CHECK(st.code() == errc::corrupt);
    CHECK(mentions(st, "victim"));
    CHECK(mentions(st, pos));
    CHECK(seen <= 1);
  }
  SUBCASE("read_global and read_global_raw") {
    std::vector<event_record> seen;
    auto st = j->read_global(1, ~std::size_t{0}, [&](const event_record& e) {
      seen.push_back(e);
      return true;
    });
    INFO("status: " << st.to_string());
    CHECK(st.code() == errc::corrupt);
    CHECK(mentions(st, pos));
    CHECK(mentions(st, "victim"));
    CHECK(seen.size() < d.bad_position);
    for (auto& e : seen) {
      CHECK(e.position < d.bad_position);
      CHECK(e.checksum == crc32c(e.payload));
      CHECK(e.payload != d.marker);
    }
    std::uint64_t raw_seen = 0;
    auto raw = j->read_global_raw(1, ~std::size_t{0}, [&](std::uint64_t p, std::string_view) {
      CHECK(p < d.bad_position);
      ++raw_seen;
      return true;
    });
    INFO("raw status: " << raw.to_string());
    CHECK(raw.code() == errc::corrupt);
    CHECK(mentions(raw, pos));
    CHECK(raw_seen < d.bad_position);
  }
  SUBCASE("verify names the damaged record") {
    auto st = j->verify();
    INFO("status: " << st.to_string());
    CHECK(st.code() == errc::corrupt);
    CHECK(mentions(st, "victim"));
    CHECK(mentions(st, pos));
  }
  SUBCASE("other streams and the head are unaffected") {
    CHECK(load_all(*j, "bystander") == d.bystander);
    auto h = j->highest_seq("victim");
    STRATA_REQUIRE_VALUE(h);
    CHECK(*h == 3);
  }
}

TEST_CASE("corruption: a damaged record in the un-indexed tail fails open, naming it") {
  temp_dir dir;
  STRATA_TEST_SEED(seed);
  auto o = journal_opts(dir.path(), 100'000); // nothing indexed before the "crash"
  std::string marker = marker_payload(seed);
  int code = run_in_child([&] {
    auto j = journal::open(o);
    if (!j) return 1;
    write_journal(**j, seed);
    ::_exit(0); // no close(): the index entries are only in the log
    return 0;
  });
  REQUIRE(code == 0);
  REQUIRE(damage_all(dir.sub("data.mdb"), needle_of(marker)) >= 1);

  // Either open refuses (the header's documented behaviour) or the damaged record is
  // reported when read; it must never be returned as an event.
  auto j = journal::open(o);
  if (!j.has_value()) {
    MESSAGE("open refused: " << j.error().to_string());
    CHECK(j.error().code() == errc::corrupt);
    // Positions are deterministic: bystander 1-2, victim 3, then the victim's seq 2 at 4.
    CHECK(mentions(j.error(), "4"));
  } else {
    auto r = (*j)->load_stream("victim");
    REQUIRE(!r.has_value());
    MESSAGE("open accepted the tail; load_stream: " << r.error().to_string());
    CHECK(r.error().code() == errc::corrupt);
    CHECK((*j)->verify().code() == errc::corrupt);
  }
}

TEST_CASE("corruption: a damaged snapshot is reported with stream and seq") {
  temp_dir dir;
  STRATA_TEST_SEED(seed);
  auto o = journal_opts(dir.path());
  const std::string marker = marker_payload(seed);
  {
    auto j = open_journal(o);
    append_ok(*j, {make_write("snapped", 0, {"e1", "e2", "e3"})});
    STRATA_REQUIRE_OK(j->snapshots().save({"snapped", 2, 5, "state", 1, "older-state", 0}));
    STRATA_REQUIRE_OK(j->snapshots().save({"snapped", 3, 6, "state", 1, marker, 0}));
    STRATA_REQUIRE_OK(j->close());
  }
  REQUIRE(damage_all(dir.sub("data.mdb"), needle_of(marker)) >= 1);
  auto j = open_journal(o);
  auto latest = j->snapshots().load_latest("snapped");
  REQUIRE(!latest.has_value());
  INFO("error: " << latest.error().to_string());
  CHECK(latest.error().code() == errc::corrupt);
  CHECK(mentions(latest.error(), "snapped"));
  CHECK(mentions(latest.error(), "3"));
  // The older snapshot is intact and still reachable.
  auto older = j->snapshots().load_at_or_before("snapped", 2);
  STRATA_REQUIRE_VALUE(older);
  REQUIRE(older->has_value());
  CHECK((*older)->payload == "older-state");
  // Events are unaffected.
  CHECK(load_all(*j, "snapped").size() == 3);
}

TEST_CASE("corruption: a data file that is not an LMDB environment is refused") {
  temp_dir dir;
  STRATA_TEST_SEED(seed);
  std::mt19937_64 rng(seed);
  write_file(dir.sub("data.mdb"), random_bytes(rng, 64 * 1024));
  auto j = journal::open(journal_opts(dir.path()));
  REQUIRE(!j.has_value());
  INFO("error: " << j.error().to_string());
  CHECK((j.error().code() == errc::incompatible || j.error().code() == errc::corrupt));
  CHECK(mentions(j.error(), dir.path()));
}

TEST_CASE("corruption: truncated envelopes decode to corrupt, never crash") {
  STRATA_TEST_SEED(seed);
  std::mt19937_64 rng(seed);
  for (std::size_t payload_size : {0u, 1u, 7u, 8u, 100u, 1000u}) {
    auto rec = sample_record(random_bytes(rng, payload_size));
    const std::string bytes = encode_envelope(rec);
    auto full = decode_envelope(bytes);
    STRATA_REQUIRE_VALUE(full);
    CHECK(*full == rec);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      auto r = decode_envelope(std::string_view(bytes).substr(0, n), "test-truncation");
      INFO("payload " << payload_size << " bytes, truncated to " << n << " of " << bytes.size());
      REQUIRE(!r.has_value());
      CHECK(r.error().code() == errc::corrupt);
      CHECK(mentions(r.error(), "test-truncation"));
    }
  }
}

TEST_CASE("corruption: random and bit-flipped envelopes never crash") {
  STRATA_TEST_SEED(seed);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::size_t> len(0, 512);
  for (int i = 0; i < 2000; ++i) {
    auto garbage = random_bytes(rng, len(rng));
    auto r = decode_envelope(garbage, "garbage");
    INFO("garbage of " << garbage.size() << " bytes, iteration " << i);
    REQUIRE(!r.has_value());
    CHECK(r.error().code() == errc::corrupt);
  }
  // Every single-bit flip of a valid envelope: flips inside the payload must be caught
  // by the checksum; others may decode to a different record but must not crash.
  auto rec = sample_record("payload-bytes-under-the-checksum-0123456789");
  const std::string bytes = encode_envelope(rec);
  const auto payload_at = bytes.find(rec.payload);
  REQUIRE(payload_at != std::string::npos);
  int decoded = 0;
  for (std::size_t bit = 0; bit < bytes.size() * 8; ++bit) {
    std::string b = bytes;
    b[bit / 8] = static_cast<char>(b[bit / 8] ^ (1 << (bit % 8)));
    auto r = decode_envelope(b, "flip");
    const bool in_payload = bit / 8 >= payload_at && bit / 8 < payload_at + rec.payload.size();
    if (in_payload) {
      INFO("flipped bit " << bit << " inside the payload");
      CHECK(!r.has_value());
    }
    if (r.has_value()) {
      ++decoded;
      CHECK(r->checksum == crc32c(r->payload)); // never returns an unchecked payload
    }
  }
  MESSAGE(decoded << " of " << bytes.size() * 8 << " bit flips still decoded");
}
