// The account aggregate's mapping to bank.capnp: events and the snapshot state.
#include "bank/account.hpp"

#include "bank/schema/bank.capnp.h"
#include "strata/runtime/capnp_bytes.hpp"
#include "strata/runtime/overload.hpp"

#include <capnp/message.h>

namespace bank {

namespace {
constexpr std::uint32_t events_version = 1;
constexpr std::uint32_t state_version = 1;

std::string text_of(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }
} // namespace

strata::event_bytes account::encode(const event& e) {
  capnp::MallocMessageBuilder mb;
  std::visit(strata::overload{
               [&](const opened& x) {
                 mb.initRoot<schema::Opened>().setOwner(
                   capnp::Text::Reader(x.owner.data(), x.owner.size()));
               },
               [&](const deposited& x) {
                 mb.initRoot<schema::Deposited>().setCents(x.cents);
               },
               [&](const withdrawn& x) {
                 mb.initRoot<schema::Withdrawn>().setCents(x.cents);
               },
               [&](const closed&) {
                 mb.initRoot<schema::Closed>();
               },
             },
             e);
  return {event_type_name(e), events_version, strata::capnp_to_bytes(mb)};
}

std::optional<account::event> account::decode(std::string_view type, std::uint32_t version,
                                              std::string_view payload) {
  if (version != events_version) return std::nullopt;
  strata::capnp_reader r{payload};
  if (type == "opened") return event{opened{text_of(r.root<schema::Opened>().getOwner())}};
  if (type == "deposited") return event{deposited{r.root<schema::Deposited>().getCents()}};
  if (type == "withdrawn") return event{withdrawn{r.root<schema::Withdrawn>().getCents()}};
  if (type == "closed") {
    r.root<schema::Closed>(); // validates the framing
    return event{closed{}};
  }
  return std::nullopt;
}

strata::state_bytes account::encode_state(const state& s) {
  capnp::MallocMessageBuilder mb;
  auto b = mb.initRoot<schema::AccountState>();
  b.setOpen(s.open);
  b.setClosed(s.closed);
  b.setOwner(capnp::Text::Reader(s.owner.data(), s.owner.size()));
  b.setBalance(s.balance);
  b.setSeq(s.seq);
  return {state_version, strata::capnp_to_bytes(mb)};
}

std::optional<account::state> account::decode_state(std::uint32_t version,
                                                    std::string_view payload) {
  if (version != state_version) return std::nullopt;
  strata::capnp_reader r{payload};
  auto x = r.root<schema::AccountState>();
  state s;
  s.open = x.getOpen();
  s.closed = x.getClosed();
  s.owner = text_of(x.getOwner());
  s.balance = x.getBalance();
  s.seq = x.getSeq();
  return s;
}

} // namespace bank
