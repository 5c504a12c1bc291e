#pragma once
// One writer per run directory. A training run holds an exclusive flock(2) on DIR/.gradlab.lock from before it
// writes anything until it ends; a second run on the same directory is refused at once (it does not wait), with
// the holder's pid and start time from the lock file. The kernel drops a flock when its process dies, however it
// dies, so a lock file left by a killed run never blocks: the next run takes it over and says so in a note.
#include <string>

#include "tensor/error.h"

namespace gradlab {

constexpr const char* kRunLockFileName = ".gradlab.lock";

// The directory is held by another live process.
struct RunLockedError : Error {
  using Error::Error;
};

class RunLock {
 public:
  RunLock() = default;
  // Locks `dir` (which must exist). Throws RunLockedError when another process holds it, Error when the lock
  // file cannot be created.
  explicit RunLock(const std::string& dir);
  ~RunLock();  // releases the lock and removes the lock file
  RunLock(RunLock&& other) noexcept;
  RunLock& operator=(RunLock&& other) noexcept;
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  bool held() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }
  // Non-empty when the lock file of an earlier run that ended without releasing it (killed) was taken over.
  const std::string& note() const { return note_; }

 private:
  void release();
  int fd_ = -1;
  std::string path_, note_;
};

}  // namespace gradlab
