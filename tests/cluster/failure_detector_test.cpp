// strata/cluster/failure_detector.hpp: phi grows with silence, the defaults detect a
// silent member within the documented window, and jitter and short pauses are tolerated.
#include "strata/cluster/failure_detector.hpp"

#include "cluster_test_util.hpp"

#include <doctest/doctest.h>

using namespace strata::cluster;
using namespace strata::cluster::test;
using namespace std::chrono_literals;

namespace {

const time_point t0{};

/// The first millisecond after `last` at which `d` is unavailable (bounded search).
milliseconds flip_after(const failure_detector& d, time_point last) {
  for (milliseconds t{0}; t < 60s; t += 1ms)
    if (!d.is_available(last + t)) return t;
  return 60s;
}

/// A detector fed `n` heartbeats exactly `interval` apart from t0; returns the last time.
time_point regular(failure_detector& d, int n, milliseconds interval) {
  time_point t = t0;
  for (int i = 0; i < n; ++i, t += interval)
    d.heartbeat(t);
  return t - interval;
}

} // namespace

TEST_CASE("phi_of is 0.3 at the mean and grows with the silence") {
  CHECK(phi_of(700, 700, 100) == doctest::Approx(0.30103).epsilon(1e-4));
  CHECK(phi_of(0, 700, 100) < 1e-6);
  double prev = -1;
  for (double t = 0; t < 3000; t += 1) {
    double p = phi_of(t, 700, 100);
    REQUIRE(p >= prev);
    prev = p;
  }
  CHECK(prev > 100); // far beyond any threshold, and finite
  CHECK(phi_of(1e9, 700, 0) > 8);
}

TEST_CASE("before the first heartbeat a member is available; the first seeds the estimate") {
  failure_detector d;
  CHECK_FALSE(d.is_monitoring());
  CHECK(d.phi(t0 + 1h) == 0);
  CHECK(d.is_available(t0 + 1h));
  d.heartbeat(t0);
  CHECK(d.is_monitoring());
  CHECK(d.samples() == 2);
  CHECK(d.mean_ms() == doctest::Approx(200)); // first_heartbeat_estimate = interval
  CHECK(d.std_deviation_ms() == doctest::Approx(50));
  // One heartbeat is enough to judge: silence after it is detected like after many.
  auto flip = flip_after(d, t0);
  CHECK(flip >= 1200ms);
  CHECK(flip <= 1250ms);
}

TEST_CASE("phi never decreases while the member is silent") {
  failure_detector d;
  auto last = regular(d, 50, 200ms);
  double prev = 0;
  for (milliseconds t{0}; t < 5s; t += 1ms) {
    double p = d.phi(last + t);
    REQUIRE(p >= prev);
    prev = p;
  }
  CHECK(prev >= d.config().threshold);
}

TEST_CASE("the defaults turn a silent member unavailable 1200..1250 ms after its last beat") {
  detector_config cfg;
  CHECK(cfg.threshold == 8.0);
  CHECK(cfg.heartbeat_interval == 200ms);
  CHECK(detection_delay(cfg, 200ms) == 1223ms);
  failure_detector d{cfg};
  auto last = regular(d, 100, 200ms);
  CHECK(d.mean_ms() == doctest::Approx(200).epsilon(0.01));
  CHECK(d.is_available(last + 1200ms));
  CHECK_FALSE(d.is_available(last + 1250ms));
  auto flip = flip_after(d, last);
  CHECK(flip == detection_delay(cfg, 200ms));
  // The documented crash-to-unreachable window: the crash comes 0..200 ms after the
  // last beat sent, the node evaluates every 200 ms: 1.0 .. 1.45 s, inside 1-2 s.
  CHECK(flip - cfg.heartbeat_interval >= 1000ms);
  CHECK(flip + cfg.heartbeat_interval <= 1450ms);
}

TEST_CASE("a higher threshold or a longer acceptable pause detects later") {
  detector_config strict, lax = {}, patient = {};
  lax.threshold = 12;
  patient.acceptable_pause = 2s;
  CHECK(detection_delay(lax, 200ms) > detection_delay(strict, 200ms));
  CHECK(detection_delay(patient, 200ms) == detection_delay(strict, 200ms) + 1500ms);
}

TEST_CASE("jittered heartbeats and a pause of acceptable_pause are tolerated") {
  STRATA_CLUSTER_RNG(rng);
  failure_detector d;
  time_point t = t0;
  // 2,000 beats, 200 ms apart +- 60 ms (a loaded host): never judged unavailable.
  for (int i = 0; i < 2000; ++i) {
    auto gap = milliseconds{140 + static_cast<int>(pick(rng, 121))};
    for (milliseconds s{0}; s < gap; s += 10ms)
      REQUIRE(d.is_available(t + s));
    t += gap;
    d.heartbeat(t);
  }
  CHECK(d.std_deviation_ms() > 20);
  CHECK(d.std_deviation_ms() < 50);
  // One silence of the usual interval plus acceptable_pause: still available.
  CHECK(d.is_available(t + 700ms));
  CHECK(d.phi(t + 700ms) < 1.0);
  // A frozen member is still found within 2 s even after that much jitter.
  auto flip = flip_after(d, t);
  CHECK(flip > 1100ms);
  CHECK(flip < 2000ms);
}

TEST_CASE("a long pause is not learned: the next silence is detected as fast") {
  failure_detector d;
  auto last = regular(d, 50, 200ms);
  auto before = flip_after(d, last);
  // Frozen for 5 s (unavailable meanwhile), then beats again.
  auto back = last + 5s;
  CHECK_FALSE(d.is_available(back));
  d.heartbeat(back);
  CHECK(d.is_available(back + 1ms)); // reachable again at once
  CHECK(flip_after(d, back) == before);
  // Reordered or duplicated deliveries do not move the last heartbeat back.
  d.heartbeat(back - 100ms);
  CHECK(d.last_heartbeat() == back);
}

TEST_CASE("max_samples bounds the window; old intervals leave it") {
  detector_config cfg;
  cfg.max_samples = 10;
  failure_detector d{cfg};
  auto last = regular(d, 30, 500ms);
  CHECK(d.samples() == 10);
  CHECK(d.mean_ms() == doctest::Approx(500)); // the seeded 150/250 ms are gone
  CHECK(d.std_deviation_ms() == doctest::Approx(0));
  last = last + 100ms;
  for (int i = 0; i < 10; ++i, last += 100ms)
    d.heartbeat(last);
  CHECK(d.mean_ms() == doctest::Approx(100));
}

TEST_CASE("member_detectors judges each member on its own") {
  member_id a{{"h", 1}, 1}, b{{"h", 2}, 1}, c{{"h", 3}, 1};
  member_detectors ds;
  for (int i = 0; i < 20; ++i) {
    ds.heartbeat(a, t0 + i * 200ms);
    ds.heartbeat(b, t0 + i * 200ms);
  }
  for (int i = 20; i < 40; ++i)
    ds.heartbeat(a, t0 + i * 200ms); // b fell silent at 3.8 s
  auto now = t0 + 39 * 200ms;
  CHECK(ds.is_available(a, now));
  CHECK_FALSE(ds.is_available(b, now));
  CHECK(ds.is_available(c, now)); // never heard: not judged
  CHECK_FALSE(ds.phi(c, now));
  CHECK(ds.unavailable(now) == std::vector<member_id>{b});
  CHECK(ds.monitored() == std::vector<member_id>{a, b});
  CHECK(ds.remove(b));
  CHECK_FALSE(ds.remove(b));
  CHECK(ds.unavailable(now).empty());
}
