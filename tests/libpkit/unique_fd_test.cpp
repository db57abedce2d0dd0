// pkit::unique_fd: sole ownership of a descriptor.

#include "test_support.hpp"

#include <pkit/unique_fd.hpp>

#include <fcntl.h>
#include <unistd.h>

namespace {
bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }
int open_null() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }
}  // namespace

BOOST_AUTO_TEST_CASE(a_default_unique_fd_is_empty) {
  const pkit::unique_fd fd;
  BOOST_TEST(fd.get() == -1);
  BOOST_TEST(!fd);
}

BOOST_AUTO_TEST_CASE(a_unique_fd_closes_its_descriptor_on_destruction) {
  const int raw = open_null();
  BOOST_TEST_REQUIRE(raw >= 0);
  {
    pkit::unique_fd fd{raw};
    BOOST_TEST(fd.get() == raw);
    BOOST_TEST(static_cast<bool>(fd));
  }
  BOOST_TEST(!is_open(raw));
}

BOOST_AUTO_TEST_CASE(release_gives_up_ownership_without_closing) {
  const int raw = open_null();
  int released = -1;
  {
    pkit::unique_fd fd{raw};
    released = fd.release();
    BOOST_TEST(fd.get() == -1);
  }
  BOOST_TEST(released == raw);
  BOOST_TEST(is_open(raw));
  ::close(raw);
}

BOOST_AUTO_TEST_CASE(reset_closes_the_old_descriptor_and_takes_the_new_one) {
  const int a = open_null();
  const int b = open_null();
  pkit::unique_fd fd{a};
  fd.reset(b);
  BOOST_TEST(!is_open(a));
  BOOST_TEST(fd.get() == b);
  fd.reset();
  BOOST_TEST(!is_open(b));
  BOOST_TEST(!fd);
  fd.reset();  // resetting an empty one is harmless
  BOOST_TEST(!fd);
}

BOOST_AUTO_TEST_CASE(moving_transfers_ownership) {
  const int a = open_null();
  const int b = open_null();
  pkit::unique_fd x{a};
  pkit::unique_fd y{std::move(x)};
  BOOST_TEST(x.get() == -1);  // NOLINT(bugprone-use-after-move): moved-from is empty
  BOOST_TEST(y.get() == a);

  pkit::unique_fd z{b};
  z = std::move(y);  // closes b, takes a
  BOOST_TEST(!is_open(b));
  BOOST_TEST(z.get() == a);
  BOOST_TEST(y.get() == -1);  // NOLINT(bugprone-use-after-move)

  auto& self = z;
  z = std::move(self);  // self-move keeps the descriptor
  BOOST_TEST(z.get() == a);
  BOOST_TEST(is_open(a));
}
