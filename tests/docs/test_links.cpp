// Every relative link in the project's Markdown (README.md, READING.md, docs/*.md, lessons/*.md) must lead to a
// file or folder inside the repository, and every #fragment must name a heading of the target (GitHub's
// heading slugs) or, for a source file, an existing line (#L12, #L12-L30). A clone has no ../shared.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "tensor/utf8.h"

namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::string line;
  std::istringstream in(text);
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

// A fence line opens or closes a code block: ``` or ~~~ after at most 3 spaces.
bool is_fence(const std::string& line) {
  const std::size_t at = line.find_first_not_of(' ');
  if (at == std::string::npos || at > 3) return false;
  return line.compare(at, 3, "```") == 0 || line.compare(at, 3, "~~~") == 0;
}

// The lines outside fenced code blocks, with their 1-based line numbers (code blocks hold neither links nor headings).
std::vector<std::pair<int, std::string>> prose_lines(const std::string& text) {
  std::vector<std::pair<int, std::string>> out;
  bool in_code = false;
  int number = 0;
  for (const std::string& line : split_lines(text)) {
    ++number;
    if (is_fence(line)) {
      in_code = !in_code;
      continue;
    }
    if (!in_code) out.emplace_back(number, line);
  }
  return out;
}

// Replaces `code spans` (a run of n backticks up to the next run of exactly n) with their text (for heading
// slugs) or with a space (for links: a link written in code is not a link).
std::string strip_code_spans(const std::string& line, bool keep_text) {
  std::string out;
  std::size_t i = 0;
  while (i < line.size()) {
    if (line[i] != '`') {
      out += line[i++];
      continue;
    }
    std::size_t run = 0;
    while (i + run < line.size() && line[i + run] == '`') ++run;
    const std::string ticks(run, '`');
    std::size_t close = line.find(ticks, i + run);
    while (close != std::string::npos && close + run < line.size() && line[close + run] == '`')
      close = line.find(ticks, close + run + 1);
    if (close == std::string::npos) {  // an unmatched run is literal text
      out += ticks;
      i += run;
      continue;
    }
    out += keep_text ? line.substr(i + run, close - i - run) : std::string(" ");
    i = close + run;
  }
  return out;
}

// GitHub keeps letters, marks, numbers, '_', '-' and spaces in a slug; this is that rule for the scripts our
// docs use (Latin, Greek, sub- and superscripts), dropping punctuation, arrows and maths symbols.
bool slug_keeps(char32_t cp) {
  if (cp < 0x80) return std::isalnum(static_cast<unsigned char>(cp)) || cp == '_' || cp == '-' || cp == ' ';
  if (cp >= 0xA0 && cp <= 0xBF) return cp == 0xAA || cp == 0xB2 || cp == 0xB3 || cp == 0xB5 || cp == 0xB9 ||
                                       cp == 0xBA || (cp >= 0xBC && cp <= 0xBE);
  if (cp == 0xD7 || cp == 0xF7) return false;
  if (cp < 0x2000) return true;                  // Latin, Greek, Cyrillic, phonetic letters, combining marks
  if (cp >= 0x2070 && cp <= 0x209F) return true;  // super- and subscripts
  return cp >= 0x2E80;                           // CJK and beyond; general punctuation to U+2E7F is dropped
}

// Rendered heading text: links and images keep their text, emphasis markers and code ticks go.
std::string heading_text(const std::string& raw) {
  const std::string s = strip_code_spans(raw, true);
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == ']' && i + 1 < s.size() && s[i + 1] == '(') {
      const std::size_t close = s.find(')', i);
      if (close != std::string::npos) {
        i = close;
        continue;
      }
    }
    if (s[i] == '[' || s[i] == ']' || s[i] == '*' || s[i] == '!') continue;
    out += s[i];
  }
  return out;
}

std::string github_slug(const std::string& heading) {
  const std::string text = heading_text(heading);
  std::string slug;
  for (std::size_t i = 0; i < text.size();) {
    char32_t cp = 0;
    std::size_t n = gradlab::utf8_decode_one(text, i, cp);
    if (n == 0) {  // not UTF-8: drop the byte
      ++i;
      continue;
    }
    if (slug_keeps(cp)) {
      if (cp == ' ') slug += '-';
      else if (cp < 0x80) slug += static_cast<char>(std::tolower(static_cast<int>(cp)));
      else slug += text.substr(i, n);
    }
    i += n;
  }
  return slug;
}

// The anchors a Markdown file offers: its heading slugs (a repeated slug gets -1, -2, ...) and <a id/name="...">.
std::set<std::string> markdown_anchors(const std::string& text) {
  std::set<std::string> anchors;
  std::map<std::string, int> seen;
  auto add_heading = [&](const std::string& heading) {
    const std::string base = github_slug(heading);
    const int count = seen[base]++;
    anchors.insert(count == 0 ? base : base + "-" + std::to_string(count));
  };
  const auto lines = prose_lines(text);
  for (std::size_t k = 0; k < lines.size(); ++k) {
    const std::string& line = lines[k].second;
    const std::size_t at = line.find_first_not_of(' ');
    if (at != std::string::npos && at <= 3 && line[at] == '#') {
      std::size_t level = 0;
      while (at + level < line.size() && line[at + level] == '#') ++level;
      if (level <= 6 && (at + level == line.size() || line[at + level] == ' ')) {
        std::string heading = line.substr(std::min(line.size(), at + level + 1));
        while (!heading.empty() && (heading.back() == '#' || heading.back() == ' ')) heading.pop_back();
        add_heading(heading);
      }
    }
    // Setext heading: a text line underlined with === or --- (a table rule has '|', a list item starts with '-').
    if (k + 1 < lines.size() && lines[k + 1].first == lines[k].first + 1 && !line.empty() &&
        line.find('|') == std::string::npos && line[0] != '-' && line[0] != ' ' && line[0] != '#') {
      const std::string& under = lines[k + 1].second;
      if (!under.empty() && under.find_first_not_of(under[0]) == std::string::npos && (under[0] == '=' || under[0] == '-'))
        add_heading(line);
    }
    for (const char* attr : {"id=\"", "name=\""}) {
      for (std::size_t p = line.find(attr); p != std::string::npos; p = line.find(attr, p + 1)) {
        const std::size_t start = p + std::string(attr).size(), end = line.find('"', start);
        if (end != std::string::npos && line.rfind("<a", p) != std::string::npos) anchors.insert(line.substr(start, end - start));
      }
    }
  }
  return anchors;
}

struct Link {
  int line = 0;
  std::string target;
};

// The destination of [text](dest "title") or ![alt](dest), and of a reference definition "[label]: dest".
std::vector<Link> markdown_links(const std::string& text) {
  std::vector<Link> links;
  for (const auto& [number, raw] : prose_lines(text)) {
    const std::string line = strip_code_spans(raw, false);
    for (std::size_t p = line.find("]("); p != std::string::npos; p = line.find("](", p + 2)) {
      std::size_t i = p + 2, depth = 0;
      std::string dest;
      if (i < line.size() && line[i] == '<') {
        const std::size_t close = line.find('>', i);
        dest = line.substr(i + 1, close == std::string::npos ? std::string::npos : close - i - 1);
      } else {
        for (; i < line.size(); ++i) {
          const char c = line[i];
          if (c == '(') ++depth;
          if (c == ')' && depth-- == 0) break;
          if (c == ' ') break;  // a title follows
          dest += c;
        }
      }
      links.push_back({number, dest});
    }
    const std::size_t at = line.find_first_not_of(' ');
    if (at != std::string::npos && at <= 3 && line[at] == '[') {
      const std::size_t close = line.find("]:", at);
      if (close != std::string::npos && line.find(']', at) == close) {
        std::istringstream rest(line.substr(close + 2));
        std::string dest;
        rest >> dest;
        if (dest.size() > 1 && dest.front() == '<' && dest.back() == '>') dest = dest.substr(1, dest.size() - 2);
        links.push_back({number, dest});
      }
    }
  }
  return links;
}

std::string percent_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool has_scheme(const std::string& target) {
  const std::size_t colon = target.find(':');
  if (colon == std::string::npos || colon == 0) return false;
  return std::all_of(target.begin(), target.begin() + static_cast<std::ptrdiff_t>(colon), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
  });
}

// "#L12" or "#L12-L30" on a file with at least that many lines.
bool line_anchor_ok(const std::string& anchor, const fs::path& file) {
  std::size_t pos = 0;
  int last = 0;
  while (pos < anchor.size()) {
    if (anchor[pos] != 'L') return false;
    std::size_t end = pos + 1;
    while (end < anchor.size() && std::isdigit(static_cast<unsigned char>(anchor[end]))) ++end;
    if (end == pos + 1 || end - pos > 8) return false;
    last = std::max(last, std::stoi(anchor.substr(pos + 1, end - pos - 1)));
    if (end == anchor.size()) break;
    if (anchor[end] != '-' || pos != 0) return false;
    pos = end + 1;
  }
  return last >= 1 && last <= static_cast<int>(split_lines(read_text(file)).size());
}

// The problems of one Markdown file's relative links, one line each ("README.md:12: 'x.md#y': reason").
std::vector<std::string> broken_links(const fs::path& root, const fs::path& file) {
  std::vector<std::string> problems;
  const fs::path canonical_root = fs::weakly_canonical(root);
  const std::string name = fs::relative(file, root).generic_string();
  for (const Link& link : markdown_links(read_text(file))) {
    auto report = [&](const std::string& why) {
      problems.push_back(name + ":" + std::to_string(link.line) + ": '" + link.target + "': " + why);
    };
    if (link.target.empty()) {
      report("empty link");
      continue;
    }
    if (has_scheme(link.target)) continue;  // https:, mailto: ... are not ours to check
    const std::size_t hash = link.target.find('#');
    const std::string path_part = percent_decode(link.target.substr(0, hash));
    const std::string anchor = hash == std::string::npos ? "" : percent_decode(link.target.substr(hash + 1));
    fs::path resolved = path_part.empty() ? file : file.parent_path() / path_part;
    if (!path_part.empty() && path_part.front() == '/') resolved = root / path_part.substr(1);  // repository root
    resolved = fs::weakly_canonical(resolved);
    const fs::path inside = resolved.lexically_relative(canonical_root);
    if (inside.empty() || *inside.begin() == "..") {
      report("leads outside the repository");
      continue;
    }
    if (!fs::exists(resolved)) {
      report("no such file or folder");
      continue;
    }
    if (hash == std::string::npos) continue;
    if (fs::is_directory(resolved)) {
      report("an #anchor on a folder");
    } else if (resolved.extension() == ".md") {
      if (markdown_anchors(read_text(resolved)).count(anchor) == 0) report("no heading with the slug '" + anchor + "'");
    } else if (!line_anchor_ok(anchor, resolved)) {
      report("a source file takes only #L<line> or #L<a>-L<b> anchors within its length");
    }
  }
  return problems;
}

// README.md, READING.md, docs/*.md and lessons/*.md, in name order.
std::vector<fs::path> project_markdown(const fs::path& root) {
  std::vector<fs::path> files;
  for (const char* top : {"README.md", "READING.md"})
    if (fs::exists(root / top)) files.push_back(root / top);
  for (const char* folder : {"docs", "lessons"}) {
    std::vector<fs::path> found;
    for (const auto& entry : fs::directory_iterator(root / folder))
      if (entry.is_regular_file() && entry.path().extension() == ".md") found.push_back(entry.path());
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

// "[`file`](file): `Name`" and "[`file`](file): `A::f`, `g`" name functions of that file: each must be defined or
// declared there (its last name followed by '('), so a reader can go from a note to the code without grepping.
std::vector<std::string> missing_functions(const fs::path& root, const fs::path& file) {
  std::vector<std::string> problems;
  const std::string name = fs::relative(file, root).generic_string();
  static const std::regex cited(R"(\]\(([^)#\s]+)\):\s*((`[A-Za-z_][A-Za-z0-9_:~]*`(,\s*|\s+and\s+)?)+))");
  static const std::regex one_name("`([A-Za-z0-9_:~]+)`");
  for (const auto& [number, line] : prose_lines(read_text(file))) {
    for (auto m = std::sregex_iterator(line.begin(), line.end(), cited); m != std::sregex_iterator(); ++m) {
      const fs::path target = file.parent_path() / (*m)[1].str();
      if (!fs::is_regular_file(target) || target.extension() == ".md") continue;
      const std::string code = read_text(target), names = (*m)[2].str();
      for (auto n = std::sregex_iterator(names.begin(), names.end(), one_name); n != std::sregex_iterator(); ++n) {
        const std::string full = (*n)[1].str(), last = full.substr(full.rfind(':') == std::string::npos ? 0 : full.rfind(':') + 1);
        if (!std::regex_search(code, std::regex("\\b" + last + "\\s*\\(")))
          problems.push_back(name + ":" + std::to_string(number) + ": `" + full + "` is not a function of " + (*m)[1].str());
      }
    }
  }
  return problems;
}

// A scratch repository under the system temp folder, removed at the end of the test.
struct ScratchRepo {
  fs::path root;
  ScratchRepo() {
    root = fs::temp_directory_path() / ("gradlab_links_" + std::to_string(::getpid()));
    fs::remove_all(root);
    fs::create_directories(root / "docs");
    fs::create_directories(root / "lessons");
    fs::create_directories(root / "src");
  }
  ~ScratchRepo() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(root / name, std::ios::binary) << text;
    return root / name;
  }
};

}  // namespace

TEST_SUITE("docs") {
  TEST_CASE("links: GitHub heading slugs") {
    CHECK(github_slug("Closed form") == "closed-form");
    CHECK(github_slug("KV cache and training length") == "kv-cache-and-training-length");
    CHECK(github_slug("A reading path: `Tensor::view` (20 lines)") == "a-reading-path-tensorview-20-lines");
    CHECK(github_slug("tensor → autograd") == "tensor--autograd");
    CHECK(github_slug("The sink logit τᵢ") == "the-sink-logit-τᵢ");
    CHECK(github_slug("[a link](x.md) and **bold**") == "a-link-and-bold");
    const auto anchors = markdown_anchors("# Top\n## Same\n## Same\n```\n# not a heading\n```\nSetext\n---\n<a id=\"here\"></a>\n");
    CHECK(anchors == std::set<std::string>{"top", "same", "same-1", "setext", "here"});
  }

  TEST_CASE("links: the checker reports broken links and passes good ones") {
    ScratchRepo repo;
    repo.write("docs/spec.md", "# Spec\n## Closed form\ntext\n");
    repo.write("src/code.cpp", "int a;\nint b;\nint c;\n");
    const fs::path good = repo.write("lessons/good.md",
        "[spec](../docs/spec.md) [section](../docs/spec.md#closed-form) [self](#read-next)\n"
        "[code](../src/code.cpp#L2-L3) [folder](../src) [web](https://example.org/x#y)\n"
        "`[not a link](nowhere.md)`\n```\n[also not](nowhere.md)\n```\n## Read next\n[ref]: ../docs/spec.md#spec\n");
    CHECK(broken_links(repo.root, good).empty());

    const fs::path bad = repo.write("lessons/bad.md",
        "[missing](../docs/nope.md)\n[anchor](../docs/spec.md#open-form)\n[outside](../../shared/docs/x.md)\n"
        "[line](../src/code.cpp#L9)\n[named](../src/code.cpp#main)\n[self](#nothing)\n[ref]: ../docs/gone.md\n");
    const auto problems = broken_links(repo.root, bad);
    REQUIRE(problems.size() == 7);
    CHECK(problems[0].find("lessons/bad.md:1: '../docs/nope.md': no such file") == 0);
    CHECK(problems[1].find("no heading with the slug 'open-form'") != std::string::npos);
    CHECK(problems[2].find("outside the repository") != std::string::npos);
    CHECK(problems[3].find("#L<line>") != std::string::npos);
    CHECK(problems[4].find("#L<line>") != std::string::npos);
    CHECK(problems[5].find("'nothing'") != std::string::npos);
    CHECK(problems[6].find("lessons/bad.md:7:") == 0);

    const fs::path named = repo.write("lessons/named.md", "[`src/f.cpp`](../src/f.cpp): `Box::grow`, `shrink`\n");
    repo.write("src/f.cpp", "void Box::grow(int n) {}\n");
    const auto missing = missing_functions(repo.root, named);
    REQUIRE(missing.size() == 1);
    CHECK(missing[0] == "lessons/named.md:1: `shrink` is not a function of ../src/f.cpp");
  }

  TEST_CASE("links: every relative link in the project notes resolves and every named function exists") {
    const fs::path root = GRADLAB_SOURCE_DIR;
    const auto files = project_markdown(root);
    REQUIRE(files.size() >= 10);  // README, docs/, lessons/ notes: an empty list would prove nothing
    std::vector<std::string> problems;
    int links = 0;
    for (const fs::path& file : files) {
      links += static_cast<int>(markdown_links(read_text(file)).size());
      for (std::string& p : broken_links(root, file)) problems.push_back(std::move(p));
      for (std::string& p : missing_functions(root, file)) problems.push_back(std::move(p));
    }
    for (const std::string& p : problems) MESSAGE(p);
    CHECK(links > 20);
    CHECK(problems.empty());
  }
}
