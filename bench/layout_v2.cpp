// Scenarios `layout-v2` and `layout-v2-log`: the proposed strata-journal/2 layout, written
// and read back in raw LMDB (no strata journal code), so the format can be decided on
// numbers before the journal changes (docs/persistence.md, "Bytes at rest").
//
// Tables:
//   streams       persistence id → stream id (u64 BE)
//   stream_names  stream id (u64 BE) → persistence id
//   types         type id (u64 BE) → type name
//   runs          (generation u32 BE, stream id u64 BE, first seq u64 BE) →
//                 [CRC32C u32 LE][run body]; the generation is the deferred pass that
//                 wrote the run (always 0 in layout-v2)
//   commits       first position of a commit (u64 BE) → [CRC32C][generation][refs], a
//                 ref being (stream id delta, first seq, count), in position order
//   log           (layout-v2-log only) first position of a commit → [CRC32C][per ref:
//                 stream id delta, first seq, run body]: the commit as one appended value
//
// Run body: count, first position, flags (bit 0: a position delta per event), shard
// epoch, base timestamp (zigzag); then per event: [position delta], timestamp delta
// (zigzag), type id << 3 | extras (bit 0 tags, 1 correlation id, 2 causation id),
// schema version, payload length, payload, then the extras (length-prefixed). Every
// number is a LEB128 varint; seq is implicit (first seq from the key + index).
//
// `layout-v2` writes each commit's runs straight into `runs` (one value per stream per
// commit) and its refs into `commits`. `layout-v2-log` appends each commit as one `log`
// value (MDB_APPEND) and clusters the log into `runs` + `commits` in a deferred pass
// every STRATA_BENCH_V2_FLUSH_EVENTS events (default 1,000,000, the journal's
// index_flush_events) and at close, merging a stream's events of many commits into runs;
// each pass is a new generation, appended behind the earlier ones (MDB_APPEND, full
// pages), and a stream read seeks once per generation.
#include "scenario.hpp"

#include "strata/persistence/codec.hpp"

#include <lmdb.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace strata::bench {
namespace {

using persistence::crc32c;

// ---- LMDB ------------------------------------------------------------------------------

void check(int rc, const char* what) {
  if (rc != MDB_SUCCESS) fail(std::string("layout-v2: ") + what + ": " + mdb_strerror(rc));
}
void check(int rc, const std::string& what) { check(rc, what.c_str()); }

struct env_closer {
  void operator()(MDB_env* e) const { mdb_env_close(e); }
};
using env_ptr = std::unique_ptr<MDB_env, env_closer>;

env_ptr open_env(const std::filesystem::path& dir, const options& o, bool read_only) {
  MDB_env* raw = nullptr;
  check(mdb_env_create(&raw), "mdb_env_create");
  env_ptr env(raw);
  check(mdb_env_set_maxdbs(raw, 8), "mdb_env_set_maxdbs");
  // Room for the log and its clustered copy at once (layout-v2-log, before the log drop).
  check(mdb_env_set_mapsize(raw, 2 * map_size_for(o)), "mdb_env_set_mapsize");
  unsigned flags = (o.nosync ? MDB_NOSYNC : 0u) | (read_only ? MDB_RDONLY : 0u);
  check(mdb_env_open(raw, dir.c_str(), flags, 0644), "mdb_env_open " + dir.string());
  return env;
}

class txn {
 public:
  txn(MDB_env* env, unsigned flags) {
    check(mdb_txn_begin(env, nullptr, flags, &t_), "mdb_txn_begin");
  }
  txn(const txn&) = delete;
  txn& operator=(const txn&) = delete;
  ~txn() {
    if (t_) mdb_txn_abort(t_);
  }
  MDB_txn* get() const { return t_; }
  void commit() {
    int rc = mdb_txn_commit(t_);
    t_ = nullptr;
    check(rc, "mdb_txn_commit");
  }

 private:
  MDB_txn* t_ = nullptr;
};

class cursor {
 public:
  cursor(MDB_txn* t, MDB_dbi dbi) { check(mdb_cursor_open(t, dbi, &c_), "mdb_cursor_open"); }
  cursor(const cursor&) = delete;
  cursor& operator=(const cursor&) = delete;
  ~cursor() { mdb_cursor_close(c_); }
  MDB_cursor* get() const { return c_; }

 private:
  MDB_cursor* c_ = nullptr;
};

struct tables {
  MDB_dbi streams, stream_names, types, runs, commits, log;
};

const char* const table_names[] = {"streams", "stream_names", "types", "runs", "commits", "log"};

tables open_tables(MDB_txn* t, bool create) {
  MDB_dbi d[6];
  for (int k = 0; k < 6; ++k)
    check(mdb_dbi_open(t, table_names[k], create ? MDB_CREATE : 0u, &d[k]),
          std::string("mdb_dbi_open ") + table_names[k]);
  return {d[0], d[1], d[2], d[3], d[4], d[5]};
}

/// The tables of `env`, opened in a transaction that commits (a handle opened in a read
/// transaction that is reset or aborted is closed with it).
tables open_tables(MDB_env* env) {
  txn t(env, MDB_RDONLY);
  tables tb = open_tables(t.get(), false);
  t.commit();
  return tb;
}

std::string_view view(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

std::uint64_t get_be64(const void* p) {
  auto u = static_cast<const unsigned char*>(p);
  std::uint64_t v = 0;
  for (int k = 0; k < 8; ++k)
    v = v << 8 | u[k];
  return v;
}

/// (generation u32 BE, stream id u64 BE, first seq u64 BE). The generation is the
/// deferred pass that wrote the run (layout-v2-log; 0 in layout-v2): each pass appends
/// its runs in key order behind all earlier ones, so LMDB fills pages instead of
/// splitting them, and a stream read seeks once per generation.
struct run_key {
  static constexpr std::size_t size = 20;
  unsigned char bytes[size];
  run_key(std::uint32_t gen, std::uint64_t stream, std::uint64_t seq) {
    for (int k = 0; k < 4; ++k)
      bytes[k] = static_cast<unsigned char>(gen >> (24 - 8 * k));
    put_be64(bytes + 4, stream);
    put_be64(bytes + 12, seq);
  }
  MDB_val val() { return {sizeof bytes, bytes}; }
  static std::uint32_t gen_of(const MDB_val& k) {
    return static_cast<std::uint32_t>(get_be64(k.mv_data) >> 32);
  }
  static std::uint64_t stream_of(const MDB_val& k) {
    return get_be64(static_cast<const char*>(k.mv_data) + 4);
  }
  static std::uint64_t seq_of(const MDB_val& k) {
    return get_be64(static_cast<const char*>(k.mv_data) + 12);
  }
};

// ---- bytes -----------------------------------------------------------------------------

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

std::uint64_t zigzag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
std::int64_t unzigzag(std::uint64_t v) {
  return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}

void put_le32(std::string& out, std::size_t at, std::uint32_t v) {
  for (int b = 0; b < 4; ++b)
    out[at + b] = static_cast<char>(v >> (8 * b));
}

/// Bounds-checked reading of varints and byte strings.
class byte_reader {
 public:
  explicit byte_reader(std::string_view s = {})
    : p_(reinterpret_cast<const unsigned char*>(s.data())), end_(p_ + s.size()) {}
  bool varint(std::uint64_t& v) {
    if (p_ != end_ && *p_ < 0x80) {
      v = *p_++;
      return true;
    }
    v = 0;
    for (int shift = 0; shift < 64 && p_ != end_; shift += 7) {
      unsigned char b = *p_++;
      v |= std::uint64_t{b & 0x7Fu} << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  bool bytes(std::uint64_t n, std::string_view& out) {
    if (static_cast<std::uint64_t>(end_ - p_) < n) return false;
    out = {reinterpret_cast<const char*>(p_), static_cast<std::size_t>(n)};
    p_ += n;
    return true;
  }
  bool string(std::string_view& out) {
    std::uint64_t n = 0;
    return varint(n) && bytes(n, out);
  }
  const unsigned char* pos() const { return p_; }
  bool at_end() const { return p_ == end_; }

 private:
  const unsigned char* p_;
  const unsigned char* end_;
};

/// The checked body of a `[CRC32C][body]` value, or fails naming `what()` (built only
/// then).
template <class What>
std::string_view checked_body(const MDB_val& v, What&& what) {
  auto s = view(v);
  if (s.size() < 4)
    fail("layout-v2: " + what() + " is truncated (" + std::to_string(s.size()) + " bytes)");
  auto u = reinterpret_cast<const unsigned char*>(s.data());
  std::uint32_t stored = std::uint32_t{u[0]} | std::uint32_t{u[1]} << 8 |
                         std::uint32_t{u[2]} << 16 | std::uint32_t{u[3]} << 24;
  if (crc32c(s.substr(4)) != stored) fail("layout-v2: " + what() + ": checksum mismatch");
  return s.substr(4);
}

// ---- events and runs -------------------------------------------------------------------

enum extras : unsigned { has_tags = 1, has_correlation = 2, has_causation = 4 };

/// One event as the v2 layout stores it; the strings view the stored bytes (or the
/// writer's buffers). `tags_raw` is the encoded tag list: count, then length + bytes each.
struct v2_event {
  std::uint64_t seq = 0;
  std::uint64_t position = 0;
  std::int64_t timestamp_ns = 0;
  std::uint32_t type_id = 0;
  std::uint32_t schema_version = 1;
  unsigned extras = 0;
  std::string_view payload;
  std::string_view tags_raw;
  std::uint64_t tag_count = 0;
  std::string_view correlation_id;
  std::string_view causation_id;
};

/// LMDB keeps a value of up to ~2 KB (4 KiB pages, 16-byte key) inside a leaf page;
/// larger ones get overflow pages of their own and waste half a page on average.
/// STRATA_BENCH_V2_RUN_BYTES overrides it (for trying other sizes).
std::size_t run_body_bytes_max() {
  static const std::size_t n = [] {
    const char* s = std::getenv("STRATA_BENCH_V2_RUN_BYTES");
    return s ? std::strtoull(s, nullptr, 10) : std::size_t{600};
  }();
  return n;
}

/// Builds one run: events of one stream with consecutive seqs.
class run_builder {
 public:
  void reset(std::uint64_t shard_epoch) {
    events_.clear();
    count_ = 0;
    epoch_ = shard_epoch;
    consecutive_ = true;
  }
  std::uint64_t count() const { return count_; }
  std::size_t bytes() const { return events_.size(); }

  void add(const v2_event& e) {
    if (count_ == 0) {
      first_pos_ = last_pos_ = e.position;
      base_ts_ = last_ts_ = e.timestamp_ns;
    }
    // Per-event position deltas are written as soon as one is needed (see body()).
    pos_deltas_.resize(count_ + 1);
    pos_deltas_[count_] = e.position - last_pos_;
    if (count_ > 0 && e.position != last_pos_ + 1) consecutive_ = false;
    event_starts_.resize(count_ + 1);
    event_starts_[count_] = events_.size();
    put_varint(events_, zigzag(e.timestamp_ns - last_ts_));
    put_varint(events_, std::uint64_t{e.type_id} << 3 | e.extras);
    put_varint(events_, e.schema_version);
    put_varint(events_, e.payload.size());
    events_.append(e.payload);
    if (e.extras & has_tags) events_.append(e.tags_raw);
    if (e.extras & has_correlation) put_string(e.correlation_id);
    if (e.extras & has_causation) put_string(e.causation_id);
    last_pos_ = e.position;
    last_ts_ = e.timestamp_ns;
    ++count_;
  }

  /// Appends the run body (header, then the events) to `out`.
  void body(std::string& out) const {
    put_varint(out, count_);
    put_varint(out, first_pos_);
    put_varint(out, consecutive_ ? 0 : 1);
    put_varint(out, epoch_);
    put_varint(out, zigzag(base_ts_));
    if (consecutive_) {
      out.append(events_);
      return;
    }
    for (std::uint64_t k = 0; k < count_; ++k) {
      put_varint(out, pos_deltas_[k]);
      std::size_t end = k + 1 < count_ ? event_starts_[k + 1] : events_.size();
      out.append(events_, event_starts_[k], end - event_starts_[k]);
    }
  }

  /// `[CRC32C][body]` into `out` (replacing it).
  void value(std::string& out) const {
    out.assign(4, '\0');
    body(out);
    put_le32(out, 0, crc32c(std::string_view(out).substr(4)));
  }

 private:
  void put_string(std::string_view s) {
    put_varint(events_, s.size());
    events_.append(s);
  }

  std::string events_;
  std::vector<std::uint64_t> pos_deltas_;
  std::vector<std::size_t> event_starts_;
  std::uint64_t count_ = 0, epoch_ = 0, first_pos_ = 0, last_pos_ = 0;
  std::int64_t base_ts_ = 0, last_ts_ = 0;
  bool consecutive_ = true;
};

/// Decodes a run body event by event (every field), checking every length.
class run_decoder {
 public:
  /// Parses the header of the body at the front of `r` (bodies may follow each other in
  /// a log value): the run of `stream` from `first_seq`, stored in `table`.
  void open(byte_reader& r, std::uint64_t stream, std::uint64_t first_seq, const char* table) {
    stream_ = stream;
    seq_ = first_seq;
    table_ = table;
    std::uint64_t flags = 0, ts = 0;
    if (!r.varint(count_) || !r.varint(first_pos_) || !r.varint(flags) || !r.varint(epoch_) ||
        !r.varint(ts) || flags > 1 || count_ == 0)
      fail("layout-v2: " + where() + ": bad run header");
    explicit_pos_ = flags == 1;
    ts_ = unzigzag(ts);
    pos_ = first_pos_;
    done_ = 0;
    r_ = &r;
  }
  std::uint64_t remaining() const { return count_ - done_; }
  std::uint64_t shard_epoch() const { return epoch_; }

  /// The next event into `e` (remaining() > 0).
  void next(v2_event& e) {
    byte_reader& r = *r_;
    std::uint64_t pos_delta = 0, ts = 0, type = 0, schema = 0;
    if (explicit_pos_ && !r.varint(pos_delta)) bad();
    if (!r.varint(ts) || !r.varint(type) || !r.varint(schema) || !r.string(e.payload)) bad();
    pos_ = done_ == 0 || explicit_pos_ ? pos_ + pos_delta : pos_ + 1;
    ts_ += unzigzag(ts);
    e.seq = seq_ + done_;
    e.position = pos_;
    e.timestamp_ns = ts_;
    e.type_id = static_cast<std::uint32_t>(type >> 3);
    e.schema_version = static_cast<std::uint32_t>(schema);
    e.extras = static_cast<unsigned>(type & 7);
    e.tag_count = 0;
    if (e.extras != 0) read_extras(e);
    ++done_;
  }

 private:
  void read_extras(v2_event& e) {
    byte_reader& r = *r_;
    if (e.extras & has_tags) {
      auto start = r.pos();
      std::string_view tag;
      if (!r.varint(e.tag_count) || e.tag_count > 64) bad();
      for (std::uint64_t k = 0; k < e.tag_count; ++k)
        if (!r.string(tag)) bad();
      e.tags_raw = {reinterpret_cast<const char*>(start),
                    static_cast<std::size_t>(r.pos() - start)};
    }
    if ((e.extras & has_correlation) && !r.string(e.correlation_id)) bad();
    if ((e.extras & has_causation) && !r.string(e.causation_id)) bad();
  }
  std::string where() const {
    return std::string("run of stream id ") + std::to_string(stream_) + " from seq " +
           std::to_string(seq_) + " in table " + table_;
  }
  [[noreturn]] void bad() const {
    fail("layout-v2: " + where() + ": event " + std::to_string(done_ + 1) + " of " +
         std::to_string(count_) + " is truncated or malformed");
  }

  byte_reader* r_ = nullptr;
  const char* table_ = "";
  std::uint64_t stream_ = 0, count_ = 0, done_ = 0, first_pos_ = 0, pos_ = 0, seq_ = 0, epoch_ = 0;
  std::int64_t ts_ = 0;
  bool explicit_pos_ = false;
};

/// What the bench checks a read against: order-independent, so a per-stream read and a
/// global read of the same data give the same value. Touches every payload byte with a
/// plain sum, as baseline-scan does; the payloads are random, so the sum together with
/// the first and last 8 bytes tells one event's payload from another's.
std::uint64_t event_digest(std::uint64_t stream, const v2_event& e) {
  std::uint64_t sum = 0, head = 0, tail = 0;
  for (unsigned char c : e.payload)
    sum += c;
  std::size_t n = std::min<std::size_t>(8, e.payload.size());
  std::memcpy(&head, e.payload.data(), n);
  std::memcpy(&tail, e.payload.data() + e.payload.size() - n, n);
  auto mix = [](std::uint64_t h, std::uint64_t v) {
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    return h * 0xBF58476D1CE4E5B9ull;
  };
  std::uint64_t h = mix(stream, e.seq);
  h = mix(h, e.position);
  h = mix(h, static_cast<std::uint64_t>(e.timestamp_ns));
  h = mix(h, std::uint64_t{e.type_id} << 32 | e.schema_version);
  h = mix(h, sum ^ std::uint64_t{e.payload.size()} << 40);
  h = mix(h, head);
  return mix(h, tail);
}

// ---- writing ---------------------------------------------------------------------------

/// Produces the events of one commit as (stream index, global event index), in the order
/// a writer received them; false when there are no more.
using workload = std::function<bool(std::vector<std::pair<std::uint64_t, std::uint64_t>>&)>;

/// What a write leaves for the reads to check against.
struct written {
  std::uint64_t events = 0;
  std::uint64_t digest = 0;
  std::vector<std::uint64_t> count_of; // per stream index
  double seconds = 0, flush_s = 0;
  std::uint64_t commits = 0, runs = 0;
};

constexpr std::uint32_t bench_type_id = 1;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

class v2_writer {
 public:
  v2_writer(const std::filesystem::path& dir, const options& o, bool deferred,
            std::uint64_t flush_events, std::string prefix, std::uint64_t streams)
    : o_(o), deferred_(deferred), flush_events_(flush_events), prefix_(std::move(prefix)),
      env_(open_env(dir, o, false)), id_of_(streams, 0) {
    out_.count_of.assign(streams, 0);
    txn t(env_.get(), 0);
    tb_ = open_tables(t.get(), true);
    unsigned char key[8];
    put_be64(key, bench_type_id);
    MDB_val k{8, key}, v{5, const_cast<char*>("bench")};
    check(mdb_put(t.get(), tb_.types, &k, &v, 0), "mdb_put types");
    t.commit();
  }

  /// One commit (one transaction, one fsync) of `events` (stream index, event index).
  void commit(std::vector<std::pair<std::uint64_t, std::uint64_t>>& events) {
    txn t(env_.get(), 0);
    group(t.get(), events);
    std::int64_t stamp = std::max(now_ns(), last_stamp_ + 1);
    std::uint64_t first_pos = next_pos_;
    deferred_ ? encode_log(t.get(), events, stamp) : encode_runs(t.get(), events, stamp);
    last_stamp_ = stamp + static_cast<std::int64_t>(events.size()) - 1;
    put_commit_key(t.get(), deferred_ ? tb_.log : tb_.commits, first_pos, commit_value_);
    t.commit();
    ++out_.commits;
    out_.events += events.size();
    pending_ += events.size();
    if (deferred_ && pending_ >= flush_events_) flush();
  }

  /// Clusters what is left of the log (layout-v2-log) and closes the environment.
  written close() {
    if (deferred_ && pending_ > 0) flush();
    env_.reset();
    return std::move(out_);
  }

 private:
  struct ref {
    std::uint64_t stream, first_seq, count;
    std::size_t begin; // index of its first event in the sorted commit
  };

  void group(MDB_txn* t, std::vector<std::pair<std::uint64_t, std::uint64_t>>& events);
  std::uint64_t stream_id(MDB_txn* t, std::uint64_t k);
  v2_event make_event(std::uint64_t event_index, std::uint64_t seq, std::uint64_t pos,
                      std::int64_t ts);
  void encode_runs(MDB_txn* t, const std::vector<std::pair<std::uint64_t, std::uint64_t>>& events,
                   std::int64_t stamp);
  void encode_log(MDB_txn* t, const std::vector<std::pair<std::uint64_t, std::uint64_t>>& events,
                  std::int64_t stamp);
  void put_run(MDB_txn* t, std::uint64_t stream, std::uint64_t first_seq);
  void put_commit_key(MDB_txn* t, MDB_dbi dbi, std::uint64_t first_pos, std::string& value);
  void flush();
  void read_log(MDB_txn* t, std::vector<v2_event>& all, std::vector<std::uint32_t>& stream_of);
  void cluster_stream(MDB_txn* t, std::uint64_t stream, const std::vector<v2_event>& all,
                      const std::uint32_t* first, const std::uint32_t* last);

  const options& o_;
  bool deferred_;
  std::uint64_t flush_events_;
  std::string prefix_;
  env_ptr env_;
  tables tb_{};
  std::vector<std::uint64_t> id_of_;       // stream index → id (0: not yet)
  std::vector<std::uint64_t> index_of_{0}; // stream id → stream index
  std::vector<std::uint64_t> head_{0};     // stream id → last seq written
  std::vector<ref> refs_;
  run_builder run_;
  std::string payload_, value_, commit_value_;
  std::uint64_t next_pos_ = 1, pending_ = 0;
  std::uint32_t gen_ = 0; // the deferred pass being written (layout-v2: always 0)
  run_key last_run_key_{0, 0, 0};
  std::int64_t last_stamp_ = 0;
  written out_;
};

std::uint64_t v2_writer::stream_id(MDB_txn* t, std::uint64_t k) {
  if (id_of_[k] != 0) return id_of_[k];
  std::uint64_t id = index_of_.size();
  id_of_[k] = id;
  index_of_.push_back(k);
  head_.push_back(0);
  std::string name = prefix_ + std::to_string(k);
  unsigned char idb[8];
  put_be64(idb, id);
  MDB_val nk{name.size(), name.data()}, iv{8, idb};
  check(mdb_put(t, tb_.streams, &nk, &iv, MDB_NOOVERWRITE), "mdb_put streams " + name);
  check(mdb_put(t, tb_.stream_names, &iv, &nk, MDB_APPEND), "mdb_put stream_names " + name);
  return id;
}

/// Replaces stream indexes by ids, orders the commit by stream id (a commit's streams are
/// concurrent, so the writer may order them: the refs then delta-encode in a byte or two)
/// and cuts it into refs.
void v2_writer::group(MDB_txn* t, std::vector<std::pair<std::uint64_t, std::uint64_t>>& events) {
  for (auto& e : events)
    e.first = stream_id(t, e.first);
  std::stable_sort(events.begin(), events.end(), [](const auto& a, const auto& b) {
    return a.first < b.first;
  });
  refs_.clear();
  for (std::size_t i = 0; i < events.size(); ++i) {
    std::uint64_t s = events[i].first;
    if (refs_.empty() || refs_.back().stream != s) refs_.push_back({s, head_[s] + 1, 0, i});
    ++refs_.back().count;
  }
  // layout-v2: the commits value; layout-v2-log: the log value (no generation yet).
  commit_value_.assign(4, '\0');
  if (!deferred_) put_varint(commit_value_, gen_);
  put_varint(commit_value_, refs_.size());
}

v2_event v2_writer::make_event(std::uint64_t event_index, std::uint64_t seq, std::uint64_t pos,
                               std::int64_t ts) {
  fill_payload(payload_, event_index, o_.payload_bytes);
  v2_event e;
  e.seq = seq;
  e.position = pos;
  e.timestamp_ns = ts;
  e.type_id = bench_type_id;
  e.payload = payload_;
  return e;
}

void v2_writer::encode_runs(MDB_txn* t,
                            const std::vector<std::pair<std::uint64_t, std::uint64_t>>& events,
                            std::int64_t stamp) {
  std::uint64_t prev_stream = 0;
  for (const auto& r : refs_) {
    put_varint(commit_value_, r.stream - prev_stream);
    put_varint(commit_value_, r.first_seq);
    put_varint(commit_value_, r.count);
    prev_stream = r.stream;
    run_.reset(0);
    std::uint64_t run_first = r.first_seq;
    for (std::uint64_t k = 0; k < r.count; ++k) {
      std::uint64_t i = r.begin + k, pos = next_pos_++;
      v2_event e = make_event(events[i].second, r.first_seq + k, pos, stamp + std::int64_t(i));
      if (run_.count() > 0 && run_.bytes() + e.payload.size() + 8 > run_body_bytes_max()) {
        put_run(t, r.stream, run_first);
        run_first = e.seq;
        run_.reset(0);
      }
      run_.add(e);
      out_.digest += event_digest(r.stream, e);
    }
    put_run(t, r.stream, run_first);
    head_[r.stream] += r.count;
    out_.count_of[index_of_[r.stream]] += r.count;
  }
}

void v2_writer::put_run(MDB_txn* t, std::uint64_t stream, std::uint64_t first_seq) {
  run_.value(value_);
  run_key key(gen_, stream, first_seq);
  MDB_val k = key.val(), v{value_.size(), value_.data()};
  // A key beyond the table's last one goes in with MDB_APPEND: LMDB then starts a new
  // page instead of splitting the last one in half (a plain insert at the end leaves
  // pages half full).
  bool beyond = std::memcmp(key.bytes, last_run_key_.bytes, run_key::size) > 0;
  unsigned flags = beyond ? MDB_APPEND : MDB_NOOVERWRITE;
  if (int rc = mdb_put(t, tb_.runs, &k, &v, flags); rc != MDB_SUCCESS)
    check(rc, "mdb_put runs (stream id " + std::to_string(stream) + ", seq " +
                std::to_string(first_seq) + ")");
  if (beyond) last_run_key_ = key;
  ++out_.runs;
}

void v2_writer::encode_log(MDB_txn*,
                           const std::vector<std::pair<std::uint64_t, std::uint64_t>>& events,
                           std::int64_t stamp) {
  std::uint64_t prev_stream = 0;
  for (const auto& r : refs_) {
    put_varint(commit_value_, r.stream - prev_stream);
    put_varint(commit_value_, r.first_seq);
    prev_stream = r.stream;
    run_.reset(0);
    for (std::uint64_t k = 0; k < r.count; ++k) {
      std::uint64_t i = r.begin + k;
      v2_event e =
        make_event(events[i].second, r.first_seq + k, next_pos_++, stamp + std::int64_t(i));
      run_.add(e);
      out_.digest += event_digest(r.stream, e);
    }
    run_.body(commit_value_);
    head_[r.stream] += r.count;
    out_.count_of[index_of_[r.stream]] += r.count;
  }
}

void v2_writer::put_commit_key(MDB_txn* t, MDB_dbi dbi, std::uint64_t first_pos,
                               std::string& value) {
  put_le32(value, 0, crc32c(std::string_view(value).substr(4)));
  unsigned char key[8];
  put_be64(key, first_pos);
  MDB_val k{8, key}, v{value.size(), value.data()};
  if (int rc = mdb_put(t, dbi, &k, &v, MDB_APPEND); rc != MDB_SUCCESS)
    check(rc, "mdb_put position " + std::to_string(first_pos));
}

/// The deferred pass of layout-v2-log: reads the log (checksums, every field), writes
/// each stream's events of the window as runs in key order and each commit's refs into
/// `commits`, then drops the log, all in one transaction. (A real journal would keep the
/// log until the Kafka bridge has read it; the bench drops it at once.)
void v2_writer::flush() {
  stopwatch sw;
  ++gen_;
  txn t(env_.get(), 0);
  // The window's events in log order (views into the log's pages, which stay put until
  // the drop below), then grouped by stream with a counting sort.
  std::vector<v2_event> all;
  std::vector<std::uint32_t> stream_of;
  all.reserve(pending_);
  stream_of.reserve(pending_);
  read_log(t.get(), all, stream_of);
  std::vector<std::size_t> start(index_of_.size() + 1, 0);
  for (auto s : stream_of)
    ++start[s + 1];
  for (std::size_t s = 1; s < start.size(); ++s)
    start[s] += start[s - 1];
  std::vector<std::uint32_t> order(all.size());
  {
    std::vector<std::size_t> at(start.begin(), start.end() - 1);
    for (std::uint32_t i = 0; i < all.size(); ++i)
      order[at[stream_of[i]]++] = i;
  }
  for (std::uint64_t s = 1; s + 1 < start.size(); ++s)
    if (start[s] < start[s + 1])
      cluster_stream(t.get(), s, all, &order[start[s]], &order[start[s + 1]]);
  check(mdb_drop(t.get(), tb_.log, 0), "mdb_drop log");
  t.commit();
  pending_ = 0;
  out_.flush_s += sw.seconds();
}

/// Decodes every log value into `all` (and each event's stream id into `stream_of`), and
/// writes each commit's refs into `commits`.
void v2_writer::read_log(MDB_txn* t, std::vector<v2_event>& all,
                         std::vector<std::uint32_t>& stream_of) {
  cursor c(t, tb_.log);
  MDB_val k, v;
  run_decoder d;
  for (int rc = mdb_cursor_get(c.get(), &k, &v, MDB_FIRST); rc != MDB_NOTFOUND;
       rc = mdb_cursor_get(c.get(), &k, &v, MDB_NEXT)) {
    check(rc, "mdb_cursor_get log");
    std::uint64_t pos = get_be64(k.mv_data);
    auto what = [pos] {
      return "log record at position " + std::to_string(pos);
    };
    byte_reader r(checked_body(v, what));
    std::uint64_t nrefs = 0, stream = 0, delta = 0, first_seq = 0;
    if (!r.varint(nrefs)) fail("layout-v2: " + what() + ": bad header");
    commit_value_.assign(4, '\0');
    put_varint(commit_value_, gen_);
    put_varint(commit_value_, nrefs);
    for (std::uint64_t n = 0; n < nrefs; ++n) {
      if (!r.varint(delta) || !r.varint(first_seq) || stream + delta >= index_of_.size())
        fail("layout-v2: " + what() + ": bad ref");
      stream += delta;
      d.open(r, stream, first_seq, "log");
      put_varint(commit_value_, delta);
      put_varint(commit_value_, first_seq);
      put_varint(commit_value_, d.remaining());
      while (d.remaining() > 0) {
        d.next(all.emplace_back());
        stream_of.push_back(static_cast<std::uint32_t>(stream));
      }
    }
    if (!r.at_end()) fail("layout-v2: " + what() + ": bytes after the last ref");
    put_commit_key(t, tb_.commits, pos, commit_value_);
  }
}

/// Writes the window's events of `stream` (`all[*first]`, … in seq order) as runs.
void v2_writer::cluster_stream(MDB_txn* t, std::uint64_t stream, const std::vector<v2_event>& all,
                               const std::uint32_t* first, const std::uint32_t* last) {
  run_.reset(0);
  std::uint64_t run_first = all[*first].seq;
  for (; first != last; ++first) {
    const v2_event& e = all[*first];
    if (run_.count() > 0 && run_.bytes() + e.payload.size() + 12 > run_body_bytes_max()) {
      put_run(t, stream, run_first);
      run_first = e.seq;
      run_.reset(0);
    }
    run_.add(e);
  }
  put_run(t, stream, run_first);
}

/// Writes `w` through a v2_writer, one commit per batch; timed from the first commit to
/// after close (the deferred pass included).
written write_v2(const std::filesystem::path& dir, const options& o, bool deferred,
                 const std::string& prefix, std::uint64_t streams, const workload& w) {
  std::uint64_t flush_events = 1'000'000;
  if (const char* s = std::getenv("STRATA_BENCH_V2_FLUSH_EVENTS"))
    flush_events = std::strtoull(s, nullptr, 10);
  if (flush_events == 0) fail("layout-v2: STRATA_BENCH_V2_FLUSH_EVENTS must be > 0");
  v2_writer writer(dir, o, deferred, flush_events, prefix, streams);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> batch;
  stopwatch sw;
  while (w(batch))
    writer.commit(batch);
  written out = writer.close();
  out.seconds = sw.seconds();
  return out;
}

/// N events over `o.streams` streams, each picking its stream at random (the journal
/// scenario's seed and distribution), `o.batch_events` per commit.
workload random_workload(const options& o) {
  auto rng = std::make_shared<std::mt19937_64>(42);
  auto next = std::make_shared<std::uint64_t>(0);
  return [&o, rng, next](std::vector<std::pair<std::uint64_t, std::uint64_t>>& batch) {
    std::uniform_int_distribution<std::uint64_t> pick(0, o.streams - 1);
    batch.clear();
    std::uint64_t end = std::min(o.events, *next + o.batch_events);
    for (; *next < end; ++*next)
      batch.emplace_back(pick(*rng), *next);
    return !batch.empty();
  };
}

/// `streams` × `per_stream` events, stream after stream (recover's shape: each
/// entity's history written together), `o.batch_events` per commit.
workload sequential_workload(const options& o, std::uint64_t streams, std::uint64_t per_stream) {
  auto next = std::make_shared<std::uint64_t>(0);
  return
    [&o, streams, per_stream, next](std::vector<std::pair<std::uint64_t, std::uint64_t>>& batch) {
      batch.clear();
      std::uint64_t end = std::min(streams * per_stream, *next + o.batch_events);
      for (; *next < end; ++*next)
        batch.emplace_back(*next / per_stream, *next);
      return !batch.empty();
    };
}

// ---- reading ---------------------------------------------------------------------------

struct read_outcome {
  std::uint64_t events = 0;
  std::uint64_t digest = 0;
  double seconds = 0;
  double cpu_s = 0; // this thread's CPU time during the read (less noisy on a busy machine)
};

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

/// The runs of stream `id` in generation `gen` from `next_seq` on, decoded (checksums,
/// every field) into `digest`; returns the seq after the last event read.
std::uint64_t read_generation(MDB_cursor* c, std::uint32_t gen, std::uint64_t id,
                              const std::string& name, std::uint64_t next_seq,
                              std::uint64_t& digest) {
  run_key key(gen, id, next_seq);
  MDB_val k = key.val(), v;
  v2_event e;
  run_decoder d;
  for (int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc != MDB_NOTFOUND;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    check(rc, "mdb_cursor_get runs");
    if (k.mv_size != run_key::size)
      fail("layout-v2: runs key of " + std::to_string(k.mv_size) + " bytes");
    if (run_key::gen_of(k) != gen || run_key::stream_of(k) != id) break;
    std::uint64_t first = run_key::seq_of(k);
    if (first != next_seq)
      fail("layout-v2: stream " + name + ": a run starts at seq " + std::to_string(first) +
           ", expected " + std::to_string(next_seq));
    byte_reader r(checked_body(v, [&] {
      return "run of stream " + name + " at seq " + std::to_string(first);
    }));
    d.open(r, id, first, "runs");
    while (d.remaining() > 0) {
      d.next(e);
      digest += event_digest(id, e);
    }
    if (!r.at_end())
      fail("layout-v2: run of stream " + name + " at seq " + std::to_string(first) +
           ": bytes after its events");
    next_seq = e.seq + 1;
  }
  return next_seq;
}

/// Reads one stream the way recovery would: its id from `streams`, then its runs in key
/// order, one seek per generation 0..`last_gen`, checksums verified, every event
/// decoded, seqs checked gap-free. Returns the number of events.
std::uint64_t read_stream(MDB_txn* t, const tables& tb, MDB_cursor* c, const std::string& name,
                          std::uint32_t last_gen, std::uint64_t& digest) {
  MDB_val nk{name.size(), const_cast<char*>(name.data())}, iv;
  if (int rc = mdb_get(t, tb.streams, &nk, &iv); rc != MDB_SUCCESS)
    check(rc, "mdb_get streams " + name);
  if (iv.mv_size != 8) fail("layout-v2: stream id of " + name + " is not 8 bytes");
  std::uint64_t id = get_be64(iv.mv_data), next_seq = 1;
  for (std::uint32_t gen = 0; gen <= last_gen; ++gen)
    next_seq = read_generation(c, gen, id, name, next_seq, digest);
  return next_seq - 1;
}

/// The generation of the last run (what a journal would keep in its meta table).
std::uint32_t last_generation(MDB_cursor* c) {
  MDB_val k, v;
  int rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
  if (rc == MDB_NOTFOUND) return 0;
  check(rc, "mdb_cursor_get runs");
  return run_key::gen_of(k);
}

/// Every stream read back one by one (a read transaction each, as recovery takes), its
/// name looked up first; checks each stream's count, the total and the digest.
read_outcome read_all_streams(const std::filesystem::path& dir, const options& o,
                              const std::string& prefix, const written& w) {
  auto env = open_env(dir, o, true);
  std::vector<std::string> names(w.count_of.size());
  for (std::uint64_t k = 0; k < names.size(); ++k)
    names[k] = prefix + std::to_string(k);
  tables tb = open_tables(env.get());
  txn t(env.get(), MDB_RDONLY);
  cursor c(t.get(), tb.runs);
  std::uint32_t last_gen = last_generation(c.get());
  read_outcome out;
  double cpu0 = thread_cpu_seconds();
  stopwatch sw;
  for (std::uint64_t k = 0; k < names.size(); ++k) {
    mdb_txn_reset(t.get());
    check(mdb_txn_renew(t.get()), "mdb_txn_renew");
    check(mdb_cursor_renew(t.get(), c.get()), "mdb_cursor_renew");
    std::uint64_t n =
      w.count_of[k] == 0 ? 0 : read_stream(t.get(), tb, c.get(), names[k], last_gen, out.digest);
    if (n != w.count_of[k])
      fail("layout-v2: stream " + names[k] + " read back " + std::to_string(n) + " events, " +
           std::to_string(w.count_of[k]) + " were written");
    out.events += n;
  }
  out.seconds = sw.seconds();
  out.cpu_s = thread_cpu_seconds() - cpu0;
  if (out.digest != w.digest)
    fail("layout-v2: the events read back per stream differ from those written (digest)");
  return out;
}

/// A global-order reader's view of one stream: the run it is in and the next seq.
struct stream_state {
  byte_reader r;
  run_decoder d;
  std::uint64_t next_seq = 1;
  std::string_view name;
};

/// Loads the run of `stream` that starts at `st.next_seq` (runs are contiguous, so the
/// one after the last is found by its exact key).
void load_run(MDB_txn* t, const tables& tb, MDB_cursor* c, std::uint32_t gen, std::uint64_t stream,
              stream_state& st) {
  if (st.name.empty()) {
    unsigned char idb[8];
    put_be64(idb, stream);
    MDB_val ik{8, idb}, nv;
    check(mdb_get(t, tb.stream_names, &ik, &nv), "mdb_get stream_names");
    st.name = view(nv);
  }
  run_key key(gen, stream, st.next_seq);
  MDB_val k = key.val(), v;
  if (int rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY); rc != MDB_SUCCESS)
    check(rc, "run of stream " + std::string(st.name) + " at seq " + std::to_string(st.next_seq));
  st.r = byte_reader(checked_body(v, [&] {
    return "run of stream " + std::string(st.name) + " at seq " + std::to_string(st.next_seq);
  }));
  st.d.open(st.r, stream, st.next_seq, "runs");
}

/// The events of one `commits` value, in position order from `pos`.
void read_commit(MDB_txn* t, const tables& tb, MDB_cursor* c, std::string_view body,
                 std::uint64_t& pos, std::vector<stream_state>& states, read_outcome& out) {
  byte_reader r(body);
  std::uint64_t gen = 0, nrefs = 0, stream = 0, delta = 0, first_seq = 0, count = 0;
  auto bad = [&](const char* why) {
    fail("layout-v2: commit at position " + std::to_string(pos) + ": " + why);
  };
  if (!r.varint(gen) || gen > UINT32_MAX || !r.varint(nrefs)) bad("bad header");
  v2_event e;
  for (std::uint64_t n = 0; n < nrefs; ++n) {
    if (!r.varint(delta) || !r.varint(first_seq) || !r.varint(count)) bad("bad ref");
    stream += delta;
    if (stream == 0 || stream >= states.size()) bad("ref to an unknown stream id");
    auto& st = states[stream];
    if (first_seq != st.next_seq) bad("a ref skips seqs of its stream");
    for (std::uint64_t k = 0; k < count; ++k) {
      if (st.d.remaining() == 0) load_run(t, tb, c, static_cast<std::uint32_t>(gen), stream, st);
      st.d.next(e);
      if (e.position != pos) bad("an event's position differs from its place in the commit");
      if (st.d.remaining() == 0 && !st.r.at_end()) bad("a run has bytes after its events");
      out.digest += event_digest(stream, e);
      ++st.next_seq;
      ++pos;
      ++out.events;
    }
  }
  if (!r.at_end()) bad("bytes after the last ref");
}

/// The whole journal in position order (what the Kafka bridge and projections read):
/// `commits` in key order, each ref's events from the stream's current run.
read_outcome read_global(const std::filesystem::path& dir, const options& o, const written& w) {
  auto env = open_env(dir, o, true);
  tables tb = open_tables(env.get());
  txn t(env.get(), MDB_RDONLY);
  MDB_stat names_stat;
  check(mdb_stat(t.get(), tb.stream_names, &names_stat), "mdb_stat stream_names");
  read_outcome out;
  double cpu0 = thread_cpu_seconds();
  stopwatch sw;
  std::vector<stream_state> states(names_stat.ms_entries + 1);
  cursor commits(t.get(), tb.commits), runs(t.get(), tb.runs);
  std::uint64_t pos = 1;
  MDB_val k, v;
  for (int rc = mdb_cursor_get(commits.get(), &k, &v, MDB_FIRST); rc != MDB_NOTFOUND;
       rc = mdb_cursor_get(commits.get(), &k, &v, MDB_NEXT)) {
    check(rc, "mdb_cursor_get commits");
    if (k.mv_size != 8 || get_be64(k.mv_data) != pos)
      fail("layout-v2: commits: expected a commit at position " + std::to_string(pos));
    auto body = checked_body(v, [&] {
      return "commit at position " + std::to_string(pos);
    });
    read_commit(t.get(), tb, runs.get(), body, pos, states, out);
  }
  out.seconds = sw.seconds();
  out.cpu_s = thread_cpu_seconds() - cpu0;
  if (out.events != w.events || out.digest != w.digest)
    fail("layout-v2: the global read gave " + std::to_string(out.events) + " events, " +
         std::to_string(w.events) + " were written" +
         (out.digest != w.digest ? " (and they differ: digest)" : ""));
  return out;
}

// ---- bytes at rest ---------------------------------------------------------------------

/// Bytes per event of the tables (their B-tree and overflow pages), of the file's used
/// part (up to the last page written, freed pages included), and per table.
void add_bytes(result& r, const std::filesystem::path& dir, const options& o, std::uint64_t events,
               const std::string& prefix) {
  auto env = open_env(dir, o, true);
  MDB_envinfo info;
  MDB_stat est;
  check(mdb_env_info(env.get(), &info), "mdb_env_info");
  check(mdb_env_stat(env.get(), &est), "mdb_env_stat");
  txn t(env.get(), MDB_RDONLY);
  auto pages = [&](MDB_dbi dbi) {
    MDB_stat s;
    check(mdb_stat(t.get(), dbi, &s), "mdb_stat");
    return s.ms_branch_pages + s.ms_leaf_pages + s.ms_overflow_pages;
  };
  double per = double(est.ms_psize) / double(events);
  std::uint64_t total = pages(1); // MAIN_DBI: the table of tables
  std::string by_table = "{";
  for (const char* name : table_names) {
    MDB_dbi dbi;
    check(mdb_dbi_open(t.get(), name, 0, &dbi), std::string("mdb_dbi_open ") + name);
    std::uint64_t p = pages(dbi);
    total += p;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s\"%s\":%.2f", by_table.size() > 1 ? "," : "", name,
                  double(p) * per);
    by_table += buf;
  }
  std::uint64_t file_pages = info.me_last_pgno + 1;
  r.add(prefix + "at_rest_bytes_per_event", double(total) * per)
    .add(prefix + "at_rest_overhead_bytes_per_event", double(total) * per - double(o.payload_bytes))
    .add(prefix + "file_bytes_per_event", double(file_pages) * per)
    .add(prefix + "free_bytes_per_event",
         double(file_pages - std::min(file_pages, total + 2)) * per)
    .add_raw(prefix + "table_bytes_per_event", by_table + "}");
}

// ---- the scenarios ---------------------------------------------------------------------

double ratio_vs_scan(const context& ctx, double events_per_s) {
  const result* scan = ctx.result_of("baseline-scan");
  return scan && scan->events_per_s() > 0 ? events_per_s / scan->events_per_s() : 0.0;
}

/// The read's rate and its ratio to baseline-scan of the same round (also as a progress
/// line: with --repeat the printed line is the median round by write rate).
void add_reads(result& r, const context& ctx, const std::string& prefix, const read_outcome& rd) {
  double rate = double(rd.events) / rd.seconds;
  r.add(prefix + "read_per_s", rate)
    .add(prefix + "read_cpu_ns_per_event", rd.cpu_s * 1e9 / double(rd.events));
  double q = ratio_vs_scan(ctx, rate);
  if (q > 0) r.add(prefix + "read_ratio_vs_baseline_scan", q);
  progress("  " + prefix + "read: " + std::to_string(static_cast<std::uint64_t>(rate)) +
           " events/s" + (q > 0 ? ", " + std::to_string(q) + " x baseline-scan" : ""));
}

result run_layout(context& ctx, bool deferred) {
  const options& o = ctx.opts();
  std::string name = deferred ? "layout-v2-log" : "layout-v2";
  auto dir = ctx.fresh_dir(name);
  written w = write_v2(dir, o, deferred, "stream-", o.streams, random_workload(o));
  result r;
  r.events = w.events;
  r.seconds = w.seconds;
  r.add("streams", o.streams)
    .add("batch", o.batch_events)
    .add("payload_bytes", static_cast<std::uint64_t>(o.payload_bytes))
    .add("sync", o.nosync ? "nosync" : "fsync")
    .add("runs", w.runs)
    .add("events_per_run", double(w.events) / double(w.runs))
    .add("flush_s", w.flush_s);
  add_bytes(r, dir, o, w.events, "");
  add_reads(r, ctx, "stream_", read_all_streams(dir, o, "stream-", w));
  add_reads(r, ctx, "global_", read_global(dir, o, w));

  std::uint64_t many = o.quick ? 10'000 : 100'000;
  progress(name + ": " + std::to_string(many) + " streams x 10 events (recover's shape)");
  auto dir2 = ctx.fresh_dir(name + "-many");
  written w2 = write_v2(dir2, o, deferred, "account:acct-", many, sequential_workload(o, many, 10));
  r.add("many_streams", many).add("many_write_per_s", double(w2.events) / w2.seconds);
  add_bytes(r, dir2, o, w2.events, "many_");
  add_reads(r, ctx, "many_stream_", read_all_streams(dir2, o, "account:acct-", w2));
  return r;
}

const registrar reg_direct{
  {"layout-v2",
   "proposed strata-journal/2 layout in raw LMDB: the journal's N events over 10k streams, "
   "each commit's runs written straight into the stream-clustered table; bytes at rest, "
   "per-stream, 100k x 10 and global-order reads",
   45, "baseline-lmdb", false, [](context& ctx) {
     return run_layout(ctx, false);
   }}};
const registrar reg_log{
  {"layout-v2-log",
   "as layout-v2, but each commit appended as one log value and clustered into runs by a "
   "deferred pass (every 1M events and at close, included in the time)",
   46, "baseline-lmdb", false, [](context& ctx) {
     return run_layout(ctx, true);
   }}};

} // namespace
} // namespace strata::bench
