// File: strata/persistence/fwd.hpp — forward declarations of strata::persistence.
#pragma once

namespace strata::persistence {
class status;
template <class T>
class result;
class environment;
class read_txn;
class write_txn;
struct table;
struct env_options;
class journal;
struct journal_options;
class snapshot_store;
class offset_store;
struct event_data;
struct stream_write;
struct event_record;
struct snapshot_record;
struct write_result;
} // namespace strata::persistence
