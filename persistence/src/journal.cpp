#include "strata/persistence/journal.hpp"

#include "envelope_codec.hpp"
#include "journal_impl.hpp"
#include "strata/persistence/codec.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <future>
#include <mutex>
#include <unordered_set>

namespace strata::persistence {

using detail::from_mdb;
using detail::get_be64;
using detail::key128;
using detail::key64;

namespace {

constexpr std::string_view format_key = "format";
constexpr std::string_view format_value = "strata-journal/1";
constexpr std::string_view next_stream_key = "next_stream_id";
constexpr std::string_view indexed_through_key = "indexed_through";
constexpr std::string_view position_floor_key = "position_floor";
constexpr std::size_t max_pid_bytes = 255; // event.hpp: 1..255 bytes (LMDB keys <= 511)
constexpr std::size_t chunk_max = 128;     // positions per index entry: stays in-page
constexpr std::size_t record_header = 4;   // CRC32C of the envelope, little-endian

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::uint32_t get_le32(const char* p) noexcept {
  auto u = reinterpret_cast<const unsigned char*>(p);
  return std::uint32_t{u[0]} | std::uint32_t{u[1]} << 8 | std::uint32_t{u[2]} << 16 |
         std::uint32_t{u[3]} << 24;
}

std::string where(std::uint64_t pos) { return "position " + std::to_string(pos); }

/// A stored record is [CRC32C of the rest, u32 little-endian][packed envelope]. Checks
/// the framing, unpacks into `words` and returns ok, or a corrupt status that names the
/// position and (if known or decodable) the stream.
status unframe(std::uint64_t pos, std::string_view value, std::string_view pid_hint,
               std::vector<std::uint64_t>& words) {
  auto fail = [&](const std::string& why) {
    std::string pid(pid_hint);
    if (pid.empty() && value.size() > record_header &&
        detail::unpack(value.substr(record_header), words, {}).ok())
      pid = detail::peek_persistence_id(
        {reinterpret_cast<const char*>(words.data()), words.size() * 8});
    return status{errc::corrupt,
                  "event at position " + std::to_string(pos) + " of stream '" +
                    (pid.empty() ? std::string("<unknown>") : pid) + "' is corrupt (" + why +
                    "); restore the journal from a backup or from Kafka, and run `strata"
                    " journal verify` to check the whole journal"};
  };
  if (value.size() <= record_header) return fail("record truncated");
  auto packed = value.substr(record_header);
  if (get_le32(value.data()) != crc32c(packed)) return fail("record checksum mismatch");
  if (auto st = detail::unpack(packed, words, where(pos)); !st.ok()) return fail(st.message());
  return {};
}

/// Decodes the record stored at `pos` into a view (valid until the next decode on this
/// thread), and checks it belongs where the index says (when `pid` is given).
status decode_view_at(std::uint64_t pos, std::string_view value, std::string_view pid,
                      std::uint64_t seq, event_view& out) {
  thread_local std::vector<std::uint64_t> words;
  if (auto st = unframe(pos, value, pid, words); !st.ok()) return st;
  if (auto st = detail::decode_envelope_view(words.data(), words.size(), where(pos), out); !st.ok())
    return st;
  if (out.position != pos || (!pid.empty() && (out.persistence_id != pid || out.seq != seq)))
    return {errc::corrupt, "event at position " + std::to_string(pos) + " of stream '" +
                             std::string(pid.empty() ? out.persistence_id : pid) + "' (seq " +
                             std::to_string(seq) + ") holds stream '" +
                             std::string(out.persistence_id) + "' seq " + std::to_string(out.seq) +
                             " position " + std::to_string(out.position) +
                             "; the index disagrees with the log: run `strata journal verify`"};
  return {};
}

/// decode_view_at, copied into an owning record.
status decode_at(std::uint64_t pos, std::string_view value, std::string_view pid, std::uint64_t seq,
                 event_record& out) {
  thread_local event_view v;
  auto st = decode_view_at(pos, value, pid, seq, v);
  if (st.ok()) out = v.to_record();
  return st;
}

} // namespace

// ---- impl helpers --------------------------------------------------------------------

status journal::impl::lookup_stored(const read_txn& txn, std::string_view pid, std::uint64_t& id,
                                    std::uint64_t& head) const {
  id = 0;
  head = 0;
  auto v = txn.get(streams, pid);
  if (!v) return v.error();
  if (!*v) return {};
  if ((*v)->size() != 8)
    return {errc::corrupt, "stream table entry of '" + std::string(pid) + "' is damaged"};
  id = get_be64((*v)->data());
  // Head = last seq of the stream's last index entry.
  status st;
  detail::cursor c(txn.native(), index.dbi, st);
  if (!c) return st;
  key128 probe(id + 1, 0);
  MDB_val k = detail::to_val(probe.view()), d;
  int rc = c.get(k, d, MDB_SET_RANGE);
  rc = rc == 0 ? c.get(k, d, MDB_PREV) : c.get(k, d, MDB_LAST);
  if (rc == 0 && k.mv_size == 16 && get_be64(static_cast<const char*>(k.mv_data)) == id) {
    auto first = get_be64(static_cast<const char*>(k.mv_data) + 8);
    head = first + index_count(detail::to_view(d)) - 1;
  } else if (rc != 0 && rc != MDB_NOTFOUND) {
    return from_mdb(rc, "reading the index of stream '" + std::string(pid) + "'");
  }
  return {};
}

result<std::uint64_t> journal::impl::stream_id(std::string_view pid) const {
  {
    std::shared_lock lk(mem);
    if (auto* c = cached(pid)) return c->id;
  }
  std::uint64_t id = 0, head = 0;
  auto st = env->read([&](read_txn& txn) {
    return lookup_stored(txn, pid, id, head);
  });
  if (!st.ok()) return st;
  return id;
}

// ---- open / close ---------------------------------------------------------------------

journal::journal(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

journal::~journal() {
  if (impl_ && !impl_->closed) (void)close();
}

result<std::unique_ptr<journal>> journal::open(const journal_options& opts) {
  if (opts.index_flush_events == 0 || opts.max_batch_events == 0 || opts.max_pipelined_batches == 0)
    return status{errc::invalid_argument, "index_flush_events, max_batch_events and"
                                          " max_pipelined_batches must be at least 1"};
  auto p = std::make_unique<impl>();
  p->opts = opts;
  auto env = environment::open(opts.env);
  if (!env) return env.error();
  p->env = std::move(*env);
  struct {
    const char* name;
    table* t;
  } tables[] = {{"events", &p->events},      {"index", &p->index},     {"streams", &p->streams},
                {"stream_names", &p->names}, {"snapshots", &p->snaps}, {"offsets", &p->offsets_tbl},
                {"meta", &p->meta}};
  for (auto& t : tables) {
    auto r = p->env->open_table(t.name);
    if (!r) return r.error();
    *t.t = *r;
  }
  p->offsets_api = offset_store(p->env.get(), p->offsets_tbl);

  // Format check and meta.
  std::uint64_t last_key = 0, floor = 0;
  auto st = p->env->write([&](write_txn& txn) -> status {
    auto f = txn.get(p->meta, format_key);
    if (!f) return f.error();
    if (!*f) {
      auto any = txn.last(p->events);
      if (!any) return any.error();
      if (*any)
        return {errc::incompatible, "'" + opts.env.path +
                                      "' holds events but no strata format marker; it was"
                                      " not written by strata"};
      return txn.put(p->meta, format_key, format_value);
    }
    if (**f != format_value)
      return {errc::incompatible, "'" + opts.env.path + "' has journal format '" +
                                    std::string(**f) + "', this build reads '" +
                                    std::string(format_value) + "'"};
    return {};
  });
  if (!st.ok()) return st;
  st = p->env->read([&](read_txn& txn) -> status {
    auto get_u64 = [&](std::string_view key, std::uint64_t& out) -> status {
      auto v = txn.get(p->meta, key);
      if (!v) return v.error();
      if (*v && (*v)->size() == 8) out = get_be64((*v)->data());
      return {};
    };
    if (auto s = get_u64(next_stream_key, p->next_stream_id); !s.ok()) return s;
    if (auto s = get_u64(indexed_through_key, p->indexed_through); !s.ok()) return s;
    if (auto s = get_u64(position_floor_key, floor); !s.ok()) return s;
    auto last = txn.last(p->events);
    if (!last) return last.error();
    if (*last) {
      last_key = get_be64((*last)->first.data());
      // Timestamps continue from the newest event, even if the clock went back.
      event_view v;
      if (auto s = decode_view_at(last_key, (*last)->second, {}, 0, v); !s.ok()) return s;
      p->last_stamp_ns = v.timestamp_ns;
    }
    return {};
  });
  if (!st.ok()) return st;
  if (p->next_stream_id == 0) p->next_stream_id = 1;
  p->last_position = std::max(last_key, floor);

  // Re-index the tail of the log that was committed after the last index flush.
  st = p->env->read([&](read_txn& txn) -> status {
    status cst;
    detail::cursor c(txn.native(), p->events.dbi, cst);
    if (!c) return cst;
    key64 from(p->indexed_through + 1);
    MDB_val k = detail::to_val(from.view()), v;
    int rc = c.get(k, v, MDB_SET_RANGE);
    for (; rc == 0; rc = c.get(k, v, MDB_NEXT)) {
      auto pos = get_be64(static_cast<const char*>(k.mv_data));
      event_record rec;
      if (auto s = decode_at(pos, detail::to_view(v), {}, 0, rec); !s.ok()) return s;
      auto* r = &rec;
      auto* known = p->cached(r->persistence_id);
      bool fresh = known == nullptr;
      auto& ss = fresh ? p->insert(r->persistence_id) : *known;
      if (fresh) {
        if (auto s = p->lookup_stored(txn, r->persistence_id, ss.id, ss.head); !s.ok()) return s;
        if (ss.id == 0)
          return {errc::corrupt, "event at position " + std::to_string(pos) + " of stream '" +
                                   r->persistence_id + "' has no stream table entry"};
        ss.indexed_head = ss.head;
      }
      if (r->seq != ss.head + 1)
        return {errc::corrupt, "event at position " + std::to_string(pos) + " of stream '" +
                                 r->persistence_id + "' has seq " + std::to_string(r->seq) +
                                 " but the stream's head is " + std::to_string(ss.head)};
      ss.head = r->seq;
      ss.pending.push_back(pos);
      ++p->pending_count;
    }
    if (rc != MDB_NOTFOUND) return from_mdb(rc, "re-indexing the journal tail");
    return {};
  });
  if (!st.ok()) return st;
  p->cache.for_each([](impl::stream_state& ss) {
    ss.planned_head = ss.head;
    ss.stored = true;
  });
  p->planned_position = p->last_position.load();
  p->planned_stream_id = p->next_stream_id;
  auto* raw = p.get();
  p->committer = std::thread([raw] {
    raw->commit_loop();
  });
  return std::unique_ptr<journal>(new journal(std::move(p)));
}

result<std::unique_ptr<journal>> journal::open_read_only(const journal_options&) {
  return status{errc::internal, "journal::open_read_only is not implemented yet"};
}

status journal::close() {
  auto& m = *impl_;
  if (m.closed) return {};
  auto st = flush_index(); // drains the pipeline first
  if (st.ok() && m.opts.env.sync == sync_mode::sync) st = m.env->sync();
  {
    std::lock_guard lk(m.q_mu);
    m.stopping = true;
  }
  m.q_cv.notify_all();
  if (m.committer.joinable()) m.committer.join();
  std::unique_lock lk(m.mem);
  m.closed = true;
  return st;
}

// ---- append ---------------------------------------------------------------------------

namespace {

/// Writes the index entries for (stream id, first seq, positions), split into chunks.
status put_index_runs(write_txn& txn, table index, std::uint64_t id, std::uint64_t first_seq,
                      const std::uint64_t* pos, std::size_t n, std::string& buf) {
  while (n > 0) {
    std::size_t take = std::min(n, chunk_max);
    buf.resize(take * 8);
    for (std::size_t i = 0; i < take; ++i)
      detail::put_be64(buf.data() + i * 8, pos[i]);
    if (auto st = txn.put(index, key128(id, first_seq).view(), buf); !st.ok()) return st;
    first_seq += take;
    pos += take;
    n -= take;
  }
  return {};
}

} // namespace

result<std::vector<write_result>> journal::append(const std::vector<stream_write>& batch,
                                                  const std::vector<snapshot_record>& snapshots) {
  std::promise<result<std::vector<write_result>>> done;
  auto fut = done.get_future();
  append_async(batch, snapshots, [&](result<std::vector<write_result>> r) {
    done.set_value(std::move(r));
  });
  return fut.get();
}

void journal::append_async(const std::vector<stream_write>& batch,
                           const std::vector<snapshot_record>& snapshots, append_callback done) {
  auto& m = *impl_;
  auto fail = [&](status st) {
    done(std::move(st));
  };
  if (m.closed) return fail({errc::closed, "the journal in '" + m.opts.env.path + "' is closed"});
  std::size_t total = 0;
  for (auto& w : batch)
    total += w.events.size();
  if (total > m.opts.max_batch_events)
    return fail({errc::invalid_argument,
                 "batch of " + std::to_string(total) + " events exceeds max_batch_events (" +
                   std::to_string(m.opts.max_batch_events) + "); split it"});
  // Room in the pipeline; after a failed batch, start again from what is committed.
  {
    std::unique_lock lk(m.q_mu);
    m.idle_cv.wait(lk, [&] {
      return m.in_flight < m.opts.max_pipelined_batches;
    });
    if (!m.failed.ok()) {
      m.idle_cv.wait(lk, [&] {
        return m.in_flight == 0;
      });
      m.failed = {};
      lk.unlock();
      m.reset_plan();
    }
  }
  m.trim_cache();

  // ---- plan: resolve streams, check expected seqs, assign seqs and positions --------
  // Cached streams find their work entry through stream_state::mark/work (one hash
  // lookup per write, slots prefetched for the whole batch first). New streams go into
  // the cache right away (readers see them with no events until their batch commits).
  auto p = std::make_unique<impl::prepared>();
  p->results.resize(batch.size());
  p->done = std::move(done);
  const std::uint64_t mark = ++m.append_count;
  // Events without a timestamp get the clock, kept strictly increasing across the
  // journal, so "state as of time T" is a prefix of the log (one event per ns).
  std::int64_t stamp = std::max(now_ns(), m.last_stamp_ns + 1);
  std::uint64_t next_pos = m.planned_position + 1;
  struct work_stream {
    impl::stream_state* state;
    std::uint64_t head; // planned head as of this point of the batch
  };
  std::vector<work_stream> work;
  work.reserve(batch.size());
  std::vector<std::uint64_t> hashes(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    hashes[i] = detail::hash_id(batch[i].persistence_id);
    m.cache.prefetch_slot(hashes[i]);
  }
  for (std::size_t i = 0; i < batch.size(); ++i)
    m.cache.prefetch_item(hashes[i]);

  auto resolve = [&](std::string_view pid, std::uint64_t h) -> result<std::size_t> {
    auto* c = m.cache.find(pid, h);
    if (!c) {
      std::uint64_t id = 0, head = 0;
      auto st = m.env->read([&](read_txn& txn) {
        return m.lookup_stored(txn, pid, id, head);
      });
      if (!st.ok()) return st;
      std::unique_lock lk(m.mem);
      c = &m.insert(pid);
      if (id == 0) {
        c->id = m.planned_stream_id++;
      } else {
        c->id = id;
        c->head = c->indexed_head = c->planned_head = head;
        c->stored = true;
      }
    }
    if (c->mark != mark) {
      c->mark = mark;
      c->work = work.size();
      work.push_back({c, c->planned_head});
    }
    return c->work;
  };

  struct planned {
    std::size_t write;
    std::uint64_t first_seq;
    std::uint64_t first_pos;
  };
  std::vector<planned> plan;
  plan.reserve(batch.size());
  p->added.reserve(total);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    auto& w = batch[i];
    auto& res = p->results[i];
    if (w.persistence_id.empty() || w.persistence_id.size() > max_pid_bytes) {
      res.st = {errc::invalid_argument, "persistence id must be 1.." +
                                          std::to_string(max_pid_bytes) + " bytes (got " +
                                          std::to_string(w.persistence_id.size()) + ")"};
      continue;
    }
    auto wi = resolve(w.persistence_id, hashes[i]);
    if (!wi) return p->done(wi.error());
    auto& ws = work[*wi];
    if (w.expected_seq != stream_write::any_seq && w.expected_seq != ws.head) {
      res.st = {errc::conflict, "stream '" + w.persistence_id + "' expected seq " +
                                  std::to_string(w.expected_seq) + " but its head is " +
                                  std::to_string(ws.head) +
                                  "; another writer appended: recover and retry"};
      res.last_seq = ws.head;
      continue;
    }
    res.last_seq = ws.head + w.events.size();
    if (!w.events.empty()) {
      res.first_seq = ws.head + 1;
      res.first_position = next_pos;
      res.last_position = next_pos + w.events.size() - 1;
      plan.push_back({i, ws.head + 1, next_pos});
      for (std::size_t e = 0; e < w.events.size(); ++e)
        p->added.emplace_back(ws.state, next_pos + e);
    }
    ws.head += w.events.size();
    next_pos += w.events.size();
  }
  // Snapshots: their stream must exist and cover the snapshot's seq.
  for (auto& s : snapshots) {
    auto wi = resolve(s.persistence_id, detail::hash_id(s.persistence_id));
    if (!wi) return p->done(wi.error());
    auto& ws = work[*wi];
    if (ws.head == 0)
      return p->done(
        status{errc::invalid_argument, "snapshot for unknown stream '" + s.persistence_id + "'"});
    if (s.seq == 0 || s.seq > ws.head)
      return p->done(status{errc::invalid_argument, "snapshot of stream '" + s.persistence_id +
                                                      "' at seq " + std::to_string(s.seq) +
                                                      " is beyond its head " +
                                                      std::to_string(ws.head)});
    p->snapshots.emplace_back(s, ws.state->id);
  }

  // ---- encode the records (on this thread, overlapping the previous commit) ---------
  p->first_position = m.planned_position + 1;
  p->last_position = next_pos - 1;
  p->ends.reserve(total);
  p->arena.reserve(total * 200);
  thread_local std::string unpacked;
  for (auto& pl : plan) {
    auto& w = batch[pl.write];
    for (std::size_t e = 0; e < w.events.size(); ++e) {
      auto& ev = w.events[e];
      detail::envelope_fields f;
      f.persistence_id = w.persistence_id;
      f.seq = pl.first_seq + e;
      f.position = pl.first_pos + e;
      f.timestamp_ns = ev.timestamp_ns != 0 ? ev.timestamp_ns : stamp++;
      f.type = ev.type;
      f.schema_version = ev.schema_version;
      f.payload = ev.payload;
      f.tags = &ev.tags;
      f.correlation_id = ev.correlation_id;
      f.causation_id = ev.causation_id;
      f.writer_node = m.opts.writer_node;
      f.shard_epoch = w.shard_epoch;
      unpacked.clear();
      detail::encode_envelope(f, unpacked);
      std::size_t start = p->arena.size();
      p->arena.append(record_header, '\0');
      detail::pack(unpacked, p->arena);
      std::uint32_t crc = crc32c(std::string_view(p->arena).substr(start + record_header));
      for (int b = 0; b < 4; ++b)
        p->arena[start + b] = static_cast<char>((crc >> (8 * b)) & 0xFF);
      p->ends.push_back(static_cast<std::uint32_t>(p->arena.size()));
    }
  }

  // ---- hand over: the planned state moves on, the batch goes to the commit thread ---
  for (auto& ws : work) {
    if (ws.head > 0 && !ws.state->stored) {
      p->created.emplace_back(ws.state->pid, ws.state->id);
      ws.state->stored = true; // a queued batch writes it
    }
    ws.state->planned_head = ws.head;
    p->heads.emplace_back(ws.state, ws.head);
  }
  p->next_stream_id = m.planned_stream_id;
  m.planned_position = next_pos - 1;
  m.last_stamp_ns = stamp - 1;
  {
    std::lock_guard lk(m.q_mu);
    ++m.in_flight;
    m.queue.push_back(std::move(p));
  }
  m.q_cv.notify_one();
}

void journal::impl::commit_loop() {
  for (;;) {
    std::unique_ptr<prepared> p;
    {
      std::unique_lock lk(q_mu);
      q_cv.wait(lk, [&] {
        return stopping || !queue.empty();
      });
      if (queue.empty()) return; // stopping, and everything queued is done
      p = std::move(queue.front());
      queue.pop_front();
    }
    status st;
    {
      std::lock_guard lk(q_mu);
      st = failed;
    }
    if (st.ok())
      st = commit(*p);
    else
      st = {st.code(), "not written because an earlier batch failed: " + st.message()};
    if (st.ok()) {
      p->done(std::move(p->results));
      if (pending_count >= opts.index_flush_events)
        (void)flush_pending(); // on failure the index is rebuilt from the log at open
    } else {
      {
        std::lock_guard lk(q_mu);
        if (failed.ok()) failed = st;
      }
      p->done(st);
    }
    {
      std::lock_guard lk(q_mu);
      --in_flight;
    }
    idle_cv.notify_all();
  }
}

status journal::impl::commit(prepared& p) {
  auto st = env->write([&](write_txn& txn) -> status {
    for (auto& [pid, id] : p.created) {
      if (auto s = txn.put(streams, pid, key64(id).view()); !s.ok()) return s;
      if (auto s = txn.put(names, key64(id).view(), pid); !s.ok()) return s;
    }
    if (!p.created.empty())
      if (auto s = txn.put(meta, next_stream_key, key64(p.next_stream_id).view()); !s.ok())
        return s;
    if (!p.ends.empty()) {
      status cst;
      detail::cursor c(txn.native(), events.dbi, cst);
      if (!c) return cst;
      std::uint32_t begin = 0;
      for (std::size_t i = 0; i < p.ends.size(); ++i) {
        key64 key(p.first_position + i);
        MDB_val k = detail::to_val(key.view());
        MDB_val v{p.ends[i] - begin, p.arena.data() + begin};
        if (int rc = mdb_cursor_put(c.native(), &k, &v, MDB_APPEND); rc != 0)
          return from_mdb(rc, "appending the event at position " +
                                std::to_string(p.first_position + i));
        begin = p.ends[i];
      }
    }
    for (auto& [s, id] : p.snapshots)
      if (auto r = detail::save_snapshot(*this, txn, s, id); !r.ok()) return r;
    return {};
  });
  if (!st.ok()) return st;
  // Publish the committed state to readers.
  std::unique_lock lk(mem);
  for (auto& [ss, head] : p.heads)
    ss->head = head;
  for (auto& [ss, pos] : p.added) {
    if (ss->pending.empty() && ss->pending.capacity() == 0)
      ss->pending.reserve(8); // skips the 1-2-4 growth steps; small for 1M idle streams
    ss->pending.push_back(pos);
  }
  pending_count += p.added.size();
  next_stream_id = p.next_stream_id;
  last_position = p.last_position;
  return {};
}

void journal::impl::drain() {
  std::unique_lock lk(q_mu);
  idle_cv.wait(lk, [&] {
    return in_flight == 0;
  });
}

void journal::impl::reset_plan() {
  // Streams that never got a committed event are forgotten (their ids are reissued);
  // the others plan again from their committed head.
  std::unique_lock lk(mem);
  cache.erase_if([](const stream_state& ss) {
    return ss.head == 0;
  });
  cache.for_each([](stream_state& ss) {
    ss.planned_head = ss.head;
    ss.stored = true;
  });
  planned_position = last_position.load();
  planned_stream_id = next_stream_id;
}

void journal::impl::trim_cache() {
  // Bound the cache: streams with nothing pending are re-read from the index on demand.
  // Only while idle, because queued batches hold pointers to cached streams.
  constexpr std::size_t cache_max = 1u << 17;
  if (cache.size() <= cache_max) return;
  drain();
  std::unique_lock lk(mem);
  cache.erase_if([](const stream_state& ss) {
    return ss.pending.empty();
  });
}

status journal::impl::flush_pending() {
  if (pending_count == 0) return {};
  // The index is derived data (rebuilt from the log at open), so it goes in its own
  // transaction, written in key order, once per index_flush_events events.
  std::vector<stream_state*> dirty;
  {
    std::shared_lock lk(mem);
    cache.for_each([&](stream_state& ss) {
      if (!ss.pending.empty()) dirty.push_back(&ss);
    });
  }
  std::sort(dirty.begin(), dirty.end(), [](const stream_state* a, const stream_state* b) {
    return a->id < b->id;
  });
  std::uint64_t through = last_position.load();
  auto st = env->write([&](write_txn& txn) -> status {
    std::string buf;
    for (auto* ss : dirty)
      if (auto s = put_index_runs(txn, index, ss->id, ss->indexed_head + 1, ss->pending.data(),
                                  ss->pending.size(), buf);
          !s.ok())
        return s;
    return txn.put(meta, indexed_through_key, key64(through).view());
  });
  if (!st.ok()) return st;
  std::unique_lock lk(mem);
  for (auto* ss : dirty) {
    ss->indexed_head = ss->head;
    ss->pending.clear();
    if (ss->pending.capacity() > 1024) ss->pending.shrink_to_fit();
  }
  pending_count = 0;
  indexed_through = through;
  return {};
}

status journal::flush_index() {
  if (impl_->closed) return {};
  impl_->drain();
  return impl_->flush_pending();
}

// ---- reads ----------------------------------------------------------------------------

namespace {

/// Positions of a stream's events with from <= seq <= to, in seq order.
struct stream_positions {
  std::uint64_t first_seq = 0; // seq of positions[0]
  std::vector<std::uint64_t> positions;
};

} // namespace

status journal::read_stream(std::string_view pid, std::uint64_t from_seq, std::uint64_t to_seq,
                            const event_visitor& fn) const {
  event_record rec;
  return read_stream_view(pid, from_seq, to_seq, [&](const event_view& v) {
    rec = v.to_record();
    return fn(rec);
  });
}

status journal::read_stream_view(std::string_view pid, std::uint64_t from_seq, std::uint64_t to_seq,
                                 const event_view_visitor& fn) const {
  auto& m = *impl_;
  if (from_seq == 0) from_seq = 1;
  if (to_seq < from_seq) return {};
  // Collect the positions under one consistent view: `mem` is taken before the read
  // transaction begins, so an index flush is either fully visible in the transaction
  // or still pending in memory (see journal_impl.hpp).
  std::vector<std::pair<std::uint64_t, std::uint64_t>> todo; // (seq, position)
  std::shared_lock lk(m.mem);
  return m.env->read([&](read_txn& txn) -> status {
    std::uint64_t id = 0, indexed_head = 0;
    std::vector<std::uint64_t> pending;
    if (auto* c = m.cached(pid)) {
      id = c->id;
      indexed_head = c->indexed_head;
      if (to_seq > indexed_head) pending = c->pending;
    }
    lk.unlock();
    if (id == 0) {
      auto v = txn.get(m.streams, pid);
      if (!v) return v.error();
      if (!*v) return status{};
      id = get_be64((*v)->data());
      indexed_head = max_seq;
    }
    // Indexed part.
    if (from_seq <= indexed_head) {
      status cst;
      detail::cursor c(txn.native(), m.index.dbi, cst);
      if (!c) return cst;
      key128 probe(id, from_seq);
      MDB_val k = detail::to_val(probe.view()), v;
      int rc = c.get(k, v, MDB_SET_RANGE);
      // The entry holding from_seq may start before it: look at the previous entry.
      if (!(rc == 0 && detail::to_view(k) == probe.view())) {
        MDB_val pk, pv;
        int prc = rc == 0 ? c.get(pk, pv, MDB_PREV) : c.get(pk, pv, MDB_LAST);
        if (prc == 0 && pk.mv_size == 16 && get_be64(static_cast<const char*>(pk.mv_data)) == id) {
          k = pk;
          v = pv;
          rc = 0;
        } else {
          k = detail::to_val(probe.view());
          rc = c.get(k, v, MDB_SET_RANGE);
        }
      }
      for (; rc == 0; rc = c.get(k, v, MDB_NEXT)) {
        if (k.mv_size != 16 || get_be64(static_cast<const char*>(k.mv_data)) != id) break;
        auto first = get_be64(static_cast<const char*>(k.mv_data) + 8);
        if (first > to_seq || first > indexed_head) break;
        auto val = detail::to_view(v);
        auto n = index_count(val);
        for (std::size_t i = 0; i < n; ++i) {
          auto seq = first + i;
          if (seq < from_seq) continue;
          if (seq > to_seq || seq > indexed_head) break;
          auto pos = get_be64(val.data() + i * 8);
          if (pos != 0) // 0 = deleted
            todo.emplace_back(seq, pos);
        }
      }
      if (rc != 0 && rc != MDB_NOTFOUND)
        return from_mdb(rc, "reading the index of stream '" + std::string(pid) + "'");
    }
    // Pending part.
    for (std::size_t i = 0; i < pending.size(); ++i) {
      auto seq = indexed_head + 1 + i;
      if (seq < from_seq) continue;
      if (seq > to_seq) break;
      todo.emplace_back(seq, pending[i]);
    }
    // Fetch the records; consecutive positions are read with MDB_NEXT.
    status cst;
    detail::cursor c(txn.native(), m.events.dbi, cst);
    if (!c) return cst;
    event_view rec;
    std::uint64_t cur = 0;
    for (auto [seq, pos] : todo) {
      MDB_val k, v;
      int rc;
      if (cur != 0 && pos == cur + 1) {
        rc = c.get(k, v, MDB_NEXT);
        if (rc == 0 && get_be64(static_cast<const char*>(k.mv_data)) != pos) rc = MDB_NOTFOUND;
      } else {
        key64 key(pos);
        k = detail::to_val(key.view());
        rc = c.get(k, v, MDB_SET_KEY);
      }
      if (rc == MDB_NOTFOUND)
        return {errc::corrupt, "event at position " + std::to_string(pos) + " of stream '" +
                                 std::string(pid) + "' (seq " + std::to_string(seq) +
                                 ") is missing from the log; run `strata journal verify`"};
      if (rc != 0) return from_mdb(rc, "reading position " + std::to_string(pos));
      cur = pos;
      if (auto s = decode_view_at(pos, detail::to_view(v), pid, seq, rec); !s.ok()) return s;
      if (!fn(rec)) break;
    }
    return status{};
  });
}

result<std::vector<event_record>> journal::load_stream(std::string_view pid, std::uint64_t from_seq,
                                                       std::uint64_t to_seq,
                                                       std::size_t max_count) const {
  std::vector<event_record> out;
  if (max_count == 0) return out;
  auto st = read_stream(pid, from_seq, to_seq, [&](const event_record& e) {
    out.push_back(e);
    return out.size() < max_count;
  });
  if (!st.ok()) return st;
  return out;
}

status
journal::read_global_raw(std::uint64_t from_position, std::size_t max_count,
                         const std::function<bool(std::uint64_t, std::string_view)>& fn) const {
  auto& m = *impl_;
  if (max_count == 0) return {};
  // Only positions up to the published last position: a reader never sees a record
  // whose writer has not finished publishing its in-memory state.
  auto limit = m.last_position.load();
  return m.env->read([&](read_txn& txn) -> status {
    status cst;
    detail::cursor c(txn.native(), m.events.dbi, cst);
    if (!c) return cst;
    key64 key(from_position == 0 ? 1 : from_position);
    MDB_val k = detail::to_val(key.view()), v;
    std::size_t n = 0;
    int rc = c.get(k, v, MDB_SET_RANGE);
    for (; rc == 0 && n < max_count; rc = c.get(k, v, MDB_NEXT), ++n) {
      auto pos = get_be64(static_cast<const char*>(k.mv_data));
      if (pos > limit) break;
      thread_local std::vector<std::uint64_t> words;
      if (auto s = unframe(pos, detail::to_view(v), {}, words); !s.ok()) return s;
      if (!fn(pos, {reinterpret_cast<const char*>(words.data()), words.size() * 8})) break;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) return from_mdb(rc, "reading the global log");
    return status{};
  });
}

status journal::read_global(std::uint64_t from_position, std::size_t max_count,
                            const event_visitor& fn) const {
  status inner;
  auto st = read_global_raw(from_position, max_count, [&](std::uint64_t pos, std::string_view b) {
    auto r = detail::decode_envelope(b, where(pos));
    if (!r) {
      inner = r.error();
      return false;
    }
    if (r->position != pos) {
      inner = {errc::corrupt, "event at position " + std::to_string(pos) + " of stream '" +
                                r->persistence_id + "' claims position " +
                                std::to_string(r->position)};
      return false;
    }
    return fn(*r);
  });
  return st.ok() ? inner : st;
}

result<std::uint64_t> journal::highest_seq(std::string_view pid) const {
  auto& m = *impl_;
  {
    std::shared_lock lk(m.mem);
    if (auto* c = m.cached(pid)) return c->head;
  }
  std::uint64_t id = 0, head = 0;
  auto st = m.env->read([&](read_txn& txn) {
    return m.lookup_stored(txn, pid, id, head);
  });
  if (!st.ok()) return st;
  // A stream may have become known between the cache check and the read: ask again.
  std::shared_lock lk(m.mem);
  if (auto* c = m.cached(pid)) return c->head;
  return head;
}

std::uint64_t journal::last_position() const noexcept { return impl_->last_position.load(); }

result<std::vector<std::string>> journal::list_streams() const {
  std::vector<std::string> out;
  auto st = impl_->env->read([&](read_txn& txn) {
    return txn.scan(impl_->streams, {}, [&](std::string_view k, std::string_view) {
      out.emplace_back(k);
      return true;
    });
  });
  if (!st.ok()) return st;
  return out;
}

// ---- verify -----------------------------------------------------------------------------

status journal::verify() const {
  auto& m = *impl_;
  std::shared_lock lk(m.mem);
  // Pending state at the time of the read transaction: (pid, indexed_head, positions).
  std::vector<std::tuple<std::string, std::uint64_t, std::vector<std::uint64_t>>> cache;
  m.cache.for_each([&](const impl::stream_state& ss) {
    if (!ss.pending.empty()) cache.emplace_back(ss.pid, ss.indexed_head, ss.pending);
  });
  auto limit = m.last_position.load();
  return m.env->read([&](read_txn& txn) -> status {
    lk.unlock();
    // 1. Every record: framing, checksum, decoding, position; per stream seqs ascend by 1.
    std::unordered_map<std::string, std::uint64_t> last_seq;
    std::unordered_map<std::uint64_t, std::pair<std::string, std::uint64_t>> at; // pos → (pid, seq)
    status bad;
    auto st = txn.scan(m.events, {}, [&](std::string_view k, std::string_view v) {
      auto pos = get_be64(k.data());
      if (pos > limit) return false;
      event_record r;
      if (auto s = decode_at(pos, v, {}, 0, r); !s.ok()) {
        bad = s;
        return false;
      }
      auto [it, fresh] = last_seq.try_emplace(r.persistence_id, r.seq);
      if (!fresh) {
        if (r.seq != it->second + 1) {
          bad = {errc::corrupt, "stream '" + r.persistence_id + "' has a gap: seq " +
                                  std::to_string(it->second) + " is followed by seq " +
                                  std::to_string(r.seq) + " at position " + std::to_string(pos)};
          return false;
        }
        it->second = r.seq;
      }
      at.emplace(pos, std::make_pair(std::move(r.persistence_id), r.seq));
      return true;
    });
    if (!st.ok()) return st;
    if (!bad.ok()) return bad;
    // 2. The index: each entry points at a record of its stream and seq.
    std::unordered_map<std::uint64_t, std::string> names;
    st = txn.scan(m.names, {}, [&](std::string_view k, std::string_view v) {
      names.emplace(get_be64(k.data()), std::string(v));
      return true;
    });
    if (!st.ok()) return st;
    std::unordered_map<std::uint64_t, std::uint64_t> expect_next; // id → next seq
    st = txn.scan(m.index, {}, [&](std::string_view k, std::string_view v) {
      auto id = get_be64(k.data());
      auto first = get_be64(k.data() + 8);
      auto n = names.find(id);
      if (n == names.end()) {
        bad = {errc::corrupt, "index entry for unknown stream id " + std::to_string(id)};
        return false;
      }
      auto [en, fresh] = expect_next.try_emplace(id, first);
      if (!fresh && en->second != first) {
        bad = {errc::corrupt,
               "index of stream '" + n->second + "' has a gap before seq " + std::to_string(first)};
        return false;
      }
      for (std::size_t i = 0; i < index_count(v); ++i) {
        auto pos = get_be64(v.data() + i * 8);
        if (pos == 0) continue; // deleted
        auto r = at.find(pos);
        if (r == at.end() || r->second.first != n->second || r->second.second != first + i) {
          bad = {errc::corrupt, "index of stream '" + n->second + "' says seq " +
                                  std::to_string(first + i) + " is at position " +
                                  std::to_string(pos) + " but the log disagrees"};
          return false;
        }
      }
      en->second = first + index_count(v);
      return true;
    });
    if (!st.ok()) return st;
    if (!bad.ok()) return bad;
    // 3. The pending tail agrees with the log too.
    for (auto& [pid, indexed_head, pending] : cache)
      for (std::size_t i = 0; i < pending.size(); ++i) {
        auto r = at.find(pending[i]);
        if (r == at.end() || r->second.first != pid || r->second.second != indexed_head + 1 + i)
          return {errc::corrupt, "un-indexed event seq " + std::to_string(indexed_head + 1 + i) +
                                   " of stream '" + pid + "' is not at position " +
                                   std::to_string(pending[i])};
      }
    return status{};
  });
}

// ---- deletion ---------------------------------------------------------------------------

status journal::delete_events_before(std::string_view pid, std::uint64_t up_to_seq) {
  auto& m = *impl_;
  if (m.closed) return {errc::closed, "the journal is closed"};
  if (auto st = flush_index(); !st.ok()) return st;
  auto id = m.stream_id(pid);
  if (!id) return id.error();
  if (*id == 0) return {errc::not_found, "unknown stream '" + std::string(pid) + "'"};
  auto last = m.last_position.load();
  return m.env->write([&](write_txn& txn) -> status {
    // Rewrite each index entry of the stream that covers seqs <= up_to_seq, with
    // deleted positions set to 0 (kept, so the head stays known), and delete the events.
    std::vector<std::pair<std::string, std::string>> rewrites;
    status bad;
    auto st = txn.scan(m.index, key128(*id, 0).view(), [&](std::string_view k, std::string_view v) {
      if (get_be64(k.data()) != *id) return false;
      auto first = get_be64(k.data() + 8);
      if (first > up_to_seq) return false;
      std::string nv(v);
      for (std::size_t i = 0; i < index_count(v) && first + i <= up_to_seq; ++i) {
        auto pos = get_be64(nv.data() + i * 8);
        if (pos == 0) continue;
        key64 key(pos);
        if (auto s = txn.del(m.events, key.view()); !s.ok()) {
          bad = s;
          return false;
        }
        if (pos == last)
          if (auto s = txn.put(m.meta, position_floor_key, key64(last).view()); !s.ok()) {
            bad = s;
            return false;
          }
        detail::put_be64(nv.data() + i * 8, 0);
      }
      rewrites.emplace_back(std::string(k), std::move(nv));
      return true;
    });
    if (!st.ok()) return st;
    if (!bad.ok()) return bad;
    for (auto& [k, v] : rewrites)
      if (auto s = txn.put(m.index, k, v); !s.ok()) return s;
    return status{};
  });
}

environment& journal::env() noexcept { return *impl_->env; }
snapshot_store& journal::snapshots() noexcept { return impl_->snapshots_api; }
offset_store& journal::offsets() noexcept { return impl_->offsets_api; }
const journal_options& journal::options() const noexcept { return impl_->opts; }

} // namespace strata::persistence
