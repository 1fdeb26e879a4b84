#include "cluster_host.hpp"

#include "strata/kafka/bridge.hpp"
#include "strata/kafka/restore.hpp"
#include "strata/persistence/journal.hpp"
#include "strata/runtime/system.hpp"
#include "system_core.hpp"

#include <algorithm>
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

void cluster_host::release(cluster::shard_id shard, std::uint64_t epoch,
                           std::function<void(bool)> done) {
  auto* bridge = core_.bridge.get();
  auto timeout = core_.cfg.cluster_handoff_timeout_ms;
  sys_.stop_shard(shard, [bridge, shard, epoch, timeout, done = std::move(done)] {
    if (bridge == nullptr) {
      done(true);
      return;
    }
    bridge->when_published(shard, timeout, [shard, epoch, done](bool ok) {
      if (!ok)
        std::cerr << "strata: cluster: " << shard_text(shard, epoch)
                  << ": Kafka did not acknowledge the shard's events in time; the shard "
                     "stays with this node until they are published\n";
      done(ok);
    });
  });
}

void cluster_host::acquire(cluster::shard_id shard, std::uint64_t epoch,
                           std::function<void(bool)> done) {
  {
    std::lock_guard<std::mutex> g{mtx_};
    if (!stopping_) {
      jobs_.push_back([this, shard, epoch, done = std::move(done)](bool stopping) {
        done(!stopping && restore(shard, epoch));
      });
      cv_.notify_one();
      return;
    }
  }
  done(false);
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
  auto r = kafka::restore_shard(*journal, o);
  if (!r) {
    std::cerr << "strata: cluster: " << shard_text(shard, epoch)
              << ": restoring from Kafka failed: " << r.error().to_string() << "\n";
    return false;
  }
  if (auto st = bridge->append_claim(shard, epoch, c.cluster_handoff_timeout_ms); !st.ok()) {
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
              << " already here, " << r->snapshots_saved << " snapshots, in " << r->seconds
              << " s\n";
  return true;
}

} // namespace strata::detail
