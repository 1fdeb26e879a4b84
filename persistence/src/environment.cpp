#include "strata/persistence/environment.hpp"

#include "data_dir.hpp"
#include "lmdb_util.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
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
    case EIO:
      // LMDB also reports a short write (a full disk) as EIO.
      return {errc::io_error, msg + " (the disk is full or failing; check free space and the"
                                    " system log, then retry)"};
    default: return {errc::io_error, msg};
  }
}

bool map_bounds::contains(MDB_txn* txn, const void* p, std::size_t n, bool value) noexcept {
  const auto b = begin.load(std::memory_order_acquire);
  if (b == 0 || n == 0) return true;
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  const auto len = length.load(std::memory_order_acquire);
  if (a < b || a - b >= len) return !value || (txn != nullptr && txn == write_txn.load());
  const std::size_t off = a - b;
  if (n > len - off) return false;
  if (off + n <= file_bytes.load(std::memory_order_relaxed)) return true;
  // A writer process may have grown the file since we last looked.
  struct stat sb;
  if (::fstat(fd, &sb) != 0) return false;
  file_bytes.store(static_cast<std::size_t>(sb.st_size), std::memory_order_relaxed);
  return off + n <= static_cast<std::size_t>(sb.st_size);
}

std::string map_bounds::table_name(unsigned dbi) const {
  std::lock_guard lk(names_mu);
  if (auto i = names.find(dbi); i != names.end()) return i->second;
  return dbi == 1 ? "(main)" : "#" + std::to_string(dbi);
}

namespace {

/// A key for a message: as text when printable, else hex; at most 64 bytes shown.
std::string show_key(const MDB_val& k) {
  auto v = to_view(k).substr(0, 64);
  bool text = !v.empty();
  for (unsigned char c : v)
    text = text && c >= 0x20 && c < 0x7f && c != '\'';
  if (text) return "'" + std::string(v) + "'" + (k.mv_size > 64 ? "…" : "");
  static const char* hex = "0123456789abcdef";
  std::string out = "0x";
  for (unsigned char c : v) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out + (k.mv_size > 64 ? "…" : "");
}

} // namespace

status check_pair(MDB_txn* txn, MDB_dbi dbi, const MDB_val& k, const MDB_val& v) {
  auto* b = bounds_of(txn);
  if (!b) return {};
  const bool key_ok = b->contains(txn, k.mv_data, k.mv_size, false);
  if (key_ok && b->contains(txn, v.mv_data, v.mv_size, true)) return {};
  std::string where = "table '" + b->table_name(dbi) + "'";
  where += key_ok ? " key " + show_key(k) : " (key of " + std::to_string(k.mv_size) + " bytes)";
  return {errc::corrupt,
          where + ": its " + (key_ok ? "value (" + std::to_string(v.mv_size) + " bytes)" : "key") +
            " lies outside data.mdb (" + std::to_string(b->file_bytes.load()) +
            " bytes): an LMDB node is damaged; restore the data directory from a backup"};
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
  if (auto s = detail::check_pair(txn_, t.dbi, k, v); !s.ok()) return s;
  return std::optional<std::string_view>{detail::to_view(v)};
}

status read_txn::scan(table t, std::string_view from,
                      const std::function<bool(std::string_view, std::string_view)>& fn) const {
  status st;
  detail::cursor c(txn_, t.dbi, st);
  if (!c) return st;
  detail::entry e;
  int rc = from.empty() ? c.first(e) : c.seek(from, e);
  while (rc == 0) {
    if (!fn(e.key, e.value)) return {};
    rc = c.next(e);
  }
  if (rc != MDB_NOTFOUND) return c.error(rc, "scanning a table");
  return {};
}

result<std::optional<std::pair<std::string_view, std::string_view>>> read_txn::last(table t) const {
  using opt = std::optional<std::pair<std::string_view, std::string_view>>;
  status st;
  detail::cursor c(txn_, t.dbi, st);
  if (!c) return st;
  detail::entry e;
  int rc = c.last(e);
  if (rc == MDB_NOTFOUND) return opt{};
  if (rc != 0) return c.error(rc, "reading the last key of a table");
  return opt{std::make_pair(e.key, e.value)};
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

// ---- fault guard -------------------------------------------------------------------

namespace {

/// The maps of the open environments, readable from a signal handler (lock-free).
struct guard_slot {
  std::atomic<std::uintptr_t> begin{0};
  std::atomic<std::size_t> length{0};
  char path[256] = {};
};
guard_slot guard_slots[64];
std::atomic<int> guard_exit_code{-1};

guard_slot* claim_slot(const std::string& dir) {
  for (auto& s : guard_slots) {
    std::uintptr_t expected = 0;
    // 1 marks a slot claimed but not yet located.
    if (s.begin.compare_exchange_strong(expected, 1)) {
      auto n = std::min(dir.size(), sizeof s.path - 10);
      std::memcpy(s.path, dir.data(), n);
      std::memcpy(s.path + n, "/data.mdb", 10);
      return &s;
    }
  }
  return nullptr; // more than 64 environments: the later ones are not guarded
}

void put_text(const char* text) { [[maybe_unused]] auto n = ::write(2, text, std::strlen(text)); }

void put_number(std::uintptr_t v) {
  char buf[24];
  int i = sizeof buf;
  do {
    buf[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && i > 0);
  [[maybe_unused]] auto n = ::write(2, buf + i, sizeof buf - static_cast<std::size_t>(i));
}

void on_fault(int sig, siginfo_t* info, void*) {
  const auto a = reinterpret_cast<std::uintptr_t>(info ? info->si_addr : nullptr);
  const int code = guard_exit_code.load();
  for (auto& s : guard_slots) {
    const auto b = s.begin.load();
    const auto len = s.length.load();
    if (b <= 1 || a < b || a - b >= len + (std::size_t{64} << 10)) continue;
    put_text("corrupt: '");
    put_text(s.path);
    put_text("' is damaged: a read at byte ");
    put_number(a - b);
    put_text(sig == SIGBUS ? " of its map faulted (SIGBUS)" : " of its map faulted (SIGSEGV)");
    put_text("; restore the data directory from a backup\n");
    ::_exit(code);
  }
  // Outside every map, but while a data directory is open (its map located or not yet:
  // 1, e.g. while the first read finds it): LMDB may have computed a pointer from a
  // damaged page (a node offset, a page number, a flag that makes it use a sub-cursor
  // it never made), so the likely cause is the file, not the program. Still end with
  // the guard's code rather than a signal, and say how to tell the two apart.
  if (code >= 0)
    for (auto& s : guard_slots) {
      if (s.begin.load() == 0) continue;
      put_text("corrupt: a read faulted (");
      put_text(sig == SIGBUS ? "SIGBUS" : "SIGSEGV");
      put_text(s.begin.load() == 1 ? ") while '" : ") outside the map while '");
      put_text(s.path);
      put_text("' was open: its pages are probably damaged; run `strata journal verify` on"
               " it and restore from a backup (if verify finds nothing, this is a bug in"
               " strata: please report it)\n");
      ::_exit(code);
    }
  // Not ours: the default action, when the instruction runs again.
  ::signal(sig, SIG_DFL);
}

} // namespace

namespace detail {

/// LMDB's own consistency assertions (mdb_assert, e.g. a page whose flags say branch
/// where a leaf must be) call this before they abort. With the fault guard installed,
/// a damaged page ends the process like any other damage the guard catches.
void on_lmdb_assert(MDB_env* env, const char* msg) {
  const int code = guard_exit_code.load();
  if (code < 0) return; // no guard: LMDB aborts, as it always did
  const char* path = nullptr;
  if (env != nullptr) mdb_env_get_path(env, &path);
  put_text("corrupt: '");
  put_text(path != nullptr ? path : "<unknown>");
  put_text("/data.mdb' is damaged: LMDB's consistency check failed (");
  put_text(msg != nullptr ? msg : "?");
  put_text("); restore the data directory from a backup\n");
  ::_exit(code);
}

} // namespace detail

void install_fault_guard(int exit_code) noexcept {
  guard_exit_code.store(exit_code);
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGBUS, &sa, nullptr);
  ::sigaction(SIGSEGV, &sa, nullptr);
}

struct environment::impl {
  env_options opts;
  detail::dir_lock lock; // a writer's lock; released after the environment is closed
  MDB_env* env = nullptr;
  detail::map_bounds bounds;
  // Every transaction of this process holds `txns` shared; growing the map takes it
  // unique, because mdb_env_set_mapsize requires that no transaction is open.
  mutable std::shared_mutex txns;
  std::size_t map_size = 0; // guarded by txns (unique to write, shared to read)
  std::mutex tables_mu;
  std::map<std::string, unsigned, std::less<>> tables;

  guard_slot* slot = nullptr; // this environment's map, for install_fault_guard

  ~impl() {
    if (slot) {
      slot->length.store(0);
      slot->begin.store(1);
    }
    if (env) mdb_env_close(env);
    if (slot) slot->begin.store(0);
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
    return locate_map();
  }

  /// Another process grew the map: adopt its size.
  status adopt_resize() {
    std::unique_lock lk(txns);
    if (int rc = mdb_env_set_mapsize(env, 0); rc != 0)
      return from_mdb(rc, "adopting a grown LMDB map");
    return locate_map();
  }

  status create_and_lock();
  status open_lmdb();
  status check_file_size();
  status locate_map();
};

namespace {

/// The mapping of /proc/self/maps that contains `p`: [begin, end), or {0, 0}.
std::pair<std::uintptr_t, std::uintptr_t> mapping_of(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  std::ifstream in("/proc/self/maps");
  for (std::string line; std::getline(in, line);) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) == 2 && lo <= a && a < hi) return {lo, hi};
  }
  return {0, 0};
}

} // namespace

status environment::impl::locate_map() {
  // Caller: no transaction of this process is open (open, or `txns` held unique).
  bounds.begin.store(0, std::memory_order_release);
  if (slot) slot->begin.store(1); // the old map is gone
  MDB_txn* txn = nullptr;
  int rc = 0;
  for (int i = 0; (rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn)) == MDB_MAP_RESIZED; ++i)
    if (i > 64 || (rc = mdb_env_set_mapsize(env, 0)) != 0) break;
  if (rc != 0) return from_mdb(rc, "beginning a read transaction in '" + opts.path + "'");
  // Any value of the main table (a table record) points into the map: find its mapping.
  const void* probe = nullptr;
  MDB_cursor* c = nullptr;
  if (mdb_cursor_open(txn, 1, &c) == 0) {
    MDB_val k, v;
    if (mdb_cursor_get(c, &k, &v, MDB_FIRST) == 0) probe = v.mv_data;
    mdb_cursor_close(c);
  }
  mdb_txn_abort(txn);
  MDB_envinfo info;
  mdb_env_info(env, &info);
  map_size = info.me_mapsize;
  if (!probe) return {}; // no table yet: nothing to read, nothing to check
  auto [lo, hi] = mapping_of(probe);
  if (lo == 0) return {};
  struct stat sb;
  if (::fstat(bounds.fd, &sb) != 0)
    return {errc::io_error, "cannot stat '" + detail::data_path(opts.path) + "'"};
  bounds.file_bytes.store(static_cast<std::size_t>(sb.st_size));
  bounds.length.store(std::min<std::size_t>(hi - lo, info.me_mapsize), std::memory_order_release);
  bounds.begin.store(lo, std::memory_order_release);
  if (!slot) slot = claim_slot(opts.path);
  if (slot) {
    slot->begin.store(1);
    slot->length.store(bounds.length.load());
    slot->begin.store(lo);
  }
  return {};
}

status environment::impl::open_lmdb() {
  auto fail = [&](int rc, const char* what) {
    return from_mdb(rc, std::string(what) + " '" + opts.path + "'");
  };
  if (int rc = mdb_env_create(&env); rc != 0) return fail(rc, "creating the LMDB environment for");
  mdb_env_set_userctx(env, &bounds);
  mdb_env_set_assert(env, detail::on_lmdb_assert);
  if (int rc = mdb_env_set_maxreaders(env, opts.max_readers); rc != 0)
    return fail(rc, "setting max readers of");
  // One more than asked for: the identity table.
  if (int rc = mdb_env_set_maxdbs(env, opts.max_tables + 1); rc != 0)
    return fail(rc, "setting max tables of");
  if (int rc = mdb_env_set_mapsize(env, opts.map_size_bytes); rc != 0)
    return fail(rc, "setting the map size of");
  unsigned flags = MDB_NOTLS;
  if (opts.sync == sync_mode::nosync) flags |= MDB_NOSYNC;
  if (opts.read_only) flags |= MDB_RDONLY;
  if (int rc = mdb_env_open(env, opts.path.c_str(), flags, 0644); rc != 0) {
    auto st = fail(rc, "opening the LMDB environment in");
    mdb_env_close(env);
    env = nullptr;
    return st;
  }
  mdb_env_get_fd(env, &bounds.fd);
  // From here on LMDB reads pages through the map: the fault guard covers this
  // environment before its map is located (locate_map reads a page to find it).
  slot = claim_slot(opts.path);
  int dead = 0;
  mdb_reader_check(env, &dead); // clear slots of crashed processes
  MDB_envinfo info;
  mdb_env_info(env, &info);
  map_size = info.me_mapsize; // an existing file may be larger than requested
  return {};
}

status environment::impl::check_file_size() {
  MDB_envinfo info;
  MDB_stat st;
  mdb_env_info(env, &info);
  mdb_env_stat(env, &st);
  const std::uint64_t need = (std::uint64_t{info.me_last_pgno} + 1) * st.ms_psize;
  struct stat sb;
  if (::fstat(bounds.fd, &sb) != 0)
    return {errc::io_error, "cannot stat '" + detail::data_path(opts.path) + "'"};
  if (static_cast<std::uint64_t>(sb.st_size) < need)
    return {errc::corrupt, "data.mdb is truncated: '" + detail::data_path(opts.path) + "' has " +
                             std::to_string(sb.st_size) + " bytes but its last committed page (" +
                             std::to_string(info.me_last_pgno) + ") ends at byte " +
                             std::to_string(need) + "; restore the data directory from a backup"};
  bounds.file_bytes.store(static_cast<std::size_t>(sb.st_size));
  return {};
}

environment::environment(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
environment::~environment() = default;

namespace {

constexpr const char* identity_table = "strata.identity";

/// What a directory holds before LMDB opens it.
struct dir_state {
  std::optional<detail::dir_identity> id; ///< DIR/strata.id
  bool fresh = false;                     ///< empty or absent: initialise
};

status check_options(const env_options& opts) {
  if (opts.path.empty())
    return {errc::invalid_argument, "environment path is empty; set the data directory"};
  if (opts.map_size_bytes == 0 || opts.map_size_max_bytes < opts.map_size_bytes)
    return {errc::invalid_argument, "map_size_bytes must be > 0 and <= map_size_max_bytes"};
  return {};
}

/// data.mdb's size, or -1 when it does not exist.
long long data_bytes(const std::string& dir) {
  struct stat sb;
  if (::stat(detail::data_path(dir).c_str(), &sb) != 0) return -1;
  return static_cast<long long>(sb.st_size);
}

status lost_data(const std::string& dir, const detail::dir_identity& id, long long bytes) {
  return {errc::corrupt, "'" + detail::data_path(dir) + "' is " +
                           (bytes < 0 ? "missing" : "empty") + ", but '" +
                           detail::identity_path(dir) + "' says this directory holds journal " +
                           id.id + " (created " + id.created +
                           "): its data is lost; restore data.mdb from a backup, or move the"
                           " directory away to start a new journal"};
}

status not_strata(const std::string& dir) {
  return {errc::incompatible, "'" + dir +
                                "' is not a strata data directory (it is not empty and has no"
                                " strata identity or journal); use an empty or new directory"};
}

/// DIR's identity file and data.mdb's size (-1: absent), common to both inspections: an
/// identity whose data.mdb is missing or empty is lost data, whatever the open mode.
result<dir_state> read_dir_state(const std::string& dir, long long& bytes) {
  dir_state ds;
  auto id = detail::read_identity_file(dir);
  if (!id) return id.error();
  ds.id = std::move(*id);
  bytes = data_bytes(dir);
  if (ds.id && bytes <= 0) return lost_data(dir, *ds.id, bytes);
  return ds;
}

/// Inspects DIR for a writer open (DIR exists and is locked).
result<dir_state> inspect_for_writer(const std::string& dir) {
  long long bytes = 0;
  auto r = read_dir_state(dir, bytes);
  if (!r) return r;
  auto& ds = *r;
  if (!ds.id) {
    ds.fresh = detail::is_fresh_dir(dir);
    if (!ds.fresh && bytes <= 0) return not_strata(dir);
  }
  return ds;
}

/// Inspects DIR for a read-only open.
result<dir_state> inspect_for_reader(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    return status{errc::not_found, "data directory '" + dir + "' does not exist; check the path"};
  long long bytes = 0;
  auto r = read_dir_state(dir, bytes);
  if (!r) return r;
  auto& ds = *r;
  if (bytes < 0)
    return status{errc::not_found, "no journal in '" + dir + "' (no data.mdb); check the path"};
  if (bytes == 0) return not_strata(dir);
  return ds;
}

/// The identity and format marker stored inside LMDB.
struct stored_identity {
  std::optional<detail::dir_identity> id;
  bool has_format = false;
  bool empty = false; ///< no table at all: a creation that died before it wrote anything
};

result<stored_identity> read_stored_identity(const environment& e) {
  stored_identity out;
  auto get = [](read_txn& txn, const char* name, const char* key,
                std::optional<std::string>& value) -> status {
    MDB_dbi dbi = 0;
    int rc = mdb_dbi_open(txn.native(), name, 0, &dbi);
    if (rc == MDB_NOTFOUND) return {};
    if (rc != 0) return from_mdb(rc, std::string("opening table '") + name + "'");
    auto v = txn.get(table{dbi}, key);
    if (!v) return v.error();
    if (*v) value = std::string(**v);
    return {};
  };
  auto st = e.read([&](read_txn& txn) -> status {
    std::optional<std::string> id, created, format;
    if (auto s = get(txn, identity_table, "id", id); !s.ok()) return s;
    if (auto s = get(txn, identity_table, "created", created); !s.ok()) return s;
    if (auto s = get(txn, "meta", "format", format); !s.ok()) return s;
    if (id) {
      detail::dir_identity d;
      d.id = *id;
      d.created = created.value_or("?");
      out.id = d;
    }
    out.has_format = format.has_value();
    MDB_stat ms;
    if (int rc = mdb_stat(txn.native(), 1, &ms); rc != 0) return from_mdb(rc, "reading tables");
    out.empty = ms.ms_entries == 0;
    return {};
  });
  if (!st.ok()) return st;
  return out;
}

status write_stored_identity(environment& e, const detail::dir_identity& d) {
  return e.write([&](write_txn& txn) -> status {
    MDB_dbi dbi = 0;
    if (int rc = mdb_dbi_open(txn.native(), identity_table, MDB_CREATE, &dbi); rc != 0)
      return from_mdb(rc, std::string("creating table '") + identity_table + "'");
    table t{dbi};
    if (auto s = txn.put(t, "id", d.id); !s.ok()) return s;
    if (auto s = txn.put(t, "format", std::to_string(d.format)); !s.ok()) return s;
    return txn.put(t, "created", d.created);
  });
}

/// Creates the identity: inside LMDB first (so a crash before the file is written leaves
/// a directory that is adopted at the next open), then DIR/strata.id.
status create_identity(environment& e) {
  auto d = detail::dir_identity::make();
  if (auto s = write_stored_identity(e, d); !s.ok()) return s;
  return detail::write_identity_file(e.options().path, d);
}

/// Checks (or, for a writer, completes) the identity after LMDB opened the directory.
status settle_identity(environment& e, const dir_state& ds) {
  const auto& dir = e.options().path;
  if (ds.fresh) return create_identity(e);
  auto si = read_stored_identity(e);
  if (!si) return si.error();
  if (ds.id) {
    if (!si->id)
      return {errc::corrupt, "'" + detail::data_path(dir) + "' has no strata identity, but '" +
                               detail::identity_path(dir) + "' says this directory holds journal " +
                               ds.id->id + ": data.mdb was replaced; restore it from a backup"};
    if (si->id->id != ds.id->id)
      return {errc::corrupt, "'" + detail::data_path(dir) + "' belongs to journal " + si->id->id +
                               ", but '" + detail::identity_path(dir) + "' says journal " +
                               ds.id->id + ": data.mdb was replaced; restore it from a backup"};
    return {};
  }
  if (si->id) // created, but the process died before it wrote strata.id
    return e.options().read_only ? status{} : detail::write_identity_file(dir, *si->id);
  if (si->empty && !e.options().read_only) return create_identity(e);
  if (si->empty)
    return {errc::not_found, "no journal in '" + dir + "' (data.mdb holds no table yet)"};
  if (!si->has_format) return not_strata(dir);
  // A journal written before identities existed: adopt it.
  return e.options().read_only ? status{} : create_identity(e);
}

} // namespace

status environment::impl::create_and_lock() {
  std::error_code ec;
  std::filesystem::create_directories(opts.path, ec);
  if (!std::filesystem::is_directory(opts.path, ec))
    return {errc::io_error, "data directory '" + opts.path +
                              "' does not exist and cannot be created" +
                              (ec ? " (" + ec.message() + ")" : std::string{}) +
                              "; check the path and its permissions"};
  auto l = detail::dir_lock::acquire(opts.path, opts.lock_wait_ms);
  if (!l) return l.error();
  lock = std::move(*l);
  return {};
}

result<std::unique_ptr<environment>> environment::open(const env_options& opts) {
  if (auto s = check_options(opts); !s.ok()) return s;
  auto p = std::make_unique<impl>();
  p->opts = opts;
  if (!opts.read_only)
    if (auto s = p->create_and_lock(); !s.ok()) return s;
  auto ds = opts.read_only ? inspect_for_reader(opts.path) : inspect_for_writer(opts.path);
  if (!ds) return ds.error();
  // Checks that need no map come before LMDB reads a page through it.
  if (!ds->fresh)
    if (auto s = detail::check_meta_pages(detail::data_path(opts.path)); !s.ok()) return s;
  if (auto s = p->open_lmdb(); !s.ok()) return s;
  if (!ds->fresh) {
    if (auto s = p->check_file_size(); !s.ok()) return s;
    if (auto s = p->locate_map(); !s.ok()) return s;
  }
  auto* raw = p.get();
  std::unique_ptr<environment> e(new environment(std::move(p)));
  if (auto s = settle_identity(*e, *ds); !s.ok()) return s;
  if (raw->bounds.begin.load() == 0) // the first table was just created
    if (auto s = raw->locate_map(); !s.ok()) return s;
  return e;
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
    std::lock_guard nk(impl_->bounds.names_mu);
    impl_->bounds.names[dbi] = n;
    return table{dbi};
  }
  auto st = write([&](write_txn& txn) -> status {
    if (int rc = mdb_dbi_open(txn.native(), n.c_str(), MDB_CREATE, &dbi); rc != 0)
      return from_mdb(rc, "opening table '" + n + "'");
    return {};
  });
  if (!st.ok()) return st;
  impl_->tables.emplace(n, dbi);
  std::lock_guard nk(impl_->bounds.names_mu);
  impl_->bounds.names[dbi] = n;
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
        impl_->bounds.write_txn.store(txn);
        st = fn(w);
        impl_->bounds.write_txn.store(nullptr);
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
  if (impl_->opts.read_only) return {}; // nothing of ours to flush
  if (int rc = mdb_env_sync(impl_->env, 1); rc != 0)
    return from_mdb(rc, "syncing '" + impl_->opts.path + "'");
  return {};
}

MDB_env* environment::native() const noexcept { return impl_->env; }

} // namespace strata::persistence
