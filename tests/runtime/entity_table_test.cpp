// tests runtime/src/entity_table.hpp: the directory shard's flat id → value table
// agrees with std::unordered_map over random inserts and erases (erase shifts runs back,
// the part that can go wrong).
#include "../../runtime/src/entity_table.hpp"

#include <doctest/doctest.h>

#include <rapidcheck.h>

#include <string>
#include <unordered_map>
#include <vector>

using strata::detail::entity_table;

TEST_CASE("entity_table: insert, find, erase") {
  entity_table<int> t;
  auto h = entity_table<int>::hash("acct-1");
  CHECK(h != 0);
  CHECK(t.find(h, "acct-1") == nullptr);
  t.insert(h, "acct-1") = 7;
  REQUIRE(t.find(h, "acct-1") != nullptr);
  CHECK(*t.find(h, "acct-1") == 7);
  CHECK(t.size() == 1);
  t.erase(h, "acct-1");
  CHECK(t.find(h, "acct-1") == nullptr);
  CHECK(t.size() == 0);
}

TEST_CASE("entity_table: colliding hashes are told apart by the id") {
  entity_table<int> t;
  // The same hash for every id: one probe run, erased from the middle.
  for (int i = 0; i < 20; ++i)
    t.insert(5, "id-" + std::to_string(i)) = i;
  for (int i = 0; i < 20; i += 3)
    t.erase(5, "id-" + std::to_string(i));
  for (int i = 0; i < 20; ++i) {
    auto* v = t.find(5, "id-" + std::to_string(i));
    if (i % 3 == 0) {
      CHECK(v == nullptr);
    } else {
      REQUIRE(v != nullptr);
      CHECK(*v == i);
    }
  }
}

TEST_CASE("entity_table: agrees with unordered_map over random operations (property)") {
  auto ok = rc::check("table == model", [] {
    // Few ids and a few hash values, so runs collide, wrap around and shift back.
    auto ops = *rc::gen::container<std::vector<std::pair<int, bool>>>(
      rc::gen::pair(rc::gen::inRange(0, 200), rc::gen::arbitrary<bool>()));
    auto hash_bits = *rc::gen::inRange(1, 12);
    entity_table<int> t;
    std::unordered_map<std::string, int> model;
    int stamp = 0;
    for (auto [k, add] : ops) {
      auto id = "e" + std::to_string(k);
      auto h = (entity_table<int>::hash(id) & ((1ull << hash_bits) - 1)) | 1;
      if (add) {
        if (auto* v = t.find(h, id))
          *v = ++stamp;
        else
          t.insert(h, id) = ++stamp;
        model[id] = stamp;
      } else {
        t.erase(h, id);
        model.erase(id);
      }
    }
    RC_ASSERT(t.size() == model.size());
    for (int k = 0; k < 200; ++k) {
      auto id = "e" + std::to_string(k);
      auto h = (entity_table<int>::hash(id) & ((1ull << hash_bits) - 1)) | 1;
      auto* v = t.find(h, id);
      auto it = model.find(id);
      RC_ASSERT((v == nullptr) == (it == model.end()));
      if (v != nullptr) RC_ASSERT(*v == it->second);
    }
    std::size_t seen = 0;
    t.for_each([&](const std::string& id, int& v) {
      ++seen;
      RC_ASSERT(model.count(id) == 1);
      RC_ASSERT(model.at(id) == v);
    });
    RC_ASSERT(seen == model.size());
  });
  CHECK(ok);
}
