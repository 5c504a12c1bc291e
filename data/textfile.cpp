#include "data/textfile.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tensor/error.h"

namespace gradlab {

std::string read_text_file(const std::string& path) {
  if (path.empty()) throw_error("text file: got an empty path");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) throw_error("text file '", path, "': no such file");
    throw_error("text file '", path, "': cannot access: ", std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) throw_error("text file '", path, "': is a directory, expected a text file");
  if (!S_ISREG(st.st_mode)) throw_error("text file '", path, "': is not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) > kMaxTextFileBytes)
    throw_error("text file '", path, "': has ", st.st_size, " bytes, above the limit of ", kMaxTextFileBytes,
                " bytes (1 GiB)");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_error("text file '", path, "': cannot open: ", std::strerror(errno));
  // Size from the open file, in case the path was replaced between stat and open.
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) > kMaxTextFileBytes) {
    ::close(fd);
    throw_error("text file '", path, "': changed while being opened");
  }
  if (st.st_size == 0) {
    // A file that reports 0 bytes may still have content (/proc and /sys generate theirs on read): it cannot be
    // sized before reading, so it is refused rather than called empty.
    char probe = 0;
    const ssize_t got = ::read(fd, &probe, 1);
    ::close(fd);
    if (got > 0)
      throw_error("text file '", path, "': cannot be sized (it reports 0 bytes but has content, like the files "
                  "of /proc); copy it to a regular file first");
    throw_error("text file '", path, "': is empty, expected some text to train or evaluate on");
  }
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t got = ::read(fd, text.data() + done, text.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      int err = errno;
      ::close(fd);
      throw_error("text file '", path, "': read failed: ", std::strerror(err));
    }
    if (got == 0) break;  // the file shrank while reading: keep what is there
    done += static_cast<std::size_t>(got);
  }
  ::close(fd);
  text.resize(done);
  if (text.empty()) throw_error("text file '", path, "': is empty, expected some text to train or evaluate on");
  return text;
}

}  // namespace gradlab
