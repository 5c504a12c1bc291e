// The offline viewer's page as written (the browser half is tests/browser): self-contained, compact, its
// embedded data decodes to the maps within half a quantization step, and bad input is a one-line error.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "cli/attn_html.h"
#include "cli/eval.h"
#include "tensor/error.h"
#include "viz/html_viewer.h"

using namespace gradlab::viz;

namespace {

AttentionMaps ramp(std::int64_t L, std::int64_t H, std::int64_t T, bool stablemask, const std::string& name) {
  AttentionMaps m;
  m.n_layer = L, m.n_head = H, m.T = T, m.mask = name, m.stablemask = stablemask;
  m.values.assign(static_cast<std::size_t>(L * H * T * T), 0.0f);
  for (std::int64_t lh = 0; lh < L * H; ++lh)
    for (std::int64_t i = 0; i < T; ++i) {
      float mass = stablemask ? 0.5f + 0.5f * static_cast<float>(i) / T : 1.0f, total = 0;
      for (std::int64_t j = 0; j <= i; ++j) total += 1.0f + static_cast<float>((j * 7 + lh) % 5);
      for (std::int64_t j = 0; j <= i; ++j)
        m.values[static_cast<std::size_t>((lh * T + i) * T + j)] = mass * (1.0f + static_cast<float>((j * 7 + lh) % 5)) / total;
    }
  return m;
}

std::vector<std::string> tokens_of(std::int64_t T) {
  std::vector<std::string> t;
  for (std::int64_t k = 0; k < T; ++k) t.push_back(k % 9 == 0 ? " " : k % 13 == 0 ? "</script>" : std::string(1, 'a' + k % 26));
  return t;
}

nlohmann::json embedded(const std::string& html) {
  const std::string open = "<script type=\"application/json\" id=\"gradlab-data\">";
  std::size_t a = html.find(open);
  REQUIRE(a != std::string::npos);
  a += open.size();
  return nlohmann::json::parse(html.substr(a, html.find("</script>", a) - a));
}

std::vector<double> decode16(const std::string& b64) {
  static const std::string table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::vector<unsigned char> bytes;
  unsigned acc = 0;
  int bits = 0;
  for (char ch : b64) {
    if (ch == '=') break;
    acc = (acc << 6) | static_cast<unsigned>(table.find(ch));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<unsigned char>((acc >> bits) & 0xFF));
    }
  }
  std::vector<double> out;
  for (std::size_t k = 0; k + 1 < bytes.size(); k += 2) out.push_back((bytes[k] | (bytes[k + 1] << 8)) / 65535.0);
  return out;
}

}  // namespace

TEST_SUITE("viz") {

TEST_CASE("html viewer: one self-contained page under 2 MB whose data decodes to the maps within half a step") {
  const std::int64_t L = 4, H = 4, T = 64;
  AttentionMaps a = ramp(L, H, T, false, "causal"), b = ramp(L, H, T, true, "StableMask");
  const std::vector<std::string> tokens = tokens_of(T);
  ViewerModel vb{&b, {{"sink score", std::vector<double>(L * H, 0.25)}}};
  const std::string html = html_viewer({{&a, {}}, vb}, tokens, {});
  CHECK(html.size() <= 2u * 1024 * 1024);
  MESSAGE("page for 4 layers x 4 heads x T = 64 x 2 models: ", html.size(), " bytes");
  // Nothing to fetch: no external URL, stylesheet link, font or script source; a CSP that forbids fetching.
  std::string rest = html;
  for (std::size_t p; (p = rest.find("http://www.w3.org/2000/svg")) != std::string::npos;) rest.erase(p, 26);
  CHECK(rest.find("http://") == std::string::npos);
  CHECK(rest.find("https://") == std::string::npos);
  CHECK(rest.find("<link") == std::string::npos);
  CHECK(rest.find("src=") == std::string::npos);
  CHECK(rest.find("@import") == std::string::npos);
  CHECK(html.find("default-src 'none'") != std::string::npos);
  CHECK(html.find(kViewerNpyMarker) != std::string::npos);
  // A token "</script>" cannot end the data block early.
  nlohmann::json d = embedded(html);
  CHECK(d["T"] == T);
  CHECK(d["tokens"][13] == "</script>");
  CHECK(d["tokens"][9] == "\u00b7");
  REQUIRE(d["models"].size() == 2);
  for (int k = 0; k < 2; ++k) {
    const AttentionMaps& m = k == 0 ? a : b;
    std::vector<double> lower = decode16(d["models"][k]["attn"]);
    std::vector<double> sink = decode16(d["models"][k]["sink"]);
    REQUIRE(lower.size() == static_cast<std::size_t>(L * H * T * (T + 1) / 2));
    REQUIRE(sink.size() == static_cast<std::size_t>(L * H * T));
    double worst = 0, worst_sink = 0;
    std::size_t at = 0;
    for (std::int64_t l = 0; l < L; ++l)
      for (std::int64_t h = 0; h < H; ++h)
        for (std::int64_t i = 0; i < T; ++i) {
          for (std::int64_t j = 0; j <= i; ++j) worst = std::max(worst, std::fabs(lower[at++] - m.at(l, h, i, j)));
          const double pseudo = m.stablemask ? 1.0 - m.row_mass(l, h, i) : 0.0;
          worst_sink = std::max(worst_sink, std::fabs(sink[static_cast<std::size_t>((l * H + h) * T + i)] - pseudo));
        }
    CHECK(worst <= kViewerQuantStep / 2 + 1e-12);
    CHECK(worst_sink <= kViewerQuantStep / 2 + 1e-6);
  }
  // Metrics: the first-token statistics, then the caller's.
  auto metrics = d["models"][1]["metrics"];
  REQUIRE(metrics.size() == 4);
  CHECK(metrics[3]["name"] == "sink score");
  CHECK(metrics[2]["values"][0].get<double>() == doctest::Approx(attention_stats(b).heads[0].mean_real_mass));
  // Same input, same bytes.
  CHECK(html_viewer({{&a, {}}, vb}, tokens, {}) == html);
}

TEST_CASE("html viewer: gradlab attn's per-head JSON numbers beyond the built-in ones become metrics charts") {
  std::vector<AttentionMaps> maps = {ramp(1, 2, 8, false, "causal"), ramp(1, 2, 8, true, "StableMask")};
  nlohmann::json stats = nlohmann::json::array();
  for (int k = 0; k < 2; ++k) {
    nlohmann::json heads = nlohmann::json::array();
    for (int h = 0; h < 2; ++h)
      heads.push_back({{"layer", 0}, {"head", h}, {"first_share_raw", 0.1}, {"mean_real_mass", 1.0}, {"sink_score", 0.5 + h},
                       {"note", "text is not a metric"}});
    stats.push_back({{"mask", maps[k].mask}, {"heads", heads}});
  }
  const std::string path = "test_viz_html_viewer_metrics.html";
  gradlab::cli::write_attn_html(path, maps, tokens_of(8), "some text", stats, "viridis");
  std::ifstream in(path);
  const std::string html((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(path.c_str());
  nlohmann::json d = embedded(html);
  CHECK(d["text"] == "some text");
  for (int k = 0; k < 2; ++k) {
    auto m = d["models"][k]["metrics"];
    REQUIRE(m.size() == 4);  // three built in, plus sink_score; "note" is not a number, the built-in names not repeated
    CHECK(m[3]["name"] == "sink_score");
    CHECK(m[3]["values"][1].get<double>() == doctest::Approx(1.5));
  }
}

TEST_CASE("gradlab attn --html: a name without .html or in a missing directory is bad usage (exit 2)") {
  for (const std::string& bad : {std::string("viewer.txt"), std::string("/nonexistent-dir/viewer.html")}) {
    std::ostringstream out, err;
    const int rc = gradlab::cli::run_attn({"--model", "/nonexistent-model", "--example", "--out", "x.png", "--html", bad}, out, err);
    INFO(err.str());
    CHECK(rc == 2);
    CHECK(err.str().find("--html " + bad) != std::string::npos);
  }
}

TEST_CASE("html viewer: bad input is a one-line error naming what was wrong") {
  AttentionMaps a = ramp(2, 2, 8, false, "causal"), wide = ramp(2, 3, 8, false, "other");
  auto message = [](auto f) {
    try {
      f();
    } catch (const gradlab::Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  CHECK(message([&] { html_viewer({}, tokens_of(8)); }).find("got 0 models") != std::string::npos);
  CHECK(message([&] { html_viewer({{&a, {}}, {&a, {}}, {&a, {}}}, tokens_of(8)); }).find("got 3 models") != std::string::npos);
  CHECK(message([&] { html_viewer({{nullptr, {}}}, tokens_of(8)); }).find("null") != std::string::npos);
  CHECK(message([&] { html_viewer({{&a, {}}, {&wide, {}}}, tokens_of(8)); }).find("expected the same layers") != std::string::npos);
  CHECK(message([&] { html_viewer({{&a, {}}}, tokens_of(7)); }).find("got 7 tokens for T=8") != std::string::npos);
  CHECK(message([&] { html_viewer({{&a, {{"m", {1, 2}}}}}, tokens_of(8)); }).find("has 2 values, expected one per head (4)") !=
        std::string::npos);
  CHECK(message([&] { write_html_viewer("/nonexistent-dir/x.html", {{&a, {}}}, tokens_of(8)); }).find("/nonexistent-dir/x.html") !=
        std::string::npos);
}

}  // TEST_SUITE
