#include "data_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <sstream>
#include <thread>
#include <vector>

namespace strata::persistence::detail {

namespace {

constexpr const char* lock_name = "strata.lock";
constexpr const char* id_name = "strata.id";
constexpr const char* id_tmp_name = "strata.id.tmp";
constexpr const char* id_magic = "strata data directory";

std::string errno_text(int e) { return std::strerror(e); }

/// The whole content of an open file (bounded: a lock or identity file is tiny).
std::string read_small(int fd) {
  char buf[512];
  ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string{};
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

/// "pid N on host H since T" from the lock file's "pid=…\nhost=…\nsince=…\n".
std::string describe_holder(const std::string& text) {
  std::string pid = "?", host = "?", since = "?";
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    auto key = line.substr(0, eq), value = line.substr(eq + 1, 128);
    if (key == "pid") pid = value;
    if (key == "host") host = value;
    if (key == "since") since = value;
  }
  return "pid " + pid + " on host " + host + " since " + since;
}

status fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return {errc::io_error, "opening directory '" + dir + "': " + errno_text(errno)};
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0) return {errc::io_error, "syncing directory '" + dir + "': " + errno_text(e)};
  return {};
}

} // namespace

std::string identity_path(const std::string& dir) { return dir + "/" + id_name; }
std::string data_path(const std::string& dir) { return dir + "/data.mdb"; }

std::string utc_now_iso() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// ---- writer lock --------------------------------------------------------------------

dir_lock::dir_lock(dir_lock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

dir_lock& dir_lock::operator=(dir_lock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

dir_lock::~dir_lock() {
  if (fd_ >= 0) ::close(fd_); // releases the flock
}

result<dir_lock> dir_lock::acquire(const std::string& dir, std::uint32_t wait_ms) {
  const std::string path = dir + "/" + lock_name;
  dir_lock l;
  l.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (l.fd_ < 0)
    return status{errc::io_error, "cannot create the lock file '" + path +
                                    "': " + errno_text(errno) +
                                    "; check the permissions of the data directory"};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  // flock (not fcntl): owned by this open file description, so a second open in the same
  // process conflicts too, and LMDB closing its own files never releases it.
  while (::flock(l.fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK)
      return status{errc::io_error, "cannot lock '" + path + "': " + errno_text(errno)};
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline)
      return status{errc::locked, "data directory '" + dir + "' is in use by " +
                                    describe_holder(read_small(l.fd_)) +
                                    "; stop that process or wait (lock-wait-ms)"};
    std::this_thread::sleep_for(
      std::min<std::chrono::steady_clock::duration>(std::chrono::milliseconds(5), deadline - now));
  }
  std::string who = "pid=" + std::to_string(::getpid()) + "\nhost=" + host_name() +
                    "\nsince=" + utc_now_iso() + "\n";
  // Best effort: the file only explains who holds the lock; the flock is the lock.
  if (::ftruncate(l.fd_, 0) == 0) {
    [[maybe_unused]] auto n = ::pwrite(l.fd_, who.data(), who.size(), 0);
  }
  return l;
}

// ---- identity -----------------------------------------------------------------------

dir_identity dir_identity::make() {
  unsigned char bytes[16];
  std::size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0)
      got += static_cast<std::size_t>(n);
    else if (errno != EINTR)
      break;
  }
  if (got < sizeof bytes) { // no getrandom: still unique enough with time and pid mixed in
    auto t =
      static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
    for (std::size_t i = 0; i < sizeof bytes; ++i)
      bytes[i] = static_cast<unsigned char>((t >> (8 * (i % 8))) ^ (::getpid() >> (i % 4)));
  }
  static const char* hex = "0123456789abcdef";
  dir_identity d;
  for (unsigned char b : bytes) {
    d.id += hex[b >> 4];
    d.id += hex[b & 15];
  }
  d.created = utc_now_iso();
  return d;
}

std::string dir_identity::encode() const {
  return std::string(id_magic) + "\nformat=" + std::to_string(format) + "\nid=" + id +
         "\ncreated=" + created + "\n";
}

std::optional<dir_identity> dir_identity::parse(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != id_magic) return std::nullopt;
  dir_identity d;
  d.format = 0;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) return std::nullopt;
    auto key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "format")
      d.format = std::atoi(value.c_str());
    else if (key == "id")
      d.id = value;
    else if (key == "created")
      d.created = value;
  }
  if (d.format <= 0 || d.id.size() != 32 ||
      d.id.find_first_not_of("0123456789abcdef") != std::string::npos)
    return std::nullopt;
  return d;
}

result<std::optional<dir_identity>> read_identity_file(const std::string& dir) {
  const auto path = identity_path(dir);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<dir_identity>{};
    return status{errc::io_error, "cannot read '" + path + "': " + errno_text(errno)};
  }
  auto text = read_small(fd);
  ::close(fd);
  auto d = dir_identity::parse(text);
  if (!d)
    return status{errc::corrupt, "identity file '" + path +
                                   "' is damaged; restore it from a backup of the directory"};
  if (d->format > dir_identity::current_format)
    return status{errc::incompatible, "'" + path + "' has format " + std::to_string(d->format) +
                                        ", this build reads up to " +
                                        std::to_string(dir_identity::current_format)};
  return std::optional<dir_identity>{std::move(*d)};
}

status write_identity_file(const std::string& dir, const dir_identity& id) {
  const auto tmp = dir + "/" + id_tmp_name, path = identity_path(dir);
  const auto text = id.encode();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return {errc::io_error, "cannot create '" + tmp + "': " + errno_text(errno)};
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ok && ::fsync(fd) == 0;
  int e = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) e = errno;
    ::unlink(tmp.c_str());
    return {errc::io_error, "cannot write the identity file '" + path + "': " + errno_text(e) +
                              " (free disk space and retry)"};
  }
  return fsync_dir(dir);
}

bool is_fresh_dir(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return true;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    auto name = it->path().filename().string();
    // LMDB's own files of a creation that died before LMDB wrote its first page.
    if (name == "data.mdb" && std::filesystem::file_size(it->path(), ec) == 0) continue;
    if (name != lock_name && name != id_tmp_name && name != "lock.mdb") return false;
  }
  return !ec;
}

// ---- meta pages ---------------------------------------------------------------------

namespace {

// LMDB 0.9 on-disk layout (64-bit): a 16-byte page header (mp_flags at 10), then MDB_meta.
constexpr std::size_t page_header = 16;
constexpr std::uint16_t p_meta = 0x08;
constexpr std::uint32_t mdb_magic = 0xBEEFC0DE;
constexpr std::uint32_t mdb_data_version = 1;
constexpr std::uint64_t pgno_invalid = ~std::uint64_t{0};

struct meta_page {
  std::uint16_t flags;
  std::uint32_t magic, version, psize;
  std::uint16_t main_depth;
  std::uint64_t free_root, main_root, last_pg, txnid;
};

template <class T>
T load(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

meta_page decode_meta(const unsigned char* page) {
  const unsigned char* m = page + page_header;
  meta_page r;
  r.flags = load<std::uint16_t>(page + 10);
  r.magic = load<std::uint32_t>(m + 0);
  r.version = load<std::uint32_t>(m + 4);
  r.psize = load<std::uint32_t>(m + 24);      // mm_dbs[FREE_DBI].md_pad
  r.free_root = load<std::uint64_t>(m + 64);  // mm_dbs[FREE_DBI].md_root
  r.main_depth = load<std::uint16_t>(m + 78); // mm_dbs[MAIN_DBI].md_depth
  r.main_root = load<std::uint64_t>(m + 112); // mm_dbs[MAIN_DBI].md_root
  r.last_pg = load<std::uint64_t>(m + 120);   // mm_last_pg
  r.txnid = load<std::uint64_t>(m + 128);     // mm_txnid
  return r;
}

/// What is wrong with meta page `i`, or an empty string.
std::string meta_problem(const meta_page& m, int i) {
  auto page = "meta page " + std::to_string(i);
  if (!(m.flags & p_meta)) return page + " is not marked as a meta page";
  if (m.magic != mdb_magic) return page + " has a wrong magic number";
  if (m.version != mdb_data_version)
    return page + " has LMDB data version " + std::to_string(m.version);
  if (m.psize < 512 || m.psize > 0x8000 || (m.psize & (m.psize - 1)) != 0)
    return page + " has an impossible page size " + std::to_string(m.psize);
  if (m.last_pg < 1 || m.last_pg > (std::uint64_t{1} << 40))
    return page + " has an impossible last page " + std::to_string(m.last_pg);
  for (auto root : {m.free_root, m.main_root})
    if (root != pgno_invalid && (root < 2 || root > m.last_pg))
      return page + " has a root page " + std::to_string(root) + " outside the file's pages";
  if (m.txnid % 2 != static_cast<std::uint64_t>(i) && !(i == 1 && m.txnid == 0))
    return page + " has transaction id " + std::to_string(m.txnid) + " of the wrong parity";
  return {};
}

// Page and node layout: u64 pgno, u16 pad, u16 flags, u16 lower, u16 upper, u16 ptrs[];
// a node is u16 lo, u16 hi, u16 flags, u16 ksize, key, data (a branch node's child page
// number is lo | hi << 16 | flags << 32).
constexpr std::uint16_t p_branch = 0x01, p_leaf = 0x02,
                        p_kinds = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40;
constexpr std::uint16_t f_bigdata = 0x01, f_subdata = 0x02, f_dupdata = 0x04;
constexpr std::size_t node_header = 8, table_record = 48; // sizeof(MDB_db)

/// Walks the main table (LMDB's table of tables) of meta page `m` with pread.
class main_tree_check {
 public:
  main_tree_check(int fd, const meta_page& m, std::string& io_err)
    : fd_(fd), m_(m), io_err_(io_err) {}

  /// What is wrong with page `pgno` at `level` (1 = the root) and below, or "".
  std::string page(std::uint64_t pgno, unsigned level) {
    if (++visited_ > 64 || !io_err_.empty()) return {}; // enough for a table directory
    std::vector<unsigned char> pg(m_.psize);
    ssize_t n = ::pread(fd_, pg.data(), pg.size(), static_cast<off_t>(pgno * m_.psize));
    if (n < 0) io_err_ = errno_text(errno);
    if (n != static_cast<ssize_t>(pg.size())) return {}; // the file size check says why
    const auto name =
      "page " + std::to_string(pgno) + " of the table directory (LMDB's main table)";
    const bool branch = level < m_.main_depth;
    const unsigned lower = u16(pg, 12), upper = u16(pg, 14);
    if (load<std::uint64_t>(pg.data()) != pgno) return name + " holds another page number";
    if ((u16(pg, 10) & p_kinds) != (branch ? p_branch : p_leaf))
      return name + " has page flags " + std::to_string(u16(pg, 10)) + " where a " +
             (branch ? "branch" : "leaf") + " page belongs";
    if (lower < page_header + 2 || lower > upper || upper > m_.psize || (lower & 1) != 0)
      return name + " has impossible bounds (lower " + std::to_string(lower) + ", upper " +
             std::to_string(upper) + ")";
    for (unsigned i = 0; i < (lower - page_header) / 2; ++i) {
      const unsigned at = u16(pg, page_header + 2 * i);
      const auto what = name + ": node " + std::to_string(i) + " at offset " + std::to_string(at);
      if (at < upper || at + node_header > m_.psize || (at & 1) != 0)
        return what + " lies outside the page's node area [" + std::to_string(upper) + ", " +
               std::to_string(m_.psize) + ")";
      auto p = branch ? child(pg, at, level, what) : leaf_node(pg, at, what);
      if (!p.empty()) return p;
    }
    return {};
  }

 private:
  static unsigned u16(const std::vector<unsigned char>& pg, std::size_t at) {
    return load<std::uint16_t>(pg.data() + at);
  }

  /// The branch node at `at`: its child page and what is below it.
  std::string child(const std::vector<unsigned char>& pg, unsigned at, unsigned level,
                    const std::string& what) {
    const std::uint64_t c =
      u16(pg, at) | std::uint64_t{u16(pg, at + 2)} << 16 | std::uint64_t{u16(pg, at + 4)} << 32;
    if (c < 2 || c > m_.last_pg)
      return what + " points at page " + std::to_string(c) + ", outside the file's pages";
    if (at + node_header + u16(pg, at + 6) > m_.psize)
      return what + " has a key that ends past the page";
    return page(c, level + 1);
  }

  /// The leaf node at `at` (a table record).
  std::string leaf_node(const std::vector<unsigned char>& pg, unsigned at,
                        const std::string& what) const {
    const std::uint64_t size = u16(pg, at) | std::uint64_t{u16(pg, at + 2)} << 16;
    const unsigned flags = u16(pg, at + 4), key = u16(pg, at + 6);
    // The main table is not a DUPSORT table: LMDB would follow a duplicate-data flag
    // into a sub-cursor it never made (a null pointer).
    const bool bad_sub = (flags & f_subdata) && ((flags & f_bigdata) || size != table_record);
    if ((flags & f_dupdata) || bad_sub)
      return what + " has impossible node flags " + std::to_string(flags);
    const std::uint64_t data = (flags & f_bigdata) ? 8 : size;
    if (at + node_header + key + data > m_.psize)
      return what + " has a key (" + std::to_string(key) + " bytes) or value (" +
             std::to_string(size) + " bytes) that ends past the page";
    return {};
  }

  int fd_;
  const meta_page& m_;
  std::string& io_err_;
  int visited_ = 0;
};

/// One pass of the check: the problem, or an empty string.
std::string meta_pass(int fd, std::string& io_err) {
  unsigned char buf[page_header + 136];
  meta_page m[2];
  std::uint64_t off = 0;
  for (int i = 0; i < 2; ++i) {
    ssize_t n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(off));
    if (n < 0) {
      io_err = errno_text(errno);
      return {};
    }
    if (static_cast<std::size_t>(n) < sizeof buf)
      return "it is shorter than its two meta pages (" + std::to_string(off + n) + " bytes)";
    m[i] = decode_meta(buf);
    if (auto p = meta_problem(m[i], i); !p.empty()) return p;
    off = m[0].psize;
  }
  if (m[0].psize != m[1].psize) return "its meta pages disagree on the page size";
  auto a = m[0].txnid, b = m[1].txnid;
  if (!(a == 0 && b == 0) && (a > b ? a - b : b - a) != 1)
    return "its meta pages hold transaction ids " + std::to_string(a) + " and " +
           std::to_string(b) + ", which are not consecutive";
  // LMDB opens the newer snapshot and walks its table directory at once: a damaged node
  // there (an offset into free space, a stray flag) makes LMDB itself fault.
  const auto& cur = a > b ? m[0] : m[1];
  if (cur.main_root == pgno_invalid) return {};
  if (cur.main_depth < 1 || cur.main_depth > 16)
    return "the table directory (LMDB's main table) has an impossible depth " +
           std::to_string(cur.main_depth);
  return main_tree_check(fd, cur, io_err).page(cur.main_root, 1);
}

} // namespace

status check_meta_pages(const std::string& data_mdb) {
  int fd = ::open(data_mdb.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {errc::io_error, "cannot open '" + data_mdb + "': " + errno_text(errno)};
  std::string problem, io_err;
  // A writer of another process may be rewriting a meta page right now: a real damage
  // stays, a torn read does not.
  for (int attempt = 0; attempt < 5; ++attempt) {
    problem = meta_pass(fd, io_err);
    if (problem.empty() || !io_err.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::close(fd);
  if (!io_err.empty()) return {errc::io_error, "reading '" + data_mdb + "': " + io_err};
  if (!problem.empty())
    return {errc::corrupt, "'" + data_mdb + "' is damaged: " + problem +
                             "; restore the data directory from a backup"};
  return {};
}

} // namespace strata::persistence::detail
