#include "strata/cluster/failure_detector.hpp"

#include <algorithm>
#include <cmath>

namespace strata::cluster {

namespace {

constexpr std::int64_t max_interval_us = 60'000'000;
constexpr std::size_t max_capacity = 1000;

std::int64_t to_us(std::chrono::steady_clock::duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

milliseconds first_estimate(const detector_config& cfg) {
  return cfg.first_heartbeat_estimate.count() > 0 ? cfg.first_heartbeat_estimate
                                                  : cfg.heartbeat_interval;
}

} // namespace

double phi_of(double elapsed_ms, double mean_ms, double std_ms) noexcept {
  if (!(std_ms > 0)) std_ms = 1e-3;
  double y = (elapsed_ms - mean_ms) / std_ms;
  // The logistic approximation of the normal CDF (Bowling et al. 2009), as Akka uses.
  // Clamped so that exp() stays finite; phi is then far above any useful threshold.
  y = std::clamp(y, -30.0, 30.0);
  double e = std::exp(-y * (1.5976 + 0.070566 * y * y));
  // P(later than elapsed) = e / (1 + e); the two forms keep precision on either side.
  if (elapsed_ms > mean_ms) return -std::log10(e / (1.0 + e));
  return -std::log10(1.0 - 1.0 / (1.0 + e));
}

milliseconds detection_delay(const detector_config& cfg, milliseconds interval) {
  double mean = static_cast<double>(interval.count()) + cfg.acceptable_pause.count();
  double sd = static_cast<double>(cfg.min_std_deviation.count());
  // Regular heartbeats: the window's standard deviation is 0, so the floor applies.
  std::int64_t t = 0;
  while (t < 3'600'000 && phi_of(static_cast<double>(t), mean, sd) < cfg.threshold)
    ++t;
  return milliseconds{t};
}

failure_detector::failure_detector(const detector_config& cfg)
  : cfg_(cfg), capacity_(std::clamp<std::size_t>(cfg.max_samples, 2, max_capacity)) {}

void failure_detector::add_interval(std::int64_t us) {
  us = std::clamp<std::int64_t>(us, 0, max_interval_us);
  if (intervals_us_.size() < capacity_) {
    intervals_us_.push_back(us);
  } else {
    auto old = intervals_us_[next_];
    sum_us_ -= old;
    sum_sq_us_ -= old * old;
    intervals_us_[next_] = us;
    next_ = (next_ + 1) % capacity_;
  }
  sum_us_ += us;
  sum_sq_us_ += us * us;
}

void failure_detector::heartbeat(time_point now) {
  if (!last_) {
    // Seed the window as Akka does: the estimate plus and minus a quarter of it.
    auto mean = to_us(first_estimate(cfg_));
    add_interval(mean - mean / 4);
    add_interval(mean + mean / 4);
    last_ = now;
    return;
  }
  // Only intervals that ended while the member looked alive teach the detector.
  if (is_available(now)) add_interval(to_us(now - *last_));
  if (now > *last_) last_ = now;
}

double failure_detector::mean_ms() const noexcept {
  if (intervals_us_.empty()) return 0;
  return static_cast<double>(sum_us_) / static_cast<double>(intervals_us_.size()) / 1000.0;
}

double failure_detector::std_deviation_ms() const noexcept {
  if (intervals_us_.empty()) return 0;
  double n = static_cast<double>(intervals_us_.size());
  double mean = static_cast<double>(sum_us_) / n;
  double var = static_cast<double>(sum_sq_us_) / n - mean * mean;
  return var > 0 ? std::sqrt(var) / 1000.0 : 0.0;
}

double failure_detector::phi(time_point now) const noexcept {
  if (!last_ || now <= *last_) return 0;
  double elapsed = static_cast<double>(to_us(now - *last_)) / 1000.0;
  double mean = mean_ms() + static_cast<double>(cfg_.acceptable_pause.count());
  double sd = std::max(std_deviation_ms(), static_cast<double>(cfg_.min_std_deviation.count()));
  return phi_of(elapsed, mean, sd);
}

bool member_detectors::heartbeat(const member_id& m, time_point now) {
  auto it = detectors_.find(m);
  if (it == detectors_.end()) {
    if (detectors_.size() >= max_members) return false;
    it = detectors_.emplace(m, failure_detector{cfg_}).first;
  }
  it->second.heartbeat(now);
  return true;
}

bool member_detectors::is_available(const member_id& m, time_point now) const {
  auto it = detectors_.find(m);
  return it == detectors_.end() || it->second.is_available(now);
}

std::optional<double> member_detectors::phi(const member_id& m, time_point now) const {
  auto it = detectors_.find(m);
  if (it == detectors_.end()) return std::nullopt;
  return it->second.phi(now);
}

std::vector<member_id> member_detectors::unavailable(time_point now) const {
  std::vector<member_id> out;
  for (const auto& [m, d] : detectors_)
    if (!d.is_available(now)) out.push_back(m);
  return out;
}

bool member_detectors::remove(const member_id& m) { return detectors_.erase(m) != 0; }

std::vector<member_id> member_detectors::monitored() const {
  std::vector<member_id> out;
  out.reserve(detectors_.size());
  for (const auto& kv : detectors_)
    out.push_back(kv.first);
  return out;
}

} // namespace strata::cluster
