// File: strata/runtime/detail/envelope.hpp (internal)
//
// A command on its way to an entity, with its completion: one allocation holds the
// command, the reply slot and the caller's callback (no std::function per command).
// The envelope is reference-counted; when the last reference is dropped before it was
// completed (the message was dropped because the entity stopped, or the entity died),
// it goes back to its region, which delivers it again (to a new incarnation) or fails
// it. So every `ask_async` callback runs exactly once.
#pragma once

#include "strata/runtime/errors.hpp"

#include <caf/expected.hpp>
#include <caf/intrusive_ptr.hpp>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace strata::detail {

class region;

class envelope_base {
 public:
  virtual ~envelope_base() = default;

  /// Completes with an error. Call at most once (precondition: !completed()).
  virtual void fail(caf::error err) = 0;
  /// Completes with the reply the entity set (command_envelope::reply). Precondition:
  /// !completed() and a reply was set.
  virtual void complete() = 0;

  bool completed() const noexcept { return completed_; }

  std::string entity_id;  ///< set by region::dispatch
  region* home = nullptr; ///< set by region::dispatch; outlives every envelope
  std::uint8_t attempts = 0;

  friend void intrusive_ptr_add_ref(envelope_base* p) noexcept {
    p->rc_.fetch_add(1, std::memory_order_relaxed);
  }
  /// Defined in region.cpp: deletes a completed envelope, or redelivers it.
  friend void intrusive_ptr_release(envelope_base* p) noexcept;

 protected:
  bool completed_ = false;

 private:
  friend class region;
  std::atomic<std::uint32_t> rc_{0};
};

using envelope_ptr = caf::intrusive_ptr<envelope_base>;

/// A command of aggregate A and the slot its reply waits in until it may be sent.
template <class A>
class command_envelope : public envelope_base {
 public:
  explicit command_envelope(typename A::command c) : cmd(std::move(c)) {}

  typename A::command cmd;
  std::optional<typename A::reply> reply;
};

/// The callback of `tell`: none.
struct no_callback {
  template <class T>
  void operator()(T&&) const noexcept {}
};

template <class A, class F>
class callback_envelope final : public command_envelope<A> {
 public:
  using result_type = caf::expected<typename A::reply>;

  callback_envelope(typename A::command c, F done)
    : command_envelope<A>(std::move(c)), done_(std::move(done)) {}

  void fail(caf::error err) override { finish(result_type{std::move(err)}); }
  void complete() override { finish(result_type{std::move(*this->reply)}); }

 private:
  void finish(result_type r) {
    this->completed_ = true;
    if constexpr (std::is_constructible_v<bool, const F&>)
      if (!static_cast<bool>(done_)) return; // an empty std::function
    done_(std::move(r));
  }
  F done_;
};

/// The envelope of `cmd`; `done(caf::expected<reply>)` runs once on completion.
template <class A, class F>
envelope_ptr make_envelope(typename A::command cmd, F done) {
  return envelope_ptr{new callback_envelope<A, F>(std::move(cmd), std::move(done))};
}

} // namespace strata::detail
