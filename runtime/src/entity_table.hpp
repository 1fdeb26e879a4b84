// File: runtime/src/entity_table.hpp (private to the runtime)
//
// One directory shard's map entity id → V: open addressing with linear probing, the id
// and the value stored inline in the slot with the id's 64-bit hash. A lookup reads one
// slot (usually one cache line, two at most) instead of std::unordered_map's bucket,
// the node before and the node itself; erase shifts the following run back (no
// tombstones), so probe runs stay short. Pointers to values are valid until the next
// insert or erase.
//
//   entity_table<int> t;
//   auto h = entity_table<int>::hash("acct-1");
//   t.insert(h, "acct-1") = 7;       // precondition: not present
//   if (int* v = t.find(h, "acct-1")) ...
//   t.erase(h, "acct-1");
//
// Threads: none of its own; the region guards each table with its shard's mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace strata::detail {

template <class V>
class entity_table {
 public:
  /// FNV-1a with a final mix: never 0 (0 marks an empty slot). The region takes the
  /// shard from the high bits and the slot from the low bits of the same hash.
  static std::uint64_t hash(const std::string& id) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (char c : id) {
      h ^= static_cast<unsigned char>(c);
      h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h | 1;
  }

  std::size_t size() const noexcept { return size_; }

  /// The value of `id` (`h` = hash(id)), or null.
  V* find(std::uint64_t h, const std::string& id) noexcept {
    auto i = index_of(h, id);
    return i == npos ? nullptr : &slots_[i].value;
  }

  /// Adds `id` with a default value and returns it. Precondition: `id` is not present.
  V& insert(std::uint64_t h, const std::string& id) {
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();
    auto i = h & mask_;
    while (slots_[i].h != 0)
      i = (i + 1) & mask_;
    slots_[i].h = h;
    slots_[i].id = id;
    ++size_;
    return slots_[i].value;
  }

  /// Removes `id` if present.
  void erase(std::uint64_t h, const std::string& id) {
    auto i = index_of(h, id);
    if (i == npos) return;
    // Backward shift: move each later slot of the run into the hole when its home
    // position does not lie cyclically in (hole, slot].
    for (auto j = (i + 1) & mask_; slots_[j].h != 0; j = (j + 1) & mask_) {
      auto home = slots_[j].h & mask_;
      bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (stays) continue;
      slots_[i] = std::move(slots_[j]);
      i = j;
    }
    slots_[i] = slot{};
    --size_;
  }

  /// Calls f(const std::string& id, V& value) for every entry.
  template <class F>
  void for_each(F&& f) {
    for (auto& s : slots_)
      if (s.h != 0) f(s.id, s.value);
  }

 private:
  struct slot {
    std::uint64_t h = 0; ///< 0: empty
    std::string id;
    V value{};
  };

  static constexpr std::size_t npos = ~std::size_t{0};

  std::size_t index_of(std::uint64_t h, const std::string& id) const noexcept {
    if (size_ == 0) return npos;
    for (auto i = h & mask_;; i = (i + 1) & mask_) {
      const auto& s = slots_[i];
      if (s.h == 0) return npos;
      if (s.h == h && s.id == id) return i;
    }
  }

  void grow() {
    std::vector<slot> old;
    old.swap(slots_);
    slots_.resize(old.empty() ? 16 : old.size() * 2);
    mask_ = slots_.size() - 1;
    for (auto& s : old) {
      if (s.h == 0) continue;
      auto i = s.h & mask_;
      while (slots_[i].h != 0)
        i = (i + 1) & mask_;
      slots_[i] = std::move(s);
    }
  }

  std::vector<slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

} // namespace strata::detail
