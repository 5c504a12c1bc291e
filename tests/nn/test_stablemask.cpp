// StableMask math (nn/stablemask.h): the sink logit tau_i = log Z(i) against the explicit pseudo-column sum.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "nn/stablemask.h"
#include "tensor/error.h"

using namespace gradlab;

namespace {

// Z(i) = sum over the pseudo columns j = i+1 .. last of e^{-j gamma}, term by term (docs/stablemask.md#training-form).
double naive_pseudo_mass(double gamma, std::int64_t last_column, std::int64_t row) {
  double z = 0.0;
  for (std::int64_t j = row + 1; j <= last_column; ++j) z += std::exp(-double(j) * gamma);
  return z;
}

}  // namespace

TEST_SUITE("attention") {

TEST_CASE("stablemask tau equals log of the explicit pseudo-column sum (finite tail)") {
  const double gammas[] = {2.0, 1.3, 0.5, 0.0625, 1.0 / 256.0};
  const std::int64_t lengths[] = {1, 2, 5, 64, 300};
  for (double gamma : gammas)
    for (std::int64_t L : lengths) {
      const std::int64_t rows[] = {0, 1, 2, L - 3, L - 2, L - 1, L, L + 1, L + 7, 2 * L + 3};
      for (std::int64_t i : rows) {
        if (i < 0) continue;
        CAPTURE(gamma);
        CAPTURE(L);
        CAPTURE(i);
        const double tau = stablemask_tau(gamma, L, i, StableMaskTail::Finite);
        const double z = naive_pseudo_mass(gamma, L - 1, i);
        if (i >= L - 1) {
          // no pseudo columns left: Z = 0 exactly, never a negative "mass" from the geometric formula
          CHECK(z == 0.0);
          CHECK(std::isinf(tau));
          CHECK(tau < 0.0);
          CHECK(std::exp(tau) == 0.0);
        } else {
          REQUIRE(z > 0.0);
          CHECK(std::isfinite(tau));
          CHECK_MESSAGE(std::abs(tau - std::log(z)) <= 1e-12 * std::max(1.0, std::abs(tau)), "finite tail: tau(gamma ",
                        gamma, ", L ", L, ", row ", i, ") = ", tau, ", expected log of the pseudo-column sum ",
                        std::log(z), " within 1e-12 relative");
        }
      }
    }
}

TEST_CASE("stablemask tau / infinite tail / equals the sum to infinity and decreases with position") {
  const double gammas[] = {2.0, 0.5, 0.0625, 1.0 / 256.0};
  for (double gamma : gammas) {
    double previous = std::numeric_limits<double>::infinity();
    for (std::int64_t i : {0, 1, 5, 63, 64, 300, 1000}) {
      if (double(i + 1) * gamma > 700.0) continue;  // e^-700 is near the end of double's range
      CAPTURE(gamma);
      CAPTURE(i);
      // terms beyond 60/gamma columns past the row are below e^-60 of the first: negligible in double
      const std::int64_t last = i + 1 + static_cast<std::int64_t>(60.0 / gamma);
      const double z = naive_pseudo_mass(gamma, last, i);
      const double tau = stablemask_tau(gamma, /*L*/ 8, i, StableMaskTail::Infinite);
      CHECK_MESSAGE(std::abs(tau - std::log(z)) <= 1e-11 * std::max(1.0, std::abs(tau)), "infinite tail: tau(gamma ",
                    gamma, ", row ", i, ") = ", tau, ", expected log of the sum to infinity ", std::log(z),
                    " within 1e-11 relative");
      CHECK(tau < previous);
      previous = tau;
    }
  }
  // the finite tail lacks exactly the columns from L on: log Z_inf - log Z_fin = -log(1 - e^{-(L-1-i) gamma})
  const double finite = stablemask_tau(0.5, 20, 3, StableMaskTail::Finite);
  const double infinite = stablemask_tau(0.5, 20, 3, StableMaskTail::Infinite);
  CHECK(finite < infinite);
  CHECK(infinite - finite == doctest::Approx(-std::log1p(-std::exp(-8.0))).epsilon(1e-9));
}

TEST_CASE("stablemask pseudo mass decreases along the rows (progressively decreasing mask ratio)") {
  double previous = std::numeric_limits<double>::infinity();
  for (std::int64_t i = 0; i < 15; ++i) {
    const double tau = stablemask_tau(0.25, 16, i, StableMaskTail::Finite);
    CHECK(tau < previous);
    previous = tau;
  }
}

TEST_CASE("stablemask tau table is (H / T) from first_row") {
  const std::vector<double> gammas = {0.5, 0.125, 2.0};
  const std::int64_t T = 9, L = 7, first = 3;
  for (StableMaskTail tail : {StableMaskTail::Finite, StableMaskTail::Infinite}) {
    std::vector<float> table(gammas.size() * T, 123.0f);
    stablemask_tau_table(gammas, L, T, first, tail, table.data());
    for (std::size_t h = 0; h < gammas.size(); ++h)
      for (std::int64_t t = 0; t < T; ++t)
        CHECK(table[h * T + t] == static_cast<float>(stablemask_tau(gammas[h], L, first + t, tail)));
    // the float64 table holds the doubles themselves, not float-rounded ones
    std::vector<double> exact(gammas.size() * T, 123.0);
    stablemask_tau_table(gammas, L, T, first, tail, exact.data());
    for (std::size_t h = 0; h < gammas.size(); ++h)
      for (std::int64_t t = 0; t < T; ++t) CHECK(exact[h * T + t] == stablemask_tau(gammas[h], L, first + t, tail));
  }
  std::vector<float> table(gammas.size() * T);
  CHECK_THROWS_AS(stablemask_tau_table({}, L, T, 0, StableMaskTail::Finite, table.data()), Error);
  CHECK_THROWS_AS(stablemask_tau_table(gammas, L, 0, 0, StableMaskTail::Finite, table.data()), Error);
  CHECK_THROWS_AS(stablemask_tau_table(gammas, L, T, -1, StableMaskTail::Finite, table.data()), Error);
  CHECK_THROWS_AS(stablemask_tau_table(gammas, L, T, 0, StableMaskTail::Finite, static_cast<float*>(nullptr)), Error);
  CHECK_THROWS_AS(stablemask_tau_table(gammas, L, T, 0, StableMaskTail::Finite, static_cast<double*>(nullptr)), Error);
  CHECK_THROWS_AS(stablemask_tau_table({0.5, -1.0}, L, T, 0, StableMaskTail::Finite, table.data()), Error);
}

TEST_CASE("stablemask tau rejects bad input") {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (double bad : {0.0, -0.5, nan, inf})
    CHECK_THROWS_AS(stablemask_tau(bad, 8, 0, StableMaskTail::Finite), Error);
  CHECK_THROWS_AS(stablemask_tau(0.5, 0, 0, StableMaskTail::Finite), Error);
  CHECK_THROWS_AS(stablemask_tau(0.5, 8, -1, StableMaskTail::Infinite), Error);
}

TEST_CASE("alibi slopes follow Press et al. / including the interleaving rule") {
  // H a power of two: 2^(-8(h+1)/H)
  for (std::int64_t H : {1, 2, 4, 8, 16}) {
    const std::vector<double> s = alibi_slopes(H);
    REQUIRE(s.size() == static_cast<std::size_t>(H));
    for (std::int64_t h = 0; h < H; ++h) CHECK(s[h] == doctest::Approx(std::exp2(-8.0 * (h + 1) / H)).epsilon(1e-15));
  }
  CHECK(alibi_slopes(1)[0] == 1.0 / 256.0);
  CHECK(alibi_slopes(4) == std::vector<double>{0.25, 0.0625, 0.015625, 0.00390625});
  // H = 6: the 4-head set, then slopes 0 and 2 of the 8-head set (2^-1, 2^-3)
  CHECK(alibi_slopes(6) == std::vector<double>{0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125});
  // H = 12: the 8-head set 2^-1..2^-8, then 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5 from the 16-head set
  const std::vector<double> s12 = alibi_slopes(12);
  REQUIRE(s12.size() == 12);
  for (int h = 0; h < 8; ++h) CHECK(s12[h] == doctest::Approx(std::exp2(-(h + 1.0))).epsilon(1e-15));
  for (int k = 0; k < 4; ++k) CHECK(s12[8 + k] == doctest::Approx(std::exp2(-0.5 - k)).epsilon(1e-15));
  // every slope distinct and in (0, 1)
  for (std::int64_t H : {3, 5, 6, 7, 12}) {
    const std::vector<double> s = alibi_slopes(H);
    REQUIRE(s.size() == static_cast<std::size_t>(H));
    for (std::size_t a = 0; a < s.size(); ++a) {
      CHECK(s[a] > 0.0);
      CHECK(s[a] < 1.0);
      for (std::size_t b = a + 1; b < s.size(); ++b) CHECK(s[a] != s[b]);
    }
  }
  CHECK_THROWS_AS(alibi_slopes(0), Error);
}

}  // TEST_SUITE
