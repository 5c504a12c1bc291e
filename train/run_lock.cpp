#include "train/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "train/checkpoint.h"

namespace gradlab {

namespace {

std::string read_all(int fd) {
  std::string text;
  char buf[512];
  ssize_t got = 0;
  off_t offset = 0;
  while ((got = ::pread(fd, buf, sizeof buf, offset)) > 0 && text.size() < 4096) {
    text.append(buf, static_cast<std::size_t>(got));
    offset += got;
  }
  return text;
}

// The holder's line ("pid 123, started 2026-01-01 10:00:00 UTC") with control bytes dropped.
std::string holder_text(const std::string& content) {
  std::string out;
  for (char c : content) {
    if (c == '\n') break;
    if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) out += c;
  }
  return out.empty() ? std::string("a process that has not written its pid yet") : out.substr(0, 200);
}

std::string now_utc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

}  // namespace

RunLock::RunLock(const std::string& dir) {
  path_ = join_path(dir, kRunLockFileName);
  // Retry when the file we locked was removed by its previous holder between our open and our flock: a lock on
  // an unlinked file guards nothing.
  for (int attempt = 0; attempt < 100; ++attempt) {
    int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw_error("cannot write '", path_, "': ", std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      const std::string holder = holder_text(read_all(fd));
      ::close(fd);
      if (err == EWOULDBLOCK)
        throw RunLockedError("run directory '" + dir + "' is in use by another gradlab run (" + holder +
                             "; lock file '" + path_ + "'); wait for it to end or give another --out");
      throw_error("cannot lock '", path_, "': ", std::strerror(err));
    }
    struct stat by_fd {}, by_path {};
    if (::fstat(fd, &by_fd) != 0 || ::stat(path_.c_str(), &by_path) != 0 || by_fd.st_ino != by_path.st_ino ||
        by_fd.st_dev != by_path.st_dev) {
      ::close(fd);
      continue;
    }
    const std::string previous = holder_text(read_all(fd));
    if (by_fd.st_size > 0)
      note_ = "took over the lock file '" + path_ + "' of an earlier run that ended without releasing it (" +
              previous + ")";
    const std::string line = "pid " + std::to_string(::getpid()) + ", started " + now_utc() + "\n";
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, line.data(), line.size(), 0) != static_cast<ssize_t>(line.size())) {
      const int err = errno;
      ::close(fd);
      throw_error("cannot write '", path_, "': ", std::strerror(err));
    }
    fd_ = fd;
    return;
  }
  throw_error("cannot lock '", path_, "': the lock file keeps being replaced");
}

void RunLock::release() {
  if (fd_ < 0) return;
  // Unlink while still holding the lock, so nobody can lock the old file after we let go of it unnoticed (they
  // check the inode against the path).
  ::unlink(path_.c_str());
  ::close(fd_);
  fd_ = -1;
}

RunLock::~RunLock() { release(); }

RunLock::RunLock(RunLock&& other) noexcept : fd_(other.fd_), path_(std::move(other.path_)), note_(std::move(other.note_)) {
  other.fd_ = -1;
}

RunLock& RunLock::operator=(RunLock&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = other.fd_;
    path_ = std::move(other.path_);
    note_ = std::move(other.note_);
    other.fd_ = -1;
  }
  return *this;
}

}  // namespace gradlab
