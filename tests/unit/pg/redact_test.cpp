// pg::redact_url (pg/connection.h): every way a password can be written in a libpq URL or conninfo
// comes out as ***, and the rest stays readable.
#include "pg/connection.h"

#include <gtest/gtest.h>

namespace sluice::pg {
namespace {

struct Case {
  const char* in;
  const char* out;
};

TEST(RedactUrl, PasswordsAreReplaced) {
  const Case cases[] = {
      {"postgresql://u:secret@h:5432/db", "postgresql://u:***@h:5432/db"},
      {"postgres://u:secret@h/db", "postgres://u:***@h/db"},
      {"postgresql://:secret@h/db", "postgresql://:***@h/db"},
      {"postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"},
      {"postgresql://u:p%40ss@h/db?sslmode=require", "postgresql://u:***@h/db?sslmode=require"},
      {"postgresql://u@h/db?password=secret&sslmode=require", "postgresql://u@h/db?password=***&sslmode=require"},
      {"host=h user=u password=secret dbname=d", "host=h user=u password=*** dbname=d"},
      {"host=h password = secret dbname=d", "host=h password = *** dbname=d"},
      {"host=h password='se cret' dbname=d", "host=h password=*** dbname=d"},
      {"host=h password='a\\'b c' dbname=d", "host=h password=*** dbname=d"},
      {"host=h PASSWORD=secret", "host=h PASSWORD=***"},
  };
  for (const auto& c : cases) {
    const std::string r = redact_url(c.in);
    EXPECT_EQ(r, c.out) << c.in;
    EXPECT_EQ(r.find("secret"), std::string::npos) << c.in;
    EXPECT_EQ(r.find("cret"), std::string::npos) << c.in;
  }
}

TEST(RedactUrl, UrlsWithoutPasswordAreUnchanged) {
  for (const char* u : {"postgresql://u@h:5432/db", "postgresql://h:5432/db", "postgresql:///db?host=/tmp",
                        "host=h user=u dbname=d", ""}) {
    EXPECT_EQ(redact_url(u), u);
  }
}

}  // namespace
}  // namespace sluice::pg
