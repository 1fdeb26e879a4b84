#include "report_projection.hpp"

#include "bank/schema/bank.capnp.h"
#include "strata/persistence/journal.hpp"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>
#include <vector>

namespace bank {

namespace sp = strata::persistence;

namespace {

// Rows of table "bank.report": "a<account id>" → totals, "t" → the total.
constexpr std::size_t row_bytes = 8 * 5 + 1;

std::string encode_row(const account_totals& t) {
  std::string out(row_bytes, '\0');
  std::int64_t f[5] = {t.deposited_cents, t.withdrawn_cents, static_cast<std::int64_t>(t.deposits),
                       static_cast<std::int64_t>(t.withdrawals),
                       static_cast<std::int64_t>(t.last_seq)};
  std::memcpy(out.data(), f, sizeof(f));
  out[40] = static_cast<char>((t.opened ? 1 : 0) | (t.closed ? 2 : 0));
  return out;
}

sp::result<account_totals> decode_row(std::string_view v) {
  if (v.size() != row_bytes)
    return sp::status{sp::errc::corrupt, "bank.report: a row of " + std::to_string(v.size()) +
                                           " bytes; rebuild the report"};
  std::int64_t f[5];
  std::memcpy(f, v.data(), sizeof(f));
  account_totals t;
  t.deposited_cents = f[0];
  t.withdrawn_cents = f[1];
  t.deposits = static_cast<std::uint64_t>(f[2]);
  t.withdrawals = static_cast<std::uint64_t>(f[3]);
  t.last_seq = static_cast<std::uint64_t>(f[4]);
  t.opened = (v[40] & 1) != 0;
  t.closed = (v[40] & 2) != 0;
  return t;
}

template <class Fn>
sp::status with_root(std::string_view payload, Fn&& fn) {
  if (payload.size() % sizeof(capnp::word) != 0 || payload.empty())
    return {sp::errc::corrupt, "payload is not a whole number of Cap'n Proto words"};
  std::vector<capnp::word> words(payload.size() / sizeof(capnp::word));
  std::memcpy(words.data(), payload.data(), payload.size());
  try {
    capnp::FlatArrayMessageReader r(kj::arrayPtr(words.data(), words.size()));
    fn(r);
  } catch (const kj::Exception& e) {
    return {sp::errc::corrupt,
            std::string{"payload does not decode: "} + e.getDescription().cStr()};
  }
  return {};
}

} // namespace

sp::status fold_event(account_totals& out, const sp::event_record& e) {
  account_totals t = out; // changed only when the event folds in completely
  auto where = [&] {
    return " (stream " + e.persistence_id + " seq " + std::to_string(e.seq) + ")";
  };
  if (e.schema_version != 1)
    return {sp::errc::invalid_argument, "bank.report: event '" + e.type + "' schema version " +
                                          std::to_string(e.schema_version) + " is unknown" +
                                          where()};
  sp::status st;
  if (e.type == "opened") {
    st = with_root(e.payload, [](capnp::MessageReader& r) {
      r.getRoot<schema::Opened>();
    });
    t.opened = true;
  } else if (e.type == "deposited") {
    std::int64_t cents = 0;
    st = with_root(e.payload, [&](capnp::MessageReader& r) {
      cents = r.getRoot<schema::Deposited>().getCents();
    });
    t.deposited_cents += cents;
    ++t.deposits;
  } else if (e.type == "withdrawn") {
    std::int64_t cents = 0;
    st = with_root(e.payload, [&](capnp::MessageReader& r) {
      cents = r.getRoot<schema::Withdrawn>().getCents();
    });
    t.withdrawn_cents += cents;
    ++t.withdrawals;
  } else if (e.type == "closed") {
    t.closed = true;
  } else {
    return {sp::errc::invalid_argument,
            "bank.report: unknown event type '" + e.type + "'" + where()};
  }
  if (!st.ok()) return {st.code(), "bank.report: " + st.message() + where()};
  t.last_seq = e.seq;
  out = t;
  return {};
}

sp::result<std::unique_ptr<report_projection>> report_projection::open(sp::journal& j) {
  auto t = j.env().open_table(name);
  if (!t) return t.error();
  return std::unique_ptr<report_projection>{new report_projection(j, *t)};
}

sp::projection report_projection::projection() const {
  sp::table t = table_;
  return sp::projection{name, [t](sp::write_txn& txn, const sp::event_record& e) -> sp::status {
                          std::string_view pid = e.persistence_id;
                          if (pid.substr(0, account_stream_prefix.size()) != account_stream_prefix)
                            return {}; // another aggregate type
                          std::string key =
                            "a" + std::string{pid.substr(account_stream_prefix.size())};
                          account_totals acc, total;
                          auto cur = txn.get(t, key);
                          if (!cur) return cur.error();
                          if (*cur) {
                            auto r = decode_row(**cur);
                            if (!r) return r.error();
                            acc = *r;
                          }
                          auto tot = txn.get(t, "t");
                          if (!tot) return tot.error();
                          if (*tot) {
                            auto r = decode_row(**tot);
                            if (!r) return r.error();
                            total = *r;
                          }
                          account_totals before = acc;
                          if (auto st = fold_event(acc, e); !st.ok()) return st;
                          total.deposited_cents += acc.deposited_cents - before.deposited_cents;
                          total.withdrawn_cents += acc.withdrawn_cents - before.withdrawn_cents;
                          total.deposits += acc.deposits - before.deposits;
                          total.withdrawals += acc.withdrawals - before.withdrawals;
                          if (auto st = txn.put(t, key, encode_row(acc)); !st.ok()) return st;
                          return txn.put(t, "t", encode_row(total));
                        }};
}

sp::result<report> report_projection::read() const {
  report out;
  sp::status problem;
  auto st = journal_->env().read([&](sp::read_txn& txn) {
    return txn.scan(table_, {}, [&](std::string_view k, std::string_view v) {
      auto r = decode_row(v);
      if (!r) {
        problem = r.error();
        return false;
      }
      if (k == "t")
        out.total = *r;
      else if (!k.empty() && k[0] == 'a')
        out.accounts[std::string{k.substr(1)}] = *r;
      return true;
    });
  });
  if (!st.ok()) return st;
  if (!problem.ok()) return problem;
  return out;
}

} // namespace bank
