// Hostile text and task input through the commands (`gradlab train --data`, `gradlab eval --data`). tests/data
// covers read_text_file on a missing, a directory, an empty and a chmod-000 file, and the tokenizer's UTF-8
// rules; test_cli_train.cpp covers a missing, an empty and a too-short --data file. Here: the remaining kinds of
// path (FIFO, device, directory through the command), the exact length at which a text becomes long enough
// for one window in both splits, unreadable files as root and as a user, and what the commands do with bytes
// that are not UTF-8 (the behaviour documented in data/tokenizer.h).
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "hostile_util.h"
#include "train/checkpoint.h"
#include "data/tokenizer.h"

using namespace hostile;

namespace {

// `gradlab train` on a data file with the tiny model; 0 steps unless asked, so that only the input is tested.
Run train_on(const std::string& data, const std::string& out_dir, std::vector<std::string> extra = {},
             int max_iters = 0) {
  std::vector<std::string> args = tiny_flags();
  args.push_back("--max_iters");
  args.push_back(std::to_string(max_iters));
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back("--data");
  args.push_back(data);
  args.push_back("--out");
  args.push_back(out_dir);
  return train(args);
}

void check_refused(const Run& r, const std::string& fragment) {
  INFO(r.err);
  CHECK(r.code == 2);
  CHECK(r.err_lines() == 1);
  CHECK(r.out.empty());
  CHECK(r.err.find(fragment) != std::string::npos);
}

}  // namespace

TEST_SUITE("hostile") {

TEST_CASE("hostile text: a directory / a FIFO / a device as --data are refused without reading") {
  TempDir tmp;
  const std::string fifo = tmp.file("pipe");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // A FIFO with no writer would block a naive open() forever; the reader must look before it opens.
  for (const std::string& path : {tmp.path, fifo, std::string("/dev/null")}) {
    CAPTURE(path);
    Run r = train_on(path, tmp.file("out"));
    check_refused(r, path);
    CHECK((r.err.find("directory") != std::string::npos || r.err.find("not a regular file") != std::string::npos));
    CHECK_FALSE(std::filesystem::exists(tmp.file("out") + "/" + gradlab::kModelFileName));
  }
}

TEST_CASE("hostile text: an unreadable file") {
  TempDir tmp;
  const std::string path = tmp.file("secret.txt");
  write_file(path, ascii_text(500));
  REQUIRE(::chmod(path.c_str(), 0) == 0);
  if (::geteuid() != 0) {
    check_refused(train_on(path, tmp.file("out")), "secret.txt");
    Run r = train_on(path, tmp.file("out"));
    CHECK(r.err.find("ermission denied") != std::string::npos);
    return;
  }
  // Root ignores permission bits: as root the same file simply reads. Check that, then run the refusal in a
  // child process that drops to the unprivileged user 'nobody' (65534), so the error path is tested even here.
  Run as_root = train_on(path, tmp.file("out-root"));
  INFO(as_root.err);
  CHECK(as_root.code == 0);
  REQUIRE(::chmod(tmp.path.c_str(), 0777) == 0);  // nobody must reach the file and may create out/
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
    Run r = train_on(path, tmp.file("out-nobody"));
    const bool ok = r.code == 2 && r.err_lines() == 1 && r.err.find("secret.txt") != std::string::npos &&
                    r.err.find("ermission denied") != std::string::npos;
    if (!ok) std::fprintf(stderr, "as nobody: exit %d: %s", r.code, r.err.c_str());
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 3) {
    MESSAGE("running as root and cannot switch to 'nobody': the refusal is tested only when run as a user");
    return;
  }
  CHECK(WEXITSTATUS(status) == 0);  // as nobody: exit code 2, one line naming the file, "Permission denied"
}

TEST_CASE("hostile text: exactly long enough for one window in both splits and one character less") {
  // The documented split: train = the first floor(0.9 n) tokens, val = the rest; each needs T+1 tokens.
  const std::int64_t T = 8;  // --block_size of tiny_flags()
  std::int64_t n = 1;
  while (!(n * 9 / 10 >= T + 1 && n - n * 9 / 10 >= T + 1)) ++n;
  TempDir tmp;
  const std::string ok = tmp.file("ok.txt"), short_by_one = tmp.file("short.txt");
  write_file(ok, ascii_text(static_cast<std::size_t>(n)));
  write_file(short_by_one, ascii_text(static_cast<std::size_t>(n - 1)));
  Run good = train_on(ok, tmp.file("out-ok"));
  INFO(good.err);
  CHECK(good.code == 0);
  Run bad = train_on(short_by_one, tmp.file("out-short"));
  check_refused(bad, "fewer than one window");
  CHECK(bad.err.find("val split") != std::string::npos);  // the 10% split is the one that runs short
}

TEST_CASE("hostile text: a Latin-1 file trains with the char tokenizer and every invalid byte becomes U+FFFD") {
  TempDir tmp;
  std::string text = ascii_text(300);
  for (std::size_t i = 5; i < text.size(); i += 37) text[i] = static_cast<char>(0xe9);  // Latin-1 e-acute
  const std::string path = tmp.file("latin1.txt");
  write_file(path, text);
  const std::size_t invalid = gradlab::count_invalid_utf8(text);
  REQUIRE(invalid > 0);

  Run r = train_on(path, tmp.file("out"), {}, 1);
  INFO(r.err);
  REQUIRE(r.code == 0);
  // warned once, with the count and the lossless alternative
  CHECK(r.err.find("warning: " + path + " has " + std::to_string(invalid) + " bytes that are not valid UTF-8") !=
        std::string::npos);
  CHECK(r.err.find("--tokenizer byte") != std::string::npos);
  gradlab::ModelInfo info;
  gradlab::load_model(tmp.file("out") + "/" + gradlab::kModelFileName, &info);
  REQUIRE(info.tokenizer.has_value());
  CHECK(info.tokenizer->id_of(0xFFFD) >= 0);
  CHECK(info.tokenizer->id_of(0xE9) < 0);  // the byte 0xE9 is not read as U+00E9
  // The model evaluates on the same file: its invalid bytes map to the U+FFFD token.
  Run ev = eval({"--model", tmp.file("out"), "--data", path});
  INFO(ev.err);
  CHECK(ev.code == 0);
}

TEST_CASE("hostile text: the byte tokenizer takes any bytes (NUL / 0xFF / lone continuation bytes) without a warning") {
  TempDir tmp;
  std::string text = ascii_text(200);
  text[10] = '\0';
  text[50] = static_cast<char>(0xff);
  text[90] = static_cast<char>(0x80);
  const std::string path = tmp.file("binary.bin");
  write_file(path, text);
  Run r = train_on(path, tmp.file("out"), {"--tokenizer", "byte"}, 1);
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK(r.err.find("warning") == std::string::npos);
}

TEST_CASE("hostile text: eval on bytes the model's vocabulary lacks names the byte and its offset") {
  // A model trained on ASCII has no U+FFFD token, so an invalid byte in the evaluation text cannot be encoded.
  TempDir tmp;
  std::string text = ascii_text(400);
  text[123] = static_cast<char>(0xff);
  const std::string path = tmp.file("eval.txt");
  write_file(path, text);
  Run ev = eval({"--model", reference_checkpoint(), "--data", path});
  check_refused(ev, "123");
  CHECK((ev.err.find("0xff") != std::string::npos || ev.err.find("0xFF") != std::string::npos));
}

}  // TEST_SUITE
