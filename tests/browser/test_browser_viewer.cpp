// The offline viewer in a real browser: `gradlab attn ... --html` pages opened from disk in headless Chromium.
// The page's own #selftest checks its embedded data against the .npy files written beside it (spliced into a
// copy of the page, since a page opened from file:// may not read other files), simulates a hover, switches
// layer, head and panel and exports an SVG; the test reads PASS or FAIL back from the dumped DOM. Screenshots
// of every view must be non-blank and differ from each other.
//
// Without Chromium every test prints "SKIPPED: ..." with the reason, and CTest reports it as skipped (never
// as passed). GRADLAB_CHROMIUM names the browser binary; GRADLAB_VIEWER_OUT keeps the pages and screenshots.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "cli/eval.h"
#include "cli/train.h"
#include "nn/attention_strategy.h"
#include "viz/canvas.h"
#include "viz/html_viewer.h"
#include "viz/image.h"

namespace fs = std::filesystem;
using namespace gradlab;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  REQUIRE(out.good());
}

// Runs a shell command; returns its stdout and sets *status to the exit code.
std::string capture(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    *status = -1;
    return out;
  }
  std::array<char, 65536> buf;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int raw = pclose(p);
  *status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return out;
}

// The browser binary, or "" with *why saying what was looked for.
std::string find_chromium(std::string* why) {
  if (const char* env = std::getenv("GRADLAB_CHROMIUM")) {
    if (access(env, X_OK) == 0) return env;
    *why = std::string("GRADLAB_CHROMIUM=") + env + " is not an executable file";
    return "";
  }
  for (const char* name : {"chromium", "chromium-headless-shell", "chromium-browser", "google-chrome"}) {
    int st = 0;
    std::string path = capture(std::string("command -v ") + name + " 2>/dev/null", &st);
    while (!path.empty() && (path.back() == '\n' || path.back() == ' ')) path.pop_back();
    if (st == 0 && !path.empty()) return path;
  }
  *why = "no chromium, chromium-headless-shell, chromium-browser or google-chrome on PATH (install Debian's chromium: "
         "scripts/browser_test.sh)";
  return "";
}

// A scratch directory: under $GRADLAB_VIEWER_OUT when set (kept), else under /tmp (removed).
struct Scratch {
  std::string path;
  bool keep = false;
  explicit Scratch(const std::string& name) {
    if (const char* out = std::getenv("GRADLAB_VIEWER_OUT")) {
      path = std::string(out) + "/" + name;
      keep = true;
      fs::remove_all(path);
      fs::create_directories(path);
    } else {
      std::string tpl = (fs::temp_directory_path() / ("gradlab-viewer-" + name + "-XXXXXX")).string();
      REQUIRE(mkdtemp(tpl.data()) != nullptr);
      path = tpl;
    }
  }
  ~Scratch() {
    if (!keep) fs::remove_all(path);
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

struct Browser {
  std::string bin;
  int runs = 0;
  // Common flags: the network is closed here, so nothing may try to reach it, and each run gets a fresh profile.
  std::string base(const Scratch& dir) {
    return "timeout 180 " + bin + " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
           "--disable-background-networking --disable-component-update --disable-sync --hide-scrollbars "
           "--user-data-dir=" + dir.file("profile-" + std::to_string(runs++)) + " ";
  }
  std::string dump_dom(const Scratch& dir, const std::string& page, const std::string& hash) {
    int st = 0;
    std::string dom = capture(base(dir) + "--virtual-time-budget=10000 --dump-dom 'file://" + fs::absolute(page).string() +
                                  hash + "' 2>" + dir.file("chromium.log"),
                              &st);
    INFO("chromium exit ", st, ", log: ", read_all(dir.file("chromium.log")).substr(0, 2000));
    CHECK(st == 0);
    return dom;
  }
  viz::Image screenshot(const Scratch& dir, const std::string& page, const std::string& hash, const std::string& png) {
    int st = 0;
    capture(base(dir) + "--window-size=1280,900 --virtual-time-budget=5000 --screenshot=" + png + " 'file://" +
                fs::absolute(page).string() + hash + "' >/dev/null 2>" + dir.file("chromium.log"),
            &st);
    INFO("chromium exit ", st, ", log: ", read_all(dir.file("chromium.log")).substr(0, 2000));
    REQUIRE(st == 0);
    std::string bytes = read_all(png);
    REQUIRE(!bytes.empty());
    return viz::decode_png(std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
  }
};

// A copy of the page with the .npy files spliced in before the marker line, for the self-test to compare with.
std::string with_npy(const std::string& html, const std::vector<std::string>& npy_paths) {
  const std::size_t at = html.find(viz::kViewerNpyMarker);
  REQUIRE(at != std::string::npos);
  std::string refs;
  for (std::size_t k = 0; k < npy_paths.size(); ++k) {
    std::string bytes = read_all(npy_paths[k]);
    REQUIRE(!bytes.empty());
    refs += "<script type=\"text/plain\" class=\"gradlab-npy\" data-model=\"" + std::to_string(k) + "\">" +
            viz::base64(std::vector<std::uint8_t>(bytes.begin(), bytes.end())) + "</script>\n";
  }
  return html.substr(0, at) + refs + html.substr(at);
}

// The text of <pre id="selftest" ...>...</pre> in a dumped DOM.
std::string selftest_result(const std::string& dom) {
  const std::size_t open = dom.find("id=\"selftest\"");
  if (open == std::string::npos) return "(no #selftest element in the DOM)";
  const std::size_t start = dom.find('>', open) + 1, end = dom.find("</pre>", start);
  return dom.substr(start, end - start);
}

// Writes a copy of `page` with the .npy files spliced in, opens it with #selftest and returns the result text.
std::string run_selftest(Browser& browser, const Scratch& dir, const std::string& page, const std::vector<std::string>& npy,
                         const std::string& copy_name) {
  write_all(dir.file(copy_name), with_npy(read_all(page), npy));
  return selftest_result(browser.dump_dom(dir, dir.file(copy_name), "#selftest"));
}

// The two strategies the course compares (causal and StableMask), from the strategy table.
const std::string& first_mask() { return compared_strategies().at(0); }
const std::string& second_mask() { return compared_strategies().at(1); }

// Two tiny models of 4 layers x 4 heads (T = 64), one per compared strategy, trained for a few steps; each in
// dir.file(its strategy name).
void train_pair(const Scratch& dir) {
  for (const std::string& mask : compared_strategies()) {
    std::ostringstream out, err;
    const int rc = cli::run_train({"--mask", mask, "--n_layer", "4", "--n_head", "4", "--n_embd", "32", "--block_size",
                                   "64", "--batch_size", "4", "--max_iters", "3", "--progress", "none", "--out",
                                   dir.file(mask)},
                                  out, err);
    INFO(err.str());
    REQUIRE(rc == 0);
  }
}

// Runs gradlab attn; on success *npy gets the .npy files it wrote, in model order (from its JSON line).
int attn(const std::vector<std::string>& args, std::vector<std::string>* npy = nullptr) {
  std::ostringstream out, err;
  const int rc = cli::run_attn(args, out, err);
  INFO(err.str());
  CHECK(rc == 0);
  if (rc == 0 && npy) {
    // The JSON is the last line the command prints, after the statistics table.
    std::string text = out.str();
    while (!text.empty() && text.back() == '\n') text.pop_back();
    const std::size_t nl = text.rfind('\n');
    const nlohmann::json j = nlohmann::json::parse(nl == std::string::npos ? text : text.substr(nl + 1));
    for (const auto& f : j.at("files")) {
      const std::string name = f.get<std::string>();
      if (name.size() > 4 && name.substr(name.size() - 4) == ".npy") npy->push_back(name);
    }
  }
  return rc;
}

bool skip_without_chromium(Browser* b) {
  std::string why;
  b->bin = find_chromium(&why);
  if (b->bin.empty()) {
    std::printf("SKIPPED: %s\n", why.c_str());
    std::fflush(stdout);
    return true;
  }
  return false;
}

}  // namespace

TEST_SUITE("browser") {

TEST_CASE("viewer: gradlab attn --model A --model B --html passes its self-test in headless Chromium") {
  Browser browser;
  if (skip_without_chromium(&browser)) return;
  Scratch dir("two-models");
  train_pair(dir);
  std::vector<std::string> npy;
  REQUIRE(attn({"--model", dir.file(first_mask()), "--model", dir.file(second_mask()), "--example", "--out", dir.file("cmp.png"),
                "--html", dir.file("cmp.html")}, &npy) == 0);
  REQUIRE(npy.size() == 2);
  const std::string html = read_all(dir.file("cmp.html"));
  CHECK(html.size() <= 2u * 1024 * 1024);  // the bound for 4 layers x 4 heads x T = 64 x 2 models
  const std::string result =
      run_selftest(browser, dir, dir.file("cmp.html"), {npy[0], npy[1]}, "cmp-selftest.html");
  INFO(result);
  CHECK(result.rfind("PASS gradlab viewer self-test", 0) == 0);
  CHECK(result.find("FAIL") == std::string::npos);
  CHECK(result.find("reference .npy files spliced in: 2") != std::string::npos);
  CHECK(result.find("within half a quantization step") != std::string::npos);

  // The self-test can fail: model 0 checked against the other model's .npy.
  const std::string swapped =
      run_selftest(browser, dir, dir.file("cmp.html"), {npy[1], npy[0]}, "swapped.html");
  INFO(swapped);
  CHECK(swapped.rfind("FAIL", 0) == 0);
}

TEST_CASE("viewer: --mask both and a one-model page pass their self-tests too") {
  Browser browser;
  if (skip_without_chromium(&browser)) return;
  Scratch dir("one-model");
  train_pair(dir);
  std::vector<std::string> npy;
  REQUIRE(attn({"--model", dir.file(first_mask()), "--mask", "both", "--example", "--out", dir.file("both.png"), "--html",
                dir.file("both.html")}, &npy) == 0);
  REQUIRE(npy.size() == 2);
  std::string result = run_selftest(browser, dir, dir.file("both.html"), npy, "both-selftest.html");
  INFO(result);
  CHECK(result.rfind("PASS", 0) == 0);
  npy.clear();
  REQUIRE(attn({"--model", dir.file(second_mask()), "--example", "--out", dir.file("one.png"), "--html", dir.file("one.html")}, &npy) == 0);
  REQUIRE(npy.size() == 1);
  result = run_selftest(browser, dir, dir.file("one.html"), npy, "one-selftest.html");
  INFO(result);
  CHECK(result.rfind("PASS", 0) == 0);
}

TEST_CASE("viewer: screenshots of the four views are non-blank and differ from each other") {
  Browser browser;
  if (skip_without_chromium(&browser)) return;
  Scratch dir("screenshots");
  train_pair(dir);
  REQUIRE(attn({"--model", dir.file(first_mask()), "--model", dir.file(second_mask()), "--example", "--out", dir.file("cmp.png"),
                "--html", dir.file("cmp.html")}) == 0);
  const std::vector<std::string> views = {"head", "model", "compare", "metrics"};
  std::vector<viz::Image> shots;
  for (const std::string& v : views) {
    shots.push_back(browser.screenshot(dir, dir.file("cmp.html"), "#view=" + v, dir.file("view-" + v + ".png")));
    const viz::Image& img = shots.back();
    CHECK(img.width() == 1280);
    CHECK(img.height() == 900);
    std::size_t ink = 0;
    for (int y = 0; y < img.height(); ++y)
      for (int x = 0; x < img.width(); ++x) ink += !(img.get(x, y) == viz::Color{255, 255, 255});
    const double share = static_cast<double>(ink) / (static_cast<double>(img.width()) * img.height());
    INFO("view ", v, ": ", share * 100, "% of the pixels are not white");
    CHECK(share > 0.03);
  }
  for (std::size_t a = 0; a < shots.size(); ++a)
    for (std::size_t b = a + 1; b < shots.size(); ++b) {
      std::size_t differ = 0;
      for (int y = 0; y < 900; ++y)
        for (int x = 0; x < 1280; ++x) differ += !(shots[a].get(x, y) == shots[b].get(x, y));
      INFO(views[a], " vs ", views[b], ": ", differ, " pixels differ");
      CHECK(differ > 1280 * 900 / 100);
    }
}

}  // TEST_SUITE
