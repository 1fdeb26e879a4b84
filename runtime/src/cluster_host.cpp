#include "cluster_host.hpp"

#include "strata/kafka/bridge.hpp"
#include "strata/kafka/restore.hpp"
#include "strata/persistence/environment.hpp"
#include "strata/persistence/journal.hpp"
#include "strata/persistence/persistence_id.hpp"
#include "strata/persistence/shard.hpp"
#include "strata/persistence/snapshot_store.hpp"
#include "strata/runtime/detail/region.hpp"
#include "strata/runtime/system.hpp"
#include "system_core.hpp"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <set>
#include <string>

namespace strata::detail {

namespace {

std::string shard_text(cluster::shard_id shard, std::uint64_t epoch) {
  return "shard " + std::to_string(shard) + " (epoch " + std::to_string(epoch) + ")";
}

} // namespace

cluster_host::cluster_host(system& sys, system_core& core) : sys_(sys), core_(core) {
  for (std::size_t i = 0; i < acquire_threads; ++i)
    threads_.emplace_back([this] {
      run();
    });
}

cluster_host::~cluster_host() { stop(); }

void cluster_host::stop() {
  {
    std::lock_guard<std::mutex> g{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

void cluster_host::run() {
  std::unique_lock<std::mutex> lk{mtx_};
  for (;;) {
    cv_.wait(lk, [&] {
      return stopping_ || !jobs_.empty();
    });
    if (jobs_.empty()) return; // stopping
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    bool stopping = stopping_;
    lk.unlock();
    job(stopping);
    lk.lock();
  }
}

void cluster_host::post(std::function<void(bool stopping)> job) {
  {
    std::lock_guard<std::mutex> g{mtx_};
    if (!stopping_) {
      jobs_.push_back(std::move(job));
      cv_.notify_one();
      return;
    }
  }
  job(true);
}

void cluster_host::release(cluster::shard_id shard, std::uint64_t epoch,
                           std::function<void(bool)> done) {
  auto* bridge = core_.bridge.get();
  auto timeout = core_.cfg.cluster_handoff_timeout_ms;
  sys_.stop_shard(shard, [this, bridge, shard, epoch, timeout, done = std::move(done)] {
    if (bridge == nullptr) {
      done(true);
      return;
    }
    bridge->when_published(shard, timeout, [this, shard, epoch, done](bool ok) {
      if (!ok) {
        std::cerr << "strata: cluster: " << shard_text(shard, epoch)
                  << ": Kafka did not acknowledge the shard's events in time; the shard "
                     "stays with this node until they are published\n";
        done(false);
        return;
      }
      // The checkpoint blocks (journal reads, Kafka round trips): a host thread, not
      // the bridge thread this runs on.
      post([this, shard, epoch, done](bool stopping) {
        if (!stopping) checkpoint(shard, epoch);
        done(true);
      });
    });
  });
}

std::vector<std::string> cluster_host::shard_streams(cluster::shard_id shard) const {
  std::vector<std::string> out;
  auto all = core_.journal->list_streams();
  if (!all) {
    std::cerr << "strata: cluster: shard " << shard
              << ": cannot list the journal's streams: " << all.error().to_string() << "\n";
    return out;
  }
  for (auto& pid : *all)
    if (persistence::shard_of(pid, core_.cfg.cluster_shards) == shard)
      out.push_back(std::move(pid));
  return out;
}

// Snapshots every stream of `shard` at its head (where its type can), then publishes
// them and a checkpoint per type to Kafka (bridge::publish_checkpoint), so the next
// owner restores from the snapshots and the events after the checkpoint only. Best
// effort: without it the next restore reads from an older checkpoint or the start.
void cluster_host::checkpoint(cluster::shard_id shard, std::uint64_t epoch) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto since = [&t0] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  auto streams = shard_streams(shard);
  std::vector<persistence::snapshot_record> snaps;
  for (const auto& pid : streams) {
    auto type = std::string(persistence::type_of_persistence_id(pid));
    snapshot_fn fn = nullptr;
    {
      std::lock_guard<std::mutex> g{core_.regions_mtx};
      auto it = core_.regions.find(type);
      if (it != core_.regions.end()) fn = it->second.second->snapshotter();
    }
    if (fn == nullptr) continue; // the bridge leaves this type without a checkpoint
    std::string error;
    auto snap = fn(*core_.journal, pid, type, error);
    if (!error.empty())
      std::cerr << "strata: cluster: " << shard_text(shard, epoch) << ": snapshot of '" << pid
                << "' for the handoff: " << error << "\n";
    if (snap) snaps.push_back(std::move(*snap));
  }
  // One write transaction (one fsync) for all of them, under the writer's lock.
  auto st = core_.writer->exclusive([&] {
    return core_.journal->env().write([&](persistence::write_txn& txn) -> persistence::status {
      for (const auto& s : snaps)
        if (auto e = core_.journal->snapshots().save(txn, s); !e.ok()) return e;
      return {};
    });
  });
  if (!st.ok())
    std::cerr << "strata: cluster: " << shard_text(shard, epoch) << ": saving " << snaps.size()
              << " snapshots for the handoff: " << st.to_string() << "\n";
  const double saved_s = since();
  auto r =
    core_.bridge->publish_checkpoint(shard, epoch, streams, core_.cfg.cluster_handoff_timeout_ms);
  if (!r) {
    std::cerr << "strata: cluster: " << shard_text(shard, epoch)
              << ": no checkpoint in Kafka (the next owner reads the shard's whole history): "
              << r.error().to_string() << "\n";
    return;
  }
  for (const auto& pid : r->uncovered)
    std::cerr << "strata: cluster: " << shard_text(shard, epoch) << ": no checkpoint for the "
              << "type of '" << pid << "' (its events are past its latest snapshot)\n";
  if (!r->topics.empty())
    std::cerr << "strata: cluster: " << shard_text(shard, epoch)
              << " checkpointed: " << snaps.size() << " snapshots taken (" << saved_s << " s), "
              << r->snapshots << " published with " << r->topics.size() << " checkpoint(s), in "
              << since() << " s\n";
}

void cluster_host::acquire(cluster::shard_id shard, std::uint64_t epoch,
                           std::function<void(bool)> done) {
  post([this, shard, epoch, done = std::move(done)](bool stopping) {
    bool refused = false;
    {
      std::lock_guard<std::mutex> g{mtx_};
      refused = downed_;
    }
    done(!stopping && !refused && restore(shard, epoch));
  });
}

void cluster_host::started(const cluster::member_id& self) {
  if (core_.bridge) core_.bridge->set_member(to_string(self));
}

void cluster_host::downed(std::string reason) {
  {
    std::lock_guard<std::mutex> g{mtx_};
    downed_ = true;
  }
  if (core_.cluster) core_.cluster->down(std::move(reason));
}

/// Restores `shard` from Kafka and appends its claim record. Host thread.
bool cluster_host::restore(cluster::shard_id shard, std::uint64_t epoch) {
  auto* bridge = core_.bridge.get();
  if (bridge == nullptr) { // no Kafka: nothing to restore from (docs/cluster.md)
    sys_.resume_shard(shard);
    return true;
  }
  const auto& c = core_.cfg;
  kafka::restore_options o;
  o.bootstrap_servers = core_.kafka_bootstrap;
  o.shard = shard;
  o.timeout_ms = c.cluster_handoff_timeout_ms;
  // Every event topic Kafka has under the prefix, and those the bridge knows: a type may
  // have events in the shard although no entities<A>() call named it here yet.
  std::set<std::string> topics;
  for (auto& t : bridge->known_topics())
    topics.insert(t);
  const auto& suffix = bridge->options().snapshot_topic_suffix;
  auto listed = kafka::list_event_topics(core_.kafka_bootstrap, bridge->options().topic_prefix, "",
                                         c.cluster_handoff_timeout_ms); // snapshot topics too
  if (!listed) {
    std::cerr << "strata: cluster: " << shard_text(shard, epoch)
              << ": cannot list the topics to restore from: " << listed.error().to_string() << "\n";
    return false;
  }
  std::set<std::string> all(listed->begin(), listed->end());
  for (auto& t : all)
    if (t.size() < suffix.size() || t.compare(t.size() - suffix.size(), suffix.size(), suffix) != 0)
      topics.insert(t);
  o.topics.assign(topics.begin(), topics.end());
  // Snapshots too when every event topic has its snapshot topic (docs/kafka.md).
  o.snapshots = std::all_of(topics.begin(), topics.end(), [&](const std::string& t) {
    return all.count(t + suffix) == 1;
  });
  auto* writer = core_.writer.get();
  auto* journal = core_.journal.get();
  o.import = [writer, journal](const std::vector<persistence::event_record>& events) {
    return writer->exclusive([&] {
      return journal->import(events);
    });
  };
  o.import_bases = [writer, journal](const std::vector<persistence::snapshot_record>& s) {
    return writer->exclusive([&] {
      return journal->import_bases(s);
    });
  };
  // Reconciliation: what the journal holds of the shard but Kafka does not (a previous
  // incarnation's events that never reached Kafka, or an older history another owner
  // replaced) is discarded before Kafka's events are imported (docs/cluster.md). Not
  // against the per-process mock (kafka = "mock"): it starts empty at every start, so it
  // lacks what the journal holds without anything being stale.
  o.reconcile = !core_.kafka_mock;
  o.num_shards = c.cluster_shards;
  o.discard = [writer, journal](const std::vector<persistence::discard_point>& points) {
    return writer->exclusive([&] {
      return journal->discard_after(points);
    });
  };
  auto r = kafka::restore_shard(*journal, o);
  if (!r) {
    std::cerr << "strata: cluster: " << shard_text(shard, epoch)
              << ": restoring from Kafka failed: " << r.error().to_string() << "\n";
    return false;
  }
  if (r->discarded_streams > 0)
    std::cerr << "strata: cluster: shard " << shard << ": discarded " << r->discarded
              << " unpublished events of " << r->discarded_streams
              << " streams (never acknowledged in replicated mode; in local mode acknowledged "
                 "but lost: they never reached Kafka), epoch "
              << epoch << "\n";
  // Records of an owner a newer claim had replaced (docs/kafka.md, "Fencing"): skipped.
  if (r->fenced > 0) {
    std::cerr << "strata: cluster: " << shard_text(shard, epoch) << ": " << r->fenced
              << " records in Kafka were written by a fenced owner and skipped";
    for (const auto& where : r->fenced_records)
      std::cerr << "; " << where;
    std::cerr << (r->fenced > r->fenced_records.size() ? "; …\n" : "\n");
  }
  // What the restore read: the claim is refused behind a newer owner's (fencing).
  std::vector<kafka::claim_basis> basis;
  for (const auto& p : r->partitions)
    if (!p.snapshots) basis.push_back({p.topic, p.end_offset, p.epoch_in_force});
  if (auto st = bridge->append_claim(shard, epoch, c.cluster_handoff_timeout_ms, basis);
      !st.ok()) {
    std::cerr << "strata: cluster: " << shard_text(shard, epoch)
              << ": appending the claim record failed: " << st.to_string() << "\n";
    return false;
  }
  // Commands for the shard were held here if it left this node before (release) and
  // has now come back, or if its move was called off: serve it again.
  sys_.resume_shard(shard);
  if (r->imported > 0 || r->snapshots_saved > 0)
    std::cerr << "strata: cluster: " << shard_text(shard, epoch)
              << " restored from Kafka: " << r->imported << " events imported, " << r->duplicates
              << " already here, " << r->snapshots_saved << " snapshots (" << r->bases
              << " streams started at one, " << r->covered << " events they cover skipped), in "
              << r->seconds << " s\n";
  return true;
}

} // namespace strata::detail
