// File: strata/cluster/failure_detector.hpp
//
// The phi-accrual failure detector (Hayashibara et al. 2004, as in Akka) for one
// monitored member, and a set of them, one per member a node monitors. Pure: the caller
// passes the arrival time of each heartbeat and "now" (clock.hpp).
//
//   strata::cluster::failure_detector d;             // detector_config{} defaults
//   d.heartbeat(t0);                                 // each heartbeat of the member
//   d.heartbeat(t0 + 200ms);
//   d.phi(t0 + 1400ms);                              // suspicion, grows with silence
//   d.is_available(t0 + 1400ms);                     // false: phi >= threshold (8)
//
// The detector keeps the last max_samples inter-arrival intervals, their mean and
// standard deviation, and judges the time since the last heartbeat against a normal
// distribution of mean (mean + acceptable_pause) and standard deviation
// max(std deviation, min_std_deviation): phi = -log10(P(the next heartbeat comes later
// than now)), with Akka's logistic approximation of the normal tail. phi = 8 means the
// detector would be wrong about once in 10^8 such judgements if the distribution held.
// Before the first heartbeat a member is not judged (available, phi 0); the first
// heartbeat seeds the window with first_heartbeat_estimate +- a quarter of it. An
// interval that ends while the detector already judged the member unavailable is not
// recorded, so a long pause does not teach the detector to accept long pauses.
//
// Why the defaults find a dead or frozen node in about 1-2 s. With heartbeats every
// 200 ms on loopback the intervals barely vary, so the standard deviation is the floor
// min_std_deviation = 100 ms and the mean 200 ms; the distribution is centred on
// 200 + acceptable_pause 500 = 700 ms. phi reaches 8 at y = (t - 700) / 100 with
// y (1.5976 + 0.070566 y^2) = 8 ln 10 (plus a negligible term), y = 5.23: t = 1223 ms
// after the last heartbeat (detection_delay(cfg, 200ms) computes it;
// cluster_failure_detector_test asserts 1200..1250 ms for regular heartbeats and the
// simulation checks it with latency jitter). A crash comes 0..200 ms after the last
// heartbeat sent, and a node that evaluates its detectors every heartbeat_interval
// notices up to 200 ms later: a crashed or frozen node is unreachable 1.0-1.45 s after
// it stopped. Jitter widens the standard deviation and delays detection a little; a
// pause of one acceptable_pause beyond the usual interval (a scheduler hiccup, a long
// fsync) is tolerated (phi about 0.3 at 700 ms, still below 1 at 800 ms).
//
// Threads: values; use one instance from one thread at a time.
#pragma once

#include "strata/cluster/clock.hpp"
#include "strata/cluster/member_view.hpp" // max_members

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace strata::cluster {

/// The detector's settings (defaults: see the file comment for the timing they give).
struct detector_config {
  /// phi at or above which the member is judged unavailable (8: Akka's default).
  double threshold = 8.0;
  /// How often the monitored member sends a heartbeat. Only the first-heartbeat
  /// estimate and the caller's evaluation period derive from it.
  milliseconds heartbeat_interval{200};
  /// A silence this much longer than the mean interval is still unsurprising: strata
  /// has no GC, but a scheduler delay, a long fsync or a busy CAF worker happen.
  milliseconds acceptable_pause{500};
  /// Floor of the standard deviation: regular heartbeats on loopback vary by
  /// microseconds, which would make phi jump at the first late one.
  milliseconds min_std_deviation{100};
  /// How many of the latest intervals the statistics cover (clamped to 2..1000).
  std::size_t max_samples = 200;
  /// The interval assumed before any was measured; 0 means heartbeat_interval.
  milliseconds first_heartbeat_estimate{0};
};

/// phi of a silence of `elapsed_ms` under a normal distribution (mean_ms, std_ms),
/// with Akka's approximation of its tail; >= 0, grows with elapsed_ms, never NaN for
/// std_ms > 0. Pure, any thread.
double phi_of(double elapsed_ms, double mean_ms, double std_ms) noexcept;

/// How long after the last of a run of heartbeats exactly `interval` apart the
/// detector turns unavailable (phi reaches cfg.threshold), to the millisecond: with the
/// defaults and interval 200 ms, 1223 ms; at most 1 h. Pure, any thread.
milliseconds detection_delay(const detector_config& cfg, milliseconds interval);

/// The phi-accrual detector of one monitored member.
class failure_detector {
 public:
  /// A detector that has heard nothing yet (max_samples clamped to 2..1000).
  explicit failure_detector(const detector_config& cfg = {});

  /// Records a heartbeat that arrived at `now`. A time before the last heartbeat (a
  /// reordered delivery) counts as an interval of 0; intervals above 60 s are
  /// clamped to 60 s. Never fails.
  void heartbeat(time_point now);

  /// The suspicion level at `now`: 0 before the first heartbeat, otherwise phi_of the
  /// time since the last heartbeat (0 for a time before it).
  double phi(time_point now) const noexcept;

  /// Whether phi(now) < threshold (true before the first heartbeat).
  bool is_available(time_point now) const noexcept { return phi(now) < cfg_.threshold; }

  /// Whether any heartbeat arrived yet.
  bool is_monitoring() const noexcept { return last_.has_value(); }

  /// The arrival time of the last heartbeat, or nullopt before the first.
  std::optional<time_point> last_heartbeat() const noexcept { return last_; }

  /// The intervals the statistics currently cover (seeded ones included).
  std::size_t samples() const noexcept { return intervals_us_.size(); }

  /// The mean interval (ms) of the window, 0 before the first heartbeat.
  double mean_ms() const noexcept;

  /// The standard deviation (ms) of the window, before the min_std_deviation floor.
  double std_deviation_ms() const noexcept;

  /// The settings it was made with.
  const detector_config& config() const noexcept { return cfg_; }

 private:
  void add_interval(std::int64_t us);

  detector_config cfg_;
  std::size_t capacity_;
  std::optional<time_point> last_;
  std::vector<std::int64_t> intervals_us_; ///< a ring once it holds capacity_ entries
  std::size_t next_ = 0;                   ///< the oldest entry once the ring is full
  std::int64_t sum_us_ = 0;                ///< exact: intervals are clamped to 60 s
  std::int64_t sum_sq_us_ = 0;             ///< us^2; fits: 1000 * (6e7)^2 < 2^63
};

/// One detector per monitored member, all with one config. At most max_members.
class member_detectors {
 public:
  /// No member monitored yet; every detector it creates gets `cfg`.
  explicit member_detectors(const detector_config& cfg = {}) : cfg_(cfg) {}

  /// Records a heartbeat of `m` at `now`, creating its detector at the first. Returns
  /// false and records nothing when max_members detectors exist and `m` has none.
  bool heartbeat(const member_id& m, time_point now);

  /// Whether `m` is available at `now`; true for a member not monitored (never heard).
  bool is_available(const member_id& m, time_point now) const;

  /// phi of `m` at `now`, or nullopt for a member not monitored.
  std::optional<double> phi(const member_id& m, time_point now) const;

  /// The monitored members unavailable at `now`, ordered by member_id.
  std::vector<member_id> unavailable(time_point now) const;

  /// Stops monitoring `m` (it left the view, or was downed). Returns whether it was.
  bool remove(const member_id& m);

  /// The members with a detector, ordered.
  std::vector<member_id> monitored() const;

  /// How many members have a detector.
  std::size_t size() const noexcept { return detectors_.size(); }

 private:
  detector_config cfg_;
  std::map<member_id, failure_detector> detectors_;
};

} // namespace strata::cluster
