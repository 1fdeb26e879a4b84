// File: strata/runtime/detail/envelope.hpp (internal)
//
// A command on its way to an entity, with its completion. The envelope is
// reference-counted; when the last reference is dropped before it was completed (the
// message was dropped because the entity stopped, or the entity died), it goes back to
// its region, which delivers it again (to a new incarnation) or fails it. So every
// `ask_async` callback runs exactly once.
#pragma once

#include "strata/runtime/errors.hpp"

#include <caf/expected.hpp>
#include <caf/intrusive_ptr.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

namespace strata::detail {

class region;

class envelope_base {
 public:
  virtual ~envelope_base() = default;

  /// Completes with an error. Call at most once (precondition: !completed()).
  virtual void fail(caf::error err) = 0;

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

template <class A>
class command_envelope final : public envelope_base {
 public:
  using reply = typename A::reply;
  using callback = std::function<void(caf::expected<reply>)>;

  command_envelope(typename A::command c, callback cb) : cmd(std::move(c)), done_(std::move(cb)) {}

  /// Completes with `r`. Precondition: !completed().
  void deliver(caf::expected<reply> r) {
    completed_ = true;
    if (done_) {
      auto f = std::move(done_);
      f(std::move(r));
    }
  }

  void fail(caf::error err) override { deliver(caf::expected<reply>{std::move(err)}); }

  typename A::command cmd;

 private:
  callback done_;
};

template <class A>
envelope_ptr make_envelope(typename A::command cmd, typename command_envelope<A>::callback done) {
  return envelope_ptr{new command_envelope<A>(std::move(cmd), std::move(done))};
}

} // namespace strata::detail
