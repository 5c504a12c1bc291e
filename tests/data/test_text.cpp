// Tokenizers (char, byte, UTF-8 handling, JSON) and the text file reader.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io_util.h"
#include "data/textfile.h"
#include "data/tokenizer.h"

using namespace gradlab;
using io_test::error_of;
using io_test::one_line;

TEST_SUITE("io") {

TEST_CASE("tokenizer: char vocabulary is the sorted set of characters and round-trips") {
  Tokenizer tok = Tokenizer::char_level("hello world\n");
  CHECK(tok.kind() == TokenizerKind::Char);
  CHECK(tok.vocab_size() == 9);
  CHECK(tok.decode({0, 1, 2, 3, 4, 5, 6, 7, 8}) == "\n dehlorw");
  std::vector<std::int32_t> ids = tok.encode("world hello");
  CHECK(ids == std::vector<std::int32_t>{8, 6, 7, 5, 2, 1, 4, 3, 5, 5, 6});
  CHECK(tok.decode(ids) == "world hello");
  // Multi-byte characters are single tokens, sorted by code point.
  Tokenizer u = Tokenizer::char_level("zé€😀a");
  CHECK(u.vocab() == std::vector<char32_t>{U'a', U'z', U'\u00e9', U'\u20ac', U'\U0001F600'});
  CHECK(u.encode("😀é") == std::vector<std::int32_t>{4, 2});
  CHECK(u.decode(u.encode("a€z😀")) == "a€z😀");
  CHECK(error_of([] { Tokenizer::char_level(""); }).find("empty") != std::string::npos);
}

TEST_CASE("tokenizer: an unknown character is named with its character index and byte offset") {
  Tokenizer tok = Tokenizer::char_level("abcé");
  std::string msg = error_of([&] { tok.encode("abz"); });
  CHECK(msg == "char tokenizer: character 'z' (U+007A) at character 2 (byte offset 2) is not in the vocabulary of 4 characters");
  // After a 2-byte character the byte offset runs ahead of the character index.
  msg = error_of([&] { tok.encode("éa!"); });
  CHECK(msg.find("character '!' (U+0021) at character 2 (byte offset 3)") != std::string::npos);
  // Control characters are shown escaped, so the message stays on one line.
  msg = error_of([&] { tok.encode("a\nb"); });
  CHECK(msg.find("'\\n' (U+000A) at character 1") != std::string::npos);
  CHECK(one_line(msg));
}

TEST_CASE("tokenizer: invalid UTF-8 bytes decode as U+FFFD one per byte") {
  auto cps = [](std::string_view s) {
    std::vector<char32_t> out;
    for (const Utf8Char& c : decode_utf8(s)) out.push_back(c.code_point);
    return out;
  };
  CHECK(cps("a\xff" "b") == std::vector<char32_t>{U'a', 0xFFFD, U'b'});
  CHECK(cps("\xc0\xaf") == std::vector<char32_t>{0xFFFD, 0xFFFD});          // overlong '/'
  CHECK(cps("\xed\xa0\x80") == std::vector<char32_t>{0xFFFD, 0xFFFD, 0xFFFD});  // a surrogate
  CHECK(cps("\xe2\x82") == std::vector<char32_t>{0xFFFD, 0xFFFD});          // truncated '€'
  CHECK(cps("\xf4\x90\x80\x80") == std::vector<char32_t>{0xFFFD, 0xFFFD, 0xFFFD, 0xFFFD});  // above U+10FFFF
  CHECK(cps("\xe2\x82\xac") == std::vector<char32_t>{0x20AC});
  CHECK(cps("\xf0\x9f\x98\x80") == std::vector<char32_t>{0x1F600});
  CHECK(count_invalid_utf8("ok \xff\xfe ok \xc3") == 3);
  CHECK(count_invalid_utf8("plain ascii and é") == 0);
  // Latin-1 text trains: each invalid byte is the replacement character in the vocabulary.
  Tokenizer tok = Tokenizer::char_level("caf\xe9 na\xefve");
  CHECK(tok.id_of(0xFFFD) >= 0);
  CHECK(tok.decode(tok.encode("caf\xe9")) == "caf\xef\xbf\xbd");
  // Without U+FFFD in the vocabulary, the error names the invalid byte.
  Tokenizer ascii = Tokenizer::char_level("abc");
  std::string msg = error_of([&] { ascii.encode("ab\xff"); });
  CHECK(msg.find("invalid UTF-8 byte 0xFF (read as U+FFFD) at character 2 (byte offset 2)") != std::string::npos);
}

TEST_CASE("tokenizer: byte level is lossless over all 256 bytes") {
  Tokenizer tok = Tokenizer::byte_level();
  CHECK(tok.vocab_size() == 256);
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  std::vector<std::int32_t> ids = tok.encode(all);
  for (int b = 0; b < 256; ++b) CHECK(ids[b] == b);
  CHECK(tok.decode(ids) == all);
  CHECK(error_of([&] { tok.decode({1, 256}); }) == "byte tokenizer: id 256 at position 1 is outside the vocabulary [0, 256)");
  CHECK(error_of([&] { Tokenizer::char_level("ab").decode({-1}); }).find("id -1 at position 0") != std::string::npos);
}

TEST_CASE("tokenizer: JSON round trip and validation") {
  Tokenizer tok = Tokenizer::char_level("the quick brown fox é");
  Tokenizer back = Tokenizer::from_json(tok.to_json());
  CHECK(back.vocab() == tok.vocab());
  CHECK(Tokenizer::char_level("ba").to_json() == R"({"kind":"char","vocab":[97,98]})");
  CHECK(Tokenizer::from_json(Tokenizer::byte_level().to_json()).kind() == TokenizerKind::Byte);
  struct Case {
    const char* json;
    const char* expect;
  };
  const Case cases[] = {
      {"not json", "not valid JSON"},
      {"[1,2]", "expected an object"},
      {R"({"kind":"word"})", "unknown kind 'word'"},
      {R"({"vocab":[97]})", "missing string 'kind'"},
      {R"({"kind":"char"})", "needs 'vocab'"},
      {R"({"kind":"char","vocab":[]})", "empty vocabulary"},
      {R"({"kind":"char","vocab":[98,97]})", "must be sorted and unique"},
      {R"({"kind":"char","vocab":[97,97]})", "must be sorted and unique"},
      {R"({"kind":"char","vocab":[-1]})", "expected a code point"},
      {R"({"kind":"char","vocab":[1114112]})", "expected a code point"},
      {R"({"kind":"char","vocab":[55296]})", "not a Unicode scalar value"},
      {R"({"kind":"char","vocab":[97.5]})", "expected a code point"},
      {R"({"kind":"char","vocab":["a"]})", "expected a code point"},
      {R"({"kind":"char","vocab":[97],"extra":1})", "unknown key 'extra'"},
      {R"({"kind":"byte","vocab":[97]})", "has no 'vocab'"},
  };
  for (const Case& c : cases) {
    const std::string json = c.json;
    CAPTURE(json);
    std::string msg = error_of([&] { Tokenizer::from_json(c.json); });
    CAPTURE(msg);
    CHECK(msg.find(c.expect) != std::string::npos);
    CHECK(one_line(msg));
  }
}

TEST_CASE("textfile: reads a file and gives clear errors for missing or directory or empty or unreadable files") {
  io_test::TempDir dir;
  const std::string path = dir.file("t.txt");
  io_test::write_bytes(path, std::string("hello\0world\n", 12));
  CHECK(read_text_file(path) == std::string("hello\0world\n", 12));
  CHECK(error_of([&] { read_text_file(dir.file("nope.txt")); }) == "text file '" + dir.file("nope.txt") + "': no such file");
  CHECK(error_of([&] { read_text_file(dir.path); }).find("is a directory") != std::string::npos);
  io_test::write_bytes(dir.file("empty.txt"), "");
  CHECK(error_of([&] { read_text_file(dir.file("empty.txt")); }).find("is empty") != std::string::npos);
  CHECK(error_of([&] { read_text_file("/dev/null"); }).find("not a regular file") != std::string::npos);
  if (::geteuid() != 0) {  // root reads anything, so the permission case only exists for other users
    io_test::write_bytes(dir.file("locked.txt"), "secret");
    ::chmod(dir.file("locked.txt").c_str(), 0);
    CHECK(error_of([&] { read_text_file(dir.file("locked.txt")); }).find("cannot open: Permission denied") != std::string::npos);
  }
}

}  // TEST_SUITE
