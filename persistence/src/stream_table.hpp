// Internal: an open-addressing hash table from persistence id to the writer's
// per-stream state. The journal looks up one stream per stream_write of every batch,
// so this is on the append hot path: slots hold the hash and a pointer (one cache line
// per probe), and the state itself is allocated once per stream.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace strata::persistence::detail {

/// 64-bit FNV-1a folded through a multiplicative mixer: cheap for short ids.
inline std::uint64_t hash_id(std::string_view s) noexcept {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  h ^= h >> 32;
  h *= 0x9E3779B97F4A7C15ull;
  return h ^ (h >> 29);
}

/// Maps a key (std::string_view) to a T owned by the table. T must have a `pid` member
/// (std::string) that holds the key. Not thread-safe: the journal guards it.
template <class T>
class stream_table {
 public:
  T* find(std::string_view key) const noexcept { return find(key, hash_id(key)); }

  /// find() with the key's hash_id computed by the caller.
  T* find(std::string_view key, std::uint64_t h) const noexcept {
    if (slots_.empty()) return nullptr;
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      auto& s = slots_[i];
      if (!s.item) return nullptr;
      if (s.hash == h && s.item->pid == key) return s.item;
    }
  }

  /// Hints the CPU to load the slot of hash `h` (and, once that is loaded, its item):
  /// the append path calls this for a whole batch before its lookups, so their cache
  /// misses overlap instead of adding up.
  void prefetch_slot(std::uint64_t h) const noexcept {
    if (!slots_.empty()) __builtin_prefetch(&slots_[h & mask_]);
  }
  void prefetch_item(std::uint64_t h) const noexcept {
    if (!slots_.empty())
      if (T* item = slots_[h & mask_].item) __builtin_prefetch(item);
  }

  /// Inserts a new T for `key` (which must not be present) and returns it.
  T& insert(std::string_view key) {
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();
    auto item = std::make_unique<T>();
    item->pid = std::string(key);
    T* raw = item.get();
    owned_.push_back(std::move(item));
    place(hash_id(key), raw);
    ++size_;
    return *raw;
  }

  std::size_t size() const noexcept { return size_; }

  void clear() {
    slots_.clear();
    owned_.clear();
    size_ = 0;
    mask_ = 0;
  }

  /// Removes every item for which `pred(item)` is true (pointers to the others stay
  /// valid).
  template <class Pred>
  void erase_if(Pred&& pred) {
    std::vector<std::unique_ptr<T>> keep;
    keep.reserve(owned_.size());
    for (auto& p : owned_)
      if (!pred(*p)) keep.push_back(std::move(p));
    clear();
    for (auto& p : keep) {
      if ((size_ + 1) * 4 > slots_.size() * 3) grow();
      place(hash_id(p->pid), p.get());
      ++size_;
    }
    owned_ = std::move(keep);
  }

  /// Visits every item.
  template <class F>
  void for_each(F&& f) const {
    for (auto& p : owned_)
      f(*p);
  }

 private:
  struct slot {
    std::uint64_t hash = 0;
    T* item = nullptr;
  };

  void place(std::uint64_t h, T* item) noexcept {
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_)
      if (!slots_[i].item) {
        slots_[i] = {h, item};
        return;
      }
  }

  void grow() {
    std::size_t cap = slots_.empty() ? 1024 : slots_.size() * 2;
    std::vector<slot> old;
    old.swap(slots_);
    slots_.assign(cap, slot{});
    mask_ = cap - 1;
    for (auto& s : old)
      if (s.item) place(s.hash, s.item);
  }

  std::vector<slot> slots_;
  std::vector<std::unique_ptr<T>> owned_;
  std::size_t size_ = 0;
  std::size_t mask_ = 0;
};

} // namespace strata::persistence::detail
