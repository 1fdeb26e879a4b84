#include "strata/persistence/environment.hpp"

#include "lmdb_util.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <system_error>

namespace strata::persistence {

namespace detail {

status from_mdb(int rc, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += mdb_strerror(rc);
  switch (rc) {
    case 0: return {};
    case MDB_MAP_FULL:
      return {errc::map_full, msg + " (the LMDB map is full; raise map_size_max_bytes)"};
    case MDB_TXN_FULL:
      return {errc::txn_full, msg + " (too many changes in one transaction; use smaller batches)"};
    case MDB_READERS_FULL:
      return {errc::readers_full, msg + " (too many concurrent readers; raise max_readers)"};
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
      return {errc::corrupt, msg + " (the LMDB file is damaged; restore from a backup)"};
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
      return {errc::incompatible,
              msg + " (not an LMDB environment of a compatible version; check the path)"};
    case MDB_NOTFOUND: return {errc::not_found, msg};
    case MDB_BAD_VALSIZE:
    case MDB_DBS_FULL:
    case EINVAL: return {errc::invalid_argument, msg};
    case EACCES:
    case EROFS: return {errc::io_error, msg + " (check the permissions of the data directory)"};
    case ENOSPC: return {errc::io_error, msg + " (the disk is full; free space and retry)"};
    default: return {errc::io_error, msg};
  }
}

} // namespace detail

using detail::from_mdb;

std::optional<sync_mode> parse_sync_mode(std::string_view text) noexcept {
  if (text == "sync") return sync_mode::sync;
  if (text == "nosync") return sync_mode::nosync;
  return std::nullopt;
}

const char* to_string(sync_mode m) noexcept { return m == sync_mode::sync ? "sync" : "nosync"; }

// ---- transactions -------------------------------------------------------------------

result<std::optional<std::string_view>> read_txn::get(table t, std::string_view key) const {
  MDB_val k = detail::to_val(key), v;
  int rc = mdb_get(txn_, t.dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string_view>{};
  if (rc != 0) return from_mdb(rc, "reading a key");
  return std::optional<std::string_view>{detail::to_view(v)};
}

status read_txn::scan(table t, std::string_view from,
                      const std::function<bool(std::string_view, std::string_view)>& fn) const {
  status st;
  detail::cursor c(txn_, t.dbi, st);
  if (!c) return st;
  MDB_val k = detail::to_val(from), v;
  int rc = from.empty() ? c.get(k, v, MDB_FIRST) : c.get(k, v, MDB_SET_RANGE);
  while (rc == 0) {
    if (!fn(detail::to_view(k), detail::to_view(v))) return {};
    rc = c.get(k, v, MDB_NEXT);
  }
  if (rc != MDB_NOTFOUND) return from_mdb(rc, "scanning a table");
  return {};
}

result<std::optional<std::pair<std::string_view, std::string_view>>> read_txn::last(table t) const {
  using opt = std::optional<std::pair<std::string_view, std::string_view>>;
  status st;
  detail::cursor c(txn_, t.dbi, st);
  if (!c) return st;
  MDB_val k, v;
  int rc = c.get(k, v, MDB_LAST);
  if (rc == MDB_NOTFOUND) return opt{};
  if (rc != 0) return from_mdb(rc, "reading the last key of a table");
  return opt{std::make_pair(detail::to_view(k), detail::to_view(v))};
}

status write_txn::put(table t, std::string_view key, std::string_view value) {
  MDB_val k = detail::to_val(key), v = detail::to_val(value);
  if (int rc = mdb_put(txn_, t.dbi, &k, &v, 0); rc != 0) return from_mdb(rc, "writing a key");
  return {};
}

status write_txn::del(table t, std::string_view key) {
  MDB_val k = detail::to_val(key);
  int rc = mdb_del(txn_, t.dbi, &k, nullptr);
  if (rc != 0 && rc != MDB_NOTFOUND) return from_mdb(rc, "deleting a key");
  return {};
}

// ---- environment --------------------------------------------------------------------

struct environment::impl {
  env_options opts;
  MDB_env* env = nullptr;
  // Every transaction of this process holds `txns` shared; growing the map takes it
  // unique, because mdb_env_set_mapsize requires that no transaction is open.
  mutable std::shared_mutex txns;
  std::size_t map_size = 0; // guarded by txns (unique to write, shared to read)
  std::mutex tables_mu;
  std::map<std::string, unsigned, std::less<>> tables;

  ~impl() {
    if (env) mdb_env_close(env);
  }

  /// Grows the map (no transaction may be open in this thread). Returns map_full when
  /// the maximum is reached.
  status grow() {
    std::unique_lock lk(txns);
    if (map_size >= opts.map_size_max_bytes)
      return {errc::map_full, "the LMDB map in '" + opts.path + "' reached its maximum of " +
                                std::to_string(opts.map_size_max_bytes) +
                                " bytes; raise map_size_max_bytes or free space"};
    std::size_t next = std::min(opts.map_size_max_bytes, std::max(map_size * 2, map_size + 1));
    if (int rc = mdb_env_set_mapsize(env, next); rc != 0)
      return from_mdb(rc, "growing the LMDB map of '" + opts.path + "'");
    map_size = next;
    return {};
  }

  /// Another process grew the map: adopt its size.
  status adopt_resize() {
    std::unique_lock lk(txns);
    if (int rc = mdb_env_set_mapsize(env, 0); rc != 0)
      return from_mdb(rc, "adopting a grown LMDB map");
    MDB_envinfo info;
    mdb_env_info(env, &info);
    map_size = info.me_mapsize;
    return {};
  }
};

environment::environment(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
environment::~environment() = default;

result<std::unique_ptr<environment>> environment::open(const env_options& opts) {
  if (opts.path.empty())
    return status{errc::invalid_argument, "environment path is empty; set the data directory"};
  if (opts.map_size_bytes == 0 || opts.map_size_max_bytes < opts.map_size_bytes)
    return status{errc::invalid_argument, "map_size_bytes must be > 0 and <= map_size_max_bytes"};
  std::error_code ec;
  if (opts.read_only) {
    if (!std::filesystem::exists(opts.path + "/data.mdb", ec))
      return status{errc::not_found,
                    "no journal in '" + opts.path + "' (no data.mdb); check the data directory"};
  } else {
    std::filesystem::create_directories(opts.path, ec);
  }
  if (!std::filesystem::is_directory(opts.path, ec))
    return status{errc::io_error, "data directory '" + opts.path +
                                    "' does not exist and cannot be created" +
                                    (ec ? " (" + ec.message() + ")" : std::string{}) +
                                    "; check the path and its permissions"};
  auto p = std::make_unique<impl>();
  p->opts = opts;
  auto fail = [&](int rc, const char* what) {
    return from_mdb(rc, std::string(what) + " '" + opts.path + "'");
  };
  if (int rc = mdb_env_create(&p->env); rc != 0)
    return fail(rc, "creating the LMDB environment for");
  if (int rc = mdb_env_set_maxreaders(p->env, opts.max_readers); rc != 0)
    return fail(rc, "setting max readers of");
  if (int rc = mdb_env_set_maxdbs(p->env, opts.max_tables); rc != 0)
    return fail(rc, "setting max tables of");
  if (int rc = mdb_env_set_mapsize(p->env, opts.map_size_bytes); rc != 0)
    return fail(rc, "setting the map size of");
  unsigned flags = MDB_NOTLS;
  if (opts.sync == sync_mode::nosync) flags |= MDB_NOSYNC;
  if (opts.read_only) flags |= MDB_RDONLY;
  if (int rc = mdb_env_open(p->env, opts.path.c_str(), flags, 0644); rc != 0) {
    auto st = fail(rc, "opening the LMDB environment in");
    mdb_env_close(p->env);
    p->env = nullptr;
    return st;
  }
  int dead = 0;
  mdb_reader_check(p->env, &dead); // clear slots of crashed processes
  MDB_envinfo info;
  mdb_env_info(p->env, &info);
  p->map_size = info.me_mapsize; // an existing file may be larger than requested
  return std::unique_ptr<environment>(new environment(std::move(p)));
}

result<table> environment::open_table(std::string_view name) {
  std::lock_guard lk(impl_->tables_mu);
  if (auto i = impl_->tables.find(name); i != impl_->tables.end()) return table{i->second};
  std::string n(name);
  unsigned dbi = 0;
  if (impl_->opts.read_only) {
    auto st = open_table_read_only(n, dbi);
    if (!st.ok()) return st;
    impl_->tables.emplace(n, dbi);
    return table{dbi};
  }
  auto st = write([&](write_txn& txn) -> status {
    if (int rc = mdb_dbi_open(txn.native(), n.c_str(), MDB_CREATE, &dbi); rc != 0)
      return from_mdb(rc, "opening table '" + n + "'");
    return {};
  });
  if (!st.ok()) return st;
  impl_->tables.emplace(n, dbi);
  return table{dbi};
}

status environment::open_table_read_only(const std::string& name, unsigned& dbi) {
  for (int attempt = 0;; ++attempt) {
    {
      std::shared_lock lk(impl_->txns);
      MDB_txn* txn = nullptr;
      int rc = mdb_txn_begin(impl_->env, nullptr, MDB_RDONLY, &txn);
      if (rc == 0) {
        rc = mdb_dbi_open(txn, name.c_str(), 0, &dbi);
        if (rc != 0) {
          mdb_txn_abort(txn);
          if (rc == MDB_NOTFOUND)
            return {errc::not_found, "table '" + name + "' does not exist in '" + impl_->opts.path +
                                       "' (opened read-only)"};
          return from_mdb(rc, "opening table '" + name + "'");
        }
        // Committing a read-only transaction keeps the handle for the environment.
        if (rc = mdb_txn_commit(txn); rc != 0) return from_mdb(rc, "opening table '" + name + "'");
        return {};
      }
      if (rc != MDB_MAP_RESIZED)
        return from_mdb(rc, "beginning a read transaction in '" + impl_->opts.path + "'");
    }
    if (auto s = impl_->adopt_resize(); !s.ok()) return s;
    if (attempt > 64) return {errc::internal, "read transaction retried too often"};
  }
}

status environment::write(const std::function<status(write_txn&)>& fn) {
  if (impl_->opts.read_only)
    return {errc::invalid_argument, "cannot write to '" + impl_->opts.path + "': opened read-only"};
  for (int attempt = 0;; ++attempt) {
    status st;
    bool grow = false, resized = false;
    {
      std::shared_lock lk(impl_->txns);
      MDB_txn* txn = nullptr;
      int rc = mdb_txn_begin(impl_->env, nullptr, 0, &txn);
      if (rc == MDB_MAP_RESIZED) {
        resized = true;
      } else if (rc != 0) {
        return from_mdb(rc, "beginning a write transaction in '" + impl_->opts.path + "'");
      } else {
        write_txn w(txn);
        st = fn(w);
        if (!st.ok()) {
          mdb_txn_abort(txn);
          grow = st.code() == errc::map_full;
          if (!grow) return st;
        } else if (rc = mdb_txn_commit(txn); rc == MDB_MAP_FULL) {
          grow = true;
        } else if (rc != 0) {
          return from_mdb(rc, "committing to '" + impl_->opts.path + "'");
        } else {
          return {};
        }
      }
    }
    if (resized) {
      if (auto s = impl_->adopt_resize(); !s.ok()) return s;
    } else if (grow) {
      if (auto s = impl_->grow(); !s.ok()) return s;
    }
    if (attempt > 64)
      return {errc::internal, "write transaction retried too often in '" + impl_->opts.path + "'"};
  }
}

status environment::read(const std::function<status(read_txn&)>& fn) const {
  for (int attempt = 0;; ++attempt) {
    {
      std::shared_lock lk(impl_->txns);
      MDB_txn* txn = nullptr;
      int rc = mdb_txn_begin(impl_->env, nullptr, MDB_RDONLY, &txn);
      if (rc == 0) {
        read_txn r(txn);
        status st = fn(r);
        mdb_txn_abort(txn);
        return st;
      }
      if (rc != MDB_MAP_RESIZED)
        return from_mdb(rc, "beginning a read transaction in '" + impl_->opts.path + "'");
    }
    if (auto s = impl_->adopt_resize(); !s.ok()) return s;
    if (attempt > 64) return {errc::internal, "read transaction retried too often"};
  }
}

const env_options& environment::options() const noexcept { return impl_->opts; }

std::size_t environment::map_size_bytes() const noexcept {
  std::shared_lock lk(impl_->txns);
  return impl_->map_size;
}

status environment::sync() {
  if (int rc = mdb_env_sync(impl_->env, 1); rc != 0)
    return from_mdb(rc, "syncing '" + impl_->opts.path + "'");
  return {};
}

MDB_env* environment::native() const noexcept { return impl_->env; }

} // namespace strata::persistence
